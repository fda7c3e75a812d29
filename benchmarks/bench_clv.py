"""Benchmark: salesplan.segments.clv against the ``lifetimes`` package on CDNOW.

Fits BG/NBD and Gamma-Gamma to the full CDNOW master data (23,570 customers,
39-week calibration to 1997-09-30, weeks as days / 7) and times, side by side:

- the summary adapter vs ``lifetimes.utils.summary_data_from_transaction_data``;
- ``BetaGeo().fit`` vs ``lifetimes.BetaGeoFitter().fit``;
- ``ModifiedBetaGeo().fit`` vs ``lifetimes.ModifiedBetaGeoFitter().fit``;
- ``ParetoNBD().fit`` vs ``lifetimes.ParetoNBDFitter().fit``;
- ``GammaGamma().fit`` vs ``lifetimes.GammaGammaFitter().fit``.

Both sides fit the same summary (ours, written to a temporary CSV) and both
compute standard errors during the fit. Each timing is the median of several
runs. Goals: BG/NBD fit <= 0.05 s and >= 3x faster than lifetimes.

lifetimes 0.11.3 is run in a subprocess with the first interpreter that can
import it: ``$SALESPLAN_LIFETIMES_PYTHON``, this interpreter, or
``.venv-bench/bin/python``, which can be made with::

    python3.11 -m venv .venv-bench
    .venv-bench/bin/pip install lifetimes==0.11.3 'pandas<2.2' 'numpy<2' 'scipy<1.14'

Without any, the lifetimes column is skipped and the reason printed.

The Pareto/NBD fits are slow in lifetimes (tens of seconds), so they are timed
``--pareto-repeats`` times (default 3) on both sides.

Run: ``.venv/bin/python benchmarks/bench_clv.py [--repeats 7]``; writes
``benchmarks/results/clv.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from salesplan.segments.clv import (  # noqa: E402
    BetaGeo,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    summary_from_transactions,
)

DATA = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
RESULTS = ROOT / "benchmarks" / "results" / "clv.json"
CALIBRATION_END = "1997-09-30"

# Runs inside the lifetimes interpreter; prints one JSON line.
LIFETIMES_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time, warnings
    warnings.simplefilter("ignore")
    import numpy as np, pandas as pd
    import lifetimes
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
    summary_csv, tx_csv, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pareto_repeats = int(sys.argv[4])
    s = pd.read_csv(summary_csv)
    out = {"versions": {"lifetimes": lifetimes.__version__, "pandas": pd.__version__,
                        "numpy": np.__version__, "python": sys.version.split()[0]}}

    def timed(fn):
        times, cpu, result = [], [], None
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            result = fn()
            times.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
        return {"median_s": statistics.median(times), "cpu_median_s": statistics.median(cpu),
                "runs_s": times}, result

    out["bgnbd"], bg = timed(lambda: BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"]))
    out["bgnbd"]["params"] = bg.params_.to_dict()
    out["mbgnbd"], mbg = timed(lambda: ModifiedBetaGeoFitter().fit(s["frequency"], s["recency"], s["T"]))
    out["mbgnbd"]["params"] = mbg.params_.to_dict()
    repeats, full = pareto_repeats, repeats
    out["pareto"], pnbd = timed(lambda: ParetoNBDFitter().fit(s["frequency"], s["recency"], s["T"]))
    repeats = full
    out["pareto"]["params"] = pnbd.params_.to_dict()
    rep = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    out["gamma_gamma"], gg = timed(lambda: GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"]))
    params = gg.params_.to_dict()
    params["gamma"] = params.pop("v")
    out["gamma_gamma"]["params"] = params
    try:
        from lifetimes.utils import summary_data_from_transaction_data
        tx = pd.read_csv(tx_csv, parse_dates=["order_date"])
        out["summary"], _ = timed(lambda: summary_data_from_transaction_data(
            tx, "customer_id", "order_date", monetary_value_col="revenue",
            observation_period_end="%s", freq="D", freq_multiplier=7))
    except Exception as exc:
        out["summary"] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))
    """
    % CALIBRATION_END
)


