-- repurchase_rate: repurchase by acquisition cohort.
-- Grain: region × category × first_purchase_month, where region and category are those of the
-- customer's first purchase and first_purchase_month its UTC month (YYYY-MM).
-- Three different "repeat" numbers exist in the trade; this view gives the cohort ones, and
-- `monthly_repeat_rates` the period ones, so numbers reconcile with other tools:
--   repurchase_rate               returning customers of the cohort: share of the cohort's
--                                 customers with 2+ purchase days up to as_of()
--   cohort_repurchase_rate_<N>d   cohort N-day rate: share whose second purchase day came within
--                                 N days of the first (N = 30, 90, 180, 365); is_mature_<N>d is
--                                 true when N days have passed since the cohort's last first
--                                 purchase, i.e. the rate can no longer rise
--   repeat_revenue_share          share of the cohort's revenue_usd made on repeat purchase days
-- Per customer it reads customer_facts (first purchase, purchase days, day totals, second
-- purchase day), kept by ingest for the current data.
CREATE VIEW repurchase_rate AS
WITH cust AS (
    SELECT customer_id,
           first_region AS region,
           first_category AS category,
           to_char(first_purchase_ts, '%Y-%m') AS first_purchase_month,
           first_day,
           purchase_days,
           days_usd AS revenue_usd,
           days_usd - first_day_usd AS repeat_revenue_usd,
           second_day - first_day AS days_to_second
    FROM customer_facts
)
SELECT region,
       category,
       first_purchase_month,
       COUNT(*) AS customers,
       SUM(CASE WHEN purchase_days >= 2 THEN 1 ELSE 0 END) AS repeat_customers,
       CAST(SUM(CASE WHEN purchase_days >= 2 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS repurchase_rate,
       SUM(revenue_usd) AS revenue_usd,
       SUM(repeat_revenue_usd) AS repeat_revenue_usd,
       CASE WHEN SUM(revenue_usd) > 0 THEN SUM(repeat_revenue_usd) / SUM(revenue_usd) ELSE 0.0 END AS repeat_revenue_share,
       CAST(SUM(CASE WHEN days_to_second <= 30 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS cohort_repurchase_rate_30d,
       CAST(SUM(CASE WHEN days_to_second <= 90 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS cohort_repurchase_rate_90d,
       CAST(SUM(CASE WHEN days_to_second <= 180 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS cohort_repurchase_rate_180d,
       CAST(SUM(CASE WHEN days_to_second <= 365 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS cohort_repurchase_rate_365d,
       CAST(as_of() AS INT) - MAX(first_day) >= 30 AS is_mature_30d,
       CAST(as_of() AS INT) - MAX(first_day) >= 90 AS is_mature_90d,
       CAST(as_of() AS INT) - MAX(first_day) >= 180 AS is_mature_180d,
       CAST(as_of() AS INT) - MAX(first_day) >= 365 AS is_mature_365d
FROM cust
GROUP BY region, category, first_purchase_month
