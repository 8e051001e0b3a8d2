//! `build` and `sbom`: builders driven through their command lines (stand-in executables that
//! record their arguments), CycloneDX 1.5 SBOMs from the example's real lockfiles, validated
//! against the official schema, stored as notes, summarised, scanned, and gated.

use std::path::Path;

use crate::rollout::make_executable;
use crate::support::{Repo, args};

/// Stand-ins for nixpacks/docker/podman: record "cwd|args" in $OUT/<name>.calls; `push` and
/// `image inspect` answer with a fixed digest per image, as the real tools do.
fn standins(repo: &Repo) -> String {
    let bin = repo.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for name in ["nixpacks", "docker", "podman"] {
        let path = bin.join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$(pwd)|$*\" >> \"$OUT/{name}.calls\"\nref=$(eval echo \"\\${{$#}}\")\nd=$(printf '%s' \"$ref\" | sha256sum | cut -c1-64)\ncase \"$1 $2\" in\n  \"image inspect\") echo \"${{ref%:*}}@sha256:$d\" ;;\n  push*) echo \"latest: digest: sha256:$d size: 1\" ;;\nesac\n"
            ),
        )
        .expect("write");
        make_executable(&path);
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn example() -> (Repo, tempfile::TempDir, String) {
    let repo = Repo::example();
    let path = standins(&repo);
    let sha = repo.commit("example");
    (
        repo,
        tempfile::tempdir().expect("tempdir"),
        path.clone() + "|" + &sha,
    )
}

fn split(env: &str) -> (&str, &str) {
    env.split_once('|').expect("path|sha")
}

/// Run atmos with the stand-in builders; their registry exists nowhere, so rollouts run
/// `--offline` (they deploy the recorded digests without asking it, and say so).
fn run(repo: &Repo, out: &Path, path: &str, args: &[&str]) -> crate::support::Run {
    let mut args = args.to_vec();
    if args.get(1) == Some(&"rollout") && !args.contains(&"--plan") {
        args.push("--offline");
    }
    repo.atmos_env(
        &args,
        &[("OUT", out.to_str().expect("utf-8")), ("PATH", path)],
    )
}

fn bom(repo: &Repo, sha: &str, deployment: &str) -> serde_json::Value {
    let note = repo.git(&[
        "notes",
        "--ref",
        &format!("atmos/{deployment}/sbom"),
        "show",
        sha,
    ]);
    serde_json::from_str(&note).expect("the note is JSON")
}

