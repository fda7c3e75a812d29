"""Dates that come from the data: the analysis date, the plan period, holdout windows.

No notebook hard-codes a year. These functions derive the defaults from the
order dates a company brings: plan the calendar year after the last complete
year when the history reaches December, otherwise the twelve months after the
last month with orders.

>>> import pandas as pd
>>> plan_period(pd.Timestamp("2025-12-30"))
PlanPeriod(start=Timestamp('2026-01-01 00:00:00'), end=Timestamp('2026-12-31 00:00:00'), label='2026')
>>> plan_period(pd.Timestamp("2019-06-15")).label
'2019-07 to 2020-06'
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from salesplan.errors import SalesplanDataError

__all__ = ["PlanPeriod", "last_date", "plan_period", "months_of_history", "complete_years", "holdout_months"]


@dataclass(frozen=True)
class PlanPeriod:
    """A plan period: first and last day (inclusive) and a label a person reads."""

    start: pd.Timestamp
    end: pd.Timestamp
    label: str

    @property
    def months(self) -> pd.DatetimeIndex:
        """The month starts of the period."""
        return pd.date_range(self.start, self.end, freq="MS")

    @property
    def year(self) -> int | None:
        """The calendar year when the period is one, else ``None``."""
        if self.start.month == 1 and self.start.day == 1 and self.end == pd.Timestamp(self.start.year, 12, 31):
            return self.start.year
        return None


def _dates(data: pd.DataFrame | pd.Series | pd.Timestamp, column: str) -> pd.Series:
    if isinstance(data, pd.DataFrame):
        if column not in data.columns:
            raise SalesplanDataError(f"Cannot derive dates: the frame has no {column!r} column "
                                     f"(columns: {', '.join(map(str, data.columns))}).")
        data = data[column]
    values = pd.to_datetime(pd.Series(data) if not isinstance(data, pd.Series) else data).dropna()
    if values.empty:
        raise SalesplanDataError(f"Cannot derive dates: {column!r} holds no dates.")
    return values


def last_date(data: pd.DataFrame | pd.Series | pd.Timestamp, *, column: str = "order_date") -> pd.Timestamp:
    """The last date in the data (the default analysis date, ``as_of``)."""
    return _dates(data, column).max().normalize()


def plan_period(data: pd.DataFrame | pd.Series | pd.Timestamp, *, column: str = "order_date") -> PlanPeriod:
    """The period to plan after the history in ``data``.

    The calendar year after the last date when the history reaches December;
    otherwise the twelve months after the month of the last date.

    Parameters
    ----------
    data : DataFrame, Series or Timestamp
        Transactions (their ``column``), dates, or the last date itself.
    """
    end = last_date(data, column=column)
    if end.month == 12:
        year = end.year + 1
        return PlanPeriod(pd.Timestamp(year, 1, 1), pd.Timestamp(year, 12, 31), str(year))
    start = (end + pd.offsets.MonthBegin(1)).normalize()
    stop = start + pd.DateOffset(months=12) - pd.Timedelta(days=1)
    return PlanPeriod(start, stop, f"{start:%Y-%m} to {stop:%Y-%m}")


def months_of_history(data: pd.DataFrame | pd.Series, *, column: str = "order_date") -> int:
    """Calendar months from the first to the last date, both counted."""
    dates = _dates(data, column)
    first, last = dates.min(), dates.max()
    return (last.year - first.year) * 12 + last.month - first.month + 1


def complete_years(data: pd.DataFrame | pd.Series, *, column: str = "order_date") -> list[int]:
    """Calendar years the data covers from January to December (months with orders at both ends).

    >>> complete_years(pd.Series(pd.to_datetime(["2016-03-01", "2019-12-05"])))
    [2017, 2018, 2019]
    """
    dates = _dates(data, column)
    first, last = dates.min(), dates.max()
    start = first.year if first.month == 1 else first.year + 1
    stop = last.year if last.month == 12 else last.year - 1
    return list(range(start, stop + 1))


def holdout_months(data: pd.DataFrame | pd.Series, *, column: str = "order_date", longest: int = 6) -> int:
    """Months to hold out for checking a model: a quarter of the history, 1 to ``longest``."""
    return int(min(longest, max(1, months_of_history(data, column=column) // 4)))
