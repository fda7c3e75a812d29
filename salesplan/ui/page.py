"""What a notebook page shows when the data lacks something a section needs.

A company's own export rarely has every optional column or table. Each section
of a notebook asks :func:`needs` first; when the data lacks a column, a table
or enough history, the page shows one plain sentence ("Add a `channel` column
to see which channels gain share.") and the rest of the page runs::

    if needs(tx, columns=["channel"], to="see which channels gain share"):
        ...

:func:`dimensions` lists the breakdowns the data offers, so that a notebook's
choices are the columns present.

The sentences are in the language of :func:`salesplan.i18n.current_lang`
(``salesplan serve --lang`` sets it), or of ``lang=``; a section's ``to``
phrase is looked up in the ``[page_to]`` table of the catalogue and shown as
given when it is not there.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping, Sequence

import pandas as pd
from IPython.display import display

from salesplan.errors import SalesplanWarning
from salesplan.i18n import label, t
from salesplan.periods import complete_years, months_of_history

__all__ = ["DIMENSIONS", "dimensions", "missing", "needs", "say", "plain_warnings"]

#: Breakdowns a page can offer, in the order it prefers them.
DIMENSIONS: tuple[str, ...] = ("region", "channel", "category", "product_id", "rep_id", "team", "segment")


def dimensions(tx: pd.DataFrame, *, candidates: Sequence[str] = DIMENSIONS) -> list[str]:
    """The breakdown columns ``tx`` has with at least one value, in :data:`DIMENSIONS` order.

    >>> dimensions(pd.DataFrame({"revenue": [1.0], "category": ["a"], "channel": [None]}))
    ['category']
    """
    return [c for c in candidates if c in tx.columns and tx[c].notna().any()]


def missing(
    data: pd.DataFrame | Mapping[str, pd.DataFrame | None] | None,
    *,
    columns: Sequence[str] = (),
    tables: Sequence[str] = (),
    months: int = 0,
    years: int = 0,
    date_col: str = "order_date",
    lang: str | None = None,
) -> str:
    """What ``data`` lacks for a section, as the start of a sentence, or ``""`` when nothing.

    ``data`` is a transactions frame, or a mapping of tables (its
    ``"transactions"`` is checked for ``columns`` and ``months``).

    >>> tx = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-01", "2024-10-01"]), "revenue": 1.0})
    >>> missing(tx, columns=["channel"])
    'Add a `channel` column'
    >>> missing(tx, months=24)
    'This needs at least 24 months of history (the data has 10)'
    >>> missing({"transactions": tx}, tables=["opportunities"])
    'Add an `opportunities` table'
    >>> missing(tx, columns=["channel"], lang="zh")
    '添加 `channel` 列'
    """
    tables_given = data if isinstance(data, Mapping) else {"transactions": data}
    absent_tables = [name for name in tables if tables_given.get(name) is None]
    if absent_tables:
        return t("page.add", lang, things=_things(absent_tables, "table", lang))
    tx = tables_given.get("transactions")
    if tx is None:
        return t("page.add", lang, things=_things(["transactions"], "table", lang)) if columns or months else ""
    absent = [c for c in columns if c not in tx.columns or not tx[c].notna().any()]
    if absent:
        return t("page.add", lang, things=_things(absent, "column", lang))
    if months:
        have = months_of_history(tx, column=date_col)
        if have < months:
            return t("page.need_months", lang, months=months, have=have)
    if years:
        have = len(complete_years(tx, column=date_col))
        if have < years:
            return t("page.need_years", lang, years=years, have=have)
    return ""


def _things(names: Sequence[str], noun: str, lang: str | None = None) -> str:
    """```channel` column``, ``an `opportunities` table``, ```a` and `b` columns``."""
    quoted = [f"`{n}`" for n in names]
    if len(names) == 1:
        article = "an" if names[0][0] in "aeiou" else "a"
        return t(f"page.{article}_{noun}", lang, name=quoted[0])
    return t(f"page.{noun}s", lang, names=t("page.and", lang).join(quoted))


def say(text: str) -> None:
    """Show one plain sentence in the page."""
    display({"text/markdown": f"*{text}*", "text/plain": text}, raw=True)


def needs(
    data: pd.DataFrame | Mapping[str, pd.DataFrame | None] | None,
    *,
    columns: Sequence[str] = (),
    tables: Sequence[str] = (),
    months: int = 0,
    years: int = 0,
    to: str = "see this section",
    date_col: str = "order_date",
    lang: str | None = None,
) -> bool:
    """``True`` when ``data`` has what a section needs; else say what to add and return ``False``.

    ``to`` is what the section shows, in English ("see which channels gain
    share"); the ``[page_to]`` table of the catalogue translates it.
    """
    lack = missing(data, columns=columns, tables=tables, months=months, years=years, date_col=date_col, lang=lang)
    if lack:
        say(t("page.needs", lang, lack=lack, to=label(f"page_to.{to}", to, lang)))
        return False
    return True


_default_showwarning = warnings.showwarning


def _show_plainly(message, category, filename, lineno, file=None, line=None):
    if isinstance(category, type) and issubclass(category, SalesplanWarning):
        print(t("page.note", message=message), file=file or sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def plain_warnings() -> None:
    """Show salesplan's warnings in a page as one plain line ("Note: ..."), without file names.

    Called when this module is imported, since every notebook page imports it;
    other warnings keep Python's own format.
    """
    warnings.showwarning = _show_plainly


plain_warnings()
