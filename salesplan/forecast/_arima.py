"""Seasonal ARIMA fitted by conditional sum of squares, for many series at once.

Each series gets differencing ``d = 1`` and, when the 90% seasonality test
passes, ``D = 1``; the ARMA orders are chosen by AICc from a small fixed set.
Positive series are modelled on the log scale (forecasts are exponentiated
medians). Parameters come from a batched Nelder-Mead over all (series, order)
pairs; :class:`salesplan.forecast.models.ARIMA` can refit the chosen orders by
exact maximum likelihood with statsmodels' SARIMAX instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salesplan.forecast._decompose import row_nanmean, seasonality_test
from salesplan.forecast._nelder_mead import nelder_mead_steps, population_search_many, run_lockstep

__all__ = ["SEASONAL_ORDERS", "NONSEASONAL_ORDERS", "ARIMAFit", "fit_arima", "arima_forecast", "arima_simulate"]

# (p, q, P, Q)
SEASONAL_ORDERS = ((0, 1, 0, 1), (1, 0, 0, 1), (1, 1, 0, 1), (0, 1, 1, 0), (2, 0, 0, 1))
NONSEASONAL_ORDERS = ((0, 1, 0, 0), (1, 0, 0, 0), (1, 1, 0, 0), (2, 0, 0, 0), (0, 2, 0, 0))


def _polymul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise product of polynomials in B given as coefficient arrays (k, La), (k, Lb)."""
    k = a.shape[0]
    out = np.zeros((k, a.shape[1] + b.shape[1] - 1))
    for j in np.flatnonzero((b != 0).any(axis=0)):
        out[:, j : j + a.shape[1]] += a * b[:, j : j + 1]
    return out


def _lag_poly(coefs: np.ndarray, step: int, sign: float) -> np.ndarray:
    """1 + sign * (c1 B^step + c2 B^(2 step) + ...), rows per element."""
    k, p = coefs.shape
    out = np.zeros((k, p * step + 1))
    out[:, 0] = 1.0
    for i in range(p):
        out[:, (i + 1) * step] = sign * coefs[:, i]
    return out


@dataclass
class ARIMAFit:
    order: np.ndarray        # (B, 4) p, q, P, Q
    seasonal: np.ndarray     # D == 1
    log: np.ndarray          # modelled on log scale
    ar_full: np.ndarray      # (B, L+1) full AR polynomial incl. differencing (coef of B^0 = 1)
    ma_full: np.ndarray      # (B, M+1)
    const: np.ndarray        # (B,)
    sigma2: np.ndarray
    aicc: np.ndarray
    Z: np.ndarray            # (B, T) transformed series
    E: np.ndarray            # (B, T) residuals (0 where not defined)
    n: np.ndarray
    m: int


def _polys(u, orders, diff_poly, m):
    """Full AR and MA polynomials for parameter rows ``u`` with the given orders."""
    k = u.shape[0]
    c = 0.98 * np.tanh(u)
    p, q, P, Q = orders
    i = 0
    ar = c[:, i : i + p]; i += p
    ma = c[:, i : i + q]; i += q
    sar = c[:, i : i + P]; i += P
    sma = c[:, i : i + Q]
    A = _polymul(_polymul(_lag_poly(ar, 1, -1.0), _lag_poly(sar, m, -1.0)), np.broadcast_to(diff_poly, (k, diff_poly.size)))
    M = _polymul(_lag_poly(ma, 1, 1.0), _lag_poly(sma, m, 1.0))
    phi1 = 1.0 - ar.sum(axis=1)
    return A, M, phi1


def _stack_padded(polys: list, width: int) -> np.ndarray:
    """Coefficient rows of several polynomial blocks, zero-padded to ``width`` columns."""
    out = np.zeros((sum(p.shape[0] for p in polys), width))
    row = 0
    for p in polys:
        out[row : row + p.shape[0], : p.shape[1]] = p
        row += p.shape[0]
    return out


