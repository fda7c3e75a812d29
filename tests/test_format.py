"""The one formatter: what a person reads in every page, app and report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesplan import format as fmt


def test_money_percent_count():
    assert fmt.money(683091.8) == "683,092"
    assert fmt.money(-1234.5, decimals=2) == "-1,234.50"
    assert fmt.percent(0.262333) == "26.2%"
    assert fmt.percent(-0.0521, signed=True) == "-5.2%"
    assert fmt.count(1234567.0) == "1,234,567"
    assert fmt.money(None) == fmt.percent(np.nan) == fmt.count(pd.NA) == "n/a"


@pytest.mark.parametrize(
    "name, kind",
    [("revenue", "money"), ("value_current", "money"), ("quota", "money"), ("clv", "money"),
     ("revenue_share", "percent"), ("growth_yoy", "percent"), ("probability", "percent"),
     ("customers", "count"), ("orders", "count"), ("order_date", "date"), ("ds", "date"),
     ("recency_median", "number"), ("rank", "number")],
)
def test_kind_from_name(name, kind):
    assert fmt.column_kind(name) == kind


def test_format_frame_drops_the_index_and_has_no_scientific_notation():
    df = pd.DataFrame({"region": ["East", "West"], "revenue": [683091.8, 1.2e9], "share": [0.262333, 0.7]},
                      index=[5, 9])
    out = fmt.format_frame(df)
    assert list(out.index) == [0, 1]
    assert out["revenue"].tolist() == ["683,092", "1,200,000,000"]
    assert out["share"].tolist() == ["26.2%", "70.0%"]
    html = fmt.table_html(df)
    assert "e+" not in html and "683,092" in html and ">5<" not in html


def test_named_index_becomes_a_column_and_overrides_win():
    df = pd.DataFrame({"x": [0.5]}, index=pd.Index(["East"], name="region"))
    out = fmt.format_frame(df, percent=["x"], labels={"x": "Share"})
    assert out.columns.tolist() == ["region", "Share"]
    assert out.iloc[0].tolist() == ["East", "50.0%"]


def test_caller_frame_is_not_changed():
    df = pd.DataFrame({"revenue": [1.5]})
    before = df.copy()
    fmt.format_frame(df)
    pd.testing.assert_frame_equal(df, before)


@given(st.floats(min_value=-1e15, max_value=1e15, allow_nan=False))
def test_money_never_uses_scientific_notation(x):
    text = fmt.money(x)
    assert "e" not in text
    assert float(text.replace(",", "")) == pytest.approx(round(x), abs=1)
