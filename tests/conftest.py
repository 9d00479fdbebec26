"""Shared fixtures: initialised data dirs, control planes, real server processes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``placet ARGS`` in a real subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}
    full_env.update(env or {})
    return subprocess.run(
        [PYTHON, "-m", "placet", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


GRAPH = Path(__file__).parent / "fixtures" / "placet-graph.yaml"


def seed_graph(directory: Path) -> None:
    """Import the tests' small System Graph, so proposals name known targets."""
    cp = ControlPlane.open(load_settings(directory))
    try:
        cp.graph.import_paths([GRAPH], source="tests")
    finally:
        cp.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An initialised data dir with the tests' graph imported."""
    directory = tmp_path / "data"
    initialise(load_settings(directory))
    seed_graph(directory)
    return directory


@pytest.fixture
def plane(data_dir: Path) -> Iterator[ControlPlane]:
    cp = ControlPlane.open(load_settings(data_dir))
    yield cp
    cp.close()


@dataclass
class Tokens:
    owner: str
    human: str
    agent: str
    runner: str
    other_agent: str
    admin: str
    viewer: str
    auditor: str


@pytest.fixture
def tokens(plane: ControlPlane) -> Tokens:
    """Principals: owner (human) owns agent, other-agent and runner; reviewer approves."""
    return add_principals(plane)


def add_principals(plane: ControlPlane) -> Tokens:
    """olivia (approver) owns the agents and the runner; rita (approver, team sre) reviews;
    ada is admin, vera viewer, aud auditor."""
    add = plane.principals.add
    owner = add("olivia", "human", None, (), ("approver",))[1]
    human = add("rita", "human", None, ("sre",), ("approver",))[1]
    agent = add("bot", "agent", "olivia")[1]
    other = add("other-bot", "agent", "olivia")[1]
    runner = add("runner-1", "runner", "olivia")[1]
    # Capsules go only to runners whose labels match (env=<environment>); runner-1 serves both.
    plane.runners.set_labels("runner-1", {"env": ["staging", "production"]})
    admin = add("ada", "human", None, (), ("admin",))[1]
    viewer = add("vera", "human", None, (), ("viewer",))[1]
    auditor = add("aud", "human", None, (), ("auditor",))[1]
    return Tokens(owner, human, agent, runner, other, admin, viewer, auditor)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path


def start_server(data_dir: Path, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}
    full_env.update(env or {})
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "placet",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    with httpx.Client() as client:
        for _ in range(400):
            if process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                if client.get(url + "/healthz", timeout=1).status_code == 200:
                    return Server(url, process, data_dir)
            except httpx.TransportError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.05)
    process.kill()
    raise RuntimeError("server did not become healthy")


# Leases long enough that a heartbeat delayed by a loaded CI machine does not lose them.
SERVER_ENV = {"PLACET_LEASE_SECONDS": "10", "PLACET_CHECKPOINT_SECONDS": "0.2"}


def stop_server(srv: Server) -> None:
    srv.process.terminate()
    try:
        srv.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.process.kill()


@pytest.fixture
def server(data_dir: Path, tokens: Tokens) -> Iterator[Server]:
    """A fresh ``placet serve`` process on its own data dir."""
    srv = start_server(data_dir, SERVER_ENV)
    yield srv
    stop_server(srv)


@dataclass
class World:
    server: Server
    tokens: Tokens


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One server and set of principals shared by a module's tests (tests compare deltas)."""
    directory = tmp_path_factory.mktemp("world") / "data"
    settings = load_settings(directory)
    initialise(settings)
    seed_graph(directory)
    cp = ControlPlane.open(settings)
    try:
        tokens = add_principals(cp)
    finally:
        cp.close()
    srv = start_server(directory, SERVER_ENV)
    yield World(srv, tokens)
    stop_server(srv)
