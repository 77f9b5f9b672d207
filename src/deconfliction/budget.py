"""Budgets: how much of something (checks, private cross-checks) each party may ask for, as a token bucket.

A party may spend ``burst`` at once; its budget then refills at ``rate_per_s``. A refused
request gets :class:`~deconfliction.errors.RateLimited` with the wait until the next one
is allowed (HTTP: 429 with ``Retry-After``). Budgets live in memory: a restart refills them.
Nodes (and workers) on one store tell each other what they spent through the log
(:meth:`Budget.spent_elsewhere`), so a party's budget is one across them, a few milliseconds late.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime

from deconfliction.clock import Clock, SystemClock
from deconfliction.errors import RateLimited


class Budget:
    """A token bucket per party: ``Budget(rate_per_s, burst, what="checks")``; a rate of 0 means no limit."""

    def __init__(self, rate_per_s: float, burst: int, what: str, clock: Clock | None = None) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.what = what
        self.clock = clock or SystemClock()
        self._buckets: dict[str, tuple[float, datetime]] = {}
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return self.rate_per_s <= 0

    def _left(self, party: str, now: datetime) -> float:
        """What ``party`` has left at ``now``, refilled since it last spent; under the lock."""
        tokens, since = self._buckets.get(party, (float(self.burst), now))
        return min(float(self.burst), tokens + max(0.0, (now - since).total_seconds()) * self.rate_per_s)

    def _refuse(self, party: str, tokens: float) -> RateLimited:
        wait = (1.0 - tokens) / self.rate_per_s
        return RateLimited(
            f"{party} has used its {self.burst} {self.what}; one more is allowed every "
            f"{1 / self.rate_per_s:g} s, the next in {math.ceil(wait)} s",
            wait,
        )

    def check(self, party: str) -> None:
        """Refuse (as :meth:`take` would) if ``party`` has nothing left, without spending."""
        if self.unlimited:
            return
        with self._lock:
            tokens = self._left(party, self.clock.now())
        if tokens < 1.0:
            raise self._refuse(party, tokens)

    def take(self, party: str) -> None:
        """Spend one of ``party``'s, or refuse with when the next one is allowed."""
        if self.unlimited:
            return
        with self._lock:
            now = self.clock.now()
            tokens = self._left(party, now)
            if tokens < 1.0:
                self._buckets[party] = (tokens, now)
                raise self._refuse(party, tokens)
            self._buckets[party] = (tokens - 1.0, now)

    def give_back(self, party: str) -> None:
        """Return one that :meth:`take` spent on something that did not happen after all (a write refused as
        behind, nothing written, which is then tried again and spends anew)."""
        if self.unlimited:
            return
        with self._lock:
            now = self.clock.now()
            self._buckets[party] = (min(float(self.burst), self._left(party, now) + 1.0), now)

    def spent_elsewhere(self, party: str, count: int) -> None:
        """``party`` spent ``count`` on another node: spend them here too, never refused, below nothing if need be
        (it then waits here as long as it would have there)."""
        if self.unlimited:
            return
        with self._lock:
            now = self.clock.now()
            self._buckets[party] = (self._left(party, now) - count, now)
