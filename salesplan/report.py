"""The review of a period as a report: one self-contained HTML page or an Excel workbook.

:func:`build_review` runs the whole review of a period on a set of tables
(:func:`salesplan.io.load_data`): KPIs against target, the variance bridge
(price, volume, mix), the ranked problem list with corrective SMART targets,
payouts under a commission plan, accounts at risk, accuracy of the targets,
tickets and satisfaction. A section whose tables or columns are absent is
not an error: the report says in one sentence what to add.
:func:`write_report` writes it as ``.html`` (inline CSS and SVG charts, no
script, works offline) or ``.xlsx`` (one sheet per section, numbers kept as
numbers with their formats). ``salesplan review`` is the same from the
command line, meant to run on a schedule.

>>> plan = load_plan(None)
>>> plan.name, plan.base_rate, plan.gate
('standard', 0.05, 0.5)
"""

from __future__ import annotations

import html
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesplan import __version__
from salesplan import format as fmt
from salesplan.errors import SalesplanDataError, SalesplanError, SalesplanWarning
from salesplan.incentives import CommissionPlan, outcomes_from_history, payouts
from salesplan.pipeline.drivers import driver_level, pipeline_drivers
from salesplan.review import (
    ReviewInputs,
    ReviewWindow,
    accuracy_history,
    accuracy_summary,
    customers_at_risk,
    kpis,
    plan_records,
    plan_vs_actual,
    problem_list,
    review_window,
    satisfaction_trend,
    ticket_stats,
)

__all__ = [
    "DEFAULT_PLAN",
    "SECTIONS",
    "ReviewReport",
    "load_plan",
    "default_period",
    "build_review",
    "bridge",
    "driver_bridge",
    "waterfall_svg",
    "bars_svg",
    "report_html",
    "write_report",
]

#: The commission plan used when none is given: 5 % of credited revenue per
#: quarter, nothing below the 50 % gate, 1.5x on revenue above quota, nothing on
#: revenue beyond 200 % of quota.
DEFAULT_PLAN: dict[str, Any] = {
    "name": "standard",
    "base_rate": 0.05,
    "tiers": [{"from": 0.0, "multiplier": 1.0}, {"from": 1.0, "multiplier": 1.5}],
    "gate": 0.5,
    "cap": {"attainment": 2.0},
    "period": "quarter",
}

#: Report sections in the order they are shown, with their headings.
SECTIONS: dict[str, str] = {
    "kpis": "KPIs against target",
    "variance": "Plan versus actual: price, volume and mix",
    "problems": "Problems, ranked by revenue impact, with corrective targets",
    "pipeline": "Pipeline drivers: why won revenue moved against the previous period",
    "payouts": "Payouts",
    "at_risk": "Accounts at risk",
    "accuracy": "Accuracy of the targets",
    "tickets": "Tickets: resolution and backlog",
    "satisfaction": "Satisfaction by segment",
}

_KINDS: dict[str, dict[str, str]] = {
    "kpis": {"target": "money", "actual": "money", "gap": "money", "attainment": "percent",
             "elapsed": "percent", "pace": "percent"},
    "variance": {"attainment": "percent", "variance": "money", "plan": "money", "actual": "money"},
    "problems": {"rank": "count", "impact": "money", "expected_gain": "money", "probability": "percent"},
    "payouts": {"attainment": "percent", "quota_relief": "money"},
    "pipeline": {"effect": "money"},
    "at_risk": {"probability_alive": "percent", "satisfaction_last": "number",
                "satisfaction_change": "number", "open_tickets": "count", "oldest_open_days": "count"},
    "accuracy": {"units": "count", "months": "count", "wape": "percent", "bias": "percent", "value": "money"},
    "tickets": {"median_resolution_days": "number", "p90_resolution_days": "number", "backlog": "count",
                "backlog_stale": "count", "opened": "count", "resolved": "count"},
    "satisfaction": {"responses": "count", "satisfaction": "number", "change": "number"},
}

# What a person reads of each section (the rest stays in the workbook).
_SHOWN: dict[str, list[str]] = {
    "problems": ["rank", "key", "owner", "problem", "action", "impact", "probability"],
    "at_risk": ["customer_id", "owner", "segment", "region", "revenue_at_stake", "probability_alive",
                "reasons"],
    "pipeline": ["key", "driver", "step", "reference", "current", "effect"],
    "payouts": ["rep_id", "period", "quota", "revenue", "attainment", "tier", "commission", "spiff", "payout"],
}


