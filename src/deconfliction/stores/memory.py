"""A store that keeps the log in a list: for tests that need no disk, nothing else."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deconfliction.geo import Box
from deconfliction.ledger.merkle import MerkleTree
from deconfliction.model import Event
from deconfliction.stores.base import RECORD_ONLY, SUPERSEDED, Row, event_from_row, new_signing_key, newest_reports, rows_for


class MemoryStore:
    """The log in memory; same contract as :class:`~deconfliction.stores.sqlite.SQLiteStore`."""

    def __init__(self) -> None:
        self._rows: list[Row] = []
        self._heads: list[dict[str, Any]] = []
        self._tree = MerkleTree()
        self._key = new_signing_key()
        self._lock = threading.Lock()  # appends come from request threads and the group-commit writer

    @property
    def tree(self) -> MerkleTree:
        return self._tree

    def append(self, events: Sequence[Event]) -> list[int]:
        with self._lock:
            rows = rows_for(events, len(self._rows) + 1)  # encodes like the SQLite store, so refuses what it would
            self._rows.extend(rows)
            for r in rows:
                self._tree.append(r.leaf)
        return [r.seq for r in rows]

    def append_grouped(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        return self.append(events)

    async def append_grouped_async(self, events: Sequence[Event], synced: bool = True) -> list[int]:
        return self.append(events)

    def _event(self, r: Row) -> Event:
        return event_from_row(r.seq, r.type, r.time, r.party, r.data, r.sealed)

    def load(self, after: int = 0) -> Iterator[Event]:
        newest = newest_reports(self._rows)
        for r in self._rows[after:]:
            if r.type in RECORD_ONLY or (r.type == SUPERSEDED and newest.get(str(r.subject)) != r.seq):
                continue
            yield self._event(r)

    def history(self, until: int, area: Box | None = None) -> Iterator[Event]:
        return (self._event(r) for r in self._rows[:until] if r.type not in RECORD_ONLY)

    def events(self, after: int = 0, limit: int = 1000, types: Sequence[str] = ()) -> list[Event]:
        chosen = [r for r in self._rows[after:] if not types or r.type in types]
        return [self._event(r) for r in chosen[:limit]]

    def rows(self, start: int, end: int) -> list[Row]:
        return self._rows[start:end]

    def last_seq(self) -> int:
        return len(self._rows)

    def add_head(self, head: dict[str, Any]) -> None:
        self._heads.append(dict(head))

    def heads(self) -> list[dict[str, Any]]:
        return [dict(h) for h in self._heads]

    def signing_key(self, create: bool = True) -> Ed25519PrivateKey:
        return self._key

    def close(self) -> None:
        pass
