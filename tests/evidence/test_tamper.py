"""Tampering with a real bundle in any way the issue names makes verification fail.

Bundles come from real runs (allowed, approved, denied): real Ed25519 keys, real signed
statements, a real Merkle log and real checkpoints (see records.py). Then: every sampled
single-byte change of every envelope, every removed entry and every swapped pair of
entries must fail, naming the entry; and a later checkpoint must be consistent with an
earlier one while a rewritten history must not be.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from placet.domain.canonical import canonical_json
from placet.domain.signing import envelope_bytes
from placet.evidence.checkpoint import parse_checkpoint, verify_checkpoint, verify_consistent
from placet.evidence.errors import CheckpointError
from placet.evidence.verify import VerificationError, verify_bundle

from .records import RUNS, Ledger, Run, content, run_allowed, run_approved, run_denied

SAMPLES = 16


def spread(length: int, count: int = SAMPLES) -> list[int]:
    """``count`` positions spread evenly over ``length`` bytes, first and last included."""
    if length <= count:
        return list(range(length))
    return sorted({round(j * (length - 1) / (count - 1)) for j in range(count)})


def other_char(ch: str) -> str:
    """A different character of the same class, so the JSON stays valid."""
    if ch.isdigit():
        return str((int(ch) + 1) % 10)
    if ch.isalpha():
        return "b" if ch == "a" else "a"
    return {"+": "/", "/": "+", "=": "A", "-": "_", "_": "-", ".": ",", " ": "_"}.get(ch, "x")


def envelope_mutations(envelope: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Single-byte changes of an envelope that keep the bundle parseable JSON."""
    payload = base64.b64decode(envelope["payload"])
    for pos in spread(len(payload)):
        changed = bytearray(payload)
        changed[pos] ^= 0x01
        yield f"payload byte {pos}", {**envelope, "payload": base64.b64encode(changed).decode()}
    kind = envelope["payloadType"]
    for pos in spread(len(kind), 4):
        mutated = kind[:pos] + other_char(kind[pos]) + kind[pos + 1 :]
        yield f"payloadType char {pos}", {**envelope, "payloadType": mutated}
    signature = envelope["signatures"][0]
    sig = base64.b64decode(signature["sig"])
    for pos in spread(len(sig), 8):
        changed = bytearray(sig)
        changed[pos] ^= 0x01
        new = {"keyid": signature["keyid"], "sig": base64.b64encode(changed).decode()}
        yield f"sig byte {pos}", {**envelope, "signatures": [new]}
    keyid = signature["keyid"]
    for pos in spread(len(keyid), 4):
        new = {
            "keyid": keyid[:pos] + other_char(keyid[pos]) + keyid[pos + 1 :],
            "sig": signature["sig"],
        }
        yield f"keyid char {pos}", {**envelope, "signatures": [new]}
    # and bytes of the envelope's canonical serialisation itself, where JSON survives
    raw = envelope_bytes(envelope).decode()
    for pos in spread(len(raw)):
        text = raw[:pos] + other_char(raw[pos]) + raw[pos + 1 :]
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            yield f"canonical byte {pos}", parsed


