"""Tests for salesplan.ui.table (tables a manager reads) and the live charts of salesplan.ui._common."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("ipywidgets")

import ipywidgets as widgets  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
from openpyxl import load_workbook  # noqa: E402

from salesplan import format as fmt  # noqa: E402
from salesplan.ui._common import Pages, PlotArea  # noqa: E402
from salesplan.ui.table import INTERACTIVE_ROWS, Download, Section, Table, TableView  # noqa: E402


def _units(n: int) -> pd.DataFrame:
    # Quotas whose text order differs from their numeric order ("9,000" > "10,000" as text).
    quota = np.array([9000.0, 10000.0, 683091.8, 1.2e9, 55.5] * (n // 5 + 1))[:n] + np.arange(n)
    return pd.DataFrame({
        "unit": [f"u{i:02d}" for i in range(n)],
        "quota": quota,
        "share": quota / quota.sum(),
        "deals": np.arange(n) * 3,
        "month": pd.date_range("2025-01-01", periods=n, freq="MS"),
    }, index=np.arange(n) + 100)


def test_cells_are_the_text_of_the_one_formatter():
    df = _units(5)
    view = TableView(df, name="quotas")
    pd.testing.assert_frame_equal(view.shown, fmt.format_frame(df))
    assert view.shown["quota"].tolist()[:3] == ["9,000", "10,001", "683,094"]
    assert view.shown["share"].iloc[0].endswith("%")
    assert "e+0" not in view.html and "1,200,000,003" in view.html
    assert ">100<" not in view.html  # no index column


def test_a_short_table_stays_a_plain_html_table():
    df = _units(INTERACTIVE_ROWS)
    view = TableView(df)
    assert not view.interactive
    shown = view.children[1]
    assert isinstance(shown, widgets.HTML)
    assert shown.value == view.html and shown.value.count("<table") == 1
    for cell in view.shown.to_numpy().ravel():
        assert f">{cell}</td>" in shown.value


def test_a_long_table_becomes_the_sortable_widget_sorting_on_the_raw_numbers():
    df = _units(INTERACTIVE_ROWS + 1)
    view = TableView(df, labels={"quota": "Quota"})
    assert view.interactive
    itable = view.children[1]
    assert type(itable).__name__ == "ITable"
    args = itable._dt_args
    rows = json.loads(args["data_json"])
    assert len(rows) == len(df)
    header = [str(c) for c in view.shown.columns]
    assert header == ["unit", "Quota", "share", "deals", "month"]
    # Each number or date column sorts by a hidden column holding the raw value.
    order = {d["targets"]: d["orderData"][0] for d in args["columnDefs"] if "orderData" in d}
    assert set(order) == {1, 2, 3, 4}
    hidden = next(d for d in args["columnDefs"] if d.get("visible") is False)
    assert sorted(hidden["targets"]) == sorted(order.values())
    assert hidden["searchable"] is False
    quota_key = [r[order[1]] for r in rows]
    assert quota_key == pytest.approx(df["quota"].tolist())
    assert [r[1] for r in rows] == view.shown["Quota"].tolist()  # the visible cell is the formatted text
    by_key = [r[1] for r in sorted(rows, key=lambda r: r[order[1]])]
    by_text = sorted(r[1] for r in rows)
    assert by_key != by_text  # sorting the text would be wrong; the key sorts numerically
    assert by_key[0] == fmt.money(df["quota"].min())
    assert [r[order[4]] for r in rows][:2] == ["2025-01-01 00:00:00", "2025-02-01 00:00:00"]
    # A search box and a click-to-sort header.
    assert args["layout"]["topEnd"] == "search"
    assert "text_in_header_can_be_selected" not in args


def test_switching_between_short_and_long_reuses_the_widgets():
    view = TableView(_units(40))
    itable = view.children[1]
    view.update(_units(3))
    assert not view.interactive and isinstance(view.children[1], widgets.HTML)
    view.update(_units(30))
    assert view.children[1] is itable
    assert len(json.loads(itable._dt_args["data_json"])) == 30


def test_a_very_long_table_sends_its_first_rows_and_says_the_downloads_hold_all(monkeypatch):
    import salesplan.ui.table as table_module

    monkeypatch.setattr(table_module, "MAX_INTERACTIVE_ROWS", 20)
    view = TableView(_units(30))
    assert len(json.loads(view.children[1]._dt_args["data_json"])) == 20
    assert "20 of 30" in view.children[1].caption
    assert len(pd.read_csv(io.BytesIO(view.csv.payload()), encoding="utf-8-sig")) == 30


def test_csv_download_holds_the_raw_numbers_with_the_page_headers():
    df = _units(20)
    df.loc[df.index[2], "quota"] = np.nan
    view = TableView(df, name="quotas", labels={"quota": "Quota", "share": "share of total"})
    data = view.csv.payload()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 headers
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", parse_dates=["month"])
    assert back.columns.tolist() == ["unit", "Quota", "share of total", "deals", "month"]
    expected = df.reset_index(drop=True).rename(columns={"quota": "Quota", "share": "share of total"})
    pd.testing.assert_frame_equal(back, expected, check_dtype=False, check_exact=True)


def test_excel_download_holds_raw_numbers_with_number_formats():
    df = _units(20)
    df.loc[df.index[0], "unit"] = "=1+1"
    view = TableView(df, name="quotas", labels={"quota": "Quota"})
    data = view.excel.payload()
    back = pd.read_excel(io.BytesIO(data))
    assert back.columns.tolist() == ["unit", "Quota", "share", "deals", "month"]
    np.testing.assert_allclose(back["Quota"], df["quota"])
    np.testing.assert_allclose(back["share"], df["share"])
    assert back["deals"].tolist() == df["deals"].tolist()
    assert back["month"].tolist() == df["month"].tolist()
    ws = load_workbook(io.BytesIO(data)).active
    assert ws.title == "quotas"
    assert ws["A2"].value == "=1+1" and ws["A2"].data_type == "s"  # text, never a formula
    assert ws["B2"].number_format == fmt.EXCEL_FORMATS["money"]
    assert ws["C2"].number_format == fmt.EXCEL_FORMATS["percent"]
    assert ws["D2"].number_format == fmt.EXCEL_FORMATS["count"]
    assert ws["E2"].number_format == fmt.EXCEL_FORMATS["date"]
    assert ws.freeze_panes == "A2"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=30))
def test_csv_round_trips_any_number_exactly(values):
    df = pd.DataFrame({"revenue": values})
    back = pd.read_csv(io.BytesIO(fmt.table_csv(df)), encoding="utf-8-sig")
    assert back["revenue"].astype(float).tolist() == [float(v) for v in values]


def test_downloads_are_built_when_asked_and_sent_as_a_buffer(monkeypatch):
    calls = []
    button = Download(lambda: calls.append(1) or b"a,b\n1,2\n", filename="t.csv", description="CSV")
    assert calls == []
    sent = []
    monkeypatch.setattr(button, "send", lambda content, buffers=None: sent.append((content, buffers)))
    button._on_msg(button, {"event": "download"}, [])
    assert calls == [1]
    (content, buffers), = sent
    assert content == {"event": "file", "filename": "t.csv", "mime": "text/csv"}
    assert buffers == [b"a,b\n1,2\n"]
    button._on_msg(button, {"event": "other"}, [])
    assert len(sent) == 1


def test_download_buttons_follow_the_table_name():
    view = TableView(_units(3), name="first")
    view.update(_units(3), name="allocation_rep")
    assert (view.csv.filename, view.excel.filename) == ("allocation_rep.csv", "allocation_rep.xlsx")


def test_section_value_is_the_static_page_and_the_page_shows_live_tables():
    section = Section()
    section.show("<p>stuck deals</p>", Table(_units(20), name="aging", count=["deals"]), "<p>note</p>",
                 Table(_units(3), name="detail", summary="How it is computed"))
    kinds = [type(c).__name__ for c in section.children]
    assert kinds == ["HTML", "TableView", "HTML", "Accordion"]
    assert [t.name for t in section.tables] == ["aging", "detail"]
    assert section.tables[0].interactive and not section.tables[1].interactive
    static = section.value
    assert static.startswith("<p>stuck deals</p>") and "<details><summary>How it is computed</summary>" in static
    assert static.count("<table") == 2 and "1,200,000,003" in static
    first = section.tables[0]
    section.show("<p>again</p>", Table(_units(25), name="aging"))
    assert section.tables[0] is first and len(section.children) == 2  # widgets reused, the fold dropped
    section.value = "<p>No deals.</p>"
    assert section.value == "<p>No deals.</p>" and section.tables == []
    with pytest.raises(TypeError, match="Table parts"):
        section.show(_units(2))
    with pytest.raises(TypeError, match="formatting takes"):
        Table(_units(2), colour="red")


# ------------------------------------------------------------------ live charts

def test_live_chart_is_updated_in_place():
    area = PlotArea({"data": [{"type": "bar", "x": ["a", "b"], "y": [1.0, 2.0]}],
                     "layout": {"title": {"text": "one"}}}, live=True)
    view = area._view
    assert isinstance(view, go.FigureWidget) and area.redraws == 1
    messages = []
    view.observe(lambda ch: ch.new and messages.append(ch.name),
                 names=["_py2js_update", "_py2js_restyle", "_py2js_relayout", "_py2js_addTraces",
                        "_py2js_deleteTraces"])
    area.update({"data": [{"type": "bar", "x": ["a", "b"], "y": [3.0, 2.0]}], "layout": {"title": {"text": "two"}}})
    assert messages == ["_py2js_update"]  # one batched restyle + relayout, nothing re-created
    assert area.redraws == 1
    assert list(view.data[0].y) == [3.0, 2.0] and view.layout.title.text == "two"
    # The synced state is current, so a page drawn later shows the new figure.
    assert view._widget_data[0]["y"] == [3.0, 2.0] and view._widget_layout["title"]["text"] == "two"
    assert area.figure.data[0].y == (3.0, 2.0)
    area.update(go.Figure([go.Scatter(x=[1], y=[1]), go.Scatter(x=[1], y=[2])]))
    assert area.redraws == 2 and len(view.data) == 2


def test_live_chart_under_serve_imports_plotlys_module_from_the_server(monkeypatch):
    import plotly

    from salesplan.serve import FIGURE_MODULE, WIDGET_MODULES_ENV, WIDGET_MODULES_PATH

    # Elsewhere (JupyterLab, plain Voila): plotly's own widget, carrying its module.
    monkeypatch.delenv(WIDGET_MODULES_ENV, raising=False)
    own = PlotArea(live=True)._view
    assert len(own._esm) > 1_000_000
    # Under `salesplan serve`: a few lines that import the one module the server hands out.
    monkeypatch.setenv(WIDGET_MODULES_ENV, WIDGET_MODULES_PATH)
    area = PlotArea({"data": [{"type": "bar", "x": ["a"], "y": [1.0]}], "layout": {}}, live=True)
    view = area._view
    assert isinstance(view, go.FigureWidget) and len(view._esm) < 1_000
    url = f"{WIDGET_MODULES_PATH}/{FIGURE_MODULE.format(version=plotly.__version__)}"
    assert f'"{url}"' in view._esm and "import(" in view._esm and "export default" in view._esm
    assert list(view.data[0].y) == [1.0]
    assert PlotArea(live=True)._view._esm == view._esm


def test_live_chart_state_is_json_whatever_the_figure_holds():
    """One widget whose state is not JSON leaves every widget of the page 'Loading widget...'."""
    import datetime

    from ipywidgets.widgets.widget import _remove_buffers

    months = pd.date_range("2026-01-01", periods=3, freq="MS")
    for x in (list(months.to_pydatetime()), months, months.to_numpy(), [d.date() for d in months]):
        area = PlotArea({"data": [{"type": "bar", "x": x, "y": np.array([1.0, np.nan, 3.0])}], "layout": {}},
                        live=True)
        state, _, _ = _remove_buffers(area._view.get_state())
        json.dumps(state, allow_nan=False)
        assert area._view.data[0].x[0] in ("2026-01-01", "2026-01-01T00:00:00", datetime.date(2026, 1, 1).isoformat())


def test_pages_show_one_section_and_keep_every_section_in_the_tree():
    boxes = {key: widgets.VBox([widgets.HTML(key)]) for key in ("sales", "growth", "mix")}
    pages = Pages(boxes, {"sales": "Sales", "growth": "Growth"})
    assert pages.nav.options == (("Sales", "sales"), ("Growth", "growth"), ("mix", "mix"))
    assert pages.shown == "sales" and pages.stack.selected_index == 0
    assert list(pages.stack.children) == list(boxes.values())  # all there, computed; the browser draws one
    pages.show("mix")
    assert pages.shown == "mix" and pages.stack.selected_index == 2
    pages.relabel({"sales": "销售", "growth": "增长", "mix": "结构"})  # a language switch keeps the section
    assert [label for label, _ in pages.nav.options] == ["销售", "增长", "结构"] and pages.shown == "mix"
    # The buttons drive the stack in the browser too (no kernel needed to change section).
    links = [w for w in widgets.Widget.widgets.values() if type(w).__name__ == "Link"
             and w.source == (pages.nav, "index") and w.target == (pages.stack, "selected_index")]
    assert len(links) == 1


@pytest.mark.parametrize("widget", ["plotly", "itables", "download"])
def test_widget_javascript_ships_with_the_packages(widget):
    if widget == "plotly":
        esm = go.FigureWidget._esm
    elif widget == "itables":
        from itables.widget import ITable

        esm = ITable._esm
    else:
        esm = Download._esm
    text = Path(esm).read_text() if isinstance(esm, Path) else str(esm)
    assert len(text) > 500
    # No module imported from another host when the widget loads (the page's offline test checks the requests).
    for pattern in ("import(\"http", "import('http", "from \"http", "from 'http", "import \"http", "import 'http"):
        assert pattern not in text, (widget, pattern)


# ------------------------------------------------------------------ the apps

@pytest.fixture(scope="module")
def planner():
    from salesplan.ui import TargetPlanner

    rng = np.random.default_rng(11)
    reps = [f"r{i:02d}" for i in range(18)]
    days = pd.date_range("2023-01-01", "2025-12-31", freq="D").to_numpy()
    n = 6000
    tx = pd.DataFrame({"order_date": pd.to_datetime(rng.choice(days, n)), "order_id": [f"o{i}" for i in range(n)],
                       "customer_id": rng.integers(0, 300, n).astype(str), "rep_id": rng.choice(reps, n),
                       "revenue": rng.gamma(2.0, 50.0, n)})
    return TargetPlanner(tx, growth=0.05, method="historical_share", model="snaive", n_samples=100,
                         calibration=False, plan_dir=Path("unused-plans"))


def test_planner_shows_every_unit_in_the_sortable_table_and_charts_change_in_place(planner):
    table = planner.allocation_table
    assert table.interactive and len(table.frame) == len(planner.result) == 18
    assert table.shown["rep"].tolist() == planner.result["unique_id"].tolist()
    assert table.shown["quota"].tolist() == [fmt.money(q) for q in planner.result["quota"]]
    redraws = planner.quota_chart.redraws
    before = np.array(planner.quota_chart._view.data[0].y, dtype=float)
    planner.growth.value = 0.2
    assert planner.quota_chart.redraws == redraws  # same traces, updated in place
    after = np.asarray(planner.quota_chart._view.data[0].y)
    assert after.sum() > np.asarray(before).sum()
    np.testing.assert_allclose(after, planner.result["quota"])
    assert table.shown["quota"].tolist() == [fmt.money(q) for q in planner.result["quota"]]
    back = pd.read_csv(io.BytesIO(table.csv.payload()), encoding="utf-8-sig")
    np.testing.assert_allclose(back["quota"], planner.result["quota"])


def test_a_table_says_its_own_words_in_the_page_language():
    long = pd.DataFrame({"unit": [f"u{i}" for i in range(INTERACTIVE_ROWS + 5)],
                         "revenue": np.arange(INTERACTIVE_ROWS + 5) * 1000.0})
    view = TableView(long, name="units", lang="zh")
    assert view.interactive and view.csv.description.startswith("CSV") and "下载" in view._download_label.value
    assert view._itable._dt_args["language"]["search"] == "搜索："
    view.set_lang("en")
    assert "Download" in view._download_label.value and view._itable._dt_args["language"]["search"] == "Search:"
    # A section passes its language to the tables it creates.
    section = Section(lang="zh")
    section.show("<p>x</p>", Table(long, name="t"))
    assert "下载" in section.tables[0]._download_label.value
    section.set_lang("en")
    assert "Download" in section.tables[0]._download_label.value
