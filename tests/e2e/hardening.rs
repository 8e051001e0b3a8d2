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

/// Fails when the background loop whose process id the script wrote to `pid_file` still
/// runs (a zombie waiting for its reaper counts as stopped).
fn assert_stopped(pid_file: &std::path::Path) {
    let pid = std::fs::read_to_string(pid_file).expect("the loop wrote its pid");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("gone");
    assert!(
        state == "gone" || state == "Z",
        "a process the command started still runs: {stat}"
    );
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
            "sh -c 'echo $$ > \"$OUT/loop\"; while true; do echo tick; sleep 0.2; done' & while [ ! -s \"$OUT/loop\" ]; do sleep 0.01; done; echo started",
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
    assert_stopped(&out.path().join("loop"));
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
    // While the rollout runs, its refs get packed and `packed-refs.lock` is taken (as a
    // concurrent `git pack-refs` or `git gc` would), and held until the release has found it
    // busy: the outcome is still written (a ref update needs no packed-refs lock), the
    // release's retry path runs, then the lock is released.
    let git_dir = repo.path().join(".git");
    let apply = format!(
        "git --git-dir {g} pack-refs --all && touch {g}/packed-refs.lock",
        g = git_dir.display()
    );
    repo.write("svc.yaml", script_deployment(&apply));
    repo.commit("init");
    let mut cmd = atmos_cmd(repo.path());
    cmd.args(args("deployment rollout svc --target dev"));
    let mut rollout = crate::support::Background::spawn(cmd);
    rollout.wait_for_output("is busy", Duration::from_secs(30));
    std::fs::remove_file(git_dir.join("packed-refs.lock")).expect("the other git process ends");
    let run = rollout.finish();
    run.code(0).stderr_has(&[
        "the lock of svc/dev is busy (another git process holds its ref",
        "releasing it again (attempt 2 of 5)",
    ]);
    assert_eq!(
        repo.outcomes("svc", "dev", "a").len(),
        1,
        "the outcome is recorded"
    );
    assert!(
        repo.git(&["for-each-ref", "refs/atmos/locks/"]).is_empty(),
        "the lock was left behind: {}",
        run.stderr
    );
}

#[test]
fn ambiguous_or_outside_deployment_files_are_refused() {
    let repo = Repo::new();
    repo.write("svc.yaml", script_deployment("true"));
    repo.write("svc.yml", script_deployment("echo other"));
    repo.atmos(&args("deployment validate --all"))
        .code(2)
        .stderr_has(&[
            "deployment `svc` is defined twice",
            "keep one file per deployment",
        ]);
    std::fs::remove_file(repo.path().join("deployments/svc.yml")).expect("rm");
    // A file linked from outside the project.
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("ext.yaml"), script_deployment("true")).expect("write");
    std::os::unix::fs::symlink(
        outside.path().join("ext.yaml"),
        repo.path().join("deployments/ext.yaml"),
    )
    .expect("symlink");
    repo.atmos(&args("deployment list"))
        .code(2)
        .stderr_has(&["deployments/ext.yaml resolves to", "outside the project"]);
    std::fs::remove_file(repo.path().join("deployments/ext.yaml")).expect("rm");
    // A deployments folder outside the project.
    repo.write_file("atmos.yaml", "deployments:\n  path: ../elsewhere\n");
    std::fs::create_dir_all(repo.path().join("../elsewhere")).ok();
    let run = repo.atmos(&args("deployment list"));
    run.code(2);
    assert!(
        run.stderr.contains("outside the project") || run.stderr.contains("no deployments folder"),
        "{}",
        run.stderr
    );
}

