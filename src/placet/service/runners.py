"""The control plane's side of the lease protocol: register, lease, heartbeat, report, reap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from placet.domain.errors import Conflict, Forbidden, InputError, NotFound, PlacetError
from placet.domain.ids import new_id
from placet.domain.labels import check_labels, matches, selector_for
from placet.domain.lifecycle import (
    RUNNING,
    Fail,
    Lease,
    ProposalMachine,
    ReportExecution,
    ReportVerification,
    Requeue,
    Stage,
    State,
)
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.signing import PublicKey, SignatureError, open_envelope
from placet.evidence.bundle import CONTROL_PLANE, BundleKey
from placet.evidence.errors import MalformedEvidence
from placet.evidence.statements import statement_of
from placet.runners.capsule import capsule_digest, issue_capsule
from placet.runners.times import format_time
from placet.service.clock import parse_rfc3339, rfc3339
from placet.service.codec import snapshot_from_json
from placet.service.context import Context
from placet.service.ledger import LedgerService
from placet.service.principals import PrincipalService
from placet.service.proposals import ProposalService
from placet.service.runner_checks import (
    KEY_BY_ADMIN,
    KEY_BY_SELF,
    LEASE_CANDIDATES,
    LEASE_PAGES,
    MAX_REPORTS,
    envelope_sha256,
    is_refusal,
    known_kinds,
    lease_count,
    public_key_of,
    report_fields,
    report_sequence,
    require_runner,
    signed_refusal,
)
from placet.store.tables import lease_reports, leases, principals, proposals

ACTIVE = "active"
# A lease whose genuine capsule another runner was handed and refused: it leaked, so it ends.
MISDIRECTED = "misdirected"
# The lease_reports number of that refusal (the leased runner's own reports count from 1).
REFUSAL_SEQUENCE = 0
REFUSAL_STAGE = "refusal"


# A lease with the report of a given sequence, if one was recorded (r_stage NULL if not).
_LEASE_AND_REPORT = (
    select(
        leases,
        lease_reports.c.stage.label("r_stage"),
        lease_reports.c.envelope_sha256.label("r_sha256"),
        lease_reports.c.state.label("r_state"),
    )
    .select_from(
        leases.outerjoin(
            lease_reports,
            and_(
                lease_reports.c.lease_id == leases.c.id,
                lease_reports.c.sequence == bindparam("b_sequence"),
            ),
        )
    )
    .where(leases.c.id == bindparam("b_lease"))
)


class _Refused(Exception):
    """A report of a batch was refused: the pass is rolled back and made again without it."""

    def __init__(self, index: int, error: PlacetError) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class RunnerService:
    """Hands authorized proposals to runners under fenced leases and records what they report."""

    def __init__(self, ctx: Context, ledger: LedgerService, proposals: ProposalService) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.proposals = proposals

    def register(self, runner: Principal, public_key: Any, kinds: Any) -> dict[str, Any]:
        """Record the runner's kinds (and its public key, unless an admin registered one).

        A key an admin registered (``placet runner register``) is never replaced by the
        runner: presenting another one is a Conflict (409). A runner created without a key
        (``principal add --kind runner``) records its own, as before.
        """
        require_runner(runner, "register")
        key = public_key_of(public_key)
        kind_list = known_kinds(kinds)
        with self.ctx.write() as conn:
            me = conn.execute(select(principals).where(principals.c.id == runner.id)).one()
            if me.key_source == KEY_BY_ADMIN and me.public_key != key.b64:
                stored = PublicKey.from_b64(me.public_key)
                raise Conflict(
                    f"runner {runner.name} was registered by an admin with key"
                    f" {stored.keyid[:16]}…; it cannot be replaced by key {key.keyid[:16]}…"
                    " (an admin registers a new runner for a new key)"
                )
            source = me.key_source if me.public_key == key.b64 else KEY_BY_SELF
            conn.execute(
                update(principals)
                .where(principals.c.id == runner.id)
                .values(public_key=key.b64, kinds=kind_list, key_source=source or KEY_BY_SELF)
            )
        return {
            "runner": runner.ref(),
            "keyid": key.keyid,
            "kinds": kind_list,
            "ignored_kinds": sorted(set(kinds) - set(kind_list)),
            "labels": me.labels or {},
            "keys": [BundleKey(self.ctx.key.public, CONTROL_PLANE).as_dict()],
        }

    def enrol(
        self,
        principals_service: PrincipalService,
        name: Any,
        public_key: Any,
        owner: Any,
        labels: Any,
    ) -> dict[str, Any]:
        """Admin registration: create runner ``name`` owned by human ``owner``, with its key
        (base64 or PEM) and labels; returns ``{"id", "name", "token"}`` (token shown once)."""
        if not isinstance(name, str) or not name:
            raise InputError("name", "is required: the runner's unique name")
        if not isinstance(owner, str) or not owner:
            raise InputError("owner", "is required: the human answerable for the runner")
        if not isinstance(public_key, str) or not public_key.strip():
            raise InputError("public_key", "is required: the runner.pub of `placet runner init`")
        try:
            key = PublicKey.from_text(public_key)
        except SignatureError as exc:
            raise InputError("public_key", str(exc)) from None
        checked = check_labels(labels)
        with self.ctx.read() as conn:
            taken = conn.execute(
                select(principals.c.name).where(principals.c.public_key == key.b64)
            ).first()
        if taken is not None:
            raise Conflict(f"key {key.keyid[:16]}… is already the key of runner {taken.name}")
        principal, token = principals_service.add(
            name,
            "runner",
            owner,
            columns={"public_key": key.b64, "labels": checked, "key_source": KEY_BY_ADMIN},
        )
        return {
            "id": principal.id,
            "name": principal.name,
            "token": token,
            "owner": owner,
            "keyid": key.keyid,
            "labels": checked,
        }

    def set_labels(self, name: str, labels: Any) -> dict[str, Any]:
        """Replace the labels of runner ``name`` (admin); capsules are targeted by them."""
        checked = check_labels(labels)
        with self.ctx.write() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
            if row is None or row.kind != PrincipalKind.RUNNER.value:
                raise NotFound("runner", name)
            conn.execute(update(principals).where(principals.c.id == row.id).values(labels=checked))
        return {"name": name, "labels": checked}

    def _eligible(
        self, conn: Connection, allowed: list[str], labels: Any, now: Any, most: int
    ) -> list[Any]:
        """Up to ``most`` of the oldest authorized proposals of ``allowed`` kinds this runner's
        labels may take now, each with its selector (a runner without labels: none)."""
        if not labels:
            return []
        found: list[Any] = []
        after = ""
        page = min(LEASE_CANDIDATES, most + 4)  # rows carry snapshots: read few, then more
        for _ in range(LEASE_PAGES):
            candidates = conn.execute(
                select(proposals)
                .where(
                    proposals.c.state == State.AUTHORIZED.value,
                    proposals.c.kind.in_(allowed),
                    proposals.c.id > after,
                )
                .order_by(proposals.c.id)
                .limit(page)
            ).all()
            for candidate in candidates:
                loaded = (candidate, ProposalMachine(snapshot_from_json(candidate.snapshot)))
                content = loaded[1].snapshot.content
                if content is None or not loaded[1].may_lease(now):
                    continue
                try:
                    selector = selector_for(content.environment, content.parameters)
                except InputError:
                    continue  # an unreadable selector matches no runner (fail closed)
                if matches(selector, labels):
                    found.append((loaded, selector))
                    if len(found) >= most:
                        return found
            if len(candidates) < page:
                return found
            after = candidates[-1].id
            page = min(LEASE_CANDIDATES, page * 2)
        return found

    def any_authorized(self, kinds: Any) -> bool:
        """Whether any proposal of ``kinds`` is authorized: a cheap read between lease tries."""
        kind_list = known_kinds(kinds)
        with self.ctx.read() as conn:
            found = conn.execute(
                select(proposals.c.id)
                .where(proposals.c.state == State.AUTHORIZED.value, proposals.c.kind.in_(kind_list))
                .limit(1)
            ).first()
        return found is not None

    def lease(self, runner: Principal, kinds: Any) -> dict[str, Any] | None:
        """Lease the oldest authorized proposal this runner may take (see ``lease_many``)."""
        offers = self.lease_many(runner, kinds, 1)
        return offers[0] if offers else None

    def lease_many(self, runner: Principal, kinds: Any, most: Any = 1) -> list[dict[str, Any]]:
        """Lease up to ``most`` of the oldest authorized proposals of ``kinds`` whose selector
        (the proposal's ``runner_selector``, else env=<environment>) the runner's labels match,
        in one transaction: each gets its own lease, fencing token and signed capsule."""
        require_runner(runner, "lease")
        kind_list = known_kinds(kinds)
        count = lease_count(most)
        now = self.ctx.clock()
        # Look first without the write lock: a request that finds nothing (a runner polling
        # an empty queue) then never queues behind writers.
        if not self.any_authorized(kind_list):
            return []
        with self.ctx.write() as conn:
            allowed, labels, public_key = self._wants(conn, runner, kind_list)
            found = self._eligible(conn, allowed, labels, now, count)
            if not found:
                return []
            runner_key = PublicKey.from_b64(public_key)
            fencing = int(conn.execute(select(func.max(leases.c.fencing_token))).scalar() or 0)
            offers = []
            for (stored_row, machine), selector in found:
                fencing += 1
                offer = self._grant(
                    conn, runner, runner_key, stored_row, machine, selector, fencing, now
                )
                # The labels it was granted under: a runner whose labels an admin changed
                # checks the capsule's selector against these, not the ones it started with.
                offer["runner_labels"] = labels
                offers.append(offer)
        return offers

    def _wants(
        self, conn: Connection, runner: Principal, kinds: list[str]
    ) -> tuple[list[str], Any, str]:
        """The kinds this runner asks for and registered (sorted), its labels and its key."""
        me = conn.execute(
            select(principals.c.public_key, principals.c.kinds, principals.c.labels).where(
                principals.c.id == runner.id
            )
        ).one()
        if not me.public_key:
            raise Conflict("register the runner's public key first (POST /v1/runners/register)")
        return sorted(set(kinds) & set(me.kinds or [])), me.labels, str(me.public_key)

    def _grant(
        self,
        conn: Connection,
        runner: Principal,
        runner_key: PublicKey,
        row: Any,
        machine: ProposalMachine,
        selector: Any,
        fencing: int,
        now: Any,
    ) -> dict[str, Any]:
        """Issue one lease and its signed capsule, and record the capsule statement."""
        lease_id = new_id()
        snap = machine.snapshot
        assert snap.content is not None
        capsule_ttl = timedelta(seconds=self.ctx.settings.capsule_seconds)
        capsule = issue_capsule(
            self.ctx.key,
            proposal_id=row.id,
            proposal=snap.content.as_dict(),
            proposal_digest=snap.digest,
            runner_id=runner.id,
            lease_id=lease_id,
            fencing_token=fencing,
            issued_at=now,
            ttl=capsule_ttl,
            target={"selector": selector},
        )
        expires = now + timedelta(seconds=self.ctx.settings.lease_seconds)
        digest = capsule_digest(capsule)
        self.proposals.step(
            conn,
            row.id,
            machine,
            Lease(runner, fencing, now),
            {
                "runner": runner.ref(),
                "runner_keyid": runner_key.keyid,
                "lease_id": lease_id,
                "fencing_token": fencing,
                "capsule_digest": digest,
                "proposal_digest": snap.digest,
                "expires_at": format_time(now + capsule_ttl),
            },
        )
        conn.execute(
            leases.insert().values(
                id=lease_id,
                proposal_id=row.id,
                runner_id=runner.id,
                fencing_token=fencing,
                expires_at=rfc3339(expires),
                status=ACTIVE,
                capsule_digest=digest,
                runner_public_key=runner_key.b64,
            )
        )
        self.proposals.save(conn, row.id, machine, row.created_at)
        return {
            "lease_id": lease_id,
            "proposal_id": row.id,
            "fencing_token": fencing,
            "expires_at": rfc3339(expires),
            "heartbeat_seconds": self.ctx.settings.lease_seconds / 3,
            "capsule": capsule,
        }

    def _active_lease(
        self, conn: Connection, runner: Principal, lease_id: str, fencing: Any
    ) -> Any:
        if isinstance(fencing, bool) or not isinstance(fencing, int):
            raise InputError("fencing_token", "must be an integer")
        lease = conn.execute(select(leases).where(leases.c.id == lease_id)).first()
        return self._check_lease(runner, lease, lease_id, fencing)

    def _check_lease(self, runner: Principal, lease: Any, lease_id: str, fencing: int) -> Any:
        """The lease row, if it is this runner's, live and fenced by ``fencing``."""
        if lease is None:
            raise NotFound("lease", lease_id)
        if lease.runner_id != runner.id:
            raise Forbidden(runner.name, "use this lease", "it belongs to another runner")
        if lease.fencing_token != fencing:
            raise Conflict("stale fencing token: this lease was superseded")
        if lease.status != ACTIVE:
            raise Conflict(f"lease {lease_id} is {lease.status}; stop and do not report")
        if parse_rfc3339(lease.expires_at) <= self.ctx.clock():
            raise Conflict(f"lease {lease_id} has expired; stop and do not report")
        return lease

    def heartbeat(self, runner: Principal, lease_id: str, fencing: Any) -> dict[str, Any]:
        """Extend a live lease; Conflict (409) tells the runner it has lost it."""
        require_runner(runner, "heartbeat")
        with self.ctx.write() as conn:
            self._active_lease(conn, runner, lease_id, fencing)
            expires = self.ctx.clock() + timedelta(seconds=self.ctx.settings.lease_seconds)
            conn.execute(
                update(leases).where(leases.c.id == lease_id).values(expires_at=rfc3339(expires))
            )
        return {"expires_at": rfc3339(expires)}

    def report(
        self,
        runner: Principal,
        lease_id: str,
        fencing: Any,
        envelope: Any,
        stage: Stage,
        sequence: Any = None,
    ) -> dict[str, Any]:
        """Check and record a runner-signed execution or verification statement, once.

        A report is known by its lease and ``sequence`` (default: 1 for execution, 2 for
        verification). The same report sent again (a retry after a lost answer, or from the
        runner's outbox after an outage) answers what the first one did and changes nothing.
        """
        require_runner(runner, "report")
        with self.ctx.write() as conn:
            return self._record(conn, runner, lease_id, fencing, envelope, stage, sequence)

    def report_many(self, runner: Principal, items: Any) -> list[dict[str, Any]]:
        """Record a batch of reports in one transaction, each as ``report`` would, in order.

        Each report stands alone: its answer is ``{"state"}``, or ``{"error"}`` with the
        problem (a refused report changes nothing; the others are still recorded).
        """
        require_runner(runner, "report")
        if not isinstance(items, list) or not items:
            raise InputError("reports", "must be a non-empty list of reports")
        if len(items) > MAX_REPORTS:
            raise InputError("reports", f"at most {MAX_REPORTS} reports per request")
        # Optimistic: record every report in one transaction. When one is refused, roll
        # the whole transaction back and record the batch again without it (its answer
        # kept); a refused report thus changes nothing, and the others are recorded as if
        # it had not been sent. Refusals are rare, so the usual batch costs one pass.
        refused: dict[int, PlacetError] = {}
        while True:
            try:
                return self._record_batch(runner, items, refused)
            except _Refused as again:
                refused[again.index] = again.error

    def _record_batch(
        self, runner: Principal, items: list[Any], refused: Mapping[int, PlacetError]
    ) -> list[dict[str, Any]]:
        """One pass of ``report_many``: raises _Refused (rolling back) at a new refusal."""
        answers: list[dict[str, Any]] = []
        with self.ctx.write() as conn:
            for index, item in enumerate(items):
                if index in refused:
                    answers.append({"error": refused[index]})
                    continue
                try:
                    lease_id, fencing, envelope, stage, sequence = report_fields(item)
                    answer = self._record(
                        conn, runner, lease_id, fencing, envelope, stage, sequence
                    )
                except PlacetError as exc:
                    raise _Refused(index, exc) from None
                answers.append(answer)
        return answers

    def _record(
        self,
        conn: Connection,
        runner: Principal,
        lease_id: str,
        fencing: Any,
        envelope: Any,
        stage: Stage,
        sequence: Any,
    ) -> dict[str, Any]:
        """Check and record one report in the caller's write transaction (see ``report``)."""
        number = report_sequence(sequence, stage)
        if isinstance(fencing, bool) or not isinstance(fencing, int):
            raise InputError("fencing_token", "must be an integer")
        # The lease and, if this report was recorded before, its answer: one read.
        lease = conn.execute(_LEASE_AND_REPORT, {"b_lease": lease_id, "b_sequence": number}).first()
        if lease is not None and lease.r_stage is not None:
            return self._recorded(runner, lease, fencing, number, envelope, stage)
        lease = self._check_lease(runner, lease, lease_id, fencing)
        stored_row, machine = self.proposals.load(conn, lease.proposal_id)
        predicate = self._check_statement(lease, machine.snapshot.digest, envelope, stage)
        if stage is Stage.EXECUTION:
            if predicate.get("capsule_digest") != lease.capsule_digest and not is_refusal(
                predicate
            ):
                raise InputError("envelope", "capsule_digest does not match the leased capsule")
            event: Any = ReportExecution(runner, fencing, predicate.get("ok") is True)
        else:
            event = ReportVerification(runner, fencing, predicate.get("passed") is True)
        transitions = machine.handle(event)
        self.ledger.append_envelope(conn, lease.proposal_id, stage, envelope)
        if machine.snapshot.state in (State.SUCCEEDED, State.FAILED):
            if predicate.get("error"):
                machine.snapshot = replace(
                    machine.snapshot, reason=f"{machine.snapshot.reason}: {predicate['error']}"
                )
            if stage is Stage.VERIFICATION and machine.snapshot.state is State.FAILED:
                self._file_rollback(conn, lease.proposal_id, machine)
            self.proposals.close(conn, lease.proposal_id, machine, transitions)
            conn.execute(update(leases).where(leases.c.id == lease_id).values(status="done"))
        self.proposals.save(conn, lease.proposal_id, machine, stored_row.created_at)
        state = machine.snapshot.state.value if machine.snapshot.state else None
        conn.execute(
            lease_reports.insert().values(
                lease_id=lease_id,
                sequence=number,
                stage=stage.value,
                envelope_sha256=envelope_sha256(envelope),
                state=state or "",
                created_at=rfc3339(self.ctx.clock()),
            )
        )
        return {"state": state}

    def _recorded(
        self,
        runner: Principal,
        lease: Any,
        fencing: int,
        sequence: int,
        envelope: Any,
        stage: Stage,
    ) -> dict[str, Any]:
        """The answer already given to this report (lease, sequence).

        The lease's runner and fencing token are checked as for a new report; the same
        sequence with another statement or stage is a Conflict (409).
        """
        if lease.runner_id != runner.id:
            raise Forbidden(runner.name, "use this lease", "it belongs to another runner")
        if lease.fencing_token != fencing:
            raise Conflict("stale fencing token: this lease was superseded")
        if lease.r_stage != stage.value or lease.r_sha256 != envelope_sha256(envelope):
            raise Conflict(
                f"report {sequence} of lease {lease.id} was already recorded"
                f" (a {lease.r_stage} statement); this is another statement"
            )
        return {"state": lease.r_state or None}

    def _file_rollback(self, conn: Connection, proposal_id: str, machine: ProposalMachine) -> None:
        """After a failed verification, file the declared rollback (if any) as a new proposal
        and name it in the original's closure reason; an execution failure files nothing."""
        _, note = self.proposals.file_rollback(conn, proposal_id, machine)
        if note:
            machine.snapshot = replace(
                machine.snapshot, reason=f"{machine.snapshot.reason}; {note}"
            )

    def _check_statement(
        self, lease: Any, digest: str, envelope: Any, stage: Stage
    ) -> Mapping[str, Any]:
        """The predicate of a runner statement, after checking signature, subject and lease."""
        key = PublicKey.from_b64(lease.runner_public_key)
        try:
            open_envelope(envelope, [key])
            said = statement_of(envelope)
        except SignatureError as exc:
            raise InputError("envelope", f"{exc} (runner key {key.keyid[:16]}…)") from None
        except MalformedEvidence as exc:
            raise InputError(f"envelope.{exc.field}", exc.problem) from None
        if (said.proposal_id, said.digest) != (lease.proposal_id, digest):
            raise InputError("envelope", "the statement's subject is not this proposal and digest")
        if said.stage is not stage:
            raise InputError(
                "envelope", f"expected a {stage.value} statement, not {said.stage.value}"
            )
        predicate = said.predicate
        if (predicate.get("lease_id"), predicate.get("fencing_token")) != (
            lease.id,
            lease.fencing_token,
        ):
            raise InputError("envelope", "the statement names another lease or fencing token")
        if predicate.get("proposal_digest") != digest:
            raise InputError("envelope", "proposal_digest does not match the proposal")
        return predicate

    def refuse(self, runner: Principal, envelope: Any) -> dict[str, Any]:
        """Record ``runner``'s signed refusal of a genuine capsule leased to ANOTHER runner.

        The capsule leaked (it reached a runner it was not leased to), so the channel is not
        trusted and nothing runs: the lease ends ``misdirected``, the proposal ``failed`` with
        a reason naming both runners and the lease, and the refusal is logged with a closure
        saying which runner key refused. Accepted only when signed by the caller's registered
        key, about a live lease of another runner, with that lease's capsule digest. The same
        refusal resent answers the same and records nothing; one about a finished lease is a
        Conflict (409).
        """
        require_runner(runner, "report a refusal")
        with self.ctx.write() as conn:
            me = conn.execute(
                select(principals.c.public_key).where(principals.c.id == runner.id)
            ).one()
            if not me.public_key:
                raise Conflict("register the runner's public key first (POST /v1/runners/register)")
            key = PublicKey.from_b64(me.public_key)
            said = signed_refusal(envelope, key, runner)
            predicate = said.predicate
            lease_id = str(predicate["lease_id"])
            lease = conn.execute(select(leases).where(leases.c.id == lease_id)).first()
            if lease is None:
                raise NotFound("lease", lease_id)
            if lease.runner_id == runner.id:
                raise InputError(
                    "envelope.predicate.lease_id",
                    f"lease {lease_id} is this runner's own: report the refusal of its capsule"
                    " as the lease's execution report",
                )
            if said.proposal_id != lease.proposal_id:
                raise InputError(
                    "envelope.subject",
                    f"names proposal {said.proposal_id}, not {lease.proposal_id} of lease"
                    f" {lease_id}",
                )
            if predicate.get("fencing_token") != lease.fencing_token:
                raise InputError(
                    "envelope.predicate.fencing_token",
                    f"is not the fencing token of lease {lease_id}",
                )
            if predicate.get("capsule_digest") != lease.capsule_digest:
                raise InputError(
                    "envelope.predicate.capsule_digest",
                    f"is not the digest of the capsule issued for lease {lease_id}; only the"
                    " refusal of a genuine capsule is recorded",
                )
            answer = {"lease_id": lease_id, "proposal_id": lease.proposal_id}
            again = conn.execute(
                select(lease_reports).where(
                    lease_reports.c.lease_id == lease_id,
                    lease_reports.c.sequence == REFUSAL_SEQUENCE,
                )
            ).first()
            if again is not None:
                if again.envelope_sha256 != envelope_sha256(envelope):
                    raise Conflict(
                        f"lease {lease_id} was already ended by another refusal; this one is"
                        " not recorded"
                    )
                return {"state": again.state, **answer, "lease_status": lease.status}
            if lease.status != ACTIVE:
                raise Conflict(f"lease {lease_id} is {lease.status}; the refusal is not recorded")
            stored_row, machine = self.proposals.load(conn, lease.proposal_id)
            digest = machine.snapshot.digest
            if said.digest != digest or predicate.get("proposal_digest") != digest:
                raise InputError(
                    "envelope.predicate.proposal_digest", "does not match the proposal's digest"
                )
            if machine.state not in RUNNING:
                raise Conflict(
                    f"proposal {lease.proposal_id} is {machine.state}; the refusal is not recorded"
                )
            owner = conn.execute(
                select(principals.c.id, principals.c.name, principals.c.kind).where(
                    principals.c.id == lease.runner_id
                )
            ).one()
            leased_to = {"id": owner.id, "name": owner.name, "kind": owner.kind}
            reason = (
                f"capsule misdirected: the capsule of lease {lease_id}, leased to runner"
                f" {owner.name} ({owner.id}), was presented to runner {runner.name}"
                f" ({runner.id}), which refused it; a leaked capsule means the channel is not"
                " trusted, so nothing runs"
            )
            self.ledger.append_envelope(conn, lease.proposal_id, Stage.EXECUTION, envelope)
            transitions = machine.handle(Fail(reason))
            self.ledger.record(
                conn,
                lease.proposal_id,
                digest,
                Stage.CLOSURE,
                {
                    "state": State.FAILED.value,
                    "reason": reason,
                    "misdirected": {
                        "lease_id": lease_id,
                        "fencing_token": lease.fencing_token,
                        "capsule_digest": lease.capsule_digest,
                        "leased_to": leased_to,
                        "refused_by": runner.ref(),
                        "runner_keyid": key.keyid,
                        "runner_public_key": key.b64,
                    },
                },
                transitions,
            )
            conn.execute(update(leases).where(leases.c.id == lease_id).values(status=MISDIRECTED))
            self.proposals.save(conn, lease.proposal_id, machine, stored_row.created_at)
            conn.execute(
                lease_reports.insert().values(
                    lease_id=lease_id,
                    sequence=REFUSAL_SEQUENCE,
                    stage=REFUSAL_STAGE,
                    envelope_sha256=envelope_sha256(envelope),
                    state=State.FAILED.value,
                    created_at=rfc3339(self.ctx.clock()),
                )
            )
        return {"state": State.FAILED.value, **answer, "lease_status": MISDIRECTED}

    def reap(self) -> int:
        """Settle proposals whose runner stopped heartbeating (runner lost): an idempotent
        action with retries left goes back to authorized (requeue); any other ends failed."""
        now = rfc3339(self.ctx.clock())
        with self.ctx.read() as conn:
            expired = conn.execute(
                select(leases.c.id).where(leases.c.status == ACTIVE, leases.c.expires_at < now)
            ).all()
        count = 0
        for item in expired:
            with self.ctx.write() as conn:
                lease = conn.execute(select(leases).where(leases.c.id == item.id)).one()
                if lease.status != ACTIVE or lease.expires_at >= now:
                    continue
                stored_row, machine = self.proposals.load(conn, lease.proposal_id)
                conn.execute(update(leases).where(leases.c.id == lease.id).values(status="lost"))
                if machine.state in (State.EXECUTING, State.VERIFYING):
                    if machine.may_run_again():
                        attempt, most = machine.attempt()
                        reason = f"runner lost; retrying (attempt {attempt} of {most})"
                        self.proposals.step(
                            conn,
                            lease.proposal_id,
                            machine,
                            Requeue(reason),
                            {
                                "reason": reason,
                                "runner_id": lease.runner_id,
                                "lease_id": lease.id,
                                "fencing_token": lease.fencing_token,
                                "attempt": attempt,
                                "attempts": most,
                                "proposal_digest": machine.snapshot.digest,
                            },
                        )
                    else:
                        reason = f"runner lost: lease {lease.id} expired without a heartbeat"
                        transitions = machine.handle(Fail(reason))
                        self.proposals.close(conn, lease.proposal_id, machine, transitions)
                    self.proposals.save(conn, lease.proposal_id, machine, stored_row.created_at)
                    count += 1
        return count
