"""The runner process: register, lease a capsule, check it, run it once, report, verify.

A runner pulls work from the control plane over HTTP (notes/statements.md, "Runner HTTP
protocol"). It runs a capsule at most once: network errors are retried around requests,
never around the execution; when a heartbeat says the lease is lost, the action is killed
and nothing is reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from placet.domain.errors import InputError
from placet.domain.signing import PublicKey
from placet.runners.actions import (
    BUILT_IN_NAMES,
    ActionContext,
    ActionKindPlugin,
    ActionOutcome,
    all_kinds,
    refused,
)
from placet.runners.actions.verify import run_check
from placet.runners.capsule import (
    Capsule,
    CapsuleClaim,
    CapsuleRefused,
    Refusal,
    SignedTerms,
    capsule_digest,
    check_capsule,
    signed_terms,
)
from placet.runners.coalesce import Coalescer
from placet.runners.delivery import (
    MAX_BATCH,
    REFUSAL,
    REFUSALS_PATH,
    REPORTS_PATH,
    batch_body,
    batches,
    describe,
    read_answers,
)
from placet.runners.heartbeat import Heartbeats
from placet.runners.keys import load_or_create_key
from placet.runners.nonces import NonceStore, NonceStoreError
from placet.runners.outbox import DELIVERED, REFUSED, Outbox, OutboxError, QueuedReport
from placet.runners.protocol import (
    FATAL_STATUSES,
    LOST_STATUSES,
    RETRY_STATUSES,
    Lease,
    Registration,
    RunnerError,
    Sent,
    ServerProblem,
    json_object,
    parse_lease,
    parse_registration,
    problem_of,
    safe_url,
    subject_id,
)
from placet.runners.redact import Redactor, redactor
from placet.runners.statements import (
    Assignment,
    execution_statement,
    skipped_verification_statement,
    unstarted_execution_statement,
    verification_statement,
)
from placet.runners.times import utc_now
from placet.runners.trust import load_pinned, record_pinned

log = logging.getLogger("placet.runner")

SUPPORTED_KINDS = BUILT_IN_NAMES  # plus the kinds of installed placet.actions plugins
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_LEASE_WAIT = 5.0  # seconds a lease request may wait on the server for work
MAX_SLOTS = 32  # actions one runner process runs at a time (the server's lease batch limit)


def _settled(running: set[Future[None]]) -> set[Future[None]]:
    """The futures still running; a finished one's fatal error is raised, others logged."""
    still: set[Future[None]] = set()
    for future in running:
        if not future.done():
            still.add(future)
            continue
        error = future.exception()
        if isinstance(error, RunnerError) and error.fatal:
            raise error
        if error is not None:
            log.error("an action slot failed: %s", error, exc_info=error)
    return still