def _css(Zr, Vr, A, M, const, start, first=None):
    """Conditional residuals. Zr, Vr: (T, k) transposed series and validity.

    ``first`` (k,): per row, the first time whose AR lags all fall inside
    the series (the degree of its full AR polynomial); earlier residuals are
    conditioned on, not counted. Without it a lag reaching before the start
    would read a value from the end of the padded array, which depends on the
    longest series of the batch.
    """
    T, k = Zr.shape
    if first is not None:
        Vr = Vr * (np.arange(T)[:, None] >= np.asarray(first)[None, :])
    ar_lags = (np.flatnonzero((A[:, 1:] != 0).any(axis=0)) + 1).tolist()
    ma_lags = (np.flatnonzero((M[:, 1:] != 0).any(axis=0)) + 1).tolist()
    E = np.zeros((T, k))
    if start >= T:
        return np.zeros(k), np.zeros(k), E
    # the AR part needs no recursion: one whole-column operation per lag
    # (a lag before the start reads a value that is multiplied by zero or masked by ``first``)
    steps = np.arange(start, T)
    pred = np.repeat(const[None, :], steps.size, axis=0)
    for j in ar_lags:
        pred -= A[:, j] * Zr[(steps - j) % T]
    if ma_lags:
        MT = [(j, np.ascontiguousarray(M[:, j])) for j in ma_lags]
        for i, t in enumerate(steps):
            p = pred[i]
            for j, mj in MT:
                if t - j >= 0:
                    p += mj * E[t - j]
            E[t] = (Zr[t] - p) * Vr[t]
    else:
        E[start:] = (Zr[start:] - pred) * Vr[start:]
    tail = E[start:]
    # cumsum adds in time order, as the recursion always has (a sum may pair up)
    css = np.cumsum(tail * tail, axis=0)[-1]
    cnt = np.cumsum(Vr[start:], axis=0)[-1]
    return css, cnt, E


