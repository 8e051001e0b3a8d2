//! Config processing: imports deep-merged with provenance, templates per target, YAML
//! functions under an allow-list, errors located in the file that set the value, and the same
//! processing on the trusted ref and on the deployed commit. Each test also tries to use the
//! new indirection to get around a gate.

use crate::rollout::{DEPLOYMENT, Fixture};
use crate::support::{Repo, args};
use crate::trust::{merge_branch, with_origin};

const FROZEN: &str = "package team.frozen\n\ndeny contains {\"msg\": \"staging is frozen\", \"code\": \"FROZEN\"} if input.target.name == \"staging\"\n";

/// The fixture's deployment with its gate binding in an imported file.
fn with_shared_gates(f: &Fixture) {
    f.repo.write(
        "_shared/gates.yaml",
        "# bound to every deployment that imports it\ndeployment:\n  gates:\n    policies: [rules]\n",
    );
    f.repo
        .write("svc.yaml", format!("import: [_shared/gates]\n{DEPLOYMENT}"));
    f.repo.write_file("rules/frozen.rego", FROZEN);
}

#[test]
fn a_gate_bound_in_an_import_comes_from_the_trusted_ref() {
    let f = Fixture::new();
    with_shared_gates(&f);
    f.version("1");
    let _origin = with_origin(&f.repo);
    f.rollout(&["--target", "dev"]).code(0);

    // Emptying the import in the work tree removes no gate, and the rollout says which file
    // differs from the rules it uses.
    f.repo.write("_shared/gates.yaml", "deployment: {}\n");
    let run = f.rollout(&args("--target staging --promote-from dev"));
    run.code(3).stdout_has(&["staging is frozen [FROZEN]"]);
    run.stderr_has(&[
        "deployments/_shared/gates.yaml here (work tree or checked-out commit) differs from the one on refs/remotes/origin/main",
    ]);

    // Nor does emptying it, or pointing the import elsewhere, on a branch that is deployed.
    f.repo.git(&["checkout", "-q", "-b", "feature"]);
    f.repo.write("_shared/none.yaml", "deployment: {}\n");
    f.repo
        .write("svc.yaml", format!("import: [_shared/none]\n{DEPLOYMENT}"));
    f.repo.commit("no gates");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&args("--target staging --promote-from dev"))
        .code(3)
        .stdout_has(&["staging is frozen [FROZEN]"]);

    // Merged onto the trusted ref, the change applies.
    merge_branch(&f.repo, "feature");
    f.rollout(&args("--target staging --promote-from dev"))
        .code(0);
}

#[test]
fn what_is_deployed_is_rendered_from_the_imports_of_the_deployed_commit() {
    let f = Fixture::new();
    f.repo.write(
        "_shared/vars.yaml",
        "deployment:\n  components:\n    script:\n      a:\n        vars:\n          url: 'https://{{ .target.name }}.{{ .vars.region }}.example.com'\n          owner: '{{ .deployment.name | upper }}'\n          sha: !git.sha\n",
    );
    f.repo.write(
        "svc.yaml",
        format!(
            "import: [_shared/vars]\n{}",
            DEPLOYMENT.replace(
                "apply: ./deploy.sh a\n",
                "apply: 'cat $ATMOS_VARS_FILE > $OUT/vars-{{ .target.name }}.json'\n",
            )
        ),
    );
    let v1 = f.version("1");
    // An uncommitted edit of the import is not deployed, and the rollout says so.
    f.repo.write(
        "_shared/vars.yaml",
        "deployment:\n  components:\n    script:\n      a:\n        vars: {url: 'https://evil.example.com'}\n",
    );
    let run = f.rollout(&["--target", "dev", "-c", "a"]);
    run.code(0).stderr_has(&[&format!(
        "deployments/_shared/vars.yaml in the work tree differs from commit {} being deployed",
        &v1[..7]
    )]);
    let vars: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(f.out.path().join("vars-dev.json")).expect("vars"),
    )
    .expect("json");
    assert_eq!(vars["url"], "https://dev.eu-west-1.example.com");
    assert_eq!(vars["owner"], "SVC");
    // `!git.sha` in an import is the deployed commit, read from that commit.
    assert_eq!(vars["sha"], v1.as_str());
    assert_eq!(vars["size"], "large", "target context still wins: {vars}");
    assert_eq!(
        vars["keep"], 1,
        "the file's own vars merge with the import's: {vars}"
    );
}

