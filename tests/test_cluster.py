"""Tests for salesplan.segments.cluster."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.segments.cluster import CustomerClusters, customer_features


def blobs(rng, sizes=(60, 40, 20)):
    """Three well-separated behaviours: rare small buyers, regular online buyers, big retail buyers."""
    centres = [(2, 80.0, 0.1), (25, 900.0, 0.9), (8, 20000.0, 0.05)]
    parts = []
    for i, (n, (f, mon, online)) in enumerate(zip(sizes, centres)):
        parts.append(pd.DataFrame({
            "frequency": rng.normal(f, f * 0.1, n),
            "monetary": rng.normal(mon, mon * 0.1, n),
            "channel_online_share": np.clip(rng.normal(online, 0.03, n), 0, 1),
            "truth": i,
        }))
    df = pd.concat(parts, ignore_index=True)
    df.insert(0, "customer_id", [f"c{i:03d}" for i in range(len(df))])
    return df


def test_customer_features_exact_values():
    tx = pd.DataFrame({
        "order_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-03-01", "2024-03-20"]).astype("datetime64[ns]"),
        "customer_id": ["a", "a", "a", "b"],
        "revenue": [60.0, 20.0, 20.0, 50.0],
        "channel": ["online", "retail", "online", "retail"],
        "category": ["x", "x", "y", None],
    })
    f = customer_features(tx, as_of="2024-03-31").set_index("customer_id")
    assert f.loc["a", "frequency"] == 2
    assert f.loc["a", "avg_order_value"] == 50.0
    assert f.loc["a", "channel_online_share"] == pytest.approx(0.8)
    assert f.loc["a", "channel_retail_share"] == pytest.approx(0.2)
    assert f.loc["b", "category_missing_share"] == 1.0
    assert f.loc["a", "purchases_per_month"] == pytest.approx(2 / (90 / 30.4375))
    assert f.loc["b", "purchases_per_month"] == 1.0   # tenure below a month counts as one month
    assert f.attrs["feature_labels"]["channel_online_share"] == "online"
    shares = [c for c in f.columns if c.startswith("channel_")]
    np.testing.assert_allclose(f[shares].sum(axis=1), 1.0)


def test_recovers_three_groups_and_chooses_k_by_silhouette(rng):
    df = blobs(rng)
    model = CustomerClusters(k_range=(2, 6), random_state=0).fit(df.drop(columns="truth"))
    assert model.k_ == 3
    sil = model.summary()
    assert sil["k"].tolist() == [2, 3, 4, 5, 6]
    assert sil["chosen"].sum() == 1
    assert sil.loc[sil["chosen"], "k"].item() == sil.loc[sil["silhouette"].idxmax(), "k"]
    # every true group maps to exactly one cluster, and clusters are numbered by size
    lab = model.labels_["cluster"].to_numpy()
    crosstab = pd.crosstab(df["truth"], lab)
    assert ((crosstab > 0).sum(axis=1) == 1).all()
    assert (crosstab > 0).sum(axis=0).tolist() == [1, 1, 1]
    assert np.bincount(lab).tolist() == [60, 40, 20]
    assert "monetary" in model.log_features_ or model.log_features_ == []


def test_profile_describes_clusters(rng):
    df = blobs(rng)
    model = CustomerClusters(k=3).fit(df.drop(columns="truth"))
    prof = model.profile()
    assert prof["customers"].tolist() == [60, 40, 20]
    assert prof["customer_share"].sum() == pytest.approx(1.0)
    assert prof["revenue_share"].sum() == pytest.approx(1.0)
    # the 40 regular online buyers: frequent and online-heavy
    assert "frequent" in prof.loc[1, "label"] and "online-heavy" in prof.loc[1, "label"]
    assert "high spend" in prof.loc[2, "label"]
    assert prof.loc[2, "median_monetary"] == pytest.approx(20000, rel=0.1)
    assert {"cluster", "label", "distinguishing", "median_frequency"} <= set(prof.columns)
    assert len(model.centers_) == 3 * 3


def test_predict_matches_labels_and_input_untouched(rng):
    df = blobs(rng).drop(columns="truth")
    before = df.copy(deep=True)
    model = CustomerClusters(k=3).fit(df)
    pdt.assert_frame_equal(model.predict(df), model.labels_)
    pdt.assert_frame_equal(df, before)


def test_fewer_customers_than_clusters():
    df = pd.DataFrame({"customer_id": ["a", "b", "c"], "frequency": [1.0, 2.0, 9.0], "monetary": [1.0, 5.0, 9.0]})
    with pytest.raises(SalesplanDataError, match="features has 3 customer\\(s\\) but k=4 clusters were asked"):
        CustomerClusters(k=4).fit(df)
    # k chosen automatically: only k=2 is possible with 3 customers
    model = CustomerClusters(k_range=(2, 8)).fit(df)
    assert model.k_ == 2 and model.summary()["k"].tolist() == [2]
    with pytest.raises(SalesplanDataError, match="too few for any k in k_range"):
        CustomerClusters().fit(df.iloc[:2])


def test_identical_customers_and_unfitted_model():
    df = pd.DataFrame({"customer_id": list("abcd"), "frequency": [3.0] * 4, "monetary": [10.0] * 4})
    with pytest.raises(SalesplanDataError, match="only 1 distinct customer profile"):
        CustomerClusters(k=2).fit(df)
    one = CustomerClusters(k=1).fit(df)
    assert one.labels_["cluster"].eq(0).all()
    assert one.profile()["label"].tolist() == ["average"]
    with pytest.raises(SalesplanError, match="not fitted yet"):
        CustomerClusters().profile()
    with pytest.raises(SalesplanDataError, match="no numeric column"):
        CustomerClusters(k=1).fit(df[["customer_id"]])


def test_end_to_end_from_transactions(rng):
    from salesplan import plots

    n = 3000
    tx = pd.DataFrame({
        "order_date": (pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 500, n), unit="D")).astype("datetime64[ns]"),
        "customer_id": [f"c{i}" for i in rng.zipf(1.5, n) % 300],
        "revenue": rng.gamma(2.0, 50.0, n),
        "channel": rng.choice(["online", "retail"], n),
        "category": rng.choice(["a", "b", "c"], n),
    })
    feats = customer_features(tx)
    model = CustomerClusters(k_range=(2, 4), sample_size=200).fit(feats)
    assert model.labels_["customer_id"].tolist() == feats["customer_id"].tolist()
    assert 2 <= model.k_ <= 4
    assert len(plots.cluster_chart(model).data) == 1


def test_customer_features_leave_out_guest_lines_with_one_warning():
    tx = pd.DataFrame({
        "order_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-03-01", "2024-03-20", "2024-03-21", "2024-03-22"]).astype("datetime64[ns]"),
        "customer_id": ["a", "a", "a", "b", None, " "],
        "revenue": [60.0, 20.0, 20.0, 50.0, 500.0, 1500.0],
        "channel": ["online", "retail", "online", "retail", "online", "online"],
    })
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        f = customer_features(tx, as_of="2024-03-31")
    assert [str(w.message)[:73] for w in record] == [
        "customer_features: left out 2 lines (2,000 revenue) without a customer (2"
    ]
    assert record[0].filename == __file__
    pdt.assert_frame_equal(f, customer_features(tx.iloc[:4], as_of="2024-03-31"))
    assert f["customer_id"].tolist() == ["a", "b"]
    assert f.set_index("customer_id").loc["a", "channel_online_share"] == pytest.approx(0.8)
