-- lifecycle_funnel: from signup to the third purchase, per signup month (UTC, YYYY-MM) × region.
-- Grain: signup_month × region. Region: the customer record's, else that of the first purchase.
-- Who enters: every customer whose signup_ts is on or before as_of(); a customer with purchases
-- but no signup_ts (guest checkout, no customers row) enters at the first purchase and is
-- counted in the row of their region with signup_month NULL. Steps count purchase days up to
-- as_of() (several orders on one UTC day are one purchase, as everywhere in rebuy).
--   signed_up             customers who entered
--   first_purchase        of them, with 1+ purchase days; second_purchase 2+; third_purchase 3+
--   signup_to_first_rate  first_purchase / signed_up (1 in the signup_month NULL rows)
--   first_to_second_rate  second_purchase / first_purchase (NULL when first_purchase = 0)
--   second_to_third_rate  third_purchase / second_purchase (NULL when second_purchase = 0)
--   median_days_signup_to_first   median of (first purchase day - signup day) over those with
--                                 a first purchase; _first_to_second and _second_to_third over
--                                 those who reached the later step
--   is_mature_<N>d        every customer of the row entered at least N days (30, 90, 365)
--                         before as_of(), so had N days to take the steps
-- Per customer it reads customer_facts (first and second purchase day, gaps), kept by ingest.
CREATE VIEW lifecycle_funnel AS
WITH signed AS (
    SELECT customer_id, region, signup_ts
    FROM customers
    WHERE signup_ts IS NULL OR CAST(signup_ts AS DATE) <= as_of()
),
entered AS (
    SELECT CASE WHEN s.signup_ts IS NOT NULL THEN to_char(s.signup_ts, '%Y-%m') END AS signup_month,
           COALESCE(s.region, f.first_region) AS region,
           CAST(CAST(s.signup_ts AS DATE) AS INT) AS signup_day,
           COALESCE(CAST(CAST(s.signup_ts AS DATE) AS INT), f.first_day) AS entry_day,
           f.first_day,
           f.second_day,
           CAST(f.second_day + f.gaps[2] AS INT) AS third_day
    FROM signed s
    FULL JOIN customer_facts f ON f.customer_id = s.customer_id
    WHERE s.signup_ts IS NOT NULL OR f.customer_id IS NOT NULL
)
SELECT signup_month,
       region,
       COUNT(*) AS signed_up,
       COUNT(first_day) AS first_purchase,
       COUNT(second_day) AS second_purchase,
       COUNT(third_day) AS third_purchase,
       CAST(COUNT(first_day) AS DOUBLE) / COUNT(*) AS signup_to_first_rate,
       CAST(COUNT(second_day) AS DOUBLE) / NULLIF(COUNT(first_day), 0) AS first_to_second_rate,
       CAST(COUNT(third_day) AS DOUBLE) / NULLIF(COUNT(second_day), 0) AS second_to_third_rate,
       median(CAST(first_day - signup_day AS DOUBLE)) AS median_days_signup_to_first,
       median(CAST(second_day - first_day AS DOUBLE)) AS median_days_first_to_second,
       median(CAST(third_day - second_day AS DOUBLE)) AS median_days_second_to_third,
       CAST(as_of() AS INT) - MAX(entry_day) >= 30 AS is_mature_30d,
       CAST(as_of() AS INT) - MAX(entry_day) >= 90 AS is_mature_90d,
       CAST(as_of() AS INT) - MAX(entry_day) >= 365 AS is_mature_365d
FROM entered
GROUP BY signup_month, region
