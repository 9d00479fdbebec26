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


def assessment_document(assessment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The assessment fields a policy sees; a missing assessment reads as an empty one."""
    source: Mapping[str, Any] = assessment or {}
    graph_version = source.get("graph_version")
    if graph_version is not None and not isinstance(graph_version, str):
        raise PolicyError("assessment.graph_version must be a string or null")
    targets = source.get("targets", [])
    if not isinstance(targets, Sequence) or isinstance(targets, str | bytes):
        raise PolicyError("assessment.targets must be a list")
    blast_radius = source.get("blast_radius", {})
    if not isinstance(blast_radius, Mapping):
        raise PolicyError("assessment.blast_radius must be an object")
    return {
        "graph_version": graph_version,
        "targets": _plain(targets, "assessment.targets"),
        "blast_radius": _plain(blast_radius, "assessment.blast_radius"),
    }


def build_input(
    *,
    proposal_id: str,
    content: ProposalContent,
    agent: Principal,
    assessment: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The input document for one proposal; ``now`` defaults to the current UTC time.

    ``assessment`` is the assessment predicate (``graph_version``, ``targets``,
    ``blast_radius``; other keys are ignored). ``agent`` must be the proposing agent.
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
        "graph_version": "graph-2026-11-25",
        "targets": [{"id": "service:checkout", "kind": "service", "criticality": "high"}],
        "blast_radius": {"count": 3, "nodes": ["service:checkout", "service:cart", "db:orders"]},
    }
    return build_input(
        proposal_id="prp_01JD0000000000000000000000",
        content=content,
        agent=agent,
        assessment=assessment,
        now=datetime(2026, 11, 25, 22, 40, 1, 123000, tzinfo=UTC),
    )
