-- winback_candidates: tonight's win-back list. Dormant customers (customer_layers) with
-- high_potential_min_purchases [3]+ purchase days and marketing consent, highest revenue first.
CREATE VIEW winback_candidates AS
SELECT s.customer_id,
       s.revenue_usd,
       s.purchase_days,
       s.last_purchase_ts,
       s.recency_days,
       s.next_order_due,
       r.segment,
       s.region,
       s.member_tier
FROM customer_layers l
JOIN customer_summary s ON s.customer_id = l.customer_id
JOIN customer_rfm r ON r.customer_id = l.customer_id
WHERE l.high_potential_dormant
  AND s.marketing_consent
ORDER BY s.revenue_usd DESC, s.customer_id