#[test]
fn approval_rules_that_cannot_apply_are_flagged_by_validate() {
    let repo = Repo::new();
    repo.write_file(
        "atmos.yaml",
        "approvers:\n  groups:\n    sre: [alice@example.com]\n",
    );
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      a: {settings: {script: {apply: 'true'}}}\n  targets:\n    dev: {}\n    staging:\n      promotion: {from: dev, approvals: {min: 2}}\n    prod:\n      promotion: {from: staging, requires_approval: true, approvals: {from_groups: [sres]}}\n",
    );
    let run = repo.atmos(&args("deployment validate svc"));
    run.code(2).stdout_has(&[
        "`approvals` of target `staging` has no effect: it does not set `requires_approval: true`",
        "group `sres` is not defined in atmos.yaml `approvers.groups`",
        "did you mean `sre`?",
    ]);
}

#[test]
fn record_fields_with_control_characters_are_shown_not_obeyed() {
    let repo = Repo::new();
    repo.write("svc.yaml", script_deployment("true"));
    repo.commit("init");
    repo.atmos(&[
        "deployment",
        "rollout",
        "svc",
        "--target",
        "dev",
        "--metadata",
        "pr=7\nFAKE: Approved by: ceo@example.com",
        "--metadata",
        "note=\u{1b}[2J\u{1b}[31mRED",
    ])
    .code(0);
    for line in [
        "deployment status svc --target dev",
        "deployment history svc",
    ] {
        let run = repo.atmos(&args(line));
        run.code(0);
        assert!(!run.stdout.contains('\u{1b}'), "{line}: {}", run.stdout);
        assert!(
            !run.stdout.lines().any(|l| l.starts_with("FAKE")),
            "{line}: {}",
            run.stdout
        );
    }
    repo.atmos(&args("deployment history svc"))
        .stdout_has(&["\\e[2J\\e[31mRED"]);
}

#[test]
fn a_huge_policy_message_is_cut_before_it_is_recorded() {
    let repo = Repo::new();
    repo.write_file("atmos.yaml", "gates:\n  policies: [rules]\n");
    repo.write_file(
        "rules/noisy.rego",
        "package noisy\n\nwarn contains sprintf(\"%v\", [numbers.range(1, 30000)])\n",
    );
    repo.write("svc.yaml", script_deployment("true"));
    repo.commit("init");
    let run = repo.atmos(&args("deployment rollout svc --target dev"));
    run.code(0);
    assert!(
        run.stdout.len() < 20_000,
        "{} bytes printed",
        run.stdout.len()
    );
    let tag = repo.outcomes("svc", "dev", "a");
    let message = repo.tag_message(tag.last().expect("tag"));
    assert!(message.len() < 20_000, "{} bytes recorded", message.len());
    assert!(message.contains("more bytes cut"), "{message}");
}

#[test]
fn a_hook_file_that_is_no_file_or_too_big_is_refused_without_reading_it() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      a: {settings: {script: {apply: 'true'}}}\n  targets:\n    dev:\n      gates:\n        hooks:\n          - {name: fifo, wasm: hooks/fifo.wasm}\n          - {name: huge, wasm: hooks/huge.wasm}\n",
    );
    std::fs::create_dir_all(repo.path().join("hooks")).expect("mkdir");
    let fifo = repo.path().join("hooks/fifo.wasm");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let huge = std::fs::File::create(repo.path().join("hooks/huge.wasm")).expect("create");
    huge.set_len(2 << 30).expect("sparse 2 GB");
    let run = bounded(
        &repo,
        &args("deployment validate svc"),
        &[],
        Duration::from_secs(60),
    );
    run.code(2).stdout_has(&[
        "hooks/fifo.wasm is not a regular file",
        "hooks/huge.wasm is 2048 MB, over the 64 MB a hook may be",
    ]);
}

#[test]
fn vars_files_are_private_to_the_runner() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        script_deployment("stat -c %a \"$(dirname \"$(dirname \"$ATMOS_VARS_FILE\")\")\""),
    );
    repo.commit("init");
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(0)
        .stdout_has(&["a │ 700"]);
}

