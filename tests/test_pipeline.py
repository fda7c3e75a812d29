"""Tests of salesplan.pipeline: hand-made deals with known answers, invariants, demo and a real export."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal, assert_series_equal

from salesplan import datasets
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.pipeline import (
    Process,
    WinModel,
    aging,
    bottlenecks,
    brier_score,
    reliability_table,
    snapshots,
    cycle_length,
    cycle_survival,
    deal_stages,
    forecast_categories,
    funnel,
    kaplan_meier,
    km_median,
    learn_slip,
    pipeline_forecast,
    prepare,
    stage_durations,
    target_coverage,
    two_proportion_test,
    velocity,
    velocity_trend,
    wilson_interval,
    win_rates,
)

DAY0 = pd.Timestamp("2024-01-01")


def _opps(rows):
    """rows: (id, stage, created_day, amount, rep, close_day or None)."""
    return pd.DataFrame({
        "opportunity_id": [r[0] for r in rows],
        "customer_id": ["C" + r[0] for r in rows],
        "rep_id": [r[4] for r in rows],
        "amount": [r[3] for r in rows],
        "created_date": [DAY0 + pd.Timedelta(days=r[2]) for r in rows],
        "stage": [r[1] for r in rows],
        "close_date": [DAY0 + pd.Timedelta(days=r[5]) if r[5] is not None else pd.NaT for r in rows],
    })


def _history(rows):
    """rows: (id, stage, day)."""
    return pd.DataFrame({
        "opportunity_id": [r[0] for r in rows],
        "stage": [r[1] for r in rows],
        "entered_at": [DAY0 + pd.Timedelta(days=r[2]) for r in rows],
    })


@pytest.fixture
def small():
    """Four deals whose funnel is worked out by hand in the tests.

    A is won and skipped needs_analysis; B was lost at first_contact; C is open
    in needs_analysis; D was lost at prospecting.
    """
    opps = _opps([
        ("A", "won", 0, 100.0, "R1", 50),
        ("B", "lost", 0, 40.0, "R1", 15),
        ("C", "needs_analysis", 0, 60.0, "R2", None),
        ("D", "lost", 0, 20.0, "R2", 4),
    ])
    hist = _history([
        ("A", "prospecting", 0), ("A", "first_contact", 10), ("A", "proposal", 20),
        ("A", "negotiation", 30), ("A", "contract", 40), ("A", "won", 50),
        ("B", "prospecting", 0), ("B", "first_contact", 5), ("B", "lost", 15),
        ("C", "prospecting", 0), ("C", "first_contact", 3), ("C", "needs_analysis", 10),
        ("D", "prospecting", 0), ("D", "lost", 4),
    ])
    return opps, hist


@pytest.fixture(scope="module")
def demo():
    return {t: datasets.load_demo(t) for t in ("opportunities", "stage_history", "reps", "customers", "targets")}


# -- process -------------------------------------------------------------------

def test_process_default_codes_and_synonyms():
    p = Process()
    assert p.stages == ("prospecting", "first_contact", "needs_analysis", "proposal", "negotiation", "contract")
    assert p.codes(["Prospecting", "first contact", "WON", "order", "after-sales", "lost"]).tolist() == [
        0, 1, 6, 6, 6, 7]


def test_unknown_stage_lists_names_and_mapping_template():
    p = Process()
    with pytest.raises(SalesplanDataError) as err:
        p.codes(pd.Series(["Qualification", "Closed Won", "Qualification", "proposal"]), name="opportunities['stage']")
    text = str(err.value)
    assert "'Qualification' (2 rows)" in text and "'Closed Won' (1 rows)" in text
    assert "with_mapping(" in text and "'Closed Won': 'won'" in text
    mapped = p.with_mapping({"Qualification": "first_contact", "Closed Won": "won"})
    assert mapped.codes(["Qualification", "Closed Won"]).tolist() == [1, 6]


def test_process_rejects_mapping_onto_unknown_stage():
    with pytest.raises(SalesplanError, match="not in the process"):
        Process().with_mapping({"Qualification": "qualify"})


# -- funnel --------------------------------------------------------------------

def test_funnel_by_hand(small):
    opps, hist = small
    f = funnel(opps, hist)
    assert f["stage"].tolist() == list(Process().stages)
    assert f["entered"].tolist() == [4, 3, 2, 1, 1, 1]
    assert f["advanced"].tolist() == [3, 2, 1, 1, 1, 1]
    assert f["lost"].tolist() == [1, 1, 0, 0, 0, 0]
    assert f["open"].tolist() == [0, 0, 1, 0, 0, 0]
    np.testing.assert_allclose(f["conversion"], [3 / 4, 2 / 3, 1, 1, 1, 1])
    # win rate from each stage: of the closed deals that entered it, the share won
    np.testing.assert_allclose(f["win_rate"], [1 / 3, 1 / 2, 1, 1, 1, 1])
    lo, hi = wilson_interval(3, 4, level=95)
    assert f["conversion_lo"].iloc[0] == pytest.approx(float(lo))
    assert f["entered_amount"].iloc[0] == 220.0


def test_wilson_interval_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = wilson_interval(np.array([0, 3, 17]), np.array([5, 10, 40]), level=90)
    ref = [proportion_confint(k, n, alpha=0.1, method="wilson") for k, n in [(0, 5), (3, 10), (17, 40)]]
    np.testing.assert_allclose(lo, [r[0] for r in ref], atol=1e-12)
    np.testing.assert_allclose(hi, [r[1] for r in ref], atol=1e-12)


def test_funnel_by_rep_adds_up_to_total(small):
    opps, hist = small
    f = funnel(opps, hist, by="rep_id")
    total = funnel(opps, hist)
    summed = f.groupby("stage_code")[["entered", "advanced", "lost", "open"]].sum().reset_index(drop=True)
    assert_frame_equal(summed, total[["entered", "advanced", "lost", "open"]])
    r1 = f[f["rep_id"] == "R1"]
    assert r1["entered"].tolist() == [2, 2, 1, 1, 1, 1]


def test_funnel_entry_cohorts_by_month(small):
    opps, hist = small
    f = funnel(opps, hist, period="M")
    # every stage was entered in January 2024 but A's contract (day 40); A's skipped
    # needs_analysis counts as entered on day 20, when it entered proposal
    jan = f[f["period"] == pd.Timestamp("2024-01-01")]
    feb = f[f["period"] == pd.Timestamp("2024-02-01")]
    assert jan["entered"].tolist() == [4, 3, 2, 1, 1]
    assert feb["stage"].tolist() == ["contract"] and feb["entered"].tolist() == [1]


def test_win_rates_by_rep(small):
    opps, hist = small
    w = win_rates(opps, hist, by="rep_id")
    assert w["rep_id"].tolist() == ["R1", "R2"]
    assert w["won"].tolist() == [1, 0] and w["closed"].tolist() == [2, 1]
    assert w["won_amount"].tolist() == [100.0, 0.0]


def test_deal_stages_skipped_stage_has_zero_days(small):
    opps, hist = small
    ds = deal_stages(opps, hist)
    a = ds[ds["opportunity_id"] == "A"].set_index("stage")
    assert a.loc["needs_analysis", "days_in_stage"] == 0
    assert a.loc["first_contact", "days_in_stage"] == 10
    assert a.loc["contract", "days_in_stage"] == 10
    c = ds[ds["opportunity_id"] == "C"].set_index("stage")
    assert c.loc["needs_analysis", "outcome"] == "open"
    assert ds[ds["opportunity_id"] == "B"]["outcome"].tolist() == ["advanced", "lost"]


@st.composite
def _random_deals(draw):
    n = draw(st.integers(1, 25))
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    stages = list(Process().stages)
    opp_rows, hist_rows = [], []
    for i in range(n):
        status = rng.choice(["open", "won", "lost"])
        reached = sorted(rng.choice(6, size=rng.integers(0, 7), replace=False).tolist())
        day = 0
        for s in reached:
            day += int(rng.integers(0, 20))
            hist_rows.append((f"O{i}", stages[s], day))
        if status == "open":
            stage = stages[reached[-1]] if reached else stages[int(rng.integers(0, 6))]
        else:
            stage = status
            day += int(rng.integers(0, 20))
            hist_rows.append((f"O{i}", status, day))
        rep = "R" + str(int(rng.integers(0, 3)))
        opp_rows.append((f"O{i}", stage, 0, float(rng.integers(1, 100)), rep, day if status != "open" else None))
    return _opps(opp_rows), _history(hist_rows) if hist_rows else None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_random_deals())
def test_funnel_counts_never_increase_down_the_stages(deals):
    opps, hist = deals
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        for f in (funnel(opps, hist), funnel(opps, hist, by="rep_id"), funnel(opps, hist, period="M", cohort="created")):
            keys = [c for c in ("rep_id", "period") if c in f.columns]
            groups = f.groupby(keys) if keys else [(None, f)]
            for _, g in groups:
                assert (np.diff(g["entered"].to_numpy()) <= 0).all()
                assert ((g["advanced"] + g["lost"] + g["open"]) == g["entered"]).all()
                assert ((g["conversion"].dropna() >= 0) & (g["conversion"].dropna() <= 1)).all()


def test_funnel_demo_by_team_and_segment(demo):
    f = funnel(demo["opportunities"], demo["stage_history"], by=["team", "segment"],
               reps=demo["reps"], customers=demo["customers"])
    total = funnel(demo["opportunities"], demo["stage_history"])
    assert f.groupby("stage_code")["entered"].sum().tolist() == total["entered"].tolist()
    assert total["entered"].iloc[0] == len(demo["opportunities"])
    assert total["won"].iloc[0] == int((demo["opportunities"]["status"] == "won").sum())


def test_funnel_unknown_by_column_says_what_to_join(small):
    opps, hist = small
    with pytest.raises(SalesplanDataError, match="reps="):
        funnel(opps, hist, by="team")


def test_funnel_does_not_mutate_inputs(small):
    opps, hist = small
    before = opps.copy(), hist.copy()
    funnel(opps, hist, by="rep_id", period="M")
    assert_frame_equal(opps, before[0])
    assert_frame_equal(hist, before[1])


# -- durations -----------------------------------------------------------------

def test_kaplan_meier_by_hand_and_against_statsmodels(rng):
    from statsmodels.duration.survfunc import SurvfuncRight

    km = kaplan_meier([2, 3, 3, 5, 8], [1, 1, 0, 1, 0])
    # S = 4/5, then 4/5 * 3/4, then * 1/2 (two at risk at day 5)
    np.testing.assert_allclose(km["survival"], [0.8, 0.6, 0.3, 0.3])
    assert km_median([2, 3, 3, 5, 8], [1, 1, 0, 1, 0]) == 5
    t = rng.integers(1, 40, 300).astype(float)
    e = rng.random(300) < 0.6
    ref = SurvfuncRight(t, e)
    ours = kaplan_meier(t, e)
    np.testing.assert_allclose(ours["survival"], ref.surv_prob, atol=1e-12)
    np.testing.assert_allclose(ours.loc[ours["events"] > 0, "survival"].to_numpy() ** 0,
                               1)  # every event time is a row
    assert km_median(t, e) == ref.quantile(0.5)


def test_grouped_kaplan_meier_whole_days_grid_equals_the_sorted_path(rng):
    from salesplan.pipeline.durations import _grouped_km

    g = rng.integers(0, 7, 3000)
    t = rng.integers(0, 60, 3000).astype(float)
    e = rng.random(3000) < 0.7
    at = rng.integers(0, 70, 8).astype(float)
    grid = _grouped_km(g, t, e, 8, quantiles=(0.25, 0.5, 0.75), at=at)      # whole days: counting grid
    shifted = _grouped_km(g, t + 0.5, e, 8, quantiles=(0.25, 0.5, 0.75), at=at + 0.5)  # sorted path
    for key in (0.25, 0.5, 0.75, "median_lo", "median_hi"):
        np.testing.assert_allclose(shifted[key], grid[key] + 0.5)
    np.testing.assert_allclose(shifted["at"], grid["at"])
    assert grid["n"].tolist() == np.bincount(g, minlength=8).tolist()


def _censored_deals():
    """Closed after 2, 3 and 5 days; two open deals, 3 and 8 days old on day 8.

    Kaplan-Meier: S(2) = 4/5, S(3) = 3/5, S(5) = 3/5 * 1/2 = 0.3 -> median 5 days,
    while the plain mean of the closed deals is 10/3 days.
    """
    opps = _opps([
        ("a", "won", 0, 10.0, "R1", 2),
        ("b", "lost", 0, 10.0, "R1", 3),
        ("c", "proposal", 5, 10.0, "R1", None),
        ("d", "won", 0, 10.0, "R2", 5),
        ("e", "proposal", 0, 10.0, "R2", None),
    ])
    return opps


def test_cycle_length_kaplan_meier_median_with_censored_deals():
    opps = _censored_deals()
    with pytest.warns(SalesplanDataWarning):  # no history given: counted fallback
        prepared = prepare(opps, _history([("a", "prospecting", 0)]), as_of=DAY0 + pd.Timedelta(days=8))
    c = cycle_length(prepared)
    assert c[["deals", "closed", "open"]].iloc[0].tolist() == [5, 3, 2]
    assert c["median_days"].iloc[0] == 5
    assert c["mean_days_closed"].iloc[0] == pytest.approx(10 / 3)
    s = cycle_survival(prepared)
    np.testing.assert_allclose(s.loc[s["events"] > 0, "survival"], [0.8, 0.6, 0.3])


def test_grouped_medians_equal_one_group_at_a_time(demo):
    o, h, r = demo["opportunities"], demo["stage_history"], demo["reps"]
    by_rep = cycle_length(o, h, by="rep_id")
    d = prepare(o, h)
    t, closed = d.cycle()
    for rep in ["R01", "R07", "R19"]:
        m = (o["rep_id"] == rep).to_numpy()
        assert by_rep.loc[by_rep["rep_id"] == rep, "median_days"].iloc[0] == km_median(t[m], closed[m])
    sd = stage_durations(o, h, by="team", reps=r)
    ds = deal_stages(o, h).merge(o[["opportunity_id", "rep_id"]], on="opportunity_id")
    ds = ds.merge(r[["rep_id", "team"]], on="rep_id")
    one = ds[(ds["team"] == "South Team") & (ds["stage"] == "proposal")]
    expect = km_median(one["days_in_stage"], one["outcome"] != "open")
    got = sd[(sd["team"] == "South Team") & (sd["stage"] == "proposal")]["median_days"].iloc[0]
    assert got == expect


def test_stage_durations_by_hand(small):
    opps, hist = small
    sd = stage_durations(opps, hist, as_of=DAY0 + pd.Timedelta(days=60)).set_index("stage")
    # prospecting: A 10, B 5, C 3, D 4 (lost there) -> all left; median of 3, 4, 5, 10 is 4
    assert sd.loc["prospecting", ["deals", "left", "still_in"]].tolist() == [4, 4, 0]
    assert sd.loc["prospecting", "median_days"] == 4
    assert sd.loc["prospecting", "mean_days_closed"] == pytest.approx(22 / 4)
    # needs_analysis: A skipped it (0 days), C still in since day 10 (50 days, censored)
    assert sd.loc["needs_analysis", ["deals", "left", "still_in"]].tolist() == [2, 1, 1]
    assert sd.loc["needs_analysis", "over_service_share"] == pytest.approx(0.5)


def test_stage_durations_with_times_of_day_equal_one_stage_at_a_time(small):
    opps, hist = small
    hist = hist.copy()
    hist.loc[hist["opportunity_id"] == "B", "entered_at"] += pd.Timedelta(hours=12)   # not whole days
    as_of = DAY0 + pd.Timedelta(days=60)
    sd = stage_durations(opps, hist, as_of=as_of).set_index("stage")
    ds = deal_stages(opps, hist, as_of=as_of)
    for stage in ("prospecting", "first_contact", "needs_analysis"):
        one = ds[ds["stage"] == stage]
        assert sd.loc[stage, "median_days"] == km_median(one["days_in_stage"], one["outcome"] != "open")
    assert sd.loc["prospecting", "median_days"] == 4     # 3, 4, 5.5, 10


def test_aging_lists_stuck_open_deals(small):
    opps, hist = small
    a = aging(opps, hist, as_of=DAY0 + pd.Timedelta(days=40))
    # C entered needs_analysis on day 10: 30 days in, service level 21 -> 9 days over
    assert a["opportunity_id"].tolist() == ["C"]
    assert a[["stage", "days_in_stage", "service_days", "days_over", "amount", "rep_id"]].iloc[0].tolist() == [
        "needs_analysis", 30.0, 21.0, 9.0, 60.0, "R2"]
    assert aging(opps, hist, as_of=DAY0 + pd.Timedelta(days=20)).empty
    fast = Process().with_service_days({"needs_analysis": 5})
    assert aging(opps, hist, process=fast, as_of=DAY0 + pd.Timedelta(days=20))["days_over"].tolist() == [5.0]


# -- velocity ------------------------------------------------------------------

def test_velocity_by_hand_and_its_decomposition():
    """Q1: 2 open at the end, 1 of 2 closed won, 100 average, 10 days -> 2 * 0.5 * 100 / 10 = 10.
    Q2: 2 open, 1 of 1 won, 300 average, 20 days -> 2 * 1 * 300 / 20 = 30.
    From Q1 to Q2 the win rate doubled and the cycle doubled (they cancel); the
    deal size tripled and explains the whole change of 20.
    """
    opps = _opps([
        ("a", "won", 0, 100.0, "R1", 10),
        ("b", "lost", 0, 50.0, "R1", 31),
        ("c", "proposal", 0, 70.0, "R1", None),
        ("d", "proposal", 60, 80.0, "R1", None),
        ("e", "won", 91, 300.0, "R1", 111),
    ])
    hist = _history([(i, "prospecting", day) for i, day in zip("abcde", [0, 0, 0, 60, 91])])
    v = velocity(opps, hist, period="Q", as_of="2024-06-30")
    assert v["period"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-04-01")]
    assert v["open_deals"].tolist() == [2, 2]
    np.testing.assert_allclose(v["win_rate"], [0.5, 1.0])
    np.testing.assert_allclose(v["average_won"], [100, 300])
    np.testing.assert_allclose(v["cycle_days"], [10, 20])
    np.testing.assert_allclose(v["velocity"], [10, 30])
    q2 = v.iloc[1]
    assert q2["change"] == pytest.approx(20)
    assert q2["average_won_effect"] == pytest.approx(20)
    assert q2["open_deals_effect"] == pytest.approx(0)
    assert q2["win_rate_effect"] == pytest.approx(-q2["cycle_days_effect"])
    assert q2["win_rate_effect"] == pytest.approx(20 * np.log(2) / np.log(3))
    # log-change shares: ln 2 / ln 3 for the win rate, -ln 2 / ln 3 for the cycle, 1 for the deal size
    assert q2["win_rate_share"] == pytest.approx(np.log(2) / np.log(3))
    assert q2["average_won_share"] == pytest.approx(1.0)
    assert q2[[c for c in v.columns if c.endswith("_share")]].sum() == pytest.approx(1.0)


def test_velocity_effects_add_up_to_the_change(demo):
    v = velocity(demo["opportunities"], demo["stage_history"], by="team", reps=demo["reps"], period="Q")
    effects = v[[c for c in v.columns if c.endswith("_effect")]]
    ok = effects.notna().all(axis=1)
    assert ok.sum() > 40
    np.testing.assert_allclose(effects[ok].sum(axis=1), v.loc[ok, "change"], rtol=1e-9, atol=1e-6)
    t = velocity_trend(v, by="team", last=4)
    assert len(t) == 5 and (t["periods"] == 4).all()


# -- win probabilities ---------------------------------------------------------

@pytest.fixture(scope="module")
def win_model(demo):
    return WinModel().fit(demo["opportunities"], demo["stage_history"], reps=demo["reps"],
                          customers=demo["customers"])


def test_win_model_beats_the_stage_average_on_a_time_holdout(win_model):
    s = win_model.summary().set_index("model")
    assert s.loc["model", "holdout_snapshots"] > 300
    assert s.loc["model", "brier"] < s.loc["stage average", "brier"]
    assert s.loc["model", "brier_skill"] > 0
    h = win_model.holdout_
    assert (h["snapshot"] >= win_model.cutoff_).all()
    assert s.loc["model", "brier"] == pytest.approx(brier_score(h["won"], h["probability"]))
    rel = win_model.reliability()
    assert rel.groupby("model")["deals"].sum().tolist() == [len(h), len(h)]


def test_win_model_trains_only_on_outcomes_known_before_the_cutoff(demo):
    m = WinModel(refit=False).fit(demo["opportunities"], demo["stage_history"], reps=demo["reps"],
                                  customers=demo["customers"])
    snaps = snapshots(demo["opportunities"], demo["stage_history"], reps=demo["reps"], customers=demo["customers"])
    known = snaps["won"].notna() & (snaps["snapshot"] < m.cutoff_) & (snaps["closed_at"] < m.cutoff_)
    assert m.n_train_ == int(known.sum())


def test_win_model_predicts_every_open_deal(win_model, demo):
    p = win_model.predict(demo["opportunities"], demo["stage_history"])
    assert len(p) == int((demo["opportunities"]["status"] == "open").sum())
    assert p["win_probability"].between(0, 1).all()
    np.testing.assert_allclose(p["expected_value"], p["win_probability"] * p["amount"])
    # a stage-average CRM gives later stages a higher probability
    b = win_model.baseline_.set_index("stage")["win_probability"]
    assert b["contract"] > b["prospecting"]


def test_reliability_table_by_hand():
    t = reliability_table([0, 1, 1, 0, 1], [0.05, 0.15, 0.12, 0.95, 0.99], bins=10)
    assert t["deals"].tolist() == [1, 2, 2]
    np.testing.assert_allclose(t["win_rate"], [0, 1, 0.5])
    np.testing.assert_allclose(t["mean_probability"], [0.05, 0.135, 0.97])


# -- pipeline forecast ---------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1e6), st.sampled_from(["R1", "R2", "R3"])),
             min_size=0, max_size=30),
    st.floats(0, 1), st.floats(0, 1),
)
def test_forecast_categories_add_up_to_the_pipeline(deals, a, b):
    commit, best = max(a, b), min(a, b)
    probs = pd.DataFrame(deals, columns=["win_probability", "amount", "rep_id"])
    cats = forecast_categories(probs, commit=commit, best_case=best)
    assert cats["category"].tolist() == ["commit", "best_case", "pipeline"]
    assert cats["amount"].sum() == pytest.approx(probs["amount"].sum(), rel=1e-12, abs=1e-6)
    assert cats["deals"].sum() == len(probs)
    assert cats["cumulative_amount"].iloc[-1] == pytest.approx(probs["amount"].sum(), rel=1e-12, abs=1e-6)
    by_rep = forecast_categories(probs, by="rep_id", commit=commit, best_case=best)
    assert by_rep["amount"].sum() == pytest.approx(probs["amount"].sum(), rel=1e-12, abs=1e-6)


def _forecast_case():
    """Two open deals expected to close in March 2024 (as_of 2024-02-10), one won in February."""
    opps = _opps([
        ("x", "proposal", 0, 400.0, "R1", 70),    # close_date = expected close, 2024-03-11
        ("y", "proposal", 0, 1000.0, "R1", 75),
        ("w", "won", 0, 200.0, "R1", 35),         # won on 2024-02-05
    ])
    opps["close_date"] = pd.to_datetime(["2024-03-11", "2024-03-16", "2024-02-05"])
    hist = _history([("x", "proposal", 0), ("y", "proposal", 0), ("w", "prospecting", 0), ("w", "won", 35)])
    probs = pd.DataFrame({"opportunity_id": ["x", "y"], "win_probability": [1.0, 0.0]})
    slip = pd.DataFrame({"basis": ["expected_close"], "stage": ["(all)"], "months": [0], "probability": [1.0]})
    return opps, hist, probs, slip


def test_pipeline_forecast_by_hand():
    opps, hist, probs, slip = _forecast_case()
    f = pipeline_forecast(opps, hist, probabilities=probs, slip=slip, horizon=3, n_sims=200,
                          as_of="2024-02-10")
    assert f["month"].dt.strftime("%Y-%m").tolist() == ["2024-02", "2024-03", "2024-04"]
    assert f["deals"].tolist() == [0, 2, 0]
    assert f["pipeline_amount"].tolist() == [0.0, 1400.0, 0.0]
    assert f["expected"].tolist() == [0.0, 400.0, 0.0]
    assert f["forecast-lo-95"].tolist() == [0.0, 400.0, 0.0]
    assert f["forecast-hi-95"].tolist() == [0.0, 400.0, 0.0]
    # a slip of one month for half the deals moves half the expected value on
    slip2 = pd.DataFrame({"basis": "expected_close", "stage": "(all)", "months": [0, 1], "probability": [0.5, 0.5]})
    f2 = pipeline_forecast(opps, hist, probabilities=probs, slip=slip2, horizon=3, n_sims=4000, as_of="2024-02-10")
    assert f2["expected"].tolist() == [0.0, 200.0, 200.0]
    sims_mean = f2[["forecast-lo-80", "forecast-hi-80"]]
    assert sims_mean.iloc[1].tolist() == [0.0, 400.0]


def test_target_coverage_by_hand():
    opps, hist, probs, slip = _forecast_case()
    targets = pd.DataFrame({"period": pd.to_datetime(["2024-02-01", "2024-03-01"]), "level": "rep",
                            "key": "R1", "metric": "revenue", "value": [500.0, 1000.0]})
    c = target_coverage(opps, hist, targets=targets, by="rep_id", probabilities=probs, slip=slip, horizon=3,
                        as_of="2024-02-10")
    feb, mar = c.iloc[0], c.iloc[1]
    assert feb[["target", "won_to_date", "remaining"]].tolist() == [500.0, 200.0, 300.0]
    assert feb["hit_probability"] == 0.0
    assert mar[["remaining", "pipeline_amount", "expected"]].tolist() == [1000.0, 1400.0, 400.0]
    assert mar["coverage"] == pytest.approx(1.4) and mar["expected_coverage"] == pytest.approx(0.4)
    assert mar["hit_probability"] == 0.0


def test_pipeline_forecast_simulation_agrees_with_expected_value(win_model, demo):
    o, h = demo["opportunities"], demo["stage_history"]
    probs = win_model.predict(o, h)
    f = pipeline_forecast(o, h, probabilities=probs, horizon=24, n_sims=3000, seed=1)
    # every simulated month-sum stays within the horizon, so totals match the probabilities
    assert f["expected"].sum() == pytest.approx((probs["win_probability"] * probs["amount"]).sum(), rel=1e-9)
    assert ((f["forecast-lo-80"] <= f["expected"] + 1e-9) | (f["expected"] == 0)).all()
    assert (f["forecast-lo-95"] <= f["forecast-lo-80"]).all() and (f["forecast-hi-80"] <= f["forecast-hi-95"]).all()
    slip = learn_slip(o, h)
    assert slip["basis"].eq("time_to_close").all()
    np.testing.assert_allclose(slip.groupby("stage")["probability"].sum(), 1.0)


# -- bottlenecks ---------------------------------------------------------------

def test_two_proportion_test_matches_statsmodels_and_fisher():
    from scipy.stats import fisher_exact
    from statsmodels.stats.proportion import proportions_ztest

    name, p = two_proportion_test(30, 100, 45, 100)
    assert name == "two-proportion z-test"
    assert p == pytest.approx(proportions_ztest([30, 45], [100, 100])[1])
    name, p = two_proportion_test(1, 8, 7, 9)
    assert name == "Fisher exact test"
    assert p == pytest.approx(fisher_exact([[1, 7], [7, 2]]).pvalue)


def _team_deals(loss_at_proposal: dict[str, int], n: int = 40):
    """Each rep has n deals that reach proposal on day 10; some are lost there on day 20, the rest won on day 30."""
    opp_rows, hist_rows = [], []
    for rep, lost in loss_at_proposal.items():
        for i in range(n):
            oid = f"{rep}-{i}"
            is_lost = i < lost
            opp_rows.append((oid, "lost" if is_lost else "won", 0, 1000.0, rep, 20 if is_lost else 30))
            hist_rows += [(oid, "prospecting", 0), (oid, "proposal", 10)]
            if not is_lost:
                hist_rows += [(oid, "contract", 25)]
            hist_rows.append((oid, "lost" if is_lost else "won", 20 if is_lost else 30))
    return _opps(opp_rows), _history(hist_rows)


def test_bottleneck_finds_the_rep_who_loses_at_proposal():
    opps, hist = _team_deals({"R1": 24, "R2": 4, "R3": 5, "R4": 4})
    b = bottlenecks(opps, hist, by="rep_id")
    conv = b[b["metric"] == "conversion"]
    assert conv["rep_id"].tolist() == ["R1"] and conv["stage"].tolist() == ["proposal"]
    row = conv.iloc[0]
    assert row["unit_value"] == pytest.approx(16 / 40) and row["rest_value"] == pytest.approx(107 / 120)
    assert row["effect"] == pytest.approx(16 / 40 - 107 / 120)
    # deals R1 would have moved on at the rest's rate, all of them won at 1,000, over the 30 days
    # of data (annualised from at least one month)
    years = max(30 / 365.25, 1 / 12)
    assert row["revenue_at_stake"] == pytest.approx((107 / 120 - 16 / 40) * 40 * 1.0 * 1000 / years)
    assert row["sentence"].startswith("Deals of R1 move on from proposal in 40% of cases against 89% for the rest")
    assert row["p_adjusted"] <= 0.05


def test_no_bottleneck_when_reps_are_alike():
    opps, hist = _team_deals({"R1": 5, "R2": 4, "R3": 5, "R4": 4})
    assert bottlenecks(opps, hist, by="rep_id").empty
    everything = bottlenecks(opps, hist, by="rep_id", only_significant=False)
    assert len(everything) > 0 and not everything["significant"].any()
    assert everything["p_adjusted"].ge(everything["p_value"] - 1e-12).all()


def test_bottlenecks_on_demo_speak_plain_words(demo):
    b = bottlenecks(demo["opportunities"], demo["stage_history"], by="segment", customers=demo["customers"])
    assert len(b) > 0 and b["significant"].all()
    assert b["test"].isin(["two-proportion z-test", "Fisher exact test", "log-rank test"]).all()
    assert b["sentence"].str.contains("Benjamini-Hochberg").all()
    assert (b["revenue_at_stake"] >= 0).all()


# -- bad input -----------------------------------------------------------------

def test_unknown_stage_in_history_raises_with_mapping(small):
    opps, hist = small
    hist = hist.copy()
    hist.loc[3, "stage"] = "Negotiation/Review"
    with pytest.raises(SalesplanDataError, match=r"stage_history\['stage'\].*'Negotiation/Review' \(1 rows\)"):
        funnel(opps, hist)


def test_close_before_creation_is_counted_and_left_out_of_durations(small):
    opps, hist = small
    opps = opps.copy()
    opps.loc[1, "close_date"] = DAY0 - pd.Timedelta(days=5)   # B lost before it was created
    with pytest.warns(SalesplanDataWarning, match="1 opportunit.*close date before their creation date, at row 1"):
        c = cycle_length(opps, hist)
    assert c["deals"].iloc[0] == 3                              # B left out of the cycle length
    with pytest.warns(SalesplanDataWarning):
        f = funnel(opps, hist)
    assert f["entered"].iloc[0] == 4                            # but still in the funnel


def test_close_before_the_last_stage_entry_is_counted_and_raised(small):
    opps, hist = small
    opps = opps.copy()
    opps.loc[0, "close_date"] = DAY0 + pd.Timedelta(days=35)   # A won on day 35 but entered contract on day 40
    with pytest.warns(SalesplanDataWarning, match="1 closed deal.*before they entered their last recorded stage"):
        ds = deal_stages(opps, hist)
    assert ds.loc[(ds["opportunity_id"] == "A") & (ds["stage"] == "contract"), "days_in_stage"].iloc[0] == 0


def test_negative_amount_is_an_error_and_missing_amount_is_counted(small):
    opps, hist = small
    bad = opps.copy()
    bad.loc[2, "amount"] = -60.0
    with pytest.raises(SalesplanDataError, match=r"negative in 1 row\(s\), at row 2: \[-60.0\]"):
        funnel(bad, hist)
    gap = opps.copy()
    gap.loc[[0, 3], "amount"] = np.nan
    with pytest.warns(SalesplanDataWarning, match="missing in 2 row"):
        f = funnel(gap, hist)
    assert f["entered"].iloc[0] == 4 and f["entered_amount"].iloc[0] == 100.0


def test_deals_without_owner_are_counted_and_shown(small):
    opps, hist = small
    opps = opps.copy()
    opps["rep_id"] = pd.Series(["R1", None, " ", "R2"], dtype="string")
    with pytest.warns(SalesplanDataWarning, match="2 opportunit.*no owner"):
        f = funnel(opps, hist, by="rep_id")
    assert set(f["rep_id"]) == {"R1", "R2", "(no owner)"}
    assert f.loc[f["rep_id"] == "(no owner)", "entered"].iloc[0] == 2


def test_repeated_and_out_of_order_history_is_counted_and_repaired(small):
    opps, hist = small
    dup = pd.concat([hist, hist.iloc[[0, 1]]], ignore_index=True)
    with pytest.warns(SalesplanDataWarning, match="2 entr.*already entered"):
        f = funnel(opps, dup)
    assert f["entered"].tolist() == [4, 3, 2, 1, 1, 1]
    swapped = hist.copy()
    swapped.loc[swapped["opportunity_id"].eq("A") & swapped["stage"].eq("first_contact"), "entered_at"] = (
        DAY0 + pd.Timedelta(days=25))                           # after A entered proposal on day 20
    with pytest.warns(SalesplanDataWarning, match="1 deal.*out of order"):
        ds = deal_stages(opps, swapped)
    a = ds[ds["opportunity_id"] == "A"]
    assert a["entered_at"].is_monotonic_increasing
    assert (a["days_in_stage"] >= 0).all()


def test_deal_without_history_falls_back_to_its_current_stage(small):
    opps, hist = small
    extra = _opps([("E", "negotiation", 5, 30.0, "R1", None), ("F", "lost", 5, 10.0, "R1", 9)])
    both = pd.concat([opps, extra], ignore_index=True)
    with pytest.warns(SalesplanDataWarning, match="2 opportunit.*no stage history.*falls back"):
        d = prepare(both, hist)
    assert d.counts["no_history"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        f = funnel(both, hist)
        sd = stage_durations(both, hist)
    # E passed prospecting .. proposal and is open in negotiation; F was lost at the first stage
    assert f["entered"].tolist() == [6, 4, 3, 2, 2, 1]
    assert f.loc[f["stage"] == "negotiation", "open"].iloc[0] == 1
    assert f["lost"].iloc[0] == 2
    assert sd["deals"].iloc[0] == 4                             # no durations from E and F


def test_history_of_unknown_deals_and_duplicate_ids(small):
    opps, hist = small
    stray = pd.concat([hist, _history([("Z", "prospecting", 1)])], ignore_index=True)
    with pytest.warns(SalesplanDataWarning, match="1 entr.*not in opportunities"):
        funnel(opps, stray)
    twice = pd.concat([opps, opps.iloc[[0]]], ignore_index=True)
    with pytest.raises(SalesplanDataError, match="repeats 1 id"):
        funnel(twice, hist)
    wrong = opps.assign(status=["won", "lost", "pending", "lost"])
    with pytest.raises(SalesplanDataError, match="'pending'"):
        funnel(wrong, hist)


# -- a real export: Salesforce Opportunity and OpportunityHistory --------------

SF_COLUMNS = {"Id": "opportunity_id", "AccountId": "customer_id", "OwnerId": "rep_id", "Amount": "amount",
              "CreatedDate": "created_date", "StageName": "stage", "CloseDate": "close_date"}
SF_HISTORY = {"OpportunityId": "opportunity_id", "StageName": "stage", "CreatedDate": "entered_at",
              "CloseDate": "close_date"}


def test_salesforce_export_with_a_stage_mapping(shared_data):
    folder = shared_data / "exports" / "sf_demo_opportunity"
    raw = pd.read_csv(folder / "Opportunity.csv", parse_dates=["CreatedDate", "CloseDate"])
    raw_h = pd.read_csv(folder / "OpportunityHistory.csv", parse_dates=["CreatedDate", "CloseDate"])
    opps = raw[list(SF_COLUMNS)].rename(columns=SF_COLUMNS)
    hist = raw_h[list(SF_HISTORY)].rename(columns=SF_HISTORY)
    with pytest.raises(SalesplanDataError, match="'Closed Won' \\(18 rows\\)") as err:
        funnel(opps, hist)
    # the suggested mapping, pasted, is enough to get the funnel
    suggested = Process().mapping_template(
        ["Qualification", "Value Proposition", "Id. Decision Makers", "Perception Analysis",
         "Proposal/Price Quote", "Negotiation/Review", "Closed Won"])
    assert str(suggested["Closed Won"]) in str(err.value)
    process = Process().with_mapping(suggested)
    with pytest.warns(SalesplanDataWarning) as caught:
        d = prepare(opps, hist, process=process)
    text = " ".join(str(w.message) for w in caught)
    # every history row is there twice; all records were created on 2018-10-13, after 30 close dates
    assert "31 entr" in text and "30 opportunit" in text
    f = funnel(d)
    assert f["entered"].iloc[0] == 31 and f["won"].iloc[0] == 18
    assert f["entered_amount"].iloc[0] == 5_760_000
    assert (np.diff(f["entered"]) <= 0).all()
    c = cycle_length(d)
    assert c["deals"].iloc[0] == 13 and c["closed"].iloc[0] == 0   # only the open deals have usable dates
    # no deal was ever lost and every record shares one timestamp: nothing to learn a win model from
    with pytest.raises(SalesplanDataError, match="both won and lost"):
        WinModel().fit(d)
    f = pipeline_forecast(d, horizon=3, n_sims=200)
    assert f["deals"].sum() == 13
