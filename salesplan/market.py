"""Market analysis: where the revenue comes from and how it moves.

Every function takes a transactions frame (the ``transactions`` table of
:mod:`salesplan.schema`: ``order_date``, ``customer_id``, ``revenue`` and the
optional ``quantity``, ``unit_price``, ``product_id``, ``category``,
``region``, ``channel``, ``rep_id``) first, options keyword-only, and returns
a new tidy frame; the caller's frame is never modified. Column names can be
overridden (``date_col=``, ``value=``, ``customer_col=``...) so that a frame
with other headers works without renaming.

Periods are labelled by their start date (``ds``): weeks start on Monday,
months, quarters and years on their first day. ``freq`` accepts the pandas
aliases ``"W"``, ``"MS"``, ``"QS"``, ``"YS"`` (and ``"D"``) or the words
``"week"``, ``"month"``, ``"quarter"``, ``"year"``.

Contents
--------
- time: :func:`sales_over_time`, :func:`growth`, :func:`cagr`, :func:`share`
- seasonality: :func:`decompose`, :func:`seasonal_indices`, :func:`phasing_weights`
- portfolio: :func:`growth_share` (BCG), :func:`abc_analysis` (Pareto),
  :func:`concentration` (top-N, HHI, Gini)
- bridges: :func:`price_volume_mix`, :func:`pvm_summary`
- customers: :func:`new_vs_returning`, :func:`cohort_matrix`
- market: :func:`market_share`
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import (
    check_choice,
    check_columns,
    check_dates,
    check_frame,
    check_numeric,
    describe_rows,
    drop_guest_lines,
)
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError

__all__ = [
    "sales_over_time",
    "growth",
    "cagr",
    "share",
    "decompose",
    "seasonal_indices",
    "phasing_weights",
    "growth_share",
    "abc_analysis",
    "concentration",
    "price_volume_mix",
    "pvm_summary",
    "new_vs_returning",
    "cohort_matrix",
    "market_share",
    "QUADRANTS",
]

#: BCG quadrant names, keyed by (high relative share, high growth).
QUADRANTS: dict[tuple[bool, bool], str] = {
    (True, True): "Stars",
    (True, False): "Cash cows",
    (False, True): "Question marks",
    (False, False): "Dogs",
}

# freq word/alias -> canonical code
_FREQ_ALIASES = {
    "d": "D", "day": "D", "daily": "D",
    "w": "W", "w-mon": "W", "week": "W", "weekly": "W",
    "m": "MS", "ms": "MS", "me": "MS", "month": "MS", "monthly": "MS",
    "q": "QS", "qs": "QS", "qs-jan": "QS", "qe": "QS", "quarter": "QS", "quarterly": "QS",
    "y": "YS", "ys": "YS", "a": "YS", "as": "YS", "ye": "YS", "year": "YS", "yearly": "YS", "annual": "YS",
}
_PANDAS_FREQ = {"D": "D", "W": "W-MON", "MS": "MS", "QS": "QS-JAN", "YS": "YS-JAN"}
_ONE_YEAR = {"D": pd.DateOffset(years=1), "W": pd.Timedelta(weeks=52), "MS": pd.DateOffset(years=1),
             "QS": pd.DateOffset(years=1), "YS": pd.DateOffset(years=1)}
_COUNTS = ("customers", "orders")


# --------------------------------------------------------------------------- helpers


def _freq(freq: Any) -> str:
    key = str(freq).strip().lower()
    if key not in _FREQ_ALIASES:
        raise SalesplanError(
            f"freq must be one of 'W', 'MS', 'QS', 'YS', 'D' (or 'week', 'month', 'quarter', "
            f"'year'), got {freq!r}."
        )
    return _FREQ_ALIASES[key]


def _as_list(by: Any) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


def _dates(tx: pd.DataFrame, col: str, *, name: str = "tx") -> pd.Series:
    """``tx[col]`` as naive datetime64[ns]; unparseable values raise, naming rows."""
    return check_dates(tx[col], name=f"{name}[{col!r}]").astype("datetime64[ns]")


def _numeric(tx: pd.DataFrame, col: str, *, name: str = "tx") -> pd.Series:
    hint = ("Load the file with salesplan.io.load_transactions, which parses thousands "
            "separators and currency symbols.")
    return check_numeric(tx[col], name=f"{name}[{col!r}]", hint=hint).astype("float64")


def _period_start(dates: pd.Series, freq: str) -> np.ndarray:
    """Start of the period each date falls in (datetime64[ns] array)."""
    d = dates.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    if freq == "D":
        out = d
    elif freq == "W":
        days = d.astype("int64")
        out = (days - (days + 3) % 7).astype("datetime64[D]")  # 1970-01-01 was a Thursday
    elif freq == "MS":
        out = d.astype("datetime64[M]")
    elif freq == "QS":
        m = d.astype("datetime64[M]").astype("int64")
        out = (m - m % 3).astype("datetime64[M]")
    else:
        out = d.astype("datetime64[Y]")
    return out.astype("datetime64[ns]")


def _period_grid(start: pd.Timestamp, end: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    return pd.date_range(start, end, freq=_PANDAS_FREQ[freq]).astype("datetime64[ns]")


def _prepare(
    tx: Any,
    *,
    date_col: str,
    value: str | None,
    by: Sequence[str] = (),
    extra: Sequence[str] = (),
    name: str = "tx",
) -> pd.DataFrame:
    """A narrow working copy: the date column parsed, value numeric, NaT rows dropped (warned)."""
    check_frame(tx, name=name)
    need = [date_col, *by, *extra]
    if value is not None and value not in _COUNTS:
        need.append(value)
    if value == "orders":
        need.append("order_id")
    if value == "customers":
        need.append("customer_id")
    need = list(dict.fromkeys(need))
    check_columns(tx, need, name=name)
    work = tx[need].copy()
    work[date_col] = _dates(tx, date_col, name=name)
    if value is not None and value not in _COUNTS:
        work[value] = _numeric(tx, value, name=name)
    missing = work[date_col].isna()
    if missing.any():
        warnings.warn(
            f"{name}: dropped {int(missing.sum())} row(s) without a {date_col!r} "
            f"({describe_rows(work.index[missing])}).",
            SalesplanDataWarning,
            stacklevel=3,
        )
        work = work[~missing]
        if work.empty:
            raise SalesplanDataError(f"{name} has no row with a {date_col!r}; nothing to analyse.")
    return work


def _window(value: Any, name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    try:
        start, end = value
        start, end = pd.Timestamp(start), pd.Timestamp(end)
    except (TypeError, ValueError):
        raise SalesplanError(
            f"{name} must be a (start, end) pair of dates, got {value!r}. "
            f"Use e.g. {name}=('2024-01-01', '2024-12-31')."
        ) from None
    if end < start:
        raise SalesplanError(f"{name} ends ({end.date()}) before it starts ({start.date()}).")
    # an end given as a date means the whole day
    if end == end.normalize():
        end = end + pd.Timedelta(days=1) - pd.Timedelta(nanoseconds=1)
    return start, end


def _default_windows(dates: pd.Series) -> tuple[tuple[pd.Timestamp, pd.Timestamp], ...]:
    """The 12 months ending with the last month in the data, and the 12 months before."""
    last_month = dates.max().to_period("M").to_timestamp()
    cur_end = last_month + pd.DateOffset(months=1) - pd.Timedelta(nanoseconds=1)
    cur_start = last_month - pd.DateOffset(months=11)
    base_start = cur_start - pd.DateOffset(years=1)
    base_end = cur_start - pd.Timedelta(nanoseconds=1)
    return (base_start, base_end), (cur_start, cur_end)


def _aggregate(work: pd.DataFrame, keys: list[str], value: str) -> pd.Series:
    g = work.groupby(keys, dropna=False, observed=True, sort=True)
    if value == "customers":
        return g["customer_id"].nunique().astype("float64")
    if value == "orders":
        return g["order_id"].nunique().astype("float64")
    return g[value].sum()


def _unit_id(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    if not by:
        return pd.Series("total", index=frame.index, dtype="str")
    out = frame[by[0]].astype("str")
    for col in by[1:]:
        out = out + "/" + frame[col].astype("str")
    return out


# --------------------------------------------------------------------------- over time


def sales_over_time(
    tx: pd.DataFrame,
    *,
    freq: str = "MS",
    by: str | Sequence[str] | None = None,
    value: str = "revenue",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Totals per period, overall or per dimension value, with empty periods as 0.

    Parameters
    ----------
    tx : DataFrame
        Transactions.
    freq : {"W", "MS", "QS", "YS", "D"} or "week", "month", "quarter", "year"
        Grain; periods are labelled by their start date.
    by : str or list of str, optional
        Dimension column(s) such as ``"region"`` or ``["region", "channel"]``.
        Any column works, e.g. a ``segment`` column merged in from
        :func:`salesplan.segments.rfm.rfm_segments`.
    value : str
        Numeric column to sum (``"revenue"``, ``"quantity"``), or ``"customers"``
        / ``"orders"`` for distinct ``customer_id`` / ``order_id`` counts.
    date_col : str
        Date column.

    Returns
    -------
    DataFrame
        Columns: the ``by`` columns, ``ds`` (period start), ``value`` (named
        after ``value``). Every unit gets every period from the first to the
        last period in the data; periods without sales hold 0.

    Examples
    --------
    >>> tx = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-05", "2024-03-02"]),
    ...                    "customer_id": ["a", "b"], "revenue": [10.0, 5.0]})
    >>> sales_over_time(tx)
              ds  revenue
    0 2024-01-01     10.0
    1 2024-02-01      0.0
    2 2024-03-01      5.0
    """
    f = _freq(freq)
    by_l = _as_list(by)
    work = _prepare(tx, date_col=date_col, value=value, by=by_l)
    work["ds"] = _period_start(work[date_col], f)
    totals = _aggregate(work, [*by_l, "ds"], value)
    grid = _period_grid(work["ds"].min(), work["ds"].max(), f)
    if by_l:
        units = totals.index.droplevel("ds").unique().to_frame(index=False)
        full_frame = units.loc[units.index.repeat(len(grid))].reset_index(drop=True)
        full_frame["ds"] = np.tile(grid.to_numpy(), len(units))
        full = pd.MultiIndex.from_frame(full_frame)
    else:
        full = pd.Index(grid, name="ds")
    out = totals.reindex(full, fill_value=0.0).rename(value).reset_index()
    out["ds"] = out["ds"].astype("datetime64[ns]")
    return out


