//! The repository as atmos's store (SPEC §3): commit resolution and ancestry here, the
//! current-state refs in [`refs`], the history tags in [`tags`], and the all-or-nothing write
//! of one rollout's records in [`record`]. Local work goes through libgit2 (`git2`).

pub mod lock;
pub mod notes;
pub mod record;
pub mod refdb;
pub mod refs;
pub mod remote;
pub mod tags;

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

/// Why a git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The project is not inside a git repository.
    #[error("{path} is not inside a git repository")]
    NotARepository {
        /// Where atmos looked.
        path: PathBuf,
    },
    /// The repository has no commit yet.
    #[error("the repository has no commits yet")]
    NoCommits,
    /// A revision that does not name a commit.
    #[error("`{spec}` does not name a commit in this repository")]
    UnknownRevision {
        /// What was asked for.
        spec: String,
    },
    /// A short sha that matches several objects.
    #[error("`{spec}` is ambiguous: it matches several objects")]
    AmbiguousRevision {
        /// What was asked for.
        spec: String,
    },
    /// Someone else changed a ref while we were writing.
    #[error("{refname} changed while this rollout ran (expected {expected}, found {found})")]
    RefMoved {
        /// The ref.
        refname: String,
        /// What we read before running.
        expected: String,
        /// What it is now.
        found: String,
    },
    /// Any other libgit2 failure.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// File system failure while exporting a commit.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The author and subject of a commit.
#[derive(Debug, Clone, serde::Serialize)]
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
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("path", &self.repo.path())
            .finish()
    }
}

impl GitRepo {
    /// Open the repository containing `path`.
    pub fn discover(path: &Path) -> Result<GitRepo, GitError> {
        let repo = Repository::discover(path).map_err(|_| GitError::NotARepository {
            path: path.to_owned(),
        })?;
        let refs = refdb::RefDb::new(repo.path(), repo.commondir());
        Ok(GitRepo { repo, refs })
    }

    /// Prefix listing of refs (cached `packed-refs`).
    pub fn refs(&self) -> &refdb::RefDb {
        &self.refs
    }

    /// The underlying libgit2 handle.
    pub fn raw(&self) -> &Repository {
        &self.repo
    }

    /// The `.git` directory; atmos keeps local-only files (logs, checkouts) under `atmos/`.
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
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
        let commit = self.repo.find_commit(Oid::from_str(sha)?)?;
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

    /// True when `ancestor` is a strict ancestor of `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
        if ancestor == descendant {
            return Ok(false);
        }
        Ok(self
            .repo
            .graph_descendant_of(Oid::from_str(descendant)?, Oid::from_str(ancestor)?)?)
    }

    /// Commits reachable from `to` but not from `from`, newest first, at most `limit`.
    pub fn log_between(&self, from: &str, to: &str, limit: usize) -> Result<Vec<String>, GitError> {
        let mut walk = self.repo.revwalk()?;
        walk.push(Oid::from_str(to)?)?;
        walk.hide(Oid::from_str(from)?)?;
        walk.take(limit).map(|oid| Ok(oid?.to_string())).collect()
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
        Ok(self.repo.statuses(Some(&mut opts))?.is_empty())
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
            let time = self.repo.find_commit(Oid::from_str(c)?)?.time().seconds();
            if best.as_ref().is_none_or(|(t, _)| time > *t) {
                best = Some((time, c.clone()));
            }
        }
        Ok(best.map(|(_, c)| c))
    }

    /// The files of `sha`, written once into `<git dir>/atmos/checkouts/<sha>` and reused: the
    /// exact tree that a rollout of that commit runs, whatever the work tree holds.
    pub fn checkout(&self, sha: &str) -> Result<PathBuf, GitError> {
        let dir = self.git_dir().join("atmos").join("checkouts").join(sha);
        let done = dir.join(".atmos-checkout-complete");
        if done.exists() {
            return Ok(dir);
        }
        let partial = self
            .git_dir()
            .join("atmos")
            .join("checkouts")
            .join(format!("{sha}.partial-{}", std::process::id()));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| GitError::Io { path, source }
        };
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
        }
        std::fs::create_dir_all(&partial).map_err(io(&partial))?;
        let commit = self.repo.find_commit(Oid::from_str(sha)?)?;
        let mut builder = git2::build::CheckoutBuilder::new();
        builder
            .target_dir(&partial)
            .update_index(false)
            .force()
            .recreate_missing(true);
        self.repo
            .checkout_tree(commit.as_object(), Some(&mut builder))?;
        std::fs::write(partial.join(".atmos-checkout-complete"), sha).map_err(io(&partial))?;
        match std::fs::rename(&partial, &dir) {
            Ok(()) => Ok(dir),
            // Another rollout finished the same checkout first: use theirs.
            Err(_) if done.exists() => {
                let _ = std::fs::remove_dir_all(&partial);
                Ok(dir)
            }
            Err(e) => Err(GitError::Io {
                path: dir,
                source: e,
            }),
        }
    }
}

/// The first 7 characters of a sha, as shown to people.
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}
