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
    pk = insp.get_pk_constraint("fx_rates", schema="public")
    assert pk["constrained_columns"] == ["rate_date", "currency"] and pk["name"] == "fx_rates_pkey", pk
    assert insp.get_pk_constraint("orders", schema="public")["constrained_columns"] == ["order_id"]
    assert insp.get_foreign_keys("orders", schema="public") == []
    # A primary key's index is the constraint's, which SQLAlchemy does not list as an index.
    assert insp.get_indexes("orders", schema="public") == []
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


@check("Npgsql's type loading: arrays found by their receive function, with element types")
def _():
    import pathlib
    import psycopg
    sql = (pathlib.Path(__file__).parent / "npgsql_types.sql").read_text()
    with psycopg.connect(DSN, autocommit=True) as conn:
        rows = conn.execute(sql).fetchall()
    by_name = {r[2]: r for r in rows}
    # (nspname, oid, typname, typtype, typnotnull, elemtypoid)
    assert by_name["int4"][1:4] == (23, "int4", "b"), by_name["int4"]
    assert by_name["_int4"][3] == "a" and by_name["_int4"][5] == 23, by_name["_int4"]
    assert by_name["_text"][5] == 25 and by_name["numeric"][3] == "b", (by_name["_text"], by_name["numeric"])
    # Base types come before arrays, as Npgsql's ORDER BY asks.
    kinds = [r[3] for r in rows]
    assert kinds.index("a") > max(i for i, k in enumerate(kinds) if k == "b"), kinds[:5]


@check("psycopg 3: named (server-side) cursor reads a result in steps")
def _():
    import psycopg
    with psycopg.connect(DSN) as conn:
        total = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        with conn.cursor(name="orders_in_steps") as cur:
            cur.itersize = 250
            cur.execute("SELECT order_id, amount FROM orders WHERE amount > %s ORDER BY order_id", (0,))
            assert [d.name for d in cur.description] == ["order_id", "amount"], cur.description
            first = cur.fetchmany(10)
            assert len(first) == 10 and first[0][0] < first[1][0], first[:2]
            rest = list(cur)
        assert len(first) + len(rest) == conn.execute(
            "SELECT count(*) FROM orders WHERE amount > 0").fetchone()[0] <= total
        conn.rollback()


@check("psycopg2: named cursor (pandas chunksize, Superset)")
def _():
    import psycopg2
    conn = psycopg2.connect(DSN)
    try:
        cur = conn.cursor(name="chunks")
        cur.itersize = 100
        cur.execute("SELECT customer_id FROM customers ORDER BY customer_id")
        ids = [r[0] for r in cur]
        cur.close()
        plain = conn.cursor()
        plain.execute("SELECT count(*) FROM customers")
        assert len(ids) == plain.fetchone()[0] and ids == sorted(ids)
        conn.commit()
    finally:
        conn.close()


@check("psycopg: types as PostgreSQL reports them (int4 constants, numeric typmod, timestamptz)")
def _():
    import decimal
    import psycopg
    with psycopg.connect(DSN, autocommit=True) as conn:
        cur = conn.execute("SELECT 1 AS one, count(*) AS n, true AS t FROM orders")
        assert [c.type_code for c in cur.description] == [23, 20, 16], cur.description
        cur = conn.execute("SELECT amount FROM orders LIMIT 1")
        d = cur.description[0]
        assert (d.type_code, d.precision, d.scale) == (1700, 18, 2), d
        cur = conn.execute("SELECT CAST('2024-03-05 10:20:30+00' AS timestamptz) AS t")
        assert cur.description[0].type_code == 1184
        assert cur.fetchone()[0] == datetime.datetime(2024, 3, 5, 10, 20, 30, tzinfo=datetime.timezone.utc)
        big = conn.execute("SELECT 10000000000000000.00 AS b, 123456789012345678901234567890 AS c").fetchone()
        assert big == (decimal.Decimal("10000000000000000.00"), decimal.Decimal("123456789012345678901234567890")), big
        row = conn.execute("SELECT %s::numeric AS p", (decimal.Decimal("1234.56"),), binary=True).fetchone()
        # Decimals compare equal whatever their scale: the text is what must match.
        assert str(row[0]) == "1234.56", row
        row = conn.execute("SELECT %s::numeric AS p", (decimal.Decimal("1234.56"),)).fetchone()
        assert str(row[0]) == "1234.56", row
        # PostgreSQL's error for a scalar subquery of several rows.
        try:
            conn.execute("SELECT (SELECT order_id FROM orders)")
            raise AssertionError("several rows from a scalar subquery were accepted")
        except psycopg.Error as e:
            assert e.sqlstate == "21000", e.sqlstate
        # SET and set_config validate alike; RESET returns to the default.
        for sql in ("SET statement_timeout = 'soon'",
                    "SELECT set_config('statement_timeout', 'soon', false)"):
            try:
                conn.execute(sql)
                raise AssertionError(f"accepted: {sql}")
            except psycopg.Error as e:
                assert e.sqlstate == "22023", (sql, e.sqlstate)
        # Grafana's column listing and the key query of Tableau / Metabase, as PostgreSQL answers.
        cols = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'orders' ORDER BY ordinal_position").fetchall()
        assert ("order_ts", "timestamp with time zone") in cols and ("amount", "numeric") in cols, cols
        keys = conn.execute(
            "SELECT kcu.column_name FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name "
            "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_name = 'fx_rates' "
            "ORDER BY kcu.ordinal_position").fetchall()
        assert keys == [("rate_date",), ("currency",)], keys
        conn.execute("SET statement_timeout = '5s'")
        conn.execute("RESET statement_timeout")
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"


@check("asyncpg: aware datetimes and Decimal as parameters")
async def _():
    import decimal
    import asyncpg
    conn = await asyncpg.connect(host="127.0.0.1", port=PORT, user="analyst", database="rebuy")
    try:
        when = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
        n = await conn.fetchval("SELECT count(*) FROM orders WHERE order_ts >= $1", when)
        m = await conn.fetchval("SELECT count(*) FROM orders WHERE order_ts >= $1::timestamptz", when)
        assert n == m and n > 0, (n, m)
        naive = datetime.datetime(2026, 6, 1, 10, 0)
        assert await conn.fetchval("SELECT $1::timestamp", naive) == naive
        value = await conn.fetchval("SELECT $1::numeric", decimal.Decimal("1234.56"))
        assert str(value) == "1234.56", value
        assert await conn.fetchval("SELECT 1") == 1
        zero = await conn.fetchval("SELECT discount FROM orders WHERE discount = 0 LIMIT 1")
        assert str(zero) == "0.00", zero
    finally:
        await conn.close()


if failures:
    print(f"{len(failures)} Python client check(s) failed: {failures}")
    sys.exit(1)
print("all Python client checks passed")
