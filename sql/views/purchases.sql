-- purchases: one row per qualifying order, the input of every repurchase metric.
-- Order hygiene (DATA_MODEL.md): only completed orders with amount > 0 count as purchases;
-- refunded and cancelled orders stay in `orders` and are left out here.
-- As-of: orders after the session's as_of() date (SET rebuy.as_of = 'YYYY-MM-DD') are ignored.
-- `day` is the order's UTC calendar day; `day_number` the same as days since 1970-01-01.
CREATE VIEW purchases AS
SELECT
    order_id,
    customer_id,
    order_ts,
    CAST(order_ts AS DATE) AS day,
    CAST(CAST(order_ts AS DATE) AS INT) AS day_number,
    amount,
    currency,
    amount_usd,
    region,
    country,
    category,
    channel,
    is_subscription,
    order_month
FROM orders
WHERE status = 'completed'
  AND amount > 0
  AND order_month <= to_char(as_of(), '%Y-%m')
  AND CAST(order_ts AS DATE) <= as_of()