#[test]
fn a_state_ref_to_a_missing_object_is_a_clear_error() {
    let repo = Repo::new();
    repo.write("svc.yaml", script_deployment("true"));
    repo.commit("init");
    let missing = "1234567890123456789012345678901234567890";
    let path = repo.path().join(".git/refs/atmos/deployments/svc/dev");
    std::fs::create_dir_all(&path).expect("mkdir");
    std::fs::write(path.join("a"), format!("{missing}\n")).expect("write");
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(2)
        .stderr_has(&[
            &format!("refs/atmos/deployments/svc/dev/a points at {missing}, which this repository does not have"),
            "atmos deployment verify",
        ]);
}

/// A command that never ends (a hung `terraform apply`, a script waiting on input) is stopped
/// at its component's `settings.<type>.timeout` with its whole process group, the component
/// fails with the reason, and the target's lock is released: the rollout cannot outlive its
/// lease silently.
#[test]
fn an_executor_that_runs_past_its_timeout_is_stopped_and_fails() {
    let repo = Repo::new();
    let apply = "sh -c 'echo $$ > \"$OUT/loop\"; while true; do sleep 0.2; done' & while true; do sleep 1; done";
    let yaml = script_deployment(apply).replace(
        "            apply:",
        "            timeout: 2s\n            apply:",
    );
    repo.write("svc.yaml", &yaml);
    repo.commit("init");
    let out = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let run = bounded(
        &repo,
        &args("deployment rollout svc --target dev"),
        &[("OUT", out.path().to_str().expect("utf-8"))],
        Duration::from_secs(30),
    );
    run.code(1).stdout_has(&[
        "timed out after 2s (settings.<type>.timeout) and was stopped",
        "Failed components have a `failure` tag and their state ref did not move.",
    ]);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_stopped(&out.path().join("loop"));
    assert!(repo.git(&["for-each-ref", "refs/atmos/locks/"]).is_empty());
    assert_eq!(
        repo.outcomes("svc", "dev", "a").len(),
        1,
        "the failure is recorded"
    );

    // A timeout that is no duration, or zero (every command would fail at once), is a
    // located config error, not a silent default; a rollout refuses it too.
    for bad in ["soon", "0s", "00m"] {
        repo.write(
            "svc.yaml",
            yaml.replace("timeout: 2s", &format!("timeout: {bad}")),
        );
        repo.commit("bad timeout");
        repo.atmos(&args("deployment validate svc"))
            .code(2)
            .stdout_has(&[
                "settings.script.timeout` must be a duration above zero",
                "write e.g. 30s, 15m or 2h",
            ]);
        repo.atmos(&args("deployment rollout svc --target dev --force"))
            .code(2)
            .stderr_has(&["must be a duration above zero"]);
    }
}

