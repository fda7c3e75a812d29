"""Tests for salesplan.forecast.hierarchy: building hierarchies and reconciling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.forecast import hierarchy as H

MONTHS = pd.date_range("2023-01-01", periods=24, freq="MS")
REGIONS = {"N": ["a", "b"], "S": ["c"], "W": ["d", "e", "f"]}


def _bottom_panel(rng, months=MONTHS):
    rows = [
        (reg, rep, ds, float(rng.gamma(3.0, 10.0)))
        for reg, reps in REGIONS.items() for rep in reps for ds in months
    ]
    return pd.DataFrame(rows, columns=["region", "rep", "ds", "y"])


@pytest.fixture
def tree(rng):
    df = _bottom_panel(rng)
    Y, S, tags = H.aggregate(df, [["region"], ["region", "rep"]])
    return df, Y, S, tags


def _base_forecasts(rng, S, h=3, scale=None):
    ids = S.index
    fc = pd.DataFrame({
        "unique_id": np.repeat(ids.to_numpy(), h),
        "ds": np.tile(pd.date_range("2025-01-01", periods=h, freq="MS"), len(ids)),
    })
    size = S.sum(axis=1).reindex(fc["unique_id"]).to_numpy()
    # Deliberately incoherent: noisy forecasts roughly proportional to size.
    fc["m"] = size * 30.0 * rng.uniform(0.7, 1.3, len(fc))
    fc["m-lo-80"] = fc["m"] * 0.8  # dropped: base intervals do not add up
    return fc


def _children_sums_hold(rec, col, tol=1e-8):
    """Every parent equals the sum of its children (ids 'R' and 'R/x'; 'total')."""
    wide = rec.pivot(index="unique_id", columns="ds", values=col)
    for reg, reps in REGIONS.items():
        kids = wide.loc[[f"{reg}/{r}" for r in reps]].sum()
        np.testing.assert_allclose(wide.loc[reg], kids, rtol=0, atol=tol)
    np.testing.assert_allclose(wide.loc["total"], wide.loc[list(REGIONS)].sum(), rtol=0, atol=tol)


# -- aggregate -------------------------------------------------------------


def test_aggregate_by_hand():
    df = pd.DataFrame({
        "region": ["N", "N", "S", "N"], "rep": ["a", "b", "c", "a"],
        "ds": [1, 1, 1, 2], "y": [1.0, 2.0, 4.0, 8.0],
    })
    before = df.copy()
    Y, S, tags = H.aggregate(df, [["region"], ["region", "rep"]])
    pdt.assert_frame_equal(df, before)
    assert list(S.index) == ["total", "N", "S", "N/a", "N/b", "S/c"]
    assert list(S.columns) == ["N/a", "N/b", "S/c"]
    np.testing.assert_array_equal(S.loc["N"], [1, 1, 0])
    np.testing.assert_array_equal(S.loc["total"], [1, 1, 1])
    assert list(tags) == ["total", "region", "region/rep"]
    assert list(tags["region/rep"]) == ["N/a", "N/b", "S/c"]
    got = Y.set_index(["unique_id", "ds"])["y"]
    assert got[("total", 1)] == 7.0 and got[("total", 2)] == 8.0
    assert got[("N", 2)] == 8.0
    # Missing periods are filled with 0 so that every series covers every period.
    assert got[("S/c", 2)] == 0.0 and got[("N/b", 2)] == 0.0
    assert len(Y) == 6 * 2
    assert list(Y.columns) == ["unique_id", "ds", "y", "region", "rep"]
    assert Y.loc[Y.unique_id == "N/a", "region"].iloc[0] == "N"


def test_aggregate_transactions_by_month_is_coherent(rng):
    days = pd.date_range("2024-01-01", "2024-06-30", freq="D")
    n = 400
    tx = pd.DataFrame({
        "order_date": rng.choice(days, n),
        "region": rng.choice(["North", "South"], n),
        "rep_id": rng.choice(["R01", "R02", "R03"], n),
        "revenue": rng.gamma(2.0, 100.0, n),
    })
    Y, S, tags = H.aggregate(tx, [["region"], ["region", "rep_id"]], time_col="order_date",
                             target_col="revenue", freq="MS")
    assert set(Y["order_date"]) == set(pd.date_range("2024-01-01", periods=6, freq="MS"))
    assert "North/R01" in set(Y.unique_id)
    total = Y[Y.unique_id == "total"].set_index("order_date")["revenue"]
    by_month = tx.groupby(tx.order_date.dt.to_period("M").dt.start_time)["revenue"].sum()
    np.testing.assert_allclose(total.to_numpy(), by_month.to_numpy())
    gaps = H.coherence_gaps(Y, S, columns=["revenue"], time_col="order_date")
    assert gaps["max_abs_gap"].max() < 1e-8


def test_aggregate_grouped_levels(rng):
    df = _bottom_panel(rng).assign(channel=lambda d: np.where(d.rep.isin(["a", "c"]), "web", "shop"))
    Y, S, tags = H.aggregate(df, [["region"], ["channel"], ["region", "channel"]])
    assert list(tags["channel"]) == ["shop", "web"]
    assert list(S.columns) == ["N/shop", "N/web", "S/web", "W/shop"]
    assert H.coherence_gaps(Y, S)["max_abs_gap"].max() < 1e-8


def test_aggregate_errors(rng):
    df = _bottom_panel(rng)
    with pytest.raises(SalesplanDataError, match=r"uses column\(s\) \['region'\] that the bottom level \['rep'\] does not"):
        H.aggregate(df, [["region"], ["rep"]])
    with pytest.raises(SalesplanDataError, match=r"missing required column\(s\) 'rep_id' \(closest: 'rep'"):
        H.aggregate(df, [["region"], ["region", "rep_id"]])
    bad = df.copy()
    bad.loc[[2, 7], "rep"] = None
    with pytest.raises(SalesplanDataError, match=r"2 rows with a missing value in the hierarchy column\(s\) \['rep'\] \(rows 2, 7\)"):
        H.aggregate(bad, [["region"], ["region", "rep"]])
    clash = df.assign(region=df.region.replace({"S": "total"}))
    with pytest.raises(SalesplanDataError, match=r"node ids are not unique: 1 id\(s\) occur more than once \('total'\)"):
        H.aggregate(clash, [["region"], ["region", "rep"]])
    with pytest.raises(SalesplanError, match=r"spec must be a non-empty list of levels"):
        H.aggregate(df, ["region", "rep"])


# -- summing_matrix from edges ----------------------------------------------


def test_summing_matrix_from_edges():
    edges = pd.DataFrame({
        "rep_id": ["R1", "R2", "R3", "T1", "T2"],
        "team": ["T1", "T1", "T2", None, ""],
    })
    S, tags = H.summing_matrix(edges, child_col="rep_id", parent_col="team")
    assert list(S.index) == ["total", "T1", "T2", "R1", "R2", "R3"]
    assert list(S.columns) == ["R1", "R2", "R3"]
    np.testing.assert_array_equal(S.loc["T1"], [1, 1, 0])
    assert list(tags["level_0"]) == ["total"] and list(tags["level_2"]) == ["R1", "R2", "R3"]
    single, _ = H.summing_matrix(pd.DataFrame({"child": ["top", "x", "y"], "parent": [None, "top", "top"]}))
    assert list(single.index) == ["top", "x", "y"]


def test_summing_matrix_orphans_cycles_and_repeated_ids():
    orphan = pd.DataFrame({"child": ["T1", "R1", "R2"], "parent": [None, "T1", "T9"]})
    with pytest.raises(SalesplanDataError, match=r"1 orphan node\(s\) whose parent is not listed.*'R2' -> 'T9'.*row 2"):
        H.summing_matrix(orphan)
    cycle = pd.DataFrame({"child": ["T1", "A", "B", "C"], "parent": [None, "B", "C", "A"]})
    with pytest.raises(SalesplanDataError, match=r"cycle: 3 node\(s\) never reach a top node.*'A' -> 'B' -> 'C' -> 'A'"):
        H.summing_matrix(cycle)
    repeated = pd.DataFrame({"child": ["N", "S", "R01", "R01"], "parent": [None, None, "N", "S"]})
    with pytest.raises(SalesplanDataError, match=r"lists 1 node id\(s\) more than once \('R01'; rows 2, 3\).*'North/R01'"):
        H.summing_matrix(repeated)
    clash = pd.DataFrame({"child": ["total", "x"], "parent": [None, None]})
    with pytest.raises(SalesplanDataError, match=r"already has a node 'total'"):
        H.summing_matrix(clash)


# -- reconcile: coherence and the methods by hand ----------------------------------


@pytest.mark.parametrize("method", H.METHODS)
def test_every_method_gives_coherent_forecasts(tree, rng, method):
    _, Y, S, _ = tree
    fc = _base_forecasts(rng, S)
    rec = H.reconcile(fc, S, method=method, history=Y)
    assert list(rec.columns) == ["unique_id", "ds", "m"]
    assert list(pd.unique(rec.unique_id)) == list(S.index)
    _children_sums_hold(rec, "m")
    assert not np.allclose(rec["m"], fc["m"])  # the base forecasts were incoherent


def test_bottom_up_equals_sums_of_bottom_forecasts(tree, rng):
    _, _, S, _ = tree
    fc = _base_forecasts(rng, S)
    rec = H.reconcile(fc, S, method="bottom_up").set_index(["unique_id", "ds"])["m"]
    base = fc.set_index(["unique_id", "ds"])["m"]
    for leaf in S.columns:
        pdt.assert_series_equal(rec.loc[leaf], base.loc[leaf])
    np.testing.assert_allclose(rec.loc["W"], base.loc["W/d"] + base.loc["W/e"] + base.loc["W/f"])
    np.testing.assert_allclose(rec.loc["total"], base.loc[list(S.columns)].groupby("ds").sum())


TOY_S = pd.DataFrame([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]],
                     index=pd.Index(["total", "a", "b"], name="unique_id"), columns=["a", "b"])
TOY_FC = pd.DataFrame({"unique_id": ["total", "a", "b"], "ds": 1, "m": [9.0, 4.0, 4.0]})


def test_ols_and_wls_struct_by_hand():
    ols = H.reconcile(TOY_FC, TOY_S, method="ols")["m"].to_numpy()
    np.testing.assert_allclose(ols, [26 / 3, 13 / 3, 13 / 3])
    wls = H.reconcile(TOY_FC, TOY_S, method="wls_struct")["m"].to_numpy()
    np.testing.assert_allclose(wls, [8.5, 4.25, 4.25])


def _hand_mint(R):
    """Schäfer-Strimmer shrinkage written out with loops, as in R's hts::shrink.estim."""
    k, n = R.shape
    mean = R.mean(axis=1, keepdims=True)
    cov = (R - mean) @ (R - mean).T / (n - 1)
    sd = np.sqrt(np.diag(cov))
    x = R / sd[:, None]  # scaled, not centred
    num = den = 0.0
    for i in range(k):
        for j in range(k):
            if i == j:
                continue
            w = x[i] * x[j]
            num += np.sum((w - w.mean()) ** 2) / (n * (n - 1))
            den += (cov[i, j] / (sd[i] * sd[j])) ** 2
    lam = min(max(num / den, 0.0), 1.0)
    W = lam * np.diag(np.diag(cov)) + (1 - lam) * cov
    return W, lam


