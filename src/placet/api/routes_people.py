"""``/v1/principals`` and ``/v1/groups``: people, roles, tokens, groups and memberships."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from placet.api.deps import caller, json_body, plane
from placet.api.schemas import (
    ActionsBody,
    GroupBody,
    MemberBody,
    PrincipalBody,
    RolesBody,
    body,
)
from placet.domain.errors import InputError
from placet.domain.principals import Principal
from placet.service.principals import principal_view

router = APIRouter(tags=["people"])
Caller = Annotated[Principal, Depends(caller)]


def _required(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InputError(name, "is required and must be a non-empty string")
    return value


def _text(data: dict[str, Any], name: str) -> str | None:
    return None if data.get(name) is None else _required(data, name)


def _texts(data: dict[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(name, "must be a list of strings")
    return tuple(value)


@router.get("/v1/principals", summary="Every principal (never tokens)")
async def list_principals(request: Request, who: Caller) -> dict[str, Any]:
    return {"items": await run_in_threadpool(plane(request).principals.views)}


@router.post(
    "/v1/principals",
    status_code=201,
    summary="Register a principal; its token is in the response, once",
    openapi_extra=body(PrincipalBody),
)
async def add_principal(request: Request, who: Caller) -> dict[str, Any]:
    """Humans get the roles given (default viewer); agents and runners need an owner."""
    data = await json_body(request)
    name, kind = _required(data, "name"), _required(data, "kind")
    principal, token = await run_in_threadpool(
        plane(request).principals.add,
        name,
        kind,
        _text(data, "owner"),
        _texts(data, "teams"),
        _texts(data, "roles"),
    )
    return {**principal_view(principal), "token": token}


@router.get("/v1/principals/{name}", summary="One principal (never tokens)")
async def get_principal(request: Request, name: str, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).principals.view, name)


@router.put(
    "/v1/principals/{name}/roles",
    summary="Replace a human's roles",
    openapi_extra=body(RolesBody),
)
async def set_roles(request: Request, name: str, who: Caller) -> dict[str, Any]:
    data = await json_body(request)
    if "roles" not in data:
        raise InputError("roles", "is required: a list of admin, approver, viewer, auditor")
    roles = _texts(data, "roles")
    principal = await run_in_threadpool(plane(request).principals.set_roles, name, roles, who.name)
    return principal_view(principal)


@router.put(
    "/v1/principals/{name}/actions",
    summary="Declare the action kinds an agent proposes",
    openapi_extra=body(ActionsBody),
)
async def set_actions(request: Request, name: str, who: Caller) -> dict[str, Any]:
    data = await json_body(request)
    if "actions" not in data:
        raise InputError("actions", "is required: a list of action kinds")
    kinds = _texts(data, "actions")
    return await run_in_threadpool(plane(request).principals.set_actions, name, kinds, who.name)


@router.post("/v1/principals/{name}/token", summary="Issue a new token (revokes the earlier ones)")
async def issue_token(request: Request, name: str, who: Caller) -> dict[str, Any]:
    principal, token = await run_in_threadpool(plane(request).principals.issue_token, name)
    return {"id": principal.id, "name": principal.name, "token": token}


@router.get("/v1/groups", summary="Every group and team with its members")
async def list_groups(request: Request, who: Caller) -> dict[str, Any]:
    return {"items": await run_in_threadpool(plane(request).principals.list_groups)}


@router.post(
    "/v1/groups", status_code=201, summary="Create a group or team", openapi_extra=body(GroupBody)
)
async def add_group(request: Request, who: Caller) -> dict[str, Any]:
    data = await json_body(request)
    name = _required(data, "name")
    return await run_in_threadpool(
        plane(request).principals.add_group,
        name,
        _text(data, "kind") or "team",
        _text(data, "title"),
        _text(data, "parent"),
    )


@router.post("/v1/groups/import", summary="Groups and members from the graph's Backstage teams")
async def import_groups(request: Request, who: Caller) -> dict[str, Any]:
    cp = plane(request)
    return await run_in_threadpool(cp.principals.import_groups_from_graph, cp.graph)


@router.get("/v1/groups/{name}", summary="One group with its members")
async def get_group(request: Request, name: str, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).principals.get_group, name)


@router.delete("/v1/groups/{name}", summary="Delete a group and its memberships")
async def remove_group(request: Request, name: str, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).principals.remove_group, name)


@router.post(
    "/v1/groups/{name}/members",
    summary="Add a principal to a group",
    openapi_extra=body(MemberBody),
)
async def add_member(request: Request, name: str, who: Caller) -> dict[str, Any]:
    data = await json_body(request)
    principal = _required(data, "principal")
    return await run_in_threadpool(plane(request).principals.add_member, name, principal)


@router.delete("/v1/groups/{name}/members/{principal}", summary="Remove a group member")
async def remove_member(request: Request, name: str, principal: str, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).principals.remove_member, name, principal)
