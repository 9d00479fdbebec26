"""The rules one proposal's record must follow: stage order, bound digests, approvers.

Pure checks over already-authenticated statements (see :mod:`placet.evidence.verify`):
the stage sequence of statements.md, every digest equal to the proposal's, the
proposal content hashing to that digest, and human, distinct, independent approvers
reaching quorum before the capsule. Errors name the entry and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from placet.domain import actions
from placet.domain.canonical import digest_of
from placet.domain.errors import InputError
from placet.domain.lifecycle import Outcome, Stage, State
from placet.evidence.errors import EvidenceError
from placet.evidence.statements import Statement, is_digest


class RecordError(EvidenceError):
    """The record breaks a rule; ``field`` names where (``entries[4].predicate.vote``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# phase -> stages that may come next; the phase is where the record stands
_NEXT: dict[str, frozenset[Stage]] = {
    "start": frozenset({Stage.PROPOSAL}),
    "proposed": frozenset({Stage.ASSESSMENT, Stage.CLOSURE}),
    "assessed": frozenset({Stage.VALIDATION, Stage.DECISION, Stage.CLOSURE}),
    "validating": frozenset({Stage.DECISION, Stage.CLOSURE}),
    "pending_approval": frozenset({Stage.APPROVAL, Stage.CLOSURE}),
    "authorized": frozenset({Stage.CAPSULE, Stage.CLOSURE}),
    "denied": frozenset({Stage.CLOSURE}),
    "executing": frozenset({Stage.EXECUTION, Stage.REQUEUE, Stage.CLOSURE}),
    "execution_failed": frozenset({Stage.CLOSURE}),
    "verifying": frozenset({Stage.VERIFICATION, Stage.REQUEUE, Stage.CLOSURE}),
    "requeued": frozenset({Stage.CAPSULE, Stage.CLOSURE}),
    "verified": frozenset({Stage.CLOSURE}),
    "verification_failed": frozenset({Stage.CLOSURE}),
    "misdirected": frozenset({Stage.CLOSURE}),
    "closed": frozenset(),
}
# phases in which another runner's refusal of the capsule (a misdirected capsule) may come
_LEASED = frozenset({"executing", "verifying"})
_SIDE_EXITS = frozenset({State.CANCELLED, State.EXPIRED, State.FAILED})
_CLOSURES: dict[str, frozenset[State]] = {
    "denied": frozenset({State.DENIED}),
    "executing": frozenset({State.FAILED}),
    "execution_failed": frozenset({State.FAILED}),
    "verifying": frozenset({State.FAILED}),
    "verified": frozenset({State.SUCCEEDED, State.FAILED}),
    "verification_failed": frozenset({State.FAILED}),
    "misdirected": frozenset({State.FAILED}),
}
# stages whose predicate binds the proposal digest again
_BOUND = frozenset(
    {
        Stage.DECISION,
        Stage.APPROVAL,
        Stage.CAPSULE,
        Stage.EXECUTION,
        Stage.VERIFICATION,
        Stage.REQUEUE,
    }
)


@dataclass(slots=True)
class RecordFacts:
    """What the record establishes, for the verification report."""

    final_state: str = ""
    stages: list[str] = field(default_factory=list)
    approvers: list[str] = field(default_factory=list)
    runner_keyids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _get(predicate: Mapping[str, Any], name: str, where: str, kinds: tuple[type, ...]) -> Any:
    value = predicate.get(name)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        wanted = " or ".join(k.__name__ for k in kinds)
        raise RecordError(f"{where}.predicate.{name}", f"must be {wanted}")
    return value


def principal_ref(value: Any, where: str) -> dict[str, Any]:
    """Check a principal ref ({id, name, kind, owner?}) and return it."""
    if not isinstance(value, dict):
        raise RecordError(where, "must be a principal ref {id, name, kind}")
    for name in ("id", "name", "kind"):
        if not isinstance(value.get(name), str) or not value[name]:
            raise RecordError(f"{where}.{name}", "must be a non-empty string")
    if value["kind"] not in ("human", "agent", "runner"):
        raise RecordError(f"{where}.kind", "must be human, agent or runner")
    if "owner" in value and not isinstance(value["owner"], str):
        raise RecordError(f"{where}.owner", "must be a string")
    return value


@dataclass
class Needed:
    """What the decision asked of humans, as recorded in its statement."""

    count: int = 0
    anyone: bool = True
    eligible: set[str] = field(default_factory=set)
    distinct_from: set[str] = field(default_factory=set)
    owner_may_approve: bool = False
    denials: int = 1
    denied: int = 0


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _marks(name: str, groups: Sequence[str], roles: Sequence[str]) -> set[str]:
    """The selectors naming an approver (as :func:`placet.domain.authority.marks`)."""
    return {
        name,
        f"user:{name}",
        *(f"group:{g}" for g in groups),
        *(f"team:{g}" for g in groups),
        *(f"role:{r}" for r in roles),
    }


class RecordChecker:
    """Walks a proposal's statements in log order and checks each against the rules."""

    def __init__(self, digest: str, runner_keys: set[str]) -> None:
        self.digest = digest
        self.runner_keys = runner_keys
        self.phase = "start"
        self.facts = RecordFacts()
        self.agent: dict[str, Any] = {}
        self.requirement = Needed()
        self.voters: set[str] = set()
        self.capsule: Mapping[str, Any] = {}
        self.execution_ok = False
        self.kind = ""
        self.retries = 0
        self.capsules = 0
        self.refusal: Mapping[str, Any] = {}  # another runner's refusal of the capsule
        self.signed_by: str | None = None

    def misdirected(self, stage: Stage, signed_by: str | None) -> bool:
        """Whether a statement is a runner statement signed by a runner key other than the
        one the capsule names: only another runner's refusal of a misdirected capsule."""
        return (
            stage is Stage.EXECUTION
            and signed_by is not None
            and bool(self.capsule)
            and signed_by != self.capsule.get("runner_keyid")
        )

    def add(self, where: str, statement: Statement, signed_by: str | None = None) -> None:
        """Check the next statement (``where`` names its entry) and advance the phase.

        ``signed_by`` is the keyid a runner statement was verified under; an execution
        statement signed by another runner's key is checked as a misdirected capsule's refusal.
        """
        stage = statement.stage
        self.signed_by = signed_by
        foreign = self.misdirected(stage, signed_by) and self.phase in _LEASED
        if stage not in _NEXT[self.phase] and not foreign:
            allowed = ", ".join(sorted(s.value for s in _NEXT[self.phase])) or "nothing"
            raise RecordError(
                where, f"the {stage.value} statement cannot come here (expected: {allowed})"
            )
        predicate = statement.predicate
        if stage in _BOUND:
            bound = _get(predicate, "proposal_digest", where, (str,))
            if bound != self.digest:
                raise RecordError(
                    f"{where}.predicate.proposal_digest",
                    f"{bound[:16]}… is not the proposal digest {self.digest[:16]}…",
                )
        getattr(self, "_on_" + stage.value)(where, predicate)
        self.facts.stages.append(stage.value)

    def finish(self) -> RecordFacts:
        """The facts, once every statement was added; the record must end with closure."""
        if self.phase != "closed":
            last = self.facts.stages[-1] if self.facts.stages else "nothing"
            raise RecordError(
                "entries",
                f"the record is incomplete: it ends with {last}, not closure "
                "(export the bundle again once the proposal is closed)",
            )
        return self.facts

    # ---- one handler per stage -----------------------------------------------------

    def _on_proposal(self, where: str, predicate: Mapping[str, Any]) -> None:
        content = _get(predicate, "proposal", where, (dict,))
        if digest_of(content) != self.digest:
            raise RecordError(f"{where}.predicate.proposal", "does not hash to the subject digest")
        agent = principal_ref(predicate.get("agent"), f"{where}.predicate.agent")
        if agent["kind"] != "agent":
            raise RecordError(f"{where}.predicate.agent.kind", "a proposal is made by an agent")
        if content.get("agent") != agent["id"]:
            raise RecordError(
                f"{where}.predicate.proposal.agent", "does not name the proposing agent"
            )
        self.agent = agent
        kind = content.get("kind")
        self.kind = kind if isinstance(kind, str) else ""
        self.phase = "proposed"

    def _on_assessment(self, where: str, predicate: Mapping[str, Any]) -> None:
        self.phase = "assessed"

    def _on_validation(self, where: str, predicate: Mapping[str, Any]) -> None:
        self.phase = "validating"

    def _on_decision(self, where: str, predicate: Mapping[str, Any]) -> None:
        outcome = _get(predicate, "outcome", where, (str,))
        approvals = _get(predicate, "approvals", where, (dict,))
        field_name = f"{where}.predicate.approvals"
        legacy = "count" in approvals  # records written before min_approvals/from
        count = approvals.get("count" if legacy else "min_approvals")
        eligible = approvals.get("any_of" if legacy else "eligible", [])
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise RecordError(f"{field_name}.min_approvals", "must be an integer >= 0")
        if not _strings(eligible):
            raise RecordError(f"{field_name}.eligible", "must be a list of strings")
        retries = predicate.get("retries", 0)  # absent in records written before retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise RecordError(f"{where}.predicate.retries", "must be an integer >= 0")
        self.retries = retries
        if outcome == Outcome.ALLOW:
            self.phase = "authorized"
        elif outcome == Outcome.REQUIRE_APPROVAL:
            if count < 1:
                raise RecordError(
                    f"{field_name}.min_approvals", "require_approval needs at least 1"
                )
            policy_from = approvals.get("any_of" if legacy else "from", [])
            distinct = approvals.get("distinct_from", [])
            if not _strings(policy_from) or not _strings(distinct):
                raise RecordError(field_name, "from and distinct_from must be lists of strings")
            denials = approvals.get("denials", 1)
            if isinstance(denials, bool) or not isinstance(denials, int) or denials < 1:
                raise RecordError(f"{field_name}.denials", "must be an integer >= 1")
            self.requirement = Needed(
                count=count,
                anyone=not policy_from,
                eligible=set(eligible),
                distinct_from=set(distinct),
                owner_may_approve=approvals.get("owner_may_approve") is True
                and "proposer-owner" not in distinct,
                denials=denials,
            )
            self.phase = "pending_approval"
        elif outcome == Outcome.DENY:
            self.phase = "denied"
        else:
            raise RecordError(f"{where}.predicate.outcome", f"unknown outcome {outcome!r}")

    def _on_approval(self, where: str, predicate: Mapping[str, Any]) -> None:
        needed = self.requirement
        if predicate.get("escalated") is True:
            more = predicate.get("eligible", [])
            if not _strings(more):
                raise RecordError(f"{where}.predicate.eligible", "must be a list of strings")
            needed.eligible |= set(more)
            self.facts.notes.append(f"escalated to {', '.join(predicate.get('to', [])) or more}")
            return
        vote = _get(predicate, "vote", where, (str,))
        approver = principal_ref(predicate.get("approver"), f"{where}.predicate.approver")
        name = approver["name"]
        if approver["kind"] != "human":
            raise RecordError(
                f"{where}.predicate.approver",
                f"{name} is a {approver['kind']}, and only humans approve or deny",
            )
        if approver["id"] == self.agent["id"]:
            raise RecordError(f"{where}.predicate.approver", f"{name} made the proposal")
        if name == self.agent.get("owner") and not needed.owner_may_approve:
            raise RecordError(f"{where}.predicate.approver", f"{name} owns the proposing agent")
        if approver["id"] in self.voters:
            raise RecordError(f"{where}.predicate.approver", f"{name} has already voted")
        self.voters.add(approver["id"])
        raw = predicate.get("approver")
        recorded = isinstance(raw, Mapping) and "groups" in raw and "roles" in raw
        if recorded:
            assert isinstance(raw, Mapping)
            if not _strings(raw["groups"]) or not _strings(raw["roles"]):
                raise RecordError(f"{where}.predicate.approver", "groups and roles must be lists")
            if "approver" not in raw["roles"]:
                raise RecordError(
                    f"{where}.predicate.approver.roles", f"{name} does not hold the approver role"
                )
            names = _marks(name, raw["groups"], raw["roles"])
            clash = sorted(names & needed.distinct_from)
            if clash:
                raise RecordError(
                    f"{where}.predicate.approver", f"{name} matches distinct_from {clash[0]}"
                )
            if not needed.anyone and not names & needed.eligible:
                raise RecordError(
                    f"{where}.predicate.approver",
                    f"{name} is not among {', '.join(sorted(needed.eligible))}",
                )
        elif not needed.anyone and name not in needed.eligible:
            if all(":" not in e or e.startswith("user:") for e in needed.eligible):
                raise RecordError(
                    f"{where}.predicate.approver",
                    f"{name} is not among {', '.join(sorted(needed.eligible))}",
                )
            self.facts.notes.append(
                f"{name}'s groups are not recorded; eligibility "
                f"({', '.join(sorted(needed.eligible))}) cannot be checked offline"
            )
        if vote == "deny":
            needed.denied += 1
            if needed.denied >= needed.denials:
                self.phase = "denied"
            return
        if vote != "approve":
            raise RecordError(f"{where}.predicate.vote", "must be approve or deny")
        self.facts.approvers.append(name)
        if len(self.facts.approvers) >= needed.count:
            self.phase = "authorized"

    def _on_capsule(self, where: str, predicate: Mapping[str, Any]) -> None:
        runner = principal_ref(predicate.get("runner"), f"{where}.predicate.runner")
        if runner["kind"] != "runner":
            raise RecordError(f"{where}.predicate.runner.kind", "a capsule goes to a runner")
        keyid = _get(predicate, "runner_keyid", where, (str,))
        if keyid not in self.runner_keys:
            raise RecordError(
                f"{where}.predicate.runner_keyid",
                f"{keyid[:16]}… is not among the bundle's runner keys",
            )
        _get(predicate, "lease_id", where, (str,))
        _get(predicate, "fencing_token", where, (int,))
        if not is_digest(_get(predicate, "capsule_digest", where, (str,))):
            raise RecordError(f"{where}.predicate.capsule_digest", "is not a SHA-256 hex digest")
        if self.capsules and self.phase != "requeued":
            raise RecordError(where, "a second capsule needs a requeue statement before it")
        self.capsules += 1
        self.capsule = predicate
        if keyid not in self.facts.runner_keyids:
            self.facts.runner_keyids.append(keyid)
        self.phase = "executing"

    def _check_lease(self, where: str, predicate: Mapping[str, Any], names: Sequence[str]) -> None:
        runner = principal_ref(predicate.get("runner"), f"{where}.predicate.runner")
        if runner["id"] != self.capsule["runner"]["id"]:
            raise RecordError(f"{where}.predicate.runner", "is not the runner the capsule names")
        for name in names:
            if predicate.get(name) != self.capsule[name]:
                raise RecordError(f"{where}.predicate.{name}", "does not match the capsule")

    def _on_misdirected(self, where: str, predicate: Mapping[str, Any], keyid: str) -> None:
        """Another runner (key ``keyid``, in the bundle) was handed this capsule and refused it:
        a refusal of exactly the capsule's lease, with nothing run; only failure may follow."""
        runner = principal_ref(predicate.get("runner"), f"{where}.predicate.runner")
        leased_to = self.capsule["runner"]
        if runner["kind"] != "runner":
            raise RecordError(f"{where}.predicate.runner.kind", "a refusal is made by a runner")
        if runner["id"] == leased_to["id"]:
            raise RecordError(
                where,
                f"signed by key {keyid[:16]}…, not by the runner key the capsule names "
                f"{str(self.capsule.get('runner_keyid'))[:16]}…",
            )
        error = predicate.get("error")
        if (
            predicate.get("ok") is not False
            or predicate.get("argv") != []
            or not isinstance(error, str)
            or not error.startswith("capsule refused:")
        ):
            raise RecordError(
                f"{where}.predicate",
                f"signed by runner {runner['name']}, not the capsule's runner "
                f"{leased_to['name']}: it can only be a refusal (ok false, argv [], error "
                "'capsule refused: ...')",
            )
        for name in ("lease_id", "fencing_token", "capsule_digest"):
            if predicate.get(name) != self.capsule[name]:
                raise RecordError(f"{where}.predicate.{name}", "does not match the capsule")
        self.refusal = {"runner": runner, "keyid": keyid}
        if keyid not in self.facts.runner_keyids:
            self.facts.runner_keyids.append(keyid)
        self.facts.notes.append(
            f"the capsule of lease {self.capsule['lease_id']} (leased to runner "
            f"{leased_to['name']}) was refused as misdirected by runner {runner['name']} "
            f"({runner['id']}, key {keyid[:16]}…); nothing ran"
        )
        self.phase = "misdirected"

    def _on_execution(self, where: str, predicate: Mapping[str, Any]) -> None:
        if self.signed_by is not None and self.misdirected(Stage.EXECUTION, self.signed_by):
            self._on_misdirected(where, predicate, self.signed_by)
            return
        self._check_lease(where, predicate, ("lease_id", "fencing_token", "capsule_digest"))
        self.execution_ok = _get(predicate, "ok", where, (bool,))
        self.phase = "verifying" if self.execution_ok else "execution_failed"

    def _on_verification(self, where: str, predicate: Mapping[str, Any]) -> None:
        self._check_lease(where, predicate, ("lease_id", "fencing_token"))
        passed = _get(predicate, "passed", where, (bool,))
        self.phase = "verified" if passed and self.execution_ok else "verification_failed"

    def _on_requeue(self, where: str, predicate: Mapping[str, Any]) -> None:
        """A lost runner's capsule goes back to authorized: only for an idempotent kind, and
        at most as many times as the decision's ``retries``."""
        for name in ("lease_id", "fencing_token"):
            if predicate.get(name) != self.capsule[name]:
                raise RecordError(f"{where}.predicate.{name}", "does not match the capsule")
        _get(predicate, "reason", where, (str,))
        try:
            idempotent: bool | None = actions.get(self.kind).idempotent
        except InputError:
            idempotent = None  # a plugin kind not installed here
        if idempotent is False:
            raise RecordError(
                where, f"{self.kind} is not idempotent, so its capsule may never be leased again"
            )
        if idempotent is None:
            self.facts.notes.append(
                f"action kind {self.kind!r} is not declared here; that it is idempotent "
                "(and may be retried) cannot be checked offline"
            )
        if self.capsules > self.retries:
            raise RecordError(
                where,
                f"the decision allows {self.retries} retries and {self.capsules - 1} "
                "were already used",
            )
        self.facts.notes.append(f"runner lost; requeued for attempt {self.capsules + 1}")
        self.phase = "requeued"

    def _on_closure(self, where: str, predicate: Mapping[str, Any]) -> None:
        state_text = _get(predicate, "state", where, (str,))
        try:
            state = State(state_text)
        except ValueError:
            raise RecordError(f"{where}.predicate.state", f"unknown state {state_text!r}") from None
        if self.phase == "misdirected":
            self._check_misdirected_closure(where, predicate)
        allowed = _CLOSURES.get(self.phase, _SIDE_EXITS)
        if state not in allowed:
            names = ", ".join(sorted(s.value for s in allowed))
            raise RecordError(
                f"{where}.predicate.state",
                f"{state.value} cannot close the record here (expected: {names})",
            )
        self.facts.final_state = state.value
        self.phase = "closed"

    def _check_misdirected_closure(self, where: str, predicate: Mapping[str, Any]) -> None:
        """The control plane's closure after a misdirected capsule names the lease and the
        refusing runner and its key: its signature binds that key to that runner."""
        said = predicate.get("misdirected")
        field_name = f"{where}.predicate.misdirected"
        if not isinstance(said, Mapping):
            raise RecordError(field_name, "must name the misdirected lease and refusing runner")
        refused_by = said.get("refused_by")
        if (
            not isinstance(refused_by, Mapping)
            or refused_by.get("id") != self.refusal["runner"]["id"]
        ):
            raise RecordError(f"{field_name}.refused_by", "is not the runner that refused")
        if said.get("runner_keyid") != self.refusal["keyid"]:
            raise RecordError(
                f"{field_name}.runner_keyid", "is not the key the refusal is signed by"
            )
        if said.get("lease_id") != self.capsule["lease_id"]:
            raise RecordError(f"{field_name}.lease_id", "is not the capsule's lease")
