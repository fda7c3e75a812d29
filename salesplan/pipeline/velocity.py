"""Sales velocity: open deals x win rate x average deal size / cycle length, and what moved it.

Velocity is money per day flowing out of the pipeline. Its change between
two periods splits into four factors with the logarithmic-mean (LMDI)
decomposition: with ``L(a, b) = (a - b) / ln(a / b)``,

    change = L(v1, v0) * [ln(n1/n0) + ln(w1/w0) + ln(a1/a0) - ln(c1/c0)]

so the four effects add up exactly to the change of velocity, and each says
how much of it one factor explains.

>>> import numpy as np
>>> lmdi(np.array([100.0]), np.array([50.0]), [np.array([2.0]), np.array([1.0])], [np.array([1.0]), np.array([1.0])])
[array([50.]), array([0.])]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesplan.pipeline._deals import LOST, OPEN, WON, PreparedDeals, prepare
from salesplan.pipeline._units import as_list, period_codes, period_start, unit_codes
from salesplan.pipeline.process import Process

__all__ = ["velocity", "velocity_trend", "lmdi", "FACTORS"]

#: The factors of velocity, as column names, and the effect columns of their change.
FACTORS = ("open_deals", "win_rate", "average_won", "cycle_days")


def lmdi(v1: np.ndarray, v0: np.ndarray, new: list[np.ndarray], old: list[np.ndarray],
         signs: Sequence[int] | None = None) -> list[np.ndarray]:
    """Log-mean (LMDI) effects of each factor on ``v1 - v0`` where ``v = prod(f ** sign)``.

    The effects add up to ``v1 - v0`` (NaN where a factor is zero or missing).
    """
    signs = list(signs) if signs is not None else [1] * len(new)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(v1 / v0)
        lm = np.where(np.isclose(v1, v0, rtol=1e-12, atol=0), v0, (v1 - v0) / logs)
        effects = [lm * s * np.log(a / b) for s, a, b in zip(signs, new, old)]
    ok = np.isfinite(lm)
    for e in effects:
        ok &= np.isfinite(e)
    return [np.where(ok, e, np.nan) for e in effects]


def velocity(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    by: str | Sequence[str] | None = None,
    period: str = "Q",
    process: Process | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: object = None,
) -> pd.DataFrame:
    """Sales velocity per unit and period, and the four factors behind each change.

    * ``open_deals``: deals open at the end of the period (created by then, not
      closed by then);
    * ``win_rate``: won / (won + lost) of the deals closed in the period;
    * ``average_won``: mean amount of the deals won in the period;
    * ``cycle_days``: mean days from creation to win of the deals won in the
      period (the usual velocity definition; see :func:`cycle_length` for the
      censored distribution of all deals);
    * ``velocity`` = open_deals x win_rate x average_won / cycle_days, money per day.

    Parameters
    ----------
    period : {"M", "Q", "Y", "W"}
        Period length (default quarters: months are noisy for one rep).

    Returns
    -------
    DataFrame
        ``[by...], period, open_deals, closed, won, win_rate, average_won,
        cycle_days, velocity, change, open_deals_effect, win_rate_effect,
        average_won_effect, cycle_days_effect, open_deals_share, win_rate_share,
        average_won_share, cycle_days_share``. ``change`` is the change from
        the unit's previous period and the four effects add up to it (LMDI);
        each share is the factor's log-change over velocity's log-change (the
        four add up to 1). NaN where a factor is zero or missing in either period.
    """
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    by = as_list(by)
    unit, units = unit_codes(d, by, reps, customers)
    n_units = len(units)
    created_p = period_codes(d.created, period)
    closed = (d.status != OPEN) & np.isfinite(d.closed_at)
    close_p = np.where(closed, period_codes(d.closed_at, period), -1)
    last_p = period_codes(np.array([d.as_of]), period)[0]
    lo = int(min(created_p.min(), close_p[closed].min() if closed.any() else created_p.min()))
    hi = int(max(last_p, close_p.max() if closed.any() else last_p))
    n_per = hi - lo + 1
    size = n_units * n_per

    def count(p, mask, weights=None):
        g = unit[mask] * n_per + (p[mask] - lo)
        w = None if weights is None else weights[mask]
        return np.bincount(g, weights=w, minlength=size).reshape(n_units, n_per)

    created_n = count(created_p, np.ones(d.n, dtype=bool))
    closed_n = count(close_p, closed)
    open_end = np.cumsum(created_n, axis=1) - np.cumsum(closed_n, axis=1)
    won = closed & (d.status == WON)
    lost = closed & (d.status == LOST)
    n_won = count(close_p, won)
    n_lost = count(close_p, lost)
    won_amt = count(close_p, won & np.isfinite(d.amount), np.nan_to_num(d.amount))
    n_won_amt = count(close_p, won & np.isfinite(d.amount))
    cyc, _ = d.cycle()
    cyc_ok = won & np.isfinite(cyc)
    cyc_sum = count(close_p, cyc_ok, np.nan_to_num(cyc))
    cyc_n = count(close_p, cyc_ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = n_won / (n_won + n_lost)
        avg = won_amt / n_won_amt
        cycle_days = np.maximum(cyc_sum / cyc_n, 1.0)  # a same-day win counts as one day
        vel = open_end * win_rate * avg / cycle_days
    factors = [open_end.astype(float), win_rate, avg, cycle_days]
    prev = [np.concatenate([np.full((n_units, 1), np.nan), f[:, :-1]], axis=1) for f in factors]
    vel_prev = np.concatenate([np.full((n_units, 1), np.nan), vel[:, :-1]], axis=1)
    effects = lmdi(vel, vel_prev, factors, prev, signs=[1, 1, 1, -1])
    # keep periods from each unit's first deal up to the last period
    first = np.full(n_units, n_per)
    np.minimum.at(first, unit, created_p - lo)
    keep = np.arange(n_per)[None, :] >= first[:, None]
    uu, pp = np.nonzero(keep)
    out = units.iloc[uu].reset_index(drop=True) if by else pd.DataFrame(index=range(len(uu)))
    out["period"] = period_start(pp + lo, period)
    out["open_deals"] = open_end[uu, pp].astype(np.int64)
    out["closed"] = (n_won + n_lost)[uu, pp].astype(np.int64)
    out["won"] = n_won[uu, pp].astype(np.int64)
    out["win_rate"] = win_rate[uu, pp]
    out["average_won"] = avg[uu, pp]
    out["cycle_days"] = cycle_days[uu, pp]
    out["velocity"] = vel[uu, pp]
    out["change"] = (vel - vel_prev)[uu, pp]
    for name, e in zip(FACTORS, effects):
        out[f"{name}_effect"] = e[uu, pp]
    change = out["change"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, e in zip(FACTORS, effects):
            # effect / change = the factor's log-change over the log-change of velocity
            out[f"{name}_share"] = np.where(change != 0, e[uu, pp] / change, np.nan)
    return out


def velocity_trend(velocity_frame: pd.DataFrame, *, by: str | Sequence[str] | None = None,
                   last: int | None = None) -> pd.DataFrame:
    """Trend of velocity per unit: least-squares slope over the (last) periods.

    Parameters
    ----------
    velocity_frame : DataFrame
        Output of :func:`velocity`.
    last : int, optional
        Use only the last ``last`` periods of each unit.

    Returns
    -------
    DataFrame
        ``[by...], periods, first_velocity, last_velocity, slope_per_period,
        slope_share`` where ``slope_share`` is the slope over the mean velocity.
    """
    by = as_list(by)
    df = velocity_frame.dropna(subset=["velocity"]).sort_values(by + ["period"])
    if last is not None:
        df = df.groupby(by).tail(last) if by else df.tail(last)
    rows = []
    for key, g in (df.groupby(by, sort=False) if by else [((), df)]):
        y = g["velocity"].to_numpy(dtype=float)
        x = np.arange(len(y), dtype=float)
        slope = float(np.polyfit(x, y, 1)[0]) if len(y) >= 2 else float("nan")
        mean = float(y.mean()) if len(y) else float("nan")
        key = key if isinstance(key, tuple) else (key,)
        rows.append((*key, len(y), y[0] if len(y) else np.nan, y[-1] if len(y) else np.nan, slope,
                     slope / mean if mean else np.nan))
    return pd.DataFrame(rows, columns=by + ["periods", "first_velocity", "last_velocity",
                                            "slope_per_period", "slope_share"])
