"""Loading real files: CSV/TSV/text, Excel, Parquet, SQL databases and DataFrames.

Every table of :data:`salesplan.schema.TABLES` has a loader (``load_transactions``,
``load_customers``, ...), all thin wrappers over :func:`load_table`. A loader

1. reads the source (the file itself is only ever opened for reading),
2. recognises the headers: an explicit ``columns=`` mapping first, then the
   header names in :class:`salesplan.schema.Column` ``aliases`` (English and
   Chinese, compared with :func:`salesplan.schema.normalize_header`, so case,
   spaces and punctuation do not matter),
3. parses every schema column to its kind (dates in ISO, US, day-first,
   ``YYYYMMDD`` and Excel-serial forms; numbers with thousands separators,
   currency symbols, parentheses negatives and percent signs),
4. validates (required columns, unparseable values, categorical fields,
   duplicate keys) and either drops a few incomplete rows with a
   :class:`~salesplan.errors.SalesplanDataWarning` or raises one
   :class:`~salesplan.errors.SalesplanDataError` listing every problem found.

Conventions of the returned frame
---------------------------------
* Schema columns come first, in schema order, with the dtypes of
  :meth:`salesplan.schema.TableSchema.dtypes`: text is the nullable
  ``"string"`` dtype (missing values are ``pd.NA``; pandas 3's default ``"str"``
  is not used so that every loader returns the same dtype whatever the
  source), dates ``datetime64[ns]`` (time zones are dropped, keeping the wall
  time), numbers ``float64``. Optional schema columns appear only when the
  source has them (or, for ``revenue``, when they could be derived).
* ``transactions`` gains a boolean ``is_return`` column: ``True`` for lines
  with negative revenue or quantity (returns and credit notes).
* Columns that match no field are kept after the schema columns, with
  snake_case names (``"Sales Notes"`` -> ``"sales_notes"``; positional columns
  of a header-less file become ``column_<i>``); map a header to ``None`` to
  drop it.
* When two headers look like the same field (``"Sales"`` and ``"Amount"`` both
  mean revenue) the header equal to the field name wins, then the one whose
  alias comes first in the schema, then the leftmost; the other is kept as an
  extra column and a warning says so.
* Rows of a file are reset to a ``RangeIndex``; a DataFrame source keeps its
  index labels (only dropped rows disappear).
* What was done is reported in ``df.attrs["salesplan"]``; read it with
  :func:`load_report`.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import unicodedata
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import closest_matches
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.schema import (
    STAGE_SYNONYMS,
    STAGES,
    STATUS_SYNONYMS,
    STATUSES,
    TABLES,
    TARGET_LEVELS,
    TableSchema,
    get_schema,
    normalize_header,
    table_for_file_name,
)

__all__ = [
    "DataSet",
    "load_data",
    "LoadReport",
    "load_report",
    "load_table",
    "load_transactions",
    "load_customers",
    "load_opportunities",
    "load_stage_history",
    "load_reps",
    "load_targets",
    "load_feedback",
    "load_market",
    "table_for_headers",
    "recognise_file",
    "transactions_from_opportunities",
    "snake_case",
    "TEXT_EXTENSIONS",
    "EXCEL_EXTENSIONS",
    "PARQUET_EXTENSIONS",
    "SQLITE_EXTENSIONS",
]

#: File name endings read as delimited text (the delimiter is sniffed).
TEXT_EXTENSIONS = (".csv", ".tsv", ".tab", ".txt", ".dat", ".psv")
#: File name endings read with openpyxl.
EXCEL_EXTENSIONS = (".xlsx", ".xlsm")
#: File name endings read with pyarrow.
PARQUET_EXTENSIONS = (".parquet", ".pq")
#: File name endings opened as SQLite databases.
SQLITE_EXTENSIONS = (".db", ".sqlite", ".sqlite3")

#: Default share of rows that may be dropped for missing required values.
MAX_DROP_FRACTION = 0.05

_FORMATS = ("csv", "excel", "parquet", "sqlite")
_HEADER_SCAN_ROWS = 20
_SNIFF_LINES = 50

# Cells that mean "no value". Text columns keep "NA" (North America, Namibia).
_MISSING_TEXT = {"", "nan", "null", "none", "#n/a", "n/a", "<na>", "nat"}
_MISSING_VALUE = _MISSING_TEXT | {"na", "-", "--", "—", "#value!", "#null!", "#ref!", "#div/0!"}

# Category synonyms seen in CRM exports, folded with normalize_header.
_CHOICE_SYNONYMS = {
    "stage": {normalize_header(k): v for k, v in STAGE_SYNONYMS.items()},
    "status": {normalize_header(k): v for k, v in STATUS_SYNONYMS.items()},
    "level": {"total": "company", "all": "company", "salesrep": "rep", "公司": "company",
              "区域": "region", "地区": "region", "团队": "team", "销售员": "rep", "产品": "product",
              "品类": "category", "渠道": "channel"},
}
# Required fields whose empty cells keep the row (the column itself is still needed).
_MAY_BE_EMPTY = {"opportunities": ("customer_id", "rep_id", "amount", "created_date")}

_CHOICES = {
    ("opportunities", "stage"): STAGES,
    ("opportunities", "status"): STATUSES,
    ("stage_history", "stage"): STAGES,
    ("targets", "level"): TARGET_LEVELS,
}


# --------------------------------------------------------------------------- report


@dataclass
class LoadReport:
    """What a loader did: read it with :func:`load_report`.

    Attributes
    ----------
    source : str
        File name, URL or ``"DataFrame"``.
    table : str
        Table of the data model the source was loaded as.
    format : str
        ``"csv"``, ``"excel"``, ``"parquet"``, ``"sql"``, ``"duckdb"`` or ``"frame"``.
    mapping : dict
        Source header -> field name, for every recognised column (headers of a
        header-less file are their positions as strings: ``"0"``, ``"1"``...).
    extra_columns : dict
        Source header -> name of a kept column that is not in the schema.
    rows_read : int
        Data rows in the source (blank lines excluded).
    rows : int
        Rows returned.
    rows_dropped : dict
        Reason -> number of rows dropped for it.
    returns : int
        Lines recognised as returns or credit notes (transactions only).
    guest_lines : int
        Lines kept without a customer (guest checkouts; transactions only).
    guest_revenue : float
        Their revenue: counted in revenue, market and forecast analyses, left
        out of customer analyses.
    kept_missing : dict
        Required field -> number of rows kept although it is empty there
        (opportunities: amount, dates, customer or owner of an open deal).
    derived : list of str
        Columns computed from others (``"revenue = quantity * unit_price"``).
    date_formats : dict
        Date column -> the form its text was read in (``"day-first"``...).
    encoding, delimiter : str or None
        For text files, what was detected (or given).
    warnings : list of str
        Every warning issued while loading.
    """

    source: str
    table: str
    format: str = ""
    mapping: dict[str, str] = field(default_factory=dict)
    extra_columns: dict[str, str] = field(default_factory=dict)
    rows_read: int = 0
    rows: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    returns: int = 0
    guest_lines: int = 0
    guest_revenue: float = 0.0
    kept_missing: dict[str, int] = field(default_factory=dict)
    derived: list[str] = field(default_factory=list)
    date_formats: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain dict (what ``df.attrs["salesplan"]`` holds)."""
        return asdict(self)

    def summary(self) -> pd.DataFrame:
        """One row per source column: ``header``, ``field``, ``kind``.

        ``kind`` is ``"schema"`` for recognised fields and ``"extra"`` for
        kept columns that are not in the schema.
        """
        rows = [(h, f, "schema") for h, f in self.mapping.items()]
        rows += [(h, f, "extra") for h, f in self.extra_columns.items()]
        return pd.DataFrame(rows, columns=["header", "field", "kind"])


def load_report(df: pd.DataFrame) -> LoadReport:
    """The :class:`LoadReport` a salesplan loader attached to ``df``.

    Raises
    ------
    SalesplanError
        When ``df`` did not come from a salesplan loader (or lost its
        ``attrs`` in a pandas operation that does not keep them).
    """
    info = getattr(df, "attrs", {}).get("salesplan") if isinstance(df, pd.DataFrame) else None
    if not isinstance(info, dict):
        raise SalesplanError(
            "This frame carries no load report (df.attrs['salesplan'] is absent). "
            "Reports are attached by salesplan.io loaders such as load_transactions; "
            "some pandas operations drop attrs, so read the report right after loading."
        )
    known = LoadReport.__dataclass_fields__
    return LoadReport(**{k: v for k, v in info.items() if k in known})


# --------------------------------------------------------------------------- problems


class _Problems:
    """Collects every problem so that one error can list them all."""

    def __init__(self, source: str, table: str) -> None:
        self.source = source
        self.table = table
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, message: str) -> None:
        self.errors.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(f"{self.source}: {message}", SalesplanDataWarning, stacklevel=4)

    def raise_if_any(self, report: LoadReport | None = None) -> None:
        if not self.errors:
            return
        if len(self.errors) == 1:
            text = f"{self.source}: {self.errors[0]}"
        else:
            text = (
                f"{self.source} cannot be loaded as {self.table} ({len(self.errors)} problems):\n"
                + "\n".join(f"- {e}" for e in self.errors)
            )
        raise _data_error(text, self.errors, report)


def _data_error(text: str, problems: list[str] | None = None, report: LoadReport | None = None):
    err = SalesplanDataError(text)
    err.problems = list(problems) if problems else [text]  # read by the CLI
    err.report = report
    return err


class _Locator:
    """Turns row positions into the words a user can find them by."""

    def __init__(self, kind: str, first: int = 0, labels: pd.Index | None = None, sheet: str | None = None):
        self.kind = kind  # "line", "excel", "row", "label"
        self.first = first  # number of position 0 (line/row number)
        self.labels = labels
        self.sheet = sheet

    def __call__(self, positions: np.ndarray, limit: int = 5) -> str:
        positions = np.asarray(positions)
        if self.kind == "label" and self.labels is not None:
            shown = [repr(x) if isinstance(x, str) else str(x) for x in self.labels[positions[:limit]]]
            word = "row" if len(positions) == 1 else "rows"
            text = f"{word} {', '.join(shown)}"
        else:
            shown = [str(int(p) + self.first) for p in positions[:limit]]
            if self.kind == "line":
                word = "line" if len(positions) == 1 else "lines"
            elif self.kind == "excel":
                word = "Excel row" if len(positions) == 1 else "Excel rows"
            else:
                word = "data row" if len(positions) == 1 else "data rows"
            text = f"{word} {', '.join(shown)}"
        if len(positions) > limit:
            text += f" (and {len(positions) - limit} more)"
        if self.kind == "excel" and self.sheet is not None:
            text += f" of sheet {self.sheet!r}"
        return text


# --------------------------------------------------------------------------- reading


@dataclass
class _Raw:
    """A source read as-is: headers untouched, cells not parsed yet."""

    frame: pd.DataFrame
    headers: list[Any]  # header cell per column (positions when there is no header)
    locate: _Locator
    source: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    blank_rows: int = 0
    positional: bool = False


def _source_name(source: Any) -> str:
    if isinstance(source, (str, Path)):
        text = str(source)
        if "://" in text:
            # Never echo a password of a database URL.
            return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", text)
        return Path(text).name or text
    if isinstance(source, pd.DataFrame):
        return "DataFrame"
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return Path(name).name
    return type(source).__name__


