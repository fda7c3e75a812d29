"""Tests of salesplan.io: every source, the header mapping, parsing, and every error."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import sqlite3
import warnings
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.io import (
    LoadReport,
    load_customers,
    load_feedback,
    load_market,
    load_opportunities,
    load_report,
    load_reps,
    load_stage_history,
    load_table,
    load_targets,
    load_transactions,
    snake_case,
)
from salesplan.schema import TABLES

HEADER = ["Order Date", "Customer", "Amount", "Region", "Channel", "Sales Rep"]
ROWS = [
    ["2024-01-05", "C001", "1200.50", "North", "online", "r1"],
    ["2024-01-06", "C002", "80", "South", "retail", "r2"],
    ["2024-02-10", "C001", "-30", "North", "online", "r1"],
    ["2024-03-01", "C003", "15.25", "NA", "partner", "r3"],
]


def expected_transactions() -> pd.DataFrame:
    return pd.DataFrame({
        "order_date": pd.to_datetime(["2024-01-05", "2024-01-06", "2024-02-10", "2024-03-01"]).astype(
            "datetime64[ns]"),
        "customer_id": pd.array(["C001", "C002", "C001", "C003"], dtype="string"),
        "revenue": [1200.5, 80.0, -30.0, 15.25],
        "region": pd.array(["North", "South", "North", "NA"], dtype="string"),
        "channel": pd.array(["online", "retail", "online", "partner"], dtype="string"),
        "rep_id": pd.array(["r1", "r2", "r1", "r3"], dtype="string"),
        "is_return": [False, False, True, False],
    })


def write_delimited(path: Path, rows, *, delimiter=",", encoding="utf-8") -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- sources


@pytest.mark.parametrize("delimiter, suffix", [(",", ".csv"), ("\t", ".tsv"), (";", ".csv"), ("|", ".txt")])
def test_delimited_text_is_sniffed_and_loaded(tmp_path, delimiter, suffix):
    path = write_delimited(tmp_path / f"sales{suffix}", [HEADER, *ROWS], delimiter=delimiter)
    before = sha(path)
    df = load_transactions(path)
    pdt.assert_frame_equal(df, expected_transactions())
    assert sha(path) == before  # the input file is never modified
    report = load_report(df)
    assert report.mapping == {
        "Order Date": "order_date", "Customer": "customer_id", "Amount": "revenue",
        "Region": "region", "Channel": "channel", "Sales Rep": "rep_id",
    }
    assert report.rows_read == 4 and report.rows == 4 and report.returns == 1
    assert report.format == "csv" and report.encoding == "utf-8"


def test_whitespace_separated_text(tmp_path):
    path = tmp_path / "sales.dat"
    path.write_text(
        " order_date   customer_id    revenue\n"
        " 2024-01-05   C001     1200.50\n"
        "\n"
        " 2024-01-06   C002       80\n"
    )
    df = load_transactions(path)
    assert list(df["revenue"]) == [1200.5, 80.0]
    assert list(df["customer_id"]) == ["C001", "C002"]
    report = load_report(df)
    assert report.delimiter == "whitespace"
    assert report.rows_dropped == {"blank lines": 1}


def test_explicit_delimiter_overrides_sniffing(tmp_path):
    path = write_delimited(tmp_path / "s.txt", [HEADER, *ROWS], delimiter=";")
    with pytest.raises(SalesplanDataError, match="missing required column"):
        load_transactions(path, delimiter=",")
    assert len(load_transactions(path, delimiter=";")) == 4


def test_excel_with_a_title_row_above_the_header(tmp_path):
    path = tmp_path / "sales.xlsx"
    raw = pd.DataFrame([["2024 sales report", None, None, None, None, None], HEADER,
                        *[[pd.Timestamp(r[0]), r[1], float(r[2]), *r[3:]] for r in ROWS]])
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        pd.DataFrame({"x": [1]}).to_excel(xl, sheet_name="notes", index=False)
        raw.to_excel(xl, sheet_name="data", index=False, header=False)
    before = sha(path)
    df = load_transactions(path, sheet_name="data")
    pdt.assert_frame_equal(df, expected_transactions())
    assert sha(path) == before
    assert load_report(df).sheet == "data"
    # Sheets by position too; a wrong sheet name says which sheets exist.
    assert len(load_transactions(path, sheet_name=1)) == 4
    with pytest.raises(SalesplanDataError, match=r"no sheet 'Data2'.*\['notes', 'data'\]"):
        load_transactions(path, sheet_name="Data2")


def test_excel_errors_name_excel_rows(tmp_path):
    path = tmp_path / "bad.xlsx"
    pd.DataFrame({"date": ["2024-01-01", "soon", "2024-01-03"], "customer": ["a", "b", "c"],
                  "sales": [1, 2, 3]}).to_excel(path, index=False)
    with pytest.raises(SalesplanDataError, match=r"bad\.xlsx.*'order_date'.*Excel row 3 of sheet 'Sheet1'.*'soon'"):
        load_transactions(path)


def test_parquet(tmp_path):
    path = tmp_path / "sales.parquet"
    src = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-05", "2024-01-06"]),
                        "customer_id": [17, 18], "revenue": [1.5, 2.5], "note": ["a", "b"]})
    src.to_parquet(path)
    df = load_transactions(path)
    assert df["customer_id"].tolist() == ["17", "18"]  # integer ids become text without ".0"
    assert df["note"].tolist() == ["a", "b"]
    assert load_report(df).extra_columns == {"note": "note"}
    assert str(df["order_date"].dtype) == "datetime64[ns]"


def test_dataframe_source_is_not_mutated_and_keeps_its_index():
    src = pd.DataFrame({"Order Date": ["05/01/2024", "20/01/2024", ""], "客户": ["a", "b", "c"],
                        "销售额": ["1,000", "2", "3"]}, index=[10, 11, 12])
    copy = src.copy(deep=True)
    with pytest.warns(SalesplanDataWarning, match=r"dropped 1 of 3 rows.*order_date: 1.*row 12"):
        df = load_transactions(src, max_drop_fraction=0.5)
    pdt.assert_frame_equal(src, copy)
    assert list(df.index) == [10, 11]
    assert list(df["order_date"]) == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-20")]
    assert load_report(df).rows_dropped == {"missing order_date": 1}


def make_sqlite(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (dt TEXT, cust TEXT, amount REAL, qty INTEGER)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", [
        ("2024-01-05", "c1", 10.0, 1), ("2024-01-06", "c2", -5.0, -1), ("2024-01-07", "c1", 7.5, 3)])
    con.execute("CREATE TABLE other (x INTEGER)")
    con.commit()
    con.close()
    return path


def test_sqlite_through_a_sqlalchemy_url(tmp_path):
    db = make_sqlite(tmp_path / "crm.db")
    before = sha(db)
    url = f"sqlite:///{db}"
    cols = {"dt": "order_date", "cust": "customer_id", "amount": "revenue", "qty": "quantity"}
    by_query = load_transactions(url, query="SELECT * FROM orders ORDER BY dt", columns=cols)
    by_name = load_transactions(url, query="orders", columns=cols)
    by_path = load_transactions(db, query="orders", columns=cols)
    pdt.assert_frame_equal(by_query, by_name)
    pdt.assert_frame_equal(by_query, by_path)
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(url)
    pdt.assert_frame_equal(by_query, load_transactions(engine, query="orders", columns=cols))
    engine.dispose()
    assert by_query["revenue"].tolist() == [10.0, -5.0, 7.5]
    assert load_report(by_query).returns == 1
    assert sha(db) == before
    with pytest.raises(SalesplanDataError, match=r"say which table.*'orders', 'other'.*query="):
        load_transactions(url, columns=cols)
    with pytest.raises(SalesplanDataError, match=r"query failed.*no such table"):
        load_transactions(url, query="SELECT * FROM nope")


def test_sqlite_url_to_a_missing_file_does_not_create_it(tmp_path):
    target = tmp_path / "missing.db"
    with pytest.raises(SalesplanDataError, match=r"Database file not found.*missing\.db"):
        load_transactions(f"sqlite:///{target}", query="orders")
    assert not target.exists()


def test_duckdb_connection_and_query():
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.execute("CREATE TABLE transactions AS SELECT * FROM (VALUES "
                "(DATE '2024-01-05', 'c1', 10.0), (DATE '2024-01-06', 'c2', 20.0)) t(order_date, customer_id, revenue)")
    df = load_transactions(con, query="SELECT * FROM transactions WHERE revenue > 15")
    assert df["customer_id"].tolist() == ["c2"]
    assert str(df["order_date"].dtype) == "datetime64[ns]"
    assert len(load_transactions(con)) == 2  # the table named like the schema table
    with pytest.raises(SalesplanDataError, match="DuckDB.*query failed"):
        load_transactions(con, query="SELECT * FROM missing_table")
    con.close()


def test_uploaded_bytes_and_gzip(tmp_path):
    text = "\n".join(",".join(r) for r in [HEADER, *ROWS]).encode()
    pdt.assert_frame_equal(load_transactions(io.BytesIO(text)), expected_transactions())
    path = tmp_path / "sales.csv.gz"
    path.write_bytes(gzip.compress(text))
    pdt.assert_frame_equal(load_transactions(path), expected_transactions())
    xlsx = io.BytesIO()
    pd.DataFrame([dict(zip(HEADER, r)) for r in ROWS]).to_excel(xlsx, index=False)
    assert load_report(load_transactions(xlsx.getvalue())).format == "excel"


def test_every_table_has_a_loader():
    loaders = {
        "transactions": load_transactions, "customers": load_customers,
        "opportunities": load_opportunities, "stage_history": load_stage_history, "reps": load_reps,
        "targets": load_targets, "feedback": load_feedback, "market": load_market,
    }
    assert set(loaders) == set(TABLES)
    for name, fn in loaders.items():
        assert fn.__name__ == f"load_{name}"
        for col in TABLES[name].required:
            assert col in fn.__doc__


# --------------------------------------------------------------------------- mapping


def test_chinese_headers_and_gb18030(tmp_path):
    rows = [["订单日期", "客户", "销售额", "地区", "渠道", "销售员", "备注"],
            ["2024年1月5日", "张三", "¥1,200.00", "华东", "线上", "王五", "首单"],
            ["2024年1月6日", "李四", "￥80元", "华南", "门店", "赵六", ""]]
    path = write_delimited(tmp_path / "销售.csv", rows, encoding="gb18030")
    df = load_transactions(path)
    report = load_report(df)
    assert report.encoding == "gb18030"
    assert report.mapping == {"订单日期": "order_date", "客户": "customer_id", "销售额": "revenue",
                              "地区": "region", "渠道": "channel", "销售员": "rep_id"}
    assert report.extra_columns == {"备注": "备注"}
    assert df["customer_id"].tolist() == ["张三", "李四"]
    assert df["revenue"].tolist() == [1200.0, 80.0]
    assert df["order_date"].tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-06")]
    assert df["备注"].isna().tolist() == [False, True]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_encodings_are_detected(tmp_path, encoding):
    rows = [["日期", "客户编号", "金额"], ["2024-01-05", "客户甲", "5"]]
    path = write_delimited(tmp_path / "x.csv", rows, encoding=encoding)
    df = load_transactions(path)
    assert df["customer_id"].tolist() == ["客户甲"]
    assert load_report(df).mapping["日期"] == "order_date"  # no BOM left on the first header


def test_wrong_explicit_encoding_says_how_to_fix(tmp_path):
    path = write_delimited(tmp_path / "x.csv", [["日期", "客户", "金额"], ["2024-01-05", "甲", "5"]],
                           encoding="gb18030")
    with pytest.raises(SalesplanDataError, match=r"x\.csv.*not valid utf-8.*line 1.*encoding='gb18030'"):
        load_transactions(path, encoding="utf-8")
    assert load_transactions(path, encoding="gbk")["customer_id"].tolist() == ["甲"]


def test_explicit_mapping_with_normalised_keys_and_drop():
    src = pd.DataFrame({"Fecha": ["2024-01-05"], "Cliente": ["c1"], "Importe": ["3"], "junk": ["x"]})
    df = load_transactions(src, columns={"fecha": "order_date", "CLIENTE": "customer_id",
                                         "Importe": "revenue", "junk": None})
    assert list(df.columns) == ["order_date", "customer_id", "revenue", "is_return"]
    assert load_report(df).mapping == {"Fecha": "order_date", "Cliente": "customer_id", "Importe": "revenue"}


def test_two_headers_for_one_field_prefer_the_field_name_and_warn():
    src = pd.DataFrame({"Amount": [1.0], "date": ["2024-01-01"], "customer": ["a"], "Revenue": [2.0]})
    with pytest.warns(SalesplanDataWarning, match=r"'Revenue' and 'Amount' both look like 'revenue'"):
        df = load_transactions(src)
    assert df["revenue"].tolist() == [2.0]
    assert df["amount"].tolist() == [1.0]  # the other is kept as an extra column
    with pytest.warns(SalesplanDataWarning, match=r"'Sales' and 'Amount'"):
        df = load_transactions(pd.DataFrame({"Amount": [1.0], "Sales": [2.0], "date": ["2024-01-01"],
                                             "customer": ["a"]}))
    assert df["revenue"].tolist() == [2.0]  # "sales" comes before "amount" among the aliases


def test_extra_columns_are_snake_cased_and_keep_codes_as_text():
    src = pd.DataFrame({"date": ["2024-01-01"], "customer": ["a"], "sales": [1.0],
                        "Sales Notes (internal)": ["hi"], "Store Code": ["0042"], "Weight kg": ["1.5"]})
    df = load_transactions(src)
    assert list(df.columns)[-3:] == ["sales_notes_internal", "store_code", "weight_kg"]
    assert df["store_code"].tolist() == ["0042"]
    assert df["weight_kg"].tolist() == [1.5]
    assert snake_case("  Sales Notes (internal) ") == "sales_notes_internal"


def test_bad_mappings_are_reported():
    src = pd.DataFrame({"date": ["2024-01-01"], "customer": ["a"], "sales": [1.0]})
    with pytest.raises(SalesplanDataError, match=r"'revenu' is not a field of transactions\. Did you mean 'revenue'"):
        load_transactions(src, columns={"sales": "revenu"})
    with pytest.raises(SalesplanDataError, match=r"header 'Sale', which is not in the source.*Closest: 'sales'"):
        load_transactions(src, columns={"Sale": "revenue"})
    with pytest.raises(SalesplanError, match="mixes header names and positions"):
        load_transactions(io.BytesIO(b"a,b\n1,2\n"), columns={0: "order_date", "b": "revenue"})


def test_positional_mapping_for_a_file_without_header(tmp_path):
    path = tmp_path / "noheader.txt"
    path.write_text("c1 2024-01-05 2 10.5\nc2 2024-01-06 1 3\n")
    df = load_transactions(path, columns={0: "customer_id", 1: "order_date", 2: "quantity", 3: "revenue"})
    assert df["revenue"].tolist() == [10.5, 3.0] and df["quantity"].tolist() == [2.0, 1.0]
    with pytest.raises(SalesplanDataError, match=r"position 7.*4 column\(s\)"):
        load_transactions(path, columns={0: "customer_id", 7: "order_date"})
    with pytest.raises(SalesplanDataError, match=r"first line looks like data.*columns=\{0: "):
        load_transactions(path)


# --------------------------------------------------------------------------- values


def test_revenue_is_derived_from_quantity_and_unit_price_and_returns_counted():
    src = pd.DataFrame({"InvoiceDate": ["2024-01-05", "2024-01-05", "2024-01-06"],
                        "CustomerID": ["1", "2", "1"], "Quantity": ["2", "-1", "3"],
                        "UnitPrice": ["2.50", "4", "1"], "InvoiceNo": ["536365", "C536379", "536366"]})
    df = load_transactions(src)
    assert df["revenue"].tolist() == [5.0, -4.0, 3.0]
    assert df["is_return"].tolist() == [False, True, False]
    report = load_report(df)
    assert report.derived == ["revenue = quantity * unit_price"]
    assert report.returns == 1
    assert report.mapping["InvoiceNo"] == "order_id"


def test_missing_revenue_is_filled_from_quantity_times_price():
    src = pd.DataFrame({"date": ["2024-01-05", "2024-01-06"], "customer": ["a", "b"],
                        "revenue": ["", "7"], "qty": ["2", "1"], "price": ["3", "7"]})
    df = load_transactions(src)
    assert df["revenue"].tolist() == [6.0, 7.0]
    assert "missing revenue" in load_report(df).derived[0]


@pytest.mark.parametrize("text, value", [
    ("1,234.50", 1234.5), ("$1,234.50", 1234.5), ("¥ 1,200", 1200.0), ("￥80", 80.0), ("RMB 99", 99.0),
    ("99元", 99.0), ("€1.234,50", 1234.5), ("£7", 7.0), ("(50.00)", -50.0), ("50-", -50.0),
    ("12.5%", 0.125), ("-3", -3.0), ("1 234,5", 1234.5), ("1.234.567", 1234567.0), ("2,5", 2.5),
    ("1e3", 1000.0), ("1'234.5", 1234.5), ("-", None), ("", None),
])
def test_number_formats(text, value):
    src = pd.DataFrame({"date": ["2024-01-01", "2024-01-01"], "customer": ["a", "b"],
                        "sales": ["1", "1"], "qty": [text, "1"]})
    df = load_transactions(src)
    got = df["quantity"].iloc[0]
    if value is None:
        assert pd.isna(got)
    else:
        assert got == pytest.approx(value)


@pytest.mark.parametrize("values, expected, form", [
    (["2024-01-05", "2024-12-31"], ["2024-01-05", "2024-12-31"], "ISO"),
    (["2024/1/5", "2024/12/31"], ["2024-01-05", "2024-12-31"], "ISO"),
    (["01/05/2024", "12/31/2024"], ["2024-01-05", "2024-12-31"], "month-first"),
    (["05/01/2024", "31/12/2024"], ["2024-01-05", "2024-12-31"], "day-first"),
    (["05.01.2024", "01.02.2024"], ["2024-01-05", "2024-02-01"], "day-first"),
    (["20240105", "20241231"], ["2024-01-05", "2024-12-31"], "YYYYMMDD"),
    (["45296", "45657"], ["2024-01-05", "2024-12-31"], "Excel serial"),
    (["2024年1月5日", "2024年12月31日"], ["2024-01-05", "2024-12-31"], "ISO"),
    (["5 Jan 2024", "December 31, 2024"], ["2024-01-05", "2024-12-31"], "text"),
    (["2024-01-05 13:45:00", "2024-12-31T08:00"], ["2024-01-05 13:45", "2024-12-31 08:00"], "ISO"),
])
def test_date_formats(values, expected, form):
    df = load_transactions(pd.DataFrame({"date": values, "customer": ["a", "b"], "sales": [1, 2]}))
    assert df["order_date"].tolist() == [pd.Timestamp(x) for x in expected]
    assert load_report(df).date_formats["order_date"] == form
    assert str(df["order_date"].dtype) == "datetime64[ns]"


def test_ambiguous_dates_are_month_first_with_a_warning_unless_dayfirst_is_given():
    src = pd.DataFrame({"date": ["01/02/2024", "03/04/2024"], "customer": ["a", "b"], "sales": [1, 2]})
    with pytest.warns(SalesplanDataWarning, match=r"'01/02/2024'.*MM/DD/YYYY.*dayfirst=True"):
        df = load_transactions(src)
    assert df["order_date"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-03-04")]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SalesplanDataWarning)
        df = load_transactions(src, dayfirst=True)
    assert df["order_date"].tolist() == [pd.Timestamp("2024-02-01"), pd.Timestamp("2024-04-03")]


def test_yyyymmdd_integers_and_excel_serial_numbers():
    src = pd.DataFrame({"date": [20240105, 20241231], "customer": [1, 2], "sales": [1, 2]})
    assert load_transactions(src)["order_date"].tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-12-31")]
    src = pd.DataFrame({"date": [45296.0, 45296.5], "customer": [1, 2], "sales": [1, 2]})
    assert load_transactions(src)["order_date"].tolist() == [pd.Timestamp("2024-01-05"),
                                                             pd.Timestamp("2024-01-05 12:00")]


def test_period_like_dates_in_targets():
    src = pd.DataFrame({"month": ["2026-01", "2026-02", "2026Q2"], "level": ["Company", "company", "region"],
                        "key": ["all", "all", "North"], "metric": ["revenue"] * 3, "target": ["1,000", "2,000", "3,000"]})
    df = load_targets(src)
    assert df["period"].tolist() == [pd.Timestamp("2026-01-01"), pd.Timestamp("2026-02-01"), pd.Timestamp("2026-04-01")]
    assert df["level"].tolist() == ["company", "company", "region"]
    assert df["value"].tolist() == [1000.0, 2000.0, 3000.0]


# --------------------------------------------------------------------------- categorical fields


def opportunities(**overrides) -> pd.DataFrame:
    base = {"Opportunity ID": ["o1", "o2", "o3"], "Account": ["a", "b", "c"], "Owner": ["r1", "r1", "r2"],
            "Amount": ["1000", "2,000", "500"], "Created": ["2024-01-05", "2024-02-01", "2024-03-01"],
            "Stage": ["Needs Analysis", "Closed Won", "proposal"], "Status": ["Open", "WON", "open"]}
    base.update(overrides)
    return pd.DataFrame(base)


def test_stages_and_statuses_are_normalised():
    df = load_opportunities(opportunities())
    assert df["stage"].tolist() == ["needs_analysis", "won", "proposal"]
    assert df["status"].tolist() == ["open", "won", "open"]
    assert df["stage"].dtype == "string"


def test_unknown_stages_statuses_and_levels_are_errors():
    with pytest.raises(SalesplanDataError) as info:
        load_opportunities(opportunities(Stage=["demo", "demo", "proposal"], Status=["open", "maybe", "open"]))
    msg = str(info.value)
    assert len(info.value.problems) == 2  # both problems are reported at once
    assert re.search(r"'stage'.*2 value\(s\) are not valid stages \(rows 0, 1; seen: 'demo' \(2\)\).*needs_analysis", msg)
    assert re.search(r"'status'.*row 1; seen: 'maybe' \(1\).*open, won, lost", msg)
    with pytest.raises(SalesplanDataError, match=r"not valid levels.*'country'.*company, region"):
        load_targets(pd.DataFrame({"period": ["2026-01"], "level": ["country"], "key": ["x"],
                                   "metric": ["revenue"], "value": [1]}))


def test_stage_history_and_other_tables_load():
    sh = load_stage_history(pd.DataFrame({"deal id": ["o1", "o1"], "stage": ["Prospecting", "First Contact"],
                                          "entered": ["2024-01-01", "2024-01-09"]}))
    assert sh["stage"].tolist() == ["prospecting", "first_contact"]
    reps = load_reps(pd.DataFrame({"工号": ["r1", "r2"], "姓名": ["王", "李"], "团队": ["A", "B"],
                                   "入职日期": ["2023-01-01", "2024-06-01"]}))
    assert list(reps.columns) == ["rep_id", "name", "team", "start_date"]
    fb = load_feedback(pd.DataFrame({"客户": ["a"], "反馈日期": ["2024-01-01"], "满意度": ["4"]}))
    assert fb["satisfaction"].tolist() == [4.0]
    mk = load_market(pd.DataFrame({"year": [2024, 2025], "region": ["N", "N"], "market size": ["1,000", "1,100"]}))
    assert mk["period"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2025-01-01")]
    with pytest.raises(SalesplanDataError, match="market_size or a competitor_sales"):
        load_market(pd.DataFrame({"year": [2024], "region": ["N"]}))


# --------------------------------------------------------------------------- errors


def test_missing_file_unknown_extension_and_folder(tmp_path):
    with pytest.raises(SalesplanDataError, match=r"File not found: '.*nope\.csv'.*Check the path"):
        load_transactions(tmp_path / "nope.csv")
    odd = tmp_path / "sales.foo"
    odd.write_text("a,b\n")
    with pytest.raises(SalesplanDataError, match=r"sales\.foo: unknown file extension '\.foo'.*format='csv'"):
        load_transactions(odd)
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(SalesplanDataError, match=r"old\.xls.*save it as \.xlsx"):
        load_transactions(old)
    with pytest.raises(SalesplanDataError, match="is a folder"):
        load_transactions(tmp_path, engine="pandas")
    # by default a folder is read as parts of one table, through DuckDB, which says what it found
    with pytest.raises(SalesplanDataError, match=r"holds no Parquet or CSV file \(seen: old.xls, sales.foo\)\. "
                                                 r"Pass the path of one file"):
        load_transactions(tmp_path)
    with pytest.raises(SalesplanError, match="Cannot load from a int"):
        load_transactions(42)


def test_unreadable_files(tmp_path):
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"this is not a workbook")
    with pytest.raises(SalesplanDataError, match=r"broken\.xlsx: cannot open the Excel workbook"):
        load_transactions(broken)
    bad_pq = tmp_path / "broken.parquet"
    bad_pq.write_bytes(b"PAR1 not really")
    with pytest.raises(SalesplanDataError, match=r"broken\.parquet: cannot read the Parquet file"):
        load_transactions(bad_pq)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("date,customer,sales\n2024-01-01,a,1\n2024-01-02,b,2,extra,more\n")
    with pytest.raises(SalesplanDataError, match=r"ragged\.csv.*line 3 has 5 fields where 3 were expected.*delimiter"):
        load_transactions(ragged)


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"date,customer,sales\n"])
def test_empty_files(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(SalesplanDataError, match=r"empty\.csv.*(empty|no data rows)"):
        load_transactions(path)


def test_missing_required_column_lists_headers_and_closest_matches(tmp_path):
    path = write_delimited(tmp_path / "sales.csv", [["Order Date", "Cust_Nr", "Sales"], ["2024-01-01", "a", "1"]])
    with pytest.raises(SalesplanDataError) as info:
        load_transactions(path)
    msg = str(info.value)
    assert msg.startswith("sales.csv: missing required column(s) 'customer_id'")
    assert "closest headers: 'Cust_Nr'" in msg
    assert "Headers found: ['Order Date', 'Cust_Nr', 'Sales']" in msg
    assert "columns={'Cust_Nr': 'customer_id'}" in msg
    assert load_report(load_transactions(path, columns={"Cust_Nr": "customer_id"})).rows == 1


def test_unparseable_dates_name_file_column_and_lines(tmp_path):
    rows = [["date", "customer", "sales"]] + [[f"2024-01-{d:02d}", "a", "1"] for d in range(1, 10)]
    rows[3][0] = "yesterday"
    rows[7][0] = "2024-13-45"
    path = write_delimited(tmp_path / "d.csv", rows)
    with pytest.raises(SalesplanDataError,
                       match=r"d\.csv: column 'order_date' \(header 'date'\): 2 value\(s\) are not dates "
                             r"\(lines 4, 8; e\.g\. 'yesterday', '2024-13-45'\)\. Expected ISO"):
        load_transactions(path)


def test_mixed_day_and_month_first_is_an_error():
    src = pd.DataFrame({"date": ["13/01/2024", "01/13/2024"], "customer": ["a", "b"], "sales": [1, 2]})
    with pytest.raises(SalesplanDataError, match=r"2 value\(s\) are not dates.*dayfirst="):
        load_transactions(src)


def test_non_numeric_revenue(tmp_path):
    path = write_delimited(tmp_path / "n.csv", [["date", "customer", "sales"], ["2024-01-01", "a", "12"],
                                                 ["2024-01-02", "b", "twelve"], ["2024-01-03", "c", "1.2.3,4"]])
    with pytest.raises(SalesplanDataError,
                       match=r"n\.csv: column 'revenue' \(header 'sales'\): 2 value\(s\) are not numbers "
                             r"\(lines 3, 4; e\.g\. 'twelve', '1\.2\.3,4'\)\..*Fix those cells"):
        load_transactions(path)


def test_duplicate_keys():
    src = pd.DataFrame({"customer id": ["a", "b", "a", "c"], "name": ["A", "B", "A2", "C"]})
    with pytest.raises(SalesplanDataError, match=r"2 rows share a key \(customer_id\).*rows 0, 2.*\['a'\].*appear once"):
        load_customers(src)
    assert len(load_customers(src.iloc[[0, 1, 3]])) == 3


def test_a_few_missing_required_values_are_dropped_with_a_count(tmp_path):
    rows = [["date", "customer", "sales"]] + [["2024-01-01", f"c{i}", "1"] for i in range(40)]
    rows[5][2] = ""
    rows[9][0] = "N/A"
    path = write_delimited(tmp_path / "m.csv", rows)
    with pytest.warns(SalesplanDataWarning,
                      match=r"m\.csv: dropped 2 of 40 rows lacking a required value "
                            r"\(order_date: 1, revenue: 1; lines 6, 10\)"):
        df = load_transactions(path)
    assert len(df) == 38
    assert load_report(df).rows_dropped == {"missing order_date": 1, "missing revenue": 1}
    assert list(df.index) == list(range(38))


def test_lines_without_a_customer_are_kept_and_counted(tmp_path):
    rows = [["date", "customer", "sales"]] + [["2024-01-01", f"c{i}", "10"] for i in range(30)]
    for i in (3, 7, 8):  # guest checkouts: 3 of 29 kept lines, 10 + 10 + 20 of 300 revenue
        rows[i][1] = ""
    rows[8][2] = "20"
    rows[12][0] = ""  # a line without a date is still dropped
    path = write_delimited(tmp_path / "g.csv", rows)
    with pytest.warns(SalesplanDataWarning) as caught:
        df = load_transactions(path)
    messages = [str(w.message) for w in caught]
    guest = [m for m in messages if "have no customer" in m]
    assert guest == ["g.csv: 3 of 29 lines (13.3% of revenue) have no customer: they count in revenue, "
                     "market and forecast analyses, and are left out of customer analyses (RFM, clusters, "
                     "lifetime value, cohorts). First: lines 4, 8, 9."]
    report = load_report(df)
    assert report.guest_lines == 3 and report.guest_revenue == 40.0
    assert report.rows_dropped == {"missing order_date": 1}
    assert len(df) == 29 and df["customer_id"].isna().sum() == 3
    assert df["revenue"].sum() == 300.0  # guests count in revenue
    # 20% guests is not a reason to refuse a file: only dates and revenue are
    rows = [["date", "customer", "sales"]] + [["2024-01-01", "" if i % 5 == 0 else f"c{i}", "1"] for i in range(50)]
    df = quiet(load_transactions, write_delimited(tmp_path / "b2c.csv", rows))
    assert len(df) == 50 and load_report(df).guest_lines == 10


def test_too_many_missing_values_are_an_error(tmp_path):
    rows = [["date", "customer", "sales"]] + [["2024-01-01", f"c{i}", "" if i % 3 == 0 else "1"] for i in range(30)]
    path = write_delimited(tmp_path / "m.csv", rows)
    with pytest.raises(SalesplanDataError, match=r"10 of 30 rows \(33\.3%\) lack a required value.*At most 5%.*max_drop_fraction="):
        load_transactions(path)
    assert len(quiet(load_transactions, path, max_drop_fraction=0.5)) == 20


def test_all_problems_are_collected_in_one_error(tmp_path):
    path = write_delimited(tmp_path / "many.csv", [["date", "Sales", "x"], ["soon", "lots", "1"]])
    with pytest.raises(SalesplanDataError) as info:
        load_transactions(path)
    msg = str(info.value)
    assert msg.startswith("many.csv cannot be loaded as transactions (3 problems):")
    assert "missing required column(s) 'customer_id'" in msg
    assert "are not dates" in msg and "are not numbers" in msg
    assert isinstance(info.value.report, LoadReport)
    assert info.value.report.mapping == {"date": "order_date", "Sales": "revenue"}


def test_na_text_is_a_value_but_empty_cells_are_missing():
    df = load_customers(pd.DataFrame({"customer": ["a", "b"], "region": ["NA", ""]}))
    assert df["region"].tolist()[0] == "NA"
    assert pd.isna(df["region"].iloc[1])


def test_load_report_requires_a_loaded_frame():
    with pytest.raises(SalesplanError, match="carries no load report"):
        load_report(pd.DataFrame({"a": [1]}))
    df = load_transactions(pd.DataFrame({"date": ["2024-01-01"], "customer": ["a"], "sales": [1]}))
    summary = load_report(df).summary()
    assert list(summary.columns) == ["header", "field", "kind"]
    assert summary["field"].tolist() == ["order_date", "customer_id", "revenue"]


def test_option_validation():
    src = pd.DataFrame({"date": ["2024-01-01"], "customer": ["a"], "sales": [1]})
    with pytest.raises(SalesplanError, match="Unknown table 'sales'"):
        load_table(src, "sales")
    with pytest.raises(SalesplanError, match="dayfirst must be True, False or None"):
        load_transactions(src, dayfirst="yes")
    with pytest.raises(SalesplanError, match="columns must be a dict"):
        load_transactions(src, columns=["date"])


# --------------------------------------------------------------------------- property


DATE_HEADERS = ["Order Date", "date", "订单日期", "InvoiceDate", "日期", "when"]
CUSTOMER_HEADERS = ["Customer", "客户", "customer_id", "Client ID", "客户编号", "who"]
REVENUE_HEADERS = ["Sales", "金额", "revenue", "销售额", "Amount", "Line Total", "how much"]
OTHER_HEADERS = ["Quantity", "Unit Price", "Region", "地区", "渠道", "销售员", "junk", "备注", "", "Notes"]
JUNK = st.text(alphabet=st.sampled_from(list("0123456789-/.,$¥()% abcXYZ年月日客户\"'")), max_size=10)
DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y%m%d", "%Y年%m月%d日", "%Y/%m/%d"]


def date_cells(fmt):
    return st.dates(min_value=pd.Timestamp("1990-01-01").date(),
                    max_value=pd.Timestamp("2030-12-31").date()).map(lambda d: d.strftime(fmt))


MONEY = st.one_of(
    st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False, allow_infinity=False).map(str),
    st.integers(-5, 10**7).map(lambda i: f"{i:,}"),
    st.integers(0, 10**5).map(lambda i: f"¥{i:,}.00"),
    st.integers(1, 10**4).map(lambda i: f"({i})"),
    st.integers(0, 100).map(lambda i: f"{i}%"),
)
IDS = st.text(alphabet=st.sampled_from(list("ABCxyz0123456789客户甲乙 -")), min_size=1, max_size=8)


@st.composite
def messy_table(draw):
    """A header row and cells: usually a loadable table, with random junk, gaps and garbage headers."""
    kinds = ["date", "customer", "revenue"] + draw(st.lists(st.sampled_from(["other", "date", "revenue"]),
                                                           max_size=3))
    kinds = [k for k in kinds if draw(st.integers(0, 19)) > 0]  # sometimes a required column is absent
    kinds = draw(st.permutations(kinds)) if kinds else ["other"]
    pools = {"date": DATE_HEADERS, "customer": CUSTOMER_HEADERS, "revenue": REVENUE_HEADERS,
             "other": OTHER_HEADERS}
    # Mostly known aliases; now and then a header nobody could recognise.
    headers = [draw(st.sampled_from(pools[k][:-1])) if draw(st.integers(0, 9)) else pools[k][-1] for k in kinds]
    fmt = draw(st.sampled_from(DATE_FORMATS))
    good = {"date": date_cells(fmt), "customer": IDS, "revenue": MONEY, "other": st.one_of(IDS, MONEY)}
    n_rows = draw(st.integers(0, 12)) if draw(st.integers(0, 9)) == 0 else draw(st.integers(1, 12))
    columns = []
    for k in kinds:
        junk_rate = draw(st.sampled_from([0, 0, 0, 0.05, 0.3]))
        cells = []
        for _ in range(n_rows):
            u = draw(st.floats(0, 1))
            if u < junk_rate / 2:
                cells.append("")
            elif u < junk_rate:
                cells.append(draw(JUNK))
            else:
                cells.append(draw(good[k]))
        columns.append(cells)
    rows = [headers] + [list(r) for r in zip(*columns)] if n_rows else [headers]
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=messy_table(),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
    delimiter=st.sampled_from([",", ";", "\t", "|", " "]),
)
def test_messy_csvs_load_or_raise_a_salesplan_data_error(tmp_path, rows, encoding, delimiter):
    path = write_delimited(tmp_path / "messy.csv", rows, delimiter=delimiter, encoding=encoding)
    n_rows = len(rows) - 1
    try:
        df = quiet(load_transactions, path)
    except SalesplanDataError:
        event("raised SalesplanDataError")
        return
    event("loaded")
    assert {"order_date", "customer_id", "revenue", "is_return"} <= set(df.columns)
    assert str(df["order_date"].dtype) == "datetime64[ns]"
    assert df["customer_id"].dtype == "string"
    assert df["revenue"].dtype == "float64"
    assert df["is_return"].dtype == bool
    assert df["order_date"].notna().all() and df["revenue"].notna().all()
    assert load_report(df).guest_lines == df["customer_id"].isna().sum()  # kept, counted
    negative = df["revenue"] < 0
    if "quantity" in df:
        negative |= df["quantity"].lt(0).fillna(False)
    pdt.assert_series_equal(df["is_return"], negative, check_names=False)
    report = load_report(df)
    assert report.rows == len(df) <= report.rows_read <= n_rows


MONEY_FORMATS = {
    "plain": lambda v: f"{v:.2f}",
    "thousands": lambda v: f"{v:,.2f}",
    "yuan": lambda v: f"¥{v:,.2f}" if v >= 0 else f"-¥{-v:,.2f}",
    "accounting": lambda v: f"({-v:,.2f})" if v < 0 else f"{v:,.2f}",
    "euro": lambda v: f"{v:,.2f}".replace(",", " ").replace(".", ",") + " €",
}
DATE_OPTIONS = [("%Y-%m-%d", None), ("%Y%m%d", None), ("%m/%d/%Y", None), ("%d/%m/%Y", True),
                ("%d.%m.%Y", None), ("%Y年%m月%d日", None)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 15),
    data=st.data(),
    money=st.sampled_from(sorted(MONEY_FORMATS)),
    date_option=st.sampled_from(DATE_OPTIONS),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_clean_tables_in_any_format_load_to_the_values_written(tmp_path, n, data, money, date_option,
                                                              encoding, delimiter):
    dates = data.draw(st.lists(st.dates(min_value=pd.Timestamp("1995-01-01").date(),
                                        max_value=pd.Timestamp("2035-12-31").date()), min_size=n, max_size=n))
    ids = data.draw(st.lists(st.text(alphabet="ABCxyz0123456789客户甲乙-", min_size=1, max_size=6),
                             min_size=n, max_size=n))
    cents = data.draw(st.lists(st.integers(-10**8, 10**8), min_size=n, max_size=n))
    headers = [data.draw(st.sampled_from(h[:-1])) for h in (DATE_HEADERS, CUSTOMER_HEADERS, REVENUE_HEADERS)]
    fmt, dayfirst = date_option
    rows = [headers] + [[d.strftime(fmt), i, MONEY_FORMATS[money](c / 100)] for d, i, c in zip(dates, ids, cents)]
    path = write_delimited(tmp_path / "clean.csv", rows, delimiter=delimiter, encoding=encoding)
    df = quiet(load_transactions, path, dayfirst=dayfirst)
    expected = pd.DataFrame({
        "order_date": pd.to_datetime([d.isoformat() for d in dates]).astype("datetime64[ns]"),
        "customer_id": pd.array(ids, dtype="string"),
        "revenue": [c / 100 for c in cents],
        "is_return": [c < 0 for c in cents],
    })
    pdt.assert_frame_equal(df, expected, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- real exports


@pytest.mark.reference
def test_cdnow_master_loads_as_transactions(shared_data):
    path = shared_data / "cdnow" / "CDNOW_master.txt"
    before = sha(path)
    df = load_transactions(path, columns={"customer_id": "customer_id", "date": "order_date",
                                          "number_of_cds": "quantity", "dollar_value": "revenue"})
    assert sha(path) == before
    assert len(df) == 69_659
    assert df["customer_id"].nunique() == 23_570
    assert df["order_date"].min() == pd.Timestamp("1997-01-01")
    assert df["order_date"].max() == pd.Timestamp("1998-06-30")
    # Independent check: parse the file with plain Python, summing exact decimals.
    lines = path.read_text().splitlines()[1:]
    total = sum(Decimal(line.split()[3]) for line in lines if line.strip())
    assert df["revenue"].sum() == pytest.approx(float(total), abs=1e-6)
    assert df["quantity"].sum() == sum(int(line.split()[2]) for line in lines if line.strip())
    assert df["customer_id"].iloc[0] == "00001"  # leading zeros kept
    report = load_report(df)
    assert report.delimiter == "whitespace" and report.date_formats == {"order_date": "YYYYMMDD"}
    assert report.returns == 0 and report.rows_dropped == {}


@pytest.mark.reference
def test_cdnow_sample_without_header_by_position(shared_data):
    path = shared_data / "cdnow" / "CDNOW_sample.txt"
    df = load_transactions(path, columns={0: "customer_id", 1: None, 2: "order_date", 3: "quantity", 4: "revenue"})
    assert len(df) == 6_919
    assert df["customer_id"].nunique() == 2_357
    assert list(df.columns) == ["order_date", "customer_id", "revenue", "quantity", "is_return"]
    total = sum(Decimal(line.split()[4]) for line in path.read_text().splitlines() if line.strip())
    assert df["revenue"].sum() == pytest.approx(float(total), abs=1e-6)


def test_demo_files_load_like_load_demo(project_root):
    datasets = pytest.importorskip("salesplan.datasets")
    folder = project_root / "data" / "demo"
    if not (folder / "transactions.csv").exists():
        pytest.skip("data/demo has not been generated")
    for table in TABLES:
        df = load_table(folder / f"{table}.csv", table).drop(columns=["is_return"], errors="ignore")
        pdt.assert_frame_equal(df, datasets.load_demo(table), check_like=True)


def test_fast_and_fallback_text_readers_agree(tmp_path):
    # A blank line sends the file to pandas' C reader; without it pyarrow reads it.
    lines = ["Order Date;Customer;Amount;Qty;Code", "2024-01-05;C001;1.200,50;2;007",
             "2024-01-06; C002 ;80;;008", "2024-01-07;C003;N/A;1;", "2024-01-08;NA;(5);-1;010"]
    fast = tmp_path / "fast.csv"
    fast.write_text("\n".join(lines) + "\n")
    slow = tmp_path / "slow.csv"
    slow.write_text("\n".join(lines[:3] + [""] + lines[3:]) + "\n")
    a = quiet(load_transactions, fast, max_drop_fraction=0.5)
    b = quiet(load_transactions, slow, max_drop_fraction=0.5)
    pdt.assert_frame_equal(a, b)
    assert a["customer_id"].tolist() == ["C001", "C002", "NA"]
    assert a["revenue"].tolist() == [1200.5, 80.0, -5.0]
    assert a["code"].tolist() == ["007", "008", "010"]
    assert load_report(b).rows_dropped == {"blank lines": 1, "missing revenue": 1}
