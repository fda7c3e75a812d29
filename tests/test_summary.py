"""salesplan.summary: table summary, KPIs and monthly revenue, checked by hand and against pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.summary import KPI_LABELS, filter_transactions, kpis, monthly_revenue, summarize_tables


def _tx(rows):
    """Order lines from (date, order_id, customer_id, revenue, region, channel) tuples."""
    df = pd.DataFrame(rows, columns=["order_date", "order_id", "customer_id", "revenue", "region", "channel"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    return df


@pytest.fixture
def small():
    return _tx(
        [
            ("2024-01-01", "o1", "a", 100.0, "North", "web"),  # first day of the previous window
            ("2024-06-30", "o2", "b", 200.0, "South", "shop"),
            ("2024-12-31", "o3", "a", 300.0, "North", "web"),  # last day of the previous window
            ("2025-01-01", "o4", "a", 400.0, "North", "web"),  # first day of the window
            ("2025-01-01", "o4", "a", 100.0, "North", "web"),  # second line, same order
            ("2025-05-05", "o5", "c", 250.0, "South", "partner"),
            ("2025-07-01", "r1", "a", -50.0, "North", "web"),  # a return
            ("2025-12-31", "o6", "b", 150.0, "South", "shop"),
        ]
    )


def random_tx(rng, n=2000, start="2023-01-01", end="2025-12-31"):
    days = pd.date_range(start, end, freq="D")
    rev = rng.gamma(2.0, 80.0, n)
    rev[rng.random(n) < 0.05] *= -0.5  # some returns
    return pd.DataFrame(
        {
            "order_date": days[rng.integers(0, len(days), n)],
            "order_id": [f"o{i}" for i in rng.integers(0, max(n // 2, 1), n)],
            "customer_id": [f"c{i}" for i in rng.integers(0, 150, n)],
            "revenue": rev,
            "region": rng.choice(["North", "South", "East", "West"], n),
            "channel": rng.choice(["web", "shop", "partner"], n),
        }
    )


def test_kpis_by_hand(small):
    out = kpis(small).set_index("kpi")
    assert list(out.index) == list(KPI_LABELS)
    # window 2025-01-01..2025-12-31: 400 + 100 + 250 - 50 + 150
    assert out.loc["revenue_12m", "value"] == pytest.approx(850.0)
    # previous window 2024-01-01..2024-12-31: 600
    assert out.loc["yoy_growth", "value"] == pytest.approx(850.0 / 600.0 - 1)
    assert out.loc["customers", "value"] == 3  # a, b, c
    # positive sales 900 over orders o4, o5, o6
    assert out.loc["average_order_value", "value"] == pytest.approx(300.0)
    assert out.loc["returns_share", "value"] == pytest.approx(50.0 / 900.0)
    assert (out["window_start"] == pd.Timestamp("2025-01-01")).all()
    assert (out["window_end"] == pd.Timestamp("2025-12-31")).all()
    assert (out["note"] == "").all()
    assert set(out["unit"]) <= {"money", "ratio", "count"}


def test_kpis_as_of_moves_the_window(small):
    out = kpis(small, as_of="2025-06-30").set_index("kpi")["value"]
    # 2024-07-01..2025-06-30: 300 + 500 + 250
    assert out["revenue_12m"] == pytest.approx(1050.0)
    assert out["customers"] == 2


def test_growth_missing_when_previous_window_not_covered(small):
    out = kpis(small[small["order_date"] >= "2024-03-01"]).set_index("kpi")
    assert np.isnan(out.loc["yoy_growth", "value"])
    assert "data starts 2024-06-30" in out.loc["yoy_growth", "note"]
    assert out.loc["revenue_12m", "value"] == pytest.approx(850.0)


def test_kpis_without_order_id_count_customer_days(small):
    out = kpis(small.drop(columns="order_id")).set_index("kpi")["value"]
    # positive lines: (a, 01-01) twice -> one order, (c, 05-05), (b, 12-31)
    assert out["average_order_value"] == pytest.approx(300.0)


def test_kpis_match_pandas_on_random_data(rng):
    tx = random_tx(rng)
    out = kpis(tx, as_of="2025-12-31").set_index("kpi")["value"]
    window = tx[(tx["order_date"] >= "2025-01-01") & (tx["order_date"] <= "2025-12-31")]
    prev = tx[(tx["order_date"] >= "2024-01-01") & (tx["order_date"] <= "2024-12-31")]
    pos = window[window["revenue"] > 0]
    assert out["revenue_12m"] == pytest.approx(window["revenue"].sum())
    assert out["yoy_growth"] == pytest.approx(window["revenue"].sum() / prev["revenue"].sum() - 1)
    assert out["customers"] == window["customer_id"].nunique()
    assert out["average_order_value"] == pytest.approx(pos["revenue"].sum() / pos["order_id"].nunique())
    assert out["returns_share"] == pytest.approx(-window.loc[window["revenue"] < 0, "revenue"].sum() / pos["revenue"].sum())


def test_kpis_do_not_mutate_and_accept_string_dates(small):
    before = small.copy()
    as_text = small.assign(order_date=small["order_date"].dt.strftime("%Y-%m-%d"))
    pdt.assert_frame_equal(kpis(as_text), kpis(small))
    pdt.assert_frame_equal(small, before)


def test_kpis_errors_say_what_and_how(small):
    with pytest.raises(SalesplanDataError, match=r"missing required column\(s\) 'revenue'.*closest: 'revenu'"):
        kpis(small.rename(columns={"revenue": "revenu"}))
    bad = small.assign(order_date=small["order_date"].astype(str))
    bad.loc[3, "order_date"] = "not a date"
    with pytest.raises(SalesplanDataError, match=r"1 value\(s\) that are not dates \(row 3; first: 'not a date'\)"):
        kpis(bad)
    with pytest.raises(SalesplanDataError, match="0 row"):
        kpis(small.iloc[:0])
    with pytest.raises(SalesplanError, match="DataFrame"):
        kpis([1, 2, 3])


def test_filter_transactions(small):
    north = filter_transactions(small, region="North")
    assert set(north["region"]) == {"North"} and len(north) == 5
    both = filter_transactions(small, region="South", channel="shop")
    assert list(both["order_id"]) == ["o2", "o6"]
    pdt.assert_frame_equal(filter_transactions(small), small)
    with pytest.raises(SalesplanDataError, match="'channel'"):
        filter_transactions(small.drop(columns="channel"), channel="web")


def test_monthly_revenue_fills_gaps(small):
    out = monthly_revenue(small)
    assert list(out.columns) == ["month", "revenue"]
    assert out["month"].iloc[0] == pd.Timestamp("2024-01-01")
    assert out["month"].iloc[-1] == pd.Timestamp("2025-12-01")
    assert len(out) == 24  # every month, gaps filled with 0
    assert out.set_index("month").loc["2025-01-01", "revenue"] == pytest.approx(500.0)
    assert out.set_index("month").loc["2024-02-01", "revenue"] == 0.0
    assert out["revenue"].sum() == pytest.approx(small["revenue"].sum())
    empty = monthly_revenue(small.iloc[:0])
    assert empty.empty and list(empty.columns) == ["month", "revenue"]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 300))
def test_monthly_revenue_total_is_preserved(seed, n):
    tx = random_tx(np.random.default_rng(seed), n=n)
    out = monthly_revenue(tx)
    assert out["revenue"].sum() == pytest.approx(tx["revenue"].sum())
    assert out["month"].is_monotonic_increasing and out["month"].dt.day.eq(1).all()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_region_kpis_add_up_to_the_total(seed):
    tx = random_tx(np.random.default_rng(seed), n=400)
    total = kpis(tx, as_of="2025-12-31").set_index("kpi")["value"]
    parts = [kpis(filter_transactions(tx, region=r), as_of="2025-12-31").set_index("kpi")["value"] for r in tx["region"].unique()]
    assert sum(p["revenue_12m"] for p in parts) == pytest.approx(total["revenue_12m"])
    assert 0 <= total["returns_share"]


def test_summarize_tables():
    tables = {
        "notes": pd.DataFrame({"when": pd.to_datetime(["2020-01-01", "2021-01-01"]), "x": [1, 2]}),
        "transactions": _tx([("2024-01-15", "o1", "a", 1.0, "N", "w"), ("2025-02-01", "o2", "b", 2.0, "S", "w")]),
        "customers": pd.DataFrame({"customer_id": ["a", "b", "c"], "first_order_date": [None, "2023-05-01", "2022-01-09"]}),
        "reps": pd.DataFrame({"rep_id": ["r1"]}),
    }
    out = summarize_tables(tables)
    assert list(out.columns) == ["table", "rows", "columns", "date_column", "first_date", "last_date"]
    assert list(out["table"]) == ["transactions", "customers", "reps", "notes"]  # schema order, then others
    assert list(out["rows"]) == [2, 3, 1, 2]
    assert list(out["columns"]) == [6, 2, 1, 2]
    assert out["date_column"].iloc[0] == "order_date" and out["date_column"].iloc[1] == "first_order_date"
    assert pd.isna(out["date_column"].iloc[2]) and pd.isna(out["first_date"].iloc[2])
    assert out["date_column"].iloc[3] == "when"
    assert out["first_date"].iloc[1] == pd.Timestamp("2022-01-09")
    assert out["last_date"].iloc[0] == pd.Timestamp("2025-02-01")
    assert summarize_tables({}).empty


def test_summarize_tables_rejects_non_frames():
    with pytest.raises(SalesplanError, match=r"do not: \['transactions'\]"):
        summarize_tables({"transactions": [1, 2]})
    with pytest.raises(SalesplanError, match="mapping"):
        summarize_tables(pd.DataFrame())


def test_kpis_count_guest_lines_in_revenue_and_say_so_for_customers():
    tx = pd.DataFrame({
        "order_date": pd.to_datetime(["2024-03-01", "2024-03-01", "2024-03-01", "2024-03-02"]),
        "customer_id": ["a", None, None, "a"],
        "revenue": [10.0, 4.0, 6.0, 5.0],
    })
    out = kpis(tx).set_index("kpi")
    assert out.loc["revenue_12m", "value"] == 25.0
    assert out.loc["customers", "value"] == 1
    assert "2 lines without a customer (10 revenue)" in out.loc["customers", "note"]
    # a's two days are two orders; each guest line is an order of its own
    assert out.loc["average_order_value", "value"] == 25.0 / 4
