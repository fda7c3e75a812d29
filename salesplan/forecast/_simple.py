"""Vectorised baselines, Theta and intermittent-demand models on padded panels.

Every function takes the start-aligned, NaN-padded array ``Y`` of shape
``(B, T)`` and the lengths ``n`` and returns arrays; the public classes in
:mod:`salesplan.forecast.models` wrap them.
"""

from __future__ import annotations

import numpy as np

from salesplan.forecast._decompose import classical_seasonal_index, linear_trend, row_nanmean, seasonality_test, take_last
from salesplan.forecast.ets import fit_ets

__all__ = [
    "deseasonalise",
    "naive",
    "seasonal_naive",
    "theta",
    "croston",
    "future_index",
]


def future_index(idx: np.ndarray, n: np.ndarray, h: int) -> np.ndarray:
    """Seasonal index at each forecast step, shape ``(B, h)``."""
    m = idx.shape[1]
    pos = (n[:, None] + np.arange(h)[None, :]) % m
    return np.take_along_axis(idx, pos, axis=1)


def deseasonalise(Y: np.ndarray, n: np.ndarray, m: int, *, test: bool = True,
                  also: np.ndarray | None = None):
    """Classical multiplicative decomposition where the 90% seasonality test says so.

    ``also`` marks further series to treat as seasonal (e.g. those for which
    an information criterion preferred a seasonal model). Returns the
    seasonally adjusted panel, the indices ``(B, m)`` (ones for series judged
    non-seasonal, non-positive or too short) and the boolean ``seasonal``
    flag per series.
    """
    B, T = Y.shape
    if m <= 1:
        return Y.copy(), np.ones((B, 1)), np.zeros(B, dtype=bool)
    positive = np.nanmin(np.where(np.isnan(Y), np.inf, Y), axis=1) > 0
    seasonal = positive & (n >= 2 * m)
    if test:
        passed = seasonality_test(Y, n, m)
        if also is not None:
            passed = passed | np.asarray(also, dtype=bool)
        seasonal &= passed
    idx = np.ones((B, m))
    if seasonal.any():
        idx[seasonal] = classical_seasonal_index(Y[seasonal], n[seasonal], m, multiplicative=True)
    reps = np.tile(idx, (1, T // m + 1))[:, :T]
    return Y / reps, idx, seasonal


def naive(Y: np.ndarray, n: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Last value carried forward; returns (mean (B, h), one-step residual sd (B,))."""
    last = take_last(Y, n, 1)[:, 0]
    d = np.diff(Y, axis=1)
    with np.errstate(all="ignore"):
        sd = np.sqrt(row_nanmean(d * d))
    return np.repeat(last[:, None], h, axis=1), np.nan_to_num(sd)


def seasonal_naive(Y: np.ndarray, n: np.ndarray, h: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Same period last season; returns (mean (B, h), seasonal-difference residual sd (B,))."""
    lastm = take_last(Y, n, m)
    reps = int(np.ceil(h / m))
    mean = np.tile(lastm, (1, reps))[:, :h]
    d = Y[:, m:] - Y[:, :-m]
    # a series of exactly one
    # season has no seasonal difference, and gets sd 0 (nan_to_num)
    with np.errstate(all="ignore"):
        sd = np.sqrt(row_nanmean(d * d))
    return mean, np.nan_to_num(sd)


def theta(Y: np.ndarray, n: np.ndarray, h: int, m: int, *, max_iter: int = 120):
    """The standard Theta method (Assimakopoulos & Nikolopoulos 2000).

    As in Hyndman & Billah (2003): classical multiplicative decomposition when
    the 90% seasonality test passes, simple exponential smoothing (alpha and
    initial level optimised) on the adjusted series plus half the slope of a
    linear trend, then reseasonalised.

    Returns a dict with ``mean`` (B, h), ``sd_sa`` (B, h) the forecast sd on
    the adjusted scale, ``index`` (B, h) the seasonal index per step,
    ``alpha``, ``drift`` and ``seasonal``.
    """
    B, T = Y.shape
    sa, idx, seasonal = deseasonalise(Y, n, m)
    fit = fit_ets(sa, n, 1, forms=("ANN",), max_iter=max_iter)
    valid = ~np.isnan(sa)
    slope = linear_trend(np.where(valid, sa, 0.0), valid.astype(float), np.arange(T, dtype=float)[None, :])[2]
    a = fit.alpha
    steps = np.arange(1, h + 1)[None, :]
    drift = 0.5 * slope[:, None] * (steps - 1 + 1 / a[:, None] - ((1 - a[:, None]) ** n[:, None]) / a[:, None])
    mean_sa = fit.l[:, None] + drift
    fidx = future_index(idx, n, h)
    sd_sa = np.sqrt(fit.sigma2[:, None] * (1 + (steps - 1) * a[:, None] ** 2))
    return dict(mean=mean_sa * fidx, sd_sa=sd_sa, index=fidx, alpha=a, drift=slope / 2,
                seasonal=seasonal, level=fit.l, sigma2=fit.sigma2)


def croston(Y: np.ndarray, n: np.ndarray, h: int, *, variant: str = "sba", alpha: float = 0.1,
            beta: float = 0.1):
    """Croston's method and its SBA / TSB variants for intermittent demand.

    ``variant``: ``"croston"`` (classic, fixed alpha), ``"sba"`` (Syntetos-Boylan
    bias correction ``1 - alpha/2``), ``"tsb"`` (Teunter-Syntetos-Babai: smooths
    the demand probability, ``beta``, and the demand size, ``alpha``, every
    period). Returns (mean (B, h), residual sd (B,)).
    """
    B, T = Y.shape
    valid = ~np.isnan(Y)
    first_nz = np.argmax((Y > 0) & valid, axis=1)
    any_nz = np.any((Y > 0) & valid, axis=1)
    z = np.where(any_nz, Y[np.arange(B), first_nz], 0.0)   # demand size
    p = np.where(any_nz, first_nz + 1.0, 1.0)               # interval
    prob = np.where(any_nz, 1.0 / (first_nz + 1.0), 0.0)    # TSB probability
    q = np.ones(B)                                          # periods since demand
    fitted = np.full((B, T), np.nan)
    for t in range(T):
        yt = Y[:, t]
        v = valid[:, t]
        started = t > first_nz
        if variant == "tsb":
            f = prob * z
        else:
            f = np.where(p > 0, z / p, 0.0)
        fitted[:, t] = np.where(v & started, f, np.nan)
        upd = v & started
        d = upd & (yt > 0)
        if variant == "tsb":
            prob = np.where(upd, prob + beta * ((yt > 0) - prob), prob)
            z = np.where(d, z + alpha * (yt - z), z)
        else:
            z = np.where(d, z + alpha * (yt - z), z)
            p = np.where(d, p + alpha * (q - p), p)
            q = np.where(d, 1.0, np.where(upd, q + 1.0, q))
    if variant == "tsb":
        f = prob * z
    else:
        f = np.where(p > 0, z / p, 0.0)
        if variant == "sba":
            f = f * (1 - alpha / 2)
    resid = Y - fitted
    with np.errstate(all="ignore"):
        sd = np.sqrt(row_nanmean(resid * resid))
    return np.repeat(f[:, None], h, axis=1), np.nan_to_num(sd)
