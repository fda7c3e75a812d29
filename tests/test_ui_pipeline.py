"""PipelineApp: set the controls as a user would, then check app.result against plain pandas."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from salesplan import performance as pf
from salesplan.ui.pipeline import ALL, SECTIONS, PipelineApp, period_options

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_pipeline_and_performance.ipynb"


@pytest.fixture(scope="module")
def demo():
    from salesplan.datasets import load_demo

    return dict(load_demo())


@pytest.fixture(scope="module")
def app(demo):
    return PipelineApp(demo)


@pytest.fixture(scope="module")
def probabilities(app):
    """The win probabilities learned once, handed to the other apps so each test need not refit."""
    return app.win_probabilities


def revenue_by_rep(tx: pd.DataFrame, year: int) -> dict:
    """Revenue per rep in a calendar year, straight from the order lines."""
    lines = tx[tx["order_date"].dt.year == year]
    return lines.groupby(lines["rep_id"].astype(str))["revenue"].sum().to_dict()


def test_demo_page_shows_every_section(app, demo):
    assert app.result["error"] == ""
    assert app.period.value == "2025" and app.level.value == "rep" and app.unit.value == ALL
    computed = {s for s in SECTIONS if isinstance(app.result[s], pd.DataFrame)}
    # Every section is computed, or says in one sentence why it is not there.
    for section in SECTIONS:
        assert section in computed or app.result["notes"][section], section
    assert {"funnel", "aging", "scorecard", "attainment", "appraisal", "coaching"} <= computed
    card = app.result["scorecard"]
    got = card[card["kpi"] == "revenue"].set_index("unit")["value"].to_dict()
    assert got == pytest.approx(revenue_by_rep(demo["transactions"], 2025))
    bands = app.result["attainment"]
    assert bands["units"].sum() == demo["reps"]["rep_id"].nunique()
    funnel = app.result["funnel"]
    created = demo["opportunities"]["created_date"].dt.year == 2025
    assert funnel["entered"].iloc[0] == int(created.sum())
    assert (funnel["entered"].diff().dropna() <= 0).all()
    # The forecast uses learned probabilities, quotes their Brier score, and its categories add up to the pipeline.
    assert "Brier score" in app.result["notes"]["forecast"]
    open_deals = demo["opportunities"][demo["opportunities"]["status"] == "open"]
    categories = app.result["forecast_categories"]
    assert categories["deals"].sum() == len(open_deals)
    assert categories["amount"].sum() == pytest.approx(open_deals["amount"].sum())
    assert app.result["forecast"]["expected"].sum() <= open_deals["amount"].sum()


def test_page_is_formatted_for_people(app):
    page = "".join(app.html[s].value for s in SECTIONS)
    assert "e+0" not in page and "<table" in page
    total = app.result["scorecard"].query("kpi == 'revenue' and unit == 'R01'")["value"].iloc[0]
    assert f"{total:,.0f}" in app.html["scorecard"].value
    assert "focus:" in app.html["coaching"].value
    assert "min(" in app.html["appraisal"].value  # the hand-checkable formulas


def test_period_control_rescores(demo, probabilities):
    app = PipelineApp(demo, probabilities=probabilities)
    app.period.value = "2024"
    assert app.result["error"] == ""
    card = app.result["scorecard"]
    assert card.attrs["period"] == "2024" and card.attrs["previous_period"] == "2023"
    got = card[card["kpi"] == "revenue"].set_index("unit")["value"].dropna().to_dict()
    assert got == pytest.approx(revenue_by_rep(demo["transactions"], 2024))
    app.period.value = "2025-Q3"
    card = app.result["scorecard"]
    assert card.attrs["previous_period"] == "2025-Q2"
    tx = demo["transactions"]
    q3 = tx[(tx["order_date"] >= "2025-07-01") & (tx["order_date"] < "2025-10-01")]
    assert card.query("kpi == 'revenue'")["value"].sum() == pytest.approx(q3["revenue"].sum())


def test_level_and_unit_filter(demo, probabilities):
    app = PipelineApp(demo, probabilities=probabilities)
    app.level.value = "team"
    assert app.unit.value == ALL
    teams = sorted(demo["reps"]["team"].unique())
    assert list(app.unit.options) == [ALL, *teams]
    assert set(app.result["scorecard"]["unit"]) == set(teams)
    app.unit.value = "North Team"
    north = set(demo["reps"].loc[demo["reps"]["team"] == "North Team", "rep_id"])
    assert set(app.result["scorecard"]["unit"]) == {"North Team"}
    assert set(app.result["appraisal"]["unit"]) == north
    assert set(app.result["coaching"]["rep_id"]) <= north
    opps = demo["opportunities"]
    mine = opps[opps["rep_id"].isin(north) & (opps["created_date"].dt.year == 2025)]
    assert app.result["funnel"]["entered"].iloc[0] == len(mine)
    assert set(app.result["aging"]["rep_id"]) <= north
    assert set(app.result["forecast"]["team"]) == {"North Team"}
    north_open = opps[opps["rep_id"].isin(north) & (opps["status"] == "open")]
    assert app.result["forecast_categories"]["amount"].sum() == pytest.approx(north_open["amount"].sum())
    assert set(app.result["velocity"].columns) >= {"period", "velocity", "moved_most"}
    # The appraisal is the package's, for the reps of the unit.
    card = pf.scorecard(demo, period="2025", level="rep", units=sorted(north))
    expected = pf.appraisal_totals(pf.appraise(card)).set_index("unit")["score"]
    got = app.result["appraisal"].set_index("unit")["score"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index())
    app.level.value = "company"
    assert list(app.unit.options) == [ALL]
    assert set(app.result["scorecard"]["unit"]) == {"all"}


def test_transactions_only_says_what_to_add(demo):
    tx = demo["transactions"][["order_date", "customer_id", "revenue"]]
    app = PipelineApp({"transactions": tx})
    assert app.result["error"] == ""
    assert list(app.level.options) == ["company"]
    assert app.result["notes"]["funnel"] == "Add an opportunities table to see the funnel."
    for section in ("funnel", "aging", "velocity", "forecast", "attainment", "appraisal", "coaching"):
        assert app.result[section] is None and app.result["notes"][section], section
        assert app.result["notes"][section] in app.html[section].value.replace("&#x27;", "'")
    card = app.result["scorecard"]
    assert set(card["kpi"]) == {"revenue", "growth", "new_customers", "retention"}
    assert card.query("kpi == 'revenue'")["value"].iloc[0] == pytest.approx(
        tx.loc[tx["order_date"].dt.year == 2025, "revenue"].sum())


def test_partial_data_appraisal_rescales_the_scheme(demo, probabilities):
    tables = {k: v for k, v in demo.items() if k != "feedback"}
    app = PipelineApp(tables, probabilities=probabilities)
    assert app.result["error"] == ""
    parts = app.result["appraisal_components"]
    assert "satisfaction" not in set(parts["kpi"])
    assert parts.groupby("unit")["weight"].sum().round(9).eq(1.0).all()
    assert "leaves out satisfaction" in app.result["notes"]["appraisal"]


def test_bad_source_is_shown_not_raised(tmp_path):
    app = PipelineApp.from_source(tmp_path / "nothing-here.csv")
    assert app.result["error"] and app.errors.level == "error"


def test_period_options_skip_incomplete_periods():
    tx = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-05", "2025-08-15"]), "customer_id": ["a", "b"],
                       "revenue": [1.0, 2.0]})
    # 2025 ends in August: not a whole year, and its third quarter is not over.
    assert period_options({"transactions": tx}) == [
        "2024", "2025-Q2", "2025-Q1", "2024-Q4", "2024-Q3", "2024-Q2", "2024-Q1"]


def test_notebook_runs_on_a_transactions_only_folder(tmp_path, demo):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    folder = tmp_path / "company"
    folder.mkdir()
    tx = demo["transactions"][["order_date", "customer_id", "revenue"]].head(5000)
    tx.to_csv(folder / "transactions.csv", index=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ, SALESPLAN_DATA=str(folder))
    old = os.environ.get("SALESPLAN_DATA")
    os.environ["SALESPLAN_DATA"] = str(folder)  # the kernel inherits the environment
    try:
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                                         resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        client.execute(env=env)
    finally:
        if old is None:
            os.environ.pop("SALESPLAN_DATA", None)
        else:
            os.environ["SALESPLAN_DATA"] = old
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e['ename']}: {e['evalue']}" for e in errors]
    shown = json.dumps([c.outputs for c in nb.cells if c.cell_type == "code"])
    assert "Add an opportunities table to see the funnel." in shown
