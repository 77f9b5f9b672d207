"""The embedded default store: one SQLite file in WAL mode, every commit synced to disk.

Each event row is also an entry of the ledger: its public data, its sealed parts and its
leaf hash are written in the same insert, so there is no write without its entry and no
entry without its write. The node's signing key lives beside the file (``<db>.key``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deconfliction.errors import StoreError
from deconfliction.geo import Box
from deconfliction.ledger.merkle import MerkleTree
from deconfliction.model import Event
from deconfliction.stores.base import (
    HEAD_FIELDS,
    HISTORY_PAGE,
    RECORD_ONLY,
    ROW_COLUMNS,
    SUPERSEDED,
    GroupCommit,
    SqlReads,
    event_from_row,
    new_signing_key,
    newest_reports,
    rows_for,
)

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    party TEXT,
    subject TEXT,
    data TEXT NOT NULL,
    sealed TEXT,
    leaf BLOB NOT NULL
);
-- The newest report of each asset, kept in the same transaction as the log, so that start-up can skip
-- superseded reports. A table of one row per asset rather than an index over every report: the index
-- grew with the log and its scattered page writes made each commit slower as the log grew.
CREATE TABLE IF NOT EXISTS latest (subject TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (
    tree_size INTEGER NOT NULL,
    root_hash TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    signature TEXT NOT NULL
);
"""

CHECKPOINT_PAGES = 4000
"""WAL pages (4 KiB) after which the commit that crosses them copies the WAL into the database (SQLite's default: 1,000).

That commit, and every write queued behind it (checks included), waits for the copy and the database
file's sync, and the copy's writes slow the WAL syncs of the commits around it. A hot page (the log's
last leaf, the ``latest`` table) is copied once per checkpoint however often it changed, so fewer,
larger checkpoints write less. In short soaks (about 200 commits a second) SQLite's 1,000 pages gave
checks a p99 of 144-175 ms, 4,000 gave 78-159 ms (noisy; no checkpoints at all, 42 ms), for a WAL of
16 MiB. A checkpoint on a thread of its own does not keep the WAL bounded under steady writes: it
never finds the WAL all copied, so the writer never starts it over (298 MiB in 3 minutes).
"""


class SQLiteStore(SqlReads):
    """``SQLiteStore("picture.db")``: the event log in one file.

    WAL with ``synchronous=FULL``: a write is acknowledged only after its transaction
    reached the disk, so a ``kill -9`` (or a power cut) after a 2xx loses nothing.
    """

    MARK = "?"
    HEADS_ORDER = "rowid"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()  # one connection, used from the server's worker threads
        self._group = GroupCommit(self.append)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            self._check_schema()
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            # Streams read the log while writers append: through a connection of their own,
            # which sees only committed transactions (the writer's connection would see its
            # own transaction half-written).
            self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._reading = threading.Lock()
            self._tree = MerkleTree(stored=self.leaves)
            leaves = self._db.execute("SELECT leaf FROM events ORDER BY seq")
            while chunk := leaves.fetchmany(HISTORY_PAGE):
                self._tree.extend([leaf for (leaf,) in chunk])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        self._last = len(self._tree)

    def _check_schema(self) -> None:
        from deconfliction.stores.migrate import sqlite_version

        version = sqlite_version(self._db)
        if version is not None and version < SCHEMA_VERSION:
            raise StoreError(
                f"the store at {self.path} has schema version {version}; this version of deconfliction reads "
                f"version {SCHEMA_VERSION}: back it up, then run deconflict migrate --db {self.path}"
            )
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"the store at {self.path} has schema version {version}, made by a newer deconfliction; "
                f"this one reads version {SCHEMA_VERSION}"
            )

    @property
    def tree(self) -> MerkleTree:
        return self._tree

    def append(self, events: Sequence[Event]) -> list[int]:
        with self._lock:
            rows = rows_for(events, self._last + 1)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(
                        f"INSERT INTO events ({ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(r.seq, r.type, r.time, r.party, r.subject, r.data, r.sealed, r.leaf) for r in rows],
                    )
                    self._db.executemany("INSERT OR REPLACE INTO latest VALUES (?, ?)", newest_reports(rows).items())
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"the store could not take the write: {self._cause(exc)}") from exc
            for r in rows:
                self._tree.append(r.leaf)
            self._last += len(rows)
        return [r.seq for r in rows]

    def append_grouped(self, events: Sequence[Event]) -> list[int]:
        """Like :meth:`append`, but shares one transaction (and one sync) with concurrent callers."""
        return self._group.submit(events)

    async def append_grouped_async(self, events: Sequence[Event]) -> list[int]:
        return await self._group.submit_async(events)

    def load(self) -> Iterator[Event]:
        skip = ",".join("?" * len(RECORD_ONLY))
        query = f"""
            SELECT seq, type, time, party, data, sealed FROM events
            WHERE type NOT IN ({skip}) AND (type != ? OR seq IN (SELECT seq FROM latest))
            ORDER BY seq
        """
        try:
            for row in self._db.execute(query, (*RECORD_ONLY, SUPERSEDED)):
                yield event_from_row(*row)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store: {exc}") from exc

    def history(self, until: int, area: Box | None = None) -> Iterator[Event]:
        """Every picture event up to entry ``until``: no spatial index here, so ``area`` leaves nothing out."""
        return self._whole_history(until)

    def _read(self, query: str, args: Sequence[Any]) -> list[Any]:
        try:
            with self._reading:
                return self._reader.execute(query, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store: {exc}") from exc

    def add_head(self, head: dict[str, Any]) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO heads VALUES (?, ?, ?, ?)",
                    tuple(head[f] for f in HEAD_FIELDS),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"the store could not keep the tree head: {self._cause(exc)}") from exc

    def _cause(self, exc: sqlite3.Error) -> str:
        """What stopped a write. SQLite says only "disk I/O error" when the kernel has made the disk read-only
        (a failing disk, ``errors=remount-ro``), and the mount still says rw; writing a file beside the store
        tells, and an operator needs to know."""
        try:
            with tempfile.TemporaryFile(dir=Path(self.path).parent):
                pass
        except OSError as probe:
            if probe.errno == errno.EROFS:
                return f"the file system holding {self.path} has turned read-only; repair it, then restart the node ({exc})"
        return str(exc)

    def signing_key(self, create: bool = True) -> Ed25519PrivateKey:
        """The key in ``<db>.key`` (PKCS#8 PEM, readable by the owner only), made on first use unless ``create`` is False."""
        path = Path(self.path + ".key")
        try:
            if not create and not path.exists():
                raise StoreError(f"there is no signing key {path} beside the store")
            if path.exists():
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if not isinstance(key, Ed25519PrivateKey):
                    raise StoreError(f"{path} does not hold an Ed25519 key")
                return key
            key = new_signing_key()
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            _write_durably(path, pem)
            return self.signing_key(create=False)  # another process may have made it first: theirs is the key
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read or make the signing key {path}: {exc}") from exc

    def close(self) -> None:
        self._reader.close()
        self._db.close()


def _write_durably(path: Path, content: bytes) -> None:
    """Make ``path`` whole or not at all, on the disk before it is used, and never over one that exists.

    The key signs heads that are handed out: a key lost with the page cache (a power cut, a disk that
    turned read-only) would leave heads nobody can check again. So: write a file of its own, fsync it,
    link it in place (which fails if another process got there first), fsync the folder.
    """
    draft = path.with_name(f"{path.name}.{os.getpid()}.draft")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
