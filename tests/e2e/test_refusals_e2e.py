"""Tampered, expired, replayed and misdirected capsules, refused by real ``placet runner``
processes, with the refusals in the ledger wherever the control plane can record them (a
misdirected capsule's refusal goes to the refusals endpoint, naming the leaked lease).

One ``placet serve`` (capsules live CAPSULE_SECONDS) serves the module; runner processes reach
it only through the attacker proxy (tests/e2e/attacker.py), which rewrites lease answers.
Each runner is registered by an admin with its own ``case`` label and each proposal selects
that label, so a test's work goes to its own runner. What ran is read from files the actions
would create; what was recorded, from the proposal's evidence bundle over HTTP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from placet.domain.signing import SigningKey, open_envelope
from placet.evidence.statements import envelope_payload, parse_statement
from placet.evidence.verify import verify_bundle
from placet.runners.capsule import capsule_digest
from placet.runners.keys import load_or_create_key
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise
from tests.conftest import (
    PYTHON,
    Server,
    Tokens,
    add_principals,
    seed_graph,
    start_server,
    stop_server,
)
from tests.runners.helpers import Fifo, alive, wait_gone

from .attacker import (
    Attacker,
    Exchange,
    Misdirect,
    Offer,
    Replay,
    capsule_expiry,
    hold_until_expired,
    rewrite_argv,
    rewrite_labels,
    rounds,
)

CAPSULE_SECONDS = 5  # long enough for a runner restart, short enough to wait out
LEASE_SECONDS = 9  # outlives a capsule, so the refusal of an expired one is still recorded
TERMINAL = {"succeeded", "failed", "denied", "cancelled", "expired"}
KINDS = ["shell"]
REGISTER = "/v1/runners/register"
REPORTS = "/v1/runners/reports"
REFUSALS = "/v1/runners/refusals"


@dataclass
class World:
    """The server, the attacker in front of it, and HTTP clients for the agent and a human."""

    server: Server
    plane: ControlPlane
    tokens: Tokens
    attacker: Attacker
    agent: httpx.Client
    human: httpx.Client


@dataclass
class Edge:
    """A runner registered by an admin: name (= its case label), state dir, token, id, key."""

    name: str
    state: Path
    token: str
    id: str
    key: SigningKey

    @property
    def log(self) -> Path:
        return self.state / "runner.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Said:
    """One statement of a proposal's evidence bundle."""

    stage: str
    predicate: dict[str, Any]
    envelope: dict[str, Any]


Spawn = Callable[[Edge, Path], "subprocess.Popen[bytes]"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("refusals-e2e") / "data"
    settings = load_settings(data_dir)
    initialise(settings)
    seed_graph(data_dir)
    plane = ControlPlane.open(settings)
    tokens = add_principals(plane)
    env = {
        "PLACET_CAPSULE_SECONDS": str(CAPSULE_SECONDS),
        "PLACET_LEASE_SECONDS": str(LEASE_SECONDS),
        "PLACET_CHECKPOINT_SECONDS": "0.2",  # reap lost leases promptly
    }
    server = start_server(data_dir, env)
    agent = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {tokens.agent}"}, timeout=30
    )
    human = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {tokens.human}"}, timeout=30
    )
    try:
        with Attacker(server.url) as attacker:
            yield World(server, plane, tokens, attacker, agent, human)
            assert attacker.errors == []
    finally:
        agent.close()
        human.close()
        stop_server(server)
        plane.close()


@pytest.fixture
def spawn(world: World) -> Iterator[Spawn]:
    """Start real runner processes that reach the server only through the attacker."""
    started: list[subprocess.Popen[bytes]] = []
    pinned = world.server.data_dir / "keys" / "control-plane.pub"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}

    def start(edge: Edge, work: Path) -> subprocess.Popen[bytes]:
        argv = [
            *(PYTHON, "-m", "placet", "runner", "--server", world.attacker.url),
            *("--token", edge.token, "--dir", str(edge.state), "--workdir", str(work)),
            *("--control-plane-key", str(pinned), "--poll-interval", "0.05"),
            *("--lease-wait", "1", "--log-level", "warning"),
        ]
        with edge.log.open("ab") as log:
            process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def enrol(world: World, base: Path, name: str) -> Edge:
    """Make a runner key on its own state dir; an admin registers it with label case=name."""
    state = base / name
    key = load_or_create_key(state / "runner.key")
    made = world.plane.runners.enrol(
        world.plane.principals, name, key.public.b64, "olivia", {"case": [name]}
    )
    return Edge(name, state, str(made["token"]), str(made["id"]), key)


