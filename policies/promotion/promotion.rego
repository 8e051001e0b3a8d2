# Promotion path: code reaches a target only from the targets its config allows, the escape
# hatch (--skip-promotion-check) is closed for protected targets, and protected targets take
# only commits that are on the trusted ref (merged), never a feature branch's.
#
# data.gates.promotion.protected_targets: targets where --skip-promotion-check is refused, and
# that take only commits on the trusted ref (default ["prod"]).
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

# A roll-forward returns every changing component to a commit this target ran (and admitted)
# before: it is judged as a rollout, but it is not new code to this target.
returning(c) if c.change in {"rollback", "roll-forward"}

rolls_forward if {
	changing := [c | some c in input.components; c.change != "unchanged"]
	count(changing) > 0
	every c in changing {
		returning(c)
	}
}

deny contains {"msg": msg, "code": "PROMOTION_PATH"} if {
	input.action == "rollout"
	count(input.target.promotion_from) > 0
	not input.flags.skip_promotion_check
	not rolls_forward
	msg := sprintf("%s takes new code only by promotion from %s", [
		input.target.name,
		concat(" or ", input.target.promotion_from),
	])
}

deny contains {"msg": msg, "code": "PROMOTION_SKIP_FORBIDDEN", "fix": fix} if {
	input.flags.skip_promotion_check
	input.target.name in protected
	msg := sprintf("--skip-promotion-check is not allowed for %s", [input.target.name])
	fix := sprintf("follow the promotion path: promote to %s from %s", [input.target.name, concat(" or ", input.target.promotion_from)])
}

# A rollback or roll-forward returns to a commit the target ran before; anything else must be
# merged.
deny contains {"msg": msg, "code": "NOT_ON_TRUSTED_REF", "fix": fix} if {
	input.target.name in protected
	input.action != "rollback"
	some c in input.components
	c.change != "unchanged"
	not returning(c)
	c.on_trusted_ref == false
	msg := sprintf("%s takes only commits on %s; %s of %s is not (a feature branch, or not merged yet)", [
		input.target.name,
		input.rules.source,
		substring(c.new, 0, 7),
		c.name,
	])
	fix := sprintf("merge it into %s (%s), then promote the merged commit", [input.rules.branch, input.rules.source])
}

# Build once: a protected target runs the very image its source ran — the artifact that was
# tested there, not a rebuild. An image component promoted without a recorded digest, or with
# another digest than the source's, is refused.
deny contains {"msg": msg, "code": "ARTIFACT_MISMATCH", "fix": fix} if {
	input.target.name in protected
	input.action == "promote"
	some c in input.components
	c.change != "unchanged"
	c.type == "nixpack"
	ran := object.get(input.state, [input.source_target, "components", c.name, "image_digest"], null)
	c.image_digest != ran
	msg := sprintf("%s must run the image %s ran (%s), not %s", [
		input.target.name,
		input.source_target,
		digest_text(ran),
		digest_text(c.image_digest),
	])
	fix := sprintf("promote from %s without rebuilding: the image is taken from %s's record", [input.source_target, input.source_target])
}

digest_text(d) := "an image with no recorded digest" if d == null

digest_text(d) := substring(d, 0, 19) if d != null

# Signed provenance: a protected target runs only images whose build provenance verifies
# (components[].provenance: an in-toto/SLSA statement in a DSSE envelope, signed by its
# builder's key as the trusted allowed signers allow it, naming this digest and commit, by an
# allowed builder). An image never pushed has no registry digest and so no provenance: it is
# refused too, unless data.gates.promotion.allow_unpushed_images is true (a demo, or a builder
# that pushes nothing).
deny contains {"msg": msg, "code": "PROVENANCE_UNVERIFIED", "fix": fix} if {
	input.target.name in protected
	some c in input.components
	c.change != "unchanged"
	c.type == "nixpack"
	not provenance_ok(c)
	msg := sprintf("%s runs only images with a verified signed provenance; %s: %s", [
		input.target.name,
		c.name,
		object.get(c, ["provenance", "reason"], "no provenance was checked"),
	])
	fix := "build it with the builder's key and push it (atmos deployment build <deployment> --force --signing-key <key>), then promote it again"
}

provenance_ok(c) if c.provenance.verified == true

provenance_ok(c) if {
	c.image_digest == null
	object.get(data, ["gates", "promotion", "allow_unpushed_images"], false) == true
}