@dataclass
class ReviewReport:
    """The review of one period: its frames by section, and a sentence for each section left out.

    Attributes
    ----------
    window : ReviewWindow
        The period reviewed.
    tables : dict of DataFrame
        Sections computed, by name (see :data:`SECTIONS`), raw numbers.
    notes : dict of str
        Sections not computed, by name: what to add to see them, or what
        was wrong with the data.
    plan : CommissionPlan or None
        The commission plan the payouts use.
    """

    window: ReviewWindow
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    plan: CommissionPlan | None = None

    def summary(self) -> pd.DataFrame:
        """The headline numbers: ``measure``, ``value`` (text as a person reads it)."""
        rows: list[tuple[str, str]] = [("period", self.window.label)]
        k = self.tables.get("kpis")
        if k is not None and len(k):
            top = k.iloc[0]
            rows += [(f"revenue ({top['level']} {top['key']})", fmt.money(top["actual"])),
                     ("target", fmt.money(top["target"])), ("attainment", fmt.percent(top["attainment"])),
                     ("units below target", f"{int((k['gap'] < 0).sum())} of {len(k)}")]
        p = self.tables.get("problems")
        if p is not None:
            rows.append(("problems found", fmt.count(len(p))))
        pay = self.tables.get("payouts")
        if pay is not None:
            rows.append(("total payout", fmt.money(pay["payout"].sum())))
        r = self.tables.get("at_risk")
        if r is not None:
            rows += [("accounts at risk", fmt.count(len(r))),
                     ("revenue at stake", fmt.money(r["revenue_at_stake"].sum()))]
        return pd.DataFrame(rows, columns=["measure", "value"])


def load_plan(plan: Any = None) -> CommissionPlan:
    """A commission plan from a ``.yaml``/``.yml``/``.json`` file, a dict, a plan, or ``None``.

    ``None`` gives :data:`DEFAULT_PLAN`.
    """
    if plan is None:
        return CommissionPlan.from_dict(DEFAULT_PLAN)
    if isinstance(plan, CommissionPlan):
        return plan
    if isinstance(plan, Mapping):
        return CommissionPlan.from_dict(plan)
    path = Path(plan)
    if not path.exists():
        raise SalesplanError(f"commission plan file {str(path)!r} not found; give a .yaml, .yml or .json file.")
    if path.suffix.lower() in (".yaml", ".yml"):
        return CommissionPlan.from_yaml(path)
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SalesplanError(f"commission plan {path.name}: not valid JSON at line {exc.lineno}, "
                                 f"column {exc.colno}: {exc.msg}.") from None
        return CommissionPlan.from_dict(doc)
    raise SalesplanError(f"commission plan {path.name}: unknown format {path.suffix!r}; use .yaml, .yml or .json.")


def default_period(data: Mapping[str, pd.DataFrame | None]) -> str:
    """The quarter to review: the last quarter with orders that has targets (or the last with orders).

    >>> tx = pd.DataFrame({"order_date": pd.to_datetime(["2024-02-01", "2024-11-20"]), "revenue": [1.0, 2.0]})
    >>> default_period({"transactions": tx})
    '2024-Q4'
    """
    tx = data.get("transactions")
    if tx is None or len(tx) == 0:
        raise SalesplanDataError("the review needs a non-empty 'transactions' table; "
                                 f"tables found: {sorted(k for k, v in data.items() if v is not None)}.")
    last = pd.Period(pd.to_datetime(tx["order_date"]).max(), freq="Q")
    targets = data.get("targets")
    if targets is not None and len(targets) and {"period", "metric"} <= set(targets.columns):
        t = targets[targets["metric"].astype("str") == "revenue"]
        quarters = pd.to_datetime(t["period"]).dt.to_period("Q")
        covered = quarters[quarters <= last]
        if len(covered):
            last = covered.max()
    return f"{last.year}-Q{last.quarter}"


