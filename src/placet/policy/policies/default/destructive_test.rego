# Tests of destructive.rego.
package placet

import rego.v1

test_destructive_kinds_are_denied_everywhere if {
	every kind in ["delete_resource", "drop_database", "destroy_environment", "purge_data"] {
		d := decision with input.proposal as proposal_of({"proposal": {"kind": kind}})
		d.outcome == "deny"
		d.reasons == {sprintf("action kind %s is destructive and is never allowed for agents", [kind])}
	}
}

test_destructive_kinds_are_denied_in_production_too if {
	d := decision with input.proposal as proposal_of({"proposal": {"kind": "purge_data", "environment": "production"}})
	d.outcome == "deny"
}

test_destructive_other_kinds_are_not_denied if {
	d := decision with input.proposal as proposal_of({"proposal": {"kind": "deploy"}})
		with input.assessment as assessment_of({"proposal": {"kind": "deploy"}})
	d.outcome == "allow"
}
