"""Are the attainment probabilities honest? A backtest of stated against observed.

:func:`calibration_backtest` plans past years as the planner would have:
for each origin (the last year of the data, the year before...), it fits the
joint forecast (:class:`salesplan.targets.joint.JointForecast`) on the data
before that year, sets quotas at several growth rates with several
allocation methods, states each unit's probability of reaching its quota,
and then looks at what the units actually did that year.
:func:`reliability_table` bins the stated probabilities by decile and
compares them with the observed hit rates; the Brier score of the stated
probabilities is set against the naive rule "the probability is the share
of units that hit the same kind of quota the year before".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_frame
from salesplan.errors import SalesplanDataError
from salesplan.targets.allocation import equal_probability_quotas
from salesplan.targets.joint import JointForecast

__all__ = ["calibration_backtest", "reliability_table", "calibration_summary", "align_ends"]

CALIBRATION_METHODS: tuple[str, ...] = ("equal_growth", "equal_probability")


def align_ends(panel: pd.DataFrame, *, end: str = "2000-12-01") -> pd.DataFrame:
    """Shift every series so that all end in the same month (for panels of unrelated series, e.g. M3).

    Returns
    -------
    DataFrame
        ``unique_id, ds, y`` with ``ds`` moved so each series' last month is ``end``;
        month-of-year positions are kept modulo 12 only when the series ended in the same calendar month.
    """
    check_columns(panel, ["unique_id", "ds", "y"], name="panel")
    p = panel.sort_values(["unique_id", "ds"])
    back = p.groupby("unique_id").cumcount(ascending=False).to_numpy()
    last = pd.Timestamp(end).to_period("M")
    ds = pd.PeriodIndex([last - int(b) for b in back], freq="M").to_timestamp()
    return pd.DataFrame({"unique_id": p["unique_id"].astype("str").to_numpy(), "ds": ds, "y": p["y"].to_numpy(float)})


def calibration_backtest(
    panel: pd.DataFrame,
    *,
    growths: Sequence[float] = (-0.05, 0.0, 0.05, 0.10, 0.20),
    origins: int = 2,
    methods: Sequence[str] = CALIBRATION_METHODS,
    parents: pd.DataFrame | None = None,
    reconcile: str = "auto",
    pool: bool = True,
    ramp: Sequence[float] | None = None,
    n_samples: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Stated attainment probabilities of past plans beside what happened.

    Parameters
    ----------
    panel : DataFrame
        ``unique_id, ds, y`` monthly on one calendar (see :func:`align_ends`
        for unrelated series).
    growths : sequence of float
        Growth of the plan over each origin's last year.
    origins : int
        How many past years to plan: 1 is the last twelve months of the
        data, planned from what came before; 2 adds the twelve before, and so
        on, as long as at least twelve months remain to plan from.
    methods : sequence of str
        ``equal_growth`` (every unit's quota is its last year times
        ``1 + growth``) and/or ``equal_probability`` (the company's last year
        times ``1 + growth``, split so every unit has the same probability).
    parents, reconcile, pool, ramp, n_samples, seed
        Passed to :class:`JointForecast` (``pool=False`` for unrelated
        series such as M3: they are not units of one company).

    Returns
    -------
    DataFrame
        One row per origin, method, growth and unit with a positive last
        year: ``origin`` (first month planned), ``method``, ``growth``,
        ``unique_id``, ``last_year``, ``quota``, ``actual``, ``probability``
        (stated), ``hit`` (1 when actual >= quota), ``naive`` (share of the
        units that hit the equal-growth quota of the same growth the year
        before; NaN without two years before the origin).
    """
    check_frame(panel, name="panel")
    check_columns(panel, ["unique_id", "ds", "y"], name="panel")
    wide = panel.assign(unique_id=panel["unique_id"].astype("str")).pivot_table(
        index="unique_id", columns="ds", values="y", aggfunc="sum")
    cal = pd.date_range(wide.columns.min(), wide.columns.max(), freq="MS")
    wide = wide.reindex(columns=cal).fillna(0.0)
    T = len(cal)
    parts = []
    for o in range(1, origins + 1):
        cut = T - 12 * o
        if cut < 12:
            break
        hist = wide.iloc[:, :cut]
        actual = wide.iloc[:, cut:cut + 12].sum(axis=1).to_numpy(float)
        last = hist.iloc[:, -12:].sum(axis=1).to_numpy(float)
        before = hist.iloc[:, -24:-12].sum(axis=1).to_numpy(float) if cut >= 24 else None
        long = hist.stack().rename("y").reset_index()
        long.columns = ["unique_id", "ds", "y"]
        jf = JointForecast(n_samples=n_samples, seed=seed, method=reconcile, pool=pool,
                           ramp=ramp).fit(
            long, period=cal[cut:cut + 12], parents=parents)
        b = jf.S_.shape[1]
        ids = jf.nodes_["unique_id"].to_numpy()[:b]
        order = pd.Index(ids).get_indexer(hist.index)
        tot = jf.totals_[:b][order]
        keep = last > 0
        for g in growths:
            naive = np.nan
            if before is not None:
                ok = before > 0
                naive = float((last[ok] >= before[ok] * (1 + g)).mean()) if ok.any() else np.nan
            for m in methods:
                if m == "equal_growth":
                    quota = last * (1 + g)
                elif m == "equal_probability":
                    quota = np.zeros(len(last))
                    srt = np.sort(tot[keep], axis=1)
                    quota[keep] = equal_probability_quotas(srt, float(last[keep].sum() * (1 + g)))[0]
                else:
                    raise SalesplanDataError(f"method {m!r} is not one of {CALIBRATION_METHODS}.")
                prob = (tot >= quota[:, None]).mean(axis=1)
                parts.append(pd.DataFrame({
                    "origin": cal[cut], "method": m, "growth": g, "unique_id": hist.index.to_numpy()[keep],
                    "last_year": last[keep], "quota": quota[keep], "actual": actual[keep],
                    "probability": prob[keep], "hit": (actual[keep] >= quota[keep]).astype(float),
                    "naive": naive,
                }))
    if not parts:
        raise SalesplanDataError(
            f"calibration needs at least 24 months of history (12 to plan from, 12 to check); got {T}.")
    return pd.concat(parts, ignore_index=True)


