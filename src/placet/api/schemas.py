"""Request and response shapes for the OpenAPI document.

Handlers parse bodies themselves (so errors name fields the way the domain does and
malformed JSON is a 400); these models only describe the wire format to clients.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class VerifySpec(BaseModel):
    """The post-condition a runner checks after executing."""

    argv: list[str] = Field(description="Program and arguments; no shell.")
    timeout: float | None = Field(None, description="Seconds, at most 3600.")
    cwd: str | None = Field(None, description="Working directory inside the runner's.")


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


class ApproveBody(BaseModel):
    """Optional: the digest the human reviewed (defaults to the proposal's)."""

    digest: str | None = None


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


class FencedBody(BaseModel):
    fencing_token: int


class ReportBody(BaseModel):
    fencing_token: int
    envelope: dict[str, Any] = Field(description="Runner-signed DSSE envelope.")


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
    VerifySpec,
    ProposalBody,
    ApproveBody,
    DenyBody,
    CancelBody,
    RegisterBody,
    LeaseBody,
    FencedBody,
    ReportBody,
    Problem,
]
