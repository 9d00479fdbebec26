"""Request plumbing shared by routers: the control plane, the caller, the JSON body."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from placet.domain.errors import InputError
from placet.domain.principals import Principal
from placet.service.control_plane import ControlPlane


class MalformedBody(InputError):
    """The body is not JSON at all (HTTP 400, not 422)."""


def plane(request: Request) -> ControlPlane:
    """The control plane wired at start-up."""
    cp: ControlPlane = request.app.state.plane
    return cp


async def caller(request: Request) -> Principal:
    """The authenticated principal; every /v1 route depends on it.

    Runs on the event loop: one indexed read (WAL readers never wait for the writer)
    costs less than a hop to the thread pool and back.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    return plane(request).principals.authenticate(bearer)


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
