-- customer_summary: one row per customer with at least one purchase on or before as_of().
-- Grain: customer_id. Input: the `purchases` view (completed orders, amount > 0, up to as_of()).
-- A purchase is a purchase day: a customer's orders on one UTC day count once.
--   order_count         qualifying orders
--   purchase_days       distinct purchase days (= purchase_count)
--   recency_days        days from the last purchase day to as_of()
--   tenure_days         days from the first purchase day to as_of()
--   *_interval_days     gaps between consecutive purchase days (NULL with one purchase day)
--   region, country, category: those of the customer's latest purchase
-- Lifetime-value inputs, in the convention of lifetimes.utils.summary_data_from_transaction_data
-- with daily periods (freq='D', observation_period_end = as_of()):
--   frequency = purchase_days - 1; recency = days first to last purchase day;
--   t = days first purchase day to as_of(); monetary_value = mean USD total of the repeat
--   purchase days (the first day excluded), 0 when frequency = 0.
-- Used by: customer_rfm, customer_layers, winback_candidates, lifetime-value models, dashboards.
CREATE VIEW customer_summary AS
WITH per_day AS (
    SELECT customer_id, day_number, SUM(amount_usd) AS day_usd
    FROM purchases
    GROUP BY customer_id, day_number
),
days AS (
    SELECT customer_id,
           COUNT(*) AS purchase_days,
           MIN(day_number) AS first_day,
           MAX(day_number) AS last_day,
           SUM(day_usd) AS days_usd,
           first_value(day_usd ORDER BY day_number) AS first_day_usd
    FROM per_day
    GROUP BY customer_id
),
per_order AS (
    SELECT customer_id,
           COUNT(*) AS order_count,
           MIN(order_ts) AS first_purchase_ts,
           MAX(order_ts) AS last_purchase_ts,
           SUM(amount_usd) AS revenue_usd,
           repurchase_interval_days(order_ts) AS mean_interval_days,
           median_repurchase_interval_days(order_ts) AS median_interval_days,
           next_order_due(order_ts) AS next_order_due,
           last_value(region ORDER BY order_ts) AS region,
           last_value(country ORDER BY order_ts) AS country,
           last_value(category ORDER BY order_ts) AS category,
           bool_or(is_subscription) AS is_subscriber
    FROM purchases
    GROUP BY customer_id
)
SELECT o.customer_id,
       o.first_purchase_ts,
       o.last_purchase_ts,
       o.order_count,
       d.purchase_days AS purchase_count,
       d.purchase_days,
       o.revenue_usd,
       o.revenue_usd / o.order_count AS avg_order_value_usd,
       CAST(as_of() AS INT) - d.last_day AS recency_days,
       CAST(as_of() AS INT) - d.first_day AS tenure_days,
       o.mean_interval_days,
       o.median_interval_days,
       o.next_order_due,
       repurchase_cycle_class(o.median_interval_days) AS cycle_class,
       COALESCE(o.region, c.region) AS region,
       COALESCE(o.country, c.country) AS country,
       o.category,
       o.is_subscriber,
       c.member_tier,
       COALESCE(c.marketing_consent, false) AS marketing_consent,
       c.signup_ts,
       d.purchase_days - 1 AS frequency,
       CAST(d.last_day - d.first_day AS DOUBLE) AS recency,
       CAST(CAST(as_of() AS INT) - d.first_day AS DOUBLE) AS t,
       CASE WHEN d.purchase_days > 1
            THEN (d.days_usd - d.first_day_usd) / CAST(d.purchase_days - 1 AS DOUBLE)
            ELSE 0.0 END AS monetary_value
FROM per_order o
JOIN days d ON d.customer_id = o.customer_id
LEFT JOIN customers c ON c.customer_id = o.customer_id
