package atmos.promotion_test

import data.atmos.promotion

base := {
	"action": "promote",
	"source_target": "staging",
	"target": {"name": "prod", "promotion_from": ["staging"]},
	"flags": {"skip_promotion_check": false},
}

test_allowed_source_passes if {
	count(promotion.deny) == 0 with input as base
}

test_wrong_source_is_denied if {
	some d in promotion.deny with input as object.union(base, {"source_target": "dev"})
	d.code == "PROMOTION_PATH"
	d.msg == "prod may be promoted only from staging, not from dev"
}

test_direct_rollout_to_promoted_target_is_denied if {
	msgs := {d.msg | some d in promotion.deny} with input as object.union(base, {"action": "rollout", "source_target": null})
	msgs == {"prod takes new code only by promotion from staging"}
}

test_rollback_is_not_judged_here if {
	count(promotion.deny) == 0 with input as object.union(base, {"action": "rollback", "source_target": null})
}

test_skip_is_refused_for_protected_targets if {
	codes := {d.code | some d in promotion.deny} with input as object.union(base, {"source_target": "dev", "flags": {"skip_promotion_check": true}})
	codes == {"PROMOTION_SKIP_FORBIDDEN"}
}

test_skip_is_allowed_elsewhere if {
	count(promotion.deny) == 0 with input as object.union(base, {"source_target": "dev", "target": {"name": "staging", "promotion_from": ["dev"]}, "flags": {"skip_promotion_check": true}})
}

test_protected_targets_come_from_data if {
	count(promotion.deny) == 0 with input as object.union(base, {"source_target": "dev", "flags": {"skip_promotion_check": true}})
		with data.gates.promotion.protected_targets as ["prod-eu"]
}
