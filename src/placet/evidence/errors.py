"""The evidence room's errors: each names what failed so an auditor can act on it."""

from __future__ import annotations

from placet.domain.errors import PlacetError


class EvidenceError(PlacetError):
    """Evidence (a statement, proof, checkpoint or bundle) does not check out."""


class MalformedEvidence(EvidenceError):
    """A statement or bundle is not in the expected shape; names the field and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class ProofError(EvidenceError):
    """A Merkle inclusion or consistency proof does not verify."""


class CheckpointError(EvidenceError):
    """A checkpoint note is malformed, or its signature does not verify."""
