"""What a runner and the control plane say to each other over HTTP, read and checked on
the runner's side: errors as problem+json, the register answer, a lease.

Pure functions of the answers (no I/O), so the runner process (``runners/process.py``)
keeps only the driving loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from placet.domain.errors import PlacetError
from placet.domain.signing import PublicKey, SignatureError
from placet.runners.times import parse_time

RETRY_STATUSES = frozenset({429, 502, 503, 504})
LOST_STATUSES = frozenset({404, 409})
FATAL_STATUSES = frozenset({401, 403})


class RunnerError(PlacetError):
    """A step of the runner failed; ``fatal`` errors (bad token, key mismatch) end the loop."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class ServerProblem(RunnerError):
    """The control plane answered with an error (RFC 9457 problem+json); says its detail."""

    def __init__(self, status: int, title: str, detail: str, action: str) -> None:
        self.summary = f"the server said {status}: {detail or title or 'no detail'}"
        super().__init__(f"{action}: {self.summary}", fatal=status in FATAL_STATUSES)
        self.status = status
        self.title = title
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Registration:
    """Who the control plane says this runner is, and the control-plane keys it pinned."""

    runner: Mapping[str, str]
    keyid: str
    control_plane_keys: tuple[PublicKey, ...]

    @property
    def runner_id(self) -> str:
        return self.runner["id"]


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted lease: the capsule to run and how often to say we are still on it."""

    lease_id: str
    fencing_token: int
    expires_at: datetime
    heartbeat_seconds: float
    capsule: Any


@dataclass(frozen=True, slots=True)
class Sent:
    """What one attempt to deliver a report came to: settled (answered) or to be retried."""

    settled: bool
    state: str | None
    problem: str
    lost: bool = False


def subject_id(statement: Mapping[str, Any]) -> str:
    """The proposal id a runner statement is about (``proposal/<id>`` subject), or ""."""
    subject = statement.get("subject")
    if isinstance(subject, list) and subject and isinstance(subject[0], dict):
        return str(subject[0].get("name", "")).removeprefix("proposal/")
    return ""


def problem_of(response: httpx.Response, action: str) -> ServerProblem:
    """A ServerProblem from an error response, preferring its problem+json ``detail``."""
    title, detail = "", ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        title = str(body.get("title") or "")
        detail = str(body.get("detail") or "")
    elif response.text:
        detail = response.text.strip()[:200]
    return ServerProblem(response.status_code, title, detail, action)


def safe_url(server: str) -> str:
    """The server URL without any user:password part, for log lines."""
    parts = urlsplit(server)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def json_object(response: httpx.Response, action: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise RunnerError(f"{action}: the server's answer is not JSON") from None
    if not isinstance(body, dict):
        raise RunnerError(f"{action}: the server's answer is not a JSON object")
    return body


def parse_registration(
    body: Mapping[str, Any], own: PublicKey, pinned: PublicKey | None
) -> Registration:
    """Check the register answer: it names a runner, our key, and the control-plane keys.

    With ``pinned`` (the user's ``--server-key``), that key must be among them and is the only
    one trusted; otherwise every control-plane key the server lists is pinned for this run.
    """
    runner = body.get("runner")
    if not isinstance(runner, dict) or not all(
        isinstance(runner.get(k), str) and runner.get(k) for k in ("id", "name", "kind")
    ):
        raise RunnerError("register: the answer has no runner reference")
    if runner["kind"] != "runner":
        raise RunnerError(
            f"register: the token belongs to a {runner['kind']}, not a runner", fatal=True
        )
    if body.get("keyid") != own.keyid:
        raise RunnerError(
            f"register: the server recorded key {body.get('keyid')}, not this runner's key"
            f" {own.keyid}",
            fatal=True,
        )
    keys = body.get("keys")
    if not isinstance(keys, list):
        raise RunnerError("register: the answer has no keys list")
    control: list[PublicKey] = []
    for i, item in enumerate(keys):
        if not isinstance(item, dict) or item.get("role") != "control-plane":
            continue
        if item.get("algorithm") != "ed25519":
            raise RunnerError(f"register: keys[{i}] is not an ed25519 key")
        try:
            key = PublicKey.from_b64(str(item.get("public_key")))
        except SignatureError as exc:
            raise RunnerError(f"register: keys[{i}]: {exc}") from None
        if item.get("keyid") != key.keyid:
            raise RunnerError(f"register: keys[{i}] keyid does not match its public key")
        control.append(key)
    if not control:
        raise RunnerError("register: the server listed no control-plane key", fatal=True)
    if pinned is not None:
        if pinned.keyid not in {key.keyid for key in control}:
            raise RunnerError(
                f"register: the server's control-plane keys do not include the pinned key"
                f" {pinned.keyid}",
                fatal=True,
            )
        control = [pinned]
    ref = {k: str(v) for k, v in runner.items() if k in ("id", "name", "kind", "owner")}
    return Registration(runner=ref, keyid=own.keyid, control_plane_keys=tuple(control))


def parse_lease(body: Mapping[str, Any]) -> Lease:
    """Check a lease answer's fields; raise RunnerError naming the first bad one."""
    lease_id = body.get("lease_id")
    if not isinstance(lease_id, str) or not lease_id:
        raise RunnerError("lease: lease_id is missing")
    token = body.get("fencing_token")
    if isinstance(token, bool) or not isinstance(token, int):
        raise RunnerError("lease: fencing_token is not an integer")
    try:
        expires_at = parse_time(body.get("expires_at"), "expires_at")
    except ValueError as exc:
        raise RunnerError(f"lease: {exc}") from None
    beat = body.get("heartbeat_seconds")
    if isinstance(beat, bool) or not isinstance(beat, int | float) or not beat > 0:
        raise RunnerError("lease: heartbeat_seconds is not a positive number")
    if "capsule" not in body:
        raise RunnerError("lease: the answer carries no capsule")
    return Lease(lease_id, token, expires_at, float(beat), body["capsule"])
