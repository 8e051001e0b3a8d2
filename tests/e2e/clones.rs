//! Reads in the clones CI and people actually make: a plain `git clone` (history tags, no
//! `refs/atmos/*`), a partial clone (`--filter=blob:none`: the archive ledger's trees without
//! their contents), and a clone set up with `fetch --setup` that keeps using `git pull`.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::support::{Run, atmos_cmd, git_in as git};

const SVC: &str = "deployment:
  name: svc
  components:
    script:
      api:
        settings: {script: {apply: 'true'}}
  targets:
    dev: {}
    staging: {promotion: {from: dev}}
";

fn atmos(dir: &Path, args: &[&str]) -> Run {
    atmos_cmd(dir)
        .args(args)
        .env("ATMOS_ACTOR", "dev@example.com")
        .output()
        .expect("atmos")
        .into()
}

/// A bare store (`origin.git`, serving filtered clones) and the working clone that rolls out
/// to it; `atmos_yaml` is the project's atmos.yaml (empty: no `git.remote`).
struct Store {
    dir: TempDir,
    work: PathBuf,
}

impl Store {
    fn new(atmos_yaml: &str) -> Store {
        let dir = tempfile::tempdir().expect("tempdir");
        let origin = dir.path().join("origin.git");
        git(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", "origin.git"],
        );
        git(&origin, &["config", "uploadpack.allowFilter", "true"]);
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("deployments")).expect("mkdir");
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("deployments/svc.yaml"), SVC).expect("write");
        if !atmos_yaml.is_empty() {
            std::fs::write(work.join("atmos.yaml"), atmos_yaml).expect("write");
        }
        std::fs::write(work.join("VERSION"), "1\n").expect("write");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "v1"]);
        git(&work, &["remote", "add", "origin", "../origin.git"]);
        git(&work, &["push", "-q", "origin", "main"]);
        Store { dir, work }
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.path().join("origin.git").display())
    }

    /// A new commit on main, pushed; its sha.
    fn version(&self, v: &str) -> String {
        std::fs::write(self.work.join("VERSION"), format!("{v}\n")).expect("write");
        git(&self.work, &["commit", "-q", "-am", &format!("v{v}")]);
        git(&self.work, &["push", "-q", "origin", "main"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// A clone of the store (`extra`: `--filter=blob:none` for a partial one).
    fn clone(&self, name: &str, extra: &[&str]) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut args = vec!["clone", "-q", "--branch", "main"];
        args.extend_from_slice(extra);
        let url = self.url();
        args.push(&url);
        let to = path.to_str().expect("utf-8");
        args.push(to);
        git(self.dir.path(), &args);
        path
    }
}

/// The reproduction: a plain clone of a store (no `git.remote` in atmos.yaml) showed
/// `dev api - never success` and "Last rollout: failure" for targets whose rollouts all
/// succeeded. Now the first read fetches the records from the clone's remote; `--offline`
/// reads the commits from the records and says so; an unreachable remote is a warning and
/// the same honest view — never a commit of `-` beside a status of `success`.
#[test]
fn a_plain_clone_reads_what_the_store_holds_never_an_empty_state() {
    let store = Store::new("");
    let v1 = git(&store.work, &["rev-parse", "HEAD"]);
    for args in [
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "dev",
            "--remote",
            "origin",
        ][..],
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "staging",
            "--promote-from",
            "dev",
            "--remote",
            "origin",
        ],
    ] {
        atmos(&store.work, args).code(0);
    }
    let plain = store.clone("plain", &[]);
    assert_eq!(git(&plain, &["for-each-ref", "refs/atmos/"]), "");

    // Offline: the commits come from the records, with a warning that says so.
    let run = atmos(&plain, &["deployment", "status", "svc", "--offline"]);
    run.code(0);
    let short = &v1[..7];
    for target in ["dev", "staging"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(target))
            .unwrap_or_else(|| panic!("{target}: {}", run.stdout));
        assert!(
            line.contains(short) && line.contains("success") && !line.contains("never"),
            "{line}"
        );
    }
    run.stderr_has(&[
        "this clone has no state refs for dev/api, staging/api",
        "`atmos deployment fetch svc` brings the state refs",
    ]);
    let overview = atmos(
        &plain,
        &["deployment", "status", "--offline", "--format", "json"],
    );
    let doc = overview.json();
    crate::support::check_output_schema("StatusOverview", &doc);
    for t in doc["deployments"][0]["targets"]
        .as_array()
        .expect("targets")
    {
        assert_eq!(t["last_rollout"], "success", "{t}");
        assert_eq!(t["commit"], v1.as_str(), "{t}");
        assert_eq!(t["from_records"], true, "{t}");
    }

    // Online: the first read fetches from the clone's only remote, and says so; the next
    // read does not fetch again.
    let run = atmos(&plain, &["deployment", "status", "svc"]);
    run.code(0)
        .stderr_has(&["fetched the records from origin first: this clone had never fetched them"]);
    assert!(!run.stderr.contains("no state refs"), "{}", run.stderr);
    assert_eq!(
        git(&plain, &["rev-parse", "refs/atmos/deployments/svc/dev/api"]),
        v1
    );
    let run = atmos(&plain, &["deployment", "status", "svc"]);
    run.code(0);
    assert!(
        !run.stderr.contains("fetched the records"),
        "{}",
        run.stderr
    );

    // A remote out of reach: a warning, and what the clone holds.
    let away = store.clone("away", &[]);
    git(
        &away,
        &["remote", "set-url", "origin", "/nonexistent/origin.git"],
    );
    let run = atmos(&away, &["deployment", "history", "svc"]);
    run.code(0)
        .stderr_has(&["could not fetch the records from origin"]);
    assert_eq!(
        run.stdout.lines().filter(|l| l.contains(short)).count(),
        2,
        "{}",
        run.stdout
    );
}

