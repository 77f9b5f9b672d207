"""Shared fixtures: paths to the scenario files, and a store of each kind (PostgreSQL on a throwaway server)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from deconfliction.bench.servers import PG_BIN, PostgisServer
from deconfliction.stores import MemoryStore, SQLiteStore, Store, open_store

ROOT = Path(__file__).resolve().parents[1]
SHARED_SCENARIOS = ROOT.parent / "shared" / "scenarios"
OWN_SCENARIOS = ROOT / "scenarios"


def scenario_files() -> list[Path]:
    """The shared acceptance scenarios (beside the repository) and the project's own."""
    shared = sorted(SHARED_SCENARIOS.glob("*.yaml"))
    assert shared, f"the shared scenarios are missing: expected them in {SHARED_SCENARIOS}"
    return shared + sorted(OWN_SCENARIOS.glob("*.yaml"))


TEST_PG_SETTINGS = {"shared_buffers": "32MB", "max_wal_size": "256MB", "fsync": "off", "full_page_writes": "off"}
"""A throwaway server for tests: what they prove is the store's behaviour, not the disk's, and a database per test
is made far faster without syncs (a test that needs durability kills the node, not the database)."""


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgisServer]:
    """PostgreSQL 15 with PostGIS from Debian's packages, on loopback, for the whole session (.ci/run installs it)."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 is not installed ({PG_BIN}): apt-get install postgresql postgresql-15-postgis-3")
    with PostgisServer(settings=TEST_PG_SETTINGS) as server:
        yield server


_databases = itertools.count(1)


@pytest.fixture
def postgres_url(postgres: PostgisServer) -> str:
    """A fresh database on the session's server, as a ``--db`` URL."""
    return postgres.create_database(f"test_{next(_databases)}")


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """One fixture over every store implementation, so each behaviour is proven on each."""
    if request.param == "postgres":
        made = open_store(request.getfixturevalue("postgres_url"))
    else:
        made = SQLiteStore(tmp_path / "store.db") if request.param == "sqlite" else MemoryStore()
    yield made
    made.close()