def test_every_sampled_byte_change_of_every_envelope_fails(
    recorded: tuple[Ledger, dict[str, Any]],
) -> None:
    ledger, bundle = recorded
    verify_bundle(bundle, ledger.control.public)
    tried = 0
    for k, item in enumerate(bundle["entries"]):
        original = envelope_bytes(item["envelope"])
        for what, envelope in envelope_mutations(item["envelope"]):
            assert envelope_bytes(envelope) != original, what
            tampered = copy.deepcopy(bundle)
            tampered["entries"][k]["envelope"] = envelope
            for key in (ledger.control.public, None):
                with pytest.raises(VerificationError, match=rf"^entries\[{k}\]") as caught:
                    verify_bundle(tampered, key)
                assert "inclusion_proof" in str(caught.value), (what, str(caught.value))
            tried += 1
    assert tried >= len(bundle["entries"]) * (SAMPLES + 4 + 8 + 4 + SAMPLES // 2)


def restate(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope with its statement changed (a later time) but the old signature kept."""
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["at" if "at" in statement["predicate"] else "finished_at"] = "2030"
    return {**envelope, "payload": base64.b64encode(canonical_json(statement)).decode()}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_changed_statement_fails_its_signature_even_when_logged(name: str) -> None:
    probe = Ledger()
    count = len(probe.records[RUNS[name](probe)])
    for k in range(count):
        ledger = Ledger()
        ledger.alter[(f"P-{name.upper()}", k)] = restate
        bundle = ledger.bundle(RUNS[name](ledger))
        with pytest.raises(
            VerificationError,
            match=rf"^entries\[{k}\]: signature does not verify under (control-plane|runner) key",
        ):
            verify_bundle(bundle, ledger.control.public)


def test_every_removed_entry_fails(recorded: tuple[Ledger, dict[str, Any]]) -> None:
    ledger, bundle = recorded
    for k in range(len(bundle["entries"])):
        tampered = copy.deepcopy(bundle)
        del tampered["entries"][k]
        with pytest.raises(VerificationError):
            verify_bundle(tampered, ledger.control.public)


def test_every_swapped_pair_of_entries_fails(recorded: tuple[Ledger, dict[str, Any]]) -> None:
    ledger, bundle = recorded
    entries = bundle["entries"]
    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            tampered = copy.deepcopy(bundle)
            tampered["entries"][i], tampered["entries"][j] = entries[j], entries[i]
            with pytest.raises(VerificationError, match=r"^entries\[\d+\]"):
                verify_bundle(tampered, ledger.control.public)


def test_changed_proofs_indexes_and_checkpoints_fail(
    recorded: tuple[Ledger, dict[str, Any]],
) -> None:
    _, bundle = recorded
    for k, item in enumerate(bundle["entries"]):
        for shift in (-1, 1):
            tampered = copy.deepcopy(bundle)
            tampered["entries"][k]["leaf_index"] = item["leaf_index"] + shift
            with pytest.raises(VerificationError, match=rf"^entries\[{k}\]"):
                verify_bundle(tampered)
        for p in range(len(item["inclusion_proof"])):
            tampered = copy.deepcopy(bundle)
            node = tampered["entries"][k]["inclusion_proof"][p]
            tampered["entries"][k]["inclusion_proof"][p] = other_char(node[0]) + node[1:]
            with pytest.raises(VerificationError, match=rf"^entries\[{k}\].inclusion_proof"):
                verify_bundle(tampered)
    note = bundle["checkpoint"]
    for pos in spread(len(note)):
        tampered = {**bundle, "checkpoint": note[:pos] + other_char(note[pos]) + note[pos + 1 :]}
        if tampered["checkpoint"] == note:
            continue
        with pytest.raises(VerificationError, match=r"^checkpoint: "):
            verify_bundle(tampered)


def test_the_three_runs_verify_side_by_side_in_one_log() -> None:
    ledger = Ledger()
    ids = [run_allowed(ledger), run_approved(ledger), run_denied(ledger)]
    states = [verify_bundle(ledger.bundle(i), ledger.control.public).final_state for i in ids]
    assert states == ["succeeded", "succeeded", "denied"]
    assert sorted(RUNS) == ["allowed", "approved", "denied"]


def test_a_later_checkpoint_is_consistent_with_an_earlier_one() -> None:
    ledger = Ledger()
    run_denied(ledger)
    earlier_size = ledger.log.size()
    earlier = verify_checkpoint(ledger.checkpoint(), ledger.control.public)
    run_approved(ledger)
    later = verify_checkpoint(ledger.checkpoint(), ledger.control.public)
    assert later.size > earlier.size == earlier_size
    verify_consistent(earlier, later, ledger.log.consistency_proof(earlier.size, later.size))
    # a bundle exported earlier stays anchored: its checkpoint is a prefix of the later one
    old_bundle = ledger.bundle("P-DENIED", earlier_size)
    assert parse_checkpoint(old_bundle["checkpoint"]) == earlier
    verify_bundle(old_bundle, ledger.control.public)


def test_a_rewritten_history_is_not_consistent() -> None:
    honest = Ledger()
    run_denied(honest)
    earlier = verify_checkpoint(honest.checkpoint(), honest.control.public)

    # The same control-plane key re-records history with the denial turned into an allow.
    rewritten = Ledger(control=honest.control, runner=honest.runner)
    run = Run(rewritten, "P-DENIED", content("drop the production database"))
    run.propose()
    run.assess()
    run.decide("allow")
    run.lease()
    run.execute()
    run.verify()
    run.close("succeeded")
    later = verify_checkpoint(rewritten.checkpoint(), honest.control.public)
    assert later.size > earlier.size
    verify_bundle(rewritten.bundle("P-DENIED"), honest.control.public)  # signed, but...
    with pytest.raises(CheckpointError, match="not consistent"):
        verify_consistent(earlier, later, rewritten.log.consistency_proof(earlier.size, later.size))
    while honest.log.size() < later.size:
        honest.noise()
    with pytest.raises(CheckpointError, match="not consistent"):
        verify_consistent(earlier, later, honest.log.consistency_proof(earlier.size, later.size))
