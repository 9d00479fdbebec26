# Production needs a human: one approval from any approver. A production change whose blast
# radius holds a node the System Graph tags `business-hours` may start only inside the
# change window.
package placet

import rego.v1

# Environments in which every change needs human approval first.
approval_environments := {"production"}

# How many approvals a production change needs, and for how long the request stays open.
production_min_approvals := 1

production_expires_in := default_expires_in

# Environments whose changes carry the change window obligation when a target has one of
# change_window_tags in its blast radius, and the window itself: execution may start only inside it (days
# mon..sun, 24-hour times, an IANA time zone). Tag nodes in the graph to opt them in.
change_window_environments := {"production"}

change_window_tags := {"business-hours"}

change_window := {
	"days": ["mon", "tue", "wed", "thu", "fri"],
	"start": "08:00",
	"end": "18:00",
	"timezone": "UTC",
}

requirements contains {
	"reason": sprintf("changes in %s need human approval", [environment]),
	"min_approvals": production_min_approvals,
	"from": [],
	"expires_in": production_expires_in,
} if {
	environment := input.proposal.environment
	environment in approval_environments
}

obligations := {"change_window": change_window} if {
	input.proposal.environment in change_window_environments
	some tag in object.get(input, ["assessment", "blast_radius", "tags"], [])
	tag in change_window_tags
} else := {}
