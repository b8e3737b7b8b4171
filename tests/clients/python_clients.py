"""Real Python clients against a running `rebuy serve`: psycopg 3, asyncpg, SQLAlchemy.

Usage: python_clients.py PORT
Each check prints one line; the script exits non-zero when any check fails.
"""
import asyncio
import datetime
import sys
import traceback

PORT = int(sys.argv[1])
DSN = f"host=127.0.0.1 port={PORT} user=analyst dbname=rebuy"
failures = []


def check(name):
    def wrap(fn):
        try:
            result = fn()
            if asyncio.iscoroutine(result):
                asyncio.run(result)
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failures.append(name)
            print(f"FAIL {name}: {e!r}")
            traceback.print_exc(limit=3)
        return fn
    return wrap


@check("psycopg: server-side parameters, binary and text results")
def _():
    import psycopg
    with psycopg.connect(DSN) as conn:
        n = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        assert n > 0
        region = conn.execute("SELECT region FROM orders LIMIT 1").fetchone()[0]
        m = conn.execute("SELECT COUNT(*) FROM orders WHERE region = %s", (region,)).fetchone()[0]
        assert 0 < m <= n
        row = conn.execute(
            "SELECT DATE '2026-07-01', TIMESTAMP '2026-07-01 10:00:00', true, 1.5::double precision, 'x'",
            binary=True,
        ).fetchone()
        assert row[0] == datetime.date(2026, 7, 1), row
        assert row[1] == datetime.datetime(2026, 7, 1, 10, 0), row
        assert row[2] is True and row[3] == 1.5 and row[4] == "x", row
        # NULL parameters, and a typed one
        assert conn.execute("SELECT %s::text IS NULL", (None,)).fetchone()[0] is True
        seg = conn.execute("SELECT rfm_segment(%s, %s, %s)", (5, 5, 5)).fetchone()[0]
        assert seg == "Champions"


@check("psycopg: errors carry SQLSTATE and the connection stays usable")
def _():
    import psycopg
    with psycopg.connect(DSN, autocommit=True) as conn:
        for sql, code in [
            ("SELECT * FROM nope", "42P01"),
            ("SELEC 1", "42601"),
            ("SELECT rfm_segment(0, 1, 1)", "22023"),
            ("DELETE FROM orders", "25006"),
        ]:
            try:
                conn.execute(sql)
                raise AssertionError(f"{sql} did not fail")
            except psycopg.Error as e:
                assert e.sqlstate == code, (sql, e.sqlstate, str(e))
        assert conn.execute("SELECT 1").fetchone()[0] == 1


@check("psycopg: cancel stops a running query with 57014")
def _():
    import threading
    import psycopg
    with psycopg.connect(DSN, autocommit=True) as conn:
        t = threading.Timer(0.5, conn.cancel)
        t.start()
        try:
            conn.execute("SELECT COUNT(*) FROM orders a, orders b, orders c WHERE a.amount + b.amount + c.amount < 0")
            raise AssertionError("not cancelled")
        except psycopg.errors.QueryCanceled:
            pass
        assert conn.execute("SELECT 1").fetchone()[0] == 1


@check("psycopg: COPY TO STDOUT")
def _():
    import psycopg
    with psycopg.connect(DSN) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY (SELECT customer_id FROM customer_summary ORDER BY 1 LIMIT 5) TO STDOUT") as copy:
                rows = list(copy.rows())
        assert len(rows) == 5, rows


