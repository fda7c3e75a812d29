"""Tests of salesplan.forecast: models, intervals, sample paths, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.forecast import (
    ETS,
    ARIMA,
    AutoForecast,
    Croston,
    SeasonalNaive,
    Theta,
    forecast,
    panel_from_transactions,
    sample_paths,
)

SEASON = np.array([0.8, 0.85, 1.0, 1.1, 1.2, 1.25, 1.2, 1.1, 1.0, 0.9, 0.8, 0.8])


def frame(values, uid="a", start="2020-01-01", freq="MS"):
    values = np.asarray(values, dtype=float)
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=values.size, freq=freq),
                         "y": values})


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        return fn(*args, **kw)


# --- output contract --------------------------------------------------------

def test_columns_follow_the_naming_contract():
    df = pd.concat([frame(np.arange(1.0, 37.0), "a"), frame(np.arange(2.0, 38.0), "b")])
    fc = forecast(df, 4, models=["naive", "snaive"], level=[80, 95])
    assert list(fc.columns) == [
        "unique_id", "ds",
        "naive", "naive-lo-80", "naive-hi-80", "naive-lo-95", "naive-hi-95",
        "snaive", "snaive-lo-80", "snaive-hi-80", "snaive-lo-95", "snaive-hi-95",
    ]
    assert len(fc) == 8
    assert fc["ds"].iloc[0] == pd.Timestamp("2023-01-01")
    assert (fc["naive-lo-95"] <= fc["naive-lo-80"]).all() and (fc["naive-hi-80"] <= fc["naive-hi-95"]).all()
    assert forecast(df, 2, models="naive", level=None).columns.tolist() == ["unique_id", "ds", "naive"]


def test_column_names_can_be_overridden_and_input_is_not_mutated(rng):
    df = frame(100 + np.cumsum(rng.normal(size=40)))
    renamed = df.rename(columns={"unique_id": "store", "ds": "month", "y": "sales"})
    before = renamed.copy()
    a = forecast(df, 3, models="theta")
    b = forecast(renamed, 3, models="theta", id_col="store", time_col="month", target_col="sales")
    pdt.assert_frame_equal(renamed, before)
    b = b.rename(columns={"store": "unique_id", "month": "ds"})
    pdt.assert_frame_equal(a, b)


# --- models recover known structure ----------------------------------------

def test_seasonal_naive_is_exact_on_a_pure_seasonal_series():
    df = frame(np.tile(SEASON * 100, 3))
    fc = forecast(df, 18, models="snaive", level=[80])
    np.testing.assert_allclose(fc["snaive"], np.r_[SEASON, SEASON[:6]] * 100)
    np.testing.assert_allclose(fc["snaive-lo-80"], fc["snaive"])  # no error seen, no width


def test_ets_follows_a_known_trend_and_level(rng):
    t = np.arange(60)
    trend = frame(50 + 2.0 * t + rng.normal(0, 0.5, 60), "trend")
    level = frame(200 + rng.normal(0, 5, 60), "level")
    fc = quiet(forecast, pd.concat([trend, level]), 12, models=ETS(forms=("ANN", "AAN", "AAdN")), level=None)
    got = fc.set_index("unique_id")["ets"]
    np.testing.assert_allclose(got["trend"], 50 + 2.0 * np.arange(60, 72), rtol=0.02)
    assert np.all(np.abs(got["level"] - 200) < 5)
    forms = ETS(forms=("ANN", "AAN")).fit(pd.concat([trend, level])).summary().set_index("unique_id")["form"]
    assert forms["trend"] == "AAN" and forms["level"] == "ANN"


def test_ets_theta_arima_recover_multiplicative_seasonality(rng):
    truth = (100 + 0.5 * np.arange(84)) * np.tile(SEASON, 7)
    df = frame(truth[:72] * np.exp(rng.normal(0, 0.01, 72)))
    fc = forecast(df, 12, models=["ets", "theta", "arima", "auto"], level=None)
    for name in ["ets", "theta", "arima", "auto"]:
        np.testing.assert_allclose(fc[name], truth[72:], rtol=0.04, err_msg=name)


def test_croston_variants_on_intermittent_demand(rng):
    y = np.where(rng.uniform(size=80) < 0.3, rng.poisson(5, 80) + 1, 0).astype(float)
    df = frame(y)
    fc = forecast(df, 3, models=["croston", "sba", "tsb"], level=[95])
    assert np.allclose(fc["sba"], fc["croston"] * (1 - 0.1 / 2))
    rate = y.mean()
    for name in ["croston", "sba", "tsb"]:
        assert 0.4 * rate < fc[name].iloc[0] < 2.0 * rate
        assert (fc[f"{name}-lo-95"] >= 0).all()


# --- intervals and sample paths ---------------------------------------------

def _local_level(rng, n_series, n, alpha=0.5, sigma=1.0):
    e = rng.normal(0, sigma, (n_series, n))
    y = np.empty((n_series, n))
    lvl = np.full(n_series, 50.0)
    for t in range(n):
        y[:, t] = lvl + e[:, t]
        lvl = lvl + alpha * e[:, t]
    return y


def test_interval_coverage_on_simulated_local_level_data(rng):
    n_series, n, h = 300, 60, 6
    y = _local_level(rng, n_series, n + h)
    df = pd.concat([frame(y[i, :n], f"s{i}") for i in range(n_series)])
    future = y[:, n:].ravel()
    fc = forecast(df, h, models=[ETS(forms=("ANN",)), "theta", "naive"], level=[80, 95])
    for name in ["ets", "theta"]:
        for lv, tol in [(80, 0.05), (95, 0.03)]:
            inside = (future >= fc[f"{name}-lo-{lv}"]) & (future <= fc[f"{name}-hi-{lv}"])
            assert abs(inside.mean() - lv / 100) < tol, (name, lv, inside.mean())


@pytest.mark.parametrize("model", ["ets", "theta", "arima", "auto", "snaive"])
def test_sample_path_quantiles_match_the_intervals(model, rng):
    t = np.arange(48)
    df = pd.concat([
        frame((100 + t) * np.tile(SEASON, 4) * np.exp(rng.normal(0, 0.05, 48)), "a"),
        frame(50 + np.cumsum(rng.normal(0, 2, 48)) + 10 * np.tile(SEASON, 4), "b"),
    ])
    fc = forecast(df, 6, models=model, level=[80])
    paths = sample_paths(df, 6, model=model, n_samples=4000, seed=1)
    assert list(paths.columns) == ["unique_id", "ds", "sample", "y"]
    assert len(paths) == 2 * 6 * 4000
    q = paths.groupby(["unique_id", "ds"])["y"].quantile([0.1, 0.9]).unstack()
    q = fc.merge(q, left_on=["unique_id", "ds"], right_index=True)
    width = q[f"{model}-hi-80"] - q[f"{model}-lo-80"]
    assert np.all(np.abs(q[0.1] - q[f"{model}-lo-80"]) <= 0.08 * width + 1e-9)
    assert np.all(np.abs(q[0.9] - q[f"{model}-hi-80"]) <= 0.08 * width + 1e-9)


def test_sample_paths_are_reproducible_with_a_seed(rng):
    df = frame(100 + np.cumsum(rng.normal(size=30)))
    a = sample_paths(df, 3, model="theta", n_samples=10, seed=7)
    b = sample_paths(df, 3, model="theta", n_samples=10, seed=7)
    pdt.assert_frame_equal(a, b)


# --- automatic selection -----------------------------------------------------

def test_cross_validated_selection_picks_per_series(rng):
    t = np.arange(60)
    df = pd.concat([
        frame((100 + t) * np.tile(SEASON, 5) * np.exp(rng.normal(0, 0.02, 60)), "seasonal"),
        frame(100 + np.cumsum(rng.normal(0, 1, 60)), "walk"),
    ])
    mdl = AutoForecast(select="cv").fit(df)
    summ = mdl.summary()
    assert set(summ["choice"]) <= {"ets", "theta", "combined"}
    fc = mdl.predict(12)
    assert fc["auto"].notna().all() and list(fc.columns[:3]) == ["unique_id", "ds", "auto"]


# --- bad input ---------------------------------------------------------------

def test_short_series_fall_back_with_a_warning_naming_them():
    df = pd.concat([frame(np.tile(SEASON * 10, 3), "long"), frame(np.arange(1.0, 16.0), "short")])
    with pytest.warns(SalesplanDataWarning, match=r"fewer than two seasons.*'short'"):
        fc = forecast(df, 3, models=["ets", "snaive"])
    assert fc["ets"].notna().all()
    tiny = frame([5.0, 6.0, 7.0], "tiny")
    with (
        pytest.warns(SalesplanDataWarning, match=r"fewer than two seasons.*'tiny'"),
        pytest.warns(SalesplanDataWarning, match=r"too short for model 'ets'.*'tiny'"),
    ):
        fc = forecast(tiny, 2, models="ets", freq="MS")
    assert fc["ets"].tolist() == [7.0, 7.0]


def test_constant_and_all_zero_series_forecast_the_constant():
    df = pd.concat([frame(np.full(30, 4.0), "flat"), frame(np.zeros(30), "zero")])
    with pytest.warns(SalesplanDataWarning, match=r"2 series are constant \('flat', 'zero'; 1 of them all zero\)"):
        fc = forecast(df, 3, models="auto")
    got = fc.set_index("unique_id")
    assert (got.loc["flat", "auto"] == 4.0).all() and (got.loc["zero", "auto"] == 0.0).all()
    assert (got["auto-lo-95"] == got["auto"]).all()


def test_negative_values_exclude_multiplicative_forms(rng):
    y = 5 * np.tile(SEASON - 1, 4) + rng.normal(0, 0.3, 48)
    df = frame(y, "neg")
    with pytest.warns(SalesplanDataWarning, match=r"negative 'y' values \('neg'\).*multiplicative"):
        fc = forecast(df, 6, models=["ets", "arima", "theta"])
    assert fc[["ets", "arima", "theta"]].notna().all().all()
    form = quiet(lambda: ETS().fit(df).summary()["form"].iloc[0])
    assert "M" not in form


def test_gaps_raise_unless_filled():
    df = frame(np.arange(1.0, 31.0), "gappy").drop(index=[10, 11])
    with pytest.raises(SalesplanDataError, match=r"1 series have missing periods.*'gappy' from 2020-11-01.*fill_gaps=0.0"):
        forecast(df, 3, models="naive", freq="MS")
    fc = forecast(df, 3, models="naive", freq="MS", fill_gaps=0.0)
    assert fc["naive"].tolist() == [30.0, 30.0, 30.0]
    fc = forecast(df, 3, models="naive", freq="MS", fill_gaps="interpolate")
    assert len(fc) == 3


def test_duplicated_timestamps_name_the_series_and_dates():
    df = pd.concat([frame(np.arange(12.0), "ok"), frame(np.arange(12.0), "dup").iloc[[0, 1, 1, 2]]])
    with pytest.raises(SalesplanDataError, match=r"duplicated.*series 'dup': 2020-02-01.*groupby"):
        forecast(df, 2, models="naive", freq="MS")


def test_zero_horizon_is_an_error():
    with pytest.raises(SalesplanError, match=r"h \(the horizon\) must be at least 1 period, got h=0"):
        forecast(frame(np.arange(12.0)), 0)
    with pytest.raises(SalesplanError, match=r"h \(the horizon\) must be an integer"):
        sample_paths(frame(np.arange(12.0)), 1.5)


def test_irregular_frequency_says_what_was_seen_and_how_to_fix():
    ds = pd.to_datetime(["2024-01-01", "2024-01-04", "2024-01-15", "2024-02-01", "2024-02-03"])
    df = pd.DataFrame({"unique_id": "a", "ds": ds, "y": [1.0, 2, 3, 4, 5]})
    with pytest.raises(SalesplanError, match=r"Cannot infer a regular frequency.*spacings seen.*days.*freq='MS'"):
        forecast(df, 2)
    with pytest.raises(SalesplanError, match=r"not on the 'MS' calendar.*2024-01-04"):
        forecast(df, 2, freq="MS")
    with pytest.raises(SalesplanError, match=r"freq='fortnightly' is not a pandas frequency"):
        forecast(df, 2, freq="fortnightly")


def test_unknown_model_and_missing_columns():
    df = frame(np.arange(12.0))
    with pytest.raises(SalesplanError, match=r"unknown model 'thetta'.*Did you mean 'theta'"):
        forecast(df, 2, models="thetta")
    with pytest.raises(SalesplanDataError, match=r"missing required column\(s\) 'sales'"):
        forecast(df, 2, target_col="sales")


# --- frequencies -------------------------------------------------------------

def test_weekly_and_daily_frequencies_are_inferred(rng):
    weekly = frame(50 + rng.normal(0, 1, 120), start="2023-01-02", freq="W-MON")
    fc = quiet(forecast, weekly, 4, models="snaive")
    assert fc["ds"].iloc[0] == weekly["ds"].iloc[-1] + pd.Timedelta(days=7)
    dow = np.tile([1.0, 1, 1, 1, 1.5, 0.3, 0.2], 12)
    daily = frame(100 * dow, start="2024-03-04", freq="D")
    fc = forecast(daily, 7, models="snaive", level=None)
    np.testing.assert_allclose(fc["snaive"], 100 * dow[:7])


# --- panels from transactions ------------------------------------------------

def test_panel_from_transactions_at_several_levels():
    tx = pd.DataFrame({
        "order_date": pd.to_datetime(["2025-01-05", "2025-01-20", "2025-03-02", "2025-03-20", "2025-02-11"]),
        "region": ["N", "N", "N", "S", "S"],
        "category": ["x", "y", "x", "x", "y"],
        "revenue": [10.0, 1.0, 5.0, 7.0, 2.0],
    })
    before = tx.copy()
    total = panel_from_transactions(tx)
    assert total["unique_id"].unique().tolist() == ["total"]
    assert total["y"].tolist() == [11.0, 2.0, 12.0]
    both = panel_from_transactions(tx, by=["region", "category"])
    assert sorted(both["unique_id"].unique()) == ["N/x", "N/y", "S/x", "S/y"]
    nx = both[both["unique_id"] == "N/x"]
    assert nx["y"].tolist() == [10.0, 0.0, 5.0]  # February filled with zero
    assert nx["ds"].tolist() == list(pd.date_range("2025-01-01", periods=3, freq="MS"))
    weekly = panel_from_transactions(tx, freq="W-MON", value="count")
    assert weekly["ds"].dt.day_of_week.eq(0).all() and weekly["y"].sum() == 5
    pdt.assert_frame_equal(tx, before)
    # the panel feeds forecast() directly
    assert len(forecast(both, 2, models="naive")) == 8


# --- model classes -------------------------------------------------------------

def test_model_classes_fit_predict_summary(rng):
    df = frame((100 + np.arange(48)) * np.tile(SEASON, 4) * np.exp(rng.normal(0, 0.02, 48)))
    for mdl in [ETS(), Theta(), ARIMA(), SeasonalNaive(), Croston("tsb")]:
        assert mdl.fit(df) is mdl
        pred = mdl.predict(5, level=[90])
        assert list(pred.columns) == ["unique_id", "ds", mdl.name, f"{mdl.name}-lo-90", f"{mdl.name}-hi-90"]
        summ = mdl.summary()
        assert summ["unique_id"].tolist() == ["a"] and summ["model"].iloc[0] == mdl.name
    with pytest.raises(SalesplanError, match="not fitted yet"):
        ETS().predict(3)


def test_processes_engine_gives_the_same_result_as_local(rng):
    # "auto" has simulated intervals: random streams are keyed by series id,
    # so chunking the panel over processes changes nothing
    df = pd.concat([frame(100 + np.cumsum(rng.normal(size=36)), f"s{i}") for i in range(4)])
    local = forecast(df, 3, models=["theta", "auto"])
    procs = forecast(df, 3, models=["theta", "auto"], engine="processes", n_jobs=2, progress=False)
    pdt.assert_frame_equal(local, procs)


@pytest.mark.parametrize("n_obs", [30, 60])
def test_models_asked_together_equal_each_asked_alone(n_obs, rng):
    # forecast() fits each base model once per call and lets auto/ensemble
    # reuse those fits (and fits several smoothing problems in one batch);
    # none of that may change a model's columns
    t = np.arange(n_obs)
    df = pd.concat([
        frame(100 * np.tile(SEASON, 10)[:n_obs] * (1 + 0.01 * t) + rng.normal(0, 2, n_obs), "seasonal"),
        frame(50 + 0.5 * t + rng.normal(0, 3, n_obs), "trend"),
        frame(100 + np.tile(SEASON, 10)[:n_obs] * 4 + 0.8 * t + rng.normal(0, 1, n_obs), "weak"),
    ])
    names = ["auto", "ensemble", "ets", "damped", "theta", "arima"]
    together = quiet(forecast, df, 6, models=names, level=[80, 95])
    for name in names:
        alone = quiet(forecast, df, 6, models=name, level=[80, 95])
        pdt.assert_frame_equal(together[alone.columns], alone, check_exact=True)


def test_smoothing_fits_in_one_batch_equal_the_separate_fits(rng):
    from salesplan.forecast.ets import fit_ets, fit_ets_many

    Y = 50 + np.cumsum(rng.normal(0.3, 2.0, (3, 40)), axis=1)
    Y[2, 30:] = np.nan  # a shorter series
    n = np.array([40, 40, 30])
    problems = [(Y[:2], n[:2], ("AAdN", "MAdN")), (Y, n, ("ANN",)), (Y[1:], n[1:], None)]
    for (Yp, np_, forms), batched in zip(problems, fit_ets_many(problems, 1, optimizer="population")):
        alone = fit_ets(Yp, np_, 1, forms=forms, optimizer="population")
        for name in ("alpha", "beta", "phi", "l", "b", "sigma2", "aicc", "residuals"):
            np.testing.assert_array_equal(getattr(batched, name), getattr(alone, name), err_msg=name)
        assert batched.form.tolist() == alone.form.tolist()


def test_smoothing_fits_with_nelder_mead_do_not_depend_on_the_batch(rng):
    """The default optimiser: fitted alone, padded, or among other series, a
    series gets the same fit to the last bit."""
    from salesplan.forecast.ets import fit_ets

    season = np.tile(SEASON, 6)
    Y = np.full((4, 72), np.nan)
    for i, n_obs in enumerate((72, 67, 40, 30)):
        Y[i, :n_obs] = 100 * season[:n_obs] * np.exp(np.cumsum(rng.normal(0.01, 0.05, n_obs)))
    n = np.array([72, 67, 40, 30])
    together = fit_ets(Y, n, 12)
    for i in range(4):
        alone = fit_ets(Y[[i], : n[i]], n[[i]], 12)
        for name in ("alpha", "beta", "gamma", "phi", "l", "b", "s", "sigma2", "aicc"):
            np.testing.assert_array_equal(getattr(alone, name)[0], getattr(together, name)[i], err_msg=name)
        assert alone.form[0] == together.form[i]


def test_intervals_of_a_big_panel_simulated_in_blocks_equal_one_block(rng, monkeypatch):
    from salesplan.forecast import models as models_module

    df = pd.concat([frame(np.tile(SEASON, 3) * 50 + rng.normal(0, 2, 36), f"s{i}") for i in range(9)]
                   + [frame([3.0, 4.0, 5.0, 4.0], "short"), frame(np.full(30, 7.0), "flat")])
    names = ["auto", "ensemble", "ets", "damped"]
    one_block = quiet(forecast, df, 4, models=names)
    # blocks of 2 series: the paths of each series are the same draws
    monkeypatch.setattr(models_module, "_INTERVAL_BUDGET", models_module._INTERVAL_SAMPLES * 4 * 2)
    pdt.assert_frame_equal(quiet(forecast, df, 4, models=names), one_block)


def test_default_model_with_a_series_too_short_for_theta():
    # four observations: enough for the combination, too few for its Theta member
    df = pd.concat([frame(np.tile(SEASON, 3) * 10, "long"), frame([5.0, 6.0, 8.0, 7.0], "short")])
    fc = quiet(forecast, df, 3)
    assert fc["auto"].notna().all() and len(fc) == 6


def test_a_series_paths_do_not_depend_on_the_rest_of_the_panel(rng):
    df = pd.concat([frame(100 + np.cumsum(rng.normal(size=36)), f"s{i}") for i in range(3)])
    alone = sample_paths(df[df["unique_id"] == "s1"], 4, model="ets", n_samples=20, seed=3)
    together = sample_paths(df, 4, model="ets", n_samples=20, seed=3)
    together = together[together["unique_id"] == "s1"].reset_index(drop=True)
    pdt.assert_frame_equal(alone, together)


def test_arima_can_refit_by_exact_likelihood_with_statsmodels(rng):
    truth = (100 + 0.5 * np.arange(60)) * np.tile(SEASON, 5)
    df = frame(truth[:48] * np.exp(rng.normal(0, 0.02, 48)))
    css = ARIMA().fit(df).predict(12, level=None)["arima"]
    exact = ARIMA(method="statsmodels").fit(df).predict(12, level=None)["arima"]
    np.testing.assert_allclose(exact, truth[48:], rtol=0.05)
    np.testing.assert_allclose(exact, css, rtol=0.05)
    with pytest.raises(SalesplanError, match="method must be 'css' or 'statsmodels'"):
        ARIMA(method="exact").fit(df)


# --- invariants ------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.floats(1.0, 1e4, allow_nan=False), min_size=6, max_size=40),
    h=st.integers(1, 14),
    seed=st.integers(0, 2**16),
)
def test_intervals_nest_and_row_order_does_not_matter(values, h, seed):
    df = pd.concat([frame(values, "a"), frame(values[::-1], "b")], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        fc = forecast(df, h, models=["naive", "theta", "snaive"], level=[80, 95])
        shuffled = forecast(df.sample(frac=1.0, random_state=seed), h, models=["naive", "theta", "snaive"],
                            level=[80, 95])
    assert len(fc) == 2 * h
    for name in ["naive", "theta", "snaive"]:
        assert (fc[f"{name}-lo-95"] <= fc[f"{name}-lo-80"] + 1e-9).all()
        assert (fc[f"{name}-lo-80"] <= fc[name] + 1e-9).all() and (fc[name] <= fc[f"{name}-hi-80"] + 1e-9).all()
        assert (fc[f"{name}-hi-80"] <= fc[f"{name}-hi-95"] + 1e-9).all()
    key = ["unique_id", "ds"]
    pdt.assert_frame_equal(fc.sort_values(key).reset_index(drop=True),
                           shuffled.sort_values(key).reset_index(drop=True))
