-- Statements run against rebuy and PostgreSQL on the same fixture (see run.py).
-- Analyst SQL over the warehouse tables, the types drivers read from RowDescription, and the
-- catalog queries BI tools and drivers send, each restricted to rebuy's tables.

-- Literals and the types node-postgres, pgjdbc and psycopg turn into values.
SELECT 1 AS one;
SELECT 1, 2, 'x', true, NULL;
SELECT NULL, NULL;
SELECT 1 + 1 AS two, 7 / 2 AS half, -3 AS minus;
SELECT 3000000000 AS big;
SELECT CAST(7 AS int) AS i, CAST(7 AS bigint) AS b, CAST(7 AS smallint) AS s;
SELECT CASE WHEN true THEN 1 ELSE 0 END AS flag;
SELECT 1.5 AS x, CAST(2.25 AS float8) AS y, CAST(2.5 AS real) AS z;
SELECT 10000000000000000.00 AS big_numeric;
SELECT 123456789012345678901234567890 AS thirty_digits;
SELECT CAST(1234.56 AS numeric) AS n, CAST(5 AS numeric) AS five, CAST(0.125 AS numeric) AS e;
-- differs: values: an unconstrained numeric prints without trailing zeros (1.5, 12.3), where PostgreSQL keeps the scale it was written with or the column's (1.50, 12.30)
SELECT CAST(1.50 AS numeric) AS n;
SELECT CAST('2024-03-05 10:20:30+00' AS timestamptz) AS t;
SELECT CAST('2024-03-05 10:20:30' AS timestamp) AS t;
SELECT CAST('2024-03-05' AS date) AS d;
-- Timestamps as PostgreSQL prints them: fraction without trailing zeros, offsets with minutes,
-- daylight saving in the session's zone; numerics at their scale, negative ones too.
SELECT CAST('2024-03-05 10:20:30.250+00' AS timestamptz) AS t, CAST('2024-03-05 10:20:30.000001' AS timestamp) AS u;
SELECT CAST(-0.05 AS numeric(10,2)) AS neg, CAST(-12.5 AS numeric(10,3)) AS neg3, CAST(0 AS numeric(5,2)) AS zero;
SET TimeZone = 'America/New_York';
SELECT order_id, order_ts FROM orders ORDER BY order_id LIMIT 5;
SELECT CAST('2024-03-10 07:30:00+00' AS timestamptz) AS after_dst, CAST('2024-03-10 06:30:00+00' AS timestamptz) AS before_dst;
SET TimeZone = 'Asia/Kolkata';
SELECT order_id, order_ts FROM orders ORDER BY order_id LIMIT 3;
SET TimeZone = 'UTC';
-- differs: types: rebuy has one string type; varchar is reported as text (clients read both alike)
SELECT 'abc' AS s, CAST('abc' AS varchar) AS v, CAST('abc' AS text) AS t;
SELECT 'abc' AS s, CAST('abc' AS text) AS t;
-- IS DISTINCT FROM groups as in PostgreSQL: (a IS DISTINCT FROM b) AND c.
SELECT true IS DISTINCT FROM true AND false AS a, false AND NULL IS NOT DISTINCT FROM NULL OR true AS b;
SELECT count(*) FROM orders o JOIN customers c ON o.customer_id IS NOT DISTINCT FROM c.customer_id AND o.region IS NOT DISTINCT FROM c.region;

-- Counting and summing: int8 as PostgreSQL types them.
SELECT count(*) FROM orders;
SELECT count(*), count(DISTINCT customer_id) FROM orders;
SELECT region, count(*) AS n FROM orders GROUP BY region ORDER BY region;
SELECT sum(CAST(1 AS int)) AS s FROM orders;
SELECT max(amount) AS m, min(amount) AS lo FROM orders;
SELECT CAST(amount AS numeric(10,2)) AS a, amount * 2 AS doubled FROM orders ORDER BY order_id LIMIT 3;

-- Columns with their declared types (numeric(18,2), timestamptz, boolean, text).
SELECT order_id, amount, is_subscription FROM orders ORDER BY order_id LIMIT 5;
SELECT order_id, discount FROM orders ORDER BY order_id LIMIT 5;
SELECT order_id, order_ts FROM orders ORDER BY order_id LIMIT 5;
SELECT customer_id, signup_ts, marketing_consent FROM customers ORDER BY customer_id LIMIT 5;
SELECT rate_date, currency FROM fx_rates ORDER BY currency, rate_date LIMIT 3;
SELECT amount, CAST(amount AS float8) AS amount FROM orders ORDER BY order_id LIMIT 3;
SELECT order_id AS a, order_id AS a FROM orders ORDER BY order_id LIMIT 2;

