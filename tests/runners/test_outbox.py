"""The runner's outbox: reports queued durably, numbered per lease, kept across restarts."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from placet.runners.outbox import DELIVERED, PENDING, REFUSED, Outbox, OutboxError

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
ENVELOPE = {"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []}


def test_reports_survive_a_restart_in_order_with_their_sequence(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "state")
    first = box.add("L1", 7, "execution", ENVELOPE, proposal_id="P1", now=NOW)
    other = box.add(
        "L2", 8, "execution", {**ENVELOPE, "payload": "e30K"}, proposal_id="P2", now=NOW
    )
    second = box.add("L1", 7, "verification", ENVELOPE, proposal_id="P1", now=NOW)
    assert (first.sequence, second.sequence, other.sequence) == (1, 2, 1)
    box.close()  # the runner stops (or crashes) before anything was delivered

    again = Outbox(tmp_path / "state")
    pending = again.pending()
    assert [(r.lease_id, r.sequence, r.stage) for r in pending] == [
        ("L1", 1, "execution"),
        ("L1", 2, "verification"),
        ("L2", 1, "execution"),
    ]
    assert pending[0].envelope == ENVELOPE and pending[0].status == PENDING
    assert pending[0].body() == {"fencing_token": 7, "sequence": 1, "envelope": ENVELOPE}
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700

    again.settle(pending[0], DELIVERED, "verifying", now=NOW)
    again.settle(pending[2], REFUSED, "the server said 409: lease L2 is lost", now=NOW)
    assert [(r.lease_id, r.sequence) for r in again.pending()] == [("L1", 2)]
    assert [(r.lease_id, r.sequence) for r in again.pending("L2")] == []
    # a refused report is not sent again, but its signed statement is kept on the host
    (refused,) = again.all("L2")
    assert refused.status == REFUSED and refused.answer == "the server said 409: lease L2 is lost"
    # numbering continues after a restart, even once earlier reports are delivered
    third = again.add("L1", 7, "verification", ENVELOPE, proposal_id="P1", now=NOW)
    assert third.sequence == 3
    again.close()


def test_settled_reports_are_forgotten_after_their_keep_time(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    delivered = box.add("L1", 1, "execution", ENVELOPE, proposal_id="P1", now=NOW)
    refused = box.add("L2", 2, "execution", ENVELOPE, proposal_id="P2", now=NOW)
    box.settle(delivered, DELIVERED, "verifying", now=NOW)
    box.settle(refused, REFUSED, "lost", now=NOW)
    box.add("L3", 3, "execution", ENVELOPE, proposal_id="P3", now=NOW + timedelta(days=2))
    assert box.all("L1") == [] and len(box.all("L2")) == 1  # delivered: a day; refused: a week
    box.add("L4", 4, "execution", ENVELOPE, proposal_id="P4", now=NOW + timedelta(days=8))
    assert box.all("L2") == []
    assert [r.lease_id for r in box.pending()] == ["L3", "L4"]
    with pytest.raises(ValueError, match="status must be"):
        box.settle(box.pending()[0], PENDING, "", now=NOW)
    box.close()


def test_an_outbox_that_cannot_be_opened_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutboxError, match="cannot open the outbox"):
        Outbox(blocker)
