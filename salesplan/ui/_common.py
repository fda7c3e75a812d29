"""Widget helpers shared by the salesplan apps: a message area and a chart area.

Every app shows problems in the page as text, never as a traceback. The
:class:`ErrorArea` is that text; its :meth:`ErrorArea.capture` context manager
turns any exception raised while an app updates into a short message (and any
:class:`~salesplan.errors.SalesplanWarning` into a counted warning line), so an
app's ``_update`` can be written as::

    with self.errors.capture():
        self.result = compute(...)

The state stays readable in plain pytest: ``area.message`` is the plain text,
``area.level`` is ``"error"``, ``"warning"``, ``"info"`` or ``""``.

:class:`PlotArea` shows a plotly figure, rendered into an ``ipywidgets.Output``
as a plotly mime bundle (so Voila and JupyterLab draw it) without needing
``anywidget``; ``live=True`` uses a ``FigureWidget`` where ``anywidget`` is
installed. Either way ``area.figure`` is the current ``go.Figure`` for tests.
"""

from __future__ import annotations

import datetime
import html
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from salesplan.errors import SalesplanError, SalesplanWarning
from salesplan.ui.page import plain_warnings

__all__ = [
    "ErrorArea",
    "Pages",
    "PlotArea",
    "show_error",
    "frame_html",
    "has_figure_widget",
    "app_from_source",
]

# Warnings in a page read as plain notes, not as file paths and line numbers.
plain_warnings()

_STYLES = {
    "error": "color:#a61b1b;background:#fdecea;border-left:4px solid #a61b1b;",
    "warning": "color:#7a4f01;background:#fff4e5;border-left:4px solid #c77c02;",
    "info": "color:#0b4f71;background:#e8f4fd;border-left:4px solid #0b79b8;",
}


