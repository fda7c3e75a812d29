"""Nelder-Mead minimisation of many independent problems at once.

Every row of the batch is its own optimisation problem (one series, one model
form), but all rows step together so that the objective is evaluated for the
whole batch in one vectorised call. Rows that have converged are dropped from
the active set, so late iterations only pay for the stragglers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["batched_nelder_mead", "nelder_mead_steps", "run_lockstep"]


def batched_nelder_mead(
    fun: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x0: np.ndarray,
    step: np.ndarray | float,
    *,
    max_iter: int = 200,
    ftol: float = 1e-6,
    xtol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``fun`` separately for each row of ``x0``.

    Parameters
    ----------
    fun : callable
        ``fun(x, rows)`` with ``x`` of shape ``(k, d)`` and ``rows`` the
        integer problem index of each of the ``k`` points; returns ``(k,)``
        objective values (``inf``/``nan`` for infeasible points).
    x0 : ndarray of shape (B, d)
        Starting points.
    step : float or ndarray broadcastable to (B, d)
        Initial simplex edge along each coordinate.

    Returns
    -------
    x : ndarray (B, d)
        Best point found per problem.
    f : ndarray (B,)
        Objective at ``x``.
    """
    return run_lockstep([nelder_mead_steps(x0, step, max_iter=max_iter, ftol=ftol, xtol=xtol)],
                        lambda reqs, keys: [fun(x, r) for x, r in reqs])[0]


def run_lockstep(gens, evaluate_all):
    """Advance several :func:`nelder_mead_steps` generators together.

    ``evaluate_all(requests, keys)`` receives the pending ``(points, rows)``
    and the positions of their generators in ``gens``, and returns their objective
    values; batching them into one vectorised call is the point.
    """
    results = [None] * len(gens)
    pending = {}
    for i, g in enumerate(gens):
        try:
            pending[i] = next(g)
        except StopIteration as stop:
            results[i] = stop.value
    while pending:
        keys = list(pending)
        values = evaluate_all([pending[k] for k in keys], keys)
        nxt = {}
        for k, v in zip(keys, values):
            v = np.asarray(v, dtype=float)
            v = np.where(np.isfinite(v), v, np.inf)
            try:
                nxt[k] = gens[k].send(v)
            except StopIteration as stop:
                results[k] = stop.value
        pending = nxt
    return results


