"""Schema migrations: a store made by an older version of deconfliction, upgraded in place.

Every store keeps its schema version in ``meta``. Opening a store of an older version is
refused with the command to run: ``deconflict migrate --db ...``, which applies each step in
one transaction (all or nothing), so an operator upgrades knowingly, after a backup.

SQLite:

- 1 → 2: the record. Version 1 kept each event's full data and no ledger: every event
  becomes an entry (its public data, its sealed parts, its leaf hash), in the order and
  with the sequence numbers it had; the newest report per asset moves from an index to
  the ``latest`` table (filled by its trigger as the entries are written). The entries are
  sealed as they are today, with fresh salts: the record begins at the migration, as far as
  signatures go (the first signed head follows).

PostgreSQL:

- 1 → 2: where things are, in PostGIS types. PostGIS is added to the database (a superuser
  may have to: ``CREATE EXTENSION postgis``); every event gets its geometry and, if it is
  about an asset, its subject; ``latest`` gets each asset's current position (withdrawn
  positions leave it); the spatial and subject indexes are built. Entries are not touched:
  the record verifies as before.
- 2 → 3: ``latest`` is kept up to date after commits rather than in them, and ``meta`` notes
  the last entry it is exact for (``latest_through``); version 2 kept it exact at every
  commit, so the mark starts at the log's last entry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deconfliction.errors import StoreError
from deconfliction.stores import POSTGRES_SCHEMES, display_name
from deconfliction.stores.base import HISTORY_PAGE, event_from_row, rows_for, subject_of

if TYPE_CHECKING:
    import psycopg  # loaded only to migrate a PostgreSQL store

Step = Callable[[sqlite3.Connection], None]


def _sqlite_1_to_2(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE events RENAME TO events_v1")
    db.execute("DROP INDEX IF EXISTS events_by_subject")
    db.execute("DROP INDEX IF EXISTS events_by_type")
    from deconfliction.stores.sqlite import _SCHEMA  # the current tables, made empty

    statement = ""
    for part in _SCHEMA.split(";"):  # whole statements: a trigger's body holds semicolons of its own
        statement += part + ";"
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    old = db.execute("SELECT seq, type, time, party, data FROM events_v1 ORDER BY seq").fetchall()
    for first, row in enumerate(old, start=1):
        if row[0] != first:
            raise StoreError(f"the version 1 log has a gap at sequence number {first} (found {row[0]}); it cannot be migrated")
    events = [event_from_row(seq, type_, time, party, data, None) for seq, type_, time, party, data in old]
    rows = rows_for(events, 1)
    db.executemany(
        "INSERT INTO events (seq, type, time, party, subject, data, sealed, leaf) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [r.values() for r in rows],
    )
    db.execute("DROP TABLE events_v1")


SQLITE_STEPS: dict[int, Step] = {1: _sqlite_1_to_2}
"""From each version, the step to the next one."""


def _postgres_1_to_2(db: psycopg.Connection[Any]) -> None:
    from deconfliction.stores.postgres import _GEOMETRY, geometry_of, update_latest

    db.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    db.execute(_GEOMETRY)
    db.execute("CREATE TEMP TABLE located (seq BIGINT PRIMARY KEY, subject TEXT, geom geometry) ON COMMIT DROP")
    last = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])  # type: ignore[index]
    for start in range(0, last, HISTORY_PAGE):
        query = "SELECT seq, type, time, party, data, sealed FROM events WHERE seq > %s AND seq <= %s ORDER BY seq"
        events = [event_from_row(*row) for row in db.execute(query, (start, start + HISTORY_PAGE)).fetchall()]
        with db.cursor() as cursor, cursor.copy("COPY located FROM STDIN") as copy:
            for e in events:
                copy.write_row((e.seq, subject_of(e), geometry_of(e)))
    db.execute("UPDATE events SET subject = located.subject, geom = located.geom FROM located WHERE events.seq = located.seq")
    db.execute("DELETE FROM latest")
    with db.cursor() as cursor:
        update_latest(cursor, 1, last)


def _postgres_2_to_3(db: psycopg.Connection[Any]) -> None:
    from deconfliction.stores.postgres import LATEST_THROUGH

    db.execute("INSERT INTO meta SELECT %s, COALESCE(MAX(seq), 0)::text FROM events", (LATEST_THROUGH,))


POSTGRES_STEPS: dict[int, Callable[[psycopg.Connection[Any]], None]] = {1: _postgres_1_to_2, 2: _postgres_2_to_3}
"""From each version of a PostgreSQL store, the step to the next one."""


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
        return _migrate_postgres(text)
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


def _migrate_postgres(url: str) -> dict[str, int | None]:
    import psycopg

    from deconfliction.stores.postgres import SCHEMA_LOCK, SCHEMA_VERSION, schema_version

    name = display_name(url)
    try:
        with psycopg.connect(url) as db:  # one transaction: committed at the end of the block, rolled back on any error
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))  # no node makes or opens the schema meanwhile
            found = schema_version(db)
            if found is None:
                raise StoreError(f"there is no store at {name}; deconflict init makes one")
            if found > SCHEMA_VERSION:
                raise StoreError(f"the store at {name} has schema version {found}; this version knows 1 to {SCHEMA_VERSION}")
            version = found
            while version < SCHEMA_VERSION:
                POSTGRES_STEPS[version](db)
                version += 1
            db.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'", (str(version),))
    except psycopg.Error as exc:
        raise StoreError(f"the store at {name} could not be migrated (nothing changed): {exc}") from exc
    return {"from": found, "to": version}
