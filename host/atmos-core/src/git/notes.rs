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
    /// The note of `commit` in `notes_ref`, if any: read whole, within the size of its kind,
    /// and — for notes of JSON lines — UTF-8 with no NUL or control character. Anything else
    /// is an error naming the note, never a text cut short where a C string would end.
    pub fn read_note(&self, notes_ref: &str, commit: &str) -> Result<Option<String>, GitError> {
        let note = match self.raw().find_note(Some(notes_ref), oid(commit)?) {
            Ok(note) => note,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(GitError::libgit2(e)),
        };
        let place = format!("{notes_ref} (note of {})", super::short(commit));
        let bad = |why: String| GitError::Malformed {
            refname: place.clone(),
            why,
        };
        let kind = notes_ref.rsplit('/').next().unwrap_or_default();
        let max = crate::contracts::limits::note_max(kind);
        let (size, _) = self.raw().odb().git()?.read_header(note.id()).git()?;
        if size > max {
            return Err(bad(format!(
                "holds {size} bytes; a {kind} note is at most {max}"
            )));
        }
        let bytes = self.raw().find_blob(note.id()).git()?.content().to_vec();
        if matches!(kind, "approvals" | "builds")
            && let Some(why) = crate::contracts::limits::json_lines_problem(&bytes)
        {
            return Err(bad(why));
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| bad("is not UTF-8".into()))
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
                // Read by the guard from a push: whole, as bytes; what they may hold is judged
                // by the caller.
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

    /// Give `to` the notes `from` has in each of `notes_refs` (a record that took a new
    /// place keeps its log).
    pub fn copy_notes(&self, notes_refs: &[String], from: &str, to: &str) -> Result<(), GitError> {
        for notes_ref in notes_refs {
            if let Some(text) = self.read_note(notes_ref, from)? {
                let sig = git2::Signature::now("atmos", "atmos@atmos.invalid").git()?;
                self.raw()
                    .note(&sig, &sig, Some(notes_ref), oid(to)?, &text, true)
                    .git()?;
            }
        }
        Ok(())
    }

    /// The notes the notes commit `new` adds or changes compared to `old` (`None`: all of
    /// them): `(annotated object, note blob, the blob it replaces)`. Only the changed paths
    /// are read.
    pub fn changed_notes(
        &self,
        old: Option<&str>,
        new: &str,
    ) -> Result<Vec<ChangedNote>, GitError> {
        let tree_of = |c: &str| -> Result<git2::Tree<'_>, GitError> {
            self.raw().find_commit(oid(c)?).git()?.tree().git()
        };
        let new_tree = tree_of(new)?;
        let old_tree = old.map(tree_of).transpose()?;
        let diff = self
            .raw()
            .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), None)
            .git()?;
        let mut out = Vec::new();
        for delta in diff.deltas() {
            if matches!(delta.status(), git2::Delta::Deleted) {
                continue;
            }
            let file = delta.new_file();
            let Some(path) = file.path().and_then(|p| p.to_str()) else {
                continue;
            };
            let before = delta.old_file().id();
            out.push(ChangedNote {
                object: path.replace('/', ""),
                blob: file.id().to_string(),
                was: (!before.is_zero()).then(|| before.to_string()),
            });
        }
        Ok(out)
    }
}

/// One note a notes commit adds or changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedNote {
    /// The annotated object.
    pub object: String,
    /// The note's blob now.
    pub blob: String,
    /// The blob it replaces, if the object had a note.
    pub was: Option<String>,
}

impl GitRepo {
    /// Every note of the notes commit `notes_commit`: `(annotated object, note blob)`.
    pub fn all_notes(&self, notes_commit: &str) -> Result<Vec<(String, String)>, GitError> {
        Ok(self
            .changed_notes(None, notes_commit)?
            .into_iter()
            .map(|n| (n.object, n.blob))
            .collect())
    }

    /// A new notes commit on top of `notes_commit` where each note in `replace` holds the
    /// given bytes instead (`None`: the note is removed), laid out flat as git writes small
    /// notes trees; returns the new commit.
    pub fn rewrite_notes(
        &self,
        notes_commit: &str,
        replace: &std::collections::BTreeMap<String, Option<Vec<u8>>>,
        message: &str,
        author: &super::Author,
    ) -> Result<String, GitError> {
        let raw = self.raw();
        let parent = raw.find_commit(oid(notes_commit)?).git()?;
        let mut builder = raw.treebuilder(None).git()?;
        for (object, blob) in self.all_notes(notes_commit)? {
            let id = match replace.get(&object) {
                Some(Some(bytes)) => raw.blob(bytes).git()?,
                Some(None) => continue,
                None => oid(&blob)?,
            };
            builder.insert(&object, id, 0o100644).git()?;
        }
        let tree = raw.find_tree(builder.write().git()?).git()?;
        let sig = author.signature()?;
        let commit = raw
            .commit(None, &sig, &sig, message, &tree, &[&parent])
            .git()?;
        Ok(commit.to_string())
    }

    /// Append `entry` (one JSON line) to the repair log ([`AUDIT_REF`]): a commit whose
    /// message is the entry, on top of the previous one. Returns the commit.
    ///
    /// [`AUDIT_REF`]: crate::contracts::layout::AUDIT_REF
    pub fn append_audit(&self, entry: &str, author: &super::Author) -> Result<String, GitError> {
        use crate::contracts::layout::AUDIT_REF;
        let raw = self.raw();
        let parent = raw
            .find_reference(AUDIT_REF)
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let empty = raw
            .find_tree(raw.treebuilder(None).git()?.write().git()?)
            .git()?;
        let sig = author.signature()?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let commit = raw
            .commit(None, &sig, &sig, entry, &empty, &parents)
            .git()?;
        let expected = parent.as_ref().map(|p| p.id().to_string());
        self.set_refs_from(&[(AUDIT_REF.to_owned(), expected, Some(commit.to_string()))])?;
        Ok(commit.to_string())
    }
}
