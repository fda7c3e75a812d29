"""SegmentApp: set the controls as a user would, then check app.result against the package and plain pandas."""

from __future__ import annotations

import datetime as dt
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_ui_lang import CJK, _frames, data_words, english_words, texts  # noqa: F401 - data_words is a fixture

from salesplan.errors import SalesplanError
from salesplan.i18n import LANGUAGES, catalogue, t
from salesplan.io import load_data
from salesplan.segments.rfm import SEGMENTS
from salesplan.ui.segments import _FIT_STEPS, AUTO, SECTIONS, SegmentApp, _slug

UI = Path(__file__).resolve().parents[1] / "salesplan" / "ui"

#: Names of methods a Chinese page keeps as they are.
METHODS = {"RFM", "CLV", "NBD", "MBG", "Pareto", "Gamma"}


@pytest.fixture(scope="module")
def demo():
    from salesplan.datasets import load_demo

    return dict(load_demo())


@pytest.fixture(scope="module")
def app(demo):
    """The demo page in English, fitted once for the module; tests put the controls back as they found them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SegmentApp(demo)


def _customers(tx: pd.DataFrame) -> int:
    return tx["customer_id"].dropna().nunique()


def test_every_section_is_shown_on_the_demo(app, demo):
    assert app.result["error"] == ""
    for s in SECTIONS:
        assert app.result["notes"][s] == "", s
        shown = app._charts[s].spec["data"] if s in app._charts else app.html[s].value
        assert shown, s
    for key in ("rfm", "segment_summary", "clusters", "selection", "calibration", "tracking", "value",
                "by_segment", "customers"):
        assert isinstance(app.result[key], pd.DataFrame) and len(app.result[key]), key
    assert app.n_fits == 1
    assert app.progress_box.layout.display == "none"  # shown only while fitting
    assert app.result["segment_summary"]["customers"].sum() == _customers(demo["transactions"])
    chosen = app.result["selection"].query("chosen")["model"].unique()
    assert list(chosen) == [app.result["model"]]


def test_the_segment_picker_lists_exactly_that_segments_customers(app):
    rfm = app.result["rfm"]
    value = app.result["value"]
    fits, cached = app.n_fits, dict(app._fit_cache)
    offered = [v for _, v in app.segment.options]
    assert offered == [s for s in SEGMENTS if (rfm["segment"] == s).any()]
    for segment in offered[:4]:
        app.segment.value = segment
        listed = app.result["customers"]
        assert list(listed.columns) == ["customer_id", "recency", "frequency", "monetary", "clv", "probability_alive"]
        expected = set(rfm.loc[rfm["segment"].astype(str) == segment, "customer_id"])
        assert set(listed["customer_id"]) == expected and len(listed) == len(expected)
        assert listed["clv"].is_monotonic_decreasing
        clv = value.set_index("customer_id")["clv"]
        pd.testing.assert_series_equal(listed.set_index("customer_id")["clv"], clv.loc[listed["customer_id"]])
    assert app.n_fits == fits and app._fit_cache == cached  # picking a segment never refits
    app.segment.value = offered[0]


def test_changing_the_clusters_changes_the_cluster_chart(app):
    fits = app.n_fits
    charts = {}
    for k in (3, 4):
        app.clusters.value = k
        assert len(app.result["clusters"]) == k
        assert app.result["cluster_labels"]["cluster"].nunique() == k
        charts[k] = app.cluster_chart.spec["data"][0]
        assert len(charts[k]["y"]) == k
    assert np.shape(charts[3]["z"]) != np.shape(charts[4]["z"])
    app.clusters.value = AUTO
    auto = app.result["clusters"]
    assert 2 <= len(auto) <= 6 and "silhouette" in app.html["clusters"].value
    assert app.n_fits == fits  # the clusters never refit the lifetime values


def test_a_longer_horizon_adds_value_without_refitting(app):
    fits = app.n_fits
    totals = {}
    for months in (6, 24, 12):
        app.horizon.value = months
        totals[months] = app.result["value"]["clv"].sum()
    assert totals[6] < totals[12] < totals[24]
    assert app.n_fits == fits


def test_an_earlier_analysis_date_refits_once_with_progress(app, demo):
    tx = demo["transactions"]
    fits, seen = app.n_fits, []
    app.progress.observe(lambda change: seen.append(change["new"]), names="value")
    app.as_of.value = dt.date(2025, 6, 30)
    try:
        assert app.n_fits == fits + 1 and app.result["error"] == ""
        assert seen[-1] == len(_FIT_STEPS) and sorted(set(seen)) == list(range(len(_FIT_STEPS) + 1))
        assert app.progress_box.layout.display == "none"
        before = tx[tx["order_date"] <= "2025-06-30"]
        rfm = app.result["rfm"].set_index("customer_id")
        last = before.groupby("customer_id")["order_date"].max()
        recency = (pd.Timestamp("2025-06-30") - last).dt.days
        pd.testing.assert_series_equal(rfm["recency"].sort_index(), recency.sort_index(), check_names=False,
                                       check_dtype=False)
        assert app.result["tracking"]["period"].max() <= pd.Timestamp("2025-06-30")
    finally:
        app.as_of.value = dt.date(2025, 12, 31)
    assert app.n_fits == fits + 1  # back to the first date: its fit is kept


def test_an_analysis_date_before_the_first_order_is_said_in_every_section(app):
    fits = app.n_fits
    app.as_of.value = dt.date(2020, 1, 1)
    try:
        said = t("segments.as_of_before", "en", first="2023-01-02")
        assert app.result["error"] == "" and all(app.result["notes"][s] == said for s in SECTIONS)
        assert app.result["value"] is None and app.n_fits == fits
    finally:
        app.as_of.value = dt.date(2025, 12, 31)
    assert app.result["notes"]["value"] == "" and app.result["value"] is not None


def test_the_chinese_page_shows_no_english(demo, data_words):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = SegmentApp(demo, lang="zh")
    assert app.container.children[0] is app.lang_switch and app.lang_switch.value == "zh"
    found = texts(app.container)
    assert sum(bool(CJK.search(text)) for _, text in found) > 30
    left = [(kind, text) for kind, text in found if english_words(text, data_words | METHODS)]
    assert not left, f"the segment explorer in Chinese still shows English: {left[:10]}"
    names = [label for label, _ in app.segment.options]
    assert names[0].startswith(t(f"segments_rfm.{_slug(app.segment.value)}", "zh"))


def test_the_english_page_shows_no_chinese(app):
    chinese = [(kind, text) for kind, text in texts(app.container, cells=True)
               if CJK.search(text) and text not in LANGUAGES.values()]
    assert not chinese, chinese[:10]


def test_switching_language_changes_the_words_and_keeps_the_numbers(app):
    before_texts = texts(app.container, cells=True)
    before = {k: v.copy() for k, v in _frames(app.result).items()}
    controls = (app.as_of.value, app.clusters.value, app.horizon.value, app.segment.value)
    fits = app.n_fits
    app.lang_switch.value = "zh"
    try:
        assert app.lang == "zh"
        assert app.rfm_chart.figure.layout.title.text == t("segments.rfm_chart", "zh")
        assert app.headings["clusters"].value == f"<h3>{t('segments.title_clusters', 'zh')}</h3>"
        for key, frame in _frames(app.result).items():
            pd.testing.assert_frame_equal(frame, before[key], obj=f"segments.result[{key!r}]")
        assert (app.as_of.value, app.clusters.value, app.horizon.value, app.segment.value) == controls
        assert app.n_fits == fits
    finally:
        app.set_lang("en")
    assert texts(app.container, cells=True) == before_texts


@pytest.mark.parametrize("shape", ["b2c_guests", "chinese_csv"])
def test_real_export_shapes(shape, shape_paths):
    import shapes

    facts = shapes.SHAPES[shape].facts
    options = {"max_drop_fraction": 0.5, "clusters": 3, "clv_horizon_months": 6} if shape == "b2c_guests" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = SegmentApp.from_source(shape_paths[shape], **options)
        tx = load_data(shape_paths[shape], **{k: v for k, v in options.items() if k == "max_drop_fraction"})
    assert app.result["error"] == ""
    assert len(app._tx) == len(tx["transactions"]) == facts["lines"]
    if options:
        assert app.clusters.value == 3 and len(app.result["clusters"]) == 3 and app.horizon.value == 6
    assert app.result["segment_summary"]["customers"].sum() == facts["n_customers"]
    assert len(app.result["value"]) == facts["n_customers"]
    # when the kept model's refit cannot predict (parameters run off to extremes), the next one values everyone
    assert app.result["value"]["clv"].notna().all()
    assert (app.result["model"] == app.result["selection"].query("chosen")["model"].iloc[0]) == (
        t("segments.fallback", "en", kept="", model="")[:20] not in app.html["value"].value)
    guests = "without a customer" in app.facts.value
    assert guests == (facts["guest_lines"] > 0)
    if guests:
        assert f"{facts['guest_lines']:,} lines without a customer" in app.facts.value
    segment = app.segment.value
    assert set(app.result["customers"]["customer_id"]) == set(
        app.result["rfm"].loc[app.result["rfm"]["segment"].astype(str) == segment, "customer_id"])


def test_a_holdout_longer_than_the_history_says_what_is_needed_and_still_values(demo):
    tx = demo["transactions"]
    short = {"transactions": tx[tx["order_date"] >= "2025-01-01"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = SegmentApp(short, holdout_months=6)
    for lang in ("en", "zh"):
        app.set_lang(lang)
        needed = t("page.needs", lang, lack=t("page.need_months", lang, months=13, have=12),
                   to=t("segments_to.holdout", lang))
        for s in ("models", "calibration", "tracking"):
            assert app.result["notes"][s] == needed
        assert app.result["selection"] is None and app.result["model"] == "bgnbd"
        assert app.result["value"]["clv"].notna().any() and app.result["notes"]["value"] == ""


def test_no_customer_column_says_what_to_add(demo):
    tx = demo["transactions"].drop(columns="customer_id")
    for lang in ("en", "zh"):
        app = SegmentApp({"transactions": tx}, lang=lang)
        assert app.result["error"] == ""
        sentence = app.result["notes"]["rfm"]
        assert "`customer_id`" in sentence and sentence.endswith(t("segments_to.segments", lang) + ("." if lang == "en"
                                                                                                  else "。"))
        assert all(app.result["notes"][s] == sentence for s in SECTIONS)


def test_no_transactions_and_unreadable_files_are_said_in_the_page(tmp_path):
    app = SegmentApp({}, lang="zh")
    assert CJK.search(app.errors.message) and app.result["error"] == app.errors.message
    app.set_lang("en")
    assert app.errors.message.startswith("There is no transactions table")
    broken = SegmentApp.from_source(tmp_path / "no_such.csv")
    assert "no_such.csv" in broken.errors.message and broken.result["error"]
    with pytest.raises(SalesplanError, match="clusters must be"):
        SegmentApp({}, clusters=1)


def test_every_key_the_page_asks_for_is_in_every_catalogue():
    source = (UI / "segments.py").read_text(encoding="utf-8")
    keys = set(re.findall(r"""\b_?t\(\s*["']([a-z_0-9]+\.[a-z_0-9.]*[a-z0-9])["']""", source))
    keys |= {f"segments.title_{s}" for s in SECTIONS} | {f"segments.guide_{s}" for s in SECTIONS}
    keys |= {f"segments.{step}" for step in _FIT_STEPS} | {f"segments_rfm.{_slug(s)}" for s in SEGMENTS}
    keys |= {f"segments_rfm_about.{_slug(s)}" for s in SEGMENTS}
    described = ("recency", "tenure", "frequency", "monetary", "avg_order_value", "purchases_per_month",
                 "share", "other")
    keys |= {f"segments_words.{f}_{side}" for f in described for side in ("high", "low")}
    assert len(keys) > 80
    for lang in LANGUAGES:
        absent = sorted(k for k in keys if k not in catalogue(lang))
        assert not absent, f"salesplan/locale/{lang}.toml lacks: {absent}"
    patterns = [r"description=f?\"[A-Za-z]", r"title=f?\"[A-Za-z]", r"<h[34]>[A-Za-z]", r"_title=f?\"[A-Za-z]"]
    assert not [m.group(0) for p in patterns for m in re.finditer(p, source)]


def test_the_picked_segments_customers_are_a_table_that_sorts_downloads_and_speaks_the_page_language(app):
    names = [v.name for s in SECTIONS for v in app.html[s].tables]
    assert names == ["rfm_segments", "customer_clusters", "repeat_purchase_models", "top_customers_clv",
                     "clv_model_parameters", "clv_by_segment", f"segment_customers_{_slug(app.segment.value)}"]
    rfm = app.result["rfm"]
    counts = rfm["segment"].astype(str).value_counts()
    offered = [v for _, v in app.segment.options]
    long = next(s for s in offered if counts[s] > 15)
    fewest = min(offered, key=lambda s: counts[s])  # a second segment: the table follows the picker
    start, fits = app.segment.value, app.n_fits
    cols = ["customer_id", "recency", "frequency", "monetary", "clv", "probability_alive"]

    def downloaded(view):
        heads = app._heads(cols)
        back = pd.read_csv(io.BytesIO(view.csv_bytes()), dtype={heads["customer_id"]: str})
        assert list(back.columns) == [heads[c] for c in cols]
        return back.set_axis(cols, axis=1)

    try:
        for segment in dict.fromkeys([fewest, long]):
            app.segment.value = segment
            view = app.html["customers"].tables[0]
            listed = app.result["customers"]
            assert view.csv.filename == f"segment_customers_{_slug(segment)}.csv"
            assert view.excel.filename == f"segment_customers_{_slug(segment)}.xlsx"
            back = downloaded(view)
            expected = rfm.loc[rfm["segment"].astype(str) == segment, "customer_id"].astype(str)
            assert sorted(back["customer_id"]) == sorted(expected)  # exactly that segment's customers, all of them
            for c in cols[1:]:  # raw numbers, not the page's text
                assert back[c].tolist() == pytest.approx(listed[c].astype(float).tolist(), nan_ok=True), c
            assert view.interactive == (len(listed) > 15)
            assert view.html in app.html["customers"].value
        assert view.interactive and view._itable is not None
        data, defs = view._itable_data()
        clv_col = cols.index("clv")
        (order,) = [d["orderData"][0] for d in defs if d.get("targets") == clv_col and "orderData" in d]
        assert data.iloc[:, order].tolist() == pytest.approx(listed["clv"].tolist(), nan_ok=True)  # sorts on numbers
        assert view._itable._dt_args["language"]["search"] == t("table.search", "en")

        app.set_lang("zh")
        assert app.html["customers"].tables[0] is view and view.interactive
        assert (view.csv.description, view.excel.description) == (t("table.csv", "zh"), t("table.excel", "zh"))
        assert view._itable._dt_args["language"]["search"] == t("table.search", "zh")
        assert all(CJK.search(h) for h in view.shown.columns)
        back_zh = downloaded(view)
        pd.testing.assert_frame_equal(back_zh, back)
        pd.testing.assert_frame_equal(app.result["customers"], listed)
        assert app.n_fits == fits
    finally:
        app.set_lang("en")
        app.segment.value = start
