# SBOM gate: no known critical vulnerability reaches protected targets; optionally, no
# rollout there without a scanned SBOM.
#
# data.gates.sbom.targets: targets this applies to (default [prod])
# data.gates.sbom.require_scan: refuse when the commit has no SBOM, or one never scanned
#   (default false)
package atmos.sbom

targets := object.get(data, ["gates", "sbom", "targets"], ["prod"])

require_scan := object.get(data, ["gates", "sbom", "require_scan"], false)

deny contains {"msg": msg, "code": "SBOM_CRITICAL"} if {
	input.target.name in targets
	input.sbom.vulnerabilities.critical > 0
	msg := sprintf("the SBOM of %s lists %d critical vulnerabilit(ies); %s takes none", [
		substring(input.commit.sha, 0, 7),
		input.sbom.vulnerabilities.critical,
		input.target.name,
	])
}

deny contains {"msg": msg, "code": "SBOM_MISSING"} if {
	input.target.name in targets
	require_scan
	input.sbom == null
	msg := sprintf("%s needs an SBOM of the commit: run atmos deployment build first", [input.target.name])
}

deny contains {"msg": msg, "code": "SBOM_NOT_SCANNED"} if {
	input.target.name in targets
	require_scan
	input.sbom != null
	input.sbom.vulnerabilities == null
	msg := sprintf("%s needs a scanned SBOM: build with --vulnerabilities <scanner report>", [input.target.name])
}