/// A rollout longer than its lock's lifetime keeps the lock: the lease is renewed while it
/// runs, so a second runner arriving after the first expiry is told the target is held
/// instead of taking the lock over mid-deployment.
#[test]
fn a_rollout_longer_than_its_lease_keeps_the_lock() {
    let repo = Repo::new();
    let marks = tempfile::tempdir().expect("tempdir");
    let out = marks.path().to_str().expect("utf-8");
    repo.write(
        "svc.yaml",
        script_deployment(
            "touch \"$OUT/started\"; while [ ! -e \"$OUT/go\" ]; do sleep 0.05; done; echo done",
        ),
    );
    repo.commit("init");
    let mut cmd = atmos_cmd(repo.path());
    cmd.args(args("deployment rollout svc --target dev --lock-ttl 3s"))
        .env("OUT", out);
    let first = crate::support::Background::spawn(cmd);
    crate::support::wait_for_file(&marks.path().join("started"), Duration::from_secs(30));
    // Wait until the first lease would have lapsed (the clock passing the expiry it
    // recorded), while the rollout still runs.
    let lease = repo
        .atmos(&args(
            "deployment lock status svc --target dev --format json",
        ))
        .json();
    let expires: jiff::Timestamp = lease["lease"]["expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("time");
    crate::support::wait_until(Duration::from_secs(30), "the first lease's expiry", || {
        jiff::Timestamp::now() > expires
    });
    let second = repo.atmos(&args("deployment rollout svc --target dev --force"));
    second
        .code(4)
        .stderr_has(&["svc/dev is locked by dev@example.com"]);
    std::fs::write(marks.path().join("go"), "").expect("go");
    let first = first.finish();
    first
        .code(0)
        .stdout_has(&["a │ done", "Deployment complete"]);
    assert!(!first.stderr.contains("took over"), "{}", first.stderr);
    assert!(repo.git(&["for-each-ref", "refs/atmos/locks/"]).is_empty());
}

/// If the lease is lost anyway (cleared by hand with `lock release`, or taken over after a
/// long partition), the components not finished are stopped, the rollout says why, and what
/// ran is recorded.
#[test]
fn a_rollout_whose_lock_is_taken_away_stops_what_has_not_run() {
    let repo = Repo::new();
    let marks = tempfile::tempdir().expect("tempdir");
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      a:\n        settings: {script: {apply: \"touch $OUT/started; while [ ! -e $OUT/go ]; do sleep 0.05; done; echo a done\"}}\n      b:\n        metadata: {depends_on: [script/a]}\n        settings: {script: {apply: \"echo b ran\"}}\n  targets:\n    dev: {}\n",
    );
    repo.commit("init");
    let mut cmd = atmos_cmd(repo.path());
    cmd.args(args("deployment rollout svc --target dev --lock-ttl 3s"))
        .env("OUT", marks.path());
    let first = crate::support::Background::spawn(cmd);
    crate::support::wait_for_file(&marks.path().join("started"), Duration::from_secs(30));
    // Not without --force: the lease is live.
    repo.atmos(&args("deployment lock release svc --target dev"))
        .code(2)
        .stderr_has(&["renews the lease while it runs"]);
    repo.atmos(&args("deployment lock release svc --target dev --force"))
        .code(0);
    // `a` never finishes on its own: losing the lease is what stops it.
    let first = first.finish();
    assert_ne!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    first.stderr_has(&["the lock of svc/dev is no longer ours: released by someone else"]);
    assert!(!first.stdout.contains("b ran"), "{}", first.stdout);
    assert!(!first.stdout.contains("a │ a done"), "{}", first.stdout);
}

/// An identity is written into git authors and approvals lines: one with a newline (or `<`)
/// is refused before anything is written, instead of leaving a notes commit git itself calls
/// broken, which blocked every later approval and promotion.
#[test]
fn an_identity_with_a_newline_is_refused_before_anything_is_written() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      a: {settings: {script: {apply: 'true'}}}\n  targets:\n    dev: {}\n    prod: {promotion: {from: dev, requires_approval: true}}\n",
    );
    repo.commit("init");
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(0);
    for bad in [
        "bob@example.com\nx",
        "bob <bob@example.com>",
        "bob\u{1b}[31m",
    ] {
        let run = repo.atmos_env(
            &args("deployment approve svc --target prod"),
            &[("ATMOS_ACTOR", bad)],
        );
        run.code(2)
            .stderr_has(&["the identity cannot be used: ATMOS_ACTOR holds"]);
        let run = repo.atmos_env(
            &args("deployment rollout svc --target prod --promote-from dev"),
            &[("ATMOS_ACTOR", bad)],
        );
        run.code(2);
    }
    assert!(
        repo.git(&["for-each-ref", "refs/notes/atmos/svc/approvals"])
            .is_empty(),
        "nothing was written"
    );
    // The honest approval still works.
    repo.atmos_env(
        &args("deployment approve svc --target prod"),
        &[("ATMOS_ACTOR", "bob@example.com")],
    )
    .code(0);
}

