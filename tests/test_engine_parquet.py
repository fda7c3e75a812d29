"""Tests for salesplan.engine.to_parquet and ``salesplan convert``: an export written once as a
checked Parquet file reads back as the loader reads the export, and nothing of the user's is
overwritten or left half-written."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

duckdb = pytest.importorskip("duckdb")

from salesplan import engine, io  # noqa: E402
from salesplan.cli import main  # noqa: E402
from salesplan.datasets import DEMO_DIR, write_transactions  # noqa: E402
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError  # noqa: E402
from salesplan.forecast import panel_from_transactions  # noqa: E402
from salesplan.segments.rfm import rfm_table  # noqa: E402

DEMO = DEMO_DIR / "transactions.csv"


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        return fn(*args, **kwargs)


def _same_lines(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    """The loader's frame of the Parquet copy equals the loader's frame of the export."""
    pdt.assert_frame_equal(got.reset_index(drop=True), ref.reset_index(drop=True), check_like=False)


def test_demo_copy_reads_back_as_the_export(tmp_path):
    out = tmp_path / "demo.parquet"
    report = engine.to_parquet(DEMO, out)
    ref = io.load_transactions(DEMO)
    assert report.rows == len(ref) and report.returns == io.load_report(ref).returns
    got = io.load_transactions(out)
    _same_lines(got, ref)
    # the copy's footers prove what the checks would find: later scans leave them out
    scan = engine.scan_transactions(out)
    assert {"order_date", "revenue", "quantity", "unit_price"} <= scan._clean
    assert scan._fields["order_date"].source_type == "DATE"
    pdt.assert_frame_equal(engine.panel(scan, by="region"), panel_from_transactions(ref, by="region"))
    pdt.assert_frame_equal(_quiet(engine.rfm_table, scan), _quiet(rfm_table, ref))
    assert DEMO.exists()


def test_messy_export_is_written_mapped_parsed_and_without_dropped_lines(tmp_path):
    src = tmp_path / "shop.csv"
    src.write_text(
        "Invoice Date,客户,Qty,Unit Price,Amount,Notes\n"
        "05/01/2024,0012,2,\"$1,200.50\",,a\n"        # revenue filled from quantity * price
        "20/01/2024,c2,1,(50),-50,b\n"                 # a credit note
        "03/02/2024,c2,3,12%,0.36,\n"
        ",c3,1,10,10,no date\n"                        # dropped: no date
        "10/02/2024,,1,\"1.234,5\",1234.5,guest\n"    # no customer: kept
        + "".join(f"1{i % 9}/02/2024,c{i % 7},1,5,5,x\n" for i in range(40)),
        encoding="utf-8",
    )
    before = src.read_bytes()
    out = tmp_path / "shop.parquet"
    with pytest.warns(SalesplanDataWarning, match="dropped 1 of 45 rows"):
        report = engine.to_parquet(src, out)
    ref = _quiet(io.load_transactions, src)
    assert report.rows == len(ref) == 44 and report.returns == 1
    assert any("on 1 row(s)" in d for d in report.derived)
    written = pd.read_parquet(out)
    assert len(written) == 44 and written["order_date"].notna().all()  # the line without a date is left out
    got = _quiet(io.load_transactions, out)
    _same_lines(got, ref)
    assert io.load_report(got).rows_dropped == {}
    assert got["customer_id"].iloc[0] == "0012"  # codes keep their leading zeros
    assert got["revenue"].iloc[0] == pytest.approx(2401.0)
    assert list(written.columns[:2]) == ["order_date", "customer_id"]
    assert "notes" in {c.lower() for c in written.columns}
    assert src.read_bytes() == before


def test_parts_and_a_glob_become_one_file(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    whole = write_transactions(tmp_path / "whole.parquet", rows=6_000, chunk_rows=2_000, seed=5, n_customers=300)
    frame = pd.read_parquet(whole)
    frame.iloc[:2_500].to_parquet(parts / "2024.parquet")
    frame.iloc[2_500:].to_parquet(parts / "2025.parquet")
    out = tmp_path / "all.parquet"
    engine.to_parquet(str(parts / "*.parquet"), out)
    pdt.assert_frame_equal(io.load_transactions(out), io.load_transactions(whole))


def test_what_is_refused_leaves_every_file_as_it_was(tmp_path):
    src = tmp_path / "orders.csv"
    pd.DataFrame({"order_date": ["2024-01-02", "2024-01-03"], "customer_id": ["a", "b"],
                  "revenue": [1.0, 2.0]}).to_csv(src, index=False)
    existing = tmp_path / "orders.parquet"
    existing.write_bytes(b"someone's file")
    with pytest.raises(SalesplanError, match=r"already exists; pass overwrite=True \(salesplan convert --overwrite\)"):
        engine.to_parquet(src, existing)
    assert existing.read_bytes() == b"someone's file"
    with pytest.raises(SalesplanError, match="must end in .parquet"):
        engine.to_parquet(src, tmp_path / "orders.csv.out")
    with pytest.raises(SalesplanError, match="does not exist"):
        engine.to_parquet(src, tmp_path / "no" / "such.parquet")
    pq = tmp_path / "copy.parquet"
    engine.to_parquet(src, pq)
    with pytest.raises(SalesplanError, match="is the source itself"):
        engine.to_parquet(pq, pq, overwrite=True)
    assert len(io.load_transactions(pq)) == 2
    engine.to_parquet(src, existing, overwrite=True)
    assert len(io.load_transactions(existing)) == 2


def test_bad_values_name_the_line_and_write_nothing(tmp_path):
    n = 3_000
    frame = pd.DataFrame({"order_date": ["2024-03-01"] * n, "customer_id": ["c1"] * n, "revenue": ["1.5"] * n})
    frame.loc[2_000, "revenue"] = "abc"
    src = tmp_path / "orders.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / "orders.parquet"
    with pytest.raises(SalesplanDataError, match=r"column 'revenue': 1 value\(s\) are not numbers \(line 2002"):
        engine.to_parquet(src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv"]  # no file, no temporary left


def test_convert_command(tmp_path, capsys):
    src = tmp_path / "export.csv"
    rng = np.random.default_rng(2)
    pd.DataFrame({"Fecha": pd.date_range("2024-01-01", periods=50).strftime("%Y-%m-%d"),
                  "Cliente": [f"k{i}" for i in rng.integers(0, 9, 50)],
                  "Importe": rng.normal(100, 20, 50).round(2)}).to_csv(src, index=False)
    out = tmp_path / "export.parquet"
    args = ["convert", str(src), str(out), "--column", "Fecha=order_date", "--column", "Cliente=customer_id",
            "--column", "Importe=revenue"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "'Fecha' -> order_date" in text and "Lines written: 50 of 50 read" in text and "OK: wrote" in text
    assert len(io.load_transactions(out)) == 50
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().out
    assert main(args + ["--overwrite"]) == 0
    capsys.readouterr()
    assert main(["convert", str(src), str(out), "--column", "0=order_date"]) == 2
    assert "by header name" in capsys.readouterr().err


def test_real_wholesaler_export_converts_to_what_the_loader_reads(shared_data, tmp_path):
    # sales_data_sample: dates such as "2/24/2003 0:00 " (month first, a time, a trailing space),
    # "2765.9 " with a trailing space, a status "Cancelled " and 74 cells with U+FFFD.
    src = shared_data / "exports" / "sales_data_sample" / "sales_data_sample.csv"
    ref = _quiet(io.load_transactions, src)
    out = tmp_path / "wholesaler.parquet"
    report = _quiet(engine.to_parquet, src, out)
    assert report.rows == len(ref) == 2_823
    assert report.mapping == io.load_report(ref).mapping
    assert report.date_formats == io.load_report(ref).date_formats == {"order_date": "month-first"}
    _same_lines(_quiet(engine.load_transactions, src), ref)
    got = _quiet(io.load_transactions, out)
    _same_lines(got, ref)
    assert got["revenue"].sum() == pytest.approx(10_032_628.85, abs=0.01)
    assert got["customer_id"].nunique() == 92 and got["order_id"].nunique() == 307
    assert got["order_date"].min() == pd.Timestamp("2003-01-06")


def test_real_tmall_export_with_chinese_headers_and_no_customer(shared_data, tmp_path):
    # Order level, Chinese headers (two end in a space), CRLF, no customer column: the engine's
    # aggregates need only a date and a revenue, and read the copy as they read the export.
    src = shared_data / "exports" / "tmall_orders" / "tmall_order_report.csv"
    columns = {"订单创建时间": "order_date", "买家实际支付金额": "revenue", "订单编号": "order_id"}
    out = tmp_path / "tmall.parquet"
    report = _quiet(engine.to_parquet, src, out, columns=columns)
    assert report.rows == 28_010
    written = pd.read_parquet(out)
    assert written["revenue"].sum() == pytest.approx(1_902_487.15, abs=0.01)
    assert list(written.columns) == ["order_date", "revenue", "order_id", "总金额", "收货地址", "订单付款时间", "退款金额"]
    pdt.assert_frame_equal(engine.panel(out, freq="D"), engine.panel(engine.scan_transactions(src, columns=columns),
                                                                      freq="D"))