class Runner:
    """A runner process's logic: one ``Runner`` per control plane, driven by ``run_forever``.

    ``server`` is the control plane's base URL, ``token`` the runner's bearer token (never
    logged), ``key_path`` its Ed25519 key file (created 0600 if missing), ``workdir`` the
    directory actions run in (a ``cwd`` parameter is resolved inside it), ``server_key`` an
    optional pinned control-plane key that the server must present.
    """

    def __init__(
        self,
        server: str,
        token: str,
        key_path: Path,
        *,
        kinds: Sequence[str] | None = None,
        workdir: Path = Path("."),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        server_key: PublicKey | None = None,
        http_timeout: float = 30.0,
        retry_attempts: int = 5,
        retry_base: float = 0.5,
        retry_cap: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
        state_dir: Path | None = None,
        lease_wait: float = DEFAULT_LEASE_WAIT,
        allow_env: Sequence[str] = (),
        allow_urls: Sequence[str] = (),
        redact: Sequence[str] = (),
        slots: int = 1,
    ) -> None:
        if not token or any(c.isspace() for c in token):
            raise InputError("token", "must be a non-empty string without spaces")
        self.actions: dict[str, ActionKindPlugin] = all_kinds()
        if kinds is None:
            kinds = tuple(self.actions)
        unknown = [k for k in kinds if k not in self.actions]
        if unknown or not kinds:
            shown = repr(unknown[0]) if unknown else "(none)"
            raise InputError(
                "kinds",
                f"this runner cannot run kind {shown} (supported: {', '.join(self.actions)})",
            )
        for name in allow_env:
            if not name or "=" in name or any(c.isspace() for c in name):
                raise InputError("allow_env", f"{name!r} is not an environment variable name")
        for prefix in allow_urls:
            if not prefix.startswith(("http://", "https://")):
                raise InputError("allow_urls", f"{prefix!r} is not an http:// or https:// prefix")
        self.allow_env = frozenset(allow_env)
        self.allow_urls = tuple(allow_urls)
        try:
            self.redactor: Redactor = redactor(redact)
        except ValueError as exc:
            raise InputError("redact", str(exc)) from None
        if not workdir.is_dir():
            raise InputError("workdir", f"{workdir} is not an existing directory")
        if poll_interval <= 0:
            raise InputError("poll_interval", "must be a positive number of seconds")
        if retry_attempts < 1:
            raise InputError("retry_attempts", "must be at least 1")
        if isinstance(slots, bool) or not 1 <= slots <= MAX_SLOTS:
            raise InputError("slots", f"must be from 1 to {MAX_SLOTS} actions at a time")
        self.slots = slots
        # Leases whose reports a slot is sending now: the outbox flush leaves them alone.
        self._active: set[str] = set()
        self._active_lock = threading.Lock()
        # Reports from concurrent slots share requests (see runners/coalesce.py).
        self._sender: Coalescer[QueuedReport, Sent] = Coalescer(self._send_reports, MAX_BATCH)
        self.server = server.rstrip("/")
        self.kinds = tuple(dict.fromkeys(kinds))
        self.workdir = workdir.resolve()
        self.poll_interval = poll_interval
        self.http_timeout = http_timeout
        self.server_key = server_key
        self.retry_attempts = retry_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.clock = clock
        self.key = load_or_create_key(key_path)
        # The state dir holds the nonce store and the control-plane key trusted on first use.
        self.state_dir = key_path.parent if state_dir is None else state_dir
        self.trusted_on_first_use = server_key is None
        if server_key is None:
            self.server_key = load_pinned(self.state_dir)
        if lease_wait < 0:
            raise InputError("lease_wait", "must be 0 or more seconds")
        self.lease_wait = lease_wait
        self.labels: dict[str, list[str]] | None = None
        self.nonces = NonceStore(self.state_dir)
        # Reports are queued here before they are sent, and resent until the control plane
        # answers (docs/runners.md, "When the control plane goes away").
        self.outbox = Outbox(self.state_dir)
        self.registration: Registration | None = None
        self._stop = threading.Event()
        self._never = threading.Event()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._client = httpx.Client(base_url=self.server, headers=headers, timeout=http_timeout)
        self._beat_client = httpx.Client(
            base_url=self.server, headers=headers, timeout=http_timeout
        )
        self.heartbeats = Heartbeats(self._beat_client, clock, http_timeout)

    # ---- lifecycle of the object ------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()
        self._beat_client.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- HTTP -------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return float(min(self.retry_cap, self.retry_base * 2**attempt))

    def _post(
        self, path: str, body: Mapping[str, Any], action: str, *, interruptible: bool
    ) -> httpx.Response:
        """POST with retries on network errors and 429/502/503/504; other answers returned."""
        pause = self._stop if interruptible else self._never
        last = ""
        for attempt in range(self.retry_attempts):
            if attempt:
                delay = self._backoff(attempt - 1)
                log.warning("%s: %s; retrying in %.1f s", action, last, delay)
                if pause.wait(delay):
                    break
            try:
                response = self._client.post(path, json=body)
            except httpx.TransportError as exc:
                last = f"cannot reach {safe_url(self.server)} ({type(exc).__name__})"
                continue
            if response.status_code in RETRY_STATUSES:
                last = problem_of(response, action).summary
                continue
            return response
        raise RunnerError(f"{action}: {last}")

    # ---- protocol steps ---------------------------------------------------------------

    def register(self) -> Registration:
        """Register this runner's public key and kinds; pin the control-plane keys.

        Without a pinned key, the first key the server presents is recorded in the state dir
        (trust on first use) and pinned from then on. The answer's labels are what a capsule
        addressed by selector must match.
        """
        response = self._post(
            "/v1/runners/register",
            {"public_key": self.key.public.b64, "kinds": list(self.kinds)},
            "register",
            interruptible=True,
        )
        if response.status_code not in (200, 201):
            raise problem_of(response, "register")
        body = json_object(response, "register")
        registration = parse_registration(body, self.key.public, self.server_key)
        if self.server_key is None:
            first = registration.control_plane_keys[0]
            if not record_pinned(self.state_dir, first):
                raise RunnerError(
                    "register: a control-plane key was recorded meanwhile; start again",
                    fatal=True,
                )
            self.server_key = first
            registration = Registration(registration.runner, registration.keyid, (first,))
            log.warning(
                "trusting control-plane key %s on first use (recorded in %s)",
                first.keyid,
                self.state_dir,
            )
        ignored = body.get("ignored_kinds")
        if isinstance(ignored, list) and ignored:
            log.warning(
                "the control plane does not know kind(s) %s: it will not lease them to this"
                " runner (install the plugin on the control plane too)",
                ", ".join(str(kind) for kind in ignored),
            )
        labels = body.get("labels")
        self.labels = (
            {str(k): [str(x) for x in v] for k, v in labels.items() if isinstance(v, list)}
            if isinstance(labels, dict)
            else None
        )
        self.registration = registration
        log.info(
            "registered with %s as runner %s (%s); control-plane key %s",
            safe_url(self.server),
            registration.runner.get("name"),
            registration.runner_id,
            ", ".join(k.keyid[:16] for k in registration.control_plane_keys),
        )
        return registration

    def lease(self) -> Lease | None:
        """Ask for one capsule of our kinds; None when there is no work (204)."""
        leases = self.lease_many(1)
        return leases[0] if leases else None

    def lease_many(self, most: int) -> list[Lease]:
        """Ask for up to ``most`` capsules of our kinds; [] when there is no work (204).

        The server holds the request open up to ``lease_wait`` seconds (long poll), kept well
        inside the HTTP timeout, and answers as soon as there is work.
        """
        wait = max(0.0, min(self.lease_wait, self.http_timeout / 2))
        response = self._post(
            "/v1/runners/lease",
            {"kinds": list(self.kinds), "wait": wait, "max": most},
            "lease",
            interruptible=True,
        )
        if response.status_code == 204:
            return []
        if response.status_code not in (200, 201):
            raise problem_of(response, "lease")
        answer = json_object(response, "lease")
        # A control plane without batches ignores ``max`` and answers one lease.
        offers = answer.get("leases") if "lease_id" not in answer else [answer]
        if not isinstance(offers, list) or not 0 < len(offers) <= most:
            raise RunnerError(f"lease: the answer does not carry 1 to {most} leases")
        labels = offers[0].get("runner_labels") if isinstance(offers[0], dict) else None
        if isinstance(labels, dict):  # an admin may have changed them since we registered
            self.labels = {
                str(k): [str(x) for x in v] for k, v in labels.items() if isinstance(v, list)
            }
        return [parse_lease(offer if isinstance(offer, dict) else {}) for offer in offers]

    def run_once(self) -> bool:
        """Lease what is authorized now (up to ``slots`` capsules), run it, report; whether
        there was work."""
        return self.run_batch() > 0

    def run_batch(self) -> int:
        """Like ``run_once``; how many capsules were leased and run (at once, one per slot)."""
        if self.registration is None:
            self.register()
        self.flush_outbox()
        leases = self.lease_many(self.slots)
        if len(leases) == 1:
            self._work(leases[0])
        elif leases:
            with ThreadPoolExecutor(len(leases), thread_name_prefix="slot") as pool:
                for done in [pool.submit(self._work, lease) for lease in leases]:
                    done.result()
        return len(leases)

    def run_forever(self, stop: threading.Event) -> None:
        """Poll for work until ``stop`` is set; running actions finish first.

        Up to ``slots`` actions run at a time, each on its own thread; the loop leases as
        many capsules as there are free slots. Transient errors are logged and retried with
        backoff; fatal ones (token refused, key mismatch) are raised.
        """
        self._stop = stop
        failures = 0
        with ThreadPoolExecutor(self.slots, thread_name_prefix="slot") as pool:
            running: set[Future[None]] = set()
            try:
                while not stop.is_set():
                    running = _settled(running)
                    if len(running) >= self.slots:
                        wait_futures(running, return_when=FIRST_COMPLETED)
                        continue
                    try:
                        if self.registration is None:
                            self.register()
                        self.flush_outbox()
                        leases = self.lease_many(self.slots - len(running))
                    except RunnerError as exc:
                        if exc.fatal:
                            raise
                        delay = self._backoff(failures)
                        failures += 1
                        log.warning("%s; trying again in %.1f s", exc, delay)
                        stop.wait(delay)
                        continue
                    failures = 0
                    running.update(pool.submit(self._work, lease) for lease in leases)
                    if not leases:  # no work now: pause, even while other slots are busy
                        stop.wait(self.poll_interval)
            finally:
                wait_futures(running)
                _settled(running)

    # ---- one lease --------------------------------------------------------------------

    def _work(self, lease: Lease) -> None:
        """Check, run and report one leased capsule (on a slot's thread)."""
        with self._active_lock:
            self._active.add(lease.lease_id)
        try:
            self._work_on(lease)
        finally:
            with self._active_lock:
                self._active.discard(lease.lease_id)

    def _work_on(self, lease: Lease) -> None:
        registration = self.registration
        assert registration is not None
        try:
            capsule = check_capsule(
                lease.capsule,
                registration.control_plane_keys,
                registration.runner_id,
                self.clock(),
                lease_id=lease.lease_id,
                fencing_token=lease.fencing_token,
                labels=self.labels,
            )
        except CapsuleRefused as refused:
            self._refuse(lease, refused)
            return
        # Write-ahead: the nonce is durably claimed before anything runs, so a replay of this
        # capsule (after a crash, a restart, or to a twin process) is refused, never run.
        claim = CapsuleClaim(
            capsule.proposal_id, capsule.proposal_digest, capsule.runner_id, capsule.proposal.kind
        )
        try:
            fresh = self.nonces.claim(
                capsule.nonce,
                proposal_id=capsule.proposal_id,
                capsule_digest=capsule.digest,
                now=self.clock(),
                expires_at=capsule.expires_at,
            )
        except NonceStoreError as exc:
            self._refuse(lease, CapsuleRefused(Refusal.MALFORMED, str(exc), claim))
            return
        if not fresh:
            reason = f"it was replayed (nonce {capsule.nonce[:16]}… was already used)"
            self._refuse(lease, CapsuleRefused(Refusal.REPLAYED, reason, claim))
            return
        assignment = Assignment(
            proposal_id=capsule.proposal_id,
            proposal_digest=capsule.proposal_digest,
            runner=registration.runner,
            lease_id=lease.lease_id,
            fencing_token=lease.fencing_token,
            capsule_digest=capsule.digest,
        )
        with self.heartbeats.keep(lease) as lost:
            self._execute(lease, capsule, assignment, lost)

    def _refuse(self, lease: Lease, refused: CapsuleRefused) -> None:
        """Fail closed: report a refusal unless the capsule is unreadable or not ours; a
        genuine capsule leased to another runner is reported as misdirected."""
        registration = self.registration
        assert registration is not None
        claim = refused.claim
        if claim is None or claim.runner_id != registration.runner_id:
            terms = None
            if refused.code is Refusal.WRONG_RUNNER:
                terms = signed_terms(lease.capsule, registration.control_plane_keys)
            if terms is None or terms.runner_id == registration.runner_id:
                log.error("lease %s: %s; not reported", lease.lease_id, refused)
                return
            self._report_misdirected(lease, terms, refused)
            return
        log.error("lease %s: %s", lease.lease_id, refused)
        statement = self._refusal(
            lease, claim.proposal_id, claim.proposal_digest, lease.lease_id,
            lease.fencing_token, claim.kind, refused,
        )  # fmt: skip
        self._report(lease, [("execution", statement)], threading.Event())

    def _refusal(
        self,
        lease: Lease,
        proposal_id: str,
        proposal_digest: str,
        lease_id: str,
        fencing_token: int,
        kind: str,
        refused: CapsuleRefused,
    ) -> dict[str, Any]:
        """The execution statement of a refused capsule (nothing ran), about ``lease_id``."""
        registration = self.registration
        assert registration is not None
        assignment = Assignment(
            proposal_id=proposal_id,
            proposal_digest=proposal_digest,
            runner=registration.runner,
            lease_id=lease_id,
            fencing_token=fencing_token,
            capsule_digest=capsule_digest(lease.capsule),
        )
        return unstarted_execution_statement(
            assignment, kind=kind, argv=[], error=str(refused), at=self.clock()
        )

    def _report_misdirected(
        self, lease: Lease, terms: SignedTerms, refused: CapsuleRefused
    ) -> None:
        """Report a genuine capsule of another runner's lease (it leaked): this runner signs
        its refusal (nothing ran) about that lease, queues it, and sends it to the refusals
        endpoint; the control plane then fails the lease and records the refusal."""
        log.error("lease %s: %s; reporting it as misdirected", terms.lease_id, refused)
        statement = self._refusal(
            lease, terms.proposal_id, terms.proposal_digest, terms.lease_id,
            terms.fencing_token, terms.kind, refused,
        )  # fmt: skip
        envelope = self.key.sign_statement(statement)
        try:
            (queued,) = self.outbox.add_many(
                terms.lease_id,
                terms.fencing_token,
                [(REFUSAL, envelope)],
                proposal_id=terms.proposal_id,
                now=self.clock(),
            )
        except OutboxError as exc:
            log.error("lease %s: %s; sending without a queue", terms.lease_id, exc)
            queued = QueuedReport(
                terms.lease_id,
                0,
                REFUSAL,
                terms.proposal_id,
                terms.fencing_token,
                envelope,
                "unqueued",
            )
        try:
            self._send_refusal(queued)
        except RunnerError as exc:
            if exc.fatal:
                raise
            log.warning(
                "lease %s: the refusal stays in the outbox (%s); sent when the runner polls",
                terms.lease_id,
                exc,
            )

    def _send_refusal(self, report: QueuedReport) -> None:
        """Deliver one queued refusal of a misdirected capsule (with retries) and settle it:
        delivered when recorded, refused (kept a week) when the control plane declines it.
        Raises RunnerError while the control plane cannot be reached."""
        action = f"report refusal of lease {report.lease_id}"
        response = self._post(
            REFUSALS_PATH, {"envelope": dict(report.envelope)}, action, interruptible=True
        )
        status = response.status_code
        if status in FATAL_STATUSES or status >= 500:
            raise problem_of(response, action)
        if status in (200, 201):
            try:
                state = str(json_object(response, action).get("state"))
            except RunnerError:
                state = "recorded"
            self._settle([(report, DELIVERED, state)])
            log.warning(
                "lease %s: refusal of the misdirected capsule recorded; proposal is %s",
                report.lease_id,
                state,
            )
            return
        problem = problem_of(response, action).summary
        self._settle([(report, REFUSED, problem)])
        log.error(
            "lease %s: refusal not recorded: %s (kept as refused in %s)",
            report.lease_id,
            problem,
            self.outbox.path,
        )

    def _execute(
        self, lease: Lease, capsule: Capsule, assignment: Assignment, lost: threading.Event
    ) -> None:
        kind = capsule.proposal.kind
        log.info("lease %s: running proposal %s (%s)", lease.lease_id, capsule.proposal_id, kind)
        if kind not in self.kinds:
            error = f"capsule refused: this runner does not run kind {kind!r}"
            log.error("lease %s: %s", lease.lease_id, error)
            statement = unstarted_execution_statement(
                assignment, kind=kind, argv=[], error=error, at=self.clock()
            )
            ok = False
        else:
            result = self._run_spec(kind, capsule.proposal.parameters, capsule.proposal.scope, lost)
            ok = result.ok
            statement = execution_statement(
                assignment,
                kind,
                result,
                parameters=capsule.proposal.parameters,
                redactor=self.redactor,
            )
            log.info(
                "lease %s: %s (exit %s, http %s)",
                lease.lease_id,
                "succeeded" if ok else result.error or "failed",
                result.exit_code,
                result.http_status,
            )
        if lost.is_set():
            log.warning(
                "lease %s was lost: the action was stopped and is not reported", lease.lease_id
            )
            return
        verify = capsule.proposal.verify
        if ok and verify is None:
            # Nothing to check: the verification goes with the execution, in one request.
            skipped = skipped_verification_statement(assignment, execution_ok=True, at=self.clock())
            self._report(lease, [("execution", statement), ("verification", skipped)], lost)
            return
        state = self._report(lease, [("execution", statement)], lost)
        if not ok or state != "verifying" or verify is None:
            return
        context = ActionContext(
            workdir=self.workdir,
            allow_env=self.allow_env,
            allow_urls=self.allow_urls,
            scope=capsule.proposal.scope,
            cancel=lost,
            http_timeout=self.http_timeout,
        )
        check = run_check(verify, context)
        statement = verification_statement(assignment, check, redactor=self.redactor)
        log.info(
            "lease %s: verification %s after %d attempt(s)",
            lease.lease_id,
            "passed" if check.passed else "failed",
            check.attempts,
        )
        if lost.is_set():
            log.warning("lease %s was lost during verification; not reported", lease.lease_id)
            return
        self._report(lease, [("verification", statement)], lost)

    def _run_spec(
        self,
        kind: str,
        parameters: Mapping[str, Any],
        scope: Sequence[str],
        cancel: threading.Event,
    ) -> ActionOutcome:
        """Run one action through its kind (built in or plugin); failures come back as outcomes.

        The kind sees only this runner's workdir, allow-lists, the proposal's scope and the
        cancel event (set when the lease is lost).
        """
        context = ActionContext(
            workdir=self.workdir,
            allow_env=self.allow_env,
            allow_urls=self.allow_urls,
            scope=tuple(scope),
            cancel=cancel,
            http_timeout=self.http_timeout,
        )
        action = self.actions[kind]
        try:
            return action.run(parameters, context)
        except Exception as exc:  # a plugin is third-party code: fail the action, not the runner
            log.exception("kind %s raised while running", kind)
            return refused(f"kind {kind!r} failed: {type(exc).__name__}: {exc}")

    def _report(
        self,
        lease: Lease,
        statements: Sequence[tuple[str, Mapping[str, Any]]],
        lost: threading.Event,
    ) -> str | None:
        """Sign (stage, statement) reports of one lease, queue them in the outbox, and send
        them in one request; the proposal's state after the last, or None (refused, lease
        lost, or still queued).

        While the control plane is unreachable the reports are resent with backoff until they
        are delivered or the lease runs out by its last heartbeat (or the runner stops); they
        then stay in the outbox and ``flush_outbox`` sends them when the runner polls again.
        """
        signed = [(stage, self.key.sign_statement(statement)) for stage, statement in statements]
        stages = " and ".join(stage for stage, _ in statements)
        proposal_id = subject_id(statements[0][1])
        try:
            queued = self.outbox.add_many(
                lease.lease_id,
                lease.fencing_token,
                signed,
                proposal_id=proposal_id,
                now=self.clock(),
            )
        except OutboxError as exc:
            # Fail open for delivery, not for evidence: send it now, say loudly it is unqueued.
            log.error("lease %s: %s; sending without a queue", lease.lease_id, exc)
            queued = [
                QueuedReport(
                    lease.lease_id,
                    1 if stage == "execution" else 2,
                    stage,
                    proposal_id,
                    lease.fencing_token,
                    envelope,
                    "unqueued",
                )
                for stage, envelope in signed
            ]
        until = self.heartbeats.renewed(lease.lease_id, lease.expires_at)
        attempt = 0
        state: str | None = None
        while True:
            sent = self._sender.send(queued)
            if any(one.lost for one in sent):
                lost.set()
            for one in sent:
                if one.settled:
                    state = one.state
            queued = [report for report, one in zip(queued, sent, strict=True) if not one.settled]
            if not queued:
                if attempt:
                    log.warning(
                        "lease %s: %s report delivered after %d retries",
                        lease.lease_id,
                        stages,
                        attempt,
                    )
                return state
            if attempt == 0 or attempt % 10 == 0:
                log.warning(
                    "lease %s: %s report queued in the outbox (%s); retrying with backoff",
                    lease.lease_id,
                    stages,
                    sent[-1].problem,
                )
            delay = self._backoff(attempt)
            attempt += 1
            until = self.heartbeats.renewed(lease.lease_id, until)
            if self._give_up_after(delay, lost, until):
                log.warning(
                    "lease %s: %s report stays in the outbox; it is sent when the runner polls",
                    lease.lease_id,
                    stages,
                )
                return None

    def _give_up_after(self, delay: float, lost: threading.Event, until: datetime) -> bool:
        """Wait ``delay`` s; True when the runner stops, the lease is lost or runs out."""
        deadline = time.monotonic() + delay  # the pause on the local clock, the lease's on
        while True:  # the runner's (the one its lease checks use)
            if self._stop.is_set() or lost.is_set() or self.clock() >= until:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._stop.wait(min(0.1, left))

    def _send_reports(self, reports: Sequence[QueuedReport]) -> list[Sent]:
        """One attempt to deliver queued reports, in as few requests as their size allows
        (see ``delivery.batches``); one answer per report, in order."""
        sent: list[Sent] = []
        for batch in batches(reports):
            sent += self._send_batch(batch)
        return sent

    def _send_batch(self, reports: Sequence[QueuedReport]) -> list[Sent]:
        """One attempt to deliver queued reports in one request; each answered one is settled
        in the outbox.

        Unreachable, 429 and 5xx answers leave them all pending (the control plane accepts
        each lease and sequence once, so resending is safe); a refused report (404, 409, 422)
        is settled as refused and logged: the signed statement stays in the outbox for a week.
        """
        action = describe(reports)
        try:
            response = self._client.post(REPORTS_PATH, json=batch_body(reports))
        except httpx.TransportError as exc:
            where = safe_url(self.server)
            problem = f"cannot reach {where} ({type(exc).__name__})"
            return [Sent(False, None, problem) for _ in reports]
        status = response.status_code
        if status in RETRY_STATUSES or status >= 500:
            problem = problem_of(response, action).summary
            return [Sent(False, None, problem) for _ in reports]
        if status not in (200, 201):
            raise problem_of(response, action)  # the request itself is refused (token, body)
        try:
            answers = read_answers(response.json(), len(reports))
        except ValueError as exc:
            return [Sent(False, None, f"{action}: {exc}") for _ in reports]
        settle: list[tuple[QueuedReport, str, str]] = []
        sent: list[Sent] = []
        fatal: ServerProblem | None = None
        for report, answer in zip(reports, answers, strict=True):
            if answer.recorded:
                settle.append((report, DELIVERED, str(answer.state)))
                sent.append(Sent(True, answer.state, ""))
                log.info(
                    "lease %s: %s recorded; proposal is %s",
                    report.lease_id,
                    report.stage,
                    answer.state,
                )
            elif answer.status in FATAL_STATUSES:
                # A refused identity: keep the report for a fixed runner.
                fatal = fatal or ServerProblem(answer.status, "", answer.problem, action)
                sent.append(Sent(False, None, answer.problem))
            else:
                settle.append((report, REFUSED, answer.problem))
                sent.append(Sent(True, None, answer.problem, answer.status in LOST_STATUSES))
                log.error(
                    "lease %s: %s report refused: %s; dropped (kept as refused in %s)",
                    report.lease_id,
                    report.stage,
                    answer.problem,
                    self.outbox.path,
                )
        self._settle(settle)
        if fatal is not None:
            raise fatal
        return sent

    def _settle(self, settled: list[tuple[QueuedReport, str, str]]) -> None:
        queued = [item for item in settled if item[0].status != "unqueued"]
        try:
            self.outbox.settle_many(queued, now=self.clock())
        except OutboxError as exc:
            log.error("%s", exc)

    def flush_outbox(self) -> int:
        """Send the reports left in the outbox (after an outage or a restart), each lease's in
        sequence order, in batches; how many were settled. Raises RunnerError while the
        control plane is still unreachable, so the poll loop backs off. Reports of leases a
        slot is working on are left to that slot; refusals of misdirected capsules go one by
        one to their own endpoint."""
        with self._active_lock:
            active = set(self._active)
        pending = [r for r in self.outbox.pending() if r.lease_id not in active]
        settled = 0
        for refusal in [r for r in pending if r.stage == REFUSAL]:
            self._send_refusal(refusal)  # misdirected capsules: their own endpoint
            settled += 1
        pending = [r for r in pending if r.stage != REFUSAL]
        for start in range(0, len(pending), MAX_BATCH):
            batch = pending[start : start + MAX_BATCH]
            for report, sent in zip(batch, self._send_reports(batch), strict=True):
                if not sent.settled:
                    raise RunnerError(
                        f"lease {report.lease_id}: {report.stage} report still in the outbox:"
                        f" {sent.problem}"
                    )
                settled += 1
        return settled
