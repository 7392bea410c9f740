"""Shared test setup: the repository's shared data folder and tool checks."""

from __future__ import annotations

from pathlib import Path

import pytest

import l1flow  # noqa: F401  (sets the toolchain environment before any test imports a tool)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the checkout (present in CI); skip where a clone has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (a user's own clone); CI provides it")
    return SHARED_DATA
