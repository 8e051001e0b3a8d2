//! `atmos deployment rollout`: what is run, and what is written to git, checked with the
//! `git` CLI independently of atmos's own reader.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::{Repo, args, atmos_cmd};

pub(crate) const DEPLOYMENT: &str = r#"deployment:
  name: svc
  context:
    default_target: dev
    region: eu-west-1
  components:
    script:
      a:
        vars: {size: small, keep: 1}
        settings:
          script:
            apply: ./deploy.sh a
            plan: ./deploy.sh a --plan
      b:
        metadata: {depends_on: [script/a]}
        settings:
          script: {apply: ./deploy.sh b}
  targets:
    dev:
      context: {size: large}
    staging:
      promotion: {from: dev}
    prod:
      promotion: {from: staging, requires_approval: true}
"#;

/// Records every apply in `$OUT/<component>.<target>.log`; fails when `fail-<component>` exists.
const DEPLOY_SH: &str = r#"#!/bin/sh
set -eu
name=$1
if [ "${2:-}" = "--plan" ]; then echo "plan for $name at version $(cat VERSION)"; [ -e "$OUT/drift-$name" ] && exit 2; exit 0; fi
echo "deploying $name version $(cat VERSION) to $ATMOS_TARGET"
if [ -f "fail-$name" ]; then echo "failing on purpose" >&2; exit 3; fi
echo "$ATMOS_GIT_SHA $(cat VERSION)" >> "$OUT/$name.$ATMOS_TARGET.log"
"#;

pub(crate) struct Fixture {
    pub(crate) repo: Repo,
    pub(crate) out: TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let repo = Repo::new();
        repo.write("svc.yaml", DEPLOYMENT);
        repo.write_file("deploy.sh", DEPLOY_SH);
        repo.write_file("VERSION", "1\n");
        let script = repo.path().join("deploy.sh");
        make_executable(&script);
        Fixture {
            repo,
            out: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub(crate) fn out(&self) -> &str {
        self.out.path().to_str().expect("utf-8")
    }

    pub(crate) fn rollout(&self, args: &[&str]) -> crate::support::Run {
        let mut all = vec!["deployment", "rollout", "svc"];
        all.extend_from_slice(args);
        self.repo.atmos_env(&all, &[("OUT", self.out())])
    }

    /// Lines recorded by deploy.sh for a component in a target.
    pub(crate) fn applied(&self, component: &str, target: &str) -> Vec<String> {
        std::fs::read_to_string(self.out.path().join(format!("{component}.{target}.log")))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    pub(crate) fn version(&self, v: &str) -> String {
        self.repo.write_file("VERSION", format!("{v}\n"));
        self.repo.commit(&format!("version {v}"))
    }
}

pub(crate) fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path).expect("meta").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}

/// The YAML body of a tag message, parsed.
pub(crate) fn record(repo: &Repo, tag: &str) -> serde_json::Value {
    let msg = repo.tag_message(tag);
    let body = msg
        .strip_prefix("atmos.tools/v1alpha1\nkind: Deployment\n---\n")
        .unwrap_or_else(|| panic!("bad header in {msg:?}"));
    serde_yaml_ng::from_str(body).expect("yaml body")
}

