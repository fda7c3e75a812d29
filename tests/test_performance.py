"""Performance management on hand-made frames whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from salesplan import performance as pf
from salesplan.errors import SalesplanDataError, SalesplanError

D = pd.Timestamp


@pytest.fixture
def tables():
    """Three reps (R1, R2 in team A / North; R3 in team B / South), 2024 and 2025."""
    tx = pd.DataFrame(
        [
            ("2024-03-01", "c1", "R1", 100.0),
            ("2024-06-01", "c2", "R1", 50.0),
            ("2024-05-01", "c3", "R2", 200.0),
            ("2025-02-01", "c1", "R1", 150.0),
            ("2025-07-01", "c4", "R1", 60.0),
            ("2025-03-01", "c5", "R2", 100.0),
            ("2025-04-01", "c6", "R3", 40.0),
        ],
        columns=["order_date", "customer_id", "rep_id", "revenue"],
    ).astype({"order_date": "datetime64[ns]", "customer_id": "string", "rep_id": "string"})
    reps = pd.DataFrame({"rep_id": ["R1", "R2", "R3"], "team": ["A", "A", "B"],
                         "region": ["North", "North", "South"]}).astype("string")
    months = pd.date_range("2025-01-01", "2025-12-01", freq="MS")
    targets = pd.concat([
        pd.DataFrame({"period": months, "level": "rep", "key": "R1", "metric": "revenue", "value": 20.0}),
        pd.DataFrame({"period": months[:6], "level": "rep", "key": "R2", "metric": "revenue", "value": 10.0}),
    ], ignore_index=True)
    opps = pd.DataFrame(
        [
            ("o1", "c1", "R1", 100.0, "2025-01-01", "won", "won", "2025-01-31"),
            ("o2", "c1", "R1", 500.0, "2025-01-05", "lost", "lost", "2025-02-10"),
            ("o3", "c4", "R1", 300.0, "2024-12-01", "won", "won", "2025-03-01"),
            ("o4", "c4", "R1", 900.0, "2025-11-01", "proposal", "open", "2026-02-01"),
            ("o5", "c5", "R2", 200.0, "2025-02-01", "lost", "lost", "2025-05-01"),
            ("o6", "c3", "R2", 700.0, "2024-01-01", "won", "won", "2024-06-01"),
        ],
        columns=["opportunity_id", "customer_id", "rep_id", "amount", "created_date", "stage", "status", "close_date"],
    ).astype({"created_date": "datetime64[ns]", "close_date": "datetime64[ns]"})
    feedback = pd.DataFrame({
        "customer_id": ["c1", "c4", "c3"],
        "date": pd.to_datetime(["2025-03-01", "2025-08-01", "2025-01-10"]),
        "satisfaction": [4.0, 2.0, 5.0],
        "resolved_at": pd.to_datetime(["2025-03-05", None, "2025-01-20"]),
    })
    return {"transactions": tx, "reps": reps, "targets": targets, "opportunities": opps, "feedback": feedback}


def values(card: pd.DataFrame, kpi: str, column: str = "value") -> dict:
    rows = card[card["kpi"] == kpi]
    return {u: (None if pd.isna(v) else v) for u, v in zip(rows["unit"], rows[column])}


def test_scorecard_rep_kpis_by_hand(tables):
    card = pf.scorecard(tables, period="2025", level="rep")
    assert list(card.columns) == ["unit", "level", "kpi", "value", "previous", "change", "rank"]
    assert card.attrs["notes"] == [] and card.attrs["period"] == "2025" and card.attrs["previous_period"] == "2024"
    assert values(card, "revenue") == {"R1": 210.0, "R2": 100.0, "R3": 40.0}
    assert values(card, "revenue", "previous") == {"R1": 150.0, "R2": 200.0, "R3": None}
    assert values(card, "revenue", "change") == {"R1": 60.0, "R2": -100.0, "R3": None}
    assert values(card, "revenue", "rank") == {"R1": 1.0, "R2": 2.0, "R3": 3.0}
    assert values(card, "growth") == pytest.approx({"R1": 0.4, "R2": -0.5, "R3": None})
    # R1: 210 / (12 x 20); R2 has targets for six months only: 100 / 60; R3 has none.
    assert values(card, "attainment") == pytest.approx({"R1": 210 / 240, "R2": 100 / 60, "R3": None})
    # c4, c5, c6 first ordered in 2025; c1 did in 2024.
    assert values(card, "new_customers") == {"R1": 1.0, "R2": 1.0, "R3": 1.0}
    # R1 sold to c1, c2 in 2024 and c1 again in 2025; R2's c3 did not come back.
    assert values(card, "retention") == {"R1": 0.5, "R2": 0.0, "R3": None}
    # Deals closed in 2025: R1 won o1 (30 days), o3 (90 days), lost o2; R2 lost o5.
    assert values(card, "deals_won") == {"R1": 2.0, "R2": 0.0, "R3": None}
    assert values(card, "win_rate") == pytest.approx({"R1": 2 / 3, "R2": 0.0, "R3": None})
    assert values(card, "average_deal_size") == {"R1": 200.0, "R2": None, "R3": None}
    assert values(card, "cycle_days") == {"R1": 60.0, "R2": None, "R3": None}
    # Feedback goes to the rep who sold the customer the most: c1, c4 -> R1, c3 -> R2.
    assert values(card, "satisfaction") == {"R1": 3.0, "R2": 5.0, "R3": None}
    assert values(card, "resolution_days") == {"R1": 4.0, "R2": 10.0, "R3": None}
    # Lower is better for days: rank 1 is the fastest.
    assert values(card, "resolution_days", "rank") == {"R1": 1.0, "R2": 2.0, "R3": None}


def test_scorecard_team_region_and_company(tables):
    team = pf.scorecard(tables, period="2025", level="team")
    assert values(team, "revenue") == {"A": 310.0, "B": 40.0}
    # No team targets: the team's reps' targets are summed (240 + 60).
    assert values(team, "attainment") == pytest.approx({"A": 310 / 300, "B": None})
    region = pf.scorecard(tables, period="2025", level="region")
    assert values(region, "revenue") == {"North": 310.0, "South": 40.0}
    company = pf.scorecard(tables, period="2025", level="company")
    assert values(company, "revenue") == {"all": 350.0}
    assert values(company, "growth") == pytest.approx({"all": 350 / 350 - 1})


def test_quarter_period_and_previous_quarter(tables):
    card = pf.scorecard(tables, period="2025-Q1", level="rep")
    assert card.attrs["previous_period"] == "2024-Q4"
    assert values(card, "revenue") == {"R1": 150.0, "R2": 100.0}
    assert values(card, "attainment") == pytest.approx({"R1": 150 / 60, "R2": 100 / 30})


def test_units_filter_keeps_ranks_among_all(tables):
    card = pf.scorecard(tables, period="2025", level="rep", units=["R2"])
    assert set(card["unit"]) == {"R2"}
    assert values(card, "revenue", "rank") == {"R2": 2.0}


def test_missing_tables_leave_kpis_out_with_notes(tables):
    only = {"transactions": tables["transactions"][["order_date", "customer_id", "revenue"]]}
    card = pf.scorecard(only, period="2025", level="company")
    assert set(card["kpi"]) == {"revenue", "growth", "new_customers", "retention"}
    notes = " ".join(card.attrs["notes"])
    assert "targets table" in notes and "opportunities table" in notes and "feedback table" in notes
    assert pf.available_levels(only) == ["company"]
    rep = pf.scorecard(only, period="2025", level="rep")
    assert rep.empty and "rep_id" in " ".join(rep.attrs["notes"])
    # Without feedback and targets, the rest of the rep scorecard still works.
    partial = {k: v for k, v in tables.items() if k not in ("feedback", "targets")}
    card = pf.scorecard(partial, period="2025", level="rep")
    assert "satisfaction" not in set(card["kpi"]) and "attainment" not in set(card["kpi"])
    assert values(card, "win_rate") == pytest.approx({"R1": 2 / 3, "R2": 0.0, "R3": None})


def test_scorecard_does_not_touch_its_input(tables):
    before = {k: v.copy() for k, v in tables.items()}
    pf.scorecard(tables, period="2025", level="team")
    for k in tables:
        pdt.assert_frame_equal(tables[k], before[k])


def test_wide_and_display(tables):
    card = pf.scorecard(tables, period="2025", level="rep")
    wide = pf.scorecard_wide(card)
    assert list(wide["unit"]) == ["R1", "R2", "R3"]
    assert wide.loc[0, "revenue"] == 210.0 and list(wide.columns)[:3] == ["unit", "revenue", "attainment"]
    shown = pf.scorecard_display(card)
    assert shown.columns[0] == "rep"
    assert shown.loc[0, "Revenue"] == "210 (+60) #1"
    # No revenue in 2023, so R2's growth has no previous value to compare with.
    assert shown.loc[1, "Revenue growth vs a year before"] == "-50.0% #2"
    assert shown.loc[2, "Customer retention"] == "n/a"
    assert "e+" not in shown.to_string()


def test_period_forms():
    assert pf.period_window("2025").label == "2025"
    assert pf.period_window("2025Q3").start == D("2025-07-01")
    assert pf.period_window("2025-06").shift(-1).label == "2025-05"
    w = pf.period_window(("2025-01-01", "2025-06-30"))
    assert (w.months, w.shift(-1).start) == (6, D("2024-07-01"))
    with pytest.raises(SalesplanError, match="not a period"):
        pf.period_window("last year")


def card_of(attainment: dict) -> pd.DataFrame:
    units = list(attainment)
    rows = [{"unit": u, "level": "rep", "kpi": "attainment", "value": v, "previous": np.nan,
             "change": np.nan, "rank": np.nan} for u, v in attainment.items()]
    rows += [{"unit": u, "level": "rep", "kpi": "revenue", "value": 1.0, "previous": np.nan,
              "change": np.nan, "rank": np.nan} for u in units]
    return pd.DataFrame(rows)


def test_attainment_bands_by_hand():
    card = card_of({"a": 0.3, "b": 0.5, "c": 0.79, "d": 0.8, "e": 1.0, "f": 1.01, "g": -0.1, "h": np.nan})
    dist = pf.attainment_distribution(card)
    assert list(dist["band"]) == ["0-50%", "50-80%", "80-100%", "above 100%", "no target"]
    assert list(dist["units"]) == [2, 2, 2, 1, 1]
    assert list(dist["members"]) == ["a, g", "b, c", "d, e", "f", "h"]
    assert dist["share"].sum() == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=-1, max_value=5, allow_nan=False), min_size=1, max_size=30))
def test_attainment_bands_count_every_unit_once(values_):
    card = card_of({f"u{i}": v for i, v in enumerate(values_)})
    dist = pf.attainment_distribution(card)
    assert dist["units"].sum() == len(values_)


SCHEME = {
    "attainment": {"weight": 0.5, "threshold": 1.0, "cap": 1.2},
    "win_rate": {"weight": 0.3, "threshold": 0.5, "cap": 1.5},
    "cycle_days": {"weight": 0.2, "threshold": 45},
}


def test_appraisal_score_by_hand(tables):
    card = pf.scorecard(tables, period="2025", level="rep")
    parts = pf.appraise(card, scheme=SCHEME)
    r1 = parts[parts["unit"] == "R1"].set_index("kpi")
    # attainment 0.875 / 1 -> 0.4375; win rate (2/3) / 0.5 = 1.333 -> 0.4; cycle 45 / 60 = 0.75 -> 0.15
    assert r1["points"].to_dict() == pytest.approx({"attainment": 0.4375, "win_rate": 0.4, "cycle_days": 0.15})
    assert r1.loc["cycle_days", "formula"] == "min(1, 45 / 60) x 0.2 = 0.15"
    totals = pf.appraisal_totals(parts).set_index("unit")
    assert totals.loc["R1", "score"] == pytest.approx(0.9875)
    # R2: attainment 1.667 capped at 1.2 -> 0.6; win rate 0 -> 0; no won deal -> cycle not scored.
    assert totals.loc["R2", "points"] == pytest.approx(0.6)
    assert totals.loc["R2", "weight_scored"] == pytest.approx(0.8)
    assert totals.loc["R2", "score"] == pytest.approx(0.75)
    assert list(pf.appraisal_totals(parts)["unit"][:2]) == ["R1", "R2"]


@pytest.mark.parametrize(
    "scheme, message",
    [
        ({"atainment": {"weight": 1.0, "threshold": 1.0}}, "unknown KPI 'atainment'. Did you mean 'attainment'"),
        ({"attainment": {"weight": 0.5, "threshold": 1.0}, "win_rate": {"weight": 0.4, "threshold": 0.3}},
         "sum to 0.9"),
        ({"attainment": {"weight": 1.0, "threshold": -1}}, "threshold'] must be a number > 0"),
        ({"attainment": {"weight": 1.0}}, "has no 'threshold'"),
        ({"attainment": {"weight": 1.0, "threshold": 1.0, "floor": 0}}, "unknown key"),
        ({}, "non-empty dict"),
    ],
)
def test_scheme_errors_say_what_is_wrong(scheme, message):
    with pytest.raises(SalesplanError, match=message.replace("(", r"\(").replace("[", r"\[").replace("]", r"\]")):
        pf.check_scheme(scheme)


def test_appraisal_with_a_kpi_the_data_lacks(tables):
    card = pf.scorecard({"transactions": tables["transactions"]}, period="2025", level="rep")
    with pytest.raises(SalesplanDataError, match="attainment"):
        pf.appraise(card)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=-2, max_value=10, allow_nan=False), min_size=4, max_size=4))
def test_appraisal_points_stay_between_zero_and_cap(kpi_values):
    kpis = ["attainment", "win_rate", "cycle_days", "retention"]
    card = pd.DataFrame({"unit": "u", "level": "rep", "kpi": kpis, "value": kpi_values,
                         "previous": np.nan, "change": np.nan, "rank": 1.0})
    scheme = {k: {"weight": 0.25, "threshold": 0.5, "cap": 1.3} for k in kpis}
    parts = pf.appraise(card, scheme=scheme)
    points = parts["points"].dropna()
    assert (points >= 0).all() and (points <= 0.25 * 1.3 + 1e-12).all()


@pytest.fixture
def process_tables():
    """Three reps of one team; every deal goes prospecting -> negotiation -> won or lost, in 2025.

    R1 loses 8 of 10 deals at negotiation, R2 and R3 together 4 of 20.
    """
    rows, opps = [], []
    plan = [("R1", 10, 8), ("R2", 10, 2), ("R3", 10, 2)]
    k = 0
    for rep, n, lost in plan:
        for i in range(n):
            oid = f"o{k:03d}"
            start = D("2025-01-01") + pd.Timedelta(days=k)
            outcome = "lost" if i < lost else "won"
            rows += [(oid, "prospecting", start), (oid, "negotiation", start + pd.Timedelta(days=10)),
                     (oid, outcome, start + pd.Timedelta(days=20))]
            opps.append((oid, "c", rep, 1000.0, start, outcome, outcome, start + pd.Timedelta(days=20)))
            k += 1
    sh = pd.DataFrame(rows, columns=["opportunity_id", "stage", "entered_at"])
    op = pd.DataFrame(opps, columns=["opportunity_id", "customer_id", "rep_id", "amount", "created_date", "stage",
                                     "status", "close_date"])
    reps = pd.DataFrame({"rep_id": ["R1", "R2", "R3"], "team": ["A", "A", "A"]})
    return {"opportunities": op, "stage_history": sh, "reps": reps}


def test_coaching_gap_by_hand(process_tables):
    gaps = pf.stage_gaps(process_tables, period="2025")
    row = gaps[(gaps["rep_id"] == "R1") & (gaps["stage"] == "negotiation") & (gaps["measure"] == "loss_rate")].iloc[0]
    assert (row["deals"], row["rep_value"], row["team_value"]) == (10, 0.8, 0.2)
    assert row["p_value"] == pytest.approx(stats.fisher_exact([[8, 2], [4, 16]], alternative="greater").pvalue)
    # 10 deals a year x (0.8 - 0.2) / 2 x every saved deal is won x 1,000
    assert row["revenue_at_stake"] == pytest.approx(3000.0)
    needs = pf.coaching_needs(gaps)
    assert list(needs["rep_id"]) == ["R1"]
    assert needs.loc[0, "focus"] == ("R1 loses 80% of deals at negotiation against 20% for the team: "
                                     "about 3k a year at stake; focus: negotiation")
    # Nobody is lost at prospecting and every deal spends 10 days in each stage: nothing to coach there.
    other = gaps[(gaps["stage"] == "prospecting") | (gaps["measure"] == "days")]
    assert (other["gap"].fillna(0) <= 0).all()


def test_coaching_needs_stage_tables(process_tables):
    with pytest.raises(SalesplanDataError, match="stage_history"):
        pf.stage_gaps({k: v for k, v in process_tables.items() if k != "stage_history"})


def test_short_money():
    assert [pf.short_money(x) for x in (181_400, 1_234_000, 950, math.nan)] == ["181k", "1.2m", "950", "n/a"]


def test_demo_data_runs_end_to_end():
    from salesplan.io import load_data

    data = load_data(None)
    card = pf.scorecard(data, period="2025", level="rep")
    assert card["unit"].nunique() == len(data["reps"]) and card.attrs["notes"] == []
    assert pf.attainment_distribution(card)["units"].sum() == len(data["reps"])
    totals = pf.appraisal_totals(pf.appraise(card))
    assert totals["score"].between(0, 1.5).all()
    needs = pf.coaching_needs(pf.stage_gaps(data))
    assert needs["focus"].str.contains("focus: ").all()
