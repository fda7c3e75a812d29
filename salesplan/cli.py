"""The ``salesplan`` command.

``salesplan validate PATH`` loads a file (or database) the way the workbench
would and prints what was recognised: the header -> field mapping, row counts,
the date range, returns, lines without a customer, and every problem found.
Given a folder (or a workbook with several sheets), it loads every table the
way :func:`salesplan.io.load_data` does and prints each table found, the file
it came from and what it unlocks. Exit codes: 0 when the data can be loaded,
1 when it cannot, 2 on a usage error.

``salesplan convert SOURCE OUT`` writes a transactions export, checked and
mapped by the DuckDB engine, as one Parquet file that later aggregates read
1.8 to 5 times faster than the CSV.

Examples
--------
.. code-block:: console

    $ salesplan validate sales.xlsx --sheet "2024"
    $ salesplan validate shop_export.csv --max-drop 0.25
    $ salesplan validate company_folder/ --stage "Demo booked=needs_analysis"
    $ salesplan validate orders.csv --column "Fecha=order_date" --column "Cliente=customer_id"
    $ salesplan validate sqlite:///crm.db --table opportunities --query "SELECT * FROM deals"
    $ salesplan convert exports/2025-*.csv orders.parquet
    $ salesplan validate CDNOW_sample.txt --column 0=customer_id --column 2=order_date \\
          --column 3=quantity --column 4=revenue
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

import pandas as pd

from salesplan import __version__
from salesplan.errors import SalesplanDataError, SalesplanError, SalesplanWarning
from salesplan.schema import TABLES

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``salesplan`` command."""
    parser = argparse.ArgumentParser(
        prog="salesplan",
        description="Sales-planning workbench: check your data files, review a period, serve the apps.",
    )
    parser.add_argument("--version", action="version", version=f"salesplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    val = sub.add_parser(
        "validate",
        help="load a file as one table (or a folder as every table) and report what was "
             "recognised and every problem",
        description="Load PATH as one table of the data model and report the column mapping, "
                    "row counts, date range, returns, lines without a customer and every problem "
                    "found. A folder, or a workbook with several sheets, is loaded as a set of "
                    "tables: each table found is listed with its file and what it unlocks.",
    )
    val.add_argument("path", metavar="PATH",
                     help="file (.csv .tsv .txt .xlsx .parquet .db ...), folder, or SQLAlchemy URL "
                          "(sqlite:///x.db)")
    val.add_argument("--table", default=None, choices=list(TABLES),
                     help="table of the data model to load a file as (default: transactions; a "
                          "folder or a workbook with several sheets is searched for every table)")
    val.add_argument("--max-drop", type=float, default=None, metavar="FRACTION",
                     help="share of rows that may be dropped for a missing date or revenue "
                          "(default 0.05); lines without a customer are kept and counted")
    val.add_argument("--stage", action="append", default=[], metavar="THEIRS=OURS",
                     help="map a stage name of your CRM onto one of ours, e.g. --stage 'Demo=needs_analysis' "
                          "(opportunities and stage history). Repeatable.")
    val.add_argument("--column", action="append", default=[], metavar="HEADER=FIELD",
                     help="map a header to a field, e.g. --column 'Fecha=order_date'; a number "
                          "before '=' is a 0-based column position (files without a header); "
                          "an empty FIELD drops the column. Repeatable.")
    val.add_argument("--sheet", default=None, help="Excel sheet name or 0-based position")
    val.add_argument("--query", default=None, help="SQL query or table name for databases")
    val.add_argument("--encoding", default=None, help="text encoding (default: detected)")
    val.add_argument("--delimiter", default=None, help="field delimiter of text files (default: sniffed)")
    order = val.add_mutually_exclusive_group()
    order.add_argument("--dayfirst", dest="dayfirst", action="store_true", default=None,
                       help="read 01/02/2024 as 1 February")
    order.add_argument("--monthfirst", dest="dayfirst", action="store_false",
                       help="read 01/02/2024 as 2 January")
    rev = sub.add_parser(
        "review",
        help="run the review of a period headless and write it as a report (.html or .xlsx)",
        description="Run the whole review of a period on the tables of DIR: KPIs against target, "
                    "the variance by price, volume and mix, the problems ranked by revenue impact with "
                    "corrective SMART targets, payouts under a commission plan, and accounts at risk. "
                    "Sections whose tables are absent say what to add. Exit codes: 0 when the report "
                    "was written, 1 when the data cannot be reviewed, 2 on a usage error.",
    )
    rev.add_argument("--data", default=None, metavar="DIR",
                     help="folder (or workbook) with the tables; default: $SALESPLAN_DATA, else the demo data")
    rev.add_argument("--period", default=None, metavar="PERIOD",
                     help="period to review: 2025-Q4, 2025-11, 2025 (default: the last quarter with orders "
                          "and targets)")
    rev.add_argument("--out", required=True, metavar="FILE", help="report to write: review.html or review.xlsx")
    rev.add_argument("--plan", default=None, metavar="FILE",
                     help="commission plan as .yaml/.yml/.json (default: 5%% base, 50%% gate, 1.5x above quota)")
    rev.add_argument("--level", default="region", help="level whose gaps are explained (default: region)")
    rev.add_argument("--top", type=int, default=10, help="how many problems to list (default: 10)")
    _add_serve_parser(sub)
    return parser