#[test]
fn rollout_records_state_refs_and_annotated_tags_in_the_spec_layout() {
    let f = Fixture::new();
    let v1 = f.version("1");
    let run = f.rollout(&["--target", "dev"]);
    run.code(0);
    let short = &v1[..7];
    run.stdout_has(&[&format!("Deploying svc to dev (commit {short})...")]);
    run.stdout_has(&[&format!("  a  (none)  → {short} (new)")]);
    assert!(
        run.stdout.contains("✓ Deployment complete ("),
        "{}",
        run.stdout
    );
    run.stdout_has(&["Deployment ID: atmos/deployments/svc/dev/a/"]);
    run.stdout_has(&["  a │ deploying a version 1 to dev"]);

    f.repo.assert_state("svc", "dev", "a", Some(&v1));
    f.repo.assert_state("svc", "dev", "b", Some(&v1));
    // Two records: the intent, written before the executor ran, and the outcome.
    let tags = f.repo.tags("svc", "dev", "a");
    assert_eq!(tags.len(), 2, "{tags:?}");
    let name = tags[0].rsplit('/').next().expect("segment");
    assert!(
        name.len() == 20
            && name.ends_with('Z')
            && name.as_bytes()[10] == b'T'
            && !name.contains(':'),
        "tag segment {name}"
    );
    assert_eq!(
        tags[1],
        format!("{}.1", tags[0]),
        "the outcome shares the start second"
    );
    // Annotated, pointing at the deployed commit.
    assert_eq!(f.repo.git(&["cat-file", "-t", &tags[1]]), "tag");
    assert_eq!(
        f.repo
            .git(&["rev-parse", &format!("{}^{{commit}}", tags[1])]),
        v1
    );
    let intent = record(&f.repo, &tags[0]);
    assert_eq!(intent["status"], "started");
    assert_eq!(intent["sequence"], 1);
    assert!(intent["runner"]["pid"].as_u64().is_some(), "{intent}");
    let intent_oid = f.repo.git(&["rev-parse", &tags[0]]);
    // The chain ref names the newest record; the outcome completes the intent.
    assert_eq!(
        f.repo.git(&["rev-parse", "refs/atmos/chains/svc/dev/a"]),
        f.repo.git(&["rev-parse", &tags[1]])
    );

    let msg = f.repo.tag_message(&tags[1]);
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(
        &lines[..3],
        &["atmos.tools/v1alpha1", "kind: Deployment", "---"]
    );
    assert_eq!(lines[3], "deployment: svc");
    assert_eq!(lines[4], "target: dev");
    assert_eq!(lines[5], "component: a");
    assert_eq!(lines[6], "deployed_by: dev@example.com");
    assert_eq!(lines[7], format!("git_sha: {v1}"));
    assert!(
        lines[8].starts_with("timestamp: ") && lines[8].ends_with('Z'),
        "{}",
        lines[8]
    );
    assert_eq!(lines[9], "status: success");
    let r = record(&f.repo, &tags[1]);
    assert_eq!(r["intent"], intent_oid.as_str());
    assert_eq!(r["previous_record"], intent_oid.as_str());
    assert_eq!(r["sequence"], 2);
    assert_eq!(r["decisions"][0]["source"], "builtin/promotion-path");
    assert_eq!(r["decisions"][0]["result"], "allow");
    assert!(r.get("promoted_from").is_none() && r.get("rollback_of").is_none());
    assert_eq!(f.applied("a", "dev"), vec![format!("{v1} 1")]);
}

#[test]
fn script_contract_environment_vars_file_and_working_directory() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  context: {region: eu-west-1}\n  components:\n    script:\n      probe:\n        vars: {size: small, nested: {a: 1, b: 2}}\n        settings:\n          script:\n            apply: 'env | grep ^ATMOS_ | sort > \"$OUT/env\"; cp \"$ATMOS_VARS_FILE\" \"$OUT/vars.json\"; pwd > \"$OUT/pwd\"'\n  targets:\n    dev:\n      context: {size: large, nested: {b: 3}}\n",
    );
    let sha = repo.commit("init");
    let out = tempfile::tempdir().expect("tempdir");
    let run = repo.atmos_env(
        &args("deployment rollout svc --target dev"),
        &[("OUT", out.path().to_str().expect("utf-8"))],
    );
    run.code(0);
    let env = std::fs::read_to_string(out.path().join("env")).expect("env");
    for line in [
        "ATMOS_DEPLOYMENT=svc".to_owned(),
        "ATMOS_TARGET=dev".to_owned(),
        "ATMOS_COMPONENT=probe".to_owned(),
        format!("ATMOS_GIT_SHA={sha}"),
    ] {
        assert!(env.lines().any(|l| l == line), "missing {line} in\n{env}");
    }
    assert!(env.contains("ATMOS_VARS_FILE=/"), "{env}");
    let vars: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("vars.json")).expect("vars"))
            .expect("json");
    assert_eq!(
        vars,
        serde_json::json!({"region": "eu-west-1", "size": "large", "nested": {"a": 1, "b": 3}})
    );
    // The script runs at the project root of a private export of the deployed commit,
    // outside the repository, removed afterwards.
    let pwd = std::fs::read_to_string(out.path().join("pwd")).expect("pwd");
    let pwd = Path::new(pwd.trim());
    assert!(
        !pwd.starts_with(repo.path().canonicalize().expect("root")),
        "ran in the work tree: {}",
        pwd.display()
    );
    assert!(
        !pwd.exists(),
        "the export was left behind: {}",
        pwd.display()
    );
}