-- Scalar subqueries: one row is a value, several are an error (21000), none are NULL.
SELECT (SELECT order_id FROM orders);
SELECT (SELECT order_id FROM orders ORDER BY order_id LIMIT 1) AS first_order;
SELECT (SELECT order_id FROM orders WHERE false) AS none;
SELECT (SELECT max(amount) FROM orders) AS top;
SELECT c.customer_id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.customer_id) AS n
  FROM customers c ORDER BY c.customer_id LIMIT 5;

-- Errors analysts make, each with PostgreSQL's SQLSTATE.
SELECT customer_id FROM orders, customers;
SELECT no_such_column FROM orders;
SELECT * FROM no_such_table;
SELECT 1 / 0;
SELECT CAST('x' AS int);
SELECT CAST(3000000000 AS int);
SELECT CAST(123456.7 AS numeric(5,2));
SELECT * FROM orders, orders;

-- Analyst SQL over the tables.
SELECT customer_id, count(*) AS orders, sum(amount_usd) > 0 AS bought
  FROM orders WHERE status = 'completed' GROUP BY customer_id ORDER BY customer_id LIMIT 10;
SELECT region, count(DISTINCT customer_id) AS buyers FROM orders GROUP BY region ORDER BY buyers DESC, region;
SELECT currency, count(*) FROM orders WHERE amount > 100 GROUP BY currency ORDER BY currency;
SELECT order_id FROM orders WHERE order_id LIKE 'o-00000001%' ORDER BY order_id;
SELECT order_id FROM orders WHERE order_id IN ('o-000000011', 'o-000000075') ORDER BY order_id;
SELECT channel, is_subscription, count(*) FROM orders GROUP BY channel, is_subscription ORDER BY 1, 2;
SELECT order_id, row_number() OVER (PARTITION BY customer_id ORDER BY order_ts, order_id) AS k
  FROM orders ORDER BY order_id LIMIT 5;
SELECT count(*) FILTER (WHERE is_subscription) AS subs FROM orders;
SELECT coalesce(referred_by, 'none') AS r, count(*) FROM customers GROUP BY 1 ORDER BY 1;
SELECT upper(region) AS r, length(order_id) AS l FROM orders ORDER BY order_id LIMIT 3;
SELECT order_id FROM orders ORDER BY amount DESC, order_id LIMIT 3 OFFSET 2;

-- Errors analysts and drivers meet.
SELECT nosuchcolumn FROM orders;
SELECT * FROM nosuchtable;
SELECT 1/0;
SELEC 1;
SELECT nosuchfunction(1);

-- Session statements.
SET statement_timeout = '5s';
SHOW statement_timeout;
RESET statement_timeout;
SHOW statement_timeout;
SET SESSION statement_timeout = 0;
RESET ALL;
SET LOCAL statement_timeout = '1s';
SELECT set_config('statement_timeout', '3s', false);
SELECT set_config('statement_timeout', 'soon', false);
SHOW statement_timeout;
SET TimeZone = 'UTC';
SELECT current_setting('TimeZone');

-- Cursors (psycopg and psycopg2 named cursors).
BEGIN;
DECLARE c1 CURSOR FOR SELECT order_id, amount FROM orders ORDER BY order_id;
FETCH 3 FROM c1;
FETCH NEXT FROM c1;
FETCH FORWARD 2 FROM c1;
MOVE FORWARD 5 IN c1;
FETCH 1 FROM c1;
CLOSE c1;
FETCH 1 FROM c1;
ROLLBACK;
BEGIN;
DECLARE "named" NO SCROLL CURSOR WITHOUT HOLD FOR SELECT region, count(*) AS n FROM orders GROUP BY region ORDER BY region;
FETCH ALL FROM "named";
COMMIT;
FETCH 1 FROM "named";
DECLARE outside CURSOR FOR SELECT 1;
DECLARE held CURSOR WITH HOLD FOR SELECT customer_id FROM customers ORDER BY customer_id;
FETCH 2 FROM held;
CLOSE ALL;
FETCH 2 FROM held;