def reliability_table(backtest: pd.DataFrame, *, bins: int = 10, min_units: int = 30) -> pd.DataFrame:
    """Stated probability against observed hit rate, by decile of the stated probability.

    One unit planned at several growth rates and methods gives several rows
    that rise and fall together, so a decile is judged by its distinct units
    (a unit in one planned year, and in one generated company when the
    backtest has a ``seed`` column), not by its rows.

    Returns
    -------
    DataFrame
        ``bin`` (e.g. ``"0.1-0.2"``), ``n`` (rows), ``units`` (distinct
        units), ``stated`` (mean stated probability), ``observed`` (hit
        rate), ``gap`` (observed - stated), ``naive`` (mean naive
        probability of the same rows), ``enough`` (units >= ``min_units``).
    """
    check_columns(backtest, ["probability", "hit"], name="backtest")
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(backtest["probability"].to_numpy(float), edges[1:-1], right=False), 0, bins - 1)
    g = backtest.assign(_bin=idx).groupby("_bin")
    keys = [c for c in ("seed", "origin", "unique_id") if c in backtest.columns]
    units = (backtest.assign(_bin=idx).drop_duplicates(["_bin", *keys]).groupby("_bin").size()
             if "unique_id" in backtest.columns else g.size())
    out = pd.DataFrame({
        "n": g.size(), "units": units, "stated": g["probability"].mean(), "observed": g["hit"].mean(),
        "naive": g["naive"].mean() if "naive" in backtest.columns else np.nan,
    }).reindex(range(bins))
    out[["n", "units"]] = out[["n", "units"]].fillna(0).astype(int)
    out["gap"] = out["observed"] - out["stated"]
    out.insert(0, "bin", [f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in range(bins)])
    out["enough"] = out["units"] >= min_units
    return out.reset_index(drop=True)[["bin", "n", "units", "stated", "observed", "gap", "naive", "enough"]]


def calibration_summary(backtest: pd.DataFrame, *, min_units: int = 30) -> dict:
    """Brier scores (stated, naive), the largest decile gap with enough units, and the count of rows."""
    ok = backtest["naive"].notna()
    rel = reliability_table(backtest, min_units=min_units)
    enough = rel[rel["enough"]]
    return {
        "n": int(len(backtest)),
        "brier": float(((backtest["probability"] - backtest["hit"]) ** 2).mean()),
        "brier_naive_rows": int(ok.sum()),
        "brier_on_naive_rows": float(((backtest.loc[ok, "probability"] - backtest.loc[ok, "hit"]) ** 2).mean())
        if ok.any() else float("nan"),
        "brier_naive": float(((backtest.loc[ok, "naive"] - backtest.loc[ok, "hit"]) ** 2).mean())
        if ok.any() else float("nan"),
        "max_abs_gap": float(enough["gap"].abs().max()) if len(enough) else float("nan"),
        "deciles_with_enough_units": int(len(enough)),
    }
