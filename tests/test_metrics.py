"""Tests for salesplan.forecast.metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.forecast import metrics as M

# -- array metrics, by hand --------------------------------------------------


def test_point_metrics_by_hand():
    y = np.array([10.0, 20.0, 30.0])
    f = np.array([12.0, 18.0, 33.0])
    assert M.mae(y, f) == pytest.approx(7 / 3)
    assert M.rmse(y, f) == pytest.approx(np.sqrt((4 + 4 + 9) / 3))
    assert M.bias(y, f) == pytest.approx(1.0)
    assert M.bias(y, f, percent=True) == pytest.approx(100 * 3 / 60)
    assert M.smape(y, f) == pytest.approx(np.mean([200 * 2 / 22, 200 * 2 / 38, 200 * 3 / 63]))


def test_smape_zero_over_zero_is_zero_and_bounded():
    assert M.smape([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert M.smape([0.0], [5.0]) == 200.0
    assert M.smape([0.0, 10.0], [0.0, 10.0]) == 0.0


def test_mase_and_rmsse_scale_by_seasonal_naive():
    train = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 8.0])
    # lag-2 differences: 1, 1, 1, 2 -> MAE 1.25, MSE 1.75
    assert M.seasonal_scale(train, seasonality=2) == pytest.approx(1.25)
    assert M.seasonal_scale(train, seasonality=2, power=2) == pytest.approx(1.75)
    y, f = np.array([4.0, 9.0]), np.array([5.0, 7.0])
    assert M.mase(y, f, train, seasonality=2) == pytest.approx(1.5 / 1.25)
    assert M.rmsse(y, f, train, seasonality=2) == pytest.approx(np.sqrt(2.5 / 1.75))
    # Too short for the season: one-step naive instead.
    assert M.seasonal_scale([1.0, 3.0, 4.0], seasonality=12) == pytest.approx(1.5)
    assert np.isnan(M.seasonal_scale([1.0], seasonality=1))


def test_coverage_and_interval_score_by_hand():
    y = np.array([5.0, 12.0, -1.0, 3.0])
    lo = np.zeros(4)
    hi = np.full(4, 10.0)
    assert M.coverage(y, lo, hi) == 50.0
    # level 80 -> alpha 0.2 -> penalty 2/0.2 = 10 per unit outside
    expected = np.mean([10, 10 + 10 * 2, 10 + 10 * 1, 10])
    assert M.interval_score(y, lo, hi, level=80) == pytest.approx(expected)
    train = [0.0, 2.0, 4.0]
    assert M.interval_score(y, lo, hi, level=80, y_train=train) == pytest.approx(expected / 2)


def test_array_shape_mismatch_is_an_error():
    with pytest.raises(SalesplanError, match=r"same shape, got shapes \[\(3,\), \(2,\)\]"):
        M.mae([1, 2, 3], [1, 2])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(1, 1e4), min_size=6, max_size=20),
    st.floats(0.01, 100),
    st.integers(0, 2**32 - 1),
)
def test_scale_free_metrics_do_not_change_when_units_change(values, c, seed):
    rng = np.random.default_rng(seed)
    y = np.asarray(values)
    train, test = y[:-3], y[-3:]
    f = test * rng.uniform(0.5, 1.5, size=3)
    assume(M.seasonal_scale(train) > 1e-6 * max(values))
    assert M.smape(c * test, c * f) == pytest.approx(M.smape(test, f), rel=1e-9)
    assert M.mase(c * test, c * f, c * train) == pytest.approx(M.mase(test, f, train), rel=1e-9)
    assert M.bias(c * test, c * f, percent=True) == pytest.approx(M.bias(test, f, percent=True), rel=1e-9)
    assert M.mae(c * test, c * f) == pytest.approx(c * M.mae(test, f), rel=1e-9)


# -- evaluate --------------------------------------------------------------


def _panel(rng, n_series=5, n_train=24, h=6):
    ids = [f"s{i}" for i in range(n_series)]
    ds = pd.date_range("2023-01-01", periods=n_train + h, freq="MS")
    full = pd.DataFrame({
        "unique_id": np.repeat(ids, n_train + h),
        "ds": np.tile(ds, n_series),
        "y": rng.gamma(3.0, 30.0, size=n_series * (n_train + h)),
    })
    train = full.groupby("unique_id").head(n_train).reset_index(drop=True)
    actuals = full.groupby("unique_id").tail(h).reset_index(drop=True)
    fc = actuals[["unique_id", "ds"]].copy()
    fc["good"] = actuals["y"] * rng.uniform(0.8, 1.2, len(fc))
    fc["bad"] = actuals["y"].mean()
    for mdl, width in (("good", 0.3), ("bad", 0.5)):
        for lv, k in ((80, 1.0), (95, 1.6)):
            fc[f"{mdl}-lo-{lv}"] = fc[mdl] * (1 - width * k)
            fc[f"{mdl}-hi-{lv}"] = fc[mdl] * (1 + width * k)
    return train, actuals, fc


def test_evaluate_matches_the_array_functions_series_by_series(rng):
    train, actuals, fc = _panel(rng)
    before = fc.copy()
    ev = M.evaluate(fc, actuals, train, seasonality=3)
    pdt.assert_frame_equal(fc, before)
    per = ev.per_series
    assert list(per.columns) == [
        "unique_id", "model", "n_obs", "mae", "rmse", "smape", "mase", "rmsse", "bias", "bias_pct",
        "coverage_80", "winkler_80", "msis_80", "coverage_95", "winkler_95", "msis_95",
    ]
    assert len(per) == 10 and set(per["model"]) == {"good", "bad"}
    for _, row in per.iterrows():
        uid, mdl = row["unique_id"], row["model"]
        y = actuals.loc[actuals.unique_id == uid, "y"].to_numpy()
        f = fc.loc[fc.unique_id == uid, mdl].to_numpy()
        tr = train.loc[train.unique_id == uid, "y"].to_numpy()
        lo = fc.loc[fc.unique_id == uid, f"{mdl}-lo-80"].to_numpy()
        hi = fc.loc[fc.unique_id == uid, f"{mdl}-hi-80"].to_numpy()
        assert row["n_obs"] == 6
        assert row["mae"] == pytest.approx(M.mae(y, f))
        assert row["rmse"] == pytest.approx(M.rmse(y, f))
        assert row["smape"] == pytest.approx(M.smape(y, f))
        assert row["mase"] == pytest.approx(M.mase(y, f, tr, seasonality=3))
        assert row["rmsse"] == pytest.approx(M.rmsse(y, f, tr, seasonality=3))
        assert row["bias"] == pytest.approx(M.bias(y, f))
        assert row["bias_pct"] == pytest.approx(M.bias(y, f, percent=True))
        assert row["coverage_80"] == pytest.approx(M.coverage(y, lo, hi))
        assert row["winkler_80"] == pytest.approx(M.interval_score(y, lo, hi, level=80))
        assert row["msis_80"] == pytest.approx(
            M.interval_score(y, lo, hi, level=80, y_train=tr, seasonality=3)
        )
    ov = ev.overall.set_index("model")
    assert ov.loc["good", "n_series"] == 5 and ov.loc["good", "n_obs"] == 30
    good = per[per.model == "good"]
    assert ov.loc["good", "mase"] == pytest.approx(good["mase"].mean())
    allf = fc["good"].to_numpy()
    ally = actuals["y"].to_numpy()
    assert ov.loc["good", "bias_pct"] == pytest.approx(M.bias(ally, allf, percent=True))
    assert ov.loc["good", "coverage_95"] == pytest.approx(
        M.coverage(ally, fc["good-lo-95"], fc["good-hi-95"])
    )
    # The informative model beats the flat one.
    assert ov.loc["good", "mase"] < ov.loc["bad", "mase"]


def test_evaluate_with_actuals_inside_forecasts_and_renamed_columns(rng):
    train, actuals, fc = _panel(rng, n_series=3)
    ref = M.evaluate(fc, actuals, train, level=[80])
    joined = fc.merge(actuals, on=["unique_id", "ds"])
    pdt.assert_frame_equal(M.evaluate(joined, None, train, level=[80]).per_series, ref.per_series)
    ren = {"unique_id": "sku", "ds": "month", "y": "units"}
    other = M.evaluate(
        fc.rename(columns=ren), actuals.rename(columns=ren), train.rename(columns=ren),
        level=[80], id_col="sku", time_col="month", target_col="units",
    )
    pdt.assert_frame_equal(other.per_series.rename(columns={"sku": "unique_id"}), ref.per_series)


def test_levels_without_columns_are_left_out_and_missing_ones_are_nan(rng):
    train, actuals, fc = _panel(rng, n_series=2)
    fc = fc.drop(columns=[c for c in fc.columns if c.startswith("bad-")])
    ev = M.evaluate(fc, actuals, train, level=[80, 90])
    assert "coverage_90" not in ev.per_series.columns
    bad = ev.per_series[ev.per_series.model == "bad"]
    assert bad["coverage_80"].isna().all()
    assert ev.per_series.loc[ev.per_series.model == "good", "coverage_80"].notna().all()


def test_without_train_scaled_metrics_are_nan(rng):
    _, actuals, fc = _panel(rng, n_series=2)
    per = M.evaluate(fc, actuals, None, models=["good"]).per_series
    assert per["mase"].isna().all() and per["rmsse"].isna().all() and per["msis_80"].isna().all()
    assert per["mae"].notna().all()


def test_cutoffs_are_scaled_by_their_own_history():
    train = pd.DataFrame({"unique_id": "a", "ds": range(6), "y": [0.0, 1.0, 2.0, 3.0, 13.0, 23.0]})
    fc = pd.DataFrame({
        "unique_id": "a",
        "cutoff": [2, 2, 4, 4],
        "ds": [3, 4, 5, 6],
        "y": [3.0, 13.0, 23.0, 33.0],
        "m": [4.0, 14.0, 25.0, 35.0],
    })
    ev = M.evaluate(fc, None, train, cutoff_col="cutoff", level=None)
    # cutoff 2: history 0,1,2 -> scale 1; cutoff 4: 0..13 -> diffs 1,1,1,10 -> scale 3.25
    expected = np.mean([1 / 1, 1 / 1, 2 / 3.25, 2 / 3.25])
    assert ev.per_series.loc[0, "mase"] == pytest.approx(expected)
    with pytest.raises(SalesplanDataError, match=r"repeat the same \('unique_id', 'ds'\).*cutoff_col='cutoff'"):
        M.evaluate(fc.assign(ds=[3, 4, 4, 5]), None, train, level=None)


def test_missing_actuals_are_warned_and_dropped(rng):
    train, actuals, fc = _panel(rng, n_series=2)
    with pytest.warns(SalesplanDataWarning, match=r"3 of 12 forecast rows have no actual"):
        ev = M.evaluate(fc, actuals.iloc[3:], train)
    assert ev.per_series.groupby("unique_id")["n_obs"].first().to_dict() == {"s0": 3, "s1": 6}


def test_constant_training_series_warns_and_gives_nan():
    train = pd.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 4, "ds": list(range(4)) * 2,
                          "y": [5.0] * 4 + [1.0, 2.0, 3.0, 4.0]})
    fc = pd.DataFrame({"unique_id": ["a", "b"], "ds": [4, 4], "y": [5.0, 5.0], "m": [6.0, 6.0]})
    with pytest.warns(SalesplanDataWarning, match=r"1 series \(e.g. 'a'\) have training data that is constant"):
        per = M.evaluate(fc, None, train, level=None).per_series
    assert np.isnan(per.loc[0, "mase"]) and per.loc[1, "mase"] == pytest.approx(1.0)


def test_evaluate_errors_name_the_problem(rng):
    train, actuals, fc = _panel(rng, n_series=2)
    with pytest.raises(SalesplanDataError, match=r"actuals is missing required column\(s\) 'y'"):
        M.evaluate(fc, actuals.rename(columns={"y": "sales"}), train)
    with pytest.raises(SalesplanDataError, match=r"none of the 12 forecast rows has an actual"):
        M.evaluate(fc, actuals.assign(unique_id="zz" + actuals["unique_id"]), train)
    with pytest.raises(SalesplanDataError, match=r"no 'y' column and no actuals were given"):
        M.evaluate(fc, None, train)
    with pytest.raises(SalesplanDataError, match=r"missing required column\(s\) 'ets'"):
        M.evaluate(fc, actuals, train, models=["ets"])
    with pytest.raises(SalesplanDataError, match=r"actuals has 2 rows that repeat"):
        M.evaluate(fc, pd.concat([actuals, actuals.iloc[:1]], ignore_index=True), train)
    with pytest.raises(SalesplanError, match=r"seasonality must be an integer >= 1, got 0"):
        M.evaluate(fc, actuals, train, seasonality=0)


# -- reference: M3 monthly, Naive2 (Makridakis & Hibon 2000) --------------------


def _acf(x: np.ndarray, k: int) -> float:
    m = x.mean()
    return float(np.sum((x[:-k] - m) * (x[k:] - m)) / np.sum((x - m) ** 2))


def _naive2(x: np.ndarray, h: int, ppy: int = 12) -> np.ndarray:
    """The M3/M4 benchmark: naive on data deseasonalised by classical
    multiplicative decomposition when a 90% autocorrelation test finds a season."""
    from statsmodels.tsa.seasonal import seasonal_decompose

    s = sum(_acf(x, k) ** 2 for k in range(1, ppy))
    limit = 1.645 * np.sqrt((1 + 2 * s) / len(x))
    if abs(_acf(x, ppy)) > limit:
        si = seasonal_decompose(x, model="multiplicative", period=ppy).seasonal
    else:
        si = np.ones(len(x))
    future = si[len(x) - ppy + np.arange(h) % ppy]
    return (x[-1] / si[-1]) * future


@pytest.mark.reference
def test_m3_monthly_naive2_smape_matches_the_published_value(shared_data):
    df = pd.read_csv(shared_data / "m3" / "m3_monthly.csv.gz", parse_dates=["ds"])
    train = df[df["split"] == "train"][["unique_id", "ds", "y"]]
    test = df[df["split"] == "test"][["unique_id", "ds", "y"]]
    fc = []
    tests = dict(list(test.groupby("unique_id", sort=False)))
    for uid, g in train.groupby("unique_id", sort=False):
        t = tests[uid]
        fc.append(pd.DataFrame({"unique_id": uid, "ds": t["ds"].to_numpy(),
                                "naive2": _naive2(g["y"].to_numpy(), len(t))}))
    fc = pd.concat(fc, ignore_index=True)
    ev = M.evaluate(fc, test, train, seasonality=12, level=None)
    row = ev.overall.iloc[0]
    assert row["n_series"] == 1428 and row["n_obs"] == 1428 * 18
    # Published: 16.91. The remaining gap (about 0.15) comes from the
    # decomposition details of the 2000 implementation, not from the metric.
    assert row["smape"] == pytest.approx(16.91, abs=0.25)
    # Naive2 is close to the seasonal naive scale on these series.
    assert 0.8 < row["mase"] < 1.3
