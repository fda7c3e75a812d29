"""The review: plan versus actual explained, problems ranked with SMART actions, accuracy, after-sales.

Contents
--------
- periods: :func:`review_window` reads ``"2025-Q3"``, ``"2025-07"``, ``"2025"``
  or a ``(start, end)`` pair;
- variance: :func:`variance_detail` and :func:`plan_vs_actual` split the gap
  between a unit's target and its actual revenue exactly into price, volume,
  mix, new and lost items (with :func:`salesplan.market.price_volume_mix`);
- KPIs: :func:`kpis` (revenue against target per unit, with pace when the
  period is not over); :func:`review_tables` gathers the whole review of a
  period as named frames for a page, a report or a scheduled job;
- problems: :func:`problem_list` ranks the causes of the gaps by revenue
  impact, each with a corrective SMART target. Causes come from *problem
  sources*, functions ``source(inputs: ReviewInputs) -> DataFrame`` with the
  :data:`PROBLEM_COLUMNS`; :data:`PROBLEM_SOURCES` holds the built-in ones
  (``price_volume_mix``, ``accounts_at_risk``) and more can be passed or
  registered with :func:`register_problem_source`;
- accuracy: :func:`plan_records`, :func:`forecast_records`,
  :func:`accuracy_history`, :func:`accuracy_summary` score every saved plan
  and forecast against the actuals as they arrive;
- after-sales: :func:`customer_owners`, :func:`satisfaction_trend`,
  :func:`ticket_stats`, :func:`customers_at_risk`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesplan import format as fmt
from salesplan._validation import check_choice, check_columns, check_dates, check_frame
from salesplan.errors import SalesplanDataError, SalesplanError, SalesplanWarning
from salesplan.market import price_volume_mix
from salesplan.schema import TARGET_LEVELS
from salesplan.targets._data import LEVEL_COLUMNS

__all__ = [
    "ReviewWindow",
    "review_window",
    "variance_detail",
    "plan_vs_actual",
    "kpis",
    "review_tables",
    "problems_table",
    "ReviewInputs",
    "PROBLEM_COLUMNS",
    "PROBLEM_SOURCES",
    "register_problem_source",
    "pvm_problems",
    "risk_problems",
    "problem_list",
    "smart_action",
    "plan_records",
    "forecast_records",
    "accuracy_history",
    "accuracy_summary",
    "customer_owners",
    "satisfaction_trend",
    "ticket_stats",
    "customers_at_risk",
]

_EFFECTS = ["price_effect", "volume_effect", "mix_effect", "new_effect", "lost_effect", "other_effect"]
_PLAN_DATE = pd.Timestamp("1900-01-01")  # where the planned lines sit for price_volume_mix


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class ReviewWindow:
    """A reviewed period: first and last day (inclusive), a label, and the pandas frequency (or None)."""

    start: pd.Timestamp
    end: pd.Timestamp
    label: str
    freq: str | None = None

    def next(self) -> ReviewWindow:
        """The following period of the same kind (same length in days for free windows)."""
        if self.freq is not None:
            p = pd.Period(self.start, freq=self.freq) + 1
            return _window_from_period(p)
        days = (self.end - self.start).days + 1
        start = self.end + pd.Timedelta(days=1)
        end = start + pd.Timedelta(days=days - 1)
        return ReviewWindow(start, end, f"{start:%Y-%m-%d} to {end:%Y-%m-%d}")

    def shifted(self, years: int) -> ReviewWindow:
        """The same period ``years`` years later (earlier when negative)."""
        off = pd.DateOffset(years=years)
        if self.freq is not None:
            return _window_from_period(pd.Period(self.start + off, freq=self.freq))
        return ReviewWindow(self.start + off, self.end + off, f"{self.start + off:%Y-%m-%d} to {self.end + off:%Y-%m-%d}")

    @property
    def months(self) -> int:
        """Number of calendar months the window touches."""
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1


def _window_from_period(p: pd.Period) -> ReviewWindow:
    fs = p.freqstr[0]
    label = f"{p.year}-Q{p.quarter}" if fs == "Q" else str(p)
    return ReviewWindow(p.start_time.normalize(), p.end_time.normalize(), label, fs)


def review_window(period: Any) -> ReviewWindow:
    """Read a period: ``"2025-Q3"``, ``"2025-07"``, ``"2025"``, a :class:`pandas.Period` or ``(start, end)``.

    >>> w = review_window("2025-Q3")
    >>> (w.start.date().isoformat(), w.end.date().isoformat(), w.label, w.next().label)
    ('2025-07-01', '2025-09-30', '2025-Q3', '2025-Q4')
    """
    if isinstance(period, ReviewWindow):
        return period
    if isinstance(period, pd.Period):
        return _window_from_period(period.asfreq(period.freqstr[0]) if period.freqstr[0] in "MQY" else period)
    if isinstance(period, tuple) and len(period) == 2:
        try:
            start, end = pd.Timestamp(period[0]).normalize(), pd.Timestamp(period[1]).normalize()
        except (TypeError, ValueError):
            start = end = None
        if start is None or end < start:
            raise SalesplanError(f"period {period!r} must be (start, end) dates with end >= start, "
                                 "e.g. ('2025-07-01', '2025-09-30').")
        return ReviewWindow(start, end, f"{start:%Y-%m-%d} to {end:%Y-%m-%d}")
    text = str(period).strip().upper().replace(" ", "")
    for freq, ok in (("Q", "Q" in text), ("Y", text.isdigit() and len(text) == 4), ("M", len(text) == 7)):
        if ok:
            try:
                return _window_from_period(pd.Period(text.replace("-Q", "Q"), freq=freq))
            except (ValueError, TypeError):
                break
    raise SalesplanError(f"period {period!r} is not understood; use '2025-Q3', '2025-07', '2025' or "
                         "('2025-07-01', '2025-09-30').")


# --------------------------------------------------------------------------- variance


def _targets_table(targets: Any) -> pd.DataFrame:
    table = getattr(targets, "table", targets)  # a salesplan.targets.Plan or the targets frame
    check_frame(table, name="targets")
    check_columns(table, ["period", "level", "key", "metric", "value"], name="targets")
    return table


def _unit_column(tx: pd.DataFrame, level: str, reps: pd.DataFrame | None,
                 customers: pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    check_choice(level, TARGET_LEVELS, name="level")
    col = LEVEL_COLUMNS[level]
    if col is None:
        return tx.assign(_unit="all"), "_unit"
    if col in tx.columns:
        return tx, col
    if level == "team" and reps is not None and {"rep_id", "team"} <= set(reps.columns):
        return tx.merge(reps[["rep_id", "team"]].astype({"rep_id": "str"}), on="rep_id", how="left"), "team"
    if level == "segment" and customers is not None and {"customer_id", "segment"} <= set(customers.columns):
        return tx.merge(customers[["customer_id", "segment"]], on="customer_id", how="left"), "segment"
    need = {"team": "reps (with team)", "segment": "customers (with segment)"}.get(level)
    raise SalesplanDataError(f"level {level!r} needs a {col!r} column in the transactions"
                             + (f" or {need}" if need else "") + f"; columns found: {[str(c) for c in tx.columns]}.")


def _lines(tx: pd.DataFrame, level: str, by: str, reps, customers) -> pd.DataFrame:
    check_frame(tx, name="tx")
    check_columns(tx, ["order_date", "revenue", by], name="tx")
    work, col = _unit_column(tx, level, reps, customers)
    if "quantity" in work.columns:
        qty = work["quantity"].astype(float)
    elif "unit_price" in work.columns:
        qty = work["revenue"].astype(float) / work["unit_price"].astype(float).where(lambda s: s != 0)
    else:
        raise SalesplanDataError("plan versus actual by price, volume and mix needs quantities: tx has neither "
                                 f"'quantity' nor 'unit_price'. Columns found: {[str(c) for c in tx.columns]}.")
    return pd.DataFrame({
        "order_date": check_dates(work["order_date"], name="tx['order_date']").to_numpy(),
        "unit": work[col].astype("str").to_numpy(),
        "item": work[by].astype("str").to_numpy(),
        "quantity": qty.fillna(0.0).to_numpy(),
        "revenue": work["revenue"].astype(float).to_numpy(),
        "customer_id": work["customer_id"].to_numpy() if "customer_id" in work else "c",
    })


def _in(lines: pd.DataFrame, w: ReviewWindow) -> pd.DataFrame:
    return lines[(lines["order_date"] >= w.start) & (lines["order_date"] < w.end + pd.Timedelta(days=1))]


def variance_detail(
    tx: pd.DataFrame,
    targets: Any,
    *,
    period: Any,
    level: str = "region",
    by: str = "product_id",
    keys: Sequence[str] | None = None,
    reference: Any = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Plan versus actual per unit and item, split exactly into price, volume and mix.

    A target is a revenue total; to split its gap into price, volume and mix
    the plan needs quantities and prices per item (product, category...).
    They are taken from the *reference* period (default: the same period a
    year before): the planned lines are the unit's reference lines scaled so
    that their revenue equals the target, at reference prices and mix. A unit
    without reference sales uses the reference mix of all units (warned).
    :func:`salesplan.market.price_volume_mix` then bridges planned to actual
    lines, so for every unit ``price + volume + mix + new + lost + other ==
    actual - plan`` (to float rounding).

    Parameters
    ----------
    tx : DataFrame
        Transactions with ``order_date``, ``revenue``, the ``by`` column,
        ``quantity`` (or ``unit_price``) and the level's column.
    targets : DataFrame or salesplan.targets.Plan
        Rows ``period, level, key, metric, value``; revenue targets of
        ``level`` in the period are summed per key.
    period : str, tuple or ReviewWindow
        See :func:`review_window`.
    level : str
        A target level (``region``, ``rep``, ``channel``, ``company``...).
    by : str
        What mix is measured over (``product_id`` or ``category``).
    keys : list of str, optional
        Only these units.
    reference : period, optional
        Where planned prices and mix come from.

    Returns
    -------
    DataFrame
        One row per unit and item: ``level``, ``key``, ``item``, ``status``
        (continuing, new, lost, inactive), ``quantity_plan``,
        ``quantity_actual``, ``revenue_plan``, ``revenue_actual``,
        ``price_plan``, ``price_actual``, ``price_effect``, ``volume_effect``,
        ``mix_effect``, ``new_effect``, ``lost_effect``, ``other_effect``,
        ``variance`` (actual - plan).
    """
    w = review_window(period)
    ref = review_window(reference) if reference is not None else w.shifted(-1)
    table = _targets_table(targets)
    t = table[(table["level"].astype("str") == level) & (table["metric"].astype("str") == "revenue")]
    tp = pd.to_datetime(t["period"])
    t = t[(tp >= w.start) & (tp <= w.end)]
    if t.empty:
        raise SalesplanDataError(f"targets has no revenue target at level {level!r} in {w.label}; levels with "
                                 f"targets: {sorted(table['level'].astype('str').unique())}, periods "
                                 f"{pd.to_datetime(table['period']).min():%Y-%m} to "
                                 f"{pd.to_datetime(table['period']).max():%Y-%m}.")
    plan = t.groupby(t["key"].astype("str"))["value"].sum()
    if keys is not None:
        plan = plan[plan.index.isin([str(k) for k in keys])]
        if plan.empty:
            raise SalesplanDataError(f"none of keys={list(keys)!r} has a target at level {level!r} in {w.label}.")
    lines = _lines(tx, level, by, reps, customers)
    actual = _in(lines, w)
    refl = _in(lines, ref)
    no_target = sorted(set(actual["unit"]) - set(plan.index)) if keys is None else []
    if no_target:
        warnings.warn(f"{len(no_target)} unit(s) at level {level!r} sold in {w.label} but have no target and are "
                      f"left out: {no_target[:5]}.", SalesplanWarning, stacklevel=2)
    all_ref = refl.groupby("item")[["quantity", "revenue"]].sum()
    fallback = []
    parts = []
    for key, target in plan.items():
        r = refl[refl["unit"] == key].groupby("item")[["quantity", "revenue"]].sum()
        if r["revenue"].sum() <= 0:
            fallback.append(key)
            r = all_ref
        if r["revenue"].sum() <= 0:
            raise SalesplanDataError(f"the reference period {ref.label} has no sales to take planned prices and "
                                     "mix from; pass reference= a period with sales.")
        scale = float(target) / float(r["revenue"].sum())
        planned = pd.DataFrame({"order_date": _PLAN_DATE, "customer_id": "plan", "item": r.index,
                                "quantity": r["quantity"].to_numpy() * scale,
                                "revenue": r["revenue"].to_numpy() * scale})
        act = actual[actual["unit"] == key][["order_date", "customer_id", "item", "quantity", "revenue"]]
        parts.append(_bridge(planned, act, w, key, float(target)))
    if fallback:
        warnings.warn(f"{len(fallback)} unit(s) had no sales in the reference period {ref.label}; their planned "
                      f"mix and prices are those of all units: {fallback[:5]}.", SalesplanWarning, stacklevel=2)
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "level", level)
    return out


