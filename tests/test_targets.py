"""Tests for salesplan.targets: SMART checks, allocation, phasing, bottom-up, plans."""

from __future__ import annotations

import json
import sys
import types
import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesplan.errors import SalesplanDataError, SalesplanError, SalesplanWarning
from salesplan.targets import (
    METHODS,
    Allocator,
    Scenario,
    Target,
    allocate,
    allocate_hierarchy,
    attainment_probability,
    bootstrap_sample_paths,
    bottom_up,
    capacity_plan,
    check_hierarchy,
    compare_methods,
    diff_plans,
    equal_probability_quotas,
    export_csv,
    export_excel,
    fairness_summary,
    fingerprint,
    forecast_distribution,
    full_productivity,
    hierarchy_from_edges,
    largest_remainder,
    list_plans,
    load_plan,
    make_plan,
    metric_panel,
    plan_scenario,
    pipeline_value,
    plan_period,
    run_rate,
    samples_from_intervals,
    save_plan,
    smart_check,
    smart_table,
    stage_win_rates,
    target_gap,
    targets_frame,
    targets_from_frame,
)

MONTHS_HIST = pd.date_range("2024-01-01", "2025-12-01", freq="MS")
MONTHS_2026 = pd.date_range("2026-01-01", periods=12, freq="MS")


# --------------------------------------------------------------------------- data
@pytest.fixture
def hist() -> pd.DataFrame:
    """a: 10 a month; b: 30 a month; c: 20 in Jan-Jun, 40 in Jul-Dec (seasonal)."""
    rows = []
    for ds in MONTHS_HIST:
        rows += [("a", ds, 10.0), ("b", ds, 30.0), ("c", ds, 20.0 if ds.month <= 6 else 40.0)]
    return pd.DataFrame(rows, columns=["unique_id", "ds", "y"])


def make_samples(rng, means: dict[str, float], n: int = 400, sd: float = 0.25, months=MONTHS_2026) -> pd.DataFrame:
    parts = []
    for uid, mu in means.items():
        level = rng.lognormal(np.log(mu), sd, size=n)  # one level per path: months move together
        noise = rng.lognormal(0, 0.1, size=(n, len(months)))
        y = level[:, None] * noise
        parts.append(pd.DataFrame({
            "unique_id": uid,
            "ds": np.tile(months.to_numpy(), n),
            "sample": np.repeat(np.arange(n), len(months)),
            "y": y.reshape(-1),
        }))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def samples(rng) -> pd.DataFrame:
    return make_samples(rng, {"a": 11.0, "b": 31.0, "c": 33.0})


@pytest.fixture
def tx(rng) -> pd.DataFrame:
    """Hand-sized transactions: 3 reps in 2 regions, 2023-01..2025-12."""
    days = pd.date_range("2023-01-01", "2025-12-31", freq="D")
    n = 3000
    d = rng.choice(days.to_numpy(), n)
    rep = rng.choice(["r1", "r2", "r3"], n, p=[0.2, 0.3, 0.5])
    region = np.where(rep == "r3", "South", "North")
    return pd.DataFrame({
        "order_date": pd.to_datetime(d),
        "order_id": [f"o{i}" for i in range(n)],
        "customer_id": rng.integers(0, 200, n).astype(str),
        "rep_id": rep,
        "region": region,
        "quantity": rng.integers(1, 4, n).astype(float),
        "revenue": rng.gamma(2.0, 50.0, n),
    })


@pytest.fixture
def reps() -> pd.DataFrame:
    return pd.DataFrame({"rep_id": ["r1", "r2", "r3"], "team": ["T1", "T1", "T2"],
                         "region": ["North", "North", "South"],
                         "start_date": pd.to_datetime(["2019-01-01", "2019-01-01", "2025-10-01"])})


# --------------------------------------------------------------------------- panels
def test_metric_panel_revenue_units_orders_new_customers():
    tx = pd.DataFrame({
        "order_date": pd.to_datetime(["2025-01-05", "2025-01-20", "2025-02-03", "2025-02-04"]),
        "order_id": ["o1", "o2", "o3", "o3"],
        "customer_id": ["a", "b", "a", "c"],
        "rep_id": ["r1", "r2", "r1", "r1"],
        "quantity": [1.0, 2.0, 3.0, 4.0],
        "revenue": [10.0, 5.0, 7.0, 1.0],
    })
    before = tx.copy()
    exp = pd.DataFrame({"unique_id": ["r1", "r1", "r2", "r2"],
                        "ds": pd.to_datetime(["2025-01-01", "2025-02-01"] * 2),
                        "y": [10.0, 8.0, 5.0, 0.0]}).astype({"unique_id": "str"})
    pdt.assert_frame_equal(metric_panel(tx, level="rep"), exp)
    assert metric_panel(tx, level="rep", metric="units")["y"].tolist() == [1.0, 7.0, 2.0, 0.0]
    assert metric_panel(tx, level="rep", metric="orders")["y"].tolist() == [1.0, 1.0, 1.0, 0.0]
    # c is new in February; a bought again in February but is not new.
    assert metric_panel(tx, level="company", metric="new_customers")["y"].tolist() == [2.0, 1.0]
    pdt.assert_frame_equal(tx, before)  # the caller's frame is untouched


def test_metric_panel_team_needs_reps_and_maps_through_them(tx, reps):
    with pytest.raises(SalesplanDataError, match="level='team' needs the reps table"):
        metric_panel(tx, level="team")
    p = metric_panel(tx, level="team", reps=reps)
    assert set(p["unique_id"]) == {"T1", "T2"}
    assert p["y"].sum() == pytest.approx(tx["revenue"].sum())


def test_metric_panel_warns_and_counts_rows_without_a_unit(tx):
    bad = tx.copy()
    bad.loc[:4, "rep_id"] = None
    with pytest.warns(SalesplanWarning, match=r"5 transaction row\(s\) have no rep"):
        p = metric_panel(bad, level="rep")
    assert p["y"].sum() == pytest.approx(tx["revenue"].iloc[5:].sum())


def test_metric_panel_unknown_metric_suggests():
    with pytest.raises(SalesplanError, match="Did you mean 'revenue'"):
        metric_panel(pd.DataFrame({"order_date": []}), metric="revenu")


