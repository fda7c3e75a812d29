"""Forecast accuracy metrics: point errors, scaled errors and interval scores.

Two layers:

* small array functions for one series (:func:`mae`, :func:`rmse`,
  :func:`smape`, :func:`mase`, :func:`rmsse`, :func:`bias`, :func:`coverage`,
  :func:`interval_score`), handy in a notebook and as a cross-check;
* :func:`evaluate`, which scores a tidy frame of forecasts of many series and
  models in one vectorised pass and returns a per-series frame and an
  aggregated frame.

Conventions
-----------
* The error is ``forecast - actual``: a positive ``bias`` means the forecast
  was too high (over-forecast), a negative one too low.
* sMAPE is the M3 definition, ``mean(200 * |y - f| / (|y| + |f|))``, in
  percent (0..200); a point where both ``y`` and ``f`` are 0 counts as 0.
* MASE divides the MAE by the in-sample MAE of the seasonal naive forecast
  (lag ``seasonality``) on the training data; RMSSE divides the MSE by the
  in-sample MSE of the same seasonal naive forecast and takes the square root
  (as in the M4/M5 competitions and ``utilsforecast``).
* Coverage is in percent, to compare with ``level``. The interval (Winkler)
  score of a ``level`` interval is ``(hi - lo) + 2/a * (lo - y) 1{y < lo}
  + 2/a * (y - hi) 1{y > hi}`` with ``a = 1 - level/100``; MSIS is its mean
  scaled like MASE (M4 competition).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from salesplan._validation import (
    check_columns,
    check_frame,
    check_levels,
    check_positive_int,
    describe_rows,
)
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError

__all__ = [
    "mae",
    "rmse",
    "smape",
    "mase",
    "rmsse",
    "bias",
    "coverage",
    "interval_score",
    "seasonal_scale",
    "evaluate",
    "Evaluation",
    "POINT_METRICS",
]

#: Point-forecast metrics reported by :func:`evaluate`, in column order.
POINT_METRICS = ("mae", "rmse", "smape", "mase", "rmsse", "bias", "bias_pct")


# -- one series, plain arrays ------------------------------------------------


def _arrays(*xs: Any) -> list[np.ndarray]:
    arrs = [np.asarray(x, dtype=float) for x in xs]
    n = {a.shape for a in arrs}
    if len(n) != 1:
        raise SalesplanError(
            f"the arrays must have the same shape, got shapes {[a.shape for a in arrs]}. "
            "Align actuals and forecasts on the same dates first."
        )
    return arrs


def mae(y: Any, y_hat: Any) -> float:
    """Mean absolute error.

    >>> mae([1, 2, 3], [2, 2, 5])
    1.0
    """
    y, y_hat = _arrays(y, y_hat)
    return float(np.mean(np.abs(y_hat - y)))


def rmse(y: Any, y_hat: Any) -> float:
    """Root mean squared error.

    >>> rmse([0, 0], [3, 4])
    3.5355339059327378
    """
    y, y_hat = _arrays(y, y_hat)
    return float(np.sqrt(np.mean((y_hat - y) ** 2)))


def _smape_points(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    denom = np.abs(y) + np.abs(y_hat)
    num = 200.0 * np.abs(y - y_hat)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / denom
    # 0/0: a zero forecast of a zero actual is perfect.
    return np.where(denom == 0, 0.0, out)


def smape(y: Any, y_hat: Any) -> float:
    """Symmetric MAPE, M3 definition, in percent (0..200).

    >>> round(smape([100, 0], [50, 0]), 4)
    33.3333
    """
    y, y_hat = _arrays(y, y_hat)
    return float(np.mean(_smape_points(y, y_hat)))


def seasonal_scale(y_train: Any, *, seasonality: int = 1, power: int = 1) -> float:
    """In-sample mean of ``|y_t - y_{t-m}| ** power`` (the seasonal naive error).

    Falls back to ``m = 1`` when the training data has ``seasonality`` points
    or fewer; returns NaN when it has fewer than two. The scaled metrics
    (:func:`mase`, :func:`rmsse`, MSIS) are NaN when this scale is 0 or NaN.

    >>> seasonal_scale([1, 2, 4, 7])
    2.0
    >>> seasonal_scale([1, 2, 4, 7], seasonality=2, power=2)
    17.0
    """
    y_train = np.asarray(y_train, dtype=float)
    m = check_positive_int(seasonality, name="seasonality")
    if len(y_train) <= m:
        m = 1
    if len(y_train) < 2:
        return float("nan")
    return float(np.mean(np.abs(y_train[m:] - y_train[:-m]) ** power))


def mase(y: Any, y_hat: Any, y_train: Any, *, seasonality: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006).

    >>> mase([3, 5], [4, 4], [1, 2, 4, 7])
    0.5
    """
    y, y_hat = _arrays(y, y_hat)
    return _scaled(float(np.mean(np.abs(y_hat - y))), seasonal_scale(y_train, seasonality=seasonality))


