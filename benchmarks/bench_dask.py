"""Forecasting many series: one process vs two local processes vs a Dask cluster of two workers.

10,000 synthetic monthly series (4 years each: level, trend, yearly season,
noise; seeded) are forecast 12 months ahead with salesplan's default models
and 80/95 % intervals (``salesplan.forecast.forecast``), through
``salesplan.forecast.parallel.run_chunks`` on

* ``engine="local"`` (one process),
* ``engine="processes", n_jobs=2`` (a local process pool),
* a ``dask.distributed.LocalCluster`` of 2 worker processes (1 thread each).

Reported: wall time, series per second, speed-up over one process and scaling
efficiency (speed-up / workers; goal >= 80 % at 2 workers), the CPU time of
all processes involved (driver, pool children, Dask workers) and the CPU
efficiency (one process's CPU time / this engine's: the share of the work that
is forecasting rather than fan-out, which a busy shared machine does not skew),
the CPU cost per series, that every engine gives the same forecasts, and the load average
before and after each engine's run. Each engine is warmed up on 200 series first (imports,
worker start; the process pool is started anew by each call, as a user's call starts it, and
forks from this process, so it inherits the imports). Results go to
benchmarks/results/dask.json and dask.txt.

Run: ``python benchmarks/bench_dask.py [--series 10000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"


def synthetic_panel(n_series: int, n_obs: int = 48, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n_obs)
    level = rng.gamma(2.0, 500.0, n_series)[:, None]
    trend = rng.normal(0.004, 0.006, n_series)[:, None]
    amp = rng.uniform(0.05, 0.35, n_series)[:, None]
    phase = rng.uniform(0, 2 * np.pi, n_series)[:, None]
    noise = rng.normal(0.0, rng.uniform(0.03, 0.15, n_series)[:, None], (n_series, n_obs))
    y = level * (1 + trend) ** t * (1 + amp * np.sin(2 * np.pi * t / 12 + phase)) * np.exp(noise)
    ids = np.array([f"S{i:05d}" for i in range(n_series)])
    return pd.DataFrame({
        "unique_id": np.repeat(ids, n_obs),
        "ds": np.tile(pd.date_range("2021-01-01", periods=n_obs, freq="MS").to_numpy(), n_series),
        "y": np.round(y.ravel(), 2),
    })


def _cpu(engine) -> float:
    """CPU seconds used so far by this process, its reaped children, and the Dask workers."""
    import resource

    total = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime \
        + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
    if not isinstance(engine, str):
        total += sum(engine.run(time.process_time).values())
    return total


def run(panel: pd.DataFrame, engine, n_jobs: int = 1) -> tuple[pd.DataFrame, float, float]:
    """The forecasts, the wall time and the CPU time of all processes involved."""
    from salesplan.forecast import forecast

    cpu0 = _cpu(engine)
    t0 = time.perf_counter()
    out = forecast(panel, 12, engine=engine, n_jobs=n_jobs, progress=False)
    wall = time.perf_counter() - t0
    return out, wall, _cpu(engine) - cpu0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--out", default=str(RESULTS / "dask"))
    args = parser.parse_args(argv)
    import distributed

    panel = synthetic_panel(args.series)
    warm = synthetic_panel(200, seed=1)
    load0 = os.getloadavg()[0]
    rows = []
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    try:
        engines = [("one process", "local", 1, 1), ("two local processes", "processes", 2, 2),
                   ("Dask LocalCluster, 2 workers", client, 1, 2)]
        reference = None
        for name, engine, n_jobs, workers in engines:
            run(warm, engine, n_jobs)
            load_before = os.getloadavg()[0]
            out, wall, cpu = run(panel, engine, n_jobs)
            same, worst = True, 0.0
            if reference is None:
                reference = out
            else:
                try:
                    pd.testing.assert_frame_equal(out, reference)
                except AssertionError:
                    same = False
                    num = reference.select_dtypes("number").columns
                    if out.shape == reference.shape and (out["unique_id"] == reference["unique_id"]).all():
                        rel = (out[num] - reference[num]).abs() / reference[num].abs().clip(lower=1e-9)
                        worst = float(np.nanmax(rel.to_numpy()))
                    else:
                        worst = float("nan")  # other rows or order
            rows.append({"engine": name, "workers": workers, "series": args.series, "wall_s": round(wall, 2),
                         "series_per_s": round(args.series / wall, 1), "same_forecasts": same,
                         "max_relative_difference": worst,
                         "cpu_s": round(cpu, 2),
                         # 1-minute load average before and after this engine's run: on a
                         # shared machine the wall clock (not the CPU time) follows it
                         "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1)})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        client.close()
        cluster.close()
    base = rows[0]["wall_s"]
    base_cpu = rows[0]["cpu_s"]
    for r in rows:
        r["speedup"] = round(base / r["wall_s"], 2)
        r["efficiency"] = round(base / r["wall_s"] / r["workers"], 2)
        # On a shared machine the wall clock depends on the other jobs; the CPU time does not:
        # the share of the CPU spent on the forecasts rather than on the fan-out.
        r["cpu_efficiency"] = round(base_cpu / r["cpu_s"], 2)
    cost = base_cpu / args.series  # seconds of one core per series
    summary = {
        "rows": rows,
        "seconds_per_series_one_core": round(cost, 5),
        "core_hours_per_million_series": round(cost * 1e6 / 3600, 2),
        "load_average_start": round(load0, 1),
        "load_average_end": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
    }
    Path(args.out).with_suffix(".json").write_text(json.dumps(summary, indent=1))
    table = pd.DataFrame(rows)[["engine", "workers", "series", "wall_s", "series_per_s", "speedup",
                                "efficiency", "cpu_s", "cpu_efficiency", "same_forecasts", "load_before",
                                "load_after"]]
    text = (f"{args.series:,} monthly series x 48 months, 12-month forecasts with 80/95 % intervals "
            f"(default models); {os.cpu_count()} cores shared with other jobs, load average "
            f"{summary['load_average_start']} at start, {summary['load_average_end']} at end\n\n"
            + table.to_string(index=False)
            + f"\n\ncost: {cost * 1000:.1f} ms of one core per series = "
              f"{summary['core_hours_per_million_series']} core-hours per million series\n")
    Path(args.out).with_suffix(".txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
