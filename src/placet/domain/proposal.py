"""A proposal's content, its checks and its digest (RFC 8785 + SHA-256)."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import rfc8785

from placet.domain import actions
from placet.domain.canonical import canonical_json, digest_of
from placet.domain.errors import InputError

_ENVIRONMENT = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
MAX_TARGETS = 1000
MAX_INTENT = 4000
_FIELDS = {
    "kind",
    "targets",
    "parameters",
    "environment",
    "intent",
    "verify",
    "scope",
    "rollback",
}
# A rollback names what to run; its agent and environment are the original's.
_ROLLBACK_FIELDS = {"kind", "targets", "parameters", "intent", "verify", "scope", "environment"}
# Post-conditions: how long a failing check is retried, and how often.
MAX_RETRY_FOR = 600.0
DEFAULT_RETRY_FOR = 0.0
MIN_INTERVAL = 0.1
MAX_INTERVAL = 60.0
DEFAULT_INTERVAL = 2.0
MAX_HTTP_TIMEOUT = 60.0
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True, slots=True)
class ProposalContent:
    """What an agent wants done. Immutable: a change is a new proposal with a new digest."""

    agent: str
    kind: str
    targets: tuple[str, ...]
    parameters: Mapping[str, Any]
    environment: str
    intent: str
    verify: Mapping[str, Any] | None = None
    scope: tuple[str, ...] = ()
    # What to file as a new proposal if verification fails (same agent and environment).
    rollback: ProposalContent | None = None
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The content as plain JSON values; this is exactly what the digest covers."""
        body: dict[str, Any] = {
            "agent": self.agent,
            "kind": self.kind,
            "targets": list(self.targets),
            "parameters": copy.deepcopy(dict(self.parameters)),
            "environment": self.environment,
            "intent": self.intent,
            "scope": list(self.scope),
        }
        if self.verify is not None:
            body["verify"] = copy.deepcopy(dict(self.verify))
        if self.rollback is not None:  # absent, not null: older digests stay as they were
            body["rollback"] = self.rollback.rollback_dict()
        return body

    def rollback_dict(self) -> dict[str, Any]:
        """This content as a declared rollback: without agent and environment (the original's)."""
        body = self.as_dict()
        del body["agent"], body["environment"]
        body.pop("rollback", None)
        return body

    def rollback_body(self) -> dict[str, Any] | None:
        """The declared rollback as a full proposal body (the original's environment), or None."""
        if self.rollback is None:
            return None
        return {**self.rollback.rollback_dict(), "environment": self.environment}

    @property
    def digest(self) -> str:
        """SHA-256 (lowercase hex) of the RFC 8785 canonical JSON of :meth:`as_dict`."""
        if self._digest is None:  # computed once: the content never changes
            object.__setattr__(self, "_digest", digest_of(self.as_dict()))
        assert self._digest is not None
        return self._digest


def _string_list(value: Any, field: str, *, required: bool) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, list):
        raise InputError(field, "must be a list of strings")
    if required and not value:
        raise InputError(field, "must name at least one target")
    if len(value) > MAX_TARGETS:
        raise InputError(field, f"must have at most {MAX_TARGETS} items")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise InputError(f"{field}[{i}]", "must be a non-empty string")
    return tuple(value)


def _plain_json(value: dict[str, Any], field: str) -> dict[str, Any]:
    """A private deep copy of ``value``, which must be representable as RFC 8785 JSON."""
    try:
        canonical_json(value)
    except rfc8785.CanonicalizationError as exc:
        raise InputError(field, f"must hold only JSON values: {exc}") from None
    return copy.deepcopy(value)


