"""Benchmark: are the planner's attainment probabilities calibrated? (demo company and M3 monthly)

For each data set, past years are planned with the data before them (the
last year, and the year before it), at growth rates -5 %..+20 %, with the
equal-growth and equal-probability methods; each unit's stated probability
of reaching its quota (:class:`salesplan.targets.JointForecast`) is compared
with what it actually did. Reported: the reliability table by decile of the
stated probability, and the Brier score against the naive rule "probability
= share of units that hit the same quota rule the year before".

- demo: reps (reconciled with teams, regions, company) and products;
- demo-shaped companies: the demo generator with seeds 1-6 over 2020-2025,
  every level, four planned years each (one shipped company has only one
  year that can be planned from two);
- M3 monthly (``../shared/data/m3``): all 1,428 series, each a unit
  (aligned on their last month; reconciliation bottom-up and no pooling, as
  the series are unrelated; the pooled variant is shown too), the last 12
  months and the 12 before them planned.

Run: ``.venv/bin/python benchmarks/bench_calibration.py``; writes
``benchmarks/results/calibration.json`` and ``.txt``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from salesplan.datasets import make_reps, make_transactions  # noqa: E402
from salesplan.io import load_data  # noqa: E402
from salesplan.targets import (  # noqa: E402
    DEFAULT_RAMP,
    align_ends,
    calibration_backtest,
    calibration_summary,
    metric_panel,
    reliability_table,
)

RESULTS = ROOT / "benchmarks" / "results"
M3 = ROOT.parent / "shared" / "data" / "m3" / "m3_monthly.csv.gz"
GROWTHS = (-0.05, 0.0, 0.05, 0.10, 0.20)


def run(name: str, panel: pd.DataFrame | list, **kw) -> tuple[dict, pd.DataFrame]:
    """Backtest one panel (or several, e.g. one per level, each pooled on its own) and summarise."""
    t0 = time.perf_counter()
    kw = {"origins": 2, **kw}
    panels = panel if isinstance(panel, list) else [panel]
    parts = []
    for p in panels:
        if isinstance(p, tuple):  # (panel, its own options, seed of the generated company)
            p, own, seed = p
            parts.append(calibration_backtest(p, growths=GROWTHS, n_samples=500, **kw, **own).assign(seed=seed))
        else:
            parts.append(calibration_backtest(p, growths=GROWTHS, n_samples=500, **kw))
    bt = pd.concat(parts, ignore_index=True)
    panels = [p[0] if isinstance(p, tuple) else p for p in panels]
    secs = time.perf_counter() - t0
    rel = reliability_table(bt, min_units=30)
    out = {"name": name, "units": int(sum(p["unique_id"].nunique() for p in panels)), "seconds": secs,
           "summary": calibration_summary(bt, min_units=30),
           "by_method": {m: calibration_summary(g, min_units=30) for m, g in bt.groupby("method")},
           "by_origin": {str(o.date()): calibration_summary(g, min_units=30) for o, g in bt.groupby("origin")},
           "reliability": rel.to_dict(orient="records")}
    return out, rel


def main() -> int:
    warnings.simplefilter("ignore")
    d = load_data(None)
    tx, reps = d["transactions"], d["reps"]
    parents = reps[["rep_id", "team", "region"]].rename(columns={"rep_id": "unique_id"})
    cases = [("demo reps (reps who started < 1 year ago ramp up, as in the planner)",
              metric_panel(tx, level="rep", reps=reps), {"parents": parents, "ramp": DEFAULT_RAMP}),
             ("demo products", metric_panel(tx, level="product"), {}),
             ("demo, every level (reps, products, regions, categories, channels), 2025 planned from 2023-2024",
              [metric_panel(tx, level=lv, reps=reps) for lv in ("rep", "product", "region", "category", "channel")],
              {"origins": 1})]
    # One shipped company has three years, so one year to check with two years to plan from: a single
    # year's common surprise moves every unit together. The same generator with other seeds and six
    # years gives 6 companies x 4 planned years of the same shape.
    shaped = []
    for seed in range(1, 7):
        gtx = make_transactions(seed=seed, start="2020-01-01", end="2025-12-31")
        greps = make_reps(seed=seed, start="2020-01-01", end="2025-12-31")
        gpar = greps[["rep_id", "team", "region"]].rename(columns={"rep_id": "unique_id"})
        for lv in ("rep", "product", "region", "category", "channel"):
            shaped.append((metric_panel(gtx, level=lv, reps=greps),
                           {"parents": gpar, "ramp": DEFAULT_RAMP} if lv == "rep" else {}, seed))
    cases.append(("demo-shaped companies (generator seeds 1-6, 2020-2025), every level, 2022-2025 each planned "
                  "from the years before", shaped, {"origins": 4}))
    if M3.exists():
        m3 = pd.read_csv(M3, usecols=["unique_id", "ds", "y"])
        m3["ds"] = pd.to_datetime(m3["ds"])
        m3 = align_ends(m3)
        cases.append(("M3 monthly (1,428 series; unrelated, so not pooled)", m3,
                      {"reconcile": "bottom_up", "pool": False}))
        cases.append(("M3 monthly (1,428 series; pooled as if one company's units)", m3,
                      {"reconcile": "bottom_up", "pool": True}))
    results, lines = [], []
    for name, panel, kw in cases:
        res, rel = run(name, panel, **kw)
        results.append(res)
        s = res["summary"]
        lines.append(f"== {name}: {res['units']} units, {s['n']} unit-quotas, {res['seconds']:.1f} s")
        lines.append(f"Brier {s['brier']:.3f} (on rows with a naive value {s['brier_on_naive_rows']:.3f}) vs naive "
                     f"{s['brier_naive']:.3f}; largest decile gap (>= 30 units) {s['max_abs_gap']:.3f} over "
                     f"{s['deciles_with_enough_units']} deciles")
        for o, os_ in res["by_origin"].items():
            lines.append(f"  origin {o}: Brier {os_['brier']:.3f}; max gap {os_['max_abs_gap']:.3f}")
        for m, ms in res["by_method"].items():
            lines.append(f"  {m}: Brier {ms['brier']:.3f} vs naive {ms['brier_naive']:.3f}; "
                         f"max gap {ms['max_abs_gap']:.3f}")
        lines.append(rel.round(3).to_string(index=False))
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "calibration.json").write_text(json.dumps({"machine": meta, "growths": GROWTHS, "cases": results},
                                                         indent=2, default=str) + "\n")
    text = "\n".join(lines)
    (RESULTS / "calibration.txt").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
