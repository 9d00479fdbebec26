"""Capability versus permission: for each agent, what it can do against what policy lets it
do without a human, evaluated with the enforcing bundle over the current graph.

An agent's capabilities are the actions it has proposed (kind, targets, environment, the
parameters of its latest such proposal) plus the action kinds registered for it (the
``kinds`` of its principal row) in each environment it has worked in. Each is evaluated as
a fresh proposal would be today: assessed against the current graph version, decided by
the enforcing bundle; nothing is recorded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from placet.domain.authority import Outcome
from placet.domain.errors import InputError
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent
from placet.policy.errors import PolicyError
from placet.policy.input import build_input
from placet.service.context import Context
from placet.service.graph import GraphService
from placet.service.policies import PolicyService
from placet.service.proposals import ProposalService
from placet.store.tables import principals, proposals

# How many of each agent's most recent proposals are read to find its capabilities.
HISTORY = 1000
DEFAULT_ENVIRONMENTS = ("production",)


class ReportService:
    """Read-only reports over principals, proposals, the graph and policy."""

    def __init__(
        self,
        ctx: Context,
        graph: GraphService,
        policies: PolicyService,
        proposal_service: ProposalService,
    ) -> None:
        self.ctx = ctx
        self.graph = graph
        self.policies = policies
        self.proposal_service = proposal_service

    def permissions(self, agent: str | None = None) -> dict[str, Any]:
        """The governance backlog: one row per agent capability with policy's answer."""
        with self.ctx.read() as conn:
            query = select(principals).where(principals.c.kind == PrincipalKind.AGENT.value)
            if agent is not None:
                query = query.where((principals.c.name == agent) | (principals.c.id == agent))
            agents = conn.execute(query.order_by(principals.c.name)).all()
            if agent is not None and not agents:
                raise InputError("agent", f"{agent!r} is not a registered agent")
            history = {
                row.id: conn.execute(
                    select(proposals.c.snapshot)
                    .where(proposals.c.agent_id == row.id)
                    .order_by(proposals.c.id.desc())
                    .limit(HISTORY)
                ).all()
                for row in agents
            }
            bundle_id, bundle = self.policies.enforcing(conn)
        current = self.graph.current()
        resolver = self.proposal_service._resolver()
        now = self.ctx.clock()
        out_agents = []
        for row in agents:
            who = Principal(
                row.id,
                row.name,
                PrincipalKind.AGENT,
                row.owner,
                tuple(row.teams or ()),
                tuple(row.roles or ()),
            )
            capabilities: dict[tuple[str, tuple[str, ...], str], dict[str, Any]] = {}
            for item in history[row.id]:
                content = item.snapshot["content"]
                key = (content["kind"], tuple(content["targets"]), content["environment"])
                entry = capabilities.setdefault(
                    key, {"proposals": 0, "parameters": content["parameters"], "source": "proposed"}
                )
                entry["proposals"] += 1
            environments = sorted({k[2] for k in capabilities}) or list(DEFAULT_ENVIRONMENTS)
            for kind in row.kinds or ():
                if any(k[0] == kind for k in capabilities):
                    continue
                for environment in environments:
                    capabilities[(kind, (), environment)] = {
                        "proposals": 0,
                        "parameters": {},
                        "source": "registered",
                    }
            rows = []
            for (kind, targets, environment), entry in sorted(capabilities.items()):
                content = ProposalContent(
                    agent=who.id,
                    kind=kind,
                    targets=targets,
                    parameters=entry["parameters"],
                    environment=environment,
                    intent="capability report",
                )
                verdict = self._verdict(who, content, bundle, resolver, now)
                rows.append(
                    {
                        "kind": kind,
                        "targets": list(targets),
                        "environment": environment,
                        "source": entry["source"],
                        "proposals": entry["proposals"],
                        **verdict,
                    }
                )
            out_agents.append(
                {
                    "agent": row.name,
                    "owner": row.owner,
                    "capabilities": rows,
                    "summary": {
                        "capabilities": len(rows),
                        "autonomous": sum(1 for r in rows if r["outcome"] == "allow"),
                        "needs_human": sum(1 for r in rows if r["outcome"] == "require_approval"),
                        "denied": sum(1 for r in rows if r["outcome"] == "deny"),
                        "failed": sum(1 for r in rows if r["outcome"] == "failed"),
                    },
                }
            )
        return {
            "graph_version": current.digest if current is not None else None,
            "policy": {"bundle_id": bundle_id, "name": bundle.name, "digest": bundle.digest},
            "evaluated_at": now.isoformat().replace("+00:00", "Z"),
            "agents": out_agents,
        }

    def _verdict(
        self,
        who: Principal,
        content: ProposalContent,
        bundle: Any,
        resolver: Any,
        now: Any,
    ) -> dict[str, Any]:
        try:
            assessment = self.graph.assess(content)
            document = build_input(
                proposal_id="report", content=content, agent=who, assessment=assessment, now=now
            )
            decision = bundle.evaluate(document)
        except PolicyError as exc:
            return {"outcome": "failed", "reasons": [str(exc)], "approvals": None}
        decision = replace(decision, requirement=decision.requirement.resolve(resolver))
        approvals = None
        if decision.outcome is Outcome.REQUIRE_APPROVAL:
            need = decision.requirement
            approvals = {
                "min_approvals": need.count,
                "from": list(need.from_),
                "eligible": list(need.eligible),
            }
        return {
            "outcome": decision.outcome.value,
            "reasons": list(decision.reasons),
            "approvals": approvals,
        }
