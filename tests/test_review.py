"""Tests of salesplan.review: exact variance bridges, ranked problems, accuracy history, after-sales."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesplan import review as rv
from salesplan.errors import SalesplanError

EFFECTS = ["price_effect", "volume_effect", "mix_effect", "new_effect", "lost_effect", "other_effect"]


def _tx(rows):
    """rows: (date, region, product, quantity, unit price)."""
    df = pd.DataFrame(rows, columns=["order_date", "region", "product_id", "quantity", "unit_price"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    df["revenue"] = df["quantity"] * df["unit_price"]
    df["customer_id"] = "c" + df.index.astype(str)
    return df


def _targets(values, period="2025-07-01", level="region"):
    return pd.DataFrame([{"period": pd.Timestamp(period), "level": level, "key": k, "metric": "revenue", "value": v}
                         for k, v in values.items()])


def test_review_window_forms():
    assert rv.review_window("2025-Q3").label == "2025-Q3"
    m = rv.review_window("2025-07")
    assert (m.start, m.end, m.next().label) == (pd.Timestamp("2025-07-01"), pd.Timestamp("2025-07-31"), "2025-08")
    y = rv.review_window("2025")
    assert (y.start, y.end, y.months) == (pd.Timestamp("2025-01-01"), pd.Timestamp("2025-12-31"), 12)
    free = rv.review_window(("2025-07-01", "2025-07-10"))
    assert free.next().start == pd.Timestamp("2025-07-11") and free.next().end == pd.Timestamp("2025-07-20")
    assert rv.review_window("2025-Q4").next().label == "2026-Q1"
    with pytest.raises(SalesplanError, match="'2025-Q3'"):
        rv.review_window("last summer")


def test_price_only_shortfall_by_hand():
    # reference Q3 2024: A 10 x 100, B 10 x 50 -> 1,500. Plan Q3 2025 = 1,500 (same lines).
    # actual Q3 2025: A 10 x 90, B 10 x 50 -> 1,400. The whole gap is A's price: 10 x (90 - 100) = -100.
    tx = _tx([("2024-08-01", "East", "A", 10, 100.0), ("2024-08-01", "East", "B", 10, 50.0),
              ("2025-08-01", "East", "A", 10, 90.0), ("2025-08-01", "East", "B", 10, 50.0)])
    pva = rv.plan_vs_actual(tx, _targets({"East": 1500.0}), period="2025-Q3")
    row = pva.iloc[0]
    assert (row["plan"], row["actual"], row["variance"]) == (1500.0, 1400.0, -100.0)
    assert row["price_effect"] == pytest.approx(-100.0)
    assert row[["volume_effect", "mix_effect", "new_effect", "lost_effect", "other_effect"]].abs().max() < 1e-9


def test_volume_and_mix_by_hand():
    # plan 3,000 = twice the reference (A 20 x 100, B 20 x 50). Actual: A 10 x 100, B 30 x 50 = 2,500.
    # Same 40 units (volume 0); mix: A 40 x (1/4 - 1/2) x 100 = -1,000, B 40 x (3/4 - 1/2) x 50 = +500.
    tx = _tx([("2024-07-05", "East", "A", 10, 100.0), ("2024-07-05", "East", "B", 10, 50.0),
              ("2025-07-05", "East", "A", 10, 100.0), ("2025-07-05", "East", "B", 30, 50.0)])
    d = rv.variance_detail(tx, _targets({"East": 3000.0}), period="2025-Q3").set_index("item")
    assert d.loc["A", "quantity_plan"] == 20.0 and d.loc["A", "price_plan"] == 100.0
    assert d["volume_effect"].abs().max() < 1e-9
    assert d.loc["A", "mix_effect"] == pytest.approx(-1000.0)
    assert d.loc["B", "mix_effect"] == pytest.approx(500.0)
    assert d["variance"].sum() == pytest.approx(-500.0)


def test_unit_with_no_sales_loses_everything_and_new_items_count():
    tx = _tx([("2024-07-05", "East", "A", 10, 100.0), ("2024-07-05", "West", "A", 10, 100.0),
              ("2025-07-05", "West", "C", 5, 100.0)])
    pva = rv.plan_vs_actual(tx, _targets({"East": 1000.0, "West": 1000.0}), period="2025-Q3").set_index("key")
    assert pva.loc["East", "lost_effect"] == -1000.0 and pva.loc["East", "actual"] == 0.0
    assert pva.loc["West", "new_effect"] == 500.0 and pva.loc["West", "lost_effect"] == -1000.0
    for key in ("East", "West"):
        assert pva.loc[key, EFFECTS].sum() == pytest.approx(pva.loc[key, "variance"])


lines = st.lists(
    st.tuples(st.sampled_from(["2024-07-15", "2025-07-15", "2025-09-01"]), st.sampled_from(["East", "West"]),
              st.sampled_from(["A", "B", "C"]), st.integers(-3, 40), st.floats(1, 500, allow_nan=False)),
    min_size=1, max_size=25)


# Targets of 0 or at least 1 (a target of 1e-300 makes the planned quantities underflow)
targets_st = st.one_of(st.just(0.0), st.floats(1, 1e5))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=lines, east=targets_st, west=targets_st)
def test_variance_parts_add_up_exactly(rows, east, west):
    # reference sales to plan with (the generated lines may be returns only)
    rows = rows + [("2024-07-01", "East", "A", 100, 10.0), ("2024-07-01", "West", "B", 100, 10.0)]
    tx = _tx(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = rv.variance_detail(tx, _targets({"East": east, "West": west}), period="2025-Q3")
        pva = rv.plan_vs_actual(tx, _targets({"East": east, "West": west}), period="2025-Q3")
    scale = max(1.0, east, west, tx["revenue"].abs().sum())
    np.testing.assert_allclose(d[EFFECTS].sum(axis=1), d["variance"], atol=1e-9 * scale)
    np.testing.assert_allclose(pva[EFFECTS].sum(axis=1), pva["variance"], atol=1e-9 * scale)
    now = tx[tx["order_date"] >= "2025-07-01"]
    actual = now.groupby("region")["revenue"].sum()
    got = pva.set_index("key")
    for key, plan in (("East", east), ("West", west)):
        assert got.loc[key, "plan"] == pytest.approx(plan, abs=1e-9 * scale)
        assert got.loc[key, "actual"] == pytest.approx(actual.get(key, 0.0), abs=1e-9 * scale)


# --------------------------------------------------------------------------- problems


def _problem_case():
    """East missed by cutting P1's price 20 %; West sold 5 % fewer units. East's price is the top cause."""
    rows = []
    for year, p1_price, west_units in ((2024, 100.0, 100), (2025, 80.0, 95)):
        rows += [(f"{year}-08-01", "East", "P1", 100, p1_price), (f"{year}-08-01", "East", "P2", 100, 50.0),
                 (f"{year}-08-01", "West", "P1", west_units, 100.0)]
    return _tx(rows), _targets({"East": 15000.0, "West": 10000.0})


def test_problem_list_finds_the_known_top_cause():
    tx, targets = _problem_case()
    # next quarter simulated for East: reaching 13,000 + 2,000 = 15,000 in 3 of 4 paths
    samples = pd.DataFrame({"unique_id": "East", "ds": pd.Timestamp("2025-11-01"), "sample": [0, 1, 2, 3],
                            "y": [14000.0, 15000.0, 16000.0, 17000.0]})
    reps = pd.DataFrame({"rep_id": ["M1", "E1", "E2", "W1"], "region": ["East", "East", "East", "West"],
                         "manager": [None, "M1", "M1", "M1"]})
    pl = rv.problem_list(rv.ReviewInputs(tx, targets, "2025-Q3", samples=samples, reps=reps))
    top = pl.iloc[0]
    assert top["owner"] == "M1"
    assert (top["rank"], top["key"], top["driver"], top["item"]) == (1, "East", "price", "P1")
    assert top["impact"] == pytest.approx(-2000.0)   # 100 units x (80 - 100)
    assert top["probability"] == 0.75
    assert top["action"] == ("Raise the average price of P1 in East from 80.00 to 100.00 by the end of 2025-Q4 "
                             "(2025-12-31): +2,000 expected, 75% likely")
    assert "missed its 2025-Q3 target by 2,000 (87% of plan)" in top["problem"]
    second = pl.iloc[1]
    assert (second["key"], second["driver"], second["impact"]) == ("West", "volume", pytest.approx(-500.0))
    assert "95 units against 100 planned (-5.0%)" in second["problem"]
    assert np.isnan(second["probability"])  # no sample paths for West
    assert list(pl.columns) == ["rank", *rv.PROBLEM_COLUMNS]


def test_more_problem_sources_plug_in():
    tx, targets = _problem_case()

    def pipeline(inputs):
        return pd.DataFrame([{"source": "pipeline", "level": "region", "key": "West", "driver": "conversion",
                              "item": "needs_analysis->proposal", "impact": -9000.0,
                              "problem": "Conversion fell.", "action": "Raise conversion ..."}])

    pl = rv.problem_list(rv.ReviewInputs(tx, targets, "2025-Q3"), sources=["price_volume_mix", pipeline], top=2)
    assert pl["source"].tolist() == ["pipeline", "price_volume_mix"]
    assert pl["rank"].tolist() == [1, 2]
    rv.register_problem_source("test_pipeline", pipeline)
    try:
        assert rv.problem_list(rv.ReviewInputs(tx, targets, "2025-Q3"), sources=["test_pipeline"])["key"].tolist() == ["West"]
    finally:
        rv.PROBLEM_SOURCES.pop("test_pipeline")
    with pytest.raises(SalesplanError, match="unknown problem source 'pipline'"):
        rv.problem_list(rv.ReviewInputs(tx, targets, "2025-Q3"), sources=["pipline"])


# --------------------------------------------------------------------------- accuracy


def test_accuracy_history_cumulates_as_months_arrive():
    tx = pd.DataFrame({"order_date": pd.to_datetime(["2025-01-10", "2025-02-10", "2025-03-10", "2025-03-31"]),
                       "customer_id": "c", "region": "East", "revenue": [100.0, 200.0, 100.0, 0.0]})
    plan = pd.DataFrame({"period": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"]),
                         "level": "region", "key": "East", "metric": "revenue", "value": [110.0, 150.0, 100.0, 99.0]})
    fc = pd.DataFrame({"unique_id": "East", "ds": pd.to_datetime(["2025-02-01", "2025-03-01"]),
                       "naive": [100.0, 200.0]})
    rec = pd.concat([rv.plan_records(plan), rv.forecast_records(fc, name="fc", level="region",
                                                                 created_at="2025-02-01", owner="ana")])
    h = rv.accuracy_history(rec, tx)
    p = h[h["source"] == "targets"]
    # errors +10, -50, 0; actuals 100, 200, 100; April has no complete actuals yet
    assert p["as_of"].dt.month.tolist() == [1, 2, 3]
    assert p["wape"].tolist() == pytest.approx([0.1, 60 / 300, 60 / 400])
    assert p["bias"].tolist() == pytest.approx([0.1, -40 / 300, -40 / 400])
    f = h[h["source"] == "fc:naive"]
    assert f["error"].tolist() == [-100.0, 100.0] and f["bias"].iloc[-1] == 0.0
    s = rv.accuracy_summary(h)
    assert s["source"].tolist() == ["targets", "fc:naive"]
    assert s["owner"].tolist()[1] == "ana" and s["rank"].tolist() == [1, 2]
    assert s["wape"].tolist() == pytest.approx([0.15, 200 / 300])


def test_saved_plans_are_scored(tmp_path):
    from salesplan.targets import make_plan, save_plan

    phased = pd.DataFrame({"unique_id": ["East", "East"], "ds": pd.to_datetime(["2025-01-01", "2025-02-01"]),
                           "value": [90.0, 210.0]})
    save_plan(make_plan("base", phased, level="region"), plan_dir=tmp_path, user="t")
    rec = rv.plan_records(tmp_path)
    rec["created_at"] = pd.NaT  # saved today, scored as if made before the period
    tx = pd.DataFrame({"order_date": pd.to_datetime(["2025-01-10", "2025-02-28"]), "customer_id": "c",
                       "region": "East", "revenue": [100.0, 200.0]})
    h = rv.accuracy_history(rec, tx)
    assert h["source"].unique().tolist() == ["base v1"] and h["owner"].unique().tolist() == ["t"]
    assert h["wape"].iloc[-1] == pytest.approx(20 / 300)


# --------------------------------------------------------------------------- after-sales


def _feedback():
    return pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "b", "c"],
        "date": pd.to_datetime(["2025-01-05", "2025-02-05", "2025-03-20", "2025-01-10", "2025-03-01", "2025-03-25"]),
        "satisfaction": [5.0, 5.0, 3.0, 4.0, np.nan, np.nan],
        "ticket_id": [None, None, None, "T1", "T2", "T3"],
        "resolved_at": pd.to_datetime([None, None, None, "2025-01-14", None, "2025-03-27"]),
    })


def test_ticket_backlog_and_resolution_times_by_hand():
    t = rv.ticket_stats(_feedback(), as_of="2025-03-31").set_index("ds")
    assert t["opened"].tolist() == [1, 0, 2]
    assert t["resolved"].tolist() == [1, 0, 1]
    assert t["median_resolution_days"].tolist()[0] == 4.0 and t["median_resolution_days"].tolist()[2] == 2.0
    assert t["backlog"].tolist() == [0, 0, 1]          # T2 still open at the end of March
    assert t["backlog_stale"].tolist() == [0, 0, 1]    # open 30 days


def test_satisfaction_trend_by_segment():
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "segment": ["SMB", "SMB", "Enterprise"]})
    s = rv.satisfaction_trend(_feedback(), by="segment", customers=customers, freq="MS")
    smb = s[s["segment"] == "SMB"]
    assert smb["satisfaction"].tolist() == [4.5, 5.0, 3.0]
    assert smb["change"].tolist()[1:] == [0.5, -2.0]


def test_customers_at_risk_reasons_owner_and_stake(rng):
    rows = []
    for i in range(60):
        cust = f"k{i:02d}"
        for d in rng.choice(np.arange(0, 360), size=int(rng.integers(2, 8)), replace=False):
            rows.append((pd.Timestamp("2024-04-01") + pd.Timedelta(days=int(d)), cust, f"R{i % 3}", 100.0))
    rows += [(pd.Timestamp("2025-03-01"), "a", "R9", 500.0), (pd.Timestamp("2025-03-15"), "a", "R9", 500.0),
             (pd.Timestamp("2025-03-02"), "b", "R8", 300.0), (pd.Timestamp("2025-03-16"), "b", "R7", 100.0)]
    tx = pd.DataFrame(rows, columns=["order_date", "customer_id", "rep_id", "revenue"])
    risk = rv.customers_at_risk(tx, feedback=_feedback(), as_of="2025-03-31", all_customers=True).set_index("customer_id")
    assert risk.loc["a", "at_risk"] and "satisfaction down 2.0 to 3" in risk.loc["a", "reasons"]
    assert risk.loc["a", "owner"] == "R9" and risk.loc["a", "revenue_at_stake"] == 1000.0
    assert risk.loc["b", "at_risk"] and "1 ticket(s) open, oldest 30 days" in risk.loc["b", "reasons"]
    assert risk.loc["b", "owner"] == "R8"
    assert risk["probability_alive"].between(0, 1).all()
    only = rv.customers_at_risk(tx, feedback=_feedback(), as_of="2025-03-31")
    assert only["at_risk"].all() and {"a", "b"} <= set(only["customer_id"])
    assert only["revenue_at_stake"].is_monotonic_decreasing


# --------------------------------------------------------------------------- the whole review


def test_kpis_by_hand_with_pace():
    tx, targets = _problem_case()
    # the data stop half-way through the quarter: on 15 August, day 46 of 92
    tx = pd.concat([tx, _tx([("2025-08-15", "West", "P1", 0, 100.0)])], ignore_index=True)
    targets = pd.concat([targets, _targets({"all": 25000.0}, level="company")], ignore_index=True)
    k = rv.kpis(tx, targets, period="2025-Q3").set_index("key")
    assert k["level"].tolist() == ["company", "region", "region"]
    assert k.loc["East", ["target", "actual", "gap"]].tolist() == [15000.0, 13000.0, -2000.0]
    assert k.loc["all", "actual"] == 13000.0 + 9500.0
    assert k["elapsed"].iloc[0] == pytest.approx(0.5)
    assert k.loc["West", "pace"] == pytest.approx(9500.0 / 5000.0)


def test_review_tables_on_the_demo_company():
    from salesplan.io import load_data

    data = load_data(None)
    plan = {"name": "std", "base_rate": 0.04, "gate": 0.5,
            "tiers": [{"from": 0, "multiplier": 0.5}, {"from": 1.0, "multiplier": 1.5}]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = rv.review_tables(data, period="2025-Q3", plan=plan, top=5)
    assert {"kpis", "variance", "problems", "accuracy", "payouts", "at_risk", "tickets", "satisfaction"} <= set(out)
    v = out["variance"]
    np.testing.assert_allclose(v[EFFECTS].sum(axis=1), v["variance"], atol=1e-6)
    pl = out["problems"]
    assert len(pl) == 5 and pl["impact"].is_monotonic_increasing and (pl["impact"] < 0).all()
    shown = rv.problems_table(pl)
    assert shown["impact"].str.match(r"^-\d{1,3}(,\d{3})*$").all()
    assert out["payouts"]["period"].unique().tolist() == [pd.Timestamp("2025-07-01")]
    assert out["at_risk"]["owner"].notna().all()


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(rv)
    assert result.attempted > 0 and result.failed == 0
