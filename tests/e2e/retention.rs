//! Retention on by default: rollouts fold older records into the deployment's ledger as they
//! go, so a shared remote holds a bounded number of tags per history however long it lives,
//! and every reader still sees every record.

use std::path::{Path, PathBuf};

use crate::support::{Repo, args, atmos_in, git_in, install_guard, svc_with_origin};

const SVC: &str = "deployment:\n  name: svc\n  components:\n    script:\n      api:\n        settings: {script: {apply: 'true'}}\n  targets:\n    dev: {}\n";

/// History tags of svc/dev/api on the bare remote `origin`.
fn remote_tags(origin: &Path) -> usize {
    git_in(
        origin,
        &["for-each-ref", "refs/tags/atmos/deployments/svc/dev/api/"],
    )
    .lines()
    .count()
}

fn local_tags(dir: &Path) -> usize {
    git_in(
        dir,
        &["for-each-ref", "refs/tags/atmos/deployments/svc/dev/api/"],
    )
    .lines()
    .count()
}

fn entries(dir: &Path) -> usize {
    atmos_in(
        dir,
        &args("deployment history svc --limit 1000 --format json"),
    )
    .code(0)
    .json()["entries"]
        .as_array()
        .map_or(0, Vec::len)
}

/// A repository with svc, `atmos.yaml` naming `origin`, and a guarded bare `origin`.
fn guarded() -> (Repo, tempfile::TempDir, PathBuf) {
    let (repo, base, origin) = svc_with_origin();
    install_guard(&origin);
    (repo, base, origin)
}

fn change_and_roll_out(repo: &Repo, n: usize) -> crate::support::Run {
    repo.write_file("change", format!("{n}"));
    repo.commit(&format!("change {n}"));
    repo.git(&["push", "-q", "origin", "HEAD:main"]);
    repo.atmos(&args("deployment rollout svc --target dev"))
}

/// With no `history` settings at all, the 11th rollout of a history folds all but the newest
/// 5 rollouts into the ledger, through the server guard; the remote then holds 12 tags after
/// 12 rollouts instead of 24, and history, status and verify — here and in a fresh clone —
/// still read all 12 rollouts. A second clone that fetched the tags before they were folded
/// (hostile to the fold: it still has them, and rolls out on top of a remote that moved)
/// rolls out through the guard, prunes its copies and reads each record once.
#[test]
fn rollouts_fold_older_records_by_default_and_the_remote_stays_bounded() {
    let (repo, base, origin) = guarded();
    for n in 1..=6 {
        change_and_roll_out(&repo, n).code(0);
    }
    assert_eq!(remote_tags(&origin), 12, "no fold before 11 rollouts");
    let other = base.path().join("other");
    git_in(
        base.path(),
        &["clone", "-q", origin.to_str().expect("utf-8"), "other"],
    );
    git_in(&other, &["config", "user.email", "other@example.com"]);
    atmos_in(&other, &args("deployment fetch svc")).code(0);
    assert_eq!(local_tags(&other), 12);

    for n in 7..=10 {
        change_and_roll_out(&repo, n).code(0);
    }
    assert_eq!(remote_tags(&origin), 20);
    change_and_roll_out(&repo, 11)
        .code(0)
        .stderr_has(&["archived 12 older records of svc into its ledger"]);
    assert_eq!(remote_tags(&origin), 10, "the newest 5 rollouts stay tags");
    assert_eq!(local_tags(repo.path()), 10);
    assert!(
        !git_in(&origin, &["for-each-ref", "refs/atmos/ledger/svc"]).is_empty(),
        "the ledger reached the remote"
    );
    change_and_roll_out(&repo, 12).code(0);
    assert_eq!(remote_tags(&origin), 12);
    assert_eq!(entries(repo.path()), 12);
    repo.atmos(&args("deployment verify svc"))
        .code(0)
        .stdout_has(&["Verified 24 record(s)"]);

    // A fresh clone reads the folded records from the ledger.
    git_in(
        base.path(),
        &["clone", "-q", origin.to_str().expect("utf-8"), "fresh"],
    );
    let fresh = base.path().join("fresh");
    atmos_in(&fresh, &args("deployment fetch svc")).code(0);
    assert_eq!(local_tags(&fresh), 12);
    assert_eq!(entries(&fresh), 12);
    atmos_in(&fresh, &args("deployment verify svc"))
        .code(0)
        .stdout_has(&["Verified 24 record(s)"]);

    // The clone that still holds the folded tags rolls out a 13th time.
    git_in(&other, &["pull", "-q", "origin", "main"]);
    std::fs::write(other.join("change"), "13").expect("write");
    git_in(&other, &["commit", "-qam", "change 13"]);
    git_in(&other, &["push", "-q", "origin", "HEAD:main"]);
    // Its stale copies count towards the fold: pruned here, and the remote folds again.
    atmos_in(&other, &args("deployment rollout svc --target dev"))
        .code(0)
        .stderr_has(&["archived 4 older records of svc into its ledger"]);
    assert_eq!(remote_tags(&origin), 10);
    assert_eq!(
        local_tags(&other),
        10,
        "the copies of folded tags are pruned"
    );
    assert_eq!(entries(&other), 13, "each record once, tags and ledger");
    atmos_in(&other, &args("deployment verify svc"))
        .code(0)
        .stdout_has(&["Verified 26 record(s)"]);
    repo.atmos(&args("deployment fetch svc")).code(0);
    assert_eq!(entries(repo.path()), 13);
}

