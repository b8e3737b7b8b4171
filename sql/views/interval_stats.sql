-- interval_stats: repurchase intervals by category and region (those of the customer's first
-- purchase). Gaps are between a customer's consecutive purchase days.
--   customers, repeat_customers      customers, and those with 2+ purchase days
--   median_gap_days, p90_gap_days, mean_gap_days   over all gaps of the group's customers
--   share_high_frequency, share_regular, share_scene_triggered, share_loyalty
--       share of the repeat customers in each repurchase_cycle_class of their median gap
-- Percentiles are exact (continuous, as PostgreSQL's percentile_cont). Per customer it reads
-- customer_facts (gaps, median gap, first category and region), kept by ingest.
CREATE VIEW interval_stats AS
WITH cust AS (
    SELECT customer_id,
           first_category AS category,
           first_region AS region,
           gaps,
           median_interval_days AS median_gap
    FROM customer_facts
),
gaps AS (
    SELECT category, region, unnest(gaps) AS gap
    FROM cust
),
gap_stats AS (
    SELECT category, region,
           median(gap) AS median_gap_days,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY gap) AS p90_gap_days,
           avg(gap) AS mean_gap_days
    FROM gaps
    GROUP BY category, region
),
class_stats AS (
    SELECT category, region,
           COUNT(*) AS customers,
           COUNT(median_gap) AS repeat_customers,
           SUM(CASE WHEN repurchase_cycle_class(median_gap) = 'high_frequency' THEN 1 ELSE 0 END) AS n_high_frequency,
           SUM(CASE WHEN repurchase_cycle_class(median_gap) = 'regular' THEN 1 ELSE 0 END) AS n_regular,
           SUM(CASE WHEN repurchase_cycle_class(median_gap) = 'scene_triggered' THEN 1 ELSE 0 END) AS n_scene_triggered,
           SUM(CASE WHEN repurchase_cycle_class(median_gap) = 'loyalty' THEN 1 ELSE 0 END) AS n_loyalty
    FROM cust
    GROUP BY category, region
)
SELECT c.category, c.region, c.customers, c.repeat_customers,
       CAST(g.median_gap_days AS DOUBLE) AS median_gap_days,
       CAST(g.p90_gap_days AS DOUBLE) AS p90_gap_days,
       g.mean_gap_days,
       CAST(c.n_high_frequency AS DOUBLE) / NULLIF(c.repeat_customers, 0) AS share_high_frequency,
       CAST(c.n_regular AS DOUBLE) / NULLIF(c.repeat_customers, 0) AS share_regular,
       CAST(c.n_scene_triggered AS DOUBLE) / NULLIF(c.repeat_customers, 0) AS share_scene_triggered,
       CAST(c.n_loyalty AS DOUBLE) / NULLIF(c.repeat_customers, 0) AS share_loyalty
FROM class_stats c
LEFT JOIN gap_stats g ON (g.category IS NOT DISTINCT FROM c.category) AND (g.region IS NOT DISTINCT FROM c.region)
