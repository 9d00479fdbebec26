# Tests of production.rego.
package placet

import rego.v1

test_production_needs_one_approval_from_any_approver if {
	d := decision with input.proposal as proposal_of({"proposal": {"environment": "production"}})
		with input.assessment as assessment_of({"proposal": {"environment": "production"}})
	d.outcome == "require_approval"
	d.min_approvals == 1
	d.from == set()
	d.reasons == {"changes in production need human approval"}
}

test_production_other_environments_need_none if {
	every environment in ["staging", "dev", "qa"] {
		d := decision with input.proposal as proposal_of({"proposal": {"environment": environment}})
		with input.assessment as assessment_of({"proposal": {"environment": environment}})
		d.outcome == "allow"
	}
}

tagged := {"assessment": {"blast_radius": {"count": 2, "tags": ["business-hours"]}}}

test_production_changes_carry_the_change_window if {
	d := decision with input.proposal as proposal_of({"proposal": {"environment": "production"}})
		with input.assessment as assessment_of(tagged)
	d.obligations.change_window == {
		"days": ["mon", "tue", "wed", "thu", "fri"],
		"start": "08:00",
		"end": "18:00",
		"timezone": "UTC",
	}
}

test_production_change_window_only_in_production if {
	d := decision with input.proposal as proposal_of({})
		with input.assessment as assessment_of(tagged)
	d.obligations == {}
}

test_production_change_window_only_for_tagged_targets if {
	d := decision with input.proposal as proposal_of({"proposal": {"environment": "production"}})
		with input.assessment as assessment_of({})
	d.obligations == {}
}
