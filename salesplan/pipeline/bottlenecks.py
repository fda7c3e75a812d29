"""Bottlenecks: stages and units whose conversion or speed differ significantly from the rest.

For every stage and every unit (rep, team, region...), the unit's deals are
compared with everyone else's deals in the same stage:

* conversion (advanced vs lost at the stage): a two-proportion z-test when
  every expected cell count is at least 5, else Fisher's exact test;
* time in the stage: the log-rank test, which counts deals still in the stage
  as censored (a Mann-Whitney test of finished stays would ignore them).

Without ``by`` the "unit" is the recent window (the last ``recent_months``
months of stage entries) against the earlier history, so a stage that has
got worse stands out. The p-values of all tests of one call are adjusted
together for multiple testing (Benjamini-Hochberg by default).

Revenue at stake, per year:

* conversion: the deals the unit would have moved on at the rest's rate,
  times the share of advancing deals that are eventually won (from the next
  stage), times the average won deal; zero when the unit converts better;
* duration: the expected value (amount x stage win rate) of the unit's open
  deals now in the stage, when the unit is slower; zero otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from salesplan import format as fmt
from salesplan._validation import check_positive_int, check_probability
from salesplan.errors import SalesplanError
from salesplan.pipeline._deals import LOST, OPEN, WON, PreparedDeals, prepare
from salesplan.pipeline._units import as_list, unit_codes
from salesplan.pipeline.durations import _grouped_km
from salesplan.pipeline.process import Process

__all__ = ["bottlenecks", "two_proportion_test"]


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> tuple[str, float]:
    """Test name and two-sided p-value for k1/n1 against k2/n2.

    The pooled two-proportion z-test when every expected count of the 2x2 table
    is at least 5; Fisher's exact test otherwise.
    """
    if n1 <= 0 or n2 <= 0:
        return "none", float("nan")
    pooled = (k1 + k2) / (n1 + n2)
    expected = np.array([n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled)])
    if (expected >= 5).all():
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (k1 / n1 - k2 / n2) / se
        return "two-proportion z-test", float(2 * stats.norm.sf(abs(z)))
    p = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
    return "Fisher exact test", float(p)


def bottlenecks(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    by: str | Sequence[str] | None = "rep_id",
    recent_months: int = 6,
    alpha: float = 0.05,
    correction: str = "fdr_bh",
    min_deals: int = 10,
    only_significant: bool = True,
    process: Process | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: object = None,
) -> pd.DataFrame:
    """Stages and units whose conversion or time in stage differ significantly from the rest.

    Parameters
    ----------
    by : str or list of str or None
        Unit columns (as for :func:`funnel`); None compares the last
        ``recent_months`` months with the earlier history, per stage.
    alpha : float
        Significance level after the multiple-testing ``correction`` (any method
        of ``statsmodels.stats.multitest.multipletests``).
    min_deals : int
        Units with fewer deals decided (or timed) in a stage are not tested.
    only_significant : bool
        Keep only significant rows (default); else every test.

    Returns
    -------
    DataFrame
        ``[by...] (or window), stage, metric, test, unit_deals, rest_deals,
        unit_value, rest_value, effect, p_value, p_adjusted, significant,
        revenue_at_stake, sentence``, largest revenue at stake first.
        ``metric`` is ``conversion`` (values are rates, ``effect`` their
        difference) or ``days_in_stage`` (values are Kaplan-Meier median days,
        ``effect`` their difference); ``revenue_at_stake`` is per year.
    """
    from statsmodels.duration.survfunc import survdiff
    from statsmodels.stats.multitest import multipletests

    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    check_probability(alpha, name="alpha")
    check_positive_int(min_deals, name="min_deals")
    by = as_list(by)
    k = d.process.n_open
    if by:
        unit, units = unit_codes(d, by, reps, customers)
        labels = [", ".join(str(units[c].iloc[i]) for c in by) for i in range(len(units))]
        entry_unit = [unit] * k
    else:
        check_positive_int(recent_months, name="recent_months")
        cut = d.as_of - recent_months * 30.4375
        units = pd.DataFrame({"window": [f"last {recent_months} months", "before"]})
        labels = [f"the last {recent_months} months", "before"]
        # a deal's window is that of its entry into each stage
        entry_unit = [np.where(d.entered[:, s] >= cut, 0, 1) for s in range(k)]
    n_units = len(units)
    tested_units = range(1) if not by else range(n_units)

    amount = d.amount
    won = d.status == WON
    won_amount = np.nanmean(amount[won]) if won.any() else np.nan
    first_days = np.nanmin(d.entered[:, 0]) if d.n else d.as_of
    years = max((d.as_of - first_days) / 365.25, 1 / 12)
    exited, _ = d.exits()
    usable = d.has_history & d.valid_dates
    # share of deals advancing from stage s that are eventually won: win rate of stage s + 1
    win_from = np.ones(k + 1)
    for s in range(k):
        reached = np.isfinite(d.entered[:, s]) & (d.status != OPEN)
        n = reached.sum()
        win_from[s] = (won & reached).sum() / n if n else np.nan
    rows = []
    stage_names = d.process.stages
    for s in range(k):
        reached = np.isfinite(d.entered[:, s])
        top = d.top
        adv = reached & ((top > s) | ((top == s) & won))
        lost = reached & (top == s) & (d.status == LOST)
        in_stage_open = reached & (top == s) & (d.status == OPEN)
        t = np.where(np.isfinite(exited[:, s]), exited[:, s], d.as_of) - d.entered[:, s]
        done = np.isfinite(exited[:, s])
        timed = reached & usable & np.isfinite(t)
        u = entry_unit[s]
        n_adv = np.bincount(u[adv], minlength=n_units)
        n_lost = np.bincount(u[lost], minlength=n_units)
        km = _grouped_km(np.where(timed, u, -1), t, done, n_units)
        next_win = win_from[s + 1] if s + 1 < k else 1.0
        for i in tested_units:
            dec_u = n_adv[i] + n_lost[i]
            dec_r = n_adv.sum() - n_adv[i] + n_lost.sum() - n_lost[i]
            if dec_u >= min_deals and dec_r >= min_deals:
                test, p = two_proportion_test(n_adv[i], dec_u, n_adv.sum() - n_adv[i], dec_r)
                cu, cr = n_adv[i] / dec_u, (n_adv.sum() - n_adv[i]) / dec_r
                gap = max(cr - cu, 0.0)
                span = recent_months / 12 if not by and i == 0 else years
                at_stake = gap * dec_u * next_win * won_amount / span if span else np.nan
                rows.append((i, stage_names[s], "conversion", test, dec_u, dec_r, cu, cr, cu - cr, p, at_stake))
            m_u = timed & (u == i)
            m_r = timed & (u != i)
            if m_u.sum() >= min_deals and m_r.sum() >= min_deals:
                tt = np.concatenate([t[m_u], t[m_r]])
                ee = np.concatenate([done[m_u], done[m_r]]).astype(float)
                gg = np.concatenate([np.zeros(m_u.sum()), np.ones(m_r.sum())])
                if ee.sum() > 0:
                    try:
                        _, p = survdiff(tt, ee, gg)
                    except np.linalg.LinAlgError:  # no spread in times at all: nothing to tell apart
                        p = 1.0
                    med_u = km[0.5][i]
                    rest = _grouped_km(np.where(m_r, 0, -1), t, done, 1)[0.5][0]
                    slower = (med_u > rest) if np.isfinite(med_u) and np.isfinite(rest) else (
                        np.isnan(med_u) and np.isfinite(rest))
                    open_u = in_stage_open & (u == i)
                    at_stake = float(np.nansum(amount[open_u]) * (win_from[s] if np.isfinite(win_from[s]) else 0))
                    rows.append((i, stage_names[s], "days_in_stage", "log-rank test", int(m_u.sum()),
                                 int(m_r.sum()), med_u, rest, med_u - rest, float(p),
                                 at_stake if slower else 0.0))
    cols = ["unit_code", "stage", "metric", "test", "unit_deals", "rest_deals", "unit_value", "rest_value",
            "effect", "p_value", "revenue_at_stake"]
    res = pd.DataFrame(rows, columns=cols)
    if res.empty:
        out = pd.DataFrame(columns=(by or ["window"]) + cols[1:] + ["p_adjusted", "significant", "sentence"])
        return out
    p = res["p_value"].to_numpy(dtype=float)
    ok = np.isfinite(p)
    adj = np.full(len(p), np.nan)
    try:
        adj[ok] = multipletests(p[ok], alpha=alpha, method=correction)[1]
    except ValueError as exc:
        raise SalesplanError(f"correction={correction!r} is not a statsmodels multipletests method: {exc}") from None
    res["p_adjusted"] = adj
    res["significant"] = adj <= alpha
    res["sentence"] = [
        _sentence(labels[r.unit_code], r, by, correction, labels) for r in res.itertuples(index=False)
    ]
    head = units.iloc[res["unit_code"].to_numpy()].reset_index(drop=True)
    res = pd.concat([head, res.drop(columns="unit_code")], axis=1)
    if only_significant:
        res = res[res["significant"]]
    res = res.sort_values(["significant", "revenue_at_stake", "p_adjusted"], ascending=[False, False, True],
                          kind="stable")
    return res.reset_index(drop=True)


def _sentence(label: str, r, by: list[str], correction: str, labels: list[str]) -> str:
    who = f"Deals of {label}" if by else f"In {label}, deals"
    rest = "the rest" if by else "before"
    corr = {"fdr_bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni", "holm": "Holm"}.get(correction, correction)
    p = f"{r.test}, p = {r.p_adjusted:.3g} after {corr}"
    if r.metric == "conversion":
        verb = "move on" if by else "moved on"
        text = (f"{who} {verb} from {r.stage.replace('_', ' ')} in {fmt.percent(r.unit_value, decimals=0)} of cases "
                f"against {fmt.percent(r.rest_value, decimals=0)} for {rest} ({p})")
        if r.revenue_at_stake > 0:
            text += f": about {fmt.money(r.revenue_at_stake)} a year at stake; focus: {r.stage.replace('_', ' ')}."
        else:
            text += "."
        return text
    slow = "more" if (np.isfinite(r.effect) and r.effect > 0) or np.isnan(r.unit_value) else "fewer"
    uv = "more than half still there" if np.isnan(r.unit_value) else f"a median of {fmt.number(r.unit_value, decimals=0)} days"
    rv = "more than half still there" if np.isnan(r.rest_value) else f"{fmt.number(r.rest_value, decimals=0)}"
    text = (f"{who} {'spend' if by else 'spent'} {uv} in {r.stage.replace('_', ' ')} against {rv} for {rest} "
            f"({slow} days; {p})")
    if r.revenue_at_stake > 0:
        text += f": {fmt.money(r.revenue_at_stake)} of expected value waits there."
    else:
        text += "."
    return text
