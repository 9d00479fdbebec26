"""``/v1/notifications``: the outbox (list, retry) and the channels it delivers to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from placet.api.deps import caller, json_body, plane
from placet.api.schemas import ChannelBody, body
from placet.domain.errors import InputError
from placet.domain.principals import Principal

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])
Caller = Annotated[Principal, Depends(caller)]


@router.get("", summary="Notifications, newest first (failures included)")
async def list_notifications(
    request: Request,
    who: Caller,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """``status`` is pending, sent or failed; each item has its attempts and last error."""
    items = await run_in_threadpool(plane(request).notifications.list, status, limit)
    return {"items": items}


@router.get("/channels", summary="Notification channels (never their secrets)")
async def list_channels(request: Request, who: Caller) -> dict[str, Any]:
    return {"items": await run_in_threadpool(plane(request).notifications.channels)}


@router.post(
    "/channels",
    status_code=201,
    summary="Add a channel (returns its secret once)",
    openapi_extra=body(ChannelBody),
)
async def add_channel(request: Request, who: Caller) -> dict[str, Any]:
    """JSON ``{name, kind: webhook|slack|email, config: {url} | {to: [...]}, events?: [...]}``.

    For webhook and Slack channels the answer carries ``secret``: the HMAC key receivers
    verify ``Placet-Signature`` with. It is shown once and never stored.
    """
    body = await json_body(request)
    config = body.get("config")
    if config is not None and not isinstance(config, dict):
        raise InputError("config", "must be an object")
    events = body.get("events")
    if events is not None and not isinstance(events, list):
        raise InputError("events", "must be a list of event names")
    return await run_in_threadpool(
        plane(request).notifications.add_channel,
        body.get("name"),
        body.get("kind"),
        config,
        events,
        who.name,
    )


@router.delete("/channels/{name}", summary="Remove a channel (its pending notifications fail)")
async def remove_channel(request: Request, name: str, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).notifications.remove_channel, name)


@router.post(
    "/channels/{name}/test", status_code=202, summary="Queue a test notification to a channel"
)
async def test_channel(request: Request, name: str, who: Caller) -> dict[str, Any]:
    return await run_in_threadpool(plane(request).notifications.send_test, name)


@router.post("/{id}/retry", summary="Queue a failed notification again")
async def retry(request: Request, id: str, who: Caller) -> dict[str, Any]:
    """Only a failed notification: it becomes pending, due now, with a fresh schedule."""
    return await run_in_threadpool(plane(request).notifications.retry, id)
