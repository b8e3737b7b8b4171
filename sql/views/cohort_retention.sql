-- cohort_retention: acquisition cohort (UTC month of the first purchase) × months since the
-- first purchase (0 = the cohort month itself).
--   cohort_customers   customers acquired in the cohort month
--   active_customers   of them, those with a purchase in that month
--   retention          active_customers / cohort_customers
--   revenue_usd        their purchases in that month
--   is_mature          true when that calendar month has ended on or before as_of()
-- Per customer it reads customer_facts (first purchase, months with purchases and their USD
-- totals), kept by ingest for the current data. The cohort is the first of a customer's
-- purchase months (months is in order); months are counted as year * 12 + month and the
-- cohort label is made only for the result rows.
CREATE VIEW cohort_retention AS
WITH cust AS (
    SELECT months[1]['month'] AS cohort_index, months
    FROM customer_facts
),
sized AS (
    SELECT cohort_index, COUNT(*) AS cohort_customers
    FROM cust
    GROUP BY cohort_index
),
activity AS (
    SELECT cohort_index, m['month'] AS month_index, COUNT(*) AS active_customers, SUM(m['usd']) AS revenue_usd
    FROM (SELECT cohort_index, unnest(months) AS m FROM cust)
    GROUP BY 1, 2
)
SELECT to_char(make_date(CAST((a.cohort_index - 1) / 12 AS INT), CAST((a.cohort_index - 1) % 12 + 1 AS INT), 1), '%Y-%m') AS cohort_month,
       a.month_index - a.cohort_index AS months_since_first,
       s.cohort_customers,
       a.active_customers,
       CAST(a.active_customers AS DOUBLE) / s.cohort_customers AS retention,
       a.revenue_usd,
       a.month_index
         < CAST(date_part('year', as_of() + INTERVAL '1 day') * 12 + date_part('month', as_of() + INTERVAL '1 day') AS BIGINT) AS is_mature
FROM activity a
JOIN sized s ON s.cohort_index = a.cohort_index
