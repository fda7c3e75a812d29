"""Tests of salesplan.incentives: plans as data, payouts by hand, statements, simulation, fairness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from salesplan import incentives as inc
from salesplan.errors import SalesplanError, SalesplanWarning

# Rate 10 %; tiers x0.5 from 0, x1 from 60 %, x2 from 100 %; nothing below 40 %; no credit above 150 %.
PLAN = {
    "name": "hand",
    "base_rate": 0.10,
    "gate": 0.4,
    "cap": {"attainment": 1.5},
    "tiers": [{"from": 0, "multiplier": 0.5}, {"from": 0.6, "multiplier": 1.0}, {"from": 1.0, "multiplier": 2.0}],
    "period": "quarter",
}
QUOTA = 1000.0

# revenue -> commission, worked out by hand for quota 1,000:
#   below 400: 0 (gate); 400..600: 5 % of revenue; 600..1000: 30 + 10 % above 600;
#   1000..1500: 70 + 20 % above 1000; above 1500: 170.
HAND = [
    (0.0, 0.0),
    (399.99, 0.0),         # just below the gate
    (400.0, 20.0),         # at the gate
    (400.01, 20.0005),     # just above the gate
    (599.99, 29.9995),     # just below the 60 % tier
    (600.0, 30.0),         # at it
    (600.01, 30.001),      # just above
    (999.99, 69.999),      # just below 100 %
    (1000.0, 70.0),        # at 100 %
    (1000.01, 70.002),     # just above: the accelerator pays 20 %
    (1499.99, 169.998),    # just below the cap
    (1500.0, 170.0),       # at the cap
    (1500.01, 170.0),      # just above: nothing more
    (3000.0, 170.0),
]


@pytest.mark.parametrize("revenue,expected", HAND)
def test_commission_by_hand_at_every_boundary(revenue, expected):
    plan = inc.CommissionPlan.from_dict(PLAN)
    assert plan.commission(revenue, QUOTA) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("revenue,expected", [
    (399.99, 0.0), (400.0, 20.0), (599.99, 29.9995), (600.0, 60.0), (999.99, 99.999),
    (1000.0, 200.0), (1200.0, 240.0), (1500.0, 300.0), (2000.0, 300.0),
])
def test_retroactive_tiers_pay_all_revenue_at_the_tier_reached(revenue, expected):
    plan = inc.CommissionPlan.from_dict({**PLAN, "tier_mode": "retroactive"})
    assert plan.commission(revenue, QUOTA) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("revenue,expected", [(1100.0, 90.0), (1200.0, 100.0), (1250.0, 100.0)])
def test_amount_cap(revenue, expected):
    plan = inc.CommissionPlan.from_dict({**PLAN, "cap": {"attainment": 1.5, "amount": 100.0}})
    assert plan.commission(revenue, QUOTA) == pytest.approx(expected)


# --------------------------------------------------------------------------- history


def _tx(rows):
    return pd.DataFrame(rows, columns=["order_date", "customer_id", "rep_id", "product_id", "category",
                                       "quantity", "revenue"]).assign(order_date=lambda d: pd.to_datetime(d["order_date"]))


def _targets(quotas):
    """quotas: {(rep, month): value}."""
    return pd.DataFrame([{"period": pd.Timestamp(m), "level": "rep", "key": r, "metric": "revenue", "value": v}
                         for (r, m), v in quotas.items()])


def test_statement_lines_recompute_by_hand():
    tx = _tx([("2025-01-10", "c1", "R1", "A", "X", 1, 700.0), ("2025-02-10", "c2", "R1", "B", "X", 1, 500.0)])
    targets = _targets({("R1", "2025-01-01"): 400.0, ("R1", "2025-02-01"): 300.0, ("R1", "2025-03-01"): 300.0})
    st = inc.statement(tx, targets, PLAN)
    assert list(st.columns) == inc.STATEMENT_COLUMNS
    tiers = st[st["item"] == "tier"]
    # 600 x 5 % = 30; 400 x 10 % = 40; 200 x 20 % = 40
    assert tiers["base"].tolist() == [600.0, 400.0, 200.0]
    assert tiers["amount"].tolist() == [30.0, 40.0, 40.0]
    np.testing.assert_allclose(tiers["base"] * tiers["rate"], tiers["amount"])
    payout = st[st["item"] == "payout"]["amount"].item()
    assert payout == 110.0
    assert st[st["item"] != "payout"]["amount"].sum() == pytest.approx(payout)
    assert st["line"].tolist() == list(range(1, len(st) + 1))
    assert "1,200.00 / quota 1,000.00 = 120.00%" in st[st["item"] == "attainment"]["description"].item()
    p = inc.payouts(tx, targets, PLAN)
    assert p[["rep_id", "quota", "revenue", "attainment", "commission", "payout"]].iloc[0].tolist() == \
        ["R1", 1000.0, 1200.0, 1.2, 110.0, 110.0]
    assert p["tier"].item() == "100% and above"


def test_gate_and_cap_lines_in_statement():
    tx = _tx([("2025-01-10", "c1", "R1", "A", "X", 1, 300.0), ("2025-04-10", "c1", "R1", "A", "X", 1, 2000.0)])
    targets = _targets({("R1", "2025-01-01"): 1000.0, ("R1", "2025-04-01"): 1000.0})
    plan = {**PLAN, "cap": {"attainment": 1.5, "amount": 150.0}}
    st = inc.statement(tx, targets, plan)
    q1 = st[st["period"] == "2025-01-01"]
    assert q1[q1["item"] == "gate"]["amount"].item() == -15.0   # 300 x 5 % taken back
    assert q1[q1["item"] == "payout"]["amount"].item() == 0.0
    q2 = st[st["period"] == "2025-04-01"]
    assert q2[q2["item"] == "cap"]["amount"].dropna().item() == -20.0   # 170 capped at 150
    assert "500.00" in q2[q2["item"] == "cap"]["description"].iloc[0]   # revenue above 150 % earns nothing
    assert q2[q2["item"] == "payout"]["amount"].item() == 150.0


def test_category_and_product_rates_blend():
    tx = _tx([("2025-01-10", "c1", "R1", "A", "X", 1, 300.0), ("2025-01-11", "c1", "R1", "B", "Y", 1, 100.0),
              ("2025-01-12", "c1", "R1", "C", "Y", 1, 100.0)])
    targets = _targets({("R1", "2025-01-01"): 1000.0})
    plan = {"base_rate": 0.10, "rates": {"category": {"Y": 0.20}, "product": {"C": 0.30}}}
    st = inc.statement(tx, targets, plan)
    # 300 x 10 % + 100 x 20 % + 100 x 30 % = 80 on 500 = 16 %
    assert st[st["item"] == "rate"]["rate"].item() == pytest.approx(0.16)
    assert st[st["item"] == "payout"]["amount"].item() == 80.0
    r = inc.blended_rates(plan, tx)
    assert r["rate"].item() == pytest.approx(0.16)


def test_relief_spiff_and_draws():
    tx = _tx([
        ("2025-01-10", "c1", "R1", "A", "X", 2, 300.0),
        ("2025-02-10", "c1", "R1", "S", "Soft", 4, 100.0),
        ("2025-04-10", "c1", "R1", "A", "X", 1, 1200.0),
    ])
    targets = _targets({("R1", "2025-01-01"): 1000.0, ("R1", "2025-04-01"): 1000.0})
    plan = {**PLAN, "gate": 0.0,
            "relief": [{"rep_id": "R1", "period": "2025-01-15", "fraction": 0.6, "reason": "leave"}],
            "spiffs": [{"name": "soft push", "categories": ["Soft"], "start": "2025-02-01", "end": "2025-02-28",
                        "per_unit": 5.0}],
            "draw": {"amount": 50.0, "recoverable": True}}
    p = inc.payouts(tx, targets, plan)
    q1, q2 = p.iloc[0], p.iloc[1]
    # Q1: quota 1,000 - 60 % = 400; revenue 400 = 100 %: 240 x 5 % + 160 x 10 % = 28; SPIFF 4 x 5 = 20
    assert (q1["quota"], q1["quota_relief"], q1["attainment"]) == (400.0, 600.0, 1.0)
    assert (q1["commission"], q1["spiff"]) == (28.0, 20.0)
    # earned 48 < draw 50: 2 advanced, to recover
    assert (q1["draw_advance"], q1["payout"], q1["draw_balance"]) == (2.0, 50.0, 2.0)
    # Q2: 1,200 of 1,000 = 110 earned; 2 recovered
    assert (q2["commission"], q2["draw_recovered"], q2["payout"], q2["draw_balance"]) == (110.0, 2.0, 108.0, 0.0)
    nonrec = inc.payouts(tx, targets, {**plan, "draw": {"amount": 50.0, "recoverable": False}})
    assert nonrec["payout"].tolist() == [50.0, 110.0]
    st = inc.statement(tx, targets, plan)
    for _, g in st.groupby("period"):
        assert g[g["item"] != "payout"]["amount"].sum() == pytest.approx(g[g["item"] == "payout"]["amount"].item())


def test_paid_on_payment_moves_revenue_to_the_period_it_is_paid():
    tx = _tx([("2025-03-20", "c1", "R1", "A", "X", 1, 800.0)])
    targets = _targets({("R1", "2025-01-01"): 1000.0, ("R1", "2025-04-01"): 1000.0})
    booked = inc.payouts(tx, targets, PLAN)
    assert booked.set_index("period")["revenue"].to_dict() == {pd.Timestamp("2025-01-01"): 800.0,
                                                             pd.Timestamp("2025-04-01"): 0.0}
    with pytest.warns(SalesplanWarning, match="30 days after"):
        paid = inc.payouts(tx, targets, {**PLAN, "basis": "payment"})
    assert paid.set_index("period")["revenue"].to_dict() == {pd.Timestamp("2025-01-01"): 0.0,
                                                           pd.Timestamp("2025-04-01"): 800.0}
    with_dates = inc.payouts(tx.assign(payment_date=pd.Timestamp("2025-03-31")), targets,
                             {**PLAN, "basis": "payment"})
    assert with_dates["revenue"].tolist() == [800.0, 0.0]


def test_caller_frames_are_not_mutated():
    tx = _tx([("2025-01-10", "c1", "R1", "A", "X", 1, 700.0)])
    targets = _targets({("R1", "2025-01-01"): 1000.0})
    before_tx, before_t = tx.copy(), targets.copy()
    inc.statement(tx, targets, PLAN)
    pd.testing.assert_frame_equal(tx, before_tx)
    pd.testing.assert_frame_equal(targets, before_t)


def test_export_statements_one_sheet_per_rep(tmp_path):
    tx = _tx([("2025-01-10", "c1", "R1", "A", "X", 1, 700.0), ("2025-01-11", "c2", "R2", "A", "X", 1, 1234567.5)])
    targets = _targets({("R1", "2025-01-01"): 1000.0, ("R2", "2025-01-01"): 1000000.0})
    path = inc.export_statements(inc.statement(tx, targets, PLAN), tmp_path / "st.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["R1", "R2"]
    ws = wb["R2"]
    assert ws.freeze_panes == "A2"
    header = [c.value for c in ws[1]]
    assert header == inc.STATEMENT_COLUMNS[1:]
    amount_col = header.index("amount") + 1
    cells = [ws.cell(row=r, column=amount_col) for r in range(2, ws.max_row + 1)]
    assert all(c.number_format == "#,##0.00" for c in cells)
    assert cells[-1].value == pytest.approx(inc.payouts(tx, targets, PLAN).set_index("rep_id").loc["R2", "payout"])


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad,words", [
    ({**PLAN, "gates": 0.5}, ["unknown key 'gates'", "Did you mean 'gate'"]),
    ({k: v for k, v in PLAN.items() if k != "base_rate"}, ["base_rate", "0.05"]),
    ({**PLAN, "base_rate": 5}, ["plan['base_rate']", "<= 1", "0.05 is 5 %"]),
    ({**PLAN, "tiers": [{"from": 0.2, "multiplier": 1}]}, ["plan['tiers'][0]['from'] must be 0", "gate"]),
    ({**PLAN, "tiers": [{"from": 0, "multiplier": 1}, {"from": 1.0, "multiplier": 2}, {"from": 0.8, "multiplier": 1}]},
     ["increasing", "tier 2", "Sort the tiers"]),
    ({**PLAN, "tiers": [{"from": 0, "multiplier": -1}]}, ["plan['tiers'][0]['multiplier']", ">= 0"]),
    ({**PLAN, "tiers": [{"from": 0, "mult": 1}]}, ["unknown key 'mult'", "multiplier"]),
    ({**PLAN, "cap": {"attainment": 0.3}}, ["cap", "above the gate"]),
    ({**PLAN, "spiffs": [{"name": "x"}]}, ["plan['spiffs'][0]", "exactly one of 'rate'"]),
    ({**PLAN, "spiffs": [{"rate": 0.1, "start": "soon"}]}, ["plan['spiffs'][0]['start']", "date"]),
    ({**PLAN, "relief": [{"rep_id": "R1", "period": "2025-01-01"}]}, ["relief", "'fraction'"]),
    ({**PLAN, "basis": "invoice"}, ["basis", "'booking' or 'payment'"]),
    ({**PLAN, "draw": {"amount": 10, "recoverable": "yes"}}, ["recoverable", "true or false"]),
    ({**PLAN, "period": "week"}, ["period", "quarter"]),
])
def test_plan_errors_say_what_where_and_how_to_fix(bad, words):
    with pytest.raises(SalesplanError) as err:
        inc.CommissionPlan.from_dict(bad)
    for w in words:
        assert w in str(err.value)


def test_plan_from_yaml_equals_dict(tmp_path):
    pytest.importorskip("yaml")
    text = """
