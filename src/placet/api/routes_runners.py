"""``/v1/runners``: the lease protocol runners speak."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from placet.api.deps import caller, json_body, plane
from placet.api.schemas import FencedBody, LeaseBody, RegisterBody, ReportBody, body
from placet.domain.lifecycle import Stage
from placet.domain.principals import Principal

router = APIRouter(prefix="/v1/runners", tags=["runners"])
Caller = Annotated[Principal, Depends(caller)]


@router.post(
    "/register",
    summary="Register the runner's public key and kinds",
    openapi_extra=body(RegisterBody),
)
async def register(request: Request, who: Caller) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(
        plane(request).runners.register, who, body.get("public_key"), body.get("kinds")
    )


@router.post(
    "/lease",
    summary="Lease one authorized proposal (204 when idle)",
    response_model=None,
    openapi_extra=body(LeaseBody),
)
async def lease(request: Request, who: Caller) -> dict[str, Any] | Response:
    body = await json_body(request)
    offer = await run_in_threadpool(plane(request).runners.lease, who, body.get("kinds"))
    if offer is None:
        return Response(status_code=204)
    return offer


@router.post(
    "/leases/{lease_id}/heartbeat",
    summary="Keep a lease alive (409: lost)",
    openapi_extra=body(FencedBody),
)
async def heartbeat(request: Request, lease_id: str, who: Caller) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(
        plane(request).runners.heartbeat, who, lease_id, body.get("fencing_token")
    )


async def _report(request: Request, lease_id: str, who: Principal, stage: Stage) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(
        plane(request).runners.report,
        who,
        lease_id,
        body.get("fencing_token"),
        body.get("envelope"),
        stage,
    )


@router.post(
    "/leases/{lease_id}/execution",
    summary="Report the signed execution statement",
    openapi_extra=body(ReportBody),
)
async def execution(request: Request, lease_id: str, who: Caller) -> dict[str, Any]:
    return await _report(request, lease_id, who, Stage.EXECUTION)


@router.post(
    "/leases/{lease_id}/verification",
    summary="Report the signed verification",
    openapi_extra=body(ReportBody),
)
async def verification(request: Request, lease_id: str, who: Caller) -> dict[str, Any]:
    return await _report(request, lease_id, who, Stage.VERIFICATION)
