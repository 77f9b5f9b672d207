"""Shared fixtures: paths to the scenario files, and a store of each kind (PostgreSQL on a throwaway server).

Every test that runs on "a store" asks for ``fresh_db`` (a ``--db`` value), ``store`` or, in
the API tests, ``api``: it then runs once per store that ``--store`` selects, SQLite and
PostgreSQL by default (``pytest --store sqlite`` or ``--store postgres`` for one of them).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deconfliction.bench.servers import PG_BIN, PostgisServer
from deconfliction.clock import Clock
from deconfliction.service import Service
from deconfliction.settings import Settings
from deconfliction.stores import MemoryStore, SQLiteStore, Store, open_store

ROOT = Path(__file__).resolve().parents[1]
SHARED_SCENARIOS = ROOT.parent / "shared" / "scenarios"
OWN_SCENARIOS = ROOT / "scenarios"


def scenario_files() -> list[Path]:
    """The shared acceptance scenarios (beside the repository) and the project's own."""
    shared = sorted(SHARED_SCENARIOS.glob("*.yaml"))
    assert shared, f"the shared scenarios are missing: expected them in {SHARED_SCENARIOS}"
    return shared + sorted(OWN_SCENARIOS.glob("*.yaml"))


@pytest.fixture(autouse=True, scope="session")
def _state_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Nodes on PostgreSQL keep their snapshots in the user's state folder: the tests' servers in one of their own."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if previous is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = previous


TEST_PG_SETTINGS = {"shared_buffers": "32MB", "max_wal_size": "256MB", "fsync": "off", "full_page_writes": "off"}
"""A throwaway server for tests: what they prove is the store's behaviour, not the disk's, and a database per test
is made far faster without syncs (a test that needs durability kills the node, not the database)."""


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> Iterator[PostgisServer]:
    """PostgreSQL 15 with PostGIS from Debian's packages, on loopback, for the whole session (.ci/run installs it)."""
    if "postgres" not in selected_stores(request.config):
        pytest.skip("--store sqlite: the tests of the PostgreSQL store itself are not selected")
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 is not installed ({PG_BIN}): apt-get install postgresql postgresql-15-postgis-3")
    with PostgisServer(settings=TEST_PG_SETTINGS) as server:
        yield server


_databases = itertools.count(1)


@pytest.fixture
def postgres_url(postgres: PostgisServer) -> str:
    """A fresh database on the session's server, as a ``--db`` URL."""
    return postgres.create_database(f"test_{next(_databases)}")


STORES = ("sqlite", "postgres")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=(*STORES, "both"),
        default="both",
        help="the store that tests on a store run on: sqlite, postgres (a throwaway PostgreSQL 15 + PostGIS), or both",
    )


def selected_stores(config: pytest.Config) -> tuple[str, ...]:
    chosen = str(config.getoption("--store"))
    return STORES if chosen == "both" else (chosen,)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``fresh_db`` and ``store`` run a test once per selected store (``store`` on the in-memory one too)."""
    if "fresh_db" in metafunc.fixturenames:
        metafunc.parametrize("fresh_db", selected_stores(metafunc.config), indirect=True)
    if "store" in metafunc.fixturenames:
        metafunc.parametrize("store", (*selected_stores(metafunc.config), "memory"), indirect=True)


@pytest.fixture
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store as a ``--db`` value: a SQLite file path, or a database on the session's PostgreSQL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "test.db")


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """One fixture over every store implementation, so each behaviour is proven on each."""
    if request.param == "postgres":
        made = open_store(request.getfixturevalue("postgres_url"))
    else:
        made = SQLiteStore(tmp_path / "store.db") if request.param == "sqlite" else MemoryStore()
    yield made
    made.close()


@contextmanager
def service_on(db: str | Path, clock: Clock | None = None, settings: Settings | None = None) -> Iterator[Service]:
    """A service on the store ``db`` (as a node opens it), closed at the end of the block."""
    service = Service(open_store(db), clock, settings)
    try:
        yield service
    finally:
        service.store.close()
