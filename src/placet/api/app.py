"""The FastAPI application: routers, problem+json errors, the body limit."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import placet
from placet.api import (
    problems,
    routes_graph,
    routes_ledger,
    routes_notifications,
    routes_people,
    routes_policy,
    routes_proposals,
    routes_reports,
    routes_runners,
)
from placet.api.limits import BodyLimit
from placet.api.schemas import BODIES
from placet.service.control_plane import ControlPlane


def create_app(cp: ControlPlane) -> FastAPI:
    """An app serving ``cp``; every /v1 route requires a bearer token."""
    app = FastAPI(
        title="placet",
        version=placet.__version__,
        summary="Governance control plane for AI agents",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.plane = cp
    problems.install(app)
    app.include_router(routes_proposals.router)
    app.include_router(routes_ledger.router)
    app.include_router(routes_runners.router)
    app.include_router(routes_graph.router)
    app.include_router(routes_policy.router)
    app.include_router(routes_reports.router)
    app.include_router(routes_people.router)
    app.include_router(routes_notifications.router)

    @app.get("/healthz", tags=["health"], summary="Liveness and ledger size")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": placet.__version__, "ledger_size": cp.ledger.size()}

    app.add_middleware(BodyLimit, max_bytes=cp.ctx.settings.max_body_bytes)
    app.openapi = lambda: describe(app)  # type: ignore[method-assign]
    return app


def describe(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document with body schemas, bearer auth and problem+json errors."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in BODIES:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    problem = {
        "description": "Problem details (RFC 9457)",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                operation["security"] = [{"bearer": []}]
            responses = operation.setdefault("responses", {})
            for status in ("400", "401", "403", "404", "409", "413", "422"):
                responses[status] = problem
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    app.openapi_schema = document
    return document
