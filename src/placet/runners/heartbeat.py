"""Heartbeats: keep a runner's leases alive from background threads, one per running
action, and say when a lease is lost (409/404, or its expiry passed without a renewal)
so that the action is stopped and nothing is reported."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import quote

import httpx

from placet.runners.protocol import LOST_STATUSES, Lease, RunnerError, json_object, problem_of
from placet.runners.times import format_time, parse_time

log = logging.getLogger("placet.runner")


class Heartbeats:
    """Heartbeats of one runner's leases over their own HTTP client (a slow report never
    delays a heartbeat)."""

    def __init__(
        self, client: httpx.Client, clock: Callable[[], datetime], http_timeout: float
    ) -> None:
        self._client = client
        self.clock = clock
        self.http_timeout = http_timeout
        self._renewed: dict[str, datetime] = {}  # lease id -> expiry its last heartbeat got

    def renewed(self, lease_id: str, default: datetime) -> datetime:
        """The lease's expiry as its last heartbeat renewed it (``default`` if none did)."""
        return self._renewed.get(lease_id, default)

    @contextmanager
    def keep(self, lease: Lease) -> Iterator[threading.Event]:
        """Heartbeat the lease in the background; the yielded event is set if it is lost."""
        lost = threading.Event()
        done = threading.Event()
        thread = threading.Thread(
            target=self._beat,
            args=(lease, lost, done),
            name=f"heartbeat-{lease.lease_id}",
            daemon=True,
        )
        thread.start()
        try:
            yield lost
        finally:
            done.set()
            thread.join()
            self._renewed.pop(lease.lease_id, None)

    def _left(self, expires_at: datetime) -> float:
        """Seconds until ``expires_at`` (at least a few milliseconds, to stay a timeout)."""
        return max(0.05, (expires_at - self.clock()).total_seconds())

    def _beat(self, lease: Lease, lost: threading.Event, done: threading.Event) -> None:
        path = f"/v1/runners/leases/{quote(lease.lease_id, safe='')}/heartbeat"
        expires_at = lease.expires_at
        while not done.wait(min(lease.heartbeat_seconds, self._left(expires_at))):
            # Never wait on a heartbeat past the lease's expiry: a server that hangs must
            # not keep the action running after the control plane may have failed it.
            budget = min(self.http_timeout, self._left(expires_at))
            try:
                response = self._client.post(
                    path, json={"fencing_token": lease.fencing_token}, timeout=budget
                )
            except httpx.TransportError as exc:
                log.warning("lease %s: heartbeat failed (%s)", lease.lease_id, type(exc).__name__)
            else:
                if response.status_code in LOST_STATUSES:
                    log.warning(
                        "lease %s lost: %s", lease.lease_id, problem_of(response, "heartbeat")
                    )
                    lost.set()
                    return
                if response.status_code in (200, 201):
                    try:
                        body = json_object(response, "heartbeat")
                        expires_at = parse_time(body.get("expires_at"), "expires_at")
                        self._renewed[lease.lease_id] = expires_at
                    except (RunnerError, ValueError) as exc:
                        log.warning("lease %s: %s", lease.lease_id, exc)
                else:
                    log.warning("lease %s: %s", lease.lease_id, problem_of(response, "heartbeat"))
            if self.clock() >= expires_at:
                log.warning(
                    "lease %s expired at %s without a heartbeat; stopping",
                    lease.lease_id,
                    format_time(expires_at),
                )
                lost.set()
                return
