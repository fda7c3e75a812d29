"""Incentive plans: commission plans as data, payouts with statements, simulation and fairness.

A commission plan is plain data (a dict, or YAML when ``pyyaml`` is
installed) turned into a frozen :class:`CommissionPlan` by
:meth:`CommissionPlan.from_dict`, which checks every key and says what to fix.
It can hold:

- ``base_rate``: commission per unit of credited revenue (0.05 = 5 %);
- ``rates``: other rates for given categories or products
  (``{"category": {"Services": 0.08}, "product": {"P01": 0.1}}``; a product
  rate wins over its category's);
- ``tiers``: multipliers of the rate by attainment (``[{"from": 0, "multiplier": 0.5},
  {"from": 0.5, "multiplier": 1}, {"from": 1, "multiplier": 1.5}]``):
  decelerators below a threshold, accelerators above 100 %. With
  ``tier_mode="marginal"`` (default) each slice of revenue earns its own
  tier's multiplier, like tax brackets; with ``"retroactive"`` all revenue
  earns the multiplier of the highest tier reached;
- ``gate``: no commission below this attainment (0.5 = 50 %);
- ``cap``: ``{"attainment": 2.0}`` (revenue above 200 % of quota earns
  nothing) and/or ``{"amount": 60000}`` (commission per period at most this);
- ``spiffs``: extra pay for given products/categories and dates, as a rate
  of their revenue or an amount per unit;
- ``relief``: quota relief for a rep and period (leave, territory change), as
  a fraction of the quota or an amount;
- ``basis``: ``"booking"`` (order date) or ``"payment"`` (a ``payment_date``
  column, else the order date plus ``payment_lag_days``);
- ``draw``: a guaranteed amount per period, ``recoverable`` from later
  commission or not;
- ``period``: ``"month"``, ``"quarter"`` or ``"year"``: what attainment and
  payouts are measured over.

Functions
---------
- :func:`payouts` and :func:`statement`: pay per rep and period on history,
  and the line-by-line computation a rep can redo by hand;
  :func:`export_statements` writes one Excel sheet per rep.
- :func:`simulate`: the plan on simulated outcomes (sample paths), vectorised;
  :class:`PayoutSimulation` gives the payout and cost-of-sales distributions,
  tier probabilities and pay per unit of revenue.
- :func:`compare_plans` and :func:`payout_curve`: plans side by side on the
  same outcomes.
- :func:`fairness_check`: equal chances, equal pay?
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesplan import format as fmt
from salesplan._validation import check_columns, check_dates, check_frame, closest_matches, describe_rows
from salesplan.errors import SalesplanDataError, SalesplanError, SalesplanWarning

__all__ = [
    "Tier",
    "Spiff",
    "Relief",
    "Draw",
    "CommissionPlan",
    "blended_rates",
    "quotas",
    "payouts",
    "statement",
    "export_statements",
    "statement_table",
    "outcomes_from_samples",
    "outcomes_from_history",
    "simulate",
    "PayoutSimulation",
    "compare_plans",
    "payout_curve",
    "fairness_check",
    "STATEMENT_COLUMNS",
]

#: Columns of :func:`statement`.
STATEMENT_COLUMNS = ["rep_id", "period", "line", "item", "description", "base", "rate", "amount"]

_PERIODS = {"month": "M", "quarter": "Q", "year": "Y"}
_BASES = ("booking", "payment")
_TIER_MODES = ("marginal", "retroactive")
_PLAN_KEYS = ("name", "base_rate", "rates", "tiers", "tier_mode", "gate", "cap", "spiffs", "relief",
              "basis", "payment_lag_days", "draw", "period")


# --------------------------------------------------------------------------- plan as data


def _where(path: str) -> str:
    return f"plan{path}"


def _unknown_keys(d: Mapping, allowed: Sequence[str], path: str) -> None:
    for k in d:
        if k not in allowed:
            near = closest_matches(str(k), allowed, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise SalesplanError(
                f"{_where(path)} has an unknown key {k!r}.{hint} Allowed keys: {list(allowed)}."
            )


def _number(value: Any, path: str, *, low: float | None = 0.0, high: float | None = None,
            how: str = "") -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else float("nan")
    if not ok or not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
        rng = ("" if low is None else f">= {low:g}") + (" and " if low is not None and high is not None else "") + (
            "" if high is None else f"<= {high:g}")
        raise SalesplanError(
            f"{_where(path)} must be a number {rng}, got {value!r}. {how}".rstrip()
        )
    return v


def _date(value: Any, path: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise SalesplanError(f"{_where(path)} must be a date such as '2025-07-01', got {value!r}.")
    return ts.normalize()


def _str_list(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, (str, int)) for v in value):
        return tuple(str(v) for v in value)
    raise SalesplanError(f"{_where(path)} must be a name or a list of names, e.g. ['P01', 'P02'], got {value!r}.")


@dataclass(frozen=True)
class Tier:
    """A tier: from ``start`` attainment (fraction of quota) on, the rate is multiplied by ``multiplier``."""

    start: float
    multiplier: float
    label: str = ""


@dataclass(frozen=True)
class Spiff:
    """Extra pay for given products/categories sold between ``start`` and ``end`` (inclusive).

    Exactly one of ``rate`` (on the qualifying revenue) and ``per_unit``
    (on the qualifying quantity) is set. Empty ``products`` and
    ``categories`` mean every line. ``gated``: paid only when the gate is passed.
    """

    name: str
    products: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    rate: float | None = None
    per_unit: float | None = None
    gated: bool = False


@dataclass(frozen=True)
class Relief:
    """Quota relief for ``rep_id`` in the plan period starting ``period``: a ``fraction`` or an ``amount``."""

    rep_id: str
    period: pd.Timestamp
    fraction: float | None = None
    amount: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Draw:
    """A guaranteed ``amount`` per plan period; ``recoverable`` draws are paid back from later commission."""

    amount: float
    recoverable: bool = True


def _parse_tiers(raw: Any) -> tuple[Tier, ...]:
    if raw is None:
        return (Tier(0.0, 1.0, "all attainment"),)
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise SalesplanError(
            f"plan['tiers'] must be a non-empty list such as [{{'from': 0, 'multiplier': 1}}, "
            f"{{'from': 1.0, 'multiplier': 1.5}}], got {raw!r}."
        )
    tiers = []
    for i, t in enumerate(raw):
        p = f"['tiers'][{i}]"
        if not isinstance(t, Mapping):
            raise SalesplanError(f"{_where(p)} must be a mapping with 'from' and 'multiplier', got {t!r}.")
        _unknown_keys(t, ("from", "multiplier", "label"), p)
        for k in ("from", "multiplier"):
            if k not in t:
                raise SalesplanError(f"{_where(p)} needs {k!r} (attainment where the tier starts, e.g. 1.0 "
                                     f"for 100 %, and the rate multiplier, e.g. 1.5); got {dict(t)!r}.")
        start = _number(t["from"], p + "['from']", how="Attainment is a fraction of quota: 1.0 is 100 %.")
        mult = _number(t["multiplier"], p + "['multiplier']", how="Use 1 for the plan rate, 1.5 for an accelerator.")
        tiers.append(Tier(start, mult, str(t.get("label", ""))))
    starts = [t.start for t in tiers]
    if starts[0] != 0.0:
        raise SalesplanError(f"plan['tiers'][0]['from'] must be 0 (the first tier starts at no attainment), "
                             f"got {starts[0]!r}. Add a first tier {{'from': 0, 'multiplier': ...}}; use 'gate' "
                             "to pay nothing below a threshold.")
    for i in range(1, len(starts)):
        if starts[i] <= starts[i - 1]:
            raise SalesplanError(f"plan['tiers'] must start at increasing attainments; tier {i} starts at "
                                 f"{starts[i]!r}, not above tier {i - 1} ({starts[i - 1]!r}). Sort the tiers.")
    out = []
    for i, t in enumerate(tiers):
        span = f"{t.start:.0%} to {tiers[i + 1].start:.0%}" if i + 1 < len(tiers) else f"{t.start:.0%} and above"
        out.append(Tier(t.start, t.multiplier, t.label or span))
    return tuple(out)


def _parse_rates(raw: Any) -> tuple[tuple[str, str, float], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise SalesplanError(f"plan['rates'] must map 'category' or 'product' to {{name: rate}}, e.g. "
                             f"{{'category': {{'Services': 0.08}}}}; got {raw!r}.")
    _unknown_keys(raw, ("category", "product"), "['rates']")
    out = []
    for kind, table in raw.items():
        if not isinstance(table, Mapping):
            raise SalesplanError(f"plan['rates'][{kind!r}] must map names to rates, e.g. {{'P01': 0.1}}, got {table!r}.")
        for name, rate in table.items():
            out.append((kind, str(name), _number(rate, f"['rates'][{kind!r}][{name!r}]", high=1.0,
                                                  how="Rates are fractions of revenue: 0.08 is 8 %.")))
    return tuple(out)


def _parse_spiffs(raw: Any) -> tuple[Spiff, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise SalesplanError(f"plan['spiffs'] must be a list of mappings, got {raw!r}.")
    out = []
    for i, s in enumerate(raw):
        p = f"['spiffs'][{i}]"
        if not isinstance(s, Mapping):
            raise SalesplanError(f"{_where(p)} must be a mapping, got {s!r}.")
        _unknown_keys(s, ("name", "products", "categories", "start", "end", "rate", "per_unit", "gated"), p)
        has_rate, has_unit = s.get("rate") is not None, s.get("per_unit") is not None
        if has_rate == has_unit:
            raise SalesplanError(f"{_where(p)} needs exactly one of 'rate' (share of the qualifying revenue) "
                                 f"and 'per_unit' (amount per unit sold); got {dict(s)!r}.")
        start = _date(s["start"], p + "['start']") if s.get("start") is not None else None
        end = _date(s["end"], p + "['end']") if s.get("end") is not None else None
        if start is not None and end is not None and end < start:
            raise SalesplanError(f"{_where(p)} ends ({end.date()}) before it starts ({start.date()}).")
        out.append(Spiff(
            name=str(s.get("name", f"SPIFF {i + 1}")),
            products=_str_list(s.get("products"), p + "['products']"),
            categories=_str_list(s.get("categories"), p + "['categories']"),
            start=start, end=end,
            rate=_number(s["rate"], p + "['rate']", high=1.0) if has_rate else None,
            per_unit=_number(s["per_unit"], p + "['per_unit']") if has_unit else None,
            gated=bool(s.get("gated", False)),
        ))
    return tuple(out)


def _parse_relief(raw: Any) -> tuple[Relief, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise SalesplanError(f"plan['relief'] must be a list of mappings, got {raw!r}.")
    out = []
    for i, r in enumerate(raw):
        p = f"['relief'][{i}]"
        if not isinstance(r, Mapping):
            raise SalesplanError(f"{_where(p)} must be a mapping, got {r!r}.")
        _unknown_keys(r, ("rep_id", "period", "fraction", "amount", "reason"), p)
        for k in ("rep_id", "period"):
            if k not in r:
                raise SalesplanError(f"{_where(p)} needs {k!r}, e.g. {{'rep_id': 'R03', 'period': '2025-07-01', "
                                     f"'fraction': 0.33, 'reason': 'leave'}}; got {dict(r)!r}.")
        has_f, has_a = r.get("fraction") is not None, r.get("amount") is not None
        if has_f == has_a:
            raise SalesplanError(f"{_where(p)} needs exactly one of 'fraction' (of the quota) and 'amount'; "
                                 f"got {dict(r)!r}.")
        out.append(Relief(
            rep_id=str(r["rep_id"]), period=_date(r["period"], p + "['period']"),
            fraction=_number(r["fraction"], p + "['fraction']", high=1.0) if has_f else None,
            amount=_number(r["amount"], p + "['amount']") if has_a else None,
            reason=str(r.get("reason", "")),
        ))
    return tuple(out)


@dataclass(frozen=True)
class CommissionPlan:
    """A commission plan; build it with :meth:`from_dict` or :meth:`from_yaml`.

    See the module docstring for what each field means.

    Examples
    --------
    >>> plan = CommissionPlan.from_dict({
    ...     "name": "standard", "base_rate": 0.05, "gate": 0.5, "cap": {"attainment": 2.0},
    ...     "tiers": [{"from": 0, "multiplier": 0.5}, {"from": 0.8, "multiplier": 1.0},
    ...               {"from": 1.0, "multiplier": 1.5}]})
    >>> round(plan.commission(revenue=120_000.0, quota=100_000.0), 2)  # (80k x 0.5 + 20k x 1 + 20k x 1.5) x 5 %
    4500.0
    """

    name: str
    base_rate: float
    tiers: tuple[Tier, ...] = (Tier(0.0, 1.0, "all attainment"),)
    tier_mode: str = "marginal"
    gate: float = 0.0
    cap_attainment: float | None = None
    cap_amount: float | None = None
    rates: tuple[tuple[str, str, float], ...] = ()
    spiffs: tuple[Spiff, ...] = ()
    relief: tuple[Relief, ...] = ()
    basis: str = "booking"
    payment_lag_days: int = 30
    draw: Draw | None = None
    period: str = "quarter"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CommissionPlan:
        """Validate a plan given as data and build it.

        Raises
        ------
        SalesplanError
            Naming the key, the value seen and the fix.
        """
        if not isinstance(d, Mapping):
            raise SalesplanError(f"a commission plan must be a mapping (dict or YAML document), got {type(d).__name__}.")
        _unknown_keys(d, _PLAN_KEYS, "")
        if "base_rate" not in d:
            raise SalesplanError("plan needs 'base_rate', the commission per unit of revenue (e.g. 0.05 for 5 %).")
        base = _number(d["base_rate"], "['base_rate']", high=1.0, how="Rates are fractions of revenue: 0.05 is 5 %.")
        mode = d.get("tier_mode", "marginal")
        if mode not in _TIER_MODES:
            raise SalesplanError(f"plan['tier_mode'] must be one of {list(_TIER_MODES)}, got {mode!r}.")
        gate = _number(d.get("gate", 0.0), "['gate']", how="The gate is an attainment: 0.5 pays nothing below 50 %.")
        cap = d.get("cap") or {}
        if not isinstance(cap, Mapping):
            raise SalesplanError(f"plan['cap'] must be a mapping such as {{'attainment': 2.0}} or "
                                 f"{{'amount': 60000}}, got {cap!r}.")
        _unknown_keys(cap, ("attainment", "amount"), "['cap']")
        cap_att = _number(cap["attainment"], "['cap']['attainment']") if cap.get("attainment") is not None else None
        cap_amt = _number(cap["amount"], "['cap']['amount']") if cap.get("amount") is not None else None
        if cap_att is not None and cap_att <= gate:
            raise SalesplanError(f"plan['cap']['attainment'] ({cap_att:g}) must be above the gate ({gate:g}), "
                                 "otherwise nothing can ever be paid.")
        basis = d.get("basis", "booking")
        if basis not in _BASES:
            raise SalesplanError(f"plan['basis'] must be 'booking' or 'payment', got {basis!r}.")
        lag = d.get("payment_lag_days", 30)
        if not isinstance(lag, (int, np.integer)) or isinstance(lag, bool) or lag < 0:
            raise SalesplanError(f"plan['payment_lag_days'] must be a whole number of days >= 0, got {lag!r}.")
        draw_raw = d.get("draw")
        draw = None
        if draw_raw is not None:
            if not isinstance(draw_raw, Mapping) or "amount" not in draw_raw:
                raise SalesplanError(f"plan['draw'] must be a mapping such as {{'amount': 2000, 'recoverable': True}}, "
                                     f"got {draw_raw!r}.")
            _unknown_keys(draw_raw, ("amount", "recoverable"), "['draw']")
            rec = draw_raw.get("recoverable", True)
            if not isinstance(rec, bool):
                raise SalesplanError(f"plan['draw']['recoverable'] must be true or false, got {rec!r}.")
            draw = Draw(_number(draw_raw["amount"], "['draw']['amount']"), rec)
        period = d.get("period", "quarter")
        if period not in _PERIODS:
            raise SalesplanError(f"plan['period'] must be one of {list(_PERIODS)}, got {period!r}.")
        name = d.get("name", "plan")
        if not isinstance(name, str) or not name:
            raise SalesplanError(f"plan['name'] must be a non-empty text, got {name!r}.")
        tiers = _parse_tiers(d.get("tiers"))
        if cap_att is not None and tiers[-1].start >= cap_att:
            raise SalesplanError(f"plan['cap']['attainment'] ({cap_att:g}) must be above the last tier's start "
                                 f"({tiers[-1].start:g}); drop that tier or raise the cap.")
        return cls(
            name=name, base_rate=base, tiers=tiers, tier_mode=mode, gate=gate,
            cap_attainment=cap_att, cap_amount=cap_amt, rates=_parse_rates(d.get("rates")),
            spiffs=_parse_spiffs(d.get("spiffs")), relief=_parse_relief(d.get("relief")),
            basis=basis, payment_lag_days=int(lag), draw=draw, period=period,
        )

    @classmethod
    def from_yaml(cls, text_or_path: str | os.PathLike) -> CommissionPlan:
        """Build a plan from YAML text or a ``.yaml``/``.yml`` file (needs ``pyyaml``)."""
        try:
            import yaml
        except ImportError:  # pragma: no cover - depends on the environment
            raise SalesplanError("reading YAML plans needs the 'pyyaml' package (pip install pyyaml); "
                                 "or pass the plan as a dict to CommissionPlan.from_dict.") from None
        text = str(text_or_path)
        p = Path(text)
        if p.suffix.lower() in (".yaml", ".yml"):
            if not p.is_file():
                raise SalesplanError(f"plan file {text!r} does not exist.")
            text = p.read_text(encoding="utf-8")
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SalesplanError(f"the plan is not valid YAML: {exc}") from None
        return cls.from_dict(doc)

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data (JSON/YAML-able); ``from_dict(plan.to_dict()) == plan``."""
        d: dict[str, Any] = {"name": self.name, "base_rate": self.base_rate, "period": self.period,
                             "tiers": [{"from": t.start, "multiplier": t.multiplier, "label": t.label}
                                       for t in self.tiers],
                             "tier_mode": self.tier_mode, "gate": self.gate, "basis": self.basis,
                             "payment_lag_days": self.payment_lag_days}
        cap = {k: v for k, v in (("attainment", self.cap_attainment), ("amount", self.cap_amount)) if v is not None}
        if cap:
            d["cap"] = cap
        if self.rates:
            rates: dict[str, dict[str, float]] = {}
            for kind, name, rate in self.rates:
                rates.setdefault(kind, {})[name] = rate
            d["rates"] = rates

        def day(ts):
            return None if ts is None else ts.date().isoformat()

        if self.spiffs:
            d["spiffs"] = [{"name": x.name, "products": list(x.products), "categories": list(x.categories),
                            "start": day(x.start), "end": day(x.end), "rate": x.rate, "per_unit": x.per_unit,
                            "gated": x.gated} for x in self.spiffs]
        if self.relief:
            d["relief"] = [{"rep_id": x.rep_id, "period": day(x.period), "fraction": x.fraction, "amount": x.amount,
                            "reason": x.reason} for x in self.relief]
        if self.draw is not None:
            d["draw"] = {"amount": self.draw.amount, "recoverable": self.draw.recoverable}
        return d

    # -- the kernel, shared by statements and simulation -------------------------------------

    def _bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        starts = np.array([t.start for t in self.tiers])
        ends = np.append(starts[1:], np.inf)
        if self.cap_attainment is not None:
            ends = np.minimum(ends, self.cap_attainment)
        return starts, ends, np.array([t.multiplier for t in self.tiers])

    def tiered_revenue(self, revenue: Any, quota: Any) -> np.ndarray:
        """Revenue weighted by tier multipliers, before the gate and the amount cap.

        Arrays broadcast: ``revenue`` of shape ``(..., n)`` with ``quota`` of
        shape ``(n,)`` works. Commission is this times the rate.
        """
        rev = np.asarray(revenue, dtype=float)
        q = np.asarray(quota, dtype=float)
        starts, ends, mult = self._bounds()
        with np.errstate(divide="ignore", invalid="ignore"):
            att = rev / q
        if self.tier_mode == "marginal":
            # sum_k m_k * clip(att - lo_k, 0, hi_k - lo_k) is piecewise linear in attainment:
            # one interpolation over the tier starts instead of a pass per tier
            knots = starts if not np.isfinite(ends[-1]) else np.append(starts, ends[-1])
            widths = np.diff(knots)
            values = np.concatenate([[0.0], np.cumsum(mult[: len(widths)] * np.maximum(widths, 0.0))])
            f = np.interp(att, knots, values)
            if not np.isfinite(ends[-1]):
                f += mult[-1] * np.maximum(att - starts[-1], 0.0)
            return f * q
        k = np.searchsorted(starts, att, side="right") - 1
        credited = rev if self.cap_attainment is None else np.minimum(rev, self.cap_attainment * q)
        return mult[np.clip(k, 0, len(mult) - 1)] * np.maximum(credited, 0.0)

    def commission(self, revenue: Any, quota: Any, *, rate: Any = None) -> Any:
        """Commission for ``revenue`` against ``quota`` at ``rate`` (default the base rate).

        Applies tiers, the gate and the amount cap; no SPIFFs, relief or draw.
        Scalars in give a float out; arrays broadcast.
        """
        rev = np.asarray(revenue, dtype=float)
        q = np.asarray(quota, dtype=float)
        r = self.base_rate if rate is None else np.asarray(rate, dtype=float)
        com = r * self.tiered_revenue(rev, q)
        com = np.where(rev < self.gate * q, 0.0, com)
        if self.cap_amount is not None:
            com = np.minimum(com, self.cap_amount)
        return float(com) if com.ndim == 0 else com

    def tier_index(self, attainment: Any) -> np.ndarray:
        """Index of the highest tier reached at each attainment (0 = first tier)."""
        starts = np.array([t.start for t in self.tiers])
        return np.searchsorted(starts, np.asarray(attainment, dtype=float), side="right") - 1


