#!/usr/bin/env python3
"""Lifetime-value fitting and scoring: rebuy's SQL functions vs the `lifetimes` package, on the
same simulated customers, side by side in one run.

Customers are simulated from the BG/NBD process (gamma purchase rates, beta dropout, daily
time unit, observation 30 to 1095 days; spend gamma-distributed), written to a CSV
(frequency, recency, t, monetary_value). Then, alternating in each round:

- lifetimes: BetaGeoFitter.fit, GammaGammaFitter.fit (repeat customers), and scoring every
  customer (conditional expected purchases in 30 days, p_alive, expected value);
- rebuy: `rebuy query -f` in a fresh process: bgnbd_fit and gamma_gamma_fit (the struct's fit_ms
  is the fit alone), and the same scoring over all customers held in memory with the fitted
  models in a table (measured as the difference of a process with and without the scoring
  statement).

Usage: benches/ltv_vs_lifetimes.py [--sizes 100000,1000000] [--runs 3] [--rebuy PATH]
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def simulate(n, seed=7):
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 0.8, 40.0, 0.9, 3.5
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.integers(30, 1096, n).astype(float)
    x = np.zeros(n)
    tx = np.zeros(n)
    now = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    for _ in range(400):
        if not alive.any():
            break
        gap = np.ceil(rng.exponential(1 / np.maximum(lam, 1e-9)))
        nxt = now + gap
        buy = alive & (nxt <= T)
        x[buy] += 1
        tx[buy] = nxt[buy]
        now = np.where(buy, nxt, now)
        alive = buy & (rng.random(n) > p)
    m = np.where(x > 0, rng.gamma(6.0, 8.0, n) * (1 + rng.random(n)), 0.0).round(2)
    return pd.DataFrame({"frequency": x.astype(int), "recency": tx, "t": T, "monetary_value": m})


def run_lifetimes(df):
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    t0 = time.perf_counter()
    bg = BetaGeoFitter().fit(df["frequency"], df["recency"], df["t"])
    t1 = time.perf_counter()
    rep = df[df["frequency"] > 0]
    gg = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    t2 = time.perf_counter()
    e = bg.conditional_expected_number_of_purchases_up_to_time(30, df["frequency"], df["recency"], df["t"])
    pa = bg.conditional_probability_alive(df["frequency"], df["recency"], df["t"])
    v = gg.conditional_expected_average_profit(df["frequency"], df["monetary_value"])
    float(e.sum() + pa.sum() + v.sum())
    t3 = time.perf_counter()
    return {"bg_fit": t1 - t0, "gg_fit": t2 - t1, "score": t3 - t2, "params": dict(bg.params_)}


def rebuy_sql(csv, score):
    # The customers are loaded into memory and the fits kept in a table, so that the scoring
    # statement measures scoring alone.
    sql = [f"CREATE EXTERNAL TABLE f STORED AS CSV LOCATION '{csv}' OPTIONS ('format.has_header' 'true')",
           "CREATE TABLE s AS SELECT * FROM f",
           "CREATE TABLE fits AS SELECT bgnbd_fit(frequency, recency, t) AS m, gamma_gamma_fit(frequency, monetary_value) AS g FROM s",
           "SELECT m['fit_ms'] AS ms, m['converged'] AS ok, m['r'] AS r, m['alpha'] AS alpha, m['a'] AS a, m['b'] AS b FROM fits",
           "SELECT g['fit_ms'] AS ms, g['converged'] AS ok FROM fits"]
    if score:
        sql.append("SELECT SUM(bgnbd_expected_purchases(m, frequency, recency, t, 30)) + SUM(bgnbd_p_alive(m, frequency, recency, t)) "
                   "+ SUM(gamma_gamma_expected_value(g, frequency, monetary_value)) AS total FROM s CROSS JOIN fits")
    return ";\n".join(sql) + ";\n"


def run_rebuy(binary, csv, work):
    times = {}
    outs = {}
    for score in (False, True):
        f = work / f"bench_{score}.sql"
        f.write_text(rebuy_sql(csv, score))
        t0 = time.perf_counter()
        out = subprocess.run([binary, "--data", str(work / "empty"), "query", "-f", str(f), "--format", "csv"],
                             check=True, capture_output=True, text=True).stdout
        times[score] = time.perf_counter() - t0
        outs[score] = out
    lines = [l for l in outs[False].splitlines() if l and l[0].isdigit()]
    bg_ms, gg_ms = float(lines[0].split(",")[0]), float(lines[1].split(",")[0])
    return {"bg_fit": bg_ms / 1000, "gg_fit": gg_ms / 1000, "score": times[True] - times[False],
            "process": times[False], "params": lines[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuy", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "rebuy"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in [int(s) for s in args.sizes.split(",")]:
            df = simulate(n)
            csv = work / f"customers_{n}.csv"
            df.to_csv(csv, index=False)
            distinct = len(df[["frequency", "recency", "t"]].drop_duplicates())
            lt, rb = [], []
            for _ in range(args.runs):
                lt.append(run_lifetimes(df))
                rb.append(run_rebuy(args.rebuy, csv, work))
            med = lambda rows, k: statistics.median(r[k] for r in rows)
            print(f"\n{n:,} customers ({distinct:,} distinct (frequency, recency, t)); medians of {args.runs}")
            print(f"{'':22} {'lifetimes':>10} {'rebuy':>10} {'speed-up':>9}")
            for k, label in (("bg_fit", "BG/NBD fit (s)"), ("gg_fit", "Gamma-Gamma fit (s)"), ("score", "scoring all (s)")):
                a, b = med(lt, k), med(rb, k)
                print(f"{label:22} {a:>10.3f} {b:>10.3f} {a / b:>8.1f}x")
            print(f"rebuy whole process (session, CSV read, both fits): {med(rb, 'process'):.2f} s")
            print("lifetimes BG/NBD params:", {k: round(v, 5) for k, v in lt[-1]["params"].items()})
            print("rebuy     BG/NBD (fit_ms, converged, r, alpha, a, b):", rb[-1]["params"])


if __name__ == "__main__":
    main()
