-- referral_stats: how much of the new business referrals bring, and how referred customers
-- repurchase. Grain: month (UTC, YYYY-MM) of the customers' first purchase.
--   new_customers               customers whose first purchase day is in the month
--   referred_new_customers      of them, those whose customers.referred_by is set (not empty)
--   referral_share              referred_new_customers / new_customers
--   active_referrers            distinct referrers of the month's referred new customers
--   referred_per_referrer       referred_new_customers / active_referrers (NULL without any)
--   referred_repurchase_rate_<N>d, not_referred_repurchase_rate_<N>d   share of the month's
--                               referred (resp. not referred) new customers whose second
--                               purchase day came within N days (90, 365) of the first, as
--                               repurchase_rate's cohort rates; NULL when the group is empty
--   is_mature_<N>d              N days have passed since the month's last first purchase
-- Per customer it reads customer_facts (kept by ingest).
CREATE VIEW referral_stats AS
WITH cust AS (
    SELECT to_char(f.first_purchase_ts, '%Y-%m') AS month,
           f.first_day,
           f.second_day - f.first_day AS days_to_second,
           NULLIF(c.referred_by, '') AS referred_by
    FROM customer_facts f
    LEFT JOIN customers c ON c.customer_id = f.customer_id
)
SELECT month,
       COUNT(*) AS new_customers,
       COUNT(referred_by) AS referred_new_customers,
       CAST(COUNT(referred_by) AS DOUBLE) / COUNT(*) AS referral_share,
       COUNT(DISTINCT referred_by) AS active_referrers,
       CAST(COUNT(referred_by) AS DOUBLE) / NULLIF(COUNT(DISTINCT referred_by), 0) AS referred_per_referrer,
       CAST(SUM(CASE WHEN referred_by IS NOT NULL AND days_to_second <= 90 THEN 1 ELSE 0 END) AS DOUBLE)
         / NULLIF(COUNT(referred_by), 0) AS referred_repurchase_rate_90d,
       CAST(SUM(CASE WHEN referred_by IS NULL AND days_to_second <= 90 THEN 1 ELSE 0 END) AS DOUBLE)
         / NULLIF(COUNT(*) - COUNT(referred_by), 0) AS not_referred_repurchase_rate_90d,
       CAST(SUM(CASE WHEN referred_by IS NOT NULL AND days_to_second <= 365 THEN 1 ELSE 0 END) AS DOUBLE)
         / NULLIF(COUNT(referred_by), 0) AS referred_repurchase_rate_365d,
       CAST(SUM(CASE WHEN referred_by IS NULL AND days_to_second <= 365 THEN 1 ELSE 0 END) AS DOUBLE)
         / NULLIF(COUNT(*) - COUNT(referred_by), 0) AS not_referred_repurchase_rate_365d,
       CAST(as_of() AS INT) - MAX(first_day) >= 90 AS is_mature_90d,
       CAST(as_of() AS INT) - MAX(first_day) >= 365 AS is_mature_365d
FROM cust
GROUP BY month
