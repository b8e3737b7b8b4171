-- reactivation: how many dormant customers come back, per calendar month (UTC, YYYY-MM) ×
-- region (the customer's, as in customer_layers: of the latest purchase, else the record's).
-- A customer is dormant at the start of a month when they have 1+ purchase days before the
-- month's first day and the last of them is at least rebuy.dormant_days [90] before it (no
-- upper bound: churned customers are dormant too). Months from the first in which anyone is
-- dormant up to the month holding as_of(); a month without dormant customers in a region has
-- no row for it.
--   dormant_at_start           dormant customers at the month's first day
--   reactivated                of them, those with a purchase in the month (up to as_of())
--   reactivation_rate          reactivated / dormant_at_start
--   reactivated_revenue_usd    the reactivated customers' purchases in the month
--   high_potential_*           the same four for the dormant with at least
--                              rebuy.high_potential_min_purchases [3] purchase days before the
--                              month (high_potential_reactivation_rate NULL without any)
--   is_complete                the month ended on or before as_of()
-- Purchase days come from `purchases` (the spans between them); the region from customer_facts.
-- A dormant spell covers a run of months: rather than a row per customer and month, each spell
-- adds 1 at its first month and takes it away after its last, and a running sum per region
-- over the months gives the dormant counts (the work grows with the spells, not with how many
-- months each lasts).
CREATE VIEW reactivation AS
WITH days AS (
    SELECT customer_id, day_number, SUM(amount_usd) AS usd
    FROM purchases
    GROUP BY customer_id, day_number
),
spans AS (
    SELECT customer_id,
           -- the purchase day a dormant spell starts from, and the one that ends it (NULL: none yet)
           day_number AS last_day,
           LEAD(day_number) OVER (PARTITION BY customer_id ORDER BY day_number) AS next_day,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY day_number) AS purchases_before
    FROM days
),
bounds AS (
    SELECT customer_id, next_day, purchases_before,
           -- a purchase on a month's first day is in that month, not before it: at least 1 day
           CAST(CAST(last_day + greatest(CAST(CEIL(rebuy_setting('dormant_days')) AS BIGINT), 1) AS INT) AS DATE) AS dormant_from,
           COALESCE(CAST(CAST(next_day AS INT) AS DATE), as_of()) AS dormant_until
    FROM spans
),
spells AS (
    -- the months (year * 12 + month - 1) whose first day falls in [dormant_from, dormant_until]
    SELECT customer_id, next_day,
           CASE WHEN purchases_before >= rebuy_setting('high_potential_min_purchases') THEN 1 ELSE 0 END AS high_potential,
           CAST(date_part('year', dormant_from) * 12 + date_part('month', dormant_from) - 1 AS BIGINT)
             + CASE WHEN date_part('day', dormant_from) = 1 THEN 0 ELSE 1 END AS first_month,
           CAST(date_part('year', dormant_until) * 12 + date_part('month', dormant_until) - 1 AS BIGINT) AS last_month
    FROM bounds
    WHERE dormant_from <= dormant_until
),
located AS (
    -- a spell that ends with a purchase ends in that purchase's month: the customer came back
    SELECT s.customer_id, s.first_month, s.last_month, s.high_potential,
           s.next_day IS NOT NULL AS came_back,
           COALESCE(f.region, c.region) AS region
    FROM spells s
    JOIN customer_facts f ON f.customer_id = s.customer_id
    LEFT JOIN customers c ON c.customer_id = s.customer_id
    WHERE s.first_month <= s.last_month
),
steps AS (
    SELECT region, first_month AS month_index, 1 AS dormant, high_potential FROM located
    UNION ALL
    SELECT region, last_month + 1, -1, -high_potential FROM located
),
step_sums AS (
    SELECT region, month_index, SUM(dormant) AS dormant, SUM(high_potential) AS high_potential
    FROM steps
    GROUP BY region, month_index
),
grid AS (
    SELECT region,
           unnest(generate_series(first_month,
               CAST(date_part('year', as_of()) * 12 + date_part('month', as_of()) - 1 AS BIGINT))) AS month_index
    FROM (SELECT region, MIN(first_month) AS first_month FROM located GROUP BY region)
),
running AS (
    SELECT g.region, g.month_index,
           SUM(COALESCE(s.dormant, 0)) OVER (PARTITION BY g.region ORDER BY g.month_index
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS dormant_at_start,
           SUM(COALESCE(s.high_potential, 0)) OVER (PARTITION BY g.region ORDER BY g.month_index
                                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS high_potential_dormant
    FROM grid g
    LEFT JOIN step_sums s ON (s.region IS NOT DISTINCT FROM g.region) AND (s.month_index IS NOT DISTINCT FROM g.month_index)
),
month_usd AS (
    SELECT customer_id,
           CAST(date_part('year', CAST(CAST(day_number AS INT) AS DATE)) * 12
                + date_part('month', CAST(CAST(day_number AS INT) AS DATE)) - 1 AS BIGINT) AS month_index,
           SUM(usd) AS usd
    FROM days
    GROUP BY 1, 2
),
back AS (
    SELECT l.region, l.last_month AS month_index,
           COUNT(*) AS reactivated,
           SUM(l.high_potential) AS high_potential_reactivated,
           SUM(u.usd) AS usd,
           SUM(CASE WHEN l.high_potential = 1 THEN u.usd ELSE 0.0 END) AS high_potential_usd
    FROM located l
    JOIN month_usd u ON u.customer_id = l.customer_id AND u.month_index = l.last_month
    WHERE l.came_back
    GROUP BY l.region, l.last_month
)
SELECT to_char(make_date(CAST(r.month_index / 12 AS INT), CAST(r.month_index % 12 + 1 AS INT), 1), '%Y-%m') AS month,
       r.region,
       r.dormant_at_start,
       COALESCE(b.reactivated, 0) AS reactivated,
       CAST(COALESCE(b.reactivated, 0) AS DOUBLE) / r.dormant_at_start AS reactivation_rate,
       COALESCE(b.usd, 0.0) AS reactivated_revenue_usd,
       r.high_potential_dormant AS high_potential_dormant_at_start,
       COALESCE(b.high_potential_reactivated, 0) AS high_potential_reactivated,
       CAST(COALESCE(b.high_potential_reactivated, 0) AS DOUBLE) / NULLIF(r.high_potential_dormant, 0) AS high_potential_reactivation_rate,
       COALESCE(b.high_potential_usd, 0.0) AS high_potential_reactivated_revenue_usd,
       r.month_index + 1
         <= CAST(date_part('year', as_of() + INTERVAL '1 day') * 12 + date_part('month', as_of() + INTERVAL '1 day') - 1 AS BIGINT) AS is_complete
FROM running r
LEFT JOIN back b ON (b.region IS NOT DISTINCT FROM r.region) AND (b.month_index IS NOT DISTINCT FROM r.month_index)
WHERE r.dormant_at_start > 0
