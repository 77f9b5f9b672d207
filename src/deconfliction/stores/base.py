"""The store interface: an append-only event log from which the picture is rebuilt."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from deconfliction.model import Event

# Events that change nothing in the picture; the log keeps them, start-up skips them.
RECORD_ONLY = ("check.asked",)
# Of these, only the newest per subject matters for the current picture.
SUPERSEDED = "report.accepted"


def canonical_json(data: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: one byte string per event, for the ledger later."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def subject_of(event: Event) -> str | None:
    """The object an event is about, so that superseded reports can be skipped on load."""
    if event.type == SUPERSEDED:
        return f"{event.data['party']}/{event.data['asset']}"
    return None


class GroupCommit:
    """Group commit: concurrent appends share one transaction and so one disk sync.

    The first caller to find no commit under way becomes the leader: it takes every
    queued batch, writes them in one ``write`` call, and hands each caller its sequence
    numbers (or the error). Everyone else waits. Under load, one sync then serves many
    checks instead of one; alone, a caller commits at once.
    """

    def __init__(self, write: Callable[[Sequence[Event]], list[int]]) -> None:
        self._write = write
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False

    def submit(self, events: Sequence[Event]) -> list[int]:
        mine = _Pending(list(events))
        with self._cond:
            self._queue.append(mine)
            while not mine.done and self._busy:
                self._cond.wait()
            if mine.done:
                return mine.result()
            batch, self._queue, self._busy = self._queue, [], True
        try:
            seqs = self._write([e for pending in batch for e in pending.events])
            for pending in batch:
                pending.seqs, seqs = seqs[: len(pending.events)], seqs[len(pending.events) :]
        except BaseException as exc:
            for pending in batch:
                pending.error = exc
        with self._cond:
            for pending in batch:
                pending.done = True
            self._busy = False
            self._cond.notify_all()
        return mine.result()


class _Pending:
    __slots__ = ("done", "error", "events", "seqs")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.seqs: list[int] = []
        self.error: BaseException | None = None
        self.done = False

    def result(self) -> list[int]:
        if self.error is not None:
            raise self.error
        return self.seqs


class Store(Protocol):
    """Durable, ordered storage of events. Implementations: SQLite (default) and memory (tests)."""

    def append(self, events: Sequence[Event]) -> list[int]:
        """Write all events in one transaction, durably, and return their sequence numbers."""
        ...

    def append_grouped(self, events: Sequence[Event]) -> list[int]:
        """As ``append``, durably, possibly in one transaction with other callers' events."""
        ...

    def load(self) -> Iterator[Event]:
        """Every event needed to rebuild the current picture, in sequence order."""
        ...

    def events(self, after: int = 0, limit: int = 1000, types: Sequence[str] = ()) -> list[Event]:
        """The log from ``after`` on, optionally only some types."""
        ...

    def close(self) -> None: ...


def event_from_row(seq: int, type_: str, time: str, party: str | None, data: str) -> Event:
    return Event(type=type_, time=datetime.fromisoformat(time), party=party, data=json.loads(data), seq=seq)
