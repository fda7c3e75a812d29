"""The segment explorer: RFM segments, behavioural clusters, lifetime value and who to look after.

:class:`SegmentApp` is built like the other apps: controls are attributes
(``as_of``, ``clusters``, ``horizon``, ``segment``), one ``_update``
observer recomputes the page, ``.container`` is what the notebook shows and
``.result`` holds the frames, so the page can be checked in plain pytest::

    app = SegmentApp.from_source(None)           # the demo company
    app.clusters.value = 3
    app.result["clusters"]                       # one row per cluster
    app.segment.value = "At risk"
    app.result["customers"]                      # that segment's customers, by CLV
    app.result["notes"]["models"]                # "" or why the section is empty

The numbers come from :mod:`salesplan.segments` (the same functions the
package documents); this module only picks the rows, formats them with
:mod:`salesplan.format` and lays them out. Fitting the repeat-purchase models
is the slow part: a progress bar shows while they fit, and the fits are kept
per analysis date, so the horizon, the segment picker and the language switch
never refit.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from salesplan import format as fmt
from salesplan._validation import guest_mask
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError, SalesplanWarning
from salesplan.periods import holdout_months as default_holdout
from salesplan.periods import last_date, months_of_history
from salesplan.segments.cluster import CustomerClusters, customer_features
from salesplan.segments.clv import (
    REPEAT_MODELS,
    GammaGamma,
    calibration_holdout,
    customer_lifetime_value,
    repeat_model,
    repeat_purchase_tracking,
    select_model,
    summary_from_transactions,
)
from salesplan.segments.rfm import (
    RFM_SEGMENT_RULES,
    SEGMENTS,
    _lookup,
    rfm_scores,
    rfm_segments,
    rfm_summary,
    rfm_table,
)
from salesplan.ui._common import ErrorArea, Pages, PlotArea, app_from_source
from salesplan.ui._lang import Translated, relabel_options
from salesplan.ui.page import missing
from salesplan.ui.table import Section, Table

__all__ = ["SegmentApp", "SECTIONS", "AUTO", "CLUSTER_CHOICES"]

#: The page's sections, in order.
SECTIONS: tuple[str, ...] = (
    "rfm", "grid", "clusters", "models", "calibration", "tracking", "value", "by_segment", "look_after", "customers",
)

#: The page (a button at the top) each section is on: RFM, clusters, lifetime value, customers.
PAGES: dict[str, str] = {"rfm": "rfm", "grid": "rfm", "clusters": "clusters", "models": "clv", "calibration": "clv",
                         "tracking": "clv", "value": "clv", "by_segment": "clv", "look_after": "clv",
                         "customers": "customers"}

#: Sections shown under the lifetime-value heading (``h4``), the others are ``h3``.
_SUBSECTIONS = {"grid", "calibration", "tracking", "value", "by_segment", "look_after"}

#: The clusters choice that lets the silhouette score pick the number of clusters.
AUTO = "auto"
CLUSTER_CHOICES: tuple = (AUTO, 2, 3, 4, 5, 6, 7, 8)
_AUTO_RANGE = (2, 6)

#: The models' class names (how their warnings start) -> the names the page shows.
_MODEL_LABELS = {"BetaGeo": "BG/NBD", "ModifiedBetaGeo": "MBG/NBD", "ParetoNBD": "Pareto/NBD",
                 "GammaGamma": "Gamma-Gamma"}

#: The steps of a lifetime-value fit, as the progress bar names them.
_FIT_STEPS = ("progress_select", "progress_check", "progress_tracking", "progress_refit")

_CSS = """<style>
.salesplan-note{color:#57606a;font-size:13px;margin:2px 0 8px 0}
.salesplan-guide{font-size:13px;margin:2px 0 6px 0;max-width:60em}
</style>"""

#: Blue below the average customer, white at it, red above (the clusters' reading guide says so).
_DIVERGING = [[0, "#2166ac"], [0.5, "#f7f7f7"], [1, "#b2182b"]]
_GRID = {"gridcolor": "#e5e5e5", "zerolinecolor": "#cccccc"}


def _layout(title: str, *, x: str = "", y: str = "", height: int = 360, **more: Any) -> dict:
    """A chart's layout as a plain dict (no plotly validation or template copy on every update)."""
    xaxis = {"title": {"text": x}, **_GRID, **more.pop("xaxis", {})}
    yaxis = {"title": {"text": y}, **_GRID, **more.pop("yaxis", {})}
    return {"title": {"text": title}, "xaxis": xaxis, "yaxis": yaxis, "height": height,
            "margin": {"l": 40, "r": 10, "t": 40, "b": 40}, "plot_bgcolor": "white", **more}

#: Words of a cluster's description, by feature and direction (catalogue ``[segments_words]``).
_WORD_FEATURES = ("recency", "tenure", "frequency", "monetary", "avg_order_value", "purchases_per_month")


@contextmanager
def _model_warnings() -> Iterator[list[str]]:
    """Collect the models' own warnings (optimiser, standard errors) to say them in the page's sections.

    Data warnings (repeat buyers with no positive spend) are left out: the
    value section counts those customers itself.
    """
    said: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SalesplanWarning)
        warnings.simplefilter("ignore", SalesplanDataWarning)
        yield said
    for w in caught:
        if issubclass(w.category, SalesplanWarning):
            said.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    said[:] = list(dict.fromkeys(said))


def _sentence(text: str) -> str:
    return f'<p class="salesplan-note">{html.escape(text)}</p>'


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


