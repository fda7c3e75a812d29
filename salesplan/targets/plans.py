"""Scenarios and plans: named, versioned plan files, diffs and exports.

A plan is the long targets table (``period, level, key, metric, value`` as in
:data:`salesplan.schema.TARGETS`, plus ``parent``) with its parameters. Saved
plans live in ``plans/`` (settable): ``<name>_v<N>.json`` (human-readable:
metadata, parameters and the rows) and ``<name>_v<N>.csv`` (the rows). Every
save is a new version: the version number is claimed by creating the JSON file
exclusively (``O_CREAT | O_EXCL``), so two savers never get the same number
and no version is ever overwritten; contents are written to a temporary file
and moved in place with :func:`os.replace`, so a reader never sees half a file.

:func:`export_excel` writes a workbook a manager can edit, and
:func:`load_plan_excel` reads the edits back as locks (see
:mod:`salesplan.targets.excel`).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_columns
from salesplan.errors import SalesplanError
from salesplan.schema import TARGET_LEVELS
from salesplan.targets._data import fingerprint
from salesplan.targets.excel import ExcelEdits, excel_assumptions, export_excel, load_plan_excel, plan_checksum

__all__ = [
    "Scenario",
    "Plan",
    "make_plan",
    "plan_scenario",
    "save_plan",
    "load_plan",
    "list_plans",
    "diff_plans",
    "export_excel",
    "load_plan_excel",
    "ExcelEdits",
    "excel_assumptions",
    "plan_checksum",
    "export_csv",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PLAN_COLUMNS = ["period", "level", "key", "parent", "metric", "value"]


@dataclass(frozen=True)
class Scenario:
    """A what-if: growth, price, win rate and headcount changes.

    Parameters
    ----------
    name : str
        Used as the plan name when saved.
    growth : float
        Volume growth over the base (0.1 = +10 %).
    price_change : float
        Price change applied on top (0.03 = +3 %).
    win_rate_change : float
        Relative change of pipeline win rates (for the bottom-up view).
    headcount : int
        Reps added at the start of the period.
    productivity : float
        A ramped rep's monthly number (for ``headcount``).
    ramp : tuple of float
        New reps' share of productivity per ``ramp_months`` months.
    method : str
        Allocation method (see :data:`salesplan.targets.METHODS`).

    Examples
    --------
    >>> Scenario("base+", growth=0.1, price_change=0.02).total(1000.0)
    1122.0
    >>> Scenario("hire", headcount=2, productivity=10.0).total(0.0, months=12)
    150.0
    """

    name: str
    growth: float = 0.0
    price_change: float = 0.0
    win_rate_change: float = 0.0
    headcount: int = 0
    productivity: float = 0.0
    ramp: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    ramp_months: int = 3
    method: str = "equal_probability"

    def total(self, base: float, *, months: int = 12) -> float:
        """Base x (1 + growth) x (1 + price change) + ramped capacity of the new heads."""
        if self.headcount < 0:
            raise SalesplanError(f"Scenario {self.name!r}: headcount must be >= 0, got {self.headcount}.")
        ramp = np.asarray(self.ramp, dtype=float)
        steps = np.minimum(np.arange(months) // self.ramp_months, len(ramp) - 1)
        added = self.headcount * self.productivity * float(ramp[steps].sum())
        value = float(base) * (1 + self.growth) * (1 + self.price_change) + added
        if value < 0:
            raise SalesplanError(f"Scenario {self.name!r} gives a negative total ({value:,.2f}); check growth/price_change.")
        return round(value, 10)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain JSON-able values."""
        d = asdict(self)
        d["ramp"] = list(d["ramp"])
        return d


@dataclass
class Plan:
    """A named plan: the targets table and what produced it.

    Attributes
    ----------
    name : str
    table : DataFrame
        ``period, level, key, parent, metric, value`` (+ optional columns
        such as ``probability``), one row per unit and month.
    parameters : dict
        Method, total, locks, scenario... (JSON-able).
    metadata : dict
        ``version``, ``created_at``, ``user``, ``fingerprint`` once saved.
    """

    name: str
    table: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> int | None:
        """The saved version number (None before saving)."""
        return self.metadata.get("version")

    def totals(self) -> pd.DataFrame:
        """Per level: the sum of ``value``. Columns ``level, value``."""
        return self.table.groupby("level", sort=False, as_index=False)["value"].sum()


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SalesplanError(
            f"plan name {name!r} must start with a letter or digit and use only letters, digits, '_', '-', '.'; "
            "e.g. 'plan_2026_base'."
        )
    return name


