"""in-toto statements: built to the contract, read back strictly with errors naming the field."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from placet.domain.canonical import canonical_json
from placet.domain.lifecycle import Stage
from placet.domain.signing import SigningKey
from placet.evidence.errors import MalformedEvidence
from placet.evidence.statements import (
    DECISION_PREDICATE,
    PREDICATE_TYPES,
    STATEMENT_TYPE,
    Statement,
    parse_statement,
    statement,
    statement_of,
)

DIGEST = "ab" * 32


def test_a_statement_has_one_subject_the_proposal_and_a_stage_predicate_type() -> None:
    made = statement("P1", DIGEST, Stage.DECISION, {"outcome": "allow"})
    assert made == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "proposal/P1", "digest": {"sha256": DIGEST}}],
        "predicateType": "https://placet.dev/decision/v1",
        "predicate": {"outcome": "allow"},
    }
    assert statement("P1", DIGEST, "decision", {"outcome": "allow"}) == made
    assert PREDICATE_TYPES[Stage.DECISION] == DECISION_PREDICATE
    assert {uri.split("/")[3] for uri in PREDICATE_TYPES.values()} == {s.value for s in Stage}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", DIGEST, "proposal", {}), "proposal_id"),
        (("P1", "AB" * 32, "proposal", {}), "digest"),
        (("P1", DIGEST[:-1], "proposal", {}), "digest"),
        (("P1", DIGEST, "launch", {}), "stage"),
        (("P1", DIGEST, "proposal", ["not", "a", "dict"]), "predicate"),
    ],
)
def test_bad_arguments_name_the_field(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(MalformedEvidence) as caught:
        statement(*args)
    assert caught.value.field == field


def test_a_statement_reads_back_from_its_signed_envelope() -> None:
    made = statement("P1", DIGEST, Stage.APPROVAL, {"vote": "approve", "n": 1})
    envelope = SigningKey.generate().sign_statement(made)
    read = statement_of(envelope)
    assert read == Statement("P1", DIGEST, Stage.APPROVAL, {"vote": "approve", "n": 1})
    assert read.as_dict() == made
    assert parse_statement(canonical_json(made)) == read


def mutate(change: Any) -> bytes:
    value = statement("P1", DIGEST, Stage.CLOSURE, {"state": "denied"})
    change(value)
    return canonical_json(value)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"\xff\xfe", "payload"),
        (b"[1, 2]", "payload"),
        (mutate(lambda v: v.pop("predicate")), "predicate"),
        (mutate(lambda v: v.update(extra=1)), "extra"),
        (mutate(lambda v: v.update(_type="https://in-toto.io/Statement/v0.1")), "_type"),
        (mutate(lambda v: v["subject"].append(v["subject"][0])), "subject"),
        (mutate(lambda v: v.update(subject=[])), "subject"),
        (mutate(lambda v: v["subject"][0].update(name="artifact/x")), "subject[0].name"),
        (mutate(lambda v: v["subject"][0].update(name="proposal/")), "subject[0].name"),
        (mutate(lambda v: v["subject"][0]["digest"].update(sha512="00")), "subject[0].digest"),
        (
            mutate(lambda v: v["subject"][0]["digest"].update(sha256="XY")),
            "subject[0].digest.sha256",
        ),
        (mutate(lambda v: v.update(predicateType="https://placet.dev/launch/v1")), "predicateType"),
        (mutate(lambda v: v.update(predicate=[1])), "predicate"),
    ],
)
def test_malformed_statements_name_the_field(payload: bytes, field: str) -> None:
    with pytest.raises(MalformedEvidence) as caught:
        parse_statement(payload)
    assert caught.value.field == field


def test_only_the_canonical_serialisation_is_accepted() -> None:
    made = statement("P1", DIGEST, Stage.CLOSURE, {"state": "denied"})
    pretty = json.dumps(made, indent=2).encode()
    with pytest.raises(MalformedEvidence, match="canonical"):
        parse_statement(pretty)
    duplicated = canonical_json(made)[:-1] + b',"predicate":{"state":"succeeded"}}'
    with pytest.raises(MalformedEvidence, match="canonical"):
        parse_statement(duplicated)


def test_envelope_shape_is_checked_before_reading() -> None:
    envelope = SigningKey.generate().sign_statement(statement("P1", DIGEST, "closure", {}))
    with pytest.raises(MalformedEvidence, match="payloadType"):
        statement_of({**envelope, "payloadType": "application/json"})
    with pytest.raises(MalformedEvidence, match="base64"):
        statement_of({**envelope, "payload": "not base64!"})
    with pytest.raises(MalformedEvidence, match="envelope"):
        statement_of([envelope])
    assert base64.b64decode(envelope["payload"]).startswith(b'{"_type":"' + STATEMENT_TYPE.encode())


def test_deeply_nested_payloads_are_refused_cleanly() -> None:
    with pytest.raises(MalformedEvidence, match="payload"):
        parse_statement(b"[" * 100_000 + b"]" * 100_000)