@check("asyncpg: binary protocol, type introspection, named columns")
async def _():
    import asyncpg
    conn = await asyncpg.connect(host="127.0.0.1", port=PORT, user="analyst", database="rebuy")
    try:
        rows = await conn.fetch(
            "SELECT customer_id, purchase_days, revenue_usd, next_order_due FROM customer_summary ORDER BY customer_id LIMIT 3"
        )
        assert len(rows) == 3
        assert list(rows[0].keys()) == ["customer_id", "purchase_days", "revenue_usd", "next_order_due"], rows[0].keys()
        n = await conn.fetchval("SELECT COUNT(*) FROM orders WHERE amount > $1", 10.0)
        assert n > 0
        # Column names as PostgreSQL gives them, which asyncpg records are keyed by.
        rec = await conn.fetchrow("SELECT as_of(), COUNT(*), 1 FROM orders")
        assert list(rec.keys()) == ["as_of", "count", "?column?"], list(rec.keys())
        assert isinstance(rec["as_of"], datetime.date)
        ok = await conn.fetchval("SELECT rfm_segment($1::BIGINT, $2::BIGINT, $3::BIGINT)", 5, 5, 5)
        assert ok == "Champions", ok
        # Arrays go through asyncpg's type introspection first.
        assert list(await conn.fetchval("SELECT make_array(1, 2, 3)")) == [1, 2, 3]
        gaps = await conn.fetchval(
            "SELECT repurchase_intervals(order_ts) FROM orders GROUP BY customer_id ORDER BY COUNT(*) DESC LIMIT 1")
        assert len(gaps) > 1 and all(g > 0 for g in gaps), gaps
    finally:
        await conn.close()


@check("SQLAlchemy: connect, inspector, pandas-style read")
def _():
    import sqlalchemy as sa
    engine = sa.create_engine(f"postgresql+psycopg://analyst@127.0.0.1:{PORT}/rebuy")
    insp = sa.inspect(engine)
    assert "public" in insp.get_schema_names()
    tables = insp.get_table_names(schema="public")
    assert {"orders", "customers", "fx_rates"} <= set(tables), tables
    views = insp.get_view_names(schema="public")
    assert {"customer_summary", "customer_rfm", "customer_layers"} <= set(views), views
    cols = {c["name"]: c["type"] for c in insp.get_columns("orders", schema="public")}
    assert "order_id" in cols and "amount" in cols, cols
    insp.get_pk_constraint("orders", schema="public")
    insp.get_foreign_keys("orders", schema="public")
    insp.get_indexes("orders", schema="public")
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT COUNT(*) FROM customer_layers WHERE layer = :l"), {"l": "churned"}).scalar()
        assert n >= 0


@check("BI catalog queries (Grafana, Metabase, Superset, DBeaver, Tableau, Power BI)")
def _():
    import psycopg
    queries = {
        # Grafana's PostgreSQL data source: table and column pickers
        "grafana tables": "SELECT quote_ident(table_name) AS table_name FROM information_schema.tables WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog', '_timescaledb_cache') AND table_type = 'BASE TABLE' ORDER BY table_name",
        "grafana columns": "SELECT quote_ident(column_name) AS column_name, data_type AS type FROM information_schema.columns WHERE quote_ident(table_name) = 'orders'",
        # Metabase: schemas and tables it may read
        "metabase schemas": "SELECT nspname AS schema FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'",
        "metabase tables": "SELECT n.nspname AS schema, c.relname AS name, CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'v' THEN 'VIEW' END AS type, d.description AS description FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.objsubid = 0 WHERE c.relkind IN ('r', 'v') AND n.nspname = 'public'",
        # Superset (via SQLAlchemy): server version
        "superset version": "select pg_catalog.version()",
        "superset schema": "select current_schema()",
        # DBeaver: namespaces with descriptions
        "dbeaver namespaces": "SELECT n.oid, n.nspname, d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = n.oid AND d.objsubid = 0 ORDER BY n.nspname",
        # Tableau: columns of a relation
        "tableau columns": "SELECT a.attname, a.attnum, t.typname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON a.atttypid = t.oid JOIN pg_catalog.pg_class c ON c.oid = a.attrelid WHERE c.relname = 'orders' AND a.attnum > 0 ORDER BY a.attnum",
        # Power BI (Npgsql): type loading
        "npgsql types": "SELECT typ.oid, typ.typname, typ.typtype, typ.typnamespace FROM pg_type AS typ WHERE typ.typtype IN ('b', 'r', 'm', 'e', 'd') ORDER BY typ.oid",
    }
    with psycopg.connect(DSN, autocommit=True) as conn:
        for name, sql in queries.items():
            try:
                rows = conn.execute(sql).fetchall()
            except psycopg.Error as e:
                raise AssertionError(f"{name}: {e}") from e
            if name in ("grafana tables", "metabase tables", "tableau columns"):
                assert rows, f"{name}: no rows"


if failures:
    print(f"{len(failures)} Python client check(s) failed: {failures}")
    sys.exit(1)
print("all Python client checks passed")
