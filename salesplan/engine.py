"""Transactions beyond memory: loading and aggregating order lines in DuckDB.

:func:`salesplan.io.load_transactions` reads a whole file into pandas, which is
right up to a few million lines. Past that, :func:`scan_transactions` reads the
same files (CSV, Parquet, one file, a folder or a glob, or a table of a DuckDB
database) with DuckDB and runs the loader's contract as SQL:

* the same header recognition (:mod:`salesplan.io`'s mapping code is reused
  on the headers, so aliases, ``columns=`` and warnings are the same),
* the same parsing (numbers with thousands separators, currency symbols,
  parentheses negatives and percent signs; ISO, ``YYYYMMDD`` and slashed dates),
* the same validation: a :class:`~salesplan.errors.SalesplanDataError` naming
  the file and the line (``line 30000001``) of the first bad values,
* ``revenue = quantity * unit_price`` when revenue is absent or empty,
  ``is_return`` for negative revenue or quantity,
* the missing-value rule: a line without a date or a revenue is dropped (at
  most ``max_drop_fraction`` of the lines, with a warning); a line without a
  customer is kept with ``customer_id`` missing,
* the same :class:`~salesplan.io.LoadReport`.

The aggregations the analyses need run inside DuckDB, so pandas only sees
their results; each gives the same frame as its pandas counterpart:

==========================================  ==================================================
:func:`panel`                               :func:`salesplan.forecast.panel_from_transactions`
:func:`sales_over_time`                     :func:`salesplan.market.sales_over_time`
:func:`rfm_table`                           :func:`salesplan.segments.rfm.rfm_table`
:func:`summary_from_transactions`           :func:`salesplan.segments.clv.summary_from_transactions`
:func:`cohort_matrix`                       :func:`salesplan.market.cohort_matrix`
:func:`funnel`                              :func:`salesplan.pipeline.funnel`
==========================================  ==================================================

Every aggregation is one scan of the source: the validation counters (bad
values, missing values, returns) ride along in the same query, and the load
report is filled from them. :func:`load_transactions` returns the whole
table as :func:`salesplan.io.load_transactions` does, for smaller sources.

Examples
--------
>>> from salesplan.datasets import DEMO_DIR
>>> tx = scan_transactions(DEMO_DIR / "transactions.csv")
>>> p = panel(tx, by="region")
>>> list(p.columns)
['unique_id', 'ds', 'y', 'region']
>>> tx.report.rows_read
42095
"""

from __future__ import annotations

import glob as _glob
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesplan import io as _io
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.schema import TRANSACTIONS

__all__ = [
    "TransactionScan",
    "scan_transactions",
    "load_transactions",
    "to_parquet",
    "panel",
    "sales_over_time",
    "rfm_table",
    "summary_from_transactions",
    "cohort_matrix",
    "funnel",
    "ENGINES",
    "AUTO_MIN_BYTES",
    "dispatch",
]

#: Values of ``engine=`` in :func:`salesplan.io.load_transactions` (see :func:`dispatch`).
ENGINES = ("pandas", "duckdb", "auto")

_CSV_EXT = (".csv", ".tsv", ".txt", ".psv", ".csv.gz", ".tsv.gz", ".txt.gz")
_PARQUET_EXT = (".parquet", ".pq")
_DUCKDB_EXT = (".duckdb", ".ddb")
_GLOB_CHARS = re.compile(r"[*?\[]")
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
_DATE_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S",
               "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")
_KINDS = {c.name: c.kind for c in TRANSACTIONS.columns}


def _sql_str(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _sql_list(values) -> str:
    return "[" + ", ".join(_sql_str(v) for v in values) + "]"


# --------------------------------------------------------------------------- SQL parsers

_MISSING_TEXT_SQL = "(" + ", ".join(_sql_str(t) for t in sorted(_io._MISSING_TEXT)) + ")"
_MISSING_VALUE_SQL = "(" + ", ".join(_sql_str(t) for t in sorted(_io._MISSING_VALUE)) + ")"
_LONGEST_MISSING = max(map(len, _io._MISSING_TEXT))
_MISSING_INITIALS_SQL = "(" + ", ".join(_sql_str(c) for c in sorted(
    {t[0] for t in _io._MISSING_TEXT if t} | {t[0].upper() for t in _io._MISSING_TEXT if t})) + ")"
_CURRENCY_RE = r"(?i)(RMB|CNY|USD|EUR|GBP|HKD|JPY|CHF|US\$|HK\$|NT\$|R\$|A\$|C\$|[¥￥$€£₹₩]|元|円)"

# The cleaning rules of salesplan.io._clean_number, as SQL macros (RE2 regular expressions).
_MACROS = [
    # currency, spaces and apostrophes removed; parentheses and a trailing minus noted
    """CREATE OR REPLACE TEMP MACRO sp_paren(t) AS regexp_matches(t, '^\\(.+\\)$')""",
    f"""CREATE OR REPLACE TEMP MACRO sp_bare(t) AS regexp_replace(regexp_replace(
        regexp_replace(trim(t), '^\\((.+)\\)$', '\\1'), '{_CURRENCY_RE}', '', 'g'), '[\\s''’_]', '', 'g')""",
    """CREATE OR REPLACE TEMP MACRO sp_tminus(s) AS regexp_matches(s, '^[0-9.,]*[0-9]-$')""",
    """CREATE OR REPLACE TEMP MACRO sp_nominus(s) AS regexp_replace(s, '^([0-9.,]*[0-9])-$', '\\1')""",
    """CREATE OR REPLACE TEMP MACRO sp_sep(s) AS CASE
        WHEN contains(s, ',') AND contains(s, '.') THEN CASE
            WHEN regexp_matches(s, '^[-+]?\\d{1,3}(\\.\\d{3})*,\\d+$') THEN replace(replace(s, '.', ''), ',', '.')
            WHEN regexp_matches(s, '^[-+]?\\d{1,3}(,\\d{3})*\\.\\d*$') THEN replace(s, ',', '')
            ELSE NULL END
        WHEN contains(s, ',') THEN CASE
            WHEN regexp_matches(s, '^[-+]?\\d{1,3}(,\\d{3})+$') THEN replace(s, ',', '')
            WHEN regexp_matches(s, '^[-+]?\\d*,\\d+$') THEN replace(s, ',', '.')
            ELSE NULL END
        WHEN regexp_matches(s, '^[-+]?\\d{1,3}(\\.\\d{3}){2,}$') THEN replace(s, '.', '')
        ELSE s END""",
    """CREATE OR REPLACE TEMP MACRO sp_plain(s) AS CASE
        WHEN regexp_matches(s, '^[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?$') THEN TRY_CAST(s AS DOUBLE) END""",
    # s is the bare text (no currency, spaces, parentheses), n the same without a trailing minus
    """CREATE OR REPLACE TEMP MACRO sp_unit(n) AS
        sp_plain(sp_sep(regexp_replace(n, '%$', ''))) / CASE WHEN n LIKE '%\\%' ESCAPE '\\' THEN 100.0 ELSE 1.0 END""",
    """CREATE OR REPLACE TEMP MACRO sp_clean(t) AS CASE
        WHEN sp_paren(trim(t)) OR sp_tminus(sp_bare(t)) THEN -abs(sp_unit(sp_nominus(sp_bare(t))))
        ELSE sp_unit(sp_bare(t)) END""",
    f"""CREATE OR REPLACE TEMP MACRO sp_num(t) AS CASE
        WHEN t IS NULL OR lower(trim(t)) IN {_MISSING_VALUE_SQL} THEN NULL
        WHEN regexp_matches(trim(t), '^[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?$') THEN TRY_CAST(trim(t) AS DOUBLE)
        ELSE sp_clean(t) END""",
    # The first branch is the common case, a code or a name with no space to trim that is longer
    # than any missing-value token or starts with a letter none of them starts with: it is kept
    # as it is, without the trim and lower-casing of every value.
    f"""CREATE OR REPLACE TEMP MACRO sp_text(t) AS CASE
        WHEN NOT starts_with(t, ' ') AND NOT ends_with(t, ' ') AND (length(t) > {_LONGEST_MISSING}
            OR (length(t) > 0 AND left(t, 1) NOT IN {_MISSING_INITIALS_SQL})) THEN t
        WHEN t IS NULL OR lower(trim(t)) IN {_MISSING_TEXT_SQL} THEN NULL ELSE trim(t) END""",
    f"""CREATE OR REPLACE TEMP MACRO sp_miss(t) AS t IS NULL OR lower(trim(t)) IN {_MISSING_VALUE_SQL}""",
    # Dates: ISO (with or without a time), YYYYMMDD, YYYY/MM/DD, then the slashed forms (with
    # or without a time after a four-digit year).
    """CREATE OR REPLACE TEMP MACRO sp_date(t, dayfirst) AS CASE
        WHEN sp_miss(t) THEN NULL
        WHEN regexp_matches(trim(t), '^\\d{8}$') THEN try_strptime(trim(t), '%Y%m%d')
        WHEN regexp_matches(trim(t), '^\\d{4}[-/.]\\d{1,2}[-/.]\\d{1,2}') THEN
            TRY_CAST(regexp_replace(trim(t), '^(\\d{4})[/.](\\d{1,2})[/.](\\d{1,2})', '\\1-\\2-\\3') AS TIMESTAMP)
        WHEN regexp_matches(trim(t), '^\\d{1,2}[-/.]\\d{1,2}[-/.]\\d{4}[T ]') THEN
            TRY_CAST(regexp_replace(trim(t), '^(\\d{1,2})[-/.](\\d{1,2})[-/.](\\d{4})',
                                    CASE WHEN dayfirst THEN '\\3-\\2-\\1' ELSE '\\3-\\1-\\2' END) AS TIMESTAMP)
        WHEN regexp_matches(trim(t), '^\\d{1,2}[-/.]\\d{1,2}[-/.]\\d{4}$') THEN
            try_strptime(regexp_replace(trim(t), '[-.]', '/', 'g'), CASE WHEN dayfirst THEN '%d/%m/%Y' ELSE '%m/%d/%Y' END)
        WHEN regexp_matches(trim(t), '^\\d{1,2}[-/.]\\d{1,2}[-/.]\\d{2}$') THEN
            try_strptime(regexp_replace(trim(t), '[-.]', '/', 'g'), CASE WHEN dayfirst THEN '%d/%m/%y' ELSE '%m/%d/%y' END)
        ELSE NULL END""",
]


# --------------------------------------------------------------------------- the source


@dataclass
class _Source:
    kind: str  # "csv", "parquet", "table"
    name: str  # what messages call it
    files: list[str]
    relation: str  # FROM-clause text without options
    delimiter: str | None = None
    format_name: str = ""


def _resolve_source(source: Any, *, query: str | None, con) -> _Source:
    if _io._is_duckdb(source):
        if query is None:
            tables = [r[0] for r in source.execute("SHOW TABLES").fetchall()]
            query = _io._choose_table(tables, None, TRANSACTIONS, "DuckDB connection")
        if re.match(r"(?i)^\s*(select|with|from|values)\b", query):
            rel, desc = f"({query})", "query"
        else:
            rel, desc = _ident(query.strip().strip('"')), f"table {query.strip()!r}"
        return _Source("table", f"DuckDB ({desc})", [], rel, format_name="duckdb")
    if not isinstance(source, (str, Path)):
        raise SalesplanError(
            f"scan_transactions reads a path, a folder, a glob or a DuckDB connection, got "
            f"{type(source).__name__}. Use salesplan.io.load_transactions for frames and uploads."
        )
    text = str(source)
    if _GLOB_CHARS.search(text):
        files = sorted(_glob.glob(text, recursive=True))
        if not files:
            raise SalesplanDataError(f"No file matches {text!r} (looked from {Path.cwd()}). Check the pattern.")
        name = text
    else:
        path = Path(text)
        if not path.exists():
            raise SalesplanDataError(
                f"File not found: {text!r} (looked in {Path.cwd()}). Check the path and the file name; "
                "pass an absolute path if the notebook runs from another folder."
            )
        if path.is_dir():
            files = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(_PARQUET_EXT))
            if not files:
                files = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(_CSV_EXT))
            if not files:
                seen = ", ".join(sorted(p.name for p in path.iterdir())[:20]) or "nothing"
                raise SalesplanDataError(
                    f"Folder {text!r} holds no Parquet or CSV file (seen: {seen}). Pass the path of one "
                    "file, or load a folder of tables (orders, reps, targets...) with salesplan.io.load_data.")
            name = path.name or text
        else:
            files = [str(path)]
            name = path.name
            if path.name.lower().endswith(_DUCKDB_EXT):
                con.execute(f"ATTACH IF NOT EXISTS {_sql_str(str(path))} AS sp_source_db (READ_ONLY)")
                con.execute("USE sp_source_db")
                src = _resolve_source(con, query=query, con=con)
                src.name = f"{path.name} ({src.name.split('(', 1)[1]}"
                return src
    lower = [f.lower() for f in files]
    if all(f.endswith(_PARQUET_EXT) for f in lower):
        return _Source("parquet", name, files, f"read_parquet({_sql_list(files)}", format_name="parquet")
    if all(f.endswith(_CSV_EXT) for f in lower):
        return _Source("csv", name, files, f"read_csv({_sql_list(files)}", format_name="csv")
    odd = [Path(f).name for f, lo in zip(files, lower) if not lo.endswith(_CSV_EXT + _PARQUET_EXT)]
    raise SalesplanDataError(
        f"{name}: the DuckDB engine reads CSV ({', '.join(_CSV_EXT)}) and Parquet ({', '.join(_PARQUET_EXT)}) "
        f"files, all of one kind; got {odd[:5] or [Path(f).name for f in files[:5]]}. Excel and SQLite "
        "files load with salesplan.io.load_transactions."
    )


