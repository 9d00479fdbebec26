"""Selectors, roles, change windows and the approval requirement, value by value."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from placet.domain.authority import (
    DAYS,
    DEFAULT_EXPIRY_SECONDS,
    HUMAN_ROLES,
    NO_APPROVALS,
    ChangeWindow,
    Decision,
    Escalation,
    Obligations,
    Outcome,
    Requirement,
    Role,
    check_selector,
    check_timezone,
    marks,
    roles_of,
)
from placet.domain.errors import InputError
from placet.domain.principals import Principal, PrincipalKind

HUMAN, AGENT, RUNNER = PrincipalKind.HUMAN, PrincipalKind.AGENT, PrincipalKind.RUNNER
ALICE = Principal(
    "h-alice", "alice", HUMAN, teams=("payments", "sre"), roles=("approver", "viewer")
)
BOB = Principal("h-bob", "bob", HUMAN, roles=("approver",))
OWEN = Principal("h-owen", "owen", HUMAN, teams=("payments",), roles=("approver",))
KIM = Principal("h-kim", "kim", HUMAN, teams=("contractors",), roles=("approver",))
BOT = Principal("a-bot", "bot", AGENT, owner="owen", roles=("approver",))
RUNNER_1 = Principal("r-1", "runner-1", RUNNER, roles=("admin",))
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


# ---- roles and marks ---------------------------------------------------------------


def test_roles_of_humans_are_the_human_roles_they_were_granted() -> None:
    assert roles_of(ALICE) == {Role.APPROVER, Role.VIEWER}
    odd = Principal("h-x", "x", HUMAN, roles=("admin", "sre", "agent", "runner"))
    assert roles_of(odd) == {Role.ADMIN}  # unknown and non-human roles are ignored
    assert roles_of(Principal("h-y", "y", HUMAN)) == frozenset()
    assert frozenset(Role) - HUMAN_ROLES == {Role.AGENT, Role.RUNNER}


def test_roles_of_agents_and_runners_come_from_their_kind() -> None:
    assert roles_of(BOT) == {Role.AGENT}
    assert roles_of(RUNNER_1) == {Role.RUNNER}


def test_marks_name_a_principal_every_way_a_selector_can() -> None:
    assert marks(ALICE) == {
        "alice",
        "user:alice",
        "group:payments",
        "team:payments",
        "group:sre",
        "team:sre",
        "role:approver",
        "role:viewer",
    }
    assert marks(Principal("h-z", "zed", HUMAN)) == {"zed", "user:zed"}
    assert "user:h-alice" not in marks(ALICE)  # names, not ids


@pytest.mark.parametrize(
    "selector",
    ["alice", "user:alice", "group:sre", "team:payments", "role:approver", "owner-of:svc/x"],
)
def test_check_selector_accepts_what_placet_understands(selector: str) -> None:
    assert check_selector(selector, "from[0]") == selector


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("squad:payments", "selectors are user:NAME"),
        (":x", "selectors are user:NAME"),
        ("team:", "names nothing after team:"),
        ("owner-of: ", "names nothing after owner-of:"),
    ],
)
def test_check_selector_names_the_field_and_the_problem(selector: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        check_selector(selector, "distinct_from[1]")
    assert caught.value.field == "distinct_from[1]"
    assert problem in caught.value.problem


def test_check_timezone() -> None:
    assert check_timezone("Europe/Berlin", "tz") == "Europe/Berlin"
    for bad in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(InputError, match="not a known IANA time zone") as caught:
            check_timezone(bad, "obligations.change_window.timezone")
        assert caught.value.field == "obligations.change_window.timezone"


# ---- change windows ----------------------------------------------------------------


def at(zone: str, y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    """A local instant in ``zone``."""
    return datetime(y, mo, d, h, mi, s, tzinfo=ZoneInfo(zone))


OFFICE = ChangeWindow(days=WEEKDAYS, start=time(9), end=time(17), timezone="Europe/Berlin")
NIGHT = ChangeWindow(days=("fri",), start=time(22), end=time(2), timezone="UTC")


def test_a_day_window_includes_its_ends_and_only_its_days() -> None:
    thursday = (2026, 11, 26)
    assert OFFICE.contains(at("Europe/Berlin", *thursday, 9))
    assert OFFICE.contains(at("Europe/Berlin", *thursday, 12, 30))
    assert OFFICE.contains(at("Europe/Berlin", *thursday, 17))
    assert not OFFICE.contains(at("Europe/Berlin", *thursday, 8, 59, 59))
    assert not OFFICE.contains(at("Europe/Berlin", *thursday, 17, 0, 1))
    assert not OFFICE.contains(at("Europe/Berlin", 2026, 11, 28, 12))  # saturday
    assert not OFFICE.contains(at("Europe/Berlin", 2026, 11, 29, 12))  # sunday


def test_a_window_is_read_in_its_own_time_zone() -> None:
    # 08:30 UTC is 09:30 in Berlin (CET, +1) but 03:30 in New York
    instant = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
    assert OFFICE.contains(instant)
    assert not ChangeWindow(WEEKDAYS, time(9), time(17), "America/New_York").contains(instant)
    # the same instant seen from another zone is the same instant
    assert OFFICE.contains(instant.astimezone(ZoneInfo("Asia/Tokyo")))
    # summer time: 07:30 UTC is 09:30 CEST in July, but 08:30 CET in November
    assert OFFICE.contains(datetime(2026, 7, 1, 7, 30, tzinfo=UTC))
    assert not OFFICE.contains(datetime(2026, 11, 26, 7, 30, tzinfo=UTC))


def test_the_weekday_is_the_local_one() -> None:
    # Friday 23:30 in New York is Saturday 04:30 UTC: a UTC weekday window misreads it
    ny_friday = ChangeWindow(("fri",), time(20), time(23, 59), "America/New_York")
    instant = datetime(2026, 11, 28, 4, 30, tzinfo=UTC)
    assert ny_friday.contains(instant)
    assert not ChangeWindow(("fri",), time(20), time(23, 59), "UTC").contains(instant)


def test_an_overnight_window_belongs_to_the_day_it_opens() -> None:
    assert NIGHT.contains(datetime(2026, 11, 27, 22, tzinfo=UTC))  # friday 22:00
    assert NIGHT.contains(datetime(2026, 11, 27, 23, 59, tzinfo=UTC))
    assert NIGHT.contains(datetime(2026, 11, 28, 0, 0, tzinfo=UTC))  # saturday, still open
    assert NIGHT.contains(datetime(2026, 11, 28, 2, 0, tzinfo=UTC))
    assert not NIGHT.contains(datetime(2026, 11, 28, 2, 0, 1, tzinfo=UTC))
    assert not NIGHT.contains(datetime(2026, 11, 27, 21, 59, tzinfo=UTC))
    # friday early morning belongs to thursday's opening, which is not in the window
    assert not NIGHT.contains(datetime(2026, 11, 27, 1, tzinfo=UTC))
    # saturday night opens on saturday, which is not in the window
    assert not NIGHT.contains(datetime(2026, 11, 28, 23, tzinfo=UTC))


def test_the_default_window_is_always_open() -> None:
    always = ChangeWindow()
    start = datetime(2026, 11, 23, tzinfo=UTC)
    for hour in range(0, 24 * 7, 5):
        assert always.contains(start + timedelta(hours=hour, minutes=59, seconds=59))


def test_next_opening() -> None:
    saturday = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
    assert OFFICE.next_opening(saturday) == datetime(2026, 11, 30, 8, tzinfo=UTC)
    inside = datetime(2026, 11, 26, 10, 15, 30, tzinfo=UTC)
    assert OFFICE.next_opening(inside) == inside  # already open: now
    evening = datetime(2026, 11, 26, 17, 30, tzinfo=UTC)  # 18:30 Berlin thursday
    assert OFFICE.next_opening(evening) == datetime(2026, 11, 27, 8, tzinfo=UTC)
    assert NIGHT.next_opening(saturday) == datetime(2026, 12, 4, 22, tzinfo=UTC)
    never = ChangeWindow(days=(), start=time(9), end=time(17))
    assert never.next_opening(saturday) is None


def test_window_as_dict_and_describe() -> None:
    assert OFFICE.as_dict() == {
        "days": list(WEEKDAYS),
        "start": "09:00",
        "end": "17:00",
        "timezone": "Europe/Berlin",
    }
    assert OFFICE.describe() == "mon,tue,wed,thu,fri 09:00-17:00 Europe/Berlin"
    # seconds survive, so a stored window reloads as the same window
    precise = ChangeWindow(start=time(9, 0, 30), end=time(17, 15, 45))
    stored = precise.as_dict()
    assert (stored["start"], stored["end"]) == ("09:00:30", "17:15:45")
    assert time.fromisoformat(str(stored["end"])) == precise.end
    assert ChangeWindow().as_dict()["days"] == list(DAYS)


def test_obligations_are_truthy_only_when_they_ask_for_something() -> None:
    assert not Obligations()
    assert Obligations(validation=("smoke",))
    assert Obligations(change_window=OFFICE)
    assert Obligations(notify=("slack",))


# ---- requirements ------------------------------------------------------------------


def test_an_empty_from_admits_anyone() -> None:
    requirement = Requirement(count=1)
    assert all(requirement.admits(h) for h in (ALICE, BOB, KIM))
    assert requirement.wanted() == "any approver"


@pytest.mark.parametrize(
    ("selector", "admitted"),
    [
        ("team:payments", {"alice", "owen"}),
        ("group:payments", {"alice", "owen"}),
        ("group:contractors", {"kim"}),
        ("user:bob", {"bob"}),
        ("bob", {"bob"}),
        ("role:viewer", {"alice"}),
        ("role:approver", {"alice", "bob", "owen", "kim"}),
        ("user:h-bob", set()),
        ("team:dba", set()),
    ],
)
def test_admits_by_selector(selector: str, admitted: set[str]) -> None:
    requirement = Requirement(count=1, from_=(selector,), eligible=(selector,))
    assert {h.name for h in (ALICE, BOB, OWEN, KIM) if requirement.admits(h)} == admitted


def test_admits_uses_the_resolved_selectors_not_what_policy_said() -> None:
    requirement = Requirement(count=2, from_=("owner-of:payments",), eligible=("team:payments",))
    assert requirement.admits(ALICE) and requirement.admits(OWEN)
    assert not requirement.admits(BOB)
    unresolved = Requirement(count=1, from_=("owner-of:payments",))
    assert not any(unresolved.admits(h) for h in (ALICE, BOB, OWEN, KIM))
    assert requirement.wanted() == "owner-of:payments"


def test_the_escalation_group_is_admitted_only_after_escalation() -> None:
    requirement = Requirement(
        count=1,
        from_=("team:payments",),
        eligible=("team:payments",),
        escalation=Escalation(after=600, to=("owner-of:sre",), eligible=("user:bob",)),
    )
    assert not requirement.admits(BOB)
    assert requirement.admits(BOB, escalated=True)
    assert requirement.admits(ALICE, escalated=True)
    assert not requirement.admits(KIM, escalated=True)
    assert requirement.wanted() == "team:payments"
    assert requirement.wanted(escalated=True) == "team:payments, owner-of:sre"
    # escalating a requirement without an escalation admits nobody new
    plain = Requirement(count=1, from_=("team:payments",), eligible=("team:payments",))
    assert not plain.admits(BOB, escalated=True)


def test_nobody_decides_on_their_own_proposal() -> None:
    requirement = Requirement(count=1, owner_may_approve=True)
    assert requirement.separation_conflict(BOT, BOT) == "nobody decides on a proposal they made"


def test_the_proposers_owner_is_refused_unless_allowed() -> None:
    conflict = Requirement(count=1).separation_conflict(OWEN, BOT)
    assert conflict == "owen owns bot, the agent that proposed this"
    assert Requirement(count=1, owner_may_approve=True).separation_conflict(OWEN, BOT) is None
    both = Requirement(count=1, owner_may_approve=True, distinct_from=("proposer-owner",))
    assert both.separation_conflict(OWEN, BOT) is not None
    assert Requirement(count=1).separation_conflict(ALICE, BOT) is None
    ownerless = Principal("a-stray", "stray", AGENT)
    assert Requirement(count=1).separation_conflict(OWEN, ownerless) is None


@pytest.mark.parametrize(
    ("distinct_from", "refused"),
    [
        # owen owns the proposing agent: refused by default whatever distinct_from says
        (("group:contractors",), {"kim", "owen"}),
        (("team:payments",), {"alice", "owen"}),
        (("user:bob",), {"bob", "owen"}),
        (("role:viewer",), {"alice", "owen"}),
        (("proposer",), {"owen"}),  # the proposer is an agent, never a voting human
        ((), {"owen"}),
    ],
)
def test_distinct_from_refuses_everyone_it_names(
    distinct_from: tuple[str, ...], refused: set[str]
) -> None:
    requirement = Requirement(count=1, distinct_from=distinct_from)
    humans = (ALICE, BOB, OWEN, KIM)
    got = {h.name for h in humans if requirement.separation_conflict(h, BOT) is not None}
    assert got == refused


def test_a_distinct_from_conflict_names_the_selector() -> None:
    requirement = Requirement(count=1, distinct_from=("group:contractors",))
    assert requirement.separation_conflict(KIM, BOT) == (
        "the decision requires approvers distinct from group:contractors"
    )


def test_resolve_fills_eligible_through_the_resolver() -> None:
    owners: dict[str, tuple[str, ...]] = {
        "owner-of:payments": ("team:payments", "user:owen"),
        "owner-of:ledger": ("team:payments",),
        "owner-of:sre": ("team:sre",),
        "owner-of:ghost": (),
    }

    def resolver(selector: str) -> Iterable[str]:
        return owners.get(selector, (selector,))

    requirement = Requirement(
        count=2,
        from_=("owner-of:payments", "owner-of:ledger", "group:sre", "owner-of:ghost"),
        escalation=Escalation(after=60, to=("owner-of:sre", "bob")),
    )
    resolved = requirement.resolve(resolver)
    assert resolved.eligible == ("team:payments", "user:owen", "group:sre")  # in order, once
    assert resolved.escalation is not None
    assert resolved.escalation.eligible == ("team:sre", "bob")
    assert resolved.escalation.to == ("owner-of:sre", "bob")
    assert (resolved.from_, resolved.count) == (requirement.from_, requirement.count)
    assert requirement.eligible == ()  # values: the original is unchanged
    assert Requirement(count=1).resolve(resolver) == Requirement(count=1)


def test_defaults() -> None:
    requirement = Requirement()
    assert (requirement.count, requirement.denials) == (1, 1)
    assert requirement.expires_in == DEFAULT_EXPIRY_SECONDS == 86400
    assert not requirement.owner_may_approve and requirement.escalation is None
    assert (NO_APPROVALS.count, NO_APPROVALS.denials, NO_APPROVALS.expires_in) == (0, 0, 0)
    decision = Decision(Outcome.ALLOW)
    assert decision.requirement == NO_APPROVALS and not decision.obligations
    assert [o.value for o in Outcome] == ["allow", "require_approval", "deny"]
