"""A store that keeps the log in a list: for tests that need no disk, nothing else."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from deconfliction.model import Event
from deconfliction.stores.base import RECORD_ONLY, SUPERSEDED, canonical_json, subject_of


class MemoryStore:
    """The log in memory; same contract as :class:`~deconfliction.stores.sqlite.SQLiteStore`."""

    def __init__(self) -> None:
        self._log: list[Event] = []

    def append(self, events: Sequence[Event]) -> list[int]:
        for e in events:
            canonical_json(e.data)  # refuse what the SQLite store would refuse
        start = len(self._log)
        self._log.extend(replace(e, seq=start + i + 1) for i, e in enumerate(events))
        return [start + i + 1 for i in range(len(events))]

    def append_grouped(self, events: Sequence[Event]) -> list[int]:
        return self.append(events)

    async def append_grouped_async(self, events: Sequence[Event]) -> list[int]:
        return self.append(events)

    def load(self) -> Iterator[Event]:
        newest = {subject_of(e): e.seq for e in self._log if e.type == SUPERSEDED}
        for e in self._log:
            if e.type in RECORD_ONLY or (e.type == SUPERSEDED and newest[subject_of(e)] != e.seq):
                continue
            yield e

    def events(self, after: int = 0, limit: int = 1000, types: Sequence[str] = ()) -> list[Event]:
        chosen = [e for e in self._log[after:] if not types or e.type in types]
        return chosen[:limit]

    def last_seq(self) -> int:
        return len(self._log)

    def close(self) -> None:
        pass