def _needs(data: Mapping[str, pd.DataFrame | None], tables: Sequence[str] = (), columns: Sequence[str] = (),
           to: str = "") -> str:
    """A sentence saying what to add, or ``""`` when the data has it."""
    absent = [t for t in tables if data.get(t) is None or len(data[t]) == 0]
    if absent:
        names = " and ".join(f"{'an' if t[0] in 'aeiou' else 'a'} `{t}` table" for t in absent)
        return f"Add {names} to see {to}."
    tx = data["transactions"]
    cols = [c for c in columns if c not in tx.columns or not tx[c].notna().any()]
    if cols:
        names = " and ".join(f"`{c}`" for c in cols)
        return f"Add {names} column{'s' if len(cols) > 1 else ''} to the transactions to see {to}."
    return ""


def build_review(
    data: Mapping[str, pd.DataFrame | None],
    *,
    period: Any = None,
    plan: Any = None,
    samples: pd.DataFrame | bool | None = None,
    level: str = "region",
    by: str = "product_id",
    sources: Sequence[str | Callable[[ReviewInputs], pd.DataFrame]] | None = None,
    top: int = 10,
    extra: Mapping[str, Any] | None = None,
) -> ReviewReport:
    """Run the review of a period, every section the data allows.

    Parameters
    ----------
    data : mapping of frames
        Tables by name (:func:`salesplan.io.load_data`); only
        ``transactions`` is required.
    period : str, tuple or ReviewWindow, optional
        The period (``"2025-Q4"``); default :func:`default_period`.
    plan : CommissionPlan, dict or path, optional
        The commission plan for the payouts (:func:`load_plan`; default
        :data:`DEFAULT_PLAN`).
    samples : DataFrame, optional
        Sample paths of the units of ``level`` (``unique_id, [ds,] sample,
        y``) over the next period: the probability of each corrective
        target. Default: each unit's revenue drawn from its last 8 periods
        like the reviewed one (:func:`salesplan.incentives.outcomes_from_history`);
        pass ``False`` for none.
    sources : sequence, optional
        Problem sources (:func:`salesplan.review.problem_list`); default
        ``price_volume_mix``, plus ``pipeline_drivers``
        (:mod:`salesplan.pipeline.drivers`) when there are opportunities.
    level, by, top, extra
        As in :func:`salesplan.review.review_tables`.

    Returns
    -------
    ReviewReport
        ``tables`` holds the sections computed (the frames of
        :func:`salesplan.review.review_tables`; ``payouts`` for the period;
        ``pipeline`` from :func:`salesplan.pipeline.drivers.pipeline_drivers`),
        ``notes`` one sentence per section left out; with targets also
        ``accuracy_history`` (:func:`salesplan.review.accuracy_history`,
        month by month).
    """
    tx = data.get("transactions")
    if tx is None or len(tx) == 0:
        raise SalesplanDataError("the review needs a non-empty 'transactions' table; "
                                 f"tables found: {sorted(k for k, v in data.items() if v is not None)}.")
    w = review_window(period if period is not None else default_period(data))
    dates = pd.to_datetime(tx["order_date"])
    if dates.max() < w.start or dates.min() > w.end:
        raise SalesplanDataError(f"the transactions have no orders in {w.label} ({w.start:%Y-%m-%d} to "
                                 f"{w.end:%Y-%m-%d}); they run from {dates.min():%Y-%m-%d} to "
                                 f"{dates.max():%Y-%m-%d}. Pick a period inside that range.")
    plan_ = load_plan(plan)
    targets, reps, customers, feedback = (data.get(k) for k in ("targets", "reps", "customers", "feedback"))
    report = ReviewReport(window=w, plan=plan_)
    qty = "quantity" if "quantity" in tx.columns else "unit_price"
    unit_col = {"region": "region", "rep": "rep_id", "product": "product_id", "channel": "channel"}.get(level)

    def section(name: str, lack: str, compute: Callable[[], pd.DataFrame | None]) -> None:
        if lack:
            report.notes[name] = lack
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SalesplanWarning)
                got = compute()
        except SalesplanError as exc:
            report.notes[name] = f"Not shown: {exc}"
            return
        except Exception as exc:  # noqa: BLE001 - one section's failure must not cost the whole report
            report.notes[name] = (f"Not shown: unexpected {type(exc).__name__} ({exc}); the other sections are "
                                  "complete. Please report it with the data's shape.")
            return
        if got is not None:
            report.tables[name] = got

    section("kpis", _needs(data, ["targets"], to="KPIs against target"),
            lambda: kpis(tx, targets, period=w, reps=reps, customers=customers))
    pvm_cols = [c for c in (by, qty, unit_col) if c]
    section("variance", _needs(data, ["targets"], pvm_cols, to="the variance split into price, volume and mix"),
            lambda: plan_vs_actual(tx, targets, period=w, level=level, by=by, reps=reps, customers=customers))
    opps = data.get("opportunities")
    extra = dict(extra or {})
    if opps is not None and len(opps):
        extra.setdefault("opportunities", opps)
        extra.setdefault("stage_history", data.get("stage_history"))
    if sources is None:
        sources = ("price_volume_mix", "pipeline_drivers") if "opportunities" in extra else ("price_volume_mix",)
    if samples is None and unit_col is not None and unit_col in tx.columns and w.freq in ("M", "Q", "Y"):
        # the chance of a corrective target: the next period drawn from the unit's recent ones
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SalesplanWarning)
            try:
                samples = outcomes_from_history(tx, by=unit_col, period={"M": "month", "Q": "quarter",
                                                                         "Y": "year"}[w.freq],
                                                before=w.next().start, n_samples=1000)
            except SalesplanError:
                samples = None
    inputs = ReviewInputs(tx, targets, w, level=level, by=by, samples=samples if samples is not False else None,
                          reps=reps, customers=customers, feedback=feedback, extra=extra)
    lack_pvm = _needs(data, ["targets"], pvm_cols, to="the ranked problems with corrective targets")
    if lack_pvm and "opportunities" in extra:
        # without targets the pipeline still explains what moved
        pipe_only = [s for s in sources if s != "price_volume_mix"]
        section("problems", "" if pipe_only else lack_pvm,
                lambda: problem_list(inputs, sources=pipe_only, top=top))
        if "problems" in report.tables:
            report.notes["problems"] = (lack_pvm.replace(" to see the ranked problems with corrective targets",
                                                         " to see the gaps against target among them")
                                        + " The problems below come from the pipeline alone.")
    else:
        section("problems", lack_pvm, lambda: problem_list(inputs, sources=sources, top=top))
    pipe_level = driver_level(opps, level, reps) if opps is not None and len(opps) else level
    section("pipeline", _needs(data, ["opportunities"], to="why won revenue moved (deals created, conversion, "
                               "deal size, cycles, slipped close dates)"),
            lambda: pipeline_drivers(opps, data.get("stage_history"), period=w, level=pipe_level, reps=reps))
    section("payouts", _needs(data, ["targets"], ["rep_id"], to="commission payouts"),
            lambda: payouts(tx, targets, plan_, start=w.start, end=w.end))
    section("at_risk", _needs(data, columns=["customer_id"], to="the accounts at risk"),
            lambda: customers_at_risk(tx, feedback=feedback, customers=customers,
                                      as_of=min(w.end, dates.max())))

    def accuracy() -> pd.DataFrame:
        history = accuracy_history(plan_records(targets), tx, reps=reps, customers=customers, as_of=w.end)
        report.tables["accuracy_history"] = history
        return accuracy_summary(history, by=["level", "key"])

    section("accuracy", _needs(data, ["targets"], to="how accurate the targets were"), accuracy)
    tick = _needs(data, ["feedback"], to="ticket resolution times and the backlog")
    if not tick and not {"ticket_id", "resolved_at"} <= set(feedback.columns):
        tick = "Add `ticket_id` and `resolved_at` columns to the feedback table to see ticket resolution times."
    section("tickets", tick, lambda: ticket_stats(feedback, as_of=w.end))
    sat = _needs(data, ["feedback", "customers"], to="satisfaction by segment")
    if not sat and not ("satisfaction" in feedback.columns and "segment" in customers.columns):
        sat = "Add a `satisfaction` column to the feedback and a `segment` to the customers to see its trend."
    section("satisfaction", sat, lambda: satisfaction_trend(feedback, by="segment", customers=customers))
    return report


