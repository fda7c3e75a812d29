"""Tests of the ``salesplan`` command."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from salesplan import __version__
from salesplan.cli import main


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text(
        "Order Date,Customer,Amount,Region,Notes\n"
        "2024-01-05,C1,100,North,first\n"
        "2024-03-31,C2,-20,South,\n"
        "2024-02-01,C1,\"1,000\",North,x\n"
        "2024-02-02,,5,North,x\n" + "".join(f"2024-02-{d:02d},C{d},1,East,\n" for d in range(3, 28)),
        encoding="utf-8",
    )
    return path


def test_validate_prints_mapping_rows_dates_returns_and_warnings(good_csv, capsys):
    assert main(["validate", str(good_csv)]) == 0
    out = capsys.readouterr().out
    assert "Order Date -> order_date" in out
    assert "Customer   -> customer_id" in out
    assert "Amount     -> revenue" in out
    assert "Extra columns kept: Notes (as notes)" in out
    # the line without a customer is kept (a guest checkout) and counted, not dropped
    assert "Rows: 29 read, 29 loaded, none dropped" in out
    assert "Date range of order_date: 2024-01-05 .. 2024-03-31 (read as ISO)" in out
    assert "Returns / credit notes: 1" in out
    assert "Customers: 27; revenue total: 1,110.00" in out
    assert "Lines without a customer: 1 (revenue 5.00)" in out
    assert "Warnings (1):" in out and "1 of 29 lines (0.5% of revenue) have no customer" in out
    assert "line 5" in out
    assert out.rstrip().endswith("OK: 29 rows can be loaded as transactions.")


def test_validate_reports_every_problem_and_exits_1(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("date,Sales,Stuff\nsoon,12,a\n2024-01-02,lots,b\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "date  -> order_date" in out and "Sales -> revenue" in out
    assert "required but not found: customer_id" in out
    assert "Problems (3):" in out
    assert "missing required column(s) 'customer_id'" in out
    assert "1 value(s) are not dates (line 2; e.g. 'soon')" in out
    assert "1 value(s) are not numbers (line 3; e.g. 'lots')" in out
    assert out.rstrip().endswith("FAILED: " + str(path) + " cannot be loaded as transactions.")


def test_validate_with_column_mapping_table_and_sheet(tmp_path, capsys):
    path = tmp_path / "crm.xlsx"
    deals = pd.DataFrame({"Deal": ["d1", "d2"], "Client": ["a", "b"], "Owner": ["r1", "r2"],
                          "Value": [10, 20], "Opened": ["2024-01-01", "2024-02-01"],
                          "Phase": ["Proposal", "closed won"], "Status": ["open", "won"]})
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"x": [1]}).to_excel(xl, sheet_name="readme", index=False)
        deals.to_excel(xl, sheet_name="deals", index=False)
    argv = ["validate", str(path), "--table", "opportunities", "--sheet", "deals",
            "--column", "Phase=stage", "--column", "Opened=created_date"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Phase  -> stage" in out and "Client -> customer_id" in out and "sheet 'deals'" in out
    assert "Date range of created_date: 2024-01-01 .. 2024-02-01" in out
    assert main(argv[:-4]) == 1  # "Phase" and "Opened" are not known aliases
    out = capsys.readouterr().out
    assert "missing required column(s) 'created_date' (closest headers: 'Opened')" in out
    assert "required but not found: created_date, stage" in out


def test_validate_positional_columns_and_dayfirst(tmp_path, capsys):
    path = tmp_path / "noheader.txt"
    path.write_text("c1 01/02/2024 3.5\nc2 03/04/2024 1\n")
    argv = ["validate", str(path), "--column", "0=customer_id", "--column", "1=order_date",
            "--column", "2=revenue"]
    assert main(argv + ["--dayfirst"]) == 0
    assert "Date range of order_date: 2024-02-01 .. 2024-04-03 (read as day-first)" in capsys.readouterr().out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2024-01-02 .. 2024-03-04 (read as month-first)" in out and "dayfirst=True" in out


def test_validate_sqlite_query(tmp_path, capsys):
    import sqlite3

    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (order_date TEXT, customer_id TEXT, revenue REAL)")
    con.execute("INSERT INTO t VALUES ('2024-01-01', 'a', 3.0)")
    con.commit()
    con.close()
    assert main(["validate", f"sqlite:///{db}", "--query", "SELECT * FROM t"]) == 0
    assert "format: sql" in capsys.readouterr().out


def test_missing_file_exits_1_with_the_reason(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.csv")]) == 1
    assert "File not found" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys, tmp_path):
    assert main([]) == 2
    assert "a command is required" in capsys.readouterr().err
    assert main(["validate"]) == 2
    assert "required: PATH" in capsys.readouterr().err
    assert main(["validate", "x.csv", "--table", "nope"]) == 2
    assert main(["validate", str(tmp_path / "x.csv"), "--column", "no-equals-sign"]) == 2
    assert "HEADER=FIELD" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"salesplan {__version__}"


def test_module_runs_as_a_command(good_csv):
    done = subprocess.run([sys.executable, "-m", "salesplan.cli", "validate", str(good_csv)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "OK: 29 rows can be loaded as transactions." in done.stdout
    bad = subprocess.run([sys.executable, "-m", "salesplan.cli", "validate", "--bogus"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2


def test_max_drop_sets_the_share_of_rows_that_may_be_dropped(tmp_path, capsys):
    path = tmp_path / "shop.csv"
    lines = ["date,customer,sales"] + [f"2024-01-{1 + i % 28:02d},{'' if i % 4 == 0 else f'c{i}'},"
                                       f"{'' if i % 5 == 0 else 10}" for i in range(40)]
    path.write_text("\n".join(lines) + "\n")  # 8 of 40 lines lack revenue (20%), 10 lack a customer
    assert main(["validate", str(path)]) == 1
    assert "At most 5% can be dropped" in capsys.readouterr().out
    assert main(["validate", str(path), "--max-drop", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "Rows: 40 read, 32 loaded, dropped: missing revenue 8" in out
    assert "Lines without a customer: 8 (revenue 80.00)" in out  # i % 4 == 0 and i % 5 != 0
    assert main(["validate", str(path), "--max-drop", "2"]) == 2


def test_validate_a_folder_lists_each_table_and_what_it_unlocks(tmp_path, capsys):
    (tmp_path / "Orders.csv").write_text("order date,customer,amount\n2024-01-05,c1,10\n2024-02-05,,5\n")
    (tmp_path / "sales_team.csv").write_text("rep,name,team\nr1,Ann,A\n")
    (tmp_path / "deals.csv").write_text("opportunity_id,account,sales_agent,deal_stage,engage_date,close_value\n"
                                       "o1,c1,r1,Demo,2024-01-01,100\n")
    (tmp_path / "notes.csv").write_text("colour,size\nred,1\n")
    (tmp_path / "README.md").write_text("read me")
    assert main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "transactions: Orders.csv (by file name), 2 rows, 2024-01-05 .. 2024-02-05" in out
    assert "reps: sales_team.csv (by file name), 1 rows" in out
    assert "unlocks targets and scorecards per rep and team" in out
    assert "opportunities: the pipeline" in out and "could not be loaded" in out  # 'Demo' is no stage
    assert "notes.csv: matches no table" in out and "README.md: not a data file" in out
    assert "Lines without a customer: 1 (revenue 5.00)" in out
    assert main(["validate", str(tmp_path), "--stage", "Demo=needs_analysis"]) == 0
    out = capsys.readouterr().out
    assert "opportunities: deals.csv (by file name), 1 rows, 2024-01-01 .. 2024-01-01" in out
    assert main(["validate", str(tmp_path), "--stage", "Demo"]) == 2


def test_validate_a_crm_export_derives_the_status_and_takes_a_stage_mapping(tmp_path, capsys):
    path = tmp_path / "sales_pipeline.csv"
    path.write_text("opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n"
                    "o1,Ann,GTX,Acme,Won,2017-01-02,2017-02-01,1000\n"
                    "o2,Ann,GTX,Beta,Engaging,2017-01-05,,\n"
                    "o3,Bob,MG,Acme,Lost,2017-01-09,2017-03-01,0\n"
                    "o4,Bob,MG,Cito,On hold,,,\n")
    assert main(["validate", str(path), "--table", "opportunities"]) == 1
    out = capsys.readouterr().out
    assert "'On hold' (1)" in out and 'stage_mapping={"On hold": "<one of prospecting,' in out
    assert main(["validate", str(path), "--table", "opportunities", "--stage", "On hold=prospecting"]) == 0
    out = capsys.readouterr().out
    assert "deal_stage     -> stage" in out and "derived: status from the stage (won, lost, else open)" in out
    assert "Kept although empty: amount 2, created_date 1" in out
    assert "Status: open 2, won 1, lost 1" in out


def test_a_file_is_validated_as_the_table_its_name_or_headers_say(tmp_path, capsys):
    reps = tmp_path / "employees.csv"
    reps.write_text("employee id,name,team\nr1,Ann,A\n")
    assert main(["validate", str(reps)]) == 0
    out = capsys.readouterr().out
    assert "as reps (recognised by its file name)" in out and "OK: 1 rows can be loaded as reps." in out
    deals = tmp_path / "export.csv"
    deals.write_text("opportunity_id,sales_agent,account,deal_stage,engage_date,close_value\n"
                     "o1,Ann,Acme,Won,2017-01-02,10\n")
    assert main(["validate", str(deals)]) == 0
    assert "as opportunities (recognised by its headers)" in capsys.readouterr().out
    assert main(["validate", str(deals), "--table", "transactions"]) == 1
