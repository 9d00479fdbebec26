"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from placet.domain.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InputError,
    NotFound,
    NotPermitted,
    PlacetError,
    Unauthenticated,
)

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("placet.api")


def problem_body(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 members of a problem; ``type`` names the problem by its title."""
    slug = title.lower().replace(" ", "-")
    return {
        "type": f"https://placet.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = problem_body(status, title, detail, **extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_of(exc: PlacetError) -> dict[str, Any]:
    """The problem members for a domain or service error (its status among them)."""
    if isinstance(exc, InputError) and type(exc).__name__ == "MalformedBody":
        return problem_body(400, "Malformed body", str(exc), field=exc.field)
    if isinstance(exc, InputError):
        return problem_body(422, "Invalid input", str(exc), field=exc.field)
    if isinstance(exc, Unauthenticated):
        return problem_body(401, "Unauthenticated", str(exc))
    if isinstance(exc, NotPermitted):
        return problem_body(
            403,
            "Not permitted",
            str(exc),
            principal=exc.principal,
            endpoint=exc.endpoint,
            roles=list(exc.roles),
            required_roles=list(exc.needed),
        )
    if isinstance(exc, Forbidden):
        return problem_body(403, "Forbidden", str(exc))
    if isinstance(exc, NotFound):
        return problem_body(404, "Not found", str(exc))
    if isinstance(exc, IllegalTransition):
        return problem_body(
            409, "Illegal transition", str(exc), state=exc.state, attempt=exc.attempt
        )
    if isinstance(exc, Conflict):
        return problem_body(409, "Conflict", str(exc))
    log.error("request failed: %s", exc)
    return problem_body(500, "Internal error", str(exc))


def from_error(exc: PlacetError) -> JSONResponse:
    """Map a domain or service error to its status and problem+json response."""
    body = problem_of(exc)
    status = int(body["status"])
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(PlacetError)
    async def _placet(_: Request, exc: PlacetError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ["request"], "msg": "invalid"}
        field = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path"))
        return problem(
            422, "Invalid input", f"{field or 'request'}: {first['msg']}", field=field or "request"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}
        response = problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))
        response.headers.update(exc.headers or {})  # e.g. Allow on 405
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(
            500,
            "Internal error",
            f"{type(exc).__name__}: the control plane failed; nothing was changed",
        )
