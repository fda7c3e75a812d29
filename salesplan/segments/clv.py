"""Customer lifetime value: repeat-purchase models (BG/NBD, MBG/NBD, Pareto/NBD) and Gamma-Gamma spend.

The workflow follows Fader, Hardie and Lee (2005) and the ``lifetimes`` package:

1. :func:`summary_from_transactions` turns order lines into one row per customer
   with ``frequency`` (repeat purchase periods), ``recency``, ``T`` and
   ``monetary_value`` for a calibration period, plus holdout columns when an
   ``observation_end`` later than ``calibration_end`` is given. Lines without a
   customer (guest checkouts) are left out with one counted warning.
2. A repeat-purchase model learns how often customers buy and how likely they
   are to have stopped: :class:`BetaGeo` (BG/NBD), :class:`ModifiedBetaGeo`
   (MBG/NBD, which lets customers drop out right after the first purchase too)
   or :class:`ParetoNBD` (dropout at any time). :func:`select_model` fits each on
   a calibration period and scores it on the holdout; ``diagnostics()`` says in
   plain words when a fit sits at a boundary or misses the holdout.
   :class:`GammaGamma` learns how much customers spend per purchase.
3. :func:`customer_lifetime_value` combines both into a discounted value per
   customer; :func:`calibration_holdout` and :func:`repeat_purchase_tracking`
   check the purchase model against the holdout period (the classic
   Fader-Hardie charts, :func:`plot_calibration_holdout` and :func:`plot_tracking`).

BG/NBD, MBG/NBD and Gamma-Gamma are fitted by maximum likelihood on the log of
their (positive) parameters, by trust-region Newton (scipy's ``trust-exact``)
with analytic gradients and Hessians; standard errors come from the inverse of
the analytic Hessian of the log-likelihood in the natural parameters. The
Pareto/NBD likelihood has hypergeometric terms without closed-form parameter
derivatives: it is fitted by BFGS with central-difference gradients.

References
----------
Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your customers"
the easy way: an alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284.
Fader, P. S. and Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
http://brucehardie.com/notes/025/
Batislam, E. P., Denizel, M. and Filiztekin, A. (2007). Empirical validation and
comparison of models for customer base analysis. International Journal of
Research in Marketing 24(3), 201-209.
Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987). Counting your
customers: who are they and what will they do next? Management Science 33(1), 1-24.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from salesplan._validation import (
    check_choice,
    check_columns,
    check_frame,
    check_positive_int,
    describe_rows,
)
from salesplan.errors import (
    SalesplanDataError,
    SalesplanDataWarning,
    SalesplanError,
    SalesplanWarning,
)
from salesplan._validation import drop_guest_lines
from salesplan.segments._pareto import (
    ParetoData,
    pareto_alive,
    pareto_expected,
    pareto_loglik_total,
    pareto_population,
)

__all__ = [
    "summary_from_transactions",
    "BetaGeo",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "GammaGamma",
    "REPEAT_MODELS",
    "repeat_model",
    "select_model",
    "customer_lifetime_value",
    "calibration_holdout",
    "repeat_purchase_tracking",
    "plot_calibration_holdout",
    "plot_tracking",
]

# Months are converted to model periods with the mean Gregorian month, so a
# 12-month horizon is exactly one year whatever the unit.
_PERIODS_PER_MONTH = {"D": 365.25 / 12, "W": 365.25 / (12 * 7), "M": 1.0}

_SUMMARY_COLUMNS = ["frequency", "recency", "T"]

#: Below this many repeat buyers, :meth:`BetaGeo.diagnostics` says the fit is rough.
MIN_REPEAT_BUYERS = 30
#: Mean dropout per purchase (BG/NBD, MBG/NBD) below which nobody "seems to drop out";
#: twice this is the Pareto/NBD threshold on the share dropping out within the mean age T.
NO_DROPOUT_SHARE = 0.01
#: A standard error above this multiple of its estimate means the parameter is not
#: pinned down (its 95% interval spans a factor of more than 10^10).
MAX_RELATIVE_SE = 3.0
# How far from c = 0 of the BG/NBD and MBG/NBD 2F1 predictions are evaluated
# (then extrapolated back, see _RepeatModel._off_pole).
_POLE_GAP = 1e-5
#: BG/NBD or MBG/NBD with a + b below this: the dropout probabilities pile up at 0 and 1.
POLARISED_AB = 0.02
#: Correlation between repeat buyers' frequency and mean spend beyond which the
#: Gamma-Gamma assumption of independence is said to fail.
MAX_SPEND_CORRELATION = 0.3
#: select_model chooses BG/NBD when its holdout error is within this (relative) of the best.
SELECTION_TOLERANCE = 0.02
#: The shortest calibration and holdout periods (in model periods) select_model scores.
MIN_CALIBRATION_PERIODS = 4
MIN_HOLDOUT_PERIODS = 2
#: Relative gap between predicted and actual holdout repeat purchases worth a sentence.
HOLDOUT_GAP_TOLERANCE = 0.10


# ---------------------------------------------------------------------------
# Transactions -> per-customer summary
# ---------------------------------------------------------------------------


def _to_timestamp(value: Any, *, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise SalesplanError(
            f"{name} must be a date such as '1997-09-30', got {value!r} ({exc})."
        ) from None
    if ts is pd.NaT:
        raise SalesplanError(f"{name} must be a date such as '1997-09-30', got {value!r}.")
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def _period_ordinals(dates: pd.Series, freq: str) -> np.ndarray:
    # Period ordinals count whole periods (days, weeks, months) since the epoch,
    # so differences of ordinals are the lifetimes-style time in periods.
    return np.asarray(dates.dt.to_period(freq).array.asi8, dtype=np.int64)


def _inclusive_cutoff(ts: pd.Timestamp) -> pd.Timestamp:
    # A bare date means "to the end of that day": order lines stamped later in
    # the day still belong to the period.
    return ts + pd.Timedelta(days=1) if ts == ts.normalize() else ts + pd.Timedelta(1, "ns")


@dataclass
class _Pairs:
    """Distinct (customer, period) purchases, sorted by customer then period."""

    code: np.ndarray
    period: np.ndarray
    value: np.ndarray | None  # summed per pair

    def customer_starts(self) -> np.ndarray:
        """Position of each customer's first pair."""
        if not len(self.code):
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(np.r_[True, self.code[1:] != self.code[:-1]])


def _per_period(codes: np.ndarray, periods: np.ndarray, values: np.ndarray | None) -> _Pairs:
    """Purchases in the same period are one purchase, with their values summed.

    Plain NumPy (one sort of a combined key) rather than a pandas groupby:
    several times faster on large inputs and without per-call overhead on small ones.
    """
    if not len(codes):
        return _Pairs(codes.astype(np.int64), periods, None if values is None else values)
    low = periods.min()
    key = codes.astype(np.int64) * (periods.max() - low + 1) + (periods - low)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    pos = order[starts]
    value = None if values is None else np.add.reduceat(values[order], starts)
    return _Pairs(codes[pos].astype(np.int64), periods[pos], value)


@dataclass
class _Prepared:
    """Validated transactions as arrays: customer codes, period ordinals, values."""

    codes: np.ndarray
    uniques: pd.Index
    periods: np.ndarray
    values: np.ndarray | None
    in_cal: np.ndarray
    in_hold: np.ndarray
    cal_end: pd.Timestamp
    obs_end: pd.Timestamp
    cal_period: int
    obs_period: int
    multiplier: float


def _prepare(
    transactions: Any,
    *,
    customer_col: str,
    date_col: str,
    value_col: str | None,
    calibration_end: Any,
    observation_end: Any,
    freq: str,
    freq_multiplier: float,
    caller: str,
) -> _Prepared:
    check_frame(transactions, name="transactions")
    needed = [customer_col, date_col] + ([value_col] if value_col is not None else [])
    check_columns(transactions, needed, name="transactions")
    try:
        pd.Timestamp("2000-01-01").to_period(freq)
    except (TypeError, ValueError):
        raise SalesplanError(
            f"freq must be a pandas period alias such as 'D', 'W' or 'M', got {freq!r}."
        ) from None
    if (
        not isinstance(freq_multiplier, (int, float, np.integer, np.floating))
        or isinstance(freq_multiplier, bool)
        or not np.isfinite(freq_multiplier)
        or freq_multiplier <= 0
    ):
        raise SalesplanError(
            f"freq_multiplier must be a positive number, got {freq_multiplier!r}. "
            "Use e.g. freq='D', freq_multiplier=7 for weeks counted in days / 7."
        )

    transactions = drop_guest_lines(
        transactions, customer_col=customer_col, value_col=value_col, caller=caller, stacklevel=3
    )
    customers = transactions[customer_col]
    raw_dates = transactions[date_col]
    try:
        dates = pd.to_datetime(raw_dates)
    except (TypeError, ValueError) as exc:
        raise SalesplanDataError(
            f"transactions column {date_col!r} could not be read as dates ({exc}). "
            "Convert it first, e.g. pd.to_datetime(df[col], format='%Y%m%d')."
        ) from None
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    bad = dates.isna().to_numpy()
    if bad.any():
        raise SalesplanDataError(
            f"transactions has {int(bad.sum())} missing date(s) in {date_col!r} "
            f"({describe_rows(transactions.index[bad])}). Drop or repair those rows first."
        )
    values = None
    if value_col is not None:
        vals = transactions[value_col]
        if not pd.api.types.is_numeric_dtype(vals) or pd.api.types.is_bool_dtype(vals):
            raise SalesplanDataError(
                f"transactions column {value_col!r} must be numeric (money), got dtype "
                f"{vals.dtype}. Convert it, e.g. pd.to_numeric(df[{value_col!r}]), or pass "
                "value_col=None to leave out the monetary columns."
            )
        values = vals.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise SalesplanDataError(
                f"transactions has {int(bad.sum())} missing or infinite value(s) in {value_col!r} "
                f"({describe_rows(transactions.index[bad])}). Drop or fill those rows first, "
                f"e.g. transactions.dropna(subset=[{value_col!r}])."
            )

    first_date, last_date = dates.min(), dates.max()
    if calibration_end is None:
        cal_end = (
            _to_timestamp(observation_end, name="observation_end")
            if observation_end is not None
            else last_date
        )
    else:
        cal_end = _to_timestamp(calibration_end, name="calibration_end")
    obs_end = cal_end if observation_end is None else _to_timestamp(observation_end, name="observation_end")
    if cal_end < first_date.normalize():
        raise SalesplanError(
            f"calibration_end {cal_end.date()} is before the first purchase in the data "
            f"({first_date.date()}), so no customer falls in the calibration period. "
            f"Pick a calibration_end between {first_date.date()} and {last_date.date()}."
        )
    if obs_end < cal_end:
        raise SalesplanError(
            f"observation_end {obs_end.date()} is before calibration_end {cal_end.date()}. "
            "The holdout period runs from calibration_end to observation_end: pass a later "
            "observation_end, or leave it out for a calibration summary only."
        )

    cal_cut, obs_cut = _inclusive_cutoff(cal_end), _inclusive_cutoff(obs_end)
    date_values = dates.to_numpy()
    in_cal = date_values < cal_cut.to_datetime64()
    if not in_cal.any():
        raise SalesplanError(
            f"calibration_end {cal_end} is before the first purchase in the data "
            f"({first_date}), so no customer falls in the calibration period. "
            f"Pick a later calibration_end."
        )
    codes, uniques = pd.factorize(customers, sort=True)
    return _Prepared(
        codes=codes,
        uniques=uniques,
        periods=_period_ordinals(dates, freq),
        values=values,
        in_cal=in_cal,
        in_hold=~in_cal & (date_values < obs_cut.to_datetime64()),
        cal_end=cal_end,
        obs_end=obs_end,
        cal_period=cal_end.to_period(freq).ordinal,
        obs_period=obs_end.to_period(freq).ordinal,
        multiplier=float(freq_multiplier),
    )