def rmsse(y: Any, y_hat: Any, y_train: Any, *, seasonality: int = 1) -> float:
    """Root mean squared scaled error (M5 competition).

    >>> rmsse([3, 5], [4, 4], [1, 2, 3])
    1.0
    """
    y, y_hat = _arrays(y, y_hat)
    scale2 = seasonal_scale(y_train, seasonality=seasonality, power=2)
    return float(np.sqrt(_scaled(float(np.mean((y_hat - y) ** 2)), scale2)))


def bias(y: Any, y_hat: Any, *, percent: bool = False) -> float:
    """Mean error ``forecast - actual`` (positive: over-forecast).

    With ``percent=True``: the summed error as a percentage of the summed actuals.

    >>> bias([10, 10], [12, 11])
    1.5
    >>> bias([10, 10], [12, 11], percent=True)
    15.0
    """
    y, y_hat = _arrays(y, y_hat)
    if percent:
        total = np.sum(y)
        return float(100.0 * np.sum(y_hat - y) / total) if total != 0 else float("nan")
    return float(np.mean(y_hat - y))


def coverage(y: Any, lo: Any, hi: Any) -> float:
    """Percentage of actuals inside ``[lo, hi]``.

    >>> coverage([1, 5, 9, 3], [0, 0, 0, 0], [4, 4, 10, 4])
    75.0
    """
    y, lo, hi = _arrays(y, lo, hi)
    return float(100.0 * np.mean((y >= lo) & (y <= hi)))


def _interval_points(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float) -> np.ndarray:
    a = 1.0 - level / 100.0
    return (
        (hi - lo)
        + (2.0 / a) * np.clip(lo - y, 0.0, None)
        + (2.0 / a) * np.clip(y - hi, 0.0, None)
    )


def interval_score(
    y: Any, lo: Any, hi: Any, *, level: float, y_train: Any = None, seasonality: int = 1
) -> float:
    """Mean interval (Winkler) score; scaled into MSIS when ``y_train`` is given.

    >>> interval_score([5, 12], [4, 4], [10, 10], level=80)
    16.0
    """
    (lv,) = check_levels(level)
    y, lo, hi = _arrays(y, lo, hi)
    score = float(np.mean(_interval_points(y, lo, hi, lv)))
    if y_train is not None:
        score = _scaled(score, seasonal_scale(y_train, seasonality=seasonality))
    return score


def _scaled(value: float, scale: float) -> float:
    # A constant (or too short) history cannot scale an error: NaN, not inf.
    return value / scale if np.isfinite(scale) and scale > 0 else float("nan")


# -- many series and models, tidy frames --------------------------------------


class Evaluation(NamedTuple):
    """What :func:`evaluate` returns: a per-series frame and an aggregated frame."""

    per_series: pd.DataFrame
    overall: pd.DataFrame


