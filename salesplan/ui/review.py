"""The review page: plans compared, the variance bridge, ranked problems, accuracy, accounts at risk.

:class:`ReviewApp` is built like the other apps: controls are attributes
(``period``, ``level``, ``unit``, ``plan_a``, ``plan_b``), one ``_update``
observer recomputes the page, ``.container`` is what the notebook shows and
``.result`` holds the frames, so the page can be checked in plain pytest::

    app = ReviewApp.from_source(None)        # the demo company
    app.plan_b.value = "accelerated"
    app.result["comparison"]                 # both plans on the same outcomes
    app.result["notes"]["problems"]          # "" or why the section is empty

The numbers come from :func:`salesplan.report.build_review` (the same review
``salesplan review`` writes) and :mod:`salesplan.incentives`; this module only
picks the rows, formats them with :mod:`salesplan.format` and lays them out.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from salesplan import format as fmt
from salesplan.errors import SalesplanDataError
from salesplan.incentives import (
    CommissionPlan,
    compare_plans,
    fairness_check,
    outcomes_from_history,
    outcomes_from_samples,
    payout_curve,
    quotas,
    simulate,
)
from salesplan.report import DEFAULT_PLAN, ReviewReport, bridge, build_review, driver_bridge, waterfall_svg
from salesplan.review import problems_table, review_window
from salesplan.ui._common import ErrorArea, PlotArea, app_from_source
from salesplan.ui._lang import Translated, option_values, relabel_options
from salesplan.ui.table import Section, Table

__all__ = ["ReviewApp", "PLANS", "SECTIONS", "ALL"]

#: The bridge choice that means "every unit of the level".
ALL = "All"

#: Plans the page offers to compare (more can be passed as ``plans=``).
PLANS: dict[str, dict[str, Any]] = {
    "standard": DEFAULT_PLAN,
    "accelerated": {"name": "accelerated", "base_rate": 0.04,
                    "tiers": [{"from": 0.0, "multiplier": 0.5}, {"from": 0.8, "multiplier": 1.0},
                              {"from": 1.0, "multiplier": 2.0}],
                    "period": "quarter"},
    "flat": {"name": "flat", "base_rate": 0.045, "period": "quarter"},
}

#: The page's sections, in order.
SECTIONS: tuple[str, ...] = ("kpis", "plans", "bridge", "problems", "drivers", "accuracy", "at_risk")

#: The section -> heading key of the catalogue (``[review]`` of ``salesplan/locale/*.toml``).
_TITLES = {s: f"review.title_{s}" for s in SECTIONS}

#: What the period dropdown shows when the data has no order.
_NO_DATA = "(no data)"

_CSS = """<style>
.salesplan-note{color:#57606a;font-size:13px;margin:2px 0 8px 0}
</style>"""


def _sentence(text: str) -> str:
    return f'<p class="salesplan-note">{html.escape(text)}</p>'


def _quarters(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Quarters with orders, latest first (those with revenue targets first when there are targets)."""
    tx = tables.get("transactions")
    if tx is None or tx.empty or "order_date" not in tx.columns:
        return []
    q = pd.to_datetime(tx["order_date"]).dt.to_period("Q").unique()
    return [f"{p.year}-Q{p.quarter}" for p in sorted(q, reverse=True)]


class ReviewApp(Translated):
    """The incentives and review page.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        The data, as :func:`salesplan.io.load_data` returns it. Only
        ``transactions`` is required; ``targets`` unlocks KPIs, the bridge,
        problems, plans and accuracy; ``customer_id`` the accounts at risk.
    period : str, optional
        Starting quarter (``"2025-Q4"``); default
        :func:`salesplan.report.default_period`.
    level : str
        Level whose gaps are explained (``"region"``, ``"rep"``...).
    plans : mapping of name to plan, optional
        Commission plans offered (default :data:`PLANS`).
    samples : DataFrame, optional
        Joint sample paths per rep (``unique_id, [ds,] sample, y``, e.g. the
        planner's ``samples`` at level ``rep``) for the plan comparison;
        default each rep's revenue drawn from its last 8 quarters
        (:func:`salesplan.incentives.outcomes_from_history`).
    n_samples : int
        Simulated quarters when no samples are given.
    lang : str, optional
        Language of the page (``"en"``, ``"zh"``); default
        :func:`salesplan.i18n.current_lang`. The switch at the top changes it.

    Attributes
    ----------
    period, level, unit, plan_a, plan_b : ipywidgets.Dropdown
        The controls; ``unit`` picks the unit of the bridge (``"All"`` first).
    lang_switch : ipywidgets.ToggleButtons
        The language of the page (see :meth:`set_lang`).
    errors : ErrorArea
        Unexpected problems, as text.
    payout_chart, curve_chart : PlotArea
        Distribution of total payout per plan; payout per attainment per plan.
    accuracy_chart : PlotArea
        Cumulative WAPE of the targets month by month, per unit above the reps.
    container : ipywidgets.VBox
        The whole page.
    result : dict
        ``review`` (the :class:`~salesplan.report.ReviewReport`), one frame
        per section of :data:`SECTIONS` (``None`` when not computed) plus
        ``comparison`` (:func:`~salesplan.incentives.compare_plans`),
        ``payout_totals`` (``plan, sample, revenue, payout,
        cost_of_sales``), ``curve`` (:func:`~salesplan.incentives.payout_curve`),
        ``fairness`` (:func:`~salesplan.incentives.fairness_check` per plan),
        ``notes`` (section -> the sentence shown instead; "" when none) and
        ``error``.
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        period: str | None = None,
        level: str = "region",
        plans: Mapping[str, Any] | None = None,
        samples: pd.DataFrame | None = None,
        n_samples: int = 2000,
        lang: str | None = None,
    ) -> None:
        self._init_lang(lang)
        self.tables = {k: v for k, v in dict(tables).items() if isinstance(v, pd.DataFrame)}
        self.plans = {str(k): (v if isinstance(v, CommissionPlan) else CommissionPlan.from_dict(v))
                      for k, v in dict(plans or PLANS).items()}
        self.samples = samples
        self.n_samples = int(n_samples)
        self.errors = ErrorArea()
        self.result: dict[str, Any] = {}
        self._reset_result()
        self._cache: dict[tuple, ReviewReport] = {}
        self._busy = False

        periods = _quarters(self.tables)
        start = period
        if start not in periods and periods:
            from salesplan.report import default_period

            start = default_period(self.tables)
        targets = self.tables.get("targets")
        levels = [lv for lv in ("region", "rep", "company", "team", "segment", "channel", "product")
                  if targets is not None and lv in set(targets["level"].astype("str"))] or [level]
        names = list(self.plans)
        self.period = widgets.Dropdown(options=periods or [_NO_DATA], value=start if periods else _NO_DATA)
        self.level = widgets.Dropdown(options=levels, value=level if level in levels else levels[0])
        self.unit = widgets.Dropdown(options=[ALL], value=ALL)
        self.plan_a = widgets.Dropdown(options=names, value=names[0])
        self.plan_b = widgets.Dropdown(options=names, value=names[min(1, len(names) - 1)])
        self.html = {s: Section(lang=self.lang) for s in SECTIONS}
        self.headings = {s: widgets.HTML() for s in SECTIONS}
        self.payout_chart = PlotArea(live=True)
        self.curve_chart = PlotArea(live=True)
        self.accuracy_chart = PlotArea(live=True)
        body: list[widgets.Widget] = [self.lang_switch, widgets.HTML(_CSS), self.errors,
                                      widgets.HBox([self.period, self.level]),
                                      widgets.HBox([self.plan_a, self.plan_b])]
        for s in SECTIONS:
            body.append(self.headings[s])
            if s == "bridge":
                body.append(self.unit)
            body.append(self.html[s])
            if s == "plans":
                body += [self.payout_chart, self.curve_chart]
            if s == "accuracy":
                body.append(self.accuracy_chart)
        self.container = widgets.VBox(body)
        self._relabel()

        if "transactions" not in self.tables:
            self.errors.show_error(self._t("review.no_transactions", tables=sorted(self.tables) or "none"))
            self.result["error"] = self.errors.message
        else:
            self._update()
        for control in (self.period, self.level, self.unit, self.plan_a, self.plan_b):
            control.observe(self._update, names="value")

    @classmethod
    def from_source(cls, data_path: str | Path | None = None, **kwargs) -> ReviewApp:
        """Load the data with :func:`salesplan.io.load_data` and build the app (errors shown in the page)."""
        from salesplan.io import load_data

        return app_from_source(cls, data_path, load_data, **kwargs)

    def show(self, section: str):
        """One section as static HTML, for a notebook printed or exported without a kernel."""
        from IPython.display import HTML

        from salesplan._validation import check_choice

        check_choice(section, SECTIONS, name="section")
        return HTML(f"<h3>{html.escape(self._t(_TITLES[section]))}</h3>" + self.html[section].value)

    # ------------------------------------------------------------------ language

    def _relabel(self) -> None:
        """Every control label and heading in the page's language."""
        for control, key in ((self.period, "period"), (self.level, "level"), (self.unit, "bridge_of"),
                             (self.plan_a, "plan_a"), (self.plan_b, "plan_b")):
            control.description = self._t(f"review.{key}")
        self._relabel_scope(no_data=(_NO_DATA, "review.no_data"), everything=(ALL, "review.all"),
                            titles=_TITLES)

    def _rerender(self) -> None:
        """The page again in its language (the review is cached; the simulations are seeded)."""
        if "transactions" in self.tables:
            self._update()
        else:
            self._resay("review.no_transactions", tables=sorted(self.tables) or "none")

    # ------------------------------------------------------------------ computing

    def _reset_result(self) -> None:
        self.result.update({s: None for s in SECTIONS})
        self.result.update({"review": None, "comparison": None, "payout_totals": None, "curve": None,
                            "fairness": None, "accuracy_history": None,
                            "notes": {s: "" for s in SECTIONS}, "error": ""})

    def _review(self) -> ReviewReport:
        key = (self.period.value, self.level.value, self.plan_a.value)
        if key not in self._cache:
            self._cache[key] = build_review(self.tables, period=self.period.value, level=self.level.value,
                                            plan=self.plans[self.plan_a.value])
        return self._cache[key]

    def _note(self, section: str, text: str) -> None:
        self.result["notes"][section] = text
        self.html[section].value = _sentence(text)

    def _update(self, change: Any = None) -> None:
        if self._busy:
            return
        self._reset_result()
        with self.errors.capture():
            review = self._review()
            self.result["review"] = review
            self._show_kpis(review)
            self._show_bridge(review)
            self._show_problems(review)
            self._show_drivers(review)
            self._show_table(review, "accuracy", "accuracy", ["level", "key", "months", "value", "actual",
                                                               "wape", "bias"],
                             self._t("review.accuracy_note"))
            self._show_table(review, "at_risk", "at_risk", ["customer_id", "owner", "segment", "region",
                                                             "revenue_at_stake", "probability_alive", "reasons"],
                             "")
            self._show_plans(review)
            self._show_accuracy_history(review)
        self.result["error"] = self.errors.message if self.errors.level == "error" else ""

    def _show_kpis(self, review: ReviewReport) -> None:
        if "kpis" in review.notes:
            return self._note("kpis", review.notes["kpis"])
        k = review.tables["kpis"]
        self.result["kpis"] = k
        from salesplan.report import bars_svg

        sub = k[k["level"] != "rep"] if (k["level"] != "rep").any() else k
        company = self._label("levels.company", "company")
        bars = bars_svg([f"{self._label(f'levels.{a}', a)} {b}" if a != "company" else company
                         for a, b in zip(sub["level"], sub["key"])],
                        sub["attainment"].to_numpy(float), title=self._t("review.attainment_bars"))
        cols = ["level", "key", "target", "actual", "gap", "attainment"]
        self.html["kpis"].show(bars, Table(
            k[cols].assign(level=k["level"].map(lambda lv: self._label(f"levels.{lv}", lv))), name="kpis",
            kinds={"attainment": "percent"}, max_rows=40, labels=self._headers(cols, key="unit")))

    def _show_bridge(self, review: ReviewReport) -> None:
        if "variance" in review.notes:
            self.unit.options = [ALL]
            return self._note("bridge", review.notes["variance"])
        v = review.tables["variance"]
        keys = [ALL, *sorted(v["key"].astype("str"))]
        if option_values(self.unit) != keys:
            keep = self.unit.value if self.unit.value in keys else ALL
            self._busy = True  # setting the options fires the observer; this update covers it
            try:
                self.unit.options = keys
                self.unit.value = keep
                relabel_options(self.unit, {ALL: self._t("review.all")})
            finally:
                self._busy = False
        unit = None if self.unit.value == ALL else self.unit.value
        steps = bridge(v, key=unit)
        self.result["bridge"] = steps
        gap = steps["value"].iloc[-1] - steps["value"].iloc[0]
        title = self._t("review.bridge_title", unit=self._t("review.all_units") if unit is None else unit,
                        gap=fmt.money(gap))
        self.html["bridge"].show(waterfall_svg(self._steps(steps), title=title), Table(
            v, name="variance", kinds={"attainment": "percent"}, max_rows=40,
            labels=self._headers(v.columns, key="unit")))

    def _show_drivers(self, review: ReviewReport) -> None:
        if "pipeline" in review.notes:
            return self._note("drivers", review.notes["pipeline"])
        d = review.tables["pipeline"]
        self.result["drivers"] = d
        unit = self.unit.value if self.unit.value in set(d["key"].astype("str")) else None
        steps = driver_bridge(d, key=unit)
        title = self._t("review.drivers_title", unit=self._t("review.all_units") if unit is None else unit,
                        reference=d.attrs.get("reference_period", ""), period=review.window.label)
        shown = d if unit is None else d[d["key"].astype("str") == unit]
        cols = ["key", "driver", "step", "reference", "current", "effect"]
        self.html["drivers"].show(waterfall_svg(self._steps(steps), title=title), Table(
            shown[cols].assign(driver=shown["driver"].map(lambda s: self._label(f"steps.{s}", s))), name="drivers",
            kinds={"reference": "number", "current": "number", "effect": "money"}, max_rows=60,
            labels=self._headers(cols, key="unit")))

    def _steps(self, steps: pd.DataFrame) -> pd.DataFrame:
        """A bridge's steps named in the page's language, for its chart."""
        return steps.assign(step=steps["step"].map(lambda s: self._label(f"steps.{s}", s)))

    def _show_problems(self, review: ReviewReport) -> None:
        if "problems" not in review.tables:
            return self._note("problems", review.notes.get("problems", ""))
        p = review.tables["problems"]
        self.result["problems"] = p
        if p.empty:
            return self._note("problems", self._t("review.no_problems", period=review.window.label))
        note = review.notes.get("problems", "")
        self.result["notes"]["problems"] = note
        shown = problems_table(p)
        self.html["problems"].show(_sentence(note) if note else "", Table(
            shown, name="problems", labels=self._headers(shown.columns)))

    def _show_accuracy_history(self, review: ReviewReport) -> None:
        h = review.tables.get("accuracy_history")
        if h is None or h.empty:
            return
        units = h[h["level"] != "rep"] if (h["level"] != "rep").any() else h
        self.result["accuracy_history"] = units
        fig = go.Figure()
        for (lv, key), g in units.groupby(["level", "key"], sort=True):
            fig.add_scatter(x=g["as_of"], y=g["wape"], mode="lines",
                            name=key if lv != "company" else self._label("levels.company", "company"))
        fig.update_layout(title=self._t("review.accuracy_chart"),
                          yaxis_tickformat=".0%", height=320, margin=dict(l=40, r=10, t=40, b=40))
        self.accuracy_chart.update(fig)

    def _show_table(self, review: ReviewReport, name: str, section: str, cols: list[str], caption: str) -> None:
        if name in review.notes:
            return self._note(section, review.notes[name])
        df = review.tables[name]
        self.result[section] = df
        shown = df[[c for c in cols if c in df.columns]]
        head = ""
        if section == "at_risk":
            head = _sentence(self._t("review.at_risk_note", accounts=fmt.count(len(df)),
                                     revenue=fmt.money(df["revenue_at_stake"].sum())))
        self.html[section].show(head, Table(
            shown, name=section, max_rows=25, kinds={"wape": "percent", "bias": "percent",
                                                     "probability_alive": "percent", "months": "count",
                                                     "value": "money"},
            labels=self._headers(shown.columns, key="unit", value="target")),
            _sentence(caption) if caption else "")

    def _outcomes(self, w) -> tuple[pd.DataFrame, pd.Series]:
        tx, targets = self.tables["transactions"], self.tables.get("targets")
        q = quotas(targets, period="quarter")
        q = q[pd.to_datetime(q["period"]) == w.start].set_index("rep_id")["quota"]
        if q.empty:
            raise SalesplanDataError(self._t("review.no_quota", period=w.label))
        if self.samples is not None:
            o = outcomes_from_samples(self.samples, start=w.start, end=w.end)
        else:
            o = outcomes_from_history(tx, reps=list(q.index), before=w.start, n_samples=self.n_samples)
        o = o[o["unique_id"].isin(q.index)]
        return o, q[q.index.isin(o["unique_id"].unique())]

    def _show_plans(self, review: ReviewReport) -> None:
        need = review.notes.get("payouts", "")
        if need:
            return self._note("plans", need)
        w = review_window(self.period.value)
        outcomes, quota = self._outcomes(w)
        names = list(dict.fromkeys([self.plan_a.value, self.plan_b.value]))
        chosen = {n: self.plans[n] for n in names}
        comparison = compare_plans(chosen, outcomes, quota=quota)
        totals, fairness = [], []
        for n, p in chosen.items():
            sim = simulate(p, outcomes, quota=quota)
            t = sim.totals()
            t.insert(0, "plan", n)
            totals.append(t)
            f = fairness_check(sim)
            f.insert(0, "plan", n)
            fairness.append(f)
        totals = pd.concat(totals, ignore_index=True)
        fairness = pd.concat(fairness, ignore_index=True)
        curve = payout_curve(list(chosen.values()), quota=float(quota.median()))
        self.result.update({"plans": comparison, "comparison": comparison, "payout_totals": totals,
                            "curve": curve, "fairness": fairness})
        source = (self._t("review.source_samples") if self.samples is not None else
                  self._t("review.source_history", quarters=fmt.count(outcomes["sample"].nunique())))
        first = comparison.iloc[0]
        lines = [self._t("review.plan_line", plan=r["plan"], payout=fmt.money(r["expected_payout"]),
                         lo=fmt.money(r["payout_lo-90"]), hi=fmt.money(r["payout_hi-90"]),
                         cost=fmt.percent(r["cost_of_sales"])) for r in comparison.to_dict("records")]
        if len(comparison) > 1:
            second = comparison.iloc[1]
            diff = float(second["payout_vs_first"])
            lines.append(self._t("review.pays_more" if diff >= 0 else "review.pays_less", plan=second["plan"],
                                 amount=fmt.money(abs(diff)), first=first["plan"],
                                 share=fmt.percent(second["share_samples_more"], decimals=0)))
        for n, f in fairness.groupby("plan", sort=False):
            flagged = f[f["flagged"]]
            lines.append(self._t("review.fair", plan=n) if flagged.empty else
                         self._t("review.unfair", plan=n, reps=len(flagged),
                                 names=", ".join(flagged["rep_id"].astype(str).head(5))))
        self.html["plans"].show(_sentence(self._t("review.plans_note", source=source, period=w.label))
                                + "".join(_sentence(s) for s in lines),
                                Table(comparison, name="plans", labels=self._headers(comparison.columns)))
        fig = go.Figure()
        for n, g in totals.groupby("plan", sort=False):
            fig.add_histogram(x=g["payout"], name=n, opacity=0.6, nbinsx=40)
        fig.update_layout(barmode="overlay", title=self._t("review.payout_chart", period=w.label),
                          xaxis_title=self._t("review.total_payout"), yaxis_title=self._t("review.simulated_quarters"),
                          height=320, margin=dict(l=40, r=10, t=40, b=40))
        self.payout_chart.update(fig)
        fig2 = go.Figure()
        for n, g in curve.groupby("plan", sort=False):
            fig2.add_scatter(x=g["attainment"], y=g["payout"], name=n, mode="lines")
        fig2.update_layout(title=self._t("review.curve_chart", quota=fmt.money(float(quota.median()))),
                           xaxis_title=self._t("columns.attainment"), xaxis_tickformat=".0%",
                           yaxis_title=self._t("columns.payout"), height=320,
                           margin=dict(l=40, r=10, t=40, b=40))
        self.curve_chart.update(fig2)
        if np.isnan(comparison["expected_payout"]).any():
            self._note("plans", self._t("review.unpaid"))
