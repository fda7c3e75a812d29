"""Tests for salesplan.forecast.parallel: chunking, engines, progress and errors.

The process and Dask engines run for real: a ProcessPoolExecutor and a local
Dask cluster with two worker processes started by a module fixture.
"""

from __future__ import annotations

import functools
import math
import os
import re

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.forecast.parallel import run_chunks, split_series


def series_stats(chunk: pd.DataFrame, *, scale: float = 1.0) -> pd.DataFrame:
    """Per-series summary with several rows per series (order-sensitive)."""
    out = []
    for uid, g in chunk.groupby("unique_id", sort=False):
        y = g["y"].to_numpy() * scale
        out.append(pd.DataFrame({
            "unique_id": uid,
            "step": np.arange(3),
            "value": [y.mean(), y.std(), np.cumsum(y)[-1]],
        }))
    return pd.concat(out, ignore_index=True)


def with_pid(chunk: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": pd.unique(chunk["unique_id"]), "pid": os.getpid()})


def not_a_frame(chunk: pd.DataFrame) -> list:
    return [len(chunk)]


def fails_on_c(chunk: pd.DataFrame) -> pd.DataFrame:
    if (chunk["unique_id"] == "c").any():
        raise RuntimeError("boom on c")
    return chunk


def make_panel(rng: np.random.Generator, n_series: int = 12, n_obs: int = 8) -> pd.DataFrame:
    ids = [f"s{i:02d}" for i in range(n_series)]
    df = pd.DataFrame({
        "unique_id": np.repeat(ids, n_obs),
        "ds": np.tile(pd.date_range("2024-01-01", periods=n_obs, freq="MS"), n_series),
        "y": rng.gamma(2.0, 50.0, size=n_series * n_obs),
    })
    # Shuffle so that series are interleaved and not in sorted order.
    return df.sample(frac=1.0, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


# -- chunking ---------------------------------------------------------------


def test_split_series_keeps_whole_series_in_first_appearance_order():
    df = pd.DataFrame({"unique_id": ["b", "a", "b", "c", "a", "d"], "y": range(6)})
    chunks = split_series(df, chunk_size=2)
    assert [list(c["unique_id"]) for c in chunks] == [["b", "b", "a", "a"], ["c", "d"]]
    # Rows keep their relative order within a series and their index labels.
    assert list(chunks[0].index) == [0, 2, 1, 4]
    assert split_series(df.iloc[:0]) == []


def test_default_chunks_are_at_most_32_and_cover_every_series(rng):
    df = make_panel(rng, n_series=100, n_obs=2)
    chunks = split_series(df)
    assert len(chunks) == 25  # ceil(100 / 32) = 4 series per chunk
    seen = pd.concat([c["unique_id"] for c in chunks])
    assert seen.nunique() == 100 and len(seen) == len(df)
    assert all(c["unique_id"].nunique() == 4 for c in chunks)


def test_local_run_concatenates_in_series_order_and_leaves_input_alone(rng):
    df = make_panel(rng)
    before = df.copy()
    out = run_chunks(series_stats, df, chunk_size=5, progress=False)
    pdt.assert_frame_equal(df, before)
    assert list(pd.unique(out["unique_id"])) == list(pd.unique(df["unique_id"]))
    # Chunking does not change the result of a per-series function.
    pdt.assert_frame_equal(out, series_stats(df))
    assert isinstance(out.index, pd.RangeIndex)


def test_chunk_size_does_not_change_result(rng):
    df = make_panel(rng)
    ref = run_chunks(series_stats, df, chunk_size=1, progress=False)
    for size in (3, 12, 100):
        pdt.assert_frame_equal(run_chunks(series_stats, df, chunk_size=size, progress=False), ref)


def test_custom_id_col(rng):
    df = make_panel(rng, n_series=3).rename(columns={"unique_id": "sku"})
    out = run_chunks(with_pid, df.rename(columns={"sku": "unique_id"}), progress=False)
    out2 = run_chunks(
        lambda c: pd.DataFrame({"sku": pd.unique(c["sku"])}), df, id_col="sku", progress=False
    )
    assert list(out2["sku"]) == list(out["unique_id"])


# -- errors -----------------------------------------------------------------


def test_engine_dask_without_client_says_how_to_start_one(rng):
    distributed = pytest.importorskip("dask.distributed")
    try:
        distributed.get_client()
    except ValueError:
        pass
    else:  # pragma: no cover - only when another test leaked a client
        pytest.skip("a dask client is already running in this process")
    with pytest.raises(SalesplanError, match=r"needs a running dask.distributed client.*Client\("):
        run_chunks(series_stats, make_panel(rng), engine="dask", progress=False)


def test_unknown_engine_suggests_the_closest(rng):
    with pytest.raises(SalesplanError, match=r"engine must be one of.*got 'proceses'.*Did you mean 'processes'"):
        run_chunks(series_stats, make_panel(rng), engine="proceses")
    with pytest.raises(SalesplanError, match=r"got 4 \(int\)"):
        run_chunks(series_stats, make_panel(rng), engine=4)


@pytest.mark.parametrize("n_jobs", [0, -1, 1.5, True])
def test_bad_n_jobs(rng, n_jobs):
    with pytest.raises(SalesplanError, match=r"n_jobs must be an integer >= 1"):
        run_chunks(series_stats, make_panel(rng), n_jobs=n_jobs)


def test_bad_progress_and_chunk_size(rng):
    with pytest.raises(SalesplanError, match=r"progress must be True, False or None"):
        run_chunks(series_stats, make_panel(rng), progress="yes")
    with pytest.raises(SalesplanError, match=r"chunk_size must be an integer >= 1, got 0"):
        run_chunks(series_stats, make_panel(rng), chunk_size=0)


def test_missing_id_column_and_missing_ids(rng):
    df = make_panel(rng, n_series=2)
    with pytest.raises(SalesplanDataError, match=r"missing required column\(s\) 'series'"):
        run_chunks(series_stats, df, id_col="series")
    bad = df.copy()
    bad.loc[[1, 5], "unique_id"] = None
    with pytest.raises(SalesplanDataError, match=r"2 missing series id\(s\) \(rows 1, 5\)"):
        run_chunks(series_stats, bad)


def test_unpicklable_fn_on_processes_is_refused_with_the_fix(rng):
    with pytest.raises(SalesplanError, match=r"not picklable.*module level.*functools.partial"):
        run_chunks(lambda c: c, make_panel(rng), engine="processes", n_jobs=2)


def test_fn_must_return_a_frame(rng):
    with pytest.raises(SalesplanError, match=r"fn must return a pandas DataFrame.*chunk 1 of 1.*returned list"):
        run_chunks(not_a_frame, make_panel(rng), progress=False)


def test_errors_in_fn_propagate_with_the_chunk_named():
    df = pd.DataFrame({"unique_id": list("abcd"), "y": range(4)})
    with pytest.raises(RuntimeError, match="boom on c") as info:
        run_chunks(fails_on_c, df, chunk_size=1, progress=False)
    assert any("chunk 3 of 4: series 'c'" in n for n in info.value.__notes__)
    with pytest.raises(RuntimeError, match="boom on c") as info:
        run_chunks(fails_on_c, df, chunk_size=2, engine="processes", n_jobs=2, progress=False)
    assert any("worker process" in n and "'c' .. 'd'" in n for n in info.value.__notes__)


def test_empty_frame_still_calls_fn_once():
    df = pd.DataFrame({"unique_id": pd.Series([], dtype="str"), "y": pd.Series([], dtype=float)})
    out = run_chunks(series_stats_or_empty, df)
    assert list(out.columns) == ["unique_id", "n"] and len(out) == 0


def series_stats_or_empty(chunk: pd.DataFrame) -> pd.DataFrame:
    return chunk.groupby("unique_id", as_index=False).size().rename(columns={"size": "n"})


# -- progress ---------------------------------------------------------------


def test_progress_bar_counts_series_and_is_off_when_asked(rng, capsys):
    df = make_panel(rng, n_series=12)
    run_chunks(series_stats, df, progress=True, desc="fitting", chunk_size=5)
    err = capsys.readouterr().err
    assert "fitting" in err and "12/12" in err
    run_chunks(series_stats, df, progress=False)
    run_chunks(series_stats, df)  # auto: 12 series, not a notebook -> no bar
    assert capsys.readouterr().err == ""
    run_chunks(series_stats, make_panel(rng, n_series=60, n_obs=2))  # auto: > 50 series
    assert "60/60" in capsys.readouterr().err


# -- real parallel engines --------------------------------------------------


def test_processes_equal_local(rng):
    df = make_panel(rng, n_series=20)
    fn = functools.partial(series_stats, scale=2.5)
    local = run_chunks(fn, df, chunk_size=3, progress=False)
    procs = run_chunks(fn, df, engine="processes", n_jobs=2, chunk_size=3, progress=False)
    pdt.assert_frame_equal(procs, local)
    pids = run_chunks(with_pid, df, engine="processes", n_jobs=2, chunk_size=3, progress=False)
    assert os.getpid() not in set(pids["pid"])


def test_dask_client_equals_local_and_runs_on_the_workers(rng, dask_client):
    df = make_panel(rng, n_series=20)
    fn = functools.partial(series_stats, scale=2.5)
    local = run_chunks(fn, df, chunk_size=3, progress=False)
    pdt.assert_frame_equal(run_chunks(fn, df, engine=dask_client, chunk_size=3, progress=False), local)
    # engine="dask" picks up the current client.
    pdt.assert_frame_equal(run_chunks(fn, df, engine="dask", chunk_size=3, progress=False), local)
    pids = run_chunks(with_pid, df, engine=dask_client, chunk_size=1, progress=False)
    worker_pids = set(dask_client.run(os.getpid).values())
    assert set(pids["pid"]) <= worker_pids and os.getpid() not in worker_pids
    assert len(worker_pids) == 2


def test_dask_errors_propagate_with_the_chunk_named(dask_client):
    df = pd.DataFrame({"unique_id": list("abcd"), "y": range(4)})
    with pytest.raises(RuntimeError, match="boom on c") as info:
        run_chunks(fails_on_c, df, engine=dask_client, chunk_size=1, progress=False)
    assert any("Dask worker" in n and "series 'c'" in n for n in info.value.__notes__)


def _seasonal_panel(rng, n_series=4, n_obs=36):
    t = np.arange(n_obs)
    frames = []
    for i in range(n_series):
        season = 1 + 0.2 * np.sin(2 * np.pi * t / 12 + i)
        y = (100 + 5 * i + 0.8 * t) * season + rng.normal(0, 3, n_obs)
        frames.append(pd.DataFrame({
            "unique_id": f"r{i}",
            "ds": pd.date_range("2022-01-01", periods=n_obs, freq="MS"),
            "y": y,
        }))
    return pd.concat(frames, ignore_index=True)


def _package_forecast():
    core = pytest.importorskip("salesplan.forecast.core")
    if not hasattr(core, "forecast"):
        pytest.skip("salesplan.forecast.core.forecast is not written yet")
    return core.forecast


def test_forecast_points_on_dask_equal_the_local_forecast(rng, dask_client):
    forecast = _package_forecast()
    panel = _seasonal_panel(rng)
    local = forecast(panel, 6, level=None)
    on_dask = forecast(panel, 6, level=None, engine=dask_client)
    pdt.assert_frame_equal(on_dask, local)
    assert len(local) == 4 * 6 and local["auto"].notna().all()


def test_forecast_with_intervals_on_dask_equals_the_local_forecast(rng, dask_client):
    forecast = _package_forecast()
    panel = _seasonal_panel(rng)
    local = forecast(panel, 6)
    on_dask = forecast(panel, 6, engine=dask_client)
    pdt.assert_frame_equal(on_dask, local)


def _mixed_panel(n_series: int, seed: int) -> pd.DataFrame:
    """Seeded monthly series unlike one another: lengths 3-72 months, different
    start months, seasonal/trending/random-walk/intermittent/flat shapes."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        n = int(rng.integers(3, 73))
        t = np.arange(n)
        level = rng.gamma(2.0, 200.0)
        kind = i % 5
        if kind == 0:  # seasonal, trending, multiplicative noise
            y = level * (1 + rng.normal(0.005, 0.01)) ** t * (1 + rng.uniform(0, 0.4) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6))) \
                * np.exp(rng.normal(0, rng.uniform(0.02, 0.3), n))
        elif kind == 1:  # intermittent counts
            y = rng.poisson(rng.uniform(0.2, 3.0), n).astype(float)
        elif kind == 2:  # random walk, may go negative
            y = level * 0.1 + np.cumsum(rng.normal(0, level * 0.05, n))
        elif kind == 3:  # linear trend and noise
            y = level + rng.normal(0, level * 0.2, n) + t * rng.normal(0, 3)
        else:  # flat, or almost
            y = np.full(n, np.round(level)) + (rng.random(n) < 0.1) * rng.normal(0, 5, n)
        start = pd.Timestamp("2019-01-01") + pd.DateOffset(months=int(rng.integers(0, 36)))
        frames.append(pd.DataFrame({"unique_id": f"m{i:03d}", "ds": pd.date_range(start, periods=n, freq="MS"),
                                    "y": np.round(y, 2)}))
    return pd.concat(frames, ignore_index=True)


def test_a_series_forecast_does_not_depend_on_the_batch_it_is_fitted_in():
    """One batch, forecast() on chunks of several sizes (above and below the
    50 series, where the optimiser used to change), single series, and a chunked run
    through run_chunks all give every series the same numbers."""
    import warnings

    from salesplan.errors import SalesplanDataWarning
    from salesplan.forecast import forecast

    panel = _mixed_panel(120, seed=11)
    models = ["auto", "arima"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        whole = forecast(panel, 6, models=models, level=[80, 95])
        for size in (97, 41):
            parts = [forecast(c, 6, models=models, level=[80, 95]) for c in split_series(panel, chunk_size=size)]
            pdt.assert_frame_equal(pd.concat(parts, ignore_index=True), whole, check_exact=False, rtol=1e-12)
        ids = pd.unique(panel["unique_id"])
        for uid in ids[[0, 2, 3, 100]]:
            alone = forecast(panel[panel["unique_id"] == uid], 6, models=models, level=[80, 95])
            pdt.assert_frame_equal(alone, whole[whole["unique_id"] == uid].reset_index(drop=True),
                                   check_exact=False, rtol=1e-12)
        chunked = forecast(panel, 6, models=models, level=[80, 95], progress=True)  # 4 chunks
    pdt.assert_frame_equal(chunked, whole, check_exact=False, rtol=1e-12)
    assert whole[models].notna().all().all()


def test_chunks_follow_the_clusters_threads(dask_client):
    from salesplan.forecast.parallel import (CHUNKS_PER_THREAD, MAX_SERIES_PER_CHUNK, MIN_SERIES_PER_CHUNK,
                                             cluster_threads, engine_chunk_size)

    distributed = pytest.importorskip("dask.distributed")
    assert cluster_threads(dask_client) == 2
    # 2 threads: CHUNKS_PER_THREAD chunks each for a mid-sized panel ...
    assert math.ceil(1_200 / engine_chunk_size(1_200, engine=dask_client)) == 2 * CHUNKS_PER_THREAD
    # ... and chunks of at most MAX_SERIES_PER_CHUNK series for a large one
    assert engine_chunk_size(10_000, engine=dask_client) == MAX_SERIES_PER_CHUNK
    # a small panel: chunks stay at MIN_SERIES_PER_CHUNK series, but every thread gets one
    assert engine_chunk_size(200, engine=dask_client) == MIN_SERIES_PER_CHUNK
    assert engine_chunk_size(60, engine=dask_client) == 30
    with distributed.LocalCluster(n_workers=1, threads_per_worker=5, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as bigger:
        assert cluster_threads(bigger) == 5
        assert math.ceil(3_000 / engine_chunk_size(3_000, engine=bigger)) == 5 * CHUNKS_PER_THREAD
    assert engine_chunk_size(10, engine="processes", n_jobs=3) == 4


def test_forecast_cuts_a_dask_run_by_the_clusters_size(rng, dask_client, monkeypatch):
    from salesplan.forecast import parallel

    forecast = _package_forecast()
    seen = []
    real = parallel.run_chunks

    def spy(fn, df, **kwargs):
        seen.append(kwargs["chunk_size"])
        return real(fn, df, **kwargs)

    monkeypatch.setattr(parallel, "run_chunks", spy)
    panel = _seasonal_panel(rng)
    n = panel["unique_id"].nunique()
    on_dask = forecast(panel, 3, models="snaive", level=None, engine=dask_client)
    assert seen == [parallel.engine_chunk_size(n, engine=dask_client)] and seen[0] == math.ceil(n / 2)
    pdt.assert_frame_equal(on_dask, forecast(panel, 3, models="snaive", level=None))


# -- faults on a real cluster: a worker killed mid-run --------------------------------


def slow_stats(chunk: pd.DataFrame, *, log: str, pause: float) -> pd.DataFrame:
    """series_stats after a pause, logging which chunk started (the test watches the log)."""
    import time

    with open(log, "a") as fh:
        fh.write(f"{chunk['unique_id'].iloc[0]}\n")
    time.sleep(pause)
    return series_stats(chunk)


def dies_on_s03(chunk: pd.DataFrame) -> pd.DataFrame:
    if (chunk["unique_id"] == "s03").any():
        os.kill(os.getpid(), 9)  # the worker dies every time it runs this chunk
    return series_stats(chunk)


@pytest.fixture(scope="module")
def fault_cluster():
    distributed = pytest.importorskip("dask.distributed")
    import dask

    # A task whose worker dies is marked lost at once (not retried by the scheduler),
    # so that run_chunks' own retries are what the tests see.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_worker_killed_mid_run_loses_and_duplicates_no_series(rng, fault_cluster, tmp_path):
    import threading
    import time

    df = make_panel(rng, n_series=16, n_obs=6)
    log = tmp_path / "started.txt"
    fn = functools.partial(slow_stats, log=str(log), pause=0.3)
    victim = {}

    def kill_one_worker_mid_run():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if log.exists() and len(log.read_text().split()) >= 4:
                pids = fault_cluster.run(os.getpid)
                victim["pid"] = next(iter(pids.values()))
                victim["started_before"] = len(log.read_text().split())
                os.kill(victim["pid"], 9)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_mid_run)
    killer.start()
    with pytest.warns(UserWarning, match=r"lost on the Dask cluster .* and were run again; every series"):
        got = run_chunks(fn, df, engine=fault_cluster, chunk_size=1, progress=False)
    killer.join()
    assert victim["started_before"] < 16  # the worker died while chunks were still to run
    pdt.assert_frame_equal(got, run_chunks(series_stats, df, chunk_size=1, progress=False))
    counts = got.groupby("unique_id").size()
    assert len(counts) == 16 and (counts == 3).all()  # every series once, three rows each


def test_chunk_that_kills_its_worker_every_time_fails_naming_the_series(rng, fault_cluster):
    df = make_panel(rng, n_series=8, n_obs=6)
    with pytest.warns(UserWarning, match="were run again"):
        with pytest.raises(SalesplanError, match=r"series could not be computed on the Dask cluster "
                                                 r"after 2 attempt\(s\): .*'s03'.*KilledWorker") as err:
            run_chunks(dies_on_s03, df, engine=fault_cluster, chunk_size=1, progress=False, retries=1)
    # Chunks queued on the same worker may die with it; they are named too, never silently dropped.
    named = set(re.findall(r"'(s\d\d)'", str(err.value).split(". The last cause")[0]))
    assert "s03" in named and named <= set(df["unique_id"])
    # The cluster recovers: the next run gives every series.
    ok = run_chunks(series_stats, df, engine=fault_cluster, chunk_size=2, progress=False)
    assert ok["unique_id"].nunique() == 8


def test_bad_retries(rng):
    with pytest.raises(SalesplanError, match="retries must be an integer >= 0"):
        run_chunks(series_stats, make_panel(rng), retries=-1)


def test_errors_of_fn_are_not_mistaken_for_lost_workers():
    from salesplan.forecast.parallel import _is_lost_work

    assert not _is_lost_work(FileNotFoundError("data.csv"))
    assert not _is_lost_work(RuntimeError("boom"))
    distributed = pytest.importorskip("distributed")
    assert _is_lost_work(distributed.comm.CommClosedError("closed"))
    assert _is_lost_work(distributed.scheduler.KilledWorker("task", "worker", 3))


def test_chunks_on_dask_run_with_the_usual_malloc_thresholds_then_the_workers_again(monkeypatch):
    """A Dask nanny sets MALLOC_TRIM_THRESHOLD_, which pins glibc's mmap threshold
    at 128 KiB (numpy temporaries become fresh mmaps); a chunk runs with the
    usual thresholds, and the worker's own setting is back afterwards."""
    from salesplan.forecast import parallel

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    monkeypatch.setattr(parallel, "_glibc", lambda: FakeLibc())
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    seen = []
    out = parallel._on_worker(lambda chunk: seen.append(list(calls)) or chunk * 2, 21)
    assert out == 42
    assert seen == [[(-3, 32 * 2**20), (-1, 64 * 2**20)]]  # in force while the chunk ran
    assert calls[2:] == [(-3, 128 * 2**10), (-1, 65536), ("trim", 0)]
    # without the variable (a plain process) nothing is touched, and errors pass through
    calls.clear()
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    with pytest.raises(RuntimeError, match="boom on c"):
        parallel._on_worker(fails_on_c, pd.DataFrame({"unique_id": ["c"]}))
    assert calls == []
