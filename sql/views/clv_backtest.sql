-- clv_backtest: the holdout check of the purchase models, as in the BG/NBD paper. The models are
-- fitted on the calibration period (purchases up to as_of() - rebuy.holdout_days, default 180)
-- and their predictions for the holdout period (the days after, up to as_of()) are set beside
-- what each customer actually bought then.
-- Grain: customer_id, for customers whose first purchase lies in the calibration period.
--   frequency, recency, t       calibration-period inputs (days, lifetimes convention)
--   holdout_days                length of the holdout period
--   predicted_bgnbd / _mbgnbd   expected purchase days in the holdout period
--   actual_purchases            purchase days in the holdout period
-- Totals: SELECT SUM(predicted_mbgnbd), SUM(actual_purchases) FROM clv_backtest; or grouped by
-- calibration frequency, as the paper's figure 4 does.
CREATE VIEW clv_backtest AS
WITH bounds AS (
    SELECT CAST(as_of() AS INT) AS end_day,
           CAST(as_of() AS INT) - CAST(rebuy_setting('holdout_days') AS INT) AS cal_end
),
days AS (
    SELECT p.customer_id, p.day_number, b.cal_end, b.end_day
    FROM (SELECT DISTINCT customer_id, day_number FROM purchases) AS p
    CROSS JOIN bounds AS b
),
calibration AS (
    SELECT customer_id,
           COUNT(*) FILTER (WHERE day_number <= cal_end) - 1 AS frequency,
           CAST(MAX(day_number) FILTER (WHERE day_number <= cal_end) - MIN(day_number) AS DOUBLE) AS recency,
           CAST(MAX(cal_end) - MIN(day_number) AS DOUBLE) AS t,
           COUNT(*) FILTER (WHERE day_number > cal_end) AS actual_purchases,
           MAX(end_day) - MAX(cal_end) AS holdout_days
    FROM days
    GROUP BY customer_id
    HAVING MIN(day_number) <= MAX(cal_end)
),
models AS (
    SELECT bgnbd_fit(frequency, recency, t) AS bg, mbgnbd_fit(frequency, recency, t) AS mbg
    FROM calibration
)
SELECT c.customer_id, c.frequency, c.recency, c.t, c.holdout_days,
       bgnbd_expected_purchases(m.bg, c.frequency, c.recency, c.t, c.holdout_days) AS predicted_bgnbd,
       mbgnbd_expected_purchases(m.mbg, c.frequency, c.recency, c.t, c.holdout_days) AS predicted_mbgnbd,
       c.actual_purchases
FROM calibration AS c CROSS JOIN models AS m;
