"""Pipeline speed: funnel, durations and scoring, salesplan against plain pandas groupby code.

Synthetic pipeline of 1,000,000 opportunities and about 6,000,000 stage events
(generated here with vectorised numpy; 20 teams of 10 reps; ids and stage names
as pandas strings, as salesplan.io and the demo load them; dates as
datetime64[ns]). Contenders, each from the raw frames:

- ``salesplan`` funnel + durations: ``prepare`` once, then ``funnel(by="team")``,
  ``stage_durations(by="team")`` (Kaplan-Meier) and ``cycle_length(by="team")``;
  the rep scorecard of ``salesplan.performance`` (the won deals as order lines)
  is timed on its own and added for the goal.
- ``pandas`` funnel + durations: the groupby code an analyst would write:
  highest stage per deal from the history, counts per stage and team, time in
  stage from ``groupby().shift(-1)``, plain medians of the finished stays.
- scoring: ``WinModel.predict`` for 100,000 open deals (fitted beforehand on
  the demo data), against a pandas version that builds the same features with
  ``groupby().last()`` and calls the same scikit-learn pipeline.

Reports the median of 5 timed runs after a warm-up (wall clock and CPU time),
the ratio pandas / salesplan, and whether the goals hold (funnel + durations
<= 2 s on 2 cores; scoring 100k open deals <= 1 s). Writes
``benchmarks/results/pipeline.json`` and ``pipeline.txt``.
Run: ``nice -n 10 .venv/bin/python benchmarks/bench_pipeline.py``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from salesplan import datasets  # noqa: E402
from salesplan.errors import SalesplanDataWarning  # noqa: E402
from salesplan.pipeline import (  # noqa: E402
    Process,
    WinModel,
    cycle_length,
    funnel,
    prepare,
    stage_durations,
)

N_DEALS = 1_000_000
N_SCORE = 100_000
REPEATS = 5
GOAL_FUNNEL_S = 2.0
GOAL_SCORE_S = 1.0
START = np.datetime64("2022-01-01")
AS_OF = pd.Timestamp("2025-12-31")
STAGES = Process().stages


def make_pipeline(n: int, seed: int = 0, open_share: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Opportunities, stage history (about 6 events per deal) and reps."""
    rng = np.random.default_rng(seed)
    k = len(STAGES)
    reps = pd.DataFrame({
        "rep_id": pd.array([f"R{i:03d}" for i in range(200)], dtype="string"),
        "team": pd.array([f"Team {i // 10:02d}" for i in range(200)], dtype="string"),
    })
    rep = rng.integers(0, 200, n)
    created = rng.integers(0, 4 * 365 - 30, n)
    # each stage is passed with a rep-dependent chance; a deal stops at its first failure
    skill = rng.normal(0, 0.3, 200)[rep]
    p_pass = 1 / (1 + np.exp(-(2.6 + skill)))
    passes = rng.random((n, k)) < p_pass[:, None]
    top = np.where(passes.all(axis=1), k - 1, np.argmin(passes, axis=1))
    won = passes.all(axis=1)
    days = rng.gamma(2.0, 6.0, (n, k)).round() + 1
    entry = created[:, None] + np.concatenate([np.zeros((n, 1)), np.cumsum(days[:, :-1], axis=1)], axis=1)
    # won: after the last stage; lost: during the stage where it stopped
    close_day = entry[np.arange(n), top] + np.where(won, days[:, -1], np.ceil(days[np.arange(n), top] / 2))
    as_of_day = (AS_OF.to_datetime64() - START).astype("timedelta64[D]").astype(int)
    if open_share is None:
        is_open = close_day > as_of_day
    else:
        is_open = rng.random(n) < open_share
        close_day = np.where(is_open, as_of_day + 30, np.minimum(close_day, as_of_day))
    status = np.where(is_open, "open", np.where(won, "won", "lost"))
    # open deals sit in their top stage; keep only stages entered by as_of
    reached = np.arange(k)[None, :] <= top[:, None]
    if open_share is not None:
        entry = np.minimum(entry, as_of_day - 1)
    reached &= entry <= as_of_day
    top = np.where(is_open, reached.sum(axis=1) - 1, top)
    top = np.maximum(top, 0)
    reached[:, 0] = True
    stage_now = np.where(is_open, np.asarray(STAGES, dtype=object)[top], status)
    ids = np.char.add("OP", np.char.zfill(np.arange(n).astype(str), 7))
    opps = pd.DataFrame({
        "opportunity_id": pd.array(ids, dtype="string"),
        "customer_id": pd.array(np.char.add("C", (rng.integers(0, 50_000, n)).astype(str)), dtype="string"),
        "rep_id": reps["rep_id"].to_numpy()[rep],
        "amount": np.round(rng.lognormal(9.5, 0.8, n), -2),
        "created_date": (START + created.astype("timedelta64[D]")).astype("datetime64[ns]"),
        "stage": pd.array(stage_now.astype(str), dtype="string"),
        "status": pd.array(status, dtype="string"),
        "close_date": (START + close_day.astype(np.int64).astype("timedelta64[D]")).astype("datetime64[ns]"),
    })
    rows, cols = np.nonzero(reached)
    h_stage = np.asarray(STAGES, dtype=object)[cols]
    h_day = entry[rows, cols]
    closed = ~is_open
    term_rows = np.flatnonzero(closed)
    all_rows = np.concatenate([rows, term_rows])
    order = np.argsort(all_rows, kind="stable")
    hist = pd.DataFrame({
        "opportunity_id": pd.array(ids[all_rows[order]], dtype="string"),
        "stage": pd.array(np.concatenate([h_stage, status[term_rows]])[order].astype(str), dtype="string"),
        "entered_at": (START + np.concatenate([h_day, close_day[term_rows]])[order]
                       .astype(np.int64).astype("timedelta64[D]")).astype("datetime64[ns]"),
    })
    return opps, hist, reps


