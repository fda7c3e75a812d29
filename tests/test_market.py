"""Tests for salesplan.market (and the market charts of salesplan.plots)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesplan import market as m
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError

HYP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tx_frame(rows):
    """(date, customer, revenue, **extra) tuples -> a transactions frame."""
    df = pd.DataFrame(rows)
    df["order_date"] = pd.to_datetime(df["order_date"]).astype("datetime64[ns]")
    return df


def synthetic(rng, n=3000, n_cust=200, start="2022-01-01", end="2024-12-31"):
    days = pd.date_range(start, end, freq="D")
    season = 1 + 0.4 * np.sin(2 * np.pi * days.day_of_year.to_numpy() / 365.25)
    p = season / season.sum()
    idx = rng.choice(len(days), size=n, p=p)
    q = rng.integers(1, 5, n).astype(float)
    price = rng.uniform(5, 50, n).round(2)
    return pd.DataFrame({
        "order_date": days[idx].astype("datetime64[ns]"),
        "customer_id": pd.Series([f"c{i:03d}" for i in rng.integers(0, n_cust, n)], dtype="str"),
        "product_id": rng.choice(["p1", "p2", "p3", "p4"], n),
        "region": rng.choice(["north", "south", "east"], n),
        "channel": rng.choice(["online", "retail"], n),
        "quantity": q,
        "unit_price": price,
        "revenue": q * price,
    })


# --------------------------------------------------------------------------- sales over time


def test_sales_over_time_fills_empty_months_and_sums():
    tx = tx_frame({"order_date": ["2024-01-05", "2024-01-20", "2024-03-02"],
                   "customer_id": ["a", "b", "a"], "revenue": [10.0, 5.0, 7.0]})
    out = m.sales_over_time(tx)
    expected = pd.DataFrame({"ds": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]).astype("datetime64[ns]"),
                             "revenue": [15.0, 0.0, 7.0]})
    pdt.assert_frame_equal(out, expected)


def test_sales_over_time_by_dimension_gives_every_unit_every_period():
    tx = tx_frame({"order_date": ["2024-01-05", "2024-02-10", "2024-02-11"],
                   "customer_id": ["a", "b", "a"], "revenue": [10.0, 5.0, 7.0],
                   "region": ["north", "south", "north"]})
    out = m.sales_over_time(tx, by="region")
    assert list(out.columns) == ["region", "ds", "revenue"]
    assert out["revenue"].tolist() == [10.0, 7.0, 0.0, 5.0]
    assert out["region"].tolist() == ["north", "north", "south", "south"]


def test_sales_over_time_week_quarter_year_and_counts():
    tx = tx_frame({"order_date": ["2024-01-03", "2024-01-07", "2024-01-08", "2024-05-01"],
                   "customer_id": ["a", "b", "a", "a"], "revenue": [1.0, 2.0, 4.0, 8.0]})
    wk = m.sales_over_time(tx, freq="week")
    # 2024-01-01 is a Monday: Wednesday 3rd and Sunday 7th fall in that week
    assert wk["ds"].iloc[0] == pd.Timestamp("2024-01-01")
    assert wk["revenue"].iloc[:2].tolist() == [3.0, 4.0]
    assert (wk["ds"].dt.day_of_week == 0).all()
    q = m.sales_over_time(tx, freq="QS")
    assert q["revenue"].tolist() == [7.0, 8.0]
    y = m.sales_over_time(tx, freq="year", value="customers")
    assert y["customers"].tolist() == [2.0]


def test_bad_freq_and_missing_column_messages():
    tx = tx_frame({"order_date": ["2024-01-03"], "customer_id": ["a"], "revenue": [1.0]})
    with pytest.raises(SalesplanError, match="freq must be one of"):
        m.sales_over_time(tx, freq="fortnight")
    with pytest.raises(SalesplanDataError, match=r"missing required column\(s\) 'region'"):
        m.sales_over_time(tx, by="region")
    bad = tx.assign(order_date=["not a date"])
    with pytest.raises(SalesplanDataError, match=r"1 value\(s\) that are not dates"):
        m.sales_over_time(bad)


# --------------------------------------------------------------------------- growth


def test_growth_period_and_year_over_year():
    dates = pd.date_range("2023-01-01", "2024-01-01", freq="MS")
    rev = [100.0, 150.0, 0.0, 50.0] + [10.0] * 8 + [250.0]
    tx = tx_frame({"order_date": dates, "customer_id": ["a"] * 13, "revenue": rev})
    g = m.growth(tx)
    assert g["growth_pop"].iloc[1] == pytest.approx(0.5)
    assert g["growth_pop"].iloc[2] == pytest.approx(-1.0)
    assert math.isnan(g["growth_pop"].iloc[3])  # previous month 0: undefined, not inf
    assert math.isnan(g["growth_pop"].iloc[0])
    assert g["revenue_last_year"].iloc[12] == 100.0
    assert g["growth_yoy"].iloc[12] == pytest.approx(1.5)
    assert g["growth_yoy"].iloc[:12].isna().all()


def test_cagr_uses_complete_years_by_default():
    tx = tx_frame({"order_date": ["2022-06-01", "2023-01-15", "2023-12-31", "2025-03-01", "2025-12-20"],
                   "customer_id": list("abcde"), "revenue": [999.0, 50.0, 50.0, 300.0, 100.0]})
    out = m.cagr(tx)
    assert out[["start_year", "end_year", "years"]].iloc[0].tolist() == [2023, 2025, 2]
    assert out["value_start"].iloc[0] == 100.0
    assert out["value_end"].iloc[0] == 400.0
    assert out["cagr"].iloc[0] == pytest.approx(1.0)
    with pytest.raises(SalesplanDataError, match="two different calendar years"):
        m.cagr(tx, start_year=2023, end_year=2023)


# --------------------------------------------------------------------------- share


def test_share_and_change_in_points():
    tx = tx_frame({"order_date": ["2023-03-01", "2023-04-01", "2024-03-01", "2024-04-01"],
                   "customer_id": list("abcd"), "revenue": [75.0, 25.0, 50.0, 50.0],
                   "channel": ["online", "retail", "online", "retail"]})
    out = m.share(tx, by="channel")
    online = out[out["channel"] == "online"]
    assert online["share"].tolist() == [0.75, 0.5]
    assert online["share_change_pp"].iloc[1] == pytest.approx(-25.0)
    whole = m.share(tx, by="channel", freq=None)
    assert whole.set_index("channel")["share"].to_dict() == {"online": 0.625, "retail": 0.375}


@HYP
@given(st.lists(st.tuples(st.integers(0, 700), st.sampled_from("abc"), st.sampled_from("xy"),
                          st.floats(0.01, 1e6)), min_size=1, max_size=40))
def test_shares_sum_to_one(rows):
    tx = pd.DataFrame(rows, columns=["day", "region", "channel", "revenue"])
    tx["order_date"] = pd.Timestamp("2023-01-01") + pd.to_timedelta(tx["day"], unit="D")
    tx["customer_id"] = "c"
    out = m.share(tx, by="channel", within="region", freq="QS")
    sums = out.groupby(["region", "ds"])["share"].sum()
    totals = out.groupby(["region", "ds"])["revenue"].sum()
    assert np.allclose(sums[totals > 0], 1.0)


# --------------------------------------------------------------------------- seasonality


def seasonal_series(n_years=4, amp=0.2, slope=0.01):
    ds = pd.date_range("2020-01-01", periods=12 * n_years, freq="MS")
    pattern = 1 + amp * np.sin(2 * np.pi * (np.arange(12)) / 12)
    trend = 1000 * (1 + slope * np.arange(len(ds)))
    return pd.Series(trend * np.tile(pattern, n_years), index=ds), pattern


def test_decompose_adds_up_and_finds_the_season():
    s, pattern = seasonal_series()
    dec = m.decompose(s)
    assert list(dec.columns) == ["unique_id", "ds", "observed", "trend", "seasonal", "resid"]
    np.testing.assert_allclose(dec["observed"], dec["trend"] + dec["seasonal"] + dec["resid"], rtol=1e-12)
    # the seasonal peak is in April (sin peaks at month index 3)
    peak = dec.groupby(dec["ds"].dt.month)["seasonal"].mean().idxmax()
    assert peak == 4


def test_decompose_per_dimension_and_short_series_error(rng):
    tx = synthetic(rng)
    dec = m.decompose(tx, by="region")
    assert sorted(dec["unique_id"].unique()) == ["east", "north", "south"]
    assert (dec.groupby("unique_id").size() == 36).all()
    short = tx[tx["order_date"] < "2023-06-01"]
    with pytest.raises(SalesplanDataError, match=r"at least 2 full seasons \(2 \* period = 24 points\)"):
        m.decompose(short)


def test_seasonal_indices_recover_a_multiplicative_pattern_and_phasing_sums_to_one():
    s, pattern = seasonal_series(n_years=5, amp=0.2, slope=0.0)
    si = m.seasonal_indices(s)
    assert si["month"].tolist() == list(range(1, 13))
    assert si["seasonal_index"].mean() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(si["seasonal_index"], pattern / pattern.mean(), atol=0.02)
    w = m.phasing_weights(si)
    assert w["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(w["weight"], si["seasonal_index"] / 12)


def test_phasing_weights_per_unit_from_transactions(rng):
    tx = synthetic(rng)
    w = m.phasing_weights(tx, by="channel")
    assert set(w.columns) == {"unique_id", "channel", "month", "weight"}
    np.testing.assert_allclose(w.groupby("unique_id")["weight"].sum(), 1.0)
    with pytest.raises(SalesplanError, match="monthly .* or quarterly"):
        m.seasonal_indices(tx, freq="W", period=52)


# --------------------------------------------------------------------------- growth-share, ABC, concentration


def two_windows(base, current, **cols):
    rows = [("2023-06-01", b, u) for u, b in base.items()] + [("2024-06-01", c, u) for u, c in current.items()]
    df = tx_frame({"order_date": [r[0] for r in rows], "revenue": [float(r[1]) for r in rows],
                   "product_id": [r[2] for r in rows]})
    df["customer_id"] = "c"
    return df


def test_growth_share_quadrants_against_largest_other_unit():
    tx = two_windows({"A": 100, "B": 200, "C": 100, "D": 20}, {"A": 300, "B": 200, "C": 50, "D": 100})
    gs = m.growth_share(tx, base=("2023-01-01", "2023-12-31"), current=("2024-01-01", "2024-12-31"))
    gs = gs.set_index("product_id")
    assert gs.loc["A", "relative_share"] == pytest.approx(1.5)
    assert gs.loc["B", "relative_share"] == pytest.approx(200 / 300)
    assert gs.loc["A", "growth"] == pytest.approx(2.0)
    assert gs["share"].sum() == pytest.approx(1.0)
    # threshold = our total growth: 650 / 420 - 1
    assert gs.attrs["growth_threshold"] == pytest.approx(650 / 420 - 1)
    assert gs["quadrant"].to_dict() == {"A": "Stars", "B": "Dogs", "D": "Question marks", "C": "Dogs"}


def test_growth_share_cash_cow_and_default_windows():
    tx = two_windows({"A": 500, "B": 50}, {"A": 500, "B": 150})
    gs = m.growth_share(tx).set_index("product_id")  # default: 12 months to June 2024 vs the 12 before
    assert gs.loc["A", "quadrant"] == "Cash cows"
    assert gs.loc["B", "quadrant"] == "Question marks"


def test_growth_share_with_market_table():
    tx = two_windows({"A": 100, "B": 100}, {"A": 200, "B": 100})
    tx["region"] = tx["product_id"]
    market = pd.DataFrame({"period": pd.to_datetime(["2023-01-01", "2024-01-01"] * 2),
                           "region": ["A", "A", "B", "B"], "market_size": [1000.0, 1100.0, 400.0, 600.0]})
    gs = m.growth_share(tx, by="region", market=market, base=("2023-01-01", "2023-12-31"),
                        current=("2024-01-01", "2024-12-31")).set_index("region")
    assert gs.loc["A", "growth"] == pytest.approx(0.1)          # market growth, not ours
    assert gs.loc["A", "share"] == pytest.approx(200 / 1100)
    assert gs.loc["A", "relative_share"] == pytest.approx(200 / 900)  # vs the rest of the market
    assert gs.loc["B", "quadrant"] == "Question marks"


def test_abc_classes_cover_eighty_percent_with_a():
    tx = tx_frame({"order_date": ["2024-01-01"] * 6, "customer_id": list("abcdef"),
                   "revenue": [30.0, 50.0, 10.0, 5.0, 3.0, 2.0]})
    out = m.abc_analysis(tx, by="customer_id")
    assert out["customer_id"].tolist() == list("abcdef")[1:2] + ["a", "c", "d", "e", "f"]
    assert out["abc_class"].tolist() == ["A", "A", "B", "B", "C", "C"]
    assert out["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert out["cumulative_share"].iloc[-1] == pytest.approx(1.0)


def test_concentration_top_share_hhi_gini():
    tx = tx_frame({"order_date": ["2024-01-01"] * 4, "customer_id": list("abcd"),
                   "revenue": [50.0, 30.0, 20.0, -5.0]})
    with pytest.warns(SalesplanDataWarning, match="left out 1 customer_id"):
        out = m.concentration(tx, top_n=(1, 2))
    row = out.iloc[0]
    assert row["n_units"] == 3
    assert row["top_1_share"] == pytest.approx(0.5)
    assert row["top_2_share"] == pytest.approx(0.8)
    assert row["hhi"] == pytest.approx(3800.0)
    assert row["hhi_normalized"] == pytest.approx((0.38 - 1 / 3) / (2 / 3))
    assert row["gini"] == pytest.approx(0.2)


# --------------------------------------------------------------------------- price-volume-mix


def pvm_frame():
    rows = [
        ("2023-03-01", "A", 10, 10.0), ("2023-03-01", "B", 10, 20.0), ("2023-03-01", "C", 5, 10.0),
        ("2024-03-01", "A", 20, 11.0), ("2024-03-01", "B", 10, 20.0), ("2024-03-01", "D", 3, 10.0),
    ]
    df = tx_frame({"order_date": [r[0] for r in rows], "product_id": [r[1] for r in rows],
                   "quantity": [float(r[2]) for r in rows], "unit_price": [r[3] for r in rows]})
    df["revenue"] = df["quantity"] * df["unit_price"]
    df["customer_id"] = "c"
    return df


WINDOWS = dict(base=("2023-01-01", "2023-12-31"), current=("2024-01-01", "2024-12-31"))


def test_price_volume_mix_exact_hand_example():
    out = m.price_volume_mix(pvm_frame(), **WINDOWS).set_index("product_id")
    assert out["status"].to_dict() == {"A": "continuing", "B": "continuing", "C": "lost", "D": "new"}
    assert out.loc["A", ["volume_effect", "mix_effect", "price_effect"]].tolist() == [50.0, 50.0, 20.0]
    assert out.loc["B", ["volume_effect", "mix_effect", "price_effect"]].tolist() == [100.0, -100.0, 0.0]
    assert out.loc["C", "lost_effect"] == -50.0
    assert out.loc["D", "new_effect"] == 30.0
    summary = m.pvm_summary(out.reset_index())
    assert summary["step"].tolist() == ["revenue_base", "price", "volume", "mix", "new", "lost", "other",
                                        "revenue_current"]
    assert summary["value"].tolist() == [350.0, 20.0, 150.0, -50.0, 30.0, -50.0, 0.0, 450.0]


def test_price_volume_mix_derives_quantity_and_needs_it():
    tx = pvm_frame()
    derived = m.price_volume_mix(tx.drop(columns="quantity"), **WINDOWS)
    pdt.assert_frame_equal(derived, m.price_volume_mix(tx, **WINDOWS))
    with pytest.raises(SalesplanDataError, match="needs quantities: tx has no 'quantity' column"):
        m.price_volume_mix(tx.drop(columns=["quantity", "unit_price"]), **WINDOWS)
    with pytest.raises(SalesplanDataError, match="current window 2030-01-01..2030-12-31 has no transactions"):
        m.price_volume_mix(tx, base=WINDOWS["base"], current=("2030-01-01", "2030-12-31"))


pvm_rows = st.lists(
    st.tuples(
        st.booleans(),                                   # current window?
        st.sampled_from(["p1", "p2", "p3", "p4", "p5"]),
        st.integers(-3, 50),                             # quantity; <= 0 are returns
        st.floats(0.01, 10_000, allow_nan=False),        # unit price
    ),
    min_size=2, max_size=40,
)


@HYP
@given(pvm_rows)
def test_price_volume_mix_adds_up_exactly(rows):
    df = pd.DataFrame(rows, columns=["cur", "product_id", "quantity", "unit_price"])
    df["quantity"] = df["quantity"].astype(float)
    df["order_date"] = np.where(df["cur"], pd.Timestamp("2024-05-01"), pd.Timestamp("2023-05-01"))
    df["order_date"] = df["order_date"].astype("datetime64[ns]")
    df["revenue"] = df["quantity"] * df["unit_price"]
    df["customer_id"] = "c"
    if not df["cur"].any() or df["cur"].all():
        return
    out = m.price_volume_mix(df, **WINDOWS)
    effects = out[m._PVM_EFFECTS]
    scale = max(out["revenue_base"].abs().sum(), out["revenue_current"].abs().sum(), 1.0)
    # per unit and in total, the effects reproduce the change to 1e-9 of the revenue scale
    np.testing.assert_allclose(effects.sum(axis=1), out["total_change"], rtol=0, atol=1e-9 * scale)
    total = out["revenue_current"].sum() - out["revenue_base"].sum()
    assert math.fsum(effects.to_numpy().ravel()) == pytest.approx(total, rel=0, abs=1e-9 * scale)
    # each row lands in exactly one bucket type
    cont = out["status"] == "continuing"
    assert (out.loc[~cont, ["price_effect", "volume_effect", "mix_effect"]] == 0).all().all()


# --------------------------------------------------------------------------- customers


def test_new_vs_returning():
    tx = tx_frame({"order_date": ["2024-01-05", "2024-01-09", "2024-02-01", "2024-02-03"],
                   "customer_id": ["a", "b", "a", "c"], "revenue": [10.0, 20.0, 5.0, 7.0]})
    out = m.new_vs_returning(tx)
    feb = out[out["ds"] == "2024-02-01"].set_index("customer_type")
    assert feb.loc["new", "revenue"] == 7.0
    assert feb.loc["returning", "revenue"] == 5.0
    assert feb.loc["returning", "customers"] == 1
    jan = out[out["ds"] == "2024-01-01"].set_index("customer_type")
    assert jan.loc["returning", "revenue"] == 0.0
    assert jan.loc["new", "share"] == 1.0


def test_cohort_matrix_customers_and_revenue():
    tx = tx_frame({"order_date": ["2024-01-02", "2024-02-02", "2024-01-03", "2024-03-03", "2024-02-10"],
                   "customer_id": ["a", "a", "b", "b", "c"], "revenue": [10.0, 4.0, 10.0, 30.0, 8.0]})
    cm = m.cohort_matrix(tx)
    jan = cm[cm["cohort"] == "2024-01-01"]
    assert jan["period_number"].tolist() == [0, 1, 2]
    assert jan["retention"].tolist() == [1.0, 0.5, 0.5]
    assert jan["cohort_size"].unique().tolist() == [2]
    feb = cm[cm["cohort"] == "2024-02-01"]
    assert feb["value"].tolist() == [1.0, 0.0]
    rev = m.cohort_matrix(tx, metric="revenue")
    assert rev[rev["cohort"] == "2024-01-01"]["retention"].tolist() == [1.0, 0.2, 1.5]
    with pytest.raises(SalesplanError, match="metric must be one of"):
        m.cohort_matrix(tx, metric="orders")


# --------------------------------------------------------------------------- market table


def test_market_share_and_potential():
    tx = tx_frame({"order_date": ["2024-02-01", "2024-05-01", "2024-03-01"], "customer_id": list("abc"),
                   "revenue": [100.0, 50.0, 80.0], "region": ["north", "north", "south"]})
    market = pd.DataFrame({"period": pd.to_datetime(["2024-01-01", "2024-01-01"]),
                           "region": ["north", "south"], "market_size": [1000.0, 50.0]})
    with pytest.warns(SalesplanDataWarning, match="exceed the market size in 1 row"):
        out = m.market_share(tx, market)
    out = out.set_index("region")
    assert out.loc["north", "sales"] == 150.0
    assert out.loc["north", "market_share"] == pytest.approx(0.15)
    assert out.loc["north", "potential"] == 850.0
    dup = pd.concat([market, market])
    with pytest.raises(SalesplanDataError, match="market has 4 rows sharing the same 'period'"):
        m.market_share(tx, dup)
    # monthly market rows add up to the year
    monthly = pd.DataFrame({"period": pd.to_datetime(["2024-01-01", "2024-02-01"]), "region": "north",
                            "market_size": [400.0, 600.0]})
    yearly = m.market_share(tx, monthly)
    assert yearly[["sales", "market_size", "potential"]].iloc[0].tolist() == [150.0, 1000.0, 850.0]


# --------------------------------------------------------------------------- contracts


def test_functions_do_not_mutate_input(rng):
    tx = synthetic(rng, n=800)
    before = tx.copy(deep=True)
    m.sales_over_time(tx, by="region")
    m.growth(tx, by="channel")
    m.share(tx, by="region")
    m.growth_share(tx)
    m.abc_analysis(tx)
    m.concentration(tx)
    m.price_volume_mix(tx)
    m.new_vs_returning(tx)
    m.cohort_matrix(tx, metric="revenue")
    pdt.assert_frame_equal(tx, before)


def test_renaming_columns_via_overrides_changes_nothing(rng):
    tx = synthetic(rng, n=800)
    ren = tx.rename(columns={"order_date": "Datum", "revenue": "amount", "customer_id": "client",
                             "quantity": "units"})
    a = m.growth(tx, by="region")
    b = m.growth(ren, by="region", value="amount", date_col="Datum")
    pdt.assert_frame_equal(a, b.rename(columns=lambda c: c.replace("amount", "revenue")))
    pdt.assert_frame_equal(
        m.price_volume_mix(tx),
        m.price_volume_mix(ren, value="amount", quantity_col="units", date_col="Datum"),
    )
    pdt.assert_frame_equal(
        m.cohort_matrix(tx), m.cohort_matrix(ren, customer_col="client", date_col="Datum"))


def test_charts_build_from_the_frames(rng):
    from salesplan import plots

    tx = synthetic(rng, n=1500)
    figs = [
        plots.sales_chart(m.sales_over_time(tx, by="region")),
        plots.growth_chart(m.growth(tx, by="region")),
        plots.share_chart(m.share(tx, by="channel"), by="channel"),
        plots.decomposition_chart(m.decompose(tx)),
        plots.seasonal_index_chart(m.seasonal_indices(tx)),
        plots.growth_share_chart(m.growth_share(tx)),
        plots.pareto_chart(m.abc_analysis(tx)),
        plots.pvm_waterfall(m.pvm_summary(m.price_volume_mix(tx))),
        plots.new_vs_returning_chart(m.new_vs_returning(tx)),
        plots.cohort_heatmap(m.cohort_matrix(tx)),
    ]
    for fig in figs:
        assert len(fig.data) >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        mk = m.sales_over_time(tx, freq="YS", by="region").rename(columns={"ds": "period", "revenue": "market_size"})
        ms = m.market_share(tx, mk.assign(market_size=mk["market_size"] * 4))
    assert len(plots.market_share_chart(ms).data) == 2


def test_growth_share_counts_a_new_unit_as_growing():
    tx = two_windows({"A": 100, "B": 80}, {"A": 120, "B": 60, "E": 10})
    gs = m.growth_share(tx, base=("2023-01-01", "2023-12-31"), current=("2024-01-01", "2024-12-31"))
    new = gs.set_index("product_id").loc["E"]
    assert np.isnan(new["growth"])
    assert new["quadrant"] == "Question marks"


def test_segments_as_a_dimension():
    tx = tx_frame({"order_date": ["2024-01-05", "2024-02-10", "2024-02-11"],
                   "customer_id": ["a", "b", "a"], "revenue": [10.0, 5.0, 7.0]})
    tx["segment"] = pd.Categorical(["Champions", "Lost", "Champions"], categories=["Champions", "Loyal", "Lost"])
    out = m.sales_over_time(tx, by="segment")
    assert out["segment"].astype("str").tolist() == ["Champions", "Champions", "Lost", "Lost"]
    assert out["revenue"].tolist() == [10.0, 7.0, 0.0, 5.0]


# --------------------------------------------------------------------------- guest lines


def _guest_tx():
    return pd.DataFrame({
        "order_date": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-02-03", "2024-02-10", "2024-02-11"]),
        "customer_id": ["a", None, "a", "b", None],
        "product_id": ["p", "p", "q", "q", "p"],
        "revenue": [10.0, 4.0, 6.0, 5.0, 3.0],
    })


def test_new_vs_returning_keeps_guest_revenue_as_its_own_type():
    out = m.new_vs_returning(_guest_tx())
    feb = out[out["ds"] == pd.Timestamp("2024-02-01")].set_index("customer_type")
    assert feb.loc["returning", "revenue"] == 6.0
    assert feb.loc["new", "revenue"] == 5.0
    assert feb.loc["guest", "revenue"] == 3.0
    assert feb.loc["guest", "customers"] == 0
    assert out["revenue"].sum() == _guest_tx()["revenue"].sum()
    assert set(m.new_vs_returning(_guest_tx().dropna())["customer_type"]) == {"new", "returning"}


def test_customer_analyses_leave_guests_out_with_a_counted_warning():
    tx = _guest_tx()
    with pytest.warns(SalesplanDataWarning, match=r"left out 2 lines \(7 revenue\) without a customer \(2 of 5 lines"):
        cohorts = m.cohort_matrix(tx)
    assert cohorts.loc[cohorts["period_number"] == 0, "cohort_size"].sum() == 2
    with pytest.warns(SalesplanDataWarning, match="without a customer"):
        abc = m.abc_analysis(tx, by="customer_id")
    assert set(abc["customer_id"]) == {"a", "b"}
    assert abc["revenue"].sum() == 21.0
    with pytest.warns(SalesplanDataWarning, match="without a customer"):
        conc = m.concentration(tx, by="customer_id")
    assert conc.loc[0, "n_units"] == 2
    # revenue analyses count every line
    assert m.sales_over_time(tx)["revenue"].sum() == 28.0
