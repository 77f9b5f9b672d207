"""The embedded default store: one SQLite file in WAL mode, every commit synced to disk.

Each event row is also an entry of the ledger: its public data, its sealed parts and its
leaf hash are written in the same insert, so there is no write without its entry and no
entry without its write. The node's signing key lives beside the file (``<db>.key``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import sqlite3
import tempfile
import threading
import time
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
    ROW_WIDTH,
    SUPERSEDED,
    Encoded,
    Follower,
    GroupCommit,
    Row,
    SqlReads,
    encode,
    event_from_row,
    new_signing_key,
    only_records,
    placed,
    rows_after,
)

SCHEMA_VERSION = 2
_SCHEMA = f"""
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
-- ... kept by SQLite itself, so that a write is one statement: see SQLiteStore._commit_holding_lock. (Made
-- on opening a store of this version that lacks it; a store keeps the same table either way.)
CREATE TRIGGER IF NOT EXISTS latest_report AFTER INSERT ON events
WHEN NEW.type = '{SUPERSEDED}' AND NEW.subject IS NOT NULL
BEGIN INSERT OR REPLACE INTO latest VALUES (NEW.subject, NEW.seq); END;
CREATE TABLE IF NOT EXISTS heads (
    tree_size INTEGER NOT NULL,
    root_hash TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    signature TEXT NOT NULL
);
"""

CHECKPOINT_PAGES = 4000
"""WAL pages (4 KiB) after which the store's sync thread copies the WAL into the database and starts it over.

Every commit, and a disk sync in the commit path, holds up every write queued behind it (checks'
records included). So the commit never syncs or checkpoints: writes are synced after their commit
(:meth:`SQLiteStore.sync`), and the copy runs on the sync thread while writers go on. Only its last
few frames are copied holding the writers back, because SQLite starts the WAL over only when a
writer finds it all copied: a checkpoint that never holds them back leaves the WAL growing for ever
under steady writes (measured: 298 MiB in 3 minutes). A hot page (the log's last leaf, the ``latest``
table) is copied once per checkpoint however often it changed, so fewer, larger checkpoints write less.
"""
CHECKPOINT_EVERY_S = 2.0
"""How often the sync thread copies the WAL into the database (and looks at its length)."""
SYNC_GATHER_S = 0.01
"""How long the sync thread lets commits that need no sync of their own (checks' records) gather before it
syncs them, so that one disk sync serves the records of many checks, not one or two. A sync for every
record made the event loop's own work dearer (the engine's part of a check took 378 rather than 213 µs of
its CPU time at 10k assets: a sync thread waking for every record, and each sync, cost the loop's thread
too), and the server answered 880 rather than 1,180 checks a second (docs/reliability.md)."""
FOLLOW_POLL_S = 0.005
"""How often a node looks whether another process committed to its file (SQLite tells no one of a commit),
while others write to it: the most a write by another worker waits before this node's picture has it."""
FOLLOW_IDLE_POLL_S = 0.05
"""How often it looks when no other process has written for ``SHARED_FOR_S``: a server alone on its file (most
are) then looks 20 times a second rather than 200, each look a query on a thread that takes the interpreter
from the requests (one process at 10k assets answered 4 to 10 % more checks a second; benchmarks/README.md)."""
SHARED_FOR_S = 10.0
"""How long after it last read another process's entries a store counts the file as shared: it then looks for
their writes every ``FOLLOW_POLL_S`` and before each of its own, and commits no record on the event loop."""


