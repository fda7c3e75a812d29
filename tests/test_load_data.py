"""load_data: folders, workbooks and CRM exports, recognised by file name or headers; the data shapes."""

from __future__ import annotations

import datetime as dt
import re
import warnings

import pandas as pd
import pandas.testing as pdt
import pytest

from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.io import (
    NOT_RECOGNISED,
    DataSet,
    load_data,
    load_opportunities,
    load_report,
    load_stage_history,
    table_for_headers,
)
from salesplan.schema import STAGES, table_for_file_name

try:
    from tests.shapes import SHAPES
except ImportError:  # pytest run without the project root on sys.path
    from shapes import SHAPES


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        return func(*args, **kwargs)


ORDERS = "order date,customer,amount\n2024-01-05,c1,10\n2024-03-05,c2,20\n2024-02-01,,5\n"


# --------------------------------------------------------------------------- the data shapes


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_shape_loads_with_the_facts_computed_by_hand(shape_paths, name):
    facts = SHAPES[name].facts
    data = quiet(load_data, shape_paths[name])
    assert isinstance(data, DataSet)
    assert set(data) == facts["tables"]
    tx = data["transactions"]
    report = load_report(tx)
    assert len(tx) == facts["lines"]
    assert tx["revenue"].sum() == pytest.approx(facts["total_revenue"], abs=1e-6)
    assert tx["customer_id"].nunique() == facts["n_customers"]
    assert report.guest_lines == facts["guest_lines"] == tx["customer_id"].isna().sum()
    assert report.guest_revenue == pytest.approx(facts["guest_revenue"], abs=1e-6)
    assert report.returns == facts["returns"]
    assert tx["order_date"].min().date() == facts["date_from"]
    assert tx["order_date"].max().date() == facts["date_to"]
    monthly = tx.groupby(tx["order_date"].dt.strftime("%Y-%m"))["revenue"].sum()
    assert monthly.to_dict() == pytest.approx(facts["revenue_by_month"], abs=1e-6)
    for key, column in (("revenue_by_region", "region"), ("revenue_by_category", "category"),
                        ("revenue_by_rep", "rep_id")):
        if key in facts:
            assert tx.groupby(column)["revenue"].sum().to_dict() == pytest.approx(facts[key], abs=1e-6)
    found = data.found()
    assert set(found.loc[found["found"], "table"]) == facts["tables"]


def test_shape_facts_describe_the_shapes_the_issue_asks_for():
    f = SHAPES
    assert f["b2c_guests"].facts["guest_share_of_lines"] == pytest.approx(0.2)
    assert f["b2c_guests"].facts["returns"] > 0
    assert f["required_only"].facts["date_to"] == dt.date(2019, 6, 30)  # ends mid-year
    assert f["region_category"].facts["date_to"].month == 12  # ends in December
    assert len(f["short_history"].facts["revenue_by_month"]) == 14
    for shape in f.values():
        assert shape.facts["n_customers"] >= 40 and shape.facts["lines"] <= 2000
        months = shape.facts["revenue_by_month"]
        assert len(months) >= 12


def test_shapes_are_in_the_formats_they_claim(shape_paths):
    assert shape_paths["required_only"].suffix == ".csv"
    header = shape_paths["required_only"].read_text().splitlines()[0]
    assert header == "Order Date,Customer ID,Sales"
    raw = shape_paths["chinese_csv"].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert text.startswith("订单编号,订单日期") and re.search(r"\d{4}/\d{1,2}/\d{1,2}", text)
    assert re.search(r'"\d{1,3}(,\d{3})+\.\d\d"', text)  # thousands separators
    assert shape_paths["chinese_xlsx"].suffix == ".xlsx"
    assert shape_paths["b2c_guests"].suffix == ".parquet"
    assert "Revenue" not in pd.read_parquet(shape_paths["b2c_guests"]).columns
    assert sorted(p.name for p in shape_paths["folder_with_reps"].iterdir()) == ["reps.csv", "transactions.csv"]