def _message_of(exc: BaseException | str) -> str:
    if isinstance(exc, str):
        return exc
    if isinstance(exc, SalesplanError):
        return str(exc)
    # An unexpected failure: say what kind and where, but keep the page free of
    # a traceback; the last frame is enough for a bug report.
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (in {tb[-1].name}, {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    return f"Unexpected error {type(exc).__name__}: {exc}{where}. Please report it with the inputs used."


class ErrorArea(widgets.HTML):
    """An HTML widget that shows one error, warning or info message as text.

    Attributes
    ----------
    message : str
        The plain-text message shown ("" when clear).
    level : str
        ``"error"``, ``"warning"``, ``"info"`` or ``""``.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(value="", **kwargs)
        self.message: str = ""
        self.level: str = ""

    def _show(self, text: str, level: str) -> None:
        self.message = text
        self.level = level
        if not text:
            self.value = ""
            return
        body = "<br>".join(html.escape(line) for line in text.splitlines())
        self.value = (
            f'<div class="salesplan-{level}" style="{_STYLES[level]}padding:6px 10px;'
            f'margin:4px 0;white-space:normal;">{body}</div>'
        )

    def show_error(self, exc: BaseException | str) -> None:
        """Show an exception (or a text) as an error message."""
        self._show(_message_of(exc), "error")

    def show_warning(self, text: str) -> None:
        """Show a warning message."""
        self._show(text, "warning")

    def show_info(self, text: str) -> None:
        """Show an informational message (e.g. "saved plans/x_v2.json")."""
        self._show(text, "info")

    def clear(self) -> None:
        """Remove the message."""
        self._show("", "")

    @property
    def ok(self) -> bool:
        """True when no error is shown."""
        return self.level != "error"

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Run a block; show its exception or warnings here instead of raising.

        The area is cleared first. An exception is shown as an error and not
        re-raised; :class:`SalesplanWarning` warnings are collected and shown
        (with counts) when nothing failed. Other warnings pass through.
        """
        self.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SalesplanWarning)
            try:
                yield
            except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
                self.show_error(exc)
                return
        ours, others = [], []
        for w in caught:
            (ours if issubclass(w.category, SalesplanWarning) else others).append(w)
        for w in others:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if ours:
            texts = list(dict.fromkeys(str(w.message) for w in ours))
            self.show_warning("\n".join(texts))


def show_error(area: ErrorArea, exc: BaseException | str) -> None:
    """Show ``exc`` in ``area`` (function form of :meth:`ErrorArea.show_error`)."""
    area.show_error(exc)


def has_figure_widget() -> bool:
    """Whether plotly's live ``FigureWidget`` works here (it needs ``anywidget``)."""
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return False
    return True


_LOADER = """\
const config = document.getElementById("jupyter-config-data");
const base = ((config && JSON.parse(config.textContent).baseUrl) || "/").replace(/\\/?$/, "/");
const module = await import(new URL(base + %s, window.location.href).href);
export default module.default;
"""

_shared_figure_widget: type | None = None


def shared_widget_modules() -> bool:
    """Whether the page's server hands out the widgets' JavaScript modules (``salesplan serve`` does)."""
    import os

    from salesplan.serve import WIDGET_MODULES_ENV

    return bool(os.environ.get(WIDGET_MODULES_ENV))


def figure_widget() -> go.FigureWidget:
    """A new plotly ``FigureWidget``; under ``salesplan serve`` one whose JavaScript the page loads once.

    A ``FigureWidget`` carries plotly's whole widget module (about 5 MB of
    JavaScript) in its state, and the page compiles it once per chart. Where
    the server hands the module out (:data:`WIDGET_MODULES_ENV` is set), the
    widget carries a few lines that import it from the server instead: the
    browser fetches and compiles it once for every chart of every page, and
    caches it. Elsewhere (JupyterLab, plain Voila) it is plotly's own widget.
    """
    import os

    from salesplan.serve import WIDGET_MODULES_ENV, figure_module_path

    path = os.environ.get(WIDGET_MODULES_ENV)
    if not path:
        return go.FigureWidget()
    global _shared_figure_widget
    if _shared_figure_widget is None:
        import json

        _shared_figure_widget = type("SharedFigureWidget", (go.FigureWidget,),
                                     {"_esm": _LOADER % json.dumps(figure_module_path(path)), "__module__": __name__})
    return _shared_figure_widget()


class Pages(widgets.VBox):
    """The sections of a long page, one shown at a time, picked from a row of buttons.

    The browser draws only the section shown (ipywidgets' ``Stack`` renders its
    selected child alone), so a page with a dozen charts opens with the charts
    of its first section drawn, and another section is drawn when picked. The
    buttons and the stack are linked in the browser: picking a section needs no
    kernel. Every section stays in the widget tree (``children`` of
    :attr:`stack`), computed and up to date, whichever is shown.

    Parameters
    ----------
    sections : mapping of str to Widget
        Key -> the section's box, in the order of the buttons.
    labels : mapping of str to str, optional
        Key -> the button's text (default: the key); see :meth:`relabel`.

    Attributes
    ----------
    nav : ipywidgets.ToggleButtons
        The buttons; ``nav.value`` is the key of the section shown.
    stack : ipywidgets.Stack
        The sections.
    """

    def __init__(self, sections, labels=None, **kwargs) -> None:
        self.section_keys = list(sections)
        self.sections = dict(sections)
        self.nav = widgets.ToggleButtons(options=self._options(labels or {}), value=self.section_keys[0],
                                         style={"button_width": "auto"})
        self.nav.add_class("salesplan-pages")
        self.stack = widgets.Stack(children=[self.sections[k] for k in self.section_keys], selected_index=0)
        widgets.jslink((self.nav, "index"), (self.stack, "selected_index"))
        # The same link in the kernel, for a change made there (a test, an app picking a section).
        self.nav.observe(lambda change: setattr(self.stack, "selected_index", change.new), names="index")
        super().__init__([self.nav, self.stack], **kwargs)

    def _options(self, labels) -> list[tuple[str, str]]:
        return [(str(labels.get(k, k)), k) for k in self.section_keys]

    @property
    def shown(self) -> str:
        """The key of the section shown."""
        return self.section_keys[self.stack.selected_index or 0]

    def show(self, key: str) -> None:
        """Show the section ``key``."""
        self.nav.value = key

    def relabel(self, labels) -> None:
        """New button texts (a language switch), the same section shown."""
        key = self.nav.value
        options = self._options(labels)
        if list(self.nav.options) != options:
            self.nav.options = options
            self.nav.value = key


class PlotArea(widgets.VBox):
    """A box showing one plotly figure; call :meth:`update` with a new figure.

    The figure is rendered into an ``ipywidgets.Output`` as a plotly mime
    bundle (JupyterLab and Voila draw it with the plotly renderer that ships
    with plotly), which needs no kernel round-trip and no ``anywidget``.
    :meth:`update` accepts a ``go.Figure`` or a plain ``{"data": [...],
    "layout": {...}}`` dict; dicts skip plotly's per-property validation,
    which keeps an app's update path fast. ``live=True`` uses a
    ``go.FigureWidget`` instead (needs ``anywidget``; its JavaScript ships
    with plotly, so it draws offline): a chart that follows a control is then
    changed in place, one batched restyle and relayout per update, and the
    page keeps the same plot element.

    Attributes
    ----------
    figure : plotly.graph_objects.Figure or None
        The figure shown last (built on first access when a dict was given).
    spec : dict or None
        The figure shown last as a plain dict.
    redraws : int
        Times a live figure's traces were replaced (their number or types
        changed) rather than updated in place.
    """

    def __init__(self, figure: go.Figure | dict | None = None, *, live: bool = False, **kwargs) -> None:
        # Where the server hands out plotly's widget module, every chart is live: the page then
        # loads one copy of plotly for all its charts (and the browser keeps it for the next page).
        self.live = (bool(live) or shared_widget_modules()) and has_figure_widget()
        self.spec: dict | None = None
        self._figure: go.Figure | None = None
        self.redraws = 0  # times a live figure's traces were replaced rather than updated in place
        self._templated = False
        self._view = figure_widget() if self.live else widgets.Output()
        super().__init__(children=[self._view], **kwargs)
        if figure is not None:
            self.update(figure)

    @property
    def figure(self) -> go.Figure | None:
        if self._figure is None and self.spec is not None:
            self._figure = go.Figure(self.spec)
        return self._figure

    def update(self, figure: go.Figure | dict) -> None:
        """Show ``figure`` (replacing the previous one)."""
        if isinstance(figure, go.Figure):
            self._figure = figure
            self.spec = figure.to_plotly_json()
        else:
            self._figure = None
            self.spec = {"data": list(figure.get("data", [])), "layout": dict(figure.get("layout", {}))}
        if self.live:
            self._update_live(self.spec)
            return
        # Setting outputs directly needs no kernel, so this also works (and is
        # testable) in plain Python; frontends pick the plotly mime renderer.
        n = len(self.spec["data"])
        self._view.outputs = (
            {
                "output_type": "display_data",
                "data": {
                    "application/vnd.plotly.v1+json": _jsonable(self.spec),
                    "text/plain": f"<plotly figure: {n} trace(s)>",
                },
                "metadata": {},
            },
        )

    def _update_live(self, spec: dict) -> None:
        """Change the ``FigureWidget`` in place: one batch of restyle/relayout messages, no redraw of the page.

        Traces of the same number and types are updated property by property;
        otherwise the traces are replaced (counted in ``redraws``). The
        widget's synced state is set to the result too, so a page opened (or
        drawn again) later shows the current figure. The layout's template is
        set once: re-validating it on every change would cost more than the chart.
        """
        view = self._view
        if not self._templated:
            # The template once, from the first figure: plotly's own for a go.Figure, none for a plain
            # dict (as the non-live path draws it); a template is too big to re-send on every change.
            view.layout.template = spec["layout"].get("template") or "none"
            self._templated = True
        spec = _jsonable(spec)  # the widget's state is JSON: dates as ISO text, no numpy
        new = [dict(t) for t in spec["data"]]
        for t in new:
            t.pop("uid", None)
        layout = {k: v for k, v in spec["layout"].items() if k != "template"}
        same = len(new) == len(view.data) and all(a.type == b.get("type", "scatter") for a, b in zip(view.data, new))
        if same:
            with view.batch_update():
                for trace, props in zip(view.data, new):
                    trace.update(props, overwrite=True)
                view.layout.update(layout, overwrite=True)
        else:
            with view.batch_update():
                view.data = ()
                view.layout.update(layout, overwrite=True)
            view.add_traces(new)
            self.redraws += 1
        # plotly syncs these only when the widget is displayed on its own; inside a box, keep them current.
        view._widget_data = deepcopy(view._data)
        view._widget_layout = deepcopy(view._layout_obj._props)

_PLAIN = frozenset({str, int, float, bool, type(None)})


def _jsonable(obj):
    """Plain JSON types for a widget message (numpy arrays and scalars, timestamps)."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if all(type(v) in _PLAIN for v in obj):  # the common case: labels or numbers, no recursion
            return [None if type(v) is float and v != v else v for v in obj]
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "M":
            days = obj.astype("datetime64[D]")
            unit = "D" if (days == obj).all() else "s"
            return np.datetime_as_string(obj, unit=unit).tolist()
        if obj.dtype.kind == "f":
            return np.where(np.isfinite(obj), obj, None).tolist()  # JSON has no NaN
        return _jsonable(obj.tolist()) if obj.dtype.kind == "O" else obj.tolist()
    if isinstance(obj, pd.Index | pd.Series):
        return _jsonable(obj.to_numpy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, pd.Timestamp | datetime.date):
        return obj.isoformat()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def frame_html(df: pd.DataFrame, *, max_rows: int = 200, **format_kwargs) -> str:
    """A static HTML table of ``df`` formatted by :mod:`salesplan.format` (:func:`salesplan.format.table_html`).

    For a table in a live page use :class:`salesplan.ui.table.TableView`, which
    is also sortable when long and downloadable.
    """
    from salesplan.format import table_html

    return table_html(df, max_rows=max_rows, **format_kwargs)


def app_from_source(cls, data_path, load, **kwargs):
    """``cls(load(data_path), **kwargs)``, or, when the data cannot be loaded, an app showing why.

    Every app's ``from_source`` goes through here, so a file that cannot be
    read gives a page with the reason as text, never a traceback.
    """
    try:
        tables = load(data_path)
    except Exception as exc:  # noqa: BLE001 - shown in the page instead
        app = cls({}, **kwargs)
        app.errors.show_error(exc)
        app.result["error"] = app.errors.message
        return app
    return cls(tables, **kwargs)
