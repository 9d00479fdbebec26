"""A proposal's content, its checks and its digest (RFC 8785 + SHA-256)."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from placet.domain import actions
from placet.domain.canonical import canonical_json, digest_of
from placet.domain.errors import InputError

_ENVIRONMENT = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
MAX_TARGETS = 1000
MAX_INTENT = 4000
_FIELDS = {"kind", "targets", "parameters", "environment", "intent", "verify", "scope"}


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
        return body

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


def _check_verify(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError("verify", "must be an object with argv and an optional timeout")
    unknown = set(value) - {"argv", "timeout", "cwd"}
    if unknown:
        raise InputError("verify", f"unknown field {sorted(unknown)[0]!r}")
    actions.check_argv(value.get("argv"), "verify.argv")
    actions.check_timeout(value.get("timeout"), "verify.timeout")
    actions.check_cwd(value.get("cwd"), "verify.cwd")
    return _plain_json(value, "verify")


def parse_proposal(body: Any, agent: str) -> ProposalContent:
    """Check a proposal body from an agent; raise InputError naming the first bad field."""
    if not isinstance(body, dict):
        raise InputError("body", "must be a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise InputError(sorted(unknown)[0], "is not a proposal field")
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
    environment = body.get("environment")
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