def _review(args: argparse.Namespace, out: TextIO) -> int:
    """``salesplan review``: the report of a period, or a plain message and exit code 1."""
    from pathlib import Path

    from salesplan.io import load_data
    from salesplan.report import build_review, write_report

    if Path(args.out).suffix.lower() not in (".html", ".htm", ".xlsx"):
        print(f"salesplan review: error: --out must end in .html or .xlsx, got {args.out!r}", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SalesplanWarning)
            data = load_data(args.data)
            report = build_review(data, period=args.period, plan=args.plan, level=args.level, top=args.top)
        path = write_report(report, args.out)
    except SalesplanError as exc:
        print(f"salesplan review: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"salesplan review: cannot write {args.out!r}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"Review of {report.window.label} written to {path}", file=out)
    for name in report.tables:
        print(f"  {name}: {len(report.tables[name]):,} rows", file=out)
    for name, note in report.notes.items():
        print(f"  {name}: {note}", file=out)
    return 0


def _add_serve_parser(sub) -> None:
    from salesplan.i18n import LANGUAGES

    conv = sub.add_parser(
        "convert",
        help="write a transactions export (CSV, Parquet parts, a folder) as one checked Parquet file",
        description="Read SOURCE with the DuckDB engine (header mapping, parsing and every check of the "
                    "loader) and write its lines to OUT, one Parquet file with the data model's names and "
                    "types. An export read more than once is aggregated 1.8 to 5 times faster as Parquet "
                    "(docs/scaling.md). SOURCE is never changed; OUT is written under a temporary name and "
                    "renamed when complete. Exit codes: 0 when written, 1 when the data cannot be loaded, "
                    "2 on a usage error.",
    )
    conv.add_argument("path", metavar="SOURCE", help="CSV or Parquet file, folder, or glob such as 'exports/*.csv'")
    conv.add_argument("out", metavar="OUT", help="Parquet file to write (.parquet)")
    conv.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    conv.add_argument("--column", action="append", default=[], metavar="HEADER=FIELD",
                      help="map a header to a field, e.g. --column 'Fecha=order_date'. Repeatable.")
    conv.add_argument("--delimiter", default=None, help="field delimiter of CSV files (default: sniffed)")
    conv.add_argument("--max-drop", type=float, default=None, metavar="FRACTION",
                      help="share of lines that may be dropped for a missing date or revenue (default 0.05)")
    corder = conv.add_mutually_exclusive_group()
    corder.add_argument("--dayfirst", dest="dayfirst", action="store_true", default=None,
                        help="read 01/02/2024 as 1 February")
    corder.add_argument("--monthfirst", dest="dayfirst", action="store_false",
                        help="read 01/02/2024 as 2 January")
    srv = sub.add_parser(
        "serve",
        help="serve the apps to a browser: home page, preheated kernels, no internet needed",
        description="Serve the workbench's apps (the notebooks folder) with Voila: a home page at /, kernels "
                    "that already ran each app, kernels released when a page closes or idles, and no page "
                    "that needs the internet. Timeouts and pool sizes are in salesplan/serve/serve_config.py.",
    )
    srv.add_argument("--data", default=None, metavar="PATH",
                     help="transactions file, workbook or folder of tables the apps show "
                          "(sets SALESPLAN_DATA; default: that variable, else the demo company)")
    srv.add_argument("--port", type=int, default=8866, help="port to listen on (default 8866)")
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1; any other address needs --token)")
    srv.add_argument("--lang", default=None, choices=sorted(LANGUAGES),
                     help="language of the pages (sets SALESPLAN_LANG; default: that variable, else en)")
    srv.add_argument("--token", default=None,
                     help="secret every visitor must give once (?token=...); default $SALESPLAN_TOKEN")
    srv.add_argument("--notebooks", default="notebooks", metavar="FOLDER",
                     help="folder of the app notebooks (default: ./notebooks)")
    srv.add_argument("--config", default=None, metavar="FILE",
                     help="traitlets config file read after salesplan/serve/serve_config.py")


