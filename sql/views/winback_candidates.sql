-- winback_candidates: tonight's win-back list. The high-potential dormant customers of
-- customer_layers (no purchase for dormant_days [90] or more but less than churned_days [180],
-- and high_potential_min_purchases [3]+ purchase days) who consent to marketing, highest revenue
-- first, with their RFM segment. Reads the conditions from customer_summary directly rather than
-- through customer_layers, whose revenue ranking this list does not need.
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
FROM customer_summary s
JOIN customer_rfm r ON r.customer_id = s.customer_id
WHERE s.recency_days >= rebuy_setting('dormant_days')
  AND s.recency_days < rebuy_setting('churned_days')
  AND s.purchase_days >= rebuy_setting('high_potential_min_purchases')
  AND s.marketing_consent
ORDER BY s.revenue_usd DESC, s.customer_id
