"""Loading a whole transactions file: the loader's pandas path against its DuckDB path.

``salesplan.io.load_transactions`` loads through DuckDB by default (``engine="auto"``) from
``salesplan.engine.AUTO_MIN_BYTES`` on; this measures where that threshold should be. For
generated files of 100,000 to 10 million lines, in CSV and Parquet, each run in a fresh
process (imports included):

* ``pandas``: ``load_transactions(path, engine="pandas")``;
* ``duckdb``: ``load_transactions(path, engine="duckdb")``;
* ``read``: plain ``pandas.read_csv`` / ``read_parquet`` of the file, no checks (the floor a
  user without the workbench would start from).

All three return one pandas frame of every line. Wall time and peak resident memory
(``VmHWM``) of each run, the median of ``--repeat`` runs taken in turn.
Results go to benchmarks/results/load.json and load.txt.

Run: ``python benchmarks/bench_load.py [--rows 100000,300000,1000000,3000000,10000000]
[--repeat 3] [--dir /tmp/...] [--keep]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONTENDERS = ("read", "pandas", "duckdb")
GIB = 2**30


def child(contender: str, path: str) -> None:
    t0 = time.perf_counter()
    import warnings

    warnings.simplefilter("ignore")
    if contender == "read":
        import pandas as pd

        frame = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
    else:
        from salesplan import io

        frame = io.load_transactions(path, engine=contender)
    seconds = time.perf_counter() - t0
    peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "rows": len(frame)}))


def run(contender: str, path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", contender, str(path)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"{contender} on {path} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(lines[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "PATH"))
    parser.add_argument("--rows", default="100000,300000,1000000,3000000,10000000")
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/tmp/salesplan-bench-load")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--out", default=str(RESULTS / "load"))
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    sys.path.insert(0, str(ROOT))
    from salesplan.datasets import write_transactions
    from salesplan.engine import AUTO_MIN_BYTES

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in [int(r.replace("_", "")) for r in args.rows.split(",")]:
        for fmt in args.formats.split(","):
            path = folder / f"tx_{rows}.{fmt}"
            if not path.exists():
                write_transactions(path, rows=rows, format=fmt, seed=1)
            runs: dict[str, list[dict]] = {c: [] for c in CONTENDERS}
            for _ in range(args.repeat):
                for c in CONTENDERS:  # in turn, so that a change of load hits every contender alike
                    runs[c].append(run(c, path))
            row = {"rows": rows, "format": fmt, "file_bytes": path.stat().st_size,
                   "auto_uses_duckdb": path.stat().st_size >= AUTO_MIN_BYTES[fmt]}
            for c, rs in runs.items():
                row[c] = {"seconds": statistics.median(r["seconds"] for r in rs),
                          "peak_bytes": statistics.median(r["peak_bytes"] for r in rs),
                          "runs_seconds": [r["seconds"] for r in rs]}
            results.append(row)
            print(json.dumps(row), flush=True)
            if not args.keep:
                path.unlink()
    Path(args.out).with_suffix(".json").write_text(json.dumps({"results": results, "cpus": os.cpu_count()},
                                                              indent=1))
    lines = [f"Loading a whole transactions file into one pandas frame, end to end (imports included), "
             f"median of {args.repeat} runs each in turn; {os.cpu_count()} cores, load average "
             f"{os.getloadavg()[0]:.1f} when written. AUTO_MIN_BYTES = {AUTO_MIN_BYTES}.", "",
             "| lines | format | file | plain read (no checks) | loader, pandas path | loader, DuckDB path "
             "| DuckDB path vs pandas path | auto picks |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        cell = {c: f"{r[c]['seconds']:,.2f} s, {r[c]['peak_bytes'] / GIB:,.2f} GiB" for c in CONTENDERS}
        ratio = r["pandas"]["seconds"] / r["duckdb"]["seconds"]
        lines.append(f"| {r['rows']:,} | {r['format']} | {r['file_bytes'] / 1e6:,.1f} MB | {cell['read']} | "
                     f"{cell['pandas']} | {cell['duckdb']} | {ratio:.2f}x {'faster' if ratio >= 1 else 'slower'} | "
                     f"{'DuckDB' if r['auto_uses_duckdb'] else 'pandas'} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).with_suffix(".txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