def _print_problems(exc: SalesplanError, out: TextIO) -> None:
    problems = getattr(exc, "problems", None) or [str(exc)]
    print(f"\nProblems ({len(problems)}):", file=out)
    for p in problems:
        print(f"  - {p}", file=out)


def _convert(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    import time

    from salesplan import engine
    from salesplan.io import MAX_DROP_FRACTION

    columns = _parse_columns(args.column, parser)
    if columns and any(isinstance(k, int) for k in columns):
        parser.error("convert maps columns by header name (--column 'Header=field'), not by position")
    max_drop = MAX_DROP_FRACTION if args.max_drop is None else args.max_drop
    if not 0 <= max_drop <= 1:
        parser.error(f"--max-drop must be a share between 0 and 1 (e.g. 0.25), got {args.max_drop}")
    print(f"salesplan convert: {args.path} -> {args.out}", file=out)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SalesplanWarning)
        try:
            report = engine.to_parquet(args.path, args.out, overwrite=args.overwrite, columns=columns,
                                       dayfirst=args.dayfirst, delimiter=args.delimiter,
                                       max_drop_fraction=max_drop)
        except SalesplanError as exc:
            _print_problems(exc, out)
            print(f"\nFAILED: {args.out} was not written.", file=out)
            return 1
    mapping = ", ".join(f"{h!r} -> {f}" for h, f in report.mapping.items())
    print(f"Columns: {mapping}", file=out)
    for text in dict.fromkeys(report.warnings + [str(w.message) for w in caught]):
        print(f"Warning: {text}", file=out)
    dropped = report.rows_read - report.rows
    print(f"Lines written: {report.rows:,} of {report.rows_read:,} read"
          + (f" ({dropped:,} dropped)" if dropped else "") + f"; returns / credit notes: {report.returns:,}",
          file=out)
    print(f"OK: wrote {args.out} in {time.perf_counter() - start:,.1f} s.", file=out)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from salesplan.serve import ServeError, serve

    try:
        return serve(notebooks=args.notebooks, data=args.data, host=args.host, port=args.port,
                     lang=args.lang, token=args.token, config=args.config)
    except ServeError as exc:
        print(f"salesplan serve: error: {exc}", file=sys.stderr)
        return 2


def _parse_columns(pairs: Sequence[str], parser: argparse.ArgumentParser) -> dict | None:
    mapping: dict = {}
    for pair in pairs:
        header, sep, field = pair.partition("=")
        if not sep or not header.strip():
            parser.error(f"--column expects HEADER=FIELD (e.g. 'Order Date=order_date'), got {pair!r}")
        header = header.strip()
        key: object = int(header) if header.isdigit() else header
        mapping[key] = field.strip() or None
    return mapping or None


def _parse_stages(pairs: Sequence[str], parser: argparse.ArgumentParser) -> dict | None:
    mapping: dict = {}
    for pair in pairs:
        theirs, sep, ours = pair.rpartition("=")
        if not sep or not theirs.strip() or not ours.strip():
            parser.error(f"--stage expects THEIRS=OURS (e.g. 'Demo booked=needs_analysis'), got {pair!r}")
        mapping[theirs.strip()] = ours.strip()
    return mapping or None


