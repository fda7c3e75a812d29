"""What the data holds at a glance: table sizes, date ranges and headline KPIs.

Pure functions behind the workbench's landing page (:class:`salesplan.ui.OverviewApp`),
usable on their own in a notebook::

    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "order_date": pd.to_datetime(["2023-03-02", "2025-02-10", "2025-03-01"]),
    ...     "order_id": ["o1", "o2", "o3"],
    ...     "customer_id": ["a", "b", "a"],
    ...     "revenue": [100.0, 150.0, -30.0],
    ... })
    >>> kpis(tx).set_index("kpi")["value"].round(3).to_dict()
    {'revenue_12m': 120.0, 'yoy_growth': 0.2, 'customers': 2.0, 'average_order_value': 150.0, 'returns_share': 0.2}
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_frame, check_positive_int, describe_rows
from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.schema import TABLES

__all__ = [
    "summarize_tables",
    "filter_transactions",
    "kpis",
    "monthly_revenue",
    "KPI_LABELS",
]

#: KPI name -> (label shown to people, unit). Units: "money", "ratio", "count".
KPI_LABELS: dict[str, tuple[str, str]] = {
    "revenue_12m": ("Revenue, last 12 months", "money"),
    "yoy_growth": ("Growth vs previous 12 months", "ratio"),
    "customers": ("Customers buying, last 12 months", "count"),
    "average_order_value": ("Average order value", "money"),
    "returns_share": ("Returns share of sales", "ratio"),
}


def _date_columns(name: str, df: pd.DataFrame) -> list[str]:
    """Candidate date columns of a table: the schema's, else datetime-typed ones."""
    if name in TABLES:
        return [c.name for c in TABLES[name].columns if c.kind == "date" and c.name in df.columns]
    return [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]


def _as_dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return pd.to_datetime(values, errors="coerce")


