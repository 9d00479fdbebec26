"""Bundles: built in leaf order, and read back with errors naming the bad field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from placet.evidence.bundle import FORMAT, Bundle, parse_bundle
from placet.evidence.errors import MalformedEvidence

from .records import Ledger, run_approved


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    ledger = Ledger()
    return ledger.bundle(run_approved(ledger))


def test_a_built_bundle_has_the_contract_shape(bundle: dict[str, Any]) -> None:
    assert list(bundle) == ["format", "proposal_id", "checkpoint", "keys", "entries"]
    assert bundle["format"] == FORMAT == "placet-evidence/v1"
    assert [k["role"] for k in bundle["keys"]] == ["control-plane", "runner"]
    assert all(set(k) == {"keyid", "algorithm", "public_key", "role"} for k in bundle["keys"])
    indexes = [e["leaf_index"] for e in bundle["entries"]]
    assert indexes == sorted(indexes) and len(indexes) == 9
    assert all(
        isinstance(h, str) and len(h) == 64 for e in bundle["entries"] for h in e["inclusion_proof"]
    )
    parsed = parse_bundle(json.loads(json.dumps(bundle)))
    assert isinstance(parsed, Bundle) and parsed.as_dict() == bundle


def edit(bundle: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    copied = copy.deepcopy(bundle)
    change(copied)
    return copied


CASES: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda b: b.update(format="placet-evidence/v2"), "format"),
    (lambda b: b.pop("checkpoint"), "checkpoint"),
    (lambda b: b.update(extra=True), "extra"),
    (lambda b: b.update(proposal_id=""), "proposal_id"),
    (lambda b: b.update(keys={}), "keys"),
    (lambda b: b["keys"][1].update(algorithm="rsa"), "keys[1].algorithm"),
    (lambda b: b["keys"][1].update(role="auditor"), "keys[1].role"),
    (lambda b: b["keys"][0].update(public_key="AAAA"), "keys[0].public_key"),
    (lambda b: b["keys"][0].update(keyid="00" * 32), "keys[0].keyid"),
    (lambda b: b["keys"].append(dict(b["keys"][0])), "keys[2].keyid"),
    (lambda b: b.update(entries=[]), "entries"),
    (lambda b: b["entries"][3].update(leaf_index=-1), "entries[3].leaf_index"),
    (lambda b: b["entries"][3].update(leaf_index=True), "entries[3].leaf_index"),
    (lambda b: b["entries"][3].update(envelope="{}"), "entries[3].envelope"),
    (lambda b: b["entries"][3].pop("envelope"), "entries[3].envelope"),
    (lambda b: b["entries"][3].update(inclusion_proof="ab"), "entries[3].inclusion_proof"),
    (
        lambda b: b["entries"][3]["inclusion_proof"].__setitem__(1, "AB" * 32),
        "entries[3].inclusion_proof[1]",
    ),
    (
        lambda b: b["entries"][3]["inclusion_proof"].__setitem__(0, "ab"),
        "entries[3].inclusion_proof[0]",
    ),
]


@pytest.mark.parametrize(("change", "field"), CASES)
def test_a_malformed_bundle_names_the_field(
    bundle: dict[str, Any], change: Callable[[dict[str, Any]], Any], field: str
) -> None:
    with pytest.raises(MalformedEvidence) as caught:
        parse_bundle(edit(bundle, change))
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ": ")


def test_a_bundle_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(MalformedEvidence, match="bundle: must be a JSON object"):
        parse_bundle([])