def _as_plan(plan: Any, name: str = "plan") -> CommissionPlan:
    if isinstance(plan, CommissionPlan):
        return plan
    if isinstance(plan, Mapping):
        return CommissionPlan.from_dict(plan)
    raise SalesplanError(f"{name} must be a CommissionPlan or a dict, got {type(plan).__name__}.")


# --------------------------------------------------------------------------- history


def _period_start(dates: pd.Series, period: str) -> pd.Series:
    return dates.dt.to_period(_PERIODS[period]).dt.start_time.astype("datetime64[ns]")


def _period_label(start: pd.Timestamp, period: str) -> str:
    p = pd.Timestamp(start).to_period(_PERIODS[period])
    return str(p) if period != "quarter" else f"{p.year}-Q{p.quarter}"


def _line_rates(plan: CommissionPlan, tx: pd.DataFrame) -> np.ndarray:
    rate = np.full(len(tx), plan.base_rate)
    for kind in ("category", "product"):  # product rates override category rates
        col = "category" if kind == "category" else "product_id"
        table = {name: r for k, name, r in plan.rates if k == kind}
        if not table:
            continue
        if col not in tx.columns:
            raise SalesplanDataError(f"the plan has {kind} rates but the transactions have no {col!r} column. "
                                     f"Columns found: {[str(c) for c in tx.columns]}.")
        hit = tx[col].astype("str").map(table)
        rate = np.where(hit.notna(), hit.astype(float).fillna(0.0), rate)
    return rate


