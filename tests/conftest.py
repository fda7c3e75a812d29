"""Shared fixtures: the reference data folder and seeded generators."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


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
