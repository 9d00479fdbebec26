"""The ``http`` kind: one HTTP request to a URL under the runner's ``--allow-url`` prefixes.

Parameters: ``method`` (default GET), ``url``, ``headers`` (strings), ``body`` (a string sent
as is, or any other JSON value sent as JSON), ``timeout``. A 2xx answer is success; the
answer's body is recorded like a program's stdout. Redirects are not followed (they could
leave the allow-list). Not idempotent (a POST may not be).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from placet.runners.actions.base import (
    ActionContext,
    ActionOutcome,
    ActionRefused,
    refused,
    timeout_of,
)
from placet.runners.shell import OUTPUT_CAP
from placet.runners.times import utc_now

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_TIMEOUT = 30.0


def url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether ``url`` starts with one of ``prefixes`` at a boundary (/, ?, # or the end).

    ``https://api.example.com`` admits ``https://api.example.com/v1`` but not
    ``https://api.example.com.evil.net``; the scheme and host compare case-insensitively.
    """
    for prefix in prefixes:
        if not prefix:
            continue
        head = _normal(prefix)
        text = _normal(url)
        if not text.startswith(head):
            continue
        rest = text[len(head) :]
        if head.endswith("/") or not rest or rest[0] in "/?#":
            return True
    return False


def _normal(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.lower()
    tail = url[len(parts.scheme) + 3 + len(parts.netloc) :] if "://" in url else url
    return f"{parts.scheme.lower()}://{netloc}{tail}"


def check_request(parameters: Mapping[str, Any], field: str = "") -> None:
    """Check method, url, headers and timeout of a request; ValueError names the field."""
    method = parameters.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValueError(f"{field}method must be one of {', '.join(METHODS)}")
    url = parameters.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"{field}url must be an http:// or https:// URL")
    if not urlsplit(url).hostname:
        raise ValueError(f"{field}url must name a host")
    headers = parameters.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ValueError(f"{field}headers must be an object of strings")
    try:
        timeout_of(parameters.get("timeout"), DEFAULT_TIMEOUT)
    except ValueError as exc:
        raise ValueError(f"{field}{exc}") from None


def request(
    parameters: Mapping[str, Any], context: ActionContext, *, body_allowed: bool = True
) -> ActionOutcome:
    """Send the request if its URL is allowed; the outcome is ok on a 2xx answer."""
    method = str(parameters.get("method", "GET")).upper()
    url = str(parameters.get("url", ""))
    details = {"method": method, "url": url}
    try:
        check_request(parameters)
        if not url_allowed(url, context.allow_urls):
            shown = ", ".join(context.allow_urls) or "none"
            raise ActionRefused(
                f"url {url!r} is not under the runner's URL allow-list (--allow-url; allowed:"
                f" {shown})"
            )
    except (ValueError, ActionRefused) as exc:
        return refused(str(exc), details=details)
    timeout = timeout_of(parameters.get("timeout"), DEFAULT_TIMEOUT)
    headers = dict(parameters.get("headers", {}))
    content: bytes | None = None
    body = parameters.get("body") if body_allowed else None
    if isinstance(body, str):
        content = body.encode()
    elif body is not None:
        content = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    started = utc_now()
    digest = hashlib.sha256()
    kept = bytearray()
    total = 0
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream(method, url, headers=headers, content=content) as response,
        ):
            for chunk in response.iter_bytes():
                if context.cancel.is_set():
                    return ActionOutcome(
                        ok=False,
                        started_at=started,
                        finished_at=utc_now(),
                        error="cancelled",
                        details=details,
                    )
                total += len(chunk)
                digest.update(chunk)
                room = OUTPUT_CAP - len(kept)
                if room > 0:
                    kept += chunk[:room]
            status = response.status_code
    except httpx.TimeoutException:
        return ActionOutcome(
            ok=False,
            started_at=started,
            finished_at=utc_now(),
            error=f"timed out after {timeout:g} s",
            timed_out=True,
            details=details,
        )
    except httpx.HTTPError as exc:
        return ActionOutcome(
            ok=False,
            started_at=started,
            finished_at=utc_now(),
            error=f"request failed: {type(exc).__name__}: {exc}",
            details=details,
        )
    ok = 200 <= status < 300
    return ActionOutcome(
        ok=ok,
        started_at=started,
        finished_at=utc_now(),
        error=None if ok else f"the server answered {status}",
        http_status=status,
        stdout=bytes(kept),
        stdout_sha256=digest.hexdigest(),
        stdout_bytes=total,
        details=details,
    )


class HttpAction:
    """Send one HTTP request; refused outside the runner's URL allow-list."""

    name = "http"
    idempotent = False

    def validate(self, parameters: Mapping[str, Any]) -> None:
        """Check method, url, headers and timeout (the allow-list is the runner's to check)."""
        check_request(parameters)

    def run(self, parameters: Mapping[str, Any], context: ActionContext) -> ActionOutcome:
        """Send the request; ok on a 2xx answer."""
        return request(parameters, context)
