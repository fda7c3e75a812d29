"""Sections that need what the data lacks say so in one sentence."""

from __future__ import annotations

import pandas as pd

from salesplan.ui.page import dimensions, missing, needs


def _tx(months=3, **extra):
    dates = pd.date_range("2024-01-01", periods=months, freq="MS")
    return pd.DataFrame({"order_date": dates, "customer_id": "c", "revenue": 1.0, **extra})


def test_dimensions_are_the_columns_present_with_values():
    tx = _tx(category="a", channel=None, region="East")
    assert dimensions(tx) == ["region", "category"]
    assert dimensions(_tx()) == []


def test_missing_says_what_to_add():
    assert missing(_tx(), columns=["channel", "rep_id"]) == "Add `channel` and `rep_id` columns"
    assert missing(_tx(region="x"), columns=["region"]) == ""
    assert missing({"transactions": _tx(), "reps": None}, tables=["reps", "targets"]) == (
        "Add `reps` and `targets` tables")
    assert missing(_tx(14), months=24) == "This needs at least 24 months of history (the data has 14)"
    assert missing(_tx(24), months=24) == ""
    assert missing(_tx(24), years=2) == ""
    assert missing(_tx(23), years=2) == "This needs 2 complete calendar years, January to December (the data has 1)"


def test_needs_shows_one_sentence_and_returns_false(capsys):
    assert needs(_tx(region="x"), columns=["region"])
    assert not needs(_tx(), columns=["channel"], to="see revenue by channel")
    out = capsys.readouterr().out
    assert "Add a `channel` column to see revenue by channel." in out


def test_salesplan_warnings_read_as_plain_notes(capsys):
    import warnings

    from salesplan.errors import SalesplanDataWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = __import__("salesplan.ui.page", fromlist=["_show_plainly"])._show_plainly
        warnings.warn("3 lines have no customer", SalesplanDataWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err == "Note: 3 lines have no customer\n"
