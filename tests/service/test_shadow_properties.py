"""Property: a shadow bundle never changes an outcome. For random enforcing and shadow
policies (some malformed) and random proposals, the proposal decided with the shadow
present ends exactly as the same content decided with no shadow at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from placet.domain.errors import InputError
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise
from tests.conftest import add_principals, seed_graph

outcomes = st.sampled_from(["allow", "require_approval", "deny"])
selectors = st.lists(
    st.sampled_from(["team:platform", "team:sre", "owner-of:payments", "role:approver"]),
    max_size=2,
    unique=True,
)


@st.composite
def decisions(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed decision, or now and then a malformed one (a shadow may be broken)."""
    outcome = draw(outcomes)
    decision: dict[str, Any] = {"outcome": outcome, "reasons": [f"random {outcome}"]}
    if outcome == "require_approval":
        decision["min_approvals"] = draw(st.integers(1, 3))
        decision["from"] = draw(selectors)
        decision["expires_in"] = draw(st.sampled_from(["1h", "24h", 600]))
    if draw(st.booleans()):
        decision["obligations"] = {"validation": ["smoke"], "notify": []}
    return decision


@st.composite
def bundles(draw: st.DrawFn, broken: bool) -> bytes:
    """A bundle deciding by environment; with ``broken``, possibly malformed."""
    production, other = draw(decisions()), draw(decisions())
    if broken and draw(st.booleans()):
        other = draw(st.sampled_from([{"outcome": "perhaps"}, {"reasons": []}, {"x": 1}]))
    return (
        "package placet\nimport rego.v1\n"
        f'decision := {json.dumps(production)} if input.proposal.environment == "production"'
        f" else := {json.dumps(other)}\n"
    ).encode()


proposals = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["shell", "restart", "purge_data"]),
        "targets": st.lists(
            st.sampled_from(["svc", "payments", "db", "unknown-node"]),
            min_size=1,
            max_size=2,
            unique=True,
        ),
        "environment": st.sampled_from(["production", "staging"]),
        "intent": st.just("property"),
        "parameters": st.just({"argv": ["true"]}),
    }
)


@pytest.fixture(scope="module")
def shared_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    directory: Path = tmp_path_factory.mktemp("shadow") / "data"
    settings = load_settings(directory)
    initialise(settings)
    seed_graph(directory)
    cp = ControlPlane.open(settings)
    add_principals(cp)
    yield cp
    cp.close()


def _summary(view: dict[str, Any]) -> tuple[Any, ...]:
    decision = view["decision"] or {}
    return (
        view["state"],
        decision.get("outcome"),
        tuple(decision.get("reasons", ())),
        json.dumps(decision.get("approvals"), sort_keys=True),
        json.dumps(decision.get("obligations"), sort_keys=True),
        view["reason"].split(":")[0],
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(enforcing=bundles(broken=True), shadow=bundles(broken=True), body=proposals)
def test_a_shadow_never_changes_an_outcome(
    shared_plane: ControlPlane, enforcing: bytes, shadow: bytes, body: dict[str, Any]
) -> None:
    cp = shared_plane
    agent = cp.principals.by_name("bot")
    try:
        cp.policies.push({"p.rego": enforcing}, name="enforcing", author="test")
        cp.policies.push({"p.rego": shadow}, name="shadow", author="test", shadow=True)
    except InputError:
        # A bundle the engine refuses at push is never in force (rego-cpp rejects a few
        # valid programs with an internal "wellformed" error); nothing to compare.
        reject()
    with_shadow, _ = cp.proposals.propose(agent, body)
    cp.policies.clear_shadow("test")
    without, _ = cp.proposals.propose(agent, body)
    assert _summary(with_shadow) == _summary(without)
    report = cp.policies.shadow_report(only_differences=False, limit=1)
    assert report["items"][0]["proposal_id"] == with_shadow["id"]
    assert report["items"][0]["enforced"] == (
        (with_shadow["decision"] or {}).get("outcome") or "failed"
    )