# -- salesplan -------------------------------------------------------------------

def salesplan_funnel_durations(opps, hist, reps):
    d = prepare(opps, hist, as_of=AS_OF)
    return (funnel(d, by="team", reps=reps), stage_durations(d, by="team", reps=reps),
            cycle_length(d, by="team", reps=reps))


def scorecard_tables(opps, hist, reps):
    """The tables a scorecard reads: the won deals become the order lines."""
    won = opps[opps["status"] == "won"]
    tx = pd.DataFrame({"order_date": won["close_date"], "customer_id": won["customer_id"],
                       "revenue": won["amount"], "rep_id": won["rep_id"]}).reset_index(drop=True)
    reps = reps.assign(region=reps["team"].str.replace("Team", "Region"))
    return {"transactions": tx, "opportunities": opps, "stage_history": hist, "reps": reps}


def salesplan_scorecard():
    """``salesplan.performance.scorecard`` where that module is present, else None."""
    try:
        from salesplan.performance import scorecard
    except ImportError:
        return None
    return scorecard


# -- the pandas groupby version ---------------------------------------------------

def pandas_funnel_durations(opps, hist, reps):
    code = {s: i for i, s in enumerate(STAGES)}
    h = hist.copy()
    h["code"] = h["stage"].map(code)
    o = opps.merge(reps[["rep_id", "team"]], on="rep_id", how="left")
    top = h[h["code"].notna()].groupby("opportunity_id")["code"].max().rename("top")
    o = o.merge(top, left_on="opportunity_id", right_index=True, how="left")
    o.loc[o["status"] == "won", "top"] = len(STAGES) - 1
    o["is_won"] = o["status"] == "won"
    o["is_lost"] = o["status"] == "lost"
    rows = []
    for k, s in enumerate(STAGES):
        reached = o[o["top"] >= k]
        at_top = reached["top"] == k
        rows.append(pd.DataFrame({
            "stage": s, "entered": reached.groupby("team").size(),
            "advanced": ((reached["top"] > k) | (at_top & reached["is_won"])).groupby(reached["team"]).sum(),
            "lost": (at_top & reached["is_lost"]).groupby(reached["team"]).sum(),
            "won": reached.groupby("team")["is_won"].sum(),
        }))
    funnel_df = pd.concat(rows).reset_index()
    h = h.sort_values(["opportunity_id", "entered_at"])
    h["next_at"] = h.groupby("opportunity_id")["entered_at"].shift(-1)
    h["days"] = (h["next_at"] - h["entered_at"]).dt.days
    h = h.merge(o[["opportunity_id", "team"]], on="opportunity_id", how="left")
    durations = h[h["code"].notna()].groupby(["team", "stage"])["days"].median().reset_index()
    o["cycle"] = (o["close_date"] - o["created_date"]).dt.days
    cycle = o[o["status"] != "open"].groupby("team")["cycle"].median()
    return funnel_df, durations, cycle


