"""The checks of what runners send (service/runner_checks.py): each bad value is refused
with the field it names, and good values come back normalised."""

from __future__ import annotations

from typing import Any

import pytest

from placet.domain.errors import Forbidden, InputError
from placet.domain.lifecycle import Stage
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.signing import SigningKey
from placet.service.runner_checks import (
    MAX_LEASE_WAIT,
    envelope_sha256,
    is_refusal,
    known_kinds,
    lease_count,
    lease_wait,
    public_key_of,
    report_fields,
    report_sequence,
    require_runner,
)

RUNNER = Principal("01RUNNER", "edge-1", PrincipalKind.RUNNER, "olivia")
AGENT = Principal("01AGENT", "bot", PrincipalKind.AGENT, "olivia")


def field_of(call: Any, *args: Any) -> str:
    with pytest.raises(InputError) as caught:
        call(*args)
    return caught.value.field


def test_only_runners_pass_require_runner() -> None:
    require_runner(RUNNER, "lease")
    with pytest.raises(Forbidden, match="only runners lease and report work"):
        require_runner(AGENT, "lease")


def test_known_kinds_keeps_the_known_ones_sorted_once_and_names_bad_input() -> None:
    assert known_kinds(["shell", "http", "shell", "k8s-restart"]) == ["http", "shell"]
    assert field_of(known_kinds, []) == "kinds"
    assert field_of(known_kinds, "shell") == "kinds"
    assert field_of(known_kinds, ["shell", 3]) == "kinds[1]"
    with pytest.raises(InputError, match="names no action kind this control plane knows"):
        known_kinds(["k8s-restart"])


def test_public_key_of_reads_base64_and_names_the_field() -> None:
    key = SigningKey.generate().public
    assert public_key_of(key.b64) == key
    assert field_of(public_key_of, 42) == "public_key"
    assert field_of(public_key_of, "not a key") == "public_key"


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        ({"ok": False, "error": "capsule refused: it expired"}, True),
        ({"ok": False, "error": "exit 1"}, False),
        ({"ok": True, "error": "capsule refused: x"}, False),
        ({"ok": False}, False),
    ],
)
def test_is_refusal(predicate: dict[str, Any], expected: bool) -> None:
    assert is_refusal(predicate) is expected


def test_report_sequence_defaults_by_stage_and_refuses_non_positive_numbers() -> None:
    assert report_sequence(None, Stage.EXECUTION) == 1
    assert report_sequence(None, Stage.VERIFICATION) == 2
    assert report_sequence(7, Stage.EXECUTION) == 7
    for bad in (0, -1, True, "1", 1.0):
        assert field_of(report_sequence, bad, Stage.EXECUTION) == "sequence"


def test_envelope_sha256_is_stable_and_empty_for_what_is_not_canonical_json() -> None:
    envelope = {"payload": "e30=", "payloadType": "t", "signatures": []}
    assert envelope_sha256(envelope) == envelope_sha256(dict(reversed(envelope.items())))
    assert len(envelope_sha256(envelope)) == 64
    assert envelope_sha256({"x": float("nan")}) == ""


def test_lease_wait_is_bounded_and_lease_count_is_1_to_32() -> None:
    assert lease_wait(None) == 0.0
    assert lease_wait(2) == 2.0
    assert lease_wait(10**6) == MAX_LEASE_WAIT
    bad_waits: tuple[Any, ...] = (-1, True, "5")
    for bad_wait in bad_waits:
        assert field_of(lease_wait, bad_wait) == "wait"
    assert lease_count(None) == 1
    assert lease_count(32) == 32
    for bad in (0, 33, True, "2", 2.0):
        assert field_of(lease_count, bad) == "max"


def test_report_fields_reads_one_report_and_names_what_is_missing() -> None:
    item = {"lease_id": "L1", "stage": "verification", "fencing_token": 3, "envelope": {}}
    assert report_fields(item) == ("L1", 3, {}, Stage.VERIFICATION, None)
    assert field_of(report_fields, ["not", "an", "object"]) == "reports[]"
    assert field_of(report_fields, {**item, "lease_id": ""}) == "lease_id"
    assert field_of(report_fields, {**item, "stage": "closure"}) == "stage"