# --------------------------------------------------------------------------- the scan


@dataclass
class _Field:
    name: str
    header: str
    source_type: str
    mode: str  # "typed" (already the right kind) or "text" (parsed in SQL)


@dataclass
class TransactionScan:
    """A transactions source opened in DuckDB: mapped, typed and checked lazily.

    Made by :func:`scan_transactions`; pass it to :func:`panel`,
    :func:`rfm_table`... Each of those runs one query over the source.

    Attributes
    ----------
    source : str
        The file, folder, glob or table, as messages name it.
    report : salesplan.io.LoadReport
        What loading found: filled by the first query (``None`` before).
    """

    source: str
    con: Any = field(repr=False)
    _src: _Source = field(repr=False)
    _fields: dict[str, _Field] = field(repr=False)
    _extras: dict[str, str] = field(repr=False)
    _mapping_report: dict[str, Any] = field(repr=False)
    _dayfirst: bool = field(repr=False, default=False)
    _date_form: str = field(repr=False, default="ISO")
    max_drop_fraction: float = _io.MAX_DROP_FRACTION
    report: _io.LoadReport | None = None
    _sums: dict = field(repr=False, default_factory=dict)
    # Typed fields that the Parquet footers show without a missing or infinite value:
    # their checks are known to pass, so the queries leave them out.
    _clean: frozenset = field(repr=False, default=frozenset())

    # ----- SQL pieces

    def _from(self, *, rejects: bool = False, row_numbers: bool = False) -> str:
        src = self._src
        if src.kind == "table":
            base = f"SELECT * FROM {src.relation}"
            if row_numbers:
                base = f"SELECT *, row_number() OVER () AS sp_row, NULL AS sp_file FROM {src.relation}"
            return base
        opts = ["filename = true"] if row_numbers else []
        if src.kind == "csv":
            types = {f.header: "VARCHAR" for f in self._fields.values() if f.mode == "text"}
            types.update({h: "VARCHAR" for h, f in self._raw_text_headers().items()})
            # Extra columns as the text of the file, which the loader's rule then types (codes keep
            # their leading zeros, numbers become float64), as it does on the pandas path.
            types.update({h: "VARCHAR" for h in self._extras})
            if types:
                opts.append("types = {" + ", ".join(f"{_sql_str(h)}: 'VARCHAR'" for h in types) + "}")
            # RFC 4180 quoting always: the sniffer only sees the first lines, which may have no quotes.
            opts += ["header = true", "quote = '\"'", "escape = '\"'"]
            if src.delimiter:
                opts.append(f"delim = {_sql_str(src.delimiter)}")
            if rejects:
                opts += ["store_rejects = true", "rejects_table = 'sp_rejects'", "rejects_scan = 'sp_reject_scans'"]
        rel = src.relation + "".join(", " + o for o in opts) + ")"
        if not row_numbers:
            return f"SELECT * FROM {rel}"
        if src.kind == "parquet":
            return f"SELECT *, file_row_number + 1 AS sp_row, filename AS sp_file FROM {rel.replace('filename = true', 'filename = true, file_row_number = true')}"
        # CSV: the scan keeps file order, so the row number within a file plus the header is the line
        return f"SELECT *, row_number() OVER (PARTITION BY filename) + 1 AS sp_row, filename AS sp_file FROM {rel}"

    def _raw_text_headers(self) -> dict[str, str]:
        # Text fields are always read as text: codes keep their leading zeros.
        return {f.header: f.name for f in self._fields.values() if _KINDS[f.name] == "string"}

    def _text(self, f: _Field) -> str:
        """A text field's cells as text, before the missing-value tokens and spaces are cleaned."""
        col = _ident(f.header)
        if f.source_type in ("FLOAT", "DOUBLE", "REAL"):
            return (f"CASE WHEN {col} = floor({col}) AND abs({col}) < 9007199254740992 "
                    f"THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) ELSE CAST({col} AS VARCHAR) END")
        return f"CAST({col} AS VARCHAR)"

    def _expr(self, f: _Field) -> tuple[str, str, str]:
        """(value expression, bad-value flag, missing flag) of a field, in SQL."""
        col = _ident(f.header)
        kind = _KINDS[f.name]
        if kind == "string":
            value = f"sp_text({self._text(f)})"
            return value, "false", f"({value} IS NULL)"
        clean = f.mode == "typed" and f.name in self._clean
        if kind in ("float", "int"):
            if clean:
                return f"CAST({col} AS DOUBLE)", "false", "false"
            if f.mode == "typed":
                value = f"CAST({col} AS DOUBLE)"
                if f.source_type in _FLOAT_TYPES:
                    # NaN is a missing value, as pandas reads it (DuckDB reads "NaN" in a CSV as a float)
                    return (f"CASE WHEN isinf({value}) OR isnan({value}) THEN NULL ELSE {value} END",
                            f"coalesce(isinf({value}), false)", f"({col} IS NULL OR isnan({col}))")
                return (f"CASE WHEN isinf({value}) THEN NULL ELSE {value} END",
                        f"coalesce(isinf({value}), false)", f"({col} IS NULL)")
            raw = f"CAST({col} AS VARCHAR)"
            value = f"sp_num({raw})"
            return (f"CASE WHEN isinf({value}) THEN NULL ELSE {value} END",
                    f"(NOT sp_miss({raw}) AND ({value} IS NULL OR isinf({value})))", f"sp_miss({raw})")
        if f.mode == "typed":
            value = f"CAST({col} AS TIMESTAMP)"
            return value, "false", "false" if clean else f"({col} IS NULL)"
        raw = f"CAST({col} AS VARCHAR)"
        value = f"sp_date({raw}, {'true' if self._dayfirst else 'false'})"
        return value, f"(NOT sp_miss({raw}) AND {value} IS NULL)", f"sp_miss({raw})"

    def _parsed(self, *, rejects: bool = True, row_numbers: bool = False, extras: bool = False,
                raw_header: str | None = None) -> str:
        """SELECT of the parsed fields plus the flags every report counter needs."""
        cols, flags = [], []
        present = set(self._fields)
        for f in self._fields.values():
            value, bad, miss = self._expr(f)
            cols.append(f"{value} AS {_ident(f.name)}")
            if _KINDS[f.name] == "string":
                # The text before cleaning: grouping by it and cleaning the groups is cheaper
                # than cleaning every line (see _period_sums).
                cols.append(f"{self._text(f)} AS {_ident('raw_' + f.name)}")
            flags.append(f"{bad} AS {_ident('bad_' + f.name)}")
            flags.append(f"{miss} AS {_ident('miss_' + f.name)}")
        derive = "revenue" not in present and {"quantity", "unit_price"} <= present
        fill = self._may_fill()
        if extras:
            cols += [f"{_ident(h)} AS {_ident('extra_' + n)}" for h, n in self._extras.items()]
        if row_numbers:
            cols += ["sp_row", "sp_file"]
        if raw_header is not None:
            cols.append(f"CAST({_ident(raw_header)} AS VARCHAR) AS sp_raw")
        # The day of each line, for the aggregates: a DATE column is used as it is, since
        # casting every line to TIMESTAMP and back to DATE costs more than the aggregate.
        date_f = self._fields.get("order_date")
        day_inner = date_f is not None and date_f.mode == "typed"
        if day_inner:
            day_col = _ident(date_f.header)
            day_sql = {"DATE": day_col, "TIMESTAMP": f"CAST({day_col} AS DATE)"}.get(
                date_f.source_type, f"CAST(CAST({day_col} AS TIMESTAMP) AS DATE)")  # time zones as order_date
            cols.append(f"{day_sql} AS sp_day")
        inner = ", ".join(cols + flags)
        if derive:
            revenue = '"quantity" * "unit_price"'
        elif fill:
            revenue = 'coalesce("revenue", "quantity" * "unit_price")'
        else:
            revenue = '"revenue"'
        qty = ' OR coalesce("quantity" < 0, false)' if "quantity" in present else ""
        blank = " AND ".join(f'"miss_{f}"' for f in self._fields) or "false"
        day = "" if day_inner or date_f is None else ', CAST("order_date" AS DATE) AS sp_day'
        middle = (f"SELECT *, {revenue} AS sp_revenue{day} FROM "
                  f"(SELECT {inner} FROM ({self._from(rejects=rejects, row_numbers=row_numbers)}))")
        outer = [
            "*",
            f"({blank}) AS sp_blank",
            ('(sp_day IS NULL OR sp_revenue IS NULL)' if self._may_drop() else "false") + " AS sp_drop",
            f"coalesce(sp_revenue < 0, false){qty} AS sp_return",
            ('("revenue" IS NULL AND sp_revenue IS NOT NULL) AS sp_filled' if fill else "false AS sp_filled"),
        ]
        return f"SELECT {', '.join(outer)} FROM ({middle})"

    def _may_fill(self) -> bool:
        """Whether some revenue may be filled from quantity * unit_price."""
        present = set(self._fields)
        return ("revenue" in present and {"quantity", "unit_price"} <= present
                and not self._known_clean("revenue"))

    def _known_clean(self, name: str) -> bool:
        f = self._fields.get(name)
        return f is not None and f.mode == "typed" and name in self._clean

    def _may_drop(self) -> bool:
        """Whether a line may lack its date or its revenue (else no line is dropped)."""
        revenue = self._known_clean("revenue") or (
            "revenue" not in self._fields and self._known_clean("quantity") and self._known_clean("unit_price"))
        return not (self._known_clean("order_date") and revenue)

    def _may_be_bad(self, name: str) -> bool:
        f = self._fields[name]
        return _KINDS[name] != "string" and not (f.mode == "typed" and (name in self._clean or _KINDS[name] == "date"))

    def kept(self, condition: str = "") -> str:
        """`` FILTER (WHERE ...)`` keeping the lines not dropped (and ``condition``), or nothing
        when no line can be dropped and there is no condition (a filter costs time on every line)."""
        parts = (["NOT sp_drop"] if self._may_drop() else []) + ([condition] if condition else [])
        return f" FILTER (WHERE {' AND '.join(parts)})" if parts else ""

    def _counters(self) -> list[str]:
        """Aggregates that add up, over any grouping, to the load report.

        Few, since each costs time on every line: lines, kept lines, returns, and one
        count of anything odd (a bad value, a derived revenue) that :meth:`_detail`
        then breaks down with one more scan. Blank lines have no date, so they are
        among the lines not kept. Checks known to pass (Parquet footers) are left out:
        no count of odd lines when no line can be odd.
        """
        odd = (["sp_filled"] if self._may_fill() else []) + [
            _ident("bad_" + f) for f in self._fields if self._may_be_bad(f)]
        out = ["count(*) AS sp_lines",
               f"count(*){self.kept()} AS sp_kept_lines",
               f"count(*){self.kept('sp_return')} AS sp_returns"]
        if odd:
            out.append(f"count(*) FILTER (WHERE {' OR '.join(odd)}) AS sp_odd")
        return out

    def _detail(self) -> dict[str, int]:
        """Per-field counts of bad and missing values (one more scan; only when something is wrong)."""
        cols = [f'count(*) FILTER (WHERE {_ident("bad_" + f)}) AS {_ident("bad_" + f)}' for f in self._fields]
        cols += ["count(*) FILTER (WHERE sp_blank) AS blank", "count(*) FILTER (WHERE sp_filled) AS filled",
                 'count(*) FILTER (WHERE NOT sp_blank AND "order_date" IS NULL) AS miss_order_date',
                 "count(*) FILTER (WHERE NOT sp_blank AND sp_revenue IS NULL) AS miss_revenue"]
        row = self.con.execute(f"SELECT {', '.join(cols)} FROM ({self._parsed(rejects=False)})").df().iloc[0]
        return {k: int(v) for k, v in row.items()}

    # ----- running

    def _query(self, sql_of_parsed, *, arrow: bool = False) -> pd.DataFrame:
        """Run ``sql_of_parsed(parsed_select)`` and check the counters; returns the result frame.

        ``arrow``: fetch through Arrow, for results of many rows (one per customer): DuckDB's
        own conversion to pandas costs several times more on text columns. Dates then come
        as ``datetime64[ms]`` rather than ``datetime64[us]``.
        """
        rejects = self._src.kind == "csv"
        for _ in range(3):
            if rejects:
                self.con.execute("DROP TABLE IF EXISTS sp_rejects; DROP TABLE IF EXISTS sp_reject_scans")
            sql = sql_of_parsed(self._parsed(rejects=rejects))
            try:
                if arrow:
                    frame = self.con.sql(sql).to_arrow_table().to_pandas(date_as_object=False)
                else:
                    frame = self.con.execute(sql).df()
            except Exception as exc:  # duckdb raises many types (IOException, InvalidInputException...)
                raise self._read_error(exc) from None
            if rejects and self._handle_rejects():
                continue  # a typed column met text: it is parsed as text now, run again
            self._fill_report(frame)
            return frame
        raise SalesplanError(f"{self.source}: the scan could not settle its column types.")  # pragma: no cover

    def _read_error(self, exc: Exception) -> SalesplanDataError:
        text = _io._first_line(exc)
        what = {"parquet": "the Parquet file", "csv": "the CSV file", "table": "the table"}[self._src.kind]
        m = re.search(r"[Ff]ile '?([^' ]+?)'?(?:[:\s]|$)", text)
        named = Path(m.group(1)).name if m and self._src.files else None
        where = named or self.source
        hint = ("Check that it is a complete Parquet file (re-export it; a copy cut short loses its footer)."
                if self._src.kind == "parquet" else
                "Check the delimiter, the quoting and the encoding (UTF-8), or load it with "
                "salesplan.io.load_transactions." if self._src.kind == "csv" else
                "Check the table name or the SQL in query=.")
        return _io._data_error(f"{where}: cannot read {what} ({type(exc).__name__}: {text}). {hint}")

    def _handle_rejects(self) -> bool:
        rej = self.con.execute(
            "SELECT r.line, r.column_name, r.error_type, r.csv_line, s.file_path "
            "FROM sp_rejects r JOIN sp_reject_scans s USING (scan_id, file_id) ORDER BY s.file_path, r.line"
        ).df()
        if rej.empty:
            return False
        cast = rej[rej["error_type"] == "CAST"]
        other = rej[rej["error_type"] != "CAST"]
        if not other.empty:
            first = other.iloc[0]
            raise _io._data_error(
                f"{Path(first['file_path']).name}: the file cannot be read as delimited text: line "
                f"{int(first['line'])} is malformed ({first['error_type'].lower().replace('_', ' ')}: "
                f"{str(first['csv_line'])[:120]!r}; {len(other)} such line(s)). Check the delimiter and quoting "
                "(a field containing the delimiter must be in double quotes)."
            )
        changed = False
        for name in cast["column_name"].unique():
            for f in self._fields.values():
                if f.header == name and f.mode == "typed":
                    f.mode = "text"
                    changed = True
        return changed

    def _fill_report(self, frame: pd.DataFrame) -> None:
        names = [re.search(r" AS (\S+)$", c).group(1).strip('"') for c in self._counters()]
        sums = {c: int(frame[c].fillna(0).sum()) for c in names}
        sums.setdefault("sp_odd", 0)  # left out when no line can be odd
        if self.report is not None and sums == self._sums:
            return  # the same source read again: the report (and its warnings) stand
        self._sums = sums
        report = _io.LoadReport(**self._mapping_report)
        problems = _io._Problems(self.source, "transactions")
        dropped = sums["sp_lines"] - sums["sp_kept_lines"]
        detail = self._detail() if sums["sp_odd"] or dropped else {}
        blank = detail.get("blank", 0)
        report.rows_read = sums["sp_lines"] - blank
        if blank:
            report.rows_dropped["blank lines" if self._src.kind == "csv" else "blank rows"] = blank
        bad = {f: detail[f"bad_{f}"] for f in self._fields if detail.get(f"bad_{f}")}
        if bad:
            for fname, count in bad.items():
                problems.error(self._bad_message(fname, count))
            problems.raise_if_any(report)
        n = report.rows_read
        if n == 0:
            problems.error("the file has a header but no data rows. Export it again with the data.")
            problems.raise_if_any(report)
        if "revenue" not in self._fields and {"quantity", "unit_price"} <= set(self._fields):
            report.derived.append("revenue = quantity * unit_price")
        if detail.get("filled"):
            report.derived.append(f"revenue = quantity * unit_price on {detail['filled']} row(s) missing revenue")
        drop = dropped - blank
        if drop:
            per_col = {f: detail[f"miss_{f}"] for f in ("order_date", "revenue") if detail[f"miss_{f}"]}
            text = ", ".join(f"{f}: {k}" for f, k in per_col.items())
            where = self._locate_dropped()
            if drop / n > self.max_drop_fraction:
                problems.error(
                    f"{drop} of {n} rows ({drop / n:.1%}) lack a required value ({text}; {where}). "
                    f"At most {self.max_drop_fraction:.0%} can be dropped; fill those cells, check the "
                    "column mapping, or pass max_drop_fraction= to accept dropping them."
                )
                problems.raise_if_any(report)
            for f, k in per_col.items():
                report.rows_dropped[f"missing {f}"] = k
            problems.warn(f"dropped {drop} of {n} rows lacking a required value ({text}; {where}).")
        report.warnings = list(self._mapping_report.get("warnings", [])) + problems.warnings
        report.returns = sums["sp_returns"]
        report.rows = n - drop
        self.report = report

    # ----- locating bad values (error path only: one more scan)

    def _where(self, flag: str, count: int, raw_header: str | None = None) -> tuple[str, str]:
        """Where the rows with ``flag`` are (file lines or data rows) and up to three raw examples."""
        parsed = self._parsed(rejects=False, row_numbers=True, raw_header=raw_header)
        rows = self._sequential(
            f"SELECT sp_row, sp_file{', sp_raw' if raw_header else ''} FROM ({parsed}) WHERE {flag} "
            "ORDER BY sp_file, sp_row LIMIT 5"
        )
        kind = {"csv": "line", "parquet": "data row", "table": "row"}[self._src.kind]
        shown = [str(int(r)) for r in rows["sp_row"]]
        text = f"{kind if count == 1 else kind + 's'} {', '.join(shown)}"
        if count > len(shown):
            text += f" (and {count - len(shown)} more)"
        files = list(dict.fromkeys(rows["sp_file"].dropna()))
        if len(self._src.files) > 1 and files:
            text += " of " + ", ".join(Path(f).name for f in files)
        examples = ""
        if raw_header is not None:
            examples = ", ".join(repr(v) for v in pd.unique(rows["sp_raw"].astype(str))[:3])
        return text, examples

    def _sequential(self, sql: str) -> pd.DataFrame:
        """Run a query that numbers CSV rows: a parallel scan does not hand rows to a window
        function in file order, a single thread does (this is the error path only)."""
        with _ordered(self.con):
            if self._src.kind != "csv":
                return self.con.execute(sql).df()
            threads = self.con.execute("SELECT current_setting('threads')").fetchone()[0]
            self.con.execute("SET threads = 1")
            try:
                return self.con.execute(sql).df()
            finally:
                self.con.execute(f"SET threads = {int(threads)}")

    def _bad_message(self, fname: str, count: int) -> str:
        f = self._fields[fname]
        where, examples = self._where(_ident("bad_" + fname), count, raw_header=f.header)
        label = f"column {fname!r}" + (f" (header {f.header!r})" if f.header != fname else "")
        if _KINDS[fname] == "date":
            return (f"{label}: {count} value(s) are not dates ({where}; e.g. {examples}). Expected ISO "
                    "2024-01-31, 01/31/2024, 31/01/2024, 31.01.2024 or 20240131. Fix those cells, or pass "
                    "dayfirst= if the day/month order was misread.")
        return (f"{label}: {count} value(s) are not numbers ({where}; e.g. {examples}). Expected numbers "
                "such as 1234.5, 1,234.50, ¥1,234, (50) or 12%. Fix those cells or map the right column "
                "with columns=.")

    def _locate_dropped(self) -> str:
        return self._where("NOT sp_blank AND sp_drop", self._count("NOT sp_blank AND sp_drop"))[0]

    def _count(self, flag: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM ({self._parsed(rejects=False)}) WHERE {flag}").fetchone()[0])

    def check(self) -> _io.LoadReport:
        """Run the validation alone (one scan) and return the load report."""
        self._query(lambda parsed: f"SELECT {', '.join(self._counters())} FROM ({parsed})")
        return self.report


@contextmanager
def _ordered(con):
    """Keep rows in file order for the queries that need it (the whole table, row numbers).

    Off otherwise: aggregations do not need it, and keeping the order makes DuckDB
    buffer the chunks that its threads finish out of turn.
    """
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = false")


def scan_transactions(
    source: Any,
    *,
    columns: dict[Any, str | None] | None = None,
    query: str | None = None,
    dayfirst: bool | None = None,
    delimiter: str | None = None,
    max_drop_fraction: float = _io.MAX_DROP_FRACTION,
    memory_limit: str | None = None,
    threads: int | None = None,
    con: Any = None,
) -> TransactionScan:
    """Open a transactions source in DuckDB, with the loader's column mapping.

    Nothing but the headers (and a sample, for the column types) is read
    here; every aggregation then runs one query over the whole source.

    Parameters
    ----------
    source : path, folder, glob or DuckDB connection
        A CSV or Parquet file (``.csv .tsv .txt .psv``, ``.gz`` allowed;
        ``.parquet .pq``), a folder of them (Parquet preferred, searched
        recursively), a glob such as ``"exports/2025-*.parquet"``, a DuckDB
        database file (``.duckdb``) or a DuckDB connection (with ``query=``).
    columns : dict, optional
        Header -> field, as in :func:`salesplan.io.load_transactions`.
    query : str, optional
        For a database: a table name or a ``SELECT``.
    dayfirst : bool, optional
        How to read ``01/02/2024``-style text dates; by default decided from
        the first 10,000 values (day first when a first field exceeds 12).
    delimiter : str, optional
        Field delimiter of CSV files (sniffed by DuckDB by default).
    max_drop_fraction : float, default 0.05
        Lines without a date or a revenue are dropped with a warning when they
        are at most this share; more is an error.
    memory_limit : str, optional
        DuckDB's memory limit, e.g. ``"3GB"``; beyond it DuckDB spills to disk.
    threads : int, optional
        DuckDB threads (default: all cores).
    con : duckdb connection, optional
        Run in this connection instead of a new in-memory one.

    Returns
    -------
    TransactionScan
        Pass it to :func:`panel`, :func:`sales_over_time`, :func:`rfm_table`,
        :func:`summary_from_transactions`, :func:`cohort_matrix` or
        :func:`load_transactions`.

    Raises
    ------
    SalesplanDataError
        Missing file, unknown format, unreadable or corrupt file, missing
        required columns (with the headers found and the closest matches).
    """
    import duckdb

    if columns is not None and not isinstance(columns, dict):
        raise SalesplanError(f"columns must be a dict of header -> field, got {type(columns).__name__}.")
    if columns and any(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in columns):
        raise SalesplanError("The DuckDB engine needs a header line: map columns by header name, or load "
                             "a header-less file with salesplan.io.load_transactions.")
    if not 0 <= max_drop_fraction <= 1:
        raise SalesplanError(f"max_drop_fraction must be in [0, 1], got {max_drop_fraction!r}.")
    if dayfirst is not None and not isinstance(dayfirst, bool):
        raise SalesplanError(f"dayfirst must be True, False or None, got {dayfirst!r}.")
    if con is None:
        con = source if _io._is_duckdb(source) else duckdb.connect()
    if memory_limit is not None:
        con.execute(f"SET memory_limit = {_sql_str(memory_limit)}")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    for macro in _MACROS:
        con.execute(macro)
    src = _resolve_source(source, query=query, con=con)
    if src.kind == "csv" and delimiter is not None:
        src.delimiter = delimiter
    probe = TransactionScan(source=src.name, con=con, _src=src, _fields={}, _extras={}, _mapping_report={})
    try:
        sql = probe._from()
        result = con.execute(f"{sql} LIMIT 10000")
        described = result.description  # the header and the types, without another sniff of a CSV
        sample = result.df()
    except Exception as exc:
        raise probe._read_error(exc) from None
    headers = [r[0] for r in described]
    types = {r[0]: str(r[1]).upper() for r in described}
    if src.kind == "csv":
        sniffed = con.execute(f"SELECT Delimiter FROM sniff_csv({_sql_str(src.files[0])})").fetchone()[0]
        src.delimiter = src.delimiter or sniffed
    raw = _io._Raw(frame=sample.set_axis(range(sample.shape[1]), axis=1), headers=headers,
                   locate=_io._Locator("row"), source=src.name, format=src.format_name)
    problems = _io._Problems(src.name, "transactions")
    mapping = _io._resolve_mapping(raw, TRANSACTIONS, columns, problems)
    present = set(mapping.fields.values())
    derive = "revenue" not in present and {"quantity", "unit_price"} <= present
    missing = [c for c in ("order_date", "revenue") if c not in present and not (c == "revenue" and derive)]
    if missing:
        parts = []
        for col in missing:
            near = []
            for alias in [col, *TRANSACTIONS.column(col).aliases]:
                for hit in _io.closest_matches(alias, [h for h in headers if h not in mapping.fields.values()]):
                    if hit not in near:
                        near.append(hit)
            parts.append(f"{col!r}" + (f" (closest headers: {', '.join(map(repr, near[:3]))})" if near else ""))
        hint = " (revenue can also be derived from quantity and unit_price columns.)" if "revenue" in missing else ""
        problems.error(
            f"missing required column(s) {', '.join(parts)} for transactions. Headers found: {headers[:30]}.{hint} "
            f"Rename the headers or pass a mapping, e.g. columns={{'Your Header': {missing[0]!r}}}."
        )
    report = _io.LoadReport(source=src.name, table="transactions", format=src.format_name,
                            encoding="utf-8" if src.kind == "csv" else None,
                            delimiter=_io._delim_name(src.delimiter) if src.kind == "csv" else None)
    report.mapping = {headers[p]: f for p, f in sorted(mapping.fields.items())}
    report.extra_columns = {headers[p]: n for p, n in sorted(mapping.extras.items())}
    report.warnings = list(problems.warnings)
    problems.raise_if_any(report)
    fields: dict[str, _Field] = {}
    for pos, fname in sorted(mapping.fields.items(), key=lambda kv: TRANSACTIONS.names.index(kv[1])):
        h = headers[pos]
        t = types[h]
        kind = _KINDS[fname]
        typed = (kind in ("float", "int") and t in _NUMERIC_TYPES) or (kind == "date" and t in _DATE_TYPES)
        fields[fname] = _Field(fname, h, t, "typed" if typed else "text")
    date_f = fields.get("order_date")
    dayfirst_used, form = bool(dayfirst), "datetime" if src.kind != "csv" else "ISO"
    if src.kind == "parquet" and date_f is not None and date_f.source_type == "DATE":
        form = "ISO"  # pandas reads a Parquet date as date objects, which the loader parses as ISO text
    if date_f is not None and date_f.mode == "text":
        form = "ISO"
        col = sample.iloc[:, headers.index(date_f.header)].dropna().astype(str).str.strip()
        m = col.str.extract(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})(?:[T ].*)?$").dropna().astype(int)
        if len(m):
            if dayfirst is None:
                a_big, b_big = bool((m[0] > 12).any()), bool((m[1] > 12).any())
                dayfirst_used = a_big and not b_big
                if not a_big and not b_big:
                    problems.warn(f"column 'order_date': dates such as {col.iloc[0]!r} could be month-first or "
                                  "day-first; read them as MM/DD/YYYY. Pass dayfirst=True if they are DD/MM/YYYY.")
            form = "day-first" if dayfirst_used else "month-first"
    report.date_formats = {"order_date": form} if date_f is not None else {}
    report.warnings = list(problems.warnings)
    return TransactionScan(
        source=src.name, con=con, _src=src, _fields=fields,
        _extras={headers[p]: n for p, n in sorted(mapping.extras.items())},
        _mapping_report=report.to_dict(), _dayfirst=dayfirst_used, _date_form=form,
        max_drop_fraction=max_drop_fraction, _clean=_clean_fields(con, src, fields),
    )


