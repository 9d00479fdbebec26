"""Evidence ledger throughput and offline bundle verification time, in process.

(a) Statements appended per second: opens a ControlPlane on a fresh temporary data dir
(SQLite, WAL) and appends signed control-plane statements through ``LedgerService.record``
inside ``ctx.write()`` transactions, 100 statements per transaction and 1 per transaction
(target >= 10,000 statements/s). To show where the time goes it also times the parts alone:
canonical JSON + Ed25519 DSSE signing (``SigningKey.sign_statement``) without the database.

(b) Time to verify a bundle: drives real proposals through the in-process services (an
allowed one through lease, runner-signed execution and verification to ``succeeded``, and a
denied one), exports their evidence bundles and times
``placet.evidence.verify.verify_bundle`` over many iterations (median, p99; target
<= 20 ms), plus the ``placet verify`` CLI process end to end for reference.

Usage (from the repository root)::

    .venv/bin/python bench/ledger.py                  # defaults below
    .venv/bin/python bench/ledger.py --statements 20000 --verify-iterations 500 --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from placet.domain.canonical import canonical_json, sha256_hex
from placet.domain.ids import new_id
from placet.domain.lifecycle import Stage, State, Transition
from placet.domain.signing import SigningKey, envelope_bytes
from placet.evidence.statements import statement
from placet.evidence.verify import verify_bundle
from placet.runners import shell
from placet.runners.capsule import capsule_digest
from placet.runners.statements import (
    Assignment,
    execution_statement,
    skipped_verification_statement,
)
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise

TARGET_APPEND_RATE = 10_000.0  # statements per second
TARGET_VERIFY_MS = 20.0


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


def open_plane(root: Path) -> ControlPlane:
    """A control plane on a fresh, initialised data dir under ``root``."""
    settings = load_settings(root / "data")
    initialise(settings)
    return ControlPlane.open(settings)


# ---- (a) appending -----------------------------------------------------------------------


def predicate_for(proposal_id: str) -> dict[str, Any]:
    """A predicate the size of a real proposal statement."""
    return {
        "proposal": {
            "kind": "shell",
            "targets": ["svc"],
            "environment": "staging",
            "intent": "bench",
            "parameters": {"argv": ["true"]},
            "agent": proposal_id,
        },
        "agent": {"id": proposal_id, "name": "bench-agent", "kind": "agent", "owner": "owner"},
    }


TRANSITIONS = [Transition("propose", None, State.PROPOSED, Stage.PROPOSAL)]


def append_rate(plane: ControlPlane, total: int, per_transaction: int) -> dict[str, Any]:
    """Append ``total`` signed statements, ``per_transaction`` per write transaction."""
    ledger = plane.ledger
    size0 = ledger.size()
    digest = sha256_hex(b"bench")
    cpu0 = time.process_time()
    begin = time.perf_counter()
    done = 0
    while done < total:
        batch = min(per_transaction, total - done)
        with plane.ctx.write() as conn:
            for _ in range(batch):
                proposal_id = new_id()
                ledger.record(
                    conn, proposal_id, digest, Stage.PROPOSAL, predicate_for(proposal_id),
                    TRANSITIONS,
                )  # fmt: skip
        done += batch
    elapsed = time.perf_counter() - begin
    cpu = time.process_time() - cpu0
    appended = ledger.size() - size0
    if appended != total:
        raise RuntimeError(f"appended {appended} statements, expected {total}")
    return {
        "statements": total,
        "per_transaction": per_transaction,
        "seconds": round(elapsed, 3),
        "statements_per_second": round(total / elapsed, 1),
        "cpu_us_per_statement": round(cpu / total * 1e6, 1),
        "ratio_to_target": round(total / elapsed / TARGET_APPEND_RATE, 3),
    }


def part_rate(total: int, work: Callable[[int], object]) -> dict[str, Any]:
    """Calls of ``work`` per second and its CPU time per call."""
    cpu0 = time.process_time()
    begin = time.perf_counter()
    for i in range(total):
        work(i)
    elapsed = time.perf_counter() - begin
    cpu = time.process_time() - cpu0
    return {"per_second": round(total / elapsed, 1), "cpu_us_each": round(cpu / total * 1e6, 1)}


def parts(plane: ControlPlane, total: int) -> dict[str, Any]:
    """The appending path's parts alone, without the database, to show where time goes."""
    key = plane.ctx.key
    digest = sha256_hex(b"bench")
    statements = [
        statement(pid, digest, Stage.PROPOSAL, {**predicate_for(pid), "transitions": []})
        for pid in (new_id() for _ in range(total))
    ]
    payloads = [canonical_json(s) for s in statements]
    envelopes = [key.sign_envelope(p) for p in payloads]
    return {
        "canonical_json(statement)": part_rate(total, lambda i: canonical_json(statements[i])),
        "ed25519 sign (raw)": part_rate(total, lambda i: key.sign(payloads[i])),
        "sign_envelope (DSSE)": part_rate(total, lambda i: key.sign_envelope(payloads[i])),
        "sign_statement (both)": part_rate(total, lambda i: key.sign_statement(statements[i])),
        "envelope_bytes (leaf)": part_rate(total, lambda i: envelope_bytes(envelopes[i])),
    }