#[test]
fn failure_keeps_the_ref_records_a_failure_tag_and_skips_dependents() {
    let f = Fixture::new();
    let v1 = f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.repo.write_file("fail-a", "");
    let v2 = f.version("2");
    let run = f.rollout(&["--target", "dev"]);
    run.code(1);
    run.stdout_has(&["✗ a failed: `sh -c './deploy.sh a'` exited with status 3"]);
    run.stdout_has(&["- b skipped: depends on a, which did not succeed"]);
    run.stdout_has(&["Deployment failed"]);
    run.stdout_has(&["0 succeeded, 1 failed, 1 skipped"]);
    assert!(
        run.stdout.contains("a │ failing on purpose"),
        "stderr of the script is streamed: {}",
        run.stdout
    );

    f.repo.assert_state("svc", "dev", "a", Some(&v1));
    f.repo.assert_state("svc", "dev", "b", Some(&v1));
    let tags = f.repo.outcomes("svc", "dev", "a");
    assert_eq!(tags.len(), 2);
    let failed = record(&f.repo, &tags[1]);
    assert_eq!(failed["status"], "failure");
    assert_eq!(failed["git_sha"], v2.as_str());
    assert_eq!(failed["previous_sha"], v1.as_str());
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("exited with status 3"))
    );
    // A component that never ran after its dependency failed: announced, then skipped.
    let b = f.repo.outcomes("svc", "dev", "b");
    assert_eq!(b.len(), 2, "{b:?}");
    let skipped = record(&f.repo, &b[1]);
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["git_sha"], v2.as_str());
    // The log of the failed component is kept.
    let log_line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Logs: "))
        .expect("logs line");
    let log = f
        .repo
        .path()
        .join(log_line.trim_start_matches("Logs: "))
        .join("a.log");
    let text = std::fs::read_to_string(&log).expect("log file");
    assert!(
        text.contains("$ sh -c './deploy.sh a'") && text.contains("failing on purpose"),
        "{text}"
    );
}

#[test]
fn rollback_to_an_ancestor_is_recorded_and_runs_the_old_tree() {
    let f = Fixture::new();
    let v1 = f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    let v2 = f.version("2");
    f.rollout(&["--target", "dev"]).code(0);
    let run = f.rollout(&["--target", "dev", "--git-sha", &v1[..8]]);
    run.code(0);
    run.stdout_has(&["Rolling back svc in dev"]);
    run.stdout_has(&[&format!("{} → {} (rollback)", &v2[..7], &v1[..7])]);
    assert!(
        run.stdout.contains("deploying a version 1 to dev"),
        "the executor ran v1's files: {}",
        run.stdout
    );
    f.repo.assert_state("svc", "dev", "a", Some(&v1));
    let tags = f.repo.outcomes("svc", "dev", "a");
    let r = record(&f.repo, tags.last().expect("tag"));
    assert_eq!(r["status"], "rollback");
    assert_eq!(r["rollback_of"], v2.as_str());
    assert_eq!(
        f.applied("a", "dev"),
        vec![format!("{v1} 1"), format!("{v2} 2"), format!("{v1} 1")]
    );
}

#[test]
fn a_move_forward_to_a_commit_the_target_ran_is_a_roll_forward_in_every_view() {
    let f = Fixture::new();
    let v1 = f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    let v2 = f.version("2");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "dev", "--git-sha", &v1[..8]])
        .code(0);
    // Overview and graph say what the target's component view says: a rollback.
    let overview = f.repo.atmos(&["deployment", "status", "--format", "json"]);
    overview.code(0);
    let o: serde_json::Value = serde_json::from_str(&overview.stdout).expect("json");
    assert_eq!(
        o["deployments"][0]["targets"][0]["last_rollout"], "rollback",
        "{o}"
    );
    let one = f
        .repo
        .atmos(&["deployment", "status", "svc", "--target", "dev"]);
    one.stdout_has(&["rollback"]);

    // Back up to v2, which dev ran before: a roll-forward, not a rollback.
    let run = f.rollout(&["--target", "dev", "--git-sha", &v2[..8]]);
    run.code(0);
    run.stdout_has(&[&format!(
        "Rolling svc in dev forward to {}, which it ran before",
        &v2[..7]
    )]);
    run.stdout_has(&[&format!("{} → {} (roll-forward)", &v1[..7], &v2[..7])]);
    let tags = f.repo.outcomes("svc", "dev", "a");
    let r = record(&f.repo, tags.last().expect("tag"));
    assert_eq!(r["status"], "success", "{r}");
    assert!(r.get("rollback_of").is_none(), "{r}");
    assert_eq!(r["rolled_forward_from"], v1.as_str());
    let history = f.repo.atmos(&[
        "deployment",
        "history",
        "svc",
        "--target",
        "dev",
        "--component",
        "a",
    ]);
    history.code(0);
    history.stdout_has(&[&format!("Roll-forward from {}", &v1[..7])]);
    let overview = f.repo.atmos(&["deployment", "status", "--format", "json"]);
    let o: serde_json::Value = serde_json::from_str(&overview.stdout).expect("json");
    assert_eq!(
        o["deployments"][0]["targets"][0]["last_rollout"], "success",
        "{o}"
    );
    // The gates judged it as a rollout of newer code, and verify agrees with the record.
    f.repo.atmos(&["deployment", "verify", "svc"]).code(0);
}

