"""Opportunities and stage history, checked and turned into one array per fact.

Every analysis of the pipeline starts here. :func:`prepare` validates the two
frames once and keeps, per deal, its status, the highest open stage it
reached, when it entered each stage and when it closed, as numpy arrays; the
funnel, durations, velocity and forecast functions read those arrays, so that
a million deals are summarised in well under a second.

How the history is read
-----------------------
* A deal *reached* every open stage up to the highest one it was recorded in
  (or its current stage, if that is higher). Won deals passed every open stage.
  **Skipped stages count as passed**: a deal that went from proposal straight
  to contract passed negotiation, with zero days in it.
* A lost deal was lost at the highest open stage it reached.
* The entry date of a skipped stage is the entry date of the next stage the
  deal was recorded in (or its close date), so the time spent in it is zero.
* A stage entered twice keeps its first entry (counted in a warning).
* Entries out of order (a later stage entered before an earlier one) are
  repaired so that entry dates never decrease down the stages (counted).
* A deal without any history falls back to its current stage: it passed every
  stage up to that one, all entered on its creation date; a lost deal without
  history was lost at the first stage. Such deals count in the funnel but not in
  the stage durations (counted in a warning).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_dates, check_frame, check_numeric, describe_rows
from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError
from salesplan.pipeline.process import Process

__all__ = ["PreparedDeals", "prepare", "deal_stages", "NO_OWNER", "OPEN", "WON", "LOST"]

OPEN, WON, LOST = 0, 1, 2
STATUS_NAMES = np.array(["open", "won", "lost"], dtype=object)
#: Owner shown for deals without one.
NO_OWNER = "(no owner)"
_DAY_NS = 86_400 * 10**9

OPP_REQUIRED = ("opportunity_id", "stage", "created_date")
HISTORY_REQUIRED = ("opportunity_id", "stage", "entered_at")


def _days(values: pd.Series) -> np.ndarray:
    """Datetimes as float days since 1970 (NaN for NaT)."""
    arr = values.to_numpy(dtype="datetime64[ns]")
    out = arr.astype(np.int64).astype(np.float64) / _DAY_NS
    out[np.isnat(arr)] = np.nan
    return out


def _to_timestamps(days: np.ndarray) -> np.ndarray:
    ns = np.where(np.isfinite(days), np.round(np.nan_to_num(days) * _DAY_NS), 0).astype(np.int64)
    out = ns.astype("datetime64[ns]")
    out[~np.isfinite(days)] = np.datetime64("NaT")
    return out


@dataclass
class PreparedDeals:
    """Opportunities and their stage history, checked, as arrays (one entry per deal).

    Build it with :func:`prepare`; every pipeline function accepts it in place
    of the opportunities frame, so that the checks run once.

    Attributes
    ----------
    process : Process
    opportunities : DataFrame
        The opportunities as given (one row per deal, original order), with
        ``rep_id`` filled with ``"(no owner)"`` where missing.
    status : ndarray of int8
        0 open, 1 won, 2 lost.
    top : ndarray of int64
        Code of the highest open stage the deal reached.
    entered : ndarray (n_deals, n_open) of float
        Day (since 1970) the deal entered each open stage; NaN where not reached.
    closed_at, created : ndarray of float
        Close day (NaN while open) and creation day.
    amount : ndarray of float
        Deal value (NaN where missing).
    has_history : ndarray of bool
        Whether the deal's stage dates come from its history.
    valid_dates : ndarray of bool
        False where the close date is before the creation date.
    as_of : float
        The analysis day: open deals are censored here.
    counts : dict
        What the checks found (rows repaired, deals without history...).
    stage_history : DataFrame or None
        The stage history as given.
    """

    process: Process
    opportunities: pd.DataFrame
    status: np.ndarray
    top: np.ndarray
    entered: np.ndarray
    closed_at: np.ndarray
    created: np.ndarray
    amount: np.ndarray
    has_history: np.ndarray
    valid_dates: np.ndarray
    as_of: float
    counts: dict
    stage_history: pd.DataFrame | None = None
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.status)

    @property
    def whole_days(self) -> bool:
        """Whether every date is a whole day (no time of day), so durations count in whole days."""
        if "whole_days" not in self.cache:
            parts = (self.entered, self.closed_at, self.created, np.array([self.as_of]))
            self.cache["whole_days"] = all(
                bool(np.all(np.where(np.isfinite(p), p, 0.0) % 1.0 == 0.0)) for p in parts)
        return self.cache["whole_days"]

    @property
    def as_of_timestamp(self) -> pd.Timestamp:
        return pd.Timestamp(_to_timestamps(np.array([self.as_of]))[0])

    def exits(self) -> tuple[np.ndarray, np.ndarray]:
        """Day each reached stage was left (NaN while still in it) and whether it ended in a loss there.

        Returns ``(exited, lost_here)``, both shaped like :attr:`entered`.
        """
        k = self.process.n_open
        exited = np.full_like(self.entered, np.nan)
        exited[:, :-1] = self.entered[:, 1:]
        cols = np.arange(k)[None, :]
        at_top = cols == self.top[:, None]
        closed = self.status != OPEN
        exited = np.where(at_top & closed[:, None], self.closed_at[:, None], exited)
        exited = np.where(at_top & ~closed[:, None], np.nan, exited)
        exited[cols > self.top[:, None]] = np.nan
        lost_here = at_top & (self.status == LOST)[:, None]
        return exited, lost_here

    def cycle(self) -> tuple[np.ndarray, np.ndarray]:
        """Days from creation to close (or to ``as_of`` while open) and whether the deal closed.

        Deals whose close date is before their creation date get NaN.
        """
        closed = self.status != OPEN
        end = np.where(closed, self.closed_at, self.as_of)
        days = end - self.created
        days[~self.valid_dates | ~np.isfinite(days)] = np.nan
        return days, closed


def _positions(ids: pd.Series, hist_ids: pd.Series | None) -> tuple[bool, np.ndarray | None]:
    """Whether ``ids`` are unique, and the position in ``ids`` of each history id (-1: unknown).

    Hashes the ids once with Arrow (no Python string objects), falling back to
    a pandas index for ids Arrow cannot compare (mixed types).
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        a = pa.array(ids.array if hasattr(ids, "array") else ids, from_pandas=True)
        parts = [a]
        run_start = None
        if hist_ids is not None:
            h = pa.array(hist_ids.array, from_pandas=True).cast(a.type)
            if len(h) > 1:
                # histories list a deal's entries together: hash one id per run, not per entry
                change = pc.not_equal(h.slice(1), h.slice(0, len(h) - 1))
                change = pc.fill_null(change, True).to_numpy(zero_copy_only=False)
                run_start = np.flatnonzero(np.concatenate([[True], change]))
                h = pc.take(h, pa.array(run_start))
            parts.append(h)
        both = pa.concat_arrays(parts) if len(parts) > 1 else a
        enc = pc.dictionary_encode(both)  # one hash table: codes comparable across ids and history
        n_dict = len(enc.dictionary)
        codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        own = codes[: len(ids)]
        valid = own >= 0
        unique = np.bincount(own[valid], minlength=n_dict).max(initial=0) <= 1
        if hist_ids is None:
            return bool(unique), None
        where = np.full(n_dict + 1, -1, dtype=np.int64)
        where[own[valid]] = np.flatnonzero(valid)
        hist_codes = codes[len(ids):]
        pos = where[np.where(hist_codes >= 0, hist_codes, n_dict)]
        if run_start is not None:
            pos = np.repeat(pos, np.diff(np.append(run_start, len(hist_ids))))
        return bool(unique), pos
    except (ImportError, TypeError, ValueError, NotImplementedError, AttributeError, ArithmeticError):
        index = pd.Index(ids.to_numpy())
        unique = index.is_unique
        if hist_ids is None or not unique:
            return unique, None
        return unique, index.get_indexer(hist_ids.to_numpy())


