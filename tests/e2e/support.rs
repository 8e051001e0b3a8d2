//! Shared fixtures: a throwaway git repository with deployment files, and a way to run the
//! real binary in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Path of the example shipped in the repository.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/payment-service")
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
        std::fs::create_dir(dir.path().join("deployments")).expect("mkdir");
        Repo { dir }
    }

    /// A copy of the shipped example, as a git repository.
    pub fn example() -> Repo {
        let repo = Repo::new();
        copy_dir(&example_dir(), repo.path());
        repo
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
}

/// Run `atmos <args>` in `dir`, without colors and without CI variables of the host.
pub fn atmos_in(dir: &Path, args: &[&str]) -> Run {
    let output = atmos_cmd(dir).args(args).output().expect("run atmos");
    Run::from(output)
}

/// The `atmos` command, ready to run in `dir`.
pub fn atmos_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atmos"));
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE");
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

    /// Parse stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
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
