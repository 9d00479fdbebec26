"""Random decisions and random sequences of votes, escalations and leases: authority holds.

Each example draws a population of humans (random roles and groups), a decision (random
outcome, quorum, eligible selectors, separation of duties, expiry, escalation, denial
quorum and change window) and a sequence of approve / deny / escalate / lease events by
principals of every kind, with current, older and made-up digests, at times before, at
and after the escalation point and the deadline. The test keeps its own account of who
may vote and when (written from the issue, not from the machine) and checks, after every
event, that the machine accepted exactly what that account allows and that:

- nothing executes without a policy allow or a quorum of distinct, eligible, unseparated,
  approver-role humans whose votes carry the current digest (counted here from the votes);
- agent and runner approvals and denials are always Forbidden and never recorded;
- a vote for an older digest is never recorded, so never counts;
- an expired proposal never executes: no lease succeeds at or after the deadline;
- ineligible or separated humans never appear among the votes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from hypothesis import event, given, settings
from hypothesis import strategies as st

from placet.domain.authority import (
    ChangeWindow,
    Decision,
    Escalation,
    Obligations,
    Outcome,
    Requirement,
)
from placet.domain.errors import Forbidden, IllegalTransition
from placet.domain.lifecycle import (
    Approve,
    Assess,
    Decide,
    Deny,
    Escalate,
    Event,
    Expired,
    Lease,
    ProposalMachine,
    Propose,
    State,
    Vote,
)
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent

HUMAN, AGENT, RUNNER = PrincipalKind.HUMAN, PrincipalKind.AGENT, PrincipalKind.RUNNER
T0 = datetime(2026, 11, 26, 9, tzinfo=UTC)  # a Thursday
GROUPS = ("payments", "sre", "leads", "contractors")
NAMES = ("alice", "bob", "carol", "dave", "erin", "owen")  # owen owns the proposing agent
HUMAN_ROLE_NAMES = ("approver", "admin", "viewer", "auditor")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
# selectors a decision may name (concrete ones: owner-of: is resolved before the machine)
SELECTORS = (
    *(f"team:{g}" for g in GROUPS),
    *(f"group:{g}" for g in GROUPS),
    *(f"user:{n}" for n in NAMES),
    *NAMES,
    "role:admin",
    "role:viewer",
    "user:nobody",
)
SEPARATIONS = ("proposer", "proposer-owner", "group:contractors", "team:sre", "user:bob")

BOT = Principal("a-bot", "bot", AGENT, owner="owen", roles=("approver",))
OTHER_AGENT = Principal("a-other", "other", AGENT, owner="alice", teams=("payments",))
RUNNERS = (
    Principal("r-1", "runner-1", RUNNER),
    Principal("r-2", "runner-2", RUNNER, roles=("approver",), teams=("payments",)),
)
CONTENT = ProposalContent(
    agent=BOT.id,
    kind="restart",
    targets=("service:payments",),
    parameters={"replicas": 3},
    environment="production",
    intent="restart payments",
)
OLDER = ProposalContent(
    agent=BOT.id,
    kind="restart",
    targets=("service:payments",),
    parameters={"replicas": 2},
    environment="production",
    intent="restart payments",
)
DIGESTS = {"current": CONTENT.digest, "older": OLDER.digest, "made-up": "f" * 64}


# ---- strategies --------------------------------------------------------------------

T = TypeVar("T")


def weighted(*choices: tuple[st.SearchStrategy[T], int]) -> st.SearchStrategy[T]:
    """One of ``choices``, each drawn in proportion to its weight (one_of is uniform)."""
    return st.sampled_from([c for c, n in choices for _ in range(n)]).flatmap(lambda c: c)


@st.composite
def populations(draw: st.DrawFn) -> tuple[Principal, ...]:
    """One human per name, with random groups and roles (approver more often than not)."""
    humans = []
    for name in NAMES:
        teams = draw(st.lists(st.sampled_from(GROUPS), max_size=2, unique=True))
        roles = draw(st.lists(st.sampled_from(HUMAN_ROLE_NAMES), max_size=2, unique=True))
        if draw(st.integers(0, 9)) < 6 and "approver" not in roles:
            roles.append("approver")
        humans.append(Principal(f"h-{name}", name, HUMAN, teams=tuple(teams), roles=tuple(roles)))
    return tuple(humans)


selector_sets = st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=3, unique=True)
times_of_day = st.builds(time, st.integers(0, 23), st.sampled_from([0, 30]))


@st.composite
def windows(draw: st.DrawFn) -> ChangeWindow:
    """A change window on random days, possibly overnight, in a random zone."""
    days = draw(st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=7, unique=True))
    start = draw(times_of_day)
    length = timedelta(minutes=30 * draw(st.integers(1, 47)))  # never empty, maybe overnight
    end = (datetime.combine(date(2026, 1, 1), start) + length).time()
    return ChangeWindow(tuple(days), start, end, draw(st.sampled_from(ZONES)))


@st.composite
def decisions(draw: st.DrawFn) -> Decision:
    """A decision of any outcome; require_approval ones with a random requirement."""
    outcome = draw(st.sampled_from([Outcome.ALLOW, Outcome.DENY] + [Outcome.REQUIRE_APPROVAL] * 4))
    window = draw(st.one_of(st.none(), windows()))
    obligations = Obligations(change_window=window)
    if outcome is not Outcome.REQUIRE_APPROVAL:
        return Decision(outcome, ("random",), obligations=obligations)
    from_: tuple[str, ...] = ()
    eligible: tuple[str, ...] = ()
    if draw(st.booleans()):
        from_ = ("owner-of:payments", *draw(selector_sets))
        eligible = tuple(draw(selector_sets))  # what the service resolved from_ into
    expires_in = draw(st.sampled_from([60, 3600, 86400]) | st.integers(1, 3 * 86400))
    escalation = None
    if draw(st.booleans()):
        escalation = Escalation(
            after=draw(st.integers(1, expires_in + 600)),
            to=("owner-of:sre",),
            eligible=tuple(draw(selector_sets)),
        )
    requirement = Requirement(
        count=draw(weighted((st.integers(1, 2), 3), (st.integers(3, 4), 1))),
        from_=from_,
        eligible=eligible,
        distinct_from=tuple(draw(st.lists(st.sampled_from(SEPARATIONS), max_size=2))),
        owner_may_approve=draw(st.booleans()),
        expires_in=expires_in,
        escalation=escalation,
        denials=draw(st.integers(1, 3)),
    )
    return Decision(outcome, ("random",), requirement, obligations=obligations)


# ---- the test's own account of authority -------------------------------------------


def names_of(p: Principal) -> set[str]:
    """The selectors that name ``p`` (written out here, not taken from the domain)."""
    named = {p.name, "user:" + p.name}
    for g in p.teams:
        named |= {"group:" + g, "team:" + g}
    return named | {"role:" + r for r in p.roles}


def eligible(r: Requirement, human: Principal, escalated: bool) -> bool:
    if not r.from_:
        return True
    allowed = set(r.eligible)
    if escalated and r.escalation is not None:
        allowed |= set(r.escalation.eligible)
    return bool(names_of(human) & allowed)


def separated(r: Requirement, human: Principal) -> bool:
    if human.id == BOT.id:
        return True
    owner_refused = not r.owner_may_approve or "proposer-owner" in r.distinct_from
    if human.name == BOT.owner and owner_refused:
        return True
    return bool(names_of(human) & set(r.distinct_from))


def may_vote(r: Requirement, p: Principal, escalated: bool) -> bool:
    """Whether ``p`` may vote at all: an approver-role human, named and not separated."""
    return (
        p.kind is HUMAN
        and "approver" in p.roles
        and not separated(r, p)
        and eligible(r, p, escalated)
    )


def in_window(w: ChangeWindow, at: datetime) -> bool:
    """Whether ``at`` falls in an opening of ``w``: openings start on a listed local day."""
    local = at.astimezone(ZoneInfo(w.timezone)).replace(tzinfo=None)
    for back in (0, 1):
        day: date = local.date() - timedelta(days=back)
        if DAY_NAMES[day.weekday()] not in w.days:
            continue
        opens = datetime.combine(day, w.start)
        closes = datetime.combine(day if w.start <= w.end else day + timedelta(days=1), w.end)
        if opens <= local <= closes:
            return True
    return False


@dataclass
class Account:
    """What the test has seen: accepted votes, whether and when escalation happened."""

    decision: Decision
    votes: list[Vote] = field(default_factory=list)
    escalated_from: int | None = None  # votes recorded from this index on may use escalation
    leased_at: datetime | None = None

    @property
    def deadline(self) -> datetime | None:
        if self.decision.outcome is not Outcome.REQUIRE_APPROVAL:
            return None
        return T0 + timedelta(seconds=self.decision.requirement.expires_in)

    def quorum(self) -> bool:
        """Distinct humans who could vote when they did, approving the current digest."""
        r = self.decision.requirement
        counted = set()
        for index, v in enumerate(self.votes):
            escalated = self.escalated_from is not None and index >= self.escalated_from
            if v.approve and v.digest == CONTENT.digest and may_vote(r, v.by, escalated):
                counted.add(v.by.id)
        return len(counted) >= r.count

    def denied(self) -> bool:
        r = self.decision.requirement
        return len({v.by.id for v in self.votes if not v.approve}) >= r.denials


# ---- steps -------------------------------------------------------------------------


@st.composite
def instants(draw: st.DrawFn, decision: Decision) -> datetime:
    """A time around the interesting points: escalation, deadline, and anywhere up to both."""
    r = decision.requirement
    points = [0, r.expires_in - 1, r.expires_in, r.expires_in + 1]
    if r.escalation is not None:
        points += [r.escalation.after - 1, r.escalation.after]
    horizon = max(r.expires_in, 3600) + 7200
    inside = st.integers(0, max(r.expires_in - 1, 0))  # most events come before the deadline
    offset = draw(weighted((st.sampled_from(points), 1), (inside, 2), (st.integers(0, horizon), 1)))
    return T0 + timedelta(seconds=max(offset, 0))


def steps(decision: Decision, people: tuple[Principal, ...]) -> st.SearchStrategy[list[Event]]:
    everyone = st.sampled_from((*people, BOT, OTHER_AGENT, *RUNNERS))
    # half the votes come from humans the account says may vote, so quorums are reached
    may = [p for p in people if may_vote(decision.requirement, p, escalated=False)]
    helpful = st.sampled_from(may) if may else st.sampled_from(people)
    voters = weighted((helpful, 3), (st.sampled_from(people), 1), (everyone, 1))
    deniers = weighted((helpful, 2), (st.sampled_from(people), 1), (everyone, 1))
    digests = st.sampled_from(["current"] * 6 + ["older", "made-up"]).map(DIGESTS.__getitem__)
    at = instants(decision)
    approve = st.builds(Approve, voters, digests, at, st.sampled_from(["", "ok"]))
    deny = st.builds(Deny, deniers, digests, st.sampled_from(["risky"] * 4 + ["", " "]), at)
    escalate = st.builds(Escalate, at)
    lease = st.builds(Lease, st.sampled_from(RUNNERS) | everyone, st.integers(1, 99), at)
    one: st.SearchStrategy[Event] = weighted((approve, 6), (deny, 2), (escalate, 1), (lease, 2))
    # runners come back at the end, at random times (some after the deadline): what got
    # authorized is then tried against expiry and the change window
    tail = st.lists(st.builds(Lease, st.sampled_from(RUNNERS), st.integers(1, 99), at), max_size=3)
    return st.builds(lambda body, end: [*body, *end], st.lists(one, min_size=6, max_size=30), tail)


# ---- expectations ------------------------------------------------------------------


def expected(machine: ProposalMachine, account: Account, ev: Event) -> type[Exception] | None:
    """The error ``ev`` must raise now (None: it must be accepted), from the account."""
    state = machine.state
    r = account.decision.requirement
    escalated = account.escalated_from is not None
    deadline = account.deadline
    if isinstance(ev, Approve | Deny):
        if state is not State.PENDING_APPROVAL:
            return IllegalTransition
        if isinstance(ev, Deny) and not ev.reason.strip():
            return IllegalTransition
        if not may_vote(r, ev.by, escalated):
            return Forbidden
        if deadline is not None and ev.at >= deadline:
            return Expired
        if ev.digest != CONTENT.digest or any(v.by.id == ev.by.id for v in account.votes):
            return IllegalTransition
        return None
    if isinstance(ev, Escalate):
        if state is not State.PENDING_APPROVAL or r.escalation is None or escalated:
            return IllegalTransition
        return None if ev.at >= T0 + timedelta(seconds=r.escalation.after) else IllegalTransition
    assert isinstance(ev, Lease)
    if state is not State.AUTHORIZED:
        return IllegalTransition
    if ev.runner.kind is not RUNNER:
        return Forbidden
    if deadline is not None and ev.at >= deadline:
        return Expired
    window = account.decision.obligations.change_window
    if window is not None and not in_window(window, ev.at):
        return IllegalTransition
    return None


def record(account: Account, ev: Event) -> None:
    """Note an accepted event in the account."""
    if isinstance(ev, Approve | Deny):
        reason = ev.reason
        account.votes.append(Vote(ev.by, isinstance(ev, Approve), ev.digest, reason, ev.at))
    elif isinstance(ev, Escalate):
        account.escalated_from = len(account.votes)
    elif isinstance(ev, Lease):
        account.leased_at = ev.at


def after(account: Account, ev: Event) -> State:
    """Where an accepted event leaves the proposal."""
    if isinstance(ev, Approve):
        return State.AUTHORIZED if account.quorum() else State.PENDING_APPROVAL
    if isinstance(ev, Deny):
        return State.DENIED if account.denied() else State.PENDING_APPROVAL
    return State.EXECUTING if isinstance(ev, Lease) else State.PENDING_APPROVAL


def check(machine: ProposalMachine, account: Account) -> None:
    """The properties of the issue, after every event."""
    s = machine.snapshot
    r = account.decision.requirement
    assert list(s.votes) == account.votes
    for index, v in enumerate(s.votes):
        escalated = account.escalated_from is not None and index >= account.escalated_from
        # only approver-role humans, eligible when they voted and not separated, vote
        assert v.by.kind is HUMAN and "approver" in v.by.roles
        assert not separated(r, v.by)
        assert eligible(r, v.by, escalated)
        # a vote for an older (or any other) digest is never recorded
        assert v.digest == CONTENT.digest
        # nobody votes once the window has closed
        assert account.deadline is not None and v.at is not None and v.at < account.deadline
    assert len({v.by.id for v in s.votes}) == len(s.votes)
    runs = s.state is State.AUTHORIZED or s.leases_granted or s.state is State.EXECUTING
    if runs and account.decision.outcome is not Outcome.ALLOW:
        assert account.decision.outcome is Outcome.REQUIRE_APPROVAL
        assert account.quorum(), "authorized without a quorum"
    if s.leases_granted or s.state is State.EXECUTING:
        leased = account.leased_at
        assert leased is not None and s.leases_granted == 1
        if account.deadline is not None:
            assert leased < account.deadline, "an expired proposal executed"
        window = account.decision.obligations.change_window
        assert window is None or in_window(window, leased)
    if s.state is State.DENIED:
        assert account.denied()


# ---- the property ------------------------------------------------------------------


@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_authority_holds_over_random_decisions_and_events(data: st.DataObject) -> None:
    people = data.draw(populations(), label="people")
    decision = data.draw(decisions(), label="decision")
    machine = ProposalMachine()
    machine.handle(Propose(BOT, CONTENT))
    machine.handle(Assess())
    machine.handle(Decide(decision, T0))
    account = Account(decision)
    event(f"decided {decision.outcome}")
    for ev in data.draw(steps(decision, people), label="events"):
        want = expected(machine, account, ev)
        before = machine.snapshot
        try:
            machine.handle(ev)
        except (IllegalTransition, Forbidden) as exc:
            event(f"refused {ev.name}: {type(exc).__name__}")
            assert want is not None, f"{ev} was refused: {exc}"
            assert type(exc) is want, f"{ev}: expected {want.__name__}, got {exc!r}"
            assert machine.snapshot == before  # a refusal changes nothing
            if isinstance(ev, Approve | Deny) and ev.by.kind is not HUMAN:
                # refused as Forbidden whenever a vote could be taken at all
                pending = before.state is State.PENDING_APPROVAL
                if pending and (isinstance(ev, Approve) or ev.reason.strip()):
                    assert isinstance(exc, Forbidden)
                event(f"{ev.by.kind} {ev.name} refused")
        else:
            assert want is None, f"{ev} was accepted in {before.state}, expected {want}"
            assert not (isinstance(ev, Approve | Deny) and ev.by.kind is not HUMAN)
            record(account, ev)
            event(f"accepted {ev.name}")
            if isinstance(ev, Approve) and not eligible(decision.requirement, ev.by, False):
                event("approved by the escalation group")
            assert machine.state is after(account, ev)
        check(machine, account)
    event(f"ended {machine.state}")
    if machine.state is State.EXECUTING and decision.outcome is Outcome.REQUIRE_APPROVAL:
        event("executed after a quorum")
