"""Batches of reports: the request body, the control plane's answers, and the outbox's
batch numbering and settling (a real SQLite file in a temporary state dir)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from placet.runners.delivery import (
    MAX_BATCH,
    Answer,
    batch_body,
    batches,
    describe,
    read_answers,
)
from placet.runners.outbox import DELIVERED, PENDING, REFUSED, Outbox, QueuedReport

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def queued(lease_id: str = "lease-1", sequence: int = 1, stage: str = "execution") -> QueuedReport:
    envelope = {"payload": f"{lease_id}/{sequence}", "payloadType": "t", "signatures": []}
    return QueuedReport(lease_id, sequence, stage, "p-1", 7, envelope, PENDING)


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    made = Outbox(tmp_path / "state")
    return made


# ---- batch_body -------------------------------------------------------------------------


def test_batch_body_carries_each_report_in_order() -> None:
    reports = [queued("a", 1), queued("a", 2, "verification"), queued("b", 1)]
    body = batch_body(reports)
    assert list(body) == ["reports"]
    assert body["reports"] == [
        {
            "lease_id": r.lease_id,
            "stage": r.stage,
            "fencing_token": 7,
            "sequence": r.sequence,
            "envelope": dict(r.envelope),
        }
        for r in reports
    ]


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_batch_body_refuses_an_empty_or_oversized_batch(count: int) -> None:
    with pytest.raises(ValueError, match=f"1 to {MAX_BATCH} reports, not {count}"):
        batch_body([queued(sequence=i + 1) for i in range(count)])


def test_batch_body_takes_the_largest_batch() -> None:
    body = batch_body([queued(sequence=i + 1) for i in range(MAX_BATCH)])
    assert [r["sequence"] for r in body["reports"]] == list(range(1, MAX_BATCH + 1))


# ---- read_answers -----------------------------------------------------------------------


def test_read_answers_reads_states_and_problems_in_order() -> None:
    body = {
        "results": [
            {"state": "verifying"},
            {"problem": {"status": 409, "title": "Conflict", "detail": "stale fencing token"}},
            {"problem": {"status": 422, "title": "Invalid input"}},
            {"problem": {"status": 404}},
            {"state": None},
        ]
    }
    assert read_answers(body, 5) == [
        Answer(True, "verifying", 200, ""),
        Answer(False, None, 409, "the server said 409: stale fencing token"),
        Answer(False, None, 422, "the server said 422: Invalid input"),
        Answer(False, None, 404, "the server said 404: no detail"),
        Answer(True, None, 200, ""),
    ]


@pytest.mark.parametrize(
    ("body", "count", "words"),
    [
        ([{"state": "verifying"}], 1, "not a JSON object"),
        (None, 1, "not a JSON object"),
        ({}, 1, "no results list"),
        ({"results": {"0": {"state": "x"}}}, 1, "no results list"),
        ({"results": [{"state": "verifying"}]}, 2, "1 results for 2 reports"),
        ({"results": [{"state": "a"}, {"state": "b"}]}, 1, "2 results for 1 reports"),
        ({"results": ["verifying"]}, 1, "results[0] is not an object"),
        ({"results": [{"state": "a"}, {"state": 3}]}, 2, "results[1].state is not a string"),
        ({"results": [{"problem": "409"}]}, 1, "results[0].problem is not an object"),
        ({"results": [{"problem": {"detail": "x"}}]}, 1, "results[0].problem.status"),
        ({"results": [{"problem": {"status": "409"}}]}, 1, "results[0].problem.status"),
        ({"results": [{"problem": {"status": True}}]}, 1, "results[0].problem.status"),
    ],
)
def test_read_answers_names_what_is_malformed(body: Any, count: int, words: str) -> None:
    with pytest.raises(ValueError) as refused:
        read_answers(body, count)
    assert words in str(refused.value)


def test_an_answer_that_is_neither_a_state_nor_a_problem_is_malformed() -> None:
    """An object with neither ``state`` nor ``problem`` is not an answer of the protocol: read
    as "recorded", the runner would settle its report as delivered and never send it again."""
    for item in ({}, {"error": "bad gateway"}):
        with pytest.raises(ValueError, match=r"results\[0\]"):
            read_answers({"results": [item]}, 1)


# ---- the outbox's batches ---------------------------------------------------------------


def test_add_many_numbers_a_leases_reports_in_order_after_those_it_holds(outbox: Outbox) -> None:
    env = {"payload": "x", "payloadType": "t", "signatures": []}
    first = outbox.add_many(
        "lease-1", 7, [("execution", env), ("verification", env)], proposal_id="p-1", now=NOW
    )
    assert [(r.sequence, r.stage, r.status) for r in first] == [
        (1, "execution", PENDING),
        (2, "verification", PENDING),
    ]
    later = outbox.add_many("lease-1", 7, [("verification", env)], proposal_id="p-1", now=NOW)
    assert [r.sequence for r in later] == [3]
    other = outbox.add_many("lease-2", 8, [("execution", env)], proposal_id="p-2", now=NOW)
    assert [(r.lease_id, r.sequence) for r in other] == [("lease-2", 1)]
    stored = outbox.all("lease-1")
    assert stored == [*first, *later]
    assert [(r.lease_id, r.sequence) for r in outbox.pending()] == [
        ("lease-1", 1),
        ("lease-1", 2),
        ("lease-1", 3),
        ("lease-2", 1),
    ]


def test_settle_many_settles_each_with_its_answer_in_one_go(outbox: Outbox) -> None:
    env = {"payload": "x", "payloadType": "t", "signatures": []}
    one, two = outbox.add_many(
        "lease-1", 7, [("execution", env), ("verification", env)], proposal_id="p-1", now=NOW
    )
    (three,) = outbox.add_many("lease-2", 8, [("execution", env)], proposal_id="p-2", now=NOW)
    outbox.settle_many(
        [(one, DELIVERED, "verifying"), (three, REFUSED, "the server said 409: lost")], now=NOW
    )
    assert outbox.pending() == [two]
    settled = {(r.lease_id, r.sequence): (r.status, r.answer) for r in outbox.all("lease-1")}
    assert settled == {("lease-1", 1): (DELIVERED, "verifying"), ("lease-1", 2): (PENDING, None)}
    assert [(r.status, r.answer) for r in outbox.all("lease-2")] == [
        (REFUSED, "the server said 409: lost")
    ]
    outbox.settle_many([], now=NOW)  # nothing to settle: nothing changes
    assert outbox.pending() == [two]


def test_settle_many_refuses_an_unknown_status_and_settles_nothing(outbox: Outbox) -> None:
    env = {"payload": "x", "payloadType": "t", "signatures": []}
    one, two = outbox.add_many(
        "lease-1", 7, [("execution", env), ("verification", env)], proposal_id="p-1", now=NOW
    )
    with pytest.raises(ValueError, match="status must be"):
        outbox.settle_many([(one, DELIVERED, "verifying"), (two, PENDING, "")], now=NOW)
    assert outbox.pending() == [one, two]


def test_batches_cut_by_count_and_by_bytes_and_keep_the_order() -> None:
    big = {"payload": "x" * 3000, "payloadType": "t", "signatures": []}
    reports = [QueuedReport(f"L{i}", 1, "execution", "P", 1, big, "pending") for i in range(10)]
    assert [len(b) for b in batches(reports, most=4, budget=10**9)] == [4, 4, 2]
    by_bytes = batches(reports, most=64, budget=7000)
    assert [len(b) for b in by_bytes] == [2, 2, 2, 2, 2]
    assert [r.lease_id for b in by_bytes for r in b] == [f"L{i}" for i in range(10)]
    assert [len(b) for b in batches(reports[:2], most=64, budget=10)] == [1, 1]  # too big: alone
    assert describe(reports[:1]) == "report execution"
    assert describe(reports) == "report 10 reports"