def evaluate(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame | None = None,
    train: pd.DataFrame | None = None,
    *,
    models: Sequence[str] | None = None,
    level: Sequence[float] | None = (80, 95),
    seasonality: int = 1,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    cutoff_col: str | None = None,
) -> Evaluation:
    """Score forecasts of many series and models against actuals.

    Parameters
    ----------
    forecasts : DataFrame
        Tidy forecasts: ``id_col``, ``time_col``, one column per model and,
        optionally, ``<model>-lo-<level>`` / ``<model>-hi-<level>`` interval
        columns (the layout of :func:`salesplan.forecast.forecast`). May already
        hold the actuals in ``target_col`` (as the frame from
        :func:`salesplan.forecast.backtest.backtest` does).
    actuals : DataFrame, optional
        ``id_col, time_col, target_col``: the observed values of the forecast
        periods. Not needed when ``forecasts`` has ``target_col``.
    train : DataFrame, optional
        ``id_col, time_col, target_col``: the history the forecasts were made
        from, used to scale MASE, RMSSE and MSIS. Without it those are NaN.
    models : list of str, optional
        Model columns to score. Default: every numeric column of ``forecasts``
        that is not an id, time, target, cutoff or interval column.
    level : list of float, optional
        Interval levels to score (coverage, Winkler score, MSIS). Levels whose
        columns are absent for every model are left out; a model without the
        columns of a present level gets NaN.
    seasonality : int
        Lag ``m`` of the seasonal naive forecast that scales MASE, RMSSE and
        MSIS (12 for monthly data with a yearly season, 1 for none).
    id_col, time_col, target_col : str
        Column names.
    cutoff_col : str, optional
        Column of ``forecasts`` holding the forecast origin (as in a backtest);
        each (series, cutoff) is then scaled by the training data up to and
        including its cutoff, so that no scale looks into the future.

    Returns
    -------
    Evaluation
        A named tuple ``(per_series, overall)``.

        ``per_series`` has one row per series and model: ``id_col``, ``model``,
        ``n_obs`` (scored points), ``mae``, ``rmse``, ``smape``, ``mase``,
        ``rmsse``, ``bias`` (mean of forecast - actual), ``bias_pct`` (summed
        error as % of summed actuals), then per level ``coverage_<level>`` (%),
        ``winkler_<level>`` (mean interval score) and ``msis_<level>``. With
        several cutoffs, the metrics pool every window of the series (a
        scaled metric scales each window by its own history).

        ``overall`` has one row per model: ``model``, ``n_series``, ``n_obs``;
        the mean over series of ``mae``, ``rmse``, ``smape``, ``mase``,
        ``rmsse``, ``winkler_*`` and ``msis_*``; and ``bias``, ``bias_pct``
        and ``coverage_*`` pooled over all points.

    Raises
    ------
    SalesplanDataError
        Missing columns, no forecast matching an actual, duplicated
        (series, time[, cutoff]) rows.

    Warns
    -----
    SalesplanDataWarning
        Forecast rows without an actual (dropped, counted) and series whose
        training data cannot scale the errors (constant or too short: NaN).

    Examples
    --------
    >>> fc = pd.DataFrame({"unique_id": "a", "ds": [3, 4], "naive": [7.0, 7.0]})
    >>> act = pd.DataFrame({"unique_id": "a", "ds": [3, 4], "y": [8.0, 10.0]})
    >>> hist = pd.DataFrame({"unique_id": "a", "ds": [0, 1, 2], "y": [1.0, 4.0, 7.0]})
    >>> ev = evaluate(fc, act, hist, level=None)
    >>> ev.overall[["model", "mae", "mase", "bias"]]
       model  mae      mase  bias
    0  naive  2.0  0.666667  -2.0
    """
    check_frame(forecasts, name="forecasts")
    check_columns(forecasts, [id_col, time_col], name="forecasts")
    m = check_positive_int(seasonality, name="seasonality")
    levels = check_levels(level)
    keys = [id_col, time_col] + ([cutoff_col] if cutoff_col else [])
    if cutoff_col:
        check_columns(forecasts, [cutoff_col], name="forecasts", hint="Pass cutoff_col=None for a single origin.")
    models = _pick_models(forecasts, models, skip=set(keys) | {target_col, "cutoff"})
    _check_unique(forecasts, keys, name="forecasts")

    if actuals is not None:
        check_frame(actuals, name="actuals")
        check_columns(actuals, [id_col, time_col, target_col], name="actuals")
        _check_unique(actuals, [id_col, time_col], name="actuals")
        fc = forecasts.drop(columns=[target_col], errors="ignore")
        data = fc.merge(actuals[[id_col, time_col, target_col]], on=[id_col, time_col], how="left")
    elif target_col in forecasts.columns:
        data = forecasts.copy()
    else:
        raise SalesplanDataError(
            f"forecasts has no {target_col!r} column and no actuals were given. "
            f"Pass actuals= (a frame with {id_col}, {time_col}, {target_col}) or "
            "add the observed values as a column."
        )
    no_actual = data[target_col].isna().to_numpy()
    if no_actual.all():
        raise SalesplanDataError(
            f"none of the {len(data)} forecast rows has an actual value in {target_col!r}. "
            f"Check that {id_col!r} and {time_col!r} match between forecasts and actuals "
            "(same ids, same period-start dates)."
        )
    if no_actual.any():
        warnings.warn(
            f"{int(no_actual.sum())} of {len(data)} forecast rows have no actual value "
            f"({describe_rows(data.index[no_actual])}); they are left out of the scores.",
            SalesplanDataWarning,
            stacklevel=2,
        )
        data = data.loc[~no_actual]
    data = data.reset_index(drop=True)

    # Interval levels present for at least one model.
    levels = [
        lv for lv in levels
        if any(f"{mdl}-lo-{lv}" in data.columns and f"{mdl}-hi-{lv}" in data.columns for mdl in models)
    ]

    scale_keys = [id_col] + ([cutoff_col] if cutoff_col else [])
    if train is not None:
        check_frame(train, name="train")
        check_columns(train, [id_col, time_col, target_col], name="train")
        scales = _scales(data, train, m=m, id_col=id_col, time_col=time_col,
                         target_col=target_col, cutoff_col=cutoff_col)
        data = data.merge(scales, on=scale_keys, how="left")
    else:
        data["_scale1"] = np.nan
        data["_scale2"] = np.nan

    y = data[target_col].to_numpy(dtype=float)
    s1 = data["_scale1"].to_numpy(dtype=float)
    s2 = data["_scale2"].to_numpy(dtype=float)
    ids = data[id_col]
    parts = []
    for mdl in models:
        f = data[mdl].to_numpy(dtype=float)
        err = f - y
        pts = {
            id_col: ids,
            "n_obs": ~np.isnan(err),
            "abs": np.abs(err),
            "sq": err**2,
            "smape": np.where(np.isnan(err), np.nan, _smape_points(y, f)),
            "mase": np.abs(err) / s1,
            "rmsse": err**2 / s2,
            "err": err,
            "y_obs": np.where(np.isnan(err), np.nan, y),
        }
        for lv in levels:
            lo_c, hi_c = f"{mdl}-lo-{lv}", f"{mdl}-hi-{lv}"
            if lo_c in data.columns and hi_c in data.columns:
                lo = data[lo_c].to_numpy(dtype=float)
                hi = data[hi_c].to_numpy(dtype=float)
                inside = ((y >= lo) & (y <= hi)).astype(float)
                inside[np.isnan(lo) | np.isnan(hi)] = np.nan
                wk = _interval_points(y, lo, hi, lv)
            else:
                inside = wk = np.full(len(y), np.nan)
            pts[f"coverage_{lv}"] = 100.0 * inside
            pts[f"winkler_{lv}"] = wk
            pts[f"msis_{lv}"] = wk / s1
        frame = pd.DataFrame(pts)
        g = frame.groupby(id_col, sort=False)
        means = g.mean()
        sums = g[["n_obs", "err", "y_obs"]].sum()
        out = pd.DataFrame({
            "n_obs": sums["n_obs"].astype("int64"),
            "mae": means["abs"],
            "rmse": np.sqrt(means["sq"]),
            "smape": means["smape"],
            "mase": means["mase"],
            "rmsse": np.sqrt(means["rmsse"]),
            "bias": means["err"],
            "bias_pct": _pct(sums["err"], sums["y_obs"]),
        })
        for lv in levels:
            for name in (f"coverage_{lv}", f"winkler_{lv}", f"msis_{lv}"):
                out[name] = means[name]
        out.insert(0, "model", mdl)
        out = out.reset_index()
        parts.append((out, frame))

    per_series = pd.concat([p for p, _ in parts], ignore_index=True)
    overall = _overall(parts, levels, id_col=id_col)
    return Evaluation(per_series=per_series, overall=overall)