# --------------------------------------------------------------------------- charts (inline SVG)

_STEPS = [("price_effect", "price"), ("volume_effect", "volume"), ("mix_effect", "mix"),
          ("new_effect", "new items"), ("lost_effect", "lost items"), ("other_effect", "other")]


def bridge(variance: pd.DataFrame, *, key: str | None = None) -> pd.DataFrame:
    """The steps of the variance bridge from plan to actual, summed over units (or for one unit).

    >>> v = pd.DataFrame({"key": ["East"], "plan": [100.0], "actual": [90.0], "price_effect": [-4.0],
    ...                   "volume_effect": [-8.0], "mix_effect": [2.0], "new_effect": [0.0],
    ...                   "lost_effect": [0.0], "other_effect": [0.0]})
    >>> bridge(v)["value"].tolist()
    [100.0, -4.0, -8.0, 2.0, 90.0]

    Returns
    -------
    DataFrame
        ``step``, ``value``, ``kind`` (``"total"`` for plan and actual, else
        ``"change"``); the changes add up to actual - plan. Zero steps other
        than price, volume and mix are left out.
    """
    v = variance if key is None else variance[variance["key"].astype("str") == str(key)]
    rows = [("plan", float(v["plan"].sum()), "total")]
    for col, label in _STEPS:
        val = float(v[col].sum()) if col in v.columns else 0.0
        if val != 0.0 or label in ("price", "volume", "mix"):
            rows.append((label, val, "change"))
    rows.append(("actual", float(v["actual"].sum()), "total"))
    return pd.DataFrame(rows, columns=["step", "value", "kind"])


