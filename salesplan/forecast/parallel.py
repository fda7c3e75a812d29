"""Run a function over chunks of whole series, in-process or in parallel.

:func:`run_chunks` is the one place where salesplan fans work out over series:
:func:`salesplan.forecast.forecast` and :func:`salesplan.forecast.backtest.backtest`
call it so that a panel of many series can be forecast on local processes or
on a Dask cluster with the same result as a plain in-process run.

Chunks are made of whole series and depend only on the series (their order of
first appearance) and ``chunk_size``, never on the engine or ``n_jobs``; so a
function that is deterministic for a given chunk gives identical results on
every engine.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import pickle
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_frame, check_positive_int
from salesplan.errors import SalesplanDataError, SalesplanError

__all__ = ["run_chunks", "split_series", "engine_chunk_size", "cluster_threads", "ENGINES"]

#: Engines accepted by name; a ``dask.distributed.Client`` instance is accepted too.
ENGINES = ("local", "processes", "dask")

#: A panel is cut into at most this many chunks by default, so that the
#: per-chunk overhead (pickling, scheduling) stays small next to the work.
_DEFAULT_MAX_CHUNKS = 32

#: On Dask, :func:`engine_chunk_size` aims at this many chunks per worker thread: a
#: thread that finishes early picks up another chunk, and a worker killed mid-run
#: loses (and runs again) only a small share of the work.
CHUNKS_PER_THREAD = 3

#: ... and chunks of at most this many series: a forecast batch of a few hundred
#: series costs as little per series as one of thousands (measured: 7.3-7.9 ms a
#: series from 250 to 2,000), and small chunks even out the end of a run, where a
#: thread with nothing left would wait for the last big chunk of another.
MAX_SERIES_PER_CHUNK = 300

#: ... but not chunks smaller than this many series (a chunk is forecast as one
#: vectorised batch, and each costs a scatter and a task), unless that would leave
#: threads idle.
MIN_SERIES_PER_CHUNK = 50

#: Chunks of ``engine="local"`` runs with a progress bar (and of a Dask cluster whose
#: workers have not joined yet).
_LOCAL_CHUNKS = 4

#: Times chunks lost with a Dask worker (killed, out of memory, network) are sent again.
DASK_RETRIES = 2

#: With ``progress=None`` a bar is shown above this many series (or in a notebook).
_AUTO_PROGRESS_SERIES = 50


def split_series(
    df: pd.DataFrame, *, id_col: str = "unique_id", chunk_size: int | None = None
) -> list[pd.DataFrame]:
    """Cut ``df`` into chunks of whole series, in order of first appearance.

    Rows of one series keep their relative order; every series lands in exactly
    one chunk. ``chunk_size`` is the number of series per chunk (default: enough
    to make at most 32 chunks).

    Returns
    -------
    list of DataFrame
        The chunks, each a row subset of ``df`` (original index kept).

    Examples
    --------
    >>> df = pd.DataFrame({"unique_id": ["b", "a", "b", "c"], "y": [1, 2, 3, 4]})
    >>> [list(c["unique_id"]) for c in split_series(df, chunk_size=2)]
    [['b', 'b', 'a'], ['c']]
    """
    codes, uniques = pd.factorize(df[id_col], sort=False)
    n_series = len(uniques)
    if n_series == 0:
        return []
    if chunk_size is None:
        chunk_size = math.ceil(n_series / _DEFAULT_MAX_CHUNKS)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(0, n_series, chunk_size))
    bounds = np.append(bounds, len(order))
    return [df.iloc[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]


def run_chunks(
    fn: Callable[[pd.DataFrame], pd.DataFrame],
    df: pd.DataFrame,
    *,
    id_col: str = "unique_id",
    engine: Any = "local",
    n_jobs: int = 1,
    progress: bool | None = None,
    desc: str | None = None,
    chunk_size: int | None = None,
    retries: int = DASK_RETRIES,
) -> pd.DataFrame:
    """Apply ``fn`` to chunks of whole series and concatenate the results.

    Parameters
    ----------
    fn : callable
        ``fn(chunk) -> DataFrame``, where ``chunk`` holds the rows of some whole
        series. For ``engine="processes"`` it must be picklable: a
        module-level function or a :func:`functools.partial` of one (not a
        lambda or a function defined in a notebook); Dask also accepts lambdas.
    df : DataFrame
        Long frame with one row per series and time; it is not modified.
    id_col : str
        Column identifying the series.
    engine : {"local", "processes", "dask"} or dask.distributed.Client
        ``"local"`` runs in this process; ``"processes"`` uses a
        :class:`concurrent.futures.ProcessPoolExecutor` with ``n_jobs`` workers;
        ``"dask"`` uses the current ``dask.distributed`` client (the one made
        last with ``Client(...)``); a ``Client`` instance uses that client.
        Chunks are scattered to the workers and the results gathered back.
    n_jobs : int
        Worker processes for ``engine="processes"`` (ignored otherwise: a Dask
        cluster has its own workers).
    progress : bool or None
        Show a ``tqdm.auto`` bar counting finished series. ``None`` shows it
        when there are more than 50 series or when running in a notebook.
    desc : str, optional
        Label of the progress bar.
    chunk_size : int, optional
        Series per chunk. Default: enough for at most 32 chunks. Chunks never
        depend on the engine, so results are identical across engines.
    retries : int
        On Dask: how many more times chunks are sent when they were lost with a
        worker (killed, out of memory, a network failure). Each chunk's result
        is kept once, so no series is lost or duplicated: the run either returns
        every series once or raises an error naming the series it could not
        compute. Errors raised by ``fn`` itself are never retried.

    Returns
    -------
    DataFrame
        The frames returned by ``fn``, concatenated in the order in which the
        series first appear in ``df``, with a fresh ``RangeIndex``. Columns are
        whatever ``fn`` returns.

    Raises
    ------
    SalesplanError
        For an unknown engine, ``n_jobs < 1``, ``engine="dask"`` without a
        running client, an unpicklable ``fn`` with ``engine="processes"``, ``fn``
        returning something other than a DataFrame, or series still lost on
        Dask after ``retries`` further attempts (named in the message).
    SalesplanDataError
        When ``id_col`` is missing or holds missing values.

    Examples
    --------
    >>> df = pd.DataFrame({"unique_id": ["a", "a", "b"], "y": [1.0, 2.0, 5.0]})
    >>> run_chunks(_demo_mean, df, progress=False)
      unique_id    y
    0         a  1.5
    1         b  5.0
    """
    check_frame(df, name="df", min_rows=0)
    check_columns(df, [id_col], name="df", hint="Pass id_col= naming the series column.")
    n_jobs = check_positive_int(n_jobs, name="n_jobs")
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, name="chunk_size")
    retries = check_positive_int(retries, name="retries", allow_zero=True)
    if progress not in (True, False, None):
        raise SalesplanError(f"progress must be True, False or None (auto), got {progress!r}.")
    missing = df[id_col].isna().to_numpy()
    if missing.any():
        raise SalesplanDataError(
            f"df column {id_col!r} has {int(missing.sum())} missing series id(s) "
            f"({_rows(df.index[missing])}). Drop those rows or fill the id."
        )
    client = _resolve_engine(engine)
    if client is None and engine == "processes":
        # Dask serialises with cloudpickle (lambdas work); a process pool uses plain pickle.
        _check_picklable(fn, engine)

    chunks = split_series(df, id_col=id_col, chunk_size=chunk_size)
    if not chunks:
        # No series: fn still decides the shape (columns, dtypes) of the empty result.
        return _as_frame(fn(df), 0, chunks=[df], id_col=id_col).reset_index(drop=True)
    sizes = [c[id_col].nunique() for c in chunks]
    n_series = int(sum(sizes))
    show = _want_progress(progress, n_series)

    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_series, desc=desc or "series", unit="series")
    try:
        if client is not None:
            results = _run_dask(fn, chunks, client, sizes, bar, id_col, retries=retries)
        elif engine == "processes":
            results = _run_processes(fn, chunks, n_jobs, sizes, bar, id_col)
        else:
            results = []
            for i, chunk in enumerate(chunks):
                results.append(_call(fn, chunk, i, chunks, id_col))
                if bar is not None:
                    bar.update(sizes[i])
    finally:
        if bar is not None:
            bar.close()
    frames = [_as_frame(r, i, chunks=chunks, id_col=id_col) for i, r in enumerate(results)]
    return pd.concat(frames, ignore_index=True)


def _demo_mean(chunk: pd.DataFrame) -> pd.DataFrame:
    # Used by the docstring example: a module-level (hence picklable) fn.
    return chunk.groupby("unique_id", sort=False, as_index=False)["y"].mean()


def cluster_threads(client: Any) -> int:
    """Worker threads of a ``dask.distributed`` cluster right now (0 while no worker has joined).

    From ``client.nthreads()``, which lists every worker (``scheduler_info()``
    lists only the first few on large clusters).
    """
    return int(sum(client.nthreads().values()))


def engine_chunk_size(n_series: int, *, engine: Any = "local", n_jobs: int = 1) -> int:
    """Series per chunk for a run of ``n_series`` series on ``engine``.

    * ``"processes"``: one chunk per process (``n_jobs`` chunks);
    * Dask (``"dask"`` or a client): at least :data:`CHUNKS_PER_THREAD`
      chunks per worker thread of the cluster as it is when the run starts,
      and chunks of at most :data:`MAX_SERIES_PER_CHUNK` series, but of at
      least :data:`MIN_SERIES_PER_CHUNK` unless that leaves threads idle; a
      cluster without workers yet (an adaptive one still scaling up) gets 4
      chunks;
    * ``"local"``: 4 chunks (only used with a progress bar).

    >>> engine_chunk_size(1000, engine="processes", n_jobs=4)
    250
    """
    n_series = max(int(n_series), 1)
    client = _resolve_engine(engine)
    if client is None:
        parts = check_positive_int(n_jobs, name="n_jobs") if engine == "processes" else _LOCAL_CHUNKS
        return max(1, math.ceil(n_series / parts))
    threads = cluster_threads(client)
    if threads == 0:
        return max(1, math.ceil(n_series / _LOCAL_CHUNKS))
    wanted = min(math.ceil(n_series / (CHUNKS_PER_THREAD * threads)), MAX_SERIES_PER_CHUNK)
    floor = min(MIN_SERIES_PER_CHUNK, math.ceil(n_series / threads))
    return max(1, wanted, floor)


def _rows(labels: Any) -> str:
    from salesplan._validation import describe_rows

    return describe_rows(labels)


def _resolve_engine(engine: Any) -> Any:
    """Return the Dask client to use, or None for the local/process engines."""
    if isinstance(engine, str):
        if engine in ("local", "processes"):
            return None
        if engine == "dask":
            try:
                from distributed import get_client
            except ImportError as exc:  # pragma: no cover - dask is a dependency
                raise SalesplanError(
                    "engine='dask' needs dask.distributed, which is not installed. "
                    "Install it with `pip install 'dask[distributed]'`."
                ) from exc
            try:
                return get_client()
            except ValueError as exc:
                raise SalesplanError(
                    "engine='dask' needs a running dask.distributed client, but none was found. "
                    "Start one first, e.g. `from dask.distributed import Client; "
                    "client = Client(n_workers=2)`, or pass the client itself as engine=client."
                ) from exc
        _unknown_engine(engine)
    if _is_dask_client(engine):
        if getattr(engine, "status", "running") in ("closed", "closing"):
            raise SalesplanError(
                f"engine is a dask Client whose status is {engine.status!r}. "
                "Pass a running client (make a new one with Client(...))."
            )
        return engine
    _unknown_engine(engine)


def _is_dask_client(obj: Any) -> bool:
    if "distributed" not in sys.modules:
        return False
    from distributed import Client

    return isinstance(obj, Client)


def _unknown_engine(engine: Any) -> None:
    from salesplan._validation import closest_matches

    near = closest_matches(str(engine), ENGINES, n=1) if isinstance(engine, str) else []
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise SalesplanError(
        f"engine must be one of {list(ENGINES)} or a dask.distributed.Client, "
        f"got {engine!r} ({type(engine).__name__}).{hint}"
    )


def _check_picklable(fn: Callable, engine: Any) -> None:
    try:
        pickle.dumps(fn)
    except Exception as exc:
        raise SalesplanError(
            f"fn={fn!r} cannot be sent to worker processes (engine={engine!r}): it is not "
            f"picklable ({type(exc).__name__}: {exc}). Use a function defined at module "
            "level in a package, or functools.partial of one, or engine='local'."
        ) from exc


def _want_progress(progress: bool | None, n_series: int) -> bool:
    if progress is not None:
        return bool(progress)
    return n_series > _AUTO_PROGRESS_SERIES or _in_notebook()


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _chunk_label(i: int, chunks: list[pd.DataFrame], id_col: str) -> str:
    ids = pd.unique(chunks[i][id_col])
    if len(ids) == 0:
        return "an empty frame"
    span = repr(ids[0]) if len(ids) == 1 else f"{ids[0]!r} .. {ids[-1]!r} ({len(ids)} series)"
    return f"chunk {i + 1} of {len(chunks)}: series {span}"


def _call(fn: Callable, chunk: pd.DataFrame, i: int, chunks: list, id_col: str) -> Any:
    try:
        return fn(chunk)
    except Exception as exc:
        exc.add_note(f"salesplan.run_chunks: raised while running fn on {_chunk_label(i, chunks, id_col)}")
        raise


def _as_frame(result: Any, i: int, *, chunks: list, id_col: str) -> pd.DataFrame:
    if not isinstance(result, pd.DataFrame):
        raise SalesplanError(
            f"fn must return a pandas DataFrame, but on {_chunk_label(i, chunks, id_col)} "
            f"it returned {type(result).__name__}. Return a tidy frame, e.g. "
            "unique_id, ds and value columns."
        )
    return result


def _run_processes(
    fn: Callable, chunks: list, n_jobs: int, sizes: list[int], bar: Any, id_col: str
) -> list:
    results: list = [None] * len(chunks)
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(chunks))) as pool:
        futures = {pool.submit(fn, chunk): i for i, chunk in enumerate(chunks)}
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except Exception as exc:
                    exc.add_note(
                        f"salesplan.run_chunks: raised in a worker process while running fn "
                        f"on {_chunk_label(i, chunks, id_col)}"
                    )
                    raise
                if bar is not None:
                    bar.update(sizes[i])
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return results


def _is_lost_work(exc: BaseException) -> bool:
    """True when a task failed because of the cluster (a worker died, data was lost), not because of fn."""
    from concurrent.futures import CancelledError

    if isinstance(exc, CancelledError):
        return True
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    return name in ("KilledWorker", "FutureCancelledError", "CommClosedError", "StreamClosedError") or (
        module.startswith(("distributed", "tornado")) and "Error" in name)


def _scatter(client: Any, data: list, tries: int = 6) -> list:
    """client.scatter, waiting out a worker that is dying or restarting while data is sent to it."""
    import time

    for k in range(tries):
        try:
            return client.scatter(data)
        except Exception as exc:
            if not _is_lost_work(exc) or k == tries - 1:
                raise
            time.sleep(0.25 * (k + 1))
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def _numpy_friendly_malloc():
    """glibc's usual allocation thresholds while a chunk runs on a Dask worker.

    A Dask nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536`` so
    that they hand freed memory back to the system. Setting any such variable
    also freezes glibc's mmap threshold at 128 KiB, so every numpy temporary
    above that size is a fresh ``mmap`` whose pages are faulted in and zeroed
    again: the forecasts' vectorised steps then cost about a third more CPU
    than in a plain process. For the duration of the chunk this restores the
    thresholds an ordinary process reaches (mmap above 32 MiB, trim above
    64 MiB), then puts the worker's setting back and trims, so the worker
    still returns its memory between tasks. Elsewhere (no such variable, or
    not glibc) it does nothing.
    """
    setting = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = _glibc() if setting is not None else None
    if libc is None:
        yield
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 2**20)
    libc.mallopt(m_trim_threshold, 64 * 2**20)
    try:
        yield
    finally:
        libc.mallopt(m_mmap_threshold, 128 * 2**10)
        try:
            libc.mallopt(m_trim_threshold, int(setting))
        except ValueError:
            pass
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> Any:
    """The C library when it is glibc (loaded once per worker), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc has both, musl has neither
    except (OSError, AttributeError):
        return None
    return libc


