# Promotion path: code reaches a target only from the targets its config allows, and the
# escape hatch (--skip-promotion-check) is closed for protected targets.
#
# data.gates.promotion.protected_targets: targets where --skip-promotion-check is refused
# (default ["prod"]).
package atmos.promotion

protected := object.get(data, ["gates", "promotion", "protected_targets"], ["prod"])

allowed_source if input.source_target in input.target.promotion_from

deny contains {"msg": msg, "code": "PROMOTION_PATH"} if {
	input.action == "promote"
	not allowed_source
	not input.flags.skip_promotion_check
	msg := sprintf("%s may be promoted only from %s, not from %s", [
		input.target.name,
		concat(" or ", input.target.promotion_from),
		input.source_target,
	])
}

deny contains {"msg": msg, "code": "PROMOTION_PATH"} if {
	input.action == "rollout"
	count(input.target.promotion_from) > 0
	not input.flags.skip_promotion_check
	msg := sprintf("%s takes new code only by promotion from %s", [
		input.target.name,
		concat(" or ", input.target.promotion_from),
	])
}

deny contains {"msg": msg, "code": "PROMOTION_SKIP_FORBIDDEN"} if {
	input.flags.skip_promotion_check
	input.target.name in protected
	msg := sprintf("--skip-promotion-check is not allowed for %s", [input.target.name])
}
