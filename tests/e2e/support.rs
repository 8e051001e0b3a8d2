//! Shared fixtures: a throwaway git repository with deployment files, and a way to run the
//! real binary in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

#[path = "../build_guests.rs"]
mod build_guests;

/// Path of the example shipped in the repository.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/payment-service")
}

/// The shipped policies.
pub fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// The hook components built from `guests/` (release, wasm32-wasip2), built once per test
/// run into `target/guests` (cargo makes that a no-op when `.ci/run` already built them).
pub fn guest(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        build_guests::build_guests(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
    });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A throwaway project: a `git init`ed folder with a `deployments/` folder.
pub struct Repo {
    dir: TempDir,
}

impl Repo {
    /// An empty git repository with an empty `deployments/` folder.
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir.path())
            .status()
            .expect("git init");
        assert!(status.success());
        for (key, value) in [("user.email", "dev@example.com"), ("user.name", "Dev")] {
            let status = Command::new("git")
                .args(["config", key, value])
                .current_dir(dir.path())
                .status()
                .expect("git config");
            assert!(status.success());
        }
        std::fs::create_dir(dir.path().join("deployments")).expect("mkdir");
        Repo { dir }
    }

    /// A copy of the shipped example, as a git repository, with the shipped policies beside
    /// it (as the demo lays it out).
    pub fn example() -> Repo {
        let repo = Repo::new();
        copy_dir(&example_dir(), repo.path());
        let policies = repo.path().join("policies");
        std::fs::create_dir_all(&policies).expect("mkdir");
        copy_dir(&policies_dir(), &policies);
        repo.add_guests(&["change-freeze", "ticket-required", "soak-time"]);
        // Sign as the demo does: dev's TEST-ONLY key (prod requires a proven deployer).
        let keys = repo.path().join("TEST-ONLY-keys");
        for name in ["dev", "alice", "bob"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(keys.join(name), std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        repo.git(&["config", "gpg.format", "ssh"]);
        repo.git(&[
            "config",
            "user.signingkey",
            &keys.join("dev").display().to_string(),
        ]);
        repo
    }

    /// The TEST-ONLY key of a demo persona in the example (`dev`, `alice`, `bob`).
    pub fn example_key(&self, persona: &str) -> String {
        self.path()
            .join("TEST-ONLY-keys")
            .join(persona)
            .display()
            .to_string()
    }

    /// Copy the built guests `names` to `hooks/<name>.wasm`.
    pub fn add_guests(&self, names: &[&str]) -> &Repo {
        let hooks = self.path().join("hooks");
        std::fs::create_dir_all(&hooks).expect("mkdir");
        for name in names {
            std::fs::copy(guest(name), hooks.join(format!("{name}.wasm"))).expect("copy guest");
        }
        self
    }

    /// Copy the shipped policies into `policies/`.
    pub fn add_shipped_policies(&self) -> &Repo {
        let policies = self.path().join("policies");
        std::fs::create_dir_all(&policies).expect("mkdir");
        copy_dir(&policies_dir(), &policies);
        self
    }

    /// The repository root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `deployments/<name>` with `contents`.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> &Repo {
        self.write_file(&format!("deployments/{name}"), contents)
    }

    /// Write any file of the repository.
    pub fn write_file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Repo {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, contents).expect("write");
        self
    }

    /// Run `atmos <args>` in the repository root.
    pub fn atmos(&self, args: &[&str]) -> Run {
        atmos_in(self.path(), args)
    }

    /// Run `atmos <args>` with the external tools (terraform, helmfile, nixpacks, docker)
    /// replaced by the stand-ins in `examples/stand-ins`, which print what they were asked.
    pub fn atmos_stand_ins(&self, args: &[&str]) -> Run {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/stand-ins");
        let tools = [
            ("ATMOS_TERRAFORM_BIN", "terraform"),
            ("ATMOS_NIXPACKS_BIN", "nixpacks"),
            ("ATMOS_HELMFILE_BIN", "helmfile"),
            ("ATMOS_DOCKER_BIN", "docker"),
        ];
        let env: Vec<(&str, String)> = tools
            .iter()
            .map(|(var, tool)| (*var, dir.join(tool).display().to_string()))
            .collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.atmos_env(args, &env)
    }

    /// Run `atmos <args>` with extra environment variables.
    pub fn atmos_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = atmos_cmd(self.path());
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run atmos"))
    }

    /// Run `git <args>` in the repository; panics on failure; returns trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        git_in(self.path(), args)
    }

    /// Commit everything; returns the new commit's full sha.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// `git show-ref` lines under `refs/atmos/` and `refs/tags/atmos/`, as (sha, ref).
    pub fn atmos_refs(&self) -> Vec<(String, String)> {
        let out = Command::new("git")
            .args(["show-ref"])
            .current_dir(self.path())
            .output()
            .expect("git show-ref");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, r)| r.starts_with("refs/atmos/") || r.starts_with("refs/tags/atmos/"))
            .map(|(s, r)| (s.to_owned(), r.to_owned()))
            .collect()
    }

    /// The commit a state ref points at, via the git CLI.
    pub fn state(&self, deployment: &str, target: &str, component: &str) -> Option<String> {
        let name = format!("refs/atmos/deployments/{deployment}/{target}/{component}");
        self.atmos_refs()
            .into_iter()
            .find(|(_, r)| *r == name)
            .map(|(s, _)| s)
    }

    /// Assert what a component runs in a target, read with the git CLI.
    pub fn assert_state(
        &self,
        deployment: &str,
        target: &str,
        component: &str,
        want: Option<&str>,
    ) {
        assert_eq!(
            self.state(deployment, target, component).as_deref(),
            want,
            "state of {deployment}/{target}/{component}"
        );
    }

    /// History tags of one component (ref names), sorted.
    pub fn tags(&self, deployment: &str, target: &str, component: &str) -> Vec<String> {
        let prefix = format!("refs/tags/atmos/deployments/{deployment}/{target}/{component}/");
        let mut out: Vec<String> = self
            .atmos_refs()
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.starts_with(&prefix) && !r[prefix.len()..].contains('/'))
            .collect();
        out.sort();
        out
    }

    /// The history tags of one component that record an outcome (not the `started` intent
    /// each rollout writes before its executor runs), sorted.
    pub fn outcomes(&self, deployment: &str, target: &str, component: &str) -> Vec<String> {
        self.tags(deployment, target, component)
            .into_iter()
            .filter(|t| !self.tag_message(t).contains("\nstatus: started\n"))
            .collect()
    }

    /// The message of an annotated tag, via `git cat-file -p`, without the object header.
    pub fn tag_message(&self, tag_ref: &str) -> String {
        let raw = self.git(&["cat-file", "-p", tag_ref]);
        raw.split_once("\n\n")
            .map(|(_, m)| m.to_owned())
            .unwrap_or(raw)
    }
}

