package atmos.freeze_test

import data.atmos.freeze

at(now) := {"target": {"name": "prod"}, "now": now, "metadata": {}}

window := {"windows": [{"start": "2025-12-20T00:00:00Z", "end": "2026-01-05T00:00:00Z", "reason": "year end"}]}

test_inside_a_window_is_denied if {
	some d in freeze.deny with input as at("2025-12-24T10:00:00Z") with data.gates.freeze as window
	d.code == "FREEZE_WINDOW"
	startswith(d.msg, "prod is frozen until 2026-01-05T00:00:00Z (year end)")
}

test_outside_the_window_passes if {
	count(freeze.deny) == 0 with input as at("2026-01-05T00:00:00Z") with data.gates.freeze as window
}

test_other_targets_are_not_frozen if {
	inp := object.union(at("2025-12-24T10:00:00Z"), {"target": {"name": "staging"}})
	count(freeze.deny) == 0 with input as inp with data.gates.freeze as window
}

test_emergency_exception if {
	inp := object.union(at("2025-12-24T10:00:00Z"), {"metadata": {"freeze_exception": "INC-42"}})
	count(freeze.deny) == 0 with input as inp with data.gates.freeze as window
}

test_weekday_in_the_team_time_zone if {
	# Friday 23:30 UTC is Saturday in Tokyo.
	cfg := {"weekdays": ["Saturday", "Sunday"], "timezone": "Asia/Tokyo"}
	some d in freeze.deny with input as at("2025-01-24T23:30:00Z") with data.gates.freeze as cfg
	d.msg == "no changes to prod on Saturday (Asia/Tokyo)"
	count(freeze.deny) == 0 with input as at("2025-01-24T23:30:00Z") with data.gates.freeze as {"weekdays": ["Saturday", "Sunday"]}
}

test_after_hours_wrap_around_midnight if {
	cfg := {"hours": {"from": 18, "to": 8}, "timezone": "Europe/Berlin"}
	# 17:30 UTC is 18:30 in Berlin in winter: frozen.
	some d in freeze.deny with input as at("2025-01-22T17:30:00Z") with data.gates.freeze as cfg
	d.msg == "no changes to prod between 18:00 and 08:00 Europe/Berlin (now 18:30)"
	# 07:30 UTC is 08:30 in Berlin: open.
	count(freeze.deny) == 0 with input as at("2025-01-22T07:30:00Z") with data.gates.freeze as cfg
}

test_daytime_hours if {
	cfg := {"hours": {"from": 12, "to": 13}}
	count(freeze.deny) == 1 with input as at("2025-01-22T12:15:00Z") with data.gates.freeze as cfg
	count(freeze.deny) == 0 with input as at("2025-01-22T13:00:00Z") with data.gates.freeze as cfg
}

test_approving_during_a_freeze_is_allowed if {
	inp := object.union(at("2025-12-24T10:00:00Z"), {"action": "approve"})
	count(freeze.deny) == 0 with input as inp with data.gates.freeze as window
}

test_a_window_says_when_it_ends if {
	some d in freeze.deny with input as {"target": {"name": "prod"}, "now": "2025-12-24T10:00:00Z", "metadata": {}, "action": "promote"}
		with data.gates.freeze as {"windows": [{"start": "2025-12-20T00:00:00Z", "end": "2026-01-05T00:00:00Z", "reason": "year end"}]}
	d.fix == "wait until 2026-01-05T00:00:00Z, or for an emergency add --metadata freeze_exception=<ticket>"
}
