"""Why won revenue moved: a period's pipeline revenue split exactly into its drivers.

The revenue won in a period is written as a product of drivers measured on the
*cohort* of deals created one typical cycle (``lag_days``) before the period::

    won revenue = deals created
                  x conversion at each stage (prospecting -> first contact, ..., contract -> won)
                  x average won deal size
                  x cycle factor   (share of the cohort's won revenue closed by the period's end,
                                    of what it had won a fixed horizon later)
                  x slip factor    (revenue won in the period per unit of the cohort's
                                    on-time wins: below 1 when close dates slip out of it)

The identity is exact whenever the cohort won something on time; otherwise
the difference lands in an ``other`` driver. The change between a reference
period (the previous one, or the same one a year earlier) and the period is
split over the drivers with the Shapley value of the product (every order
of substitution averaged), so the parts add up exactly to the change in won
revenue, do not depend on the order the drivers are listed in, and need no
logarithms (a stage with zero conversions is fine).

:func:`pipeline_problems` turns the drivers that cost revenue into problems
with corrective SMART targets; it is registered as the ``pipeline_drivers``
problem source of :func:`salesplan.review.problem_list` (it reads
``opportunities`` and ``stage_history`` from ``ReviewInputs.extra``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from salesplan import format as fmt
from salesplan._validation import check_choice, check_columns, check_frame
from salesplan.errors import SalesplanDataError, SalesplanWarning
from salesplan.pipeline._deals import deal_stages
from salesplan.review import (
    PROBLEM_COLUMNS,
    ReviewInputs,
    ReviewWindow,
    _unit_owner,
    _window_from_period,
    register_problem_source,
    review_window,
    smart_action,
)
from salesplan.schema import OPEN_STAGES

__all__ = ["DRIVER_COLUMNS", "shapley_product", "previous_window", "driver_level", "pipeline_drivers",
           "pipeline_problems"]

#: Columns of :func:`pipeline_drivers`.
DRIVER_COLUMNS = ["level", "key", "driver", "step", "reference", "current", "effect",
                  "revenue_reference", "revenue_current"]

_LEVEL_COLUMNS = {"rep": "rep_id", "team": "team", "region": "region", "company": None}


def _label(stage: str) -> str:
    return stage.replace("_", "-")


def shapley_product(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Exact additive split of ``prod(current) - prod(reference)`` over the factors (Shapley value).

    >>> shapley_product(np.array([10.0, 2.0]), np.array([12.0, 1.0])).round(6).tolist()
    [3.0, -11.0]
    """
    x0, x1 = np.asarray(reference, float), np.asarray(current, float)
    m = len(x0)
    masks = np.arange(2 ** m)
    bits = ((masks[:, None] >> np.arange(m)[None, :]) & 1).astype(bool)  # [2^m, m]: factor at current value
    values = np.where(bits, x1[None, :], x0[None, :]).prod(axis=1)
    size = bits.sum(axis=1)
    out = np.zeros(m)
    for i in range(m):
        without = ~bits[:, i]
        s = size[without]
        weight = np.array([math.factorial(k) * math.factorial(m - k - 1) for k in s]) / math.factorial(m)
        out[i] = float((weight * (values[masks[without] | (1 << i)] - values[without])).sum())
    return out


def previous_window(w: ReviewWindow, reference: str = "previous") -> ReviewWindow:
    """The reference period: ``"previous"`` (the period before, same length) or ``"year"`` (a year earlier)."""
    check_choice(reference, ("previous", "year"), name="reference")
    if reference == "year":
        return w.shifted(-1)
    if w.freq is not None:
        return _window_from_period(pd.Period(w.start, freq=w.freq) - 1)
    days = (w.end - w.start).days + 1
    return review_window((w.start - pd.Timedelta(days=days), w.start - pd.Timedelta(days=1)))


def driver_level(opportunities: pd.DataFrame, level: str, reps: pd.DataFrame | None = None) -> str:
    """``level`` when the opportunities can be split by it (directly or through ``reps``), else the
    finest of ``region``, ``rep``, ``company`` that they can."""
    def ok(lv: str) -> bool:
        col = _LEVEL_COLUMNS.get(lv, "")
        return col is None or (col is not None and (col in opportunities.columns or (
            reps is not None and "rep_id" in opportunities.columns and {"rep_id", col} <= set(reps.columns))))
    if level in _LEVEL_COLUMNS and ok(level):
        return level
    return next(lv for lv in ("region", "rep", "company") if ok(lv))


