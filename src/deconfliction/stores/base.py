"""The store interface: an append-only event log from which the picture is rebuilt."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
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


class Store(Protocol):
    """Durable, ordered storage of events. Implementations: SQLite (default) and memory (tests)."""

    def append(self, events: Sequence[Event]) -> list[int]:
        """Write all events in one transaction, durably, and return their sequence numbers."""
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