def test_the_crm_shapes_load_their_pipeline(shape_paths):
    for name in ("crm_kaggle", "crm_chinese"):
        facts = SHAPES[name].facts
        opps = quiet(load_data, shape_paths[name])["opportunities"]
        assert len(opps) == facts["opportunities"]
        assert (opps["status"] == "won").sum() == facts["won"]
        assert (opps["status"] == "lost").sum() == facts["lost"]
        assert (opps["status"] == "open").sum() == facts["open"]
        assert opps.loc[opps["status"] == "won", "amount"].sum() == pytest.approx(facts["won_amount"])
        assert opps["amount"].isna().sum() == facts["open_without_amount"]
        assert opps["stage"].value_counts().to_dict() == facts["stage_counts"]
    report = load_report(quiet(load_data, shape_paths["crm_kaggle"])["opportunities"])
    assert report.kept_missing == {"amount": SHAPES["crm_kaggle"].facts["open_without_amount"],
                                   "created_date": SHAPES["crm_kaggle"].facts["without_created_date"]}
    assert "status from the stage (won, lost, else open)" in report.derived
    chinese = load_report(quiet(load_data, shape_paths["crm_chinese"])["opportunities"])
    assert "opportunity_id = name" in chinese.derived


# --------------------------------------------------------------------------- recognising tables


@pytest.mark.parametrize("filename, table", [
    ("transactions.csv", "transactions"), ("Orders.xlsx", "transactions"), ("order_lines.parquet", "transactions"),
    ("ORDER LINES.csv", "transactions"), ("sales_2024.csv", "transactions"), ("订单.csv", "transactions"),
    ("销售明细.xlsx", "transactions"), ("销售.csv", "transactions"), ("deals.csv", "opportunities"),
    ("Opportunity.csv", "opportunities"), ("pipeline.xlsx", "opportunities"), ("商机.csv", "opportunities"),
    ("OpportunityHistory.csv", "stage_history"), ("opportunity_history.csv", "stage_history"),
    ("阶段.csv", "stage_history"), ("employees.csv", "reps"), ("sales reps.csv", "reps"), ("员工.xlsx", "reps"),
    ("quotas.csv", "targets"), ("目标.csv", "targets"), ("tickets.csv", "feedback"), ("工单.csv", "feedback"),
    ("反馈.csv", "feedback"), ("accounts.csv", "customers"), ("客户.csv", "customers"), ("market.csv", "market"),
    ("deals (1).csv", "opportunities"), ("orders.csv.gz", "transactions"),
    ("notes.csv", None), ("order_details.csv", None),
])
def test_file_names_are_recognised(filename, table):
    assert table_for_file_name(filename) == table


def test_headers_are_recognised_when_the_name_says_nothing():
    assert table_for_headers([["Report of March"], ["Order Date", "Customer", "Sales"]]) == "transactions"
    assert table_for_headers([["Date", "Customer", "Qty", "Unit Price"]]) == "transactions"  # revenue derived
    assert table_for_headers([["rep_id", "name", "team"]]) == "reps"
    salesforce = ["StageName", "Amount", "AccountId", "OwnerId", "CreatedDate", "Name"]
    assert table_for_headers([salesforce]) == "opportunities"
    assert table_for_headers([["period", "level", "key", "metric", "value"]]) == "targets"
    assert table_for_headers([["customer", "segment", "industry"]]) == "customers"
    assert table_for_headers([["customer"]]) is None  # one shared column does not decide
    assert table_for_headers([["month", "region"]]) is None  # market needs a size


