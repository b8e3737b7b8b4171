#!/usr/bin/env python3
"""Differential test: the same statements against `rebuy serve` and a real PostgreSQL.

Both serve the fixture warehouse (data/fixture/warehouse): rebuy directly, PostgreSQL after
loading rebuy's own CSV export of the same tables into tables of the matching PostgreSQL
types. Each statement of corpus.sql runs over the simple protocol (text values) and the
extended protocol (binary values) on both servers; the test compares column names, type OIDs,
type modifiers, the raw values and, for failing statements, the SQLSTATE.

A statement preceded by `-- differs: <aspects>: <why>` (aspects: names, types, values, error)
may differ in those aspects only; the reason is printed. Rows are compared in order when the
statement has an ORDER BY, else as multisets.

Usage: tests/differential/run.py REBUY_BINARY
Needs: PostgreSQL's server (Debian package `postgresql`), psycopg 3. Exits 1 on a difference.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import pq

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "data" / "fixture" / "warehouse"

# The warehouse tables as PostgreSQL declares them (the data model's types and keys).
DDL = {
    "orders": """CREATE TABLE orders (order_id text PRIMARY KEY, customer_id text,
        order_ts timestamptz, amount numeric(18,2), currency text, region text, country text,
        category text, channel text, is_subscription boolean, status text,
        discount numeric(18,2), email_sha256 text, amount_usd double precision, order_month text)""",
    "customers": """CREATE TABLE customers (customer_id text PRIMARY KEY, signup_ts timestamptz,
        country text, region text, member_tier text, marketing_consent boolean, referred_by text,
        email_sha256 text)""",
    "fx_rates": """CREATE TABLE fx_rates (rate_date date, currency text, to_usd double precision,
        PRIMARY KEY (rate_date, currency))""",
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what):
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what}: nothing listens on {port}")


def start_postgres(work):
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not bins:
        raise SystemExit("PostgreSQL's server is not installed (apt-get install postgresql)")
    pgbin = bins[-1]
    data = work / "pgdata"
    data.mkdir()
    as_pg = []
    if os.geteuid() == 0:
        # initdb refuses root: the server runs as the package's postgres user.
        shutil.chown(data, "postgres", "postgres")
        os.chmod(work, 0o755)
        as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_pg + [str(pgbin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                            "-E", "UTF8", "--locale=C"], check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen(as_pg + [str(pgbin / "postgres"), "-D", str(data), "-p", str(port),
                                     "-c", "unix_socket_directories=", "-c", "listen_addresses=127.0.0.1",
                                     "-c", "TimeZone=UTC", "-c", "fsync=off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, "postgres")
    admin = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    for _ in range(100):
        try:
            psycopg.connect(admin).close()
            break
        except psycopg.OperationalError:
            time.sleep(0.1)
    # The database is named as rebuy's, so current_database() answers alike.
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("CREATE DATABASE rebuy")
    return proc, f"host=127.0.0.1 port={port} user=postgres dbname=rebuy"


def start_rebuy(binary, work):
    data = work / "rebuy-data"
    shutil.copytree(FIXTURE, data)
    port = free_port()
    (data / "rebuy.toml").write_text(f'[server]\nlisten = "127.0.0.1:{port}"\nauth = "trust"\n')
    log = open(work / "rebuy.log", "w")
    proc = subprocess.Popen([binary, "--data", str(data), "serve"], stdout=log, stderr=log,
                            env={**os.environ, "REBUY_LOG": "rebuy=warn"})
    wait_port(port, proc, "rebuy serve")
    return proc, f"host=127.0.0.1 port={port} user=analyst dbname=rebuy", data


def load_postgres(binary, rebuy_data, pg_dsn, work):
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        for table, ddl in DDL.items():
            c.execute(ddl)
            csv = work / f"{table}.csv"
            with open(csv, "wb") as out:
                subprocess.run([binary, "--data", str(rebuy_data), "query", f"SELECT * FROM {table}",
                                "--format", "csv"], check=True, stdout=out)
            with c.cursor().copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER)") as cp:
                cp.write(csv.read_bytes())
        c.execute("ANALYZE")


def parse_corpus(path):
    """Statements end with `;` at the end of a line; `-- differs:` lines annotate the next one."""
    cases, lines, differs = [], [], None
    for raw in path.read_text().splitlines():
        line = raw.rstrip()
        if not lines and line.startswith("-- differs:"):
            aspects, _, why = line[len("-- differs:"):].partition(":")
            differs = ({a.strip() for a in aspects.split(",")}, why.strip())
            continue
        if not lines and (not line or line.startswith("--")):
            continue
        lines.append(line)
        if line.endswith(";"):
            cases.append(("\n".join(lines)[:-1], differs))
            lines, differs = [], None
    return cases


def outcome(conn, sql, binary):
    """What a server answers: (names, oids, typmods, rows) or ('error', sqlstate, message)."""
    pgconn = conn.pgconn
    if binary:
        res = pgconn.exec_params(sql.encode(), [], result_format=1)
    else:
        res = pgconn.exec_(sql.encode())
    if res.status == pq.ExecStatus.FATAL_ERROR:
        state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
        message = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()
        # The failed statement leaves no transaction open on either server.
        pgconn.exec_(b"ROLLBACK")
        return ("error", state, message)
    n = res.nfields
    names = [res.fname(i).decode() for i in range(n)]
    oids = [res.ftype(i) for i in range(n)]
    mods = [res.fmod(i) for i in range(n)]
    rows = [tuple(res.get_value(r, c) for c in range(n)) for r in range(res.ntuples)]
    return (names, oids, mods, rows)


def compare(sql, a, b):
    """Aspects in which rebuy's answer `a` differs from PostgreSQL's `b`, with details."""
    if a[0] == "error" or b[0] == "error":
        if a[0] == "error" and b[0] == "error":
            return {} if a[1] == b[1] else {"error": f"SQLSTATE {a[1]} ({a[2]}) vs {b[1]} ({b[2]})"}
        got = f"error {a[1]} ({a[2]})" if a[0] == "error" else f"{len(a[3])} rows"
        want = f"error {b[1]} ({b[2]})" if b[0] == "error" else f"{len(b[3])} rows"
        return {"error": f"{got} vs {want}"}
    diffs = {}
    if a[0] != b[0]:
        diffs["names"] = f"{a[0]} vs {b[0]}"
    if a[1] != b[1] or a[2] != b[2]:
        diffs["types"] = f"oids/typmods {list(zip(a[1], a[2]))} vs {list(zip(b[1], b[2]))}"
    ra, rb = a[3], b[3]
    if not re.search(r"\border\s+by\b", sql, re.I):
        key = lambda r: tuple((v is None, v or b"") for v in r)
        ra, rb = sorted(ra, key=key), sorted(rb, key=key)
    if ra != rb:
        first = next((i for i, (x, y) in enumerate(zip(ra, rb)) if x != y), min(len(ra), len(rb)))
        show = lambda rows: rows[first] if first < len(rows) else "(no row)"
        diffs["values"] = f"{len(ra)} vs {len(rb)} rows; row {first}: {show(ra)} vs {show(rb)}"
    return diffs


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    cases = parse_corpus(Path(__file__).with_name("corpus.sql"))
    work = Path(tempfile.mkdtemp(prefix="rebuy-diff-"))
    procs = []
    try:
        pg, pg_dsn = start_postgres(work)
        procs.append(pg)
        rb, rb_dsn, rebuy_data = start_rebuy(binary, work)
        procs.append(rb)
        load_postgres(binary, rebuy_data, pg_dsn, work)
        failed = 0
        with psycopg.connect(rb_dsn, autocommit=True) as rconn, \
                psycopg.connect(pg_dsn, autocommit=True) as pconn:
            for sql, differs in cases:
                allowed, why = differs or (set(), "")
                for binary_values in (False, True):
                    mode = "binary" if binary_values else "text"
                    diffs = compare(sql, outcome(rconn, sql, binary_values),
                                    outcome(pconn, sql, binary_values))
                    unexpected = {k: v for k, v in diffs.items() if k not in allowed}
                    one_line = " ".join(sql.split())[:110]
                    if unexpected:
                        failed += 1
                        print(f"FAIL [{mode}] {one_line}")
                        for k, v in unexpected.items():
                            print(f"       {k}: {v}")
                    elif diffs:
                        print(f"ok   [{mode}] {one_line}  (differs on purpose in {', '.join(diffs)}: {why})")
                    else:
                        print(f"ok   [{mode}] {one_line}")
        if rb.poll() is not None:
            print("FAIL rebuy serve died")
            failed += 1
        print(f"{len(cases)} statements, {failed} differences")
        if failed:
            print("--- rebuy log (tail)")
            print("\n".join((work / "rebuy.log").read_text().splitlines()[-20:]))
        return 1 if failed else 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