def _is_url(text: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://", text) is not None


def _read_source(
    source: Any,
    *,
    table: TableSchema,
    positional: bool,
    query: str | None,
    sheet_name: Any,
    encoding: str | None,
    delimiter: str | None,
    format: str | None,
    columns: dict | None = None,
) -> _Raw:
    name = _source_name(source)
    if isinstance(source, pd.DataFrame):
        return _Raw(
            frame=source.copy(deep=False),  # copy-on-write: the caller's frame is never changed
            headers=list(source.columns),
            locate=_Locator("label", labels=source.index),
            source=name,
            format="frame",
            positional=positional,
        )
    if _is_duckdb(source):
        return _read_duckdb(source, query=query, table=table)
    if _is_sqlalchemy(source):
        return _read_sql(source, query=query, table=table, name=name)
    if isinstance(source, str) and _is_url(source):
        return _read_sql(source, query=query, table=table, name=name)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise _data_error(
                f"File not found: {str(path)!r} (looked in {Path.cwd()}). Check the path and the "
                "file name; pass an absolute path if the notebook runs from another folder."
            )
        if path.is_dir():
            raise _data_error(f"{str(path)!r} is a folder, not a file. Pass the path of one file in it.")
        fmt = format or _format_from_name(path.name)
        if fmt == "sqlite":
            return _read_sql(f"sqlite:///{path.resolve()}", query=query, table=table, name=name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _data_error(f"{name}: cannot read the file ({exc.strerror or exc}). "
                              "Check that it exists, is not open exclusively in another program, "
                              "and that you may read it.") from None
    elif isinstance(source, (bytes, bytearray)):
        data, fmt = bytes(source), format
    elif hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
            encoding = encoding or "utf-8"
        fmt = format
    else:
        raise SalesplanError(
            f"Cannot load from a {type(source).__name__}. Pass a file path, a pandas DataFrame, "
            "a SQLAlchemy URL string such as 'sqlite:///sales.db' (with query=), "
            "a DuckDB connection with query=, or bytes / a file object with format=."
        )
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise _data_error(f"{name}: the gzip file is damaged ({exc}).") from None
    if fmt is None:
        fmt = _format_from_bytes(data)
    if fmt not in _FORMATS:
        raise SalesplanError(f"format must be one of {list(_FORMATS)} or None, got {fmt!r}.")
    if fmt == "excel":
        return _read_excel(data, name=name, table=table, positional=positional, sheet_name=sheet_name)
    if fmt == "parquet":
        return _read_parquet(data, name=name)
    if fmt == "sqlite":
        raise SalesplanError("SQLite databases must be given as a path or a 'sqlite:///...' URL.")
    return _read_text(data, name=name, table=table, positional=positional, encoding=encoding,
                      delimiter=delimiter, columns=columns)


def _format_from_name(filename: str) -> str:
    lower = filename.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    suffix = Path(lower).suffix
    if suffix in TEXT_EXTENSIONS:
        return "csv"
    if suffix in EXCEL_EXTENSIONS:
        return "excel"
    if suffix in PARQUET_EXTENSIONS:
        return "parquet"
    if suffix in SQLITE_EXTENSIONS:
        return "sqlite"
    if suffix == ".xls":
        raise _data_error(
            f"{filename}: old-style Excel .xls files are not supported. Open it in Excel (or "
            "LibreOffice) and save it as .xlsx or .csv."
        )
    known = TEXT_EXTENSIONS + EXCEL_EXTENSIONS + PARQUET_EXTENSIONS + SQLITE_EXTENSIONS
    raise _data_error(
        f"{filename}: unknown file extension {suffix or '(none)'!r}. Supported: {', '.join(known)}. "
        "If it is a delimited text file, pass format='csv' (or 'excel', 'parquet')."
    )


def _format_from_bytes(data: bytes) -> str:
    if data[:4] == b"PK\x03\x04":
        return "excel"
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:16] == b"SQLite format 3\x00":
        return "sqlite"
    return "csv"


# ----- text


def _decode(data: bytes, encoding: str | None, name: str) -> tuple[str, str]:
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise SalesplanError(f"Unknown encoding {encoding!r}. Use e.g. 'utf-8', 'gb18030', 'cp1252'.") from None
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            others = [e for e in ("utf-8", "gb18030", "cp1252") if e != encoding.lower()]
            raise _data_error(
                f"{name}: the file is not valid {encoding} (byte {exc.start}, line {line}). "
                f"Leave encoding=None to detect it, or try "
                + " or ".join(f"encoding={e!r}" for e in others) + "."
            ) from None
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for enc in ("utf-8", "gb18030", "cp1252"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _split_line(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:  # runs of whitespace, honouring double quotes as pandas does
        try:
            return next(csv.reader([line.strip().replace("\t", " ")], delimiter=" ", skipinitialspace=True))
        except (csv.Error, StopIteration):
            return line.split()
    try:
        return next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))
    except (csv.Error, StopIteration):
        return line.split(delimiter)


def _sniff_delimiter(lines: list[str]) -> str | None:
    """The delimiter that splits the sample lines most consistently (None: whitespace)."""
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return ","
    best, best_score = None, (0.0, 0)
    for delim in (",", "\t", ";", "|"):
        counts = [len(_split_line(ln, delim)) for ln in lines]
        values, freq = np.unique(counts, return_counts=True)
        mode = int(values[np.argmax(freq)])
        if mode < 2:
            continue
        score = (float(freq.max()) / len(lines), mode)
        if score > best_score:
            best, best_score = delim, score
    if best is not None and best_score[0] >= 0.5:
        return best
    counts = [len(ln.split()) for ln in lines]
    values, freq = np.unique(counts, return_counts=True)
    if int(values[np.argmax(freq)]) >= 2:
        return None
    return best or ","


def _head_lines(text: str, n: int) -> list[str]:
    """The first ``n`` lines, without splitting a whole large file."""
    end = -1
    for _ in range(n):
        end = text.find("\n", end + 1)
        if end < 0:
            return text.splitlines()
    return text[:end].splitlines()


def _has_blank_line(text: str) -> bool:
    # Lines of only spaces are not caught here; pyarrow then sees a short row and the C reader
    # takes over, so line numbers stay right either way.
    end = text.find("\n")
    return not text[: end if end >= 0 else len(text)].strip() or "\n\n" in text or "\n\r\n" in text


def _read_text(data, *, name, table, positional, encoding, delimiter, columns) -> _Raw:
    text, enc = _decode(data, encoding, name)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise _data_error(f"{name}: the file is empty. Export the data again, with a header line "
                          "and at least one row.")
    head = _head_lines(text, max(_SNIFF_LINES, _HEADER_SCAN_ROWS))
    if delimiter is None:
        delim = _sniff_delimiter(head[:_SNIFF_LINES])
    else:
        delim = None if delimiter in (" ", r"\s+", "whitespace") else delimiter
    header_line = None
    if not positional:
        rows = [_split_line(ln, delim) if ln.strip() else [] for ln in head[:_HEADER_SCAN_ROWS]]
        header_line = _pick_header_row(rows, table)
    skip = 0 if header_line is None else header_line + 1
    if header_line is None:
        width = max((len(_split_line(ln, delim)) for ln in head[:_SNIFF_LINES] if ln.strip()), default=1)
        headers: list[Any] = list(range(width))
    else:
        headers = [h.strip() for h in _split_line(head[header_line], delim)]
        width = max(len(headers), 1)
        headers += [""] * (width - len(headers))
    # Text, codes and dates are read as text (leading zeros, YYYYMMDD); only the columns
    # that will be numbers are left to the fast native number parser.
    numeric = _numeric_positions(headers, table, columns)
    dtypes = {pos: str for pos in range(width) if pos not in numeric}
    frame = None
    if delim is not None and len(delim) == 1 and not _has_blank_line(text):
        raw_utf8 = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        encoded = raw_utf8 if enc in ("utf-8", "utf-8-sig") else text.encode("utf-8")
        frame = _read_csv_arrow(encoded, delim=delim, width=width, skip=skip, dtypes=dtypes)
    if frame is None:
        frame = _read_csv_c(text, name=name, delim=delim, width=width, skip=skip, dtypes=dtypes)
    if frame.shape[1] == 0:
        frame = pd.DataFrame(columns=range(width))
    frame.columns = range(frame.shape[1])
    return _Raw(
        frame=frame, headers=headers, locate=_Locator("line", first=skip + 1), source=name,
        format="csv", encoding=enc, delimiter=_delim_name(delim), positional=header_line is None,
    )


def _read_csv_arrow(encoded: bytes, *, delim, width, skip, dtypes) -> pd.DataFrame | None:
    """pyarrow's reader (several times faster on text columns); None when it cannot read the text
    exactly as the C reader would, which then explains the problem."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [str(i) for i in range(width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(encoded),
            read_options=pacsv.ReadOptions(skip_rows=skip, column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=delim),
            convert_options=pacsv.ConvertOptions(
                column_types={names[p]: pa.string() for p in dtypes}, null_values=[""],
                strings_can_be_null=True, quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError):
        return None  # ragged rows, quoted newlines, odd quoting...
    for name, typ in zip(table.column_names, table.schema.types):
        if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_string(typ)
                or pa.types.is_large_string(typ) or pa.types.is_null(typ)):
            return None  # e.g. a number column that pyarrow took for timestamps or booleans
    mapper = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}.get
    frame = table.to_pandas(types_mapper=mapper)
    frame.columns = range(width)
    for pos in range(width):
        if frame[pos].dtype == object:  # all-null columns
            frame[pos] = frame[pos].astype(pd.StringDtype("pyarrow"))
    return frame


def _read_csv_c(text, *, name, delim, width, skip, dtypes) -> pd.DataFrame:
    # The header (or the widest sampled line) fixes the number of fields: shorter rows are
    # padded with missing cells, longer ones are an error naming their line.
    kwargs: dict[str, Any] = dict(
        header=None, names=range(width), index_col=False, dtype=dtypes, keep_default_na=False,
        na_values=[""], skip_blank_lines=False, skiprows=skip,
    )
    if delim is None:
        kwargs["sep"] = r"\s+"
    else:
        kwargs.update(sep=delim, skipinitialspace=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), **kwargs)
        if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
            # pandas drops the surplus fields of a long first row with only a warning.
            for number, line in enumerate(text.splitlines()[skip:], start=skip + 1):
                fields = len(_split_line(line, delim)) if line.strip() else 0
                if fields > width:
                    raise pd.errors.ParserError(f"Expected {width} fields in line {number}, saw {fields}")
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=range(width))
    except (pd.errors.ParserError, ValueError, IndexError, csv.Error) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
        if m:
            line = int(m.group(2))  # pandas counts file lines, skipped ones included
            msg = (f"line {line} has {m.group(3)} fields where {m.group(1)} were expected "
                   f"(delimiter {_delim_name(delim)!s})")
        raise _data_error(
            f"{name}: the file cannot be read as delimited text: {msg}. Check the delimiter and "
            "quoting (a field containing the delimiter must be in double quotes), or pass "
            "delimiter=',' (';', '\\t', ' ') to choose it."
        ) from None
    return frame


def _numeric_positions(headers: list[Any], table: TableSchema, columns: dict | None) -> set[int]:
    """Positions of the columns that the mapping will send to number fields."""
    kinds = {c.name: c.kind for c in table.columns}
    out: set[int] = set()
    explicit: set[int] = set()
    folded = [normalize_header(h) if isinstance(h, str) else None for h in headers]
    for key, target in (columns or {}).items():
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            pos = int(key) if 0 <= key < len(headers) else None
        else:
            hits = [i for i, h in enumerate(headers) if h == key] or \
                [i for i, f in enumerate(folded) if f == normalize_header(key)]
            pos = hits[0] if hits else None
        if pos is None:
            continue
        explicit.add(pos)
        if kinds.get(target) in ("float", "int"):
            out.add(pos)
    lookup = _alias_lookup(table)
    for pos, f in enumerate(folded):
        if pos not in explicit and f is not None and f in lookup and kinds[lookup[f][0]] in ("float", "int"):
            out.add(pos)
    return out


def _delim_name(delim: str | None) -> str:
    return {None: "whitespace", "\t": "tab", ",": "','", ";": "';'", "|": "'|'"}.get(delim, repr(delim))


def _pick_header_row(rows: list[list[Any]], table: TableSchema) -> int:
    """Index of the row that looks most like a header (title lines above it are skipped)."""
    lookup = _alias_lookup(table)
    best, best_score = None, 0
    for i, row in enumerate(rows):
        cells = [c for c in row if c is not None and str(c).strip() and not _is_missing_cell(c)]
        if not cells:
            continue
        if best is None:
            best = i
        score = len({lookup[k][0] for c in cells if (k := normalize_header(c)) in lookup})
        if score > best_score:
            best, best_score = i, score
        if best_score >= len(table.required):
            break
    return 0 if best is None else best


def _is_missing_cell(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# ----- excel, parquet, sql


def _read_excel(data, *, name, table, positional, sheet_name) -> _Raw:
    try:
        book = pd.ExcelFile(io.BytesIO(data), engine="openpyxl")
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise _data_error(f"{name}: cannot open the Excel workbook ({type(exc).__name__}: {exc}). "
                          "Check that it is an .xlsx file; re-save it from Excel if it is damaged.") from None
    sheets = book.sheet_names
    if isinstance(sheet_name, int):
        if not 0 <= sheet_name < len(sheets):
            raise _data_error(f"{name}: there is no sheet number {sheet_name}; the workbook has "
                              f"{len(sheets)} sheet(s): {sheets}. Pass sheet_name= one of those.")
        sheet = sheets[sheet_name]
    else:
        if sheet_name not in sheets:
            near = closest_matches(str(sheet_name), sheets)
            hint = f" Closest: {near}." if near else ""
            raise _data_error(f"{name}: there is no sheet {sheet_name!r}; sheets: {sheets}.{hint} "
                              "Pass sheet_name= one of those (or its position, 0 for the first).")
        sheet = sheet_name
    try:
        frame = pd.read_excel(book, sheet_name=sheet, header=None, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise _data_error(f"{name}: cannot read sheet {sheet!r} ({type(exc).__name__}: {exc}).") from None
    if frame.empty:
        raise _data_error(f"{name}: sheet {sheet!r} is empty. Choose the sheet with the data "
                          f"(sheets: {sheets}) with sheet_name=.")
    header_row = None
    if not positional:
        rows = frame.head(_HEADER_SCAN_ROWS).astype(object).values.tolist()
        header_row = _pick_header_row(rows, table)
    if header_row is None:
        headers: list[Any] = list(range(frame.shape[1]))
        body = frame
        first = 1
    else:
        headers = ["" if _is_missing_cell(h) else str(h).strip() for h in frame.iloc[header_row]]
        body = frame.iloc[header_row + 1:]
        first = header_row + 2
    body = body.reset_index(drop=True).infer_objects()
    body.columns = range(body.shape[1])
    return _Raw(frame=body, headers=headers, locate=_Locator("excel", first=first, sheet=sheet),
                source=name, format="excel", sheet=sheet, positional=header_row is None)


def _read_parquet(data, *, name) -> _Raw:
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        raise _data_error(f"{name}: cannot read the Parquet file ({type(exc).__name__}: {exc}). "
                          "Check that it is a complete Parquet file.") from None
    return _whole_frame(frame, source=name, format="parquet")


def _whole_frame(frame: pd.DataFrame, *, source: str, format: str) -> _Raw:
    """A frame read whole from a columnar source (Parquet, SQL, DuckDB): headers are its column names."""
    headers = list(frame.columns)
    frame = frame.reset_index(drop=True)
    frame.columns = range(frame.shape[1])
    return _Raw(frame=frame, headers=headers, locate=_Locator("row", first=1), source=source, format=format)


def _first_line(exc: Exception) -> str:
    """The first line of an exception's message (drivers add SQL and hints below), else its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_duckdb(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] in ("duckdb", "_duckdb") and hasattr(obj, "execute")


def _is_sqlalchemy(obj: Any) -> bool:
    return type(obj).__module__.startswith("sqlalchemy.") and (hasattr(obj, "connect") or hasattr(obj, "execute"))


_IDENTIFIER = re.compile(r'^\s*("?[\w$]+"?\.)?"?[\w$ ]+"?\s*$')


def _choose_table(tables: list[str], query: str | None, table: TableSchema, name: str) -> str:
    if query is not None:
        return query
    if len(tables) == 1:
        return tables[0]
    for t in tables:
        if t.lower() == table.name:
            return t
    raise _data_error(
        f"{name}: say which table to read: the database has "
        f"{len(tables)} table(s) {tables[:20]} and none is called {table.name!r}. "
        f"Pass query='SELECT ... FROM ...' or a table name, e.g. query={tables[0]!r}."
        if tables else f"{name}: the database has no tables. Check the URL or path."
    )


def _read_sql(source, *, query, table, name) -> _Raw:
    import sqlalchemy as sa

    owned = False
    if isinstance(source, str):
        m = re.match(r"^sqlite(\+\w+)?:///(.+)$", source)
        if m and m.group(2) != ":memory:" and not Path(m.group(2).split("?")[0]).exists():
            # SQLite would silently create an empty database file.
            raise _data_error(f"Database file not found: {m.group(2)!r} (from URL {name!r}). "
                              "Check the path; an absolute path needs four slashes: sqlite:////abs/path.db.")
        try:
            engine = sa.create_engine(source)
        except Exception as exc:
            raise _data_error(f"{name}: not a usable database URL ({type(exc).__name__}: {exc}). "
                              "Use e.g. 'sqlite:///sales.db' or 'postgresql://user@host/db'; the "
                              "database driver must be installed.") from None
        owned = True
    else:
        engine = source
    try:
        if query is None:
            inspector = sa.inspect(engine)
            query = _choose_table(inspector.get_table_names(), None, table, name)
        if _IDENTIFIER.match(query) and not re.match(r"(?i)^\s*(select|with|values|table)\b", query):
            tname = query.strip().strip('"')
            frame = pd.read_sql_query(sa.text(f'SELECT * FROM "{tname}"') if "." not in tname
                                      else sa.text(f"SELECT * FROM {query}"), engine)
            source_desc = f"table {tname!r}"
        else:
            frame = pd.read_sql_query(sa.text(query), engine)
            source_desc = "query"
    except SalesplanError:
        raise
    except Exception as exc:
        raise _data_error(f"{name}: the database query failed: {_first_line(exc)}. Check the table "
                          "name or the SQL in query=.") from None
    finally:
        if owned:
            engine.dispose()
    return _whole_frame(frame, source=f"{name} ({source_desc})", format="sql")


def _read_duckdb(con, *, query, table) -> _Raw:
    try:
        if query is None:
            tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
            query = _choose_table(tables, None, table, "DuckDB connection")
        if _IDENTIFIER.match(query) and not re.match(r"(?i)^\s*(select|with|values|table|from)\b", query):
            frame = con.execute(f'SELECT * FROM "{query.strip().strip(chr(34))}"').df()
            desc = f"table {query.strip()!r}"
        else:
            frame = con.execute(query).df()
            desc = "query"
    except SalesplanError:
        raise
    except Exception as exc:
        raise _data_error(f"DuckDB connection: the query failed: {_first_line(exc)}. Check the table "
                          "name or the SQL in query=.") from None
    return _whole_frame(frame, source=f"DuckDB ({desc})", format="duckdb")


# --------------------------------------------------------------------------- mapping


_ALIAS_CACHE: dict[str, dict[str, tuple[str, int]]] = {}


def _alias_lookup(table: TableSchema) -> dict[str, tuple[str, int]]:
    """Normalised header -> (field, preference); preference 0 is the field name itself."""
    if table.name not in _ALIAS_CACHE:
        lookup: dict[str, tuple[str, int]] = {}
        for col in table.columns:
            lookup.setdefault(normalize_header(col.name), (col.name, 0))
        for col in table.columns:
            for i, alias in enumerate(col.aliases, start=1):
                lookup.setdefault(normalize_header(alias), (col.name, i))
        _ALIAS_CACHE[table.name] = lookup
    return _ALIAS_CACHE[table.name]


def snake_case(header: Any) -> str:
    """A header as a snake_case column name.

    >>> snake_case("  Sales Notes (internal) ")
    'sales_notes_internal'
    >>> snake_case("备注")
    '备注'
    """
    text = unicodedata.normalize("NFKC", str(header)).strip().lower()
    text = re.sub(r"[^\w]+", "_", text).strip("_")
    return text or "column"


@dataclass
class _Mapping:
    fields: dict[int, str]  # column position -> field
    extras: dict[int, str]  # column position -> kept name
    dropped: list[int]


def _resolve_mapping(raw: _Raw, table: TableSchema, columns: dict | None, problems: _Problems) -> _Mapping:
    headers = raw.headers
    labels = [str(h) for h in headers]
    fields: dict[int, str] = {}
    dropped: list[int] = []
    explicit: set[int] = set()
    for key, target in (columns or {}).items():
        pos = _find_header(key, headers, raw, problems)
        if pos is None:
            continue
        explicit.add(pos)
        if target is None:
            dropped.append(pos)
            continue
        if target not in table.names:
            near = closest_matches(str(target), table.names)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            problems.error(
                f"columns={{{key!r}: {target!r}}}: {target!r} is not a field of {table.name}.{hint} "
                f"Fields: {', '.join(table.names)} (map a header to None to drop it)."
            )
            continue
        if target in fields.values():
            other = next(labels[p] for p, f in fields.items() if f == target)
            problems.error(f"columns= maps both {other!r} and {labels[pos]!r} to {target!r}; map only one of them.")
            continue
        fields[pos] = target
    lookup = _alias_lookup(table)
    candidates: dict[str, list[tuple[int, int]]] = {}
    for pos, header in enumerate(headers):
        if pos in explicit or isinstance(header, (int, np.integer)):
            continue
        hit = lookup.get(normalize_header(header))
        if hit is None or hit[0] in fields.values():
            continue
        candidates.setdefault(hit[0], []).append((hit[1], pos))
    for fname, options in candidates.items():
        options.sort()
        fields[options[0][1]] = fname
        for _, pos in options[1:]:
            problems.warn(
                f"headers {labels[options[0][1]]!r} and {labels[pos]!r} both look like {fname!r}; "
                f"used {labels[options[0][1]]!r} and kept {labels[pos]!r} as an extra column. "
                f"To use the other, pass columns={{{labels[pos]!r}: {fname!r}}}."
            )
    extras: dict[int, str] = {}
    taken = set(fields.values())
    for pos, header in enumerate(headers):
        if pos in fields or pos in dropped:
            continue
        unnamed = isinstance(header, (int, np.integer)) or not str(header).strip() \
            or str(header).startswith("Unnamed: ")
        if unnamed and raw.frame.iloc[:, pos].isna().all():
            dropped.append(pos)  # trailing delimiters and empty spreadsheet columns
            continue
        base = f"column_{pos}" if unnamed else snake_case(header)
        name, k = base, 2
        while name in taken or name in ("is_return",):
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        extras[pos] = name
    return _Mapping(fields=fields, extras=extras, dropped=dropped)


def _find_header(key: Any, headers: list[Any], raw: _Raw, problems: _Problems) -> int | None:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if 0 <= key < len(headers):
            return int(key)
        problems.error(f"columns= refers to column position {key}, but the source has "
                       f"{len(headers)} column(s) (positions 0..{len(headers) - 1}).")
        return None
    for pos, h in enumerate(headers):
        if isinstance(h, str) and h == key:
            return pos
    wanted = normalize_header(key)
    for pos, h in enumerate(headers):
        if normalize_header(h) == wanted and not isinstance(h, (int, np.integer)):
            return pos
    found = [str(h) for h in headers]
    near = closest_matches(str(key), found)
    hint = f" Closest: {', '.join(map(repr, near))}." if near else ""
    extra = (" The source has no header line, so use positions: columns={0: 'customer_id', ...}."
             if raw.positional else "")
    problems.error(f"columns= names header {key!r}, which is not in the source. Headers found: "
                   f"{found[:30]}.{hint}{extra}")
    return None


# --------------------------------------------------------------------------- parsing


def _as_text(values: pd.Series) -> pd.Series:
    """Cells as stripped text (``"string"`` dtype), missing as NA; numbers without ``.0``."""
    if pd.api.types.is_bool_dtype(values):
        out = values.astype("string")
    elif pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if len(finite) and np.all(np.isfinite(finite)) and np.all(np.mod(finite, 1) == 0) \
                and finite.abs().max() < 2**53:
            out = values.astype("Int64").astype("string")
        else:
            out = values.astype("string")
    elif pd.api.types.is_numeric_dtype(values):
        out = values.astype("string")
    elif pd.api.types.is_datetime64_any_dtype(values):
        out = values.dt.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "", regex=False)
        out = out.astype("string")
    elif values.dtype == object:
        out = values.map(_cell_text, na_action="ignore").astype("string")
    else:
        out = values.astype("string")
    return out.str.strip()


