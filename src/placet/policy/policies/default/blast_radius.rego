# Blast-radius thresholds: a change that reaches many nodes needs approval, one that
# reaches very many needs two.
package placet

import rego.v1

# More affected nodes than large_blast_radius needs large_min_approvals approvals; more
# than huge_blast_radius needs huge_min_approvals (from any approver).
large_blast_radius := 25

large_min_approvals := 1

huge_blast_radius := 200

huge_min_approvals := 2

blast_radius_expires_in := default_expires_in

blast_radius_count := object.get(input, ["assessment", "blast_radius", "count"], 0)

requirements contains {
	"reason": sprintf("the blast radius is %d nodes, more than %d", [blast_radius_count, large_blast_radius]),
	"min_approvals": large_min_approvals,
	"from": [],
	"expires_in": blast_radius_expires_in,
} if {
	blast_radius_count > large_blast_radius
	blast_radius_count <= huge_blast_radius
}

requirements contains {
	"reason": sprintf("the blast radius is %d nodes, more than %d", [blast_radius_count, huge_blast_radius]),
	"min_approvals": huge_min_approvals,
	"from": [],
	"expires_in": blast_radius_expires_in,
} if {
	blast_radius_count > huge_blast_radius
}