/// Nothing atmos prints can issue a CI workflow command: not a value quoted in an error,
/// not executor output hiding a line behind a carriage return.
#[test]
fn quoted_values_and_executor_output_cannot_issue_workflow_commands() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        script_deployment("printf 'out\\r::add-mask::X\\n'"),
    );
    repo.commit("init");
    let lines_issuing = |text: &str| -> Vec<String> {
        text.split(['\n', '\r'])
            .filter(|l| l.trim_start().starts_with("::"))
            .map(str::to_owned)
            .collect()
    };
    let run = repo.atmos(&args("deployment rollout svc --target dev"));
    run.code(0);
    assert_eq!(
        lines_issuing(&run.stdout),
        Vec::<String>::new(),
        "{}",
        run.stdout
    );
    let run = repo.atmos(&[
        "deployment",
        "rollout",
        "svc",
        "--target",
        "x\n::add-mask::secret",
    ]);
    run.code(2);
    assert_eq!(
        lines_issuing(&run.stderr),
        Vec::<String>::new(),
        "{}",
        run.stderr
    );
    run.stderr_has(&["> ::add-mask::secret"]);
}

/// A step summary path that is a FIFO nobody reads (or any non-file) is a warning; the
/// rollout never waits on it.
#[test]
fn a_step_summary_that_is_no_regular_file_never_blocks_the_rollout() {
    let repo = Repo::new();
    repo.write("svc.yaml", script_deployment("true"));
    repo.commit("init");
    let fifo = repo.path().join(".summary-fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let run = bounded(
        &repo,
        &args("deployment rollout svc --target dev"),
        &[("GITHUB_STEP_SUMMARY", fifo.to_str().expect("utf-8"))],
        Duration::from_secs(30),
    );
    run.code(0)
        .stderr_has(&["the step summary was not written", "is not a regular file"]);
}

/// A NUL byte in a command's output cannot keep that output out of the records (git refuses
/// a note holding one): it is kept, shown as `\0`.
#[test]
fn a_nul_byte_cannot_keep_output_out_of_the_records() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        script_deployment("printf 'before\\000after\\n'; echo secret-step"),
    );
    repo.commit("init");
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(0);
    repo.atmos(&args("deployment logs svc --target dev"))
        .code(0)
        .stdout_has(&["before\\0after", "secret-step"]);
}

/// `logs --follow` on a rollout that was killed (SIGKILL: no release, its local lock copy
/// stays) ends once the lease lapses, instead of following forever.
#[test]
fn following_a_killed_rollout_ends_when_its_lease_lapses() {
    let repo = Repo::new();
    repo.write("svc.yaml", script_deployment("echo started; sleep 60"));
    repo.commit("init");
    let mut cmd = atmos_cmd(repo.path());
    cmd.args(args("deployment rollout svc --target dev --lock-ttl 3s"));
    let mut rollout = crate::support::Background::spawn(cmd);
    // Killed once its executor has printed: the log holds that line.
    rollout.wait_for_output("a │ started", Duration::from_secs(30));
    rollout.kill();
    let run = bounded(
        &repo,
        &args("deployment logs svc --target dev --follow"),
        &[],
        Duration::from_secs(20),
    );
    run.code(0).stdout_has(&["a │ started"]);
}

/// A log write that fails (here a file-size limit, as a full disk would) is reported: the
/// component still runs and is recorded, and the rollout says its output was not kept whole.
#[test]
fn an_executor_log_that_cannot_be_written_is_reported_not_dropped() {
    let repo = Repo::new();
    // 200 KB of output; the log may hold 64 KiB (dash counts `ulimit -f` in 512-byte blocks).
    repo.write(
        "svc.yaml",
        script_deployment("i=0; while [ $i -lt 2000 ]; do echo 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'; i=$((i+1)); done"),
    );
    repo.commit("init");
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "trap '' XFSZ; ulimit -f 128; exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_atmos"),
        "deployment",
        "rollout",
        "svc",
        "--target",
        "dev",
    ])
    .current_dir(repo.path())
    .env("NO_COLOR", "1");
    let run = Run::from(cmd.output().expect("run atmos"));
    run.code(0)
        .stderr_has(&["the output of a was not kept whole", "File too large"]);
    assert_eq!(
        repo.outcomes("svc", "dev", "a").len(),
        1,
        "the run is recorded"
    );
}