def test_a_folder_is_read_by_file_name_then_headers_and_lists_what_it_did_not_use(tmp_path):
    (tmp_path / "Order_Lines.CSV").write_text(ORDERS)
    (tmp_path / "team.csv").write_text("rep,name,team,hire date\nr1,Ann,A,2023-02-01\nr2,Bob,B,2024-05-01\n")
    (tmp_path / "colours.csv").write_text("colour,size\nred,1\n")
    (tmp_path / "README.md").write_text("what the files are")
    (tmp_path / "old").mkdir()
    (tmp_path / ".hidden.csv").write_text("x\n1\n")
    with pytest.warns(SalesplanDataWarning) as caught:
        data = load_data(tmp_path)
    messages = " | ".join(str(w.message) for w in caught)
    assert "1 file(s) match no table and were not loaded: colours.csv" in messages
    assert list(data) == ["transactions", "reps"]
    assert data.files == {"transactions": "Order_Lines.CSV", "reps": "team.csv"}
    assert data.recognised_by == {"transactions": "file name", "reps": "headers"}
    assert load_report(data["transactions"]).guest_lines == 1  # kept, not dropped
    found = data.found()
    assert list(found.columns) == ["table", "found", "source", "rows", "unlocks", "date_from", "date_to",
                                   "recognised_by", "note"]
    tables = found.set_index("table").loc[["transactions", "reps", "opportunities"]]
    assert tables["found"].tolist() == [True, True, False]
    assert tables["rows"].tolist() == [3, 2, 0]
    assert tables.loc["transactions", "date_from"] == pd.Timestamp("2024-01-05")
    assert tables.loc["transactions", "date_to"] == pd.Timestamp("2024-03-05")
    assert tables.loc["reps", "date_to"] == pd.Timestamp("2024-05-01")
    assert "pipeline" in tables.loc["opportunities", "unlocks"]
    other = found[found["table"] == NOT_RECOGNISED].set_index("source")["note"]
    assert sorted(other.index) == ["README.md", "colours.csv", "old/"]
    assert other["README.md"].startswith("not a data file")


def test_two_files_for_one_table_is_an_error_naming_both(tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS)
    (tmp_path / "Sales.csv").write_text(ORDERS)
    with pytest.raises(SalesplanDataError, match=r"2 files hold transactions: Sales\.csv \(by file name\) and "
                                                r"orders\.csv \(by file name\)\. Keep one of them"):
        load_data(tmp_path)
    (tmp_path / "Sales.csv").unlink()
    (tmp_path / "export.csv").write_text(ORDERS)  # transactions by its headers: the named file wins
    data = quiet(load_data, tmp_path)
    assert data.files["transactions"] == "orders.csv"
    assert "orders.csv is transactions by its file name" in data.unrecognised["export.csv"]
    (tmp_path / "orders.csv").unlink()
    (tmp_path / "export2.csv").write_text(ORDERS)
    with pytest.raises(SalesplanDataError, match=r"2 files hold transactions: export\.csv \(by headers\) and "
                                                r"export2\.csv \(by headers\)\. Keep one of them"):
        load_data(tmp_path)


def test_a_folder_without_transactions_says_what_it_saw(tmp_path):
    (tmp_path / "reps.csv").write_text("rep,team\nr1,A\n")
    (tmp_path / "data.csv").write_text("when,who,how much\n2024-01-01,a,1\n")
    with pytest.raises(SalesplanDataError, match=r"no transactions table found\. Seen: reps\.csv \(reps, "
                                                r"by file name\); data\.csv \(matches no table.*order_date, "
                                                r"customer_id and revenue"):
        quiet(load_data, tmp_path)


