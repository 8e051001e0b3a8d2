//! Canary rollouts (`targets.<t>.strategy.canary`): steps of rising weight with an analysis
//! between them, each step recorded in git, aborted (back to what ran before, at weight 0)
//! when a step fails, stopped and resumed across processes and clones.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// `db` deploys at once; `api` in three steps, analysed after the first two.
const SVC: &str = r#"deployment:
  name: svc
  components:
    script:
      db:
        settings: {script: {apply: ./apply.sh db}}
      api:
        metadata: {depends_on: [script/db]}
        settings: {script: {apply: ./apply.sh api}}
  targets:
    prod:
      strategy:
        canary:
          steps: [10, 50, 100]
          analysis: {command: ./analyze.sh, retries: 1, interval: 0s, timeout: 30s}
          pause: 0s
          components: [api]
"#;

/// Appends what each apply was told to `$OUT/applied`; holds while `$OUT/hold-<name>-<step>`
/// exists (after saying so in `$OUT/holding`).
const APPLY: &str = r#"#!/bin/sh
set -eu
echo "$1 $(cat VERSION) step=${ATMOS_CANARY_STEP:-} of=${ATMOS_CANARY_STEPS:-} weight=${ATMOS_CANARY_WEIGHT:-}" >> "$OUT/applied"
hold="$OUT/hold-$1-${ATMOS_CANARY_STEP:-}"
if [ -e "$hold" ]; then touch "$OUT/holding"; while [ -e "$hold" ]; do sleep 0.1; done; fi
"#;

/// Healthy unless `$OUT/unhealthy-<step>` exists; says what it measured either way.
const ANALYZE: &str = r#"#!/bin/sh
echo "error rate at $ATMOS_CANARY_WEIGHT%: $(cat "$OUT/error-rate" 2>/dev/null || echo 0.1)%"
echo "analysed" >> "$OUT/analysed"
[ ! -e "$OUT/unhealthy-$ATMOS_CANARY_STEP" ]
"#;

struct Canary {
    repo: Repo,
    out: tempfile::TempDir,
}

