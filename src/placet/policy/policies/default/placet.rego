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
#   2. otherwise require one human approval when any of these holds:
#      - the change is in production;
#      - a target is not in the System Graph (placet never allows blind);
#      - the blast radius holds a revenue path or regulated data;
#      - the blast radius is larger than max_blast_radius nodes;
#   3. otherwise allow.
# A deny always wins over an approval requirement, which wins over an allow. Every
# reason that applies is listed.
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

# More affected nodes than this needs a human's approval.
max_blast_radius := 25

# One approval from any human who may approve (an empty any_of names no one in particular).
one_approval := {"count": 1, "any_of": []}

# allow and deny need no approvals.
no_approvals := {"count": 0, "any_of": []}

kind := input.proposal.kind

environment := input.proposal.environment


approval_reasons contains sprintf("changes in %s need one human approval", [environment]) if {
	environment in approval_environments
}

approval_reasons contains sprintf("target %s is not in the System Graph: a human must look", [t]) if {
	some t in object.get(input, ["assessment", "unknown_targets"], [])
}

approval_reasons contains "the blast radius includes a revenue path" if {
	object.get(input, ["assessment", "blast_radius", "revenue_path"], false) == true
}

approval_reasons contains sprintf("the blast radius holds regulated data: %s", [c]) if {
	some c in object.get(input, ["assessment", "blast_radius", "data_classes"], [])
}

approval_reasons contains sprintf("the blast radius is %d nodes, more than %d", [n, max_blast_radius]) if {
	n := object.get(input, ["assessment", "blast_radius", "count"], 0)
	n > max_blast_radius
}

decision := {
	"outcome": "deny",
	"reasons": [sprintf("action kind %s is destructive and is never allowed", [kind])],
	"approvals": no_approvals,
} if {
	kind in destructive_kinds
} else := {
	"outcome": "require_approval",
	"reasons": sort([r | some r in approval_reasons]),
	"approvals": one_approval,
} if {
	count(approval_reasons) > 0
} else := {
	"outcome": "allow",
	"reasons": [sprintf("no rule requires approval in %s", [environment])],
	"approvals": no_approvals,
}