def test_mint_shrink_on_a_toy_case_equals_the_hand_computed_projection(rng):
    T = 12
    ra = rng.normal(0, 1.0, T)
    rb = 0.6 * ra + rng.normal(0, 2.0, T)
    R = np.vstack([ra + rb + rng.normal(0, 0.5, T), ra, rb])
    res = pd.DataFrame({"unique_id": np.repeat(["total", "a", "b"], T), "ds": np.tile(np.arange(T), 3),
                        "residual": R.ravel()})
    W, lam = _hand_mint(R)
    W_pkg, lam_pkg = H.mint_shrink_covariance(R)
    assert lam_pkg == pytest.approx(lam, rel=1e-12) and 0 < lam < 1
    np.testing.assert_allclose(W_pkg, W, rtol=1e-12)
    S = TOY_S.to_numpy()
    Wi = np.linalg.inv(W)
    expected = S @ np.linalg.inv(S.T @ Wi @ S) @ S.T @ Wi @ np.array([9.0, 4.0, 4.0])
    rec = H.reconcile(TOY_FC, TOY_S, method="mint_shrink", residuals=res)
    np.testing.assert_allclose(rec["m"].to_numpy(), expected, rtol=1e-10)
    assert rec.attrs["reconcile"]["shrinkage"]["m"] == pytest.approx(lam)
    # A noisier total pulls the reconciled total towards the sum of the bottoms.
    assert abs(rec["m"].iloc[0] - 8.0) < abs(rec["m"].iloc[0] - 9.0)