class SegmentApp(Translated):
    """The segment explorer page.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        The data, as :func:`salesplan.io.load_data` returns it. Only
        ``transactions`` is used; it needs ``customer_id`` for every section.
        Lines without a customer (guest checkouts) are left out and counted.
    as_of : date-like, optional
        The day the analysis is made; default the last date in the data.
    holdout_months : int, optional
        Months before ``as_of`` on which the repeat-purchase models are
        checked; default a quarter of the history, at most 6
        (:func:`salesplan.periods.holdout_months`).
    clv_horizon_months : int
        Months of value counted in the lifetime value.
    discount_rate : float
        Monthly discount rate of the lifetime value.
    clusters : int or "auto"
        Number of behavioural clusters; ``"auto"`` picks 2 to 6 by silhouette.
    top_n : int
        Customers listed in the most valuable customers table.
    lang : str, optional
        Language of the page (``"en"``, ``"zh"``); default
        :func:`salesplan.i18n.current_lang`. The switch at the top changes it.

    Attributes
    ----------
    as_of : ipywidgets.DatePicker
    clusters : ipywidgets.Dropdown
        ``"auto"`` or a number of clusters.
    horizon : ipywidgets.IntSlider
        CLV horizon in months.
    segment : ipywidgets.Dropdown
        The RFM segment whose customers are listed (values are the segment names).
    progress : ipywidgets.IntProgress
        Shown (with :attr:`progress_label`) while the lifetime-value models fit.
    errors : ErrorArea
    html : dict of str to Section
        One per section of :data:`SECTIONS`: its sentences and tables
        (:class:`~salesplan.ui.table.Section`), sortable and filterable when long,
        downloadable as CSV and Excel; ``.value`` is the section as static HTML.
        The picked segment's customers are ``html["customers"].tables[0]``.
    rfm_chart, grid_chart, cluster_chart, calibration_chart : PlotArea
    tracking_chart, segment_value_chart, look_after_chart : PlotArea
    container : ipywidgets.VBox
        The whole page.
    n_fits : int
        How many times the lifetime-value models were fitted (once per
        analysis date and holdout).
    result : dict
        ``rfm`` (:func:`~salesplan.segments.rfm.rfm_segments` per customer),
        ``segment_summary`` (:func:`~salesplan.segments.rfm.rfm_summary`),
        ``clusters`` (:meth:`~salesplan.segments.cluster.CustomerClusters.profile`),
        ``cluster_labels`` (``customer_id, cluster``), ``selection``
        (:func:`~salesplan.segments.clv.select_model`), ``model`` (the model
        the values come from: the kept one, unless its refit on all the data
        cannot predict), ``calibration`` (:func:`~salesplan.segments.clv.calibration_holdout`),
        ``tracking`` (:func:`~salesplan.segments.clv.repeat_purchase_tracking`),
        ``parameters`` (both models' ``summary()``), ``diagnostics``
        (``model, check, message``), ``value`` (one row per customer:
        ``customer_id, segment, recency, frequency, monetary,
        expected_purchases, expected_spend, clv, probability_alive``),
        ``by_segment`` (``segment, customers, clv, probability_alive``),
        ``customers`` (the picked segment's ``customer_id, recency, frequency,
        monetary, clv, probability_alive``, by CLV, highest first), ``notes``
        (section -> the sentence shown instead; "" when none) and ``error``.
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        as_of: Any = None,
        holdout_months: int | None = None,
        clv_horizon_months: int = 12,
        discount_rate: float = 0.01,
        clusters: int | str = AUTO,
        top_n: int = 15,
        lang: str | None = None,
    ) -> None:
        self._init_lang(lang)
        self.tables = {k: v for k, v in dict(tables).items() if isinstance(v, pd.DataFrame)}
        self.holdout_months = holdout_months
        self.discount_rate = float(discount_rate)
        self.top_n = int(top_n)
        self.errors = ErrorArea()
        self.result: dict[str, Any] = {}
        self.n_fits = 0
        self._busy = False
        self._rfm_cache: dict = {}
        self._cluster_cache: dict = {}
        self._fit_cache: dict = {}
        self._value_cache: dict = {}
        self._state: dict[str, Any] = {}
        self._reset_result()

        tx = self.tables.get("transactions")
        self._has_tx = tx is not None
        self._tx = tx if tx is not None else pd.DataFrame({"order_date": pd.Series([], dtype="datetime64[ns]")})
        has_customers = "customer_id" in self._tx.columns
        guests = (np.asarray(guest_mask(self._tx["customer_id"]), dtype=bool) if has_customers
                  else np.zeros(len(self._tx), dtype=bool))
        self._guests = self._tx[guests]
        self._customers = self._tx[~guests] if has_customers else self._tx.iloc[:0]
        dates = pd.to_datetime(self._tx["order_date"]) if len(self._tx) else pd.Series([], dtype="datetime64[ns]")
        self._first = dates.min() if len(dates) else None
        self._last = last_date(self._tx) if len(dates) else None
        start = pd.Timestamp(as_of) if as_of is not None else self._last

        self.as_of = widgets.DatePicker(value=start.date() if start is not None else None)
        if clusters != AUTO and not (isinstance(clusters, (int, np.integer)) and clusters >= 2):
            raise SalesplanError(f"clusters must be {AUTO!r} or a whole number of at least 2, got {clusters!r}.")
        choices = list(dict.fromkeys([*CLUSTER_CHOICES, clusters]))
        self.clusters = widgets.Dropdown(options=[AUTO, *sorted(c for c in choices if c != AUTO)], value=clusters)
        self.horizon = widgets.IntSlider(value=int(clv_horizon_months), min=1, max=60, continuous_update=False)
        self.segment = widgets.Dropdown(options=list(SEGMENTS), value=SEGMENTS[0])
        self.progress = widgets.IntProgress(value=0, min=0, max=len(_FIT_STEPS))
        self.progress_label = widgets.Label()
        self.progress_box = widgets.HBox([self.progress, self.progress_label], layout=widgets.Layout(display="none"))
        self.facts = widgets.HTML()
        self.headings = {s: widgets.HTML() for s in SECTIONS}
        self.guides = {s: widgets.HTML() for s in SECTIONS}
        self.html = {s: Section(lang=self.lang) for s in SECTIONS}
        self.rfm_chart = PlotArea()
        self.grid_chart = PlotArea()
        self.cluster_chart = PlotArea()
        self.calibration_chart = PlotArea()
        self.tracking_chart = PlotArea()
        self.segment_value_chart = PlotArea()
        self.look_after_chart = PlotArea()
        self._charts = {"rfm": self.rfm_chart, "grid": self.grid_chart, "clusters": self.cluster_chart,
                        "calibration": self.calibration_chart, "tracking": self.tracking_chart,
                        "by_segment": self.segment_value_chart, "look_after": self.look_after_chart}
        self.clv_heading = widgets.HTML()
        self.clv_guide = widgets.HTML()
        body: list[widgets.Widget] = [
            self.lang_switch, widgets.HTML(_CSS), self.errors,
            widgets.HBox([self.as_of, self.clusters, self.horizon]), self.progress_box, self.facts,
        ]
        pages: dict[str, list[widgets.Widget]] = {page: [] for page in PAGES.values()}
        for s in SECTIONS:
            part = pages[PAGES[s]]
            if s == "models":
                part += [self.clv_heading, self.clv_guide]
            part += [self.headings[s], self.guides[s]]
            if s == "customers":
                part.append(self.segment)
            part.append(self.html[s])
            if s in self._charts:
                part.append(self._charts[s])
        # One page at a time: the browser draws the charts of the page shown only.
        self.pages = Pages({page: widgets.VBox(part) for page, part in pages.items()})
        body.append(self.pages)
        self.container = widgets.VBox(body)
        self._relabel()

        if not self._has_tx:
            self.errors.show_error(self._t("segments.no_transactions", tables=sorted(self.tables) or "none"))
            self.result["error"] = self.errors.message
        else:
            self._update()
        for control in (self.as_of, self.clusters, self.horizon):
            control.observe(self._update, names="value")
        self.segment.observe(self._on_segment, names="value")

    @classmethod
    def from_source(cls, data_path: str | Path | None = None, *, max_drop_fraction: float | None = None,
                    **kwargs) -> SegmentApp:
        """Load the data with :func:`salesplan.io.load_data` and build the app (errors shown in the page).

        ``None`` reads the folder named by ``SALESPLAN_DATA``, else the demo
        company; ``max_drop_fraction`` is passed to the loader.
        """
        from salesplan.io import load_data

        def load(path):
            if max_drop_fraction is None:
                return load_data(path)
            return load_data(path, max_drop_fraction=max_drop_fraction)

        return app_from_source(cls, data_path, load, **kwargs)

    # ------------------------------------------------------------------ language

    def _segment_name(self, segment: str) -> str:
        return self._label(f"segments_rfm.{_slug(segment)}", segment)

    def _relabel(self) -> None:
        """Every control label, heading and reading guide in the page's language."""
        self.as_of.description = self._t("segments.as_of")
        self.clusters.description = self._t("segments.clusters")
        self.horizon.description = self._t("segments.horizon")
        self.segment.description = self._t("segments.segment")
        self.progress.description = ""
        busy, self._busy = self._busy, True  # relabelling the options must not recompute
        try:
            relabel_options(self.clusters, {AUTO: self._t("segments.auto")})
            self._segment_options()
        finally:
            self._busy = busy
        self.pages.relabel({page: self._t(f"segments.title_{page}") for page in set(PAGES.values())})
        self.clv_heading.value = f"<h3>{html.escape(self._t('segments.title_clv'))}</h3>"
        self.clv_guide.value = f'<p class="salesplan-guide">{html.escape(self._t("segments.guide_clv"))}</p>'
        for s in SECTIONS:
            tag = "h4" if s in _SUBSECTIONS else "h3"
            self.headings[s].value = f"<{tag}>{html.escape(self._t(f'segments.title_{s}'))}</{tag}>"
            self.guides[s].value = f'<p class="salesplan-guide">{html.escape(self._t(f"segments.guide_{s}"))}</p>'

    def _segment_options(self) -> None:
        """The picker lists the segments that have customers, each with its count, in the page's language."""
        rfm = self.result.get("rfm")
        counts = rfm["segment"].astype("str").value_counts() if rfm is not None else pd.Series(dtype="int64")
        values = [s for s in SEGMENTS if counts.get(s, 0) > 0] or list(SEGMENTS)
        shown = [(f"{self._segment_name(s)} ({fmt.count(counts.get(s, 0))})", s) for s in values]
        if list(self.segment.options) != shown:
            keep = self.segment.value if self.segment.value in values else values[0]
            self.segment.options = shown
            self.segment.value = keep

    def _rerender(self) -> None:
        """The page again in its language, from the results already computed (nothing is refitted)."""
        if self._has_tx:
            self._update()
        else:
            self._resay("segments.no_transactions", tables=sorted(self.tables) or "none")

    # ------------------------------------------------------------------ computing

    def _reset_result(self) -> None:
        self.result.update({k: None for k in (
            "rfm", "segment_summary", "clusters", "cluster_labels", "selection", "model", "calibration",
            "tracking", "parameters", "diagnostics", "value", "by_segment", "customers")})
        self.result.update({"notes": {s: "" for s in SECTIONS}, "error": ""})

    def _note(self, section: str, text: str) -> None:
        self.result["notes"][section] = text
        self.html[section].value = _sentence(text)
        if section in self._charts:
            self._hide(section)

    def _hide(self, section: str) -> None:
        chart = self._charts[section]
        chart.update({"data": [], "layout": {}})
        chart.layout.display = "none"

    def _show_chart(self, section: str, fig: dict) -> None:
        chart = self._charts[section]
        chart.layout.display = None
        chart.update(fig)

    def _needs(self, lack: str, to: str) -> str:
        """The sentence of :func:`salesplan.ui.page.needs` in the page's language."""
        return self._t("page.needs", lack=lack, to=self._t(f"segments_to.{to}"))

    def _as_of(self) -> pd.Timestamp:
        if self.as_of.value is None:
            return self._last
        return pd.Timestamp(self.as_of.value)

    def _update(self, change: Any = None) -> None:
        """Recompute what the changed control moves: the clusters, the values over the horizon, or everything."""
        if self._busy:
            return
        owner = change.get("owner") if isinstance(change, Mapping) else None
        fit = self._state.get("fit")
        with self.errors.capture():
            if owner is self.clusters and self.result["clusters"] is not None:
                self._show_clusters(self._state["customers"], self._state["as_of"])
            elif owner is self.horizon and fit is not None and self.result["value"] is not None:
                self._show_values(fit, self._state["as_of"])
                self._show_customers()
            else:
                self._reset_result()
                self._state = {}
                self._compute()
        self.result["error"] = self.errors.message if self.errors.level == "error" else ""

    def _compute(self) -> None:
        as_of = self._as_of()
        self._show_facts(as_of)
        lack = missing(self._customers, columns=["customer_id"], lang=self.lang)
        sentence = self._needs(lack, "segments") if lack else ""
        if not sentence and self._first is not None and as_of < self._first:
            sentence = self._t("segments.as_of_before", first=f"{self._first:%Y-%m-%d}")
        if sentence:
            for s in SECTIONS:
                self._note(s, sentence)
            return
        customers = self._customers[pd.to_datetime(self._customers["order_date"]) <= as_of + pd.Timedelta(days=1)
                                    - pd.Timedelta(nanoseconds=1)]
        self._state.update(customers=customers, as_of=as_of)
        self._show_rfm(customers, as_of)
        self._show_clusters(customers, as_of)
        self._show_clv(customers, as_of)
        self._show_customers()

    def _show_facts(self, as_of: pd.Timestamp) -> None:
        tx = self._tx
        if not len(tx):
            self.facts.value = ""
            return
        n_customers = self._customers["customer_id"].nunique() if "customer_id" in tx.columns else 0
        lines = [self._t("segments.facts", lines=fmt.count(len(tx)), customers=fmt.count(n_customers),
                         start=f"{self._first:%Y-%m-%d}", end=f"{self._last:%Y-%m-%d}",
                         months=months_of_history(tx), as_of=f"{as_of:%Y-%m-%d}")]
        if len(self._guests):
            revenue = self._guests["revenue"].sum() if "revenue" in tx.columns else float("nan")
            lines.append(self._t("segments.guests", lines=fmt.count(len(self._guests)), revenue=fmt.money(revenue)))
        self.facts.value = "".join(_sentence(s) for s in lines)

    # ------------------------------------------------------------------ RFM

    def _rfm(self, customers: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
        if as_of not in self._rfm_cache:
            with warnings.catch_warnings():
                # customers whose returns exceed their purchases score lowest on monetary value, as they should
                warnings.simplefilter("ignore", SalesplanDataWarning)
                self._rfm_cache[as_of] = rfm_segments(rfm_scores(rfm_table(customers, as_of=as_of)))
        return self._rfm_cache[as_of]

    def _show_rfm(self, customers: pd.DataFrame, as_of: pd.Timestamp) -> None:
        segments = self._rfm(customers, as_of)
        summary = rfm_summary(segments)
        self.result["rfm"] = segments
        self.result["segment_summary"] = summary
        shown = summary.assign(segment=summary["segment"].map(self._segment_name),
                               description=[self._label(f"segments_rfm_about.{_slug(s)}", d)
                                            for s, d in zip(summary["segment"], summary["description"])])
        cols = ["segment", "customers", "customer_share", "monetary", "monetary_share", "recency_median",
                "frequency_median", "monetary_median", "description"]
        negative = int((segments["monetary"] <= 0).sum())
        said = _sentence(self._t("segments.net_negative", customers=fmt.count(negative))) if negative else ""
        self.html["rfm"].show(said, Table(shown[cols], name="rfm_segments", labels=self._heads(cols),
                                          kinds={"monetary_median": "money", "recency_median": "number"}))
        names = [self._segment_name(s) for s in summary["segment"]]
        data = [{"type": "bar", "orientation": "h", "y": names, "x": summary[col].to_numpy(),
                 "name": self._t(f"segments.share_{name}")}
                for col, name in (("customer_share", "customers"), ("monetary_share", "revenue"))]
        self._show_chart("rfm", {"data": data, "layout": _layout(
            self._t("segments.rfm_chart"), x=self._t("segments.share"), barmode="group",
            xaxis={"tickformat": ".0%"}, yaxis={"autorange": "reversed"})})

        counts = segments.groupby(["fm_score", "r_score"]).size().unstack(fill_value=0)
        counts = counts.reindex(index=range(1, 6), columns=range(1, 6), fill_value=0)
        lut = _lookup(RFM_SEGMENT_RULES)
        rule_names = RFM_SEGMENT_RULES["segment"].tolist()
        text = [[f"{self._segment_name(rule_names[lut[r, fm]])}<br>{counts.loc[fm, r]}" for r in range(1, 6)]
                for fm in range(1, 6)]
        heat = {"type": "heatmap", "z": counts.to_numpy(), "x": list(range(1, 6)), "y": list(range(1, 6)),
                "text": text, "texttemplate": "%{text}", "colorscale": [[0, "#f7fbff"], [1, "#2171b5"]],
                "colorbar": {"title": {"text": self._t("columns.customers")}}}
        self._show_chart("grid", {"data": [heat], "layout": _layout(
            self._t("segments.grid_chart"), x=self._t("segments.r_score"), y=self._t("segments.fm_score"),
            height=420)})

    # ------------------------------------------------------------------ clusters

    def _clusters(self, customers: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.DataFrame, CustomerClusters]:
        if as_of not in self._cluster_cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SalesplanDataWarning)  # said once, in the RFM section
                self._cluster_cache[as_of] = {"features": customer_features(customers, as_of=as_of)}
        entry = self._cluster_cache[as_of]
        k = self.clusters.value
        if k not in entry:
            features = entry["features"]
            model = (CustomerClusters(k_range=_AUTO_RANGE, random_state=0) if k == AUTO
                     else CustomerClusters(k=int(k), random_state=0))
            entry[k] = model.fit(features)
        return entry["features"], entry[k]

    def _feature_name(self, feature: str, labels: Mapping[str, str]) -> str:
        if feature in _WORD_FEATURES:
            return self._label(f"segments_columns.{feature}", feature)
        if feature in labels:
            return self._t("segments_words.share_of", value=labels[feature])
        return feature.replace("_", " ")

    def _describe(self, z: pd.Series, labels: Mapping[str, str], *, top: int = 3, min_z: float = 0.25) -> str:
        """A cluster in words (the rule of :meth:`CustomerClusters.profile`), in the page's language."""
        order = z.abs().sort_values(ascending=False, kind="stable")
        words = []
        for feature in [f for f in order.index[:top] if abs(z[f]) >= min_z]:
            side = "high" if z[feature] > 0 else "low"
            if feature in _WORD_FEATURES:
                words.append(self._t(f"segments_words.{feature}_{side}"))
            elif feature in labels:
                words.append(self._t(f"segments_words.share_{side}", value=labels[feature]))
            else:
                words.append(self._t(f"segments_words.other_{side}", feature=feature.replace("_", " ")))
        return self._t("segments_words.sep").join(words) or self._t("segments_words.average")

    def _show_clusters(self, customers: pd.DataFrame, as_of: pd.Timestamp) -> None:
        features, model = self._clusters(customers, as_of)
        profile = model.profile()
        self.result["clusters"] = profile
        self.result["cluster_labels"] = model.labels_
        labels = features.attrs.get("feature_labels", {})
        wide = model.centers_.pivot(index="cluster", columns="feature", values="z").reindex(
            columns=model.feature_names_)
        described = [self._describe(wide.loc[c], labels) for c in profile["cluster"]]
        cols = ["cluster", "label", "customers", "customer_share", "revenue_share", "median_recency",
                "median_frequency", "median_monetary"]
        cols = [c for c in cols if c in profile.columns]
        chosen = ""
        if self.clusters.value == AUTO:
            s = model.summary()
            best = s[s["chosen"]].iloc[0]
            chosen = _sentence(self._t("segments.auto_chose", k=int(best["k"]),
                                       silhouette=fmt.number(best["silhouette"])))
        self.html["clusters"].show(chosen, Table(
            profile.assign(label=described)[cols], name="customer_clusters", labels=self._heads(cols),
            kinds={"cluster": "text", "median_monetary": "money", "median_recency": "number"}))
        heat = {"type": "heatmap", "z": wide.to_numpy(), "x": [self._feature_name(f, labels) for f in wide.columns],
                "y": [f"{c}: {d}" for c, d in zip(profile["cluster"], described)], "colorscale": _DIVERGING, "zmid": 0,
                "colorbar": {"title": {"text": self._t("segments.z_vs_all")}}}
        self._show_chart("clusters", {"data": [heat], "layout": _layout(
            self._t("segments.cluster_chart", k=model.k_), x=self._t("segments.feature"),
            height=220 + 50 * model.k_, xaxis={"tickangle": -35, "automargin": True},
            yaxis={"autorange": "reversed", "automargin": True})})

    # ------------------------------------------------------------------ lifetime value

    def _holdout(self, customers: pd.DataFrame) -> int:
        return int(self.holdout_months or default_holdout(customers))

    def _step(self, i: int) -> None:
        self.progress.value = i
        self.progress_label.value = self._t(f"segments.{_FIT_STEPS[i]}") if i < len(_FIT_STEPS) else ""

    def _fit(self, customers: pd.DataFrame, as_of: pd.Timestamp) -> dict[str, Any]:
        """The models of the lifetime-value sections for one analysis date, fitted once and kept."""
        holdout = self._holdout(customers)
        key = (as_of, holdout)
        if key in self._fit_cache:
            return self._fit_cache[key]
        fit: dict[str, Any] = {"holdout": holdout, "lack": ""}
        self.progress_box.layout.display = "flex"
        try:
            self._step(0)
            fit["lack"] = missing(customers, months=2 * holdout + 1, lang="en") if len(customers) else ""
            name = "bgnbd"
            if not fit["lack"]:
                cal_end = as_of - pd.DateOffset(months=holdout)
                fit["calibration_end"] = cal_end
                with _model_warnings():  # each model's problems are in its row of the selection
                    selection = select_model(customers, calibration_end=cal_end, observation_end=as_of, freq="W")
                name = selection.loc[selection["chosen"], "model"].iloc[0]
                fit["selection"] = selection
                self._step(1)
                calibration = summary_from_transactions(customers, calibration_end=cal_end, observation_end=as_of,
                                                        freq="W")
                with _model_warnings() as said:
                    check = repeat_model(name).fit(calibration)
                fit["check_warnings"] = said
                fit["calibration"] = calibration_holdout(check, calibration)
                fit["check_diagnostics"] = check.diagnostics(calibration)
                self._step(2)
                fit["tracking"] = repeat_purchase_tracking(check, customers, calibration_end=cal_end,
                                                           observation_end=as_of, freq="W")
            self._step(3)
            history = summary_from_transactions(customers, calibration_end=as_of, freq="W")
            purchases, used, said = self._refit(history, name, fit.get("selection"))
            with _model_warnings() as spend_said:
                spend = GammaGamma().fit(history)
            fit["fit_warnings"] = said + spend_said
            fit.update(kept=name, model=used,
                       label=purchases._label, history=history, purchases=purchases, spend=spend,
                       alive=purchases.probability_alive(history),
                       parameters=pd.concat([purchases.summary().assign(model=purchases._label),
                                             spend.summary().assign(model="Gamma-Gamma")], ignore_index=True),
                       diagnostics=pd.concat([purchases.diagnostics(), spend.diagnostics(history)],
                                             ignore_index=True))
            self._step(len(_FIT_STEPS))
        finally:
            self.progress_box.layout.display = "none"
        self.n_fits += 1
        self._fit_cache[key] = fit
        return fit

    @staticmethod
    def _refit(history: pd.DataFrame, name: str, selection: pd.DataFrame | None) -> tuple[Any, str, list[str]]:
        """The kept model refitted on all the data, or, when its predictions do not compute there, the next one.

        A fit that runs off to extreme parameters gives no expected purchases
        (NaN) at all; the models are tried in the order of their holdout
        error (then BG/NBD, MBG/NBD, Pareto/NBD) and the first that predicts
        every customer is used. Returns the model, its name and its warnings.
        """
        ranked = []
        if selection is not None:
            overall = selection[(selection["group"] == "all") & (selection["error"] == "")]
            ranked = list(overall.sort_values("rmse", kind="stable")["model"])
        order = list(dict.fromkeys([name, *ranked, *REPEAT_MODELS]))
        first = None
        for candidate in order:
            with _model_warnings() as said:
                try:
                    model = repeat_model(candidate).fit(history)
                except SalesplanError:
                    continue
            if first is None:
                first = (model, candidate, said)
            expected = model.predict_purchases(history, 52.0)["expected_purchases"].to_numpy(dtype=float)
            if np.isfinite(expected).all():
                return model, candidate, said
        if first is None:
            raise SalesplanDataError(
                f"no repeat-purchase model ({', '.join(order)}) could be fitted to these customers")
        return first

    def _value(self, fit: dict[str, Any], as_of: pd.Timestamp, segments: pd.DataFrame) -> pd.DataFrame:
        key = (as_of, fit["holdout"], int(self.horizon.value))
        if key not in self._value_cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SalesplanDataWarning)  # counted in the value section
                clv = customer_lifetime_value(fit["purchases"], fit["spend"], fit["history"],
                                              horizon=int(self.horizon.value), freq="W",
                                              discount_rate=self.discount_rate)
            value = (segments[["customer_id", "segment", "recency", "frequency", "monetary"]]
                     .merge(clv, on="customer_id", how="left")
                     .merge(fit["alive"], on="customer_id", how="left"))
            value["segment"] = value["segment"].astype("str")
            self._value_cache[key] = value.sort_values("clv", ascending=False, ignore_index=True, na_position="last")
        return self._value_cache[key]

    def _warning_sentences(self, messages: list[str]) -> list[str]:
        """The models' warnings, in the page's language where the catalogue knows them.

        A missing standard error is left out: the ``not_identified`` check
        of the diagnostics says the same in plain words.
        """
        out = []
        for message in messages:
            name = message.split(":", 1)[0]
            if "Hessian" in message and name in _MODEL_LABELS:
                continue
            if name in _MODEL_LABELS and "stopped before converging" in message:
                message = self._t("segments_checks.not_converged", model=_MODEL_LABELS[name])
            out.append(message)
        return out

    def _check_sentences(self, diagnostics: pd.DataFrame) -> list[str]:
        """The models' warnings: the package's own sentence in English, the catalogue's in other languages."""
        out = []
        for model, check, message in diagnostics[["model", "check", "message"]].itertuples(index=False):
            if self.lang == "en":
                out.append(message)
            else:
                out.append(self._label(f"segments_checks.{check}", message).format(model=model))
        return out

    def _show_clv(self, customers: pd.DataFrame, as_of: pd.Timestamp) -> None:
        sections = ("models", "calibration", "tracking", "value", "by_segment", "look_after")
        if customers.empty:
            lack = missing(None, columns=["customer_id"], lang=self.lang)
            for s in sections:
                self._note(s, self._needs(lack, "segments"))
            return
        try:
            fit = self._fit(customers, as_of)
        except SalesplanDataError as exc:  # too little data for any model: say so where the numbers would be
            for s in sections:
                self._note(s, self._t("segments.no_fit", reason=str(exc)))
            return
        self.result["model"] = fit["model"]
        self._state["fit"] = fit
        if fit["lack"]:
            holdout_lack = missing(customers, months=2 * fit["holdout"] + 1, lang=self.lang)
            sentence = self._needs(holdout_lack, "holdout")
            for s in ("models", "calibration", "tracking"):
                self._note(s, sentence)
        else:
            self._show_models(fit)
            self._show_calibration(fit)
            self._show_tracking(fit)
        self.result["parameters"] = fit["parameters"]
        self.result["diagnostics"] = fit["diagnostics"]
        self._show_values(fit, as_of)

    def _show_values(self, fit: dict[str, Any], as_of: pd.Timestamp) -> None:
        """The sections that follow the horizon: value, CLV by segment, who to look after."""
        value = self._value(fit, as_of, self.result["rfm"])
        self.result["value"] = value
        self._show_value(fit, value)
        self._show_by_segment(value)
        self._show_look_after(value)

    def _show_models(self, fit: dict[str, Any]) -> None:
        selection = fit["selection"]
        self.result["selection"] = selection
        overall = selection[selection["group"] == "all"]
        best = overall[overall["chosen"]].iloc[0]
        cols = ["model", "n_customers", "actual", "predicted", "ratio", "rmse", "chosen"]
        shown = overall.assign(model=overall["label"], chosen=overall["chosen"].map({True: "✓", False: ""}))
        failed = [self._t("segments.model_failed", model=m, error=e)
                  for m, e in zip(overall["label"], overall["error"]) if e]
        self.html["models"].show(
            Table(shown[cols], name="repeat_purchase_models", labels=self._heads(cols),
                  kinds={"ratio": "percent", "rmse": "number", "n_customers": "count", "actual": "count",
                         "predicted": "number"}),
            _sentence(self._t("segments.kept", model=best["label"], ratio=fmt.percent(best["ratio"], decimals=0),
                              months=fit["holdout"], start=f"{fit['calibration_end']:%Y-%m-%d}")),
            *[_sentence(s) for s in failed])

    def _show_calibration(self, fit: dict[str, Any]) -> None:
        frame = fit["calibration"]
        self.result["calibration"] = frame
        x = frame["frequency_label"].tolist()
        data = [{"type": "scatter", "mode": "lines+markers", "x": x, "y": frame["actual_mean"].to_numpy(),
                 "name": self._t("segments.actual")},
                {"type": "scatter", "mode": "lines+markers", "x": x, "y": frame["predicted_mean"].to_numpy(),
                 "name": self._t("segments.predicted_by", model=fit["label"]), "line": {"dash": "dash"}}]
        self._show_chart("calibration", {"data": data, "layout": _layout(
            self._t("segments.calibration_chart"), x=self._t("segments.calibration_x"),
            y=self._t("segments.calibration_y"), xaxis={"type": "category"},
            legend={"orientation": "h", "y": -0.25})})
        said = self._warning_sentences(fit["check_warnings"]) + self._check_sentences(fit["check_diagnostics"])
        self.html["calibration"].value = "".join(_sentence(s) for s in said)

    def _show_tracking(self, fit: dict[str, Any]) -> None:
        frame = fit["tracking"]
        self.result["tracking"] = frame
        x = frame["period"].to_numpy()
        data = [{"type": "scatter", "mode": "lines", "x": x, "y": frame["actual"].to_numpy(),
                 "name": self._t("segments.actual")},
                {"type": "scatter", "mode": "lines", "x": x, "y": frame["expected"].to_numpy(),
                 "name": self._t("segments.predicted_by", model=fit["label"]), "line": {"dash": "dash"}}]
        more: dict[str, Any] = {}
        holdout = frame.loc[frame["holdout"].astype(bool), "period"]
        if len(holdout):
            start = f"{holdout.iloc[0]:%Y-%m-%d}"
            more["shapes"] = [{"type": "line", "x0": start, "x1": start, "y0": 0, "y1": 1, "yref": "paper",
                               "line": {"color": "grey", "dash": "dot"}}]
            more["annotations"] = [{"x": start, "y": 1, "yref": "paper", "text": self._t("segments.holdout_starts"),
                                    "showarrow": False, "xanchor": "left", "yanchor": "bottom"}]
        self._show_chart("tracking", {"data": data, "layout": _layout(
            self._t("segments.tracking_chart"), x=self._t("segments.week"), y=self._t("segments.repeat_purchases"),
            legend={"orientation": "h", "y": -0.25}, **more)})
        self.html["tracking"].value = ""

    def _show_value(self, fit: dict[str, Any], value: pd.DataFrame) -> None:
        lines = [] if not fit["lack"] else [self._t("segments.no_holdout_model", model=fit["label"])]
        if fit["model"] != fit["kept"]:
            kept = REPEAT_MODELS[fit["kept"]]._label
            lines.append(self._t("segments.fallback", kept=kept, model=fit["label"]))
        unvalued = int(value["clv"].isna().sum())
        if unvalued:
            lines.append(self._t("segments.no_value", customers=fmt.count(unvalued), model=fit["label"]))
        lines.append(self._t("segments.value_total", months=self.horizon.value,
                             clv=fmt.money(value["clv"].sum()), customers=fmt.count(value["clv"].notna().sum()),
                             alive=fmt.count((value["probability_alive"] >= 0.5).sum())))
        history = fit["history"]
        no_spend = int(((history["frequency"] > 0) & (history["monetary_value"] <= 0)).sum())
        if no_spend:
            lines.append(self._t("segments.no_spend", customers=fmt.count(no_spend)))
        lines += self._warning_sentences(fit["fit_warnings"]) + self._check_sentences(fit["diagnostics"])
        params = fit["parameters"]
        pcols = ["model", "parameter", "estimate", "std_error", "lower_95", "upper_95"]
        top = value.head(self.top_n)
        cols = ["customer_id", "segment", "recency", "frequency", "monetary", "expected_purchases",
                "expected_spend", "clv", "probability_alive"]
        self.html["value"].show(
            *[_sentence(s) for s in lines],
            Table(top[cols].assign(segment=top["segment"].map(self._segment_name)), name="top_customers_clv",
                  labels=self._heads(cols),
                  kinds={"recency": "count", "frequency": "count", "expected_purchases": "number"}),
            _sentence(self._t("segments.parameters")),
            Table(params[pcols], name="clv_model_parameters", labels=self._heads(pcols),
                  kinds={c: "number" for c in ("estimate", "std_error", "lower_95", "upper_95")}))

    def _show_by_segment(self, value: pd.DataFrame) -> None:
        known = value[value["clv"].notna()]
        by = (known.groupby("segment", sort=False, as_index=False)
              .agg(customers=("customer_id", "size"), clv=("clv", "sum"),
                   probability_alive=("probability_alive", "mean")))
        by = by.set_index("segment").reindex([s for s in SEGMENTS if s in set(by["segment"])]).reset_index()
        self.result["by_segment"] = by
        bar = {"type": "bar", "orientation": "h", "x": by["clv"].to_numpy(),
               "y": [self._segment_name(s) for s in by["segment"]],
               "customdata": np.c_[by["customers"], by["probability_alive"]],
               "hovertemplate": "%{y}: %{x:,.0f}<br>%{customdata[0]} · %{customdata[1]:.0%}<extra></extra>"}
        self._show_chart("by_segment", {"data": [bar], "layout": _layout(
            self._t("segments.by_segment_chart", months=self.horizon.value), x=self._t("segments.clv_axis"),
            yaxis={"autorange": "reversed", "automargin": True})})
        cols = ["segment", "customers", "clv", "probability_alive"]
        self.html["by_segment"].show(Table(by[cols].assign(segment=by["segment"].map(self._segment_name)),
                                           name="clv_by_segment", labels=self._heads(cols)))

    def _show_look_after(self, value: pd.DataFrame) -> None:
        shown = value[value["clv"] >= 1]  # below one unit of money a customer is worth nothing to plan for
        data = []
        for segment in [s for s in SEGMENTS if s in set(shown["segment"])]:
            g = shown[shown["segment"] == segment]
            data.append({"type": "scattergl", "mode": "markers", "x": g["probability_alive"].to_numpy(),
                         "y": g["clv"].to_numpy(), "name": self._segment_name(segment),
                         "text": g["customer_id"].astype(str).tolist(), "marker": {"size": 5, "opacity": 0.7},
                         "hovertemplate": "%{text}: %{y:,.0f} · %{x:.0%}<extra></extra>"})
        self._show_chart("look_after", {"data": data, "layout": _layout(
            self._t("segments.look_after_chart"), x=self._t("columns.probability_alive"),
            y=self._t("segments.clv_axis"), height=420, xaxis={"tickformat": ".0%"}, yaxis={"type": "log"})})
        self.html["look_after"].value = ""

    # ------------------------------------------------------------------ the picked segment

    def _on_segment(self, change: Any = None) -> None:
        if self._busy:
            return
        with self.errors.capture():
            self._show_customers()
        self.result["error"] = self.errors.message if self.errors.level == "error" else ""

    def _show_customers(self) -> None:
        busy, self._busy = self._busy, True
        try:
            self._segment_options()
        finally:
            self._busy = busy
        segment = self.segment.value
        value = self.result.get("value")
        if value is not None:
            rows = value[value["segment"] == segment]
        else:
            rfm = self.result["rfm"]
            rows = rfm[rfm["segment"].astype("str") == segment].assign(clv=np.nan, probability_alive=np.nan)
            rows = rows.sort_values("monetary", ascending=False)
        cols = ["customer_id", "recency", "frequency", "monetary", "clv", "probability_alive"]
        listed = (rows[cols].sort_values("clv", ascending=False, kind="stable", na_position="last")
                  .reset_index(drop=True))
        self.result["customers"] = listed
        head = self._t("segments.customers_of", segment=self._segment_name(segment), customers=fmt.count(len(listed)),
                       clv=fmt.money(listed["clv"].sum()) if listed["clv"].notna().any() else fmt.MISSING)
        self.html["customers"].show(_sentence(head), Table(
            listed, name=f"segment_customers_{_slug(segment)}", labels=self._heads(cols),
            kinds={"recency": "count", "frequency": "count"}))

    # ------------------------------------------------------------------ headers

    def _heads(self, columns) -> dict[str, str]:
        """Headers from the ``[columns]`` table, else from ``[segments_columns]``, else the name."""
        return {c: self._label(f"columns.{c}", "") or self._label(f"segments_columns.{c}", str(c).replace("_", " "))
                for c in columns}
