# Change freezes: no changes to frozen targets during freeze windows, on frozen weekdays, or
# outside working hours, in the team's time zone. An emergency change passes with
# `--metadata freeze_exception=<ticket>` (recorded in the tags).
#
# data.gates.freeze:
#   targets: [prod]                      (default [prod])
#   timezone: Europe/Berlin              (default UTC)
#   windows: [{start: 2025-12-20T00:00:00Z, end: 2026-01-05T00:00:00Z, reason: year end}]
#   weekdays: [Saturday, Sunday]
#   hours: {from: 18, to: 8}             (frozen from 18:00 to 08:00 local time)
package atmos.freeze

config := object.get(data, ["gates", "freeze"], {})

targets := object.get(config, "targets", ["prod"])

tz := object.get(config, "timezone", "UTC")

now_ns := time.parse_rfc3339_ns(input.now)

# An approval changes nothing: approving during a freeze is allowed; the rollout is not.
approving if input.action == "approve"

applies if {
	input.target.name in targets
	not approving
	not input.metadata.freeze_exception
}

deny contains {"msg": msg, "code": "FREEZE_WINDOW", "fix": fix} if {
	applies
	some w in object.get(config, "windows", [])
	now_ns >= time.parse_rfc3339_ns(w.start)
	now_ns < time.parse_rfc3339_ns(w.end)
	msg := sprintf("%s is frozen until %s (%s); use --metadata freeze_exception=<ticket> for an emergency", [
		input.target.name,
		w.end,
		object.get(w, "reason", "change freeze"),
	])
	fix := sprintf("wait until %s, or for an emergency add --metadata freeze_exception=<ticket>", [w.end])
}

deny contains {"msg": msg, "code": "FREEZE_WEEKDAY"} if {
	applies
	day := time.weekday([now_ns, tz])
	day in object.get(config, "weekdays", [])
	msg := sprintf("no changes to %s on %s (%s)", [input.target.name, day, tz])
}

frozen_hour(h) if {
	config.hours.from > config.hours.to
	h >= config.hours.from
}

frozen_hour(h) if {
	config.hours.from > config.hours.to
	h < config.hours.to
}

frozen_hour(h) if {
	config.hours.from <= config.hours.to
	h >= config.hours.from
	h < config.hours.to
}

deny contains {"msg": msg, "code": "FREEZE_HOURS"} if {
	applies
	[h, m, _] := time.clock([now_ns, tz])
	frozen_hour(h)
	msg := sprintf("no changes to %s between %02d:00 and %02d:00 %s (now %02d:%02d)", [
		input.target.name,
		config.hours.from,
		config.hours.to,
		tz,
		h,
		m,
	])
}
