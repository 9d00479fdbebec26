"""Delivery over the wire: an HTTP POST (webhook, Slack) or an email over SMTP.

Each sender raises DeliveryError with a short reason; the service records it and retries.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx

from placet.domain.errors import PlacetError

HTTP_TIMEOUT = 5.0
SMTP_TIMEOUT = 10.0
USER_AGENT = "placet-notifications/1"
_ERROR_BODY = 200  # characters of a refusing receiver's body kept in the error


class DeliveryError(PlacetError):
    """A notification could not be delivered this time (the reason is recorded)."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to send email; the password is never shown in reprs or errors."""

    host: str | None
    port: int = 25
    sender: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = SMTP_TIMEOUT


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float = HTTP_TIMEOUT,
    client: httpx.Client | None = None,
) -> int:
    """POST JSON ``body`` to ``url``; return the status, or DeliveryError unless it is 2xx.

    Redirects are not followed: a 3xx is a failure, so a receiver cannot bounce the
    signed body elsewhere.
    """
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        if client is None:
            with httpx.Client(timeout=timeout, follow_redirects=False) as own:
                response = own.post(url, content=body, headers=all_headers)
        else:
            response = client.post(url, content=body, headers=all_headers, timeout=timeout)
    except httpx.TimeoutException:
        raise DeliveryError(f"POST {url}: no answer within {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"POST {url}: {type(exc).__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        text = " ".join(response.text.split())[:_ERROR_BODY]
        raise DeliveryError(f"POST {url}: HTTP {response.status_code} {text}".rstrip())
    return response.status_code


def send_email(smtp: SmtpSettings, message: EmailMessage) -> list[str]:
    """Send ``message`` through the SMTP server (STARTTLS and login when configured).

    Returns the recipients the server refused while accepting others (not retried, so
    the accepted ones are not mailed twice); DeliveryError when nothing was accepted.
    """
    if not smtp.host:
        raise DeliveryError("email: no SMTP server configured (set PLACET_SMTP_HOST)")
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as server:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.user:
                server.login(smtp.user, smtp.password or "")
            refused = server.send_message(message)
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"email via {smtp.host}:{smtp.port}: {exc}") from None
    except OSError as exc:
        raise DeliveryError(f"email via {smtp.host}:{smtp.port}: {exc}") from None
    return sorted(refused)