def growth(
    tx: pd.DataFrame,
    *,
    freq: str = "MS",
    by: str | Sequence[str] | None = None,
    value: str = "revenue",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Period-over-period (MoM for months) and year-over-year growth.

    Growth is ``value / reference - 1``; it is NaN where the reference is 0 or
    missing (a first period, or a unit that had no sales), never infinite.

    Parameters
    ----------
    tx : DataFrame
        Transactions.
    freq, by, value, date_col
        As in :func:`sales_over_time`.

    Returns
    -------
    DataFrame
        Columns: ``by`` columns, ``ds``, ``<value>``, ``<value>_prev`` (previous
        period), ``growth_pop`` (period over period), ``<value>_last_year``
        (same period one year before; 52 weeks for weekly data),
        ``growth_yoy``.
    """
    f = _freq(freq)
    by_l = _as_list(by)
    sot = sales_over_time(tx, freq=f, by=by_l, value=value, date_col=date_col)
    prev_col, ly_col = f"{value}_prev", f"{value}_last_year"
    if by_l:
        sot[prev_col] = sot.groupby(by_l, dropna=False, sort=False)[value].shift(1)
    else:
        sot[prev_col] = sot[value].shift(1)
    ly = sot[[*by_l, "ds", value]].rename(columns={value: ly_col})
    ly["ds"] = (ly["ds"] + _ONE_YEAR[f]).astype("datetime64[ns]")
    out = sot.merge(ly, on=[*by_l, "ds"], how="left")
    out["growth_pop"] = _ratio(out[value], out[prev_col]) - 1.0
    out["growth_yoy"] = _ratio(out[value], out[ly_col]) - 1.0
    return out[[*by_l, "ds", value, prev_col, "growth_pop", ly_col, "growth_yoy"]]


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype("float64")
    return num.astype("float64") / den.where(den != 0)


def cagr(
    tx: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    value: str = "revenue",
    date_col: str = "order_date",
    start_year: int | None = None,
    end_year: int | None = None,
) -> pd.DataFrame:
    """Compound annual growth rate between two calendar years.

    By default the first and last *complete* calendar years of the data are
    used: a year counts as complete when the data starts in its January and
    ends in its December (partial years would bias the rate).

    ``cagr = (value_end / value_start) ** (1 / years) - 1``; NaN when
    ``value_start <= 0`` or ``value_end < 0``.

    Returns
    -------
    DataFrame
        Columns: ``by`` columns, ``start_year``, ``end_year``, ``years``,
        ``value_start``, ``value_end``, ``cagr``.
    """
    by_l = _as_list(by)
    yearly = sales_over_time(tx, freq="YS", by=by_l, value=value, date_col=date_col)
    yearly["year"] = yearly["ds"].dt.year
    dates = _dates(tx, date_col).dropna()
    lo, hi = dates.min(), dates.max()
    first = start_year if start_year is not None else (lo.year if lo.month == 1 else lo.year + 1)
    last = end_year if end_year is not None else (hi.year if hi.month == 12 else hi.year - 1)
    if last <= first:
        raise SalesplanDataError(
            f"cagr needs two different calendar years, got start_year={first}, end_year={last} "
            f"(data covers {lo.date()} to {hi.date()}; only complete years are used by default). "
            "Pass start_year= and end_year= explicitly to use partial years."
        )
    years_seen = set(yearly["year"])
    for y, nm in ((first, "start_year"), (last, "end_year")):
        if y not in years_seen:
            raise SalesplanDataError(
                f"{nm}={y} is outside the data, which covers {lo.date()} to {hi.date()}."
            )
    a = yearly[yearly["year"] == first].set_index(by_l or "year")[value].rename("value_start")
    b = yearly[yearly["year"] == last].set_index(by_l or "year")[value].rename("value_end")
    if not by_l:
        a.index, b.index = [0], [0]
    out = pd.concat([a, b], axis=1).reset_index(drop=not by_l)
    n = last - first
    out.insert(len(by_l), "start_year", first)
    out.insert(len(by_l) + 1, "end_year", last)
    out.insert(len(by_l) + 2, "years", n)
    ok = (out["value_start"] > 0) & (out["value_end"] >= 0)
    ratio = out["value_end"] / out["value_start"].where(ok)
    out["cagr"] = ratio ** (1.0 / n) - 1.0
    return out.reset_index(drop=True)


def share(
    tx: pd.DataFrame,
    *,
    by: str | Sequence[str],
    freq: str | None = "YS",
    within: str | Sequence[str] | None = None,
    value: str = "revenue",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Share of each unit in the total, and its change in percentage points.

    Parameters
    ----------
    by : str or list of str
        The units whose shares are computed (e.g. ``"region"``).
    freq : str or None
        Grain; ``None`` gives one share over the whole data.
    within : str or list of str, optional
        Columns inside which shares sum to 1 (e.g. ``within="region"``,
        ``by="channel"`` gives the channel mix of each region).

    Returns
    -------
    DataFrame
        Columns: ``within`` columns, ``by`` columns, ``ds`` (absent when
        ``freq=None``), ``<value>``, ``share`` (0..1; shares of one period and
        ``within`` group sum to 1), ``share_prev`` (previous period),
        ``share_change_pp`` (``(share - share_prev) * 100``).
    """
    by_l = _as_list(by)
    within_l = [c for c in _as_list(within) if c not in by_l]
    if not by_l:
        raise SalesplanError("share needs by=, the column(s) whose share is computed, e.g. by='region'.")
    keys = [*within_l, *by_l]
    if freq is None:
        work = _prepare(tx, date_col=date_col, value=value, by=keys)
        out = _aggregate(work, keys, value).rename(value).reset_index()
        group = within_l
    else:
        out = sales_over_time(tx, freq=freq, by=keys, value=value, date_col=date_col)
        out = out[[*within_l, *by_l, "ds", value]]
        group = [*within_l, "ds"]
    total = out.groupby(group, dropna=False)[value].transform("sum") if group else out[value].sum()
    out["share"] = _ratio(out[value], total if group else pd.Series(total, index=out.index))
    if freq is None:
        out["share_prev"] = np.nan
    else:
        out = out.sort_values([*keys, "ds"], kind="stable")
        out["share_prev"] = out.groupby(keys, dropna=False, sort=False)["share"].shift(1)
        out = out.sort_values([*within_l, "ds", *by_l], kind="stable")
    out["share_change_pp"] = (out["share"] - out["share_prev"]) * 100.0
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- seasonality


def _series_panel(
    data: Any, *, by: list[str], freq: str, value: str, date_col: str
) -> tuple[pd.DataFrame, str]:
    """(panel with by cols, ds, y; freq) from transactions or a date-indexed Series."""
    if isinstance(data, pd.Series):
        if by:
            raise SalesplanError("by= needs a transactions frame; a Series is a single series.")
        if not isinstance(data.index, pd.DatetimeIndex):
            raise SalesplanDataError(
                f"A series passed to decompose must have a DatetimeIndex, got {type(data.index).__name__}. "
                "Aggregate transactions with sales_over_time first, or pass the transactions frame."
            )
        s = data.sort_index().astype("float64")
        f = _freq(freq)
        if s.isna().any():
            raise SalesplanDataError(
                f"The series has {int(s.isna().sum())} missing value(s) at "
                f"{describe_rows(s.index[s.isna()].strftime('%Y-%m-%d'))}; fill them (e.g. with 0) first."
            )
        panel = pd.DataFrame({"ds": s.index.astype("datetime64[ns]"), "y": s.to_numpy()})
        return panel, f
    f = _freq(freq)
    panel = sales_over_time(data, freq=f, by=by, value=value, date_col=date_col)
    return panel.rename(columns={value: "y"}), f


def decompose(
    data: pd.DataFrame | pd.Series,
    *,
    by: str | Sequence[str] | None = None,
    period: int = 12,
    robust: bool = True,
    freq: str = "MS",
    value: str = "revenue",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Seasonal-trend decomposition (STL, statsmodels) of the total or of each unit.

    ``observed = trend + seasonal + resid`` exactly (additive STL). Each
    series needs at least two full seasonal cycles (``2 * period`` points).

    Parameters
    ----------
    data : DataFrame or Series
        Transactions (aggregated with :func:`sales_over_time` at ``freq``), or
        one series with a DatetimeIndex.
    by : str or list of str, optional
        Decompose each unit of these columns separately.
    period : int
        Season length in periods (12 for monthly data, 4 quarterly, 52 weekly).
    robust : bool
        Robust STL fitting, so that one-off spikes go to ``resid`` rather than
        bending the trend.

    Returns
    -------
    DataFrame
        Columns: ``unique_id`` (``"total"`` or the ``by`` values joined by
        ``"/"``), the ``by`` columns, ``ds``, ``observed``, ``trend``,
        ``seasonal``, ``resid``.
    """
    from statsmodels.tsa.seasonal import STL

    by_l = _as_list(by)
    if not isinstance(period, (int, np.integer)) or period < 2:
        raise SalesplanError(f"period must be an integer >= 2 (12 for monthly data), got {period!r}.")
    panel, _ = _series_panel(data, by=by_l, freq=freq, value=value, date_col=date_col)
    panel["unique_id"] = _unit_id(panel, by_l)
    n_points = panel.groupby("unique_id", sort=False).size()
    short = n_points[n_points < 2 * period]
    if len(short):
        raise SalesplanDataError(
            f"STL needs at least 2 full seasons (2 * period = {2 * period} points) per series; "
            f"{len(short)} series are shorter (e.g. {short.index[0]!r} has {int(short.iloc[0])}). "
            "Use a finer freq, a smaller period, or more history."
        )
    parts = []
    for uid, grp in panel.groupby("unique_id", sort=True):
        res = STL(grp["y"].to_numpy(dtype="float64"), period=int(period), robust=robust).fit()
        part = grp[[*by_l, "ds"]].copy()
        part.insert(0, "unique_id", uid)
        part["observed"] = res.observed
        part["trend"] = res.trend
        part["seasonal"] = res.seasonal
        part["resid"] = res.resid
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["unique_id"] = out["unique_id"].astype("str")
    return out


def seasonal_indices(
    data: pd.DataFrame | pd.Series,
    *,
    by: str | Sequence[str] | None = None,
    period: int = 12,
    robust: bool = True,
    freq: str = "MS",
    value: str = "revenue",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Seasonal index per month of year (or quarter), mean 1.0, for phasing plans.

    From the STL decomposition (:func:`decompose`), the raw index of month
    ``m`` is ``sum(trend + seasonal) / sum(trend)`` over the observations
    falling in month ``m``: how far the season lifts that month above its
    trend, as a ratio (multiplicative style, so it scales with the trend
    level). Raw indices are clipped at 0 (a warning counts the clips) and
    rescaled so that they average exactly 1.0 over the season: 1.15 means
    "15 % above an average month". A unit whose trend sums to <= 0 in some
    month gets a flat index of 1.0, with a warning.

    Only monthly (``freq="MS"``, ``period=12``) and quarterly
    (``freq="QS"``, ``period=4``) data have a calendar meaning; other
    combinations are refused.

    Returns
    -------
    DataFrame
        Columns: ``unique_id``, ``by`` columns, ``month`` (1..12) or
        ``quarter`` (1..4), ``seasonal_index``.
    """
    f = _freq(freq)
    season_col = {("MS", 12): "month", ("QS", 4): "quarter"}.get((f, period))
    if season_col is None:
        raise SalesplanError(
            f"seasonal_indices works on monthly (freq='MS', period=12) or quarterly "
            f"(freq='QS', period=4) data, got freq={freq!r}, period={period!r}."
        )
    by_l = _as_list(by)
    dec = decompose(data, by=by_l, period=period, robust=robust, freq=f, value=value, date_col=date_col)
    dec[season_col] = dec["ds"].dt.month if season_col == "month" else dec["ds"].dt.quarter
    dec["lifted"] = dec["trend"] + dec["seasonal"]
    keys = ["unique_id", *by_l, season_col]
    agg = dec.groupby(keys, sort=True, dropna=False)[["lifted", "trend"]].sum().reset_index()
    flat_units = agg.loc[agg["trend"] <= 0, "unique_id"].unique()
    raw = agg["lifted"] / agg["trend"].where(agg["trend"] > 0)
    if len(flat_units):
        warnings.warn(
            f"seasonal_indices: {len(flat_units)} series have a trend that is not positive in some "
            f"season (e.g. {flat_units[0]!r}); they get a flat index of 1.0.",
            SalesplanDataWarning,
            stacklevel=2,
        )
    raw = raw.where(~agg["unique_id"].isin(flat_units), 1.0)
    clipped = raw < 0
    if clipped.any():
        warnings.warn(
            f"seasonal_indices: {int(clipped.sum())} negative seasonal index value(s) were clipped "
            "to 0 (a season that is below zero after removing the trend).",
            SalesplanDataWarning,
            stacklevel=2,
        )
    agg["seasonal_index"] = raw.clip(lower=0.0)
    agg["seasonal_index"] = agg["seasonal_index"] / agg.groupby("unique_id")["seasonal_index"].transform("mean")
    return agg[keys + ["seasonal_index"]].reset_index(drop=True)


def phasing_weights(
    data: pd.DataFrame | pd.Series,
    *,
    by: str | Sequence[str] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Share of a yearly target that falls in each month: weights summing to 1.

    ``weight = seasonal_index / sum(seasonal_index)`` per unit, so that a
    yearly target ``T`` phases to ``T * weight`` per month.

    Parameters
    ----------
    data : DataFrame or Series
        The output of :func:`seasonal_indices` (recognised by its
        ``seasonal_index`` column), or anything :func:`seasonal_indices` takes.
    by, **kwargs
        Passed to :func:`seasonal_indices` when ``data`` is not already indices.

    Returns
    -------
    DataFrame
        Columns: ``unique_id``, ``by`` columns, ``month`` (or ``quarter``),
        ``weight``; the weights of one unit sum to 1.
    """
    if isinstance(data, pd.DataFrame) and "seasonal_index" in data.columns:
        idx = data.copy()
    else:
        idx = seasonal_indices(data, by=by, **kwargs)
    total = idx.groupby("unique_id")["seasonal_index"].transform("sum")
    idx["weight"] = idx["seasonal_index"] / total
    return idx.drop(columns="seasonal_index")


# --------------------------------------------------------------------------- portfolio


def _window_totals(
    work: pd.DataFrame, keys: list[str], value: str, date_col: str, window: tuple[pd.Timestamp, pd.Timestamp]
) -> pd.Series:
    inside = work[(work[date_col] >= window[0]) & (work[date_col] <= window[1])]
    return _aggregate(inside, keys, value)


def growth_share(
    tx: pd.DataFrame,
    *,
    by: str = "product_id",
    base: tuple[Any, Any] | None = None,
    current: tuple[Any, Any] | None = None,
    market: pd.DataFrame | None = None,
    growth_threshold: float | None = None,
    share_threshold: float = 1.0,
    value: str = "revenue",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Growth-share (BCG) matrix of products, regions or any unit.

    Without a market table, the market is our own data: ``share`` is the
    unit's share of our revenue in the current window, ``relative_share`` is
    the unit's revenue divided by that of the largest *other* unit (so only
    the leader has a relative share above 1), and ``growth`` is the unit's own
    revenue growth from the base to the current window.

    With ``market`` (columns ``period``, ``by`` and ``market_size``, optional
    ``competitor_sales``): ``share`` is our sales over ``market_size`` in the
    current window, ``growth`` is the *market's* growth base -> current (the
    classic BCG axis), and ``relative_share`` is our sales over
    ``competitor_sales`` when that column is present (put the largest
    competitor's sales there for the textbook ratio), else over the rest of
    the market (``market_size - ours``).

    Quadrants: relative share ``>= share_threshold`` (default 1.0: we lead)
    and growth ``>= growth_threshold`` (default: the growth of the whole
    market, i.e. of our total without a market table; a unit without base
    sales counts as high growth) -> ``Stars``; high share
    and low growth -> ``Cash cows``; low share, high growth -> ``Question
    marks``; low share, low growth -> ``Dogs``.

    Parameters
    ----------
    base, current : (start, end), optional
        Inclusive date windows. Default: the 12 months ending with the last
        month in the data, and the 12 months before.

    Returns
    -------
    DataFrame
        Columns: ``by``, ``value_base``, ``value_current``, ``growth``,
        ``share``, ``relative_share``, ``quadrant``; plus ``market_base``,
        ``market_current`` with a market table. Sorted by ``value_current``
        descending.
    """
    check_frame(tx, name="tx")
    work = _prepare(tx, date_col=date_col, value=value, by=[by])
    dflt_base, dflt_cur = _default_windows(work[date_col])
    w_base = _window(base, "base") if base is not None else dflt_base
    w_cur = _window(current, "current") if current is not None else dflt_cur
    vb = _window_totals(work, [by], value, date_col, w_base).rename("value_base")
    vc = _window_totals(work, [by], value, date_col, w_cur).rename("value_current")
    if vc.sum() == 0 and vb.sum() == 0:
        raise SalesplanDataError(
            f"No {value} in the base window {w_base[0].date()}..{w_base[1].date()} nor the current "
            f"window {w_cur[0].date()}..{w_cur[1].date()}; the data covers "
            f"{work[date_col].min().date()}..{work[date_col].max().date()}."
        )
    out = pd.concat([vb, vc], axis=1).fillna(0.0)
    out.index.name = by
    if market is None:
        out["growth"] = _ratio(out["value_current"], out["value_base"]) - 1.0
        total_cur = out["value_current"].sum()
        out["share"] = out["value_current"] / total_cur if total_cur else np.nan
        vals = out["value_current"].to_numpy()
        if len(vals) > 1:
            order = np.argsort(-vals, kind="stable")
            top, second = vals[order[0]], vals[order[1]]
            largest_other = np.where(np.arange(len(vals)) == order[0], second, top)
        else:
            largest_other = np.array([np.nan])
        out["relative_share"] = vals / np.where(largest_other > 0, largest_other, np.nan)
        market_growth = _ratio(pd.Series([out["value_current"].sum()]), pd.Series([out["value_base"].sum()])).iloc[0] - 1.0
    else:
        mk = _market_frame(market, [by], size_col="market_size", period_col="period")
        mk_b = _window_totals(mk, [by], "market_size", "period", w_base).rename("market_base")
        mk_c = _window_totals(mk, [by], "market_size", "period", w_cur).rename("market_current")
        out = out.join(pd.concat([mk_b, mk_c], axis=1), how="left")
        out["growth"] = _ratio(out["market_current"], out["market_base"]) - 1.0
        out["share"] = _ratio(out["value_current"], out["market_current"])
        if "competitor_sales" in market.columns:
            comp = _window_totals(
                _market_frame(market, [by], size_col="competitor_sales", period_col="period"),
                [by], "competitor_sales", "period", w_cur,
            )
            out["relative_share"] = _ratio(out["value_current"], comp.reindex(out.index))
        else:
            out["relative_share"] = _ratio(out["value_current"], out["market_current"] - out["value_current"])
        market_growth = _ratio(pd.Series([out["market_current"].sum()]), pd.Series([out["market_base"].sum()])).iloc[0] - 1.0
    thr = market_growth if growth_threshold is None else float(growth_threshold)
    hi_share = out["relative_share"] >= share_threshold
    # a unit new in the current window has no growth rate, but it is growing, not a dog
    born = out["growth"].isna() & (out["value_base"] <= 0) & (out["value_current"] > 0)
    hi_growth = (out["growth"] >= thr) | born
    out["quadrant"] = [QUADRANTS[(bool(s), bool(g))] for s, g in zip(hi_share, hi_growth)]
    out["quadrant"] = out["quadrant"].astype("str")
    out.attrs["growth_threshold"] = thr
    out.attrs["share_threshold"] = share_threshold
    out = out.reset_index().sort_values("value_current", ascending=False, kind="stable")
    cols = [by, "value_base", "value_current", "growth", "share", "relative_share", "quadrant"]
    if market is not None:
        cols += ["market_base", "market_current"]
    return out[cols].reset_index(drop=True)


def abc_analysis(
    tx: pd.DataFrame,
    *,
    by: str = "product_id",
    value: str = "revenue",
    thresholds: tuple[float, float] = (0.80, 0.95),
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Pareto / ABC classes of products, customers or any unit.

    Units are ranked by ``value`` (largest first; ties by name). A unit is
    ``A`` while the cumulative share *before* it is below ``thresholds[0]``
    (so class A is the smallest set reaching 80 %), ``B`` while it is below
    ``thresholds[1]`` (the next 15 %), ``C`` otherwise. Units with a total of
    0 or less (net returns) are always ``C``.

    Returns
    -------
    DataFrame
        Columns: ``by``, ``value`` (named after ``value``), ``share`` (of the
        total; sums to 1), ``cumulative_share``, ``rank`` (1 = largest),
        ``abc_class`` ("A", "B", "C").

    Examples
    --------
    >>> tx = pd.DataFrame({"order_date": pd.Timestamp("2024-01-01"), "customer_id": "c",
    ...                    "product_id": list("abcd"), "revenue": [60.0, 25.0, 10.0, 5.0]})
    >>> abc_analysis(tx)[["product_id", "cumulative_share", "abc_class"]]
      product_id  cumulative_share abc_class
    0          a              0.60         A
    1          b              0.85         A
    2          c              0.95         B
    3          d              1.00         C
    """
    a, b = thresholds
    if not 0 < a < b <= 1:
        raise SalesplanError(f"thresholds must be 0 < A < B <= 1, e.g. (0.80, 0.95); got {thresholds!r}.")
    if by == "customer_id":
        tx = drop_guest_lines(tx, customer_col=by, value_col=value, caller="abc_analysis", stacklevel=2)
    work = _prepare(tx, date_col=date_col, value=value, by=[by])
    tot = _aggregate(work, [by], value).rename(value).reset_index()
    total = tot[value].sum()
    if total <= 0:
        raise SalesplanDataError(
            f"abc_analysis needs a positive total {value!r}, got {total:g} over {len(tot)} {by} values."
        )
    tot = tot.sort_values([value, by], ascending=[False, True], kind="stable").reset_index(drop=True)
    tot["share"] = tot[value] / total
    tot["cumulative_share"] = tot["share"].cumsum()
    before = tot["cumulative_share"] - tot["share"]
    cls = np.where(before < a - 1e-12, "A", np.where(before < b - 1e-12, "B", "C"))
    tot["rank"] = np.arange(1, len(tot) + 1)
    tot["abc_class"] = pd.Series(np.where(tot[value] <= 0, "C", cls), dtype="str")
    return tot


def concentration(
    tx: pd.DataFrame,
    *,
    by: str = "customer_id",
    value: str = "revenue",
    top_n: Sequence[int] = (1, 5, 10, 20),
    freq: str | None = None,
    date_col: str = "order_date",
) -> pd.DataFrame:
    """How concentrated revenue is across customers (or products, reps...).

    Units whose total is 0 or less are left out (a warning counts them):
    shares of a market are non-negative.

    - ``top_<n>_share``: share of the ``n`` largest units.
    - ``hhi``: Herfindahl-Hirschman index on the 0..10,000 scale
      (sum of squared percentage shares; 10,000 = one unit has everything).
    - ``hhi_normalized``: ``(H - 1/N) / (1 - 1/N)`` on shares, 0 (all equal)
      .. 1 (one unit); 1.0 when there is a single unit.
    - ``gini``: Gini coefficient of the unit totals (0 = equal).

    Returns
    -------
    DataFrame
        One row (or one per period with ``freq``). Columns: ``ds`` (with
        ``freq``), ``n_units``, ``top_<n>_share`` per ``n``, ``hhi``,
        ``hhi_normalized``, ``gini``.
    """
    ns = [int(n) for n in top_n]
    if any(n < 1 for n in ns):
        raise SalesplanError(f"top_n must hold integers >= 1, got {list(top_n)!r}.")
    if by == "customer_id":
        tx = drop_guest_lines(tx, customer_col=by, value_col=value, caller="concentration", stacklevel=2)
    work = _prepare(tx, date_col=date_col, value=value, by=[by])
    if freq is not None:
        work["ds"] = _period_start(work[date_col], _freq(freq))
        tot = _aggregate(work, ["ds", by], value)
        groups = [(ds, grp.droplevel("ds")) for ds, grp in tot.groupby(level="ds")]
    else:
        groups = [(None, _aggregate(work, [by], value))]
    rows = []
    dropped = 0
    for ds, vals in groups:
        v = vals.to_numpy(dtype="float64")
        dropped += int((v <= 0).sum())
        v = np.sort(v[v > 0])[::-1]
        row: dict[str, Any] = {} if ds is None else {"ds": ds}
        row["n_units"] = len(v)
        total = v.sum()
        s = v / total if total > 0 else v
        for n in ns:
            row[f"top_{n}_share"] = s[:n].sum() if total > 0 else np.nan
        h = float((s ** 2).sum()) if total > 0 else np.nan
        row["hhi"] = h * 10_000
        row["hhi_normalized"] = 1.0 if len(v) == 1 else (h - 1 / len(v)) / (1 - 1 / len(v)) if len(v) else np.nan
        if len(v) and total > 0:
            asc = v[::-1]
            i = np.arange(1, len(asc) + 1)
            row["gini"] = float(2 * (i * asc).sum() / (len(asc) * total) - (len(asc) + 1) / len(asc))
        else:
            row["gini"] = np.nan
        rows.append(row)
    if dropped:
        warnings.warn(
            f"concentration: left out {dropped} {by} total(s) that were 0 or negative.",
            SalesplanDataWarning,
            stacklevel=2,
        )
    out = pd.DataFrame(rows)
    if "ds" in out:
        out["ds"] = out["ds"].astype("datetime64[ns]")
    return out


# --------------------------------------------------------------------------- price-volume-mix


_PVM_EFFECTS = ["price_effect", "volume_effect", "mix_effect", "new_effect", "lost_effect", "other_effect"]


def price_volume_mix(
    tx: pd.DataFrame,
    *,
    base: tuple[Any, Any] | None = None,
    current: tuple[Any, Any] | None = None,
    by: str = "product_id",
    value: str = "revenue",
    quantity_col: str = "quantity",
    price_col: str = "unit_price",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Split the revenue change between two windows into price, volume and mix.

    For each unit ``i`` (product, category...) with revenue ``R`` and
    quantity ``q`` in the base (``b``) and current (``c``) windows, average
    price ``p = R / q``, and ``Q`` the total quantity of the *continuing*
    units (sold in both windows):

    - ``volume_effect = (Q_c / Q_b - 1) * R_b,i`` -- all units grow with the total
    - ``mix_effect = Q_c * (q_c,i / Q_c - q_b,i / Q_b) * p_b,i`` -- shift between units
    - ``price_effect = q_c,i * (p_c,i - p_b,i)`` -- price at current volume

    which add up exactly to ``R_c,i - R_b,i``. A unit with positive quantity
    only in the current window is ``new`` (its whole change is
    ``new_effect``), only in the base window ``lost`` (``lost_effect``); a
    unit with no positive quantity in either window (returns/credits only)
    puts its change in ``other_effect``. So for every row and for the total,
    ``price + volume + mix + new + lost + other == total_change``.

    When ``by`` is coarser than a product (e.g. ``"category"``), price
    effects include the product mix within the unit.

    Parameters
    ----------
    base, current : (start, end), optional
        Inclusive date windows. Default: the 12 months ending with the last
        month in the data, and the 12 months before.
    quantity_col : str
        Units. When absent, quantity is ``value / price_col``.

    Returns
    -------
    DataFrame
        One row per unit. Columns: ``by``, ``status`` (continuing, new, lost,
        inactive), ``quantity_base``, ``quantity_current``, ``revenue_base``,
        ``revenue_current``, ``price_base``, ``price_current``,
        ``price_effect``, ``volume_effect``, ``mix_effect``, ``new_effect``,
        ``lost_effect``, ``other_effect``, ``total_change``. Use
        :func:`pvm_summary` for the bridge from base to current revenue.

    Examples
    --------
    >>> tx = pd.DataFrame({
    ...     "order_date": pd.to_datetime(["2023-05-01", "2023-05-01", "2024-05-01", "2024-05-01"]),
    ...     "customer_id": "c", "product_id": ["A", "B", "A", "B"],
    ...     "quantity": [10.0, 10.0, 20.0, 10.0], "revenue": [100.0, 200.0, 220.0, 200.0]})
    >>> pvm = price_volume_mix(tx, base=("2023-01-01", "2023-12-31"), current=("2024-01-01", "2024-12-31"))
    >>> pvm[["product_id", "price_effect", "volume_effect", "mix_effect", "total_change"]]
      product_id  price_effect  volume_effect  mix_effect  total_change
    0          A          20.0           50.0        50.0         120.0
    1          B           0.0          100.0      -100.0           0.0
    """
    check_frame(tx, name="tx")
    if quantity_col not in tx.columns:
        if price_col in tx.columns and value in tx.columns:
            qty = _numeric(tx, value) / _numeric(tx, price_col).where(lambda s: s != 0)
        else:
            raise SalesplanDataError(
                f"price_volume_mix needs quantities: tx has no {quantity_col!r} column and no "
                f"{price_col!r} to derive it from. Columns found: {[str(c) for c in tx.columns]}. "
                "Pass quantity_col= with the name of your units column."
            )
        work = _prepare(tx, date_col=date_col, value=value, by=[by])
        work["_qty"] = qty.reindex(work.index).fillna(0.0)
    else:
        work = _prepare(tx, date_col=date_col, value=value, by=[by], extra=[quantity_col])
        work["_qty"] = _numeric(tx, quantity_col).reindex(work.index).fillna(0.0)
    dflt_base, dflt_cur = _default_windows(work[date_col])
    w_b = _window(base, "base") if base is not None else dflt_base
    w_c = _window(current, "current") if current is not None else dflt_cur
    parts = {}
    for tag, w in (("base", w_b), ("current", w_c)):
        inside = work[(work[date_col] >= w[0]) & (work[date_col] <= w[1])]
        if inside.empty:
            raise SalesplanDataError(
                f"The {tag} window {w[0].date()}..{w[1].date()} has no transactions; the data covers "
                f"{work[date_col].min().date()}..{work[date_col].max().date()}."
            )
        parts[tag] = inside.groupby(by, dropna=False, sort=True).agg(
            quantity=("_qty", "sum"), revenue=(value, "sum")
        )
    df = parts["base"].add_suffix("_base").join(parts["current"].add_suffix("_current"), how="outer").fillna(0.0)
    qb, qc = df["quantity_base"].to_numpy(), df["quantity_current"].to_numpy()
    rb, rc = df["revenue_base"].to_numpy(), df["revenue_current"].to_numpy()
    cont = (qb > 0) & (qc > 0)
    new = (qb <= 0) & (qc > 0)
    lost = (qb > 0) & (qc <= 0)
    status = np.select([cont, new, lost], ["continuing", "new", "lost"], "inactive")
    with np.errstate(divide="ignore", invalid="ignore"):
        pb = np.where(qb > 0, rb / qb, np.nan)
        pc = np.where(qc > 0, rc / qc, np.nan)
    Qb, Qc = qb[cont].sum(), qc[cont].sum()
    change = rc - rb
    price = np.where(cont, qc * (pc - pb), 0.0)
    volume = np.where(cont, (Qc / Qb - 1.0) * rb if Qb > 0 else 0.0, 0.0)
    mix = np.where(cont, (qc - qb * Qc / Qb) * pb if Qb > 0 else 0.0, 0.0)
    df["price_base"], df["price_current"] = pb, pc
    df["price_effect"], df["volume_effect"], df["mix_effect"] = price, volume, mix
    df["new_effect"] = np.where(new, change, 0.0)
    df["lost_effect"] = np.where(lost, change, 0.0)
    df["other_effect"] = np.where(status == "inactive", change, 0.0)
    df["total_change"] = change
    df.insert(0, "status", pd.Series(status, index=df.index, dtype="str"))
    df = df.reset_index()
    df.attrs["base"] = w_b
    df.attrs["current"] = w_c
    return df[[by, "status", "quantity_base", "quantity_current", "revenue_base", "revenue_current",
               "price_base", "price_current", *_PVM_EFFECTS, "total_change"]]


def pvm_summary(pvm: pd.DataFrame) -> pd.DataFrame:
    """The revenue bridge of a :func:`price_volume_mix` result, for a waterfall chart.

    Returns
    -------
    DataFrame
        Columns: ``step`` (``revenue_base``, ``price``, ``volume``, ``mix``,
        ``new``, ``lost``, ``other``, ``revenue_current``), ``value``,
        ``measure`` (``absolute`` for the two revenue totals, ``relative`` for
        the effects, as plotly's waterfall expects). The effects sum to
        ``revenue_current - revenue_base``.
    """
    check_columns(pvm, ["revenue_base", "revenue_current", *_PVM_EFFECTS], name="pvm",
                  hint="Pass the frame returned by price_volume_mix.")
    steps = [("revenue_base", pvm["revenue_base"].sum(), "absolute")]
    steps += [(e.removesuffix("_effect"), pvm[e].sum(), "relative") for e in _PVM_EFFECTS]
    steps.append(("revenue_current", pvm["revenue_current"].sum(), "absolute"))
    out = pd.DataFrame(steps, columns=["step", "value", "measure"])
    out["step"] = out["step"].astype("str")
    out["measure"] = out["measure"].astype("str")
    return out


# --------------------------------------------------------------------------- customers


def new_vs_returning(
    tx: pd.DataFrame,
    *,
    freq: str = "MS",
    value: str = "revenue",
    customer_col: str = "customer_id",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Revenue and customers per period from new versus returning customers.

    A customer is ``new`` in the period of their first order *in the data*
    and ``returning`` afterwards; customers who bought before the data starts
    therefore count as new in the first period(s). Lines without a customer
    (guest checkouts) are a third type, ``guest``, so that the types still add
    up to the period's revenue.

    Returns
    -------
    DataFrame
        Columns: ``ds``, ``customer_type`` ("new", "returning", and "guest"
        when some lines have no customer), ``customers`` (distinct; 0 for
        guests), ``<value>``, ``share`` (of the period's value). Every type
        appears in every period (0 when absent).
    """
    f = _freq(freq)
    work = _prepare(tx, date_col=date_col, value=value, extra=[customer_col])
    work["ds"] = _period_start(work[date_col], f)
    guest = work[customer_col].isna().to_numpy()
    first = work.groupby(customer_col, dropna=True)["ds"].transform("min")
    work["customer_type"] = np.where(guest, "guest", np.where(work["ds"] == first, "new", "returning"))
    g = work.groupby(["ds", "customer_type"])
    out = pd.concat([g[customer_col].nunique().rename("customers").astype("float64"),
                     g[value].sum()], axis=1)
    grid = _period_grid(work["ds"].min(), work["ds"].max(), f)
    types = ["new", "returning", "guest"] if guest.any() else ["new", "returning"]
    full = pd.MultiIndex.from_product([grid, types], names=["ds", "customer_type"])
    out = out.reindex(full, fill_value=0.0).reset_index()
    out["customers"] = out["customers"].astype("int64")
    out["customer_type"] = out["customer_type"].astype("str")
    out["ds"] = out["ds"].astype("datetime64[ns]")
    out["share"] = _ratio(out[value], out.groupby("ds")[value].transform("sum"))
    return out


def cohort_matrix(
    tx: pd.DataFrame,
    *,
    freq: str = "MS",
    metric: str = "customers",
    value: str = "revenue",
    customer_col: str = "customer_id",
    date_col: str = "order_date",
) -> pd.DataFrame:
    """Retention of first-order cohorts, as a tidy frame (pivot it for a heatmap).

    A cohort is the customers whose first order falls in one period.
    ``metric="customers"``: active customers of the cohort in each later
    period, and ``retention`` = active / cohort size (period 0 is 1.0).
    ``metric="revenue"``: the cohort's ``value`` in each period, and
    ``retention`` = that / its period-0 value (can exceed 1; NaN when the
    period-0 value is not positive).

    Returns
    -------
    DataFrame
        Columns: ``cohort`` (period start of the first order),
        ``period_number`` (0, 1, ... periods since the first order), ``ds``,
        ``cohort_size`` (customers), ``value`` (active customers or revenue),
        ``retention``. Every cohort has a row for every period up to the end
        of the data.
    """
    check_choice(metric, ("customers", "revenue"), name="metric")
    f = _freq(freq)
    check_frame(tx, name="tx")
    check_columns(tx, [customer_col], name="tx")
    tx = drop_guest_lines(tx, customer_col=customer_col, value_col=value, caller="cohort_matrix", stacklevel=2)
    work = _prepare(tx, date_col=date_col, value=value if metric == "revenue" else None, extra=[customer_col])
    work["ds"] = _period_start(work[date_col], f)
    work["cohort"] = work.groupby(customer_col, dropna=False)["ds"].transform("min")
    grid = _period_grid(work["ds"].min(), work["ds"].max(), f)
    size = work.groupby("cohort")[customer_col].nunique().rename("cohort_size")
    g = work.groupby(["cohort", "ds"])
    vals = g[customer_col].nunique().astype("float64") if metric == "customers" else g[value].sum()
    return _cohort_table(vals, size, grid, metric)


def _cohort_table(vals: pd.Series, size: pd.Series, grid: pd.DatetimeIndex, metric: str) -> pd.DataFrame:
    """The tidy cohort frame from per-(cohort, ds) values and cohort sizes, every period filled.

    Shared with the DuckDB path (:func:`salesplan.engine.cohort_matrix`), so
    both give the same frame from their own aggregates.
    """
    pos = pd.Series(np.arange(len(grid)), index=grid)
    rows = [(c, d) for c in size.index for d in grid[pos[c]:]]
    full = pd.MultiIndex.from_tuples(rows, names=["cohort", "ds"])
    out = vals.reindex(full, fill_value=0.0).rename("value").reset_index()
    out["period_number"] = (pos.reindex(out["ds"]).to_numpy() - pos.reindex(out["cohort"]).to_numpy()).astype("int64")
    out = out.merge(size.rename("cohort_size").reset_index(), on="cohort", how="left")
    if metric == "customers":
        out["retention"] = out["value"] / out["cohort_size"]
    else:
        first_val = out["value"].where(out["period_number"] == 0).groupby(out["cohort"]).transform("max")
        out["retention"] = out["value"] / first_val.where(first_val > 0)
    out["cohort"] = out["cohort"].astype("datetime64[ns]")
    out["ds"] = out["ds"].astype("datetime64[ns]")
    out["cohort_size"] = out["cohort_size"].astype("int64")
    return out[["cohort", "period_number", "ds", "cohort_size", "value", "retention"]]


# --------------------------------------------------------------------------- market


def _market_frame(market: Any, by: list[str], *, size_col: str, period_col: str) -> pd.DataFrame:
    check_frame(market, name="market")
    check_columns(market, [period_col, *by, size_col], name="market",
                  hint="The market table needs a period, the dimension column(s) and the market size.")
    mk = market[[period_col, *by, size_col]].copy()
    mk[period_col] = _dates(market, period_col, name="market")
    mk[size_col] = _numeric(market, size_col, name="market")
    return mk


def market_share(
    tx: pd.DataFrame,
    market: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = "region",
    freq: str = "YS",
    value: str = "revenue",
    date_col: str = "order_date",
    period_col: str = "period",
    size_col: str = "market_size",
) -> pd.DataFrame:
    """Our share of the market and the untapped potential, per period and unit.

    The market table (``market`` in :mod:`salesplan.schema`) gives the
    market size per ``period`` and region/category. Market sizes are read as
    flows (the market's sales in that period), so monthly market rows add up
    to quarters or years; ``freq`` should not be finer than the market
    table's periods. Our sales are summed at ``freq`` and matched to the
    market rows; the market table defines which rows appear.

    Returns
    -------
    DataFrame
        Columns: ``ds``, the ``by`` columns, ``sales``, ``market_size``,
        ``market_share`` (sales / market size), ``potential``
        (``market_size - sales``: revenue not yet captured). A warning counts
        rows where our sales exceed the market size.
    """
    f = _freq(freq)
    by_l = _as_list(by)
    mk = _market_frame(market, by_l, size_col=size_col, period_col=period_col)
    dup = mk.duplicated([*by_l, period_col], keep=False)
    if dup.any():
        raise SalesplanDataError(
            f"market has {int(dup.sum())} rows sharing the same {period_col!r} and {by_l or 'total'} "
            f"({describe_rows(mk.index[dup])}). Give one market size per period and unit."
        )
    # market sizes are flows (sales of a period): finer market periods add up to the freq period
    mk["ds"] = _period_start(mk[period_col], f)
    mk = mk.groupby(["ds", *by_l], dropna=False, sort=True)[size_col].sum().reset_index()
    ours = sales_over_time(tx, freq=f, by=by_l, value=value, date_col=date_col).rename(columns={value: "sales"})
    out = mk[["ds", *by_l, size_col]].merge(ours, on=["ds", *by_l], how="left")
    out["sales"] = out["sales"].fillna(0.0)
    out = out.rename(columns={size_col: "market_size"})[["ds", *by_l, "sales", "market_size"]]
    out["market_share"] = _ratio(out["sales"], out["market_size"])
    out["potential"] = out["market_size"] - out["sales"]
    over = out["potential"] < 0
    if over.any():
        warnings.warn(
            f"market_share: our sales exceed the market size in {int(over.sum())} row(s); "
            "check that the market table is in the same currency and scope.",
            SalesplanDataWarning,
            stacklevel=2,
        )
    return out.sort_values([*by_l, "ds"], kind="stable").reset_index(drop=True)
