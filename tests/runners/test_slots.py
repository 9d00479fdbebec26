"""A runner with several slots against a real ``placet serve`` subprocess: it leases as many
capsules as it has free slots in one request and runs them at the same time.

Concurrency is proven by actions that wait for each other (each marks itself ready and
waits, bounded, until all are), so run one after another they would fail.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from placet.domain.errors import InputError
from placet.runners.delivery import MAX_BATCH
from placet.runners.outbox import REFUSED
from placet.runners.process import Runner
from placet.runners.times import utc_now
from placet.store.tables import leases
from tests.cli.test_bad_input import one_line_error
from tests.conftest import SERVER_ENV, cli
from tests.runners.helpers import Fifo, python
from tests.runners.test_process import (
    Served,
    make_runner,
    propose,
    serve,
    shell,
    state_of,
    verified,
    wait_terminal,
)

SLOTS = 4
# Each action marks itself ready, then waits until every one is (at most this long).
RENDEZVOUS = """
import pathlib, sys, time
pathlib.Path(sys.argv[1]).touch()
deadline = time.monotonic() + float(sys.argv[2])
while not all(pathlib.Path(name).exists() for name in sys.argv[3:]):
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.01)
"""
RENDEZVOUS_SECONDS = 20
# Writes a line to a FIFO (started), then waits (bounded) for a line on another (release).
HOLD = """
import os, select, sys
with open(sys.argv[1], "w") as started:
    started.write("started\\n")
fd = os.open(sys.argv[2], os.O_RDONLY | os.O_NONBLOCK)
ready, _, _ = select.select([fd], [], [], 20)
sys.exit(0 if ready else 3)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("slots") / "data", SERVER_ENV)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def runner(served: Served, tmp_path: Path, workdir: Path) -> Iterator[Runner]:
    """A runner with SLOTS slots that does not wait on the server when there is no work."""
    with make_runner(served, tmp_path, slots=SLOTS, lease_wait=0) as made:
        yield made


def lease_of(served: Served, proposal_id: str) -> Any:
    with served.plane.ctx.read() as conn:
        return conn.execute(select(leases).where(leases.c.proposal_id == proposal_id)).one()


def test_run_batch_leases_and_runs_a_slot_full_at_the_same_time(
    served: Served, runner: Runner, workdir: Path
) -> None:
    ready = [str(workdir / f"ready-{i}") for i in range(SLOTS)]
    made = [
        propose(served, shell(python(RENDEZVOUS, ready[i], str(RENDEZVOUS_SECONDS), *ready)))["id"]
        for i in range(SLOTS)
    ]
    assert runner.run_batch() == SLOTS  # one lease request took all four

    for proposal_id in made:
        assert state_of(served, proposal_id)["state"] == "succeeded"
        report = verified(served, proposal_id)
        assert report.final_state == "succeeded"
        assert report.stages[-4:] == ("capsule", "execution", "verification", "closure")
    tokens = [lease_of(served, p).fencing_token for p in made]
    assert len(set(tokens)) == SLOTS
    assert runner.run_batch() == 0  # idle


def test_run_batch_takes_only_what_there_is(served: Served, runner: Runner) -> None:
    made = [propose(served, shell(["true"]))["id"] for _ in range(2)]
    assert runner.run_batch() == 2
    assert [state_of(served, p)["state"] for p in made] == ["succeeded", "succeeded"]
    assert runner.run_once() is False


def test_flush_outbox_leaves_a_lease_a_slot_is_working_on_alone(
    served: Served, runner: Runner, workdir: Path
) -> None:
    started, release = Fifo(workdir / "started"), Fifo(workdir / "release")
    try:
        held = propose(served, shell(python(HOLD, str(started.path), str(release.path))))["id"]
        with ThreadPoolExecutor(1) as pool:
            batch = pool.submit(runner.run_batch)
            assert started.wait_line() == "started"  # a slot is running the held action
            lease = lease_of(served, held)
            envelope = {"payload": "eA==", "payloadType": "t", "signatures": []}
            mine = runner.outbox.add(
                lease.id, lease.fencing_token, "execution", envelope, proposal_id=held,
                now=utc_now(),
            )  # fmt: skip
            other = runner.outbox.add(
                "no-such-lease", 1, "execution", envelope, proposal_id="p", now=utc_now()
            )

            assert runner.flush_outbox() == 1  # only the report of no lease a slot holds
            assert runner.outbox.pending(lease.id) == [mine]
            (refused,) = runner.outbox.all(other.lease_id)
            assert refused.status == REFUSED and "404" in str(refused.answer)

            release.send("go")
            assert batch.result(timeout=60) == 1
    finally:
        started.close()
        release.close()
    assert state_of(served, held)["state"] == "succeeded"
    # the slot numbered its own reports after the one already queued for its lease
    sent = [(r.sequence, r.stage, r.status) for r in runner.outbox.all(lease.id)]
    assert sent == [(1, "execution", "pending"), (2, "execution", "delivered"),
                    (3, "verification", "delivered")]  # fmt: skip


