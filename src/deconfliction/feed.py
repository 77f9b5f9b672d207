"""Wakes the live event streams when the log grows.

The log itself is the stream: a subscriber reads the store from its cursor and shows
what its party may see. This module only tells subscribers, from whichever thread
committed, that there is something new to read, so they need not poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Subscription:
    """One stream's wake-up signal, set from any thread, awaited on the stream's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.signal = asyncio.Event()

    async def wait(self, timeout_s: float) -> bool:
        """True when woken, False when ``timeout_s`` passed first; the signal is then re-armed."""
        try:
            await asyncio.wait_for(self.signal.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self.signal.clear()


class Feed:
    """``feed.publish()`` after a commit wakes every subscription."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """Subscribe before reading the log, so that nothing committed after the read is missed."""
        subscription = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscriptions.discard(subscription)

    def publish(self) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for s in subscriptions:
            with contextlib.suppress(RuntimeError):  # its loop has closed: the stream is gone
                s.loop.call_soon_threadsafe(s.signal.set)