/// `history.archive_on_rollout: false` keeps every tag; turned back on over a history that
/// grew meanwhile, a rollout does not fold a backlog it would take many pushes to fold — it
/// says so — and `atmos deployment archive` (the default or the set retention) folds it, after
/// which rollouts fold as they go again. `--offline` rollouts never fold.
#[test]
fn a_backlog_is_said_not_folded_during_a_rollout_and_archive_folds_it() {
    let repo = Repo::new();
    repo.write("svc.yaml", SVC);
    repo.write_file(
        "atmos.yaml",
        "history:\n  keep_tags: 1\n  archive_on_rollout: false\n",
    );
    let roll = |n: usize| {
        repo.write_file("change", format!("{n}"));
        repo.commit(&format!("change {n}"));
        repo.atmos(&args("deployment rollout svc --target dev"))
    };
    roll(1).code(0);
    let first = repo.git(&["rev-parse", "HEAD"]);
    for n in 2..=23 {
        roll(n).code(0);
    }
    assert_eq!(
        local_tags(repo.path()),
        46,
        "archive_on_rollout: false folds nothing"
    );

    repo.write_file("atmos.yaml", "history:\n  keep_tags: 1\n");
    roll(24).code(0).stderr_has(&[
        "svc holds about 46 records past its retention as tags",
        "atmos deployment archive svc",
    ]);
    assert_eq!(
        local_tags(repo.path()),
        48,
        "a backlog is not folded by a rollout"
    );

    repo.atmos(&args("deployment archive svc"))
        .code(0)
        .stdout_has(&["svc: 46 records moved into the ledger; 2 tags left"]);
    roll(25).code(0);
    repo.write_file("change", "26");
    repo.commit("change 26");
    repo.atmos(&args("deployment rollout svc --target dev --offline"))
        .code(0);
    assert_eq!(
        local_tags(repo.path()),
        6,
        "an --offline rollout folds nothing"
    );
    roll(27)
        .code(0)
        .stderr_has(&["archived 6 older records of svc into its ledger"]);
    assert_eq!(local_tags(repo.path()), 2);
    assert_eq!(entries(repo.path()), 27);
    repo.atmos(&args("deployment verify svc"))
        .code(0)
        .stdout_has(&["Verified 54 record(s)"]);

    // A commit that ran 26 rollouts ago, its record folded into the ledger and more than a
    // search's first stretch of records back, is still found: going back to it is a rollback.
    let now = repo.git(&["rev-parse", "HEAD"]);
    repo.atmos(&[
        "deployment",
        "rollout",
        "svc",
        "--target",
        "dev",
        "--git-sha",
        &first,
    ])
    .code(0);
    let history = repo
        .atmos(&args("deployment history svc --limit 1 --format json"))
        .json();
    assert_eq!(history["entries"][0]["status"], "rollback", "{history:#}");
    assert_eq!(
        history["entries"][0]["rollback_of"],
        now.as_str(),
        "{history:#}"
    );
}
