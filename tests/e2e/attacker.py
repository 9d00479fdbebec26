"""A man-in-the-middle HTTP proxy for end-to-end tests: runner processes talk to it, it
forwards their requests to a real ``placet serve`` and may rewrite the answers to lease
requests (a tampered, held back, replayed or misdirected capsule).

It runs in a thread of the test process (``http.server.ThreadingHTTPServer``, forwarding with
``httpx``) and speaks real HTTP. Lease answers come in two shapes, both handled: one offer
object (today), or ``{"leases": [offer, ...]}`` when the runner asked for ``{"max": N}``; a
rule sees and returns a list of offers either way. Everything else (register, heartbeats,
reports single or batched) is forwarded unchanged and recorded.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx

from placet.runners.times import parse_time, utc_now

LEASE_PATH = "/v1/runners/lease"
Offer = dict[str, Any]
Forward = Callable[[], list[Offer]]
# A rule decides what a runner's lease request gets: it may ask the server (``forward``,
# which returns the server's offers) and returns the offers to hand to the runner.
Rule = Callable[[Forward], list[Offer]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request through the proxy and its answer, as the runner got it (recorded just
    before the answer is sent, so anything the runner does after it finds it recorded)."""

    token: str
    method: str
    path: str
    request: Any  # the JSON body, or None
    status: int
    answer: Any  # the JSON body, or None
    offered: tuple[Offer, ...] = ()  # lease requests: what the server offered
    handed: tuple[Offer, ...] = ()  # lease requests: what the runner got instead
    answered_at: datetime = field(default_factory=utc_now)

    def mentions(self, text: str) -> bool:
        """Whether ``text`` (say a lease id) is in the path or the request body."""
        return text in self.path or text in json.dumps(self.request)


def capsule_payload(offer: Offer) -> dict[str, Any]:
    """The decoded (unchecked) payload of an offer's capsule envelope."""
    payload: dict[str, Any] = json.loads(base64.b64decode(offer["capsule"]["payload"]))
    return payload