/// A command line written as one string, split on whitespace (for arguments without spaces).
pub fn args(line: &'static str) -> Vec<&'static str> {
    line.split_whitespace().collect()
}

/// Run `atmos <args>` in `dir`, without colors and without CI variables of the host.
pub fn atmos_in(dir: &Path, args: &[&str]) -> Run {
    let output = atmos_cmd(dir).args(args).output().expect("run atmos");
    Run::from(output)
}

/// The `atmos` command, ready to run in `dir`.
pub fn atmos_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atmos"));
    // The example's scripts keep the state of their pretend environments (applied
    // migrations) here: outside the private tree a rollout runs in, like a real database.
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("EXAMPLE_STATE_DIR", dir.join(".example-state"))
        .env_remove("CLICOLOR_FORCE")
        // Tests that want CI behaviour set these themselves; a CI running the suite must
        // not change what the others see.
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITLAB_CI");
    cmd
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Assert the exit code, showing the output when it differs.
    pub fn code(&self, want: i32) -> &Run {
        assert_eq!(
            self.code, want,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Assert that stdout contains every one of `parts`, showing the whole output otherwise.
    pub fn stdout_has(&self, parts: &[&str]) -> &Run {
        for p in parts {
            assert!(
                self.stdout.contains(p),
                "stdout lacks {p:?}:\n{}\nstderr:\n{}",
                self.stdout,
                self.stderr
            );
        }
        self
    }

    /// Assert that stderr contains every one of `parts`, showing the whole output otherwise.
    pub fn stderr_has(&self, parts: &[&str]) -> &Run {
        for p in parts {
            assert!(
                self.stderr.contains(p),
                "stderr lacks {p:?}:\n{}\nstdout:\n{}",
                self.stderr,
                self.stdout
            );
        }
        self
    }

    /// Parse stdout as JSON; a document with a `kind` must match its published schema
    /// (`docs/schema/output/<kind>.schema.json`).
    pub fn json(&self) -> serde_json::Value {
        let value: serde_json::Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        if let Some(kind) = value.get("kind").and_then(|k| k.as_str()) {
            check_output_schema(kind, &value);
        }
        value
    }
}

/// Validate an output document against its published schema.
pub fn check_output_schema(kind: &str, document: &serde_json::Value) {
    let mut file = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            file.push('-');
        }
        file.extend(c.to_lowercase());
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/schema/output")
        .join(format!("{file}.schema.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "no published schema for kind {kind} at {}: {e}",
                path.display()
            )
        }))
        .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{kind} output does not match {}:\n{}\n{document:#}",
        path.display(),
        errors.join("\n")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read example") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A command running in the background, its output going to files the test can watch.
pub struct Background {
    child: std::process::Child,
    dir: TempDir,
}

impl Background {
    /// Start `cmd` with its stdout and stderr captured in files.
    pub fn spawn(mut cmd: Command) -> Background {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let err = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let child = cmd.stdout(out).stderr(err).spawn().expect("spawn");
        Background { child, dir }
    }

    /// What it printed so far (stdout, then stderr).
    pub fn output(&self) -> (String, String) {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        (read("stdout"), read("stderr"))
    }

    /// Wait (at most `limit`) until its stdout or stderr contains `text`; panics with what it
    /// printed otherwise, or when it exits first.
    pub fn wait_for_output(&mut self, text: &str, limit: std::time::Duration) {
        wait_until(limit, &format!("output {text:?}"), || {
            let (out, err) = self.output();
            if out.contains(text) || err.contains(text) {
                return true;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before printing {text:?}:\n{out}\n{err}");
            }
            false
        });
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kill it with SIGKILL and reap it.
    pub fn kill(mut self) -> Run {
        self.child.kill().expect("SIGKILL");
        self.finish()
    }

    /// Wait for it to exit.
    pub fn finish(mut self) -> Run {
        let status = self.child.wait().expect("wait");
        let (stdout, stderr) = self.output();
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

/// Wait until `ready` holds, checking every 20 ms, for at most `limit`; panics naming `what`
/// when it never does. Tests wait on conditions like this, never on a fixed sleep.
pub fn wait_until(limit: std::time::Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Wait until `path` exists (a marker a script writes).
pub fn wait_for_file(path: &Path, limit: std::time::Duration) {
    wait_until(limit, &path.display().to_string(), || path.exists());
}

/// `atmos <args>` in `dir` with its clock (and its children's) moved by `offset` (`+5m`,
/// `-1h`) through `faketime` (Debian's package; `.ci/run` installs it when missing).
pub fn atmos_faketime(dir: &Path, offset: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("faketime");
    cmd.args(["-f", offset, env!("CARGO_BIN_EXE_atmos")])
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("EXAMPLE_STATE_DIR", dir.join(".example-state"))
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITLAB_CI");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(
        cmd.output()
            .expect("run faketime (install Debian's faketime package)"),
    )
}

/// Run `git <args>` in `dir` as Dev (author and committer); panics on failure; returns
/// trimmed stdout.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// Install the server guard (`atmos deployment verify --pre-receive`) as the `pre-receive`
/// hook of the bare repository `bare`.
/// A one-component deployment `svc` (a `script` applying `true`, target `dev`), committed
/// with an `atmos.yaml` naming `origin`, a bare `origin` in a second temporary folder (main
/// pushed), and that folder (which must live as long as the test).
pub fn svc_with_origin() -> (Repo, tempfile::TempDir, PathBuf) {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      api:\n        settings: {script: {apply: 'true'}}\n  targets:\n    dev: {}\n",
    );
    repo.write_file("atmos.yaml", "git:\n  remote: origin\n");
    repo.commit("svc");
    let base = tempfile::tempdir().expect("tempdir");
    git_in(
        base.path(),
        &["init", "-q", "--bare", "-b", "main", "origin.git"],
    );
    let origin = base.path().join("origin.git");
    repo.git(&["remote", "add", "origin", origin.to_str().expect("utf-8")]);
    repo.git(&["push", "-q", "origin", "HEAD:main"]);
    (repo, base, origin)
}

pub fn install_guard(bare: &Path) {
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nexec '{}' deployment verify --pre-receive\n",
            env!("CARGO_BIN_EXE_atmos")
        ),
    )
    .expect("hook");
    crate::rollout::make_executable(&hook);
}
