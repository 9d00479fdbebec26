"""Where the time goes: in-process workloads to profile, and a summary of py-spy stacks.

Subcommands::

    workload {propose,append,verify} [--count N]
        Run one workload in this process on a fresh temporary data dir, for an external
        sampler: ``py-spy record --format raw -o out.txt -- python bench/hotspots.py workload
        propose``. ``propose`` is ProposalService.propose (what POST /v1/proposals runs, without
        HTTP); ``append`` is LedgerService.record, 100 per transaction; ``verify`` is
        verify_bundle over a succeeded proposal's bundle.
    cprofile {propose,append,verify} [--count N] [--top N]
        The same workload under cProfile; prints the top functions by own time.
    contention [--threads N] [--count N]
        ProposalService.propose from 1 thread, then from N threads at once (as the server's
        threadpool runs requests), then from N threads that take a process-wide lock before
        the write transaction: shows what waiting in SQLite's busy handler (BEGIN IMMEDIATE
        polls with sleeps of 1, 2, 5, 10... ms) costs in throughput and tail latency.
    micro [--count N]
        Costs behind two suggestions, measured without changing placet: one ledger row
        inserted as ``insert().values(...)`` (what LedgerService does) vs a constant
        ``insert()`` with a parameter dict vs exec_driver_sql; canonical JSON of a statement
        and an envelope by the ``rfc8785`` package vs placet's ``canonical_json`` (which
        takes json's C encoder when the bytes are the same; checked here); rfc3339(now).
    collapsed FILE [--top N]
        Summarise py-spy collapsed stacks (``--format raw``): samples per category
        (each sample goes to the innermost frame that names one), and the top leaf frames.

Usage (from the repository root)::

    .venv/bin/python bench/hotspots.py cprofile propose --count 500
    /tmp/pyspy/bin/py-spy record --rate 250 --format raw -o /tmp/propose.txt -- \\
        .venv/bin/python bench/hotspots.py workload propose --count 3000
    .venv/bin/python bench/hotspots.py collapsed /tmp/propose.txt --only 'loop \\(hotspots'
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rfc8785
from ledger import TRANSITIONS, full_lifecycle, open_plane, predicate_for
from sqlalchemy import Connection

from placet.domain.canonical import canonical_json, sha256_hex
from placet.domain.ids import new_id
from placet.domain.lifecycle import Stage
from placet.domain.principals import Principal
from placet.domain.signing import envelope_bytes
from placet.evidence.merkle import leaf_hash
from placet.evidence.statements import statement
from placet.evidence.verify import verify_bundle
from placet.service.clock import rfc3339
from placet.service.context import Context
from placet.service.control_plane import ControlPlane
from placet.store.tables import ledger_entries

BODY = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "staging",
    "intent": "bench",
    "parameters": {"argv": ["true"]},
}

# Innermost match wins, so list the specific before the general. A pattern is searched in
# py-spy's frame text "function (path:line)"; C calls show as the Python frame calling them.
CATEGORIES: list[tuple[str, str]] = [
    ("canonical JSON (rfc8785)", r"rfc8785/"),
    ("signing (securesystemslib DSSE, Ed25519)", r"securesystemslib/|cryptography/|sign\("),
    ("SQLite commit", r"\b(do_commit|_commit_impl|commit) \(sqlalchemy/"),
    ("SQLite execute (incl. BEGIN IMMEDIATE)", r"\bdo_execute(_no_params)? \(sqlalchemy/"),
    ("SQLAlchemy Core (build, compile, cache key, rows)", r"sqlalchemy/"),
    ("policy evaluation (regopy / rego-cpp)", r"regopy/|placet/policy/"),
    ("HTTP server (uvicorn, h11)", r"uvicorn/|h11/"),
    ("FastAPI / Starlette / pydantic", r"fastapi/|starlette/|pydantic"),
    ("threadpool handoff (anyio)", r"anyio/|concurrent/futures/"),
    ("asyncio event loop", r"asyncio/|selectors\.py"),
    ("stdlib json", r"json/"),
    ("datetime / clock formatting", r"placet/service/clock\.py|strftime|isoformat"),
    ("lifecycle state machine", r"placet/domain/lifecycle\.py"),
    ("other placet code", r"placet/"),
]
_COMPILED = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]


# ---- workloads -----------------------------------------------------------------------------


@contextmanager
def fresh_plane() -> Iterator[tuple[ControlPlane, Path]]:
    with tempfile.TemporaryDirectory(prefix="placet-hotspots-") as tmp:
        plane = open_plane(Path(tmp))
        try:
            yield plane, Path(tmp)
        finally:
            plane.close()


def run_workload(name: str, count: int, wrap: Callable[[Callable[[], None]], None]) -> float:
    """Set up workload ``name``, run its loop of ``count`` operations under ``wrap``; seconds."""
    with fresh_plane() as (plane, root):
        if name == "propose":
            plane.principals.add("owner", "human")
            agent, _ = plane.principals.add("agent", "agent", "owner")
            for _ in range(50):
                plane.proposals.propose(agent, BODY)

            def loop() -> None:
                for _ in range(count):
                    plane.proposals.propose(agent, BODY)

        elif name == "append":
            digest = sha256_hex(b"bench")

            def loop() -> None:
                for _ in range(0, count, 100):
                    with plane.ctx.write() as conn:
                        for _ in range(100):
                            pid = new_id()
                            plane.ledger.record(
                                conn, pid, digest, Stage.PROPOSAL, predicate_for(pid), TRANSITIONS
                            )

        elif name == "verify":
            workdir = root / "work"
            workdir.mkdir()
            allowed, _ = full_lifecycle(plane, workdir)
            bundle = plane.ledger.export(allowed)
            trusted = plane.ctx.key.public

            def loop() -> None:
                for _ in range(count):
                    verify_bundle(bundle, trusted)

        else:
            raise SystemExit(f"unknown workload {name!r}")
        begin = time.perf_counter()
        wrap(loop)
        return time.perf_counter() - begin


class LockedContext(Context):
    """A Context whose write transactions queue on a process-wide lock before BEGIN."""

    lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.lock, super().write() as conn:
            yield conn


def concurrent_proposals(
    plane: ControlPlane, agent: Principal, width: int, count: int
) -> tuple[list[float], float, float]:
    """``count`` proposals from ``width`` threads at once: (latencies, seconds, CPU seconds)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        mine = []
        for _ in range(n):
            begin = time.perf_counter()
            plane.proposals.propose(agent, BODY)
            mine.append(time.perf_counter() - begin)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client, args=(count // width,)) for _ in range(width)]
    cpu0 = time.process_time()
    begin = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(latencies), time.perf_counter() - begin, time.process_time() - cpu0


def contention(threads: int, count: int) -> str:
    """Throughput and latency of propose from 1 thread, N threads, and N locked threads."""
    lines = [f"propose in process, {count} per run ({threads} threads where concurrent):"]
    for label, width, locked in (
        ("1 thread", 1, False),
        (f"{threads} threads", threads, False),
        (f"{threads} threads + writer lock", threads, True),
    ):
        with fresh_plane() as (plane, _):
            if locked:
                plane = ControlPlane(LockedContext(**vars(plane.ctx)))
            plane.principals.add("owner", "human")
            agent, _ = plane.principals.add("agent", "agent", "owner")
            for _ in range(50):
                plane.proposals.propose(agent, BODY)
            latencies, elapsed, cpu = concurrent_proposals(plane, agent, width, count)
        done = len(latencies)
        lines.append(
            f"  {label:<28} {done / elapsed:7.1f}/s  p50 {1000 * latencies[done // 2]:6.2f} ms"
            f"  p99 {1000 * latencies[min(done - 1, int(done * 0.99))]:7.2f} ms"
            f"  max {1000 * latencies[-1]:7.2f} ms  CPU {1000 * cpu / done:.2f} ms each"
        )
    return "\n".join(lines)


def per_call_us(count: int, work: Callable[[int], object]) -> float:
    """Microseconds of CPU per call of ``work``."""
    cpu0 = time.process_time()
    for i in range(count):
        work(i)
    return (time.process_time() - cpu0) / count * 1e6


INSERT_SQL = (
    "INSERT INTO ledger_entries (leaf_index, proposal_id, stage, leaf_hash, envelope, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def insert_styles(conn: Connection, data: bytes, pid: str, count: int, base: int) -> list[str]:
    """CPU per ledger row inserted three ways, in one transaction."""
    insert = ledger_entries.insert()

    def row(i: int) -> dict[str, object]:
        return {
            "leaf_index": base + i,
            "proposal_id": pid,
            "stage": "proposal",
            "leaf_hash": leaf_hash(data),
            "envelope": data,
            "created_at": "2026-01-01T00:00:00.000Z",
        }

    def as_now(i: int) -> object:
        return conn.execute(insert.values(**row(i)))

    def constant(i: int) -> object:
        return conn.execute(insert, row(i + count))

    def driver(i: int) -> object:
        return conn.exec_driver_sql(INSERT_SQL, tuple(row(i + 2 * count).values()))

    return [
        f"  ledger row insert, {label:<34} {per_call_us(count, work):8.1f} us"
        for label, work in (
            ("insert().values(**row) (as now)", as_now),
            ("constant insert(), row as params", constant),
            ("exec_driver_sql, positional", driver),
        )
    ]


def micro(count: int) -> str:
    """Insert styles and canonical JSON implementations, CPU microseconds per call."""
    lines = [f"CPU per call, {count} calls each:"]
    with fresh_plane() as (plane, _):
        digest = sha256_hex(b"bench")
        pid = new_id()
        document = statement(pid, digest, Stage.PROPOSAL, {**predicate_for(pid), "transitions": []})
        envelope = plane.ctx.key.sign_statement(document)
        with plane.ctx.write() as conn:
            lines += insert_styles(conn, envelope_bytes(envelope), pid, count, 10 * count)
        values: list[tuple[str, Any]] = [("statement", document), ("envelope", envelope)]
        for label, value in values:
            if canonical_json(value) != bytes(rfc8785.dumps(value)):
                raise RuntimeError(f"canonical_json differs from rfc8785 for the {label}")

            def reference(_i: int, v: Any = value) -> object:
                return rfc8785.dumps(v)

            def ours(_i: int, v: Any = value) -> object:
                return canonical_json(v)

            lines.append(
                f"  canonical JSON of a {label:<9}  rfc8785.dumps "
                f"{per_call_us(count, reference):6.1f} us, placet canonical_json "
                f"{per_call_us(count, ours):6.1f} us (same bytes)"
            )
        clock = plane.ctx.clock
        stamp = per_call_us(count, lambda _i: rfc3339(clock()))
        lines.append(f"  rfc3339(clock()) {stamp:8.1f} us (twice per statement)")
    return "\n".join(lines)


# ---- py-spy stacks -------------------------------------------------------------------------


def category(frames: list[str]) -> str:
    """The category of the innermost frame that names one (frames are root first)."""
    for frame in reversed(frames):
        for name, pattern in _COMPILED:
            if pattern.search(frame):
                return name
    return "other (interpreter, stdlib)"


def summarise(path: Path, top: int, only: str | None = None) -> str:
    """Samples per category and the top leaf frames; ``only`` keeps stacks matching it."""
    keep = re.compile(only) if only else None
    by_category: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if keep is not None and not keep.search(stack):
            continue
        frames = stack.split(";")
        # py-spy prefixes each stack with the thread, e.g. "process 12:\"python\";thread (1)"
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        total += count
        by_category[category(frames)] += count
        leaves[re.sub(r":\d+\)$", ")", frames[-1]) if frames else "?"] += count
    if not total:
        return f"{path}: no samples"
    lines = [f"{path}: {total} samples", "  by category (innermost matching frame):"]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in by_category.most_common()]
    lines.append(f"  top {top} leaf frames (own time):")
    lines += [f"    {100 * n / total:5.1f}%  {leaf}" for leaf, n in leaves.most_common(top)]
    return "\n".join(lines)


# ---- command line --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("workload", "cprofile"):
        p = sub.add_parser(command)
        p.add_argument("name", choices=("propose", "append", "verify"))
        p.add_argument("--count", type=int, default=2000)
        p.add_argument("--top", type=int, default=25)
    p = sub.add_parser("contention")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--count", type=int, default=2000)
    p = sub.add_parser("micro")
    p.add_argument("--count", type=int, default=5000)
    p = sub.add_parser("collapsed")
    p.add_argument("file", type=Path)
    p.add_argument("--top", type=int, default=20)
    p.add_argument(
        "--only",
        help="keep only stacks matching this regex, e.g. 'loop \\(hotspots' for the measured "
        "loop of a workload (drops start-up and imports)",
    )
    args = parser.parse_args(argv)

    if args.command == "contention":
        print(contention(args.threads, args.count))
        return 0
    if args.command == "micro":
        print(micro(args.count))
        return 0
    if args.command == "collapsed":
        print(summarise(args.file, args.top, args.only))
        return 0
    if args.command == "workload":
        cpu0 = time.process_time()
        seconds = run_workload(args.name, args.count, lambda loop: loop())
        cpu = time.process_time() - cpu0
        print(
            f"{args.name}: {args.count} in {seconds:.2f} s = {args.count / seconds:,.1f}/s "
            f"(process CPU incl. setup {cpu:.2f} s)"
        )
        return 0
    profile = cProfile.Profile()

    def profiled(loop: Callable[[], None]) -> None:
        profile.enable()
        try:
            loop()
        finally:
            profile.disable()

    seconds = run_workload(args.name, args.count, profiled)
    print(f"{args.name}: {args.count} in {seconds:.2f} s under cProfile")
    stats = pstats.Stats(profile, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