# -- scoring ----------------------------------------------------------------------

def pandas_scoring(model, opps, hist):
    """The same features with groupby().last(), then the fitted scikit-learn pipeline."""
    o = opps[opps["status"] == "open"]
    h = hist[hist["opportunity_id"].isin(o["opportunity_id"])]
    h = h[h["stage"].isin(list(STAGES))].sort_values(["opportunity_id", "entered_at"])
    last = h.groupby("opportunity_id").last()
    x = o.set_index("opportunity_id").join(last[["entered_at"]])
    x["stage"] = o.set_index("opportunity_id")["stage"]
    x["days_in_stage"] = (AS_OF - x["entered_at"]).dt.days.astype(float)
    x["age_days"] = (AS_OF - x["created_date"]).dt.days.astype(float)
    x = x.reset_index()
    feats = model._xy(x[[c for c in model.features_]])
    return model.model_.predict_proba(feats)[:, 1]


def timed(fn, *args, repeats=REPEATS):
    fn(*args)
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn(*args)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"median_s": statistics.median(wall), "min_s": min(wall), "runs_s": wall,
            "cpu_median_s": statistics.median(cpu)}


def main() -> int:
    warnings.simplefilter("ignore", SalesplanDataWarning)
    t0 = time.perf_counter()
    opps, hist, reps = make_pipeline(N_DEALS)
    gen_s = time.perf_counter() - t0
    print(f"generated {len(opps):,} opportunities and {len(hist):,} stage events in {gen_s:.1f} s")

    # the same counts before any timing
    ours_f, _, _ = salesplan_funnel_durations(opps, hist, reps)
    theirs_f, _, _ = pandas_funnel_durations(opps, hist, reps)
    a = ours_f.groupby("stage_code")["entered"].sum().to_numpy()
    b = theirs_f.groupby("stage", sort=False)["entered"].sum().to_numpy()
    assert (a == b).all(), (a, b)

    load_before = os.getloadavg()
    results = {
        "funnel_durations": {
            "salesplan": timed(salesplan_funnel_durations, opps, hist, reps),
            "pandas": timed(pandas_funnel_durations, opps, hist, reps, repeats=3),
        }
    }
    score_card = salesplan_scorecard()
    scorecard_note = "salesplan.performance.scorecard not available here; not timed"
    if score_card is not None:
        tables = scorecard_tables(opps, hist, reps)
        results["scorecard"] = {"salesplan": timed(lambda: score_card(tables, level="rep"), repeats=3)}
        scorecard_note = (f"scorecard(tables, level='rep') on the same deals, the {len(tables['transactions']):,} "
                          "won deals as order lines, timed separately")

    demo = {t: datasets.load_demo(t) for t in ("opportunities", "stage_history", "reps", "customers")}
    model = WinModel(features=("stage", "days_in_stage", "age_days", "amount", "rep_id"), refit=True).fit(
        demo["opportunities"], demo["stage_history"], reps=demo["reps"])
    s_opps, s_hist, _ = make_pipeline(N_SCORE, seed=1, open_share=1.0)
    s_opps["rep_id"] = pd.array(np.asarray(demo["reps"]["rep_id"])[np.arange(N_SCORE) % 20], dtype="string")
    n_open = int((s_opps["status"] == "open").sum())
    ours_p = model.predict(s_opps, s_hist, as_of=AS_OF)
    theirs_p = pandas_scoring(model, s_opps, s_hist)
    agree = float(np.abs(ours_p["win_probability"].to_numpy() - theirs_p).max())
    results["scoring"] = {
        "salesplan": timed(lambda: model.predict(s_opps, s_hist, as_of=AS_OF)),
        "pandas": timed(lambda: pandas_scoring(model, s_opps, s_hist)),
    }
    load_after = os.getloadavg()

    lines = [
        f"Pipeline on {len(opps):,} opportunities / {len(hist):,} stage events; scoring {n_open:,} open deals; "
        f"median of {REPEATS} runs (pandas funnel: 3) (load average {load_before[0]:.2f} -> {load_after[0]:.2f} "
        f"on {os.cpu_count()} cores)",
        f"{'task':<20}{'contender':<12}{'median s':>10}{'min s':>10}{'cpu s':>10}{'pandas / salesplan':>20}",
    ]
    for task, res in results.items():
        base = res["salesplan"]["median_s"]
        for name, r in res.items():
            ratio = r["median_s"] / base
            lines.append(f"{task:<20}{name:<12}{r['median_s']:>10.3f}{r['min_s']:>10.3f}{r['cpu_median_s']:>10.3f}"
                         f"{ratio:>20.2f}")
    fd = results["funnel_durations"]["salesplan"]["median_s"]
    fd_cpu = results["funnel_durations"]["salesplan"]["cpu_median_s"]
    if "scorecard" in results:
        fd += results["scorecard"]["salesplan"]["median_s"]
        fd_cpu += results["scorecard"]["salesplan"]["cpu_median_s"]
    sc = results["scoring"]["salesplan"]["median_s"]
    lines.append(f"funnel counts equal to the pandas version: yes; scoring max |difference| {agree:.2e}")
    lines.append(f"scorecard: {scorecard_note}")
    what = "funnel + durations" + (" + scorecard" if "scorecard" in results else "")
    lines.append(f"goal {what} <= {GOAL_FUNNEL_S} s: {'met' if fd <= GOAL_FUNNEL_S else 'NOT met'} "
                 f"({fd:.2f} s wall, {fd_cpu:.2f} s cpu); goal scoring 100k open deals <= {GOAL_SCORE_S} s: "
                 f"{'met' if sc <= GOAL_SCORE_S else 'NOT met'} ({sc:.2f} s)")
    if load_before[0] > (os.cpu_count() or 1):
        lines.append(f"note: the machine was busy (load {load_before[0]:.1f} on {os.cpu_count()} cores); wall "
                     "times include waiting for a core, the cpu column is closer to an idle machine")
    text = "\n".join(lines)
    print(text)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "pipeline.txt").write_text(text + "\n", encoding="utf-8")
    out = {
        "benchmark": "pipeline funnel + durations, win-probability scoring",
        "opportunities": len(opps), "stage_events": len(hist), "open_deals_scored": n_open,
        "repeats": REPEATS, "results": results, "scorecard": scorecard_note,
        "scoring_max_abs_difference": agree,
        "goals": {"funnel_durations_scorecard_s": GOAL_FUNNEL_S, "scoring_s": GOAL_SCORE_S,
                  "funnel_durations_scorecard_wall_s": fd, "funnel_durations_scorecard_cpu_s": fd_cpu,
                  "funnel_durations_scorecard_met": fd <= GOAL_FUNNEL_S, "scoring_met": sc <= GOAL_SCORE_S},
        "load_average": [load_before[0], load_after[0]], "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
    }
    (out_dir / "pipeline.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print("wrote benchmarks/results/pipeline.json and pipeline.txt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
