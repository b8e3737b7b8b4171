-- cohort_retention: acquisition cohort (UTC month of the first purchase) × months since the
-- first purchase (0 = the cohort month itself).
--   cohort_customers   customers acquired in the cohort month
--   active_customers   of them, those with a purchase in that month
--   retention          active_customers / cohort_customers
--   revenue_usd        their purchases in that month
--   is_mature          true when that calendar month has ended on or before as_of()
-- Per customer it reads customer_facts (first purchase, months with purchases and their USD
-- totals), kept by ingest for the current data.
CREATE VIEW cohort_retention AS
WITH cust AS (
    SELECT to_char(first_purchase_ts, '%Y-%m') AS cohort_month,
           CAST(date_part('year', first_purchase_ts) * 12 + date_part('month', first_purchase_ts) AS BIGINT) AS cohort_index,
           months
    FROM customer_facts
),
sized AS (
    SELECT cohort_month, cohort_index, COUNT(*) AS cohort_customers
    FROM cust
    GROUP BY 1, 2
),
per_month AS (
    SELECT cohort_month, unnest(months) AS m
    FROM cust
),
activity AS (
    SELECT cohort_month, m['month'] AS month_index, m['usd'] AS usd
    FROM per_month
)
SELECT a.cohort_month,
       a.month_index - s.cohort_index AS months_since_first,
       s.cohort_customers,
       COUNT(*) AS active_customers,
       CAST(COUNT(*) AS DOUBLE) / s.cohort_customers AS retention,
       SUM(a.usd) AS revenue_usd,
       a.month_index
         < CAST(date_part('year', as_of() + INTERVAL '1 day') * 12 + date_part('month', as_of() + INTERVAL '1 day') AS BIGINT) AS is_mature
FROM activity a
JOIN sized s ON s.cohort_month = a.cohort_month
GROUP BY a.cohort_month, a.month_index, s.cohort_index, s.cohort_customers
