"""The permission table: its shape and the rules it encodes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.domain.authority import HUMAN_ROLES, Role
from placet.domain.permissions import (
    PERMISSIONS,
    allowed_roles,
    endpoints_for,
    permitted,
)

KEY = re.compile(r"^(GET|POST|PUT|DELETE|PATCH) /v1(/[A-Za-z0-9_{}:.-]+)*$")
READS = [k for k in PERMISSIONS if k.startswith("GET ")]
WRITES = [k for k in PERMISSIONS if not k.startswith("GET ")]


def test_every_key_is_a_method_and_route_template() -> None:
    for key, roles in PERMISSIONS.items():
        assert KEY.match(key), key
        assert roles and roles <= set(Role), key


def test_unlisted_endpoints_are_refused_to_everyone() -> None:
    assert allowed_roles("GET", "/v1/secret") is None
    assert not permitted("GET", "/v1/secret", set(Role))
    assert not permitted("DELETE", "/v1/proposals", set(Role))  # method matters


def test_lookup_is_case_insensitive_in_the_method_only() -> None:
    assert permitted("post", "/v1/proposals", {Role.AGENT})
    assert allowed_roles("get", "/v1/keys") == allowed_roles("GET", "/v1/keys")
    assert allowed_roles("GET", "/V1/keys") is None


def test_admin_manages_and_reads_but_does_not_decide() -> None:
    for key in READS:
        assert Role.ADMIN in PERMISSIONS[key], key
    assert not permitted("POST", "/v1/proposals/{proposal_id}/approve", {Role.ADMIN})
    assert not permitted("POST", "/v1/proposals/{proposal_id}/deny", {Role.ADMIN})
    assert permitted("POST", "/v1/proposals/{proposal_id}/approve", {Role.ADMIN, Role.APPROVER})
    for key in ("POST /v1/principals", "POST /v1/policy/bundles", "POST /v1/graph/imports"):
        assert PERMISSIONS[key] == {Role.ADMIN}, key


def test_auditor_reads_everything_humans_read_and_changes_nothing() -> None:
    human_reads = [k for k in READS if PERMISSIONS[k] & HUMAN_ROLES]
    assert all(Role.AUDITOR in PERMISSIONS[k] for k in human_reads)
    changes = [k for k in WRITES if Role.AUDITOR in PERMISSIONS[k]]
    assert changes == ["POST /v1/policy/eval"]  # a what-if changes nothing


def test_viewer_only_reads_and_sees_no_evidence_people_or_history() -> None:
    assert all(k.startswith("GET ") for k in endpoints_for(Role.VIEWER))
    for key in (
        "GET /v1/proposals/{proposal_id}/evidence",
        "GET /v1/principals",
        "GET /v1/groups",
        "GET /v1/policy/history",
        "GET /v1/notifications",
    ):
        assert Role.VIEWER not in PERMISSIONS[key], key
    assert permitted("GET", "/v1/policy", {Role.VIEWER})


def test_machines_keep_to_their_lane() -> None:
    assert set(endpoints_for(Role.RUNNER)) == {
        *(k for k in PERMISSIONS if k.startswith("POST /v1/runners/")),
        "GET /v1/ledger/checkpoint",
        "GET /v1/ledger/proofs/inclusion",
        "GET /v1/ledger/proofs/consistency",
        "GET /v1/keys",
    }
    agent = set(endpoints_for(Role.AGENT))
    assert "POST /v1/proposals" in agent and "POST /v1/proposals/{proposal_id}/cancel" in agent
    assert not any(k.endswith(("/approve", "/deny")) for k in agent)
    assert not any("/principals" in k or "/groups" in k or "/policy" in k for k in agent)
    for key in WRITES:
        if key != "POST /v1/proposals":
            assert Role.APPROVER not in PERMISSIONS[key] or key.startswith(
                ("POST /v1/proposals/", "POST /v1/policy/eval")
            ), key


@given(st.sampled_from(sorted(PERMISSIONS)), st.sets(st.sampled_from(list(Role))))
def test_permitted_is_intersection(key: str, roles: set[Role]) -> None:
    method, path = key.split(" ", 1)
    assert permitted(method, path, roles) == bool(PERMISSIONS[key] & roles)


@pytest.mark.parametrize("role", list(Role))
def test_every_role_can_do_something(role: Role) -> None:
    assert endpoints_for(role)
