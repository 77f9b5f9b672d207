"""The embedded default store: one SQLite file in WAL mode, every commit synced to disk."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from deconfliction.errors import StoreError
from deconfliction.model import Event
from deconfliction.stores.base import RECORD_ONLY, SUPERSEDED, GroupCommit, canonical_json, event_from_row, subject_of

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    party TEXT,
    subject TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_subject ON events (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, seq);
"""


class SQLiteStore:
    """``SQLiteStore("picture.db")``: the event log in one file.

    WAL with ``synchronous=FULL``: a write is acknowledged only after its transaction
    reached the disk, so a ``kill -9`` (or a power cut) after a 2xx loses nothing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()  # one connection, used from the server's worker threads
        self._group = GroupCommit(self.append)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            # Streams read the log while writers append: through a connection of their own,
            # which sees only committed transactions (the writer's connection would see its
            # own transaction half-written).
            self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._reading = threading.Lock()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc

    def append(self, events: Sequence[Event]) -> list[int]:
        rows = [(e.type, e.time.isoformat(), e.party, subject_of(e), canonical_json(e.data)) for e in events]
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany("INSERT INTO events (type, time, party, subject, data) VALUES (?, ?, ?, ?, ?)", rows)
                    # One writer inside one transaction: the rows took consecutive sequence numbers.
                    last = self._db.execute("SELECT last_insert_rowid()").fetchone()[0]
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"the store could not take the write: {exc}") from exc
        return list(range(last - len(rows) + 1, last + 1))

    def append_grouped(self, events: Sequence[Event]) -> list[int]:
        """Like :meth:`append`, but shares one transaction (and one sync) with concurrent callers."""
        return self._group.submit(events)

    async def append_grouped_async(self, events: Sequence[Event]) -> list[int]:
        return await self._group.submit_async(events)

    def load(self) -> Iterator[Event]:
        skip = ",".join("?" * len(RECORD_ONLY))
        query = f"""
            SELECT seq, type, time, party, data FROM events AS e
            WHERE type NOT IN ({skip})
              AND (type != ? OR seq = (SELECT MAX(seq) FROM events WHERE subject = e.subject))
            ORDER BY seq
        """
        try:
            for row in self._db.execute(query, (*RECORD_ONLY, SUPERSEDED)):
                yield event_from_row(*row)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store: {exc}") from exc

    def events(self, after: int = 0, limit: int = 1000, types: Sequence[str] = ()) -> list[Event]:
        where, args = "seq > ?", [after, *types]
        if types:
            where += f" AND type IN ({','.join('?' * len(types))})"
        try:
            with self._reading:
                rows = self._reader.execute(
                    f"SELECT seq, type, time, party, data FROM events WHERE {where} ORDER BY seq LIMIT ?",
                    (*args, limit),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store: {exc}") from exc
        return [event_from_row(*row) for row in rows]

    def last_seq(self) -> int:
        try:
            with self._reading:
                return int(self._reader.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store: {exc}") from exc

    def close(self) -> None:
        self._reader.close()
        self._db.close()
