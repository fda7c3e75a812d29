"""Ingestion and aggregation beyond memory: pandas vs polars (lazy) vs salesplan's DuckDB engine.

For 10 and 50 million order lines, in Parquet and in CSV, two aggregations a
planner needs are timed end to end (read + aggregate), and one copy:

* the monthly region x category revenue panel,
* RFM per customer (first and last purchase day, distinct purchase days, net revenue),
* "copy": the whole export written as one Parquet file (pandas ``read_csv`` +
  ``to_parquet``, polars ``sink_parquet``, DuckDB ``COPY``, the engine's
  ``to_parquet``, which also maps, parses and checks every line), what a team
  does once with an export it reads again and again.

Contenders, each in a fresh subprocess so that peak memory is its own:

(a) pandas: ``read_parquet``/``read_csv`` of the needed columns + ``groupby``
    (the default a user writes), under an address-space cap (``--cap-gib``,
    default 12) so that it cannot take the machine down: a run that hits the
    cap is reported as "out of memory at the cap";
(b) polars lazy: ``scan_parquet``/``scan_csv`` + ``group_by`` collected with
    the streaming engine, from the separate venv ``.venv-polars``
    (``benchmarks/requirements-polars.lock``; see benchmarks/Makefile.polars);
(c) DuckDB by hand ("duckdb-sql"): the same read + ``GROUP BY`` in plain SQL,
    result as an Arrow table, as polars' stays a polars frame: no header
    mapping, no checks. It shows DuckDB's own speed beside polars', apart from
    what the loader contract costs;
(d) salesplan's DuckDB engine: ``scan_transactions`` + ``panel`` /
    ``rfm_table``, which also maps headers, parses and validates every column
    and fills the load report (the full loader contract), and returns pandas
    frames, with ``memory_limit="3GB"``.

Peak memory is the child's peak resident set size (``VmHWM``); CPU time is the child's
user + system time over all its threads, which a busy machine changes much less than
the wall time.
Results go to benchmarks/results/ingest.json and ingest.txt.

Run: ``python benchmarks/bench_ingest.py [--sizes 10000000 50000000] [--dir /tmp/...]``
(the generated files are deleted at the end unless ``--keep``; files already in ``--dir``
are used as they are, so keep them to compare runs on the same lines). polars runs from
``.venv-polars`` of this checkout, or from ``--polars-python`` / ``SALESPLAN_POLARS_PYTHON``.

A subset, e.g. DuckDB against polars at 10 million lines on a busy machine:
``python benchmarks/bench_ingest.py --rows 10000000 --contenders duckdb,polars --repeat 5
--out /tmp/ingest-10m``: lists take commas or spaces; ``--repeat`` runs the contenders in
turn (A, B, A, B...) so that a change of load hits them alike, and reports the median
of the runs (each run is kept in the .json). Results already in the ``--out`` file are
kept and not run again, unless ``--rerun``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# The polars venv of this checkout; SALESPLAN_POLARS_PYTHON (or --polars-python) names another
# one, e.g. the main checkout's when running from a second worktree.
POLARS_PY = Path(os.environ.get("SALESPLAN_POLARS_PYTHON", ROOT / ".venv-polars" / "bin" / "python"))
TASKS = ("panel", "rfm", "copy")
CONTENDERS = ("pandas", "polars", "duckdb-sql", "duckdb")
GIB = 2**30


# --------------------------------------------------------------------------- children


_IMPORT_SECONDS = {}


def _timed_import(name: str):
    import importlib

    t0 = time.perf_counter()
    module = importlib.import_module(name)
    _IMPORT_SECONDS[name] = time.perf_counter() - t0
    return module


def _copy_path(path: str, contender: str) -> str:
    """Where the copy task writes: beside the source, one file per contender (removed by the parent)."""
    return f"{path}.{contender}.copy.parquet"


def _child_pandas(task: str, path: str) -> int:
    pd = _timed_import("pandas")

    csv = path.endswith(".csv")
    if task == "copy":
        df = pd.read_csv(path, parse_dates=["order_date"]) if csv else pd.read_parquet(path)
        df.to_parquet(_copy_path(path, "pandas"), index=False)
        return len(df)
    cols = ["order_date", "region", "category", "revenue"] if task == "panel" else \
        ["order_date", "customer_id", "revenue"]
    if csv:
        df = pd.read_csv(path, usecols=cols, parse_dates=["order_date"])
    else:
        df = pd.read_parquet(path, columns=cols)
        df["order_date"] = pd.to_datetime(df["order_date"])
    if task == "panel":
        df["month"] = df["order_date"].dt.to_period("M").dt.start_time
        out = df.groupby(["month", "region", "category"], as_index=False)["revenue"].sum()
    else:
        df["day"] = df["order_date"].dt.normalize()
        out = df.groupby("customer_id").agg(first=("day", "min"), last=("day", "max"),
                                            frequency=("day", "nunique"), monetary=("revenue", "sum"))
    return len(out)


def _child_polars(task: str, path: str) -> int:
    pl = _timed_import("polars")

    if path.endswith(".csv"):
        lf = pl.scan_csv(path, try_parse_dates=True, schema_overrides={"customer_id": pl.String})
    else:
        lf = pl.scan_parquet(path)
    if task == "copy":
        out = _copy_path(path, "polars")
        lf.sink_parquet(out)
        return pl.scan_parquet(out).select(pl.len()).collect().item()
    if task == "panel":
        q = (lf.with_columns(pl.col("order_date").dt.truncate("1mo").alias("month"))
             .group_by(["month", "region", "category"]).agg(pl.col("revenue").sum()))
    else:
        q = lf.group_by("customer_id").agg(
            pl.col("order_date").min().alias("first"), pl.col("order_date").max().alias("last"),
            pl.col("order_date").n_unique().alias("frequency"), pl.col("revenue").sum().alias("monetary"))
    return q.collect(engine="streaming").height


def _child_duckdb_sql(task: str, path: str) -> int:
    duckdb = _timed_import("duckdb")

    con = duckdb.connect()
    con.execute("SET memory_limit = '3GB'")
    src = f"read_csv('{path}')" if path.endswith(".csv") else f"read_parquet('{path}')"
    if task == "copy":
        out = _copy_path(path, "duckdb-sql")
        con.execute(f"COPY (SELECT * FROM {src}) TO '{out}' (FORMAT parquet)")
        return con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    if task == "panel":
        sql = (f"SELECT date_trunc('month', order_date) AS month, region, category, sum(revenue) AS revenue "
               f"FROM {src} GROUP BY ALL")
    else:
        sql = (f"SELECT customer_id, min(order_date) AS first, max(order_date) AS last, "
               f"count(DISTINCT order_date) AS frequency, sum(revenue) AS monetary FROM {src} GROUP BY 1")
    return con.sql(sql).to_arrow_table().num_rows


def _child_duckdb(task: str, path: str) -> int:
    engine = _timed_import("salesplan.engine")

    scan = engine.scan_transactions(path, memory_limit="3GB")
    if task == "copy":
        return engine.to_parquet(scan, _copy_path(path, "duckdb")).rows
    if task == "panel":
        out = engine.panel(scan, by=["region", "category"])
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = engine.rfm_table(scan)
    return len(out)


def child_main(contender: str, task: str, path: str, cap_gib: float) -> None:
    if cap_gib:
        cap = int(cap_gib * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    t0 = time.perf_counter()
    try:
        n = {"pandas": _child_pandas, "polars": _child_polars, "duckdb-sql": _child_duckdb_sql,
             "duckdb": _child_duckdb}[contender](task, path)
        status = "ok"
    except MemoryError:
        n, status = 0, "oom"
    seconds = time.perf_counter() - t0
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent that forked.
    peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    print(json.dumps({"status": status, "seconds": seconds, "peak_bytes": peak, "rows_out": n,
                      "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "load_average": os.getloadavg()[0], "import_seconds": sum(_IMPORT_SECONDS.values())}))


# --------------------------------------------------------------------------- parent


def run_one(contender: str, task: str, path: Path, cap_gib: float, timeout: float) -> dict:
    python = str(POLARS_PY) if contender == "polars" else sys.executable
    if contender == "polars" and not POLARS_PY.exists():
        return {"status": "skipped (no .venv-polars; see benchmarks/Makefile.polars)"}
    cmd = [python, str(Path(__file__).resolve()), "--child", contender, task, str(path),
           "--cap-gib", str(cap_gib if contender == "pandas" else 0)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout after {timeout:.0f} s", "seconds": None, "peak_bytes": None}
    wall = time.perf_counter() - t0
    Path(_copy_path(str(path), contender)).unlink(missing_ok=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines:
        out = json.loads(lines[-1])
        out["wall_with_start"] = wall
        if out["status"] == "oom":
            out["status"] = f"out of memory at the {cap_gib:g} GiB cap"
        return out
    err = proc.stderr.strip().splitlines()
    text = err[-1] if err else f"exit {proc.returncode}"
    if contender == "pandas" and ("MemoryError" in proc.stderr or "bad_alloc" in proc.stderr
                                  or "Unable to allocate" in proc.stderr or proc.returncode < 0):
        return {"status": f"out of memory at the {cap_gib:g} GiB cap", "seconds": None, "peak_bytes": None,
                "detail": text[:200]}
    return {"status": f"failed: {text[:200]}", "seconds": None, "peak_bytes": None}


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x]


def _words(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the lower middle one of an even count), with every run's time."""
    ok = sorted((r for r in runs if r.get("seconds") is not None), key=lambda r: r["seconds"])
    if not ok:
        return dict(runs[-1])
    out = dict(ok[(len(ok) - 1) // 2])
    if len(runs) > 1:
        out["runs_seconds"] = [r.get("seconds") for r in runs]
        out["status"] = out["status"] + f" (median of {len(ok)})" if len(ok) == len(runs) else \
            out["status"] + f" (median of {len(ok)} runs that completed, of {len(runs)})"
    return out


def _fmt_s(x, imports=None):
    if x is None:
        return "-"
    return f"{x:,.1f} s" + (f" ({imports:.1f} s imports)" if imports is not None else "")


def _fmt_m(x):
    return "-" if x is None else f"{x / GIB:,.2f} GiB"


def table(results: list[dict]) -> str:
    head = ("| lines | format | task | contender | status | wall time | CPU time | peak RSS | "
            "engine's speed vs this row | this row's speed vs polars | load avg |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    index = {(r["rows"], r["format"], r["task"], r["contender"]): r for r in results}

    def speed(slow: dict, fast: dict) -> str:
        """How many times faster ``fast`` ran than ``slow`` (below 1: slower)."""
        if not (slow.get("seconds") and fast.get("seconds")):
            return "-"
        ratio = slow["seconds"] / fast["seconds"]
        return f"{ratio:.2f}x" + (" (faster)" if ratio >= 1 else " (slower)")

    for r in results:
        key = (r["rows"], r["format"], r["task"])
        duck, polars = index.get(key + ("duckdb",), {}), index.get(key + ("polars",), {})
        engine_vs = speed(r, duck) if r["contender"] != "duckdb" else "-"
        vs_polars = speed(polars, r) if r["contender"] in ("duckdb-sql", "duckdb") else "-"
        load = "-" if r.get("load_average") is None else f"{r['load_average']:.1f}"
        lines.append(f"| {r['rows']:,} | {r['format']} | {r['task']} | {r['contender']} | {r['status']} | "
                     f"{_fmt_s(r.get('seconds'), r.get('import_seconds'))} | {_fmt_s(r.get('cpu_seconds'))} | "
                     f"{_fmt_m(r.get('peak_bytes'))} | {engine_vs} | {vs_polars} | {load} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("CONTENDER", "TASK", "PATH"))
    parser.add_argument("--cap-gib", type=float, default=12.0)
    parser.add_argument("--sizes", "--rows", type=_ints, nargs="+", default=[[10_000_000, 50_000_000]])
    parser.add_argument("--formats", type=_words, nargs="+", default=[["parquet", "csv"]])
    parser.add_argument("--tasks", type=_words, nargs="+", default=[list(TASKS)])
    parser.add_argument("--contenders", type=_words, nargs="+", default=[list(CONTENDERS)])
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender, interleaved; the median is reported")
    parser.add_argument("--rerun", action="store_true", help="run again what the --out file already holds")
    parser.add_argument("--dir", default="/tmp/salesplan-bench-ingest")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "ingest"))
    parser.add_argument("--polars-python", default=None,
                        help="the python of a venv with polars (default: .venv-polars of this checkout)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the .txt table from the .json")
    args = parser.parse_args(argv)
    for name in ("sizes", "formats", "tasks", "contenders"):
        setattr(args, name, [x for part in getattr(args, name) for x in part])
    unknown = sorted(set(args.contenders) - set(CONTENDERS)) + sorted(set(args.tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown contender or task {unknown}; contenders are {list(CONTENDERS)}, tasks {list(TASKS)}")
    if args.polars_python:
        global POLARS_PY
        POLARS_PY = Path(args.polars_python)
    if args.child:
        child_main(*args.child, cap_gib=args.cap_gib)
        return 0
    if args.report_only:
        out_json = Path(args.out).with_suffix(".json")
        write_report(json.loads(out_json.read_text())["results"], args)
        return 0
    sys.path.insert(0, str(ROOT))
    from salesplan.datasets import write_transactions

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    out_json = Path(args.out).with_suffix(".json")
    results = json.loads(out_json.read_text())["results"] if out_json.exists() else []
    done = {(r["rows"], r["format"], r["task"], r["contender"]) for r in results}
    try:
        for rows in args.sizes:
            for fmt in args.formats:
                path = folder / f"tx_{rows}.{fmt}"
                if not path.exists():
                    t0 = time.perf_counter()
                    write_transactions(path, rows=rows, format=fmt, seed=1)
                    print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s",
                          flush=True)
                for task in args.tasks:
                    todo = [c for c in args.contenders if args.rerun or (rows, fmt, task, c) not in done]
                    runs: dict[str, list[dict]] = {c: [] for c in todo}
                    for _ in range(max(args.repeat, 1)):
                        for contender in todo:  # in turn, so that the load hits every contender alike
                            r = run_one(contender, task, path, args.cap_gib, args.timeout)
                            runs[contender].append(r)
                            print(json.dumps(dict(r, rows=rows, format=fmt, task=task, contender=contender)),
                                  flush=True)
                    for contender in todo:
                        key = (rows, fmt, task, contender)
                        r = _median_run(runs[contender])
                        r.update(rows=rows, format=fmt, task=task, contender=contender,
                                 file_bytes=path.stat().st_size)
                        results = [x for x in results if (x["rows"], x["format"], x["task"], x["contender"]) != key]
                        results.append(r)
                        out_json.parent.mkdir(parents=True, exist_ok=True)
                        out_json.write_text(json.dumps({"results": results}, indent=1))
                if not args.keep:
                    path.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    write_report(results, args)
    return 0


def write_report(results: list[dict], args) -> None:
    results.sort(key=lambda r: (r["rows"], r["format"] != "parquet", r["task"], CONTENDERS.index(r["contender"])))
    Path(args.out).with_suffix(".json").write_text(json.dumps({"results": results, "cap_gib": args.cap_gib,
                                                               "cpus": os.cpu_count()}, indent=1))
    text = ("Ingestion + aggregation, end to end (imports included), one subprocess per run; "
            f"{os.cpu_count()} cores shared with other jobs (load average {os.getloadavg()[0]:.1f} when written); "
            f"pandas capped at {args.cap_gib:g} GiB of address space; DuckDB memory_limit 3GB\n\n"
            + table(results) + "\n")
    Path(args.out).with_suffix(".txt").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
