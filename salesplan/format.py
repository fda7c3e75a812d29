"""One formatter for every number a person reads: money, percentages, counts.

Pages, apps, reports and exports all format through this module, so that a
revenue figure reads ``1,234,567`` and a share ``26.2%`` everywhere, with no
index column and no scientific notation. The kind of a column is inferred from
its name (``revenue``, ``quota``, ``clv`` are money; ``share``, ``rate``,
``probability``, ``growth`` are percentages) and can be given explicitly.

>>> money(1234567.891), percent(0.26233), percent(0.052, signed=True), count(12)
('1,234,568', '26.2%', '+5.2%', '12')
>>> money(float("nan"))
'n/a'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import pandas as pd

__all__ = [
    "MISSING",
    "money",
    "percent",
    "count",
    "number",
    "column_kind",
    "format_frame",
    "table",
    "table_html",
    "column_kinds",
    "shown_rows",
    "EXCEL_FORMATS",
    "table_csv",
    "table_xlsx",
]

#: What a missing value reads as.
MISSING = "n/a"

# Word parts of snake_case column names that say what a column holds. Percent
# words win over money words ("revenue_share" is a share of revenue).
_PERCENT_WORDS = {
    "share", "rate", "probability", "prob", "growth", "pct", "percent", "attainment",
    "coverage", "margin", "cagr", "ratio", "yoy", "mom", "retention", "conversion", "brier",
}
_MONEY_WORDS = {
    "revenue", "sales", "value", "amount", "quota", "target", "clv", "monetary", "payout",
    "potential", "size", "gap", "effect", "change", "price", "spend", "commission", "forecast",
    "expected", "pipeline", "total", "cost", "mean", "median", "lo", "hi", "y", "actual", "plan",
}
_COUNT_WORDS = {"customers", "orders", "lines", "count", "deals", "rows", "n", "reps", "units", "quantity"}
_INDEX_WORDS = {"rank", "score", "cluster", "month", "year", "sample", "frequency", "recency", "r", "f", "m"}


def _missing(x) -> bool:
    try:
        return x is None or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def money(x, *, decimals: int = 0) -> str:
    """``1,234,568``: thousands separators, no decimals unless asked for."""
    return MISSING if _missing(x) else f"{float(x):,.{decimals}f}"


def percent(x, *, decimals: int = 1, signed: bool = False) -> str:
    """``26.2%`` from the ratio ``0.262``; ``signed=True`` gives ``+5.2%``."""
    if _missing(x):
        return MISSING
    return f"{float(x):+.{decimals}%}" if signed else f"{float(x):.{decimals}%}"


def count(x) -> str:
    """``12,345``: a whole number with thousands separators."""
    return MISSING if _missing(x) else f"{round(float(x)):,d}"


def number(x, *, decimals: int = 2) -> str:
    """A plain number with separators and fixed decimals (never ``6.8e+05``)."""
    return MISSING if _missing(x) else f"{float(x):,.{decimals}f}"


def column_kind(name: str, values: pd.Series | None = None) -> str:
    """What a column holds: ``money``, ``percent``, ``count``, ``number``, ``date`` or ``text``.

    >>> [column_kind(c) for c in ("revenue", "revenue_share", "customers", "order_date", "recency")]
    ['money', 'percent', 'count', 'date', 'number']
    """
    if values is not None:
        if pd.api.types.is_datetime64_any_dtype(values):
            return "date"
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            return "text"
    words = set(re.split(r"[^a-z0-9]+", str(name).lower())) - {""}
    if "date" in words or "ds" in words:
        return "date"
    if words & _PERCENT_WORDS:
        return "percent"
    if words & _INDEX_WORDS:
        return "number"
    if words & _COUNT_WORDS:
        return "count"
    if words & _MONEY_WORDS:
        return "money"
    if values is not None and pd.api.types.is_integer_dtype(values):
        return "count"
    return "number"


def _kinds(df: pd.DataFrame, money_cols, percent_cols, count_cols, kinds) -> dict[str, str]:
    out = {c: column_kind(c, df[c]) for c in df.columns}
    for cols, kind in ((money_cols, "money"), (percent_cols, "percent"), (count_cols, "count")):
        for c in cols or ():
            out[c] = kind
    out.update(kinds or {})
    return out


def _formatter(kind: str, values: pd.Series):
    if kind == "money":
        return money
    if kind == "percent":
        return percent
    if kind == "count":
        return count
    if kind == "date":
        return lambda x: MISSING if _missing(x) else pd.Timestamp(x).strftime("%Y-%m-%d")
    if kind == "number":
        finite = pd.to_numeric(values, errors="coerce").dropna()
        whole = len(finite) > 0 and bool((finite == finite.round()).all())
        return count if whole else number
    return lambda x: "" if _missing(x) else str(x)


def format_frame(
    df: pd.DataFrame,
    *,
    money: Iterable[str] = (),
    percent: Iterable[str] = (),
    count: Iterable[str] = (),
    kinds: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """A copy of ``df`` with every cell as the text a person reads.

    Column kinds are inferred with :func:`column_kind`; ``money``, ``percent``,
    ``count`` and ``kinds`` override them. ``labels`` renames the headers.
    The index is dropped (reset first when it carries names).

    >>> format_frame(pd.DataFrame({"region": ["East"], "revenue": [683091.8], "share": [0.262333]}))
      region  revenue  share
    0   East  683,092  26.2%
    """
    frame = df.reset_index() if _named_index(df) else df.reset_index(drop=True)
    kind_of = _kinds(frame, money, percent, count, kinds)
    out = pd.DataFrame({c: frame[c].map(_formatter(kind_of[c], frame[c])) for c in frame.columns},
                       index=frame.index, columns=frame.columns)
    return out.rename(columns=dict(labels or {}))


def _named_index(df: pd.DataFrame) -> bool:
    return any(n is not None for n in df.index.names)


def table(df: pd.DataFrame, **kwargs) -> pd.io.formats.style.Styler:
    """``df`` formatted for a notebook or page: no index, numbers aligned right.

    Takes the keyword arguments of :func:`format_frame`.
    """
    shown = format_frame(df, **kwargs)
    numeric = [c for c, kind in _kinds(df.reset_index() if _named_index(df) else df, kwargs.get("money"),
                                         kwargs.get("percent"), kwargs.get("count"), kwargs.get("kinds")).items()
               if kind in ("money", "percent", "count", "number")]
    labels = dict(kwargs.get("labels") or {})
    right = [labels.get(c, c) for c in numeric if labels.get(c, c) in shown.columns]
    styler = shown.style.hide(axis="index")
    if right:
        styler = styler.set_properties(subset=right, **{"text-align": "right"})
    return styler


def table_html(df: pd.DataFrame, *, max_rows: int = 200, **kwargs) -> str:
    """The HTML of :func:`table` for an ``ipywidgets.HTML``, at most ``max_rows`` rows."""
    html = table(df.head(max_rows), **kwargs).set_table_attributes('class="salesplan-table"').to_html()
    style = (
        "<style>.salesplan-table{border-collapse:collapse;font-size:12px}"
        ".salesplan-table td,.salesplan-table th{padding:2px 8px;border-bottom:1px solid #ddd}</style>"
    )
    more = f"<p>({len(df) - max_rows:,} more rows)</p>" if len(df) > max_rows else ""
    return style + html + more


#: Excel number formats for the column kinds, so a downloaded sheet reads like the page.
EXCEL_FORMATS = {
    "money": "#,##0",
    "percent": "0.0%",
    "count": "#,##0",
    "number": "#,##0.00",
    "date": "yyyy-mm-dd",
    "text": "General",
}


def column_kinds(
    df: pd.DataFrame,
    *,
    money: Iterable[str] = (),
    percent: Iterable[str] = (),
    count: Iterable[str] = (),
    kinds: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The kind of every column as :func:`format_frame` formats it (``number`` split into whole or not).

    Keys are the columns of ``df`` with a named index reset, as in :func:`format_frame`.
    A ``number`` column of whole numbers reads as a count, so it is reported as ``count``.

    >>> column_kinds(pd.DataFrame({"region": ["East"], "revenue": [1.5], "share": [0.2], "score": [3.0]}))
    {'region': 'text', 'revenue': 'money', 'share': 'percent', 'score': 'count'}
    """
    frame = shown_rows(df)
    every = _kinds(frame, money, percent, count, kinds)
    out = {c: every[c] for c in frame.columns}  # kinds may name columns this frame lacks
    for c, kind in out.items():
        if kind == "number":
            finite = pd.to_numeric(frame[c], errors="coerce").dropna()
            if len(finite) and bool((finite == finite.round()).all()):
                out[c] = "count"  # as _formatter reads it
    return out


