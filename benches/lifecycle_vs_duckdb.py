#!/usr/bin/env python3
"""The lifecycle views of issue 16 vs the same questions hand-written in SQL on DuckDB.

Data: `rebuy demo --orders N --inputs DIR` (Parquet orders, customers, fx_rates,
marketing_spend), as of 2026-07-01; rebuy reads the warehouse the demo ingested (with the
customer summary kept by ingest), DuckDB (threads=2, TimeZone=UTC) reads the same Parquet files
with amount_usd added once beforehand (rebuy's ingest stores it; the ASOF join is not timed).
Every side is a whole process that produces its full result (DuckDB: COPY (...) TO '/dev/null';
rebuy: `rebuy query --format csv` to /dev/null). Runs alternate DuckDB / rebuy after a warm-up;
medians, the ratio rebuy/DuckDB (below 1: rebuy is faster) and both peak RSS.

The DuckDB queries follow the views' headers (purchase days, order hygiene, the same
denominators). tier_stats and acquisition_economics also give the mean predicted 12-month CLV,
which needs the MBG/NBD and Gamma-Gamma fits that SQL alone cannot do: DuckDB's versions leave
that column out, rebuy's include it (so rebuy does more work there).

Usage: benches/lifecycle_vs_duckdb.py [--orders 1000000] [--runs 3] [--rebuy PATH]
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import demo_bench_setup, run_timed  # noqa: E402

AS_OF = "2026-07-01"

PURCHASES = f"""p AS (
    SELECT * FROM orders
    WHERE status = 'completed' AND amount > 0 AND CAST(order_ts AS DATE) <= DATE '{AS_OF}'
)"""

DUCK_SQL = {
    "lifecycle_funnel": f"""
WITH {PURCHASES},
days AS (SELECT customer_id, d, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY d) AS k
         FROM (SELECT DISTINCT customer_id, CAST(order_ts AS DATE) AS d FROM p)),
f AS (SELECT customer_id, MAX(CASE WHEN k = 1 THEN d END) AS d1, MAX(CASE WHEN k = 2 THEN d END) AS d2,
             MAX(CASE WHEN k = 3 THEN d END) AS d3
      FROM days WHERE k <= 3 GROUP BY 1),
fr AS (SELECT customer_id, arg_min(region, order_ts) AS first_region FROM p GROUP BY 1),
s AS (SELECT customer_id, region, signup_ts FROM customers
      WHERE signup_ts IS NULL OR CAST(signup_ts AS DATE) <= DATE '{AS_OF}'),
e AS (SELECT CASE WHEN s.signup_ts IS NOT NULL THEN strftime(s.signup_ts, '%Y-%m') END AS signup_month,
             COALESCE(s.region, fr.first_region) AS region, CAST(s.signup_ts AS DATE) AS sd,
             COALESCE(CAST(s.signup_ts AS DATE), f.d1) AS entry, f.d1, f.d2, f.d3
      FROM s FULL JOIN f ON f.customer_id = s.customer_id
      LEFT JOIN fr ON fr.customer_id = f.customer_id
      WHERE s.signup_ts IS NOT NULL OR f.customer_id IS NOT NULL)
SELECT signup_month, region, COUNT(*) AS signed_up, COUNT(d1), COUNT(d2), COUNT(d3),
       COUNT(d1) / COUNT(*), COUNT(d2) / NULLIF(COUNT(d1), 0), COUNT(d3) / NULLIF(COUNT(d2), 0),
       median(d1 - sd), median(d2 - d1), median(d3 - d2),
       DATE '{AS_OF}' - MAX(entry) >= 30, DATE '{AS_OF}' - MAX(entry) >= 90, DATE '{AS_OF}' - MAX(entry) >= 365
FROM e GROUP BY 1, 2
""",
    "reactivation": f"""
WITH {PURCHASES},
days AS (SELECT customer_id, CAST(order_ts AS DATE) AS d, SUM(amount_usd) AS usd FROM p GROUP BY 1, 2),
sp AS (SELECT customer_id, d, LEAD(d) OVER w AS nd, ROW_NUMBER() OVER w AS n
       FROM days WINDOW w AS (PARTITION BY customer_id ORDER BY d)),
