#!/usr/bin/env python3
"""`rebuy serve` vs PostgreSQL (Debian's package) serving the same orders, side by side.

Both servers run on 127.0.0.1 and hold the same demo orders (`rebuy demo --input-format csv`,
loaded into PostgreSQL with COPY). Measured with psycopg 3 as the client, alternating servers
in every round:

1. stream: rows per second for a 1M-row result (7 columns), fetched in full;
2. latency: p50/p99 of a small query over the extended protocol (psycopg binds parameters;
   after 5 runs it uses a prepared statement): a lookup in fx_rates by currency and day;
3. concurrency: 100 connections each running 100 such queries; errors and queries per second;
4. big stream: a 10M-row result consumed row by row (psycopg `stream`), with the rebuy
   server's peak RSS before and after, to show that results stream in bounded memory.

Usage: benches/server_vs_postgres.py [--orders 1000000] [--runs 3] [--rebuy PATH]
Needs: a release build of rebuy, `apt-get install postgresql`, `pip install psycopg[binary]`.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
STREAM_SQL = "SELECT order_id, customer_id, order_ts, amount, currency, region, status FROM orders"
SMALL_SQL = "SELECT to_usd FROM fx_rates WHERE currency = %s AND rate_date = %s"
BIG_SQL = STREAM_SQL + " CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9 UNION ALL SELECT 10) AS ten"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=120):
    start = time.time()
    while time.time() - start < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_postgres(work, csv_dir):
    pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    data = work / "pgdata"
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    os.chmod(work, 0o755)
    run_pg = lambda *a: subprocess.run(["runuser", "-u", "postgres", "--", *a], check=True,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_pg(str(pgbin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    port = free_port()
    proc = subprocess.Popen(["runuser", "-u", "postgres", "--", str(pgbin / "postgres"), "-D", str(data),
                             "-p", str(port), "-c", "unix_socket_directories=", "-c", "listen_addresses=127.0.0.1",
                             "-c", "max_connections=200", "-c", "shared_buffers=512MB"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    time.sleep(1)
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("""CREATE TABLE orders (order_id text PRIMARY KEY, customer_id text, order_ts timestamptz,
            amount double precision, currency text, region text, country text, category text, channel text,
            is_subscription boolean, status text, discount double precision, email_sha256 text)""")
        c.execute("CREATE TABLE fx_rates (rate_date date, currency text, to_usd double precision, PRIMARY KEY (currency, rate_date))")
        for table in ("orders", "fx_rates"):
            for f in sorted(csv_dir.glob(f"{table}*.csv")):
                with c.cursor().copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER)") as cp:
                    with open(f, "rb") as fh:
                        while chunk := fh.read(1 << 20):
                            cp.write(chunk)
        c.execute("ANALYZE")
    return proc, dsn


def start_rebuy(binary, data):
    port = free_port()
    (data / "rebuy.toml").write_text(f'[server]\nlisten = "127.0.0.1:{port}"\nauth = "trust"\nmax_connections = 200\n')
    proc = subprocess.Popen([str(binary), "--data", str(data), "serve"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "REBUY_LOG": "rebuy=warn"})
    wait_port(port)
    return proc, f"host=127.0.0.1 port={port} user=analyst dbname=rebuy"


def stream_rows(dsn):
    with psycopg.connect(dsn) as c:
        start = time.perf_counter()
        rows = c.execute(STREAM_SQL).fetchall()
        return len(rows), time.perf_counter() - start


def latencies(dsn, keys, n=1000):
    out = []
    with psycopg.connect(dsn, autocommit=True) as c:
        for i in range(n):
            cur, day = keys[i % len(keys)]
            t = time.perf_counter()
            c.execute(SMALL_SQL, (cur, day)).fetchall()
            out.append(time.perf_counter() - t)
    out.sort()
    return out[len(out) // 2] * 1000, out[int(len(out) * 0.99)] * 1000


def concurrency(dsn, keys, clients=100, queries=100):
    errors = []
    barrier = threading.Barrier(clients + 1)

    def worker(i):
        try:
            c = psycopg.connect(dsn, autocommit=True)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
            barrier.wait()
            return
        barrier.wait()
        try:
            for q in range(queries):
                cur, day = keys[(i * queries + q) % len(keys)]
                c.execute(SMALL_SQL, (cur, day)).fetchall()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return len(errors), clients * queries / elapsed, errors[:3]


def big_stream(dsn):
    n = 0
    start = time.perf_counter()
    with psycopg.connect(dsn) as c:
        for _ in c.cursor().stream(BIG_SQL):
            n += 1
    return n, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuy", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "rebuy"))
    ap.add_argument("--skip-big", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rebuy-srv-bench-"))
    procs = []
    try:
        data, inputs = work / "data", work / "inputs"
        subprocess.run([args.rebuy, "--data", str(data), "demo", "--orders", str(args.orders), "--inputs", str(inputs),
                        "--input-format", "csv"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pg, pg_dsn = start_postgres(work, inputs)
        procs.append(pg)
        rb, rb_dsn = start_rebuy(args.rebuy, data)
        procs.append(rb)
        with psycopg.connect(pg_dsn) as c:
            keys = [(r[0], r[1]) for r in c.execute("SELECT currency, rate_date FROM fx_rates ORDER BY random() LIMIT 500")]
        servers = {"rebuy": rb_dsn, "postgres": pg_dsn}
        for name, dsn in servers.items():  # warm-up
            stream_rows(dsn)
            latencies(dsn, keys, 50)
        results = {name: {"stream": [], "p50": [], "p99": [], "conc": [], "errors": 0} for name in servers}
        for _ in range(args.runs):
            for name, dsn in servers.items():
                rows, secs = stream_rows(dsn)
                results[name]["stream"].append(rows / secs)
                p50, p99 = latencies(dsn, keys)
                results[name]["p50"].append(p50)
                results[name]["p99"].append(p99)
                errors, qps, sample = concurrency(dsn, keys)
                results[name]["conc"].append(qps)
                results[name]["errors"] += errors
                if sample:
                    print(name, "errors:", sample, file=sys.stderr)
        print(f"orders: {args.orders:,}; medians of {args.runs} alternating runs")
        print(f"{'':10} {'stream rows/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'100x100 q/s':>12} {'errors':>7}")
        for name, r in results.items():
            print(f"{name:10} {statistics.median(r['stream']):>14,.0f} {statistics.median(r['p50']):>8.2f} "
                  f"{statistics.median(r['p99']):>8.2f} {statistics.median(r['conc']):>12,.0f} {r['errors']:>7}")
        rs, ps = (statistics.median(results[n]["stream"]) for n in ("rebuy", "postgres"))
        print(f"stream ratio rebuy/postgres: {rs / ps:.2f} (above 1: rebuy faster)")
        if not args.skip_big:
            before = peak_rss_mib(rb.pid)
            n, secs = big_stream(rb_dsn)
            after = peak_rss_mib(rb.pid)
            print(f"rebuy big stream: {n:,} rows in {secs:.1f} s; server peak RSS {before:.0f} MiB before, {after:.0f} MiB after")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