def _pct(num: pd.Series, den: pd.Series) -> pd.Series:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (100.0 * num / den).where(den != 0)


def _overall(parts: list, levels: list, *, id_col: str) -> pd.DataFrame:
    rows = []
    for per, pts in parts:
        row = {
            "model": per["model"].iloc[0],
            "n_series": int((per["n_obs"] > 0).sum()),
            "n_obs": int(per["n_obs"].sum()),
        }
        for name in ("mae", "rmse", "smape", "mase", "rmsse"):
            row[name] = per[name].mean()
        row["bias"] = pts["err"].mean()
        ysum = pts["y_obs"].sum()
        row["bias_pct"] = 100.0 * pts["err"].sum() / ysum if ysum != 0 else np.nan
        for lv in levels:
            row[f"coverage_{lv}"] = pts[f"coverage_{lv}"].mean()
            row[f"winkler_{lv}"] = per[f"winkler_{lv}"].mean()
            row[f"msis_{lv}"] = per[f"msis_{lv}"].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def _pick_models(df: pd.DataFrame, models: Sequence[str] | str | None, *, skip: set) -> list[str]:
    """The forecast columns to use: ``models`` checked, or every numeric non-interval column not in ``skip``."""
    if models is None:
        models = [
            c for c in df.columns
            if c not in skip and "-lo-" not in str(c) and "-hi-" not in str(c)
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        ]
        if not models:
            raise SalesplanDataError(
                f"forecasts has no model columns: found {list(map(str, df.columns))}. "
                "Expected numeric forecast columns such as 'auto' or 'naive'; pass models=[...]."
            )
        return models
    if isinstance(models, str):
        models = [models]
    check_columns(df, list(models), name="forecasts", hint="Pass models= naming forecast columns.")
    return list(models)


