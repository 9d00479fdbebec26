"""in-toto Statement v1 for each lifecycle stage: build one, and read one back strictly.

Every statement has exactly one subject, the proposal (``proposal/<id>`` with its digest),
and a predicate type ``https://placet.dev/<stage>/v1``. Statements travel as the payload
of a DSSE envelope, serialised as RFC 8785 canonical JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from placet.domain.canonical import canonical_json
from placet.domain.lifecycle import Stage
from placet.domain.signing import IN_TOTO_PAYLOAD_TYPE
from placet.evidence.errors import MalformedEvidence

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_PREFIX = "https://placet.dev/"
SUBJECT_PREFIX = "proposal/"

PREDICATE_TYPES: dict[Stage, str] = {
    stage: f"{PREDICATE_PREFIX}{stage.value}/v1" for stage in Stage
}
"""The predicate type URI of each stage."""
STAGES_BY_PREDICATE_TYPE: dict[str, Stage] = {uri: stage for stage, uri in PREDICATE_TYPES.items()}

PROPOSAL_PREDICATE = PREDICATE_TYPES[Stage.PROPOSAL]
ASSESSMENT_PREDICATE = PREDICATE_TYPES[Stage.ASSESSMENT]
VALIDATION_PREDICATE = PREDICATE_TYPES[Stage.VALIDATION]
DECISION_PREDICATE = PREDICATE_TYPES[Stage.DECISION]
APPROVAL_PREDICATE = PREDICATE_TYPES[Stage.APPROVAL]
CAPSULE_PREDICATE = PREDICATE_TYPES[Stage.CAPSULE]
EXECUTION_PREDICATE = PREDICATE_TYPES[Stage.EXECUTION]
VERIFICATION_PREDICATE = PREDICATE_TYPES[Stage.VERIFICATION]
CLOSURE_PREDICATE = PREDICATE_TYPES[Stage.CLOSURE]

RUNNER_STAGES = frozenset({Stage.EXECUTION, Stage.VERIFICATION})
"""Stages whose statements the runner signs with its own key; the control plane signs the rest."""

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = {"_type", "subject", "predicateType", "predicate"}


@dataclass(frozen=True, slots=True)
class Statement:
    """A parsed placet statement: which proposal, at which digest, which stage, what was said."""

    proposal_id: str
    digest: str
    stage: Stage
    predicate: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The statement as the JSON object that is signed."""
        return statement(self.proposal_id, self.digest, self.stage, self.predicate)


def is_digest(value: Any) -> bool:
    """Whether ``value`` is a lowercase hex SHA-256 digest."""
    return isinstance(value, str) and _DIGEST.match(value) is not None


def statement(
    proposal_id: str, digest: str, stage: Stage | str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """The in-toto Statement v1 dict recording ``predicate`` at ``stage`` for one proposal."""
    if not isinstance(proposal_id, str) or not proposal_id:
        raise MalformedEvidence("proposal_id", "must be a non-empty string")
    if not is_digest(digest):
        raise MalformedEvidence("digest", "must be a lowercase hex SHA-256 digest")
    try:
        stage = Stage(stage)
    except ValueError:
        raise MalformedEvidence("stage", f"unknown stage {stage!r}") from None
    if not isinstance(predicate, Mapping):
        raise MalformedEvidence("predicate", "must be a JSON object")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": SUBJECT_PREFIX + proposal_id, "digest": {"sha256": digest}}],
        "predicateType": PREDICATE_TYPES[stage],
        "predicate": dict(predicate),
    }


def _parse_subject(subject: Any) -> tuple[str, str]:
    if not isinstance(subject, list) or len(subject) != 1:
        raise MalformedEvidence("subject", "must hold exactly one subject, the proposal")
    only = subject[0]
    if not isinstance(only, dict) or set(only) != {"name", "digest"}:
        raise MalformedEvidence("subject[0]", "must be an object with name and digest")
    name = only["name"]
    if not isinstance(name, str) or not name.startswith(SUBJECT_PREFIX):
        raise MalformedEvidence("subject[0].name", f"must be {SUBJECT_PREFIX}<proposal id>")
    proposal_id = name[len(SUBJECT_PREFIX) :]
    if not proposal_id:
        raise MalformedEvidence("subject[0].name", "names no proposal id")
    digests = only["digest"]
    if not isinstance(digests, dict) or set(digests) != {"sha256"}:
        raise MalformedEvidence("subject[0].digest", "must hold exactly one sha256 digest")
    if not is_digest(digests["sha256"]):
        raise MalformedEvidence("subject[0].digest.sha256", "is not a lowercase hex SHA-256")
    return proposal_id, digests["sha256"]


def parse_statement(payload: bytes) -> Statement:
    """Read a statement from envelope payload bytes; MalformedEvidence names the first problem.

    The payload must be the RFC 8785 canonical JSON of the statement, as placet signs it.
    """
    try:
        value = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedEvidence("payload", f"is not UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedEvidence("payload", "is not a JSON object")
    missing = _FIELDS - set(value)
    if missing:
        raise MalformedEvidence(sorted(missing)[0], "is missing from the statement")
    unknown = set(value) - _FIELDS
    if unknown:
        raise MalformedEvidence(sorted(unknown)[0], "is not a statement field")
    if value["_type"] != STATEMENT_TYPE:
        raise MalformedEvidence("_type", f"must be {STATEMENT_TYPE}")
    proposal_id, digest = _parse_subject(value["subject"])
    stage = STAGES_BY_PREDICATE_TYPE.get(value["predicateType"])
    if stage is None:
        raise MalformedEvidence(
            "predicateType", f"{value['predicateType']!r} is not a placet stage predicate"
        )
    if not isinstance(value["predicate"], dict):
        raise MalformedEvidence("predicate", "must be a JSON object")
    try:
        canonical = canonical_json(value)
    except (ValueError, TypeError, RecursionError) as exc:
        raise MalformedEvidence("payload", f"cannot be canonicalised: {exc}") from None
    if canonical != payload:
        raise MalformedEvidence("payload", "is not the RFC 8785 canonical JSON of the statement")
    return Statement(proposal_id, digest, stage, value["predicate"])


def envelope_payload(envelope: Any) -> bytes:
    """The decoded payload of an in-toto DSSE envelope, checking its shape (not its signature)."""
    if not isinstance(envelope, dict):
        raise MalformedEvidence("envelope", "must be a JSON object")
    if envelope.get("payloadType") != IN_TOTO_PAYLOAD_TYPE:
        raise MalformedEvidence("envelope.payloadType", f"must be {IN_TOTO_PAYLOAD_TYPE}")
    payload = envelope.get("payload")
    if not isinstance(payload, str):
        raise MalformedEvidence("envelope.payload", "must be a base64 string")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvidence("envelope.payload", "is not valid base64") from None


def statement_of(envelope: Any) -> Statement:
    """Read the statement inside an envelope WITHOUT checking its signature (check that first)."""
    return parse_statement(envelope_payload(envelope))
