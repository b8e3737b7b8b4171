-- customer_rfm: recency / frequency / monetary per customer with quintile scores and segment.
-- Grain: customer_id (customers with a purchase on or before as_of()).
--   recency_days = days since the last purchase day; frequency = purchase days;
--   monetary_usd = revenue in USD.
-- Scores: NTILE(5), 5 best (most recent, most frequent, highest spend), ties broken by
-- customer_id so every engine and every run assigns identical scores.
-- Segment: rfm_segment(r, f, m), segment map rebuy-rfm-v1 (see the function's documentation).
-- The scores come from customer_facts (kept by ingest with the summary; ranking by the last
-- purchase day is ranking by recency_days for any as-of date).
CREATE VIEW customer_rfm AS
SELECT customer_id,
       CAST(as_of() AS INT) - last_day AS recency_days,
       purchase_days AS frequency,
       revenue_usd AS monetary_usd,
       r_score,
       f_score,
       m_score,
       -- The three digits, e.g. '545' (one number formatted instead of three concatenated).
       CAST(r_score * 100 + f_score * 10 + m_score AS VARCHAR) AS rfm_cell,
       rfm_segment(r_score, f_score, m_score) AS segment
FROM customer_facts
