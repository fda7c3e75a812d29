"""The home page of the served workbench: the data it was built from and one card per app.

Everything here runs in the server process, without a kernel: the app list is
read from the notebooks folder, the data summary from
:func:`salesplan.io.load_data` once at start-up, and the page is plain HTML.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from salesplan import format as fmt
from salesplan.i18n import LANGUAGES, catalogue, t

__all__ = ["find_apps", "data_summary", "render_landing", "render_message"]


def _notebook_text(path: Path) -> tuple[str, str]:
    """(first Markdown heading, first sentence after it) of a notebook; empty strings when absent."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "", ""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = "".join(cell.get("source", []))
        heading = re.search(r"^#+\s+(.+?)\s*$", source, flags=re.MULTILINE)
        if not heading:
            continue
        rest = " ".join(source[heading.end():].split())
        sentence = re.match(r"(.+?[.?!])(\s|$)", rest)
        return heading.group(1), (sentence.group(1) if sentence else rest[:160])
    return "", ""


def find_apps(folder: str | Path, *, lang: str | None = None) -> pd.DataFrame:
    """The apps served from ``folder``: every ``*.ipynb`` directly in it, by file name.

    The title and the question an app answers come from the catalogue
    (``apps.<notebook stem>.title`` / ``.answers``) in ``lang``; an app the
    catalogue does not know yet shows its first Markdown heading and the
    sentence after it.

    Returns
    -------
    DataFrame
        ``notebook`` (file name), ``title``, ``answers`` and ``href`` (the page
        that serves it, relative to the server root: ``voila/render/<notebook>``),
        sorted by file name.
    """
    rows = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        heading, sentence = _notebook_text(path)
        key = f"apps.{path.stem}"
        known = f"{key}.title" in catalogue("en")
        title = t(f"{key}.title", lang) if known else (heading or path.stem)
        answers = t(f"{key}.answers", lang) if known else sentence
        rows.append({"notebook": path.name, "title": title, "answers": answers,
                     "href": "voila/render/" + quote(path.name)})
    return pd.DataFrame(rows, columns=["notebook", "title", "answers", "href"])


