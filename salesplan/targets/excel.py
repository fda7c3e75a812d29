"""The Excel round trip of a plan: a workbook a manager can edit, and reading the edits back.

:func:`export_excel` writes one sheet per level (units x months) that a
manager can work in: ids with names beside them and the units above them
(team, region), ``#,##0`` numbers, a frozen header, fitted widths, an annual
total column and a totals row as ``SUM`` formulas, each unit's attainment
probability, and an ``Assumptions`` sheet (growth, method, total, period,
data fingerprint, version, who made it and when). A level that is the sum of
a finer level (teams of their reps, the company of its regions) is written as
``SUM`` formulas over the finer sheet, so one edit recalculates every level.
White cells are inputs, shaded cells are formulas.

:func:`load_plan_excel` reads an edited workbook against the plan it was
exported from. Formulas are recomputed from the cells (cached results are
never trusted) and checked: every input cell must be a non-negative number,
every total must still add up, every unit row and month column must be where
it was exported. All bad cells are reported at once, by cell. Changed input
cells come back as the list of changes and as locks per unit (and month), for
the caller to re-allocate the rest so the plan total holds::

    edits = load_plan_excel("plan_edited.xlsx", plan)
    result = allocator.allocate(total, method="equal_probability", locks=edits.locks["rep"])
    phased = edits.apply_months(allocator.phase(result), level="rep")

The edited file is only read, never written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salesplan import format as fmt
from salesplan._validation import check_columns, check_frame
from salesplan.errors import SalesplanDataError, SalesplanError

if TYPE_CHECKING:  # plans.py imports this module; the Plan class is only needed for annotations
    from salesplan.targets.plans import Plan

__all__ = ["ExcelEdits", "export_excel", "load_plan_excel", "excel_assumptions", "plan_checksum"]

#: Label of the totals row (in the unit column) and of the annual total column.
TOTAL_LABEL = "Total"
#: Header of the probability column.
PROBABILITY_LABEL = "Attainment probability"
#: Name of the sheet with the plan's assumptions.
ASSUMPTIONS_SHEET = "Assumptions"
#: Label of the row that ties a workbook to the plan it was exported from.
CHECKSUM_LABEL = "Plan checksum"
NUMBER_FORMAT = "#,##0"
PERCENT_FORMAT = "0%"
_FORMULA_FILL = "F2F2F2"
_HEADER_FILL = "DDEBF7"
# Values read back equal the exported ones up to Excel's 15 significant digits.
_RTOL, _ATOL = 1e-9, 1e-6


# ---------------------------------------------------------------------------
# Layout: where every unit and month of a level goes (shared by export and import)
# ---------------------------------------------------------------------------
@dataclass
class _Layout:
    level: str
    sheet: str
    units: list[str]
    parents: list[str]
    months: list[pd.Timestamp]
    labels: list[str]
    values: np.ndarray  # units x months, as planned
    context: list[tuple[str, list[str]]]  # (header, value per unit), outermost level first
    child: str | None = None  # the finer level this one is the sum of
    groups: list[list[int]] = field(default_factory=list)  # per unit: its rows in the child's order
    m0: int = 0  # column of the first month on the sheet (set on export)

    def row(self, i: int) -> int:
        return i + 2

    @property
    def total_row(self) -> int:
        return len(self.units) + 2


def _month_labels(months: Sequence[pd.Timestamp]) -> list[str]:
    labels = [f"{m:%b %Y}" for m in months]
    return labels if len(set(labels)) == len(labels) else [f"{m:%Y-%m-%d}" for m in months]


def _header(level: str) -> str:
    return level.replace("_", " ").capitalize()


def _close(a: Any, b: Any) -> Any:
    return np.isclose(a, b, rtol=_RTOL, atol=_ATOL)


def _layouts(plan: Plan, levels: Sequence[str] | None) -> dict[str, _Layout]:
    table = plan.table
    check_frame(table, name="plan.table")
    check_columns(table, ["period", "level", "key", "value"], name="plan.table")
    t = table.assign(period=pd.to_datetime(table["period"]), key=table["key"].astype("str"),
                     level=table["level"].astype("str"))
    if "parent" not in t.columns:
        t["parent"] = "all"
    t["parent"] = t["parent"].fillna("all").astype("str")
    present = list(dict.fromkeys(t["level"]))
    levels = present if levels is None else [str(lv) for lv in levels]
    missing = [lv for lv in levels if lv not in present]
    if missing:
        raise SalesplanError(f"the plan has no rows at level(s) {missing}; levels: {present}.")
    sheets = [lv[:31] for lv in levels]
    if len(set(map(str.lower, sheets))) < len(sheets) or ASSUMPTIONS_SHEET.lower() in map(str.lower, sheets):
        raise SalesplanError(f"levels {levels} give clashing sheet names (31 characters, case-insensitive, "
                             f"and not {ASSUMPTIONS_SHEET!r}); rename the levels.")
    parent_of = {lv: g.groupby("key", sort=False)["parent"].first().to_dict() for lv, g in t.groupby("level")}
    out: dict[str, _Layout] = {}
    for lv, sheet in zip(levels, sheets):
        sub = t[t["level"] == lv]
        wide = sub.pivot_table(index="key", columns="period", values="value", aggfunc="sum", sort=True)
        months = list(wide.columns)
        parents = parent_of[lv]
        # The chain of units above each unit (team, region...), found among the plan's other levels.
        chains: dict[str, dict[str, str]] = {}
        order: list[str] = []
        for u in wide.index:
            chain: dict[str, str] = {}
            p, seen = parents[u], {lv}
            while p != "all":
                above = [m for m in present if m not in seen and p in parent_of[m]]
                if not above:
                    chain["Parent"] = p
                    break
                chain[_header(above[0])] = p
                seen.add(above[0])
                p = parent_of[above[0]][p]
            chains[u] = chain
            order += [h for h in chain if h not in order]
        order = order[::-1]  # outermost first
        units = sorted(wide.index, key=lambda u: (tuple(chains[u].get(h, "") for h in order), u))
        vals = wide.reindex(index=units).fillna(0.0).to_numpy(float)
        out[lv] = _Layout(lv, sheet, list(units), [parents[u] for u in units], months, _month_labels(months),
                          vals, [(h, [chains[u].get(h, "") for u in units]) for h in order])
    _find_children(out, levels)
    return out


def _find_children(layouts: dict[str, _Layout], levels: Sequence[str]) -> None:
    """Mark each level that is exactly the sum of a finer one (fewest units first, no cycles)."""
    rank = {lv: (len(layouts[lv].units), -i) for i, lv in enumerate(levels)}
    for lv in levels:
        me = layouts[lv]
        found: list[tuple[int, str, list[list[int]]]] = []
        for c in levels:
            ch = layouts[c]
            if c == lv or rank[c] <= rank[lv] or ch.months != me.months:
                continue
            if len(me.units) == 1:
                groups = [list(range(len(ch.units)))]
            else:
                pos = {u: i for i, u in enumerate(me.units)}
                if not set(ch.parents) <= set(pos):
                    continue
                groups = [[] for _ in me.units]
                for j, p in enumerate(ch.parents):
                    groups[pos[p]].append(j)
                if not all(groups):
                    continue
            sums = np.array([ch.values[g].sum(axis=0) for g in groups])
            if _close(sums, me.values).all():
                found.append((len(ch.units), c, groups))
        if found:
            _, me.child, me.groups = min(found, key=lambda f: f[0])


def plan_checksum(plan: Plan) -> str:
    """A short sha256 of the plan's ``level, key, period, value`` rows: ties a workbook to its plan.

    It does not change when the plan is saved and loaded again.
    """
    t = plan.table
    rows = pd.DataFrame({
        "level": t["level"].astype("str"), "key": t["key"].astype("str"),
        "period": pd.to_datetime(t["period"]).dt.strftime("%Y-%m-%d"),
        "value": t["value"].astype(float).round(6),
    }).sort_values(["level", "key", "period"], ignore_index=True)
    return hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------
def _lookup(arg: Any, value_col: str, what: str) -> Callable[[str, str], Any]:
    """``(level, key) -> value`` from a frame (``unique_id``/``rep_id``, optional ``level``), Series or mapping."""
    if arg is None:
        return lambda lv, k: None
    if isinstance(arg, pd.DataFrame):
        idc = "unique_id" if "unique_id" in arg.columns else "rep_id" if "rep_id" in arg.columns else None
        if idc == "rep_id" and value_col not in arg.columns:
            return lambda lv, k: None  # a reps frame without names: its team and region are still shown
        if idc is None or value_col not in arg.columns:
            raise SalesplanError(f"{what} must have columns unique_id (or rep_id) and {value_col!r} "
                                 f"(optionally level); got {list(arg.columns)}.")
        f = arg.dropna(subset=[value_col])
        if "level" in f.columns:
            d = {(str(lv), str(k)): v for lv, k, v in zip(f["level"], f[idc], f[value_col])}
            return lambda lv, k: d.get((lv, k))
        d = dict(zip(f[idc].astype("str"), f[value_col]))
        only = "rep" if idc == "rep_id" else None
        return lambda lv, k: d.get(k) if only in (None, lv) else None
    if isinstance(arg, (pd.Series, Mapping)):
        d = {str(k): v for k, v in dict(arg).items() if not fmt._missing(v)}
        return lambda lv, k: d.get(k)
    raise SalesplanError(f"{what} must be a DataFrame, a Series or a mapping id -> value, got {type(arg).__name__}.")


def _reps_context(names: Any) -> dict[str, dict[str, str]]:
    """Team and region of each rep from a reps frame, for a plan that has no such levels."""
    if not isinstance(names, pd.DataFrame) or "rep_id" not in names.columns:
        return {}
    return {_header(c): dict(zip(names["rep_id"].astype("str"), names[c].astype("str")))
            for c in ("region", "team") if c in names.columns}


def _context_columns(lay: _Layout, reps_context: dict[str, dict[str, str]]) -> list[tuple[str, list[str]]]:
    """The columns left of the unit id: the units above it (outermost first)."""
    context = list(lay.context)
    if lay.level != "rep" or not reps_context:
        return context
    have = {h for h, _ in context}
    extra = [(h, [m.get(u, "") for u in lay.units]) for h, m in reps_context.items() if h not in have]
    # A parent that is not a level of the plan, but is the reps frame's team or region, gets that name.
    same = [vals for h, vals in extra if any(h2 == "Parent" and v2 == vals for h2, v2 in context)]
    return extra + [(h, v) for h, v in context if not (h == "Parent" and same)]


def _names(lay: _Layout, name_of: Callable) -> list[str | None]:
    return [None if fmt._missing(x) else str(x) for x in (name_of(lay.level, u) for u in lay.units)]


def _range(col1: int, row1: int, col2: int, row2: int, sheet: str | None = None) -> str:
    from openpyxl.utils import get_column_letter as L

    ref = f"{L(col1)}{row1}" if (col1, row1) == (col2, row2) else f"{L(col1)}{row1}:{L(col2)}{row2}"
    return f"{_quote(sheet)}!{ref}" if sheet else ref


def _quote(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'"


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for r in rows:
        if runs and r == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], r)
        else:
            runs.append((r, r))
    return runs


def _text_width(v: Any, number_format: str | None) -> int:
    if v is None:
        return 0
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return len(fmt.percent(v, decimals=0) if number_format == PERCENT_FORMAT else fmt.money(v))
    return max((len(s) for s in str(v).splitlines()), default=0)


class _SheetWriter:
    """Cells of one sheet plus what is needed for widths and cached formula values."""

    def __init__(self, ws: Any) -> None:
        from openpyxl.styles import Border, Font, PatternFill, Side

        self.ws = ws
        self.widths: dict[int, int] = {}
        self.cached: dict[str, float] = {}
        self._bold = Font(bold=True)
        self._formula_fill = PatternFill("solid", fgColor=_FORMULA_FILL)
        self._header_fill = PatternFill("solid", fgColor=_HEADER_FILL)
        self._under = Border(bottom=Side(style="thin"))
        self._over = Border(top=Side(style="thin"))

    def put(self, row: int, col: int, value: Any, *, number_format: str | None = None, cached: float | None = None,
            header: bool = False, bold: bool = False, total: bool = False) -> None:
        c = self.ws.cell(row=row, column=col, value=value)
        if number_format:
            c.number_format = number_format
        if cached is not None:
            self.cached[c.coordinate] = float(cached)
            c.fill = self._formula_fill
        if header:
            c.font, c.fill, c.border = self._bold, self._header_fill, self._under
        elif total:
            c.font, c.border = self._bold, self._over
        elif bold:
            c.font = self._bold
        shown = cached if cached is not None else value
        self.widths[col] = max(self.widths.get(col, 0), _text_width(shown, number_format) + (2 if header else 0))

    def fit(self, *, lo: int = 8, hi: int = 60) -> None:
        from openpyxl.utils import get_column_letter

        for col, w in self.widths.items():
            self.ws.column_dimensions[get_column_letter(col)].width = min(max(w + 2, lo), hi)


def _write_level(wb: Any, lay: _Layout, layouts: dict[str, _Layout], name_of: Callable, prob_of: Callable,
                 reps_context: dict[str, dict[str, str]]) -> _SheetWriter:
    ws = wb.create_sheet(lay.sheet)
    w = _SheetWriter(ws)
    n, k = len(lay.units), len(lay.months)
    context = _context_columns(lay, reps_context)
    names = _names(lay, name_of)
    probs = [prob_of(lay.level, u) for u in lay.units]
    probs = [None if fmt._missing(p) else float(p) for p in probs]
    bad = [u for u, p in zip(lay.units, probs) if p is not None and not 0.0 <= p <= 1.0]
    if bad:
        raise SalesplanError(f"probabilities must be in [0, 1]; level {lay.level!r} has {len(bad)} outside: {bad[:5]}.")
    headers = [h for h, _ in context] + [_header(lay.level)] + (["Name"] if any(names) else [])
    key_col = len(context) + 1
    m0 = lay.m0  # first month column: len(headers) + 1
    tcol = m0 + k
    headers += lay.labels + [TOTAL_LABEL] + ([PROBABILITY_LABEL] if any(p is not None for p in probs) else [])
    for j, h in enumerate(headers, start=1):
        w.put(1, j, h, header=True)
    child = layouts[lay.child] if lay.child else None
    for i, u in enumerate(lay.units):
        r = lay.row(i)
        for j, (_, vals) in enumerate(context, start=1):
            w.put(r, j, vals[i] or None)
        w.put(r, key_col, u)
        if any(names):
            w.put(r, key_col + 1, names[i])
        for m in range(k):
            if child is None:
                w.put(r, m0 + m, float(lay.values[i, m]), number_format=NUMBER_FORMAT)
            else:
                refs = [_range(child.m0 + m, child.row(a), child.m0 + m, child.row(b), child.sheet)
                        for a, b in _runs(lay.groups[i])]
                w.put(r, m0 + m, f"=SUM({','.join(refs)})", number_format=NUMBER_FORMAT,
                      cached=float(lay.values[i, m]))
        w.put(r, tcol, f"=SUM({_range(m0, r, tcol - 1, r)})", number_format=NUMBER_FORMAT,
              cached=float(lay.values[i].sum()))
        if probs[i] is not None:
            w.put(r, tcol + 1, probs[i], number_format=PERCENT_FORMAT)
    tr = lay.total_row
    w.put(tr, key_col, TOTAL_LABEL, total=True)
    for j in range(1, tcol + 1):
        if j != key_col and j < m0:
            w.put(tr, j, None, total=True)
    for m in range(k + 1):
        col = m0 + m
        cached = lay.values[:, m].sum() if m < k else lay.values.sum()
        w.put(tr, col, f"=SUM({_range(col, 2, col, tr - 1)})", number_format=NUMBER_FORMAT, cached=cached, total=True)
    ws.freeze_panes = ws.cell(row=2, column=m0)
    w.fit()
    return w


def _assumption_rows(plan: Plan, layouts: dict[str, _Layout], checksum: str, extra: Mapping[str, Any] | None
                     ) -> list[tuple[str, Any, str | None]]:
    p, meta = dict(plan.parameters), dict(plan.metadata)
    months = sorted({m for lay in layouts.values() for m in lay.months})
    first = next(iter(layouts.values()))
    total = p.get("total", float(first.values.sum()))
    metric = ", ".join(sorted(set(plan.table["metric"].astype("str")))) if "metric" in plan.table else ""
    rows: list[tuple[str, Any, str | None]] = [
        ("Plan", plan.name, None),
        ("Version", meta.get("version") if meta.get("version") is not None else "not saved", None),
        ("Created by", meta.get("user") or "", None),
        ("Created at", meta.get("created_at") or "", None),
        ("Exported at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), None),
        ("Plan period", f"{months[0]:%Y-%m} to {months[-1]:%Y-%m}" if months else "", None),
        ("Metric", metric, None),
        ("Levels", ", ".join(layouts), None),
        ("Method", p.get("method", ""), None),
        ("Growth", p.get("growth"), PERCENT_FORMAT),
        ("Total", total, NUMBER_FORMAT),
        ("Data fingerprint", meta.get("fingerprint") or "", None),
    ]
    shown = {"method", "growth", "total", "period"}
    for key, v in p.items():
        if key in shown or key.replace("_", " ").capitalize() in {r[0] for r in rows}:
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            v = v if isinstance(v, str) else json.dumps(v, default=str)
            rows.append((key.replace("_", " ").capitalize(), v, None))
        else:
            kind = fmt.column_kind(key)
            rows.append((key.replace("_", " ").capitalize(), float(v),
                         PERCENT_FORMAT if kind == "percent" else NUMBER_FORMAT if kind in ("money", "count")
                         else "#,##0.##"))
    for key, v in (extra or {}).items():
        nf = PERCENT_FORMAT if fmt.column_kind(str(key)) == "percent" else None
        rows = [r for r in rows if r[0] != key] + [(str(key), v, nf)]
    rows.append((CHECKSUM_LABEL, checksum, None))
    return [(label, None if fmt._missing(v) else v, nf) for label, v, nf in rows]


_HOW_TO = (
    "How to edit: change the monthly numbers in the white cells of a level sheet; shaded cells are formulas "
    "(totals, and levels that add up a finer level) and recalculate. Do not insert, delete or move rows or "
    "columns. Import the workbook into the planner: changed cells become locked targets and the rest is "
    "re-allocated so the plan total holds. Names, teams, regions and probabilities are for reading only."
)


def export_excel(
    plan: Plan,
    path: str | os.PathLike,
    *,
    levels: Sequence[str] | None = None,
    probabilities: pd.DataFrame | pd.Series | Mapping[str, float] | None = None,
    names: pd.DataFrame | pd.Series | Mapping[str, str] | None = None,
    assumptions: Mapping[str, Any] | None = None,
) -> Path:
    """Write the plan as a workbook a manager can edit and :func:`load_plan_excel` can read back.

    One sheet per level: a header row (frozen, with the id columns), the
    units above each unit (team, region: from the plan's other levels, or
    from a reps frame), the unit id and name, one ``#,##0`` column per month,
    an annual ``Total`` column (``=SUM`` of the months), the unit's
    attainment probability (``0%``) and a ``Total`` row of ``=SUM`` formulas.
    A level that is exactly the sum of a finer level is written as ``=SUM``
    formulas over that level's sheet. Formula cells also carry their value,
    so viewers that do not recalculate show the totals. A last sheet,
    ``Assumptions``, lists the plan, version, who created it and when, the
    plan period, method, growth, total, data fingerprint, every other
    parameter and the plan checksum that :func:`load_plan_excel` matches.

    Parameters
    ----------
    plan : Plan
        The plan to export.
    path : str or path
        The ``.xlsx`` file to write (atomically: temporary file, then
        :func:`os.replace`; folders are created).
    levels : sequence of str, optional
        Levels to write, in sheet order (default: all, in the plan's order).
    probabilities : DataFrame, Series or mapping, optional
        Each unit's attainment probability in [0, 1]: a frame
        ``unique_id, probability`` (optionally ``level``, e.g.
        ``planner.probabilities``) or id -> probability. Default: the plan
        table's ``probability`` column, when it has one.
    names : DataFrame, Series or mapping, optional
        Names shown beside ids: a reps frame (``rep_id, name``, and ``team``
        / ``region`` shown for reps when the plan has no such levels), a
        frame ``unique_id, name`` (optionally ``level``), or id -> name.
        Default: the plan table's ``name`` column, when it has one.
    assumptions : mapping, optional
        More rows for the ``Assumptions`` sheet (label -> value); a label
        that is already there replaces its row.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    from salesplan.targets.plans import Plan

    if not isinstance(plan, Plan):
        raise SalesplanError(f"export_excel needs a Plan (see make_plan), got {type(plan).__name__}.")
    layouts = _layouts(plan, levels)
    t = plan.table
    if probabilities is None and "probability" in t.columns:
        probabilities = t.drop_duplicates(["level", "key"]).rename(columns={"key": "unique_id"})[
            ["level", "unique_id", "probability"]]
    if names is None and "name" in t.columns:
        names = t.drop_duplicates(["level", "key"]).rename(columns={"key": "unique_id"})[["level", "unique_id", "name"]]
    prob_of = _lookup(probabilities, "probability", "probabilities")
    name_of = _lookup(names, "name", "names")
    reps_context = _reps_context(names)
    for lay in layouts.values():  # where each sheet's months start, for the formulas of the levels above
        lay.m0 = len(_context_columns(lay, reps_context)) + 1 + int(any(_names(lay, name_of))) + 1
    checksum = plan_checksum(plan)
    wb = Workbook()
    wb.remove(wb.active)
    writers = [_write_level(wb, lay, layouts, name_of, prob_of, reps_context) for lay in layouts.values()]
    ws = wb.create_sheet(ASSUMPTIONS_SHEET)
    aw = _SheetWriter(ws)
    aw.put(1, 1, "Assumption", header=True)
    aw.put(1, 2, "Value", header=True)
    rows = _assumption_rows(plan, layouts, checksum, assumptions)
    for i, (label, value, nf) in enumerate(rows, start=2):
        aw.put(i, 1, label, bold=True)
        aw.put(i, 2, value, number_format=nf)
        ws.cell(row=i, column=2).alignment = Alignment(horizontal="left")
    note = ws.cell(row=len(rows) + 3, column=1, value=_HOW_TO)
    note.font = Font(italic=True)
    ws.merge_cells(start_row=len(rows) + 3, start_column=1, end_row=len(rows) + 3, end_column=2)
    note.alignment = Alignment(wrap_text=True, vertical="top")
    ws.row_dimensions[len(rows) + 3].height = 90
    ws.freeze_panes = "A2"
    aw.widths[2] = min(max(aw.widths.get(2, 0), 40), 60)
    aw.fit()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".xlsx")
    os.close(fd)
    try:
        buf = io.BytesIO()
        wb.save(buf)
        Path(tmp).write_bytes(_with_cached_values(buf.getvalue(), [w.cached for w in writers]))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