def load_master() -> pd.DataFrame:
    tx = pd.read_csv(DATA, sep=r"\s+", dtype={"customer_id": str, "date": str})
    return pd.DataFrame(
        {
            "customer_id": tx["customer_id"],
            "order_date": pd.to_datetime(tx["date"], format="%Y%m%d"),
            "revenue": tx["dollar_value"].astype(float),
        }
    )


def timed(fn, repeats: int):
    """Median wall and CPU (process) time of ``repeats`` runs, and the last result.

    CPU time is reported too because on a shared machine the wall time mostly
    measures the other processes.
    """
    times, cpu, result = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    stats = {"median_s": float(np.median(times)), "cpu_median_s": float(np.median(cpu)), "runs_s": times}
    return stats, result


def find_lifetimes_python() -> tuple[str | None, str]:
    """An interpreter that can import lifetimes, and how it was found (or why none)."""
    candidates = []
    if os.environ.get("SALESPLAN_LIFETIMES_PYTHON"):
        candidates.append(("$SALESPLAN_LIFETIMES_PYTHON", os.environ["SALESPLAN_LIFETIMES_PYTHON"]))
    candidates.append(("this interpreter", sys.executable))
    candidates.append((".venv-bench", str(ROOT / ".venv-bench" / "bin" / "python")))
    tried = []
    for label, exe in candidates:
        if not Path(exe).exists():
            tried.append(f"{label} ({exe}) does not exist")
            continue
        probe = subprocess.run(
            [exe, "-c", "import lifetimes"], capture_output=True, text=True, timeout=120
        )
        if probe.returncode == 0:
            return exe, label
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        tried.append(f"{label} cannot import lifetimes ({last})")
    return None, "; ".join(tried)


