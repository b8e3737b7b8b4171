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
           CAST(CAST(last_day + CAST(CEIL(rebuy_setting('dormant_days')) AS BIGINT) AS INT) AS DATE) AS dormant_from,
           COALESCE(CAST(CAST(next_day AS INT) AS DATE), as_of()) AS dormant_until
    FROM spans
),
spell_months AS (
    -- the months (year * 12 + month - 1) whose first day falls in [dormant_from, dormant_until]
    SELECT customer_id, next_day, purchases_before,
           unnest(generate_series(
               CAST(date_part('year', dormant_from) * 12 + date_part('month', dormant_from) - 1 AS BIGINT)
                 + CASE WHEN date_part('day', dormant_from) = 1 THEN 0 ELSE 1 END,
               CAST(date_part('year', dormant_until) * 12 + date_part('month', dormant_until) - 1 AS BIGINT))) AS month_index
    FROM bounds
    WHERE dormant_from <= dormant_until
),
flagged AS (
    SELECT m.customer_id,
           m.month_index,
           CASE WHEN m.next_day IS NOT NULL
                 AND CAST(date_part('year', CAST(CAST(m.next_day AS INT) AS DATE)) * 12
                        + date_part('month', CAST(CAST(m.next_day AS INT) AS DATE)) - 1 AS BIGINT) = m.month_index
                THEN 1 ELSE 0 END AS reactivated,
           CASE WHEN m.purchases_before >= rebuy_setting('high_potential_min_purchases') THEN 1 ELSE 0 END AS high_potential
    FROM spell_months m
),
month_usd AS (
    SELECT customer_id,
           CAST(date_part('year', CAST(CAST(day_number AS INT) AS DATE)) * 12
                + date_part('month', CAST(CAST(day_number AS INT) AS DATE)) - 1 AS BIGINT) AS month_index,
           SUM(usd) AS usd
    FROM days
    GROUP BY 1, 2
),
scored AS (
    SELECT fl.month_index,
           COALESCE(f.region, c.region) AS region,
           fl.reactivated,
           fl.high_potential,
           CASE WHEN fl.reactivated = 1 THEN u.usd ELSE 0.0 END AS usd
    FROM flagged fl
    JOIN customer_facts f ON f.customer_id = fl.customer_id
    LEFT JOIN customers c ON c.customer_id = fl.customer_id
    LEFT JOIN month_usd u ON u.customer_id = fl.customer_id AND u.month_index = fl.month_index
)
SELECT to_char(make_date(CAST(month_index / 12 AS INT), CAST(month_index % 12 + 1 AS INT), 1), '%Y-%m') AS month,
       region,
       COUNT(*) AS dormant_at_start,
       SUM(reactivated) AS reactivated,
       CAST(SUM(reactivated) AS DOUBLE) / COUNT(*) AS reactivation_rate,
       SUM(usd) AS reactivated_revenue_usd,
       SUM(high_potential) AS high_potential_dormant_at_start,
       SUM(high_potential * reactivated) AS high_potential_reactivated,
       CAST(SUM(high_potential * reactivated) AS DOUBLE) / NULLIF(SUM(high_potential), 0) AS high_potential_reactivation_rate,
       SUM(high_potential * usd) AS high_potential_reactivated_revenue_usd,
       month_index + 1
         <= CAST(date_part('year', as_of() + INTERVAL '1 day') * 12 + date_part('month', as_of() + INTERVAL '1 day') - 1 AS BIGINT) AS is_complete
FROM scored
GROUP BY month_index, region
