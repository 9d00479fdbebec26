"""C2SP checkpoints: exact format, strict parsing, signature and key-id checks, consistency."""

from __future__ import annotations

import base64
import hashlib

import pytest

from placet.domain.signing import PublicKey, SigningKey
from placet.evidence import merkle
from placet.evidence.checkpoint import (
    Checkpoint,
    key_id,
    parse_checkpoint,
    sign_checkpoint,
    verifier_key,
    verify_checkpoint,
    verify_consistent,
)
from placet.evidence.errors import CheckpointError
from placet.evidence.log import MemoryLeafStore, MerkleLog

ORIGIN = "placet.test/ledger"
ROOT = hashlib.sha256(b"some root").digest()


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def test_the_note_has_the_c2sp_layout_and_key_id(key: SigningKey) -> None:
    text = sign_checkpoint(ORIGIN, 42, ROOT, key)
    body, signature_line = text.split("\n\n")
    assert body == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}"
    assert signature_line.startswith(f"\u2014 {ORIGIN} ") and signature_line.endswith("\n")
    blob = base64.b64decode(signature_line.split(" ")[2])
    assert len(blob) == 4 + 64
    wanted = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + key.public.raw).digest()[:4]
    assert blob[:4] == wanted == key_id(ORIGIN, key.public)
    assert key.public.verify(blob[4:], (body + "\n").encode())  # signed text includes final LF


def test_key_ids_match_the_go_note_package() -> None:
    # The example verifier key and note of golang.org/x/mod/sumdb/note (signature type 0x01).
    vkey = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    public = PublicKey(vkey[1:])
    assert key_id("PeterNeumann", public).hex() == "c74f20a3"
    assert verifier_key("PeterNeumann", public) == (
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    sig = base64.b64decode(
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
    )
    text = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
    )
    assert sig[:4].hex() == "c74f20a3" and public.verify(sig[4:], text.encode())


def test_a_signed_checkpoint_verifies_and_parses(key: SigningKey) -> None:
    text = sign_checkpoint(ORIGIN, 7, ROOT, key)
    assert verify_checkpoint(text, key.public) == Checkpoint(ORIGIN, 7, ROOT)
    assert verify_checkpoint(text, key.public, origin=ORIGIN).size == 7
    assert parse_checkpoint(text) == Checkpoint(ORIGIN, 7, ROOT)
    empty = sign_checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT, key)
    assert verify_checkpoint(empty, key.public).size == 0


def test_another_key_or_origin_is_refused(key: SigningKey) -> None:
    text = sign_checkpoint(ORIGIN, 7, ROOT, key)
    with pytest.raises(CheckpointError, match="no signature by key"):
        verify_checkpoint(text, SigningKey.generate().public)
    with pytest.raises(CheckpointError, match=r"not 'other\.example/log'"):
        verify_checkpoint(text, key.public, origin="other.example/log")


def _resign_line(text: str, blob: bytes, name: str = ORIGIN) -> str:
    body = text.split("\n\n")[0]
    return f"{body}\n\n\u2014 {name} {base64.b64encode(blob).decode()}\n"


def test_a_wrong_key_id_or_a_bad_signature_is_refused(key: SigningKey) -> None:
    text = sign_checkpoint(ORIGIN, 7, ROOT, key)
    blob = base64.b64decode(text.split(" ")[-1])
    wrong_id = bytes([blob[0] ^ 1]) + blob[1:]
    with pytest.raises(CheckpointError, match="no signature by key"):
        verify_checkpoint(_resign_line(text, wrong_id), key.public)
    bad_sig = blob[:10] + bytes([blob[10] ^ 1]) + blob[11:]
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(_resign_line(text, bad_sig), key.public)
    with pytest.raises(CheckpointError, match="no signature by key"):  # right id, other name
        verify_checkpoint(_resign_line(text, blob, "other.example/log"), key.public)


def test_a_changed_body_fails_the_signature(key: SigningKey) -> None:
    text = sign_checkpoint(ORIGIN, 7, ROOT, key)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(text.replace("\n7\n", "\n8\n", 1), key.public)