name: hand
base_rate: 0.10
gate: 0.4
cap: {attainment: 1.5}
tiers:
  - {from: 0, multiplier: 0.5}
  - {from: 0.6, multiplier: 1.0}
  - {from: 1.0, multiplier: 2.0}
period: quarter
"""
    (tmp_path / "plan.yaml").write_text(text, encoding="utf-8")
    assert inc.CommissionPlan.from_yaml(text) == inc.CommissionPlan.from_dict(PLAN)
    assert inc.CommissionPlan.from_yaml(tmp_path / "plan.yaml") == inc.CommissionPlan.from_dict(PLAN)
    with pytest.raises(SalesplanError, match="not valid YAML"):
        inc.CommissionPlan.from_yaml("tiers: [")


def test_plan_is_frozen():
    plan = inc.CommissionPlan.from_dict(PLAN)
    with pytest.raises(AttributeError):
        plan.base_rate = 0.2  # type: ignore[misc]


# --------------------------------------------------------------------------- simulation


def _outcomes(matrix, reps):
    s, r = matrix.shape
    return pd.DataFrame({"unique_id": np.tile(reps, s), "sample": np.repeat(np.arange(s), r), "y": matrix.ravel()})


def test_simulation_by_hand():
    out = _outcomes(np.array([[300.0], [700.0], [1000.0], [1600.0]]), ["R1"])
    sim = inc.simulate(PLAN, out, quota={"R1": QUOTA})
    t = sim.totals()
    assert t["payout"].tolist() == pytest.approx([0.0, 40.0, 70.0, 170.0])
    assert t["cost_of_sales"].tolist() == pytest.approx([0.0, 40 / 700, 0.07, 170 / 1600])
    tp = sim.tier_probabilities().set_index("tier")["probability"]
    assert tp.to_dict() == {"0% to 60%": 1.0, "gate": 0.75, "60% to 100%": 0.75, "100% and above": 0.5, "cap": 0.25}
    rs = sim.rep_summary().iloc[0]
    assert rs["expected_payout"] == pytest.approx(70.0)
    assert rs["payout_per_revenue"] == pytest.approx(70.0 / 900.0)
    assert rs["attainment_probability"] == 0.5
    dist = sim.distribution(level=[50]).set_index("measure")
    assert dist.loc["payout", "mean"] == pytest.approx(70.0)
    assert dist.loc["payout", "median"] == pytest.approx(55.0)


def test_simulation_matches_the_statements(rng):
    """Each sample paid as a year of history gives the same pay as the vectorised simulation."""
    reps = ["R1", "R2", "R3"]
    quota = {"R1": 1000.0, "R2": 2000.0, "R3": 1500.0}
    rev = rng.uniform(0, 2.2, size=(6, 3)) * np.array(list(quota.values()))
    plan = {**PLAN, "period": "year", "cap": {"attainment": 1.5, "amount": 260.0}}
    sim = inc.simulate(plan, _outcomes(rev.round(2), reps), quota=quota)
    tx = _tx([(f"{2000 + s}-06-01", "c", reps[r], "A", "X", 1, rev[s, r].round(2))
              for s in range(6) for r in range(3)])
    targets = _targets({(reps[r], f"{2000 + s}-01-01"): quota[reps[r]] for s in range(6) for r in range(3)})
    hist = inc.payouts(tx, targets, plan)
    expected = hist.pivot(index="period", columns="rep_id", values="payout").to_numpy()
    np.testing.assert_allclose(sim.payout, expected, atol=0.02)


def test_outcomes_from_sample_paths_sum_the_window():
    paths = pd.DataFrame({"unique_id": ["R1"] * 4, "ds": pd.to_datetime(["2026-01-01", "2026-02-01"] * 2),
                          "sample": [0, 0, 1, 1], "y": [1.0, 2.0, 3.0, 4.0]})
    got = inc.outcomes_from_samples(paths)
    pd.testing.assert_frame_equal(got, pd.DataFrame({"unique_id": ["R1", "R1"], "sample": [0, 1], "y": [3.0, 7.0]}))
    assert inc.outcomes_from_samples(paths, end="2026-01-31")["y"].tolist() == [1.0, 3.0]


def test_simulation_rejects_incomplete_outcomes():
    out = _outcomes(np.array([[1.0, 2.0], [3.0, 4.0]]), ["R1", "R2"]).iloc[:-1]
    with pytest.raises(SalesplanError, match="every rep in every sample"):
        inc.simulate(PLAN, out, quota=1000.0)
    with pytest.raises(SalesplanError, match="no value for 1 rep"):
        inc.simulate(PLAN, _outcomes(np.ones((2, 2)), ["R1", "R2"]), quota={"R1": 5.0})


def test_compare_plans_on_the_same_outcomes(rng):
    out = _outcomes(rng.uniform(0, 2000, size=(200, 4)), ["a", "b", "c", "d"])
    double = {**PLAN, "name": "double", "base_rate": 0.2}
    cmp = inc.compare_plans([PLAN, double], out, quota=QUOTA)
    assert cmp["plan"].tolist() == ["hand", "double"]
    assert cmp.loc[1, "expected_payout"] == pytest.approx(2 * cmp.loc[0, "expected_payout"])
    assert cmp.loc[1, "payout_vs_first"] == pytest.approx(cmp.loc[0, "expected_payout"])
    assert cmp.loc[0, "payout_vs_first"] == 0.0
    single = inc.simulate(PLAN, out, quota=QUOTA).summary()
    pd.testing.assert_frame_equal(cmp.iloc[[0], : single.shape[1]], single)
    curve = inc.payout_curve([PLAN, double], quota=QUOTA, attainment=[0.39999, 0.4, 1.0, 1.5])
    assert curve["payout"].tolist() == pytest.approx([0.0, 20.0, 70.0, 170.0, 0.0, 40.0, 140.0, 340.0])


def test_fairness_flags_pay_driven_by_quota_size(rng):
    base = rng.uniform(500, 1500, size=(400, 1))
    # B's territory is twice A's and B sells twice as much in every sample: same chance, double pay
    out = _outcomes(np.hstack([base, 2 * base, base]), ["A", "B", "C"])
    sim = inc.simulate(PLAN, out, quota={"A": 1000.0, "B": 2000.0, "C": 1000.0})
    f = inc.fairness_check(sim, max_ratio=1.25).set_index("rep_id")
    assert f["attainment_probability"].nunique() == 1
    assert f.loc["B", "pay_ratio"] == pytest.approx(2.0)
    assert f.loc["B", "quota_ratio"] == pytest.approx(2.0)
    assert f["flagged"].to_dict() == {"A": False, "B": True, "C": False}
    assert f.attrs["flagged"] is True
    fair = inc.fairness_check(inc.simulate(PLAN, out, quota={"A": 1000.0, "B": 2000.0, "C": 1000.0},
                                           rates={"A": 0.1, "B": 0.05, "C": 0.1}))
    assert not fair["flagged"].any() and fair.attrs["flagged"] is False


def test_statement_table_reads_like_a_statement():
    tx = _tx([("2025-01-10", "c1", "R1", "A", "X", 1, 1200.0)])
    targets = _targets({("R1", "2025-01-01"): 1000.0})
    shown = inc.statement_table(inc.statement(tx, targets, PLAN))
    assert shown["amount"].tolist()[-1] == "110.00"
    assert shown.loc[0, "base"] == "1,000.00" and shown.loc[0, "amount"] == ""
    assert shown["period"].unique().tolist() == ["2025-01-01"]
    assert "%" in shown[shown["item"] == "tier"]["rate"].iloc[0]


def test_simulation_per_plan_period_matches_the_statements(rng):
    """Quarterly plan with a recoverable draw: simulated per quarter equals the history's statements."""
    reps = ["R1", "R2"]
    months = pd.date_range("2026-01-01", periods=12, freq="MS")
    rev = rng.uniform(0, 900, size=(2, 12)).round(2)           # one sample path per rep
    paths = pd.DataFrame({"unique_id": np.repeat(reps, 12), "ds": np.tile(months, 2), "sample": 0,
                          "y": rev.ravel()})
    monthly_quota = {"R1": 400.0, "R2": 500.0}
    targets = _targets({(r, m): monthly_quota[r] for r in reps for m in months})
    plan = {**PLAN, "draw": {"amount": 120.0, "recoverable": True}}
    out = inc.outcomes_from_samples(paths, period="quarter")
    assert list(out.columns) == ["unique_id", "period", "sample", "y"] and len(out) == 8
    sim = inc.simulate(plan, out, quota=inc.quotas(targets, period="quarter"))
    tx = _tx([(m, "c", r, "A", "X", 1, rev[i, j]) for i, r in enumerate(reps) for j, m in enumerate(months)])
    hist = inc.payouts(tx, targets, plan).groupby("rep_id")["payout"].sum()
    np.testing.assert_allclose(sim.payout[0], hist.loc[reps].to_numpy(), atol=0.05)
    assert sim.quota.tolist() == [4800.0, 6000.0]
    assert sim.period_attainment.shape == (1, 2, 4)
    tp = sim.tier_probabilities()
    share = (sim.period_attainment[0, 0] >= 1.0).mean()
    assert tp[(tp["rep_id"] == "R1") & (tp["start"] == 1.0)]["probability"].item() == share