fn purls(bom: &serde_json::Value, component: &str) -> Vec<String> {
    let c = bom["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == component)
        .unwrap_or_else(|| panic!("no component {component}"));
    let mut out: Vec<String> = c["components"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["purl"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub(crate) fn official_schema_errors(doc: &serde_json::Value) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/cyclonedx");
    let load = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).expect("schema")).expect("json")
    };
    let registry = jsonschema::Registry::new()
        .add(
            "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json",
            jsonschema::Resource::from_contents(load("spdx.SNAPSHOT.schema.json")),
        )
        .expect("add")
        .add(
            "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json",
            jsonschema::Resource::from_contents(load("jsf-0.82.SNAPSHOT.schema.json")),
        )
        .expect("add")
        .prepare()
        .expect("registry");
    let schema = load("bom-1.5.SNAPSHOT.schema.json");
    let validator = jsonschema::options()
        .with_registry(&registry)
        .build(&schema)
        .expect("schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn stand_in_builders_get_the_documented_arguments_and_the_sbom_is_valid_cyclonedx() {
    let (repo, out, env) = example();
    let (path, sha) = split(&env);
    let built = run(
        &repo,
        out.path(),
        path,
        &args("deployment build payment-service --target dev"),
    );
    built.code(0);
    let tag = &sha[..12];
    let calls = std::fs::read_to_string(out.path().join("nixpacks.calls")).expect("nixpacks ran");
    // Built in a private export of the commit, never in the work tree.
    let root = repo.path().canonicalize().expect("root");
    let api = calls
        .lines()
        .find(|l| l.contains("|build services/api "))
        .expect("api built");
    assert!(
        api.ends_with(&format!("|build services/api --name registry.example.com/payment-service/api --tag registry.example.com/payment-service/api:{tag}"))
            && !Path::new(api.split('|').next().unwrap_or_default()).starts_with(&root),
        "{calls}"
    );
    assert!(
        calls.contains("|build services/worker --name registry.example.com/payment-service/worker"),
        "{calls}"
    );
    let docker = std::fs::read_to_string(out.path().join("docker.calls")).expect("docker ran");
    assert!(
        docker.contains(&format!(
            "|push registry.example.com/payment-service/api:{tag}"
        )),
        "{docker}"
    );
    assert!(docker.contains(&format!("|image inspect --format {{{{index .RepoDigests 0}}}} registry.example.com/payment-service/api:{tag}")), "{docker}");
    built.stdout_has(&[
        "Generated SBOM: 5 components, 16 dependencies, not scanned for vulnerabilities",
    ]);
    assert!(
        built
            .stdout
            .contains(&format!("Attached SBOM to commit {}", &sha[..9])),
        "{}",
        built.stdout
    );

    let doc = bom(&repo, sha, "payment-service");
    let errors = official_schema_errors(&doc);
    assert!(errors.is_empty(), "{errors:#?}");
    // The check can fail: a broken document is caught.
    let mut broken = doc.clone();
    broken["components"][0]["type"] = serde_json::json!("banana");
    assert!(!official_schema_errors(&broken).is_empty());
    assert_eq!(doc["specVersion"], "1.5");
    assert_eq!(doc["bomFormat"], "CycloneDX");
    let api = doc["components"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["name"] == "api")
        .expect("api");
    assert_eq!(api["type"], "container");
    assert_eq!(api["hashes"][0]["alg"], "SHA-256");
    assert_eq!(api["hashes"][0]["content"].as_str().map(str::len), Some(64));
    assert_eq!(
        purls(&doc, "api"),
        vec![
            "pkg:golang/github.com/google/uuid@v1.6.0",
            "pkg:golang/golang.org/x/net@v0.21.0",
            "pkg:golang/golang.org/x/text@v0.14.0",
        ]
    );
    assert_eq!(
        purls(&doc, "worker"),
        vec![
            "pkg:pypi/certifi@2024.2.2",
            "pkg:pypi/charset-normalizer@3.3.2",
            "pkg:pypi/idna@3.6",
            "pkg:pypi/requests@2.31.0",
            "pkg:pypi/urllib3@2.2.1",
        ],
        "requirements.txt and poetry.lock merged"
    );
    assert_eq!(
        purls(&doc, "database"),
        vec![
            "pkg:generic/registry.terraform.io/hashicorp/aws@5.31.0",
            "pkg:generic/registry.terraform.io/hashicorp/random@3.6.0",
        ]
    );
    assert_eq!(
        purls(&doc, "migrate"),
        vec!["pkg:cargo/itoa@1.0.19", "pkg:cargo/memchr@2.8.3"]
    );
    let smoke = purls(&doc, "smoke-test");
    assert_eq!(smoke.len(), 4, "{smoke:?}");
    assert!(
        smoke.contains(&"pkg:npm/semver@7.6.0".to_owned())
            && smoke.contains(&"pkg:npm/ms@2.1.3".to_owned()),
        "{smoke:?}"
    );
    let migrate = doc["components"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["name"] == "migrate")
        .expect("migrate");
    assert_eq!(
        migrate["components"][0]["hashes"][0]["alg"], "SHA-256",
        "Cargo.lock checksums kept"
    );

    // Again: nothing to do (a CI retry succeeds), and --force builds again.
    let again = run(
        &repo,
        out.path(),
        path,
        &args("deployment build payment-service --target dev"),
    );
    again.code(0).stdout_has(&[
        "api        already built for",
        "Nothing to build: every selected component of payment-service is built for commit",
    ]);
    let builds = std::fs::read_to_string(out.path().join("nixpacks.calls")).expect("calls");
    assert_eq!(builds.lines().count(), 2, "no second build: {builds}");
    run(
        &repo,
        out.path(),
        path,
        &args("deployment build payment-service --target dev --force --skip-push"),
    )
    .code(0);
    // Not pushed: no registry digest exists, and none is asked of the engine or recorded.
    let docker = std::fs::read_to_string(out.path().join("docker.calls")).expect("docker");
    assert_eq!(
        docker.matches("|image inspect").count(),
        2,
        "only the pushed builds asked for their digest: {docker}"
    );
    let note = repo.git(&[
        "notes",
        "--ref",
        "atmos/payment-service/builds",
        "show",
        sha,
    ]);
    let last: serde_json::Value =
        serde_json::from_str(note.lines().last().expect("a build")).expect("json");
    assert_eq!(last["pushed"], false, "{last}");
    assert!(last.get("digest").is_none(), "{last}");
}

#[test]
fn npm_v2_lockfiles_gemfile_locks_and_components_without_images() {
    let (repo, out, env) = example();
    let (path, sha) = split(&env);
    run(
        &repo,
        out.path(),
        path,
        &args("deployment build inventory-service --target dev"),
    )
    .code(0);
    let doc = bom(&repo, sha, "inventory-service");
    assert!(official_schema_errors(&doc).is_empty());
    assert_eq!(
        purls(&doc, "api"),
        vec!["pkg:npm/%40types/ms@0.7.34", "pkg:npm/ms@2.1.3"]
    );
    assert_eq!(
        purls(&doc, "warm-cache"),
        vec![
            "pkg:gem/bigdecimal@3.1.6",
            "pkg:gem/connection_pool@2.4.1",
            "pkg:gem/oj@3.16.3",
            "pkg:gem/redis-client@0.20.0",
            "pkg:gem/redis@5.1.0",
        ]
    );
    assert!(
        !out.path().join("nixpacks.calls").exists(),
        "nothing to build"
    );
}

#[test]
fn summary_output_and_missing_sbom() {
    let (repo, out, env) = example();
    let (path, sha) = split(&env);
    let missing = repo.atmos(&["deployment", "sbom", "payment-service", "--git-sha", sha]);
    missing.code(2);
    assert!(
        missing
            .stderr
            .contains("no SBOM recorded for payment-service at"),
        "{}",
        missing.stderr
    );
    run(
        &repo,
        out.path(),
        path,
        &args("deployment build payment-service --target dev"),
    )
    .code(0);
    let s = repo.atmos(&[
        "deployment",
        "sbom",
        "payment-service",
        "--git-sha",
        sha,
        "--summary",
    ]);
    s.code(0);
    for line in [
        "Format: CycloneDX 1.5 (JSON)",
        "Components: 5",
        "Dependencies: 16 total",
        "Vulnerabilities: not scanned",
    ] {
        assert!(s.stdout.contains(line), "missing {line:?} in\n{}", s.stdout);
    }
    assert!(
        !s.stdout.contains("0 critical"),
        "never claim 0 without a scan"
    );
    let file = out.path().join("sbom.json");
    repo.atmos(&[
        "deployment",
        "sbom",
        "payment-service",
        "--git-sha",
        sha,
        "--output",
        file.to_str().expect("utf-8"),
    ])
    .code(0);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("file")).expect("json");
    assert_eq!(written["metadata"]["component"]["name"], "payment-service");
    // After a rollout, the target's SBOM is the one of the commit it runs.
    let json = repo.atmos(&args(
        "deployment sbom payment-service --target dev --summary --format json",
    ));
    json.code(2);
    json.stderr_has(&["dev runs nothing yet"]);
}

