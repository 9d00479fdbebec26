"""Tampered, replayed and misdirected capsules are refused and the refusals are in the ledger;
labels decide which runner gets a capsule; an admin-registered key cannot be replaced.

In-process ``Runner`` objects against a real ``placet serve`` subprocess (see test_process).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from placet.domain.signing import SigningKey
from placet.runners.capsule import capsule_digest
from placet.runners.process import Runner
from placet.runners.protocol import Lease, RunnerError
from placet.store.tables import principals
from tests.conftest import SERVER_ENV

from .helpers import Fifo, python
from .test_process import (
    WAIT_FOR_GO,
    Served,
    ledger,
    make_runner,
    propose,
    serve,
    shell,
    state_of,
    touch,
    wait_terminal,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("refusals") / "data", SERVER_ENV)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def tampered(lease: Lease) -> Lease:
    """The lease with its capsule's argv changed after signing (the signature is kept)."""
    envelope = dict(lease.capsule)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["proposal"]["parameters"]["argv"] = ["echo", "pwned"]
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return replace(lease, capsule=envelope)


def refusal_in_ledger(served: Served, proposal_id: str) -> dict[str, Any]:
    """The recorded execution statement's predicate (the refusal) of a failed proposal."""
    predicate: dict[str, Any] = ledger(served, proposal_id)["execution"]["statement"].predicate
    assert (predicate["ok"], predicate["argv"], predicate["exit_code"]) == (False, [], None)
    return predicate


