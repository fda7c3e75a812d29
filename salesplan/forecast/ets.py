"""Exponential smoothing (ETS) fitted for many series at once.

The state-space recursions of Hyndman et al. (2008) run over time steps with
the states of *every* (series, model form) pair held in flat arrays, so one
numpy operation advances thousands of models. Parameters are optimised by a
batched Nelder-Mead (:mod:`._nelder_mead`), one independent problem per row.

Model forms are named ``"<error><trend><season>"`` as in the literature:
error ``A``/``M``, trend ``N``/``A``/``Ad`` (damped), season ``N``/``A``/``M``
(e.g. ``"MAdM"``). Multiplicative trend is not offered (it forecasts poorly and
is off by default in R's ``forecast::ets`` too); additive-error models with
multiplicative season are excluded as numerically unstable, as in R.

Point forecasts of the ``A`` and ``M`` error versions share one recursion
(they differ in the likelihood only), so each trend/season shape is fitted
once and both likelihoods are scored at the optimum. Smoothing parameters
and the level/trend start values are optimised by Nelder-Mead; all initial
states are then refined by Gauss-Newton (see :func:`fit_ets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from salesplan.forecast._decompose import classical_seasonal_index, linear_trend, row_nanmean, row_nanstd
from salesplan.forecast._nelder_mead import batched_nelder_mead, nelder_mead_steps, population_search, run_lockstep

__all__ = ["ALL_FORMS", "parse_form", "ETSFit", "fit_ets", "fit_ets_many", "ets_forecast", "ets_simulate"]

ALL_FORMS = (
    "ANN", "AAN", "AAdN", "ANA", "AAA", "AAdA",
    "MNN", "MAN", "MAdN", "MNA", "MAA", "MAdA", "MNM", "MAM", "MAdM",
)


def parse_form(form: str) -> tuple[str, str, str]:
    """Split ``"MAdM"`` into ``("M", "Ad", "M")``."""
    err, rest = form[0], form[1:]
    trend = rest[:2] if rest.startswith("Ad") else rest[:1]
    season = rest[len(trend):]
    if err not in "AM" or trend not in ("N", "A", "Ad") or season not in ("N", "A", "M"):
        raise ValueError(f"unknown ETS form {form!r}")
    return err, trend, season


def _sig(u: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(u, -50, 50)))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


@dataclass
class _Elements:
    """Flat description of the (series, form) rows being fitted."""

    series: np.ndarray      # series index of each row
    form: np.ndarray        # form name per row
    mult_err: np.ndarray
    trend: np.ndarray
    damped: np.ndarray
    season: np.ndarray      # 0 none, 1 additive, 2 multiplicative
    l0: np.ndarray
    b0: np.ndarray
    s0: np.ndarray          # (rows, m)
    scale: np.ndarray


@dataclass
class ETSFit:
    """Fitted ETS models, one row per series (the selected form)."""

    form: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    phi: np.ndarray
    l: np.ndarray
    b: np.ndarray
    s: np.ndarray           # (B, m) seasonal states, column j = position t % m
    n: np.ndarray
    m: int
    sigma2: np.ndarray
    aicc: np.ndarray
    mult_err: np.ndarray
    season: np.ndarray
    residuals: np.ndarray = field(repr=False)   # (B, T) one-step errors, NaN padded
    fitted: np.ndarray = field(repr=False)

    def take(self, idx: np.ndarray) -> "ETSFit":
        kw = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            kw[name] = v if name == "m" else v[idx]
        return ETSFit(**kw)


def _initial_states(Y, n, m, season_type):
    """Heuristic initial states (Hyndman et al. 2008, sec. 2.6.1), per series.

    Returns l0, b0 of shape (B,) and s0 of shape (B, m) for the requested
    seasonal type ("N", "A" or "M").
    """
    B, T = Y.shape
    s0 = np.zeros((B, m)) if season_type != "M" else np.ones((B, m))
    sa = Y.copy()
    if season_type != "N" and m > 1:
        years = np.clip(n // m, 2, 3)
        for yrs in np.unique(years):
            sel = years == yrs
            k = int(yrs * m)
            Yk = Y[sel, :k]
            idx = classical_seasonal_index(Yk, np.minimum(n[sel], k), m, multiplicative=season_type == "M")
            s0[sel] = idx
        reps = np.tile(s0, (1, T // m + 1))[:, :T]
        sa = Y / reps if season_type == "M" else Y - reps
    k = np.minimum(10, n)
    t = np.arange(T, dtype=float)[None, :] + 1.0
    mask = t <= k[:, None]
    tm, ym, slope = linear_trend(np.where(mask, sa, 0.0), mask.astype(float), t)
    l0_trend = ym - slope * tm
    return ym, l0_trend, slope, s0


def _run(U, rows, E: _Elements, YT, VT, m, *, final=False, n=None, spec=None, both=False):
    """Run the recursion for points ``U`` (k, 6) of rows ``rows``.

    ``spec`` = (mult_err, trend, damped, season) when all rows share one form,
    which lets the loop skip the operations that form does not need.
    Returns the objective (k,) or, with ``final``, a dict of end states.
    """
    if spec is None:
        spec = (bool(E.mult_err[rows].any()), bool(E.trend[rows].any()),
                bool(E.damped[rows].any()), int(E.season[rows].max()))
        mixed = True
    else:
        mixed = False
    s_merr, s_trend, s_damped, s_season = spec
    trend = E.trend[rows]
    damped = E.damped[rows]
    season = E.season[rows]
    mult = season == 2
    merr = E.mult_err[rows]
    alpha = 1e-4 + (1 - 2e-4) * _sig(U[:, 0])
    beta = np.where(trend, 0.999 * alpha * _sig(U[:, 1]), 0.0)
    gamma = np.where(season > 0, 0.999 * (1 - alpha) * _sig(U[:, 2]), 0.0)
    phi = np.where(damped, 0.8 + 0.18 * _sig(U[:, 3]), np.where(trend, 1.0, 0.0))
    sc = E.scale[rows]
    l = E.l0[rows] + sc * U[:, 4]
    b = np.where(trend, E.b0[rows] + 0.1 * sc * U[:, 5], 0.0)
    S = np.ascontiguousarray(E.s0[rows].T)  # (m, k)
    series = E.series[rows]
    Yr = YT[:, series]
    Vr = VT[:, series]
    all_valid = (Vr > 0).all(axis=1).tolist()
    k = rows.size
    T = YT.shape[0]
    sse = np.zeros(k)
    sre = np.zeros(k)
    slog = np.zeros(k)
    mumin = np.full(k, np.inf)
    one = np.ones(k)
    needs_rel = merr | mult
    any_rel = bool(needs_rel.any()) or both
    prod = np.ones(k)
    all_mult = bool(mult.all())
    any_mult = bool(mult.any())
    if final:
        res = np.full((T, k), np.nan)
        fit = np.full((T, k), np.nan)
        nn = n[series]
        l_end = l.copy(); b_end = b.copy(); S_end = S.copy()
        ends = {}
        for i, e in enumerate(nn):
            ends.setdefault(int(e) - 1, []).append(i)
        ends = {t: np.asarray(v) for t, v in ends.items()}
    with np.errstate(all="ignore"):
        for t in range(T):
            yt = Yr[t]
            vt = Vr[t]
            q = l + phi * b if s_trend else l
            if s_season:
                j = t % m
                si = S[j]
                if mixed and any_mult:
                    mu = np.where(mult, q * si, q + si)
                elif all_mult:
                    mu = q * si
                else:
                    mu = q + si
            else:
                mu = q
            # steps where every row is observed (all of them, for a panel of
            # equal-length series) skip the masking: same values, fewer calls
            full = all_valid[t]
            eps = yt - mu if full else (yt - mu) * vt
            sse += eps * eps
            if any_rel:
                rel = eps / mu
                sre += rel * rel
                # log|mu| summed in batches of products: one log per 8 steps
                prod *= np.abs(mu) if full else np.where(vt > 0, np.abs(mu), 1.0)
                if t % 8 == 7:
                    slog += np.log(prod)
                    prod[:] = 1.0
                np.minimum(mumin, mu if full else np.where(vt > 0, mu, np.inf), out=mumin)
            if s_season:
                if mixed and any_mult:
                    ae = eps / np.where(mult, si, one)
                    S[j] = si + gamma * eps / np.where(mult, q, one)
                elif all_mult:
                    ae = eps / si
                    S[j] = si + gamma * eps / q
                else:
                    ae = eps
                    S[j] = si + gamma * eps
            else:
                ae = eps
            l = q + alpha * ae
            if s_trend:
                b = phi * b + beta * ae
            if final:
                res[t] = eps if full else np.where(vt > 0, eps, np.nan)
                fit[t] = mu if full else np.where(vt > 0, mu, np.nan)
                if t in ends:
                    ix = ends[t]
                    l_end[ix] = l[ix]
                    if s_trend:
                        b_end[ix] = b[ix]
                    S_end[:, ix] = S[:, ix]
    with np.errstate(all="ignore"):
        slog += np.log(prod)
    nobs = Vr.sum(axis=0)
    with np.errstate(all="ignore"):
        lik_a = nobs * np.log(sse / nobs)
        lik_m = nobs * np.log(sre / nobs) + 2.0 * slog
        lik = np.where(merr, lik_m, lik_a)
    bad = needs_rel & ~(mumin > 0)
    lik = np.where(bad | ~np.isfinite(lik), np.inf, lik)
    if not final:
        return lik
    return dict(
        lik=lik, lik_a=np.where(np.isfinite(lik_a), lik_a, np.inf),
        lik_m=np.where(needs_rel & ~(mumin > 0) | ~np.isfinite(lik_m), np.inf, lik_m),
        mse_a=sse / nobs, mse_m=sre / nobs, rel=(res / fit).T, alpha=alpha, beta=beta, gamma=gamma, phi=phi, l=l_end, b=b_end,
        s=S_end.T, nobs=nobs, residuals=res.T, fitted=fit.T,
    )


def _refine_initial_states(U, E: _Elements, YT, VT, m, n, *, n_iter=2, block=40000):
    """Gauss-Newton steps on the initial states (level, trend, m seasonal).

    The heuristic seasonal start values are noisy on short series, which
    makes seasonal forms look worse than they are. With the smoothing
    parameters fixed, the one-step errors are (nearly, exactly for additive
    forms) linear in the initial states, so a couple of damped Gauss-Newton
    steps, with Jacobians by finite differences computed for all rows in one
    vectorised pass, fit them. Steps that do not lower the objective are
    rejected per row. Updates ``E`` in place (and zeroes ``U``'s offsets).
    """
    R = E.series.size
    E.l0 = E.l0 + E.scale * U[:, 4]
    E.b0 = np.where(E.trend, E.b0 + 0.1 * E.scale * U[:, 5], 0.0)
    U[:, 4:6] = 0.0
    p = 2 + m
    active = np.ones((R, p), dtype=bool)
    active[:, 1] = E.trend
    active[:, 2:] = (E.season > 0)[:, None]
    rel = E.mult_err | (E.season == 2)
    lik_old = _run(U, np.arange(R), E, YT, VT, m)
    for _ in range(n_iter):
        theta = np.concatenate([E.l0[:, None], E.b0[:, None], E.s0], axis=1)
        step = 1e-4 * np.maximum(np.abs(theta), E.scale[:, None] * 1e-2)
        step = np.where(E.season[:, None] == 2, np.maximum(step, 1e-5), step)
        T = YT.shape[0]
        J = np.zeros((R, T, p))
        r0 = np.zeros((R, T))
        # rows of the big batch: base point then one perturbation per parameter
        base_rows = np.repeat(np.arange(R), p + 1)
        which = np.tile(np.arange(-1, p), R)
        for lo in range(0, base_rows.size, block):
            br = base_rows[lo:lo + block]
            wj = which[lo:lo + block]
            th = theta[br].copy()
            hit = wj >= 0
            th[hit, wj[hit]] += step[br[hit], wj[hit]]
            Eb = _Elements(E.series[br], E.form[br], E.mult_err[br], E.trend[br], E.damped[br],
                           E.season[br], th[:, 0], th[:, 1], th[:, 2:], E.scale[br])
            out = _run(U[br], np.arange(br.size), Eb, YT, VT, m, final=True, n=n)
            res = np.nan_to_num(np.where(rel[br][:, None], out["residuals"] / out["fitted"], out["residuals"]))
            base = ~hit
            r0[br[base]] = res[base]
            J[br[hit], :, wj[hit]] = res[hit]
        J = (J - r0[:, :, None]) / step[:, None, :]
        J *= active[:, None, :]
        # einsum, not matmul: BLAS blocks the sum over time by its length, so
        # a batch's padding would change the last bit (einsum's sums do not)
        JTJ = np.einsum("rtp,rtq->rpq", J, J)
        lam = 1e-6 * np.maximum(np.trace(JTJ, axis1=1, axis2=2), 1e-12)[:, None, None]
        JTJ = JTJ + lam * np.eye(p)[None] + np.eye(p)[None] * (~active)[:, :, None]
        JTr = np.einsum("rtp,rt->rp", J, r0)
        try:
            delta = -np.linalg.solve(JTJ, JTr[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            break
        delta = np.where(active & np.isfinite(delta), delta, 0.0)
        new = theta + delta
        bad_mult = (E.season == 2) & np.any(new[:, 2:] <= 0, axis=1)
        new[bad_mult] = theta[bad_mult]
        E2 = _Elements(E.series, E.form, E.mult_err, E.trend, E.damped, E.season,
                       new[:, 0], new[:, 1], new[:, 2:], E.scale)
        lik_new = _run(U, np.arange(R), E2, YT, VT, m)
        ok = lik_new < lik_old
        E.l0 = np.where(ok, new[:, 0], E.l0)
        E.b0 = np.where(ok, new[:, 1], E.b0)
        E.s0 = np.where(ok[:, None], new[:, 2:], E.s0)
        lik_old = np.where(ok, lik_new, lik_old)


def _n_params(trend, damped, season, m):
    return 2 + 2 * trend + damped + np.where(season > 0, m, 0) + 1


def fit_ets(
    Y: np.ndarray,
    n: np.ndarray,
    m: int,
    *,
    forms: tuple[str, ...] | None = None,
    max_iter: int = 80,
    ftol: float = 1e-4,
    xtol: float = 1e-3,
    optimizer: str = "nm",
    refine: bool = True,
    lockstep: bool = True,
    _requested: dict | None = None,
) -> ETSFit:
    """Fit every allowed ETS form to every series and keep the best by AICc.

    Parameters
    ----------
    Y : ndarray (B, T)
        Start-aligned, NaN-padded series.
    n : ndarray (B,)
        Number of observations per series.
    m : int
        Season length (1 for non-seasonal).
    forms : tuple of str, optional
        Candidate forms (default: all of :data:`ALL_FORMS`). Per series, forms
        are dropped when they cannot apply: multiplicative ones unless all
        values are positive, seasonal ones unless ``m > 1`` and ``n >= 2 m``,
        and any whose parameter count leaves too few degrees of freedom.
    optimizer : {"nm", "population"}
        Batched Nelder-Mead (default; ``"auto"`` is accepted as a synonym) or
        a shrinking random search. Either optimises each row on its own, so a
        series' fit does not depend on the other series of the batch; the
        optimiser is never chosen by batch size, since the two reach slightly
        different optima.
    refine : bool
        After the first optimisation, fit the initial states (level, trend
        and the ``m`` seasonal states, heuristic until then) by Gauss-Newton
        steps, then re-polish the smoothing parameters. It costs about one
        more optimisation pass and matters on short seasonal series, where
        noisy start values make seasonal forms lose the AICc comparison.
    lockstep : bool
        Advance the Nelder-Mead searches of all forms together, one mixed
        recursion per step (fewer, larger numpy calls).
    _requested : dict, optional
        ``{form: (B,) bool}``: which of ``forms`` each series may use (all of
        them when omitted); see :func:`fit_ets_many`.
    """
    Y = np.asarray(Y, dtype=float)
    n = np.asarray(n, dtype=int)
    B, T = Y.shape
    forms = tuple(forms or ALL_FORMS)
    positive = np.nanmin(np.where(np.isnan(Y), np.inf, Y), axis=1) > 0
    init = {}
    for st in {parse_form(f)[2] for f in forms}:
        if st != "N" and m <= 1:
            continue
        init[st] = _initial_states(Y, n, m if m > 1 else 1, st)
    scale = row_nanstd(Y)
    absmean = row_nanmean(np.abs(Y))
    scale = np.where(scale > 0, scale, np.maximum(absmean, 1.0)) * 0.5

    # One row per (series, trend/season shape). The A- and M-error versions of
    # a shape share the recursion, so each row is optimised once (on the
    # M-error likelihood where the series is positive and M is requested,
    # else on the A-error one) and both likelihoods are scored at the optimum.
    shapes = {}
    for f in forms:
        err, tr, se = parse_form(f)
        shapes.setdefault(tr + se, set()).add(err)
    rows_series, rows_form, rows_err_a, rows_err_m = [], [], [], []
    for shape, errs in shapes.items():
        _, tr, se = parse_form("A" + shape)
        if se != "N" and (m <= 1 or se not in init):
            continue
        if _requested is None:
            allow_a = np.full(B, "A" in errs and se != "M")
            allow_m = positive & ("M" in errs)
        else:
            none = np.zeros(B, dtype=bool)
            allow_a = _requested.get("A" + shape, none) & (se != "M")
            allow_m = positive & _requested.get("M" + shape, none)
        ok = allow_a | allow_m
        if se == "M":
            ok &= positive
        if se != "N":
            ok &= n >= 2 * m
        k = _n_params(int(tr != "N"), int(tr == "Ad"), {"N": 0, "A": 1, "M": 2}[se], m)
        ok &= n >= k + 2
        idx = np.flatnonzero(ok)
        rows_series.append(idx)
        rows_form.append(np.full(idx.size, shape, dtype=object))
        rows_err_a.append(allow_a[idx])
        rows_err_m.append(allow_m[idx])
    if not rows_series:
        raise ValueError("no ETS form applies to these series")
    series = np.concatenate(rows_series)
    shape = np.concatenate(rows_form)
    allow_a = np.concatenate(rows_err_a)
    allow_m = np.concatenate(rows_err_m)
    parsed = [parse_form("A" + f) for f in shape]
    mult_err = allow_m.copy()  # optimisation objective
    trend = np.array([p[1] != "N" for p in parsed], dtype=bool)
    damped = np.array([p[1] == "Ad" for p in parsed], dtype=bool)
    season = np.array([{"N": 0, "A": 1, "M": 2}[p[2]] for p in parsed], dtype=int)
    R = series.size
    mm = max(m, 1)
    l0 = np.empty(R); b0 = np.zeros(R); s0 = np.zeros((R, mm))
    for st, code in (("N", 0), ("A", 1), ("M", 2)):
        sel = season == code
        if not sel.any():
            continue
        lvl, l_tr, slope, s_init = init[st]
        srs = series[sel]
        l0[sel] = np.where(trend[sel], l_tr[srs], lvl[srs])
        b0[sel] = np.where(trend[sel], slope[srs], 0.0)
        s0[sel] = s_init[srs][:, :mm] if s_init.shape[1] >= mm else 0.0
    E = _Elements(series, shape, mult_err, trend, damped, season, l0, b0, s0, scale[series])
    YT = np.ascontiguousarray(np.nan_to_num(Y, nan=0.0).T)
    VT = np.ascontiguousarray((~np.isnan(Y)).T.astype(float))

    U = np.zeros((R, 6))
    U[:, 0] = _logit(0.2)
    U[:, 1] = _logit(0.1)
    U[:, 2] = _logit(0.05)
    U[:, 3] = _logit(0.85)
    def optimise(max_iter, spread=1.0):
        if optimizer == "population":
            # a shrinking random search over every row at once (one mixed
            # recursion per round): few calls, but ~10x the evaluations
            radius = spread * np.array([3.0, 3.0, 3.0, 3.0, 1.0, 1.0])[None, :] * np.ones((R, 1))
            radius[:, 1] *= trend
            radius[:, 5] *= trend
            radius[:, 2] *= season > 0
            radius[:, 3] *= damped
            # the polish after the initial-state refinement starts close: fewer rounds
            rounds = 12 if spread >= 1.0 else 7
            U[:] = population_search(lambda x, r: _run(x, r, E, YT, VT, mm), U, radius, n_rounds=rounds)[0]
        elif lockstep:
            # every form's Nelder-Mead advances together: one mixed recursion
            # per step for all rows, so numpy's per-call overhead is paid once
            gens, maps = [], []
            key = np.array([f + ("M" if e else "A") for f, e in zip(shape, mult_err)], dtype=object)
            for kk in np.unique(key):
                grp = np.flatnonzero(key == kk)
                _, tr_, se_ = parse_form("A" + kk[:-1])
                tr, dp, se = tr_ != "N", tr_ == "Ad", se_ != "N"
                free = [0] + ([1] if tr else []) + ([2] if se else []) + ([3] if dp else []) + [4] + ([5] if tr else [])
                free = np.asarray(free)
                step = np.array([1.0, 1.0, 1.0, 1.0, 0.2, 0.2])[free]
                gens.append(nelder_mead_steps(U[np.ix_(grp, free)], step, max_iter=max_iter, ftol=ftol, xtol=xtol))
                maps.append((grp, free))

            def evaluate_all(requests, keys):
                fulls, rows, sizes = [], [], []
                for (x, r), i in zip(requests, keys):
                    grp, free = maps[i]
                    full = np.repeat(U[grp[0]][None, :], x.shape[0], axis=0)
                    full[:, free] = x
                    fulls.append(full)
                    rows.append(grp[r])
                    sizes.append(x.shape[0])
                vals = _run(np.concatenate(fulls), np.concatenate(rows), E, YT, VT, mm)
                return np.split(vals, np.cumsum(sizes)[:-1])

            for (grp, free), (xbest, _) in zip(maps, run_lockstep(gens, evaluate_all)):
                U[np.ix_(grp, free)] = xbest
        else:
            # groups share shape and objective, so the loop runs the specialised path
            key = np.array([f + ("M" if e else "A") for f, e in zip(shape, mult_err)], dtype=object)
            for kk in np.unique(key):
                grp = np.flatnonzero(key == kk)
                _, tr_, se_ = parse_form("A" + kk[:-1])
                tr, dp, se = tr_ != "N", tr_ == "Ad", se_ != "N"
                spec = (kk[-1] == "M", tr, dp, {"N": 0, "A": 1, "M": 2}[se_])
                free = [0] + ([1] if tr else []) + ([2] if se else []) + ([3] if dp else []) + [4] + ([5] if tr else [])
                free = np.asarray(free)
                step = np.array([1.0, 1.0, 1.0, 1.0, 0.2, 0.2])[free]

                def obj(x, r, free=free, grp=grp, spec=spec):
                    full = np.repeat(U[grp[0]][None, :], x.shape[0], axis=0)
                    full[:, free] = x
                    return _run(full, grp[r], E, YT, VT, mm, spec=spec)

                xbest, _ = batched_nelder_mead(obj, U[np.ix_(grp, free)], step, max_iter=max_iter,
                                               ftol=ftol, xtol=xtol)
                U[np.ix_(grp, free)] = xbest



    optimise(max_iter)
    if refine:
        _refine_initial_states(U, E, YT, VT, mm, n)
        optimise(max(max_iter // 3, 20), spread=0.3)

    out = _run(U, np.arange(R), E, YT, VT, mm, final=True, n=n, both=True)
    nobs = out["nobs"]
    npar = _n_params(trend.astype(int), damped.astype(int), season, mm)
    with np.errstate(all="ignore"):
        pen = 2 * npar + 2 * npar * (npar + 1) / np.maximum(nobs - npar - 1, 1e-9)
        aicc_a = np.where(allow_a & (nobs - npar - 1 > 0), out["lik_a"] + pen, np.inf)
        aicc_m = np.where(allow_m & (nobs - npar - 1 > 0), out["lik_m"] + pen, np.inf)
    aicc_a = np.where(np.isfinite(aicc_a), aicc_a, np.inf)
    aicc_m = np.where(np.isfinite(aicc_m), aicc_m, np.inf)
    use_m = aicc_m < aicc_a
    aicc = np.minimum(aicc_a, aicc_m)
    # best row per series: sort by (series, aicc) and keep the first of each series
    order = np.lexsort((aicc, series))
    first = np.r_[True, series[order][1:] != series[order][:-1]]
    best = np.full(B, -1)
    best[series[order][first]] = order[first]
    if np.any(best < 0):
        missing = np.flatnonzero(best < 0)
        raise ValueError(f"no ETS form could be fitted for series at positions {missing[:5].tolist()}")
    sel = best
    dof = np.maximum(nobs[sel] - npar[sel], 1)
    merr = use_m[sel]
    sigma2 = np.where(merr, out["mse_m"][sel], out["mse_a"][sel]) * nobs[sel] / dof
    resid = np.where(merr[:, None], out["rel"][sel], out["residuals"][sel])
    form = np.array([("M" if e else "A") + f for e, f in zip(merr, shape[sel])])
    return ETSFit(
        form=form, alpha=out["alpha"][sel], beta=out["beta"][sel],
        gamma=out["gamma"][sel], phi=out["phi"][sel], l=out["l"][sel], b=out["b"][sel],
        s=out["s"][sel], n=n.copy(), m=mm, sigma2=sigma2, aicc=aicc[sel],
        mult_err=merr, season=season[sel], residuals=resid, fitted=out["fitted"][sel],
    )


def fit_ets_many(problems: list, m: int, **kw) -> list[ETSFit]:
    """:func:`fit_ets` for several problems ``(Y, n, forms)`` at once, one fit each.

    The series of all problems are stacked and fitted in one batch, so the
    optimiser's vectorised calls are shared (one single-series forecast asks
    for several small smoothing fits; each call costs about as much as a
    batch). Every row of the batch is optimised on its own, so each result
    equals the separate :func:`fit_ets` call. Problems must share ``m`` and
    the series length axis ``T``.
    """
    T = {np.shape(Y)[1] for Y, _, _ in problems}
    if len(problems) == 1 or len(T) > 1:
        return [fit_ets(Y, n, m, forms=forms, **kw) for Y, n, forms in problems]
    forms = [tuple(f or ALL_FORMS) for _, _, f in problems]
    union = tuple(dict.fromkeys(f for fs in forms for f in fs))
    sizes = [np.shape(Y)[0] for Y, _, _ in problems]
    requested = {f: np.concatenate([np.full(b, f in fs) for b, fs in zip(sizes, forms)]) for f in union}
    fit = fit_ets(np.vstack([Y for Y, _, _ in problems]), np.concatenate([n for _, n, _ in problems]), m,
                  forms=union, _requested=requested, **kw)
    bounds = np.cumsum([0] + sizes)
    return [fit.take(np.arange(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]


def ets_forecast(fit: ETSFit, h: int) -> np.ndarray:
    """Point forecasts (conditional means of the A-error recursion), shape ``(B, h)``."""
    steps = np.arange(1, h + 1)
    phi = fit.phi[:, None]
    with np.errstate(all="ignore"):
        phisum = np.where(
            np.isclose(phi, 1.0), steps[None, :].astype(float),
            phi * (1 - phi ** steps[None, :]) / (1 - phi),
        )
    phisum = np.where(fit.b[:, None] == 0, 0.0, phisum)
    trend_part = fit.l[:, None] + phisum * fit.b[:, None]
    pos = (fit.n[:, None] + steps[None, :] - 1) % fit.m
    s = np.take_along_axis(fit.s, pos, axis=1)
    mult = (fit.season == 2)[:, None]
    add = (fit.season == 1)[:, None]
    return np.where(mult, trend_part * s, np.where(add, trend_part + s, trend_part))


def ets_simulate(fit: ETSFit, h: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sample future paths from the fitted state-space models, shape ``(B, n_samples, h)``."""
    B = fit.l.size
    sd = np.sqrt(np.maximum(fit.sigma2, 0.0))[:, None]
    l = np.repeat(fit.l[:, None], n_samples, axis=1)
    b = np.repeat(fit.b[:, None], n_samples, axis=1)
    S = np.repeat(fit.s[:, :, None], n_samples, axis=2)  # (B, m, S)
    alpha, beta, gamma, phi = (x[:, None] for x in (fit.alpha, fit.beta, fit.gamma, fit.phi))
    mult = (fit.season == 2)[:, None]
    merr = fit.mult_err[:, None]
    out = np.empty((B, n_samples, h))
    ar = np.arange(B)
    with np.errstate(all="ignore"):
        for i in range(h):
            pos = (fit.n + i) % fit.m
            si = S[ar, pos, :]
            q = l + phi * b
            mu = np.where(mult, q * si, q + si)
            z = rng.standard_normal((B, n_samples)) * sd
            y = np.where(merr, mu * (1 + z), mu + z)
            eps = y - mu
            ae = eps / np.where(mult, si, 1.0)
            l = q + alpha * ae
            b = phi * b + beta * ae
            S[ar, pos, :] = si + gamma * eps / np.where(mult, q, 1.0)
            out[:, :, i] = y
    return out