def _bridge(planned: pd.DataFrame, act: pd.DataFrame, w: ReviewWindow, key: str, target: float) -> pd.DataFrame:
    cols = {"item": "item", "quantity_base": "quantity_plan", "quantity_current": "quantity_actual",
            "revenue_base": "revenue_plan", "revenue_current": "revenue_actual", "price_base": "price_plan",
            "price_current": "price_actual", "total_change": "variance"}
    if act.empty or not (act["quantity"] > 0).any():
        # nothing sold: every planned item is lost (price_volume_mix needs sales in both windows)
        g = planned.groupby("item")[["quantity", "revenue"]].sum()
        a = act.groupby("item")[["quantity", "revenue"]].sum()
        idx = g.index.union(a.index)
        g, a = g.reindex(idx, fill_value=0.0), a.reindex(idx, fill_value=0.0)
        qa, ra = a["quantity"].to_numpy(), a["revenue"].to_numpy()
        df = pd.DataFrame({"item": g.index.astype("str"), "status": np.where(g["quantity"] > 0, "lost", "inactive"),
                           "quantity_plan": g["quantity"].to_numpy(), "quantity_actual": qa,
                           "revenue_plan": g["revenue"].to_numpy(), "revenue_actual": ra})
        with np.errstate(divide="ignore", invalid="ignore"):
            df["price_plan"] = np.where(df["quantity_plan"] > 0, df["revenue_plan"] / df["quantity_plan"], np.nan)
        df["price_actual"] = np.nan
        change = df["revenue_actual"] - df["revenue_plan"]
        for e in _EFFECTS:
            df[e] = 0.0
        df["lost_effect"] = np.where(df["status"] == "lost", change, 0.0)
        df["other_effect"] = np.where(df["status"] == "inactive", change, 0.0)
        df["variance"] = change
    else:
        frame = pd.concat([planned, act], ignore_index=True)
        pvm = price_volume_mix(frame, base=(_PLAN_DATE, _PLAN_DATE), current=(w.start, w.end), by="item")
        df = pvm.rename(columns=cols)
    df.insert(0, "key", key)
    return df[["key", "item", "status", "quantity_plan", "quantity_actual", "revenue_plan", "revenue_actual",
               "price_plan", "price_actual", *_EFFECTS, "variance"]]


