"""The decision contract: check the value of ``data.placet.decision`` and build a Decision.

The value must be an object ``{"outcome", "reasons", ...}``; ``require_approval`` may add
``min_approvals``, ``from``, ``distinct_from``, ``owner_may_approve``, ``expires_in``,
``escalate_to`` and ``denials``; ``allow`` and ``require_approval`` may add ``retries``
(extra attempts for an idempotent action whose runner is lost, 0..10); any outcome may add
``obligations``. Anything else (an
unknown field, a wrong type, a bad duration, selector, day or time zone) raises
:class:`PolicyError` naming the exact field, so the caller fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from typing import Any

from placet.domain.authority import (
    DAYS,
    DEFAULT_EXPIRY_SECONDS,
    MAX_RETRIES,
    NO_APPROVALS,
    PROPOSER,
    PROPOSER_OWNER,
    ChangeWindow,
    Decision,
    Escalation,
    Obligations,
    Outcome,
    Requirement,
    check_selector,
    check_timezone,
)
from placet.domain.errors import InputError
from placet.policy.durations import DurationError, parse_duration
from placet.policy.errors import PolicyError
from placet.policy.regocpp import Answer

DECISION_RULE = "data.placet.decision"
APPROVAL_FIELDS = (
    "min_approvals",
    "from",
    "distinct_from",
    "owner_may_approve",
    "expires_in",
    "escalate_to",
    "denials",
)
DECISION_FIELDS = ("outcome", "reasons", *APPROVAL_FIELDS, "obligations", "retries")
ESCALATION_FIELDS = ("after", "from")
OBLIGATION_FIELDS = ("validation", "change_window", "notify")
WINDOW_FIELDS = ("days", "start", "end", "timezone")
REPLACED = {
    "approvals": "approvals was replaced by min_approvals/from in placet 0.x: write "
    '"min_approvals": N and "from": [selectors] at the top of the decision',
}
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")


class _Bad(Exception):
    """A malformed part of a decision: the path below the decision and the problem."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem


