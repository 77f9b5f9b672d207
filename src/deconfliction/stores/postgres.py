"""The server store: the same event log and ledger in PostgreSQL 15 (``--db postgresql://...``).

The tables mirror the SQLite store's: each event row is also a ledger entry (public data,
sealed parts and leaf hash in one insert), ``latest`` keeps the newest report per asset for
start-up, ``heads`` the signed tree heads. The data column is text, not jsonb: the leaf
hashes the exact canonical bytes, which jsonb would not keep. The node's signing key is
kept in the database, so that every node on it signs as the same service (whoever can read
the database can sign: guard it as the key itself).

Where things are is kept in PostGIS types as well (schema version 2): each report, zone,
AOR, territory and activity has its geometry (``geom``, EPSG:4326) under a GiST index, and
``latest`` holds every asset's current position. The database itself then answers for an
area: :meth:`PostgresStore.history` finds the assets that were ever there and reads only
their events, which is what an as-of picture of one area needs from a log of millions;
GIS clients (QGIS, TAK Server's own database tools) can read ``latest`` directly. The
in-memory picture of each node stays the hot path for checks.

``latest`` is kept up to date after each commit rather than in it (schema version 3): a
:class:`LatestKeeper` thread on a connection of its own brings it up to the log, and notes in
``meta`` the last entry it is exact for (``latest_through``). A start reads every report after
that entry as well as those in ``latest``, so a ``latest`` behind the log costs a few more rows
read, never a wrong picture; a GIS client reading it sees the positions of moments ago.

Several nodes may serve from one database. A writer takes an exclusive lock on the log for
its transaction; if another node wrote since this node last caught up, a write that changes
the picture is refused (:class:`~deconfliction.errors.Behind`, 503, ask again) rather than
numbered over what this node has not seen, so every write was validated against the whole log
before it. A record (a check's, a notice) changes nothing in the picture: it is numbered after
the entries the others wrote, which this node reads in the same transaction. Each commit
notifies the others (``NOTIFY deconfliction``); a node waits for that
(:meth:`PostgresStore.wait_for_writes`) and reads what it missed by sequence number
(:meth:`PostgresStore.catch_up`), so a lost notification delays a node, never skips a write.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import shapely
import shapely.geometry
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deconfliction.errors import StoreError
from deconfliction.geo import Box
from deconfliction.ledger.merkle import MerkleTree
from deconfliction.model import Event
from deconfliction.stores import display_name
from deconfliction.stores.base import (
    EVENT_COLUMNS,
    HEAD_FIELDS,
    RECORD_ONLY,
    ROW_COLUMNS,
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

SCHEMA_VERSION = 3


def _sql_types(types: Sequence[str]) -> str:
    """Event types as an SQL list, written out (a partial index serves only a literal condition)."""
    return ", ".join(f"'{t}'" for t in types)


_PICTURE = f"subject IS NULL AND type NOT IN ({_sql_types(RECORD_ONLY)})"
"""The events about no asset that rebuild a picture; written out, so that the partial index ``events_picture`` serves it."""
_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT PRIMARY KEY,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    party TEXT,
    subject TEXT,
    data TEXT NOT NULL,
    sealed TEXT,
    leaf BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (subject TEXT PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS heads (
    id BIGSERIAL PRIMARY KEY,
    tree_size BIGINT NOT NULL,
    root_hash TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signing_key (id INTEGER PRIMARY KEY CHECK (id = 1), pem TEXT NOT NULL);
"""
"""Version 1's tables; :data:`_GEOMETRY` adds version 2's columns and indexes to them."""
_GEOMETRY = f"""
ALTER TABLE events ADD COLUMN IF NOT EXISTS geom geometry(Geometry, 4326);
ALTER TABLE latest ADD COLUMN IF NOT EXISTS geom geometry(Point, 4326);
-- Where each report, zone, AOR, territory and activity is: the history of an area starts from these.
CREATE INDEX IF NOT EXISTS events_geom ON events USING GIST (geom) WHERE geom IS NOT NULL;
-- Each asset's events in order: its newest report before an instant is one index probe.
CREATE INDEX IF NOT EXISTS events_subject ON events (subject, seq) WHERE subject IS NOT NULL;
-- The events about no asset that rebuild a picture (parties, zones, AORs, activities, grants).
CREATE INDEX IF NOT EXISTS events_picture ON events (seq) WHERE {_PICTURE};
-- The current position of every asset, for GIS clients reading the database.
CREATE INDEX IF NOT EXISTS latest_geom ON latest USING GIST (geom);
"""
LATEST_THROUGH = "latest_through"
"""The key in ``meta`` of the last entry ``latest`` is exact for (version 3): the reports after it are all read at a start."""
SCHEMA_LOCK = 0x6465636F6E66  # "deconf": the advisory lock under which a node makes or migrates the schema
WITHDRAWN = ("asset.withdrawn", "position.withdrawn")
"""The events that take an asset's position off the picture (and out of ``latest``)."""
CHANNEL = "deconfliction"
"""The channel every commit notifies, and every node listens on."""
LOAD_BATCH = 10_000
"""Rows fetched at a time while a node loads the log: memory stays flat whatever the log's length."""

