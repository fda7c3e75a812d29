"""The forecast explorer: the chosen series with its bands, the horizon, the backtest, the plan, both languages."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_ui_lang import CJK, data_words, english_words, texts  # noqa: F401 - data_words is a fixture

from salesplan.i18n import LANGUAGES, catalogue, t
from salesplan.periods import plan_period
from salesplan.ui import ForecastApp
from salesplan.ui._lang import option_values
from salesplan.ui.forecast import ALL, COMPANY, SECTIONS

SOURCE = Path(__file__).resolve().parents[1] / "salesplan" / "ui" / "forecast.py"
#: Names of methods and scores that stay as they are in Chinese.
METHODS = {"MASE", "ETS", "Theta", "ARIMA"}


@pytest.fixture(scope="module")
def demo():
    from salesplan.datasets import load_demo

    return dict(load_demo())


@pytest.fixture(scope="module")
def app(demo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ForecastApp(demo, level="region")


def _set(app, *, level="region", series=ALL, horizon=None, intervals="80_95"):
    app.level.value = level
    app.series.value = series
    app.horizon.value = horizon or app._default_horizon()
    app.intervals.value = intervals


def _trace(app, name_key: str, chart=None) -> dict:
    name = t(name_key, app.lang)
    found = [tr for tr in (chart or app.chart).spec["data"] if tr.get("name") == name]
    assert found, f"no trace named {name!r}"
    return found[0]


def test_the_demo_page_has_every_section(app):
    _set(app)
    assert app.result["error"] == "" and app.errors.level != "error"
    assert option_values(app.level)[0] == COMPANY and {"region", "channel", "category"} <= set(option_values(app.level))
    regions = sorted(app.result["history"]["unique_id"].unique())
    assert option_values(app.series) == [ALL, *regions]
    assert sorted(app.result["backtest"]["unique_id"]) == regions
    assert {"auto", "snaive", "naive"} == set(app.result["backtest_overall"]["model"])
    assert app.result["notes"] == {"forecast": "", "backtest": "", "reconciliation": ""}
    # reconciled: every parent equals the sum of its bottom series, which the base forecasts did not
    gaps = app.result["gaps"]
    assert (gaps["gap_base"] > 1.0).any()
    np.testing.assert_allclose(gaps["gap_reconciled"], 0.0, atol=1e-6 * gaps["gap_base"].max())
    assert "auto/mint_shrink" in set(app.result["mase_by_level"]["model"])
    assert app.progress.layout.display == "none"


def test_default_horizon_runs_through_the_plan_period(app, demo):
    _set(app)
    months = plan_period(demo["transactions"]).months
    shown = app.result["shown"]
    assert len(shown) == app.horizon.value
    assert pd.Timestamp(shown["ds"].iloc[-1]) == months[-1]
    last = pd.to_datetime(demo["transactions"]["order_date"]).max()
    assert pd.Timestamp(shown["ds"].iloc[0]) == (last + pd.offsets.MonthBegin(1)).normalize()


def test_choosing_a_series_draws_that_series(app):
    _set(app)
    fc, hist = app.result["forecast"], app.result["history"]
    for region in ["North", "West"]:
        app.series.value = region
        mine = fc[fc["unique_id"] == region].sort_values("ds")
        np.testing.assert_allclose(_trace(app, "forecast.trace_forecast")["y"], mine["auto"])
        np.testing.assert_allclose(_trace(app, "forecast.trace_actual")["y"],
                                   hist.loc[hist["unique_id"] == region, "y"])
        assert app.chart.spec["layout"]["title"]["text"].startswith(f"{region}:")
    app.series.value = ALL  # the level's total, with its largest series drawn too
    total = app._forecast(COMPANY)
    np.testing.assert_allclose(_trace(app, "forecast.trace_forecast")["y"], total["auto"])
    assert app.result["units"]["unique_id"].iloc[0] in {tr["name"] for tr in app.chart.spec["data"]}


def test_the_bands_contain_the_forecast(app):
    _set(app, series="South")
    fc = np.asarray(_trace(app, "forecast.trace_forecast")["y"])
    n = len(fc)
    widths = {}
    for lv in (80, 95):
        name = t("forecast.band", "en", level=lv)
        band = np.asarray([tr for tr in app.chart.spec["data"] if tr["name"] == name][0]["y"])
        hi, lo = band[:n], band[n:][::-1]
        assert (lo <= fc + 1e-9).all() and (fc <= hi + 1e-9).all()
        widths[lv] = hi - lo
    assert (widths[95] >= widths[80] - 1e-9).all() and (widths[95] > widths[80]).any()
    s = app.result["shown"]
    assert (s["lo_95"] <= s["lo_80"]).all() and (s["hi_80"] <= s["hi_95"]).all()
    app.intervals.value = "80"
    names = {tr["name"] for tr in app.chart.spec["data"]}
    assert t("forecast.band", "en", level=80) in names and t("forecast.band", "en", level=95) not in names


def test_changing_the_horizon_changes_the_months_forecast(app):
    _set(app, series="East", horizon=7)
    assert len(app.result["shown"]) == 7 and len(_trace(app, "forecast.trace_forecast")["y"]) == 7
    assert app.html["forecast"].value.count("<tr") == 1 + 7  # the header, then one row a month
    _set(app, series="East", horizon=9)
    assert len(app.result["shown"]) == 9 and app.html["forecast"].value.count("<tr") == 1 + 9


def test_switching_series_or_language_computes_nothing(app, monkeypatch):
    _set(app)
    import salesplan.forecast.backtest as bt
    import salesplan.forecast.core as core

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(core, "forecast", fail)
    monkeypatch.setattr(bt, "backtest", fail)
    before = {k: v.copy() for k, v in app.result.items() if isinstance(v, pd.DataFrame) and k != "shown"}
    app.series.value = "North"
    app.intervals.value = "95"
    app.set_lang("zh")
    app.set_lang("en")
    app.series.value = ALL
    assert app.result["error"] == ""
    for key, frame in before.items():
        pd.testing.assert_frame_equal(app.result[key], frame, obj=key)


def test_a_new_level_backtests_with_a_progress_bar(app):
    _set(app, level="channel")
    assert app.progress.value == app.progress.max >= 1 and app.progress.layout.display == "none"
    assert len(app.result["backtest"]) == app.result["history"]["unique_id"].nunique()


def test_chinese_page_shows_no_english(demo, data_words):  # noqa: F811
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = ForecastApp(demo, level="region", model="theta", lang="zh")  # any model: the words are the point
    app.series.value = "North"
    app.series.value = ALL
    assert app.container.children[0] is app.lang_switch and app.lang_switch.value == "zh"
    found = texts(app.container)
    assert sum(bool(CJK.search(text)) for _, text in found) > 20
    left = [(kind, text) for kind, text in found if english_words(text, data_words | METHODS)]
    assert not left, left[:10]


def test_switching_language_changes_only_the_words(app):
    _set(app, series="North")
    before_texts = texts(app.container, cells=True)
    before = {k: v.copy() for k, v in app.result.items() if isinstance(v, pd.DataFrame)}
    app.lang_switch.value = "zh"
    assert app.lang == "zh" and app.level.description == t("forecast.level", "zh")
    assert app.chart.spec["layout"]["title"]["text"].startswith("North：")
    assert sum(bool(CJK.search(text)) for _, text in texts(app.container, cells=True)) > 20
    for key, frame in before.items():
        pd.testing.assert_frame_equal(app.result[key], frame, obj=key)
    assert (app.level.value, app.series.value) == ("region", "North")
    app.set_lang("en")
    assert texts(app.container, cells=True) == before_texts


@pytest.mark.parametrize("shape", ["region_category", "short_history", "required_only"])
def test_data_shapes(shape, shape_paths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = ForecastApp.from_source(shape_paths[shape], lang="zh")
    assert app.result["error"] == "", app.errors.message
    assert len(app.result["shown"]) == app.horizon.value >= 1
    notes = app.result["notes"]
    assert all(not text or CJK.search(text) for text in notes.values())
    if shape == "region_category":  # region > category: a plan that adds up
        assert app.result["reconciled"] is not None and notes["reconciliation"] == ""
        app.level.value = "category"
        assert len(app.result["backtest"]) == app.result["history"]["unique_id"].nunique() > 1
    if shape == "short_history":  # 14 months: too few to backtest, and no second breakdown
        assert notes["backtest"].startswith(t("page.need_months", "zh", months=16, have=14))
        assert app.result["backtest"] is None
    if shape == "required_only":
        assert option_values(app.level) == [COMPANY]
        assert "`region`" in notes["reconciliation"] and app.result["reconciled"] is None


def test_no_transactions_says_so_in_the_page_language(tmp_path):
    app = ForecastApp({}, lang="zh")
    assert CJK.search(app.errors.message) and app.result["error"] == app.errors.message
    app.set_lang("en")
    assert app.errors.message.startswith("There is no transactions table")
    broken = ForecastApp.from_source(tmp_path / "no_such.csv")
    assert "no_such.csv" in broken.errors.message


def test_every_key_the_page_asks_for_is_in_every_catalogue():
    source = SOURCE.read_text(encoding="utf-8")
    keys = set(re.findall(r"""\b_?t\(\s*f?["']([a-z_0-9]+\.[a-z_0-9.]*[a-z0-9])["']""", source))
    keys |= {f"forecast.title_{s}" for s in ("forecast", "backtest", "reconciliation")}
    keys |= {f"forecast.{k}" for k in ("level", "series", "horizon", "model", "intervals", "computing")}
    assert len(keys) > 30
    for lang in LANGUAGES:
        assert not sorted(k for k in keys if k not in catalogue(lang)), lang
    patterns = [r"description=f?\"[A-Za-z]", r"title=f?\"[A-Za-z]", r"\"text\": f?\"[A-Z]", r"<h3>[A-Za-z]"]
    assert not [m.group(0) for p in patterns for m in re.finditer(p, source)]



def test_seasonal_naive_by_hand(rng):
    # Two regions, one order a month with seeded revenue: the seasonal naive repeats last year, so each
    # region's change against the same months a year earlier is 0, and its backtest scores equal the baseline's.
    months = pd.date_range("2022-01-01", periods=36, freq="MS")
    tx = pd.DataFrame({"order_date": np.tile(months + pd.Timedelta(days=3), 2),
                       "region": np.repeat(["North", "South"], 36),
                       "revenue": rng.uniform(100.0, 200.0, 72).round(2)})
    app = ForecastApp({"transactions": tx}, level="region", model="snaive", horizon=6)
    assert app.result["error"] == ""
    units = app.result["units"].set_index("unique_id")
    for region in ["North", "South"]:
        mine = tx[tx["region"] == region]
        expected = mine.loc[mine["order_date"].between("2024-01-01", "2024-06-30"), "revenue"].sum()
        assert units.loc[region, "forecast"] == pytest.approx(expected)
        assert units.loc[region, "last_year"] == pytest.approx(expected)
        assert units.loc[region, "change"] == pytest.approx(0.0, abs=1e-12)
    assert units["share"].sum() == pytest.approx(1.0)
    bt = app.result["backtest"]
    np.testing.assert_allclose(bt["mase"], bt["mase_snaive"])
    np.testing.assert_allclose(bt["wape"], bt["wape_snaive"])
    # one breakdown only: the reconciled plan says which column to add, in the page's language
    assert app.result["notes"]["reconciliation"].startswith("Add a `channel` column")
    app.set_lang("zh")
    assert app.result["notes"]["reconciliation"].startswith(t("page.add", "zh", things=""))


def test_every_table_is_named_and_a_long_one_sorts_downloads_and_speaks_the_page_language(app):
    _set(app)
    names = [v.name for s in SECTIONS for v in app.html[s].tables]
    assert names == ["forecast_months", "forecast_region", "backtest_models", "backtest_region",
                     "reconciliation_mase_by_level", "reconciliation_gaps"]
    units = app.html["forecast"].tables[1]
    assert units.frame["unique_id"].tolist() == app.result["units"]["unique_id"].tolist()
    assert units.csv.filename == "forecast_region.csv" and units.html in app.html["forecast"].value
    _set(app, series="East", horizon=24)  # two years of months: longer than a screen
    try:
        shown, months = app.result["shown"], app.html["forecast"].tables[0]
        assert len(shown) == len(months.frame) == 24 and months.interactive
        assert app.html["forecast"].value.count("<tr") == 1 + 24  # the static HTML still holds every month
        back = pd.read_csv(io.BytesIO(months.csv_bytes()))
        assert back[t("forecast.col_forecast", "en")].tolist() == pytest.approx(shown["forecast"].tolist())
        app.set_lang("zh")
        assert app.html["forecast"].tables[0] is months and months.interactive
        assert months.excel.description == t("table.excel", "zh")
        assert months._itable._dt_args["language"]["search"] == t("table.search", "zh")
        back = pd.read_csv(io.BytesIO(months.csv_bytes()))
        assert back[t("forecast.col_forecast", "zh")].tolist() == pytest.approx(shown["forecast"].tolist())
    finally:
        app.set_lang("en")
