"""ReviewApp: set the controls as a user would, then check app.result against the package and plain pandas."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from salesplan.incentives import payout_curve
from salesplan.ui.review import ALL, PLANS, SECTIONS, ReviewApp

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_incentives_and_review.ipynb"


@pytest.fixture(scope="module")
def demo():
    from salesplan.datasets import load_demo

    return dict(load_demo())


@pytest.fixture(scope="module")
def app(demo):
    return ReviewApp(demo, period="2025-Q4", n_samples=300)


def test_every_section_is_shown_on_the_demo(app):
    assert app.result["error"] == ""
    for s in SECTIONS:
        assert app.result[s] is not None, s
        assert app.result["notes"][s] == ""
        assert app.html[s].value
    assert app.period.value == "2025-Q4"


def test_kpis_match_the_order_lines(app, demo):
    tx = demo["transactions"]
    inside = tx[(tx["order_date"] >= "2025-10-01") & (tx["order_date"] <= "2025-12-31")]
    k = app.result["kpis"]
    east = k[(k["level"] == "region") & (k["key"] == "East")].iloc[0]
    assert east["actual"] == pytest.approx(inside.loc[inside["region"] == "East", "revenue"].sum())


def test_bridge_follows_the_unit_and_adds_up(app):
    app.unit.value = "South"
    steps = app.result["bridge"]
    v = app.result["review"].tables["variance"]
    south = v[v["key"] == "South"].iloc[0]
    assert steps["value"].iloc[0] == pytest.approx(south["plan"])
    assert steps["value"].iloc[-1] == pytest.approx(south["actual"])
    assert steps.loc[steps["kind"] == "change", "value"].sum() == pytest.approx(south["variance"])
    assert "South" in app.html["bridge"].value
    app.unit.value = ALL
    assert app.result["bridge"]["value"].iloc[0] == pytest.approx(v["plan"].sum())


def test_two_plans_compared_on_the_same_outcomes(app):
    app.plan_a.value, app.plan_b.value = "standard", "flat"
    c = app.result["comparison"]
    assert c["plan"].tolist() == ["standard", "flat"]
    totals = app.result["payout_totals"]
    std, flat = (totals[totals["plan"] == n].reset_index(drop=True) for n in ("standard", "flat"))
    pd.testing.assert_series_equal(std["revenue"], flat["revenue"])  # the same outcomes
    assert c.loc[1, "payout_vs_first"] == pytest.approx((flat["payout"] - std["payout"]).mean())
    assert len(app.payout_chart.figure.data) == 2
    pd.testing.assert_frame_equal(
        app.result["curve"],
        payout_curve([PLANS["standard"], PLANS["flat"]], quota=app.result["curve"]["revenue"].iloc[20]))
    f = app.result["fairness"]
    assert set(f["plan"]) == {"standard", "flat"} and f.groupby("plan").size().eq(f["rep_id"].nunique()).all()
    assert "Fairness of standard" in app.html["plans"].value
    word = "more" if c.loc[1, "payout_vs_first"] >= 0 else "less"
    assert f"flat pays" in app.html["plans"].value and word in app.html["plans"].value


def test_accuracy_history_is_plotted_per_unit(app):
    h = app.result["accuracy_history"]
    assert set(h["level"]) <= {"company", "region"} and (h["wape"] >= 0).all()
    assert len(app.accuracy_chart.figure.data) == h.groupby(["level", "key"]).ngroups
    last = h[h["key"] == "East"].sort_values("as_of").iloc[-1]
    summary = app.result["accuracy"].set_index(["level", "key"]).loc[("region", "East")]
    assert last["wape"] == pytest.approx(summary["wape"])


def test_problems_are_ranked_with_smart_targets(app):
    p = app.result["problems"]
    assert p["rank"].tolist() == list(range(1, len(p) + 1))
    assert p["impact"].is_monotonic_increasing
    assert p["action"].str.contains(r"from .+ to .+ by the end of 2026-Q1").all()


def test_drivers_follow_the_unit_and_add_up(app):
    app.unit.value = "East"
    d = app.result["drivers"]
    east = d[d["key"] == "East"]
    assert east["effect"].sum() == pytest.approx(east["revenue_current"].iloc[0] - east["revenue_reference"].iloc[0])
    assert "East: won revenue 2025-Q3 to 2025-Q4" in app.html["drivers"].value
    app.unit.value = ALL


def test_level_change_recomputes(app):
    app.level.value = "company"
    assert set(app.result["review"].tables["variance"]["level"]) == {"company"}
    assert list(app.unit.options) == [ALL, "all"]
    app.level.value = "region"
    assert "East" in app.unit.options


def test_transactions_only_says_what_to_add(demo):
    tx = demo["transactions"][["order_date", "customer_id", "revenue"]]
    app = ReviewApp({"transactions": tx[tx["order_date"] >= "2025-01-01"]})
    assert app.result["error"] == ""
    assert app.result["notes"]["kpis"] == "Add a `targets` table to see KPIs against target."
    assert "Add a `targets` table" in app.result["notes"]["plans"]
    assert app.result["notes"]["drivers"].startswith("Add an `opportunities` table to see why won revenue moved")
    assert app.result["at_risk"] is not None and len(app.result["at_risk"]) > 0


def test_no_data_is_an_error_in_the_page(tmp_path):
    app = ReviewApp.from_source(tmp_path / "nowhere")
    assert "not found" in app.result["error"].lower()
    assert app.container is not None


def test_notebook_is_thin_and_clean():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code)
    for c in code:
        src = "".join(c["source"])
        assert not c.get("outputs") and c.get("execution_count") is None
        assert "def " not in src and "class " not in src
