//! The shared store: a git remote, reached through the system `git` (which carries the user's
//! credentials and speaks every transport). Reading mirrors the remote's `refs/atmos/*`,
//! deployment tags and notes into the local repository (notes merged, never replaced);
//! writing pushes with `--atomic` and a `--force-with-lease` per ref, so the remote takes
//! everything or nothing, and nothing someone else moved since we read it is overwritten.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::contracts::layout::{
    CHAIN_PREFIX as CHAINS, LEDGER_PREFIX as LEDGER, LOCK_PREFIX as LOCKS, NOTES_PREFIX as NOTES,
    STATE_PREFIX as STATE, TAG_PREFIX as TAGS,
};

/// What a ref must hold on the remote for a push to go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The ref must not exist (create only).
    Absent,
    /// The ref must hold exactly this object.
    Value(String),
}

/// One ref to set (or delete) on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// Full ref name.
    pub name: String,
    /// Local object to push (`None` deletes).
    pub new: Option<String>,
    /// Compare-and-swap condition.
    pub expect: Expect,
}

/// Why talking to the remote failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The remote is not configured in this repository.
    #[error("no git remote named `{remote}` in this repository")]
    Unknown {
        /// Its name.
        remote: String,
    },
    /// It could not be reached.
    #[error("cannot reach git remote `{remote}`: {detail}")]
    Unreachable {
        /// Its name.
        remote: String,
        /// What git said.
        detail: String,
    },
    /// A compare-and-swap failed: someone else moved a ref since we read it.
    #[error("the remote refused the update: {detail}")]
    Rejected {
        /// What git said.
        detail: String,
    },
    /// Any other git failure.
    #[error("git {args}: {detail}")]
    Git {
        /// The command.
        args: String,
        /// What git said.
        detail: String,
    },
}

impl crate::error::Actionable for RemoteError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            RemoteError::Unknown { .. } => crate::exit::Exit::Usage,
            _ => crate::exit::Exit::Failed,
        }
    }

    /// Unreachable or unknown is the user's to fix, with `--offline` as the way to work
    /// without the remote.
    fn hint(&self) -> Option<String> {
        match self {
            RemoteError::Unknown { remote } => Some(format!(
                "add it (git remote add {remote} <url>), fix atmos.yaml git.remote, or pass --offline"
            )),
            RemoteError::Unreachable { .. } => Some(
                "check the network and your credentials, or pass --offline to work on the local repository only (records are pushed by a later run)".to_owned(),
            ),
            RemoteError::Rejected { .. } => {
                Some("someone else changed the remote meanwhile; run the command again".to_owned())
            }
            RemoteError::Git { .. } => None,
        }
    }
}

/// The file whose time says when this clone last fetched `remote`'s records.
fn fetched_marker(git_dir: &Path, remote: &str) -> PathBuf {
    git_dir.join("atmos").join("fetched").join(remote)
}

/// Where notes of a remote are fetched before being merged into the local ones.
pub fn remote_notes_prefix(remote: &str) -> String {
    format!("refs/notes/atmos-remote/{remote}/")
}

/// Where a remote's archive ledgers are fetched before the local ones move to them.
pub fn ledger_tracking_prefix(remote: &str) -> String {
    format!("refs/atmos-remote/{remote}/ledger/")
}

/// A configured remote of the repository at `workdir`.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Remote name (`origin`).
    pub name: String,
    /// Where `git` runs.
    pub workdir: PathBuf,
    /// The repository's git directory (for records waiting to be published).
    pub(super) git_dir: PathBuf,
    /// What publishing earlier runs' records did, for the caller to report.
    pub(super) notes: std::cell::RefCell<Vec<String>>,
    /// What a fetch found wrong on the remote and did not take (a rewound ledger).
    warnings: std::cell::RefCell<Vec<String>>,
    /// The one deployment a workflow works on: fetches bring only its refs, tags and notes
    /// (and locks), not every deployment's.
    pub scope: Option<String>,
    /// Within the deployment, the one target this remote holds (a target with its own
    /// remote): fetches bring only that target's refs, tags and lock.
    pub only_target: Option<String>,
    /// Targets (`<deployment>/<target>`) whose records live on another remote: never
    /// fetched from this one (a copy left here from before they moved would put their state
    /// back).
    pub excluded_targets: Vec<String>,
}

