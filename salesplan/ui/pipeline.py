"""The sales process and the people behind it: funnel, aging, velocity, forecast, scorecard, appraisal, coaching.

:class:`PipelineApp` is built like the other apps: controls are attributes
(``period``, ``level``, ``unit``), one ``_update`` observer recomputes the page,
``.container`` is what the notebook shows and ``.result`` holds the frames, so
the page can be checked in plain pytest::

    app = PipelineApp.from_source(None)      # the demo company
    app.level.value = "team"
    app.unit.value = "North Team"
    app.result["scorecard"]                  # the North team's KPIs
    app.result["notes"]["funnel"]            # "" or why the section is empty

Each section whose table is missing shows one plain sentence ("Add an
opportunities table to see the funnel.") and the others still run. The numbers
come from :mod:`salesplan.pipeline` and :mod:`salesplan.performance`; this
module only picks the rows, formats them with :mod:`salesplan.format` and lays
them out.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path

import ipywidgets as widgets
import pandas as pd

from salesplan import performance as pf
from salesplan.errors import SalesplanError
from salesplan.i18n import t
from salesplan.ui._common import ErrorArea, Pages, PlotArea, _message_of, app_from_source
from salesplan.ui._lang import Translated, relabel_options
from salesplan.ui.table import Section, Table

__all__ = ["PipelineApp", "ALL", "SECTIONS", "period_options"]

#: The unit choice that means "every unit of the level".
ALL = "All"

#: The page's sections, in order.
SECTIONS: tuple[str, ...] = (
    "funnel", "aging", "velocity", "forecast", "scorecard", "attainment", "appraisal", "coaching",
)

#: The section -> heading key of the catalogue (``[pipeline]`` of ``salesplan/locale/*.toml``).
_TITLES = {s: f"pipeline.title_{s}" for s in SECTIONS}

#: The four factors of sales velocity, as the ``moved_most`` column names them.
_FACTORS = ("open deals", "win rate", "deal size", "cycle length")

#: What the period dropdown shows when the data has no complete period.
_NO_DATA = "(no data)"

_CSS = """<style>
.salesplan-note{color:#57606a;font-size:13px;margin:2px 0 8px 0}
.salesplan-section h3{margin:14px 0 4px 0}
</style>"""


def period_options(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """The periods the page offers: each calendar year and quarter with order lines, latest first.

    A year is offered only when the data covers it to December (an incomplete
    year would score a part against a whole); quarters likewise.
    """
    tx = tables.get("transactions") if isinstance(tables, Mapping) else None
    if not isinstance(tx, pd.DataFrame) or tx.empty or "order_date" not in tx.columns:
        return []
    dates = pd.to_datetime(tx["order_date"], errors="coerce").dropna()
    last = dates.max()
    first = dates.min()
    years = [str(y) for y in range(last.year, first.year - 1, -1) if pd.Timestamp(y, 12, 31) <= last]
    quarters = pd.period_range(first.to_period("Q"), last.to_period("Q"), freq="Q")[::-1]
    quarters = [f"{q.year}-Q{q.quarter}" for q in quarters if q.end_time.normalize() <= last]
    return years + quarters


def _p(x: float, lang: str | None = None) -> str:
    """A p-value as people read it: ``0.032``, ``under 0.001``."""
    if pd.isna(x):
        return t("pipeline.na", lang)
    return t("pipeline.p_under", lang) if x < 0.001 else f"{x:.3f}"


def _sentence(text: str) -> str:
    return f'<p class="salesplan-note">{html.escape(text)}</p>'


class PipelineApp(Translated):
    """The pipeline and performance page.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        The data, as :func:`salesplan.io.load_data` returns it. Only
        ``transactions`` is required; every other table adds sections.
    period : str, optional
        Starting period (see :func:`period_options`); default the last
        complete year, else the latest complete quarter.
    level : {"rep", "team", "region", "company"}, optional
        Starting level; default the finest the data supports.
    scheme : dict, optional
        The appraisal scheme (:func:`salesplan.performance.check_scheme`);
        default :data:`salesplan.performance.DEFAULT_SCHEME`.
    alpha : float
        Significance level of the coaching list (Benjamini-Hochberg adjusted).
    probabilities : DataFrame, optional
        Each open deal's win probability (``opportunity_id``, ``amount``,
        ``win_probability``, as :meth:`salesplan.pipeline.WinModel.predict`
        returns them). Default: a :class:`~salesplan.pipeline.WinModel` is
        fitted on the whole history when the forecast is first shown, and
        its holdout Brier score is quoted next to the forecast.
    lang : str, optional
        Language of the page (``"en"``, ``"zh"``); default
        :func:`salesplan.i18n.current_lang`. The switch at the top changes it.

    Attributes
    ----------
    period, level, unit : ipywidgets.Dropdown
        The controls. ``unit`` lists the units of the level (``"All"`` first).
    lang_switch : ipywidgets.ToggleButtons
        The language of the page (see :meth:`set_lang`).
    errors : ErrorArea
        Unexpected problems and counted data warnings, as text.
    funnel_chart, forecast_chart : PlotArea
        The funnel and the forecast by month.
    container : ipywidgets.VBox
        The whole page.
    result : dict
        One frame per section of :data:`SECTIONS` (``None`` when the section
        could not be computed), ``"appraisal_components"`` (the per-KPI
        components a rep can recompute), ``"forecast_categories"`` (commit,
        best case, pipeline of the open deals shown), ``"notes"`` (section -> the sentence
        shown instead of, or under, its table; "" when none) and ``"error"``.
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        period: str | None = None,
        level: str | None = None,
        scheme: Mapping | None = None,
        alpha: float = 0.1,
        probabilities: pd.DataFrame | None = None,
        lang: str | None = None,
    ) -> None:
        self._init_lang(lang)
        self.tables = {k: v for k, v in dict(tables).items() if isinstance(v, pd.DataFrame)}
        self.scheme = scheme
        self.alpha = alpha
        self.errors = ErrorArea()
        self.result: dict[str, object] = {s: None for s in SECTIONS}
        self.result.update({"appraisal_components": None, "forecast_categories": None,
                            "notes": {s: "" for s in SECTIONS}, "error": ""})
        self._gaps: pd.DataFrame | None = None
        self._probabilities: pd.DataFrame | bool | None = probabilities
        self._win_note = ("pipeline.win_given", {}) if probabilities is not None else ("", {})
        self._gaps_note = ""
        self._busy = False

        periods = period_options(self.tables)
        levels = pf.available_levels(self.tables) if "transactions" in self.tables else ["company"]
        start_period = period if period in periods else self._default_period(periods)
        self.period = widgets.Dropdown(options=periods or [_NO_DATA], value=start_period or _NO_DATA)
        self.level = widgets.Dropdown(options=levels, value=level if level in levels else levels[0])
        self.unit = widgets.Dropdown(options=self._units(self.level.value), value=ALL)
        self.html = {s: Section(lang=self.lang) for s in SECTIONS}
        self.headings = {s: widgets.HTML() for s in SECTIONS}
        self.funnel_chart = PlotArea(live=True)
        self.forecast_chart = PlotArea(live=True)
        body = [self.lang_switch, widgets.HTML(_CSS), self.errors,
                widgets.HBox([self.period, self.level, self.unit])]
        charts = {"funnel": [self.funnel_chart], "forecast": [self.forecast_chart]}
        # One section at a time: the browser draws the tables and charts of the section shown only.
        self.pages = Pages({s: widgets.VBox([self.headings[s], self.html[s], *charts.get(s, [])]) for s in SECTIONS})
        body.append(self.pages)
        self.container = widgets.VBox(body)
        self._relabel()

        if "transactions" not in self.tables:
            self.errors.show_error(self._t("pipeline.no_transactions", tables=sorted(self.tables) or "none"))
            self.result["error"] = self.errors.message
        else:
            self._update()
        self.period.observe(self._update, names="value")
        self.level.observe(self._on_level, names="value")
        self.unit.observe(self._update, names="value")

    @classmethod
    def from_source(cls, data_path: str | Path | None = None, **kwargs) -> PipelineApp:
        """Load the data with :func:`salesplan.io.load_data` and build the app.

        ``None`` reads the folder named by ``SALESPLAN_DATA``, else the demo
        company. Data that cannot be loaded gives an app showing why.
        """
        from salesplan.io import load_data

        return app_from_source(cls, data_path, load_data, **kwargs)

    def show(self, section: str):
        """One section as static HTML (its sentence and table) for a notebook or an exported report.

        Unlike :attr:`container`, this renders without a kernel (nbconvert,
        GitHub), so a notebook can print the page as a report.
        """
        from IPython.display import HTML

        from salesplan._validation import check_choice

        check_choice(section, SECTIONS, name="section")
        return HTML(f"<h3>{html.escape(self._t(_TITLES[section]))}</h3>" + self.html[section].value)

    # ------------------------------------------------------------------ language

    def _relabel(self) -> None:
        """Every control label and heading in the page's language."""
        self.period.description = self._t("pipeline.period")
        self.level.description = self._t("pipeline.level")
        self.unit.description = self._t("pipeline.unit")
        self._relabel_scope(no_data=(_NO_DATA, "pipeline.no_data"), everything=(ALL, "pipeline.all"),
                            titles=_TITLES)

    def _rerender(self) -> None:
        """The page again in its language; the sentences are written as the sections compute (cached models)."""
        if "transactions" in self.tables:
            self._update()
        else:
            self._resay("pipeline.no_transactions", tables=sorted(self.tables) or "none")

    # ------------------------------------------------------------------ helpers

    def _default_period(self, periods: list[str]) -> str | None:
        if not periods:
            return None
        years = [p for p in periods if "Q" not in p]
        return years[0] if years else periods[0]

    def _units(self, level: str) -> list[str]:
        tx = self.tables.get("transactions")
        if tx is None or level == "company":
            return [ALL]
        units = set()
        reps = self.tables.get("reps")
        if level == "rep":
            for name in ("transactions", "opportunities"):
                frame = self.tables.get(name)
                if frame is not None and "rep_id" in frame.columns:
                    units |= set(frame["rep_id"].dropna().astype(str))
        elif reps is not None and level in reps.columns:
            units |= set(reps[level].dropna().astype(str))
        elif level in tx.columns:
            units |= set(tx[level].dropna().astype(str))
        return [ALL, *sorted(units)]

    def _reps_in_unit(self) -> list[str] | None:
        """The reps of the chosen unit (None: no filter)."""
        level, unit = self.level.value, self.unit.value
        if unit == ALL or level == "company":
            return None
        if level == "rep":
            return [unit]
        reps = self.tables.get("reps")
        if reps is None or level not in reps.columns:
            return None
        return reps.loc[reps[level].astype("string") == unit, "rep_id"].astype(str).tolist()

    def _opportunities(self) -> pd.DataFrame | None:
        opps = self.tables.get("opportunities")
        if opps is None:
            return None
        keep = self._reps_in_unit()
        if keep is None:
            return opps
        return opps[opps["rep_id"].astype("string").isin(keep)]

    def _history(self, opps: pd.DataFrame) -> pd.DataFrame | None:
        """The stage history of these deals only (history of other deals is not unknown, just elsewhere)."""
        sh = self.tables.get("stage_history")
        if sh is None:
            return None
        return sh[sh["opportunity_id"].isin(opps["opportunity_id"])]

    def _as_of(self) -> pd.Timestamp | None:
        """The analysis date of the whole pipeline, so that filtering a unit does not move it."""
        opps = self.tables.get("opportunities")
        if opps is None:
            return None
        dates = [pd.to_datetime(opps["created_date"]).max()]
        if "close_date" in opps.columns and "status" in opps.columns:
            closed = opps["status"].astype("string").isin(["won", "lost"]).fillna(False).to_numpy(dtype=bool)
            dates.append(pd.to_datetime(opps["close_date"])[closed].max())
        sh = self.tables.get("stage_history")
        if sh is not None:
            dates.append(pd.to_datetime(sh["entered_at"]).max())
        return max(d for d in dates if not pd.isna(d))

    def _on_level(self, change: object = None) -> None:
        self._busy = True
        try:
            self.unit.options = self._units(self.level.value)
            self.unit.value = ALL
            relabel_options(self.unit, {ALL: self._t("pipeline.all")})
        finally:
            self._busy = False
        self._update()

    def _run(self, section: str, compute: Callable[[], tuple[object, str]]) -> None:
        """Compute one section; a problem becomes the section's sentence, not a failure of the page."""
        try:
            frame, note = compute()
        except SalesplanError as exc:
            frame, note = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
            frame, note = None, _message_of(exc)
            self._unexpected.append(f"{self._t(_TITLES[section])}: {note}")
        self.result[section] = frame
        self.result["notes"][section] = note

    # ------------------------------------------------------------------ sections

    def _need_opportunities(self, what: str) -> pd.DataFrame:
        opps = self._opportunities()
        if opps is None:
            raise SalesplanError(self._t("pipeline.need_opportunities", what=self._t(f"pipeline.what_{what}")))
        if opps.empty:
            raise SalesplanError(self._t("pipeline.no_opportunities", unit=self.unit.value))
        return opps

    def _funnel(self) -> tuple[pd.DataFrame, str]:
        from salesplan.pipeline import funnel

        opps = self._need_opportunities("funnel")
        window = pf.period_window(self.period.value)
        created = pd.to_datetime(opps["created_date"])
        cohort = opps[(created >= window.start) & (created < window.end)]
        if cohort.empty:
            raise SalesplanError(self._t("pipeline.no_created", period=window.label, unit=self.unit.value))
        frame = funnel(cohort, self._history(cohort), as_of=self._as_of())
        note = self._t("pipeline.funnel_note", period=window.label)
        if self.tables.get("stage_history") is None:
            note += self._t("pipeline.funnel_no_history")
        return frame, note

    def _aging(self) -> tuple[pd.DataFrame, str]:
        from salesplan import pipeline

        opps = self._need_opportunities("aging")
        frame = pipeline.aging(opps, self._history(opps), reps=self.tables.get("reps"), as_of=self._as_of())
        note = "" if len(frame) else self._t("pipeline.aging_none")
        return frame, note

    def _velocity(self) -> tuple[pd.DataFrame, str]:
        from salesplan import pipeline

        opps = self._need_opportunities("velocity")
        velocity = getattr(pipeline, "velocity", None)
        if velocity is None:
            raise SalesplanError(self._t("pipeline.velocity_missing"))
        by = self._pipeline_by()
        frame = velocity(opps, self._history(opps), by=by, period="Q", reps=self.tables.get("reps"),
                         as_of=self._as_of())
        window = pf.period_window(self.period.value)
        frame = frame[(frame["period"] >= window.start) & (frame["period"] < window.end)]
        if by:  # one row per unit: the last quarter of the period
            frame = frame.sort_values("period").drop_duplicates(by, keep="last").sort_values(by)
        effects = ["open_deals_effect", "win_rate_effect", "average_won_effect", "cycle_days_effect"]
        names = list(_FACTORS)
        moved = frame[effects].abs().fillna(-1).to_numpy().argmax(axis=1) if len(frame) else []
        frame = frame.assign(moved_most=[names[i] if not pd.isna(c) else "" for i, c in zip(moved, frame["change"])])
        note = self._t("pipeline.velocity_note_by" if by else "pipeline.velocity_note")
        return frame.reset_index(drop=True), note

    @property
    def win_probabilities(self) -> pd.DataFrame | None:
        """The open deals' win probabilities the forecast uses (None: stage win rates)."""
        return self._probabilities if isinstance(self._probabilities, pd.DataFrame) else None

    def _win_probabilities(self) -> pd.DataFrame | None:
        """Each open deal's learned win probability (fitted once per app), or None to use stage win rates."""
        if self._probabilities is None:
            from salesplan.pipeline import WinModel

            opps, sh = self.tables["opportunities"], self.tables.get("stage_history")
            extra = {k: self.tables.get(k) for k in ("reps", "customers")}
            try:
                model = WinModel().fit(opps, sh, **extra)
                self._probabilities = model.predict(opps, sh, **extra)
                scores = model.summary().set_index("model")["brier"]
                self._win_note = ("pipeline.win_learned", {"model": f"{scores['model']:.3f}",
                                                           "stage": f"{scores['stage average']:.3f}"})
            except SalesplanError as exc:
                self._probabilities = False
                self._win_note = ("pipeline.win_stage_rates", {"reason": str(exc)})
        return self._probabilities if isinstance(self._probabilities, pd.DataFrame) else None

    def _forecast(self) -> tuple[pd.DataFrame, str]:
        from salesplan import pipeline

        opps = self._need_opportunities("forecast")
        if not (opps["status"].astype("string") == "open").any():
            raise SalesplanError(self._t("pipeline.no_open_deals", unit=self.unit.value))
        probabilities = self._win_probabilities()
        if probabilities is not None:
            probabilities = probabilities[probabilities["opportunity_id"].isin(opps["opportunity_id"])]
        # One unit: its own targets; every unit: the company's (all units together).
        by = None if self.unit.value == ALL else {"rep": "rep_id", "team": "team", "region": "region"}.get(
            self.level.value)
        targets, coverage_note = self.tables.get("targets"), ""
        target_level = {None: "company", "rep_id": "rep"}.get(by, by)
        if targets is not None and not (targets["level"].astype("string") == target_level).any():
            targets, coverage_note = None, self._t("pipeline.no_level_targets",
                                                   level=self._label(f"levels.{target_level}", target_level))
        frame = pipeline.pipeline_forecast(opps, self._history(opps), probabilities=probabilities, by=by,
                                           targets=targets, reps=self.tables.get("reps"),
                                           customers=self.tables.get("customers"), as_of=self._as_of())
        busy = frame.groupby("month")["expected"].transform("sum") > 0.5
        frame = frame[busy.to_numpy()].reset_index(drop=True)  # months nothing is expected to close in say nothing
        self.result["forecast_categories"] = (
            pipeline.forecast_categories(probabilities) if probabilities is not None and len(probabilities) else None)
        win_key, win_values = self._win_note
        note = (self._t("pipeline.forecast_note") + coverage_note + " "
                + (self._t(win_key, **win_values) if win_key else ""))
        return frame, note.strip()

    def _pipeline_by(self) -> str | None:
        level = self.level.value
        return {"rep": "rep_id", "team": "team", "region": "region"}.get(level) if self.unit.value == ALL else None

    def _scorecard(self) -> tuple[pd.DataFrame, str]:
        units = None if self.unit.value == ALL else [self.unit.value]
        card = pf.scorecard(self.tables, period=self.period.value, level=self.level.value, units=units)
        if self.level.value == "rep":
            self._rep_card_cache = card if not card.empty else None
        note = self._t("pipeline.scorecard_note", period=card.attrs["period"], previous=card.attrs["previous_period"])
        if card.attrs["notes"]:
            note += " " + " ".join(card.attrs["notes"])
        if card.empty:
            raise SalesplanError(" ".join(card.attrs["notes"]) or self._t("pipeline.no_kpi"))
        return card, note

    def _rep_card(self) -> pd.DataFrame:
        if self._rep_card_cache is None:
            self._rep_card_cache = self._compute_rep_card()
        return self._rep_card_cache

    def _compute_rep_card(self) -> pd.DataFrame:
        if "rep" not in pf.available_levels(self.tables):
            raise SalesplanError(self._t("pipeline.need_rep_id"))
        card = pf.scorecard(self.tables, period=self.period.value, level="rep", units=self._reps_in_unit())
        if card.empty:
            raise SalesplanError(" ".join(card.attrs["notes"]) or self._t("pipeline.no_rep_data"))
        return card

    def _attainment(self) -> tuple[pd.DataFrame, str]:
        card = self._rep_card()
        if "attainment" not in set(card["kpi"]):
            raise SalesplanError(self._t("pipeline.need_rep_targets"))
        return pf.attainment_distribution(card), self._t("pipeline.attainment_note")

    def _appraisal(self) -> tuple[pd.DataFrame, str]:
        card = self._rep_card()
        scheme, note = pf.scheme_for(card, self.scheme)
        parts = pf.appraise(card, scheme=scheme)
        self.result["appraisal_components"] = parts
        totals = pf.appraisal_totals(parts)
        how = self._t("pipeline.appraisal_how")
        return totals, (note + " " + how).strip()

    def _coaching(self) -> tuple[pd.DataFrame, str]:
        if self.tables.get("opportunities") is None or self.tables.get("stage_history") is None:
            missing = " and ".join(n for n in ("opportunities", "stage_history") if self.tables.get(n) is None)
            raise SalesplanError(self._t("pipeline.need_coaching_tables" if " and " in missing
                                         else "pipeline.need_coaching_table", tables=missing))
        if self._gaps is None:  # the tests compare every rep with their team: computed once
            self._gaps = pf.stage_gaps(self.tables)
        needs = pf.coaching_needs(self._gaps, alpha=self.alpha)
        keep = self._reps_in_unit()
        if keep is not None:
            needs = needs[needs["rep_id"].isin(keep)].reset_index(drop=True)
        note = self._t("pipeline.coaching_note", alpha=f"{self.alpha:.0%}")
        if needs.empty:
            note += self._t("pipeline.coaching_none")
        return needs, note

    # ------------------------------------------------------------------ update

    def _update(self, change: object = None) -> None:
        """Recompute every section for the current period, level and unit."""
        if self._busy:
            return
        self._unexpected: list[str] = []
        self._rep_card_cache: pd.DataFrame | None = None  # shared by attainment and appraisal
        self.result["appraisal_components"] = None
        self.result["forecast_categories"] = None
        with self.errors.capture():
            for section in SECTIONS:
                self._run(section, getattr(self, f"_{section}"))
        if self._unexpected and self.errors.ok:
            self.errors.show_error("\n".join(self._unexpected))
        self.result["error"] = "" if self.errors.ok else self.errors.message
        self._render()

    def _render(self) -> None:
        for section in SECTIONS:
            frame = self.result[section]
            note = self.result["notes"][section]
            shown = [_sentence(note) if note else ""]
            if isinstance(frame, pd.DataFrame) and len(frame):
                shown += self._table(section, frame)
            self.html[section].show(*shown)
        self.funnel_chart.update(self._funnel_figure(self.result["funnel"]))
        self.funnel_chart.layout.display = None if isinstance(self.result["funnel"], pd.DataFrame) else "none"
        self.forecast_chart.update(self._forecast_figure(self.result["forecast"]))
        self.forecast_chart.layout.display = None if isinstance(self.result["forecast"], pd.DataFrame) else "none"

    def _table(self, section: str, frame: pd.DataFrame) -> list:
        """The section's tables (and the text between them) as :class:`~salesplan.ui.table.Table` parts."""
        if section == "scorecard":
            level = frame["level"].iloc[0] if len(frame) else "unit"
            names = {pf.KPIS[k].label: self._label(f"kpis.{k}", pf.KPIS[k].label) for k in pf.KPIS}
            return [Table(pf.scorecard_display(frame), name=section,
                          labels={level: self._label(f"levels.{level}", level), **names})]
        if section == "funnel":
            cols = [c for c in ("stage", "entered", "advanced", "lost", "open", "conversion", "conversion_lo",
                                "conversion_hi", "win_rate", "entered_amount") if c in frame.columns]
            return [Table(frame[cols], name=section, count=["entered", "advanced", "lost", "open"],
                          labels=self._headers(cols))]
        if section == "aging":
            cols = [c for c in ("opportunity_id", "rep_id", "rep_name", "team", "customer_id", "stage",
                                "days_in_stage", "service_days", "days_over", "amount") if c in frame.columns]
            return [Table(frame[cols], name=section, max_rows=25, count=["days_in_stage", "service_days", "days_over"],
                          labels=self._headers(cols))]
        if section == "attainment":
            return [Table(frame, name=section, count=["units"], labels=self._headers(frame.columns, units="reps"))]
        if section == "appraisal":
            parts = self.result["appraisal_components"]
            wide = parts.pivot(index="unit", columns="kpi", values="points").reset_index()
            shown = frame.merge(wide, on="unit")
            kpis = [k for k in parts["kpi"].unique()]
            top = Table(shown[["rank", "unit", *kpis, "points", "score"]], name=section,
                        kinds={k: "number" for k in [*kpis, "points", "score"]},
                        labels={**self._headers(["rank", "unit", "points", "score"]),
                                **{k: self._t("pipeline.kpi_points", kpi=self._label(f"kpis.{k}", k))
                                   for k in kpis}})
            detail_cols = ["unit", "kpi", "value", "threshold", "cap", "weight", "points", "formula"]
            detail = Table(parts[detail_cols], name=f"{section}_detail", summary=self._t("pipeline.how_scored"),
                           max_rows=60, kinds={"value": "number", "threshold": "number", "cap": "number",
                                               "weight": "number", "points": "number"},
                           labels=self._headers(detail_cols))
            return [top, detail]
        if section == "coaching":
            cols = ["rep_id", "team", "focus", "also", "p_value", "q_value", "revenue_at_stake"]
            shown = frame[cols].assign(p_value=frame["p_value"].map(lambda x: _p(x, self.lang)),
                                       q_value=frame["q_value"].map(lambda x: _p(x, self.lang)))
            return [Table(shown, name=section,
                          labels=self._headers(cols, also="also_behind_at",
                                               revenue_at_stake="revenue_at_stake_year"))]
        if section == "forecast":
            cols = [c for c in frame.columns if c in ("rep_id", "team", "region", "month", "deals", "pipeline_amount",
                                                      "expected", "forecast-lo-80", "forecast-hi-80", "target",
                                                      "remaining", "coverage", "hit_probability")]
            shown = [Table(frame[cols], name=section, kinds={"month": "date"}, count=["deals"],
                           money=["forecast-lo-80", "forecast-hi-80"], percent=["hit_probability"],
                           labels=self._headers(cols, **{"forecast-lo-80": "low_80", "forecast-hi-80": "high_80",
                                                         "pipeline_amount": "pipeline",
                                                         "hit_probability": "chance_to_cover"}))]
            cats = self.result["forecast_categories"]
            if isinstance(cats, pd.DataFrame) and len(cats):
                shown.append(_sentence(self._t("pipeline.categories_note")))
                shown.append(Table(cats, name="forecast_categories", count=["deals"],
                                   labels=self._headers(cats.columns)))
            return shown
        if section == "velocity":
            by = [c for c in ("rep_id", "team", "region") if c in frame.columns]
            cols = [*by, "period", "open_deals", "win_rate", "average_won", "cycle_days", "velocity", "change",
                    "open_deals_effect", "win_rate_effect", "average_won_effect", "cycle_days_effect", "moved_most"]
            factor = {name: self._t(f"pipeline.factor_{i}") for i, name in enumerate(_FACTORS)}
            return [Table(frame[cols].assign(moved_most=frame["moved_most"].map(lambda v: factor.get(v, v))),
                          name=section, max_rows=40, kinds={"period": "date", "cycle_days": "number"},
                          money=["velocity", "change", "open_deals_effect", "win_rate_effect",
                                 "average_won_effect", "cycle_days_effect"],
                          labels=self._headers(cols))]
        return [Table(frame, name=section, max_rows=40, labels=self._headers(frame.columns))]

    def _funnel_figure(self, frame: object) -> dict:
        data = []
        if isinstance(frame, pd.DataFrame) and len(frame):
            data.append({"type": "funnel", "y": [str(s).replace("_", " ") for s in frame["stage"]],
                         "x": frame["entered"].astype(float).tolist(), "textinfo": "value+percent initial"})
        return {"data": data, "layout": {"title": {"text": self._t("pipeline.funnel_chart")}, "height": 320,
                                         "margin": {"l": 120, "r": 20, "t": 40, "b": 20}}}

    def _forecast_figure(self, frame: object) -> dict:
        data = []
        if isinstance(frame, pd.DataFrame) and len(frame):
            months = frame.groupby("month", as_index=False)[["expected", "forecast-lo-80", "forecast-hi-80"]].sum()
            x = pd.to_datetime(months["month"]).dt.strftime("%Y-%m").tolist()
            y = months["expected"].astype(float)
            data.append({"type": "bar", "x": x, "y": y.tolist(), "name": self._t("pipeline.expected_value"),
                         "error_y": {"type": "data", "symmetric": False,
                                     "array": (months["forecast-hi-80"] - y).clip(lower=0).tolist(),
                                     "arrayminus": (y - months["forecast-lo-80"]).clip(lower=0).tolist()}})
        return {"data": data, "layout": {"title": {"text": self._t("pipeline.forecast_chart")}, "height": 300,
                                         "yaxis": {"tickformat": ",.0f"},
                                         "margin": {"l": 70, "r": 20, "t": 40, "b": 40}}}
