"""``/v1/policy``: the enforcing and shadow bundles, push, rollback, history, what-if."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from placet.api.deps import caller, json_body, plane
from placet.api.schemas import EvalBody, PolicyPushBody, RollbackBody, body
from placet.domain.errors import InputError
from placet.domain.principals import Principal

router = APIRouter(prefix="/v1/policy", tags=["policy"])
Caller = Annotated[Principal, Depends(caller)]


def _files(body: dict[str, Any]) -> dict[str, bytes]:
    files = body.get("files")
    if not isinstance(files, dict) or not files:
        raise InputError("files", "must be a non-empty object {relative path: Rego source}")
    out = {}
    for path, source in files.items():
        if not isinstance(source, str):
            raise InputError(f"files.{path}", "must be the file's text")
        out[path] = source.encode()
    return out


@router.get("", summary="The enforcing and shadow bundles")
async def heads(request: Request, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).policies.heads)


@router.get("/history", summary="Every push, rollback and shadow change, newest first")
async def history(
    request: Request, who: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    return {"items": await run_in_threadpool(plane(request).policies.history, limit)}


@router.post(
    "/bundles",
    status_code=201,
    summary="Push a bundle (enforcing, or shadow)",
    openapi_extra=body(PolicyPushBody),
)
async def push(request: Request, response: Response, who: Caller) -> dict[str, Any]:
    """Body: ``{"name", "files": {path: source}, "shadow": false}``; it must compile."""
    body = await json_body(request)
    name = body.get("name", "bundle")
    if not isinstance(name, str):
        raise InputError("name", "must be a string")
    shadow = body.get("shadow", False)
    if not isinstance(shadow, bool):
        raise InputError("shadow", "must be true or false")
    record = await run_in_threadpool(
        lambda: plane(request).policies.push(
            _files(body), name=name, author=who.name, shadow=shadow
        )
    )
    response.headers["Location"] = "/v1/policy"
    return record


@router.post(
    "/rollback",
    summary="Enforce the bundle pushed before the current one",
    openapi_extra=body(RollbackBody, required=False),
)
async def rollback(request: Request, who: Caller) -> dict[str, Any]:
    body = await json_body(request, required=False)
    to = body.get("to")
    if to is not None and not isinstance(to, str):
        raise InputError("to", "must be a bundle id or digest prefix")
    return await run_in_threadpool(plane(request).policies.rollback, who.name, to)


@router.post(
    "/eval",
    summary="What-if: a decision for an input document, not recorded",
    openapi_extra=body(EvalBody),
)
async def evaluate(request: Request, who: Caller) -> dict[str, Any]:
    """Body: ``{"input": {...}, "bundle": null | "shadow" | id}``."""
    body = await json_body(request)
    document = body.get("input")
    if not isinstance(document, dict):
        raise InputError("input", "must be an input document (a JSON object)")
    ref = body.get("bundle")
    if ref is not None and not isinstance(ref, str):
        raise InputError("bundle", "must be a bundle id, digest prefix or 'shadow'")
    return await run_in_threadpool(plane(request).policies.evaluate, document, ref)


@router.get("/shadow", summary="Where the shadow bundle would have decided differently")
async def shadow(
    request: Request,
    who: Caller,
    bundle: str | None = None,
    all: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).policies.shadow_report, bundle, not all, limit)


@router.delete("/shadow", status_code=204, summary="Stop shadow evaluation")
async def clear_shadow(request: Request, who: Caller) -> Response:
    await run_in_threadpool(plane(request).policies.clear_shadow, who.name)
    return Response(status_code=204)