def _accumulate(ufunc, a: np.ndarray, reverse: bool = False) -> np.ndarray:
    """``ufunc.accumulate`` along the stages, a column at a time (columns are contiguous)."""
    out = np.array(a, order="F", copy=True)
    cols = range(a.shape[1] - 2, -1, -1) if reverse else range(1, a.shape[1])
    for j in cols:
        prev = j + 1 if reverse else j - 1
        ufunc(out[:, prev], out[:, j], out=out[:, j])
    return out


def _warn(message: str) -> None:
    warnings.warn(message, SalesplanDataWarning, stacklevel=4)


def _status(opps: pd.DataFrame, stage_code: np.ndarray, process: Process, counts: dict) -> np.ndarray:
    from_stage = np.where(stage_code == process.won_code, WON, np.where(stage_code == process.lost_code, LOST, OPEN))
    if "status" not in opps.columns:
        return from_stage.astype(np.int8)
    raw = opps["status"]
    codes, uniques = pd.factorize(raw.astype("string").str.strip().str.lower(), use_na_sentinel=True)
    table = {"open": OPEN, "won": WON, "lost": LOST, "closed won": WON, "closed lost": LOST}
    lut = np.array([table.get(u, -1) for u in uniques] + [-1], dtype=np.int64)
    status = lut[codes]
    unknown = status < 0
    if unknown.any():
        seen = raw[unknown].astype("string").fillna("<missing>").value_counts().head(5).to_dict()
        raise SalesplanDataError(
            f"opportunities['status'] must be open, won or lost; {int(unknown.sum())} row(s) are not, at "
            f"{describe_rows(opps.index[unknown])}: {seen}. Fix those values or drop the status column "
            "(then the status follows the stage: won and lost stages close the deal)."
        )
    clash = (from_stage != OPEN) & (from_stage != status)
    if clash.any():
        counts["status_stage_conflicts"] = int(clash.sum())
        _warn(
            f"{int(clash.sum())} opportunit(ies) have a won or lost stage but another status, at "
            f"{describe_rows(opps.index[clash])}; the status was kept."
        )
    return status.astype(np.int8)


