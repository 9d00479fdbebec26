"""Delivering queued reports in batches: the request body and the control plane's answers.

A runner sends the reports it has queued (an execution statement and, for an action without
post-conditions, its verification; or what its outbox kept through an outage) in one
``POST /v1/runners/reports``. The control plane answers each report in order, with the
proposal's new state or a problem; each (lease, sequence) is recorded once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from placet.runners.outbox import QueuedReport

REPORTS_PATH = "/v1/runners/reports"
# A runner's refusal of a genuine capsule leased to another runner (a misdirected capsule):
# queued in the outbox under this stage and sent alone, as {"envelope"}, to REFUSALS_PATH.
REFUSALS_PATH = "/v1/runners/refusals"
REFUSAL = "refusal"
# The most reports one request carries (the control plane's limit), and the most bytes of
# reports (well inside the control plane's default 1 MiB body limit; a statement with full
# output excerpts is about 13 to 25 kB).
MAX_BATCH = 64
BATCH_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    """The control plane's answer to one report: recorded (``state``) or refused."""

    recorded: bool
    state: str | None
    status: int
    problem: str


def batch_body(reports: Sequence[QueuedReport]) -> dict[str, Any]:
    """The JSON body carrying ``reports`` (at most MAX_BATCH), in order."""
    if not 0 < len(reports) <= MAX_BATCH:
        raise ValueError(f"a batch carries 1 to {MAX_BATCH} reports, not {len(reports)}")
    return {
        "reports": [
            {"lease_id": report.lease_id, "stage": report.stage, **report.body()}
            for report in reports
        ]
    }


def batches(
    reports: Sequence[QueuedReport], most: int = MAX_BATCH, budget: int = BATCH_BYTES
) -> list[list[QueuedReport]]:
    """``reports`` in order, cut into requests of at most ``most`` reports and about
    ``budget`` bytes (a report larger than the budget goes alone)."""
    cut: list[list[QueuedReport]] = []
    size = 0
    for report in reports:
        weight = len(json.dumps(report.body(), separators=(",", ":")))
        if not cut or len(cut[-1]) >= most or size + weight > budget:
            cut.append([])
            size = 0
        cut[-1].append(report)
        size += weight
    return cut


def describe(reports: Sequence[QueuedReport]) -> str:
    """What a request carries, for log lines: "report execution", "report 5 reports"."""
    if len(reports) == 1:
        return f"report {reports[0].stage}"
    if len(reports) == 2 and reports[0].lease_id == reports[1].lease_id:
        return f"report {reports[0].stage} and {reports[1].stage}"
    return f"report {len(reports)} reports"


def _answer(item: Any, index: int) -> Answer:
    if not isinstance(item, dict):
        raise ValueError(f"results[{index}] is not an object")
    problem = item.get("problem")
    if problem is None:
        if "state" not in item:
            raise ValueError(f"results[{index}] has neither a state nor a problem")
        state = item.get("state")
        if state is not None and not isinstance(state, str):
            raise ValueError(f"results[{index}].state is not a string")
        return Answer(True, state, 200, "")
    if not isinstance(problem, dict):
        raise ValueError(f"results[{index}].problem is not an object")
    status = problem.get("status")
    if isinstance(status, bool) or not isinstance(status, int):
        raise ValueError(f"results[{index}].problem.status is not an integer")
    detail = problem.get("detail") or problem.get("title") or "no detail"
    return Answer(False, None, status, f"the server said {status}: {detail}")


def read_answers(body: Any, count: int) -> list[Answer]:
    """The answers of a batch of ``count`` reports; ValueError names what is malformed."""
    if not isinstance(body, dict):
        raise ValueError("the answer is not a JSON object")
    results = body.get("results")
    if not isinstance(results, list):
        raise ValueError("the answer has no results list")
    if len(results) != count:
        raise ValueError(f"the answer has {len(results)} results for {count} reports")
    return [_answer(item, i) for i, item in enumerate(results)]