def summarize_tables(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per table: its size and the span of its main date column.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Tables by name, e.g. what :func:`salesplan.datasets.load_demo` returns.
        Known tables (those of :data:`salesplan.schema.TABLES`) come first in
        the schema's order, the others after them in the given order.

    Returns
    -------
    DataFrame
        ``table`` (str), ``rows`` (int), ``columns`` (int), ``date_column``
        (the first date column of the schema present in the table, or the first
        datetime column of an unknown table; missing when there is none),
        ``first_date`` and ``last_date`` (its earliest and latest dates).

    Examples
    --------
    >>> t = {"reps": pd.DataFrame({"rep_id": ["r1", "r2"]})}
    >>> summarize_tables(t)[["table", "rows", "columns"]]
      table  rows  columns
    0  reps     2        1
    """
    if not isinstance(tables, Mapping):
        raise SalesplanError(
            f"tables must be a mapping of table name to DataFrame, got {type(tables).__name__}. "
            "Pass e.g. salesplan.datasets.load_demo() or {'transactions': df}."
        )
    not_frames = [str(k) for k, v in tables.items() if not isinstance(v, pd.DataFrame)]
    if not_frames:
        raise SalesplanError(
            f"tables must hold DataFrames; {len(not_frames)} entr{'y' if len(not_frames) == 1 else 'ies'} "
            f"do not: {not_frames[:5]}. Load files with salesplan.io first."
        )
    order = [n for n in TABLES if n in tables] + [n for n in tables if n not in TABLES]
    rows = []
    for name in order:
        df = tables[name]
        date_col, first, last = None, pd.NaT, pd.NaT
        for col in _date_columns(name, df):
            dates = _as_dates(df[col]).dropna()
            if len(dates):
                date_col, first, last = col, dates.min(), dates.max()
                break
        rows.append(
            {
                "table": str(name),
                "rows": len(df),
                "columns": df.shape[1],
                "date_column": date_col,
                "first_date": first,
                "last_date": last,
            }
        )
    out = pd.DataFrame(rows, columns=["table", "rows", "columns", "date_column", "first_date", "last_date"])
    out["rows"] = out["rows"].astype("int64")
    out["columns"] = out["columns"].astype("int64")
    out["date_column"] = out["date_column"].astype("str")
    out.loc[out["date_column"] == "None", "date_column"] = pd.NA
    for col in ("first_date", "last_date"):
        out[col] = pd.to_datetime(out[col])
    return out


def filter_transactions(
    transactions: pd.DataFrame, *, region: str | None = None, channel: str | None = None
) -> pd.DataFrame:
    """The order lines of one region and/or channel (``None`` keeps all).

    Parameters
    ----------
    transactions : DataFrame
        Order lines with the columns of :data:`salesplan.schema.TABLES` ``["transactions"]``.
    region, channel : str, optional
        Keep only lines whose ``region`` / ``channel`` equals this value.

    Returns
    -------
    DataFrame
        The matching rows (a copy; the input is not changed), same columns.
    """
    check_frame(transactions, name="transactions", min_rows=0)
    mask = pd.Series(True, index=transactions.index)
    for col, value in (("region", region), ("channel", channel)):
        if value is None:
            continue
        check_columns(
            transactions, [col], name="transactions",
            hint=f"Filtering by {col} needs a {col!r} column; pass {col}=None to keep all rows.",
        )
        mask &= transactions[col].eq(value).fillna(False).astype(bool)
    return transactions.loc[mask].copy()


def _order_dates(transactions: pd.DataFrame) -> pd.Series:
    dates = transactions["order_date"]
    if pd.api.types.is_datetime64_any_dtype(dates):
        return dates
    parsed = pd.to_datetime(dates, errors="coerce")
    bad = parsed.isna() & dates.notna()
    if bad.any():
        first = dates[bad].iloc[0]
        raise SalesplanDataError(
            f"transactions column 'order_date' has {int(bad.sum())} value(s) that are not dates "
            f"({describe_rows(dates.index[bad])}; first: {first!r}). "
            "Fix or drop those rows, or load the file with salesplan.io.load_transactions."
        )
    return parsed


def kpis(
    transactions: pd.DataFrame, *, as_of: object = None, months: int = 12
) -> pd.DataFrame:
    """Headline KPIs over the ``months`` up to ``as_of``, as a tidy frame.

    The window is ``(as_of - months, as_of]`` (whole days); growth compares it
    with the ``months`` before. Revenue is net of returns (negative lines).

    Parameters
    ----------
    transactions : DataFrame
        Order lines: ``order_date``, ``customer_id``, ``revenue`` required;
        ``order_id`` used when present (else one order per customer and day).
    as_of : date-like, optional
        Last day of the window; defaults to the latest ``order_date``.
    months : int, default 12
        Length of the window.

    Returns
    -------
    DataFrame
        One row per KPI, in this order: ``revenue_12m`` (net revenue in the
        window), ``yoy_growth`` (its change vs the previous window, as a ratio;
        missing when the data does not cover the previous window or it had no
        revenue), ``customers`` (distinct customers with an order line in the
        window; lines without a customer are counted in the note),
        ``average_order_value`` (sales of positive lines divided by the
        number of orders having them) and ``returns_share`` (returns, i.e.
        minus the negative lines, divided by the sales of positive lines).
        Columns: ``kpi``, ``label``, ``unit`` ("money", "ratio" or "count"),
        ``value`` (float), ``window_start``, ``window_end`` (first and last day
        of the window) and ``note`` (why a value is missing, else "").
    """
    check_frame(transactions, name="transactions")
    check_columns(transactions, ["order_date", "customer_id", "revenue"], name="transactions")
    months = check_positive_int(months, name="months")
    dates = _order_dates(transactions).dt.normalize()
    revenue = pd.to_numeric(transactions["revenue"], errors="coerce")
    if revenue.isna().all():
        raise SalesplanDataError(
            f"transactions column 'revenue' has no numbers in its {len(revenue)} rows "
            f"(first value: {transactions['revenue'].iloc[0]!r}). "
            "Load the file with salesplan.io.load_transactions, which parses amounts."
        )
    if dates.isna().all():
        raise SalesplanDataError(
            f"transactions column 'order_date' is empty in all {len(dates)} rows; "
            "the KPIs need order dates."
        )
    end = dates.max() if as_of is None else pd.Timestamp(as_of).normalize()
    start = end - pd.DateOffset(months=months)  # exclusive
    prev_start = start - pd.DateOffset(months=months)
    in_window = (dates > start) & (dates <= end)
    in_prev = (dates > prev_start) & (dates <= start)

    current = revenue[in_window]
    net = float(current.sum())
    sales = float(current[current > 0].sum())
    returns = float(-current[current < 0].sum())

    notes = dict.fromkeys(KPI_LABELS, "")
    if dates.min() > prev_start + pd.Timedelta(days=1):
        growth = np.nan
        notes["yoy_growth"] = (
            f"the data starts {dates.min():%Y-%m-%d}, after the previous window's first day "
            f"{prev_start + pd.Timedelta(days=1):%Y-%m-%d}"
        )
    else:
        previous = float(revenue[in_prev].sum())
        if previous > 0:
            growth = net / previous - 1.0
        else:
            growth = np.nan
            notes["yoy_growth"] = f"the previous {months} months had no positive revenue ({previous:,.2f})"

    window = transactions.loc[in_window]
    positive = window.loc[current > 0]
    if "order_id" in window.columns and window["order_id"].notna().any():
        orders = positive["order_id"].dropna().nunique()
    else:
        # one order per customer and day; a line without a customer is an order of its own
        known = positive[positive["customer_id"].notna()]
        orders = (len(known[["customer_id"]].assign(day=dates[known.index]).drop_duplicates())
                  + int(positive["customer_id"].isna().sum()))
    aov = sales / orders if orders else np.nan
    if not orders:
        notes["average_order_value"] = "no orders with positive revenue in the window"
    share = returns / sales if sales > 0 else np.nan
    if not sales > 0:
        notes["returns_share"] = "no sales in the window"

    guests = window["customer_id"].isna()
    if guests.any():
        notes["customers"] = (f"besides {int(guests.sum()):,} lines without a customer "
                              f"({float(current[guests.to_numpy()].sum()):,.0f} revenue)")
    values = {
        "revenue_12m": net,
        "yoy_growth": growth,
        "customers": float(window["customer_id"].dropna().nunique()),
        "average_order_value": aov,
        "returns_share": share,
    }
    out = pd.DataFrame(
        {
            "kpi": list(KPI_LABELS),
            "label": [KPI_LABELS[k][0] for k in KPI_LABELS],
            "unit": [KPI_LABELS[k][1] for k in KPI_LABELS],
            "value": [float(values[k]) for k in KPI_LABELS],
            "window_start": start + pd.Timedelta(days=1),
            "window_end": end,
            "note": [notes[k] for k in KPI_LABELS],
        }
    )
    return out


def monthly_revenue(transactions: pd.DataFrame) -> pd.DataFrame:
    """Net revenue per calendar month, every month from the first to the last.

    Parameters
    ----------
    transactions : DataFrame
        Order lines with ``order_date`` and ``revenue``.

    Returns
    -------
    DataFrame
        ``month`` (month-start timestamp; months without lines are present
        with 0) and ``revenue`` (float). Empty input gives an empty frame.
    """
    check_frame(transactions, name="transactions", min_rows=0)
    check_columns(transactions, ["order_date", "revenue"], name="transactions")
    if transactions.empty:
        return pd.DataFrame({"month": pd.Series(dtype="datetime64[ns]"), "revenue": pd.Series(dtype="float64")})
    dates = _order_dates(transactions)
    frame = pd.DataFrame(
        {
            "month": dates.dt.to_period("M").dt.to_timestamp(),
            "revenue": pd.to_numeric(transactions["revenue"], errors="coerce"),
        }
    ).dropna(subset=["month"])
    totals = frame.groupby("month")["revenue"].sum()
    months = pd.date_range(totals.index.min(), totals.index.max(), freq="MS")
    totals = totals.reindex(months, fill_value=0.0)
    return pd.DataFrame({"month": months, "revenue": totals.to_numpy(dtype="float64")})
