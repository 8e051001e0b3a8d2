//! The project's files as of one commit, for the config loader: a deployment file and
//! everything it imports or includes are read from the same commit.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{GitRepo, short};
use crate::config::source::{FileSource, not_regular, too_big};

/// The files of the project at `rel` (relative to the repository's top) in commit `sha`.
pub struct CommitFiles {
    repo: Mutex<GitRepo>,
    sha: String,
    rel: PathBuf,
}

impl CommitFiles {
    /// The project at `rel` in commit `sha` of `git` (opened again, so the view can be shared).
    pub fn new(git: &GitRepo, sha: &str, rel: &Path) -> Result<CommitFiles, super::GitError> {
        Ok(CommitFiles {
            repo: Mutex::new(git.reopen()?),
            sha: sha.to_owned(),
            rel: rel.to_owned(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&GitRepo) -> Result<T, String>) -> Result<T, String> {
        let repo = self
            .repo
            .lock()
            .map_err(|_| "the repository handle is unusable".to_owned())?;
        f(&repo)
    }
}

impl FileSource for CommitFiles {
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
        if crate::config::source::in_git_dir(path) {
            return Err(format!("{} is inside git's own folder", path.display()));
        }
        let full = self.rel.join(path);
        let entry = self.with(|git| {
            git.entry_at(&self.sha, &full).map_err(|e| {
                format!(
                    "cannot read {} at {}: {e}",
                    path.display(),
                    short(&self.sha)
                )
            })
        })?;
        match entry {
            None => Ok(None),
            Some((_, 0o120000)) => Err(not_regular(path, "a symbolic link")),
            Some((bytes, _)) => {
                too_big(path, bytes.len() as u64)?;
                Ok(Some(bytes))
            }
        }
    }

    fn exists(&self, path: &Path) -> bool {
        let full = self.rel.join(path);
        self.with(|git| Ok(git.path_oid(&self.sha, &full).ok().flatten().is_some()))
            .unwrap_or(false)
    }

    fn list(&self, dir: &Path) -> Result<Vec<(String, bool)>, String> {
        let full = self.rel.join(dir);
        self.with(|git| {
            git.list_at(&self.sha, &full)
                .map_err(|e| format!("cannot list {} at {}: {e}", dir.display(), short(&self.sha)))
        })
    }

    fn commit(&self) -> Result<String, String> {
        Ok(self.sha.clone())
    }

    fn shown(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("{}@{}", path.display(), short(&self.sha)))
    }
}