def _clean_fields(con, src: _Source, fields: dict[str, _Field]) -> frozenset:
    """Typed number and date fields whose Parquet footers show no missing and no infinite value.

    Their checks are known to pass without reading the data, so the queries drop them
    (each costs time on every line). Anything unknown (a footer without statistics, a
    CSV, a table) keeps its checks.
    """
    typed = {f.header: f.name for f in fields.values()
             if f.mode == "typed" and _KINDS[f.name] in ("float", "int", "date")}
    if src.kind != "parquet" or not typed:
        return frozenset()
    try:
        rows = con.execute(
            f"SELECT path_in_schema, count(*), count(stats_null_count), sum(stats_null_count), "
            f"list(stats_min_value), list(stats_max_value) FROM parquet_metadata({_sql_list(src.files)}) "
            f"WHERE path_in_schema IN ({', '.join(_sql_str(h) for h in typed)}) GROUP BY 1"
        ).fetchall()
    except Exception:  # an old footer or an unusual layout: keep every check
        return frozenset()
    clean = set()
    for header, groups, with_stats, nulls, lows, highs in rows:
        if groups != with_stats or nulls:
            continue
        if _KINDS[typed[header]] != "date":
            if any(v is None or not np.isfinite(_as_float(v)) for v in lows + highs):
                continue
        clean.add(typed[header])
    return frozenset(clean)


