"""Wake-ups for lease requests waiting on work, so they need not poll the database.

A write transaction that makes a proposal leasable (authorized: by policy, by approvals, or
requeued) marks itself; once it commits, the longest-waiting lease request is woken and
looks again at once. One request per new proposal: waking them all would have every waiting
runner race for the write lock to find, all but one, nothing. Work made leasable elsewhere
(another control-plane process on the same database, or a change window opening), and work
a woken request did not take, is found by each request's slower fallback probe.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class WorkSignal:
    """Waiting coroutines (on any event loop), woken one per unit of work added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = deque()

    def notify(self) -> None:
        """Work was added and committed: wake the longest waiter, if any (thread-safe)."""
        with self._lock:
            if not self._waiters:
                return
            loop, event = self._waiters.popleft()
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # that loop is closed; its waiter is gone
            return

    @property
    def waiting(self) -> int:
        """How many requests are waiting now."""
        return len(self._waiters)

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s to be woken; whether this waiter was woken for work."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return event.is_set()
