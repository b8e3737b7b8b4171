-- customer_facts: customer_base_live's columns for the session's as-of date, read from the
-- summary table customer_base that `rebuy ingest orders` keeps when customer_base_usable() (it
-- was made from the orders version this session reads, and as_of() is on or after the last
-- order day, so no order is cut off), else computed from orders. The unused branch is removed
-- at planning. Read by customer_summary and repurchase_rate.
CREATE VIEW customer_facts AS
SELECT * FROM customer_base WHERE customer_base_usable()
UNION ALL
SELECT * FROM customer_base_live WHERE NOT customer_base_usable()
