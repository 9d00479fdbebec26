"""``/v1/proposals``: propose, read, list, approve, deny, cancel, evidence."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from placet.api.deps import caller, json_body, plane
from placet.api.schemas import ApproveBody, CancelBody, DenyBody, ProposalBody, body
from placet.domain.errors import InputError
from placet.domain.principals import Principal

router = APIRouter(prefix="/v1/proposals", tags=["proposals"])
Caller = Annotated[Principal, Depends(caller)]


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InputError(name, "must be a string")
    return value


@router.post(
    "", status_code=201, summary="Submit a proposal (agents)", openapi_extra=body(ProposalBody)
)
async def propose(
    request: Request,
    response: Response,
    who: Caller,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Submit, assess and decide a proposal; an Idempotency-Key replays the same proposal."""
    body = await json_body(request)
    view, created = await run_in_threadpool(
        plane(request).proposals.propose, who, body, idempotency_key
    )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/proposals/{view['id']}"
    return view


@router.get("", summary="List proposals (humans: all; agents: their own)")
async def list_proposals(
    request: Request,
    who: Caller,
    state: str | None = None,
    agent: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    items = await run_in_threadpool(plane(request).proposals.list, who, state, agent, limit)
    return {"items": items}


@router.get("/{proposal_id}", summary="Read one proposal")
async def get_proposal(request: Request, proposal_id: str, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).proposals.get, who, proposal_id)


@router.post(
    "/{proposal_id}/approve",
    summary="Approve (humans)",
    openapi_extra=body(ApproveBody, required=False),
)
async def approve(request: Request, proposal_id: str, who: Caller) -> dict[str, Any]:
    """A human's yes, bound to ``digest`` when given (else the proposal's digest)."""
    body = await json_body(request, required=False)
    digest = _optional_str(body, "digest")
    reason = _optional_str(body, "reason") or ""
    return await run_in_threadpool(
        plane(request).proposals.approve, who, proposal_id, digest, reason
    )


@router.post(
    "/{proposal_id}/deny", summary="Deny with a reason (humans)", openapi_extra=body(DenyBody)
)
async def deny(request: Request, proposal_id: str, who: Caller) -> dict[str, Any]:
    body = await json_body(request, required=False)
    reason = _optional_str(body, "reason") or ""
    digest = _optional_str(body, "digest")
    return await run_in_threadpool(plane(request).proposals.deny, who, proposal_id, reason, digest)


@router.post(
    "/{proposal_id}/cancel",
    summary="Cancel before it runs (its agent or a human)",
    openapi_extra=body(CancelBody, required=False),
)
async def cancel(request: Request, proposal_id: str, who: Caller) -> dict[str, Any]:
    body = await json_body(request, required=False)
    reason = _optional_str(body, "reason") or ""
    return await run_in_threadpool(plane(request).proposals.cancel, who, proposal_id, reason)


@router.get("/{proposal_id}/evidence", summary="The proposal's evidence bundle")
async def evidence(request: Request, proposal_id: str, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).proposals.evidence, who, proposal_id)
