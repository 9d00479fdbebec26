"""End-to-end actions per second through 8 real runner processes, evidence on.

Starts a real ``placet serve`` subprocess on a fresh temporary data dir (SQLite in WAL mode,
evidence on), makes and registers 8 runners the way an operator does (``placet runner init
--dir``, ``placet runner register --labels env=staging``), starts 8 ``placet runner``
processes, then submits policy-allowed trivial actions (``shell`` ``["true"]`` in staging:
authorized within the POST) from concurrent submitters and waits until every one is final.
Every measured proposal must end ``succeeded`` with 7 statements in the ledger (proposal,
assessment, decision, capsule, execution, verification, closure).

Figures, all from the ledger's own timestamps (``ledger_entries.created_at``, milliseconds,
one server clock):

- actions/s: measured proposals / (last closure - first proposal statement);
- submission to succeeded: closure - proposal statement, per proposal;
- lease to report: execution report - capsule (lease), and verification report (the last
  report, which closes the proposal) - capsule;
- authorized to leased: capsule - decision (the time a capsule waits for a free runner).

Also prints CPU per action (server; runners including their actions) and what the server
wrote per action (/proc/PID/io), and the ratio to the target (>= 200 actions/s).

Usage (from the repository root)::

    .venv/bin/python bench/runners.py                       # 1,000 actions, 8 runners
    .venv/bin/python bench/runners.py --actions 300 --json
    .venv/bin/python bench/runners.py --runners 4 --submitters 2 --lease-wait 5
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import json
import math
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from decision import (  # bench/ is on sys.path when run
    clean_env,
    cpu_seconds,
    free_port,
    placet,
    start_py_spy,
    stop_py_spy,
)

TARGET_RATE = 200.0  # actions per second, end to end
BATCH = 4  # --steps: capsules per lease request and actions per report batch (a runner's slots)
STAGES = ("proposal", "assessment", "decision", "capsule", "execution", "verification", "closure")
TERMINAL = ("succeeded", "failed", "denied", "cancelled", "expired")
BODY: dict[str, Any] = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "staging",
    "intent": "bench",
    "parameters": {"argv": ["true"]},
}


# ---- processes -------------------------------------------------------------------------


def io_counters(pid: int) -> dict[str, int]:
    """The process's /proc/PID/io counters (syscw: write calls; wchar; write_bytes: to disk)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, value = line.partition(":")
        out[name.strip()] = int(value)
    return out


