-- cohort_retention: acquisition cohort (UTC month of the first purchase) × months since the
-- first purchase (0 = the cohort month itself).
--   cohort_customers   customers acquired in the cohort month
--   active_customers   of them, those with a purchase in that month
--   retention          active_customers / cohort_customers
--   revenue_usd        their purchases in that month
--   is_mature          true when that calendar month has ended on or before as_of()
CREATE VIEW cohort_retention AS
WITH firsts AS (
    SELECT customer_id, MIN(order_ts) AS first_ts
    FROM purchases
    GROUP BY customer_id
),
sized AS (
    SELECT to_char(first_ts, '%Y-%m') AS cohort_month,
           CAST(date_part('year', first_ts) * 12 + date_part('month', first_ts) AS BIGINT) AS cohort_index,
           COUNT(*) AS cohort_customers
    FROM firsts
    GROUP BY 1, 2
),
activity AS (
    SELECT to_char(f.first_ts, '%Y-%m') AS cohort_month,
           CAST((date_part('year', p.order_ts) * 12 + date_part('month', p.order_ts))
              - (date_part('year', f.first_ts) * 12 + date_part('month', f.first_ts)) AS BIGINT) AS months_since_first,
           p.customer_id,
           p.amount_usd
    FROM purchases p
    JOIN firsts f ON f.customer_id = p.customer_id
)
SELECT a.cohort_month,
       a.months_since_first,
       s.cohort_customers,
       COUNT(DISTINCT a.customer_id) AS active_customers,
       CAST(COUNT(DISTINCT a.customer_id) AS DOUBLE) / s.cohort_customers AS retention,
       SUM(a.amount_usd) AS revenue_usd,
       s.cohort_index + a.months_since_first
         < CAST(date_part('year', as_of() + INTERVAL '1 day') * 12 + date_part('month', as_of() + INTERVAL '1 day') AS BIGINT) AS is_mature
FROM activity a
JOIN sized s ON s.cohort_month = a.cohort_month
GROUP BY a.cohort_month, a.months_since_first, s.cohort_customers, s.cohort_index