_FORMULA_CELL = re.compile(r'(<c r="([A-Z]+[0-9]+)"[^>]*>)(<f>[^<]*</f>)<v\s*/>')


def _with_cached_values(data: bytes, cached: list[dict[str, float]]) -> bytes:
    """Add each formula's value to the saved workbook (openpyxl writes formulas without results)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            m = re.fullmatch(r"xl/worksheets/sheet(\d+)\.xml", info.filename)
            if m and int(m.group(1)) <= len(cached) and cached[int(m.group(1)) - 1]:
                values = cached[int(m.group(1)) - 1]

                def fill(mt: re.Match, values: dict[str, float] = values) -> str:
                    v = values.get(mt.group(2))
                    return mt.group(0) if v is None else f"{mt.group(1)}{mt.group(3)}<v>{v!r}</v>"

                body = _FORMULA_CELL.sub(fill, body.decode("utf-8")).encode("utf-8")
            dst.writestr(info, body)
    return out.getvalue()


# ---------------------------------------------------------------------------
# Formulas: a small evaluator for what a manager types (never trusts cached results)
# ---------------------------------------------------------------------------
class _FormulaError(Exception):
    pass


_TOKEN = re.compile(r"""\s*(?:
    (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<func>[A-Za-z][A-Za-z0-9.]*)\s*\(
  | (?P<ref>(?:(?:'(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_.]*)!)?\$?[A-Za-z]{1,3}\$?\d+(?::\$?[A-Za-z]{1,3}\$?\d+)?)
  | (?P<op>[-+*/^(),%])
)""", re.X)
_CELL = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d+)")


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def _round_half_away(x: float, digits: int) -> float:
    f = 10.0 ** digits
    return math.copysign(math.floor(abs(x) * f + 0.5) / f, x)


_FUNCS: dict[str, Callable[[list[float]], float]] = {
    "SUM": lambda a: float(sum(a)),
    "MIN": lambda a: float(min(a)) if a else 0.0,
    "MAX": lambda a: float(max(a)) if a else 0.0,
    "AVERAGE": lambda a: float(sum(a) / len(a)) if a else math.nan,
    "ABS": lambda a: abs(a[0]),
    "ROUND": lambda a: _round_half_away(a[0], int(a[1]) if len(a) > 1 else 0),
}


class _Book:
    """The cells of a workbook (values or formula text) and their recomputed values."""

    def __init__(self, cells: dict[str, dict[tuple[int, int], Any]]) -> None:
        self.cells = cells
        self._memo: dict[tuple[str, int, int], float] = {}
        self._busy: set[tuple[str, int, int]] = set()

    def value(self, sheet: str, row: int, col: int, *, in_range: bool = False) -> float | None:
        """The number in a cell, recomputing formulas; None for text or blanks inside a range (ignored)."""
        v = self.cells.get(sheet, {}).get((row, col))
        if isinstance(v, str) and v.startswith("="):
            key = (sheet, row, col)
            if key in self._memo:
                return self._memo[key]
            if key in self._busy:
                raise _FormulaError("circular reference")
            self._busy.add(key)
            try:
                out = self.evaluate(v, sheet)
            finally:
                self._busy.discard(key)
            self._memo[key] = out
            return out
        if v is None:
            return None if in_range else 0.0
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if in_range:
                return None
            try:
                return float(str(v).replace(",", ""))
            except ValueError:
                raise _FormulaError(f"it uses the text {str(v)!r}") from None
        return float(v)

    def evaluate(self, formula: str, sheet: str) -> float:
        text = formula[1:] if formula.startswith("=") else formula
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m:
                raise _FormulaError(f"cannot read {text[pos:pos + 12]!r}")
            kind = m.lastgroup
            tokens.append((kind, m.group(kind)))
            pos = m.end()
        parser = _Parser(tokens, self, sheet)
        out = parser.expr()
        if parser.i != len(tokens):
            raise _FormulaError(f"cannot read {tokens[parser.i][1]!r}")
        if isinstance(out, list):
            raise _FormulaError("a range outside a function")
        if not math.isfinite(out):
            raise _FormulaError("it is not a finite number")
        return out

    def cells_of(self, ref: str, sheet: str) -> list[tuple[str, int, int]]:
        if "!" in ref:
            name, ref = ref.rsplit("!", 1)
            sheet = name[1:-1].replace("''", "'") if name.startswith("'") else name
        if sheet not in self.cells:
            raise _FormulaError(f"it refers to sheet {sheet!r}, which is not in the workbook")
        ends = [_CELL.fullmatch(p) for p in ref.split(":")]
        (c1, r1), (c2, r2) = [(_col_index(e.group(1)), int(e.group(2))) for e in (ends[0], ends[-1])]
        return [(sheet, r, c) for r in range(min(r1, r2), max(r1, r2) + 1) for c in range(min(c1, c2), max(c1, c2) + 1)]


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], book: _Book, sheet: str) -> None:
        self.t, self.i, self.book, self.sheet = tokens, 0, book, sheet

    def _peek(self) -> tuple[str, str] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def _take(self, op: str | None = None) -> tuple[str, str]:
        tok = self._peek()
        if tok is None or (op is not None and tok != ("op", op)):
            raise _FormulaError(f"expected {op!r}" if op else "it ends too early")
        self.i += 1
        return tok

    def expr(self) -> Any:
        out = self.term()
        while self._peek() in (("op", "+"), ("op", "-")):
            op = self._take()[1]
            out = _num(out) + _num(self.term()) if op == "+" else _num(out) - _num(self.term())
        return out

    def term(self) -> Any:
        out = self.unary()
        while self._peek() in (("op", "*"), ("op", "/")):
            op = self._take()[1]
            rhs = _num(self.unary())
            if op == "/" and rhs == 0:
                raise _FormulaError("it divides by zero")
            out = _num(out) * rhs if op == "*" else _num(out) / rhs
        return out

    def unary(self) -> Any:
        if self._peek() in (("op", "-"), ("op", "+")):
            sign = -1.0 if self._take()[1] == "-" else 1.0
            return sign * _num(self.unary())
        out = self.atom()
        if self._peek() == ("op", "^"):
            self._take()
            out = _num(out) ** _num(self.unary())
        return out

    def atom(self) -> Any:
        kind, text = self._take()
        if kind == "num":
            out: Any = float(text)
        elif kind == "ref":
            refs = self.book.cells_of(text, self.sheet)
            out = refs if ":" in text else self.book.value(*refs[0])
        elif kind == "func":
            name = text.upper()
            if name not in _FUNCS:
                raise _FormulaError(f"it uses {name}(), which cannot be checked here")
            args: list[float] = []
            if self._peek() != ("op", ")"):
                while True:
                    a = self.expr()
                    if isinstance(a, list):
                        args += [v for v in (self.book.value(*c, in_range=True) for c in a) if v is not None]
                    else:
                        args.append(a)
                    if self._peek() == ("op", ","):
                        self._take()
                        continue
                    break
            self._take(")")
            if name in ("ABS", "ROUND") and not args:
                raise _FormulaError(f"{name}() needs a number")
            out = _FUNCS[name](args)
        elif (kind, text) == ("op", "("):
            out = self.expr()
            self._take(")")
        else:
            raise _FormulaError(f"cannot read {text!r}")
        if self._peek() == ("op", "%"):
            self._take()
            out = _num(out) / 100.0
        return out


def _num(x: Any) -> float:
    if isinstance(x, list):
        raise _FormulaError("a range outside a function")
    return float(x)


# ---------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ExcelEdits:
    """What a manager changed in an exported workbook (see :func:`load_plan_excel`).

    Attributes
    ----------
    changes : DataFrame
        One row per changed input cell: ``sheet, cell, level, unique_id, ds,
        month, old, new, change`` (new - old), in sheet, row, column order.
    locks : dict
        Level -> {unit: its new annual total} for every unit with a changed
        month (an empty dict for a level without changes; levels written as
        sums of a finer level have none): pass ``locks[level]`` to
        :meth:`Allocator.allocate` (or the whole dict to
        :func:`allocate_hierarchy`).
    monthly_locks : DataFrame
        ``level, unique_id, ds, value, changed``: every month of every locked
        unit as in the workbook (``changed`` marks the edited cells), for
        phasing (see :meth:`apply_months`).
    path : pathlib.Path
        The workbook read.
    sha256 : str
        Hash of the workbook's bytes (the file is only read).
    """

    changes: pd.DataFrame
    locks: dict[str, dict[str, float]]
    monthly_locks: pd.DataFrame
    path: Path
    sha256: str

    @property
    def empty(self) -> bool:
        """True when nothing was changed."""
        return len(self.changes) == 0

    def apply_months(self, phased: pd.DataFrame, *, level: str = "rep") -> pd.DataFrame:
        """``phased`` (``unique_id, ds, value``) with the locked units' months as in the workbook.

        After re-allocating with ``locks[level]``, a locked unit's quota is
        the sum of its edited months, so the edited months replace its phased
        ones and every total still holds.
        """
        check_columns(phased, ["unique_id", "ds", "value"], name="phased")
        ml = self.monthly_locks[self.monthly_locks["level"] == level]
        out = phased.copy()
        if len(ml) == 0:
            return out
        keys = pd.MultiIndex.from_arrays([out["unique_id"].astype("str"), pd.to_datetime(out["ds"])])
        new = pd.Series(ml["value"].to_numpy(float), index=pd.MultiIndex.from_arrays([ml["unique_id"], ml["ds"]]))
        missing = new.index.difference(keys)
        if len(missing):
            raise SalesplanError(f"phased has no row for {len(missing)} locked cell(s) of level {level!r} "
                                 f"(first: {missing[0][0]}, {missing[0][1]:%Y-%m}); phase the same units and months.")
        hit = keys.isin(new.index)
        out.loc[hit, "value"] = new.reindex(keys[hit]).to_numpy()
        return out


@dataclass
class _Problem:
    sheet: str
    cell: str
    unit: str | None
    month: str | None
    message: str

    def text(self) -> str:
        where = ", ".join(x for x in (self.unit, self.month) if x)
        return f"Sheet {self.sheet!r}, cell {self.cell}{f' ({where})' if where else ''}: {self.message}"


def _coord(row: int, col: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(col)}{row}"


def _shown(x: float) -> str:
    return fmt.money(x) if float(x).is_integer() else fmt.number(x)


def _read_cells(wb: Any) -> dict[str, dict[tuple[int, int], Any]]:
    out: dict[str, dict[tuple[int, int], Any]] = {}
    for ws in wb.worksheets:
        d: dict[tuple[int, int], Any] = {}
        for row in ws.iter_rows():
            for c in row:
                v = c.value
                if v is None or (isinstance(v, str) and v.strip() == ""):
                    continue
                if not isinstance(v, (str, int, float, bool, _dt.date, _dt.datetime, _dt.time)):
                    v = getattr(v, "text", None) or f"={type(v).__name__}"  # array/table formulas
                d[(c.row, c.column)] = v
        out[ws.title] = d
    return out


def _structure(lay: _Layout, cells: dict[tuple[int, int], Any], problems: list[_Problem]) -> tuple[int, int] | None:
    """Locate the unit column and the first month column; None (with problems) when rows/columns moved."""
    header = {c: v for (r, c), v in cells.items() if r == 1}
    key_label = _header(lay.level)
    key_cols = [c for c, v in header.items() if str(v).strip() == key_label]
    first = [c for c, v in header.items() if str(v).strip() == lay.labels[0]]
    if not key_cols or not first:
        what = f"the unit column {key_label!r}" if not key_cols else f"the first month column {lay.labels[0]!r}"
        problems.append(_Problem(lay.sheet, "row 1", None, None, f"{what} is not in the header any more; "
                                 "re-export the plan or undo the column change."))
        return None
    kc, m0 = key_cols[0], first[0]
    ok = True
    expected = lay.labels + [TOTAL_LABEL]
    for j, label in enumerate(expected):
        got = header.get(m0 + j)
        if str(got).strip() != label:
            problems.append(_Problem(
                lay.sheet, _coord(1, m0 + j), None, None,
                f"the header should read {label!r} but reads {'nothing' if got is None else repr(str(got))}; "
                "a month column was inserted, deleted, moved or renamed. Undo that change."))
            ok = False
    found = [cells.get((lay.row(i), kc)) for i in range(len(lay.units))]
    found = [None if v is None else str(v).strip() for v in found]
    if found != lay.units:
        ok = False
        have = {v: i for i, v in enumerate(found) if v is not None}
        column = [str(v).strip() for (r, c), v in cells.items() if c == kc and r > 1]
        for i, u in enumerate(lay.units):
            if u not in column:
                problems.append(_Problem(lay.sheet, _coord(lay.row(i), kc), u, None,
                                         f"unit {u!r} is missing: its row {lay.row(i)} was deleted or its id "
                                         "changed. Put the row back as exported."))
        known = set(lay.units) | {TOTAL_LABEL}
        for i, v in enumerate(found):
            if v is not None and v not in known:
                problems.append(_Problem(lay.sheet, _coord(lay.row(i), kc), v, None,
                                         f"unit {v!r} is not in the plan; ids must stay as exported "
                                         "(add units in the planner, not in the workbook)."))
        moved = [(i, v) for i, v in enumerate(found) if v in have and v in lay.units and v != lay.units[i]]
        if moved and all(u in column for u in lay.units):
            i, v = moved[0]
            problems.append(_Problem(
                lay.sheet, _coord(lay.row(i), kc), v, None,
                f"rows were inserted, deleted or moved: this row should hold {lay.units[i]!r} but holds {v!r} "
                f"({len(moved)} row(s) out of place). Sort them back as exported."))
    if str(cells.get((lay.total_row, kc), "")).strip() != TOTAL_LABEL and ok:
        problems.append(_Problem(lay.sheet, _coord(lay.total_row, kc), None, None,
                                 f"the {TOTAL_LABEL!r} row should be here; rows were inserted or deleted above it."))
        ok = False
    return (kc, m0) if ok else None


def _what_is_wrong(v: Any) -> str:
    if isinstance(v, bool):
        return f"{v!r} is not a number"
    if isinstance(v, (_dt.date, _dt.datetime, _dt.time)):
        return f"{v} is a date, not a number; format the cell as a number and type the target"
    if isinstance(v, str):
        try:
            float(v.replace(",", ""))
            return f"{v!r} is text, not a number (Excel does not add it up); retype it as a number"
        except ValueError:
            return f"{v!r} is not a number; type a number such as 1200"
    return f"{v!r} is not a number"


def load_plan_excel(path: str | os.PathLike, plan: Plan, *, levels: Sequence[str] | None = None) -> ExcelEdits:
    """Read a workbook written by :func:`export_excel` and edited by a person: what changed, and locks.

    Every level sheet is compared with ``plan`` (the plan it was exported
    from; its checksum on the ``Assumptions`` sheet must match). Formulas are
    recomputed from the cells, never taken from the results Excel cached:
    the annual totals are checked as sums of the months, the totals row as
    the sum of the units, and a level written as the sum of a finer level as
    that sum. The file is only read.

    Parameters
    ----------
    path : str or path
        The edited ``.xlsx``.
    plan : Plan
        The plan the workbook was exported from (e.g. :func:`load_plan` of
        the version named on its ``Assumptions`` sheet).
    levels : sequence of str, optional
        The levels that were exported (default: those named on the
        ``Assumptions`` sheet, else all of the plan's).

    Returns
    -------
    ExcelEdits
        ``changes`` (``sheet, cell, level, unique_id, ds, month, old, new,
        change``), ``locks`` (level -> {unit: new annual total}) and
        ``monthly_locks`` (``level, unique_id, ds, value, changed``).

    Raises
    ------
    SalesplanDataError
        Listing every bad cell ("Sheet 'rep', cell D7 (R07, Mar 2026): 'abc'
        is not a number; ..."): text or dates in a number cell, negative or
        empty cells, formulas that cannot be checked, a total typed over a
        ``SUM`` that no longer holds, a unit row or month column that no
        longer matches, a deleted row, a missing sheet. The problems are
        also in the error's ``problems`` attribute (``sheet, cell, unit,
        month, message``).
    SalesplanError
        The file is not a workbook, or it was exported from another plan.
    """
    from salesplan.targets.plans import Plan

    if not isinstance(plan, Plan):
        raise SalesplanError("load_plan_excel needs the Plan the workbook was exported from, "
                             f"got {type(plan).__name__}.")
    path = Path(path)
    data, cells = _open(path)
    _check_checksum(cells, plan, path)
    if levels is None:
        levels = _assumption(cells, "Levels")
        levels = [lv.strip() for lv in str(levels).split(",")] if levels else None
    layouts = _layouts(plan, levels)
    problems: list[_Problem] = []
    where: dict[str, tuple[int, int]] = {}
    for lay in layouts.values():
        if lay.sheet not in cells:
            problems.append(_Problem(lay.sheet, "-", None, None, f"the sheet is missing (sheets: {list(cells)}); "
                                     "it may have been renamed or deleted."))
            continue
        loc = _structure(lay, cells[lay.sheet], problems)
        if loc is not None:
            where[lay.level] = loc
    book = _Book(cells)
    new: dict[str, np.ndarray] = {}
    # Finer levels first: a summed level is checked against its children's edited values.
    todo = [lv for lv in layouts if lv in where]
    while todo:
        ready = [lv for lv in todo if layouts[lv].child is None or layouts[lv].child not in todo]
        for lv in ready:
            todo.remove(lv)
            if layouts[lv].child is not None and layouts[lv].child not in new:
                continue  # the finer sheet's rows or columns moved: reported there, this one follows once fixed
            new[lv] = _check_level(layouts[lv], where[lv], cells[layouts[lv].sheet], book, layouts, new, problems)
    if problems:
        lines = [p.text() for p in problems]
        err = SalesplanDataError(
            f"the edited workbook {path.name!r} has {len(problems)} problem(s); fix these cells and import it "
            "again (or export a fresh workbook from the plan):\n  " + "\n  ".join(lines))
        err.problems = pd.DataFrame([vars(p) for p in problems],
                                    columns=["sheet", "cell", "unit", "month", "message"]).fillna("")
        raise err
    return _edits(layouts, where, new, path, hashlib.sha256(data).hexdigest())


def _open(path: Path) -> tuple[bytes, dict[str, dict[tuple[int, int], Any]]]:
    """The bytes and the cells of a workbook, read once (the file is never opened for writing)."""
    from openpyxl import load_workbook

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SalesplanError(f"cannot read the workbook {str(path)!r}: {exc}.") from None
    try:
        wb = load_workbook(io.BytesIO(data), data_only=False)
    except Exception as exc:  # noqa: BLE001 - zipfile, XML and openpyxl errors alike
        raise SalesplanError(f"{str(path)!r} is not an Excel workbook (.xlsx) that can be read ({exc}); "
                             "save it from Excel as .xlsx and import it again.") from None
    return data, _read_cells(wb)


def excel_assumptions(path: str | os.PathLike) -> dict[str, Any]:
    """The ``Assumptions`` sheet of a workbook written by :func:`export_excel`, label -> value.

    Tells which plan a workbook came from (``Plan``, ``Version``, ``Plan
    checksum``), so that it can be loaded before :func:`load_plan_excel`::

        about = excel_assumptions(path)
        plan = load_plan(about["Plan"], version=about["Version"], plan_dir=plan_dir)
        edits = load_plan_excel(path, plan)

    Returns an empty dict when the workbook has no such sheet.
    """
    _, cells = _open(Path(path))
    sheet = cells.get(ASSUMPTIONS_SHEET, {})
    out: dict[str, Any] = {}
    for r in sorted({r for (r, c) in sheet if r > 1}):
        label = sheet.get((r, 1))
        if isinstance(label, str) and label.strip() and (r, 2) in sheet and label.strip() not in out:
            out[label.strip()] = sheet[(r, 2)]
    return out


def _assumption(cells: dict[str, dict[tuple[int, int], Any]], label: str) -> Any:
    """The value of an ``Assumptions`` row (None when the sheet or the row is gone)."""
    sheet = cells.get(ASSUMPTIONS_SHEET, {})
    rows = sorted(r for (r, c), v in sheet.items() if c == 1 and str(v).strip() == label)
    return sheet.get((rows[0], 2)) if rows else None


def _check_checksum(cells: dict[str, dict[tuple[int, int], Any]], plan: Plan, path: Path) -> None:
    found = _assumption(cells, CHECKSUM_LABEL)
    if found is None:
        return  # the row was removed: the rows and columns are still checked one by one
    found = str(found).strip()
    want = plan_checksum(plan)
    if found != want:
        raise SalesplanError(
            f"{path.name!r} was exported from another plan (its {CHECKSUM_LABEL} is {found!r}, plan "
            f"{plan.name!r} version {plan.version} has {want!r}); load the plan named on its {ASSUMPTIONS_SHEET!r} "
            "sheet (load_plan(name, version=...)) and import again.")


def _check_level(lay: _Layout, loc: tuple[int, int], cells: dict[tuple[int, int], Any], book: _Book,
                 layouts: dict[str, _Layout], new: dict[str, np.ndarray], problems: list[_Problem]) -> np.ndarray:
    kc, m0 = loc
    n, k = len(lay.units), len(lay.months)
    tcol = m0 + k
    vals = np.full((n, k), np.nan)  # NaN where a cell is bad: sums over it are not checked
    expected = None
    if lay.child is not None:
        cv = new[lay.child]
        expected = np.array([cv[g].sum(axis=0) for g in lay.groups])

    def bad(r: int, c: int, unit: str, month: str, msg: str) -> None:
        problems.append(_Problem(lay.sheet, _coord(r, c), unit, month, msg))

    for i, u in enumerate(lay.units):
        r = lay.row(i)
        for m in range(k):
            c = m0 + m
            v = cells.get((r, c))
            if v is None:
                bad(r, c, u, lay.labels[m], "the cell is empty; type 0 for no target" if lay.child is None else
                    f"the cell is empty; restore the formula (it adds up sheet {layouts[lay.child].sheet!r})")
                continue
            if isinstance(v, str) and v.startswith("="):
                try:
                    x = book.value(lay.sheet, r, c)
                except _FormulaError as exc:
                    bad(r, c, u, lay.labels[m], f"the formula {v!r} cannot be checked: {exc}; type the number instead")
                    continue
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                x = float(v)
            else:
                bad(r, c, u, lay.labels[m], _what_is_wrong(v))
                continue
            if not math.isfinite(x):
                bad(r, c, u, lay.labels[m], f"{x} is not a finite number")
            elif x < 0:
                bad(r, c, u, lay.labels[m], f"{_shown(x)} is negative; targets must be 0 or more")
            elif expected is not None and np.isnan(expected[i, m]):
                pass  # its finer cells are bad: what it should add up to is unknown
            elif expected is not None and not _close(x, expected[i, m]):
                child = layouts[lay.child]
                how = (f"the formula {v!r} gives {_shown(x)}" if isinstance(v, str)
                       else f"{_shown(x)} was typed over the SUM formula")
                bad(r, c, u, lay.labels[m],
                    f"{how}, but the {child.level}s of {u} on sheet {child.sheet!r} add up to "
                    f"{_shown(expected[i, m])}; change the {child.level}s' numbers there and restore the formula")
            else:
                vals[i, m] = x
    below = sorted({r for (r, c), v in cells.items() if r > lay.total_row and m0 <= c <= tcol
                    and isinstance(v, (int, float)) and not isinstance(v, bool)})
    for r in below:
        what = cells.get((r, kc))
        bad(r, kc, None if what is None else str(what), None,
            "numbers below the totals row are not part of the plan and would be lost; add units in the planner "
            "and export again, or clear the row")
    rows_ok = ~np.isnan(vals).any(axis=1)
    cols_ok = ~np.isnan(vals).any(axis=0)
    # Annual totals: a typed number must equal the months; a formula must still add them up.
    for i, u in enumerate(lay.units):
        if rows_ok[i]:
            _check_total(lay, book, cells, lay.row(i), tcol, u, TOTAL_LABEL, float(vals[i].sum()),
                         "the months add up to {}; restore =SUM(" + _range(m0, lay.row(i), tcol - 1, lay.row(i)) + ")",
                         problems)
    tr = lay.total_row
    for m in range(k + 1):
        if (cols_ok[m] if m < k else cols_ok.all()):
            want = float(vals[:, m].sum()) if m < k else float(vals.sum())
            _check_total(lay, book, cells, tr, m0 + m, TOTAL_LABEL, lay.labels[m] if m < k else TOTAL_LABEL, want,
                         "the units add up to {}; restore =SUM(" + _range(m0 + m, 2, m0 + m, tr - 1) + ")", problems)
    return vals


def _check_total(lay: _Layout, book: _Book, cells: dict[tuple[int, int], Any], r: int, c: int, unit: str, month: str,
                 want: float, fix: str, problems: list[_Problem]) -> None:
    v = cells.get((r, c))
    fix = fix.format(_shown(want))
    if v is None:
        problems.append(_Problem(lay.sheet, _coord(r, c), unit, month, f"the total is empty; {fix}"))
        return
    if isinstance(v, str) and v.startswith("="):
        try:
            x = book.value(lay.sheet, r, c)
        except _FormulaError as exc:
            problems.append(_Problem(lay.sheet, _coord(r, c), unit, month,
                                     f"the formula {v!r} cannot be checked: {exc}; {fix}"))
            return
        how = f"the formula {v!r} gives {_shown(x)}"
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        x = float(v)
        how = f"{_shown(x)} was typed over the SUM formula"
    else:
        problems.append(_Problem(lay.sheet, _coord(r, c), unit, month, f"{_what_is_wrong(v)}; {fix}"))
        return
    if not _close(x, want):
        problems.append(_Problem(lay.sheet, _coord(r, c), unit, month, f"{how}, but {fix}"))


def _edits(layouts: dict[str, _Layout], where: dict[str, tuple[int, int]], new: dict[str, np.ndarray],
           path: Path, sha: str) -> ExcelEdits:
    rows, locks, monthly = [], {}, []
    for lv, lay in layouts.items():
        if lay.child is not None:
            continue  # sums of a finer level: their edits are the finer level's
        kc, m0 = where[lv]
        vals = new[lv]
        changed = ~_close(vals, lay.values)
        for i, m in zip(*np.nonzero(changed)):
            rows.append({"sheet": lay.sheet, "cell": _coord(lay.row(i), m0 + m), "level": lv,
                         "unique_id": lay.units[i], "ds": lay.months[m], "month": lay.labels[m],
                         "old": float(lay.values[i, m]), "new": float(vals[i, m]),
                         "change": float(vals[i, m] - lay.values[i, m]), "_r": lay.row(i), "_c": m0 + m})
        units = np.nonzero(changed.any(axis=1))[0]
        locks[lv] = {lay.units[i]: float(vals[i].sum()) for i in units}
        for i in units:
            for m in range(len(lay.months)):
                monthly.append({"level": lv, "unique_id": lay.units[i], "ds": lay.months[m],
                                "value": float(vals[i, m]), "changed": bool(changed[i, m])})
    cols = ["sheet", "cell", "level", "unique_id", "ds", "month", "old", "new", "change"]
    changes = pd.DataFrame(rows, columns=cols + ["_r", "_c"])
    changes = changes.sort_values(["sheet", "_r", "_c"], kind="stable", ignore_index=True)[cols] if len(changes) \
        else changes[cols]
    changes = changes.astype({"sheet": "str", "cell": "str", "level": "str", "unique_id": "str", "month": "str",
                              "old": float, "new": float, "change": float})
    changes["ds"] = pd.to_datetime(changes["ds"])
    ml = pd.DataFrame(monthly, columns=["level", "unique_id", "ds", "value", "changed"])
    ml = ml.astype({"level": "str", "unique_id": "str", "value": float, "changed": bool})
    ml["ds"] = pd.to_datetime(ml["ds"])
    return ExcelEdits(changes, locks, ml, path, sha)