b AS (SELECT *, date_trunc('month', d + 89) + INTERVAL 1 MONTH AS ms, COALESCE(nd, DATE '{AS_OF}') AS until FROM sp),
mo AS (SELECT customer_id, nd, n, CAST(unnest(generate_series(ms, until, INTERVAL 1 MONTH)) AS DATE) AS month
       FROM b WHERE ms <= until),
reg AS (SELECT customer_id, arg_max(region, order_ts) AS region FROM p GROUP BY 1),
musd AS (SELECT customer_id, date_trunc('month', d) AS month, SUM(usd) AS usd FROM days GROUP BY 1, 2),
fl AS (SELECT mo.month, COALESCE(reg.region, c.region) AS region,
              CASE WHEN mo.nd IS NOT NULL AND date_trunc('month', mo.nd) = mo.month THEN 1 ELSE 0 END AS re,
              CASE WHEN mo.n >= 3 THEN 1 ELSE 0 END AS hp, musd.usd
       FROM mo JOIN reg ON reg.customer_id = mo.customer_id
       LEFT JOIN customers c ON c.customer_id = mo.customer_id
       LEFT JOIN musd ON musd.customer_id = mo.customer_id AND musd.month = mo.month)
SELECT strftime(month, '%Y-%m'), region, COUNT(*), SUM(re), SUM(re) / COUNT(*),
       SUM(CASE WHEN re = 1 THEN usd ELSE 0 END), SUM(hp), SUM(hp * re), SUM(hp * re) / NULLIF(SUM(hp), 0),
       SUM(CASE WHEN re = 1 AND hp = 1 THEN usd ELSE 0 END), month + INTERVAL 1 MONTH <= DATE '{AS_OF}' + 1
FROM fl GROUP BY month, region
""",
    "replenishment_due": f"""
WITH {PURCHASES},
cd AS (SELECT customer_id, category, CAST(order_ts AS DATE) AS d FROM p WHERE category IS NOT NULL GROUP BY ALL),
g AS (SELECT *, d - LAG(d) OVER (PARTITION BY customer_id, category ORDER BY d) AS gap FROM cd),
own AS (SELECT customer_id, category, COUNT(*) AS n, MAX(d) AS last_d, median(gap) AS cycle FROM g GROUP BY 1, 2),
pd AS (SELECT customer_id, CAST(order_ts AS DATE) AS d, SUM(amount_usd) AS usd FROM p GROUP BY 1, 2),
cg AS (SELECT customer_id, d - LAG(d) OVER (PARTITION BY customer_id ORDER BY d) AS gap FROM pd),
firsts AS (SELECT customer_id, arg_min(category, order_ts) AS fc, arg_min(region, order_ts) AS fr FROM p GROUP BY 1),
istats AS (SELECT fc AS category, fr AS region, median(gap) AS m FROM cg JOIN firsts USING (customer_id)
           WHERE gap IS NOT NULL GROUP BY 1, 2),
