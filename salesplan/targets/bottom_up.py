"""Bottom-up views: stage win rates, weighted pipeline, run rate, capacity, and the gap.

The top-down number says what the company wants; the bottom-up number says
what the units can see coming:

* the open pipeline closing in the period, weighted by historical stage win
  rates (:func:`stage_win_rates`, :func:`pipeline_value`);
* the run rate: the average of the last months, carried over the period
  (:func:`run_rate`);
* capacity: headcount times ramped productivity (:func:`capacity_plan`),
  where new reps ramp up (25/50/75/100 % over their first quarters by default).

:func:`bottom_up` adds run rate and weighted pipeline per unit (the run rate
stands for the base business, the pipeline for new deals; both are shown so
the reader can judge the overlap) and :func:`target_gap` compares that with a
top-down allocation.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_frame
from salesplan.errors import SalesplanDataError, SalesplanError, SalesplanWarning
from salesplan.schema import OPEN_STAGES, STAGES
from salesplan.targets.allocation import plan_period

__all__ = [
    "DEFAULT_RAMP",
    "stage_win_rates",
    "pipeline_value",
    "run_rate",
    "won_in_run_rate",
    "capacity_plan",
    "full_productivity",
    "bottom_up",
    "target_gap",
]

#: Share of full productivity in a new rep's 1st, 2nd, 3rd and later quarters.
DEFAULT_RAMP: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)


def stage_win_rates(opportunities: pd.DataFrame, stage_history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Historical probability that a deal which reached a stage was won.

    Only closed opportunities (status ``won`` or ``lost``) count. Which stages a
    deal reached comes from ``stage_history`` when given; otherwise from its
    ``stage`` column read as "the last open stage reached" (a lost deal whose
    ``stage`` is ``lost`` is then assumed to have reached every stage, with a
    warning, as its drop-out point is unknown).

    Returns
    -------
    DataFrame
        ``stage`` (open stages in process order), ``n_reached``, ``n_won``,
        ``win_rate`` (the overall win rate where a stage was never reached).

    Examples
    --------
    >>> opp = pd.DataFrame({"opportunity_id": ["a", "b", "c"], "status": ["won", "lost", "lost"],
    ...                     "stage": ["won", "proposal", "prospecting"]})
    >>> stage_win_rates(opp).set_index("stage").loc[["prospecting", "proposal"], "win_rate"].round(3).tolist()
    [0.333, 0.5]
    """
    check_frame(opportunities, name="opportunities")
    check_columns(opportunities, ["opportunity_id", "status"], name="opportunities")
    closed = opportunities[opportunities["status"].isin(["won", "lost"])]
    if len(closed) == 0:
        raise SalesplanDataError(
            "opportunities has no closed deals (status 'won' or 'lost'), so stage win rates cannot be "
            "learned; pass probability_col= with your own probabilities instead."
        )
    won = closed.set_index(closed["opportunity_id"].astype("str"))["status"].eq("won")
    order = {s: i for i, s in enumerate(STAGES)}
    if stage_history is not None:
        check_columns(stage_history, ["opportunity_id", "stage"], name="stage_history")
        sh = stage_history.assign(opportunity_id=stage_history["opportunity_id"].astype("str"))
        sh = sh[sh["opportunity_id"].isin(won.index) & sh["stage"].isin(OPEN_STAGES)]
        reached = sh[["opportunity_id", "stage"]].drop_duplicates()
    else:
        check_columns(closed, ["stage"], name="opportunities")
        idx = closed["stage"].map(order)
        unknown = idx.isna() | closed["stage"].isin(["won", "lost"])
        n_lost_unknown = int((closed["stage"] == "lost").sum())
        if n_lost_unknown:
            warnings.warn(
                f"{n_lost_unknown} lost deal(s) have stage 'lost' and no stage_history, so where they dropped "
                "out is unknown; they are counted as having reached every stage. Pass stage_history= for "
                "exact stage win rates.", SalesplanWarning, stacklevel=2,
            )
        last = np.where(unknown, len(OPEN_STAGES) - 1, idx.fillna(0)).astype(int)
        ids = closed["opportunity_id"].astype("str").to_numpy()
        reps_ = np.repeat(np.arange(len(closed)), last + 1)
        st = np.concatenate([np.arange(k + 1) for k in last]) if len(last) else np.array([], int)
        reached = pd.DataFrame({"opportunity_id": ids[reps_], "stage": np.array(OPEN_STAGES)[st]})
    reached = reached.assign(won=reached["opportunity_id"].map(won).astype(bool))
    g = reached.groupby("stage")["won"].agg(n_reached="size", n_won="sum")
    g = g.reindex(list(OPEN_STAGES)).fillna(0)
    overall = float(won.mean())
    rate = np.where(g["n_reached"] > 0, g["n_won"] / g["n_reached"].where(g["n_reached"] > 0, 1), overall)
    return pd.DataFrame({
        "stage": list(OPEN_STAGES),
        "n_reached": g["n_reached"].astype(int).to_numpy(),
        "n_won": g["n_won"].astype(int).to_numpy(),
        "win_rate": rate.astype(float),
    })


