"""The market analysis page: built on the demo and on every export shape, controls that change the charts,
both languages from the catalogue, a switch that changes only the words."""

from __future__ import annotations

import html
import io
import re
import warnings

import pandas as pd
import pytest
from test_ui_lang import CJK, english_words, texts

from salesplan.i18n import catalogue, t
from salesplan.ui import MarketApp
from salesplan.ui._lang import option_values
from salesplan.ui.market import CHARTS, GRAINS, SECTIONS
from salesplan.ui.page import dimensions
from salesplan.ui.table import INTERACTIVE_ROWS


def build(tables, **kwargs) -> MarketApp:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MarketApp(tables, clusters=kwargs.pop("clusters", False), **kwargs)


@pytest.fixture(scope="module")
def demo():
    from salesplan.datasets import load_demo

    return dict(load_demo())


@pytest.fixture(scope="module")
def app_en(demo):
    return build(demo, clusters=True, lang="en")


@pytest.fixture
def app(app_en):
    """The English demo page with its controls as built; put back after the test (building one takes seconds)."""
    yield app_en
    app_en.set_lang("en")
    app_en.dimension.value, app_en.grain.value = "region", "MS"


@pytest.fixture(scope="module")
def app_zh(demo):
    return build(demo, clusters=True, lang="zh")


@pytest.fixture(scope="module")
def data_words(demo):
    """Words that come from the data's values (regions, products, customers), which no catalogue translates."""
    words = set()
    for col in ("region", "channel", "category", "product_id", "rep_id", "customer_id"):
        words |= set(demo["transactions"][col].dropna().astype(str).unique())
    return {w for v in words for w in re.findall(r"[A-Za-z_]+", v)}


def test_builds_on_the_demo_with_every_section(app_en, demo):
    tx = demo["transactions"]
    assert app_en.errors.level != "error", app_en.errors.message
    assert app_en.container.children[0] is app_en.lang_switch
    assert all(note == "" for note in app_en.result["notes"].values()), app_en.result["notes"]
    shown = [name for name, area in app_en.charts.items() if area.spec and area.spec["data"]]
    assert sorted(shown) == sorted(c for s in SECTIONS for c in CHARTS[s])
    # the numbers are the analysis module's, for the whole data
    assert app_en.result["sales_total"]["revenue"].sum() == pytest.approx(tx["revenue"].sum())
    assert app_en.result["summary"]["lines"] == len(tx)
    assert app_en.summary_line().startswith(f"{len(tx):,} order lines, revenue {tx['revenue'].sum():,.0f}, "
                                            f"{tx['customer_id'].nunique():,} customers")
    assert option_values(app_en.dimension) == dimensions(tx)
    # what the notebook's last cell shows: the widgets, and the data line as its plain text
    bundle = app_en._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == app_en.container.model_id
    assert bundle["text/plain"] == app_en.summary_line()


def test_grain_changes_the_sales_chart(app, demo):
    months = len(app.charts["sales_total"].spec["data"][0]["x"])
    app.grain.value = "QS"
    quarters = app.charts["sales_total"].spec["data"][0]["x"]
    assert months == 36 and len(quarters) == 12
    assert app.result["sales_by"]["revenue"].sum() == pytest.approx(demo["transactions"]["revenue"].sum())
    app.grain.value = "YS"
    assert len(app.result["sales_total"]) == 3
    assert set(GRAINS) == {"MS", "QS", "YS"}


def test_dimension_changes_the_breakdown_charts(app, demo):
    assert app.dimension.value == "region"
    regions = {tr["name"] for tr in app.charts["sales_by"].spec["data"]}
    assert regions == set(demo["transactions"]["region"].unique())
    app.dimension.value = "channel"
    channels = {tr["name"] for tr in app.charts["sales_by"].spec["data"]}
    assert channels == set(demo["transactions"]["channel"].unique())
    assert "channel" in app.result["cagr"].columns
    assert set(app.result["seasonal_index"]["channel"]) == channels
    assert app.charts["sales_by"].figure.layout.title.text == "Revenue by channel"