# --------------------------------------------------------------------------- kernels
def test_largest_remainder_examples():
    assert largest_remainder([1.5, 1.5, 1.0], 4).tolist() == [2.0, 1.0, 1.0]
    assert largest_remainder([33.3, 33.3, 33.4]).tolist() == [33.0, 33.0, 34.0]
    rows = largest_remainder(np.array([[0.4, 0.6], [2.5, 2.5]]), [1, 5])
    assert rows.tolist() == [[0.0, 1.0], [3.0, 2.0]]
    assert largest_remainder([0.25, 0.75], 1, decimals=1).tolist() == [0.3, 0.7]  # a tie goes to the first


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40), st.integers(0, 2))
@settings(max_examples=80, deadline=None)
def test_largest_remainder_keeps_total_and_stays_close(values, decimals):
    v = np.array(values)
    total = round(float(v.sum()), decimals)
    out = largest_remainder(v * (total / v.sum()) if v.sum() > 0 else v, total, decimals=decimals)
    assert out.sum() == pytest.approx(total, abs=10 ** -decimals * 1e-6)
    assert (out >= -1e-9).all()
    assert np.allclose(out * 10**decimals, np.round(out * 10**decimals))


def test_equal_probability_matches_numpy_quantiles(rng):
    s = np.sort(rng.gamma([[2.0], [5.0], [9.0], [1.0]], 10.0, size=(4, 501)), axis=1)
    total = float(np.median(s, axis=1).sum() * 1.1)
    q, p = equal_probability_quotas(s, total)
    assert q.sum() == pytest.approx(total, rel=1e-12)
    # Independent check: every quota is numpy's (linear) quantile at 1 - p.
    np.testing.assert_allclose(q, np.quantile(s, 1 - p, axis=1), rtol=1e-9)
    np.testing.assert_allclose(attainment_probability(s, q), p, atol=1e-9)
    assert 0 < p < 0.5  # above the medians: less than even odds


@given(st.integers(1, 30), st.integers(2, 200), st.floats(0.01, 0.99), st.integers(0, 2**16))
@settings(max_examples=100, deadline=None)
def test_equal_probability_invariant(n_units, n_samples, where, seed):
    rng = np.random.default_rng(seed)
    s = np.sort(rng.gamma(rng.uniform(0.5, 5, (n_units, 1)), rng.uniform(1, 100, (n_units, 1)),
                          size=(n_units, n_samples)), axis=1)
    col = s.sum(axis=0)
    total = float(col[0] + where * (col[-1] - col[0]))
    q, p = equal_probability_quotas(s, total)
    assert q.sum() == pytest.approx(total, rel=1e-9)
    assert (q >= 0).all()
    probs = attainment_probability(s, q)
    assert probs.max() - probs.min() < 1e-6
    assert probs[0] == pytest.approx(p, abs=1e-6)


def test_equal_probability_outside_the_simulated_range(rng):
    s = np.sort(rng.uniform(10, 20, size=(3, 100)), axis=1)
    q, p = equal_probability_quotas(s, 1.0)
    assert p == 1.0 and q.sum() == pytest.approx(1.0)
    q, p = equal_probability_quotas(s, 1000.0)
    assert p == 0.0 and q.sum() == pytest.approx(1000.0)


def test_attainment_probability_agrees_with_empirical_frequency(rng):
    s = np.sort(rng.normal(100, 10, size=(5, 2000)), axis=1)
    q = np.array([80.0, 95.0, 100.0, 110.0, 130.0])
    emp = (s >= q[:, None]).mean(axis=1)
    np.testing.assert_allclose(attainment_probability(s, q), emp, atol=2 / 2000)
    assert attainment_probability(s, np.array([-1e9] * 5)).tolist() == [1.0] * 5
    assert attainment_probability(s, np.array([1e9] * 5)).tolist() == [0.0] * 5


def test_plan_period_forms():
    assert len(plan_period(2026)) == 12
    assert plan_period("2026Q2").strftime("%Y-%m").tolist() == ["2026-04", "2026-05", "2026-06"]
    assert plan_period(None, after=pd.Timestamp("2025-12-01"))[0] == pd.Timestamp("2026-01-01")
    with pytest.raises(SalesplanError, match="ends .* before it starts"):
        plan_period(("2026-05-01", "2026-01-01"))
    with pytest.raises(SalesplanError, match="not understood"):
        plan_period("next year")


# --------------------------------------------------------------------------- allocation
def test_historical_share_and_equal_growth(hist):
    a = Allocator(period=2026).fit(hist)
    r = a.allocate(1200, method="historical_share")
    # lookback 12 months: a 120, b 360, c 360 -> shares 1/7, 3/7, 3/7
    assert r["quota"].tolist() == [171.0, 514.0, 515.0] or r["quota"].tolist() == [172.0, 514.0, 514.0]
    assert r["quota"].sum() == 1200
    g = a.allocate(1680, method="equal_growth")
    np.testing.assert_allclose(g["growth"], [1680 / 840 - 1] * 3)
    assert g["probability"].isna().all()  # no samples: no probability


def test_forecast_share_potential_equal(hist, samples):
    a = Allocator(period=2026, decimals=None).fit(hist, samples)
    r = a.allocate(1000, method="forecast_share")
    np.testing.assert_allclose(r["quota"] / 1000, a.forecast_mean_ / a.forecast_mean_.sum())
    pot = pd.Series({"a": 1.0, "b": 1.0, "c": 2.0})
    assert a.allocate(1000, method="potential", potential=pot)["quota"].tolist() == [250.0, 250.0, 500.0]
    assert a.allocate(999, method="equal")["quota"].tolist() == [333.0, 333.0, 333.0]
    with pytest.raises(SalesplanError, match="method='potential' needs potential="):
        a.allocate(1000, method="potential")
    with pytest.raises(SalesplanDataError, match="no value for 1 unit"):
        a.allocate(1000, method="potential", potential=pot.drop("c"))