#[test]
fn scanner_findings_are_merged_and_the_sbom_gate_denies_prod_on_a_critical_one() {
    let (repo, out, env) = example();
    let (path, sha) = split(&env);
    let sarif = out.path().join("scan.sarif");
    std::fs::write(
        &sarif,
        r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"scanner","rules":[{"id":"CVE-2024-0001","properties":{"security-severity":"9.8"}},{"id":"CVE-2024-0002","properties":{"security-severity":"5.0"}}]}},"results":[{"ruleId":"CVE-2024-0001","level":"error","message":{"text":"RCE in x/net"},"properties":{"purl":"pkg:golang/golang.org/x/net@v0.21.0"}},{"ruleId":"CVE-2024-0002","level":"warning","message":{"text":"DoS"}}]}]}"#,
    )
    .expect("write");
    run(
        &repo,
        out.path(),
        path,
        &[
            "deployment",
            "build",
            "payment-service",
            "--target",
            "dev",
            "--vulnerabilities",
            sarif.to_str().expect("utf-8"),
        ],
    )
    .code(0);
    let doc = bom(&repo, sha, "payment-service");
    assert!(
        official_schema_errors(&doc).is_empty(),
        "{:#?}",
        official_schema_errors(&doc)
    );
    let vulns = doc["vulnerabilities"].as_array().expect("vulnerabilities");
    assert_eq!(vulns.len(), 2);
    assert_eq!(vulns[0]["ratings"][0]["severity"], "critical");
    assert_eq!(
        vulns[0]["affects"][0]["ref"],
        "api:pkg:golang/golang.org/x/net@v0.21.0"
    );
    let s = repo.atmos(&[
        "deployment",
        "sbom",
        "payment-service",
        "--git-sha",
        sha,
        "--summary",
    ]);
    s.stdout_has(&["Vulnerabilities: 1 critical, 0 high, 1 medium, 0 low"]);

    // The gate input carries the summary; the shipped gate refuses prod, not staging.
    let eval = repo.atmos(&args(
        "deployment policy eval payment-service --target dev --format json",
    ));
    assert_eq!(
        eval.json()["input"]["sbom"]["vulnerabilities"]["critical"],
        1
    );
    let env = [
        ("OUT", out.path().to_str().expect("utf-8")),
        ("PATH", path),
        ("ATMOS_TERRAFORM_BIN", "/bin/true"),
        ("ATMOS_NIXPACKS_BIN", "/bin/true"),
    ];
    repo.atmos_env(
        &args("deployment rollout payment-service --target dev --offline"),
        &env,
    )
    .code(0);
    repo.atmos_env(
        &args("deployment rollout payment-service --target staging --promote-from dev --offline"),
        &env,
    )
    .code(0);
    let prod = repo.atmos_env(
        &args("deployment rollout payment-service --target prod --promote-from staging --metadata ticket=OPS-1 --offline"),
        &env,
    );
    prod.code(3);
    prod.stdout_has(&["policies/sbom/sbom.rego (atmos.sbom): the SBOM of"]);
    prod.stdout_has(&["lists 1 critical vulnerabilit(ies); prod takes none [SBOM_CRITICAL]"]);
}

