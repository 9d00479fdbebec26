"""``/v1/reports``: read-only governance reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from placet.api.deps import caller, plane
from placet.domain.principals import Principal

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Caller = Annotated[Principal, Depends(caller)]


@router.get("/permissions", summary="Capability versus permission, per agent")
async def permissions(request: Request, who: Caller, agent: str | None = None) -> dict[str, Any]:
    """What each agent can do against what policy lets it do without a human."""
    return await run_in_threadpool(plane(request).reports.permissions, agent)
