# Tests of unknown_targets.rego.
package placet

import rego.v1

test_unknown_targets_need_one_approval_from_any_approver if {
	d := decision with input.proposal as proposal_of({
		"proposal": {"targets": ["service:checkout", "db:shadow"]},
		"assessment": {"unknown_targets": ["db:shadow"]},
	})
		with input.assessment as assessment_of({
		"proposal": {"targets": ["service:checkout", "db:shadow"]},
		"assessment": {"unknown_targets": ["db:shadow"]},
	})
	d.outcome == "require_approval"
	d.min_approvals == 1
	d.from == set()
	d.reasons == {"target db:shadow is not in the System Graph: a human must look"}
}

test_unknown_targets_each_is_named if {
	d := decision with input.proposal as proposal_of({"assessment": {"unknown_targets": ["a", "b"]}})
		with input.assessment as assessment_of({"assessment": {"unknown_targets": ["a", "b"]}})
	count(d.reasons) == 2
}

test_unknown_targets_without_an_assessment_fail_safe if {
	# No assessment at all: nothing is known to need approval, but the decision is defined.
	d := decision with input.proposal as proposal_of({})
	d.outcome == "allow"
}