def _rate_group(plan: CommissionPlan, tx: pd.DataFrame) -> pd.Series:
    group = pd.Series("base rate", index=tx.index, dtype="object")
    for kind in ("category", "product"):  # same precedence as _line_rates
        col = "category" if kind == "category" else "product_id"
        for k, name, _ in plan.rates:
            if k == kind and col in tx.columns:
                group[tx[col].astype("str") == name] = f"{kind} {name}"
    return group


def _credited(plan: CommissionPlan, tx: pd.DataFrame) -> pd.DataFrame:
    """Transactions with ``credit_date`` (booking or payment) and ``rate``; lines without rep dropped (warned)."""
    check_frame(tx, name="tx")
    check_columns(tx, ["order_date", "rep_id", "revenue"], name="tx",
                  hint="Commission is paid on transactions credited to a rep (rep_id).")
    work = tx.copy()
    work["order_date"] = check_dates(work["order_date"], name="tx['order_date']")
    if plan.basis == "payment":
        if "payment_date" in work.columns:
            paid = check_dates(work["payment_date"], name="tx['payment_date']")
            work["credit_date"] = paid
        else:
            warnings.warn(f"plan {plan.name!r} pays on payment but tx has no 'payment_date' column; "
                          f"payment is assumed {plan.payment_lag_days} days after the order date for "
                          f"all {len(work)} line(s).", SalesplanWarning, stacklevel=3)
            work["credit_date"] = work["order_date"] + pd.Timedelta(days=plan.payment_lag_days)
    else:
        work["credit_date"] = work["order_date"]
    no_rep = work["rep_id"].isna()
    unpaid = work["credit_date"].isna()
    if no_rep.any():
        warnings.warn(f"{int(no_rep.sum())} transaction line(s) have no rep_id ({describe_rows(work.index[no_rep])}) "
                      "and earn no commission.", SalesplanWarning, stacklevel=3)
    work = work[~no_rep & ~unpaid]
    work["rep_id"] = work["rep_id"].astype("str")
    work["rate"] = _line_rates(plan, work)
    work["rate_group"] = _rate_group(plan, work)
    return work


