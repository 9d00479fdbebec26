"""Ed25519 keys and DSSE envelopes: what verifies, what does not, and key formats."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from placet.domain.canonical import canonical_json
from placet.domain.signing import (
    IN_TOTO_PAYLOAD_TYPE,
    PublicKey,
    SignatureError,
    SigningKey,
    envelope_bytes,
    open_envelope,
)

STATEMENT: dict[str, Any] = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "proposal/01J0", "digest": {"sha256": "ab" * 32}}],
    "predicateType": "https://placet.dev/proposal/v1",
    "predicate": {"transitions": [{"from": None, "to": "proposed"}], "at": "2026-11-25T22:40:01Z"},
}


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def other() -> SigningKey:
    return SigningKey.generate()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


# ---- keys --------------------------------------------------------------------------


def test_keyid_is_sha256_of_the_raw_public_key(key: SigningKey) -> None:
    raw = key.public.raw
    assert len(raw) == 32
    assert key.keyid == key.public.keyid == hashlib.sha256(raw).hexdigest()
    assert base64.b64decode(key.public.b64) == raw


def test_sign_and_verify_raw_bytes(key: SigningKey, other: SigningKey) -> None:
    signature = key.sign(b"hello")
    assert key.public.verify(signature, b"hello")
    assert not key.public.verify(signature, b"hellO")
    assert not other.public.verify(signature, b"hello")
    assert not key.public.verify(b"short", b"hello")


def test_private_key_pem_round_trip(key: SigningKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = SigningKey.from_pem(pem)
    assert again.keyid == key.keyid
    envelope = again.sign_statement(STATEMENT)
    assert open_envelope(envelope, [key.public])[2] == key.keyid


def test_public_key_pem_round_trip(key: SigningKey) -> None:
    pem = key.public.to_pem()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert PublicKey.from_text(pem) == key.public
    assert PublicKey.from_text("\n  " + pem + "\n\n") == key.public


def test_public_key_base64_round_trip(key: SigningKey) -> None:
    assert PublicKey.from_text(key.public.b64) == key.public
    assert PublicKey.from_b64(key.public.b64) == key.public
    assert PublicKey.from_text(f"  {key.public.b64}\n") == key.public


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "not a key",
        "!!!!",
        _b64(b"\x01" * 31),
        _b64(b"\x01" * 33),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\n",
    ],
)
def test_public_key_from_text_rejects_junk(junk: str) -> None:
    with pytest.raises(SignatureError):
        PublicKey.from_text(junk)


def test_public_key_from_text_rejects_a_non_ed25519_pem() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(SignatureError, match="not an Ed25519 key"):
        PublicKey.from_text(pem)


def test_public_key_from_text_rejects_a_private_key_pem(key: SigningKey) -> None:
    with pytest.raises(SignatureError):
        PublicKey.from_text(key.to_pem().decode())


@pytest.mark.parametrize("data", [b"", b"junk", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_private_key_from_pem_rejects_junk(data: bytes) -> None:
    with pytest.raises(SignatureError):
        SigningKey.from_pem(data)


def test_private_key_from_pem_rejects_a_non_ed25519_key() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SignatureError, match="not an Ed25519 key"):
        SigningKey.from_pem(pem)


# ---- envelopes ---------------------------------------------------------------------


def test_a_signed_statement_opens(key: SigningKey) -> None:
    envelope = key.sign_statement(STATEMENT)
    assert envelope["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    assert base64.b64decode(envelope["payload"]) == canonical_json(STATEMENT)
    assert [s["keyid"] for s in envelope["signatures"]] == [key.keyid]
    payload, payload_type, keyid = open_envelope(envelope, [key.public])
    assert json.loads(payload) == STATEMENT
    assert payload_type == IN_TOTO_PAYLOAD_TYPE
    assert keyid == key.keyid


def test_the_signature_is_ed25519_over_the_dsse_pae(key: SigningKey) -> None:
    payload = b'{"capsule_version":1}'
    envelope = key.sign_envelope(payload, "application/vnd.placet.capsule+json")
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    raw = ed25519.Ed25519PublicKey.from_public_bytes(key.public.raw)
    raw.verify(signature, _pae("application/vnd.placet.capsule+json", payload))
    opened = open_envelope(envelope, [key.public])
    assert opened == (payload, "application/vnd.placet.capsule+json", key.keyid)


def test_the_matching_key_is_found_among_several(key: SigningKey, other: SigningKey) -> None:
    envelope = other.sign_statement(STATEMENT)
    assert open_envelope(envelope, [key.public, other.public])[2] == other.keyid


def test_a_wrong_key_fails(key: SigningKey, other: SigningKey) -> None:
    envelope = key.sign_statement(STATEMENT)
    with pytest.raises(SignatureError):
        open_envelope(envelope, [other.public])


def test_no_keys_fails(key: SigningKey) -> None:
    with pytest.raises(SignatureError, match="no key"):
        open_envelope(key.sign_statement(STATEMENT), [])


def test_a_tampered_payload_fails(key: SigningKey) -> None:
    envelope = key.sign_statement(STATEMENT)
    changed = dict(STATEMENT, predicateType="https://placet.dev/decision/v1")
    envelope["payload"] = _b64(canonical_json(changed))
    with pytest.raises(SignatureError):
        open_envelope(envelope, [key.public])


def test_a_tampered_payload_type_fails(key: SigningKey) -> None:
    envelope = key.sign_statement(STATEMENT)
    envelope["payloadType"] = "application/vnd.placet.capsule+json"
    with pytest.raises(SignatureError):
        open_envelope(envelope, [key.public])


def test_a_tampered_signature_fails(key: SigningKey) -> None:
    envelope = key.sign_statement(STATEMENT)
    signature = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    signature[0] ^= 1
    envelope["signatures"][0]["sig"] = _b64(bytes(signature))
    with pytest.raises(SignatureError):
        open_envelope(envelope, [key.public])


def test_a_signature_from_another_envelope_fails(key: SigningKey) -> None:
    envelope = key.sign_statement(STATEMENT)
    donor = key.sign_envelope(b"something else")
    envelope["signatures"] = donor["signatures"]
    with pytest.raises(SignatureError):
        open_envelope(envelope, [key.public])


def test_a_tampered_keyid_fails(key: SigningKey, other: SigningKey) -> None:
    envelope = key.sign_statement(STATEMENT)
    envelope["signatures"][0]["keyid"] = other.keyid
    with pytest.raises(SignatureError):
        open_envelope(envelope, [key.public, other.public])


def test_a_signature_relabelled_with_the_right_keyid_by_the_wrong_signer_fails(
    key: SigningKey, other: SigningKey
) -> None:
    envelope = other.sign_statement(STATEMENT)
    envelope["signatures"][0]["keyid"] = key.keyid
    with pytest.raises(SignatureError):
        open_envelope(envelope, [key.public])


@pytest.mark.parametrize(
    "envelope",
    [
        None,
        "envelope",
        [],
        {},
        {"payload": "e30=", "payloadType": IN_TOTO_PAYLOAD_TYPE},
        {"payload": "not base64!", "payloadType": IN_TOTO_PAYLOAD_TYPE, "signatures": []},
        {"payload": "e30=", "payloadType": IN_TOTO_PAYLOAD_TYPE, "signatures": []},
        {"payload": "e30=", "payloadType": IN_TOTO_PAYLOAD_TYPE, "signatures": [{"sig": "AA=="}]},
        {"payload": "e30=", "payloadType": IN_TOTO_PAYLOAD_TYPE, "signatures": ["AA=="]},
    ],
)
def test_malformed_envelopes_fail(key: SigningKey, envelope: Any) -> None:
    with pytest.raises(SignatureError):
        open_envelope(envelope, [key.public])


def test_open_envelope_does_not_mutate_its_input(key: SigningKey, other: SigningKey) -> None:
    envelope = key.sign_statement(STATEMENT)
    before = copy.deepcopy(envelope)
    open_envelope(envelope, [key.public])
    assert envelope == before
    with pytest.raises(SignatureError):
        open_envelope(envelope, [other.public])
    assert envelope == before
    # and it still opens a second time
    assert open_envelope(envelope, [key.public])[2] == key.keyid


def test_envelope_bytes_are_canonical_json(key: SigningKey) -> None:
    envelope = key.sign_statement(STATEMENT)
    leaf = envelope_bytes(envelope)
    assert json.loads(leaf) == envelope
    assert leaf == canonical_json(dict(reversed(list(envelope.items()))))
    assert b" " not in leaf
