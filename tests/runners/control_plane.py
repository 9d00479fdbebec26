"""A small stand-in control plane (stdlib http.server) speaking the runner HTTP protocol.

Only for the runner tests, until the real server exists: it registers one runner, leases
queued capsules, answers heartbeats and checks the runner's signed reports.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from placet.domain.signing import PublicKey, SigningKey, open_envelope
from placet.runners.capsule import issue_capsule
from placet.runners.times import format_time, utc_now

TOKEN = "runner-secret-token"
RUNNER_REF = {"id": "RUNNER1", "name": "runner-one", "kind": "runner", "owner": "platform"}


@dataclass
class Job:
    """One proposal waiting for a runner; ``capsule`` overrides the honest capsule."""

    proposal_id: str
    proposal: dict[str, Any]
    digest: str
    capsule: Callable[[str, int], dict[str, Any]] | None = None


@dataclass
class Report:
    """A report the runner sent, with the statement its envelope carried."""

    lease_id: str
    stage: str
    fencing_token: int
    envelope: dict[str, Any]
    statement: dict[str, Any]
    signed_by: str


@dataclass
class LeaseRecord:
    lease_id: str
    fencing_token: int
    job: Job
    capsule: dict[str, Any]
    lost: bool = False


@dataclass
class StubControlPlane:
    """State of the stand-in server; tests queue jobs and read reports and counters."""

    key: SigningKey = field(default_factory=SigningKey.generate)
    url: str = ""
    jobs: list[Job] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    leases: dict[str, LeaseRecord] = field(default_factory=dict)
    runner_key: PublicKey | None = None
    registered_kinds: list[str] = field(default_factory=list)
    lease_requests: int = 0
    heartbeats: int = 0
    heartbeat_seconds: float = 0.05
    lose_lease: Callable[[], bool] = lambda: False
    on_heartbeat: Callable[[], None] = lambda: None
    unavailable: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def wait_for_reports(self, count: int, timeout: float = 30.0) -> list[Report]:
        """Block until ``count`` reports arrived (or raise after ``timeout``)."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.reports) >= count, timeout):
                raise AssertionError(f"only {len(self.reports)} reports arrived")
            return list(self.reports)

    # ---- protocol -------------------------------------------------------------------

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        parts = path.strip("/").split("/")
        name = parts[-1]
        with self.lock:
            if self.unavailable.get(name, 0) > 0:
                self.unavailable[name] -= 1
                return problem(503, "unavailable", "try again")
        if path == "/v1/runners/register":
            return self._register(body)
        if path == "/v1/runners/lease":
            return self._lease(body)
        if len(parts) == 5 and parts[:3] == ["v1", "runners", "leases"]:
            with self.lock:
                record = self.leases.get(parts[3])
            if record is None:
                return problem(404, "not found", f"no lease {parts[3]}")
            if body.get("fencing_token") != record.fencing_token:
                return problem(409, "conflict", "stale fencing token")
            if name == "heartbeat":
                return self._heartbeat(record)
            if name in ("execution", "verification"):
                return self._report(record, name, body)
        return problem(404, "not found", f"no route {path}")

    def _register(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = PublicKey.from_b64(body["public_key"])
        with self.lock:
            self.runner_key = key
            self.registered_kinds = list(body["kinds"])
        cp = self.key.public
        return 200, {
            "runner": RUNNER_REF,
            "keyid": key.keyid,
            "keys": [
                {
                    "keyid": cp.keyid,
                    "algorithm": "ed25519",
                    "public_key": cp.b64,
                    "role": "control-plane",
                }
            ],
        }

    def _lease(self, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        with self.lock:
            self.lease_requests += 1
            if not self.jobs or "shell" not in body.get("kinds", []):
                return 204, None
            job = self.jobs.pop(0)
            token = len(self.leases) + 1
            lease_id = f"LEASE{token}"
        now = utc_now()
        if job.capsule is not None:
            capsule = job.capsule(lease_id, token)
        else:
            capsule = issue_capsule(
                self.key,
                proposal_id=job.proposal_id,
                proposal=job.proposal,
                proposal_digest=job.digest,
                runner_id=RUNNER_REF["id"],
                lease_id=lease_id,
                fencing_token=token,
                issued_at=now,
                ttl=timedelta(minutes=5),
            )
        with self.lock:
            self.leases[lease_id] = LeaseRecord(lease_id, token, job, capsule)
        return 200, {
            "lease_id": lease_id,
            "fencing_token": token,
            "expires_at": format_time(now + timedelta(minutes=5)),
            "heartbeat_seconds": self.heartbeat_seconds,
            "capsule": capsule,
        }

    def _heartbeat(self, record: LeaseRecord) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.heartbeats += 1
            if record.lost or self.lose_lease():
                record.lost = True
                return problem(409, "lease lost", "the lease was fenced")
        self.on_heartbeat()
        return 200, {"expires_at": format_time(utc_now() + timedelta(minutes=5))}

    def _report(
        self, record: LeaseRecord, stage: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if record.lost:
            return problem(409, "lease lost", "the lease was fenced")
        assert self.runner_key is not None
        payload, _, keyid = open_envelope(body["envelope"], [self.runner_key])
        statement = json.loads(payload)
        subject = statement["subject"][0]
        if subject["name"] != f"proposal/{record.job.proposal_id}":
            return problem(422, "wrong subject", f"subject {subject['name']} is not this lease's")
        predicate = statement["predicate"]
        if stage == "execution":
            state = "verifying" if predicate["ok"] else "failed"
        else:
            state = "succeeded" if predicate["passed"] else "failed"
        with self.changed:
            self.reports.append(
                Report(
                    record.lease_id,
                    stage,
                    body["fencing_token"],
                    body["envelope"],
                    statement,
                    keyid,
                )
            )
            self.changed.notify_all()
        return 200, {"state": state}


def problem(status: int, title: str, detail: str) -> tuple[int, dict[str, Any]]:
    """An RFC 9457 problem body."""
    return status, {"type": "about:blank", "title": title, "status": status, "detail": detail}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        answer: dict[str, Any] | None
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            status, answer = problem(401, "unauthorized", "the runner token is not valid")
        else:
            status, answer = self.server.stub.handle(self.path, body)
        self.send_response(status)
        if answer is None:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(answer).encode()
        kind = "application/problem+json" if status >= 400 else "application/json"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stub: StubControlPlane) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stub = stub


class RunningStub:
    """The stub served on 127.0.0.1 in a background thread; ``url`` is its base URL."""

    def __init__(self, stub: StubControlPlane) -> None:
        self.stub = stub
        self._server = _Server(stub)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        stub.url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
