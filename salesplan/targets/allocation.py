"""Top-down allocation of a target to units, phasing over months, and hierarchies.

The work is split so that a planner's controls can move fast:
:class:`Allocator` is *fitted* once on the history panel and the forecast
sample paths (it sorts every unit's simulated period totals once); its
:meth:`Allocator.allocate` then takes a total, a method and locks and answers
in well under a millisecond per hundred units. :func:`allocate` is the
one-call functional form.

Methods
-------
``historical_share``
    In proportion to each unit's sum over the last ``lookback`` months.
``forecast_share``
    In proportion to each unit's mean forecast for the period.
``potential``
    In proportion to a given potential (CLV of assigned customers, market
    size...), a Series indexed by unit.
``equal_growth``
    Every unit grows by the same percentage over the same period last year.
``equal_probability``
    Quotas such that every unit has the same probability of reaching its
    number under its forecast distribution. With the sorted simulated
    period totals ``S[i, k]`` of unit ``i``, unit quantile functions are
    piecewise linear on the same grid ``k / (n - 1)``, so their sum is the
    piecewise-linear interpolation of the column sums ``C[k] = sum_i S[i, k]``.
    The common level is found exactly by one ``searchsorted`` on ``C`` (a
    vectorised bisection over all units at once), and the quotas add up to
    the total to floating-point precision.
``equal``
    The same number for every unit.

Every result carries the attainment probability ``P(actual >= quota)`` of
each unit (from the sample paths, when given), so methods can be compared
for fairness (:func:`compare_methods`).

Fallbacks
---------
Units with no history in the lookback window (a new territory, a new rep)
cannot be allocated by share or by forecast. With ``historical_share``,
``forecast_share``, ``equal_growth`` and ``equal_probability`` they first get
their ``capacity`` (when given, e.g. from :func:`salesplan.targets.capacity_plan`)
or else an average unit's number (the unlocked total divided by the number
of unlocked units); the rest is allocated to the others by the method. A
:class:`~salesplan.errors.SalesplanWarning` names them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_choice, check_columns, check_frame, closest_matches
from salesplan.errors import SalesplanDataError, SalesplanError, SalesplanWarning
from salesplan.targets._data import check_samples

__all__ = [
    "METHODS",
    "Allocator",
    "allocate",
    "compare_methods",
    "fairness_summary",
    "largest_remainder",
    "equal_probability_quotas",
    "attainment_probability",
    "check_hierarchy",
    "hierarchy_from_edges",
    "allocate_hierarchy",
    "plan_period",
]

METHODS: tuple[str, ...] = (
    "historical_share",
    "forecast_share",
    "potential",
    "equal_growth",
    "equal_probability",
    "equal",
)
_NEEDS_SAMPLES = ("forecast_share", "equal_probability")
_FALLBACK_METHODS = ("historical_share", "forecast_share", "equal_growth", "equal_probability")


# ---------------------------------------------------------------------------
# Numerical kernels (arrays in, arrays out; validated by the public callers)
# ---------------------------------------------------------------------------

def largest_remainder(values: Any, total: float | None = None, *, decimals: int = 0) -> np.ndarray:
    """Round ``values`` to ``decimals`` places keeping their sum equal to ``total``.

    Floors every value, then gives one unit of the last place to the values
    with the largest remainders until the total is reached (Hamilton's
    method; ties go to the earlier value). ``values`` may be 2-D: each row is
    rounded to its own total.
    When ``total`` is not a multiple of ``10**-decimals`` the leftover
    fraction goes to the value with the largest remainder, so the sum is
    still exact.

    Parameters
    ----------
    values : array-like of float, 1-D or 2-D, non-negative
    total : float or array of float, optional
        Sum to keep (per row); default the sum of ``values``.
    decimals : int
        0 rounds to whole units.

    Returns
    -------
    numpy.ndarray
        Rounded values, same shape.

    Examples
    --------
    >>> largest_remainder([1.5, 1.5, 1.0], 4).tolist()
    [2.0, 1.0, 1.0]
    >>> largest_remainder([33.3, 33.3, 33.4]).sum()
    np.float64(100.0)
    """
    v = np.asarray(values, dtype=float)
    one_d = v.ndim == 1
    v2 = np.atleast_2d(v)
    t = v2.sum(axis=1) if total is None else np.broadcast_to(np.asarray(total, dtype=float), (v2.shape[0],))
    if v2.shape[1] == 0:
        return v.copy()
    scale = 10.0 ** decimals
    scaled = v2 * scale
    # Below a millionth of the last place a difference is float noise, not money.
    eps = 1e-6
    floors = np.floor(scaled + eps)
    rem = scaled - floors
    target = t * scale
    need = np.floor(target - floors.sum(axis=1) + eps)
    leftover = target - floors.sum(axis=1) - need
    need = np.clip(need, 0, v2.shape[1]).astype(int)
    order = np.argsort(-rem, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(v2.shape[0])[:, None]
    ranks[rows, order] = np.arange(v2.shape[1])[None, :]
    out = floors + (ranks < need[:, None])
    # Whatever is not a whole unit of the last place goes to the next in line.
    nxt = order[np.arange(v2.shape[0]), np.minimum(need, v2.shape[1] - 1)]
    out[np.arange(v2.shape[0]), nxt] += np.where(np.abs(leftover) > eps, leftover, 0.0)
    out = out / scale
    return out[0] if one_d else out


def _interp_rows(sorted_samples: np.ndarray, position: float) -> np.ndarray:
    n = sorted_samples.shape[1]
    k = int(np.clip(np.floor(position), 0, n - 1))
    frac = position - k
    if k >= n - 1:
        return sorted_samples[:, n - 1].copy()
    return sorted_samples[:, k] * (1 - frac) + sorted_samples[:, k + 1] * frac


def equal_probability_quotas(sorted_samples: np.ndarray, total: float) -> tuple[np.ndarray, float]:
    """Quotas with one common attainment probability that add up to ``total``.

    Parameters
    ----------
    sorted_samples : ndarray (units x samples)
        Each unit's simulated period totals, sorted ascending along axis 1.
    total : float
        What the quotas must add up to.

    Returns
    -------
    (ndarray, float)
        The quotas and the common probability ``p = P(actual >= quota)``.
        Outside the simulated range (total below the sum of every unit's
        smallest simulated value, or above the sum of the largest) quotas are
        that extreme scaled to the total, with ``p`` 1 or 0.
    """
    m, n = sorted_samples.shape
    if m == 0:
        return np.zeros(0), float("nan")
    col = sorted_samples.sum(axis=0)
    if n == 1 or total <= col[0]:
        base = sorted_samples[:, 0]
        q = base * (total / col[0]) if col[0] > 0 else np.full(m, total / m)
        return q, 1.0
    if total >= col[-1]:
        base = sorted_samples[:, -1]
        q = base * (total / col[-1]) if col[-1] > 0 else np.full(m, total / m)
        return q, 0.0
    k = int(np.searchsorted(col, total, side="right") - 1)
    k = min(max(k, 0), n - 2)
    width = col[k + 1] - col[k]
    frac = (total - col[k]) / width if width > 0 else 0.0
    q = sorted_samples[:, k] * (1 - frac) + sorted_samples[:, k + 1] * frac
    # Remove the last float error so the quotas add up to the total exactly.
    q = q + (total - q.sum()) * (q / q.sum() if q.sum() > 0 else 1.0 / m)
    return q, float(1.0 - (k + frac) / (n - 1))


def attainment_probability(sorted_samples: np.ndarray, quotas: np.ndarray) -> np.ndarray:
    """``P(actual >= quota)`` per unit from sorted simulated totals.

    Uses the same piecewise-linear quantile function as
    :func:`equal_probability_quotas` (sample ``k`` of ``n`` sits at level
    ``k / (n - 1)``), so equal-probability quotas get exactly equal numbers.
    A quota at or below the smallest simulated value has probability 1, above
    the largest 0.
    """
    s = sorted_samples
    m, n = s.shape
    q = np.asarray(quotas, dtype=float)
    if n == 1:
        return (s[:, 0] >= q).astype(float)
    below = (s < q[:, None]).sum(axis=1)
    k = np.clip(below - 1, 0, n - 2)
    rows = np.arange(m)
    lo, hi = s[rows, k], s[rows, k + 1]
    width = hi - lo
    frac = np.where(width > 0, (q - lo) / np.where(width > 0, width, 1.0), 1.0)
    p = 1.0 - (k + np.clip(frac, 0, 1)) / (n - 1)
    p = np.where(below == 0, 1.0, p)
    p = np.where(below >= n, 0.0, p)
    return np.clip(p, 0.0, 1.0)


# ---------------------------------------------------------------------------
# Periods
# ---------------------------------------------------------------------------

def plan_period(period: Any = None, *, after: pd.Timestamp | None = None) -> pd.DatetimeIndex:
    """The months (month-start timestamps) of a plan period.

    ``period`` may be a year (``2026``), a ``(start, end)`` pair of dates
    (inclusive months), a ``pandas.Period``/``"2026"``/``"2026Q1"`` string,
    or None for the twelve months after ``after``.

    >>> plan_period(2026)[[0, -1]].strftime("%Y-%m").tolist()
    ['2026-01', '2026-12']
    >>> len(plan_period(("2026-04-01", "2026-06-30")))
    3
    """
    if period is None:
        if after is None:
            raise SalesplanError("period is None and there is no history to start after; pass period=2026.")
        start = (pd.Timestamp(after) + pd.offsets.MonthBegin(1)).normalize()
        return pd.date_range(start, periods=12, freq="MS")
    try:
        if isinstance(period, (int, np.integer)) and not isinstance(period, bool):
            return pd.date_range(f"{int(period)}-01-01", periods=12, freq="MS")
        if isinstance(period, (tuple, list)) and len(period) == 2:
            start = pd.Timestamp(period[0]).to_period("M").to_timestamp()
            end = pd.Timestamp(period[1]).to_period("M").to_timestamp()
        else:
            p = period if isinstance(period, pd.Period) else pd.Period(str(period))
            start = p.start_time.to_period("M").to_timestamp()
            end = p.end_time.to_period("M").to_timestamp()
    except (ValueError, TypeError) as exc:
        raise SalesplanError(
            f"period {period!r} is not understood ({exc}). Use a year (2026), a pair of dates "
            "('2026-01-01', '2026-12-31') or a period string ('2026Q1')."
        ) from None
    if end < start:
        raise SalesplanError(f"period ends ({end:%Y-%m}) before it starts ({start:%Y-%m}); swap the dates.")
    return pd.date_range(start, end, freq="MS")


# ---------------------------------------------------------------------------
# The fitted allocator
# ---------------------------------------------------------------------------

class Allocator:
    """Top-down allocation of a period target to units, fitted once, allocated often.

    Parameters
    ----------
    period : int, tuple or str, optional
        The plan period (see :func:`plan_period`); default the twelve months
        after the history.
    lookback : int
        Months of history before the period used for ``historical_share``.
    decimals : int or None
        Round quotas to this many decimals (0 = whole units) with
        :func:`largest_remainder`, keeping the exact total; None keeps floats.
    interval : int
        Coverage (%) of the forecast interval reported per unit.

    Attributes
    ----------
    units_ : pandas.Index
        Unit keys (union of the history's and the samples' ``unique_id``).
    months_ : pandas.DatetimeIndex
        Months of the plan period.
    history_ : ndarray
        Sum of the last ``lookback`` months before the period, per unit.
    last_year_ : ndarray
        The same months one year before the period, per unit.
    has_history_ : ndarray of bool
        Units with a non-zero history in the lookback window.
    sorted_ : ndarray (units x samples) or None
        Sorted simulated period totals per unit.
    forecast_mean_ : ndarray or None
        Mean simulated period total per unit.
    monthly_forecast_ : ndarray (units x months) or None
        Mean simulated value per unit and month.
    profile_ : ndarray (units x months)
        Seasonal share of each month in the period per unit, from history
        (the all-unit profile where a unit has none).

    Examples
    --------
    >>> hist = pd.DataFrame({"unique_id": ["a"] * 12 + ["b"] * 12,
    ...                      "ds": list(pd.date_range("2025-01-01", periods=12, freq="MS")) * 2,
    ...                      "y": [10.0] * 12 + [30.0] * 12})
    >>> alloc = Allocator(period=2026).fit(hist)
    >>> alloc.allocate(1000, method="historical_share")[["unique_id", "quota"]]
      unique_id  quota
    0         a  250.0
    1         b  750.0
    """

    def __init__(
        self,
        *,
        period: Any = None,
        lookback: int = 12,
        decimals: int | None = 0,
        interval: int = 80,
    ) -> None:
        self.period = period
        self.lookback = lookback
        self.decimals = decimals
        self.interval = interval

    # -- fitting -------------------------------------------------------------
    def fit(self, history: pd.DataFrame, samples: pd.DataFrame | None = None) -> Allocator:
        """Learn each unit's history, last year, forecast distribution and seasonality.

        Parameters
        ----------
        history : DataFrame
            ``unique_id, ds, y`` monthly metric per unit (see
            :func:`salesplan.targets.metric_panel`).
        samples : DataFrame, optional
            Forecast sample paths ``unique_id, ds, sample, y`` covering every
            month of the period. Needed for ``forecast_share``,
            ``equal_probability`` and attainment probabilities.

        Returns
        -------
        Allocator
            self
        """
        check_frame(history, name="history", min_rows=0)
        check_columns(history, ["unique_id", "ds", "y"], name="history")
        hist = history.assign(unique_id=history["unique_id"].astype("str"), ds=pd.to_datetime(history["ds"]))
        if samples is not None:
            samples = check_samples(samples)
        if len(hist) == 0 and samples is None:
            raise SalesplanDataError("history has 0 rows and no samples were given: there is nothing to plan from.")
        last_hist = hist["ds"].max() if len(hist) else None
        months = plan_period(self.period, after=last_hist if last_hist is not None else samples["ds"].min()
                             - pd.offsets.MonthBegin(1))
        if len(hist) and months[-1] < hist["ds"].min():
            raise SalesplanError(
                f"period {months[0]:%Y-%m}..{months[-1]:%Y-%m} is outside the data: the history starts "
                f"{hist['ds'].min():%Y-%m}. Plan a period after the start of the data, e.g. period="
                f"{(last_hist + pd.offsets.MonthBegin(1)).year}."
            )
        ids = pd.Index(hist["unique_id"].unique())
        if samples is not None:
            ids = ids.union(pd.Index(samples["unique_id"].unique()), sort=False)
        ids = pd.Index(sorted(ids), dtype="str", name="unique_id")
        self.units_ = ids
        self._names = np.array(ids.tolist(), dtype=object)
        self._lookup = {u: i for i, u in enumerate(self._names)}
        self.months_ = months
        wide = (hist.pivot_table(index="unique_id", columns="ds", values="y", aggfunc="sum")
                .reindex(ids).fillna(0.0)) if len(hist) else pd.DataFrame(index=ids)
        before = [c for c in wide.columns if c < months[0]]
        window = sorted(before)[-self.lookback:] if self.lookback else before
        self.history_ = wide[window].sum(axis=1).to_numpy(float) if window else np.zeros(len(ids))
        ly = [m - pd.DateOffset(years=1) for m in months]
        self.last_year_ = wide.reindex(columns=ly).fillna(0.0).sum(axis=1).to_numpy(float)
        self.has_history_ = self.history_ > 0
        self.profile_ = self._history_profile(wide, months)
        self.sorted_ = None
        self.forecast_mean_ = None
        self.monthly_forecast_ = None
        self.n_samples_ = 0
        if samples is not None:
            self._fit_samples(samples, ids, months)
        self.history_panel_ = wide
        return self

    def _fit_samples(self, samples: pd.DataFrame, ids: pd.Index, months: pd.DatetimeIndex) -> None:
        inside = samples[samples["ds"].isin(months)]
        got = set(inside["ds"].unique())
        missing_months = [m for m in months if m not in got]
        if missing_months:
            lo, hi = samples["ds"].min(), samples["ds"].max()
            raise SalesplanError(
                f"period {months[0]:%Y-%m}..{months[-1]:%Y-%m} is outside the forecast horizon: the sample "
                f"paths cover {lo:%Y-%m}..{hi:%Y-%m}, missing {len(missing_months)} month(s) "
                f"({', '.join(f'{m:%Y-%m}' for m in missing_months[:4])}). Forecast further ahead "
                "(larger h) or plan a period inside the horizon."
            )
        # Integer codes + bincount: one pass over the (large) sample frame.
        u_code = ids.get_indexer(inside["unique_id"])
        m_code = months.get_indexer(inside["ds"])
        s_code, s_uniques = pd.factorize(inside["sample"], sort=True)
        n, k, m = len(s_uniques), len(months), len(ids)
        y = inside["y"].to_numpy(float)
        cells = np.bincount(u_code * k + m_code, minlength=m * k).reshape(m, k)
        present = cells.sum(axis=1) > 0
        short = present & (cells == 0).any(axis=1)
        if short.any():
            bad = list(ids[short])
            raise SalesplanDataError(
                f"sample paths of {len(bad)} unit(s) do not cover every month of the period "
                f"({', '.join(map(str, bad[:5]))}); every unit needs all {k} months."
            )
        if (~present & self.has_history_).any():
            miss = list(ids[~present & self.has_history_])
            warnings.warn(
                f"{len(miss)} unit(s) have history but no forecast sample paths: {miss[:5]}; their forecast "
                "distribution is taken as zero (probability 1 for any quota, nothing from forecast-based "
                "methods). Forecast them too, or lock their numbers.", SalesplanWarning, stacklevel=3,
            )
        # Units absent from the forecast (no history, nothing simulated) have a zero distribution.
        arr = np.bincount(u_code * n + s_code, weights=y, minlength=m * n).reshape(m, n)
        self.sorted_ = np.sort(arr, axis=1)
        self.forecast_mean_ = arr.mean(axis=1)
        self.monthly_forecast_ = np.bincount(u_code * k + m_code, weights=y, minlength=m * k).reshape(m, k) / n
        self.n_samples_ = n

    @staticmethod
    def _history_profile(wide: pd.DataFrame, months: pd.DatetimeIndex) -> np.ndarray:
        n_units = len(wide.index)
        flat = np.full((n_units, len(months)), 1.0 / len(months))
        if wide.shape[1] == 0:
            return flat
        cols = pd.DatetimeIndex(wide.columns)
        # Average calendar-month pattern over up to three past years.
        use = cols[cols < months[0]][-36:]
        if len(use) == 0:
            return flat
        by_month = wide[use].T.groupby(use.month).mean().T  # units x calendar month
        by_month = by_month.reindex(columns=months.month).fillna(0.0)
        vals = by_month.to_numpy(float)
        company = vals.sum(axis=0)
        company_prof = company / company.sum() if company.sum() > 0 else flat[0]
        sums = vals.sum(axis=1, keepdims=True)
        prof = np.where(sums > 0, vals / np.where(sums > 0, sums, 1.0), company_prof[None, :])
        return prof

    def _check_fitted(self) -> None:
        if not hasattr(self, "units_"):
            raise SalesplanError("this Allocator is not fitted yet; call .fit(history, samples) first.")

    # -- helpers -------------------------------------------------------------
    def _positions(self, units: Sequence[str] | None) -> np.ndarray:
        if units is None:
            return np.arange(len(self.units_))
        look = self._lookup
        bad = [u for u in units if str(u) not in look]
        if bad:
            raise SalesplanError(f"unknown unit(s) {bad[:5]}; known units: {list(self._names[:10])}...")
        return np.fromiter((look[str(u)] for u in units), dtype=np.int64, count=len(units))

    def _locks(self, locks: Any, pos: np.ndarray) -> dict[int, float]:
        if locks is None:
            return {}
        if isinstance(locks, pd.Series):
            locks = locks.dropna().to_dict()
        if not isinstance(locks, Mapping):
            raise SalesplanError(f"locks must be a mapping unit -> value or a Series, got {type(locks).__name__}.")
        local = {self._names[p]: p for p in pos}
        out: dict[int, float] = {}
        unknown = [k for k in locks if str(k) not in local]
        if unknown:
            near = closest_matches(str(unknown[0]), list(local))
            raise SalesplanError(
                f"locks name {len(unknown)} unit(s) that are not being allocated: {unknown[:5]}"
                + (f" (did you mean {near[0]!r}?)" if near else "")
                + f". Units here: {list(local)[:10]}."
            )
        for k, v in locks.items():
            try:
                val = float(v)
            except (TypeError, ValueError):
                raise SalesplanError(f"locked value for {k!r} must be a number, got {v!r}.") from None
            if not np.isfinite(val) or val < 0:
                raise SalesplanError(
                    f"locked value for {k!r} is {v!r}; targets must be non-negative numbers. "
                    "Set a value >= 0 or unlock the unit."
                )
            out[local[str(k)]] = val
        return out

    def _as_potential(self, potential: Any, pos: np.ndarray) -> np.ndarray:
        if potential is None:
            raise SalesplanError(
                "method='potential' needs potential=, a Series (or frame with unique_id and potential) "
                "of each unit's potential, e.g. the CLV of its customers or its market size."
            )
        if isinstance(potential, pd.DataFrame):
            check_columns(potential, ["unique_id", "potential"], name="potential")
            potential = potential.set_index("unique_id")["potential"]
        if isinstance(potential, Mapping):
            potential = pd.Series(potential)
        pot = pd.Series(potential).copy()
        pot.index = pot.index.astype("str")
        vals = pot.reindex(pd.Index(self._names[pos], dtype="str"))
        if vals.isna().any():
            miss = list(vals.index[vals.isna()])
            raise SalesplanDataError(
                f"potential has no value for {len(miss)} unit(s): {miss[:5]}. Give every unit a potential "
                "(0 for none)."
            )
        if (vals < 0).any():
            neg = list(vals.index[vals < 0])
            raise SalesplanDataError(f"potential is negative for {len(neg)} unit(s): {neg[:5]}; use values >= 0.")
        return vals.to_numpy(float)

    # -- allocation ----------------------------------------------------------
    def allocate(
        self,
        total: float,
        *,
        method: str = "historical_share",
        locks: Mapping[str, float] | pd.Series | None = None,
        potential: pd.Series | pd.DataFrame | Mapping[str, float] | None = None,
        capacity: pd.Series | Mapping[str, float] | None = None,
        units: Sequence[str] | None = None,
        warn: bool = True,
    ) -> pd.DataFrame:
        """Split ``total`` over the units.

        Parameters
        ----------
        total : float
            The target for the period (>= 0, >= the sum of the locks); rounded
            to ``decimals`` places first when rounding is on.
        method : str
            One of :data:`METHODS`.
        locks : mapping or Series, optional
            Unit -> fixed value set by a manager. Locked units keep exactly
            that value; the rest of the total is allocated to the others.
        potential : Series, frame or mapping, optional
            Unit -> potential, for ``method="potential"``.
        capacity : Series or mapping, optional
            Unit -> capacity-based number for the period, used for units
            with no history (see the module notes).
        units : sequence of str, optional
            Allocate among these units only (used for one parent's children).

        Returns
        -------
        DataFrame
            One row per unit: ``unique_id``, ``quota``, ``share`` (of the
            total), ``locked``, ``fallback`` (no history: capacity or average
            number), ``history`` (last ``lookback`` months), ``last_year``
            (same period last year), ``growth`` (quota vs last year),
            ``forecast_mean``, ``forecast_lo``/``forecast_hi`` (the
            ``interval`` % interval of the simulated period total) and
            ``probability`` (``P(actual >= quota)``; NaN without samples).
        """
        self._check_fitted()
        check_choice(method, METHODS, name="method")
        try:
            total = float(total)
        except (TypeError, ValueError):
            raise SalesplanError(f"total must be a number, got {total!r}.") from None
        if not np.isfinite(total) or total < 0:
            raise SalesplanError(
                f"total must be a non-negative number, got {total!r}. A target cannot be negative; "
                "for a decline plan set a smaller positive total."
            )
        if self.decimals is not None:
            # Quotas are whole units (or `decimals` places), so the total is too.
            total = round(total, self.decimals)
        if method in _NEEDS_SAMPLES and self.sorted_ is None:
            raise SalesplanError(
                f"method={method!r} needs the forecast distribution; fit with samples= "
                "(salesplan.forecast.sample_paths or salesplan.targets.forecast_distribution)."
            )
        pos = self._positions(units)
        m = len(pos)
        locked = self._locks(locks, pos)
        locked_sum = float(sum(locked.values()))
        if locked_sum > total + 1e-9:
            detail = ", ".join(f"{self._names[p]}={v:,.2f}" for p, v in list(locked.items())[:5])
            raise SalesplanError(
                f"total {total:,.2f} is below what is locked ({locked_sum:,.2f} over {len(locked)} unit(s): "
                f"{detail}). Raise the total to at least {locked_sum:,.2f} or unlock some units."
            )
        quota = np.zeros(m)
        is_locked = np.zeros(m, dtype=bool)
        local_index = {p: i for i, p in enumerate(pos)}
        for p, v in locked.items():
            quota[local_index[p]] = v
            is_locked[local_index[p]] = True
        free = ~is_locked
        remaining = total - locked_sum
        fallback = np.zeros(m, dtype=bool)
        if free.any():
            if method in _FALLBACK_METHODS:
                fallback = free & ~self.has_history_[pos]
                if fallback.all() and method != "equal_probability":
                    fallback[:] = False  # nothing has history: equal split is the only basis
            if fallback.any():
                remaining = self._allocate_fallback(quota, pos, fallback, free, remaining, capacity, warn)
            rest = free & ~fallback
            if rest.any():
                quota[rest] = self._split(method, remaining, pos[rest], potential)
        elif remaining > 1e-9:
            raise SalesplanError(
                f"every unit is locked but the locks add up to {locked_sum:,.2f}, not the total {total:,.2f}; "
                "unlock a unit or set the total to the sum of the locks."
            )
        if self.decimals is not None and free.any():
            quota[free] = largest_remainder(quota[free], total - locked_sum, decimals=self.decimals)
        return self._frame(pos, quota, is_locked, fallback, total)

    def _allocate_fallback(self, quota, pos, fallback, free, remaining, capacity, warn) -> float:
        n_free = int(free.sum())
        names = list(self._names[pos[fallback]])
        cap = None
        if capacity is not None:
            cap = pd.Series(capacity).copy()
            cap.index = cap.index.astype("str")
        values = np.full(int(fallback.sum()), remaining / n_free)
        how = np.array(["an average unit's number"] * len(values), dtype=object)
        if cap is not None:
            c = cap.reindex(names)
            has = c.notna().to_numpy()
            values[has] = c.to_numpy(float)[has]
            how[has] = "its capacity"
        if values.sum() > remaining:
            values = values * (remaining / values.sum()) if values.sum() > 0 else values
        quota[fallback] = values
        if warn:
            what = "; ".join(sorted({f"{(how == h).sum()} get {h}" for h in set(how)}))
            warnings.warn(
                f"{len(names)} unit(s) have no history in the last {self.lookback} months (new territory): "
                f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}; {what}. Pass capacity=, "
                "method='potential' with potential=, or lock them to set their numbers explicitly.",
                SalesplanWarning, stacklevel=3,
            )
        return remaining - float(values.sum())

    def _split(self, method: str, remaining: float, pos: np.ndarray, potential: Any) -> np.ndarray:
        m = len(pos)
        if method == "equal_probability":
            q, _ = equal_probability_quotas(self.sorted_[pos], remaining)
            return q
        if method == "historical_share":
            basis = self.history_[pos]
        elif method == "forecast_share":
            basis = self.forecast_mean_[pos]
        elif method == "equal_growth":
            basis = self.last_year_[pos]
            if basis.sum() <= 0:
                basis = self.history_[pos]
        elif method == "potential":
            basis = self._as_potential(potential, pos)
        else:
            basis = np.ones(m)
        s = basis.sum()
        if s <= 0:
            return np.full(m, remaining / m)
        return remaining * basis / s

    def probability(self, quotas: Any, *, units: Sequence[str] | None = None) -> np.ndarray:
        """``P(actual >= quota)`` for each unit (NaN without samples)."""
        self._check_fitted()
        pos = self._positions(units)
        q = np.asarray(quotas, dtype=float)
        if self.sorted_ is None:
            return np.full(len(pos), np.nan)
        return attainment_probability(self.sorted_[pos], q)

    def _frame(self, pos, quota, is_locked, fallback, total) -> pd.DataFrame:
        prob = (attainment_probability(self.sorted_[pos], quota) if self.sorted_ is not None
                else np.full(len(pos), np.nan))
        ly = self.last_year_[pos]
        with np.errstate(over="ignore"):
            growth = np.divide(quota, ly, out=np.full(len(pos), np.nan), where=ly > 0) - 1.0
        out = {
            "unique_id": pd.array(self._names[pos], dtype="str"),
            "quota": quota,
            "share": quota / total if total > 0 else np.zeros(len(pos)),
            "locked": is_locked,
            "fallback": fallback,
            "history": self.history_[pos],
            "last_year": ly,
            "growth": growth,
        }
        if self.sorted_ is not None:
            s = self.sorted_[pos]
            a = (100 - self.interval) / 200
            out["forecast_mean"] = self.forecast_mean_[pos]
            out["forecast_lo"] = _interp_rows(s, a * (s.shape[1] - 1))
            out["forecast_hi"] = _interp_rows(s, (1 - a) * (s.shape[1] - 1))
        else:
            out["forecast_mean"] = out["forecast_lo"] = out["forecast_hi"] = np.full(len(pos), np.nan)
        out["probability"] = prob
        return pd.DataFrame(out)

    # -- phasing -------------------------------------------------------------
    def phase(self, allocation: pd.DataFrame, *, profile: str = "history") -> pd.DataFrame:
        """Spread each unit's quota over the months of the period.

        Parameters
        ----------
        allocation : DataFrame
            ``unique_id, quota`` (the result of :meth:`allocate`).
        profile : {"history", "forecast", "flat"}
            The seasonal profile: average calendar-month shares of the unit's
            past (the company's where the unit has none), the mean forecast
            per month, or equal months.

        Returns
        -------
        DataFrame
            ``unique_id, ds, value`` with each unit's months adding up
            exactly to its quota (largest-remainder rounding when
            ``decimals`` is set).
        """
        self._check_fitted()
        check_choice(profile, ("history", "forecast", "flat"), name="profile")
        check_columns(allocation, ["unique_id", "quota"], name="allocation")
        pos = self._positions(allocation["unique_id"].astype("str").tolist())
        k = len(self.months_)
        if profile == "history":
            prof = self.profile_[pos]
        elif profile == "forecast":
            if self.monthly_forecast_ is None:
                raise SalesplanError("profile='forecast' needs the forecast samples; fit with samples= or use 'history'.")
            mf = self.monthly_forecast_[pos]
            sums = mf.sum(axis=1, keepdims=True)
            prof = np.where(sums > 0, mf / np.where(sums > 0, sums, 1.0), 1.0 / k)
        else:
            prof = np.full((len(pos), k), 1.0 / k)
        q = allocation["quota"].to_numpy(float)
        vals = q[:, None] * prof
        if self.decimals is not None:
            vals = largest_remainder(vals, q, decimals=self.decimals)
        return pd.DataFrame({
            "unique_id": pd.array(np.repeat(self._names[pos], k), dtype="str"),
            "ds": np.tile(self.months_.to_numpy(), len(pos)),
            "value": vals.reshape(-1),
        })


def allocate(
    history: pd.DataFrame,
    total: float,
    *,
    method: str = "historical_share",
    samples: pd.DataFrame | None = None,
    period: Any = None,
    locks: Mapping[str, float] | pd.Series | None = None,
    potential: Any = None,
    capacity: Any = None,
    lookback: int = 12,
    decimals: int | None = 0,
) -> pd.DataFrame:
    """Allocate ``total`` over the units of ``history`` (one-call form of :class:`Allocator`).

    Returns
    -------
    DataFrame
        See :meth:`Allocator.allocate`.

    Examples
    --------
    >>> hist = pd.DataFrame({"unique_id": ["a", "b"], "ds": pd.to_datetime(["2025-12-01"] * 2),
    ...                      "y": [1.0, 3.0]})
    >>> allocate(hist, 101, period=2026, locks={"a": 50})[["unique_id", "quota", "locked"]]
      unique_id  quota  locked
    0         a   50.0    True
    1         b   51.0   False
    """
    alloc = Allocator(period=period, lookback=lookback, decimals=decimals).fit(history, samples)
    return alloc.allocate(total, method=method, locks=locks, potential=potential, capacity=capacity)


def compare_methods(
    allocator: Allocator,
    total: float,
    *,
    methods: Sequence[str] | None = None,
    locks: Any = None,
    potential: Any = None,
    capacity: Any = None,
) -> pd.DataFrame:
    """The same total allocated by several methods, with each unit's attainment probability.

    Methods that cannot run with the given inputs (``potential`` without a
    potential, forecast methods without samples) are skipped.

    Returns
    -------
    DataFrame
        ``method, unique_id, quota, probability, forecast_mean, last_year``.
    """
    if methods is None:
        methods = [m for m in METHODS if not (m == "potential" and potential is None)
                   and not (m in _NEEDS_SAMPLES and allocator.sorted_ is None)]
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanWarning)
        for m in methods:
            r = allocator.allocate(total, method=m, locks=locks, potential=potential, capacity=capacity)
            parts.append(r.assign(method=m)[["method", "unique_id", "quota", "probability",
                                             "forecast_mean", "last_year"]])
    return pd.concat(parts, ignore_index=True)


def fairness_summary(comparison: pd.DataFrame) -> pd.DataFrame:
    """Spread of attainment probabilities per method: lower spread is fairer.

    Returns
    -------
    DataFrame
        ``method, p_min, p_median, p_max, p_spread`` (max - min), ``p_std``.
    """
    check_columns(comparison, ["method", "probability"], name="comparison")
    g = comparison.groupby("method", sort=False)["probability"]
    out = pd.DataFrame({
        "p_min": g.min(), "p_median": g.median(), "p_max": g.max(), "p_std": g.std(ddof=0),
    })
    out.insert(3, "p_spread", out["p_max"] - out["p_min"])
    return out.reset_index()


# ---------------------------------------------------------------------------
# Hierarchies
# ---------------------------------------------------------------------------

def check_hierarchy(mapping: pd.DataFrame, levels: Sequence[str]) -> pd.DataFrame:
    """Check a level mapping (one row per leaf, one column per level, top first).

    A valid mapping is a tree: every leaf has a value at every level (no
    orphans), each node has one parent, and a leaf appears once.

    Returns
    -------
    DataFrame
        The distinct rows of ``mapping[levels]`` with keys as strings.

    Raises
    ------
    SalesplanDataError
        Orphans (a missing parent), a node under two parents, or a cycle (a
        key that appears at two levels on the same path).
    """
    check_frame(mapping, name="hierarchy")
    levels = list(levels)
    check_columns(mapping, levels, name="hierarchy")
    m = mapping[levels].drop_duplicates()
    for lv in levels:
        miss = m[lv].isna()
        if miss.any():
            where = m.loc[miss, levels[-1]].astype("str").tolist()[:5]
            raise SalesplanDataError(
                f"hierarchy has {int(miss.sum())} orphan row(s): no {lv!r} for {where}. Every unit needs a "
                f"parent at each level ({' > '.join(levels)}); fill the {lv!r} column (or drop those units)."
            )
    m = m.astype({lv: "str" for lv in levels})
    for upper, lower in zip(levels[:-1], levels[1:]):
        parents = m.groupby(lower)[upper].nunique()
        multi = parents[parents > 1]
        if len(multi):
            name = multi.index[0]
            seen = sorted(m.loc[m[lower] == name, upper].unique())
            raise SalesplanDataError(
                f"hierarchy is not a tree: {len(multi)} {lower}(s) sit under several {upper}s, e.g. "
                f"{name!r} under {seen}. Give each {lower} one {upper}."
            )
    for i, lv in enumerate(levels):
        for lv2 in levels[i + 1:]:
            same = m[m[lv] == m[lv2]]
            if len(same):
                raise SalesplanDataError(
                    f"hierarchy has a cycle: {same[lv].iloc[0]!r} is both a {lv} and its own {lv2} "
                    f"({len(same)} row(s)). A unit cannot be its own ancestor."
                )
    dup = m[levels[-1]].duplicated()
    if dup.any():
        raise SalesplanDataError(f"hierarchy lists {int(dup.sum())} leaf key(s) twice with different parents.")
    return m.reset_index(drop=True)


def hierarchy_from_edges(edges: pd.DataFrame, *, child: str = "rep_id", parent: str = "manager") -> pd.DataFrame:
    """Check a parent-child edge list (e.g. reps and their managers) and walk it.

    Roots are rows whose parent is empty. A parent that is not itself a
    child is an orphan reference; a chain that comes back to itself is a cycle.

    Returns
    -------
    DataFrame
        ``node, parent, depth, root, path`` (path joined with " > ").

    Raises
    ------
    SalesplanDataError
        Naming the orphans or the cycle.

    Examples
    --------
    >>> e = pd.DataFrame({"rep_id": ["ceo", "a", "b"], "manager": [None, "ceo", "a"]})
    >>> hierarchy_from_edges(e)["depth"].tolist()
    [0, 1, 2]
    """
    check_frame(edges, name="edges")
    check_columns(edges, [child, parent], name="edges")
    nodes = edges[child].astype("str").tolist()
    dup = pd.Series(nodes).duplicated()
    if dup.any():
        raise SalesplanDataError(f"edges list {int(dup.sum())} node(s) twice, e.g. {nodes[int(np.argmax(dup))]!r}; "
                                 "each node needs exactly one parent row.")
    par = {n: (None if pd.isna(p) else str(p)) for n, p in zip(nodes, edges[parent])}
    orphans = [n for n, p in par.items() if p is not None and p not in par]
    if orphans:
        raise SalesplanDataError(
            f"hierarchy has {len(orphans)} orphan(s): their {parent!r} is not a known {child!r}: "
            + ", ".join(f"{n} -> {par[n]}" for n in orphans[:5])
            + f". Add the missing {parent}s as rows (empty {parent} for a root) or fix the ids."
        )
    rows = []
    for n in nodes:
        path = [n]
        seen = {n}
        p = par[n]
        while p is not None:
            if p in seen:
                cycle = path[path.index(p):] + [p] if p in path else path + [p]
                raise SalesplanDataError(
                    f"hierarchy has a cycle: {' -> '.join(cycle)}. Break it by giving one of these an empty "
                    f"{parent!r} (a root) or another {parent}."
                )
            path.append(p)
            seen.add(p)
            p = par[p]
        rows.append((n, par[n], len(path) - 1, path[-1], " > ".join(reversed(path))))
    return pd.DataFrame(rows, columns=["node", "parent", "depth", "root", "path"])


def allocate_hierarchy(
    history: pd.DataFrame,
    total: float,
    *,
    hierarchy: pd.DataFrame,
    levels: Sequence[str],
    samples: pd.DataFrame | None = None,
    method: str = "historical_share",
    period: Any = None,
    locks: Mapping[str, Mapping[str, float]] | None = None,
    potential: Mapping[str, Any] | None = None,
    lookback: int = 12,
    decimals: int | None = 0,
) -> pd.DataFrame:
    """Allocate a total down a hierarchy, level by level.

    The history and samples are given for the leaves (the last level); each
    higher node's history and distribution are the sums over its leaves
    (per sample path). The total is split over the first level, then each
    node's quota over its children, so every level adds up exactly to its
    parent.

    Parameters
    ----------
    history : DataFrame
        ``unique_id, ds, y`` with leaf keys as ``unique_id``.
    hierarchy : DataFrame
        One row per leaf, one column per level (checked by :func:`check_hierarchy`).
    levels : sequence of str
        Column names of ``hierarchy``, top first, e.g. ``["region", "team", "rep_id"]``.
    locks : mapping level -> {key: value}, optional
    potential : mapping level -> Series, optional

    Returns
    -------
    DataFrame
        ``level, unique_id, parent, quota, share, locked, fallback,
        history, last_year, growth, forecast_mean, forecast_lo, forecast_hi,
        probability``; ``parent`` is ``"all"`` for the first level.
    """
    levels = list(levels)
    tree = check_hierarchy(hierarchy, levels)
    leaf = levels[-1]
    hist = history.assign(unique_id=history["unique_id"].astype("str"))
    unknown = sorted(set(hist["unique_id"]) - set(tree[leaf]))
    if unknown:
        warnings.warn(
            f"{len(unknown)} unit(s) of the history are not in the hierarchy and are left out: "
            f"{unknown[:5]}. Add them to the hierarchy to include them.", SalesplanWarning, stacklevel=2,
        )
    locks = dict(locks or {})
    potential = dict(potential or {})
    bad = [k for k in list(locks) + list(potential) if k not in levels]
    if bad:
        raise SalesplanError(f"locks/potential name level(s) {bad} that are not in levels={levels}.")
    parts = []
    parent_quota = {"all": float(total)}
    for depth, lv in enumerate(levels):
        mapping = tree.drop_duplicates(lv).set_index(lv)
        to_node = tree.set_index(leaf)[lv] if lv != leaf else pd.Series(tree[leaf].to_numpy(), index=tree[leaf])
        h = hist.assign(unique_id=hist["unique_id"].map(to_node)).dropna(subset=["unique_id"])
        h = h.groupby(["unique_id", "ds"], as_index=False)["y"].sum()
        s = None
        if samples is not None:
            smp = samples.assign(unique_id=samples["unique_id"].astype("str"))
            smp = smp.assign(unique_id=smp["unique_id"].map(to_node)).dropna(subset=["unique_id"])
            s = smp.groupby(["unique_id", "ds", "sample"], as_index=False)["y"].sum()
        # Nodes with neither history nor samples still need a row.
        nodes = pd.Index(mapping.index.astype("str"))
        extra = nodes.difference(pd.Index(h["unique_id"].unique()))
        if len(extra) and len(h):
            h = pd.concat([h, pd.DataFrame({"unique_id": extra, "ds": h["ds"].min(), "y": 0.0})], ignore_index=True)
        alloc = Allocator(period=period, lookback=lookback, decimals=decimals).fit(h, s)
        parent_of = (mapping[levels[depth - 1]] if depth else pd.Series("all", index=mapping.index)).astype("str")
        level_parts = []
        for par, children in parent_of.groupby(parent_of, sort=True):
            kids = list(children.index.astype("str"))
            lk = {k: v for k, v in (locks.get(lv) or {}).items() if str(k) in kids}
            pot = potential.get(lv)
            r = alloc.allocate(parent_quota[par], method=method, locks=lk or None, potential=pot, units=kids)
            level_parts.append(r.assign(level=lv, parent=par))
        if locks.get(lv):
            known = set(nodes)
            missing = [k for k in locks[lv] if str(k) not in known]
            if missing:
                raise SalesplanError(f"locks at level {lv!r} name unknown key(s) {missing[:5]}.")
        res = pd.concat(level_parts, ignore_index=True)
        parent_quota = dict(zip(res["unique_id"], res["quota"]))
        parts.append(res)
    out = pd.concat(parts, ignore_index=True)
    first = ["level", "unique_id", "parent"]
    return out[first + [c for c in out.columns if c not in first]]