def quotas(targets: pd.DataFrame, *, period: str = "quarter", metric: str = "revenue") -> pd.DataFrame:
    """Rep quotas per plan period from the targets table (``level == "rep"``).

    Returns
    -------
    DataFrame
        ``rep_id``, ``period`` (start of the plan period), ``quota``.
    """
    check_frame(targets, name="targets")
    check_columns(targets, ["period", "level", "key", "metric", "value"], name="targets")
    if period not in _PERIODS:
        raise SalesplanError(f"period must be one of {list(_PERIODS)}, got {period!r}.")
    t = targets[(targets["level"].astype("str") == "rep") & (targets["metric"].astype("str") == metric)]
    if t.empty:
        raise SalesplanDataError(
            f"targets has no rep quota (rows with level == 'rep' and metric == {metric!r}); levels found: "
            f"{sorted(targets['level'].astype('str').unique())}. Add rep targets or build them with "
            "salesplan.targets.make_plan(level='rep')."
        )
    ds = check_dates(t["period"], name="targets['period']")
    out = pd.DataFrame({"rep_id": t["key"].astype("str").to_numpy(),
                        "period": _period_start(ds, period).to_numpy(),
                        "quota": t["value"].astype(float).to_numpy()})
    return out.groupby(["rep_id", "period"], as_index=False, sort=True)["quota"].sum()


def blended_rates(plan: CommissionPlan | Mapping, tx: pd.DataFrame) -> pd.DataFrame:
    """Each rep's revenue-weighted plan rate from the product/category mix of ``tx``.

    What :func:`simulate` uses when outcomes only carry revenue totals.

    Returns
    -------
    DataFrame
        ``rep_id``, ``revenue``, ``rate``.
    """
    plan = _as_plan(plan)
    work = _credited(plan, tx)
    work["_com"] = work["revenue"] * work["rate"]
    g = work.groupby("rep_id", sort=True).agg(revenue=("revenue", "sum"), _com=("_com", "sum"))
    g["rate"] = np.where(g["revenue"] > 0, g["_com"] / g["revenue"].where(g["revenue"] > 0), plan.base_rate)
    return g.reset_index()[["rep_id", "revenue", "rate"]]