def plan_vs_actual(
    tx: pd.DataFrame,
    targets: Any,
    *,
    period: Any,
    level: str = "region",
    by: str = "product_id",
    keys: Sequence[str] | None = None,
    reference: Any = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Plan versus actual per unit, with the variance split into price, volume and mix.

    The sum over items of :func:`variance_detail` (same parameters).

    Returns
    -------
    DataFrame
        One row per unit, biggest shortfall first: ``level``, ``key``,
        ``plan``, ``actual``, ``variance`` (actual - plan), ``attainment``
        (actual / plan), ``price_effect``, ``volume_effect``, ``mix_effect``,
        ``new_effect``, ``lost_effect``, ``other_effect``; the effects add up to
        ``variance``.
    """
    d = variance_detail(tx, targets, period=period, level=level, by=by, keys=keys, reference=reference,
                        reps=reps, customers=customers)
    g = d.groupby(["level", "key"], sort=False)[["revenue_plan", "revenue_actual", *_EFFECTS, "variance"]].sum()
    g = g.rename(columns={"revenue_plan": "plan", "revenue_actual": "actual"}).reset_index()
    g["attainment"] = g["actual"] / g["plan"].where(g["plan"] != 0)
    g = g[["level", "key", "plan", "actual", "variance", "attainment", *_EFFECTS]]
    return g.sort_values(["variance", "key"], ignore_index=True)


def kpis(
    tx: pd.DataFrame,
    targets: Any,
    *,
    period: Any,
    levels: Sequence[str] | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Revenue against target per unit, for every level with targets in the period.

    When the data stop before the period ends, ``elapsed`` is the share of
    the period's days covered and ``pace`` compares the actual with the
    target pro-rated to that share.

    Returns
    -------
    DataFrame
        ``level``, ``key``, ``target``, ``actual``, ``gap`` (actual - target),
        ``attainment`` (actual / target), ``elapsed``, ``pace`` (actual /
        (target x elapsed)); levels in the order of
        :data:`salesplan.schema.TARGET_LEVELS`, units by key.
    """
    w = review_window(period)
    table = _targets_table(targets)
    t = table[table["metric"].astype("str") == "revenue"]
    tp = pd.to_datetime(t["period"])
    t = t[(tp >= w.start) & (tp <= w.end)]
    if t.empty:
        raise SalesplanDataError(f"targets has no revenue target in {w.label}; targets cover "
                                 f"{pd.to_datetime(table['period']).min():%Y-%m} to "
                                 f"{pd.to_datetime(table['period']).max():%Y-%m}.")
    check_frame(tx, name="tx")
    check_columns(tx, ["order_date", "revenue"], name="tx")
    dates = pd.to_datetime(tx["order_date"])
    inside = tx[(dates >= w.start) & (dates < w.end + pd.Timedelta(days=1))]
    last = min(dates.max().normalize(), w.end)
    elapsed = max(0.0, min(1.0, ((last - w.start).days + 1) / ((w.end - w.start).days + 1)))
    wanted = list(levels) if levels is not None else [lv for lv in TARGET_LEVELS if lv in set(t["level"].astype("str"))]
    parts = []
    for lv in wanted:
        tl = t[t["level"].astype("str") == lv]
        if tl.empty:
            continue
        target = tl.groupby(tl["key"].astype("str"))["value"].sum()
        work, col = _unit_column(inside, lv, reps, customers)
        actual = work.groupby(work[col].astype("str"))["revenue"].sum()
        parts.append(pd.DataFrame({"level": lv, "key": target.index, "target": target.to_numpy(),
                                   "actual": actual.reindex(target.index).fillna(0.0).to_numpy()}))
    if not parts:
        raise SalesplanDataError(f"no targets at levels {wanted} in {w.label}.")
    out = pd.concat(parts, ignore_index=True)
    out["gap"] = out["actual"] - out["target"]
    out["attainment"] = out["actual"] / out["target"].where(out["target"] != 0)
    out["elapsed"] = elapsed
    out["pace"] = out["actual"] / (out["target"] * elapsed).where(out["target"] * elapsed != 0)
    return out


# --------------------------------------------------------------------------- problems

#: Columns every problem source returns (``rank`` is added by :func:`problem_list`).
PROBLEM_COLUMNS = ["source", "level", "key", "driver", "item", "impact", "problem", "action", "metric",
                   "current", "target", "deadline", "expected_gain", "probability", "owner"]


@dataclass(frozen=True)
class ReviewInputs:
    """Everything a problem source may read; sources take what they need.

    ``samples`` are sample paths ``unique_id, [ds,] sample, y`` of the units'
    revenue (unique_id = the unit's key) used for the probability that a
    corrective target is reached. ``extra`` holds anything further a source
    needs (e.g. opportunities and stage history for pipeline drivers).
    """

    tx: pd.DataFrame
    targets: Any
    period: Any
    level: str = "region"
    by: str = "product_id"
    samples: pd.DataFrame | None = None
    reps: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    feedback: pd.DataFrame | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> ReviewWindow:
        """The reviewed period."""
        return review_window(self.period)


def smart_action(
    verb: str,
    what: str,
    current: str,
    target: str,
    deadline: ReviewWindow,
    gain: float,
    probability: float | None = None,
) -> str:
    """A corrective action as a SMART target, in one sentence.

    >>> w = review_window("2025-Q4")
    >>> smart_action("Raise", "the average price of P07 in East", "301", "320", w, 12400.0, 0.58)
    'Raise the average price of P07 in East from 301 to 320 by the end of 2025-Q4 (2025-12-31): +12,400 expected, 58% likely'
    """
    text = (f"{verb} {what} from {current} to {target} by the end of {deadline.label} "
            f"({deadline.end:%Y-%m-%d}): +{gain:,.0f} expected")
    if probability is not None and np.isfinite(probability):
        text += f", {probability:.0%} likely"
    return text


def _unit_samples(samples: pd.DataFrame | None, w: ReviewWindow) -> dict[str, np.ndarray]:
    """unit key -> simulated revenue per sample in window ``w``."""
    if samples is None:
        return {}
    check_columns(samples, ["unique_id", "sample", "y"], name="samples",
                  hint="Sample paths are unique_id (the unit's key), [ds,] sample, y.")
    s = samples
    if "ds" in s.columns:
        ds = pd.to_datetime(s["ds"])
        s = s[(ds >= w.start) & (ds <= w.end)]
    tot = s.groupby([s["unique_id"].astype("str"), "sample"])["y"].sum()
    return {k: v.to_numpy() for k, v in tot.groupby(level=0)}


def _probability(sims: dict[str, np.ndarray], key: str, level_needed: float) -> float:
    v = sims.get(key)
    return float((v >= level_needed).mean()) if v is not None and len(v) else float("nan")


def _fmt(x: float, decimals: int = 0) -> str:
    return fmt.number(x, decimals=decimals)


def _unit_owner(level: str, key: str, reps: pd.DataFrame | None) -> str | None:
    """Who answers for a unit: the rep itself, else the manager most of the unit's reps report to."""
    if level == "rep":
        return key
    col = {"region": "region", "team": "team"}.get(level)
    if reps is None or col is None or col not in reps.columns or "manager" not in reps.columns:
        return None
    managers = reps.loc[reps[col].astype("str") == key, "manager"].dropna().astype("str")
    return str(managers.mode().iloc[0]) if len(managers) else None


def pvm_problems(inputs: ReviewInputs) -> pd.DataFrame:
    """Problems from the price, volume and mix split of every unit's gap.

    Per unit (of ``inputs.level``) that missed its target: a volume shortfall
    (fewer units than planned at planned mix), a mix shift (units moved to
    cheaper items; the item whose share fell most is named), a price
    shortfall per item (sold below the planned price) and planned items not
    sold at all. Only effects that cost revenue are problems; their impact is
    the (negative) effect. The corrective target restores the planned value
    of the driver by the end of the next period; its expected gain is the
    revenue the effect cost. The probability is the share of sample paths in
    which the unit's revenue over the next period reaches the reviewed
    actual plus that gain (the level the fix implies), when samples are given.
    The owner is the rep (level ``rep``) or the manager most of the unit's
    reps report to (``region``/``team``, when ``inputs.reps`` has ``manager``).

    Returns
    -------
    DataFrame
        :data:`PROBLEM_COLUMNS`.
    """
    w = inputs.window
    nxt = w.next()
    d = variance_detail(inputs.tx, inputs.targets, period=w, level=inputs.level, by=inputs.by,
                        reps=inputs.reps, customers=inputs.customers)
    sims = _unit_samples(inputs.samples, nxt)
    per = {"M": "a month", "Q": "a quarter", "Y": "a year"}.get(w.freq or "", f"per {w.months} months")
    rows: list[dict[str, Any]] = []
    where = {"company": "the company"}.get(inputs.level)
    for key, u in d.groupby("key", sort=True):
        actual, plan = float(u["revenue_actual"].sum()), float(u["revenue_plan"].sum())
        if actual >= plan:
            continue
        name = where or key
        owner = _unit_owner(inputs.level, key, inputs.reps)
        unit_kind = {"product_id": "product", "category": "category"}.get(inputs.by, inputs.by)
        kinds = {"category": "categories"}.get(unit_kind, f"{unit_kind}s")

        gap = f"{name} missed its {w.label} target by {_fmt(plan - actual)} ({actual / plan:.0%} of plan); "

        def add(driver, item, impact, problem, verb, what, cur, tgt, metric, cur_v, tgt_v):
            gain = -impact
            p = _probability(sims, key, actual + gain)
            rows.append({"source": "price_volume_mix", "level": inputs.level, "key": key, "driver": driver,
                         "item": item, "impact": impact, "problem": gap + problem,
                         "action": smart_action(verb, what, cur, tgt, nxt, gain, p if sims else None),
                         "metric": metric, "current": cur_v, "target": tgt_v, "deadline": nxt.end,
                         "expected_gain": gain, "probability": p, "owner": owner})

        cont = u[u["status"] == "continuing"]
        vol = float(u["volume_effect"].sum())
        if vol < 0:
            qp, qa = float(cont["quantity_plan"].sum()), float(cont["quantity_actual"].sum())
            add("volume", "", vol,
                f"it sold {_fmt(qa)} units against {_fmt(qp)} planned ({qa / qp - 1:+.1%}), which cost "
                f"{_fmt(-vol)}.",
                "Raise", f"units sold in {name}", _fmt(qa), f"{_fmt(qp)} {per}", "units", qa, qp)
        mix = float(u["mix_effect"].sum())
        if mix < 0 and len(cont) > 1:
            qp, qa = cont["quantity_plan"].sum(), cont["quantity_actual"].sum()
            share_p, share_a = cont["quantity_plan"] / qp, cont["quantity_actual"] / qa
            worst = (share_a - share_p).idxmin()
            item = str(cont.loc[worst, "item"])
            sp, sa = float(share_p[worst]), float(share_a[worst])
            add("mix", item, mix,
                f"its mix moved to cheaper {kinds}, which cost {_fmt(-mix)}; the biggest shift: "
                f"{item} was {sa:.0%} of units against {sp:.0%} planned.",
                f"Bring {name}'s {unit_kind} mix back to plan by raising", f"{item}'s share of units",
                f"{sa:.0%}", f"{sp:.0%}", "unit share", sa, sp)
        for r in cont[cont["price_effect"] < 0].itertuples():
            add("price", r.item, float(r.price_effect),
                f"{r.item} sold at {_fmt(r.price_actual, 2)} a unit on average against "
                f"{_fmt(r.price_plan, 2)} planned ({r.price_actual / r.price_plan - 1:+.1%}), which cost "
                f"{_fmt(-r.price_effect)}.",
                "Raise", f"the average price of {r.item} in {name}", _fmt(r.price_actual, 2), _fmt(r.price_plan, 2),
                "price", float(r.price_actual), float(r.price_plan))
        for r in u[u["lost_effect"] < 0].itertuples():
            add("lost", r.item, float(r.lost_effect),
                f"{r.item} sold nothing against {_fmt(r.revenue_plan)} planned ({_fmt(r.quantity_plan, 1)} units).",
                "Raise", f"units of {r.item} sold in {name}", "0", f"{_fmt(r.quantity_plan, 1)} {per}", "units",
                0.0, float(r.quantity_plan))
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS)