def _is_data_set(args: argparse.Namespace) -> bool:
    """Whether PATH is a folder, or a workbook with several sheets read as a whole."""
    from pathlib import Path

    if args.table is not None or args.sheet is not None or args.column or args.query:
        return False
    path = Path(args.path)
    if path.is_dir():
        return True
    if path.is_file() and path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            with pd.ExcelFile(path, engine="openpyxl") as book:
                return len(book.sheet_names) > 1
        except Exception:  # a damaged workbook: let the single-table loader explain
            return False
    return False


def _recognise(path: str) -> tuple[str, str]:
    """The table a file holds by its name, else its headers; transactions when neither says."""
    from pathlib import Path

    from salesplan.io import recognise_file

    if not Path(path).is_file():
        return "transactions", ""
    table, how = recognise_file(path)
    if table is None or (table == "transactions" and how == "headers"):
        return "transactions", ""
    return table, f" (recognised by its {how})"


def _validate(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    from functools import partial

    from salesplan.io import MAX_DROP_FRACTION, LoadReport, load_table, load_transactions

    columns = _parse_columns(args.column, parser)
    stages = _parse_stages(args.stage, parser)
    max_drop = MAX_DROP_FRACTION if args.max_drop is None else args.max_drop
    if not 0 <= max_drop <= 1:
        parser.error(f"--max-drop must be a share between 0 and 1 (e.g. 0.25), got {args.max_drop}")
    if _is_data_set(args):
        return _validate_data_set(args.path, max_drop=max_drop, stage_mapping=stages, out=out)
    table, how = args.table, ""
    if table is None:
        table, how = _recognise(args.path)
    sheet: object = 0
    if args.sheet is not None:
        sheet = int(args.sheet) if args.sheet.isdigit() else args.sheet
    schema = TABLES[table]
    options = {"stage_mapping": stages} if stages else {}
    print(f"salesplan validate: {args.path} as {table}{how}", file=out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SalesplanWarning)
        try:
            # transactions go through load_transactions, which loads a large file through DuckDB
            load = load_transactions if table == "transactions" and not options else partial(load_table, table=table)
            df = load(args.path, columns=columns, query=args.query, sheet_name=sheet,
                      encoding=args.encoding, dayfirst=args.dayfirst, delimiter=args.delimiter,
                      max_drop_fraction=max_drop, **options)
        except SalesplanDataError as exc:
            report = getattr(exc, "report", None)
            if isinstance(report, LoadReport):
                _print_report(report, None, schema, out)
            _print_problems(exc, out)
            print(f"\nFAILED: {args.path} cannot be loaded as {table}.", file=out)
            return 1
        except SalesplanError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from salesplan.io import load_report

    report = load_report(df)
    _print_report(report, df, schema, out)
    if caught:
        print(f"\nWarnings ({len(caught)}):", file=out)
        for w in caught:
            print(f"  - {w.message}", file=out)
    print(f"\nOK: {report.rows:,} rows can be loaded as {table}.", file=out)
    return 0


def _validate_data_set(path: str, *, max_drop: float, stage_mapping: dict | None, out: TextIO) -> int:
    from salesplan.io import NOT_RECOGNISED, load_data

    print(f"salesplan validate: {path} (every table)", file=out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SalesplanWarning)
        try:
            data = load_data(path, max_drop_fraction=max_drop, stage_mapping=stage_mapping)
        except SalesplanDataError as exc:
            print(f"\nProblem: {exc}", file=out)
            print(f"\nFAILED: {path} cannot be loaded.", file=out)
            return 1
        except SalesplanError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    found = data.found()
    tables = found[found["table"] != NOT_RECOGNISED]
    print("\nTables found:", file=out)
    for row in tables[tables["found"]].itertuples():
        span = ""
        if pd.notna(row.date_from):
            span = f", {row.date_from:%Y-%m-%d} .. {row.date_to:%Y-%m-%d}"
        print(f"  {row.table}: {row.source} (by {row.recognised_by}), {row.rows:,} rows{span}", file=out)
        print(f"      unlocks {row.unlocks}", file=out)
    missing = tables[~tables["found"]]
    if len(missing):
        print("\nNot found (add them to unlock more):", file=out)
        for row in missing.itertuples():
            reason = " - could not be loaded, see the warnings" if row.note else ""
            print(f"  {row.table}: {row.unlocks}{reason}", file=out)
    others = found[found["table"] == NOT_RECOGNISED]
    if len(others):
        print("\nFiles not used:", file=out)
        for row in others.itertuples():
            print(f"  {row.source}: {row.note}", file=out)
    from salesplan.io import load_report

    report = load_report(data["transactions"])
    print(f"\nTransactions: {report.rows:,} lines, revenue total {data['transactions']['revenue'].sum():,.2f}",
          file=out)
    _print_guests(report, out)
    if caught:
        print(f"\nWarnings ({len(caught)}):", file=out)
        for w in caught:
            print(f"  - {w.message}", file=out)
    print(f"\nOK: {len(data)} table(s) can be loaded from {path}.", file=out)
    return 0


def _print_guests(report, out: TextIO) -> None:
    if report.guest_lines:
        print(f"Lines without a customer: {report.guest_lines:,} (revenue {report.guest_revenue:,.2f}); "
              "kept for revenue, market and forecasts, left out of customer analyses", file=out)
    else:
        print("Lines without a customer: 0", file=out)


def _print_report(report, df: pd.DataFrame | None, schema, out: TextIO) -> None:
    details = [f"format: {report.format}"]
    if report.encoding:
        details.append(f"encoding {report.encoding}")
    if report.delimiter:
        details.append(f"delimiter {report.delimiter}")
    if report.sheet:
        details.append(f"sheet {report.sheet!r}")
    print(", ".join(details), file=out)
    print("\nColumns recognised:", file=out)
    if report.mapping:
        width = max(len(h) for h in report.mapping)
        for header, field in report.mapping.items():
            print(f"  {header:<{width}} -> {field}", file=out)
    else:
        print("  (none)", file=out)
    absent = [c for c in schema.required if c not in report.mapping.values()]
    for item in report.derived:
        print(f"  derived: {item}", file=out)
    if absent and df is None:
        print(f"  required but not found: {', '.join(absent)}", file=out)
    if report.extra_columns:
        kept = ", ".join(f"{h} (as {n})" if h != n else h for h, n in report.extra_columns.items())
        print(f"Extra columns kept: {kept}", file=out)
    dropped = report.rows_read - report.rows
    line = f"\nRows: {report.rows_read:,} read"
    if df is not None:
        line += f", {report.rows:,} loaded"
    if report.rows_dropped:
        line += ", dropped: " + ", ".join(f"{k} {v:,}" for k, v in report.rows_dropped.items())
    elif dropped == 0 and df is not None:
        line += ", none dropped"
    print(line, file=out)
    if df is not None:
        for col in [c.name for c in schema.columns if c.kind == "date" and c.name in df]:
            values = df[col].dropna()
            if len(values):
                form = report.date_formats.get(col, "")
                print(f"Date range of {col}: {values.min():%Y-%m-%d} .. {values.max():%Y-%m-%d}"
                      + (f" (read as {form})" if form else ""), file=out)
        if report.kept_missing:
            kept = ", ".join(f"{f} {k:,}" for f, k in report.kept_missing.items())
            print(f"Kept although empty: {kept}", file=out)
        if schema.name == "opportunities" and "status" in df:
            counts = df["status"].value_counts()
            print("Status: " + ", ".join(f"{s} {int(counts.get(s, 0)):,}" for s in ("open", "won", "lost")), file=out)
        if schema.name == "transactions":
            print(f"Returns / credit notes: {report.returns:,}", file=out)
            print(f"Customers: {df['customer_id'].nunique():,}; revenue total: {df['revenue'].sum():,.2f}",
                  file=out)
            _print_guests(report, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``salesplan`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("salesplan: error: a command is required (e.g. 'salesplan validate FILE')", file=sys.stderr)
        return 2
    if args.command == "review":
        return _review(args, sys.stdout)
    if args.command == "serve":
        return _serve(args)
    try:
        if args.command == "convert":
            return _convert(args, parser, sys.stdout)
        return _validate(args, parser, sys.stdout)
    except SystemExit as exc:  # parser.error() inside the command
        return int(exc.code) if isinstance(exc.code, int) else 2


if __name__ == "__main__":
    sys.exit(main())
