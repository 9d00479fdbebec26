"""What a decision asks of humans: quorum, eligibility, separation of duties, expiry,
escalation, and the obligations any outcome may carry. Pure values; no I/O.

Selectors name who is meant: ``user:NAME`` (or a bare name), ``group:G`` or ``team:G``
(members of group G), ``role:R``, and ``owner-of:NODE``, which the service resolves
through the System Graph into ``team:``/``user:`` selectors before the decision is applied.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from placet.domain.errors import InputError
from placet.domain.principals import Principal, PrincipalKind

DEFAULT_EXPIRY_SECONDS = 24 * 3600
OWNER_OF = "owner-of:"
PROPOSER = "proposer"
PROPOSER_OWNER = "proposer-owner"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The most extra attempts a decision may grant an idempotent action whose runner was lost.
MAX_RETRIES = 10


class Outcome(enum.StrEnum):
    """What policy said."""

    ALLOW = "allow"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"


class Role(enum.StrEnum):
    """What a principal may do; humans hold one or more of the first four."""

    ADMIN = "admin"
    APPROVER = "approver"
    VIEWER = "viewer"
    AUDITOR = "auditor"
    AGENT = "agent"
    RUNNER = "runner"


HUMAN_ROLES = frozenset({Role.ADMIN, Role.APPROVER, Role.VIEWER, Role.AUDITOR})


def roles_of(principal: Principal) -> frozenset[Role]:
    """The roles a principal acts with: agents and runners by kind, humans as granted."""
    if principal.kind is PrincipalKind.AGENT:
        return frozenset({Role.AGENT})
    if principal.kind is PrincipalKind.RUNNER:
        return frozenset({Role.RUNNER})
    return frozenset(Role(r) for r in principal.roles if r in HUMAN_ROLES)


def marks(principal: Principal) -> frozenset[str]:
    """Every selector that names ``principal``."""
    return frozenset(
        {
            principal.name,
            f"user:{principal.name}",
            *(f"group:{g}" for g in principal.teams),
            *(f"team:{g}" for g in principal.teams),
            *(f"role:{r}" for r in principal.roles),
        }
    )


def check_selector(value: str, field_name: str) -> str:
    """``value`` if it is a selector placet understands, else InputError naming the field."""
    prefix, sep, rest = value.partition(":")
    if not value.strip():
        raise InputError(field_name, "a selector must not be empty")
    if sep and prefix not in ("user", "group", "team", "role", "owner-of"):
        raise InputError(
            field_name,
            f"{value!r}: selectors are user:NAME, group:NAME, team:NAME, role:ROLE, "
            "owner-of:NODE or a bare principal name",
        )
    if sep and not rest.strip():
        raise InputError(field_name, f"{value!r} names nothing after {prefix}:")
    return value


@dataclass(frozen=True, slots=True)
class Escalation:
    """After ``after`` seconds without quorum, the selectors in ``to`` may approve too."""

    after: int
    to: tuple[str, ...]
    eligible: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChangeWindow:
    """When execution may start: on ``days`` between ``start`` and ``end`` in ``timezone``.

    ``end`` earlier than ``start`` means the window runs past midnight.
    """

    days: tuple[str, ...] = DAYS
    start: time = time(0, 0)
    end: time = time(23, 59, 59)
    timezone: str = "UTC"

    def contains(self, at: datetime) -> bool:
        """Whether the (timezone-aware) instant ``at`` falls inside the window."""
        local = at.astimezone(ZoneInfo(self.timezone))
        clock = local.time().replace(tzinfo=None)
        day = DAYS[local.weekday()]
        if self.start <= self.end:
            return day in self.days and self.start <= clock <= self.end
        if clock >= self.start:
            return day in self.days
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return clock <= self.end and yesterday in self.days

    def next_opening(self, at: datetime) -> datetime | None:
        """The next instant at or after ``at`` inside the window (to the minute), or None."""
        probe = at
        for _ in range(8 * 24 * 60):
            if self.contains(probe):
                return probe
            probe = (probe + timedelta(minutes=1)).replace(second=0, microsecond=0)
        return None

    def describe(self) -> str:
        days = ",".join(self.days)
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"

    def as_dict(self) -> dict[str, object]:
        return {
            "days": list(self.days),
            "start": _clock(self.start),
            "end": _clock(self.end),
            "timezone": self.timezone,
        }


def _clock(at: time) -> str:
    """``HH:MM``, or ``HH:MM:SS`` when the seconds matter (so a stored window reloads intact)."""
    return f"{at:%H:%M:%S}" if at.second else f"{at:%H:%M}"


def check_timezone(name: str, field_name: str) -> str:
    """``name`` if it is an IANA time zone, else InputError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(field_name, f"{name!r} is not a known IANA time zone") from None
    return name


