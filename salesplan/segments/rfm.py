"""RFM segmentation: recency, frequency and monetary value per customer.

Three steps, each a plain function on frames:

1. :func:`rfm_table` turns transactions into one row per customer with
   ``recency`` (days since the last purchase), ``frequency`` and ``monetary``.
2. :func:`rfm_scores` scores each of them 1..5 (5 = best) from rank-based
   percentiles, so ties always share a score.
3. :func:`rfm_segments` names the usual segments from the R score and the
   combined FM score with the rule table :data:`RFM_SEGMENT_RULES`;
   :func:`rfm_summary` sizes them.

The rule table (R = recency score, FM = ``round_half_up((F + M) / 2)``),
covering each of the 25 (R, FM) cells exactly once:

=====================  =====  =====
segment                R      FM
=====================  =====  =====
Champions              5      4-5
Loyal                  3-4    4-5
Potential loyalists    4-5    2-3
New                    5      1
Promising              4      1
Need attention         3      3
About to sleep         3      1-2
At risk                1-2    3-4
Can't lose them        1-2    5
Hibernating            2      1-2
Lost                   1      1-2
=====================  =====  =====

Examples
--------
>>> import pandas as pd
>>> tx = pd.DataFrame({
...     "order_date": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-03-20", "2024-02-10"]),
...     "customer_id": ["a", "a", "b", "c"],
...     "revenue": [100.0, 50.0, 20.0, 300.0],
... })
>>> rfm_table(tx, as_of="2024-03-31")[["customer_id", "recency", "frequency", "monetary"]]
  customer_id  recency  frequency  monetary
0           a       30          2     150.0
1           b       11          1      20.0
2           c       50          1     300.0
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import (
    check_choice,
    check_columns,
    check_dates,
    check_frame,
    check_numeric,
    check_positive_int,
    describe_rows,
)
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan._validation import drop_guest_lines

__all__ = ["RFM_SEGMENT_RULES", "rfm_table", "rfm_scores", "rfm_segments", "rfm_summary"]

#: The segment rules: one row per segment, inclusive score ranges on R and FM.
#: Together they cover every (R, FM) cell of the 5 x 5 grid exactly once.
RFM_SEGMENT_RULES: pd.DataFrame = pd.DataFrame(
    [
        ("Champions", 5, 5, 4, 5, "Bought recently, buy often and spend the most. Reward them."),
        ("Loyal", 3, 4, 4, 5, "Buy often and spend well. Upsell, ask for reviews."),
        ("Potential loyalists", 4, 5, 2, 3, "Recent customers with average frequency. Offer membership."),
        ("New", 5, 5, 1, 1, "Bought very recently, for the first time or little. Onboard them."),
        ("Promising", 4, 4, 1, 1, "Recent shoppers who have not spent much. Build the habit."),
        ("Need attention", 3, 3, 3, 3, "Average on every count. Limited-time offers."),
        ("About to sleep", 3, 3, 1, 2, "Below average and slipping. Reactivate before they go."),
        ("At risk", 1, 2, 3, 4, "Spent well and often, but long ago. Win them back."),
        ("Can't lose them", 1, 2, 5, 5, "Used to be among the best; gone quiet. Personal contact."),
        ("Hibernating", 2, 2, 1, 2, "Low value, long since the last order. Cheap reminders."),
        ("Lost", 1, 1, 1, 2, "Lowest recency, frequency and spend. Do not overspend on them."),
    ],
    columns=["segment", "r_min", "r_max", "fm_min", "fm_max", "description"],
).astype({"segment": "str", "description": "str"})

SEGMENTS: tuple[str, ...] = tuple(RFM_SEGMENT_RULES["segment"])

_FREQUENCIES = ("days", "orders", "lines")
_MONETARY = ("sum", "mean")


def _codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 = missing) and labels; categoricals reuse their own codes (no hashing)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy().astype(np.int64), pd.Index(col.cat.categories)
    codes, uniques = pd.factorize(col, sort=False)
    return codes.astype(np.int64, copy=False), pd.Index(uniques)


def _days(col: pd.Series, name: str) -> np.ndarray:
    """Day numbers (days since 1970-01-01) as int64; NaT becomes INT64 min."""
    col = check_dates(col, name=f"tx[{name!r}]")
    return col.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").view(np.int64)


def rfm_table(
    tx: pd.DataFrame,
    *,
    as_of: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    value_col: str = "revenue",
    order_col: str = "order_id",
    frequency: str = "days",
    monetary: str = "sum",
) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer.

    Only transactions on or before ``as_of`` count.

    Parameters
    ----------
    tx : DataFrame
        Transactions (one row per order line).
    as_of : date-like, optional
        The day the analysis is made. Default: the last date in the data.
        A date before the first transaction is an error.
    customer_col, date_col, value_col : str
        Column names.
    order_col : str
        Order id column, used by ``frequency="orders"``.
    frequency : {"days", "orders", "lines"}
        What counts as one purchase: a distinct purchase day (default; the
        lines of one order share a day, and it works without order ids), a
        distinct ``order_col`` value, or a transaction row.
    monetary : {"sum", "mean"}
        Net value over the whole history (``"sum"``, returns included) or per
        purchase (``"mean"`` = sum / frequency).

    Returns
    -------
    DataFrame
        One row per customer, sorted by customer. Columns: ``customer_col``,
        ``first_purchase``, ``last_purchase`` (dates), ``recency`` (days from
        the last purchase to ``as_of``, int), ``tenure`` (days from the first
        purchase to ``as_of``, int), ``frequency`` (int >= 1), ``monetary``
        (float; can be <= 0 when returns exceed purchases, counted in a
        warning). ``as_of`` is stored in ``.attrs["as_of"]``.
    """
    check_frame(tx, name="tx")
    check_choice(frequency, _FREQUENCIES, name="frequency")
    check_choice(monetary, _MONETARY, name="monetary")
    needed = [customer_col, date_col, value_col] + ([order_col] if frequency == "orders" else [])
    check_columns(tx, needed, name="tx")
    tx = drop_guest_lines(tx, customer_col=customer_col, value_col=value_col, caller="rfm_table", stacklevel=2)
    vals_s = check_numeric(tx[value_col], name=f"tx[{value_col!r}]")
    days = _days(tx[date_col], date_col)
    codes, labels = _codes(tx[customer_col])
    vals = vals_s.to_numpy(dtype="float64", na_value=np.nan)

    nat = np.iinfo(np.int64).min
    bad = (days == nat) | (codes < 0) | np.isnan(vals)
    if bad.any():
        warnings.warn(
            f"rfm_table: ignored {int(bad.sum())} row(s) without a date or value "
            f"({describe_rows(tx.index[bad])}).",
            SalesplanDataWarning,
            stacklevel=2,
        )
        keep = ~bad
        if not keep.any():
            raise SalesplanDataError("tx has no row with a date, a customer and a value.")
    else:
        keep = None
    first_day = int(days[keep].min() if keep is not None else days.min())
    last_day = int(days[keep].max() if keep is not None else days.max())
    if as_of is None:
        as_of_ts = pd.Timestamp(np.datetime64(last_day, "D"))
    else:
        try:
            as_of_ts = pd.Timestamp(as_of).normalize()
        except (TypeError, ValueError):
            raise SalesplanError(f"as_of must be a date, got {as_of!r}.") from None
    as_of_day = int(as_of_ts.value // 86_400_000_000_000)
    if as_of_day < first_day:
        raise SalesplanError(
            f"as_of={as_of_ts.date()} is before the data starts "
            f"({pd.Timestamp(np.datetime64(first_day, 'D')).date()}; last date "
            f"{pd.Timestamp(np.datetime64(last_day, 'D')).date()}), so no customer has bought yet. "
            "Use an as_of date inside or after the data."
        )
    if as_of_day < last_day:
        inside = days <= as_of_day
        keep = inside if keep is None else keep & inside
    if keep is not None:
        codes, days, vals = codes[keep], days[keep], vals[keep]

    n_labels = len(labels)
    span = last_day - first_day + 1
    # One sort of (customer, day) keys gives distinct days, first and last day per customer.
    key = codes * span + (days - first_day)
    key.sort()
    distinct = np.empty(len(key), dtype=bool)
    distinct[0] = True
    np.not_equal(key[1:], key[:-1], out=distinct[1:])
    ukey = key[distinct]
    ucust = ukey // span
    uday = ukey - ucust * span + first_day
    n_days = np.bincount(ucust, minlength=n_labels)
    present = n_days > 0
    ends = np.cumsum(n_days)
    last = uday[ends[present] - 1]
    first = uday[ends[present] - n_days[present]]

    if frequency == "days":
        freq = n_days[present]
    elif frequency == "lines":
        freq = np.bincount(codes, minlength=n_labels)[present]
    else:
        order_s = tx[order_col] if keep is None else tx[order_col][keep]
        ocodes, _ = pd.factorize(order_s, sort=False)
        ocodes = ocodes.astype(np.int64)
        no_order = ocodes < 0
        if no_order.any():
            raise SalesplanDataError(
                f"tx[{order_col!r}] is empty in {int(no_order.sum())} row(s) "
                f"({describe_rows(order_s.index[no_order])}); fill them or use frequency='days'."
            )
        okey = codes * (int(ocodes.max()) + 1) + ocodes
        okey = np.sort(okey)
        odist = np.empty(len(okey), dtype=bool)
        odist[0] = True
        np.not_equal(okey[1:], okey[:-1], out=odist[1:])
        freq = np.bincount(okey[odist] // (int(ocodes.max()) + 1), minlength=n_labels)[present]
    money = np.bincount(codes, weights=vals, minlength=n_labels)[present]
    if monetary == "mean":
        money = money / freq

    ids = labels[present]
    order = ids.argsort(kind="stable") if not isinstance(tx[customer_col].dtype, pd.CategoricalDtype) else np.arange(len(ids))
    out = pd.DataFrame(
        {
            customer_col: ids[order],
            "first_purchase": np.asarray(first[order], dtype="datetime64[D]").astype("datetime64[ns]"),
            "last_purchase": np.asarray(last[order], dtype="datetime64[D]").astype("datetime64[ns]"),
            "recency": (as_of_day - last[order]).astype(np.int64),
            "tenure": (as_of_day - first[order]).astype(np.int64),
            "frequency": freq[order].astype(np.int64),
            "monetary": money[order].astype(np.float64),
        }
    )
    if isinstance(tx[customer_col].dtype, pd.CategoricalDtype):
        out[customer_col] = pd.Categorical(out[customer_col], categories=labels)
    out.attrs["as_of"] = as_of_ts
    nonpos = int((out["monetary"] <= 0).sum())
    if nonpos:
        warnings.warn(
            f"rfm_table: {nonpos} customer(s) have a net monetary value <= 0 (returns or credits at "
            "least as large as their purchases); they are kept and get the lowest monetary scores.",
            SalesplanDataWarning,
            stacklevel=2,
        )
    return out


def _midrank(x: np.ndarray) -> np.ndarray:
    """Average (1-based) rank of each value; ties get the mean of their positions.

    Same result as ``scipy.stats.rankdata(x, method="average")``, but a
    counting pass replaces the sort for small-range integers (recency in days,
    frequency), and the sort need not be stable because tied values share a
    rank anyway.
    """
    n = len(x)
    lo = x.min()
    if np.all(x == np.floor(x)) and x.max() - lo <= 4 * n + 1000:
        counts = np.bincount((x - lo).astype(np.int64))
        before = np.cumsum(counts) - counts
        avg = before + (counts + 1) / 2.0
        return avg[(x - lo).astype(np.int64)]
    order = np.argsort(x)
    xs = x[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    group = np.cumsum(new) - 1
    counts = np.bincount(group)
    avg = (np.cumsum(counts) - counts) + (counts + 1) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = avg[group]
    return ranks


def _score(x: np.ndarray, bins: int) -> np.ndarray:
    """1..bins from the mid-rank percentile: ties share a score, equal-size bins without ties."""
    pct = (_midrank(x) - 0.5) / len(x)
    return np.clip(np.floor(pct * bins).astype(np.int64) + 1, 1, bins)


def rfm_scores(
    rfm: pd.DataFrame,
    *,
    bins: int = 5,
    recency_col: str = "recency",
    frequency_col: str = "frequency",
    monetary_col: str = "monetary",
) -> pd.DataFrame:
    """Score recency, frequency and monetary 1..``bins`` (``bins`` = best).

    Each value's percentile is its *average* rank minus one half, over the
    number of customers; the score is ``floor(percentile * bins) + 1``. So
    without ties the bins hold equal numbers of customers, and tied values
    (e.g. the many one-time buyers) always get the same score, wherever the
    bin edges fall. Recency is reversed: the most recent buyers score
    highest. When every customer has the same value, all get the middle
    score.

    ``fm_score`` combines frequency and monetary as ``(F + M) / 2`` rounded
    half up, the axis :data:`RFM_SEGMENT_RULES` uses.

    Returns
    -------
    DataFrame
        ``rfm`` with added columns ``r_score``, ``f_score``, ``m_score``,
        ``fm_score`` (ints in 1..bins) and ``rfm_cell`` (categorical over all
        cells, e.g. ``"545"``; ``"10-2-7"`` style when bins > 9).
    """
    check_frame(rfm, name="rfm")
    bins = check_positive_int(bins, name="bins")
    if bins < 2:
        raise SalesplanError(f"bins must be at least 2, got {bins}.")
    check_columns(rfm, [recency_col, frequency_col, monetary_col], name="rfm",
                  hint="Pass the frame returned by rfm_table, or name the columns with recency_col= etc.")
    out = rfm.copy()
    for col in (recency_col, frequency_col, monetary_col):
        v = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if np.isnan(v).any():
            bad = np.flatnonzero(np.isnan(v))
            raise SalesplanDataError(
                f"rfm[{col!r}] has {len(bad)} missing or non-numeric value(s) at "
                f"{describe_rows(out.index[bad])}; scores need a number for every customer."
            )
        s = _score(v, bins)
        if col == recency_col:
            s = bins + 1 - s
        out[{recency_col: "r_score", frequency_col: "f_score", monetary_col: "m_score"}[col]] = s
    out["fm_score"] = (out["f_score"] + out["m_score"] + 1) // 2
    r, f, m = (out[c].to_numpy() for c in ("r_score", "f_score", "m_score"))
    # a categorical over every possible cell: no per-customer string building
    sep = "" if bins <= 9 else "-"
    cells = [f"{a}{sep}{b}{sep}{c}" for a in range(1, bins + 1) for b in range(1, bins + 1) for c in range(1, bins + 1)]
    out["rfm_cell"] = pd.Categorical.from_codes(((r - 1) * bins + (f - 1)) * bins + (m - 1), categories=cells)
    return out


def _lookup(rules: pd.DataFrame) -> np.ndarray:
    """6 x 6 table of segment positions (-1 = not covered; -2 = covered twice)."""
    lut = np.full((6, 6), -1, dtype=np.int64)
    for i, row in enumerate(rules.itertuples(index=False)):
        for r in range(int(row.r_min), int(row.r_max) + 1):
            for fm in range(int(row.fm_min), int(row.fm_max) + 1):
                lut[r, fm] = i if lut[r, fm] == -1 else -2
    return lut


def rfm_segments(scores: pd.DataFrame, *, rules: pd.DataFrame | None = None) -> pd.DataFrame:
    """Name each customer's segment from ``r_score`` and ``fm_score``.

    The default rules (:data:`RFM_SEGMENT_RULES`), as R score x FM score::

        FM\\R   1                2                3                4                    5
        5      Can't lose them  Can't lose them  Loyal            Loyal                Champions
        4      At risk          At risk          Loyal            Loyal                Champions
        3      At risk          At risk          Need attention   Potential loyalists  Potential loyalists
        2      Lost             Hibernating      About to sleep   Potential loyalists  Potential loyalists
        1      Lost             Hibernating      About to sleep   Promising            New

    Parameters
    ----------
    scores : DataFrame
        The output of :func:`rfm_scores` with ``bins=5``.
    rules : DataFrame, optional
        A rule table shaped like :data:`RFM_SEGMENT_RULES` (the default); it
        must cover each (R, FM) cell of 1..5 x 1..5 exactly once.

    Returns
    -------
    DataFrame
        ``scores`` with a ``segment`` column (categorical, categories in rule
        order).
    """
    check_frame(scores, name="scores")
    check_columns(scores, ["r_score", "fm_score"], name="scores",
                  hint="Pass the frame returned by rfm_scores(rfm_table(tx)).")
    rules = RFM_SEGMENT_RULES if rules is None else rules
    check_columns(rules, ["segment", "r_min", "r_max", "fm_min", "fm_max"], name="rules")
    lut = _lookup(rules)
    grid = lut[1:, 1:]
    if (grid < 0).any():
        holes = [(int(r) + 1, int(f) + 1) for r, f in zip(*np.nonzero(grid == -1))]
        twice = [(int(r) + 1, int(f) + 1) for r, f in zip(*np.nonzero(grid == -2))]
        raise SalesplanError(
            "rules must cover every (R, FM) cell of 1..5 x 1..5 exactly once; "
            + (f"uncovered: {holes[:5]} " if holes else "")
            + (f"covered twice: {twice[:5]}" if twice else "")
        )
    r = pd.to_numeric(scores["r_score"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    fm = pd.to_numeric(scores["fm_score"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = ~(np.isin(r, np.arange(1, 6)) & np.isin(fm, np.arange(1, 6)))
    if bad.any():
        raise SalesplanDataError(
            f"scores must be integers 1..5 (rfm_scores with bins=5); {int(bad.sum())} row(s) are not, "
            f"at {describe_rows(scores.index[bad])}: r_score={r[bad][:3].tolist()}, "
            f"fm_score={fm[bad][:3].tolist()}."
        )
    names = list(rules["segment"])
    out = scores.copy()
    out["segment"] = pd.Categorical.from_codes(lut[r.astype(int), fm.astype(int)], categories=names)
    return out


def rfm_summary(
    segments: pd.DataFrame,
    *,
    recency_col: str = "recency",
    frequency_col: str = "frequency",
    monetary_col: str = "monetary",
) -> pd.DataFrame:
    """Size and value of each segment, every segment listed (0 when empty).

    Returns
    -------
    DataFrame
        One row per segment in rule order. Columns: ``segment``,
        ``customers``, ``customer_share``, ``monetary`` (sum),
        ``monetary_share`` (of the total, NaN when the total is 0),
        ``recency_median``, ``frequency_median``, ``monetary_median``,
        ``description``.
    """
    check_frame(segments, name="segments")
    check_columns(segments, ["segment", recency_col, frequency_col, monetary_col], name="segments",
                  hint="Pass the frame returned by rfm_segments.")
    seg = segments["segment"]
    cats = list(seg.cat.categories) if isinstance(seg.dtype, pd.CategoricalDtype) else list(SEGMENTS)
    g = segments.groupby(seg.astype("str"), sort=False)
    out = pd.DataFrame({
        "customers": g.size(),
        "monetary": g[monetary_col].sum(),
        "recency_median": g[recency_col].median(),
        "frequency_median": g[frequency_col].median(),
        "monetary_median": g[monetary_col].median(),
    }).reindex(cats)
    out["customers"] = out["customers"].fillna(0).astype(np.int64)
    out["monetary"] = out["monetary"].fillna(0.0)
    out.insert(1, "customer_share", out["customers"] / max(len(segments), 1))
    total = out["monetary"].sum()
    out.insert(3, "monetary_share", out["monetary"] / total if total else np.nan)
    desc = dict(zip(RFM_SEGMENT_RULES["segment"], RFM_SEGMENT_RULES["description"]))
    out["description"] = pd.Series([desc.get(c, "") for c in cats], index=out.index, dtype="str")
    out.index.name = "segment"
    out = out.reset_index()
    out["segment"] = out["segment"].astype("str")
    return out
