"""Tests for salesplan.engine.funnel: the funnel counted in DuckDB equals salesplan.pipeline.funnel.

On the demo company (files and frames), on a hand-made history with every
oddity the pipeline module repairs (skipped stages, repeated and out-of-order
entries, deals without history, history of unknown deals, close dates missing
or before the last stage), and on seeded random histories.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

duckdb = pytest.importorskip("duckdb")

from salesplan import engine  # noqa: E402
from salesplan.datasets import DEMO_DIR  # noqa: E402
from salesplan.errors import SalesplanDataError, SalesplanDataWarning  # noqa: E402
from salesplan.pipeline import Process, funnel  # noqa: E402

OPPS = DEMO_DIR / "opportunities.csv"
HIST = DEMO_DIR / "stage_history.csv"


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SalesplanDataWarning)
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def demo():
    return pd.read_csv(OPPS), pd.read_csv(HIST)


@pytest.mark.parametrize("by, period, cohort", [
    (None, None, "entry"), (None, "M", "entry"), (None, "Q", "created"), ("rep_id", "W", "entry"),
    ("rep_id", "M", "created"), (["rep_id", "status"], None, "entry"),
])
def test_demo_files_give_the_pandas_funnel(demo, by, period, cohort):
    ref = funnel(*demo, by=by, period=period, cohort=cohort)
    got = engine.funnel(OPPS, HIST, by=by, period=period, cohort=cohort)
    pdt.assert_frame_equal(got, ref)


def test_demo_frames_and_a_duckdb_table_give_the_same(demo):
    ref = funnel(*demo, period="Q")
    pdt.assert_frame_equal(engine.funnel(*demo, period="Q"), ref)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE opps AS SELECT * FROM read_csv('{OPPS}')")
    con.execute(f"CREATE TABLE hist AS SELECT * FROM read_csv('{HIST}')")
    pdt.assert_frame_equal(engine.funnel("opps", "SELECT * FROM hist", period="Q", con=con), ref)


def _messy():
    d = pd.to_datetime
    opps = pd.DataFrame({
        "opportunity_id": ["a", "b", "c", "d", "e", "f", "g", "h", "i"],
        "stage": ["won", "lost", "proposal", "lost", "negotiation", "won", "lost", "prospecting", "contract"],
        "created_date": d(["2024-01-03", "2024-01-10", "2024-02-01", "2024-02-15", "2024-03-01", "2024-03-05",
                           "2024-03-20", "2024-04-02", "2024-04-10"]),
        "close_date": d(["2024-03-01", None, None, "2024-01-01", None, "2024-05-01", "2024-04-01", None, None]),
        "amount": [100.0, 50.0, np.nan, 10.0, 80.0, 30.0, 20.0, 5.0, 60.0],
        "rep_id": ["r1", "r1", "r2", "r2", "r1", "r2", "r1", "r2", "r1"],
    })
    hist = pd.DataFrame({
        "opportunity_id": ["a", "a", "a", "b", "b", "b", "c", "c", "c", "d", "e", "e", "e", "g", "g", "zz", "i"],
        "stage": ["prospecting", "proposal", "won",          # a skips stages
                  "prospecting", "prospecting", "lost",     # b repeats a stage, closes by history
                  "prospecting", "proposal", "needs_analysis",  # c out of order
                  "prospecting",                            # d closed before created
                  "first_contact", "negotiation", "prospecting",  # e later stage before earlier
                  "prospecting", "contract",                # g closed before its last stage
                  "prospecting",                            # zz: unknown deal
                  "contract"],                              # i: only a late stage
        "entered_at": d(["2024-01-03", "2024-02-01", "2024-03-01", "2024-01-10", "2024-01-12", "2024-02-20",
                         "2024-02-01", "2024-03-10", "2024-02-20", "2024-02-15", "2024-03-02", "2024-03-20",
                         "2024-04-05", "2024-03-20", "2024-04-15", "2024-01-01", "2024-05-01"]),
    })
    return opps, hist  # f and h have no history


@pytest.mark.parametrize("by, period, cohort", list(itertools.product([None, "rep_id"], [None, "M", "W"],
                                                                      ["entry", "created"])))
def test_every_repair_of_the_history_is_read_as_pipeline_reads_it(by, period, cohort):
    opps, hist = _messy()
    ref = _quiet(funnel, opps, hist, by=by, period=period, cohort=cohort)
    got = _quiet(engine.funnel, opps, hist, by=by, period=period, cohort=cohort)
    pdt.assert_frame_equal(got, ref)
    assert ref["entered"].sum() > 0


def test_without_history_and_without_status_column():
    opps, _ = _messy()
    ref = _quiet(funnel, opps, period="M")
    pdt.assert_frame_equal(_quiet(engine.funnel, opps, period="M"), ref)
    with pytest.warns(SalesplanDataWarning, match="no stage_history"):
        engine.funnel(opps)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_histories_give_the_pandas_funnel(seed):
    rng = np.random.default_rng(seed)
    process = Process()
    k = process.n_open
    n = 400
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 500, n), unit="D")
    final = rng.integers(0, k + 2, n)
    names = list(process.stages) + ["won", "lost"]
    opps = pd.DataFrame({"opportunity_id": [f"o{i}" for i in range(n)], "stage": [names[c] for c in final],
                         "created_date": created, "amount": rng.gamma(2, 100, n).round(2),
                         "team": rng.choice(["x", "y", "z"], n)})
    rows = []
    for i in range(n):
        if rng.random() < 0.1:
            continue  # no history
        top = min(final[i], k - 1) if final[i] < k else rng.integers(0, k)
        for s in range(top + 1):
            if rng.random() < 0.3 and s < top:
                continue  # skipped
            rows.append((f"o{i}", names[s], created[i] + pd.Timedelta(days=int(7 * s + rng.integers(-10, 10)))))
        if final[i] >= k:
            rows.append((f"o{i}", names[final[i]], created[i] + pd.Timedelta(days=int(7 * top + 20))))
    hist = pd.DataFrame(rows, columns=["opportunity_id", "stage", "entered_at"]).sample(frac=1.0, random_state=seed)
    for by, period, cohort in [(None, None, "entry"), ("team", "M", "entry"), ("team", "Q", "created")]:
        ref = _quiet(funnel, opps, hist, by=by, period=period, cohort=cohort)
        got = _quiet(engine.funnel, opps, hist, by=by, period=period, cohort=cohort)
        pdt.assert_frame_equal(got, ref)


def test_pipeline_funnel_on_files_goes_through_the_engine(demo):
    ref = funnel(*demo, by="rep_id", period="Q")
    pdt.assert_frame_equal(funnel(str(OPPS), HIST, by="rep_id", period="Q"), ref)
    with pytest.raises(Exception, match="reps"):
        funnel(OPPS, HIST, by="team", reps=pd.DataFrame({"rep_id": ["R01"], "team": ["t"]}))


def test_errors_name_what_is_wrong():
    opps, hist = _messy()
    with pytest.raises(SalesplanDataError, match=r"stage name\(s\) that are not in the process: 'qualif' \(1 rows\)"):
        engine.funnel(opps.assign(stage=["qualif"] + list(opps["stage"][1:])), hist)
    with pytest.raises(SalesplanDataError, match=r"repeats 1 id"):
        engine.funnel(opps.assign(opportunity_id=["a", "a"] + list(opps["opportunity_id"][2:])), hist)
    with pytest.raises(SalesplanDataError, match=r"amount'\] is negative in 1 row"):
        engine.funnel(opps.assign(amount=[-1.0] + list(opps["amount"][1:])), hist)
    with pytest.raises(SalesplanDataError, match=r"status'\] must be open, won or lost"):
        engine.funnel(opps.assign(status="maybe"), hist)
    with pytest.raises(SalesplanDataError, match=r"lacks column\(s\) \['created_date'\]"):
        engine.funnel(opps.drop(columns="created_date"), hist)
    with pytest.warns(SalesplanDataWarning, match="1 entr\\(ies\\) of opportunities that are not in"):
        engine.funnel(opps, hist)
