"""Benchmark: salesplan's default forecast against statsforecast's AutoETS.

Side by side in one run, on the same series:

* the 1,428 M3 monthly series (h = 18 from the train split; ../shared/data),
* 500 synthetic monthly series of 48 months (h = 12, seeded),

with one process and with two, reporting wall time, series per second and
accuracy (MASE against the in-sample seasonal naive, and M3 sMAPE). Both sides
compute point forecasts only (no intervals). Also the single-series
interactive latency of salesplan with every shipped model at once (with
intervals): the median over 24 series, on 48-month synthetic series and on
the M3 series of 100-126 months.

statsforecast pins pandas < 3, so it runs in its own virtualenv (default
``.venv-statsforecast``; create it with ``python3.11 -m venv .venv-statsforecast &&
.venv-statsforecast/bin/pip install statsforecast``) as a subprocess. Its
first-call cost is reported separately: a warm-up fit on a tiny panel is timed
first ("compile": numba JIT in statsforecast < 2; 2.x ships compiled C++, so
it is only first-call overhead there), then the full run ("warm"); "cold" =
compile + warm is what a first call in a fresh process costs.

Usage::

    .venv/bin/python benchmarks/bench_forecast.py [--only m3|synthetic] [--jobs 1 2]
        [--sf-python .venv-statsforecast/bin/python] [--no-statsforecast]
    .venv/bin/python benchmarks/bench_forecast.py --m3-models   # per-model M3 table
    .venv/bin/python benchmarks/bench_forecast.py --latency     # one series, all shipped models
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from salesplan.forecast import forecast  # noqa: E402

M3 = ROOT.parent / "shared" / "data" / "m3" / "m3_monthly.csv.gz"

SF_SCRIPT = r"""
import sys, time, json
import numpy as np, pandas as pd
t0 = time.perf_counter()
from statsforecast import StatsForecast
from statsforecast.models import AutoETS
t_import = time.perf_counter() - t0
train = pd.read_parquet(sys.argv[1])
h, n_jobs, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tiny = train[train.unique_id.isin(train.unique_id.unique()[:2])]
t0 = time.perf_counter()
StatsForecast(models=[AutoETS(season_length=12)], freq="MS", n_jobs=1).forecast(df=tiny, h=h)
t_compile = time.perf_counter() - t0
t0 = time.perf_counter()
fc = StatsForecast(models=[AutoETS(season_length=12)], freq="MS", n_jobs=n_jobs).forecast(df=train, h=h)
t_warm = time.perf_counter() - t0
fc.reset_index().to_parquet(out)
print(json.dumps({"import": t_import, "compile": t_compile, "warm": t_warm}))
"""


def synthetic(n_series: int = 500, n_train: int = 48, h: int = 12, seed: int = 20261127):
    """Seeded monthly series: level x trend (some damped) x season (mult. or add.) x noise."""
    rng = np.random.default_rng(seed)
    T = n_train + h
    t = np.arange(T)
    level = rng.uniform(50, 5000, n_series)[:, None]
    slope = rng.normal(0.004, 0.01, n_series)[:, None]
    phi = np.where(rng.uniform(size=n_series) < 0.4, 0.9, 1.0)[:, None]
    damped_sum = (1 - phi ** (t + 1)) / np.where(phi < 1, 1 - phi, 1.0)
    growth = np.where(phi < 1, damped_sum, t + 1.0) * slope
    amp = rng.uniform(0, 0.35, n_series)[:, None] * (rng.uniform(size=n_series) < 0.7)[:, None]
    phase = rng.uniform(0, 2 * np.pi, n_series)[:, None]
    season = amp * np.sin(2 * np.pi * t / 12 + phase)
    mult = (rng.uniform(size=n_series) < 0.5)[:, None]
    noise_sd = rng.uniform(0.03, 0.2, n_series)[:, None]
    noise = np.cumsum(rng.normal(0, 1, (n_series, T)) * noise_sd * 0.3, axis=1) + rng.normal(0, 1, (n_series, T)) * noise_sd
    base = level * (1 + growth)
    y = np.where(mult, base * (1 + season), base + level * season) * np.exp(noise * 0.5)
    y = np.maximum(y, 1.0)
    ids = np.repeat([f"S{i:04d}" for i in range(n_series)], T)
    ds = np.tile(pd.date_range("2020-01-01", periods=T, freq="MS"), n_series)
    df = pd.DataFrame({"unique_id": ids, "ds": ds, "y": y.ravel()})
    split = np.tile(np.r_[np.zeros(n_train, bool), np.ones(h, bool)], n_series)
    return df[~split].reset_index(drop=True), df[split].reset_index(drop=True), h


def m3():
    d = pd.read_csv(M3, parse_dates=["ds"])
    train = d[d["split"] == "train"][["unique_id", "ds", "y"]].reset_index(drop=True)
    test = d[d["split"] == "test"][["unique_id", "ds", "y"]].reset_index(drop=True)
    return train, test, 18


def accuracy(train: pd.DataFrame, test: pd.DataFrame, fc: pd.DataFrame, col: str, m: int = 12) -> dict:
    fc = fc[["unique_id", "ds", col]].copy()
    fc["unique_id"] = fc["unique_id"].astype(str)
    fc["ds"] = pd.to_datetime(fc["ds"])
    te = test.assign(unique_id=test["unique_id"].astype(str))
    j = te.merge(fc, on=["unique_id", "ds"], how="left", validate="1:1")
    if j[col].isna().any():
        raise RuntimeError(f"{col}: {int(j[col].isna().sum())} test points without forecast")
    y, f = j["y"].to_numpy(), j[col].to_numpy()
    smape = float(np.mean(200 * np.abs(y - f) / (np.abs(y) + np.abs(f))))
    # MASE scale: in-sample mean absolute error of the seasonal naive forecast
    scale = train.groupby("unique_id")["y"].apply(lambda s: np.mean(np.abs(s.to_numpy()[m:] - s.to_numpy()[:-m])))
    scale.index = scale.index.astype(str)
    j["ae"] = np.abs(y - f)
    mae = j.groupby("unique_id")["ae"].mean()
    mase = float((mae / scale.reindex(mae.index)).mean())
    return {"smape": smape, "mase": mase}


def run_ours(train, h, n_jobs):
    engine = "local" if n_jobs == 1 else "processes"
    times = []
    fc = None
    for _ in range(2):  # first = cold (nothing to compile: numpy), second = warm
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # point forecasts only, like the AutoETS call (no level=) it is compared with
            fc = forecast(train, h, models="auto", freq="MS", level=None, engine=engine, n_jobs=n_jobs,
                          progress=False)
        times.append(time.perf_counter() - t0)
    return fc, {"cold": times[0], "warm": times[1]}


def run_statsforecast(sf_python, train, h, n_jobs):
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "train.parquet", Path(tmp) / "fc.parquet"
        train.to_parquet(src)
        # a fresh numba cache: statsforecast < 2 JIT-compiles with numba and
        # caches on disk, so without this "compile" would only load the cache
        # (statsforecast 2.x ships compiled C++ and has no JIT step at all)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba-cache"))
        res = subprocess.run([sf_python, "-c", SF_SCRIPT, str(src), str(h), str(n_jobs), str(out)],
                             capture_output=True, text=True, check=True, env=env)
        t = json.loads(res.stdout.strip().splitlines()[-1])
        fc = pd.read_parquet(out)
    t["cold"] = t["compile"] + t["warm"]
    return fc, t


#: the shipped models, all at once, as an interactive session asks for them
LATENCY_MODELS = ["auto", "ensemble", "ets", "damped", "theta", "arima", "naive", "snaive", "naive2"]


def latency(train, n=24, h=12, min_obs=0):
    """Wall time of one ``forecast`` call (all shipped models, level=[80, 95]) per series.

    ``n`` series with at least ``min_obs`` observations, evenly spaced over
    the panel; returns ``{series id: seconds}`` after one warm-up call.
    """
    size = train.groupby("unique_id").size()
    ids = size.index[size >= min_obs].to_numpy()
    ids = ids[:: max(1, ids.size // n)][:n]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecast(train[train["unique_id"] == ids[0]], h, models=LATENCY_MODELS, level=[80, 95])  # first-call costs
        for uid in ids:
            one = train[train["unique_id"] == uid]
            t0 = time.perf_counter()
            forecast(one, h, models=LATENCY_MODELS, level=[80, 95])
            out[uid] = time.perf_counter() - t0
    return out


def latency_report(label, times, n_obs):
    t = 1000 * np.array(list(times.values()))
    slow = sorted(times, key=times.get)[-3:][::-1]
    print(f"{label}: one series ({n_obs}), {len(LATENCY_MODELS)} models with level=[80, 95], {t.size} series: "
          f"median {np.median(t):.0f} ms, p10 {np.quantile(t, 0.1):.0f}, p90 {np.quantile(t, 0.9):.0f}, "
          f"max {t.max():.0f} ms; slowest {', '.join(f'{k} {1000 * times[k]:.0f}' for k in slow)} "
          f"(load average {os.getloadavg()[0]:.1f})")


def model_table():
    """Every model on all 1,428 M3 monthly series: sMAPE, MASE and fit+forecast time."""
    train, test, h = m3()
    rows = []
    for name in ["auto", "ensemble", "ets", "damped", "theta", "arima", "naive2", "snaive", "naive",
                 "sba", "croston", "tsb"]:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = forecast(train, h, models=name, freq="MS", level=None)
        dt = time.perf_counter() - t0
        acc = accuracy(train, test, fc, name)
        rows.append({"model": name, "smape": acc["smape"], "mase": acc["mase"], "seconds": dt})
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rows[-1].items()}), flush=True)
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["m3", "synthetic"], default=None)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sf-python", default=str(ROOT / ".venv-statsforecast" / "bin" / "python"))
    ap.add_argument("--no-statsforecast", action="store_true")
    ap.add_argument("--m3-models", action="store_true", help="only the per-model M3 accuracy table")
    ap.add_argument("--latency", action="store_true", help="only the single-series latency")
    args = ap.parse_args(argv)
    if args.m3_models:
        return model_table()
    if args.latency:
        latency_report("synthetic", latency(synthetic()[0]), "48 months")
        if M3.exists():
            # M3-length series: the longest monthly ones (100-126 months), h = 18
            latency_report("M3", latency(m3()[0], h=18, min_obs=100), "100-126 months")
        return None
    sf = not args.no_statsforecast and Path(args.sf_python).exists()
    if not sf and not args.no_statsforecast:
        print(f"statsforecast python {args.sf_python} not found; comparing nothing (see the docstring)")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    datasets = []
    if args.only in (None, "synthetic"):
        datasets.append(("synthetic 500x48", synthetic))
    if args.only in (None, "m3") and M3.exists():
        datasets.append(("M3 monthly 1428", m3))
    rows = []
    for name, make in datasets:
        train, test, h = make()
        n = train["unique_id"].nunique()
        for jobs in args.jobs:
            fc, t = run_ours(train, h, jobs)
            acc = accuracy(train, test, fc, "auto")
            row = {"data": name, "jobs": jobs, "ours_cold_s": t["cold"], "ours_warm_s": t["warm"],
                   "ours_series_per_s": n / t["warm"], "ours_mase": acc["mase"], "ours_smape": acc["smape"]}
            if sf:
                sfc, st = run_statsforecast(args.sf_python, train, h, jobs)
                sacc = accuracy(train, test, sfc, "AutoETS")
                row.update({"sf_compile_s": st["compile"], "sf_warm_s": st["warm"], "sf_cold_s": st["cold"],
                            "sf_series_per_s": n / st["warm"], "sf_mase": sacc["mase"], "sf_smape": sacc["smape"],
                            "speedup_warm": st["warm"] / t["warm"], "speedup_cold": st["cold"] / t["cold"]})
            rows.append(row)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    if datasets:
        # the last dataset's train/h are still bound from the loop
        latency_report(datasets[-1][0], latency(train, h=h), "its own length")
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(3).to_string(index=False))
    print(f"load average at end {os.getloadavg()[0]:.1f} (timings on a shared machine are noisy)")


if __name__ == "__main__":
    main()
