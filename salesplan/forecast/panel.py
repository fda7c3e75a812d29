"""From long frames to the regular panel the models work on, and back.

:func:`panel_from_transactions` turns order lines into the tidy long panel
``unique_id, ds, y`` at any level (total, region, rep, region x category, ...)
with missing periods filled with zeros, since no sales in a period means zero
sales. :func:`to_panel` (used by :func:`salesplan.forecast.forecast`) checks
a panel and lays it out as a start-aligned, NaN-padded array.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_frame
from salesplan.errors import SalesplanDataError, SalesplanError

__all__ = ["panel_from_transactions", "season_length", "infer_freq", "to_panel", "Panel"]

_SEASON_BY_FREQ = {"MS": 12, "ME": 12, "M": 12, "QS": 4, "QE": 4, "Q": 4, "W": 52, "D": 7,
                   "B": 5, "h": 24, "H": 24}
_FREQ_HINT = "pass freq= explicitly, e.g. freq='MS' (monthly), 'W-MON' (weekly) or 'D' (daily)"


def season_length(freq: str) -> int:
    """Periods per season for a pandas frequency alias.

    >>> season_length("MS"), season_length("W-MON"), season_length("D"), season_length("YS")
    (12, 52, 7, 1)
    """
    base = str(freq).split("-")[0].lstrip("0123456789")
    return _SEASON_BY_FREQ.get(base, 1)


def _offset(freq: str) -> pd.DateOffset:
    try:
        return pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError) as exc:
        raise SalesplanError(f"freq={freq!r} is not a pandas frequency ({exc}); {_FREQ_HINT}.") from None


def infer_freq(ds: pd.Series, ids: pd.Series) -> str:
    """Infer one frequency for all series from the spacing of their dates.

    Raises a :class:`SalesplanError` that lists the spacings seen when they are
    irregular or unusual.
    """
    order = np.lexsort((ds.to_numpy(), ids.to_numpy()))
    d = ds.to_numpy()[order]
    same = ids.to_numpy()[order][1:] == ids.to_numpy()[order][:-1]
    gaps = (d[1:] - d[:-1])[same].astype("timedelta64[s]").astype(np.int64) / 86400.0
    if gaps.size == 0:
        raise SalesplanError(
            "Cannot infer the frequency: every series has a single date. " + _FREQ_HINT[0].upper() + _FREQ_HINT[1:] + "."
        )
    vals, counts = np.unique(np.round(gaps, 6), return_counts=True)
    top = vals[np.argmax(counts)]
    stamp = pd.DatetimeIndex(d)
    seen = ", ".join(f"{v:g} days ({c}x)" for v, c in sorted(zip(vals, counts), key=lambda x: -x[1])[:4])
    if 28 <= top <= 31 and np.all((gaps >= 28) & (gaps % 1 == 0) | (gaps == 0)):
        if np.all(stamp.day == 1):
            return "MS"
        if np.all(stamp.is_month_end):
            return "ME"
    elif top == 7 and np.all(gaps % 7 == 0):
        day = pd.DatetimeIndex(d[:1]).day_name()[0][:3].upper()
        return f"W-{day}"
    elif top == 1 and np.all(gaps % 1 == 0):
        return "D"
    elif 89 <= top <= 92 and np.all(stamp.day == 1) and np.all(stamp.month.isin([1, 4, 7, 10])):
        return "QS"
    raise SalesplanError(
        f"Cannot infer a regular frequency from the dates: spacings seen between consecutive dates "
        f"are {seen}. Aggregate the data to a regular calendar (panel_from_transactions does) or "
        f"{_FREQ_HINT}."
    )


@dataclass
class Panel:
    """Start-aligned, NaN-padded array form of a long panel."""

    ids: np.ndarray          # series ids, in order of first appearance
    Y: np.ndarray            # (B, T) values, NaN after the series ends
    n: np.ndarray            # (B,) observations per series
    first: np.ndarray        # (B,) position of the first date on the common grid
    grid: pd.DatetimeIndex   # common grid of dates
    freq: str
    m: int

    def future_dates(self, h: int) -> np.ndarray:
        """Forecast dates, shape (B, h)."""
        off = _offset(self.freq)
        last = self.first + self.n - 1
        need = int(last.max()) + h + 1
        grid = self.grid
        if need > len(grid):
            grid = pd.date_range(grid[0], periods=need, freq=off)
        g = grid.to_numpy()
        return g[last[:, None] + np.arange(1, h + 1)[None, :]]

    def subset(self, mask: np.ndarray) -> "Panel":
        return Panel(self.ids[mask], self.Y[mask], self.n[mask], self.first[mask], self.grid,
                     self.freq, self.m)


def _describe_ids(ids, limit: int = 5) -> str:
    ids = [str(i) for i in ids]
    text = ", ".join(repr(i) for i in ids[:limit])
    if len(ids) > limit:
        text += f" (and {len(ids) - limit} more)"
    return text


def to_panel(
    df: pd.DataFrame,
    *,
    freq: str | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    fill_gaps: Any = None,
    season_length_: int | None = None,
) -> Panel:
    """Check a long panel and lay it out as a :class:`Panel`.

    Missing periods inside a series (and missing ``y``) raise a
    :class:`SalesplanDataError` unless ``fill_gaps`` is a number (used as the
    fill value, e.g. ``0.0`` for sales counts) or ``"interpolate"`` (linear).
    """
    check_frame(df, name="df")
    check_columns(df, [id_col, time_col, target_col], name="df",
                  hint=f"Pass id_col=, time_col=, target_col= naming them (got {id_col!r}, {time_col!r}, {target_col!r}).")
    ids = df[id_col]
    if ids.isna().any():
        rows = np.flatnonzero(ids.isna().to_numpy())
        raise SalesplanDataError(f"df column {id_col!r} has {rows.size} missing series id(s) at rows {rows[:5].tolist()}. Drop or fill them.")
    try:
        ds = pd.to_datetime(df[time_col])
    except (ValueError, TypeError) as exc:
        raise SalesplanDataError(
            f"df column {time_col!r} cannot be read as dates ({exc}). Convert it with pd.to_datetime first."
        ) from None
    if ds.isna().any():
        rows = np.flatnonzero(ds.isna().to_numpy())
        raise SalesplanDataError(f"df column {time_col!r} has {rows.size} missing date(s) at rows {rows[:5].tolist()}. Drop those rows.")
    y = pd.to_numeric(df[target_col], errors="coerce").astype(float)
    bad = y.isna() & df[target_col].notna()
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        raise SalesplanDataError(
            f"df column {target_col!r} has {rows.size} non-numeric value(s) at rows {rows[:5].tolist()} "
            f"(e.g. {df[target_col].iloc[rows[0]]!r}). Clean them or drop those rows."
        )
    if np.isinf(y.to_numpy()).any():
        rows = np.flatnonzero(np.isinf(y.to_numpy()))
        raise SalesplanDataError(f"df column {target_col!r} has {rows.size} infinite value(s) at rows {rows[:5].tolist()}.")
    dup = pd.DataFrame({"id": ids.to_numpy(), "ds": ds.to_numpy()}).duplicated(keep=False).to_numpy()
    if dup.any():
        d = pd.DataFrame({"id": ids.to_numpy()[dup], "ds": ds.to_numpy()[dup]}).drop_duplicates()
        per = d.groupby("id", sort=False)["ds"].apply(lambda s: ", ".join(str(x.date()) for x in s[:3]))
        detail = "; ".join(f"series {k!r}: {v}" for k, v in list(per.items())[:5])
        raise SalesplanDataError(
            f"df has {int(dup.sum())} rows with duplicated ({id_col}, {time_col}) pairs in "
            f"{per.size} series ({detail}). Aggregate them first, e.g. "
            f"df.groupby([{id_col!r}, {time_col!r}], as_index=False)[{target_col!r}].sum()."
        )
    if freq is None:
        freq = infer_freq(ds, ids)
    off = _offset(freq)
    freq = off.freqstr
    m = season_length_ if season_length_ is not None else season_length(freq)
    start = off.rollback(ds.min()) if not off.is_on_offset(ds.min()) else ds.min()
    grid = pd.date_range(start, ds.max(), freq=off)
    pos = grid.get_indexer(pd.DatetimeIndex(ds))
    if (pos < 0).any():
        rows = np.flatnonzero(pos < 0)
        raise SalesplanDataError(
            f"df column {time_col!r} has {rows.size} date(s) that are not on the {freq!r} calendar "
            f"(rows {rows[:5].tolist()}, e.g. {ds.iloc[rows[0]].date()}). Dates must be period starts "
            f"such as {grid[0].date()}; pass the right freq= or aggregate with panel_from_transactions."
        )
    codes, uniq = pd.factorize(ids, sort=False)
    B = uniq.size
    first = np.full(B, np.iinfo(np.int64).max)
    np.minimum.at(first, codes, pos)
    last = np.full(B, -1)
    np.maximum.at(last, codes, pos)
    n = last - first + 1
    T = int(n.max())
    Y = np.full((B, T), np.nan)
    Y[codes, pos - first[codes]] = y.to_numpy()
    inside = np.arange(T)[None, :] < n[:, None]
    holes = inside & np.isnan(Y)
    if holes.any():
        which = np.flatnonzero(holes.any(axis=1))
        if fill_gaps is None:
            first_gap = [str(grid[first[i] + np.flatnonzero(holes[i])[0]].date()) for i in which[:5]]
            detail = "; ".join(f"{uniq[i]!r} from {g}" for i, g in zip(which[:5], first_gap))
            raise SalesplanDataError(
                f"{which.size} series have missing periods or missing {target_col!r} values "
                f"({int(holes.sum())} in all; {detail}). Pass fill_gaps=0.0 when no row means no "
                f"sales (counts), fill_gaps='interpolate' for levels, or build the panel with "
                f"panel_from_transactions, which fills zeros."
            )
        if isinstance(fill_gaps, str) and fill_gaps == "interpolate":
            for i in which:
                row = pd.Series(Y[i, : n[i]])
                Y[i, : n[i]] = row.interpolate(limit_direction="both").to_numpy()
        elif isinstance(fill_gaps, (int, float, np.integer, np.floating)) and not isinstance(fill_gaps, bool):
            Y[holes] = float(fill_gaps)
        else:
            raise SalesplanError(f"fill_gaps must be None (raise), a number or 'interpolate', got {fill_gaps!r}.")
    return Panel(np.asarray(uniq, dtype=object), Y, n.astype(int), first.astype(int), grid, freq, int(m))


def panel_from_transactions(
    transactions: pd.DataFrame,
    *,
    freq: str = "MS",
    by: str | list[str] | None = None,
    value: str = "revenue",
    date_col: str = "order_date",
    fill_value: float | None = 0.0,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Sum transactions into a regular long panel at any level.

    Parameters
    ----------
    transactions : DataFrame
        Order lines with ``date_col`` and ``value`` (e.g. from
        ``salesplan.io.load_transactions``); not modified.
    freq : str
        Period of the panel: ``"MS"`` (months), ``"W-MON"`` (weeks starting
        Monday), ``"D"`` (days), or any pandas frequency.
    by : str or list of str, optional
        Columns defining the series, e.g. ``"region"`` or
        ``["region", "category"]``. ``None`` gives one series, ``"total"``.
    value : str
        Column to sum (``"revenue"``, ``"quantity"``, ...); ``"count"`` counts rows.
    fill_value : float or None
        Value for periods without any row, between the first period of the
        data and the last (zero: no order means no sales). ``None`` leaves them
        out.
    start, end : date-like, optional
        Extend (or cut) the calendar, e.g. to the start of the plan year.

    Returns
    -------
    DataFrame
        Columns ``unique_id`` (the ``by`` values joined with ``"/"``, or
        ``"total"``), ``ds`` (period start), ``y`` (sum), then the ``by``
        columns. Sorted by ``unique_id`` and ``ds``.

    Examples
    --------
    >>> tx = pd.DataFrame({"order_date": pd.to_datetime(["2025-01-05", "2025-03-02", "2025-03-20"]),
    ...                    "region": ["N", "N", "S"], "revenue": [10.0, 5.0, 7.0]})
    >>> panel_from_transactions(tx, by="region")
      unique_id         ds     y region
    0         N 2025-01-01  10.0      N
    1         N 2025-02-01   0.0      N
    2         N 2025-03-01   5.0      N
    3         S 2025-01-01   0.0      S
    4         S 2025-02-01   0.0      S
    5         S 2025-03-01   7.0      S
    """
    check_frame(transactions, name="transactions")
    by_cols = [] if by is None else ([by] if isinstance(by, str) else list(by))
    need = [date_col] + by_cols + ([] if value == "count" else [value])
    check_columns(transactions, need, name="transactions")
    off = _offset(freq)
    dates = pd.to_datetime(transactions[date_col])
    if dates.isna().any():
        rows = np.flatnonzero(dates.isna().to_numpy())
        raise SalesplanDataError(
            f"transactions column {date_col!r} has {rows.size} missing date(s) at rows {rows[:5].tolist()}. Drop them first."
        )
    # period start of each date on the freq calendar
    periods = dates.dt.to_period(_period_alias(off))
    ds = periods.dt.start_time.dt.normalize()
    frame = pd.DataFrame({"ds": ds.to_numpy()})
    for c in by_cols:
        frame[c] = transactions[c].astype("str").fillna("(missing)").to_numpy()
    if value == "count":
        frame["y"] = 1.0
    else:
        frame["y"] = pd.to_numeric(transactions[value], errors="coerce").fillna(0.0).to_numpy()
    g = frame.groupby(["ds"] + by_cols, sort=True, as_index=False)["y"].sum()
    if by_cols:
        key = g[by_cols].astype(str).agg("/".join, axis=1)
    else:
        key = pd.Series("total", index=g.index)
    g.insert(0, "unique_id", key.to_numpy())
    if fill_value is not None:
        lo = g["ds"].min() if start is None else pd.Timestamp(start)
        hi = g["ds"].max() if end is None else pd.Timestamp(end)
        lo = pd.Period(lo, freq=_period_alias(off)).start_time
        cal = pd.date_range(lo, hi, freq=off if off.is_on_offset(lo) else pd.tseries.frequencies.to_offset(_period_alias(off)))
        cal = pd.DatetimeIndex(pd.PeriodIndex(cal, freq=_period_alias(off)).start_time.normalize().unique())
        keys = g[["unique_id"] + by_cols].drop_duplicates()
        full = keys.merge(pd.DataFrame({"ds": cal}), how="cross")
        g = full.merge(g, on=["unique_id", "ds"] + by_cols, how="left")
        g["y"] = g["y"].fillna(float(fill_value))
    else:
        if start is not None:
            g = g[g["ds"] >= pd.Timestamp(start)]
        if end is not None:
            g = g[g["ds"] <= pd.Timestamp(end)]
    g = g.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    return g[["unique_id", "ds", "y"] + by_cols]


def _period_alias(off: pd.DateOffset) -> str:
    """The Period frequency matching an offset (MS -> M, W-MON -> W-SUN, ...)."""
    name = off.freqstr
    base = name.split("-")[0]
    if base in ("MS", "ME", "M"):
        return "M"
    if base in ("QS", "QE", "Q"):
        return "Q"
    if base in ("YS", "YE", "Y"):
        return "Y"
    if base == "W":
        # a week starting on day X is the period ending the day before
        days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
        anchor = name.split("-")[1] if "-" in name else "SUN"
        return f"W-{days[(days.index(anchor) - 1) % 7]}"
    return name
