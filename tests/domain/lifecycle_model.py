"""The lifecycle as DESIGN.md draws it, written out independently of the machine's TABLE.

The tests compare the machine against this, so a change to the table is a change that
a test notices (and that must be made in both places on purpose).
"""

from __future__ import annotations

from placet.domain.lifecycle import Stage, State

CLOSED: frozenset[State] = frozenset(
    {State.SUCCEEDED, State.FAILED, State.DENIED, State.CANCELLED, State.EXPIRED}
)
NOT_CLOSED: frozenset[State | None] = frozenset(State) - CLOSED
# A running capsule is not cancelled or expired from outside; it ends by report or fail.
QUIET: frozenset[State | None] = NOT_CLOSED - {State.EXECUTING, State.VERIFYING}

# event name -> (states it is accepted in, the stage its transitions are recorded under)
DESIGNED: dict[str, tuple[frozenset[State | None], Stage]] = {
    "propose": (frozenset({None}), Stage.PROPOSAL),
    "assess": (frozenset({State.PROPOSED}), Stage.ASSESSMENT),
    "validate": (frozenset({State.ASSESSED}), Stage.VALIDATION),
    "decide": (frozenset({State.ASSESSED, State.VALIDATING}), Stage.DECISION),
    "approve": (frozenset({State.PENDING_APPROVAL}), Stage.APPROVAL),
    "deny": (frozenset({State.PENDING_APPROVAL}), Stage.APPROVAL),
    # the escalation group joins the eligible approvers; the proposal stays pending
    "escalate": (frozenset({State.PENDING_APPROVAL}), Stage.APPROVAL),
    "cancel": (QUIET, Stage.CLOSURE),
    "lease": (frozenset({State.AUTHORIZED}), Stage.CAPSULE),
    "report_execution": (frozenset({State.EXECUTING}), Stage.EXECUTION),
    "report_verification": (frozenset({State.VERIFYING}), Stage.VERIFICATION),
    # the runner was lost: an idempotent action with retries left is authorized again
    "requeue": (frozenset({State.EXECUTING, State.VERIFYING}), Stage.REQUEUE),
    "expire": (QUIET, Stage.CLOSURE),
    "fail": (NOT_CLOSED, Stage.CLOSURE),
}
