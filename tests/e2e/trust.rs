//! No way around the gates: rollbacks only to what a target ran, rules from the trusted ref
//! (not the work tree, not the deployed commit), feature-branch commits kept out of prod, no
//! judgement on a truncated history, and every blocker at once with fixes the gates accept.
//! Each test is an attempt to get around a guarantee.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use crate::rollout::{DEPLOYMENT, Fixture, record};
use crate::support::{Repo, args, git_in as git};

/// A bare `origin` for the fixture's repository, holding its `main`; the trusted ref is then
/// `refs/remotes/origin/main`.
pub(crate) fn with_origin(repo: &Repo) -> TempDir {
    let server = tempfile::tempdir().expect("tempdir");
    git(
        server.path(),
        &["init", "-q", "--bare", "-b", "main", "origin.git"],
    );
    let url = format!("file://{}", server.path().join("origin.git").display());
    repo.git(&["branch", "-M", "main"]);
    repo.git(&["remote", "add", "origin", &url]);
    merge(repo);
    repo.git(&["remote", "set-head", "origin", "main"]);
    server
}

/// Merge `branch` into `main` and publish it: the trusted ref now has the branch's change.
pub(crate) fn merge_branch(repo: &Repo, branch: &str) {
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", branch]);
    merge(repo);
}

/// Publish the current branch as `origin/main` (what a merge does) and fetch it.
pub(crate) fn merge(repo: &Repo) {
    repo.git(&["push", "-q", "origin", "HEAD:refs/heads/main"]);
    repo.git(&["fetch", "-q", "origin"]);
}

#[test]
fn a_rollback_goes_only_to_a_commit_the_target_ran() {
    let f = Fixture::new();
    let v1 = f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&args("--target staging --promote-from dev"))
        .code(0);
    let v2 = f.version("2");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&args("--target staging --promote-from dev"))
        .code(0);
    let v3 = f.version("3");

    // A real rollback: staging ran v1 before.
    let run = f.rollout(&["--target", "staging", "--git-sha", &v1, "-v"]);
    run.code(0).stdout_has(&[
        "Rolling back svc in staging",
        &format!(
            "rollback of staging to {}, which it ran successfully before",
            &v1[..7]
        ),
    ]);
    let tags = f.repo.outcomes("svc", "staging", "a");
    let r = record(&f.repo, tags.last().expect("tag"));
    assert_eq!(r["status"], "rollback");
    assert_eq!(r["rollback_of"], v2.as_str());

    // An ancestor that never ran anywhere is no rollback: denied, with where it ran and how
    // to get it there.
    f.rollout(&["--target", "staging", "--git-sha", &v2])
        .code(0);
    let run = f.rollout(&["--target", "staging", "--git-sha", &v3]);
    run.code(3).stdout_has(&[
        &format!(
            "{} never ran in staging and did not run in dev (it takes code by promotion from there); it has run nowhere",
            &v3[..7]
        ),
        &format!("atmos deployment rollout svc --target dev --git-sha {}", &v3[..7]),
        &format!("atmos deployment rollout svc --target staging --git-sha {}", &v3[..7]),
    ]);
    f.repo.assert_state("svc", "staging", "a", Some(&v2));

    // A hand-moved ref in dev is not a rollout there.
    f.repo
        .git(&["update-ref", "refs/atmos/deployments/svc/dev/a", &v3]);
    f.repo
        .git(&["update-ref", "refs/atmos/deployments/svc/dev/b", &v3]);
    f.rollout(&["--target", "staging", "--git-sha", &v3])
        .code(3);

    // Once v3 really ran in dev, rolling it out to staging by sha is a promotion, and says so.
    f.rollout(&["--target", "dev", "--git-sha", &v3, "--force"])
        .code(0);
    let run = f.rollout(&["--target", "staging", "--git-sha", &v3, "-v"]);
    run.code(0).stdout_has(&[
        "Promoting svc from dev to staging",
        &format!(
            "dev → staging is an allowed promotion: dev ran {} successfully",
            &v3[..7]
        ),
    ]);
    let tags = f.repo.outcomes("svc", "staging", "a");
    assert_eq!(
        record(&f.repo, tags.last().expect("tag"))["promoted_from"],
        "dev"
    );
}

/// A policy that refuses every rollout to staging.
const FROZEN: &str = "package team.frozen\n\ndeny contains {\"msg\": \"staging is frozen\", \"code\": \"FROZEN\"} if input.target.name == \"staging\"\n";

