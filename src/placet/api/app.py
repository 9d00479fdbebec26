"""The FastAPI application: routers, problem+json errors, the body limit."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

import placet
from placet.api import problems, routes_ledger, routes_proposals, routes_runners
from placet.api.limits import BodyLimit
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

    @app.get("/healthz", tags=["health"], summary="Liveness and ledger size")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": placet.__version__, "ledger_size": cp.ledger.size()}

    app.add_middleware(BodyLimit, max_bytes=cp.ctx.settings.max_body_bytes)
    return app