/// The locks a fetch mirrors: the remote's, fetched into `scratch` (emptied first), copied
/// to `local`.
#[derive(Debug)]
struct LockMirror {
    local: String,
    scratch: String,
    /// Lock refs of targets kept on other remotes: never touched here.
    excluded: Vec<String>,
    specs: Vec<String>,
}

fn tail(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

impl Remote {
    /// The remote `name` of the repository at `workdir`, if git knows it.
    pub fn open(workdir: &Path, name: &str) -> Result<Remote, RemoteError> {
        let mut remote = Remote {
            name: name.to_owned(),
            workdir: workdir.to_owned(),
            git_dir: workdir.join(".git"),
            notes: std::cell::RefCell::new(Vec::new()),
            warnings: std::cell::RefCell::new(Vec::new()),
            scope: None,
            only_target: None,
            excluded_targets: Vec::new(),
        };
        // Read in process (every command that syncs opens its remote).
        let unknown = || RemoteError::Unknown {
            remote: name.to_owned(),
        };
        let repo = git2::Repository::discover(workdir).map_err(|_| unknown())?;
        if repo.find_remote(name).is_err() {
            return Err(unknown());
        }
        remote.git_dir = repo.path().to_owned();
        Ok(remote)
    }

    fn git(&self, args: &[&str]) -> Result<Output, RemoteError> {
        Command::new("git")
            .env_remove(crate::signing::KEY_ENV)
            .args(args)
            .current_dir(&self.workdir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| RemoteError::Git {
                args: args.join(" "),
                detail: e.to_string(),
            })
    }

    /// This clone's repository, read in process (a fetch's follow-up work lists and compares
    /// refs without starting a git process per question).
    fn local(&self) -> Result<super::GitRepo, RemoteError> {
        super::GitRepo::discover(&self.workdir).map_err(|e| RemoteError::Git {
            args: format!("open {}", self.workdir.display()),
            detail: e.to_string(),
        })
    }

    /// The local refs under each of `prefixes`: (name, object id).
    fn local_refs(
        &self,
        git: &super::GitRepo,
        prefixes: &[&str],
    ) -> Result<Vec<(String, String)>, RemoteError> {
        let mut out = Vec::new();
        for prefix in prefixes {
            let listed = git.refs().list(prefix).map_err(|e| RemoteError::Git {
                args: format!("list {prefix}"),
                detail: e.to_string(),
            })?;
            out.extend(listed.into_iter().map(|e| (e.name, e.oid)));
        }
        Ok(out)
    }

    /// Run git with `args`; stdout on success, the classified failure otherwise.
    pub(super) fn git_output(&self, args: &[&str]) -> Result<Vec<u8>, RemoteError> {
        let out = self.git(args)?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(self.classify(args, &out))
        }
    }

    fn classify(&self, args: &[&str], out: &Output) -> RemoteError {
        let detail = tail(out);
        let lower = detail.to_lowercase();
        if lower.contains("stale info")
            || lower.contains("rejected")
            || lower.contains("atomic push failed")
            || lower.contains("fetch first")
        {
            RemoteError::Rejected { detail }
        } else if lower.contains("could not read from remote")
            || lower.contains("unable to connect")
            || lower.contains("connection refused")
            || lower.contains("could not resolve host")
            || lower.contains("does not appear to be a git repository")
            || lower.contains("unable to look up")
            || lower.contains("timed out")
        {
            RemoteError::Unreachable {
                remote: self.name.clone(),
                detail,
            }
        } else {
            RemoteError::Git {
                args: args.join(" "),
                detail,
            }
        }
    }

    /// The same remote, fetching only `deployment`'s records.
    pub fn for_deployment(mut self, deployment: &str) -> Remote {
        self.scope = Some(deployment.to_owned());
        self
    }

    /// The same remote, holding only `target` of `deployment` (the target's own remote).
    pub fn for_target(mut self, deployment: &str, target: &str) -> Remote {
        self.scope = Some(deployment.to_owned());
        self.only_target = Some(target.to_owned());
        self
    }

    /// The same remote, never fetching the records of `targets` (`<deployment>/<target>`,
    /// kept on their own remotes).
    pub fn excluding(mut self, targets: Vec<String>) -> Remote {
        self.excluded_targets = targets;
        self
    }

    /// What a fetch brings: state refs, history tags, the archive ledger and notes — of the
    /// scoped deployment, or of every deployment. Git sends these prefixes to the server (protocol v2), so a
    /// scoped fetch never lists the other deployments' refs.
    pub fn refspecs(&self) -> Vec<String> {
        let notes = remote_notes_prefix(&self.name);
        if let (Some(d), Some(t)) = (&self.scope, &self.only_target) {
            // Notes are per deployment and merged, never replaced: safe from every remote.
            return vec![
                format!("+{STATE}/{d}/{t}/*:{STATE}/{d}/{t}/*"),
                format!("+{CHAINS}/{d}/{t}/*:{CHAINS}/{d}/{t}/*"),
                format!("+refs/tags/{TAGS}/{d}/{t}/*:refs/tags/{TAGS}/{d}/{t}/*"),
                format!("+{NOTES}/{d}/*:{notes}{d}/*"),
            ];
        }
        let mut specs = match &self.scope {
            Some(d) => vec![
                format!("+{STATE}/{d}/*:{STATE}/{d}/*"),
                format!("+{CHAINS}/{d}/*:{CHAINS}/{d}/*"),
                format!("+refs/tags/{TAGS}/{d}/*:refs/tags/{TAGS}/{d}/*"),
                // A pattern, because git refuses a fetch naming one ref the remote lacks (a
                // deployment never archived); it also brings deployments named `<d>-…`.
                // Into a tracking ref: the local ledger only moves forward (merge_ledgers).
                format!("+{LEDGER}/{d}*:{}{d}*", ledger_tracking_prefix(&self.name)),
                format!("+{NOTES}/{d}/*:{notes}{d}/*"),
            ],
            None => vec![
                format!("+{STATE}/*:{STATE}/*"),
                format!("+{CHAINS}/*:{CHAINS}/*"),
                format!("+refs/tags/{TAGS}/*:refs/tags/{TAGS}/*"),
                format!("+{LEDGER}/*:{}*", ledger_tracking_prefix(&self.name)),
                format!("+{NOTES}/*:{notes}*"),
            ],
        };
        for dt in &self.excluded_targets {
            specs.push(format!("^{STATE}/{dt}/*"));
            specs.push(format!("^{CHAINS}/{dt}/*"));
            specs.push(format!("^refs/tags/{TAGS}/{dt}/*"));
        }
        specs
    }

    /// Mirror the remote's deployment state: state refs, history tags (of the scoped
    /// deployment, or all), locks (pruned), and notes (merged into the local ones: approvals
    /// by union, SBOMs keeping the remote's document when both sides wrote one for the same
    /// commit).
    pub fn fetch(&self) -> Result<(), RemoteError> {
        self.fetch_refs()?;
        self.pack_loose_tags();
        // Records kept here that have not reached the remote take their place on it now.
        self.publish_pending()?;
        self.mark_fetched();
        Ok(())
    }

    /// [`Remote::fetch`] without publishing what is kept: for a retry in the middle of a
    /// publish (whose own batch is kept until it is done).
    fn fetch_refs(&self) -> Result<(), RemoteError> {
        // State and history are never pruned: records that exist only here stay (and the
        // batches kept for this remote are published by `fetch`, on what it holds now).
        self.drop_stray_notes()?;
        let mut specs = self.refspecs();
        // The locks come in the same fetch, into a namespace emptied first, so that what it
        // holds afterwards is exactly the remote's locks (mirrored below); a target on its
        // own remote has one lock ref, fetched on its own.
        let locks = self.lock_mirror();
        if let Some(m) = &locks {
            self.clear_local(&m.scratch)?;
            specs.extend(m.specs.iter().cloned());
        }
        let mut args = vec!["fetch", "--quiet", "--no-tags", self.name.as_str()];
        args.extend(specs.iter().map(String::as_str));
        let out = self.git(&args)?;
        if !out.status.success() {
            return Err(self.classify(&args, &out));
        }
        match &locks {
            Some(m) => self.mirror_locks(m)?,
            None => self.fetch_locks()?,
        }
        // A partial clone fetched the ledgers' and notes' trees, not their contents.
        self.fetch_missing_objects()?;
        self.merge_ledgers()?;
        self.merge_notes()?;
        Ok(())
    }

    /// Add each of `specs` to `remote.<name>.fetch` unless it is there; the ones added.
    pub fn add_fetch_refspecs(&self, specs: &[String]) -> Result<Vec<String>, RemoteError> {
        let key = format!("remote.{}.fetch", self.name);
        // `--get-all` exits 1 when the key has no value: nothing there yet.
        let existing = String::from_utf8_lossy(&self.git(&["config", "--get-all", &key])?.stdout)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        let mut added = Vec::new();
        for spec in specs.iter().filter(|s| !existing.contains(s)) {
            self.git_output(&["config", "--add", &key, spec])?;
            added.push(spec.clone());
        }
        Ok(added)
    }

    /// When this clone last fetched the remote's records (any scope), if ever.
    pub fn last_fetched(git_dir: &Path, remote: &str) -> Option<std::time::SystemTime> {
        std::fs::metadata(fetched_marker(git_dir, remote))
            .and_then(|m| m.modified())
            .ok()
    }

    fn mark_fetched(&self) {
        let marker = fetched_marker(&self.git_dir, &self.name);
        if let Some(dir) = marker.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(
            &marker,
            crate::contracts::layout::rfc3339(jiff::Timestamp::now()),
        );
    }

    /// Mirror the remote's locks exactly (a released lock disappears here too).
    pub fn fetch_locks(&self) -> Result<(), RemoteError> {
        if let (Some(d), Some(t)) = (&self.scope, &self.only_target) {
            return self.fetch_one_lock(&format!("{LOCKS}/{d}/{t}"));
        }
        let spec = match &self.scope {
            Some(d) => format!("+{LOCKS}/{d}/*:{LOCKS}/{d}/*"),
            None => format!("+{LOCKS}/*:{LOCKS}/*"),
        };
        let mut args = vec![
            "fetch",
            "--quiet",
            "--no-tags",
            "--prune",
            self.name.as_str(),
            spec.as_str(),
        ];
        let excluded: Vec<String> = self
            .excluded_targets
            .iter()
            .map(|dt| format!("^{LOCKS}/{dt}"))
            .collect();
        args.extend(excluded.iter().map(String::as_str));
        let out = self.git(&args)?;
        if !out.status.success() {
            return Err(self.classify(&args, &out));
        }
        Ok(())
    }

    /// Pack the refs when a fetch left many history tags loose (a first fetch of a long
    /// history writes one file per tag): every later git command and every read of atmos
    /// lists them, and a loose ref is a file read where a packed one is a line found by
    /// binary search. Best effort: git's own maintenance would pack them eventually.
    fn pack_loose_tags(&self) {
        const LOOSE: usize = 1000;
        let Ok(repo) = git2::Repository::open(&self.git_dir) else {
            return;
        };
        let mut dir = repo.commondir().join("refs/tags").join(TAGS);
        if let Some(d) = &self.scope {
            dir = dir.join(d);
        }
        let mut count = 0;
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(e.path()),
                    Ok(_) => count += 1,
                    Err(_) => {}
                }
            }
            if count >= LOOSE {
                let _ = self.git(&["pack-refs", "--all"]);
                return;
            }
        }
    }

    /// Where a fetch brings the remote's locks to mirror them: `None` for a target on its own
    /// remote (one lock ref, fetched on its own).
    fn lock_mirror(&self) -> Option<LockMirror> {
        if self.only_target.is_some() {
            return None;
        }
        // One namespace per process: two atmos in one clone never empty each other's.
        let base = format!(
            "refs/atmos-remote/{}/locks/{}",
            self.name,
            std::process::id()
        );
        let (local, scratch) = match &self.scope {
            Some(d) => (format!("{LOCKS}/{d}/"), format!("{base}/{d}/")),
            None => (format!("{LOCKS}/"), format!("{base}/")),
        };
        let mut specs = vec![format!("+{local}*:{scratch}*")];
        specs.extend(
            self.excluded_targets
                .iter()
                .map(|dt| format!("^{LOCKS}/{dt}")),
        );
        Some(LockMirror {
            local,
            scratch,
            excluded: self
                .excluded_targets
                .iter()
                .map(|dt| format!("{LOCKS}/{dt}"))
                .collect(),
            specs,
        })
    }

    /// Delete every local ref under `prefix` (one transaction).
    fn clear_local(&self, prefix: &str) -> Result<(), RemoteError> {
        let git = self.local()?;
        let names = self.local_refs(&git, &[prefix])?;
        if names.is_empty() {
            return Ok(());
        }
        let input: String = names.iter().map(|(n, _)| format!("delete {n}\n")).collect();
        self.update_refs(&input)
    }

    /// Make the local locks in scope exactly the ones the fetch brought.
    fn mirror_locks(&self, m: &LockMirror) -> Result<(), RemoteError> {
        let git = self.local()?;
        let there: std::collections::BTreeMap<String, String> = self
            .local_refs(&git, &[&m.scratch])?
            .into_iter()
            .map(|(n, o)| (format!("{}{}", m.local, &n[m.scratch.len()..]), o))
            .collect();
        let here: std::collections::BTreeMap<String, String> = self
            .local_refs(&git, &[&m.local])?
            .into_iter()
            .filter(|(n, _)| !m.excluded.contains(n))
            .collect();
        let mut input = String::new();
        for (name, oid) in &there {
            if here.get(name) != Some(oid) {
                input.push_str(&format!("update {name} {oid}\n"));
            }
        }
        for (name, oid) in &here {
            if !there.contains_key(name) {
                input.push_str(&format!("delete {name} {oid}\n"));
            }
        }
        // This process's namespace goes in the same transaction.
        for name in there.keys() {
            input.push_str(&format!("delete {}{}\n", m.scratch, &name[m.local.len()..]));
        }
        if input.is_empty() {
            return Ok(());
        }
        self.update_refs(&input)
    }

    /// `git update-ref --stdin` with `input`.
    fn update_refs(&self, input: &str) -> Result<(), RemoteError> {
        use std::io::Write as _;
        let failed = |e: std::io::Error| RemoteError::Git {
            args: "update-ref --stdin".into(),
            detail: e.to_string(),
        };
        let mut child = Command::new("git")
            .args(["update-ref", "--stdin"])
            .current_dir(&self.workdir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(failed)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).map_err(failed)?;
        }
        let out = child.wait_with_output().map_err(failed)?;
        if !out.status.success() {
            return Err(self.classify(&["update-ref", "--stdin"], &out));
        }
        Ok(())
    }

    /// What the fetches so far found wrong on the remote and did not take.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.borrow_mut())
    }

    /// Mirror one lock ref exactly (git refuses to fetch one named ref the remote lacks, and
    /// a pattern would prune the locks of other targets sharing its name as a prefix).
    fn fetch_one_lock(&self, name: &str) -> Result<(), RemoteError> {
        let there = self.remote_value(name)?;
        let out = match &there {
            Some(_) => {
                let spec = format!("+{name}:{name}");
                self.git(&["fetch", "--quiet", "--no-tags", &self.name, &spec])?
            }
            None => self.git(&["update-ref", "-d", name])?,
        };
        if !out.status.success() {
            return Err(self.classify(&["fetch", name], &out));
        }
        Ok(())
    }

    /// Move each local archive ledger to the remote's when the remote's extends it (a
    /// descendant keeping every archived record); otherwise keep the local one and say so: a
    /// ledger the remote rewound or rewrote must not take archived records away from here.
    fn merge_ledgers(&self) -> Result<(), RemoteError> {
        let prefix = ledger_tracking_prefix(&self.name);
        let git = self.local()?;
        let fetched_refs = self.local_refs(&git, &[&prefix])?;
        for (fetched, oid) in &fetched_refs {
            let oid = oid.as_str();
            let d = &fetched[prefix.len()..];
            let local_name = format!("{LEDGER}/{d}");
            let local = git
                .refs()
                .find(&local_name)
                .map_err(|e| RemoteError::Git {
                    args: format!("read {local_name}"),
                    detail: e.to_string(),
                })?
                .map(|e| e.oid);
            let moves = match &local {
                None => true,
                Some(l) if l == oid => false,
                Some(l) => self.ledger_extends(d, l, oid)?,
            };
            if moves {
                let mut args = vec!["update-ref", local_name.as_str(), oid];
                if let Some(l) = &local {
                    args.push(l);
                }
                let out = self.git(&args)?;
                if !out.status.success() {
                    return Err(self.classify(&args, &out));
                }
            } else if local.as_deref() != Some(oid) {
                self.warnings.borrow_mut().push(format!(
                    "the archive ledger of {d} on {} does not extend this clone's (rewound or rewritten there); this clone keeps its own — run `atmos deployment verify {d}`",
                    self.name
                ));
            }
        }
        Ok(())
    }

    /// True when ledger commit `new` descends from `old` and holds every record `old` holds:
    /// every line of the files that differ between them is still there (the files that do
    /// not differ hold the same lines), so the check reads what changed, not the history.
    fn ledger_extends(&self, d: &str, old: &str, new: &str) -> Result<bool, RemoteError> {
        let failed = |e: super::GitError| RemoteError::Git {
            args: format!("read the ledger of {d}"),
            detail: e.to_string(),
        };
        let git = self.local()?;
        if !git.is_ancestor(old, new).map_err(failed)? {
            return Ok(false);
        }
        let changes = git.ledger_changes(Some(old), new, d).map_err(failed)?;
        Ok(changes.dropped().is_none())
    }

    /// Merge every fetched notes ref into its local counterpart.
    /// Remove refs that are no notes ref of atmos's layout but sit where one goes (a
    /// `refs/notes/atmos/<d>/approvals/x` pushed to a remote without the guard): in this
    /// clone's copy of the remote's notes, and below its own notes refs, where they would
    /// block the real ones for good. Said, never silent.
    fn drop_stray_notes(&self) -> Result<(), RemoteError> {
        let tracking = remote_notes_prefix(&self.name);
        let local = "refs/notes/atmos/";
        let listed = self.local_refs(&self.local()?, &[&tracking, local])?;
        let mut gone = Vec::new();
        for (name, _) in &listed {
            let name = name.as_str();
            let rest = name
                .strip_prefix(tracking.as_str())
                .or_else(|| name.strip_prefix(local))
                .unwrap_or(name);
            if crate::contracts::layout::is_notes_ref(rest) {
                continue;
            }
            let out = self.git(&["update-ref", "-d", name])?;
            if out.status.success() {
                gone.push(name.to_owned());
            }
        }
        if !gone.is_empty() {
            self.notes.borrow_mut().push(format!(
                "removed {} ref{} that {} no atmos notes ref but blocked one: {} (the server's guard refuses them; docs/verify.md#repair)",
                gone.len(),
                crate::plural::s(gone.len()),
                if gone.len() == 1 { "is" } else { "are" },
                gone.join(", ")
            ));
        }
        Ok(())
    }

    fn merge_notes(&self) -> Result<(), RemoteError> {
        let prefix = remote_notes_prefix(&self.name);
        let git = self.local()?;
        let fetched_refs = self.local_refs(&git, &[&prefix])?;
        let held: std::collections::HashMap<String, String> = self
            .local_refs(&git, &["refs/notes/atmos/"])?
            .into_iter()
            .collect();
        for (fetched, oid) in &fetched_refs {
            let (fetched, oid) = (fetched.as_str(), oid.as_str());
            // Only atmos's notes refs are merged into this clone's.
            if !crate::contracts::layout::is_notes_ref(&fetched[prefix.len()..]) {
                continue;
            }
            let local = format!("refs/notes/atmos/{}", &fetched[prefix.len()..]);
            let mine = held.get(&local);
            // Nothing to merge when this clone's notes already hold the fetched ones (the
            // same commit, or one that descends from it): a no-op fetch starts no merge.
            if let Some(mine) = mine
                && (mine == oid || git.is_ancestor(oid, mine).unwrap_or(false))
            {
                continue;
            }
            if mine.is_none() {
                let out = self.git(&["update-ref", &local, oid])?;
                if !out.status.success() {
                    return Err(self.classify(&["update-ref"], &out));
                }
                continue;
            }
            let strategy = if local.ends_with("/sbom") {
                "theirs"
            } else {
                "cat_sort_uniq"
            };
            let args = [
                "notes",
                "--ref",
                local.as_str(),
                "merge",
                "--quiet",
                "-s",
                strategy,
                fetched,
            ];
            let out = self.git(&args)?;
            if !out.status.success() {
                return Err(self.classify(&args, &out));
            }
        }
        Ok(())
    }

    /// The object a ref holds on the remote now (`None` when absent).
    pub fn remote_value(&self, name: &str) -> Result<Option<String>, RemoteError> {
        let args = ["ls-remote", self.name.as_str(), name];
        let out = self.git(&args)?;
        if !out.status.success() {
            return Err(self.classify(&args, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let (oid, r) = l.split_once('\t')?;
            (r == name).then(|| oid.to_owned())
        }))
    }

    /// The refs the remote holds matching any of `patterns` (full names or globs), by name.
    pub fn list(
        &self,
        patterns: &[String],
    ) -> Result<std::collections::BTreeMap<String, String>, RemoteError> {
        let mut args = vec!["ls-remote", self.name.as_str()];
        args.extend(patterns.iter().map(String::as_str));
        let out = self.git(&args)?;
        if !out.status.success() {
            return Err(self.classify(&args, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (oid, r) = l.split_once('\t')?;
                (!r.ends_with("^{}")).then(|| (r.to_owned(), oid.to_owned()))
            })
            .collect())
    }

    /// Push `updates` atomically, each under its compare-and-swap condition.
    pub fn push(&self, updates: &[RefUpdate]) -> Result<(), RemoteError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut args: Vec<String> = vec![
            "push".into(),
            "--quiet".into(),
            "--atomic".into(),
            "--porcelain".into(),
            "--no-verify".into(),
        ];
        for u in updates {
            args.push(match &u.expect {
                Expect::Absent => format!("--force-with-lease={}:", u.name),
                Expect::Value(v) => format!("--force-with-lease={}:{v}", u.name),
            });
        }
        args.push(self.name.clone());
        for u in updates {
            args.push(match &u.new {
                Some(obj) => format!("{obj}:{}", u.name),
                None => format!(":{}", u.name),
            });
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.git(&refs)?;
        if out.status.success() {
            return Ok(());
        }
        // --porcelain reports per-ref results on stdout; rejections are there.
        let stdout = String::from_utf8_lossy(&out.stdout).to_lowercase();
        if stdout.contains("[rejected]")
            || stdout.contains("stale info")
            || stdout.contains("atomic")
        {
            return Err(RemoteError::Rejected {
                detail: format!(
                    "{} {}",
                    tail(&out),
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            });
        }
        // A server hook refused the push: what it said (its `remote:` lines) is the reason,
        // not the command line, which names every ref pushed.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("[remote rejected]") {
            let said: Vec<&str> = stderr
                .lines()
                .filter_map(|l| l.strip_prefix("remote:"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(12)
                .collect();
            return Err(RemoteError::Git {
                args: format!("push {}", self.name),
                detail: if said.is_empty() {
                    tail(&out)
                } else {
                    said.join(" / ")
                },
            });
        }
        Err(self.classify(&refs, &out))
    }

    /// Push the local notes ref `name` (a descendant of what was fetched), merging and
    /// retrying when someone else pushed notes meanwhile.
    pub fn push_notes(&self, name: &str) -> Result<u32, RemoteError> {
        for attempt in 1..=10u32 {
            let fetched = format!(
                "{}{}",
                remote_notes_prefix(&self.name),
                name.trim_start_matches("refs/notes/atmos/")
            );
            let expect = match self.local_value(&fetched)? {
                Some(v) => Expect::Value(v),
                None => Expect::Absent,
            };
            let Some(local) = self.local_value(name)? else {
                return Ok(attempt);
            };
            match self.push(&[RefUpdate {
                name: name.to_owned(),
                new: Some(local.clone()),
                expect,
            }]) {
                Ok(()) => {
                    // The pushed value is now what the remote holds.
                    let _ = self.git(&["update-ref", &fetched, &local]);
                    return Ok(attempt);
                }
                Err(RemoteError::Rejected { .. }) => self.fetch_refs()?,
                Err(e) => return Err(e),
            }
        }
        Err(RemoteError::Rejected {
            detail: format!("{name} kept moving on the remote after 10 attempts"),
        })
    }

    /// The object a local ref holds.
    pub fn local_value(&self, name: &str) -> Result<Option<String>, RemoteError> {
        let out = self.git(&["rev-parse", "--verify", "--quiet", name])?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }
}
