"""The market analysis page: where revenue comes from, how it moves through the year, who carries it.

:class:`MarketApp` is built like the other apps: the controls are attributes
(``dimension``, ``grain``), one ``_update`` observer recomputes what they
change, ``.container`` is what the notebook shows and ``.result`` holds the
frames, so the page can be checked in plain pytest::

    app = MarketApp.from_source(None)          # the demo company
    app                                        # the page (its plain text: the data line)
    app.grain.value = "QS"
    app.result["sales_by"]                     # revenue per quarter and region
    app.result["notes"]["mix"]                 # "" or what the data lacks for the section

Every number comes from :mod:`salesplan.market` and :mod:`salesplan.segments`,
every chart from :mod:`salesplan.plots`; this module picks the frames, names
the charts, axes, traces and table headers in the page's language and lays
them out. A section whose data is missing (no ``channel`` column, less than
two years of history, no market table) shows the sentence of
:func:`salesplan.ui.page.missing` instead, and the rest of the page runs.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from salesplan import format as fmt
from salesplan import market, plots
from salesplan.errors import SalesplanDataWarning
from salesplan.i18n import label, t
from salesplan.ui._common import ErrorArea, Pages, PlotArea, _message_of, app_from_source
from salesplan.ui._lang import Translated, option_values, relabel_options
from salesplan.ui.page import dimensions, missing
from salesplan.ui.table import Section, Table

__all__ = ["MarketApp", "SECTIONS", "CHARTS", "GRAINS"]

#: The page's sections, in order.
SECTIONS: tuple[str, ...] = ("sales", "growth", "mix", "seasonality", "portfolio", "abc", "pvm", "customers",
                             "market", "segments")

#: The charts of each section (keys of :attr:`MarketApp.charts`).
CHARTS: dict[str, tuple[str, ...]] = {
    "sales": ("sales_total", "sales_by"),
    "growth": ("growth",),
    "mix": ("mix",),
    "seasonality": ("decomposition", "seasonal_index"),
    "portfolio": ("growth_share",),
    "abc": ("pareto",),
    "pvm": ("pvm",),
    "customers": ("new_vs_returning", "cohorts"),
    "market": ("market_share",),
    "segments": ("rfm", "clusters"),
}

#: Grains the page offers (pandas period-start frequencies).
GRAINS: tuple[str, ...] = ("MS", "QS", "YS")

_CSS = """<style>
.salesplan-note{color:#57606a;font-size:13px;margin:2px 0 8px 0}
.salesplan-guide{font-size:13px;margin:2px 0 6px 0;max-width:60em}
</style>"""

#: The charts the controls change (the others are redrawn only when the language changes).
_CONTROLLED = ("sales_total", "sales_by", "growth", "seasonal_index", "new_vs_returning")

_LAYOUT = dict(height=360, margin=dict(l=50, r=10, t=50, b=40))


def _p(text: str, cls: str = "salesplan-note") -> str:
    return f'<p class="{cls}">{html.escape(text)}</p>'


@contextmanager
def _quiet() -> Iterator[None]:
    """Ignore :class:`SalesplanDataWarning` (guest lines, net returns): the summary line counts them once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        yield


class MarketApp(Translated):
    """The market analysis page.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        The data, as :func:`salesplan.io.load_data` returns it. Only
        ``transactions`` (order date, customer, revenue) is required; a
        ``market`` table unlocks market share and potential.
    dimension : str, optional
        Breakdown of the time charts (``"region"``, ``"channel"``...); default
        the first of :func:`salesplan.ui.page.dimensions` the data has.
    grain : str
        ``"MS"`` (month), ``"QS"`` (quarter) or ``"YS"`` (year).
    as_of : str or Timestamp, optional
        Analysis date: orders after it are left out; default the last order date.
    clusters : bool
        Whether to fit the behavioural clusters (a k-means per k in 3..6).
    lang : str, optional
        Language of the page (``"en"``, ``"zh"``); default
        :func:`salesplan.i18n.current_lang`. The switch at the top changes it.

    Attributes
    ----------
    dimension, grain : ipywidgets.Dropdown
        The controls.
    lang_switch : ipywidgets.ToggleButtons
        The language of the page (see :meth:`set_lang`).
    errors : ErrorArea
        Problems, as text.
    charts : dict of str to PlotArea
        One per name of :data:`CHARTS`.
    tables_html : dict of str to Section
        Each section's tables (:class:`~salesplan.ui.table.Section`): sortable and
        filterable when long, downloadable as CSV and Excel; ``.value`` is their static HTML.
    container : ipywidgets.VBox
        The whole page.
    result : dict
        The frames shown: ``sales_total``, ``sales_by``
        (:func:`~salesplan.market.sales_over_time`), ``growth``, ``cagr``,
        ``share``, ``decomposition``, ``seasonal_index``, ``phasing``,
        ``growth_share``, ``product_abc``, ``customer_abc``,
        ``concentration``, ``pvm``, ``pvm_summary``, ``new_vs_returning``,
        ``cohorts``, ``market_share``, ``rfm_summary``, ``cluster_profile``
        (``None`` when the data lacks what they need), ``summary`` (lines,
        revenue, customers, first and last date, months, guest lines and
        revenue as one dict), ``notes`` (section -> the sentences shown
        instead of what is missing; "" when none) and ``error``.
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        dimension: str | None = None,
        grain: str = "MS",
        as_of: str | pd.Timestamp | None = None,
        clusters: bool = True,
        lang: str | None = None,
    ) -> None:
        self._init_lang(lang)
        self.tables = {k: v for k, v in dict(tables).items() if isinstance(v, pd.DataFrame)}
        self.errors = ErrorArea()
        self.result: dict[str, Any] = {"notes": {s: "" for s in SECTIONS}, "error": "", "summary": None}
        self._fit_clusters = bool(clusters)
        self._busy = False
        self._failed: dict[str, str] = {}

        tx = self.tables.get("transactions")
        if tx is not None and as_of is not None:
            tx = tx[tx["order_date"] <= pd.Timestamp(as_of)]
        self.tx = tx
        self.as_of = None if tx is None or tx.empty else (
            pd.Timestamp(as_of) if as_of is not None else tx["order_date"].max())
        dims = dimensions(tx) if tx is not None else []
        # A choice the data does not offer falls back to the first one, and the page says so.
        self._fallbacks: list[tuple[str, str, list[str]]] = []
        if dimension is not None and dimension not in dims:
            self._fallbacks.append(("dimension", str(dimension), dims))
        if grain not in GRAINS:
            self._fallbacks.append(("grain", str(grain), list(GRAINS)))
        self.dimension = widgets.Dropdown(options=dims, value=(dimension if dimension in dims else
                                                                (dims[0] if dims else None)))
        self.grain = widgets.Dropdown(options=list(GRAINS), value=grain if grain in GRAINS else "MS")

        self.summary_html = widgets.HTML()
        self.headings = {s: widgets.HTML() for s in SECTIONS}
        self.guides = {s: widgets.HTML() for s in SECTIONS}
        self.notes = {s: widgets.HTML() for s in SECTIONS}
        self.tables_html = {s: Section(lang=self.lang) for s in SECTIONS}
        self.charts = {c: PlotArea() for s in SECTIONS for c in CHARTS[s]}
        self.intro = widgets.HTML()
        body: list[widgets.Widget] = [self.lang_switch, widgets.HTML(_CSS), self.intro, self.errors,
                                      self.summary_html,
                                      widgets.HBox([self.dimension, self.grain])]
        # One section at a time: the browser draws the charts of the section shown only.
        self.pages = Pages({s: widgets.VBox([self.headings[s], self.guides[s], self.notes[s],
                                             *(self.charts[c] for c in CHARTS[s]), self.tables_html[s]])
                            for s in SECTIONS})
        body.append(self.pages)
        self.container = widgets.VBox(body)
        self._relabel()

        # Without orders there is no page to compute: say why (again in the new language on a switch).
        self._problem: tuple[str, dict] | None = None
        if tx is None:
            self._problem = ("market.no_transactions", {"tables": ", ".join(sorted(self.tables)) or "-"})
        elif tx.empty:
            self._problem = ("market.no_orders", {"as_of": "-" if as_of is None else f"{pd.Timestamp(as_of):%Y-%m-%d}"})
            self.tx = None
        if self._problem:
            self.errors.show_error(self._t(self._problem[0], **self._problem[1]))
            self.result["error"] = self.errors.message
        else:
            with self.errors.capture():
                self._compute_fixed()
            self._update()
        for control in (self.dimension, self.grain):
            control.observe(self._update, names="value")

    @classmethod
    def from_source(
        cls,
        data_path: str | Path | None = None,
        *,
        market_path: str | Path | None = None,
        max_drop_fraction: float = 0.05,
        **kwargs,
    ) -> MarketApp:
        """Load the data with :func:`salesplan.io.load_data` (and ``market_path`` with
        :func:`salesplan.io.load_market`) and build the app; a file that cannot be read is shown in the page."""
        from salesplan.io import load_data, load_market

        def load(path):
            tables = dict(load_data(path, max_drop_fraction=max_drop_fraction))
            if market_path is not None:
                tables["market"] = load_market(market_path)
            return tables

        return app_from_source(cls, data_path, load, **kwargs)

    # ------------------------------------------------------------------ the data line

    def summary_line(self) -> str:
        """What the data holds, in one sentence of the page's language (``""`` without transactions)."""
        s = self.result.get("summary")
        if not s:
            return ""
        dims = option_values(self.dimension)
        line = self._t("market.summary", lines=fmt.count(s["lines"]), revenue=fmt.money(s["revenue"]),
                       customers=fmt.count(s["customers"]), start=f"{s['start']:%Y-%m-%d}",
                       end=f"{s['end']:%Y-%m-%d}", months=s["months"], as_of=f"{s['as_of']:%Y-%m-%d}",
                       dimensions=", ".join(self._dim_label(d) for d in dims) or self._t("market.none"))
        if s["guest_lines"]:
            line += " " + self._t("market.guests", lines=fmt.count(s["guest_lines"]),
                                  revenue=fmt.money(s["guest_revenue"]),
                                  share=fmt.percent(s["guest_revenue"] / s["revenue"] if s["revenue"] else 0))
        return line

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """The page, with :meth:`summary_line` as its plain-text form.

        A notebook's last cell can be just ``app``: Voila and Jupyter draw the
        widgets, while a run without a frontend (nbconvert, a printed report)
        keeps the data line as text instead of the widget's repr.
        """
        bundle = self.container._repr_mimebundle_(include=include, exclude=exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/plain"] = self.summary_line() or self.errors.message
        return bundle

    # ------------------------------------------------------------------ language

    def _dim_label(self, d: str) -> str:
        return self._heads([d])[d]

    def _heads(self, columns) -> dict[str, str]:
        """Headers: the page's own ``[market_columns]`` first, then the shared ``[columns]``."""
        shared = self._headers(columns)
        return {c: self._label(f"market_columns.{c}", shared[c]) for c in columns}

    def _relabel(self) -> None:
        self.dimension.description = self._t("market.dimension")
        self.grain.description = self._t("market.grain")
        busy, self._busy = self._busy, True  # relabelling the options must not recompute
        try:
            relabel_options(self.grain, {g: self._t(f"market.grain_{g}") for g in GRAINS})
            relabel_options(self.dimension, {d: self._dim_label(d) for d in option_values(self.dimension)})
        finally:
            self._busy = busy
        self.intro.value = (f"<h2>{html.escape(self._t('market.title'))}</h2>"
                            + _p(self._t("market.intro"), "salesplan-guide"))
        self.pages.relabel({s: self._t(f"market_sections.{s}") for s in SECTIONS})
        for s in SECTIONS:
            self.headings[s].value = f"<h3>{html.escape(self._t(f'market_sections.{s}'))}</h3>"
            self.guides[s].value = _p(self._t(f"market_sections.{s}_guide"), "salesplan-guide")

    def _rerender(self) -> None:
        if self._problem:
            self._resay(self._problem[0], **self._problem[1])
            return
        self._render()

    # ------------------------------------------------------------------ what each part needs

    def _requirements(self) -> dict[str, tuple[dict, str, str]]:
        """part -> (what :func:`~salesplan.ui.page.missing` checks, the ``to`` phrase, its section)."""
        dim = self.dimension.value or "region"
        return {
            "sales_by": (dict(columns=[dim]), "see revenue by region, channel or category", "sales"),
            "growth": (dict(columns=[dim], months=13), "compare each unit with the same period a year earlier",
                       "growth"),
            "cagr": (dict(columns=[dim], years=2), "condense the history into a yearly growth rate (CAGR)",
                     "growth"),
            "share": (dict(columns=["channel"]), "see which channels gain share", "mix"),
            "seasonality": (dict(months=24), "separate the seasonal pattern from the trend (phasing then falls "
                            "back to equal months)", "seasonality"),
            "growth_share": (dict(columns=["product_id"], months=24), "place products on the growth-share matrix",
                             "portfolio"),
            "product_abc": (dict(columns=["product_id"]), "rank products into ABC classes", "abc"),
            "pvm": (dict(columns=["product_id", "quantity"], months=24),
                    "split last year's change into price, volume and mix", "pvm"),
            "market_share": (dict(tables=["market"]), "see market share and potential", "market"),
        }

    def _lack(self, part: str, lang: str | None = None) -> str:
        """The sentence saying what ``part`` needs, or ``""`` when the data has it."""
        kw, to, _ = self._requirements()[part]
        data = {"transactions": self.tx, "market": self.tables.get("market")}
        code = lang or self.lang
        lack = missing(data, lang=code, **kw)
        return t("page.needs", code, lack=lack, to=label(f"page_to.{to}", to, code)) if lack else ""

    def _part(self, part: str, compute) -> None:
        """``result[part] = compute()`` when the data has what it needs; a failure is kept for its section."""
        self.result[part] = None
        self._failed.pop(part, None)
        if part in self._requirements() and self._lack(part, "en"):
            return
        try:
            with _quiet():
                self.result[part] = compute()
        except Exception as exc:  # noqa: BLE001 - one section's failure must not take the page down
            self._failed[part] = _message_of(exc)

    # ------------------------------------------------------------------ computing

    def _compute_fixed(self) -> None:
        """The parts no control changes, computed once."""
        tx = self.tx
        guests = tx["customer_id"].isna() if "customer_id" in tx.columns else pd.Series(False, index=tx.index)
        from salesplan.periods import months_of_history

        self.result["summary"] = {
            "lines": len(tx), "revenue": float(tx["revenue"].sum()),
            "customers": int(tx["customer_id"].nunique()) if "customer_id" in tx.columns else 0,
            "start": tx["order_date"].min(), "end": tx["order_date"].max(), "months": months_of_history(tx),
            "as_of": self.as_of, "guest_lines": int(guests.sum()),
            "guest_revenue": float(tx.loc[guests, "revenue"].sum()),
        }
        self._part("share", lambda: market.share(tx, by="channel", freq="YS"))
        self._part("decomposition", lambda: market.decompose(tx, period=12) if not self._lack("seasonality", "en")
                   else None)
        self._part("phasing", lambda: market.phasing_weights(market.seasonal_indices(tx))
                   if not self._lack("seasonality", "en") else None)
        self._part("growth_share", lambda: market.growth_share(tx, by="product_id"))
        self._part("product_abc", lambda: market.abc_analysis(tx, by="product_id"))
        self._part("customer_abc", lambda: market.abc_analysis(tx, by="customer_id"))
        self._part("concentration", lambda: market.concentration(tx, by="customer_id", freq="YS"))
        self._part("pvm", lambda: market.price_volume_mix(tx, by="product_id"))
        self.result["pvm_summary"] = None if self.result["pvm"] is None else market.pvm_summary(self.result["pvm"])
        self._part("cohorts", lambda: market.cohort_matrix(tx, freq="MS", metric="customers"))
        self._part("market_share", self._market_share)
        self._part("rfm_summary", self._rfm)
        self.result.setdefault("cluster_model", None)
        self._part("cluster_profile", self._clusters)

    def _market_share(self) -> pd.DataFrame:
        table = self.tables["market"]
        by = [c for c in ("region", "category") if c in table.columns and c in self.tx.columns]
        return market.market_share(self.tx, table, by=by, freq="YS")

    def _rfm(self) -> pd.DataFrame:
        from salesplan.segments import rfm

        segments = rfm.rfm_segments(rfm.rfm_scores(rfm.rfm_table(self.tx, as_of=self.as_of)))
        return rfm.rfm_summary(segments)

    def _clusters(self) -> pd.DataFrame | None:
        if not self._fit_clusters:
            return None
        from salesplan.segments.cluster import CustomerClusters, customer_features

        model = CustomerClusters(k_range=(3, 6), random_state=0).fit(customer_features(self.tx, as_of=self.as_of))
        self.result["cluster_model"] = model
        return model.profile()

    def _update(self, change: Any = None) -> None:
        if self._busy or self.tx is None:
            return
        tx, dim, grain = self.tx, self.dimension.value, self.grain.value
        with self.errors.capture():
            self._part("sales_total", lambda: market.sales_over_time(tx, freq=grain))
            self._part("sales_by", lambda: market.sales_over_time(tx, freq=grain, by=dim))
            self._part("growth", lambda: market.growth(tx, freq=grain, by=dim))
            self._part("cagr", lambda: market.cagr(tx, by=dim))
            self._part("seasonal_index", lambda: market.seasonal_indices(tx, by=dim)
                       if dim is not None and not self._lack("seasonality", "en") else None)
            self._part("new_vs_returning", lambda: market.new_vs_returning(tx, freq=grain))
            self._render(charts=None if change is None else _CONTROLLED,
                         tables=SECTIONS if change is None else ("growth",))
        self.result["error"] = self.errors.message if self.errors.level == "error" else ""

    # ------------------------------------------------------------------ showing

    def _render(self, charts=None, tables=SECTIONS) -> None:
        """The sections from ``result``, in the page's language; nothing is recomputed.

        ``charts`` limits the charts redrawn (default all), ``tables`` the sections whose tables are.
        """
        self.summary_html.value = _p(self.summary_line()) + "".join(
            _p(self._t("market.fallback", name=self._t(f"market.{name}"), value=value,
                       used=choices[0] if choices else self._t("market.none"),
                       choices=", ".join(choices) or self._t("market.none")))
            for name, value, choices in self._fallbacks)
        notes: dict[str, list[str]] = {s: [] for s in SECTIONS}
        for part, (_, _, section) in self._requirements().items():
            lack = self._lack(part)
            if lack and lack not in notes[section]:
                notes[section].append(lack)
        where = {c: s for s in SECTIONS for c in CHARTS[s]}
        where.update({"cagr": "growth", "phasing": "seasonality", "product_abc": "abc", "customer_abc": "abc",
                      "concentration": "abc", "share": "mix", "pvm_summary": "pvm", "rfm_summary": "segments",
                      "cluster_profile": "segments"})
        for part, message in self._failed.items():
            notes[where.get(part, "sales")].append(self._t("market.failed", message=message))
        for s in SECTIONS:
            self.result["notes"][s] = " ".join(notes[s])
            self.notes[s].value = "".join(_p(n) for n in notes[s])
        for name, area in self.charts.items():
            if charts is not None and name not in charts:
                continue
            fig = self._chart(name)
            area.layout.display = None if fig is not None else "none"
            area.update(fig if fig is not None else {"data": [], "layout": {}})
        for s in tables:
            self.tables_html[s].show(*self._tables(s))

    def _named(self, fig, title: str, *, x: str | None = None, y: str | None = None,
               names: Mapping[str, str] | None = None):
        """``fig`` with the title, axis titles and trace names of the page's language."""
        fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, legend_title=None, **_LAYOUT)
        for trace in fig.data:
            if names and trace.name in names:
                trace.name = names[trace.name]
                if getattr(trace, "legendgroup", None):
                    trace.legendgroup = trace.name
        return fig

    def _chart(self, name: str):  # noqa: C901 - one branch per chart, read top to bottom
        r, dim = self.result, self.dimension.value
        T = self._t
        revenue = T("columns.revenue")
        if name == "sales_total" and r.get("sales_total") is not None:
            return self._named(plots.sales_chart(r["sales_total"]), T("market.chart_sales_total"), y=revenue)
        if name == "sales_by" and r.get("sales_by") is not None:
            return self._named(plots.sales_chart(r["sales_by"]), T("market.chart_sales_by", by=self._dim_label(dim)),
                               y=revenue)
        if name == "growth" and r.get("growth") is not None:
            return self._named(plots.growth_chart(r["growth"], column="growth_yoy"), T("market.chart_growth"),
                               y=T("market_columns.growth_yoy"))
        if name == "mix" and r.get("share") is not None:
            return self._named(plots.share_chart(r["share"], by="channel"), T("market.chart_mix"),
                               y=T("columns.share"))
        if name == "decomposition" and r.get("decomposition") is not None:
            fig = plots.decomposition_chart(r["decomposition"])
            parts = {p: T(f"market.part_{p}") for p in ("observed", "trend", "seasonal", "resid")}
            english = {"Observed": "observed", "Trend": "trend", "Seasonal": "seasonal", "Residual": "resid"}
            for a in fig.layout.annotations:
                a.text = parts.get(english.get(a.text, ""), a.text)
            return self._named(fig, T("market.chart_decomposition"), names=parts).update_layout(height=600)
        if name == "seasonal_index" and r.get("seasonal_index") is not None:
            fig = plots.seasonal_index_chart(r["seasonal_index"])
            return self._named(fig, T("market.chart_seasonal_index", by=self._dim_label(dim)),
                               x=T("columns.month"), y=T("market_columns.seasonal_index"))
        if name == "growth_share" and r.get("growth_share") is not None:
            quadrants = {q: self._label(f"market_quadrants.{q}", q) for q in r["growth_share"]["quadrant"].unique()}
            return self._named(plots.growth_share_chart(r["growth_share"]), T("market.chart_growth_share"),
                               x=T("market.relative_share_axis"), y=T("market.growth_axis"), names=quadrants)
        if name == "pareto" and r.get("product_abc") is not None:
            return self._named(plots.pareto_chart(r["product_abc"]), T("market.chart_pareto"),
                               x=T("market.product_rank"), y=T("columns.share"),
                               names={"share": T("columns.share"),
                                      "cumulative share": T("market_columns.cumulative_share")})
        if name == "pvm" and r.get("pvm_summary") is not None:
            s = r["pvm_summary"]
            s = s.assign(step=s["step"].map(lambda k: self._label(f"market_steps.{k}", k)))
            return self._named(plots.pvm_waterfall(s), T("market.chart_pvm"), y=revenue)
        if name == "new_vs_returning" and r.get("new_vs_returning") is not None:
            nvr = r["new_vs_returning"]
            kinds = {k: self._label(f"market_customer_types.{k}", k) for k in nvr["customer_type"].unique()}
            return self._named(plots.new_vs_returning_chart(nvr), T("market.chart_new_vs_returning"), y=revenue,
                               names=kinds)
        if name == "cohorts" and r.get("cohorts") is not None:
            fig = plots.cohort_heatmap(r["cohorts"])
            fig.update_coloraxes(colorbar_title_text=T("market_columns.retention"))
            return self._named(fig, T("market.chart_cohorts"), x=T("market.periods_since_first"),
                               y=T("market.cohort"))
        if name == "market_share" and r.get("market_share") is not None:
            return self._named(plots.market_share_chart(r["market_share"]),
                               T("market.chart_market_share", period=f"{r['market_share']['ds'].max():%Y}"),
                               y=revenue, names={"sales": T("market_columns.sales"),
                                                 "potential": T("market_columns.potential")})
        if name == "rfm" and r.get("rfm_summary") is not None:
            s = r["rfm_summary"]
            s = s.assign(segment=s["segment"].map(lambda k: self._label(f"market_segments.{k}", k)))
            return self._named(plots.rfm_segment_chart(s), T("market.chart_rfm"), x=T("columns.share"),
                               names={"customers": T("columns.customers"), "revenue": revenue})
        if name == "clusters" and r.get("cluster_model") is not None and r.get("cluster_profile") is not None:
            fig = plots.cluster_chart(r["cluster_model"])
            prof = r["cluster_profile"]
            heat = fig.data[0]
            heat.y = [f"{c}: {self._cluster_label(d)}" for c, d in zip(prof["cluster"], prof["distinguishing"])]
            heat.x = [self._feature_name(f) for f in heat.x]
            fig.update_coloraxes(colorbar_title_text=T("market.z_score"))
            return self._named(fig, T("market.chart_clusters"), x=T("market.feature"), y=T("market.cluster"))
        return None

    # The words of a cluster's label, as salesplan.segments.cluster writes them in English.
    _SCALES = ("recency", "tenure", "frequency", "monetary", "avg_order_value", "purchases_per_month")

    def _feature_name(self, feature: str) -> str:
        if feature in self._SCALES:
            return self._t(f"market_clusters.{feature}")
        if feature.endswith("_share"):
            return self._t("market_clusters.share", value=self._share_value(feature))
        return feature.replace("_", " ")

    def _share_value(self, feature: str) -> str:
        """The data's value a share feature measures (``channel_online_share`` -> ``online``)."""
        labels = getattr(self.result.get("cluster_model"), "_labels", None) or {}
        return labels.get(feature) or feature[: -len("_share")].split("_", 1)[-1].replace("_", " ")

    def _cluster_label(self, distinguishing: str) -> str:
        """A cluster's label in the page's language, from its ``distinguishing`` features.

        ``distinguishing`` reads ``"monetary +1.20; frequency +0.90"`` (see
        :meth:`~salesplan.segments.cluster.CustomerClusters.profile`).
        """
        words = []
        for part in filter(None, (p.strip() for p in str(distinguishing).split(";"))):
            feature, _, z = part.rpartition(" ")
            high = float(z) > 0
            if feature in self._SCALES:
                words.append(self._t(f"market_clusters.{feature}_{'high' if high else 'low'}"))
            elif feature.endswith("_share"):
                words.append(self._t(f"market_clusters.share_{'high' if high else 'low'}",
                                     value=self._share_value(feature)))
            else:
                words.append(self._t(f"market_clusters.{'high' if high else 'low'}", name=self._feature_name(feature)))
        return self._t("market_clusters.separator").join(words) or self._t("market_clusters.average")

    def _table(self, df: pd.DataFrame, cols: list[str] | None = None, *, name: str, **kwargs) -> Table:
        shown = df if cols is None else df[[c for c in cols if c in df.columns]]
        return Table(shown, name=name, labels=self._heads(shown.columns), **kwargs)

    def _tables(self, section: str) -> list[str | Table]:  # noqa: C901 - one branch per section
        """The section's tables (and the sentences before them) as :class:`~salesplan.ui.table.Table` parts."""
        r, T = self.result, self._t
        dim = self.dimension.value
        if section == "growth" and r.get("cagr") is not None:
            return [self._table(r["cagr"], [dim, "start_year", "end_year", "years", "value_start", "value_end",
                                            "cagr"], name=f"market_cagr_{dim}",
                                kinds={"cagr": "percent", "start_year": "text", "end_year": "text",
                                       "years": "count"})]
        if section == "mix" and r.get("share") is not None:
            wide = r["share"].pivot(index="channel", columns="ds", values="share_change_pp")
            wide.columns = [T("market.change_pp", year=f"{d:%Y}") for d in wide.columns]
            wide = wide.reset_index()
            return [Table(wide, name="market_channel_mix", labels=self._heads(["channel"]),
                          kinds={c: "number" for c in wide.columns if c != "channel"})]
        if section == "seasonality" and r.get("phasing") is not None:
            w = r["phasing"].pivot(index="unique_id", columns="month", values="weight")
            w.columns = [T(f"market.month_{m}") for m in w.columns]
            return [Table(w.reset_index(drop=True), name="market_phasing", percent=list(w.columns))]
        if section == "portfolio" and r.get("growth_share") is not None:
            gs = r["growth_share"]
            q = gs.groupby("quadrant")["value_current"].agg(products="count", revenue="sum").reset_index()
            q["quadrant"] = q["quadrant"].map(lambda k: self._label(f"market_quadrants.{k}", k))
            return [self._table(q, name="market_portfolio", kinds={"products": "count", "revenue": "money"})]
        if section == "abc":
            out: list[str | Table] = []
            if r.get("customer_abc") is not None:
                c = r["customer_abc"]
                c = c.groupby("abc_class").agg(customers=("customer_id", "size"),
                                               revenue_share=("share", "sum")).reset_index()
                out += [_p(T("market.customer_abc")),
                        self._table(c, name="market_customer_abc", kinds={"revenue_share": "percent"})]
            if r.get("concentration") is not None:
                k = r["concentration"].assign(ds=lambda d: d["ds"].dt.strftime("%Y"))
                out += [_p(T("market.concentration")), self._table(
                    k, name="market_concentration",
                    kinds={"hhi": "count", "hhi_normalized": "number", "gini": "number", "n_units": "count"})]
            return out
        if section == "pvm" and r.get("pvm") is not None:
            p = r["pvm"].sort_values("total_change").head(5)
            p = p.assign(status=p["status"].map(lambda k: self._label(f"market_status.{k}", k)))
            return [_p(T("market.pvm_table")), self._table(
                p, ["product_id", "status", "price_effect", "volume_effect", "mix_effect", "total_change"],
                name="market_pvm")]
        if section == "market" and r.get("market_share") is not None:
            m = r["market_share"].assign(ds=lambda d: d["ds"].dt.strftime("%Y"))
            return [self._table(m, name="market_share", kinds={"market_share": "percent"})]
        if section == "segments":
            out = []
            if r.get("rfm_summary") is not None:
                s = r["rfm_summary"]
                s = s.assign(segment=s["segment"].map(lambda k: self._label(f"market_segments.{k}", k)))
                out.append(self._table(s, ["segment", "customers", "customer_share", "monetary_share",
                                           "recency_median", "frequency_median"], name="market_rfm_segments"))
            if r.get("cluster_profile") is not None:
                prof = r["cluster_profile"]
                prof = prof.assign(label=prof["distinguishing"].map(self._cluster_label))
                out.append(self._table(prof, ["cluster", "label", "customers", "customer_share", "revenue_share",
                                              "median_recency", "median_frequency", "median_monetary"],
                                       name="market_clusters"))
            return out
        return []