def test_a_crm_export_without_order_lines_makes_sales_of_its_won_deals(tmp_path):
    path = tmp_path / "sales_pipeline.csv"
    path.write_text("opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n"
                    "o1,Ann,GTX,Acme,Won,2017-01-02,2017-02-01,1000\n"
                    "o2,Ann,GTX,Beta,Engaging,2017-01-05,,\n"
                    "o3,Bob,MG,Acme,Lost,2017-01-09,2017-03-01,0\n"
                    "o4,Bob,MG,Cito,Won,2017-01-11,2017-03-05,250.5\n")
    for source in (path, tmp_path):  # the file on its own, or its folder
        with pytest.warns(SalesplanDataWarning) as caught:
            data = load_data(source)
        assert any("no order lines were found, so the 2 won opportunities (revenue 1,250.50) stand in for them"
                   in str(w.message) for w in caught)
        assert list(data) == ["transactions", "opportunities"]
        tx = data["transactions"]
        assert tx["order_date"].tolist() == [pd.Timestamp("2017-02-01"), pd.Timestamp("2017-03-05")]
        assert tx["customer_id"].tolist() == ["Acme", "Cito"] and tx["revenue"].tolist() == [1000.0, 250.5]
        assert tx["rep_id"].tolist() == ["Ann", "Bob"] and tx["product_id"].tolist() == ["GTX", "MG"]
        assert data.recognised_by["transactions"] == "derived from the won opportunities"
        assert data.files["transactions"] == "won opportunities of sales_pipeline.csv"
    path.write_text("opportunity_id,sales_agent,account,deal_stage,engage_date,close_value\n"
                    "o2,Ann,Beta,Engaging,2017-01-05,\n")
    with pytest.raises(SalesplanDataError, match="no won opportunity with an amount and a date"):
        quiet(load_data, path)


def test_an_optional_table_that_cannot_be_loaded_is_left_out_with_a_warning(tmp_path):
    (tmp_path / "orders.csv").write_text("date,customer,sales\n2024-01-05,c1,10\n")
    (tmp_path / "targets.csv").write_text("period,level,key,metric,value\n2024-01,country,x,revenue,1\n")
    with pytest.warns(SalesplanDataWarning, match=r"targets\.csv was recognised as targets \(by file name\) but "
                                                  r"cannot be loaded.*not valid levels"):
        data = load_data(tmp_path)
    assert "targets" not in data and "not valid levels" in data.problems["targets"]
    assert "not valid levels" in data.found().set_index("table").loc["targets", "note"]
    (tmp_path / "orders.csv").write_text("order date,customer,amount\nsoon,c1,10\n")
    with pytest.raises(SalesplanDataError, match=r"orders\.csv.*not dates"):  # transactions must load
        quiet(load_data, tmp_path)


def test_a_workbook_with_several_sheets_gives_one_table_per_sheet(tmp_path):
    path = tmp_path / "company.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"x": ["read me first"]}).to_excel(xl, sheet_name="About", index=False)
        pd.DataFrame({"订单日期": ["2024-01-05", "2024-02-05"], "客户": ["a", "b"],
                      "销售额": ["1,000", "2,000"]}).to_excel(xl, sheet_name="订单", index=False)
        pd.DataFrame({"Deal Name": ["Big", "Small"], "Deal Stage": ["contractsent", "closedwon"],
                      "Amount": [10, 20], "Create Date": ["2024-01-01", "2024-01-02"],
                      "Deal owner": ["r1", "r2"], "Associated Company": ["a", "b"]}
                     ).to_excel(xl, sheet_name="HubSpot", index=False)
        pd.DataFrame({"rep_id": ["r1", "r2"], "team": ["A", "B"]}).to_excel(xl, sheet_name="Sheet4", index=False)
    data = quiet(load_data, path)
    assert list(data) == ["transactions", "opportunities", "reps"]
    assert data.files == {"transactions": "company.xlsx (sheet '订单')",
                          "opportunities": "company.xlsx (sheet 'HubSpot')", "reps": "company.xlsx (sheet 'Sheet4')"}
    assert data.recognised_by == {"transactions": "sheet name", "opportunities": "headers", "reps": "headers"}
    assert data["transactions"]["revenue"].sum() == 3000
    assert data["opportunities"]["status"].tolist() == ["open", "won"]
    assert data.unrecognised == {"company.xlsx (sheet 'About')": "matches no table by its sheet name or its headers"}
    one = tmp_path / "one.xlsx"
    pd.DataFrame({"date": ["2024-01-01"], "customer": ["a"], "sales": [1]}).to_excel(one, index=False)
    assert list(load_data(one)) == ["transactions"]


