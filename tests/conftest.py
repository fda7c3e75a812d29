"""Shared fixtures: the reference data folder and seeded generators."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
CHROMIUM = Path("/usr/bin/chromium")
# Flags for a headless chromium on a machine without network: no background
# connections, no component updates, no GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _reference_required() -> bool:
    return os.environ.get("SALESPLAN_REQUIRE_REFERENCE", "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: skipped with a reason where absent, unless CI requires it."""
    if not SHARED_DATA.is_dir():
        if _reference_required():
            pytest.fail(
                f"SALESPLAN_REQUIRE_REFERENCE is set but {SHARED_DATA} does not exist; "
                "the reference-data tests must run here."
            )
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (set up ../shared/data to run)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261127)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shape_paths(tmp_path_factory) -> dict[str, Path]:
    """``{shape name: data_path}`` for every data shape of :mod:`tests.shapes`, written once per session."""
    try:
        from tests.shapes import SHAPES
    except ImportError:  # pytest run without the project root on sys.path; tests/ is on it
        from shapes import SHAPES

    folder = tmp_path_factory.mktemp("shapes")
    return {name: shape.write(folder) for name, shape in SHAPES.items()}


@pytest.fixture(scope="session")
def browser():
    """Debian's headless chromium driven by Playwright (no browser download), one for the session.

    Playwright's sync API allows one running instance per thread, so every
    browser test module shares this one.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests drive Debian's chromium. "
                    "Run `make test` (it installs chromium and chromium-driver), "
                    "or `apt-get install chromium chromium-driver`.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


#: The modules that take minutes (notebooks on every export shape, the browser and the server
#: tests). They go first, so that with ``-n 2`` (``make test``) they start at once on both
#: workers and the many short tests fill the time around them, instead of waiting at the end.
LONG_MODULES = ("test_notebook_shapes.py", "test_browser.py", "test_serve.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.path.name
        return LONG_MODULES.index(name) if name in LONG_MODULES else len(LONG_MODULES)

    items.sort(key=rank)
