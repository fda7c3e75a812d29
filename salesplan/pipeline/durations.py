"""Durations: time in each stage, cycle length with Kaplan-Meier, and the aging list.

Open deals have not finished: their time so far is a lower bound (censored at
``as_of``). A plain mean of the closed deals would favour the quick ones, so
medians and quantiles here come from the Kaplan-Meier estimate, which counts an
open deal as "still going at day t".

>>> import numpy as np
>>> km = kaplan_meier(np.array([2, 3, 3, 5, 8]), np.array([1, 1, 0, 1, 0]))
>>> km[["time", "at_risk", "events", "survival"]].round(3).to_dict("list")
{'time': [2.0, 3.0, 5.0, 8.0], 'at_risk': [5, 4, 2, 1], 'events': [1, 1, 1, 0], 'survival': [0.8, 0.6, 0.3, 0.3]}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from salesplan.errors import SalesplanError
from salesplan.pipeline._deals import OPEN, PreparedDeals, _to_timestamps, prepare
from salesplan.pipeline._units import as_list, group_index, period_codes, period_start, unit_codes, unit_columns
from salesplan.pipeline.process import Process

__all__ = ["kaplan_meier", "km_median", "stage_durations", "cycle_length", "cycle_survival", "aging"]


def _z(level: float) -> float:
    if not 0 < level < 100:
        raise SalesplanError(f"level must be a coverage percentage between 0 and 100, got {level!r}; use e.g. 95.")
    return float(stats.norm.ppf(0.5 + level / 200.0))


def kaplan_meier(durations, observed, *, level: float = 95) -> pd.DataFrame:
    """Kaplan-Meier survival table of ``durations`` (``observed`` False = censored).

    Confidence bounds use Greenwood's variance on the log(-log) scale (as lifelines
    and statsmodels do). NaN durations are left out.

    Returns
    -------
    DataFrame
        ``time, at_risk, events, censored, survival, survival_lo, survival_hi``,
        one row per distinct time.
    """
    t = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    if t.shape != e.shape:
        raise SalesplanError(f"durations and observed must have the same length, got {t.shape} and {e.shape}.")
    ok = np.isfinite(t)
    t, e = t[ok], e[ok]
    times, inv = np.unique(t, return_inverse=True)
    events = np.bincount(inv, weights=e, minlength=len(times)).astype(np.int64)
    total = np.bincount(inv, minlength=len(times))
    at_risk = len(t) - np.concatenate([[0], np.cumsum(total)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1 - events / at_risk)
        green = np.cumsum(np.where(at_risk > events, events / (at_risk * (at_risk - events)), 0.0))
        z = _z(level)
        log_s = np.log(surv)
        half = z * np.sqrt(green) / np.abs(log_s)
        lo = np.exp(-np.exp(np.log(-log_s) + half))
        hi = np.exp(-np.exp(np.log(-log_s) - half))
    defined = (surv > 0) & (surv < 1)
    lo = np.where(defined, lo, surv)
    hi = np.where(defined, hi, surv)
    return pd.DataFrame({
        "time": times, "at_risk": at_risk.astype(np.int64), "events": events,
        "censored": (total - events).astype(np.int64), "survival": surv,
        "survival_lo": lo, "survival_hi": hi,
    })


def km_median(durations, observed) -> float:
    """Kaplan-Meier median: the first time the survival falls to 0.5 or below (NaN if never)."""
    km = kaplan_meier(durations, observed)
    hit = km["survival"].to_numpy() <= 0.5 + 1e-9
    return float(km["time"].to_numpy()[hit][0]) if hit.any() else float("nan")


def _grouped_km(group: np.ndarray, t: np.ndarray, e: np.ndarray, n_groups: int, *,
                quantiles=(0.5,), level: float = 95, at: np.ndarray | None = None) -> dict:
    """Kaplan-Meier per group, vectorised: quantile times (with bounds for the median) and S(at)."""
    ok = np.isfinite(t) & (group >= 0)
    g, t, e = group[ok], t[ok], e[ok]
    if len(t) and t.min() >= 0 and n_groups * (t.max() + 1) <= 2e7 and (t == np.floor(t)).all():
        return _grouped_km_days(g, t.astype(np.int64), e, n_groups, quantiles=quantiles, level=level, at=at)
    order = np.lexsort((t, g))
    g, t, e = g[order], t[order], e[order]
    out = {"n": np.bincount(g, minlength=n_groups), "events": np.bincount(g[e], minlength=n_groups)}
    nan = np.full(n_groups, np.nan)
    if not len(g):
        for q in quantiles:
            out[q] = nan.copy()
        out["median_lo"], out["median_hi"] = nan.copy(), nan.copy()
        out["at"] = np.ones(n_groups)
        return out
    new = np.ones(len(g), dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | (t[1:] != t[:-1])
    pair = np.cumsum(new) - 1
    pg, pt = g[new], t[new]
    d = np.bincount(pair, weights=e)
    tot = np.bincount(pair).astype(float)
    first = np.ones(len(pg), dtype=bool)
    first[1:] = pg[1:] != pg[:-1]
    starts = np.flatnonzero(first)
    grp_start = np.repeat(starts, np.diff(np.append(starts, len(pg))))
    cum_tot = np.cumsum(tot)
    before = cum_tot - tot - np.where(grp_start > 0, cum_tot[grp_start - 1], 0.0)
    at_risk = out["n"][pg] - before
    with np.errstate(divide="ignore", invalid="ignore"):
        # log(0) where everyone left at once: a finite stand-in keeps the per-group
        # cumulative sums subtractable, and exp(-1000) is exactly 0.0
        step = np.maximum(np.log1p(-d / at_risk), -1000.0)
        green_step = np.where(at_risk > d, d / (at_risk * (at_risk - d)), 0.0)
    cum = np.cumsum(step)
    log_s = cum - np.where(grp_start > 0, cum[grp_start - 1], 0.0)
    cg = np.cumsum(green_step)
    green = cg - np.where(grp_start > 0, cg[grp_start - 1], 0.0)
    surv = np.exp(log_s)
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = z * np.sqrt(green) / np.abs(log_s)
        lo = np.exp(-np.exp(np.log(-log_s) + half))
        hi = np.exp(-np.exp(np.log(-log_s) - half))
    lo = np.where((surv > 0) & (surv < 1), lo, surv)
    hi = np.where((surv > 0) & (surv < 1), hi, surv)
    big = len(pg)
    idx = np.arange(big)
    present = np.unique(pg)

    def first_below(s, thr):
        res = np.full(n_groups, np.nan)
        cand = np.where(s <= thr + 1e-9, idx, big)  # exp(sum of logs) is not exact
        m = np.minimum.reduceat(cand, starts)
        hit = m < big
        res[present[hit]] = pt[m[hit]]
        return res

    for q in quantiles:
        out[q] = first_below(surv, 1 - q)
    out["median_lo"] = first_below(lo, 0.5)
    out["median_hi"] = first_below(hi, 0.5)
    if at is not None:
        lim = at[pg]
        cand = np.where(pt <= lim, idx, -1)
        m = np.maximum.reduceat(cand, starts)
        s_at = np.ones(n_groups)
        has = m >= 0
        s_at[present[has]] = surv[m[has]]
        out["at"] = s_at
    return out


def _grouped_km_days(g: np.ndarray, t: np.ndarray, e: np.ndarray, n_groups: int, *,
                     quantiles=(0.5,), level: float = 95, at: np.ndarray | None = None) -> dict:
    """:func:`_grouped_km` for whole days: counts on a groups x days grid, no sorting."""
    width = int(t.max()) + 1
    cell = g * width + t
    total = np.bincount(cell, minlength=n_groups * width).reshape(n_groups, width).astype(float)
    events = np.bincount(cell[e], minlength=n_groups * width).reshape(n_groups, width).astype(float)
    return _km_grid(total, events, quantiles=quantiles, level=level, at=at)


def _km_grid(total: np.ndarray, events: np.ndarray, *, quantiles=(0.5,), level: float = 95,
             at: np.ndarray | None = None) -> dict:
    """Kaplan-Meier per row of a groups x days grid of stays (``total``) and events."""
    n_groups, width = total.shape
    n = total.sum(axis=1)
    at_risk = n[:, None] - np.cumsum(total, axis=1) + total
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(at_risk > 0, np.log1p(-np.where(at_risk > 0, events / at_risk, 0.0)), 0.0)
        green = np.cumsum(np.where(at_risk > events, events / (at_risk * (at_risk - events)), 0.0), axis=1)
    log_s = np.cumsum(step, axis=1)
    surv = np.exp(log_s)
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = z * np.sqrt(green) / np.abs(log_s)
        lo = np.exp(-np.exp(np.log(-log_s) + half))
        hi = np.exp(-np.exp(np.log(-log_s) - half))
    inside = (surv > 0) & (surv < 1)
    lo = np.where(inside, lo, surv)
    hi = np.where(inside, hi, surv)

    def first_below(s, thr):
        hit = s <= thr + 1e-9
        first = np.argmax(hit, axis=1).astype(float)
        first[~hit.any(axis=1)] = np.nan
        return first

    out = {"n": n.astype(np.int64), "events": events.sum(axis=1).astype(np.int64)}
    for q in quantiles:
        out[q] = first_below(surv, 1 - q)
    out["median_lo"] = first_below(lo, 0.5)
    out["median_hi"] = first_below(hi, 0.5)
    if at is not None:
        col = np.floor(np.minimum(at, width - 1)).astype(np.int64)
        s_at = surv[np.arange(n_groups), np.maximum(col, 0)]
        out["at"] = np.where(at < 0, 1.0, s_at)
    return out


def stage_durations(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    by: str | Sequence[str] | None = None,
    process: Process | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: object = None,
    level: float = 95,
) -> pd.DataFrame:
    """Days deals spend in each stage, per unit: Kaplan-Meier median and quantiles.

    A deal still in a stage is censored at ``as_of``; leaving a stage (moving on
    or being lost there) is the event. Skipped stages count with zero days;
    deals without history are left out (their days are unknown).

    Returns
    -------
    DataFrame
        ``[by...], stage, stage_code, deals, left, still_in, median_days,
        median_days_lo, median_days_hi, q25_days, q75_days, mean_days_closed,
        service_days, over_service_share`` where ``mean_days_closed`` is the plain
        mean of finished stays (biased low, shown for comparison) and
        ``over_service_share`` the estimated share of deals that stay longer
        than the stage's service level.
    """
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    by = as_list(by)
    unit, units = unit_codes(d, by, reps, customers)
    k = d.process.n_open
    n_units = len(units)
    usable = d.has_history & d.valid_dates
    n_groups = k * n_units
    sla = np.repeat(np.array([d.process.service_level(s) for s in d.process.stages]), n_units)
    at = np.where(np.isfinite(sla), sla, 1e18)
    closed = d.status != OPEN
    # stage-major groups: group = stage * n_units + unit; one stage (a contiguous column) at a time.
    # A stage is left for the next one below the top, at the close on the top, or not yet (censored).
    per_stage = []
    whole, width = d.whole_days, 1
    for s in range(k):
        ent = d.entered[:, s]
        m = usable & np.isfinite(ent)
        at_close = np.where(closed & (d.top == s), d.closed_at, np.nan)
        ex = np.where(d.top > s, d.entered[:, s + 1], at_close) if s + 1 < k else at_close
        done = np.isfinite(ex) & m
        t = np.where(done, ex, d.as_of) - ent
        t = np.where(m, t, 0.0)
        lo_t, hi_t = (t.min(), t.max()) if len(t) else (0.0, 0.0)
        whole &= lo_t >= 0
        width = max(width, int(hi_t) + 1) if np.isfinite(hi_t) else width
        per_stage.append((m, t, done))
    sum_done = np.zeros(n_groups)
    if whole and n_groups * width <= 2e7:
        total = np.zeros((n_groups, width))
        events = np.zeros((n_groups, width))
        for s, (m, t, done) in enumerate(per_stage):
            cell = np.where(m, unit * width + t.astype(np.int64), n_units * width)
            size = (n_units + 1) * width
            total[s * n_units:(s + 1) * n_units] = np.bincount(cell, minlength=size)[:n_units * width].reshape(
                n_units, width)
            events[s * n_units:(s + 1) * n_units] = np.bincount(cell[done], minlength=size)[
                :n_units * width].reshape(n_units, width)
            gd = np.where(m & done, unit, n_units)
            sum_done[s * n_units:(s + 1) * n_units] = np.bincount(
                gd, weights=t, minlength=n_units + 1)[:n_units]
        km = _km_grid(total, events, quantiles=(0.25, 0.5, 0.75), level=level, at=at)
    else:
        g = np.concatenate([np.where(m, s * n_units + unit, -1) for s, (m, _, _) in enumerate(per_stage)])
        t = np.concatenate([t for _, t, _ in per_stage])
        done = np.concatenate([done for _, _, done in per_stage])
        km = _grouped_km(g, t, done, n_groups, quantiles=(0.25, 0.5, 0.75), level=level, at=at)
        ok = (g >= 0) & done & np.isfinite(t)
        sum_done = np.bincount(g[ok], weights=t[ok], minlength=n_groups)
    groups = np.arange(n_groups)
    out = units.iloc[groups % n_units].reset_index(drop=True) if by else pd.DataFrame(index=range(n_groups))
    out["stage"] = np.asarray(d.process.stages, dtype=object)[groups // n_units]
    out["stage_code"] = groups // n_units
    out["deals"] = km["n"]
    out["left"] = km["events"]
    out["still_in"] = km["n"] - km["events"]
    out["median_days"] = km[0.5]
    out["median_days_lo"] = km["median_lo"]
    out["median_days_hi"] = km["median_hi"]
    out["q25_days"] = km[0.25]
    out["q75_days"] = km[0.75]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean_days_closed"] = np.where(km["events"] > 0, sum_done / km["events"], np.nan)
    out["service_days"] = sla
    out["over_service_share"] = np.where(km["n"] > 0, km["at"], np.nan)
    if by:
        out = out[out["deals"] > 0]
        out = out.sort_values(by + ["stage_code"], kind="stable")
    return out.reset_index(drop=True)


def cycle_length(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    by: str | Sequence[str] | None = None,
    period: str | None = None,
    process: Process | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: object = None,
    level: float = 95,
) -> pd.DataFrame:
    """Days from creation to close (won or lost), per unit and creation period, with Kaplan-Meier.

    Open deals are censored at ``as_of``. Deals whose close date is before their
    creation date are left out (counted in a warning by :func:`prepare`).

    Returns
    -------
    DataFrame
        ``[by..., period], deals, closed, open, median_days, median_days_lo,
        median_days_hi, q25_days, q75_days, mean_days_closed``. ``median_days``
        is NaN where fewer than half the deals have closed.
    """
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    by = as_list(by)
    unit, units = unit_codes(d, by, reps, customers)
    per = period_codes(d.created, period) if period else None
    g, u_of, p_of = group_index(unit, per)
    t, closed = d.cycle()
    n_groups = len(u_of)
    km = _grouped_km(g, t, closed, n_groups, quantiles=(0.25, 0.5, 0.75), level=level)
    ok = np.isfinite(t) & (g >= 0)
    sum_closed = np.bincount(g[ok & closed], weights=t[ok & closed], minlength=n_groups)
    keep = km["n"] > 0
    out = units.iloc[u_of[keep]].reset_index(drop=True) if by else pd.DataFrame(index=range(int(keep.sum())))
    if period:
        out["period"] = period_start(p_of[keep], period)
    out["deals"] = km["n"][keep]
    out["closed"] = km["events"][keep]
    out["open"] = km["n"][keep] - km["events"][keep]
    out["median_days"] = km[0.5][keep]
    out["median_days_lo"] = km["median_lo"][keep]
    out["median_days_hi"] = km["median_hi"][keep]
    out["q25_days"] = km[0.25][keep]
    out["q75_days"] = km[0.75][keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean_days_closed"] = np.where(km["events"][keep] > 0, sum_closed[keep] / km["events"][keep], np.nan)
    return out


def cycle_survival(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    by: str | Sequence[str] | None = None,
    process: Process | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: object = None,
    level: float = 95,
) -> pd.DataFrame:
    """The distribution of cycle length: Kaplan-Meier survival table per unit.

    Returns
    -------
    DataFrame
        ``[by...], time, at_risk, events, censored, survival, survival_lo,
        survival_hi``: ``survival`` is the share of deals still open ``time``
        days after creation.
    """
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    by = as_list(by)
    unit, units = unit_codes(d, by, reps, customers)
    t, closed = d.cycle()
    parts = []
    for u in range(len(units)):
        m = unit == u
        km = kaplan_meier(t[m], closed[m], level=level)
        for c in reversed(by):
            km.insert(0, c, units[c].iloc[u])
        parts.append(km)
    return pd.concat(parts, ignore_index=True)


def aging(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    process: Process | None = None,
    reps: pd.DataFrame | None = None,
    as_of: object = None,
    stuck_only: bool = True,
) -> pd.DataFrame:
    """Open deals and how long they have been in their current stage, against its service level.

    Returns
    -------
    DataFrame
        ``opportunity_id, rep_id, [rep_name, team], customer_id, stage,
        entered_at, days_in_stage, service_days, days_over, amount, recorded``,
        most overdue first. With ``stuck_only`` (default) only deals beyond the
        service level. ``recorded`` is False for deals without history (their
        days count from creation).
    """
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    opps = d.opportunities
    open_ = np.flatnonzero(d.status == OPEN)
    top = d.top[open_]
    ent = d.entered[open_, top]
    days = d.as_of - ent
    sla = np.array([d.process.service_level(s) for s in d.process.stages])[top]
    over = days - sla
    keep = over > 0 if stuck_only else np.ones(len(open_), dtype=bool)
    sel = open_[keep]
    out = pd.DataFrame({"opportunity_id": opps["opportunity_id"].to_numpy()[sel]})
    out["rep_id"] = opps["rep_id"].to_numpy()[sel] if "rep_id" in opps.columns else pd.NA
    if reps is not None:
        extra = [c for c in ("name", "team") if c in reps.columns]
        joined = unit_columns(d, extra, reps=reps)
        for c in extra:
            out["rep_name" if c == "name" else c] = joined[c].to_numpy()[sel]
    out["customer_id"] = opps["customer_id"].to_numpy()[sel] if "customer_id" in opps.columns else pd.NA
    out["stage"] = np.asarray(d.process.stages, dtype=object)[top[keep]]
    out["entered_at"] = _to_timestamps(ent[keep])
    out["days_in_stage"] = np.floor(days[keep])
    out["service_days"] = sla[keep]
    out["days_over"] = np.floor(over[keep])
    out["amount"] = d.amount[sel]
    out["recorded"] = d.has_history[sel]
    return out.sort_values(["days_over", "amount"], ascending=[False, False], kind="stable").reset_index(drop=True)