def risk_problems(inputs: ReviewInputs, *, min_accounts: int = 1) -> pd.DataFrame:
    """Problems from accounts at risk (see :func:`customers_at_risk`), one per owner.

    Impact is minus the expected loss of the owner's accounts at risk: each
    account's revenue at stake times its probability of having stopped
    buying (``1 - probability_alive``). The corrective target is to win them
    back (or resolve their tickets) by the end of the next period; its gain
    is that expected loss. Uses ``inputs.feedback`` when given, else purchase
    behaviour alone. Not a default source of :func:`problem_list`: it is a
    risk ahead, not a cause of the gap behind.

    Returns
    -------
    DataFrame
        :data:`PROBLEM_COLUMNS`.
    """
    w = inputs.window
    nxt = w.next()
    risk = customers_at_risk(inputs.tx, feedback=inputs.feedback, customers=inputs.customers, as_of=w.end)
    rows = []
    for owner, g in risk.groupby("owner", sort=True):
        if len(g) < min_accounts:
            continue
        stake = float(g["revenue_at_stake"].sum())
        loss = float((g["revenue_at_stake"] * (1.0 - g["probability_alive"])).sum())
        n = len(g)
        top = ", ".join(g.nlargest(3, "revenue_at_stake")["customer_id"].astype("str"))
        rows.append({"source": "accounts_at_risk", "level": "rep", "key": owner, "driver": "accounts at risk",
                     "item": top, "impact": -loss,
                     "problem": f"{n} account(s) of {owner} are at risk at the end of {w.label} "
                                f"(biggest: {top}): {_fmt(stake)} of yearly revenue at stake, "
                                f"{_fmt(loss)} expected to be lost.",
                     "action": smart_action("Cut", f"the accounts at risk of {owner}", str(n), "0", nxt, loss),
                     "metric": "accounts at risk", "current": float(n), "target": 0.0, "deadline": nxt.end,
                     "expected_gain": loss, "probability": np.nan, "owner": owner})
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS)


