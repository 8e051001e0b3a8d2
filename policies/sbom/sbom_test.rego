package atmos.sbom_test

import data.atmos.sbom

scanned(critical) := {"components": [], "vulnerabilities": {"critical": critical, "high": 2, "medium": 0, "low": 0, "other": 0}}

at(target, s) := {"target": {"name": target}, "commit": {"sha": "0123456789abcdef0123456789abcdef01234567"}, "sbom": s}

test_critical_vulnerability_denies_prod if {
	some d in sbom.deny with input as at("prod", scanned(1))
	d.code == "SBOM_CRITICAL"
	d.msg == "the SBOM of 0123456 lists 1 critical vulnerabilit(ies); prod takes none"
}

test_no_critical_passes if {
	count(sbom.deny) == 0 with input as at("prod", scanned(0))
}

test_other_targets_are_not_judged if {
	count(sbom.deny) == 0 with input as at("dev", scanned(3))
}

test_missing_or_unscanned_sbom_only_when_required if {
	count(sbom.deny) == 0 with input as at("prod", null)
	{d.code | some d in sbom.deny} == {"SBOM_MISSING"} with input as at("prod", null)
		with data.gates.sbom.require_scan as true
	{d.code | some d in sbom.deny} == {"SBOM_NOT_SCANNED"} with input as at("prod", {"vulnerabilities": null})
		with data.gates.sbom.require_scan as true
}
