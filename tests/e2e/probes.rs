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
    let first = repo.tags("svc", "dev", "api");
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

    // Both are history: the failure of the bad commit, then the rollback naming it.
    let tags = repo.tags("svc", "dev", "api");
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
            "api applied but failed verification",
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
        .stdout_has(&["✗ Automatic rollback: api never ran on dev before"]);
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
        .code(0)
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
        .code(0)
        .stdout_has(&["unknown (the health command did not answer within 1s"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
