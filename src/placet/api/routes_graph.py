"""``/v1/graph``: import sources, read versions, nodes, blast radius and reachability."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from placet.api.deps import caller, json_body, plane
from placet.domain.errors import Forbidden, InputError
from placet.domain.principals import Principal, PrincipalKind

router = APIRouter(prefix="/v1/graph", tags=["graph"])
Caller = Annotated[Principal, Depends(caller)]


def _files_from_json(body: dict[str, Any]) -> list[tuple[str, bytes]]:
    files = body.get("files")
    if not isinstance(files, list) or not files:
        raise InputError("files", "must be a non-empty list of {path, content}")
    out = []
    for i, item in enumerate(files):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise InputError(f"files[{i}].path", "is required and must be a string")
        if isinstance(item.get("content"), str):
            out.append((item["path"], item["content"].encode()))
        elif isinstance(item.get("content_base64"), str):
            try:
                out.append((item["path"], base64.b64decode(item["content_base64"], validate=True)))
            except (binascii.Error, ValueError):
                raise InputError(f"files[{i}].content_base64", "is not valid base64") from None
        else:
            raise InputError(f"files[{i}]", "needs content (text) or content_base64")
    return out


@router.post("/imports", status_code=201, summary="Import files as one source (humans)")
async def import_source(request: Request, who: Caller) -> dict[str, Any]:
    """JSON ``{source, format?, files: [{path, content | content_base64}]}`` or multipart
    with fields ``source``, ``format`` and one ``files`` part per file (filename = path)."""
    if who.kind is not PrincipalKind.HUMAN:
        raise Forbidden(who.name, "import into the System Graph", "only humans change the map")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        source, fmt = form.get("source"), form.get("format")
        files = []
        for part in form.getlist("files"):
            if not isinstance(part, UploadFile) or not part.filename:
                raise InputError("files", "each part needs a filename (its path)")
            files.append((part.filename, await part.read()))
    else:
        body = await json_body(request)
        source, fmt = body.get("source"), body.get("format")
        files = _files_from_json(body)
    if not isinstance(source, str) or not source.strip():
        raise InputError("source", "is required: the name this import replaces next time")
    if fmt is not None and not isinstance(fmt, str):
        raise InputError("format", "must be a string")
    return await run_in_threadpool(
        plane(request).graph.import_files, files, fmt or None, source, who.name
    )


@router.get("", summary="The current graph: version, sources and document", response_model=None)
async def graph(request: Request, who: Caller, format: str = "json") -> dict[str, Any] | Response:
    """JSON by default (``{version, sources, nodes, edges, ...}``); ``format=dot|mermaid``
    returns the drawing as text."""
    service = plane(request).graph
    if format in ("dot", "mermaid"):
        return PlainTextResponse(await run_in_threadpool(service.show, format))
    if format != "json":
        raise InputError("format", f"must be json, dot or mermaid, not {format!r}")
    summary = await run_in_threadpool(service.summary)
    document = await run_in_threadpool(service.show, "json") if summary["version"] else None
    return {**summary, "graph": document}


@router.get("/versions", summary="Every graph version, newest first")
async def versions(request: Request, who: Caller) -> dict[str, Any]:
    return {"items": await run_in_threadpool(plane(request).graph.versions)}


@router.get("/conflicts", summary="Where sources disagree")
async def conflicts(request: Request, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).graph.conflicts)


@router.get("/nodes/{node_id:path}", summary="One node with its facts and provenance")
async def node(request: Request, node_id: str, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).graph.node, node_id)


@router.get("/blast", summary="Blast radius of one or more nodes")
async def blast(
    request: Request,
    who: Caller,
    node: Annotated[list[str], Query()],
    depth: Annotated[int | None, Query(ge=0)] = None,
    kind: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).graph.blast, node, depth, kind)


@router.get("/dependencies", summary="What a node depends on (forward)")
async def dependencies(
    request: Request, who: Caller, node: str, depth: Annotated[int | None, Query(ge=0)] = None
) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).graph.dependencies, node, depth)


@router.get("/owners", summary="Changed file paths to owning nodes and owners")
async def owners(
    request: Request, who: Caller, path: Annotated[list[str], Query()]
) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).graph.owners, path)


@router.get("/reach", summary="Is the node reachable from an internet-facing entry point")
async def reach(request: Request, who: Caller, node: str) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).graph.reach, node)
