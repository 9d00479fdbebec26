# Tests of revenue.rego.
package placet

import rego.v1

two_targets(_) := {"proposal": {"targets": ["service:checkout", "service:payments"]}}

test_revenue_path_needs_two_approvals_from_the_target_owners if {
	d := decision with input.proposal as proposal_of(two_targets(0))
		with input.assessment as assessment_of({"assessment": {"blast_radius": {"revenue_path": true}}})
	d.outcome == "require_approval"
	d.min_approvals == 2
	d.from == {"owner-of:service:checkout", "owner-of:service:payments"}
	d.reasons == {"the blast radius includes a revenue path"}
}

test_regulated_data_needs_two_approvals_from_the_target_owners if {
	d := decision with input.proposal as proposal_of({"assessment": {"blast_radius": {"data_classes": ["pii", "pci"]}}})
		with input.assessment as assessment_of({"assessment": {"blast_radius": {"data_classes": ["pii", "pci"]}}})
	d.outcome == "require_approval"
	d.min_approvals == 2
	d.from == {"owner-of:service:checkout"}
	d.reasons == {
		"the blast radius holds regulated data: pci",
		"the blast radius holds regulated data: pii",
	}
}

test_regulated_unknown_classes_count_as_regulated if {
	d := decision with input.proposal as proposal_of({"assessment": {"blast_radius": {"data_classes": ["secretz"]}}})
		with input.assessment as assessment_of({"assessment": {"blast_radius": {"data_classes": ["secretz"]}}})
	d.min_approvals == 2
}

test_regulated_public_and_internal_data_need_nothing if {
	d := decision with input.proposal as proposal_of({"assessment": {"blast_radius": {"data_classes": ["public", "internal"]}}})
		with input.assessment as assessment_of({"assessment": {"blast_radius": {"data_classes": ["public", "internal"]}}})
	d.outcome == "allow"
}

test_revenue_unknown_targets_are_not_owner_of if {
	d := decision with input.proposal as proposal_of({
		"proposal": {"targets": ["service:checkout", "service:ghost"]},
		"assessment": {"unknown_targets": ["service:ghost"], "blast_radius": {"revenue_path": true}},
	})
		with input.assessment as assessment_of({
		"proposal": {"targets": ["service:checkout", "service:ghost"]},
		"assessment": {"unknown_targets": ["service:ghost"], "blast_radius": {"revenue_path": true}},
	})
	d.from == {"owner-of:service:checkout"}
	d.min_approvals == 2
}
