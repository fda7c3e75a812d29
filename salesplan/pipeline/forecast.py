"""The pipeline forecast: what the open deals will bring, by expected close month.

Each open deal is won with its probability (learned by :class:`WinModel`, or
the stage averages) and closes in a month that slips from its expected close
date by a learned amount. Simulating every deal many times gives the
distribution of revenue per unit and month, from which the expected value,
intervals and the chance of covering the remaining target follow.

How the close month is drawn (:func:`learn_slip`):

* ``basis="expected_close"``: when the stage history records the expected
  close date (a ``close_date`` column, as Salesforce's OpportunityHistory
  does), the slip is the actual close month minus the month first expected,
  learned over the closed deals; a deal then closes in its expected month plus
  a drawn slip (expected dates already past count from the current month).
* ``basis="time_to_close"``: otherwise, the months from the start of a month
  to the close, learned per stage from the won deals' month-start snapshots;
  a deal in stage s then closes the drawn number of months after ``as_of``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_frame, check_levels, check_positive_int, check_probability
from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.pipeline._deals import OPEN, WON, PreparedDeals, _days, prepare
from salesplan.pipeline._units import as_list, period_codes, period_start, unit_codes
from salesplan.pipeline.process import Process

__all__ = ["learn_slip", "forecast_categories", "pipeline_forecast", "target_coverage", "CATEGORIES"]

#: Forecast categories, most certain first.
CATEGORIES = ("commit", "best_case", "pipeline")
_ALL = "(all)"


def _month(days: np.ndarray) -> np.ndarray:
    return period_codes(days, "M")


def learn_slip(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    process: Process | None = None,
    as_of: object = None,
    max_months: int = 12,
) -> pd.DataFrame:
    """How many months deals close after they were expected to (or after a month start, per stage).

    Returns
    -------
    DataFrame
        ``basis, stage, months, deals, probability``: for each stage (``"(all)"``
        for the expected-close basis) the distribution of months, summing to 1.
        Shifts beyond ``max_months`` are counted at ``max_months``.
    """
    check_positive_int(max_months, name="max_months")
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    hist = d.stage_history
    if hist is not None and "close_date" in hist.columns and hist["close_date"].notna().any():
        h = hist[["opportunity_id", "entered_at", "close_date"]].dropna()
        h = h.assign(_e=pd.to_datetime(h["entered_at"]), _c=pd.to_datetime(h["close_date"]))
        first = h.sort_values("_e", kind="stable").drop_duplicates("opportunity_id")
        idx = pd.Index(d.opportunities["opportunity_id"].to_numpy()).get_indexer(first["opportunity_id"].to_numpy())
        ok = idx >= 0
        idx = idx[ok]
        expected = _days(first["_c"])[ok]
        closed = (d.status[idx] != OPEN) & np.isfinite(d.closed_at[idx]) & d.valid_dates[idx]
        # an expectation recorded after the close is not a forecast
        entered = _days(first["_e"])[ok]
        closed &= entered <= d.closed_at[idx]
        if closed.sum() >= 1:
            shift = _month(d.closed_at[idx][closed]) - _month(expected[closed])
            shift = np.clip(shift, -max_months, max_months)
            return _pmf("expected_close", np.full(len(shift), _ALL, dtype=object), shift)
    # time to close from a month start, per stage, learned from the won deals
    from salesplan.pipeline.winprob import _month_starts, _state_at

    usable = d.has_history & d.valid_dates & (d.status == WON)
    days = _month_starts(float(d.created.min()), d.as_of)
    stages, shifts = [], []
    for t in days:
        rows = np.flatnonzero(usable & (d.created <= t) & (d.closed_at > t))
        if not len(rows):
            continue
        s, _ = _state_at(d, rows, t)
        stages.append(s)
        shifts.append(_month(d.closed_at[rows]) - _month(np.full(len(rows), t)))
    if not stages:
        won_closed = (d.status == WON) & np.isfinite(d.closed_at) & d.valid_dates
        if won_closed.any():
            # no history: whole cycle length from creation, same for every stage
            shift = np.clip(_month(d.closed_at[won_closed]) - _month(d.created[won_closed]), 0, max_months)
            return _pmf("time_to_close", np.full(len(shift), _ALL, dtype=object), shift)
        return pd.DataFrame({"basis": ["none"], "stage": [_ALL], "months": [0], "deals": [0], "probability": [1.0]})
    s = np.concatenate(stages)
    shift = np.clip(np.concatenate(shifts), 0, max_months)
    names = np.asarray(d.process.stages, dtype=object)[s]
    return _pmf("time_to_close", names, shift)


def _pmf(basis: str, stage: np.ndarray, shift: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame({"stage": stage, "months": shift.astype(np.int64)})
    out = df.groupby(["stage", "months"]).size().rename("deals").reset_index()
    out["probability"] = out["deals"] / out.groupby("stage")["deals"].transform("sum")
    out.insert(0, "basis", basis)
    return out


def forecast_categories(
    probabilities: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    commit: float = 0.7,
    best_case: float = 0.4,
    probability_col: str = "win_probability",
) -> pd.DataFrame:
    """Commit / best case / pipeline from each open deal's probability.

    A deal is ``commit`` when its probability is at least ``commit``,
    ``best_case`` when at least ``best_case``, else ``pipeline``. Every open deal
    is in exactly one category, so the categories add up to the whole pipeline.

    Parameters
    ----------
    probabilities : DataFrame
        One row per open deal with ``amount`` and ``probability_col`` (e.g. the
        output of :meth:`WinModel.predict`) and the ``by`` columns.

    Returns
    -------
    DataFrame
        ``[by...], category, deals, amount, expected_value, cumulative_amount``
        (commit, commit + best case, all), one row per unit and category.
    """
    check_frame(probabilities, name="probabilities", min_rows=0)
    by = as_list(by)
    check_columns(probabilities, ["amount", probability_col] + by, name="probabilities")
    c, b = check_probability(commit, name="commit"), check_probability(best_case, name="best_case")
    if b > c:
        raise SalesplanError(f"best_case ({b}) must not exceed commit ({c}).")
    p = probabilities[probability_col].to_numpy(dtype=float)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise SalesplanDataError(f"probabilities[{probability_col!r}] must be probabilities in [0, 1] without gaps.")
    cat = np.where(p >= c, 0, np.where(p >= b, 1, 2))
    amount = probabilities["amount"].to_numpy(dtype=float)
    df = probabilities[by].copy() if by else pd.DataFrame(index=probabilities.index)
    df["category"] = pd.Categorical(np.asarray(CATEGORIES, dtype=object)[cat], categories=CATEGORIES)
    df["deals"] = 1
    df["amount"] = np.nan_to_num(amount)
    df["expected_value"] = np.nan_to_num(amount) * p
    out = df.groupby(by + ["category"], observed=False, sort=True)[["deals", "amount", "expected_value"]].sum()
    out = out.reset_index()
    out["cumulative_amount"] = out.groupby(by)["amount"].cumsum() if by else out["amount"].cumsum()
    out["category"] = out["category"].astype(object)
    return out


def _open_deals(d: PreparedDeals, probabilities: pd.DataFrame | None, probability_col: str) -> tuple:
    rows = np.flatnonzero(d.status == OPEN)
    ids = d.opportunities["opportunity_id"].to_numpy()[rows]
    if probabilities is None:
        from salesplan.pipeline.funnel import funnel

        rates = funnel(d)["win_rate"].to_numpy()
        p = np.nan_to_num(rates[d.top[rows]], nan=0.0)
    else:
        check_columns(probabilities, ["opportunity_id", probability_col], name="probabilities")
        table = probabilities.drop_duplicates("opportunity_id").set_index("opportunity_id")[probability_col]
        p = pd.Series(ids).map(table).to_numpy(dtype=float)
        if np.isnan(p).any():
            missing = ids[np.isnan(p)]
            raise SalesplanDataError(
                f"probabilities has no {probability_col!r} for {len(missing)} open deal(s), e.g. "
                f"{missing[:3].tolist()!r}. Score every open deal (WinModel.predict) or leave probabilities=None "
                "for the stage averages."
            )
    return rows, p


def pipeline_forecast(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    probabilities: pd.DataFrame | None = None,
    probability_col: str = "win_probability",
    slip: pd.DataFrame | None = None,
    by: str | Sequence[str] | None = None,
    horizon: int = 12,
    level: Sequence[float] = (80, 95),
    n_sims: int = 2000,
    seed: int = 0,
    targets: pd.DataFrame | None = None,
    metric: str = "revenue",
    process: Process | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: object = None,
) -> pd.DataFrame:
    """Revenue the open deals bring per unit and close month: expected value and simulated distribution.

    Parameters
    ----------
    probabilities : DataFrame, optional
        ``opportunity_id`` and ``probability_col`` per open deal (e.g.
        :meth:`WinModel.predict`); default the funnel's stage win rates.
    slip : DataFrame, optional
        Output of :func:`learn_slip`; learned from the data when omitted.
    horizon : int
        Months from the month of ``as_of`` (included).
    level : list of float
        Interval coverages, in percent.
    targets : DataFrame, optional
        ``period, level, key, metric, value`` (the targets table). With ``by``
        of ``rep_id`` (level ``rep``), ``team``, ``region``, ``segment``... or no
        ``by`` (level ``company``), adds the remaining target per month and its
        coverage.

    Returns
    -------
    DataFrame
        ``[by...], month, deals, pipeline_amount, expected, forecast-lo-<l>,
        forecast-hi-<l>`` and with ``targets``: ``target, won_to_date, remaining,
        coverage, expected_coverage, hit_probability``. ``pipeline_amount`` is the
        amount of the deals whose expected close falls in the month (unweighted);
        ``coverage`` = pipeline_amount / remaining, ``expected_coverage`` =
        expected / remaining and ``hit_probability`` the simulated chance that
        the month's wins cover the remaining target.
    """
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    check_positive_int(horizon, name="horizon")
    check_positive_int(n_sims, name="n_sims")
    levels = check_levels(level)
    by = as_list(by)
    if slip is None:
        slip = learn_slip(d)
    check_columns(slip, ["basis", "stage", "months", "probability"], name="slip")
    unit, units = unit_codes(d, by, reps, customers)
    n_units = len(units)
    rows, p = _open_deals(d, probabilities, probability_col)
    amount = np.nan_to_num(d.amount[rows])
    u = unit[rows]
    m0 = int(_month(np.array([d.as_of]))[0])
    basis = str(slip["basis"].iloc[0])
    if "close_date" in d.opportunities.columns:
        exp = _month(_days(pd.to_datetime(d.opportunities["close_date"]).iloc[rows]))
        expected_month = np.where((exp < m0) | (exp < -10**8), m0, exp)  # past or missing: this month
    else:
        expected_month = np.full(len(rows), m0)
    base = expected_month if basis == "expected_close" else np.full(len(rows), m0)
    stage_names = np.asarray(d.process.stages, dtype=object)[d.top[rows]]
    # slip distribution of each deal: by its stage, else the pooled one
    pooled = slip.groupby("months")["deals" if "deals" in slip.columns else "probability"].sum()
    pooled = (pooled / pooled.sum())
    dists = {}
    for st_name, g in slip.groupby("stage"):
        dists[st_name] = (g["months"].to_numpy(dtype=np.int64), g["probability"].to_numpy(dtype=float))
    pooled_d = (pooled.index.to_numpy(dtype=np.int64), pooled.to_numpy(dtype=float))
    deal_dist = [dists.get(s, dists.get(_ALL, pooled_d)) for s in stage_names]
    n_cells = n_units * horizon

    # expected value, exactly: sum of p * amount * P(month)
    expected = np.zeros(n_cells)
    deals_n = np.zeros(n_cells)
    pipe_amt = np.zeros(n_cells)
    first_month = np.zeros(len(rows), dtype=np.int64)
    for i, (mv, pv) in enumerate(deal_dist):
        mm = base[i] + mv - m0
        ok = (mm >= 0) & (mm < horizon)
        np.add.at(expected, u[i] * horizon + mm[ok], p[i] * amount[i] * pv[ok])
        first_month[i] = expected_month[i] - m0
    in_h = first_month < horizon
    np.add.at(deals_n, u[in_h] * horizon + first_month[in_h], 1)
    np.add.at(pipe_amt, u[in_h] * horizon + first_month[in_h], amount[in_h])

    # simulation, in chunks of sims
    rng = np.random.default_rng(seed)
    sims = np.zeros((n_sims, n_cells))
    groups = {}
    for i, dist in enumerate(deal_dist):
        groups.setdefault(id(dist), (dist, []))[1].append(i)
    chunk = max(1, min(n_sims, 4_000_000 // max(len(rows), 1)))
    for start in range(0, n_sims, chunk):
        s_n = min(chunk, n_sims - start)
        won = rng.random((s_n, len(rows))) < p[None, :]
        month = np.empty((s_n, len(rows)), dtype=np.int64)
        for (mv, pv), idx in groups.values():
            idx = np.asarray(idx)
            draw = np.searchsorted(np.cumsum(pv), rng.random((s_n, len(idx))) * pv.sum(), side="right")
            month[:, idx] = base[idx][None, :] + mv[np.minimum(draw, len(mv) - 1)] - m0
        ok = won & (month >= 0) & (month < horizon)
        sim_i, deal_i = np.nonzero(ok)
        cell = u[deal_i] * horizon + month[sim_i, deal_i]
        flat = np.bincount(sim_i * n_cells + cell, weights=amount[deal_i], minlength=s_n * n_cells)
        sims[start:start + s_n] = flat.reshape(s_n, n_cells)

    cells = np.arange(n_cells)
    out = units.iloc[cells // horizon].reset_index(drop=True) if by else pd.DataFrame(index=range(n_cells))
    out["month"] = period_start(m0 + cells % horizon, "M")
    out["deals"] = deals_n.astype(np.int64)
    out["pipeline_amount"] = pipe_amt
    out["expected"] = expected
    for lv in levels:
        a = (100 - lv) / 200
        out[f"forecast-lo-{lv}"] = np.quantile(sims, a, axis=0)
        out[f"forecast-hi-{lv}"] = np.quantile(sims, 1 - a, axis=0)
    if targets is not None:
        out = _coverage(out, sims, d, targets, by, unit, units, metric, m0, horizon)
    return out


_LEVEL_OF = {"rep_id": "rep", "team": "team", "region": "region", "segment": "segment", "product": "product",
             "category": "category", "channel": "channel", "product_id": "product"}


def _coverage(out, sims, d, targets, by, unit, units, metric, m0, horizon):
    check_columns(targets, ["period", "level", "key", "metric", "value"], name="targets")
    if len(by) > 1:
        raise SalesplanError(f"Target coverage needs one unit column (or none for the company), got by={by}.")
    level = _LEVEL_OF.get(by[0], by[0]) if by else "company"
    t = targets[(targets["level"] == level) & (targets["metric"] == metric)]
    if t.empty:
        raise SalesplanDataError(
            f"targets has no rows with level={level!r} and metric={metric!r}; levels there: "
            f"{sorted(targets['level'].astype(str).unique())}, metrics: {sorted(targets['metric'].astype(str).unique())}."
        )
    t = t.assign(month=pd.to_datetime(t["period"]).dt.to_period("M").dt.to_timestamp(), key=t["key"].astype(str))
    tv = t.groupby(["key", "month"])["value"].sum()
    keys = units[by[0]].astype(str).to_numpy() if by else np.array(["all"] * len(units))
    n_units = len(units)
    cells = np.arange(n_units * horizon)
    month_ts = period_start(m0 + cells % horizon, "M")
    idx = pd.MultiIndex.from_arrays([keys[cells // horizon], month_ts])
    target = tv.reindex(idx).to_numpy(dtype=float)
    # won so far in each month (only the month of as_of can have any)
    won = (d.status == WON) & np.isfinite(d.closed_at)
    wm = _month(d.closed_at[won]) - m0
    okw = (wm >= 0) & (wm < horizon)
    won_to_date = np.bincount(unit[won][okw] * horizon + wm[okw], weights=np.nan_to_num(d.amount[won][okw]),
                              minlength=n_units * horizon)
    remaining = np.maximum(target - won_to_date, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["target"] = target
        out["won_to_date"] = won_to_date
        out["remaining"] = remaining
        out["coverage"] = np.where(remaining > 0, out["pipeline_amount"] / remaining, np.nan)
        out["expected_coverage"] = np.where(remaining > 0, out["expected"] / remaining, np.nan)
        hit = (sims >= remaining[None, :]).mean(axis=0)
    out["hit_probability"] = np.where(np.isnan(target), np.nan, hit)
    return out


def target_coverage(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    targets: pd.DataFrame,
    by: str | None = None,
    **options,
) -> pd.DataFrame:
    """Coverage of the remaining target per unit and month by the open pipeline.

    A shortcut for :func:`pipeline_forecast` with ``targets``; keeps the months
    that have a target.

    Returns
    -------
    DataFrame
        ``[by], month, target, won_to_date, remaining, pipeline_amount, expected,
        coverage, expected_coverage, hit_probability``.
    """
    f = pipeline_forecast(opportunities, stage_history, targets=targets, by=by, **options)
    cols = as_list(by) + ["month", "target", "won_to_date", "remaining", "pipeline_amount", "expected",
                          "coverage", "expected_coverage", "hit_probability"]
    return f.loc[f["target"].notna(), cols].reset_index(drop=True)
