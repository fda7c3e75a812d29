"""Tests for salesplan.ui.planner.TargetPlanner: state driven through widget values, no browser."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

from salesplan.ui import TargetPlanner  # noqa: E402
from salesplan.ui._common import ErrorArea, PlotArea  # noqa: E402

REPS = ["r1", "r2", "r3", "r4"]
MONTHS_2026 = pd.date_range("2026-01-01", periods=12, freq="MS")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    days = pd.date_range("2023-01-01", "2025-12-31", freq="D").to_numpy()
    n = 4000
    rep = rng.choice(REPS, n, p=[0.1, 0.2, 0.3, 0.4])
    tx = pd.DataFrame({
        "order_date": pd.to_datetime(rng.choice(days, n)),
        "order_id": [f"o{i}" for i in range(n)],
        "customer_id": rng.integers(0, 300, n).astype(str),
        "rep_id": rep,
        "region": np.where(np.isin(rep, ["r1", "r2"]), "North", "South"),
        "revenue": rng.gamma(2.0, 50.0, n),
    })
    reps = pd.DataFrame({"rep_id": REPS, "team": ["T1", "T1", "T2", "T2"],
                         "region": ["North", "North", "South", "South"],
                         "start_date": pd.to_datetime(["2019-01-01"] * 4)})
    last = tx[tx["order_date"] >= "2025-01-01"].groupby("rep_id")["revenue"].sum()
    parts = []
    for r in REPS:  # seeded sample paths around last year's level, +-15 % per path
        lvl = rng.lognormal(0, 0.15, 300)[:, None] * last[r] / 12 * rng.lognormal(0, 0.05, (300, 12))
        parts.append(pd.DataFrame({"unique_id": r, "ds": np.tile(MONTHS_2026.to_numpy(), 300),
                                   "sample": np.repeat(np.arange(300), 12), "y": lvl.reshape(-1)}))
    paths = pd.concat(parts, ignore_index=True)
    opps = pd.DataFrame({
        "opportunity_id": ["w", "l", "o1", "o2"], "customer_id": ["c"] * 4, "rep_id": ["r1", "r2", "r1", "r3"],
        "amount": [10.0, 10.0, 1000.0, 500.0], "created_date": pd.to_datetime(["2025-01-01"] * 4),
        "stage": ["won", "lost", "proposal", "negotiation"], "status": ["won", "lost", "open", "open"],
        "close_date": pd.to_datetime(["2025-02-01", "2025-03-01", "2026-03-01", "2026-04-01"]),
    })
    return tx, reps, paths, opps


@pytest.fixture
def app(data, tmp_path):
    tx, reps, paths, _ = data
    # snaive: the company-level forecast the SMART check needs is then quick to simulate.
    return TargetPlanner(tx, reps=reps, forecast=paths, plan_dir=tmp_path / "plans", growth=0.05,
                         method="historical_share", model="snaive")


def _quotas(app) -> pd.Series:
    return app.result.set_index("unique_id")["quota"]


def test_initial_state_is_a_valid_plan(app):
    assert app.errors.message == ""
    assert list(app.result["unique_id"]) == REPS
    assert app.total.value == round(app.base * 1.05)
    assert app.result["quota"].sum() == app.total.value
    assert app.forecast_source["rep"].startswith("forecast=")
    assert app.period.value == 2026 and app.level.value == "rep"
    assert set(app.phased["ds"]) == set(MONTHS_2026)
    assert app.phased.groupby("unique_id")["value"].sum().to_dict() == _quotas(app).to_dict()
    assert app.container.children  # a displayable page


def test_growth_and_total_are_linked(app):
    app.growth.value = 0.10
    assert app.growth_box.value == 0.10
    assert app.total.value == round(app.base * 1.10)
    assert app.result["quota"].sum() == app.total.value
    app.total.value = round(app.base * 1.2)
    assert app.growth.value == pytest.approx(0.2, abs=1e-4)  # the total is whole units
    assert app.result["quota"].sum() == app.total.value
    app.price_change.value = 0.1  # growth stays, total moves with the price
    assert app.total.value == round(app.base * (1 + app.growth.value) * 1.1)


def test_equal_probability_method_equalises_attainment(app):
    app.method.value = "historical_share"
    spread_hist = np.ptp(app.result["probability"])
    app.method.value = "equal_probability"
    p = app.result["probability"]
    assert np.ptp(p) < 0.01 < spread_hist
    assert app.result["quota"].sum() == app.total.value


def test_editing_a_unit_locks_it_and_the_rest_moves(app):
    app.row("r2").value.value = 12345.0
    assert app.row("r2").lock.value is True and app.locks == {"r2": 12345.0}
    assert _quotas(app)["r2"] == 12345.0
    app.growth.value = 0.15
    q = _quotas(app)
    assert q["r2"] == 12345.0 and q.sum() == app.total.value
    assert app.result.set_index("unique_id").loc["r2", "locked"]
    app.unlock_all()
    assert not app.result["locked"].any() and _quotas(app)["r2"] != 12345.0
    assert app.row("r2").value.value == _quotas(app)["r2"]  # the grid shows the new number
    app.row("r4").lock.value = True  # ticking a lock keeps the current number
    kept = _quotas(app)["r4"]
    app.growth.value = 0.3
    assert _quotas(app)["r4"] == kept and app.locks == {"r4": kept}


def test_errors_are_shown_as_text_not_raised(app):
    good = app.result.copy()
    app.lock("r1", 10 * app.total.value)
    assert app.errors.level == "error"
    assert "is below what is locked" in app.errors.message and "Traceback" not in app.errors.message
    assert "Raise the total" in app.errors.value
    pd.testing.assert_frame_equal(app.result[["unique_id"]], good[["unique_id"]])  # last valid plan kept
    app.unlock_all()
    assert app.errors.message == ""
    app.total.value = -5
    assert "non-negative" in app.errors.message
    app.total.value = 1000
    app.stretch.value, app.sandbag.value = 0.8, 0.5
    assert "stretch threshold (0.80) must be below" in app.errors.message


def test_year_outside_the_forecast_horizon_is_explained(app):
    app.period.value = 2027
    assert "outside the forecast horizon" in app.errors.message
    app.period.value = 2026
    assert app.errors.ok and app.result["quota"].sum() == app.total.value


def test_level_switch_computes_that_level_forecast_once(data, tmp_path):
    tx, reps, paths, _ = data
    app = TargetPlanner(tx, reps=reps, forecast=paths, plan_dir=tmp_path, model="snaive")
    app.level.value = "region"
    assert list(app.result["unique_id"]) == ["North", "South"]
    # A level without given paths gets the joint paths of its units and the company, reconciled.
    assert app.forecast_source["region"].startswith("joint paths of every region")
    first = app._joint[("region", 2026)]["totals"]
    app.growth.value = 0.2
    assert app._joint[("region", 2026)]["totals"] is first  # not recomputed on a change
    assert app.result["quota"].sum() == app.total.value
    assert [slot.key for slot in app._slots if slot.key] == ["North", "South"]
    assert app.locks == {}


def test_charts_and_smart_follow_the_state(app):
    app.method.value = "equal_probability"
    fig = app.figures["quotas"]
    assert list(fig.data[0].y) == app.result["quota"].tolist()
    assert list(app.figures["probability"].data[0].y) == pytest.approx(app.result["probability"].tolist())
    assert sum(app.figures["phasing"].data[0].y) == pytest.approx(app.total.value)
    smart = app.smart.set_index("letter")
    assert list(smart.index) == list("SMART")
    assert smart.loc["R", "verdict"] == "flag"
    app.strategy.value = "expand region South"
    assert app.smart.set_index("letter").loc["R", "verdict"] == "pass"
    p_before = app.smart.set_index("letter").loc["A", "value"]
    app.growth.value = 0.5
    assert app.smart.set_index("letter").loc["A", "value"] < p_before
    assert app.smart.set_index("letter").loc["A", "verdict"] == "flag"


def test_save_versions_and_export(app, tmp_path):
    app.method.value = "equal_probability"
    app.lock("r3", 5000)
    p1 = app.save()
    p2 = app.save()
    assert (p1.name, p2.name) == ("plan_2026_v1.json", "plan_2026_v2.json")
    doc = json.loads(p1.read_text())
    assert doc["parameters"]["method"] == "equal_probability" and doc["parameters"]["locks"] == {"r3": 5000.0}
    assert doc["metadata"]["fingerprint"] and doc["metadata"]["user"]
    assert "Saved" in app.errors.message and app.errors.level == "info"
    out = app.export()
    sheets = pd.read_excel(out, sheet_name=None)
    assert {"rep", "team", "region", "company", "Assumptions"} <= set(sheets)
    for level in ("rep", "team", "region", "company"):  # every level adds up to the total
        assert sheets[level]["Total"].iloc[-1] == app.total.value
    team = sheets["team"].set_index("Team")
    assert team.loc["T2", "Region"] == "South" and team.loc["T2", "Total"] == _quotas(app)[["r3", "r4"]].sum()
    rep = sheets["rep"].set_index("Rep")
    assert rep.loc["r3", "Team"] == "T2"
    # each unit's probability, from the same joint paths as the page
    probs = app.probabilities.set_index(["level", "unique_id"])["probability"]
    assert rep.loc["r3", "Attainment probability"] == pytest.approx(probs[("rep", "r3")], abs=1e-9)


def test_bottom_up_column_with_opportunities(data, tmp_path):
    tx, reps, paths, opps = data
    app = TargetPlanner(tx, reps=reps, forecast=paths, opportunities=opps, plan_dir=tmp_path, model="snaive")
    assert app.errors.ok, app.errors.message
    r = app.result.set_index("unique_id")
    assert {"bottom_up", "gap"} <= set(r.columns)
    assert r.loc["r1", "gap"] == pytest.approx(r.loc["r1", "quota"] - r.loc["r1", "bottom_up"])


def test_win_rate_what_if_moves_the_bottom_up(data, tmp_path):
    tx, reps, paths, opps = data
    app = TargetPlanner(tx, reps=reps, forecast=paths, opportunities=opps, plan_dir=tmp_path, model="snaive")
    before = app.result.set_index("unique_id")["bottom_up"]
    app.win_rate_change.value = 0.5
    after = app.result.set_index("unique_id")["bottom_up"]
    assert after["r1"] > before["r1"] and after["r4"] == before["r4"]  # r4 has no open deals
    assert app.plan.parameters["win_rate_change"] == 0.5


def test_point_and_interval_forecast_is_accepted(data, tmp_path):
    tx, reps, _, _ = data
    fc = pd.DataFrame({"unique_id": np.repeat(REPS, 12), "ds": np.tile(MONTHS_2026, 4),
                       "ets": 1000.0, "ets-lo-80": 800.0, "ets-hi-80": 1200.0})
    app = TargetPlanner(tx, reps=reps, forecast=fc, plan_dir=tmp_path, method="forecast_share", model="snaive")
    assert app.errors.ok, app.errors.message
    assert app.result["forecast_mean"].tolist() == pytest.approx([12000.0] * 4, rel=0.01)


def test_bad_transactions_are_a_clear_error(tmp_path):
    from salesplan.errors import SalesplanDataError

    with pytest.raises(SalesplanDataError, match="missing required column.*'order_date'"):
        TargetPlanner(pd.DataFrame({"date": [1], "customer_id": ["a"]}), plan_dir=tmp_path)


def test_new_heads_get_ramped_capacity_rows(app):
    app.method.value = "equal_probability"
    before = _quotas(app)
    app.headcount.value = 2
    q = _quotas(app)
    assert app.total.value == round(app.base * 1.05 + 2 * app._productivity() * (3 * .25 + 3 * .5 + 3 * .75 + 3))
    assert q.sum() == app.total.value
    assert q[["new_hire_1", "new_hire_2"]].tolist() == pytest.approx([app._productivity() * 7.5] * 2, abs=1)
    assert q[REPS].sum() == pytest.approx(before.sum(), abs=2)  # the reps keep (about) their numbers
    months = app.phased[app.phased["unique_id"] == "new_hire_1"]["value"].to_numpy()
    assert months[0] < months[3] < months[6] < months[9]  # ramping up quarter by quarter
    sheets = {lv: t for lv, t in app.plan.table.groupby("level")}
    assert all(t["value"].sum() == app.total.value for t in sheets.values())
    assert "(no team)" in set(sheets["team"]["key"])
    app.total.value = 10
    assert "below the capacity of the 2 new hire(s)" in app.errors.message


def test_grid_pages(data, tmp_path):
    tx, reps, paths, _ = data
    app = TargetPlanner(tx, reps=reps, forecast=paths, plan_dir=tmp_path, page_size=3, model="snaive")
    assert app.page.max == 2 and [s.key for s in app._slots] == ["r1", "r2", "r3"]
    row = app.row("r4")
    assert app.page.value == 2 and row.label.value == "r4"
    assert row.value.value == _quotas(app)["r4"] and "P(reach)" in row.info.value
    assert app._slots[1].box.layout.display == "none"  # empty slots are hidden


def test_common_widgets():
    area = ErrorArea()
    with area.capture():
        raise KeyError("x")
    assert area.message.startswith("Unexpected error KeyError") and "Traceback" not in area.message
    plot = PlotArea({"data": [{"type": "bar", "x": ["a"], "y": [np.nan]}], "layout": {}})
    bundle = plot.children[0].outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert bundle["data"][0]["y"] == [None]  # JSON-safe
    assert plot.figure.data[0].type == "bar"


def test_given_paths_are_the_joint_paths(app):
    """With forecast= paths, every node's probability is counted on those paths (teams, regions their sums)."""
    app.method.value = "equal_probability"
    smp, probs = app.samples, app.probabilities
    assert set(probs["level"]) == {"rep", "team", "region", "company"}
    for row in probs.itertuples():
        y = smp.loc[(smp["level"] == row.level) & (smp["unique_id"] == row.unique_id), "y"].to_numpy()
        assert len(y) == 300 and row.probability == pytest.approx(float((y >= row.quota - 1e-6).mean()))
    team = smp[smp["unique_id"].isin(["r1", "r2"])].groupby("sample")["y"].sum().to_numpy()
    np.testing.assert_allclose(smp.loc[smp["unique_id"] == "T1", "y"].to_numpy(), team)
    assert app.smart.set_index("letter").loc["A", "value"] == pytest.approx(
        probs.loc[probs["level"] == "company", "probability"].item())