def test_load_data_follows_the_environment_and_checks_the_stage_mapping(tmp_path, monkeypatch):
    (tmp_path / "orders.csv").write_text(ORDERS)
    monkeypatch.setenv("SALESPLAN_DATA", str(tmp_path))
    assert quiet(load_data).source == str(tmp_path)
    with pytest.raises(SalesplanError, match=r"stage_mapping maps onto values that are not stages \('Demo': 'demo'\)"):
        load_data(tmp_path, stage_mapping={"Demo": "demo"})


# --------------------------------------------------------------------------- CRM vocabularies


def _crm(headers: list[str], rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers)


CRM_EXPORTS = {
    "hubspot": (_crm(["Record ID", "dealname", "dealstage", "amount", "closedate", "createdate", "hubspot_owner_id",
                      "Associated Company"],
                     [["1", "A", "appointmentscheduled", "100", "2024-03-01", "2024-01-01", "77", "acme"],
                      ["2", "B", "closedwon", "200", "2024-02-01", "2024-01-02", "78", "beta"],
                      ["3", "C", "closedlost", "300", "2024-02-02", "2024-01-03", "77", "acme"]]),
                ["first_contact", "won", "lost"]),
    "odoo": (_crm(["id", "name", "partner_id", "stage_id", "expected_revenue", "date_deadline", "create_date",
                   "user_id"],
                  [["__export__.crm_lead_1", "Chairs", "Deco Addict", "New", "1,000", "2024-03-01",
                    "2024-01-01 10:00:00", "Mitchell Admin"],
                   ["__export__.crm_lead_2", "Desks", "Azure Interior", "Won", "2,500", "2024-02-01",
                    "2024-01-05 09:30:00", "Marc Demo"],
                   ["__export__.crm_lead_3", "Lamps", "Deco Addict", "Proposition", "700", "2024-04-01",
                    "2024-01-07 11:00:00", "Marc Demo"]]),
             ["prospecting", "won", "proposal"]),
    "pipedrive": (_crm(["Deal - ID", "Deal - Title", "Deal - Organization", "Deal - Stage", "Deal - Value",
                        "Deal - Expected close date", "Deal - Deal created", "Deal - Owner", "Deal - Status"],
                       [["11", "Website", "Org A", "Lead In", "500", "2024-05-01", "2024-01-01", "Sam", "open"],
                        ["12", "App", "Org B", "Negotiations Started", "900", "2024-02-01", "2024-01-02", "Kim",
                         "won"],
                        ["13", "Ads", "Org A", "Contact Made", "100", "2024-02-03", "2024-01-03", "Sam", "lost"]]),
                  ["prospecting", "negotiation", "first_contact"]),
    "salesforce_report": (_crm(["Opportunity Name", "Account Name", "Opportunity Owner", "Stage", "Amount",
                                "Probability (%)", "Close Date", "Created Date"],
                               [["Big deal", "Acme", "Ann", "Id. Decision Makers", "$12,000.00", "60", "6/30/2024",
                                 "1/15/2024"],
                                ["Renewal", "Beta", "Bob", "Closed Won", "$3,500.00", "100", "3/31/2024", "2/1/2024"],
                                ["Pilot", "Acme", "Ann", "Perception Analysis", "$900.00", "70", "7/15/2024",
                                 "2/20/2024"]]),
                          ["needs_analysis", "won", "proposal"]),
    "odoo_labels": (_crm(["Opportunity", "Customer", "Salesperson", "Stage", "Expected Revenue", "Expected Closing",
                          "Created on"],
                         [["Office chairs", "Deco Addict", "Marc Demo", "Qualified", "4,000.00", "05/20/2024",
                           "01/02/2024 09:12:00"],
                          ["Desks", "Azure Interior", "Mitchell Admin", "Won", "9,500.00", "03/01/2024",
                           "01/05/2024 14:00:00"]]),
                    ["needs_analysis", "won"]),
    "kaggle": (_crm(["opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date", "close_date",
                     "close_value"],
                    [["1C1I7A6R", "Moses Frase", "GTX Plus Basic", "Cancity", "Won", "2016-10-20", "2017-03-01",
                      "1054"],
                     ["Z063OYW0", "Darcel Schlecht", "GTXPro", "Isdom", "Lost", "2016-10-25", "2017-03-11", "0"],
                     ["EC4QE1BX", "Darcel Schlecht", "MG Special", "Cancity", "Engaging", "2016-10-25", "", ""],
                     ["MV1LWRNH", "Moses Frase", "GTX Basic", "Codehow", "Prospecting", "", "", ""]]),
               ["won", "lost", "first_contact", "prospecting"]),
    "chinese": (_crm(["商机名称", "客户名称", "负责人", "销售阶段", "商机金额", "创建日期", "预计成交日期"],
                     [["华东大单", "甲公司", "张伟", "赢单", "¥120,000", "2024/1/5", "2024/3/1"],
                      ["华南项目", "乙公司", "王芳", "谈判审核", "80,000", "2024/2/1", "2024/6/30"],
                      ["西南试点", "甲公司", "张伟", "输单", "15,000", "2024/2/9", "2024/4/1"],
                      ["北京续约", "丙公司", "李娜", "初步接洽", "30,000", "2024/3/1", "2024/9/1"]]),
                ["won", "negotiation", "lost", "first_contact"]),
}


