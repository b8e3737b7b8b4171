-- customer_clv: per customer, what the next months are likely to bring, from models fitted on
-- all customers for the session's as-of date (see clv_models; fits are cached per data
-- snapshot and as-of date, so dashboards do not refit).
--   expected_purchases_90d / _365d  MBG/NBD conditional expected purchase days
--   p_alive                         MBG/NBD probability the customer is still active (unlike
--                                   BG/NBD, one-time buyers can have left)
--   expected_order_value_usd        Gamma-Gamma expected value of a purchase day
--   clv_12m_usd                     12 months, 1% monthly discount, 30-day months
--   churn_risk                      'low' (p_alive >= 0.7), 'medium' (>= 0.3), 'high'
--   next_order_due                  from customer_summary (last purchase day + median gap)
-- Grain: customer_id. Time unit of the inputs: days.
CREATE VIEW customer_clv AS
WITH models AS (
    SELECT mbgnbd_fit(frequency, recency, t) AS mbg,
           gamma_gamma_fit(frequency, monetary_value) AS gg
    FROM customer_summary
),
scored AS (
    SELECT s.customer_id,
           s.frequency, s.recency, s.t, s.monetary_value,
           mbgnbd_expected_purchases(m.mbg, s.frequency, s.recency, s.t, 90) AS expected_purchases_90d,
           mbgnbd_expected_purchases(m.mbg, s.frequency, s.recency, s.t, 365) AS expected_purchases_365d,
           mbgnbd_p_alive(m.mbg, s.frequency, s.recency, s.t) AS p_alive,
           gamma_gamma_expected_value(m.gg, s.frequency, s.monetary_value) AS expected_order_value_usd,
           clv(m.mbg, m.gg, s.frequency, s.recency, s.t, s.monetary_value, 12, 0.01) AS clv_12m_usd,
           s.next_order_due
    FROM customer_summary s CROSS JOIN models m
)
SELECT customer_id, frequency, recency, t, monetary_value,
       expected_purchases_90d, expected_purchases_365d, p_alive,
       expected_order_value_usd, clv_12m_usd,
       CASE WHEN p_alive >= 0.7 THEN 'low' WHEN p_alive >= 0.3 THEN 'medium' ELSE 'high' END AS churn_risk,
       next_order_due
FROM scored;
