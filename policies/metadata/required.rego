# Required metadata: some targets need a reference with every change (a ticket, a PR), given
# as `--metadata key=value` and recorded in the tags.
#
# data.gates.required_metadata.<target>: {ticket: "^[A-Z]+-[0-9]+$", pr: ""}
#   key → regular expression the value must match ("" for any non-empty value).
package atmos.metadata

required := object.get(data, ["gates", "required_metadata", input.target.name], {})

# Approvals carry no --metadata; the rollout they approve is checked when it runs.
approving if input.action == "approve"

deny contains {"msg": msg, "code": "METADATA_MISSING", "fix": fix} if {
	not approving
	some key, pattern in required
	not input.metadata[key]
	msg := sprintf("%s needs --metadata %s=<value>", [input.target.name, key])
	fix := sprintf("add --metadata %s=<value>%s to the rollout", [key, matching(pattern)])
}

matching(pattern) := sprintf(" (matching %s)", [pattern]) if pattern != ""

else := ""

deny contains {"msg": msg, "code": "METADATA_INVALID", "fix": fix} if {
	not approving
	some key, pattern in required
	value := input.metadata[key]
	pattern != ""
	not regex.match(pattern, value)
	msg := sprintf("--metadata %s=%s does not match %s", [key, value, pattern])
	fix := sprintf("pass --metadata %s=<value> with a value matching %s", [key, pattern])
}
