# Soak time: a commit must have run in the source target for a while before it is promoted.
#
# data.gates.soak.min_hours.<target>: hours each promoted component must have run in the
# source target (default: no soak).
package atmos.soak

min_hours := object.get(data, ["gates", "soak", "min_hours", input.target.name], 0)

hour_ns := ((60 * 60) * 1000) * 1000000

deny contains {"msg": msg, "code": "SOAK_TIME", "fix": fix} if {
	input.action == "promote"
	min_hours > 0
	some c in input.components
	c.change != "unchanged"
	source := input.state[input.source_target].components[c.name]
	ran_ns := time.parse_rfc3339_ns(input.now) - time.parse_rfc3339_ns(source.deployed_at)
	ran_ns < min_hours * hour_ns
	msg := sprintf("%s has run in %s for %d minute(s); %s needs %v hour(s) of soak", [
		c.name,
		input.source_target,
		floor(ran_ns / (60 * 1000000000)),
		input.target.name,
		min_hours,
	])
	fix := sprintf("wait %d more minute(s), then promote again", [ceil(((min_hours * hour_ns) - ran_ns) / (60 * 1000000000))])
}