-- Catalog queries (restricted to rebuy's warehouse tables).
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19), "char" (18) or oid (26); drivers read them alike
SELECT c.relname, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relname IN ('orders', 'customers', 'fx_rates') ORDER BY c.relname;
-- differs: types: information_schema's sql_identifier/character_data columns are text (25) where PostgreSQL's are name (19) and varchar (1043)
SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, datetime_precision, udt_name
  FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'orders'
  AND column_name IN ('order_id', 'amount', 'order_ts', 'is_subscription', 'amount_usd') ORDER BY column_name;
-- differs: types, values: rebuy's stored columns are NOT NULL where the data model requires a value; the PostgreSQL fixture declares only the keys NOT NULL
SELECT column_name, is_nullable FROM information_schema.columns
  WHERE table_schema = 'public' AND table_name = 'customers' ORDER BY ordinal_position;
-- differs: types: information_schema's sql_identifier/character_data columns are text (25) where PostgreSQL's are name (19) and varchar (1043)
SELECT tc.table_name, tc.constraint_name, tc.constraint_type, kcu.column_name, kcu.ordinal_position
  FROM information_schema.table_constraints tc
  JOIN information_schema.key_column_usage kcu
    ON tc.constraint_name = kcu.constraint_name AND tc.table_name = kcu.table_name
  WHERE tc.table_schema = 'public' AND tc.table_name IN ('orders', 'customers', 'fx_rates')
  ORDER BY tc.table_name, kcu.ordinal_position;
SELECT count(*) FROM information_schema.referential_constraints WHERE constraint_schema = 'public';
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19), and atttypid is regtype-like (2206) where PostgreSQL's is oid (26); the values agree
SELECT a.attname, a.atttypid, a.atttypmod FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  WHERE c.relname = 'orders' AND a.attnum > 0 AND a.attname IN ('order_id', 'amount', 'order_ts')
  ORDER BY a.attname;
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19), "char" (18) or oid (26); drivers read them alike
SELECT typname FROM pg_catalog.pg_type WHERE oid IN (16, 20, 23, 25, 1043, 1082, 1114, 1184, 1700) ORDER BY oid;
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19), "char" (18) or oid (26); drivers read them alike
SELECT current_database(), current_schema();
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19)
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  WHERE c.relname = 'orders' AND a.attname IN ('amount', 'discount') ORDER BY a.attname;

