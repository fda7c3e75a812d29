"""Benchmark: a commission plan on 10,000 simulated years for 200 reps.

Case: 200 reps with quotas between 0.5 and 2 million, 10,000 simulated
yearly revenues per rep (log-normal around 80-120 % of quota), a plan with
four tiers (a decelerator below 60 %, the plan rate to 100 %, accelerators
above), a 40 % gate, a 200 % attainment cap and an amount cap. What is timed:

- ``simulate``: :func:`salesplan.incentives.simulate` from the tidy outcomes
  frame (``unique_id, sample, y``, 2 million rows) to the payouts, plus the
  summary, payout distribution, tier probabilities and per-rep summary;
- ``kernel``: :meth:`CommissionPlan.commission` on the ``[sample, rep]``
  revenue matrix alone;
- ``simulate_quarterly``: the same plan paid per quarter with a recoverable
  draw, on outcomes per rep, quarter and sample (8 million rows);

side by side with what a user would write without salesplan:

- ``naive_loop``: a Python function paying one rep for one year (the tiers
  walked in a loop), called for every rep and sample (all 2 million);
- ``naive_pandas``: the same function through ``DataFrame.apply(axis=1)`` on
  the outcomes frame, timed on 1,000 of the 10,000 samples and scaled by 10
  (the full run takes minutes).

The naive payouts are checked to equal the vectorised ones. Goal: simulate
<= 2 s. Timings are medians of several runs on a shared machine (the load
average is saved with them).

Run: ``.venv/bin/python benchmarks/bench_incentives.py [--repeats 5]``; writes
``benchmarks/results/incentives.json`` and ``.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from salesplan.incentives import CommissionPlan, simulate  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
N_REPS, N_SAMPLES, SEED = 200, 10_000, 2026
PLAN = {
    "name": "bench", "base_rate": 0.04, "gate": 0.4, "cap": {"attainment": 2.0, "amount": 150_000},
    "tiers": [{"from": 0, "multiplier": 0.5}, {"from": 0.6, "multiplier": 1.0},
              {"from": 1.0, "multiplier": 1.5}, {"from": 1.3, "multiplier": 2.0}],
    "period": "year",
}


def make_outcomes(seed: int = SEED) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    reps = [f"R{i:03d}" for i in range(N_REPS)]
    quota = rng.uniform(5e5, 2e6, N_REPS)
    mu = quota * rng.uniform(0.8, 1.2, N_REPS)
    y = rng.lognormal(np.log(mu), 0.25, (N_SAMPLES, N_REPS))
    out = pd.DataFrame({"unique_id": np.tile(reps, N_SAMPLES), "sample": np.repeat(np.arange(N_SAMPLES), N_REPS),
                        "y": y.ravel()})
    return out, pd.Series(quota, index=reps)


def pay_one(revenue: float, quota: float, plan: dict) -> float:
    """One rep, one year: what a spreadsheet formula or a hand-written script does."""
    att = revenue / quota
    if att < plan["gate"]:
        return 0.0
    tiers = plan["tiers"]
    cap_att = plan["cap"]["attainment"]
    total = 0.0
    for i, t in enumerate(tiers):
        lo = t["from"]
        hi = tiers[i + 1]["from"] if i + 1 < len(tiers) else cap_att
        hi = min(hi, cap_att)
        part = min(max(revenue - lo * quota, 0.0), max(hi - lo, 0.0) * quota)
        total += part * t["multiplier"]
    return min(total * plan["base_rate"], plan["cap"]["amount"])


def run_simulate(out, quota):
    sim = simulate(PLAN, out, quota=quota)
    sim.summary()
    sim.distribution()
    sim.tier_probabilities()
    sim.rep_summary()
    return sim


def make_quarterly(out):
    rng = np.random.default_rng(SEED + 1)
    share = rng.dirichlet(np.full(4, 20.0), size=len(out))      # how each year splits over its quarters
    quarters = pd.to_datetime(["2026-01-01", "2026-04-01", "2026-07-01", "2026-10-01"])
    return pd.DataFrame({"unique_id": np.repeat(out["unique_id"].to_numpy(), 4),
                         "period": np.tile(quarters.to_numpy(), len(out)),
                         "sample": np.repeat(out["sample"].to_numpy(), 4),
                         "y": (out["y"].to_numpy()[:, None] * share).ravel()})


def run_quarterly(outq, quota):
    plan = {**PLAN, "period": "quarter", "draw": {"amount": 5_000.0, "recoverable": True},
            "cap": {"attainment": 2.0, "amount": 40_000}}
    sim = simulate(plan, outq, quota=quota)  # the yearly quota, split over the quarters
    sim.summary()
    sim.tier_probabilities()
    return sim


def run_loop(out, quota):
    q = quota.to_dict()
    return [pay_one(y, q[u], PLAN) for u, y in zip(out["unique_id"].tolist(), out["y"].tolist())]


def run_pandas(out, quota):
    frame = out.assign(quota=out["unique_id"].map(quota))
    return frame.apply(lambda r: pay_one(r["y"], r["quota"], PLAN), axis=1)


def timed(fn, *args, repeats: int = 3):
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    out, quota = make_outcomes()
    plan = CommissionPlan.from_dict(PLAN)
    t_sim, sim = timed(run_simulate, out, quota, repeats=args.repeats)
    rev = sim.revenue
    t_kernel, _ = timed(plan.commission, rev, sim.quota, repeats=args.repeats)
    outq = make_quarterly(out)
    t_quarter, _ = timed(run_quarterly, outq, quota, repeats=max(1, args.repeats // 2))
    del outq
    t_loop, loop = timed(run_loop, out, quota, repeats=1)
    sub = out[out["sample"] < N_SAMPLES // 10]
    t_pd_sub, pdres = timed(run_pandas, sub, quota, repeats=1)
    t_pandas = t_pd_sub * 10
    vec = pd.Series(sim.payout.ravel(), index=pd.MultiIndex.from_arrays([np.repeat(sim.samples, N_REPS),
                                                                         np.tile(sim.reps, len(sim.samples))]))
    loop_s = pd.Series(loop, index=pd.MultiIndex.from_arrays([out["sample"], out["unique_id"]]))
    diff_loop = float(np.abs(vec.reindex(loop_s.index).to_numpy() - loop_s.to_numpy()).max())
    diff_pd = float(np.abs(vec.reindex(pd.MultiIndex.from_arrays([sub["sample"], sub["unique_id"]])).to_numpy()
                           - pdres.to_numpy()).max())
    res = {
        "case": f"{N_REPS} reps x {N_SAMPLES:,} simulated years, 4 tiers, gate, attainment and amount caps",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1min": os.getloadavg()[0]},
        "seconds": {"simulate": t_sim, "kernel": t_kernel, "simulate_quarterly": t_quarter, "naive_loop": t_loop, "naive_pandas_apply": t_pandas},
        "naive_pandas_measured_on": f"{N_SAMPLES // 10:,} samples, scaled x10",
        "speedup_vs_loop": t_loop / t_sim, "speedup_vs_pandas": t_pandas / t_sim,
        "max_abs_diff": {"loop": diff_loop, "pandas": diff_pd},
        "goal_simulate_le_2s": t_sim <= 2.0,
        "summary": sim.summary().iloc[0].to_dict(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "incentives.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    lines = [
        res["case"],
        f"machine: {res['machine']}  (shared machine: timings are noisy)",
        f"{'path':44s} {'seconds':>9s} {'x faster than':>14s}",
        f"{'salesplan simulate (frame in, summaries out)':44s} {t_sim:9.3f} {'':>14s}",
        f"{'salesplan kernel only (matrix)':44s} {t_kernel:9.3f} {'':>14s}",
        f"{'salesplan simulate per quarter, with draws':44s} {t_quarter:9.3f} {'':>14s}",
        f"{'naive: Python loop, one call per rep-year':44s} {t_loop:9.3f} {t_loop / t_sim:13.1f}x",
        f"{'naive: pandas apply(axis=1) (1/10 x 10)':44s} {t_pandas:9.3f} {t_pandas / t_sim:13.1f}x",
        f"payouts agree: max |diff| loop {diff_loop:.2e}, pandas {diff_pd:.2e}",
        f"goal simulate <= 2 s: {res['goal_simulate_le_2s']}",
        "wrote benchmarks/results/incentives.json",
    ]
    (RESULTS / "incentives.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
