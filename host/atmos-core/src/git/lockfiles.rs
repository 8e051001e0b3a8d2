//! Lock files git (and libgit2) leave beside a ref while they update it: `<ref>.lock`, and
//! `packed-refs.lock` while the packed refs are rewritten. A process killed at the wrong
//! moment leaves one behind, and every later update of that ref fails — after a rollout's
//! executors ran. So a rollout looks for the lock files of the refs it will write before
//! anything runs ([`find`]), and removes one only when it is provably stale: no process on
//! this machine holds it open and it was last written more than [`STALE_AFTER`] ago (git
//! holds a ref's lock for one update; a lock file with no open handle is between a write and
//! a rename for milliseconds). Where it cannot be proven — a process holds it, it is recent,
//! or other users' processes cannot be inspected — the rollout stops with the command that
//! removes it.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How old a lock file nobody holds open must be before it is removed without asking.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// One lock file found beside a ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockFile {
    /// Its path.
    pub path: PathBuf,
    /// How long ago it was last written (`None` when the clock or the file cannot say).
    pub age: Option<Duration>,
    /// Which processes hold it open.
    pub holders: Holders,
}

/// The processes that hold a lock file open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holders {
    /// None, with every process on this machine inspected.
    Nobody,
    /// These processes (pid, command name).
    Processes(Vec<(u32, String)>),
    /// Not known: why (no `/proc`, other users' processes not readable).
    Unknown(String),
}

impl LockFile {
    /// Whether removing it is safe: nobody holds it and it is older than [`STALE_AFTER`].
    pub fn stale(&self) -> bool {
        self.holders == Holders::Nobody && self.age.is_some_and(|a| a >= STALE_AFTER)
    }

    /// What is known of it, for a message: "written 3s ago, held open by pid 4711 (git)".
    pub fn describe(&self) -> String {
        let age = match self.age {
            Some(a) => format!("written {}s ago", a.as_secs()),
            None => "of unknown age".to_owned(),
        };
        let who = match &self.holders {
            Holders::Nobody => "no process holds it open".to_owned(),
            Holders::Processes(p) => format!(
                "held open by {}",
                p.iter()
                    .map(|(pid, name)| format!("pid {pid} ({name})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Holders::Unknown(why) => format!("whether a process holds it is unknown ({why})"),
        };
        format!("{age}, {who}")
    }

    /// The command that removes it, quoted for a POSIX shell.
    pub fn remove_command(&self) -> String {
        format!(
            "rm -f '{}'",
            self.path.display().to_string().replace('\'', r"'\''")
        )
    }
}

/// The lock files beside the refs a rollout of `deployment`/`target` writes in the repository
/// whose common git folder is `git_dir`: its state refs, record chains and lease, the
/// deployment's notes, and `packed-refs.lock`.
pub fn find(git_dir: &Path, deployment: &str, target: &str) -> Vec<LockFile> {
    let mut paths = Vec::new();
    let packed = git_dir.join("packed-refs.lock");
    if packed.exists() {
        paths.push(packed);
    }
    for folder in ["refs/atmos/deployments", "refs/atmos/chains"] {
        collect(
            &git_dir.join(folder).join(deployment).join(target),
            &mut paths,
            0,
        );
    }
    let lease = git_dir
        .join("refs/atmos/locks")
        .join(deployment)
        .join(format!("{target}.lock"));
    if lease.exists() {
        paths.push(lease);
    }
    let notes = git_dir.join("refs/notes/atmos").join(deployment);
    if let Ok(entries) = std::fs::read_dir(&notes) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "lock") {
                paths.push(e.path());
            }
        }
    }
    if paths.is_empty() {
        return Vec::new();
    }
    let open = open_files();
    paths
        .into_iter()
        .map(|path| {
            let age = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            let holders = match &open {
                Ok(files) => {
                    let p: Vec<(u32, String)> = files
                        .iter()
                        .filter(|(_, _, f)| *f == real)
                        .map(|(pid, name, _)| (*pid, name.clone()))
                        .collect();
                    if p.is_empty() {
                        Holders::Nobody
                    } else {
                        Holders::Processes(p)
                    }
                }
                Err(why) => Holders::Unknown(why.clone()),
            };
            LockFile { path, age, holders }
        })
        .collect()
}

/// `*.lock` files under `dir` (component names may hold `/`: a few levels deep).
fn collect(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if depth < 8 {
                collect(&path, out, depth + 1);
            }
        } else if path.extension().is_some_and(|x| x == "lock") {
            out.push(path);
        }
    }
}

/// Every file some process on this machine holds open: (pid, command name, path), or why
/// that cannot be known.
fn open_files() -> Result<Vec<(u32, String, PathBuf)>, String> {
    let proc = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
    let mut out = Vec::new();
    for entry in proc.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let fds = match std::fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            // The process ended meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("the open files of pid {pid}: {e}")),
        };
        let name = std::fs::read_to_string(entry.path().join("comm"))
            .map(|n| n.trim().to_owned())
            .unwrap_or_default();
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                out.push((pid, name.clone(), target));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, seconds: u64) {
        let f = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(seconds))
            .expect("mtime");
    }

    #[test]
    fn finds_the_lock_files_of_one_target_and_judges_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = dir.path();
        let state = g.join("refs/atmos/deployments/svc/dev");
        std::fs::create_dir_all(state.join("ecs")).expect("mkdir");
        std::fs::create_dir_all(g.join("refs/atmos/deployments/svc/prod")).expect("mkdir");
        std::fs::write(state.join("a.lock"), "x").expect("write");
        std::fs::write(state.join("ecs/api.lock"), "x").expect("write");
        std::fs::write(state.join("b"), "x").expect("write");
        std::fs::write(g.join("refs/atmos/deployments/svc/prod/a.lock"), "x").expect("write");
        let mut found: Vec<PathBuf> = find(g, "svc", "dev").into_iter().map(|l| l.path).collect();
        found.sort();
        assert_eq!(
            found,
            vec![state.join("a.lock"), state.join("ecs/api.lock")]
        );

        // Nobody holds it and it is old: stale. Recent, or held open: not.
        age(&state.join("a.lock"), 600);
        let old = find(g, "svc", "dev")
            .into_iter()
            .find(|l| l.path.ends_with("a.lock"))
            .expect("found");
        assert_eq!(old.holders, Holders::Nobody);
        assert!(old.stale(), "{}", old.describe());
        let held = std::fs::File::open(state.join("a.lock")).expect("open");
        let now = find(g, "svc", "dev")
            .into_iter()
            .find(|l| l.path.ends_with("a.lock"))
            .expect("found");
        assert!(
            matches!(&now.holders, Holders::Processes(p) if p.iter().any(|(pid, _)| *pid == std::process::id())),
            "{}",
            now.describe()
        );
        assert!(!now.stale());
        drop(held);
        let recent = find(g, "svc", "dev")
            .into_iter()
            .find(|l| l.path.ends_with("api.lock"))
            .expect("found");
        assert!(!recent.stale(), "{}", recent.describe());
        assert_eq!(
            recent.remove_command(),
            format!("rm -f '{}'", state.join("ecs/api.lock").display())
        );
    }
}
