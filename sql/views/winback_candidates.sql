-- winback_candidates: tonight's win-back list. The high-potential dormant customers of
-- customer_layers (no purchase for dormant_days [90] or more but less than churned_days [180],
-- and high_potential_min_purchases [3]+ purchase days) who consent to marketing, highest revenue
-- first, with their RFM segment. Reads customer_facts once (the conditions, the columns of
-- customer_summary and the RFM scores of customer_rfm are all there) and joins only the
-- consenting customers, instead of going through customer_layers, customer_summary and
-- customer_rfm, each of which would read the customer base again.
CREATE VIEW winback_candidates AS
SELECT o.customer_id,
       o.revenue_usd,
       o.purchase_days,
       o.last_purchase_ts,
       CAST(as_of() AS INT) - o.last_day AS recency_days,
       o.next_order_due,
       rfm_segment(o.r_score, o.f_score, o.m_score) AS segment,
       COALESCE(o.region, c.region) AS region,
       c.member_tier
FROM customer_facts o
JOIN customers c ON c.customer_id = o.customer_id
-- The conditions on the (whole-day) recency and purchase count, written as ranges of the stored
-- columns (recency >= d  <=>  last_day <= as_of - ceil(d)), fold to constants at planning, so the
-- engine can tell from the column statistics how few customers qualify and builds the join on
-- them instead of on all consenting customers.
WHERE o.last_day <= CAST(as_of() AS BIGINT) - CAST(CEIL(rebuy_setting('dormant_days')) AS BIGINT)
  AND o.last_day > CAST(as_of() AS BIGINT) - CAST(CEIL(rebuy_setting('churned_days')) AS BIGINT)
  AND o.purchase_days >= CAST(CEIL(rebuy_setting('high_potential_min_purchases')) AS BIGINT)
  AND c.marketing_consent
ORDER BY o.revenue_usd DESC, o.customer_id