def nelder_mead_steps(
    x0: np.ndarray,
    step: np.ndarray | float,
    *,
    max_iter: int = 200,
    ftol: float = 1e-6,
    xtol: float = 1e-4,
    speculate: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Generator form of :func:`batched_nelder_mead`.

    Yields ``(points, rows)`` requests and expects the objective values to be
    sent back; returns ``(x, f)`` through ``StopIteration.value``. This lets
    :func:`run_lockstep` advance several problems with one evaluation call.

    Parameters
    ----------
    fun : callable
        ``fun(x, rows)`` with ``x`` of shape ``(k, d)`` and ``rows`` the
        integer problem index of each of the ``k`` points; returns ``(k,)``
        objective values (``inf``/``nan`` for infeasible points).
    x0 : ndarray of shape (B, d)
        Starting points.
    step : float or ndarray broadcastable to (B, d)
        Initial simplex edge along each coordinate.
    speculate : int
        While at most this many rows are active, each step asks for the
        reflection, expansion and both contraction points in one request
        (fewer, larger calls; the same path and result as asking for the
        second point only where it is needed).

    Returns
    -------
    x : ndarray (B, d)
        Best point found per problem.
    f : ndarray (B,)
        Objective at ``x``.
    """
    x0 = np.asarray(x0, dtype=float)
    B, d = x0.shape
    step = np.broadcast_to(np.asarray(step, dtype=float), (B, d))


    # simplex: (B, d+1, d)
    simplex = np.repeat(x0[:, None, :], d + 1, axis=1)
    for j in range(d):
        simplex[:, j + 1, j] += step[:, j]
    allrows = np.arange(B)
    fvals = (yield simplex.reshape(-1, d), np.repeat(allrows, d + 1)).reshape(B, d + 1)

    best_x = np.empty((B, d))
    best_f = np.empty(B)
    active = allrows.copy()
    S = simplex
    F = fvals
    for it in range(max_iter):
        if active.size == 0:
            break
        order = np.argsort(F, axis=1, kind="stable")
        # plain fancy indexing: what take_along_axis does, without its per-call set-up
        ar = np.arange(F.shape[0])[:, None]
        S = S[ar, order]
        F = F[ar, order]
        # convergence check -> retire rows
        if it % 5 == 4 or it == max_iter - 1:
            with np.errstate(invalid="ignore"):
                fspread = np.abs(F[:, -1] - F[:, 0])
            xspread = np.max(np.abs(S[:, 1:, :] - S[:, :1, :]), axis=(1, 2))
            done = (fspread <= ftol * (np.abs(F[:, 0]) + 1e-12)) & (xspread <= xtol) | (
                fspread <= 1e-12
            )
            if it == max_iter - 1:
                done[:] = True
            if done.any():
                best_x[active[done]] = S[done, 0]
                best_f[active[done]] = F[done, 0]
                keep = ~done
                active, S, F = active[keep], S[keep], F[keep]
                if active.size == 0:
                    break
        n = active.size
        worst = S[:, -1]
        centroid = S[:, :-1].mean(axis=1)
        xr = centroid + (centroid - worst)
        xe = centroid + 2.0 * (centroid - worst)
        xo = centroid + 0.5 * (xr - centroid)
        xi = centroid + 0.5 * (worst - centroid)
        f_best, f_sw, f_w = F[:, 0], F[:, -2], F[:, -1]
        if n <= speculate:
            # few rows: the call costs the same for 4 points as for 1, so every
            # candidate is evaluated at once (one call per step instead of two);
            # the choices below, and so the result, are the same either way
            f4 = (yield np.concatenate([xr, xe, xo, xi]), np.tile(active, 4)).reshape(4, n)
            fr = f4[0]
        else:
            fr = yield xr, active

        expand = fr < f_best
        accept_r = (~expand) & (fr < f_sw)
        outside = (~expand) & (~accept_r) & (fr < f_w)
        inside = (~expand) & (~accept_r) & (~outside)

        # second evaluation only for the rows that need one
        second = ~accept_r
        x2 = np.empty_like(xr)
        x2[expand] = xe[expand]
        x2[outside] = xo[outside]
        x2[inside] = xi[inside]
        f2 = np.full(n, np.inf)
        if n <= speculate:
            f2[expand] = f4[1][expand]
            f2[outside] = f4[2][outside]
            f2[inside] = f4[3][inside]
        elif second.any():
            f2[second] = yield x2[second], active[second]

        new_x = worst.copy()
        new_f = f_w.copy()
        # expansion
        take_e = expand & (f2 < fr)
        take_r = (expand & ~take_e) | accept_r
        new_x[take_e], new_f[take_e] = x2[take_e], f2[take_e]
        new_x[take_r], new_f[take_r] = xr[take_r], fr[take_r]
        ok_out = outside & (f2 <= fr)
        ok_in = inside & (f2 < f_w)
        new_x[ok_out | ok_in], new_f[ok_out | ok_in] = x2[ok_out | ok_in], f2[ok_out | ok_in]
        shrink = (outside & ~ok_out) | (inside & ~ok_in)

        S[:, -1] = new_x
        F[:, -1] = new_f
        if shrink.any():
            idx = np.flatnonzero(shrink)
            best = S[idx, :1, :]
            pts = best + 0.5 * (S[idx, 1:, :] - best)
            S[idx, 1:, :] = pts
            fv = yield pts.reshape(-1, d), np.repeat(active[idx], d)
            F[idx, 1:] = fv.reshape(idx.size, d)
    return best_x, best_f


def population_search(
    fun: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x0: np.ndarray,
    radius: np.ndarray | float,
    *,
    n_pop: int = 96,
    n_rounds: int = 12,
    shrink: float = 0.65,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``fun`` for each row of ``x0`` by a shrinking random search.

    Each round draws ``n_pop`` points uniformly in a box around each row's
    best point and evaluates all of them in one call; the box shrinks by
    ``shrink`` per round. With few problems this needs ~``n_rounds`` calls
    instead of Nelder-Mead's hundreds, which is what makes one-series fits
    fast (numpy's per-call overhead dominates there). Deterministic for a
    given ``seed``.
    """
    x0 = np.asarray(x0, dtype=float)
    B, d = x0.shape
    rng = np.random.default_rng(seed)
    rad = np.broadcast_to(np.asarray(radius, dtype=float), (B, d)).copy()
    rows = np.arange(B)
    best = x0.copy()
    fbest = np.asarray(fun(best, rows), dtype=float)
    fbest = np.where(np.isfinite(fbest), fbest, np.inf)
    rep = np.repeat(rows, n_pop)
    # one design shared by every row: a row's result does not depend on the
    # other rows in the batch (so chunking a panel does not change results)
    design = rng.uniform(-1.0, 1.0, (n_rounds, n_pop, d))
    for r in range(n_rounds):
        cand = best[:, None, :] + rad[:, None, :] * design[r][None, :, :]
        f = np.asarray(fun(cand.reshape(-1, d), rep), dtype=float).reshape(B, n_pop)
        f = np.where(np.isfinite(f), f, np.inf)
        j = np.argmin(f, axis=1)
        fj = f[rows, j]
        better = fj < fbest
        best[better] = cand[rows[better], j[better]]
        fbest[better] = fj[better]
        rad *= shrink
    return best, fbest


def population_search_many(problems, evaluate_all, *, n_pop: int = 96, n_rounds: int = 12,
                           shrink: float = 0.65, seed: int = 0) -> list[np.ndarray]:
    """:func:`population_search` for several problems at once, one call per round.

    ``problems`` is a list of ``(x0, radius)``; ``evaluate_all(requests, keys)``
    is called like :func:`run_lockstep`'s, with every problem in every call.
    Returns the best point per row, per problem. Same shared-design property:
    a row's result depends only on its own objective.
    """
    rng = np.random.default_rng(seed)
    states = []
    for x0, radius in problems:
        x0 = np.asarray(x0, dtype=float)
        B, d = x0.shape
        states.append(dict(best=x0.copy(), rad=np.broadcast_to(np.asarray(radius, float), (B, d)).copy(),
                           rows=np.arange(B), design=None))
    keys = list(range(len(problems)))
    first = evaluate_all([(st["best"], st["rows"]) for st in states], keys)
    for st, f in zip(states, first):
        st["f"] = np.where(np.isfinite(f), f, np.inf)
    dmax = max((st["best"].shape[1] for st in states), default=0)
    design = rng.uniform(-1.0, 1.0, (n_rounds, n_pop, max(dmax, 1)))
    for r in range(n_rounds):
        reqs = []
        for st in states:
            B, d = st["best"].shape
            cand = st["best"][:, None, :] + st["rad"][:, None, :] * design[r][None, :, :d]
            st["cand"] = cand
            reqs.append((cand.reshape(-1, d), np.repeat(st["rows"], n_pop)))
        vals = evaluate_all(reqs, keys)
        for st, f in zip(states, vals):
            B = st["best"].shape[0]
            f = np.where(np.isfinite(f), f, np.inf).reshape(B, n_pop)
            j = np.argmin(f, axis=1)
            fj = f[st["rows"], j]
            better = fj < st["f"]
            st["best"][better] = st["cand"][st["rows"][better], j[better]]
            st["f"][better] = fj[better]
            st["rad"] *= shrink
    return [st["best"] for st in states]