#[test]
fn promotion_takes_each_components_commit_from_the_source() {
    let f = Fixture::new();
    let v1 = f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    let v2 = f.version("2");
    f.rollout(&["--target", "dev", "--component", "a"]).code(0);
    f.repo.assert_state("svc", "dev", "b", Some(&v1));

    let run = f.rollout(&["--target", "staging", "--promote-from", "dev", "-v"]);
    run.code(0);
    run.stdout_has(&["Promoting svc from dev to staging..."]);
    run.stdout_has(&["dev → staging is an allowed promotion ✓"]);
    f.repo.assert_state("svc", "staging", "a", Some(&v2));
    f.repo.assert_state("svc", "staging", "b", Some(&v1));
    let r = record(&f.repo, &f.repo.outcomes("svc", "staging", "a")[0]);
    assert_eq!(r["promoted_from"], "dev");
    assert_eq!(r["promoted_at"], r["timestamp"]);
    assert_eq!(
        f.applied("b", "staging"),
        vec![format!("{v1} 1")],
        "b ran v1's tree"
    );

    // A promoted target takes no direct rollout of a new commit...
    let v3 = f.version("3");
    let run = f.rollout(&["--target", "staging", "--git-sha", &v3]);
    run.code(3);
    run.stdout_has(&["Cannot deploy directly to staging: it receives code by promotion"]);
    // ...but takes a rollback.
    f.rollout(&["--target", "staging", "--git-sha", &v1])
        .code(0);
    f.repo.assert_state("svc", "staging", "a", Some(&v1));
}

#[test]
fn wrong_promotion_path_is_denied_with_the_seed_message() {
    let f = Fixture::new();
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    let before = f.repo.atmos_refs();
    let run = f.rollout(&["--target", "prod", "--promote-from", "dev"]);
    run.code(3);
    let expected = [
        "Error: Cannot promote directly from dev to prod",
        "Promotion path requires: dev → staging → prod",
        "",
        "To deploy to prod:",
        "  1. Promote to staging first:",
        "     atmos deployment rollout svc --target staging --promote-from dev",
        "",
        "  2. Then promote to prod:",
        "     atmos deployment rollout svc --target prod --promote-from staging",
        "",
        "Or skip promotion validation (not recommended; recorded in the deployment tags):",
        "  atmos deployment rollout svc --target prod --promote-from dev --skip-promotion-check",
    ]
    .join("\n");
    run.stdout_has(&[&expected]);
    assert_eq!(f.repo.atmos_refs(), before, "nothing written");

    // JSON carries the decisions and the denial for CI.
    let json = f.repo.atmos_env(
        &args("deployment rollout svc --target prod --promote-from dev --format json"),
        &[("OUT", f.out())],
    );
    json.code(3);
    let plan = json.json();
    assert_eq!(plan["decisions"][0]["result"], "deny");
    assert_eq!(
        plan["denial"]["required_path"],
        serde_json::json!(["dev", "staging", "prod"])
    );
}

#[test]
fn skip_promotion_check_is_recorded_in_the_tags() {
    let f = Fixture::new();
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    // dev → staging skipped step: promote staging into dev is not a path (dev is an entry point).
    let run = f.rollout(&args(
        "--target dev --promote-from staging --skip-promotion-check --force",
    ));
    run.code(0);
    let r = record(
        &f.repo,
        f.repo.outcomes("svc", "dev", "a").last().expect("tag"),
    );
    assert_eq!(r["metadata"]["skip_promotion_check"], "true");
    assert_eq!(r["decisions"][0]["result"], "skipped");
    assert_eq!(r["promoted_from"], "staging");
}

