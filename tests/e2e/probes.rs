//! What a component says about itself once deployed: post-deploy verification (a failure
//! fails the rollout and, with `on_failure: rollback`, deploys the previous commit again,
//! through the gates, recorded as a rollback) and health (`status --check-health`).

use crate::support::*;

/// A deployment whose component records the commit it applied in `$OUT/running`, verifies
/// that the deployed tree holds a file `ok`, and says how healthy it is from `health.json`.
fn probed(on_failure: &str) -> String {
    format!(
        r#"deployment:
  name: svc
  components:
    script:
      api:
        settings:
          script:
            apply: 'echo "$ATMOS_GIT_SHA" > "$OUT/running"'
            verify:
              command: 'test -f ok || {{ echo "smoke test: ok is missing" >&2; exit 7; }}'
              retries: 1
              interval: 1s
              on_failure: {on_failure}
            health: 'cat health.json'
  targets:
    dev: {{}}
"#
    )
}

fn running(out: &std::path::Path) -> String {
    std::fs::read_to_string(out.join("running"))
        .expect("the apply ran")
        .trim()
        .to_owned()
}

#[test]
fn a_failed_verification_fails_the_rollout_and_rolls_back_to_what_ran_before() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let env = [("OUT", out.path().to_str().expect("utf-8"))];
    repo.write("svc.yaml", probed("rollback"));
    repo.write_file("ok", "");
    let good = repo.commit("good");
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(0)
        .stdout_has(&["api │ verify (1/2): $ sh -c", "Deployment complete"]);
    let first = repo.outcomes("svc", "dev", "api");
    assert!(
        repo.tag_message(&first[0])
            .contains("verification:\n  passed: true\n  attempts: 1"),
        "{}",
        repo.tag_message(&first[0])
    );

    // The next commit breaks the smoke test: the apply runs, both attempts fail, and the
    // commit that ran before is applied again.
    std::fs::remove_file(repo.path().join("ok")).expect("rm");
    let bad = repo.commit("bad");
    let run = repo.atmos_env(
        &args("deployment rollout svc --target dev --format json"),
        &env,
    );
    run.code(1);
    let report = run.json();
    check_output_schema("RolloutReport", &report);
    let rollback = &report["automatic_rollbacks"][0];
    assert_eq!(rollback["result"], "rolled_back", "{report:#}");
    assert_eq!(rollback["to_commit"], good.as_str());
    assert!(
        report["components"][0]["run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("verification failed after 2 attempts")),
        "{report:#}"
    );
    assert_eq!(running(out.path()), good, "the previous commit runs again");
    repo.assert_state("svc", "dev", "api", Some(&good));
    // One vocabulary: `status` and `list components` both say the newest rollout was one.
    for line in [
        "deployment status svc --target dev",
        "deployment list components svc --target dev",
    ] {
        let run = repo.atmos(&args(line));
        run.code(0).stdout_has(&["rollback"]);
    }

    // Both are history: the failure of the bad commit, then the rollback naming it.
    let tags = repo.outcomes("svc", "dev", "api");
    assert_eq!(tags.len(), 3, "{tags:?}");
    let failed = repo.tag_message(&tags[1]);
    assert!(failed.contains(&format!("git_sha: {bad}")), "{failed}");
    assert!(failed.contains("status: failure"), "{failed}");
    assert!(failed.contains("passed: false\n  attempts: 2"), "{failed}");
    let rolled = repo.tag_message(&tags[2]);
    assert!(rolled.contains(&format!("git_sha: {good}")), "{rolled}");
    assert!(rolled.contains("status: rollback"), "{rolled}");
    assert!(rolled.contains(&format!("rollback_of: {bad}")), "{rolled}");
    assert!(
        rolled.contains("automatic_rollback: verification of"),
        "{rolled}"
    );

    // The records hold together for an auditor, and history tells the story.
    repo.atmos(&args("deployment verify svc")).code(0);
    repo.atmos(&args("deployment history svc --target dev"))
        .code(0)
        .stdout_has(&[
            "rollback",
            "failure",
            "verification failed after 2 attempts",
        ]);

    // The same in a terminal: what failed, and what was done about it.
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(1)
        .stdout_has(&[
            "api failed: verification failed after 2 attempts: `sh -c",
            "smoke test: ok is missing",
            "Automatic rollback: verification of",
            "↺ Automatic rollback: api rolled back to",
        ]);

    // Nobody writes the marker of an automatic rollback by hand.
    repo.atmos_env(
        &args("deployment rollout svc --target dev --force --metadata automatic_rollback=yes"),
        &env,
    )
    .code(2)
    .stderr_has(&["automatic_rollback"]);
}

