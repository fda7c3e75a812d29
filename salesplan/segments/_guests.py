"""Order lines without a customer (guest checkouts) in customer-level analyses.

Revenue and market analyses count guest lines; RFM, clusters and lifetime
value group by customer and cannot. They leave the lines out with one
counted :class:`~salesplan.errors.SalesplanDataWarning` per call, so a page
can say how much of the business the customer view does not cover.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from salesplan.errors import SalesplanDataError, SalesplanDataWarning
from salesplan.format import count, money

__all__ = ["guest_mask", "drop_guest_lines"]


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
