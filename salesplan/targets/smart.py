"""Targets as data and the SMART check.

A :class:`Target` says what is measured (``metric``), for whom (``level`` and
``key``), how much (``value``), when (``start``..``end``), against what
(``baseline``), who owns it and which strategy it serves. :func:`targets_frame`
turns targets into the stored long format (:data:`salesplan.schema.TARGETS`
columns first) and :func:`targets_from_frame` back.

:func:`smart_check` gives each target a verdict (``pass``, ``flag`` or
``fail``) and a reason per SMART letter:

S - Specific
    the metric is known and the scope (level and key) exists in the data.
M - Measurable
    the metric can be computed from the loaded data; its current value (the
    same number of months up to the end of the data) is shown.
A - Achievable
    the probability of reaching the value under the forecast distribution;
    flagged below ``stretch`` (too hard) or above ``sandbag`` (too easy).
R - Relevant
    linked to a strategy and to a scope with history.
T - Time-bound
    a period with a start and an end, inside the forecast horizon.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_frame, check_probability, closest_matches
from salesplan.errors import SalesplanError, SalesplanWarning
from salesplan.schema import TARGET_LEVELS
from salesplan.targets._data import (
    ADDITIVE_METRICS,
    METRICS,
    check_samples,
    forecast_distribution,
    metric_panel,
)

__all__ = ["Target", "targets_frame", "targets_from_frame", "SmartCheck", "smart_check", "smart_table", "LETTERS",
           "unit_verdicts"]

#: SMART letters and their criterion.
LETTERS: dict[str, str] = {
    "S": "specific",
    "M": "measurable",
    "A": "achievable",
    "R": "relevant",
    "T": "time-bound",
}


@dataclass(frozen=True)
class Target:
    """One target.

    Parameters
    ----------
    metric : str
        What is measured: one of :data:`salesplan.targets.METRICS`
        (``revenue``, ``units``, ``new_customers``, ``win_rate``...).
    value : float
        The number to reach over the period (a sum for additive metrics, the
        period's average for rates).
    start, end : date-like
        First and last day (or month) of the period, inclusive months.
    level : str
        One of :data:`salesplan.schema.TARGET_LEVELS`.
    key : str
        The unit of that level (region name, rep id...); ``"all"`` for company.
    baseline : float, optional
        The reference (e.g. last year); :func:`smart_check` fills in the
        current value when missing.
    owner : str, optional
        Who is accountable.
    strategy : str, optional
        The strategy it serves (free text or tag, e.g. "expand region South").
    name : str, optional
        A label; default ``"<level>:<key>:<metric>"``.

    Examples
    --------
    >>> t = Target("revenue", 1.2e6, "2026-01-01", "2026-12-31", level="region", key="South",
    ...            strategy="expand region South")
    >>> t.label
    'region:South:revenue'
    """

    metric: str
    value: float
    start: Any
    end: Any
    level: str = "company"
    key: str = "all"
    baseline: float | None = None
    owner: str | None = None
    strategy: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """The name, or ``"<level>:<key>:<metric>"``."""
        return self.name or f"{self.level}:{self.key}:{self.metric}"

    @property
    def months(self) -> pd.DatetimeIndex:
        """Month starts of the period."""
        start = pd.Timestamp(self.start).to_period("M").to_timestamp()
        end = pd.Timestamp(self.end).to_period("M").to_timestamp()
        return pd.date_range(start, end, freq="MS")


_EXTRA = ["end", "baseline", "owner", "strategy", "target_id"]


def targets_frame(targets: Iterable[Target]) -> pd.DataFrame:
    """Targets as a frame in the stored long format.

    Returns
    -------
    DataFrame
        ``period`` (start, month start), ``level``, ``key``, ``metric``,
        ``value`` (the :data:`salesplan.schema.TARGETS` columns), then
        ``end``, ``baseline``, ``owner``, ``strategy``, ``target_id`` (the label).
    """
    rows = []
    for t in targets:
        if not isinstance(t, Target):
            raise SalesplanError(f"targets must be Target objects, got {type(t).__name__}.")
        d = asdict(t)
        rows.append({
            "period": pd.Timestamp(t.start).to_period("M").to_timestamp(),
            "level": t.level, "key": str(t.key), "metric": t.metric, "value": float(t.value),
            "end": pd.Timestamp(t.end), "baseline": d["baseline"], "owner": t.owner,
            "strategy": t.strategy, "target_id": t.label,
        })
    cols = ["period", "level", "key", "metric", "value", *_EXTRA]
    out = pd.DataFrame(rows, columns=cols)
    return out.astype({"value": float, "baseline": float})


def targets_from_frame(df: pd.DataFrame) -> list[Target]:
    """Targets from a frame with the :data:`salesplan.schema.TARGETS` columns.

    Without an ``end`` column each row is a one-month target (``period`` is
    its month).
    """
    check_frame(df, name="targets")
    check_columns(df, ["period", "level", "key", "metric", "value"], name="targets")
    out = []
    for r in df.to_dict("records"):
        start = pd.Timestamp(r["period"])
        end = r.get("end")
        end = start + pd.offsets.MonthEnd(0) if end is None or pd.isna(end) else pd.Timestamp(end)
        opt = {k: (None if (r.get(k) is None or (not isinstance(r.get(k), str) and pd.isna(r.get(k))))
                   else r.get(k)) for k in ("baseline", "owner", "strategy")}
        name = r.get("target_id") if isinstance(r.get("target_id"), str) else None
        out.append(Target(str(r["metric"]), float(r["value"]), start, end, level=str(r["level"]),
                          key=str(r["key"]), name=name, **opt))
    return out


def _row(t, letter, verdict, reason, value=np.nan):
    return {"target_id": t.label, "letter": letter, "criterion": LETTERS[letter],
            "verdict": verdict, "reason": reason, "value": value}


class _ForecastFailed(Exception):
    pass


class SmartCheck:
    """The SMART check, fitted once on the data so that re-checking is cheap.

    :func:`smart_check` is the one-call form. Fitting stores the data range,
    the metric panels and forecast distributions it needs (computed lazily
    per metric and level, then cached); :meth:`check` then costs little per
    target, so an app can re-check on every change.

    Parameters
    ----------
    stretch, sandbag : float
        Probability thresholds: below ``stretch`` a target is flagged as too
        hard, above ``sandbag`` as too easy.
    horizon : int
        Months after the end of the data that the forecast is trusted for.
    n_samples, seed : int
        Size and seed of forecast distributions computed here.
    model : str
        Forecast model for distributions computed here.
    """

    def __init__(self, *, stretch: float = 0.3, sandbag: float = 0.9, horizon: int = 24,
                 n_samples: int = 500, seed: int = 0, model: str = "auto") -> None:
        self.stretch = stretch
        self.sandbag = sandbag
        self.horizon = horizon
        self.n_samples = n_samples
        self.seed = seed
        self.model = model

    def fit(
        self,
        transactions: pd.DataFrame,
        *,
        samples: Mapping[tuple[str, str], pd.DataFrame] | None = None,
        panels: Mapping[tuple[str, str], pd.DataFrame] | None = None,
        reps: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
        opportunities: pd.DataFrame | None = None,
    ) -> SmartCheck:
        """Learn the data range; keep the data, panels and distributions for :meth:`check`."""
        check_frame(transactions, name="transactions")
        check_columns(transactions, ["order_date"], name="transactions")
        dates = transactions["order_date"]
        if not pd.api.types.is_datetime64_any_dtype(dates):
            dates = pd.to_datetime(dates)
        self.data_end_ = dates.max().to_period("M").to_timestamp()
        self.data_start_ = dates.min().to_period("M").to_timestamp()
        self.last_month_ = self.data_end_ + pd.DateOffset(months=self.horizon)
        self._tx, self._reps, self._customers, self._opps = transactions, reps, customers, opportunities
        self.panels_: dict[tuple[str, str], pd.DataFrame | Exception] = dict(panels or {})
        self.samples_: dict[tuple[str, str], pd.DataFrame | Exception] = {
            k: check_samples(v) for k, v in (samples or {}).items()}
        self.sources_: dict[tuple[str, str], str] = {k: "given" for k in self.samples_}
        self._keys: dict[tuple[str, str], set[str]] = {}
        self._totals: dict[tuple, np.ndarray | None] = {}
        return self

    # -- cached pieces -------------------------------------------------------
    def _panel(self, combo: tuple[str, str]) -> pd.DataFrame | Exception:
        if combo not in self.panels_:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SalesplanWarning)
                    self.panels_[combo] = metric_panel(
                        self._tx, level=combo[1], metric=combo[0], reps=self._reps,
                        customers=self._customers, opportunities=self._opps)
            except SalesplanError as exc:
                self.panels_[combo] = exc
        return self.panels_[combo]

    def _unit_keys(self, combo: tuple[str, str]) -> set[str]:
        if combo not in self._keys:
            panel = self._panel(combo)
            self._keys[combo] = set() if isinstance(panel, Exception) else set(panel["unique_id"])
        return self._keys[combo]

    def _period_totals(self, combo, key: str, months: pd.DatetimeIndex) -> np.ndarray | None:
        """Simulated period totals (or means, for rates) of one unit; None if not covered."""
        cache = (combo, key, months[0], months[-1])
        if cache in self._totals:
            return self._totals[cache]
        future = months[months > self.data_end_]
        if combo not in self.samples_:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SalesplanWarning)
                h = ((self.last_month_.year - self.data_end_.year) * 12
                     + self.last_month_.month - self.data_end_.month)
                try:
                    self.samples_[combo], self.sources_[combo] = forecast_distribution(
                        self._panel(combo), h, n_samples=self.n_samples, seed=self.seed, model=self.model)
                except Exception as exc:  # noqa: BLE001 - one failed forecast must not hide the other letters
                    self.samples_[combo] = exc
        d = self.samples_[combo]
        if isinstance(d, Exception):
            raise _ForecastFailed(f"the forecast could not be computed ({type(d).__name__}: {d})")
        mine = d[(d["unique_id"] == key) & d["ds"].isin(future)]
        if mine["ds"].nunique() < len(future):
            self._totals[cache] = None
            return None
        per = mine.groupby("sample")["y"]
        additive = combo[0] in ADDITIVE_METRICS
        tot = (per.sum() if additive else per.mean()).to_numpy(float)
        if len(future) < len(months) and additive:
            # Months of the period already in the data count as they are.
            panel = self._panel(combo)
            tot = tot + float(panel.loc[(panel["unique_id"] == key) & panel["ds"].isin(months), "y"].sum())
        self._totals[cache] = tot
        return tot

    # -- the check -----------------------------------------------------------
    def check(self, targets: Iterable[Target] | pd.DataFrame) -> pd.DataFrame:
        """SMART verdicts with a reason per letter for each target (see :func:`smart_check`)."""
        if not hasattr(self, "data_end_"):
            raise SalesplanError("this SmartCheck is not fitted yet; call .fit(transactions) first.")
        stretch = check_probability(self.stretch, name="stretch")
        sandbag = check_probability(self.sandbag, name="sandbag")
        if stretch >= sandbag:
            raise SalesplanError(
                f"stretch ({stretch}) must be below sandbag ({sandbag}); e.g. stretch=0.3, sandbag=0.9.")
        if isinstance(targets, pd.DataFrame):
            targets = targets_from_frame(targets)
        rows: list[dict] = []
        for t in targets:
            if not isinstance(t, Target):
                raise SalesplanError(f"targets must be Target objects or a targets frame, got {type(t).__name__}.")
            rows.extend(self._check_one(t, stretch, sandbag))
        return pd.DataFrame(rows, columns=["target_id", "letter", "criterion", "verdict", "reason", "value"])

    def _check_one(self, t: Target, stretch: float, sandbag: float) -> list[dict]:
        data_end, last_h = self.data_end_, self.last_month_
        out: dict[str, dict] = {}
        # --- S ---------------------------------------------------------------
        problems = []
        if t.metric not in METRICS:
            near = closest_matches(t.metric, list(METRICS), n=1)
            problems.append(f"metric {t.metric!r} is unknown" + (f" (did you mean {near[0]!r}?)" if near else "")
                            + f"; known: {', '.join(METRICS)}")
        if t.level not in TARGET_LEVELS:
            problems.append(f"level {t.level!r} is not one of {', '.join(TARGET_LEVELS)}")
        combo = (t.metric, t.level)
        key = str(t.key)
        panel = None if problems else self._panel(combo)
        keys = self._unit_keys(combo) if panel is not None else set()
        if panel is not None and not isinstance(panel, Exception) and key not in keys:
            near = closest_matches(key, keys, n=1)
            problems.append(
                f"key {t.key!r} is not a {t.level} in the data" + (f" (did you mean {near[0]!r}?)" if near else "")
                + f"; {len(keys)} known, e.g. {sorted(keys)[:4]}"
            )
        if problems:
            out["S"] = _row(t, "S", "fail", "; ".join(problems) + ".")
        else:
            out["S"] = _row(t, "S", "pass", f"{t.metric} for {t.level} {t.key!r}: known in the data.")
        # --- M ---------------------------------------------------------------
        try:
            months = t.months
        except (TypeError, ValueError):
            months = pd.DatetimeIndex([])
        if t.metric not in METRICS or t.level not in TARGET_LEVELS:
            out["M"] = _row(t, "M", "fail", "cannot be measured: the metric or level is not defined.")
        elif isinstance(panel, Exception):
            out["M"] = _row(t, "M", "fail", f"cannot be computed from the loaded data: {panel}")
        else:
            n = max(len(months), 1)
            mine = panel[(panel["unique_id"] == key) & (panel["ds"] > data_end - pd.DateOffset(months=n))]
            current = float(mine["y"].sum() if t.metric in ADDITIVE_METRICS else mine["y"].mean())
            current = 0.0 if np.isnan(current) else current
            base = t.baseline if t.baseline is not None else current
            text = (f"computed from the data ({METRICS[t.metric]}); current value {current:,.2f} over the "
                    f"{n} month(s) to {data_end:%Y-%m}; ")
            text += (f"baseline {base:,.2f}; target {t.value:,.2f} ({(t.value / base - 1) * 100:+.1f}% vs baseline)."
                     if base else f"target {t.value:,.2f}.")
            out["M"] = _row(t, "M", "pass", text, current)
        # --- T ---------------------------------------------------------------
        t_ok = False
        try:
            start, end = pd.Timestamp(t.start), pd.Timestamp(t.end)
        except (TypeError, ValueError):
            start = end = pd.NaT
        if pd.isna(start) or pd.isna(end):
            out["T"] = _row(t, "T", "fail", f"the period needs a start and an end date (got {t.start!r}, {t.end!r}).")
        elif end < start:
            out["T"] = _row(t, "T", "fail", f"the period ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d}).")
        elif months[-1] <= data_end:
            out["T"] = _row(t, "T", "fail", f"the period {months[0]:%Y-%m}..{months[-1]:%Y-%m} is already in "
                            f"the data (which ends {data_end:%Y-%m}); set a future period.")
        elif months[-1] > last_h:
            out["T"] = _row(t, "T", "flag", f"the period ends {months[-1]:%Y-%m}, beyond the {self.horizon}-month "
                            f"forecast horizon ({last_h:%Y-%m}); achievability is uncertain.")
        elif months[0] <= data_end:
            out["T"] = _row(t, "T", "flag", f"the period {months[0]:%Y-%m}..{months[-1]:%Y-%m} has already "
                            f"started (data to {data_end:%Y-%m}).")
            t_ok = True
        else:
            out["T"] = _row(t, "T", "pass", f"{months[0]:%Y-%m}..{months[-1]:%Y-%m} ({len(months)} months), "
                            f"inside the forecast horizon (to {last_h:%Y-%m}).")
            t_ok = True
        # --- A ---------------------------------------------------------------
        if panel is None or isinstance(panel, Exception) or key not in keys:
            out["A"] = _row(t, "A", "fail", "cannot be assessed: the target is not specific or measurable.")
        elif not t_ok:
            out["A"] = _row(t, "A", "fail", "cannot be assessed: the period is not inside the forecast horizon.")
        else:
            try:
                tot = self._period_totals(combo, key, months)
            except _ForecastFailed as exc:
                tot, failed = None, str(exc)
            else:
                failed = ""
            if failed:
                out["A"] = _row(t, "A", "fail", f"cannot be assessed: {failed}.")
            elif tot is None:
                out["A"] = _row(t, "A", "fail", f"the forecast for {t.key!r} does not cover the period "
                                f"{months[0]:%Y-%m}..{months[-1]:%Y-%m}.")
            else:
                p = float((tot >= t.value).mean())
                lo, hi = np.quantile(tot, [0.1, 0.9])
                detail = f"P(reach {t.value:,.2f}) = {p:.2f}; forecast 80% range {lo:,.0f}..{hi:,.0f}"
                if t.value < 0:
                    out["A"] = _row(t, "A", "fail", f"a negative target ({t.value:,.2f}) is not meaningful.", p)
                elif p < stretch:
                    out["A"] = _row(t, "A", "flag", f"{detail}: below the stretch threshold {stretch:.2f} "
                                    "(likely out of reach).", p)
                elif p > sandbag:
                    out["A"] = _row(t, "A", "flag", f"{detail}: above the sandbagging threshold {sandbag:.2f} "
                                    "(too easy).", p)
                else:
                    out["A"] = _row(t, "A", "pass", f"{detail}: between stretch {stretch:.2f} and "
                                    f"sandbagging {sandbag:.2f}.", p)
        # --- R ---------------------------------------------------------------
        has_hist = bool(panel is not None and not isinstance(panel, Exception)
                        and (panel.loc[panel["unique_id"] == key, "y"] != 0).any())
        strat = (t.strategy or "").strip()
        if not has_hist:
            out["R"] = _row(t, "R", "fail" if not strat else "flag",
                            f"the scope {t.level} {t.key!r} has no history in the data "
                            f"({self.data_start_:%Y-%m}..{data_end:%Y-%m})"
                            + (f"; strategy {strat!r}." if strat else " and no strategy is given."))
        elif not strat:
            out["R"] = _row(t, "R", "flag", "no strategy is given: say which strategy it serves "
                            "(e.g. 'expand region South').")
        else:
            out["R"] = _row(t, "R", "pass", f"serves {strat!r}; the scope has history.")
        return [out[k] for k in LETTERS]


def smart_check(
    targets: Iterable[Target] | pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    samples: Mapping[tuple[str, str], pd.DataFrame] | None = None,
    panels: Mapping[tuple[str, str], pd.DataFrame] | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    opportunities: pd.DataFrame | None = None,
    stretch: float = 0.3,
    sandbag: float = 0.9,
    horizon: int = 24,
    n_samples: int = 500,
    seed: int = 0,
    model: str = "auto",
) -> pd.DataFrame:
    """SMART verdicts with a reason per letter for each target.

    Parameters
    ----------
    targets : list of Target or DataFrame
        A frame is read with :func:`targets_from_frame`.
    transactions : DataFrame
        The loaded data the targets are measured on.
    samples : mapping (metric, level) -> DataFrame, optional
        Forecast sample paths ``unique_id, ds, sample, y`` of that metric per
        unit of that level (keys as ``unique_id``). Missing combinations are
        forecast here with :func:`salesplan.targets.forecast_distribution`
        (the forecast engine when installed, else the documented fallback).
    panels : mapping (metric, level) -> DataFrame, optional
        Precomputed :func:`salesplan.targets.metric_panel` results (saves
        recomputing them, e.g. in an app).
    stretch, sandbag : float
        Probability thresholds: below ``stretch`` a target is flagged as too
        hard, above ``sandbag`` as too easy.
    horizon : int
        Months after the end of the data that the forecast is trusted for.
    n_samples, seed, model
        Size, seed and model of forecast distributions computed here.

    Returns
    -------
    DataFrame
        One row per target and letter: ``target_id``, ``letter`` (S, M, A,
        R, T), ``criterion``, ``verdict`` (``pass``, ``flag``, ``fail``),
        ``reason``, ``value`` (current value for M, probability for A, else NaN).
    """
    checker = SmartCheck(stretch=stretch, sandbag=sandbag, horizon=horizon, n_samples=n_samples, seed=seed,
                         model=model)
    checker.fit(transactions, samples=samples, panels=panels, reps=reps, customers=customers,
                opportunities=opportunities)
    return checker.check(targets)


def smart_table(check: pd.DataFrame) -> pd.DataFrame:
    """One row per target: the verdict per letter and an overall verdict.

    Returns
    -------
    DataFrame
        ``target_id, S, M, A, R, T, overall, probability`` (overall is the
        worst verdict: fail > flag > pass).
    """
    check_columns(check, ["target_id", "letter", "verdict"], name="check")
    wide = check.pivot(index="target_id", columns="letter", values="verdict")
    wide = wide.reindex(index=check["target_id"].unique(), columns=list(LETTERS))
    rank = {"pass": 0, "flag": 1, "fail": 2}
    worst = wide.apply(lambda r: max(r.dropna(), key=lambda v: rank[v]), axis=1)
    wide["overall"] = worst
    prob = check[check["letter"] == "A"].set_index("target_id")["value"]
    wide["probability"] = prob.reindex(wide.index)
    wide.columns.name = None
    return wide.reset_index()



def unit_verdicts(
    allocation: pd.DataFrame,
    *,
    stretch: float = 0.3,
    sandbag: float = 0.9,
    strategy: str = "",
) -> pd.DataFrame:
    """A SMART verdict per unit of an allocation, cheap enough to refresh on every change.

    The unit's quota is specific and measurable by construction (a known unit,
    the planned metric) and time-bound (the plan period); what remains is
    **A**: the unit's probability of reaching its quota between ``stretch``
    and ``sandbag`` (a flag outside), and **R**: a strategy is named and the
    unit has history (a flag for a unit without history, unless it is a new
    hire planned at its ramped capacity).

    Parameters
    ----------
    allocation : DataFrame
        ``unique_id, probability`` and optionally ``fallback`` (no history)
        and ``verdict`` (``"new hire"`` rows).

    Returns
    -------
    DataFrame
        ``unique_id``, ``smart`` (``pass``, ``flag``), ``smart_reason`` (the
        letters that flag and why; empty on a pass).
    """
    check_columns(allocation, ["unique_id", "probability"], name="allocation")
    stretch = check_probability(stretch, name="stretch")
    sandbag = check_probability(sandbag, name="sandbag")
    p = allocation["probability"].to_numpy(float)
    hire = (allocation["verdict"] == "new hire").to_numpy() if "verdict" in allocation.columns else np.zeros(len(p), bool)
    no_hist = (allocation["fallback"].to_numpy(bool) if "fallback" in allocation.columns
               else np.zeros(len(p), bool)) & ~hire
    reasons = np.full(len(p), "", dtype=object)
    with np.errstate(invalid="ignore"):
        low, high = p < stretch, p > sandbag
    reasons[low] = [f"A: P(reach) {v:.0%} < stretch {stretch:.0%}" for v in p[low]]
    reasons[high] = [f"A: P(reach) {v:.0%} > sandbag {sandbag:.0%}" for v in p[high]]
    r_text = "R: no strategy named" if not (strategy or "").strip() else ""
    for i in np.flatnonzero(no_hist):
        reasons[i] = "; ".join(x for x in (reasons[i], "R: no history") if x)
    if r_text:
        reasons = np.array(["; ".join(x for x in (r, r_text) if x) for r in reasons], dtype=object)
    return pd.DataFrame({"unique_id": allocation["unique_id"].astype("str").to_numpy(),
                         "smart": np.where(reasons == "", "pass", "flag"), "smart_reason": reasons})
