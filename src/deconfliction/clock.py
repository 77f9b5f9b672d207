"""Time comes from an injected clock, so that replay and tests control it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, an aware UTC datetime."""
        ...


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: ``ManualClock(start).advance_to(t)``."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance_to(self, instant: datetime) -> None:
        """Move forward to ``instant``; the clock never moves back."""
        if instant < self._now:
            raise ValueError(f"the clock cannot move back from {self._now.isoformat()} to {instant.isoformat()}")
        self._now = instant
