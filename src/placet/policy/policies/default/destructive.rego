# Destructive action kinds are denied to agents, in every environment.
#
# Every proposal comes from an agent, so a kind listed here is never run by placet:
# a human who must do it does it outside placet's agent path.
package placet

import rego.v1

# Action kinds that destroy what cannot be restored. Add a kind to forbid it everywhere.
destructive_kinds := {
	"delete_resource",
	"drop_database",
	"destroy_environment",
	"purge_data",
}

deny_reasons contains sprintf("action kind %s is destructive and is never allowed for agents", [kind]) if {
	kind := input.proposal.kind
	kind in destructive_kinds
}