# ---- (b) verifying -----------------------------------------------------------------------


SHELL = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "staging",
    "intent": "bench",
    "parameters": {"argv": ["true"]},
}
DENIED = {"kind": "drop_database", "targets": ["db"], "environment": "staging", "intent": "no"}


def full_lifecycle(plane: ControlPlane, workdir: Path) -> tuple[str, str]:
    """An allowed proposal run to ``succeeded`` by a runner, and a denied one: their ids."""
    add = plane.principals.add
    add("bench-owner", "human")
    agent, _ = add("bench-agent", "agent", "bench-owner")
    runner, _ = add("bench-runner", "runner", "bench-owner")
    runner_key = SigningKey.generate()
    plane.runners.register(runner, runner_key.public.b64, ["shell"])
    plane.runners.set_labels("bench-runner", {"env": [SHELL["environment"]]})

    allowed, _ = plane.proposals.propose(agent, SHELL)
    if allowed["state"] != "authorized":
        raise RuntimeError(f"expected an authorized proposal, got {allowed['state']}")
    lease = plane.runners.lease(runner, ["shell"])
    if lease is None or lease["proposal_id"] != allowed["id"]:
        raise RuntimeError(f"the runner did not lease proposal {allowed['id']}: {lease}")
    assignment = Assignment(
        proposal_id=allowed["id"],
        proposal_digest=allowed["digest"],
        runner=runner.ref(),
        lease_id=lease["lease_id"],
        fencing_token=lease["fencing_token"],
        capsule_digest=capsule_digest(lease["capsule"]),
    )
    result = shell.run(["true"], cwd=workdir, timeout=30)
    executed = execution_statement(assignment, "shell", result)
    state = plane.runners.report(
        runner,
        lease["lease_id"],
        lease["fencing_token"],
        runner_key.sign_statement(executed),
        Stage.EXECUTION,
    )
    if state["state"] != "verifying":
        raise RuntimeError(f"after execution the proposal is {state['state']}, not verifying")
    verified = skipped_verification_statement(
        assignment, execution_ok=result.ok, at=plane.ctx.clock()
    )
    state = plane.runners.report(
        runner,
        lease["lease_id"],
        lease["fencing_token"],
        runner_key.sign_statement(verified),
        Stage.VERIFICATION,
    )
    if state["state"] != "succeeded":
        raise RuntimeError(f"after verification the proposal is {state['state']}")

    denied, _ = plane.proposals.propose(agent, DENIED)
    if denied["state"] != "denied":
        raise RuntimeError(f"expected a denied proposal, got {denied['state']}")
    return allowed["id"], denied["id"]


def time_verify(bundle: dict[str, Any], plane: ControlPlane, iterations: int) -> dict[str, Any]:
    """verify_bundle over the parsed bundle, ``iterations`` times, against the trusted key."""
    trusted = plane.ctx.key.public
    report = verify_bundle(bundle, trusted)  # also a warm-up
    times: list[float] = []
    cpu0 = time.process_time()
    for _ in range(iterations):
        begin = time.perf_counter_ns()
        verify_bundle(bundle, trusted)
        times.append((time.perf_counter_ns() - begin) / 1e6)
    cpu = time.process_time() - cpu0
    times.sort()
    median = statistics.median(times)
    return {
        "final_state": report.final_state,
        "entries": len(bundle["entries"]),
        "bundle_bytes": len(json.dumps(bundle)),
        "iterations": iterations,
        "median_ms": round(median, 3),
        "p99_ms": round(percentile(times, 99), 3),
        "max_ms": round(times[-1], 3),
        "cpu_ms_each": round(cpu / iterations * 1000, 3),
        "ratio_to_target_p99": round(percentile(times, 99) / TARGET_VERIFY_MS, 4),
    }