def _check_unique(df: pd.DataFrame, keys: list[str], *, name: str) -> None:
    dup = df.duplicated(keys, keep=False).to_numpy()
    if dup.any():
        raise SalesplanDataError(
            f"{name} has {int(dup.sum())} rows that repeat the same {tuple(keys)} "
            f"({describe_rows(df.index[dup])}). Each series must have one row per period"
            + ("" if len(keys) > 2 else "; for several forecast origins pass cutoff_col='cutoff'")
            + "."
        )


def _scales(
    data: pd.DataFrame,
    train: pd.DataFrame,
    *,
    m: int,
    id_col: str,
    time_col: str,
    target_col: str,
    cutoff_col: str | None,
) -> pd.DataFrame:
    """Per (series[, cutoff]): in-sample seasonal-naive MAE and MSE (``_scale1``, ``_scale2``)."""
    hist = train[[id_col, time_col, target_col]].sort_values([id_col, time_col], kind="stable")
    if cutoff_col is None:
        out = _scale_frame(hist, m=m, id_col=id_col, target_col=target_col)
        wanted = data[[id_col]].drop_duplicates()
    else:
        frames = []
        for cut in pd.unique(data[cutoff_col]):
            part = _scale_frame(hist.loc[hist[time_col] <= cut], m=m, id_col=id_col, target_col=target_col)
            part[cutoff_col] = cut
            frames.append(part)
        out = pd.concat(frames, ignore_index=True)
        wanted = data[[id_col, cutoff_col]].drop_duplicates()
    keys = list(wanted.columns)
    out = wanted.merge(out, on=keys, how="left")
    bad = ~(np.isfinite(out["_scale1"]) & (out["_scale1"] > 0))
    if bad.any():
        shown = ", ".join(map(repr, pd.unique(out.loc[bad, id_col])[:5]))
        warnings.warn(
            f"{int(bad.sum())} series (e.g. {shown}) have training data that is constant, "
            "missing or shorter than two points, so MASE, RMSSE and MSIS are NaN for them.",
            SalesplanDataWarning,
            stacklevel=3,
        )
        out.loc[bad, ["_scale1", "_scale2"]] = np.nan
    return out


def _scale_frame(hist: pd.DataFrame, *, m: int, id_col: str, target_col: str) -> pd.DataFrame:
    g = hist.groupby(id_col, sort=False)[target_col]
    n = g.size()
    d = hist[target_col] - g.shift(m)
    lag1 = hist[target_col] - g.shift(1)
    # Too short for the seasonal lag: fall back to the one-step naive, as in M4.
    short = hist[id_col].map(n <= m).to_numpy(dtype=bool)
    d = d.where(~short, lag1)
    frame = pd.DataFrame({id_col: hist[id_col], "a": d.abs(), "s": d**2})
    sc = frame.groupby(id_col, sort=False)[["a", "s"]].mean()
    return sc.rename(columns={"a": "_scale1", "s": "_scale2"}).reset_index()