def test_rep_without_sales_is_paid_nothing_but_gets_a_statement():
    tx = _tx([("2025-01-10", "c1", "R1", "A", "X", 1, 700.0)])
    targets = _targets({("R1", "2025-01-01"): 1000.0, ("R2", "2025-01-01"): 800.0})
    p = inc.payouts(tx, targets, PLAN).set_index("rep_id")
    assert p.loc["R2", ["revenue", "attainment", "payout"]].tolist() == [0.0, 0.0, 0.0]
    st = inc.statement(tx, targets, PLAN, rep_id="R2")
    assert st["item"].tolist()[0] == "quota" and st["item"].tolist()[-1] == "payout"


def test_yearly_quota_is_split_over_the_plan_periods():
    out = pd.DataFrame({"unique_id": "R1", "period": pd.to_datetime(["2026-01-01", "2026-04-01"]), "sample": 0,
                        "y": [500.0, 1500.0]})
    sim = inc.simulate(PLAN, out, quota={"R1": 2000.0})
    # each half-year quota is 1,000: 500 pays 25; 1,500 pays 170
    assert sim.payout[0, 0] == pytest.approx(195.0)
    assert sim.quota.tolist() == [2000.0]


def test_compare_plans_per_rep_on_the_same_outcome():
    out = _outcomes(np.array([[500.0, 1200.0], [700.0, 1600.0]]), ["A", "B"])
    flat = {"name": "flat", "base_rate": 0.1}
    cmp = inc.compare_plans([flat, PLAN], out, quota=QUOTA, by="rep").set_index(["plan", "rep_id"])
    # flat pays 10 % of revenue; PLAN pays A (25, 40) and B (110, 170) by the hand table
    assert cmp.loc[("flat", "A"), "expected_payout"] == pytest.approx(60.0)
    assert cmp.loc[("hand", "A"), "expected_payout"] == pytest.approx(32.5)
    assert cmp.loc[("hand", "A"), "payout_vs_first"] == pytest.approx(-27.5)
    assert cmp.loc[("hand", "B"), "payout_vs_first"] == pytest.approx(140.0 - 140.0)
    assert cmp.loc[("hand", "B"), "share_samples_more"] == pytest.approx(0.5)   # 170 > 160, 110 < 120