def test_units_subset_in_any_order_keeps_rows_aligned(hist, samples):
    a = Allocator(period=2026, decimals=None).fit(hist, samples)
    fwd = a.allocate(900, method="equal_probability").set_index("unique_id")
    rev = a.allocate(900, method="equal_probability", units=["c", "b", "a"]).set_index("unique_id")
    pdt.assert_frame_equal(rev.loc[fwd.index], fwd)
    sub = a.allocate(500, method="historical_share", units=["c", "a"])
    assert sub["unique_id"].tolist() == ["c", "a"] and sub["quota"].sum() == pytest.approx(500)
    np.testing.assert_allclose(sub["probability"], a.probability(sub["quota"], units=["c", "a"]))


def test_equal_probability_quotas_have_equal_probability(hist, samples):
    a = Allocator(period=2026, decimals=None).fit(hist, samples)
    total = float(a.forecast_mean_.sum())
    r = a.allocate(total, method="equal_probability")
    assert r["quota"].sum() == pytest.approx(total, rel=1e-12)
    assert r["probability"].max() - r["probability"].min() < 1e-9
    # Historical share gives the seasonal unit c (forecast 33 vs history 30) an easier number.
    h = a.allocate(total, method="historical_share")
    assert h["probability"].std() > r["probability"].std()


def test_methods_without_samples_say_what_is_needed(hist):
    a = Allocator(period=2026).fit(hist)
    with pytest.raises(SalesplanError, match="needs the forecast distribution"):
        a.allocate(100, method="equal_probability")


def test_locks_hold_and_the_rest_reallocates(hist, samples):
    a = Allocator(period=2026).fit(hist, samples)
    r = a.allocate(5000, method="equal_probability", locks={"b": 1234.5})
    row = r.set_index("unique_id")
    assert row.loc["b", "quota"] == 1234.5 and bool(row.loc["b", "locked"])
    assert r["quota"].sum() == pytest.approx(5000)
    assert row.loc[["a", "c"], "quota"].sum() == 5000 - 1234.5


def test_bad_totals_and_locks_are_clear_errors(hist):
    a = Allocator(period=2026).fit(hist)
    with pytest.raises(SalesplanError, match=r"total 100.00 is below what is locked \(150.00 over 2 unit"):
        a.allocate(100, locks={"a": 50, "b": 100})
    with pytest.raises(SalesplanError, match="total must be a non-negative number, got -5"):
        a.allocate(-5)
    with pytest.raises(SalesplanError, match="locked value for 'a' is -1"):
        a.allocate(100, locks={"a": -1})
    with pytest.raises(SalesplanError, match="did you mean 'b'"):
        a.allocate(100, locks={"bb": 1})
    with pytest.raises(SalesplanError, match="every unit is locked"):
        a.allocate(100, locks={"a": 1, "b": 1, "c": 1})
    with pytest.raises(SalesplanError, match="method must be one of"):
        a.allocate(100, method="magic")
    with pytest.raises(SalesplanError, match="not fitted yet"):
        Allocator().allocate(100)


def test_period_outside_data_and_horizon(hist, samples):
    with pytest.raises(SalesplanError, match="is outside the data: the history starts 2024-01"):
        Allocator(period=2020).fit(hist)
    with pytest.raises(SalesplanError, match=r"outside the forecast horizon: the sample paths cover 2026-01..2026-12"):
        Allocator(period=("2026-06-01", "2027-05-31")).fit(hist, samples)


def test_units_without_sample_paths_are_named(hist, samples):
    with pytest.warns(SalesplanWarning, match=r"1 unit\(s\) have history but no forecast sample paths: \['c'\]"):
        a = Allocator(period=2026).fit(hist, samples[samples["unique_id"] != "c"])
    assert a.forecast_mean_[2] == 0.0
    short = samples[~((samples["unique_id"] == "b") & (samples["ds"] == MONTHS_2026[3]))]
    with pytest.raises(SalesplanDataError, match=r"sample paths of 1 unit\(s\) do not cover every month.*b"):
        Allocator(period=2026).fit(hist, short)


def test_new_territory_falls_back_with_a_warning(hist, samples, rng):
    new = make_samples(rng, {"new": 5.0})
    a = Allocator(period=2026).fit(hist, pd.concat([samples, new]))
    assert not a.has_history_[list(a.units_).index("new")]
    with pytest.warns(SalesplanWarning, match=r"1 unit\(s\) have no history .*new territory.*: new; 1 get an average"):
        r = a.allocate(4000, method="equal_probability")
    row = r.set_index("unique_id")
    assert bool(row.loc["new", "fallback"]) and row.loc["new", "quota"] == 1000.0
    assert r["quota"].sum() == 4000
    with pytest.warns(SalesplanWarning, match="1 get its capacity"):
        r = a.allocate(4000, method="historical_share", capacity={"new": 300.0})
    assert r.set_index("unique_id").loc["new", "quota"] == 300.0


@st.composite
def _allocation_case(draw):
    n = draw(st.integers(2, 12))
    hist_vals = draw(st.lists(st.floats(0.0, 1e4), min_size=n, max_size=n))
    means = draw(st.lists(st.floats(1.0, 1e4), min_size=n, max_size=n))
    n_locked = draw(st.integers(0, n - 1))
    locked_vals = draw(st.lists(st.floats(0.0, 1e3), min_size=n_locked, max_size=n_locked))
    extra = draw(st.floats(0.0, 1e6))
    method = draw(st.sampled_from(METHODS))
    decimals = draw(st.sampled_from([0, 2, None]))
    seed = draw(st.integers(0, 2**16))
    return n, hist_vals, means, locked_vals, extra, method, decimals, seed