#[test]
fn a_target_that_requires_approval_is_pending_and_nothing_is_written() {
    let f = Fixture::new();
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    let before = f.repo.atmos_refs();
    let run = f.rollout(&["--target", "prod", "--promote-from", "staging"]);
    run.code(4);
    run.stdout_has(&["Pending: prod requires 1 approval(s) of"]);
    run.stdout_has(&["atmos deployment approve svc --target prod --git-sha "]);
    assert_eq!(f.repo.atmos_refs(), before);
    assert!(f.applied("a", "prod").is_empty());
}

#[test]
fn promoting_from_an_empty_target_and_unknown_commits_are_clear_errors() {
    let f = Fixture::new();
    f.version("1");
    let run = f.rollout(&["--target", "staging", "--promote-from", "dev"]);
    run.code(2);
    run.stderr_has(&["error: nothing to promote: dev has no deployment of a, b"]);
    run.stderr_has(&["atmos deployment rollout svc --target dev"]);

    let run = f.rollout(&["--target", "dev", "--git-sha", "deadbeef"]);
    run.code(2);
    run.stderr_has(&["`deadbeef` does not name a commit in this repository"]);

    let run = f.rollout(&["--target", "dev", "--component", "c"]);
    run.code(2);
    run.stderr_has(&["deployment `svc` has no component `c`"]);
    assert!(f.repo.atmos_refs().is_empty());
}

#[test]
fn rerunning_the_deployed_commit_changes_nothing_unless_forced() {
    let f = Fixture::new();
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    let before = f.repo.atmos_refs();
    let run = f.rollout(&["--target", "dev"]);
    run.code(0);
    run.stdout_has(&["Nothing to do: every selected component of svc in dev already runs"]);
    assert_eq!(f.repo.atmos_refs(), before, "no tag for a no-op");
    let run = f.rollout(&["--target", "dev", "--force"]);
    run.code(0);
    run.stdout_has(&["(no change) — forced"]);
    assert_eq!(f.repo.outcomes("svc", "dev", "a").len(), 2);
    assert_eq!(f.applied("a", "dev").len(), 2);
}

#[test]
fn plan_runs_plan_commands_and_writes_nothing() {
    let f = Fixture::new();
    f.version("1");
    let run = f.rollout(&["--target", "dev", "--plan"]);
    run.code(0);
    run.stdout_has(&["plan only, nothing will change"]);
    run.stdout_has(&["a │ plan for a at version 1"]);
    run.stdout_has(&["Plan: 2 to deploy, 0 unchanged; nothing was changed"]);
    assert!(f.repo.atmos_refs().is_empty());
    assert!(f.applied("a", "dev").is_empty());
}

#[test]
fn waves_follow_dependencies_and_run_concurrently_up_to_the_limit() {
    let repo = Repo::new();
    // a and b wait for each other: they only both succeed when they run at the same time.
    let rendezvous = |me: &str, other: &str| {
        format!(
            "touch \"$OUT/{me}.started\"; i=0; while [ ! -e \"$OUT/{other}.started\" ]; do i=$((i+1)); [ $i -gt 100 ] && exit 9; sleep 0.05; done; touch \"$OUT/{me}.done\""
        )
    };
    repo.write(
        "svc.yaml",
        format!(
            "deployment:\n  name: svc\n  components:\n    script:\n      a:\n        settings: {{script: {{apply: '{}'}}}}\n      b:\n        settings: {{script: {{apply: '{}'}}}}\n      c:\n        metadata: {{depends_on: [script/a, script/b]}}\n        settings: {{script: {{apply: 'test -e \"$OUT/a.done\" && test -e \"$OUT/b.done\"'}}}}\n  targets:\n    dev: {{}}\n",
            rendezvous("a", "b"),
            rendezvous("b", "a")
        ),
    );
    repo.commit("init");
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().to_str().expect("utf-8");
    let run = repo.atmos_env(
        &args("deployment rollout svc --target dev --parallelism 2"),
        &[("OUT", dir)],
    );
    run.code(0);
    run.stdout_has(&["Wave 1/2: a, b"]);
    run.stdout_has(&["Wave 2/2: c"]);

    // With one at a time, the first of a/b waits for the other in vain and fails.
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().to_str().expect("utf-8");
    let run = repo.atmos_env(
        &args("deployment rollout svc --target dev --parallelism 1 --force"),
        &[("OUT", dir)],
    );
    run.code(1);
    run.stdout_has(&["exited with status 9"]);
    run.stdout_has(&["c skipped"]);
}