def _cell_text(value: Any) -> Any:
    if isinstance(value, float):
        if value != value:
            return pd.NA
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, (pd.Timestamp,)) or hasattr(value, "isoformat"):
        text = value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
        return text[:-9] if text.endswith(" 00:00:00") else text
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _case_variants(tokens: set[str]) -> list[str]:
    out = set()
    for t in tokens:
        out.update({t, t.upper(), t.title(), t.capitalize()})
    return sorted(out | {"NaN", "NaT", "<NA>", "N/a"})


_MISSING_TEXT_CASES = _case_variants(_MISSING_TEXT)
_MISSING_VALUE_CASES = _case_variants(_MISSING_VALUE)


def _missing_mask(text: pd.Series, tokens: set[str]) -> pd.Series:
    # isin on case variants: lower-casing a million cells first costs more than the lookup.
    variants = _MISSING_TEXT_CASES if tokens is _MISSING_TEXT else (
        _MISSING_VALUE_CASES if tokens is _MISSING_VALUE else _case_variants(tokens))
    return text.isna() | text.isin(variants)


_CURRENCY = re.compile(
    r"(?i)(?:RMB|CNY|USD|EUR|GBP|HKD|JPY|CHF|US\$|HK\$|NT\$|R\$|A\$|C\$|[¥￥$€£₹₩]|元|円)"
)