@given(_allocation_case())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_allocation_invariants(case):
    n, hist_vals, means, locked_vals, extra, method, decimals, seed = case
    rng = np.random.default_rng(seed)
    ids = [f"u{i:02d}" for i in range(n)]
    h = pd.DataFrame({"unique_id": np.repeat(ids, 12), "ds": np.tile(MONTHS_HIST[-12:], n),
                      "y": np.repeat(hist_vals, 12) / 12})
    smp = make_samples(rng, dict(zip(ids, means)), n=60)
    a = Allocator(period=2026, decimals=decimals).fit(h, smp)
    locks = {ids[i]: (v if decimals is None else round(v, decimals)) for i, v in enumerate(locked_vals)}
    total = sum(locks.values()) + extra
    if decimals is not None:
        total = round(total, decimals)
    pot = pd.Series(rng.uniform(0, 10, n), index=ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanWarning)
        r = a.allocate(total, method=method, locks=locks, potential=pot)
    q = r.set_index("unique_id")["quota"]
    assert q.sum() == pytest.approx(total, rel=1e-9, abs=1e-6)  # adds up exactly
    assert (q >= -1e-9).all()  # non-negative
    for k, v in locks.items():  # locks unchanged
        assert q[k] == v
    if decimals == 0:
        assert np.allclose(q, np.round(q))
    if method == "equal_probability" and decimals is None and not r["fallback"].any():
        free = r[~r["locked"]]
        inside = (free["quota"] > 0).all() and 0 < free["probability"].iloc[0] < 1
        if inside:
            assert free["probability"].max() - free["probability"].min() < 1e-6


def test_compare_methods_and_fairness(hist, samples):
    a = Allocator(period=2026, decimals=None).fit(hist, samples)
    cmp = compare_methods(a, float(a.forecast_mean_.sum()))
    assert set(cmp["method"]) == set(METHODS) - {"potential"}
    assert cmp.groupby("method")["quota"].sum().round(6).nunique() == 1
    fair = fairness_summary(cmp).set_index("method")
    assert fair["p_spread"].idxmin() == "equal_probability"
    assert fair.loc["equal_probability", "p_spread"] < 1e-9


# --------------------------------------------------------------------------- phasing
def test_phase_by_history_profile_sums_to_quota(hist):
    a = Allocator(period=2026).fit(hist)
    r = a.allocate(1201, method="equal")
    ph = a.phase(r)
    sums = ph.groupby("unique_id")["value"].sum()
    pdt.assert_series_equal(sums, r.set_index("unique_id")["quota"], check_names=False)
    c = ph[ph["unique_id"] == "c"]["value"].to_numpy()
    # c sells twice as much in Jul-Dec: its 400 split 1:2 between the halves
    assert c[:6].sum() == pytest.approx(400 / 3, abs=3) and c[6:].sum() == pytest.approx(800 / 3, abs=3)
    assert np.allclose(c, np.round(c))
    flat = a.phase(r, profile="flat")
    assert flat.groupby("unique_id")["value"].agg(lambda v: v.max() - v.min()).max() <= 1
    with pytest.raises(SalesplanError, match="profile='forecast' needs the forecast samples"):
        a.phase(r, profile="forecast")


def test_phase_by_forecast_profile(hist, samples):
    a = Allocator(period=2026, decimals=None).fit(hist, samples)
    r = a.allocate(1000, method="forecast_share")
    ph = a.phase(r, profile="forecast").pivot(index="unique_id", columns="ds", values="value")
    expected = a.monthly_forecast_ / a.monthly_forecast_.sum(axis=1, keepdims=True) * r["quota"].to_numpy()[:, None]
    np.testing.assert_allclose(ph.to_numpy(), expected)


# --------------------------------------------------------------------------- hierarchy
def test_check_hierarchy_errors():
    ok = pd.DataFrame({"region": ["N", "N", "S"], "team": ["T1", "T2", "T3"], "rep": ["a", "b", "c"]})
    assert len(check_hierarchy(ok, ["region", "team", "rep"])) == 3
    orphan = ok.assign(team=["T1", None, "T3"])
    with pytest.raises(SalesplanDataError, match=r"1 orphan row\(s\): no 'team' for \['b'\]"):
        check_hierarchy(orphan, ["region", "team", "rep"])
    two = ok.assign(team=["T1", "T1", "T1"])
    with pytest.raises(SalesplanDataError, match="not a tree: 1 team.*'T1' under \\['N', 'S'\\]"):
        check_hierarchy(two, ["region", "team", "rep"])
    cyc = ok.assign(rep=["a", "b", "S"])
    with pytest.raises(SalesplanDataError, match="cycle: 'S' is both a region and its own rep"):
        check_hierarchy(cyc, ["region", "team", "rep"])


def test_hierarchy_from_edges_cycles_and_orphans():
    good = pd.DataFrame({"rep_id": ["boss", "m", "a"], "manager": [None, "boss", "m"]})
    h = hierarchy_from_edges(good)
    assert h.set_index("node").loc["a", "path"] == "boss > m > a"
    with pytest.raises(SalesplanDataError, match="cycle: a -> b -> a"):
        hierarchy_from_edges(pd.DataFrame({"rep_id": ["a", "b"], "manager": ["b", "a"]}))
    with pytest.raises(SalesplanDataError, match=r"1 orphan\(s\).*a -> ghost"):
        hierarchy_from_edges(pd.DataFrame({"rep_id": ["a"], "manager": ["ghost"]}))


def test_allocate_hierarchy_adds_up_at_every_level(rng):
    reps = [f"r{i}" for i in range(6)]
    mapping = pd.DataFrame({"region": ["N"] * 3 + ["S"] * 3, "team": ["T1", "T1", "T2", "T3", "T3", "T3"],
                            "rep_id": reps})
    h = pd.DataFrame({"unique_id": np.repeat(reps, 12), "ds": np.tile(MONTHS_HIST[-12:], 6),
                      "y": np.repeat([5.0, 7, 11, 13, 17, 19], 12)})
    smp = make_samples(rng, dict(zip(reps, [6.0, 8, 12, 14, 18, 20])), n=100)
    out = allocate_hierarchy(h, 100001, hierarchy=mapping, levels=["region", "team", "rep_id"], samples=smp,
                             method="equal_probability", period=2026, locks={"team": {"T2": 20000}})
    assert out.loc[out["level"] == "region", "quota"].sum() == 100001
    for lv, parent_lv in (("team", "region"), ("rep_id", "team")):
        kids = out[out["level"] == lv].groupby("parent")["quota"].sum()
        parents = out[out["level"] == parent_lv].set_index("unique_id")["quota"]
        pdt.assert_series_equal(kids, parents.loc[kids.index], check_names=False)
    assert out.set_index(["level", "unique_id"]).loc[("team", "T2"), "quota"] == 20000
    # Regions are listed N, S (not sorted like the fitted units): probabilities must follow the units.
    regions = out[out["level"] == "region"]
    assert regions["probability"].max() - regions["probability"].min() < 0.01
    t3_reps = out[(out["level"] == "rep_id") & (out["parent"] == "T3")]
    assert t3_reps["probability"].max() - t3_reps["probability"].min() < 0.02
    assert (out["quota"] >= 0).all() and np.allclose(out["quota"], np.round(out["quota"]))


