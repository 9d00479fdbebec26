"""Decision throughput and latency of one ``placet serve`` process over HTTP.

Starts a real ``placet serve`` subprocess (one API process, SQLite in WAL mode, evidence on)
on a fresh temporary data dir, registers a human and an agent, then drives policy-allowed
proposals (shell in staging: decided ``authorized`` in the same request) from concurrent
clients. Each request is timed from POST to the decided response; every response must be
201 with state ``authorized``. Prints proposals/s, p50/p99/max latency, the ledger size, CPU
used per proposal by the server and by the clients, and the ratios to the targets
(>= 1,000 decisions/s, p99 <= 15 ms).

Usage (from the repository root)::

    .venv/bin/python bench/decision.py                        # 20,000 proposals, 4 clients
    .venv/bin/python bench/decision.py --proposals 2000 --json
    .venv/bin/python bench/decision.py --client-mode thread   # or: process (default), async
    .venv/bin/python bench/decision.py --proposals 3000 --py-spy /tmp/serve.txt \\
        --py-spy-bin /tmp/pyspy/bin/py-spy [--py-spy-gil]

``--client-mode process`` runs each client in its own process (httpx.Client, keep-alive), so
the client side never shares a GIL with itself; ``thread`` and ``async`` run all clients in
this process, to compare. ``--py-spy FILE`` samples the server during the measured phase and
writes collapsed stacks (summarise them with ``bench/hotspots.py collapsed FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

TARGET_RATE = 1000.0  # decisions per second
TARGET_P99_MS = 15.0
STATEMENTS_PER_PROPOSAL = 3  # proposal, assessment, decision
BODY: dict[str, Any] = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "staging",
    "intent": "bench",
    "parameters": {"argv": ["true"]},
}


class Barrier(Protocol):
    """What the clients need of threading.Barrier and multiprocessing's Barrier."""

    def wait(self, timeout: float | None = None) -> int: ...


# ---- the server --------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """This process's environment without PLACET_* variables, so the data dir is ours."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}


