# Unknown targets need a human: a target the System Graph does not hold (or any target,
# before a graph is imported) needs one approval from any approver. placet never allows
# a change it cannot see.
package placet

import rego.v1

unknown_min_approvals := 1

unknown_expires_in := default_expires_in

requirements contains {
	"reason": sprintf("target %s is not in the System Graph: a human must look", [target]),
	"min_approvals": unknown_min_approvals,
	"from": [],
	"expires_in": unknown_expires_in,
} if {
	some target in object.get(input, ["assessment", "unknown_targets"], [])
}
