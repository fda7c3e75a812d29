"""Tests for salesplan.segments.rfm."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.segments.rfm import RFM_SEGMENT_RULES, SEGMENTS, rfm_scores, rfm_segments, rfm_summary, rfm_table

HYP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def small_tx():
    return pd.DataFrame({
        "order_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-03-01", "2024-03-20",
                                      "2024-02-10", "2024-04-02"]).astype("datetime64[ns]"),
        "customer_id": pd.Series(["a", "a", "a", "b", "c", "c"], dtype="str"),
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
        "revenue": [100.0, 20.0, 50.0, 20.0, 300.0, 10.0],
    })


def random_tx(rng, n=5000, n_cust=400):
    return pd.DataFrame({
        "order_date": (pd.Timestamp("2023-01-01")
                       + pd.to_timedelta(rng.integers(0, 700, n), unit="D")).astype("datetime64[ns]"),
        "customer_id": pd.Series([f"c{i}" for i in rng.integers(0, n_cust, n)], dtype="str"),
        "revenue": rng.gamma(2.0, 40.0, n).round(2),
    })


# --------------------------------------------------------------------------- rfm_table


def test_rfm_table_exact_values():
    out = rfm_table(small_tx(), as_of="2024-03-31")  # c's April order is after as_of
    expected = pd.DataFrame({
        "customer_id": pd.Series(["a", "b", "c"], dtype="str"),
        "first_purchase": pd.to_datetime(["2024-01-01", "2024-03-20", "2024-02-10"]).astype("datetime64[ns]"),
        "last_purchase": pd.to_datetime(["2024-03-01", "2024-03-20", "2024-02-10"]).astype("datetime64[ns]"),
        "recency": np.array([30, 11, 50], dtype=np.int64),
        "tenure": np.array([90, 11, 50], dtype=np.int64),
        "frequency": np.array([2, 1, 1], dtype=np.int64),   # a bought twice on 2024-01-01: one purchase day
        "monetary": [170.0, 20.0, 300.0],
    })
    pdt.assert_frame_equal(out, expected)
    assert out.attrs["as_of"] == pd.Timestamp("2024-03-31")


def test_frequency_and_monetary_options():
    tx = small_tx()
    orders = rfm_table(tx, as_of="2024-03-31", frequency="orders").set_index("customer_id")
    assert orders.loc["a", "frequency"] == 3
    lines = rfm_table(tx, frequency="lines").set_index("customer_id")
    assert lines["frequency"].to_dict() == {"a": 3, "b": 1, "c": 2}
    mean = rfm_table(tx, as_of="2024-03-31", monetary="mean").set_index("customer_id")
    assert mean.loc["a", "monetary"] == 85.0
    with pytest.raises(SalesplanDataError, match="missing required column"):
        rfm_table(tx.drop(columns="order_id"), frequency="orders")
    with pytest.raises(SalesplanError, match="frequency must be one of"):
        rfm_table(tx, frequency="weeks")


def test_default_as_of_is_last_date_and_single_purchases():
    out = rfm_table(small_tx()).set_index("customer_id")
    assert out.attrs["as_of"] == pd.Timestamp("2024-04-02")
    assert out.loc["b", "frequency"] == 1
    assert out.loc["b", "recency"] == out.loc["b", "tenure"] == 13
    assert out.loc["c", "recency"] == 0


def test_as_of_before_data_is_an_error():
    with pytest.raises(SalesplanError, match=r"as_of=2023-12-01 is before the data starts \(2024-01-01"):
        rfm_table(small_tx(), as_of="2023-12-01")


def test_returns_make_non_positive_monetary_with_warning():
    tx = small_tx()
    tx.loc[len(tx)] = [pd.Timestamp("2024-03-25"), "b", "o7", -40.0]
    with pytest.warns(SalesplanDataWarning, match="1 customer\\(s\\) have a net monetary value <= 0"):
        out = rfm_table(tx, as_of="2024-03-31")
    assert out.set_index("customer_id").loc["b", "monetary"] == -20.0
    scores = rfm_scores(out).set_index("customer_id")
    assert scores.loc["b", "m_score"] == 1


def test_rows_without_customer_or_date_are_counted_and_ignored():
    tx = small_tx()
    tx.loc[0, "customer_id"] = None
    tx.loc[1, "order_date"] = pd.NaT
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = rfm_table(tx, as_of="2024-03-31")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2, messages
    assert messages[0].startswith("rfm_table: left out 1 line (100 revenue) without a customer")
    assert messages[1] == "rfm_table: ignored 1 row(s) without a date or value (row 1)."
    assert all(w.filename == __file__ for w in record)  # the warnings point at the caller
    assert out.set_index("customer_id").loc["a", "monetary"] == 50.0


def test_matches_a_plain_pandas_groupby(rng):
    tx = random_tx(rng)
    as_of = pd.Timestamp("2024-06-30")
    ours = rfm_table(tx, as_of=as_of)
    t = tx[tx["order_date"] <= as_of]
    g = t.groupby("customer_id")
    ref = pd.DataFrame({
        "recency": (as_of - g["order_date"].max()).dt.days.astype(np.int64),
        "frequency": g["order_date"].nunique().astype(np.int64),
        "monetary": g["revenue"].sum(),
    })
    got = ours.set_index("customer_id")[["recency", "frequency", "monetary"]]
    pdt.assert_frame_equal(got, ref, check_names=False, check_index_type=False)


def test_categorical_ids_and_renamed_columns_change_nothing(rng):
    tx = random_tx(rng, n=1000)
    base = rfm_table(tx)
    cat = rfm_table(tx.assign(customer_id=tx["customer_id"].astype("category")))
    pdt.assert_frame_equal(cat.assign(customer_id=cat["customer_id"].astype("str")), base)
    ren = tx.rename(columns={"order_date": "date", "customer_id": "client", "revenue": "amount"})
    out = rfm_table(ren, customer_col="client", date_col="date", value_col="amount")
    pdt.assert_frame_equal(out.rename(columns={"client": "customer_id"}), base)
    before = tx.copy(deep=True)
    rfm_scores(rfm_table(tx))
    pdt.assert_frame_equal(tx, before)


# --------------------------------------------------------------------------- rfm_scores


def test_scores_equal_bins_without_ties_and_recency_reversed():
    rfm = pd.DataFrame({"customer_id": list("abcdefghij"), "recency": np.arange(10),
                        "frequency": np.arange(10) + 1, "monetary": np.arange(10) * 10.0})
    s = rfm_scores(rfm)
    assert s["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert s["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert s["fm_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert s["rfm_cell"].iloc[0] == "511"


def test_ties_share_a_score_and_constant_gets_the_middle():
    rfm = pd.DataFrame({"recency": [5] * 6 + [1, 2, 3, 4], "frequency": [1] * 7 + [2, 3, 9],
                        "monetary": [10.0] * 10})
    s = rfm_scores(rfm)
    assert s["f_score"].iloc[:7].nunique() == 1
    assert s["f_score"].iloc[0] == 2                # mid-rank 4 of 10 -> percentile 0.35
    assert (s["m_score"] == 3).all()
    assert s["r_score"].iloc[:6].nunique() == 1
    with pytest.raises(SalesplanError, match="bins must be at least 2"):
        rfm_scores(rfm, bins=1)


@HYP
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 6), st.floats(-100, 1e5)), min_size=1, max_size=60),
       st.integers(2, 7))
def test_scores_in_range_tie_consistent_and_monotone(rows, bins):
    rfm = pd.DataFrame(rows, columns=["recency", "frequency", "monetary"])
    s = rfm_scores(rfm, bins=bins)
    for col, score, sign in (("recency", "r_score", -1), ("frequency", "f_score", 1), ("monetary", "m_score", 1)):
        assert s[score].between(1, bins).all()
        assert (s.groupby(col)[score].nunique() == 1).all()        # equal values, equal scores
        ordered = s.sort_values(col)[score].to_numpy() * sign
        assert (np.diff(ordered) >= 0).all()                       # better value, score never lower


# --------------------------------------------------------------------------- segments


def test_rule_table_covers_every_cell_exactly_once():
    hits = np.zeros((5, 5), dtype=int)
    for row in RFM_SEGMENT_RULES.itertuples():
        hits[row.r_min - 1:row.r_max, row.fm_min - 1:row.fm_max] += 1
    assert (hits == 1).all()
    assert len(SEGMENTS) == 11
    assert {"Champions", "Lost", "Can't lose them", "Hibernating", "New"} <= set(SEGMENTS)


@pytest.mark.parametrize("r, fm, name", [
    (5, 5, "Champions"), (5, 1, "New"), (4, 1, "Promising"), (4, 3, "Potential loyalists"),
    (3, 5, "Loyal"), (3, 3, "Need attention"), (3, 2, "About to sleep"), (2, 4, "At risk"),
    (1, 5, "Can't lose them"), (2, 1, "Hibernating"), (1, 2, "Lost"),
])
def test_segment_names(r, fm, name):
    seg = rfm_segments(pd.DataFrame({"r_score": [r], "fm_score": [fm]}))
    assert seg["segment"].iloc[0] == name


def test_all_customers_alike_land_in_one_segment_and_summary_lists_all():
    rfm = pd.DataFrame({"customer_id": list("abcd"), "recency": [7] * 4, "frequency": [2] * 4,
                        "monetary": [50.0] * 4})
    seg = rfm_segments(rfm_scores(rfm))
    assert seg["segment"].astype("str").unique().tolist() == ["Need attention"]
    summ = rfm_summary(seg)
    assert summ["segment"].tolist() == list(SEGMENTS)
    assert summ.set_index("segment").loc["Need attention", "customers"] == 4
    assert summ["customers"].sum() == 4
    assert summ["customer_share"].sum() == pytest.approx(1.0)
    assert summ["monetary_share"].sum() == pytest.approx(1.0)


def test_segments_reject_bad_scores_and_bad_rules():
    with pytest.raises(SalesplanDataError, match="scores must be integers 1..5"):
        rfm_segments(pd.DataFrame({"r_score": [6], "fm_score": [1]}))
    with pytest.raises(SalesplanDataError, match="missing required column"):
        rfm_segments(pd.DataFrame({"r": [1]}))
    overlapping = pd.concat([RFM_SEGMENT_RULES, RFM_SEGMENT_RULES.iloc[:1]])
    with pytest.raises(SalesplanError, match=r"covered twice: \[\(5, 4\), \(5, 5\)\]"):
        rfm_segments(pd.DataFrame({"r_score": [1], "fm_score": [1]}), rules=overlapping)


def test_pipeline_on_random_data_and_charts(rng):
    from salesplan import plots

    seg = rfm_segments(rfm_scores(rfm_table(random_tx(rng))))
    assert seg["segment"].notna().all()
    summ = rfm_summary(seg)
    assert summ["customers"].sum() == len(seg)
    assert len(plots.rfm_segment_chart(summ).data) == 2
    assert len(plots.rfm_grid_chart(seg).data) == 1


@HYP
@given(st.lists(st.one_of(st.integers(-5, 40), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=80))
def test_midrank_equals_scipy_average_rank(values):
    from scipy.stats import rankdata

    from salesplan.segments.rfm import _midrank

    x = np.asarray(values, dtype="float64")
    np.testing.assert_allclose(_midrank(x), rankdata(x, method="average"))


@HYP
@given(st.lists(st.tuples(st.integers(0, 400), st.sampled_from(["a", "b", "c", "d", "e"]),
                          st.floats(-50, 1e4, allow_nan=False)), min_size=1, max_size=40))
def test_renaming_columns_via_overrides_changes_nothing(rows):
    tx = pd.DataFrame(rows, columns=["day", "customer_id", "revenue"])
    tx["order_date"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(tx.pop("day"), unit="D")).astype("datetime64[ns]")
    ren = tx.rename(columns={"order_date": "when", "customer_id": "who", "revenue": "how_much"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)  # net-negative customers are fine here
        a = rfm_scores(rfm_table(tx))
        b = rfm_scores(rfm_table(ren, customer_col="who", date_col="when", value_col="how_much"))
    pdt.assert_frame_equal(a, b.rename(columns={"who": "customer_id"}))
    assert a[["r_score", "f_score", "m_score", "fm_score"]].isin(range(1, 6)).all().all()


@pytest.mark.reference
def test_cdnow_calibration_summary_matches_fader_hardie(shared_data):
    """Our R, F and tenure reproduce the published CDNOW 39-week summary (Fader, Hardie & Lee 2005).

    In their terms x = repeat purchases = our purchase days - 1, t_x = last - first
    purchase = our tenure - recency, T = our tenure; all in weeks to 1997-09-30.
    """
    raw = pd.read_csv(shared_data / "cdnow" / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["cust", "customer_id", "date", "cds", "revenue"], dtype={"date": str})
    raw["order_date"] = pd.to_datetime(raw["date"], format="%Y%m%d").astype("datetime64[ns]")
    with pytest.warns(SalesplanDataWarning, match="8 customer"):  # CDNOW has $0 purchases
        ours = rfm_table(raw, as_of="1997-09-30").set_index("customer_id").sort_index()
    ref = pd.read_csv(shared_data / "cdnow" / "cdnow_customers_summary_with_transactions.csv").set_index("ID")
    assert len(ours) == len(ref) == 2357
    np.testing.assert_array_equal(ours["frequency"].to_numpy() - 1, ref["x"].to_numpy())
    np.testing.assert_allclose((ours["tenure"] - ours["recency"]).to_numpy() / 7, ref["t_x"], atol=0.006)
    np.testing.assert_allclose(ours["tenure"].to_numpy() / 7, ref["T"], atol=0.006)
    # zbar, the mean spend of the repeat purchases, from our table and the first day's spend
    first_day = raw[raw["order_date"] == raw.groupby("customer_id")["order_date"].transform("min")]
    first_spend = first_day.groupby("customer_id")["revenue"].sum().sort_index()
    repeat = ours["frequency"] > 1
    zbar = (ours["monetary"] - first_spend)[repeat] / (ours["frequency"] - 1)[repeat]
    np.testing.assert_allclose(zbar.to_numpy(), ref.loc[repeat.to_numpy(), "zbar"], atol=0.006)


def test_docstring_grid_matches_the_rule_table():
    import re

    from salesplan.segments.rfm import _lookup

    lut = _lookup(RFM_SEGMENT_RULES)
    names = RFM_SEGMENT_RULES["segment"].tolist()
    lines = [ln.strip() for ln in rfm_segments.__doc__.splitlines() if re.match(r"\s+[1-5]\s{2,}", ln)]
    assert len(lines) == 5
    for line in lines:
        fm, *cells = re.split(r"\s{2,}", line)
        assert cells == [names[lut[r, int(fm)]] for r in range(1, 6)]


@pytest.mark.parametrize("dtype", ["object", "string", "category"])
def test_guest_lines_are_left_out_with_one_counted_warning(rng, dtype):
    tx = random_tx(rng, n=400, n_cust=30)
    guests = pd.DataFrame({
        "order_date": pd.to_datetime(["2023-03-01", "2023-05-01", "2023-07-01"]).astype("datetime64[ns]"),
        "customer_id": [None, np.nan, "" if dtype != "category" else None],
        "revenue": [10.0, 20.0, 30.25],
    })
    both = pd.concat([tx, guests], ignore_index=True).sample(frac=1.0, random_state=2)
    both["customer_id"] = both["customer_id"].astype(dtype)
    before = both.copy()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = rfm_table(both, as_of="2024-12-31")
    messages = [str(w.message) for w in record]
    assert messages == [
        "rfm_table: left out 3 lines (60 revenue) without a customer (3 of 403 lines, 0.7%; guest "
        "checkouts or a blank 'customer_id'). Customer analyses need a customer; revenue totals still count them."
    ]
    expected = rfm_table(tx.assign(customer_id=tx["customer_id"].astype(dtype)), as_of="2024-12-31")
    pdt.assert_frame_equal(out.reset_index(drop=True), expected.reset_index(drop=True), check_categorical=False)
    assert not out["customer_id"].astype(str).isin(["nan", "None", "", "<NA>"]).any()
    pdt.assert_frame_equal(both, before)


def test_only_guest_lines_is_a_clear_error():
    tx = small_tx().assign(customer_id=None)
    with pytest.raises(SalesplanDataError, match=r"rfm_table: none of the 6 lines has a customer in 'customer_id'"):
        rfm_table(tx)
