package atmos.approvals_test

import data.atmos.approvals

base := {
	"target": {"name": "prod", "requires_approval": true},
	"actor": "ci@example.com",
	"commits": [{"author_email": "dev@example.com"}],
	"approvals": [],
}

approve(who) := {"approved_by": who, "decision": "approve"}

rules := {"approvals": {"prod": {"min": 2, "from_groups": ["sre"]}}, "approvers": {"groups": {"sre": ["alice@example.com", "bob@example.com", "dev@example.com"]}}}

test_no_approvals_is_pending_not_denied if {
	count(approvals.pending) == 1 with input as base with data.gates as rules
}

test_quorum_reached if {
	count(approvals.pending) == 0 with input as object.union(base, {"approvals": [approve("alice@example.com"), approve("bob@example.com")]})
		with data.gates as rules
}

test_quorum_not_reached if {
	some d in approvals.pending with input as object.union(base, {"approvals": [approve("alice@example.com")]})
		with data.gates as rules
	d.msg == "prod needs 2 approval(s) from sre; 1 count"
}

test_author_cannot_approve if {
	inp := object.union(base, {"approvals": [approve("alice@example.com"), approve("dev@example.com")]})
	count(approvals.pending) == 1 with input as inp with data.gates as rules
	approvals.warn == {"the approval by dev@example.com does not count: approvers may not approve their own changes"} with input as inp with data.gates as rules
}

test_deployer_cannot_approve if {
	inp := object.union(base, {"actor": "bob@example.com", "approvals": [approve("alice@example.com"), approve("bob@example.com")]})
	count(approvals.pending) == 1 with input as inp with data.gates as rules
}

test_outsider_does_not_count if {
	inp := object.union(base, {"approvals": [approve("alice@example.com"), approve("mallory@example.com")]})
	count(approvals.pending) == 1 with input as inp with data.gates as rules
	approvals.warn == {"the approval by mallory@example.com does not count: not in sre"} with input as inp with data.gates as rules
}

test_rejections_do_not_count if {
	inp := object.union(base, {"approvals": [approve("alice@example.com"), {"approved_by": "bob@example.com", "decision": "reject"}]})
	count(approvals.pending) == 1 with input as inp with data.gates as rules
}

test_default_is_one_approval_from_anyone if {
	count(approvals.pending) == 0 with input as object.union(base, {"approvals": [approve("carol@example.com")]})
}

test_targets_without_approval_are_not_judged if {
	count(approvals.pending) == 0 with input as object.union(base, {"target": {"name": "dev", "requires_approval": false}, "approvals": [approve("dev@example.com")]})
}

test_an_approval_is_not_held_for_missing_approvals if {
	count(approvals.pending) == 0 with input as object.union(base, {"action": "approve"}) with data.gates as rules
}

test_a_truncated_commit_list_is_not_clean if {
	inp := object.union(base, {"commits_truncated": true, "approvals": [approve("alice@example.com"), approve("bob@example.com")]})
	some d in approvals.deny with input as inp with data.gates as rules
	d.code == "HISTORY_TRUNCATED"
	d.fix == "promote in smaller steps (an intermediate commit first)"
}

test_a_complete_commit_list_is_judged if {
	inp := object.union(base, {"commits_truncated": false, "approvals": [approve("alice@example.com"), approve("bob@example.com")]})
	count(approvals.deny) == 0 with input as inp with data.gates as rules
}
