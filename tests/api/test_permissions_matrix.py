"""Every /v1 endpoint x every role against the permission table, on a real server.

The table (placet.domain.permissions) and the app's routes must name the same endpoints;
then a request by each role gets the permission refusal exactly when the table says no.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from placet.api.app import create_app
from placet.api.deps import caller
from placet.domain.authority import Role
from placet.domain.permissions import PERMISSIONS, allowed_roles
from placet.service.control_plane import ControlPlane
from tests.conftest import Server, Tokens

NOT_PERMITTED = "https://placet.dev/problems/not-permitted"
PARAM = re.compile(r"\{([^}:]+)(:[^}]+)?\}")


def v1_endpoints(app: FastAPI) -> dict[str, str]:
    """``"METHOD /template"`` -> concrete path with dummy parameters, for every /v1 route."""
    out = {}
    for route in iter_route_contexts(app.routes):  # flattens included routers
        path, methods = route.path, route.methods
        if path and methods and path.startswith("/v1"):
            concrete = PARAM.sub(lambda m: "svc" if m.group(2) else "no-such-x", path)
            for method in sorted(methods - {"HEAD"}):
                out[f"{method} {path}"] = concrete
    return out


def test_the_route_walk_sees_every_documented_operation(plane: ControlPlane) -> None:
    app = create_app(plane)
    documented = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in operations
    }
    walked = {PARAM.sub(lambda m: "{" + m.group(1) + "}", k) for k in v1_endpoints(app)}
    assert walked == documented


def role_tokens(tokens: Tokens) -> dict[Role, str]:
    return {
        Role.ADMIN: tokens.admin,
        Role.APPROVER: tokens.human,
        Role.VIEWER: tokens.viewer,
        Role.AUDITOR: tokens.auditor,
        Role.AGENT: tokens.agent,
        Role.RUNNER: tokens.runner,
    }


def test_table_and_routes_name_the_same_endpoints(plane: ControlPlane) -> None:
    routes = set(v1_endpoints(create_app(plane)))
    assert sorted(routes - set(PERMISSIONS)) == [], "routes missing from the permission table"
    assert sorted(set(PERMISSIONS) - routes) == [], "table entries with no route (stale)"


def test_every_endpoint_by_every_role(server: Server, tokens: Tokens, plane: ControlPlane) -> None:
    endpoints = v1_endpoints(create_app(plane))
    assert len(endpoints) >= 30
    by_role = role_tokens(tokens)
    seen: dict[tuple[str, Role], int] = {}
    for role, token in by_role.items():
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            for key, path in sorted(endpoints.items()):
                method = key.split(" ", 1)[0]
                body: dict[str, Any] | None = {} if method in ("POST", "PUT") else None
                response = client.request(method, path, json=body)
                seen[(key, role)] = response.status_code
                allowed = allowed_roles(method, key.split(" ", 1)[1])
                problem = _problem(response)
                refused = response.status_code == 403 and problem.get("type") == NOT_PERMITTED
                if allowed is not None and role in allowed:
                    assert not refused, (key, role, response.text)
                    assert response.status_code not in (401, 500), (key, role, response.text)
                else:
                    assert refused, (key, role, response.status_code, response.text)
                    assert problem["endpoint"] == key and problem["roles"] == [role.value]
                    assert problem["required_roles"] == sorted(allowed or ())
                    assert f"this needs {' or '.join(sorted(allowed or ()))}" in problem["detail"]
    assert len(seen) == len(endpoints) * len(by_role)


def test_anonymous_is_unauthenticated_not_refused(server: Server, plane: ControlPlane) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for key, path in sorted(v1_endpoints(create_app(plane)).items()):
            method = key.split(" ", 1)[0]
            response = client.request(method, path)
            assert response.status_code == 401, (key, response.text)


def test_an_endpoint_missing_from_the_table_is_refused(plane: ControlPlane, tokens: Tokens) -> None:
    app = create_app(plane)

    @app.get("/v1/unlisted")
    async def unlisted(who: Any = Depends(caller)) -> dict[str, str]:
        return {"reached": "yes"}

    with TestClient(app) as client:
        response = client.get("/v1/unlisted", headers={"Authorization": f"Bearer {tokens.admin}"})
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["type"] == NOT_PERMITTED and problem["required_roles"] == []
    assert "ada may not GET /v1/unlisted" in problem["detail"]


def _problem(response: httpx.Response) -> dict[str, Any]:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return {}
    body: dict[str, Any] = response.json()
    return body
