"""Request plumbing shared by routers: the control plane, the caller, the JSON body."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from placet.domain.authority import roles_of
from placet.domain.errors import InputError, NotPermitted
from placet.domain.permissions import allowed_roles, endpoint
from placet.domain.principals import Principal
from placet.service.control_plane import ControlPlane


class MalformedBody(InputError):
    """The body is not JSON at all (HTTP 400, not 422)."""


def plane(request: Request) -> ControlPlane:
    """The control plane wired at start-up."""
    cp: ControlPlane = request.app.state.plane
    return cp


async def caller(request: Request) -> Principal:
    """The authenticated principal, if the permission table lets its roles call this route.

    Every /v1 route depends on it. Runs on the event loop: one indexed read (WAL readers
    never wait for the writer) and a dict lookup cost less than a hop to the thread pool.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    who = plane(request).principals.authenticate(bearer)
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    needed = allowed_roles(request.method, template)
    roles = roles_of(who)
    if needed is None or needed.isdisjoint(roles):
        raise NotPermitted(
            who.name,
            endpoint(request.method, template),
            tuple(sorted(roles)),
            tuple(sorted(needed or ())),
        )
    return who


async def json_body(request: Request, *, required: bool = True) -> Any:
    """The request body parsed as JSON, with a 400 naming the problem when it is not."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise MalformedBody("body", "a JSON object is required")
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody("body", f"not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InputError("body", "must be a JSON object")
    return body
