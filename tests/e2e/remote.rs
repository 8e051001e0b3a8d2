//! The shared remote, against a real server: `git daemon` on 127.0.0.1 (started and stopped
//! here), a bare repository, and separate clones as CI runners.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::{args, atmos_cmd};

/// `git daemon` serving a folder of bare repositories, read and write, on a free port.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    /// Start on a free port. A port found free can be taken by someone else before the
    /// daemon binds it, so the daemon's own word decides: it says "Ready to rumble" once it
    /// listens, or exits when the port is taken — then another port is tried.
    fn start(base: &Path) -> Daemon {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port();
            let log = tempfile::NamedTempFile::new().expect("log file");
            let mut child = Command::new("git")
                .args([
                    "daemon",
                    "--verbose",
                    "--reuseaddr",
                    "--listen=127.0.0.1",
                    "--export-all",
                    "--enable=receive-pack",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", base.display()))
                .arg(base)
                .stdout(Stdio::null())
                .stderr(log.reopen().expect("log"))
                .spawn()
                .expect("git daemon");
            let mut exited = false;
            crate::support::wait_until(Duration::from_secs(10), "git daemon to listen", || {
                exited = matches!(child.try_wait(), Ok(Some(_)));
                exited
                    || std::fs::read_to_string(log.path())
                        .is_ok_and(|l| l.contains("Ready to rumble"))
            });
            if !exited {
                return Daemon { child, port };
            }
        }
        panic!("git daemon could not listen on any of 5 free ports");
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// A server with one repository holding `deployment` (YAML of deployments/svc.yaml) and an
/// atmos.yaml pointing at the remote `origin`.
struct World {
    dir: TempDir,
    daemon: Daemon,
    out: TempDir,
}

impl World {
    fn new(deployment: &str) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("server");
        std::fs::create_dir_all(&base).expect("mkdir");
        git(&base, &["init", "-q", "--bare", "-b", "main", "origin.git"]);
        let daemon = Daemon::start(&base);
        let seed = dir.path().join("seed");
        std::fs::create_dir_all(seed.join("deployments")).expect("mkdir");
        git(&seed, &["init", "-q"]);
        git(&seed, &["config", "user.email", "seed@example.com"]);
        git(&seed, &["config", "user.name", "Seed"]);
        std::fs::write(seed.join("deployments/svc.yaml"), deployment).expect("write");
        std::fs::write(
            seed.join("atmos.yaml"),
            "git:\n  remote: origin\n  lock_ttl: 10m\n",
        )
        .expect("write");
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "-m", "seed"]);
        git(
            &seed,
            &["remote", "add", "origin", &daemon.url("origin.git")],
        );
        git(&seed, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
        World {
            dir,
            daemon,
            out: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A fresh clone acting as one CI runner.
    fn runner(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let out = Command::new("git")
            .args([
                "clone",
                "-q",
                "--branch",
                "main",
                &self.daemon.url("origin.git"),
            ])
            .arg(&path)
            .output()
            .expect("clone");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        git(
            &path,
            &["config", "user.email", &format!("{name}@example.com")],
        );
        git(&path, &["config", "user.name", name]);
        path
    }

    fn atmos(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = atmos_cmd(dir);
        cmd.args(args).env("OUT", self.out.path());
        cmd
    }

    /// Run atmos in `dir`: (exit code, stdout, stderr).
    fn run(&self, dir: &Path, args: &[&str]) -> (i32, String, String) {
        let out = self.atmos(dir, args).output().expect("atmos");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The message of an object on the remote (a record's tag).
    fn remote_message(&self, oid: &str) -> String {
        git(
            &self.dir.path().join("server/origin.git"),
            &["cat-file", "-p", oid],
        )
    }

    /// The remote's record tags under a prefix that record an outcome (not the `started`
    /// intent written before each executor runs).
    fn remote_outcomes(&self, prefix: &str) -> Vec<(String, String)> {
        self.remote_refs(prefix)
            .into_iter()
            .filter(|(oid, _)| !self.remote_message(oid).contains("\nstatus: started\n"))
            .collect()
    }

    /// The remote's refs under a prefix, via a fresh `git ls-remote`.
    fn remote_refs(&self, prefix: &str) -> Vec<(String, String)> {
        let out = Command::new("git")
            .args(["ls-remote", &self.daemon.url("origin.git")])
            .output()
            .expect("ls-remote");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(_, r)| r.starts_with(prefix) && !r.ends_with("^{}"))
            .map(|(o, r)| (o.to_owned(), r.to_owned()))
            .collect()
    }
}

fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const TWO: &str = "deployment:\n  name: svc\n  components:\n    script:\n      a:\n        settings: {script: {apply: 'sleep 0.2'}}\n      b:\n        metadata: {depends_on: [script/a]}\n        settings: {script: {apply: 'true'}}\n  targets:\n    dev: {}\n";

#[test]
fn eight_concurrent_rollouts_to_one_target_serialize_and_lose_nothing() {
    let world = World::new(TWO);
    let runners: Vec<PathBuf> = (0..8)
        .map(|i| world.runner(&format!("runner{i}")))
        .collect();
    let started = Instant::now();
    let children: Vec<Child> = runners
        .iter()
        .map(|r| {
            world
                .atmos(
                    r,
                    &args("deployment rollout svc --target dev --force --wait-for-lock --timeout 180s"),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let results: Vec<(i32, String, String)> = children.into_iter().map(finish).collect();
    let elapsed = started.elapsed();
    for (code, out, err) in &results {
        assert_eq!(*code, 0, "{out}\n{err}");
    }
    let attempts: Vec<u32> = results
        .iter()
        .filter_map(|(_, out, _)| {
            out.lines().find_map(|l| {
                l.strip_prefix("Recorded on origin (")
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse().ok())
            })
        })
        .collect();
    assert_eq!(attempts.len(), 8, "every rollout reports its push");
    let waited = results
        .iter()
        .filter(|(_, _, e)| e.contains("waiting for the lock"))
        .count();
    eprintln!(
        "figures: 8 runners, one target: {:.1}s total, push attempts {attempts:?}, {waited} runner(s) waited for the lock",
        elapsed.as_secs_f64()
    );
    // Every rollout's records are on the remote: 8 rollouts × 2 components, each an intent
    // and an outcome, no tag lost.
    let tags = world.remote_outcomes("refs/tags/atmos/deployments/svc/dev/");
    assert_eq!(tags.len(), 16, "{tags:#?}");
    assert_eq!(
        world
            .remote_refs("refs/tags/atmos/deployments/svc/dev/")
            .len(),
        32
    );
    let head = git(&runners[0], &["rev-parse", "HEAD"]);
    let state = world.remote_refs("refs/atmos/deployments/svc/dev/");
    assert_eq!(state.len(), 2);
    assert!(state.iter().all(|(oid, _)| *oid == head));
    assert!(
        world.remote_refs("refs/atmos/locks/").is_empty(),
        "every lock released"
    );
}

#[test]
fn eight_targets_roll_out_at_once_without_blocking_each_other() {
    let targets: String = (0..8).map(|i| format!("    t{i}: {{}}\n")).collect();
    let world = World::new(&format!(
        "deployment:\n  name: svc\n  components:\n    script:\n      a:\n        settings: {{script: {{apply: 'sleep 1'}}}}\n  targets:\n{targets}"
    ));
    let runners: Vec<PathBuf> = (0..8)
        .map(|i| world.runner(&format!("runner{i}")))
        .collect();
    let started = Instant::now();
    let children: Vec<Child> = runners
        .iter()
        .enumerate()
        .map(|(i, r)| {
            world
                .atmos(
                    r,
                    &["deployment", "rollout", "svc", "--target", &format!("t{i}")],
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let results: Vec<(i32, String, String)> = children.into_iter().map(finish).collect();
    let elapsed = started.elapsed();
    for (code, out, err) in &results {
        assert_eq!(*code, 0, "no target blocks another: {out}\n{err}");
        assert!(!err.contains("locked by"), "{err}");
    }
    let attempts: Vec<&str> = results
        .iter()
        .filter_map(|(_, out, _)| out.lines().find(|l| l.starts_with("Recorded on origin")))
        .collect();
    eprintln!(
        "figures: 8 runners, 8 targets: {:.1}s total, {attempts:?}",
        elapsed.as_secs_f64()
    );
    assert_eq!(
        world
            .remote_outcomes("refs/tags/atmos/deployments/svc/")
            .len(),
        8
    );
    assert_eq!(world.remote_refs("refs/atmos/deployments/svc/").len(), 8);
}

#[test]
fn a_second_runner_is_told_who_holds_the_lock_and_lock_status_shows_it() {
    let world = World::new(&TWO.replace(
        "sleep 0.2",
        "touch $OUT/started; while [ ! -e $OUT/go ]; do sleep 0.05; done",
    ));
    let a = world.runner("alpha");
    let b = world.runner("beta");
    let first = world
        .atmos(&a, &args("deployment rollout svc --target dev"))
        .env("GITHUB_RUN_ID", "run-7")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    crate::support::wait_for_file(&world.out.path().join("started"), Duration::from_secs(30));
    let second = world
        .atmos(&b, &args("deployment rollout svc --target dev"))
        .output()
        .expect("run");
    assert_eq!(second.status.code(), Some(4));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("svc/dev is locked by alpha@example.com (run run-7,"),
        "{err}"
    );
    assert!(err.contains("--wait-for-lock"), "{err}");
    let status = world
        .atmos(
            &b,
            &args("deployment lock status svc --target dev --format json"),
        )
        .output()
        .expect("run");
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(json["held"], true);
    assert_eq!(json["lease"]["holder"], "alpha@example.com");
    assert_eq!(json["lease"]["run"], "run-7");
    std::fs::write(world.out.path().join("go"), "").expect("go");
    let (code, out, err) = finish(first);
    assert_eq!(code, 0, "{out}\n{err}");
    let status = world
        .atmos(&b, &args("deployment lock status svc --target dev"))
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "svc/dev is not locked\n"
    );
    // Now the second runner goes through, and sees what the first recorded.
    let again = world
        .atmos(&b, &args("deployment rollout svc --target dev"))
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("Nothing to do"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn a_runner_killed_mid_rollout_leaves_an_expiring_lease_and_consistent_refs() {
    let world = World::new(&TWO.replace(
        "sleep 0.2",
        "if [ -e $OUT/slow ]; then touch $OUT/started; sleep 60; fi",
    ));
    let a = world.runner("alpha");
    let b = world.runner("beta");
    std::fs::write(world.out.path().join("slow"), "").expect("marker");
    let mut victim = world
        .atmos(
            &a,
            &args("deployment rollout svc --target dev --lock-ttl 3s"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    crate::support::wait_for_file(&world.out.path().join("started"), Duration::from_secs(30));
    victim.kill().expect("SIGKILL");
    let _ = victim.wait();
    std::fs::remove_file(world.out.path().join("slow")).expect("rm");
    // What reached the remote: the lease, and the intent — a `started` record per
    // component, written before the executor ran — but no state ref moved.
    assert!(world.remote_refs("refs/atmos/deployments/").is_empty());
    let intents = world.remote_refs("refs/tags/atmos/");
    assert_eq!(intents.len(), 2, "{intents:?}");
    assert!(
        intents
            .iter()
            .all(|(oid, _)| world.remote_message(oid).contains("\nstatus: started\n")),
        "{intents:?}"
    );
    assert_eq!(world.remote_refs("refs/atmos/locks/svc/dev").len(), 1);
    // Any clone shows the rollout that started and whose outcome is unknown.
    let (code, status, _) = world.run(
        &b,
        &args("deployment status svc --target dev --remote origin"),
    );
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("outcome unknown") && status.contains("by alpha@example.com"),
        "{status}"
    );
    let blocked = world
        .atmos(&b, &args("deployment rollout svc --target dev"))
        .output()
        .expect("run");
    assert_eq!(
        blocked.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&blocked.stderr)
    );
    assert!(String::from_utf8_lossy(&blocked.stderr).contains("locked by alpha@example.com"));
    // Once the lease lapses, the next run takes it over: waiting for that, not for a time.
    let recovered = world
        .atmos(
            &b,
            &args("deployment rollout svc --target dev --wait-for-lock --timeout 60s"),
        )
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&recovered.stderr);
    assert_eq!(
        recovered.status.code(),
        Some(0),
        "{}\n{err}",
        String::from_utf8_lossy(&recovered.stdout)
    );
    assert!(
        err.contains("took over the expired lock of svc/dev from alpha@example.com"),
        "{err}"
    );
    // It reconciled the killed rollout before running: each intent completed as
    // `interrupted`, saying by whom and where it started.
    assert!(
        err.contains("no outcome was recorded for the rollout started")
            && err.contains("by alpha@example.com (pid "),
        "{err}"
    );
    let head = git(&b, &["rev-parse", "HEAD"]);
    let state = world.remote_refs("refs/atmos/deployments/svc/dev/");
    assert_eq!(state.len(), 2);
    assert!(state.iter().all(|(oid, _)| *oid == head));
    let statuses: Vec<String> = world
        .remote_refs("refs/tags/atmos/deployments/svc/dev/a/")
        .iter()
        .map(|(oid, _)| {
            let m = world.remote_message(oid);
            m.lines()
                .find_map(|l| l.strip_prefix("status: "))
                .expect("a status")
                .to_owned()
        })
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["interrupted", "started", "started", "success"],
        "the killed run's intent and its interruption, then the new run's intent and outcome"
    );
    assert!(world.remote_refs("refs/atmos/locks/").is_empty());
    let (code, out, err) = world.run(&b, &args("deployment verify svc --remote origin"));
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn a_ref_moved_behind_our_back_is_never_overwritten() {
    let world = World::new(TWO);
    let a = world.runner("alpha");
    let other = world.runner("other");
    world
        .atmos(&a, &args("deployment rollout svc --target dev"))
        .output()
        .expect("run");
    // While alpha's next rollout runs, someone moves a state ref on the remote directly.
    git(&other, &args("commit -q --allow-empty -m elsewhere"));
    let sneaky = git(&other, &["rev-parse", "HEAD"]);
    git(&other, &["push", "-q", "origin", "HEAD:refs/heads/sneaky"]);
    let yaml = TWO.replace(
        "apply: 'sleep 0.2'",
        &format!(
            "apply: 'git -C {} push -q origin {sneaky}:refs/atmos/deployments/svc/dev/a'",
            other.display()
        ),
    );
    std::fs::write(a.join("deployments/svc.yaml"), yaml).expect("write");
    git(&a, &["commit", "-q", "-am", "v2"]);
    let run = world
        .atmos(&a, &args("deployment rollout svc --target dev"))
        .output()
        .expect("run");
    let out = String::from_utf8_lossy(&run.stdout);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("refs/atmos/deployments/svc/dev/a was moved on origin by someone else while this rollout ran"), "{err}");
    assert!(err.contains("it was not overwritten"), "{err}");
    let remote_a = world.remote_refs("refs/atmos/deployments/svc/dev/a");
    assert_eq!(remote_a[0].0, sneaky, "the other writer's value stands");
    assert!(
        world.remote_refs("refs/atmos/locks/").is_empty(),
        "the lock is released on failure too"
    );
}

#[test]
fn approvals_from_two_clones_all_reach_the_remote() {
    let world = World::new(&TWO.replace("    dev: {}\n", "    dev: {}\n    prod:\n      promotion: {from: dev, requires_approval: true, approvals: {min: 2}}\n"));
    let runner = world.runner("deployer");
    let r = world
        .atmos(&runner, &args("deployment rollout svc --target dev"))
        .output()
        .expect("run");
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let alice = world.runner("alice");
    let bob = world.runner("bob");
    let children: Vec<Child> = [&alice, &bob]
        .iter()
        .map(|dir| {
            world
                .atmos(dir, &args("deployment approve svc --target prod"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let (code, out, err) = finish(c);
        assert_eq!(code, 0, "{out}\n{err}");
    }
    // Both approvals are on the remote: the deployer's next rollout sees 2 of 2.
    let run = world
        .atmos(
            &runner,
            &args("deployment rollout svc --target prod --promote-from dev"),
        )
        .output()
        .expect("run");
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        out.contains("approved by alice@example.com") && out.contains("bob@example.com"),
        "{out}"
    );
}

#[test]
fn an_unreachable_remote_is_a_clear_error_unless_offline() {
    let world = World::new(TWO);
    let a = world.runner("alpha");
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    git(
        &a,
        &[
            "remote",
            "set-url",
            "origin",
            &format!("git://127.0.0.1:{closed}/origin.git"),
        ],
    );
    let run = world
        .atmos(&a, &args("deployment rollout svc --target dev"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot reach git remote `origin`"), "{err}");
    assert!(err.contains("--offline"), "{err}");
    let offline = world
        .atmos(&a, &args("deployment rollout svc --target dev --offline"))
        .output()
        .expect("run");
    assert_eq!(
        offline.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    let unknown = world
        .atmos(
            &a,
            &args("deployment rollout svc --target dev --remote nope"),
        )
        .output()
        .expect("run");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no git remote named `nope`"));
}

#[test]
fn ci_matrix_and_github_step_summary() {
    let repo = crate::support::Repo::example();
    repo.commit("example");
    let run = repo.atmos(&args("deployment matrix payment-service --target dev"));
    run.code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let entries: Vec<(String, u64)> = json["include"]
        .as_array()
        .expect("include")
        .iter()
        .map(|e| {
            (
                e["component"].as_str().unwrap_or("").to_owned(),
                e["wave"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            ("database".to_owned(), 1),
            ("migrate".to_owned(), 2),
            ("api".to_owned(), 3),
            ("worker".to_owned(), 3),
            ("smoke-test".to_owned(), 4)
        ]
    );
    let wave = repo.atmos(&args(
        "deployment matrix payment-service --target dev --wave 3",
    ));
    assert_eq!(wave.json()["include"].as_array().map(Vec::len), Some(2));
    repo.atmos(&args(
        "deployment matrix payment-service --target dev --wave 9",
    ))
    .code(2);

    let summary = tempfile::NamedTempFile::new().expect("tmp");
    let path = summary.path().to_str().expect("utf-8").to_owned();
    let run = repo.atmos_env(
        &args("deployment rollout payment-service --target dev --component migrate"),
        &[("GITHUB_STEP_SUMMARY", &path)],
    );
    run.code(0);
    let md = std::fs::read_to_string(summary.path()).expect("summary");
    assert!(md.starts_with("### ✅ payment-service → dev"), "{md}");
    assert!(
        md.contains("| migrate | - |") && md.contains("| deployed |"),
        "{md}"
    );
    assert!(
        md.contains("- `builtin/promotion-path` allow: dev is an entry point"),
        "{md}"
    );
}

#[test]
fn records_written_while_the_remote_was_out_of_reach_are_published_first_never_lost() {
    let world = World::new(TWO);
    let a = world.runner("alpha");
    let url = world.daemon.url("origin.git");
    let run = |args: &[&str]| {
        let out = world.atmos(&a, args).output().expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(&args("deployment rollout svc --target dev")).0, Some(0));
    // The remote goes away while the next rollout runs: its executors ran, its records are
    // written here, the push fails.
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let yaml = TWO.replace(
        "apply: 'sleep 0.2'",
        &format!(
            "apply: 'git -C {} remote set-url origin git://127.0.0.1:{closed}/origin.git'",
            a.display()
        ),
    );
    std::fs::write(a.join("deployments/svc.yaml"), yaml).expect("write");
    git(&a, &["commit", "-q", "-am", "v2"]);
    let v2 = git(&a, &["rev-parse", "HEAD"]);
    let (code, _, err) = run(&args("deployment rollout svc --target dev"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot reach git remote `origin`"), "{err}");
    // Back online: the next command that reads the remote publishes them first.
    git(&a, &["remote", "set-url", "origin", &url]);
    let (code, _, err) = run(&args("deployment lock release svc --target dev --force"));
    assert_eq!(code, Some(0), "{err}");
    let remote_a = world.remote_refs("refs/atmos/deployments/svc/dev/a");
    assert_eq!(
        remote_a[0].0, v2,
        "the state ref of the rollout that ran reached the remote"
    );
    let tags = world.remote_outcomes("refs/tags/atmos/deployments/svc/dev/a/");
    assert_eq!(tags.len(), 2, "both outcomes are on the remote: {tags:?}");
    // And the local view agrees with itself and with the remote.
    let (code, status, _) = run(&args("deployment status svc --target dev"));
    assert_eq!(code, Some(0));
    assert!(status.contains(&v2[..7]), "{status}");
    assert!(
        !a.join(".git/atmos/pending")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "nothing left pending"
    );
}

/// Reads --offline never fetch; `fetch <d>` (or `--remote` on a read) brings one
/// deployment's records and nothing of the others; the local view's age is shown while a
/// remote is configured; `fetch --setup` makes a plain `git fetch` bring the records.
#[test]
fn scoped_fetch_brings_one_deployments_records_and_setup_lets_git_fetch_them() {
    let world = World::new(TWO);
    let a = world.runner("alpha");
    let b = world.runner("beta");
    let run = |dir: &Path, args: &[&str]| world.run(dir, args);
    // A second deployment on the trusted branch.
    std::fs::write(
        a.join("deployments/other.yaml"),
        TWO.replace("name: svc", "name: other"),
    )
    .expect("write");
    git(&a, &["add", "-A"]);
    git(&a, &["commit", "-q", "-m", "other"]);
    git(&a, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    git(&b, &["pull", "-q", "origin", "main"]);
    for d in ["svc", "other"] {
        let (code, out, err) = run(&a, &["deployment", "rollout", d, "--target", "dev"]);
        assert_eq!(code, 0, "{out}{err}");
    }

    // B has not fetched, and reads --offline: its view is empty, and it says how old it is.
    let (code, out, err) = run(&b, &args("deployment status svc --target dev --offline"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: the local view of origin (never fetched by atmos here)"),
        "{err}"
    );
    assert!(!out.contains("success"), "{out}");

    let (code, out, err) = run(&b, &args("deployment fetch svc"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Fetched svc from origin: 2 state refs moved, 4 new records"),
        "{out}"
    );
    assert_eq!(
        git(
            &b,
            &[
                "for-each-ref",
                "refs/atmos/deployments/other",
                "refs/tags/atmos/deployments/other"
            ]
        ),
        "",
        "a scoped fetch brought another deployment's records"
    );
    let (_, out, err) = run(&b, &args("deployment status svc --target dev"));
    assert!(out.contains("success"), "{out}");
    assert!(err.contains("(fetched just now)"), "{err}");
    let (_, out, _) = run(&b, &args("deployment fetch svc"));
    assert!(out.contains("already up to date"), "{out}");
    let (_, out, _) = run(&b, &args("deployment fetch svc --format json"));
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    crate::support::check_output_schema("FetchReport", &doc);
    assert_eq!(doc["state_refs"], 2);

    // A read with --remote fetches first.
    let (code, out, err) = run(&b, &args("deployment history other --remote origin"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("success"), "{out}");

    // A plain `git fetch` after the one-time setup.
    let c = world.runner("gamma");
    let (code, out, err) = run(&c, &args("deployment fetch --setup"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("remote.origin.fetch"), "{out}");
    let (_, out, _) = run(&c, &args("deployment fetch --setup"));
    assert!(out.contains("already fetches"), "{out}");
    git(&c, &["fetch", "-q", "origin"]);
    let state = git(
        &c,
        &[
            "for-each-ref",
            "--format=%(refname)",
            "refs/atmos/deployments/",
        ],
    );
    assert_eq!(state.lines().count(), 4, "{state}");
    let tags = git(&c, &["tag", "-l", "atmos/*"]);
    assert_eq!(tags.lines().count(), 8, "{tags}");
    let chains = git(
        &c,
        &["for-each-ref", "--format=%(refname)", "refs/atmos/chains/"],
    );
    assert_eq!(chains.lines().count(), 4, "{chains}");
}

/// A rollout's logs travel with its records: another clone shows them after a fetch.
#[test]
fn another_clone_shows_the_logs_of_a_rollout_it_did_not_run() {
    let world = World::new(&TWO.replace(
        "apply: 'sleep 0.2'",
        "apply: 'echo applied a on $ATMOS_TARGET'",
    ));
    let a = world.runner("alpha");
    let b = world.runner("beta");
    let out = world
        .atmos(&a, &args("deployment rollout svc --target dev"))
        .output()
        .expect("atmos");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = world
        .atmos(
            &b,
            &args("deployment logs svc --target dev --remote origin"),
        )
        .output()
        .expect("atmos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("applied a on dev"), "{stdout}");
    assert!(stdout.contains("by alpha@example.com"), "{stdout}");
}

/// A runner cut off from the remote cannot renew its lease: it stops deploying before the
/// lease lapses (when another runner may take the target), instead of running on beside it.
#[test]
fn a_runner_that_cannot_renew_its_lease_stops_before_it_lapses() {
    let world = World::new(&TWO.replace(
        "apply: 'sleep 0.2'",
        "apply: 'touch $OUT/started; sleep 12; echo finished a'",
    ));
    let a = world.runner("alpha");
    let url = world.daemon.url("origin.git");
    let started = Instant::now();
    let rollout = world
        .atmos(
            &a,
            &args("deployment rollout svc --target dev --lock-ttl 3s"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    crate::support::wait_for_file(&world.out.path().join("started"), Duration::from_secs(30));
    // The network goes away (a closed port: every renewal fails at once).
    git(
        &a,
        &[
            "remote",
            "set-url",
            "origin",
            "git://127.0.0.1:9/origin.git",
        ],
    );
    let (code, out, err) = finish(rollout);
    git(&a, &["remote", "set-url", "origin", &url]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("could not be renewed before it expires"),
        "{err}"
    );
    assert!(!out.contains("a │ finished a"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "stopped before its apply would have ended"
    );
    // Leases shorter than 3 s are refused: they could lapse while being renewed.
    let out = world
        .atmos(
            &a,
            &args("deployment rollout svc --target dev --lock-ttl 2s"),
        )
        .output()
        .expect("atmos");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("too short"));
}

/// One clone archives while another rolls out: both land, and every record is still there —
/// in a third clone's history, and in the second clone once its next archive prunes the tags
/// the first one folded away.
#[test]
fn archiving_while_another_clone_rolls_out_loses_nothing() {
    let world = World::new(TWO);
    let a = world.runner("alpha");
    let b = world.runner("beta");
    let run = |dir: &Path, args: &[&str]| world.run(dir, args);
    let change = |dir: &Path, n: usize| {
        git(dir, &["pull", "-q", "--rebase", "origin", "main"]);
        std::fs::write(dir.join("change"), format!("{n}")).expect("write");
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", &format!("change {n}")]);
        git(dir, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    };
    for n in 0..3 {
        change(&a, n);
        let (code, out, err) = run(&a, &args("deployment rollout svc --target dev"));
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, _, err) = run(&b, &args("deployment fetch svc"));
    assert_eq!(code, 0, "{err}");
    change(&b, 3);

    let archive = world
        .atmos(&a, &args("deployment archive svc --keep 1"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("archive");
    let rollout = world
        .atmos(&b, &args("deployment rollout svc --target dev"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rollout");
    let (code, out, err) = finish(archive);
    assert_eq!(code, 0, "archive: {out}{err}");
    assert!(
        out.contains("svc: 8 records moved into the ledger"),
        "{out}"
    );
    let (code, out, err) = finish(rollout);
    assert_eq!(code, 0, "rollout: {out}{err}");

    let recorded = |dir: &Path| {
        let (code, out, err) = run(
            dir,
            &args("deployment history svc --limit 100 --format json"),
        );
        assert_eq!(code, 0, "{err}");
        let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
        doc["entries"].as_array().map_or(0, Vec::len)
    };
    let c = world.runner("gamma");
    let (code, _, err) = run(&c, &args("deployment fetch svc"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        recorded(&c),
        8,
        "three rollouts of A and one of B, two components each"
    );
    // A's newest rollout and B's stay tags: each component's intent and outcome.
    assert_eq!(
        world.remote_refs("refs/tags/atmos/deployments/svc/").len(),
        8
    );

    // B still holds the tags A archived; its history counts each record once, and its next
    // archive removes them here without touching the remote.
    let (code, _, err) = run(&b, &args("deployment fetch svc"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(recorded(&b), 8);
    let (code, out, err) = run(&b, &args("deployment archive svc --keep 1"));
    assert_eq!(code, 0, "{err}");
    // A's newest two records (now older than B's) go too.
    assert!(
        out.contains("svc: 4 records moved into the ledger; 4 tags left, 12 records in the ledger, 16 in all (was 16)")
            && out.contains("8 tags here already archived by another clone removed"),
        "{out}"
    );
    assert_eq!(
        git(&b, &["tag", "-l", "atmos/deployments/svc/*"])
            .lines()
            .count(),
        4
    );
    assert_eq!(
        world.remote_refs("refs/tags/atmos/deployments/svc/").len(),
        4
    );
    assert_eq!(recorded(&b), 8);

    // Someone rewinds the remote's ledger by hand (no guard here): clones that fetch keep
    // theirs, and say so, instead of losing the records it held.
    let (code, _, err) = run(&c, &args("deployment fetch svc"));
    assert_eq!(code, 0, "{err}");
    let ledger = git(&c, &["rev-parse", "refs/atmos/ledger/svc"]);
    git(
        &b,
        &[
            "push",
            "-q",
            "--force",
            "origin",
            "refs/atmos/ledger/svc~1:refs/atmos/ledger/svc",
        ],
    );
    let (code, _, err) = run(&c, &args("deployment fetch svc"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("does not extend this clone's"), "{err}");
    assert_eq!(git(&c, &["rev-parse", "refs/atmos/ledger/svc"]), ledger);
    assert_eq!(recorded(&c), 8);
    let (_, out, _) = run(&c, &args("deployment status svc --target dev"));
    assert!(out.matches("success").count() >= 2, "{out}");
}

/// A target on its own remote (`targets.prod-eu.remote: eu`): its rollouts push there while
/// the promotion source is read from the shared store; a fetch brings both; a stale copy of
/// its refs on the shared store never puts its state back; and `--remote` naming a remote that
/// missed earlier records publishes them instead of only saying "nothing to do".
#[test]
fn a_target_on_its_own_remote_syncs_with_it_and_another_remote_gets_what_it_lacks() {
    let world = World::new(&TWO.replace(
        "    dev: {}\n",
        "    dev: {}\n    staging: {promotion: {from: dev}}\n    prod-eu: {remote: eu, promotion: {from: staging}}\n",
    ));
    git(
        &world.dir.path().join("server"),
        &["init", "-q", "--bare", "-b", "main", "eu.git"],
    );
    let eu_url = world.daemon.url("eu.git");
    let a = world.runner("alpha");
    git(&a, &["remote", "add", "eu", &eu_url]);
    // The region's server carries the code too (a mirror of main).
    git(&a, &["push", "-q", "eu", "HEAD:refs/heads/main"]);
    let run = |dir: &Path, args: &[&str]| world.run(dir, args);
    for line in [
        "deployment rollout svc --target dev",
        "deployment rollout svc --target staging --promote-from dev",
        "deployment rollout svc --target prod-eu --promote-from staging",
    ] {
        let (code, out, err) = run(&a, &args(line));
        assert_eq!(code, 0, "{line}: {out}{err}");
    }
    let on = |remote: &str, prefix: &str| {
        let out = Command::new("git")
            .args(["ls-remote", &world.daemon.url(remote), prefix])
            .output()
            .expect("ls-remote");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.ends_with("^{}"))
            .count()
    };
    assert_eq!(on("eu.git", "refs/atmos/deployments/svc/prod-eu/*"), 2);
    assert_eq!(on("eu.git", "refs/tags/atmos/deployments/svc/prod-eu/*"), 4);
    assert_eq!(on("origin.git", "refs/atmos/deployments/svc/prod-eu/*"), 0);
    assert_eq!(on("eu.git", "refs/atmos/deployments/svc/staging/*"), 0);

    // Another clone reads both.
    let b = world.runner("beta");
    git(&b, &["remote", "add", "eu", &eu_url]);
    let (code, out, err) = run(&b, &args("deployment fetch svc"));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Fetched svc from origin and eu:"), "{out}");
    let prod_eu = git(&b, &["rev-parse", "refs/atmos/deployments/svc/prod-eu/a"]);
    assert_eq!(prod_eu, git(&a, &["rev-parse", "HEAD"]));

    // A stale copy on the shared store (pushed by hand) is never fetched over it.
    let first = git(&a, &["rev-list", "--max-parents=0", "HEAD"]);
    git(
        &a,
        &[
            "push",
            "-q",
            "origin",
            &format!("{first}:refs/atmos/deployments/svc/prod-eu/a"),
        ],
    );
    let (code, _, err) = run(&b, &args("deployment fetch svc"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        git(&b, &["rev-parse", "refs/atmos/deployments/svc/prod-eu/a"]),
        prod_eu
    );

    // eu never got dev's records; naming it publishes them (its rules are its main's).
    git(&b, &["fetch", "-q", "eu"]);
    let (code, out, err) = run(&b, &args("deployment rollout svc --target dev --remote eu"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Nothing to do") && out.contains("Published 8 refs of dev that eu lacked"),
        "{out}"
    );
    assert_eq!(on("eu.git", "refs/atmos/deployments/svc/dev/*"), 2);
    let (_, out, _) = run(&b, &args("deployment rollout svc --target dev --remote eu"));
    assert!(!out.contains("Published"), "{out}");

    // The lock of prod-eu lives on eu, where its rollouts take it: `lock status` and
    // `lock release` look there, not on the shared store.
    let lease = r#"{"deployment":"svc","target":"prod-eu","holder":"carol@example.com","run":null,"host":"h","pid":1,"started_at":"2026-01-01T00:00:00Z","expires_at":"2999-01-01T00:00:00Z"}"#;
    std::fs::write(b.join(".lease"), lease).expect("write");
    let blob = git(&b, &["hash-object", "-w", ".lease"]);
    git(
        &b,
        &[
            "push",
            "-q",
            "eu",
            &format!("{blob}:refs/atmos/locks/svc/prod-eu"),
        ],
    );
    let (code, out, err) = run(&b, &args("deployment lock status svc --target prod-eu"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("locked by carol@example.com"), "{out}");
    let (code, _, err) = run(
        &b,
        &args("deployment lock release svc --target prod-eu --force"),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(on("eu.git", "refs/atmos/locks/*"), 0);
}

/// The locks come with the records in one fetch and are mirrored exactly: a lock someone took
/// on the remote appears here, one released there disappears here, a lock of another
/// deployment is left alone by a fetch of this one, and a ref planted where fetches collect
/// the remote's locks (another process's namespace) does not come back as a lock.
#[test]
fn a_fetch_mirrors_the_remotes_locks_in_the_same_round_trip() {
    let (repo, _base, origin) = crate::support::svc_with_origin();
    repo.atmos(&crate::support::args("deployment rollout svc --target dev"))
        .code(0);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let lock = "refs/atmos/locks/svc/dev";
    let local = |name: &str| repo.git(&["for-each-ref", "--format=%(objectname)", name]);
    assert_eq!(local(lock), "", "the rollout released its lease");

    // Someone else holds dev now; an unrelated deployment's lock sits here; a ref is planted
    // where fetches collect the remote's locks (another process's namespace: pid 1 is never
    // an atmos run).
    crate::support::git_in(&origin, &["update-ref", lock, &head]);
    repo.git(&["update-ref", "refs/atmos/locks/other/dev", &head]);
    repo.git(&[
        "update-ref",
        "refs/atmos-remote/origin/locks/1/svc/prod",
        &head,
    ]);
    let fetch = crate::support::args("deployment fetch svc");
    repo.atmos(&fetch).code(0);
    assert_eq!(local(lock), head, "the remote's lock is mirrored");
    assert_eq!(
        local("refs/atmos/locks/svc/prod"),
        "",
        "a planted ref is no lock"
    );
    assert_eq!(
        local("refs/atmos/locks/other/dev"),
        head,
        "other deployments untouched"
    );

    crate::support::git_in(&origin, &["update-ref", "-d", lock]);
    repo.atmos(&fetch).code(0);
    assert_eq!(local(lock), "", "a released lock disappears");
    assert_eq!(local("refs/atmos/locks/other/dev"), head);
}

/// A first fetch of a long history writes one loose ref per tag; the fetch packs them, so
/// that later git commands and reads find them by binary search. (The tags here are only
/// names: a fetch moves refs, it does not judge records.)
#[test]
fn a_fetch_that_leaves_a_thousand_loose_tags_packs_them() {
    let (repo, _base, origin) = crate::support::svc_with_origin();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let mut input = String::new();
    for i in 0..1200 {
        input.push_str(&format!(
            "create refs/tags/atmos/deployments/svc/dev/api/2026-01-01T00-{:02}-{:02}Z {head}\n",
            i / 60,
            i % 60
        ));
    }
    let mut child = Command::new("git")
        .args(["update-ref", "--stdin"])
        .current_dir(&origin)
        .stdin(Stdio::piped())
        .spawn()
        .expect("update-ref");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success());

    repo.atmos(&args("deployment fetch svc")).code(0);
    let loose = repo
        .path()
        .join(".git/refs/tags/atmos/deployments/svc/dev/api");
    let files = std::fs::read_dir(&loose).map_or(0, |d| d.count());
    assert_eq!(files, 0, "the fetched tags are packed");
    let listed = repo.git(&["tag", "-l", "atmos/deployments/svc/dev/api/*"]);
    assert_eq!(listed.lines().count(), 1200, "and all there");
}

/// A rollout syncs once, after taking its lease. If that sync fails (a remote that serves
/// the lease's push but not the fetch after it), nothing runs, and the lease is released on
/// the way out: the next runner is not kept waiting for it to expire.
#[test]
fn a_sync_that_fails_after_the_lease_runs_nothing_and_releases_the_lease() {
    let (repo, base, origin) = crate::support::svc_with_origin();
    let ran = base.path().join("ran");
    repo.write(
        "svc.yaml",
        format!(
            "deployment:\n  name: svc\n  components:\n    script:\n      api:\n        settings: {{script: {{apply: 'touch {}'}}}}\n  targets:\n    dev: {{}}\n",
            ran.display()
        ),
    );
    repo.commit("apply leaves a mark");
    repo.git(&["push", "-q", "origin", "HEAD:main"]);
    // Serves the first fetch (the lease's look at the locks), refuses every one after.
    let count = base.path().join("fetches");
    let flaky = base.path().join("flaky-upload-pack");
    std::fs::write(
        &flaky,
        format!(
            "#!/bin/sh\nn=$(cat '{c}' 2>/dev/null || echo 0)\necho $((n+1)) > '{c}'\n[ \"$n\" -ge 1 ] && {{ echo 'flaky: no more' >&2; exit 1; }}\nexec git-upload-pack \"$@\"\n",
            c = count.display()
        ),
    )
    .expect("write");
    crate::rollout::make_executable(&flaky);
    repo.git(&[
        "config",
        "remote.origin.uploadpack",
        flaky.to_str().expect("utf-8"),
    ]);

    let run = repo.atmos(&args("deployment rollout svc --target dev"));
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        !ran.exists(),
        "the executor ran on a view the rollout could not sync"
    );
    let fetches: u32 = std::fs::read_to_string(&count)
        .expect("count")
        .trim()
        .parse()
        .expect("a number");
    assert!(
        fetches >= 2,
        "the fetch after the lease was the one refused"
    );
    let lock = crate::support::git_in(&origin, &["for-each-ref", "refs/atmos/locks/"]);
    assert_eq!(lock, "", "the lease was released");
    repo.assert_state("svc", "dev", "api", None);
}
