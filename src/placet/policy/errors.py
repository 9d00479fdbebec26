"""The policy room's one error: a bundle that cannot load, or a decision that cannot be trusted."""

from __future__ import annotations

from placet.domain.errors import PlacetError


class PolicyError(PlacetError):
    """A policy bundle failed to load or to decide; the message names the file or the problem.

    Raised for every engine failure so the caller can fail closed: a proposal whose
    policy evaluation raises this ends ``failed`` and nothing executes.
    """
