"""Tests for the Excel round trip of plans (salesplan.targets.excel via salesplan.targets.plans)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.targets.allocation import Allocator
from salesplan.targets.plans import (
    ExcelEdits,
    excel_assumptions,
    export_excel,
    load_plan,
    load_plan_excel,
    make_plan,
    plan_checksum,
    save_plan,
)

MONTHS = pd.date_range("2026-01-01", periods=12, freq="MS")
LABELS = [f"{m:%b %Y}" for m in MONTHS]
# Three reps in two teams in one region; r3 sells twice as much in the second half.
MONTHLY = {"r1": [10.0] * 12, "r2": [20.0] * 12, "r3": [30.0] * 6 + [60.0] * 6}
ORG = pd.DataFrame({"rep_id": ["r1", "r2", "r3"], "name": ["Ann Lee", "Bob Stone", "Chen Wei"],
                    "team": ["T1", "T1", "T2"], "region": ["North", "North", "North"]})


def _rep_frame(monthly=MONTHLY) -> pd.DataFrame:
    return pd.DataFrame([(u, m, v) for u, vals in monthly.items() for m, v in zip(MONTHS, vals)],
                        columns=["unique_id", "ds", "value"])


def org_plan(monthly=MONTHLY) -> "object":
    """Levels rep, team, region, company; each level above the reps is their sum."""
    rep = _rep_frame(monthly)
    team_of = dict(zip(ORG["rep_id"], ORG["team"]))
    team = (rep.assign(unique_id=rep["unique_id"].map(team_of))
            .groupby(["unique_id", "ds"], as_index=False)["value"].sum())
    region = rep.groupby("ds", as_index=False)["value"].sum().assign(unique_id="North")
    company = region.assign(unique_id="all")
    parents = {**team_of, "T1": "North", "T2": "North"}
    return make_plan("org", {"rep": rep, "team": team, "region": region, "company": company}, parents=parents,
                     parameters={"method": "equal_probability", "growth": 0.08, "total": float(rep["value"].sum())},
                     inputs={"reps": ORG}, extra=pd.DataFrame({"unique_id": ["r1", "r2", "r3"],
                                                              "probability": [0.81, 0.5, 0.253]}))


def rep_plan(monthly=MONTHLY):
    return make_plan("reps", {"rep": _rep_frame(monthly)}, parameters={"total": float(sum(map(sum, monthly.values())))})


def at(ws, unit: str, column: str) -> str:
    """The coordinate of ``unit``'s cell in the column headed ``column`` (found like a person would)."""
    header = {c.value: c.column_letter for c in ws[1]}
    key_col = ws.cell(row=1, column=[c.value for c in ws[1]].index(ws.title.capitalize()) + 1).column_letter
    rows = {ws[f"{key_col}{r}"].value: r for r in range(2, ws.max_row + 1)}
    return f"{header[column]}{rows[unit]}"


