//! The repository as atmos's store: commit resolution and ancestry here, the
//! current-state refs in [`refs`], the history tags in [`tags`] (and the records folded out of
//! them in [`ledger`]), and the all-or-nothing write
//! of one rollout's records in [`record`]. Local work goes through libgit2 (`git2`).

pub mod chain;
mod error;
pub mod files;
pub mod ledger;
pub mod lock;
pub mod lockfiles;
pub mod notes;
mod partial;
pub mod pending;
pub mod record;
pub mod refdb;
pub mod refs;
pub mod remote;
pub mod tags;

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};
use schemars::JsonSchema;

pub use error::GitError;
pub(crate) use error::Libgit2;

/// Who writes a note or a tag: a display name and an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Display name.
    pub name: String,
    /// Email.
    pub email: String,
}

impl Author {
    /// git's `user.name` with `who` as the email when it is one, else git's `user.email`
    /// (else `<who>@atmos.invalid`).
    pub fn of(git: &GitRepo, who: &str) -> Author {
        let name = git
            .config_string("user.name")
            .unwrap_or_else(|| "atmos".into());
        let email = if who.contains('@') {
            who.to_owned()
        } else {
            git.config_string("user.email")
                .unwrap_or_else(|| format!("{who}@atmos.invalid"))
        };
        Author { name, email }
    }

    pub(crate) fn signature(&self) -> Result<git2::Signature<'static>, GitError> {
        git2::Signature::now(&self.name, &self.email).git()
    }
}

/// A file changed between two commits.
#[derive(Debug, Clone, serde::Serialize, JsonSchema)]
pub struct FileChange {
    /// Path in the repository.
    pub path: String,
    /// `added`, `modified`, `deleted`, `renamed`, …
    pub status: &'static str,
}

/// The author and subject of a commit.
#[derive(Debug, Clone, serde::Serialize, JsonSchema)]
pub struct CommitInfo {
    /// Full sha.
    pub sha: String,
    /// Author email.
    pub author_email: String,
    /// Author name.
    pub author_name: String,
    /// First line of the message.
    pub subject: String,
}

/// The repository that holds a project.
pub struct GitRepo {
    repo: Repository,
    refs: refdb::RefDb,
    /// What a command computed once per repository handle from objects that never change
    /// (a parsed ledger commit), by key; each reader keeps its own type.
    memo: Memo,
}

/// Values remembered per repository handle, each of its reader's own type.
type Memo = std::cell::RefCell<
    std::collections::HashMap<String, std::sync::Arc<dyn std::any::Any + Send + Sync>>,
>;

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("path", &self.repo.path())
            .finish()
    }
}

