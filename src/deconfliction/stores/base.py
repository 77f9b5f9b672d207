"""The store interface: an append-only event log from which the picture is rebuilt."""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deconfliction.errors import Behind, StoreError
from deconfliction.geo import Box
from deconfliction.ledger.merkle import MerkleTree, leaf_hash
from deconfliction.ledger.seal import Sealed, canonical_json, entry_bytes, parts_json, seal, unseal
from deconfliction.model import Event

# Events that change nothing in the picture; the log keeps them, start-up skips them.
RECORD_ONLY = ("check.asked", "conflict.detected", "activity.outside_notified_volume", "psi.answered")
# Of these, only the newest per subject matters for the current picture.
SUPERSEDED = "report.accepted"


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field through object.__setattr__, on the ingest path
class Row:
    """One event as the store keeps it: the public data of its ledger entry, its sealed parts, its leaf hash."""

    seq: int
    type: str
    time: str
    party: str | None
    subject: str | None
    data: str  # canonical JSON of the public data
    sealed: str | None  # JSON list of sealed parts, or None
    leaf: bytes

    def values(self) -> tuple[int, str, str, str | None, str | None, str, str | None, bytes]:
        """The row's values in the order of ``ROW_COLUMNS``."""
        return (self.seq, self.type, self.time, self.party, self.subject, self.data, self.sealed, self.leaf)

    @property
    def entry(self) -> bytes:
        """The leaf's bytes: the public entry, exactly as hashed."""
        return entry_bytes(self.seq, self.time, self.party, self.type, self.data)


@dataclass(slots=True)
class Encoded:
    """An event sealed and encoded as its row holds it, before it has a place in the log (a sequence number, a leaf).

    Sealing and encoding are most of the work of a large write and need no place yet: a store
    does them before it takes its write lock, so that a check's record that arrives meanwhile
    waits for the batch's insert alone (:func:`placed` does the rest under the lock).
    """

    type: str
    time: str
    party: str | None
    subject: str | None
    data: str  # canonical JSON of the public data
    sealed: str | None  # JSON list of sealed parts, or None


def encode(events: Sequence[Event]) -> list[Encoded]:
    """Each event sealed and encoded once."""
    encoded = []
    times: dict[datetime, str] = {}  # the events of one write share their time: format it once
    for e in events:
        time = times.get(e.time) or times.setdefault(e.time, e.time.isoformat())
        public, parts = seal(e)
        sealed = parts_json(parts) if parts else None
        encoded.append(Encoded(e.type, time, e.party, subject_of(e), canonical_json(public), sealed))
    return encoded


def placed(encoded: Sequence[Encoded], first_seq: int) -> list[Row]:
    """The rows of encoded events about to be appended from ``first_seq`` on: each entry's bytes hashed into its leaf."""
    rows = []
    for seq, e in enumerate(encoded, first_seq):
        leaf = leaf_hash(entry_bytes(seq, e.time, e.party, e.type, e.data))
        rows.append(Row(seq, e.type, e.time, e.party, e.subject, e.data, e.sealed, leaf))
    return rows


def rows_for(events: Sequence[Event], first_seq: int) -> list[Row]:
    """The rows of events about to be appended from ``first_seq`` on: each sealed, encoded and hashed once."""
    return placed(encode(events), first_seq)


def sealed_parts(sealed: str | None) -> list[Sealed]:
    return [Sealed.from_json(p) for p in orjson.loads(sealed)] if sealed else []


ABOUT_AN_ASSET = ("asset.registered", "asset.withdrawn", "position.withdrawn", SUPERSEDED)
"""The events whose subject is an asset, ``party/asset``."""


def subject_of(event: Event) -> str | None:
    """The asset an event is about: start-up skips superseded reports by it, a history of an area keeps the assets seen there."""
    if event.type == SUPERSEDED:
        return f"{event.data['party']}/{event.data['asset']}"
    if event.type in ABOUT_AN_ASSET:
        return f"{event.data['party']}/{event.data['id']}"
    return None