def edited(src: Path, dst: Path, edit) -> Path:
    wb = openpyxl.load_workbook(src)
    edit(wb)
    wb.save(dst)
    return dst


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- export
def test_export_is_a_workbook_a_manager_can_edit(tmp_path):
    plan = org_plan()
    save_plan(plan, plan_dir=tmp_path / "plans", user="ann")
    out = export_excel(plan, tmp_path / "org.xlsx", names=ORG, assumptions={"Owner": "Sales ops"})
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["rep", "team", "region", "company", "Assumptions"]
    rep = wb["rep"]
    header = [c.value for c in rep[1]]
    assert header == ["Region", "Team", "Rep", "Name", *LABELS, "Total", "Attainment probability"]
    assert [[c.value for c in row[:4]] for row in rep.iter_rows(min_row=2, max_row=4)] == [
        ["North", "T1", "r1", "Ann Lee"], ["North", "T1", "r2", "Bob Stone"], ["North", "T2", "r3", "Chen Wei"]]
    assert rep.freeze_panes == "E2"  # header and the id columns stay in view
    assert rep["E2"].value == 10 and rep["E2"].number_format == "#,##0"
    assert rep["Q2"].value == "=SUM(E2:P2)" and rep["Q2"].number_format == "#,##0"
    assert rep["C5"].value == "Total" and rep["E5"].value == "=SUM(E2:E4)" and rep["Q5"].value == "=SUM(Q2:Q4)"
    assert [rep[f"R{r}"].value for r in (2, 3, 4)] == [0.81, 0.5, 0.253] and rep["R2"].number_format == "0%"
    assert rep.column_dimensions["D"].width >= len("Bob Stone") + 2
    assert rep.column_dimensions["R"].width >= len("Attainment probability")
    # Teams add up their reps on the rep sheet, the region its teams, the company its region.
    team = wb["team"]
    assert [c.value for c in team[1]][:3] == ["Region", "Team", "Jan 2026"]
    assert team["C2"].value == "=SUM('rep'!E2:E3)" and team["C3"].value == "=SUM('rep'!E4)"
    assert wb["region"]["B2"].value == "=SUM('team'!C2:C3)"
    assert wb["company"]["B2"].value == "=SUM('region'!B2)"
    # Viewers that do not recalculate still see every total.
    sheets = pd.read_excel(out, sheet_name=None)
    total = plan.parameters["total"]
    for level in ("rep", "team", "region", "company"):
        assert sheets[level]["Total"].iloc[-1] == total
    assert sheets["team"].set_index("Team").loc["T2", "Jul 2026"] == 60
    about = dict(zip(sheets["Assumptions"]["Assumption"], sheets["Assumptions"]["Value"]))
    assert about["Plan"] == "org" and about["Version"] == 1 and about["Created by"] == "ann"
    assert about["Created at"] == plan.metadata["created_at"] and about["Plan period"] == "2026-01 to 2026-12"
    assert about["Method"] == "equal_probability" and about["Growth"] == 0.08 and about["Total"] == total
    assert about["Data fingerprint"] == plan.metadata["fingerprint"] and about["Owner"] == "Sales ops"
    assert about["Plan checksum"] == plan_checksum(plan)
    growth_row = next(r for r in wb["Assumptions"].iter_rows(min_row=2) if r[0].value == "Growth")
    assert growth_row[1].number_format == "0%"


def test_old_call_and_levels_still_work(tmp_path):
    plan = org_plan()
    out = export_excel(plan, tmp_path / "a" / "x.xlsx")
    assert out == tmp_path / "a" / "x.xlsx" and not list(out.parent.glob(".*"))
    only = export_excel(plan, tmp_path / "rep.xlsx", levels=["rep"])
    assert load_plan_excel(only, plan).empty  # the levels exported are named on the Assumptions sheet
    wb = openpyxl.load_workbook(only)
    assert wb.sheetnames == ["rep", "Assumptions"]
    assert "Name" not in [c.value for c in wb["rep"][1]]  # no names given: no empty column
    with pytest.raises(SalesplanError, match="no rows at level"):
        export_excel(plan, tmp_path / "y.xlsx", levels=["segment"])
    with pytest.raises(SalesplanError, match=r"probabilities must be in \[0, 1\]"):
        export_excel(plan, tmp_path / "y.xlsx", probabilities={"r1": 81})


def test_probabilities_from_a_planner_frame_and_names_by_id(tmp_path):
    plan = rep_plan()
    probs = pd.DataFrame({"level": ["rep", "rep"], "unique_id": ["r1", "r3"], "quota": [1.0, 2.0],
                          "probability": [0.9, 0.4]})
    wb = openpyxl.load_workbook(export_excel(plan, tmp_path / "x.xlsx", probabilities=probs,
                                             names={"r1": "Ann", "r2": "Bob"}))
    ws = wb["rep"]
    assert [c.value for c in ws[1]][:2] == ["Rep", "Name"]
    assert [ws[f"B{r}"].value for r in (2, 3, 4)] == ["Ann", "Bob", None]
    assert [ws[f"P{r}"].value for r in (2, 3, 4)] == [0.9, None, 0.4]


# --------------------------------------------------------------------------- read back
@pytest.fixture(scope="module")
def org_export(tmp_path_factory):
    """The org plan and its workbook, exported once; tests edit copies."""
    plan = org_plan()
    return plan, export_excel(plan, tmp_path_factory.mktemp("org") / "org.xlsx")


