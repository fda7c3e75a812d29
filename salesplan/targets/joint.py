"""One joint distribution per plan: coherent sample paths from the planned units up to the company.

A plan is read at several levels at once (rep, team, region, company), and
every probability on the page must come from one simulated future. This
module simulates every node of the plan's hierarchy **jointly** and
reconciles the paths so that, in every path, each parent equals the sum of
its children:

1. **Base paths, jointly.** Every node (the planned units and each node
   above them) gets a simple model of its own:

   * a node with two years of activity: a seasonal random walk with drift
     (next March = last March + the average year-over-year change + a shock);
   * a younger node (a new rep, a short history): its run rate since its
     first sale, shaped by the company's seasonal profile, plus a shock.

   The shocks are the node's own past errors (year-over-year changes around
   their mean, or deviations from the run rate), **drawn at the same past
   month for every node in a path**: when the whole company had a bad March,
   every rep's simulated March draws from that bad March together. The
   drift and run rate are redrawn per path (a bootstrap of their mean), so
   the spread includes the uncertainty of the growth itself.
   Units of one company share a market, so their peers inform each unit
   (:func:`pool_units`): each unit with a full year is centred on its
   last year grown at the growth of all units together, and gets at least
   the spread with which units' growth differed from each other last year,
   with heavy (Student-t) tails (one unit's trend of one year overshoots;
   twelve of its months understate how much its year can move).
   A company's growth also moves as a whole from one year to the next,
   which two or three years of months say little about: where the
   AICc-selected statistical model of the units' total gives that total a
   wider range, one common factor per path, the same for every node,
   widens the paths to it (:func:`common_factor`).
2. **Reconciliation.** The base paths of the parents are not exactly the sums
   of their children's (each node has its own model), so every path is
   projected onto the coherent subspace with
   :func:`salesplan.forecast.hierarchy.projection_matrix`: ``bottom_up``,
   ``ols``, ``wls_struct`` or ``mint_shrink`` (MinT with the shrunk
   covariance of the nodes' past errors). ``method="auto"`` picks the one
   with the lowest scaled CRPS of the last complete year of history, planned
   from the data before it (a one-origin backtest, stored in ``backtest_``).

Every probability is then a count over the same paths:
``P(node reaches quota) = mean over paths of [node total >= node quota]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_choice, check_columns, check_frame, check_positive_int
from salesplan.errors import SalesplanDataError, SalesplanError

__all__ = ["RECONCILE_METHODS", "JointForecast", "simulate_paths", "pool_units", "common_factor", "ramp_units",
           "crps_samples",
           "node_probabilities"]

#: Reconciliation methods the joint forecast can use (``"auto"`` picks one by backtest).
RECONCILE_METHODS: tuple[str, ...] = ("bottom_up", "ols", "wls_struct", "mint_shrink")
_SEASON = 12
# Student-t degrees of freedom of a unit's own year, and that distribution's median absolute deviation.
_T_DF = 4
_T4_MAD = 0.7407


# ---------------------------------------------------------------------------
# Kernels (arrays in, arrays out)
# ---------------------------------------------------------------------------

def _residuals(Y: np.ndarray, season: int = _SEASON) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each node's model, errors and the month profile.

    Returns ``(kind, R, centre, profile)``: ``kind`` True for seasonal
    random-walk nodes; ``R`` (nodes, T) past errors with NaN where undefined;
    ``centre`` the drift (seasonal nodes) or run rate (the others) per node;
    ``profile`` (season,) mean-1 multiplicative seasonal profile of the
    positions ``t % season`` (flat when there is less than two seasons).
    """
    n, T = Y.shape
    nz = Y != 0
    first = np.where(nz.any(axis=1), nz.argmax(axis=1), T)
    span = T - first
    seasonal = span >= 2 * season
    total = Y.sum(axis=0)
    profile = np.ones(season)
    if T >= 2 * season and total[-2 * season:].sum() > 0:
        last = total[T - 2 * season:]
        pos = (np.arange(T - 2 * season, T)) % season
        by = np.bincount(pos, weights=last, minlength=season)
        if (by > 0).all():
            profile = by / by.mean()
    t = np.arange(T)
    R = np.full((n, T), np.nan)
    centre = np.zeros(n)
    if T > season:
        D = Y[:, season:] - Y[:, :-season]
        valid = (t[None, season:] >= (first[:, None] + season)) & seasonal[:, None]
        R[:, season:] = np.where(valid, D, np.nan)
        cnt = valid.sum(axis=1)
        drift = np.where(valid, D, 0.0).sum(axis=1) / np.maximum(cnt, 1)
        centre = np.where(seasonal, np.nan_to_num(drift), 0.0)
    prof_t = profile[t % season]
    young = ~seasonal & (span > 0)
    if young.any():
        active = t[None, :] >= first[:, None]
        recent = active & (t[None, :] >= T - season)
        deseason = Y / prof_t[None, :]
        rate = np.where(recent, deseason, 0.0).sum(axis=1) / np.maximum(recent.sum(axis=1), 1)
        # Deviations over the same months as the run rate, so that they are centred on it: the
        # months before (a rep's ramp-up) would pull every simulated month down.
        dev = np.where(recent, deseason - rate[:, None], np.nan)
        R[young] = dev[young]
        centre[young] = rate[young]
    R[seasonal] = R[seasonal] - centre[seasonal][:, None]
    return seasonal, R, centre, profile