def kind_of(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _object(value: Any, path: str, fields: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(path, f"must be an object, not {kind_of(value)}")
    for key in sorted(str(k) for k in value):
        if key not in fields:
            hint = REPLACED.get(key) if path == "" else None
            where = f"{path}.{key}" if path else key
            raise _Bad(where, hint or f"is not a known field (expected {', '.join(fields)})")
    return value


def _strings(value: Any, path: str, *, non_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Bad(path, f"must be an array of strings, not {kind_of(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _Bad(f"{path}[{index}]", f"must be a non-empty string, not {item!r}")
    if non_empty and not value:
        raise _Bad(path, "must not be empty")
    return tuple(dict.fromkeys(value))


def _selectors(
    value: Any, path: str, *, non_empty: bool = False, proposer: bool = False
) -> tuple[str, ...]:
    selectors = _strings(value, path, non_empty=non_empty)
    for index, selector in enumerate(selectors):
        where = f"{path}[{index}]"
        if not proposer and selector in (PROPOSER, PROPOSER_OWNER):
            raise _Bad(where, f"{selector!r} only has a meaning in distinct_from")
        try:
            check_selector(selector, where)
        except InputError as exc:
            raise _Bad(where, exc.problem) from None
    return selectors


def _count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(path, f"must be a whole number, not {kind_of(value)}")
    if value < 1:
        raise _Bad(path, f"must be at least 1, not {value}")
    return int(value)


def _retries(value: Any, outcome: Outcome) -> int:
    if outcome is Outcome.DENY:
        raise _Bad("retries", "a deny decision runs nothing, so it grants no retries")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad("retries", f"must be a whole number, not {kind_of(value)}")
    if not 0 <= value <= MAX_RETRIES:
        raise _Bad("retries", f"must be between 0 and {MAX_RETRIES}, not {value}")
    return int(value)


def _duration(value: Any, path: str) -> int:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise _Bad(path, str(exc)) from None


def _clock(value: Any, path: str) -> time:
    if not isinstance(value, str) or (match := _CLOCK.fullmatch(value)) is None:
        raise _Bad(path, f'must be a time of day "HH:MM" (24-hour), not {value!r}')
    hour, minute, second = match.groups()
    return time(int(hour), int(minute), int(second or 0))


def _window(value: Any, path: str) -> ChangeWindow:
    window = _object(value, path, WINDOW_FIELDS)
    for name in ("start", "end"):
        if name not in window:
            raise _Bad(f"{path}.{name}", 'is required (a time of day "HH:MM")')
    days: tuple[str, ...] = DAYS
    if "days" in window:
        days = _strings(window["days"], f"{path}.days", non_empty=True)
        for index, day in enumerate(days):
            if day not in DAYS:
                raise _Bad(f"{path}.days[{index}]", f"{day!r} is not one of {', '.join(DAYS)}")
        days = tuple(d for d in DAYS if d in days)
    start = _clock(window["start"], f"{path}.start")
    end = _clock(window["end"], f"{path}.end")
    if start == end:
        raise _Bad(f"{path}.end", "must differ from start (the window would be empty)")
    zone = window.get("timezone", "UTC")
    if not isinstance(zone, str):
        raise _Bad(f"{path}.timezone", f"must be an IANA time zone name, not {kind_of(zone)}")
    try:
        check_timezone(zone, f"{path}.timezone")
    except InputError as exc:
        raise _Bad(f"{path}.timezone", exc.problem) from None
    return ChangeWindow(days=days, start=start, end=end, timezone=zone)


def _obligations(value: Any) -> Obligations:
    path = "obligations"
    body = _object(value, path, OBLIGATION_FIELDS)
    window = body.get("change_window")
    return Obligations(
        validation=_strings(body.get("validation", []), f"{path}.validation"),
        change_window=None if window is None else _window(window, f"{path}.change_window"),
        notify=_strings(body.get("notify", []), f"{path}.notify"),
    )


def _escalation(value: Any, expires_in: int) -> Escalation:
    path = "escalate_to"
    body = _object(value, path, ESCALATION_FIELDS)
    for name in ESCALATION_FIELDS:
        if name not in body:
            raise _Bad(f"{path}.{name}", "is required")
    after = _duration(body["after"], f"{path}.after")
    if after >= expires_in:
        raise _Bad(
            f"{path}.after",
            f"({after}s) must be shorter than expires_in ({expires_in}s), or it never happens",
        )
    return Escalation(after=after, to=_selectors(body["from"], f"{path}.from", non_empty=True))


def _requirement(body: Mapping[str, Any]) -> Requirement:
    expires_in = DEFAULT_EXPIRY_SECONDS
    if "expires_in" in body:
        expires_in = _duration(body["expires_in"], "expires_in")
    escalate_to = body.get("escalate_to")
    owner_may_approve = body.get("owner_may_approve", False)
    if not isinstance(owner_may_approve, bool):
        raise _Bad("owner_may_approve", f"must be true or false, not {kind_of(owner_may_approve)}")
    return Requirement(
        count=_count(body.get("min_approvals", 1), "min_approvals"),
        from_=_selectors(body.get("from", []), "from"),
        distinct_from=_selectors(body.get("distinct_from", []), "distinct_from", proposer=True),
        owner_may_approve=owner_may_approve,
        expires_in=expires_in,
        escalation=None if escalate_to is None else _escalation(escalate_to, expires_in),
        denials=_count(body.get("denials", 1), "denials"),
    )


def _decision(value: Any, digest: str) -> Decision:
    body = _object(value, "", DECISION_FIELDS)
    raw = body.get("outcome")
    known = ", ".join(o.value for o in Outcome)
    if not isinstance(raw, str) or raw not in {o.value for o in Outcome}:
        shown = repr(raw) if isinstance(raw, str) else kind_of(raw)
        raise _Bad("outcome", f"must be one of {known}, not {shown}")
    outcome = Outcome(raw)
    if "reasons" not in body:
        raise _Bad("reasons", "is required: say why, in words a reviewer reads")
    reasons = _strings(body["reasons"], "reasons", non_empty=True)
    if outcome is not Outcome.REQUIRE_APPROVAL:
        extra = [name for name in APPROVAL_FIELDS if name in body]
        if extra:
            problem = f"only a require_approval decision may ask for approvals, not {raw}"
            raise _Bad(extra[0], problem)
        requirement = NO_APPROVALS
    else:
        requirement = _requirement(body)
    obligations = _obligations(body["obligations"]) if "obligations" in body else Obligations()
    retries = _retries(body["retries"], outcome) if "retries" in body else 0
    return Decision(
        outcome=outcome,
        reasons=reasons,
        requirement=requirement,
        policy_digest=digest,
        obligations=obligations,
        retries=retries,
    )


def decision_from(answer: Answer, digest: str, label: str) -> Decision:
    """Check the value of ``data.placet.decision`` and build the Decision it stands for.

    ``from`` is kept as written (``eligible`` stays empty: the service resolves
    ``owner-of:`` selectors through the graph). Raises PolicyError naming the field.
    """
    if not answer.defined:
        raise PolicyError(
            f"{label}: {DECISION_RULE} is undefined for this input; "
            "a bundle must give a decision for every proposal"
        )
    try:
        return _decision(answer.value, digest)
    except _Bad as exc:
        where = f"{DECISION_RULE}.{exc.path}" if exc.path else DECISION_RULE
        raise PolicyError(f"{label}: {where}: {exc.problem}") from None
