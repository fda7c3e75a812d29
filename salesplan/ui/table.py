"""Tables a manager reads: formatted by :mod:`salesplan.format`, sortable when long, downloadable.

:class:`TableView` is the one way an app shows a table. Every cell is the
text :func:`salesplan.format.format_frame` makes (money with separators,
percentages, no index, no scientific notation). A table longer than a screen
(more than :data:`INTERACTIVE_ROWS` rows) becomes an ``itables`` DataTable
(its anywidget ``ITable``, whose JavaScript ships inside the package, so the
page needs no CDN): a click on a header sorts, on the raw numbers kept in
hidden columns rather than on the text, and a search box filters. A short
table stays a plain HTML table. Both have two buttons that download the
whole table, as CSV (raw numbers) and as an Excel sheet (raw numbers with the
page's number formats); the bytes are built only when a button is pressed and
reach the browser over the widget's own channel, with no server endpoint.

:class:`Section` is a page section made of text and tables; its ``value``
is the section as static HTML (what ``show()`` prints in a report), while
the page shows the live tables::

    section = Section()
    section.show("<p>Deals stuck</p>", Table(frame, name="aging", count=["days_over"]))
    section.value          # static HTML: the sentence and the formatted table
    section.tables[0].frame, section.tables[0].shown, section.tables[0].interactive

Everything stays readable in plain pytest.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import anywidget
import ipywidgets as widgets
import pandas as pd
import traitlets

from salesplan import format as fmt
from salesplan.i18n import current_lang, t

__all__ = [
    "INTERACTIVE_ROWS",
    "MAX_INTERACTIVE_ROWS",
    "Download",
    "Section",
    "Table",
    "TableView",
    "has_interactive_tables",
]

#: Tables with more rows than this are sortable and filterable (about one screen).
INTERACTIVE_ROWS = 15
#: At most this many rows go to the browser; the downloads always hold every row.
MAX_INTERACTIVE_ROWS = 5_000

_FORMAT_KEYS = ("money", "percent", "count", "kinds", "labels")

_CSS = """<style>
.salesplan-table-view .salesplan-downloads .salesplan-download{font-size:12px;height:24px;line-height:22px;
 padding:0 8px;margin:2px 4px 6px 0}
.salesplan-table-view table.dataTable{font-size:12px}
.salesplan-table-view table.dataTable td.dt-left,.salesplan-table-view table.dataTable th.dt-left{text-align:left}
.salesplan-table-view table.dataTable td.dt-right,.salesplan-table-view table.dataTable th.dt-right{text-align:right}
</style>"""

_MIME = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def has_interactive_tables() -> bool:
    """Whether the sortable table widget works here (``itables`` with ``anywidget``)."""
    try:
        import anywidget  # noqa: F401
        from itables.widget import ITable  # noqa: F401
    except ImportError:
        return False
    return True


class Download(anywidget.AnyWidget):
    """A button that downloads bytes built in Python when it is pressed.

    The browser asks the kernel for the file; :meth:`payload` builds it and
    sends it back as a binary buffer, which the page saves under
    ``filename``. Nothing is built until someone asks for it.

    Parameters
    ----------
    build : callable returning bytes
        Makes the file's bytes.
    filename : str
        The name the browser saves it under.
    description : str
        The button's text.
    """

    _esm = """
