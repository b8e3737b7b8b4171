-- winback_candidates: tonight's win-back list. The high-potential dormant customers of
-- customer_layers (no purchase for dormant_days [90] or more but less than churned_days [180],
-- and high_potential_min_purchases [3]+ purchase days) who consent to marketing, highest revenue
-- first, with their RFM segment. One pass over the customer summary: customer_rfm carries
-- every column needed.
CREATE VIEW winback_candidates AS
SELECT customer_id,
       monetary_usd AS revenue_usd,
       frequency AS purchase_days,
       last_purchase_ts,
       recency_days,
       next_order_due,
       segment,
       region,
       member_tier
FROM customer_rfm
WHERE recency_days >= rebuy_setting('dormant_days')
  AND recency_days < rebuy_setting('churned_days')
  AND frequency >= rebuy_setting('high_potential_min_purchases')
  AND marketing_consent
ORDER BY revenue_usd DESC, customer_id