def driver_bridge(drivers: pd.DataFrame, *, key: str | None = None) -> pd.DataFrame:
    """The steps from the reference period's won revenue to the period's, by pipeline driver (conversions summed).

    Returns
    -------
    DataFrame
        ``step``, ``value``, ``kind`` as :func:`bridge`.
    """
    d = drivers if key is None else drivers[drivers["key"].astype("str") == str(key)]
    first = d.groupby("key").first()
    rows = [("before", float(first["revenue_reference"].sum()), "total")]
    for driver, e in d.groupby("driver", sort=False)["effect"].sum().items():
        if driver != "other" or abs(e) > 0.5:
            rows.append((driver, float(e), "change"))
    rows.append(("now", float(first["revenue_current"].sum()), "total"))
    return pd.DataFrame(rows, columns=["step", "value", "kind"])


def waterfall_svg(steps: pd.DataFrame, *, width: int = 640, height: int = 260, title: str = "") -> str:
    """A waterfall chart of :func:`bridge` as inline SVG (no script)."""
    vals = steps["value"].to_numpy(float)
    kinds = steps["kind"].tolist()
    tops, bottoms, level = [], [], 0.0
    for v, k in zip(vals, kinds):
        if k == "total":
            lo, hi, level = 0.0, v, v
        else:
            lo, hi = sorted((level, level + v))
            level += v
        bottoms.append(lo)
        tops.append(hi)
    vmin, vmax = min(0.0, *bottoms), max(0.0, *tops)
    totals = [v for v, k in zip(vals, kinds) if k == "total"]
    if totals and min(totals) > 0:
        # a bridge is read at the scale of its changes: the axis starts below the lowest level reached
        low = min(min(totals), *(b for b, k in zip(bottoms, kinds) if k == "change"))
        vmin = max(0.0, low - (vmax - low) * 1.5)
    span = (vmax - vmin) or 1.0
    left, bottom_pad, top_pad = 10, 40, 24
    n = len(vals)
    bw = (width - 2 * left) / max(n, 1)
    y = lambda v: top_pad + (height - top_pad - bottom_pad) * (vmax - v) / span  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title or "waterfall")}" style="font:11px sans-serif">']
    if title:
        parts.append(f'<text x="{left}" y="14" font-weight="bold">{html.escape(title)}</text>')
    for i, (v, k) in enumerate(zip(vals, kinds)):
        lo, hi = max(bottoms[i], vmin), tops[i]
        color = "#5b7c99" if k == "total" else ("#2e8b57" if v >= 0 else "#c0392b")
        x = left + i * bw + bw * 0.15
        parts.append(f'<rect x="{x:.1f}" y="{y(hi):.1f}" width="{bw * 0.7:.1f}" '
                     f'height="{max(y(lo) - y(hi), 1):.1f}" fill="{color}"/>')
        label = fmt.money(v) if k == "total" else ("+" if v >= 0 else "") + fmt.money(v)
        parts.append(f'<text x="{x + bw * 0.35:.1f}" y="{y(hi) - 4:.1f}" text-anchor="middle">{label}</text>')
        parts.append(f'<text x="{x + bw * 0.35:.1f}" y="{height - bottom_pad + 16}" text-anchor="middle">'
                     f'{html.escape(str(steps["step"].iloc[i]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(labels: Sequence[str], values: Sequence[float], *, reference: float | None = 1.0,
             width: int = 640, bar: int = 18, title: str = "", percent: bool = True) -> str:
    """Horizontal bars as inline SVG (e.g. attainment per unit with a line at 100 %)."""
    vals = np.asarray(values, float)
    finite = vals[np.isfinite(vals)]
    vmax = max(float(finite.max()) if len(finite) else 1.0, reference or 0.0) * 1.1 or 1.0
    left, top_pad = 110, 22 if title else 4
    height = top_pad + bar * len(vals) + 6
    x = lambda v: left + (width - left - 60) * v / vmax  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title or "bars")}" style="font:11px sans-serif">']
    if title:
        parts.append(f'<text x="4" y="14" font-weight="bold">{html.escape(title)}</text>')
    for i, (lab, v) in enumerate(zip(labels, vals)):
        yy = top_pad + i * bar
        good = reference is None or (np.isfinite(v) and v >= reference)
        w = x(v if np.isfinite(v) else 0.0) - left
        parts.append(f'<text x="{left - 6}" y="{yy + bar * 0.7:.1f}" text-anchor="end">{html.escape(str(lab))}</text>')
        parts.append(f'<rect x="{left}" y="{yy + 2}" width="{max(w, 0):.1f}" height="{bar - 4}" '
                     f'fill="{"#2e8b57" if good else "#c0392b"}"/>')
        text = fmt.percent(v) if percent else fmt.money(v)
        parts.append(f'<text x="{left + max(w, 0) + 4:.1f}" y="{yy + bar * 0.7:.1f}">{text}</text>')
    if reference is not None:
        parts.append(f'<line x1="{x(reference):.1f}" x2="{x(reference):.1f}" y1="{top_pad}" y2="{height - 4}" '
                     'stroke="#333" stroke-dasharray="3,3"/>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- HTML and Excel

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:2px solid #5b7c99}
p.meta{color:#666;margin-top:0} p.note{font-style:italic;color:#7a4f01;background:#fff4e5;padding:6px 10px}
table.salesplan-table{border-collapse:collapse;font-size:12px;margin:8px 0}
table.salesplan-table td,table.salesplan-table th{padding:3px 8px;border-bottom:1px solid #ddd;vertical-align:top}
table.salesplan-table th{background:#f3f5f7;text-align:left}
nav a{margin-right:12px}
"""


def _table(name: str, df: pd.DataFrame, max_rows: int = 50) -> str:
    cols = [c for c in _SHOWN.get(name, list(df.columns)) if c in df.columns]
    shown = df[cols]
    if name == "pipeline":
        shown = shown.assign(reference=_driver_values(df, "reference"), current=_driver_values(df, "current"))
    kinds = {c: k for c, k in _KINDS.get(name, {}).items() if c in cols}
    if "period" in shown.columns or "ds" in shown.columns:
        shown = shown.copy()
        for c in ("period", "ds"):
            if c in shown.columns:
                shown[c] = pd.to_datetime(shown[c]).dt.strftime("%Y-%m-%d")
    styler = fmt.table(shown.head(max_rows), kinds=kinds).set_table_attributes('class="salesplan-table"')
    more = f"<p>({len(df) - max_rows:,} more rows in the Excel version.)</p>" if len(df) > max_rows else ""
    return styler.to_html() + more


def _driver_values(drivers: pd.DataFrame, col: str) -> list[str]:
    """Driver values as text: deals as counts, sizes as money, the rest as percentages."""
    kind = {"deals created": fmt.count, "deal size": fmt.money, "other": lambda x: ""}
    return [kind.get(d, lambda x: fmt.percent(x, decimals=0))(v) for d, v in zip(drivers["driver"], drivers[col])]


def report_html(report: ReviewReport, *, title: str = "Sales review") -> str:
    """The review as one self-contained HTML page (inline CSS, inline SVG charts, no script)."""
    w = report.window
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)} "
           f"{w.label}</title><style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(title)}: {w.label}</h1>",
           f"<p class='meta'>{w.start:%Y-%m-%d} to {w.end:%Y-%m-%d}; made "
           f"{pd.Timestamp.now():%Y-%m-%d %H:%M} with salesplan {__version__}"
           + (f"; commission plan <b>{html.escape(report.plan.name)}</b>" if report.plan is not None else "")
           + "</p>",
           "<nav>" + "".join(f"<a href='#{k}'>{v.split(':')[0].split(',')[0]}</a>" for k, v in SECTIONS.items())
           + "</nav>",
           "<h2 id='summary'>Summary</h2>", _table("summary", report.summary())]
    for name, heading in SECTIONS.items():
        out.append(f"<h2 id='{name}'>{html.escape(heading)}</h2>")
        if name in report.notes:
            out.append(f"<p class='note'>{html.escape(report.notes[name])}</p>")
            if name not in report.tables:
                continue
        df = report.tables.get(name)
        if df is None:
            continue
        if name == "kpis" and len(df):
            sub = df[df["level"] != "rep"] if (df["level"] != "rep").any() else df
            labels = [f"{lv} {k}" if lv != "company" else "company" for lv, k in zip(sub["level"], sub["key"])]
            out.append(bars_svg(labels, sub["attainment"].to_numpy(float), title="Attainment (dashed: target)"))
        if name == "variance" and len(df):
            out.append(waterfall_svg(bridge(df), title="From plan to actual, all units"))
        if name == "pipeline" and len(df):
            before = df.attrs.get("reference_period", "before")
            out.append(waterfall_svg(driver_bridge(df), title=f"Won revenue from {before} to {w.label}, all units"))
        if name == "problems" and len(df) == 0:
            out.append("<p>No unit missed its target in this period.</p>")
            continue
        if name == "payouts" and len(df):
            out.append(f"<p>Total payout {fmt.money(df['payout'].sum())} on {fmt.money(df['revenue'].sum())} "
                       f"of credited revenue ({fmt.percent(df['payout'].sum() / df['revenue'].sum())} cost of "
                       f"sales); {int((df['attainment'] >= 1).sum())} of {len(df)} reps at or above quota.</p>")
        if name == "at_risk" and len(df):
            out.append(f"<p>{fmt.count(len(df))} accounts at risk with {fmt.money(df['revenue_at_stake'].sum())} "
                       "of yearly revenue at stake; the biggest first.</p>")
        out.append(_table(name, df))
    out.append("</body></html>")
    return "\n".join(out)


def _write_xlsx(report: ReviewReport, path: Path) -> None:
    from openpyxl.utils import get_column_letter

    formats = {"money": "#,##0", "percent": "0.0%", "count": "#,##0", "number": "#,##0.00"}
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        head = report.summary()
        notes = pd.DataFrame([(SECTIONS[k], v) for k, v in report.notes.items()], columns=["section", "note"])
        head.to_excel(xl, sheet_name="summary", index=False)
        if len(notes):
            notes.to_excel(xl, sheet_name="summary", index=False, startrow=len(head) + 2)
        for name, df in report.tables.items():
            df = df.copy()
            for c in df.columns:
                if isinstance(df[c].dtype, pd.DatetimeTZDtype):
                    df[c] = df[c].dt.tz_localize(None)
            df.to_excel(xl, sheet_name=name, index=False)
            ws = xl.sheets[name]
            kinds = _KINDS.get(name, {})
            for j, c in enumerate(df.columns, start=1):
                kind = kinds.get(c) or fmt.column_kind(str(c), df[c])
                letter = get_column_letter(j)
                ws.column_dimensions[letter].width = min(60, max(10, len(str(c)) + 2))
                if kind in formats and pd.api.types.is_numeric_dtype(df[c]):
                    for cell in ws[letter][1:]:
                        cell.number_format = formats[kind]
                elif pd.api.types.is_datetime64_any_dtype(df[c]):
                    for cell in ws[letter][1:]:
                        cell.number_format = "yyyy-mm-dd"


def write_report(report: ReviewReport, path: str | Path) -> Path:
    """Write the review to ``path``: ``.html`` (self-contained page) or ``.xlsx`` (one sheet per section)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".html", ".htm"):
        p.write_text(report_html(report), encoding="utf-8")
    elif suffix == ".xlsx":
        _write_xlsx(report, p)
    else:
        raise SalesplanError(f"cannot write a review as {p.name!r}: use a .html or .xlsx file name.")
    return p
