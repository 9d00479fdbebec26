"""The decision contract, property-tested: well-formed decisions round-trip through
decision_from; malformed ones always raise PolicyError and never return."""

from __future__ import annotations

from datetime import time
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from placet.domain.authority import DAYS, DEFAULT_EXPIRY_SECONDS, ChangeWindow, Outcome
from placet.policy import PolicyError, decision_from
from placet.policy.durations import format_duration
from placet.policy.regocpp import Answer

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)
SELECTORS = st.builds(
    lambda prefix, name: f"{prefix}{name}",
    st.sampled_from(["user:", "group:", "team:", "role:", "owner-of:", ""]),
    NAMES,
)
REASONS = st.lists(st.text(min_size=1, max_size=10).filter(str.strip), min_size=1, max_size=3)
SECONDS = st.integers(min_value=2, max_value=366 * 86400)
DURATIONS = st.one_of(SECONDS, SECONDS.map(format_duration))
CLOCKS = st.times().map(lambda t: t.replace(second=0, microsecond=0))


def _seconds(value: int | str) -> int:
    from placet.policy.durations import parse_duration

    return parse_duration(value)


@st.composite
def obligations(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["validation"] = draw(st.lists(NAMES, max_size=3))
    if draw(st.booleans()):
        body["notify"] = draw(st.lists(NAMES, max_size=3))
    if draw(st.booleans()):
        start, end = draw(CLOCKS), draw(CLOCKS)
        if start != end:
            body["change_window"] = {
                "days": draw(st.lists(st.sampled_from(DAYS), min_size=1, unique=True)),
                "start": f"{start:%H:%M}",
                "end": f"{end:%H:%M}",
                "timezone": draw(st.sampled_from(["UTC", "Europe/Berlin", "Asia/Tokyo"])),
            }
    return body


@st.composite
def decisions(draw: st.DrawFn) -> dict[str, Any]:
    outcome = draw(st.sampled_from([o.value for o in Outcome]))
    value: dict[str, Any] = {"outcome": outcome, "reasons": draw(REASONS)}
    if draw(st.booleans()):
        value["obligations"] = draw(obligations())
    if outcome != "require_approval":
        return value
    optional: dict[str, Any] = {
        "min_approvals": draw(st.integers(1, 5)),
        "from": draw(st.lists(SELECTORS, max_size=3)),
        "distinct_from": draw(
            st.lists(st.one_of(SELECTORS, st.sampled_from(["proposer", "proposer-owner"])))
        ),
        "owner_may_approve": draw(st.booleans()),
        "expires_in": draw(DURATIONS),
        "denials": draw(st.integers(1, 3)),
    }
    for key, item in optional.items():
        if draw(st.booleans()):
            value[key] = item
    if draw(st.booleans()):
        expiry = _seconds(value.get("expires_in", DEFAULT_EXPIRY_SECONDS))
        after = draw(st.integers(1, expiry - 1))
        value["escalate_to"] = {
            "after": draw(st.sampled_from([after, format_duration(after)])),
            "from": draw(st.lists(SELECTORS, min_size=1, max_size=2)),
        }
    return value


@settings(max_examples=300)
@given(decisions())
def test_well_formed_decisions_round_trip(value: dict[str, Any]) -> None:
    decision = decision_from(Answer(True, value), "d" * 64, "test")
    assert decision.outcome.value == value["outcome"]
    assert decision.reasons == tuple(dict.fromkeys(value["reasons"]))
    assert decision.policy_digest == "d" * 64
    body = value.get("obligations", {})
    assert decision.obligations.validation == tuple(dict.fromkeys(body.get("validation", [])))
    assert decision.obligations.notify == tuple(dict.fromkeys(body.get("notify", [])))
    window = body.get("change_window")
    if window is None:
        assert decision.obligations.change_window is None
    else:
        assert decision.obligations.change_window == ChangeWindow(
            days=tuple(d for d in DAYS if d in window["days"]),
            start=time.fromisoformat(window["start"]),
            end=time.fromisoformat(window["end"]),
            timezone=window["timezone"],
        )
    requirement = decision.requirement
    if value["outcome"] != "require_approval":
        assert requirement.count == 0
        return
    assert requirement.count == value.get("min_approvals", 1)
    assert requirement.from_ == tuple(dict.fromkeys(value.get("from", [])))
    assert requirement.eligible == ()
    assert requirement.distinct_from == tuple(dict.fromkeys(value.get("distinct_from", [])))
    assert requirement.owner_may_approve is value.get("owner_may_approve", False)
    assert requirement.expires_in == _seconds(value.get("expires_in", DEFAULT_EXPIRY_SECONDS))
    assert requirement.denials == value.get("denials", 1)
    escalate = value.get("escalate_to")
    if escalate is None:
        assert requirement.escalation is None
    else:
        assert requirement.escalation is not None
        assert requirement.escalation.after == _seconds(escalate["after"])
        assert requirement.escalation.to == tuple(dict.fromkeys(escalate["from"]))


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 0),
    st.floats(allow_nan=False),
    st.text(max_size=4).filter(lambda s: ":" in s or not s.strip() or s == "4x"),
    st.lists(st.integers(), min_size=1, max_size=2),
    st.just({"bogus": 1}),
)
PATHS = [
    ("outcome",),
    ("reasons",),
    ("min_approvals",),
    ("from",),
    ("expires_in",),
    ("denials",),
    ("owner_may_approve",),
    ("escalate_to",),
    ("obligations",),
    ("obligations", "change_window"),
    ("obligations", "validation"),
    ("unknown_field",),
]


@settings(max_examples=400)
@given(decisions(), st.sampled_from(PATHS), JUNK)
def test_malformed_decisions_always_raise(
    value: dict[str, Any], path: tuple[str, ...], junk: Any
) -> None:
    value["outcome"] = "require_approval"
    target: Any = value
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = junk
    # Some junk is legal where it lands (a null change window means none; a boolean is
    # what owner_may_approve wants): leave those out.
    assume(not (junk is None and path[-1] in ("escalate_to", "change_window")))
    assume(not (isinstance(junk, bool) and path[-1] == "owner_may_approve"))
    try:
        decision_from(Answer(True, value), "d", "test")
    except PolicyError as exc:
        assert "data.placet.decision" in str(exc)
    else:
        raise AssertionError(f"accepted a malformed decision: {value!r}")