-- Keys in pg_catalog, as pgjdbc (getPrimaryKeys, getIndexInfo, getImportedKeys), SQLAlchemy
-- (get_pk_constraint) and Metabase read them; oids differ between servers, so the tables are
-- named, not numbered.
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19)
SELECT result.TABLE_CAT, result.TABLE_SCHEM, result.TABLE_NAME, result.COLUMN_NAME, result.KEY_SEQ, result.PK_NAME
  FROM (SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME,
    (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME,
    information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM
  FROM pg_catalog.pg_class ct JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid)
    JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)
    JOIN pg_catalog.pg_index i ON (a.attrelid = i.indrelid)
    JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid)
  WHERE true AND n.nspname = E'public' AND ct.relname = E'fx_rates' AND i.indisprimary) result
  WHERE result.A_ATTNUM = (result.KEYS).x ORDER BY result.table_name, result.pk_name, result.key_seq;
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19)
SELECT tmp.INDEX_NAME, tmp.NON_UNIQUE, tmp.TYPE, tmp.ORDINAL_POSITION,
    trim(both '"' from pg_catalog.pg_get_indexdef(tmp.CI_OID, tmp.ORDINAL_POSITION, false)) AS COLUMN_NAME,
    CASE tmp.AM_NAME WHEN 'btree' THEN CASE tmp.I_INDOPTION[tmp.ORDINAL_POSITION - 1] & 1::smallint
      WHEN 1 THEN 'D' ELSE 'A' END ELSE NULL END AS ASC_OR_DESC, tmp.FILTER_CONDITION
  FROM (SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, ct.relname AS TABLE_NAME,
    NOT i.indisunique AS NON_UNIQUE, NULL AS INDEX_QUALIFIER, ci.relname AS INDEX_NAME,
    CASE i.indisclustered WHEN true THEN 1 ELSE CASE am.amname WHEN 'hash' THEN 2 ELSE 3 END END AS TYPE,
    (information_schema._pg_expandarray(i.indkey)).n AS ORDINAL_POSITION,
    pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS FILTER_CONDITION, ci.oid AS CI_OID,
    i.indoption AS I_INDOPTION, am.amname AS AM_NAME
  FROM pg_catalog.pg_class ct JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)
    JOIN pg_catalog.pg_index i ON (ct.oid = i.indrelid) JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid)
    JOIN pg_catalog.pg_am am ON (ci.relam = am.oid)
  WHERE true AND n.nspname = E'public' AND ct.relname = E'fx_rates') AS tmp
  ORDER BY NON_UNIQUE, TYPE, INDEX_NAME, ORDINAL_POSITION;
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19); generate_series numbers are int8 (20) where PostgreSQL's generate_series(int, int) gives int4 (23)
SELECT NULL::text AS PKTABLE_CAT, pkn.nspname AS PKTABLE_SCHEM, pkc.relname AS PKTABLE_NAME, pka.attname AS PKCOLUMN_NAME,
    fkc.relname AS FKTABLE_NAME, fka.attname AS FKCOLUMN_NAME, pos.n AS KEY_SEQ, con.conname AS FK_NAME, pkic.relname AS PK_NAME
  FROM pg_catalog.pg_namespace pkn, pg_catalog.pg_class pkc, pg_catalog.pg_attribute pka,
    pg_catalog.pg_namespace fkn, pg_catalog.pg_class fkc, pg_catalog.pg_attribute fka,
    pg_catalog.pg_constraint con, pg_catalog.generate_series(1, 32) pos(n), pg_catalog.pg_class pkic
  WHERE pkn.oid = pkc.relnamespace AND pkc.oid = pka.attrelid AND pka.attnum = con.confkey[pos.n]
    AND con.confrelid = pkc.oid AND fkn.oid = fkc.relnamespace AND fkc.oid = fka.attrelid
    AND fka.attnum = con.conkey[pos.n] AND con.conrelid = fkc.oid AND con.contype = 'f'
    AND (pkic.relkind = 'i' OR pkic.relkind = 'I') AND pkic.oid = con.conindid
    AND fkn.nspname = E'public' AND fkc.relname = E'orders'
  ORDER BY pkn.nspname, pkc.relname, con.conname, pos.n;
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19)
SELECT attr.relname, array_agg(CAST(attr.attname AS TEXT) ORDER BY attr.ord) AS cols, attr.conname
  FROM (SELECT con.relname, con.conname, con.ord, a.attname
    FROM pg_catalog.pg_attribute a JOIN (SELECT c.relname, k.conrelid, k.conname,
        unnest(k.conkey) AS attnum, generate_subscripts(k.conkey, 1) AS ord
      FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
      WHERE k.contype = 'p' AND c.relname IN ('orders', 'customers', 'fx_rates')) AS con
    ON a.attnum = con.attnum AND a.attrelid = con.conrelid) AS attr
  GROUP BY attr.relname, attr.conname ORDER BY attr.relname;
-- differs: types, values: catalog text columns are text (25) where PostgreSQL's are name (19); array_length is int8 (20) where PostgreSQL's is int4 (23), so its binary value is 8 bytes, not 4
SELECT k.conname, k.conkey, k.conkey[1], array_length(k.conkey, 1) AS n, array_lower(k.conkey, 1) AS lo,
    array_upper(k.conkey, 1) AS hi, 2 = ANY(k.conkey) AS has_second
  FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
  WHERE c.relname IN ('orders', 'customers', 'fx_rates') ORDER BY k.conname;
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19)
SELECT c.relname, i.indisprimary, i.indisunique, i.indnatts FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
  WHERE t.relname IN ('orders', 'customers', 'fx_rates') ORDER BY c.relname;
SELECT setting FROM pg_catalog.pg_settings WHERE name = 'max_index_keys';

-- Npgsql's type loading (Power BI): arrays found by their receive function, joined by oid,
-- and regproc columns compared with names and cast to oids.
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19) or "char" (18)
SELECT typ.typname, CASE WHEN proc.proname = 'array_recv' THEN 'a' ELSE typ.typtype END AS typtype, typ.typelem
  FROM pg_type AS typ LEFT JOIN pg_proc AS proc ON proc.oid = typ.typreceive
  WHERE typ.typname IN ('int4', '_int4', 'numeric', '_text', 'timestamptz') ORDER BY typ.oid;
-- differs: types: catalog text columns are text (25) where PostgreSQL's are name (19)
SELECT typname, typinput = 'pg_catalog.array_in'::regproc AS is_array, typinput::oid AS input_oid
  FROM pg_type WHERE typname IN ('int4', '_int4') ORDER BY oid;