def time_cli(bundle_path: Path, key_path: Path, runs: int) -> dict[str, Any]:
    """``placet verify FILE --key PUB --json`` as a fresh process, ``runs`` times."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}
    times: list[float] = []
    for _ in range(runs):
        begin = time.perf_counter()
        done = subprocess.run(
            [
                *(sys.executable, "-m", "placet", "verify", str(bundle_path)),
                *("--key", str(key_path), "--json"),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        times.append((time.perf_counter() - begin) * 1000)
        if done.returncode != 0 or not json.loads(done.stdout).get("ok"):
            raise RuntimeError(f"placet verify failed: {done.stdout}{done.stderr}")
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    bare = (time.perf_counter() - begin) * 1000
    times.sort()
    return {
        "runs": runs,
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(times[-1], 1),
        "bare_python_startup_ms": round(bare, 1),
    }


# ---- the run -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="placet-bench-ledger-") as tmp:
        root = Path(tmp)
        plane = open_plane(root / "append")
        try:
            append_rate(plane, min(1000, args.statements), 100)  # warm caches and the file
            appending = [
                append_rate(plane, args.statements, 100),
                append_rate(plane, args.statements_single, 1),
            ]
            sizes = plane.ledger.size()
            split = parts(plane, min(args.statements, 5000))
        finally:
            plane.close()

        workdir = root / "work"
        workdir.mkdir()
        plane = open_plane(root / "verify")
        try:
            allowed_id, denied_id = full_lifecycle(plane, workdir)
            bundles = {
                "succeeded": plane.ledger.export(allowed_id),
                "denied": plane.ledger.export(denied_id),
            }
            verifying = {
                name: time_verify(bundle, plane, args.verify_iterations)
                for name, bundle in bundles.items()
            }
            bundle_path = root / "succeeded.json"
            bundle_path.write_text(json.dumps(bundles["succeeded"], indent=2, sort_keys=True))
            cli = time_cli(bundle_path, plane.ctx.settings.public_key_path, args.cli_runs)
        finally:
            plane.close()
    return {
        "append": appending,
        "ledger_size_after": sizes,
        "append_parts": split,
        "verify_bundle": verifying,
        "verify_cli": cli,
        "machine": {
            "nproc": os.cpu_count(),
            "python": sys.version.split()[0],
            "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        },
        "targets": {
            "append_statements_per_second": TARGET_APPEND_RATE,
            "verify_p99_ms": TARGET_VERIFY_MS,
            "append_met": all(a["statements_per_second"] >= TARGET_APPEND_RATE for a in appending),
            "verify_met": all(v["p99_ms"] <= TARGET_VERIFY_MS for v in verifying.values()),
        },
    }


def report(result: dict[str, Any]) -> str:
    machine = result["machine"]
    lines = [
        f"ledger bench (nproc {machine['nproc']}, Python {machine['python']}, load "
        f"{machine['loadavg_1m_before']} -> {machine['loadavg_1m_after']})",
        "  (a) signed statements appended through LedgerService.record "
        f"(target >= {TARGET_APPEND_RATE:,.0f}/s)",
    ]
    for a in result["append"]:
        lines.append(
            f"      {a['per_transaction']:>4} per transaction: "
            f"{a['statements_per_second']:>9,.1f} statements/s "
            f"({a['statements']} in {a['seconds']:.2f} s, CPU {a['cpu_us_per_statement']} us "
            f"each; ratio {a['ratio_to_target']:.3f})"
        )
    for name, part in result["append_parts"].items():
        lines.append(
            f"      part alone, {name:<27} {part['per_second']:>9,.1f}/s "
            f"(CPU {part['cpu_us_each']} us each)"
        )
    lines.append(f"  (b) verify_bundle (target p99 <= {TARGET_VERIFY_MS:.0f} ms)")
    for name, v in result["verify_bundle"].items():
        lines.append(
            f"      {name:<9} bundle, {v['entries']} entries, {v['bundle_bytes']:,} bytes: "
            f"median {v['median_ms']:.2f} ms, p99 {v['p99_ms']:.2f} ms, max {v['max_ms']:.2f} ms "
            f"over {v['iterations']} (ratio {v['ratio_to_target_p99']:.3f})"
        )
    cli = result["verify_cli"]
    lines.append(
        f"      `placet verify` CLI end to end: median {cli['median_ms']:.0f} ms over "
        f"{cli['runs']} runs (bare `python -c pass`: {cli['bare_python_startup_ms']:.0f} ms)"
    )
    targets = result["targets"]
    lines.append(
        f"  targets met    append {'yes' if targets['append_met'] else 'no'}, "
        f"verify {'yes' if targets['verify_met'] else 'no'}"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--statements", type=int, default=20000, help="statements appended 100 per transaction"
    )
    parser.add_argument(
        "--statements-single", type=int, default=5000, help="statements appended 1 per transaction"
    )
    parser.add_argument("--verify-iterations", type=int, default=1000)
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if min(args.statements, args.statements_single, args.verify_iterations, args.cli_runs) < 1:
        parser.error("counts must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
