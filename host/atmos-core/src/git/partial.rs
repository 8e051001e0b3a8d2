//! Partial clones (`git clone --filter=blob:none`, common in CI): a fetch brings the archive
//! ledger's and the notes' commits and trees but not their blobs, a commit other than the
//! one checked out has none of its files, and libgit2 does not fetch a missing object when
//! it is read — so reads of the ledger or of an approval would find nothing, and a rollout of
//! an older commit could not write its files. The objects atmos needs are fetched
//! explicitly, in one request each time, the way git itself fills a partial clone: after each
//! fetch everything reachable from the ledgers and notes, and before a commit's files are
//! written or read, that commit's tree.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::remote::{Remote, RemoteError, ledger_tracking_prefix, remote_notes_prefix};
use super::{GitError, GitRepo};
use crate::contracts::layout::{LEDGER_PREFIX, NOTES_PREFIX};

/// Run `git` in `dir`, feeding `input`; stdout, or what git said on failure.
fn run(dir: &Path, args: &[&str], input: Option<&str>) -> Result<Vec<u8>, String> {
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The objects reachable from `tips` (`--no-walk`: the tips' own trees only) that `dir`'s
/// repository lacks.
fn missing(dir: &Path, tips: &[String], no_walk: bool) -> Result<Vec<String>, String> {
    let mut args = vec!["rev-list", "--objects", "--missing=print"];
    if no_walk {
        args.push("--no-walk");
    }
    args.extend(tips.iter().map(String::as_str));
    let listed = run(dir, &args, None)?;
    Ok(String::from_utf8_lossy(&listed)
        .lines()
        .filter_map(|l| l.strip_prefix('?'))
        .map(str::to_owned)
        .collect())
}

/// Fetch `objects` from `remote` in one request: what git runs to fill a partial clone.
fn fetch_objects(dir: &Path, remote: &str, objects: &[String]) -> Result<(), String> {
    let args = [
        "-c",
        "fetch.negotiationAlgorithm=noop",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--recurse-submodules=no",
        "--filter=blob:none",
        "--stdin",
        remote,
    ];
    run(dir, &args, Some(&(objects.join("\n") + "\n"))).map(|_| ())
}

impl GitRepo {
    /// The remote a partial clone takes its missing objects from (`remote.<name>.promisor`,
    /// or the older `extensions.partialclone`); `None` in a full clone.
    pub fn promisor(&self) -> Option<String> {
        let config = self.raw().config().ok()?;
        self.remote_names()
            .into_iter()
            .find(|n| {
                config
                    .get_bool(&format!("remote.{n}.promisor"))
                    .unwrap_or(false)
            })
            .or_else(|| self.config_string("extensions.partialclone"))
    }

    /// In a partial clone, fetch what the files of commit `sha` need and the clone lacks (a
    /// no-op elsewhere); the number of objects fetched.
    pub fn fill_commit(&self, sha: &str) -> Result<usize, GitError> {
        let (Some(remote), Some(dir)) = (self.promisor(), self.workdir()) else {
            return Ok(0);
        };
        let failed = |detail: String| GitError::Partial {
            commit: sha.to_owned(),
            remote: remote.clone(),
            detail,
        };
        let lacking = missing(dir, &[sha.to_owned()], true).map_err(failed)?;
        if !lacking.is_empty() {
            fetch_objects(dir, &remote, &lacking).map_err(failed)?;
        }
        Ok(lacking.len())
    }
}

impl Remote {
    /// Fetch every object reachable from the ledgers and notes (local and fetched) that
    /// this clone lacks, when it is a partial clone; the number fetched.
    pub(super) fn fetch_missing_objects(&self) -> Result<usize, RemoteError> {
        // Read in process: a fetch of a clone that is not partial starts no git for this.
        let key = format!("remote.{}.promisor", self.name);
        let partial = git2::Repository::open(&self.git_dir)
            .and_then(|r| r.config())
            .map(|c| {
                c.get_bool(&key).unwrap_or(false)
                    || c.get_string("extensions.partialclone")
                        .is_ok_and(|v| !v.is_empty())
            })
            .unwrap_or(true);
        if !partial {
            return Ok(0);
        }
        let refs = self.git_output(&[
            "for-each-ref",
            "--format=%(objectname)",
            LEDGER_PREFIX,
            NOTES_PREFIX,
            &ledger_tracking_prefix(&self.name),
            &remote_notes_prefix(&self.name),
        ])?;
        let tips: Vec<String> = String::from_utf8_lossy(&refs)
            .lines()
            .map(str::to_owned)
            .collect();
        if tips.is_empty() {
            return Ok(0);
        }
        let failed = |detail: String| RemoteError::Git {
            args: "fetch --stdin (the objects a partial clone lacks)".into(),
            detail,
        };
        let lacking = missing(&self.workdir, &tips, false).map_err(failed)?;
        if !lacking.is_empty() {
            fetch_objects(&self.workdir, &self.name, &lacking).map_err(|e| {
                failed(format!(
                    "{} object(s) of the ledgers and notes are missing from this partial clone and could not be fetched: {e}",
                    lacking.len()
                ))
            })?;
        }
        Ok(lacking.len())
    }
}