def rendezvous(served: Served, workdir: Path, count: int) -> list[str]:
    """``count`` proposals whose actions succeed only if all ``count`` run at the same time."""
    ready = [str(workdir / f"ready-{i}") for i in range(count)]
    argv = [python(RENDEZVOUS, ready[i], str(RENDEZVOUS_SECONDS), *ready) for i in range(count)]
    return [propose(served, shell(one))["id"] for one in argv]


def test_run_forever_keeps_every_slot_busy(served: Served, runner: Runner, workdir: Path) -> None:
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        loop = pool.submit(runner.run_forever, stop)
        try:
            # proposed one by one while the loop polls: later ones go to the free slots
            made = rendezvous(served, workdir, SLOTS)
            states = [wait_terminal(served, p)["state"] for p in made]
        finally:
            stop.set()
        loop.result(timeout=60)
    assert states == ["succeeded"] * SLOTS


def test_the_runner_command_runs_slots_at_once(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    made = rendezvous(served, workdir, 2)
    result = cli(
        "runner",
        "--server",
        served.server.url,
        "--token",
        served.tokens.runner,
        "--key-file",
        str(tmp_path / "state" / "runner.key"),
        "--workdir",
        str(workdir),
        "--lease-wait",
        "0",
        "--slots",
        "2",
        "--once",
    )
    assert result.returncode == 0, result.stderr
    assert [state_of(served, p)["state"] for p in made] == ["succeeded", "succeeded"]


@pytest.mark.parametrize("slots", [0, 33, True])
def test_a_runner_refuses_a_bad_number_of_slots(
    served: Served, tmp_path: Path, workdir: Path, slots: Any
) -> None:
    with pytest.raises(InputError) as refused:
        make_runner(served, tmp_path, slots=slots)
    assert refused.value.field == "slots"


@pytest.mark.parametrize("slots", ["0", "33"])
def test_the_runner_command_refuses_a_bad_slots_in_one_line(slots: str) -> None:
    result = cli("runner", "--server", "http://127.0.0.1:9", "--token", "t", "--slots", slots)
    one_line_error(result, 2, "--slots")


def test_flush_outbox_delivers_a_backlog_larger_than_one_request_body(
    served: Served, runner: Runner
) -> None:
    """After an outage the outbox holds a full batch of reports, each well inside the server's
    request body limit (1 MiB), together over it: each is still answered (here: refused, its
    lease unknown), none is stuck, and the runner goes on polling."""
    excerpt = "QUJD" * 5000  # 20 kB of base64: an execution statement with full output excerpts
    envelope = {
        "payload": excerpt,
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"keyid": "k", "sig": "s"}],
    }
    for i in range(MAX_BATCH):
        runner.outbox.add(f"gone-{i}", 1, "execution", envelope, proposal_id="p", now=utc_now())
    assert runner.flush_outbox() == MAX_BATCH
    assert runner.outbox.pending() == []


def test_a_runner_with_a_busy_slot_and_no_more_work_still_paces_its_polls(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    """One slot runs a held action, the other is free and there is no more work: the loop
    asks for work about once per poll interval, not as fast as the server answers 204."""
    polls: list[str] = []
    many = threading.Event()

    def count(request: httpx.Request) -> None:
        if request.url.path == "/v1/runners/lease":
            polls.append(request.url.path)
            if len(polls) >= 50:
                many.set()

    started, release = Fifo(workdir / "started"), Fifo(workdir / "release")
    stop = threading.Event()
    try:
        with (
            make_runner(served, tmp_path, slots=2, lease_wait=0, poll_interval=1.0) as runner,
            ThreadPoolExecutor(1) as pool,
        ):
            runner._client.event_hooks = {"request": [count]}  # observe the requests it sends
            held = propose(served, shell(python(HOLD, str(started.path), str(release.path))))
            loop = pool.submit(runner.run_forever, stop)
            try:
                assert started.wait_line() == "started"
                polls.clear()
                many.clear()
                # about two polls in 2 s; a loop that does not pace itself makes 50 at once
                assert not many.wait(2.0), f"{len(polls)} lease requests in under 2 s"
            finally:
                release.send("go")
                stop.set()
                loop.result(timeout=60)
            assert wait_terminal(served, held["id"])["state"] == "succeeded"
    finally:
        started.close()
        release.close()