def test_top_down_proportions_by_hand():
    hist = pd.DataFrame({"unique_id": ["a", "a", "b", "b"], "ds": [1, 2, 1, 2], "y": [1.0, 3.0, 1.0, 1.0]})
    fc = TOY_FC.assign(m=[100.0, 1.0, 1.0])
    ap = H.reconcile(fc, TOY_S, method="average_proportions", history=hist)["m"].to_numpy()
    np.testing.assert_allclose(ap, [100.0, 62.5, 37.5])  # shares (1/2 + 3/4) / 2 and (1/2 + 1/4) / 2
    pa = H.reconcile(fc, TOY_S, method="proportion_averages", history=hist)["m"].to_numpy()
    np.testing.assert_allclose(pa, [100.0, 200 / 3, 100 / 3])  # means 2 and 1 of a total 3


def test_forecast_proportions_multiply_down_the_tree():
    edges = pd.DataFrame({"child": ["total", "N", "S", "a", "b", "c"],
                          "parent": [None, "total", "total", "N", "N", "S"]})
    S, _ = H.summing_matrix(edges)
    fc = pd.DataFrame({"unique_id": ["total", "N", "S", "a", "b", "c"], "ds": 1,
                       "m": [100.0, 30.0, 10.0, 1.0, 3.0, 5.0]})
    rec = H.reconcile(fc, S, method="forecast_proportions").set_index("unique_id")["m"]
    np.testing.assert_allclose(rec[["total", "N", "S", "a", "b", "c"]], [100, 75, 25, 18.75, 56.25, 25])


