"""Schema migrations: a store made by an older version of deconfliction, upgraded in place.

Every store keeps its schema version in ``meta``. Opening a store of an older version is
refused with the command to run: ``deconflict migrate --db ...``, which applies each step in
one transaction (all or nothing), so an operator upgrades knowingly, after a backup.

SQLite:

- 1 → 2: the record. Version 1 kept each event's full data and no ledger: every event
  becomes an entry (its public data, its sealed parts, its leaf hash), in the order and
  with the sequence numbers it had; the newest report per asset moves from an index to
  the ``latest`` table. The entries are sealed as they are today, with fresh salts: the
  record begins at the migration, as far as signatures go (the first signed head follows).

PostgreSQL starts at version 1; there is nothing to migrate yet.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from deconfliction.errors import StoreError
from deconfliction.stores import POSTGRES_SCHEMES
from deconfliction.stores.base import event_from_row, rows_for

Step = Callable[[sqlite3.Connection], None]


def _sqlite_1_to_2(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE events RENAME TO events_v1")
    db.execute("DROP INDEX IF EXISTS events_by_subject")
    db.execute("DROP INDEX IF EXISTS events_by_type")
    from deconfliction.stores.sqlite import _SCHEMA  # the current tables, made empty

    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    old = db.execute("SELECT seq, type, time, party, data FROM events_v1 ORDER BY seq").fetchall()
    for first, row in enumerate(old, start=1):
        if row[0] != first:
            raise StoreError(f"the version 1 log has a gap at sequence number {first} (found {row[0]}); it cannot be migrated")
    events = [event_from_row(seq, type_, time, party, data, None) for seq, type_, time, party, data in old]
    rows = rows_for(events, 1)
    db.executemany(
        "INSERT INTO events (seq, type, time, party, subject, data, sealed, leaf) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(r.seq, r.type, r.time, r.party, r.subject, r.data, r.sealed, r.leaf) for r in rows],
    )
    newest = {r.subject: r.seq for r in rows if r.subject is not None}
    db.executemany("INSERT OR REPLACE INTO latest VALUES (?, ?)", newest.items())
    db.execute("DROP TABLE events_v1")


SQLITE_STEPS: dict[int, Step] = {1: _sqlite_1_to_2}
"""From each version, the step to the next one."""


def sqlite_version(db: sqlite3.Connection) -> int | None:
    """The schema version of an SQLite store, or None for a new (empty) file."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else int(row[0])


def migrate(db: str | Path) -> dict[str, int | None]:
    """Bring the store ``db`` to the current schema: ``{"from": v, "to": v'}``; a store already current is left as it is."""
    text = str(db)
    if text.startswith(POSTGRES_SCHEMES):
        from deconfliction.stores.postgres import SCHEMA_VERSION as PG_VERSION

        return {"from": PG_VERSION, "to": PG_VERSION}
    from deconfliction.stores.sqlite import SCHEMA_VERSION

    if not Path(text).exists():
        raise StoreError(f"there is no store at {text}; deconflict init makes one")
    db_ = sqlite3.connect(text, isolation_level=None)
    try:
        found = sqlite_version(db_)
        version = found
        if version is None or version > SCHEMA_VERSION:
            raise StoreError(f"the store at {text} has schema version {version}; this version knows 1 to {SCHEMA_VERSION}")
        db_.execute("BEGIN IMMEDIATE")
        try:
            while version < SCHEMA_VERSION:
                SQLITE_STEPS[version](db_)
                version += 1
            db_.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
            db_.execute("COMMIT")
        except BaseException:
            db_.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"the store at {text} could not be migrated (nothing changed): {exc}") from exc
    finally:
        db_.close()
    return {"from": found, "to": version}