@given(st.lists(st.lists(st.integers(1, 3), min_size=1, max_size=3), min_size=1, max_size=3),
       st.sampled_from(["historical_share", "equal", "equal_probability"]), st.integers(0, 10**7),
       st.booleans(), st.integers(0, 2**16))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hierarchy_invariants(shape, method, total, lock_one, seed):
    rng = np.random.default_rng(seed)
    rows = [(f"g{g}", f"g{g}t{t}", f"g{g}t{t}r{r}") for g, teams in enumerate(shape)
            for t, n_reps in enumerate(teams) for r in range(n_reps)]
    mapping = pd.DataFrame(rows, columns=["region", "team", "rep"])
    leaves = mapping["rep"].tolist()
    h = pd.DataFrame({"unique_id": np.repeat(leaves, 12), "ds": np.tile(MONTHS_HIST[-12:], len(leaves)),
                      "y": np.repeat(rng.uniform(0, 100, len(leaves)), 12)})
    smp = make_samples(rng, dict(zip(leaves, rng.uniform(1, 100, len(leaves)))), n=40)
    lock_one = lock_one and len(shape[0]) > 1  # a lone team must equal its region: nothing to lock
    # Zero: a manager closing a team; any positive value could exceed what its region gets.
    locks = {"team": {mapping["team"].iloc[0]: 0.0}} if lock_one else None
    out = allocate_hierarchy(h, total, hierarchy=mapping, levels=["region", "team", "rep"], samples=smp,
                             method=method, period=2026, locks=locks)
    assert out.loc[out["level"] == "region", "quota"].sum() == total
    for lv, parent_lv in (("team", "region"), ("rep", "team")):
        kids = out[out["level"] == lv].groupby("parent")["quota"].sum()
        parents = out[out["level"] == parent_lv].set_index("unique_id")["quota"]
        np.testing.assert_array_equal(kids.to_numpy(), parents.loc[kids.index].to_numpy())
    assert (out["quota"] >= 0).all() and np.allclose(out["quota"], np.round(out["quota"]))
    if lock_one:
        assert out.set_index(["level", "unique_id"]).loc[("team", mapping["team"].iloc[0]), "quota"] == 0.0


# --------------------------------------------------------------------------- SMART
def test_smart_check_verdicts(tx, reps, rng):
    last = tx[tx["order_date"] >= "2025-01-01"]
    south = float(last.loc[last["region"] == "South", "revenue"].sum())
    # A hand-made forecast for South: the same as last year, +-10 %.
    smp = pd.DataFrame({"unique_id": "South", "ds": np.tile(MONTHS_2026.to_numpy(), 500),
                        "sample": np.repeat(np.arange(500), 12),
                        "y": np.repeat(rng.uniform(0.9, 1.1, 500), 12) * south / 12})
    targets = [
        Target("revenue", south * 1.0, "2026-01-01", "2026-12-31", level="region", key="South",
               strategy="hold South"),
        Target("revenue", south * 1.5, "2026-01-01", "2026-12-31", level="region", key="South",
               strategy="grow", name="too hard"),
        Target("revenue", south * 0.5, "2026-01-01", "2026-12-31", level="region", key="South",
               name="too easy"),
        Target("revnue", 1.0, "2026-01-01", "2026-12-31", level="region", key="South", name="typo"),
        Target("revenue", 1.0, "2026-01-01", "2026-12-31", level="region", key="Sooth", name="bad key",
               strategy="x"),
        Target("revenue", 1.0, "2024-01-01", "2024-12-31", level="region", key="South", name="past",
               strategy="x"),
    ]
    c = smart_check(targets, tx, samples={("revenue", "region"): smp}, reps=reps)
    v = c.set_index(["target_id", "letter"])["verdict"]
    reason = c.set_index(["target_id", "letter"])["reason"]
    ok = "region:South:revenue"
    assert [v[(ok, x)] for x in "SMART"] == ["pass"] * 5
    p = c.set_index(["target_id", "letter"]).loc[(ok, "A"), "value"]
    assert p == pytest.approx(0.5, abs=0.08)
    assert "current value" in reason[(ok, "M")] and f"{south:,.2f}" in reason[(ok, "M")]
    assert v[("too hard", "A")] == "flag" and "below the stretch threshold 0.30" in reason[("too hard", "A")]
    assert v[("too easy", "A")] == "flag" and "sandbagging" in reason[("too easy", "A")]
    assert v[("too easy", "R")] == "flag" and "no strategy" in reason[("too easy", "R")]
    assert v[("typo", "S")] == "fail" and "did you mean 'revenue'" in reason[("typo", "S")]
    assert v[("bad key", "S")] == "fail" and "did you mean 'South'" in reason[("bad key", "S")]
    assert v[("bad key", "R")] == "flag" and "no history" in reason[("bad key", "R")]
    assert v[("past", "T")] == "fail" and "already in the data" in reason[("past", "T")]
    wide = smart_table(c).set_index("target_id")
    assert wide.loc[ok, "overall"] == "pass" and wide.loc["typo", "overall"] == "fail"
    assert wide.loc["too hard", "overall"] == "flag"
    # Thresholds are settable: with a lower stretch threshold 'too hard' still fails it only if p < it.
    c2 = smart_check(targets[:1], tx, samples={("revenue", "region"): smp}, stretch=0.6, sandbag=0.95)
    assert c2.set_index("letter").loc["A", "verdict"] == "flag"
    with pytest.raises(SalesplanError, match="stretch .* must be below sandbag"):
        smart_check(targets, tx, stretch=0.9, sandbag=0.5)