def make_plan(
    name: str,
    phased: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    metric: str = "revenue",
    level: str = "rep",
    parents: Mapping[str, str] | pd.Series | None = None,
    parameters: Mapping[str, Any] | None = None,
    inputs: Mapping[str, pd.DataFrame | None] | None = None,
    extra: pd.DataFrame | None = None,
) -> Plan:
    """Build a :class:`Plan` from phased quotas.

    Parameters
    ----------
    phased : DataFrame or mapping level -> DataFrame
        ``unique_id, ds, value`` (from :meth:`Allocator.phase`), one per level.
    level : str
        The level of ``phased`` when it is a single frame.
    parents : mapping or Series, optional
        Unit -> parent key (default ``"all"``).
    inputs : mapping of frames, optional
        The data the plan was made from; its :func:`fingerprint` is stored.
    extra : DataFrame, optional
        ``unique_id`` and per-unit columns (e.g. ``probability``) to keep.
    """
    _check_name(name)
    frames = dict(phased) if isinstance(phased, Mapping) else {level: phased}
    parts = []
    for lv, f in frames.items():
        if lv not in TARGET_LEVELS:
            raise SalesplanError(f"level {lv!r} must be one of {TARGET_LEVELS}.")
        check_columns(f, ["unique_id", "ds", "value"], name=f"phased[{lv!r}]")
        par = pd.Series(parents) if parents is not None else pd.Series(dtype="str")
        p = f["unique_id"].astype("str").map(par).fillna("all") if len(par) else "all"
        part = pd.DataFrame({
            "period": pd.to_datetime(f["ds"]), "level": lv, "key": f["unique_id"].astype("str"),
            "parent": p, "metric": metric, "value": f["value"].astype(float),
        })
        if extra is not None:
            part = part.merge(extra.rename(columns={"unique_id": "key"}).astype({"key": "str"}), on="key", how="left")
        parts.append(part)
    table = pd.concat(parts, ignore_index=True).astype({"level": "str", "key": "str", "parent": "str", "metric": "str"})
    meta = {"fingerprint": fingerprint(dict(inputs)) if inputs else None}
    return Plan(name, table, dict(parameters or {}), meta)


def plan_scenario(
    allocator: Any,
    scenario: Scenario,
    *,
    base: float | None = None,
    locks: Mapping[str, float] | None = None,
    potential: Any = None,
    capacity: Any = None,
    profile: str = "history",
    metric: str = "revenue",
    level: str = "rep",
    parents: Mapping[str, str] | pd.Series | None = None,
    inputs: Mapping[str, pd.DataFrame | None] | None = None,
) -> Plan:
    """Allocate and phase a scenario's total with a fitted allocator; return it as a :class:`Plan`.

    Parameters
    ----------
    allocator : salesplan.targets.Allocator
        Fitted on the history (and the forecast sample paths).
    scenario : Scenario
        Its :meth:`Scenario.total` of ``base`` is allocated by ``scenario.method``.
    base : float, optional
        What growth is measured against; default last year's actual for the
        period (``allocator.last_year_.sum()``).

    Returns
    -------
    Plan
        Named after the scenario; ``parameters`` hold the scenario, base,
        total, locks and profile; the table carries each unit's ``probability``.
    """
    if not isinstance(scenario, Scenario):
        raise SalesplanError(f"scenario must be a Scenario, got {type(scenario).__name__}.")
    base = float(allocator.last_year_.sum()) if base is None else float(base)
    total = scenario.total(base, months=len(allocator.months_))
    res = allocator.allocate(total, method=scenario.method, locks=locks, potential=potential, capacity=capacity)
    phased = allocator.phase(res, profile=profile)
    params = {**scenario.to_dict(), "base": base, "total": float(res["quota"].sum()), "locks": dict(locks or {}),
              "profile": profile, "period": [f"{allocator.months_[0]:%Y-%m}", f"{allocator.months_[-1]:%Y-%m}"]}
    return make_plan(scenario.name, phased, metric=metric, level=level, parents=parents, parameters=params,
                     inputs=inputs, extra=res[["unique_id", "probability"]])


def _json_default(o: Any) -> Any:
    if isinstance(o, (pd.Timestamp, _dt.date, _dt.datetime)):
        return o.isoformat()
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (pd.Series,)):
        return o.to_dict()
    return str(o)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _versions(plan_dir: Path, name: str) -> list[int]:
    pat = re.compile(rf"^{re.escape(name)}_v(\d+)\.json$")
    return sorted(int(m.group(1)) for p in plan_dir.glob(f"{name}_v*.json") if (m := pat.match(p.name)))


