"""The decision contract's ``retries``: 0..10 extra attempts, on allow and require_approval."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.domain.authority import MAX_RETRIES
from placet.policy import PolicyError, decision_from
from placet.policy.regocpp import Answer


def _decide(value: dict[str, Any]) -> Any:
    return decision_from(Answer(True, value), "d" * 64, "test")


@given(
    outcome=st.sampled_from(["allow", "require_approval"]),
    retries=st.integers(min_value=0, max_value=MAX_RETRIES),
)
def test_retries_are_carried_in_the_decision(outcome: str, retries: int) -> None:
    decision = _decide({"outcome": outcome, "reasons": ["ok"], "retries": retries})
    assert decision.retries == retries


@pytest.mark.parametrize("outcome", ["allow", "require_approval", "deny"])
def test_retries_default_to_none(outcome: str) -> None:
    assert _decide({"outcome": outcome, "reasons": ["why"]}).retries == 0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-1, "must be between 0 and 10, not -1"),
        (11, "must be between 0 and 10, not 11"),
        (1.5, "must be a whole number, not a number"),
        (True, "must be a whole number, not a boolean"),
        ("2", "must be a whole number, not a string"),
        (None, "must be a whole number, not null"),
    ],
)
def test_bad_retries_name_the_field(value: Any, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        _decide({"outcome": "allow", "reasons": ["ok"], "retries": value})
    assert f"test: data.placet.decision.retries: {problem}" == str(caught.value)


def test_a_deny_grants_no_retries() -> None:
    with pytest.raises(PolicyError, match=r"decision\.retries: a deny decision runs nothing"):
        _decide({"outcome": "deny", "reasons": ["no"], "retries": 1})