cstats AS (SELECT category, median(m) AS m FROM istats GROUP BY 1),
cs AS (SELECT customer_id, MAX(d) AS last_d, MIN(d) AS first_d, COUNT(*) AS days, SUM(usd) AS rev FROM pd GROUP BY 1),
ranked AS (SELECT *, SUM(rev) OVER (ORDER BY rev DESC, customer_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before,
                  SUM(rev) OVER () AS total FROM cs),
layers AS (SELECT r.customer_id,
       CASE WHEN DATE '{AS_OF}' - last_d >= 180 THEN 'churned'
            WHEN DATE '{AS_OF}' - last_d >= 90 THEN 'dormant'
            WHEN (c.signup_ts IS NOT NULL AND DATE '{AS_OF}' - CAST(c.signup_ts AS DATE) < 30
                  AND CAST(c.signup_ts AS DATE) <= DATE '{AS_OF}')
              OR (c.signup_ts IS NULL AND DATE '{AS_OF}' - first_d < 30) THEN 'new'
            WHEN COALESCE(before, 0) < 0.6 * total THEN 'high_value'
            WHEN days BETWEEN 2 AND 3 THEN 'potential' ELSE 'active' END AS layer,
       COALESCE(c.marketing_consent, false) AS consent
       FROM ranked r LEFT JOIN customers c ON c.customer_id = r.customer_id),
timed AS (SELECT o.customer_id, o.category, o.n, o.last_d, COALESCE(o.cycle, i.m, k.m) AS cycle,
                 CASE WHEN o.cycle IS NOT NULL THEN 'own' ELSE 'category' END AS source
          FROM own o JOIN firsts f ON f.customer_id = o.customer_id
          LEFT JOIN istats i ON i.category = o.category AND i.region IS NOT DISTINCT FROM f.fr
          LEFT JOIN cstats k ON k.category = o.category),
dated AS (SELECT *, CAST(last_d + CAST(round(cycle) AS INTEGER) AS DATE) AS due FROM timed)
SELECT d.customer_id, d.category, d.n, d.last_d, d.cycle, d.source, d.due, d.due - DATE '{AS_OF}',
       CASE WHEN d.cycle IS NULL THEN NULL
            WHEN DATE '{AS_OF}' - d.last_d > 2 * d.cycle THEN 'lapsed'
            WHEN d.due < DATE '{AS_OF}' THEN 'overdue'
            WHEN d.due - DATE '{AS_OF}' <= 7 THEN 'due' ELSE 'upcoming' END,
       l.layer, l.consent
FROM dated d JOIN layers l ON l.customer_id = d.customer_id
""",
    "referral_stats": f"""
WITH {PURCHASES},
days AS (SELECT customer_id, d, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY d) AS k
         FROM (SELECT DISTINCT customer_id, CAST(order_ts AS DATE) AS d FROM p)),
f AS (SELECT customer_id, MAX(CASE WHEN k = 1 THEN d END) AS d1, MAX(CASE WHEN k = 2 THEN d END) AS d2
      FROM days WHERE k <= 2 GROUP BY 1),
cu AS (SELECT strftime(f.d1, '%Y-%m') AS month, f.d1, f.d2 - f.d1 AS ds, NULLIF(c.referred_by, '') AS ref
       FROM f LEFT JOIN customers c ON c.customer_id = f.customer_id)
SELECT month, COUNT(*), COUNT(ref), COUNT(ref) / COUNT(*), COUNT(DISTINCT ref),
       COUNT(ref) / NULLIF(COUNT(DISTINCT ref), 0),
       SUM(CASE WHEN ref IS NOT NULL AND ds <= 90 THEN 1 ELSE 0 END) / NULLIF(COUNT(ref), 0),
       SUM(CASE WHEN ref IS NULL AND ds <= 90 THEN 1 ELSE 0 END) / NULLIF(COUNT(*) - COUNT(ref), 0),
       SUM(CASE WHEN ref IS NOT NULL AND ds <= 365 THEN 1 ELSE 0 END) / NULLIF(COUNT(ref), 0),
       SUM(CASE WHEN ref IS NULL AND ds <= 365 THEN 1 ELSE 0 END) / NULLIF(COUNT(*) - COUNT(ref), 0),
       DATE '{AS_OF}' - MAX(d1) >= 90, DATE '{AS_OF}' - MAX(d1) >= 365
FROM cu GROUP BY month
""",
    "tier_stats": f"""
WITH {PURCHASES},
pd AS (SELECT customer_id, CAST(order_ts AS DATE) AS d, SUM(amount_usd) AS usd, COUNT(*) AS orders FROM p GROUP BY 1, 2),
g AS (SELECT customer_id, d - LAG(d) OVER (PARTITION BY customer_id ORDER BY d) AS gap FROM pd),
cu AS (SELECT pd.customer_id, c.member_tier, COUNT(*) AS days, SUM(usd) AS rev, SUM(orders) AS orders
       FROM pd LEFT JOIN customers c ON c.customer_id = pd.customer_id GROUP BY 1, 2),
gs AS (SELECT cu.member_tier, median(gap) AS m FROM g JOIN cu ON cu.customer_id = g.customer_id
       WHERE gap IS NOT NULL GROUP BY 1),
t AS (SELECT member_tier, COUNT(*) AS n, SUM(CASE WHEN days >= 2 THEN 1 ELSE 0 END) AS rep,
             avg(days) AS ppc, SUM(rev) AS rev, SUM(orders) AS orders FROM cu GROUP BY 1)