@pytest.mark.parametrize("crm", list(CRM_EXPORTS))
def test_crm_opportunity_exports_load_without_a_mapping(crm):
    frame, stages = CRM_EXPORTS[crm]
    df = quiet(load_opportunities, frame)
    assert df["stage"].tolist() == stages
    expected_status = [s if s in ("won", "lost") else "open" for s in stages]
    if crm == "pipedrive":  # its own status column wins over the stage
        expected_status = ["open", "won", "lost"]
    assert df["status"].tolist() == expected_status
    assert {"opportunity_id", "customer_id", "rep_id", "amount", "created_date", "stage", "status"} <= set(df.columns)
    assert df["opportunity_id"].is_unique
    assert df["amount"].notna().sum() >= 2 and df["rep_id"].notna().all()


def test_the_chinese_export_takes_its_ids_from_the_names_and_parses_its_money():
    df = quiet(load_opportunities, CRM_EXPORTS["chinese"][0])
    assert df["opportunity_id"].tolist() == ["华东大单", "华南项目", "西南试点", "北京续约"]
    assert df["amount"].tolist() == [120_000.0, 80_000.0, 15_000.0, 30_000.0]
    assert df["close_date"].tolist()[0] == pd.Timestamp("2024-03-01")
    assert load_report(df).mapping["预计成交日期"] == "close_date"


def test_unknown_stages_are_listed_with_a_mapping_to_paste_and_the_mapping_works():
    frame = _crm(["deal id", "customer", "owner", "value", "created", "stage"],
                 [["d1", "a", "r", "1", "2024-01-01", "Demo booked"], ["d2", "b", "r", "2", "2024-01-02", "Trial"],
                  ["d3", "c", "r", "3", "2024-01-03", "Trial"], ["d4", "c", "r", "3", "2024-01-04", "Closed Won"]])
    with pytest.raises(SalesplanDataError) as info:
        load_opportunities(frame)
    msg = str(info.value)
    one_of = f"<one of {', '.join(STAGES)}>"
    assert f'stage_mapping={{"Trial": "{one_of}", "Demo booked": "{one_of}"}}' in msg
    assert "seen: 'Trial' (2), 'Demo booked' (1)" in msg
    mapping = {"demo booked": "needs_analysis", "TRIAL": "Proposal"}  # case and spaces do not matter
    df = load_opportunities(frame, stage_mapping=mapping)
    assert df["stage"].tolist() == ["needs_analysis", "proposal", "proposal", "won"]
    assert df["status"].tolist() == ["open", "open", "open", "won"]
    history = load_stage_history(pd.DataFrame({"deal id": ["d1", "d1"], "stage": ["Trial", "Closed Lost"],
                                               "date": ["2024-01-01", "2024-02-01"]}), stage_mapping=mapping)
    assert history["stage"].tolist() == ["proposal", "lost"]
    with pytest.raises(SalesplanError, match="not stages"):
        load_opportunities(frame, stage_mapping={"Trial": "trial"})