def test_round_trip_without_edits_has_no_changes(tmp_path):
    plan = org_plan()
    out = export_excel(plan, tmp_path / "org.xlsx", names=ORG)
    before = (sha(out), os.stat(out).st_mtime_ns)
    edits = load_plan_excel(out, plan)
    assert isinstance(edits, ExcelEdits) and edits.empty and edits.locks == {"rep": {}}  # the others are sums
    assert len(edits.monthly_locks) == 0 and edits.sha256 == before[0]
    # The plan saved and loaded again is the same plan for the workbook...
    back = load_plan(save_plan(plan, plan_dir=tmp_path / "plans"))
    assert load_plan_excel(out, back).empty
    # ... and a workbook exported after saving names the version to load before importing it.
    saved = export_excel(back, tmp_path / "saved.xlsx")
    about = excel_assumptions(saved)
    assert (about["Plan"], about["Version"], about["Plan checksum"]) == ("org", 1, plan_checksum(plan))
    again_plan = load_plan(about["Plan"], version=about["Version"], plan_dir=tmp_path / "plans")
    assert load_plan_excel(saved, again_plan).empty
    # Saved by a program that rewrites every cell (formulas kept): still no changes.
    again = edited(out, tmp_path / "again.xlsx", lambda wb: None)
    assert load_plan_excel(again, plan).empty
    assert (sha(out), os.stat(out).st_mtime_ns) == before


def test_edit_two_cells_then_reallocate_keeps_edits_and_total(tmp_path):
    hist = pd.DataFrame([(u, ds, v) for ds in pd.date_range("2024-01-01", "2025-12-01", freq="MS")
                         for u, v in (("a", 10.0), ("b", 30.0), ("c", 20.0 if ds.month <= 6 else 40.0))],
                        columns=["unique_id", "ds", "y"])
    alloc = Allocator(period=2026).fit(hist)
    res = alloc.allocate(840)  # last year's total: a sells 10 a month, c 40 in July
    phased = alloc.phase(res)
    company = phased.groupby("ds", as_index=False)["value"].sum().assign(unique_id="all")
    plan = make_plan("base", {"rep": phased, "company": company}, parameters={"total": 840.0},
                     extra=res[["unique_id", "probability"]])
    out = export_excel(plan, tmp_path / "base.xlsx")
    before = sha(out)

    def edit(wb):
        ws = wb["rep"]
        ws[at(ws, "a", "Mar 2026")] = 55  # was 10
        ws[at(ws, "c", "Jul 2026")] = 0  # was 40

    path = edited(out, tmp_path / "edited.xlsx", edit)
    path_sha = sha(path)
    edits = load_plan_excel(path, plan)
    assert sha(out) == before and sha(path) == path_sha  # neither file is written
    ch = edits.changes
    assert ch[["sheet", "cell", "unique_id", "month", "old", "new", "change"]].values.tolist() == [
        ["rep", "D2", "a", "Mar 2026", 10.0, 55.0, 45.0], ["rep", "H4", "c", "Jul 2026", 40.0, 0.0, -40.0]]
    assert ch["ds"].tolist() == [pd.Timestamp("2026-03-01"), pd.Timestamp("2026-07-01")]
    assert edits.locks == {"rep": {"a": 120.0 + 45.0, "c": 360.0 - 40.0}}

    again = alloc.allocate(840, locks=edits.locks["rep"])
    q = again.set_index("unique_id")["quota"]
    assert q["a"] == 165.0 and q["c"] == 320.0 and q.sum() == 840.0 and q["b"] == 840.0 - 165.0 - 320.0
    rephased = edits.apply_months(alloc.phase(again), level="rep")
    cell = rephased.set_index(["unique_id", "ds"])["value"]
    assert cell[("a", pd.Timestamp("2026-03-01"))] == 55.0 and cell[("c", pd.Timestamp("2026-07-01"))] == 0.0
    assert rephased.groupby("unique_id")["value"].sum().to_dict() == q.to_dict()
    assert rephased["value"].sum() == 840.0


def test_typed_totals_that_hold_and_formulas_in_cells_are_accepted(org_export, tmp_path):
    plan, out = org_export

    def edit(wb):
        ws = wb["rep"]
        ws[at(ws, "r1", "Jan 2026")] = f"={at(ws, 'r2', 'Jan 2026')}*2+ROUND(0.4,0)"  # 20*2 + 0 = 40
        ws[at(ws, "r1", "Total")] = 40 + 11 * 10  # typed, and it holds
        ws[at(ws, "Total", "Jan 2026")] = "=D2+D3+D4"  # a different formula, same sum
        wb["team"]["C2"] = 60  # typed over the team's formula: T1's reps now add up to 40 + 20

    edits = load_plan_excel(edited(out, tmp_path / "e.xlsx", edit), plan)
    assert edits.changes[["cell", "unique_id", "old", "new"]].values.tolist() == [["D2", "r1", 10.0, 40.0]]
    assert edits.locks == {"rep": {"r1": 150.0}}
    ml = edits.monthly_locks
    assert len(ml) == 12 and ml["changed"].sum() == 1 and ml["value"].sum() == 150.0


