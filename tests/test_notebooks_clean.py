"""Project rules for notebooks/*.ipynb: stored clean, parametrised, thin, on the python3 kernel."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# A definition starts a line (after indentation); `class=` inside an HTML string is fine.
_DEFINITION = re.compile(r"^\s*(?:async\s+def|def|class)\s+\w", re.MULTILINE)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb; the workbench's apps live there"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    dirty = [
        i for i, c in enumerate(_cells(path))
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} carry outputs or execution counts. Clear them before committing "
        f"(e.g. `jupyter nbconvert --clear-output --inplace notebooks/{path.name}`)."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_has_a_parameters_cell(path):
    tagged = [i for i, c in enumerate(_cells(path)) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, (
        f"{path.name}: expected one cell tagged 'parameters' (the inputs a user may change), found {len(tagged)} "
        f"at {tagged}."
    )
    assert _cells(path)[tagged[0]]["cell_type"] == "code", f"{path.name}: the parameters cell must be a code cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_definitions_in_code_cells(path):
    found = [
        (i, m.group(0).strip())
        for i, c in enumerate(_cells(path)) if c["cell_type"] == "code"
        for m in _DEFINITION.finditer(_source(c))
    ]
    assert not found, (
        f"{path.name}: code cells define functions or classes {found}; move them into the salesplan package "
        "and import them (notebooks stay thin)."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kernel_is_python3(path):
    spec = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("kernelspec", {})
    assert spec.get("name") == "python3", f"{path.name}: kernelspec name is {spec.get('name')!r}, must be 'python3'"


def test_definition_pattern():
    assert _DEFINITION.search("x = 1\ndef f():\n    pass")
    assert _DEFINITION.search("    class Foo:")
    assert not _DEFINITION.search('html = \'<div class="kpi">\'\nundefined = 1')
