#!/usr/bin/env python3
"""The lifecycle views of issue 16 against a second engine: DuckDB answers the same questions
with independent SQL (the queries of benches/lifecycle_vs_duckdb.py) over the demo fixture's
input files (data/fixture/inputs), and every row of every view must agree, floats to 1e-9
relative. DuckDB sees the rows as the store exported them; only amount_usd, which rebuy derives
at ingest from fx_rates, is taken from rebuy's stored orders and marketing_spend.

tier_stats and acquisition_economics are compared without their CLV columns (model fits that
SQL cannot express; tests/slt/views/lifecycle.slt checks those against customer_clv).

Usage: tests/differential/lifecycle_duckdb.py REBUY_BINARY
"""

import csv
import io
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches"))

COLUMNS = {
    "tier_stats": "member_tier, customers, repeat_customers, repeat_share, purchases_per_customer, "
    "median_interval_days, aov_usd, revenue_usd, revenue_share",
    "acquisition_economics": "first_purchase_month, acquisition_channel, region, new_customers, spend_usd, "
    "cac_usd, revenue_per_customer_30d, revenue_per_customer_90d, revenue_per_customer_180d, "
    "revenue_per_customer_365d, is_mature_30d, is_mature_90d, is_mature_180d, is_mature_365d, "
    "ltv_cac_365d, payback_days",
}


def cell(v):
    """A comparable value: None, a float, or lower-case text (booleans as true/false)."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v).lower()


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def key(row):
    return tuple((x is None, "" if x is None else (round(x, 6) if isinstance(x, float) else x)) for x in row)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    if subprocess.run([sys.executable, "-c", "import duckdb"], capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "duckdb"], check=True)
    import duckdb
    from lifecycle_vs_duckdb import AS_OF, DUCK_SQL

    work = Path(tempfile.mkdtemp(prefix="rebuy-lifecycle-diff-"))
    data = work / "warehouse"
    shutil.copytree(ROOT / "data" / "fixture" / "warehouse", data)

    def rebuy(sql):
        out = subprocess.run([binary, "--data", str(data), "query", "--format", "csv",
                              f"SET rebuy.as_of = '{AS_OF}'; {sql}"], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"rebuy failed on {sql}: {out.stderr}")
        return list(csv.reader(io.StringIO(out.stdout)))[1:]

    inputs = ROOT / "data" / "fixture" / "inputs"
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    money = "'amount': 'DECIMAL(18,2)'"
    con.execute(f"CREATE TABLE raw_orders AS SELECT * FROM read_csv('{inputs}/orders.csv', "
                f"types={{'order_ts': 'TIMESTAMPTZ', {money}, 'discount': 'DECIMAL(18,2)'}})")
    con.execute(f"CREATE TABLE customers AS SELECT * FROM read_csv('{inputs}/customers.csv', "
                "types={'signup_ts': 'TIMESTAMPTZ', 'referred_by': 'VARCHAR', 'member_tier': 'VARCHAR'})")
    con.execute(f"CREATE TABLE raw_spend AS SELECT * FROM read_csv('{inputs}/marketing_spend.csv', "
                f"types={{'spend_date': 'DATE', 'region': 'VARCHAR', {money}}})")
    con.execute("CREATE TABLE order_usd (order_id VARCHAR, amount_usd DOUBLE)")
    con.executemany("INSERT INTO order_usd VALUES (?, ?)",
                    [(i, float(u)) for i, u in rebuy("SELECT order_id, amount_usd FROM orders")])
    con.execute("CREATE VIEW orders AS SELECT o.*, u.amount_usd FROM raw_orders o JOIN order_usd u USING (order_id)")
    con.execute("CREATE TABLE spend_usd (spend_date DATE, channel VARCHAR, region VARCHAR, currency VARCHAR, amount_usd DOUBLE)")
    con.executemany("INSERT INTO spend_usd VALUES (?, ?, ?, ?, ?)",
                    [(d, c, r or None, k, float(u)) for d, c, r, k, u in
                     rebuy("SELECT CAST(spend_date AS VARCHAR), channel, region, currency, amount_usd FROM marketing_spend")])
    con.execute("CREATE VIEW marketing_spend AS SELECT s.*, u.amount_usd FROM raw_spend s JOIN spend_usd u "
                "ON u.spend_date = s.spend_date AND u.channel = lower(s.channel) "
                "AND u.region IS NOT DISTINCT FROM s.region AND u.currency = s.currency")
    # Every stored row is in the input and the other way round.
    for table in ("orders", "marketing_spend"):
        (n,) = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        (m,) = con.execute(f"SELECT COUNT(*) FROM {'raw_orders' if table == 'orders' else 'raw_spend'}").fetchone()
        if n != m or n == 0:
            raise SystemExit(f"{table}: {n} rows matched of {m}")

    failed = 0
    for view, sql in DUCK_SQL.items():
        theirs = sorted(([cell(x) for x in r] for r in con.execute(sql).fetchall()), key=key)
        ours = sorted(([cell(x) for x in r] for r in rebuy(f"SELECT {COLUMNS.get(view, '*')} FROM {view}")), key=key)
        bad = [(a, b) for a, b in zip(ours, theirs) if len(a) != len(b) or not all(same(x, y) for x, y in zip(a, b))]
        if len(ours) != len(theirs) or bad or not ours:
            failed += 1
            print(f"DIFFERS {view}: rebuy {len(ours)} rows, DuckDB {len(theirs)}; first differences:")
            for a, b in bad[:3]:
                print(f"   rebuy  {a}\n   duckdb {b}")
        else:
            print(f"same    {view}: {len(ours)} rows")
    shutil.rmtree(work, ignore_errors=True)
    if failed:
        raise SystemExit(f"{failed} view(s) differ from DuckDB")


if __name__ == "__main__":
    main()