def summary_from_transactions(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    value_col: str | None = "revenue",
    calibration_end: Any = None,
    observation_end: Any = None,
    freq: str = "W",
    freq_multiplier: float = 1,
) -> pd.DataFrame:
    """Summarise transactions per customer for the BG/NBD and Gamma-Gamma models.

    Purchases in the same period (``freq``) are one purchase, with their values
    summed, exactly as ``lifetimes.utils.summary_data_from_transaction_data``
    does. Time is counted in whole periods from each customer's first purchase
    and divided by ``freq_multiplier``: Fader and Hardie's CDNOW weeks
    (days / 7) are ``freq="D", freq_multiplier=7``, while ``freq="W"`` counts
    calendar weeks.

    Parameters
    ----------
    transactions : DataFrame
        One row per order (line); not modified.
    customer_col, date_col : str
        Customer key and purchase date columns.
    value_col : str or None
        Money column; ``None`` leaves out the monetary columns.
    calibration_end : date-like, optional
        Last day of the calibration period (inclusive). Defaults to
        ``observation_end`` when given, else the last purchase date.
    observation_end : date-like, optional
        Last day of the holdout period (inclusive). When later than
        ``calibration_end`` the holdout columns are added. Defaults to
        ``calibration_end``. Later purchases are ignored.
    freq : str
        Period in which purchases count once: ``"D"``, ``"W"``, ``"M"`` or any
        pandas period alias.
    freq_multiplier : float
        Divides the period counts (``freq="D", freq_multiplier=7`` gives weeks
        with fractions).

    Returns
    -------
    DataFrame
        One row per customer with a first purchase on or before
        ``calibration_end``, sorted by customer:

        - ``<customer_col>``: the customer key;
        - ``frequency``: number of repeat purchase periods (int);
        - ``recency``: time from the first to the last purchase;
        - ``T``: time from the first purchase to ``calibration_end``;
        - ``monetary_value``: mean value of the repeat purchase periods
          (0 for customers without repeat purchases), when ``value_col`` is set;
        - ``frequency_holdout``, ``monetary_value_holdout`` (if ``value_col``),
          ``duration_holdout``: purchase periods, their mean value and the
          length of the holdout period, when ``observation_end > calibration_end``.

    Raises
    ------
    SalesplanDataError
        Missing columns, missing or unreadable dates, customers or values.
    SalesplanError
        Bad ``freq``/``freq_multiplier``, a ``calibration_end`` before the first
        purchase, or an ``observation_end`` before ``calibration_end``.

    Examples
    --------
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "order_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-15", "2024-01-08"]),
    ...     "revenue": [10.0, 5.0, 20.0, 7.0],
    ... })
    >>> summary_from_transactions(tx, calibration_end="2024-01-29", freq="D", freq_multiplier=7)
      customer_id  frequency  recency    T  monetary_value
    0           a          1      2.0  4.0            20.0
    1           b          0      0.0  3.0             0.0
    """
    prep = _prepare(
        transactions,
        customer_col=customer_col,
        date_col=date_col,
        value_col=value_col,
        calibration_end=calibration_end,
        observation_end=observation_end,
        freq=freq,
        freq_multiplier=freq_multiplier,
        caller="summary_from_transactions",
    )
    codes, uniques, ords, values = prep.codes, prep.uniques, prep.periods, prep.values
    in_cal, cal_ord = prep.in_cal, prep.cal_period

    cal = _per_period(codes[in_cal], ords[in_cal], None if values is None else values[in_cal])
    starts = cal.customer_starts()
    n_pairs = np.diff(np.r_[starts, len(cal.code)])
    kept_codes = cal.code[starts]
    first = cal.period[starts]
    last = cal.period[np.r_[starts[1:], len(cal.code)] - 1]
    out = pd.DataFrame({customer_col: uniques.take(kept_codes)})
    out["frequency"] = (n_pairs - 1).astype(np.int64)
    out["recency"] = (last - first) / prep.multiplier
    out["T"] = (cal_ord - first) / prep.multiplier
    if cal.value is not None:
        # The first period's purchases are excluded from the mean, as in lifetimes.
        repeat_total = np.add.reduceat(cal.value, starts) - cal.value[starts]
        freq_arr = out["frequency"].to_numpy()
        out["monetary_value"] = np.where(freq_arr > 0, repeat_total / np.maximum(freq_arr, 1), 0.0)

    if prep.obs_end > prep.cal_end:
        in_hold = prep.in_hold
        hold = _per_period(codes[in_hold], ords[in_hold], None if values is None else values[in_hold])
        size = len(uniques)
        counts = np.bincount(hold.code, minlength=size)[kept_codes]
        out["frequency_holdout"] = counts.astype(np.int64)
        if hold.value is not None:
            sums = np.bincount(hold.code, weights=hold.value, minlength=size)[kept_codes]
            out["monetary_value_holdout"] = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        out["duration_holdout"] = (prep.obs_period - cal_ord) / prep.multiplier
    return out


# ---------------------------------------------------------------------------
# Shared model plumbing
# ---------------------------------------------------------------------------


def _check_summary(summary: Any, columns: list[str], *, name: str = "summary") -> pd.DataFrame:
    check_frame(summary, name=name)
    check_columns(
        summary,
        columns,
        name=name,
        hint="Build it with salesplan.segments.clv.summary_from_transactions(transactions, ...).",
    )
    for col in columns:
        values = summary[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise SalesplanDataError(
                f"{name} column {col!r} must be numeric, got dtype {values.dtype}."
            )
        arr = _as_float(values)
        bad = ~np.isfinite(arr)
        if bad.any():
            raise SalesplanDataError(
                f"{name} has {int(bad.sum())} missing or infinite value(s) in {col!r} "
                f"({describe_rows(summary.index[bad])}). Drop those customers or rebuild the "
                "summary with summary_from_transactions."
            )
    for col in [c for c in columns if c in ("frequency", "recency", "T", "duration_holdout")]:
        arr = summary[col].to_numpy(dtype=float)
        bad = arr < 0
        if bad.any():
            raise SalesplanDataError(
                f"{name} has {int(bad.sum())} negative value(s) in {col!r} "
                f"({describe_rows(summary.index[bad])}, e.g. {arr[bad][0]!r}); counts and "
                "times are never negative. Check how the summary was built."
            )
    if "frequency" in columns:
        arr = summary["frequency"].to_numpy(dtype=float)
        bad = arr != np.round(arr)
        if bad.any():
            raise SalesplanDataError(
                f"{name} has {int(bad.sum())} non-integer frequency value(s) "
                f"({describe_rows(summary.index[bad])}, e.g. {arr[bad][0]!r}); frequency counts "
                "repeat purchase periods."
            )
    if "recency" in columns and "T" in columns:
        rec, age = summary["recency"].to_numpy(dtype=float), summary["T"].to_numpy(dtype=float)
        bad = rec > age + 1e-9
        if bad.any():
            raise SalesplanDataError(
                f"{name} has {int(bad.sum())} customer(s) with recency greater than T "
                f"({describe_rows(summary.index[bad])}); the last purchase cannot be after the "
                "end of the calibration period. Check calibration_end."
            )
    return summary


def _as_float(values: pd.Series) -> np.ndarray:
    # NumPy-backed columns convert directly; nullable ones need na_value.
    if isinstance(values.dtype, np.dtype):
        return np.asarray(values, dtype=float)
    return values.to_numpy(dtype=float, na_value=np.nan)


def _keyed(summary: pd.DataFrame, customer_col: str, **columns: Any) -> pd.DataFrame:
    """A result frame on the summary's index, led by the customer key when present."""
    out = pd.DataFrame(index=summary.index)
    if customer_col in summary.columns:
        out[customer_col] = summary[customer_col]
    for name, values in columns.items():
        out[name] = values
    return out


def _minimize_newton(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]],
    x0: np.ndarray,
    *,
    max_iter: int,
) -> tuple[np.ndarray, float, int, bool, str]:
    """Trust-region Newton (scipy's ``trust-exact``) with an analytic Hessian.

    ``fun`` returns value, gradient and Hessian together; they are cached per
    point because scipy asks for them in separate calls and the expensive part
    (one exp and log1p per customer) is shared.
    """
    cache: dict[bytes, tuple[float, np.ndarray, np.ndarray]] = {}

    def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        key = theta.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = fun(theta)
        return cache[key]

    res = optimize.minimize(
        lambda t: evaluate(t)[0],
        x0,
        jac=lambda t: evaluate(t)[1],
        hess=lambda t: evaluate(t)[2],
        method="trust-exact",
        options={"maxiter": max_iter, "gtol": 1e-9},
    )
    grad = evaluate(res.x)[1]
    converged = bool(np.isfinite(res.fun) and np.max(np.abs(grad)) < 1e-6)
    return res.x, float(res.fun), int(res.nit), converged, str(res.message)


def _check_optimiser(model: str, fun: float, converged: bool, message: str) -> None:
    """Raise when the optimiser failed, warn when it stopped short (called from ``fit``)."""
    if not np.isfinite(fun):
        raise SalesplanError(
            f"{model} fit failed: the optimiser stopped with {message!r}. "
            f"Try a small penalizer, e.g. {model}(penalizer=0.001)."
        )
    if not converged:
        warnings.warn(
            f"{model}: the optimiser stopped before converging ({message}); the "
            "estimates may be imprecise. A small penalizer often helps.",
            SalesplanWarning,
            stacklevel=3,
        )


def _covariance(
    params: np.ndarray, names: list[str], model: str, hess: np.ndarray, *, stacklevel: int = 3
) -> pd.DataFrame:
    """Inverse of minus the (analytic) Hessian of the total log-likelihood."""
    k = len(params)
    hess = (hess + hess.T) / 2
    try:
        cov = np.linalg.inv(-hess)
    except np.linalg.LinAlgError:
        cov = np.full((k, k), np.nan)
    if not np.all(np.isfinite(np.diag(cov))) or np.any(np.diag(cov) <= 0):
        warnings.warn(
            f"{model}: the Hessian of the log-likelihood is not negative definite at the "
            "estimate, so standard errors are not available (reported as NaN). The data may "
            "not identify every parameter; a small penalizer can help.",
            SalesplanWarning,
            stacklevel=stacklevel,
        )
        cov = np.where(np.isfinite(cov), cov, np.nan)
    return pd.DataFrame(cov, index=names, columns=names)


def _summary_frame(params: pd.Series, cov: pd.DataFrame) -> pd.DataFrame:
    est = params.to_numpy(dtype=float)
    var = np.diag(cov.to_numpy())
    se = np.sqrt(np.where(var > 0, var, np.nan))
    # Wald interval of log(parameter): the parameters are positive, so the
    # interval is too (it is the one the fitting scale gives).
    half = 1.959963984540054 * se / est
    with np.errstate(over="ignore"):
        upper = est * np.exp(half)
    return pd.DataFrame(
        {
            "parameter": list(params.index),
            "estimate": est,
            "std_error": se,
            "lower_95": est * np.exp(-half),
            "upper_95": upper,
        }
    )


def _check_penalizer(penalizer: Any) -> float:
    try:
        value = float(penalizer)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value < 0 or isinstance(penalizer, bool):
        raise SalesplanError(f"penalizer must be a number >= 0, got {penalizer!r}.")
    return value


class _Fitted:
    """Common helpers of the fitted models."""

    params_: pd.Series
    _covariance: pd.DataFrame

    @classmethod
    def from_params(cls, **params: float):
        """A model with the given parameters, e.g. published ones, without fitting.

        ``loglik_`` and the standard errors are NaN.

        >>> BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426).params_["a"]
        np.float64(0.793)
        """
        names = cls._names  # type: ignore[attr-defined]
        if sorted(params) != sorted(names):
            raise SalesplanError(
                f"{cls.__name__}.from_params needs exactly the parameters {names}, "
                f"got {sorted(params)}."
            )
        values = np.array([params[k] for k in names], dtype=float)
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise SalesplanError(
                f"{cls.__name__} parameters must be positive numbers, got {params}."
            )
        model = cls()
        model.params_ = pd.Series(values, index=names, name="estimate")
        model.loglik_ = float("nan")  # type: ignore[attr-defined]
        model._covariance = pd.DataFrame(np.nan, index=names, columns=names)
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise SalesplanError(
                f"This {type(self).__name__} is not fitted yet; call fit(summary) first."
            )

    def summary(self) -> pd.DataFrame:
        """Fitted parameters with standard errors.

        Returns
        -------
        DataFrame
            ``parameter``, ``estimate``, ``std_error`` (from the inverse Hessian of
            the log-likelihood) and ``lower_95``/``upper_95`` (Wald interval on the
            log scale, so it stays positive).
        """
        self._check_fitted()
        return _summary_frame(self.params_, self._covariance)

    def __repr__(self) -> str:
        settings = f"penalizer={self.penalizer!r}"  # type: ignore[attr-defined]
        if hasattr(self, "params_"):
            fitted = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}({settings}) fitted: {fitted}, loglik={self.loglik_:.2f}"  # type: ignore[attr-defined]
        return f"{type(self).__name__}({settings})"