def data_summary(source: str | Path | None) -> dict:
    """What the apps will show, read the way every notebook reads it (:func:`salesplan.io.load_data`).

    Returns
    -------
    dict
        ``demo`` (bool), ``name`` (the folder or file name; empty for the
        demo company), ``source`` (what was read), ``rows`` (transaction
        lines), ``date_from`` / ``date_to`` (order dates, ``Timestamp``) and
        ``tables``: a frame with ``table``, ``rows`` and ``file`` of every
        table found.
    """
    from salesplan.io import load_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the apps report data warnings; the home page only summarises
        data = load_data(source)
    found = data.found()
    found = found[found["found"]]
    tx = data["transactions"]
    return {
        "demo": source is None,
        "name": "" if source is None else (Path(source).stem or str(source)),
        "source": data.source,
        "rows": len(tx),
        "date_from": tx["order_date"].min(),
        "date_to": tx["order_date"].max(),
        "tables": found[["table", "rows", "source"]].rename(columns={"source": "file"}).reset_index(drop=True),
    }


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK SC","PingFang SC",sans-serif;
margin:0;background:#f6f8fa;color:#1f2328}
header{background:#fff;border-bottom:1px solid #d0d7de;padding:18px 32px;display:flex;align-items:center;
justify-content:space-between;gap:16px;flex-wrap:wrap}
h1{font-size:24px;margin:0}
main{max-width:1100px;margin:0 auto;padding:20px 32px}
.subtitle{color:#57606a;margin:4px 0 0 0}
.lang a{margin-left:10px;color:#0969da;text-decoration:none}
.lang a[aria-current]{font-weight:600;color:#1f2328}
section.data{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 18px;margin-bottom:20px}
section.data dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0}
section.data dt{color:#57606a}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:14px 18px;display:flex;
flex-direction:column;justify-content:space-between}
.card h3{margin:0 0 6px 0;font-size:17px}
.card p{margin:0 0 12px 0;color:#424a53}
.card a.open{align-self:flex-start;background:#1f6feb;color:#fff;border-radius:6px;padding:6px 14px;
text-decoration:none}
.message{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px}
footer{color:#57606a;font-size:13px;margin-top:24px}
"""


def _page(title: str, lang: str, body: str) -> str:
    code = "zh-CN" if lang == "zh" else lang
    return (f'<!DOCTYPE html>\n<html lang="{code}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>{body}</body></html>")


def render_landing(apps: pd.DataFrame, summary: dict | None, *, lang: str, base_url: str = "/",
                   problem: str = "") -> str:
    """The home page: title and language switch, the data summary, one card per app.

    ``summary`` is :func:`data_summary`'s answer, or ``None`` while it is being
    read (the page then says so); ``problem`` is shown instead when the data
    could not be read.
    """
    e = html.escape
    switch = "".join(
        f'<a href="{e(base_url)}?lang={code}" data-lang="{code}"'
        + (' aria-current="page"' if code == lang else "") + f">{e(name)}</a>"
        for code, name in LANGUAGES.items()
    )
    parts = [f'<header><div><h1>{e(t("landing.title", lang))}</h1>'
             f'<p class="subtitle">{e(t("landing.subtitle", lang))}</p></div>'
             f'<nav class="lang" aria-label="{e(t("lang.switch", lang))}">{e(t("lang.switch", lang))}:'
             f"{switch}</nav></header><main>"]
    parts.append(f'<section class="data"><h2>{e(t("landing.data_heading", lang))}</h2>')
    if problem:
        parts.append(f'<p class="message" role="alert">{e(t("landing.data_error", lang, message=problem))}</p>')
    elif summary is None:
        parts.append(f'<p class="message">{e(t("landing.loading", lang))}</p>')
    else:
        company = t("landing.demo_company", lang) if summary["demo"] else summary["name"]
        tables = "<br>".join(
            e(t("landing.table_row", lang, table=row.table, rows=fmt.count(row.rows), file=row.file))
            for row in summary["tables"].itertuples()
        )
        period = t("landing.date_range", lang, start=f"{summary['date_from']:%Y-%m-%d}",
                   end=f"{summary['date_to']:%Y-%m-%d}")
        parts.append(
            "<dl>"
            f'<dt>{e(t("landing.company", lang))}</dt><dd data-field="company">{e(company)}</dd>'
            f'<dt>{e(t("landing.source", lang))}</dt><dd data-field="source">{e(summary["source"])}</dd>'
            f'<dt>{e(t("landing.period", lang))}</dt><dd data-field="period">{e(period)}</dd>'
            f'<dt>{e(t("landing.rows_label", lang))}</dt>'
            f'<dd data-field="rows">{e(t("landing.rows", lang, rows=fmt.count(summary["rows"])))}</dd>'
            f'<dt>{e(t("landing.tables", lang))}</dt><dd data-field="tables">{tables}</dd>'
            "</dl>"
        )
    parts.append("</section>")
    parts.append(f'<h2>{e(t("landing.apps_heading", lang))}</h2>')
    if apps.empty:
        parts.append(f'<p class="message">{e(t("landing.no_apps", lang))}</p>')
    parts.append('<div class="cards">')
    for app in apps.itertuples():
        parts.append(
            f'<article class="card" data-app="{e(app.notebook)}"><div><h3>{e(app.title)}</h3>'
            f"<p>{e(app.answers)}</p></div>"
            f'<a class="open" href="{e(base_url + app.href)}">{e(t("landing.open", lang))}</a></article>'
        )
    parts.append(f'</div><footer>{e(t("landing.footer", lang))}</footer></main>')
    return _page(t("landing.title", lang), lang, "".join(parts))


def render_message(status: int, key: str, *, lang: str, base_url: str = "/") -> str:
    """A plain page for an error status: the catalogue's message and a link home; never a traceback."""
    e = html.escape
    body = (f'<main><h1>{status}</h1><p class="message">{e(t(key, lang))}</p>'
            f'<p><a href="{e(base_url)}">{e(t("serve.back", lang))}</a></p></main>')
    return _page(f"{status}", lang, body)