function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "jupyter-button widget-button salesplan-download";
  button.type = "button";
  const label = () => {
    button.textContent = model.get("description");
    button.title = model.get("filename");
    button.dataset.filename = model.get("filename");
  };
  label();
  model.on("change:description", label);
  model.on("change:filename", label);
  let waiting = false;
  button.addEventListener("click", () => { waiting = true; model.send({ event: "download" }); });
  const receive = (msg, buffers) => {
    if (!waiting || !msg || msg.event !== "file") return;
    waiting = false;
    const blob = new Blob(buffers.length ? [buffers[0]] : [], { type: msg.mime });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = msg.filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  };
  model.on("msg:custom", receive);
  el.appendChild(button);
  return () => model.off("msg:custom", receive);
}
export default { render };
"""

    description = traitlets.Unicode("Download").tag(sync=True)
    filename = traitlets.Unicode("table.csv").tag(sync=True)

    def __init__(self, build: Callable[[], bytes], *, filename: str, description: str, **kwargs) -> None:
        super().__init__(description=description, filename=filename, **kwargs)
        self.build = build
        self.on_msg(self._on_msg)

    def payload(self) -> bytes:
        """The file's bytes as the button would send them."""
        return self.build()

    def _on_msg(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("event") == "download":
            suffix = self.filename.rsplit(".", 1)[-1]
            mime = _MIME.get(suffix, "application/octet-stream")
            self.send({"event": "file", "filename": self.filename, "mime": mime}, [self.payload()])


class Table:
    """A table to show in a :class:`Section`: the frame and how :mod:`salesplan.format` reads it.

    Parameters
    ----------
    frame : DataFrame
        The rows and columns to show, as numbers (they are formatted for display).
    name : str
        The file name of the downloads, without suffix.
    max_rows : int
        Rows in the static HTML (the live table shows them all, the downloads hold them all).
    summary : str or None
        When given, the table is folded under this title.
    format : dict
        Keyword arguments of :func:`salesplan.format.format_frame` (``money``, ``percent``,
        ``count``, ``kinds``, ``labels``).
    """

    def __init__(self, frame: pd.DataFrame, *, name: str = "table", max_rows: int = 200,
                 summary: str | None = None, **format_kwargs) -> None:
        unknown = set(format_kwargs) - set(_FORMAT_KEYS)
        if unknown:
            raise TypeError(f"Table() got unexpected keyword arguments {sorted(unknown)}; "
                            f"formatting takes {list(_FORMAT_KEYS)}.")
        self.frame, self.name, self.max_rows, self.summary = frame, name, max_rows, summary
        self.format = dict(format_kwargs)

    def __repr__(self) -> str:
        return f"Table({self.name!r}, {len(self.frame)} rows x {len(self.frame.columns)} columns)"


class TableView(widgets.VBox):
    """One table on a page: plain when short, sortable and filterable when long; always downloadable.

    Parameters
    ----------
    frame : DataFrame, optional
        The table to show first (see :meth:`update`).
    name : str
        The file name of the downloads, without suffix.
    interactive_rows : int
        Longer tables become the sortable widget.
    **format_kwargs
        Keyword arguments of :func:`salesplan.format.format_frame`.

    Attributes
    ----------
    frame : DataFrame
        The raw table shown (numbers, not text).
    shown : DataFrame
        Every cell as the text on the page (:func:`salesplan.format.format_frame`), headers labelled.
    interactive : bool
        Whether the table is the sortable, filterable widget.
    html : str
        The table as static HTML (:func:`salesplan.format.table_html`, at most ``max_rows`` rows).
    csv, excel : Download
        The two download buttons.
    """

    def __init__(self, frame: pd.DataFrame | None = None, *, name: str = "table",
                 interactive_rows: int = INTERACTIVE_ROWS, lang: str | None = None, **format_kwargs) -> None:
        self.lang = current_lang(lang)
        self.name = name
        self.interactive_rows = interactive_rows
        self.frame = pd.DataFrame()
        self.format: dict = {}
        self.max_rows = 200
        self.shown = pd.DataFrame()
        self.interactive = False
        self._html: str | None = ""
        self._static = widgets.HTML()
        self._itable = None
        self.csv = Download(self.csv_bytes, filename=f"{name}.csv", description=t("table.csv", self.lang))
        self.excel = Download(self.xlsx_bytes, filename=f"{name}.xlsx", description=t("table.excel", self.lang))
        self._download_label = widgets.HTML(f"<small>{html.escape(t('table.download', self.lang))}&nbsp;</small>")
        self.downloads = widgets.HBox([self._download_label, self.csv, self.excel])
        self.downloads.add_class("salesplan-downloads")
        super().__init__(children=[widgets.HTML(_CSS), self._static, self.downloads])
        self.add_class("salesplan-table-view")
        if frame is not None:
            self.update(frame, **format_kwargs)

    def set_lang(self, lang: str) -> None:
        """Say the table's own words (downloads, the live table's search and counts) in ``lang``."""
        code = current_lang(lang)
        if code == self.lang:
            return
        self.lang = code
        self.csv.description, self.excel.description = t("table.csv", code), t("table.excel", code)
        self._download_label.value = f"<small>{html.escape(t('table.download', code))}&nbsp;</small>"
        if self.interactive:
            self._show_interactive()

    # ------------------------------------------------------------------ data
    def update(self, frame: pd.DataFrame, *, name: str | None = None, max_rows: int = 200,
               **format_kwargs) -> None:
        """Show ``frame`` (formatted with ``format_kwargs``) instead of the table shown."""
        if name is not None and name != self.name:
            self.name = name
            self.csv.filename, self.excel.filename = f"{name}.csv", f"{name}.xlsx"
        self.frame = frame
        self.format = dict(format_kwargs)
        self.max_rows = max_rows
        self.shown = fmt.format_frame(frame, **self.format)
        self._html = None
        self.interactive = len(frame) > self.interactive_rows and has_interactive_tables()
        if self.interactive:
            view = self._show_interactive()
        else:
            self._static.value = self.html
            view = self._static
        self.downloads.layout.display = None if len(frame.columns) else "none"
        if self.children[1] is not view:
            self.children = (self.children[0], view, self.downloads)

    @property
    def html(self) -> str:
        if self._html is None:
            self._html = fmt.table_html(self.frame, max_rows=self.max_rows, **self.format) if len(
                self.frame.columns) else ""
        return self._html

    def csv_bytes(self) -> bytes:
        """The whole table as CSV: raw numbers, the page's headers (:func:`salesplan.format.table_csv`)."""
        return fmt.table_csv(self.frame, **self.format)

    def xlsx_bytes(self) -> bytes:
        """The whole table as an Excel workbook with number formats (:func:`salesplan.format.table_xlsx`)."""
        return fmt.table_xlsx(self.frame, sheet=self.name, **self.format)

    def _itable_data(self) -> tuple[pd.DataFrame, list[dict]]:
        """The text to show plus one hidden raw column per number or date column, which its header sorts by."""
        shown = self.shown.head(MAX_INTERACTIVE_ROWS)
        kinds = fmt.column_kinds(self.frame, **{k: v for k, v in self.format.items() if k != "labels"})
        raw = fmt.shown_rows(self.frame).head(MAX_INTERACTIVE_ROWS)
        data = {f"c{i}": shown.iloc[:, i].tolist() for i in range(shown.shape[1])}
        n = shown.shape[1]
        defs: list[dict] = []
        right, hidden = [], []
        for i, (col, kind) in enumerate(kinds.items()):
            if kind == "text":
                continue
            right.append(i)
            values = raw[col]
            if kind == "date":
                key = pd.to_datetime(values, errors="coerce").dt.strftime("%Y-%m-%d %H:%M:%S")
                key = key.where(key.notna(), "")
            else:
                key = pd.to_numeric(values, errors="coerce").astype("float64")
                key = key.astype(object).where(key.notna(), None)
            j = n + len(hidden)
            data[f"c{j}"] = key.tolist()
            hidden.append(j)
            defs.append({"targets": i, "orderData": [j]})
        if hidden:
            defs.append({"targets": hidden, "visible": False, "searchable": False})
        if right:
            defs.append({"targets": right, "className": "dt-right"})
        left = [i for i in range(n) if i not in right]
        if left:
            defs.append({"targets": left, "className": "dt-left"})
        out = pd.DataFrame(data)
        out.columns = [str(c) for c in shown.columns] + [f"sort {k}" for k in range(len(hidden))]
        return out, defs

    def _show_interactive(self):
        from itables.widget import ITable

        data, defs = self._itable_data()
        options = dict(columnDefs=defs, showIndex=False, maxBytes=0, format_floats_in_python=False,
                       add_rank_to_categories=False, text_in_header_can_be_selected=False, pageLength=INTERACTIVE_ROWS,
                       lengthMenu=[INTERACTIVE_ROWS, 50, 100, -1], classes="display compact nowrap",
                       style="width:auto;margin:0", order=[], language=_datatables_language(self.lang))
        more = len(self.frame) - len(data)
        caption = (t("table.first_rows", self.lang, shown=f"{len(data):,}", rows=f"{len(self.frame):,}")
                   if more > 0 else "")
        if self._itable is None:
            self._itable = ITable(data, caption=caption, **options)
        else:
            self._itable.update(data, caption=caption, **options)
        return self._itable


def _datatables_language(lang: str) -> dict:
    """The live table's own words (search box, row counts, pages) from the ``[table]`` catalogue."""
    return {
        "search": t("table.search", lang), "info": t("table.info", lang), "infoEmpty": t("table.info_empty", lang),
        "infoFiltered": t("table.info_filtered", lang), "lengthMenu": t("table.length_menu", lang),
        "zeroRecords": t("table.zero_records", lang), "emptyTable": t("table.zero_records", lang),
        "paginate": {"first": t("table.first", lang), "last": t("table.last", lang),
                     "next": t("table.next", lang), "previous": t("table.previous", lang)},
    }


class Section(widgets.VBox):
    """A page section of text and tables; ``value`` is its static HTML, the page shows live tables.

    Text parts are HTML strings; table parts are :class:`Table` and become
    :class:`TableView` widgets (reused from one update to the next).

    Attributes
    ----------
    value : str
        The section as static HTML: text and formatted tables, as a report prints it.
        Setting it shows that HTML alone.
    tables : list of TableView
        The tables shown, in order.
    """

    def __init__(self, value: str = "", *, lang: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lang = current_lang(lang)
        self.add_class("salesplan-section-body")
        self._parts: list[str | Table] = []
        self._texts: list[widgets.HTML] = []
        self._views: list[TableView] = []
        self._folds: list[widgets.Accordion] = []
        self.tables: list[TableView] = []
        if value:
            self.value = value

    @property
    def value(self) -> str:
        out = []
        for part, view in zip(self._parts, self._views_of_parts()):
            if isinstance(part, str):
                out.append(part)
            elif part.summary:
                out.append(f"<details><summary>{html.escape(part.summary)}</summary>{view.html}</details>")
            else:
                out.append(view.html)
        return "".join(out)

    @value.setter
    def value(self, text: str) -> None:
        self.show(text)

    def set_lang(self, lang: str) -> None:
        """Say its tables' own words in ``lang`` (the text parts are the app's to say again)."""
        self.lang = current_lang(lang)
        for view in self._views:
            view.set_lang(self.lang)

    def _views_of_parts(self):
        k = 0
        for part in self._parts:
            if isinstance(part, str):
                yield None
            else:
                yield self.tables[k]
                k += 1

    def show(self, *parts: str | Table) -> None:
        """Show text (HTML strings) and tables, in order."""
        merged: list[str | Table] = []
        for part in parts:
            if isinstance(part, str):
                if not part:
                    continue
                if merged and isinstance(merged[-1], str):
                    merged[-1] += part
                    continue
            elif not isinstance(part, Table):
                raise TypeError(f"a section shows HTML strings and Table parts, not {type(part).__name__}.")
            merged.append(part)
        children, tables = [], []
        n_text = n_fold = 0
        for part in merged:
            if isinstance(part, str):
                if n_text == len(self._texts):
                    self._texts.append(widgets.HTML())
                self._texts[n_text].value = part
                children.append(self._texts[n_text])
                n_text += 1
                continue
            k = len(tables)
            if k == len(self._views):
                self._views.append(TableView(name=part.name, lang=self.lang))
            view = self._views[k]
            view.update(part.frame, name=part.name, max_rows=part.max_rows, **part.format)
            tables.append(view)
            if part.summary:
                if n_fold == len(self._folds):
                    self._folds.append(widgets.Accordion(selected_index=None))
                fold = self._folds[n_fold]
                if fold.children != (view,):
                    fold.children = (view,)
                fold.set_title(0, part.summary)
                children.append(fold)
                n_fold += 1
            else:
                children.append(view)
        self._parts, self.tables = merged, tables
        if tuple(children) != tuple(self.children):
            self.children = tuple(children)

