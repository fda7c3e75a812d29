"""The target planner: set, allocate, phase, check and save a sales target.

:class:`TargetPlanner` is a Voila-gallery style app: built from DataFrames,
controls as attributes, one :meth:`TargetPlanner._update` observer and a
public :attr:`TargetPlanner.container`. The forecast distribution is one set
of joint paths per level and period (:class:`salesplan.targets.JointForecast`:
every unit and every level above it simulated together and reconciled, or
the paths given as ``forecast=``), computed once and kept with a fitted
:class:`salesplan.targets.Allocator`, so moving a control only re-allocates
and counts paths. Every probability on the page (unit, team, region,
company, the SMART check) is the share of those same paths in which the
node reaches its quota (:attr:`TargetPlanner.probabilities`,
:attr:`TargetPlanner.samples`).

Everything is readable in plain pytest::

    app = TargetPlanner(transactions, reps=reps, forecast=paths)
    app.growth.value = 0.08
    app.method.value = "equal_probability"
    app.result          # the allocation frame (one row per unit)
    app.probabilities   # level, unique_id, quota, probability of every node
    app.samples         # the joint paths: level, unique_id, sample, y (period totals)
    app.plan            # a salesplan.targets.Plan of the current state
    app.errors.message  # "" or what went wrong, in words
"""

from __future__ import annotations

import html
import re
import warnings
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go  # noqa: F401 - figures property type

from salesplan._validation import check_columns, check_frame
from salesplan.errors import SalesplanError, SalesplanWarning
from salesplan.periods import plan_period as data_plan_period
from salesplan.targets import (
    DEFAULT_RAMP,
    METHODS,
    JointForecast,
    calibration_backtest,
    node_probabilities,
    unit_verdicts,
    won_in_run_rate,
    Allocator,
    Plan,
    Scenario,
    SmartCheck,
    Target,
    bottom_up,
    capacity_plan,
    check_samples,
    export_excel,
    load_plan_excel,
    full_productivity,
    largest_remainder,
    make_plan,
    metric_panel,
    pipeline_value,
    samples_from_intervals,
    save_plan,
    stage_win_rates,
    target_gap,
)
from salesplan.targets._data import LEVEL_COLUMNS
from salesplan.targets.allocation import plan_period as months_of_period
from salesplan.targets.joint import _hierarchy
from salesplan.i18n import t
from salesplan.ui._common import ErrorArea, PlotArea
from salesplan.ui._lang import Translated, option_values, relabel_options
from salesplan.ui.table import TableView

__all__ = ["TargetPlanner"]


def _table_html(df: pd.DataFrame) -> str:
    # A few rows of text: a direct build is ten times cheaper than DataFrame.to_html.
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:2px 8px;border-top:1px solid #ddd'>{html.escape(str(v))}</td>"
                         for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table style='border-collapse:collapse;font-size:12px'><tr>{head}</tr>{body}</table>"

#: Allocation method -> its label's key in the catalogue (``[planner]`` of ``salesplan/locale/*.toml``).
_METHOD_LABELS = {m: f"planner.method_{m}" for m in
                  ("historical_share", "forecast_share", "potential", "equal_growth", "equal_probability", "equal")}

#: The fixed SMART reasons of :func:`salesplan.targets.unit_verdicts` -> their keys in the catalogue.
_REASONS = {"R: no strategy named": "planner.reason_no_strategy", "R: no history": "planner.reason_no_history"}
_THRESHOLD_REASON = re.compile(r"A: P\(reach\) (?P<p>\S+) [<>] (?P<which>stretch|sandbag) (?P<limit>\S+)")

#: Phasing profile -> its label's key in the catalogue.
_PROFILES = {"history": "planner.profile_history", "forecast": "planner.profile_forecast",
             "flat": "planner.profile_flat"}


class _UnitRow:
    """One editable row of the unit grid: the unit, its quota (editable), a lock, its numbers.

    Rows are slots of one page of the grid; :meth:`TargetPlanner._show_page`
    binds them to units, so a 200-rep plan keeps only a page of widgets live.
    """

    def __init__(self, lang: str | None = None) -> None:
        self.key: str | None = None
        self.label = widgets.Label("", layout=widgets.Layout(width="140px"))
        self.value = widgets.FloatText(value=0.0, layout=widgets.Layout(width="130px"))
        self.lock = widgets.Checkbox(value=False, indent=False, description=t("planner.lock", lang),
                                     layout=widgets.Layout(width="70px"))
        self.info = widgets.Label("", layout=widgets.Layout(width="420px"))
        self.box = widgets.HBox([self.label, self.value, self.lock, self.info])