#[test]
fn rollouts_within_the_same_second_never_overwrite_a_tag() {
    let f = Fixture::new();
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    // Four forced rollouts at once: the target lock runs them one after the other, often
    // within one second (the same-second naming itself is unit-tested in git::record).
    let children: Vec<_> = (0..4)
        .map(|_| {
            atmos_cmd(f.repo.path())
                .args([
                    "deployment",
                    "rollout",
                    "svc",
                    "--target",
                    "dev",
                    "--force",
                    "-q",
                    "--wait-for-lock",
                    "--timeout",
                    "60s",
                ])
                .env("OUT", f.out())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| {
            c.wait_with_output()
                .expect("wait")
                .status
                .code()
                .unwrap_or(-1)
        })
        .collect();
    assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
    let tags = f.repo.outcomes("svc", "dev", "a");
    assert_eq!(tags.len(), 5, "every rollout kept its own tag: {tags:?}");
    assert_eq!(f.repo.tags("svc", "dev", "a").len(), 10, "and its intent");
    assert_eq!(f.applied("a", "dev").len(), 5);
    let mut seconds: Vec<&str> = tags
        .iter()
        .map(|t| {
            t.rsplit('/')
                .next()
                .unwrap_or("")
                .split('.')
                .next()
                .unwrap_or("")
        })
        .collect();
    let total = seconds.len();
    seconds.dedup();
    if seconds.len() < total {
        assert!(
            tags.iter().any(|t| t.ends_with(".1")),
            "same-second tags get a suffix: {tags:?}"
        );
    }
}

#[test]
fn deployer_and_build_id_come_from_ci_variables() {
    let f = Fixture::new();
    f.version("1");
    let run = f.repo.atmos_env(
        &args("deployment rollout svc --target dev --metadata pr=#482"),
        &[
            ("OUT", f.out()),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_RUN_ID", "4242"),
        ],
    );
    run.code(0);
    run.stdout_has(&["Deployed by octocat (from GITHUB_ACTOR)"]);
    let r = record(&f.repo, &f.repo.outcomes("svc", "dev", "a")[0]);
    assert_eq!(r["deployed_by"], "octocat");
    assert_eq!(r["build_id"], "4242");
    assert_eq!(r["metadata"]["pr"], "#482");
}

#[test]
fn stand_in_terraform_helmfile_nixpacks_and_docker_receive_the_documented_arguments() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    // Stand-in executables: record cwd and arguments, change nothing.
    let standin = |name: &str| {
        let path = repo.path().join("bin").join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"$(pwd)|$*\" >> \"$OUT/{name}.calls\"\n"),
        )
        .expect("write");
        make_executable(&path);
    };
    standin("terraform-standin");
    standin("helmfile-standin");
    standin("nixpacks");
    standin("docker");
    repo.write_file("infra/db/main.tf", "# module\n");
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    terraform:\n      db:\n        vars: {size: 1}\n        settings:\n          terraform: {dir: infra/db, binary: bin/terraform-standin}\n    helmfile:\n      web:\n        metadata: {depends_on: [terraform/db]}\n        settings:\n          helmfile: {file: charts/helmfile.yaml}\n    nixpack:\n      api:\n        vars: {image: {registry: reg.example.com, name: pay/api}}\n        settings:\n          nixpack: {path: services/api}\n  targets:\n    dev: {}\n",
    );
    let sha = repo.commit("init");
    let dir = out.path().to_str().expect("utf-8");
    let path = format!(
        "{}:{}",
        repo.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let helmfile = repo.path().join("bin/helmfile-standin");
    let run = repo.atmos_env(
        &args("deployment rollout svc --target dev"),
        &[
            ("OUT", dir),
            ("PATH", &path),
            ("ATMOS_HELMFILE_BIN", helmfile.to_str().expect("utf-8")),
        ],
    );
    run.code(0);
    let calls = |name: &str| {
        std::fs::read_to_string(out.path().join(format!("{name}.calls"))).expect("calls")
    };
    let tf: Vec<String> = calls("terraform-standin")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(tf.len(), 3, "{tf:?}");
    // Run in the component's folder of a private export of the deployed commit.
    let root = repo.path().canonicalize().expect("root");
    assert!(
        tf.iter()
            .all(|l| l.split('|').next().is_some_and(
                |dir| dir.ends_with("/infra/db") && !Path::new(dir).starts_with(&root)
            )),
        "{tf:?}"
    );
    assert!(tf[0].ends_with("|init -input=false -no-color"));
    assert!(tf[1].ends_with("|workspace select -or-create=true dev"));
    assert!(
        tf[2].contains("|apply -input=false -auto-approve -no-color -var-file=/")
            && tf[2].ends_with("atmos.tfvars.json"),
        "{}",
        tf[2]
    );
    let hf = calls("helmfile-standin");
    assert!(
        hf.contains("|--file charts/helmfile.yaml --environment dev --state-values-file /")
            && hf.trim_end().ends_with("vars.json apply"),
        "{hf}"
    );
    // dev is the entry target and nothing was built: the image is built once, first.
    let nx = calls("nixpacks");
    assert!(
        nx.contains(&format!(
            "|build services/api --name reg.example.com/pay/api --tag reg.example.com/pay/api:{}",
            &sha[..12]
        )),
        "{nx}"
    );
    let docker = calls("docker");
    assert!(
        docker.contains(&format!("|push reg.example.com/pay/api:{}", &sha[..12])),
        "{docker}"
    );
    run.stdout_has(&["Building api of", "first"]);

    // --plan uses the plan verbs.
    let out2 = tempfile::tempdir().expect("tempdir");
    repo.atmos_env(
        &args("deployment rollout svc --target dev --plan --force"),
        &[
            ("OUT", out2.path().to_str().expect("utf-8")),
            ("PATH", &path),
            ("ATMOS_HELMFILE_BIN", helmfile.to_str().expect("utf-8")),
        ],
    )
    .code(0);
    let tf = std::fs::read_to_string(out2.path().join("terraform-standin.calls")).expect("calls");
    assert!(
        tf.lines()
            .last()
            .is_some_and(|l| l.contains("|plan -input=false -no-color -var-file=")),
        "{tf}"
    );
    let hf = std::fs::read_to_string(out2.path().join("helmfile-standin.calls")).expect("calls");
    assert!(hf.trim_end().ends_with(" diff"), "{hf}");
    assert!(
        !out2.path().join("nixpacks.calls").exists(),
        "built once already: a plan (and every later rollout) builds nothing"
    );
}

