-- tier_stats: how the member tiers perform. Grain: member_tier (of the customers record; NULL
-- for buyers with no record or no tier). Counts buyers: customers with 1+ purchase days up to
-- as_of() (a member who never bought is in no denominator here; see lifecycle_funnel).
--   customers               buyers of the tier
--   repeat_customers        of them, with 2+ purchase days; repeat_share = repeat / customers
--   purchases_per_customer  mean purchase days per buyer
--   median_interval_days    median over all gaps between consecutive purchase days of the
--                           tier's buyers (as interval_stats)
--   aov_usd                 the tier's revenue_usd / its qualifying orders
--   revenue_usd, revenue_share  the tier's revenue and its share of all buyers' revenue
--   mean_clv_12m_usd        mean of customer_clv.clv_12m_usd over the tier's buyers
-- Per customer it reads customer_facts (kept by ingest) and customer_clv.
CREATE VIEW tier_stats AS
WITH cust AS (
    SELECT f.customer_id, c.member_tier, f.purchase_days, f.order_count, f.revenue_usd, f.gaps
    FROM customer_facts f
    LEFT JOIN customers c ON c.customer_id = f.customer_id
),
gap_stats AS (
    SELECT member_tier, median(CAST(gap AS DOUBLE)) AS median_interval_days
    FROM (SELECT member_tier, unnest(gaps) AS gap FROM cust)
    GROUP BY member_tier
),
clv AS (
    SELECT c.member_tier, avg(v.clv_12m_usd) AS mean_clv_12m_usd
    FROM customer_clv v
    JOIN cust c ON c.customer_id = v.customer_id
    GROUP BY c.member_tier
),
tiers AS (
    SELECT member_tier,
           COUNT(*) AS customers,
           SUM(CASE WHEN purchase_days >= 2 THEN 1 ELSE 0 END) AS repeat_customers,
           avg(CAST(purchase_days AS DOUBLE)) AS purchases_per_customer,
           SUM(revenue_usd) AS revenue_usd,
           SUM(order_count) AS orders
    FROM cust
    GROUP BY member_tier
)
SELECT t.member_tier,
       t.customers,
       t.repeat_customers,
       CAST(t.repeat_customers AS DOUBLE) / t.customers AS repeat_share,
       t.purchases_per_customer,
       g.median_interval_days,
       t.revenue_usd / t.orders AS aov_usd,
       t.revenue_usd,
       t.revenue_usd / NULLIF(SUM(t.revenue_usd) OVER (), 0) AS revenue_share,
       v.mean_clv_12m_usd
FROM tiers t
LEFT JOIN gap_stats g ON (g.member_tier IS NOT DISTINCT FROM t.member_tier)
LEFT JOIN clv v ON (v.member_tier IS NOT DISTINCT FROM t.member_tier)