def test_smart_check_a_failed_forecast_is_a_verdict_not_a_crash(tx, monkeypatch):
    import salesplan.targets.smart as smart_mod

    def broken(*args, **kwargs):
        raise SalesplanError("series 'all' is too short")

    monkeypatch.setattr(smart_mod, "forecast_distribution", broken)
    t = Target("revenue", 1.0, "2026-01-01", "2026-12-31", strategy="x")
    c = smart_check([t], tx).set_index("letter")
    assert c.loc["A", "verdict"] == "fail"
    assert "forecast could not be computed (SalesplanError: series 'all' is too short)" in c.loc["A", "reason"]
    assert c.loc[["S", "M", "R", "T"], "verdict"].tolist() == ["pass"] * 4


def test_targets_frame_round_trip():
    ts = [Target("revenue", 100.0, "2026-01-01", "2026-12-31", level="rep", key="r1", owner="ann",
                 strategy="grow", baseline=90.0),
          Target("units", 5.0, "2026-03-01", "2026-03-31")]
    f = targets_frame(ts)
    assert list(f.columns[:5]) == ["period", "level", "key", "metric", "value"]
    back = targets_from_frame(f)
    assert [(t.metric, t.value, t.level, t.key, t.owner, t.strategy, t.baseline) for t in back] == [
        ("revenue", 100.0, "rep", "r1", "ann", "grow", 90.0), ("units", 5.0, "company", "all", None, None, None)]
    assert list(back[0].months) == list(MONTHS_2026)


# --------------------------------------------------------------------------- bottom-up
@pytest.fixture
def opps() -> pd.DataFrame:
    return pd.DataFrame({
        "opportunity_id": ["w1", "l1", "l2", "o1", "o2", "o3"],
        "customer_id": ["c"] * 6,
        "rep_id": ["r1", "r1", "r2", "r1", "r2", "r2"],
        "amount": [100.0, 50.0, 70.0, 1000.0, 400.0, 999.0],
        "created_date": pd.to_datetime(["2025-01-01"] * 6),
        "stage": ["won", "lost", "lost", "proposal", "prospecting", "proposal"],
        "status": ["won", "lost", "lost", "open", "open", "open"],
        "close_date": pd.to_datetime(["2025-03-01", "2025-04-01", "2025-05-01", "2026-02-10", "2026-05-01",
                                      "2027-02-01"]),
    })


@pytest.fixture
def stage_hist() -> pd.DataFrame:
    rows = [("w1", s) for s in ("prospecting", "first_contact", "needs_analysis", "proposal", "won")]
    rows += [("l1", s) for s in ("prospecting", "first_contact", "needs_analysis", "proposal", "lost")]
    rows += [("l2", "prospecting"), ("l2", "lost")]
    return pd.DataFrame(rows, columns=["opportunity_id", "stage"]).assign(entered_at=pd.Timestamp("2025-01-01"))


def test_stage_win_rates_from_history(opps, stage_hist):
    wr = stage_win_rates(opps, stage_hist).set_index("stage")
    assert wr.loc["prospecting", "win_rate"] == pytest.approx(1 / 3)
    assert wr.loc["proposal", "win_rate"] == pytest.approx(1 / 2)
    assert wr.loc["contract", "n_reached"] == 0
    assert wr.loc["contract", "win_rate"] == pytest.approx(1 / 3)  # never reached: the overall rate
    with pytest.warns(SalesplanWarning, match="2 lost deal"):
        wr2 = stage_win_rates(opps)
    assert wr2["win_rate"].tolist() == pytest.approx([1 / 3] * 6)
    with pytest.raises(SalesplanDataError, match="no closed deals"):
        stage_win_rates(opps[opps["status"] == "open"])


def test_pipeline_value_weighted_in_period(opps, stage_hist):
    pv = pipeline_value(opps, period=2026, stage_history=stage_hist).set_index("unique_id")
    # o3 closes in 2027: out of the 2026 view
    assert pv.loc["r1", "weighted"] == pytest.approx(1000 * 0.5)
    assert pv.loc["r2", "weighted"] == pytest.approx(400 / 3)
    up = pipeline_value(opps, period=2026, stage_history=stage_hist, win_rate_change=0.5).set_index("unique_id")
    assert up.loc["r1", "weighted"] == pytest.approx(750)
    given_p = pipeline_value(opps.assign(p=0.1), period=2026, probability_col="p").set_index("unique_id")
    assert given_p.loc["r1", "weighted"] == pytest.approx(100)


def test_capacity_plan_ramp_and_hires():
    reps = pd.DataFrame({"rep_id": ["old", "mid"], "start_date": pd.to_datetime([None, "2025-11-15"])})
    hires = pd.DataFrame({"rep_id": ["new"], "start_date": pd.to_datetime(["2026-04-01"])})
    cap = capacity_plan(reps, period=2026, productivity=100.0, hires=hires)
    w = cap.pivot(index="rep_id", columns="ds", values="ramp")
    assert w.loc["old"].tolist() == [1.0] * 12
    assert w.loc["mid"].tolist() == [0.25, 0.5, 0.5, 0.5, 0.75, 0.75, 0.75, 1, 1, 1, 1, 1]
    assert w.loc["new"].tolist() == [0, 0, 0, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 0.75, 0.75, 0.75]
    assert cap.groupby("rep_id")["capacity"].sum()["new"] == pytest.approx(100 * 0.25 * 3 + 50 * 3 + 75 * 3)
    with pytest.raises(SalesplanError, match="ramp must be shares"):
        capacity_plan(reps, period=2026, productivity=1.0, ramp=(0.5, 2.0))
    with pytest.raises(SalesplanDataError, match="appears twice"):
        capacity_plan(reps, period=2026, productivity=1.0, hires=reps)


