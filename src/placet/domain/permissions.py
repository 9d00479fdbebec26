"""The one permission table: which roles may call each HTTP endpoint. Pure; no I/O.

Keys are ``"METHOD /path/template"`` exactly as FastAPI spells the route (``route.path``).
An endpoint missing from the table is refused to everyone (fail closed). The table says
who may *reach* an endpoint; the services still decide finer questions (an agent reads only
its own proposals; an approver must be eligible under the decision; separation of duties).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from placet.domain.authority import Role

ADMIN, APPROVER, VIEWER = Role.ADMIN, Role.APPROVER, Role.VIEWER
AUDITOR, AGENT, RUNNER = Role.AUDITOR, Role.AGENT, Role.RUNNER

# Who reads what. Every human role reads proposals, the graph and the ledger; evidence,
# history and people are for approvers (evidence only), auditors and admins.
HUMANS = frozenset({ADMIN, APPROVER, VIEWER, AUDITOR})
PROPOSAL_READERS = HUMANS | {AGENT}  # agents: their own (the service filters)
EVIDENCE_READERS = frozenset({ADMIN, APPROVER, AUDITOR, AGENT})
LEDGER_READERS = HUMANS | {AGENT, RUNNER}  # anyone verifying evidence needs keys and proofs
GRAPH_READERS = HUMANS | {AGENT}  # agents read the map they propose against
OVERSIGHT = frozenset({ADMIN, AUDITOR})  # history, people, notifications, reports
MANAGERS = frozenset({ADMIN})
DECIDERS = frozenset({APPROVER})  # admin approves only when also approver
CANCELLERS = frozenset({APPROVER, AGENT})
RUNNERS = frozenset({RUNNER})
PROPOSERS = frozenset({AGENT})

_TABLE: dict[str, frozenset[Role]] = {
    # proposals
    "POST /v1/proposals": PROPOSERS,
    "GET /v1/proposals": PROPOSAL_READERS,
    "GET /v1/proposals/{proposal_id}": PROPOSAL_READERS,
    "POST /v1/proposals/{proposal_id}/approve": DECIDERS,
    "POST /v1/proposals/{proposal_id}/deny": DECIDERS,
    "POST /v1/proposals/{proposal_id}/cancel": CANCELLERS,
    "GET /v1/proposals/{proposal_id}/evidence": EVIDENCE_READERS,
    # ledger and keys
    "GET /v1/ledger/checkpoint": LEDGER_READERS,
    "GET /v1/ledger/proofs/inclusion": LEDGER_READERS,
    "GET /v1/ledger/proofs/consistency": LEDGER_READERS,
    "GET /v1/keys": LEDGER_READERS,
    # runners
    "POST /v1/runners": MANAGERS,  # an admin registers a runner's key and labels
    "PUT /v1/runners/{name}/labels": MANAGERS,
    "POST /v1/runners/register": RUNNERS,
    "POST /v1/runners/lease": RUNNERS,
    "POST /v1/runners/leases/{lease_id}/heartbeat": RUNNERS,
    "POST /v1/runners/leases/{lease_id}/execution": RUNNERS,
    "POST /v1/runners/leases/{lease_id}/verification": RUNNERS,
    "POST /v1/runners/reports": RUNNERS,
    "POST /v1/runners/refusals": RUNNERS,
    # the System Graph
    "POST /v1/graph/imports": MANAGERS,
    "GET /v1/graph": GRAPH_READERS,
    "GET /v1/graph/versions": GRAPH_READERS,
    "GET /v1/graph/conflicts": GRAPH_READERS,
    "GET /v1/graph/nodes/{node_id:path}": GRAPH_READERS,
    "GET /v1/graph/blast": GRAPH_READERS,
    "GET /v1/graph/dependencies": GRAPH_READERS,
    "GET /v1/graph/owners": GRAPH_READERS,
    "GET /v1/graph/reach": GRAPH_READERS,
    # people: principals, groups, memberships
    "GET /v1/principals": OVERSIGHT,
    "POST /v1/principals": MANAGERS,
    "GET /v1/principals/{name}": OVERSIGHT,
    "PUT /v1/principals/{name}/roles": MANAGERS,
    "PUT /v1/principals/{name}/actions": MANAGERS,
    "POST /v1/principals/{name}/token": MANAGERS,
    "GET /v1/groups": OVERSIGHT,
    "POST /v1/groups": MANAGERS,
    "POST /v1/groups/import": MANAGERS,
    "GET /v1/groups/{name}": OVERSIGHT,
    "DELETE /v1/groups/{name}": MANAGERS,
    "POST /v1/groups/{name}/members": MANAGERS,
    "DELETE /v1/groups/{name}/members/{principal}": MANAGERS,
    # notifications
    "GET /v1/notifications": OVERSIGHT,
    "POST /v1/notifications/{id}/retry": MANAGERS,
    "GET /v1/notifications/channels": OVERSIGHT,
    "POST /v1/notifications/channels": MANAGERS,
    "DELETE /v1/notifications/channels/{name}": MANAGERS,
    "POST /v1/notifications/channels/{name}/test": MANAGERS,
    # policy
    "GET /v1/policy": HUMANS,
    "GET /v1/policy/history": OVERSIGHT,
    "POST /v1/policy/bundles": MANAGERS,
    "POST /v1/policy/rollback": MANAGERS,
    "POST /v1/policy/eval": frozenset({ADMIN, APPROVER, AUDITOR}),
    "GET /v1/policy/shadow": OVERSIGHT,
    "DELETE /v1/policy/shadow": MANAGERS,
    # reports
    "GET /v1/reports/permissions": OVERSIGHT,
}

PERMISSIONS: Mapping[str, frozenset[Role]] = MappingProxyType(_TABLE)


def endpoint(method: str, path: str) -> str:
    """The table key of an endpoint: ``"POST /v1/proposals/{proposal_id}/approve"``."""
    return f"{method.upper()} {path}"


def allowed_roles(method: str, path: str) -> frozenset[Role] | None:
    """The roles that may call ``method path`` (a route template), or None if it is unlisted."""
    return PERMISSIONS.get(endpoint(method, path))


def permitted(method: str, path: str, roles: Iterable[Role]) -> bool:
    """Whether a principal holding ``roles`` may call the endpoint; unlisted means no."""
    allowed = allowed_roles(method, path)
    return allowed is not None and not allowed.isdisjoint(roles)


def endpoints_for(role: Role) -> tuple[str, ...]:
    """Every endpoint ``role`` may call, in table order."""
    return tuple(key for key, roles in PERMISSIONS.items() if role in roles)


def as_markdown() -> str:
    """The table as a Markdown table (endpoint x role), the one docs/people.md embeds."""
    roles = list(Role)
    lines = [
        "| endpoint | " + " | ".join(r.value for r in roles) + " |",
        "| --- | " + " | ".join(":---:" for _ in roles) + " |",
    ]
    for key, allowed in PERMISSIONS.items():
        marks = " | ".join("yes" if r in allowed else "" for r in roles)
        lines.append(f"| `{key}` | {marks} |")
    return "\n".join(lines) + "\n"
