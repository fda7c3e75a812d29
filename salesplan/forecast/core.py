"""The two entry points: :func:`forecast` and :func:`sample_paths`.

Both take a tidy long panel (``unique_id, ds, y`` by default) and fit every
requested model to every series at once. :func:`forecast` can spread chunks
of whole series over processes or a Dask cluster through
:func:`salesplan.forecast.parallel.run_chunks`; the chunks are cut the same
way on every engine, so results do not depend on the engine.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_frame, check_levels, check_positive_int
from salesplan.errors import SalesplanDataWarning, SalesplanError
from salesplan.forecast.models import MODELS, Croston, Ensemble, Naive, _check_h, _ETSPool, _Model, _warn_fallbacks, make_model
from salesplan.forecast.panel import Panel, _describe_ids, to_panel

__all__ = ["forecast", "sample_paths", "DEFAULT_MODEL"]

#: what ``models="auto"`` means (see :class:`salesplan.forecast.models.AutoForecast`)
DEFAULT_MODEL = "auto"


def _model_list(models: Any) -> list:
    if isinstance(models, (str, _Model)):
        models = [models]
    try:
        models = list(models)
    except TypeError:
        raise SalesplanError(f"models must be a model name, a model instance or a list of them, got {models!r}.") from None
    if not models:
        raise SalesplanError(f"models is empty; pass e.g. models='auto' or models=['ets', 'theta']. Known: {list(MODELS)}.")
    out = [make_model(m) for m in models]
    names = [m.name for m in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SalesplanError(f"models {dup} appear more than once; each model gives its own columns, so list each once.")
    return out


def _panel_warnings(panel: Panel, models: list, *, target_col: str) -> None:
    """Warn once, naming series, about oddities the models work around."""
    m = panel.m
    # naive and Croston never use the season, so a short history changes nothing for them
    seasonal_models = any(not isinstance(mdl, (Naive, Croston)) for mdl in models)
    if m > 1 and seasonal_models:
        short = panel.n < 2 * m
        if short.any():
            ids = panel.ids[short]
            warnings.warn(
                f"{ids.size} series have fewer than two seasons ({2 * m} periods at freq {panel.freq!r}): "
                f"{_describe_ids(ids)}. Seasonal models fall back to non-seasonal versions for them.",
                SalesplanDataWarning, stacklevel=3,
            )
    with np.errstate(all="ignore"):
        negative = np.nanmin(panel.Y, axis=1) < 0
    if negative.any():
        ids = panel.ids[negative]
        warnings.warn(
            f"{ids.size} series have negative {target_col!r} values ({_describe_ids(ids)}): multiplicative "
            f"ETS forms, log-scale ARIMA and multiplicative seasonal adjustment are not used for them.",
            SalesplanDataWarning, stacklevel=3,
        )
    for mdl in models:
        reasons = mdl.fallback_reasons(panel)
        _warn_fallbacks(mdl.name, panel, reasons)


def _fit_models(df: pd.DataFrame, *, models, freq, id_col, time_col, target_col, fill_gaps, season_length,
                optimizer="nm", panel=None):
    if panel is None:
        panel = to_panel(df, freq=freq, id_col=id_col, time_col=time_col, target_col=target_col,
                         fill_gaps=fill_gaps, season_length_=season_length)
    fitted = [None] * len(models)
    shared = {}
    fresh = [_fresh(m) for m in models]
    if len(models) > 1:
        # the plain models' small smoothing fits, computed together (a
        # one-series call is dominated by the number of vectorised steps);
        # each series is optimised on its own, so pooled fits equal separate ones
        pool = _ETSPool([r for m in fresh if not isinstance(m, Ensemble) for r in m._ets_requests(panel)],
                        optimizer)
        for m in fresh:
            m._ets_pool = pool
    # plain models first, so that combinations can reuse their fits
    order = sorted(range(len(models)), key=lambda i: isinstance(models[i], Ensemble))
    for i in order:
        mdl = fresh[i]
        mdl._cols = (id_col, time_col)
        mdl._optimizer = optimizer
        if isinstance(mdl, Ensemble):
            mdl._shared = shared
        mdl._fit_panel(panel, quiet=True)
        if not isinstance(mdl, Ensemble) and type(mdl) is type(make_model(mdl.name)) and _default_settings(mdl):
            shared[mdl.name] = mdl
        fitted[i] = mdl
    return panel, fitted


def _default_settings(mdl: _Model) -> bool:
    """Whether ``mdl`` has the settings ``make_model(mdl.name)`` would give it."""
    ref = make_model(mdl.name)
    pub = lambda o: {k: v for k, v in vars(o).items() if not k.startswith("_") and not k.endswith("_")}  # noqa: E731
    return pub(ref) == pub(mdl)


def _fresh(mdl: _Model) -> _Model:
    """An unfitted copy with the same settings (the caller's instance is left alone)."""
    params = {k: v for k, v in vars(mdl).items() if not k.startswith("_") and not k.endswith("_")}
    new = object.__new__(type(mdl))
    new.__dict__.update(params)
    for k, v in vars(mdl).items():
        if k.startswith("_") and not k.startswith("__") and k not in ("_fb", "_cols", "_fc_cache", "_ets_pool"):
            new.__dict__[k] = v
    return new


def _forecast_chunk(chunk: pd.DataFrame, *, h, models, levels, freq, id_col, time_col, target_col,
                    fill_gaps, season_length, optimizer, panel=None) -> pd.DataFrame:
    """Forecast one chunk of whole series; ``panel``, when given, is ``chunk`` already converted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        panel, fitted = _fit_models(chunk, models=models, freq=freq, id_col=id_col, time_col=time_col,
                                    target_col=target_col, fill_gaps=fill_gaps, season_length=season_length,
                                    optimizer=optimizer, panel=panel)
        cols = {id_col: np.repeat(panel.ids, h), time_col: panel.future_dates(h).ravel()}
        for mdl in fitted:
            cols.update(mdl._columns(h, levels))
    return pd.DataFrame(cols)


def forecast(
    df: pd.DataFrame,
    h: int,
    *,
    models: Any = "auto",
    level: Any = (80, 95),
    freq: str | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    season_length: int | None = None,
    fill_gaps: Any = None,
    engine: Any = "local",
    n_jobs: int = 1,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Forecast every series of a long panel with one or more models.

    Parameters
    ----------
    df : DataFrame
        Long panel with a series id, a date and a value column (one row per
        series and period; monthly, weekly, daily...). Not modified.
    h : int
        Horizon in periods (>= 1).
    models : str, model instance, or list of them
        ``"auto"`` (default: the mean of ETS, its form chosen per series by
        AICc, and Theta; see :class:`~salesplan.forecast.models.AutoForecast`,
        which also offers rolling-origin selection with
        ``AutoForecast(select="cv")``),
        ``"ensemble"`` (median of full ETS, Theta and ARIMA), ``"ets"``,
        ``"damped"``, ``"theta"``, ``"arima"``, ``"naive"``, ``"snaive"``,
        ``"naive2"``, ``"croston"``, ``"sba"``, ``"tsb"``.
    level : sequence of int
        Prediction-interval coverages in percent; ``None`` or ``[]`` for none.
    freq : str, optional
        pandas frequency of the dates (``"MS"``, ``"W-MON"``, ``"D"``...).
        Inferred from the spacing of the dates when omitted; irregular
        spacing raises a :class:`SalesplanError` that shows what was seen.
    id_col, time_col, target_col : str
        Column names of the panel.
    season_length : int, optional
        Periods per season; default from ``freq`` (12 months, 52 weeks, 7 days).
    fill_gaps : None, float or "interpolate"
        Missing periods (or missing values) inside a series raise a
        :class:`SalesplanDataError` by default; a number fills them with that
        value (``0.0`` for sales counts: no row, no sale), ``"interpolate"``
        fills linearly.
    engine, n_jobs, progress
        Passed to :func:`salesplan.forecast.parallel.run_chunks`:
        ``"local"``, ``"processes"`` (with ``n_jobs`` workers), ``"dask"`` or a
        ``dask.distributed.Client``; ``progress`` shows a bar.

    Returns
    -------
    DataFrame
        ``unique_id, ds`` (the next ``h`` periods of each series) then per
        model ``<model>``, ``<model>-lo-<l>``, ``<model>-hi-<l>`` for each
        level ``l``, e.g. ``auto, auto-lo-80, auto-hi-80, auto-lo-95, auto-hi-95``.

    Warns
    -----
    SalesplanDataWarning
        Naming the series that are shorter than two seasons (seasonal models
        fall back to non-seasonal ones), too short for a model (naive
        instead), constant or all zero (the constant is forecast), or have
        negative values (multiplicative forms excluded).

    Examples
    --------
    >>> df = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=36, freq="MS"),
    ...                    "y": np.tile(np.arange(1.0, 13.0), 3)})
    >>> fc = forecast(df, 3, models="snaive", level=[80])
    >>> list(fc.columns)
    ['unique_id', 'ds', 'snaive', 'snaive-lo-80', 'snaive-hi-80']
    >>> fc["snaive"].tolist()
    [1.0, 2.0, 3.0]
    """
    check_frame(df, name="df")
    h = _check_h(h)
    levels = check_levels(level)
    mdls = _model_list(models)
    if season_length is not None:
        season_length = check_positive_int(season_length, name="season_length")
    panel = to_panel(df, freq=freq, id_col=id_col, time_col=time_col, target_col=target_col,
                     fill_gaps=fill_gaps, season_length_=season_length)
    _panel_warnings(panel, mdls, target_col=target_col)
    fn = partial(_forecast_chunk, h=h, models=mdls, levels=levels, freq=panel.freq, id_col=id_col,
                 time_col=time_col, target_col=target_col, fill_gaps=fill_gaps,
                 season_length=panel.m, optimizer="nm")
    n_series = panel.ids.size
    if engine == "local" and not progress:
        # vectorised models are fastest on the whole panel at once (converted once)
        return _finish(fn(df, panel=panel), df, id_col)
    from salesplan.forecast.parallel import engine_chunk_size, run_chunks

    # A few chunks per worker thread of the cluster: a fixed count idles a large cluster.
    chunk_size = engine_chunk_size(n_series, engine=engine, n_jobs=n_jobs)
    out = run_chunks(fn, df, id_col=id_col, engine=engine, n_jobs=n_jobs, progress=progress,
                     desc="forecast", chunk_size=chunk_size)
    return _finish(out, df, id_col)


def _finish(out: pd.DataFrame, df: pd.DataFrame, id_col: str) -> pd.DataFrame:
    try:
        out[id_col] = out[id_col].astype(df[id_col].dtype)
    except (TypeError, ValueError):
        pass
    return out.reset_index(drop=True)


def sample_paths(
    df: pd.DataFrame,
    h: int,
    *,
    model: Any = "auto",
    n_samples: int = 1000,
    seed: int = 0,
    freq: str | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    season_length: int | None = None,
    fill_gaps: Any = None,
) -> pd.DataFrame:
    """Simulate future paths of every series from a fitted model.

    Paths come from the model's own stochastic form (state-space errors for
    ETS, Theta, ARIMA and the naive models; the members' errors recentred on
    the combination for ``"auto"`` and ``"ensemble"``), so their quantiles
    agree with :func:`forecast`'s intervals. Sum them over periods or series
    to get, e.g., the probability of reaching a yearly target.

    Returns
    -------
    DataFrame
        ``unique_id, ds, sample, y``: ``n_samples`` paths of ``h`` periods per
        series; ``sample`` numbers the paths 0..n_samples-1 (the same number
        across series is one joint draw only in the sense of sharing a seed:
        series are simulated independently).

    Examples
    --------
    >>> df = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=24, freq="MS"),
    ...                    "y": np.linspace(10, 33, 24)})
    >>> paths = sample_paths(df, 2, model="naive", n_samples=3)
    >>> paths.shape, list(paths.columns)
    ((6, 4), ['unique_id', 'ds', 'sample', 'y'])
    """
    check_frame(df, name="df")
    h = _check_h(h)
    n_samples = check_positive_int(n_samples, name="n_samples")
    mdl = _model_list([model])[0]
    if season_length is not None:
        season_length = check_positive_int(season_length, name="season_length")
    panel = to_panel(df, freq=freq, id_col=id_col, time_col=time_col, target_col=target_col,
                     fill_gaps=fill_gaps, season_length_=season_length)
    _panel_warnings(panel, [mdl], target_col=target_col)
    mdl = _fresh(mdl)
    mdl._cols = (id_col, time_col)
    mdl._optimizer = "nm"
    mdl._fit_panel(panel, quiet=True)
    out = mdl.sample(h, n_samples=n_samples, seed=seed)
    return _finish(out, df, id_col)
