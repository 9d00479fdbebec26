"""Evaluate a compiled bundle and turn its answer into a :class:`Decision`, failing closed.

The query entry point is ``data.placet.decision``; it must be an object
``{"outcome", "reasons", "approvals": {"count", "any_of"}}``. Anything else (an engine
error, an undefined decision, a wrong type, an unknown outcome, an approval requirement
nobody can meet) raises :class:`PolicyError`, and the caller ends the proposal ``failed``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from placet.domain.lifecycle import Decision, Outcome, Requirement
from placet.policy.errors import PolicyError
from placet.policy.references import Paths, Pruner, input_paths
from placet.policy.regocpp import Answer, Module, Session

DECISION_RULE = "data.placet.decision"
ENTRYPOINT = "placet/decision"
DECISION_FIELDS = ("outcome", "reasons", "approvals")
APPROVAL_FIELDS = ("count", "any_of")


class Engine:
    """The compiled sessions of one bundle: one per thread evaluating at the same moment.

    rego-cpp keeps the input on the interpreter, so a session serves one evaluation at a
    time. The first session is compiled when the bundle loads; a thread that finds every
    session busy compiles another from the same sources (milliseconds, once), and sessions
    are reused afterwards, so steady-state evaluation never compiles. Only the parts of
    the input the sources mention are handed over (see :mod:`placet.policy.references`).
    """

    def __init__(self, modules: Sequence[Module], label: str) -> None:
        self._modules = tuple(modules)
        self.label = label
        self._prune = Pruner(input_paths(m.source for m in self._modules))
        self._lock = threading.Lock()
        self._idle: list[Session] = [Session(self._modules, ENTRYPOINT, label)]
        self._compiled = 1

    @property
    def sessions(self) -> int:
        """How many sessions have been compiled (the most threads seen evaluating at once)."""
        return self._compiled

    @property
    def input_paths(self) -> Paths | None:
        """The input subtrees the bundle can read; None when it may read all of the input."""
        return self._prune.paths

    @property
    def sources(self) -> tuple[str, ...]:
        """The Rego sources this engine compiled."""
        return tuple(m.source for m in self._modules)

    def prune(self, document: Mapping[str, Any]) -> Mapping[str, Any]:
        """The part of ``document`` the bundle can read."""
        return self._prune(document)

    def query(self, document: Mapping[str, Any]) -> Answer:
        """Evaluate ``data.placet.decision`` for ``document`` on a free session."""
        return self.query_pruned(self._prune(document))

    def query_pruned(self, pruned: Mapping[str, Any]) -> Answer:
        """Evaluate for a document already cut down by :meth:`prune`."""
        with self._lock:
            session = self._idle.pop() if self._idle else None
            if session is None:
                self._compiled += 1
        if session is None:
            session = Session(self._modules, ENTRYPOINT, self.label)
        try:
            return session.query(pruned)
        finally:
            with self._lock:
                self._idle.append(session)


def _kind(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _strings(value: Any, field: str, label: str, *, non_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise PolicyError(f"{label}: {field} must be an array of strings, not {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise PolicyError(f"{label}: {field}[{index}] must be a non-empty string")
    if non_empty and not value:
        raise PolicyError(f"{label}: {field} must give at least one reason")
    return tuple(dict.fromkeys(value))


def _requirement(value: Any, label: str, *, required: bool) -> Requirement:
    field = f"{DECISION_RULE}.approvals"
    if value is None and not required:
        return Requirement(count=0)
    if not isinstance(value, dict):
        raise PolicyError(
            f"{label}: {field} must be an object {{count, any_of}}, not {_kind(value)}"
        )
    unknown = sorted(str(key) for key in value if key not in APPROVAL_FIELDS)
    if unknown:
        raise PolicyError(f"{label}: {field} has an unknown field {unknown[0]!r}")
    count = value.get("count")
    if isinstance(count, bool) or not isinstance(count, int):
        raise PolicyError(f"{label}: {field}.count must be an integer, not {_kind(count)}")
    any_of = _strings(value.get("any_of", []), f"{field}.any_of", label, non_empty=False)
    if not required:
        if count < 0:
            raise PolicyError(f"{label}: {field}.count must not be negative")
        return Requirement(count=0)
    if count < 1:
        raise PolicyError(
            f"{label}: require_approval needs {field}.count of at least 1, not {count}"
        )
    return Requirement(count=count, any_of=any_of)


def decision_from(answer: Answer, digest: str, label: str) -> Decision:
    """Check the value of ``data.placet.decision`` and build the Decision it stands for."""
    if not answer.defined:
        raise PolicyError(
            f"{label}: {DECISION_RULE} is undefined for this input; "
            "a bundle must give a decision for every proposal"
        )
    value = answer.value
    if not isinstance(value, dict):
        raise PolicyError(f"{label}: {DECISION_RULE} must be an object, not {_kind(value)}")
    unknown = sorted(str(key) for key in value if key not in DECISION_FIELDS)
    if unknown:
        raise PolicyError(
            f"{label}: {DECISION_RULE} has an unknown field {unknown[0]!r} "
            f"(expected {', '.join(DECISION_FIELDS)})"
        )
    raw_outcome = value.get("outcome")
    known = ", ".join(o.value for o in Outcome)
    if not isinstance(raw_outcome, str):
        raise PolicyError(
            f"{label}: {DECISION_RULE}.outcome must be one of {known}, not {_kind(raw_outcome)}"
        )
    try:
        outcome = Outcome(raw_outcome)
    except ValueError:
        raise PolicyError(
            f"{label}: {DECISION_RULE}.outcome {raw_outcome!r} is not one of {known}"
        ) from None
    reasons = _strings(value.get("reasons"), f"{DECISION_RULE}.reasons", label, non_empty=True)
    requirement = _requirement(
        value.get("approvals"), label, required=outcome is Outcome.REQUIRE_APPROVAL
    )
    return Decision(outcome=outcome, reasons=reasons, requirement=requirement, policy_digest=digest)
