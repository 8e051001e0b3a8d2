package atmos.soak_test

import data.atmos.soak

promotion(deployed_at) := {
	"action": "promote",
	"source_target": "staging",
	"target": {"name": "prod"},
	"now": "2025-01-22T12:00:00Z",
	"components": [{"name": "api", "change": "changed"}],
	"state": {"staging": {"components": {"api": {"deployed_at": deployed_at}}}},
}

test_too_fresh_is_denied if {
	some d in soak.deny with input as promotion("2025-01-22T11:30:00Z")
		with data.gates.soak.min_hours as {"prod": 2}
	d.msg == "api has run in staging for 30 minute(s); prod needs 2 hour(s) of soak"
	d.code == "SOAK_TIME"
}

test_soaked_long_enough_passes if {
	count(soak.deny) == 0 with input as promotion("2025-01-22T09:00:00Z")
		with data.gates.soak.min_hours as {"prod": 2}
}

test_no_soak_configured_passes if {
	count(soak.deny) == 0 with input as promotion("2025-01-22T11:59:00Z")
}

test_unchanged_components_are_not_judged if {
	inp := object.union(promotion("2025-01-22T11:59:00Z"), {"components": [{"name": "api", "change": "unchanged"}]})
	count(soak.deny) == 0 with input as inp with data.gates.soak.min_hours as {"prod": 2}
}

test_the_denial_says_how_long_to_wait if {
	some d in soak.deny with input as promotion("2025-01-22T11:30:00Z")
		with data.gates.soak.min_hours as {"prod": 2}
	d.fix == "wait 90 more minute(s), then promote again"
}
