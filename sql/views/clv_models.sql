-- clv_models: the lifetime-value models fitted for the session's as-of date, one row per model,
-- with what the predictions stand on: parameters, log-likelihood, customers fitted on,
-- convergence, iterations, fit time (0 when served from the fit cache), the data window and
-- the time unit. Inputs: customer_summary's frequency, recency, t (days) and monetary_value.
-- Models: bgnbd (Fader, Hardie & Lee 2005), mbgnbd (Batislam, Denizel & Filiztekin 2007),
-- gamma_gamma (spend, on customers with repeat purchases). Fits are cached per content of the
-- inputs, i.e. per data snapshot and as-of date.
CREATE VIEW clv_models AS
WITH fits AS (
    SELECT bgnbd_fit(frequency, recency, t) AS bg,
           mbgnbd_fit(frequency, recency, t) AS mbg,
           gamma_gamma_fit(frequency, monetary_value) AS gg,
           MIN(first_purchase_ts) AS data_from,
           MAX(last_purchase_ts) AS data_to
    FROM customer_summary
),
models AS (
    SELECT unnest(make_array(
        named_struct('model', 'bgnbd', 'r', bg['r'], 'alpha', bg['alpha'], 'a', bg['a'], 'b', bg['b'],
                     'p', CAST(NULL AS DOUBLE), 'q', CAST(NULL AS DOUBLE), 'v', CAST(NULL AS DOUBLE),
                     'log_likelihood', bg['log_likelihood'], 'customers', bg['n'], 'converged', bg['converged'],
                     'iterations', bg['iterations'], 'fit_ms', bg['fit_ms'], 'cached', bg['cached']),
        named_struct('model', 'mbgnbd', 'r', mbg['r'], 'alpha', mbg['alpha'], 'a', mbg['a'], 'b', mbg['b'],
                     'p', CAST(NULL AS DOUBLE), 'q', CAST(NULL AS DOUBLE), 'v', CAST(NULL AS DOUBLE),
                     'log_likelihood', mbg['log_likelihood'], 'customers', mbg['n'], 'converged', mbg['converged'],
                     'iterations', mbg['iterations'], 'fit_ms', mbg['fit_ms'], 'cached', mbg['cached']),
        named_struct('model', 'gamma_gamma', 'r', CAST(NULL AS DOUBLE), 'alpha', CAST(NULL AS DOUBLE),
                     'a', CAST(NULL AS DOUBLE), 'b', CAST(NULL AS DOUBLE),
                     'p', gg['p'], 'q', gg['q'], 'v', gg['v'],
                     'log_likelihood', gg['log_likelihood'], 'customers', gg['n'], 'converged', gg['converged'],
                     'iterations', gg['iterations'], 'fit_ms', gg['fit_ms'], 'cached', gg['cached'])
    )) AS m, data_from, data_to
    FROM fits
)
SELECT m['model'] AS model,
       m['r'] AS r, m['alpha'] AS alpha, m['a'] AS a, m['b'] AS b,
       m['p'] AS p, m['q'] AS q, m['v'] AS v,
       m['log_likelihood'] AS log_likelihood,
       m['customers'] AS customers,
       m['converged'] AS converged,
       m['iterations'] AS iterations,
       m['fit_ms'] AS fit_ms,
       m['cached'] AS cached,
       data_from, data_to,
       as_of() AS as_of,
       'day' AS time_unit
FROM models;