def run_lifetimes(
    exe: str, summary: pd.DataFrame, tx: pd.DataFrame, repeats: int, pareto_repeats: int
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        summary_csv, tx_csv = Path(tmp) / "summary.csv", Path(tmp) / "tx.csv"
        # Full float precision so both sides fit the very same numbers.
        summary.to_csv(summary_csv, index=False, float_format="%.17g")
        tx.to_csv(tx_csv, index=False)
        proc = subprocess.run(
            [exe, "-c", LIFETIMES_SCRIPT, str(summary_csv), str(tx_csv), str(repeats),
             str(pareto_repeats)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pareto-repeats", type=int, default=3)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (the CDNOW reference data lives in ../shared/data)")
        return 0

    tx = load_master()
    adapter, summary = timed(
        lambda: summary_from_transactions(
            tx, calibration_end=CALIBRATION_END, freq="D", freq_multiplier=7
        ),
        args.repeats,
    )
    BetaGeo().fit(summary)  # warm-up: imports and first-call dispatch
    bg_stats, bg = timed(lambda: BetaGeo().fit(summary), args.repeats)
    mbg_stats, mbg = timed(lambda: ModifiedBetaGeo().fit(summary), args.repeats)
    pareto_stats, pareto = timed(lambda: ParetoNBD().fit(summary), args.pareto_repeats)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gg_stats, gg = timed(lambda: GammaGamma().fit(summary), args.repeats)
    notes = sorted({str(w.message) for w in caught})

    results = {
        "data": "CDNOW master, 23,570 customers, calibration to 1997-09-30, weeks = days / 7",
        "n_customers": int(len(summary)),
        "n_repeat_customers": int((summary["frequency"] > 0).sum()),
        "repeats": args.repeats,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "salesplan": {
            "summary": adapter,
            "bgnbd": {**bg_stats, "params": bg.params_.to_dict(), "loglik": bg.loglik_,
                      "n_iter": bg.n_iter_},
            "mbgnbd": {**mbg_stats, "params": mbg.params_.to_dict(), "loglik": mbg.loglik_,
                       "n_iter": mbg.n_iter_},
            "pareto": {**pareto_stats, "params": pareto.params_.to_dict(), "loglik": pareto.loglik_,
                       "n_iter": pareto.n_iter_},
            "gamma_gamma": {**gg_stats, "params": gg.params_.to_dict(), "loglik": gg.loglik_,
                            "n_iter": gg.n_iter_},
        },
        "goals": {"bgnbd_max_s": 0.05, "min_speedup": 3.0},
    }

    exe, how = find_lifetimes_python()
    lifetimes = None
    if exe is None:
        print(f"lifetimes column skipped: {how}")
        results["lifetimes"] = {"skipped": how}
    else:
        try:
            lifetimes = run_lifetimes(exe, summary, tx, args.repeats, args.pareto_repeats)
            lifetimes["interpreter"] = f"{exe} ({how})"
            results["lifetimes"] = lifetimes
        except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            print(f"lifetimes column skipped: the run with {exe} failed: {exc}")
            results["lifetimes"] = {"skipped": f"run failed: {exc}"}
            lifetimes = None

    rows = []
    for key, label in [("summary", "summary adapter"), ("bgnbd", "BG/NBD fit"),
                       ("mbgnbd", "MBG/NBD fit"), ("pareto", "Pareto/NBD fit"),
                       ("gamma_gamma", "Gamma-Gamma fit")]:
        ours = results["salesplan"][key]
        theirs = (lifetimes or {}).get(key, {})
        row = {"task": label, "salesplan_s": ours["median_s"], "lifetimes_s": theirs.get("median_s"),
               "salesplan_cpu_s": ours["cpu_median_s"], "lifetimes_cpu_s": theirs.get("cpu_median_s")}
        row["speedup"] = row["lifetimes_s"] / row["salesplan_s"] if row["lifetimes_s"] else None
        row["cpu_speedup"] = (
            row["lifetimes_cpu_s"] / row["salesplan_cpu_s"] if row["lifetimes_cpu_s"] else None
        )
        rows.append(row)
        if row["speedup"] is not None:
            ours["speedup_vs_lifetimes"] = row["speedup"]
            ours["cpu_speedup_vs_lifetimes"] = row["cpu_speedup"]
        if "params" in theirs:
            ours["max_param_diff_vs_lifetimes"] = max(
                abs(ours["params"][k] - v) for k, v in theirs["params"].items()
            )
    results["table"] = rows

    def fmt(value, spec):
        return format(value, spec) if value else "-"

    print(f"CDNOW master: {results['n_customers']} customers, "
          f"{results['n_repeat_customers']} repeat buyers; median of {args.repeats} runs "
          f"(1-min load average {results['machine']['load_average_1min']:.2f} on "
          f"{results['machine']['cpus']} cpus)")
    print(f"{'':<18}{'--------- wall time (s) ---------':>36}{'--------- CPU time (s) ---------':>36}")
    print(f"{'task':<18}{'salesplan':>12}{'lifetimes':>12}{'speedup':>12}"
          f"{'salesplan':>12}{'lifetimes':>12}{'speedup':>12}")
    for row in rows:
        print(f"{row['task']:<18}{row['salesplan_s']:>12.4f}{fmt(row['lifetimes_s'], '.4f'):>12}"
              f"{fmt(row['speedup'], '.1f') + 'x':>12}{row['salesplan_cpu_s']:>12.4f}"
              f"{fmt(row['lifetimes_cpu_s'], '.4f'):>12}{fmt(row['cpu_speedup'], '.1f') + 'x':>12}")
    print("BG/NBD " + ", ".join(f"{k}={v:.4f}" for k, v in bg.params_.items())
          + f", loglik={bg.loglik_:.2f}")
    print("MBG/NBD " + ", ".join(f"{k}={v:.4f}" for k, v in mbg.params_.items())
          + f", loglik={mbg.loglik_:.2f}")
    print("Pareto/NBD " + ", ".join(f"{k}={v:.4f}" for k, v in pareto.params_.items())
          + f", loglik={pareto.loglik_:.2f}")
    print("Gamma-Gamma " + ", ".join(f"{k}={v:.4f}" for k, v in gg.params_.items())
          + f", loglik={gg.loglik_:.2f}")
    for key in ("bgnbd", "mbgnbd", "pareto", "gamma_gamma"):
        diff = results["salesplan"][key].get("max_param_diff_vs_lifetimes")
        if diff is not None:
            print(f"{key}: largest parameter difference vs lifetimes {diff:.2e}")
    for note in notes:
        print(f"note: {note}")
    results["notes"] = notes
    if lifetimes and "error" in lifetimes.get("summary", {}):
        print(f"lifetimes summary adapter failed: {lifetimes['summary']['error']}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