#[test]
fn validate_locates_errors_in_imports_and_env_needs_the_allow_list() {
    let repo = Repo::new();
    repo.write(
        "_shared/chain.yaml",
        "deployment:\n  targets:\n    dev: {}\n    prod:\n      labels: {owner: '{{ .vars.owner }}'}\n      promotion: {from: dev}\n",
    );
    repo.write(
        "svc.yaml",
        "import: [_shared/chain]\ndeployment:\n  name: svc\n  labels:\n    tier: !env ATMOS_TEST_TIER\n",
    );
    repo.commit("svc");
    repo.atmos_env(
        &["deployment", "validate", "svc"],
        &[("ATMOS_TEST_TIER", "gold")],
    )
    .code(2)
    .stdout_has(&[
        "deployments/svc.yaml:5",
        "`!env ATMOS_TEST_TIER`: ATMOS_TEST_TIER is not in the allow-list",
        "processing: {env: [ATMOS_TEST_TIER]}",
    ]);

    // Allowed: the undefined value in the import is next, located in the import.
    repo.write_file("atmos.yaml", "processing:\n  env: [ATMOS_TEST_*]\n");
    repo.atmos_env(
        &["deployment", "validate", "svc"],
        &[("ATMOS_TEST_TIER", "gold")],
    )
    .code(2)
    .stdout_has(&[
        "deployments/_shared/chain.yaml:5",
        "template in `deployment.targets.prod.labels.owner`: `owner` is not defined",
    ]);

    // Defined: the processed values are what describe shows, with where each came from.
    repo.write(
        "svc.yaml",
        "import: [_shared/chain]\ndeployment:\n  name: svc\n  context: {owner: payments}\n  labels:\n    tier: !env ATMOS_TEST_TIER\n",
    );
    let run = repo.atmos_env(
        &["deployment", "describe", "svc", "--format", "json"],
        &[("ATMOS_TEST_TIER", "gold")],
    );
    let report = run.code(0).json();
    assert_eq!(report["deployment"]["labels"]["tier"], "gold");
    assert_eq!(
        report["deployment"]["targets"]["prod"]["labels"]["owner"],
        "payments"
    );
    assert_eq!(report["imports"][0], "deployments/_shared/chain.yaml");
    assert_eq!(
        report["sources"]["targets.prod.promotion.from"],
        "deployments/_shared/chain.yaml:6"
    );
    assert_eq!(report["sources"]["labels.tier"], "deployments/svc.yaml:6");
    // Unset, it is an error (no silent empty value).
    repo.atmos(&["deployment", "validate", "svc"])
        .code(2)
        .stdout_has(&["ATMOS_TEST_TIER is not set"]);
}

#[test]
fn an_allow_list_outside_the_trusted_ref_does_not_let_the_rules_read_the_environment() {
    let f = Fixture::new();
    f.repo.write(
        "svc.yaml",
        DEPLOYMENT.replace(
            "    prod:\n      promotion: {from: staging, requires_approval: true}\n",
            "    prod:\n      promotion: {from: staging, requires_approval: !env ATMOS_TEST_APPROVAL true}\n",
        ),
    );
    f.repo.write_file("atmos.yaml", "{}\n");
    f.version("1");
    let _origin = with_origin(&f.repo);
    let run = |a: &'static str, env: &[(&str, &str)]| {
        let mut all = vec![("OUT", f.out())];
        all.extend_from_slice(env);
        f.repo.atmos_env(&args(a), &all)
    };
    let no_approval = [("ATMOS_TEST_APPROVAL", "false")];

    // Allowing the variable in the work tree, or on a branch, does not make the rules read
    // it: they are processed with atmos.yaml from the trusted ref.
    f.repo
        .write_file("atmos.yaml", "processing:\n  env: [ATMOS_TEST_APPROVAL]\n");
    run("deployment rollout svc --target dev", &no_approval)
        .code(2)
        .stderr_has(&["ATMOS_TEST_APPROVAL is not in the allow-list"]);
    f.repo.git(&["checkout", "-q", "-b", "feature"]);
    f.repo.commit("allow the variable");
    run("deployment rollout svc --target dev", &no_approval)
        .code(2)
        .stderr_has(&["ATMOS_TEST_APPROVAL is not in the allow-list"]);

    // On the trusted ref the platform allows it: the value decides, its default applies.
    merge_branch(&f.repo, "feature");
    run("deployment rollout svc --target dev", &[]).code(0);
    run(
        "deployment rollout svc --target staging --promote-from dev",
        &[],
    )
    .code(0);
    run(
        "deployment rollout svc --target prod --promote-from staging",
        &[],
    )
    .code(4)
    .stdout_has(&["prod requires 1 approval(s)"]);
    run(
        "deployment rollout svc --target prod --promote-from staging",
        &no_approval,
    )
    .code(0);
}