def _parse_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Numbers as float64; returns (numbers, bad mask, missing mask)."""
    if pd.api.types.is_bool_dtype(values) or (pd.api.types.is_numeric_dtype(values)
                                              and not pd.api.types.is_complex_dtype(values)):
        out = pd.Series(pd.to_numeric(values, errors="coerce"), index=values.index).astype("float64")
        missing = out.isna().to_numpy()
        return out, np.zeros(len(out), dtype=bool), missing
    text = _as_text(values)
    missing = _missing_mask(text, _MISSING_VALUE).to_numpy(dtype=bool)
    text = text.mask(missing)
    nums = _fast_float(text)
    todo = nums.isna().to_numpy() & ~missing
    if todo.any():
        nums.loc[todo] = _clean_numbers(text[todo]).to_numpy()
    bad = nums.isna().to_numpy() & ~missing
    # inf from "1e999" is junk for money
    inf = np.isinf(nums.to_numpy())
    if inf.any():
        bad |= inf
        nums = nums.mask(inf)
    return nums, bad, missing


# The most common export format, "$1,234.50" / "-¥1,234": parsed without a Python loop.
# ([0-9] rather than \d keeps these in pyarrow's RE2: pandas runs \d through Python's re.)
_RE_US_MONEY = r"^[-+]?[ ]?[$¥￥€£]?[ ]?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)([.][0-9]+)?$"
_RE_FLOAT = r"^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$"


def _fast_float(text: pd.Series) -> pd.Series:
    """Plain numbers ("12", "-3.5e2") as float64 and NaN elsewhere, in pyarrow (no Python loop)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(text.astype(pd.StringDtype("pyarrow")))
    plain = pc.fill_null(pc.match_substring_regex(arr, _RE_FLOAT), False)
    try:
        values = pc.cast(pc.if_else(plain, arr, pa.scalar(None, pa.string())), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.Series(pd.to_numeric(text, errors="coerce"), index=text.index).astype("float64")
    return pd.Series(values.to_numpy(zero_copy_only=False), index=text.index, dtype="float64")


def _clean_numbers(text: pd.Series) -> pd.Series:
    """Parse the cells plain ``to_numeric`` could not."""
    text = text.astype("string")
    out = pd.Series(np.nan, index=text.index, dtype="float64")
    common = text.str.match(_RE_US_MONEY, na=False).to_numpy()
    if common.any():
        stripped = text[common].str.replace(r"[$¥￥€£, ]", "", regex=True)
        out[common] = _fast_float(stripped).to_numpy()
    rest = ~common
    if rest.any():
        # Everything else one distinct value at a time (few distinct values in practice).
        codes, uniques = pd.factorize(text[rest], use_na_sentinel=True)
        parsed = np.array([_clean_number(str(u)) for u in uniques] + [np.nan], dtype="float64")
        out[rest] = parsed[codes]
    return out


_RE_PLAIN = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_RE_EURO = re.compile(r"^[-+]?\d{1,3}(\.\d{3})*,\d+$")
_RE_US = re.compile(r"^[-+]?\d{1,3}(,\d{3})*\.\d*$")
_RE_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+$")
_RE_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+$")
_RE_DOTTED = re.compile(r"^[-+]?\d{1,3}(\.\d{3}){2,}$")


def _clean_number(text: str) -> float:
    """``"¥1,234.50"`` -> 1234.5, ``"(50)"`` -> -50, ``"12%"`` -> 0.12; NaN when not a number.

    Separators: with both ``,`` and ``.`` the last one is the decimal mark
    (``1.234,5`` and ``1,234.5``); a lone ``,`` followed by groups of three
    digits is a thousands separator (``1,234``), otherwise a decimal comma
    (``2,5``); several ``.`` groups of three are thousands (``1.234.567``).
    """
    t = unicodedata.normalize("NFKC", text).strip()
    negative = False
    if len(t) > 2 and t[0] == "(" and t[-1] == ")":
        negative, t = True, t[1:-1]
    t = _CURRENCY.sub("", t)
    t = re.sub(r"[\s'’_]", "", t)
    if len(t) > 1 and t.endswith("-") and t[-2].isdigit() and "-" not in t[:-1]:
        negative, t = True, t[:-1]  # SAP-style trailing minus
    percent = t.endswith("%")
    if percent:
        t = t[:-1]
    if "," in t and "." in t:
        if _RE_EURO.match(t):
            t = t.replace(".", "").replace(",", ".")
        elif _RE_US.match(t):
            t = t.replace(",", "")
        else:
            return np.nan
    elif "," in t:
        if _RE_THOUSANDS.match(t):
            t = t.replace(",", "")
        elif _RE_DECIMAL_COMMA.match(t):
            t = t.replace(",", ".")
        else:
            return np.nan
    elif _RE_DOTTED.match(t):
        t = t.replace(".", "")
    if not _RE_PLAIN.match(t):
        return np.nan
    value = float(t)
    if percent:
        value /= 100.0
    return -abs(value) if negative else value


_NS_MIN = pd.Timestamp("1677-09-22")
_NS_MAX = pd.Timestamp("2262-04-11")


def _parse_dates(
    values: pd.Series, *, dayfirst: bool | None
) -> tuple[pd.Series, np.ndarray, np.ndarray, str, str | None]:
    """Dates as datetime64[ns].

    Returns (dates, bad mask, missing mask, form, ambiguity warning or None).
    """
    index = values.index
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
        out = out.astype("datetime64[ns]")
        missing = out.isna().to_numpy()
        return out, np.zeros(len(out), dtype=bool), missing, "datetime", None
    text = _as_text(values)
    missing = _missing_mask(text, _MISSING_VALUE).to_numpy(dtype=bool)
    text = text.mask(missing)
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    parsed, form, note = _parse_unique_dates(pd.Index(uniques, dtype=object), dayfirst)
    parsed_arr = np.append(parsed.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))
    out = pd.Series(parsed_arr[codes], index=index)  # code -1 (missing) takes the trailing NaT
    bad = out.isna().to_numpy() & ~missing
    return out, bad, missing, form, note


_RE_ISO_FAST = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?$"
_RE_YMD8 = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_RE_YM6 = re.compile(r"^(\d{4})(\d{2})$")
_RE_Y4 = re.compile(r"^\d{4}$")
_RE_SERIAL = re.compile(r"^\d{5}(\.\d+)?$")
_RE_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})([T ].*)?$")
_RE_YM = re.compile(r"^(\d{4})[-/.](\d{1,2})$")
_RE_YQ = re.compile(r"^(\d{4})\s*-?\s*[Qq]([1-4])$")
_RE_DMY = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})[-/.](\d{2}|\d{4})([T ].*)?$")
_RE_CJK_DATE = re.compile(r"(\d)\s*[年月]\s*")
_RE_CJK_DAY = re.compile(r"(\d)\s*[日号]")


def _parse_unique_dates(uniq: pd.Index, dayfirst: bool | None) -> tuple[pd.Series, str, str | None]:
    """Parse distinct date texts; returns (dates, forms seen, ambiguity note or None).

    Each value is recognised by its shape (ISO, YYYYMMDD, Excel serial,
    DD/MM/YYYY or MM/DD/YYYY...) and rewritten as ISO text, which pandas then
    parses in one vectorised call. The day/month order of the slashed form is
    decided for the whole column. Values of a known shape that fail stay
    unparsed rather than being guessed at by a looser parser.
    """
    n = len(uniq)
    if n == 0:
        return pd.Series([], dtype="datetime64[ns]"), "empty", None
    s = pd.Series(uniq.astype(str), dtype="string")
    if s.str.match(_RE_ISO_FAST, na=False).all():  # the common case, kept vectorised
        return _to_ns(_iso(s)).reset_index(drop=True), "ISO", None
    iso: list[str | None] = [None] * n
    serial: dict[int, float] = {}
    rest: list[int] = []
    dmy: list[tuple[int, re.Match]] = []
    forms: list[str] = []
    for i, raw in enumerate(s.tolist()):
        t = _RE_CJK_DAY.sub(r"\1", _RE_CJK_DATE.sub(r"\1-", unicodedata.normalize("NFKC", raw)))
        t = t.strip().rstrip("-")
        if m := _RE_YMD8.match(t):
            iso[i], form = f"{m[1]}-{m[2]}-{m[3]}", "YYYYMMDD"
        elif m := _RE_YM6.match(t):
            iso[i], form = f"{m[1]}-{m[2]}-01", "YYYYMM"
        elif _RE_Y4.match(t):
            iso[i] = f"{t}-01-01" if 1900 <= int(t) <= 2100 else None
            form = "year"
        elif _RE_SERIAL.match(t):
            value = float(t)
            if 10000 <= value <= 80000:
                serial[i] = value
            form = "Excel serial"
        elif m := _RE_ISO.match(t):
            iso[i], form = f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}{m[4] or ''}", "ISO"
        elif m := _RE_YM.match(t):
            iso[i], form = f"{m[1]}-{int(m[2]):02d}-01", "year-month"
        elif m := _RE_YQ.match(t):
            iso[i], form = f"{m[1]}-{(int(m[2]) - 1) * 3 + 1:02d}-01", "quarter"
        elif m := _RE_DMY.match(t):
            dmy.append((i, m))
            continue
        else:
            rest.append(i)
            continue
        forms.append(form)
    note = None
    if dmy:
        first = [int(m[1]) for _, m in dmy]
        second = [int(m[3]) for _, m in dmy]
        day_first = dayfirst
        if day_first is None:
            a_big, b_big = max(first) > 12, max(second) > 12
            if a_big != b_big:
                day_first = a_big
            elif a_big and b_big:
                day_first = None  # both orders in one column: leave them all unparsed
            elif all(m[2] == "." for _, m in dmy):
                day_first = True  # DD.MM.YYYY is the dotted convention; MM.DD.YYYY is not used
            else:
                day_first = False
                note = (f"dates such as {str(uniq[dmy[0][0]])!r} could be month-first or day-first; "
                        "read them as MM/DD/YYYY. Pass dayfirst=True if they are DD/MM/YYYY.")
        if day_first is not None:
            for i, m in dmy:
                day, month = (m[1], m[3]) if day_first else (m[3], m[1])
                year = m[4] if len(m[4]) == 4 else str(2000 + int(m[4]) if int(m[4]) < 69 else 1900 + int(m[4]))
                iso[i] = f"{year}-{int(month):02d}-{int(day):02d}{m[5] or ''}"
            forms.append("day-first" if day_first else "month-first")
    result = _to_ns(_iso(pd.Series(iso, dtype="string")))
    if serial:
        pos = np.fromiter(serial, dtype=np.int64, count=len(serial))
        days = pd.to_timedelta(np.fromiter(serial.values(), dtype="float64", count=len(serial)), unit="D")
        result.iloc[pos] = (pd.Timestamp("1899-12-30") + days).astype("datetime64[ns]")
    if rest:
        text = pd.Series(s.iloc[rest].tolist(), index=rest, dtype=object)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = pd.to_datetime(text, format="mixed", dayfirst=bool(dayfirst), errors="coerce")
            except (ValueError, TypeError, OverflowError):
                parsed = _per_value(text, dayfirst)
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        parsed = _to_ns(parsed)
        if parsed.notna().any():
            forms.append("text")
        result.iloc[rest] = parsed.to_numpy()
    return result, "/".join(dict.fromkeys(forms)) or "unparsed", note