SELECT t.member_tier, n, rep, rep / n, ppc, gs.m, rev / orders, rev, rev / SUM(rev) OVER ()
FROM t LEFT JOIN gs ON gs.member_tier IS NOT DISTINCT FROM t.member_tier
""",
    "acquisition_economics": f"""
WITH {PURCHASES},
firsts AS (SELECT customer_id, arg_min(channel, order_ts) AS channel, arg_min(region, order_ts) AS region,
                  MIN(CAST(order_ts AS DATE)) AS d1 FROM p GROUP BY 1),
cu AS (SELECT *, strftime(d1, '%Y-%m') AS month FROM firsts),
k AS (SELECT month, channel, region, COUNT(*) AS n, MAX(d1) AS last_d1 FROM cu GROUP BY 1, 2, 3),
offs AS (SELECT cu.month, cu.channel, cu.region, CAST(p.order_ts AS DATE) - cu.d1 AS o, SUM(p.amount_usd) AS usd
         FROM p JOIN cu ON cu.customer_id = p.customer_id GROUP BY 1, 2, 3, 4),
rev AS (SELECT month, channel, region, SUM(usd) FILTER (WHERE o <= 30) AS r30, SUM(usd) FILTER (WHERE o <= 90) AS r90,
               SUM(usd) FILTER (WHERE o <= 180) AS r180, SUM(usd) FILTER (WHERE o <= 365) AS r365
        FROM offs GROUP BY 1, 2, 3),
sp AS (SELECT strftime(spend_date, '%Y-%m') AS month, channel, region, SUM(amount_usd) AS usd
       FROM marketing_spend WHERE spend_date <= DATE '{AS_OF}' GROUP BY 1, 2, 3),
cm AS (SELECT month, channel, SUM(n) AS n FROM k GROUP BY 1, 2),
alloc AS (SELECT month, channel, region, usd FROM sp WHERE region IS NOT NULL
          UNION ALL
          SELECT sp.month, sp.channel, k.region, sp.usd * k.n / cm.n FROM sp
          JOIN cm ON cm.month = sp.month AND cm.channel = sp.channel
          JOIN k ON k.month = sp.month AND k.channel = sp.channel WHERE sp.region IS NULL
          UNION ALL
          SELECT sp.month, sp.channel, NULL, sp.usd FROM sp
          LEFT JOIN cm ON cm.month = sp.month AND cm.channel = sp.channel WHERE sp.region IS NULL AND cm.n IS NULL),
sc AS (SELECT month, channel, region, SUM(usd) AS spend FROM alloc GROUP BY 1, 2, 3),
cells AS (SELECT COALESCE(k.month, sc.month) AS month, COALESCE(k.channel, sc.channel) AS channel,
                 COALESCE(k.region, sc.region) AS region, COALESCE(k.n, 0) AS n, COALESCE(sc.spend, 0) AS spend, k.last_d1
          FROM k FULL JOIN sc ON sc.month = k.month AND sc.channel IS NOT DISTINCT FROM k.channel
                             AND sc.region IS NOT DISTINCT FROM k.region),
curve AS (SELECT month, channel, region, o,
                 SUM(usd) OVER (PARTITION BY month, channel, region ORDER BY o ROWS UNBOUNDED PRECEDING) AS cum FROM offs),
pb AS (SELECT u.month, u.channel, u.region, MIN(u.o) AS payback FROM curve u
       JOIN cells c ON c.month = u.month AND c.channel IS NOT DISTINCT FROM u.channel AND c.region IS NOT DISTINCT FROM u.region
       WHERE c.n > 0 AND u.cum >= c.spend GROUP BY 1, 2, 3)
SELECT c.month, c.channel, c.region, c.n, c.spend, c.spend / NULLIF(c.n, 0),
       r.r30 / NULLIF(c.n, 0), r.r90 / NULLIF(c.n, 0), r.r180 / NULLIF(c.n, 0), r.r365 / NULLIF(c.n, 0),
       DATE '{AS_OF}' - c.last_d1 >= 30, DATE '{AS_OF}' - c.last_d1 >= 90,
       DATE '{AS_OF}' - c.last_d1 >= 180, DATE '{AS_OF}' - c.last_d1 >= 365,
       (r.r365 / NULLIF(c.n, 0)) / NULLIF(c.spend / NULLIF(c.n, 0), 0), pb.payback