#[test]
fn a_missing_tool_is_named_before_anything_runs() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      first:\n        settings: {script: {apply: 'touch \"$OUT/ran\"'}}\n    terraform:\n      db: {}\n  targets:\n    dev: {}\n",
    );
    repo.commit("init");
    let out = tempfile::tempdir().expect("tempdir");
    let run = repo.atmos_env(
        &args("deployment rollout svc --target dev"),
        &[
            ("OUT", out.path().to_str().expect("utf-8")),
            ("PATH", "/usr/bin:/bin"),
        ],
    );
    run.code(1);
    run.stderr_has(&[
        "`terraform` is needed by component `terraform/db` but was not found on PATH",
    ]);
    run.stderr_has(&["ATMOS_TERRAFORM_BIN"]);
    assert!(!out.path().join("ran").exists(), "nothing ran");
    assert!(repo.atmos_refs().is_empty());
}

#[test]
fn sigint_stops_running_executors_and_leaves_consistent_records() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      quick:\n        settings: {script: {apply: 'touch \"$OUT/quick.done\"'}}\n      slow:\n        settings: {script: {apply: 'echo $$ > \"$OUT/pid\"; sleep 60 & echo $! > \"$OUT/child\"; wait'}}\n      after:\n        metadata: {depends_on: [script/slow]}\n        settings: {script: {apply: 'touch \"$OUT/after\"'}}\n  targets:\n    dev: {}\n",
    );
    repo.commit("init");
    let out = tempfile::tempdir().expect("tempdir");
    let mut cmd = atmos_cmd(repo.path());
    cmd.args(["deployment", "rollout", "svc", "--target", "dev"])
        .env("OUT", out.path());
    let mut child = crate::support::Background::spawn(cmd);
    crate::support::wait_for_file(&out.path().join("child"), Duration::from_secs(20));
    // atmos has reaped `quick` (it says so) before the signal.
    child.wait_for_output("✓ quick", Duration::from_secs(20));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = Instant::now();
    let output = child.finish();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped promptly"
    );
    output.code(1);
    let stdout = output.stdout.clone();
    assert!(stdout.contains("Deployment interrupted"), "{stdout}");
    assert!(stdout.contains("after skipped"), "{stdout}");

    // The whole process group is gone (a zombie waiting for a reaper counts as gone).
    let sleeper = std::fs::read_to_string(out.path().join("child")).expect("child pid");
    let stat =
        std::fs::read_to_string(format!("/proc/{}/stat", sleeper.trim())).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("gone");
    assert!(
        state == "gone" || state == "Z",
        "the executor's background child still runs: {stat}"
    );
    assert!(!out.path().join("after").exists());

    // Records: quick succeeded, slow has a failure tag and no state ref, after has nothing.
    assert!(repo.state("svc", "dev", "quick").is_some());
    assert!(repo.state("svc", "dev", "slow").is_none());
    let slow = repo.outcomes("svc", "dev", "slow");
    assert_eq!(slow.len(), 1);
    let r = record(&repo, &slow[0]);
    assert_eq!(r["status"], "failure");
    assert_eq!(r["error"], "interrupted by a signal");
    // `after` was announced (its intent) and never started: recorded as skipped.
    let after = repo.outcomes("svc", "dev", "after");
    assert_eq!(after.len(), 1);
    assert_eq!(record(&repo, &after[0])["status"], "skipped");
}

