"""The forecast explorer: a level or one series forecast with intervals, its backtest, a coherent plan.

:class:`ForecastApp` is built like the other apps: controls are attributes
(``level``, ``series``, ``horizon``, ``model``, ``intervals``), one
``_update`` observer redraws the page, ``.container`` is what the notebook
shows and ``.result`` holds the frames, so the page can be checked in plain
pytest::

    app = ForecastApp.from_source(None)       # the demo company
    app.level.value = "region"
    app.series.value = "North"
    app.result["shown"]                       # the months forecast for North, with 80/95 bands
    app.result["backtest"]                    # MASE and WAPE per region, model vs seasonal naive

The numbers come from :mod:`salesplan.forecast` (forecasts, the rolling-origin
backtest and the hierarchical reconciliation); this module only caches them,
picks the rows, formats them with :mod:`salesplan.format` and lays them out.
Forecasts and backtests are kept per (level, model, horizon), so picking
another series or interval, or switching the language, computes nothing.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from salesplan import format as fmt
from salesplan.errors import SalesplanError, SalesplanWarning
from salesplan.i18n import t
from salesplan.ui._common import ErrorArea, PlotArea, app_from_source
from salesplan.ui._lang import Translated, option_values, relabel_options
from salesplan.ui.page import dimensions, missing
from salesplan.ui.table import Section, Table

__all__ = ["ForecastApp", "ALL", "COMPANY", "LEVELS", "MODELS", "INTERVALS", "SECTIONS"]

#: The series choice that means "the whole level" (its total, with its largest series).
ALL = "All"
#: The level of one series, the company total.
COMPANY = "company"
#: Breakdown columns the page offers as levels (those the data has), in this order.
LEVELS: tuple[str, ...] = ("region", "channel", "category", "product_id", "rep_id")
#: Models offered (names of :data:`salesplan.forecast.MODELS`).
MODELS: tuple[str, ...] = ("auto", "ets", "damped", "theta", "arima", "naive", "snaive")
#: Interval choices: option value -> coverages shown.
INTERVALS: dict[str, tuple[int, ...]] = {"80_95": (80, 95), "80": (80,), "95": (95,)}
#: The page's sections, in order.
SECTIONS: tuple[str, ...] = ("forecast", "backtest", "reconciliation")
#: Upper and lower level of the reconciled plan: the first two of these the data has.
HIERARCHY: tuple[str, ...] = ("region", "channel", "category")

#: Column -> key of the ``[levels]`` table.
_LEVEL_KEYS = {"product_id": "product", "rep_id": "rep"}
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
_MARGIN = {"l": 50, "r": 10, "t": 50, "b": 40}

_CSS = """<style>
.salesplan-note{color:#57606a;font-size:13px;margin:2px 0 8px 0}
</style>"""


def _sentence(text: str) -> str:
    return f'<p class="salesplan-note">{html.escape(text)}</p>'


def _dates(s: pd.Series) -> list[str]:
    return pd.to_datetime(s).dt.strftime("%Y-%m-%d").tolist()


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _wape(cv: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Summed absolute error over summed absolute actuals, per series and model (``unique_id, model, wape``)."""
    rows = []
    actual = cv["y"].abs().groupby(cv["unique_id"], sort=False).sum()
    for m in models:
        err = (cv[m] - cv["y"]).abs().groupby(cv["unique_id"], sort=False).sum()
        rows.append(pd.DataFrame({"unique_id": err.index, "model": m,
                                  "wape": (err / actual.replace(0.0, np.nan)).to_numpy()}))
    return pd.concat(rows, ignore_index=True)


@contextmanager
def _quiet() -> Iterator[None]:
    """Ignore salesplan's notes about the data inside a backtest window (the full history's forecast says them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanWarning)
        yield


class ForecastApp(Translated):
    """The forecast explorer page.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        The data, as :func:`salesplan.io.load_data` returns it; only
        ``transactions`` is used (``order_date``, ``revenue`` and any of the
        breakdown columns of :data:`LEVELS`).
    level : str
        ``"company"`` or a breakdown column the data has (``"region"``...).
    series : str, optional
        A series of that level; default :data:`ALL` (the level's total and
        its largest series).
    horizon : int, optional
        Months to forecast; default through the end of the plan period after
        the data (:func:`salesplan.periods.plan_period`).
    model : str
        One of :data:`MODELS`.
    intervals : sequence of int
        Coverages shown: ``(80, 95)``, ``(80,)`` or ``(95,)``.
    backtest_horizon : int
        Longest horizon of a backtest window (the forecast horizon when shorter).
    n_windows : int, optional
        Backtest cutoffs; default as many as the history allows, at most 3.
    hierarchy : sequence of str, optional
        Upper and lower level of the reconciled plan; default the first two of
        :data:`HIERARCHY` the data has.
    method : str
        Reconciliation method of the plan (see :func:`salesplan.forecast.hierarchy.reconcile`).
    methods : sequence of str, optional
        More reconciliation methods compared in the backtest by level.
    top : int
        Largest series drawn with a level's total.
    lang : str, optional
        Language of the page (``"en"``, ``"zh"``); default
        :func:`salesplan.i18n.current_lang`. The switch at the top changes it.

    Attributes
    ----------
    level, series, model, intervals : ipywidgets.Dropdown
        The controls (``series`` offers :data:`ALL` first).
    horizon : ipywidgets.IntSlider
        Months forecast.
    progress : ipywidgets.IntProgress
        Shown while a backtest or the reconciliation runs.
    errors : ErrorArea
        Unexpected problems, as text.
    chart, backtest_chart, reconciled_chart : PlotArea
        History, forecast and bands of the chosen series (or the level's
        total with its largest series); MASE per series, model against the
        seasonal naive; the reconciled forecast.
    html : dict of str to Section
        One per section of :data:`SECTIONS`: its sentences and tables
        (:class:`~salesplan.ui.table.Section`), sortable and filterable when long,
        downloadable as CSV and Excel; ``.value`` is the section as static HTML.
    container : ipywidgets.VBox
        The whole page.
    result : dict
        ``forecast`` (every series of the level: ``unique_id, ds, <model>,
        <model>-lo-80, ... -hi-95``), ``history`` (``unique_id, ds, y``),
        ``shown`` (the chart's series: ``ds, forecast, lo_80, hi_80, lo_95,
        hi_95``), ``units`` (per series of the level: ``unique_id, forecast,
        last_year, change, share``), ``backtest`` (per series: ``unique_id,
        mase, mase_snaive, wape, wape_snaive``), ``backtest_overall`` (per
        model: ``model, mase, mase_vs_snaive, wape, bias_pct, coverage_80``),
        ``reconciled`` (reconciled forecasts of every node), ``gaps``
        (``unique_id, n_bottom, gap_base, gap_reconciled``), ``mase_by_level``
        (``model`` then one column per level of the hierarchy), ``notes``
        (section -> the sentence shown instead; "" when none), ``warnings``
        (the forecasting modules' notes about the data) and ``error``.
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        level: str = COMPANY,
        series: str | None = None,
        horizon: int | None = None,
        model: str = "auto",
        intervals: Sequence[int] = (80, 95),
        backtest_horizon: int = 6,
        n_windows: int | None = None,
        hierarchy: Sequence[str] | None = None,
        method: str = "mint_shrink",
        methods: Sequence[str] | None = None,
        top: int = 5,
        lang: str | None = None,
    ) -> None:
        from salesplan._validation import check_choice

        self._init_lang(lang)
        self.tables = {k: v for k, v in dict(tables).items() if isinstance(v, pd.DataFrame)}
        check_choice(model, MODELS, name="model")
        shown = {v: k for k, v in INTERVALS.items()}.get(tuple(sorted(int(x) for x in intervals)))
        if shown is None:
            raise SalesplanError(f"intervals={list(intervals)!r} is not offered; choose (80, 95), (80,) or (95,).")
        self.backtest_horizon = int(backtest_horizon)
        self.n_windows = n_windows
        self.method = method
        self.methods = list(dict.fromkeys([method, *(methods or ())]))
        self.top = int(top)
        self.errors = ErrorArea()
        self.result: dict[str, Any] = {}
        self._reset_result()
        self._cache: dict[tuple, Any] = {}
        self._said: dict[tuple, list[str]] = {}
        self._heard: list[str] = []
        self._busy = False

        tx = self.tables.get("transactions")
        self.transactions = tx
        dims = dimensions(tx, candidates=LEVELS) if tx is not None else []
        self.hierarchy = list(hierarchy) if hierarchy is not None else (
            dimensions(tx, candidates=HIERARCHY)[:2] if tx is not None else [])
        default_h = self._default_horizon()
        levels = [COMPANY, *dims]
        self.level = widgets.Dropdown(options=levels, value=level if level in levels else COMPANY)
        self.series = widgets.Dropdown(options=[ALL], value=ALL)
        self._wanted_series = series
        self.horizon = widgets.IntSlider(value=int(horizon or default_h), min=1,
                                         max=max(36, int(horizon or default_h)), continuous_update=False)
        self.model = widgets.Dropdown(options=list(MODELS), value=model)
        self.intervals = widgets.Dropdown(options=list(INTERVALS), value=shown)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, bar_style="info",
                                            layout=widgets.Layout(display="none"))
        self.html = {s: Section(lang=self.lang) for s in SECTIONS}
        self.headings = {s: widgets.HTML() for s in SECTIONS}
        self.chart = PlotArea()
        self.backtest_chart = PlotArea()
        self.reconciled_chart = PlotArea()
        self.container = widgets.VBox([
            self.lang_switch, widgets.HTML(_CSS), self.errors,
            widgets.HBox([self.level, self.series]),
            widgets.HBox([self.horizon, self.model, self.intervals]),
            self.progress,
            self.headings["forecast"], self.chart, self.html["forecast"],
            self.headings["backtest"], self.html["backtest"], self.backtest_chart,
            self.headings["reconciliation"], self.html["reconciliation"], self.reconciled_chart,
        ])
        self._relabel()

        if tx is None:
            self.errors.show_error(self._t("forecast.no_transactions", tables=self._tables_seen()))
            self.result["error"] = self.errors.message
        else:
            self._update()
        for control in (self.level, self.series, self.horizon, self.model, self.intervals):
            control.observe(self._update, names="value")

    @classmethod
    def from_source(cls, data_path: str | Path | None = None, *, max_drop_fraction: float | None = None,
                    **kwargs) -> ForecastApp:
        """Load the data with :func:`salesplan.io.load_data` and build the app (errors shown in the page).

        ``max_drop_fraction`` is passed to the loader (default its own).
        """
        from salesplan.io import load_data

        load = load_data if max_drop_fraction is None else partial(load_data, max_drop_fraction=max_drop_fraction)
        return app_from_source(cls, data_path, load, **kwargs)

    def _tables_seen(self) -> str:
        return ", ".join(sorted(self.tables)) or "-"

    def _default_horizon(self) -> int:
        """Months from the last month of the data to the end of the plan period after it."""
        tx = self.transactions
        if tx is None or tx.empty or "order_date" not in tx.columns:
            return 12
        from salesplan.periods import plan_period

        last = pd.to_datetime(tx["order_date"]).max()
        end = plan_period(tx).end
        return max(1, (end.year - last.year) * 12 + end.month - last.month)

    # ------------------------------------------------------------------ language

    def _level_label(self, level: str) -> str:
        key = _LEVEL_KEYS.get(level, level)
        return self._label(f"levels.{key}", level)

    def _model_label(self, model: str) -> str:
        if "/" in model:  # a reconciled model: "auto/mint_shrink"
            base, method = model.split("/", 1)
            return self._t("forecast.reconciled_model", model=self._model_label(base), method=method)
        return self._label(f"forecast_models.{model}", model)

    def _relabel(self) -> None:
        """Every control label and heading in the page's language."""
        for control, key in ((self.level, "level"), (self.series, "series"), (self.horizon, "horizon"),
                             (self.model, "model"), (self.intervals, "intervals"), (self.progress, "computing")):
            control.description = self._t(f"forecast.{key}")
        busy, self._busy = self._busy, True  # relabelling the options must not recompute
        try:
            relabel_options(self.level, {lv: self._level_label(lv) for lv in option_values(self.level)})
            relabel_options(self.series, {ALL: self._t("forecast.all")})
            relabel_options(self.model, {m: self._model_label(m) for m in MODELS})
            relabel_options(self.intervals, {k: self._t(f"forecast.intervals_{k}") for k in INTERVALS})
        finally:
            self._busy = busy
        for s, widget in self.headings.items():
            widget.value = f"<h3>{html.escape(self._t(f'forecast.title_{s}'))}</h3>"

    def _rerender(self) -> None:
        """The page again in its language (every number is cached)."""
        if self.transactions is not None:
            self._update()
        else:
            self._resay("forecast.no_transactions", tables=self._tables_seen())

    # ------------------------------------------------------------------ computing

    def _reset_result(self) -> None:
        self.result.update({"forecast": None, "history": None, "shown": None, "units": None, "backtest": None,
                            "backtest_overall": None, "reconciled": None, "gaps": None, "mase_by_level": None,
                            "notes": {s: "" for s in SECTIONS}, "warnings": [], "error": ""})

    def _note(self, section: str, text: str) -> None:
        self.result["notes"][section] = text
        self.html[section].value = _sentence(text)

    def _needs(self, to_key: str, **lacking: Any) -> str:
        """The page's sentence for a section the data cannot feed ("" when it can)."""
        lack = missing(self.transactions, lang=self.lang, **lacking)
        return t("page.needs", self.lang, lack=lack, to=self._t(to_key)) if lack else ""

    def _cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per key; the salesplan warnings it gave are said again each time it is used."""
        if key not in self._cache:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SalesplanWarning)
                value = compute()
            for w in caught:
                if not issubclass(w.category, SalesplanWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            self._cache[key] = value
            self._said[key] = [str(w.message) for w in caught if issubclass(w.category, SalesplanWarning)]
        self._heard.extend(self._said[key])
        return self._cache[key]

    def _panel(self, level: str) -> pd.DataFrame:
        def compute() -> pd.DataFrame:
            from salesplan.forecast import panel_from_transactions

            tx = self.transactions
            if level != COMPANY:
                tx = tx[tx[level].notna()]
            p = panel_from_transactions(tx, freq="MS", by=None if level == COMPANY else level)
            return p.assign(unique_id=p["unique_id"].astype(str))[["unique_id", "ds", "y"]]

        return self._cached(("panel", level), compute)

    def _forecast(self, level: str) -> pd.DataFrame:
        def compute() -> pd.DataFrame:
            from salesplan.forecast import forecast

            return forecast(self._panel(level), self.horizon.value, models=self.model.value, level=[80, 95],
                            progress=False)

        return self._cached(("forecast", level, self.model.value, self.horizon.value), compute)

    def _busy_progress(self, steps: int) -> Callable[[], None]:
        """Show the progress bar for ``steps`` steps; returns the function that moves it one step."""
        self.progress.max = max(1, steps)
        self.progress.value = 0
        self.progress.layout.display = ""

        def step() -> None:
            self.progress.value = min(self.progress.max, self.progress.value + 1)

        return step

    def _done(self) -> None:
        self.progress.layout.display = "none"

    def _update(self, change: Any = None) -> None:
        if self._busy:
            return
        self._reset_result()
        self._heard = []
        with self.errors.capture():
            try:
                self._sync_series()
                for section, show in zip(SECTIONS, (self._show_forecast, self._show_backtest,
                                                    self._show_reconciliation)):
                    try:
                        show()
                    except SalesplanError as exc:  # what the data lacks for one section; the others still run
                        self._note(section, str(exc))
            finally:
                self._done()
        heard = list(dict.fromkeys(self._heard))
        self.result["warnings"] = heard
        if heard and not self.errors.level:
            # The forecasting modules speak English; a page in another language says how many notes there are.
            self.errors.show_warning("\n".join(heard) if self.lang == "en" else
                                     self._t("forecast.data_notes", n=len(heard)))
        self.result["error"] = self.errors.message if self.errors.level == "error" else ""

    def _sync_series(self) -> None:
        """The series of the chosen level in the series dropdown (keeping the choice when it is there)."""
        ids = [] if self.level.value == COMPANY else list(pd.unique(self._panel(self.level.value)["unique_id"]))
        values = [ALL, *ids]
        if option_values(self.series) == values:
            return
        wanted = self._wanted_series if self._wanted_series in values else self.series.value
        self._wanted_series = None
        self._busy = True  # setting the options fires the observer; this update covers it
        try:
            self.series.options = values
            self.series.value = wanted if wanted in values else ALL
            relabel_options(self.series, {ALL: self._t("forecast.all")})
        finally:
            self._busy = False

    # ------------------------------------------------------------------ the forecast

    def _band_columns(self, fc: pd.DataFrame, uid: str) -> pd.DataFrame:
        m = self.model.value
        one = fc[fc["unique_id"] == uid].sort_values("ds")
        out = pd.DataFrame({"ds": one["ds"].to_numpy(), "forecast": one[m].to_numpy()})
        for lv in (80, 95):
            out[f"lo_{lv}"] = one[f"{m}-lo-{lv}"].to_numpy()
            out[f"hi_{lv}"] = one[f"{m}-hi-{lv}"].to_numpy()
        return out

    def _show_forecast(self) -> None:
        level, chosen = self.level.value, self.series.value
        levels = INTERVALS[self.intervals.value]
        fc = self._forecast(level)
        hist = self._panel(level)
        self.result["forecast"], self.result["history"] = fc, hist
        if chosen == ALL:
            total_fc, total_hist, uid = self._forecast(COMPANY), self._panel(COMPANY), "total"
            name = self._t("forecast.total_of", level=self._level_label(level)) if level != COMPANY else \
                self._level_label(COMPANY)
        else:
            total_fc, total_hist, uid, name = fc, hist, chosen, chosen
        shown = self._band_columns(total_fc, uid)
        past = total_hist[total_hist["unique_id"] == uid]
        self.result["shown"] = shown

        data: list[dict] = []
        for n, lv in enumerate(sorted(levels, reverse=True)):  # widest first, palest
            data.append({"type": "scatter", "x": _dates(shown["ds"]) + _dates(shown["ds"])[::-1],
                         "y": shown[f"hi_{lv}"].tolist() + shown[f"lo_{lv}"].tolist()[::-1],
                         "fill": "toself", "fillcolor": _rgba(_COLORS[1], 0.15 + 0.12 * n), "line": {"width": 0},
                         "hoverinfo": "skip", "name": self._t("forecast.band", level=lv)})
        data.append({"type": "scatter", "mode": "lines+markers", "x": _dates(shown["ds"]),
                     "y": shown["forecast"].tolist(), "line": {"color": _COLORS[1]},
                     "name": self._t("forecast.trace_forecast")})
        data.append({"type": "scatter", "mode": "lines", "x": _dates(past["ds"]), "y": past["y"].tolist(),
                     "line": {"color": _COLORS[0]}, "name": self._t("forecast.trace_actual")})
        units = None
        if level != COMPANY:
            units = self._units(fc, hist)
            self.result["units"] = units
        if chosen == ALL and units is not None:
            for k, sid in enumerate(units["unique_id"].head(self.top)):
                color = _COLORS[2 + k % (len(_COLORS) - 2)]
                h, f = hist[hist["unique_id"] == sid], fc[fc["unique_id"] == sid]
                data.append({"type": "scatter", "mode": "lines", "x": _dates(h["ds"]), "y": h["y"].tolist(),
                             "line": {"color": color, "width": 1}, "name": str(sid), "legendgroup": str(sid)})
                data.append({"type": "scatter", "mode": "lines", "x": _dates(f["ds"]),
                             "y": f[self.model.value].tolist(), "line": {"color": color, "width": 1, "dash": "dot"},
                             "name": str(sid), "legendgroup": str(sid), "showlegend": False})
        title = self._t("forecast.chart_title", series=name, model=self._model_label(self.model.value),
                        months=self.horizon.value)
        self.chart.update({"data": data, "layout": {
            "title": {"text": title}, "xaxis": {"title": {"text": self._t("columns.month")}},
            "yaxis": {"title": {"text": self._t("columns.revenue")}}, "hovermode": "x unified",
            "height": 400, "margin": _MARGIN, "template": "plotly_white"}})

        table = shown.assign(ds=pd.to_datetime(shown["ds"]).dt.strftime("%Y-%m")).rename(columns={"ds": "month"})
        cols = ["month", "forecast", *[f"{side}_{lv}" for lv in sorted(levels) for side in ("lo", "hi")]]
        labels = {"month": self._t("columns.month"), "forecast": self._t("forecast.col_forecast")}
        labels.update({f"{side}_{lv}": self._t(f"forecast.col_{side}", level=lv)
                       for lv in levels for side in ("lo", "hi")})
        start, end = table["month"].iloc[0], table["month"].iloc[-1]
        body: list[str | Table] = [_sentence(self._t("forecast.total_line", series=name, start=start, end=end,
                                                     total=fmt.money(shown["forecast"].sum())))]
        body.append(Table(table[cols], name="forecast_months", kinds={c: "money" for c in cols[1:]},
                          labels=labels))
        if chosen == ALL and units is not None:
            ucols = ["unique_id", "forecast", "last_year", "change", "share"]
            body.append(_sentence(self._t("forecast.units_note", level=self._level_label(level),
                                          months=self.horizon.value, first=min(self.horizon.value, 12))))
            body.append(Table(units[ucols], name=f"forecast_{level}", max_rows=40,
                              kinds={"forecast": "money", "last_year": "money", "change": "percent",
                                     "share": "percent"},
                              labels={"unique_id": self._level_label(level),
                                      "forecast": self._t("forecast.col_forecast"),
                                      **self._headers(["last_year", "change", "share"])}))
        self.html["forecast"].show(*body)

    def _units(self, fc: pd.DataFrame, hist: pd.DataFrame) -> pd.DataFrame:
        """Each series of the level: its forecast, the same months a year earlier, the change, its share.

        ``last_year`` and ``change`` cover the first ``min(horizon, 12)`` months forecast (the months a
        year earlier are in the history); ``forecast`` and ``share`` the whole horizon.
        """
        m = self.model.value
        total = fc.groupby("unique_id", sort=False)[m].sum()
        first = fc[fc["ds"] < fc["ds"].min() + pd.DateOffset(months=min(self.horizon.value, 12))]
        year_before = first.assign(ds=first["ds"] - pd.DateOffset(months=12))[["unique_id", "ds"]]
        same = year_before.merge(hist, on=["unique_id", "ds"], how="left")
        # NaN when a month a year earlier is missing from the history: no like-for-like comparison
        last = same.groupby("unique_id", sort=False)["y"].sum(min_count=1).where(
            same["y"].notna().groupby(same["unique_id"], sort=False).all())
        ahead = first.groupby("unique_id", sort=False)[m].sum()
        out = pd.DataFrame({"unique_id": total.index.astype(str), "forecast": total.to_numpy()})
        out["last_year"] = out["unique_id"].map(last).astype(float)
        out["change"] = out["unique_id"].map(ahead).astype(float) / out["last_year"].where(out["last_year"] > 0) - 1
        out["share"] = out["forecast"] / out["forecast"].sum() if out["forecast"].sum() else np.nan
        return out.sort_values("forecast", ascending=False, kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ backtest

    def _windows(self, n_months: int) -> tuple[int, int]:
        """(horizon, number of windows) of the backtest; horizon 0 when the history is too short."""
        h = min(self.horizon.value, self.backtest_horizon)
        while h > 3 and n_months < 13 + h:
            h -= 1
        if n_months < 13 + h:
            return 0, 0
        n = self.n_windows or max(1, min(3, (n_months - 13) // h))
        return h, int(n)

    def _backtest(self, level: str) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            from salesplan.forecast import forecast
            from salesplan.forecast.backtest import backtest, backtest_summary

            step = self._busy_progress(n)

            def one_window(*args: Any, **kwargs: Any) -> pd.DataFrame:
                with _quiet():
                    out = forecast(*args, **kwargs)
                step()
                return out

            cv = backtest(panel, h, n_windows=n, models=self.model.value, level=[80], forecast_fn=one_window,
                          progress=False)
            models = list(dict.fromkeys([self.model.value, "snaive", "naive"]))
            ev = backtest_summary(cv, panel, models=models, level=[80])
            wape = _wape(cv, models)
            per = ev.per_series.merge(wape, on=["unique_id", "model"], how="left")
            mdl, snaive = per[per["model"] == self.model.value], per[per["model"] == "snaive"]
            table = mdl[["unique_id", "mase", "wape"]].merge(
                snaive[["unique_id", "mase", "wape"]], on="unique_id", suffixes=("", "_snaive"), how="left")
            actual = cv["y"].abs().sum()
            pooled = {m: (cv[m] - cv["y"]).abs().sum() / actual if actual else np.nan for m in models}
            overall = ev.overall.assign(wape=ev.overall["model"].map(pooled))
            overall = overall[["model", "mase", "mase_vs_snaive", "wape", "bias_pct", "coverage_80"]]
            return {"per_series": table.reset_index(drop=True), "overall": overall.reset_index(drop=True),
                    "h": h, "n_windows": n, "cutoffs": sorted(pd.to_datetime(cv["cutoff"]).unique())}

        panel = self._panel(level)
        h, n = self._windows(int(panel.groupby("unique_id")["ds"].size().max()))
        # Keyed by the windows, not the horizon: every horizon from the backtest's own up shares one backtest.
        return self._cached(("backtest", level, self.model.value, h, n), compute)

    def _show_backtest(self) -> None:
        level = self.level.value
        n_months = int(self._panel(COMPANY)["ds"].size)
        h, _ = self._windows(n_months)
        if not h:
            self.backtest_chart.update({"data": [], "layout": {"height": 10}})
            return self._note("backtest", self._needs("forecast.to_backtest", months=13 + min(
                self.horizon.value, self.backtest_horizon, 3)))
        bt = self._backtest(level)
        per, overall = bt["per_series"], bt["overall"]
        self.result["backtest"], self.result["backtest_overall"] = per, overall
        mdl = self._model_label(self.model.value)
        body: list[str | Table] = [_sentence(self._t(
            "forecast.backtest_note", windows=bt["n_windows"], h=bt["h"],
            first=pd.Timestamp(bt["cutoffs"][0]).strftime("%Y-%m"),
            last=pd.Timestamp(bt["cutoffs"][-1]).strftime("%Y-%m")))]
        shown = overall.assign(model=overall["model"].map(self._model_label))
        body.append(Table(shown, name="backtest_models",
                          kinds={"mase": "number", "mase_vs_snaive": "number", "wape": "percent",
                                 "bias_pct": "number", "coverage_80": "number"},
                          labels=self._bt_labels(shown.columns)))
        chosen = self.series.value
        row = per[per["unique_id"] == (chosen if chosen != ALL else "total")]
        if chosen != ALL and not row.empty:
            r = row.iloc[0]
            better = r["mase"] < r["mase_snaive"]
            body.append(_sentence(self._t(
                "forecast.series_score_better" if better else "forecast.series_score_worse",
                series=chosen, model=mdl, mase=fmt.number(r["mase"]), snaive=fmt.number(r["mase_snaive"]),
                wape=fmt.percent(r["wape"]), wape_snaive=fmt.percent(r["wape_snaive"]))))
        if level != COMPANY:
            beats = int((per["mase"] < per["mase_snaive"]).sum())
            body.append(_sentence(self._t("forecast.beats", model=mdl, beats=beats, n=len(per),
                                          level=self._level_label(level))))
            body.append(Table(per, name=f"backtest_{level}", max_rows=40,
                              kinds={"mase": "number", "mase_snaive": "number", "wape": "percent",
                                     "wape_snaive": "percent"},
                              labels={"unique_id": self._level_label(level), **self._bt_labels(per.columns[1:])}))
        self.html["backtest"].show(*body)
        top = per.sort_values("mase", kind="stable").head(30)
        self.backtest_chart.update({"data": [
            {"type": "bar", "x": top["unique_id"].tolist(), "y": top["mase"].tolist(), "name": mdl,
             "marker": {"color": _COLORS[1]}},
            {"type": "bar", "x": top["unique_id"].tolist(), "y": top["mase_snaive"].tolist(),
             "name": self._model_label("snaive"), "marker": {"color": "#999999"}},
        ], "layout": {"title": {"text": self._t("forecast.backtest_chart", level=self._level_label(level))},
                      "xaxis": {"title": {"text": self._level_label(level)}, "type": "category"},
                      "yaxis": {"title": {"text": self._t("forecast.col_mase")}}, "barmode": "group",
                      "height": 320, "margin": _MARGIN, "template": "plotly_white"}})

    def _bt_labels(self, columns: Sequence[str]) -> dict[str, str]:
        return {c: self._t(f"forecast.col_{c}") for c in columns}

    # ------------------------------------------------------------------ reconciliation

    def _hierarchy(self) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        """``Y`` (every node's history), ``S`` (the summing matrix) and ``tags`` of the two-level hierarchy."""
        def compute() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
            from salesplan.forecast import panel_from_transactions
            from salesplan.forecast.hierarchy import aggregate

            tx = self.transactions.dropna(subset=self.hierarchy)
            bottom = panel_from_transactions(tx, freq="MS", by=self.hierarchy)
            return aggregate(bottom, [self.hierarchy[:1], self.hierarchy])

        return self._cached(("hierarchy",), compute)

    def _reconcile(self) -> dict[str, Any]:
        """The reconciled plan of every node (per model and horizon)."""
        def compute() -> dict[str, Any]:
            from salesplan.forecast import forecast, sample_paths
            from salesplan.forecast.hierarchy import coherence_gaps, reconcile

            model, horizon = self.model.value, self.horizon.value
            Y, S, tags = self._hierarchy()
            history = Y[["unique_id", "ds", "y"]]
            step = self._busy_progress(3)
            with _quiet():  # the nodes' notes repeat those of the levels' own forecasts
                base = forecast(history, horizon, models=model, level=None, progress=False)
                step()
                paths = sample_paths(history, horizon, model=model, n_samples=300, seed=1)
            step()
            reconciled = reconcile(base, S, method=self.method, history=Y, season=12, samples=paths,
                                   level=[80, 95], models=[model])
            step()
            gaps = coherence_gaps(base, S, columns=[model]).merge(
                coherence_gaps(reconciled, S, columns=[model]), on=["unique_id", "column", "n_bottom"],
                suffixes=("_base", "_reconciled"))
            gaps = gaps[gaps["n_bottom"] > 1].rename(
                columns={"max_abs_gap_base": "gap_base", "max_abs_gap_reconciled": "gap_reconciled"})
            gaps = gaps[["unique_id", "n_bottom", "gap_base", "gap_reconciled"]].reset_index(drop=True)
            return {"reconciled": reconciled, "gaps": gaps, "history": history, "tags": list(tags)}

        return self._cached(("reconcile", self.model.value, self.horizon.value), compute)

    def _mase_by_level(self) -> pd.DataFrame | None:
        """Backtest MASE per level of the hierarchy, base and reconciled (``None`` when the history is too short)."""
        h, n = self._windows(int(self._panel(COMPANY)["ds"].size))
        n = min(n, 2)  # every window forecasts every node and reconciles: two keep the page quick
        if not h:
            return None

        def compute() -> pd.DataFrame:
            from salesplan.forecast.backtest import backtest, backtest_summary
            from salesplan.forecast.hierarchy import forecast_reconciled, tags_frame

            model = self.model.value
            Y, S, tags = self._hierarchy()
            step = self._busy_progress(n)

            def one_window(*args: Any, **kwargs: Any) -> pd.DataFrame:
                with _quiet():
                    out = forecast_reconciled(*args, S=S, methods=self.methods, **kwargs)
                step()
                return out

            cv = backtest(Y[["unique_id", "ds", "y"]], h, n_windows=n, models=model, level=None,
                          forecast_fn=one_window, progress=False)
            recs = [f"{model}/{m}" for m in self.methods]
            ev = backtest_summary(cv, Y, models=list(dict.fromkeys([model, *recs, "snaive"])), level=None)
            by_level = (ev.per_series.merge(tags_frame(tags), on="unique_id")
                        .pivot_table(index="model", columns="level", values="mase", sort=False)
                        .reset_index())
            by_level.columns.name = None
            return by_level

        return self._cached(("mase_by_level", self.model.value, h, n), compute)

    def _show_reconciliation(self) -> None:
        absent = [c for c in HIERARCHY if c not in self.hierarchy]
        need = (self._needs("forecast.to_reconcile", columns=self.hierarchy) or
                (self._needs("forecast.to_reconcile", columns=absent[:1]) if len(self.hierarchy) < 2 else ""))
        if need:
            self.reconciled_chart.update({"data": [], "layout": {"height": 10}})
            return self._note("reconciliation", need)
        rec = self._reconcile()
        by_level = self._mase_by_level()
        model = self.model.value
        self.result.update({"reconciled": rec["reconciled"], "gaps": rec["gaps"], "mase_by_level": by_level})
        upper, lower = self.hierarchy[:2]
        tags = rec["tags"]
        level_names = {tags[0]: self._level_label(COMPANY), tags[1]: self._level_label(upper),
                       tags[2]: f"{self._level_label(upper)} × {self._level_label(lower)}"}
        body: list[str | Table] = [_sentence(self._t("forecast.reconcile_note", upper=self._level_label(upper),
                                                     lower=self._level_label(lower), method=self.method))]
        if by_level is not None:
            shown = by_level.assign(model=by_level["model"].map(self._model_label))
            body.append(_sentence(self._t("forecast.mase_by_level")))
            body.append(Table(shown, name="reconciliation_mase_by_level", kinds={c: "number" for c in tags},
                              labels={"model": self._t("forecast.col_model"), **level_names}))
        gaps = rec["gaps"]
        body.append(_sentence(self._t("forecast.gaps_note")))
        body.append(Table(gaps, name="reconciliation_gaps", max_rows=40,
                          kinds={"n_bottom": "count", "gap_base": "money", "gap_reconciled": "money"},
                          labels={"unique_id": self._t("forecast.col_node"), **self._bt_labels(gaps.columns[1:])}))
        self.html["reconciliation"].show(*body)
        # The node the page shows: the chosen series when it is a node of the plan, else the total.
        chosen = self.series.value
        node = chosen if chosen != ALL and chosen in set(rec["reconciled"]["unique_id"]) else "total"
        r = rec["reconciled"][rec["reconciled"]["unique_id"] == node].sort_values("ds")
        past = rec["history"][rec["history"]["unique_id"] == node]
        data = []
        for n, lv in enumerate(sorted(INTERVALS[self.intervals.value], reverse=True)):
            data.append({"type": "scatter", "x": _dates(r["ds"]) + _dates(r["ds"])[::-1],
                         "y": r[f"{model}-hi-{lv}"].tolist() + r[f"{model}-lo-{lv}"].tolist()[::-1],
                         "fill": "toself", "fillcolor": _rgba(_COLORS[2], 0.15 + 0.12 * n), "line": {"width": 0},
                         "hoverinfo": "skip", "name": self._t("forecast.band", level=lv)})
        data.append({"type": "scatter", "mode": "lines+markers", "x": _dates(r["ds"]), "y": r[model].tolist(),
                     "line": {"color": _COLORS[2]}, "name": self._t("forecast.trace_reconciled")})
        data.append({"type": "scatter", "mode": "lines", "x": _dates(past["ds"]), "y": past["y"].tolist(),
                     "line": {"color": _COLORS[0]}, "name": self._t("forecast.trace_actual")})
        name = self._level_label(COMPANY) if node == "total" else node
        self.reconciled_chart.update({"data": data, "layout": {
            "title": {"text": self._t("forecast.reconciled_chart", series=name, method=self.method)},
            "xaxis": {"title": {"text": self._t("columns.month")}},
            "yaxis": {"title": {"text": self._t("columns.revenue")}}, "hovermode": "x unified",
            "height": 360, "margin": _MARGIN, "template": "plotly_white"}})