/// `fetch --setup` takes the clone's only remote, and what it writes never makes a plain
/// `git pull` fail: a rollback on the store moves the state ref backwards, and the pull
/// still merges main and mirrors the state.
#[test]
fn fetch_setup_takes_the_only_remote_and_git_pull_survives_a_rollback() {
    let store = Store::new("");
    let v1 = git(&store.work, &["rev-parse", "HEAD"]);
    let rollout = |args: &[&str]| {
        let mut all = vec!["deployment", "rollout", "svc", "--remote", "origin"];
        all.extend_from_slice(args);
        atmos(&store.work, &all).code(0);
    };
    rollout(&["--target", "dev"]);
    let v2 = store.version("2");
    rollout(&["--target", "dev"]);

    let c = store.clone("c", &[]);
    atmos(&c, &["deployment", "fetch", "--setup"])
        .code(0)
        .stdout_has(&["remote.origin.fetch"]);
    git(&c, &["pull", "-q"]);
    assert_eq!(
        git(&c, &["rev-parse", "refs/atmos/deployments/svc/dev/api"]),
        v2
    );

    // Rolled back on the store, and main moves on.
    rollout(&["--target", "dev", "--git-sha", &v1]);
    let v3 = store.version("3");
    let pull = Command::new("git")
        .args(["pull", "-q"])
        .current_dir(&c)
        .output()
        .expect("git pull");
    assert!(
        pull.status.success(),
        "git pull failed after a rollback: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    assert_eq!(git(&c, &["rev-parse", "HEAD"]), v3, "main was not merged");
    assert_eq!(
        git(&c, &["rev-parse", "refs/atmos/deployments/svc/dev/api"]),
        v1,
        "the state ref did not follow the rollback"
    );
    atmos(&c, &["deployment", "verify", "svc"]).code(0);
}

/// A partial clone (`git clone --filter=blob:none`, as CI checkouts often are) of a store
/// whose older records were archived: atmos's fetch brings the ledger's contents, so history
/// keeps every rollout and a promotion is decided on a record that is only in the ledger;
/// the ledger fetched by git alone is reported as missing, not as malformed.
#[test]
fn a_partial_clone_reads_and_promotes_through_archived_records() {
    let store = Store::new("git:\n  remote: origin\n");
    let v1 = git(&store.work, &["rev-parse", "HEAD"]);
    atmos(
        &store.work,
        &["deployment", "rollout", "svc", "--target", "dev"],
    )
    .code(0);
    store.version("2");
    atmos(
        &store.work,
        &["deployment", "rollout", "svc", "--target", "dev"],
    )
    .code(0);
    atmos(
        &store.work,
        &["deployment", "archive", "svc", "--keep", "1"],
    )
    .code(0)
    .stdout_has(&["pushed to origin"]);

    // git alone: the ledger's trees, not its contents.
    let bare = store.clone("bare-fetch", &["--filter=blob:none"]);
    git(
        &bare,
        &["fetch", "-q", "origin", "+refs/atmos/*:refs/atmos/*"],
    );
    let missing = git(
        &bare,
        &[
            "rev-list",
            "--objects",
            "--missing=print",
            "refs/atmos/ledger/svc",
        ],
    );
    assert!(missing.lines().any(|l| l.starts_with('?')), "{missing}");
    let run = atmos(&bare, &["deployment", "history", "svc", "--offline"]);
    run.code(0).stderr_has(&[
        "archived record file of the ledger is missing from this clone and was not read",
        "run `atmos deployment fetch svc`",
    ]);
    assert!(!run.stderr.contains("not a <target>"), "{}", run.stderr);

    // atmos's fetch brings them: every rollout is there again.
    let partial = store.clone("partial", &["--filter=blob:none"]);
    atmos(&partial, &["deployment", "fetch", "svc"]).code(0);
    let missing = git(
        &partial,
        &[
            "rev-list",
            "--objects",
            "--missing=print",
            "refs/atmos/ledger/svc",
        ],
    );
    assert!(!missing.lines().any(|l| l.starts_with('?')), "{missing}");
    let run = atmos(
        &partial,
        &["deployment", "history", "svc", "--format", "json"],
    );
    run.code(0);
    assert!(
        run.stderr.is_empty() || !run.stderr.contains("missing"),
        "{}",
        run.stderr
    );
    let doc = run.json();
    let commits: Vec<&str> = doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["status"] == "success")
        .filter_map(|e| e["commit"].as_str())
        .collect();
    assert!(commits.contains(&v1.as_str()), "{doc}");

    // A promotion of v1, whose dev record is in the ledger only, from the partial clone.
    let run = atmos(
        &partial,
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "staging",
            "--git-sha",
            &v1,
            "-v",
        ],
    );
    run.code(0).stdout_has(&[&format!(
        "dev → staging is an allowed promotion: dev ran {} successfully",
        &v1[..7]
    )]);
    atmos(&partial, &["deployment", "verify", "svc"]).code(0);
}