#[test]
fn gates_come_from_the_trusted_ref_not_the_work_tree_or_the_deployed_commit() {
    let f = Fixture::new();
    f.repo
        .write_file("atmos.yaml", "gates:\n  policies: [rules]\n");
    f.repo.write_file("rules/frozen.rego", FROZEN);
    f.version("1");
    let _origin = with_origin(&f.repo);
    f.rollout(&["--target", "dev"]).code(0);

    // Removing the gate in the work tree changes nothing, and the rollout says where its
    // rules come from.
    f.repo.write_file("atmos.yaml", "{}\n");
    let run = f.rollout(&args("--target staging --promote-from dev"));
    run.code(3).stdout_has(&[
        "staging is frozen [FROZEN]",
        "→ Rules from refs/remotes/origin/main at",
    ]);
    run.stderr_has(&["differs from the one on refs/remotes/origin/main"]);

    // Nor does removing it on a feature branch whose commit is then deployed.
    f.repo.git(&["checkout", "-q", "-b", "feature"]);
    f.repo.git(&["rm", "-q", "-r", "rules"]);
    let feature = f.repo.commit("drop the freeze");
    f.rollout(&["--target", "dev"]).code(0);
    let run = f.rollout(&args("--target staging --promote-from dev"));
    run.code(3).stdout_has(&[
        "staging is frozen [FROZEN]",
        &format!("{} is not on refs/remotes/origin/main", &feature[..7]),
    ]);

    // --local judges by the uncommitted rules, says so, and only plans.
    let run = f.rollout(&args("--target staging --promote-from dev --plan --local"));
    run.code(0).stdout_has(&[
        "Rules from the work tree, uncommitted (--local)",
        "nothing was changed",
    ]);
    let refused = f.rollout(&args("--target staging --promote-from dev --local"));
    refused.code(2).stderr_has(&["--plan"]);

    // Merged, the change applies.
    merge_branch(&f.repo, "feature");
    f.rollout(&args("--target staging --promote-from dev"))
        .code(0);
}

#[test]
fn what_is_deployed_comes_from_the_deployed_commit() {
    let f = Fixture::new();
    f.repo.write(
        "svc.yaml",
        DEPLOYMENT.replace(
            "apply: ./deploy.sh a\n",
            "apply: cat $ATMOS_VARS_FILE > $OUT/vars.json\n",
        ),
    );
    let v1 = f.version("1");
    // An uncommitted edit is not deployed, and the rollout says so before anything runs.
    let yaml = std::fs::read_to_string(f.repo.path().join("deployments/svc.yaml")).expect("read");
    f.repo
        .write("svc.yaml", yaml.replace("size: large", "size: huge"));
    let run = f.rollout(&["--target", "dev", "-c", "a"]);
    run.code(0).stderr_has(&[&format!(
        "deployments/svc.yaml in the work tree differs from commit {} being deployed",
        &v1[..7]
    )]);
    let vars = std::fs::read_to_string(f.out.path().join("vars.json")).expect("vars");
    assert!(
        vars.contains("\"large\"") && !vars.contains("huge"),
        "{vars}"
    );
}

#[test]
fn prod_takes_only_commits_on_the_trusted_ref() {
    let f = Fixture::new();
    f.repo.write(
        "svc.yaml",
        DEPLOYMENT.replace(
            "promotion: {from: staging, requires_approval: true}",
            "promotion: {from: staging}",
        ),
    );
    f.repo.add_shipped_policies();
    f.repo
        .write_file("atmos.yaml", "gates:\n  policies: [policies/promotion]\n");
    f.version("1");
    let _origin = with_origin(&f.repo);
    f.repo.git(&["checkout", "-q", "-b", "feature"]);
    let feature = f.version("2");
    f.rollout(&["--target", "dev"]).code(0);
    let run = f.rollout(&args("--target staging --promote-from dev"));
    run.code(0).stdout_has(&[&format!(
        "builtin/history: {} is not on refs/remotes/origin/main (a feature branch, or not merged yet) ! warn",
        &feature[..7]
    )]);
    let run = f.rollout(&args("--target prod --promote-from staging"));
    run.code(3).stdout_has(&[
        "[NOT_ON_TRUSTED_REF]",
        "fix: merge it into main (refs/remotes/origin/main), then promote the merged commit",
    ]);
    // The JSON input tells policies where the commit lives.
    let eval = f.repo.atmos(&args(
        "deployment policy eval svc --target prod --promote-from staging --format json",
    ));
    let doc = eval.json();
    assert_eq!(doc["input"]["commit"]["on_trusted_ref"], false);
    let branches: Vec<&str> = doc["input"]["commit"]["reachable_from"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|b| b.as_str())
        .collect();
    assert_eq!(branches, vec!["feature"]);
    assert_eq!(doc["input"]["rules"]["source"], "refs/remotes/origin/main");
}