def test_a_tampered_capsule_is_refused_and_the_refusal_is_recorded(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    proposal = propose(served, shell(touch(workdir / "ran")))
    with make_runner(served, tmp_path) as runner:
        runner.register()
        lease = runner.lease()
        assert lease is not None
        forged = tampered(lease)
        runner._work(forged)
    assert not (workdir / "ran").exists()
    final = state_of(served, proposal["id"])
    assert final["state"] == "failed"
    assert "capsule refused: the signature does not verify" in final["reason"]
    predicate = refusal_in_ledger(served, proposal["id"])
    assert predicate["capsule_digest"] == capsule_digest(forged.capsule)
    recorded = ledger(served, proposal["id"])["capsule"]["statement"].predicate
    assert (
        recorded["capsule_digest"]
        == capsule_digest(lease.capsule)
        != capsule_digest(forged.capsule)
    )


def test_a_replayed_capsule_is_refused_even_by_a_restarted_runner(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    ready, go = Fifo(workdir / "ready"), Fifo(workdir / "go")
    proposal = propose(
        served, shell(python("open('count', 'a').write('x\\n')\n" + WAIT_FOR_GO), timeout=120)
    )
    first = make_runner(served, tmp_path)
    first.register()
    lease = first.lease()
    assert lease is not None
    thread = threading.Thread(target=first._work, args=(lease,))
    thread.start()
    try:
        assert ready.wait_line() == "started"
        # The same capsule handed again to a runner restarted on the same state dir.
        with make_runner(served, tmp_path) as restarted:
            restarted.register()
            restarted._work(lease)
        final = wait_terminal(served, proposal["id"])
        assert final["state"] == "failed"
        assert "capsule refused: it was replayed" in final["reason"]
    finally:
        go.send("go")
        thread.join(timeout=60)
        first.close()
        ready.close()
        go.close()
    assert (workdir / "count").read_text() == "x\n"  # it ran once
    assert "replayed" in refusal_in_ledger(served, proposal["id"])["error"]
    payload = json.loads(base64.b64decode(lease.capsule["payload"]))
    with make_runner(served, tmp_path) as later:
        assert later.nonces.seen(payload["nonce"])  # the store outlives the processes


def set_labels(served: Served, labels: dict[str, list[str]]) -> None:
    with served.plane.ctx.write() as conn:
        conn.execute(
            update(principals).where(principals.c.name == "runner-1").values(labels=labels)
        )


def test_a_capsule_whose_selector_does_not_match_the_runners_labels_is_refused(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    usual = {"env": ["production", "staging"]}
    with make_runner(served, tmp_path) as runner:
        assert runner.register() and runner.labels == usual
        # The control plane believes runner-1 is in the lab; the runner is told otherwise
        # (its labels come with each lease, unsigned: here as if rewritten on the way).
        set_labels(served, {**usual, "site": ["lab"]})
        try:
            proposal = propose(
                served, shell(touch(workdir / "ran"), runner_selector={"site": "lab"})
            )
            lease = runner.lease()
            assert lease is not None and runner.labels == {**usual, "site": ["lab"]}
            runner.labels = usual
            runner._work(lease)
        finally:
            set_labels(served, usual)
    assert not (workdir / "ran").exists()
    final = state_of(served, proposal["id"])
    assert final["state"] == "failed"
    assert "its target site=lab does not match this runner's labels" in final["reason"]
    refusal_in_ledger(served, proposal["id"])


def test_labels_decide_which_runner_gets_a_capsule(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    key = SigningKey.generate()
    (tmp_path / "eu").mkdir()
    (tmp_path / "eu" / "runner.pem").write_bytes(key.to_pem())
    (tmp_path / "eu" / "runner.pem").chmod(0o600)
    made = served.plane.runners.enrol(
        served.plane.principals, "runner-eu", key.public.b64, "olivia", {"region": "eu"}
    )
    unlabelled = served.plane.principals.add("runner-bare", "runner", "olivia")[1]
    elsewhere = propose(served, shell(["true"], runner_selector={"region": "us"}))
    mine = propose(served, shell(["true"], runner_selector={"region": "eu"}))
    with make_runner(served, tmp_path / "bare", token=unlabelled, workdir=workdir) as bare:
        assert bare.run_once() is False  # no labels: nothing, not even env=staging work
    eu = Runner(
        served.server.url,
        made["token"],
        tmp_path / "eu" / "runner.pem",
        workdir=workdir,
        lease_wait=0,
    )
    with eu:
        assert eu.register().runner["name"] == "runner-eu"
        assert eu.run_once() is True
        assert eu.run_once() is False
    assert state_of(served, mine["id"])["state"] == "succeeded"
    assert state_of(served, elsewhere["id"])["state"] == "authorized"
    capsule = ledger(served, mine["id"])["capsule"]["statement"].predicate
    assert capsule["runner"]["name"] == "runner-eu"


def test_an_admin_registered_key_cannot_be_replaced_by_the_runner(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    registered = SigningKey.generate()
    made = served.plane.runners.enrol(
        served.plane.principals, "runner-pinned", registered.public.b64, "olivia", {"env": "x"}
    )
    with (
        make_runner(served, tmp_path, token=made["token"]) as impostor,
        pytest.raises(RunnerError) as caught,
    ):
        impostor.register()
    assert "409" in str(caught.value)
    assert "registered by an admin" in str(caught.value)
    with pytest.raises(Exception, match="already the key of runner runner-pinned"):
        served.plane.runners.enrol(
            served.plane.principals, "runner-twin", registered.public.b64, "olivia", {}
        )


def test_long_poll_hands_over_work_that_appears_while_waiting(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    with make_runner(served, tmp_path, lease_wait=20) as runner:
        runner.register()
        got: list[Lease | None] = []
        thread = threading.Thread(target=lambda: got.append(runner.lease()))
        thread.start()
        proposal = propose(served, shell(["true"]))
        thread.join(timeout=30)
        assert got and got[0] is not None
        runner._work(got[0])
    assert wait_terminal(served, proposal["id"])["state"] == "succeeded"


def test_an_idle_long_poll_waits_on_the_server_then_answers_204(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    with make_runner(served, tmp_path, lease_wait=1) as runner:
        runner.register()
        started = time.monotonic()
        assert runner.lease() is None
        assert time.monotonic() - started >= 1.0