#[test]
fn executors_run_the_deployed_commit_even_with_a_dirty_work_tree() {
    let f = Fixture::new();
    let v1 = f.version("1");
    f.repo.write_file("VERSION", "dirty\n");
    let run = f.rollout(&["--target", "dev"]);
    run.code(0);
    run.stdout_has(&["deploying a version 1 to dev"]);
    assert_eq!(f.applied("a", "dev"), vec![format!("{v1} 1")]);
    // The work tree is left as it was, and nothing is cached in the repository.
    assert!(!f.repo.path().join(".git/atmos/checkouts").exists());
    assert_eq!(f.repo.git(&["status", "--porcelain"]), " M VERSION");
    // And it says which files it does not deploy.
    run.stderr_has(&[
        "VERSION has uncommitted changes the rollout does not deploy (it runs commit",
    ]);
    // A detached HEAD deploys a commit on no branch, and says so.
    f.repo.git(&["checkout", "-q", "--", "VERSION"]);
    f.repo.git(&["checkout", "-q", "--detach"]);
    let run = f.rollout(&["--target", "dev", "--force"]);
    run.code(0);
    run.stderr_has(&["HEAD is detached at"]);
    assert!(!run.stderr.contains("uncommitted"), "{}", run.stderr);
}

/// What the executors printed is kept with each record (a note on its tag) and shown by
/// `logs`: the newest rollout, one component, a rollout by commit; `--follow` tails a rollout
/// running in this clone until it ends.
#[test]
fn logs_show_what_each_component_printed_in_a_rollout() {
    let f = Fixture::new();
    let v1 = f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.version("2");
    f.rollout(&["--target", "dev"]).code(0);

    let run = f.repo.atmos(&args("deployment logs svc --target dev"));
    run.code(0).stdout_has(&[
        "=== a (success,",
        "deploying a version 2 to dev",
        "=== b (success,",
        "deploying b version 2 to dev",
    ]);
    let run = f.repo.atmos(&[
        "deployment",
        "logs",
        "svc",
        "--target",
        "dev",
        "--git-sha",
        &v1[..8],
        "--component",
        "b",
    ]);
    run.code(0).stdout_has(&["deploying b version 1 to dev"]);
    assert!(!run.stdout.contains("=== a"), "{}", run.stdout);
    // A ref works as well as a sha, as for `rollout --git-sha`.
    f.repo
        .atmos(&args("deployment logs svc --target dev --git-sha HEAD~0"))
        .code(0)
        .stdout_has(&["deploying a version 2 to dev"]);
    let json = f
        .repo
        .atmos(&args("deployment logs svc --target dev --format json"))
        .json();
    crate::support::check_output_schema("LogsReport", &json);
    assert_eq!(json["components"].as_array().map(Vec::len), Some(2));
    f.repo
        .atmos(&args("deployment logs svc --target staging"))
        .code(2)
        .stderr_has(&["no rollout of svc to staging yet"]);

    // --follow, while a slow rollout runs here.
    std::fs::write(
        f.repo.path().join("deploy.sh"),
        "#!/bin/sh\nfor i in 1 2 3; do echo \"$1 step $i\"; sleep 0.4; done\n",
    )
    .expect("write");
    f.repo.commit("slow deploy");
    let mut rollout = atmos_cmd(f.repo.path());
    rollout
        .args(args("deployment rollout svc --target dev"))
        .env("OUT", f.out());
    let mut rollout = crate::support::Background::spawn(rollout);
    // Follow from while the rollout runs: once its first step is printed.
    rollout.wait_for_output("a step 1", Duration::from_secs(30));
    let followed = f
        .repo
        .atmos(&args("deployment logs svc --target dev --follow"));
    rollout.finish().code(0);
    followed
        .code(0)
        .stdout_has(&["a │ a step 3", "b │ b step 1", "b │ b step 3"]);
}
