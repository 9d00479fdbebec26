# Tests of how the library's rules combine (placet.rego), and the inputs the other tests
# start from. Run them with `placet policy test DIR`.
package placet

import rego.v1

# A quiet staging restart of one known target: no rule applies.
quiet := {
	"proposal": {"kind": "restart", "environment": "staging", "targets": ["service:checkout"]},
	"assessment": {
		"unknown_targets": [],
		"blast_radius": {"count": 2, "revenue_path": false, "data_classes": []},
	},
}

# The parts of ``quiet`` with ``patch`` merged in (objects merge key by key, deeply).
# Tests replace input.proposal and input.assessment separately, through these functions:
# rego-cpp mishandles ``with input as {...}`` (the whole input) and ``with ... as <rule>``.
proposal_of(patch) := object.union(quiet.proposal, object.get(patch, "proposal", {}))

assessment_of(patch) := object.union(quiet.assessment, object.get(patch, "assessment", {}))

test_combine_allows_when_no_rule_applies if {
	d := decision with input.proposal as proposal_of({})
		with input.assessment as assessment_of({})
	d.outcome == "allow"
	d.reasons == ["no rule requires approval in staging"]
	not d.min_approvals
}

test_combine_deny_wins_over_every_requirement if {
	d := decision with input.proposal as proposal_of({
		"proposal": {"kind": "drop_database", "environment": "production", "targets": ["db:orders", "db:ghost"]},
		"assessment": {
			"unknown_targets": ["db:ghost"],
			"blast_radius": {"count": 500, "revenue_path": true, "data_classes": ["pci"]},
		},
	})
		with input.assessment as assessment_of({
		"proposal": {"kind": "drop_database", "environment": "production", "targets": ["db:orders", "db:ghost"]},
		"assessment": {
			"unknown_targets": ["db:ghost"],
			"blast_radius": {"count": 500, "revenue_path": true, "data_classes": ["pci"]},
		},
	})
	d.outcome == "deny"
	d.reasons == {"action kind drop_database is destructive and is never allowed for agents"}
	not d.min_approvals
}

test_combine_takes_the_strictest_requirement_and_lists_every_reason if {
	d := decision with input.proposal as proposal_of({
		"proposal": {"environment": "production", "targets": ["service:checkout", "service:ghost"]},
		"assessment": {
			"unknown_targets": ["service:ghost"],
			"blast_radius": {"count": 30, "revenue_path": true},
		},
	})
		with input.assessment as assessment_of({
		"proposal": {"environment": "production", "targets": ["service:checkout", "service:ghost"]},
		"assessment": {
			"unknown_targets": ["service:ghost"],
			"blast_radius": {"count": 30, "revenue_path": true},
		},
	})
	d.outcome == "require_approval"
	d.min_approvals == 2
	d.from == {"owner-of:service:checkout"}
	d.expires_in == 86400
	count(d.reasons) == 4
	d.distinct_from == ["proposer-owner"]
}

test_combine_expiry_is_the_default_unless_a_rule_asks_for_less if {
	d := decision with input.proposal as proposal_of({"proposal": {"environment": "production"}})
		with input.assessment as assessment_of({"proposal": {"environment": "production"}})
	d.expires_in == default_expires_in
}

test_combine_approvers_are_never_the_proposers_owner if {
	d := decision with input.proposal as proposal_of({"proposal": {"environment": "production"}})
		with input.assessment as assessment_of({"proposal": {"environment": "production"}})
	"proposer-owner" in d.distinct_from
}