def _units(opps: pd.DataFrame, level: str, reps: pd.DataFrame | None) -> pd.Series:
    col = _LEVEL_COLUMNS[level]
    if col is None:
        return pd.Series("all", index=opps.index)
    if col in opps.columns:
        return opps[col].astype("str")
    if reps is not None and {"rep_id", col} <= set(reps.columns):
        m = reps.drop_duplicates("rep_id").set_index(reps.drop_duplicates("rep_id")["rep_id"].astype("str"))[col]
        return opps["rep_id"].astype("str").map(m.astype("str")).fillna("(none)")
    raise SalesplanDataError(f"level {level!r} needs a {col!r} column in the opportunities or a reps table with "
                             f"rep_id and {col}; opportunities have {[str(c) for c in opps.columns]}.")


def _factors(opps: pd.DataFrame, reached: pd.DataFrame, w: ReviewWindow, lag: pd.Timedelta,
             horizon: pd.Timedelta) -> dict[str, Any]:
    """The drivers of one unit in one period, and the counts behind them.

    The cohort's stages and wins count as known ``horizon`` after the
    period's end, the same for both periods compared, so that a recent
    cohort whose deals are still running is not compared with an old one
    whose deals have all finished.
    """
    created, closed = opps["created_date"], opps["close_date"]
    won = opps["status"].astype("str") == "won"
    end = w.end + pd.Timedelta(days=1)
    known = end + horizon
    revenue = float(opps.loc[won & (closed >= w.start) & (closed < end), "amount"].sum())
    cohort = opps[(created >= w.start - lag) & (created < end - lag)]
    ids = set(cohort["opportunity_id"])
    r = reached[reached["opportunity_id"].isin(ids) & ~(reached["entered_at"] >= known)]
    n = float(len(cohort))
    cwon = cohort[(cohort["status"].astype("str") == "won") & (cohort["close_date"] < known)]
    counts = [n] + [float(r.loc[r["stage"] == s, "opportunity_id"].nunique()) for s in OPEN_STAGES[1:]] \
        + [float(len(cwon))]
    conv = [counts[i + 1] / counts[i] if counts[i] > 0 else 0.0 for i in range(len(counts) - 1)]
    value = float(cwon["amount"].sum())
    on_time = float(cwon.loc[cwon["close_date"] < end, "amount"].sum())
    size = value / len(cwon) if len(cwon) else 0.0
    cycle = on_time / value if value > 0 else 0.0
    slip = revenue / on_time if on_time > 0 else 0.0
    return {"revenue": revenue, "n": n, "counts": counts, "conv": conv, "size": size, "cycle": cycle,
            "slip": slip, "won": float(len(cwon))}


def _vector(f: dict[str, Any]) -> np.ndarray:
    return np.array([f["n"], *f["conv"], f["size"], f["cycle"], f["slip"]], dtype=float)


def _steps() -> list[tuple[str, str]]:
    stages = list(OPEN_STAGES) + ["won"]
    conv = [("conversion", f"{_label(stages[i])} → {_label(stages[i + 1])}") for i in range(len(OPEN_STAGES))]
    return [("deals created", ""), *conv, ("deal size", ""), ("longer cycles", ""), ("slipped close dates", "")]