#: Built-in problem sources, by name.
PROBLEM_SOURCES: dict[str, Callable[[ReviewInputs], pd.DataFrame]] = {
    "price_volume_mix": pvm_problems,
    "accounts_at_risk": risk_problems,
}


def register_problem_source(name: str, source: Callable[[ReviewInputs], pd.DataFrame]) -> None:
    """Add a problem source (e.g. pipeline drivers) that :func:`problem_list` uses by name."""
    if not callable(source):
        raise SalesplanError(f"a problem source must be a function of ReviewInputs, got {type(source).__name__}.")
    PROBLEM_SOURCES[str(name)] = source


def problem_list(
    inputs: ReviewInputs,
    *,
    sources: Sequence[str | Callable[[ReviewInputs], pd.DataFrame]] = ("price_volume_mix",),
    top: int | None = None,
) -> pd.DataFrame:
    """The biggest causes of the gaps, ranked by revenue impact, each with a corrective SMART target.

    Parameters
    ----------
    inputs : ReviewInputs
        Transactions, targets, the period and level reviewed, and optionally
        sample paths, reps, customers, feedback and extras.
    sources : sequence of names or functions
        Problem sources: names in :data:`PROBLEM_SOURCES` or functions
        ``f(inputs) -> DataFrame`` with :data:`PROBLEM_COLUMNS` (missing
        optional columns are filled). Pipeline drivers plug in here.
    top : int, optional
        Keep the ``top`` biggest.

    Returns
    -------
    DataFrame
        ``rank`` (1 = biggest loss) and :data:`PROBLEM_COLUMNS`, sorted by
        ``impact`` (most negative first). ``problem`` and ``action`` are plain
        sentences with their numbers.
    """
    if not isinstance(inputs, ReviewInputs):
        raise SalesplanError(f"problem_list needs ReviewInputs(tx, targets, period, ...), got {type(inputs).__name__}.")
    frames = []
    for s in sources:
        if isinstance(s, str):
            if s not in PROBLEM_SOURCES:
                raise SalesplanError(f"unknown problem source {s!r}; known: {sorted(PROBLEM_SOURCES)}. "
                                     "Pass a function or register it with register_problem_source.")
            fn = PROBLEM_SOURCES[s]
        elif callable(s):
            fn = s
        else:
            raise SalesplanError(f"sources must hold names or functions, got {s!r}.")
        got = fn(inputs)
        check_columns(got, ["source", "key", "driver", "impact", "problem", "action"],
                      name=f"problems of source {getattr(fn, '__name__', s)!r}")
        frames.append(got.reindex(columns=PROBLEM_COLUMNS))
    frames = [f for f in frames if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PROBLEM_COLUMNS)
    out = out[out["impact"].astype(float) < 0]
    out = out.sort_values(["impact", "key", "driver"], ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.head(top) if top is not None else out


def problems_table(problems: pd.DataFrame) -> pd.DataFrame:
    """The problem list as a person reads it: rank, unit, problem, action, impact and probability as text."""
    check_columns(problems, ["rank", "key", "problem", "action", "impact", "probability"], name="problems")
    cols = ["rank", "key", "problem", "action", "impact", "probability"]
    return fmt.format_frame(problems[cols], kinds={"rank": "count", "impact": "money", "probability": "percent"},
                            labels={"key": "unit"})


def review_tables(
    data: Mapping[str, pd.DataFrame],
    *,
    period: Any,
    level: str = "region",
    by: str = "product_id",
    plan: Any = None,
    samples: pd.DataFrame | None = None,
    sources: Sequence[str | Callable[[ReviewInputs], pd.DataFrame]] = ("price_volume_mix",),
    top: int = 10,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, pd.DataFrame]:
    """The whole review of a period as named frames, for a page, a report or a scheduled job.

    Parameters
    ----------
    data : mapping of frames
        Tables by name (:func:`salesplan.io.load_data`): ``transactions`` and
        ``targets`` are needed; ``reps``, ``customers`` and ``feedback`` are
        used when present.
    plan : CommissionPlan or dict, optional
        When given, the payouts of the period are included.
    samples : DataFrame, optional
        Sample paths of the units of ``level`` (probabilities of the
        corrective targets).
    sources, top
        Problem sources and how many problems to keep (:func:`problem_list`).
    extra : mapping, optional
        Passed to the problem sources as ``ReviewInputs.extra``.

    Returns
    -------
    dict
        ``kpis`` (:func:`kpis`), ``variance`` (:func:`plan_vs_actual`),
        ``problems`` (:func:`problem_list`), ``accuracy`` (the targets scored
        by :func:`accuracy_summary` per level and unit), and when the data
        allow: ``payouts`` (:func:`salesplan.incentives.payouts`),
        ``at_risk`` (:func:`customers_at_risk`), ``tickets``
        (:func:`ticket_stats`), ``satisfaction`` (:func:`satisfaction_trend`
        by segment).
    """
    for name in ("transactions", "targets"):
        if name not in data:
            raise SalesplanDataError(f"the review needs a {name!r} table; tables found: {sorted(data)}.")
    tx, targets = data["transactions"], data["targets"]
    reps, customers, feedback = data.get("reps"), data.get("customers"), data.get("feedback")
    w = review_window(period)
    inputs = ReviewInputs(tx, targets, w, level=level, by=by, samples=samples, reps=reps, customers=customers,
                          feedback=feedback, extra=dict(extra or {}))
    out: dict[str, pd.DataFrame] = {
        "kpis": kpis(tx, targets, period=w, reps=reps, customers=customers),
        "variance": plan_vs_actual(tx, targets, period=w, level=level, by=by, reps=reps, customers=customers),
        "problems": problem_list(inputs, sources=sources, top=top),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanWarning)
        history = accuracy_history(plan_records(targets), tx, reps=reps, customers=customers, as_of=w.end)
    out["accuracy"] = accuracy_summary(history, by=["level", "key"])
    if plan is not None:
        from salesplan.incentives import payouts

        out["payouts"] = payouts(tx, targets, plan, start=w.start, end=w.end)
    if "customer_id" in tx.columns:
        out["at_risk"] = customers_at_risk(tx, feedback=feedback, customers=customers, as_of=min(
            w.end, pd.to_datetime(tx["order_date"]).max()))
    if feedback is not None and {"ticket_id", "resolved_at"} <= set(feedback.columns):
        out["tickets"] = ticket_stats(feedback, as_of=w.end)
    if feedback is not None and "satisfaction" in feedback.columns and customers is not None \
            and "segment" in customers.columns:
        out["satisfaction"] = satisfaction_trend(feedback, by="segment", customers=customers)
    return out


# --------------------------------------------------------------------------- accuracy history

_RECORD_COLUMNS = ["source", "method", "owner", "created_at", "level", "key", "ds", "value"]


def plan_records(saved: Any, *, metric: str = "revenue") -> pd.DataFrame:
    """Saved plans as forecast records to score.

    Parameters
    ----------
    saved : Plan, list of Plans, a plan folder, or a targets frame
        A folder is read with :func:`salesplan.targets.list_plans` (every
        version); a targets frame (``period, level, key, metric, value``) is
        one source called ``"targets"``.

    Returns
    -------
    DataFrame
        ``source`` (``name vN``), ``method``, ``owner`` (who saved it),
        ``created_at``, ``level``, ``key``, ``ds`` (month), ``value``.
    """
    from salesplan.targets import Plan, list_plans, load_plan

    if isinstance(saved, (str, os.PathLike)):
        listing = list_plans(Path(saved))
        saved = [load_plan(p) for p in listing["path"]]
    if isinstance(saved, Plan):
        saved = [saved]
    if isinstance(saved, pd.DataFrame):
        check_columns(saved, ["period", "level", "key", "metric", "value"], name="targets")
        items = [("targets", None, "targets", None, saved)]
    else:
        items = []
        for p in saved:
            if not isinstance(p, Plan):
                raise SalesplanError(f"plan_records takes Plans, a plan folder or a targets frame; got {type(p).__name__}.")
            v = p.version
            method = p.parameters.get("method") if isinstance(p.parameters, Mapping) else None
            items.append((f"{p.name} v{v}" if v is not None else p.name, p.metadata.get("created_at"),
                          method or "plan", p.metadata.get("user"), p.table))
    parts = []
    for source, created, method, owner, table in items:
        t = table[table["metric"].astype("str") == metric]
        parts.append(pd.DataFrame({"source": source, "method": method, "owner": owner,
                                   "created_at": pd.to_datetime(created, utc=True).tz_localize(None) if created else pd.NaT,
                                   "level": t["level"].astype("str").to_numpy(), "key": t["key"].astype("str").to_numpy(),
                                   "ds": pd.to_datetime(t["period"]).dt.to_period("M").dt.start_time.to_numpy(),
                                   "value": t["value"].astype(float).to_numpy()}))
    if not parts:
        return pd.DataFrame(columns=_RECORD_COLUMNS)
    return pd.concat(parts, ignore_index=True)[_RECORD_COLUMNS]


def forecast_records(
    forecast: pd.DataFrame,
    *,
    name: str,
    level: str,
    created_at: Any = None,
    models: Sequence[str] | None = None,
    owner: str | None = None,
) -> pd.DataFrame:
    """A forecast frame (``unique_id, ds`` and one column per model) as records to score.

    Returns
    -------
    DataFrame
        As :func:`plan_records`; ``source`` is ``"<name>:<model>"``, ``method`` the model.
    """
    check_frame(forecast, name="forecast")
    check_columns(forecast, ["unique_id", "ds"], name="forecast")
    if models is None:
        models = [c for c in forecast.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c
                  and pd.api.types.is_numeric_dtype(forecast[c])]
    parts = []
    for m in models:
        parts.append(pd.DataFrame({"source": f"{name}:{m}", "method": m, "owner": owner,
                                   "created_at": pd.Timestamp(created_at) if created_at is not None else pd.NaT,
                                   "level": level, "key": forecast["unique_id"].astype("str").to_numpy(),
                                   "ds": pd.to_datetime(forecast["ds"]).dt.to_period("M").dt.start_time.to_numpy(),
                                   "value": forecast[m].astype(float).to_numpy()}))
    return pd.concat(parts, ignore_index=True)[_RECORD_COLUMNS]


def _complete_months_end(tx: pd.DataFrame) -> pd.Timestamp:
    last = pd.to_datetime(tx["order_date"]).max().normalize()
    month_end = last + pd.offsets.MonthEnd(0)
    # a month counts once the data reaches its last day
    return last.to_period("M").start_time if last == month_end else last.to_period("M").start_time - pd.DateOffset(months=1)


def accuracy_history(
    records: pd.DataFrame,
    tx: pd.DataFrame,
    *,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """Every saved plan or forecast scored against the actuals, month by month as they arrive.

    Only complete months with actuals count (up to ``as_of``, default the
    last complete month of ``tx``), and only months from the record's
    creation month on (a plan made after the fact is not a forecast).

    Parameters
    ----------
    records : DataFrame
        From :func:`plan_records` / :func:`forecast_records` (concatenated).

    Returns
    -------
    DataFrame
        One row per source, unit and month scored: ``source``, ``method``,
        ``owner``, ``level``, ``key``, ``as_of`` (month), ``months`` (scored so far),
        ``value`` and ``actual`` (the month), ``error`` (value - actual),
        ``cum_value``, ``cum_actual``, ``wape`` (cumulative sum of absolute
        errors / sum of actuals), ``bias`` (cumulative sum of errors / sum of
        actuals; positive: over-forecast).
    """
    check_frame(records, name="records")
    check_columns(records, ["source", "level", "key", "ds", "value"], name="records",
                  hint="Build records with plan_records or forecast_records.")
    from salesplan.targets import metric_panel

    last = pd.Timestamp(as_of).to_period("M").start_time if as_of is not None else _complete_months_end(tx)
    rec = records.assign(ds=pd.to_datetime(records["ds"]))
    if "method" not in rec:
        rec["method"] = rec["source"]
    if "owner" not in rec:
        rec["owner"] = None
    if "created_at" in rec:
        made = pd.to_datetime(rec["created_at"]).dt.to_period("M").dt.start_time
        rec = rec[made.isna() | (rec["ds"] >= made)]
    rec = rec[rec["ds"] <= last]
    parts = []
    for level, sub in rec.groupby("level", sort=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SalesplanWarning)
            panel = metric_panel(tx, level=level, metric="revenue", reps=reps, customers=customers)
        act = panel.rename(columns={"unique_id": "key", "y": "actual"})
        parts.append(sub.merge(act, on=["key", "ds"], how="inner"))
    cols = ["source", "method", "owner", "level", "key", "as_of", "months", "value", "actual", "error", "cum_value",
            "cum_actual", "wape", "bias"]
    if not parts or not sum(len(p) for p in parts):
        return pd.DataFrame(columns=cols)
    m = pd.concat(parts, ignore_index=True).sort_values(["source", "level", "key", "ds"], ignore_index=True)
    m["error"] = m["value"] - m["actual"]
    g = m.groupby(["source", "level", "key"], sort=False)
    m["months"] = g.cumcount() + 1
    m["cum_value"] = g["value"].cumsum()
    m["cum_actual"] = g["actual"].cumsum()
    cum_abs = m["error"].abs().groupby([m["source"], m["level"], m["key"]]).cumsum()
    cum_err = g["error"].cumsum()
    den = m["cum_actual"].where(m["cum_actual"] != 0)
    m["wape"] = cum_abs / den
    m["bias"] = cum_err / den
    return m.rename(columns={"ds": "as_of"})[cols]


def accuracy_summary(history: pd.DataFrame, *, by: str | Sequence[str] = ("source", "method", "owner")
                     ) -> pd.DataFrame:
    """Whose forecasts to trust: accuracy and bias over the whole history per source (or per unit).

    Returns
    -------
    DataFrame
        ``by`` columns, ``units``, ``months``, ``value``, ``actual``, ``wape``
        (sum |error| / sum actual), ``bias`` (sum error / sum actual), ``rank``
        (1 = most accurate), sorted by rank.
    """
    check_frame(history, name="history", min_rows=0)
    by_l = [by] if isinstance(by, str) else list(by)
    h = history.assign(abs_error=history["error"].abs())
    g = h.groupby(by_l, sort=True, dropna=False).agg(units=("key", "nunique"), months=("as_of", "nunique"),
                                       value=("value", "sum"), actual=("actual", "sum"),
                                       abs_error=("abs_error", "sum"), error=("error", "sum")).reset_index()
    den = g["actual"].where(g["actual"] != 0)
    g["wape"], g["bias"] = g["abs_error"] / den, g["error"] / den
    g = g.drop(columns=["abs_error", "error"]).sort_values("wape", ignore_index=True)
    g["rank"] = np.arange(1, len(g) + 1)
    return g


# --------------------------------------------------------------------------- after-sales


def customer_owners(tx: pd.DataFrame, *, months: int = 12) -> pd.DataFrame:
    """Each customer's owner: the rep with most revenue from them in the last ``months`` (else ever).

    Returns
    -------
    DataFrame
        ``customer_id``, ``owner``.
    """
    check_frame(tx, name="tx")
    check_columns(tx, ["order_date", "customer_id", "revenue", "rep_id"], name="tx")
    d = pd.to_datetime(tx["order_date"])
    recent = tx[d > d.max() - pd.DateOffset(months=months)]
    parts = []
    for frame in (recent, tx):
        g = frame.groupby(["customer_id", "rep_id"], observed=True)["revenue"].sum().reset_index()
        g = g.sort_values(["customer_id", "revenue", "rep_id"], ascending=[True, False, True])
        parts.append(g.drop_duplicates("customer_id")[["customer_id", "rep_id"]])
    out = pd.concat(parts).drop_duplicates("customer_id").rename(columns={"rep_id": "owner"})
    return out.astype({"customer_id": "str", "owner": "str"}).sort_values("customer_id", ignore_index=True)


def _feedback(feedback: pd.DataFrame) -> pd.DataFrame:
    check_frame(feedback, name="feedback", min_rows=0)
    check_columns(feedback, ["customer_id", "date"], name="feedback")
    f = feedback.copy()
    f["date"] = check_dates(f["date"], name="feedback['date']")
    if "resolved_at" in f:
        f["resolved_at"] = check_dates(f["resolved_at"], name="feedback['resolved_at']")
    f["customer_id"] = f["customer_id"].astype("str")
    return f


def satisfaction_trend(
    feedback: pd.DataFrame,
    *,
    by: str | None = "segment",
    tx: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    freq: str = "QS",
) -> pd.DataFrame:
    """Satisfaction per period, overall or by segment, region or rep (the account owner).

    Parameters
    ----------
    by : str or None
        ``"segment"``/``"region"``/``"industry"`` (from ``customers``), ``"owner"``
        or ``"rep_id"`` (the owner, from ``tx``), or a column of ``feedback``.
    freq : str
        ``"MS"`` or ``"QS"`` (period starts).

    Returns
    -------
    DataFrame
        ``by`` column (when given), ``ds``, ``responses``, ``satisfaction``
        (mean score), ``change`` (against the previous period of the same group).
    """
    f = _feedback(feedback)
    check_columns(f, ["satisfaction"], name="feedback")
    f = f[f["satisfaction"].notna()]
    if by is not None and by not in f.columns:
        if by in ("owner", "rep_id"):
            if tx is None:
                raise SalesplanError(f"satisfaction by {by!r} needs tx= to find each customer's owner.")
            f = f.merge(customer_owners(tx).rename(columns={"owner": by}), on="customer_id", how="left")
        else:
            if customers is None or by not in customers.columns:
                raise SalesplanError(f"satisfaction by {by!r} needs customers= with a {by!r} column "
                                     f"(or a {by!r} column in feedback).")
            f = f.merge(customers[["customer_id", by]].astype({"customer_id": "str"}), on="customer_id", how="left")
        f[by] = f[by].astype("object").fillna("unknown")
    pfreq = {"MS": "M", "QS": "Q", "M": "M", "Q": "Q"}.get(freq)
    if pfreq is None:
        raise SalesplanError(f"freq must be 'MS' or 'QS', got {freq!r}.")
    f["ds"] = f["date"].dt.to_period(pfreq).dt.start_time
    keys = ([by] if by else []) + ["ds"]
    g = f.groupby(keys, sort=True).agg(responses=("satisfaction", "size"), satisfaction=("satisfaction", "mean"))
    g = g.reset_index()
    g["change"] = g.groupby(by)["satisfaction"].diff() if by else g["satisfaction"].diff()
    return g


def ticket_stats(
    feedback: pd.DataFrame,
    *,
    freq: str = "MS",
    as_of: Any = None,
    stale_days: int = 14,
) -> pd.DataFrame:
    """Tickets per period: opened, resolved, resolution times and the backlog at the period's end.

    A ticket is a feedback row with a ``ticket_id``; it is open until
    ``resolved_at`` (missing: still open).

    Returns
    -------
    DataFrame
        ``ds``, ``opened``, ``resolved``, ``median_resolution_days`` and
        ``p90_resolution_days`` (of tickets resolved in the period),
        ``backlog`` (open at the period's end, or at ``as_of`` for the last
        period), ``backlog_stale`` (of those, open longer than ``stale_days``).
    """
    f = _feedback(feedback)
    check_columns(f, ["ticket_id", "resolved_at"], name="feedback")
    t = f[f["ticket_id"].notna()]
    pfreq = {"MS": "M", "QS": "Q", "M": "M", "Q": "Q"}.get(freq)
    if pfreq is None:
        raise SalesplanError(f"freq must be 'MS' or 'QS', got {freq!r}.")
    if t.empty:
        return pd.DataFrame(columns=["ds", "opened", "resolved", "median_resolution_days", "p90_resolution_days",
                                     "backlog", "backlog_stale"])
    as_of = pd.Timestamp(as_of) if as_of is not None else max(t["date"].max(), t["resolved_at"].max())
    periods = pd.period_range(t["date"].min(), as_of, freq=pfreq)
    days = (t["resolved_at"] - t["date"]).dt.total_seconds() / 86400
    op = t["date"].dt.to_period(pfreq)
    rs = t["resolved_at"].dt.to_period(pfreq)
    rows = []
    for p in periods:
        end = min(p.end_time, as_of + pd.Timedelta(days=1) - pd.Timedelta(nanoseconds=1))
        res_here = days[rs == p]
        open_at_end = (t["date"] <= end) & (t["resolved_at"].isna() | (t["resolved_at"] > end))
        age = (end - t["date"]).dt.days
        rows.append({"ds": p.start_time, "opened": int((op == p).sum()), "resolved": int((rs == p).sum()),
                     "median_resolution_days": float(res_here.median()) if len(res_here) else np.nan,
                     "p90_resolution_days": float(res_here.quantile(0.9)) if len(res_here) else np.nan,
                     "backlog": int(open_at_end.sum()), "backlog_stale": int((open_at_end & (age > stale_days)).sum())})
    return pd.DataFrame(rows)


def customers_at_risk(
    tx: pd.DataFrame,
    *,
    feedback: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: Any = None,
    alive_below: float = 0.5,
    satisfaction_drop: float = 1.0,
    stale_days: int = 14,
    months: int = 12,
    all_customers: bool = False,
) -> pd.DataFrame:
    """Customers at risk, with the revenue at stake and an owner.

    A customer is at risk when any of these holds at ``as_of`` (default the
    last order date):

    - the BG/NBD model (:class:`salesplan.segments.clv.BetaGeo`, fitted on
      weekly purchases up to ``as_of``) gives a probability of still being
      alive below ``alive_below``;
    - satisfaction fell: the latest score is at least ``satisfaction_drop``
      below the mean of the customer's earlier scores;
    - a ticket has been open longer than ``stale_days``.

    Revenue at stake is the customer's revenue in the last ``months``
    months; the owner is the rep with most of it (:func:`customer_owners`).

    Returns
    -------
    DataFrame
        At-risk customers (all with ``all_customers=True``), revenue at stake
        first: ``customer_id``, ``owner``, ``segment`` and ``region`` (when
        ``customers`` has them), ``probability_alive``,
        ``satisfaction_last``, ``satisfaction_change``, ``open_tickets``,
        ``oldest_open_days``, ``revenue_at_stake``, ``reasons`` (plain words),
        ``at_risk``.
    """
    from salesplan.segments.clv import BetaGeo, summary_from_transactions

    check_frame(tx, name="tx")
    check_columns(tx, ["order_date", "customer_id", "revenue"], name="tx")
    dates = pd.to_datetime(tx["order_date"])
    as_of = pd.Timestamp(as_of).normalize() if as_of is not None else dates.max().normalize()
    hist = tx[dates <= as_of + pd.Timedelta(days=1) - pd.Timedelta(nanoseconds=1)]
    summ = summary_from_transactions(hist, calibration_end=as_of, freq="W", value_col=None)
    model = BetaGeo(penalizer=0.001).fit(summ)
    alive = model.probability_alive(summ)[["customer_id", "probability_alive"]]
    alive["customer_id"] = alive["customer_id"].astype("str")
    recent = hist[pd.to_datetime(hist["order_date"]) > as_of - pd.DateOffset(months=months)]
    stake = recent.groupby(recent["customer_id"].astype("str"))["revenue"].sum().rename("revenue_at_stake")
    out = alive.merge(stake, left_on="customer_id", right_index=True, how="left")
    out["revenue_at_stake"] = out["revenue_at_stake"].fillna(0.0)
    if "rep_id" in hist.columns:
        out = out.merge(customer_owners(hist, months=months), on="customer_id", how="left")
    else:
        out["owner"] = None
    out["satisfaction_last"] = np.nan
    out["satisfaction_change"] = np.nan
    out["open_tickets"] = 0
    out["oldest_open_days"] = np.nan
    if feedback is not None:
        f = _feedback(feedback)
        f = f[f["date"] <= as_of + pd.Timedelta(days=1)]
        if "satisfaction" in f:
            s = f[f["satisfaction"].notna()].sort_values(["customer_id", "date"])
            last = s.groupby("customer_id")["satisfaction"].last()
            n = s.groupby("customer_id")["satisfaction"].size()
            earlier = (s.groupby("customer_id")["satisfaction"].sum() - last) / (n - 1).where(n > 1)
            out["satisfaction_last"] = out["customer_id"].map(last)
            out["satisfaction_change"] = out["customer_id"].map(last - earlier)
        if {"ticket_id", "resolved_at"} <= set(f.columns):
            t = f[f["ticket_id"].notna() & (f["resolved_at"].isna() | (f["resolved_at"] > as_of))]
            out["open_tickets"] = out["customer_id"].map(t.groupby("customer_id").size()).fillna(0).astype(int)
            out["oldest_open_days"] = out["customer_id"].map((as_of - t.groupby("customer_id")["date"].min()).dt.days)
    if customers is not None:
        extra = [c for c in ("segment", "region") if c in customers.columns]
        if extra:
            out = out.merge(customers[["customer_id", *extra]].astype({"customer_id": "str"}), on="customer_id",
                            how="left")
    low = out["probability_alive"] < alive_below
    fell = out["satisfaction_change"] <= -satisfaction_drop
    stale = out["oldest_open_days"] > stale_days
    reasons = []
    for lo, fa, st, r in zip(low, fell, stale, out.itertuples()):
        words = []
        if lo:
            words.append(f"{r.probability_alive:.0%} likely still buying")
        if fa:
            words.append(f"satisfaction down {-r.satisfaction_change:.1f} to {r.satisfaction_last:.0f}")
        if st:
            words.append(f"{r.open_tickets} ticket(s) open, oldest {r.oldest_open_days:.0f} days")
        reasons.append("; ".join(words))
    out["reasons"] = reasons
    out["at_risk"] = low | fell | stale
    if not all_customers:
        out = out[out["at_risk"]]
    cols = ["customer_id", "owner", *[c for c in ("segment", "region") if c in out.columns], "probability_alive",
            "satisfaction_last", "satisfaction_change", "open_tickets", "oldest_open_days", "revenue_at_stake",
            "reasons", "at_risk"]
    return out[cols].sort_values(["revenue_at_stake", "customer_id"], ascending=[False, True], ignore_index=True)
