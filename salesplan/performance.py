"""Performance management: KPI scorecards, attainment bands, appraisal and coaching needs.

Everything here works on the tables of the data model (a dict as
:func:`salesplan.io.load_data` returns it) and degrades gracefully: a KPI whose
table is missing (no ``targets``, no ``feedback``, no ``opportunities``) is left
out of the scorecard with a note saying which table would unlock it, and the
rest is computed.

Units and levels
----------------
A *level* is ``rep``, ``team``, ``region`` or ``company``. Order lines are
credited to the rep in ``transactions.rep_id``; teams and regions come from the
``reps`` table (a region falls back to ``transactions.region`` when there is no
``reps`` table). Opportunities belong to their ``rep_id``. Feedback is credited
to the unit that sold the customer the most in the period scored (over the
whole history for a customer who bought nothing in it).

Periods
-------
A period is a calendar year (``"2025"``), quarter (``"2025Q3"`` or
``"2025-Q3"``), month (``"2025-06"``), a :class:`pandas.Period`, or a
``(first_day, last_day)`` pair. Each KPI is shown next to its value in the
*previous* period of the same length, right before it.

>>> import pandas as pd
>>> tables = {"transactions": pd.DataFrame({
...     "order_date": pd.to_datetime(["2024-02-01", "2025-02-01", "2025-03-01"]),
...     "customer_id": ["a", "a", "b"], "rep_id": ["R1", "R1", "R2"],
...     "revenue": [100.0, 150.0, 80.0]})}
>>> card = scorecard(tables, period="2025", level="rep")
>>> print(card.loc[card["kpi"] == "revenue", ["unit", "value", "previous", "rank"]].to_string(index=False))
unit  value  previous  rank
  R1  150.0     100.0   1.0
  R2   80.0       NaN   2.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from salesplan._validation import check_choice, check_columns, check_frame, closest_matches
from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.schema import OPEN_STAGES

__all__ = [
    "LEVELS",
    "KPIS",
    "DEFAULT_SCHEME",
    "ATTAINMENT_BANDS",
    "Window",
    "period_window",
    "default_period",
    "available_levels",
    "kpi_availability",
    "scorecard",
    "scorecard_wide",
    "scorecard_display",
    "attainment_distribution",
    "check_scheme",
    "scheme_for",
    "appraise",
    "appraisal_totals",
    "stage_outcomes",
    "stage_gaps",
    "coaching_needs",
    "short_money",
]

#: Levels a scorecard can be built at.
LEVELS: tuple[str, ...] = ("rep", "team", "region", "company")


@dataclass(frozen=True)
class _Kpi:
    label: str
    higher_is_better: bool
    table: str  # the table that unlocks it (besides transactions)
    kind: str  # money, percent, count, number


#: The scorecard's KPIs: name -> label, direction, the table it needs, kind of number.
KPIS: dict[str, _Kpi] = {
    "revenue": _Kpi("Revenue", True, "transactions", "money"),
    "attainment": _Kpi("Attainment of revenue target", True, "targets", "percent"),
    "growth": _Kpi("Revenue growth vs a year before", True, "transactions", "percent"),
    "deals_won": _Kpi("Deals won", True, "opportunities", "count"),
    "win_rate": _Kpi("Win rate of closed deals", True, "opportunities", "percent"),
    "average_deal_size": _Kpi("Average won deal", True, "opportunities", "money"),
    "cycle_days": _Kpi("Median days from creation to win", False, "opportunities", "number"),
    "new_customers": _Kpi("New customers", True, "transactions", "count"),
    "retention": _Kpi("Customer retention", True, "transactions", "percent"),
    "satisfaction": _Kpi("Average satisfaction", True, "feedback", "number"),
    "resolution_days": _Kpi("Median days to resolve a ticket", False, "feedback", "number"),
}

#: An example appraisal scheme: KPI -> weight, threshold (full marks) and cap.
#: Weights sum to 1. A company sets its own thresholds; these suit the demo data.
DEFAULT_SCHEME: dict[str, dict[str, float]] = {
    "attainment": {"weight": 0.4, "threshold": 1.0, "cap": 1.2},
    "win_rate": {"weight": 0.2, "threshold": 0.25, "cap": 1.5},
    "retention": {"weight": 0.2, "threshold": 0.5, "cap": 1.2},
    "satisfaction": {"weight": 0.2, "threshold": 4.0, "cap": 1.1},
}

#: Attainment bands: label, lower bound (inclusive), upper bound (exclusive;
#: 100% itself belongs to "80-100%", "above 100%" means strictly more).
ATTAINMENT_BANDS: tuple[tuple[str, float, float], ...] = (
    ("0-50%", -math.inf, 0.5),
    ("50-80%", 0.5, 0.8),
    ("80-100%", 0.8, 1.0),
    ("above 100%", 1.0, math.inf),
)

_TIDY = ["unit", "level", "kpi", "value", "previous", "change", "rank"]


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Window:
    """A period: first day, the day after the last, a label, and how to step back one period."""

    start: pd.Timestamp
    end: pd.Timestamp  # exclusive
    label: str
    months: int = 0  # length in whole months (0: measured in days)

    def shift(self, periods: int = -1) -> Window:
        """The window ``periods`` lengths later (negative: earlier)."""
        if self.months:
            step = pd.DateOffset(months=self.months * periods)
        else:
            step = (self.end - self.start) * periods
        start, end = self.start + step, self.end + step
        return Window(start, end, _label(start, end, self.months), self.months)

    def year_before(self) -> Window:
        """The same window a year earlier."""
        step = pd.DateOffset(years=1)
        start, end = self.start - step, self.end - step
        return Window(start, end, _label(start, end, self.months), self.months)

    @property
    def years(self) -> float:
        """Length in years (months / 12, or days / 365.25)."""
        return self.months / 12 if self.months else (self.end - self.start).days / 365.25


def _label(start: pd.Timestamp, end: pd.Timestamp, months: int) -> str:
    last = end - pd.Timedelta(days=1)
    if months == 12 and start.month == 1 and start.day == 1:
        return str(start.year)
    if months == 3 and start.month in (1, 4, 7, 10) and start.day == 1:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if months == 1 and start.day == 1:
        return f"{start:%Y-%m}"
    return f"{start:%Y-%m-%d} to {last:%Y-%m-%d}"


def period_window(period: object) -> Window:
    """The :class:`Window` of a period given as text, ``pandas.Period`` or a date pair.

    >>> period_window("2025-Q3").label, period_window("2025-Q3").shift().label
    ('2025-Q3', '2025-Q2')
    >>> w = period_window(("2025-01-15", "2025-02-14"))
    >>> w.label, w.shift().label
    ('2025-01-15 to 2025-02-14', '2024-12-15 to 2025-01-14')
    """
    if isinstance(period, Window):
        return period
    if isinstance(period, (tuple, list)) and len(period) == 2:
        try:
            start, last = (pd.Timestamp(p).normalize() for p in period)
        except (TypeError, ValueError) as exc:
            raise SalesplanError(f"period {period!r}: both ends must be dates ({exc}).") from None
        if last < start:
            raise SalesplanError(f"period {period!r} ends before it starts; give (first_day, last_day).")
        end = last + pd.Timedelta(days=1)
        months = 0
        if start.day == 1 and end.day == 1:
            months = (end.year - start.year) * 12 + end.month - start.month
        return Window(start, end, _label(start, end, months), months)
    if isinstance(period, (int, np.integer)) and not isinstance(period, bool):
        period = str(period)
    if isinstance(period, str):
        text = period.strip().replace("-Q", "Q").replace("-q", "Q").replace("q", "Q")
        try:
            period = pd.Period(text)
        except (ValueError, TypeError):
            raise SalesplanError(
                f"period {period!r} is not a period. Use a year ('2025'), a quarter ('2025-Q3'), "
                "a month ('2025-06') or a pair of dates ('2025-01-01', '2025-06-30')."
            ) from None
    if isinstance(period, pd.Period):
        start = period.start_time.normalize()
        end = (period.end_time + pd.Timedelta(microseconds=1)).normalize()
        months = (end.year - start.year) * 12 + end.month - start.month if start.day == 1 and end.day == 1 else 0
        return Window(start, end, _label(start, end, months), months)
    raise SalesplanError(
        f"period must be a year, quarter, month, pandas.Period or (first_day, last_day) pair, got {period!r}."
    )


def default_period(tables: Mapping[str, pd.DataFrame]) -> Window:
    """The last calendar year with data when it is complete, else the last 12 whole months."""
    tx = _table(tables, "transactions")
    if tx is None or tx.empty:
        raise SalesplanDataError("Cannot choose a period: there is no transactions table with rows.")
    last = pd.to_datetime(tx["order_date"]).max().normalize()
    if last.month == 12 and last.day == 31:
        return period_window(str(last.year))
    end = last.replace(day=1)  # the last (incomplete) month is left out
    start = end - pd.DateOffset(months=12)
    return Window(start, end, _label(start, end, 12), 12)


# --------------------------------------------------------------------------- units


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame | None:
    frame = tables.get(name) if isinstance(tables, Mapping) else None
    return frame if isinstance(frame, pd.DataFrame) else None


def _check_tables(tables: object) -> Mapping[str, pd.DataFrame]:
    if not isinstance(tables, Mapping):
        raise SalesplanError(
            f"tables must be a dict of DataFrames (as salesplan.io.load_data returns), got {type(tables).__name__}."
        )
    tx = _table(tables, "transactions")
    if tx is None:
        raise SalesplanDataError(
            f"There is no transactions table; tables given: {sorted(tables) or 'none'}. "
            "Load the data with salesplan.io.load_data(folder)."
        )
    check_columns(tx, ["order_date", "customer_id", "revenue"], name="transactions")
    return tables


def available_levels(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """The levels the data supports, finest first (``company`` always).

    ``rep`` needs ``rep_id`` on the order lines (or an opportunities table),
    ``team`` a ``reps`` table with a ``team`` column, ``region`` a ``region``
    on the reps or on the order lines.
    """
    tx = _table(tables, "transactions")
    reps = _table(tables, "reps")
    opps = _table(tables, "opportunities")
    has_rep = (tx is not None and "rep_id" in tx.columns) or (opps is not None and "rep_id" in opps.columns)
    out = []
    if has_rep:
        out.append("rep")
        if reps is not None and "team" in reps.columns:
            out.append("team")
    if (reps is not None and "region" in reps.columns and has_rep) or (tx is not None and "region" in tx.columns):
        out.append("region")
    out.append("company")
    return out


def _rep_lookup(tables: Mapping[str, pd.DataFrame], level: str) -> pd.Series | None:
    """rep_id -> unit of ``level`` (None when the reps table cannot say)."""
    reps = _table(tables, "reps")
    if level == "rep":
        return None
    if reps is None or level not in reps.columns or "rep_id" not in reps.columns:
        return None
    return reps.dropna(subset=["rep_id"]).drop_duplicates("rep_id").set_index("rep_id")[level].astype("string")


def _units_of(frame: pd.DataFrame, tables: Mapping[str, pd.DataFrame], level: str) -> pd.Series | None:
    """The unit of each row of an order-line or opportunity frame, or None when unknown."""
    if level == "company":
        return pd.Series("all", index=frame.index, dtype="string")
    if level == "rep":
        return frame["rep_id"].astype("string") if "rep_id" in frame.columns else None
    lookup = _rep_lookup(tables, level)
    if lookup is not None and "rep_id" in frame.columns:
        return frame["rep_id"].astype("string").map(lookup).astype("string")
    if level in frame.columns:
        return frame[level].astype("string")
    return None


def _customer_units(tx: pd.DataFrame, units: pd.Series) -> pd.Series:
    """customer_id -> the unit that sold the customer the most (ties: first by name)."""
    c_code, c_names = pd.factorize(tx["customer_id"])
    u_code, u_names = pd.factorize(units)
    ok = (c_code >= 0) & (u_code >= 0)
    n_units = max(len(u_names), 1)
    key = c_code[ok].astype(np.int64) * n_units + u_code[ok]
    inverse, pairs = pd.factorize(key)
    sums = np.bincount(inverse, weights=tx["revenue"].to_numpy(dtype=float)[ok], minlength=len(pairs))
    cust, unit = pairs // n_units, pairs % n_units
    u_names = np.asarray(u_names, dtype=str)
    name_rank = np.argsort(np.argsort(u_names, kind="stable"), kind="stable")
    order = np.lexsort((name_rank[unit], -sums, cust))
    first = np.r_[True, cust[order][1:] != cust[order][:-1]] if len(order) else np.zeros(0, dtype=bool)
    pick = order[first]
    return pd.Series(u_names[unit[pick]], index=np.asarray(c_names, dtype=str)[cust[pick]], dtype=object)


# --------------------------------------------------------------------------- KPIs


def kpi_availability(tables: Mapping[str, pd.DataFrame], *, level: str = "rep") -> pd.DataFrame:
    """Which KPIs the data supports at ``level``, and for those it does not, why.

    Returns
    -------
    DataFrame
        ``kpi``, ``label``, ``available`` (bool) and ``note`` (what to add to
        see a missing KPI, "" when available), in the order of :data:`KPIS`.
    """
    check_choice(level, LEVELS, name="level")
    tx = _table(tables, "transactions")
    opps = _table(tables, "opportunities")
    targets = _table(tables, "targets")
    feedback = _table(tables, "feedback")
    tx_units = tx is not None and _units_of(tx.head(0), tables, level) is not None
    opp_units = opps is not None and _units_of(opps.head(0), tables, level) is not None
    how = {
        "rep": "a rep_id column on the order lines",
        "team": "a reps table with rep_id and team, and rep_id on the order lines",
        "region": "a region column on the order lines (or a reps table with region and rep_id on the lines)",
        "company": "",
    }[level]
    rows = []
    for name, kpi in KPIS.items():
        note = ""
        if kpi.table in ("transactions", "targets", "feedback") and not tx_units:
            note = f"Add {how} to see {kpi.label.lower()} by {level}."
        if not note and kpi.table == "targets":
            if targets is None:
                note = "Add a targets table (metric revenue) to see attainment."
            elif not (targets["metric"].astype("string") == "revenue").any():
                note = "The targets table has no revenue targets (metric 'revenue'); attainment needs them."
        if not note and kpi.table == "opportunities":
            if opps is None:
                note = f"Add an opportunities table to see {kpi.label.lower()}."
            elif not opp_units:
                note = f"Add a reps table with {level} to see {kpi.label.lower()} by {level}."
        if not note and kpi.table == "feedback":
            column = "satisfaction" if name == "satisfaction" else "resolved_at"
            if feedback is None:
                note = f"Add a feedback table to see {kpi.label.lower()}."
            elif column not in feedback.columns:
                note = f"The feedback table has no {column} column; add it to see {kpi.label.lower()}."
        rows.append({"kpi": name, "label": kpi.label, "available": not note, "note": note})
    return pd.DataFrame(rows, columns=["kpi", "label", "available", "note"])


def _in(dates: pd.Series, window: Window) -> np.ndarray:
    values = dates.to_numpy(dtype="datetime64[ns]")
    return (values >= window.start.to_datetime64()) & (values < window.end.to_datetime64())


class _Facts:
    """The tables of one scorecard call, with each row's unit worked out once."""

    def __init__(self, tables: Mapping[str, pd.DataFrame], level: str) -> None:
        self.level = level
        tx = _table(tables, "transactions")
        self.tx_units = _units_of(tx, tables, level)
        self.tx = None
        if self.tx_units is not None:
            self.tx = pd.DataFrame({
                "date": pd.to_datetime(tx["order_date"]),
                "customer_id": tx["customer_id"].astype("string"),
                "revenue": tx["revenue"].astype(float),
                "unit": self.tx_units,
            }).dropna(subset=["unit", "date", "customer_id"])
            # Categories make the many group-bys and look-ups below several times faster.
            self.tx = self.tx.astype({"unit": "category", "customer_id": "category"})
            unit_code, self.unit_names = pd.factorize(self.tx["unit"])
            cust_code, customers_ = pd.factorize(self.tx["customer_id"])
            self.unit_names = np.asarray(self.unit_names, dtype=object)
            self.n_customers = max(len(customers_), 1)
            self.pair = unit_code.astype(np.int64) * self.n_customers + cust_code
            customers = _table(tables, "customers")
            first = self.tx.groupby("customer_id", observed=True)["date"].min()
            if customers is not None and "first_order_date" in customers.columns:
                known = customers.dropna(subset=["first_order_date"]).drop_duplicates("customer_id")
                known = known.set_index(known["customer_id"].astype("string"))["first_order_date"]
                first = known.reindex(first.index).fillna(first)
            self.first_order = first
        opps = _table(tables, "opportunities")
        self.opps = None
        if opps is not None:
            units = _units_of(opps, tables, level)
            if units is not None:
                self.opps = pd.DataFrame({
                    "status": opps["status"].astype("string"),
                    "amount": opps["amount"].astype(float),
                    "created": pd.to_datetime(opps["created_date"]),
                    "closed": pd.to_datetime(opps["close_date"]) if "close_date" in opps.columns else pd.NaT,
                    "unit": units,
                }).dropna(subset=["unit"])
        feedback = _table(tables, "feedback")
        self.feedback = None
        if feedback is not None and self.tx is not None:
            self.owner = _customer_units(tx, self.tx_units)
            fb = pd.DataFrame({"date": pd.to_datetime(feedback["date"]),
                               "customer_id": feedback["customer_id"].astype(str)})
            if "satisfaction" in feedback.columns:
                fb["satisfaction"] = feedback["satisfaction"].astype(float)
            if "resolved_at" in feedback.columns:
                fb["resolution_days"] = (pd.to_datetime(feedback["resolved_at"]) - fb["date"]).dt.days.astype(float)
            self.feedback = fb.dropna(subset=["customer_id"])
        targets = _table(tables, "targets")
        self.targets = None
        if targets is not None and self.tx is not None:
            self.targets = _unit_targets(targets, tables, level)

    def revenue(self, window: Window) -> pd.Series:
        tx = self.tx[_in(self.tx["date"], window)]
        return tx.groupby("unit", observed=True)["revenue"].sum()

    def kpis(self, window: Window, available: set[str]) -> pd.DataFrame:
        out: dict[str, pd.Series] = {}
        if self.tx is not None:
            revenue = self.revenue(window)
            out["revenue"] = revenue
            before = self.revenue(window.year_before())
            out["growth"] = (revenue / before.where(before > 0) - 1).reindex(revenue.index)
            tx = self.tx[_in(self.tx["date"], window)]
            first = tx.loc[tx["customer_id"].map(self.first_order).pipe(_in, window)]
            out["new_customers"] = first.sort_values("date", kind="stable").drop_duplicates("customer_id") \
                .groupby("unit", observed=True)["customer_id"].size().reindex(revenue.index, fill_value=0)
            # (unit, customer) pairs as one integer key: a customer kept is a prior pair seen again.
            pair = self.pair
            # pandas' hash tables: several times faster than np.unique / np.isin on a million keys.
            was = pd.unique(pair[_in(self.tx["date"], window.shift(-1))])
            kept = pd.Series(was).isin(pair[_in(self.tx["date"], window)]).to_numpy()
            units = self.unit_names[was // self.n_customers]
            out["retention"] = pd.Series(kept, dtype=float).groupby(units).mean()
        if "attainment" in available and self.targets is not None:
            months = self.targets[_in(self.targets["period"], window)]
            target = months.groupby("unit")["value"].sum()
            target = target[target > 0]
            out["attainment"] = out["revenue"].reindex(target.index).fillna(0.0) / target
        if self.opps is not None:
            closed = self.opps[self.opps["status"].isin(["won", "lost"]) & _in(self.opps["closed"], window)]
            won = closed[closed["status"] == "won"]
            out["deals_won"] = won.groupby("unit").size().reindex(closed["unit"].unique(), fill_value=0)
            out["win_rate"] = (closed["status"] == "won").groupby(closed["unit"]).mean()
            out["average_deal_size"] = won.groupby("unit")["amount"].mean()
            out["cycle_days"] = (won["closed"] - won["created"]).dt.days.astype(float).groupby(won["unit"]).median()
        if self.feedback is not None:
            fb = self.feedback[_in(self.feedback["date"], window)]
            # Feedback goes to whoever sold the customer the most in the period (over the whole
            # history for customers who bought nothing then), so a rep hired later is not
            # credited with an earlier owner's tickets.
            lines = self.tx[_in(self.tx["date"], window)]
            owner = _customer_units(lines, lines["unit"])
            owner = pd.concat([owner, self.owner[~self.owner.index.isin(owner.index)]])
            fb = fb.assign(unit=fb["customer_id"].map(owner)).dropna(subset=["unit"])
            if "satisfaction" in fb.columns and "satisfaction" in available:
                out["satisfaction"] = fb.groupby("unit")["satisfaction"].mean()
            if "resolution_days" in fb.columns and "resolution_days" in available:
                out["resolution_days"] = fb.groupby("unit")["resolution_days"].median()
        frame = pd.DataFrame({k: pd.Series(v.to_numpy(dtype=float), index=v.index.astype(str))
                              for k, v in out.items() if k in available})
        return frame


def _unit_targets(targets: pd.DataFrame, tables: Mapping[str, pd.DataFrame], level: str) -> pd.DataFrame:
    """Monthly revenue targets per unit: the level's own, else the sum of its reps' targets."""
    t = targets[targets["metric"].astype("string") == "revenue"]
    frame = pd.DataFrame({"period": pd.to_datetime(t["period"]), "level": t["level"].astype("string"),
                          "key": t["key"].astype("string"), "value": t["value"].astype(float)})
    own = frame[frame["level"] == level].rename(columns={"key": "unit"})
    if level == "company":
        own = own.assign(unit="all")
    if level != "rep":
        reps = frame[frame["level"] == "rep"]
        units = pd.Series("all", index=reps.index, dtype="string") if level == "company" else \
            reps["key"].map(_rep_lookup(tables, level)) if _rep_lookup(tables, level) is not None else None
        if units is not None:
            summed = reps.assign(unit=units).dropna(subset=["unit"])
            summed = summed.groupby(["unit", "period"], as_index=False)["value"].sum()
            missing = ~summed["unit"].isin(own["unit"])
            own = pd.concat([own[["unit", "period", "value"]], summed[missing]], ignore_index=True)
    return own[["unit", "period", "value"]]


def _rank(values: pd.Series, higher_is_better: bool) -> pd.Series:
    return values.rank(ascending=not higher_is_better, method="min")


def scorecard(
    tables: Mapping[str, pd.DataFrame],
    *,
    period: object = None,
    level: str = "rep",
    units: list[str] | None = None,
) -> pd.DataFrame:
    """The KPI scorecard of every unit of a level for one period, with trend and rank.

    Parameters
    ----------
    tables : dict of DataFrame
        The data (see :func:`salesplan.io.load_data`); ``transactions`` is
        needed, ``reps``, ``targets``, ``opportunities``, ``feedback`` and
        ``customers`` add KPIs (see :func:`kpi_availability`).
    period : str, pandas.Period or (first_day, last_day), optional
        The period scored; default the last complete calendar year, else the
        last 12 whole months (:func:`default_period`).
    level : {"rep", "team", "region", "company"}
        Who is scored.
    units : list of str, optional
        Keep only these units in the result (ranks are still among all units).

    Returns
    -------
    DataFrame
        One row per unit and KPI: ``unit``, ``level``, ``kpi`` (see
        :data:`KPIS`), ``value`` (this period), ``previous`` (the period of
        the same length right before), ``change`` (``value - previous``; for
        rates a change in points) and ``rank`` (1 = best among the units of
        the level; lower is better for ``cycle_days`` and
        ``resolution_days``). Missing values are NaN (e.g. no deals closed).
        ``attrs["notes"]`` lists the KPIs left out and what would unlock
        them; ``attrs["period"]`` and ``attrs["previous_period"]`` the labels.

    Notes
    -----
    Definitions, for the period's order lines, deals and feedback:

    * revenue: net revenue of the lines (returns included);
    * attainment: revenue / revenue target summed over the period's months
      (the level's own targets; a team's or region's reps' targets summed
      when it has none);
    * growth: revenue / revenue of the same period a year before - 1;
    * deals_won, win_rate (won / closed), average_deal_size (mean amount of
      won deals) and cycle_days (median days from creation to close of won
      deals), for the deals closed in the period;
    * new_customers: customers whose first order (``customers.first_order_date``,
      else the first order line) falls in the period, credited to the unit of
      that order;
    * retention: of the customers the unit sold to in the previous period,
      the share it sold to again in this one;
    * satisfaction (mean score) and resolution_days (median days from a ticket
      to its resolution) of the feedback received in the period, credited to
      the unit that sold the customer the most in the period.
    """
    tables = _check_tables(tables)
    check_choice(level, LEVELS, name="level")
    window = default_period(tables) if period is None else period_window(period)
    availability = kpi_availability(tables, level=level)
    available = set(availability.loc[availability["available"], "kpi"])
    facts = _Facts(tables, level)
    now = facts.kpis(window, available)
    before = facts.kpis(window.shift(-1), available)
    rows = []
    for kpi in KPIS:
        if kpi not in available:
            continue
        value = now[kpi] if kpi in now.columns else pd.Series(dtype=float)
        prev = before[kpi] if kpi in before.columns else pd.Series(dtype=float)
        index = value.index.union(prev.index)
        value, prev = value.reindex(index), prev.reindex(index)
        rows.append(pd.DataFrame({
            "unit": index.astype(str), "level": level, "kpi": kpi,
            "value": value.to_numpy(dtype=float), "previous": prev.to_numpy(dtype=float),
            "change": (value - prev).to_numpy(dtype=float),
            "rank": _rank(value, KPIS[kpi].higher_is_better).to_numpy(dtype=float),
        }))
    card = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=_TIDY)
    card = card.astype({"value": float, "previous": float, "change": float, "rank": float})
    if units is not None:
        card = card[card["unit"].isin([str(u) for u in units])].reset_index(drop=True)
    order = {k: i for i, k in enumerate(KPIS)}
    card = card.sort_values(["unit", "kpi"], key=lambda s: s.map(order) if s.name == "kpi" else s,
                            kind="stable").reset_index(drop=True)
    card.attrs["notes"] = [n for n in availability["note"] if n]
    card.attrs["period"] = window.label
    card.attrs["previous_period"] = window.shift(-1).label
    return card