def test_excel_round_trip_locks_the_edited_units(app, tmp_path):
    import openpyxl

    total = app.total.value
    out = app.export(tmp_path / "plan.xlsx")
    book = openpyxl.load_workbook(out)
    sheet = book["rep"]
    header = [c.value for c in sheet[1]]
    row = next(r for r in range(2, sheet.max_row + 1) if sheet.cell(r, header.index("Rep") + 1).value == "r3")
    first_month = header.index("Name") + 2 if "Name" in header else header.index("Rep") + 2
    old = sheet.cell(row, first_month).value
    sheet.cell(row, first_month).value = old + 1200
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    changes = app.import_excel(edited)
    assert app.errors.level == "info", app.errors.message
    assert list(changes["unique_id"]) == ["r3"] and changes["change"].iloc[0] == pytest.approx(1200)
    assert "r3" in app.locks
    quotas = _quotas(app)
    assert quotas["r3"] == pytest.approx(app.locks["r3"])
    assert quotas.sum() == pytest.approx(total)  # the rest re-allocated; the total holds


def test_excel_with_bad_edit_is_refused_cell_by_cell(app, tmp_path):
    import openpyxl

    out = app.export(tmp_path / "plan.xlsx")
    book = openpyxl.load_workbook(out)
    book["rep"]["E2"] = "lots"
    book.save(tmp_path / "bad.xlsx")
    before = _quotas(app)
    assert app.import_excel(tmp_path / "bad.xlsx") is None
    assert app.errors.level == "error" and "E2" in app.errors.message and "not a number" in app.errors.message
    pd.testing.assert_series_equal(_quotas(app), before)
