"""Tests for salesplan.forecast.backtest (rolling-origin evaluation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.forecast import metrics as M
from salesplan.forecast.backtest import (
    backtest,
    backtest_summary,
    baseline_forecasts,
    season_length,
)


def _future(train, h, id_col, time_col, freq):
    last = train.groupby(id_col, sort=False)[time_col].max()
    rows = []
    for uid, end in last.items():
        if freq is None:
            dates = end + np.arange(1, h + 1)
        else:
            dates = pd.date_range(end, periods=h + 1, freq=freq)[1:]
        rows.append(pd.DataFrame({id_col: uid, time_col: dates}))
    return pd.concat(rows, ignore_index=True)


def mean3_fn(train, h, *, models=None, level=None, freq=None, id_col="unique_id",
             time_col="ds", target_col="y", **kwargs):
    """A small forecaster of our own: mean of the last 3 points, +-10% intervals."""
    out = _future(train, h, id_col, time_col, freq)
    mean3 = train.groupby(id_col, sort=False)[target_col].apply(lambda s: s.iloc[-3:].mean())
    out["mean3"] = out[id_col].map(mean3).to_numpy()
    for lv in level or []:
        out[f"mean3-lo-{lv}"] = out["mean3"] * (1 - lv / 1000)
        out[f"mean3-hi-{lv}"] = out["mean3"] * (1 + lv / 1000)
    return out


def echo_cutoff_fn(train, h, *, freq=None, id_col="unique_id", time_col="ds",
                   target_col="y", **kwargs):
    """Forecast = last training value (records what the window saw)."""
    out = _future(train, h, id_col, time_col, freq)
    out["last_seen"] = out[id_col].map(train.groupby(id_col, sort=False)[target_col].last()).to_numpy()
    out["n_seen"] = out[id_col].map(train.groupby(id_col, sort=False).size()).to_numpy().astype(float)
    return out


def _panel(rng, n_series=3, n_obs=48, start="2022-01-01"):
    t = np.arange(n_obs)
    frames = []
    for i in range(n_series):
        season = 100 * np.sin(2 * np.pi * t / 12 + i)
        frames.append(pd.DataFrame({
            "unique_id": f"p{i}",
            "ds": pd.date_range(start, periods=n_obs, freq="MS"),
            "y": 1000 + 3 * t + season + rng.normal(0, 10, n_obs),
        }))
    # Put the series in non-sorted order to check order handling.
    return pd.concat(frames[::-1], ignore_index=True)


def test_windows_have_an_expanding_origin_and_never_see_the_future(rng):
    df = _panel(rng)
    before = df.copy()
    cv = backtest(df, 6, n_windows=3, forecast_fn=echo_cutoff_fn, level=None)
    pdt.assert_frame_equal(df, before)
    assert list(cv.columns[:4]) == ["unique_id", "cutoff", "ds", "y"]
    assert list(pd.unique(cv["unique_id"])) == ["p2", "p1", "p0"]
    assert len(cv) == 3 * 3 * 6
    p0 = df[df.unique_id == "p0"].reset_index(drop=True)
    got = cv[cv.unique_id == "p0"]
    # Cutoffs are points n-3h, n-2h, n-h (1-based): positions 29, 35, 41.
    assert list(pd.unique(got["cutoff"])) == list(p0["ds"].iloc[[29, 35, 41]])
    for cut, w in got.groupby("cutoff"):
        pos = int(p0.index[p0.ds == cut][0])
        assert (w["n_seen"] == pos + 1).all()
        assert (w["last_seen"] == p0.loc[pos, "y"]).all()
        assert (w["ds"] > cut).all()
        np.testing.assert_array_equal(w["y"].to_numpy(), p0["y"].iloc[pos + 1: pos + 7].to_numpy())
        # The naive baseline is the value at the cutoff.
        np.testing.assert_allclose(w["naive"], p0.loc[pos, "y"])
        # Seasonal naive: the same month one year before.
        np.testing.assert_allclose(w["snaive"], p0["y"].iloc[pos - 11: pos - 5].to_numpy())


def test_step_controls_the_spacing_and_overlap(rng):
    df = _panel(rng, n_series=1)
    cv = backtest(df, 6, n_windows=4, step=2, forecast_fn=echo_cutoff_fn, level=None)
    cuts = pd.unique(cv["cutoff"])
    assert len(cuts) == 4 and len(cv) == 24
    gaps = np.diff(cuts.astype("datetime64[M]").astype(int))
    assert list(gaps) == [2, 2, 2]
    assert cuts[-1] == df["ds"].iloc[-7]


def test_baselines_are_added_with_intervals_and_not_duplicated(rng):
    df = _panel(rng, n_series=2)
    cv = backtest(df, 4, n_windows=2, forecast_fn=mean3_fn, level=[80, 95])
    for mdl in ("mean3", "naive", "snaive"):
        for lv in (80, 95):
            assert (cv[f"{mdl}-lo-{lv}"] <= cv[mdl]).all() and (cv[mdl] <= cv[f"{mdl}-hi-{lv}"]).all()
    assert (cv["naive-hi-95"] - cv["naive-lo-95"] > cv["naive-hi-80"] - cv["naive-lo-80"]).all()
    # Naive intervals widen with the horizon.
    w = cv[(cv.unique_id == "p0") & (cv.cutoff == cv.cutoff.max())]
    assert np.all(np.diff((w["naive-hi-80"] - w["naive-lo-80"]).to_numpy()) > 0)

    def with_naive(train, h, **kw):
        out = mean3_fn(train, h, **kw)
        out["naive"] = -1.0
        return out

    cv2 = backtest(df, 4, n_windows=2, forecast_fn=with_naive, level=None)
    assert list(cv2.columns).count("naive") == 1 and (cv2["naive"] == -1.0).all()
    assert "snaive" in cv2.columns


def test_baseline_intervals_by_hand():
    tr = pd.DataFrame({"unique_id": "a", "ds": range(5), "y": [1.0, 3.0, 2.0, 4.0, 3.0]})
    te = pd.DataFrame({"unique_id": "a", "ds": [5, 6, 7]})
    b = baseline_forecasts(tr, te, season=2, levels=[80])
    sig1 = np.sqrt(np.mean(np.array([2.0, -1.0, 2.0, -1.0]) ** 2))
    sig2 = np.sqrt(np.mean(np.array([1.0, 1.0, 1.0]) ** 2))
    z = 1.2815515655446004
    np.testing.assert_allclose(b["naive"], 3.0)
    np.testing.assert_allclose(b["naive-hi-80"], 3.0 + z * sig1 * np.sqrt([1, 2, 3]))
    np.testing.assert_allclose(b["snaive"], [4.0, 3.0, 4.0])
    np.testing.assert_allclose(b["snaive-lo-80"], [4.0, 3.0, 4.0] - z * sig2 * np.sqrt([1, 1, 2]))


def test_summary_scores_models_against_the_baselines(rng):
    df = _panel(rng, n_series=3, n_obs=60)
    cv = backtest(df, 12, n_windows=2, forecast_fn=mean3_fn)
    ev = backtest_summary(cv, df)
    ov = ev.overall.set_index("model")
    assert set(ov.index) == {"mean3", "naive", "snaive"}
    # Strongly seasonal data: the seasonal naive wins and is its own reference.
    assert ev.overall["model"].iloc[0] == "snaive"
    assert ov.loc["snaive", "mase_vs_snaive"] == pytest.approx(1.0)
    assert ov.loc["naive", "mase_vs_snaive"] > 1.5
    for col in ("mase", "smape", "rmsse", "bias", "bias_pct", "coverage_80", "coverage_95"):
        assert col in ev.per_series.columns and col in ev.overall.columns
    assert (ev.per_series["n_obs"] == 24).all()
    # MASE of one series/window by hand, scaled by the history up to its cutoff.
    p1 = df[df.unique_id == "p1"].reset_index(drop=True)
    w = cv[(cv.unique_id == "p1")]
    scaled = []
    for cut, win in w.groupby("cutoff"):
        hist = p1.loc[p1.ds <= cut, "y"].to_numpy()
        scaled.append(M.mae(win["y"], win["naive"]) / M.seasonal_scale(hist, seasonality=12))
    got = ev.per_series.set_index(["unique_id", "model"]).loc[("p1", "naive"), "mase"]
    assert got == pytest.approx(np.mean(scaled))


def test_short_series_are_dropped_with_a_count(rng):
    df = pd.concat([_panel(rng, n_series=2), _panel(rng, n_series=1, n_obs=10).assign(unique_id="tiny")])
    with pytest.warns(SalesplanDataWarning, match=r"1 series have fewer than 20 points.*'tiny'"):
        cv = backtest(df, 6, n_windows=3, forecast_fn=mean3_fn, level=None)
    assert "tiny" not in set(cv.unique_id)


def test_backtest_errors_say_what_to_do(rng):
    df = _panel(rng, n_series=2, n_obs=12)
    with pytest.raises(SalesplanDataError, match=r"every series is too short.*needs at least 20 points, the longest has 12"):
        backtest(df, 6, n_windows=3, forecast_fn=mean3_fn)
    df = _panel(rng, n_series=2)
    with pytest.raises(SalesplanDataError, match=r"2 rows that repeat the same \('unique_id', 'ds'\)"):
        backtest(pd.concat([df, df.iloc[[0]]], ignore_index=True), 6, forecast_fn=mean3_fn)
    bad = df.copy()
    bad.loc[3, "y"] = np.nan
    with pytest.raises(SalesplanDataError, match=r"'y' has 1 missing values \(row 3\)"):
        backtest(bad, 6, forecast_fn=mean3_fn)
    with pytest.raises(SalesplanDataError, match=r"match none of the test periods.*Pass freq="):
        backtest(df, 6, forecast_fn=mean3_fn, freq="D")
    with pytest.raises(SalesplanError, match=r"h must be an integer >= 1, got 0"):
        backtest(df, 0, forecast_fn=mean3_fn)
    with pytest.raises(SalesplanError, match=r"forecast_fn must return a DataFrame, got dict"):
        backtest(df, 6, forecast_fn=lambda *a, **k: {})
    with pytest.raises(SalesplanDataError, match=r"cv is missing required column\(s\) 'cutoff'"):
        backtest_summary(df, df)


def test_integer_time_and_renamed_columns(rng):
    df = _panel(rng, n_series=2)
    ren = df.rename(columns={"unique_id": "sku", "ds": "month", "y": "units"})
    ren["month"] = ren.groupby("sku").cumcount()
    cv = backtest(ren, 6, n_windows=2, forecast_fn=mean3_fn, season=12, level=None,
                  id_col="sku", time_col="month", target_col="units")
    ref = backtest(df, 6, n_windows=2, forecast_fn=mean3_fn, level=None)
    np.testing.assert_allclose(cv["snaive"], ref["snaive"])
    np.testing.assert_allclose(cv["mean3"], ref["mean3"])
    assert season_length("MS") == 12 and season_length("QS-JAN") == 4


def test_default_forecast_fn_is_the_package_forecast(rng):
    core = pytest.importorskip("salesplan.forecast.core")
    if not hasattr(core, "forecast"):
        pytest.skip("salesplan.forecast.core.forecast is not written yet")
    df = _panel(rng, n_series=2, n_obs=40)
    cv = backtest(df, 6, n_windows=2, progress=False)
    assert len(cv) == 2 * 2 * 6
    assert {"naive", "snaive"} <= set(cv.columns)
    models = [c for c in cv.columns if c not in ("unique_id", "cutoff", "ds", "y") and "-lo-" not in c
              and "-hi-" not in c]
    assert cv[models].notna().all().all()
    ev = backtest_summary(cv, df)
    assert ev.overall["mase"].notna().all()


# -- charts (salesplan.forecast.plots) -------------------------------------------


def test_forecast_chart_draws_history_models_and_bands_with_a_series_dropdown(rng):
    from salesplan.forecast.plots import forecast_chart

    df = _panel(rng, n_series=2)
    fc = mean3_fn(df, 6, level=[80, 95], freq="MS")
    fig = forecast_chart(df, fc)
    names = [t.name for t in fig.data]
    # Per series: two bands (95 then 80), the model line, the history.
    assert names == ["mean3 95%", "mean3 80%", "mean3", "actual"] * 2
    assert [t.visible for t in fig.data] == [True] * 4 + [False] * 4
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["p1", "p0"]
    assert buttons[1].args[0]["visible"] == [False] * 4 + [True] * 4
    band = fig.data[1]
    assert len(band.x) == 12 and band.fill == "toself"
    with pytest.raises(SalesplanDataError, match=r"ids \['zz'\] have no forecasts"):
        forecast_chart(df, fc, ids=["zz"])


def test_backtest_chart_orders_models_and_greys_baselines(rng):
    from salesplan.forecast.plots import backtest_chart

    df = _panel(rng, n_series=2)
    ev = backtest_summary(backtest(df, 6, n_windows=2, forecast_fn=mean3_fn), df)
    fig = backtest_chart(ev.overall, metric="mase")
    bar = fig.data[0]
    assert list(bar.y)[-1] == ev.overall["model"].iloc[0]  # best on top
    colors = dict(zip(bar.y, bar.marker.color))
    assert colors["naive"] == colors["snaive"] == "#b0b0b0" and colors["mean3"] != "#b0b0b0"