def scorecard_wide(card: pd.DataFrame, *, column: str = "value") -> pd.DataFrame:
    """One row per unit and one column per KPI (``value``, ``previous``, ``change`` or ``rank``).

    Returns
    -------
    DataFrame
        ``unit`` then the KPIs present, in the order of :data:`KPIS`.
    """
    check_columns(card, _TIDY, name="card")
    check_choice(column, ["value", "previous", "change", "rank"], name="column")
    kpis = [k for k in KPIS if k in set(card["kpi"])]
    wide = card.pivot_table(index="unit", columns="kpi", values=column, aggfunc="first", dropna=False)
    wide = wide.reindex(columns=kpis).reindex(sorted(card["unit"].unique())).reset_index()
    wide.columns.name = None
    return wide


def _fmt_kpi(value: float, kind: str) -> str:
    from salesplan import format as fmt

    if kind == "money":
        return fmt.money(value)
    if kind == "percent":
        return fmt.percent(value)
    if kind == "count":
        return fmt.count(value)
    return fmt.number(value, decimals=1)


def _fmt_change(change: float, kind: str) -> str:
    from salesplan import format as fmt

    if pd.isna(change):
        return ""
    if kind == "percent":
        return f"{change * 100:+.1f} pts"
    if kind == "money":
        return ("+" if change >= 0 else "-") + fmt.money(abs(change))
    if kind == "count":
        return f"{change:+,.0f}"
    return f"{change:+,.1f}"