FROM cells c
LEFT JOIN rev r ON r.month = c.month AND r.channel IS NOT DISTINCT FROM c.channel AND r.region IS NOT DISTINCT FROM c.region
LEFT JOIN pb ON pb.month = c.month AND pb.channel IS NOT DISTINCT FROM c.channel AND pb.region IS NOT DISTINCT FROM c.region
""",
}

DUCK = r"""
import sys, duckdb
inputs, sql = sys.argv[1], open(sys.argv[2]).read()
con = duckdb.connect()
con.execute("SET threads=2")
con.execute("SET TimeZone='UTC'")
for t in ("orders", "customers", "fx_rates", "marketing_spend"):
    con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{inputs}/{t}.parquet')")
con.execute(f"COPY ({sql.strip().rstrip(';')}) TO '/dev/null' (FORMAT csv)")
"""


def main():
    args, work, inputs, data = demo_bench_setup(
        "rebuy-lifecycle-", lambda ap: ap.add_argument("--only", default=None, help="comma-separated views"))
    # amount_usd is stored by rebuy's ingest; DuckDB gets it stored too (derived once, untimed,
    # at the latest rate on or before the UTC day, as rebuy derives it).
    duck_inputs = work / f"duck-inputs-{args.orders}"
    if not duck_inputs.exists():
        import duckdb
        duck_inputs.mkdir()
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        fx = f"read_parquet('{inputs}/fx_rates.parquet')"
        for table, day in (("orders", "CAST(t.order_ts AS DATE)"), ("marketing_spend", "t.spend_date")):
            con.execute(f"""COPY (SELECT t.*, CAST(t.amount AS DOUBLE) * f.to_usd AS amount_usd
                FROM read_parquet('{inputs}/{table}.parquet') t
                ASOF JOIN {fx} f ON f.currency = t.currency AND {day} >= f.rate_date)
                TO '{duck_inputs}/{table}.parquet' (FORMAT parquet)""")
        con.execute(f"COPY (SELECT * FROM read_parquet('{inputs}/customers.parquet')) TO '{duck_inputs}/customers.parquet' (FORMAT parquet)")
        con.execute(f"COPY (SELECT * FROM {fx}) TO '{duck_inputs}/fx_rates.parquet' (FORMAT parquet)")
    inputs = duck_inputs
    duck = work / "duck.py"
    duck.write_text(DUCK)
    views = args.only.split(",") if args.only else list(DUCK_SQL)
    rows = []
    for view in views:
        plain = work / f"{view}.sql"
        plain.write_text(DUCK_SQL[view])
        t = {"duckdb": [], "rebuy": []}
        peak = {"duckdb": 0.0, "rebuy": 0.0}
        for i in range(args.runs + 1):
            d, dm = run_timed([sys.executable, str(duck), str(inputs), str(plain)])
            r, rm = run_timed([args.rebuy, "--data", str(data), "query", "--format", "csv",
                               f"SET rebuy.as_of = '{AS_OF}'; SELECT * FROM {view}"])
            if i:
                t["duckdb"].append(d)
                t["rebuy"].append(r)
                peak["duckdb"] = max(peak["duckdb"], dm)
                peak["rebuy"] = max(peak["rebuy"], rm)
        m = {k: statistics.median(v) for k, v in t.items()}
        rows.append((view, m["duckdb"], peak["duckdb"], m["rebuy"], peak["rebuy"]))
        print(f"  {view}: duckdb {m['duckdb']:.2f}s  rebuy {m['rebuy']:.2f}s", flush=True)
    print()
    print(f"{args.orders:,} orders, as of {AS_OF}, medians of {args.runs} runs")
    print("| view | DuckDB s | DuckDB peak MiB | rebuy s | rebuy peak MiB | rebuy/DuckDB |")
    print("|---|---:|---:|---:|---:|---:|")
    for view, d, dm, r, rm in rows:
        print(f"| {view} | {d:.2f} | {dm:.0f} | {r:.2f} | {rm:.0f} | {r / d:.2f} |")


if __name__ == "__main__":
    main()