def test_signatures_of_other_keys_are_ignored_but_must_be_well_formed(key: SigningKey) -> None:
    text = sign_checkpoint(ORIGIN, 7, ROOT, key)
    witness = SigningKey.generate()
    body = Checkpoint(ORIGIN, 7, ROOT).body()
    cosig = key_id("witness.example", witness.public) + witness.sign(body.encode())
    cosigned = f"{text}\u2014 witness.example {base64.b64encode(cosig).decode()}\n"
    assert verify_checkpoint(cosigned, key.public).size == 7
    with pytest.raises(CheckpointError, match="no signature by key"):
        verify_checkpoint(cosigned, witness.public)  # the log's name is bound to the log's key
    with pytest.raises(CheckpointError, match="signature line 2"):
        verify_checkpoint(f"{text}\u2014 witness.example\n", key.public)


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda t: t.replace("\n7\n", "\n7\nextension\n", 1), "4 lines"),
        (lambda t: t.split("\n", 1)[1], "2 lines"),
        (lambda t: t[:-1], "end with a newline"),
        (lambda t: t.replace("\n\n", "\n", 1), "no blank line"),
        (lambda t: t.replace("\n", "\r\n"), "control character"),
        (lambda t: t.replace("\n7\n", "\n07\n", 1), "not a decimal"),
        (lambda t: t.replace("\n7\n", "\n-7\n", 1), "not a decimal"),
        (lambda t: t.replace("=\n\n", "\n\n", 1), "not base64"),
        (lambda t: t.replace(f"{ORIGIN}\n", "placet test\n", 1), "space"),
        (lambda t: t.replace("\u2014 ", "- ", 1), "em dash"),
        (lambda t: t + "\n", "5 lines"),
        (lambda t: t + "trailing\n", "signature line 2"),
    ],
)
def test_malformed_notes_are_refused(key: SigningKey, mangle: object, problem: str) -> None:
    text = sign_checkpoint(ORIGIN, 7, ROOT, key)
    assert callable(mangle)
    with pytest.raises(CheckpointError, match=problem):
        verify_checkpoint(mangle(text), key.public)


def test_a_root_of_the_wrong_length_is_refused(key: SigningKey) -> None:
    text = sign_checkpoint(ORIGIN, 7, ROOT, key)
    short = base64.b64encode(ROOT[:31]).decode()
    with pytest.raises(CheckpointError, match="31 bytes"):
        parse_checkpoint(text.replace(base64.b64encode(ROOT).decode(), short))
    with pytest.raises(CheckpointError, match="32 bytes"):
        sign_checkpoint(ORIGIN, 7, ROOT[:31], key)
    with pytest.raises(CheckpointError, match="origin"):
        sign_checkpoint("has space", 7, ROOT, key)


def test_a_later_checkpoint_is_consistent_and_a_rewritten_history_is_not(key: SigningKey) -> None:
    store = MemoryLeafStore()
    log = MerkleLog(store, cache_threshold=2)
    for i in range(13):
        log.append(b"entry %d" % i)
    early = verify_checkpoint(sign_checkpoint(ORIGIN, 13, log.root(13), key), key.public)
    for i in range(13, 40):
        log.append(b"entry %d" % i)
    late = verify_checkpoint(sign_checkpoint(ORIGIN, 40, log.root(40), key), key.public)
    verify_consistent(early, late, log.consistency_proof(13, 40))

    forged_store = MemoryLeafStore()
    forged = MerkleLog(forged_store, cache_threshold=2)
    for i in range(40):
        forged.append(b"entry %d" % i if i != 5 else b"a different entry 5")
    rewritten = Checkpoint(ORIGIN, 40, forged.root(40))
    with pytest.raises(CheckpointError, match="not consistent"):
        verify_consistent(early, rewritten, forged.consistency_proof(13, 40))
    with pytest.raises(CheckpointError, match="not consistent"):
        verify_consistent(early, rewritten, log.consistency_proof(13, 40))
    with pytest.raises(CheckpointError, match="different logs"):
        verify_consistent(early, Checkpoint("other.example/log", 40, late.root), [])
