"""Tests of the review report and the ``salesplan review`` command."""

from __future__ import annotations

import doctest
import json
import re

import pandas as pd
import pytest
from openpyxl import load_workbook

import salesplan.report as report_mod
from salesplan.cli import main
from salesplan.errors import SalesplanError
from salesplan.io import load_data
from salesplan.report import (
    DEFAULT_PLAN,
    SECTIONS,
    bridge,
    build_review,
    default_period,
    load_plan,
    report_html,
    waterfall_svg,
    write_report,
)


@pytest.fixture(scope="module")
def demo():
    return load_data(None)


@pytest.fixture(scope="module")
def demo_review(demo):
    return build_review(demo, period="2025-Q4")


@pytest.fixture
def tx_only(tmp_path, demo):
    folder = tmp_path / "tx_only"
    folder.mkdir()
    tx = demo["transactions"][["order_date", "customer_id", "revenue"]]
    tx = tx[tx["order_date"] >= "2025-01-01"]
    tx.to_csv(folder / "transactions.csv", index=False)
    return folder


def test_demo_review_has_every_section_and_the_parts_add_up(demo, demo_review):
    r = demo_review
    assert r.window.label == "2025-Q4"
    assert set(r.tables) == {*SECTIONS, "accuracy_history"} and r.notes == {}
    k = r.tables["kpis"]
    company = k[k["level"] == "company"].iloc[0]
    tx = demo["transactions"]
    inside = tx[(tx["order_date"] >= "2025-10-01") & (tx["order_date"] <= "2025-12-31")]
    assert company["actual"] == pytest.approx(inside["revenue"].sum())
    b = bridge(r.tables["variance"])
    changes = b.loc[b["kind"] == "change", "value"].sum()
    assert changes == pytest.approx(b["value"].iloc[-1] - b["value"].iloc[0], abs=1e-6)
    p = r.tables["problems"]
    assert (p["impact"] < 0).all() and p["impact"].is_monotonic_increasing
    assert p["action"].str.contains("by the end of 2026-Q1").all()
    pvm = p[p["source"] == "price_volume_mix"]
    assert len(pvm) and pvm["probability"].between(0, 1).all()
    assert pvm["action"].str.contains(r"expected, \d+% likely$").all()
    pay = r.tables["payouts"]
    assert (pay["payout"] >= 0).all() and set(pay["period"]) == {pd.Timestamp("2025-10-01")}
    # the default plan's gate: nothing paid below 50 % attainment
    assert (pay.loc[pay["attainment"] < 0.5, "commission"] == 0).all()


def test_html_is_self_contained_and_formatted(tmp_path, demo_review):
    path = write_report(demo_review, tmp_path / "review.html")
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert text.count("<svg") >= 2  # attainment bars and the bridge
    for heading in SECTIONS.values():
        assert heading in text
    total = demo_review.tables["payouts"]["payout"].sum()
    assert f"{total:,.0f}" in text
    assert not re.search(r"\d\.\d+e[+-]\d\d", text)  # no scientific notation


def test_xlsx_has_a_sheet_per_section_with_numbers(tmp_path, demo_review):
    path = write_report(demo_review, tmp_path / "review.xlsx")
    book = load_workbook(path)
    assert book.sheetnames == ["summary", *demo_review.tables]
    ws = book["kpis"]
    header = [c.value for c in ws[1]]
    att = header.index("attainment") + 1
    cell = ws.cell(row=2, column=att)
    assert isinstance(cell.value, float) and cell.number_format == "0.0%"


def test_transactions_only_sections_say_what_to_add(tx_only):
    data = load_data(tx_only)
    r = build_review(data)
    assert r.window.label == "2025-Q4"
    assert "at_risk" in r.tables
    assert r.notes["kpis"] == "Add a `targets` table to see KPIs against target."
    assert "payouts" in r.notes and "problems" in r.notes
    html = report_html(r)
    assert "Add a `targets` table to see commission payouts." in html


def test_probabilities_come_from_the_units_own_quarters_and_can_be_left_out(demo):
    from salesplan.incentives import outcomes_from_history

    tx = demo["transactions"]
    sims = outcomes_from_history(tx, by="region", before="2026-01-01", n_samples=1000)
    r = build_review(demo, period="2025-Q4", samples=sims, sources=["price_volume_mix"])
    p = r.tables["problems"]
    row = p.iloc[0]
    needed = r.tables["kpis"].set_index(["level", "key"]).loc[("region", row["key"]), "actual"] + row["expected_gain"]
    draws = sims[sims["unique_id"] == row["key"]]["y"]
    assert row["probability"] == pytest.approx((draws >= needed).mean())
    none = build_review(demo, period="2025-Q4", samples=False, sources=["price_volume_mix"]).tables["problems"]
    assert none["probability"].isna().all()


