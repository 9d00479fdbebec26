"""Rego unit tests of a bundle (``placet policy test DIR``) and what-if evaluation.

Tests are rules whose names start with ``test_``, conventionally in ``*_test.rego`` files
beside the policy, usually setting the input with ``with input as {...}``. Each is
evaluated as ``data.<package>.<rule>``: true passes; false or undefined fails; an engine
error is an error, with its message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placet.domain.authority import Decision
from placet.policy.bundle import PolicyBundle, read_rego_files
from placet.policy.errors import PolicyError
from placet.policy.references import code_only
from placet.policy.regocpp import Module, Session

PASS, FAIL, ERROR = "pass", "fail", "error"
_PACKAGE = re.compile(r"^[ \t]*package[ \t]+([A-Za-z_][A-Za-z0-9_.]*)", re.MULTILINE)
_TEST_HEAD = re.compile(
    r"^[ \t]*(test_[A-Za-z0-9_]*)[ \t]*(?=if\b|\{|:=|=[^=]|contains\b)", re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test rule's result: ``outcome`` is pass, fail or error; ``seconds`` it took."""

    __test__ = False  # not a pytest test class

    package: str
    name: str
    file: str
    outcome: str
    seconds: float
    message: str = ""

    @property
    def query(self) -> str:
        """The query that was evaluated, e.g. ``data.placet.test_production``."""
        return f"data.{self.package}.{self.name}"


@dataclass(frozen=True, slots=True)
class TestReport:
    """Every test's result, in file order; ``counts`` per outcome; ``ok`` when there is
    at least one test and none failed or erred."""

    __test__ = False

    directory: str
    results: tuple[TestResult, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether at least one test ran and every test passed."""
        return bool(self.results) and all(r.outcome == PASS for r in self.results)


def discover(source: str) -> tuple[str | None, list[str]]:
    """The package a Rego source declares and the ``test_`` rules it defines, in order
    (comments and string literals are ignored)."""
    code = code_only(source)
    package = _PACKAGE.search(code)
    names = list(dict.fromkeys(m.group(1) for m in _TEST_HEAD.finditer(code)))
    return (package.group(1) if package else None), names


def run_tests(directory: Path) -> TestReport:
    """Compile every ``.rego`` file under ``directory`` (tests included) and run every
    ``test_`` rule. Raises PolicyError when the files do not parse or compile."""
    path = Path(directory)
    files = read_rego_files(path, str(path), tests=True)
    modules: list[Module] = []
    tests: list[tuple[str, str, str]] = []
    for relative, data in files.items():
        where = f"{path}/{relative}"
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{where}: not UTF-8 text ({exc.reason})") from None
        modules.append(Module(name=relative, source=source, origin=where))
        package, names = discover(source)
        if package is not None:
            tests.extend((package, name, relative) for name in names)
    if not tests:
        return TestReport(str(path), (), {PASS: 0, FAIL: 0, ERROR: 0})
    entrypoints = [f"{package.replace('.', '/')}/{name}" for package, name, _ in tests]
    session = Session(modules, list(dict.fromkeys(entrypoints)), f"policy tests in {path}")
    results: list[TestResult] = []
    for (package, name, relative), entrypoint in zip(tests, entrypoints, strict=True):
        started = time.perf_counter()
        try:
            answer = session.query({}, entrypoint)
        except PolicyError as exc:
            outcome, message = ERROR, str(exc)
        else:
            if not answer.defined:
                outcome, message = FAIL, "undefined"
            elif answer.value is True:
                outcome, message = PASS, ""
            else:
                outcome, message = FAIL, f"gave {answer.value!r}, not true"
        seconds = time.perf_counter() - started
        results.append(TestResult(package, name, relative, outcome, seconds, message))
    counts = {kind: sum(r.outcome == kind for r in results) for kind in (PASS, FAIL, ERROR)}
    return TestReport(str(path), tuple(results), counts)


def decision_as_dict(decision: Decision) -> dict[str, Any]:
    """A Decision as plain JSON: the shape placet records (``expires_in`` in seconds)."""
    requirement = decision.requirement
    escalation = requirement.escalation
    window = decision.obligations.change_window
    return {
        "outcome": decision.outcome.value,
        "reasons": list(decision.reasons),
        "policy_digest": decision.policy_digest,
        "approvals": {
            "min_approvals": requirement.count,
            "from": list(requirement.from_),
            "eligible": list(requirement.eligible),
            "distinct_from": list(requirement.distinct_from),
            "owner_may_approve": requirement.owner_may_approve,
            "expires_in": requirement.expires_in,
            "escalate_to": None
            if escalation is None
            else {
                "after": escalation.after,
                "from": list(escalation.to),
                "eligible": list(escalation.eligible),
            },
            "denials": requirement.denials,
        },
        "obligations": {
            "validation": list(decision.obligations.validation),
            "change_window": None if window is None else window.as_dict(),
            "notify": list(decision.obligations.notify),
        },
    }


def eval_input(bundle: PolicyBundle, document: Mapping[str, Any]) -> dict[str, Any]:
    """What-if: the bundle's raw ``data.placet.decision`` for ``document`` and the Decision
    placet would take from it, or the error that would fail the proposal closed.

    Returns ``{"bundle", "digest", "defined", "raw", "decision", "error"}``; exactly one of
    ``decision`` and ``error`` is not None.
    """
    result: dict[str, Any] = {
        "bundle": bundle.name,
        "digest": bundle.digest,
        "defined": False,
        "raw": None,
        "decision": None,
        "error": None,
    }
    try:
        answer = bundle.query(document)
        result["defined"], result["raw"] = answer.defined, answer.value
        result["decision"] = decision_as_dict(bundle.decide(answer))
    except PolicyError as exc:
        result["error"] = str(exc)
    return result
