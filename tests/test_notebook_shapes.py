"""Every notebook on every data shape a real export takes, with no error cell.

Each shape of ``tests/shapes.py`` (three columns only; no channel or rep; Chinese
headers; guest lines; 14 months; a folder without a pipeline; a CRM export) is
written to a temporary folder, and every notebook is executed on it the way a
user runs it: only the data changes (``SALESPLAN_DATA``, which ``data_path =
None`` follows). The runs go two at a time, each in a kernel of its own. For each
shape, the figures the market notebook prints (lines, revenue, customers) are
compared with the shape's facts, computed by hand when the files were written.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import shapes

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHAPE_NAMES = list(shapes.SHAPES)

pytestmark = pytest.mark.timeout(1500)


def _execute(notebook: Path, data_path: Path, out_dir: Path) -> dict:
    """Run ``notebook`` on ``data_path`` in a fresh kernel; return its cells' errors and text."""
    import nbformat
    from nbclient import NotebookClient

    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SALESPLAN_DATA=str(data_path), PYTHONWARNINGS="ignore")
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(notebook.parent)}})
    try:
        client.execute(env=env)
    except Exception as exc:  # noqa: BLE001 - a kernel that died or timed out is this pair's failure
        return {"errors": [f"the kernel failed: {type(exc).__name__}: {str(exc)[-2000:]}"], "text": ""}
    nbformat.write(nb, out_dir / notebook.name)  # kept for reading when a test fails
    errors, text = [], []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue', '')[:500]}")
            elif out.get("output_type") == "stream" and out.get("name") == "stdout":
                text.append("".join(out.get("text", "")))
            else:
                data = out.get("data", {})
                text.append("".join(data.get("text/markdown", "")) + "".join(data.get("text/plain", "")))
    return {"errors": errors, "text": "\n".join(text)}


#: Shapes that hold another shape's data in another container (the Chinese workbook is the Chinese
#: CSV as an .xlsx with a title row): the loader is what differs, so only the market notebook, whose
#: figures are checked against the facts, runs on them.
SAME_DATA_AS = {"chinese_xlsx": "chinese_csv"}
MARKET = "01_market_analysis.ipynb"


def _pairs() -> list[tuple[Path, str]]:
    return [(nb, name) for name in SHAPE_NAMES for nb in NOTEBOOKS
            if name not in SAME_DATA_AS or nb.name == MARKET]


@pytest.fixture(scope="session")
def executed(shape_paths, tmp_path_factory):
    """(notebook name, shape) -> the run's errors and text, every pair run once."""
    out = tmp_path_factory.mktemp("executed")
    jobs = _pairs()
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda job: _execute(job[0], shape_paths[job[1]], out / job[1]), jobs)
        return {(nb.name, name): run for (nb, name), run in zip(jobs, runs)}


@pytest.mark.parametrize(("notebook", "shape"), _pairs(), ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_notebook_runs_on_shape(executed, notebook, shape):
    run = executed[(notebook.name, shape)]
    assert not run["errors"], f"notebooks/{notebook.name} on shape {shape!r}:\n" + "\n".join(run["errors"])
    assert "Traceback" not in run["text"]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_market_notebook_prints_the_shapes_figures(executed, shape):
    facts = shapes.SHAPES[shape].facts
    text = executed[("01_market_analysis.ipynb", shape)]["text"]
    found = re.search(r"([\d,]+) order lines, revenue (-?[\d,]+), ([\d,]+) customers", text)
    assert found, f"the market notebook did not print its summary line on {shape!r}:\n{text[:1500]}"
    lines, revenue, customers = (_number(g) for g in found.groups())
    assert lines == facts["lines"]
    assert revenue == pytest.approx(facts["total_revenue"], abs=1.0)
    assert customers == facts["n_customers"]