#[test]
fn a_setsid_child_does_not_outlive_the_rollout() {
    // A daemon that leaves the command's process group (setsid) and keeps no pipe open is
    // still found — by the token every command's processes carry — and stopped.
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        script_deployment(
            "setsid sh -c 'echo $$ > \"$OUT/daemon\"; exec sleep 300' </dev/null >/dev/null 2>&1 & while [ ! -s \"$OUT/daemon\" ]; do sleep 0.01; done; echo started",
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
    assert_stopped(&out.path().join("daemon"));
    let log = repo.atmos(&args("deployment logs svc --target dev"));
    log.code(0)
        .stdout_has(&["stopped 1 process the command left running outside its process group"]);
}

/// Run `args` as the unprivileged user 65534 (`setpriv`, util-linux) in `dir`, with `env`;
/// `None` when this machine cannot (not root, no setpriv).
fn as_nobody(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Option<Run> {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output();
    if !root || setpriv.is_err() {
        return None;
    }
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_atmos"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Some(Run::from(cmd.output().expect("setpriv")))
}

#[test]
fn a_script_cannot_read_the_signing_key_atmos_holds() {
    // The key is given as CI gives secrets, in ATMOS_SIGNING_KEY. The deployed script looks
    // for it in its own environment, in atmos's environment and command line (its parent),
    // and the key never reaches a command line of its own (signed in process).
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path();
    let key = dir.join("key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let private = std::fs::read_to_string(&key).expect("key");
    std::fs::remove_file(&key).expect("the key exists only in the variable");
    let repo = dir.join("repo");
    let out = dir.join("out");
    std::fs::create_dir_all(repo.join("deployments")).expect("mkdir");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(
        repo.join("deployments/svc.yaml"),
        script_deployment(
            "env > \"$OUT/env\"; cat /proc/$PPID/environ > \"$OUT/parent-environ\" 2>&1; tr '\\0' ' ' < /proc/$PPID/cmdline > \"$OUT/parent-cmdline\"; grep -rl 'PRIVATE KEY' /proc/$PPID/fd/ > \"$OUT/parent-fds\" 2>&1; true",
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join(".gitconfig"),
        "[user]\n\temail = ci@example.com\n\tname = ci\n",
    )
    .expect("write");
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("HOME", dir)
            .status()
            .expect("git")
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "init"]);
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(dir)
        .status()
        .expect("chown");
    assert!(chown.success());
    let env = [
        ("HOME", dir.to_str().expect("utf-8")),
        ("OUT", out.to_str().expect("utf-8")),
        ("ATMOS_SIGNING_KEY", private.as_str()),
    ];
    let Some(run) = as_nobody(&repo, &args("deployment rollout svc --target dev"), &env) else {
        eprintln!("skipped: running a script as another user needs root and setpriv");
        return;
    };
    run.code(0);
    let read = |f: &str| std::fs::read_to_string(out.join(f)).expect("the script wrote it");
    assert!(
        !read("env").contains("ATMOS_SIGNING_KEY"),
        "{}",
        read("env")
    );
    assert!(!read("env").contains("PRIVATE KEY"));
    let parent = read("parent-environ");
    assert!(
        !parent.contains("PRIVATE KEY") && parent.contains("Permission denied"),
        "{parent}"
    );
    assert!(read("parent-cmdline").contains("deployment rollout svc"));
    assert!(!read("parent-cmdline").contains("PRIVATE KEY"));
    assert!(
        read("parent-fds").contains("Permission denied"),
        "atmos's open files are closed to the script: {}",
        read("parent-fds")
    );
    // The record is signed, with the key from the variable.
    let tag = std::process::Command::new("git")
        .args([
            "-c",
            "safe.directory=*",
            "for-each-ref",
            "--format=%(contents)",
            "refs/tags/atmos/",
        ])
        .current_dir(&repo)
        .output()
        .expect("git");
    let tags = String::from_utf8_lossy(&tag.stdout);
    assert_eq!(
        tags.matches("-----BEGIN SSH SIGNATURE-----").count(),
        2,
        "{tags}"
    );
}
