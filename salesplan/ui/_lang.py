"""The language switch every app shows at the top of its page, and what the apps share to use it.

An app mixes in :class:`Translated`, calls :meth:`Translated._init_lang`
before building its controls and puts :attr:`Translated.lang_switch` first in
its container. It writes every text a person reads with :meth:`Translated._t`
and sets its controls' labels in one ``_relabel`` method; :meth:`set_lang`
(also what clicking the switch does) calls ``_relabel`` and then
``_rerender``, which shows the same results again in the new language.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

import ipywidgets as widgets

from salesplan.i18n import LANGUAGES, current_lang, headers, label, t

__all__ = ["Translated", "choices", "language_switch", "option_values", "relabel_options"]


def _tables_in_lang(widget, lang: str) -> None:
    """Every table view and section under ``widget`` says its own words in ``lang``."""
    if widget is None:
        return
    if hasattr(widget, "set_lang") and not isinstance(widget, Translated):
        widget.set_lang(lang)
    for child in getattr(widget, "children", ()):
        _tables_in_lang(child, lang)


def language_switch(lang: str) -> widgets.ToggleButtons:
    """``English | 中文`` buttons (one per catalogue of :data:`salesplan.i18n.LANGUAGES`) set to ``lang``."""
    return widgets.ToggleButtons(
        options=[(name, code) for code, name in LANGUAGES.items()], value=lang,
        style={"button_width": "72px"}, layout=widgets.Layout(margin="0 0 6px 0"),
    )


def choices(values: Iterable, labels: Mapping) -> list:
    """Dropdown options: the values themselves when no label differs, else ``(label, value)`` pairs.

    Plain values when nothing is translated keep ``dropdown.options`` a list of
    the values (what code and tests read); a translated label only changes
    what is shown, never the value.

    >>> choices(["All", "North"], {"All": "All"}), choices(["All", "North"], {"All": "全部"})
    (['All', 'North'], [('全部', 'All'), ('North', 'North')])
    """
    values = list(values)
    shown = [str(labels.get(v, v)) for v in values]
    if all(s == str(v) for s, v in zip(shown, values)):
        return values
    return list(zip(shown, values))


def option_values(dropdown: widgets.Dropdown) -> list:
    """The values of a dropdown's options, whether given plain or as ``(label, value)`` pairs."""
    return [o[1] if isinstance(o, tuple) and len(o) == 2 else o for o in dropdown.options]


def relabel_options(dropdown: widgets.Dropdown, labels: Mapping) -> None:
    """Show ``dropdown``'s options with ``labels`` (see :func:`choices`), keeping its value.

    Setting options resets the value first: call it while the app ignores changes.
    """
    values = option_values(dropdown)
    new = choices(values, labels)
    if list(dropdown.options) == [tuple(o) if isinstance(o, list) else o for o in new]:
        return
    value = dropdown.value
    dropdown.options = new
    dropdown.value = value


class Translated:
    """What every app shares to be shown in any language of the catalogue.

    Attributes
    ----------
    lang : str
        The language shown (``"en"``, ``"zh"``).
    lang_switch : ipywidgets.ToggleButtons
        The switch at the top of the page; its value is :attr:`lang`.
    """

    lang: str
    lang_switch: widgets.ToggleButtons

    def _init_lang(self, lang: str | None) -> None:
        self.lang = self._previous_lang = current_lang(lang)
        self.lang_switch = language_switch(self.lang)
        self.lang_switch.observe(lambda change: self.set_lang(change["new"]), names="value")

    def _t(self, key: str, **values: object) -> str:
        return t(key, self.lang, **values)

    def _label(self, key: str, default: str) -> str:
        return label(key, default, self.lang)

    def _headers(self, columns: Iterable, **keys: str) -> dict[str, str]:
        return headers(columns, self.lang, **keys)

    def set_lang(self, lang: str) -> None:
        """Show the page in ``lang``: every label, heading, table and chart; values and results stay."""
        code = current_lang(lang)
        if code == self.lang and self.lang_switch.value == code:
            return
        self._previous_lang, self.lang = self.lang, code
        if self.lang_switch.value != code:
            self.lang_switch.value = code  # its observer comes back here and returns above
        self._relabel()
        self._rerender()
        _tables_in_lang(getattr(self, "container", None), code)

    def _relabel_scope(self, *, no_data: tuple[str, str], everything: tuple[str, str], titles: dict) -> None:
        """The period, level and unit dropdowns' options and the section headings, in the page's language.

        ``no_data`` and ``everything`` are (option value, catalogue key) of the period's placeholder and
        the unit's "all"; ``titles`` maps each section to its heading's key. The options are relabelled
        with ``self._busy`` set, so the observers do not recompute.
        """
        busy, self._busy = self._busy, True
        try:
            relabel_options(self.period, {no_data[0]: self._t(no_data[1])})
            relabel_options(self.level, {lv: self._label(f"levels.{lv}", lv) for lv in option_values(self.level)})
            relabel_options(self.unit, {everything[0]: self._t(everything[1])})
        finally:
            self._busy = busy
        for section, widget in self.headings.items():
            widget.value = f"<h3>{html.escape(self._t(titles[section]))}</h3>"
        if getattr(self, "pages", None) is not None:  # the sections' buttons (ui._common.Pages)
            self.pages.relabel({section: self._t(key) for section, key in titles.items()})

    def _resay(self, key: str, **values: object) -> None:
        """Say the message ``key`` again in the new language, when the page shows it (in the previous one).

        Any other message (a file that could not be read, shown by ``from_source``) stays as it is.
        """
        if self.errors.message and self.errors.message == t(key, self._previous_lang, **values):
            self.errors.show_error(self._t(key, **values))
            if isinstance(getattr(self, "result", None), dict):
                self.result["error"] = self.errors.message

    def _relabel(self) -> None:  # pragma: no cover - every app defines it
        raise NotImplementedError

    def _rerender(self) -> None:  # pragma: no cover - every app defines it
        raise NotImplementedError
