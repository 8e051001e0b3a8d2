//! Per-commit notes: `refs/notes/atmos/<deployment>/<kind>` (approvals, sbom). Approvals are
//! one JSON object per line, so that notes written concurrently elsewhere merge by union
//! (`git notes merge -s cat_sort_uniq`). Within one repository, appends are serialised by a
//! lock file so that two atmos processes never lose each other's line.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use git2::ErrorCode;

use super::{Author, GitError, GitRepo, Libgit2, oid};

/// Holds the append lock of one notes ref until dropped.
struct NotesLock {
    path: PathBuf,
}

impl Drop for NotesLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl GitRepo {
    /// The note of `commit` in `notes_ref`, if any.
    pub fn read_note(&self, notes_ref: &str, commit: &str) -> Result<Option<String>, GitError> {
        match self.raw().find_note(Some(notes_ref), oid(commit)?) {
            Ok(note) => Ok(note.message().ok().map(str::to_owned)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(GitError::libgit2(e)),
        }
    }

    /// The note of `commit` in the notes commit `notes_commit` (not a ref: a value a push
    /// proposes), found as git finds it: the full id as a file name, or inside two-character
    /// fan-out folders (`ab/cdef…`, `ab/cd/ef…`) — nothing else, so that this reader and git's
    /// never see different notes in one tree.
    pub fn note_at(&self, notes_commit: &str, commit: &str) -> Result<Option<String>, GitError> {
        let mut tree = self
            .raw()
            .find_commit(oid(notes_commit)?)
            .git()?
            .tree()
            .git()?;
        let mut rest = commit;
        loop {
            if let Some(e) = tree.get_name(rest)
                && e.kind() == Some(git2::ObjectType::Blob)
            {
                let blob = self.raw().find_blob(e.id()).git()?;
                return Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()));
            }
            let Some(fan) = rest.get(..2).filter(|_| rest.len() > 2) else {
                return Ok(None);
            };
            let next = tree
                .get_name(fan)
                .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
                .map(|e| e.id());
            match next {
                Some(id) => {
                    tree = self.raw().find_tree(id).git()?;
                    rest = &rest[2..];
                }
                None => return Ok(None),
            }
        }
    }

    /// Why the notes commit `notes_commit` is not laid out as git writes notes, if it is not:
    /// every file named by a full object id (split only into two-character fan-out folders),
    /// each object noted once, nothing else in the tree.
    pub fn notes_layout_problem(&self, notes_commit: &str) -> Result<Option<String>, GitError> {
        let Ok(commit) = self.raw().find_commit(oid(notes_commit)?) else {
            return Ok(Some(format!(
                "{} is not a commit",
                super::short(notes_commit)
            )));
        };
        let tree = commit.tree().git()?;
        let mut seen = std::collections::BTreeSet::new();
        let mut problem = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            let name = entry.name().unwrap_or("");
            let hex = |s: &str| {
                s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            };
            match entry.kind() {
                Some(git2::ObjectType::Tree) if name.len() == 2 && hex(name) => {}
                Some(git2::ObjectType::Blob) => {
                    let id = format!("{}{name}", dir.replace('/', ""));
                    let fans_ok = dir
                        .split('/')
                        .filter(|d| !d.is_empty())
                        .all(|d| d.len() == 2);
                    if !(fans_ok && (id.len() == 40 || id.len() == 64) && hex(&id)) {
                        problem = Some(format!("{dir}{name} is not named by an object id"));
                    } else if !seen.insert(id.clone()) {
                        problem = Some(format!("{id} is noted twice"));
                    }
                }
                _ => problem = Some(format!("{dir}{name} has no place in a notes tree")),
            }
            if problem.is_some() {
                git2::TreeWalkResult::Abort
            } else {
                git2::TreeWalkResult::Ok
            }
        })
        .or_else(|e| if problem.is_some() { Ok(()) } else { Err(e) })
        .git()?;
        Ok(problem)
    }

    /// Every note of the notes commit `notes_commit`: `(annotated commit, note text)`.
    pub fn notes_at(&self, notes_commit: &str) -> Result<Vec<(String, String)>, GitError> {
        let tree = self
            .raw()
            .find_commit(oid(notes_commit)?)
            .git()?
            .tree()
            .git()?;
        let mut out = Vec::new();
        let mut walk_err = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob) {
                let name = format!("{}{}", dir.replace('/', ""), entry.name().unwrap_or(""));
                match self.raw().find_blob(entry.id()) {
                    Ok(blob) => {
                        out.push((name, String::from_utf8_lossy(blob.content()).into_owned()))
                    }
                    Err(e) => walk_err = Some(e),
                }
            }
            git2::TreeWalkResult::Ok
        })
        .git()?;
        if let Some(e) = walk_err {
            return Err(GitError::libgit2(e));
        }
        Ok(out)
    }

    fn lock_notes(&self, notes_ref: &str) -> Result<NotesLock, GitError> {
        let dir = self.git_dir().join("atmos").join("locks");
        std::fs::create_dir_all(&dir).map_err(|source| GitError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(format!("{}.lock", notes_ref.replace('/', "%")));
        let started = Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(NotesLock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock left by a process that died is broken after a minute.
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > Duration::from_secs(60));
                    if stale {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if started.elapsed() > Duration::from_secs(30) {
                        return Err(GitError::Io {
                            path,
                            source: std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "another atmos process holds the notes lock",
                            ),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(source) => return Err(GitError::Io { path, source }),
            }
        }
    }

    /// Append `line` to the note of `commit` (creating it), keeping every existing line.
    pub fn append_note_line(
        &self,
        notes_ref: &str,
        commit: &str,
        line: &str,
        author: &Author,
    ) -> Result<(), GitError> {
        let _lock = self.lock_notes(notes_ref)?;
        let mut text = self.read_note(notes_ref, commit)?.unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(line.trim_end());
        text.push('\n');
        self.write_note(notes_ref, commit, &text, author)
    }

    /// Set the note of `commit` in `notes_ref` to `text`, replacing any.
    pub fn write_note(
        &self,
        notes_ref: &str,
        commit: &str,
        text: &str,
        author: &Author,
    ) -> Result<(), GitError> {
        let sig = author.signature()?;
        self.raw()
            .note(&sig, &sig, Some(notes_ref), oid(commit)?, text, true)
            .git()?;
        Ok(())
    }
}
