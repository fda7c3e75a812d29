"""The funnel by cohort: of the deals that entered a stage, how many moved on, were lost, or are open.

>>> import pandas as pd
>>> opps = pd.DataFrame({
...     "opportunity_id": ["a", "b", "c", "d"],
...     "stage": ["won", "lost", "proposal", "lost"],
...     "created_date": pd.to_datetime(["2024-01-01"] * 4),
...     "amount": [100.0, 50.0, 80.0, 10.0]})
>>> hist = pd.DataFrame({
...     "opportunity_id": ["a", "a", "b", "b", "c", "c", "d", "d"],
...     "stage": ["prospecting", "won", "prospecting", "lost", "prospecting", "proposal", "prospecting", "lost"],
...     "entered_at": pd.to_datetime(["2024-01-01", "2024-02-01"] * 4)})
>>> f = funnel(opps, hist)  # a skipped to won: it passed every stage
>>> f["entered"].tolist(), f["lost"].tolist()[0], f["open"].tolist()[3]
([4, 2, 2, 2, 1, 1], 2, 1)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from salesplan._validation import check_choice
from salesplan.errors import SalesplanError
from salesplan.pipeline._deals import LOST, OPEN, WON, PreparedDeals, prepare
from salesplan.pipeline._units import as_list, group_index, period_codes, period_start, unit_codes
from salesplan.pipeline.process import Process

__all__ = ["funnel", "wilson_interval", "win_rates"]


def wilson_interval(successes, trials, *, level: float = 95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion, elementwise; NaN where ``trials`` is 0.

    >>> lo, hi = wilson_interval(8, 10, level=95)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.4902, 0.9433)
    """
    if not 0 < level < 100:
        raise SalesplanError(f"level must be a coverage percentage between 0 and 100, got {level!r}; use e.g. 95.")
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = stats.norm.ppf(0.5 + level / 200.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        center = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        lo, hi = center - half, center + half
    bad = n <= 0
    lo = np.where(bad, np.nan, np.clip(lo, 0, 1))
    hi = np.where(bad, np.nan, np.clip(hi, 0, 1))
    return lo, hi


def funnel(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    by: str | Sequence[str] | None = None,
    period: str | None = None,
    cohort: str = "entry",
    process: Process | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: object = None,
    level: float = 95,
) -> pd.DataFrame:
    """Stage-by-stage funnel with conversion and win rates, by unit and period.

    Deals that skip stages count as having passed the skipped stages (a deal
    that went from proposal to contract advanced through negotiation). Lost
    deals were lost at the highest stage they reached; won deals passed every
    stage. So, without ``period`` (or with ``cohort="created"``), the number of
    deals entering a stage never increases down the stages.

    Parameters
    ----------
    opportunities, stage_history
        As for :func:`prepare` (or a :class:`PreparedDeals`); or paths of CSV
        or Parquet files (or globs), whose deals are then counted in DuckDB by
        :func:`salesplan.engine.funnel` without loading them (units from the
        opportunities' own columns only).
    by : str or list of str, optional
        Unit columns: any column of the opportunities (``rep_id``, ``product``...),
        of ``reps`` (``team``, ``region``) or of ``customers`` (``segment``,
        ``industry``; ``customer_region`` for the customer's region).
    period : {"M", "Q", "Y", "W"}, optional
        Cohorts by period.
    cohort : {"entry", "created"}
        ``entry``: a deal counts in the period it entered each stage (the rate of
        each stage is that of its own cohort). ``created``: in the period the
        deal was created (one cohort flows down the whole funnel).
    level : float
        Coverage of the Wilson intervals, in percent.

    Returns
    -------
    DataFrame
        ``[by..., period], stage, stage_code, entered, advanced, lost, open,
        conversion, conversion_lo, conversion_hi, won, win_rate, win_rate_lo,
        win_rate_hi, reach, entered_amount``.

        * ``advanced``: reached a later stage, or won from the last stage;
          ``lost``: lost in this stage; ``open``: still in it.
        * ``conversion`` = advanced / (advanced + lost): the stage-to-stage rate
          among deals decided at this stage (open deals are not counted yet).
        * ``won`` / ``win_rate``: of the deals that entered this stage and have
          closed, the share won (the overall win rate from this stage on).
        * ``reach``: entered / entered at the first stage of the same row group.
    """
    if isinstance(opportunities, (str, os.PathLike)):
        # files (CSV, Parquet, a glob): counted in DuckDB without loading the deals
        if reps is not None or customers is not None:
            raise SalesplanError(
                "funnel on files counts units of the opportunities' own columns; to use reps= or "
                "customers= columns, load the files first (salesplan.io) and pass the frames."
            )
        from salesplan import engine

        return engine.funnel(opportunities, stage_history, by=by, period=period, cohort=cohort,
                             process=process, level=level)
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    check_choice(cohort, ["entry", "created"], name="cohort")
    by = as_list(by)
    unit, units = unit_codes(d, by, reps, customers)
    k = d.process.n_open
    amount = np.nan_to_num(d.amount)
    per_created = period_codes(d.created, period) if period and cohort == "created" else None
    per_all = [None] * k
    if period:
        per_all = [per_created if per_created is not None else period_codes(d.entered[:, s], period)
                   for s in range(k)]
        valid = np.concatenate([p[p >= 0] for p in per_all]) if d.n else np.zeros(0, dtype=np.int64)
        lo = int(valid.min()) if valid.size else 0
        hi = int(valid.max()) if valid.size else 0
    n_units = len(units)
    n_per = (hi - lo + 1) if period else 1
    n_groups = n_units * n_per
    stats_ = np.zeros((k, 8, n_groups))
    status = d.status.astype(np.int64)
    # outcome at a stage below the top is "advanced"; at the top it follows the status
    outcome_at_top = np.array([2, 0, 1])[status]  # open -> open here, won -> advanced, lost -> lost here
    for s in range(k):
        reached = np.isfinite(d.entered[:, s])
        if period:
            reached &= per_all[s] >= 0
            g = unit * n_per + (per_all[s] - lo)
        else:
            g = unit
        g = np.where(reached, g, n_groups)  # unreached deals land in a spare group
        outcome = np.where(d.top > s, 0, outcome_at_top)
        counts = np.bincount(g * 9 + outcome * 3 + status, minlength=(n_groups + 1) * 9)
        counts = counts.reshape(n_groups + 1, 3, 3)[:n_groups]
        stats_[s, 0] = counts.sum(axis=(1, 2))
        stats_[s, 1] = counts[:, 0, :].sum(axis=1)
        stats_[s, 2] = counts[:, 1, :].sum(axis=1)
        stats_[s, 3] = counts[:, 2, :].sum(axis=1)
        stats_[s, 4] = counts[:, :, WON].sum(axis=1)
        stats_[s, 5] = counts[:, :, LOST].sum(axis=1)
        stats_[s, 6] = np.bincount(g, weights=amount, minlength=n_groups + 1)[:n_groups]

    groups = np.arange(n_groups)
    u_of, p_of = groups // n_per, groups % n_per + (lo if period else 0)
    entered = stats_[:, 0, :]
    keep = entered.sum(axis=0) > 0 if (period or by) else np.ones(n_groups, dtype=bool)
    if period and cohort == "entry":
        keep_cells = entered > 0
    else:
        keep_cells = np.broadcast_to(keep[None, :], entered.shape)
    gi = np.nonzero(keep)[0]
    # rows: group-major, stage-minor
    g_rep = np.repeat(gi, k)
    s_rep = np.tile(np.arange(k), len(gi))
    cell = keep_cells[s_rep, g_rep]
    g_rep, s_rep = g_rep[cell], s_rep[cell]
    get = lambda j: stats_[s_rep, j, g_rep]  # noqa: E731
    ent, adv, lost, opn, won, lost_all, amt = (get(j) for j in range(7))
    out = units.iloc[u_of[g_rep]].reset_index(drop=True) if by else pd.DataFrame(index=range(len(g_rep)))
    if period:
        out["period"] = period_start(p_of[g_rep], period)
    out["stage"] = np.asarray(d.process.stages, dtype=object)[s_rep]
    out["stage_code"] = s_rep
    return add_funnel_columns(out, ent, adv, lost, opn, won, lost_all, amt, first=stats_[0, 0, g_rep], level=level)


def add_funnel_columns(out: pd.DataFrame, entered, advanced, lost, open_, won, lost_all, amount, *,
                       first, level: float) -> pd.DataFrame:
    """The funnel's counts, rates and Wilson intervals, from the counts of each (group, stage) row.

    Shared by :func:`funnel` and :func:`salesplan.engine.funnel`, so that both give the same columns.
    ``first`` is the entries of the group's first stage on each row (for ``reach``).
    """
    out["entered"] = entered.astype(np.int64)
    out["advanced"] = advanced.astype(np.int64)
    out["lost"] = lost.astype(np.int64)
    out["open"] = open_.astype(np.int64)
    decided = advanced + lost
    with np.errstate(invalid="ignore", divide="ignore"):
        out["conversion"] = np.where(decided > 0, advanced / decided, np.nan)
        out["conversion_lo"], out["conversion_hi"] = wilson_interval(advanced, decided, level=level)
        out["won"] = won.astype(np.int64)
        closed = won + lost_all
        out["win_rate"] = np.where(closed > 0, won / closed, np.nan)
        out["win_rate_lo"], out["win_rate_hi"] = wilson_interval(won, closed, level=level)
        out["reach"] = np.where(first > 0, entered / first, np.nan)
    out["entered_amount"] = amount
    return out


def win_rates(
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
    """Overall win rate (won / closed) per unit and close period, with Wilson intervals.

    Returns
    -------
    DataFrame
        ``[by..., period], closed, won, lost, win_rate, win_rate_lo, win_rate_hi,
        won_amount, average_won``.
    """
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    by = as_list(by)
    unit, units = unit_codes(d, by, reps, customers)
    closed = (d.status != OPEN) & np.isfinite(d.closed_at)
    per = period_codes(d.closed_at, period) if period else None
    g, u_of, p_of = group_index(unit, per)
    sel = closed & (g >= 0)
    n_groups = len(u_of)
    won_m = sel & (d.status == WON)
    n_closed = np.bincount(g[sel], minlength=n_groups)
    n_won = np.bincount(g[won_m], minlength=n_groups)
    won_amount = np.bincount(g[won_m], weights=np.nan_to_num(d.amount[won_m]), minlength=n_groups)
    keep = n_closed > 0
    out = units.iloc[u_of[keep]].reset_index(drop=True) if by else pd.DataFrame(index=range(int(keep.sum())))
    if period:
        out["period"] = period_start(p_of[keep], period)
    out["closed"] = n_closed[keep]
    out["won"] = n_won[keep]
    out["lost"] = n_closed[keep] - n_won[keep]
    out["win_rate"] = n_won[keep] / n_closed[keep]
    out["win_rate_lo"], out["win_rate_hi"] = wilson_interval(n_won[keep], n_closed[keep], level=level)
    out["won_amount"] = won_amount[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["average_won"] = np.where(n_won[keep] > 0, won_amount[keep] / n_won[keep], np.nan)
    return out