def _window_filter(work: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    if start is not None:
        work = work[work["credit_date"] >= pd.Timestamp(start)]
    if end is not None:
        work = work[work["credit_date"] <= pd.Timestamp(end) + pd.Timedelta(days=1) - pd.Timedelta(nanoseconds=1)]
    return work


def _money(x: float) -> str:
    return fmt.number(x, decimals=2)


def _pct(x: float, d: int = 2) -> str:
    return fmt.percent(x, decimals=d)


def _compute(plan: CommissionPlan, tx: pd.DataFrame, targets: pd.DataFrame, start: Any, end: Any
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    work = _window_filter(_credited(plan, tx), start, end)
    work = work.assign(period=_period_start(work["credit_date"], plan.period))
    q = quotas(targets, period=plan.period)
    if start is not None:
        q = q[q["period"] >= _period_start(pd.Series([pd.Timestamp(start)]), plan.period)[0]]
    if end is not None:
        q = q[q["period"] <= pd.Timestamp(end)]
    sold = work.groupby(["rep_id", "period"], sort=True)["revenue"].sum().rename("revenue").reset_index()
    grid = q.merge(sold, on=["rep_id", "period"], how="outer")
    no_quota = grid["quota"].isna() | (grid["quota"] <= 0)
    if no_quota.any():
        bad = grid[no_quota]
        warnings.warn(
            f"{len(bad)} rep-period(s) with sales have no positive quota and are left out of the payouts "
            f"(first: {', '.join(f'{r} {_period_label(p, plan.period)}' for r, p in bad[['rep_id', 'period']].head(5).itertuples(index=False))}). "
            "Add rep targets for them.", SalesplanWarning, stacklevel=3)
        grid = grid[~no_quota]
    grid["revenue"] = grid["revenue"].fillna(0.0)
    grid = grid.sort_values(["rep_id", "period"], ignore_index=True)
    if grid.empty:
        raise SalesplanDataError("no rep has both a quota and a period in the window; check start/end and the targets.")

    reliefs = {(r.rep_id, _period_start(pd.Series([r.period]), plan.period)[0]): r for r in plan.relief}
    cells = set(zip(grid["rep_id"], grid["period"]))
    unmatched = [f"{rep} {_period_label(per, plan.period)}" for rep, per in reliefs if (rep, per) not in cells]
    if unmatched and start is None and end is None:
        warnings.warn(f"{len(unmatched)} quota relief(s) match no rep quota and are not applied: "
                      f"{', '.join(unmatched[:5])}. Check the rep_id and period in plan['relief'].",
                      SalesplanWarning, stacklevel=3)
    starts, ends, mult = plan._bounds()
    rows, lines = [], []
    balance: dict[str, float] = {}
    by_cell = {k: g for k, g in work.groupby(["rep_id", "period"], sort=False)}
    empty = work.iloc[:0]
    for rep, per, quota, revenue in grid[["rep_id", "period", "quota", "revenue"]].itertuples(index=False):
        label = _period_label(per, plan.period)
        out: list[tuple] = []

        def line(item, desc, base=np.nan, rate=np.nan, amount=np.nan):
            out.append((rep, per, len(out) + 1, item, desc, base, rate, amount))

        line("quota", f"Quota for {label} (sum of the monthly rep targets): {_money(quota)}", base=quota)
        relief = 0.0
        r = reliefs.get((rep, per))
        if r is not None:
            relief = quota * r.fraction if r.fraction is not None else min(r.amount, quota)
            relief = round(relief, 2)
            how = f"{_money(quota)} x {_pct(r.fraction)}" if r.fraction is not None else f"{_money(r.amount)}"
            line("relief", f"Quota relief{' for ' + r.reason if r.reason else ''}: {how} = {_money(relief)}; "
                 f"quota after relief {_money(quota - relief)}", base=quota,
                 rate=r.fraction if r.fraction is not None else np.nan)
        q_net = quota - relief
        if q_net <= 0:
            raise SalesplanDataError(f"quota relief for rep {rep} in {label} leaves no quota ({_money(q_net)}); "
                                     "a rep with no quota cannot be paid on attainment. Use a fraction below 1.")
        sub = by_cell.get((rep, per), empty)
        groups = sub.groupby("rate_group", sort=True).agg(revenue=("revenue", "sum"), rate=("rate", "first"))
        basis = "payment" if plan.basis == "payment" else "booking"
        for gname, grev, grate in groups.itertuples():
            line("revenue", f"Revenue credited on {basis}, {gname}: {_money(grev)} at {_pct(grate)}",
                 base=grev, rate=grate)
        base_com = float((groups["revenue"] * groups["rate"]).sum())
        blended = base_com / revenue if revenue > 0 else plan.base_rate
        att = revenue / q_net
        if len(groups) > 1:
            line("rate", f"Blended rate: commission at plan rates {_money(base_com)} / revenue {_money(revenue)} "
                 f"= {_pct(blended, 4)}", base=revenue, rate=blended)
        line("attainment", f"Attainment: revenue {_money(revenue)} / quota {_money(q_net)} = {_pct(att)}",
             base=revenue, rate=att)
        tiered_lines = []
        if plan.tier_mode == "marginal":
            for t, lo, hi, m in zip(plan.tiers, starts, ends, mult):
                part = float(np.clip(revenue - lo * q_net, 0.0, max(hi - lo, 0.0) * q_net))
                if part <= 0 and lo > 0:
                    continue
                rate = blended * m
                amt = round(part * rate, 2)
                tiered_lines.append(amt)
                span = f"{_pct(lo, 0)} to {_pct(hi, 0)}" if np.isfinite(hi) else f"{_pct(lo, 0)} and above"
                line("tier", f"Tier {t.label} (revenue from {span} of quota): {_money(part)} x "
                     f"{_pct(blended, 4)} x {m:g} = {_money(amt)}", base=part, rate=rate, amount=amt)
        else:
            k = int(plan.tier_index(att))
            credited = revenue if plan.cap_attainment is None else min(revenue, plan.cap_attainment * q_net)
            rate = blended * mult[k]
            amt = round(max(credited, 0.0) * rate, 2)
            tiered_lines.append(amt)
            line("tier", f"Tier {plan.tiers[k].label} reached: all revenue {_money(credited)} x {_pct(blended, 4)} x "
                 f"{mult[k]:g} = {_money(amt)}", base=credited, rate=rate, amount=amt)
        commission = float(sum(tiered_lines))
        if plan.cap_attainment is not None and att > plan.cap_attainment:
            above = revenue - plan.cap_attainment * q_net
            line("cap", f"Cap: revenue above {_pct(plan.cap_attainment, 0)} of quota ({_money(above)}) "
                 "earns no commission", base=above)
        if att < plan.gate:
            line("gate", f"Gate: attainment {_pct(att)} is below {_pct(plan.gate, 0)}, so no commission is paid",
                 amount=-commission)
            commission = 0.0
        if plan.cap_amount is not None and commission > plan.cap_amount:
            cut = round(commission - plan.cap_amount, 2)
            line("cap", f"Cap: commission {_money(commission)} is above the cap {_money(plan.cap_amount)}",
                 amount=-cut)
            commission = plan.cap_amount
        spiff_total = 0.0
        for s in plan.spiffs:
            mask = pd.Series(True, index=sub.index)
            if s.products:
                mask &= sub["product_id"].astype("str").isin(s.products) if "product_id" in sub else False
            if s.categories:
                mask &= sub["category"].astype("str").isin(s.categories) if "category" in sub else False
            if s.start is not None:
                mask &= sub["credit_date"] >= s.start
            if s.end is not None:
                mask &= sub["credit_date"] < s.end + pd.Timedelta(days=1)
            if s.rate is not None:
                base, rate, unit = float(sub.loc[mask, "revenue"].sum()), s.rate, "revenue"
            else:
                if "quantity" not in sub.columns:
                    raise SalesplanDataError(f"SPIFF {s.name!r} pays per unit but tx has no 'quantity' column.")
                base, rate, unit = float(sub.loc[mask, "quantity"].sum()), s.per_unit, "units"
            if base == 0:
                continue
            if s.gated and att < plan.gate:
                line("spiff", f"SPIFF {s.name}: not paid, attainment is below the gate", base=base, rate=rate,
                     amount=0.0)
                continue
            amt = round(base * rate, 2)
            spiff_total += amt
            how = _pct(rate) if s.rate is not None else _money(rate) + " per unit"
            line("spiff", f"SPIFF {s.name}: {unit} {base:,.2f} x {how} = {_money(amt)}", base=base, rate=rate,
                 amount=amt)
        earned = round(commission + spiff_total, 2)
        topup = recovered = 0.0
        bal = balance.get(rep, 0.0)
        if plan.draw is not None:
            d = plan.draw
            if earned < d.amount:
                topup = round(d.amount - earned, 2)
                kind = "recoverable" if d.recoverable else "non-recoverable"
                if d.recoverable:
                    bal += topup
                line("draw", f"Draw ({kind}): earned {_money(earned)} is below the draw {_money(d.amount)}, "
                     f"so {_money(topup)} is advanced" + (f"; balance to recover {_money(bal)}" if d.recoverable else ""),
                     base=d.amount, amount=topup)
            elif d.recoverable and bal > 0:
                recovered = round(min(bal, earned - d.amount), 2)
                bal -= recovered
                line("recovery", f"Draw recovery: {_money(recovered)} of earlier advances is deducted "
                     f"(earned above the draw {_money(earned - d.amount)}); balance left {_money(bal)}",
                     base=earned - d.amount, amount=-recovered)
        balance[rep] = bal
        payout = round(earned + topup - recovered, 2)
        line("payout", f"Payout for {label}: the sum of the amounts above = {_money(payout)}", amount=payout)
        lines.extend(out)
        k_reached = int(plan.tier_index(att))
        rows.append({"rep_id": rep, "period": per, "quota": q_net, "quota_relief": relief, "revenue": revenue,
                     "attainment": att, "tier": plan.tiers[k_reached].label,
                     "commission": round(commission, 2), "spiff": round(spiff_total, 2),
                     "draw_advance": topup, "draw_recovered": recovered, "payout": payout,
                     "draw_balance": round(bal, 2)})
    summary = pd.DataFrame(rows)
    st = pd.DataFrame(lines, columns=STATEMENT_COLUMNS)
    st["rate"] = st["rate"].astype(float)
    return summary, st


def payouts(
    tx: pd.DataFrame,
    targets: pd.DataFrame,
    plan: CommissionPlan | Mapping,
    *,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """What the plan pays each rep in each plan period of the history.

    Parameters
    ----------
    tx : DataFrame
        Transactions with ``order_date``, ``rep_id``, ``revenue`` (and
        ``product_id``/``category``/``quantity`` when rates or SPIFFs need
        them; ``payment_date`` for plans paid on payment).
    targets : DataFrame
        The targets table; rows with ``level == "rep"``, ``metric ==
        "revenue"`` are the quotas, summed over the months of each plan period.
    plan : CommissionPlan or dict
    start, end : date-like, optional
        Only credit dates (and quota periods) in this window.

    Returns
    -------
    DataFrame
        One row per rep and plan period: ``rep_id``, ``period`` (start),
        ``quota`` (after relief), ``quota_relief``, ``revenue`` (credited),
        ``attainment``, ``tier`` (highest tier reached), ``commission`` (after
        the gate and the cap), ``spiff``, ``draw_advance``, ``draw_recovered``,
        ``payout``, ``draw_balance`` (still to recover).
    """
    return _compute(_as_plan(plan), tx, targets, start, end)[0]


def statement(
    tx: pd.DataFrame,
    targets: pd.DataFrame,
    plan: CommissionPlan | Mapping,
    *,
    start: Any = None,
    end: Any = None,
    rep_id: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """The commission statement: every amount's computation, line by line.

    Amounts are rounded to cents line by line, and a period's ``payout`` line
    is the sum of the amounts above it, so a rep can redo the whole statement
    with a calculator: ``amount = base x rate`` on every tier and SPIFF line.
    Lines without an amount (quota, relief, revenue, attainment) carry the
    numbers the next lines use.

    Returns
    -------
    DataFrame
        ``rep_id``, ``period``, ``line`` (1, 2, ... within a rep and period),
        ``item`` (quota, relief, revenue, rate, attainment, tier, gate, cap,
        spiff, draw, recovery, payout), ``description``, ``base``, ``rate``,
        ``amount``.
    """
    st = _compute(_as_plan(plan), tx, targets, start, end)[1]
    if rep_id is not None:
        wanted = [rep_id] if isinstance(rep_id, str) else list(rep_id)
        st = st[st["rep_id"].isin(wanted)].reset_index(drop=True)
    return st


def statement_table(statement_frame: pd.DataFrame) -> pd.DataFrame:
    """A statement as a person reads it: amounts with cents and separators, rates as percentages, no index."""
    check_columns(statement_frame, STATEMENT_COLUMNS, name="statement")
    out = fmt.format_frame(statement_frame, kinds={"line": "count", "base": "number", "amount": "number",
                                                   "rate": "percent", "period": "date"})
    for col in ("base", "amount"):  # always cents, even on round amounts
        out[col] = [fmt.number(x, decimals=2) for x in statement_frame[col]]
    for col in ("base", "rate", "amount"):  # a blank reads better than n/a on a statement
        out[col] = out[col].where(statement_frame[col].notna().to_numpy(), "")
    return out


def _sheet_name(name: str, used: set[str]) -> str:
    """An Excel sheet name: no []:*?/\\, at most 31 characters, unique in the workbook."""
    base = "".join("_" if ch in '[]:*?/\\' else ch for ch in name)[:31] or "rep"
    sheet, i = base, 2
    while sheet.lower() in used:
        sheet = f"{base[:31 - len(str(i)) - 1]}~{i}"
        i += 1
    used.add(sheet.lower())
    return sheet


def export_statements(statement_frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write statements to Excel: one sheet per rep, money as ``#,##0.00``, a frozen header.

    Returns
    -------
    pathlib.Path
        The file written (atomically: a temporary file moved in place).
    """
    check_frame(statement_frame, name="statement")
    check_columns(statement_frame, STATEMENT_COLUMNS, name="statement")
    from openpyxl.utils import get_column_letter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".xlsx")
    os.close(fd)
    widths = {"period": 12, "line": 6, "item": 11, "description": 90, "base": 16, "rate": 10, "amount": 14}
    try:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
            used: set[str] = set()
            for rep, sub in statement_frame.groupby("rep_id", sort=True):
                frame = sub.drop(columns="rep_id").assign(period=pd.to_datetime(sub["period"]).dt.date)
                sheet = _sheet_name(str(rep), used)
                frame.to_excel(xw, sheet_name=sheet, index=False)
                ws = xw.sheets[sheet]
                ws.freeze_panes = "A2"
                for j, col in enumerate(frame.columns, start=1):
                    letter = get_column_letter(j)
                    ws.column_dimensions[letter].width = widths.get(col, 12)
                    fmt = {"base": "#,##0.00", "amount": "#,##0.00", "rate": "0.00%", "period": "yyyy-mm-dd"}.get(col)
                    if fmt:
                        for cell in ws[letter][1:]:
                            cell.number_format = fmt
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# --------------------------------------------------------------------------- simulation


def outcomes_from_samples(
    samples: pd.DataFrame,
    *,
    start: Any = None,
    end: Any = None,
    period: str | None = None,
) -> pd.DataFrame:
    """Simulated revenue per rep and sample (and plan period): sample paths summed over a window.

    Parameters
    ----------
    samples : DataFrame
        ``unique_id, sample, y`` (one total per rep and sample) or sample paths
        ``unique_id, ds, sample, y`` (what :func:`salesplan.forecast.sample_paths`
        returns), summed per rep and sample over ``start..end`` (default all).
    period : {"month", "quarter", "year"}, optional
        Sum per plan period instead (needs ``ds``), so that :func:`simulate`
        pays each period on its own, as the plan does.

    Returns
    -------
    DataFrame
        ``unique_id``, [``period`` (start),] ``sample``, ``y``.
    """
    check_frame(samples, name="samples")
    check_columns(samples, ["unique_id", "sample", "y"], name="samples",
                  hint="Outcomes are sample paths: unique_id (rep), sample, y (revenue), optionally ds.")
    s = samples
    if "ds" in s.columns and (start is not None or end is not None):
        ds = pd.to_datetime(s["ds"])
        keep = pd.Series(True, index=s.index)
        if start is not None:
            keep &= ds >= pd.Timestamp(start)
        if end is not None:
            keep &= ds <= pd.Timestamp(end)
        s = s[keep]
    y = pd.to_numeric(s["y"], errors="coerce")
    if y.isna().any():
        raise SalesplanDataError(f"samples['y'] has {int(y.isna().sum())} missing or non-numeric value(s) "
                                 f"({describe_rows(s.index[y.isna()])}); every outcome must be a number.")
    s = s.assign(unique_id=s["unique_id"].astype("str"), y=y)
    keys = ["unique_id", "sample"]
    if period is not None:
        if period not in _PERIODS:
            raise SalesplanError(f"period must be one of {list(_PERIODS)}, got {period!r}.")
        if "ds" not in s.columns:
            raise SalesplanDataError("outcomes per plan period need sample paths with a 'ds' column.")
        s = s.assign(period=_period_start(pd.to_datetime(s["ds"]), period))
        keys = ["unique_id", "period", "sample"]
    return s.groupby(keys, sort=True, as_index=False)["y"].sum()


def outcomes_from_history(
    tx: pd.DataFrame,
    *,
    reps: Sequence[str] | None = None,
    period: str = "quarter",
    last: int = 8,
    n_samples: int = 2000,
    before: Any = None,
    seed: int = 0,
    by: str = "rep_id",
) -> pd.DataFrame:
    """Simulated revenue per rep and sample, drawn from each rep's own recent plan periods.

    For when no forecast sample paths are at hand: each sample gives each rep
    the revenue of one of its ``last`` complete plan periods before
    ``before`` (default: all the data), drawn at random with replacement and
    independently per rep (a period without sales counts as 0). It keeps
    every rep's own level and spread but not the correlation between reps,
    so the spread of the total is narrower than with joint sample paths
    (:func:`outcomes_from_samples` on the planner's paths). ``by`` names
    another unit column (``region``...) to simulate those units instead.

    >>> tx = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-10", "2024-06-30"]),
    ...                    "rep_id": ["R1", "R1"], "revenue": [100.0, 300.0]})
    >>> o = outcomes_from_history(tx, last=2, n_samples=1000)
    >>> sorted(o["y"].unique().tolist()), len(o)
    ([100.0, 300.0], 1000)

    Returns
    -------
    DataFrame
        ``unique_id`` (rep), ``sample``, ``y``: every rep in every sample.
    """
    check_frame(tx, name="tx")
    check_columns(tx, ["order_date", by, "revenue"], name="tx")
    if period not in _PERIODS:
        raise SalesplanError(f"period must be one of {list(_PERIODS)}, got {period!r}.")
    if int(last) < 1 or int(n_samples) < 1:
        raise SalesplanError(f"last and n_samples must be at least 1, got {last} and {n_samples}.")
    dates = check_dates(tx["order_date"], name="tx['order_date']")
    work = tx.assign(_start=_period_start(dates, period).to_numpy(), _unit=tx[by].astype("str"))
    if before is not None:
        work = work[dates < pd.Timestamp(before)]
    if work.empty:
        raise SalesplanDataError(f"tx has no orders before {pd.Timestamp(before):%Y-%m-%d} to draw outcomes from.")
    # only complete plan periods: the last one counts when the data reach its end
    freq = _PERIODS[period]
    ends = pd.to_datetime(work["_start"]).dt.to_period(freq).dt.end_time.dt.normalize()
    last_day = pd.to_datetime(work["order_date"]).max().normalize()
    work = work[ends <= last_day] if (ends <= last_day).any() else work
    starts = np.sort(pd.unique(work["_start"]))[-int(last):]
    table = work[work["_start"].isin(starts)].pivot_table(index="_unit", columns="_start", values="revenue",
                                                            aggfunc="sum", fill_value=0.0)
    table = table.reindex(columns=starts, fill_value=0.0)
    if reps is not None:
        table = table.reindex([str(r) for r in reps], fill_value=0.0)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, table.shape[1], size=(int(n_samples), table.shape[0]))
    y = table.to_numpy(float)[np.arange(table.shape[0])[None, :], pick]
    return pd.DataFrame({"unique_id": np.tile(table.index.to_numpy(dtype=object), int(n_samples)),
                         "sample": np.repeat(np.arange(int(n_samples)), table.shape[0]),
                         "y": y.ravel()})


def _outcome_matrix(outcomes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(reps, samples, periods, revenue[S, R, P]); missing (rep, sample, period) cells raise."""
    # factorize hashes; np.unique would sort millions of strings
    r_idx, reps = pd.factorize(outcomes["unique_id"].astype("str"), sort=True)
    s_idx, samp = pd.factorize(outcomes["sample"], sort=True)
    if "period" in outcomes.columns:
        p_idx, pers = pd.factorize(pd.to_datetime(outcomes["period"]), sort=True)
    else:
        p_idx, pers = np.zeros(len(outcomes), dtype=int), pd.DatetimeIndex([pd.NaT])
    reps, samp, pers = np.asarray(reps, dtype=object), np.asarray(samp), np.asarray(pers, dtype="datetime64[ns]")
    if len(outcomes) != len(reps) * len(samp) * len(pers):
        raise SalesplanDataError(
            f"outcomes must hold every rep in every sample (and period): {len(reps)} rep(s) x {len(samp)} sample(s) "
            f"x {len(pers)} period(s) = {len(reps) * len(samp) * len(pers)} rows expected, got {len(outcomes)}. "
            "Sum paths per rep and sample first (outcomes_from_samples) and drop reps that are missing from some "
            "samples.")
    rev = np.full((len(samp), len(reps), len(pers)), np.nan)
    rev[s_idx, r_idx, p_idx] = outcomes["y"].to_numpy(dtype=float)
    if np.isnan(rev).any():
        raise SalesplanDataError("outcomes repeat some (unique_id, sample) pairs; sum them first "
                                 "(outcomes_from_samples).")
    return reps, samp, pers, rev


def _vector(values: Any, reps: np.ndarray, *, name: str, col: str, key: str = "rep_id",
            default: float | None = None) -> np.ndarray:
    if values is None:
        if default is None:
            raise SalesplanError(f"{name} is required.")
        return np.full(len(reps), default)
    if isinstance(values, (int, float)):
        return np.full(len(reps), float(values))
    if isinstance(values, pd.DataFrame):
        check_columns(values, [key, col], name=name)
        values = values.groupby(values[key].astype("str"))[col].sum() if col == "quota" else \
            values.set_index(values[key].astype("str"))[col]
    s = pd.Series(values).astype(float)
    s.index = s.index.astype("str")
    missing = [r for r in reps if r not in s.index]
    if missing:
        if default is not None:
            return s.reindex(reps).fillna(default).to_numpy()
        raise SalesplanDataError(
            f"{name} has no value for {len(missing)} rep(s) of the outcomes: {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}. Give one {col} per rep.")
    return s.reindex(reps).to_numpy()


@dataclass(frozen=True)
class PayoutSimulation:
    """A plan run on simulated outcomes; arrays are ``[sample, rep]``.

    Attributes
    ----------
    plan : CommissionPlan
    reps : ndarray of str
    samples : ndarray
    revenue, payout, attainment : ndarray, shape (samples, reps)
        Totals over the plan periods; attainment of the total quota.
    quota, rate : ndarray, shape (reps,)
        Total quota over the periods, plan rate.
    periods : ndarray or None
        Plan period starts when the outcomes are per period.
    period_attainment : ndarray, shape (samples, reps, periods), or None
    """

    plan: CommissionPlan
    reps: np.ndarray
    samples: np.ndarray
    revenue: np.ndarray
    payout: np.ndarray
    attainment: np.ndarray
    quota: np.ndarray
    rate: np.ndarray
    periods: np.ndarray | None = None
    period_attainment: np.ndarray | None = None

    def totals(self) -> pd.DataFrame:
        """Per sample: ``sample``, ``revenue``, ``payout``, ``cost_of_sales`` (payout / revenue)."""
        rev, pay = self.revenue.sum(axis=1), self.payout.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = np.where(rev > 0, pay / rev, np.nan)
        return pd.DataFrame({"sample": self.samples, "revenue": rev, "payout": pay, "cost_of_sales": cos})

    def distribution(self, *, level: Sequence[float] = (80, 95)) -> pd.DataFrame:
        """Distribution of total payout and cost of sales %.

        Returns
        -------
        DataFrame
            One row per measure (``payout``, ``cost_of_sales``, ``revenue``):
            ``measure``, ``mean``, ``median``, ``lo-<level>``, ``hi-<level>``.
        """
        t = self.totals()
        rows = []
        for m in ("payout", "cost_of_sales", "revenue"):
            v = t[m].dropna().to_numpy()
            row = {"plan": self.plan.name, "measure": m, "mean": float(v.mean()), "median": float(np.median(v))}
            for lv in level:
                a = (100 - lv) / 200
                row[f"lo-{lv}"], row[f"hi-{lv}"] = (float(x) for x in np.quantile(v, [a, 1 - a]))
            rows.append(row)
        return pd.DataFrame(rows)

    def tier_probabilities(self) -> pd.DataFrame:
        """Probability that each rep reaches each tier (attainment at or above its start), the gate and the cap.

        With outcomes per plan period it is the chance in a period (the share
        of sample-periods), since tiers apply per period.

        Returns
        -------
        DataFrame
            ``rep_id``, ``tier``, ``start`` (attainment), ``probability``.
        """
        rows = []
        marks = [(t.label, t.start) for t in self.plan.tiers]
        if self.plan.gate > 0:
            marks.append(("gate", self.plan.gate))
        if self.plan.cap_attainment is not None:
            marks.append(("cap", self.plan.cap_attainment))
        att = self.attainment if self.period_attainment is None else \
            np.moveaxis(self.period_attainment, 2, 1).reshape(-1, len(self.reps))
        for label, start in marks:
            p = (att >= start).mean(axis=0)
            rows.append(pd.DataFrame({"rep_id": self.reps, "tier": label, "start": start, "probability": p}))
        return pd.concat(rows, ignore_index=True).sort_values(["rep_id", "start"], ignore_index=True)

    def rep_summary(self) -> pd.DataFrame:
        """Per rep: ``rep_id``, ``quota``, ``rate``, ``expected_revenue``, ``expected_payout``,
        ``payout_per_revenue`` (expected payout / expected revenue), ``attainment_probability``
        (P(attainment >= 100 %)), ``gate_probability``, ``payout_lo-90``, ``payout_hi-90``."""
        er, ep = self.revenue.mean(axis=0), self.payout.mean(axis=0)
        lo, hi = np.quantile(self.payout, [0.05, 0.95], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ppr = np.where(er > 0, ep / er, np.nan)
        return pd.DataFrame({
            "rep_id": self.reps, "quota": self.quota, "rate": self.rate, "expected_revenue": er,
            "expected_payout": ep, "payout_per_revenue": ppr,
            "attainment_probability": (self.attainment >= 1.0).mean(axis=0),
            "gate_probability": (self.attainment >= self.plan.gate).mean(axis=0),
            "payout_lo-90": lo, "payout_hi-90": hi,
        })

    def summary(self) -> pd.DataFrame:
        """One row for the plan: ``plan``, ``expected_payout``, ``payout_lo-90``, ``payout_hi-90``,
        ``expected_revenue``, ``cost_of_sales`` (expected payout / expected revenue),
        ``cost_of_sales_hi-90``, ``payout_per_revenue``, ``reps_over_quota`` (expected share)."""
        t = self.totals()
        lo, hi = np.quantile(t["payout"], [0.05, 0.95])
        er, ep = float(t["revenue"].mean()), float(t["payout"].mean())
        return pd.DataFrame([{
            "plan": self.plan.name, "expected_payout": ep, "payout_lo-90": lo, "payout_hi-90": hi,
            "expected_revenue": er, "cost_of_sales": ep / er if er else np.nan,
            "cost_of_sales_hi-90": float(np.nanquantile(t["cost_of_sales"], 0.95)),
            "payout_per_revenue": ep / er if er else np.nan,
            "reps_over_quota": float((self.attainment >= 1.0).mean()),
        }])


def simulate(
    plan: CommissionPlan | Mapping,
    outcomes: pd.DataFrame,
    *,
    quota: pd.DataFrame | pd.Series | Mapping | float,
    rates: pd.DataFrame | pd.Series | Mapping | float | None = None,
) -> PayoutSimulation:
    """Run a plan on simulated outcomes, all samples and reps at once (numpy).

    Each sample is one possible year (or whatever window the outcomes sum
    over) and each rep is paid once on its total against ``quota``, unless
    the outcomes are per plan period (below). Tiers, the gate, the
    attainment and amount caps apply per rep, sample (and period); a
    non-recoverable draw tops the payout up to the draw for every period of
    the year. On single totals a recoverable draw is an advance against later
    earnings and is left out; per period it is paid and recovered as in
    :func:`statement`, so the payout is the cash paid, advances not yet
    recovered at the end included. SPIFFs and quota relief need the lines of the history and are
    left out (see :func:`payouts`).

    Parameters
    ----------
    outcomes : DataFrame
        ``unique_id`` (rep), ``sample``, ``y`` (revenue), every rep in every
        sample (see :func:`outcomes_from_samples`). With a ``period`` column
        (``outcomes_from_samples(..., period=plan.period)``) every plan period
        is paid on its own, draws carry over from period to period as in
        :func:`statement`, and the totals are summed.
    quota : DataFrame, Series, mapping or float
        Quota per rep for the same window (``rep_id, quota`` rows are summed),
        or per rep and plan period (``rep_id, period, quota``, e.g.
        :func:`quotas`) for outcomes per period; a quota per rep alone is
        then split equally over the periods.
    rates : DataFrame, Series, mapping or float, optional
        Each rep's plan rate (``rep_id, rate``, e.g. :func:`blended_rates`);
        default the plan's base rate.

    Returns
    -------
    PayoutSimulation
    """
    plan = _as_plan(plan)
    check_frame(outcomes, name="outcomes")
    check_columns(outcomes, ["unique_id", "sample", "y"], name="outcomes",
                  hint="Use outcomes_from_samples(samples) to sum sample paths per rep and sample.")
    reps, samp, pers, rev = _outcome_matrix(outcomes)
    per_period = "period" in outcomes.columns
    if per_period and isinstance(quota, pd.DataFrame) and "period" in quota.columns:
        check_columns(quota, ["rep_id", "period", "quota"], name="quota")
        grid = quota.assign(rep_id=quota["rep_id"].astype("str"), period=pd.to_datetime(quota["period"])).pivot_table(
            index="rep_id", columns="period", values="quota", aggfunc="sum")
        q = grid.reindex(index=reps, columns=pd.DatetimeIndex(pers)).to_numpy(dtype=float)
        if np.isnan(q).any():
            i, j = np.argwhere(np.isnan(q))[0]
            raise SalesplanDataError(f"quota has no value for rep {reps[i]} in the period starting "
                                     f"{pd.Timestamp(pers[j]):%Y-%m-%d} ({int(np.isnan(q).sum())} rep-period(s) "
                                     "missing). Give a quota per rep and plan period (see quotas()).")
    else:
        # one quota per rep for the whole window: split equally over its plan periods
        q = np.repeat(_vector(quota, reps, name="quota", col="quota")[:, None] / len(pers), len(pers), axis=1)
    if (q <= 0).any() or np.isnan(q).any():
        bad = list(reps[((q <= 0) | np.isnan(q)).any(axis=1)][:5])
        raise SalesplanDataError(f"quota must be positive for every rep; not for {bad}. Set a quota for them.")
    r = _vector(rates, reps, name="rates", col="rate", default=plan.base_rate)
    if per_period:
        pay = _payout_periods(plan, rev, q, r)
        qt, rt = q.sum(axis=1), rev.sum(axis=2)
        return PayoutSimulation(plan, reps, samp, rt, pay.sum(axis=2), rt / qt, qt, r, pers, rev / q[None])
    rev2, q1 = rev[:, :, 0], q[:, 0]
    pay = _payout_matrix(plan, rev2, q1, r)
    return PayoutSimulation(plan, reps, samp, rev2, pay, rev2 / q1, q1, r)


def _payout_periods(plan: CommissionPlan, rev: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Pay per [sample, rep, period], period after period as the statement does (draws carry over)."""
    earned = plan.commission(rev, q[None], rate=r[None, :, None])
    if plan.draw is None:
        return earned
    d = plan.draw.amount
    if not plan.draw.recoverable:
        return np.maximum(earned, d)
    pay = np.empty_like(earned)
    bal = np.zeros(earned.shape[:2])
    for j in range(earned.shape[2]):
        e = earned[:, :, j]
        adv = np.maximum(d - e, 0.0)
        rec = np.where(e > d, np.minimum(bal, e - d), 0.0)
        bal = bal + adv - rec
        pay[:, :, j] = e + adv - rec
    return pay


def _payout_matrix(plan: CommissionPlan, rev: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    pay = plan.commission(rev, q, rate=r)
    if plan.draw is not None and not plan.draw.recoverable:
        n_periods = {"month": 12, "quarter": 4, "year": 1}[plan.period]
        pay = np.maximum(pay, plan.draw.amount * n_periods)
    return pay


def compare_plans(
    plans: Sequence[CommissionPlan | Mapping] | Mapping[str, CommissionPlan | Mapping],
    outcomes: pd.DataFrame,
    *,
    quota: pd.DataFrame | pd.Series | Mapping | float,
    rates: Any = None,
    by: str = "plan",
) -> pd.DataFrame:
    """Plans side by side on the same simulated outcomes.

    Every plan is paid on the same samples, so differences are the plans'
    alone. Besides each plan's :meth:`PayoutSimulation.summary`, the result
    says how each plan pays relative to the first on the same outcome.

    Parameters
    ----------
    by : {"plan", "rep"}
        One row per plan, or one row per plan and rep.

    Returns
    -------
    DataFrame
        ``by="plan"``: the columns of :meth:`PayoutSimulation.summary`, then
        ``payout_vs_first`` (mean of the per-sample payout difference to the
        first plan), ``share_samples_more`` (share of samples where this plan
        pays more in total than the first). ``by="rep"``: ``plan`` and the
        columns of :meth:`PayoutSimulation.rep_summary`, then
        ``payout_vs_first`` and ``share_samples_more`` per rep.
    """
    if by not in ("plan", "rep"):
        raise SalesplanError(f"by must be 'plan' or 'rep', got {by!r}.")
    items = list(plans.items()) if isinstance(plans, Mapping) else [(None, p) for p in plans]
    if len(items) < 1:
        raise SalesplanError("compare_plans needs at least one plan.")
    sims = []
    for nm, p in items:
        cp = _as_plan(p)
        if nm is not None and nm != cp.name:
            cp = dataclasses.replace(cp, name=str(nm))
        sims.append(simulate(cp, outcomes, quota=quota, rates=rates))
    if by == "rep":
        rows = []
        for s in sims:
            row = s.rep_summary()
            row.insert(0, "plan", s.plan.name)
            row["payout_vs_first"] = (s.payout - sims[0].payout).mean(axis=0)
            row["share_samples_more"] = (s.payout > sims[0].payout + 1e-9).mean(axis=0)
            rows.append(row)
        return pd.concat(rows, ignore_index=True)
    first = sims[0].payout.sum(axis=1)
    rows = []
    for s in sims:
        row = s.summary()
        tot = s.payout.sum(axis=1)
        row["payout_vs_first"] = float((tot - first).mean())
        row["share_samples_more"] = float((tot > first + 1e-9).mean())
        rows.append(row)
    return pd.concat(rows, ignore_index=True)


def payout_curve(
    plans: Sequence[CommissionPlan | Mapping],
    *,
    quota: float = 100_000.0,
    attainment: Sequence[float] | None = None,
    rate: float | None = None,
) -> pd.DataFrame:
    """What each plan pays one rep for the same outcome, across attainments.

    Returns
    -------
    DataFrame
        ``plan``, ``attainment``, ``revenue``, ``payout``, ``effective_rate``
        (payout / revenue).
    """
    att = np.linspace(0.0, 2.0, 41) if attainment is None else np.asarray(attainment, dtype=float)
    rows = []
    for p in plans:
        cp = _as_plan(p)
        rev = att * quota
        pay = _payout_matrix(cp, rev, np.full_like(rev, quota), np.full_like(rev, cp.base_rate if rate is None else rate))
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = np.where(rev > 0, pay / rev, np.nan)
        rows.append(pd.DataFrame({"plan": cp.name, "attainment": att, "revenue": rev, "payout": pay,
                                  "effective_rate": eff}))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------- fairness


def fairness_check(
    sim: PayoutSimulation,
    *,
    max_ratio: float = 1.25,
    tolerance: float = 0.05,
) -> pd.DataFrame:
    """Reps with the same chance of making quota should expect similar pay.

    Method: the attainment probability ``P(revenue >= quota)`` is how hard a
    rep's quota is for that rep; two reps with the same probability face an
    equally demanding target, so a fair plan should give them about the same
    expected pay. Each rep's *peers* are the reps whose attainment probability
    is within ``tolerance`` of theirs (the rep included). The rep's pay ratio
    is its expected payout divided by the median expected payout of its
    peers. Since the peers are equally likely to attain, a ratio far from 1
    is not explained by performance but by the size of the quota (the
    territory) the rep was given: commission on revenue pays big territories
    more for the same effort. The ratio of the rep's quota to its peers'
    median quota is shown next to it to make that visible. A rep is flagged
    when the pay ratio is above ``max_ratio`` or below ``1 / max_ratio``;
    the plan is unfair under this test when any rep is flagged
    (``df.attrs["flagged"]``).

    Returns
    -------
    DataFrame
        One row per rep, sorted by attainment probability: ``rep_id``,
        ``attainment_probability``, ``quota``, ``expected_payout``, ``peers``
        (count), ``peer_median_payout``, ``pay_ratio``, ``quota_ratio``,
        ``flagged``.
    """
    if not isinstance(sim, PayoutSimulation):
        raise SalesplanError(f"fairness_check needs the result of simulate(), got {type(sim).__name__}.")
    if not (isinstance(max_ratio, (int, float)) and max_ratio >= 1):
        raise SalesplanError(f"max_ratio must be a number >= 1 (e.g. 1.25 for 25 %), got {max_ratio!r}.")
    p = (sim.attainment >= 1.0).mean(axis=0)
    ep = sim.payout.mean(axis=0)
    near = np.abs(p[:, None] - p[None, :]) <= tolerance + 1e-12
    peers = near.sum(axis=1)
    med_pay = np.array([np.median(ep[row]) for row in near])
    med_q = np.array([np.median(sim.quota[row]) for row in near])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(med_pay > 0, ep / med_pay, np.nan)
        qratio = sim.quota / med_q
    flagged = (peers > 1) & ((ratio > max_ratio) | (ratio < 1 / max_ratio))
    out = pd.DataFrame({"rep_id": sim.reps, "attainment_probability": p, "quota": sim.quota,
                        "expected_payout": ep, "peers": peers, "peer_median_payout": med_pay,
                        "pay_ratio": ratio, "quota_ratio": qratio, "flagged": flagged})
    out = out.sort_values(["attainment_probability", "rep_id"], ignore_index=True)
    out.attrs["flagged"] = bool(flagged.any())
    out.attrs["max_ratio"] = float(max_ratio)
    return out