def _number(value: Any, field: str, low: float, high: float, *, low_open: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(field, "must be a number of seconds")
    if (value <= low if low_open else value < low) or value > high:
        bound = "more than" if low_open else "at least"
        raise InputError(field, f"must be {bound} {low:g} and at most {high:g} seconds")


def _check_http(value: Any) -> None:
    """An HTTP post-condition: it passes on a 2xx answer within ``timeout``."""
    if not isinstance(value, dict):
        raise InputError("verify.http", "must be an object with url, method, headers, timeout")
    unknown = set(value) - {"url", "method", "headers", "timeout"}
    if unknown:
        raise InputError("verify.http", f"unknown field {sorted(unknown)[0]!r}")
    url = value.get("url")
    if not isinstance(url, str) or not url:
        raise InputError("verify.http.url", "is required: an http:// or https:// URL")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InputError("verify.http.url", f"is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("verify.http.url", "must be an http:// or https:// URL with a host")
    if any(c.isspace() for c in url):
        raise InputError("verify.http.url", "must not contain whitespace")
    method = value.get("method", "GET")
    if method not in HTTP_METHODS:
        raise InputError("verify.http.method", f"must be one of {', '.join(HTTP_METHODS)}")
    headers = value.get("headers", {})
    if not isinstance(headers, dict):
        raise InputError("verify.http.headers", "must be an object of strings")
    for name, text in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InputError("verify.http.headers", f"{name!r} is not a header name")
        if not isinstance(text, str) or "\r" in text or "\n" in text:
            raise InputError(f"verify.http.headers.{name}", "must be a one-line string")
    if "timeout" in value:
        _number(value["timeout"], "verify.http.timeout", 0, MAX_HTTP_TIMEOUT, low_open=True)


def _check_verify(value: Any) -> Mapping[str, Any] | None:
    """A post-condition: exactly one of ``argv`` (must exit 0) or ``http`` (must answer 2xx),
    retried for ``retry_for`` seconds every ``interval`` seconds. Stored as given (the runner
    applies the defaults), so the digest of an existing proposal never changes."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError("verify", "must be an object with argv or http")
    unknown = set(value) - {"argv", "timeout", "cwd", "http", "retry_for", "interval"}
    if unknown:
        raise InputError("verify", f"unknown field {sorted(unknown)[0]!r}")
    if "http" in value:
        if "argv" in value:
            raise InputError("verify", "give either argv or http, not both")
        for name in ("timeout", "cwd"):
            if name in value:
                raise InputError(f"verify.{name}", "belongs to an argv check (use verify.http)")
        _check_http(value["http"])
    else:
        if "argv" not in value:
            raise InputError("verify.argv", "is required (or give verify.http instead)")
        actions.check_argv(value.get("argv"), "verify.argv")
        actions.check_timeout(value.get("timeout"), "verify.timeout")
        actions.check_cwd(value.get("cwd"), "verify.cwd")
    if "retry_for" in value:
        _number(value["retry_for"], "verify.retry_for", 0, MAX_RETRY_FOR, low_open=False)
    if "interval" in value:
        _number(value["interval"], "verify.interval", MIN_INTERVAL, MAX_INTERVAL, low_open=False)
    return _plain_json(value, "verify")


def _check_rollback(value: Any, agent: str, environment: str) -> ProposalContent | None:
    """A declared rollback, checked like a proposal by the same agent in the same
    environment; errors name ``rollback.<field>``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError("rollback", "must be an object: kind, targets, parameters, intent")
    unknown = set(value) - _ROLLBACK_FIELDS
    if "rollback" in unknown:
        raise InputError("rollback.rollback", "a rollback cannot declare a rollback of its own")
    if unknown:
        raise InputError(f"rollback.{sorted(unknown)[0]}", "is not a rollback field")
    given = value.get("environment", environment)
    if given != environment:
        raise InputError(
            "rollback.environment", f"must be the proposal's environment ({environment})"
        )
    try:
        return _parse(value, agent, environment)
    except InputError as exc:
        raise InputError(f"rollback.{exc.field}", exc.problem) from None


def parse_proposal(body: Any, agent: str) -> ProposalContent:
    """Check a proposal body from an agent; raise InputError naming the first bad field."""
    if not isinstance(body, dict):
        raise InputError("body", "must be a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise InputError(sorted(unknown)[0], "is not a proposal field")
    content = _parse(body, agent, body.get("environment"))
    rollback = _check_rollback(body.get("rollback"), agent, content.environment)
    return content if rollback is None else replace(content, rollback=rollback)


def _parse(body: dict[str, Any], agent: str, environment: Any) -> ProposalContent:
    """The fields a proposal and a declared rollback share, checked in order."""
    kind = body.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InputError("kind", "is required and must be a string")
    action = actions.get(kind)
    if "targets" not in body:
        raise InputError("targets", "is required")
    targets = _string_list(body.get("targets"), "targets", required=True)
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InputError("parameters", "must be an object")
    action.check(parameters)
    parameters = _plain_json(parameters, "parameters")
    if not isinstance(environment, str) or not _ENVIRONMENT.fullmatch(environment):
        raise InputError(
            "environment",
            "is required: lowercase letters, digits, '-', '_' or '.' (e.g. production)",
        )
    intent = body.get("intent")
    if not isinstance(intent, str) or not intent.strip():
        raise InputError("intent", "is required: say in words why the agent wants this")
    if len(intent) > MAX_INTENT:
        raise InputError("intent", f"must be at most {MAX_INTENT} characters")
    verify = _check_verify(body.get("verify"))
    scope = _string_list(body.get("scope"), "scope", required=False)
    return ProposalContent(
        agent=agent,
        kind=kind,
        targets=targets,
        parameters=parameters,
        environment=environment,
        intent=intent,
        verify=verify,
        scope=scope,
    )
