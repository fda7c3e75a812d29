"""Tests for salesplan.engine: the DuckDB path gives what the pandas path gives.

Every aggregation is compared with its pandas counterpart run on the table
loaded by salesplan.io, on the demo company and on generated files (CSV,
Parquet, a glob of Parquet parts, a folder, a DuckDB table); errors name the
file and the line.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

duckdb = pytest.importorskip("duckdb")

from salesplan import engine, io, market  # noqa: E402
from salesplan.datasets import DEMO_DIR, write_transactions  # noqa: E402
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError  # noqa: E402
from salesplan.forecast import panel_from_transactions  # noqa: E402
from salesplan.segments.clv import summary_from_transactions  # noqa: E402
from salesplan.segments.rfm import rfm_table  # noqa: E402

DEMO = DEMO_DIR / "transactions.csv"


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        return fn(*args, **kwargs)


def _quiet_but(fn, *args, keep: str, **kwargs):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    for w in seen:
        if keep in str(w.message):
            warnings.warn(w.message)
    return out


@pytest.fixture(scope="module")
def demo_ref() -> pd.DataFrame:
    return io.load_transactions(DEMO)


@pytest.fixture(scope="module")
def demo_scan() -> engine.TransactionScan:
    return engine.scan_transactions(DEMO)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict:
    """A generated company as CSV, one Parquet file, and two Parquet parts in a folder."""
    folder = tmp_path_factory.mktemp("gen")
    csv = write_transactions(folder / "tx.csv", rows=30_000, chunk_rows=10_000, seed=3, n_customers=800)
    pq = write_transactions(folder / "tx.parquet", rows=30_000, chunk_rows=10_000, seed=3, n_customers=800)
    parts = folder / "parts"
    parts.mkdir()
    frame = pd.read_parquet(pq)
    frame.iloc[:12_000].to_parquet(parts / "part-0.parquet")
    frame.iloc[12_000:].to_parquet(parts / "part-1.parquet")
    return {"csv": csv, "parquet": pq, "parts": parts, "ref": io.load_transactions(csv)}


# --------------------------------------------------------------------------- the whole table


def test_load_equals_the_pandas_loader_on_the_demo(demo_ref, demo_scan):
    got = engine.load_transactions(demo_scan)
    pdt.assert_frame_equal(got, demo_ref)
    assert io.load_report(got).to_dict() == io.load_report(demo_ref).to_dict()


def test_report_of_an_aggregation_is_the_loaders_report(demo_ref):
    scan = engine.scan_transactions(DEMO)
    assert scan.report is None  # nothing read yet
    engine.panel(scan)
    ref = io.load_report(demo_ref)
    for key in ("source", "format", "mapping", "rows_read", "rows", "returns", "rows_dropped", "delimiter"):
        assert getattr(scan.report, key) == getattr(ref, key), key
    assert scan.report.returns > 0


# --------------------------------------------------------------------------- aggregations on the demo


@pytest.mark.parametrize("by", [None, "region", ["region", "category"]])
def test_panel_equals_panel_from_transactions(demo_ref, demo_scan, by):
    pdt.assert_frame_equal(engine.panel(demo_scan, by=by), panel_from_transactions(demo_ref, by=by))


def test_panel_weekly_quantity_and_count(demo_ref, demo_scan):
    for kwargs in ({"freq": "W-MON", "value": "quantity", "by": "channel"}, {"freq": "QS", "value": "count"}):
        pdt.assert_frame_equal(engine.panel(demo_scan, **kwargs), panel_from_transactions(demo_ref, **kwargs))


def test_sales_over_time_equals_market(demo_ref, demo_scan):
    for kwargs in ({"by": "region"}, {"freq": "QS", "by": ["region", "channel"]}, {"freq": "W"}):
        pdt.assert_frame_equal(engine.sales_over_time(demo_scan, **kwargs), market.sales_over_time(demo_ref, **kwargs))


@pytest.mark.parametrize("kwargs", [{}, {"frequency": "orders", "as_of": "2025-06-30"},
                                    {"frequency": "lines", "monetary": "mean"}])
def test_rfm_equals_rfm_table(demo_ref, demo_scan, kwargs):
    got, ref = _quiet(engine.rfm_table, demo_scan, **kwargs), _quiet(rfm_table, demo_ref, **kwargs)
    pdt.assert_frame_equal(got, ref)
    assert got.attrs["as_of"] == ref.attrs["as_of"]


@pytest.mark.parametrize("kwargs", [
    {},
    {"calibration_end": "2024-12-31", "observation_end": "2025-12-31", "freq": "D", "freq_multiplier": 7},
    {"calibration_end": "2025-06-30", "freq": "M"},
])
def test_bgnbd_summary_equals_summary_from_transactions(demo_ref, demo_scan, kwargs):
    pdt.assert_frame_equal(engine.summary_from_transactions(demo_scan, **kwargs),
                           summary_from_transactions(demo_ref, **kwargs))


@pytest.mark.parametrize("kwargs", [{}, {"metric": "revenue", "freq": "QS"}])
def test_cohort_matrix_equals_market(demo_ref, demo_scan, kwargs):
    pdt.assert_frame_equal(engine.cohort_matrix(demo_scan, **kwargs), market.cohort_matrix(demo_ref, **kwargs))


# --------------------------------------------------------------------------- generated files


@pytest.mark.parametrize("source", ["csv", "parquet", "parts", "glob"])
def test_generated_files_give_the_pandas_results(generated, source):
    path = generated["parts"] / "*.parquet" if source == "glob" else generated[source]
    scan = engine.scan_transactions(path)
    ref = generated["ref"]
    pdt.assert_frame_equal(engine.panel(scan, by=["region", "category"]),
                           panel_from_transactions(ref, by=["region", "category"]))
    pdt.assert_frame_equal(_quiet(engine.rfm_table, scan), _quiet(rfm_table, ref))
    assert scan.report.rows == len(ref) == 30_000
    assert scan.report.returns == int(ref["is_return"].sum()) > 0


def test_duckdb_table_source(generated):
    con = duckdb.connect()
    con.execute(f"CREATE TABLE sales AS SELECT * FROM read_parquet('{generated['parquet']}')")
    scan = engine.scan_transactions(con, query="sales")
    pdt.assert_frame_equal(engine.cohort_matrix(scan), market.cohort_matrix(generated["ref"]))
    assert scan.report.format == "duckdb"


# --------------------------------------------------------------------------- contract: mapping, parsing, rules


def _write(tmp_path, name: str, frame: pd.DataFrame):
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


def test_aliases_text_numbers_and_derived_revenue_match_io(tmp_path):
    raw = pd.DataFrame({
        "Invoice Date": ["2024-01-05", "2024/01/20", "20240203", "2024-02-10"],
        "客户": ["0012", "c2", "c2", "c3"],
        "Qty": ["2", "1", "3", "-1"],
        "Unit Price": ["$1,200.50", "(50)", "12%", "1.234,5"],
        "Notes": ["a", "b", "", "d"],
    })
    for name in ("raw.csv", "raw.parquet"):
        path = _write(tmp_path, name, raw)
        got, ref = engine.load_transactions(path), io.load_transactions(path)
        pdt.assert_frame_equal(got, ref)
        assert io.load_report(got).derived == ["revenue = quantity * unit_price"]
        assert got["customer_id"].iloc[0] == "0012"  # codes keep their leading zeros
        assert got["is_return"].tolist() == [False, True, False, True]


@pytest.mark.parametrize("form", ["timestamps", "day-first text", "dates"])
def test_every_date_form_gives_the_pandas_panel_and_rfm(tmp_path, form):
    # The aggregates read the day of each line from the source's own type (a Parquet DATE
    # as it is, a timestamp cast, text parsed): a late-evening time must not move a line
    # to the next day, month or customer day count.
    rng = np.random.default_rng(7)
    n = 400
    stamps = pd.Timestamp("2023-12-25") + pd.to_timedelta(rng.integers(0, 70 * 24 * 60, n), unit="min")
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in rng.integers(0, 30, n)],
                          "region": rng.choice(["North", "South"], n), "revenue": rng.normal(50, 30, n).round(2)})
    if form == "timestamps":
        frame.insert(0, "order_date", stamps.floor("s"))
        path = tmp_path / "stamps.parquet"
        frame.to_parquet(path)
    elif form == "dates":
        frame.insert(0, "order_date", stamps.date)
        path = tmp_path / "dates.parquet"
        frame.to_parquet(path)
    else:
        frame.insert(0, "order_date", stamps.strftime("%d/%m/%Y"))
        path = _write(tmp_path, "dayfirst.csv", frame)
    scan, ref = engine.scan_transactions(path), io.load_transactions(path)
    pdt.assert_frame_equal(engine.panel(scan, by="region"), panel_from_transactions(ref, by="region"))
    pdt.assert_frame_equal(engine.panel(scan, freq="W-MON"), panel_from_transactions(ref, freq="W-MON"))
    for kwargs in ({}, {"as_of": "2024-01-31"}):
        pdt.assert_frame_equal(_quiet(engine.rfm_table, scan, **kwargs), _quiet(rfm_table, ref, **kwargs))


def test_nan_in_a_csv_number_column_is_a_missing_value_as_io_reads_it(tmp_path):
    # DuckDB types the column as DOUBLE and reads "NaN" as a float; pandas reads it as missing,
    # so the line has no revenue and is dropped, instead of turning the month's sum into NaN.
    frame = pd.DataFrame({"order_date": [f"2024-01-{1 + i % 28:02d}" for i in range(50)],
                          "customer_id": [f"c{i % 5}" for i in range(50)], "revenue": np.arange(50.0) + 1})
    frame.loc[7, "revenue"] = np.nan
    path = tmp_path / "nan.csv"
    frame.to_csv(path, index=False, na_rep="NaN")
    ref = _quiet(io.load_transactions, path)
    with pytest.warns(SalesplanDataWarning, match="dropped 1 of 50 rows"):
        scan = engine.scan_transactions(path)
        got = engine.panel(scan)
    pdt.assert_frame_equal(got, panel_from_transactions(ref))
    assert got["y"].sum() == frame["revenue"].sum() and scan.report.rows == 49
    pdt.assert_frame_equal(_quiet(engine.rfm_table, scan), _quiet(rfm_table, ref))


def test_text_in_a_number_column_past_the_sample_falls_back_to_parsing(tmp_path):
    # DuckDB types the column from the first lines; a "$" far below must still parse, not fail.
    n = 25_000
    frame = pd.DataFrame({"order_date": ["2024-03-01"] * n, "customer_id": [f"c{i % 50}" for i in range(n)],
                          "revenue": [f"{i}.5" for i in range(n)]})
    frame.loc[n - 3, "revenue"] = "$1,000.00"
    path = _write(tmp_path, "late.csv", frame)
    got = engine.load_transactions(path)
    assert got["revenue"].iloc[n - 3] == 1000.0
    pdt.assert_frame_equal(got, io.load_transactions(path))


def test_lines_without_a_customer_are_kept_and_without_a_date_dropped(tmp_path):
    frame = pd.DataFrame({"order_date": ["2024-01-01", "", "2024-01-03", "2024-01-04"] * 10,
                          "customer_id": ["a", "b", "", "d"] * 10, "revenue": [1.0, 2.0, 3.0, -4.0] * 10})
    path = _write(tmp_path, "gaps.csv", frame)
    with pytest.warns(SalesplanDataWarning, match=r"dropped 10 of 40 rows .*order_date: 10; lines 3, 7, 11, 15, 19"):
        scan = engine.scan_transactions(path, max_drop_fraction=0.3)
        got = engine.load_transactions(scan)
    assert len(got) == 30 and got["customer_id"].isna().sum() == 10
    assert scan.report.rows_dropped == {"missing order_date": 10}
    assert scan.report.returns == 10
    with pytest.warns(SalesplanDataWarning, match="ignored 10 row"):
        rfm = _quiet_but(engine.rfm_table, scan, keep="ignored")
    assert rfm["customer_id"].tolist() == ["a", "d"]


def test_too_many_incomplete_lines_is_an_error(tmp_path):
    frame = pd.DataFrame({"order_date": ["2024-01-01", ""] * 5, "customer_id": ["a"] * 10, "revenue": [1.0] * 10})
    path = _write(tmp_path, "holes.csv", frame)
    with pytest.raises(SalesplanDataError, match=r"5 of 10 rows \(50.0%\) lack a required value"):
        engine.panel(engine.scan_transactions(path))


def test_missing_required_column_names_the_closest_headers(tmp_path):
    path = _write(tmp_path, "nodate.csv", pd.DataFrame({"Ordr Date": ["2024-01-01"], "customer": ["a"], "sales": [1]}))
    with pytest.raises(SalesplanDataError, match=r"missing required column\(s\) 'order_date' \(closest headers: 'Ordr Date'"):
        engine.scan_transactions(path)


# --------------------------------------------------------------------------- errors name the file and the line


def test_bad_value_in_a_csv_names_the_file_and_the_line_as_io_does(tmp_path):
    n = 30_000
    frame = pd.DataFrame({"order_date": ["2024-03-01"] * n, "customer_id": ["c1"] * n, "revenue": ["1.5"] * n})
    frame.loc[[20_000, 29_998], "revenue"] = ["abc", "12..5"]
    frame.loc[25_000, "order_date"] = "not a date"
    path = _write(tmp_path, "orders.csv", frame)
    with pytest.raises(SalesplanDataError) as got:
        engine.panel(engine.scan_transactions(path))
    with pytest.raises(SalesplanDataError) as ref:
        io.load_transactions(path)
    text = str(got.value)
    assert text.startswith("orders.csv cannot be loaded as transactions (2 problems)")
    assert "column 'revenue': 2 value(s) are not numbers (lines 20002, 30000; e.g. 'abc', '12..5')" in text
    assert "column 'order_date': 1 value(s) are not dates (line 25002; e.g. 'not a date')" in text
    # The same words as the pandas loader (which also reads Excel serial dates, hence its longer hint).
    same = [ln for ln in str(ref.value).splitlines() if "'revenue'" in ln]
    assert same and same[0] in text.splitlines()


def test_bad_value_in_parquet_parts_names_the_part_and_the_row(generated, tmp_path):
    frame = pd.read_parquet(generated["parquet"])
    frame["quantity"] = frame["quantity"].astype(str)
    frame.loc[17_000, "quantity"] = "lots"
    frame.iloc[:12_000].to_parquet(tmp_path / "part-0.parquet")
    frame.iloc[12_000:].to_parquet(tmp_path / "part-1.parquet")
    with pytest.raises(SalesplanDataError, match=r"column 'quantity': 1 value\(s\) are not numbers "
                                                 r"\(data row 5001 of part-1.parquet; e.g. 'lots'\)"):
        engine.rfm_table(engine.scan_transactions(tmp_path))


def test_corrupt_parquet_fails_naming_the_file(generated, tmp_path):
    good = generated["parquet"].read_bytes()
    (tmp_path / "part-0.parquet").write_bytes(good)
    (tmp_path / "part-1.parquet").write_bytes(good[: len(good) // 2])
    with pytest.raises(SalesplanDataError, match=r"^part-1.parquet: cannot read the Parquet file .*complete Parquet file"):
        engine.panel(engine.scan_transactions(tmp_path / "*.parquet"))


def test_missing_files_and_unknown_kinds_say_what_to_do(tmp_path):
    with pytest.raises(SalesplanDataError, match="File not found"):
        engine.scan_transactions(tmp_path / "nope.parquet")
    with pytest.raises(SalesplanDataError, match="No file matches"):
        engine.scan_transactions(str(tmp_path / "*.parquet"))
    (tmp_path / "book.xlsx").write_bytes(b"PK")
    with pytest.raises(SalesplanDataError, match="Excel and SQLite files load with salesplan.io"):
        engine.scan_transactions(tmp_path / "book.xlsx")
    with pytest.raises(SalesplanError, match="freq="):
        engine.panel(engine.scan_transactions(DEMO), freq="W-SUN")


def test_the_caller_frame_of_a_source_is_never_touched(generated):
    before = generated["ref"].copy()
    engine.panel(engine.scan_transactions(generated["csv"]))
    pdt.assert_frame_equal(generated["ref"], before)
    assert np.isfinite(before["revenue"]).all()


def test_keys_that_clean_to_one_customer_are_merged(tmp_path):
    frame = pd.DataFrame({"order_date": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-05"],
                          "customer_id": ["c1", " c1 ", "c2", "c1"], "region": ["N", " N", "S", "N"],
                          "revenue": [1.0, 2.0, 3.0, 4.0]})
    path = _write(tmp_path, "pad.parquet", frame)
    ref = io.load_transactions(path)
    scan = engine.scan_transactions(path)
    got = engine.rfm_table(scan)
    pdt.assert_frame_equal(got, rfm_table(ref))
    assert got["frequency"].tolist() == [2, 1]  # one purchase day, not two, for "c1" and " c1 " on Jan 1
    pdt.assert_frame_equal(engine.panel(scan, by="region"), panel_from_transactions(ref, by="region"))


def test_duckdb_database_file(generated, tmp_path):
    db = tmp_path / "sales.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE transactions AS SELECT * FROM read_parquet('{generated['parquet']}')")
    con.close()
    scan = engine.scan_transactions(db)
    pdt.assert_frame_equal(engine.panel(scan, by="channel"), panel_from_transactions(generated["ref"], by="channel"))
    assert scan.source == "sales.duckdb (table 'transactions')"


def test_empty_revenue_is_filled_from_quantity_and_price(tmp_path):
    frame = pd.DataFrame({"order_date": ["2024-01-01", "2024-01-02", "2024-01-03"], "customer_id": ["a", "b", "c"],
                          "quantity": [2, 3, 1], "unit_price": [5.0, 4.0, 2.5], "revenue": [10.0, None, 2.5]})
    path = _write(tmp_path, "fill.csv", frame)
    scan = engine.scan_transactions(path)
    got, ref = engine.load_transactions(scan), io.load_transactions(path)
    pdt.assert_frame_equal(got, ref)
    assert scan.report.derived == io.load_report(ref).derived == ["revenue = quantity * unit_price on 1 row(s) missing revenue"]
    assert engine.rfm_table(scan)["monetary"].tolist() == [10.0, 12.0, 2.5]


def test_dispatch_is_the_hook_of_the_pandas_loader(generated):
    assert engine.dispatch(DEMO, engine="pandas") is None
    assert engine.dispatch(DEMO, engine="auto") is None  # one file: pandas loads it
    parts = engine.dispatch(generated["parts"], engine="auto", columns=None, max_drop_fraction=0.05)
    pdt.assert_frame_equal(parts, engine.load_transactions(generated["parts"]))
    assert len(parts) == 30_000
    pdt.assert_frame_equal(engine.dispatch(DEMO, engine="duckdb"), io.load_transactions(DEMO))
    with pytest.raises(SalesplanError, match="Did you mean 'duckdb'"):
        engine.dispatch(DEMO, engine="duck")
    with pytest.raises(SalesplanError, match="reads UTF-8 CSV and Parquet"):
        engine.dispatch(DEMO, engine="duckdb", encoding="gb18030")


def test_docstring_examples_run():
    import doctest

    assert doctest.testmod(engine).failed == 0


def test_load_transactions_engine_hook_gives_the_pandas_result(tmp_path):
    from salesplan.io import load_transactions

    src = DEMO
    pandas_path = load_transactions(src)
    duck_path = load_transactions(src, engine="duckdb")
    pdt.assert_frame_equal(duck_path.reset_index(drop=True), pandas_path.reset_index(drop=True), check_dtype=False)
    # "auto" keeps one file on the pandas path; a folder of parts goes through DuckDB
    assert load_transactions(src, engine="auto").attrs["salesplan"]["format"] == pandas_path.attrs["salesplan"]["format"]
    with pytest.raises(SalesplanError, match="engine must be one of"):
        load_transactions(src, engine="duckbd")


def test_parquet_footers_skip_only_the_checks_they_prove(generated, tmp_path):
    # The generated Parquet file has no missing or infinite number or date: those checks are left out.
    clean = engine.scan_transactions(generated["parquet"])
    assert {"order_date", "revenue", "quantity", "unit_price"} <= clean._clean
    assert not any("sp_odd" in c for c in clean._counters())
    # One part with a missing revenue and an infinite price, one part clean: every check stays
    # where a footer shows a missing or infinite value, and the results are still the loader's.
    frame = pd.read_parquet(generated["parquet"])
    frame.loc[20_000, "revenue"] = np.nan
    frame.loc[20_001, "unit_price"] = np.inf
    frame.iloc[:12_000].to_parquet(tmp_path / "part-0.parquet")
    frame.iloc[12_000:].to_parquet(tmp_path / "part-1.parquet")
    scan = engine.scan_transactions(tmp_path)
    assert "revenue" not in scan._clean and "unit_price" not in scan._clean and "order_date" in scan._clean
    with pytest.raises(SalesplanDataError, match=r"column 'unit_price': 1 value\(s\) are not numbers "
                                                 r"\(data row 8002 of part-1.parquet"):
        engine.panel(scan)
    frame.loc[20_001, "unit_price"] = 10.0
    frame.iloc[12_000:].to_parquet(tmp_path / "part-1.parquet")
    ref = _quiet(io.load_transactions, tmp_path / "part-1.parquet")
    scan = engine.scan_transactions(tmp_path / "part-1.parquet")
    pdt.assert_frame_equal(_quiet(engine.panel, scan, by="region"), panel_from_transactions(ref, by="region"))
    # the missing revenue is filled from quantity * unit_price, as the loader does and says
    assert scan.report.derived == io.load_report(ref).derived
    assert any("on 1 row(s)" in d for d in scan.report.derived)
    assert scan.report.rows == io.load_report(ref).rows


def test_text_cleaning_shortcut_changes_no_value():
    # sp_text keeps long values without spaces as they are, without trimming or lower-casing
    # them: for every value it must give what the full rule gives.
    scan = engine.scan_transactions(DEMO)
    values = ["", " ", "NULL", " null ", "None", "NaN", "#N/A", "<NA>", "n/a", "NaT", "nulls", " C0001", "C0001 ",
              "C0001", "North", "\tNorth", "North\t", "P1", "R02", "直销", " 华东 ", "  none  ", "n/a  x", "NULLNULL",
              "n", "N", "Nat", "nA", "#", "#n/A", "<", "<Na>", "x", "P", "0", "-", "ñ", "NONE", "nONe"]
    full = f"CASE WHEN t IS NULL OR lower(trim(t)) IN {engine._MISSING_TEXT_SQL} THEN NULL ELSE trim(t) END"
    rows = scan.con.execute(f"SELECT t, sp_text(t), {full} FROM (SELECT unnest($1) AS t)", [values]).fetchall()
    assert len(rows) == len(values)
    assert [r[1] for r in rows] == [r[2] for r in rows]