@settings(max_examples=40, deadline=None)
@given(revenue=st.lists(st.floats(0, 3000), min_size=2, max_size=2),
       starts=st.lists(st.floats(0.05, 1.9), min_size=0, max_size=3, unique=True),
       mults=st.lists(st.floats(0, 3), min_size=4, max_size=4),
       gate=st.floats(0, 1.0))
def test_statement_adds_up_to_the_kernel_and_pay_rises_with_revenue(revenue, starts, mults, gate):
    starts = sorted(round(x, 2) for x in starts)
    if len(set(starts)) < len(starts):
        return
    tiers = [{"from": 0, "multiplier": mults[0]}] + [{"from": a, "multiplier": m} for a, m in zip(starts, mults[1:])]
    plan = inc.CommissionPlan.from_dict({"base_rate": 0.1, "tiers": tiers, "gate": gate})
    lo, hi = sorted(revenue)
    assert plan.commission(hi, QUOTA) >= plan.commission(lo, QUOTA) - 1e-9   # never less for selling more
    tx = _tx([("2025-01-10", "c1", "R1", "A", "X", 1, round(hi, 2))])
    st_ = inc.statement(tx, _targets({("R1", "2025-01-01"): QUOTA}), plan)
    payout = st_[st_["item"] == "payout"]["amount"].item()
    assert st_[st_["item"] != "payout"]["amount"].sum() == pytest.approx(payout, abs=1e-6)
    assert payout == pytest.approx(plan.commission(round(hi, 2), QUOTA), abs=0.005 * len(tiers) + 1e-9)


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(inc)
    assert result.attempted > 0 and result.failed == 0


