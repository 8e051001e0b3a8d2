//! Build once, promote the artifact: builds recorded per commit and component, rollouts that
//! deploy the recorded image (never a rebuild), the digest followed from target to target,
//! the SBOM following the commit, `--context`. Builders are stand-in executables that record
//! their arguments (no nixpacks or Docker here).

use std::path::Path;

use crate::rollout::{make_executable, record};
use crate::support::{Repo, Run, args};

const DEPLOYMENT: &str = r#"deployment:
  name: svc
  components:
    nixpack:
      api:
        vars: {image: {registry: reg.example.com, name: shop/api}, cpu: 256}
        settings:
          nixpack:
            path: services/api
            deploy: 'echo "$ATMOS_IMAGE@$ATMOS_IMAGE_DIGEST" >> "$OUT/deployed.$ATMOS_TARGET"'
      worker:
        vars: {image: {registry: reg.example.com, name: shop/worker}}
        settings:
          nixpack: {path: services/worker}
    script:
      config:
        vars: {cpu: 256}
        settings:
          script: {apply: 'cp "$ATMOS_VARS_FILE" "$OUT/vars.$ATMOS_TARGET.json"'}
  targets:
    dev: {}
    staging:
      promotion: {from: dev}
    prod:
      promotion: {from: staging}
"#;

/// Stand-in builders. `nixpacks` counts its builds in `$OUT/builds`; `docker image inspect`
/// answers a digest of the image and that count, so a rebuild gets a new digest, as a real
/// rebuild would.
fn world() -> (Repo, tempfile::TempDir, String) {
    let repo = Repo::new();
    repo.write("svc.yaml", DEPLOYMENT);
    repo.write_file("services/api/main.go", "package main\n");
    repo.write_file("services/worker/main.py", "print('hi')\n");
    let bin = repo.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let scripts = [
        (
            "nixpacks",
            "#!/bin/sh\necho \"$(pwd)|$*\" >> \"$OUT/nixpacks.calls\"\necho x >> \"$OUT/builds\"\n",
        ),
        (
            "docker",
            "#!/bin/sh\necho \"$(pwd)|$*\" >> \"$OUT/docker.calls\"\nref=$(eval echo \"\\${$#}\")\nn=$(wc -l < \"$OUT/builds\" 2>/dev/null || echo 0)\nd=$(printf '%s#%s' \"$ref\" \"$n\" | sha256sum | cut -c1-64)\ncase \"$1 $2\" in\n  \"image inspect\") echo \"${ref%:*}@sha256:$d\" ;;\nesac\n",
        ),
    ];
    for (name, body) in scripts {
        let path = bin.join(name);
        std::fs::write(&path, body).expect("write");
        make_executable(&path);
    }
    repo.write_file(".gitignore", "bin/\n");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (repo, tempfile::tempdir().expect("tempdir"), path)
}

/// Run atmos with the stand-in builders. Their registry (`reg.example.com`) exists nowhere, so
/// rollouts run `--offline`: they deploy the recorded digests without asking the registry, and
/// say so (the real registry is asked in `registry.rs`).
fn atmos(repo: &Repo, out: &Path, path: &str, args: &[&str]) -> Run {
    let mut args = args.to_vec();
    if args.get(1) == Some(&"rollout") && !args.contains(&"--plan") {
        args.push("--offline");
    }
    repo.atmos_env(
        &args,
        &[("OUT", out.to_str().expect("utf-8")), ("PATH", path)],
    )
}