@dataclass(frozen=True, slots=True)
class Obligations:
    """What any outcome may carry: suites that must pass, a change window, who to notify."""

    validation: tuple[str, ...] = ()
    change_window: ChangeWindow | None = None
    notify: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.validation or self.change_window or self.notify)


@dataclass(frozen=True, slots=True)
class Requirement:
    """How many eligible humans must approve, who they may be, and for how long.

    ``from_`` is what policy said; ``eligible`` is the same after ``owner-of:`` selectors
    were resolved through the graph. An empty ``from_`` admits any approver.
    """

    count: int = 1
    from_: tuple[str, ...] = ()
    eligible: tuple[str, ...] = ()
    distinct_from: tuple[str, ...] = ()
    owner_may_approve: bool = False
    expires_in: int = DEFAULT_EXPIRY_SECONDS
    escalation: Escalation | None = None
    denials: int = 1

    def resolve(self, resolver: Callable[[str], Iterable[str]]) -> Requirement:
        """The requirement with ``eligible`` filled in by ``resolver`` (selector -> selectors)."""

        def each(selectors: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(s for sel in selectors for s in resolver(sel)))

        escalation = self.escalation
        if escalation is not None:
            escalation = replace(escalation, eligible=each(escalation.to))
        return replace(self, eligible=each(self.from_), escalation=escalation)

    def admits(self, human: Principal, escalated: bool = False) -> bool:
        """Whether ``human`` is someone this requirement names (now, or after escalation)."""
        if not self.from_:
            return True
        names = set(self.eligible)
        if escalated and self.escalation is not None:
            names |= set(self.escalation.eligible)
        return bool(marks(human) & names)

    def separation_conflict(self, human: Principal, proposer: Principal) -> str | None:
        """Why ``human`` may not decide on ``proposer``'s proposal, or None."""
        if human.id == proposer.id:
            return "nobody decides on a proposal they made"
        owner = proposer.owner
        owner_barred = not self.owner_may_approve or PROPOSER_OWNER in self.distinct_from
        if owner is not None and human.name == owner and owner_barred:
            return f"{human.name} owns {proposer.name}, the agent that proposed this"
        hit = sorted(marks(human) & set(self.distinct_from))
        if hit:
            return f"the decision requires approvers distinct from {hit[0]}"
        return None

    def wanted(self, escalated: bool = False) -> str:
        """Who may approve, in words."""
        if not self.from_:
            return "any approver"
        names = list(self.from_)
        if escalated and self.escalation is not None:
            names += self.escalation.to
        return ", ".join(names)


NO_APPROVALS = Requirement(count=0, expires_in=0, denials=0)


@dataclass(frozen=True, slots=True)
class Decision:
    """Policy's answer, bound to the digest of the bundle that gave it.

    ``retries`` is how many extra attempts an idempotent action gets when its runner is
    lost (0..MAX_RETRIES); a non-idempotent action never runs twice whatever it says.
    """

    outcome: Outcome
    reasons: tuple[str, ...] = ()
    requirement: Requirement = field(default_factory=lambda: NO_APPROVALS)
    policy_digest: str = ""
    obligations: Obligations = field(default_factory=Obligations)
    retries: int = 0
