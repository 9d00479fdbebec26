"""The domain's error hierarchy: messages are written for the user who caused them."""

from __future__ import annotations


class PlacetError(Exception):
    """Base of every error placet raises on purpose."""


class InputError(PlacetError):
    """The caller's input is wrong (HTTP 4xx, CLI exit 2); names the field and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class IllegalTransition(PlacetError):
    """An event that the lifecycle does not allow in the current state."""

    def __init__(self, state: str | None, attempt: str, detail: str = "") -> None:
        where = state if state is not None else "(no proposal)"
        message = f"cannot {attempt} a proposal in state {where}"
        if detail:
            message += f": {detail}"
        super().__init__(message)
        self.state = state
        self.attempt = attempt
        self.detail = detail


class Forbidden(PlacetError):
    """A principal tried something its kind or relation to the proposal does not permit."""

    def __init__(self, principal: str, attempt: str, reason: str) -> None:
        super().__init__(f"{principal} may not {attempt}: {reason}")
        self.principal = principal
        self.attempt = attempt
        self.reason = reason


class NotPermitted(Forbidden):
    """The permission table does not let any of the principal's roles call an endpoint."""

    def __init__(
        self, principal: str, endpoint: str, roles: tuple[str, ...], needed: tuple[str, ...]
    ) -> None:
        has = ", ".join(roles) if roles else "no role"
        wants = " or ".join(needed) if needed else "a role nobody holds (not in the table)"
        reason = f"{principal} has {has}; this needs {wants}"
        if len(needed) == 1 and needed[0] in ("agent", "runner"):
            reason += f" (only {needed[0]}s may)"
        super().__init__(principal, endpoint, reason)
        self.endpoint = endpoint
        self.roles = roles
        self.needed = needed


class NotFound(PlacetError):
    """The named thing does not exist (or the caller may not know that it does)."""

    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"no {what} {key!r}")
        self.what = what
        self.key = key


class Conflict(PlacetError):
    """The request clashes with what is already recorded (e.g. a reused idempotency key)."""


class Unauthenticated(PlacetError):
    """No credentials, or credentials that match no principal."""


class NotInitialised(PlacetError):
    """The data directory or database has not been set up with ``placet init``."""
