"""The forecast evaluation's peer: Nixtla statsforecast's AutoETS and AutoTheta on M4 Weekly.

Usage: python statsforecast_m4.py Weekly-train.csv HORIZON SEASON_LENGTH
Prints one JSON object: {"models": {"AutoETS": {"seconds": s, "forecasts": [[...], ...]}, ...}}
with the forecasts in the train file's row order. shopfuse scores them with its own metrics,
so both sides are measured identically.
"""
import csv
import json
import sys
import time

import numpy as np
from statsforecast.models import AutoETS, AutoTheta


def read_series(path):
    with open(path, newline="") as f:
        rows = csv.reader(f)
        next(rows)
        return [np.array([float(v) for v in row[1:] if v != ""]) for row in rows]


def main():
    path, horizon, season = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    series = read_series(path)
    out = {}
    for name, make in (("AutoETS", lambda: AutoETS(season_length=season)),
                       ("AutoTheta", lambda: AutoTheta(season_length=season))):
        started = time.perf_counter()
        forecasts = []
        for y in series:
            model = make()
            forecasts.append(model.forecast(y=y, h=horizon)["mean"].tolist())
        out[name] = {"seconds": time.perf_counter() - started, "forecasts": forecasts}
    json.dump({"models": out}, sys.stdout)


if __name__ == "__main__":
    main()
