"""Vectorised helpers on start-aligned, NaN-padded panels.

A panel of ``B`` series is held as an array ``Y`` of shape ``(B, T)``: series
``i`` occupies ``Y[i, :n[i]]`` and the rest is NaN. Everything here works on
all series at once.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "row_sum",
    "row_nanmean",
    "acf",
    "seasonality_test",
    "classical_seasonal_index",
    "take_last",
]


def row_sum(X: np.ndarray) -> np.ndarray:
    """Sum along the time axis (axis 1), adding strictly in time order.

    ``np.sum`` adds in unrolled blocks whose grouping depends on the row
    length, so the zeros padding a short series up to the longest one of a
    batch would change its sum in the last bit; a running sum does not, and
    a series' results stay the same in any batch.
    """
    X = np.asarray(X, dtype=float)
    if X.shape[1] == 0:
        return np.zeros(X.shape[0])
    return np.cumsum(X, axis=1)[:, -1]


def row_nanmean(X: np.ndarray) -> np.ndarray:
    """:func:`numpy.nanmean` along axis 1 through :func:`row_sum` (NaN for an all-NaN row)."""
    ok = ~np.isnan(X)
    with np.errstate(invalid="ignore", divide="ignore"):
        return row_sum(np.where(ok, X, 0.0)) / row_sum(ok)


def row_nanstd(X: np.ndarray) -> np.ndarray:
    """:func:`numpy.nanstd` (ddof 0) along axis 1 through :func:`row_sum`."""
    ok = ~np.isnan(X)
    mean = row_nanmean(X)
    dev = np.where(ok, X - mean[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(row_sum(dev * dev) / row_sum(ok))


def take_last(Y: np.ndarray, n: np.ndarray, k: int = 1) -> np.ndarray:
    """The last ``k`` observations of each series, shape ``(B, k)``."""
    idx = n[:, None] - k + np.arange(k)[None, :]
    return np.take_along_axis(Y, np.clip(idx, 0, Y.shape[1] - 1), axis=1)


def acf(Y: np.ndarray, n: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations at lags ``1..max_lag`` per series, shape ``(B, max_lag)``."""
    B, T = Y.shape
    valid = ~np.isnan(Y)
    mean = row_nanmean(np.where(valid, Y, np.nan))
    Z = np.where(valid, Y - mean[:, None], 0.0)
    denom = row_sum(Z * Z)
    out = np.zeros((B, max_lag))
    for k in range(1, max_lag + 1):
        if k >= T:
            break
        out[:, k - 1] = row_sum(Z[:, k:] * Z[:, :-k])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / denom[:, None]
    return np.nan_to_num(out)


def seasonality_test(Y: np.ndarray, n: np.ndarray, m: int, *, tcrit: float = 1.645) -> np.ndarray:
    """The M3/M4 seasonality test at 90%: is the lag-``m`` autocorrelation significant?

    ``|r_m| > tcrit * sqrt((1 + 2 * sum_{k<m} r_k^2) / n)``, required as well
    ``n >= 3 m``, as in the M4 competition's benchmark code.
    """
    if m <= 1:
        return np.zeros(Y.shape[0], dtype=bool)
    r = acf(Y, n, m)
    limit = tcrit * np.sqrt((1.0 + 2.0 * np.sum(r[:, : m - 1] ** 2, axis=1)) / n)
    return (np.abs(r[:, m - 1]) > limit) & (n >= 3 * m)


def _centred_ma(Y: np.ndarray, n: np.ndarray, m: int) -> np.ndarray:
    """Centred moving average (2 x m when m is even), NaN where the window leaves the series."""
    B, T = Y.shape
    valid = ~np.isnan(Y)
    Z = np.where(valid, Y, 0.0)
    if m % 2 == 0:
        w = np.r_[0.5, np.ones(m - 1), 0.5] / m
    else:
        w = np.ones(m) / m
    L = w.size
    half = L // 2
    out = np.full((B, T), np.nan)
    if T < L:
        return out
    acc = np.zeros((B, T - L + 1))
    cnt = np.zeros((B, T - L + 1))
    for j in range(L):
        acc += w[j] * Z[:, j : T - L + 1 + j]
        cnt += valid[:, j : T - L + 1 + j]
    acc[cnt < L] = np.nan
    out[:, half : half + T - L + 1] = acc
    return out


def classical_seasonal_index(
    Y: np.ndarray, n: np.ndarray, m: int, *, multiplicative: bool = True
) -> np.ndarray:
    """Seasonal indices of classical decomposition, shape ``(B, m)``.

    Column ``j`` is the index of the ``j``-th position counted from each
    series' first observation (``t % m == j``). Multiplicative indices average
    to 1, additive ones to 0. Series too short for a moving average get the
    neutral index.
    """
    B, T = Y.shape
    ma = _centred_ma(Y, n, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        if multiplicative:
            ratio = Y / ma
        else:
            ratio = Y - ma
    pos = np.arange(T) % m
    idx = np.zeros((B, m))
    for j in range(m):
        cols = ratio[:, pos == j]
        with np.errstate(invalid="ignore"):
            cnt = row_sum(~np.isnan(cols))
            s = row_sum(np.where(np.isnan(cols), 0.0, cols))
        idx[:, j] = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)
    neutral = 1.0 if multiplicative else 0.0
    bad = np.any(~np.isfinite(idx), axis=1)
    if multiplicative:
        bad |= np.any(idx <= 0, axis=1)
    idx[bad] = neutral
    if multiplicative:
        idx = idx / idx.mean(axis=1, keepdims=True)
    else:
        idx = idx - idx.mean(axis=1, keepdims=True)
    return idx


def linear_trend(Z: np.ndarray, w: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line per row through the points where ``w`` is 1.

    ``Z`` (B, T) holds the values (zero where ``w`` is 0), ``t`` (1, T) the
    time index. Returns the mean time, the mean value and the slope per row
    (slope 0 for rows with fewer than two distinct times).
    """
    cnt = row_sum(w)
    tm = row_sum(t * w) / cnt
    ym = row_sum(Z) / cnt
    stt = row_sum(((t - tm[:, None]) ** 2) * w)
    sty = row_sum(((t - tm[:, None]) * (Z - ym[:, None])) * w)
    return tm, ym, np.where(stt > 0, sty / np.where(stt > 0, stt, 1.0), 0.0)
