-- customer_day_ranks: customer_days with the rankings over all customers. Part of
-- customer_base_live; the one definition of the rankings, also when ingest updates the stored
-- summary for the customers an ingest touched (then customer_days stands for the kept rows and
-- the recomputed ones, and the ranks are computed again over all of them).
--   r_score, f_score, m_score  customer_rfm's quintiles (NTILE(5), 5 best, ties by customer_id):
--                  recency ranks by last_day (the same order as recency_days descending for every
--                  as-of date), frequency by purchase_days, monetary by revenue (days_usd)
--   revenue_before, revenue_total  customer_layers' high-value ranking: the revenue of the
--                  customers ranked above (revenue descending, then customer_id), and of all
-- Ranked on these narrow rows, before the wide columns are joined on: sorting 4 million
-- customers four times costs far less memory that way.
CREATE VIEW customer_day_ranks AS
SELECT customer_id, purchase_days, first_day, last_day, days_usd, first_day_usd,
       CAST(NTILE(5) OVER (ORDER BY last_day, customer_id) AS BIGINT) AS r_score,
       CAST(NTILE(5) OVER (ORDER BY purchase_days, customer_id) AS BIGINT) AS f_score,
       CAST(NTILE(5) OVER (ORDER BY days_usd, customer_id) AS BIGINT) AS m_score,
       SUM(days_usd) OVER (ORDER BY days_usd DESC, customer_id
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS revenue_before,
       SUM(days_usd) OVER () AS revenue_total
FROM customer_days