def test_plan_files_and_errors(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps({**DEFAULT_PLAN, "name": "rich", "base_rate": 0.08}), encoding="utf-8")
    assert load_plan(p).base_rate == 0.08
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(SalesplanError, match="not valid JSON at line 1"):
        load_plan(bad)
    with pytest.raises(SalesplanError, match="not found"):
        load_plan(tmp_path / "missing.yaml")
    with pytest.raises(SalesplanError, match="base_rate"):
        load_plan({"name": "x", "base_rate": -1})


def test_default_period_prefers_quarters_with_targets():
    tx = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-05", "2024-08-01"]), "revenue": [1.0, 1.0]})
    targets = pd.DataFrame({"period": pd.to_datetime(["2024-01-01", "2024-04-01"]), "level": "company",
                            "key": "all", "metric": "revenue", "value": [1.0, 1.0]})
    assert default_period({"transactions": tx}) == "2024-Q3"
    assert default_period({"transactions": tx, "targets": targets}) == "2024-Q2"


def test_waterfall_bars_follow_the_bridge():
    steps = pd.DataFrame({"step": ["plan", "price", "volume", "actual"], "value": [100.0, 10.0, -30.0, 80.0],
                          "kind": ["total", "change", "change", "total"]})
    svg = waterfall_svg(steps)
    assert svg.count("<rect") == 4 and "+10" in svg and "-30" in svg
    assert svg.count("#c0392b") == 1 and svg.count("#2e8b57") == 1


def test_command_writes_html_and_xlsx_on_the_demo(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SALESPLAN_DATA", raising=False)
    out = tmp_path / "review.html"
    assert main(["review", "--period", "2025-Q4", "--out", str(out)]) == 0
    assert "Review of 2025-Q4 written to" in capsys.readouterr().out
    assert out.stat().st_size > 10_000
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({**DEFAULT_PLAN, "base_rate": 0.10}), encoding="utf-8")
    assert main(["review", "--period", "2025-Q4", "--plan", str(plan), "--out", str(tmp_path / "r.xlsx")]) == 0
    pay = pd.read_excel(tmp_path / "r.xlsx", sheet_name="payouts")
    assert (pay["commission"] > 0).any()


def test_command_on_transactions_only(tx_only, tmp_path, capsys):
    assert main(["review", "--data", str(tx_only), "--out", str(tmp_path / "t.html")]) == 0
    out = capsys.readouterr().out
    assert "kpis: Add a `targets` table" in out


@pytest.mark.parametrize("args, message", [
    (["--period", "2019-Q1"], "no orders in 2019-Q1"),
    (["--data", "nowhere_at_all"], "File not found"),
    (["--plan", "missing_plan.yaml"], "not found"),
])
def test_command_fails_plainly_on_bad_input(tx_only, tmp_path, capsys, args, message):
    argv = ["review", "--data", str(tx_only), "--out", str(tmp_path / "r.html"), *args]
    if "--data" in args:
        argv = ["review", "--out", str(tmp_path / "r.html"), *args]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_command_refuses_unknown_report_format(tmp_path, capsys):
    assert main(["review", "--out", str(tmp_path / "r.pdf")]) == 2
    assert ".html or .xlsx" in capsys.readouterr().err


def test_bad_rows_in_the_data_give_exit_code_1(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "transactions.csv").write_text("order_date,customer_id,revenue\nnot a date,C1,abc\n",
                                             encoding="utf-8")
    assert main(["review", "--data", str(folder), "--out", str(tmp_path / "r.html")]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_docstring_examples_run():
    failures, tried = doctest.testmod(report_mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0


def test_without_targets_the_pipeline_still_ranks_problems(demo):
    data = {k: v for k, v in demo.items() if k != "targets"}
    r = build_review(data, period="2025-Q4")
    p = r.tables["problems"]
    assert len(p) and set(p["source"]) == {"pipeline_drivers"}
    assert r.notes["problems"] == ("Add a `targets` table to see the gaps against target among them. "
                                   "The problems below come from the pipeline alone.")
    text = report_html(r)
    assert "come from the pipeline alone" in text and p["action"].iloc[0].split(" by the end")[0] in text