def _iso(text: pd.Series) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        except (ValueError, TypeError, OverflowError):
            try:
                parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True).dt.tz_convert(None)
            except (ValueError, TypeError, OverflowError):
                parsed = _per_value(text, False)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _per_value(text: pd.Series, dayfirst: bool | None) -> pd.Series:
    def one(v):
        if v is None or v is pd.NA or v != v:
            return pd.NaT
        try:
            ts = pd.to_datetime(v, dayfirst=bool(dayfirst))
        except (ValueError, TypeError, OverflowError):
            return pd.NaT
        return ts.tz_localize(None) if ts.tzinfo is not None else ts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.Series([one(v) for v in text], index=text.index, dtype="datetime64[ns]")


def _to_ns(parsed: pd.Series) -> pd.Series:
    ok = (parsed >= _NS_MIN) & (parsed <= _NS_MAX)
    return parsed.where(ok).astype("datetime64[ns]")


def _normalize_choice(text: pd.Series, choices: tuple[str, ...], field_name: str,
                      extra: dict[str, str] | None = None) -> pd.Series:
    lookup = {normalize_header(c): c for c in choices}
    lookup.update(_CHOICE_SYNONYMS.get(field_name, {}))
    lookup.update(extra or {})
    uniq = text.dropna().unique()
    mapping = {u: lookup.get(normalize_header(u), pd.NA) for u in uniq}
    return text.map(mapping, na_action="ignore").astype("string")


# --------------------------------------------------------------------------- loading