def test_salesforce_export(shared_data, tmp_path):
    folder = shared_data / "exports" / "sf_demo_opportunity"
    with pytest.warns(SalesplanDataWarning, match="'Amount' and 'ExpectedRevenue' both look like 'amount'"):
        opps = load_opportunities(folder / "Opportunity.csv")
    assert len(opps) == 31
    assert opps["amount"].sum() == 5_760_000
    assert (opps["stage"] == "won").sum() == 18 and (opps["status"] == "won").sum() == 18
    assert opps["status"].value_counts().to_dict() == {"won": 18, "open": 13}
    assert opps["customer_id"].nunique() == 9
    assert opps["close_date"].min() == pd.Timestamp("2018-06-26")
    assert opps["close_date"].max() == pd.Timestamp("2018-10-15")
    report = load_report(opps)
    assert report.mapping["StageName"] == "stage" and report.mapping["OwnerId"] == "rep_id"
    assert report.derived == ["status from IsClosed and IsWon"]
    with pytest.warns(SalesplanDataWarning, match="31 of 62 rows repeat a stage"):
        history = load_stage_history(folder / "OpportunityHistory.csv")
    assert len(history) == 31 and set(history["opportunity_id"]) == set(opps["opportunity_id"])
    pdt.assert_series_equal(
        history.set_index("opportunity_id")["stage"].sort_index(),
        opps.set_index("opportunity_id")["stage"].sort_index(), check_names=False)
    # on its own, the won deals stand in for order lines: 18 of them
    alone = quiet(load_data, folder)
    assert len(alone["transactions"]) == 18
    assert alone["transactions"]["revenue"].sum() == opps.loc[opps["status"] == "won", "amount"].sum()
    # in a folder next to order lines, both are found by their file names
    for name in ("Opportunity.csv", "OpportunityHistory.csv"):
        (tmp_path / name).symlink_to(folder / name)
    (tmp_path / "orders.csv").write_text(ORDERS)
    data = quiet(load_data, tmp_path)
    assert list(data) == ["transactions", "opportunities", "stage_history"]
    assert data.recognised_by["stage_history"] == "file name"


def test_sales_data_sample_export_is_recognised_by_its_headers(shared_data):
    data = quiet(load_data, shared_data / "exports" / "sales_data_sample")
    tx = data["transactions"]
    assert data.recognised_by == {"transactions": "headers"}
    assert tx["revenue"].sum() == pytest.approx(10_032_628.85, abs=0.01)
    assert tx["order_id"].nunique() == 307 and tx["customer_id"].nunique() == 92
    assert tx["order_date"].min() == pd.Timestamp("2003-01-06")


def test_exports_that_cannot_be_loaded_say_why(shared_data):
    with pytest.raises(SalesplanDataError, match=r"orders\.csv: missing required column\(s\) 'revenue'"):
        quiet(load_data, shared_data / "exports" / "northwind")
    with pytest.raises(SalesplanDataError, match=r"tmall_order_report\.csv \(matches no table.*nearest: "
                                                r"transactions, which lacks customer_id"):
        quiet(load_data, shared_data / "exports" / "tmall_orders")
