"""Dates derived from the data, never hard-coded."""

from __future__ import annotations

import pandas as pd
import pytest

from salesplan.errors import SalesplanDataError
from salesplan.periods import holdout_months, last_date, months_of_history, plan_period


def _tx(*dates):
    return pd.DataFrame({"order_date": pd.to_datetime(list(dates)), "revenue": 1.0})


def test_history_to_december_plans_the_next_calendar_year():
    period = plan_period(_tx("2016-01-03", "2019-12-30"))
    assert (period.start, period.end, period.label, period.year) == (
        pd.Timestamp("2020-01-01"), pd.Timestamp("2020-12-31"), "2020", 2020)
    assert len(period.months) == 12


def test_history_ending_mid_year_plans_the_next_twelve_months():
    period = plan_period(_tx("2018-05-01", "2019-06-15"))
    assert period.start == pd.Timestamp("2019-07-01")
    assert period.end == pd.Timestamp("2020-06-30")
    assert period.year is None
    assert period.months[0] == period.start and len(period.months) == 12


def test_months_and_holdout():
    tx = _tx("2024-11-20", "2025-12-31")
    assert months_of_history(tx) == 14
    assert holdout_months(tx) == 3
    assert holdout_months(_tx("2023-01-01", "2025-12-31")) == 6
    assert holdout_months(_tx("2025-01-01", "2025-02-01")) == 1
    assert last_date(tx) == pd.Timestamp("2025-12-31")


def test_no_dates_is_a_clear_error():
    with pytest.raises(SalesplanDataError, match="no 'order_date' column"):
        plan_period(pd.DataFrame({"x": [1]}))
    with pytest.raises(SalesplanDataError, match="holds no dates"):
        plan_period(pd.DataFrame({"order_date": [pd.NaT]}))