#[test]
fn a_shallow_clone_fetches_the_history_the_gates_need_or_refuses() {
    let f = Fixture::new();
    f.version("1");
    let server = with_origin(&f.repo);
    f.repo.write_file("atmos.yaml", "git:\n  remote: origin\n");
    f.repo.commit("share the records");
    merge(&f.repo);
    f.rollout(&["--target", "dev"]).code(0);
    f.version("2");
    f.repo.write_file("WIP", "");
    f.repo.commit("WIP do not ship");
    f.version("3");
    merge(&f.repo);

    // A CI runner's checkout: one commit deep.
    let ci = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", server.path().join("origin.git").display());
    git(ci.path(), &["clone", "-q", "--depth", "1", &url, "runner"]);
    let runner = ci.path().join("runner");
    std::fs::write(runner.join("deploy.sh"), "#!/bin/sh\n").expect("write");
    let eval = crate::support::atmos_in(
        &runner,
        &args("deployment policy eval svc --target dev --format json"),
    );
    eval.code(0)
        .stderr_has(&["this clone was shallow: fetched the whole history from origin"]);
    let subjects: Vec<String> = eval.json()["input"]["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["subject"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        subjects.contains(&"WIP do not ship".to_owned()),
        "the gates see every commit since what dev runs: {subjects:?}"
    );

    // Without a remote to complete it from, a shallow clone is refused with the fix.
    git(ci.path(), &["clone", "-q", "--depth", "1", &url, "orphan"]);
    let orphan = ci.path().join("orphan");
    git(&orphan, &["remote", "remove", "origin"]);
    std::fs::write(orphan.join("atmos.yaml"), "{}\n").expect("write");
    let run = crate::support::atmos_in(&orphan, &args("deployment policy eval svc --target dev"));
    run.code(2)
        .stderr_has(&["this clone is shallow", "fetch-depth: 0"]);
}

#[test]
fn every_blocker_is_listed_at_once_and_fixes_are_checked_first() {
    let f = Fixture::new();
    f.repo.add_shipped_policies();
    f.repo.write_file(
        "atmos.yaml",
        "gates:\n  policies: [policies/promotion, policies/metadata, gates]\napprovers:\n  groups:\n    sre: [alice@example.com]\n",
    );
    f.repo.write_file(
        "gates/settings.yaml",
        "gates:\n  required_metadata:\n    prod: {ticket: \"^[A-Z]+-[0-9]+$\"}\n",
    );
    f.repo.write(
        "svc.yaml",
        DEPLOYMENT.replace(
            "promotion: {from: staging, requires_approval: true}",
            "promotion: {from: staging, requires_approval: true, approvals: {from_groups: [sre]}}",
        ),
    );
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    let run = f.rollout(&args("--target prod --promote-from dev"));
    run.code(3).stdout_has(&[
        "Blocked: 4 things stand in the way (exit 3):",
        "prod needs --metadata ticket=<value> [METADATA_MISSING]",
        "fix: add --metadata ticket=<value> (matching ^[A-Z]+-[0-9]+$) to the rollout",
        "prod may be promoted only from staging, not from dev [PROMOTION_PATH]",
        "1. Promote to staging first:\n     atmos deployment rollout svc --target staging --promote-from dev",
        "Not offered: --skip-promotion-check would still be refused: prod needs --metadata ticket=<value>; --skip-promotion-check is not allowed for prod",
        "Pending: prod requires 1 approval(s) from sre of",
        "May still approve: alice@example.com",
    ]);
    assert!(
        !run.stdout.contains("Or skip promotion validation"),
        "a refused escape hatch is not offered: {}",
        run.stdout
    );
    let doc = f
        .rollout(&args("--target prod --promote-from dev --format json"))
        .json();
    assert_eq!(doc["blockers"].as_array().map(Vec::len), Some(4), "{doc:#}");
}