def test_missing_data_shows_the_sentence_instead(demo):
    tx = demo["transactions"][["order_date", "customer_id", "revenue"]]
    tx = tx[tx["order_date"] >= "2025-01-01"]
    app = build({"transactions": tx})
    assert app.errors.level != "error", app.errors.message
    assert option_values(app.dimension) == []
    notes = app.result["notes"]
    assert "`channel`" in notes["mix"] and "see which channels gain share" in notes["mix"]
    assert "24 months" in notes["seasonality"]
    assert "`market`" in notes["market"]
    assert notes["customers"] == "" and app.result["new_vs_returning"] is not None
    assert app.result["share"] is None and app.charts["mix"].layout.display == "none"
    app.set_lang("zh")
    assert "添加" in app.result["notes"]["mix"] and "`channel`" in app.result["notes"]["mix"]


def test_no_english_label_remains_in_chinese(app_zh, data_words):
    assert app_zh.lang == "zh"
    found = texts(app_zh.container, cells=True)  # table cells too: quadrants, segments, cluster labels
    assert sum(bool(CJK.search(text)) for _, text in found) > 40
    allowed = data_words | {"z", "HHI", "Gini", "RFM", "STL", "CAGR", "ABC"}
    left = [(kind, text) for kind, text in found if english_words(text, allowed)]
    assert not left, left[:10]
    for area in app_zh.charts.values():
        assert CJK.search(area.spec["layout"]["title"]["text"]), area.spec["layout"]["title"]


def test_cluster_labels_are_the_models_own_in_english(app_en, app_zh):
    profile = app_en.result["cluster_profile"]
    assert [app_en._cluster_label(d) for d in profile["distinguishing"]] == profile["label"].tolist()
    assert all(CJK.search(app_zh._cluster_label(d)) for d in profile["distinguishing"])


def test_english_page_shows_no_chinese(app_en):
    chinese = [(k, s) for k, s in texts(app_en.container, cells=True) if CJK.search(s) and s != "中文"]
    assert not chinese, chinese[:10]


def test_switching_keeps_the_numbers_and_comes_back(app):
    app.grain.value = "QS"
    before_texts = texts(app.container, cells=True)
    before = {k: v.copy() for k, v in app.result.items() if isinstance(v, pd.DataFrame)}
    app.lang_switch.value = "zh"
    assert app.lang == "zh" and app.grain.value == "QS" and app.dimension.value == "region"
    for k, v in before.items():
        pd.testing.assert_frame_equal(app.result[k], v, obj=k)
    assert app.grain.label == t("market.grain_QS", "zh")
    assert app.charts["sales_total"].figure.layout.title.text == t("market.chart_sales_total", "zh")
    app.set_lang("en")
    assert texts(app.container, cells=True) == before_texts


def test_every_key_the_page_asks_for_is_in_both_catalogues():
    source = (MarketApp.__module__.replace(".", "/") + ".py")
    import pathlib

    text = (pathlib.Path(__file__).resolve().parents[1] / source).read_text(encoding="utf-8")
    keys = set(re.findall(r"""_t\(\s*f?["']([a-z_]+\.[a-z_0-9]+)["']""", text))
    keys |= {f"market_sections.{s}" for s in SECTIONS} | {f"market_sections.{s}_guide" for s in SECTIONS}
    keys |= {f"market_clusters.{f}{end}" for f in MarketApp._SCALES for end in ("", "_high", "_low")}
    keys |= {f"market.grain_{g}" for g in GRAINS} | {f"market.month_{m}" for m in range(1, 13)}
    assert len(keys) > 40
    for lang in ("en", "zh"):
        assert not sorted(k for k in keys if k not in catalogue(lang)), lang


def test_a_choice_the_data_lacks_falls_back_and_says_so(demo):
    tx = demo["transactions"][["order_date", "customer_id", "revenue", "channel"]]
    app = build({"transactions": tx}, dimension="region", grain="W")
    assert (app.dimension.value, app.grain.value) == ("channel", "MS")
    shown = html.unescape(app.summary_html.value)
    assert t("market.fallback", "en", name="Grain", value="W", used="MS", choices="MS, QS, YS") in shown
    assert t("market.fallback", "en", name="Breakdown", value="region", used="channel", choices="channel") in shown
    assert "channel" in app.result["sales_by"].columns