def fit_arima(Y: np.ndarray, n: np.ndarray, m: int, *, max_iter: int = 100, optimizer: str = "nm") -> ARIMAFit:
    """Fit the candidate seasonal ARIMA orders to every series and keep the best by AICc.

    ``optimizer``: ``"nm"`` (batched Nelder-Mead; ``"auto"`` is a synonym) or
    ``"population"`` (random search); never chosen by batch size, so a
    series' fit does not depend on the other series of the batch.
    """
    Y = np.asarray(Y, float)
    B, T = Y.shape
    positive = np.nanmin(np.where(np.isnan(Y), np.inf, Y), axis=1) > 0
    Z = np.where(positive[:, None], np.log(np.where(positive[:, None], Y, 1.0)), Y)
    seasonal = seasonality_test(Y, n, m) if m > 1 else np.zeros(B, bool)
    V = ~np.isnan(Z)
    Zf = np.where(V, Z, 0.0)
    best = dict(aicc=np.full(B, np.inf))
    results = {}
    problems = []
    for is_seas in (True, False):
        sel = np.flatnonzero(seasonal == is_seas)
        if sel.size == 0:
            continue
        mm = m if is_seas else 1
        diff = np.array([1.0, -1.0])
        if is_seas:
            d2 = np.zeros(m + 1); d2[0] = 1; d2[m] = -1
            diff = np.convolve(diff, d2)
        orders_set = SEASONAL_ORDERS if is_seas else NONSEASONAL_ORDERS
        Zs = Zf[sel]; Vs = V[sel].astype(float)
        # drift (mean of first differences) only without seasonal differencing
        if is_seas:
            mu = np.zeros(sel.size)
        else:
            dz = np.diff(np.where(V[sel], Z[sel], np.nan), axis=1)
            mu = np.nan_to_num(row_nanmean(dz))
        # validity of a residual at t needs all lags of the differencing present
        L = diff.size - 1
        ZT = np.ascontiguousarray(Zs.T)
        VT = np.ascontiguousarray(Vs.T)
        VT_res = VT.copy()
        VT_res[:L] = 0.0
        for orders in orders_set:
            npar = sum(orders)
            if npar:
                problems.append(dict(key=(is_seas, orders), sel=sel, diff=diff, mm=mm, ZT=ZT,
                                     VT_res=VT_res, mu=mu, start=L, npar=npar,
                                     first=L + orders[0] + orders[2] * mm))

    def evaluate_all(requests, keys):
        # one conditional-sum-of-squares pass over every pending (series,
        # order) row, padded to the longest polynomials
        parts = []
        for (x, r), i in zip(requests, keys):
            pr = problems[i]
            A, Mp, phi1 = _polys(x, pr["key"][1], pr["diff"], pr["mm"])
            parts.append((pr["ZT"][:, r], pr["VT_res"][:, r], A, Mp, phi1 * pr["mu"][r],
                          np.full(r.size, pr["first"])))
        LA = max(p_[2].shape[1] for p_ in parts)
        LM = max(p_[3].shape[1] for p_ in parts)
        Zc = np.concatenate([p_[0] for p_ in parts], axis=1)
        Vc = np.concatenate([p_[1] for p_ in parts], axis=1)
        Ac = _stack_padded([p_[2] for p_ in parts], LA)
        Mc = _stack_padded([p_[3] for p_ in parts], LM)
        cc = np.concatenate([p_[4] for p_ in parts])
        first = np.concatenate([p_[5] for p_ in parts])
        css, cnt, _ = _css(Zc, Vc, Ac, Mc, cc, 1, first)
        with np.errstate(all="ignore"):
            vals = cnt * np.log(css / cnt)
        return np.split(vals, np.cumsum([p_[0].shape[1] for p_ in parts])[:-1])

    starts = [np.zeros((pr["sel"].size, pr["npar"])) + 0.1 for pr in problems]
    if not problems:
        solutions = []
    elif optimizer == "population":
        solutions = population_search_many([(x0, 1.5) for x0 in starts], evaluate_all, n_pop=48, n_rounds=10)
    else:
        # all orders advance together (see run_lockstep)
        gens = [nelder_mead_steps(x0, 0.5, max_iter=max_iter, ftol=1e-5, xtol=1e-3) for x0 in starts]
        solutions = [x for x, _ in run_lockstep(gens, evaluate_all)]

    for pr, xb in zip(problems, solutions):
        is_seas, orders = pr["key"]
        npar = pr["npar"]
        A, Mp, phi1 = _polys(xb, orders, pr["diff"], pr["mm"])
        const = phi1 * pr["mu"]
        css, cnt, E = _css(pr["ZT"], pr["VT_res"], A, Mp, const, pr["start"], np.full(pr["sel"].size, pr["first"]))
        k = npar + 1 + (0 if is_seas else 1)
        with np.errstate(all="ignore"):
            lik = cnt * np.log(css / cnt)
            aicc = lik + 2 * k + 2 * k * (k + 1) / np.maximum(cnt - k - 1, 1e-9)
        aicc = np.where((cnt - k - 1 > 0) & np.isfinite(aicc), aicc, np.inf)
        results[(is_seas, orders)] = (pr["sel"], aicc, A, Mp, const, css / np.maximum(cnt - npar, 1), E.T)
    # choose per series
    chosen_key = [None] * B
    for key, (sel, aicc, *_rest) in results.items():
        better = aicc < best["aicc"][sel]
        best["aicc"][sel[better]] = aicc[better]
        for i in sel[better]:
            chosen_key[i] = key
    Lmax = max(r[2].shape[1] for r in results.values())
    Mmax = max(r[3].shape[1] for r in results.values())
    A_all = np.zeros((B, Lmax)); M_all = np.zeros((B, Mmax))
    const = np.zeros(B); sigma2 = np.zeros(B); order = np.zeros((B, 4), int)
    Eall = np.zeros((B, T))
    for key, (sel, aicc, A, Mp, c, s2, E) in results.items():
        pos = {int(s): j for j, s in enumerate(sel)}
        rows = [i for i in sel if chosen_key[i] == key]
        if not rows:
            continue
        rows = np.asarray(rows)
        j = np.asarray([pos[int(i)] for i in rows])
        A_all[rows, : A.shape[1]] = A[j]
        M_all[rows, : Mp.shape[1]] = Mp[j]
        const[rows] = c[j]; sigma2[rows] = s2[j]; order[rows] = key[1]
        Eall[rows] = E[j]
    missing = np.array([k is None for k in chosen_key])
    if missing.any():
        # too short for any candidate: random walk (with drift) on the chosen scale
        A_all[missing, :2] = [1.0, -1.0]
        dz = np.diff(np.where(V[missing], Z[missing], np.nan), axis=1)
        with np.errstate(all="ignore"):
            const[missing] = np.nan_to_num(row_nanmean(dz))
            sigma2[missing] = np.nan_to_num(np.nanvar(dz, axis=1))
        seasonal = seasonal & ~missing
    return ARIMAFit(order=order, seasonal=seasonal, log=positive, ar_full=A_all, ma_full=M_all,
                    const=const, sigma2=sigma2, aicc=best["aicc"], Z=np.where(V, Z, np.nan), E=Eall,
                    n=n.copy(), m=m)