def load_table(
    source: Any,
    table: str,
    *,
    columns: dict[Any, str | None] | None = None,
    query: str | None = None,
    sheet_name: str | int = 0,
    encoding: str | None = None,
    dayfirst: bool | None = None,
    delimiter: str | None = None,
    format: str | None = None,
    max_drop_fraction: float = MAX_DROP_FRACTION,
    stage_mapping: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Load one table of the data model from a file, a database or a frame.

    Parameters
    ----------
    source : path, str, DataFrame, DuckDB connection, bytes or file object
        * a file path: ``.csv .tsv .tab .txt .dat .psv`` (delimiter sniffed:
          comma, tab, semicolon, pipe or runs of whitespace; ``.gz`` allowed),
          ``.xlsx .xlsm`` (openpyxl), ``.parquet .pq``, ``.db .sqlite .sqlite3``;
        * a SQLAlchemy URL such as ``"sqlite:///sales.db"`` (or an Engine);
        * a DuckDB connection;
        * a DataFrame (never modified);
        * bytes or a binary file object (e.g. an upload), with ``format=``
          or recognised from its first bytes.
    table : str
        A key of :data:`salesplan.schema.TABLES` (``"transactions"``...).
    columns : dict, optional
        Header -> field, applied before automatic recognition, e.g.
        ``{"Order Date": "order_date"}``. Integer keys are 0-based column
        positions and mean the file has no header line. Map to ``None`` to
        drop a column.
    query : str, optional
        For databases: an SQL query, or a table name. Without it the only
        table, or the table named like ``table``, is read.
    sheet_name : str or int, default 0
        Excel sheet, by name or position.
    encoding : str, optional
        Text encoding; by default UTF-8 (with or without BOM), UTF-16 with
        BOM, GB18030/GBK and cp1252 are tried in turn.
    dayfirst : bool, optional
        How to read ``01/02/2024``-style dates. By default per column: day
        first when a first field exceeds 12, month first when a second field
        does, day first for ``DD.MM.YYYY``, otherwise month first with a
        warning.
    delimiter : str, optional
        Field delimiter of text files (``" "`` for runs of whitespace).
    format : {"csv", "excel", "parquet", "sqlite"}, optional
        Overrides the format implied by the file name.
    max_drop_fraction : float, default 0.05
        Rows missing a required value are dropped with a warning when they
        are at most this share of the rows; more is an error. Transaction
        lines without a customer are not dropped: they are kept with
        ``customer_id`` missing and counted in the report (``guest_lines``,
        ``guest_revenue``) and in one warning.
    stage_mapping : dict, optional
        For opportunities and stage history: your stage names -> ours
        (:data:`salesplan.schema.STAGES`), e.g. ``{"Demo": "needs_analysis"}``,
        on top of the CRM names already recognised
        (:data:`salesplan.schema.STAGE_SYNONYMS`). Case, spaces and
        punctuation do not matter. Without a status column, the status is
        derived from the won and lost stages.

    Returns
    -------
    pandas.DataFrame
        The table's schema columns present in the source, in schema order,
        with the dtypes of ``TableSchema.dtypes()``; then ``is_return``
        (transactions only); then extra columns. ``df.attrs["salesplan"]``
        holds the :class:`LoadReport`.

    Raises
    ------
    SalesplanDataError
        Listing every problem found: missing file, unknown extension, empty
        file, missing required columns (with the headers found and the
        closest matches), unparseable dates or numbers, unknown categories,
        duplicate keys, too many incomplete rows.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"Order Date": ["2024-01-05", "2024-01-06"],
    ...                     "客户": ["c1", "c2"], "销售额": ["¥1,200", "(50)"]})
    >>> df = load_table(raw, "transactions")
    >>> df[["order_date", "customer_id", "revenue", "is_return"]]
      order_date customer_id  revenue  is_return
    0 2024-01-05          c1   1200.0      False
    1 2024-01-06          c2    -50.0       True
    >>> load_report(df).mapping
    {'Order Date': 'order_date', '客户': 'customer_id', '销售额': 'revenue'}
    """
    schema = get_schema(table)
    if columns is not None and not isinstance(columns, dict):
        raise SalesplanError(f"columns must be a dict of header -> field, got {type(columns).__name__}.")
    if dayfirst is not None and not isinstance(dayfirst, bool):
        raise SalesplanError(f"dayfirst must be True, False or None, got {dayfirst!r}.")
    if not 0 <= max_drop_fraction <= 1:
        raise SalesplanError(f"max_drop_fraction must be in [0, 1], got {max_drop_fraction!r}.")
    keys = list((columns or {}).keys())
    positional = bool(keys) and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys)
    if keys and not positional and any(isinstance(k, (int, np.integer)) for k in keys) \
            and not isinstance(source, pd.DataFrame):
        raise SalesplanError("columns= mixes header names and positions; use only names (files "
                             "with a header line) or only integer positions (files without one).")
    stages = _check_stage_mapping(stage_mapping)
    raw = _read_source(source, table=schema, positional=positional, query=query, sheet_name=sheet_name,
                       encoding=encoding, delimiter=delimiter, format=format, columns=columns)
    return _build(raw, schema, columns, dayfirst=dayfirst, max_drop_fraction=max_drop_fraction,
                  stage_mapping=stages)


def _check_stage_mapping(stage_mapping: dict | None) -> dict[str, str]:
    """``stage_mapping`` folded for lookup; an error naming every value that is not a stage."""
    if stage_mapping is None:
        return {}
    if not isinstance(stage_mapping, dict):
        raise SalesplanError(f"stage_mapping must be a dict of your stage name -> one of {', '.join(STAGES)}, "
                             f"got {type(stage_mapping).__name__}.")
    ours = {normalize_header(s): s for s in STAGES}
    out, bad = {}, []
    for theirs, target in stage_mapping.items():
        hit = ours.get(normalize_header(target)) if isinstance(target, str) else None
        if hit is None:
            bad.append(f"{theirs!r}: {target!r}")
        else:
            out[normalize_header(theirs)] = hit
    if bad:
        raise SalesplanError(f"stage_mapping maps onto values that are not stages ({', '.join(bad)}). "
                             f"Each value must be one of: {', '.join(STAGES)}.")
    return out


def _mapping_template(names: list[str], choices: tuple[str, ...]) -> str:
    """A ``stage_mapping={...}`` line a user can paste and fill in."""
    one_of = f"<one of {', '.join(choices)}>"
    return "stage_mapping={" + ", ".join(f'"{n}": "{one_of}"' for n in names) + "}"


_TRUE_WORDS = {"1", "true", "t", "yes", "y", "是", "真"}


def _truthy(values: pd.Series) -> np.ndarray:
    text = _as_text(values).str.lower()
    return text.isin(_TRUE_WORDS).fillna(False).to_numpy(dtype=bool)


def _build(raw: _Raw, schema: TableSchema, columns, *, dayfirst, max_drop_fraction,
           stage_mapping: dict[str, str] | None = None) -> pd.DataFrame:
    problems = _Problems(raw.source, schema.name)
    report = LoadReport(source=raw.source, table=schema.name, format=raw.format, encoding=raw.encoding,
                        delimiter=raw.delimiter, sheet=raw.sheet)
    frame = raw.frame
    locate = raw.locate
    if raw.format != "frame":
        blank = frame.isna().all(axis=1).to_numpy() if frame.shape[1] else np.ones(len(frame), dtype=bool)
        if blank.any():
            report.rows_dropped["blank lines" if raw.format == "csv" else "blank rows"] = int(blank.sum())
            keep = np.flatnonzero(~blank)
            frame = frame.iloc[keep]
            locate = _Locator(locate.kind, first=locate.first, sheet=locate.sheet)
            positions_base = keep
        else:
            positions_base = np.arange(len(frame))
    else:
        positions_base = np.arange(len(frame))
    report.rows_read = len(frame)

    mapping = _resolve_mapping(raw, schema, columns, problems)
    header_of = {pos: str(raw.headers[pos]) for pos in range(len(raw.headers))}
    report.mapping = {header_of[p]: f for p, f in sorted(mapping.fields.items())}
    report.extra_columns = {header_of[p]: n for p, n in sorted(mapping.extras.items())}
    if len(frame) == 0:
        what = "sheet" if raw.format == "excel" else ("result" if raw.format in ("sql", "duckdb") else "file")
        problems.error(f"the {what} has a header but no data rows. Export it again with the data.")
        report.warnings = problems.warnings
        problems.raise_if_any(report)

    def where(mask: np.ndarray) -> str:
        return locate(positions_base[np.flatnonzero(mask)])

    present = set(mapping.fields.values())
    derive_revenue = (schema.name == "transactions" and "revenue" not in present
                      and {"quantity", "unit_price"} <= present)
    derive_status = schema.name == "opportunities" and "status" not in present and "stage" in present
    derive_id = schema.name == "opportunities" and "opportunity_id" not in present and "name" in present
    derivable = {f for f, ok in (("revenue", derive_revenue), ("status", derive_status),
                                 ("opportunity_id", derive_id)) if ok}
    missing_cols = [c for c in schema.required if c not in present and c not in derivable]
    if missing_cols:
        found = [str(h) for h in raw.headers]
        parts = []
        for col in missing_cols:
            aliases = [col] + list(schema.column(col).aliases)
            near = []
            for alias in aliases:
                for hit in closest_matches(alias, [h for h in found if h not in report.mapping]):
                    if hit not in near:
                        near.append(hit)
            parts.append(f"{col!r}" + (f" (closest headers: {', '.join(map(repr, near[:3]))})" if near else ""))
        looks_like_data = not mapping.fields and not raw.positional and sum(
            _looks_like_value(h) for h in found) >= max(1, len(found) / 2)
        if raw.positional or looks_like_data:
            example = f"columns={{0: {missing_cols[0]!r}, 1: ..., ...}} (0-based column positions)"
        else:
            example = f"columns={{{_first_near(parts, found)!r}: {missing_cols[0]!r}}}"
        hint = ""
        if looks_like_data and raw.format != "frame":
            hint += " The first line looks like data, so the file seems to have no header line."
        if schema.name == "transactions" and "revenue" in missing_cols:
            hint += " (revenue can also be derived from quantity and unit_price columns.)"
        if schema.name == "opportunities" and "opportunity_id" in missing_cols:
            hint += " (an opportunity name column can stand in for opportunity_id.)"
        problems.error(
            f"missing required column(s) {', '.join(parts)} for {schema.name}. Headers found: "
            f"{found[:30]}.{hint} Rename the headers or pass a mapping, e.g. {example}."
        )

    out: dict[str, pd.Series] = {}
    missing_required: dict[str, np.ndarray] = {}
    for pos, fname in sorted(mapping.fields.items(), key=lambda kv: schema.names.index(kv[1])):
        col = schema.column(fname)
        values = frame.iloc[:, pos]
        bad = np.zeros(len(frame), dtype=bool)
        label = f"column {fname!r}" + (f" (header {header_of[pos]!r})" if header_of[pos] != fname else "")
        if col.kind == "date":
            parsed, bad, miss, form, note = _parse_dates(values, dayfirst=dayfirst)
            report.date_formats[fname] = form
            if note:
                problems.warn(f"{label}: {note}")
            if bad.any():
                examples = _examples(values, bad)
                problems.error(
                    f"{label}: {int(bad.sum())} value(s) are not dates ({where(bad)}; e.g. {examples}). "
                    "Expected ISO 2024-01-31, 01/31/2024, 31/01/2024, 31.01.2024, 20240131 or an "
                    "Excel date (years 1927-2119 as serials; 1678-2261 otherwise). Fix those cells, or "
                    "pass dayfirst= if the day/month order was misread."
                )
        elif col.kind in ("float", "int"):
            parsed, bad, miss = _parse_numbers(values)
            if col.kind == "int":
                frac = parsed.notna().to_numpy() & (np.mod(parsed.fillna(0).to_numpy(), 1) != 0)
                bad = bad | frac
                parsed = parsed.mask(frac).astype("Int64")
            if bad.any():
                examples = _examples(values, bad)
                problems.error(
                    f"{label}: {int(bad.sum())} value(s) are not numbers ({where(bad)}; e.g. {examples}). "
                    "Expected numbers such as 1234.5, 1,234.50, ¥1,234, (50) or 12%. Fix those cells "
                    "or map the right column with columns=."
                )
        else:
            parsed = _as_text(values)
            miss = _missing_mask(parsed, _MISSING_TEXT).to_numpy(dtype=bool)
            parsed = parsed.mask(miss)
            choices = _CHOICES.get((schema.name, fname))
            if choices is not None:
                normalised = _normalize_choice(parsed, choices, fname,
                                               stage_mapping if fname == "stage" else None)
                bad = normalised.isna().to_numpy() & ~miss
                if bad.any():
                    counts = parsed[bad].value_counts()
                    seen = ", ".join(f"{v!r} ({n})" for v, n in counts.head(5).items())
                    if fname == "stage":
                        fix = (f"Map your stage names onto ours with stage_mapping= (load_data, "
                               f"load_opportunities, load_stage_history), e.g. "
                               f"{_mapping_template([str(v) for v in counts.index[:20]], choices)}.")
                    else:
                        fix = "Recode those values in the source."
                    problems.error(
                        f"{label}: {int(bad.sum())} value(s) are not valid {fname}s ({where(bad)}; "
                        f"seen: {seen}). Expected one of: {', '.join(choices)} (case and spaces do "
                        f"not matter). {fix}"
                    )
                parsed = normalised
            parsed = parsed.astype("string")
        out[fname] = parsed
        if col.required:
            missing_required[fname] = miss

    n = len(frame)
    if derive_id:
        names = out["name"]
        if names.notna().all() and not names.duplicated().any():
            out["opportunity_id"] = names.copy()
            report.derived.append("opportunity_id = name")
        else:
            out["opportunity_id"] = pd.Series(np.arange(1, n + 1), index=frame.index).astype("string")
            report.derived.append("opportunity_id = row number")
            problems.warn(f"there is no opportunity_id column and the names repeat or are missing "
                          f"({int(names.duplicated().sum())} repeated, {int(names.isna().sum())} missing), "
                          "so the opportunities are numbered 1..n in file order. Add an id column "
                          "to link them with a stage history.")
        missing_required["opportunity_id"] = np.zeros(n, dtype=bool)
    if derive_status and "stage" in out:
        stage = out["stage"]
        flags = {normalize_header(header_of[p]): p for p in mapping.extras}
        if {"iswon", "isclosed"} <= set(flags):
            won = _truthy(frame.iloc[:, flags["iswon"]])
            closed = _truthy(frame.iloc[:, flags["isclosed"]])
            status = np.where(won, "won", np.where(closed, "lost", "open"))
            report.derived.append("status from IsClosed and IsWon")
        else:
            status = np.where(stage.eq("won").fillna(False), "won",
                              np.where(stage.eq("lost").fillna(False), "lost", "open"))
            report.derived.append("status from the stage (won, lost, else open)")
        out["status"] = pd.Series(status, index=frame.index, dtype="string").mask(stage.isna().to_numpy())
        missing_required["status"] = missing_required.get("stage", np.zeros(n, dtype=bool))
    if derive_revenue or ("revenue" in out and {"quantity", "unit_price"} <= set(out)):
        product = out["quantity"] * out["unit_price"]
        if derive_revenue:
            out["revenue"] = product
            missing_required["revenue"] = product.isna().to_numpy()
            report.derived.append("revenue = quantity * unit_price")
        else:
            fill = out["revenue"].isna().to_numpy() & product.notna().to_numpy()
            if fill.any():
                out["revenue"] = out["revenue"].mask(fill, product)
                missing_required["revenue"] = out["revenue"].isna().to_numpy()
                report.derived.append(f"revenue = quantity * unit_price on {int(fill.sum())} row(s) missing revenue")

    # A line without a customer is a sale all the same (a guest checkout): it is kept.
    guests = missing_required.pop("customer_id", None) if schema.name == "transactions" else None
    gaps = {f: missing_required.pop(f) for f in _MAY_BE_EMPTY.get(schema.name, ()) if f in missing_required}
    drop = np.zeros(n, dtype=bool)
    for mask in missing_required.values():
        drop |= mask
    if drop.any() and n:
        share = drop.sum() / n
        per_col = {f: int(m.sum()) for f, m in missing_required.items() if m.any()}
        detail = ", ".join(f"{f}: {k}" for f, k in per_col.items())
        if share > max_drop_fraction:
            problems.error(
                f"{int(drop.sum())} of {n} rows ({share:.1%}) lack a required value ({detail}; "
                f"{where(drop)}). At most {max_drop_fraction:.0%} can be dropped; fill those cells, "
                "check the column mapping, or pass max_drop_fraction= to accept dropping them."
            )
        else:
            for f, k in per_col.items():
                report.rows_dropped[f"missing {f}"] = k
            problems.warn(f"dropped {int(drop.sum())} of {n} rows lacking a required value ({detail}; "
                          f"{where(drop)}).")

    if schema.name == "market" and not ({"market_size", "competitor_sales"} & set(out)) and not missing_cols:
        problems.error("market needs a market_size or a competitor_sales column; neither was found "
                       f"among the headers {[str(h) for h in raw.headers][:30]}. Map one with columns=.")

    report.warnings = problems.warnings
    problems.raise_if_any(report)

    keep = ~drop
    if guests is not None and (guests & keep).any():
        kept_guests = guests & keep
        revenue = out["revenue"].to_numpy(dtype="float64", na_value=np.nan)
        report.guest_lines = int(kept_guests.sum())
        report.guest_revenue = float(np.nansum(revenue[kept_guests]))
        total = float(np.nansum(revenue[keep]))
        share = f"{report.guest_revenue / total:.1%}" if total > 0 else "n/a"
        problems.warn(
            f"{report.guest_lines} of {int(keep.sum())} lines ({share} of revenue) have no customer: they "
            "count in revenue, market and forecast analyses, and are left out of customer analyses "
            f"(RFM, clusters, lifetime value, cohorts). First: {where(kept_guests)}."
        )
    gaps = {f: int((m & keep).sum()) for f, m in gaps.items() if (m & keep).any()}
    if gaps:
        report.kept_missing = gaps
        detail = ", ".join(f"{f}: {k}" for f, k in gaps.items())
        problems.warn(
            f"kept {int(keep.sum())} opportunities although some values are empty ({detail}); many CRMs "
            "leave the amount and dates of open deals empty. They count in stages and win rates; "
            "pipeline value leaves out those without an amount, cycle times those without a date."
        )
    result = pd.DataFrame({f: out[f] for f in schema.names if f in out}, index=frame.index)
    if schema.name == "transactions":
        neg = result["revenue"].lt(0).to_numpy(copy=True)
        if "quantity" in result:
            neg |= result["quantity"].lt(0).fillna(False).to_numpy()
        result["is_return"] = neg
    for pos, name in mapping.extras.items():
        result[name] = _extra(frame.iloc[:, pos])
    if schema.name == "stage_history":
        keep = _first_entry_per_stage(result, keep, report, problems)
    if schema.key:
        kept = result[keep]
        dup = kept.duplicated(list(schema.key), keep=False).to_numpy()
        if dup.any():
            dup_full = np.zeros(n, dtype=bool)
            dup_full[np.flatnonzero(keep)[dup]] = True
            first = kept.loc[dup, list(schema.key)].iloc[0].tolist()
            problems.error(
                f"{int(dup.sum())} rows share a key ({', '.join(schema.key)}) with another row "
                f"({where(dup_full)}; e.g. {first}). Each {' + '.join(schema.key)} must appear once: "
                "remove the duplicates or aggregate them first."
            )
            problems.raise_if_any(report)
    result = result[keep]
    if raw.format != "frame":
        result = result.reset_index(drop=True)
    else:
        result.index = raw.frame.index[positions_base[keep]] if len(result) else result.index
    if schema.name == "transactions":
        report.returns = int(result["is_return"].sum())
    report.rows = len(result)
    result.attrs = {"salesplan": report.to_dict()}
    return result


def _first_entry_per_stage(result: pd.DataFrame, keep: np.ndarray, report: LoadReport,
                           problems: _Problems) -> np.ndarray:
    """Keep the first time each opportunity entered each stage.

    CRM histories (Salesforce's OpportunityHistory) log every change of an
    opportunity, so a stage repeats when only the amount or the close date moved.
    """
    pos = np.flatnonzero(keep)
    sub = result.iloc[pos][["opportunity_id", "stage", "entered_at"]].reset_index(drop=True)
    order = sub.sort_values("entered_at", kind="stable").index.to_numpy()
    repeated = sub.loc[order].duplicated(["opportunity_id", "stage"]).to_numpy()
    if not repeated.any():
        return keep
    keep = keep.copy()
    keep[pos[order[repeated]]] = False
    k = int(repeated.sum())
    report.rows_dropped["repeated stage"] = k
    problems.warn(f"{k} of {len(pos)} rows repeat a stage the opportunity had already entered (a history "
                  "that logs every change, not only stage changes); kept the first entry of each.")
    return keep


def _looks_like_value(header: str) -> bool:
    return re.match(r"^[-+]?[\d.,/:\- ]+$", str(header).strip()) is not None


def _first_near(parts: list[str], found: list[str]) -> str:
    m = re.search(r"closest headers: '([^']*)'", parts[0]) if parts else None
    if m:
        return m.group(1)
    return "Your Header"


def _examples(values: pd.Series, bad: np.ndarray, limit: int = 3) -> str:
    seen = pd.unique(values[bad].astype(str))[:limit]
    return ", ".join(repr(v) for v in seen)


def _extra(values: pd.Series) -> pd.Series:
    if values.dtype != object and not pd.api.types.is_string_dtype(values):
        return values
    text = _as_text(values)
    missing = _missing_mask(text, _MISSING_TEXT)
    # Codes such as "0001" stay text: a leading zero is part of an identifier.
    if not missing.all() and not text.str.match(r"^[-+]?0[0-9]", na=False).any():
        nums = pd.to_numeric(text.mask(missing), errors="coerce")
        if nums.notna().sum() == (~missing).sum():
            return nums.astype("float64")
    return text.mask(missing)


# --------------------------------------------------------------------------- per-table wrappers


def _wrapper(table: str):
    schema = TABLES[table]

    def loader(
        path_or_frame: Any,
        *,
        columns: dict[Any, str | None] | None = None,
        query: str | None = None,
        sheet_name: str | int = 0,
        encoding: str | None = None,
        dayfirst: bool | None = None,
        delimiter: str | None = None,
        format: str | None = None,
        max_drop_fraction: float = MAX_DROP_FRACTION,
    ) -> pd.DataFrame:
        return load_table(path_or_frame, table, columns=columns, query=query, sheet_name=sheet_name,
                          encoding=encoding, dayfirst=dayfirst, delimiter=delimiter, format=format,
                          max_drop_fraction=max_drop_fraction)

    def stage_loader(
        path_or_frame: Any,
        *,
        columns: dict[Any, str | None] | None = None,
        query: str | None = None,
        sheet_name: str | int = 0,
        encoding: str | None = None,
        dayfirst: bool | None = None,
        delimiter: str | None = None,
        format: str | None = None,
        max_drop_fraction: float = MAX_DROP_FRACTION,
        stage_mapping: dict[str, str] | None = None,
    ) -> pd.DataFrame:
        return load_table(path_or_frame, table, columns=columns, query=query, sheet_name=sheet_name,
                          encoding=encoding, dayfirst=dayfirst, delimiter=delimiter, format=format,
                          max_drop_fraction=max_drop_fraction, stage_mapping=stage_mapping)

    def transactions_loader(
        path_or_frame: Any,
        *,
        columns: dict[Any, str | None] | None = None,
        query: str | None = None,
        sheet_name: str | int = 0,
        encoding: str | None = None,
        dayfirst: bool | None = None,
        delimiter: str | None = None,
        format: str | None = None,
        max_drop_fraction: float = MAX_DROP_FRACTION,
        engine: str = "auto",
    ) -> pd.DataFrame:
        if engine != "pandas":
            # DuckDB reads folders, globs and files beyond memory; see salesplan.engine.
            from salesplan.engine import dispatch

            frame = dispatch(path_or_frame, engine=engine, columns=columns, query=query, sheet_name=sheet_name,
                             encoding=encoding, dayfirst=dayfirst, delimiter=delimiter, format=format,
                             max_drop_fraction=max_drop_fraction)
            if frame is not None:
                return frame
        return load_table(path_or_frame, table, columns=columns, query=query, sheet_name=sheet_name,
                          encoding=encoding, dayfirst=dayfirst, delimiter=delimiter, format=format,
                          max_drop_fraction=max_drop_fraction)

    if table in ("opportunities", "stage_history"):
        loader = stage_loader
    elif table == "transactions":
        loader = transactions_loader
    required = ", ".join(schema.required)
    optional = ", ".join(schema.optional)
    extra = "\n    is_return : bool, True for returns and credit notes." if table == "transactions" else ""
    engine = ("\n\n    ``engine=\"duckdb\"`` loads through :mod:`salesplan.engine`, with the same columns,\n"
              "    report and errors. The default, ``\"auto\"``, does so for a folder or a glob of files\n"
              "    and for a CSV or Parquet file of at least ``salesplan.engine.AUTO_MIN_BYTES`` (about a\n"
              "    million lines), which DuckDB loads faster and in less memory; ``\"pandas\"`` never does."
              if table == "transactions" else "")
    loader.__name__ = loader.__qualname__ = f"load_{table}"
    loader.__doc__ = f"""Load the {table} table: {schema.description}

    A thin wrapper of :func:`load_table` (same options and errors).{engine}

    Returns
    -------
    pandas.DataFrame
        Required columns: {required}.
        Optional columns, when present: {optional}.{extra}
        Then any extra source columns; ``df.attrs["salesplan"]`` holds the
        :class:`LoadReport`.
    """
    return loader


load_transactions = _wrapper("transactions")
load_customers = _wrapper("customers")
load_opportunities = _wrapper("opportunities")
load_stage_history = _wrapper("stage_history")
load_reps = _wrapper("reps")
load_targets = _wrapper("targets")
load_feedback = _wrapper("feedback")
load_market = _wrapper("market")


# --------------------------------------------------------------------------- several tables at once

#: What each table adds to the workbench, for the overview page and ``DataSet.found``.
UNLOCKS: dict[str, str] = {
    "transactions": "revenue, market analysis, customer segments, lifetime value, forecasts and targets",
    "customers": "customer attributes (segment, region, acquisition date) for breakdowns",
    "opportunities": "the pipeline: funnel, win rates, pipeline forecast and bottom-up targets",
    "stage_history": "time in each stage and stage-to-stage conversion",
    "reps": "targets and scorecards per rep and team, new hires and ramp",
    "targets": "attainment against target, appraisal and incentives",
    "feedback": "satisfaction and ticket resolution (after-sales)",
    "market": "market share and untapped potential",
}

#: Environment variable naming the data every notebook reads when its ``data_path`` is ``None``.
DATA_ENV = "SALESPLAN_DATA"

#: The date column of each table, for the date range :meth:`DataSet.found` shows.
_DATE_COLUMN = {
    "transactions": "order_date", "customers": "first_order_date", "opportunities": "created_date",
    "stage_history": "entered_at", "reps": "start_date", "targets": "period", "feedback": "date",
    "market": "period",
}
#: ``DataSet.found()["table"]`` of a file that matched no table.
NOT_RECOGNISED = "(not recognised)"


class DataSet(dict):
    """The tables found in a source, by name (a ``dict`` of DataFrames).

    Only the tables present are keys; ``"transactions"`` always is.

    Attributes
    ----------
    source : str
        What was read: a folder, a file or the demo company.
    files : dict
        Table name -> the file (and sheet) it came from.
    recognised_by : dict
        Table name -> how its file was recognised: ``"file name"``,
        ``"sheet name"``, ``"headers"``, ``"the file given"`` or ``"demo"``.
    unrecognised : dict
        File (and sheet) -> why it was not loaded (it matches no table, or
        another file already holds that table).
    problems : dict
        Table name -> why a file recognised as that (optional) table could
        not be loaded; the table is then absent, and a warning said so.
    """

    def __init__(self, tables: dict[str, pd.DataFrame], *, source: str, files: dict[str, str],
                 recognised_by: dict[str, str] | None = None, unrecognised: dict[str, str] | None = None,
                 problems: dict[str, str] | None = None) -> None:
        super().__init__(tables)
        self.source = source
        self.files = dict(files)
        self.recognised_by = dict(recognised_by or {})
        self.unrecognised = dict(unrecognised or {})
        self.problems = dict(problems or {})

    def found(self) -> pd.DataFrame:
        """What was found: one row per table of the data model, then one per file not recognised.

        Returns
        -------
        pandas.DataFrame
            ``table`` (a table name, or ``"(not recognised)"`` for a file that
            matched none), ``found`` (bool), ``source`` (file, and sheet),
            ``rows``, ``unlocks`` (what the table adds to the workbench),
            ``date_from`` and ``date_to`` (range of the table's date column,
            NaT when it has none), ``recognised_by`` and ``note`` (why a file
            was not used, or why a table could not be loaded).
        """
        rows = []
        for name in TABLES:
            frame = self.get(name)
            dates = frame[_DATE_COLUMN[name]] if frame is not None and _DATE_COLUMN[name] in frame else None
            rows.append({
                "table": name,
                "found": frame is not None,
                "source": self.files.get(name, ""),
                "rows": len(frame) if frame is not None else 0,
                "date_from": dates.min() if dates is not None else pd.NaT,
                "date_to": dates.max() if dates is not None else pd.NaT,
                "unlocks": UNLOCKS.get(name, ""),
                "recognised_by": self.recognised_by.get(name, ""),
                "note": self.problems.get(name, ""),
            })
        for label, reason in self.unrecognised.items():
            rows.append({"table": NOT_RECOGNISED, "found": False, "source": label, "rows": 0,
                         "date_from": pd.NaT, "date_to": pd.NaT, "unlocks": "", "recognised_by": "",
                         "note": reason})
        out = pd.DataFrame(rows, columns=["table", "found", "source", "rows", "unlocks", "date_from", "date_to",
                                          "recognised_by", "note"])
        out["rows"] = out["rows"].astype("int64")
        out[["date_from", "date_to"]] = out[["date_from", "date_to"]].astype("datetime64[ns]")
        return out


@dataclass
class _Candidate:
    """A file (or sheet) and the table it seems to hold."""

    path: Path
    sheet: str | None
    table: str | None
    how: str
    rows: list[list[Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.path.name if self.sheet is None else f"{self.path.name} (sheet {self.sheet!r})"


def _satisfied(table: TableSchema, matched: set[str]) -> bool:
    """Whether a header row with these fields can be loaded as ``table``."""
    have = set(matched)
    if table.name == "transactions" and {"quantity", "unit_price"} <= have:
        have.add("revenue")
    if table.name == "opportunities":
        if "stage" in have:
            have.add("status")
        if "name" in have:
            have.add("opportunity_id")
    if table.name == "market" and not have & {"market_size", "competitor_sales"}:
        return False
    return set(table.required) <= have


def table_for_headers(rows: list[list[Any]]) -> str | None:
    """The table whose headers a file has: every required column matched, most columns matched.

    ``rows`` are the first rows of the file (a title line may sit above the
    header). At least two columns must match, so that one shared column
    (a customer, a date) does not decide.

    >>> table_for_headers([["Order Date", "Customer", "Sales", "Region"]])
    'transactions'
    >>> table_for_headers([["deal_stage", "sales_agent", "account", "engage_date", "close_value", "opportunity_id"]])
    'opportunities'
    >>> table_for_headers([["colour", "size"]]) is None
    True
    """
    return _match_headers(rows)[0]


def _match_headers(rows: list[list[Any]]) -> tuple[str | None, str]:
    """(table or None, for a file that matches none: the nearest table and what it lacks)."""
    best, best_score = None, (1, 0)
    near, near_score, near_missing = None, (0, 0), []
    for order, table in enumerate(TABLES.values()):
        lookup = _alias_lookup(table)
        for row in rows:
            matched = {lookup[k][0] for c in row if c is not None and not _is_missing_cell(c)
                       and (k := normalize_header(c)) in lookup}
            score = (len(matched), -order)
            if _satisfied(table, matched):
                if score > best_score:
                    best, best_score = table.name, score
            elif score > near_score:
                near, near_score = table.name, score
                near_missing = [c for c in table.required if c not in matched]
    hint = ""
    if best is None and near is not None and near_score[0] >= 2:
        hint = f"; nearest: {near}, which lacks {', '.join(near_missing) or 'a needed column'}"
    return best, hint


def recognise_file(path: str | Path) -> tuple[str | None, str]:
    """The table a file holds and how that was seen: ``(table, "file name")``, ``(table, "headers")`` or
    ``(None, "")``.

    The file name is tried first (:func:`salesplan.schema.table_for_file_name`),
    then the headers (:func:`table_for_headers`; the first sheet of a workbook).
    """
    file = Path(path)
    table = table_for_file_name(file.name)
    if table is not None:
        return table, "file name"
    try:
        fmt = _format_from_name(file.name)
        if fmt == "sqlite":
            return None, ""
        if fmt == "excel":
            with pd.ExcelFile(file, engine="openpyxl") as book:
                rows = _peek_rows(file, fmt, book, book.sheet_names[0])
        else:
            rows = _peek_rows(file, fmt)
    except Exception:  # unreadable: the loader says why when the file is loaded
        return None, ""
    table = table_for_headers(rows)
    return (table, "headers") if table is not None else (None, "")


def _peek_rows(path: Path, fmt: str, book: Any = None, sheet: str | None = None) -> list[list[Any]]:
    """The first rows of a file or sheet, split into cells, to recognise its headers."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return [list(pq.read_schema(path).names)]
    if fmt == "excel":
        frame = pd.read_excel(book, sheet_name=sheet, header=None, nrows=_HEADER_SCAN_ROWS)
        return frame.astype(object).values.tolist()
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read(1 << 16)
    if len(data) == 1 << 16 and b"\n" in data:
        data = data[: data.rindex(b"\n")]  # whole lines only: a cut character would misdetect the encoding
    text, _ = _decode(data, None, path.name)
    head = [ln for ln in _head_lines(text.lstrip("\ufeff"), _HEADER_SCAN_ROWS) if ln.strip()]
    delim = _sniff_delimiter(head)
    return [_split_line(ln, delim) for ln in head]


def _file_candidates(path: Path, *, whole_book: bool = False) -> tuple[list[_Candidate], dict[str, str]]:
    """What ``path`` seems to hold: one candidate per file, or per sheet of a workbook."""
    fmt = _format_from_name(path.name)
    if fmt != "excel":
        table = table_for_file_name(path.name)
        if table is not None:
            return [_Candidate(path, None, table, "file name")], {}
        table, hint = _match_headers(_peek_rows(path, fmt))
        if table is not None:
            return [_Candidate(path, None, table, "headers")], {}
        return [], {path.name: "matches no table by its name or its headers" + hint}
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise _data_error(f"{path.name}: cannot open the Excel workbook ({type(exc).__name__}: {exc}). "
                          "Check that it is an .xlsx file; re-save it from Excel if it is damaged.") from None
    with book:
        return _sheet_candidates(path, book, whole_book=whole_book)


def _sheet_candidates(path: Path, book: Any, *, whole_book: bool) -> tuple[list[_Candidate], dict[str, str]]:
    fmt = "excel"
    sheets = book.sheet_names
    if len(sheets) == 1:
        sheet = sheets[0]
        if whole_book:
            table = _given_file_table(path, table_for_file_name(path.name) or table_for_file_name(sheet),
                                      lambda: _peek_rows(path, fmt, book, sheet))
            return [_Candidate(path, sheet, table, "the file given")], {}
        table = table_for_file_name(path.name) or table_for_file_name(sheet)
        if table is not None:
            return [_Candidate(path, sheet, table, "file name")], {}
        table, hint = _match_headers(_peek_rows(path, fmt, book, sheet))
        if table is not None:
            return [_Candidate(path, sheet, table, "headers")], {}
        return [], {path.name: "matches no table by its name, its sheet name or its headers" + hint}
    found, skipped = [], {}
    for sheet in sheets:
        table, how = table_for_file_name(sheet), "sheet name"
        if table is None:
            rows = _peek_rows(path, fmt, book, sheet)
            if not any(any(not _is_missing_cell(c) for c in row) for row in rows):
                skipped[f"{path.name} (sheet {sheet!r})"] = "the sheet is empty"
                continue
            (table, hint), how = _match_headers(rows), "headers"
        if table is None:
            skipped[f"{path.name} (sheet {sheet!r})"] = "matches no table by its sheet name or its headers" + hint
        else:
            found.append(_Candidate(path, sheet, table, how))
    return found, skipped


def _folder_candidates(folder: Path) -> tuple[list[_Candidate], dict[str, str]]:
    found, skipped = [], {}
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.startswith((".", "~$")):
            continue  # hidden files and Excel's lock files
        if path.is_dir():
            skipped[path.name + "/"] = "a sub-folder: only the files of the folder itself are read"
            continue
        try:
            fmt = _format_from_name(path.name)
        except SalesplanDataError:
            skipped[path.name] = "not a data file (supported: .csv .tsv .txt .xlsx .parquet ...)"
            continue
        if fmt == "sqlite":
            skipped[path.name] = "a database: load its tables one by one with load_table(path, table, query=...)"
            continue
        more, skip = _file_candidates(path)
        found += more
        skipped.update(skip)
    return found, skipped


def _assign(candidates: list[_Candidate], skipped: dict[str, str], where: str) -> dict[str, _Candidate]:
    """One file per table: a name beats headers; two of a kind is an error naming both."""
    chosen: dict[str, _Candidate] = {}
    for table in TABLES:
        mine = [c for c in candidates if c.table == table]
        if not mine:
            continue
        named = [c for c in mine if c.how != "headers"]
        pool = named or mine
        if len(pool) > 1:
            listed = " and ".join(f"{c.label} (by {c.how})" for c in pool)
            raise _data_error(
                f"{where}: {len(pool)} files hold {table}: {listed}. Keep one of them (combine them "
                f"into one file first if both are needed), or rename the other so that it is not "
                f"taken for {table}."
            )
        chosen[table] = pool[0]
        for c in mine:
            if c is not pool[0]:
                skipped[c.label] = (f"its headers look like {table}, but {pool[0].label} is {table} by its "
                                    f"{pool[0].how}")
    return chosen


def load_data(
    source: Any = None,
    *,
    max_drop_fraction: float = MAX_DROP_FRACTION,
    stage_mapping: dict[str, str] | None = None,
) -> DataSet:
    """Every table a source holds: the demo company, a folder, a workbook, or one transactions file.

    Parameters
    ----------
    source : path, DataFrame or None
        * ``None``: the folder or file named by the environment variable
          ``SALESPLAN_DATA`` (how ``salesplan serve --data`` and the tests point
          every notebook at a company's data), else the bundled demo company.
        * A folder: each file (and each sheet of a workbook with several
          sheets) is recognised as a table by its name, with the names in
          :attr:`salesplan.schema.TableSchema.file_names` (``orders.xlsx``,
          ``订单.csv``, ``deals.csv``, ``OpportunityHistory.csv``...; case,
          spaces, underscores and a trailing number do not matter), failing
          that by its headers (the table whose required columns are all
          there and which matches the most columns). Files that match
          nothing are listed by :meth:`DataSet.found` and in a warning.
        * An Excel workbook with several sheets: one table per sheet,
          recognised by sheet name, else by headers.
        * Anything else (a CSV, Parquet or one-sheet Excel file, a
          DataFrame) is read as the transactions table, unless its name or
          its headers say it is an opportunities export.
        A CRM export without order lines (a folder or file of
        opportunities only) is loaded too: its won opportunities stand in
        for the transactions (see :func:`transactions_from_opportunities`),
        with a warning.
    max_drop_fraction : float, default 0.05
        Passed to every loader: the share of rows that may be dropped for a
        missing required value (a missing date or revenue; transaction lines
        without a customer are kept).
    stage_mapping : dict, optional
        Your stage names -> ours, passed to the opportunities and stage
        history loaders (see :func:`load_table`).

    Returns
    -------
    DataSet
        A dict of the tables found (``"transactions"`` always), with
        ``source``, ``files``, ``recognised_by``, ``unrecognised``,
        ``problems`` and ``found()``.

    Raises
    ------
    SalesplanDataError
        When neither a transactions nor an opportunities table is found,
        when it cannot be loaded, or when two files hold the same table. A file recognised as another
        table that cannot be loaded is left out with a warning instead.
    """
    _check_stage_mapping(stage_mapping)  # before any file is read
    if source is None and os.environ.get(DATA_ENV):
        source = os.environ[DATA_ENV]
    if source is None:
        from salesplan.datasets import DEMO_DIR, load_demo

        tables = load_demo()
        return DataSet(tables, source=f"the demo company ({DEMO_DIR})",
                       files={name: f"{name}.csv" for name in tables},
                       recognised_by={name: "demo" for name in tables})
    is_path = isinstance(source, (str, Path)) and not _is_url(str(source))
    if is_path and Path(source).is_dir():
        where = str(source)
        candidates, skipped = _folder_candidates(Path(source))
    elif is_path and Path(source).is_file() and _format_from_name(Path(source).name) == "excel":
        where = Path(source).name
        candidates, skipped = _file_candidates(Path(source), whole_book=True)
    elif is_path and Path(source).is_file() and _given_file_table(
            Path(source), table_for_file_name(Path(source).name),
            lambda: _peek_rows(Path(source), _format_from_name(Path(source).name))) == "opportunities":
        where = Path(source).name
        candidates, skipped = [_Candidate(Path(source), None, "opportunities", "the file given")], {}
    else:
        frame = load_transactions(source, max_drop_fraction=max_drop_fraction)
        name = _source_name(source)
        return DataSet({"transactions": frame}, source=name, files={"transactions": name},
                       recognised_by={"transactions": "the file given"})
    chosen = _assign(candidates, skipped, where)
    derived: dict[str, pd.DataFrame] = {}
    if "transactions" not in chosen and "opportunities" in chosen:
        cand = chosen.pop("opportunities")
        options = {"sheet_name": cand.sheet} if cand.sheet is not None else {}
        opps = load_table(cand.path, "opportunities", max_drop_fraction=max_drop_fraction,
                          stage_mapping=stage_mapping, **options)
        derived = {"opportunities": opps,
                   "transactions": transactions_from_opportunities(opps, source=cand.label)}
        files = {"opportunities": cand.label, "transactions": f"won opportunities of {cand.label}"}
        how = {"opportunities": cand.how, "transactions": "derived from the won opportunities"}
    if "transactions" not in chosen and not derived:
        seen = [f"{c.label} ({c.table}, by {c.how})" for c in candidates]
        seen += [f"{label} ({why})" for label, why in skipped.items()]
        raise _data_error(
            f"{where}: no transactions table found. Seen: {'; '.join(seen[:20]) or 'nothing'}. "
            "Name the order-line file (or sheet) transactions, orders, sales or 订单 (.csv, .xlsx, "
            ".parquet), or give it the columns order_date, customer_id and revenue."
        )
    data_files = [label for label, why in skipped.items() if not why.startswith(("not a data file", "a sub-folder"))]
    if data_files:
        warnings.warn(
            f"{where}: {len(data_files)} file(s) match no table and were not loaded: "
            + "; ".join(f"{label} ({skipped[label]})" for label in data_files)
            + ". Name a file after its table (transactions.csv, deals.csv, reps.xlsx...) or give it "
            "the headers of the data model.", SalesplanDataWarning, stacklevel=2)
    tables: dict[str, pd.DataFrame] = dict(derived)
    problems: dict[str, str] = {}
    for table, cand in chosen.items():
        options: dict[str, Any] = {"max_drop_fraction": max_drop_fraction}
        if cand.sheet is not None:
            options["sheet_name"] = cand.sheet
        if table in ("opportunities", "stage_history"):
            options["stage_mapping"] = stage_mapping
        if table == "transactions":
            tables[table] = load_transactions(cand.path, **options)
            continue
        try:
            tables[table] = load_table(cand.path, table, **options)
        except SalesplanDataError as exc:
            problems[table] = str(exc)
            warnings.warn(f"{cand.label} was recognised as {table} (by {cand.how}) but cannot be loaded, so "
                          f"what needs {table} is left out: {exc}", SalesplanDataWarning, stacklevel=2)
    order = [t for t in TABLES if t in tables]
    files = {t: c.label for t, c in chosen.items()} | (files if derived else {})
    how = {t: c.how for t, c in chosen.items()} | (how if derived else {})
    return DataSet({t: tables[t] for t in order}, source=where,
                   files={t: files[t] for t in order}, recognised_by=how,
                   unrecognised=skipped, problems=problems)


def _given_file_table(path: Path, by_name: str | None, peek) -> str:
    """The table a file given on its own holds: transactions unless its name or headers say opportunities."""
    if by_name is not None:
        return by_name if by_name == "opportunities" else "transactions"
    try:
        by_headers = table_for_headers(peek())
    except Exception:  # unreadable here: the transactions loader explains the problem
        return "transactions"
    return "opportunities" if by_headers == "opportunities" else "transactions"


def transactions_from_opportunities(opportunities: pd.DataFrame, *, source: str = "opportunities") -> pd.DataFrame:
    """Sales made of the won opportunities, for a CRM export that has no order lines.

    Each won opportunity with an amount becomes one line: ``order_date`` is
    its close date (its created date when the close date is empty),
    ``customer_id``, ``rep_id`` and ``revenue`` (its amount) come with it,
    and ``order_id`` is the opportunity id; a ``product`` column of the
    export becomes ``product_id``. A warning says how many deals and how much
    revenue stand in for the order lines.

    Returns
    -------
    pandas.DataFrame
        A transactions table (``order_date``, ``customer_id``, ``revenue``,
        ``order_id``, ``rep_id``, ``product_id`` when known, ``is_return``)
        with its load report.
    """
    won = opportunities[opportunities["status"].eq("won").fillna(False) & opportunities["amount"].notna()]
    date = won["close_date"].fillna(won["created_date"]) if "close_date" in won else won["created_date"]
    frame = pd.DataFrame({"order_date": date, "customer_id": won["customer_id"], "revenue": won["amount"],
                          "order_id": won["opportunity_id"], "rep_id": won["rep_id"]})
    if "product" in won:
        frame["product_id"] = won["product"]
    frame = frame[frame["order_date"].notna()].reset_index(drop=True)
    if frame.empty:
        raise _data_error(
            f"{source}: there are no order lines, and no won opportunity with an amount and a date to stand in "
            "for them. Add the order lines (transactions.csv: order_date, customer_id, revenue) to the folder."
        )
    warnings.warn(
        f"{source}: no order lines were found, so the {len(frame)} won opportunities "
        f"(revenue {frame['revenue'].sum():,.2f}) stand in for them: revenue, forecasts and customer analyses "
        "see one sale per won deal, on its close date. Add the order lines for the full picture.",
        SalesplanDataWarning, stacklevel=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        out = load_table(frame, "transactions", max_drop_fraction=1.0)
    report = load_report(out)
    report.source = f"won opportunities of {source}"
    report.derived.append("transactions = won opportunities (order_date = close date, revenue = amount)")
    out.attrs = {"salesplan": report.to_dict()}
    return out