log = logging.getLogger(__name__)


class PostgresStore(SqlReads, Follower):
    """``PostgresStore("postgresql://user:password@host:5432/db")``: the event log in PostgreSQL.

    Every write is durable as PostgreSQL makes it (``synchronous_commit`` on, its default). A check's
    record is committed with ``synchronous_commit`` off: its answer does not wait for the database's
    disk, and PostgreSQL's WAL writer flushes it moments later (a signed head's own commit, synchronous,
    flushes every entry before it).
    """

    MARK = "%s"
    HEADS_ORDER = "id"

    def __init__(self, url: str) -> None:
        self.path = url  # what the CLI and errors name the store by; the password stays out of messages
        self._name = display_name(url)
        self._lock = threading.Lock()  # one writer connection, used from the server's worker threads
        self._reading = threading.Lock()
        self._group = GroupCommit(self._append)
        self._listener: psycopg.Connection[Any] | None = None  # opened by the first wait_for_writes
        self._listening = threading.Lock()
        self._closed = False
        opened: list[psycopg.Connection[Any]] = []
        try:
            self._db = psycopg.connect(url, autocommit=True)
            opened.append(self._db)
            self._make_schema()
            # Streams read the log while writers append: through a connection of their own.
            self._reader = psycopg.connect(url, autocommit=True)
            opened.append(self._reader)
            self._tree = MerkleTree(stored=self.leaves)
            with self._db.cursor(name="leaves") as cursor, self._db.transaction():
                cursor.itersize = LOAD_BATCH
                cursor.execute("SELECT leaf FROM events ORDER BY seq")
                while chunk := cursor.fetchmany(LOAD_BATCH):
                    self._tree.extend([bytes(leaf) for (leaf,) in chunk])
            through = self._db.execute("SELECT value::bigint FROM meta WHERE key = %s", (LATEST_THROUGH,)).fetchone()
        except BaseException as exc:
            for connection in opened:
                connection.close()
            if isinstance(exc, psycopg.Error):
                raise StoreError(f"cannot open the store at {self._name}: {exc}") from exc
            raise
        self._last = len(self._tree)
        Follower.__init__(self)
        self._latest = LatestKeeper(url)
        if through is None or through[0] < self._last:  # a node stopped before its keeper caught up (killed, say)
            self._latest.nudge()

    def _make_schema(self) -> None:
        """Make the tables in an empty database; refuse one of another schema version, naming the way on."""
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))  # two nodes starting on a new database
            version = schema_version(self._db)
            if version is None:
                try:
                    self._db.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise StoreError(
                        f"the database at {self._name} has no PostGIS and this user may not add it: as a superuser, "
                        "run CREATE EXTENSION postgis in it"
                    ) from exc
                self._db.execute(_TABLES)
                self._db.execute(_GEOMETRY)
                self._db.execute("INSERT INTO meta VALUES (%s, '0')", (LATEST_THROUGH,))
                self._db.execute("INSERT INTO meta VALUES ('schema_version', %s)", (str(SCHEMA_VERSION),))
            elif version < SCHEMA_VERSION:
                raise StoreError(
                    f"the store at {self._name} has schema version {version}; this version of deconfliction reads "
                    f"version {SCHEMA_VERSION}: back it up (pg_dump), then run deconflict migrate --db <its URL>"
                )
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store at {self._name} has schema version {version}, made by a newer deconfliction; "
                    f"this one reads version {SCHEMA_VERSION}"
                )

    @property
    def tree(self) -> MerkleTree:
        return self._tree

    def append(self, events: Sequence[Event]) -> list[int]:
        return self._append(events, synced=True)

    def _append(self, events: Sequence[Event], synced: bool) -> list[int]:
        encoded = encode(events)  # before the lock: a record waiting behind a large write waits for its insert alone
        records = only_records(encoded)
        with self._lock:
            self._open_or_fail()
            if not records:
                self._refuse_behind()
            for attempt in (1, 2):
                committing = False
                try:
                    db = self._writer()
                    with db.transaction():
                        if not synced:  # flushed by PostgreSQL's WAL writer moments later, or by the next synced commit
                            db.execute("SET LOCAL synchronous_commit TO OFF")
                        rows = self._write(db, encoded, records, events)
                        committing = True
                    break
                except psycopg.OperationalError as exc:
                    # A connection cut before the commit was sent (the database restarted, or failed over, since
                    # the last write) committed nothing: write again on a new one. Cut during the commit, the
                    # write may have landed: never asked twice, the caller hears the store failed.
                    if attempt == 1 and self._db.broken and not committing:
                        continue
                    raise StoreError(f"the store could not take the write: {exc}") from exc
                except psycopg.Error as exc:
                    raise StoreError(f"the store could not take the write: {exc}") from exc
            for r in rows:
                self._tree.append(r.leaf)
            self._last += len(rows)
        self._latest.nudge()
        return [r.seq for r in rows]

    def _write(
        self, db: psycopg.Connection[Any], encoded: Sequence[Encoded], records: bool, events: Sequence[Event]
    ) -> list[Row]:
        # One writer at a time across every node on the database; readers are not blocked.
        db.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        ends = 0 if row is None else int(row[0])
        if ends < self._last:
            raise StoreError(
                f"the database holds {ends} entries, fewer than the {self._last} this node has read: it "
                "lost acknowledged writes (a failover to a standby that was behind?). Nothing was written; "
                "compare the signed heads (deconflict ledger verify), then restart the nodes"
            )
        if ends != self._last:  # another node wrote first: its entries, for the picture and to number after them
            self._took([Row(*r) for r in db.execute(rows_after(self.MARK), (self._last,))])
            if not records:
                self._refuse_behind(ends)
        rows = placed(encoded, self._last + 1)
        write_rows(db, rows, events)
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(rows[-1].seq)))  # sent at commit
        return rows

    def catch_up(self) -> list[Event]:
        """What other nodes wrote since this node last read, in order; their leaves join this node's tree."""
        with self._lock:
            self._took([Row(*row) for row in self._read(rows_after(self.MARK), (self._last,))])
            return self.followed()

    def wait_for_writes(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for another commit's notification (or :meth:`wake_followers`); whether one came."""
        with self._listening:
            self._open_or_fail()
            return self._wait(timeout_s)

    def wake_followers(self) -> None:
        """Wake every node waiting in :meth:`wait_for_writes`, this one included (a node shutting down)."""
        with self._lock:
            self._open_or_fail()
            try:
                self._writer().execute("SELECT pg_notify(%s, '')", (CHANNEL,))
            except psycopg.Error as exc:
                raise StoreError(f"cannot notify the other nodes: {exc}") from exc

    def _open_or_fail(self) -> None:
        if self._closed:
            raise StoreError(f"the store at {self._name} is closed")

    def _wait(self, timeout_s: float) -> bool:
        try:
            if self._listener is None:
                self._listener = psycopg.connect(self.path, autocommit=True)
                self._listener.execute(f"LISTEN {CHANNEL}")
            return any(True for _ in self._listener.notifies(timeout=timeout_s, stop_after=1))
        except psycopg.Error as exc:
            if self._listener is not None:
                self._listener.close()
            self._listener = None
            raise StoreError(f"cannot listen for other nodes' writes: {exc}") from exc

    def append_grouped(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        """Like :meth:`append`, but shares one transaction with concurrent callers; ``synced=False`` commits it
        with ``synchronous_commit`` off."""
        return self._group.submit(events, synced)

    async def append_grouped_async(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        return await self._group.submit_async(events, synced)

    def load(self, after: int = 0) -> Iterator[Event]:
        query = """
            SELECT seq, type, time, party, data, sealed FROM events
            WHERE seq > %s AND seq <= %s AND type <> ALL(%s)
                AND (type <> %s OR seq IN (SELECT seq FROM latest) OR seq > (SELECT value::bigint FROM meta WHERE key = %s))
            ORDER BY seq
        """
        try:
            with self._reading, self._read_connection().transaction(), self._reader.cursor(name="load") as cursor:
                cursor.itersize = LOAD_BATCH
                cursor.execute(query, (after, self._last, list(RECORD_ONLY), SUPERSEDED, LATEST_THROUGH))
                for row in cursor:
                    yield event_from_row(*row)
        except psycopg.Error as exc:
            raise StoreError(f"cannot read the store: {exc}") from exc

    def history(self, until: int, area: Box | None = None) -> Iterator[Event]:
        """The events that rebuild the picture as entry ``until`` left it, in order; with ``area``, only the assets ever in it.

        The GiST index finds every asset reported inside ``area`` up to ``until``; of those
        only their registrations, withdrawals and newest report before ``until`` are read,
        with every event about no asset (parties, zones, AORs, activities, grants).
        """
        if area is None:
            yield from self._whole_history(until)
            return
        query = f"""
            WITH near AS MATERIALIZED (
                SELECT DISTINCT subject FROM events
                WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND type = %s AND seq <= %s
            ), chosen AS (
                SELECT seq FROM events WHERE subject IS NULL AND {_PICTURE} AND seq <= %s
                UNION ALL
                SELECT e.seq FROM near JOIN events e ON e.subject = near.subject AND e.seq <= %s AND e.type <> %s
                UNION ALL
                SELECT (SELECT seq FROM events e WHERE e.subject = near.subject AND e.type = %s AND e.seq <= %s
                        ORDER BY e.seq DESC LIMIT 1) FROM near
            )
            SELECT {EVENT_COLUMNS} FROM events WHERE seq IN (SELECT seq FROM chosen) ORDER BY seq
        """
        args = (*area, SUPERSEDED, until, until, until, SUPERSEDED, SUPERSEDED, until)
        yield from (event_from_row(*row) for row in self._read(query, args))

    def _read(self, query: str, args: Sequence[Any]) -> list[Any]:
        """A read; asked again once on a new connection if the one it used was cut (a failover, a restart of the
        database: its sessions are terminated and the next use finds out). A read changes nothing, so asking
        twice is safe; a write is never retried, as it may have committed."""
        try:
            with self._reading:
                self._open_or_fail()
                try:
                    return self._read_connection().execute(query, args).fetchall()
                except psycopg.OperationalError:
                    if not self._reader.broken:
                        raise
                    return self._read_connection().execute(query, args).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"cannot read the store: {exc}") from exc

    def add_head(self, head: dict[str, Any]) -> None:
        with self._lock:
            try:
                self._writer().execute(
                    "INSERT INTO heads (tree_size, root_hash, timestamp, signature) VALUES (%s, %s, %s, %s)",
                    tuple(head[f] for f in HEAD_FIELDS),
                )
            except psycopg.Error as exc:
                raise StoreError(f"the store could not keep the tree head: {exc}") from exc

    def signing_key(self, create: bool = True) -> Ed25519PrivateKey:
        """The key kept in the database (PKCS#8 PEM), made on first use unless ``create`` is False.

        Two nodes making it at once: the first insert wins and both read the same key back.
        """
        try:
            if create:
                pem = new_signing_key().private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
                with self._lock:
                    self._writer().execute("INSERT INTO signing_key VALUES (1, %s) ON CONFLICT (id) DO NOTHING", (pem.decode(),))
            row = self._read("SELECT pem FROM signing_key WHERE id = 1", ())
        except psycopg.Error as exc:
            raise StoreError(f"cannot read or make the signing key in {self._name}: {exc}") from exc
        if not row:
            raise StoreError(f"there is no signing key in {self._name}")
        key = serialization.load_pem_private_key(row[0][0].encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise StoreError(f"the signing key in {self._name} is not an Ed25519 key")
        return key

    # A database that went away (a restart, a failover) breaks the connections: the next use
    # opens new ones, so a node carries on by itself when the database is back.
    def _writer(self) -> psycopg.Connection[Any]:
        if self._db.closed or self._db.broken:
            self._db = psycopg.connect(self.path, autocommit=True)
        return self._db

    def _read_connection(self) -> psycopg.Connection[Any]:
        if self._reader.closed or self._reader.broken:
            self._reader = psycopg.connect(self.path, autocommit=True)
        return self._reader

    def close(self) -> None:
        """Close every connection, once no thread is using one (a follower waits at most its timeout)."""
        self._latest.close()
        with self._lock, self._reading, self._listening:
            self._closed = True
            if self._listener is not None:
                self._listener.close()
            self._reader.close()
            self._db.close()


def schema_version(db: psycopg.Connection[Any]) -> int | None:
    """The schema version of the store in ``db``, or None for a database without one."""
    found = db.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else int(row[0])


def geometry_of(event: Event) -> str | None:
    """Where an event's object is, as PostGIS reads it (hex EWKB, EPSG:4326); None for an event about no place."""
    d = event.data
    match event.type:
        case "report.accepted" if "lon" in d:
            # Packed here rather than by shapely: a report is the hot path, and WKB is parsed faster than text.
            return _POINT(1, _POINT_WITH_SRID, 4326, d["lon"], d["lat"]).hex()
        case "zone.declared" | "aor.declared" | "territory.loaded" if "area" in d:
            return _ewkb(shapely.geometry.shape(d["area"]))
        case "activity.proposed" if "volumes" in d:
            return _ewkb(shapely.GeometryCollection([shapely.geometry.shape(v["area"]) for v in d["volumes"]]))
    return None  # an event about no place (or a test's bare event)


_POINT = struct.Struct("<BIIdd").pack  # little-endian EWKB: byte order, type with the SRID flag, SRID, x, y
_POINT_WITH_SRID = 0x20000001


def _ewkb(geometry: Any) -> str:
    return str(shapely.to_wkb(shapely.set_srid(geometry, 4326), hex=True, include_srid=True))


def write_rows(db: psycopg.Connection[Any], rows: Sequence[Row], events: Sequence[Event]) -> None:
    """Insert ``rows`` (made from ``events``) with their geometry, in the caller's transaction.

    COPY, not one INSERT per row: it is what lets a batch of reports in at tens of thousands a second.
    """
    with db.cursor() as cursor, cursor.copy(f"COPY events ({ROW_COLUMNS}, geom) FROM STDIN") as copy:
        for r, e in zip(rows, events, strict=True):
            copy.write_row((*r.values(), geometry_of(e)))


_PLACING = _sql_types((SUPERSEDED, *WITHDRAWN))
"""The types of the events that place an asset or take its position away, as SQL."""


def _bringing_latest(first: str, last: str) -> str:
    """The steps (SQL ``WITH`` queries) that bring ``latest`` to the log's entries ``first`` to ``last`` (SQL expressions)."""
    return f"""
    last AS (
        SELECT DISTINCT ON (subject) subject, seq, type, geom FROM events
        WHERE seq BETWEEN {first} AND {last} AND subject IS NOT NULL AND type IN ({_PLACING})
        ORDER BY subject, seq DESC
    ), moved AS (
        INSERT INTO latest (subject, seq, geom) SELECT subject, seq, geom FROM last WHERE type = '{SUPERSEDED}'
        ON CONFLICT (subject) DO UPDATE SET seq = EXCLUDED.seq, geom = EXCLUDED.geom
    ), gone AS (
        DELETE FROM latest WHERE subject IN (SELECT subject FROM last WHERE type <> '{SUPERSEDED}')
    )"""


_LATEST = f"WITH {_bringing_latest('%(first)s', '%(last)s')} SELECT NULL"

# One statement, one round trip: the keeper's thread takes the interpreter once a pass, not once a step. The mark's
# row is locked first (two nodes' keepers take turns); writers take turns under a lock held to their commit, so what is
# committed, the statement's view of ``events``, is always a whole prefix of the log.
_KEEP_LATEST = f"""
WITH mark AS (
    SELECT value::bigint AS through FROM meta WHERE key = '{LATEST_THROUGH}' FOR UPDATE
), log AS (
    SELECT COALESCE(MAX(seq), 0) AS last FROM events
), {_bringing_latest("(SELECT through FROM mark) + 1", "(SELECT last FROM log)")}
UPDATE meta SET value = (SELECT last FROM log)::text
WHERE key = '{LATEST_THROUGH}' AND (SELECT last FROM log) > (SELECT through FROM mark)
"""


def update_latest(cursor: psycopg.Cursor[Any], first: int, last: int) -> None:
    """Bring ``latest`` to the log's entries ``first`` to ``last`` (written before, or in this transaction): each asset's
    newest report among them replaces its row, a withdrawal after it removes it.

    The database reads the rows it already holds rather than being sent them a second time: the
    client spent as long building that second copy in Python as the server spends reading it back.
    """
    cursor.execute(_LATEST, {"first": first, "last": last})


def bring_latest_up_to_date(db: psycopg.Connection[Any]) -> None:
    """Bring ``latest`` from the entry after ``latest_through`` to the log's last committed entry, and the mark with it.

    One statement, so one transaction: ``latest`` and its mark are kept or lost together. ``db``
    commits without waiting for the disk (the keeper's connection): what ``latest`` is made from,
    the log, is durable already.
    """
    db.execute(_KEEP_LATEST)


class LatestKeeper:
    """Brings ``latest`` up to the log after commits, in a thread and on a connection of its own.

    Off the writer's path on purpose. Kept in each write's own transaction, ``latest`` cost the database
    as much again as the rest of a batch of reports (9.5 of 18 µs a report) while the writer waited on it;
    kept here, it is done on the database's core while the writer's next batch is validated. A start
    reads every report after ``latest_through`` whole, so a ``latest`` left behind (a failed update, a
    node killed) costs a start some rows, never a report.

    The thread ends after a second without writes, closing its connection, and the next write starts
    it again: a node at rest holds no connection for it. A failed update is logged and tried again at
    the next write.
    """

    IDLE_S = 1.0
    GATHER_S = 0.05
    """After a write, how long more writes may gather before ``latest`` is brought up: one statement for a stream of
    writes (each check's record is one), not one each, which took the database's time from the writes themselves."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._due = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()  # guards _thread, and the decision to stop
        self._thread: threading.Thread | None = None

    def nudge(self) -> None:
        """The log grew: bring ``latest`` up to it soon."""
        self._due.set()
        with self._lock:
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(target=self._run, name="deconflict-latest", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Bring ``latest`` up to the log once more if the thread is running (GIS clients find it current after a
        node stops), then stop it."""
        with self._lock:
            self._stopped.set()
            thread = self._thread
            self._due.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        db: psycopg.Connection[Any] | None = None
        try:
            while self._next():
                if db is None:
                    db = psycopg.connect(self._url, autocommit=True)
                    db.execute("SET synchronous_commit TO OFF")
                bring_latest_up_to_date(db)
        except psycopg.Error as exc:
            log.warning("latest could not be brought up to the log (a start reads the reports after it whole): %s", exc)
            with self._lock:
                self._thread = None
        finally:
            if db is not None:
                db.close()

    def _next(self) -> bool:
        """Wait for a write; whether to bring ``latest`` up once more, or end the thread (idle, or stopping)."""
        if not self._stopped.is_set() and self._due.wait(self.IDLE_S):
            self._stopped.wait(self.GATHER_S)
        with self._lock:  # decided under the lock a nudge takes: a write now starts a new thread, or this one sees it
            if not self._due.is_set():
                self._thread = None
                return False
            self._due.clear()
            return True