# Reference values: hierarchicalforecast 1.5.3 (Nixtla), HierarchicalReconciliation with
# MinTrace(method="mint_shrink"), MinTrace(method="wls_var") and
# TopDown(method="forecast_proportions") on this toy hierarchy, in-sample
# "fitted" values = the previous value (naive), rounded to 10 decimals.
HF_X = [10.0, 12, 11, 14, 13, 15, 17, 16, 18, 19]
HF_Y = [5.0, 4, 6, 5, 7, 6, 6, 8, 7, 9]
HF_Z = [20.0, 22, 21, 25, 24, 23, 27, 26, 29, 28]
HF_REFERENCE = {
    "mint_shrink": [58.3170792322, 61.0572119259, 29.1230542146, 30.1684125705, 29.1940250175, 30.8887993554,
                    20.0643888332, 20.5648670427, 9.0586653814, 9.6035455278, 29.1940250175, 30.8887993554],
    "wls_var": [58.2174723031, 61.1582508099, 29.2762525753, 30.4498970495, 28.9412197278, 30.7083537603,
                20.1634964219, 20.6744288665, 9.1127561534, 9.7754681831, 28.9412197278, 30.7083537603],
    "forecast_proportions": [60.0, 62.0, 30.5263157895, 31.0, 29.4736842105, 31.0,
                             21.0526315789, 21.0, 9.4736842105, 10.0, 29.4736842105, 31.0],
}


