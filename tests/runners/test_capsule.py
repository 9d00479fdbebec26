"""Capsules: issue/check round trip and every reason a runner refuses one."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.domain.canonical import canonical_json, digest_of, sha256_hex
from placet.domain.errors import PlacetError
from placet.domain.signing import SigningKey, envelope_bytes
from placet.runners.capsule import (
    CAPSULE_PAYLOAD_TYPE,
    CapsuleClaim,
    CapsuleRefused,
    Refusal,
    capsule_digest,
    check_capsule,
    issue_capsule,
)

from .helpers import python, shell_proposal

CONTROL = SigningKey.generate()
OTHER = SigningKey.generate()
ISSUED = datetime(2026, 11, 25, 22, 40, 1, 123000, tzinfo=UTC)
PROPOSAL = shell_proposal(python("print('hi')"), verify={"argv": ["true"]})
DIGEST = digest_of(PROPOSAL)


def issue(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "proposal_id": "P1",
        "proposal": PROPOSAL,
        "proposal_digest": DIGEST,
        "runner_id": "R1",
        "lease_id": "L1",
        "fencing_token": 4,
        "issued_at": ISSUED,
        "ttl": timedelta(minutes=10),
    }
    args.update(changes)
    return issue_capsule(CONTROL, **args)


def payload_of(envelope: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return result


def sign_payload(
    payload: Any, key: SigningKey = CONTROL, kind: str = CAPSULE_PAYLOAD_TYPE
) -> dict[str, Any]:
    return key.sign_envelope(canonical_json(payload), kind)


def refused(envelope: Any, now: datetime = ISSUED, **kwargs: Any) -> CapsuleRefused:
    with pytest.raises(CapsuleRefused) as caught:
        check_capsule(envelope, [CONTROL.public], "R1", now, **kwargs)
    return caught.value


def test_round_trip_gives_back_what_was_issued() -> None:
    envelope = issue()
    capsule = check_capsule(envelope, [OTHER.public, CONTROL.public], "R1", ISSUED)
    assert envelope["payloadType"] == CAPSULE_PAYLOAD_TYPE
    assert capsule.proposal_id == "P1"
    assert capsule.proposal_digest == DIGEST
    assert capsule.proposal.as_dict() == PROPOSAL
    assert capsule.proposal.verify == {"argv": ["true"]}
    assert (capsule.runner_id, capsule.lease_id, capsule.fencing_token) == ("R1", "L1", 4)
    assert capsule.issued_at == ISSUED
    assert capsule.expires_at == ISSUED + timedelta(minutes=10)
    assert capsule.signed_by == CONTROL.keyid
    assert capsule.digest == capsule_digest(envelope) == sha256_hex(envelope_bytes(envelope))


def test_payload_is_the_contract_format() -> None:
    payload = payload_of(issue(nonce="ab" * 16))
    assert payload == {
        "capsule_version": 2,
        "proposal_id": "P1",
        "proposal_digest": DIGEST,
        "proposal": PROPOSAL,
        "runner_id": "R1",
        "lease_id": "L1",
        "fencing_token": 4,
        "issued_at": "2026-11-25T22:40:01.123Z",
        "expires_at": "2026-11-25T22:50:01.123Z",
        "target": {"runner_id": "R1"},
        "nonce": "ab" * 16,
    }
    envelope = issue(nonce="ab" * 16)
    assert base64.b64decode(envelope["payload"]) == canonical_json(payload)


def test_capsule_refused_is_a_placet_error_with_a_readable_message() -> None:
    error = refused(issue(runner_id="R2"))
    assert isinstance(error, PlacetError)
    assert str(error) == "capsule refused: it is for runner R2, not R1"
    assert error.code is Refusal.WRONG_RUNNER
    assert error.claim == CapsuleClaim("P1", DIGEST, "R2", "shell")


def test_a_capsule_signed_by_another_key_is_refused() -> None:
    envelope = issue_capsule(
        OTHER,
        proposal_id="P1",
        proposal=PROPOSAL,
        proposal_digest=DIGEST,
        runner_id="R1",
        lease_id="L1",
        fencing_token=4,
        issued_at=ISSUED,
        ttl=timedelta(minutes=1),
    )
    error = refused(envelope)
    assert error.code is Refusal.UNKNOWN_KEY
    assert "not a pinned control-plane key" in error.reason
    assert error.claim == CapsuleClaim("P1", DIGEST, "R1", "shell")


def test_no_pinned_key_means_no_capsule_runs() -> None:
    with pytest.raises(CapsuleRefused) as caught:
        check_capsule(issue(), [], "R1", ISSUED)
    assert caught.value.code is Refusal.UNKNOWN_KEY


def test_an_unsigned_capsule_is_refused() -> None:
    envelope = issue()
    envelope["signatures"] = []
    assert refused(envelope).code is Refusal.UNSIGNED


def test_a_tampered_payload_is_refused() -> None:
    envelope = issue()
    payload = payload_of(envelope)
    payload["proposal"]["parameters"]["argv"] = ["rm", "-rf", "/"]
    payload["proposal_digest"] = digest_of(payload["proposal"])
    envelope["payload"] = base64.b64encode(canonical_json(payload)).decode()
    error = refused(envelope)
    assert error.code is Refusal.BAD_SIGNATURE
    assert "altered" in error.reason


def test_a_forged_keyid_does_not_help() -> None:
    envelope = sign_payload(payload_of(issue()), key=OTHER)
    envelope["signatures"][0]["keyid"] = CONTROL.keyid
    assert refused(envelope).code is Refusal.BAD_SIGNATURE


@given(st.data())
def test_any_changed_payload_byte_is_refused(data: st.DataObject) -> None:
    envelope = issue()
    raw = bytearray(base64.b64decode(envelope["payload"]))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    envelope["payload"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(CapsuleRefused) as caught:
        check_capsule(envelope, [CONTROL.public], "R1", ISSUED)
    assert caught.value.code is Refusal.BAD_SIGNATURE


def test_an_in_toto_statement_is_not_a_capsule() -> None:
    envelope = sign_payload(payload_of(issue()), kind="application/vnd.in-toto+json")
    assert refused(envelope).code is Refusal.NOT_A_CAPSULE


@pytest.mark.parametrize("late", [timedelta(0), timedelta(seconds=1), timedelta(days=3)])
def test_an_expired_capsule_is_refused(late: timedelta) -> None:
    error = refused(issue(), now=ISSUED + timedelta(minutes=10) + late)
    assert error.code is Refusal.EXPIRED
    assert "2026-11-25T22:50:01.123Z" in error.reason


def test_a_capsule_is_valid_until_just_before_it_expires() -> None:
    now = ISSUED + timedelta(minutes=10) - timedelta(milliseconds=1)
    assert check_capsule(issue(), [CONTROL.public], "R1", now).proposal_id == "P1"


def test_another_runners_capsule_is_refused() -> None:
    assert refused(issue(runner_id="R9")).code is Refusal.WRONG_RUNNER


def test_a_capsule_for_another_lease_or_token_is_refused() -> None:
    assert refused(issue(), lease_id="L2").code is Refusal.WRONG_LEASE
    assert refused(issue(), fencing_token=5).code is Refusal.WRONG_LEASE
    assert check_capsule(issue(), [CONTROL.public], "R1", ISSUED, lease_id="L1", fencing_token=4)


def test_a_proposal_that_does_not_match_its_digest_is_refused() -> None:
    payload = payload_of(issue())
    payload["proposal"]["intent"] = "something else"
    error = refused(sign_payload(payload))
    assert error.code is Refusal.DIGEST_MISMATCH
    assert error.claim is not None and error.claim.proposal_id == "P1"


def test_issue_capsule_will_not_sign_a_mismatched_digest() -> None:
    with pytest.raises(ValueError, match="proposal_digest"):
        issue(proposal_digest="0" * 64)
    with pytest.raises(ValueError, match="ttl"):
        issue(ttl=timedelta(0))
    with pytest.raises(ValueError, match="fencing_token"):
        issue(fencing_token=True)


def _without(field: str) -> dict[str, Any]:
    payload = payload_of(issue())
    del payload[field]
    return payload


def _with(field: str, value: Any) -> dict[str, Any]:
    payload = payload_of(issue())
    payload[field] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ([1, 2], "not a JSON object"),
        (_without("lease_id"), "lease_id"),
        (_with("capsule_version", 1), "capsule_version 1"),
        (_without("nonce"), "nonce"),
        (_with("nonce", "short"), "nonce"),
        (_without("target"), "target"),
        (_with("target", {"runner_id": "R1", "selector": {"env": "x"}}), "target"),
        (_with("target", {"selector": {}}), "target.selector"),
        (_with("capsule_version", True), "capsule_version"),
        (_with("fencing_token", "4"), "fencing_token"),
        (_with("expires_at", "tomorrow"), "expires_at"),
        (_with("expires_at", "2026-11-25T22:50:01"), "no UTC offset"),
        (_with("expires_at", "2026-11-25T22:40:01.000Z"), "not after issued_at"),
        (_with("surprise", 1), "unknown field 'surprise'"),
    ],
)
def test_malformed_payloads_are_refused(payload: Any, words: str) -> None:
    error = refused(sign_payload(payload))
    assert error.code is Refusal.MALFORMED
    assert words in error.reason


def test_a_proposal_that_is_not_a_valid_proposal_is_refused() -> None:
    proposal = copy.deepcopy(PROPOSAL)
    proposal["parameters"] = {"argv": []}
    payload = _with("proposal", proposal)
    payload["proposal_digest"] = digest_of(proposal)
    error = refused(sign_payload(payload))
    assert error.code is Refusal.MALFORMED
    assert "proposal.parameters.argv" in error.reason


def test_a_payload_with_nan_is_malformed() -> None:
    envelope = issue()
    text = canonical_json(payload_of(envelope)).replace(
        b'"fencing_token":4', b'"fencing_token":NaN'
    )
    envelope = CONTROL.sign_envelope(text, CAPSULE_PAYLOAD_TYPE)
    assert refused(envelope).code is Refusal.MALFORMED


@pytest.mark.parametrize(
    "envelope",
    [
        "a string",
        {"payloadType": CAPSULE_PAYLOAD_TYPE, "signatures": []},
        {"payload": "***", "payloadType": CAPSULE_PAYLOAD_TYPE, "signatures": []},
        {"payload": "e30=", "payloadType": CAPSULE_PAYLOAD_TYPE, "signatures": "x"},
        {"payload": "e30=", "payloadType": CAPSULE_PAYLOAD_TYPE, "signatures": [{"sig": "AA=="}]},
        {"payload": "e30=", "payloadType": 7, "signatures": []},
    ],
)
def test_malformed_envelopes_are_refused_without_a_claim(envelope: Any) -> None:
    error = refused(envelope)
    assert error.code is Refusal.MALFORMED
    assert error.claim is None


def test_every_capsule_gets_its_own_random_nonce() -> None:
    nonces = {check_capsule(issue(), [CONTROL.public], "R1", ISSUED).nonce for _ in range(20)}
    assert len(nonces) == 20
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in nonces)
    with pytest.raises(ValueError, match="nonce"):
        issue(nonce="XYZ")


def test_a_capsule_targeted_at_another_runner_is_misdirected() -> None:
    error = refused(issue(target={"runner_id": "R2"}))
    assert error.code is Refusal.WRONG_RUNNER
    assert "its target is runner R2" in error.reason


def test_a_selector_target_must_match_the_runners_labels_when_known() -> None:
    envelope = issue(target={"selector": {"env": "production", "region": "eu"}})
    labels = {"env": ["production", "staging"], "region": ["eu"]}
    capsule = check_capsule(envelope, [CONTROL.public], "R1", ISSUED, labels=labels)
    assert capsule.target == {"selector": {"env": "production", "region": "eu"}}
    error = refused(envelope, labels={"env": ["production"], "region": ["us"]})
    assert error.code is Refusal.WRONG_RUNNER
    assert "env=production,region=eu does not match" in error.reason
    assert refused(envelope, labels={}).code is Refusal.WRONG_RUNNER
