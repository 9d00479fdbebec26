"""``/v1/runners``: the lease protocol runners speak."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from placet.api.deps import caller, json_body, plane
from placet.api.problems import problem_of
from placet.api.schemas import (
    FencedBody,
    LabelsBody,
    LeaseBody,
    RefusalBody,
    RegisterBody,
    ReportBody,
    ReportsBody,
    RunnerBody,
    body,
)
from placet.domain.lifecycle import Stage
from placet.domain.principals import Principal
from placet.service.runner_checks import LEASE_PROBE_SECONDS, lease_count, lease_wait

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
    summary="Lease authorized work; waits up to `wait` s for some (204 when idle)",
    response_model=None,
    openapi_extra=body(LeaseBody),
)
async def lease(request: Request, who: Caller) -> dict[str, Any] | Response:
    """Long poll until ``wait`` runs out (bounded): woken (one request per new proposal) as
    soon as this process makes work leasable; probing every LEASE_PROBE_SECONDS otherwise.

    Without ``max`` the answer is one lease; with ``max`` it is ``{"leases": [...]}`` with
    1 to ``max`` of them (the runner's free slots, taken in one transaction).
    """
    body = await json_body(request)
    deadline = time.monotonic() + lease_wait(body.get("wait"))
    most = lease_count(body.get("max"))
    cp = plane(request)
    runners, work = cp.runners, cp.ctx.work
    offers = await run_in_threadpool(runners.lease_many, who, body.get("kinds"), most)
    while not offers:
        left = deadline - time.monotonic()
        if left <= 0 or await request.is_disconnected():
            return Response(status_code=204)
        woken = await work.wait(min(LEASE_PROBE_SECONDS, left))
        if woken or await run_in_threadpool(runners.any_authorized, body.get("kinds")):
            offers = await run_in_threadpool(runners.lease_many, who, body.get("kinds"), most)
    if body.get("max") is None:
        return offers[0]
    return {"leases": offers}


@router.post(
    "/reports",
    summary="Report several signed statements at once; one answer per report, in order",
    openapi_extra=body(ReportsBody),
)
async def reports(request: Request, who: Caller) -> dict[str, Any]:
    """Each report is checked and recorded as the per-lease routes would, in one transaction;
    a refused one is answered with its problem and changes nothing."""
    data = await json_body(request)
    answers = await run_in_threadpool(plane(request).runners.report_many, who, data.get("reports"))
    return {
        "results": [{"problem": problem_of(a["error"])} if "error" in a else a for a in answers]
    }


@router.post(
    "/refusals",
    summary="Report the refusal of a genuine capsule leased to another runner (misdirected)",
    openapi_extra=body(RefusalBody),
)
async def refusals(request: Request, who: Caller) -> dict[str, Any]:
    """The capsule leaked: its lease ends misdirected, the proposal failed, and the signed
    refusal is recorded; the same refusal resent answers the same (409: lease finished)."""
    data = await json_body(request)
    return await run_in_threadpool(plane(request).runners.refuse, who, data.get("envelope"))


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


@router.put(
    "/{name}/labels",
    summary="Replace a runner's labels (admin); capsules are targeted by them",
    openapi_extra=body(LabelsBody),
)
async def set_labels(request: Request, name: str, who: Caller) -> dict[str, Any]:
    """The runner learns its new labels with its next lease."""
    data = await json_body(request)
    return await run_in_threadpool(plane(request).runners.set_labels, name, data.get("labels"))
