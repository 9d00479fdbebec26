"""Request and response shapes for the OpenAPI document.

Handlers parse bodies themselves (so errors name fields the way the domain does and
malformed JSON is a 400); these models only describe the wire format to clients.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class HttpCheck(BaseModel):
    """An HTTP post-condition: it passes on a 2xx answer."""

    url: str = Field(description="An http:// or https:// URL.")
    method: str = Field("GET", description="GET, HEAD, POST, PUT, PATCH or DELETE.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    timeout: float | None = Field(None, description="Seconds per attempt, more than 0, <= 60.")


class VerifySpec(BaseModel):
    """The post-condition a runner checks after executing: exactly one of argv or http."""

    argv: list[str] | None = Field(None, description="Program and arguments (must exit 0).")
    timeout: float | None = Field(None, description="argv only: seconds, at most 3600.")
    cwd: str | None = Field(None, description="argv only: directory inside the runner's.")
    http: HttpCheck | None = Field(None, description="An HTTP check instead of argv.")
    retry_for: float | None = Field(
        None, description="Seconds a failing check is retried (0..600, default 0: one attempt)."
    )
    interval: float | None = Field(
        None, description="Seconds between attempts (0.1..60, default 2)."
    )


class RollbackSpec(BaseModel):
    """What to file as a new proposal (same agent and environment) if verification fails."""

    kind: str = Field(description="Action kind.")
    targets: list[str] = Field(description="System Graph node ids; at least one.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    intent: str = Field(description="Why, in words.")
    verify: VerifySpec | None = None
    scope: list[str] = Field(default_factory=list)


class ProposalBody(BaseModel):
    """What an agent wants done."""

    kind: str = Field(description="Action kind, e.g. shell, restart, deploy.")
    targets: list[str] = Field(description="System Graph node ids; at least one.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="For shell: argv, timeout, cwd."
    )
    environment: str = Field(description="e.g. staging, production.")
    intent: str = Field(description="Why, in words.")
    verify: VerifySpec | None = None
    scope: list[str] = Field(default_factory=list)
    rollback: RollbackSpec | None = Field(
        None,
        description="Filed as a new proposal, decided by policy, when verification fails"
        " (not when execution fails). No nested rollback.",
    )


class ApproveBody(BaseModel):
    """Optional: the digest the human reviewed (defaults to the proposal's) and why."""

    digest: str | None = None
    reason: str | None = None


class DenyBody(BaseModel):
    """A denial needs a reason."""

    reason: str
    digest: str | None = None


class CancelBody(BaseModel):
    reason: str = ""


class RegisterBody(BaseModel):
    public_key: str = Field(description="Base64 of the runner's raw Ed25519 public key.")
    kinds: list[str]


class LeaseBody(BaseModel):
    kinds: list[str]
    wait: float = Field(0, description="Seconds to wait for work before 204 (at most 30).")
    max: int | None = Field(
        None,
        description="Take up to this many capsules at once (1 to 32); the answer is then"
        ' {"leases": [...]}. Without it, the answer is one lease.',
    )


class RunnerBody(BaseModel):
    name: str
    public_key: str = Field(description="The runner's runner.pub: PEM or base64 of the raw key.")
    owner: str = Field(description="The human answerable for the runner.")
    labels: dict[str, str | list[str]] = Field(
        default_factory=dict, description='Labels, e.g. {"env": "prod", "region": "eu"}.'
    )


class LabelsBody(BaseModel):
    labels: dict[str, str | list[str]] = Field(
        description='The runner\'s new labels, replacing the old, e.g. {"env": "prod"}.'
    )


class FencedBody(BaseModel):
    fencing_token: int


class ReportBody(BaseModel):
    fencing_token: int
    envelope: dict[str, Any] = Field(description="Runner-signed DSSE envelope.")
    sequence: int | None = Field(
        default=None,
        description="The report's number in its lease (default 1 for execution, 2 for"
        " verification); a report resent with the same number is accepted once.",
    )


class BatchReport(ReportBody):
    lease_id: str
    stage: str = Field(description="execution or verification.")


class ReportsBody(BaseModel):
    """Several reports in one request (at most 64), recorded in order, each once."""

    reports: list[BatchReport]


class RefusalBody(BaseModel):
    """A runner's refusal of a genuine capsule leased to another runner (misdirected)."""

    envelope: dict[str, Any] = Field(
        description="The refusal: an execution statement (ok false, argv [], error starting"
        ' "capsule refused:") naming the capsule\'s lease, fencing token and capsule digest,'
        " signed with the calling runner's registered key."
    )


class PrincipalBody(BaseModel):
    """A principal to register; the response carries its token, shown once."""

    name: str = Field(description="Unique name, e.g. alice or deploy-bot.")
    kind: str = Field(description="human, agent or runner.")
    owner: str | None = Field(None, description="The human answerable for an agent or runner.")
    teams: list[str] = Field(default_factory=list, description="Groups (created if new).")
    roles: list[str] = Field(
        default_factory=list,
        description="Humans: admin, approver, viewer, auditor (default viewer). Others: none.",
    )


class RolesBody(BaseModel):
    """A human's roles, replacing the ones it has."""

    roles: list[str]


class GroupBody(BaseModel):
    """A group or team made by hand."""

    name: str
    kind: str = Field("team", description="team or group.")
    title: str | None = None
    parent: str | None = Field(None, description="An existing group.")


class MemberBody(BaseModel):
    """The principal to add to a group."""

    principal: str


class ActionsBody(BaseModel):
    """The action kinds an agent is built to propose (replacing the ones declared)."""

    actions: list[str]


class ChannelBody(BaseModel):
    """A notification channel: webhook/slack need ``config.url``, email ``config.to``."""

    name: str
    kind: str = Field(description="webhook, slack or email")
    config: dict[str, Any]
    events: list[str] = Field(default_factory=list, description="Empty: every event.")


class PolicyPushBody(BaseModel):
    """A policy bundle: its Rego files by relative path; it must compile."""

    name: str = "bundle"
    files: dict[str, str]
    shadow: bool = False


class RollbackBody(BaseModel):
    """Optional: the bundle (id or digest prefix) to put back in force."""

    to: str | None = None


class EvalBody(BaseModel):
    """An input document and which bundle to ask (default: the enforcing one)."""

    input: dict[str, Any]
    bundle: str | None = Field(default=None, description="A bundle id, digest prefix or 'shadow'.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None


def body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON request body of ``model``."""
    return {
        "requestBody": {
            "required": required,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


BODIES: list[type[BaseModel]] = [
    RunnerBody,
    ActionsBody,
    ChannelBody,
    PolicyPushBody,
    RollbackBody,
    EvalBody,
    VerifySpec,
    ProposalBody,
    ApproveBody,
    DenyBody,
    CancelBody,
    RegisterBody,
    LeaseBody,
    FencedBody,
    LabelsBody,
    ReportBody,
    ReportsBody,
    RefusalBody,
    PrincipalBody,
    RolesBody,
    GroupBody,
    MemberBody,
    Problem,
]