def placet(*args: str) -> str:
    """Run ``placet ARGS`` and return its stdout; raise with stderr when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "placet", *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"placet {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of a process so far (Linux /proc), with its waited-for
    children when ``children``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running ``placet serve`` subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, data_dir: Path) -> Server:
        port = free_port()
        log = data_dir.parent / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "placet", "serve", "--data-dir", str(data_dir)),
                    *("--port", str(port), "--log-level", "warning"),
                ],
                env=clean_env(),
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        server = cls(process, f"http://127.0.0.1:{port}", log)
        try:
            server.wait_healthy()
        except BaseException:
            server.stop()
            raise
        return server

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"placet serve exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get(self.url + "/healthz", timeout=1).status_code == 200:
                        return
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=0.1)
        raise RuntimeError(f"placet serve was not healthy within {timeout:.0f}s")

    def ledger_size(self) -> int:
        response = httpx.get(self.url + "/healthz", timeout=10)
        response.raise_for_status()
        return int(response.json()["ledger_size"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# ---- the clients -------------------------------------------------------------------------


@dataclass
class ClientResult:
    """What one client measured: per-request latencies and when it started and ended."""

    latencies_ns: list[int] = field(default_factory=list)
    started: float = 0.0  # time.monotonic(), comparable across processes on Linux
    ended: float = 0.0
    cpu_seconds: float = 0.0
    error: str | None = None


def check(response: httpx.Response) -> None:
    """A decided, allowed proposal or an error saying what came back instead."""
    if response.status_code != 201:
        raise RuntimeError(f"POST /v1/proposals: HTTP {response.status_code}: {response.text}")
    state = response.json().get("state")
    if state != "authorized":
        raise RuntimeError(f"expected state 'authorized', got {state!r}: {response.text}")


def sync_client(url: str, token: str, warmup: int, count: int, barrier: Barrier) -> ClientResult:
    """One client: ``warmup`` unmeasured proposals, the barrier, then ``count`` timed ones."""
    result = ClientResult()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for _ in range(warmup):
                check(client.post("/v1/proposals", json=BODY))
            barrier.wait(timeout=600)
            cpu0 = time.process_time()
            result.started = time.monotonic()
            for _ in range(count):
                begin = time.perf_counter_ns()
                response = client.post("/v1/proposals", json=BODY)
                result.latencies_ns.append(time.perf_counter_ns() - begin)
                check(response)
            result.ended = time.monotonic()
            result.cpu_seconds = time.process_time() - cpu0
    except Exception as exc:  # reported by the parent, which fails the run
        result.error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=0)  # do not leave the others waiting for us
    return result


def process_entry(
    url: str, token: str, warmup: int, count: int, barrier: Barrier, out: Any
) -> None:
    """Entry point of a client process: run, then send the result to the parent."""
    out.put(sync_client(url, token, warmup, count, barrier))


def shares(total: int, clients: int) -> list[int]:
    """``total`` split as evenly as possible over ``clients``."""
    return [total // clients + (1 if i < total % clients else 0) for i in range(clients)]


def run_processes(
    url: str, token: str, warmups: list[int], counts: list[int], on_start: Callable[[], None]
) -> list[ClientResult]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(counts) + 1)
    out = ctx.Queue()
    workers = [
        ctx.Process(target=process_entry, args=(url, token, w, n, barrier, out), daemon=True)
        for w, n in zip(warmups, counts, strict=True)
    ]
    for worker in workers:
        worker.start()
    results: list[ClientResult] = []
    try:
        with contextlib.suppress(threading.BrokenBarrierError):  # a client failed: see below
            barrier.wait(timeout=600)
        on_start()
        while len(results) < len(workers):
            try:
                results.append(out.get(timeout=5))
            except queue.Empty:
                if all(not w.is_alive() for w in workers) and out.empty():
                    raise RuntimeError("a client process died without a result") from None
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    return results


def run_threads(
    url: str, token: str, warmups: list[int], counts: list[int], on_start: Callable[[], None]
) -> list[ClientResult]:
    barrier = threading.Barrier(len(counts) + 1)
    results: list[ClientResult] = []
    lock = threading.Lock()

    def target(warmup: int, count: int) -> None:
        result = sync_client(url, token, warmup, count, barrier)
        with lock:
            results.append(result)

    threads = [
        threading.Thread(target=target, args=(w, n), daemon=True)
        for w, n in zip(warmups, counts, strict=True)
    ]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a client failed: see its error
        barrier.wait(timeout=600)
    cpu0 = time.process_time()
    on_start()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - cpu0  # the process's CPU: all clients share it
    for result in results:
        result.cpu_seconds = cpu / len(results)
    return results


async def async_clients(
    url: str, token: str, warmups: list[int], counts: list[int], on_start: Callable[[], None]
) -> list[ClientResult]:
    headers = {"Authorization": f"Bearer {token}"}

    async def warm(client: httpx.AsyncClient, n: int) -> None:
        for _ in range(n):
            check(await client.post("/v1/proposals", json=BODY))

    async def timed(client: httpx.AsyncClient, n: int) -> ClientResult:
        result = ClientResult(started=time.monotonic())
        for _ in range(n):
            begin = time.perf_counter_ns()
            response = await client.post("/v1/proposals", json=BODY)
            result.latencies_ns.append(time.perf_counter_ns() - begin)
            check(response)
        result.ended = time.monotonic()
        return result

    clients = [httpx.AsyncClient(base_url=url, headers=headers, timeout=60) for _ in counts]
    try:
        await asyncio.gather(*(warm(c, n) for c, n in zip(clients, warmups, strict=True)))
        on_start()
        cpu0 = time.process_time()
        results = list(
            await asyncio.gather(*(timed(c, n) for c, n in zip(clients, counts, strict=True)))
        )
        cpu = time.process_time() - cpu0
    finally:
        for client in clients:
            await client.aclose()
    for result in results:
        result.cpu_seconds = cpu / len(results)
    return results


# ---- the run -----------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


def start_py_spy(binary: str, pid: int, output: Path, gil_only: bool) -> subprocess.Popen[bytes]:
    """Sample the server's busy threads (or only the GIL holder) into collapsed stacks."""
    return subprocess.Popen(
        [
            *(binary, "record", "--pid", str(pid), "--rate", "200", "--format", "raw"),
            *("--output", str(output), "--nonblocking", *(["--gil"] if gil_only else [])),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        _, err = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if spy.returncode not in (0, -signal.SIGINT):
        sys.stderr.write(f"py-spy exited {spy.returncode}: {err.decode()[-1000:]}\n")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="placet-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        placet("init", "--data-dir", str(data_dir))
        # The shipped policy never allows a target the System Graph does not know.
        graph = Path(tmp) / "placet-graph.yaml"
        graph.write_text("placet-graph: v1\nnodes:\n  svc: {kind: service, owner: team:bench}\n")
        placet("graph", "import", str(graph), "--data-dir", str(data_dir))
        placet("principal", "add", "bench-owner", "--kind", "human", "--data-dir", str(data_dir))
        token = json.loads(
            placet(
                "principal",
                "add",
                "bench-agent",
                "--kind",
                "agent",
                "--owner",
                "bench-owner",
                "--json",
                "--data-dir",
                str(data_dir),
            )
        )["token"]
        server = Server.start(data_dir)
        spy: subprocess.Popen[bytes] | None = None
        marks: dict[str, float] = {}

        def on_start() -> None:
            nonlocal spy
            marks["server_cpu0"] = cpu_seconds(server.process.pid)
            marks["started"] = time.monotonic()
            if args.py_spy:
                spy = start_py_spy(
                    args.py_spy_bin, server.process.pid, args.py_spy, args.py_spy_gil
                )

        try:
            warmups = shares(args.warmup, args.clients)
            counts = shares(args.proposals, args.clients)
            load_before = os.getloadavg()[0]
            if args.client_mode == "process":
                results = run_processes(server.url, token, warmups, counts, on_start)
            elif args.client_mode == "thread":
                results = run_threads(server.url, token, warmups, counts, on_start)
            else:
                results = asyncio.run(async_clients(server.url, token, warmups, counts, on_start))
            server_cpu = cpu_seconds(server.process.pid) - marks["server_cpu0"]
            load_after = os.getloadavg()[0]
            if spy is not None:
                stop_py_spy(spy)
            errors = [r.error for r in results if r.error]
            if errors:
                raise RuntimeError("client failed: " + "; ".join(errors))
            ledger_size = server.ledger_size()
        finally:
            if spy is not None and spy.poll() is None:
                spy.kill()
            server.stop()

    elapsed = max(r.ended for r in results) - min(r.started for r in results)
    latencies = sorted(ns / 1e6 for r in results for ns in r.latencies_ns)
    done = len(latencies)
    rate = done / elapsed
    p99 = percentile(latencies, 99)
    expected_ledger = STATEMENTS_PER_PROPOSAL * (args.proposals + args.warmup)
    return {
        "proposals": done,
        "clients": args.clients,
        "client_mode": args.client_mode,
        "warmup": args.warmup,
        "seconds": round(elapsed, 3),
        "proposals_per_second": round(rate, 1),
        "latency_ms": {
            "mean": round(statistics.fmean(latencies), 2),
            "p50": round(percentile(latencies, 50), 2),
            "p90": round(percentile(latencies, 90), 2),
            "p99": round(p99, 2),
            "max": round(latencies[-1], 2),
        },
        "ledger_size": ledger_size,
        "ledger_size_expected": expected_ledger,
        "cpu_ms_per_proposal": {
            "server": round(server_cpu / done * 1000, 3),
            "clients": round(sum(r.cpu_seconds for r in results) / done * 1000, 3),
        },
        "server_cores_busy": round(server_cpu / elapsed, 2),
        "machine": {
            "nproc": os.cpu_count(),
            "python": sys.version.split()[0],
            "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(load_after, 2),
        },
        "targets": {
            "rate": TARGET_RATE,
            "rate_ratio": round(rate / TARGET_RATE, 3),
            "p99_ms": TARGET_P99_MS,
            "p99_ratio": round(p99 / TARGET_P99_MS, 3),
            "met": rate >= TARGET_RATE and p99 <= TARGET_P99_MS,
        },
    }


def report(result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    cpu = result["cpu_ms_per_proposal"]
    tgt = result["targets"]
    machine = result["machine"]
    lines = [
        f"decision bench: {result['proposals']} proposals, {result['clients']} "
        f"{result['client_mode']} clients, {result['warmup']} warm-up "
        f"(nproc {machine['nproc']}, Python {machine['python']}, load "
        f"{machine['loadavg_1m_before']} -> {machine['loadavg_1m_after']})",
        f"  throughput     {result['proposals_per_second']:.1f} proposals/s "
        f"in {result['seconds']:.1f} s  (target >= {tgt['rate']:.0f}: "
        f"ratio {tgt['rate_ratio']:.3f})",
        f"  latency        p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f} ms  "
        f"p99 {lat['p99']:.2f} ms  max {lat['max']:.2f} ms  "
        f"(target p99 <= {tgt['p99_ms']:.0f} ms: ratio {tgt['p99_ratio']:.2f})",
        f"  ledger size    {result['ledger_size']} statements "
        f"(expected {result['ledger_size_expected']})",
        f"  CPU/proposal   server {cpu['server']:.2f} ms, clients {cpu['clients']:.2f} ms; "
        f"server busy {result['server_cores_busy']:.2f} cores",
        f"  targets met    {'yes' if tgt['met'] else 'no'}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--proposals", type=int, default=20000, help="timed proposals")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--warmup", type=int, default=500, help="untimed proposals first")
    parser.add_argument("--client-mode", choices=("process", "thread", "async"), default="process")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--py-spy", type=Path, help="write the server's collapsed stacks here")
    parser.add_argument("--py-spy-bin", default="py-spy", help="the py-spy executable")
    parser.add_argument(
        "--py-spy-gil", action="store_true", help="sample only the thread holding the GIL"
    )
    args = parser.parse_args(argv)
    if args.proposals < 1 or args.clients < 1 or args.warmup < 0:
        parser.error("--proposals and --clients must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    ledger_ok = result["ledger_size"] == result["ledger_size_expected"]
    print(json.dumps(result, indent=2) if args.json else report(result))
    if not ledger_ok:
        sys.stderr.write("ledger size differs from 3 statements per proposal\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
