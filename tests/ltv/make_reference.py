#!/usr/bin/env python3
"""Reference values for rebuy's lifetime-value functions, made with the `lifetimes` package
(a test oracle only: `pip install lifetimes`) on the CDNOW summary it ships (2357 customers,
time unit weeks).

Writes, next to this script:
- cdnow_summary.csv: customer_id, frequency, recency, t, monetary_value (the inputs);
- reference_params.csv: model, parameter, value (fitted by lifetimes);
- reference_predictions.csv: per customer, BG/NBD and MBG/NBD expected purchases in 10 and 52
  weeks and p_alive, Gamma-Gamma expected value, CLV over 12 months at 1% a month (BG/NBD +
  Gamma-Gamma, lifetimes' customer_lifetime_value with freq="W");
- reference_new.csv: BG/NBD expected purchases of a new customer over some horizons.
Usage: python3 tests/ltv/make_reference.py
"""
from pathlib import Path

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

HERE = Path(__file__).resolve().parent
d = load_cdnow_summary_data_with_monetary_value().reset_index()
d = d.rename(columns={"T": "t"})
d[["customer_id", "frequency", "recency", "t", "monetary_value"]].to_csv(HERE / "cdnow_summary.csv", index=False)

bg = BetaGeoFitter().fit(d["frequency"], d["recency"], d["t"])
mbg = ModifiedBetaGeoFitter().fit(d["frequency"], d["recency"], d["t"])
repeat = d[d["frequency"] > 0]
gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])

rows = []
for model, fitter in (("bgnbd", bg), ("mbgnbd", mbg), ("gamma_gamma", gg)):
    for k, v in fitter.params_.items():
        rows.append((model, k, repr(float(v))))
    rows.append((model, "log_likelihood", repr(float(fitter._negative_log_likelihood_ * -1))))
pd.DataFrame(rows, columns=["model", "parameter", "value"]).to_csv(HERE / "reference_params.csv", index=False)

out = d[["customer_id"]].copy()
for name, fitter in (("bgnbd", bg), ("mbgnbd", mbg)):
    for h in (10, 52):
        out[f"{name}_expected_{h}"] = fitter.conditional_expected_number_of_purchases_up_to_time(
            h, d["frequency"], d["recency"], d["t"])
    out[f"{name}_p_alive"] = fitter.conditional_probability_alive(d["frequency"], d["recency"], d["t"])
out["gg_expected_value"] = gg.conditional_expected_average_profit(d["frequency"], d["monetary_value"])
out["clv_12m"] = gg.customer_lifetime_value(bg, d["frequency"], d["recency"], d["t"], d["monetary_value"],
                                            time=12, discount_rate=0.01, freq="W")
out.to_csv(HERE / "reference_predictions.csv", index=False, float_format="%.12g")

new = pd.DataFrame({"horizon": [1, 10, 52, 104]})
new["bgnbd_expected_new"] = [float(bg.expected_number_of_purchases_up_to_time(h)) for h in new["horizon"]]
new.to_csv(HERE / "reference_new.csv", index=False, float_format="%.12g")
print(bg.params_.to_dict(), mbg.params_.to_dict(), gg.params_.to_dict())
