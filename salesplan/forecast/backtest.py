"""Rolling-origin evaluation (backtesting) of forecasts.

The windows have an *expanding origin*: every window trains on all the
history up to its cutoff and forecasts the next ``h`` periods. With
``n_windows=3``, ``step=h`` and a series of ``n`` points, the cutoffs are the
points ``n - 3h``, ``n - 2h`` and ``n - h`` of that series (counted from 1)::

    window 1: train y[1 .. n-3h]   test y[n-3h+1 .. n-2h]
    window 2: train y[1 .. n-2h]   test y[n-2h+1 .. n-h]
    window 3: train y[1 .. n-h]    test y[n-h+1 .. n]

A smaller ``step`` makes the test windows overlap (more, correlated scores).
The cutoffs are counted per series from its own last observation, so a panel
whose series end on different dates is still cut fairly.

The naive (last value) and seasonal naive (value one season ago) forecasts
are always added, so that every model is compared with these baselines.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from salesplan._validation import (
    check_columns,
    check_frame,
    check_levels,
    check_positive_int,
    describe_rows,
)
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.forecast.metrics import Evaluation, evaluate

__all__ = ["backtest", "backtest_summary", "baseline_forecasts", "season_length"]

BASELINES = ("naive", "snaive")

_SEASON_BY_FREQ = {"MS": 12, "ME": 12, "M": 12, "QS": 4, "QE": 4, "Q": 4, "W": 52, "D": 7, "B": 5, "h": 24}


def season_length(freq: str | None) -> int:
    """Periods per season for a pandas frequency: 12 for monthly, 4 quarterly, ...

    >>> season_length("MS"), season_length("W-SUN"), season_length("YS"), season_length(None)
    (12, 52, 1, 1)
    """
    if not freq:
        return 1
    base = str(freq).split("-")[0].lstrip("0123456789")
    return _SEASON_BY_FREQ.get(base, 1)


def _infer_freq(df: pd.DataFrame, id_col: str, time_col: str) -> str | None:
    if not pd.api.types.is_datetime64_any_dtype(df[time_col]):
        return None
    for _, g in df.groupby(id_col, sort=False):
        if len(g) >= 3:
            idx = pd.DatetimeIndex(g[time_col].sort_values())
            try:
                with pd.option_context("future.infer_freq_returns_offset", True):
                    off = pd.infer_freq(idx)
            except (KeyError, pd.errors.OptionError):  # pandas < 3: a string already
                return pd.infer_freq(idx)
            return None if off is None else (off if isinstance(off, str) else off.freqstr)
    return None


def backtest(
    df: pd.DataFrame,
    h: int,
    *,
    n_windows: int = 3,
    step: int | None = None,
    models: Any = "auto",
    level: Sequence[float] | None = (80, 95),
    forecast_fn: Callable[..., pd.DataFrame] | None = None,
    season: int | None = None,
    freq: str | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    **forecast_kwargs: Any,
) -> pd.DataFrame:
    """Forecast from several past cutoffs and line the forecasts up with what happened.

    Parameters
    ----------
    df : DataFrame
        Panel ``id_col, time_col, target_col`` (one row per series and period,
        e.g. from :func:`salesplan.forecast.panel_from_transactions`).
    h : int
        Horizon of each window, in periods.
    n_windows : int
        Number of cutoffs (windows).
    step : int, optional
        Periods between consecutive cutoffs. Default ``h`` (windows that
        tile the last ``n_windows * h`` periods without overlapping).
    models, level
        Passed to ``forecast_fn``.
    forecast_fn : callable, optional
        ``forecast_fn(train, h, models=..., level=..., id_col=..., time_col=...,
        target_col=..., freq=..., **forecast_kwargs) -> DataFrame`` in the layout of
        :func:`salesplan.forecast.forecast` (the default). It must forecast the
        ``h`` periods that follow each series' last training date.
    season : int, optional
        Season length of the seasonal naive baseline (and of the MASE scale in
        :func:`backtest_summary`). Default: from ``freq`` (12 for monthly data).
    freq : str, optional
        Pandas frequency of ``time_col``; inferred when not given.
    id_col, time_col, target_col : str
        Column names.
    **forecast_kwargs
        Passed on to ``forecast_fn`` (e.g. ``engine=client, n_jobs=2, progress=False``).

    Returns
    -------
    DataFrame
        One row per series, cutoff and forecast period: ``id_col``, ``cutoff``
        (last training date of the window), ``time_col``, ``target_col`` (the
        actual), then the columns of ``forecast_fn`` (one per model, plus
        ``<model>-lo-<level>`` and ``<model>-hi-<level>``), then the baselines
        ``naive`` and ``snaive`` with their intervals unless ``forecast_fn``
        already gave them. Rows are ordered by series (first appearance), cutoff
        and date.

    Raises
    ------
    SalesplanDataError
        Missing columns, duplicated (series, date) rows, missing target
        values, no series long enough, or forecasts whose dates match none of
        the test periods.

    Warns
    -----
    SalesplanDataWarning
        Series too short for the windows (left out, counted).
    """
    check_frame(df, name="df")
    check_columns(df, [id_col, time_col, target_col], name="df")
    h = check_positive_int(h, name="h")
    n_windows = check_positive_int(n_windows, name="n_windows")
    step = h if step is None else check_positive_int(step, name="step")
    levels = check_levels(level)
    dup = df.duplicated([id_col, time_col], keep=False).to_numpy()
    if dup.any():
        raise SalesplanDataError(
            f"df has {int(dup.sum())} rows that repeat the same ({id_col!r}, {time_col!r}) "
            f"({describe_rows(df.index[dup])}). Aggregate to one row per series and period first, "
            "e.g. with panel_from_transactions."
        )
    nan_y = df[target_col].isna().to_numpy()
    if nan_y.any():
        raise SalesplanDataError(
            f"df column {target_col!r} has {int(nan_y.sum())} missing values "
            f"({describe_rows(df.index[nan_y])}). Fill them (e.g. 0 for periods without sales) "
            "or drop the series before backtesting."
        )
    if freq is None:
        freq = _infer_freq(df, id_col, time_col)
    m = season_length(freq) if season is None else check_positive_int(season, name="season")
    if forecast_fn is None:
        from salesplan.forecast.core import forecast as forecast_fn  # noqa: PLC0415

    data = df[[id_col, time_col, target_col]].copy()
    data["_order"] = pd.factorize(data[id_col], sort=False)[0]
    data = data.sort_values(["_order", time_col], kind="stable").reset_index(drop=True)
    g = data.groupby("_order", sort=False)
    data["_pos"] = g.cumcount()
    data["_n"] = g[target_col].transform("size")
    # The earliest window must leave at least two training points.
    needed = h + (n_windows - 1) * step + 2
    short = data.loc[data["_n"] < needed, id_col].drop_duplicates()
    if len(short) == data[id_col].nunique():
        raise SalesplanDataError(
            f"every series is too short for {n_windows} window(s) of h={h} every {step} period(s): "
            f"each needs at least {needed} points, the longest has {int(data['_n'].max())}. "
            "Use fewer windows, a shorter h or a smaller step."
        )
    if len(short):
        warnings.warn(
            f"{len(short)} series have fewer than {needed} points and are left out of the backtest "
            f"(e.g. {', '.join(map(repr, short.iloc[:5]))}).",
            SalesplanDataWarning,
            stacklevel=2,
        )
        data = data[data["_n"] >= needed]

    windows = []
    for k in range(n_windows):
        offset = h + (n_windows - 1 - k) * step  # points after the cutoff
        cut = data["_n"] - offset
        train = data.loc[data["_pos"] < cut]
        test = data.loc[(data["_pos"] >= cut) & (data["_pos"] < cut + h)]
        cutoffs = train.groupby("_order", sort=False)[time_col].last()
        fc = forecast_fn(
            train[[id_col, time_col, target_col]].reset_index(drop=True),
            h,
            models=models,
            level=levels or None,
            freq=freq,
            id_col=id_col,
            time_col=time_col,
            target_col=target_col,
            **forecast_kwargs,
        )
        fc = _check_forecasts(fc, id_col=id_col, time_col=time_col, target_col=target_col)
        out = test[["_order", id_col, time_col, target_col]].merge(
            fc, on=[id_col, time_col], how="left"
        )
        model_cols = [c for c in fc.columns if c not in (id_col, time_col)]
        if model_cols and out[model_cols].isna().all().all():
            raise SalesplanDataError(
                f"forecast_fn returned forecasts whose {time_col!r} values match none of the "
                f"test periods of window {k + 1} (e.g. it gave {fc[time_col].iloc[0]!r} for "
                f"{fc[id_col].iloc[0]!r}, the test starts at {test[time_col].iloc[0]!r}). "
                f"Pass freq= matching the data (inferred: {freq!r})."
            )
        base = baseline_forecasts(
            train, test, season=m, levels=levels,
            skip=[c for c in BASELINES if c in out.columns],
            id_col="_order", time_col=time_col, target_col=target_col,
        )
        out = pd.concat([out.reset_index(drop=True), base], axis=1)
        out.insert(2, "cutoff", out["_order"].map(cutoffs).to_numpy())
        windows.append(out)

    result = pd.concat(windows, ignore_index=True)
    result = result.sort_values(["_order", "cutoff", time_col], kind="stable")
    return result.drop(columns="_order").reset_index(drop=True)


def _check_forecasts(fc: Any, *, id_col: str, time_col: str, target_col: str) -> pd.DataFrame:
    if not isinstance(fc, pd.DataFrame):
        raise SalesplanError(
            f"forecast_fn must return a DataFrame, got {type(fc).__name__}. "
            "Return the layout of salesplan.forecast.forecast: unique_id, ds, one column per model."
        )
    check_columns(fc, [id_col, time_col], name="the frame returned by forecast_fn")
    if fc.duplicated([id_col, time_col]).any():
        raise SalesplanDataError(
            f"forecast_fn returned several rows for the same ({id_col!r}, {time_col!r}); "
            "it must return one row per series and forecast period."
        )
    return fc.drop(columns=[c for c in (target_col, "cutoff") if c in fc.columns])


def baseline_forecasts(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    season: int,
    levels: Sequence[float] = (80, 95),
    skip: Sequence[str] = (),
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> pd.DataFrame:
    """Naive and seasonal naive forecasts of the ``test`` rows from ``train``.

    ``naive`` repeats the last value; ``snaive`` repeats the last season (the
    naive forecast for a series with ``season`` points or fewer). Normal
    intervals use the in-sample residual standard deviation, widened with the
    horizon as in Hyndman & Athanasopoulos, *FPP3* §5.5: ``sigma * sqrt(k)``
    for naive and ``sigma * sqrt(floor((k - 1) / m) + 1)`` for snaive.

    ``test`` holds the forecast rows (``id_col``, ``time_col``), the first
    ``h`` periods after each series' training data, in date order.

    Returns
    -------
    DataFrame
        Aligned with ``test`` (same row order, fresh index): ``naive``,
        ``naive-lo-<level>``, ``naive-hi-<level>``, ``snaive`` and its interval
        columns, leaving out the models named in ``skip``.

    Examples
    --------
    >>> tr = pd.DataFrame({"unique_id": "a", "ds": range(4), "y": [1.0, 5.0, 2.0, 6.0]})
    >>> te = pd.DataFrame({"unique_id": "a", "ds": [4, 5, 6]})
    >>> baseline_forecasts(tr, te, season=2, levels=[])
       naive  snaive
    0    6.0     2.0
    1    6.0     6.0
    2    6.0     2.0
    """
    tr = train[[id_col, time_col, target_col]].sort_values([id_col, time_col], kind="stable")
    y = tr[target_col].to_numpy(dtype=float)
    gtr = tr.groupby(id_col, sort=False)
    n = gtr.size()
    start = n.cumsum() - n  # first position of each series in y

    ids = test[id_col].to_numpy()
    k = test.groupby(id_col, sort=False).cumcount().to_numpy() + 1
    n_t = n.reindex(ids).to_numpy()
    s_t = start.reindex(ids).to_numpy()
    last = y[s_t + n_t - 1]
    m_t = np.where(n_t > season, season, 1)
    snaive = y[s_t + n_t - m_t + (k - 1) % m_t]

    res1 = (tr[target_col] - gtr[target_col].shift(1)).to_numpy()
    sig1 = _rms_by(res1, tr[id_col]).reindex(ids).to_numpy()
    lag_m = tr[id_col].map(pd.Series(np.where(n > season, season, 1), index=n.index)).to_numpy()
    shifted = np.full(len(y), np.nan)
    pos = np.arange(len(y)) - start.reindex(tr[id_col]).to_numpy()
    ok = pos >= lag_m
    shifted[ok] = y[np.arange(len(y))[ok] - lag_m[ok]]
    sigm = _rms_by(y - shifted, tr[id_col]).reindex(ids).to_numpy()

    out: dict[str, np.ndarray] = {}
    specs = (
        ("naive", last, sig1 * np.sqrt(k)),
        ("snaive", snaive, sigm * np.sqrt((k - 1) // m_t + 1)),
    )
    for name, point, sd in specs:
        if name in skip:
            continue
        out[name] = point
        for lv in levels:
            z = norm.ppf(0.5 + lv / 200.0)
            out[f"{name}-lo-{lv}"] = point - z * sd
            out[f"{name}-hi-{lv}"] = point + z * sd
    return pd.DataFrame(out, index=pd.RangeIndex(len(test)))


def _rms_by(values: np.ndarray, keys: pd.Series) -> pd.Series:
    s = pd.Series(values**2, index=keys.to_numpy())
    return np.sqrt(s.groupby(level=0, sort=False).mean())


def backtest_summary(
    cv: pd.DataFrame,
    df: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    level: Sequence[float] | None = (80, 95),
    season: int | None = None,
    freq: str | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> Evaluation:
    """Score a :func:`backtest` frame: MASE, sMAPE, RMSSE, bias and coverage.

    Parameters
    ----------
    cv : DataFrame
        The frame returned by :func:`backtest`.
    df : DataFrame
        The panel that was backtested; each window's errors are scaled by the
        seasonal naive error on the history up to its own cutoff.
    models : list of str, optional
        Model columns to score (default: all, baselines included).
    level : list of float, optional
        Interval levels to score.
    season : int, optional
        Seasonal lag of the MASE/RMSSE scale; default from the data's frequency.
    freq, id_col, time_col, target_col
        As in :func:`backtest`.

    Returns
    -------
    Evaluation
        Named tuple ``(per_series, overall)`` as in
        :func:`salesplan.forecast.metrics.evaluate`: per series and model
        (pooled over windows and horizons) and per model; ``overall`` is
        sorted by ``mase`` (best first) and has a ``mase_vs_snaive`` column,
        the model's MASE divided by the seasonal naive's (below 1: better
        than the baseline).
    """
    check_frame(cv, name="cv")
    check_columns(cv, [id_col, "cutoff", time_col, target_col], name="cv",
                  hint="Pass the frame returned by backtest().")
    check_frame(df, name="df")
    check_columns(df, [id_col, time_col, target_col], name="df")
    if season is None:
        season = season_length(freq or _infer_freq(df, id_col, time_col))
    ev = evaluate(
        cv, None, df, models=models, level=level, seasonality=season,
        id_col=id_col, time_col=time_col, target_col=target_col, cutoff_col="cutoff",
    )
    overall = ev.overall.sort_values("mase", kind="stable", na_position="last").reset_index(drop=True)
    ref = overall.loc[overall["model"] == "snaive", "mase"]
    overall.insert(3, "mase_vs_snaive", overall["mase"] / ref.iloc[0] if len(ref) else np.nan)
    return Evaluation(per_series=ev.per_series, overall=overall)
