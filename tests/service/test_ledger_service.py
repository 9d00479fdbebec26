"""Checkpoints and proofs served from the database-backed log."""

from __future__ import annotations

import pytest

from placet.domain.signing import PublicKey
from placet.evidence import merkle
from placet.evidence.checkpoint import verify_checkpoint
from placet.evidence.errors import ProofError
from placet.service.control_plane import ControlPlane
from tests.conftest import Tokens

BODY = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "staging",
    "intent": "ledger",
    "parameters": {"argv": ["true"]},
}


def test_checkpoints_grow_consistently(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    key: PublicKey = plane.ctx.key.public
    plane.proposals.propose(agent, BODY)
    early = verify_checkpoint(plane.ledger.checkpoint(), key)
    for _ in range(7):
        plane.proposals.propose(agent, BODY)
    late = verify_checkpoint(plane.ledger.checkpoint(), key)
    assert early.size == 3 and late.size == 24
    proof = plane.ledger.consistency_proof(early.size, late.size)
    nodes = [bytes.fromhex(h) for h in proof["consistency_proof"]]
    merkle.verify_consistency(early.size, late.size, early.root, late.root, nodes)
    with pytest.raises(ProofError):  # a different history is not consistent
        merkle.verify_consistency(early.size, late.size, late.root, late.root, nodes)
    inclusion = plane.ledger.inclusion_proof(5, late.size)
    path = [bytes.fromhex(h) for h in inclusion["inclusion_proof"]]
    leaf = bytes.fromhex(inclusion["leaf_hash"])
    merkle.verify_inclusion(5, late.size, leaf, path, late.root)


def test_no_new_checkpoint_without_new_entries(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    assert plane.ledger.sign_checkpoint() is None  # empty log: nothing to sign
    plane.proposals.propose(agent, BODY)
    first = plane.ledger.sign_checkpoint()
    assert first is not None
    assert plane.ledger.sign_checkpoint() is None
    assert plane.ledger.checkpoint() == first
