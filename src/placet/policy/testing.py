"""Rego unit tests of a bundle (``placet policy test DIR``) and what-if evaluation.

Tests are rules whose names start with ``test_``, conventionally in ``*_test.rego`` files
beside the policy, usually setting the input with ``with input as {...}``. Each is
evaluated as ``data.<package>.<rule>``: true passes; false or undefined fails; an engine
error is an error, with its message.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
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


def run_tests(directory: Path, on_start: Callable[[str, str], None] | None = None) -> TestReport:
    """Compile every ``.rego`` file under ``directory`` (tests included) and run every
    ``test_`` rule; ``on_start(file, name)`` is called before each. Raises PolicyError when
    the files do not parse or compile."""
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
        if on_start is not None:
            on_start(relative, name)
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


# ---- running the tests in a child process -------------------------------------------
#
# rego-cpp aborts the whole process on a few constructs (see docs/policy.md, engine
# notes), and a test can loop for ever. ``run_tests_isolated`` runs the tests in a child
# Python process, so a crash or a hang becomes a clear error naming the test that was
# running, not a dead CLI.

STARTED = "placet-policy-test-started "


class TestRunFailed(PolicyError):
    """The test run itself broke (the engine crashed, or it timed out): not a test result
    and not a mistake in how the command was called."""

    __test__ = False


def report_as_dict(report: TestReport) -> dict[str, Any]:
    """The report as JSON-ready data (the form ``placet policy test --json`` prints)."""
    return {
        "directory": report.directory,
        "ok": report.ok,
        "counts": dict(report.counts),
        "results": [
            {
                "package": r.package,
                "test": r.name,
                "file": r.file,
                "outcome": r.outcome,
                "ms": round(r.seconds * 1000, 3),
                "message": r.message,
            }
            for r in report.results
        ],
    }


def report_from_dict(data: Mapping[str, Any]) -> TestReport:
    """The inverse of :func:`report_as_dict`."""
    results = tuple(
        TestResult(r["package"], r["test"], r["file"], r["outcome"], r["ms"] / 1000, r["message"])
        for r in data["results"]
    )
    return TestReport(data["directory"], results, dict(data["counts"]))


def run_tests_isolated(directory: Path, timeout: float = 120.0) -> TestReport:
    """:func:`run_tests` in a child process; a crash or a timeout raises PolicyError
    naming the test that was running."""
    command = [sys.executable, "-m", "placet.policy.testing", str(directory)]
    try:
        child = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise TestRunFailed(
            f"the tests in {directory} did not finish within {timeout:g} s; {_last_started(stderr)}"
        ) from None
    if child.returncode == 0 or child.returncode == 1:
        return report_from_dict(json.loads(child.stdout))
    if child.returncode == 2:  # the bundle did not load: the child printed why
        raise PolicyError(child.stderr.strip().splitlines()[-1])
    cause = f"signal {-child.returncode}" if child.returncode < 0 else f"status {child.returncode}"
    raise TestRunFailed(
        f"the Rego engine crashed ({cause}) running the tests in {directory}; "
        f"{_last_started(child.stderr)}; rego-cpp aborts on some constructs, such as "
        "`with` replacing a rule or the whole input"
    )


def _last_started(stderr: str) -> str:
    started = [line[len(STARTED) :] for line in stderr.splitlines() if line.startswith(STARTED)]
    return f"it was running {started[-1]}" if started else "no test had started"


def _main(argv: list[str]) -> int:
    """``python -m placet.policy.testing DIR``: the report as JSON on stdout; exit 0 when
    every test passed, 1 when one did not, 2 when the bundle does not load."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m placet.policy.testing DIR\n")
        return 2

    def started(file: str, name: str) -> None:
        sys.stderr.write(f"{STARTED}{file}: {name}\n")
        sys.stderr.flush()

    try:
        report = run_tests(Path(argv[0]), started)
    except PolicyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write(json.dumps(report_as_dict(report)) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
