# Required approvals: enough approvals, from the allowed groups, never self-granted (the
# approver may be neither the deployer nor the author of a commit being deployed).
#
# data.gates.approvals.<target>: {min: 2, from_groups: [sre]}   (default min 1, any approver)
# data.gates.approvers.groups.<group>: [emails]
#
# Targets without `requires_approval` are not judged. Too few approvals is `pending` (exit 4,
# `--wait-for-approval` waits for more), not `deny`: approvals can still arrive.
package atmos.approvals

config := object.get(data, ["gates", "approvals", input.target.name], {})

min_approvals := object.get(config, "min", 1)

groups := object.get(config, "from_groups", [])

members contains m if {
	some g in groups
	some m in object.get(data, ["gates", "approvers", "groups", g], [])
}

authors contains c.author_email if some c in input.commits

self_approval(a) if a.approved_by == input.actor

self_approval(a) if a.approved_by in authors

in_groups(_) if count(groups) == 0

in_groups(a) if a.approved_by in members

counted contains a.approved_by if {
	some a in input.approvals
	a.decision == "approve"
	not self_approval(a)
	in_groups(a)
}

# Self-approval is judged on the authors of every commit being deployed: when the list is cut
# short, the rest is unknown, and an unknown is not clean.
deny contains {"msg": msg, "code": "HISTORY_TRUNCATED", "fix": fix} if {
	input.target.requires_approval
	not approving
	input.commits_truncated
	msg := sprintf("more than %d commits reach %s at once: the authors of the rest are unknown, so self-approval cannot be ruled out", [
		count(input.commits),
		input.target.name,
	])
	fix := "promote in smaller steps (an intermediate commit first)"
}

# Missing approvals hold a rollout, not the approvals themselves.
approving if input.action == "approve"

pending contains {"msg": msg, "code": "APPROVALS_MISSING"} if {
	input.target.requires_approval
	not approving
	count(counted) < min_approvals
	msg := sprintf("%s needs %d approval(s)%s; %d count", [
		input.target.name,
		min_approvals,
		group_text,
		count(counted),
	])
}

group_text := sprintf(" from %s", [concat(", ", groups)]) if count(groups) > 0

else := ""

warn contains msg if {
	input.target.requires_approval
	some a in input.approvals
	self_approval(a)
	msg := sprintf("the approval by %s does not count: approvers may not approve their own changes", [a.approved_by])
}

warn contains msg if {
	input.target.requires_approval
	some a in input.approvals
	not self_approval(a)
	not in_groups(a)
	msg := sprintf("the approval by %s does not count: not in %s", [a.approved_by, concat(", ", groups)])
}
