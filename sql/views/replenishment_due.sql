-- replenishment_due: when each customer will need a category again, timed by their own cycle;
-- the list behind replenishment reminders (a valid export view: it has customer_id and
-- marketing_consent; outreach exports keep only consenting customers anyway).
-- Grain: customer_id × category, for every category a customer has bought (purchases up to
-- as_of(); orders without a category are left out).
--   last_purchase_date  the last purchase day in the category
--   cycle_days          with 2+ purchase days in the category: the customer's own median gap
--                       between them (one gap: that gap), cycle_source 'own'; with one purchase
--                       day: the median gap of interval_stats for the category and the
--                       customer's first-purchase region, else the median of the category's
--                       medians over all regions, cycle_source 'category'; when no median
--                       is known either, the row is there with cycle_days, due_date,
--                       days_until_due and status NULL (nothing to time a reminder by yet)
--   due_date            last_purchase_date + cycle_days rounded to whole days (half away from
--                       zero, as next_order_due)
--   days_until_due      due_date - as_of() (negative once past)
--   status              lapsed   as_of() is more than two cycles after the last purchase
--                                (the customer skipped a whole cycle)
--                       overdue  past due_date, not lapsed
--                       due      due within rebuy.reminder_days [7] days (0..reminder_days)
--                       upcoming later than that
--   layer, marketing_consent  from customer_layers
CREATE VIEW replenishment_due AS
WITH category_cycles AS (
    SELECT category, median(median_gap_days) AS median_gap_days
    FROM interval_stats
    GROUP BY category
),
per_category AS (
    SELECT customer_id, category,
           COUNT(DISTINCT day_number) AS purchase_days,
           MAX(day_number) AS last_day,
           median_repurchase_interval_days(order_ts) AS own_cycle
    FROM purchases
    WHERE category IS NOT NULL
    GROUP BY customer_id, category
),
timed AS (
    SELECT p.customer_id,
           CAST(p.category AS VARCHAR) AS category,
           p.purchase_days,
           p.last_day,
           COALESCE(p.own_cycle, i.median_gap_days, k.median_gap_days) AS cycle_days,
           CASE WHEN p.own_cycle IS NOT NULL THEN 'own' ELSE 'category' END AS cycle_source
    FROM per_category p
    JOIN customer_facts f ON f.customer_id = p.customer_id
    LEFT JOIN interval_stats i
      ON (i.category IS NOT DISTINCT FROM p.category) AND (i.region IS NOT DISTINCT FROM f.first_region)
    LEFT JOIN category_cycles k ON k.category = p.category
),
dated AS (
    SELECT *, CAST(last_day + round(cycle_days) AS INT) AS due_day
    FROM timed
)
SELECT d.customer_id,
       d.category,
       d.purchase_days,
       CAST(CAST(d.last_day AS INT) AS DATE) AS last_purchase_date,
       d.cycle_days,
       d.cycle_source,
       CAST(d.due_day AS DATE) AS due_date,
       d.due_day - CAST(as_of() AS INT) AS days_until_due,
       CASE WHEN d.cycle_days IS NULL THEN NULL
            WHEN CAST(as_of() AS INT) - d.last_day > 2 * d.cycle_days THEN 'lapsed'
            WHEN d.due_day < CAST(as_of() AS INT) THEN 'overdue'
            WHEN d.due_day - CAST(as_of() AS INT) <= rebuy_setting('reminder_days') THEN 'due'
            ELSE 'upcoming' END AS status,
       l.layer,
       l.marketing_consent
FROM dated d
JOIN customer_layers l ON l.customer_id = d.customer_id
