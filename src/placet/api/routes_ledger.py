"""``/v1/ledger`` and ``/v1/keys``: checkpoints, proofs and public keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from placet.api.deps import caller, plane
from placet.domain.errors import NotFound
from placet.domain.principals import Principal

router = APIRouter(tags=["ledger"])
Caller = Annotated[Principal, Depends(caller)]


@router.get(
    "/v1/ledger/checkpoint",
    response_class=PlainTextResponse,
    summary="The newest signed checkpoint (C2SP signed note)",
)
async def checkpoint(request: Request, who: Caller) -> PlainTextResponse:
    ledger = plane(request).ledger
    if await run_in_threadpool(ledger.size) == 0:
        raise NotFound("checkpoint", "(the ledger is empty)")
    note = await run_in_threadpool(ledger.checkpoint)
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


@router.get("/v1/ledger/proofs/inclusion", summary="RFC 9162 inclusion proof")
async def inclusion(
    request: Request,
    who: Caller,
    leaf_index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).ledger.inclusion_proof, leaf_index, tree_size)


@router.get("/v1/ledger/proofs/consistency", summary="RFC 9162 consistency proof")
async def consistency(
    request: Request,
    who: Caller,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).ledger.consistency_proof, first, second)


@router.get("/v1/keys", summary="Public keys: the control plane's and the runners'")
async def keys(request: Request, who: Caller) -> dict[str, Any]:
    return {"keys": await run_in_threadpool(plane(request).ledger.keys)}
