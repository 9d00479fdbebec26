"""A runner handed a genuine capsule leased to another runner refuses it and reports the
refusal (queued in its outbox, sent to the refusals endpoint), so the leak is in the ledger;
a capsule it cannot authenticate is only logged.

In-process ``Runner`` objects against a real ``placet serve`` subprocess (see test_process):
runner-1 (the tests' runner, env=staging) leases; runner-a (env=nowhere) is handed its lease.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from placet.domain.signing import SigningKey
from placet.runners.capsule import capsule_digest
from placet.runners.delivery import REFUSAL
from placet.runners.outbox import DELIVERED, REFUSED
from placet.runners.process import Runner
from placet.runners.protocol import Lease
from tests.conftest import SERVER_ENV

from .test_process import Served, ledger, make_runner, propose, serve, shell, state_of, verified


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("misdirected") / "data", SERVER_ENV)


def runner_a(served: Served, directory: Path, name: str, **options: Any) -> Runner:
    """A runner an admin registered with labels env=nowhere (it leases nothing here)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate()
    (directory / "runner.pem").write_bytes(key.to_pem())
    (directory / "runner.pem").chmod(0o600)
    made = served.plane.runners.enrol(
        served.plane.principals, name, key.public.b64, "olivia", {"env": "nowhere"}
    )
    (directory / "work").mkdir(exist_ok=True)
    return make_runner(served, directory, token=made["token"], **options)


def leased_to_runner_1(served: Served, tmp_path: Path, argv: list[str]) -> tuple[str, Lease]:
    """A staging proposal leased by runner-1 (which then never runs it): its id and lease."""
    proposal = propose(served, shell(argv))
    (tmp_path / "runner-1" / "work").mkdir(parents=True)
    with make_runner(served, tmp_path / "runner-1") as b:
        b.register()
        lease = b.lease()
    assert lease is not None
    payload = json.loads(base64.b64decode(lease.capsule["payload"]))
    assert payload["proposal_id"] == proposal["id"]
    return str(proposal["id"]), lease


def test_a_misdirected_capsule_is_refused_reported_and_recorded(
    served: Served, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    proposal_id, lease = leased_to_runner_1(served, tmp_path, ["touch", str(ran)])
    with runner_a(served, tmp_path / "a", "runner-a") as a:
        a.register()
        a._work(lease)  # handed runner-1's lease, as a man in the middle would
        (queued,) = a.outbox.all(lease.lease_id)
        a_keyid = a.key.public.keyid
    assert not ran.exists()
    assert (queued.stage, queued.status, queued.answer) == (REFUSAL, DELIVERED, "failed")
    final = state_of(served, proposal_id)
    assert final["state"] == "failed"
    assert final["reason"].startswith(f"capsule misdirected: the capsule of lease {lease.lease_id}")
    assert "leased to runner runner-1" in final["reason"]
    assert "presented to runner runner-a" in final["reason"]
    said = ledger(served, proposal_id)["execution"]
    assert said["envelope"] == queued.envelope
    predicate = said["statement"].predicate
    assert predicate["runner"]["name"] == "runner-a"
    assert predicate["error"].startswith("capsule refused: it is for runner ")
    assert predicate["capsule_digest"] == capsule_digest(lease.capsule)
    assert (predicate["lease_id"], predicate["fencing_token"]) == (
        lease.lease_id,
        lease.fencing_token,
    )
    report = verified(served, proposal_id)
    assert a_keyid in report.runner_keyids
    assert any("refused as misdirected by runner runner-a" in note for note in report.notes)


def test_a_refusal_made_while_the_control_plane_is_away_is_sent_from_the_outbox(
    served: Served, tmp_path: Path
) -> None:
    proposal_id, lease = leased_to_runner_1(served, tmp_path, ["true"])
    with socket.socket() as sock:  # a port nothing listens on: the control plane is away
        sock.bind(("127.0.0.1", 0))
        away = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with runner_a(served, tmp_path / "a", "runner-a-away", retry_attempts=1) as a:
        a.register()
        a._client.close()
        a._client = httpx.Client(base_url=away, headers=a._client.headers, timeout=2)
        a._work(lease)
        (queued,) = a.outbox.pending()
    assert (queued.stage, queued.lease_id) == (REFUSAL, lease.lease_id)
    assert state_of(served, proposal_id)["state"] == "executing"
    # The runner restarts on the same state dir with the control plane back.
    with make_runner(served, tmp_path / "a", token=_token_of(served, "runner-a-away")) as again:
        again.register()
        assert again.flush_outbox() == 1
        assert again.outbox.pending() == []
        assert again.flush_outbox() == 0
    assert state_of(served, proposal_id)["state"] == "failed"
    assert "capsule misdirected" in state_of(served, proposal_id)["reason"]


def test_a_capsule_for_another_runner_that_is_not_genuine_is_only_logged(
    served: Served, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proposal_id, lease = leased_to_runner_1(served, tmp_path, ["true"])
    envelope = dict(lease.capsule)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["proposal"]["parameters"]["argv"] = ["echo", "pwned"]
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    with runner_a(served, tmp_path / "a", "runner-a-forged") as a:
        a.register()
        a._work(replace(lease, capsule=envelope))
        assert a.outbox.all(lease.lease_id) == []
    assert "not reported" in caplog.text
    assert state_of(served, proposal_id)["state"] == "executing"  # left to runner-1's lease


def test_a_refusal_of_a_finished_lease_is_kept_as_refused(served: Served, tmp_path: Path) -> None:
    proposal_id, lease = leased_to_runner_1(served, tmp_path, ["true"])
    with runner_a(served, tmp_path / "a", "runner-a-first") as first:
        first.register()
        first._work(lease)
    assert state_of(served, proposal_id)["state"] == "failed"
    # A second runner handed the same capsule later: the lease is over (409), nothing new.
    before = ledger(served, proposal_id)
    with runner_a(served, tmp_path / "c", "runner-c") as c:
        c.register()
        c._work(lease)
        (queued,) = c.outbox.all(lease.lease_id)
    assert queued.status == REFUSED
    assert queued.answer is not None and "409" in queued.answer
    assert ledger(served, proposal_id).keys() == before.keys()


def _token_of(served: Served, name: str) -> str:
    """A fresh token for runner ``name`` (the admin issues one)."""
    token: str = served.plane.principals.issue_token(name)[1]
    return token
