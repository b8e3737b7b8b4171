#!/usr/bin/env python3
"""Ingest benchmark: rebuy vs DuckDB on the same order CSV, side by side in one run.

rebuy:  `rebuy ingest orders orders.csv` into a data directory that already holds fx_rates
        (validation of every row, UTC conversion, order_month and amount_usd derivation, key
        checks, one Delta commit), timed as a whole process.
DuckDB: the same CSV read with read_csv, order_month and amount_usd derived with the same
        fx_rates (joined on the order's UTC day), written by
        COPY ... TO ... (FORMAT parquet, PARTITION_BY (order_month)), threads=2, whole process.

The runs alternate (rebuy, DuckDB, rebuy, DuckDB, ...) after one warm-up each; the report gives
medians, the ratio rebuy/DuckDB and rebuy's peak RSS. The machine is shared: only ratios from
one run mean anything.

Usage: benches/ingest_vs_duckdb.py [--sizes 1000000,10000000] [--runs 3] [--rebuy PATH]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import run_timed

ROOT = Path(__file__).resolve().parent.parent


def ensure_duckdb(python: str) -> None:
    probe = subprocess.run([python, "-c", "import duckdb"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "--quiet", "duckdb"], check=True)


DUCKDB_SCRIPT = r"""
import sys, duckdb
orders, fx, out = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute("SET threads=2")
con.execute("SET TimeZone='UTC'")
con.execute(f'''
COPY (
  SELECT o.*,
         strftime(o.order_ts, '%Y-%m') AS order_month,
         CAST(o.amount AS DOUBLE) * f.to_usd AS amount_usd
  FROM read_csv('{orders}', header = true,
                types = {{'order_ts': 'TIMESTAMPTZ', 'amount': 'DECIMAL(18,2)', 'discount': 'DECIMAL(18,2)'}}) o
  JOIN read_csv('{fx}', header = true) f
    ON f.currency = o.currency AND f.rate_date = CAST(o.order_ts AS DATE)
) TO '{out}' (FORMAT parquet, PARTITION_BY (order_month))
''')
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuy", default=os.environ.get("REBUY_BIN", str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "rebuy")))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    ensure_duckdb(args.python)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rebuy-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    script = work / "duckdb_ingest.py"
    script.write_text(DUCKDB_SCRIPT)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        inputs = work / f"inputs-{size}"
        if not (inputs / "orders.csv").exists():
            subprocess.run([args.rebuy, "--data", str(work / "unused"), "demo", "--orders", str(size),
                            "--input-format", "csv", "--inputs", str(inputs), "--no-ingest"], check=True,
                           stdout=subprocess.DEVNULL)
        template = work / f"fx-{size}"
        if not template.exists():
            subprocess.run([args.rebuy, "--data", str(template), "ingest", "fx_rates", str(inputs / "fx_rates.csv")],
                           check=True, stdout=subprocess.DEVNULL)
        csv_mib = (inputs / "orders.csv").stat().st_size / 2**20
        times = {"rebuy": [], "duckdb": []}
        peaks = []
        for i in range(args.runs + 1):
            data = work / "run-rebuy"
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(template, data)
            t, peak = run_timed([args.rebuy, "--data", str(data), "ingest", "orders", str(inputs / "orders.csv")])
            out = work / "run-duckdb"
            shutil.rmtree(out, ignore_errors=True)
            d, _ = run_timed([args.python, str(script), str(inputs / "orders.csv"), str(inputs / "fx_rates.csv"), str(out)])
            if i == 0:
                continue  # warm-up
            times["rebuy"].append(t)
            times["duckdb"].append(d)
            peaks.append(peak)
            print(f"  {size:>10} run {i}: rebuy {t:.2f}s (peak {peak:.0f} MiB)  duckdb {d:.2f}s", flush=True)
        r, d = statistics.median(times["rebuy"]), statistics.median(times["duckdb"])
        rows.append((size, csv_mib, r, d, r / d, max(peaks)))
    print()
    print("| orders | CSV MiB | rebuy median s | DuckDB median s | rebuy/DuckDB | rebuy peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size, mib, r, d, ratio, peak in rows:
        print(f"| {size:,} | {mib:.0f} | {r:.2f} | {d:.2f} | {ratio:.2f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
