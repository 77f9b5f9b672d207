"""Shared fixtures: paths to the scenario files, and a store of each kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deconfliction.stores import MemoryStore, SQLiteStore, Store

ROOT = Path(__file__).resolve().parents[1]
SHARED_SCENARIOS = ROOT.parent / "shared" / "scenarios"
OWN_SCENARIOS = ROOT / "scenarios"


def scenario_files() -> list[Path]:
    """The shared acceptance scenarios (beside the repository) and the project's own."""
    shared = sorted(SHARED_SCENARIOS.glob("*.yaml"))
    assert shared, f"the shared scenarios are missing: expected them in {SHARED_SCENARIOS}"
    return shared + sorted(OWN_SCENARIOS.glob("*.yaml"))


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """One fixture over every store implementation, so each behaviour is proven on each."""
    made: Store = SQLiteStore(tmp_path / "store.db") if request.param == "sqlite" else MemoryStore()
    yield made
    made.close()