@pytest.mark.parametrize("method", sorted(HF_REFERENCE))
def test_matches_hierarchicalforecast_on_a_toy_hierarchy(method):
    bottom = pd.DataFrame({"region": ["A"] * 10 + ["A"] * 10 + ["B"] * 10,
                           "rep": ["x"] * 10 + ["y"] * 10 + ["z"] * 10,
                           "ds": list(range(10)) * 3, "y": HF_X + HF_Y + HF_Z})
    Y, S, _ = H.aggregate(bottom, [["region"], ["region", "rep"]])
    assert list(S.index) == ["total", "A", "B", "A/x", "A/y", "B/z"]
    Y = Y.sort_values(["unique_id", "ds"])
    fitted = Y.groupby("unique_id")["y"].shift(1)
    residuals = Y.assign(residual=Y["y"] - fitted)[["unique_id", "ds", "residual"]]
    fc = pd.DataFrame({"unique_id": np.repeat(S.index.to_numpy(), 2), "ds": np.tile([10, 11], 6),
                       "m": [60.0, 62, 29, 30, 28, 30, 20, 21, 9, 10, 29, 31]})
    rec = H.reconcile(fc, S, method=method, residuals=residuals)
    np.testing.assert_allclose(rec["m"].to_numpy(), HF_REFERENCE[method], rtol=0, atol=1e-8)


def test_top_down_needs_a_tree(rng):
    df = _bottom_panel(rng).assign(channel=lambda d: np.where(d.rep.isin(["a", "c"]), "web", "shop"))
    Y, S, _ = H.aggregate(df, [["region"], ["channel"], ["region", "channel"]])
    fc = _base_forecasts(rng, S)
    with pytest.raises(SalesplanDataError, match=r"S is not a tree.*overlap.*mint_shrink"):
        H.reconcile(fc, S, method="forecast_proportions")
    _ = H.reconcile(fc, S, method="mint_shrink", history=Y)  # grouped is fine for projections


# -- invariants (hypothesis) --------------------------------------------------

_SMALL = pd.DataFrame(
    [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    index=pd.Index(["total", "X", "Y", "X/1", "X/2", "Y/1", "Y/2"], name="unique_id"),
    columns=["X/1", "X/2", "Y/1", "Y/2"], dtype=float,
)


def _frame(values, h):
    return pd.DataFrame({"unique_id": np.repeat(_SMALL.index.to_numpy(), h),
                         "ds": np.tile(np.arange(h), len(_SMALL)), "m": np.asarray(values).ravel()})


def _residuals(seed, T=10):
    r = np.random.default_rng(seed).normal(size=(4, T))
    R = _SMALL.to_numpy() @ r + np.random.default_rng(seed + 1).normal(0, 0.3, (7, T))
    return pd.DataFrame({"unique_id": np.repeat(_SMALL.index.to_numpy(), T),
                         "ds": np.tile(np.arange(T), 7), "residual": R.ravel()})


@settings(max_examples=30, deadline=None)
@given(
    bottom=st.lists(st.floats(-1e3, 1e3), min_size=8, max_size=8),
    seed=st.integers(0, 10_000),
    method=st.sampled_from(["ols", "wls_struct", "mint_shrink", "wls_var", "bottom_up"]),
)
def test_coherent_forecasts_stay_unchanged(bottom, seed, method):
    b = np.asarray(bottom).reshape(4, 2)
    coherent = _SMALL.to_numpy() @ b
    fc = _frame(coherent, 2)
    rec = H.reconcile(fc, _SMALL, method=method, residuals=_residuals(seed))
    np.testing.assert_allclose(rec["m"].to_numpy(), fc["m"].to_numpy(), rtol=1e-7, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(0.0, 1e3), min_size=14, max_size=14),
    c=st.floats(0.01, 100.0),
    seed=st.integers(0, 10_000),
    method=st.sampled_from(["ols", "wls_struct", "mint_shrink", "bottom_up", "forecast_proportions"]),
)
def test_scaling_every_series_scales_the_result(values, c, seed, method):
    fc = _frame(values, 2)
    res = _residuals(seed)
    base = H.reconcile(fc, _SMALL, method=method, residuals=res)
    scaled = H.reconcile(fc.assign(m=c * fc["m"]), _SMALL, method=method,
                         residuals=res.assign(residual=c * res["residual"]))
    np.testing.assert_allclose(scaled["m"].to_numpy(), c * base["m"].to_numpy(), rtol=1e-7, atol=1e-6)


