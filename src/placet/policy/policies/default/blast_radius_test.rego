# Tests of blast_radius.rego.
package placet

import rego.v1

radius(n) := {"assessment": {"blast_radius": {"count": n}}}

test_blast_radius_up_to_25_nodes_needs_nothing if {
	d := decision with input.proposal as proposal_of({})
		with input.assessment as assessment_of(radius(25))
	d.outcome == "allow"
}

test_blast_radius_over_25_nodes_needs_one_approval if {
	d := decision with input.proposal as proposal_of({})
		with input.assessment as assessment_of(radius(26))
	d.outcome == "require_approval"
	d.min_approvals == 1
	d.reasons == {"the blast radius is 26 nodes, more than 25"}
	e := decision with input.proposal as proposal_of({})
		with input.assessment as assessment_of(radius(200))
	e.min_approvals == 1
}

test_blast_radius_over_200_nodes_needs_two_approvals if {
	d := decision with input.proposal as proposal_of({})
		with input.assessment as assessment_of(radius(201))
	d.min_approvals == 2
	d.from == set()
	d.reasons == {"the blast radius is 201 nodes, more than 200"}
}