def test_bottom_up_and_gap(hist, opps, stage_hist):
    h = hist.replace({"unique_id": {"a": "r1", "b": "r2", "c": "r3"}})
    pv = pipeline_value(opps, period=2026, stage_history=stage_hist)
    rr = run_rate(h, period=2026, months=3).set_index("unique_id")
    assert rr.loc["r3", "run_rate"] == pytest.approx(40 * 12)
    cap = capacity_plan(pd.DataFrame({"rep_id": ["r9"], "start_date": pd.to_datetime(["2026-01-01"])}),
                        period=2026, productivity=10.0)
    bu = bottom_up(h, period=2026, pipeline=pv, capacity=cap).set_index("unique_id")
    assert bu.loc["r1", "bottom_up"] == pytest.approx(120 + 500)
    assert bu.loc["r9", "bottom_up"] == pytest.approx(cap["capacity"].sum())  # a new hire: capacity
    alloc = pd.DataFrame({"unique_id": ["r1", "r2"], "quota": [1000.0, 100.0]})
    gap = target_gap(alloc, bu.reset_index()).set_index("unique_id")
    assert gap.loc["r1", "gap"] == pytest.approx(1000 - 620)
    assert gap.loc["r2", "coverage"] == pytest.approx((360 + 400 / 3) / 100)
    assert full_productivity(h) == pytest.approx(30.0)  # median of 10, 30 and 30 (c averages 30)


# --------------------------------------------------------------------------- scenarios and plans
def test_scenario_total():
    assert Scenario("s", growth=0.1, price_change=0.02).total(1000.0) == pytest.approx(1122.0)
    assert Scenario("h", headcount=1, productivity=12.0).total(0.0) == pytest.approx(12 * (3 * .25 + 3 * .5 + 3 * .75 + 3))
    with pytest.raises(SalesplanError, match="negative total"):
        Scenario("x", growth=-2).total(10.0)


def test_plan_scenario_and_diff(hist, samples):
    a = Allocator(period=2026).fit(hist, samples)
    base = float(a.last_year_.sum())
    flat = plan_scenario(a, Scenario("flat", method="equal_probability"), inputs={"h": hist})
    up = plan_scenario(a, Scenario("up", growth=0.1, price_change=0.05, method="equal_probability"),
                       locks={"a": 100.0}, profile="forecast")
    assert flat.parameters["total"] == round(base) and flat.table["value"].sum() == round(base)
    assert up.parameters["total"] == round(base * 1.1 * 1.05) and up.parameters["locks"] == {"a": 100.0}
    assert up.table.loc[up.table["key"] == "a", "value"].sum() == 100.0
    assert flat.metadata["fingerprint"] == fingerprint({"h": hist})
    moved = diff_plans(flat, up).groupby("key")["change"].sum()
    assert moved.sum() == pytest.approx(up.parameters["total"] - flat.parameters["total"])
    assert moved["a"] == pytest.approx(100.0 - flat.table.loc[flat.table["key"] == "a", "value"].sum())


def _plan(hist, total, name="base", inputs=None):
    a = Allocator(period=2026).fit(hist)
    r = a.allocate(total)
    return make_plan(name, a.phase(r), level="rep", parameters={"total": total},
                     inputs=inputs or {"history": hist}, extra=r[["unique_id", "probability"]])


def test_save_load_versions_never_overwrite(hist, tmp_path, monkeypatch):
    p1 = _plan(hist, 1200)
    path1 = save_plan(p1, plan_dir=tmp_path, user="ann")
    path2 = save_plan(_plan(hist, 1300), plan_dir=tmp_path, user="bob")
    assert (path1.name, path2.name) == ("base_v1.json", "base_v2.json")
    assert path1.with_suffix(".csv").is_file()
    doc = json.loads(path1.read_text())
    assert doc["metadata"]["user"] == "ann" and doc["metadata"]["version"] == 1
    assert doc["metadata"]["fingerprint"] == fingerprint({"history": hist})
    assert doc["parameters"] == {"total": 1200}
    # A stale directory listing (another process saved meanwhile) still cannot overwrite.
    import salesplan.targets.plans as plans_mod
    monkeypatch.setattr(plans_mod, "_versions", lambda d, n: [])
    path3 = save_plan(_plan(hist, 1400), plan_dir=tmp_path)
    assert path3.name == "base_v3.json"
    assert json.loads(path1.read_text())["parameters"] == {"total": 1200}
    monkeypatch.undo()
    back = load_plan("base", version=1, plan_dir=tmp_path)
    pdt.assert_frame_equal(back.table[["period", "level", "key", "metric", "value"]],
                           p1.table[["period", "level", "key", "metric", "value"]])
    assert load_plan("base", plan_dir=tmp_path).version == 3
    lst = list_plans(tmp_path)
    assert lst["version"].tolist() == [1, 2, 3] and lst["user"].tolist()[:2] == ["ann", "bob"]
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(SalesplanError, match="no saved plan called 'nope'"):
        load_plan("nope", plan_dir=tmp_path)
    with pytest.raises(SalesplanError, match="plan name 'a b' must"):
        save_plan(_plan(hist, 1, name="ok").__class__("a b", p1.table), plan_dir=tmp_path)


def test_diff_plans_shows_what_moved(hist):
    a = _plan(hist, 1200)
    b_table = a.table.copy()
    b_table.loc[0, "value"] += 7
    b = a.__class__("b", b_table.iloc[1:].reset_index(drop=True).pipe(
        lambda t: pd.concat([t, b_table.iloc[[0]]], ignore_index=True)))
    b.table = pd.concat([b.table, a.table.iloc[[0]].assign(key="z")], ignore_index=True)
    d = diff_plans(a, b)
    assert sorted(d["status"]) == ["added", "changed"]
    assert d["change"].abs().is_monotonic_decreasing
    moved = d[d["status"] == "changed"].iloc[0]
    assert moved["change"] == 7 and moved["key"] == a.table.loc[0, "key"]
    assert moved["change_pct"] == pytest.approx(7 / a.table.loc[0, "value"])
    assert d[d["status"] == "added"]["key"].tolist() == ["z"]
    full = diff_plans(a, a, only_changes=False)
    assert (full["status"] == "unchanged").all() and len(full) == len(a.table)


def test_export_excel_one_sheet_per_level_with_totals(hist, tmp_path):
    a = Allocator(period=2026).fit(hist)
    r = a.allocate(1200)
    ph = a.phase(r)
    company = ph.groupby("ds", as_index=False)["value"].sum().assign(unique_id="all")
    plan = make_plan("x", {"rep": ph, "company": company}, parents={"a": "T1", "b": "T1", "c": "T2"})
    out = export_excel(plan, tmp_path / "x.xlsx")
    sheets = pd.read_excel(out, sheet_name=None)
    assert set(sheets) == {"Assumptions", "rep", "company"}
    rep = sheets["rep"]
    assert rep["Rep"].tolist() == ["a", "b", "c", "Total"]
    assert rep["Total"].iloc[-1] == 1200 and rep["Total"].iloc[:3].sum() == 1200
    assert rep["Jan 2026"].iloc[-1] == rep["Jan 2026"].iloc[:3].sum()
    csv = export_csv(plan, tmp_path / "x.csv")
    assert pd.read_csv(csv)["value"].sum() == 2400


