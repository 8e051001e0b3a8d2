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

test_a_roll_forward_is_a_rollout_of_code_the_target_ran if {
	inp := object.union(base, {
		"action": "rollout",
		"source_target": null,
		"rules": {"source": "refs/remotes/origin/main", "branch": "main"},
		"components": [
			{"name": "api", "new": "abc", "change": "roll-forward", "on_trusted_ref": false},
			{"name": "worker", "new": "abc", "change": "unchanged", "on_trusted_ref": false},
		],
	})
	count(promotion.deny) == 0 with input as inp
}

test_a_roll_forward_with_new_code_beside_it_is_judged_as_a_rollout if {
	inp := object.union(base, {
		"action": "rollout",
		"source_target": null,
		"rules": {"source": "refs/remotes/origin/main", "branch": "main"},
		"components": [
			{"name": "api", "new": "abc", "change": "roll-forward", "on_trusted_ref": true},
			{"name": "worker", "new": "abc", "change": "changed", "on_trusted_ref": false},
		],
	})
	codes := {d.code | some d in promotion.deny} with input as inp
	codes == {"PROMOTION_PATH", "NOT_ON_TRUSTED_REF"}
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

test_protected_targets_take_only_merged_commits if {
	inp := object.union(base, {
		"rules": {"source": "refs/remotes/origin/main", "branch": "main"},
		"components": [{"name": "api", "new": "abcdef0123456789", "change": "changed", "on_trusted_ref": false}],
	})
	some d in promotion.deny with input as inp
	d.code == "NOT_ON_TRUSTED_REF"
	d.msg == "prod takes only commits on refs/remotes/origin/main; abcdef0 of api is not (a feature branch, or not merged yet)"
	d.fix == "merge it into main (refs/remotes/origin/main), then promote the merged commit"
}

test_merged_commits_and_rollbacks_pass if {
	merged := object.union(base, {"components": [{"name": "api", "new": "abc", "change": "changed", "on_trusted_ref": true}]})
	count(promotion.deny) == 0 with input as merged
	rollback := object.union(base, {"action": "rollback", "source_target": null, "components": [{"name": "api", "new": "abc", "change": "rollback", "on_trusted_ref": false}]})
	count(promotion.deny) == 0 with input as rollback
}

test_unprotected_targets_take_feature_branches if {
	inp := object.union(base, {
		"target": {"name": "staging", "promotion_from": ["dev"]},
		"source_target": "dev",
		"components": [{"name": "api", "new": "abc", "change": "changed", "on_trusted_ref": false}],
	})
	count(promotion.deny) == 0 with input as inp
}

test_the_skip_refusal_says_what_to_do_instead if {
	some d in promotion.deny with input as object.union(base, {"source_target": "dev", "flags": {"skip_promotion_check": true}})
	d.fix == "follow the promotion path: promote to prod from staging"
}

image_promotion(prod_digest, staging_digest) := object.union(base, {
	"components": [{"name": "api", "type": "nixpack", "change": "changed", "new": "abc1234def", "on_trusted_ref": true, "image_digest": prod_digest, "provenance": {"verified": true}}],
	"state": {"staging": {"components": {"api": {"image_digest": staging_digest}}}},
})

test_prod_runs_the_image_staging_ran if {
	count(promotion.deny) == 0 with input as image_promotion("sha256:aaaa", "sha256:aaaa")
}

test_a_rebuilt_image_is_refused_for_prod if {
	some d in promotion.deny with input as image_promotion("sha256:bbbbbbbbbbbbbbbbbbbbbbbb", "sha256:aaaaaaaaaaaaaaaaaaaaaaaa")
	d.code == "ARTIFACT_MISMATCH"
	d.msg == "prod must run the image staging ran (sha256:aaaaaaaaaaaa), not sha256:bbbbbbbbbbbb"
}

test_an_image_without_a_recorded_digest_is_refused_for_prod if {
	some d in promotion.deny with input as image_promotion(null, "sha256:aaaaaaaaaaaaaaaaaaaaaaaa")
	d.code == "ARTIFACT_MISMATCH"
	d.msg == "prod must run the image staging ran (sha256:aaaaaaaaaaaa), not an image with no recorded digest"
}

test_unprotected_targets_are_not_judged_on_digests if {
	input_staging := object.union(image_promotion("sha256:b", "sha256:a"), {"target": {"name": "staging", "promotion_from": ["dev"]}, "source_target": "dev"})
	count(promotion.deny) == 0 with input as input_staging
}

signed_promotion(provenance, digest) := object.union(base, {"components": [{
	"name": "api",
	"type": "nixpack",
	"change": "changed",
	"new": "abc1234",
	"on_trusted_ref": true,
	"image_digest": digest,
	"provenance": provenance,
}]})

test_verified_provenance_passes if {
	codes := {d.code | some d in promotion.deny} with input as signed_promotion({"verified": true, "builder": "ci@example.com"}, "sha256:aa")
	not "PROVENANCE_UNVERIFIED" in codes
}

test_unverified_provenance_is_denied_with_its_reason if {
	some d in promotion.deny with input as signed_promotion({"verified": false, "reason": "its signature does not verify"}, "sha256:aa")
	d.code == "PROVENANCE_UNVERIFIED"
	d.msg == "prod runs only images with a verified signed provenance; api: its signature does not verify"
}

test_unpushed_images_are_denied_unless_allowed if {
	input_doc := signed_promotion({"verified": false, "reason": "no registry digest"}, null)
	some d in promotion.deny with input as input_doc
	d.code == "PROVENANCE_UNVERIFIED"
	codes := {x.code | some x in promotion.deny} with input as input_doc with data.gates.promotion.allow_unpushed_images as true
	not "PROVENANCE_UNVERIFIED" in codes
}

test_provenance_is_not_required_outside_protected_targets if {
	input_doc := object.union(signed_promotion({"verified": false}, "sha256:aa"), {"target": {"name": "staging", "promotion_from": ["dev"]}, "source_target": "dev"})
	codes := {d.code | some d in promotion.deny} with input as input_doc
	not "PROVENANCE_UNVERIFIED" in codes
}
