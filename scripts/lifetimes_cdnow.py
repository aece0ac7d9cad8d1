"""The `lifetimes` package (PyPI) on the same CDNOW customers as `shopfuse eval propensity`:
the peer its BG/NBD and Gamma-Gamma fits are compared with.

Usage: python lifetimes_cdnow.py CUSTOMERS.csv HOLDOUT_WEEKS
CUSTOMERS.csv has frequency,recency,T,monetary,holdout per customer, written by shopfuse.
Prints one JSON object: parameters, fit seconds, the holdout forecast and its MAE.
"""
import json
import sys
import time

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

path, weeks = sys.argv[1], float(sys.argv[2])
data = pd.read_csv(path)

started = time.perf_counter()
bgf = BetaGeoFitter(penalizer_coef=0.0)
bgf.fit(data["frequency"], data["recency"], data["T"])
bg_seconds = time.perf_counter() - started
forecast = bgf.conditional_expected_number_of_purchases_up_to_time(
    weeks, data["frequency"], data["recency"], data["T"]
)
mae = float((forecast - data["holdout"]).abs().mean())

buyers = data[(data["frequency"] > 0) & (data["monetary"] > 0)]
started = time.perf_counter()
ggf = GammaGammaFitter(penalizer_coef=0.0)
ggf.fit(buyers["frequency"], buyers["monetary"])
gg_seconds = time.perf_counter() - started

p = bgf.params_
g = ggf.params_
print(json.dumps({
    "bg_nbd": {"r": float(p["r"]), "alpha": float(p["alpha"]), "a": float(p["a"]), "b": float(p["b"])},
    "bg_nbd_seconds": bg_seconds,
    "holdout_forecast": float(forecast.sum()),
    "holdout_mae": mae,
    "gamma_gamma": {"p": float(g["p"]), "q": float(g["q"]), "gamma": float(g["v"])},
    "gamma_gamma_seconds": gg_seconds,
}))