impl Canary {
    fn new() -> Canary {
        let repo = Repo::new();
        repo.write("svc.yaml", SVC);
        repo.write_file("apply.sh", APPLY);
        repo.write_file("analyze.sh", ANALYZE);
        for f in ["apply.sh", "analyze.sh"] {
            crate::rollout::make_executable(&repo.path().join(f));
        }
        Canary {
            repo,
            out: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn out(&self) -> &str {
        self.out.path().to_str().expect("utf-8")
    }

    fn version(&self, v: &str) -> String {
        self.repo.write_file("VERSION", format!("{v}\n"));
        self.repo.commit(&format!("version {v}"))
    }

    fn rollout_in(&self, dir: &Path, extra: &[&str]) -> Run {
        let mut cmd = atmos_cmd(dir);
        cmd.args(["deployment", "rollout", "svc", "--target", "prod"])
            .args(extra)
            .env("OUT", self.out());
        Run::from(cmd.output().expect("atmos runs"))
    }

    fn rollout(&self, extra: &[&str]) -> Run {
        self.rollout_in(self.repo.path(), extra)
    }

    /// What the applies were told, in order, since the last call.
    fn applied(&self) -> Vec<String> {
        let path = self.out.path().join("applied");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::remove_file(&path).ok();
        text.lines().map(str::to_owned).collect()
    }

    fn touch(&self, name: &str) {
        std::fs::write(self.out.path().join(name), "").expect("touch");
    }

    /// The statuses of `component`'s records in prod, oldest first.
    fn statuses(&self, component: &str) -> Vec<String> {
        self.repo
            .tags("svc", "prod", component)
            .iter()
            .map(|t| {
                crate::rollout::record(&self.repo, t)["status"]
                    .as_str()
                    .expect("status")
                    .to_owned()
            })
            .collect()
    }

    /// The `canary` part of `component`'s newest record.
    fn newest_canary(&self, component: &str) -> serde_json::Value {
        let tags = self.repo.tags("svc", "prod", component);
        crate::rollout::record(&self.repo, tags.last().expect("a record"))["canary"].clone()
    }

    /// v1 deployed at once (nothing ran before: no canary), then v2 committed.
    fn at_v1(&self) -> (String, String) {
        let v1 = self.version("1");
        self.rollout(&[]).code(0);
        assert_eq!(
            self.applied(),
            ["db 1 step= of= weight=", "api 1 step= of= weight="],
            "a first deployment has nothing to split traffic with"
        );
        (v1, self.version("2"))
    }
}

/// `logs` of the rollout that wrote `record`, for its component.
fn logs_of(repo: &Repo, record: &serde_json::Value) -> Run {
    let id = record["rollout_id"].as_str().expect("rollout id");
    let component = record["component"].as_str().expect("component");
    let run = repo.atmos(&[
        "deployment",
        "logs",
        "svc",
        "--target",
        "prod",
        "--component",
        component,
        "--rollout",
        id,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    run
}

#[test]
fn every_step_passes_its_analysis_and_the_state_ref_moves_at_one_hundred() {
    let c = Canary::new();
    let (_, v2) = c.at_v1();
    let run = c.rollout(&[]);
    run.code(0).stdout_has(&[
        "Canary step 1 of 3: api at 10%",
        "canary analysis, step 1 at 10% (1/2): $ sh -c ./analyze.sh",
        "Canary step 2 of 3: api at 50%",
        "Canary step 3 of 3: api at 100%",
        "✓ step 1/3 at 10%, analysis passed (1 attempt)",
        "Canary complete",
    ]);
    assert_eq!(
        c.applied(),
        [
            "db 2 step= of= weight=",
            "api 2 step=1 of=3 weight=10",
            "api 2 step=2 of=3 weight=50",
            "api 2 step=3 of=3 weight=100",
        ]
    );
    // No analysis after the last step.
    let analysed = std::fs::read_to_string(c.out.path().join("analysed")).expect("analysed");
    assert_eq!(analysed.lines().count(), 2);
    // Every step is recorded, intent then outcome; one success, at the last step.
    assert_eq!(
        c.statuses("api"),
        [
            "started", "success", "started", "canary", "started", "canary", "started", "success"
        ]
    );
    let tags = c.repo.tags("svc", "prod", "api");
    let step1 = crate::rollout::record(&c.repo, &tags[3]);
    assert_eq!(step1["canary"]["step"], 1);
    assert_eq!(step1["canary"]["weight"], 10);
    assert_eq!(step1["canary"]["analysis"]["passed"], true);
    assert_eq!(c.newest_canary("api")["weight"], 100);
    assert_eq!(
        c.statuses("db"),
        ["started", "success", "started", "success"]
    );
    c.repo.assert_state("svc", "prod", "api", Some(&v2));
    c.repo.assert_state("svc", "prod", "db", Some(&v2));
    // The analysis output is kept with the step's record; the history and verify agree.
    logs_of(&c.repo, &step1).stdout_has(&["error rate at 10%: 0.1%"]);
    c.repo
        .atmos(&args("deployment history svc --target prod"))
        .code(0)
        .stdout_has(&["canary", "step 1/3 (10%)"]);
    c.repo.atmos(&args("deployment verify svc")).code(0);
}

#[test]
fn a_failed_analysis_aborts_to_what_ran_before_at_weight_zero() {
    let c = Canary::new();
    let (v1, v2) = c.at_v1();
    c.touch("unhealthy-2");
    std::fs::write(c.out.path().join("error-rate"), "7.5").expect("write");
    let run = c.rollout(&["--format", "json"]);
    run.code(1);
    let report = run.json();
    check_output_schema("RolloutReport", &report);
    assert_eq!(report["canary"]["aborted_at"], 2, "{report:#}");
    assert_eq!(report["automatic_rollbacks"][0]["result"], "rolled_back");
    assert!(
        report["components"][0]["run"]["error"]
            .as_str()
            .is_some_and(
                |e| e.contains("canary analysis failed at step 2 of 3 (50%) after 2 attempts")
            ),
        "{report:#}"
    );
    assert_eq!(
        c.applied(),
        [
            "db 2 step= of= weight=",
            "api 2 step=1 of=3 weight=10",
            "api 2 step=2 of=3 weight=50",
            "api 1 step=2 of=3 weight=0",
        ],
        "the abort applies what ran before, at weight 0"
    );
    // The records say where it stopped and what was done.
    assert_eq!(
        c.statuses("api"),
        [
            "started", "success", "started", "canary", "started", "failure", "started", "rollback"
        ]
    );
    let tags = c.repo.tags("svc", "prod", "api");
    let failed = crate::rollout::record(&c.repo, &tags[5]);
    assert_eq!(failed["canary"]["step"], 2);
    assert_eq!(failed["canary"]["analysis"]["passed"], false);
    assert_eq!(failed["canary"]["analysis"]["attempts"], 2);
    let back = crate::rollout::record(&c.repo, &tags[7]);
    assert_eq!(back["git_sha"], v1.as_str());
    assert_eq!(back["rollback_of"], v2.as_str());
    assert_eq!(back["canary"]["weight"], 0);
    // api runs v1 again; db, deployed at once, keeps v2.
    c.repo.assert_state("svc", "prod", "api", Some(&v1));
    c.repo.assert_state("svc", "prod", "db", Some(&v2));
    logs_of(&c.repo, &failed).stdout_has(&["error rate at 50%: 7.5%"]);
    c.repo.atmos(&args("deployment verify svc")).code(0);
    // In a terminal: what failed, where, and what was done about it.
    std::fs::remove_file(c.out.path().join("unhealthy-2")).ok();
    c.touch("unhealthy-1");
    c.rollout(&[]).code(1).stdout_has(&[
        "canary analysis failed at step 1 of 3 (10%)",
        "✗ Canary aborted at step 1 of 3",
        "↺ Canary abort: api rolled back to",
    ]);
}

/// One CI job takes the canary to 10% and stops; another, in another clone, takes it on.
#[test]
fn until_step_then_continue_from_another_clone_through_a_shared_remote() {
    let c = Canary::new();
    let base = tempfile::tempdir().expect("tempdir");
    git_in(
        base.path(),
        &["init", "-q", "--bare", "-b", "main", "origin.git"],
    );
    c.repo.write_file("atmos.yaml", "git:\n  remote: origin\n");
    let origin = base.path().join("origin.git");
    c.repo
        .git(&["remote", "add", "origin", origin.to_str().expect("utf-8")]);
    let v1 = c.version("1");
    c.repo.git(&["push", "-q", "origin", "HEAD:main"]);
    c.rollout(&[]).code(0);
    c.applied();
    let v2 = c.version("2");
    c.repo.git(&["push", "-q", "origin", "HEAD:main"]);

    c.rollout(&["--until-step", "1"]).code(0).stdout_has(&[
        "Canary step 1 of 3 done",
        "Canary paused after step 1 of 3 (as --until-step asked)",
        "--continue",
    ]);
    assert_eq!(
        c.applied(),
        ["db 2 step= of= weight=", "api 2 step=1 of=3 weight=10"]
    );
    let remote_state = || {
        git_in(
            &origin,
            &["rev-parse", "refs/atmos/deployments/svc/prod/api"],
        )
    };
    assert_eq!(remote_state(), v1, "the state ref waits for 100%");
    // Nobody starts another rollout of api over an open canary.
    c.rollout(&[])
        .code(4)
        .stderr_has(&["stands at step 1 of 3 (10%) for api", "--continue"]);

    // Another clone sees it, and continues it.
    let other = base.path().join("other");
    git_in(
        base.path(),
        &["clone", "-q", origin.to_str().expect("utf-8"), "other"],
    );
    git_in(&other, &["config", "user.email", "ci@example.com"]);
    atmos_in(&other, &args("deployment status svc --target prod"))
        .code(0)
        .stdout_has(&["canary", "step 1 of 3 (10%)"]);
    c.rollout_in(&other, &["--continue"])
        .code(0)
        .stdout_has(&["Canary step 2 of 3: api at 50%", "Canary complete"]);
    assert_eq!(
        c.applied(),
        [
            "api 2 step=2 of=3 weight=50",
            "api 2 step=3 of=3 weight=100"
        ],
        "db is not deployed again"
    );
    assert_eq!(remote_state(), v2);
    c.rollout_in(&other, &["--continue"])
        .code(2)
        .stderr_has(&["no canary to go on with on prod"]);
    atmos_in(&other, &args("deployment verify svc")).code(0);
}

#[test]
fn abort_takes_a_paused_canary_back() {
    let c = Canary::new();
    let (v1, v2) = c.at_v1();
    c.rollout(&["--until-step", "2"]).code(0);
    assert_eq!(c.applied().len(), 3);
    assert_eq!(c.newest_canary("api")["weight"], 50);
    c.rollout(&["--abort"]).code(0).stdout_has(&[
        "Canary abort at step 2 of 3",
        "✓ Canary aborted at step 2 of 3: what ran before runs again",
        "↺ Canary abort: api rolled back to",
    ]);
    assert_eq!(c.applied(), ["api 1 step=2 of=3 weight=0"]);
    c.repo.assert_state("svc", "prod", "api", Some(&v1));
    let tags = c.repo.tags("svc", "prod", "api");
    let back = crate::rollout::record(&c.repo, tags.last().expect("record"));
    assert_eq!(back["status"], "rollback");
    assert_eq!(back["rollback_of"], v2.as_str());
    c.rollout(&["--abort"])
        .code(2)
        .stderr_has(&["no canary to go on with on prod"]);
    // The target is free again: a new rollout starts a new canary.
    c.rollout(&["--until-step", "1"]).code(0);
    assert_eq!(c.newest_canary("api")["step"], 1);
    c.repo.atmos(&args("deployment verify svc")).code(0);
}

#[test]
fn a_policy_holds_the_canary_before_fifty_percent_until_an_sre_continues() {
    let c = Canary::new();
    std::fs::create_dir_all(c.repo.path().join("policies/p")).expect("mkdir");
    c.repo.write_file(
        "policies/p/canary.rego",
        "package team.canary\n\npending contains \"an SRE takes a canary past 10%\" if {\n  input.canary.weight >= 50\n  input.actor != \"sre@example.com\"\n}\n",
    );
    c.repo
        .write_file("atmos.yaml", "gates:\n  policies: [policies/p]\n");
    c.at_v1();
    c.rollout(&[]).code(4).stdout_has(&[
        "Canary paused after step 1 of 3 (the next step waits for approval)",
        "an SRE takes a canary past 10%",
    ]);
    assert_eq!(c.applied().len(), 2, "db and api's first step");
    assert_eq!(c.newest_canary("api")["step"], 1);
    // The same person continuing meets the same gate; the SRE goes on.
    c.rollout(&["--continue"]).code(4);
    assert!(c.applied().is_empty());
    let mut cmd = atmos_cmd(c.repo.path());
    cmd.args(args("deployment rollout svc --target prod --continue"))
        .env("OUT", c.out())
        .env("ATMOS_ACTOR", "sre@example.com");
    Run::from(cmd.output().expect("atmos runs"))
        .code(0)
        .stdout_has(&["Canary complete"]);
    assert_eq!(c.applied().len(), 2);
}

#[test]
fn a_runner_killed_during_a_step_is_continued_from_the_last_step_recorded() {
    let c = Canary::new();
    let (_, v2) = c.at_v1();
    c.touch("hold-api-2");
    let mut cmd = atmos_cmd(c.repo.path());
    cmd.args(args("deployment rollout svc --target prod --lock-ttl 3s"))
        .env("OUT", c.out());
    let victim = Background::spawn(cmd);
    wait_for_file(&c.out.path().join("holding"), Duration::from_secs(60));
    victim.kill();
    std::fs::remove_file(c.out.path().join("hold-api-2")).expect("release");
    assert_eq!(
        c.statuses("api")[2..],
        ["started", "canary", "started"],
        "step 2's intent, no outcome"
    );
    c.rollout(&["--continue", "--wait-for-lock", "--timeout", "60s"])
        .code(0)
        .stderr_has(&["recorded it as interrupted"])
        .stdout_has(&["Canary step 2 of 3: api at 50%", "Canary complete"]);
    assert_eq!(
        c.statuses("api")[2..],
        [
            "started",
            "canary",
            "started",
            "interrupted",
            "started",
            "canary",
            "started",
            "success"
        ]
    );
    let applied = c.applied();
    assert_eq!(
        applied
            .iter()
            .filter(|l| l.as_str() == "api 2 step=2 of=3 weight=50")
            .count(),
        2,
        "step 2 ran again: {applied:?}"
    );
    c.repo.assert_state("svc", "prod", "api", Some(&v2));
    c.repo.atmos(&args("deployment verify svc")).code(0);
}

/// A hostile shortcut: with the canary at 10 %, someone pushes api's state ref straight to the
/// new commit (skipping the steps and their analyses). The server guard refuses it — no record
/// deployed that commit there — and `verify` in the pusher's clone says the same.
#[test]
fn a_state_ref_pushed_past_an_open_canary_is_refused_by_the_guard() {
    let c = Canary::new();
    let base = tempfile::tempdir().expect("tempdir");
    git_in(
        base.path(),
        &["init", "-q", "--bare", "-b", "main", "origin.git"],
    );
    let origin = base.path().join("origin.git");
    c.repo.write_file("atmos.yaml", "git:\n  remote: origin\n");
    c.repo
        .git(&["remote", "add", "origin", origin.to_str().expect("utf-8")]);
    let v1 = c.version("1");
    c.repo.git(&["push", "-q", "origin", "HEAD:main"]);
    install_guard(&origin);
    c.rollout(&[]).code(0);
    let v2 = c.version("2");
    c.repo.git(&["push", "-q", "origin", "HEAD:main"]);
    c.rollout(&["--until-step", "1"]).code(0);

    let state = "refs/atmos/deployments/svc/prod/api";
    c.repo.git(&["update-ref", state, &v2]);
    let push = std::process::Command::new("git")
        .args(["push", "origin", &format!("+{state}:{state}")])
        .current_dir(c.repo.path())
        .output()
        .expect("git push");
    let said = String::from_utf8_lossy(&push.stderr).into_owned();
    assert!(!push.status.success(), "the guard let it through: {said}");
    assert!(said.contains("pre-receive hook declined"), "{said}");
    assert_eq!(git_in(&origin, &["rev-parse", state]), v1);
    c.repo
        .atmos(&args("deployment verify svc --offline"))
        .code(3)
        .stdout_has(&["it was moved by hand [state_ref_mismatch]"]);
    // Put back, the canary goes on as if nothing happened.
    c.repo.git(&["update-ref", state, &v1]);
    c.rollout(&["--continue"]).code(0);
    assert_eq!(git_in(&origin, &["rev-parse", state]), v2);
}

#[test]
fn validate_locates_a_canary_that_cannot_run() {
    let c = Canary::new();
    c.repo.write(
        "svc.yaml",
        SVC.replace("steps: [10, 50, 100]", "steps: [50, 10]")
            .replace("components: [api]", "components: [api, script/nope]"),
    );
    let run = c.repo.atmos(&args("deployment validate svc"));
    assert_ne!(run.code, 0, "{run:?}");
    let all = format!("{}{}", run.stdout, run.stderr);
    for want in [
        "svc.yaml:14:18",
        "step 2 is 10%, not more than step 1 (50%): weights rise",
        "svc.yaml:17:29",
        "✗ Canary strategies can run",
        "`script/nope` names no component",
        "name a component, a type or type/name",
    ] {
        assert!(all.contains(want), "{want:?} missing from:\n{all}");
    }
}
