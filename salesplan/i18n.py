"""Every text a person reads, in English and Chinese, from one catalogue per language.

The catalogues are TOML files in ``salesplan/locale/`` (``en.toml``,
``zh.toml``); a table groups the keys of one page or command, so that
``[landing] title = "..."`` is the key ``"landing.title"``. Texts may hold
``str.format`` fields (``"{rows} rows"``), filled from the keyword arguments
of :func:`t`::

    from salesplan.i18n import t
    t("landing.title")                    # in the language of $SALESPLAN_LANG (default English)
    t("landing.rows", lang="zh", rows="42,095")

Names that come from the data or from an analysis module (a level, a KPI,
a column) are shown through :func:`label` (the catalogue's text when it has
one, else the name as it is); :func:`headers` gives the header of each column
of a table from the ``[columns]`` table.

Every key exists in every language (``tests/test_i18n.py`` fails otherwise);
at run time a key missing from a language falls back to English, then to the
key itself, so a page never breaks on a missing text.
"""

from __future__ import annotations

import os
import string
import tomllib
from functools import lru_cache
from pathlib import Path

from salesplan.errors import SalesplanError

__all__ = [
    "LANGUAGES", "DEFAULT_LANG", "ENV_VAR", "catalogue", "current_lang", "fields", "headers", "label",
    "normalize_lang", "t",
]

#: Language code -> its name in that language (what a language switch shows).
LANGUAGES: dict[str, str] = {"en": "English", "zh": "中文"}
DEFAULT_LANG = "en"
#: The environment variable that sets the language (``salesplan serve --lang`` sets it for the apps).
ENV_VAR = "SALESPLAN_LANG"

_LOCALE_DIR = Path(__file__).with_name("locale")


def normalize_lang(lang: str | None) -> str | None:
    """The catalogue code of a language tag, or ``None`` when there is no such catalogue.

    >>> normalize_lang("zh_CN.UTF-8"), normalize_lang("en-GB"), normalize_lang("ZH"), normalize_lang("fr")
    ('zh', 'en', 'zh', None)
    """
    if not lang:
        return None
    code = lang.strip().replace("-", "_").split(".")[0].split("_")[0].lower()
    return code if code in LANGUAGES else None


def current_lang(lang: str | None = None) -> str:
    """The language to use: ``lang`` if given, else ``$SALESPLAN_LANG``, else English.

    Raises
    ------
    SalesplanError
        When ``lang`` is given and has no catalogue.
    """
    if lang is not None:
        code = normalize_lang(lang)
        if code is None:
            raise SalesplanError(f"No texts in language {lang!r}; choose one of {', '.join(LANGUAGES)}.")
        return code
    return normalize_lang(os.environ.get(ENV_VAR)) or DEFAULT_LANG


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = str(value)
    return out


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """Every text of one language by its dotted key (``"landing.title"``).

    Raises
    ------
    SalesplanError
        When the language has no catalogue file.
    """
    code = current_lang(lang)
    path = _LOCALE_DIR / f"{code}.toml"
    with open(path, "rb") as f:
        return _flatten(tomllib.load(f))


def fields(text: str) -> set[str]:
    """The ``str.format`` field names of a text.

    >>> sorted(fields("{rows} rows from {file}"))
    ['file', 'rows']
    """
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def t(key: str, lang: str | None = None, /, **values: object) -> str:
    """The text of ``key`` in ``lang`` (default: ``$SALESPLAN_LANG``, else English), filled with ``values``.

    >>> t("lang.name", "zh")
    '中文'
    >>> t("landing.rows", "en", rows="1,000")
    '1,000 rows'
    """
    code = current_lang(lang)
    text = catalogue(code).get(key)
    if text is None:
        text = catalogue(DEFAULT_LANG).get(key, key)
    return text.format(**values) if values else text


def label(key: str, default: str, lang: str | None = None, /) -> str:
    """The text of ``key`` in ``lang``, or ``default`` when no catalogue has it.

    For names that come from the data or from an analysis module (a KPI, a
    table, a level): the known ones are translated, an unknown one is shown
    as it is.

    >>> label("levels.region", "region", "zh"), label("levels.no_such_level", "district", "zh")
    ('区域', 'district')
    """
    code = current_lang(lang)
    text = catalogue(code).get(key)
    if text is None:
        text = catalogue(DEFAULT_LANG).get(key, default)
    return text


def headers(columns, lang: str | None = None, /, **keys: str) -> dict[str, str]:
    """The header a person reads for each column, from the ``[columns]`` table of the catalogue.

    ``keys`` maps a column to another key of ``[columns]`` where the same
    name means something else in one table (``units="reps"``). A column the
    catalogue lacks keeps its name, with spaces for underscores.

    >>> headers(["region", "win_rate"], "zh")
    {'region': '区域', 'win_rate': '赢单率'}
    >>> headers(["units"], "en", units="reps")
    {'units': 'reps'}
    """
    return {c: label(f"columns.{keys.get(c, c)}", str(c).replace("_", " "), lang) for c in columns}