# -- intervals from simulation ---------------------------------------------


def test_bootstrap_intervals_are_reproducible_and_bracket_the_forecast(tree, rng):
    _, Y, S, _ = tree
    fc = _base_forecasts(rng, S)
    rec = H.reconcile(fc, S, method="mint_shrink", history=Y, level=[80, 95], n_samples=500, seed=3)
    again = H.reconcile(fc, S, method="mint_shrink", history=Y, level=[80, 95], n_samples=500, seed=3)
    pdt.assert_frame_equal(rec, again)
    assert list(rec.columns) == ["unique_id", "ds", "m", "m-lo-80", "m-hi-80", "m-lo-95", "m-hi-95"]
    assert (rec["m-lo-95"] <= rec["m-lo-80"]).all() and (rec["m-hi-80"] <= rec["m-hi-95"]).all()
    # Seasonal-naive residuals are centred near 0: the point sits inside the 95% band.
    assert ((rec["m-lo-95"] <= rec["m"]) & (rec["m"] <= rec["m-hi-95"])).mean() > 0.9
    # The total's band is wider than any region's.
    width = (rec["m-hi-80"] - rec["m-lo-80"]).groupby(rec["unique_id"]).mean()
    assert width["total"] > width[list(REGIONS)].max()


def test_given_coherent_samples_give_their_own_quantiles(tree, rng):
    _, _, S, _ = tree
    h, k = 2, 400
    bottom = rng.normal(50, 10, size=(6, h, k))
    paths = np.einsum("nb,bhk->nhk", S.to_numpy(), bottom)
    samples = pd.DataFrame({
        "unique_id": np.repeat(S.index.to_numpy(), h * k),
        "ds": np.tile(np.repeat(pd.date_range("2025-01-01", periods=h, freq="MS"), k), len(S)),
        "sample": np.tile(np.arange(k), len(S) * h),
        "y": paths.ravel(),
    })
    fc = samples.groupby(["unique_id", "ds"], as_index=False, sort=False)["y"].mean().rename(columns={"y": "m"})
    rec = H.reconcile(fc, S, method="ols", level=[90], samples=samples).set_index(["unique_id", "ds"])
    q = samples.groupby(["unique_id", "ds"])["y"].quantile([0.05, 0.95]).unstack()
    np.testing.assert_allclose(rec["m-lo-90"], q.loc[rec.index, 0.05], rtol=1e-9)
    np.testing.assert_allclose(rec["m-hi-90"], q.loc[rec.index, 0.95], rtol=1e-9)
    # Incoherent paths come back coherent, path by path.
    noisy = samples.assign(y=samples["y"] + rng.normal(0, 5, len(samples)))
    out = H.reconcile_samples(noisy, S, method="wls_struct")
    assert list(out.columns) == ["unique_id", "ds", "sample", "y"] and len(out) == len(samples)
    wide = out.pivot_table(index=["ds", "sample"], columns="unique_id", values="y")
    np.testing.assert_allclose(wide["total"], wide[list(REGIONS)].sum(axis=1), atol=1e-8)
    np.testing.assert_allclose(wide["W"], wide[["W/d", "W/e", "W/f"]].sum(axis=1), atol=1e-8)


