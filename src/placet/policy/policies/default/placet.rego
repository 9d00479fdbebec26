# placet's shipped policy library: how the rules combine into one decision.
#
# placet asks one question of a bundle: what is data.placet.decision for this proposal?
# Every rule file of this library (package placet) adds to two sets:
#
#   deny_reasons   strings: any one of them denies the proposal;
#   requirements   objects {"reason", "min_approvals", "from", "expires_in"}: each asks for
#                  human approval ("from" = [] means any approver).
#
# and production changes carry a change window (see production.rego). They combine so:
#   1. any deny reason denies, with every deny reason listed (deny wins);
#   2. otherwise any requirement asks for approval with the strictest of them: the most
#      approvals any rule asks for, from the union of the approvers the rules name (a rule
#      naming nobody in particular adds no restriction), expiring at the shortest expiry,
#      with every reason listed;
#   3. otherwise allow.
# Approvers are always distinct from the owner of the proposing agent.
#
# Files: destructive.rego, production.rego, revenue.rego, blast_radius.rego,
# unknown_targets.rego; each has its tests beside it (*_test.rego, `placet policy test`).
package placet

import rego.v1

# How long an approval request stays open when no rule asks for less (seconds; 24 h).
default_expires_in := 86400

# Who may never approve: "proposer-owner" is the human who owns the proposing agent.
approvers_distinct_from := ["proposer-owner"]

decision := {
	"outcome": "deny",
	"reasons": deny_reasons,
} if {
	count(deny_reasons) > 0
} else := {
	"outcome": "require_approval",
	"reasons": {r.reason | some r in requirements},
	"min_approvals": max({r.min_approvals | some r in requirements}),
	"from": {s | some r in requirements; some s in r.from},
	"distinct_from": approvers_distinct_from,
	"expires_in": min({r.expires_in | some r in requirements}),
	"obligations": obligations,
} if {
	count(requirements) > 0
} else := {
	"outcome": "allow",
	"reasons": [sprintf("no rule requires approval in %s", [input.proposal.environment])],
	"obligations": obligations,
}