def scorecard_display(card: pd.DataFrame) -> pd.DataFrame:
    """The scorecard as text a person reads: one row per unit, one column per KPI.

    Each cell reads ``value (change vs previous) #rank``, e.g.
    ``"412,300 (+35,100) #2"`` or ``"27.5% (+3.1 pts) #4"``; headers are the
    KPI labels. Use :func:`scorecard_wide` for numbers.
    """
    check_columns(card, _TIDY, name="card")
    kpis = [k for k in KPIS if k in set(card["kpi"])]
    cells = card.assign(text=[
        _fmt_kpi(r.value, KPIS[r.kpi].kind)
        + (f" ({_fmt_change(r.change, KPIS[r.kpi].kind)})" if not pd.isna(r.change) else "")
        + (f" #{int(r.rank)}" if not pd.isna(r.rank) else "")
        for r in card.itertuples(index=False)
    ])
    wide = cells.pivot(index="unit", columns="kpi", values="text").reindex(columns=kpis)
    wide = wide.reindex(sorted(card["unit"].unique())).fillna("n/a").reset_index()
    wide.columns.name = None
    return wide.rename(columns={"unit": card["level"].iloc[0] if len(card) else "unit",
                                **{k: KPIS[k].label for k in kpis}})


def attainment_distribution(card: pd.DataFrame) -> pd.DataFrame:
    """How many units are at 0-50%, 50-80%, 80-100% and above 100% of target.

    Parameters
    ----------
    card : DataFrame
        A :func:`scorecard` (its ``attainment`` rows are used).

    Returns
    -------
    DataFrame
        ``band`` (the labels of :data:`ATTAINMENT_BANDS`, all four always,
        plus ``"no target"`` when some units have revenue but no target),
        ``units`` (count), ``share`` (of the units counted) and ``members``
        (their names, comma-separated). A unit at exactly 50%, 80% or 100%
        is in the band that starts (50%, 80%) or ends (100%) there.
    """
    check_columns(card, _TIDY, name="card")
    att = card[card["kpi"] == "attainment"].set_index("unit")["value"]
    if "attainment" not in set(card["kpi"]):
        raise SalesplanDataError(
            "The scorecard has no attainment rows: " + "; ".join(card.attrs.get("notes", []) or
                                                                ["add a targets table with revenue targets."])
        )
    no_target = sorted(set(card.loc[card["kpi"] == "revenue", "unit"]) - set(att.dropna().index))
    rows = []
    for label, low, high in ATTAINMENT_BANDS:
        inside = (att >= low) & ((att <= high) if high == 1.0 else (att < high))
        if low == 1.0:
            inside = att > 1.0
        members = sorted(att.index[inside.fillna(False).to_numpy(dtype=bool)])
        rows.append({"band": label, "units": len(members), "members": ", ".join(members)})
    if no_target:
        rows.append({"band": "no target", "units": len(no_target), "members": ", ".join(no_target)})
    out = pd.DataFrame(rows, columns=["band", "units", "members"])
    total = out["units"].sum()
    out.insert(2, "share", out["units"] / total if total else np.nan)
    return out