impl GitRepo {
    /// The value remembered under `key`, if it is a `T`.
    pub(crate) fn memo<T: Send + Sync + 'static>(&self, key: &str) -> Option<std::sync::Arc<T>> {
        self.memo
            .borrow()
            .get(key)
            .and_then(|v| v.clone().downcast::<T>().ok())
    }

    /// Remember `value` under `key` for the life of this handle.
    pub(crate) fn remember<T: Send + Sync + 'static>(&self, key: String, value: std::sync::Arc<T>) {
        self.memo.borrow_mut().insert(key, value);
    }

    /// Open the repository containing `path`.
    pub fn discover(path: &Path) -> Result<GitRepo, GitError> {
        let repo = Repository::discover(path).map_err(|_| GitError::NotARepository {
            path: path.to_owned(),
        })?;
        let refs = refdb::RefDb::new(repo.path(), repo.commondir());
        Ok(GitRepo {
            repo,
            refs,
            memo: Default::default(),
        })
    }

    /// Open the repository git names in the environment (`GIT_DIR`, and in a server hook the
    /// quarantine's `GIT_OBJECT_DIRECTORY` and `GIT_ALTERNATE_OBJECT_DIRECTORIES`, where the
    /// objects of a push wait until the hooks accept it).
    pub fn open_from_env() -> Result<GitRepo, GitError> {
        let repo = Repository::open_from_env().map_err(|_| GitError::NotARepository {
            path: std::env::var_os("GIT_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
        })?;
        let refs = refdb::RefDb::new(repo.path(), repo.commondir());
        Ok(GitRepo {
            repo,
            refs,
            memo: Default::default(),
        })
    }

    /// The first-parent history of `tip`, newest first, with each commit's committer time:
    /// the commits a branch has pointed at, in order.
    pub fn first_parent_history(&self, tip: &str) -> Result<Vec<(String, i64)>, GitError> {
        let mut walk = self.repo.revwalk().git()?;
        walk.push(oid(tip)?).git()?;
        walk.simplify_first_parent().git()?;
        let mut out = Vec::new();
        for id in walk {
            let id = id.git()?;
            let time = self
                .repo
                .find_commit(id)
                .git()?
                .committer()
                .when()
                .seconds();
            out.push((id.to_string(), time));
        }
        Ok(out)
    }

    /// True when the object `sha` exists.
    pub fn has_object(&self, sha: &str) -> bool {
        Oid::from_str(sha)
            .ok()
            .and_then(|id| self.repo.odb().ok()?.exists(id).then_some(()))
            .is_some()
    }

    /// The kind (`commit`, `tag`, `tree`, `blob`) and size of the object `sha`, from its
    /// header (the object itself is not read), if it exists.
    pub fn object_header(&self, sha: &str) -> Option<(&'static str, usize)> {
        let id = Oid::from_str(sha).ok()?;
        let (size, kind) = self.repo.odb().ok()?.read_header(id).ok()?;
        Some((kind.str(), size))
    }

    /// The bytes of the blob `sha`.
    pub fn blob_bytes(&self, sha: &str) -> Result<Vec<u8>, GitError> {
        Ok(self.repo.find_blob(oid(sha)?).git()?.content().to_vec())
    }

    /// The kind of the object `sha` (`commit`, `tag`, `tree`, `blob`), if it exists.
    pub fn object_kind(&self, sha: &str) -> Option<&'static str> {
        let id = Oid::from_str(sha).ok()?;
        let (_, kind) = self.repo.odb().ok()?.read_header(id).ok()?;
        kind.str().into()
    }

    /// Prefix listing of refs (cached `packed-refs`).
    pub fn refs(&self) -> &refdb::RefDb {
        &self.refs
    }

    /// Read every ref as if `updates` were applied (`None`: deleted): what a server guard
    /// judges before it accepts a push.
    pub fn overlay(&mut self, updates: std::collections::BTreeMap<String, Option<String>>) {
        self.refs.set_overlay(updates);
    }

    /// The underlying libgit2 handle (inside the crate only).
    pub(crate) fn raw(&self) -> &Repository {
        &self.repo
    }

    /// The `.git` directory; atmos keeps local-only files (logs, checkouts) under `atmos/`.
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// The git folder that holds the refs (the main one, for a linked work tree).
    pub fn common_dir(&self) -> &Path {
        self.repo.commondir()
    }

    /// The top of the work tree.
    pub fn workdir(&self) -> Option<&Path> {
        self.repo.workdir()
    }

    /// Resolve `spec` (a sha, short sha, ref or `HEAD`) to a full commit sha.
    pub fn resolve_commit(&self, spec: &str) -> Result<String, GitError> {
        match self.repo.revparse_single(spec) {
            Ok(object) => {
                let commit = object
                    .peel_to_commit()
                    .map_err(|_| GitError::UnknownRevision {
                        spec: spec.to_owned(),
                    })?;
                Ok(commit.id().to_string())
            }
            Err(e) if e.code() == git2::ErrorCode::Ambiguous => Err(GitError::AmbiguousRevision {
                spec: spec.to_owned(),
            }),
            Err(e) if spec == "HEAD" && e.code() == git2::ErrorCode::UnbornBranch => {
                Err(GitError::NoCommits)
            }
            Err(_) if spec == "HEAD" && self.repo.head().is_err() => Err(GitError::NoCommits),
            Err(_) => Err(GitError::UnknownRevision {
                spec: spec.to_owned(),
            }),
        }
    }

    /// Author and subject of `sha`.
    pub fn commit_info(&self, sha: &str) -> Result<CommitInfo, GitError> {
        let commit = self.repo.find_commit(oid(sha)?).git()?;
        let author = commit.author();
        Ok(CommitInfo {
            sha: sha.to_owned(),
            author_email: author.email().unwrap_or_default().to_owned(),
            author_name: author.name().unwrap_or_default().to_owned(),
            subject: commit
                .summary()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// The parents of commit `sha`, in order.
    pub fn commit_parents(&self, sha: &str) -> Result<Vec<String>, GitError> {
        let commit = self.repo.find_commit(oid(sha)?).git()?;
        Ok(commit.parent_ids().map(|p| p.to_string()).collect())
    }

    /// True when `ancestor` is a strict ancestor of `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
        if ancestor == descendant {
            return Ok(false);
        }
        self.repo
            .graph_descendant_of(oid(descendant)?, oid(ancestor)?)
            .git()
    }

    /// Commits reachable from `to` but not from `from`, newest first, at most `limit`.
    pub fn log_between(&self, from: &str, to: &str, limit: usize) -> Result<Vec<String>, GitError> {
        let mut walk = self.repo.revwalk().git()?;
        walk.push(oid(to)?).git()?;
        walk.hide(oid(from)?).git()?;
        walk.take(limit)
            .map(|oid| Ok(oid.git()?.to_string()))
            .collect()
    }

    /// The newest `limit` commits of `to`'s history, newest first.
    pub fn log(&self, to: &str, limit: usize) -> Result<Vec<String>, GitError> {
        let mut walk = self.repo.revwalk().git()?;
        walk.push(oid(to)?).git()?;
        walk.take(limit)
            .map(|oid| Ok(oid.git()?.to_string()))
            .collect()
    }

    /// The commit HEAD points at, if any.
    pub fn head_commit(&self) -> Option<String> {
        self.repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .map(|c| c.id().to_string())
    }

    /// True when the work tree and index match HEAD (untracked files ignored).
    pub fn is_clean(&self) -> Result<bool, GitError> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(false).include_ignored(false);
        Ok(self.repo.statuses(Some(&mut opts)).git()?.is_empty())
    }

    /// A git config value (`user.email`, …).
    pub fn config_string(&self, key: &str) -> Option<String> {
        self.repo.config().ok()?.get_string(key).ok()
    }

    /// The commit that contains all the others, or else the most recently committed one.
    pub fn newest_commit(&self, commits: &[String]) -> Result<Option<String>, GitError> {
        for c in commits {
            let mut contains_all = true;
            for other in commits {
                if other != c && !self.is_ancestor(other, c)? {
                    contains_all = false;
                    break;
                }
            }
            if contains_all {
                return Ok(Some(c.clone()));
            }
        }
        let mut best: Option<(i64, String)> = None;
        for c in commits {
            let time = self.repo.find_commit(oid(c)?).git()?.time().seconds();
            if best.as_ref().is_none_or(|(t, _)| time > *t) {
                best = Some((time, c.clone()));
            }
        }
        Ok(best.map(|(_, c)| c))
    }

    /// How many commits `a` has that `b` lacks, and `b` has that `a` lacks.
    pub fn ahead_behind(&self, a: &str, b: &str) -> Result<(usize, usize), GitError> {
        self.repo.graph_ahead_behind(oid(a)?, oid(b)?).git()
    }

    /// The bytes of `path` (relative to the repository's top) in commit `sha`; `None` when the
    /// commit has no such file.
    pub fn file_at(&self, sha: &str, path: &Path) -> Result<Option<Vec<u8>>, GitError> {
        Ok(self.entry_at(sha, path)?.map(|(bytes, _)| bytes))
    }

    /// The bytes and git file mode (`0o100644`, `0o120000` for a symbolic link, whose bytes
    /// are its target) of `path` in commit `sha`; `None` when there is no such file.
    pub fn entry_at(&self, sha: &str, path: &Path) -> Result<Option<(Vec<u8>, i32)>, GitError> {
        let tree = self.repo.find_commit(oid(sha)?).git()?.tree().git()?;
        match tree.get_path(path) {
            Ok(entry) if entry.kind() == Some(git2::ObjectType::Blob) => {
                // A partial clone may hold the tree without the file: fetch it, then read.
                let blob = match self.repo.find_blob(entry.id()) {
                    Ok(b) => b,
                    Err(e)
                        if e.code() == git2::ErrorCode::NotFound && self.promisor().is_some() =>
                    {
                        self.fill_commit(sha)?;
                        self.repo.find_blob(entry.id()).git()?
                    }
                    Err(e) => return Err(GitError::libgit2(e)),
                };
                Ok(Some((blob.content().to_vec(), entry.filemode())))
            }
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(GitError::libgit2(e)),
        }
    }

    /// The entries of the folder `dir` in commit `sha`: `(name, is_folder)`, sorted; empty
    /// when the commit has no such folder.
    pub fn list_at(&self, sha: &str, dir: &Path) -> Result<Vec<(String, bool)>, GitError> {
        let root = self.repo.find_commit(oid(sha)?).git()?.tree().git()?;
        let tree = if dir.as_os_str().is_empty() {
            root
        } else {
            match root.get_path(dir) {
                Ok(entry) if entry.kind() == Some(git2::ObjectType::Tree) => {
                    self.repo.find_tree(entry.id()).git()?
                }
                Ok(_) => return Ok(Vec::new()),
                Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(GitError::libgit2(e)),
            }
        };
        let mut out: Vec<(String, bool)> = tree
            .iter()
            .filter_map(|e| {
                let name = e.name().ok()?.to_owned();
                Some((name, e.kind() == Some(git2::ObjectType::Tree)))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Another handle on the same repository (and, inside a server hook, the same quarantined
    /// objects).
    pub fn reopen(&self) -> Result<GitRepo, GitError> {
        if std::env::var_os("GIT_QUARANTINE_PATH").is_some() {
            return GitRepo::open_from_env();
        }
        let path = self.repo.path().to_owned();
        let repo = Repository::open(&path).map_err(|_| GitError::NotARepository { path })?;
        let refs = refdb::RefDb::new(repo.path(), repo.commondir());
        Ok(GitRepo {
            repo,
            refs,
            memo: Default::default(),
        })
    }

    /// The object id of `path` (a file or folder) in commit `sha`, if it is there.
    pub fn path_oid(&self, sha: &str, path: &Path) -> Result<Option<String>, GitError> {
        let tree = self.repo.find_commit(oid(sha)?).git()?.tree().git()?;
        match tree.get_path(path) {
            Ok(entry) => Ok(Some(entry.id().to_string())),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(GitError::libgit2(e)),
        }
    }

    /// The commits of `to` not in `from`, newest first, that change something under one of
    /// `paths` (compared with their first parent), at most `limit`, looking at no more than
    /// `scan` commits.
    pub fn log_between_touching(
        &self,
        from: &str,
        to: &str,
        paths: &[PathBuf],
        limit: usize,
        scan: usize,
    ) -> Result<Vec<String>, GitError> {
        let mut walk = self.repo.revwalk().git()?;
        walk.push(oid(to)?).git()?;
        walk.hide(oid(from)?).git()?;
        let mut opts = git2::DiffOptions::new();
        for p in paths {
            opts.pathspec(p);
        }
        let mut out = Vec::new();
        for id in walk.take(scan) {
            let commit = self.repo.find_commit(id.git()?).git()?;
            let tree = commit.tree().git()?;
            let parent = match commit.parent(0) {
                Ok(p) => Some(p.tree().git()?),
                Err(_) => None,
            };
            let diff = self
                .repo
                .diff_tree_to_tree(parent.as_ref(), Some(&tree), Some(&mut opts))
                .git()?;
            if diff.deltas().len() > 0 {
                out.push(commit.id().to_string());
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Files changed from commit `from` to commit `to` (renames detected).
    pub fn changed_files(&self, from: &str, to: &str) -> Result<Vec<FileChange>, GitError> {
        let a = self.repo.find_commit(oid(from)?).git()?.tree().git()?;
        let b = self.repo.find_commit(oid(to)?).git()?.tree().git()?;
        let mut diff = self
            .repo
            .diff_tree_to_tree(Some(&a), Some(&b), None)
            .git()?;
        diff.find_similar(None).git()?;
        Ok(diff
            .deltas()
            .map(|delta| {
                let path = delta
                    .new_file()
                    .path()
                    .or_else(|| delta.old_file().path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let status = match delta.status() {
                    git2::Delta::Added => "added",
                    git2::Delta::Deleted => "deleted",
                    git2::Delta::Modified => "modified",
                    git2::Delta::Renamed => "renamed",
                    git2::Delta::Copied => "copied",
                    git2::Delta::Typechange => "type changed",
                    _ => "changed",
                };
                FileChange { path, status }
            })
            .collect())
    }

    /// Write the files under `paths` (files or folders, relative to the repository's top) as
    /// they are in commit `sha` into `dest`, at the same relative places. Paths the commit does
    /// not have are skipped; symbolic links are written as the files they name only when those
    /// are inside the exported tree (else skipped), so nothing outside `dest` is reachable.
    pub fn export(&self, sha: &str, paths: &[PathBuf], dest: &Path) -> Result<usize, GitError> {
        self.fill_commit(sha)?;
        let tree = self.repo.find_commit(oid(sha)?).git()?.tree().git()?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| GitError::Io { path, source }
        };
        let mut written = 0;
        for rel in paths {
            if rel.as_os_str().is_empty()
                || rel
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                continue;
            }
            let entry = match tree.get_path(rel) {
                Ok(e) => e,
                Err(e) if e.code() == git2::ErrorCode::NotFound => continue,
                Err(e) => return Err(GitError::libgit2(e)),
            };
            let mut stack = vec![(rel.clone(), entry.id(), entry.kind(), entry.filemode())];
            while let Some((path, id, kind, mode)) = stack.pop() {
                match kind {
                    Some(git2::ObjectType::Tree) => {
                        let sub = self.repo.find_tree(id).git()?;
                        for e in sub.iter() {
                            let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
                            stack.push((path.join(name), e.id(), e.kind(), e.filemode()));
                        }
                    }
                    // 0o120000 is a symbolic link: its target is data, never followed.
                    Some(git2::ObjectType::Blob) if mode != 0o120000 => {
                        let blob = self.repo.find_blob(id).git()?;
                        let out = dest.join(&path);
                        if let Some(parent) = out.parent() {
                            std::fs::create_dir_all(parent).map_err(io(parent))?;
                        }
                        std::fs::write(&out, blob.content()).map_err(io(&out))?;
                        written += 1;
                    }
                    _ => {}
                }
            }
        }
        Ok(written)
    }

    /// True when this clone has shallow history (`git clone --depth N`).
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// What a symbolic ref points at (`refs/remotes/origin/HEAD` → `refs/remotes/origin/main`).
    pub fn symbolic_target(&self, name: &str) -> Option<String> {
        let r = self.repo.find_reference(name).ok()?;
        r.symbolic_target().ok().flatten().map(str::to_owned)
    }

    /// The commit the ref `name` (a full ref name) points at, if it exists: looked up exactly,
    /// never by git's name rules.
    pub fn peel_ref(&self, name: &str) -> Option<String> {
        let r = self.repo.find_reference(name).ok()?;
        r.peel_to_commit().ok().map(|c| c.id().to_string())
    }

    /// The names of the remotes configured in this clone.
    pub fn remote_names(&self) -> Vec<String> {
        self.repo
            .remotes()
            .map(|list| list.iter().flatten().flatten().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// What `HEAD` of `remote` points at, as the remote says (`git ls-remote --symref`).
    pub fn remote_head(&self, remote: &str) -> Option<String> {
        let out = std::process::Command::new("git")
            .env_remove(crate::signing::KEY_ENV)
            .args(["ls-remote", "--symref", remote, "HEAD"])
            .current_dir(self.workdir().unwrap_or(self.git_dir()))
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let rest = l.strip_prefix("ref: ")?;
            let (target, name) = rest.split_once('\t')?;
            (name.trim() == "HEAD").then(|| target.to_owned())
        })
    }

    /// The branches `remote` holds (`refs/heads/…`), as it says (`git ls-remote --heads`);
    /// `None` when it cannot be reached.
    pub fn remote_branches(&self, remote: &str) -> Option<Vec<String>> {
        let out = std::process::Command::new("git")
            .env_remove(crate::signing::KEY_ENV)
            .args(["ls-remote", "--heads", remote])
            .current_dir(self.workdir().unwrap_or(self.git_dir()))
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .ok()?;
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once('\t').map(|(_, r)| r.trim().to_owned()))
                .collect()
        })
    }

    /// True when `HEAD` is detached (a commit checked out, no branch).
    pub fn head_detached(&self) -> bool {
        self.repo.head_detached().unwrap_or(false)
    }

    /// Files under `paths` (relative to the work tree) that differ in the work tree from
    /// `commit`: changed, staged, deleted or new and not ignored. Empty outside a work tree.
    pub fn work_tree_changes(&self, commit: &str, paths: &[String]) -> Vec<String> {
        let Some(dir) = self.workdir() else {
            return Vec::new();
        };
        let run = |args: &[&str]| -> Vec<String> {
            std::process::Command::new("git")
                .env_remove(crate::signing::KEY_ENV)
                .args(args)
                .arg("--")
                .args(paths)
                .current_dir(dir)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out = run(&["diff", "--name-only", commit]);
        out.extend(run(&["ls-files", "--others", "--exclude-standard"]));
        out.sort();
        out.dedup();
        out
    }

    /// The commit a ref or revision names, if any.
    pub fn peel(&self, name: &str) -> Option<String> {
        let object = self.repo.revparse_single(name).ok()?;
        object.peel_to_commit().ok().map(|c| c.id().to_string())
    }

    /// True when `sha` is in the history of the commit `refname` points at (or is it).
    pub fn reachable_from(&self, sha: &str, refname: &str) -> Result<bool, GitError> {
        let Some(tip) = self.peel(refname) else {
            return Ok(false);
        };
        Ok(tip == sha || self.is_ancestor(sha, &tip)?)
    }

    /// Local branches (`refs/heads/…`) and remote-tracking branches (`refs/remotes/…`) whose
    /// history holds `sha`, by short name.
    pub fn branches_containing(&self, sha: &str) -> Result<Vec<String>, GitError> {
        let mut out = Vec::new();
        for prefix in ["refs/heads/", "refs/remotes/"] {
            for e in self.refs().list(prefix)? {
                if e.name.ends_with("/HEAD") {
                    continue;
                }
                let tip = match self
                    .repo
                    .find_reference(&e.name)
                    .ok()
                    .and_then(|r| r.peel_to_commit().ok())
                {
                    Some(c) => c.id().to_string(),
                    None => continue,
                };
                if tip == sha || self.is_ancestor(sha, &tip)? {
                    out.push(e.name[prefix.len()..].to_owned());
                }
            }
        }
        Ok(out)
    }

    /// Write the files of `sha` into `dest` (created; it must not hold anything yet). Each run
    /// gets its own copy, outside the repository, so nothing one run's scripts write is seen by
    /// the next, and a script's `git` commands find no repository to change.
    pub fn export_commit(&self, sha: &str, dest: &Path) -> Result<(), GitError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| GitError::Io { path, source }
        };
        std::fs::create_dir_all(dest).map_err(io(dest))?;
        self.fill_commit(sha)?;
        let commit = self.repo.find_commit(oid(sha)?).git()?;
        let mut builder = git2::build::CheckoutBuilder::new();
        builder
            .target_dir(dest)
            .update_index(false)
            .force()
            .recreate_missing(true);
        self.repo
            .checkout_tree(commit.as_object(), Some(&mut builder))
            .git()
    }
}

/// A full sha as libgit2's object id.
pub(crate) fn oid(sha: &str) -> Result<Oid, GitError> {
    Oid::from_str(sha).git()
}

/// The first 7 characters of a sha, as shown to people.
pub fn short(sha: &str) -> &str {
    prefix(sha, 7)
}

/// The first `n` characters of `text` (never splitting a character: record fields are
/// anyone's input).
pub fn prefix(text: &str, n: usize) -> &str {
    text.char_indices().nth(n).map_or(text, |(i, _)| &text[..i])
}