class TargetPlanner(Translated):
    """Interactive top-down target planning with SMART checks and saved scenarios.

    Parameters
    ----------
    transactions : DataFrame
        Order lines (see :data:`salesplan.schema.TABLES` ``transactions``).
    reps : DataFrame, optional
        The sales organisation (``rep_id``, ``team``, ``region``,
        ``start_date``); enables the ``team`` level, parents and headcount.
    forecast : DataFrame, optional
        Sample paths ``unique_id, ds, sample, y`` of the metric per unit of
        one level (its keys tell which), or a point + interval forecast
        (``unique_id, ds, <model>, <model>-lo-80, <model>-hi-80``, turned into
        paths by :func:`salesplan.targets.samples_from_intervals`). Other
        levels (and this one when None) get
        :class:`salesplan.targets.JointForecast` paths, computed once.
    opportunities, stage_history : DataFrame, optional
        The pipeline, for the bottom-up column (weighted by stage win rates).
    potential : Series, optional
        Unit -> potential for the ``potential`` method.
    plan_dir : str or Path
        Where scenarios are saved (``plans/`` by default).
    metric : str
        What is planned (``revenue``, ``units``, ``orders``, ``new_customers``).
    level : str, optional
        Starting level; default the finest level the data has (``rep`` when
        it has ``rep_id``, else region, channel, category or product, else
        ``company``). The choices offered are the levels the data supports.
    period : int or (start, end), optional
        Plan period; default from the data (:func:`salesplan.periods.plan_period`:
        the year after the last complete year, or the next twelve months).
    reconcile : str
        How the joint paths are made coherent: ``"auto"`` (chosen by a
        backtest of the last year), or one of
        :data:`salesplan.targets.RECONCILE_METHODS`.
    growth : float
        Starting growth over last year (0.05 = +5 %).
    method : str
        Starting allocation method.
    n_samples, seed : int
        Size and seed of the forecast distribution when computed here.
    model : str
        Forecast model for :func:`salesplan.forecast.sample_paths` when the
        distribution is computed here.
    page_size : int
        Units per page of the editable grid.
    lang : str, optional
        Language of the page (``"en"``, ``"zh"``); default
        :func:`salesplan.i18n.current_lang`. The switch at the top changes it.

    Attributes
    ----------
    result : DataFrame or None
        The current allocation (:meth:`salesplan.targets.Allocator.allocate`
        columns plus ``verdict`` and, with opportunities, ``bottom_up`` and ``gap``).
    phased : DataFrame or None
        ``unique_id, ds, value``.
    smart : DataFrame or None
        The SMART check of the total target (:class:`salesplan.targets.SmartCheck`).
    container : ipywidgets.VBox
        The app.
    lang_switch : ipywidgets.ToggleButtons
        The language of the page (see :meth:`set_lang`).
    """

    def __init__(
        self,
        transactions: pd.DataFrame,
        *,
        reps: pd.DataFrame | None = None,
        forecast: pd.DataFrame | None = None,
        opportunities: pd.DataFrame | None = None,
        stage_history: pd.DataFrame | None = None,
        potential: pd.Series | None = None,
        plan_dir: str | Path = "plans",
        metric: str = "revenue",
        level: str | None = None,
        period: Any = None,
        growth: float = 0.05,
        method: str = "equal_probability",
        strategy: str = "",
        n_samples: int = 500,
        seed: int = 0,
        model: str = "auto",
        stretch: float = 0.3,
        sandbag: float = 0.9,
        decimals: int = 0,
        page_size: int = 20,
        reconcile: str = "auto",
        calibration: bool = True,
        lang: str | None = None,
    ) -> None:
        self._init_lang(lang)
        self.errors = ErrorArea()
        self.result: pd.DataFrame | None = None
        self.phased: pd.DataFrame | None = None
        self.smart: pd.DataFrame | None = None
        self.saved: list[Path] = []
        self.tx = transactions
        self.reps = reps
        self.opportunities = opportunities
        self.stage_history = stage_history
        self.potential = potential
        self.plan_dir = Path(plan_dir)
        self.metric = metric
        self.n_samples = n_samples
        self.seed = seed
        self.model = model
        self.decimals = decimals
        self.reconcile = reconcile
        self.show_calibration = calibration
        check_frame(transactions, name="transactions")
        check_columns(transactions, ["order_date", "customer_id"], name="transactions")
        if forecast is not None and "sample" not in forecast.columns:
            # A point + interval forecast (salesplan.forecast.forecast): approximate its paths.
            forecast = samples_from_intervals(forecast, n_samples=n_samples, seed=seed)
        self._forecast = check_samples(forecast, name="forecast") if forecast is not None else None
        self._panels: dict[str, pd.DataFrame] = {}
        self._allocators: dict[tuple[str, Any], Allocator] = {}
        self._joint: dict[tuple[str, Any], dict] = {}
        self._smart_checks: dict[tuple, SmartCheck] = {}
        self._calibration: dict[str, tuple[str, dict]] = {}  # level -> catalogue key and values
        self.probabilities: pd.DataFrame | None = None
        self._hire_total = 0.0
        self._bottom: dict[tuple[str, Any, float], pd.DataFrame | None] = {}
        self._win_rates: pd.DataFrame | None = None
        self._prod: float | None = None
        self.forecast_source: dict[str, str] = {}
        self._source_text: dict[str, tuple[str, dict]] = {}  # level -> catalogue key and values of the source
        self._units: list[str] = []
        self._locks: dict[str, float] = {}
        self._busy = False

        dates = pd.to_datetime(transactions["order_date"])
        self.data_end = dates.max()
        levels = self._available_levels()
        if level is not None and level not in levels:
            raise SalesplanError(self._t("planner.no_level", level=repr(level), levels=levels))
        start_level = level or levels[0]

        self.level = widgets.Dropdown(options=levels, value=start_level)
        options = self._period_options(period)
        self.period = widgets.Dropdown(options=options, value=options[0][1] if period is None else
                                       self._period_value(period))
        first_year = self._period_label(self.period.value)
        methods = [m for m in METHODS if m != "potential" or potential is not None]
        self.method = widgets.Dropdown(options=[(self._t(_METHOD_LABELS[m]), m) for m in methods],
                                       value=method if method in methods else "historical_share")
        self.growth = widgets.FloatSlider(value=growth, min=-0.5, max=1.0, step=0.005, readout_format=".1%",
                                          continuous_update=False)
        self.growth_box = widgets.BoundedFloatText(value=growth, min=-0.5, max=1.0, step=0.005,
                                                   layout=widgets.Layout(width="90px"))
        widgets.link((self.growth, "value"), (self.growth_box, "value"))
        self.total = widgets.FloatText(value=0.0)
        self.price_change = widgets.BoundedFloatText(value=0.0, min=-0.5, max=1.0, step=0.01)
        self.headcount = widgets.BoundedIntText(value=0, min=0, max=500)
        self.hire_month = widgets.Dropdown(options=[(self._t("planner.first_month"), 0)], value=0)
        self.win_rate_change = widgets.BoundedFloatText(value=0.0, min=-0.9, max=2.0, step=0.05,
                                                        disabled=opportunities is None)
        self.profile = widgets.Dropdown(options=[(self._t(key), p) for p, key in _PROFILES.items()], value="history")
        self.stretch = widgets.FloatSlider(value=stretch, min=0.0, max=1.0, step=0.05, continuous_update=False)
        self.sandbag = widgets.FloatSlider(value=sandbag, min=0.0, max=1.0, step=0.05, continuous_update=False)
        self.strategy = widgets.Text(value=strategy)
        self.name = widgets.Text(value=f"plan_{first_year}")
        self.save_button = widgets.Button(icon="save", button_style="primary")
        self.export_button = widgets.Button(icon="file-excel-o")
        self.unlock_button = widgets.Button(icon="unlock")
        self.summary = widgets.HTML()
        self.calibration_html = widgets.HTML()
        self.bottom_up_note = widgets.HTML()
        self.smart_html = widgets.HTML()
        self.page_size = page_size
        self._slots = [_UnitRow(self.lang) for _ in range(page_size)]
        for slot in self._slots:
            slot.value.observe(lambda ch, r=slot: self._on_edit(r, ch), names="value")
            slot.lock.observe(lambda ch, r=slot: self._on_lock(r, ch), names="value")
        self.page = widgets.BoundedIntText(value=1, min=1, max=1, layout=widgets.Layout(width="160px"))
        self.page_info = widgets.Label("")
        self.page.observe(lambda _: self._show_page(), names="value")
        self.table_box = widgets.VBox([widgets.HBox([self.page, self.page_info])]
                                      + [slot.box for slot in self._slots])
        self.quota_chart = PlotArea(live=True)
        self.probability_chart = PlotArea(live=True)
        self.phasing_chart = PlotArea(live=True)
        self.allocation_table = TableView(name="allocation", lang=self.lang)

        for w in (self.method, self.profile, self.stretch, self.sandbag, self.strategy, self.price_change,
                  self.headcount, self.hire_month, self.win_rate_change):
            w.observe(self._on_change, names="value")
        self.growth.observe(self._on_growth, names="value")
        self.total.observe(self._on_total, names="value")
        self.level.observe(self._on_scope, names="value")
        self.period.observe(self._on_scope, names="value")
        self.save_button.on_click(lambda _: self.save())
        self.export_button.on_click(lambda _: self.export())
        self.unlock_button.on_click(lambda _: self.unlock_all())

        controls = widgets.VBox([
            widgets.HBox([self.level, self.period, self.method]),
            widgets.HBox([self.growth, self.growth_box, self.total]),
            widgets.HBox([self.price_change, self.headcount, self.hire_month, self.win_rate_change, self.profile]),
            widgets.HBox([self.stretch, self.sandbag, self.strategy]),
            widgets.HBox([self.name, self.save_button, self.export_button, self.unlock_button]),
        ])
        self._charts = widgets.Tab(children=[self.quota_chart, self.probability_chart, self.phasing_chart])
        self._headings = {key: widgets.HTML() for key in ("title", "units", "all_units", "smart")}
        self.container = widgets.VBox([
            self.lang_switch, self._headings["title"], controls, self.errors, self.summary, self.calibration_html,
            self._headings["units"], self.bottom_up_note, self.table_box, self._charts, self._headings["all_units"],
            self.allocation_table, self._headings["smart"], self.smart_html,
        ])
        self._relabel()
        self._on_scope(None)

    # -------------------------------------------------------------- language
    def _relabel(self) -> None:
        """Every control label, heading and fixed text in the page's language."""
        for control, key in ((self.level, "level"), (self.period, "period"), (self.method, "method"),
                             (self.growth, "growth"), (self.total, "total"), (self.price_change, "price_change"),
                             (self.headcount, "headcount"), (self.hire_month, "hire_month"),
                             (self.win_rate_change, "win_rate_change"), (self.profile, "profile"),
                             (self.stretch, "stretch"), (self.sandbag, "sandbag"), (self.strategy, "strategy"),
                             (self.name, "name"), (self.save_button, "save"), (self.export_button, "export"),
                             (self.unlock_button, "unlock_all"), (self.page, "page")):
            control.description = self._t(f"planner.{key}")
        self.strategy.placeholder = self._t("planner.strategy_placeholder")
        for slot in self._slots:
            slot.lock.description = self._t("planner.lock")
        busy, self._busy = self._busy, True  # relabelling the options must not recompute
        try:
            relabel_options(self.level, {lv: self._label(f"levels.{lv}", lv) for lv in option_values(self.level)})
            relabel_options(self.period, {v: self._period_text(v) for v in option_values(self.period)})
            relabel_options(self.method, {m: self._t(_METHOD_LABELS[m]) for m in option_values(self.method)})
            relabel_options(self.profile, {p: self._t(_PROFILES[p]) for p in option_values(self.profile)})
            if not self._units:  # the placeholder before the period's months are known
                self.hire_month.options = [(self._t("planner.first_month"), 0)]
        finally:
            self._busy = busy
        for i, key in enumerate(("chart_quotas", "chart_probability", "chart_phasing")):
            self._charts.set_title(i, self._t(f"planner.{key}"))
        self._headings["title"].value = f"<h3>{html.escape(self._t('planner.title'))}</h3>"
        self._headings["units"].value = self._t("planner.units_heading")
        self._headings["all_units"].value = f"<b>{html.escape(self._t('planner.all_units_heading'))}</b>"
        self._headings["smart"].value = f"<b>{html.escape(self._t('planner.smart_heading'))}</b>"
        self.bottom_up_note.value = (f"<small>{self._t('planner.bottom_up_note')}</small>"
                                     if self.opportunities is not None else "")

    def _rerender(self) -> None:
        """The same plan again in the page's language (re-allocating gives the same numbers)."""
        self.calibration_html.value = self._calibration_line()
        self._show_page()
        self._update()

    # ------------------------------------------------------------------ data
    def _available_levels(self) -> list[str]:
        out = ["company"]
        for lv, col in LEVEL_COLUMNS.items():
            if col is None:
                continue
            if col in self.tx.columns or (lv == "team" and self.reps is not None and "team" in self.reps.columns
                                          and "rep_id" in self.tx.columns):
                out.append(lv)
        order = ["rep", "team", "region", "channel", "category", "product", "company"]
        return sorted(out, key=lambda lv: order.index(lv) if lv in order else len(order))

    def _panel(self, level: str) -> pd.DataFrame:
        if level not in self._panels:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SalesplanWarning)
                self._panels[level] = metric_panel(self.tx, level=level, metric=self.metric, reps=self.reps)
        return self._panels[level]

    # ---------------------------------------------------------------- period
    def _period_value(self, period: Any) -> Any:
        """A plan period as the dropdown holds it: an int year, or a (start, end) pair of month strings."""
        if isinstance(period, (int, np.integer)) and not isinstance(period, bool):
            return int(period)
        months = months_of_period(period)
        if months[0].month == 1 and len(months) == 12:
            return int(months[0].year)
        return (f"{months[0]:%Y-%m}", f"{months[-1]:%Y-%m}")

    @staticmethod
    def _period_label(value: Any) -> str:
        return str(value) if isinstance(value, int) else f"{value[0]}_{value[1]}"

    def _period_options(self, period: Any) -> list[tuple[str, Any]]:
        first = data_plan_period(self.data_end)
        if first.year is not None:
            values = [first.year, first.year + 1]
        else:
            nxt = first.start + pd.DateOffset(months=12)
            values = [(f"{first.start:%Y-%m}", f"{first.end:%Y-%m}"),
                      (f"{nxt:%Y-%m}", f"{nxt + pd.DateOffset(months=11):%Y-%m}")]
        if period is not None and self._period_value(period) not in values:
            values.append(self._period_value(period))
        return [(self._period_text(v), v) for v in values]

    def _period_text(self, value: Any) -> str:
        """A plan period as the dropdown shows it: ``2026`` or ``2025-07 to 2026-06``."""
        return str(value) if isinstance(value, int) else self._t("planner.period_range", start=value[0], end=value[1])

    def _months(self) -> pd.DatetimeIndex:
        return months_of_period(self.period.value)

    # ----------------------------------------------------------- joint paths
    def _given_paths(self, level: str) -> pd.DataFrame | None:
        """The forecast= paths when they are of this level (most of their keys are its units)."""
        if self._forecast is None:
            return None
        panel = self._panel(level)
        ids = set(self._forecast["unique_id"].unique())
        if len(ids & set(panel["unique_id"])) >= 0.5 * len(ids):
            return self._forecast
        return None

    def _parents(self, level: str, units: list[str]) -> pd.DataFrame | None:
        """The levels above the units (lowest first) as one row per unit, from the reps table or the data."""
        if level == "rep":
            if self.reps is not None and "rep_id" in self.reps.columns:
                cols = [c for c in ("team", "region") if c in self.reps.columns]
                if cols:
                    org = self.reps.assign(rep_id=self.reps["rep_id"].astype("str")).drop_duplicates("rep_id")
                    return org.rename(columns={"rep_id": "unique_id"})[["unique_id", *cols]]
            if "region" in self.tx.columns and "rep_id" in self.tx.columns:
                m = self.tx[["rep_id", "region"]].dropna().astype("str").drop_duplicates()
                if not m["rep_id"].duplicated().any():
                    return m.rename(columns={"rep_id": "unique_id"})
        if level == "team" and self.reps is not None and {"team", "region"} <= set(self.reps.columns):
            m = self.reps[["team", "region"]].dropna().astype("str").drop_duplicates()
            if not m["team"].duplicated().any():
                return m.rename(columns={"team": "unique_id"})
        return None

    def allocator(self) -> Allocator:
        """The fitted allocator of the current level and period (fitted once, then cached)."""
        key = (self.level.value, self.period.value)
        if key not in self._allocators:
            level = self.level.value
            months = self._months()
            last = self.data_end.to_period("M").to_timestamp()
            if months[0] <= last:
                raise SalesplanError(self._t("planner.period_in_data", start=f"{months[0]:%Y-%m}",
                                             end=f"{months[-1]:%Y-%m}", data_end=f"{self.data_end:%Y-%m}"))
            panel = self._panel(level)
            given = self._given_paths(level)
            if given is not None:
                alloc = Allocator(period=self.period.value, decimals=self.decimals).fit(panel, given)
                units = list(alloc.units_)
                nodes, S = _hierarchy(units, self._parents(level, units), level)
                inside = given[given["ds"].isin(months)]
                wide = inside.pivot_table(index="unique_id", columns="sample", values="y", aggfunc="sum")
                bottom = wide.reindex(units).fillna(0.0).to_numpy(float)
                monthly = inside.groupby(["ds", "sample"])["y"].sum().unstack("sample").reindex(months)
                self._joint[key] = {"nodes": nodes, "S": S, "totals": S @ bottom,
                                    "company_monthly": monthly.reindex(columns=wide.columns).fillna(0.0).to_numpy(float),
                                    "samples": wide.columns.to_numpy()}
                self.forecast_source[level] = "forecast= (given sample paths, taken as joint paths)"
                self._source_text[level] = ("planner.source_given", {})
            else:
                units = sorted(panel["unique_id"].astype("str").unique())
                # Reps who started less than a year ago keep ramping up (as capacity_plan assumes).
                ramp = DEFAULT_RAMP if level == "rep" else None
                jf = JointForecast(n_samples=self.n_samples, seed=self.seed, method=self.reconcile, ramp=ramp).fit(
                    panel, period=months, parents=self._parents(level, units), level=level)
                alloc = Allocator(period=self.period.value, decimals=self.decimals).fit(panel, jf.monthly_samples())
                self._joint[key] = {"nodes": jf.nodes_, "S": jf.S_, "totals": jf.totals_,
                                    "company_monthly": jf.monthly_.sum(axis=0),
                                    "samples": np.arange(jf.totals_.shape[1]), "model": jf}
                self.forecast_source[level] = (
                    f"joint paths of every {level} and level above ({jf.totals_.shape[1]:,} paths, "
                    f"reconciled by {jf.method_})")
                self._source_text[level] = ("planner.source_joint", {
                    "level": level, "paths": f"{jf.totals_.shape[1]:,}", "method": jf.method_})
            self._allocators[key] = alloc
        return self._allocators[key]

    @property
    def joint(self) -> JointForecast | None:
        """The fitted :class:`salesplan.targets.JointForecast` of the current level and period (None with forecast=)."""
        state = self._joint.get((self.level.value, self.period.value))
        return None if state is None else state.get("model")

    @property
    def samples(self) -> pd.DataFrame | None:
        """The joint paths of the plan period: ``level, unique_id, sample, y`` (period totals).

        The same ``sample`` number is the same simulated future for every node;
        the company's paths include new hires at their ramped capacity.
        """
        state = self._joint.get((self.level.value, self.period.value))
        if state is None:
            return None
        nodes, tot, draws = state["nodes"], state["totals"], state["samples"]
        k = tot.shape[1]
        y = tot + np.where((nodes["level"] == "company").to_numpy(), self._hire_total, 0.0)[:, None]
        return pd.DataFrame({
            "level": np.repeat(nodes["level"].to_numpy(), k),
            "unique_id": pd.array(np.repeat(nodes["unique_id"].to_numpy(), k), dtype="str"),
            "sample": np.tile(draws, len(nodes)),
            "y": y.reshape(-1),
        })

    def _node_probabilities(self, res: pd.DataFrame, hires: float) -> tuple[pd.DataFrame, np.ndarray]:
        """Every node's probability on the joint paths, and the units' probabilities in the rows of ``res``."""
        state = self._joint[(self.level.value, self.period.value)]
        nodes, S = state["nodes"], state["S"]
        b = S.shape[1]
        if "res_index" not in state:
            # Rows of an allocation follow the allocator's units; the paths' units may be ordered otherwise.
            ids = nodes["unique_id"].to_numpy()[:b]
            state["res_index"] = pd.Index(self.allocator().units_).get_indexer(ids)
            state["company"] = (nodes["level"] == "company").to_numpy()
        idx = state["res_index"]
        quota = res["quota"].to_numpy(float)
        if len(quota) < len(self.allocator().units_):
            q = res.set_index("unique_id")["quota"].reindex(nodes["unique_id"].to_numpy()[:b]).fillna(0.0)
            q = q.to_numpy(float)
        else:
            q = np.where(idx >= 0, quota[np.maximum(idx, 0)], 0.0)
        probs = node_probabilities(nodes, S, state["totals"], q)
        # New hires are in every path at their ramped capacity: the company's quota and paths both carry it.
        if hires:
            probs.loc[state["company"], "quota"] += hires
        unit_p = np.full(len(res), np.nan)
        ok = (idx >= 0) & (idx < len(res))
        unit_p[idx[ok]] = probs["probability"].to_numpy()[:b][ok]
        return probs, unit_p

    def _bottom_up(self) -> pd.DataFrame | None:
        key = (self.level.value, self.period.value, float(self.win_rate_change.value))
        if key not in self._bottom:
            view = None
            if self.opportunities is not None and self.level.value in ("rep", "team", "region", "company"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SalesplanWarning)
                    if self._win_rates is None:
                        self._win_rates = stage_win_rates(self.opportunities, self.stage_history)
                    pipe = pipeline_value(self.opportunities, period=key[1], level=key[0], win_rates=self._win_rates,
                                          win_rate_change=key[2], reps=self.reps)
                    won = won_in_run_rate(self.opportunities, self._panel(key[0]), period=key[1], level=key[0],
                                          reps=self.reps)
                    view = bottom_up(self._panel(key[0]), period=key[1], pipeline=pipe, won=won)
            self._bottom[key] = view
        return self._bottom[key]

    @property
    def base(self) -> float:
        """Last year's actual for the plan period (what growth is measured against).

        When the twelve months before the period are partly after the data
        (planning a later year), the months after the data count at their
        forecast mean (the joint paths), so growth is measured against the
        expected year before rather than against nothing.
        """
        alloc = self.allocator()
        jf = self.joint
        last = self.data_end.to_period("M").to_timestamp()
        if jf is not None and alloc.months_[0] - pd.DateOffset(months=12) + pd.DateOffset(months=11) > last:
            return float(jf.prior_mean_[(jf.nodes_["level"] == "company").to_numpy()].sum())
        return float(alloc.last_year_.sum())

    def _productivity(self) -> float:
        if self._prod is None:
            self._prod = full_productivity(self._panel("rep"), self.reps)
        return self._prod

    def _hires(self, alloc: Allocator) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        """Rows for the new heads: hired in the chosen month, ramped capacity as their number."""
        n = int(self.headcount.value)
        if not n or self.level.value != "rep":
            return None, None
        months = alloc.months_
        start = months[min(int(self.hire_month.value), len(months) - 1)]
        ids = [f"new_hire_{i + 1}" for i in range(n)]
        cap = capacity_plan(pd.DataFrame({"rep_id": ids, "start_date": [start] * n}),
                            period=(months[0], months[-1]), productivity=self._productivity())
        vals = cap.pivot(index="rep_id", columns="ds", values="capacity").reindex(index=ids, columns=months)
        vals = vals.to_numpy(float)
        if self.decimals is not None:
            vals = largest_remainder(vals, np.round(vals.sum(axis=1), self.decimals), decimals=self.decimals)
        nan = np.full(n, np.nan)
        rows = pd.DataFrame({
            "unique_id": pd.array(ids, dtype="str"), "quota": vals.sum(axis=1), "share": nan,
            "locked": False, "fallback": True, "history": 0.0, "last_year": 0.0, "growth": nan,
            "forecast_mean": nan, "forecast_lo": nan, "forecast_hi": nan, "probability": nan, "verdict": "new hire",
        })
        phased = pd.DataFrame({"unique_id": pd.array(np.repeat(ids, len(months)), dtype="str"),
                               "ds": np.tile(months.to_numpy(), n), "value": vals.reshape(-1)})
        return rows, phased

    def _scenario(self) -> Scenario:
        prod = self._productivity() if self.headcount.value and self.level.value == "rep" else 0.0
        return Scenario(self.name.value or "plan", growth=float(self.growth.value),
                        price_change=float(self.price_change.value), headcount=int(self.headcount.value),
                        productivity=prod, method=self.method.value)

    # ------------------------------------------------------------- observers
    def _on_scope(self, _change: Any) -> None:
        if self._busy:
            return
        with self.errors.capture():
            alloc = self.allocator()
            self._units = list(alloc.units_)
            self._locks = {}
            self._busy = True
            try:
                self.page.max = max(1, -(-len(self._units) // self.page_size))
                self.page.value = 1
            finally:
                self._busy = False
            months = alloc.months_
            self._busy = True
            try:
                keep = min(int(self.hire_month.value), len(months) - 1)
                self.hire_month.options = [(f"{m:%Y-%m}", i) for i, m in enumerate(months)]
                self.hire_month.value = keep
            finally:
                self._busy = False
            self._show_page()
            self._set_total_from_growth()
            self.calibration_html.value = self._calibration_line()
        self._update()

    def _show_page(self) -> None:
        """Bind the grid's slots to the units of the current page."""
        first = (int(self.page.value) - 1) * self.page_size
        keys = self._units[first:first + self.page_size]
        quota = (dict(zip(self.result["unique_id"].tolist(), self.result["quota"].tolist()))
                 if self.result is not None else {})
        self._busy = True
        try:
            for i, slot in enumerate(self._slots):
                key = keys[i] if i < len(keys) else None
                slot.key = key
                slot.box.layout.display = None if key is not None else "none"
                if key is None:
                    continue
                slot.label.value = key
                slot.lock.value = key in self._locks
                slot.value.value = float(self._locks.get(key, quota.get(key, 0.0)))
            self.page_info.value = (self._t("planner.page_info", first=first + 1, last=first + len(keys),
                                            total=len(self._units)) if self._units else "")
        finally:
            self._busy = False
        self._refresh_rows()

    def row(self, key: str) -> _UnitRow:
        """The grid row of unit ``key`` (turning to its page)."""
        if key not in self._units:
            raise SalesplanError(self._t("planner.no_unit", unit=repr(key), level=repr(self.level.value),
                                         units=self._units[:8]))
        page = self._units.index(key) // self.page_size + 1
        if self.page.value != page:
            self.page.value = page
        return next(slot for slot in self._slots if slot.key == key)

    def _set_total_from_growth(self) -> None:
        self._busy = True
        try:
            self.total.value = round(self._scenario().total(self.base), self.decimals)
        finally:
            self._busy = False

    def _on_growth(self, _change: Any) -> None:
        if self._busy:
            return
        with self.errors.capture():
            self._set_total_from_growth()
        self._update()

    def _on_total(self, _change: Any) -> None:
        if self._busy:
            return
        with self.errors.capture():
            s = self._scenario()
            added = s.total(0.0)
            base = self.base * (1 + s.price_change)
            if base > 0:
                self._busy = True
                try:
                    self.growth.value = float(np.clip((self.total.value - added) / base - 1, -0.5, 1.0))
                finally:
                    self._busy = False
        self._update()

    def _on_edit(self, row: _UnitRow, _change: Any) -> None:
        if self._busy or row.key is None:
            return
        # Typing a number is an override: lock it so the rest re-allocates around it.
        self._locks[row.key] = float(row.value.value)
        self._busy = True
        row.lock.value = True
        self._busy = False
        self._update()

    def _on_lock(self, row: _UnitRow, _change: Any) -> None:
        if self._busy or row.key is None:
            return
        if row.lock.value:
            self._locks[row.key] = float(row.value.value)
        else:
            self._locks.pop(row.key, None)
        self._update()

    def _on_change(self, _change: Any) -> None:
        if self._busy:
            return
        if _change is not None and getattr(_change, "owner", None) in (self.price_change, self.headcount):
            with self.errors.capture():
                self._set_total_from_growth()
        self._update()

    @property
    def locks(self) -> dict[str, float]:
        """Unit -> locked value."""
        return dict(self._locks)

    def lock(self, key: str, value: float | None = None) -> None:
        """Lock ``key`` at ``value`` (or at its current number) and re-allocate."""
        if key not in self._units:
            raise SalesplanError(self._t("planner.no_unit", unit=repr(key), level=repr(self.level.value),
                                         units=self._units[:8]))
        if value is None:
            value = float(self.result.set_index("unique_id")["quota"][key]) if self.result is not None else 0.0
        self._locks[key] = float(value)
        self._show_page()
        self._update()

    def import_excel(self, path: str | Path) -> pd.DataFrame | None:
        """Read back a workbook exported by :meth:`export` and edited by a manager.

        Every changed unit of the planned level becomes a lock at its new
        annual total and the rest is re-allocated so the total holds. Bad
        edits (text, negative numbers, a sum that no longer holds) are shown
        in the page, cell by cell, and nothing changes.

        Returns
        -------
        DataFrame or None
            Every changed cell (``sheet, cell, level, unique_id, ds, month,
            old, new, change``), or ``None`` when the workbook was refused.
        """
        with self.errors.capture():
            plan = self.plan
            if plan is None:
                raise SalesplanError(self._t("planner.no_plan_compare"))
            edits = load_plan_excel(path, plan)
            level = self.level.value
            changed = edits.changes[edits.changes["level"] == level]["unique_id"].unique()
            locks = {unit: value for unit, value in edits.locks.get(level, {}).items() if unit in set(changed)}
            self._locks.update({unit: float(value) for unit, value in locks.items()})
            self._show_page()
            self._update()
            self.errors.show_info(self._t("planner.read_excel", cells=len(edits.changes), file=Path(path).name,
                                          units=len(locks), level=self._label(f"levels.{level}", level)))
            return edits.changes
        return None

    def unlock(self, key: str) -> None:
        """Unlock ``key`` and re-allocate."""
        self._locks.pop(key, None)
        self._show_page()
        self._update()

    def unlock_all(self) -> None:
        """Remove every lock."""
        self._locks = {}
        self._show_page()
        self._update()

    # ---------------------------------------------------------------- update
    def _update(self) -> None:
        """Re-allocate with the current controls and refresh table, charts and checks."""
        if self._busy:
            return
        with self.errors.capture():
            if self.stretch.value >= self.sandbag.value:
                raise SalesplanError(self._t("planner.stretch_above_sandbag", stretch=f"{self.stretch.value:.2f}",
                                             sandbag=f"{self.sandbag.value:.2f}"))
            alloc = self.allocator()
            total = float(self.total.value)
            hire_res, hire_phased = self._hires(alloc)
            reserved = float(hire_res["quota"].sum()) if hire_res is not None else 0.0
            if hire_res is not None and reserved > total + 1e-9:
                raise SalesplanError(self._t("planner.below_hires", total=f"{total:,.0f}", hires=len(hire_res),
                                             capacity=f"{reserved:,.0f}", heads=self._t("planner.headcount")))
            # New hires get their ramped capacity; the rest of the total goes to the existing units.
            res = alloc.allocate(total - reserved, method=self.method.value, locks=self.locks or None,
                                 potential=self.potential)
            phased = alloc.phase(res, profile=self.profile.value)
            probs, unit_p = self._node_probabilities(res, reserved)
            res["probability"] = unit_p
            p = res["probability"]
            res["verdict"] = np.select([p < self.stretch.value, p > self.sandbag.value], ["stretch", "sandbag"],
                                       default="ok")
            res.loc[p.isna(), "verdict"] = ""
            view = self._bottom_up()
            if view is not None:
                g = target_gap(res, view).set_index("unique_id")
                res["bottom_up"] = g["bottom_up"].reindex(res["unique_id"]).to_numpy()
                res["gap"] = g["gap"].reindex(res["unique_id"]).to_numpy()
            if hire_res is not None:
                res = pd.concat([res, hire_res], ignore_index=True)
                phased = pd.concat([phased, hire_phased], ignore_index=True)
                res["share"] = res["quota"] / total if total > 0 else 0.0
            v = unit_verdicts(res, stretch=self.stretch.value, sandbag=self.sandbag.value,
                              strategy=self.strategy.value)
            res["smart"] = v["smart"].to_numpy()
            res["smart_reason"] = v["smart_reason"].to_numpy()
            self._hire_total = reserved
            self.result, self.phased, self.probabilities = res, phased, probs
            self._show_page()
            self._refresh_charts(alloc, res, phased)
            self._refresh_table(alloc, res)
            self.smart = self._smart(alloc)
            smart = self.smart[["letter", "criterion", "verdict", "reason"]].assign(
                criterion=[self._label(f"planner.criterion_{k}", c) for k, c in zip(self.smart["letter"],
                                                                                    self.smart["criterion"])],
                verdict=self.smart["verdict"].map(self._verdict))
            self.smart_html.value = _table_html(smart.rename(columns=self._headers(smart.columns)))
            self.summary.value = self._summary_html(alloc, res)

    def _refresh_rows(self) -> None:
        """Write the current numbers into the visible rows."""
        if self.result is None:
            return
        res = self.result
        cols = ["quota", "probability", "verdict", "last_year", "fallback", "smart", "smart_reason"]
        has_bu = "bottom_up" in res.columns
        if has_bu:
            cols.append("bottom_up")
        # Plain dicts: a handful of rows read per change, pandas .loc would cost more than the allocation.
        rows = dict(zip(res["unique_id"].tolist(), zip(*(res[c].tolist() for c in cols))))
        self._busy = True
        try:
            for slot in self._slots:
                if slot.key is None or slot.key not in rows:
                    continue
                r = dict(zip(cols, rows[slot.key]))
                if slot.key not in self._locks:
                    slot.value.value = float(r["quota"])
                p = r["probability"]
                parts = ([self._t("planner.row_probability", p=f"{p:.0%}", verdict=self._verdict(r["verdict"])).strip()]
                         if not np.isnan(p) else [])
                parts.append(self._t("planner.row_smart", smart=self._verdict(r["smart"]))
                             + (f" ({self._reason(r['smart_reason'])})" if r["smart_reason"] else ""))
                parts.append(self._t("planner.row_last_year", value=f"{r['last_year']:,.0f}"))
                if has_bu and not np.isnan(r["bottom_up"]):
                    parts.append(self._t("planner.row_bottom_up", value=f"{r['bottom_up']:,.0f}"))
                if r["fallback"]:
                    parts.append(self._t("planner.row_no_history"))
                slot.info.value = " · ".join(parts)
        finally:
            self._busy = False

    def _verdict(self, verdict: str) -> str:
        """A verdict (``stretch``, ``sandbag``, ``ok``, ``new hire``, ``pass``...) in the page's language."""
        return self._label(f"planner.verdict_{str(verdict).replace(' ', '_')}", str(verdict)) if verdict else ""

    def _reason(self, reason: str) -> str:
        """A unit's SMART reasons (:func:`salesplan.targets.unit_verdicts`) in the page's language."""
        out = []
        for part in str(reason).split("; "):
            m = _THRESHOLD_REASON.fullmatch(part)
            if m:
                out.append(self._t(f"planner.reason_{m['which']}", p=m["p"], limit=m["limit"]))
            else:
                out.append(self._label(_REASONS[part], part) if part in _REASONS else part)
        return self._t("planner.summary_separator").join(out)

    def _smart(self, alloc: Allocator) -> pd.DataFrame:
        # The company total is judged on the same joint paths as every unit (their sum in each path),
        # with new hires at their ramped capacity.
        key = (self.level.value, self.period.value, round(self._hire_total, 6))
        if key not in self._smart_checks:
            state = self._joint[key[:2]]
            cm = state["company_monthly"]
            if self._hire_total:
                hires = set(self.result.loc[self.result["verdict"] == "new hire", "unique_id"])
                per_month = (self.phased[self.phased["unique_id"].isin(hires)].groupby("ds")["value"].sum()
                             .reindex(alloc.months_).fillna(0.0).to_numpy(float))
                cm = cm + per_month[:, None]
            k = cm.shape[1]
            paths = pd.DataFrame({"unique_id": "all", "ds": np.repeat(alloc.months_.to_numpy(), k),
                                  "sample": np.tile(np.arange(k), len(alloc.months_)), "y": cm.reshape(-1)})
            self._smart_checks[key] = SmartCheck(n_samples=self.n_samples, seed=self.seed, model=self.model).fit(
                self.tx, samples={(self.metric, "company"): paths},
                panels={(self.metric, "company"): self._panel("company")}, reps=self.reps)
        checker = self._smart_checks[key]
        checker.stretch, checker.sandbag = float(self.stretch.value), float(self.sandbag.value)
        months = alloc.months_
        target = Target(self.metric, float(self.total.value), months[0], months[-1] + pd.offsets.MonthEnd(0),
                        strategy=self.strategy.value or None, name=f"{self.metric} {self.period.label}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SalesplanWarning)
            return checker.check([target])

    def _calibration_line(self) -> str:
        """One sentence: how the stated probabilities did on this data's last complete year (computed once per level)."""
        level = self.level.value
        if not self.show_calibration:
            return ""
        if level not in self._calibration:
            panel = self._panel(level)
            n_months = panel["ds"].nunique()
            if n_months < 24:
                text = ("planner.calibration_short", {"months": n_months})
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    bt = calibration_backtest(panel, growths=(0.0, 0.05, 0.10), origins=1,
                                              methods=("equal_growth",), reconcile="bottom_up",
                                              ramp=DEFAULT_RAMP if level == "rep" else None,
                                              n_samples=200, seed=self.seed)
                year = bt["origin"].iloc[0]
                brier = float(((bt["probability"] - bt["hit"]) ** 2).mean())
                naive = bt["naive"].notna()
                naive_score = (f"{float(((bt.loc[naive, 'naive'] - bt.loc[naive, 'hit']) ** 2).mean()):.2f}"
                               if naive.any() else "")
                text = ("planner.calibration", {
                    "start": f"{year:%Y-%m}", "level": level, "stated": f"{bt['probability'].mean():.0%}",
                    "reached": f"{bt['hit'].mean():.0%}", "quotas": len(bt), "brier": f"{brier:.2f}",
                    "naive": naive_score})
            self._calibration[level] = text
        key, values = self._calibration[level]
        values = dict(values)
        if "level" in values:
            values["level"] = self._label(f"levels.{values['level']}", values["level"])
        if values.get("naive"):
            values["naive"] = self._t("planner.calibration_naive", score=values["naive"])
        return f"<small>{html.escape(self._t(key, **values))}</small>"

    def _summary_html(self, alloc: Allocator, res: pd.DataFrame) -> str:
        p = res["probability"]
        key, values = self._source_text.get(self.level.value, ("", {}))
        if "level" in values:
            values = {**values, "level": self._label(f"levels.{values['level']}", values["level"])}
        src = self._t(key, **values) if key else self.forecast_source.get(self.level.value, "")
        new = res["verdict"] == "new hire"
        hires = (self._t("planner.summary_hires", hires=int(new.sum()), capacity=f"{res.loc[new, 'quota'].sum():,.0f}")
                 if new.any() else "")
        prob = (self._t("planner.summary_probability", low=f"{p.min():.0%}", high=f"{p.max():.0%}",
                        median=f"{p.median():.0%}")
                if p.notna().any() else self._t("planner.summary_no_distribution"))
        if self.probabilities is not None:
            lv_arr = self.probabilities["level"].to_numpy()
            pr = self.probabilities["probability"].to_numpy()
            for lv in pd.unique(lv_arr):
                if lv == self.level.value:
                    continue
                g = pr[lv_arr == lv]
                prob += (self._t("planner.summary_separator") + self._label(f"levels.{lv}", lv) + f" {g.min():.0%}"
                         + (f"..{g.max():.0%}" if len(g) > 1 else ""))
        return self._t("planner.summary", total=f"{res['quota'].sum():,.0f}",
                       metric=self._label(f"columns.{self.metric}", self.metric), units=len(res),
                       level=self._label(f"levels.{self.level.value}", self.level.value),
                       start=f"{alloc.months_[0]:%Y-%m}", end=f"{alloc.months_[-1]:%Y-%m}",
                       last_year=f"{alloc.last_year_.sum():,.0f}", locked=int(res["locked"].sum()),
                       probability=prob, hires=hires, source=html.escape(src))

    def _refresh_table(self, alloc: Allocator, res: pd.DataFrame) -> None:
        """Every unit's numbers in one table (sortable past a screen, downloadable)."""
        cols = [c for c in ("unique_id", "quota", "share", "probability", "verdict", "last_year", "growth",
                            "forecast_mean", "forecast_lo", "forecast_hi", "bottom_up", "gap", "smart",
                            "smart_reason") if c in res.columns]
        self.allocation_table.update(
            res[cols], name=f"allocation_{self.level.value}",
            money=["last_year", "bottom_up", "gap"], percent=["growth"],
            labels={**self._headers(cols, growth="growth_vs_last_year", probability="p_reach",
                                    forecast_mean="forecast", bottom_up="bottom_up", smart="smart",
                                    smart_reason="smart_reason"),
                    "unique_id": self._label(f"levels.{self.level.value}", self.level.value),
                    "forecast_lo": self._t("planner.forecast_low", interval=alloc.interval),
                    "forecast_hi": self._t("planner.forecast_high", interval=alloc.interval)})

    def _refresh_charts(self, alloc: Allocator, res: pd.DataFrame, phased: pd.DataFrame) -> None:
        # Plain dict figures: plotly's per-property validation would cost more than the allocation.
        x = res["unique_id"].to_numpy(dtype=object)
        layout = {"height": 380, "margin": {"t": 40, "b": 40}, "legend": {"orientation": "h"}}
        quota = {"type": "bar", "x": x, "y": res["quota"].to_numpy(), "name": self._t("columns.quota"),
                 "marker": {"color": np.where(res["locked"], "#c77c02", "#0b79b8")}}
        traces = [quota]
        if res["forecast_mean"].notna().any():
            mean = res["forecast_mean"].to_numpy()
            traces.append({"type": "scatter", "mode": "markers", "x": x, "y": mean,
                           "name": self._t("planner.trace_forecast", interval=alloc.interval),
                           "marker": {"color": "black", "size": 6},
                           "error_y": {"type": "data", "symmetric": False,
                                       "array": res["forecast_hi"].to_numpy() - mean,
                                       "arrayminus": mean - res["forecast_lo"].to_numpy()}})
        traces.append({"type": "scatter", "mode": "markers", "x": x, "y": res["last_year"].to_numpy(),
                       "name": self._t("columns.last_year"),
                       "marker": {"symbol": "line-ew-open", "size": 14, "color": "#888"}})
        self.quota_chart.update({"data": traces,
                                 "layout": {**layout, "title": {"text": self._t("planner.chart_quotas")}}})

        colors = np.select([res["verdict"] == "stretch", res["verdict"] == "sandbag"], ["#a61b1b", "#c77c02"],
                           "#2a9d5b")
        lines = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
                  "line": {"dash": "dash", "color": c}} for y, c in
                 ((self.stretch.value, "#a61b1b"), (self.sandbag.value, "#c77c02"))]
        self.probability_chart.update({
            "data": [{"type": "bar", "x": x, "y": res["probability"].to_numpy(), "name": self._t("planner.trace_probability"),
                      "marker": {"color": colors}}],
            "layout": {**layout, "title": {"text": self._t("planner.probability_title")},
                       "yaxis": {"range": [0, 1], "tickformat": ".0%"}, "shapes": lines},
        })

        months = alloc.months_.to_numpy()
        monthly = phased.groupby("ds")["value"].sum().reindex(alloc.months_).to_numpy()
        ly = alloc.history_panel_.reindex(columns=[m - pd.DateOffset(years=1) for m in alloc.months_])
        traces = [{"type": "bar", "x": months, "y": monthly, "name": self._t("planner.trace_plan")},
                  {"type": "scatter", "mode": "lines+markers", "x": months, "y": ly.sum(axis=0).to_numpy(),
                   "name": self._t("columns.last_year")}]
        if alloc.monthly_forecast_ is not None:
            traces.append({"type": "scatter", "mode": "lines", "x": months, "y": alloc.monthly_forecast_.sum(axis=0),
                           "name": self._t("planner.trace_forecast_mean"), "line": {"dash": "dot"}})
        self.phasing_chart.update({"data": traces,
                                   "layout": {**layout, "title": {"text": self._t("planner.phasing_title")}}})

    # ----------------------------------------------------------------- plans
    @property
    def figures(self) -> dict[str, go.Figure | None]:
        """The current charts by name."""
        return {"quotas": self.quota_chart.figure, "probability": self.probability_chart.figure,
                "phasing": self.phasing_chart.figure}

    @property
    def plan(self) -> Plan | None:
        """The current state as a :class:`salesplan.targets.Plan`.

        Rows for the planned level, for the company total and, when planning
        reps with a reps table, for their teams and regions (sums of the reps).
        """
        if self.result is None or self.phased is None:
            return None
        lv = self.level.value
        frames = {lv: self.phased}
        parents: dict[str, str] = {}
        if lv == "rep" and self.reps is not None:
            # The organisation above the reps (team, region) as levels of their own: one sheet each.
            org = self.reps.assign(rep_id=self.reps["rep_id"].astype("str")).drop_duplicates("rep_id")
            chain = ["rep_id"] + [c for c in ("team", "region") if c in org.columns]
            for child, parent in zip(chain[:-1], chain[1:]):
                link = org.dropna(subset=[parent]).set_index(child)[parent].astype("str")
                parents.update({k: v for k, v in link.items() if k not in parents})
            # New hires (and reps missing from the table) sit under "(no team)", "(no region)".
            for k in set(self.phased["unique_id"].astype("str")) - set(org["rep_id"]):
                parents[k] = f"(no {chain[1]})" if len(chain) > 1 else "all"
            for child, parent in zip(chain[1:-1], chain[2:]):
                parents[f"(no {child})"] = f"(no {parent})"
            ph = self.phased.assign(unique_id=self.phased["unique_id"].astype("str"))
            for col in chain[1:]:
                to = org.set_index("rep_id")[col].astype("str")
                agg = ph.assign(unique_id=ph["unique_id"].map(to).fillna(f"(no {col})"))
                frames[col] = agg.groupby(["unique_id", "ds"], as_index=False)["value"].sum()
        if lv != "company":
            frames["company"] = (self.phased.groupby("ds", as_index=False)["value"].sum()
                                 .assign(unique_id="all")[["unique_id", "ds", "value"]])
        params = {
            "level": lv, "period": self.period.value if isinstance(self.period.value, int)
            else list(self.period.value), "metric": self.metric, "method": self.method.value,
            "total": float(self.total.value), "growth": float(self.growth.value),
            "price_change": float(self.price_change.value), "headcount": int(self.headcount.value),
            "win_rate_change": float(self.win_rate_change.value),
            "profile": self.profile.value, "locks": self.locks, "strategy": self.strategy.value,
            "stretch": float(self.stretch.value), "sandbag": float(self.sandbag.value),
            "forecast_source": self.forecast_source.get(lv, ""),
        }
        inputs = {"transactions": self.tx, "forecast": self._forecast, "reps": self.reps,
                  "opportunities": self.opportunities}
        extra = self.result[["unique_id", "probability"]]
        return make_plan(self.name.value or "plan", frames, metric=self.metric, parents=parents or None,
                         parameters=params, inputs=inputs, extra=extra)

    def save(self) -> Path | None:
        """Save the current scenario as the next version under ``plan_dir``."""
        with self.errors.capture():
            plan = self.plan
            if plan is None:
                raise SalesplanError(self._t("planner.no_plan_save"))
            path = save_plan(plan, plan_dir=self.plan_dir)
            self.saved.append(path)
            self.errors.show_info(self._t("planner.saved", path=path, version=plan.version))
            return path
        return None

    def export(self, path: str | Path | None = None) -> Path | None:
        """Export the current plan to Excel: a sheet per level with names, formulas and probabilities.

        A manager's edited copy is read back with
        :func:`salesplan.targets.load_plan_excel`, whose changed cells become locks.
        """
        with self.errors.capture():
            plan = self.plan
            if plan is None:
                raise SalesplanError(self._t("planner.no_plan_export"))
            path = Path(path) if path is not None else self.plan_dir / f"{plan.name}.xlsx"
            out = export_excel(plan, path, names=self.reps if self.reps is not None else None,
                               probabilities=self.probabilities)
            self.errors.show_info(self._t("planner.exported", path=out))
            return out
        return None