def save_plan(plan: Plan, *, plan_dir: str | os.PathLike = "plans", user: str | None = None) -> Path:
    """Save ``plan`` as the next version ``<name>_v<N>.json`` + ``.csv``; never overwrites.

    The metadata records ``version``, ``created_at`` (UTC, ISO), ``user``
    (:func:`getpass.getuser` by default) and the data ``fingerprint``.

    Returns
    -------
    pathlib.Path
        The JSON file written. ``plan.metadata`` is updated in place.
    """
    if not isinstance(plan, Plan):
        raise SalesplanError(f"save_plan needs a Plan (see make_plan), got {type(plan).__name__}.")
    _check_name(plan.name)
    d = Path(plan_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SalesplanError(f"cannot create the plan folder {str(d)!r}: {exc}. Choose another plan_dir.") from None
    if user is None:
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name in some containers
            user = "unknown"
    version = (_versions(d, plan.name) or [0])[-1] + 1
    while True:
        path = d / f"{plan.name}_v{version}.json"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            version += 1
            continue
        os.close(fd)
        break
    meta = {
        **plan.metadata,
        "name": plan.name,
        "version": version,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "user": user,
    }
    table = plan.table.copy()
    table["period"] = pd.to_datetime(table["period"]).dt.strftime("%Y-%m-%d")
    doc = {"metadata": meta, "parameters": plan.parameters, "targets": table.to_dict("records")}
    csv_path = path.with_suffix(".csv")
    _atomic_write(csv_path, table.to_csv(index=False))
    _atomic_write(path, json.dumps(doc, indent=2, default=_json_default, ensure_ascii=False) + "\n")
    plan.metadata.update(meta)
    plan.metadata["path"] = str(path)
    return path


def load_plan(path_or_name: str | os.PathLike, *, version: int | None = None,
              plan_dir: str | os.PathLike = "plans") -> Plan:
    """Load a saved plan: a JSON path, or a name (latest version unless ``version``)."""
    p = Path(path_or_name)
    if p.suffix != ".json":
        d = Path(plan_dir)
        vs = _versions(d, str(path_or_name)) if d.is_dir() else []
        if not vs:
            raise SalesplanError(f"no saved plan called {str(path_or_name)!r} in {str(d)!r}; "
                                 f"saved: {sorted(set(list_plans(d)['name'])) if d.is_dir() else []}.")
        v = vs[-1] if version is None else version
        if v not in vs:
            raise SalesplanError(f"plan {str(path_or_name)!r} has versions {vs}, not {version}.")
        p = d / f"{path_or_name}_v{v}.json"
    if not p.is_file():
        raise SalesplanError(f"plan file {str(p)!r} does not exist.")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        table = pd.DataFrame(doc["targets"])
    except (json.JSONDecodeError, KeyError) as exc:
        raise SalesplanError(f"plan file {str(p)!r} is not a salesplan plan ({exc}).") from None
    if len(table):
        table["period"] = pd.to_datetime(table["period"])
        table = table.astype({"level": "str", "key": "str", "parent": "str", "metric": "str", "value": float})
    meta = dict(doc.get("metadata", {}))
    meta["path"] = str(p)
    return Plan(meta.get("name", p.stem), table, doc.get("parameters", {}), meta)


def list_plans(plan_dir: str | os.PathLike = "plans") -> pd.DataFrame:
    """Saved plans. Columns ``name, version, created_at, user, fingerprint, path``."""
    d = Path(plan_dir)
    rows = []
    for p in sorted(d.glob("*_v*.json")) if d.is_dir() else []:
        try:
            meta = json.loads(p.read_text(encoding="utf-8")).get("metadata", {})
        except (json.JSONDecodeError, OSError):
            continue  # a version being written right now
        rows.append({k: meta.get(k) for k in ("name", "version", "created_at", "user", "fingerprint")} | {"path": str(p)})
    out = pd.DataFrame(rows, columns=["name", "version", "created_at", "user", "fingerprint", "path"])
    return out.sort_values(["name", "version"], ignore_index=True)


def diff_plans(a: Plan, b: Plan, *, only_changes: bool = True, tol: float = 1e-9) -> pd.DataFrame:
    """What moved between two plans, and by how much.

    Returns
    -------
    DataFrame
        ``level, key, period, metric, value_a, value_b, change`` (b - a),
        ``change_pct`` (relative to a), ``status`` (``added``, ``removed``,
        ``changed``, ``unchanged``), sorted by the size of the change.
    """
    keys = ["level", "key", "period", "metric"]
    for name, p in (("a", a), ("b", b)):
        if not isinstance(p, Plan):
            raise SalesplanError(f"diff_plans: {name} must be a Plan, got {type(p).__name__}.")
        check_columns(p.table, keys + ["value"], name=f"plan {name}")
    ta = a.table[keys + ["value"]].rename(columns={"value": "value_a"})
    tb = b.table[keys + ["value"]].rename(columns={"value": "value_b"})
    m = ta.merge(tb, on=keys, how="outer")
    m["change"] = m["value_b"].fillna(0.0) - m["value_a"].fillna(0.0)
    m["change_pct"] = np.where(m["value_a"].fillna(0) != 0, m["change"] / m["value_a"].where(m["value_a"] != 0), np.nan)
    m["status"] = np.select(
        [m["value_a"].isna(), m["value_b"].isna(), m["change"].abs() > tol],
        ["added", "removed", "changed"], default="unchanged",
    )
    if only_changes:
        m = m[m["status"] != "unchanged"]
    m = m.assign(_abs=m["change"].abs()).sort_values(["_abs", "level", "key", "period"], ascending=[False, True, True, True])
    return m.drop(columns="_abs").reset_index(drop=True)


def export_csv(plan: Plan, path: str | os.PathLike) -> Path:
    """Write the plan's long table to CSV (atomically). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = plan.table.copy()
    t["period"] = pd.to_datetime(t["period"]).dt.strftime("%Y-%m-%d")
    _atomic_write(path, t.to_csv(index=False))
    return path
