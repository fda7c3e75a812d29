"""The workbench's landing page: what the data holds, headline KPIs, links to the apps.

Built like a Voila gallery app: controls are attributes, one ``_update``
observer recomputes everything, ``.container`` is what the notebook shows and
``.result`` holds the computed frames, so the page can be checked in plain
pytest::

    app = OverviewApp(salesplan.datasets.load_demo())
    app.region.value = "North"
    app.result["kpis"]          # the KPIs of the North region

The numbers come from :mod:`salesplan.summary` (pure functions); this module
only formats and lays them out.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from pathlib import Path

import ipywidgets as widgets
import pandas as pd

from salesplan.errors import SalesplanDataError
from salesplan.summary import filter_transactions, kpis, monthly_revenue, summarize_tables
from salesplan.i18n import DEFAULT_LANG, current_lang, headers, label, t
from salesplan.ui._common import ErrorArea, PlotArea, app_from_source
from salesplan.ui._lang import Translated, relabel_options
from salesplan.ui.table import TableView

__all__ = ["OverviewApp", "ALL", "find_apps", "format_value", "found_tables", "load_tables"]

#: The dropdown choice that means "no filter".
ALL = "All"

_CSS = """<style>
.salesplan-summary{border-collapse:collapse;font-size:13px;margin:4px 0 8px 0}
.salesplan-summary td,.salesplan-summary th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}
.salesplan-summary td:first-child,.salesplan-summary th:first-child,
.salesplan-summary td:last-child,.salesplan-summary th:last-child{text-align:left}
.salesplan-links a{color:#0969da;text-decoration:underline}
.salesplan-kpis{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0}
.salesplan-kpi{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:170px;background:#f6f8fa}
.salesplan-kpi .kpi-value{font-size:22px;font-weight:600}
.salesplan-kpi .kpi-label{font-size:12px;color:#57606a}
.salesplan-kpi .kpi-note{font-size:11px;color:#8c959f}
</style>"""


def format_value(value: float, unit: str, *, lang: str | None = None) -> str:
    """Format a number the way the overview page shows it.

    ``"count"`` and ``"money"`` get thousands separators and no decimals,
    ``"ratio"`` is a percentage with one decimal (growth with a sign),
    missing values are ``"n/a"`` (in the language ``lang``).

    >>> format_value(1234567, "count"), format_value(0.0731, "ratio"), format_value(float("nan"), "money")
    ('1,234,567', '7.3%', 'n/a')
    >>> format_value(-0.052, "growth")
    '-5.2%'
    """
    if value is None or pd.isna(value):
        return t("overview.na", lang)
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "growth":
        return f"{value:+.1%}"
    return f"{value:,.0f}"


def _title_of(path: Path) -> str:
    """The first Markdown heading of a notebook, else its name made readable."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "markdown":
                continue
            source = "".join(cell.get("source", []))
            match = re.search(r"^#+\s+(.+?)\s*$", source, flags=re.MULTILINE)
            if match:
                return match.group(1)
    except (OSError, ValueError):
        pass
    stem = re.sub(r"^\d+[_-]*", "", path.stem)
    return stem.replace("_", " ").replace("-", " ").strip().capitalize() or path.stem


def find_apps(folder: str | Path = ".", *, exclude: str = "00_overview.ipynb") -> pd.DataFrame:
    """The other notebooks (apps) of the workbench, for the page's links.

    Parameters
    ----------
    folder : path, default "."
        Where the notebooks are. Voila runs a notebook with its own folder as
        the working directory, so the default finds the overview's siblings.
    exclude : str
        File name left out (the overview itself).

    Returns
    -------
    DataFrame
        ``notebook`` (file name), ``title`` (first Markdown heading, else the
        file name without its number) and ``href`` (a link relative to the
        page, which Voila serves at ``/voila/render/<notebook>``), sorted by
        file name. Empty when the folder has no other notebook.
    """
    paths = sorted(p for p in Path(folder).glob("*.ipynb") if p.name != exclude)
    return pd.DataFrame(
        {
            "notebook": [p.name for p in paths],
            "title": [_title_of(p) for p in paths],
            "href": [p.name for p in paths],
        },
        columns=["notebook", "title", "href"],
    )


def load_tables(data_path: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """The tables the overview shows: every table :func:`salesplan.io.load_data` finds.

    Parameters
    ----------
    data_path : path, optional
        A transactions file, an Excel workbook or a folder of tables;
        ``None`` loads the demo company (or ``$SALESPLAN_DATA``).

    Returns
    -------
    salesplan.io.DataSet
        The tables found by name, with ``found()`` saying what each unlocks.
    """
    from salesplan.io import load_data

    return load_data(data_path)


def found_tables(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every table of the data model: whether it was found, its rows and what it unlocks.

    Columns: ``table``, ``found``, ``source``, ``rows``, ``unlocks``.
    """
    from salesplan.io import UNLOCKS, DataSet

    if isinstance(tables, DataSet):
        return tables.found()
    return DataSet({k: v for k, v in tables.items() if isinstance(v, pd.DataFrame)}, source="",
                   files={}).found().assign(unlocks=lambda f: f["table"].map(UNLOCKS))


def _found_html(found: pd.DataFrame, lang: str | None = None) -> str:
    rows = []
    for r in found.itertuples(index=False):
        unlocks = html.escape(label(f"unlocks.{r.table}", r.unlocks, lang))
        table = html.escape(r.table)
        if r.found:
            rows.append(f'<li data-found="{table}">'
                        + t("overview.found", lang, table=f"<b>{table}</b>", rows=format_value(r.rows, "count"),
                            unlocks=unlocks) + "</li>")
        else:
            rows.append(f'<li data-missing="{table}" style="color:#57606a">'
                        + t("overview.not_found", lang, table=table, unlocks=unlocks) + "</li>")
    return f'<ul class="salesplan-found">{"".join(rows)}</ul>'


def _options(df: pd.DataFrame | None, column: str) -> list[str]:
    if df is None or column not in df.columns:
        return [ALL]
    values = sorted(str(v) for v in df[column].dropna().unique())
    return [ALL, *values]


def _summary_html(summary: pd.DataFrame, lang: str | None = None) -> str:
    names = headers(["table", "rows", "columns", "first_date", "last_date", "date_column"], lang)
    head = "<tr>" + "".join(f"<th>{html.escape(n)}</th>" for n in names.values()) + "</tr>"
    body = []
    for row in summary.itertuples(index=False):
        first = "" if pd.isna(row.first_date) else f"{row.first_date:%Y-%m-%d}"
        last = "" if pd.isna(row.last_date) else f"{row.last_date:%Y-%m-%d}"
        date_col = "" if pd.isna(row.date_column) else row.date_column
        body.append(
            f'<tr data-table="{html.escape(row.table)}"><td>{html.escape(row.table)}</td>'
            f'<td class="rows">{format_value(row.rows, "count")}</td><td>{row.columns}</td>'
            f"<td>{first}</td><td>{last}</td><td>{html.escape(date_col)}</td></tr>"
        )
    return f'<table class="salesplan-summary">{head}{"".join(body)}</table>'


def _kpi_html(frame: pd.DataFrame, lang: str | None = None) -> str:
    cards = []
    for row in frame.itertuples(index=False):
        unit = "growth" if row.kpi == "yoy_growth" else row.unit
        note = f'<div class="kpi-note">{html.escape(row.note)}</div>' if row.note else ""
        cards.append(
            f'<div class="salesplan-kpi" data-kpi="{row.kpi}">'
            f'<div class="kpi-value">{format_value(row.value, unit, lang=lang)}</div>'
            f'<div class="kpi-label">{html.escape(label(f"kpis.{row.kpi}", row.label, lang))}</div>{note}</div>'
        )
    window = ""
    if len(frame):
        window = (
            "<p style='font-size:12px;color:#57606a'>"
            + t("overview.window", lang, start=f"{frame['window_start'].iloc[0]:%Y-%m-%d}",
                end=f"{frame['window_end'].iloc[0]:%Y-%m-%d}") + "</p>"
        )
    return f'<div class="salesplan-kpis">{"".join(cards)}</div>{window}'


def _links_html(apps: pd.DataFrame, lang: str | None = None) -> str:
    if apps.empty:
        return f"<p>{html.escape(t('overview.no_apps', lang))}</p>"
    code = current_lang(lang)

    def title(r) -> str:
        # A notebook's own heading is in English; other languages take the catalogue's title of the app.
        if code == DEFAULT_LANG:
            return r.title
        return label(f"apps.{Path(r.notebook).stem}.title", r.title, code)

    items = "".join(
        f'<li><a href="{html.escape(r.href)}" target="_self">{html.escape(title(r))}</a>'
        f' <span style="color:#8c959f">({html.escape(r.notebook)})</span></li>'
        for r in apps.itertuples(index=False)
    )
    return f'<ul class="salesplan-links">{items}</ul>'


class OverviewApp(Translated):
    """The landing page: table summary, KPIs, monthly revenue and links to the apps.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        The data, as :func:`salesplan.datasets.load_demo` returns it. Only
        ``transactions`` is needed for the KPIs and the chart; every table
        present is summarised.
    as_of : date-like, optional
        Last day of the KPI window; defaults to the latest order date (of all
        regions and channels, so that filtered KPIs cover the same window).
    apps_dir : path, default "."
        Folder holding the other notebooks to link to (see :func:`find_apps`).
    lang : str, optional
        Language of the page (``"en"``, ``"zh"``); default
        :func:`salesplan.i18n.current_lang`. The switch at the top changes it.

    Attributes
    ----------
    region, channel : ipywidgets.Dropdown
        Filters of the KPIs and the chart (``"All"`` = no filter).
    lang_switch : ipywidgets.ToggleButtons
        The language of the page (see :meth:`set_lang`).
    errors : ErrorArea
        Problems, shown as text.
    chart : PlotArea
        The monthly revenue chart; ``chart.figure`` is the plotly figure
        (rendered as a plotly mime bundle, so no ``anywidget`` is needed).
    container : ipywidgets.VBox
        The whole page.
    result : dict
        ``"summary"`` (:func:`~salesplan.summary.summarize_tables`),
        ``"found"`` (:func:`found_tables`: every table, found or not, and what it unlocks),
        ``"kpis"`` (:func:`~salesplan.summary.kpis` of the filtered lines),
        ``"monthly"`` (:func:`~salesplan.summary.monthly_revenue` of them),
        ``"apps"`` (:func:`find_apps`) and ``"error"`` (the message shown, or
        ""). Frames are empty when they could not be computed.
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        as_of: object = None,
        apps_dir: str | Path = ".",
        lang: str | None = None,
    ) -> None:
        self._init_lang(lang)
        self._busy = False
        self.tables = dict(tables) if isinstance(tables, Mapping) else tables
        self.as_of = as_of
        self.errors = ErrorArea()
        self.result: dict[str, object] = {
            "summary": pd.DataFrame(),
            "found": pd.DataFrame(),
            "kpis": pd.DataFrame(),
            "monthly": pd.DataFrame(),
            "apps": pd.DataFrame(),
            "error": "",
        }
        transactions = self.tables.get("transactions") if isinstance(self.tables, dict) else None
        if not isinstance(transactions, pd.DataFrame):
            transactions = None
        self._transactions = transactions

        self.summary = widgets.HTML()
        self.found = widgets.HTML()
        self.region = widgets.Dropdown(options=_options(transactions, "region"), value=ALL)
        self.channel = widgets.Dropdown(options=_options(transactions, "channel"), value=ALL)
        # Offer only the breakdowns the data has.
        for control, column in ((self.region, "region"), (self.channel, "channel")):
            if transactions is None or column not in transactions.columns:
                control.layout.display = "none"
        self.kpi_cards = widgets.HTML()
        self.chart = PlotArea(live=True)
        self.monthly_table = TableView(name="monthly_revenue", kinds={"month": "date"}, lang=self.lang)
        self.monthly_fold = widgets.Accordion(children=[self.monthly_table], selected_index=None)

        self.links = widgets.HTML()
        self._headings = {key: widgets.HTML() for key in ("data", "kpis", "apps")}
        self.container = widgets.VBox(
            [
                self.lang_switch,
                widgets.HTML(_CSS),
                self.errors,
                self._headings["data"],
                self.summary,
                self.found,
                self._headings["kpis"],
                widgets.HBox([self.region, self.channel]),
                self.kpi_cards,
                self.chart,
                self.monthly_fold,
                self._headings["apps"],
                self.links,
            ]
        )
        self._relabel()

        with self.errors.capture():
            self.result["apps"] = find_apps(apps_dir)
            self.links.value = _links_html(self.result["apps"], self.lang)
        with self.errors.capture():
            self.result["summary"] = summarize_tables(self.tables)
            self.summary.value = _summary_html(self.result["summary"], self.lang)
            self.result["found"] = found_tables(self.tables)
            self.found.value = _found_html(self.result["found"], self.lang)
        if self.errors.ok:
            self._update()
        self.result["error"] = self.errors.message if not self.errors.ok else ""
        self.region.observe(self._update, names="value")
        self.channel.observe(self._update, names="value")

    @classmethod
    def from_source(cls, data_path: str | Path | None = None, **kwargs) -> OverviewApp:
        """Load the data with :func:`load_tables` and build the app.

        A file that cannot be loaded gives an app showing why, not a traceback.
        """
        return app_from_source(cls, data_path, load_tables, **kwargs)

    def _relabel(self) -> None:
        """Every control label and heading in the page's language."""
        self.region.description = self._t("overview.region")
        self.channel.description = self._t("overview.channel")
        self._busy = True  # relabelling the options must not recompute
        try:
            for control in (self.region, self.channel):
                relabel_options(control, {ALL: self._t("overview.all")})
        finally:
            self._busy = False
        for key, widget in self._headings.items():
            widget.value = f"<h3>{html.escape(self._t('overview.heading_' + key))}</h3>"
        self.monthly_fold.set_title(0, self._t("overview.monthly_table"))

    def _rerender(self) -> None:
        """The same results again, in the page's language (the KPIs are recomputed: the same numbers)."""
        if len(self.result["apps"]) or "notebook" in self.result["apps"]:
            self.links.value = _links_html(self.result["apps"], self.lang)
        if len(self.result["summary"]):
            self.summary.value = _summary_html(self.result["summary"], self.lang)
        if len(self.result["found"]):
            self.found.value = _found_html(self.result["found"], self.lang)
        if self._transactions is None:
            self._resay("overview.no_transactions", tables=sorted(self.tables) or "none")
        elif len(self.result["summary"]):
            self._update()  # the KPIs again (the same numbers), with the messages in the new language

    def _filtered(self) -> pd.DataFrame:
        if self._transactions is None:
            raise SalesplanDataError(self._t("overview.no_transactions", tables=sorted(self.tables) or "none"))
        region = None if self.region.value == ALL else self.region.value
        channel = None if self.channel.value == ALL else self.channel.value
        return filter_transactions(self._transactions, region=region, channel=channel)

    def _update(self, change: object = None) -> None:
        """Recompute the KPIs and the chart for the current filters."""
        if self._busy:
            return
        with self.errors.capture():
            self.result["kpis"] = pd.DataFrame()
            self.result["monthly"] = pd.DataFrame()
            lines = self._filtered()
            as_of = self.as_of
            if as_of is None and len(self._transactions):
                as_of = pd.to_datetime(self._transactions["order_date"], errors="coerce").max()
            if lines.empty:
                raise SalesplanDataError(
                    self._t("overview.no_lines", region=repr(self.region.value), channel=repr(self.channel.value)))
            self.result["kpis"] = kpis(lines, as_of=as_of)
            self.result["monthly"] = monthly_revenue(lines)
        self.result["error"] = "" if self.errors.ok else self.errors.message
        self._show()

    def _show(self) -> None:
        """The KPI cards and the chart of the current results."""
        self.kpi_cards.value = _kpi_html(self.result["kpis"], self.lang) if len(self.result["kpis"]) else ""
        self.chart.update(self._figure(self.result["monthly"]))
        # An empty chart with made-up axes reads as data; hide it until there is some.
        self.chart.layout.display = None if len(self.result["monthly"]) else "none"
        self.monthly_table.update(self.result["monthly"], kinds={"month": "date"},
                                  labels=self._headers(self.result["monthly"].columns))
        self.monthly_fold.layout.display = self.chart.layout.display

    def _figure(self, monthly: pd.DataFrame) -> dict:
        """The chart as a plain plotly spec (a dict skips plotly's slow validation)."""
        columns = self._transactions.columns if self._transactions is not None else ()
        where = self._t("overview.list_separator").join(
            v if v != ALL else self._t(f"overview.all_{name}s")
            for name, v in (("region", self.region.value), ("channel", self.channel.value)) if name in columns
        ) or self._t("overview.all_lines")
        data = []
        if len(monthly):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": self._t("columns.revenue"),
                    "x": monthly["month"].dt.strftime("%Y-%m-%d").tolist(),
                    "y": monthly["revenue"].astype(float).tolist(),
                    "line": {"color": "#1f77b4"},
                    "hovertemplate": "%{x|%b %Y}: %{y:,.0f}<extra></extra>",
                }
            )
        axis = {"gridcolor": "#e5e5e5", "zerolinecolor": "#bbbbbb"}
        layout = {
            "title": {"text": self._t("overview.chart_title", where=where)},
            "xaxis": {"title": {"text": self._t("columns.month")}, **axis},
            "yaxis": {"title": {"text": self._t("columns.revenue")}, "tickformat": ",.0f", **axis},
            "height": 360,
            "margin": {"l": 70, "r": 20, "t": 50, "b": 40},
            "plot_bgcolor": "white",
            "paper_bgcolor": "white",
        }
        return {"data": data, "layout": layout}
