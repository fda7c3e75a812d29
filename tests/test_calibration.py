"""Tests for salesplan.targets.calibration: stated attainment probabilities against what happened."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesplan.errors import SalesplanDataError
from salesplan.targets import align_ends, calibration_backtest, calibration_summary, reliability_table


def _stationary(rng, n_units=60, months=60):
    """Units that wander around a steady level: a calibrated forecast hits ~50% at +0% growth."""
    ds = pd.date_range("2020-01-01", periods=months, freq="MS")
    season = 1 + 0.2 * np.sin(2 * np.pi * np.arange(months) / 12)
    rows = [pd.DataFrame({"unique_id": f"u{i:02d}", "ds": ds,
                          "y": 100 * (1 + i % 5) * season * np.exp(rng.normal(0, 0.15, months))})
            for i in range(n_units)]
    return pd.concat(rows, ignore_index=True)


def test_backtest_rows_and_hand_checks(rng):
    panel = _stationary(rng, n_units=8, months=48)
    bt = calibration_backtest(panel, growths=(0.0, 0.1), origins=2, n_samples=100, reconcile="bottom_up")
    assert set(bt["method"]) == {"equal_growth", "equal_probability"}
    assert bt["origin"].nunique() == 2 and len(bt) == 2 * 2 * 2 * 8
    wide = panel.pivot(index="unique_id", columns="ds", values="y")
    last = wide.iloc[:, 24:36].sum(axis=1)
    actual = wide.iloc[:, 36:48].sum(axis=1)
    row = bt[(bt["origin"] == "2023-01-01") & (bt["method"] == "equal_growth") & (bt["growth"] == 0.1)]
    row = row.set_index("unique_id")
    np.testing.assert_allclose(row["quota"], last * 1.1)
    np.testing.assert_allclose(row["actual"], actual)
    assert (row["hit"] == (actual >= last * 1.1).astype(float)).all()
    before = wide.iloc[:, 12:24].sum(axis=1)
    assert row["naive"].iloc[0] == pytest.approx(float((last >= before * 1.1).mean()))
    ep = bt[(bt["method"] == "equal_probability") & (bt["growth"] == 0.1)]
    for _, g in ep.groupby("origin"):
        assert g["quota"].sum() == pytest.approx(g["last_year"].sum() * 1.1)
    assert bt["probability"].between(0, 1).all()


def test_stationary_units_are_calibrated_in_the_large(rng):
    bt = calibration_backtest(_stationary(rng), growths=(-0.04, 0.0, 0.04), origins=2, n_samples=300,
                              reconcile="bottom_up", methods=("equal_growth",))
    by = bt.groupby("growth")[["probability", "hit"]].mean()
    # At every growth rate the average stated probability is near the share of units that hit.
    assert (by["probability"] - by["hit"]).abs().max() < 0.1
    assert by["probability"].is_monotonic_decreasing and by["hit"].is_monotonic_decreasing
    rel = reliability_table(bt, min_units=30)
    assert rel["n"].sum() == len(bt) and rel["stated"].dropna().is_monotonic_increasing
    s = calibration_summary(bt)
    assert 0 <= s["brier"] <= 1 and s["n"] == len(bt)


def test_reliability_table_by_hand():
    bt = pd.DataFrame({"probability": [0.05, 0.05, 0.95, 0.95, 0.55], "hit": [0, 1, 1, 1, 0],
                       "naive": [0.5] * 5})
    rel = reliability_table(bt, min_units=2).set_index("bin")
    assert rel.loc["0.0-0.1", "n"] == 2 and rel.loc["0.0-0.1", "observed"] == 0.5
    assert (rel["units"] == rel["n"]).all()  # without unit ids every row counts as a unit
    assert rel.loc["0.9-1.0", "observed"] == 1.0 and rel.loc["0.5-0.6", "enough"] == False  # noqa: E712
    assert rel["n"].sum() == 5


def test_too_short_history_is_explained(rng):
    with pytest.raises(SalesplanDataError, match="at least 24 months"):
        calibration_backtest(_stationary(rng, n_units=2, months=20))


def test_align_ends_moves_each_series_to_one_end():
    p = pd.DataFrame({"unique_id": ["a", "a", "b"], "ds": pd.to_datetime(["1990-01-01", "1990-02-01", "1985-07-01"]),
                      "y": [1.0, 2.0, 3.0]})
    out = align_ends(p, end="2000-12-01")
    assert out.groupby("unique_id")["ds"].max().tolist() == [pd.Timestamp("2000-12-01")] * 2
    assert out.loc[out["unique_id"] == "a", "ds"].min() == pd.Timestamp("2000-11-01")


def test_m3_subset_reference(shared_data):
    """M3 monthly (a fixed subset of 150 series): stated vs observed within 10 points per decile with enough units."""
    m3 = pd.read_csv(shared_data / "m3" / "m3_monthly.csv.gz", usecols=["unique_id", "ds", "y"])
    ids = sorted(m3["unique_id"].unique())[::9][:150]
    panel = align_ends(m3[m3["unique_id"].isin(ids)].assign(ds=lambda d: pd.to_datetime(d["ds"])))
    bt = calibration_backtest(panel, growths=(-0.05, 0.0, 0.05, 0.10, 0.20), origins=2, n_samples=300,
                              reconcile="bottom_up", pool=False, methods=("equal_growth",))
    s = calibration_summary(bt, min_units=50)
    assert s["deciles_with_enough_units"] >= 5
    assert s["max_abs_gap"] <= 0.10
    assert s["brier"] < s["brier_naive"]


def test_a_decile_counts_distinct_units_not_rows():
    # One unit planned at three growth rates lands three rows in one decile: one unit, not three.
    bt = pd.DataFrame({"origin": pd.Timestamp("2025-01-01"), "unique_id": ["a", "a", "a", "b"],
                       "probability": [0.92, 0.95, 0.97, 0.93], "hit": [1, 1, 0, 1], "naive": 0.5})
    rel = reliability_table(bt, min_units=3).set_index("bin")
    assert rel.loc["0.9-1.0", "n"] == 4 and rel.loc["0.9-1.0", "units"] == 2
    assert not rel.loc["0.9-1.0", "enough"]
    assert reliability_table(bt.assign(origin=[1, 2, 3, 4]), min_units=3).set_index("bin").loc["0.9-1.0", "enough"]