#[test]
fn a_first_step_the_gates_refuse_is_not_suggested() {
    let f = Fixture::new();
    f.repo
        .write_file("atmos.yaml", "gates:\n  policies: [rules]\n");
    f.repo.write_file("rules/frozen.rego", FROZEN);
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    // prod from dev skips staging, and staging is frozen: "promote to staging first" would
    // be refused too, so it is not offered.
    let run = f.rollout(&args("--target prod --promote-from dev"));
    run.code(3).stdout_has(&[
        "Cannot promote directly from dev to prod",
        "Not offered: `atmos deployment rollout svc --target staging --promote-from dev` is refused too: staging is frozen",
    ]);
    assert!(
        !run.stdout.contains("1. Promote to staging first"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_truncated_commit_list_is_flagged_and_not_clean() {
    let f = Fixture::new();
    f.repo.add_shipped_policies();
    f.repo.write_file(
        "atmos.yaml",
        "gates:\n  policies: [policies/approvals, gates]\n",
    );
    f.repo.write_file(
        "gates/settings.yaml",
        "gates:\n  approvals:\n    prod: {min: 1}\n",
    );
    f.version("1");
    let ship = |f: &Fixture| {
        f.rollout(&["--target", "dev"]).code(0);
        f.rollout(&args("--target staging --promote-from dev"))
            .code(0);
        f.repo
            .atmos_env(
                &args("deployment approve svc --target prod --promote-from staging"),
                &[("ATMOS_ACTOR", "alice@example.com")],
            )
            .code(0);
        f.rollout(&args("--target prod --promote-from staging"))
    };
    ship(&f).code(0);
    // 201 commits later (fast: empty commits written by git fast-import).
    let head = f.repo.git(&["rev-parse", "HEAD"]);
    let mut stream = String::new();
    for i in 0..201 {
        stream.push_str(&format!(
            "commit refs/heads/many\ncommitter Dev <dev@example.com> {} +0000\ndata 6\nc{:04}\n{}\n",
            1_700_000_000 + i,
            i,
            if i == 0 { format!("from {head}\n") } else { String::new() }
        ));
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(f.repo.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("fast-import");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success());
    f.repo.git(&["checkout", "-q", "many"]);
    let eval = f.repo.atmos(&args(
        "deployment policy eval svc --target dev --format json",
    ));
    let doc = eval.json();
    assert_eq!(doc["input"]["commits_truncated"], true);
    assert_eq!(doc["input"]["commits"].as_array().map(Vec::len), Some(200));
    // Self-approval cannot be ruled out over an unknown rest: the approvals policy denies.
    ship(&f)
        .code(3)
        .stdout_has(&["[HISTORY_TRUNCATED]", "fix: promote in smaller steps"]);
}

#[test]
fn a_script_runs_in_a_private_tree_and_cannot_change_the_repository_or_the_next_run() {
    let f = Fixture::new();
    // A hostile deploy script: it looks for what an earlier run left, leaves a file, and
    // tries to point the trusted ref at a branch of its own.
    let script = "if [ -e leftover ]; then echo SAW-LEFTOVER; fi; echo x > leftover; \
                  git config atmos.trustRef refs/heads/evil 2>/dev/null || echo NO-REPOSITORY; \
                  pwd >> $OUT/pwd\n";
    f.repo.write(
        "svc.yaml",
        DEPLOYMENT.replace("apply: ./deploy.sh a\n", &format!("apply: {script}")),
    );
    f.repo
        .write_file("untracked-secret", "only in the work tree\n");
    f.version("1");
    f.rollout(&["--target", "dev", "-c", "a"])
        .code(0)
        .stdout_has(&["NO-REPOSITORY"]);
    let run = f.rollout(&args("--target staging --promote-from dev -c a"));
    run.code(0);
    assert!(!run.stdout.contains("│ SAW-LEFTOVER"), "{}", run.stdout);

    let config = Command::new("git")
        .args(["config", "atmos.trustRef"])
        .current_dir(f.repo.path())
        .output()
        .expect("git");
    assert!(config.stdout.is_empty(), "trust ref was set");
    assert!(!f.repo.path().join("deployments/leftover").exists());
    assert!(!f.repo.path().join("leftover").exists());
    let pwds = std::fs::read_to_string(f.out.path().join("pwd")).expect("pwd");
    let root = f.repo.path().canonicalize().expect("root");
    let dirs: Vec<&str> = pwds.lines().collect();
    assert_eq!(dirs.len(), 2, "{pwds}");
    assert_ne!(dirs[0], dirs[1], "two runs shared a tree");
    for d in dirs {
        assert!(
            !Path::new(d).starts_with(&root),
            "ran inside the repository: {d}"
        );
        assert!(
            !Path::new(d).exists(),
            "the private tree was left behind: {d}"
        );
    }
}

/// The fixture without prod's approval, so that a promotion to prod is decided by the path.
fn open_prod(f: &Fixture) {
    f.repo.write(
        "svc.yaml",
        DEPLOYMENT.replace(
            "promotion: {from: staging, requires_approval: true}",
            "promotion: {from: staging}",
        ),
    );
}

#[test]
fn a_state_ref_moved_by_hand_is_not_something_to_promote() {
    let f = Fixture::new();
    open_prod(&f);
    f.version("1");
    let _origin = with_origin(&f.repo);
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&args("--target staging --promote-from dev"))
        .code(0);
    let v2 = f.version("2");
    merge(&f.repo);
    // The attack: point staging's state refs at a commit that never ran there, then promote.
    for c in ["a", "b"] {
        f.repo.git(&[
            "update-ref",
            &format!("refs/atmos/deployments/svc/staging/{c}"),
            &v2,
        ]);
    }
    f.rollout(&args("--target prod --promote-from staging"))
        .code(3)
        .stdout_has(&[
            "builtin/history: staging has no success record of what it is said to run: a (",
            "a state ref moved by hand",
        ]);
    f.rollout(&["--target", "prod", "--git-sha", &v2]).code(3);
    assert!(f.applied("a", "prod").is_empty(), "nothing ran in prod");
}

#[test]
fn the_shared_store_and_the_default_branch_are_not_chosen_by_the_work_tree() {
    let f = Fixture::new();
    f.repo
        .write_file("atmos.yaml", "gates:\n  policies: [rules]\n");
    f.repo.write_file("rules/frozen.rego", FROZEN);
    f.version("1");
    let _origin = with_origin(&f.repo);

    // A second remote (a fork) whose default branch drops the gate, named by an uncommitted
    // edit as the shared store.
    let fork = tempfile::tempdir().expect("tempdir");
    git(
        fork.path(),
        &["init", "-q", "--bare", "-b", "main", "fork.git"],
    );
    let url = format!("file://{}", fork.path().join("fork.git").display());
    f.repo.git(&["remote", "add", "fork", &url]);
    f.repo.git(&["checkout", "-q", "-b", "evil"]);
    f.repo.git(&["rm", "-q", "-r", "rules"]);
    f.repo.commit("no gates");
    f.repo.git(&["push", "-q", "fork", "evil:main"]);
    f.repo.git(&["fetch", "-q", "fork"]);
    f.repo.git(&["remote", "set-head", "fork", "main"]);
    f.repo.git(&["checkout", "-q", "main"]);
    f.repo.write_file(
        "atmos.yaml",
        "git:\n  remote: fork\ngates:\n  policies: [rules]\n",
    );
    f.rollout(&["--target", "dev", "--offline"]).code(0);
    f.rollout(&args("--target staging --promote-from dev"))
        .code(2)
        .stderr_has(&["names fork as the shared store", "names none"]);
    // With two remotes, the trusted one is origin unless --remote says otherwise.
    f.rollout(&args("--target staging --promote-from dev --offline"))
        .code(3)
        .stdout_has(&[
            "staging is frozen [FROZEN]",
            "Rules from refs/remotes/origin/main",
        ]);

    // Without origin/HEAD (as after actions/checkout), a branch pushed as `master` is not
    // taken for the default branch: the remote is asked.
    f.repo.git(&["checkout", "--", "atmos.yaml"]);
    f.repo.git(&["remote", "remove", "fork"]);
    f.repo
        .git(&["push", "-q", "origin", "evil:refs/heads/master"]);
    f.repo.git(&["fetch", "-q", "origin"]);
    f.repo.git(&["remote", "set-head", "origin", "--delete"]);
    f.rollout(&args("--target staging --promote-from dev"))
        .code(3)
        .stdout_has(&[
            "staging is frozen [FROZEN]",
            "Rules from refs/remotes/origin/main",
        ]);

    // A short trust.ref cannot be satisfied by a tag someone pushed with the branch's name.
    f.repo.write_file(
        "atmos.yaml",
        "trust:\n  ref: main\ngates:\n  policies: [rules]\n",
    );
    f.repo.commit("trust.ref main");
    merge(&f.repo);
    f.repo.git(&["push", "-q", "origin", "evil:refs/tags/main"]);
    f.repo.git(&["fetch", "-q", "--tags", "origin"]);
    f.rollout(&args("--target staging --promote-from dev"))
        .code(2)
        .stderr_has(&["must give a full ref name"]);
}
