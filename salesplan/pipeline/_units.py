"""Units (rep, team, region, segment, product...) and periods as integer codes per deal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesplan._validation import check_choice
from salesplan.errors import SalesplanDataError
from salesplan.pipeline._deals import PreparedDeals

PERIODS = {"M": "M", "month": "M", "Q": "Q", "quarter": "Q", "Y": "Y", "year": "Y", "W": "W", "week": "W"}


def as_list(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


def unit_columns(
    d: PreparedDeals,
    by: list[str],
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The ``by`` columns per deal: from the opportunities, else the reps (by rep_id), else the customers.

    ``customer_region`` and ``customer_<col>`` read ``<col>`` of the customers table.
    """
    opps = d.opportunities
    out = {}
    for col in by:
        if col in opps.columns:
            out[col] = opps[col].to_numpy()
            continue
        if reps is not None and col in reps.columns and col != "rep_id" and "rep_id" in opps.columns:
            table = reps.drop_duplicates("rep_id").set_index("rep_id")[col]
            out[col] = opps["rep_id"].map(table).to_numpy()
            continue
        src = col[len("customer_"):] if col.startswith("customer_") else col
        if (customers is not None and src in customers.columns and src != "customer_id"
                and "customer_id" in opps.columns):
            table = customers.drop_duplicates("customer_id").set_index("customer_id")[src]
            out[col] = opps["customer_id"].map(table).to_numpy()
            continue
        avail = [c for c in opps.columns]
        if reps is not None:
            avail += [c for c in reps.columns if c not in avail]
        if customers is not None:
            avail += [f"customer_{c}" if c in opps.columns or (reps is not None and c in reps.columns) else c
                      for c in customers.columns if c != "customer_id"]
        raise SalesplanDataError(
            f"by={col!r} is not a column of the opportunities"
            + (", the reps" if reps is not None else "")
            + (" or the customers" if customers is not None else "")
            + f". Available: {avail}. Pass reps= (team, region) or customers= (segment, industry) to join them."
        )
    return pd.DataFrame(out)


def _factorize(values: pd.Series) -> tuple[np.ndarray, object]:
    """Codes and uniques, in sorted order where the values can be sorted (units read in order)."""
    try:
        return pd.factorize(values, sort=True, use_na_sentinel=False)
    except TypeError:
        return pd.factorize(values, use_na_sentinel=False)


def _column_codes(d: PreparedDeals, col: str, reps, customers) -> tuple[np.ndarray, np.ndarray]:
    """Codes and uniques of one unit column per deal; joins map the few distinct keys, not every deal."""
    opps = d.opportunities
    if col in opps.columns:
        c, u = _factorize(opps[col])
        return c.astype(np.int64), np.asarray(u, dtype=object)
    if reps is not None and col in reps.columns and col != "rep_id" and "rep_id" in opps.columns:
        key, table = "rep_id", reps.drop_duplicates("rep_id").set_index("rep_id")[col]
    else:
        src = col[len("customer_"):] if col.startswith("customer_") else col
        if not (customers is not None and src in customers.columns and src != "customer_id"
                and "customer_id" in opps.columns):
            unit_columns(d, [col], reps, customers)  # raises the helpful error
        key, table = "customer_id", customers.drop_duplicates("customer_id").set_index("customer_id")[src]
    kc, ku = pd.factorize(opps[key], use_na_sentinel=False)
    mapped = pd.Series(np.asarray(ku, dtype=object)).map(table)
    vc, vu = _factorize(mapped)
    return vc.astype(np.int64)[kc], np.asarray(vu, dtype=object)


def unit_codes(
    d: PreparedDeals,
    by: list[str],
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """An integer code per deal for its unit, and the frame of units (one row per code)."""
    if not by:
        return np.zeros(d.n, dtype=np.int64), pd.DataFrame(index=range(1))
    cache_key = (tuple(by), id(reps), id(customers))
    cached = d.cache.get(cache_key)
    if cached is not None and cached[0] is reps and cached[1] is customers:
        return cached[2], cached[3].copy()
    codes = np.zeros(d.n, dtype=np.int64)
    uniques = []
    for col in by:
        c, u = _column_codes(d, col, reps, customers)
        uniques.append(u)
        codes = codes * len(u) + c
    sizes = [len(u) for u in uniques]
    # compact to the combinations present
    present, inverse = np.unique(codes, return_inverse=True)
    parts = np.unravel_index(present, sizes) if len(sizes) > 1 else (present,)
    frame = pd.DataFrame({col: pd.Index(u)[p].to_numpy() for col, u, p in zip(by, uniques, parts)})
    inverse = inverse.astype(np.int64)
    d.cache[cache_key] = (reps, customers, inverse, frame)
    return inverse, frame.copy()


def period_codes(days: np.ndarray, period: str) -> np.ndarray:
    """Period number of each day (NaN days -> -1); :func:`period_start` turns it into a date."""
    check_choice(period, list(PERIODS), name="period")
    p = PERIODS[period]
    ok = np.isfinite(days)
    d = np.where(ok, np.floor(np.nan_to_num(days)), 0).astype(np.int64)
    if p == "W":
        code = (d + 3) // 7  # weeks start on Monday; 1970-01-01 was a Thursday
    else:
        months = d.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        code = months if p == "M" else months // 3 if p == "Q" else months // 12
    code = np.where(ok, code, -1)
    return code


def period_start(code: np.ndarray, period: str) -> pd.DatetimeIndex:
    p = PERIODS[period]
    code = np.asarray(code, dtype=np.int64)
    if p == "W":
        return pd.DatetimeIndex((code * 7 - 3).astype("datetime64[D]"))
    months = code if p == "M" else code * 3 if p == "Q" else code * 12
    return pd.DatetimeIndex(months.astype("datetime64[M]").astype("datetime64[ns]"))


def group_index(unit: np.ndarray, per: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine unit and period codes: (group code per row, unit of each group, period of each group)."""
    if per is None:
        n_units = int(unit.max()) + 1 if unit.size else 1
        return unit, np.arange(n_units), np.zeros(n_units, dtype=np.int64)
    valid = per >= 0
    lo = int(per[valid].min()) if valid.any() else 0
    hi = int(per[valid].max()) if valid.any() else 0
    n_per = hi - lo + 1
    n_units = int(unit.max()) + 1 if unit.size else 1
    g = np.where(valid, unit * n_per + (per - lo), -1)
    groups = np.arange(n_units * n_per)
    return g, groups // n_per, groups % n_per + lo
