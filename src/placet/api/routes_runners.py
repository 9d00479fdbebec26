"""``/v1/runners``: the lease protocol runners speak."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from placet.api.deps import caller, json_body, plane
from placet.api.schemas import FencedBody, LeaseBody, RegisterBody, ReportBody, RunnerBody, body
from placet.domain.lifecycle import Stage
from placet.domain.principals import Principal
from placet.service.runners import LEASE_WAIT_STEP, lease_wait

router = APIRouter(prefix="/v1/runners", tags=["runners"])
Caller = Annotated[Principal, Depends(caller)]


@router.post(
    "",
    status_code=201,
    summary="Register a runner with its public key and labels (admin); its token, once",
    openapi_extra=body(RunnerBody),
)
async def enrol(request: Request, who: Caller) -> dict[str, Any]:
    data = await json_body(request)
    cp = plane(request)
    return await run_in_threadpool(
        cp.runners.enrol,
        cp.principals,
        data.get("name"),
        data.get("public_key"),
        data.get("owner"),
        data.get("labels"),
    )


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
    summary="Lease one authorized proposal; waits up to `wait` s for one (204 when idle)",
    response_model=None,
    openapi_extra=body(LeaseBody),
)
async def lease(request: Request, who: Caller) -> dict[str, Any] | Response:
    """Long poll: look for work every LEASE_WAIT_STEP s until ``wait`` runs out (bounded)."""
    body = await json_body(request)
    deadline = time.monotonic() + lease_wait(body.get("wait"))
    runners = plane(request).runners
    offer = await run_in_threadpool(runners.lease, who, body.get("kinds"))
    while offer is None:
        left = deadline - time.monotonic()
        if left <= 0 or await request.is_disconnected():
            return Response(status_code=204)
        await asyncio.sleep(min(LEASE_WAIT_STEP, left))
        if await run_in_threadpool(runners.any_authorized, body.get("kinds")):
            offer = await run_in_threadpool(runners.lease, who, body.get("kinds"))
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
        body.get("sequence"),
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