# --------------------------------------------------------------------------- appraisal


_SCHEME_KEYS = {"weight", "threshold", "cap"}


def check_scheme(scheme: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Validate an appraisal scheme and return it with defaults filled in (``cap`` 1.0).

    A scheme maps a KPI of :data:`KPIS` to ``weight`` (> 0; all weights sum
    to 1), ``threshold`` (> 0: the value that earns full marks) and ``cap``
    (> 0, optional, default 1.0: the most a KPI's ratio may count, 1.2 = up to
    120 %). A scheme may be read from YAML with the same keys.

    >>> check_scheme({"attainment": {"weight": 1.0, "threshold": 1.0}})
    {'attainment': {'weight': 1.0, 'threshold': 1.0, 'cap': 1.0}}
    """
    if not isinstance(scheme, Mapping) or not scheme:
        raise SalesplanError(
            f"scheme must be a non-empty dict of KPI -> {{'weight', 'threshold', 'cap'}}, got {scheme!r}. "
            f"Example: {DEFAULT_SCHEME!r}."
        )
    out: dict[str, dict[str, float]] = {}
    for kpi, spec in scheme.items():
        if kpi not in KPIS:
            near = closest_matches(str(kpi), list(KPIS), n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise SalesplanError(f"scheme: unknown KPI {kpi!r}.{hint} Known KPIs: {', '.join(KPIS)}.")
        if not isinstance(spec, Mapping):
            raise SalesplanError(f"scheme[{kpi!r}] must be a dict with weight, threshold and cap, got {spec!r}.")
        extra = set(spec) - _SCHEME_KEYS
        if extra:
            raise SalesplanError(
                f"scheme[{kpi!r}] has unknown key(s) {sorted(extra)}; allowed: weight, threshold, cap."
            )
        for key in ("weight", "threshold"):
            if key not in spec:
                raise SalesplanError(f"scheme[{kpi!r}] has no {key!r}; give e.g. {{'weight': 0.25, 'threshold': 1.0}}.")
        entry = {"weight": spec["weight"], "threshold": spec["threshold"], "cap": spec.get("cap", 1.0)}
        for key, value in entry.items():
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            if not ok or not math.isfinite(float(value)) or float(value) <= 0:
                raise SalesplanError(f"scheme[{kpi!r}][{key!r}] must be a number > 0, got {value!r}.")
        out[kpi] = {k: float(v) for k, v in entry.items()}
    total = sum(e["weight"] for e in out.values())
    if abs(total - 1.0) > 1e-6:
        weights = ", ".join(f"{k}={e['weight']:g}" for k, e in out.items())
        raise SalesplanError(
            f"scheme weights must sum to 1, they sum to {total:g} ({weights}). "
            f"Divide each by {total:g} or adjust one of them."
        )
    return out


def scheme_for(card: pd.DataFrame, scheme: Mapping[str, Mapping[str, float]] | None = None) -> tuple[dict, str]:
    """The scheme cut down to the KPIs the scorecard has, weights re-scaled to sum to 1.

    For data without some tables (no feedback, no opportunities): the
    appraisal then scores what can be scored, and the note says so.

    Returns
    -------
    (dict, str)
        The scheme (validated) and a note ("" when nothing was dropped).

    >>> card = pd.DataFrame({"unit": ["u"], "level": "rep", "kpi": ["attainment"], "value": [1.0],
    ...                      "previous": [1.0], "change": [0.0], "rank": [1.0]})
    >>> scheme_for(card)[0]["attainment"]["weight"]
    1.0
    """
    check_columns(card, _TIDY, name="card")
    scheme = check_scheme(DEFAULT_SCHEME if scheme is None else scheme)
    have = set(card["kpi"])
    kept = {k: dict(v) for k, v in scheme.items() if k in have}
    if not kept:
        raise SalesplanDataError(
            f"None of the appraisal scheme's KPIs ({', '.join(scheme)}) is in the scorecard; "
            "add the tables they need or choose KPIs the data has: " + ", ".join(sorted(have)) + "."
        )
    dropped = [k for k in scheme if k not in have]
    if not dropped:
        return scheme, ""
    total = sum(v["weight"] for v in kept.values())
    for v in kept.values():
        v["weight"] = v["weight"] / total
    note = (f"The appraisal leaves out {', '.join(dropped)} (not in the data) and re-scales the other weights "
            f"to sum to 1: " + ", ".join(f"{k} {v['weight']:.2f}" for k, v in kept.items()) + ".")
    return kept, note


def appraise(card: pd.DataFrame, *, scheme: Mapping[str, Mapping[str, float]] | None = None) -> pd.DataFrame:
    """Each unit's appraisal components: a weighted score a rep can recompute by hand.

    For each KPI ``i`` of the scheme::

        ratio_i  = value_i / threshold_i      (threshold_i / value_i when lower is better)
        points_i = min(cap_i, max(0, ratio_i)) * weight_i

    and the total (:func:`appraisal_totals`) is ``sum(points_i)`` divided by the
    sum of the weights of the KPIs that have a value (1 when all have one), so a
    rep with no feedback is scored on the other KPIs rather than given zero.

    Parameters
    ----------
    card : DataFrame
        A :func:`scorecard` (usually ``level="rep"``).
    scheme : dict, optional
        KPI -> ``weight``, ``threshold``, ``cap`` (see :func:`check_scheme`);
        default :data:`DEFAULT_SCHEME`.

    Returns
    -------
    DataFrame
        One row per unit and KPI of the scheme: ``unit``, ``kpi``, ``value``,
        ``threshold``, ``ratio``, ``cap``, ``weight``, ``points`` (NaN when
        the value is missing) and ``formula`` (the sum written out, e.g.
        ``"min(1.2, 0.93 / 1) x 0.4 = 0.372"``).
    """
    check_columns(card, _TIDY, name="card")
    scheme = check_scheme(DEFAULT_SCHEME if scheme is None else scheme)
    missing = [k for k in scheme if k not in set(card["kpi"])]
    if missing:
        notes = "; ".join(card.attrs.get("notes", []))
        raise SalesplanDataError(
            f"The appraisal scheme uses KPI(s) {missing} that the scorecard does not have"
            + (f" ({notes})" if notes else "")
            + ". Drop them from the scheme (and re-weight), or add the tables they need."
        )
    units = sorted(card["unit"].unique())
    values = card.pivot_table(index="unit", columns="kpi", values="value", aggfunc="first", dropna=False)
    rows = []
    for unit in units:
        for kpi, spec in scheme.items():
            value = float(values.at[unit, kpi]) if unit in values.index and kpi in values.columns else np.nan
            if KPIS[kpi].higher_is_better:
                ratio = value / spec["threshold"]
                written = f"{_num(value)} / {_num(spec['threshold'])}"
            else:
                ratio = spec["threshold"] / value if value > 0 else (spec["cap"] if value == 0 else np.nan)
                written = f"{_num(spec['threshold'])} / {_num(value)}"
            points = min(spec["cap"], max(0.0, ratio)) * spec["weight"] if not pd.isna(ratio) else np.nan
            floor = "max(0, " if not pd.isna(ratio) and ratio < 0 else ""
            formula = (f"min({_num(spec['cap'])}, {floor}{written}{')' if floor else ''}) x {_num(spec['weight'])}"
                       f" = {_num(points, 3)}" if not pd.isna(points) else "no value: not scored")
            rows.append({"unit": unit, "kpi": kpi, "value": value, "threshold": spec["threshold"], "ratio": ratio,
                         "cap": spec["cap"], "weight": spec["weight"], "points": points, "formula": formula})
    return pd.DataFrame(rows, columns=["unit", "kpi", "value", "threshold", "ratio", "cap", "weight", "points",
                                       "formula"])


def _num(x: float, decimals: int = 2) -> str:
    if pd.isna(x):
        return "n/a"
    text = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def appraisal_totals(components: pd.DataFrame) -> pd.DataFrame:
    """Each unit's total appraisal score and rank from :func:`appraise`'s components.

    Returns
    -------
    DataFrame
        ``unit``, ``points`` (sum of the components), ``weight_scored`` (sum of
        the weights of the KPIs with a value), ``score`` (``points /
        weight_scored``: 1.0 = every threshold just met) and ``rank`` (1 = best),
        best first.
    """
    check_columns(components, ["unit", "kpi", "weight", "points"], name="components")
    scored = components.assign(weight_scored=components["weight"].where(components["points"].notna(), 0.0))
    out = scored.groupby("unit", as_index=False).agg(points=("points", "sum"), weight_scored=("weight_scored", "sum"))
    out["score"] = out["points"] / out["weight_scored"].where(out["weight_scored"] > 0)
    out["rank"] = out["score"].rank(ascending=False, method="min")
    return out.sort_values(["rank", "unit"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- coaching


def stage_outcomes(opportunities: pd.DataFrame, stage_history: pd.DataFrame | None) -> pd.DataFrame:
    """What happened to each deal at each open stage it reached: advanced, lost there, or still open.

    The stage reading is that of the funnel (:func:`salesplan.pipeline.deal_stages`):
    a deal that skipped a stage passed it (in zero days), a lost deal was
    lost at the highest stage it reached, and the same input checks and
    counted warnings apply.

    Returns
    -------
    DataFrame
        ``opportunity_id``, ``rep_id``, ``amount``, ``stage``, ``entered_at``,
        ``outcome`` (``advanced``, ``lost`` or ``open``), ``days`` (days in
        the stage; NaN while open or without history) and ``won`` (the deal
        was eventually won).
    """
    from salesplan.pipeline import deal_stages

    check_frame(opportunities, name="opportunities", min_rows=1)
    check_columns(opportunities, ["opportunity_id", "rep_id", "amount", "status"], name="opportunities")
    stages = deal_stages(opportunities, stage_history)
    opps = pd.DataFrame({"opportunity_id": opportunities["opportunity_id"].to_numpy(),
                         "rep_id": opportunities["rep_id"].astype("string").to_numpy(),
                         "amount": opportunities["amount"].astype(float).to_numpy(),
                         "won": (opportunities["status"].astype("string") == "won").fillna(False).to_numpy(dtype=bool)})
    out = stages.merge(opps, on="opportunity_id", how="left", validate="many_to_one")
    out["days"] = out["days_in_stage"].where(out["outcome"] != "open")
    return out[["opportunity_id", "rep_id", "amount", "stage", "entered_at", "outcome", "days", "won"]]


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN."""
    q = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q


def stage_gaps(
    tables: Mapping[str, pd.DataFrame],
    *,
    period: object = None,
    min_deals: int = 5,
) -> pd.DataFrame:
    """Every rep at every stage against the rest of their team: loss rate and days in stage, tested.

    Parameters
    ----------
    tables : dict of DataFrame
        Needs ``opportunities`` and ``stage_history``; ``reps`` (with
        ``team``) defines the teams, else every rep is compared with all others.
    period : optional
        Only stage entries in this period (see :func:`period_window`); default
        the whole history. Money at stake is per year either way.
    min_deals : int
        Reps with fewer resolved deals at a stage are not tested there.

    Returns
    -------
    DataFrame
        Two rows per rep and stage (``measure`` ``"loss_rate"`` and ``"days"``):
        ``rep_id``, ``team``, ``stage``, ``measure``, ``deals`` (the rep's
        resolved deals there), ``rep_value``, ``team_value`` (the rest of
        the team), ``gap`` (``rep_value - team_value``; positive is worse),
        ``test`` (Fisher exact, one-sided, for loss rates; Mann-Whitney U,
        one-sided, for days), ``p_value``, ``q_value`` (Benjamini-Hochberg over
        all rows, since many reps and stages are tested at once) and
        ``revenue_at_stake`` (a year's revenue from closing half the gap).

    Notes
    -----
    Revenue at stake, per year, from closing half the gap:

    * loss rate: ``deals_per_year x gap / 2 x team_win_after x rep_average_amount``,
      where ``team_win_after`` is the share of the team's deals that advanced
      past the stage and were finally won, and the average amount is that of
      the rep's deals resolved at the stage;
    * days: ``rep_won_revenue_per_year x (gap / 2) / rep_median_cycle_days``
      (velocity is inversely proportional to cycle length).
    """
    tables = _check_tables(tables) if "transactions" in tables else tables
    opps = _table(tables, "opportunities")
    sh = _table(tables, "stage_history")
    if opps is None or sh is None:
        raise SalesplanDataError(
            "Coaching needs compare reps stage by stage: add "
            + " and ".join(n for n, t in (("an opportunities table", opps), ("a stage_history table", sh)) if t is None)
            + "."
        )
    outcomes = stage_outcomes(opps, sh)
    if period is not None:
        window = period_window(period)
        outcomes = outcomes[_in(outcomes["entered_at"], window)]
        years = window.years
    else:
        dates = outcomes["entered_at"]
        years = max((dates.max() - dates.min()).days / 365.25, 1 / 12) if len(dates) else 1.0
    team_of = _rep_lookup(tables, "team")
    outcomes = outcomes.assign(team=outcomes["rep_id"].map(team_of) if team_of is not None else "all")
    outcomes["team"] = outcomes["team"].fillna("(no team)").astype(str)
    resolved = outcomes[outcomes["outcome"] != "open"]
    won_deals = pd.DataFrame({"rep_id": opps["rep_id"].astype("string"), "amount": opps["amount"].astype(float),
                              "status": opps["status"].astype("string"),
                              "days": (pd.to_datetime(opps["close_date"]) - pd.to_datetime(opps["created_date"])).dt.days
                              if "close_date" in opps.columns else np.nan,
                              "closed": pd.to_datetime(opps["close_date"]) if "close_date" in opps.columns else pd.NaT})
    won_deals = won_deals[won_deals["status"] == "won"]
    if period is not None:
        won_deals = won_deals[_in(won_deals["closed"], window)]
    rep_won = won_deals.groupby("rep_id")["amount"].sum() / years
    rep_cycle = won_deals.groupby("rep_id")["days"].median()

    rows = []
    for (team, stage), group in resolved.groupby(["team", "stage"], sort=True):
        advanced_team = group[group["outcome"] == "advanced"]
        win_after = advanced_team["won"].mean() if len(advanced_team) else np.nan
        for rep, mine in group.groupby("rep_id", sort=True):
            rest = group[group["rep_id"] != rep]
            n = len(mine)
            lost, rest_lost = int((mine["outcome"] == "lost").sum()), int((rest["outcome"] == "lost").sum())
            base = {"rep_id": rep, "team": team, "stage": stage, "deals": n}
            if n >= min_deals and len(rest) >= min_deals:
                rate, rest_rate = lost / n, rest_lost / len(rest)
                p = stats.fisher_exact([[lost, n - lost], [rest_lost, len(rest) - rest_lost]],
                                       alternative="greater").pvalue
                stake = n / years * max(rate - rest_rate, 0) / 2 * win_after * mine["amount"].mean()
            else:
                rate = rest_rate = p = stake = np.nan
            rows.append({**base, "measure": "loss_rate", "rep_value": rate, "team_value": rest_rate,
                         "test": "Fisher exact (one-sided)", "p_value": p, "revenue_at_stake": stake})
            days, rest_days = mine["days"].dropna(), rest["days"].dropna()
            if len(days) >= min_deals and len(rest_days) >= min_deals:
                med, rest_med = float(days.median()), float(rest_days.median())
                p = stats.mannwhitneyu(days, rest_days, alternative="greater").pvalue
                cycle = rep_cycle.get(rep, np.nan)
                stake = rep_won.get(rep, 0.0) * max(med - rest_med, 0) / 2 / cycle if cycle and cycle > 0 else np.nan
            else:
                med = rest_med = p = stake = np.nan
            rows.append({**base, "measure": "days", "rep_value": med, "team_value": rest_med,
                         "test": "Mann-Whitney U (one-sided)", "p_value": p, "revenue_at_stake": stake})
    columns = ["rep_id", "team", "stage", "measure", "deals", "rep_value", "team_value", "gap", "test",
               "p_value", "q_value", "revenue_at_stake"]
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    out["gap"] = out["rep_value"] - out["team_value"]
    out["q_value"] = _bh(out["p_value"].to_numpy(dtype=float))
    stage_order = {s: i for i, s in enumerate(OPEN_STAGES)}
    out = out.sort_values(["rep_id", "stage", "measure"], key=lambda s: s.map(stage_order) if s.name == "stage" else s,
                          kind="stable")
    return out[columns].reset_index(drop=True)


def short_money(x: float) -> str:
    """Money in a sentence: ``180k``, ``1.2m``, ``950``.

    >>> short_money(181_400), short_money(1_234_000), short_money(950)
    ('181k', '1.2m', '950')
    """
    if pd.isna(x):
        return "n/a"
    x = float(x)
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f}m"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def _sentence(row) -> str:
    stage = str(row.stage).replace("_", " ")
    stake = f"about {short_money(row.revenue_at_stake)} a year at stake"
    if row.measure == "loss_rate":
        return (f"{row.rep_id} loses {row.rep_value:.0%} of deals at {stage} against {row.team_value:.0%} "
                f"for the team: {stake}; focus: {stage}")
    return (f"{row.rep_id} keeps deals {row.rep_value:.0f} days in {stage} against {row.team_value:.0f} "
            f"for the team: {stake}; focus: pace of {stage}")


