"""The input document a policy sees: the proposal, its agent, the assessment and the time.

Built from domain objects only (ProposalContent, Principal) and plain dicts, so the
policy room depends on no sibling room. Every value is plain JSON (dict, list, str,
int, float, bool, None); the same document is what ``placet policy eval`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent
from placet.policy.errors import PolicyError


def rfc3339(moment: datetime) -> str:
    """``moment`` as an RFC 3339 UTC string with milliseconds, e.g. 2026-11-25T22:40:01.123Z."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PolicyError("now: the evaluation time must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _plain(value: Any, field: str) -> Any:
    """A deep copy of ``value`` as plain JSON containers; other objects are refused."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        copy: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise PolicyError(f"{field}: object keys must be strings, not {key!r}")
            copy[key] = _plain(item, f"{field}.{key}")
        return copy
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_plain(item, f"{field}[{index}]") for index, item in enumerate(value)]
    raise PolicyError(f"{field}: a {type(value).__name__} is not a JSON value")


def agent_document(agent: Principal) -> dict[str, Any]:
    """The agent as the policy sees it: id, name, owner (or null), teams and roles."""
    return {
        "id": agent.id,
        "name": agent.name,
        "owner": agent.owner,
        "teams": list(agent.teams),
        "roles": list(agent.roles),
    }


def _ids(value: Any, field: str) -> list[str]:
    """``value`` as a list of strings; anything else is refused."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise PolicyError(f"{field} must be a list")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise PolicyError(f"{field}[{index}] must be a string, not {type(item).__name__}")
    return list(value)


def _blast_radius(value: Any) -> dict[str, Any]:
    """The blast radius, its fields checked: the default policy reads ``count``,
    ``revenue_path`` and ``data_classes``, and a mistyped one would make a rule silently
    not apply (for instance ``sprintf("%d")`` of 26.0 is undefined), which fails open."""
    field = "assessment.blast_radius"
    if not isinstance(value, Mapping):
        raise PolicyError(f"{field} must be an object")
    document: dict[str, Any] = _plain(value, field)
    count = document.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise PolicyError(f"{field}.count must be a whole number of nodes, not {count!r}")
    if not isinstance(document.get("revenue_path", False), bool):
        raise PolicyError(f"{field}.revenue_path must be true or false")
    nodes = document.get("nodes", [])
    if not isinstance(nodes, list):
        raise PolicyError(f"{field}.nodes must be a list")
    for key in ("tags", "owners", "data_classes"):
        if key in document:
            _ids(document[key], f"{field}.{key}")
    return document


def assessment_document(assessment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The assessment as a policy sees it; a missing assessment reads as an empty one.

    ``graph_version`` is ``{"id", "digest"}`` or null (no graph imported yet);
    ``targets`` describes each target (``known`` false when the graph lacks it);
    ``unknown_targets`` lists those; ``blast_radius`` has ``count``, ``nodes``, ``tags``,
    ``owners``, ``data_classes`` and ``revenue_path``; ``internet_reachable`` lists the
    targets reachable from an internet-facing entry point. The id lists, the count and
    ``revenue_path`` are type-checked (PolicyError), so a policy cannot fail open on them.
    """
    source: Mapping[str, Any] = assessment or {}
    graph_version = source.get("graph_version")
    if graph_version is not None and not isinstance(graph_version, Mapping | str):
        raise PolicyError("assessment.graph_version must be an object, a string or null")
    document: dict[str, Any] = {"graph_version": _plain(graph_version, "assessment.graph_version")}
    targets = source.get("targets", [])
    if not isinstance(targets, Sequence) or isinstance(targets, str | bytes):
        raise PolicyError("assessment.targets must be a list")
    document["targets"] = _plain(targets, "assessment.targets")
    document["unknown_targets"] = _ids(
        source.get("unknown_targets", []), "assessment.unknown_targets"
    )
    document["blast_radius"] = _blast_radius(source.get("blast_radius", {}))
    document["internet_reachable"] = _ids(
        source.get("internet_reachable", []), "assessment.internet_reachable"
    )
    return document


def build_input(
    *,
    proposal_id: str,
    content: ProposalContent,
    agent: Principal,
    assessment: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The input document for one proposal; ``now`` defaults to the current UTC time.

    ``assessment`` is the assessment predicate (see :func:`assessment_document`; other
    keys are ignored). ``agent`` must be the proposing agent.
    """
    if agent.id != content.agent:
        raise PolicyError(
            f"proposal.agent: the proposal names agent {content.agent!r}, not {agent.id!r}"
        )
    verify = content.verify
    return {
        "proposal": {
            "id": proposal_id,
            "digest": content.digest,
            "kind": content.kind,
            "targets": list(content.targets),
            "parameters": _plain(content.parameters, "proposal.parameters"),
            "environment": content.environment,
            "intent": content.intent,
            "scope": list(content.scope),
            "verify": None if verify is None else _plain(verify, "proposal.verify"),
            "agent": agent_document(agent),
        },
        "assessment": assessment_document(assessment),
        "now": rfc3339(now if now is not None else datetime.now(UTC)),
    }


def sample_input(*, kind: str = "restart", environment: str = "staging") -> dict[str, Any]:
    """A representative input document, for smoke evaluation, examples and benchmarks."""
    agent = Principal(
        id="agt_01JD0000000000000000000000",
        name="deploy-bot",
        kind=PrincipalKind.AGENT,
        owner="alice",
        teams=("payments",),
        roles=("deployer",),
    )
    content = ProposalContent(
        agent=agent.id,
        kind=kind,
        targets=("service:checkout",),
        parameters={"argv": ["systemctl", "restart", "checkout"], "timeout": 30},
        environment=environment,
        intent="restart checkout after the config change",
        verify={"argv": ["curl", "-fsS", "http://checkout/healthz"], "timeout": 10},
        scope=("service:checkout",),
    )
    assessment = {
        "graph_version": {
            "id": "gv_01JD0000000000000000000000",
            "digest": "5f0c6e2b1a7d4e3f8c9b0a1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f",
        },
        "targets": [
            {
                "id": "service:checkout",
                "known": True,
                "kind": "service",
                "owners": ["team:payments"],
                "tier": "2",
                "tags": [],
                "reach": {
                    "node": "service:checkout",
                    "reachable": True,
                    "entry_point": "service:frontend",
                    "path": ["service:frontend", "service:checkout"],
                },
            }
        ],
        "unknown_targets": [],
        "blast_radius": {
            "count": 2,
            "nodes": [
                {
                    "id": "service:checkout",
                    "kind": "service",
                    "distance": 0,
                    "path": ["service:checkout"],
                },
                {
                    "id": "service:frontend",
                    "kind": "service",
                    "distance": 1,
                    "path": ["service:checkout", "service:frontend"],
                },
            ],
            "tags": ["internet-facing"],
            "owners": ["team:payments", "team:web"],
            "data_classes": [],
            "revenue_path": False,
        },
        "internet_reachable": ["service:checkout"],
    }
    return build_input(
        proposal_id="prp_01JD0000000000000000000000",
        content=content,
        agent=agent,
        assessment=assessment,
        now=datetime(2026, 11, 25, 22, 40, 1, 123000, tzinfo=UTC),
    )
