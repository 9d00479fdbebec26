"""The demo: a control plane, a runner and three proposals on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import uvicorn

from placet.api.app import create_app
from placet.domain.errors import PlacetError
from placet.domain.lifecycle import TERMINAL, State
from placet.service.client import HttpBackend
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise
from placet.service.runner_host import run_runner

SETTLE_SECONDS = 60.0


@dataclass
class DemoWorld:
    """The running demo: server, runner, principals' tokens and the three proposals."""

    data_dir: Path
    url: str
    cp: ControlPlane
    tokens: dict[str, str]
    proposals: dict[str, dict[str, Any]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    server: uvicorn.Server | None = None

    def shutdown(self) -> None:
        self.stop.set()
        if self.server is not None:
            self.server.should_exit = True
        for thread in self.threads:
            thread.join(timeout=10)
        self.cp.close()


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As uvicorn binds: a port in TIME_WAIT after an earlier run is free to use.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(data_dir: Path, port: int, say: Callable[[str], None]) -> DemoWorld:
    """Initialise ``data_dir``, start the API and a runner, register the demo principals."""
    if not port_free(port):
        raise PlacetError(f"port {port} on 127.0.0.1 is in use: pick another with --port")
    settings = load_settings(data_dir)
    initialise(settings)
    cp = ControlPlane.open(settings)
    with as_file(files("placet.service") / "data" / "demo-graph.yaml") as graph_file:
        cp.graph.import_paths([graph_file], source="demo")
    world = DemoWorld(data_dir, f"http://127.0.0.1:{port}", cp, {})
    for name, kind, owner, roles in [
        ("demo-owner", "human", None, ("approver",)),
        ("demo-approver", "human", None, ("approver",)),
        ("demo-agent", "agent", "demo-owner", ()),
        ("demo-runner", "runner", "demo-owner", ()),
    ]:
        try:
            world.tokens[name] = cp.principals.add(name, kind, owner, ("demo",), roles)[1]
        except PlacetError:
            world.tokens[name] = cp.principals.issue_token(name)[1]
    # Capsules go only to runners whose labels match the proposal's environment.
    cp.runners.set_labels("demo-runner", {"env": ["staging", "production"]})
    config = uvicorn.Config(create_app(cp), host="127.0.0.1", port=port, log_level="warning")
    world.server = uvicorn.Server(config)
    serve = threading.Thread(target=world.server.run, name="api", daemon=True)
    serve.start()
    upkeep = threading.Thread(target=cp.run_upkeep, args=(world.stop,), name="upkeep", daemon=True)
    upkeep.start()
    world.threads += [serve, upkeep]
    deadline = time.monotonic() + 15
    while not world.server.started:
        if not serve.is_alive() or time.monotonic() > deadline:
            raise PlacetError(f"the API did not start on {world.url}")
        world.stop.wait(0.05)
    workdir = data_dir / "work"
    workdir.mkdir(exist_ok=True)
    runner = threading.Thread(
        target=run_runner,
        name="runner",
        daemon=True,
        args=(world.url, world.tokens["demo-runner"], data_dir / "runner" / "runner.key"),
        kwargs={
            "workdir": workdir,
            "poll_interval": 0.2,
            "server_key": cp.ctx.key.public,
            "once": False,
            "stop": world.stop,
        },
    )
    runner.start()
    world.threads.append(runner)
    say(f"control plane on {world.url}, data dir {data_dir}")
    return world


def drive(world: DemoWorld) -> None:
    """Submit the three demo proposals as the demo agent."""
    agent = HttpBackend(world.url, world.tokens["demo-agent"])
    py = sys.executable
    world.proposals["allowed"] = agent.propose(
        {
            "kind": "shell",
            "targets": ["checkout"],
            "environment": "staging",
            "intent": "Warm the checkout cache after the nightly flush",
            "parameters": {"argv": [py, "-c", "print('cache warmed')"], "timeout": 30},
            "verify": {"argv": [py, "-c", "print('checkout healthy')"]},
        },
        "demo-allowed",
    )
    world.proposals["approval"] = agent.propose(
        {
            "kind": "shell",
            "targets": ["payments"],
            "environment": "production",
            "intent": "Rotate the payments service's log files",
            "parameters": {"argv": [py, "-c", "print('logs rotated')"], "timeout": 30},
            "verify": {"argv": [py, "-c", "print('payments healthy')"]},
        },
        "demo-approval",
    )
    world.proposals["denied"] = agent.propose(
        {
            "kind": "drop_database",
            "targets": ["orders-db"],
            "environment": "staging",
            "intent": "Free disk space by dropping the orders database",
            "parameters": {"database": "orders"},
        },
        "demo-denied",
    )


def settle(world: DemoWorld, timeout: float = SETTLE_SECONDS) -> dict[str, dict[str, Any]]:
    """Wait until every demo proposal is in a final state; return their views."""
    human = HttpBackend(world.url, world.tokens["demo-approver"])
    deadline = time.monotonic() + timeout
    while True:
        views = {k: human.get(p["id"]) for k, p in world.proposals.items()}
        if all(State(v["state"]) in TERMINAL for v in views.values()):
            return views
        if time.monotonic() > deadline:
            stuck = ", ".join(f"{k}={v['state']}" for k, v in views.items())
            raise PlacetError(f"demo proposals did not settle in {timeout:.0f}s: {stuck}")
        world.stop.wait(0.1)


@dataclass(frozen=True)
class BundleCheck:
    """One demo proposal's exported bundle and what offline verification said."""

    name: str
    proposal_id: str
    state: str
    entries: int
    path: Path
    verdict: str
    ok: bool


def export_and_verify(world: DemoWorld, views: dict[str, dict[str, Any]]) -> list[BundleCheck]:
    """Export each proposal's bundle into ``bundles/`` and verify it against the key file."""
    from placet.service.offline import EvidenceError, verify_file

    directory = world.data_dir / "bundles"
    directory.mkdir(exist_ok=True)
    checks = []
    for name, view in views.items():
        path = directory / f"{view['id']}.json"
        bundle = world.cp.ledger.export(view["id"])
        path.write_text(json.dumps(bundle, indent=2, sort_keys=True) + "\n")
        try:
            report = verify_file(path, world.cp.ctx.settings.public_key_path)
            verdict, ok = f"verified ({len(report.stages)} statements)", True
        except EvidenceError as exc:
            verdict, ok = f"FAILED: {exc}", False
        checks.append(
            BundleCheck(name, view["id"], view["state"], len(bundle["entries"]), path, verdict, ok)
        )
    return checks
