"""OverviewApp: set the widgets as a user would, then check app.result against plain pandas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from salesplan.ui.overview import ALL, OverviewApp, find_apps, format_value

AS_OF = pd.Timestamp("2025-12-31")


@pytest.fixture
def tables(rng):
    """A small company with the schema's columns: three years of order lines, customers, reps."""
    n = 3000
    days = pd.date_range("2023-01-01", AS_OF, freq="D")
    revenue = np.round(rng.gamma(2.0, 90.0, n), 2)
    returns = rng.random(n) < 0.04
    revenue[returns] *= -1
    tx = pd.DataFrame(
        {
            "order_date": days[rng.integers(0, len(days), n)],
            "order_id": [f"SO{i:05d}" for i in rng.integers(0, 1800, n)],
            "customer_id": [f"C{i:03d}" for i in rng.integers(0, 200, n)],
            "product_id": [f"P{i:02d}" for i in rng.integers(0, 30, n)],
            "region": rng.choice(["North", "South", "East", "West"], n),
            "channel": rng.choice(["direct", "online", "partner"], n),
            "revenue": revenue,
        }
    ).astype({"order_id": "string", "customer_id": "string", "region": "string", "channel": "string"})
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(200)],
            "first_order_date": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, 200), "D"),
        }
    )
    reps = pd.DataFrame({"rep_id": [f"R{i}" for i in range(12)], "team": ["a", "b"] * 6})
    return {"transactions": tx, "customers": customers, "reps": reps}


def expected_kpis(tx: pd.DataFrame) -> dict[str, float]:
    """The KPIs computed directly, the way an analyst would in pandas."""
    window = tx[(tx["order_date"] > AS_OF - pd.DateOffset(years=1)) & (tx["order_date"] <= AS_OF)]
    previous = tx[
        (tx["order_date"] > AS_OF - pd.DateOffset(years=2)) & (tx["order_date"] <= AS_OF - pd.DateOffset(years=1))
    ]
    sales = window[window["revenue"] > 0]
    return {
        "revenue_12m": window["revenue"].sum(),
        "yoy_growth": window["revenue"].sum() / previous["revenue"].sum() - 1,
        "customers": window["customer_id"].nunique(),
        "average_order_value": sales["revenue"].sum() / sales["order_id"].nunique(),
        "returns_share": -window.loc[window["revenue"] < 0, "revenue"].sum() / sales["revenue"].sum(),
    }


def kpi_values(app: OverviewApp) -> dict[str, float]:
    return app.result["kpis"].set_index("kpi")["value"].to_dict()


def assert_kpis(app, tx):
    got, want = kpi_values(app), expected_kpis(tx)
    assert list(got) == list(want)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-9), name


def test_initial_page_shows_all_data(tables):
    app = OverviewApp(tables)
    assert app.result["error"] == ""
    assert app.region.value == ALL and app.channel.value == ALL
    assert app.region.options == (ALL, "East", "North", "South", "West")
    assert app.channel.options == (ALL, "direct", "online", "partner")
    assert_kpis(app, tables["transactions"])
    summary = app.result["summary"].set_index("table")
    assert summary.loc["transactions", "rows"] == 3000
    assert summary.loc["transactions", "last_date"] == tables["transactions"]["order_date"].max()
    assert list(summary.index) == ["transactions", "customers", "reps"]
    # The page shows the same numbers, formatted.
    assert f'<td class="rows">{format_value(3000, "count")}</td>' in app.summary.value
    assert format_value(kpi_values(app)["revenue_12m"], "money") in app.kpi_cards.value


def test_region_dropdown_filters_kpis_and_chart(tables):
    app = OverviewApp(tables)
    tx = tables["transactions"]
    app.region.value = "North"
    north = tx[tx["region"] == "North"]
    assert app.result["error"] == ""
    assert_kpis(app, north)
    monthly = north.groupby(north["order_date"].dt.to_period("M").dt.to_timestamp())["revenue"].sum()
    pdt.assert_series_equal(
        app.result["monthly"].set_index("month")["revenue"], monthly, check_names=False, check_freq=False
    )
    fig = app.chart.figure
    assert "North" in fig.layout.title.text
    np.testing.assert_allclose(np.asarray(fig.data[0].y, dtype=float), monthly.to_numpy())
    assert format_value(expected_kpis(north)["revenue_12m"], "money") in app.kpi_cards.value


def test_region_and_channel_together_then_back_to_all(tables):
    app = OverviewApp(tables)
    tx = tables["transactions"]
    before = kpi_values(app)
    app.region.value = "South"
    app.channel.value = "online"
    assert_kpis(app, tx[(tx["region"] == "South") & (tx["channel"] == "online")])
    assert "South, online" in app.chart.figure.layout.title.text
    app.region.value = ALL
    app.channel.value = ALL
    assert kpi_values(app) == pytest.approx(before)


def test_regions_add_up_to_the_whole(tables):
    app = OverviewApp(tables)
    total = kpi_values(app)["revenue_12m"]
    parts = []
    for region in app.region.options[1:]:
        app.region.value = region
        parts.append(kpi_values(app)["revenue_12m"])
    assert sum(parts) == pytest.approx(total)


def test_window_ends_on_last_order_date_of_all_data(tables):
    # The last order of the whole data fixes the window, so a region that stopped
    # selling earlier is not compared over a different year.
    tx = tables["transactions"]
    quiet = tx[~((tx["region"] == "West") & (tx["order_date"] > "2025-10-31"))]
    app = OverviewApp({"transactions": quiet})
    app.region.value = "West"
    assert (app.result["kpis"]["window_end"] == AS_OF).all()