def test_plan_round_trips_through_plain_data():
    import json

    full = {**PLAN, "cap": {"attainment": 1.5, "amount": 900.0}, "tier_mode": "retroactive",
            "rates": {"category": {"Y": 0.2}, "product": {"C": 0.3}},
            "spiffs": [{"name": "push", "products": ["A"], "start": "2025-02-01", "end": "2025-02-28", "rate": 0.01}],
            "relief": [{"rep_id": "R1", "period": "2025-01-01", "amount": 100.0, "reason": "territory change"}],
            "draw": {"amount": 50.0, "recoverable": False}, "basis": "payment", "payment_lag_days": 45}
    plan = inc.CommissionPlan.from_dict(full)
    again = inc.CommissionPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan


def test_export_sheet_names_are_valid_and_unique(tmp_path):
    tx = _tx([("2025-01-10", "c1", "North/R1", "A", "X", 1, 700.0), ("2025-01-10", "c1", "North:R1", "A", "X", 1, 70.0)])
    targets = _targets({("North/R1", "2025-01-01"): 1000.0, ("North:R1", "2025-01-01"): 1000.0})
    wb = load_workbook(inc.export_statements(inc.statement(tx, targets, PLAN), tmp_path / "s.xlsx"))
    assert wb.sheetnames == ["North_R1", "North_R1~2"]