def _on_worker(fn: Callable, chunk: pd.DataFrame) -> Any:
    """What a Dask worker runs for one chunk: ``fn(chunk)`` with numpy-friendly malloc settings."""
    with _numpy_friendly_malloc():
        return fn(chunk)


def _run_dask(fn: Callable, chunks: list, client: Any, sizes: list[int], bar: Any, id_col: str,
              retries: int = DASK_RETRIES) -> list:
    """Run the chunks on a Dask cluster; chunks lost with a worker are sent again.

    A chunk lost with a worker is scattered and submitted again at once (at
    most ``retries`` times). Each chunk has one slot for its result, filled
    once, so a chunk that ran twice is never counted twice; chunks still
    missing at the end are named in the error.
    """
    from distributed import as_completed as dask_as_completed

    results: list = [None] * len(chunks)
    attempts = [1] * len(chunks)
    causes: dict[int, str] = {}
    resent: set[int] = set()
    missing: list[int] = []
    # Scatter the data so that it travels once, outside the task graph.
    scattered = _scatter(client, chunks)
    # pure=False: each call is a fresh task, never a cached result of an earlier run.
    futures = client.map(functools.partial(_on_worker, fn), scattered, pure=False)
    index = {fut.key: i for i, fut in enumerate(futures)}
    live = list(futures) + list(scattered)
    try:
        queue = dask_as_completed(futures)
        for fut in queue:
            i = index[fut.key]
            try:
                value = fut.result()
            except Exception as exc:
                if not _is_lost_work(exc):
                    exc.add_note(
                        f"salesplan.run_chunks: raised on a Dask worker while running fn "
                        f"on {_chunk_label(i, chunks, id_col)}"
                    )
                    raise
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                causes[i] = f"{type(exc).__name__}: {first_line}"
                if attempts[i] > retries:
                    missing.append(i)
                    continue
                # Its input may have died with the worker: send the chunk again, at once.
                attempts[i] += 1
                resent.add(i)
                [again] = _scatter(client, [chunks[i]])
                retry = client.submit(_on_worker, fn, again, pure=False)
                index[retry.key] = i
                live += [retry, again]
                queue.add(retry)
                continue
            results[i] = value
            if bar is not None:
                bar.update(sizes[i])
    finally:
        client.cancel(live)
    if resent:
        import warnings

        from salesplan.errors import SalesplanWarning

        first = min(resent)
        warnings.warn(
            f"run_chunks: {len(resent)} chunk(s) ({sum(sizes[i] for i in resent)} series) were lost on the "
            f"Dask cluster ({causes[first]}) and were run again; every series is in the result once.",
            SalesplanWarning, stacklevel=4,
        )
    if not missing:
        return results
    pending = sorted(missing)
    ids = [x for i in pending for x in pd.unique(chunks[i][id_col])]
    shown = ", ".join(repr(x) for x in ids[:10]) + (f" (and {len(ids) - 10} more)" if len(ids) > 10 else "")
    raise SalesplanError(
        f"run_chunks: {len(ids)} series could not be computed on the Dask cluster after {retries + 1} "
        f"attempt(s): {shown}. The last cause was {causes[pending[0]]} A worker that dies on the same "
        "chunk every time usually ran out of memory: give the workers more memory, pass a smaller "
        "chunk_size=, or pass retries= to try again more often. No partial result is returned, so no "
        "series is missing or counted twice downstream."
    )