def _prepare(opportunities: pd.DataFrame, stage_history: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    check_frame(opportunities, name="opportunities")
    check_columns(opportunities, ["opportunity_id", "rep_id", "amount", "created_date", "status", "close_date"],
                  name="opportunities")
    undated = pd.to_datetime(opportunities["created_date"]).isna()
    if undated.any():
        # a deal without a creation date belongs to no cohort; the rest still tell the story
        warnings.warn(f"{int(undated.sum())} of {len(opportunities)} opportunities have no created_date and are "
                      "left out of the pipeline drivers.", SalesplanWarning, stacklevel=3)
        opportunities = opportunities[~undated]
        if stage_history is not None:
            stage_history = stage_history[stage_history["opportunity_id"].astype("str").isin(
                set(opportunities["opportunity_id"].astype("str")))]
    opps = opportunities.assign(
        opportunity_id=opportunities["opportunity_id"].astype("str"),
        created_date=pd.to_datetime(opportunities["created_date"]),
        close_date=pd.to_datetime(opportunities["close_date"]),
        amount=opportunities["amount"].astype(float).fillna(0.0))
    reached = deal_stages(opportunities, stage_history)[["opportunity_id", "stage", "entered_at"]]
    reached = reached.assign(opportunity_id=reached["opportunity_id"].astype("str"))
    return opps, reached


def _lag(opps: pd.DataFrame, lag_days: float | None) -> pd.Timedelta:
    if lag_days is not None:
        return pd.Timedelta(days=float(lag_days))
    won = opps[opps["status"].astype("str") == "won"]
    cycle = (won["close_date"] - won["created_date"]).dt.days.dropna()
    return pd.Timedelta(days=float(cycle.median()) if len(cycle) else 0.0)


def pipeline_drivers(
    opportunities: pd.DataFrame,
    stage_history: pd.DataFrame | None = None,
    *,
    period: Any,
    reference: str = "previous",
    level: str = "region",
    reps: pd.DataFrame | None = None,
    lag_days: float | None = None,
    horizon_days: float | None = None,
) -> pd.DataFrame:
    """The change in won revenue per unit, split exactly into pipeline drivers.

    Parameters
    ----------
    opportunities, stage_history : DataFrame
        The pipeline (:mod:`salesplan.schema`); without history the stages
        reached are read from the current stage.
    period : str, tuple or ReviewWindow
        The period reviewed (``"2025-Q4"``).
    reference : {"previous", "year"}
        Compared with the period before, or the same period a year earlier.
    level : {"region", "team", "rep", "company"}
        Units (``region``/``team`` through ``reps`` when the opportunities lack them).
    lag_days : float, optional
        How long before the period its cohort was created; default the
        median created-to-won cycle of the whole history.
    horizon_days : float, optional
        How long after each period's end its cohort's stages and wins are
        counted (the same for both periods); default ``lag_days``, cut to
        what the data cover after the reviewed period (0 for the latest
        period: cohorts are then compared as they stood at their period's
        end, and slower deals show as lower conversion rather than as
        longer cycles).

    Returns
    -------
    DataFrame
        :data:`DRIVER_COLUMNS`: one row per unit and driver (``deals
        created``, ``conversion`` per ``step`` such as ``needs-analysis →
        proposal``, ``deal size``, ``longer cycles``, ``slipped close dates``,
        ``other``); ``reference``/``current`` are the driver's values,
        ``effect`` its share of the change in won revenue. Per unit the
        effects add up to ``revenue_current - revenue_reference``.
    """
    check_choice(level, tuple(_LEVEL_COLUMNS), name="level")
    w = review_window(period)
    w0 = previous_window(w, reference)
    opps, reached = _prepare(opportunities, stage_history)
    lag = _lag(opps, lag_days)
    if horizon_days is not None:
        horizon = pd.Timedelta(days=float(horizon_days))
    else:
        # open deals carry expected close dates, which may lie ahead: the data end at the last event
        closed = opps["status"].astype("str").isin(["won", "lost"])
        last = max(opps["created_date"].max(), opps.loc[closed, "close_date"].max())
        covered = max(pd.Timedelta(0), last.normalize() - w.end)
        horizon = min(lag, covered)
    unit = _units(opps, level, reps)
    steps = _steps()
    rows = []
    for key in sorted(unit.unique()):
        o = opps[unit == key]
        f0, f1 = _factors(o, reached, w0, lag, horizon), _factors(o, reached, w, lag, horizon)
        x0, x1 = _vector(f0), _vector(f1)
        parts = shapley_product(x0, x1)
        other = (f1["revenue"] - f0["revenue"]) - float(parts.sum())
        for (driver, step), a, b, e in zip(steps, x0, x1, parts):
            rows.append((level, key, driver, step, a, b, e, f0["revenue"], f1["revenue"]))
        rows.append((level, key, "other", "", np.nan, np.nan, other, f0["revenue"], f1["revenue"]))
    out = pd.DataFrame(rows, columns=DRIVER_COLUMNS)
    out.attrs.update(period=w.label, reference_period=w0.label, lag_days=lag.days, horizon_days=horizon.days)
    return out


def pipeline_problems(inputs: ReviewInputs) -> pd.DataFrame:
    """Problems from the pipeline drivers of every unit whose won revenue fell against the previous period.

    Each driver that cost revenue is one problem; its corrective target
    restores the driver's reference value by the end of the next period and
    its expected gain is the revenue the driver cost. How likely: for a
    conversion, the chance that as many deals as entered the stage in the
    reference period convert at least at the target rate when the stage
    converts at its long-run rate (binomial); for deals created, the chance
    of creating at least the target number at the long-run pace (Poisson);
    for deal size, the chance that the mean of as many wins reaches the
    target (normal approximation over all won deals); none for timing.
    Needs ``inputs.extra["opportunities"]`` (and ``"stage_history"``).

    Returns
    -------
    DataFrame
        :data:`salesplan.review.PROBLEM_COLUMNS`.
    """
    opps_raw = inputs.extra.get("opportunities")
    if opps_raw is None:
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    history = inputs.extra.get("stage_history")
    level = driver_level(opps_raw, inputs.level, inputs.reps)
    w = inputs.window
    nxt = w.next()
    d = pipeline_drivers(opps_raw, history, period=w, level=level, reps=inputs.reps)
    opps, reached = _prepare(opps_raw, history)
    unit = _units(opps, level, inputs.reps)
    per = {"M": "a month", "Q": "a quarter", "Y": "a year"}.get(w.freq or "", "a period")
    span_periods = max(1.0, (opps["created_date"].max() - opps["created_date"].min()).days
                       / max(1, (w.end - w.start).days + 1))
    rows = []
    for key, u in d.groupby("key", sort=True):
        r0, r1 = float(u["revenue_reference"].iloc[0]), float(u["revenue_current"].iloc[0])
        if r1 >= r0:
            continue
        o = opps[unit == key]
        where = "the company" if level == "company" else key
        owner = _unit_owner(level, key, inputs.reps)
        head = (f"Won revenue in {where} fell from {fmt.money(r0)} in {d.attrs['reference_period']} to "
                f"{fmt.money(r1)} in {w.label}; ")
        for r in u[(u["effect"] < 0) & (u["driver"] != "other")].itertuples():
            gain = -float(r.effect)
            p = float("nan")
            if r.driver == "conversion":
                stage = r.step.split(" → ")[0].replace("-", "_")
                nxt_stage = r.step.split(" → ")[1].replace("-", "_")
                mine = reached["opportunity_id"].isin(set(o["opportunity_id"]))
                entered = reached[mine & (reached["stage"] == stage)]
                n_hist = entered["opportunity_id"].nunique()
                if nxt_stage == "won":
                    passed = o["opportunity_id"].isin(set(entered["opportunity_id"])) & (o["status"] == "won")
                    k_hist = int(passed.sum())
                else:
                    k_hist = reached[reached["opportunity_id"].isin(set(entered["opportunity_id"]))
                                     & (reached["stage"] == nxt_stage)]["opportunity_id"].nunique()
                n = max(1, int(round(n_hist / span_periods)))
                if n_hist:
                    p = float(stats.binom.sf(math.ceil(r.reference * n) - 1, n, k_hist / n_hist))
                what, cur, tgt = f"{r.step} conversion in {where}", fmt.percent(r.current, decimals=0), \
                    fmt.percent(r.reference, decimals=0)
                problem = (f"{r.step} conversion was {fmt.percent(r.current, decimals=0)} against "
                           f"{fmt.percent(r.reference, decimals=0)}, which cost {fmt.money(gain)}.")
                metric = "conversion"
            elif r.driver == "deals created":
                lam = len(o) / span_periods
                p = float(stats.poisson.sf(math.ceil(r.reference) - 1, lam)) if lam > 0 else float("nan")
                what, cur, tgt = f"deals created in {where}", fmt.count(r.current), f"{fmt.count(r.reference)} {per}"
                problem = (f"{fmt.count(r.current)} deals were created in its cohort against "
                           f"{fmt.count(r.reference)}, which cost {fmt.money(gain)}.")
                metric = "deals created"
            elif r.driver == "deal size":
                amounts = o.loc[o["status"] == "won", "amount"]
                n = max(1, int(round(len(amounts) / span_periods)))
                if len(amounts) > 1:
                    se = float(amounts.std()) / math.sqrt(n)
                    p = float(stats.norm.sf((r.reference - float(amounts.mean())) / se)) if se > 0 else float("nan")
                what, cur, tgt = f"the average won deal in {where}", fmt.money(r.current), fmt.money(r.reference)
                problem = (f"won deals averaged {fmt.money(r.current)} against {fmt.money(r.reference)}, "
                           f"which cost {fmt.money(gain)}.")
                metric = "deal size"
            elif r.driver == "longer cycles":
                what, cur, tgt = f"the share of won revenue in {where} closed within the usual cycle", \
                    fmt.percent(r.current, decimals=0), fmt.percent(r.reference, decimals=0)
                problem = (f"cycles grew longer: {fmt.percent(r.current, decimals=0)} of the cohort's won revenue "
                           f"closed in time against {fmt.percent(r.reference, decimals=0)}, which cost "
                           f"{fmt.money(gain)}.")
                metric = "closed in time"
            else:
                what, cur, tgt = f"revenue closed in the period per on-time win in {where}", \
                    fmt.percent(r.current, decimals=0), fmt.percent(r.reference, decimals=0)
                problem = (f"close dates slipped: the period closed {fmt.percent(r.current, decimals=0)} of its "
                           f"cohort's on-time wins against {fmt.percent(r.reference, decimals=0)}, which cost "
                           f"{fmt.money(gain)}.")
                metric = "slip"
            rows.append({"source": "pipeline_drivers", "level": level, "key": key, "driver": r.driver,
                         "item": r.step, "impact": -gain, "problem": head + problem,
                         "action": smart_action("Raise", what, cur, tgt, nxt, gain, p if np.isfinite(p) else None),
                         "metric": metric, "current": float(r.current), "target": float(r.reference),
                         "deadline": nxt.end, "expected_gain": gain, "probability": p, "owner": owner})
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS)


register_problem_source("pipeline_drivers", pipeline_problems)