def _as_float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _scan(tx: Any, **options) -> TransactionScan:
    if isinstance(tx, TransactionScan):
        if options:
            raise SalesplanError(f"options {sorted(options)} belong to scan_transactions; pass them there.")
        return tx
    return scan_transactions(tx, **options)


def _need(scan: TransactionScan, cols: list[str], what: str) -> None:
    have = set(scan._fields) | ({"revenue"} if {"quantity", "unit_price"} <= set(scan._fields) else set())
    have |= set(scan._extras.values())
    missing = [c for c in cols if c not in have]
    if missing:
        raise SalesplanDataError(
            f"{scan.source}: {what} needs column(s) {missing}, which the source does not have "
            f"(fields found: {sorted(have)}). Map them with columns= in scan_transactions."
        )


def _col(scan: TransactionScan, name: str) -> str:
    """SQL for a field or an extra column of the parsed select."""
    if name in scan._fields or name == "revenue":
        return "sp_revenue" if name == "revenue" else _ident(name)
    return _ident("extra_" + name)


def _report_cols(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if not c.startswith("sp_")]]


# --------------------------------------------------------------------------- the whole table


def _whole_table(scan: TransactionScan) -> TransactionScan:
    """The scan for reading every line: a float column whose footers say clean is checked for NaN.

    Parquet statistics do not count NaN, which some writers store for a missing number; the
    aggregates trust the footers for speed, but a line kept whole must be what the loader
    keeps (a NaN revenue is missing: the line is filled or dropped, and said so). The float
    columns the footers call clean are counted for NaN first, and keep their checks if any.
    """
    floats = [n for n in sorted(scan._clean) if scan._fields[n].source_type in _FLOAT_TYPES]
    if not floats:
        return scan
    # One pass over those columns alone (cheaper than checking them in the main query)
    counts = ", ".join(f"count(*) FILTER (WHERE isnan({_ident(scan._fields[n].header)}))" for n in floats)
    try:
        row = scan.con.execute(f"SELECT {counts} FROM ({scan._from()})").fetchone()
    except Exception as exc:  # duckdb raises many types
        raise scan._read_error(exc) from None
    nan = {n for n, k in zip(floats, row) if k}
    return replace(scan, _clean=scan._clean - nan, report=None, _sums={}) if nan else scan


def load_transactions(source: Any, **options) -> pd.DataFrame:
    """The whole transactions table through DuckDB, as :func:`salesplan.io.load_transactions` returns it.

    Meant for sources that fit in memory once loaded but are slow to parse
    in pandas; for larger ones use the aggregations of this module.

    Parameters
    ----------
    source : path, folder, glob, DuckDB connection or TransactionScan
        See :func:`scan_transactions`.
    **options
        Options of :func:`scan_transactions`.

    Returns
    -------
    pandas.DataFrame
        Schema columns present in the source (schema order, schema dtypes),
        ``is_return``, then the extra columns; ``df.attrs["salesplan"]``
        holds the :class:`~salesplan.io.LoadReport`.
    """
    scan = _whole_table(_scan(source, **options))
    scan.check()
    names = [n for n in TRANSACTIONS.names if n in scan._fields or (n == "revenue")]
    sel = [f"{_col(scan, n)} AS {_ident(n)}" for n in names]
    sel.append("sp_return AS is_return")
    sel += [f"{_ident('extra_' + n)} AS {_ident('extra_' + n)}" for n in scan._extras.values()]
    # No ORDER BY: with preserve_insertion_order (_ordered) a scan returns the rows in file order.
    sql = (f"SELECT {', '.join(sel)} FROM ({scan._parsed(rejects=False, extras=True)}) "
           "WHERE NOT sp_drop")
    import pyarrow as pa

    # Through Arrow: text columns become the loader's pyarrow-backed strings without a copy per cell.
    with _ordered(scan.con):
        table = scan.con.sql(sql).to_arrow_table()
    text = pd.StringDtype("pyarrow")
    out = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    for n in names:
        kind = _KINDS[n]
        col = table.column(n)
        if kind == "date":
            out[n] = pd.Series(col.to_pandas(), index=out.index).astype("datetime64[ns]")
        elif kind in ("float", "int"):
            out[n] = pd.Series(col.to_numpy(zero_copy_only=False), index=out.index, dtype="float64")
        else:
            out[n] = pd.Series(pd.array(col.cast(pa.large_string()), dtype=text), index=out.index)
    out["is_return"] = table.column("is_return").to_numpy(zero_copy_only=False).astype(bool)
    for n in scan._extras.values():
        out[n] = _io._extra(table.column("extra_" + n).to_pandas())
    report = _guests(scan, out)
    out.attrs = {"salesplan": report.to_dict()}
    return out


def _guests(scan: TransactionScan, out: pd.DataFrame) -> _io.LoadReport:
    """The load report with the lines kept without a customer counted and located, as the loader does."""
    report = scan.report
    if "customer_id" not in out or not out["customer_id"].isna().any():
        return report
    guests = out["customer_id"].isna().to_numpy()
    revenue = out["revenue"].to_numpy(dtype="float64", na_value=np.nan)
    report = replace(report, guest_lines=int(guests.sum()), guest_revenue=float(np.nansum(revenue[guests])),
                     warnings=list(report.warnings))
    total = float(np.nansum(revenue))
    share = f"{report.guest_revenue / total:.1%}" if total > 0 else "n/a"
    where = scan._where('NOT sp_drop AND "customer_id" IS NULL', report.guest_lines)[0]
    problems = _io._Problems(scan.source, "transactions")
    problems.warn(
        f"{report.guest_lines} of {len(out)} lines ({share} of revenue) have no customer: they count in "
        "revenue, market and forecast analyses, and are left out of customer analyses (RFM, clusters, "
        f"lifetime value, cohorts). First: {where}."
    )
    report.warnings += problems.warnings
    return report


