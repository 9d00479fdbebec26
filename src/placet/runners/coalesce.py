"""Shared report requests for a runner's slots: while one request is in flight, the reports
other slots queue meanwhile gather and go together in the next (like a group commit).

The first caller to find no request in flight sends (it leads); later callers wait for their
answers. The leader keeps sending until nothing is waiting, so no report is left behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class Coalescer(Generic[Item, Answer]):
    """Calls ``send(items)`` (one answer per item, in order) for batches of at most
    ``most`` items gathered from concurrent callers."""

    def __init__(self, send: Callable[[list[Item]], list[Answer]], most: int) -> None:
        if most < 1:
            raise ValueError("a batch carries at least one item")
        self._send = send
        self._most = most
        self._lock = threading.Lock()
        self._waiting: list[tuple[Item, Future[Answer]]] = []
        self._sending = False

    def send(self, items: Sequence[Item]) -> list[Answer]:
        """Send ``items`` (with whatever else is waiting); their answers, in order. An error
        raised by ``send`` is raised to every caller whose items were in that batch."""
        futures: list[Future[Answer]] = [Future() for _ in items]
        with self._lock:
            self._waiting.extend(zip(items, futures, strict=True))
            lead = not self._sending
            self._sending = True
        if lead:
            self._drain()
        return [future.result() for future in futures]

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch = self._waiting[: self._most]
                del self._waiting[: self._most]
                if not batch:
                    self._sending = False
                    return
            try:
                answers = self._send([item for item, _ in batch])
                if len(answers) != len(batch):
                    raise RuntimeError(f"{len(answers)} answers for {len(batch)} items")
            except BaseException as exc:  # every caller in the batch learns of it
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                future.set_result(answer)