def test_copula_gives_independent_samples_the_residual_correlation(rng):
    k, T = 500, 24
    draws = pd.DataFrame({
        "unique_id": np.repeat(["total", "a", "b"], k),
        "ds": 1,
        "sample": np.tile(np.arange(k), 3),
        "y": np.concatenate([rng.normal(20, 4, k), rng.normal(10, 2, k), rng.normal(10, 3, k)]),
    })
    r = rng.normal(size=T)
    res = pd.DataFrame({"unique_id": np.repeat(["total", "a", "b"], T), "ds": np.tile(np.arange(T), 3),
                        "residual": np.concatenate([2 * r, r, r])})
    fc = TOY_FC.assign(m=[20.0, 10.0, 10.0])
    joint = H.reconcile(fc, TOY_S, method="bottom_up", level=[90], samples=draws, residuals=res).set_index("unique_id")
    indep = H.reconcile(fc, TOY_S, method="bottom_up", level=[90], samples=draws, residuals=res,
                        copula=False).set_index("unique_id")
    q = draws.groupby("unique_id")["y"].quantile([0.05, 0.95]).unstack()
    # Each bottom series keeps its own simulated distribution...
    for node in ("a", "b"):
        for frame in (joint, indep):
            assert frame.loc[node, "m-lo-90"] == pytest.approx(q.loc[node, 0.05])
            assert frame.loc[node, "m-hi-90"] == pytest.approx(q.loc[node, 0.95])
    # ...but perfectly correlated residuals make a and b move together, so the
    # total's quantiles are the sums of theirs, a wider band than independence gives.
    assert joint.loc["total", "m-hi-90"] == pytest.approx(q.loc["a", 0.95] + q.loc["b", 0.95])
    assert joint.loc["total", "m-lo-90"] == pytest.approx(q.loc["a", 0.05] + q.loc["b", 0.05])
    width = lambda f: f.loc["total", "m-hi-90"] - f.loc["total", "m-lo-90"]  # noqa: E731
    assert width(joint) > 1.2 * width(indep)


def test_bootstrap_centres_the_residuals(rng):
    T = 30
    r = rng.normal(size=(2, T)) + 5.0  # residuals of a biased (under-forecasting) model
    res = pd.DataFrame({"unique_id": np.repeat(["a", "b"], T), "ds": np.tile(np.arange(T), 2),
                        "residual": r.ravel()})
    res = pd.concat([res, res.groupby("ds", as_index=False)["residual"].sum().assign(unique_id="total")])
    rec = H.reconcile(TOY_FC, TOY_S, method="bottom_up", residuals=res, level=[50], n_samples=2000)
    mid = (rec["m-lo-50"] + rec["m-hi-50"]) / 2
    np.testing.assert_allclose(mid, rec["m"], atol=0.5)


# -- reconcile errors -------------------------------------------------------


def test_reconcile_errors_name_the_problem(tree, rng):
    _, Y, S, _ = tree
    fc = _base_forecasts(rng, S)
    with pytest.raises(SalesplanDataError, match=r"forecasts has no rows for 1 node\(s\) of S \('W'\)"):
        H.reconcile(fc[fc.unique_id != "W"], S, method="ols")
    extra = pd.concat([fc, fc.iloc[:1].assign(unique_id="ghost")], ignore_index=True)
    with pytest.raises(SalesplanDataError, match=r"1 id\(s\) that are not nodes of S \('ghost'\)"):
        H.reconcile(extra, S, method="ols")
    with pytest.raises(SalesplanError, match=r"method must be one of.*got 'mint'.*Did you mean 'mint_shrink'"):
        H.reconcile(fc, S, method="mint")
    with pytest.raises(SalesplanError, match=r"needs history="):
        H.reconcile(fc, S, method="average_proportions")
    with pytest.raises(SalesplanError, match=r"method='mint_shrink' needs in-sample residuals"):
        H.reconcile(fc, S, method="mint_shrink")
    with pytest.raises(SalesplanError, match=r"bootstrapped intervals.*needs in-sample residuals"):
        H.reconcile(fc, S, method="ols", level=[80])
    dupS = pd.concat([S, S.iloc[[1]]])
    with pytest.raises(SalesplanDataError, match=r"row ids of S are not unique: 1 id\(s\) occur more than once \('N'\)"):
        H.reconcile(fc, dupS, method="ols")
    with pytest.raises(SalesplanDataError, match=r"S must hold only 0 and 1"):
        H.reconcile(fc, S * 2, method="ols")
    with pytest.raises(SalesplanError, match=r"S must be the summing matrix as a DataFrame"):
        H.reconcile(fc, S.to_numpy(), method="ols")
    nan_fc = fc.copy()
    nan_fc.loc[4, "m"] = np.nan
    with pytest.raises(SalesplanDataError, match=r"'m' has 1 missing value\(s\)"):
        H.reconcile(nan_fc, S, method="ols")


