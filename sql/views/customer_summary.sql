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
-- Reads customer_facts: the summary kept by ingest when it stands in exactly, else computed
-- from purchases with the same SQL (see src/summary.rs).
-- Used by: customer_rfm, customer_layers, winback_candidates, lifetime-value models, dashboards.
CREATE VIEW customer_summary AS
SELECT o.customer_id,
       o.first_purchase_ts,
       o.last_purchase_ts,
       o.order_count,
       o.purchase_days AS purchase_count,
       o.purchase_days,
       o.revenue_usd,
       o.revenue_usd / o.order_count AS avg_order_value_usd,
       CAST(as_of() AS INT) - o.last_day AS recency_days,
       CAST(as_of() AS INT) - o.first_day AS tenure_days,
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
       o.purchase_days - 1 AS frequency,
       CAST(o.last_day - o.first_day AS DOUBLE) AS recency,
       CAST(CAST(as_of() AS INT) - o.first_day AS DOUBLE) AS t,
       CASE WHEN o.purchase_days > 1
            THEN (o.days_usd - o.first_day_usd) / CAST(o.purchase_days - 1 AS DOUBLE)
            ELSE 0.0 END AS monetary_value
FROM customer_facts o
LEFT JOIN customers c ON c.customer_id = o.customer_id