def test_no_order_before_the_analysis_date_is_said_in_the_page(demo):
    app = build(demo, as_of="2000-01-01")
    assert app.errors.level == "error" and "2000-01-01" in app.result["error"]
    app.set_lang("zh")
    assert app.errors.message == t("market.no_orders", "zh", as_of="2000-01-01")


def test_a_file_that_cannot_be_read_is_shown_in_the_page(tmp_path):
    app = MarketApp.from_source(tmp_path / "no_such_file.csv", lang="en")
    assert app.errors.level == "error" and app.result["error"]
    assert app.result["summary"] is None


@pytest.mark.parametrize("shape", ["required_only", "region_category", "chinese_csv", "b2c_guests",
                                   "short_history", "crm_kaggle"])
def test_builds_on_export_shapes(shape, shape_paths):
    import shapes

    facts = shapes.SHAPES[shape].facts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = MarketApp.from_source(shape_paths[shape], clusters=False, lang="en")
    assert app.errors.level != "error", app.errors.message
    s = app.result["summary"]
    assert (s["lines"], s["customers"]) == (facts["lines"], facts["n_customers"])
    assert s["revenue"] == pytest.approx(facts["total_revenue"], abs=1.0)
    assert app.result["sales_total"]["revenue"].sum() == pytest.approx(facts["total_revenue"], abs=1.0)
    # every section shows something: its chart or table, or the sentence saying what to add
    for section in SECTIONS:
        shown = (app.result["notes"][section] or app.tables_html[section].value
                 or any(app.charts[c].spec["data"] for c in CHARTS[section]))
        assert shown, f"{shape}: section {section} is empty"
    failed = [n for n in app.result["notes"].values() if "could not be computed" in n]
    assert not failed, failed


def test_every_table_is_named_and_downloadable_and_the_section_value_is_its_static_html(app):
    views = [v for s in SECTIONS for v in app.tables_html[s].tables]
    assert len(views) >= 8
    names = [v.name for v in views]
    assert len(set(names)) == len(names) and all(n.startswith("market_") for n in names)  # one file each
    for section in SECTIONS:
        value = app.tables_html[section].value
        for view in app.tables_html[section].tables:
            assert view.html and view.html in value and (view.csv.filename, view.excel.filename) == (
                f"{view.name}.csv", f"{view.name}.xlsx")
            back = pd.read_csv(io.BytesIO(view.csv_bytes()))
            assert back.columns.tolist() == [str(c) for c in view.shown.columns]  # the page's headers
            assert len(back) == len(view.frame)
    abc = app.tables_html["abc"].value
    assert abc.index(html.escape(t("market.customer_abc", "en"))) < abc.index("<table")  # the sentence, then its table


def test_a_long_table_sorts_downloads_raw_numbers_and_speaks_the_page_language(app):
    app.dimension.value = "product_id"  # CAGR per product: more rows than a screen
    cagr = app.result["cagr"]
    view = app.tables_html["growth"].tables[0]
    assert len(cagr) > INTERACTIVE_ROWS and view.interactive and view.name == "market_cagr_product_id"
    back = pd.read_csv(io.BytesIO(view.csv_bytes()))
    assert back[app._heads(["cagr"])["cagr"]].tolist() == pytest.approx(cagr["cagr"].tolist(), nan_ok=True)
    app.set_lang("zh")
    view = app.tables_html["growth"].tables[0]
    assert view.interactive and view.csv.description == t("table.csv", "zh")
    assert view._itable._dt_args["language"]["search"] == t("table.search", "zh")
    assert app._heads(["cagr"])["cagr"] in view.shown.columns and CJK.search(app._heads(["cagr"])["cagr"])
    pd.testing.assert_frame_equal(app.result["cagr"], cagr)