# --------------------------------------------------------------------------- distributions
def test_bootstrap_sample_paths_shape_seed_and_level(hist):
    s1 = bootstrap_sample_paths(hist, 12, n_samples=50, seed=3)
    s2 = bootstrap_sample_paths(hist, 12, n_samples=50, seed=3)
    pdt.assert_frame_equal(s1, s2)
    assert len(s1) == 3 * 50 * 12 and list(s1.columns) == ["unique_id", "ds", "sample", "y"]
    assert s1["ds"].min() == pd.Timestamp("2026-01-01")
    # Flat units stay flat: a sells 10 a month every month.
    a = s1[s1["unique_id"] == "a"]
    assert a["y"].to_numpy() == pytest.approx(10.0)
    c = s1[s1["unique_id"] == "c"].groupby("ds")["y"].mean()
    assert c.iloc[6] == pytest.approx(2 * c.iloc[0])  # seasonality carried over


def test_forecast_distribution_uses_the_engine_when_present(hist, monkeypatch):
    calls = []

    def fake_sample_paths(df, h, *, model="auto", n_samples=1000, seed=0, freq=None, **kw):
        calls.append((h, model, n_samples))
        return bootstrap_sample_paths(df, h, n_samples=n_samples, seed=seed)

    fake = types.ModuleType("salesplan.forecast")
    fake.sample_paths = fake_sample_paths
    monkeypatch.setitem(sys.modules, "salesplan.forecast", fake)
    s, src = forecast_distribution(hist, 6, n_samples=20)
    assert calls == [(6, "auto", 20)] and src.startswith("salesplan.forecast.sample_paths")
    monkeypatch.setitem(sys.modules, "salesplan.forecast", types.ModuleType("salesplan.forecast"))
    with pytest.warns(SalesplanWarning, match="sample_paths is not available"):
        s, src = forecast_distribution(hist, 6, n_samples=20)
    assert src == "bootstrap fallback" and s["ds"].nunique() == 6


def test_samples_from_intervals():
    fc = pd.DataFrame({"unique_id": ["a"] * 2, "ds": MONTHS_2026[:2], "ets": [100.0, 200.0],
                       "ets-lo-80": [80.0, 150.0], "ets-hi-80": [120.0, 250.0]})
    s = samples_from_intervals(fc, n_samples=4000, seed=1)
    m = s.groupby("ds")["y"].agg(["mean", lambda v: np.quantile(v, 0.9)])
    assert m["mean"].tolist() == pytest.approx([100, 200], rel=0.02)
    assert m.iloc[:, 1].tolist() == pytest.approx([120, 250], rel=0.03)
    with pytest.raises(SalesplanDataError, match="no point column"):
        samples_from_intervals(fc, level=95)


def test_fingerprint_changes_with_data(hist):
    f = fingerprint({"h": hist})
    assert f == fingerprint({"h": hist.copy()})
    assert f != fingerprint({"h": hist.assign(y=hist["y"] + 1)})
    assert len(f) == 16


def test_allocate_function_and_column_order_independent(hist):
    a = allocate(hist, 1000, period=2026)
    b = allocate(hist[["y", "ds", "unique_id"]], 1000, period=2026)
    pdt.assert_frame_equal(a, b)


def test_won_deals_are_not_counted_twice_in_the_bottom_up():
    from salesplan.targets import won_in_run_rate

    months = pd.date_range("2025-07-01", periods=6, freq="MS")
    hist = pd.DataFrame({"unique_id": "r1", "ds": months, "y": [100.0, 100, 100, 100, 100, 400]})
    opps = pd.DataFrame({
        "opportunity_id": ["big", "old", "open"], "rep_id": "r1", "amount": [300.0, 50.0, 200.0],
        "status": ["won", "won", "open"], "stage": ["won", "won", "proposal"],
        "close_date": pd.to_datetime(["2025-12-10", "2025-03-01", "2026-05-01"]),
    })
    won = won_in_run_rate(opps, hist, period=2026, months=3)
    # Only the deal won inside the three run-rate months counts: 300 / 3 months x 12 months.
    assert won.set_index("unique_id").loc["r1", "won_in_run_rate"] == pytest.approx(1200.0)
    pipe = pd.DataFrame({"unique_id": ["r1"], "weighted": [100.0]})
    view = bottom_up(hist, period=2026, pipeline=pipe, won=won).set_index("unique_id").loc["r1"]
    assert view["run_rate"] == pytest.approx(200.0 * 12)  # (100 + 100 + 400) / 3 a month
    assert view["base_run_rate"] == pytest.approx(100.0 * 12)  # without the one-off deal
    assert view["bottom_up"] == pytest.approx(100.0 * 12 + 100.0)
    plain = bottom_up(hist, period=2026, pipeline=pipe).set_index("unique_id").loc["r1"]
    assert plain["bottom_up"] == pytest.approx(200.0 * 12 + 100.0)  # without won=, the old sum


def test_unit_verdicts():
    from salesplan.targets import unit_verdicts

    alloc = pd.DataFrame({"unique_id": ["a", "b", "c", "n"], "probability": [0.1, 0.5, 0.95, np.nan],
                          "fallback": [False, False, True, True],
                          "verdict": ["stretch", "ok", "sandbag", "new hire"]})
    v = unit_verdicts(alloc, stretch=0.3, sandbag=0.9, strategy="grow").set_index("unique_id")
    assert v["smart"].tolist() == ["flag", "pass", "flag", "pass"]
    assert "stretch 30%" in v.loc["a", "smart_reason"]
    assert "sandbag" in v.loc["c", "smart_reason"] and "R: no history" in v.loc["c", "smart_reason"]
    no_strategy = unit_verdicts(alloc, strategy="")
    assert (no_strategy["smart"] == "flag").all()
