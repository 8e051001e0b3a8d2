//! Every run that starts an executor leaves a record, in an order no clock decides: the
//! intent is recorded (and published) before any executor starts, the outcome after; a run
//! killed at any point is shown unfinished and recorded `interrupted` by the next rollout;
//! records are ordered by their chain, not their timestamps; a full disk or a stale lock file
//! never loses what ran. Real git, a bare remote guarded by `verify --pre-receive`, real
//! processes killed with SIGKILL, real clocks moved with `faketime`, a real full tmpfs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::support::{Background, Repo, Run, args, atmos_cmd, wait_for_file};

/// A deployment whose one component appends a line to `$OUT/runs` each time its executor
/// runs (then waits for `$OUT/hold` to go, when it exists).
const COUNTING: &str = r#"deployment:
  name: svc
  components:
    script:
      a:
        settings:
          script:
            apply: 'echo "$ATMOS_TARGET" >> "$OUT/runs"; touch "$OUT/started"; while [ -e "$OUT/hold" ]; do sleep 0.05; done'
  targets:
    dev: {}
    prod:
      promotion: {from: dev, requires_approval: true}
"#;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// The records of `d/t/c` in `git_dir`, newest first along the chain: (status, deployed_by,
/// timestamp).
fn chain(git_dir: &Path, d: &str, t: &str, c: &str) -> Vec<(String, String, String)> {
    let mut at = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("refs/atmos/chains/{d}/{t}/{c}"))
        .current_dir(git_dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let mut out = Vec::new();
    while let Some(oid) = at {
        let body = git(git_dir, &["cat-file", "tag", &oid]);
        let field = |name: &str| {
            body.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_owned)
        };
        out.push((
            field("status").expect("status"),
            field("deployed_by").expect("deployer"),
            field("timestamp").expect("timestamp"),
        ));
        at = field("previous_record");
    }
    out
}

fn statuses(records: &[(String, String, String)]) -> Vec<&str> {
    records.iter().map(|(s, _, _)| s.as_str()).collect()
}

/// A bare remote guarded by `verify --pre-receive`, runners cloning it, and `$OUT`.
struct Guarded {
    dir: TempDir,
    out: TempDir,
}

