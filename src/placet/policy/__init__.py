"""Policy: Rego bundles decide allow, require_approval or deny for each proposal.

A bundle is a directory of ``.rego`` files whose ``data.placet.decision`` answers for
one input document (see :mod:`placet.policy.input`). Evaluation fails closed: anything
but a well-formed decision raises :class:`PolicyError`.
"""

from placet.policy.bundle import (
    DEFAULT_BUNDLE_NAME,
    POLICY_DIR_ENV,
    PolicyBundle,
    bundle_digest,
    configured_bundle,
    default_bundle,
)
from placet.policy.durations import format_duration, parse_duration
from placet.policy.engine import DECISION_RULE, DEFAULT_TIMEOUT_SECONDS, decision_from
from placet.policy.errors import PolicyError
from placet.policy.input import build_input, rfc3339, sample_input
from placet.policy.regocpp import Answer

__all__ = [
    "DECISION_RULE",
    "DEFAULT_BUNDLE_NAME",
    "DEFAULT_TIMEOUT_SECONDS",
    "POLICY_DIR_ENV",
    "Answer",
    "PolicyBundle",
    "PolicyError",
    "build_input",
    "bundle_digest",
    "configured_bundle",
    "decision_from",
    "default_bundle",
    "format_duration",
    "parse_duration",
    "rfc3339",
    "sample_input",
]
