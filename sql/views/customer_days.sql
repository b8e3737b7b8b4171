-- customer_days: per customer, the figures of their purchase days (up to as_of()), the input of
-- the rankings in customer_day_ranks. Part of customer_base_live.
--   purchase_days  number of purchase days; first_day, last_day  first and last (days since
--                  1970-01-01); days_usd  USD total of all purchase days; first_day_usd  that of
--                  the first one
CREATE VIEW customer_days AS
WITH per_day AS (
    SELECT customer_id, day_number, SUM(amount_usd) AS day_usd
    FROM purchases
    GROUP BY customer_id, day_number
)
SELECT customer_id,
       COUNT(*) AS purchase_days,
       MIN(day_number) AS first_day,
       MAX(day_number) AS last_day,
       SUM(day_usd) AS days_usd,
       -- the first day's total: sorting each customer's (day, total) list is much cheaper here
       -- than an ordered aggregate
       array_sort(array_agg(named_struct('day', day_number, 'usd', day_usd)))[1]['usd'] AS first_day_usd
FROM per_day
GROUP BY customer_id