# -- forecasting and backtesting a hierarchy ------------------------------------


def last_value_fn(train, h, *, models=None, level=None, freq=None, id_col="unique_id",
                  time_col="ds", target_col="y", **kwargs):
    """Incoherent on purpose: each node repeats its last value times a node-specific factor."""
    last = train.groupby(id_col, sort=False)[[time_col, target_col]].last()
    rows = []
    for i, (uid, row) in enumerate(last.iterrows()):
        dates = pd.date_range(row[time_col], periods=h + 1, freq=freq or "MS")[1:]
        rows.append(pd.DataFrame({id_col: uid, time_col: dates, "m": row[target_col] * (1 + 0.05 * (i % 3))}))
    return pd.concat(rows, ignore_index=True)


def test_forecast_reconciled_adds_coherent_columns_and_backtests(tree):
    from functools import partial

    from salesplan.forecast.backtest import backtest, backtest_summary

    _, Y, S, tags = tree
    hist = Y[["unique_id", "ds", "y"]]
    out = H.forecast_reconciled(hist, 3, S=S, methods=["bottom_up", "mint_shrink"], forecast_fn=last_value_fn)
    assert list(out.columns) == ["unique_id", "ds", "m", "m/bottom_up", "m/mint_shrink"]
    _children_sums_hold(out, "m/bottom_up")
    _children_sums_hold(out, "m/mint_shrink")
    cv = backtest(hist, 3, n_windows=2, level=None,
                  forecast_fn=partial(H.forecast_reconciled, S=S, methods=["bottom_up"], forecast_fn=last_value_fn))
    for _, window in cv.groupby("cutoff"):
        _children_sums_hold(window, "m/bottom_up")
    ev = backtest_summary(cv, Y)
    per = ev.per_series.merge(H.tags_frame(tags), on="unique_id")
    assert set(per["level"]) == {"total", "region", "region/rep"}
    assert set(ev.overall["model"]) == {"m", "m/bottom_up", "naive", "snaive"}
    # Bottom-up leaves the bottom level alone.
    bottom = per[per.level == "region/rep"].pivot(index="unique_id", columns="model", values="mae")
    np.testing.assert_allclose(bottom["m"], bottom["m/bottom_up"])


def noisy_paths_fn(df, h, *, model, n_samples, seed, freq=None, id_col="unique_id", time_col="ds",
                   target_col="y"):
    """Paths around last_value_fn's forecasts, independent across series."""
    fc = last_value_fn(df, h, freq=freq, id_col=id_col, time_col=time_col, target_col=target_col)
    r = np.random.default_rng(seed)
    k = n_samples
    return pd.DataFrame({
        id_col: np.repeat(fc[id_col].to_numpy(), k),
        time_col: np.repeat(fc[time_col].to_numpy(), k),
        "sample": np.tile(np.arange(k), len(fc)),
        target_col: np.repeat(fc[model].to_numpy(), k) * r.lognormal(0, 0.1, len(fc) * k),
    })


def test_forecast_reconciled_intervals_from_sample_paths(tree):
    _, Y, S, _ = tree
    hist = Y[["unique_id", "ds", "y"]]
    out = H.forecast_reconciled(hist, 3, S=S, methods=["mint_shrink"], level=[80], forecast_fn=last_value_fn,
                                samples_fn=noisy_paths_fn, n_samples=300)
    assert list(out.columns) == ["unique_id", "ds", "m", "m/mint_shrink", "m/mint_shrink-lo-80",
                                 "m/mint_shrink-hi-80"]
    _children_sums_hold(out, "m/mint_shrink")
    inside = (out["m/mint_shrink-lo-80"] <= out["m/mint_shrink"]) & (out["m/mint_shrink"] <= out["m/mint_shrink-hi-80"])
    assert inside.all()
    # Without paths only the base forecasts could have intervals.
    bare = H.forecast_reconciled(hist, 3, S=S, methods=["bottom_up"], level=[80], forecast_fn=last_value_fn)
    assert list(bare.columns) == ["unique_id", "ds", "m", "m/bottom_up"]