#[test]
fn the_example_shares_its_release_chain_through_an_import() {
    let repo = Repo::example();
    let report = repo
        .atmos(&[
            "deployment",
            "describe",
            "payment-service",
            "--target",
            "prod",
            "--format",
            "json",
        ])
        .code(0)
        .json();
    assert_eq!(
        report["imports"][0],
        "deployments/_defaults/release-chain.yaml"
    );
    assert_eq!(report["target"]["requires_approval"], true);
    assert_eq!(report["target"]["labels"]["environment"], "prod");
    let hooks: Vec<&str> = report["target"]["hooks"]
        .as_array()
        .expect("hooks")
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(hooks, ["soak-time", "weekend-freeze"]);
    let api = report["target"]["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "api")
        .expect("api");
    assert_eq!(
        api["vars"]["values"]["image"]["name"],
        "payment-service/api"
    );
    let at = api["vars"]["provenance"]["replicas"]["at"]
        .as_str()
        .expect("at");
    assert!(at.starts_with("deployments/payment-service.yaml:"), "{at}");
}

/// `atmos <args>` in `dir`, stopped after 30 s so that a hang fails the test instead of CI.
fn atmos_bounded(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new("timeout")
        .arg("30")
        .arg(env!("CARGO_BIN_EXE_atmos"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run atmos");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn imports_and_includes_are_regular_files_of_the_project_in_the_work_tree_and_in_commits() {
    let f = Fixture::new();
    f.repo
        .write("_x/real.yaml", "deployment: {labels: {from: real}}\n");
    f.repo
        .write("svc.yaml", format!("import: [_x/*.yaml]\n{DEPLOYMENT}"));
    f.version("1");

    // A FIFO picked up by a glob: refused at once, never waited on.
    let fifo = f.repo.path().join("deployments/_x/zz.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let (code, text) = atmos_bounded(f.repo.path(), &["deployment", "validate", "svc"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("is a special file (a FIFO, socket or device)"),
        "{text}"
    );
    let (code, text) = atmos_bounded(f.repo.path(), &["deployment", "list"]);
    assert_ne!(code, Some(124), "list hung on a FIFO: {text}");
    std::fs::remove_file(&fifo).expect("rm fifo");

    // A link, even to a file inside the project, in the work tree...
    std::os::unix::fs::symlink("real.yaml", f.repo.path().join("deployments/_x/link.yaml"))
        .expect("symlink");
    let (code, text) = atmos_bounded(f.repo.path(), &["deployment", "validate", "svc"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("deployments/_x/link.yaml is a symbolic link"),
        "{text}"
    );
    // ...and committed: what validate refuses, a rollout of the commit refuses too.
    let linked = f.repo.commit("link");
    std::fs::remove_file(f.repo.path().join("deployments/_x/link.yaml")).expect("rm link");
    let (code, text) = atmos_bounded(
        f.repo.path(),
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "dev",
            "--git-sha",
            &linked,
        ],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("is a symbolic link"), "{text}");
    f.repo.git(&["rm", "-q", "deployments/_x/link.yaml"]);
    f.repo.commit("no link");

    // A folder that is a link (here to git's own folder) is refused on the way.
    std::os::unix::fs::symlink("../.git", f.repo.path().join("deployments/_g")).expect("symlink");
    f.repo.write(
        "svc.yaml",
        format!(
            "import: [_x/*.yaml]\n{}",
            DEPLOYMENT.replace(
                "  name: svc\n",
                "  name: svc\n  description: !include deployments/_g/config\n"
            )
        ),
    );
    let (code, text) = atmos_bounded(f.repo.path(), &["deployment", "validate", "svc"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("deployments/_g is a symbolic link to a folder"),
        "{text}"
    );
    assert!(!text.contains("[core]"), "git's config leaked: {text}");
    std::fs::remove_file(f.repo.path().join("deployments/_g")).expect("rm");

    // Git's own folder (a CI checkout keeps its credentials there) and oversized files.
    for (include, wanted) in [
        (".git/config", "inside git's own folder"),
        ("big.txt", "may be at most 4096 KiB"),
    ] {
        f.repo.write_file("big.txt", "x".repeat(5 << 20));
        f.repo.write(
            "svc.yaml",
            format!(
                "import: [_x/*.yaml]\n{}",
                DEPLOYMENT.replace(
                    "  name: svc\n",
                    &format!("  name: svc\n  description: !include {include}\n")
                )
            ),
        );
        let (code, text) = atmos_bounded(f.repo.path(), &["deployment", "validate", "svc"]);
        assert_eq!(code, Some(2), "{include}: {text}");
        assert!(text.contains(wanted), "{include}: {text}");
    }
}

#[test]
fn a_git_folder_under_another_name_is_not_readable_either() {
    let dir = tempfile::tempdir().expect("tempdir");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // `git init --separate-git-dir` puts the repository (and its credentials) in `store/`.
    git(&["init", "-q", "-b", "main", "--separate-git-dir=store", "."]);
    git(&[
        "config",
        "http.extraheader",
        "AUTHORIZATION: basic SECRETTOKEN",
    ]);
    std::fs::create_dir_all(dir.path().join("deployments")).expect("mkdir");
    std::fs::write(
        dir.path().join("deployments/svc.yaml"),
        "deployment:\n  name: svc\n  description: !include store/config\n  targets: {dev: {}}\n",
    )
    .expect("write");
    let (code, text) = atmos_bounded(dir.path(), &["deployment", "validate", "svc"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("store/config is inside git's own folder"),
        "{text}"
    );
    assert!(!text.contains("SECRETTOKEN"), "{text}");
}