fn builds(out: &Path) -> usize {
    std::fs::read_to_string(out.join("builds"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn lines(out: &Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(out.join(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn one_build_per_commit_and_every_target_deploys_that_image() {
    let (repo, out, path) = world();
    let sha = repo.commit("init");
    let run = |line: &'static str| atmos(&repo, out.path(), &path, &args(line));

    run("deployment build svc --target dev").code(0);
    assert_eq!(builds(out.path()), 2, "api and worker, once each");
    // A CI retry is a no-op that says so.
    run("deployment build svc --target dev")
        .code(0)
        .stdout_has(&["api        already built for", "Nothing to build"]);
    assert_eq!(builds(out.path()), 2);

    run("deployment rollout svc --target dev -v")
        .code(0)
        .stdout_has(&[
            "builtin/artifacts: deploys the recorded images (as built for the commit), no rebuild",
        ]);
    run("deployment rollout svc --target staging --promote-from dev -v")
        .code(0)
        .stdout_has(&["(as run in dev), no rebuild"]);
    run("deployment rollout svc --target prod --promote-from staging").code(0);
    assert_eq!(builds(out.path()), 2, "no target rebuilt anything");

    // Every target deployed the same image, and every tag records its digest.
    let dev = lines(out.path(), "deployed.dev");
    assert_eq!(dev.len(), 1);
    assert!(
        dev[0].contains(&format!("reg.example.com/shop/api:{}@sha256:", &sha[..12])),
        "{dev:?}"
    );
    assert_eq!(lines(out.path(), "deployed.staging"), dev);
    assert_eq!(lines(out.path(), "deployed.prod"), dev);
    let digest = dev[0].split('@').nth(1).expect("digest").to_owned();
    for target in ["dev", "staging", "prod"] {
        let tag = repo.outcomes("svc", target, "api");
        let r = record(&repo, tag.last().expect("tag"));
        assert_eq!(r["image_digest"], digest.as_str(), "{target}");
    }
    // The SBOM follows the commit: prod's is the one built once.
    run("deployment sbom svc --target prod --summary")
        .code(0)
        .stdout_has(&[&format!("api     (docker image, {})", &digest[..19])]);
    // The gate input carries the digests: the new one and the one each target runs.
    let eval =
        run("deployment policy eval svc --target prod --promote-from staging --format json").json();
    assert_eq!(
        eval["input"]["components"][0]["image_digest"],
        digest.as_str()
    );
    assert_eq!(
        eval["input"]["state"]["staging"]["components"]["api"]["image_digest"],
        digest.as_str()
    );

    // A rebuild (--force) makes a new image; dev takes it, but prod keeps deploying what
    // staging ran until staging runs the new one.
    run("deployment build svc --target dev --force -c api").code(0);
    assert_eq!(builds(out.path()), 3);
    run("deployment rollout svc --target dev --force -c api").code(0);
    let rebuilt = lines(out.path(), "deployed.dev");
    assert_ne!(rebuilt[1], dev[0], "dev deploys the rebuild");
    run("deployment rollout svc --target prod --promote-from staging --force -c api").code(0);
    assert_eq!(
        lines(out.path(), "deployed.prod").last(),
        Some(&dev[0]),
        "prod deploys the image staging ran, not the rebuild"
    );
    // And the records say so: every promotion deployed an image its source ran.
    run("deployment verify svc").code(0);
}

#[test]
fn a_promoted_target_never_builds_and_says_what_to_build() {
    let (repo, out, path) = world();
    repo.commit("init");
    let c2 = {
        repo.write_file("services/api/main.go", "package main // v2\n");
        repo.commit("v2")
    };
    let run = atmos(
        &repo,
        out.path(),
        &path,
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "staging",
            "--git-sha",
            &c2,
            "--skip-promotion-check",
        ],
    );
    run.code(3).stdout_has(&[
        "builtin/artifacts: nothing built to deploy for api (",
        "staging takes artifacts, it does not build them",
        &format!("fix: atmos deployment build svc --git-sha {c2}"),
    ]);
    assert_eq!(builds(out.path()), 0);
    // An entry target builds first, once.
    atmos(
        &repo,
        out.path(),
        &path,
        &args("deployment rollout svc --target dev"),
    )
    .code(0)
    .stdout_has(&["Building api, worker of", "first"]);
    assert_eq!(builds(out.path()), 2);
}

#[test]
fn builds_of_separate_components_add_up_in_one_build_note_and_sbom() {
    let (repo, out, path) = world();
    let sha = repo.commit("init");
    atmos(
        &repo,
        out.path(),
        &path,
        &args("deployment build svc --target dev -c api"),
    )
    .code(0);
    atmos(
        &repo,
        out.path(),
        &path,
        &args("deployment build svc --target dev -c worker"),
    )
    .code(0);
    let note = repo.git(&["notes", "--ref", "atmos/svc/builds", "show", &sha]);
    let records: Vec<serde_json::Value> = note
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(records.len(), 2, "{note}");
    let sbom: serde_json::Value =
        serde_json::from_str(&repo.git(&["notes", "--ref", "atmos/svc/sbom", "show", &sha]))
            .expect("sbom");
    for name in ["api", "worker"] {
        let c = sbom["components"]
            .as_array()
            .expect("components")
            .iter()
            .find(|c| c["name"] == name)
            .expect("component");
        assert_eq!(c["type"], "container", "{name} kept its image: {c:#}");
    }
    assert!(crate::sbom::official_schema_errors(&sbom).is_empty());
}

#[test]
fn build_git_sha_builds_that_commit_from_its_own_tree() {
    let (repo, out, path) = world();
    let c1 = repo.commit("init");
    repo.write_file("services/api/main.go", "package main // v2\n");
    repo.commit("v2");
    // An uncommitted edit is neither built nor touched.
    repo.write_file("services/api/main.go", "package main // dirty\n");
    atmos(
        &repo,
        out.path(),
        &path,
        &[
            "deployment",
            "build",
            "svc",
            "--target",
            "dev",
            "--git-sha",
            &c1,
            "-c",
            "api",
        ],
    )
    .code(0)
    .stdout_has(&[&format!("commit {}", &c1[..7])]);
    let calls = lines(out.path(), "nixpacks.calls");
    let cwd = calls[0].split('|').next().expect("cwd");
    assert!(
        !Path::new(cwd).starts_with(repo.path().canonicalize().expect("root")),
        "{cwd}"
    );
    assert!(calls[0].contains(&format!("--tag reg.example.com/shop/api:{}", &c1[..12])));
    assert_eq!(
        std::fs::read_to_string(repo.path().join("services/api/main.go")).expect("read"),
        "package main // dirty\n"
    );
    let note = repo.git(&["notes", "--ref", "atmos/svc/builds", "show", &c1]);
    assert!(note.contains("\"component\":\"api\""), "{note}");
}

#[test]
fn context_overrides_the_vars_of_one_run_and_is_recorded() {
    let (repo, out, path) = world();
    repo.commit("init");
    atmos(
        &repo,
        out.path(),
        &path,
        &args("deployment rollout svc --target dev --context cpu=512 --context image.tag=pinned"),
    )
    .code(0);
    let vars: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("vars.dev.json")).expect("vars"),
    )
    .expect("json");
    assert_eq!(vars["cpu"], 512);
    assert_eq!(vars["image"]["tag"], "pinned");
    // Components that deploy images by hand see what this rollout deploys.
    assert!(
        vars["atmos_images"]["api"]["digest"].is_string(),
        "{vars:#}"
    );
    let tag = repo.outcomes("svc", "dev", "config");
    let r = record(&repo, tag.last().expect("tag"));
    assert_eq!(r["context"]["cpu"], "512");
    let bad = atmos(
        &repo,
        out.path(),
        &path,
        &args("deployment rollout svc --target dev --context cpu"),
    );
    bad.code(2)
        .stderr_has(&["invalid --context: `cpu` is not key=value"]);
}

#[test]
fn a_malformed_lockfile_entry_is_left_out_with_a_warning() {
    let (repo, out, path) = world();
    repo.write_file(
        "services/worker/package-lock.json",
        r#"{"name":"w","lockfileVersion":3,"packages":{"":{"name":"w"},"node_modules/ms":{"version":"2.1.3","integrity":"sha512-AAAA"},"node_modules/semver":{"version":"7.6.0","integrity":"sha512-4Dbb2DBYkgVlgSQ9wKsPtLnXmOwiGMdLJjETefDyhRl6XoUjLzJhAcApDNtakoHS7NCePFcmpr7Cqvk8SwXYjg=="}}}"#,
    );
    let sha = repo.commit("init");
    let run = atmos(
        &repo,
        out.path(),
        &path,
        &args("deployment build svc --target dev"),
    );
    run.code(0)
        .stderr_has(&["services/worker/package-lock.json: ms@2.1.3: its hash was left out"]);
    assert!(!run.stderr.contains("ValidationResult"), "{}", run.stderr);
    let sbom: serde_json::Value =
        serde_json::from_str(&repo.git(&["notes", "--ref", "atmos/svc/sbom", "show", &sha]))
            .expect("sbom");
    assert!(crate::sbom::official_schema_errors(&sbom).is_empty());
    let text = sbom.to_string();
    assert!(text.contains("pkg:npm/ms@2.1.3") && text.contains("pkg:npm/semver@7.6.0"));
}

#[test]
fn a_scan_merged_later_shows_in_the_sbom_of_the_commit() {
    let (repo, out, path) = world();
    let sha = repo.commit("init");
    atmos(
        &repo,
        out.path(),
        &path,
        &args("deployment build svc --target dev"),
    )
    .code(0);
    let report = out.path().join("scan.cdx.json");
    std::fs::write(
        &report,
        r#"{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"vulnerabilities":[{"bom-ref":"v1","id":"CVE-2024-1","ratings":[{"severity":"high"}]}]}"#,
    )
    .expect("write");
    atmos(
        &repo,
        out.path(),
        &path,
        &[
            "deployment",
            "build",
            "svc",
            "--target",
            "dev",
            "--vulnerabilities",
            report.to_str().expect("utf-8"),
        ],
    )
    .code(0);
    assert_eq!(builds(out.path()), 2, "merging a scan builds nothing");
    repo.atmos(&["deployment", "sbom", "svc", "--git-sha", &sha, "--summary"])
        .code(0)
        .stdout_has(&["Vulnerabilities: 0 critical, 1 high, 0 medium, 0 low"]);
    atmos(
        &repo,
        out.path(),
        &path,
        &args("deployment rollout svc --target dev"),
    )
    .code(0);
    repo.atmos(&args("deployment status svc --target dev"))
        .code(0)
        .stdout_has(&[
            "Images: api sha256:",
            "SBOM: 3 components, 0 dependencies; vulnerabilities: 0 critical, 1 high, 0 medium, 0 low",
        ]);
    // A later rebuild of one component keeps the scan.
    atmos(
        &repo,
        out.path(),
        &path,
        &args("deployment build svc --target dev --force -c api"),
    )
    .code(0);
    repo.atmos(&["deployment", "sbom", "svc", "--git-sha", &sha, "--summary"])
        .stdout_has(&["Vulnerabilities: 0 critical, 1 high, 0 medium, 0 low"]);
}

/// A build with other `--context` values is another build: it runs, and its record is the
/// commit's newest; the same context again is already built.
#[test]
fn a_build_with_another_context_builds_again() {
    let (repo, out, path) = world();
    repo.commit("init");
    let run = |line: &'static str| atmos(&repo, out.path(), &path, &args(line));
    run("deployment build svc --target dev --component api").code(0);
    assert_eq!(builds(out.path()), 1);
    run("deployment build svc --target dev --component api --context cpu=512").code(0);
    assert_eq!(builds(out.path()), 2, "built again with its new context");
    run("deployment build svc --target dev --component api --context cpu=512")
        .code(0)
        .stdout_has(&["Nothing to build"]);
    assert_eq!(builds(out.path()), 2, "the same context is already built");
}
