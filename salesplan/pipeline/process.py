"""The sales process as data: stages in order, won and lost, service levels.

A :class:`Process` says which stages a deal moves through (in order), which
stage names mean the deal was won or lost, and how many days a deal may stay in
each stage before it counts as stuck (the service level). The default is the
standard process of :data:`salesplan.schema.STAGES`:

prospecting -> first contact -> needs analysis -> proposal -> negotiation ->
contract -> order (won) -> after-sales.

An order and after-sales both mean the deal was won. A CRM's own stage names
map onto the process with :meth:`Process.with_mapping`; names are matched
case-, space- and punctuation-insensitively, so ``"First Contact"`` already
means ``first_contact``.

>>> p = Process().with_mapping({"Closed Won": "won", "Qualification": "first_contact"})
>>> p.codes(["Prospecting", "Closed Won", "qualification"]).tolist()
[0, 6, 1]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from salesplan import schema
from salesplan._validation import closest_matches
from salesplan.errors import SalesplanDataError, SalesplanError

__all__ = ["Process", "DEFAULT_SERVICE_DAYS", "default_process"]

#: Days a deal may stay in each open stage of the standard process.
DEFAULT_SERVICE_DAYS: dict[str, float] = {
    "prospecting": 14,
    "first_contact": 14,
    "needs_analysis": 21,
    "proposal": 21,
    "negotiation": 30,
    "contract": 14,
}


# Words in common CRM stage names (Salesforce, HubSpot, Dynamics...) and the standard
# stage they usually mean; used only to pre-fill the mapping suggested in errors.
_GUESSES = (
    (("prospect", "lead", "new"), "prospecting"),
    (("qualif", "contact", "discovery", "meeting", "appointment"), "first_contact"),
    (("need", "analysis", "value", "decision", "demo", "solution"), "needs_analysis"),
    (("propos", "quote", "perception", "offer", "presentation"), "proposal"),
    (("negot", "review"), "negotiation"),
    (("contract", "sign", "commit", "verbal"), "contract"),
)


@dataclass(frozen=True)
class Process:
    """Stages of a sales process, in order, with their service levels.

    Parameters
    ----------
    stages : tuple of str
        The open stages, in the order a deal moves through them.
    won : tuple of str
        Stage names that mean the deal was won (the first is the one reported).
    lost : tuple of str
        Stage names that mean the deal was lost (the first is the one reported).
    service_days : dict
        Stage -> days a deal may stay in it before it is stuck.
    mapping : dict
        A CRM's stage name -> a stage of this process (open, won or lost).

    Notes
    -----
    Stage codes: open stages are ``0 .. n_open - 1`` in order, won is
    ``n_open`` and lost is ``n_open + 1``.
    """

    stages: tuple[str, ...] = schema.OPEN_STAGES
    won: tuple[str, ...] = ("won", "order", "after_sales")
    lost: tuple[str, ...] = ("lost",)
    service_days: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SERVICE_DAYS))
    mapping: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        stages = tuple(str(s) for s in self.stages)
        if not stages:
            raise SalesplanError("Process needs at least one open stage, got stages=().")
        if len(set(stages)) != len(stages):
            raise SalesplanError(f"Process stages must be distinct, got {list(stages)}.")
        if not self.won or not self.lost:
            raise SalesplanError("Process needs at least one won and one lost stage name.")
        clash = (set(stages) & set(self.won)) | (set(stages) & set(self.lost)) | (set(self.won) & set(self.lost))
        if clash:
            raise SalesplanError(f"Stage name(s) {sorted(clash)} are used twice among open, won and lost stages.")
        unknown = [s for s in self.service_days if s not in stages]
        if unknown:
            raise SalesplanError(
                f"service_days names stage(s) {unknown} that are not open stages of the process {list(stages)}."
            )
        bad = {s: d for s, d in self.service_days.items() if not (np.isfinite(float(d)) and float(d) > 0)}
        if bad:
            raise SalesplanError(f"service_days must be positive numbers of days, got {bad}.")
        targets = set(stages) | set(self.won) | set(self.lost)
        wrong = {k: v for k, v in self.mapping.items() if v not in targets}
        if wrong:
            raise SalesplanError(
                f"mapping sends stage(s) to names that are not in the process: {wrong}. "
                f"Map onto one of {sorted(targets)}."
            )
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "won", tuple(self.won))
        object.__setattr__(self, "lost", tuple(self.lost))
        object.__setattr__(self, "service_days", dict(self.service_days))
        object.__setattr__(self, "mapping", dict(self.mapping))

    # -- names and codes -------------------------------------------------
    @property
    def n_open(self) -> int:
        """Number of open stages."""
        return len(self.stages)

    @property
    def won_code(self) -> int:
        return self.n_open

    @property
    def lost_code(self) -> int:
        return self.n_open + 1

    @property
    def names(self) -> tuple[str, ...]:
        """Reported name of every code: the open stages, then won and lost."""
        return self.stages + (self.won[0], self.lost[0])

    def service_level(self, stage: str) -> float:
        """Days a deal may stay in ``stage`` (``inf`` when none is set)."""
        return float(self.service_days.get(stage, np.inf))

    def with_mapping(self, mapping: Mapping[str, str]) -> "Process":
        """The same process, reading a CRM's stage names through ``mapping``.

        ``mapping`` sends each of the CRM's names to one stage of this process
        (several names may share a stage). Later mappings override earlier ones.
        """
        if not isinstance(mapping, Mapping):
            raise SalesplanError(
                f"mapping must be a dict of CRM stage name -> process stage, got {type(mapping).__name__}."
            )
        return replace(self, mapping={**self.mapping, **{str(k): str(v) for k, v in mapping.items()}})

    def with_service_days(self, service_days: Mapping[str, float]) -> "Process":
        """The same process with other service levels (days per stage)."""
        return replace(self, service_days={**self.service_days, **dict(service_days)})

    def _lookup(self) -> dict[str, int]:
        code = {}
        for i, s in enumerate(self.stages):
            code[schema.normalize_header(s)] = i
        for s in self.won:
            code[schema.normalize_header(s)] = self.won_code
        for s in self.lost:
            code[schema.normalize_header(s)] = self.lost_code
        by_name = {schema.normalize_header(k): v for k, v in code.items()}
        for k, v in self.mapping.items():
            by_name[schema.normalize_header(k)] = by_name[schema.normalize_header(v)]
        return by_name

    def codes(self, values: Iterable[object] | pd.Series, *, name: str = "stage") -> np.ndarray:
        """Stage codes of ``values``; unknown names raise, listing each with a mapping to paste.

        Missing values raise too: a stage is required.
        """
        values = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes, uniques = values.cat.codes.to_numpy(), values.cat.categories
        else:
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
        lookup = self._lookup()
        table = np.array([lookup.get(schema.normalize_header(u), -1) for u in uniques], dtype=np.int64)
        missing = codes < 0
        if missing.any():
            raise SalesplanDataError(
                f"{name} is missing in {int(missing.sum())} row(s) (first at row positions "
                f"{np.flatnonzero(missing)[:5].tolist()}). Every deal and history entry needs a stage; "
                "fill them or drop those rows."
            )
        unknown = np.flatnonzero(table < 0)
        if unknown.size:
            counts = np.bincount(codes, minlength=len(uniques))
            names = [str(uniques[i]) for i in unknown]
            listed = ", ".join(f"{n!r} ({counts[i]} rows)" for n, i in zip(names, unknown))
            raise SalesplanDataError(
                f"{name} has {len(names)} stage name(s) that are not in the process: {listed}. "
                f"Known stages: {list(self.names)} (also accepted as won: {list(self.won[1:])}). "
                f"Map them onto the process, e.g. (check the guesses):\n"
                f"    process = Process().with_mapping({self.mapping_template(names)!r})"
            )
        return table[codes] if len(table) else np.zeros(0, dtype=np.int64)

    def mapping_template(self, names: Iterable[str]) -> dict[str, str]:
        """A best-guess mapping of unknown stage ``names`` onto this process, to check and paste."""
        out = {}
        for n in names:
            key = schema.normalize_header(n)
            if "won" in key or "order" in key or "win" in key:
                out[n] = self.won[0]
                continue
            if "lost" in key or "lose" in key or "dead" in key:
                out[n] = self.lost[0]
                continue
            guess = next((stage for words, stage in _GUESSES if any(w in key for w in words)), None)
            if guess not in self.stages:
                near = closest_matches(n.replace(" ", "_"), self.stages, n=1)
                guess = near[0] if near else self.stages[0]
            out[n] = guess
        return out

    def table(self) -> pd.DataFrame:
        """The process as a frame: ``stage, code, kind, service_days``."""
        rows = [(s, i, "open", self.service_level(s)) for i, s in enumerate(self.stages)]
        rows += [(self.won[0], self.won_code, "won", np.nan), (self.lost[0], self.lost_code, "lost", np.nan)]
        return pd.DataFrame(rows, columns=["stage", "code", "kind", "service_days"])


def default_process() -> Process:
    """The standard process of :data:`salesplan.schema.STAGES` with default service levels."""
    return Process()