def with_payload(offer: Offer, payload: dict[str, Any]) -> Offer:
    """The offer with its capsule's payload replaced and the original signatures kept."""
    capsule = dict(offer["capsule"])
    capsule["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return {**offer, "capsule": capsule}


def capsule_expiry(offer: Offer) -> datetime:
    """When the offer's capsule expires, by its own (signed) payload."""
    return parse_time(capsule_payload(offer)["expires_at"], "expires_at")


def rewrite_argv(argv: list[str]) -> Rule:
    """A rule: every offered capsule's shell argv is replaced after signing."""

    def rule(forward: Forward) -> list[Offer]:
        out = []
        for offer in forward():
            payload = capsule_payload(offer)
            payload["proposal"]["parameters"]["argv"] = argv
            out.append(with_payload(offer, payload))
        return out

    return rule


def rewrite_labels(labels: dict[str, list[str]]) -> Rule:
    """A rule: every offer tells the runner these labels (``runner_labels``, not signed)."""

    def rule(forward: Forward) -> list[Offer]:
        return [{**offer, "runner_labels": labels} for offer in forward()]

    return rule


def hold_until_expired(limit: float = 60.0) -> Rule:
    """A rule: every offer is held back until the clock is past its capsule's expiry."""

    def rule(forward: Forward) -> list[Offer]:
        offers = forward()
        for offer in offers:
            until = capsule_expiry(offer)
            for _ in rounds(limit):
                if utc_now() > until:
                    break
        return offers

    return rule


class Replay:
    """A rule handing a runner offers it already had, once (per ``arm``).

    ``instead=False``: at the runner's next lease request, without asking the server.
    ``instead=True``: in place of the next offer the server makes; that offer is kept and
    handed at the request after, so the later lease is not lost.
    """

    def __init__(self, stale: Sequence[Offer], *, instead: bool = False) -> None:
        self.stale = list(stale)
        self.instead = instead
        self.kept: list[Offer] = []
        self._lock = threading.Lock()

    def arm(self, stale: Sequence[Offer]) -> None:
        """Hand ``stale`` (again) as described; a lease request already waiting on the server
        when this is called is one it applies to."""
        with self._lock:
            self.stale = list(stale)

    def __call__(self, forward: Forward) -> list[Offer]:
        with self._lock:
            if self.kept:
                kept, self.kept = self.kept, []
                return kept
            if self.stale and not self.instead:
                stale, self.stale = self.stale, []
                return stale
        offers = forward()
        with self._lock:
            if offers and self.stale:
                stale, self.stale = self.stale, []
                self.kept = offers
                return stale
        return offers


class Misdirect:
    """A rule: when the server has nothing for this runner, lease as another runner (with its
    token) and hand that runner's offer to this one; once."""

    def __init__(self, attacker: Attacker, other_token: str, kinds: Sequence[str]) -> None:
        self.attacker = attacker
        self.other_token = other_token
        self.kinds = list(kinds)
        self.stolen: list[Offer] = []
        self._lock = threading.Lock()

    def __call__(self, forward: Forward) -> list[Offer]:
        offers = forward()
        if offers:
            return offers
        with self._lock:
            if self.stolen:
                return []
            self.stolen = self.attacker.lease_as(self.other_token, self.kinds)
            return list(self.stolen)


def rounds(seconds: float) -> Iterator[int]:
    """Rounds of a bounded wait: yields until ``seconds`` pass, then raises AssertionError."""
    deadline = utc_now() + timedelta(seconds=seconds)
    pause = threading.Event()  # never set: wait() is a bounded pause between checks
    count = 0
    while utc_now() < deadline:
        yield count
        count += 1
        pause.wait(0.05)
    raise AssertionError(f"gave up after {seconds} s")


def _offers_of(status: int, body: Any) -> tuple[list[Offer], bool]:
    """The offers in a lease answer, and whether it was the batch shape."""
    if status == 204:
        return [], False
    if status in (200, 201) and isinstance(body, dict):
        if isinstance(body.get("leases"), list):
            return list(body["leases"]), True
        if "lease_id" in body:
            return [body], False
    raise ValueError(f"not a lease answer: {status} {body!r}")


class _NotAnOffer(Exception):
    """The server answered a lease request with an error: it goes to the runner unchanged."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"lease answered {response.status_code}")
        self.response = response


def _bearer(value: str | None) -> str:
    return value.removeprefix("Bearer ").strip() if value else ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    attacker: Attacker


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the exchanges are recorded instead."""

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            self.server.attacker.handle(self, raw)
        except Exception as exc:  # a broken rule must show in the test, not hang the runner
            self.server.attacker.errors.append(f"{self.command} {self.path}: {exc!r}")
            self.reply(502, {"title": "attacker error", "detail": repr(exc)})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

    def reply(self, status: int, body: Any, raw: bytes | None = None, kind: str = "") -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if data:
            self.send_header("Content-Type", kind or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)


class Attacker:
    """The proxy: ``url`` for runners, ``upstream`` the real server; rules per runner token."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.errors: list[str] = []
        self._rules: dict[str, Rule] = {}
        self._exchanges: list[Exchange] = []
        self._changed = threading.Condition()
        self._client = httpx.Client(
            base_url=self.upstream, timeout=90, limits=httpx.Limits(max_connections=200)
        )
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.attacker = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def __enter__(self) -> Attacker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._client.close()

    # ---- rules and what was seen ---------------------------------------------------------

    def on_lease(self, token: str, rule: Rule | None) -> None:
        """Apply ``rule`` to the lease requests made with ``token`` (None: forward them)."""
        with self._changed:
            if rule is None:
                self._rules.pop(token, None)
            else:
                self._rules[token] = rule

    def exchanges(self, token: str | None = None) -> list[Exchange]:
        """The exchanges so far (of one runner token), oldest first."""
        with self._changed:
            return [e for e in self._exchanges if token is None or e.token == token]

    def handed(self, token: str) -> list[Offer]:
        """Every offer the runner with ``token`` was handed, oldest first (attacked or not)."""
        return [offer for e in self.exchanges(token) for offer in e.handed]

    def wait_for(self, found: Callable[[list[Exchange]], T | None], timeout: float = 30) -> T:
        """The first non-None ``found(exchanges)``, re-checked as each exchange is recorded."""
        deadline = utc_now() + timedelta(seconds=timeout)
        with self._changed:
            while True:
                value = found(list(self._exchanges))
                if value is not None:
                    return value
                left = (deadline - utc_now()).total_seconds()
                assert left > 0, f"no such exchange within {timeout} s"
                self._changed.wait(left)

    def lease_as(self, token: str, kinds: Sequence[str]) -> list[Offer]:
        """Lease from the real server with another runner's token (no waiting)."""
        response = self._client.post(
            LEASE_PATH,
            json={"kinds": list(kinds), "wait": 0},
            headers={"Authorization": f"Bearer {token}"},
        )
        offers, _ = _offers_of(response.status_code, _json(response))
        self._record(Exchange(token, "POST", LEASE_PATH, None, response.status_code,
                              _json(response), tuple(offers)))  # fmt: skip
        return offers

    # ---- relaying --------------------------------------------------------------------

    def handle(self, handler: _Handler, raw: bytes) -> None:
        """Forward one request; a lease request of a runner with a rule goes through it."""
        token = _bearer(handler.headers.get("Authorization"))
        request = _parse(raw)
        if handler.command == "POST" and handler.path == LEASE_PATH:
            try:
                self._lease(handler, token, raw, request, self._rules.get(token, _as_offered))
                return
            except _NotAnOffer as not_offer:
                response = not_offer.response
        else:
            response = self._forward(handler, raw)
        # Recorded before the runner has the answer: whatever it does next finds it here.
        self._record(Exchange(token, handler.command, handler.path, request,
                              response.status_code, _json(response)))  # fmt: skip
        handler.reply(
            response.status_code,
            None,
            raw=response.content,
            kind=response.headers.get("Content-Type", ""),
        )

    def _forward(self, handler: _Handler, raw: bytes) -> httpx.Response:
        headers = {
            name: value
            for name in ("Authorization", "Content-Type", "Accept")
            if (value := handler.headers.get(name)) is not None
        }
        return self._client.request(handler.command, handler.path, content=raw, headers=headers)

    def _lease(self, handler: _Handler, token: str, raw: bytes, request: Any, rule: Rule) -> None:
        batch = isinstance(request, dict) and "max" in request
        offered: list[Offer] = []
        original: dict[str, Any] = {}  # the server's answer: status, batch body

        def forward() -> list[Offer]:
            response = self._forward(handler, raw)
            if response.status_code not in (200, 201, 204):
                raise _NotAnOffer(response)
            body = _json(response)
            offers, was_batch = _offers_of(response.status_code, body)
            original.update(status=response.status_code, body=body if was_batch else None)
            offered.extend(offers)
            return offers

        handed = rule(forward)
        if original.get("body") is not None:
            status, body = 200, {**original["body"], "leases": handed}
        elif not handed:
            status, body = 204, None
        elif batch:
            status, body = 200, {"leases": handed}
        else:
            assert len(handed) == 1, "a single-offer lease answer carries one offer"
            status, body = 200, handed[0]
        self._record(Exchange(token, "POST", LEASE_PATH, request, status, body,
                              tuple(offered), tuple(handed)))  # fmt: skip
        handler.reply(status, body)

    def _record(self, exchange: Exchange) -> None:
        with self._changed:
            self._exchanges.append(exchange)
            self._changed.notify_all()


def _as_offered(forward: Forward) -> list[Offer]:
    """The rule of a runner nobody attacks: what the server offers."""
    return forward()


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _json(response: httpx.Response) -> Any:
    return _parse(response.content)


@contextmanager
def attacking(upstream: str) -> Iterator[Attacker]:
    """An attacker proxy in front of ``upstream`` for the duration of the block."""
    with Attacker(upstream) as attacker:
        yield attacker
