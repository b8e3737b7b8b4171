#!/usr/bin/env python3
"""Repurchase workloads: rebuy's views vs DuckDB's plain SQL, side by side in one run.

Data: `rebuy demo --inputs DIR` Parquet files (orders, fx_rates), as of 2026-07-01. DuckDB
(threads=2, TimeZone=UTC) runs the canonical workloads of ../shared/bench/workloads over
read_parquet views; rebuy runs (a) the same plain SQL through `rebuy query -f` and (b) the view
that answers the same question. Every side is a whole process whose full result is produced
(DuckDB: COPY (...) TO '/dev/null'; rebuy: --format csv to /dev/null).

Runs alternate DuckDB, rebuy SQL, rebuy view, ... after a warm-up; medians and ratios
(rebuy/DuckDB, below 1 is faster) per workload.

Usage: benches/views_vs_duckdb.py [--orders 1000000] [--runs 3] [--rebuy PATH]
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import demo_bench_setup  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = Path(os.environ.get("REBUY_WORKLOADS", ROOT.parent / "shared" / "bench" / "workloads"))
AS_OF = "2026-07-01"

# workload file -> the rebuy view query answering the same question
VIEWS = {
    "w1_rfm.sql": "SELECT * FROM customer_rfm",
    "w2_repurchase_rate.sql": "SELECT * FROM repurchase_rate",
    "w3_cohort_retention.sql": "SELECT * FROM cohort_retention",
    "w4_intervals.sql": "SELECT * FROM interval_stats",
    "w5_dormant_high_value.sql": "SELECT * FROM winback_candidates LIMIT 1000",
    "w6_point.sql": "SELECT * FROM orders WHERE customer_id = '${customer_id}' ORDER BY order_ts",
    "w7_clv_summary.sql": "SELECT customer_id, frequency, recency, t, monetary_value FROM customer_summary",
}

DUCK = r"""
import sys, duckdb
inputs, sql = sys.argv[1], open(sys.argv[2]).read()
con = duckdb.connect()
con.execute("SET threads=2")
con.execute("SET TimeZone='UTC'")
con.execute(f"CREATE VIEW orders AS SELECT * FROM read_parquet('{inputs}/orders.parquet')")
con.execute(f"CREATE VIEW fx_rates AS SELECT * FROM read_parquet('{inputs}/fx_rates.parquet')")
con.execute(f"COPY ({sql.strip().rstrip(';')}) TO '/dev/null' (FORMAT csv)")
"""


def timed(cmd):
    start = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd[:4])}...: {r.stderr.decode()[-2000:]}")
    return time.perf_counter() - start


def main():
    args, work, inputs, data = demo_bench_setup("rebuy-views-")
    duck = work / "duck.py"
    duck.write_text(DUCK)
    import duckdb
    con = duckdb.connect()
    top = con.execute(f"SELECT customer_id FROM read_parquet('{inputs}/orders.parquet') GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1").fetchone()[0]
    rows = []
    for name, view in VIEWS.items():
        sql = (WORKLOADS / name).read_text().replace("${customer_id}", top)
        plain = work / name
        plain.write_text(sql)
        rebuy_sql = work / f"rebuy-{name}"
        rebuy_sql.write_text(f"SET rebuy.as_of = '{AS_OF}';\n{sql.strip().rstrip(';')};\n")
        view_sql = view.replace("${customer_id}", top)
        t = {"duckdb": [], "rebuy_sql": [], "rebuy_view": []}
        for i in range(args.runs + 1):
            d = timed([sys.executable, str(duck), str(inputs), str(plain)])
            s = timed([args.rebuy, "--data", str(data), "query", "--format", "csv", "-f", str(rebuy_sql)])
            v = timed([args.rebuy, "--data", str(data), "query", "--format", "csv",
                       f"SET rebuy.as_of = '{AS_OF}'; {view_sql}"])
            if i:
                t["duckdb"].append(d); t["rebuy_sql"].append(s); t["rebuy_view"].append(v)
        m = {k: statistics.median(v) for k, v in t.items()}
        rows.append((name, m["duckdb"], m["rebuy_sql"], m["rebuy_view"]))
        print(f"  {name}: duckdb {m['duckdb']:.2f}s  rebuy sql {m['rebuy_sql']:.2f}s  rebuy view {m['rebuy_view']:.2f}s", flush=True)
    print()
    print(f"{args.orders:,} orders, as of {AS_OF}, medians of {args.runs} runs")
    print("| workload | DuckDB s | rebuy plain SQL s | ratio | rebuy view s | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, d, s, v in rows:
        print(f"| {name} | {d:.2f} | {s:.2f} | {s / d:.2f} | {v:.2f} | {v / d:.2f} |")


if __name__ == "__main__":
    main()
