"""Validation helpers shared by every public function.

Public functions validate their inputs with these; private helpers trust them.
Messages follow one pattern: what is wrong, where, what was seen, how to fix it.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.format import count, money

__all__ = [
    "describe_rows",
    "closest_matches",
    "check_frame",
    "check_columns",
    "check_choice",
    "check_levels",
    "check_positive_int",
    "check_probability",
    "check_dates",
    "check_numeric",
    "guest_mask",
    "drop_guest_lines",
]


def describe_rows(labels: Iterable[Any], *, limit: int = 5, offset: int = 0) -> str:
    """Say which rows: ``"rows 3, 7, 9 (and 12 more)"``.

    ``labels`` are row labels (positions or index values); ``offset`` is added
    to integer labels so that messages can speak of file line numbers.

    >>> describe_rows([0, 4, 5], offset=2)
    'rows 2, 6, 7'
    >>> describe_rows(range(10), limit=3)
    'rows 0, 1, 2 (and 7 more)'
    """
    labels = list(labels)
    shown = [
        str(int(x) + offset) if isinstance(x, (int, np.integer)) else str(x)
        for x in labels[:limit]
    ]
    word = "row" if len(labels) == 1 else "rows"
    text = f"{word} {', '.join(shown)}"
    if len(labels) > limit:
        text += f" (and {len(labels) - limit} more)"
    return text


def closest_matches(name: str, candidates: Iterable[str], *, n: int = 3) -> list[str]:
    """Candidates that look like ``name``, best first (case-insensitive)."""
    candidates = [str(c) for c in candidates]
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def check_frame(df: Any, *, name: str = "df", min_rows: int = 1) -> pd.DataFrame:
    """Check that ``df`` is a DataFrame with at least ``min_rows`` rows."""
    if not isinstance(df, pd.DataFrame):
        raise SalesplanError(
            f"{name} must be a pandas DataFrame, got {type(df).__name__}. "
            "Load files with salesplan.io (e.g. load_transactions) first."
        )
    if len(df) < min_rows:
        raise SalesplanDataError(
            f"{name} has {len(df)} row(s) (shape={df.shape}) while a minimum of {min_rows} "
            "is required. Check the filters or the date range that produced it."
        )
    return df


def check_columns(
    df: pd.DataFrame, required: Sequence[str], *, name: str = "df", hint: str = ""
) -> None:
    """Raise a :class:`SalesplanDataError` naming every missing column.

    The message lists the columns that were found and, per missing column,
    the closest matches, so that the fix (a rename or a ``columns=`` mapping)
    is obvious.
    """
    missing = [c for c in required if c not in df.columns]
    if not missing:
        return
    found = [str(c) for c in df.columns]
    parts = []
    for col in missing:
        near = closest_matches(col, found)
        parts.append(f"{col!r}" + (f" (closest: {', '.join(map(repr, near))})" if near else ""))
    raise SalesplanDataError(
        f"{name} is missing required column(s) {', '.join(parts)}. "
        f"Columns found: {found}. "
        + (hint or "Rename the columns or pass a mapping, e.g. columns={'Your Header': '"
           + missing[0] + "'}.")
    )


def check_choice(value: Any, options: Sequence[Any], *, name: str) -> Any:
    """Check that ``value`` is one of ``options``."""
    if value not in options:
        near = closest_matches(str(value), [str(o) for o in options], n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise SalesplanError(
            f"{name} must be one of {list(options)}, got {value!r}.{hint}"
        )
    return value


def check_levels(level: Any) -> list[int]:
    """Check prediction-interval coverage levels such as ``[80, 95]``."""
    if level is None:
        return []
    if isinstance(level, (int, float, np.integer, np.floating)):
        level = [level]
    out = []
    for lv in level:
        if not isinstance(lv, (int, float, np.integer, np.floating)) or not 0 < lv < 100:
            raise SalesplanError(
                f"level must hold coverage percentages strictly between 0 and 100, got {lv!r} "
                f"in {list(level)!r}. Use e.g. level=[80, 95]."
            )
        out.append(int(lv) if float(lv).is_integer() else float(lv))
    return sorted(set(out))


def check_positive_int(value: Any, *, name: str, allow_zero: bool = False) -> int:
    """Check that ``value`` is a positive (or non-negative) integer."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    low = 0 if allow_zero else 1
    if not ok or value < low:
        raise SalesplanError(
            f"{name} must be an integer >= {low}, got {value!r}."
        )
    return int(value)