def _problems(path, plan) -> pd.DataFrame:
    with pytest.raises(SalesplanDataError) as info:
        load_plan_excel(path, plan)
    probs = info.value.problems
    assert list(probs.columns) == ["sheet", "cell", "unit", "month", "message"]
    for line in probs.itertuples():  # the message lists every problem, by cell
        assert f"Sheet {line.sheet!r}, cell {line.cell}" in str(info.value)
    return probs


BAD_EDITS = {
    "text": (lambda wb: wb["rep"].__setitem__("E3", "abc"),
             "rep", "E3", r"^Sheet 'rep', cell E3 \(r2, Feb 2026\): 'abc' is not a number"),
    "number as text": (lambda wb: wb["rep"].__setitem__("E3", "1,200"), "rep", "E3", "is text, not a number"),
    "negative": (lambda wb: wb["rep"].__setitem__("F4", -5), "rep", "F4", r"\(r3, Mar 2026\): -5 is negative"),
    "empty": (lambda wb: wb["rep"].__setitem__("F4", None), "rep", "F4", "empty; type 0"),
    "date": (lambda wb: wb["rep"].__setitem__("F4", pd.Timestamp("2026-03-01").to_pydatetime()), "rep", "F4",
             "is a date"),
    "annual total typed": (lambda wb: wb["rep"].__setitem__("P2", 999), "rep", "P2",
                           r"\(r1, Total\): 999 was typed over the SUM formula, but the months add up to 120"),
    "totals row typed": (lambda wb: wb["rep"].__setitem__("D5", 1), "rep", "D5",
                         r"\(Total, Jan 2026\): 1 was typed over the SUM formula, but the units add up to 60"),
    "totals formula changed": (lambda wb: wb["rep"].__setitem__("D5", "=SUM(D2:D3)"), "rep", "D5",
                               "gives 30, but the units add up to 60"),
    "team typed": (lambda wb: wb["team"].__setitem__("C3", 31), "team", "C3",
                   r"\(T2, Jan 2026\): 31 was typed over the SUM formula, but the reps of T2 on sheet 'rep' "
                   "add up to 30"),
    "formula not checkable": (lambda wb: wb["rep"].__setitem__("E2", "=VLOOKUP(1,A1:B2,2)"), "rep", "E2",
                              "cannot be checked: it uses VLOOKUP"),
    "circular": (lambda wb: wb["rep"].__setitem__("E2", "=P2"), "rep", "E2", "circular reference"),
    "unit id changed": (lambda wb: wb["rep"].__setitem__("C3", "r9"), "rep", "C3", "'r9' is not in the plan"),
    "month renamed": (lambda wb: wb["rep"].__setitem__("F1", "Budget"), "rep", "F1",
                      "should read 'Mar 2026' but reads 'Budget'"),
    "row deleted": (lambda wb: wb["rep"].delete_rows(3), "rep", "C3", "unit 'r2' is missing: its row 3 was deleted"),
    "rows sorted": (lambda wb: [wb["rep"].__setitem__(c, v) for c, v in (("C2", "r2"), ("C3", "r1"))], "rep", "C2",
                    "should hold 'r1' but holds 'r2'"),
    "column inserted": (lambda wb: wb["rep"].insert_cols(6), "rep", "F1", "should read 'Mar 2026' but reads nothing"),
    "sheet deleted": (lambda wb: wb.remove(wb["team"]), "team", "-", "the sheet is missing"),
    "total is text": (lambda wb: wb["team"].__setitem__("O2", "abc"), "team", "O2",
                      r"\(T1, Total\): 'abc' is not a number.*; the months add up to 360"),
    "row added below the totals": (lambda wb: wb["rep"].append(["North", "T2", "r4", *[5] * 12]), "rep", "C6",
                                   r"\(r4\): numbers below the totals row are not part of the plan"),
}


@pytest.mark.parametrize("kind", list(BAD_EDITS))
def test_each_bad_edit_is_reported_with_its_cell(org_export, tmp_path, kind):
    plan, out = org_export
    edit, sheet, cell, pattern = BAD_EDITS[kind]
    path = edited(out, tmp_path / "bad.xlsx", edit)
    before = sha(path)
    probs = _problems(path, plan)
    hit = probs[(probs["sheet"] == sheet) & (probs["cell"] == cell)]
    assert len(hit) >= 1, probs.to_string()
    texts = [f"Sheet {r.sheet!r}, cell {r.cell}" + (f" ({', '.join(x for x in (r.unit, r.month) if x)})"
                                                    if (r.unit or r.month) else "") + f": {r.message}"
             for r in hit.itertuples()]
    assert any(pd.Series([t]).str.contains(pattern, regex=True).iloc[0] for t in texts), texts
    assert sha(path) == before
    if kind == "sheet deleted":  # the levels above follow once it is back: one line, not one per cell
        assert probs["sheet"].tolist() == ["team"]