def prepare(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    process: Process | None = None,
    as_of: object = None,
) -> PreparedDeals:
    """Check opportunities and their stage history once and keep them as arrays.

    Parameters
    ----------
    opportunities : DataFrame
        One row per deal: ``opportunity_id, stage, created_date`` required;
        ``status`` (open/won/lost; else derived from the stage), ``amount``,
        ``rep_id``, ``customer_id``, ``close_date`` and any unit columns used.
    stage_history : DataFrame, optional
        ``opportunity_id, stage, entered_at``: when each deal entered each stage.
        Without it every deal falls back to its current stage.
    process : Process, optional
        Stage names, order and service levels; default :class:`Process()`.
    as_of : date-like, optional
        Analysis date; open deals are censored here. Default: the last date in
        the data (creation, history entries, close dates of closed deals). It
        does not hide later events: to look at the pipeline as it was on an
        earlier day, filter the frames first.

    Raises
    ------
    SalesplanDataError
        Unknown stage names (listed, with a mapping to paste), duplicate
        opportunity ids, negative amounts, dates that are not dates.

    Warns
    -----
    SalesplanDataWarning
        Counted: missing amounts, deals without owner, close before creation,
        repeated or out-of-order history entries, history of unknown deals,
        deals without history.
    """
    if isinstance(opportunities, PreparedDeals):
        same_history = stage_history is None or stage_history is opportunities.stage_history
        if not same_history or process is not None or as_of is not None:
            raise SalesplanError(
                "opportunities is already prepared; pass stage_history, process and as_of to prepare() instead."
            )
        return opportunities
    process = process or Process()
    if not isinstance(process, Process):
        raise SalesplanError(f"process must be a salesplan.pipeline.Process, got {type(process).__name__}.")
    opps = check_frame(opportunities, name="opportunities", min_rows=1)
    check_columns(opps, OPP_REQUIRED, name="opportunities",
                  hint="Rename the CRM's columns, e.g. opportunities.rename(columns={'StageName': 'stage'}).")
    counts: dict = {}
    ids = opps["opportunity_id"]
    hist = None
    if stage_history is not None:
        hist = check_frame(stage_history, name="stage_history", min_rows=0)
        check_columns(hist, HISTORY_REQUIRED, name="stage_history",
                      hint="Rename its columns, e.g. history.rename(columns={'OpportunityId': 'opportunity_id', "
                           "'StageName': 'stage', 'CreatedDate': 'entered_at'}).")
    hist_ids = hist["opportunity_id"] if hist is not None else None
    # the three passes over the history are independent and release the GIL: on a big history,
    # read stage names and dates on a second core while the ids are matched
    jobs = None
    if hist is not None and len(hist) >= 200_000:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=2)
        jobs = (pool.submit(process.codes, hist["stage"], name="stage_history['stage']"),
                pool.submit(lambda: _days(check_dates(hist["entered_at"], name="stage_history['entered_at']"))))
        pool.shutdown(wait=False)
    unique, positions = _positions(ids, hist_ids)
    if ids.isna().any():
        bad = ids.isna().to_numpy(dtype=bool)
        raise SalesplanDataError(
            f"opportunities['opportunity_id'] is missing in {int(bad.sum())} row(s), at "
            f"{describe_rows(opps.index[bad])}. Every deal needs an id."
        )
    if not unique:
        dup = ids.duplicated().to_numpy(dtype=bool)
        raise SalesplanDataError(
            f"opportunities['opportunity_id'] repeats {int(dup.sum())} id(s), at {describe_rows(opps.index[dup])}: "
            f"{ids[dup].head(3).tolist()!r}. Keep one row per deal (its current state)."
        )
    stage_code = process.codes(opps["stage"], name="opportunities['stage']")
    status = _status(opps, stage_code, process, counts)
    n, k = len(opps), process.n_open

    created = _days(check_dates(opps["created_date"], name="opportunities['created_date']"))
    if np.isnan(created).any():
        bad = np.isnan(created)
        raise SalesplanDataError(
            f"opportunities['created_date'] is missing in {int(bad.sum())} row(s), at "
            f"{describe_rows(opps.index[bad])}. Every deal needs its creation date."
        )
    close = (_days(check_dates(opps["close_date"], name="opportunities['close_date']"))
             if "close_date" in opps.columns else np.full(n, np.nan))

    if "amount" in opps.columns:
        amount = check_numeric(opps["amount"], name="opportunities['amount']",
                               hint="Convert it with pd.to_numeric or load it with salesplan.io.").to_numpy(
            dtype=np.float64, na_value=np.nan)
        neg = amount < 0
        if neg.any():
            raise SalesplanDataError(
                f"opportunities['amount'] is negative in {int(neg.sum())} row(s), at "
                f"{describe_rows(opps.index[neg])}: {amount[neg][:3].tolist()}. A deal's value cannot be "
                "negative; fix the sign or drop those deals."
            )
        miss = np.isnan(amount)
        if miss.any():
            counts["missing_amount"] = int(miss.sum())
            _warn(
                f"opportunities['amount'] is missing in {int(miss.sum())} row(s), at "
                f"{describe_rows(opps.index[miss])}; they count as deals but add nothing to money figures."
            )
    else:
        amount = np.full(n, np.nan)
        counts["missing_amount"] = n
        _warn(f"opportunities has no 'amount' column; the {n} deals count but add nothing to money figures.")

    out_opps = opps
    if "rep_id" in opps.columns:
        rep = opps["rep_id"]
        no_owner = rep.isna().to_numpy(dtype=bool).copy()
        if rep.dtype == object or pd.api.types.is_string_dtype(rep):
            no_owner |= (rep.astype("string").str.strip() == "").fillna(False).to_numpy(dtype=bool)
        if no_owner.any():
            counts["no_owner"] = int(no_owner.sum())
            _warn(
                f"{int(no_owner.sum())} opportunit(ies) have no owner (rep_id), at "
                f"{describe_rows(opps.index[no_owner])}; they are reported under {NO_OWNER!r}."
            )
            out_opps = opps.copy()
            out_opps["rep_id"] = rep.astype(object).where(~no_owner, NO_OWNER)

    closed = status != OPEN
    # history --------------------------------------------------------------
    entered = np.full((n, k), np.inf)
    term = np.full(n, np.inf)
    has_history = np.zeros(n, dtype=bool)
    if hist is not None:
        if len(hist):
            idx = positions
            if jobs is not None:
                h_code, t = jobs[0].result(), jobs[1].result()
            else:
                h_code = process.codes(hist["stage"], name="stage_history['stage']")
                t = _days(check_dates(hist["entered_at"], name="stage_history['entered_at']"))
            if np.isnan(t).any():
                bad = np.isnan(t)
                raise SalesplanDataError(
                    f"stage_history['entered_at'] is missing in {int(bad.sum())} row(s), at "
                    f"{describe_rows(hist.index[bad])}. Fill those dates or drop the rows."
                )
            orphan = idx < 0
            if orphan.any():
                counts["history_unknown_deal"] = int(orphan.sum())
                _warn(
                    f"stage_history has {int(orphan.sum())} entr(ies) of opportunities that are not in "
                    f"opportunities, at {describe_rows(hist.index[orphan])}; they were ignored."
                )
                keep = ~orphan
                idx, h_code, t = idx[keep], h_code[keep], t[keep]
            has_history[idx] = True
            is_open = h_code < k
            key = idx[is_open] * k + h_code[is_open]
            flat = entered.reshape(-1)
            per_key = np.bincount(key, minlength=n * k)
            repeats = int((per_key[per_key > 1] - 1).sum())
            if repeats:
                np.minimum.at(flat, key, t[is_open])  # the first entry of a repeated stage
            else:
                flat[key] = t[is_open]
            t_term = t[~is_open]
            i_term = idx[~is_open]
            per_deal = np.bincount(i_term, minlength=n)
            term_repeats = len(i_term) - int(np.count_nonzero(per_deal))
            if term_repeats:
                np.minimum.at(term, i_term, t_term)
            else:
                term[i_term] = t_term
            repeats += term_repeats
            if repeats:
                counts["history_repeats"] = repeats
                _warn(
                    f"stage_history has {repeats} entr(ies) for a stage the deal had already entered "
                    "(duplicates or re-entries); the first entry of each stage was kept."
                )
    # entry dates must not decrease down the stages
    entered = np.asfortranarray(entered)  # one stage = one contiguous column from here on
    recorded = np.isfinite(entered)
    running = _accumulate(np.maximum, np.where(recorded, entered, -np.inf))
    disorder = recorded.copy()
    disorder[:, 1:] &= entered[:, 1:] < running[:, :-1]
    disorder[:, 0] = False
    bad_rows = disorder.any(axis=1)
    last_open = np.where(recorded, entered, -np.inf).max(axis=1)
    term_early = np.isfinite(term) & (term < last_open)
    bad_rows |= term_early
    if bad_rows.any():
        counts["history_out_of_order"] = int(bad_rows.sum())
        _warn(
            f"{int(bad_rows.sum())} deal(s) have stage history out of order (a later stage entered before an "
            f"earlier one), e.g. {ids[bad_rows].head(3).tolist()!r}; entry dates were raised to the latest earlier "
            "entry so that they never decrease down the stages."
        )
        entered = np.where(recorded, running, np.inf)
        term = np.where(term_early, last_open, term)

    # close day: the close date of a closed deal, else its won/lost history entry
    closed_at = np.where(closed, close, np.nan)
    fill = closed & np.isnan(closed_at) & np.isfinite(term)
    closed_at[fill] = term[fill]
    no_close = closed & np.isnan(closed_at)
    if no_close.any():
        counts["closed_without_date"] = int(no_close.sum())
        _warn(
            f"{int(no_close.sum())} closed deal(s) have neither a close date nor a won/lost history entry, at "
            f"{describe_rows(opps.index[no_close])}; they count in the funnel but not in durations."
        )
    valid_dates = ~(np.isfinite(closed_at) & (closed_at < created))
    last_entry = np.where(recorded, entered, -np.inf).max(axis=1)
    close_early = closed & valid_dates & np.isfinite(closed_at) & (closed_at < last_entry)
    if close_early.any():
        counts["close_before_last_stage"] = int(close_early.sum())
        _warn(
            f"{int(close_early.sum())} closed deal(s) closed before they entered their last recorded stage, e.g. "
            f"{ids[close_early].head(3).tolist()!r}; their close day was raised to that entry."
        )
        closed_at = np.where(close_early, last_entry, closed_at)
    if "close_date" in opps.columns:
        early = np.isfinite(close) & (close < created)
        if early.any():
            counts["close_before_created"] = int(early.sum())
            _warn(
                f"{int(early.sum())} opportunit(ies) have a close date before their creation date, at "
                f"{describe_rows(opps.index[early])}; they count in the funnel but their cycle length is "
                "left out of durations."
            )

    # highest open stage reached
    rec_top = np.where(recorded.any(axis=1), k - 1 - np.argmax(recorded[:, ::-1], axis=1), -1)
    cur_open = np.where(stage_code < k, stage_code, -1)
    top = np.maximum(rec_top, cur_open)
    top = np.where(status == WON, k - 1, top)
    top = np.maximum(top, 0)
    no_hist = ~has_history
    if stage_history is not None and no_hist.any():
        counts["no_history"] = int(no_hist.sum())
        _warn(
            f"{int(no_hist.sum())} opportunit(ies) have no stage history, e.g. {ids[no_hist].head(3).tolist()!r}; "
            "each falls back to its current stage (lost deals: lost at the first stage), all stages entered "
            "on its creation date, and is left out of stage durations."
        )
    elif stage_history is None:
        counts["no_history"] = n
        _warn(
            f"no stage_history was given: each of the {n} opportunities falls back to its current stage "
            "(lost deals: lost at the first stage); stage durations need the history."
        )

    # entry days of skipped stages: the next recorded entry (or the close day), then the last known entry
    # (only deals with a gap below their top stage need it; stages above the top stay NaN)
    ent = np.where(recorded, entered, np.nan)
    gap_rows = np.flatnonzero((~recorded & (np.arange(k)[None, :] <= top[:, None])).any(axis=1))
    if gap_rows.size:
        sub = ent[gap_rows]
        nxt = np.concatenate([sub, np.where(closed[gap_rows], closed_at[gap_rows], np.nan)[:, None]], axis=1)
        back = _accumulate(np.fmin, nxt, reverse=True)[:, :k]
        sub = np.where(np.isnan(sub), back, sub)
        sub = np.where(np.isnan(sub), _accumulate(np.fmax, sub), sub)
        sub = np.where(np.isnan(sub), created[gap_rows, None], sub)
        sub[np.arange(k)[None, :] > top[gap_rows, None]] = np.nan
        ent[gap_rows] = sub

    if as_of is None:
        cands = [np.nanmax(created)]
        if np.isfinite(closed_at).any():
            cands.append(np.nanmax(closed_at))
        if recorded.any():
            cands.append(entered[recorded].max())
        if np.isfinite(term).any():
            cands.append(term[np.isfinite(term)].max())
        as_of_day = float(np.floor(max(cands)))
    else:
        ts = pd.Timestamp(as_of)
        if ts.tzinfo is not None:
            ts = ts.tz_localize(None)
        as_of_day = (ts.value / _DAY_NS)

    return PreparedDeals(
        process=process, opportunities=out_opps, status=status, top=top.astype(np.int64), entered=ent,
        closed_at=closed_at, created=created, amount=amount, has_history=has_history,
        valid_dates=valid_dates, as_of=as_of_day, counts=counts, stage_history=stage_history,
    )