impl Guarded {
    fn new(deployment: &str) -> Guarded {
        let dir = tempfile::tempdir().expect("tempdir");
        git(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", "origin.git"],
        );
        let hook = dir.path().join("origin.git/hooks/pre-receive");
        // The guard runs with the server's clock: a runner's faked one (inherited through
        // the local transport) is not the server's. While `$SLOW_GUARD` exists, a push of
        // an outcome record waits in it (so that its pusher can be killed mid-push).
        std::fs::write(
            &hook,
            format!(
                r#"#!/bin/sh
unset LD_PRELOAD FAKETIME
input=$(cat)
if [ -e "$SLOW_GUARD" ]; then
  printf '%s\n' "$input" | while read -r old new ref; do
    case "$ref" in
      refs/tags/*) git cat-file -p "$new" 2>/dev/null | grep -q '^status: success$' && touch "$SLOW_GUARD.reached" ;;
    esac
  done
  if [ -e "$SLOW_GUARD.reached" ]; then
    while [ -e "$SLOW_GUARD" ]; do sleep 0.05; done
  fi
fi
printf '%s\n' "$input" | exec '{}' deployment verify --pre-receive
"#,
                env!("CARGO_BIN_EXE_atmos")
            ),
        )
        .expect("hook");
        crate::rollout::make_executable(&hook);
        let seed = dir.path().join("seed");
        std::fs::create_dir_all(seed.join("deployments")).expect("mkdir");
        std::fs::write(seed.join("deployments/svc.yaml"), deployment).expect("write");
        std::fs::write(
            seed.join("atmos.yaml"),
            "git:\n  remote: origin\napprovers:\n  groups:\n    sre: [alice@example.com]\n",
        )
        .expect("write");
        git(&seed, &["init", "-q", "-b", "main"]);
        git(&seed, &["config", "user.email", "seed@example.com"]);
        git(&seed, &["config", "user.name", "seed"]);
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "-m", "seed"]);
        git(
            &seed,
            &[
                "push",
                "-q",
                dir.path().join("origin.git").to_str().expect("utf-8"),
                "main",
            ],
        );
        Guarded {
            dir,
            out: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn origin(&self) -> PathBuf {
        self.dir.path().join("origin.git")
    }

    /// A clone acting as `who`'s CI runner.
    fn runner(&self, who: &str) -> PathBuf {
        let path = self.dir.path().join(who);
        git(
            self.dir.path(),
            &[
                "clone",
                "-q",
                &format!("file://{}", self.origin().display()),
                who,
            ],
        );
        git(
            &path,
            &["config", "user.email", &format!("{who}@example.com")],
        );
        git(&path, &["config", "user.name", who]);
        path
    }

    fn cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = atmos_cmd(dir);
        cmd.args(args)
            .env("OUT", self.out.path())
            .env("SLOW_GUARD", self.out.path().join("slow-guard"))
            .env_remove("ATMOS_ACTOR");
        cmd
    }

    fn atmos(&self, dir: &Path, args: &[&str]) -> Run {
        Run::from(self.cmd(dir, args).output().expect("atmos"))
    }

    /// How many times an executor ran.
    fn runs(&self) -> usize {
        std::fs::read_to_string(self.out.path().join("runs"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

#[test]
fn stale_ref_lock_files_are_removed_when_provably_stale_and_otherwise_stop_the_rollout_first() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let env = [("OUT", out.path().to_str().expect("utf-8"))];
    repo.write("svc.yaml", COUNTING);
    repo.commit("init");
    repo.atmos_env(&args("deployment rollout svc --target dev"), &env)
        .code(0);
    let runs = || {
        std::fs::read_to_string(out.path().join("runs"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    assert_eq!(runs(), 1);
    let lock = repo
        .path()
        .join(".git/refs/atmos/deployments/svc/dev/a.lock");
    let age = |seconds: u64| {
        std::fs::File::options()
            .write(true)
            .open(&lock)
            .expect("open")
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(seconds))
            .expect("mtime");
    };

    // Left by a killed process a minute ago: not provably stale yet, so the rollout stops
    // before its executor runs, with the command that removes it.
    std::fs::write(&lock, "").expect("lock");
    age(60);
    let run = repo.atmos_env(&args("deployment rollout svc --target dev --force"), &env);
    run.code(1).stderr_has(&[
        "1 lock file(s) block the refs this rollout writes, so nothing ran",
        "a.lock (written 60s ago, no process holds it open)",
        &format!("rm -f '{}'", lock.display()),
    ]);
    assert_eq!(runs(), 1, "nothing ran");
    assert!(lock.exists());

    // Held open by a live process: never removed, whatever its age.
    let mut holder = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3<'{}'; touch '{}'; exec sleep 60",
            lock.display(),
            out.path().join("held").display()
        ))
        .spawn()
        .expect("holder");
    wait_for_file(&out.path().join("held"), Duration::from_secs(10));
    age(600);
    let run = repo.atmos_env(&args("deployment rollout svc --target dev --force"), &env);
    run.code(1)
        .stderr_has(&[&format!("held open by pid {} (sleep)", holder.id())]);
    assert_eq!(runs(), 1, "nothing ran");
    holder.kill().expect("kill");
    holder.wait().expect("reap");

    // Nobody holds it and it is ten minutes old: removed, said, and the rollout runs.
    age(600);
    let run = repo.atmos_env(&args("deployment rollout svc --target dev --force"), &env);
    run.code(0)
        .stderr_has(&["removed the stale lock file", "a.lock (written 600s ago"]);
    assert!(!lock.exists());
    assert_eq!(runs(), 2);
    assert_eq!(repo.outcomes("svc", "dev", "a").len(), 2);
}

#[test]
fn a_rollout_killed_while_its_executor_runs_is_shown_unfinished_and_recorded_interrupted_next() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let out_dir = out.path().to_str().expect("utf-8").to_owned();
    repo.write("svc.yaml", COUNTING);
    let v1 = repo.commit("init");
    std::fs::write(out.path().join("hold"), "").expect("hold");
    let mut cmd = atmos_cmd(repo.path());
    cmd.args(args("deployment rollout svc --target dev --lock-ttl 3s"))
        .env("OUT", &out_dir);
    let victim = Background::spawn(cmd);
    wait_for_file(&out.path().join("started"), Duration::from_secs(30));
    let pid = victim.id();
    victim.kill();
    std::fs::remove_file(out.path().join("hold")).expect("release");

    // The intent is there, the outcome is not: status says so, with who and where.
    assert_eq!(
        statuses(&chain(&repo.path().join(".git"), "svc", "dev", "a")),
        ["started"]
    );
    assert_eq!(
        repo.state("svc", "dev", "a"),
        None,
        "the state ref did not move"
    );
    let status = repo.atmos(&args("deployment status svc --target dev"));
    status.code(0).stdout_has(&[
        "outcome unknown",
        "dev/a: outcome unknown: started",
        &format!("by dev@example.com, pid {pid} on host"),
    ]);
    let history = repo.atmos(&args("deployment history svc --target dev --format json"));
    let entries = history.json()["entries"].clone();
    assert_eq!(entries[0]["status"], "started", "{entries:#}");
    assert_eq!(entries[0]["runner"]["pid"], pid, "{entries:#}");

    // The next rollout (once the killed run's lease lapsed) records it as interrupted
    // before it runs, then runs.
    let run = repo.atmos_env(
        &args("deployment rollout svc --target dev --wait-for-lock --timeout 60s"),
        &[("OUT", &out_dir)],
    );
    run.code(0).stderr_has(&[
        "no outcome was recorded for the rollout started",
        &format!("by dev@example.com (pid {pid} on host"),
        "recorded it as interrupted",
    ]);
    assert_eq!(
        statuses(&chain(&repo.path().join(".git"), "svc", "dev", "a")),
        ["success", "started", "interrupted", "started"]
    );
    repo.assert_state("svc", "dev", "a", Some(&v1));
    repo.atmos(&args("deployment verify svc")).code(0);
    let lines = std::fs::read_to_string(out.path().join("runs")).expect("runs");
    assert_eq!(lines.lines().count(), 2, "two runs started, both recorded");
}

#[test]
fn a_rollout_killed_before_its_intent_leaves_no_record_and_holds_nothing_up() {
    // Killed while it waits for an approval: nothing ran, so nothing is recorded.
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let out_dir = out.path().to_str().expect("utf-8").to_owned();
    repo.write("svc.yaml", COUNTING);
    repo.write_file(
        "atmos.yaml",
        "approvers:\n  groups:\n    sre: [alice@example.com]\n",
    );
    repo.commit("init");
    repo.atmos_env(
        &args("deployment rollout svc --target dev"),
        &[("OUT", &out_dir)],
    )
    .code(0);
    let mut cmd = atmos_cmd(repo.path());
    cmd.args(args(
        "deployment rollout svc --target prod --promote-from dev --wait-for-approval --timeout 60s --lock-ttl 3s",
    ))
    .env("OUT", &out_dir);
    let mut waiting = Background::spawn(cmd);
    waiting.wait_for_output("waiting up to", Duration::from_secs(30));
    waiting.kill();
    assert!(
        repo.tags("svc", "prod", "a").is_empty(),
        "no intent: nothing ran"
    );
    repo.atmos_env(
        &args("deployment approve svc --target prod"),
        &[("ATMOS_ACTOR", "alice@example.com")],
    )
    .code(0);
    let run = repo.atmos_env(
        &args(
            "deployment rollout svc --target prod --promote-from dev --wait-for-lock --timeout 60s",
        ),
        &[("OUT", &out_dir)],
    );
    run.code(0);
    assert!(!run.stderr.contains("interrupted"), "{}", run.stderr);
    assert_eq!(
        statuses(&chain(&repo.path().join(".git"), "svc", "prod", "a")),
        ["success", "started"]
    );
}

#[test]
fn a_rollout_killed_while_publishing_is_published_by_the_next_command_after_newer_runs() {
    let w = Guarded::new(COUNTING);
    let alpha = w.runner("alpha");
    let beta = w.runner("beta");
    // The guard takes its time with alpha's outcome: alpha (and its git push) is killed then.
    let slow = w.out.path().join("slow-guard");
    let mut cmd = w.cmd(
        &alpha,
        &args("deployment rollout svc --target dev --lock-ttl 3s"),
    );
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // The intent passes first; the outcome's push waits in the guard.
    let victim = Background::spawn(cmd);
    wait_for_file(&w.out.path().join("started"), Duration::from_secs(30));
    std::fs::write(&slow, "").expect("slow");
    wait_for_file(
        &w.out.path().join("slow-guard.reached"),
        Duration::from_secs(30),
    );
    // Its own process group (atmos, git push, the receiving side, the guard): all killed.
    let group = nix::unistd::Pid::from_raw(i32::try_from(victim.id()).expect("pid"));
    assert_ne!(
        group,
        nix::unistd::getpgrp(),
        "the victim runs in a group of its own"
    );
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).expect("killpg");
    victim.finish();
    std::fs::remove_file(&slow).expect("fast again");
    let origin = w.origin();
    assert_eq!(statuses(&chain(&origin, "svc", "dev", "a")), ["started"]);
    // Alpha has its outcome, kept for the remote.
    assert_eq!(
        statuses(&chain(&alpha.join(".git"), "svc", "dev", "a"))[0],
        "success"
    );

    // Meanwhile beta rolls out: it finds alpha's run unfinished and records it interrupted.
    git(&beta, &["commit", "-q", "--allow-empty", "-m", "v2"]);
    git(&beta, &["push", "-q", "origin", "HEAD:main"]);
    w.atmos(
        &beta,
        &args("deployment rollout svc --target dev --wait-for-lock --timeout 60s"),
    )
    .code(0)
    .stderr_has(&["recorded it as interrupted"]);
    let v2 = git(&beta, &["rev-parse", "HEAD"]);

    // Alpha's next command publishes what it kept: its outcome takes its place after beta's
    // records, and beta's newer state stands.
    let run = w.atmos(&alpha, &args("deployment fetch svc"));
    run.code(0)
        .stdout_has(&["that had not reached origin", "took its place at the end"]);
    assert_eq!(
        statuses(&chain(&origin, "svc", "dev", "a")),
        ["success", "success", "started", "interrupted", "started"],
        "alpha's outcome, beta's run, beta's finding, alpha's intent"
    );
    assert_eq!(
        git(&origin, &["rev-parse", "refs/atmos/deployments/svc/dev/a"]),
        v2
    );
    let auditor = w.runner("auditor");
    w.atmos(&auditor, &args("deployment verify svc --remote origin"))
        .code(0);
    assert_eq!(w.runs(), 2);
}

#[test]
fn runners_waiting_for_the_lock_lose_no_record_three_clones_times_three_rollouts() {
    let w = Guarded::new(COUNTING);
    let clones: Vec<PathBuf> = (0..3).map(|i| w.runner(&format!("r{i}"))).collect();
    let started = std::time::Instant::now();
    let threads: Vec<_> = clones
        .iter()
        .map(|dir| {
            let cmd_args =
                args("deployment rollout svc --target dev --force --wait-for-lock --timeout 120s");
            let mut cmds: Vec<Command> = (0..3).map(|_| w.cmd(dir, &cmd_args)).collect();
            std::thread::spawn(move || {
                cmds.iter_mut()
                    .map(|c| Run::from(c.output().expect("atmos")))
                    .collect::<Vec<Run>>()
            })
        })
        .collect();
    let mut codes = Vec::new();
    for t in threads {
        for run in t.join().expect("thread") {
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
            codes.push(run.code);
        }
    }
    let records = chain(&w.origin(), "svc", "dev", "a");
    let outcomes = records.iter().filter(|r| r.0 == "success").count();
    let intents = records.iter().filter(|r| r.0 == "started").count();
    eprintln!(
        "figures: 3 clones × 3 rollouts: {:.1}s, {} executor runs, {outcomes} outcomes, {intents} intents on the remote",
        started.elapsed().as_secs_f64(),
        w.runs()
    );
    assert_eq!(w.runs(), 9);
    assert_eq!(outcomes, 9, "{records:#?}");
    assert_eq!(intents, 9, "{records:#?}");
    // Intent then outcome, nine times over: no run interleaved with another.
    for pair in records.chunks(2) {
        assert_eq!(statuses(pair), ["success", "started"], "{records:#?}");
    }
    let auditor = w.runner("auditor");
    w.atmos(&auditor, &args("deployment verify svc --remote origin"))
        .code(0);
}

#[test]
fn runners_with_clocks_five_minutes_off_interleave_with_honest_ones_and_nothing_is_refused() {
    let w = Guarded::new(COUNTING);
    let honest = w.runner("honest");
    let fast = w.runner("fast");
    let slow = w.runner("slow");
    let rollout = args("deployment rollout svc --target dev --force");
    let out_dir = w.out.path().to_str().expect("utf-8").to_owned();
    let env = [("OUT", out_dir.as_str())];
    let mut order = Vec::new();
    for round in 0..2 {
        w.atmos(&honest, &rollout).code(0);
        order.push("honest@example.com");
        crate::support::atmos_faketime(&fast, "+5m", &rollout, &env).code(0);
        order.push("fast@example.com");
        crate::support::atmos_faketime(&slow, "-5m", &rollout, &env).code(0);
        order.push("slow@example.com");
        assert_eq!(w.runs(), 3 * (round + 1));
    }
    // The remote holds every run, in the order they ran — not the order of their clocks.
    let records = chain(&w.origin(), "svc", "dev", "a");
    let outcomes: Vec<&str> = records
        .iter()
        .filter(|r| r.0 == "success")
        .map(|r| r.1.as_str())
        .rev()
        .collect();
    assert_eq!(outcomes, order, "{records:#?}");
    let stamps: Vec<&str> = records.iter().map(|r| r.2.as_str()).collect();
    assert!(
        stamps.windows(2).any(|p| p[0] < p[1]),
        "the clocks really were off: {stamps:?}"
    );
    let auditor = w.runner("auditor");
    w.atmos(&auditor, &args("deployment verify svc --remote origin"))
        .code(0);

    // A clock twenty minutes fast is past what the guard accepts: its intent is refused, so
    // its executor never runs, and it says why.
    let run = crate::support::atmos_faketime(&fast, "+20m", &rollout, &env);
    run.code(1).stderr_has(&[
        "the intent of this rollout to dev could not be recorded, so nothing ran",
        "in the future",
    ]);
    assert_eq!(w.runs(), 6);
    w.atmos(&auditor, &args("deployment verify svc --remote origin"))
        .code(0);
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_loses_nothing_that_ran_and_runs_nothing_it_cannot_record() {
    let disk = match Tmpfs::mount("16m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: a full disk needs a tmpfs, and {why}");
            return;
        }
    };
    let root = disk.0.path().join("repo");
    std::fs::create_dir_all(root.join("deployments")).expect("mkdir");
    let out = tempfile::tempdir().expect("tempdir");
    let fill = disk.0.path().join("fill");
    // The executor fills the disk after it ran.
    let yaml = COUNTING.replace(
        r#"touch "$OUT/started";"#,
        &format!(
            r#"touch "$OUT/started"; if [ -e "$OUT/fill" ]; then dd if=/dev/zero of="{}" bs=64k 2>/dev/null; true; fi;"#,
            fill.display()
        ),
    );
    std::fs::write(root.join("deployments/svc.yaml"), yaml).expect("write");
    git(&root, &["init", "-q"]);
    git(&root, &["config", "user.email", "dev@example.com"]);
    git(&root, &["config", "user.name", "dev"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "init"]);
    let atmos = |a: &[&str]| {
        let mut cmd = atmos_cmd(&root);
        cmd.args(a).env("OUT", out.path());
        Run::from(cmd.output().expect("atmos"))
    };
    let runs = || {
        std::fs::read_to_string(out.path().join("runs"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    std::fs::write(out.path().join("fill"), "").expect("fill");
    let run = atmos(&args("deployment rollout svc --target dev"));
    run.code(1)
        .stderr_has(&["the executors ran, but their outcome could not be written"]);
    assert_eq!(runs(), 1);
    assert_eq!(
        statuses(&chain(&root.join(".git"), "svc", "dev", "a")),
        ["started"]
    );

    // Still full: nothing can be recorded, so nothing runs.
    std::fs::remove_file(out.path().join("fill")).expect("rm");
    let run = atmos(&args("deployment rollout svc --target dev --force"));
    run.code(1);
    assert!(
        run.stderr.contains("nothing ran") || run.stderr.contains("No space left"),
        "{}",
        run.stderr
    );
    assert_eq!(runs(), 1, "nothing ran on a full disk");

    // Space again: the next rollout records the unfinished one, then runs.
    std::fs::remove_file(&fill).expect("free the disk");
    let run = atmos(&args("deployment rollout svc --target dev --force"));
    run.code(0).stderr_has(&["recorded it as interrupted"]);
    assert_eq!(runs(), 2);
    assert_eq!(
        statuses(&chain(&root.join(".git"), "svc", "dev", "a")),
        ["success", "started", "interrupted", "started"]
    );
    atmos(&args("deployment verify svc")).code(0);
    drop(disk);
}

#[test]
fn components_named_with_a_slash_publish_through_the_guard() {
    let w = Guarded::new(&COUNTING.replace("      a:\n", "      ecs/api:\n"));
    let ci = w.runner("ci");
    w.atmos(&ci, &args("deployment rollout svc --target dev"))
        .code(0)
        .stdout_has(&["Recorded on origin"]);
    assert_eq!(
        statuses(&chain(&w.origin(), "svc", "dev", "ecs/api")),
        ["success", "started"]
    );
    let auditor = w.runner("auditor");
    w.atmos(&auditor, &args("deployment status svc --remote origin"))
        .code(0)
        .stdout_has(&["ecs/api"]);
    w.atmos(&auditor, &args("deployment verify svc")).code(0);
}

#[test]
fn a_rollout_to_a_remote_without_the_history_publishes_the_records_it_follows() {
    // dev's history is on origin; the next rollout goes to another guarded remote that has
    // none of it: its records arrive with the ones they follow, and the chain verifies there.
    let w = Guarded::new(COUNTING);
    let ci = w.runner("ci");
    w.atmos(&ci, &args("deployment rollout svc --target dev"))
        .code(0);
    git(
        w.dir.path(),
        &["init", "-q", "--bare", "-b", "main", "eu.git"],
    );
    let eu = w.dir.path().join("eu.git");
    std::fs::copy(
        w.origin().join("hooks/pre-receive"),
        eu.join("hooks/pre-receive"),
    )
    .expect("the guard");
    git(&ci, &["remote", "add", "eu", eu.to_str().expect("utf-8")]);
    git(&ci, &["push", "-q", "eu", "HEAD:refs/heads/main"]);
    git(&ci, &["commit", "-q", "--allow-empty", "-m", "v2"]);
    git(&ci, &["push", "-q", "eu", "HEAD:refs/heads/main"]);
    w.atmos(
        &ci,
        &args("deployment rollout svc --target dev --remote eu"),
    )
    .code(0)
    .stdout_has(&["Recorded on eu"]);
    assert_eq!(
        statuses(&chain(&eu, "svc", "dev", "a")),
        ["success", "started", "success", "started"],
        "eu holds the run and the history it follows"
    );
    let auditor = w.runner("auditor");
    git(
        &auditor,
        &["remote", "add", "eu", eu.to_str().expect("utf-8")],
    );
    git(&auditor, &["fetch", "-q", "eu"]);
    w.atmos(&auditor, &args("deployment verify svc --remote eu"))
        .code(0);
}
