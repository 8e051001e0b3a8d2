//! Why a git operation failed, and the one place libgit2's errors are turned into ours.

use std::path::PathBuf;

/// Why a git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The project is not inside a git repository.
    #[error("{path} is not inside a git repository")]
    NotARepository {
        /// Where atmos looked.
        path: PathBuf,
    },
    /// A partial clone lacks objects of a commit and could not fetch them.
    #[error(
        "this partial clone lacks files of commit {commit} and could not fetch them from {remote}: {detail}"
    )]
    Partial {
        /// The commit.
        commit: String,
        /// The promisor remote.
        remote: String,
        /// What git said.
        detail: String,
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
    /// A ref stayed locked by another process (its `.lock` file) for longer than writing waits.
    #[error("{refname} stayed locked by another process for {}s", waited.as_secs())]
    Locked {
        /// The ref.
        refname: String,
        /// How long writing waited.
        waited: std::time::Duration,
    },
    /// A ref holds something its kind never holds (a note with a NUL byte, a record past its
    /// size limit): never read as if it were shorter.
    #[error("{refname}: {why}")]
    Malformed {
        /// The ref (and, for a note, the commit it annotates).
        refname: String,
        /// What is wrong.
        why: String,
    },
    /// An object a ref or record names is not in this repository.
    #[error("git: {message}: a ref or record names an object this repository does not have")]
    MissingObject {
        /// What libgit2 said (with the object id).
        message: String,
    },
    /// Any other failure of the git library.
    #[error("git: {message}")]
    Git {
        /// What libgit2 said.
        message: String,
    },
    /// A tag could not be signed with the configured key.
    #[error("cannot sign the records with {key}: {message}")]
    Signing {
        /// The key (its path, or the variable that holds it).
        key: String,
        /// What ssh-keygen said.
        message: String,
    },
    /// File system failure while exporting a commit.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl GitError {
    pub(crate) fn libgit2(e: git2::Error) -> GitError {
        if e.code() == git2::ErrorCode::NotFound && e.class() == git2::ErrorClass::Odb {
            return GitError::MissingObject {
                message: e.message().to_owned(),
            };
        }
        GitError::Git {
            message: e.message().to_owned(),
        }
    }
}

impl crate::error::Actionable for GitError {
    fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self {
            GitError::UnknownRevision { .. }
            | GitError::MissingObject { .. }
            | GitError::AmbiguousRevision { .. }
            | GitError::NoCommits
            | GitError::NotARepository { .. } => Exit::Usage,
            GitError::RefMoved { .. }
            | GitError::Locked { .. }
            | GitError::Malformed { .. }
            | GitError::Git { .. }
            | GitError::Partial { .. }
            | GitError::Io { .. }
            | GitError::Signing { .. } => Exit::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            GitError::UnknownRevision { .. } | GitError::AmbiguousRevision { .. } => Some(
                "pass a full or longer sha, a branch or a tag (`git log --oneline` lists commits)"
                    .into(),
            ),
            GitError::NoCommits => Some("commit your files first: git add -A && git commit".into()),
            GitError::Partial { remote, .. } => Some(format!(
                "check that {remote} is reachable and serves filtered clones (uploadpack.allowFilter), or use a full clone"
            )),
            GitError::NotARepository { .. } => {
                Some("atmos records deployments in git: run `git init` and commit".into())
            }
            GitError::RefMoved { .. } => Some(
                "another rollout to this target finished meanwhile; check `atmos deployment status` and run again"
                    .into(),
            ),
            GitError::Signing { .. } => Some(
                "the signing key must be an SSH key (ssh-keygen -t ed25519); set it with git config user.signingkey or --signing-key".into(),
            ),
            GitError::MissingObject { .. } => Some(
                "fetch what the remote has (git fetch --all), or check the records with `atmos deployment verify`: a state ref was set by hand, or its commit was never pushed".into(),
            ),
            GitError::Locked { refname, .. } => Some(format!(
                "another git process (a rollout in this clone, `git gc`) holds it; if none runs, a killed one left `.git/{refname}.lock` behind: remove that file"
            )),
            GitError::Malformed { .. } => Some(
                "this was written by hand or by another tool, not by atmos; `atmos deployment verify` lists what is wrong, and the server guard refuses it (an administrator can remove it: docs/verify.md#repair)".into(),
            ),
            GitError::Git { .. } | GitError::Io { .. }
                if self.to_string().contains("No space left on device") =>
            {
                Some(
                    "the disk that holds the repository is full: free space and run again (a rollout that had started is recorded as interrupted by the next rollout of its target)".into(),
                )
            }
            GitError::Git { .. } | GitError::Io { .. } => None,
        }
    }
}

/// libgit2 results inside the store: their errors become [`GitError::Git`], so that no libgit2
/// type crosses the library's API.
pub(crate) trait Libgit2<T> {
    /// Convert the error.
    fn git(self) -> Result<T, GitError>;
}

impl<T> Libgit2<T> for Result<T, git2::Error> {
    fn git(self) -> Result<T, GitError> {
        self.map_err(GitError::libgit2)
    }
}
