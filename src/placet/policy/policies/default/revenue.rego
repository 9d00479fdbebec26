# A revenue path or regulated data in the blast radius needs two approvals from the
# owning team: the owners of the targets ("owner-of:<target>", resolved by placet
# through the System Graph to the teams and people that own each target).
package placet

import rego.v1

# How many owners must approve, and for how long the request stays open.
owner_min_approvals := 2

owner_expires_in := default_expires_in

# Data classes in the blast radius that are NOT regulated; every other class is (a class
# placet does not know is treated as regulated, so a typo cannot fail open).
unregulated_data_classes := {"public", "internal"}

# The owners of every target the graph knows (an unknown target has no known owner;
# unknown_targets.rego asks a human about it).
target_owners := [sprintf("owner-of:%s", [t]) |
	some t in input.proposal.targets
	not t in object.get(input, ["assessment", "unknown_targets"], [])
]

requirements contains {
	"reason": "the blast radius includes a revenue path",
	"min_approvals": owner_min_approvals,
	"from": target_owners,
	"expires_in": owner_expires_in,
} if {
	object.get(input, ["assessment", "blast_radius", "revenue_path"], false) == true
}

requirements contains {
	"reason": sprintf("the blast radius holds regulated data: %s", [class]),
	"min_approvals": owner_min_approvals,
	"from": target_owners,
	"expires_in": owner_expires_in,
} if {
	some class in object.get(input, ["assessment", "blast_radius", "data_classes"], [])
	not class in unregulated_data_classes
}