def coaching_needs(
    gaps: pd.DataFrame,
    *,
    alpha: float = 0.1,
    adjusted: bool = True,
) -> pd.DataFrame:
    """One coaching focus per rep: the significant gap with the most revenue at stake.

    Parameters
    ----------
    gaps : DataFrame
        :func:`stage_gaps`.
    alpha : float
        Significance level.
    adjusted : bool
        Judge significance on the Benjamini-Hochberg ``q_value`` (default,
        which keeps the share of false flags among the flagged near ``alpha``
        although every rep and stage is tested) or on the raw ``p_value``.

    Returns
    -------
    DataFrame
        One row per rep with at least one significant gap, most at stake first:
        ``rep_id``, ``team``, ``stage``, ``measure``, ``rep_value``,
        ``team_value``, ``p_value``, ``q_value``, ``revenue_at_stake``,
        ``focus`` (the sentence, e.g. "R07 loses 62% of deals at negotiation
        against 39% for the team: about 180k a year at stake; focus:
        negotiation") and ``also`` (other significant stages, comma-separated).
    """
    columns = ["rep_id", "team", "stage", "measure", "rep_value", "team_value", "p_value", "q_value",
               "revenue_at_stake", "focus", "also"]
    check_columns(gaps, ["rep_id", "stage", "measure", "rep_value", "team_value", "p_value", "q_value",
                         "revenue_at_stake"], name="gaps")
    test = gaps["q_value"] if adjusted else gaps["p_value"]
    hits = gaps[(test < alpha) & (gaps["gap"] > 0)] if "gap" in gaps.columns else gaps[test < alpha]
    if hits.empty:
        return pd.DataFrame(columns=columns)
    hits = hits.sort_values(["rep_id", "revenue_at_stake"], ascending=[True, False], kind="stable")
    top = hits.drop_duplicates("rep_id").copy()
    top["focus"] = [_sentence(r) for r in top.itertuples(index=False)]
    others = hits.groupby("rep_id").apply(
        lambda g: ", ".join(f"{s.replace('_', ' ')} ({'losses' if m == 'loss_rate' else 'pace'})"
                            for s, m in zip(g["stage"].iloc[1:], g["measure"].iloc[1:])),
        include_groups=False)
    top["also"] = top["rep_id"].map(others).fillna("")
    if "team" not in top.columns:
        top["team"] = ""
    return top.sort_values("revenue_at_stake", ascending=False, kind="stable")[columns].reset_index(drop=True)