def _unit_keys(frame: pd.DataFrame, level: str, reps: pd.DataFrame | None) -> pd.Series:
    if level == "company":
        return pd.Series("all", index=frame.index, dtype="str")
    if level == "rep":
        return frame["rep_id"].astype("str")
    if reps is None or level not in reps.columns:
        raise SalesplanDataError(
            f"level={level!r} for opportunities needs the reps table with rep_id and {level!r} to map each "
            "deal's rep_id; pass reps=..."
        )
    m = reps.drop_duplicates("rep_id").set_index(reps.drop_duplicates("rep_id")["rep_id"].astype("str"))[level]
    return frame["rep_id"].astype("str").map(m).astype("str")


def pipeline_value(
    opportunities: pd.DataFrame,
    *,
    period: Any,
    level: str = "rep",
    win_rates: pd.DataFrame | None = None,
    stage_history: pd.DataFrame | None = None,
    probability_col: str | None = None,
    win_rate_change: float = 0.0,
    reps: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Open pipeline expected to close in the period, weighted by win probability.

    Parameters
    ----------
    opportunities : DataFrame
        With ``rep_id``, ``amount``, ``stage``, ``status`` and ``close_date``
        (the expected close date of open deals).
    period : int, tuple or str
        The plan period (see :func:`salesplan.targets.plan_period`).
    win_rates : DataFrame, optional
        ``stage, win_rate``; default :func:`stage_win_rates` of the closed deals.
    probability_col : str, optional
        A column of ``opportunities`` holding each deal's probability (0-1),
        used instead of stage win rates.
    win_rate_change : float
        What-if: relative change of every probability (0.1 = +10 %), capped at 1.

    Returns
    -------
    DataFrame
        ``unique_id``, ``n_open``, ``open_amount``, ``weighted`` per unit.
    """
    check_frame(opportunities, name="opportunities")
    check_columns(opportunities, ["rep_id", "amount", "status", "close_date"], name="opportunities")
    months = plan_period(period)
    opp = opportunities[opportunities["status"] == "open"]
    close = pd.to_datetime(opp["close_date"]).dt.to_period("M").dt.to_timestamp()
    no_date = close.isna()
    if no_date.any():
        warnings.warn(f"{int(no_date.sum())} open deal(s) have no close_date and are left out of the "
                      "pipeline view.", SalesplanWarning, stacklevel=2)
    opp = opp[close.isin(months)]
    if probability_col is not None:
        check_columns(opp, [probability_col], name="opportunities")
        prob = pd.to_numeric(opp[probability_col], errors="coerce").fillna(0.0).clip(0, 1)
    else:
        check_columns(opp, ["stage"], name="opportunities")
        if win_rates is None:
            win_rates = stage_win_rates(opportunities, stage_history)
        prob = opp["stage"].map(win_rates.set_index("stage")["win_rate"]).astype(float).fillna(0.0)
    prob = (prob * (1.0 + float(win_rate_change))).clip(0.0, 1.0)
    keys = _unit_keys(opp, level, reps)
    f = pd.DataFrame({"unique_id": keys, "amount": opp["amount"].astype(float), "w": opp["amount"].astype(float) * prob})
    g = f.groupby("unique_id").agg(n_open=("amount", "size"), open_amount=("amount", "sum"), weighted=("w", "sum"))
    return g.reset_index().astype({"unique_id": "str", "n_open": int})


def run_rate(history: pd.DataFrame, *, period: Any, months: int = 3) -> pd.DataFrame:
    """The average of each unit's last ``months`` months before the period, times the period length.

    Returns
    -------
    DataFrame
        ``unique_id``, ``monthly`` (the average), ``run_rate`` (over the period).
    """
    check_frame(history, name="history")
    check_columns(history, ["unique_id", "ds", "y"], name="history")
    pm = plan_period(period)
    h = history[pd.to_datetime(history["ds"]) < pm[0]]
    if len(h) == 0:
        raise SalesplanError(f"no history before the period start {pm[0]:%Y-%m}; the run rate needs past months.")
    last = pd.to_datetime(h["ds"]).max()
    recent = h[pd.to_datetime(h["ds"]) > last - pd.DateOffset(months=months)]
    monthly = recent.groupby("unique_id")["y"].sum() / months
    monthly = monthly.reindex(pd.Index(history["unique_id"].unique())).fillna(0.0)
    return pd.DataFrame({"unique_id": monthly.index.astype("str"), "monthly": monthly.to_numpy(float),
                         "run_rate": monthly.to_numpy(float) * len(pm)})


def capacity_plan(
    reps: pd.DataFrame,
    *,
    period: Any,
    productivity: float | pd.Series | Mapping[str, float],
    ramp: Sequence[float] = DEFAULT_RAMP,
    ramp_months: int = 3,
    hires: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Headcount x ramped productivity per rep and month.

    A rep hired on ``start_date`` works at ``ramp[0]`` of full productivity
    for the first ``ramp_months`` months, then ``ramp[1]``... and at
    ``ramp[-1]`` afterwards; before the hire date at 0. Reps without a start
    date are fully ramped.

    Parameters
    ----------
    reps : DataFrame
        ``rep_id`` and optionally ``start_date`` (plus any columns to keep,
        e.g. ``team``, ``region``).
    productivity : float, Series or mapping
        A fully ramped rep's monthly number (one value, or per ``rep_id``);
        :func:`full_productivity` estimates it from history.
    hires : DataFrame, optional
        Planned new reps (``rep_id``, ``start_date``, ...) added to ``reps``.

    Returns
    -------
    DataFrame
        ``rep_id``, ``ds``, ``tenure_months``, ``ramp``, ``capacity`` (and the
        extra columns of ``reps``).

    Examples
    --------
    >>> r = pd.DataFrame({"rep_id": ["new"], "start_date": pd.to_datetime(["2026-01-01"])})
    >>> capacity_plan(r, period=2026, productivity=100.0)["capacity"].tolist()
    [25.0, 25.0, 25.0, 50.0, 50.0, 50.0, 75.0, 75.0, 75.0, 100.0, 100.0, 100.0]
    """
    check_frame(reps, name="reps")
    check_columns(reps, ["rep_id"], name="reps")
    ramp = np.asarray(ramp, dtype=float)
    if ramp.ndim != 1 or len(ramp) == 0 or (ramp < 0).any() or (ramp > 1).any():
        raise SalesplanError(f"ramp must be shares of full productivity in [0, 1], e.g. (0.25, 0.5, 0.75, 1.0); got {ramp}.")
    if ramp_months < 1:
        raise SalesplanError(f"ramp_months must be >= 1, got {ramp_months!r}.")
    people = reps if hires is None else pd.concat([reps, hires], ignore_index=True)
    dup = people["rep_id"].astype("str").duplicated()
    if dup.any():
        raise SalesplanDataError(f"rep_id {people['rep_id'][dup].iloc[0]!r} appears twice in reps/hires; ids must be unique.")
    months = plan_period(period)
    start = (pd.to_datetime(people["start_date"]) if "start_date" in people.columns
             else pd.Series(pd.NaT, index=people.index)).dt.to_period("M").dt.to_timestamp()
    n, k = len(people), len(months)
    ms = months.year.to_numpy() * 12 + months.month.to_numpy()
    ss = (start.dt.year * 12 + start.dt.month).to_numpy(dtype=float, na_value=np.nan)
    tenure = ms[None, :] - ss[:, None]  # months since hire; NaN = no start date
    step = np.floor(np.nan_to_num(tenure, nan=1e9) / ramp_months).clip(0, len(ramp) - 1).astype(int)
    factor = np.where(np.isnan(tenure), ramp[-1], ramp[step])
    factor = np.where(tenure < 0, 0.0, factor)
    ids = people["rep_id"].astype("str")
    if isinstance(productivity, (int, float, np.floating, np.integer)):
        prod = np.full(n, float(productivity))
    else:
        p = pd.Series(productivity)
        p.index = p.index.astype("str")
        pv = p.reindex(ids)
        if pv.isna().any():
            raise SalesplanDataError(f"productivity has no value for {int(pv.isna().sum())} rep(s): "
                                     f"{list(ids[pv.isna().to_numpy()])[:5]}.")
        prod = pv.to_numpy(float)
    if (prod < 0).any():
        raise SalesplanError("productivity must be >= 0.")
    out = pd.DataFrame({
        "rep_id": np.repeat(ids.to_numpy(), k),
        "ds": np.tile(months.to_numpy(), n),
        "tenure_months": tenure.reshape(-1),
        "ramp": factor.reshape(-1),
        "capacity": (factor * prod[:, None]).reshape(-1),
    }).astype({"rep_id": "str"})
    extra = [c for c in people.columns if c not in ("rep_id", "start_date")]
    if extra:
        out = out.merge(people[["rep_id", *extra]].astype({"rep_id": "str"}), on="rep_id", how="left")
    return out


def full_productivity(history: pd.DataFrame, reps: pd.DataFrame | None = None, *,
                      min_tenure: int = 12, months: int = 12) -> float:
    """Median monthly number of a ramped rep over the last ``months`` months.

    Reps with a ``start_date`` less than ``min_tenure`` months before the
    end of the history are left out, as they were still ramping.
    """
    check_frame(history, name="history")
    check_columns(history, ["unique_id", "ds", "y"], name="history")
    end = pd.to_datetime(history["ds"]).max()
    h = history[pd.to_datetime(history["ds"]) > end - pd.DateOffset(months=months)]
    if reps is not None and "start_date" in reps.columns:
        young = reps.loc[pd.to_datetime(reps["start_date"]) > end - pd.DateOffset(months=min_tenure), "rep_id"]
        h = h[~h["unique_id"].isin(young.astype("str"))]
    per = h.groupby("unique_id")["y"].mean()
    per = per[per > 0]
    if len(per) == 0:
        raise SalesplanDataError("no ramped rep with a positive history to estimate productivity from.")
    return float(per.median())


def won_in_run_rate(
    opportunities: pd.DataFrame,
    history: pd.DataFrame,
    *,
    period: Any,
    months: int = 3,
    level: str = "rep",
    reps: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Deals won inside the run-rate window, carried over the period as the run rate carries them.

    The run rate extrapolates the last ``months`` months of revenue, deal
    closings included. Those closings are one-off: next year's deals are the
    open pipeline (and deals not yet created). Subtracting them keeps a deal
    from counting twice in :func:`bottom_up`: once inside the run rate and
    once more as pipeline flow.

    Returns
    -------
    DataFrame
        ``unique_id``, ``won_amount`` (won in the window), ``won_in_run_rate``
        (``won_amount / months`` times the period length).
    """
    check_frame(opportunities, name="opportunities", min_rows=0)
    check_columns(opportunities, ["rep_id", "amount", "status", "close_date"], name="opportunities")
    pm = plan_period(period)
    h = history[pd.to_datetime(history["ds"]) < pm[0]]
    if len(h) == 0:
        return pd.DataFrame({"unique_id": pd.Series(dtype="str"), "won_amount": pd.Series(dtype=float),
                             "won_in_run_rate": pd.Series(dtype=float)})
    last = pd.to_datetime(h["ds"]).max()
    close = pd.to_datetime(opportunities["close_date"]).dt.to_period("M").dt.to_timestamp()
    won = opportunities[(opportunities["status"] == "won") & (close > last - pd.DateOffset(months=months))
                        & (close <= last)]
    keys = _unit_keys(won, level, reps)
    amt = won["amount"].astype(float).groupby(keys).sum()
    return pd.DataFrame({"unique_id": amt.index.astype("str"), "won_amount": amt.to_numpy(float),
                         "won_in_run_rate": amt.to_numpy(float) / months * len(pm)})


def bottom_up(
    history: pd.DataFrame,
    *,
    period: Any,
    pipeline: pd.DataFrame | None = None,
    capacity: pd.DataFrame | None = None,
    run_rate_months: int = 3,
    won: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per unit: run rate (without one-off won deals) + weighted pipeline, with capacity alongside.

    How the two are kept apart: the run rate is the last ``run_rate_months``
    months of revenue carried over the period; with ``won`` (from
    :func:`won_in_run_rate`) the deals won in those months are taken out of it
    (``base_run_rate``), because the pipeline, not the run rate, brings the
    period's deals. ``bottom_up = base_run_rate + pipeline``. Without ``won``
    the base run rate is the run rate.

    Parameters
    ----------
    history : DataFrame
        ``unique_id, ds, y``.
    pipeline : DataFrame, optional
        From :func:`pipeline_value` (``unique_id, weighted``).
    capacity : DataFrame, optional
        From :func:`capacity_plan` (``rep_id`` or ``unique_id``, ``capacity``);
        summed over the period.

    Returns
    -------
    DataFrame
        ``unique_id, run_rate, won_in_run_rate, base_run_rate, pipeline,
        bottom_up, capacity`` (capacity NaN when not given). Units only in the capacity plan (new hires) appear
        with their capacity as bottom-up number.
    """
    rr = run_rate(history, period=period, months=run_rate_months).set_index("unique_id")
    out = pd.DataFrame({"run_rate": rr["run_rate"]})
    pl = pd.Series(0.0, index=out.index) if pipeline is None else pipeline.set_index("unique_id")["weighted"]
    cap = None
    if capacity is not None:
        key = "unique_id" if "unique_id" in capacity.columns else "rep_id"
        cap = capacity.groupby(capacity[key].astype("str"))["capacity"].sum()
    idx = out.index.union(pl.index)
    if cap is not None:
        idx = idx.union(cap.index)
    out = out.reindex(idx)
    out["pipeline"] = pl.reindex(idx).fillna(0.0)
    new = out["run_rate"].isna()
    out["run_rate"] = out["run_rate"].fillna(0.0)
    w = (pd.Series(0.0, index=idx) if won is None
         else won.set_index(won["unique_id"].astype("str"))["won_in_run_rate"].reindex(idx).fillna(0.0))
    out["won_in_run_rate"] = np.minimum(w.to_numpy(float), out["run_rate"].to_numpy(float))
    out["base_run_rate"] = out["run_rate"] - out["won_in_run_rate"]
    out["bottom_up"] = out["base_run_rate"] + out["pipeline"]
    out["capacity"] = cap.reindex(idx) if cap is not None else np.nan
    if cap is not None:
        out.loc[new, "bottom_up"] = out.loc[new, ["bottom_up", "capacity"]].max(axis=1)
    out.index.name = "unique_id"
    return out.reset_index().astype({"unique_id": "str"})


def target_gap(allocation: pd.DataFrame, view: pd.DataFrame) -> pd.DataFrame:
    """Top-down quota against the bottom-up number per unit.

    Returns
    -------
    DataFrame
        ``unique_id, quota, bottom_up, gap`` (quota - bottom_up; positive =
        the units must find more than they can see), ``coverage`` (bottom_up / quota).
    """
    check_columns(allocation, ["unique_id", "quota"], name="allocation")
    check_columns(view, ["unique_id", "bottom_up"], name="bottom_up")
    m = allocation[["unique_id", "quota"]].merge(view[["unique_id", "bottom_up"]], on="unique_id", how="outer")
    m = m.fillna({"quota": 0.0, "bottom_up": 0.0})
    m["gap"] = m["quota"] - m["bottom_up"]
    m["coverage"] = np.where(m["quota"] > 0, m["bottom_up"] / m["quota"].where(m["quota"] > 0, 1.0), np.nan)
    return m.sort_values("unique_id", ignore_index=True)
