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
-- months each lasts). The next purchase day comes from each customer's sorted list of days, not
-- from a window function, which costs per customer (seconds at a million orders).
CREATE VIEW reactivation AS
WITH days AS (
    SELECT customer_id, day_number, SUM(amount_usd) AS usd
    FROM purchases
    GROUP BY customer_id, day_number
),
day_lists AS (
    SELECT customer_id, array_sort(array_agg(day_number)) AS days
    FROM days
    GROUP BY customer_id
),
spans AS (
    -- each purchase day with the next one (NULL after the last: unnest pads the shorter list,
    -- which is LEAD without a window over every customer's days) and how many came up to it
    SELECT customer_id,
           unnest(days) AS last_day,
           unnest(array_slice(days, 2, CAST(cardinality(days) AS BIGINT))) AS next_day,
           unnest(generate_series(1, CAST(cardinality(days) AS BIGINT))) AS purchases_before
    FROM day_lists
),
month_usd AS (
    SELECT customer_id,
           CAST(date_part('year', CAST(CAST(day_number AS INT) AS DATE)) * 12
                + date_part('month', CAST(CAST(day_number AS INT) AS DATE)) - 1 AS BIGINT) AS month_index,
           SUM(usd) AS usd
    FROM days
    GROUP BY 1, 2
),
bounds AS (
    SELECT customer_id, next_day, purchases_before,
           -- a purchase on a month's first day is in that month, not before it: at least 1 day
           CAST(CAST(last_day + greatest(CAST(CEIL(rebuy_setting('dormant_days')) AS BIGINT), 1) AS INT) AS DATE) AS dormant_from,
           COALESCE(CAST(CAST(next_day AS INT) AS DATE), as_of()) AS dormant_until
    FROM spans
),
spells AS (
    -- the months (year * 12 + month - 1) whose first day falls in [dormant_from, dormant_until];
    -- a spell that ends with a purchase ends in that purchase's month: the customer came back
    SELECT customer_id,
           CASE WHEN purchases_before >= rebuy_setting('high_potential_min_purchases') THEN 1 ELSE 0 END AS hp,
           CASE WHEN next_day IS NOT NULL THEN 1 ELSE 0 END AS back,
           CAST(date_part('year', dormant_from) * 12 + date_part('month', dormant_from) - 1 AS BIGINT)
             + CASE WHEN date_part('day', dormant_from) = 1 THEN 0 ELSE 1 END AS first_month,
           CAST(date_part('year', dormant_until) * 12 + date_part('month', dormant_until) - 1 AS BIGINT) AS last_month
    FROM bounds
    WHERE dormant_from <= dormant_until
),
located AS (
    -- the USD of the comeback month (a spell that did not end has no purchase in its last month)
    SELECT s.customer_id, s.hp, s.back, s.first_month, s.last_month,
           COALESCE(f.region, c.region) AS region,
           COALESCE(u.usd, 0.0) AS back_usd
    FROM spells s
    JOIN customer_facts f ON f.customer_id = s.customer_id
    LEFT JOIN customers c ON c.customer_id = s.customer_id
    LEFT JOIN month_usd u ON u.customer_id = s.customer_id AND u.month_index = s.last_month
    WHERE s.first_month <= s.last_month
),
events AS (
    -- three events per spell: it starts (+1), it ends after its last month (-1), and in its
    -- last month the customer may come back
    SELECT region,
           unnest(make_array(first_month, last_month + 1, last_month)) AS month_index,
           unnest(make_array(1, -1, 0)) AS dormant,
           unnest(make_array(hp, -hp, 0)) AS hp_dormant,
           unnest(make_array(0, 0, back)) AS back,
           unnest(make_array(0, 0, back * hp)) AS hp_back,
           unnest(make_array(0.0, 0.0, back_usd)) AS back_usd,
           unnest(make_array(0.0, 0.0, back_usd * hp)) AS hp_back_usd
    FROM located
),
per_month AS (
    SELECT region, month_index,
           SUM(dormant) AS dormant, SUM(hp_dormant) AS hp_dormant,
           SUM(back) AS back, SUM(hp_back) AS hp_back,
           SUM(back_usd) AS back_usd, SUM(hp_back_usd) AS hp_back_usd
    FROM events
    GROUP BY region, month_index
),
running AS (
    SELECT region, month_index, back, hp_back, back_usd, hp_back_usd,
           SUM(dormant) OVER (PARTITION BY region ORDER BY month_index
                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS dormant_at_start,
           SUM(hp_dormant) OVER (PARTITION BY region ORDER BY month_index
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS hp_dormant_at_start,
           LEAD(month_index) OVER (PARTITION BY region ORDER BY month_index) AS next_event
    FROM per_month
),
months AS (
    -- the months between two events keep the counts of the first; only it has comebacks
    SELECT *,
           unnest(generate_series(month_index, COALESCE(next_event - 1,
               CAST(date_part('year', as_of()) * 12 + date_part('month', as_of()) - 1 AS BIGINT)))) AS month
    FROM running
)
SELECT to_char(make_date(CAST(month / 12 AS INT), CAST(month % 12 + 1 AS INT), 1), '%Y-%m') AS month,
       region,
       dormant_at_start,
       CASE WHEN month = month_index THEN back ELSE 0 END AS reactivated,
       CAST(CASE WHEN month = month_index THEN back ELSE 0 END AS DOUBLE) / dormant_at_start AS reactivation_rate,
       CASE WHEN month = month_index THEN back_usd ELSE 0.0 END AS reactivated_revenue_usd,
       hp_dormant_at_start AS high_potential_dormant_at_start,
       CASE WHEN month = month_index THEN hp_back ELSE 0 END AS high_potential_reactivated,
       CAST(CASE WHEN month = month_index THEN hp_back ELSE 0 END AS DOUBLE) / NULLIF(hp_dormant_at_start, 0) AS high_potential_reactivation_rate,
       CASE WHEN month = month_index THEN hp_back_usd ELSE 0.0 END AS high_potential_reactivated_revenue_usd,
       month + 1
         <= CAST(date_part('year', as_of() + INTERVAL '1 day') * 12 + date_part('month', as_of() + INTERVAL '1 day') - 1 AS BIGINT) AS is_complete
FROM months
WHERE dormant_at_start > 0
