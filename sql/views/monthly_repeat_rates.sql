-- monthly_repeat_rates: the period definitions of "repeat", per calendar month (UTC) and region.
-- Grain: month × region (region of the purchase).
--   active_customers         customers with a purchase in the month
--   period_repeat_rate       share of them with 2+ purchase days within that same month
--   returning_customer_rate  share of them who had purchased before the month began
-- The cohort definitions are in `repurchase_rate`.
CREATE VIEW monthly_repeat_rates AS
WITH firsts AS (
    SELECT customer_id, MIN(order_month) AS first_month
    FROM purchases
    GROUP BY customer_id
),
monthly AS (
    SELECT p.order_month AS month, p.region, p.customer_id,
           COUNT(DISTINCT p.day_number) AS purchase_days,
           MIN(f.first_month) AS first_month
    FROM purchases p
    JOIN firsts f ON f.customer_id = p.customer_id
    GROUP BY p.order_month, p.region, p.customer_id
)
SELECT month,
       region,
       COUNT(*) AS active_customers,
       CAST(SUM(CASE WHEN purchase_days >= 2 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS period_repeat_rate,
       CAST(SUM(CASE WHEN first_month < month THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS returning_customer_rate
FROM monthly
GROUP BY month, region