def check_probability(value: Any, *, name: str) -> float:
    """Check that ``value`` is a probability in [0, 1]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not 0.0 <= v <= 1.0:
        raise SalesplanError(f"{name} must be a probability in [0, 1], got {value!r}.")
    return v


def check_dates(values: pd.Series, *, name: str) -> pd.Series:
    """``values`` as naive datetimes; values that are not dates raise, naming rows.

    Missing values stay ``NaT``; a time zone is dropped (local time kept).
    ``name`` says where the values are in the message, e.g. ``"tx['order_date']"``.
    """
    if not pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, errors="coerce")
        bad = parsed.isna() & values.notna()
        if bad.any():
            raise SalesplanDataError(
                f"{name} has {int(bad.sum())} value(s) that are not dates, at "
                f"{describe_rows(values.index[bad])}: {values[bad].head(3).tolist()!r}. "
                "Load the file with salesplan.io.load_transactions or fix those cells."
            )
        values = parsed
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    return values


def check_numeric(
    values: pd.Series,
    *,
    name: str,
    hint: str = "Load the file with salesplan.io.load_transactions.",
) -> pd.Series:
    """Check that ``values`` has a numeric (not boolean) dtype; ``name`` as in :func:`check_dates`."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise SalesplanDataError(
            f"{name} must be numeric, got dtype {values.dtype} (first values "
            f"{values.head(3).tolist()!r}). {hint}"
        )
    return values


# --------------------------------------------------------------------------- guest lines
# Order lines without a customer (guest checkouts): revenue and market analyses count
# them; RFM, clusters, lifetime value and cohorts group by customer and leave them out
# with one counted warning per call.


def guest_mask(customers: pd.Series) -> np.ndarray:
    """True where the customer is missing: NaN/None/NA or an empty or blank string."""
    if isinstance(customers.dtype, pd.CategoricalDtype):
        codes = customers.cat.codes.to_numpy()
        uniques = customers.cat.categories
    elif pd.api.types.is_numeric_dtype(customers) or pd.api.types.is_datetime64_any_dtype(customers):
        return np.array(customers.isna().to_numpy(dtype=bool))
    else:
        # Blank checks on the distinct values only: customer keys repeat a lot.
        codes, uniques = pd.factorize(customers)
    blank = np.fromiter(
        (isinstance(u, str) and not u.strip() for u in uniques), dtype=bool, count=len(uniques)
    )
    return (codes < 0) | np.append(blank, False)[codes]


def drop_guest_lines(
    tx: pd.DataFrame,
    *,
    customer_col: str,
    value_col: str | None,
    caller: str,
    stacklevel: int,
) -> pd.DataFrame:
    """``tx`` without its lines that lack a customer, warning once with their count and revenue.

    Returns ``tx`` itself when every line has a customer (no copy), else a new
    frame; the caller's frame is never changed. ``value_col=None`` falls back
    to a ``revenue`` column when there is one, for the amount in the warning.
    ``stacklevel`` counts from this function, so the warning points at the
    user's call.
    """
    mask = guest_mask(tx[customer_col])
    n = int(mask.sum())
    if not n:
        return tx
    col = value_col if value_col is not None else ("revenue" if "revenue" in tx.columns else None)
    amount = ""
    if col is not None and col in tx.columns and pd.api.types.is_numeric_dtype(tx[col]):
        total = float(np.nansum(tx[col].to_numpy(dtype=float, na_value=np.nan)[mask]))
        amount = f" ({money(total)} {col})"
    if n == len(tx):
        raise SalesplanDataError(
            f"{caller}: none of the {count(n)} lines has a customer in {customer_col!r}, so there is "
            "no customer to analyse. Check which column holds the customer ID (e.g. "
            "load_transactions(path, columns={'Customer Name': 'customer_id'}))."
        )
    lines = "line" if n == 1 else "lines"
    warnings.warn(
        f"{caller}: left out {count(n)} {lines}{amount} without a customer "
        f"({count(n)} of {count(len(tx))} lines, {n / len(tx):.1%}; guest checkouts or a blank "
        f"{customer_col!r}). Customer analyses need a customer; revenue totals still count them.",
        SalesplanDataWarning,
        stacklevel=stacklevel + 1,
    )
    return tx.loc[~mask]