@dataclass
class Server:
    """A running ``placet serve`` subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, data_dir: Path, lease_seconds: float) -> Server:
        port = free_port()
        log = data_dir.parent / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "placet", "serve", "--data-dir", str(data_dir)),
                    *("--port", str(port), "--log-level", "warning"),
                    *("--lease-seconds", str(lease_seconds)),
                ],
                env=clean_env(),
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        server = cls(process, f"http://127.0.0.1:{port}", log)
        try:
            server.wait_healthy()
        except BaseException:
            stop(server.process)
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


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def make_runner(data_dir: Path, base: Path, index: int) -> tuple[Path, str]:
    """``placet runner init`` a state dir and ``register`` it (labels env=staging); its token."""
    state = base / f"runner-{index}"
    placet("runner", "init", "--dir", str(state), "--json")
    registered = placet(
        *("runner", "register", f"bench-runner-{index}", "--key", str(state / "runner.pub")),
        *("--owner", "bench-owner", "--labels", "env=staging"),
        *("--data-dir", str(data_dir), "--json"),
    )
    return state, str(json.loads(registered)["token"])


def start_runner(
    url: str, token: str, state: Path, work: Path, args: argparse.Namespace
) -> subprocess.Popen[bytes]:
    log = state / "runner.log"
    with log.open("wb") as sink:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "placet", "runner", "--server", url, "--token", token),
                *("--dir", str(state), "--workdir", str(work), "--log-level", "warning"),
                *("--poll-interval", str(args.poll_interval)),
                *("--lease-wait", str(args.lease_wait)),
                *("--slots", str(args.slots)),
            ],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


# ---- the ledger, read directly (read-only; WAL readers never block the server) ---------


def find_database(data_dir: Path) -> Path:
    """The SQLite file of the data dir (the one holding ledger_entries)."""
    for candidate in sorted(data_dir.glob("*.db")) + sorted(data_dir.glob("*.sqlite*")):
        if candidate.suffix in (".db", ".sqlite", ".sqlite3"):
            with contextlib.closing(sqlite3.connect(f"file:{candidate}?mode=ro", uri=True)) as c:
                names = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
            if "ledger_entries" in names:
                return candidate
    raise RuntimeError(f"no SQLite database with ledger_entries in {data_dir}")


def connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


def registered_runners(db: Path) -> int:
    """How many bench runners have presented their kinds (each does so as it starts)."""
    with contextlib.closing(connect(db)) as conn:
        rows = conn.execute(
            "SELECT kinds FROM principals WHERE name LIKE 'bench-runner-%'"
        ).fetchall()
    return sum(1 for (kinds,) in rows if kinds and kinds != "null")


def states_of(db: Path, ids: list[str]) -> dict[str, str]:
    with contextlib.closing(connect(db)) as conn:
        out: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                conn.execute(f"SELECT id, state FROM proposals WHERE id IN ({marks})", chunk)
            )
    return out


def wait_final(db: Path, ids: list[str], timeout: float) -> dict[str, str]:
    """Poll the proposals table (every 50 ms) until every id is in a terminal state."""
    deadline = time.monotonic() + timeout
    while True:
        states = states_of(db, ids)
        if len(states) == len(ids) and all(s in TERMINAL for s in states.values()):
            return states
        if time.monotonic() > deadline:
            pending = sum(1 for s in states.values() if s not in TERMINAL)
            raise RuntimeError(f"{pending} of {len(ids)} proposals not final after {timeout}s")
        time.sleep(0.05)  # a benchmark's progress poll, not test synchronisation


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def stage_times(db: Path, ids: list[str]) -> dict[str, dict[str, float]]:
    """For each proposal, the ledger time of each stage's statement (seconds since epoch)."""
    out: dict[str, dict[str, float]] = {pid: {} for pid in ids}
    with contextlib.closing(connect(db)) as conn:
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            query = (
                "SELECT proposal_id, stage, created_at FROM ledger_entries"
                f" WHERE proposal_id IN ({marks})"
            )
            for pid, stage, created in conn.execute(query, chunk):
                if stage in out[pid]:
                    raise RuntimeError(f"proposal {pid} has two {stage} statements")
                out[pid][stage] = parse_time(created)
    return out


# ---- submission --------------------------------------------------------------------------


