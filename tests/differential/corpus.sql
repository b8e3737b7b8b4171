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
SELECT CAST('2024-03-05 10:20:30+00' AS timestamptz) AS t;
SELECT CAST('2024-03-05 10:20:30' AS timestamp) AS t;
SELECT CAST('2024-03-05' AS date) AS d;
-- differs: types: rebuy has one string type; varchar is reported as text (clients read both alike)
SELECT 'abc' AS s, CAST('abc' AS varchar) AS v, CAST('abc' AS text) AS t;
SELECT 'abc' AS s, CAST('abc' AS text) AS t;

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