def test_every_bad_cell_is_listed_at_once(org_export, tmp_path):
    plan, out = org_export

    def edit(wb):
        wb["rep"]["D3"] = "abc"
        wb["rep"]["E4"] = -1
        wb["rep"]["F2"] = 11
        wb["rep"]["P2"] = 5  # r1's total cell, typed: months add up to 121 after F2
        wb["team"]["D3"] = 7  # T2's Feb, typed: r3 is bad, so T2's Feb cannot be checked...
        wb["team"]["E2"] = 1  # ... but T1's Mar can: r1 + r2 = 11 + 20

    probs = _problems(edited(out, tmp_path / "bad.xlsx", edit), plan)
    assert probs[["sheet", "cell"]].values.tolist() == [
        ["rep", "D3"], ["rep", "E4"], ["rep", "P2"], ["team", "E2"]]
    assert "months add up to 121" in probs.loc[2, "message"] and "add up to 31" in probs.loc[3, "message"]


def test_workbook_from_another_plan_or_not_a_workbook_is_refused(org_export, tmp_path):
    plan, out = org_export
    other = org_plan({**MONTHLY, "r1": [11.0] * 12})
    with pytest.raises(SalesplanError, match="was exported from another plan"):
        load_plan_excel(out, other)
    junk = tmp_path / "junk.xlsx"
    junk.write_text("not a zip")
    with pytest.raises(SalesplanError, match="is not an Excel workbook"):
        load_plan_excel(junk, plan)
    with pytest.raises(SalesplanError, match="cannot read the workbook"):
        load_plan_excel(tmp_path / "missing.xlsx", plan)


def test_apply_months_needs_the_locked_cells(tmp_path):
    plan = rep_plan()
    out = export_excel(plan, tmp_path / "r.xlsx")
    edits = load_plan_excel(edited(out, tmp_path / "e.xlsx", lambda wb: wb["rep"].__setitem__("B2", 0)), plan)
    phased = _rep_frame()
    got = edits.apply_months(phased)
    assert got.loc[0, "value"] == 0 and phased.loc[0, "value"] == 10  # the caller's frame is untouched
    pdt.assert_frame_equal(got.iloc[1:], phased.iloc[1:])
    with pytest.raises(SalesplanError, match="phased has no row for 12 locked cell"):
        edits.apply_months(phased[phased["unique_id"] != "r1"])


# --------------------------------------------------------------------------- invariants
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    plan = rep_plan()
    return plan, export_excel(plan, tmp_path_factory.mktemp("xl") / "reps.xlsx")


_values = st.one_of(st.integers(0, 10**7).map(float),
                    st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 2)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.tuples(st.sampled_from(["r1", "r2", "r3"]), st.integers(0, 11)), _values, max_size=8))
def test_random_valid_edits_come_back_as_the_locks(exported, tmp_path_factory, cells):
    plan, out = exported
    old = {u: list(v) for u, v in MONTHLY.items()}
    new = {u: list(v) for u, v in MONTHLY.items()}
    path = tmp_path_factory.mktemp("h") / "e.xlsx"
    shutil.copy(out, path)
    wb = openpyxl.load_workbook(path)
    ws = wb["rep"]
    for (u, m), v in cells.items():
        ws[at(ws, u, LABELS[m])] = v
        new[u][m] = v
    wb.save(path)
    edits = load_plan_excel(path, plan)
    want = {(u, m): new[u][m] for u in new for m in range(12) if new[u][m] != old[u][m]}
    got = {(r.unique_id, LABELS.index(r.month)): r.new for r in edits.changes.itertuples()}
    assert got == want
    assert (edits.changes["new"] - edits.changes["old"]).tolist() == edits.changes["change"].tolist()
    assert edits.locks["rep"] == pytest.approx({u: sum(new[u]) for u in {u for u, _ in want}}, rel=1e-12)
    assert sorted(edits.monthly_locks["unique_id"].unique()) == sorted({u for u, _ in want})
