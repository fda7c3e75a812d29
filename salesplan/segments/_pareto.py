"""Pareto/NBD formulas (Schmittlein, Morrison and Colombo 1987), per customer.

Written as in Fader and Hardie's note "A Note on Deriving the Pareto/NBD
Model and Related Expressions" (2005): with ``x`` repeat purchases, the last
at ``t_x``, observed until ``T``,

    L = G(r+x) alpha^r beta^s / G(r) * [ 1 / ((alpha+T)^(r+x) (beta+T)^s) + s / (r+s+x) * A0 ]

where ``A0`` is a difference of two Gaussian hypergeometric terms whose
arguments depend on which of ``alpha`` and ``beta`` is larger (eq. 22 of the
note); choosing the branch keeps the argument ``z = |alpha - beta| / (max + t)``
in ``[0, 1)``, where the series converges. Everything is computed in logs:
``A0`` is ``term(t_x) - term(T)`` with ``term(t_x) >= term(T)``, so its log is
``log term(t_x) + log1p(-exp(log term(T) - log term(t_x)))``.

The functions take the natural parameters ``(r, alpha, s, beta)`` and NumPy
arrays; they are private helpers of :mod:`salesplan.segments.clv`.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__: list[str] = []


def _log_term(rsx: np.ndarray, second: np.ndarray, gap: float, low: float, top: float,
              other: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log of 2F1(r+s+x, second; r+s+x+1; gap / (top+t)) / (top+t)^(r+s+x).

    Near z = 1 (``gap`` large against ``low + t``, e.g. a fit where nobody
    drops out, beta -> infinity) scipy's series is slow: Pfaff's transformation
    2F1(A, B; A+1; z) = (1-z)^-A 2F1(A, A+1-B; A+1; z / (z-1)) turns the term
    into the same expression of the other branch, 2F1(A, other; A+1; -gap / (low+t))
    / (low+t)^A, whose negative argument scipy evaluates quickly and to the
    same precision.
    """
    z = gap / (top + t)
    near = z > 0.9
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.log(special.hyp2f1(rsx, second, rsx + 1.0, np.where(near, 0.0, z))) - rsx * np.log(top + t)
        if near.any():
            rn, on, tn = rsx[near], other[near], t[near]
            out[near] = np.log(special.hyp2f1(rn, on, rn + 1.0, -gap / (low + tn))) - rn * np.log(low + tn)
    return out


def _branch_terms(params: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log of the hypergeometric term of A0 at time ``t`` (``t_x`` or ``T``), per customer."""
    r, alpha, s, beta = params
    rsx = r + s + x
    if alpha >= beta:
        top, low, second, other = alpha, beta, np.full_like(x, s + 1.0), r + x
    else:
        top, low, second, other = beta, alpha, r + x, np.full_like(x, s + 1.0)
    return _log_term(rsx, second, abs(alpha - beta), low, top, other, t)


def _combine(log_first: np.ndarray, log_second: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        diff = np.minimum(log_second - log_first, 0.0)
        return log_first + np.log1p(-np.exp(diff))


def _log_a0(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """log A0 (-inf where t_x == T, where A0 is 0)."""
    x, tx, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, tx, T)))
    return _combine(_branch_terms(params, x, tx), _branch_terms(params, x, T))


class ParetoData:
    """A summary prepared for repeated likelihood evaluations while fitting.

    The hypergeometric terms depend on (x, t_x) and on (x, T) only, pairs that
    repeat a lot (one-time buyers all have x = t_x = 0; customers acquired the
    same day share T), so they are computed once per distinct pair.
    """

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray):
        self.x, self.tx, self.T = x, tx, T
        (self.x1, self.t1), self.inv1 = _distinct_pairs(x, tx)
        (self.x2, self.t2), self.inv2 = _distinct_pairs(x, T)
        self.xu, self.x_inv = np.unique(x, return_inverse=True)
        self.n = float(len(x))


def _distinct_pairs(x: np.ndarray, t: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    pairs, inverse = np.unique(np.column_stack([x, t]), axis=0, return_inverse=True)
    return (pairs[:, 0], pairs[:, 1]), inverse.ravel()


def pareto_loglik_total(params: np.ndarray, d: ParetoData) -> float:
    """Sum of :func:`pareto_loglik` over the customers of ``d``."""
    r, alpha, s, beta = params
    log_a0 = _combine(_branch_terms(params, d.x1, d.t1)[d.inv1], _branch_terms(params, d.x2, d.t2)[d.inv2])
    x = d.x
    alive_term = -(r + x) * np.log(alpha + d.T) - s * np.log(beta + d.T)
    dead_term = np.log(s) - np.log(r + s + x) + log_a0
    counts = np.bincount(d.x_inv).astype(float)
    return float(
        np.dot(counts, special.gammaln(r + d.xu)) + d.n * (-special.gammaln(r) + r * np.log(alpha) + s * np.log(beta))
        + np.sum(np.logaddexp(alive_term, dead_term))
    )


def pareto_loglik(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Log-likelihood of each customer."""
    r, alpha, s, beta = params
    rsx = r + s + x
    alive_term = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    dead_term = np.log(s) - np.log(rsx) + _log_a0(params, x, tx, T)
    return (
        special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        + np.logaddexp(alive_term, dead_term)
    )


def _log_dead_odds(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, s, beta = params
    return (
        np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
        + _log_a0(params, x, tx, T)
    )


def pareto_alive(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + s / (r+s+x) (alpha+T)^(r+x) (beta+T)^s A0)."""
    return special.expit(-_log_dead_odds(params, x, tx, T))


def _decay_integral(shape_minus_one: float, log_ratio: np.ndarray) -> np.ndarray:
    """(1 - exp(-k L)) / k, which tends to L as k -> 0 (the s = 1 case of the formulas)."""
    k = shape_minus_one
    if abs(k) < 1e-10:
        return log_ratio
    return -np.expm1(-k * log_ratio) / k


def pareto_expected(
    params: np.ndarray, t: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T] (eq. 23 of the note)."""
    r, alpha, s, beta = params
    growth = np.log1p(t / (beta + T))
    per_alive = (r + x) / (alpha + T) * (beta + T) * _decay_integral(s - 1.0, growth)
    return np.where(t > 0, per_alive * pareto_alive(params, x, tx, T), 0.0)


def pareto_population(params: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E[X(t)] for a customer just acquired: r beta / (alpha (s-1)) [1 - (beta / (beta+t))^(s-1)]."""
    r, alpha, s, beta = params
    return r / alpha * beta * _decay_integral(s - 1.0, np.log1p(t / beta))