def to_parquet(source: Any, path: str | Path, *, overwrite: bool = False, **options) -> _io.LoadReport:
    """Write the transactions, mapped, parsed and checked, to one Parquet file.

    For an export that is read more than once: an aggregate of a CSV takes
    DuckDB 1.8 to 5 times longer than of the same lines in Parquet
    (50 million lines: a panel 10.5 s against 2.0 s; docs/scaling.md), and a file
    written here needs no checks when it is read again (its footers prove
    there is no missing date or revenue). The file has the data model's
    names and types (``order_date`` a date, numbers as doubles, codes as
    text), revenue derived or filled as the loader does, and the extra
    columns under their cleaned names; the lines the loader drops (no date
    or no revenue) are left out, as it leaves them out.

    The source is never changed. The file is written beside ``path`` under
    a temporary name and renamed when complete, so a failure leaves no
    half-written file.

    Parameters
    ----------
    source : path, folder, glob, DuckDB connection or TransactionScan
        See :func:`scan_transactions`.
    path : str or Path
        The Parquet file to write (``.parquet`` or ``.pq``).
    overwrite : bool, default False
        Replace ``path`` if it exists (never one of the source's own files).
    **options
        Options of :func:`scan_transactions` (``columns``, ``dayfirst``...).

    Returns
    -------
    salesplan.io.LoadReport
        What loading the source found, as the loaders report it.

    Raises
    ------
    SalesplanError
        ``path`` exists (without ``overwrite``), is one of the source's files,
        does not end in ``.parquet``/``.pq``, or its folder does not exist.
    SalesplanDataError
        As :func:`scan_transactions` and :func:`load_transactions`: the
        source's problems, with the lines that have them.
    """
    out = Path(path).expanduser()
    if out.suffix.lower() not in _PARQUET_EXT:
        raise SalesplanError(f"{out}: the file to write must end in .parquet or .pq, so that it is read as "
                             "Parquet later.")
    if not out.parent.is_dir():
        raise SalesplanError(f"{out}: the folder {out.parent} does not exist; create it or pick another path.")
    scan = _scan(source, **options)
    target = out.resolve()
    if any(Path(f).resolve() == target for f in scan._src.files):
        raise SalesplanError(f"{out} is the source itself; write the Parquet copy to another path.")
    if out.exists() and not overwrite:
        raise SalesplanError(f"{out} already exists; pass overwrite=True (salesplan convert --overwrite) to replace "
                             "it, or pick another path.")
    scan = _whole_table(scan)  # after the refusals: its NaN count reads the source
    scan.check()
    date_f = scan._fields.get("order_date")
    sel = []
    for n in TRANSACTIONS.names:
        if n not in scan._fields and n != "revenue":
            continue
        # a DATE source stays a date (no time of day to keep): later scans read it as it is
        expr = "sp_day" if n == "order_date" and date_f.source_type == "DATE" else _col(scan, n)
        sel.append(f"{expr} AS {_ident(n)}")
    sel += [f"{_ident('extra_' + n)} AS {_ident(n)}" for n in scan._extras.values()]
    sql = f"SELECT {', '.join(sel)} FROM ({scan._parsed(rejects=False, extras=True)}) WHERE NOT sp_drop"
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with _ordered(scan.con):
            scan.con.execute(f"COPY ({sql}) TO {_sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, out)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, SalesplanError):
            raise
        raise SalesplanError(f"{out}: could not write the Parquet file ({type(exc).__name__}: "
                             f"{_io._first_line(exc)}).") from None
    return scan.report


#: File sizes from which ``engine="auto"`` loads a whole file through DuckDB: about 700,000
#: lines of CSV, 300,000 of Parquet. Above them DuckDB loads faster than pandas, and in less
#: memory (benchmarks/bench_load.py: a million CSV lines 1.2 times faster, 10 million 1.8 to 1.9
#: times in half the memory; Parquet 1.1 to 5 times faster).
AUTO_MIN_BYTES = {"csv": 64 * 10**6, "parquet": 4 * 10**6}


def dispatch(source: Any, *, engine: str = "pandas", encoding: str | None = None, format: str | None = None,
             sheet_name: Any = 0, **options) -> pd.DataFrame | None:
    """The hook of ``salesplan.io.load_transactions(..., engine=...)``.

    Returns the table loaded through DuckDB, or ``None`` when the pandas
    loader should load it: ``engine="pandas"``, or ``engine="auto"`` for
    anything but a folder or a glob of files (which only DuckDB reads as one
    table) and a CSV or Parquet file of at least :data:`AUTO_MIN_BYTES`.
    With ``"auto"``, a file that DuckDB cannot read as the loader would (an
    encoding other than UTF-8, title lines above the header, Excel serial or
    Chinese dates, a bad value) goes to the pandas loader, which reads it or
    words the error; what DuckDB warned is then not repeated.

    Parameters
    ----------
    source
        As for :func:`salesplan.io.load_transactions`.
    engine : {"pandas", "duckdb", "auto"}
    encoding, format, sheet_name
        Options of the pandas loader; the DuckDB engine reads UTF-8 CSV and
        Parquet only, and says so when asked for anything else.
    **options
        ``columns``, ``query``, ``dayfirst``, ``delimiter``, ``max_drop_fraction``.
    """
    if engine not in ENGINES:
        near = _io.closest_matches(str(engine), ENGINES, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise SalesplanError(f"engine must be one of {list(ENGINES)}, got {engine!r}.{hint}")
    if engine == "pandas":
        return None
    readable = encoding in (None, "utf-8", "utf8", "utf-8-sig") and format in (None, "csv", "parquet") \
        and sheet_name in (0, None)
    if engine == "auto":
        text = str(source) if isinstance(source, (str, Path)) else None
        if text is not None and (_GLOB_CHARS.search(text) or Path(text).is_dir()):
            pass  # only DuckDB reads several files as one table
        elif readable and _large_file(text, format):
            return _load_or_none(source, options)
        else:
            return None
    if not readable:
        raise SalesplanError(
            f"engine='duckdb' reads UTF-8 CSV and Parquet files (got encoding={encoding!r}, format={format!r}, "
            f"sheet_name={sheet_name!r}). Load this source with engine='pandas'."
        )
    return load_transactions(source, **options)


def _large_file(text: str | None, format: str | None) -> bool:
    """Whether ``text`` names a CSV or Parquet file of at least :data:`AUTO_MIN_BYTES`."""
    if text is None or _io._is_url(text) or not Path(text).is_file():
        return False
    try:
        kind = format or _io._format_from_name(Path(text).name)
    except SalesplanError:
        return False
    return kind in AUTO_MIN_BYTES and Path(text).stat().st_size >= AUTO_MIN_BYTES[kind]


def _load_or_none(source: Any, options: dict) -> pd.DataFrame | None:
    """The table through DuckDB, or ``None`` (for the pandas loader) when DuckDB cannot load it."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            frame = load_transactions(source, **options)
        except SalesplanError:
            return None
    for w in seen:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return frame


# --------------------------------------------------------------------------- aggregations

_TRUNC = {"D": "day", "W": "week", "MS": "month", "QS": "quarter", "YS": "year"}  # market's freq codes


def _offset(freq: str) -> pd.DateOffset:
    try:
        return pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError) as exc:
        raise SalesplanError(f"freq={freq!r} is not a pandas frequency ({exc}); pass e.g. freq='MS'.") from None


def _trunc_unit(freq: str) -> str:
    name = _offset(freq).freqstr
    base = name.split("-")[0]
    unit = {"D": "day", "MS": "month", "ME": "month", "M": "month", "QS": "quarter", "QE": "quarter",
            "Q": "quarter", "YS": "year", "YE": "year", "Y": "year"}.get(base)
    if name == "W-MON":
        unit = "week"
    if unit is None:
        raise SalesplanError(
            f"freq={freq!r}: the DuckDB engine aggregates by day ('D'), week starting Monday ('W-MON'), "
            "month ('MS'), quarter ('QS') or year ('YS'). Use salesplan.forecast.panel_from_transactions "
            "for other calendars."
        )
    return unit


def _period_alias(off: pd.DateOffset) -> str:
    """The Period frequency of an offset, as salesplan.forecast.panel names it (MS -> M, W-MON -> W-SUN)."""
    base = off.freqstr.split("-")[0]
    if base in ("MS", "ME", "M"):
        return "M"
    if base in ("QS", "QE", "Q"):
        return "Q"
    if base in ("YS", "YE", "Y"):
        return "Y"
    if base == "W":
        return "W-SUN"  # only weeks starting Monday reach here
    return off.freqstr


def _finish_panel(agg: pd.DataFrame, *, freq: str, by_cols: list[str], fill_value, start, end) -> pd.DataFrame:
    """The last steps of salesplan.forecast.panel_from_transactions, on per-period sums.

    Kept here (rather than calling it) so that the DuckDB path does not import the
    forecasting models; tests/test_engine.py checks that both give the same panel.
    """
    off = _offset(freq)
    alias = _period_alias(off)
    # as panel_from_transactions labels periods (which also fixes the datetime unit it returns)
    ds = pd.to_datetime(agg["sp_ds"]).dt.to_period(alias).dt.start_time.dt.normalize()
    frame = pd.DataFrame({"ds": ds.to_numpy()})
    for c in by_cols:
        frame[c] = agg[c].astype("str").fillna("(missing)").to_numpy()
    frame["y"] = agg["sp_y"].to_numpy()
    g = frame.groupby(["ds"] + by_cols, sort=True, as_index=False)["y"].sum()
    key = g[by_cols].astype(str).agg("/".join, axis=1) if by_cols else pd.Series("total", index=g.index)
    g.insert(0, "unique_id", key.to_numpy())
    if fill_value is not None:
        lo = g["ds"].min() if start is None else pd.Timestamp(start)
        hi = g["ds"].max() if end is None else pd.Timestamp(end)
        lo = pd.Period(lo, freq=alias).start_time
        cal = pd.date_range(lo, hi, freq=off if off.is_on_offset(lo) else pd.tseries.frequencies.to_offset(alias))
        cal = pd.DatetimeIndex(pd.PeriodIndex(cal, freq=alias).start_time.normalize().unique())
        keys = g[["unique_id"] + by_cols].drop_duplicates()
        full = keys.merge(pd.DataFrame({"ds": cal}), how="cross")
        g = full.merge(g, on=["unique_id", "ds"] + by_cols, how="left")
        g["y"] = g["y"].fillna(float(fill_value))
    else:
        if start is not None:
            g = g[g["ds"] >= pd.Timestamp(start)]
        if end is not None:
            g = g[g["ds"] <= pd.Timestamp(end)]
    g = g.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    return g[["unique_id", "ds", "y"] + by_cols]


def panel(
    tx: Any,
    *,
    freq: str = "MS",
    by: str | list[str] | None = None,
    value: str = "revenue",
    fill_value: float | None = 0.0,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Sum order lines into a regular long panel, in DuckDB.

    The same frame as :func:`salesplan.forecast.panel_from_transactions`
    on the loaded table: the lines are summed per period and series in SQL,
    and the panel is finished (calendar, zero fill, ids) on the sums.

    Parameters
    ----------
    tx : TransactionScan or source
        From :func:`scan_transactions` (or a path, opened with defaults).
    freq, by, value, fill_value, start, end
        As in :func:`salesplan.forecast.panel_from_transactions`; ``value``
        is a numeric field (``"revenue"``, ``"quantity"``) or ``"count"``.

    Returns
    -------
    DataFrame
        ``unique_id``, ``ds``, ``y``, then the ``by`` columns.
    """
    scan = _scan(tx)
    by_cols = [] if by is None else ([by] if isinstance(by, str) else list(by))
    _need(scan, by_cols + ([] if value == "count" else [value]), "panel")
    agg = _period_sums(scan, _trunc_unit(freq), by_cols, value)
    return _finish_panel(agg, freq=freq, by_cols=by_cols, fill_value=fill_value, start=start, end=end)


def _period_sums(scan: TransactionScan, unit: str, by_cols: list[str], value: str) -> pd.DataFrame:
    # Lines are summed per period and raw key; the keys are cleaned on the (few) groups after.
    raw = {c: (_ident("raw_" + c) if _KINDS.get(c) == "string" and c in scan._fields else _col(scan, c))
           for c in by_cols}
    keys = [f"date_trunc('{unit}', sp_day) AS sp_ds"] + [f"{raw[c]} AS {_ident('k_' + c)}" for c in by_cols]
    clean = ["sp_ds"] + [(f"sp_text({_ident('k_' + c)})" if raw[c].startswith('"raw_') else _ident("k_" + c))
                         + f" AS {_ident(c)}" for c in by_cols]
    y = "count(*)" if value == "count" else f"sum({_col(scan, value)})"

    def sql(parsed: str) -> str:
        inner = (f"SELECT {', '.join(keys)}, {y}{scan.kept()} AS sp_y, "
                 f"count(*){scan.kept()} AS sp_kept, {', '.join(scan._counters())} "
                 f"FROM ({parsed}) GROUP BY ALL")
        return (f"SELECT {', '.join(clean)}, sum(sp_y) AS sp_y, sum(sp_kept) AS sp_kept, "
                f"{', '.join(_sum_counters(scan))} FROM ({inner}) GROUP BY ALL")

    frame = scan._query(sql)
    frame = frame[frame["sp_kept"] > 0]
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame({"sp_ds": pd.to_datetime(frame["sp_ds"]).astype("datetime64[ns]")})
    for c in by_cols:
        out[c] = frame[c].astype("string") if c in scan._fields else frame[c]
    out["sp_y"] = frame["sp_y"].astype("float64").fillna(0.0)
    return out


def sales_over_time(
    tx: Any,
    *,
    freq: str = "MS",
    by: str | list[str] | None = None,
    value: str = "revenue",
) -> pd.DataFrame:
    """Totals per period, overall or per dimension value, summed in DuckDB.

    The same frame as :func:`salesplan.market.sales_over_time` for a summed
    ``value`` (``"revenue"``, ``"quantity"``); distinct counts
    (``"customers"``, ``"orders"``) are not pushed down.

    Returns
    -------
    DataFrame
        The ``by`` columns, ``ds``, and the summed ``value``.
    """
    from salesplan import market

    scan = _scan(tx)
    if value in ("customers", "orders"):
        raise SalesplanError(f"value={value!r}: distinct counts are not pushed down to DuckDB; use "
                             "salesplan.market.sales_over_time on the loaded table.")
    by_cols = market._as_list(by)
    f = market._freq(freq)
    _need(scan, by_cols + [value], "sales_over_time")
    agg = _period_sums(scan, _TRUNC[f], by_cols, value)
    agg = agg.rename(columns={"sp_ds": "order_date", "sp_y": value})
    return market.sales_over_time(agg, freq=f, by=by, value=value)


def rfm_table(
    tx: Any,
    *,
    as_of: Any = None,
    frequency: str = "days",
    monetary: str = "sum",
) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer, aggregated in DuckDB.

    The same frame as :func:`salesplan.segments.rfm.rfm_table` on the loaded
    table (lines without a customer are left out, with a warning).

    Returns
    -------
    DataFrame
        ``customer_id``, ``first_purchase``, ``last_purchase``, ``recency``,
        ``tenure``, ``frequency``, ``monetary``; ``as_of`` in ``.attrs``.
    """
    from salesplan._validation import check_choice

    scan = _scan(tx)
    check_choice(frequency, ("days", "orders", "lines"), name="frequency")
    check_choice(monetary, ("sum", "mean"), name="monetary")
    _need(scan, ["customer_id"] + (["order_id"] if frequency == "orders" else []), "rfm_table")
    cut = ""
    as_of_ts = None
    if as_of is not None:
        try:
            as_of_ts = pd.Timestamp(as_of).normalize()
        except (TypeError, ValueError):
            raise SalesplanError(f"as_of must be a date, got {as_of!r}.") from None
        cut = f" AND sp_day <= DATE '{as_of_ts.date()}'"
    ok = 'NOT sp_drop AND "customer_id" IS NOT NULL'
    orders = (', count(DISTINCT "order_id") FILTER (WHERE ' + ok + cut + ') AS n_orders'
              if frequency == "orders" else "")

    kept = f"NOT sp_drop{cut}"

    def fast(parsed: str) -> str:
        # One pass per raw customer key; keys are cleaned on the customers, not on the lines.
        # count(DISTINCT day) costs the same CPU as grouping by (key, day) first, in less
        # memory: DuckDB keeps the (key, day) pairs without the other aggregates beside them.
        day = "sp_day"
        kf, af = scan.kept(cut[5:]), scan.kept()  # the lines kept (up to as_of), all kept lines
        inner = (f"SELECT {_ident('raw_customer_id')} AS sp_k, min({day}){kf} AS first_day, "
                 f"max({day}){kf} AS last_day, count(DISTINCT {day}){kf} AS n_days, count(*){kf} AS n_lines, "
                 f"sum(sp_revenue){kf} AS money, max({day}){af} AS sp_max_all, "
                 f"min({day}){af} AS sp_min_all, {', '.join(scan._counters())} "
                 f"FROM ({parsed}) GROUP BY 1")
        return (f"SELECT sp_text(sp_k) AS \"customer_id\", * EXCLUDE (sp_k), sp_kept_lines AS sp_ok_lines, "
                f"CAST(sp_k IS DISTINCT FROM sp_text(sp_k) AS INTEGER) AS sp_variants FROM ({inner}) "
                "ORDER BY \"customer_id\"")

    def merged(parsed: str) -> str:
        # Per raw customer key and day first, then per cleaned key and day, then per customer.
        inner = (f"SELECT {_ident('raw_customer_id')} AS sp_k, sp_day, "
                 f"count(*) FILTER (WHERE {kept}) AS sp_day_lines, sum(sp_revenue) FILTER (WHERE {kept}) AS sp_money, "
                 f"{', '.join(scan._counters())} FROM ({parsed}) GROUP BY 1, 2")
        # two raw keys clean to one customer ("c1" and " c1"): merge their days
        mid = (f"SELECT sp_text(sp_k) AS \"customer_id\", sp_day, sum(sp_day_lines) AS sp_day_lines, "
               f"sum(sp_money) AS sp_money, 0 AS sp_variant, {', '.join(_sum_counters(scan))} "
               f"FROM ({inner}) GROUP BY 1, 2")
        ok = "sp_day_lines > 0"
        return (f"SELECT \"customer_id\", min(sp_day) FILTER (WHERE {ok}) AS first_day, "
                f"max(sp_day) FILTER (WHERE {ok}) AS last_day, count(*) FILTER (WHERE {ok}) AS n_days, "
                f"sum(sp_day_lines) AS n_lines, sum(sp_money) AS money, "
                f"max(sp_day) FILTER (WHERE sp_kept_lines > 0) AS sp_max_all, "
                f"min(sp_day) FILTER (WHERE sp_kept_lines > 0) AS sp_min_all, sum(sp_kept_lines) AS sp_ok_lines, "
                f"sum(sp_variant) AS sp_variants, {', '.join(_sum_counters(scan))} FROM ({mid}) GROUP BY 1 "
                "ORDER BY 1")

    frame = scan._query(fast, arrow=True)
    if frame["sp_variants"].sum() > 0:
        # Some keys change when cleaned (" c1 ", "NULL"): two raw keys may be one customer,
        # whose purchase days must be merged, so count per (customer, day) instead.
        frame = scan._query(merged, arrow=True)
    if orders:
        counts = _distinct_orders(scan, ok + cut)
        frame = frame.merge(counts, on="customer_id", how="left")
    no_customer = frame["customer_id"].isna()
    lines_without = int(scan.report.rows) - int(frame.loc[~no_customer, "sp_ok_lines"].sum())
    if lines_without:
        warnings.warn(f"rfm_table: ignored {lines_without} row(s) without a date, customer or value.",
                      SalesplanDataWarning, stacklevel=2)
    frame = frame[~no_customer]
    if not len(frame) or frame["sp_ok_lines"].sum() == 0:
        raise SalesplanDataError("tx has no row with a date, a customer and a value.")
    first_all = pd.Timestamp(frame["sp_min_all"].min())
    last_all = pd.Timestamp(frame["sp_max_all"].max())
    if as_of_ts is None:
        as_of_ts = last_all
    if as_of_ts < first_all:
        raise SalesplanError(
            f"as_of={as_of_ts.date()} is before the data starts ({first_all.date()}; last date "
            f"{last_all.date()}), so no customer has bought yet. Use an as_of date inside or after the data."
        )
    frame = frame[frame["n_days"] > 0]
    first = pd.to_datetime(frame["first_day"]).astype("datetime64[ns]").to_numpy()
    last = pd.to_datetime(frame["last_day"]).astype("datetime64[ns]").to_numpy()
    as_of64 = np.datetime64(as_of_ts.normalize(), "ns")
    freq = {"days": frame["n_days"], "lines": frame["n_lines"],
            "orders": frame.get("n_orders")}[frequency].to_numpy().astype(np.int64)
    money = frame["money"].to_numpy(dtype="float64")
    if monetary == "mean":
        money = money / freq
    out = pd.DataFrame({
        "customer_id": frame["customer_id"].astype("string").array,
        "first_purchase": first,
        "last_purchase": last,
        "recency": ((as_of64 - last) // np.timedelta64(1, "D")).astype(np.int64),
        "tenure": ((as_of64 - first) // np.timedelta64(1, "D")).astype(np.int64),
        "frequency": freq,
        "monetary": money,
    })
    out.attrs["as_of"] = as_of_ts
    nonpos = int((out["monetary"] <= 0).sum())
    if nonpos:
        warnings.warn(
            f"rfm_table: {nonpos} customer(s) have a net monetary value <= 0 (returns or credits at "
            "least as large as their purchases); they are kept and get the lowest monetary scores.",
            SalesplanDataWarning, stacklevel=2,
        )
    return out


def _sum_counters(scan: TransactionScan) -> list[str]:
    names = [re.search(r" AS (\S+)$", c).group(1) for c in scan._counters()]
    return [f"sum({n}) AS {n}" for n in names]


def _distinct_orders(scan: TransactionScan, where: str) -> pd.DataFrame:
    return scan.con.execute(
        f"SELECT \"customer_id\", count(DISTINCT \"order_id\") AS n_orders FROM ({scan._parsed(rejects=False)}) "
        f"WHERE {where} GROUP BY 1"
    ).df()


_PERIOD_UNIT = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}


def summary_from_transactions(
    tx: Any,
    *,
    calibration_end: Any = None,
    observation_end: Any = None,
    freq: str = "W",
    freq_multiplier: float = 1,
    monetary: bool = True,
) -> pd.DataFrame:
    """The BG/NBD and Gamma-Gamma summary per customer, aggregated in DuckDB.

    The same frame as :func:`salesplan.segments.clv.summary_from_transactions`
    (with ``value_col="revenue"``, or ``None`` when ``monetary=False``) on
    the loaded table. ``freq`` is ``"D"``, ``"W"`` (weeks Monday to Sunday),
    ``"M"``, ``"Q"`` or ``"Y"``. Lines without a customer are left out, with
    a warning.

    Returns
    -------
    DataFrame
        ``customer_id``, ``frequency``, ``recency``, ``T``, ``monetary_value``
        (when ``monetary``), and the holdout columns ``frequency_holdout``,
        ``monetary_value_holdout``, ``duration_holdout`` when
        ``observation_end`` is after ``calibration_end``.
    """
    from salesplan.segments import clv as _clv

    scan = _scan(tx)
    _need(scan, ["customer_id"], "summary_from_transactions")
    unit = _PERIOD_UNIT.get(str(freq).upper()[:1] if str(freq) in ("D", "W", "M", "Q", "Y", "W-SUN") else "")
    if unit is None:
        raise SalesplanError(f"freq must be 'D', 'W', 'M', 'Q' or 'Y' for the DuckDB engine, got {freq!r}.")
    if (not isinstance(freq_multiplier, (int, float, np.integer, np.floating)) or isinstance(freq_multiplier, bool)
            or not np.isfinite(freq_multiplier) or freq_multiplier <= 0):
        raise SalesplanError(f"freq_multiplier must be a positive number, got {freq_multiplier!r}.")
    cal_given = None if calibration_end is None else _clv._to_timestamp(calibration_end, name="calibration_end")
    obs_given = None if observation_end is None else _clv._to_timestamp(observation_end, name="observation_end")
    ok = 'NOT sp_drop AND "customer_id" IS NOT NULL'
    # Bounds first: the default calibration end is the last purchase (a small query on the same scan).
    need_bounds = cal_given is None and obs_given is None
    if need_bounds:
        bounds = scan._query(lambda parsed: f"SELECT max(\"order_date\") FILTER (WHERE {ok}) AS hi, "
                             f"min(\"order_date\") FILTER (WHERE {ok}) AS lo, {', '.join(scan._counters())} FROM ({parsed})")
        last_date = pd.Timestamp(bounds["hi"].iloc[0])
    cal_end = cal_given if cal_given is not None else (obs_given if obs_given is not None else last_date)
    obs_end = cal_end if obs_given is None else obs_given
    if obs_end < cal_end:
        raise SalesplanError(
            f"observation_end {obs_end.date()} is before calibration_end {cal_end.date()}. The holdout period "
            "runs from calibration_end to observation_end: pass a later observation_end, or leave it out."
        )
    cal_cut, obs_cut = _clv._inclusive_cutoff(cal_end), _clv._inclusive_cutoff(obs_end)
    ts = lambda t: f"TIMESTAMP '{pd.Timestamp(t).isoformat(sep=' ')}'"  # noqa: E731

    def sql(parsed: str) -> str:
        inner = (f"SELECT \"customer_id\", date_trunc('{unit}', \"order_date\") AS sp_p, "
                 f"\"order_date\" < {ts(cal_cut)} AS sp_cal, sum(sp_revenue) AS sp_v, "
                 f"min(\"order_date\") AS sp_first_date, max(\"order_date\") AS sp_last_date "
                 f"FROM ({parsed}) WHERE {ok} AND \"order_date\" < {ts(obs_cut)} GROUP BY 1, 2, 3")
        return (f"SELECT \"customer_id\", min(sp_p) FILTER (WHERE sp_cal) AS first_p, "
                f"max(sp_p) FILTER (WHERE sp_cal) AS last_p, count(*) FILTER (WHERE sp_cal) AS n_cal, "
                f"sum(sp_v) FILTER (WHERE sp_cal) AS v_cal, arg_min(sp_v, sp_p) FILTER (WHERE sp_cal) AS v_first, "
                f"count(*) FILTER (WHERE NOT sp_cal) AS n_hold, sum(sp_v) FILTER (WHERE NOT sp_cal) AS v_hold, "
                f"min(sp_first_date) AS sp_min_date "
                f"FROM ({inner}) GROUP BY 1")

    # The counters need every line, the customers only the kept ones: two queries on the same scan.
    if not need_bounds:
        scan.check()
    frame = scan.con.execute(sql(scan._parsed(rejects=False))).df()
    lines_without = scan._count(f'NOT sp_drop AND "customer_id" IS NULL')
    if lines_without:
        warnings.warn(f"summary_from_transactions: left out {lines_without} line(s) without a customer.",
                      SalesplanDataWarning, stacklevel=2)
    first_date = pd.Timestamp(frame["sp_min_date"].min()) if len(frame) else None
    if first_date is None or cal_end < first_date.normalize() or frame["n_cal"].sum() == 0:
        raise SalesplanError(
            f"calibration_end {cal_end.date()} is before the first purchase in the data"
            + (f" ({first_date.date()})" if first_date is not None else "")
            + ", so no customer falls in the calibration period. Pick a later calibration_end."
        )
    frame = frame[frame["n_cal"] > 0].copy()
    pfreq = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}[unit]
    ordinal = lambda s: np.asarray(pd.to_datetime(s).dt.to_period(pfreq).array.asi8, dtype=np.int64)  # noqa: E731
    first, last = ordinal(frame["first_p"]), ordinal(frame["last_p"])
    cal_ord = cal_end.to_period(pfreq).ordinal
    m = float(freq_multiplier)
    out = pd.DataFrame({"customer_id": frame["customer_id"].astype("string").array})
    out["frequency"] = (frame["n_cal"].to_numpy() - 1).astype(np.int64)
    out["recency"] = (last - first) / m
    out["T"] = (cal_ord - first) / m
    if monetary:
        repeat = frame["v_cal"].to_numpy(dtype=float) - frame["v_first"].to_numpy(dtype=float)
        f = out["frequency"].to_numpy()
        out["monetary_value"] = np.where(f > 0, repeat / np.maximum(f, 1), 0.0)
    if obs_end > cal_end:
        counts = frame["n_hold"].to_numpy().astype(np.int64)
        out["frequency_holdout"] = counts
        if monetary:
            sums = frame["v_hold"].fillna(0.0).to_numpy(dtype=float)
            out["monetary_value_holdout"] = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        out["duration_holdout"] = (obs_end.to_period(pfreq).ordinal - cal_ord) / m
    return out.sort_values("customer_id", kind="stable").reset_index(drop=True)


def cohort_matrix(tx: Any, *, freq: str = "MS", metric: str = "customers") -> pd.DataFrame:
    """Retention of first-order cohorts, aggregated in DuckDB.

    The same frame as :func:`salesplan.market.cohort_matrix` on the loaded
    table (``value="revenue"``). Lines without a customer are left out, with
    a warning.

    Returns
    -------
    DataFrame
        ``cohort``, ``period_number``, ``ds``, ``cohort_size``, ``value``,
        ``retention``.
    """
    from salesplan import market
    from salesplan._validation import check_choice

    check_choice(metric, ("customers", "revenue"), name="metric")
    scan = _scan(tx)
    _need(scan, ["customer_id"], "cohort_matrix")
    f = market._freq(freq)
    unit = _TRUNC[f]
    ok = "NOT sp_drop"

    def sql(parsed: str) -> str:
        pairs = (f"SELECT \"customer_id\", date_trunc('{unit}', \"order_date\") AS sp_ds, "
                 f"sum(sp_revenue) FILTER (WHERE {ok}) AS sp_v, count(*) FILTER (WHERE {ok}) AS sp_n, "
                 f"{', '.join(scan._counters())} FROM ({parsed}) GROUP BY 1, 2")
        cohorts = (f"SELECT *, min(sp_ds) FILTER (WHERE sp_n > 0 AND \"customer_id\" IS NOT NULL) "
                   f"OVER (PARTITION BY \"customer_id\") AS sp_cohort FROM ({pairs})")
        return (f"SELECT sp_cohort, sp_ds, count(*) FILTER (WHERE sp_n > 0 AND \"customer_id\" IS NOT NULL) AS n_customers, "
                f"sum(sp_v) FILTER (WHERE sp_n > 0 AND \"customer_id\" IS NOT NULL) AS revenue, "
                f"sum(sp_n) FILTER (WHERE \"customer_id\" IS NULL) AS sp_no_customer, "
                f"max(sp_ds) FILTER (WHERE sp_n > 0) AS sp_last, min(sp_ds) FILTER (WHERE sp_n > 0) AS sp_first, "
                f"{', '.join(_sum_counters(scan))} FROM ({cohorts}) GROUP BY 1, 2")

    frame = scan._query(sql)
    without = int(frame["sp_no_customer"].fillna(0).sum())
    if without:
        warnings.warn(f"cohort_matrix: left out {without} line(s) without a customer.",
                      SalesplanDataWarning, stacklevel=2)
    lo, hi = pd.Timestamp(frame["sp_first"].min()), pd.Timestamp(frame["sp_last"].max())
    frame = frame[frame["sp_cohort"].notna() & (frame["n_customers"] > 0)]
    grid = market._period_grid(lo, hi, f)
    frame = frame.assign(cohort=pd.to_datetime(frame["sp_cohort"]).astype("datetime64[ns]"),
                         ds=pd.to_datetime(frame["sp_ds"]).astype("datetime64[ns]"))
    size = frame.loc[frame["cohort"] == frame["ds"]].groupby("cohort")["n_customers"].sum().rename("cohort_size")
    vals = frame.set_index(["cohort", "ds"])["n_customers" if metric == "customers" else "revenue"].astype("float64")
    return market._cohort_table(vals, size, grid, metric)


# --------------------------------------------------------------------------- the sales funnel

_FUNNEL_PERIOD = {"M": "month", "Q": "quarter", "Y": "year", "W": "week"}
_STATUS_SQL = {"open": 0, "won": 1, "lost": 2, "closed won": 1, "closed lost": 2}


def _deal_relation(source: Any, con, name: str) -> tuple[str, list[str], str]:
    """FROM-clause text, column names and a name for messages of a pipeline table."""
    if isinstance(source, pd.DataFrame):
        view = f"sp_{name}_frame"
        con.register(view, source)
        rel, what = view, name
    elif isinstance(source, (str, Path)) and not (isinstance(source, str) and re.match(
            r"(?i)^\s*(select|with|from)\b", source)) and (Path(str(source)).exists() or _GLOB_CHARS.search(str(source))):
        src = _resolve_source(source, query=None, con=con)
        if src.kind == "table":
            raise SalesplanError(f"{name}: pass a table name or a SELECT with con=, not a database file.")
        opts = ", header = true" if src.kind == "csv" else ""
        rel, what = f"{src.relation}{opts})", src.name
    elif isinstance(source, str):
        if re.match(r"(?i)^\s*(select|with|from)\b", source):
            rel = f"({source})"
        else:
            rel = _ident(source.strip().strip('"'))
        what = f"{name} ({source.strip()[:60]})"
    else:
        raise SalesplanError(
            f"{name} must be a DataFrame, a CSV or Parquet path (or glob), or a table name or SELECT "
            f"of the DuckDB connection con=, got {type(source).__name__}."
        )
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
    except Exception as exc:  # duckdb raises many types
        raise _io._data_error(f"{what}: cannot read it ({type(exc).__name__}: {_io._first_line(exc)}).") from None
    return rel, cols, what


def _stage_map(con, process, sources: list[tuple[str, str, str]]) -> str:
    """A VALUES table of stage name -> code for every name the sources use; unknown names raise."""
    from salesplan import schema

    lookup = process._lookup()
    rows = []
    for rel, col, what in sources:
        seen = con.execute(f"SELECT CAST({_ident(col)} AS VARCHAR) AS s, count(*) AS n FROM {rel} GROUP BY 1").fetchall()
        missing = sum(n for s, n in seen if s is None)
        if missing:
            raise SalesplanDataError(
                f"{what}['{col}'] is missing in {missing} row(s). Every deal and history entry needs a stage; "
                "fill them or drop those rows."
            )
        unknown = [(s, n) for s, n in seen if lookup.get(schema.normalize_header(s), -1) < 0]
        if unknown:
            listed = ", ".join(f"{s!r} ({n} rows)" for s, n in unknown)
            raise SalesplanDataError(
                f"{what}['{col}'] has {len(unknown)} stage name(s) that are not in the process: {listed}. "
                f"Known stages: {list(process.names)} (also accepted as won: {list(process.won[1:])}). "
                f"Map them onto the process, e.g. (check the guesses):\n"
                f"    process = Process().with_mapping({process.mapping_template([s for s, _ in unknown])!r})"
            )
        rows += [(s, lookup[schema.normalize_header(s)]) for s, _ in seen]
    values = ", ".join(f"({_sql_str(s)}, {int(c)})" for s, c in dict(rows).items())
    return f"(SELECT * FROM (VALUES {values}) AS t(sp_name, sp_code))"


def funnel(
    opportunities: Any,
    stage_history: Any = None,
    *,
    by: str | list[str] | None = None,
    period: str | None = None,
    cohort: str = "entry",
    process: Any = None,
    level: float = 95,
    con: Any = None,
) -> pd.DataFrame:
    """The stage-by-stage funnel, counted in DuckDB.

    The same frame as :func:`salesplan.pipeline.funnel` (same reading of the
    history: skipped stages count as passed, the first entry of a stage is
    kept, entries out of order are raised, deals without history fall back to
    their current stage), with the deals counted per stage, unit and period in
    SQL: pandas only sees the counts.

    Parameters
    ----------
    opportunities, stage_history : DataFrame, path or table
        A frame, a CSV or Parquet file (or glob), or a table name or
        ``SELECT`` of the DuckDB connection ``con``.
    by : str or list of str, optional
        Columns of the opportunities (``rep_id``, ``product``...); joins with
        reps or customers stay in :func:`salesplan.pipeline.funnel`.
    period, cohort, process, level
        As in :func:`salesplan.pipeline.funnel`.
    con : duckdb connection, optional
        Where table names are looked up (default: a new in-memory database).

    Returns
    -------
    DataFrame
        ``[by..., period], stage, stage_code, entered, advanced, lost, open,
        conversion, conversion_lo, conversion_hi, won, win_rate, win_rate_lo,
        win_rate_hi, reach, entered_amount``.

    Raises
    ------
    SalesplanDataError
        Unknown or missing stage names (with a mapping to paste), missing or
        repeated opportunity ids, missing creation dates, values that are not
        dates, negative amounts, unknown status values.
    """
    import duckdb

    from salesplan._validation import check_choice
    from salesplan.pipeline._units import PERIODS, as_list
    from salesplan.pipeline.process import Process

    check_choice(cohort, ["entry", "created"], name="cohort")
    if period is not None:
        check_choice(period, list(PERIODS), name="period")
    process = process or Process()
    if not isinstance(process, Process):
        raise SalesplanError(f"process must be a salesplan.pipeline.Process, got {type(process).__name__}.")
    by = as_list(by)
    con = con if con is not None else duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    o_rel, o_cols, o_what = _deal_relation(opportunities, con, "opportunities")
    need = ["opportunity_id", "stage", "created_date"] + by
    missing = [c for c in need if c not in o_cols]
    if missing:
        raise SalesplanDataError(f"{o_what} lacks column(s) {missing} (columns: {o_cols[:30]}). Rename the CRM's "
                                 "columns, or map them in a SELECT.")
    stage_sources = [(o_rel, "stage", o_what)]
    h_rel = None
    if stage_history is not None:
        h_rel, h_cols, h_what = _deal_relation(stage_history, con, "stage_history")
        missing = [c for c in ("opportunity_id", "stage", "entered_at") if c not in h_cols]
        if missing:
            raise SalesplanDataError(f"{h_what} lacks column(s) {missing} (columns: {h_cols[:30]}).")
        stage_sources.append((h_rel, "stage", h_what))
    stages = _stage_map(con, process, stage_sources)
    k = process.n_open

    def ts(col: str) -> str:
        return f"TRY_CAST({_ident(col)} AS TIMESTAMP)"

    won, lost = k, k + 1
    from_stage = f"CASE m.sp_code WHEN {won} THEN 1 WHEN {lost} THEN 2 ELSE 0 END"
    if "status" in o_cols:
        mapping = " ".join(f"WHEN {_sql_str(s)} THEN {c}" for s, c in _STATUS_SQL.items())
        status = f"CASE lower(trim(CAST(o.status AS VARCHAR))) {mapping} END"
    else:
        status = from_stage
    amount = f"TRY_CAST(o.{_ident('amount')} AS DOUBLE)" if "amount" in o_cols else "CAST(NULL AS DOUBLE)"
    close = ts("close_date") if "close_date" in o_cols else "CAST(NULL AS TIMESTAMP)"
    by_sel = "".join(f", o.{_ident(c)} AS {_ident('u_' + c)}" for c in by)
    deals = (f"SELECT CAST(o.opportunity_id AS VARCHAR) AS id, m.sp_code AS stage_code, {status} AS status, "
             f"{from_stage} AS sp_from_stage, {ts('created_date')} AS created, {close} AS close, {amount} AS amount, "
             f"o.created_date IS NOT NULL AND {ts('created_date')} IS NULL AS sp_bad_created, "
             + (f"o.close_date IS NOT NULL AND {close} IS NULL" if "close_date" in o_cols else "false")
             + f" AS sp_bad_close{by_sel} FROM {o_rel} o JOIN {stages} m ON m.sp_name = CAST(o.stage AS VARCHAR)")
    checks = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE id IS NULL), count(*) - count(DISTINCT id) FILTER (WHERE id IS NOT NULL) "
        f"- count(*) FILTER (WHERE id IS NULL), count(*) FILTER (WHERE created IS NULL AND NOT sp_bad_created), "
        f"count(*) FILTER (WHERE sp_bad_created), count(*) FILTER (WHERE sp_bad_close), "
        f"count(*) FILTER (WHERE amount < 0), count(*) FILTER (WHERE status IS NULL), "
        f"count(*) FILTER (WHERE sp_from_stage <> 0 AND sp_from_stage <> status) FROM ({deals})"
    ).fetchone()
    n, no_id, dup, no_created, bad_created, bad_close, negative, bad_status, conflicts = (int(x) for x in checks)
    problems = [
        (n == 0, f"{o_what} has no rows."),
        (no_id, f"{o_what}['opportunity_id'] is missing in {no_id} row(s). Every deal needs an id."),
        (dup, f"{o_what}['opportunity_id'] repeats {dup} id(s). Keep one row per deal (its current state)."),
        (bad_created, f"{o_what}['created_date'] has {bad_created} value(s) that are not dates."),
        (bad_close, f"{o_what}['close_date'] has {bad_close} value(s) that are not dates."),
        (no_created, f"{o_what}['created_date'] is missing in {no_created} row(s). Every deal needs its creation date."),
        (negative, f"{o_what}['amount'] is negative in {negative} row(s). A deal's value cannot be negative; fix "
                   "the sign or drop those deals."),
        (bad_status, f"{o_what}['status'] must be open, won or lost; {bad_status} row(s) are not. Fix those values "
                     "or drop the status column (then the status follows the stage)."),
    ]
    for bad, text in problems:
        if bad:
            raise SalesplanDataError(text)
    if conflicts:
        warnings.warn(f"{conflicts} opportunit(ies) have a won or lost stage but another status; the status was kept.",
                      SalesplanDataWarning, stacklevel=2)
    if h_rel is not None:
        hist = (f"SELECT CAST(h.opportunity_id AS VARCHAR) AS id, m.sp_code AS code, {ts('entered_at')} AS t, "
                f"h.entered_at IS NULL AS sp_missing FROM {h_rel} h JOIN {stages} m ON m.sp_name = CAST(h.stage AS VARCHAR)")
        bad_t, orphans = (int(x) for x in con.execute(
            f"SELECT count(*) FILTER (WHERE t IS NULL), count(*) FILTER (WHERE id NOT IN (SELECT id FROM ({deals}))) "
            f"FROM ({hist})").fetchone())
        if bad_t:
            raise SalesplanDataError(f"{h_what}['entered_at'] is missing or not a date in {bad_t} row(s). "
                                     "Fill those dates or drop the rows.")
        if orphans:
            warnings.warn(f"stage_history has {orphans} entr(ies) of opportunities that are not in opportunities; "
                          "they were ignored.", SalesplanDataWarning, stacklevel=2)
    else:
        hist = "SELECT NULL::VARCHAR AS id, NULL::INTEGER AS code, NULL::TIMESTAMP AS t WHERE false"
        warnings.warn(f"no stage_history was given: each of the {n} opportunities falls back to its current stage "
                      "(lost deals: lost at the first stage); stage durations need the history.",
                      SalesplanDataWarning, stacklevel=2)

    unit = _FUNNEL_PERIOD.get(PERIODS.get(period or "", ""), None)
    per_expr = ("NULL" if period is None else
                f"date_trunc('{unit}', {'created' if cohort == 'created' else 'entry'})")
    by_out = "".join(f", {_ident('u_' + c)}" for c in by)
    sql = f"""
    WITH d AS ({deals}),
    h AS (SELECT h.id, h.code, h.t FROM ({hist}) h SEMI JOIN d ON d.id = h.id),
    rec AS (SELECT id, code, min(t) AS t FROM h WHERE code < {k} GROUP BY 1, 2),
    rep AS (SELECT id, code, max(t) OVER (PARTITION BY id ORDER BY code
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS t FROM rec),
    top AS (SELECT id, max(code) AS rec_top, max(t) AS last_entry FROM rec GROUP BY 1),
    term AS (SELECT id, min(t) AS t FROM h WHERE code >= {k} GROUP BY 1),
    deal AS (
        SELECT d.*, greatest(CASE WHEN d.status = 1 THEN {k - 1}
                                  ELSE greatest(coalesce(top.rec_top, -1),
                                                CASE WHEN d.stage_code < {k} THEN d.stage_code ELSE -1 END) END, 0) AS top,
               top.last_entry,
               CASE WHEN d.status <> 0 THEN coalesce(d.close, CASE WHEN term.t IS NOT NULL
                    THEN greatest(term.t, top.last_entry) END) END AS closed0
        FROM d LEFT JOIN top USING (id) LEFT JOIN term USING (id)),
    deal2 AS (
        SELECT *, CASE WHEN closed0 IS NOT NULL AND NOT closed0 < created AND closed0 < last_entry
                       THEN last_entry ELSE closed0 END AS closed_at FROM deal),
    grid AS (
        SELECT deal2.*, s.s, rep.t AS t_rec FROM deal2 CROSS JOIN range({k}) s(s)
        LEFT JOIN rep ON rep.id = deal2.id AND rep.code = s.s WHERE s.s <= deal2.top),
    -- a skipped stage: entered at the next recorded entry (or the close day), else at the last
    -- earlier one, else on creation; only the (few) skipped stages are looked up
    gaps AS (
        SELECT g.id, g.s, min(r.t) FILTER (WHERE r.code > g.s) AS sp_next,
               max(r.t) FILTER (WHERE r.code < g.s) AS sp_prev
        FROM grid g JOIN rep r ON r.id = g.id WHERE g.t_rec IS NULL GROUP BY 1, 2),
    entries AS (
        SELECT grid.*, coalesce(t_rec, least(gaps.sp_next, CASE WHEN status <> 0 THEN closed_at END),
                                gaps.sp_prev, created) AS entry
        FROM grid LEFT JOIN gaps ON gaps.id = grid.id AND gaps.s = grid.s)
    SELECT {per_expr} AS sp_period, s AS stage_code{by_out}, count(*) AS entered,
        count(*) FILTER (WHERE top > s OR status = 1) AS advanced,
        count(*) FILTER (WHERE top = s AND status = 2) AS lost,
        count(*) FILTER (WHERE top = s AND status = 0) AS open,
        count(*) FILTER (WHERE status = 1) AS won, count(*) FILTER (WHERE status = 2) AS sp_lost_all,
        sum(coalesce(amount, 0)) AS entered_amount
    FROM entries GROUP BY ALL
    """
    counts = con.execute(sql).df()
    return _funnel_frame(counts, by=by, period=period, cohort=cohort, process=process, level=level)


def _funnel_frame(counts: pd.DataFrame, *, by, period, cohort, process, level) -> pd.DataFrame:
    """The counts per (unit, period, stage), laid out and rated as salesplan.pipeline.funnel does."""
    from salesplan.pipeline.funnel import add_funnel_columns

    k = process.n_open
    ucols = ["u_" + c for c in by]
    keys = ucols + (["sp_period"] if period else [])
    counts = counts.copy()
    if period:
        counts["sp_period"] = pd.to_datetime(counts["sp_period"]).astype("datetime64[ns]")
    if keys:
        groups = counts[keys].drop_duplicates()
        groups = groups.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
    else:
        groups = pd.DataFrame(index=range(1))
    groups["sp_g"] = np.arange(len(groups))
    grid = groups.merge(pd.DataFrame({"stage_code": np.arange(k, dtype=np.int64)}), how="cross")
    cols = ["entered", "advanced", "lost", "open", "won", "sp_lost_all", "entered_amount"]
    counts["stage_code"] = counts["stage_code"].astype(np.int64)
    full = grid.merge(counts[keys + ["stage_code"] + cols], on=keys + ["stage_code"], how="left") if keys else \
        grid.merge(counts[["stage_code"] + cols], on="stage_code", how="left")
    full[cols] = full[cols].fillna(0)
    full = full.sort_values(["sp_g", "stage_code"], kind="stable").reset_index(drop=True)
    if period and cohort == "entry":
        full = full[full["entered"] > 0].reset_index(drop=True)
    out = pd.DataFrame({c: np.asarray(full["u_" + c].to_numpy(), dtype=object) for c in by}) if by else \
        pd.DataFrame(index=range(len(full)))
    if period:
        from salesplan.pipeline._units import period_start

        # in the unit salesplan.pipeline.funnel labels periods with (seconds for weeks)
        out["period"] = pd.DatetimeIndex(full["sp_period"].to_numpy()).astype(period_start(np.zeros(1), period).dtype)
    out["stage"] = np.asarray(process.stages, dtype=object)[full["stage_code"].to_numpy()]
    out["stage_code"] = full["stage_code"].to_numpy(dtype=np.int64)
    # reach: entries over those of the first stage in the same group (unit and period)
    first = full[["sp_g"]].merge(full.loc[full["stage_code"] == 0, ["sp_g", "entered"]], on="sp_g", how="left")
    first = first["entered"].fillna(0).to_numpy(dtype=np.float64)
    return add_funnel_columns(out, *(full[c].to_numpy(dtype=np.float64) for c in cols), first=first, level=level)
