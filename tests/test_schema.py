"""The data model: its invariants, and docs/data-model.md kept in step with it."""

from __future__ import annotations

import doctest
import re

import pandas as pd
import pytest

from salesplan import schema
from salesplan.datasets import schema_markdown, update_data_model_docs
from salesplan.errors import SalesplanError
from salesplan.schema import (
    OPEN_STAGES,
    STAGES,
    STATUSES,
    TABLES,
    TARGET_LEVELS,
    get_schema,
    normalize_header,
)

ROW = re.compile(r"^\| `(?P<name>[a-z_]+)` \| (?P<kind>\w+) \| (?P<required>yes|no) \|")


@pytest.fixture(scope="module")
def doc(project_root) -> str:
    return (project_root / "docs" / "data-model.md").read_text(encoding="utf-8")


def _block(doc: str, table: str) -> str:
    m = re.search(
        rf"<!-- BEGIN columns: {table} .*?-->\n(?P<body>.*?)<!-- END columns: {table} -->", doc, re.S)
    assert m, f"docs/data-model.md has no generated column table for {table!r}"
    return m.group("body")


# --- schema basics ------------------------------------------------------------------

def test_normalize_header_doctests_run():
    result = doctest.testmod(schema)
    assert result.attempted >= 3
    assert result.failed == 0


@pytest.mark.parametrize("raw, folded", [
    ("Order Date", "orderdate"),
    ("ORDER-DATE", "orderdate"),
    ("order_date", "orderdate"),
    ("  客户 ID ", "客户id"),
    ("Ｃｕｓｔｏｍｅｒ（ＩＤ）", "customerid"),  # full-width forms fold too
    ("unit.price", "unitprice"),
])
def test_normalize_header_folds_spacing_case_and_punctuation(raw, folded):
    assert normalize_header(raw) == folded


@pytest.mark.parametrize("table", list(TABLES))
def test_aliases_are_unambiguous_within_a_table(table):
    owner: dict[str, str] = {}
    clashes = []
    for col in TABLES[table].columns:
        for header in (col.name, *col.aliases):
            key = normalize_header(header)
            if owner.setdefault(key, col.name) != col.name:
                clashes.append(f"{header!r} -> {owner[key]!r} and {col.name!r}")
    assert not clashes, f"{table}: headers that map to two columns: {clashes}"


@pytest.mark.parametrize("table", list(TABLES))
def test_table_definitions_are_consistent(table):
    t = TABLES[table]
    assert t.name == table
    assert len(set(t.names)) == len(t.names)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in t.names), "snake_case names"
    assert set(t.key) <= set(t.names)
    assert t.required, "every table needs at least one required column"
    assert t.required + t.optional == [c.name for c in sorted(t.columns, key=lambda c: not c.required)]
    assert all(c.description for c in t.columns)
    dtypes = t.dtypes()
    assert list(dtypes) == t.names
    # every dtype is one pandas understands
    for dtype in dtypes.values():
        pd.Series([], dtype=dtype)
    with pytest.raises(KeyError, match="columns"):
        t.column("no_such_column")


def test_stages_statuses_and_levels():
    assert STAGES[-2:] == ("won", "lost")
    assert OPEN_STAGES == STAGES[:-2] and OPEN_STAGES[0] == "prospecting"
    assert set(STATUSES) == {"open", "won", "lost"}
    assert {"company", "region", "rep"} <= set(TARGET_LEVELS)
    assert len(set(STAGES)) == len(STAGES)


def test_get_schema_names_the_known_tables():
    assert get_schema("transactions") is TABLES["transactions"]
    with pytest.raises(SalesplanError, match="Known tables: transactions"):
        get_schema("sales")


def test_bad_column_kind_is_rejected():
    with pytest.raises(ValueError, match="kind must be one of"):
        schema.Column("x", "money")


# --- docs/data-model.md in step with the schema ----------------------------------------

@pytest.mark.parametrize("table", list(TABLES))
def test_docs_list_every_column_with_its_required_flag(doc, table):
    assert re.search(rf"^## `{table}`$", doc, re.M), f"docs/data-model.md has no section for {table!r}"
    rows = [ROW.match(line) for line in _block(doc, table).splitlines()]
    documented = [(m["name"], m["kind"], m["required"] == "yes") for m in rows if m]
    expected = [(c.name, c.kind, c.required) for c in TABLES[table].columns]
    assert documented == expected, (
        f"docs/data-model.md is out of step with salesplan.schema for {table!r}; "
        "run `python -m salesplan.datasets --docs docs/data-model.md`")


@pytest.mark.parametrize("table", list(TABLES))
def test_docs_blocks_are_exactly_the_generated_tables(doc, table):
    assert _block(doc, table).strip() == schema_markdown(table), (
        "descriptions or aliases changed; run `python -m salesplan.datasets --docs docs/data-model.md`")


def test_docs_overview_names_every_table_and_its_required_columns(doc):
    overview = doc.split("## Overview", 1)[1].split("\n## ", 1)[0]
    for name, t in TABLES.items():
        line = next((ln for ln in overview.splitlines() if ln.startswith(f"| `{name}` |")), None)
        assert line, f"overview misses {name!r}"
        required = line.rsplit("|", 2)[-2]
        if "all five" not in required:
            assert [c.strip(" `") for c in required.split(",")] == t.required, name


def test_docs_updater_fills_and_keeps_text(tmp_path):
    page = tmp_path / "model.md"
    blocks = "\n".join(
        f"## `{t}`\nintro {t}\n<!-- BEGIN columns: {t} (generated) -->\nstale\n<!-- END columns: {t} -->\nafter {t}"
        for t in TABLES)
    page.write_text("# title\n" + blocks + "\n", encoding="utf-8")
    assert update_data_model_docs(page) is True
    text = page.read_text(encoding="utf-8")
    assert "stale" not in text and "intro reps" in text and "after market" in text
    assert schema_markdown("reps") in text
    assert update_data_model_docs(page) is False
    page.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(SalesplanError, match="BEGIN columns: transactions"):
        update_data_model_docs(page)


# --- file names and stage names ------------------------------------------------------

def test_file_names_belong_to_one_table_each():
    owner: dict[str, str] = {}
    clashes = []
    for t in TABLES.values():
        for name in (t.name, *t.file_names):
            key = normalize_header(name)
            if owner.setdefault(key, t.name) != t.name:
                clashes.append(f"{name!r}: {owner[key]} and {t.name}")
    assert not clashes


def test_stage_and_status_synonyms_map_onto_the_model():
    assert set(schema.STAGE_SYNONYMS.values()) <= set(STAGES)
    assert set(schema.STATUS_SYNONYMS.values()) <= set(STATUSES)
    folded = {}
    for name, stage in schema.STAGE_SYNONYMS.items():
        assert folded.setdefault(normalize_header(name), stage) == stage, f"{name!r} maps to two stages"
    # the terminal stages of every CRM the loaders know
    for name in ("Closed Won", "closedwon", "Won", "赢单"):
        assert schema.STAGE_SYNONYMS.get(name, schema.STAGE_SYNONYMS.get(normalize_header(name))) == "won"
    for name in ("Closed Lost", "closedlost", "Lost", "输单"):
        assert schema.STAGE_SYNONYMS.get(name, schema.STAGE_SYNONYMS.get(normalize_header(name))) == "lost"
