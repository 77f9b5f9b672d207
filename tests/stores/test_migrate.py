"""A store made by the first version upgrades in place: ``deconflict migrate``, then the same picture and a record that verifies.

The first schema (version 1) is written here as that version wrote it: the ``events`` table
with each event's full data, its two indexes, and ``meta``. Its events are made by today's
service and copied over in the old shape, so the picture before and after can be compared.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deconfliction.cli import app
from deconfliction.clock import ManualClock
from deconfliction.errors import StoreError
from deconfliction.ledger.seal import canonical_json
from deconfliction.service import Service
from deconfliction.stores import MemoryStore, SQLiteStore
from deconfliction.stores.base import subject_of
from tests.stores.test_store import BLUE, T0, _build

runner = CliRunner()

FIRST_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    party TEXT,
    subject TEXT,
    data TEXT NOT NULL
);
CREATE INDEX events_by_subject ON events (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX events_by_type ON events (type, seq);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def first_version_store(path: Path) -> Service:
    """A version 1 file holding the picture of ``_build``; returns the in-memory service it was made with."""
    made = Service(MemoryStore(), ManualClock(T0))
    _build(made)
    db = sqlite3.connect(path)
    db.executescript(FIRST_SCHEMA)
    db.executemany(
        "INSERT INTO events (type, time, party, subject, data) VALUES (?, ?, ?, ?, ?)",
        [(e.type, e.time.isoformat(), e.party, subject_of(e), canonical_json(e.data)) for e in made.store.events(0, 10_000)],
    )
    db.commit()
    db.close()
    return made


def test_a_first_version_store_is_refused_until_migrated_then_holds_the_same_picture(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    made = first_version_store(path)
    with pytest.raises(StoreError, match="deconflict migrate --db"):
        SQLiteStore(path)

    done = runner.invoke(app, ["migrate", "--db", str(path)])
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"from": 1, "to": 2}
    again = runner.invoke(app, ["migrate", "--db", str(path)])
    assert json.loads(again.stdout) == {"from": 2, "to": 2}, "a current store is left as it is"

    upgraded = Service(SQLiteStore(path), ManualClock(T0))
    try:
        assert (upgraded.summary(), upgraded.assets(BLUE), upgraded.zones(BLUE), upgraded.aors(BLUE)) == (
            made.summary(),
            made.assets(BLUE),
            made.zones(BLUE),
            made.aors(BLUE),
        )
        assert [e.seq for e in upgraded.store.events(0, 10_000)] == [e.seq for e in made.store.events(0, 10_000)]
        upgraded.ledger_head()  # the first signed head of the migrated record
    finally:
        upgraded.store.close()
    verified = runner.invoke(app, ["ledger", "verify", "--db", str(path)])
    assert verified.exit_code == 0, verified.stdout
    assert json.loads(verified.stdout)["ok"] is True


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    """A version 1 log with a hole (an event deleted by hand) is refused whole: still version 1, still all there."""
    path = tmp_path / "holed.db"
    first_version_store(path)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM events WHERE seq = 3")
    db.commit()
    count = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    db.close()
    refused = runner.invoke(app, ["migrate", "--db", str(path)])
    assert refused.exit_code == 2 and "gap at sequence number 3" in refused.stderr
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta").fetchone() == ("1",)
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == count
    db.close()