#[test]
fn without_rollback_a_failed_verification_says_what_the_target_may_run() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let env = [("OUT", out.path().to_str().expect("utf-8"))];
    // Never deployed before: there is nothing to go back to, even when asked to.
    repo.write("svc.yaml", probed("rollback"));
    let bad = repo.commit("bad from the start");
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(1)
        .stdout_has(&["✗ Automatic rollback: api never ran successfully on dev before"]);
    repo.assert_state("svc", "dev", "api", None);
    assert_eq!(running(out.path()), bad);

    repo.write("svc.yaml", probed("fail"));
    repo.write_file("ok", "");
    let good = repo.commit("good");
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(0);
    std::fs::remove_file(repo.path().join("ok")).expect("rm");
    let bad = repo.commit("bad");
    let run = repo.atmos_env(&args("deployment rollout svc --target dev"), &env);
    run.code(1).stdout_has(&[
        "api applied but failed verification, so the target may run what the apply left",
    ]);
    assert!(!run.stdout.contains("Automatic rollback"), "{}", run.stdout);
    assert_eq!(running(out.path()), bad, "nothing was rolled back");
    repo.assert_state("svc", "dev", "api", Some(&good));
}

#[test]
fn check_health_runs_the_components_health_command_on_the_deployed_commit() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let env = [("OUT", out.path().to_str().expect("utf-8"))];
    repo.write("svc.yaml", probed("fail"));
    repo.write_file("ok", "");
    repo.write_file(
        "health.json",
        r#"{"status": "degraded", "detail": "1/3 pods"}"#,
    );
    repo.commit("deployed");
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(0);
    // The work tree says something else: the deployed commit's command and files answer.
    repo.write_file("health.json", r#"{"status": "healthy", "detail": "9/9"}"#);

    repo.atmos(&args("deployment status svc --target dev"))
        .code(0)
        .stdout_has(&["success"]);
    let checked = repo.atmos(&args("deployment status svc --target dev --check-health"));
    checked
        .code(0)
        .stdout_has(&["Health", "degraded (1/3 pods)"]);
    let json = repo.atmos(&args("deployment status svc --check-health --format json"));
    let doc = json.json();
    check_output_schema("StatusReport", &doc);
    let health = &doc["targets"][0]["components"][0]["health"];
    assert_eq!(health["status"], "degraded", "{doc:#}");

    // Degraded still answers: the check passes (unhealthy or unknown fail it, below).
    // The last check is shown where health is shown, with last rollout beside it.
    repo.atmos(&args("deployment list components svc --target dev"))
        .code(0)
        .stdout_has(&["Status", "Health", "success", "degraded (1/3 pods)"]);

    // A check that says nothing usable is `unknown` or `unhealthy`, with why.
    repo.write(
        "svc.yaml",
        probed("fail").replace(
            "health: 'cat health.json'",
            "health: {command: 'echo starting; echo connection refused >&2; exit 3', timeout: 5s}",
        ),
    );
    repo.commit("broken health");
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(0);
    repo.atmos(&args("deployment list components svc --target dev"))
        .code(0)
        .stdout_has(&["success"]);
    repo.atmos(&args("deployment status svc --target dev --check-health"))
        .code(1)
        .stdout_has(&["unhealthy (the health command exited with status 3: connection refused)"]);
    repo.write(
        "svc.yaml",
        probed("fail").replace(
            "health: 'cat health.json'",
            "health: {command: 'sleep 30', timeout: 1s}",
        ),
    );
    repo.commit("hung health");
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(0);
    let started = std::time::Instant::now();
    repo.atmos(&args("deployment status svc --target dev --check-health"))
        .code(1)
        .stdout_has(&["unknown (the health command did not answer within 1s"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// A deployment with a dev → staging → prod path whose `api` verifies with `test -f ok` and
/// rolls back on failure; prod requires an approval.
fn promoted(policy: &str) -> String {
    format!(
        r#"deployment:
  name: svc
  components:
    script:
      api:
        settings:
          script:
            apply: 'echo "$ATMOS_TARGET $ATMOS_GIT_SHA" >> "$OUT/applied"'
            verify: {{command: 'test -f ok', on_failure: rollback}}
  targets:
    dev: {{}}
    staging:
      promotion: {{from: dev}}
    prod:
      promotion: {{from: staging, requires_approval: true}}
{policy}"#
    )
}

fn applied(out: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(out.join("applied"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Attacks on the automatic rollback: it is planned through the same gates as a rollback
/// from what the failed apply left running, so a rejection of the old commit stops it, and
/// it goes back to what the records say ran, never to a state ref moved by hand.
#[test]
fn an_automatic_rollback_cannot_walk_around_the_gates() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let env = [("OUT", out.path().to_str().expect("utf-8"))];
    let run = |line: &'static str| repo.atmos_env(&args(line), &env);
    let as_approver = |line: &str| {
        let mut all: Vec<&str> = line.split_whitespace().collect();
        all.push("-q");
        repo.atmos_env(&all, &[("ATMOS_ACTOR", "approver@example.com")])
    };
    repo.write("svc.yaml", promoted(""));
    repo.write_file("ok", "");
    let c1 = repo.commit("c1");
    run("deployment rollout svc --target dev").code(0);
    run("deployment rollout svc --target staging --promote-from dev").code(0);
    as_approver(&format!(
        "deployment approve svc --target prod --git-sha {c1}"
    ))
    .code(0);
    run("deployment rollout svc --target prod --promote-from staging").code(0);
    // c1 is rejected for prod afterwards; c2 breaks verification in prod only.
    as_approver(&format!(
        "deployment reject svc --target prod --git-sha {c1} -m broken"
    ))
    .code(0);
    repo.write(
        "svc.yaml",
        promoted("").replace("test -f ok", "test -f ok || test $ATMOS_TARGET != prod"),
    );
    std::fs::remove_file(repo.path().join("ok")).expect("rm");
    let c2 = repo.commit("c2");
    run("deployment rollout svc --target dev").code(0);
    run("deployment rollout svc --target staging --promote-from dev").code(0);
    as_approver(&format!(
        "deployment approve svc --target prod --git-sha {c2}"
    ))
    .code(0);
    let before = applied(out.path()).len();
    run("deployment rollout svc --target prod --promote-from staging")
        .code(1)
        .stdout_has(&[
            "✗ Automatic rollback: rolling api back to",
            "is blocked by the gates; prod keeps running what the failed rollout applied",
            "builtin/approvals: rejected by approver@example.com (broken)",
        ]);
    assert_eq!(
        applied(out.path()).len(),
        before + 1,
        "only the failed apply ran in prod"
    );

    // A state ref moved by hand to a commit that never ran: the rollback goes back to what
    // staging's records say it ran, not to the planted commit.
    repo.git(&["checkout", "-q", "--orphan", "planted"]);
    repo.write_file("evil", "");
    let planted = repo.commit("planted");
    repo.git(&["checkout", "-q", "-f", "master"]);
    repo.git(&[
        "update-ref",
        "refs/atmos/deployments/svc/staging/api",
        &planted,
    ]);
    repo.write(
        "svc.yaml",
        promoted("").replace("test -f ok", "test $ATMOS_TARGET != staging"),
    );
    repo.commit("c3 breaks staging");
    run("deployment rollout svc --target dev").code(0);
    run("deployment rollout svc --target staging --promote-from dev")
        .code(1)
        .stdout_has(&["↺ Automatic rollback: api rolled back to"]);
    let ran = applied(out.path());
    assert!(!ran.iter().any(|l| l.contains(&planted)), "{ran:?}");
    assert_eq!(
        ran.last().map(String::as_str),
        Some(format!("staging {c2}").as_str())
    );

    // A policy that wants a human to wait for the rollback holds it (pending, not a warning).
    let repo2 = Repo::new();
    let run2 = |line: &'static str| repo2.atmos_env(&args(line), &env);
    std::fs::create_dir_all(repo2.path().join("policies/p")).expect("mkdir");
    repo2.write_file(
        "policies/p/hold.rego",
        "package team.hold\n\npending contains \"a human confirms rollbacks\" if input.action == \"rollback\"\n",
    );
    repo2.write_file("atmos.yaml", "gates:\n  policies: [policies/p]\n");
    repo2.write("svc.yaml", promoted(""));
    repo2.write_file("ok", "");
    repo2.commit("c1");
    run2("deployment rollout svc --target dev").code(0);
    std::fs::remove_file(repo2.path().join("ok")).expect("rm");
    repo2.commit("c2");
    let before = applied(out.path()).len();
    run2("deployment rollout svc --target dev")
        .code(1)
        .stdout_has(&["is blocked by the gates", "a human confirms rollbacks"]);
    assert_eq!(
        applied(out.path()).len(),
        before + 1,
        "the rollback did not run"
    );
}

/// SIGINT between verification attempts stops the rollout: the interruption is recorded
/// and no rollback starts (no executor runs after the signal).
#[test]
fn a_signal_during_verification_starts_no_rollback() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let yaml = probed("rollback").replace(
        "retries: 1\n              interval: 1s",
        "retries: 3\n              interval: 20s",
    );
    repo.write("svc.yaml", &yaml);
    repo.write_file("ok", "");
    repo.commit("good");
    repo.atmos_env(
        &args("deployment rollout svc --target dev"),
        &[("OUT", out.path().to_str().expect("utf-8"))],
    )
    .code(0);
    std::fs::remove_file(repo.path().join("ok")).expect("rm");
    let bad = repo.commit("bad");
    let mut cmd = atmos_cmd(repo.path());
    cmd.args(args("deployment rollout svc --target dev"))
        .env("OUT", out.path());
    let mut child = crate::support::Background::spawn(cmd);
    // The first attempt fails at once; atmos then waits 20 s before the next.
    child.wait_for_output(
        "smoke test: ok is missing",
        std::time::Duration::from_secs(30),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("kill");
    let run = child.finish();
    run.stdout_has(&["Automatic rollback: not started for api: the rollout was interrupted"]);
    assert_ne!(run.code, 0);
    assert_eq!(running(out.path()), bad, "nothing ran after the signal");
    let tags = repo.outcomes("svc", "dev", "api");
    let last = repo.tag_message(tags.last().expect("tag"));
    assert!(last.contains("interrupted by a signal"), "{last}");
    assert!(!last.contains("automatic_rollback"), "{last}");
}

/// A health command that prints a lot before its verdict is still read to its last line;
/// a look-alike of a reserved metadata key is refused.
#[test]
fn chatty_health_commands_and_look_alike_metadata() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let env = [("OUT", out.path().to_str().expect("utf-8"))];
    repo.write(
        "svc.yaml",
        probed("fail").replace(
            "health: 'cat health.json'",
            "health: 'seq 1 40000; echo \"{\\\"status\\\": \\\"healthy\\\", \\\"detail\\\": \\\"ok \\u202e after the log\\\"}\"'",
        ),
    );
    repo.write_file("ok", "");
    repo.commit("chatty");
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(0);
    let run = repo.atmos(&args("deployment status svc --target dev --check-health"));
    run.code(0).stdout_has(&["healthy (ok  after the log)"]);
    assert!(!run.stdout.contains('\u{202e}'));
    for key in [" automatic_rollback", "automatic_rollback ", "approver\t"] {
        let pair = format!("{key}=x");
        repo.atmos_env(
            &[
                "deployment",
                "rollout",
                "svc",
                "--target",
                "dev",
                "--force",
                "--metadata",
                &pair,
            ],
            &env,
        )
        .code(2)
        .stderr_has(&["is refused: a key is a plain name"]);
    }
}

/// A forced re-run of the commit a component ran before, failing its verification, has
/// nothing different to go back to: no rollback is claimed.
#[test]
fn a_forced_rerun_that_fails_verification_claims_no_rollback() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let env = [("OUT", out.path().to_str().expect("utf-8"))];
    repo.write(
        "svc.yaml",
        probed("rollback").replace("test -f ok ||", "test ! -f \"$OUT/broken\" ||"),
    );
    repo.commit("c1");
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(0);
    std::fs::write(out.path().join("broken"), "").expect("write");
    let run = repo.atmos_env(&args("deployment rollout svc --target dev --force"), &env);
    run.code(1).stdout_has(&[
        "not started for api: the commit it ran before is the one that failed verification",
    ]);
    assert!(!run.stdout.contains("rolled back to"), "{}", run.stdout);
}