def test_relief_that_matches_no_quota_is_reported():
    tx = _tx([("2025-01-10", "c1", "R1", "A", "X", 1, 700.0)])
    targets = _targets({("R1", "2025-01-01"): 1000.0})
    plan = {**PLAN, "relief": [{"rep_id": "R9", "period": "2025-01-01", "fraction": 0.5}]}
    with pytest.warns(SalesplanWarning, match="1 quota relief.*R9 2025-Q1"):
        p = inc.payouts(tx, targets, plan)
    assert p["quota"].tolist() == [1000.0]


def test_outcomes_from_history_draw_each_reps_own_complete_quarters():
    from salesplan.incentives import outcomes_from_history

    tx = pd.DataFrame({
        "order_date": pd.to_datetime(["2024-01-15", "2024-02-15", "2024-05-01", "2024-06-30", "2024-07-02"]),
        "rep_id": ["A", "A", "A", "B", "A"],
        "revenue": [10.0, 5.0, 40.0, 7.0, 999.0],
    })
    # 2024-Q3 is not complete (the data stop on 2024-07-02): only Q1 and Q2 are drawn
    o = outcomes_from_history(tx, reps=["A", "B", "C"], n_samples=400, seed=1)
    assert len(o) == 3 * 400 and o.groupby("sample").size().eq(3).all()
    by_rep = o.groupby("unique_id")["y"].apply(lambda s: sorted(s.unique()))
    assert by_rep["A"] == [15.0, 40.0] and by_rep["B"] == [0.0, 7.0] and by_rep["C"] == [0.0]
    before = outcomes_from_history(tx, before="2024-04-01", n_samples=50)
    assert set(before["y"]) == {15.0}
