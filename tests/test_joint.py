"""Tests for salesplan.targets.joint and the planner's joint probabilities."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from salesplan.errors import SalesplanError
from salesplan.targets import JointForecast, node_probabilities
from salesplan.targets.joint import crps_samples, simulate_paths

MONTHS_2026 = pd.date_range("2026-01-01", periods=12, freq="MS")


def _panel(rng, n_units=6, months=36, start="2023-01-01"):
    ds = pd.date_range(start, periods=months, freq="MS")
    common = rng.normal(0, 0.1, months)  # a shock every unit shares
    rows = []
    for i in range(n_units):
        level = 100.0 * (i + 1)
        y = level * (1 + 0.01 * np.arange(months)) * np.exp(common + rng.normal(0, 0.05, months))
        rows.append(pd.DataFrame({"unique_id": f"u{i}", "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


def _parents(n_units=6):
    return pd.DataFrame({"unique_id": [f"u{i}" for i in range(n_units)],
                         "team": [f"t{i // 2}" for i in range(n_units)],
                         "region": ["A" if i < 4 else "B" for i in range(n_units)]})


@pytest.mark.parametrize("method", ["bottom_up", "ols", "wls_struct", "mint_shrink", "auto"])
def test_paths_add_up_at_every_level(rng, method):
    jf = JointForecast(n_samples=300, method=method).fit(_panel(rng), period=MONTHS_2026, parents=_parents(),
                                                          level="rep")
    nodes, tot = jf.nodes_, jf.totals_
    assert list(nodes["level"].unique()) == ["rep", "team", "region", "company"]
    units = tot[:6]
    for lv, col in (("team", "team"), ("region", "region")):
        par = _parents()
        for key, grp in par.groupby(col):
            row = np.flatnonzero((nodes["level"] == lv) & (nodes["unique_id"] == key))[0]
            kids = [int(u[1:]) for u in grp["unique_id"]]
            np.testing.assert_allclose(tot[row], units[kids].sum(axis=0), rtol=1e-9)
    np.testing.assert_allclose(tot[-1], units.sum(axis=0), rtol=1e-9)
    np.testing.assert_allclose(jf.monthly_.sum(axis=1), units, rtol=1e-9)
    assert jf.method_ in ("bottom_up", "ols", "wls_struct", "mint_shrink")


def test_shared_shocks_keep_units_correlated(rng):
    panel = _panel(rng, months=48, start="2022-01-01")
    jf = JointForecast(n_samples=1000, method="bottom_up").fit(panel, period=MONTHS_2026)
    corr = np.corrcoef(jf.totals_[:6])
    assert corr[np.triu_indices(6, 1)].mean() > 0.3  # the common shock moves them together
    # Independent draws (one unit at a time) lose it: the company spread would shrink.
    indep = np.stack([JointForecast(n_samples=1000, seed=i, method="bottom_up").fit(
        panel[panel["unique_id"] == f"u{i}"], period=MONTHS_2026).totals_[0] for i in range(6)])
    assert jf.totals_[-1].std() > 1.2 * indep.sum(axis=0).std()


def test_probabilities_are_counts_over_the_paths(rng):
    jf = JointForecast(n_samples=200, method="mint_shrink").fit(_panel(rng), period=MONTHS_2026,
                                                                parents=_parents(), level="rep")
    q = pd.Series(np.median(jf.totals_[:6], axis=1) * 1.02, index=[f"u{i}" for i in range(6)])
    probs = jf.probabilities(q)
    smp = jf.samples()
    for row in probs.itertuples():
        y = smp.loc[(smp["level"] == row.level) & (smp["unique_id"] == row.unique_id), "y"].to_numpy()
        assert row.probability == pytest.approx(float((y >= row.quota).mean()))
    assert probs.loc[probs["level"] == "company", "quota"].item() == pytest.approx(q.sum())
    assert ((probs["probability"] >= 0) & (probs["probability"] <= 1)).all()


def test_constant_history_gives_a_point_distribution():
    hist = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 36),
                         "ds": np.tile(pd.date_range("2023-01-01", periods=36, freq="MS"), 2),
                         "y": np.r_[np.full(36, 10.0), np.full(36, 30.0)]})
    jf = JointForecast(n_samples=50).fit(hist, period=MONTHS_2026)
    np.testing.assert_allclose(jf.totals_[:2], [[120.0] * 50, [360.0] * 50])


def test_short_and_young_histories(rng):
    # 14 months, and a unit that started 4 months ago: both get paths at their run rate.
    panel = _panel(rng, n_units=3, months=14, start="2024-11-01")
    panel.loc[(panel["unique_id"] == "u2") & (panel["ds"] < "2025-09-01"), "y"] = 0.0
    jf = JointForecast(n_samples=300).fit(panel, period=pd.date_range("2026-01-01", periods=12, freq="MS"))
    assert jf.method_ == "bottom_up"
    mean = jf.totals_[:3].mean(axis=1)
    recent = panel[panel["ds"] >= "2025-09-01"].groupby("unique_id")["y"].mean().to_numpy() * 12
    np.testing.assert_allclose(mean, recent, rtol=0.25)
    assert (jf.totals_ >= 0).all()


def test_period_inside_the_history_is_refused(rng):
    with pytest.raises(SalesplanError, match="inside the history"):
        JointForecast(n_samples=10).fit(_panel(rng), period=pd.date_range("2025-06-01", periods=12, freq="MS"))


def test_simulate_paths_shapes_and_seed():
    Y = np.abs(np.random.default_rng(1).normal(100, 10, (3, 40)))
    a = simulate_paths(Y, 15, n_samples=20, seed=3)
    b = simulate_paths(Y, 15, n_samples=20, seed=3)
    assert a.shape == (3, 15, 20)
    np.testing.assert_array_equal(a, b)


def test_crps_of_a_point_is_the_absolute_error():
    assert crps_samples(np.full((1, 5), 3.0), np.array([5.0]))[0] == pytest.approx(2.0)
    x = np.random.default_rng(0).normal(0, 1, (1, 4000))
    assert crps_samples(x, np.array([0.0]))[0] == pytest.approx(0.2337, abs=0.02)  # N(0,1) at 0


def test_node_probabilities_by_hand():
    nodes = pd.DataFrame({"level": ["rep", "rep", "company"], "unique_id": ["a", "b", "all"]})
    S = np.array([[1.0, 0], [0, 1], [1, 1]])
    totals = np.array([[1.0, 2, 3, 4], [4.0, 3, 2, 1], [5.0, 5, 5, 5]])
    out = node_probabilities(nodes, S, totals, np.array([2.0, 3.0]))
    assert out["quota"].tolist() == [2.0, 3.0, 5.0]
    assert out["probability"].tolist() == [0.75, 0.5, 1.0]


# ---------------------------------------------------------------------------
# The planner: every probability from the same paths, on data of several shapes
# ---------------------------------------------------------------------------

ipywidgets = pytest.importorskip("ipywidgets")


def _tx(rng, *, months=36, end="2025-12-31", columns=("region", "category", "channel", "rep_id"), n=3000):
    start = pd.Timestamp(end) - pd.DateOffset(months=months) + pd.Timedelta(days=1)
    days = pd.date_range(start, end, freq="D").to_numpy()
    reps = np.array([f"r{i}" for i in range(8)])
    rep = rng.choice(reps, n)
    tx = pd.DataFrame({"order_date": pd.to_datetime(rng.choice(days, n)),
                       "customer_id": rng.integers(0, 200, n).astype(str),
                       "revenue": rng.gamma(2.0, 50.0, n)})
    if "rep_id" in columns:
        tx["rep_id"] = rep
    if "region" in columns:
        tx["region"] = np.where(np.isin(rep, reps[:4]), "North", "South")
    if "category" in columns:
        tx["category"] = rng.choice(["hw", "sw", "svc"], n)
    if "channel" in columns:
        tx["channel"] = rng.choice(["web", "direct"], n)
    return tx


def _check_planner_probabilities(app):
    smp, probs = app.samples, app.probabilities
    assert smp is not None and probs is not None
    counts = smp.groupby(["level", "unique_id"])["sample"].nunique()
    assert counts.nunique() == 1  # every node has the same paths
    for row in probs.itertuples():
        y = smp.loc[(smp["level"] == row.level) & (smp["unique_id"] == row.unique_id), "y"].to_numpy()
        assert row.probability == pytest.approx(float((y >= row.quota - 1e-9 * max(abs(row.quota), 1)).mean()))
    units = probs[probs["level"] == app.level.value].set_index("unique_id")
    res = app.result.set_index("unique_id")
    res = res[res["verdict"] != "new hire"]
    pd.testing.assert_series_equal(res["probability"], units["probability"].reindex(res.index), check_names=False)
    company = probs[probs["level"] == "company"]
    assert company["quota"].item() == pytest.approx(app.total.value)
    smart_p = app.smart.set_index("letter").loc["A", "value"]
    assert smart_p == pytest.approx(company["probability"].item(), abs=1e-9)


def test_planner_rep_team_region_company_agree(rng, tmp_path):
    from salesplan.ui import TargetPlanner

    tx = _tx(rng)
    reps = pd.DataFrame({"rep_id": [f"r{i}" for i in range(8)], "team": [f"T{i // 2}" for i in range(8)],
                         "region": ["North"] * 4 + ["South"] * 4,
                         "start_date": pd.to_datetime(["2020-01-01"] * 8)})
    app = TargetPlanner(tx, reps=reps, plan_dir=tmp_path, n_samples=200, growth=0.08, method="equal_probability")
    assert app.errors.ok, app.errors.message
    assert app.level.value == "rep" and app.period.value == 2026
    assert set(app.probabilities["level"]) == {"rep", "team", "region", "company"}
    _check_planner_probabilities(app)
    p = app.result["probability"]
    assert np.ptp(p) <= 0.02  # equal probability on the reconciled marginals
    app.lock("r1", 1000.0)
    app.headcount.value = 1
    app.hire_month.value = 6
    assert app.errors.ok, app.errors.message
    _check_planner_probabilities(app)
    hire = app.phased[app.phased["unique_id"] == "new_hire_1"]["value"].to_numpy()
    assert (hire[:6] == 0).all() and hire[6] > 0  # hired in the seventh month
    assert set(app.result["smart"]) <= {"pass", "flag"}
    assert "SMART" in app._slots[0].info.value
    assert app.calibration_html.value.startswith("<small>Calibration on your data")
    # The year after: last year is itself a forecast, so growth is measured against its mean.
    app.period.value = 2027
    assert app.errors.ok, app.errors.message
    assert app.base == pytest.approx(float(app.joint.prior_mean_[-1])) and app.base > 0
    _check_planner_probabilities(app)


@pytest.mark.parametrize("shape", ["three_columns", "region_category", "short_14_months"])
def test_planner_adapts_to_the_data(rng, tmp_path, shape):
    from salesplan.ui import TargetPlanner

    if shape == "three_columns":
        tx, expected, levels = _tx(rng, columns=()), "company", ["company"]
    elif shape == "region_category":
        tx, expected, levels = _tx(rng, columns=("region", "category")), "region", ["region", "category", "company"]
    else:
        tx, expected, levels = _tx(rng, months=14, end="2025-06-30", columns=("region",)), "region", ["region", "company"]
    app = TargetPlanner(tx, plan_dir=tmp_path, n_samples=100, growth=0.05)
    assert app.errors.ok, app.errors.message
    assert app.level.value == expected and list(app.level.options) == levels
    if shape == "short_14_months":
        assert app.period.value == ("2025-07", "2026-06")  # the next twelve months
        assert "no past year" in app.calibration_html.value
    else:
        assert app.period.value == 2026
    assert app.result["quota"].sum() == app.total.value
    _check_planner_probabilities(app)
    assert app.plan is not None


def test_notebook_runs_on_three_columns(rng, tmp_path, project_root):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    tx = _tx(rng, columns=(), n=1500)
    csv = tmp_path / "orders.csv"
    tx.to_csv(csv, index=False)
    nb = nbformat.read(project_root / "notebooks" / "03_target_setting.ipynb", as_version=4)
    env = dict(os.environ, SALESPLAN_DATA=str(csv), PYTHONPATH=str(project_root))
    old = dict(os.environ)
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Add an opportunities table" in text and "Add a reps table" in text
    assert f"{len(tx):,} order lines" in text
    assert sys.executable  # the kernel ran with this interpreter's packages


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(0, 10_000))
def test_probabilities_are_in_range_and_fall_as_quotas_rise(n_units, k, seed):
    r = np.random.default_rng(seed)
    nodes = pd.DataFrame({"level": ["rep"] * n_units + ["company"],
                          "unique_id": [f"u{i}" for i in range(n_units)] + ["all"]})
    S = np.vstack([np.eye(n_units), np.ones((1, n_units))])
    bottom = r.gamma(2.0, 10.0, (n_units, k))
    totals = S @ bottom
    q = r.gamma(2.0, 10.0, n_units)
    low = node_probabilities(nodes, S, totals, q)
    high = node_probabilities(nodes, S, totals, q * 1.1)
    assert low["probability"].between(0, 1).all()
    assert (high["probability"] <= low["probability"]).all()
    assert low["quota"].iloc[-1] == pytest.approx(q.sum())


def test_recent_units_keep_ramping():
    from salesplan.targets.joint import ramp_units

    # Three mature units at 100 a month; a new one started 3 months ago at the first ramp step (25 %).
    Y = np.vstack([np.full((3, 24), 100.0), np.r_[np.zeros(21), np.full(3, 25.0)][None, :]])
    paths = np.ones((4, 12, 5)) * np.array([100.0, 100.0, 100.0, 25.0])[:, None, None]
    out = ramp_units(Y, paths, ramp=(0.25, 0.5, 0.75, 1.0))
    np.testing.assert_allclose(out[:3], paths[:3])  # mature units are left alone
    # Months 4-6 of its life at 50 %, 7-9 at 75 %, then full productivity.
    np.testing.assert_allclose(out[3, :, 0], [50.0] * 3 + [75.0] * 3 + [100.0] * 6)


def test_a_young_unit_is_centred_on_its_run_rate_not_its_ramp():
    # A rep with 16 months of sales among steady peers: four ramp-up months, then a steady 100 a
    # month. Its next year is about 1,200; the ramp months must not drag the simulated months down
    # (they did, to about 840, when its errors were measured from its first sale).
    young = np.r_[np.zeros(20), [25.0, 50.0, 75.0, 90.0], np.full(12, 100.0)]
    Y = np.vstack([np.full((10, 36), 1000.0), young])
    paths = simulate_paths(Y, 12, n_samples=400, seed=1)
    assert paths[-1].sum(axis=0).mean() == pytest.approx(1200.0, rel=0.02)


def test_pooled_units_have_heavier_tails_than_a_normal_spread(rng):
    # 40 units whose years differ: the pooled totals keep the peers' spread in the body and
    # give a wild year (3 spreads out) more weight than a normal distribution would.
    from salesplan.targets.joint import pool_units

    n, T = 40, 36
    level = 100 * np.exp(rng.normal(0, 0.2, (n, 3)))
    Y = np.repeat(level, 12, axis=1) * (1 + 0.01 * rng.standard_normal((n, T)))
    paths = np.repeat(Y[:, -12:, None], 4000, axis=2)  # no spread of their own
    out = pool_units(Y, paths, seed=3).sum(axis=1)
    z = np.log(out / np.median(out, axis=1, keepdims=True))
    a2, a1 = Y[:, -12:].sum(axis=1), Y[:, -24:-12].sum(axis=1)
    dev = np.log(a2 / a1) - np.log(a2.sum() / a1.sum())
    mad = 1.4826 * np.median(np.abs(dev - np.median(dev)))
    assert np.median(np.abs(z)) * 1.4826 == pytest.approx(mad, rel=0.15)
    assert (np.abs(z) > 3 * mad).mean() > 2 * 0.0027  # a normal puts 0.27% beyond 3 sigma
    growth = out.mean(axis=1).sum() / a2.sum()
    assert growth == pytest.approx(a2.sum() / a1.sum(), rel=0.02)


def test_common_factor_widens_the_total_to_the_models_spread(rng):
    from salesplan.forecast import sample_paths
    from salesplan.targets.joint import common_factor

    # Ten units whose total wanders (a random walk): their own paths have no spread at all.
    T, k = 36, 2000
    total = 1000 * np.exp(np.cumsum(rng.normal(0.01, 0.05, T)))
    Y = np.outer(np.full(10, 0.1), total)
    flat = np.repeat(Y[:, -12:, None], k, axis=2)
    f = common_factor(Y, flat, seed=0)
    assert f.shape == (12, k) and np.allclose(f, f[:1])  # one factor per path, every month of the year
    df = pd.DataFrame({"unique_id": "t", "ds": pd.date_range("2000-01-01", periods=T, freq="MS"), "y": total})
    a = sample_paths(df, 12, n_samples=k, seed=0).groupby("sample")["y"].sum()
    want = np.diff(np.percentile(np.log(a), [10, 90]))[0]
    got = np.diff(np.percentile(np.log(f[0]), [10, 90]))[0]
    assert got == pytest.approx(want, rel=0.1)
    assert f[0].mean() == pytest.approx(1.0, abs=0.02)
    # Paths that already vary more than the model of the total are left alone.
    wide = flat * np.exp(rng.normal(0, 1.0, (1, 1, k)))
    assert (common_factor(Y, wide, seed=0) == 1.0).all()