def deal_stages(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    process: Process | None = None,
    as_of: object = None,
) -> pd.DataFrame:
    """One row per deal and open stage it reached, with entry, exit and outcome.

    See the module notes for how skipped stages and missing history are read.

    Returns
    -------
    DataFrame
        ``opportunity_id, stage, stage_code, entered_at, exited_at, days_in_stage,
        outcome, recorded`` where ``outcome`` is ``advanced`` (moved on, or won
        from the last stage), ``lost`` (lost in this stage) or ``open`` (still in
        it; ``days_in_stage`` runs to ``as_of``), and ``recorded`` is False for
        deals without history (their days are unknown: NaN).
    """
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    k = d.process.n_open
    exited, lost_here = d.exits()
    reached = np.isfinite(d.entered)
    rows, cols = np.nonzero(reached)
    is_open = (np.arange(k)[None, :] == d.top[:, None]) & (d.status == OPEN)[:, None]
    outcome = np.where(lost_here, "lost", np.where(is_open, "open", "advanced"))[rows, cols]
    ent = d.entered[rows, cols]
    ex = exited[rows, cols]
    days = np.where(np.isnan(ex), d.as_of, ex) - ent
    days[~d.has_history[rows] | ~d.valid_dates[rows]] = np.nan
    return pd.DataFrame({
        "opportunity_id": d.opportunities["opportunity_id"].to_numpy()[rows],
        "stage": np.asarray(d.process.stages, dtype=object)[cols],
        "stage_code": cols,
        "entered_at": _to_timestamps(ent),
        "exited_at": _to_timestamps(ex),
        "days_in_stage": days,
        "outcome": outcome,
        "recorded": d.has_history[rows],
    })