def newest_reports(rows: Sequence[Row]) -> dict[str, int]:
    """Of ``rows``, the newest report of each asset: its subject and sequence number, for the ``latest`` table."""
    return {r.subject: r.seq for r in rows if r.type == SUPERSEDED and r.subject is not None}


_Gathered = list[tuple[list[Event], asyncio.Future[list[int]]]]
"""The appends gathered in one turn of an event loop, each with the future its caller awaits."""


class GroupCommit:
    """Group commit: appends queued while a transaction is being synced share the next one.

    One writer thread takes everything queued, writes it with one ``write`` call (one
    transaction, one disk sync, or none if no caller asked to wait for it) and hands each
    caller its sequence numbers or the error.
    Under load one sync serves many checks instead of one; alone, a caller commits at
    once. Callers wait on a thread event (:meth:`submit`) or an asyncio future
    (:meth:`submit_async`), so the HTTP server needs no worker thread per check.

    On an event loop, the appends that need no sync (checks' records) are first gathered for
    the rest of the loop's turn and written together as it ends (:meth:`submit_async`): by
    ``write_now`` on the loop's own thread when it can write without waiting (it returns None
    when it cannot: then the writer thread takes them, as one append).
    """

    def __init__(
        self,
        write: Callable[[Sequence[Event], bool], list[int]],
        write_now: Callable[[Sequence[Event]], list[int] | None] | None = None,
    ) -> None:
        self._write = write
        self._write_now = write_now
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._gathered: dict[asyncio.AbstractEventLoop, _Gathered] = {}
        self._flushes: set[asyncio.Task[None]] = set()  # held until done: the loop keeps only weak references

    def _ensure_writer(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                    self._thread.start()

    def submit(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        pending = _Pending(list(events), synced, threading.Event())
        self._ensure_writer()
        self._queue.put(pending)
        assert pending.waiter is not None
        pending.waiter.wait()
        return pending.result()

    async def submit_async(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        """:meth:`submit` for an event loop; an append that needs no sync waits for the end of the loop's turn.

        Under load a turn of the loop runs the checks of several requests one after another
        (each up to its record), then writes their records in one transaction (7 a write with
        one process under wrk's 16 connections, 3.7 with two workers), then sends their answers.
        The checks' own work runs with the caches the one before left warm, and a write's cost
        (a statement, a commit; with two workers, reading the other's entries first) is shared.
        Measured at 100k assets (2026-12-08, AMD EPYC, the code before and this in turn): the app
        in one process asked by 16 concurrent clients, 344 to 371 against 432 to 444 µs of CPU
        a check (three runs each); two workers under wrk, ten runs of 10 s each way, the median
        2,991 against 2,812 checks/s, the workers' CPU a check 101 µs less in the median pair.
        """
        if synced:
            return await self._submit_to_writer(list(events), synced)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        gathered = self._gathered.setdefault(loop, [])
        gathered.append((list(events), future))
        if len(gathered) == 1:  # the first of this turn: the write is made once the turn's callbacks have run
            flush = loop.create_task(self._flush(loop))
            self._flushes.add(flush)
            flush.add_done_callback(functools.partial(self._flushed, loop, gathered))
        return await future

    def _flushed(self, loop: asyncio.AbstractEventLoop, gathered: _Gathered, flush: asyncio.Task[None]) -> None:
        self._flushes.discard(flush)
        if flush.cancelled():  # the loop is stopping, before or while the write was made: so are the requests that wait
            if self._gathered.get(loop) is gathered:  # before it ran: nothing was written
                del self._gathered[loop]
            for _, future in gathered:
                future.cancel()

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        gathered = self._gathered.pop(loop)
        events = [e for own, _ in gathered for e in own]
        try:
            seqs = self._write_now(events) if self._write_now is not None else None
            if seqs is None:
                seqs = await self._submit_to_writer(events, False)
        except Exception as exc:  # each waiter gets the error, as from the writer thread
            for _, future in gathered:
                if not future.done():
                    future.set_exception(exc)
            return
        for own, future in gathered:
            if not future.done():  # the request that waits may have been cancelled meanwhile
                future.set_result(seqs[: len(own)])
            seqs = seqs[len(own) :]

    async def _submit_to_writer(self, events: list[Event], synced: bool) -> list[int]:
        loop = asyncio.get_running_loop()
        pending = _Pending(events, synced, None, loop, loop.create_future())
        self._ensure_writer()
        self._queue.put(pending)
        assert pending.future is not None
        await pending.future
        return pending.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                seqs = self._write([e for pending in batch for e in pending.events], any(p.synced for p in batch))
                for pending in batch:
                    pending.seqs, seqs = seqs[: len(pending.events)], seqs[len(pending.events) :]
            except BaseException as exc:  # handed to every waiter: the writer itself goes on
                for pending in batch:
                    pending.error = exc
            for pending in batch:
                pending.wake()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # the awaiting request may have been cancelled meanwhile
        future.set_result(None)


class _Pending:
    __slots__ = ("error", "events", "future", "loop", "seqs", "synced", "waiter")

    def __init__(
        self,
        events: list[Event],
        synced: bool,
        waiter: threading.Event | None,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.events = events
        self.synced = synced
        self.waiter = waiter
        self.loop = loop
        self.future = future
        self.seqs: list[int] = []
        self.error: BaseException | None = None

    def wake(self) -> None:
        if self.waiter is not None:
            self.waiter.set()
        elif self.loop is not None and self.future is not None:
            self.loop.call_soon_threadsafe(_resolve, self.future)

    def result(self) -> list[int]:
        if self.error is not None:
            raise self.error
        return self.seqs


class Store(Protocol):
    """Durable, ordered storage of events. Implementations: SQLite (default) and memory (tests)."""

    def append(self, events: Sequence[Event]) -> list[int]:
        """Write all events in one transaction, durably, and return their sequence numbers."""
        ...

    def append_grouped(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        """As ``append``, possibly in one transaction with other callers' events.

        ``synced=False`` may return once the transaction is committed (it survives the process
        being killed) and before it is synced (it survives a power cut): a check's record, whose
        answer must not wait for a slow disk. The store syncs it moments later, and before any
        signed head covers it.
        """
        ...

    async def append_grouped_async(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        """As ``append_grouped``, awaited from an event loop."""
        ...

    def load(self, after: int = 0) -> Iterator[Event]:
        """Every event needed to rebuild the current picture, in sequence order; with ``after``, only those after that entry.

        Of each asset's reports, the newest at least: a store may give older ones as well (PostgreSQL's
        ``latest`` may be moments behind the log), which applied in order make the same picture.
        ``after`` is where a snapshot ends: the picture it holds plus these is the current one.
        Only up to the entries the store's tree holds (``len(tree)``): what another process writes
        meanwhile is for :meth:`catch_up` (a node on PostgreSQL), never read twice.
        """
        ...

    def history(self, until: int, area: Box | None = None) -> Iterator[Event]:
        """The events that rebuild the picture as entry ``until`` left it, in order (record-only events left out).

        With ``area`` (lon/lat) a store may leave out the events of assets never reported
        inside it: a store with a spatial index answers an area's past without the whole log.
        """
        ...

    def events(self, after: int = 0, limit: int = 1000, types: Sequence[str] = ()) -> list[Event]:
        """The log from ``after`` on, optionally only some types."""
        ...

    def last_seq(self) -> int:
        """The sequence number of the newest event (0: the log is empty)."""
        ...

    @property
    def tree(self) -> MerkleTree:
        """The Merkle tree over every entry, in log order (entry i is the event of seq i + 1)."""
        ...

    def rows(self, start: int, end: int) -> list[Row]:
        """The stored rows of entries ``start`` to ``end`` (exclusive), indices from 0."""
        ...

    def add_head(self, head: dict[str, Any]) -> None:
        """Keep a signed tree head ``{tree_size, root_hash, timestamp, signature}``."""
        ...

    def heads(self) -> list[dict[str, Any]]:
        """Every signed tree head kept, oldest first."""
        ...

    def signing_key(self, create: bool = True) -> Ed25519PrivateKey:
        """The node's Ed25519 key that signs tree heads (made on first use unless ``create`` is False)."""
        ...

    def close(self) -> None: ...


HISTORY_PAGE = 10_000
"""Entries read at a time by a history: memory stays flat whatever the log's length."""

HEAD_FIELDS = ("tree_size", "root_hash", "timestamp", "signature")
"""A signed tree head as the stores keep it, column by column."""


def event_from_row(seq: int, type_: str, time: str, party: str | None, data: str, sealed: str | None) -> Event:
    """The event a stored row holds, with its sealed parts put back: the service works on full events."""
    full = unseal(orjson.loads(data), sealed_parts(sealed))
    return Event(type=type_, time=datetime.fromisoformat(time), party=party, data=full, seq=seq)


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def only_records(events: Iterable[Event] | Iterable[Encoded]) -> bool:
    """Whether a write holds records alone (checks, notices): it changes nothing in the picture, so nothing it says
    depends on entries another node wrote meanwhile, and it may be numbered after them."""
    return all(e.type in RECORD_ONLY for e in events)


class Follower:
    """A store's part in following the other nodes (processes) that write to the same log.

    Their entries join this node's tree as they are read: when this node writes (its own come
    after them) or catches up. The service applies them to its picture once :meth:`followed` hands
    them over; until then a write that changes the picture is refused as behind, since it would
    have been validated against a picture without them.
    """

    _tree: MerkleTree
    _last: int  # the log's entries this node has read or written, all in its tree
    _followed: list[Row]  # read, not yet handed to the service
    _recorded: Counter[tuple[str, str]]  # the others' records by type and party, not yet handed to the service
    _lock: threading.Lock  # the store's, held by every writer

    def __init__(self) -> None:
        self._followed = []
        self._recorded = Counter()

    # Each store's own: how it reads the others' entries, and learns that there are some.
    def catch_up(self) -> list[Event]:
        """What the others wrote since this node last read that changes the picture, in order."""
        raise NotImplementedError

    def wait_for_writes(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for another node's commit (or :meth:`wake_followers`); whether one came."""
        raise NotImplementedError

    def wake_followers(self) -> None:
        """End :meth:`wait_for_writes` now (the node is stopping)."""
        raise NotImplementedError

    def settled(self) -> int:
        """How many of the log's first entries the service's picture has all of: the size a snapshot of it may
        claim. Short of the tree's size while a record's write has read others' entries the picture lacks."""
        with self._lock:
            return self._applied()

    def _applied(self) -> int:
        """How many of the log's first entries have been handed to the service; the caller holds the lock."""
        return self._followed[0].seq - 1 if self._followed else self._last

    def _took(self, rows: Sequence[Row]) -> None:
        """``rows``, read from the log after this node's last entry, join its tree."""
        for r in rows:
            if r.seq != self._last + 1:
                raise StoreError(f"the log skips from entry {self._last} to {r.seq}; nothing was read past it")
            self._tree.append(r.leaf)
            self._last = r.seq
            if r.type in RECORD_ONLY and r.party is not None:
                self._recorded[r.type, r.party] += 1
        self._followed.extend(rows)

    def recorded_elsewhere(self) -> Counter[tuple[str, str]]:
        """How many records of each type the other nodes wrote for each party since the last call (checks asked,
        private cross-checks answered): read from their public columns, nothing decoded, for the budgets that
        every node keeps of what a party asks."""
        with self._lock:
            recorded, self._recorded = self._recorded, Counter()
        return recorded

    def followed(self) -> list[Event]:
        """The other nodes' entries read since the last call that change the picture, in order; the caller holds the
        store's lock. Their records (checks, notices) are left out: most of what they write, each one long to decode."""
        rows, self._followed = self._followed, []
        return [event_from_row(r.seq, r.type, r.time, r.party, r.data, r.sealed) for r in rows if r.type not in RECORD_ONLY]

    def _refuse_behind(self, log_ends_at: int | None = None) -> None:
        """Refuse a write that changes the picture while the picture lacks entries another node wrote."""
        if self._followed or (log_ends_at is not None and log_ends_at != self._last):
            ends = self._last if log_ends_at is None else log_ends_at
            raise Behind(
                f"another node wrote first (the log ends at {ends}, this node's picture has read to {self._applied()}); "
                "nothing was written: ask again in a moment"
            )


ROW_COLUMNS = "seq, type, time, party, subject, data, sealed, leaf"
ROW_WIDTH = len(ROW_COLUMNS.split(","))
"""The columns of an event row, in :class:`Row`'s order."""
EVENT_COLUMNS = "seq, type, time, party, data, sealed"
"""The columns :func:`event_from_row` takes."""


def rows_after(mark: str) -> str:
    """The query for every row after an entry (the parameter ``mark``), in order: what other nodes wrote."""
    return f"SELECT {ROW_COLUMNS} FROM events WHERE seq > {mark} ORDER BY seq"


class SqlReads:
    """The reads both SQL stores make alike, written once in the store's placeholder style (``MARK``).

    A store gives ``_read`` (one query on its reading connection, errors as
    :class:`~deconfliction.errors.StoreError`) and the column its heads are ordered by.
    """

    MARK: str  # "?" (SQLite) or "%s" (psycopg)
    HEADS_ORDER: str  # the column that keeps heads in the order they were added

    def _read(self, query: str, args: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _marks(self, count: int) -> str:
        return ", ".join([self.MARK] * count)

    def _whole_history(self, until: int) -> Iterator[Event]:
        """Every picture event up to entry ``until``, read a page of sequence numbers at a time."""
        m = self.MARK
        query = f"""
            SELECT {EVENT_COLUMNS} FROM events
            WHERE seq > {m} AND seq <= {m} AND type NOT IN ({self._marks(len(RECORD_ONLY))}) ORDER BY seq
        """
        for start in range(0, until, HISTORY_PAGE):
            rows = self._read(query, (start, min(until, start + HISTORY_PAGE), *RECORD_ONLY))
            yield from (event_from_row(*row) for row in rows)

    def events(self, after: int = 0, limit: int = 1000, types: Sequence[str] = ()) -> list[Event]:
        m = self.MARK
        where = f"seq > {m}" + (f" AND type IN ({self._marks(len(types))})" if types else "")
        query = f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} ORDER BY seq LIMIT {m}"
        return [event_from_row(*row) for row in self._read(query, (after, *types, limit))]

    def rows(self, start: int, end: int) -> list[Row]:
        query = f"SELECT {ROW_COLUMNS} FROM events WHERE seq > {self.MARK} AND seq <= {self.MARK} ORDER BY seq"
        return [Row(*row) for row in self._read(query, (start, end))]

    def last_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM events", ())[0][0])

    def leaves(self, start: int, end: int) -> bytes:
        """The leaf hashes of entries ``start`` to ``end - 1``, one after another: the tree's blocks not kept in memory."""
        rows = self._read(f"SELECT leaf FROM events WHERE seq > {self.MARK} AND seq <= {self.MARK} ORDER BY seq", (start, end))
        return b"".join(bytes(leaf) for (leaf,) in rows)

    def heads(self) -> list[dict[str, Any]]:
        rows = self._read(f"SELECT {', '.join(HEAD_FIELDS)} FROM heads ORDER BY {self.HEADS_ORDER}", ())
        return [dict(zip(HEAD_FIELDS, row, strict=True)) for row in rows]