# ---------------------------------------------------------------------------
# BG/NBD
# ---------------------------------------------------------------------------


class _BGData:
    """The summary in the form the likelihood needs.

    Frequencies, ages and recencies take few distinct values (they are whole
    periods), so logs and reciprocals are computed once per distinct value and
    gathered; only the mixing term of alive/dead needs one exp and log1p per
    repeat buyer.
    """

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray):
        self.n = float(len(x))
        zero = x == 0
        self.T0, self.c0 = _distinct(T[zero])
        rep = ~zero
        x1, tx1, T1 = x[rep], tx[rep], T[rep]
        self.n1 = len(x1)
        self.x1 = x1
        self.x_inv, self.xu, self.cu = _distinct(x1, inverse=True)
        self.T_inv, self.Tu, self.T_count = _distinct(T1, inverse=True)
        # Summed frequency per distinct T of repeat buyers, so that
        # sum((r + x) * log(alpha + T)) is a dot product over distinct T.
        self.T_sumx = np.bincount(self.T_inv, weights=x1, minlength=len(self.Tu))
        self.tx_inv, self.txu, _ = _distinct(tx1, inverse=True)


def _distinct(values: np.ndarray, *, inverse: bool = False) -> tuple[np.ndarray, ...]:
    """Distinct values and their counts (and each value's position among them).

    Hash-based (pandas.factorize), several times faster than np.unique's sort;
    the order of the distinct values does not matter to the likelihood.
    """
    codes, uniques = pd.factorize(values)
    counts = np.bincount(codes, minlength=len(uniques)).astype(float)
    uniques = np.asarray(uniques, dtype=float)
    return (codes, uniques, counts) if inverse else (uniques, counts)


def _vdot(u: np.ndarray, v: np.ndarray) -> float:
    """sum(u * v) without BLAS: OpenBLAS hands dot products of more than about
    10,000 elements to its thread pool, whose wake-up costs milliseconds per
    call on a busy machine, far more than the product itself."""
    return float(np.multiply(u, v).sum())


def _trigamma(x: Any) -> np.ndarray:
    # polygamma(1, x) == zeta(2, x); the Hurwitz zeta is a plain ufunc, while
    # scipy's polygamma wrapper costs ~0.1 ms per call.
    return special.zeta(2.0, x)


def _bg_loglik(
    params: np.ndarray, d: _BGData, order: int = 1
) -> tuple[float, np.ndarray, np.ndarray]:
    """Total BG/NBD log-likelihood with its gradient (order >= 1) and Hessian
    (order 2) in the natural parameters (r, alpha, a, b).

    Per customer (Fader, Hardie and Lee 2005, eq. 6):
    ln G(r+x) - ln G(r) + r ln alpha + ln B(a, b+x) - ln B(a, b) - (r+x) ln(alpha+T)
    + softplus(delta), delta = ln(a / (b+x-1)) + (r+x) ln((alpha+T) / (alpha+t_x))
    for repeat buyers. Only softplus needs an exp and a log1p per customer; the
    derivatives reuse them, so the Hessian costs a few multiplications more.
    """
    r, alpha, a, b = params
    xu, cu = d.xu, d.cu
    log_alpha = np.log(alpha)
    # Frequency-only terms, zero when x = 0, so summed over the distinct x > 0.
    ll = _vdot(
        cu,
        special.gammaln(r + xu) - special.gammaln(r)
        + special.gammaln(b + xu) - special.gammaln(b)
        + special.gammaln(a + b) - special.gammaln(a + b + xu),
    )
    ll += d.n * r * log_alpha
    inv_aT0 = 1.0 / (alpha + d.T0)
    log_aT0 = np.log(alpha + d.T0)
    ll -= r * _vdot(d.c0, log_aT0)
    log_aTu = np.log(alpha + d.Tu)
    weight_T = r * d.T_count + d.T_sumx
    ll -= _vdot(weight_T, log_aTu)
    gap = log_aTu[d.T_inv] - np.log(alpha + d.txu)[d.tx_inv]
    k_u = 1.0 / (b + xu - 1)
    delta = np.log(a) + np.log(k_u)[d.x_inv] + (r + d.x1) * gap
    e = np.exp(-np.abs(delta))
    ll += np.sum(np.maximum(delta, 0.0) + np.log1p(e))
    if order < 1:
        return float(ll), np.empty(0), np.empty((0, 0))
    w = np.where(delta >= 0, 1.0, e) / (1.0 + e)  # expit(delta): P(dropped out | history)
    rx = r + d.x1
    kx = k_u[d.x_inv]
    inv_aTu = 1.0 / (alpha + d.Tu)
    inv_atxu = 1.0 / (alpha + d.txu)
    inv_gap = inv_aTu[d.T_inv] - inv_atxu[d.tx_inv]  # d gap / d alpha
    d_alpha = rx * inv_gap  # d delta / d alpha
    dig_ab = special.digamma(a + b) - special.digamma(a + b + xu)
    w_sum = w.sum()
    grad = np.array(
        [
            _vdot(cu, special.digamma(r + xu) - special.digamma(r))
            + d.n * log_alpha - _vdot(d.c0, log_aT0) - _vdot(d.T_count, log_aTu)
            + _vdot(w, gap),
            d.n * r / alpha - r * _vdot(d.c0, inv_aT0) - _vdot(weight_T, inv_aTu)
            + _vdot(w, d_alpha),
            _vdot(cu, dig_ab) + w_sum / a,
            _vdot(cu, special.digamma(b + xu) - special.digamma(b) + dig_ab) - _vdot(w, kx),
        ]
    )
    if order < 2:
        return float(ll), grad, np.empty((0, 0))
    # Hessian: the smooth terms, then softplus(delta) contributes
    # sum w(1-w) grad(delta) grad(delta)' + w hess(delta).
    tri_ab = _trigamma(a + b) - _trigamma(a + b + xu)
    h_ab = _vdot(cu, tri_ab)
    hess = np.zeros((4, 4))
    hess[0, 0] = _vdot(cu, _trigamma(r + xu) - _trigamma(r))
    hess[0, 1] = d.n / alpha - _vdot(d.c0, inv_aT0) - _vdot(d.T_count, inv_aTu)
    hess[1, 1] = (
        -d.n * r / alpha**2 + r * _vdot(d.c0, inv_aT0**2) + _vdot(weight_T, inv_aTu**2)
    )
    hess[2, 2] = h_ab
    hess[2, 3] = h_ab
    hess[3, 3] = _vdot(cu, _trigamma(b + xu) - _trigamma(b)) + h_ab
    s = e / (1.0 + e) ** 2  # w (1 - w), stable on both signs of delta
    s_gap, s_alpha, s_k = s * gap, s * d_alpha, s * kx
    sum_s = s.sum()
    d2_alpha = rx * (inv_atxu[d.tx_inv] ** 2 - inv_aTu[d.T_inv] ** 2)  # d2 delta / d alpha2
    hess[0, 0] += _vdot(s_gap, gap)
    hess[0, 1] += _vdot(s_gap, d_alpha) + _vdot(w, inv_gap)
    hess[0, 2] += s_gap.sum() / a
    hess[0, 3] -= _vdot(s_gap, kx)
    hess[1, 1] += _vdot(s_alpha, d_alpha) + _vdot(w, d2_alpha)
    hess[1, 2] += s_alpha.sum() / a
    hess[1, 3] -= _vdot(s_alpha, kx)
    hess[2, 2] += (sum_s - w_sum) / a**2
    hess[2, 3] -= s_k.sum() / a
    hess[3, 3] += _vdot(s_k, kx) + _vdot(w * kx, kx)
    hess = np.triu(hess) + np.triu(hess, 1).T
    return float(ll), grad, hess


def _bg_expected(params: np.ndarray, t: Any, x: Any, tx: Any, T: Any) -> np.ndarray:
    """E[X(t) | x, t_x, T] (eq. 10 of Fader, Hardie and Lee 2005), broadcast over inputs."""
    r, alpha, a, b = params
    t, x, tx, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, x, tx, T)))
    z = t / (alpha + T + t)
    # Euler's transformation of 2F1(r+x, b+x; a+b+x-1; z): its first two
    # arguments no longer grow with x, which keeps scipy's series accurate for
    # heavy buyers; the (1-z)^(c-a-b) factor folds into (1-z)^(a-1).
    hyp = special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        second = 1.0 - hyp * np.exp((a - 1) * np.log1p(-z))
        numerator = (a + b + x - 1) / (a - 1) * second
        log_odds = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (
            np.log(alpha + T) - np.log(alpha + tx)
        )
        denominator = 1.0 + np.where(x > 0, np.exp(log_odds), 0.0)
        out = numerator / denominator
    return np.where(t > 0, np.maximum(out, 0.0), 0.0)


