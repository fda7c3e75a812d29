"""The ``salesplan`` command.

``salesplan validate PATH`` loads a file (or database) the way the workbench
would and prints what was recognised: the header -> field mapping, row counts,
the date range, returns, and every problem found. Exit codes: 0 when the data
can be loaded, 1 when it cannot, 2 on a usage error.

Examples
--------
.. code-block:: console

    $ salesplan validate sales.xlsx --sheet "2024"
    $ salesplan validate orders.csv --column "Fecha=order_date" --column "Cliente=customer_id"
    $ salesplan validate sqlite:///crm.db --table opportunities --query "SELECT * FROM deals"
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
        description="Sales-planning workbench: check that your data files can be loaded.",
    )
    parser.add_argument("--version", action="version", version=f"salesplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    val = sub.add_parser(
        "validate",
        help="load a file as one table and report what was recognised and every problem",
        description="Load PATH as one table of the data model and report the column mapping, "
                    "row counts, date range, returns and every problem found.",
    )
    val.add_argument("path", metavar="PATH",
                     help="file (.csv .tsv .txt .xlsx .parquet .db ...) or SQLAlchemy URL (sqlite:///x.db)")
    val.add_argument("--table", default="transactions", choices=list(TABLES),
                     help="table of the data model to load as (default: transactions)")
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
    return parser


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


def _validate(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    from salesplan.io import LoadReport, load_table

    columns = _parse_columns(args.column, parser)
    sheet: object = 0
    if args.sheet is not None:
        sheet = int(args.sheet) if args.sheet.isdigit() else args.sheet
    schema = TABLES[args.table]
    print(f"salesplan validate: {args.path} as {args.table}", file=out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SalesplanWarning)
        try:
            df = load_table(args.path, args.table, columns=columns, query=args.query, sheet_name=sheet,
                            encoding=args.encoding, dayfirst=args.dayfirst, delimiter=args.delimiter)
        except SalesplanDataError as exc:
            report = getattr(exc, "report", None)
            if isinstance(report, LoadReport):
                _print_report(report, None, schema, out)
            problems = getattr(exc, "problems", None) or [str(exc)]
            print(f"\nProblems ({len(problems)}):", file=out)
            for p in problems:
                print(f"  - {p}", file=out)
            print(f"\nFAILED: {args.path} cannot be loaded as {args.table}.", file=out)
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
    print(f"\nOK: {report.rows:,} rows can be loaded as {args.table}.", file=out)
    return 0


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
    dropped = sum(report.rows_dropped.values())
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
        if schema.name == "transactions":
            print(f"Returns / credit notes: {report.returns:,}", file=out)
            print(f"Customers: {df['customer_id'].nunique():,}; revenue total: {df['revenue'].sum():,.2f}",
                  file=out)


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
    try:
        return _validate(args, parser, sys.stdout)
    except SystemExit as exc:  # parser.error() inside the command
        return int(exc.code) if isinstance(exc.code, int) else 2


if __name__ == "__main__":
    sys.exit(main())
