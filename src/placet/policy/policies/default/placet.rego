# The default placet policy.
#
# placet asks one question of a policy bundle: what is data.placet.decision for this
# proposal? The answer is an object:
#
#   {"outcome": "allow" | "require_approval" | "deny",
#    "reasons": ["why, in words a reviewer reads"],
#    "approvals": {"count": <humans needed>, "any_of": [<names, "team:T" or "role:R">]}}
#
# This bundle says:
#   1. deny destructive action kinds, in every environment;
#   2. otherwise require one human approval for changes in production;
#   3. otherwise allow.
# A deny always wins over an approval requirement, which wins over an allow.
#
# If the decision is undefined (for instance the input has no environment) placet
# fails closed: the proposal ends `failed` and nothing runs.
package placet

import rego.v1

# Action kinds that destroy what cannot be restored. Kept as data: add a kind here to
# forbid it everywhere.
destructive_kinds := {
	"delete_resource",
	"drop_database",
	"destroy_environment",
	"purge_data",
}

# Environments in which every change needs a human's approval first.
approval_environments := {"production"}

# One approval from any human who may approve (an empty any_of names no one in particular).
production_approvals := {"count": 1, "any_of": []}

# allow and deny need no approvals.
no_approvals := {"count": 0, "any_of": []}

kind := input.proposal.kind

environment := input.proposal.environment

decision := {
	"outcome": "deny",
	"reasons": [sprintf("action kind %s is destructive and is never allowed", [kind])],
	"approvals": no_approvals,
} if {
	kind in destructive_kinds
} else := {
	"outcome": "require_approval",
	"reasons": [sprintf("changes in %s need one human approval", [environment])],
	"approvals": production_approvals,
} if {
	environment in approval_environments
} else := {
	"outcome": "allow",
	"reasons": [sprintf("no rule requires approval in %s", [environment])],
	"approvals": no_approvals,
}