class SQLiteStore(SqlReads, Follower):
    """``SQLiteStore("picture.db")``: the event log in one file.

    WAL mode. A commit is in the file, so it survives the process being killed, as soon as it
    returns; a write (``append``) also waits for the disk sync that makes it survive a power
    cut. A check's record may be answered on the commit alone (``append_grouped(..., synced=False)``):
    the sync thread syncs it a moment later, so that a slow disk sync (this machine's disk
    stalls for up to 0.8 s at times) never holds up an answer.

    Other processes may write to the same file (the workers of ``deconflict serve --workers``, a
    command run with ``--db`` while a server runs): each entry's sequence number is the log's
    primary key, so a write placed after entries another process wrote meanwhile fails whole, and
    this store reads theirs first (:class:`Follower`; :meth:`wait_for_writes` notices them).
    """

    MARK = "?"
    HEADS_ORDER = "rowid"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()  # one connection, used from the server's worker threads
        # Taken before the lock by every writer, and held by the sync thread while it waits for the lock: a
        # writer that commits again and again would otherwise take the lock back each time it let it go.
        self._turn = threading.Lock()
        self._group = GroupCommit(self._append, self._commit_now)
        self._syncing = threading.Lock()  # one disk sync at a time; those queued behind it often find theirs done
        self._synced = 0  # every entry up to here is on the disk
        self._sync_failed: str | None = None
        self._committed = threading.Event()  # wakes the sync thread: a commit no caller waits to see synced
        self._closing = threading.Event()
        Follower.__init__(self)
        self._seen_version: int | None = None  # the file's data_version when the writer last read the others' entries
        self._others_read_at = -math.inf  # when this store last read another process's entries (monotonic)
        self._waking = threading.Event()
        self._following = threading.Lock()  # the follower's connection, used by one wait at a time
        self._follower: sqlite3.Connection | None = None
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # Commits are synced by sync(), outside the commit, and the WAL copied by the sync thread;
            # SQLite's NORMAL still syncs around a checkpoint and a new WAL's header.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._check_schema()
            self._rows_per_insert = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // ROW_WIDTH
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
            # The WAL this store syncs. SQLite removes it only when the last connection to the database
            # closes, and this store keeps two open until close(): the descriptor stays on the live file.
            self._wal = os.open(self.path + "-wal", os.O_RDONLY | os.O_CREAT, 0o644)
            self._checkpointer = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        self._last = self._synced = len(self._tree)
        self._sync_thread = threading.Thread(target=self._sync_in_background, name="store-sync", daemon=True)
        self._sync_thread.start()

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
        return self._append(events, synced=True)

    def _append(self, events: Sequence[Event], synced: bool) -> list[int]:
        seqs = self._commit(events)
        self._after_commit(seqs, synced)
        return seqs

    def _after_commit(self, seqs: list[int], synced: bool) -> None:
        """Sync what the caller waits to see on the disk; hand the rest to the sync thread."""
        if not seqs:
            return
        if synced:
            self.sync(seqs[-1])
        else:
            self._committed.set()  # the sync thread's: a second sync racing this caller's would cost a disk flush

    def _commit(self, events: Sequence[Event]) -> list[int]:
        encoded = encode(events)  # before the lock: a record waiting behind a large write waits for its insert alone
        with self._turn:
            pass
        with self._lock:
            return self._commit_holding_lock(encoded)

    def _commit_holding_lock(self, encoded: Sequence[Encoded]) -> list[int]:
        if self._sync_failed is not None:
            raise StoreError(self._sync_failed)
        records = only_records(encoded)
        try:
            if self._shared:  # another process writes too: read its entries now rather than collide with them
                self._read_changes()
            if not records:
                self._refuse_behind()
            rows = placed(encoded, self._last + 1)
            try:
                self._insert(rows, begin=True)
            except sqlite3.IntegrityError as exc:
                if exc.sqlite_errorname != "SQLITE_CONSTRAINT_PRIMARYKEY":
                    raise
                # Another process wrote first, and its entries hold these numbers: nothing was written.
                rows = self._insert_after_others(encoded, records)
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not take the write: {self._cause(exc)}") from exc
        for r in rows:
            self._tree.append(r.leaf)
        self._last += len(rows)
        return [r.seq for r in rows]

    def _insert(self, rows: Sequence[Row], begin: bool) -> None:
        """Insert ``rows``: in one transaction of its own if ``begin``, else in the caller's."""
        # As few statements as can be: SQLite hands the interpreter to the other threads during each one,
        # and under load taking it back costs more than the statement (the lock is held meanwhile). One
        # statement is one transaction, committed by SQLite itself; a larger write takes several in one.
        chunks = [rows[i : i + self._rows_per_insert] for i in range(0, len(rows), self._rows_per_insert)]
        begin = begin and len(chunks) > 1
        if begin:
            self._db.execute("BEGIN IMMEDIATE")
        try:
            for chunk in chunks:
                self._db.execute(_insert(len(chunk)), [v for r in chunk for v in r.values()])
            if begin:
                self._db.execute("COMMIT")
        except BaseException:
            if begin and self._db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                self._db.execute("ROLLBACK")
            raise

    def _insert_after_others(self, encoded: Sequence[Encoded], records: bool) -> list[Row]:
        """Read the entries other processes wrote, then insert after them, no process writing in between;
        a write that changes the picture is refused instead (behind), the entries read for the picture."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._read_others()
            if not records:
                self._refuse_behind()
            rows = placed(encoded, self._last + 1)
            self._insert(rows, begin=False)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return rows

    def _read_others(self) -> None:
        """Every entry after this store's last into its tree, for :meth:`catch_up`; the caller holds the lock."""
        rows = [Row(*row) for row in self._db.execute(rows_after(self.MARK), (self._last,))]
        self._took(rows)
        if rows:
            self._others_read_at = time.monotonic()

    def _read_changes(self) -> None:
        """:meth:`_read_others` if another connection committed since they were last read (mostly none did)."""
        # The writer's data_version changes only with another connection's commit.
        [(version,)] = self._db.execute("PRAGMA data_version").fetchall()
        if version != self._seen_version:
            self._seen_version = version  # before reading: a commit in between is read now or next time
            self._read_others()

    @property
    def _shared(self) -> bool:
        """Whether another process has written to the file lately (``SHARED_FOR_S``)."""
        return time.monotonic() - self._others_read_at < SHARED_FOR_S

    def catch_up(self) -> list[Event]:
        """What other processes wrote since this store last read, in order (their entries join the tree)."""
        with self._lock:
            try:
                self._read_changes()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the store: {self._cause(exc)}") from exc
            return self.followed()

    def wait_for_writes(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for another process's commit to the log (or :meth:`wake_followers`); whether one came.

        SQLite tells no one of a commit: every ``FOLLOW_POLL_S`` (``FOLLOW_IDLE_POLL_S`` while no other
        process writes) this looks at the file's data version (changed by any other connection's commit,
        this store's own writer's included), and then whether the log ends past this store's last entry.
        """
        deadline = time.monotonic() + timeout_s
        with self._following:
            if self._closing.is_set():
                return False
            if self._follower is None:
                self._follower = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db = self._follower
            try:
                seen = None
                while not self._followed:  # entries a record's write read: for the picture without delay
                    [(version,)] = db.execute("PRAGMA data_version").fetchall()
                    if version != seen:
                        seen = version
                        [(last,)] = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchall()
                        if last > self._last:
                            return True
                    if self._waking.wait(FOLLOW_POLL_S if self._shared else FOLLOW_IDLE_POLL_S):
                        self._waking.clear()
                        return True
                    if time.monotonic() >= deadline:
                        return False
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the store: {self._cause(exc)}") from exc
        return True

    def wake_followers(self) -> None:
        """End this store's :meth:`wait_for_writes` now (the node is stopping)."""
        self._waking.set()

    def sync(self, upto: int | None = None) -> None:
        """Put every entry up to ``upto`` (all that are committed, by default) on the disk; a StoreError if it cannot.

        Callers that arrive while a sync runs share the next one. A sync that fails leaves the
        store refusing every write until the node restarts: after a failed fsync the kernel may
        have dropped the pages it could not write, so what the file holds is no longer known
        (PostgreSQL stops for the same reason).
        """
        with self._syncing:
            if self._synced < (self._last if upto is None else upto):
                self._fsync()

    def _fsync(self) -> None:
        """Sync the WAL; the caller holds ``_syncing``."""
        if self._sync_failed is not None:
            raise StoreError(self._sync_failed)
        target = self._last  # read before the sync: every commit up to it has been written
        try:
            os.fdatasync(self._wal)
        except OSError as exc:
            self._sync_failed = (
                f"the store could not put its writes on the disk: {self._cause(exc)}; "
                f"writes since entry {self._synced} may be lost. Restart the node"
            )
            raise StoreError(self._sync_failed) from exc
        self._synced = target

    def _sync_in_background(self) -> None:
        """Sync what was committed without waiting for its sync (checks' records), and keep the WAL short."""
        looked = time.monotonic()
        while not self._closing.is_set():
            if self._committed.wait(CHECKPOINT_EVERY_S):
                self._closing.wait(SYNC_GATHER_S)  # the records committed meanwhile share this sync
            self._committed.clear()
            with contextlib.suppress(StoreError):  # a failed sync refuses the next write, which says why
                self.sync()
            if time.monotonic() - looked >= CHECKPOINT_EVERY_S and self._sync_failed is None:
                looked = time.monotonic()
                self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy the WAL into the database while writers go on; once it is long, copy the last frames holding
        them back, so that the next commit starts the WAL over."""
        db = self._checkpointer
        try:
            [(_busy, frames, _copied)] = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            if frames >= CHECKPOINT_PAGES:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # what was committed during the first: a few frames
                with self._turn, self._lock:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # stepped to its end: no read left open
                    # The write that starts the WAL over syncs its new header: made here rather than by the
                    # next write, which may be a check's record committed on the event loop. (A value of its
                    # own: SQLite writes nothing for a row updated to what it was.)
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('wal_started_over_ns', ?)", (str(time.time_ns()),))
        except sqlite3.Error:
            pass  # a disk that filled or turned read-only: writes say so; the WAL is copied next time

    def append_grouped(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        """Like :meth:`append`, but shares one transaction (and one sync) with concurrent callers.

        ``synced=False`` returns once the events are committed, before the disk sync.
        """
        return self._group.submit(events, synced)

    async def append_grouped_async(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        return await self._group.submit_async(events, synced)

    def _commit_now(self, events: Sequence[Event]) -> list[int] | None:
        """Commit ``events`` (no sync awaited) on the caller's thread, the event loop's, if nothing else is writing;
        None if something is (the group commit's thread then takes them).

        Not when another process writes too: its write lock would make this one sleep, and the event loop with
        it. Without a sync the commit takes a fraction of a millisecond, less than the group commit's two
        hand-offs between threads cost.
        """
        if self._shared or self._turn.locked() or not self._lock.acquire(blocking=False):
            return None
        try:
            seqs = self._commit_holding_lock(encode(events))
        finally:
            self._lock.release()
        self._after_commit(seqs, synced=False)
        return seqs

    def load(self, after: int = 0) -> Iterator[Event]:
        skip = ",".join("?" * len(RECORD_ONLY))
        query = f"""
            SELECT seq, type, time, party, data, sealed FROM events
            WHERE seq > ? AND seq <= ? AND type NOT IN ({skip}) AND (type != ? OR seq IN (SELECT seq FROM latest))
            ORDER BY seq
        """
        try:
            for row in self._db.execute(query, (after, self._last, *RECORD_ONLY, SUPERSEDED)):
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
        """Keep a signed head, synced with every entry it covers: a head handed out never covers more than the disk holds."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO heads VALUES (?, ?, ?, ?)",
                    tuple(head[f] for f in HEAD_FIELDS),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"the store could not keep the tree head: {self._cause(exc)}") from exc
        with self._syncing:  # the head is not an entry: synced whatever the entries' state
            self._fsync()

    def _cause(self, exc: Exception) -> str:
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
        self._closing.set()
        self._committed.set()
        self._waking.set()
        self._sync_thread.join()
        with self._following:
            if self._follower is not None:
                self._follower.close()
        self._checkpointer.close()
        os.close(self._wal)
        self._reader.close()
        self._db.close()


@functools.cache
def _insert(rows: int) -> str:
    """The statement that inserts ``rows`` rows into the log."""
    return f"INSERT INTO events ({ROW_COLUMNS}) VALUES " + ", ".join([f"({', '.join('?' * ROW_WIDTH)})"] * rows)


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