def shown_rows(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the rows and columns a page shows: a named index becomes columns, any other is dropped.

    The cells of :func:`format_frame` and the keys of :func:`column_kinds` line up with its columns.
    """
    return df.reset_index() if _named_index(df) else df.reset_index(drop=True)


def _export_frame(df: pd.DataFrame, labels: Mapping[str, str] | None) -> pd.DataFrame:
    """The raw values a download holds: the shown rows, dates without time zone, headers as labelled."""
    frame = shown_rows(df).copy()
    for c in frame.columns:
        if isinstance(frame[c].dtype, pd.DatetimeTZDtype):
            frame[c] = frame[c].dt.tz_localize(None)
    return frame.rename(columns=dict(labels or {}))


def table_csv(df: pd.DataFrame, *, labels: Mapping[str, str] | None = None, **kinds) -> bytes:
    """``df`` as UTF-8 CSV bytes with raw numbers (``683091.8``, ``0.262``), for another tool to compute with.

    Headers are the page's labels, there is no index, and a byte-order mark
    lets Excel read non-ASCII headers. Takes the keyword arguments of
    :func:`format_frame`; the kinds change how numbers read, never their value.

    >>> table_csv(pd.DataFrame({"region": ["East"], "revenue": [683091.8]}))
    b'\\xef\\xbb\\xbfregion,revenue\\nEast,683091.8\\n'
    """
    del kinds
    return _export_frame(df, labels).to_csv(index=False, lineterminator="\n").encode("utf-8-sig")


def table_xlsx(
    df: pd.DataFrame,
    *,
    sheet: str = "table",
    labels: Mapping[str, str] | None = None,
    money: Iterable[str] = (),
    percent: Iterable[str] = (),
    count: Iterable[str] = (),
    kinds: Mapping[str, str] | None = None,
) -> bytes:
    """``df`` as the bytes of an Excel workbook: raw numbers with the page's number formats.

    Money reads ``#,##0``, shares ``0.0%``, dates ``yyyy-mm-dd``, as in
    :func:`format_frame`, but every cell keeps its value, so sums and sorting
    work in Excel. Headers are the page's labels (bold, frozen); missing
    values are empty cells; text is never read as a formula.
    """
    from io import BytesIO

    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    kind_of = column_kinds(df, money=money, percent=percent, count=count, kinds=kinds)
    frame = _export_frame(df, None)
    wb = Workbook()
    ws = wb.active
    ws.title = re.sub(r"[\\/*?:\[\]]", "_", str(sheet))[:31] or "table"
    names = [str(dict(labels or {}).get(c, c)) for c in frame.columns]
    ws.append(names)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    columns = []
    for c in frame.columns:
        kind = kind_of.get(c, "text")
        values = frame[c]
        if kind == "date":
            values = pd.to_datetime(values, errors="coerce")
        columns.append((kind, EXCEL_FORMATS.get(kind, "General"), values.tolist()))
    for r in range(len(frame)):
        row = []
        for kind, number_format, values in columns:
            v = values[r]
            if _missing(v):
                v = None
            elif kind == "date":
                v = pd.Timestamp(v).to_pydatetime()
            elif kind == "text":
                v = str(v)
            elif hasattr(v, "item"):
                v = v.item()
            row.append(v)
        ws.append(row)
    for j, (kind, number_format, _) in enumerate(columns, start=1):
        letter = get_column_letter(j)
        width = max([len(names[j - 1])] + [len(str(x)) for x in frame.iloc[:200, j - 1].tolist()]) + 2
        ws.column_dimensions[letter].width = min(max(width, 8), 60)
        for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
            if kind == "text" and isinstance(cell.value, str):
                cell.data_type = "s"  # "=1+1" in a name stays text, never a formula
            elif cell.value is not None:
                cell.number_format = number_format
    out = BytesIO()
    wb.save(out)
    return out.getvalue()
