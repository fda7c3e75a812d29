"""Tests for engine="auto", the default of salesplan.io.load_transactions and load_data: a large
CSV or Parquet file goes through DuckDB, everything DuckDB cannot read as the loader does goes to
the pandas loader, and both give the same frame, report and errors."""

from __future__ import annotations

import warnings

import pandas as pd
import pandas.testing as pdt
import pytest

duckdb = pytest.importorskip("duckdb")

from salesplan import engine, io  # noqa: E402
from salesplan.datasets import DEMO_DIR, write_transactions  # noqa: E402
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError  # noqa: E402


@pytest.fixture
def duckdb_loads(monkeypatch):
    """Every file counts as large, and each load through DuckDB is counted."""
    monkeypatch.setattr(engine, "AUTO_MIN_BYTES", {"csv": 1, "parquet": 1})
    calls = []
    real = engine.load_transactions

    def spy(source, **options):
        calls.append(source)
        return real(source, **options)

    monkeypatch.setattr(engine, "load_transactions", spy)
    return calls


def _pandas(path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        return io.load_transactions(path, engine="pandas", **options)


def test_large_files_load_through_duckdb_with_the_pandas_result(tmp_path, duckdb_loads):
    csv = write_transactions(tmp_path / "orders.csv", rows=20_000, chunk_rows=10_000, seed=4, n_customers=500)
    pq = write_transactions(tmp_path / "orders.parquet", rows=20_000, chunk_rows=10_000, seed=4, n_customers=500)
    for path in (csv, pq):
        got = io.load_transactions(path)
        pdt.assert_frame_equal(got, _pandas(path))
        assert io.load_report(got).to_dict() == io.load_report(_pandas(path)).to_dict()
    assert duckdb_loads == [csv, pq]


def test_small_files_and_frames_stay_with_pandas(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(engine, "load_transactions", lambda *a, **k: calls.append(a))
    demo = DEMO_DIR / "transactions.csv"
    assert demo.stat().st_size < engine.AUTO_MIN_BYTES["csv"]
    pdt.assert_frame_equal(io.load_transactions(demo), _pandas(demo))
    frame = pd.read_csv(demo)
    assert len(io.load_transactions(frame)) == len(frame)
    assert calls == []


def test_what_duckdb_cannot_read_goes_to_the_pandas_loader(tmp_path, duckdb_loads):
    # A GBK export with Chinese headers and Chinese dates: DuckDB reads UTF-8 and ISO or slashed
    # dates only, so the pandas loader loads it, without DuckDB's warnings on top of its own.
    gbk = tmp_path / "订单.csv"
    gbk.write_bytes(("订单日期,客户,销售额\n2024年1月5日,张三,100\n2024年1月6日,李四,-20\n").encode("gbk"))
    def warned(**options):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            frame = io.load_transactions(gbk, **options)
        return frame, [str(w.message) for w in seen]

    (got, said), (ref, ref_said) = warned(), warned(engine="pandas")
    pdt.assert_frame_equal(got, ref)
    assert said == ref_said
    assert got["order_date"].tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-06")]
    utf8 = tmp_path / "chinese_dates.csv"
    utf8.write_text("order_date,customer_id,revenue\n2024年1月5日,c1,100\n2024年2月1日,c2,50\n", encoding="utf-8")
    pdt.assert_frame_equal(io.load_transactions(utf8), _pandas(utf8))
    assert duckdb_loads == [gbk, utf8]  # tried, then left to pandas


def test_a_bad_value_is_the_pandas_loaders_error(tmp_path, duckdb_loads):
    path = tmp_path / "orders.csv"
    pd.DataFrame({"order_date": ["2024-01-02", "2024-01-03", "2024-01-04"], "customer_id": ["a", "b", "c"],
                  "revenue": ["1.5", "abc", "2"]}).to_csv(path, index=False)
    with pytest.raises(SalesplanDataError) as auto:
        io.load_transactions(path)
    with pytest.raises(SalesplanDataError) as ref:
        io.load_transactions(path, engine="pandas")
    assert str(auto.value) == str(ref.value)
    assert "line 3" in str(auto.value)


def test_load_data_takes_the_same_path(tmp_path, duckdb_loads):
    folder = tmp_path / "company"
    folder.mkdir()
    tx = write_transactions(folder / "transactions.parquet", rows=5_000, chunk_rows=5_000, seed=6, n_customers=200)
    (folder / "reps.csv").write_bytes((DEMO_DIR / "reps.csv").read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        data = io.load_data(folder)
        single = io.load_data(tx)
    pdt.assert_frame_equal(data["transactions"], _pandas(tx))
    pdt.assert_frame_equal(single["transactions"], _pandas(tx))
    assert "reps" in data
    assert duckdb_loads == [tx, tx]


def test_engine_names_are_checked():
    with pytest.raises(SalesplanError, match="Did you mean 'duckdb'"):
        io.load_transactions(DEMO_DIR / "transactions.csv", engine="duckbd")


def test_nan_in_a_parquet_float_column_is_a_missing_value_when_loading(tmp_path, duckdb_loads):
    # Some writers store NaN, not null, for a missing number, and Parquet statistics do not count
    # NaN: the whole-table load checks float columns anyway, so the line is filled or dropped as
    # the pandas loader does, not kept with a NaN revenue.
    import pyarrow as pa
    import pyarrow.parquet as papq

    n = 400
    revenue = [10.0] * n
    revenue[7] = float("nan")
    quantity = [1.0] * n
    quantity[9] = float("nan")
    revenue[9] = float("nan")
    table = pa.table({"order_date": pa.array([pd.Timestamp("2024-01-01").date()] * n, pa.date32()),
                      "customer_id": [f"c{i % 13}" for i in range(n)],
                      "quantity": pa.array(quantity, pa.float64(), from_pandas=False),
                      "unit_price": [10.0] * n,
                      "revenue": pa.array(revenue, pa.float64(), from_pandas=False)})
    path = tmp_path / "nan.parquet"
    papq.write_table(table, path)
    assert papq.read_metadata(path).row_group(0).column(4).statistics.null_count == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        got = io.load_transactions(path)
        out = tmp_path / "copy.parquet"
        engine.to_parquet(path, out)
    ref = _pandas(path)
    pdt.assert_frame_equal(got, ref)
    assert len(got) == n - 1 and got["revenue"].notna().all()  # row 7 filled from 1 x 10, row 9 dropped
    assert io.load_report(got).to_dict() == io.load_report(ref).to_dict()
    pdt.assert_frame_equal(_pandas(out), ref)


def test_b2c_export_with_guest_lines_has_the_loaders_report_and_warning(tmp_path, duckdb_loads):
    # A fifth of the lines have no customer (guest checkouts), Chinese headers, no channel or rep:
    # the guests are counted, summed and located in the report and its warning, as on pandas.
    import numpy as np

    rng = np.random.default_rng(3)
    n = 2_000
    frame = pd.DataFrame({
        "订单日期": (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 400, n), "D")).strftime("%Y/%m/%d"),
        "客户编号": np.where(rng.random(n) < 0.2, "", np.char.add("会员", rng.integers(0, 300, n).astype(str))),
        "销售额": rng.normal(80, 30, n).round(2)})
    csv = tmp_path / "订单.csv"
    frame.to_csv(csv, index=False)
    pq = tmp_path / "orders.parquet"
    frame.to_parquet(pq, index=False)
    for path in (csv, pq):
        def warned(**options):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                out = io.load_transactions(path, **options)
            return out, [str(w.message) for w in seen]

        (got, said), (ref, ref_said) = warned(), warned(engine="pandas")
        pdt.assert_frame_equal(got, ref)
        report = io.load_report(got)
        assert report.to_dict() == io.load_report(ref).to_dict()
        assert report.guest_lines == int((frame["客户编号"] == "").sum()) > 300
        assert said == ref_said and any("have no customer" in s for s in said)
    assert duckdb_loads == [csv, pq]
