-- customer_layers: every customer with a purchase on or before as_of() in exactly one layer.
-- Grain: customer_id. Precedence (first that applies), thresholds from the session settings
-- (SET rebuy.<name> = <number>; defaults in brackets):
--   1 churned     no purchase for churned_days [180] or more (recency_days >= churned_days)
--   2 dormant     no purchase for dormant_days [90] or more
--   3 new         signed up within new_days [30] and has purchased; without a signup date,
--                 first purchase within new_days
--   4 high_value  the top customers by revenue_usd who together make high_value_share [0.6] of
--                 all customers' revenue_usd (ranked by revenue, then customer_id)
--   5 potential   potential_min_purchases [2] to potential_max_purchases [3] purchase days
--   6 active      everyone else
-- Flag high_potential_dormant: dormant with high_potential_min_purchases [3]+ purchase days.
-- The revenue ranking comes from customer_facts (kept by ingest with the summary).
CREATE VIEW customer_layers AS
WITH ranked AS (
    -- customer_summary's columns that the layers need, from the same customer_facts row
    SELECT f.customer_id,
           CAST(as_of() AS INT) - f.last_day AS recency_days,
           CAST(as_of() AS INT) - f.first_day AS tenure_days,
           f.purchase_days,
           f.revenue_usd,
           COALESCE(f.region, c.region) AS region,
           c.member_tier,
           COALESCE(c.marketing_consent, false) AS marketing_consent,
           c.signup_ts,
           f.revenue_before,
           f.revenue_total
    FROM customer_facts f
    LEFT JOIN customers c ON c.customer_id = f.customer_id
),
flags AS (
    SELECT *,
           recency_days >= rebuy_setting('churned_days') AS is_churned,
           recency_days >= rebuy_setting('dormant_days') AS is_dormant,
           CASE WHEN signup_ts IS NOT NULL
                THEN CAST(as_of() AS INT) - CAST(CAST(signup_ts AS DATE) AS INT) < rebuy_setting('new_days')
                 AND CAST(signup_ts AS DATE) <= as_of()
                ELSE tenure_days < rebuy_setting('new_days') END AS is_new,
           COALESCE(revenue_before, 0) < rebuy_setting('high_value_share') * revenue_total AS is_high_value,
           purchase_days BETWEEN rebuy_setting('potential_min_purchases') AND rebuy_setting('potential_max_purchases') AS is_potential
    FROM ranked
)
SELECT customer_id,
       CASE WHEN is_churned THEN 'churned'
            WHEN is_dormant THEN 'dormant'
            WHEN is_new THEN 'new'
            WHEN is_high_value THEN 'high_value'
            WHEN is_potential THEN 'potential'
            ELSE 'active' END AS layer,
       (is_dormant AND NOT is_churned AND purchase_days >= rebuy_setting('high_potential_min_purchases')) AS high_potential_dormant,
       recency_days,
       tenure_days,
       purchase_days,
       revenue_usd,
       region,
       member_tier,
       marketing_consent
FROM flags