def propose(world: World, argv: list[str], selector: dict[str, str]) -> str:
    """Submit a shell action in staging (allowed by the default policy) for ``selector``."""
    body = {
        "kind": "shell",
        "targets": ["svc"],
        "parameters": {"argv": argv, "runner_selector": selector},
        "environment": "staging",
        "intent": "attack the runner",
    }
    response = world.agent.post("/v1/proposals", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def final(world: World, proposal_id: str, timeout: float = 30) -> dict[str, Any]:
    """The proposal once it is in a terminal state (bounded poll over HTTP)."""
    for _ in rounds(timeout):
        response = world.human.get(f"/v1/proposals/{proposal_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["state"] in TERMINAL:
            return body
    raise AssertionError("unreachable")


def evidence(world: World, proposal_id: str) -> list[Said]:
    """The proposal's statements, in ledger order, from its evidence bundle."""
    response = world.human.get(f"/v1/proposals/{proposal_id}/evidence")
    assert response.status_code == 200, response.text
    out = []
    for item in response.json()["entries"]:
        said = parse_statement(envelope_payload(item["envelope"]))
        out.append(Said(said.stage.value, dict(said.predicate), item["envelope"]))
    return out


def recorded_refusal(world: World, proposal_id: str, edge: Edge) -> dict[str, Any]:
    """The one execution statement of the proposal: a refusal signed by ``edge``'s key."""
    (execution,) = [s for s in evidence(world, proposal_id) if s.stage == "execution"]
    open_envelope(execution.envelope, [edge.key.public])  # raises unless the runner signed it
    predicate = execution.predicate
    assert (predicate["ok"], predicate["argv"], predicate["exit_code"]) == (False, [], None)
    assert predicate["error"].startswith("capsule refused:")
    assert predicate["runner"]["name"] == edge.name
    return predicate


def capsule_statement(world: World, proposal_id: str) -> dict[str, Any]:
    (capsule,) = [s.predicate for s in evidence(world, proposal_id) if s.stage == "capsule"]
    return capsule


def wait_log(edge: Edge, text: str, timeout: float = 30) -> str:
    """The runner's log once it contains ``text`` (bounded wait)."""
    for _ in rounds(timeout):
        logged = edge.log_text()
        if text in logged:
            return logged
    raise AssertionError("unreachable")


def registered(world: World, edge: Edge, times: int = 1) -> None:
    """Wait until the runner with ``edge``'s token has registered ``times`` times."""

    def done(exchanges: list[Exchange]) -> bool | None:
        count = sum(
            1 for e in exchanges if e.token == edge.token and e.path == REGISTER and e.status == 200
        )
        return True if count >= times else None

    world.attacker.wait_for(done)


def report_statuses(exchange: Exchange, lease_id: str) -> list[int]:
    """The answer statuses of the reports about ``lease_id`` in one exchange: one report
    (``/leases/{id}/execution|verification``) or a batch (``/reports``, one result each)."""
    if exchange.path.startswith(f"/v1/runners/leases/{lease_id}/"):
        return [] if exchange.path.endswith("/heartbeat") else [exchange.status]
    if exchange.path != REPORTS or exchange.status != 200:
        return []
    items = exchange.request["reports"]
    results = exchange.answer["results"]
    return [
        int(result["problem"]["status"]) if "problem" in result else 200
        for item, result in zip(items, results, strict=True)
        if item["lease_id"] == lease_id
    ]


def offer_for(world: World, edge: Edge, proposal_id: str) -> Offer:
    """The (first) offer the runner was handed for ``proposal_id``."""
    return next(o for o in world.attacker.handed(edge.token) if o["proposal_id"] == proposal_id)


def touch(path: Path) -> list[str]:
    code = "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()"
    return [sys.executable, "-c", code, str(path)]


def append(path: Path, line: str) -> list[str]:
    """An argv appending ``line`` to ``path`` (one O_APPEND write)."""
    code = "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)"
    code += "; os.write(fd, (sys.argv[2] + '\\n').encode())"
    return [sys.executable, "-c", code, str(path), line]


def test_a_tampered_capsule_is_refused_and_the_refusal_is_recorded(
    world: World, spawn: Spawn, tmp_path: Path, work: Path
) -> None:
    """The attacker changes the capsule's argv after signing and keeps the signature."""
    edge = enrol(world, tmp_path, "tampered")
    ran, pwned = work / "ran", work / "pwned"
    world.attacker.on_lease(edge.token, rewrite_argv(touch(pwned)))
    spawn(edge, work)
    proposal_id = propose(world, touch(ran), {"case": edge.name})

    state = final(world, proposal_id)
    assert state["state"] == "failed", state
    assert "capsule refused: the signature does not verify" in state["reason"]
    assert not ran.exists() and not pwned.exists()
    (exchange,) = [e for e in world.attacker.exchanges(edge.token) if e.handed]
    (offered,), (forged,) = exchange.offered, exchange.handed
    predicate = recorded_refusal(world, proposal_id, edge)
    assert "signature does not verify" in predicate["error"]
    # The refusal names the capsule the runner received; the ledger, the one it signed.
    assert predicate["capsule_digest"] == capsule_digest(forged["capsule"])
    signed = capsule_statement(world, proposal_id)["capsule_digest"]
    assert signed == capsule_digest(offered["capsule"]) != predicate["capsule_digest"]


def test_an_expired_capsule_is_refused_and_the_refusal_is_recorded(
    world: World, spawn: Spawn, tmp_path: Path, work: Path
) -> None:
    """The attacker holds the lease answer until the capsule has expired, then hands it on
    unchanged; the lease (LEASE_SECONDS) is still active, so the refusal is recorded."""
    edge = enrol(world, tmp_path, "expired")
    ran = work / "ran"
    world.attacker.on_lease(edge.token, hold_until_expired(CAPSULE_SECONDS + 20))
    spawn(edge, work)
    proposal_id = propose(world, touch(ran), {"case": edge.name})

    state = final(world, proposal_id, timeout=CAPSULE_SECONDS + 30)
    assert state["state"] == "failed", state
    assert "capsule refused: it expired at" in state["reason"]
    assert not ran.exists()
    (exchange,) = [e for e in world.attacker.exchanges(edge.token) if e.handed]
    assert exchange.handed == exchange.offered  # the genuine capsule, only late
    (offer,) = exchange.handed
    assert exchange.answered_at > capsule_expiry(offer)
    predicate = recorded_refusal(world, proposal_id, edge)
    assert "expired" in predicate["error"]
    assert predicate["capsule_digest"] == capsule_digest(offer["capsule"])
    assert predicate["lease_id"] == offer["lease_id"]


def test_a_capsule_replayed_to_the_runner_restarted_on_its_dir_is_refused_and_recorded(
    world: World, spawn: Spawn, tmp_path: Path, work: Path
) -> None:
    """The runner is killed (-9) mid-action and started again on the same --dir; the attacker
    hands the restarted process the capsule it had already taken. The lease is still active
    (the kill is seconds old), so the refusal is reported on it and recorded."""
    edge = enrol(world, tmp_path, "replayed")
    count, ready, go = work / "count", Fifo(tmp_path / "ready"), Fifo(tmp_path / "go")
    code = (
        "import os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
        "os.write(fd, b'x\\n'); os.close(fd)\n"
        "with open(sys.argv[2], 'w') as ready: ready.write(f'{os.getpid()}\\n')\n"
        "with open(sys.argv[3], 'rb') as go: go.read(1)\n"
    )
    argv = [sys.executable, "-c", code, str(count), str(ready.path), str(go.path)]
    first = spawn(edge, work)
    action_pid = 0
    try:
        proposal_id = propose(world, argv, {"case": edge.name})
        action_pid = int(ready.wait_line())
        original = offer_for(world, edge, proposal_id)
        first.send_signal(signal.SIGKILL)  # the runner dies without a word; its action lives
        assert first.wait(timeout=10) == -signal.SIGKILL
        assert alive(action_pid)

        world.attacker.on_lease(edge.token, Replay([original]))
        spawn(edge, work)  # the same runner, restarted on the same state dir
        state = final(world, proposal_id)
        assert state["state"] == "failed", state
        assert "capsule refused: it was replayed" in state["reason"]
    finally:
        go.send("go")
        if action_pid:
            assert wait_gone(action_pid, timeout=15)
        ready.close()
        go.close()
    assert count.read_text() == "x\n"  # it ran once, before the restart
    predicate = recorded_refusal(world, proposal_id, edge)
    assert "replayed" in predicate["error"]
    # The very capsule the control plane signed: only the runner's nonce store refused it.
    assert predicate["capsule_digest"] == capsule_digest(original["capsule"])
    assert predicate["capsule_digest"] == capsule_statement(world, proposal_id)["capsule_digest"]
    assert (predicate["lease_id"], predicate["fencing_token"]) == (
        original["lease_id"],
        original["fencing_token"],
    )
    assert "capsule refused: it was replayed" in edge.log_text()


def test_a_replay_of_a_finished_lease_in_place_of_a_later_one_is_refused_and_runs_nothing(
    world: World, spawn: Spawn, tmp_path: Path, work: Path
) -> None:
    """A replay of a capsule whose lease is done cannot be recorded: the control plane takes
    reports only on an active lease, so it answers the runner's refusal with 409 and the
    runner drops it (kept as refused in its outbox). What is asserted instead: the runner
    logs the refusal, nothing runs again, the first proposal's ledger is unchanged, and the
    later lease the attacker held back is run when handed over."""
    edge = enrol(world, tmp_path, "replayed-later")
    out = work / "out"
    # Installed from the start, so the lease request the runner has waiting on the server
    # when the replay is armed is one the rule sees.
    replay = Replay([], instead=True)
    world.attacker.on_lease(edge.token, replay)
    spawn(edge, work)
    first_id = propose(world, append(out, "first"), {"case": edge.name})
    assert final(world, first_id)["state"] == "succeeded"
    first = offer_for(world, edge, first_id)
    before = evidence(world, first_id)

    replay.arm([first])
    later_id = propose(world, append(out, "second"), {"case": edge.name})
    assert final(world, later_id)["state"] == "succeeded"
    assert replay.stale == [] and replay.kept == []  # the replay and then the real offer
    assert "capsule refused: it was replayed" in wait_log(edge, "it was replayed")
    assert out.read_text().splitlines() == ["first", "second"]
    assert final(world, first_id)["state"] == "succeeded"
    assert [s.envelope for s in evidence(world, first_id)] == [s.envelope for s in before]
    exchanges = world.attacker.exchanges(edge.token)
    # The replay: the server offered the later lease, the runner was handed the first again.
    handed_at = next(
        i for i, e in enumerate(exchanges) if e.handed == (first,) and e.offered != e.handed
    )
    assert [o["proposal_id"] for o in exchanges[handed_at].offered] == [later_id]
    late = [e for e in exchanges[handed_at + 1 :] if e.mentions(first["lease_id"])]
    statuses = [status for e in late for status in report_statuses(e, first["lease_id"])]
    assert statuses == [409], late  # the refusal was sent, and refused: the lease is done
    assert [s.envelope for s in evidence(world, first_id)] == [s.envelope for s in before]


def test_a_capsule_leased_by_another_runner_is_refused_and_the_refusal_is_recorded(
    world: World, spawn: Spawn, tmp_path: Path, work: Path
) -> None:
    """The attacker leases with runner B's token and hands B's capsule to runner A. The capsule
    is genuine but leaked, so A refuses it and reports the refusal, signed with its own key, to
    POST /v1/runners/refusals: B's lease ends misdirected, the proposal fails naming both
    runners and the lease (not "runner lost"), A's refusal is in the ledger, and the bundle
    verifies offline, saying who refused."""
    edge_a = enrol(world, tmp_path, "misdirected-a")
    edge_b = enrol(world, tmp_path, "misdirected-b")
    answer = httpx.post(
        world.server.url + REGISTER,
        json={"public_key": edge_b.key.public.b64, "kinds": KINDS},
        headers={"Authorization": f"Bearer {edge_b.token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    misdirect = Misdirect(world.attacker, edge_b.token, KINDS)
    world.attacker.on_lease(edge_a.token, misdirect)
    spawn(edge_a, work)
    ran = work / "ran"
    proposal_id = propose(world, touch(ran), {"case": edge_b.name})

    # Well inside B's lease (LEASE_SECONDS): the refusal, not the reaper, ends the proposal.
    state = final(world, proposal_id, timeout=LEASE_SECONDS - 2)
    (stolen,) = misdirect.stolen
    assert stolen["proposal_id"] == proposal_id
    assert state["state"] == "failed", state
    reason = state["reason"]
    assert "runner lost" not in reason
    assert reason.startswith(f"capsule misdirected: the capsule of lease {stolen['lease_id']}")
    assert f"leased to runner {edge_b.name} ({edge_b.id})" in reason
    assert f"presented to runner {edge_a.name} ({edge_a.id}), which refused it" in reason
    assert not ran.exists()
    assert [o["lease_id"] for o in world.attacker.handed(edge_a.token)] == [stolen["lease_id"]]
    logged = wait_log(edge_a, "refusal of the misdirected capsule recorded")
    assert f"capsule refused: it is for runner {edge_b.id}, not {edge_a.id}" in logged

    # A's one word about B's lease: its refusal (the lease id is inside the signed payload),
    # recorded (200); no heartbeat or report on the lease.
    exchanges = world.attacker.exchanges(edge_a.token)
    told = [e for e in exchanges if e.path == REFUSALS]
    assert [e.status for e in told] == [200], told
    assert [e for e in exchanges if e.mentions(stolen["lease_id"])] == []
    said = parse_statement(envelope_payload(told[0].request["envelope"]))
    assert said.predicate["lease_id"] == stolen["lease_id"]
    assert told[0].answer == {
        "state": "failed",
        "lease_id": stolen["lease_id"],
        "proposal_id": proposal_id,
        "lease_status": "misdirected",
    }

    # In the ledger: A's signed refusal of exactly B's capsule, then the failed closure.
    stages = evidence(world, proposal_id)
    assert [s.stage for s in stages][-3:] == ["capsule", "execution", "closure"]
    capsule = capsule_statement(world, proposal_id)
    assert capsule["runner"]["name"] == edge_b.name
    predicate = recorded_refusal(world, proposal_id, edge_a)
    assert f"it is for runner {edge_b.id}, not {edge_a.id}" in predicate["error"]
    assert predicate["capsule_digest"] == capsule_digest(stolen["capsule"])
    assert predicate["capsule_digest"] == capsule["capsule_digest"]
    assert (predicate["lease_id"], predicate["fencing_token"]) == (
        stolen["lease_id"],
        stolen["fencing_token"],
    )
    closure = stages[-1].predicate
    assert closure["state"] == "failed"
    assert closure["misdirected"]["runner_keyid"] == edge_a.key.public.keyid

    # The bundle verifies offline against the control plane's key and says who refused.
    response = world.human.get(f"/v1/proposals/{proposal_id}/evidence")
    bundle = response.json()
    report = verify_bundle(bundle, world.plane.ctx.key.public)
    assert report.final_state == "failed"
    assert edge_a.key.public.keyid in report.runner_keyids
    assert any(
        f"refused as misdirected by runner {edge_a.name} ({edge_a.id}" in note
        for note in report.notes
    )

    # A is not wedged: its own work still runs (the attacker now forwards its leases).
    own = work / "own"
    own_id = propose(world, touch(own), {"case": edge_a.name})
    assert final(world, own_id)["state"] == "succeeded"
    assert own.exists()


def test_a_capsule_whose_selector_no_longer_matches_the_runners_labels_is_refused_and_recorded(
    world: World, spawn: Spawn, tmp_path: Path, work: Path
) -> None:
    """The control plane leases the runner work for site=lab under labels that include it,
    but the runner is told other labels (the attacker rewrites ``runner_labels``, which is
    not signed): it checks the capsule's selector against what it was told and refuses.
    (A runner follows label changes an admin makes: test_runner_identity.py.)"""
    edge = enrol(world, tmp_path, "relabelled")
    world.attacker.on_lease(edge.token, rewrite_labels({"case": [edge.name]}))
    spawn(edge, work)
    registered(world, edge)
    world.plane.runners.set_labels(edge.name, {"case": [edge.name], "site": ["lab"]})
    ran = work / "ran"
    proposal_id = propose(world, touch(ran), {"site": "lab"})

    state = final(world, proposal_id)
    assert state["state"] == "failed", state
    assert "its target site=lab does not match this runner's labels" in state["reason"]
    assert not ran.exists()
    predicate = recorded_refusal(world, proposal_id, edge)
    assert predicate["lease_id"] == offer_for(world, edge, proposal_id)["lease_id"]
