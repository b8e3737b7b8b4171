-- customer_base_live: the parts of customer_summary that do not depend on the as-of date beyond
-- which purchases count, computed from `purchases` (so: up to as_of()). One row per customer.
-- `rebuy ingest orders` stores this as the table customer_base (as of the last order day);
-- customer_summary reads that table instead when customer_base_usable() says it stands in
-- exactly (same orders version, as-of date on or after the last order day), else this view.
--   first_day, last_day, days_usd, first_day_usd, r_score, f_score, m_score, revenue_before,
--                         revenue_total  from customer_day_ranks (customer_days and the
--                         rankings over all customers)
--   second_day            the second purchase day (NULL with one)
--   first_region, first_category, first_channel  those of the customer's first purchase (the
--                         acquisition channel of acquisition_economics)
--   gaps                  the gaps in days between consecutive purchase days, in time order
--   months                the UTC months with a purchase, in order: {month: year * 12 +
--                         month, usd: the month's USD total}
-- revenue_usd is the sum of the purchase days' totals (days_usd), the one sum the rankings
-- use.
CREATE VIEW customer_base_live AS
WITH per_month AS (
    SELECT customer_id,
           CAST(date_part('year', order_ts) * 12 + date_part('month', order_ts) AS BIGINT) AS month_index,
           SUM(amount_usd) AS month_usd
    FROM purchases
    GROUP BY 1, 2
),
months AS (
    SELECT customer_id,
           array_sort(array_agg(named_struct('month', month_index, 'usd', month_usd))) AS months
    FROM per_month
    GROUP BY customer_id
),
per_order AS (
    SELECT customer_id,
           COUNT(*) AS order_count,
           MIN(order_ts) AS first_purchase_ts,
           MAX(order_ts) AS last_purchase_ts,
           repurchase_interval_days(order_ts) AS mean_interval_days,
           median_repurchase_interval_days(order_ts) AS median_interval_days,
           repurchase_intervals(order_ts) AS gaps,
           next_order_due(order_ts) AS next_order_due,
           arg_max(region, order_ts) AS region,
           arg_max(country, order_ts) AS country,
           arg_max(category, order_ts) AS category,
           arg_min(region, order_ts) AS first_region,
           arg_min(category, order_ts) AS first_category,
           arg_min(channel, order_ts) AS first_channel,
           bool_or(is_subscription) AS is_subscriber
    FROM purchases
    GROUP BY customer_id
)
SELECT CAST(o.customer_id AS VARCHAR) AS customer_id,
       o.first_purchase_ts,
       o.last_purchase_ts,
       o.order_count,
       d.purchase_days,
       d.days_usd AS revenue_usd,
       o.mean_interval_days,
       o.median_interval_days,
       o.next_order_due,
       CAST(o.region AS VARCHAR) AS region,
       CAST(o.country AS VARCHAR) AS country,
       CAST(o.category AS VARCHAR) AS category,
       o.is_subscriber,
       d.first_day,
       d.last_day,
       CAST(d.first_day + o.gaps[1] AS INT) AS second_day,
       d.days_usd,
       d.first_day_usd,
       CAST(o.first_region AS VARCHAR) AS first_region,
       CAST(o.first_category AS VARCHAR) AS first_category,
       CAST(o.first_channel AS VARCHAR) AS first_channel,
       o.gaps,
       m.months,
       d.r_score,
       d.f_score,
       d.m_score,
       d.revenue_before,
       d.revenue_total
FROM per_order o
JOIN customer_day_ranks d ON d.customer_id = o.customer_id
JOIN months m ON m.customer_id = o.customer_id