def test_empty_combination_is_an_error_in_the_page(tables):
    tx = tables["transactions"]
    odd = tx[~((tx["region"] == "East") & (tx["channel"] == "partner"))]
    app = OverviewApp({"transactions": odd})
    app.region.value = "East"
    app.channel.value = "partner"
    assert "No order lines for region 'East' and channel 'partner'" in app.result["error"]
    assert app.errors.level == "error" and "No order lines" in app.errors.value
    assert app.result["kpis"].empty and app.kpi_cards.value == ""
    assert app.chart.layout.display == "none"  # no empty chart pretending to be data
    app.channel.value = "online"  # recovers
    assert app.result["error"] == "" and app.errors.value == ""
    assert app.chart.layout.display is None
    assert_kpis(app, odd[(odd["region"] == "East") & (odd["channel"] == "online")])


def test_missing_columns_and_tables_are_shown_as_text(tables):
    app = OverviewApp({"reps": tables["reps"]})
    assert "There is no transactions table; tables given: ['reps']" in app.result["error"]
    assert app.region.options == (ALL,)
    bad = tables["transactions"].rename(columns={"revenue": "sales_value"})
    app = OverviewApp({"transactions": bad})
    assert "missing required column(s) 'revenue'" in app.result["error"]
    assert "Traceback" not in app.errors.value


def test_without_region_or_channel_columns(tables):
    tx = tables["transactions"].drop(columns=["region", "channel"])
    app = OverviewApp({"transactions": tx})
    assert app.region.options == (ALL,) and app.channel.options == (ALL,)
    assert app.region.layout.display == "none" and app.channel.layout.display == "none"
    assert app.result["error"] == ""
    assert "all lines" in app.chart.figure.layout.title.text
    assert_kpis(app, tx)


def test_the_page_lists_what_was_found_and_what_each_missing_table_would_unlock(tables):
    app = OverviewApp({"transactions": tables["transactions"], "reps": tables["reps"]})
    found = app.result["found"].set_index("table")
    assert found.loc["transactions", "found"] and found.loc["reps", "found"]
    assert found.loc["transactions", "rows"] == len(tables["transactions"])
    assert not found.loc["opportunities", "found"]
    assert 'data-missing="opportunities"' in app.found.value
    assert "add one to see the pipeline" in app.found.value
    assert 'data-found="reps"' in app.found.value


def test_input_frames_are_not_changed(tables):
    before = {k: v.copy() for k, v in tables.items()}
    app = OverviewApp(tables)
    app.region.value = "West"
    for name, frame in before.items():
        pdt.assert_frame_equal(tables[name], frame)


def test_unloadable_file_gives_a_page_with_the_reason(tmp_path):
    app = OverviewApp.from_source(tmp_path / "nope.csv")
    assert app.result["error"], "a missing file must be reported"
    assert "nope.csv" in app.result["error"]
    assert isinstance(app.container.children, tuple)


def test_from_source_reads_a_transactions_file(tables, tmp_path):
    path = tmp_path / "sales.csv"
    tables["transactions"].to_csv(path, index=False)
    app = OverviewApp.from_source(path)
    assert app.result["error"] == ""
    assert list(app.result["summary"]["table"]) == ["transactions"]
    assert_kpis(app, tables["transactions"])


def _notebook(path, heading=None):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": [f"# {heading}\n", "text"]}] if heading else []
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_links_to_the_other_apps(tables, tmp_path):
    _notebook(tmp_path / "00_overview.ipynb", "Overview")
    _notebook(tmp_path / "01_market_analysis.ipynb", "Market & competition")
    _notebook(tmp_path / "02_forecast.ipynb")
    (tmp_path / "notes.txt").write_text("not a notebook")
    apps = find_apps(tmp_path)
    assert list(apps["notebook"]) == ["01_market_analysis.ipynb", "02_forecast.ipynb"]
    assert list(apps["title"]) == ["Market & competition", "Forecast"]
    app = OverviewApp(tables, apps_dir=tmp_path)
    assert '<a href="01_market_analysis.ipynb" target="_self">Market &amp; competition</a>' in app.links.value
    assert 'href="02_forecast.ipynb"' in app.links.value
    pdt.assert_frame_equal(app.result["apps"], apps)


def test_format_value():
    assert format_value(42086, "count") == "42,086"
    assert format_value(1234.5, "money") == "1,234"  # banker's rounding is fine for display
    assert format_value(0.1146, "growth") == "+11.5%"
    assert format_value(0.0174, "ratio") == "1.7%"
    assert format_value(np.nan, "ratio") == "n/a"
    assert format_value(None, "money") == "n/a"


def test_demo_data_page_as_the_notebook_builds_it():
    from salesplan.datasets import load_demo

    tables = load_demo()
    app = OverviewApp.from_source(None)
    assert app.result["error"] == ""
    rows = app.result["summary"].set_index("table")["rows"].to_dict()
    assert rows == {name: len(frame) for name, frame in tables.items()}
    tx = tables["transactions"]
    as_of = tx["order_date"].max()
    window = tx[(tx["order_date"] > as_of - pd.DateOffset(years=1)) & (tx["order_date"] <= as_of)]
    assert kpi_values(app)["revenue_12m"] == pytest.approx(window["revenue"].sum())
