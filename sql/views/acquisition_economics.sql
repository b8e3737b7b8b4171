-- acquisition_economics: what a new customer costs and brings back, per acquisition cohort.
-- Grain: first_purchase_month (UTC, YYYY-MM) × acquisition_channel (the channel of the first
-- purchase) × region (of the first purchase); plus cells with spend but no new customer.
-- (Two first orders at the very same instant: channel and region are each the smallest of
-- theirs, as customer_facts' first_* columns are.)
--   new_customers       customers whose first purchase is in the cell
--   spend_usd           marketing_spend (amount_usd, spend_date up to as_of()) of the month,
--                       channel and region. Spend with a NULL region is shared over the
--                       regions in which the channel acquired customers that month, in
--                       proportion to their new customers; a month in which the channel
--                       acquired nobody keeps it in a cell with region NULL. So the view's
--                       spend_usd adds up to all spend up to as_of(), none is lost.
--   cac_usd             spend_usd / new_customers (NULL when new_customers = 0; 0 when no
--                       spend is recorded for the cell: organic and direct, or months before
--                       spend was loaded; LTV/CAC is then NULL)
--   revenue_per_customer_<N>d   USD of the cell's customers' purchases made within N days
--                       (30, 90, 180, 365) of their first purchase day, first purchase
--                       included, per new customer
--   is_mature_<N>d      N days have passed since the cell's last first purchase (the N-day
--                       revenue can no longer rise)
--   predicted_clv_12m_usd   mean of customer_clv.clv_12m_usd over the new customers
--   ltv_cac_365d        revenue_per_customer_365d / cac_usd; predicted_ltv_cac
--                       predicted_clv_12m_usd / cac_usd (NULL when cac_usd is 0 or NULL)
--   payback_days        the first day after the first purchase (0 = the day itself) on which
--                       the cell's cumulative revenue per customer reaches cac_usd; NULL if it
--                       has not yet
-- Per customer it reads customer_facts (first purchase, channel, region), kept by ingest; the
-- revenue curves read purchases. Cells are joined on all three keys with IS NOT DISTINCT FROM
-- (region and channel may be NULL): mixed with `=`, the engine would hash on the month alone
-- and compare every cell of the month.
CREATE VIEW acquisition_economics AS
WITH cust AS (
    SELECT customer_id,
           -- months as year * 12 + month - 1 while joining, formatted once at the end
           CAST(date_part('year', first_purchase_ts) * 12 + date_part('month', first_purchase_ts) - 1 AS BIGINT) AS month,
           first_channel AS channel,
           first_region AS region,
           first_day
    FROM customer_facts
),
cohorts AS (
    SELECT month, channel, region, COUNT(*) AS new_customers, MAX(first_day) AS last_first_day
    FROM cust
    GROUP BY month, channel, region
),
offsets AS (
    SELECT c.month, c.channel, c.region, p.day_number - c.first_day AS day_offset, SUM(p.amount_usd) AS usd
    FROM purchases p
    JOIN cust c ON c.customer_id = p.customer_id
    GROUP BY 1, 2, 3, 4
),
clv AS (
    SELECT c.month, c.channel, c.region, avg(v.clv_12m_usd) AS predicted_clv_12m_usd
    FROM customer_clv v
    JOIN cust c ON c.customer_id = v.customer_id
    GROUP BY 1, 2, 3
),
spend AS (
    SELECT CAST(date_part('year', spend_date) * 12 + date_part('month', spend_date) - 1 AS BIGINT) AS month,
           channel, region, SUM(amount_usd) AS usd
    FROM marketing_spend
    WHERE spend_date <= as_of()
    GROUP BY 1, 2, 3
),
channel_months AS (
    SELECT month, channel, SUM(new_customers) AS new_customers
    FROM cohorts
    GROUP BY month, channel
),
allocated AS (
    SELECT month, channel, region, usd FROM spend WHERE region IS NOT NULL
    UNION ALL
    SELECT s.month, s.channel, k.region, s.usd * CAST(k.new_customers AS DOUBLE) / m.new_customers
    FROM spend s
    JOIN channel_months m ON (m.month IS NOT DISTINCT FROM s.month) AND (m.channel IS NOT DISTINCT FROM s.channel)
    JOIN cohorts k ON (k.month IS NOT DISTINCT FROM s.month) AND (k.channel IS NOT DISTINCT FROM s.channel)
    WHERE s.region IS NULL
    UNION ALL
    SELECT s.month, s.channel, CAST(NULL AS VARCHAR), s.usd
    FROM spend s
    LEFT JOIN channel_months m ON (m.month IS NOT DISTINCT FROM s.month) AND (m.channel IS NOT DISTINCT FROM s.channel)
    WHERE s.region IS NULL AND m.new_customers IS NULL
),
spend_cells AS (
    SELECT month, channel, region, SUM(usd) AS spend_usd
    FROM allocated
    GROUP BY month, channel, region
),
cells AS (
    SELECT COALESCE(k.month, s.month) AS month,
           COALESCE(k.channel, s.channel) AS channel,
           COALESCE(k.region, s.region) AS region,
           COALESCE(k.new_customers, 0) AS new_customers,
           COALESCE(s.spend_usd, 0.0) AS spend_usd,
           k.last_first_day
    FROM cohorts k
    FULL JOIN spend_cells s
      ON (s.month IS NOT DISTINCT FROM k.month) AND (s.channel IS NOT DISTINCT FROM k.channel) AND (s.region IS NOT DISTINCT FROM k.region)
),
curve AS (
    SELECT month, channel, region, day_offset, usd,
           SUM(usd) OVER (PARTITION BY month, channel, region ORDER BY day_offset
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cumulative_usd
    FROM offsets
),
returns AS (
    -- the N-day revenue and the payback day from one pass over the cell's revenue curve
    SELECT u.month, u.channel, u.region,
           SUM(CASE WHEN u.day_offset <= 30 THEN u.usd ELSE 0.0 END) AS usd_30d,
           SUM(CASE WHEN u.day_offset <= 90 THEN u.usd ELSE 0.0 END) AS usd_90d,
           SUM(CASE WHEN u.day_offset <= 180 THEN u.usd ELSE 0.0 END) AS usd_180d,
           SUM(CASE WHEN u.day_offset <= 365 THEN u.usd ELSE 0.0 END) AS usd_365d,
           MIN(CASE WHEN u.cumulative_usd >= c.spend_usd THEN u.day_offset END) AS payback_days
    FROM curve u
    JOIN cells c
      ON (c.month IS NOT DISTINCT FROM u.month) AND (c.channel IS NOT DISTINCT FROM u.channel) AND (c.region IS NOT DISTINCT FROM u.region)
    GROUP BY 1, 2, 3
),
per_customer AS (
    SELECT c.month, c.channel, c.region, c.new_customers, c.spend_usd, c.last_first_day,
           c.spend_usd / NULLIF(c.new_customers, 0) AS cac_usd,
           r.usd_30d / NULLIF(c.new_customers, 0) AS revenue_per_customer_30d,
           r.usd_90d / NULLIF(c.new_customers, 0) AS revenue_per_customer_90d,
           r.usd_180d / NULLIF(c.new_customers, 0) AS revenue_per_customer_180d,
           r.usd_365d / NULLIF(c.new_customers, 0) AS revenue_per_customer_365d,
           v.predicted_clv_12m_usd,
           r.payback_days
    FROM cells c
    LEFT JOIN returns r
      ON (r.month IS NOT DISTINCT FROM c.month) AND (r.channel IS NOT DISTINCT FROM c.channel) AND (r.region IS NOT DISTINCT FROM c.region)
    LEFT JOIN clv v
      ON (v.month IS NOT DISTINCT FROM c.month) AND (v.channel IS NOT DISTINCT FROM c.channel) AND (v.region IS NOT DISTINCT FROM c.region)
)
SELECT to_char(make_date(CAST(month / 12 AS INT), CAST(month % 12 + 1 AS INT), 1), '%Y-%m') AS first_purchase_month,
       CAST(channel AS VARCHAR) AS acquisition_channel,
       CAST(region AS VARCHAR) AS region,
       new_customers,
       spend_usd,
       cac_usd,
       revenue_per_customer_30d,
       revenue_per_customer_90d,
       revenue_per_customer_180d,
       revenue_per_customer_365d,
       CAST(as_of() AS INT) - last_first_day >= 30 AS is_mature_30d,
       CAST(as_of() AS INT) - last_first_day >= 90 AS is_mature_90d,
       CAST(as_of() AS INT) - last_first_day >= 180 AS is_mature_180d,
       CAST(as_of() AS INT) - last_first_day >= 365 AS is_mature_365d,
       predicted_clv_12m_usd,
       revenue_per_customer_365d / NULLIF(cac_usd, 0) AS ltv_cac_365d,
       predicted_clv_12m_usd / NULLIF(cac_usd, 0) AS predicted_ltv_cac,
       payback_days
FROM per_customer
