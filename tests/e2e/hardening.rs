//! Hardening: each test reproduces a failure found by attacking atmos as a hostile user or a
//! flaky environment would, and checks the fix (docs/reliability.md lists them).

use std::time::{Duration, Instant};

use crate::support::{Repo, Run, args, atmos_cmd};

fn script_deployment(apply: &str) -> String {
    format!(
        "deployment:\n  name: svc\n  components:\n    script:\n      a:\n        settings:\n          script:\n            apply: {}\n  targets:\n    dev: {{}}\n",
        serde_json::to_string(apply).expect("quoted")
    )
}

/// Run atmos, failing the test (not hanging it) when it takes longer than `limit`.
fn bounded(repo: &Repo, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut cmd = atmos_cmd(repo.path());
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return Run::from(child.wait_with_output().expect("output"));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("atmos {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn output_that_is_not_utf8_is_shown_and_never_kills_the_script() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        script_deployment("printf 'caf\\351\\n'; sleep 0.3; echo after; echo done > \"$OUT/done\""),
    );
    repo.commit("init");
    let out = tempfile::tempdir().expect("tempdir");
    let run = repo.atmos_env(
        &args("deployment rollout svc --target dev"),
        &[("OUT", out.path().to_str().expect("utf-8"))],
    );
    run.code(0).stdout_has(&["a │ caf\u{FFFD}", "a │ after"]);
    assert!(
        out.path().join("done").exists(),
        "the script ran to its end"
    );
}

#[test]
fn a_background_child_is_stopped_and_never_holds_the_rollout() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        script_deployment(
            "(while true; do date +%s%N >> \"$OUT/alive\"; echo tick; sleep 0.2; done) & echo started",
        ),
    );
    repo.commit("init");
    let out = tempfile::tempdir().expect("tempdir");
    let run = bounded(
        &repo,
        &args("deployment rollout svc --target dev"),
        &[("OUT", out.path().to_str().expect("utf-8"))],
        Duration::from_secs(30),
    );
    run.code(0).stdout_has(&["a │ started"]);
    let alive = out.path().join("alive");
    let count = || {
        std::fs::read_to_string(&alive)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let before = count();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(count(), before, "the background loop still runs");
    assert!(repo.git(&["for-each-ref", "refs/atmos/locks/"]).is_empty());
}

#[test]
fn metadata_cannot_claim_an_approval() {
    let repo = Repo::new();
    repo.write("svc.yaml", script_deployment("true"));
    repo.commit("init");
    let run = repo.atmos(&args(
        "deployment rollout svc --target dev --metadata approver=alice@example.com",
    ));
    run.code(2).stderr_has(&[
        "--metadata approver=… is reserved",
        "atmos deployment approve",
    ]);
    let run = repo.atmos(&args(
        "deployment rollout svc --target dev --metadata skip_promotion_check=true",
    ));
    run.code(2).stderr_has(&["reserved"]);
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(0);
    let status = repo.atmos(&args("deployment status svc --target dev"));
    assert!(!status.stdout.contains("Approved by"), "{}", status.stdout);
}

#[test]
fn a_yaml_bomb_or_a_deep_nest_is_a_located_error_not_an_abort() {
    let repo = Repo::new();
    let mut bomb = String::from("deployment:\n  name: svc\n  description: &big \"");
    bomb.push_str(&"y".repeat(1 << 20));
    bomb.push_str("\"\n  labels:\n    copies: [");
    bomb.push_str(&vec!["*big"; 10_000].join(", "));
    bomb.push_str("]\n");
    repo.write("svc.yaml", bomb);
    repo.write("deep.yaml", "[".repeat(100_000));
    let run = bounded(
        &repo,
        &args("deployment validate --all"),
        &[],
        Duration::from_secs(60),
    );
    run.code(2).stdout_has(&[
        "deployments/svc.yaml:5:",
        "aliases expand this file past",
        "deployments/deep.yaml:1:",
        "nested deeper than 64 levels",
    ]);
}

#[test]
fn a_lock_is_released_even_when_packed_refs_are_busy_for_a_moment() {
    let repo = Repo::new();
    // While the rollout runs, its lock ref gets packed, and `packed-refs.lock` is then held
    // for a second (as a concurrent `git pack-refs` or `git gc` would) across the release.
    let git_dir = repo.path().join(".git");
    let apply = format!(
        "git --git-dir {g} pack-refs --all && touch {g}/packed-refs.lock && setsid sh -c 'sleep 1; rm -f {g}/packed-refs.lock' >/dev/null 2>&1 &",
        g = git_dir.display()
    );
    repo.write("svc.yaml", script_deployment(&apply));
    repo.commit("init");
    let run = repo.atmos(&args("deployment rollout svc --target dev"));
    run.code(0);
    assert!(
        repo.git(&["for-each-ref", "refs/atmos/locks/"]).is_empty(),
        "the lock was left behind: {}",
        run.stderr
    );
}