class _RepeatModel(_Fitted):
    """What the repeat-purchase models share: predictions, checks and diagnostics.

    A subclass supplies ``_names``, ``_label`` and the array formulas
    ``_expected_arrays`` (conditional expected purchases), ``_alive_arrays`` and
    ``_population_arrays``; everything a user calls is defined here once, so
    :func:`customer_lifetime_value`, :func:`calibration_holdout`,
    :func:`repeat_purchase_tracking` and :func:`select_model` take any of them.
    """

    _label = ""
    _names: list[str] = []

    def __init__(self, *, penalizer: float = 0.0, max_iter: int = 1000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    # -- formulas supplied by each model ------------------------------------
    def _expected_arrays(self, params, t, x, tx, T) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _alive_arrays(self, params, x, tx, T) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _population_arrays(self, params, t) -> np.ndarray:
        zero = np.zeros_like(t)
        return self._expected_arrays(params, t, zero, zero, zero)

    def _dropout_sentence(self) -> tuple[str, str] | None:  # pragma: no cover
        """(check, sentence) when the dropout part of the fit sits at a boundary, else None."""
        raise NotImplementedError

    # -- shared plumbing ------------------------------------------------------
    def _validated(self, summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """frequency, recency and T of a summary to fit, after the checks every model needs."""
        _check_summary(summary, _SUMMARY_COLUMNS)
        x = summary["frequency"].to_numpy(dtype=float)
        tx = summary["recency"].to_numpy(dtype=float)
        T = summary["T"].to_numpy(dtype=float)
        name = type(self).__name__
        if not (x > 0).any():
            raise SalesplanDataError(
                f"summary has no repeat buyers: frequency is 0 for all {len(x)} customer(s), so "
                f"the {self._label} dropout parameters cannot be estimated ({name} needs customers "
                "who bought at least twice). Use a longer calibration period (a later "
                "calibration_end) or more customers."
            )
        if not (T > 0).any():
            raise SalesplanDataError(
                f"summary has T = 0 for all {len(x)} customer(s): nobody was observed after "
                "their first purchase. Use a later calibration_end."
            )
        return x, tx, T

    def _store_fit(self, params, loglik, hess, n_iter, x, T) -> None:
        self.params_ = pd.Series(params, index=self._names, name="estimate")
        self.loglik_ = float(loglik)
        self.n_customers_ = int(len(x))
        self.n_repeat_customers_ = int((x > 0).sum())
        self.n_iter_ = int(n_iter)
        self.mean_T_ = float(np.mean(T))
        self._covariance = _covariance(params, self._names, type(self).__name__, hess, stacklevel=4)

    def _arrays(self, summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._check_fitted()
        _check_summary(summary, _SUMMARY_COLUMNS)
        return (
            summary["frequency"].to_numpy(dtype=float),
            summary["recency"].to_numpy(dtype=float),
            summary["T"].to_numpy(dtype=float),
        )

    def predict_purchases(
        self, summary: pd.DataFrame, t: Any, *, customer_col: str = "customer_id"
    ) -> pd.DataFrame:
        """Expected number of purchases of each customer in the next ``t`` periods.

        Parameters
        ----------
        summary : DataFrame
            ``frequency``, ``recency``, ``T`` per customer (other columns are ignored).
        t : float or array-like
            Horizon in the summary's time unit; a scalar, or one value per customer.

        Returns
        -------
        DataFrame
            On the summary's index: ``<customer_col>`` (when present) and
            ``expected_purchases``.
        """
        x, tx, T = self._arrays(summary)
        horizon = _check_horizon(t, len(summary))
        return _keyed(summary, customer_col, expected_purchases=self._expected(horizon, x, tx, T))

    #: BG/NBD and MBG/NBD: their expectation has a 2F1 with c = a + b + x - shift,
    #: a removable singularity at c = 0 (None: no such term).
    _pole_shift: float | None = None

    def _expected(self, t: Any, x: Any, tx: Any, T: Any) -> np.ndarray:
        t, x, tx, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, x, tx, T)))
        params = self.params_.to_numpy()
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            out = np.array(self._expected_arrays(params, t, x, tx, T), dtype=float)
            if self._pole_shift is not None:
                self._off_pole(out, params, t, x, tx, T)
        return np.where(t > 0, np.maximum(out, 0.0), 0.0)

    def _off_pole(self, out, params, t, x, tx, T) -> None:
        """Replace values next to c = a + b + x - shift = 0 by a linear extrapolation.

        At c = 0 (e.g. x = 1 when a fit sends a and b to 0, or x = 0 when
        a + b = 1) the expectation is finite but scipy's 2F1 loses every digit
        near it. Scaling a and b together (their ratio, the mean dropout, stays)
        to put c at 1e-5 and 2e-5 gives two accurate values to extrapolate from.
        """
        r, alpha, a, b = params
        c = a + b + x - self._pole_shift
        near = np.abs(c) < _POLE_GAP
        if not near.any():
            return
        sub = [v[near] for v in (t, x, tx, T)]
        values = []
        for target in (_POLE_GAP, 2 * _POLE_GAP):
            scale = (target + self._pole_shift - sub[1]) / (a + b)
            values.append(self._expected_arrays((r, alpha, a * scale, b * scale), *sub))
        out[near] = values[0] + (c[near] - _POLE_GAP) * (values[1] - values[0]) / _POLE_GAP

    def probability_alive(
        self, summary: pd.DataFrame, *, customer_col: str = "customer_id"
    ) -> pd.DataFrame:
        """Probability that each customer is still active at the end of calibration.

        Returns
        -------
        DataFrame
            On the summary's index: ``<customer_col>`` (when present) and
            ``probability_alive`` in [0, 1].
        """
        x, tx, T = self._arrays(summary)
        with np.errstate(over="ignore", divide="ignore"):
            prob = self._alive_arrays(self.params_.to_numpy(), x, tx, T)
        return _keyed(summary, customer_col, probability_alive=prob)

    def expected_repeat_purchases(self, t: Any) -> pd.DataFrame:
        """Population mean number of repeat purchases by time ``t`` after the first, E[X(t)].

        Multiply by the number of customers acquired at each date and add up to
        draw the cumulative repeat-sales tracking chart.

        Returns
        -------
        DataFrame
            ``t`` and ``expected_purchases``, one row per value of ``t``.
        """
        self._check_fitted()
        ts = np.atleast_1d(np.asarray(t, dtype=float))
        if ts.ndim != 1 or not np.all(np.isfinite(ts)) or np.any(ts < 0):
            raise SalesplanError(f"t must be one or more finite times >= 0, got {t!r}.")
        return pd.DataFrame({"t": ts, "expected_purchases": self._population(ts)})

    def _population(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if self._pole_shift is not None:
            zero = np.zeros_like(t)
            return self._expected(t, zero, zero, zero)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            out = self._population_arrays(self.params_.to_numpy(), t)
        return np.where(t > 0, np.maximum(out, 0.0), 0.0)

    def diagnostics(self, summary: pd.DataFrame | None = None) -> pd.DataFrame:
        """Plain sentences on where the fit should not be trusted as it stands.

        Checks, each giving at most one sentence:

        - ``no_dropout``: the fitted dropout sits at its boundary (BG/NBD or
          MBG/NBD with ``a / (a + b)`` below 1%, i.e. ``a -> 0`` or
          ``b -> infinity``; Pareto/NBD where fewer than 2% of customers would
          drop out within the mean customer age ``T``, i.e. ``s -> 0`` or
          ``beta -> infinity``);
        - ``polarised_dropout`` (BG/NBD, MBG/NBD with ``a + b`` below
          :data:`POLARISED_AB`): the dropout probabilities pile up at 0 and 1,
          so customers either drop out at once or never;
        - ``not_identified``: no standard errors, or one larger than
          :data:`MAX_RELATIVE_SE` times its estimate (the likelihood is flat
          in some direction);
        - ``few_repeat_buyers``: fewer than :data:`MIN_REPEAT_BUYERS` customers
          with a repeat purchase in the fitted data;
        - ``holdout_gap`` (when ``summary`` has holdout columns): predicted
          holdout repeat purchases differ from the actual ones by more than
          :data:`HOLDOUT_GAP_TOLERANCE`;
        - ``no_holdout_purchases``: the holdout has no repeat purchase to compare with;
        - ``degenerate_fit``: predictions cannot be computed at the fitted
          parameters (they ran off to extremes).

        Parameters
        ----------
        summary : DataFrame, optional
            The calibration summary with ``frequency_holdout`` and
            ``duration_holdout`` (from :func:`summary_from_transactions` with an
            ``observation_end``), for the holdout check.

        Returns
        -------
        DataFrame
            ``model`` (the model's label, e.g. ``"BG/NBD"``), ``check`` and
            ``message``; no rows when nothing was found.
        """
        self._check_fitted()
        rows: list[tuple[str, str]] = []
        dropout = self._dropout_sentence()
        if dropout:
            rows.append(dropout)
        if hasattr(self, "n_iter_") and _not_identified(self):
            rows.append((
                "not_identified",
                f"The data do not pin down every {self._label} parameter (no standard errors, or "
                "errors many times the estimates): "
                "several quite different fits explain them about equally well, so treat "
                "probability-alive and CLV as rough.",
            ))
        n_repeat = getattr(self, "n_repeat_customers_", None)
        if n_repeat is not None and n_repeat < MIN_REPEAT_BUYERS:
            rows.append((
                "few_repeat_buyers",
                f"Only {n_repeat} of {self.n_customers_} customers bought more than once in the "
                f"fitted period (at least {MIN_REPEAT_BUYERS} are needed to tell how often "
                "customers drop out): treat probability-alive and CLV as rough.",
            ))
        if summary is not None:
            rows.extend(_holdout_rows(self, summary))
        return pd.DataFrame(
            {"model": self._label, "check": [r[0] for r in rows], "message": [r[1] for r in rows]},
            columns=["model", "check", "message"],
        )


def _not_identified(model: _Fitted) -> bool:
    """No standard error, or one above MAX_RELATIVE_SE times its estimate."""
    var = np.diag(model._covariance.to_numpy())
    if not np.all(np.isfinite(var) & (var > 0)):
        return True
    return bool(np.any(np.sqrt(var) > MAX_RELATIVE_SE * model.params_.to_numpy()))


def _holdout_rows(model: _RepeatModel, summary: pd.DataFrame) -> list[tuple[str, str]]:
    if not {"frequency_holdout", "duration_holdout"} <= set(summary.columns):
        return []
    _check_summary(summary, _SUMMARY_COLUMNS + ["frequency_holdout", "duration_holdout"])
    actual = float(summary["frequency_holdout"].sum())
    predicted = float(
        model.predict_purchases(summary, summary["duration_holdout"].to_numpy(dtype=float))[
            "expected_purchases"
        ].sum()
    )
    if not np.isfinite(predicted):
        return [(
            "degenerate_fit",
            f"The {model._label} fit ran off to extreme parameters ("
            + ", ".join(f"{k} = {v:.3g}" for k, v in model.params_.items())
            + ") where its predictions cannot be computed: do not use it for CLV.",
        )]
    if actual <= 0:
        return [(
            "no_holdout_purchases",
            f"Nobody bought in the holdout period, so the {model._label} predictions "
            f"({predicted:,.0f} purchases) cannot be checked: use a longer holdout.",
        )]
    ratio = predicted / actual
    if abs(ratio - 1) <= HOLDOUT_GAP_TOLERANCE:
        return []
    direction = "low" if ratio < 1 else "high"
    return [(
        "holdout_gap",
        f"{model._label} predicts {ratio:.0%} of the holdout repeat purchases "
        f"({predicted:,.0f} predicted, {actual:,.0f} actual): expect CLV to be about "
        f"{abs(1 - ratio):.0%} {direction}.",
    )]


class BetaGeo(_RepeatModel):
    """BG/NBD model of repeat purchases (Fader, Hardie and Lee 2005).

    While alive, a customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)``;
    after each purchase they drop out with probability ``p ~ Beta(a, b)``.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty on the parameters (added as ``penalizer * sum(params**2)`` to
        the mean negative log-likelihood, as in ``lifetimes``); helps small or
        degenerate data sets. ``loglik_`` is always the unpenalised value.
    max_iter : int, default 1000
        Iteration cap of the optimiser.

    Attributes
    ----------
    params_ : Series
        ``r``, ``alpha``, ``a``, ``b``.
    loglik_ : float
        Total log-likelihood at ``params_``.
    n_customers_, n_repeat_customers_ : int
        Customers fitted, and those of them with ``frequency > 0``.
    n_iter_ : int
        Optimiser iterations.
    mean_T_ : float
        Mean customer age ``T`` of the fitted summary.

    Examples
    --------
    >>> model = BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> summary = pd.DataFrame({"customer_id": ["a", "b"], "frequency": [2, 2],
    ...                         "recency": [30.0, 5.0], "T": [39.0, 39.0]})
    >>> model.probability_alive(summary).round(3)
      customer_id  probability_alive
    0           a              0.720
    1           b              0.123

    Fit with ``BetaGeo().fit(summary)`` where ``summary`` comes from
    :func:`summary_from_transactions`.
    """

    _names = ["r", "alpha", "a", "b"]
    _label = "BG/NBD"
    _pole_shift = 1.0

    def fit(self, summary: pd.DataFrame) -> BetaGeo:
        """Fit by maximum likelihood to ``frequency``, ``recency`` and ``T`` of ``summary``.

        Raises
        ------
        SalesplanDataError
            Missing columns, NaNs, negative or inconsistent values, or no repeat
            buyers at all (then ``a`` and ``b`` cannot be estimated).
        """
        penalizer = _check_penalizer(self.penalizer)
        max_iter = check_positive_int(self.max_iter, name="max_iter")
        x, tx, T = self._validated(summary)
        data = _BGData(x, tx, T)

        objective = _log_scale_objective(lambda prm: _bg_loglik(prm, data, 2), data.n, penalizer)

        # Moment-style start: the mean purchase rate of repeat buyers sets
        # r / alpha; a few dropouts per purchase a/(a+b) ~ 0.25.
        rate = max(x.sum() / max(T.sum(), 1e-9), 1e-3)
        start = np.log(np.array([0.5, 0.5 / rate, 1.0, 3.0]))
        theta, fun, n_iter, converged, message = _minimize_newton(
            objective, start, max_iter=max_iter
        )
        params = np.exp(theta)
        _check_optimiser("BetaGeo", fun, converged, message)
        loglik, _, hess = _bg_loglik(params, data, 2)
        self._store_fit(params, loglik, hess, n_iter, x, T)
        return self

    def _expected_arrays(self, params, t, x, tx, T):
        return _bg_expected(params, t, x, tx, T)

    def _alive_arrays(self, params, x, tx, T):
        r, alpha, a, b = params
        log_odds = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (
            np.log(alpha + T) - np.log(alpha + tx)
        )
        return np.where(x > 0, special.expit(-log_odds), 1.0)

    def probability_alive(
        self, summary: pd.DataFrame, *, customer_col: str = "customer_id"
    ) -> pd.DataFrame:
        """Probability that each customer is still active at the end of calibration.

        Returns
        -------
        DataFrame
            On the summary's index: ``<customer_col>`` (when present) and
            ``probability_alive`` in [0, 1] (1 for customers without repeat
            purchases: BG/NBD customers can only drop out right after a repeat
            purchase).
        """
        return super().probability_alive(summary, customer_col=customer_col)

    def _dropout_sentence(self) -> tuple[str, str] | None:
        return _beta_dropout_sentence(self, "after each repeat purchase")


def _beta_dropout_sentence(model: _RepeatModel, when: str) -> tuple[str, str] | None:
    a, b = model.params_["a"], model.params_["b"]
    mean = a / (a + b)
    if a + b < POLARISED_AB:
        return "polarised_dropout", (
            f"The {model._label} fit splits customers into two extremes (a = {a:.3g}, b = {b:.3g}): "
            f"{mean:.0%} drop out {when.replace('each', 'their next')} and the rest never do. "
            "The data do not follow the model's gradual dropout, so probability-alive is close to "
            "0% or 100% for everyone and CLV is unreliable; compare the other models' holdout error."
        )
    if mean >= NO_DROPOUT_SHARE:
        return None
    return "no_dropout", (
        f"Almost nobody seems to drop out ({model._label} a = {a:.3g}, b = {b:.3g}: on average "
        f"{mean:.2%} of customers stop {when}): the model treats every customer as alive, so "
        "probability-alive is near 100% and CLV rests on purchase rates alone."
    )


# ---------------------------------------------------------------------------
# MBG/NBD
# ---------------------------------------------------------------------------


def _mbg_loglik(
    params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, order: int = 1
) -> tuple[float, np.ndarray, np.ndarray]:
    """Total MBG/NBD log-likelihood with gradient (order >= 1) and Hessian (order 2)
    in the natural parameters (r, alpha, a, b).

    Per customer (Batislam, Denizel and Filiztekin 2007, with the erratum of
    Wagner and Hoppe 2008): ln G(r+x) - ln G(r) + r ln alpha - (r+x) ln(alpha+T)
    + ln B(a, b+x+1) - ln B(a, b) + softplus(delta), with
    delta = ln(a / (b+x)) + (r+x) ln((alpha+T) / (alpha+t_x)), for every
    customer: unlike BG/NBD a customer may also drop out right after the first
    purchase. Terms of x alone (the gamma-function family) are evaluated once
    per distinct frequency.
    """
    r, alpha, a, b = params
    n = float(len(x))
    xu, cu = np.unique(x, return_counts=True)
    cu = cu.astype(float)
    rx = r + x
    log_aT, log_atx = np.log(alpha + T), np.log(alpha + tx)
    gap = log_aT - log_atx
    k = 1.0 / (b + x)
    delta = np.log(a) + np.log(k) + rx * gap
    e = np.exp(-np.abs(delta))
    ll = (
        _vdot(cu, special.gammaln(r + xu) + special.gammaln(b + xu + 1) - special.gammaln(a + b + xu + 1))
        - n * special.gammaln(r) + n * r * np.log(alpha) - _vdot(rx, log_aT)
        + n * special.gammaln(a + b) - n * special.gammaln(b)
        + np.sum(np.maximum(delta, 0.0) + np.log1p(e))
    )
    if order < 1:
        return float(ll), np.empty(0), np.empty((0, 0))
    w = np.where(delta >= 0, 1.0, e) / (1.0 + e)
    inv_aT, inv_atx = 1.0 / (alpha + T), 1.0 / (alpha + tx)
    inv_gap = inv_aT - inv_atx
    d_alpha = rx * inv_gap
    dig_ab = _vdot(cu, special.digamma(a + b) - special.digamma(a + b + xu + 1))
    grad = np.array(
        [
            _vdot(cu, special.digamma(r + xu)) - n * special.digamma(r) + n * np.log(alpha)
            - log_aT.sum() + _vdot(w, gap),
            n * r / alpha - _vdot(rx, inv_aT) + _vdot(w, d_alpha),
            dig_ab + w.sum() / a,
            dig_ab + _vdot(cu, special.digamma(b + xu + 1)) - n * special.digamma(b) - _vdot(w, k),
        ]
    )
    if order < 2:
        return float(ll), grad, np.empty((0, 0))
    s = e / (1.0 + e) ** 2  # w (1 - w)
    tri_ab = _vdot(cu, _trigamma(a + b) - _trigamma(a + b + xu + 1))
    hess = np.zeros((4, 4))
    hess[0, 0] = _vdot(cu, _trigamma(r + xu)) - n * _trigamma(r) + _vdot(s * gap, gap)
    hess[0, 1] = n / alpha - inv_aT.sum() + _vdot(s * gap, d_alpha) + _vdot(w, inv_gap)
    hess[0, 2] = _vdot(s, gap) / a
    hess[0, 3] = -_vdot(s * gap, k)
    hess[1, 1] = (
        -n * r / alpha**2 + _vdot(rx, inv_aT**2) + _vdot(s * d_alpha, d_alpha)
        + _vdot(w, rx * (inv_atx**2 - inv_aT**2))
    )
    hess[1, 2] = _vdot(s, d_alpha) / a
    hess[1, 3] = -_vdot(s * d_alpha, k)
    hess[2, 2] = tri_ab + (s.sum() - w.sum()) / a**2
    hess[2, 3] = tri_ab - _vdot(s, k) / a
    hess[3, 3] = (
        tri_ab + _vdot(cu, _trigamma(b + xu + 1)) - n * _trigamma(b) + _vdot(s * k, k) + _vdot(w * k, k)
    )
    hess = np.triu(hess) + np.triu(hess, 1).T
    return float(ll), grad, hess


class ModifiedBetaGeo(_RepeatModel):
    """MBG/NBD model of repeat purchases (Batislam, Denizel and Filiztekin 2007).

    As BG/NBD (purchases at a rate ``lambda ~ Gamma(r, alpha)``, dropout with
    probability ``p ~ Beta(a, b)``), but a customer may drop out right after the
    first purchase too, not only after repeat purchases. So one-time buyers of
    long ago count as probably gone, where BG/NBD keeps them alive.

    Parameters and attributes as :class:`BetaGeo`.

    References
    ----------
    Batislam, E. P., Denizel, M. and Filiztekin, A. (2007). Empirical validation
    and comparison of models for customer base analysis. International Journal
    of Research in Marketing 24(3), 201-209; erratum by Wagner, U. and Hoppe, D.
    (2008), 25(1), 75-76.
    """

    _names = ["r", "alpha", "a", "b"]
    _label = "MBG/NBD"
    _pole_shift = 0.0

    def fit(self, summary: pd.DataFrame) -> ModifiedBetaGeo:
        """Fit by maximum likelihood to ``frequency``, ``recency`` and ``T`` of ``summary``.

        Raises
        ------
        SalesplanDataError
            As :meth:`BetaGeo.fit`.
        """
        penalizer = _check_penalizer(self.penalizer)
        max_iter = check_positive_int(self.max_iter, name="max_iter")
        x, tx, T = self._validated(summary)
        objective = _log_scale_objective(lambda prm: _mbg_loglik(prm, x, tx, T, 2), float(len(x)), penalizer)
        rate = max(x.sum() / max(T.sum(), 1e-9), 1e-3)
        start = np.log(np.array([0.5, 0.5 / rate, 1.0, 3.0]))
        theta, fun, n_iter, converged, message = _minimize_newton(objective, start, max_iter=max_iter)
        params = np.exp(theta)
        _check_optimiser("ModifiedBetaGeo", fun, converged, message)
        loglik, _, hess = _mbg_loglik(params, x, tx, T, 2)
        self._store_fit(params, loglik, hess, n_iter, x, T)
        return self

    def _expected_arrays(self, params, t, x, tx, T):
        r, alpha, a, b = params
        z = t / (alpha + T + t)
        # Euler's transformation of 2F1(r+x, b+x+1; a+b+x; z), as for BG/NBD:
        # 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z).
        hyp = special.hyp2f1(a + b - r, a - 1, a + b + x, z)
        second = 1.0 - hyp * np.exp((a - 1) * np.log1p(-z))
        numerator = (a + b + x) / (a - 1) * second
        log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return numerator * special.expit(-log_odds)

    def _alive_arrays(self, params, x, tx, T):
        r, alpha, a, b = params
        log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return special.expit(-log_odds)

    def _dropout_sentence(self) -> tuple[str, str] | None:
        return _beta_dropout_sentence(self, "after each purchase")


# ---------------------------------------------------------------------------
# Pareto/NBD
# ---------------------------------------------------------------------------


def _fd_hessian(fun: Callable[[np.ndarray], float], point: np.ndarray, rel: float = 1e-4) -> np.ndarray:
    """Central second differences of ``fun`` at ``point`` with steps relative to the point."""
    k = len(point)
    h = rel * np.maximum(np.abs(point), 1e-8)
    hess = np.empty((k, k))
    f0 = fun(point)
    for i in range(k):
        ei = np.eye(k)[i] * h[i]
        hess[i, i] = (fun(point + ei) - 2 * f0 + fun(point - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.eye(k)[j] * h[j]
            hess[i, j] = hess[j, i] = (
                fun(point + ei + ej) - fun(point + ei - ej) - fun(point - ei + ej) + fun(point - ei - ej)
            ) / (4 * h[i] * h[j])
    return hess


class ParetoNBD(_RepeatModel):
    """Pareto/NBD model of repeat purchases (Schmittlein, Morrison and Colombo 1987).

    While alive, a customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)``;
    their lifetime is exponential with a dropout rate ``mu ~ Gamma(s, beta)``,
    so customers can drop out at any time, not only after a purchase.

    The likelihood is Fader and Hardie's numerically stable form with the
    Gaussian hypergeometric function (see :mod:`salesplan.segments._pareto`).
    It has no closed-form derivatives in the parameters, so the fit is BFGS on
    the log-parameters with central-difference gradients, and the standard
    errors come from a central-difference Hessian.

    Parameters and attributes as :class:`BetaGeo`; ``params_`` holds ``r``,
    ``alpha``, ``s``, ``beta``.

    References
    ----------
    Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987). Counting your
    customers: who are they and what will they do next? Management Science 33(1), 1-24.
    Fader, P. S. and Hardie, B. G. S. (2005). A note on deriving the Pareto/NBD
    model and related expressions. http://brucehardie.com/notes/009/
    """

    _names = ["r", "alpha", "s", "beta"]
    _label = "Pareto/NBD"

    def fit(self, summary: pd.DataFrame) -> ParetoNBD:
        """Fit by maximum likelihood to ``frequency``, ``recency`` and ``T`` of ``summary``.

        Raises
        ------
        SalesplanDataError
            As :meth:`BetaGeo.fit`.
        """
        penalizer = _check_penalizer(self.penalizer)
        max_iter = check_positive_int(self.max_iter, name="max_iter")
        x, tx, T = self._validated(summary)
        n = float(len(x))

        data = ParetoData(x, tx, T)

        def loglik(params: np.ndarray) -> float:
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                value = pareto_loglik_total(params, data)
            return value if np.isfinite(value) else -np.inf

        def objective(theta: np.ndarray) -> float:
            if np.any(np.abs(theta) > _MAX_LOG_PARAM):
                return 1e300
            params = np.exp(theta)
            value = loglik(params)
            return -value / n + penalizer * float(np.sum(params**2)) if np.isfinite(value) else 1e300

        def gradient(theta: np.ndarray) -> np.ndarray:
            h = 1e-6
            out = np.empty(len(theta))
            for i in range(len(theta)):
                step = np.eye(len(theta))[i] * h
                out[i] = (objective(theta + step) - objective(theta - step)) / (2 * h)
            return out

        rate = max(x.sum() / max(T.sum(), 1e-9), 1e-3)
        start = np.log(np.array([0.5, 0.5 / rate, 0.5, max(float(np.mean(T)), 1.0)]))
        res = optimize.minimize(
            objective, start, jac=gradient, method="BFGS",
            options={"maxiter": max_iter, "gtol": 1e-8},
        )
        grad = gradient(res.x)
        converged = bool(np.isfinite(res.fun) and res.fun < 1e299 and np.max(np.abs(grad)) < 1e-5)
        fun = float(res.fun) if res.fun < 1e299 else float("inf")
        _check_optimiser("ParetoNBD", fun, converged, str(res.message))
        params = np.exp(res.x)
        hess = _fd_hessian(loglik, params)
        self._store_fit(params, loglik(params), hess, res.nit, x, T)
        return self

    def _expected_arrays(self, params, t, x, tx, T):
        return pareto_expected(params, t, x, tx, T)

    def _alive_arrays(self, params, x, tx, T):
        return pareto_alive(params, x, tx, T)

    def _population_arrays(self, params, t):
        return pareto_population(params, t)

    def _dropout_sentence(self) -> tuple[str, str] | None:
        s, beta = self.params_["s"], self.params_["beta"]
        horizon = getattr(self, "mean_T_", None) or 52.0
        share = 1.0 - (beta / (beta + horizon)) ** s
        if share >= NO_DROPOUT_SHARE * 2:
            return None
        return "no_dropout", (
            f"Almost nobody seems to drop out (Pareto/NBD s = {s:.3g}, beta = {beta:.3g}: only "
            f"{share:.2%} of customers would stop within {horizon:.3g} periods, the mean customer "
            "age): the model treats every customer as alive, so probability-alive is near 100% "
            "and CLV rests on purchase rates alone."
        )


#: Repeat-purchase models by the names :func:`select_model` uses.
REPEAT_MODELS: dict[str, type[_RepeatModel]] = {
    "bgnbd": BetaGeo,
    "mbgnbd": ModifiedBetaGeo,
    "pareto": ParetoNBD,
}


def _check_repeat_model(model: Any, name: str = "bgnbd") -> None:
    if not isinstance(model, _RepeatModel):
        raise SalesplanError(
            f"{name} must be a fitted BetaGeo, ModifiedBetaGeo or ParetoNBD (a repeat-purchase "
            f"model), got {type(model).__name__}."
        )


def _check_holdout_summary(summary: Any, caller: str) -> None:
    """A summary with a holdout period, or a SalesplanDataError saying how to get one."""
    check_frame(summary, name="summary")
    missing = [c for c in ("frequency_holdout", "duration_holdout") if c not in summary.columns]
    if missing or not (summary["duration_holdout"].to_numpy(dtype=float) > 0).any():
        raise SalesplanDataError(
            f"{caller} needs a holdout period, and this summary has none"
            + (f" (missing required column(s) {', '.join(repr(c) for c in missing)})" if missing else
               " (duration_holdout is 0)")
            + ". Build the summary with an observation_end later than calibration_end, e.g. "
            "summary_from_transactions(tx, calibration_end=<a date some months before the last "
            "purchase>, observation_end=<the last purchase date>)."
        )
    _check_summary(summary, _SUMMARY_COLUMNS + ["frequency_holdout", "duration_holdout"])


def _check_horizon(t: Any, n: int) -> np.ndarray | float:
    arr = np.asarray(t, dtype=float) if not isinstance(t, (pd.Series, pd.Index)) else t.to_numpy(dtype=float)
    if arr.ndim == 0:
        if not np.isfinite(arr) or arr < 0:
            raise SalesplanError(f"t must be a finite time >= 0 (in summary periods), got {t!r}.")
        return float(arr)
    if arr.shape != (n,):
        raise SalesplanError(
            f"t must be a scalar or hold one time per customer ({n}), got shape {arr.shape}."
        )
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise SalesplanError(
            f"t has {int(bad.sum())} value(s) that are not finite times >= 0 "
            f"({describe_rows(np.flatnonzero(bad))})."
        )
    return arr


# ---------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------


def _gg_loglik(
    params: np.ndarray, x: np.ndarray, m: np.ndarray, consts: dict, order: int = 1
) -> tuple[float, np.ndarray, np.ndarray]:
    """Total Gamma-Gamma log-likelihood of mean spends ``m`` over ``x`` purchases,
    with gradient (order >= 1) and Hessian (order 2) in (p, q, gamma).

    Per customer (Fader and Hardie 2013, the density of zbar given x):
    ln G(px+q) - ln G(px) - ln G(q) + q ln gamma + (px-1) ln m + px ln x - (px+q) ln(xm+gamma).
    """
    p, q, gamma = params
    xu, cu, n = consts["xu"], consts["cu"], consts["n"]
    pxu = p * xu
    xm_g = x * m + gamma
    log_xm_g = np.log(xm_g)
    px_q = p * x + q
    ll = (
        _vdot(cu, special.gammaln(pxu + q) - special.gammaln(pxu))
        - n * special.gammaln(q)
        + n * q * np.log(gamma)
        + p * consts["sum_x_logm_logx"] - consts["sum_logm"]
        - _vdot(px_q, log_xm_g)
    )
    if order < 1:
        return float(ll), np.empty(0), np.empty((0, 0))
    dig = special.digamma(pxu + q)
    inv = 1.0 / xm_g
    grad = np.array(
        [
            _vdot(cu * xu, dig - special.digamma(pxu)) + consts["sum_x_logm_logx"]
            - _vdot(x, log_xm_g),
            _vdot(cu, dig) - n * special.digamma(q) + n * np.log(gamma) - log_xm_g.sum(),
            n * q / gamma - _vdot(px_q, inv),
        ]
    )
    if order < 2:
        return float(ll), grad, np.empty((0, 0))
    tri = _trigamma(pxu + q)
    hess = np.empty((3, 3))
    hess[0, 0] = _vdot(cu * xu**2, tri - _trigamma(pxu))
    hess[0, 1] = hess[1, 0] = _vdot(cu * xu, tri)
    hess[0, 2] = hess[2, 0] = -_vdot(x, inv)
    hess[1, 1] = _vdot(cu, tri) - n * _trigamma(q)
    hess[1, 2] = hess[2, 1] = n / gamma - inv.sum()
    hess[2, 2] = -n * q / gamma**2 + _vdot(px_q, inv**2)
    return float(ll), grad, hess


# Parameters are kept within exp(+-25) (1e-11 .. 7e10): beyond that, differences
# such as ln G(a+b) - ln G(a+b+x) lose every digit and the likelihood turns to
# noise. A fit that runs into the bound is degenerate, which diagnostics() says.
_MAX_LOG_PARAM = 25.0


def _log_scale_objective(
    loglik: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]], n: float, penalizer: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]:
    """Mean negative log-likelihood plus L2 penalty, in log-parameters.

    The chain rule turns the natural-scale Hessian H into
    diag(p) H diag(p) + diag(p * grad).
    """

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        if np.any(np.abs(theta) > _MAX_LOG_PARAM):
            return np.inf, np.zeros_like(theta), np.eye(len(theta))
        params = np.exp(theta)
        ll, grad, hess = loglik(params)
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(theta), np.eye(len(theta))
        value = -ll / n + penalizer * np.sum(params**2)
        jac = -grad * params / n + 2 * penalizer * params**2
        hess_theta = -(params[:, None] * hess * params[None, :] + np.diag(grad * params)) / n
        hess_theta += np.diag(4 * penalizer * params**2)
        return value, jac, hess_theta

    return objective


class GammaGamma(_Fitted):
    """Gamma-Gamma model of the mean spend per purchase (Fader and Hardie 2013).

    Each purchase of a customer is worth ``z ~ Gamma(p, nu)`` with the
    customer's scale ``nu ~ Gamma(q, gamma)``; the model is fitted to the
    customers' mean repeat spend. It assumes spend does not depend on how
    often a customer buys.

    Parameters
    ----------
    penalizer : float, default 0.0
        L2 penalty ``penalizer * sum(params**2)`` on the mean negative log-likelihood.
    max_iter : int, default 1000
        Iteration cap of the optimiser.

    Attributes
    ----------
    params_ : Series
        ``p``, ``q``, ``gamma``.
    loglik_ : float
        Total log-likelihood of the mean spends (density of zbar given x).
    n_customers_ : int
        Repeat buyers with positive spend that were fitted.
    n_excluded_ : int
        Repeat buyers left out because their mean spend was zero or negative.
    """

    _names = ["p", "q", "gamma"]

    def __init__(self, *, penalizer: float = 0.0, max_iter: int = 1000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    def fit(self, summary: pd.DataFrame) -> GammaGamma:
        """Fit to ``frequency`` and ``monetary_value`` of the repeat buyers in ``summary``.

        Customers with ``frequency == 0`` carry no spend information and are
        skipped silently; repeat buyers whose ``monetary_value`` is zero or
        negative (refunds) are skipped with a :class:`SalesplanDataWarning`.

        Raises
        ------
        SalesplanDataError
            Missing columns or NaNs, or no repeat buyer with a positive spend.
        """
        penalizer = _check_penalizer(self.penalizer)
        max_iter = check_positive_int(self.max_iter, name="max_iter")
        _check_summary(summary, ["frequency", "monetary_value"])
        x_all = summary["frequency"].to_numpy(dtype=float)
        m_all = summary["monetary_value"].to_numpy(dtype=float)
        repeat = x_all > 0
        positive = repeat & (m_all > 0)
        excluded = repeat & ~positive
        if not positive.any():
            detail = (
                f"all {int(excluded.sum())} repeat buyer(s) have a zero or negative monetary_value"
                if excluded.any()
                else f"no customer has a repeat purchase (frequency is 0 for all {len(x_all)})"
            )
            raise SalesplanDataError(
                f"GammaGamma cannot be fitted: {detail}. The model needs repeat buyers with a "
                "positive mean spend; use a longer calibration period or check value_col."
            )
        if excluded.any():
            warnings.warn(
                f"GammaGamma: left out {int(excluded.sum())} of {int(repeat.sum())} repeat "
                f"buyer(s) whose monetary_value is zero or negative "
                f"({describe_rows(summary.index[excluded])}); the model needs positive spend.",
                SalesplanDataWarning,
                stacklevel=2,
            )
        x, m = x_all[positive], m_all[positive]
        xu, cu = np.unique(x, return_counts=True)
        consts = {
            "xu": xu,
            "cu": cu.astype(float),
            "n": float(len(x)),
            "sum_x_logm_logx": float(np.dot(x, np.log(m) + np.log(x))),
            "sum_logm": float(np.log(m).sum()),
        }
        objective = _log_scale_objective(
            lambda prm: _gg_loglik(prm, x, m, consts, 2), consts["n"], penalizer
        )
        # Start where the population mean spend p*gamma/(q-1) equals the
        # observed mean, with moderate shapes.
        start = np.log(np.array([2.0, 3.0, max(float(np.mean(m)), 1e-9)]))
        theta, fun, n_iter, converged, message = _minimize_newton(
            objective, start, max_iter=max_iter
        )
        _check_optimiser("GammaGamma", fun, converged, message)
        params = np.exp(theta)
        self.params_ = pd.Series(params, index=self._names, name="estimate")
        loglik, _, hess = _gg_loglik(params, x, m, consts, 2)
        self.loglik_ = loglik
        self.n_customers_ = int(len(x))
        self.n_excluded_ = int(excluded.sum())
        self.n_iter_ = n_iter
        self._covariance = _covariance(params, self._names, "GammaGamma", hess)
        return self

    def _expected(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        p, q, gamma = self.params_.to_numpy()
        if q <= 1:
            raise SalesplanError(
                f"GammaGamma has q = {q:.4g} <= 1: the model's mean spend is infinite, so "
                "expected spend is undefined. Refit with more data or a penalizer."
            )
        # Customers without usable spend get the population mean (weight 0).
        x = np.where(m > 0, x, 0.0)
        weight = p * x / (p * x + q - 1)
        population_mean = p * gamma / (q - 1)
        return (1 - weight) * population_mean + weight * np.where(m > 0, m, 0.0)

    def expected_spend(
        self, summary: pd.DataFrame, *, customer_col: str = "customer_id"
    ) -> pd.DataFrame:
        """Expected mean spend per future purchase of each customer.

        A weighted mean of the customer's own mean spend and the population mean
        ``p * gamma / (q - 1)``, the weight growing with ``frequency``. Customers
        without repeat purchases, or whose mean spend is zero or negative, get the
        population mean (the latter with a :class:`SalesplanDataWarning`).

        Returns
        -------
        DataFrame
            On the summary's index: ``<customer_col>`` (when present) and ``expected_spend``.
        """
        return _keyed(summary, customer_col, expected_spend=self._spend(summary, stacklevel=3))

    def diagnostics(self, summary: pd.DataFrame | None = None) -> pd.DataFrame:
        """Plain sentences on where the spend model should not be trusted as it stands.

        Checks: ``infinite_mean_spend`` (``q <= 1``: the model's mean spend per
        purchase is infinite, so expected spend and CLV cannot be computed),
        ``not_identified`` (no standard errors, or errors many times the
        estimates), ``few_repeat_buyers`` (fewer than :data:`MIN_REPEAT_BUYERS`
        repeat buyers with positive spend fitted) and, given a ``summary``,
        ``spend_depends_on_frequency``: the model assumes that how much a
        customer spends per purchase does not depend on how often they buy; a
        correlation beyond :data:`MAX_SPEND_CORRELATION` between the repeat
        buyers' frequency and mean spend breaks that.

        Returns
        -------
        DataFrame
            ``model`` (``"Gamma-Gamma"``), ``check`` and ``message``; no rows when
            nothing was found.
        """
        self._check_fitted()
        rows: list[tuple[str, str]] = []
        q = float(self.params_["q"])
        if q <= 1:
            rows.append((
                "infinite_mean_spend",
                f"The spend model has q = {q:.3g} <= 1, so its mean spend per purchase is "
                "infinite (a few very large orders dominate): expected spend and CLV cannot be "
                "computed from it. Leave out or cap the extreme orders, or plan with each "
                "customer's own average spend.",
            ))
        if hasattr(self, "n_iter_") and _not_identified(self):
            rows.append((
                "not_identified",
                "The data do not pin down every Gamma-Gamma parameter (no standard errors, or "
                "errors many times the estimates): treat expected spend as rough.",
            ))
        n = getattr(self, "n_customers_", None)
        if n is not None and n < MIN_REPEAT_BUYERS:
            rows.append((
                "few_repeat_buyers",
                f"Only {n} repeat buyers with a positive spend were fitted (at least "
                f"{MIN_REPEAT_BUYERS} are needed for a stable spend model): expected spend leans "
                "on the population average of a few customers; treat it as rough.",
            ))
        if summary is not None:
            _check_summary(summary, ["frequency", "monetary_value"])
            x = summary["frequency"].to_numpy(dtype=float)
            m = summary["monetary_value"].to_numpy(dtype=float)
            keep = (x > 0) & (m > 0)
            if keep.sum() >= 3 and np.ptp(x[keep]) > 0 and np.ptp(m[keep]) > 0:
                corr = float(np.corrcoef(x[keep], m[keep])[0, 1])
                if abs(corr) > MAX_SPEND_CORRELATION:
                    more = "more" if corr > 0 else "less"
                    rows.append((
                        "spend_depends_on_frequency",
                        f"Customers who buy more often spend {more} per purchase (correlation "
                        f"{corr:.2f} between repeat purchases and mean spend), while the spend "
                        "model assumes the two are unrelated: expected spend is off for the most "
                        "and the least frequent buyers, so rank them by expected purchases and "
                        "their own average spend as well.",
                    ))
        return pd.DataFrame(
            {"model": "Gamma-Gamma", "check": [r[0] for r in rows], "message": [r[1] for r in rows]},
            columns=["model", "check", "message"],
        )

    def _spend(self, summary: pd.DataFrame, *, stacklevel: int) -> np.ndarray:
        self._check_fitted()
        _check_summary(summary, ["frequency", "monetary_value"])
        x = summary["frequency"].to_numpy(dtype=float)
        m = summary["monetary_value"].to_numpy(dtype=float)
        odd = (x > 0) & (m <= 0)
        if odd.any():
            warnings.warn(
                f"expected_spend: {int(odd.sum())} repeat buyer(s) have a zero or negative "
                f"monetary_value ({describe_rows(summary.index[odd])}); they get the "
                "population mean spend.",
                SalesplanDataWarning,
                stacklevel=stacklevel,
            )
        return self._expected(x, m)


# ---------------------------------------------------------------------------
# Lifetime value and model checks
# ---------------------------------------------------------------------------


def customer_lifetime_value(
    bgnbd: BetaGeo | ModifiedBetaGeo | ParetoNBD,
    gg: GammaGamma,
    summary: pd.DataFrame,
    *,
    horizon: int = 12,
    freq: str = "W",
    discount_rate: float = 0.01,
    customer_col: str = "customer_id",
) -> pd.DataFrame:
    """Discounted expected value of each customer over the next ``horizon`` months.

    As in ``lifetimes``: for each month ``k = 1..horizon`` the expected
    purchases in that month (from ``bgnbd``) times the expected spend per
    purchase (from ``gg``), discounted by ``(1 + discount_rate) ** k``.

    Parameters
    ----------
    bgnbd : fitted BetaGeo, ModifiedBetaGeo or ParetoNBD
        The repeat-purchase model (the name is kept from when BG/NBD was the only one).
    gg : fitted GammaGamma
    summary : DataFrame
        ``frequency``, ``recency``, ``T``, ``monetary_value`` per customer.
    horizon : int, default 12
        Months ahead.
    freq : {"D", "W", "M"}, default "W"
        Time unit of the summary's ``recency`` and ``T`` (after ``freq_multiplier``);
        a month is 365.25 / 12 days.
    discount_rate : float, default 0.01
        Monthly discount rate.

    Returns
    -------
    DataFrame
        On the summary's index: ``<customer_col>`` (when present),
        ``expected_purchases`` (undiscounted, over the horizon),
        ``expected_spend`` and ``clv``.
    """
    _check_repeat_model(bgnbd)
    if not isinstance(gg, GammaGamma):
        raise SalesplanError(f"gg must be a fitted GammaGamma, got {type(gg).__name__}.")
    horizon = check_positive_int(horizon, name="horizon")
    check_choice(freq, list(_PERIODS_PER_MONTH), name="freq")
    try:
        rate = float(discount_rate)
    except (TypeError, ValueError):
        rate = float("nan")
    if not np.isfinite(rate) or rate <= -1:
        raise SalesplanError(
            f"discount_rate must be a monthly rate > -1 (e.g. 0.01 for 1% a month), got {discount_rate!r}."
        )
    bgnbd._check_fitted()
    gg._check_fitted()
    _check_summary(summary, _SUMMARY_COLUMNS + ["monetary_value"])
    spend = gg._spend(summary, stacklevel=3)
    x = summary["frequency"].to_numpy(dtype=float)[:, None]
    tx = summary["recency"].to_numpy(dtype=float)[:, None]
    T = summary["T"].to_numpy(dtype=float)[:, None]
    months = np.arange(0, horizon + 1, dtype=float)
    cumulative = bgnbd._expected(months[None, :] * _PERIODS_PER_MONTH[freq], x, tx, T)
    per_month = np.diff(cumulative, axis=1)
    discount = (1.0 + rate) ** -months[1:]
    clv = spend * (per_month @ discount)
    return _keyed(
        summary,
        customer_col,
        expected_purchases=cumulative[:, -1],
        expected_spend=spend,
        clv=clv,
    )


def calibration_holdout(
    bgnbd: BetaGeo | ModifiedBetaGeo | ParetoNBD, summary: pd.DataFrame, *, max_frequency: int = 7
) -> pd.DataFrame:
    """Actual versus predicted holdout purchases by calibration frequency.

    The classic check of Fader, Hardie and Lee (2005, fig. 4): customers are
    grouped by their calibration ``frequency`` (``max_frequency`` and above
    together), and the mean of their ``frequency_holdout`` is set against the
    model's mean expectation over ``duration_holdout``.

    Returns
    -------
    DataFrame
        One row per group: ``frequency`` (0..max_frequency), ``frequency_label``
        (``"7+"`` for the last), ``n_customers``, ``actual_mean`` and
        ``predicted_mean``. Groups without customers are left out.
    """
    max_frequency = check_positive_int(max_frequency, name="max_frequency")
    _check_repeat_model(bgnbd)
    bgnbd._check_fitted()
    _check_holdout_summary(summary, "calibration_holdout")
    pred = bgnbd.predict_purchases(summary, summary["duration_holdout"].to_numpy(dtype=float))
    group = np.minimum(summary["frequency"].to_numpy(dtype=np.int64), max_frequency)
    frame = pd.DataFrame(
        {
            "frequency": group,
            "actual": summary["frequency_holdout"].to_numpy(dtype=float),
            "predicted": pred["expected_purchases"].to_numpy(),
        }
    )
    out = (
        frame.groupby("frequency", sort=True)
        .agg(
            n_customers=("actual", "size"),
            actual_mean=("actual", "mean"),
            predicted_mean=("predicted", "mean"),
        )
        .reset_index()
    )
    labels = out["frequency"].astype(str)
    labels = labels.where(out["frequency"] < max_frequency, f"{max_frequency}+")
    out.insert(1, "frequency_label", labels.astype(str))
    out.attrs["model"] = bgnbd._label
    return out


def repeat_purchase_tracking(
    bgnbd: BetaGeo | ModifiedBetaGeo | ParetoNBD,
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    calibration_end: Any = None,
    observation_end: Any = None,
    freq: str = "W",
    freq_multiplier: float = 1,
) -> pd.DataFrame:
    """Actual and expected repeat purchases per period: the tracking chart.

    For the customers whose first purchase is on or before ``calibration_end``
    (the customers of :func:`summary_from_transactions` with the same
    options), repeat purchases are counted per period up to
    ``observation_end`` and set against the model's expectation
    ``sum_i E[X(t - s_i)]`` for customers acquired at ``s_i`` (Fader, Hardie
    and Lee 2005, fig. 2). Periods after ``calibration_end`` are a test the
    model has not seen. When ``calibration_end`` falls inside a period (e.g.
    on a Tuesday with weekly periods), that period's ``actual`` also holds the
    holdout purchases made later in it, and a last period cut short by
    ``observation_end`` shows fewer actual purchases than a full one.

    Returns
    -------
    DataFrame
        One row per period from the first purchase to ``observation_end``:
        ``period`` (start of the period), ``t`` (time from the calibration end
        in model units, <= 0 during calibration), ``holdout`` (bool),
        ``actual``, ``expected``, ``actual_cumulative``, ``expected_cumulative``.
    """
    _check_repeat_model(bgnbd)
    bgnbd._check_fitted()
    prep = _prepare(
        transactions,
        customer_col=customer_col,
        date_col=date_col,
        value_col=None,
        calibration_end=calibration_end,
        observation_end=observation_end,
        freq=freq,
        freq_multiplier=freq_multiplier,
        caller="repeat_purchase_tracking",
    )
    # Calibration and holdout purchases are paired with periods separately, as
    # in the summary, so a period straddling calibration_end counts on both sides.
    cal = _per_period(prep.codes[prep.in_cal], prep.periods[prep.in_cal], None)
    hold = _per_period(prep.codes[prep.in_hold], prep.periods[prep.in_hold], None)
    starts = cal.customer_starts()
    first = cal.period[starts]
    is_first = np.zeros(len(cal.code), dtype=bool)
    is_first[starts] = True
    in_cohort = np.zeros(len(prep.uniques), dtype=bool)
    in_cohort[cal.code[starts]] = True
    repeat_periods = np.concatenate([cal.period[~is_first], hold.period[in_cohort[hold.code]]])
    start = int(first.min())
    n_periods = prep.obs_period - start + 1
    actual = np.bincount(repeat_periods - start, minlength=n_periods)[:n_periods].astype(float)
    acquired = np.bincount(first - start, minlength=n_periods).astype(float)
    steps = np.arange(n_periods, dtype=float)
    population = bgnbd._population(steps / prep.multiplier)
    # Customers acquired in period j have bought E[X((p - j) / m)] by period p:
    # the expectation is the convolution of acquisitions with E[X].
    expected_cumulative = np.convolve(acquired, population)[:n_periods]
    ordinals = np.arange(start, prep.obs_period + 1)
    out = pd.DataFrame(
        {
            "period": pd.PeriodIndex.from_ordinals(ordinals, freq=freq).start_time,
            "t": (ordinals - prep.cal_period) / prep.multiplier,
            "holdout": ordinals > prep.cal_period,
            "actual": actual,
            "expected": np.diff(expected_cumulative, prepend=0.0),
            "actual_cumulative": np.cumsum(actual),
            "expected_cumulative": expected_cumulative,
        }
    )
    out.attrs["model"] = bgnbd._label
    return out


# ---------------------------------------------------------------------------
# Choosing the purchase model
# ---------------------------------------------------------------------------


def repeat_model(name: str, **settings: Any) -> BetaGeo | ModifiedBetaGeo | ParetoNBD:
    """An unfitted repeat-purchase model by its :func:`select_model` name.

    >>> repeat_model("pareto")
    ParetoNBD(penalizer=0.0)
    """
    check_choice(name, list(REPEAT_MODELS), name="model")
    return REPEAT_MODELS[name](**settings)  # type: ignore[return-value]


def _default_window(first: pd.Timestamp, last: pd.Timestamp, calibration_end: Any, observation_end: Any):
    obs_end = last.normalize() if observation_end is None else _to_timestamp(observation_end, name="observation_end")
    if calibration_end is not None:
        return _to_timestamp(calibration_end, name="calibration_end"), obs_end
    # A third of the history, at most a year, rounded to whole days.
    span = obs_end - first.normalize()
    holdout = min(span / 3, pd.Timedelta(days=365))
    return (obs_end - pd.Timedelta(days=int(holdout / pd.Timedelta(days=1)))).normalize(), obs_end


def select_model(
    transactions: pd.DataFrame,
    *,
    calibration_end: Any = None,
    observation_end: Any = None,
    freq: str = "W",
    freq_multiplier: float = 1,
    models: Sequence[str] = ("bgnbd", "mbgnbd", "pareto"),
    tolerance: float = SELECTION_TOLERANCE,
    max_frequency: int = 7,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    penalizer: float = 0.0,
) -> pd.DataFrame:
    """Fit each repeat-purchase model on a calibration period and score it on the holdout.

    Each model in ``models`` is fitted to the customers' purchases up to
    ``calibration_end`` (:func:`summary_from_transactions` with the same
    ``freq`` options) and predicts each customer's repeat purchases from
    ``calibration_end`` to ``observation_end``; the predictions are set against
    what the customers actually bought. The model with the lowest root mean
    squared error per customer (``rmse``) is ``chosen``, except that BG/NBD, the
    most widely used and the simplest to explain, is chosen whenever its error
    is within ``tolerance`` (relative, default 2%) of the best (then MBG/NBD,
    then Pareto/NBD, on the same rule). The squared
    error is the one an expected count is best at; the absolute error (``mae``,
    also reported) rewards predicting too few purchases for the many customers
    who buy nothing. Refit the chosen model on all the data for the lifetime values::

        selection = select_model(tx, calibration_end="2024-06-30", observation_end="2024-12-31")
        name = selection.loc[selection["chosen"], "model"].iloc[0]
        model = repeat_model(name).fit(summary_from_transactions(tx, calibration_end="2024-12-31"))

    Lines without a customer are left out with one counted warning. A model
    that cannot be fitted (e.g. too few repeat buyers) gets a row with its
    ``error`` and is not chosen.

    Parameters
    ----------
    transactions : DataFrame
        Order lines with ``customer_col`` and ``date_col``; not modified.
    calibration_end, observation_end : date-like, optional
        End of the calibration and of the holdout period (both inclusive).
        ``observation_end`` defaults to the last purchase date;
        ``calibration_end`` to a holdout of a third of the history, at most a year.
    freq, freq_multiplier : str, float
        Time unit, as in :func:`summary_from_transactions`.
    models : sequence of {"bgnbd", "mbgnbd", "pareto"}
        Models to compare (:data:`REPEAT_MODELS`).
    tolerance : float, default 0.02
        How much larger (relative) BG/NBD's error may be than the best and BG/NBD
        still be chosen.
    max_frequency : int, default 7
        Calibration frequencies from here up form one group (``"7+"``).
    penalizer : float, default 0.0
        Passed to every model.

    Returns
    -------
    DataFrame
        One row per model and group, the ``"all"`` group first, then the
        calibration-frequency groups ``"0"``, ``"1"``, ... ``"7+"``:

        - ``model`` (``"bgnbd"``...), ``label`` (``"BG/NBD"``...), ``group``;
        - ``n_customers``;
        - ``actual``, ``predicted``: holdout repeat purchases of the group, summed;
        - ``ratio``: predicted / actual (NaN when actual is 0);
        - ``mae``, ``rmse``: mean absolute and root mean squared error per
          customer of the group;
        - ``loglik``: the model's calibration log-likelihood;
        - ``chosen``: True on every row of the chosen model;
        - ``diagnostics``: the sentences of :meth:`BetaGeo.diagnostics` on the
          calibration fit and holdout ("" when none);
        - ``error``: why the model could not be fitted ("" when it was).

    Raises
    ------
    SalesplanDataError
        When the history is too short for a holdout (the message says what is
        needed), or when no model can be fitted.
    """
    check_frame(transactions, name="transactions")
    check_columns(transactions, [customer_col, date_col], name="transactions")
    if isinstance(models, str):
        models = [models]
    models = list(models)
    if not models:
        raise SalesplanError(f"models must name at least one of {list(REPEAT_MODELS)}, got [].")
    for name in models:
        check_choice(name, list(REPEAT_MODELS), name="models")
    max_frequency = check_positive_int(max_frequency, name="max_frequency")
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        tol = float("nan")
    if not np.isfinite(tol) or tol < 0:
        raise SalesplanError(f"tolerance must be a number >= 0 (e.g. 0.02 for 2%), got {tolerance!r}.")
    transactions = drop_guest_lines(
        transactions, customer_col=customer_col, value_col=None, caller="select_model", stacklevel=2
    )
    dates = pd.to_datetime(transactions[date_col], errors="coerce")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    first, last = dates.min(), dates.max()
    if pd.isna(first):
        raise SalesplanDataError(f"transactions has no readable date in {date_col!r}.")
    cal_end, obs_end = _default_window(first, last, calibration_end, observation_end)
    _check_history(first, last, cal_end, obs_end, freq=freq, multiplier=freq_multiplier)

    summary = summary_from_transactions(
        transactions,
        customer_col=customer_col,
        date_col=date_col,
        value_col=None,
        calibration_end=cal_end,
        observation_end=obs_end,
        freq=freq,
        freq_multiplier=freq_multiplier,
    )
    actual = summary["frequency_holdout"].to_numpy(dtype=float)
    duration = summary["duration_holdout"].to_numpy(dtype=float)
    group = np.minimum(summary["frequency"].to_numpy(dtype=np.int64), max_frequency)
    labels = ["all"] + [str(g) if g < max_frequency else f"{max_frequency}+" for g in np.unique(group)]

    frames, errors, scores = [], {}, {}
    for name in models:
        model = REPEAT_MODELS[name](penalizer=penalizer)
        notes: list[str] = []
        predicted = np.full(len(summary), np.nan)
        loglik = np.nan
        error = ""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SalesplanWarning)
            try:
                model.fit(summary)
            except SalesplanError as exc:
                error = str(exc)
        # The optimiser's own warnings, in plain words (diagnostics() below says
        # what a missing standard error means).
        if any("stopped before converging" in str(w.message) for w in caught):
            notes.append(
                f"The {model._label} fit did not fully converge: its numbers may be imprecise."
            )
        if not error:
            predicted = model.predict_purchases(summary, duration)["expected_purchases"].to_numpy()
            if not np.all(np.isfinite(predicted)):
                error = (
                    f"{model._label} ran off to extreme parameters ("
                    + ", ".join(f"{k} = {v:.3g}" for k, v in model.params_.items())
                    + ") where its predictions cannot be computed."
                )
                predicted = np.full(len(summary), np.nan)
        if not error:
            loglik = model.loglik_
            notes.extend(model.diagnostics(summary)["message"])
            scores[name] = float(np.sqrt(np.mean((predicted - actual) ** 2)))
        else:
            errors[model._label] = error
        rows = []
        for key, mask in [("all", np.ones(len(summary), dtype=bool))] + [
            (lab, group == g) for lab, g in zip(labels[1:], np.unique(group))
        ]:
            act, pred = actual[mask].sum(), predicted[mask].sum() if not error else np.nan
            rows.append({
                "model": name,
                "label": model._label,
                "group": key,
                "n_customers": int(mask.sum()),
                "actual": float(act),
                "predicted": float(pred),
                "ratio": float(pred / act) if act > 0 else np.nan,
                "mae": float(np.mean(np.abs(predicted[mask] - actual[mask]))) if not error else np.nan,
                "rmse": float(np.sqrt(np.mean((predicted[mask] - actual[mask]) ** 2))) if not error else np.nan,
                "loglik": float(loglik),
            })
        frame = pd.DataFrame(rows)
        frame["diagnostics"] = " ".join(notes)
        frame["error"] = error
        frames.append(frame)
    if not scores:
        detail = " ".join(f"{label}: {text}" for label, text in errors.items())
        raise SalesplanDataError(
            f"select_model could not fit any of the models on the calibration period to "
            f"{cal_end.date()}. {detail}"
        )
    # Near-ties go to the simpler, more widely used model: BG/NBD, then MBG/NBD.
    best = min(scores.values())
    chosen = next(name for name in REPEAT_MODELS if name in scores and scores[name] <= best * (1 + tol))
    out = pd.concat(frames, ignore_index=True)
    out.insert(out.columns.get_loc("diagnostics"), "chosen", out["model"] == chosen)
    out.attrs.update(calibration_end=cal_end, observation_end=obs_end)
    return out


def _check_history(first, last, cal_end, obs_end, *, freq: str, multiplier: float) -> None:
    """Raise a SalesplanDataError saying what is needed when the history is too short to score."""
    span = f"The data run from {first.date()} to {last.date()}"
    if obs_end <= cal_end or last <= _inclusive_cutoff(cal_end) - pd.Timedelta(1, "ns"):
        raise SalesplanDataError(
            f"select_model needs a holdout period after calibration_end ({cal_end.date()}) to "
            f"compare the models, with purchases in it. {span} and observation_end is "
            f"{obs_end.date()}. Pick a calibration_end some months before the last purchase "
            "(or leave it out: a third of the history is then held out)."
        )
    try:
        cal_periods = (cal_end.to_period(freq).ordinal - first.to_period(freq).ordinal) / multiplier
        hold_periods = (obs_end.to_period(freq).ordinal - cal_end.to_period(freq).ordinal) / multiplier
    except (TypeError, ValueError):
        raise SalesplanError(
            f"freq must be a pandas period alias such as 'D', 'W' or 'M', got {freq!r}."
        ) from None
    if cal_periods < MIN_CALIBRATION_PERIODS or hold_periods < MIN_HOLDOUT_PERIODS:
        raise SalesplanDataError(
            f"select_model needs at least {MIN_CALIBRATION_PERIODS} periods (freq={freq!r}) of "
            f"calibration and {MIN_HOLDOUT_PERIODS} of holdout; calibration to {cal_end.date()} "
            f"gives {cal_periods:g} and the holdout to {obs_end.date()} gives {hold_periods:g}. "
            f"{span}: use a longer history, a finer freq (e.g. freq='D', freq_multiplier=7), "
            "or move calibration_end."
        )


# ---------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------


def plot_calibration_holdout(frame: pd.DataFrame):
    """Plotly chart of :func:`calibration_holdout`: actual and predicted mean holdout purchases.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    check_frame(frame, name="frame")
    check_columns(
        frame,
        ["frequency_label", "n_customers", "actual_mean", "predicted_mean"],
        name="frame",
        hint="Pass the output of calibration_holdout(bgnbd, summary).",
    )
    fig = go.Figure()
    fig.add_scatter(
        x=frame["frequency_label"],
        y=frame["actual_mean"],
        mode="lines+markers",
        name="actual",
        customdata=frame["n_customers"],
        hovertemplate="%{x} repeat purchases: %{y:.2f} actual<br>%{customdata} customers<extra></extra>",
    )
    fig.add_scatter(
        x=frame["frequency_label"],
        y=frame["predicted_mean"],
        mode="lines+markers",
        name=frame.attrs.get("model", "BG/NBD"),
        line={"dash": "dash"},
        hovertemplate="%{x} repeat purchases: %{y:.2f} predicted<extra></extra>",
    )
    fig.update_layout(
        title="Calibration vs holdout: mean purchases in the holdout period",
        xaxis_title="repeat purchases in the calibration period",
        yaxis_title="mean purchases in the holdout period",
        xaxis={"type": "category"},
        legend={"orientation": "h", "y": -0.2},
        template="plotly_white",
    )
    return fig


def plot_tracking(frame: pd.DataFrame, *, cumulative: bool = True):
    """Plotly chart of :func:`repeat_purchase_tracking`: actual vs expected repeat purchases.

    Parameters
    ----------
    frame : DataFrame
        The output of :func:`repeat_purchase_tracking`.
    cumulative : bool, default True
        Cumulative totals (the classic chart) or purchases per period.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    check_frame(frame, name="frame")
    check_columns(
        frame,
        ["period", "holdout", "actual", "expected", "actual_cumulative", "expected_cumulative"],
        name="frame",
        hint="Pass the output of repeat_purchase_tracking(bgnbd, transactions, ...).",
    )
    suffix = "_cumulative" if cumulative else ""
    label = frame.attrs.get("model", "BG/NBD")
    fig = go.Figure()
    fig.add_scatter(x=frame["period"], y=frame["actual" + suffix], mode="lines", name="actual")
    fig.add_scatter(
        x=frame["period"], y=frame["expected" + suffix], mode="lines", name=label,
        line={"dash": "dash"},
    )
    holdout = frame.loc[frame["holdout"].astype(bool), "period"]
    if len(holdout):
        # A shape rather than add_vline: plotly's vline annotation fails on date axes.
        fig.add_shape(
            type="line", x0=holdout.iloc[0], x1=holdout.iloc[0], y0=0, y1=1, yref="paper",
            line={"color": "grey", "dash": "dot"},
        )
        fig.add_annotation(
            x=holdout.iloc[0], y=1, yref="paper", text="holdout starts", showarrow=False,
            xanchor="left", yanchor="bottom",
        )
    fig.update_layout(
        title=f"Repeat purchases: actual vs {label}" + (" (cumulative)" if cumulative else " per period"),
        xaxis_title="period",
        yaxis_title="repeat purchases" + (" (cumulative)" if cumulative else ""),
        legend={"orientation": "h", "y": -0.2},
        template="plotly_white",
    )
    return fig