#[test]
fn cyclonedx_scanner_reports_are_merged_too() {
    let (repo, out, env) = example();
    let (path, sha) = split(&env);
    let report = out.path().join("scan.cdx.json");
    std::fs::write(
        &report,
        r#"{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":[{"type":"library","name":"requests","version":"2.31.0","purl":"pkg:pypi/requests@2.31.0","bom-ref":"r1"}],"vulnerabilities":[{"bom-ref":"v1","id":"CVE-2024-35195","ratings":[{"severity":"medium"}],"affects":[{"ref":"r1"}]}]}"#,
    )
    .expect("write");
    run(
        &repo,
        out.path(),
        path,
        &[
            "deployment",
            "build",
            "payment-service",
            "--target",
            "dev",
            "--vulnerabilities",
            report.to_str().expect("utf-8"),
        ],
    )
    .code(0);
    let doc = bom(&repo, sha, "payment-service");
    assert!(official_schema_errors(&doc).is_empty());
    assert_eq!(doc["vulnerabilities"][0]["id"], "CVE-2024-35195");
    assert_eq!(
        doc["vulnerabilities"][0]["affects"][0]["ref"],
        "worker:pkg:pypi/requests@2.31.0"
    );
    let bad = out.path().join("nonsense.json");
    std::fs::write(&bad, "{\"hello\": 1}").expect("write");
    let run2 = run(
        &repo,
        out.path(),
        path,
        &[
            "deployment",
            "build",
            "payment-service",
            "--target",
            "dev",
            "--force",
            "--vulnerabilities",
            bad.to_str().expect("utf-8"),
        ],
    );
    run2.code(2);
    run2.stderr_has(&["neither a CycloneDX document nor a SARIF log"]);
}

#[test]
fn dockerfile_builders_plan_and_missing_tools() {
    let (repo, out, env) = example();
    let (path, _sha) = split(&env);
    let yaml = std::fs::read_to_string(repo.path().join("deployments/payment-service.yaml"))
        .expect("read");
    repo.write(
        "payment-service.yaml",
        yaml.replace(
            "builder: !env IMAGE_BUILDER nixpacks   # buildah reads services/api/Dockerfile",
            "builder: podman",
        ),
    );
    repo.commit("podman for api");
    let plan = run(
        &repo,
        out.path(),
        path,
        &args("deployment build payment-service --target dev --plan --component api"),
    );
    plan.code(0);
    assert!(plan.stdout.contains("$ ") && plan.stdout.contains("podman build -f services/api/Dockerfile -t registry.example.com/payment-service/api:"), "{}", plan.stdout);
    plan.stdout_has(&["Plan only: nothing was built or recorded."]);
    assert!(
        !out.path().join("podman.calls").exists(),
        "--plan runs nothing"
    );
    run(
        &repo,
        out.path(),
        path,
        &args("deployment build payment-service --target dev --component api"),
    )
    .code(0);
    let calls = std::fs::read_to_string(out.path().join("podman.calls")).expect("podman ran");
    assert!(
        calls.contains(
            "|build -f services/api/Dockerfile -t registry.example.com/payment-service/api:"
        ),
        "{calls}"
    );
    assert!(
        calls.contains("|push --digestfile ")
            && calls.contains(" registry.example.com/payment-service/api:"),
        "{calls}"
    );

    let missing = repo.atmos_env(
        &args("deployment build payment-service --target dev --component worker --force"),
        &[("PATH", "/usr/bin:/bin")],
    );
    missing.code(1);
    missing.stderr_has(&[
        "`nixpacks` is needed by component `nixpack/worker` but was not found on PATH",
    ]);
}