def _filled(R: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Errors on the shared window, a node's gaps filled from its own errors (in turn)."""
    out = np.zeros((R.shape[0], len(window)))
    for i in range(R.shape[0]):
        row = R[i, window]
        ok = ~np.isnan(row)
        if ok.all():
            out[i] = row
            continue
        own = R[i][~np.isnan(R[i])]
        if len(own) == 0:
            continue
        out[i] = row
        gaps = np.flatnonzero(~ok)
        out[i, gaps] = own[np.arange(len(gaps)) % len(own)]
    return out


def simulate_paths(
    Y: np.ndarray,
    h: int,
    *,
    n_samples: int = 1000,
    seed: int = 0,
    season: int = _SEASON,
    block: bool = True,
    drift: float = 1.0,
    spread: float = 1.0,
) -> np.ndarray:
    """Joint sample paths of every row of ``Y`` for ``h`` months (the kernel of :class:`JointForecast`).

    Parameters
    ----------
    Y : ndarray (nodes, T)
        Monthly history of every node on one calendar (zeros before a node starts).
    h : int
        Months to simulate after the last column.

    Returns
    -------
    ndarray (nodes, h, n_samples)
        Paths, non-negative where the history is; the shocks of path ``k`` at
        month ``j`` come from the same past month for every node.
    """
    Y = np.asarray(Y, dtype=float)
    n, T = Y.shape
    rng = np.random.default_rng(seed)
    seasonal, R, centre, profile = _residuals(Y, season)
    start = season if T >= 2 * season else 0
    window = np.arange(start, T)
    E = _filled(R, window)  # (n, W)
    W = len(window)
    if block:
        # Runs of consecutive past months (wrapping around): errors that persist for months
        # (a lost account, a strong quarter) keep their weight in the annual total. Runs are at
        # most a season long and at most a third of the window, so that a short history still
        # gives different annual sums (one 12-month run of 12 months would always sum the same).
        L = int(max(1, min(season, W // 3)))
        n_blocks = -(-h // L)
        starts = rng.integers(0, W, size=(n_blocks, n_samples))
        tau = ((starts[:, None, :] + np.arange(L)[None, :, None]) % W).reshape(n_blocks * L, n_samples)[:h]
    else:
        tau = rng.integers(0, W, size=(h, n_samples))
    shocks = spread * E[:, tau]  # (n, h, k): one past month per future month and path, shared by all nodes
    # The drift or run rate redrawn per path: a bootstrap of its mean over the node's own errors.
    m = np.maximum((~np.isnan(R)).sum(axis=1), 1)
    tau2 = rng.integers(0, W, size=(W, n_samples))
    boot = E[:, tau2].mean(axis=1) * np.sqrt(W / m)[:, None]  # (n, k)
    centre = np.where(seasonal, drift * centre, centre)
    level = centre[:, None] + boot * spread
    out = np.empty((n, h, n_samples))
    pos = (T + np.arange(h)) % season
    negative_ok = (Y < 0).any(axis=1)
    for j in range(h):
        if j < season and T >= season:
            prev = np.broadcast_to(Y[:, T - season + j][:, None], (n, n_samples))
        elif j >= season:
            prev = out[:, j - season, :]
        else:
            prev = np.zeros((n, n_samples))
        rw = prev + level + shocks[:, j, :]
        young = (level + shocks[:, j, :]) * profile[pos[j]]
        out[:, j, :] = np.where(seasonal[:, None], rw, young)
    return np.where(negative_ok[:, None, None], out, np.maximum(out, 0.0))


def pool_units(Y: np.ndarray, paths: np.ndarray, *, season: int = _SEASON, min_units: int = 5,
               seed: int = 0) -> np.ndarray:
    """Borrow strength across the units of one level: common growth and the peers' spread of fortunes.

    A unit's own last year of monthly changes says little about its next
    year: one good year extrapolated as a trend overshoots, and twelve months
    of errors understate how much a unit's year can differ from the last
    (a lost account, a reassigned territory). Its peers say more. With at
    least ``min_units`` units that have two full years:

    * the common growth is that of all these units together (``sum last
      year / sum year before``);
    * each unit's own deviation is its log growth around that common growth;
      their spread (the median absolute deviation, robust to one wild unit)
      says how far one unit's year strays from its peers';
    * every unit with a full last year is centred on its last year grown at
      the common growth, for each year of the horizon. Each of its paths
      keeps its relative deviation from its mean (the shared,
      month-by-month part of the joint paths) and adds an own deviation,
      drawn independently per unit and path from a Student-t with 4 degrees
      of freedom at that spread (scaled by the square root of the years
      ahead). The own part only tops the shared spread up to the peers'
      spread: where a unit's paths already vary more, they are left as
      they are. The t's tails keep the lost account and the reassigned
      territory possible, which a normal spread makes too rare (a backtest
      of 24 company-years of demo-shaped data showed the 10% and 90%
      statements off by 10-30 points with a normal spread).

    Each path is scaled as a whole, so its month shape and the shared
    month-by-month structure across units are kept.

    Parameters
    ----------
    Y : ndarray (units, T)
        History of the units.
    paths : ndarray (units, h, k)
        Their simulated paths.
    seed : int
        Seed of the idiosyncratic draws.

    Returns
    -------
    ndarray (units, h, k)
    """
    n, T = Y.shape
    if T < 2 * season:
        return paths
    a2 = Y[:, T - season:].sum(axis=1)
    a1 = Y[:, T - 2 * season:T - season].sum(axis=1)
    two = (a1 > 0) & (a2 > 0) & ((Y[:, T - 2 * season:T - 2 * season + 3] != 0).any(axis=1))
    if two.sum() < min_units:
        return paths
    common = np.log(a2[two].sum() / a1[two].sum())
    dev = np.log(a2[two] / a1[two]) - common
    # A robust scale (the median absolute deviation) with Student-t tails: a few units with a
    # wild year do not widen everybody's body of outcomes, yet wild years stay possible.
    scale = np.median(np.abs(dev - np.median(dev))) / _T4_MAD
    rng = np.random.default_rng(seed)
    # Units with a full last year (sales in its first quarter) grow with their peers.
    ok = (a2 > 0) & ((Y[:, T - season:T - season + 3] != 0).any(axis=1))
    out = paths.copy()
    h = paths.shape[1]
    years = np.arange(h) // season + 1
    for y in np.unique(years):
        cols = years == y
        tot = paths[ok][:, cols, :].sum(axis=1)  # (units, k)
        m = tot.mean(axis=1)
        # The months of year y that the period holds, at last year's seasonal shape.
        mu = a2[ok] * (cols.sum() / season) * np.exp(common * y)
        shared = (tot - m[:, None]) / np.where(m > 0, m, 1.0)[:, None]
        own = np.exp(scale * np.sqrt(y) * rng.standard_t(_T_DF, size=tot.shape))
        own = own / own.mean(axis=1, keepdims=True) - 1.0
        # The unit's own part tops the shared spread up to the peers' spread, no further.
        rel, sd_own = shared.std(axis=1), own.std(axis=1)
        own = own * (np.sqrt(np.maximum(sd_own ** 2 - rel ** 2, 0.0)) / np.where(sd_own > 0, sd_own, 1.0))[:, None]
        new = np.maximum(mu[:, None] * (1.0 + shared + own), 0.0)
        ratio = np.where(tot > 0, new / np.where(tot > 0, tot, 1.0), 0.0)
        block = paths[ok][:, cols, :] * ratio[:, None, :]
        # A path that summed to zero gets the new total spread evenly over its months.
        flat = new[:, None, :] / cols.sum()
        block = np.where((tot > 0)[:, None, :], block, flat)
        sub = out[ok]
        sub[:, cols, :] = block
        out[ok] = sub
    return out


def common_factor(Y: np.ndarray, paths: np.ndarray, *, seed: int = 0, season: int = _SEASON) -> np.ndarray:
    """Give the units' total at least the spread a statistical model of the total gives it.

    Units' paths share their month-by-month shocks, but a company's growth
    also moves from one year to the next as a whole (a market that turns, a
    price rise), which two or three years of months say little about. The
    total of the units is forecast on its own with the AICc-selected model of
    :func:`salesplan.forecast.sample_paths`; where its yearly totals vary
    more (in log terms, by the 10-90% range) than the units' paths summed,
    each path gets one common factor, to multiply every node's path by (the
    same for every unit and every level above), so that they vary as much.
    Centres and each unit's share are unchanged.

    Parameters
    ----------
    Y : ndarray (units, T)
    paths : ndarray (units, h, k)

    Returns
    -------
    ndarray (h, k)
        The factor of each month and path (1 where no widening is needed).
    """
    from salesplan.forecast import sample_paths

    n, T = Y.shape
    total = Y.sum(axis=0)
    h, k = paths.shape[1], paths.shape[2]
    out = np.ones((h, k))
    if T < 2 * season or total[-season:].sum() <= 0 or (total < 0).any():
        return out
    df = pd.DataFrame({"unique_id": "total", "ds": pd.date_range("2000-01-01", periods=T, freq="MS"), "y": total})
    sp = sample_paths(df, h, n_samples=k, seed=seed)
    stat = sp.pivot_table(index="ds", columns="sample", values="y").to_numpy(float)  # (h, k)
    rng = np.random.default_rng(seed + 7)
    years = np.arange(h) // season
    z = 2 * 1.2816  # the 10-90% range of a standard normal
    for y in np.unique(years):
        cols = years == y
        a, b = stat[cols].sum(axis=0), paths[:, cols, :].sum(axis=(0, 1))
        if (a <= 0).any() or (b <= 0).any():
            continue
        want = np.diff(np.percentile(np.log(a), [10, 90]))[0] / z
        have = np.diff(np.percentile(np.log(b), [10, 90]))[0] / z
        if want <= have:
            continue
        extra = np.sqrt(want ** 2 - have ** 2)
        out[cols] = np.exp(extra * rng.standard_normal(k) - extra ** 2 / 2)[None, :]
    return out


def ramp_units(Y: np.ndarray, paths: np.ndarray, *, ramp: Sequence[float], months_per_step: int = 3,
               season: int = _SEASON, min_units: int = 3) -> np.ndarray:
    """Let units that started recently keep ramping up, as a new rep does.

    A unit whose first sale is less than ``len(ramp) * months_per_step``
    months before the end of the data is still ramping: its run rate
    understates its next year. Its productivity relative to its peers is
    estimated from the months it has (its revenue over the ramp-expected
    revenue of a median mature unit, mature = a full year of sales), and
    each future month is that relative productivity x the peers' median
    month x the ramp share of the unit's age in that month. Paths are scaled
    month by month, so their shocks and joint ranks are kept.

    Parameters
    ----------
    Y : ndarray (units, T)
    paths : ndarray (units, h, k)
    ramp : sequence of float
        Share of full productivity per step (quarter) since the start.

    Returns
    -------
    ndarray (units, h, k)
    """
    ramp = np.asarray(ramp, dtype=float)
    n, T = Y.shape
    full = len(ramp) * months_per_step
    nz = Y != 0
    first = np.where(nz.any(axis=1), nz.argmax(axis=1), T)
    span = T - first
    mature = span >= max(season, full)
    young = (span > 0) & (span < full)
    if mature.sum() < min_units or not young.any():
        return paths
    peer = float(np.median(Y[mature, T - season:].mean(axis=1)))
    if peer <= 0:
        return paths
    out = paths.copy()
    h = paths.shape[1]

    def share(age: np.ndarray) -> np.ndarray:
        return ramp[np.minimum(age // months_per_step, len(ramp) - 1)]

    for i in np.flatnonzero(young):
        seen = np.arange(span[i])
        expected = peer * share(seen).sum()
        if expected <= 0:
            continue
        rel = Y[i, first[i]:].sum() / expected
        target = rel * peer * share(span[i] + np.arange(h))  # (h,)
        now = paths[i].mean(axis=1)  # the run-rate centre of each future month
        factor = np.where(now > 0, target / np.where(now > 0, now, 1.0), 1.0)
        out[i] = paths[i] * factor[:, None]
    return out


def crps_samples(paths: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """CRPS of sample distributions (rows of ``paths``) at ``actual``, one per row.

    ``E|X - y| - E|X - X'| / 2`` computed from the sorted samples in O(k log k).
    """
    x = np.sort(np.asarray(paths, dtype=float), axis=1)
    k = x.shape[1]
    a = np.abs(x - np.asarray(actual, dtype=float)[:, None]).mean(axis=1)
    w = 2 * np.arange(1, k + 1) - k - 1
    spread = (x * w[None, :]).sum(axis=1) / (k * k)
    return a - spread


def _projection(method: str, S: np.ndarray, R: np.ndarray | None) -> np.ndarray | None:
    from salesplan.forecast.hierarchy import mint_shrink_covariance, projection_matrix

    if method == "bottom_up":
        return None
    if method == "ols":
        return projection_matrix(S)
    if method == "wls_struct":
        return projection_matrix(S, S.sum(axis=1))
    Rn = np.nan_to_num(R)
    keep = (Rn != 0).any(axis=0)
    Rn = Rn[:, keep] if keep.sum() >= 2 else Rn
    Wm, _ = mint_shrink_covariance(Rn)
    diag = np.diag(Wm).copy()
    scale = max(float(diag.mean()), np.finfo(float).tiny)
    Wm = Wm + 1e-6 * scale * np.eye(len(Wm))
    return projection_matrix(S, Wm)


def _reconcile(paths: np.ndarray, S: np.ndarray, bottom_rows: np.ndarray, P: np.ndarray | None) -> np.ndarray:
    """Coherent paths (nodes, ...) from base paths: bottoms by ``P`` (or bottom-up), clipped at 0, summed up."""
    shape = paths.shape
    flat = paths.reshape(shape[0], -1)
    bottom = flat[bottom_rows] if P is None else P @ flat
    if (flat[bottom_rows] >= 0).all():
        bottom = np.maximum(bottom, 0.0)
    return (S @ bottom).reshape((S.shape[0],) + shape[1:])


# ---------------------------------------------------------------------------
# The fitted joint forecast
# ---------------------------------------------------------------------------

class JointForecast:
    """Coherent joint sample paths of a plan's units and every level above them.

    Parameters
    ----------
    n_samples : int
        Joint paths.
    seed : int
        Seed, so results repeat.
    method : str
        ``"auto"`` (pick by a one-year backtest) or one of :data:`RECONCILE_METHODS`.
    pool : bool
        Units of one company share a market: centre each unit on the
        company's last growth and give it at least the spread with which
        units' years differed from each other last year (see
        :func:`pool_units`). False for unrelated series.
    ramp : sequence of float, optional
        Share of full productivity per quarter since a unit's first sale
        (e.g. :data:`salesplan.targets.DEFAULT_RAMP` for reps): units that
        started less than ``len(ramp)`` quarters ago keep ramping up in the
        paths (:func:`ramp_units`) instead of staying at their run rate.

    Attributes
    ----------
    nodes_ : DataFrame
        ``level, unique_id, parent``: the hierarchy, bottoms first, company last.
    S_ : ndarray (nodes, bottoms)
        Summing matrix (rows as ``nodes_``).
    months_ : DatetimeIndex
        Months of the plan period.
    totals_ : ndarray (nodes, n_samples)
        Reconciled period total of each node in each path.
    monthly_ : ndarray (bottoms, months, n_samples)
        Reconciled monthly paths of the bottom units in the period.
    method_ : str
        The reconciliation method used.
    backtest_ : DataFrame
        ``method, crps`` (mean CRPS of last year's node totals, each scaled by
        the node's actual) when ``method="auto"`` could backtest; else empty.
    prior_mean_ : ndarray (nodes,)
        The twelve months before the period: actual where the data has them,
        plus the mean reconciled forecast for the months after the data.
    base_totals_ : ndarray (nodes, n_samples)
        Period totals of the base (unreconciled) paths, for comparison.

    Examples
    --------
    >>> hist = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 36),
    ...                      "ds": np.tile(pd.date_range("2023-01-01", periods=36, freq="MS"), 2),
    ...                      "y": np.r_[np.full(36, 10.0), np.full(36, 30.0)]})
    >>> jf = JointForecast(n_samples=200).fit(hist, period=pd.date_range("2026-01-01", periods=12, freq="MS"))
    >>> jf.samples(level="company")["y"].round().unique().tolist()
    [480.0]
    """

    def __init__(self, *, n_samples: int = 1000, seed: int = 0, method: str = "auto", pool: bool = True,
                 ramp: Sequence[float] | None = None) -> None:
        self.n_samples = n_samples
        self.seed = seed
        self.method = method
        self.pool = pool
        self.ramp = ramp

    def fit(
        self,
        history: pd.DataFrame,
        *,
        period: Sequence[pd.Timestamp] | pd.DatetimeIndex,
        parents: pd.DataFrame | None = None,
        level: str = "unit",
    ) -> JointForecast:
        """Simulate, reconcile and keep the paths of the plan period.

        Parameters
        ----------
        history : DataFrame
            ``unique_id, ds, y`` monthly, the planned units (the bottom level).
        period : DatetimeIndex
            Month starts of the plan period, after the last month of ``history``.
        parents : DataFrame, optional
            One row per unit: ``unique_id`` and one column per level above it,
            lowest first (e.g. ``team, region``). The company is always added on top.
        level : str
            Name of the units' level (``rep``, ``region``...), used in ``nodes_``.

        Returns
        -------
        JointForecast
            self
        """
        check_choice(self.method, ("auto",) + RECONCILE_METHODS, name="method")
        n_samples = check_positive_int(self.n_samples, name="n_samples")
        check_frame(history, name="history")
        check_columns(history, ["unique_id", "ds", "y"], name="history")
        months = pd.DatetimeIndex(pd.to_datetime(list(period))).to_period("M").to_timestamp()
        hist = history.assign(unique_id=history["unique_id"].astype("str"), ds=pd.to_datetime(history["ds"]))
        wide = hist.pivot_table(index="unique_id", columns="ds", values="y", aggfunc="sum")
        cal = pd.date_range(wide.columns.min(), wide.columns.max(), freq="MS")
        wide = wide.reindex(columns=cal).fillna(0.0).sort_index()
        last = cal[-1]
        if months[0] <= last:
            raise SalesplanError(
                f"the plan period starts {months[0]:%Y-%m}, inside the history (which ends {last:%Y-%m}); "
                "joint paths are simulated for a future period. Plan a period after the data."
            )
        h = (months[-1].year - last.year) * 12 + months[-1].month - last.month
        cols = [(m.year - last.year) * 12 + m.month - last.month - 1 for m in months]
        nodes, S = _hierarchy(list(wide.index), parents, level)
        self.nodes_, self.S_, self.months_ = nodes, S, months
        bottom_rows = np.arange(S.shape[1])
        Yb = wide.to_numpy(float)
        Y = S @ Yb
        self.history_ = Y
        method = self.method
        self.backtest_ = pd.DataFrame(columns=["method", "crps"])
        if method == "auto":
            method, self.backtest_ = self._choose(Y, S, bottom_rows)
        base = simulate_paths(Y, h, n_samples=n_samples, seed=self.seed)
        if self.ramp is not None:
            base[bottom_rows] = ramp_units(Y[bottom_rows], base[bottom_rows], ramp=self.ramp)
        if self.pool:
            base[bottom_rows] = pool_units(Y[bottom_rows], base[bottom_rows], seed=self.seed)
            base *= common_factor(Y[bottom_rows], base[bottom_rows], seed=self.seed)[None]
        _, R, _, _ = _residuals(Y)
        P = _projection(method, S, R) if method != "bottom_up" else None
        # The twelve months before the period: actuals where the data has them, else the mean of the
        # reconciled paths (what growth is measured against when last year is itself a forecast).
        prior = pd.date_range(months[0] - pd.DateOffset(months=12), periods=12, freq="MS")
        fut = [(m.year - last.year) * 12 + m.month - last.month - 1 for m in prior if m > last]
        known = Y[:, [cal.get_loc(m) for m in prior if m <= last and m >= cal[0]]].sum(axis=1)
        self.prior_mean_ = known + (_reconcile(base[:, fut, :].sum(axis=1), S, bottom_rows, P).mean(axis=1)
                                    if fut else 0.0)
        base = base[:, cols, :]
        rec = _reconcile(base, S, bottom_rows, P)
        self.method_ = method
        self.base_totals_ = base.sum(axis=1)
        self.totals_ = rec.sum(axis=1)
        self.monthly_ = rec[bottom_rows]
        return self

    def _choose(self, Y: np.ndarray, S: np.ndarray, bottom_rows: np.ndarray) -> tuple[str, pd.DataFrame]:
        n, T = Y.shape
        if T < 3 * _SEASON:
            # Not enough history to hold a year out and still see two seasons: MinT needs the errors,
            # bottom-up needs nothing; with one or two seasons the nodes' errors are few, so keep it simple.
            return ("mint_shrink" if T >= 2 * _SEASON else "bottom_up"), pd.DataFrame(columns=["method", "crps"])
        train, actual = Y[:, :T - _SEASON], Y[:, T - _SEASON:].sum(axis=1)
        base = simulate_paths(train, _SEASON, n_samples=min(self.n_samples, 500), seed=self.seed + 1)
        if self.ramp is not None:
            base[bottom_rows] = ramp_units(train[bottom_rows], base[bottom_rows], ramp=self.ramp)
        if self.pool:
            base[bottom_rows] = pool_units(train[bottom_rows], base[bottom_rows], seed=self.seed)
            base *= common_factor(train[bottom_rows], base[bottom_rows], seed=self.seed)[None]
        _, R, _, _ = _residuals(train)
        base_tot = base.sum(axis=1)
        scale = np.where(np.abs(actual) > 0, np.abs(actual), 1.0)
        rows = []
        for m in RECONCILE_METHODS:
            try:
                P = _projection(m, S, R)
            except (np.linalg.LinAlgError, SalesplanDataError):
                continue
            # Reconciliation is linear: reconciling the year totals is reconciling the months, summed
            # (up to the clipping of negative units), and twelve times cheaper.
            tot = _reconcile(base_tot, S, bottom_rows, P)
            rows.append((m, float((crps_samples(tot, actual) / scale).mean())))
        bt = pd.DataFrame(rows, columns=["method", "crps"])
        return str(bt.loc[bt["crps"].idxmin(), "method"]), bt

    def _check_fitted(self) -> None:
        if not hasattr(self, "totals_"):
            raise SalesplanError("this JointForecast is not fitted yet; call .fit(history, period=...) first.")

    def samples(self, *, level: str | None = None) -> pd.DataFrame:
        """The joint paths of the period totals.

        Returns
        -------
        DataFrame
            ``level, unique_id, sample, y``: one row per node and path; the
            same ``sample`` number is the same simulated future everywhere.
        """
        self._check_fitted()
        nodes = self.nodes_
        keep = np.ones(len(nodes), dtype=bool) if level is None else (nodes["level"] == level).to_numpy()
        k = self.totals_.shape[1]
        return pd.DataFrame({
            "level": np.repeat(nodes["level"].to_numpy()[keep], k),
            "unique_id": pd.array(np.repeat(nodes["unique_id"].to_numpy()[keep], k), dtype="str"),
            "sample": np.tile(np.arange(k), int(keep.sum())),
            "y": self.totals_[keep].reshape(-1),
        })

    def monthly_samples(self) -> pd.DataFrame:
        """Monthly reconciled paths of the units: ``unique_id, ds, sample, y``."""
        self._check_fitted()
        b, mth, k = self.monthly_.shape
        ids = self.nodes_["unique_id"].to_numpy()[:b]
        return pd.DataFrame({
            "unique_id": pd.array(np.repeat(ids, mth * k), dtype="str"),
            "ds": np.tile(np.repeat(self.months_.to_numpy(), k), b),
            "sample": np.tile(np.arange(k), b * mth),
            "y": self.monthly_.reshape(-1),
        })

    def probabilities(self, quotas: pd.Series | np.ndarray) -> pd.DataFrame:
        """Probability that each node reaches its quota, counted over the joint paths.

        Parameters
        ----------
        quotas : Series (unit -> quota) or array in the order of the units
            The units' quotas; a parent's quota is the sum of its children's.

        Returns
        -------
        DataFrame
            ``level, unique_id, quota, probability``.
        """
        self._check_fitted()
        q = self._unit_quotas(quotas)
        return node_probabilities(self.nodes_, self.S_, self.totals_, q)

    def _unit_quotas(self, quotas: Any) -> np.ndarray:
        b = self.S_.shape[1]
        ids = self.nodes_["unique_id"].to_numpy()[:b]
        if isinstance(quotas, pd.Series):
            idx = quotas.index.astype("str")
            q = pd.Series(quotas.to_numpy(float), index=idx).reindex(ids)
            if q.isna().any():
                raise SalesplanError(f"quotas lack {int(q.isna().sum())} unit(s): {list(q.index[q.isna()][:5])}.")
            return q.to_numpy(float)
        q = np.asarray(quotas, dtype=float)
        if q.shape != (b,):
            raise SalesplanError(f"quotas must have one value per unit ({b}), got shape {q.shape}.")
        return q


def node_probabilities(nodes: pd.DataFrame, S: np.ndarray, totals: np.ndarray, unit_quotas: np.ndarray) -> pd.DataFrame:
    """``level, unique_id, quota, probability`` of every node: parents' quotas are their children's sums."""
    quota = S @ unit_quotas
    prob = (totals >= quota[:, None] - 1e-9 * np.maximum(np.abs(quota[:, None]), 1.0)).mean(axis=1)
    return pd.DataFrame({"level": nodes["level"].to_numpy(), "unique_id": nodes["unique_id"].to_numpy(),
                         "quota": quota, "probability": prob})


def _hierarchy(units: list[str], parents: pd.DataFrame | None, level: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Nodes (bottoms first, company last) and the summing matrix."""
    b = len(units)
    rows = [(level, u, None) for u in units]
    blocks = [np.eye(b)]
    if parents is not None and len(parents.columns) > 1:
        par = parents.assign(unique_id=parents["unique_id"].astype("str")).drop_duplicates("unique_id")
        par = par.set_index("unique_id").reindex(units)
        upper = [c for c in par.columns]
        child_key = pd.Series(units, index=units)
        parent_of_units = {}
        for j, col in enumerate(upper):
            keys = par[col].astype("object").where(par[col].notna(), f"(no {col})").astype("str")
            uniq = sorted(keys.unique())
            M = (keys.to_numpy()[None, :] == np.array(uniq, dtype=object)[:, None]).astype(float)
            blocks.append(M)
            nxt = upper[j + 1] if j + 1 < len(upper) else None
            for u in uniq:
                if nxt is None:
                    p = "all"
                else:
                    above = par.loc[keys == u, nxt]
                    p = str(above.iloc[0]) if above.notna().any() else f"(no {nxt})"
                rows.append((col, u, p))
            # The units' parent is their key at the first level above.
            if j == 0:
                parent_of_units = dict(zip(child_key, keys))
        rows[:b] = [(level, u, parent_of_units.get(u)) for u in units]
    else:
        rows[:b] = [(level, u, "all") for u in units]
    if level != "company":
        rows.append(("company", "all", None))
        blocks.append(np.ones((1, b)))
    nodes = pd.DataFrame(rows, columns=["level", "unique_id", "parent"])
    return nodes, np.vstack(blocks)