def submit(url: str, token: str, count: int, submitters: int) -> list[str]:
    """POST ``count`` proposals from ``submitters`` threads; every one must be authorized."""
    headers = {"Authorization": f"Bearer {token}"}
    shares = [count // submitters + (1 if i < count % submitters else 0) for i in range(submitters)]

    def one(n: int) -> list[str]:
        ids = []
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for _ in range(n):
                response = client.post("/v1/proposals", json=BODY)
                if response.status_code != 201 or response.json()["state"] != "authorized":
                    raise RuntimeError(f"HTTP {response.status_code}: {response.text}")
                ids.append(str(response.json()["id"]))
        return ids

    with concurrent.futures.ThreadPoolExecutor(submitters) as pool:
        return [pid for ids in pool.map(one, shares) for pid in ids]


def breakdown(
    db: Path,
    server: Server,
    token: str,
    runners: list[subprocess.Popen[bytes]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Server cost per action split in two measured phases: the runners stopped (SIGSTOP)
    while ``--breakdown`` proposals are submitted and decided, then resumed (SIGCONT) to
    lease, run and report them. CPU ms and write calls / bytes per action in each phase."""
    pid = server.process.pid
    n = args.breakdown
    for runner in runners:
        os.kill(runner.pid, signal.SIGSTOP)
    try:
        cpu0, io0 = cpu_seconds(pid), io_counters(pid)
        started = time.monotonic()
        ids = submit(server.url, token, n, args.submitters)
        decided = time.monotonic()
        cpu1, io1 = cpu_seconds(pid), io_counters(pid)
    finally:
        spy = (
            start_py_spy(args.py_spy_bin, pid, args.py_spy_drain, False)
            if args.py_spy_drain
            else None
        )
        for runner in runners:
            os.kill(runner.pid, signal.SIGCONT)
    wait_final(db, ids, args.timeout)
    ended = time.monotonic()
    if spy is not None:
        stop_py_spy(spy)
    cpu2, io2 = cpu_seconds(pid), io_counters(pid)

    def phase(c0: float, c1: float, i0: dict[str, int], i1: dict[str, int], s: float) -> Any:
        return {
            "server_cpu_ms": round((c1 - c0) / n * 1000, 2),
            "server_write_calls": round((i1["syscw"] - i0["syscw"]) / n, 1),
            "server_bytes_written": round((i1["wchar"] - i0["wchar"]) / n),
            "per_second": round(n / s, 1),
        }

    return {
        "actions": n,
        "submit_and_decide": phase(cpu0, cpu1, io0, io1, decided - started),
        "lease_run_report": phase(cpu1, cpu2, io1, io2, ended - decided),
    }


# ---- the server's share, step by step, in process (--steps) ----------------------------


def steps(count: int) -> dict[str, Any]:
    """CPU and SQL statements per step of one action in the service layer, without HTTP.

    Runs propose, lease and the two reports through ``ControlPlane`` on a fresh data dir
    (the runner's statements signed with a real key, the action itself not run), after 20
    unmeasured actions; counts statements with SQLAlchemy's ``before_cursor_execute``.
    """
    import base64
    from collections import Counter, defaultdict

    from sqlalchemy import event

    from placet.domain.lifecycle import Stage
    from placet.domain.signing import SigningKey
    from placet.runners.actions.base import ActionOutcome
    from placet.runners.capsule import capsule_digest
    from placet.runners.statements import (
        Assignment,
        execution_statement,
        skipped_verification_statement,
    )
    from placet.runners.times import utc_now
    from placet.service.config import load_settings
    from placet.service.control_plane import ControlPlane, initialise

    cpu: defaultdict[str, float] = defaultdict(float)
    sql: Counter[str] = Counter()
    current = [""]
    with tempfile.TemporaryDirectory(prefix="placet-bench-steps-") as tmp:
        settings = load_settings(Path(tmp) / "data")
        initialise(settings)
        plane = ControlPlane.open(settings)
        try:
            graph = Path(tmp) / "graph.yaml"
            graph.write_text("placet-graph: v1\nnodes:\n  svc: {kind: service, owner: team:b}\n")
            plane.graph.import_paths([graph], source="bench")
            plane.principals.add("bench-owner", "human", None, (), ("approver",))
            agent_token = plane.principals.add("bench-agent", "agent", "bench-owner")[1]
            runner_token = plane.principals.add("bench-runner", "runner", "bench-owner")[1]
            plane.runners.set_labels("bench-runner", {"env": ["staging"]})
            agent = plane.principals.authenticate(agent_token)
            runner = plane.principals.authenticate(runner_token)
            key = SigningKey.generate()
            me = plane.runners.register(runner, key.public.b64, ["shell"])["runner"]
            event.listen(
                plane.ctx.engine, "before_cursor_execute", lambda *_a, **_k: sql.update(current)
            )

            def timed(name: str, work: Any) -> Any:
                current[0] = name
                begin = time.process_time()
                result = work()
                cpu[name] += time.process_time() - begin
                return result

            rounds = max(1, count // BATCH)
            for i in range(rounds + 5):
                if i == 5:
                    cpu.clear()
                    sql.clear()
                for _ in range(BATCH):
                    timed(
                        "authenticate (each request)",
                        lambda: plane.principals.authenticate(runner_token),
                    )
                    timed(
                        "propose (POST /v1/proposals)",
                        lambda: plane.proposals.propose(agent, BODY),
                    )
                timed(
                    "any_authorized (long-poll probe)",
                    lambda: plane.runners.any_authorized(["shell"]),
                )
                offers = timed(
                    f"lease {BATCH} in one request",
                    lambda: plane.runners.lease_many(runner, ["shell"], BATCH),
                )
                items = []
                for lease in offers:
                    payload = json.loads(base64.b64decode(lease["capsule"]["payload"]))
                    assignment = Assignment(
                        proposal_id=lease["proposal_id"],
                        proposal_digest=payload["proposal_digest"],
                        runner=me,
                        lease_id=lease["lease_id"],
                        fencing_token=lease["fencing_token"],
                        capsule_digest=capsule_digest(lease["capsule"]),
                    )
                    now = utc_now()
                    outcome = ActionOutcome(ok=True, started_at=now, finished_at=now, exit_code=0)
                    said = execution_statement(
                        assignment, "shell", outcome, parameters=BODY["parameters"]
                    )
                    done = skipped_verification_statement(assignment, execution_ok=True, at=now)
                    for number, (stage, statement) in enumerate(
                        ((Stage.EXECUTION, said), (Stage.VERIFICATION, done)), start=1
                    ):
                        items.append(
                            {
                                "lease_id": lease["lease_id"],
                                "stage": stage.value,
                                "fencing_token": lease["fencing_token"],
                                "sequence": number,
                                "envelope": key.sign_statement(statement),
                            }
                        )
                answers = timed(
                    f"report {2 * BATCH} statements in one request",
                    functools.partial(plane.runners.report_many, runner, items),
                )
                if [a.get("state") for a in answers[1::2]] != ["succeeded"] * BATCH:
                    raise RuntimeError(f"expected succeeded, got {answers}")
        finally:
            plane.close()
    actions = rounds * BATCH
    return {
        name: {
            "cpu_ms": round(cpu[name] / actions * 1000, 2),
            "sql_statements": round(sql[name] / actions, 1),
        }
        for name in cpu
    }


def steps_report(result: dict[str, Any], count: int) -> str:
    lines = [f"service layer per action, in process, no HTTP ({count} actions):"]
    for name, figures in result.items():
        lines.append(
            f"  {name:<34} CPU {figures['cpu_ms']:.2f} ms  "
            f"SQL statements {figures['sql_statements']:.1f}"
        )
    return "\n".join(lines)


# ---- the run -----------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


def summary(values_s: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values_s)
    return {
        "mean": round(statistics.fmean(ms), 1),
        "p50": round(percentile(ms, 50), 1),
        "p90": round(percentile(ms, 90), 1),
        "p99": round(percentile(ms, 99), 1),
        "max": round(ms[-1], 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="placet-bench-runners-") as tmp:
        base = Path(tmp)
        data_dir = base / "data"
        placet("init", "--data-dir", str(data_dir))
        graph = base / "placet-graph.yaml"
        graph.write_text("placet-graph: v1\nnodes:\n  svc: {kind: service, owner: team:bench}\n")
        placet("graph", "import", str(graph), "--data-dir", str(data_dir))
        placet("principal", "add", "bench-owner", "--kind", "human", "--data-dir", str(data_dir))
        token = json.loads(
            placet(
                *("principal", "add", "bench-agent", "--kind", "agent", "--owner", "bench-owner"),
                *("--json", "--data-dir", str(data_dir)),
            )
        )["token"]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            made = list(pool.map(lambda i: make_runner(data_dir, base, i), range(args.runners)))
        db = find_database(data_dir)
        server = Server.start(data_dir, args.lease_seconds)
        work = base / "work"
        work.mkdir()
        runners: list[subprocess.Popen[bytes]] = []
        try:
            runners = [start_runner(server.url, t, s, work, args) for s, t in made]
            deadline = time.monotonic() + 120
            while registered_runners(db) < args.runners:
                if any(r.poll() is not None for r in runners) or time.monotonic() > deadline:
                    raise RuntimeError("a runner did not start: see its runner.log")
                time.sleep(0.05)
            if args.warmup:
                warm = submit(server.url, token, args.warmup, args.submitters)
                wait_final(db, warm, args.timeout)
            load_before = os.getloadavg()[0]
            pid = server.process.pid
            server_cpu0 = cpu_seconds(pid)
            io0 = io_counters(pid)
            runner_cpu0 = sum(cpu_seconds(r.pid, children=True) for r in runners)
            spy = start_py_spy(args.py_spy_bin, pid, args.py_spy, False) if args.py_spy else None
            started = time.monotonic()
            ids = submit(server.url, token, args.actions, args.submitters)
            submitted = time.monotonic()
            states = wait_final(db, ids, args.timeout)
            ended = time.monotonic()
            if spy is not None:
                stop_py_spy(spy)
            server_cpu = cpu_seconds(pid) - server_cpu0
            io1 = io_counters(pid)
            runner_cpu = sum(cpu_seconds(r.pid, children=True) for r in runners) - runner_cpu0
            load_after = os.getloadavg()[0]
            times = stage_times(db, ids)
            split = breakdown(db, server, token, runners, args) if args.breakdown else None
        finally:
            for runner in runners:
                if runner.poll() is None:
                    runner.terminate()
            for runner in runners:
                stop(runner)
            stop(server.process)

    failed = {pid: s for pid, s in states.items() if s != "succeeded"}
    missing = [pid for pid, t in times.items() if set(t) != set(STAGES)]
    n = len(ids)
    first = min(t["proposal"] for t in times.values())
    last = max(t["closure"] for t in times.values())
    ledger_seconds = last - first
    rate = n / ledger_seconds
    io = {k: io1[k] - io0[k] for k in ("syscw", "wchar", "write_bytes")}
    return {
        "breakdown": split,
        "actions": n,
        "runners": args.runners,
        "submitters": args.submitters,
        "warmup": args.warmup,
        "lease_wait": args.lease_wait,
        "not_succeeded": len(failed),
        "incomplete_evidence": len(missing),
        "seconds": round(ledger_seconds, 3),
        "wall_seconds": round(ended - started, 3),
        "submit_seconds": round(submitted - started, 3),
        "actions_per_second": round(rate, 1),
        "latency_ms": {
            "submitted_to_succeeded": summary(
                [t["closure"] - t["proposal"] for t in times.values()]
            ),
            "authorized_to_leased": summary([t["capsule"] - t["decision"] for t in times.values()]),
            "lease_to_execution_report": summary(
                [t["execution"] - t["capsule"] for t in times.values()]
            ),
            "lease_to_final_report": summary(
                [t["verification"] - t["capsule"] for t in times.values()]
            ),
        },
        "per_action": {
            "server_cpu_ms": round(server_cpu / n * 1000, 2),
            "runner_cpu_ms": round(runner_cpu / n * 1000, 2),
            "server_write_calls": round(io["syscw"] / n, 1),
            "server_bytes_written": round(io["wchar"] / n),
            "server_disk_bytes": round(io["write_bytes"] / n),
        },
        "server_cores_busy": round(server_cpu / (ended - started), 2),
        "runner_cores_busy": round(runner_cpu / (ended - started), 2),
        "machine": {
            "nproc": os.cpu_count(),
            "python": sys.version.split()[0],
            "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(load_after, 2),
        },
        "targets": {
            "rate": TARGET_RATE,
            "rate_ratio": round(rate / TARGET_RATE, 3),
            "met": rate >= TARGET_RATE and not failed and not missing,
        },
    }


def report(result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    per = result["per_action"]
    tgt = result["targets"]
    machine = result["machine"]

    def line(name: str, key: str) -> str:
        s = lat[key]
        return (
            f"  {name:<26} p50 {s['p50']:.1f} ms  p90 {s['p90']:.1f} ms  p99 {s['p99']:.1f} ms"
            f"  max {s['max']:.1f} ms"
        )

    return "\n".join(
        [
            f"runner bench: {result['actions']} actions, {result['runners']} runner processes, "
            f"{result['submitters']} submitters, {result['warmup']} warm-up "
            f"(nproc {machine['nproc']}, Python {machine['python']}, load "
            f"{machine['loadavg_1m_before']} -> {machine['loadavg_1m_after']})",
            f"  throughput     {result['actions_per_second']:.1f} actions/s over "
            f"{result['seconds']:.1f} s of ledger time (wall {result['wall_seconds']:.1f} s, "
            f"submission {result['submit_seconds']:.1f} s)  "
            f"(target >= {tgt['rate']:.0f}: ratio {tgt['rate_ratio']:.3f})",
            line("submitted -> succeeded", "submitted_to_succeeded"),
            line("authorized -> leased", "authorized_to_leased"),
            line("lease -> execution report", "lease_to_execution_report"),
            line("lease -> final report", "lease_to_final_report"),
            f"  per action     server CPU {per['server_cpu_ms']:.1f} ms, runners CPU "
            f"{per['runner_cpu_ms']:.1f} ms; server write calls {per['server_write_calls']:.1f}, "
            f"{per['server_bytes_written']} B written ({per['server_disk_bytes']} B to disk)",
            f"  busy cores     server {result['server_cores_busy']:.2f}, "
            f"runners {result['runner_cores_busy']:.2f}",
            f"  outcome        {result['not_succeeded']} not succeeded, "
            f"{result['incomplete_evidence']} with incomplete evidence",
            f"  target met     {'yes' if tgt['met'] else 'no'}",
            *split_lines(result["breakdown"]),
        ]
    )


def split_lines(split: dict[str, Any] | None) -> list[str]:
    if not split:
        return []
    lines = [f"  server cost by phase ({split['actions']} more actions, runners stopped first):"]
    for name, key in (
        ("submit + decide", "submit_and_decide"),
        ("lease, run, report", "lease_run_report"),
    ):
        p = split[key]
        lines.append(
            f"    {name:<20} CPU {p['server_cpu_ms']:.1f} ms, write calls "
            f"{p['server_write_calls']:.1f}, {p['server_bytes_written']} B written per action; "
            f"{p['per_second']:.1f}/s"
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--actions", type=int, default=1000, help="timed actions")
    parser.add_argument("--runners", type=int, default=8, help="runner processes")
    parser.add_argument("--submitters", type=int, default=4, help="concurrent submitting clients")
    parser.add_argument("--slots", type=int, default=4, help="actions each runner runs at a time")
    parser.add_argument("--warmup", type=int, default=80, help="untimed actions first")
    parser.add_argument("--lease-wait", type=float, default=5.0, help="runner long-poll seconds")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="runner idle pause")
    parser.add_argument("--lease-seconds", type=float, default=30.0, help="server lease time")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (s)")
    parser.add_argument(
        "--breakdown", type=int, default=200, help="actions for the split phase (0: skip)"
    )
    parser.add_argument(
        "--steps", type=int, default=0, help="only measure the service steps in process, N actions"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--py-spy", type=Path, help="sample the server into this raw stack file")
    parser.add_argument("--py-spy-bin", default="py-spy", help="the py-spy executable")
    parser.add_argument(
        "--py-spy-drain", type=Path, help="sample the server while the runners drain --breakdown"
    )
    args = parser.parse_args(argv)
    if args.actions < 1 or args.runners < 1 or args.submitters < 1 or args.warmup < 0:
        parser.error("--actions, --runners, --submitters must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join([".venv/bin/python", "bench/runners.py", *(argv or sys.argv[1:])])
    print(f"$ {command}", file=sys.stderr)
    if args.steps:
        figures = steps(args.steps)
        print(json.dumps(figures, indent=2) if args.json else steps_report(figures, args.steps))
        return 0
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else report(result))
    if result["not_succeeded"] or result["incomplete_evidence"]:
        sys.stderr.write("some actions did not succeed or lack a statement in the ledger\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