def _history(fit: ARIMAFit, width: int):
    """Last ``width`` values of the transformed series and residuals, (B, width)."""
    idx = fit.n[:, None] - width + np.arange(width)[None, :]
    ok = idx >= 0
    idx = np.clip(idx, 0, None)
    z = np.where(ok, np.take_along_axis(fit.Z, idx, axis=1), 0.0)
    e = np.where(ok, np.take_along_axis(fit.E, idx, axis=1), 0.0)
    return np.nan_to_num(z), e


def _recurse(fit: ARIMAFit, h: int, shocks: np.ndarray | None):
    """Forecast (shocks None) or simulate (shocks (B, S, h)) on the transformed scale."""
    A, M = fit.ar_full, fit.ma_full
    L, Q = A.shape[1] - 1, M.shape[1] - 1
    width = max(L, Q, 1)
    z, e = _history(fit, width)
    S = 1 if shocks is None else shocks.shape[1]
    zb = np.repeat(z[:, None, :], S, axis=1)
    eb = np.repeat(e[:, None, :], S, axis=1)
    zs = np.concatenate([zb, np.zeros((z.shape[0], S, h))], axis=2)
    es = np.concatenate([eb, np.zeros((z.shape[0], S, h))], axis=2)
    for i in range(h):
        t = width + i
        val = fit.const[:, None].copy() * np.ones((1, S))
        for j in range(1, L + 1):
            val -= A[:, j : j + 1] * zs[:, :, t - j]
        for j in range(1, Q + 1):
            val += M[:, j : j + 1] * es[:, :, t - j]
        if shocks is not None:
            val += shocks[:, :, i]
            es[:, :, t] = shocks[:, :, i]
        zs[:, :, t] = val
    return zs[:, :, width:]


def psi_weights(fit: ARIMAFit, h: int) -> np.ndarray:
    """MA(infinity) weights psi_0..psi_{h-1} of the full (integrated) model, (B, h)."""
    A, M = fit.ar_full, fit.ma_full
    B = A.shape[0]
    psi = np.zeros((B, h))
    psi[:, 0] = 1.0
    for j in range(1, h):
        v = M[:, j] if j < M.shape[1] else np.zeros(B)
        for i in range(1, min(j, A.shape[1] - 1) + 1):
            v = v - A[:, i] * psi[:, j - i]
        psi[:, j] = v
    return psi


def arima_forecast(fit: ARIMAFit, h: int):
    """Point forecast and forecast sd on the transformed scale: (mean_z, sd_z), each (B, h)."""
    mz = _recurse(fit, h, None)[:, 0, :]
    psi = psi_weights(fit, h)
    sd = np.sqrt(fit.sigma2[:, None] * np.cumsum(psi ** 2, axis=1))
    return mz, sd


def back(fit: ARIMAFit, z: np.ndarray) -> np.ndarray:
    """Undo the log transform where it was applied (broadcast on the leading axis)."""
    shape = (-1,) + (1,) * (z.ndim - 1)
    with np.errstate(over="ignore"):
        return np.where(fit.log.reshape(shape), np.exp(np.minimum(z, 700)), z)


def arima_simulate(fit: ARIMAFit, h: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sample paths on the original scale, (B, n_samples, h).

    On the transformed scale the model is linear and Gaussian, so a path is
    the point forecast plus the shocks filtered by the psi weights:
    ``z_{n+k} = mean_k + sum_{j<k} psi_j e_{n+k-j}``. This is exact and needs
    no per-path recursion over the lag history.
    """
    shocks = rng.standard_normal((fit.n.size, n_samples, h)) * np.sqrt(fit.sigma2)[:, None, None]
    mz, _ = arima_forecast(fit, h)
    psi = psi_weights(fit, h)
    k = np.arange(h)
    lag = k[:, None] - k[None, :]                       # (h, h): k - i
    W = np.where(lag >= 0, psi[:, np.clip(lag, 0, None)], 0.0)  # (B, h, h)
    z = mz[:, None, :] + np.einsum("bsi,bki->bsk", shocks, W, optimize=True)
    return back(fit, z)
