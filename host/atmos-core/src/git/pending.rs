//! Records written locally that did not reach the shared remote (it was unreachable, or the
//! run was `--offline`): kept in `<git dir>/atmos/pending/`, one file per run, and published
//! before anything next reads the remote — a fetch mirrors the remote's state refs, which would
//! otherwise put its older values over them, and their tags would never be pushed.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::remote::{Expect, RefUpdate, Remote, RemoteError};

/// One ref of a pending run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingRef {
    name: String,
    new: String,
    /// The remote value the run started from (`None`: the ref did not exist).
    expect: Option<String>,
}

/// One run's records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    remote: String,
    written_at: String,
    refs: Vec<PendingRef>,
}

impl Remote {
    fn pending_dir(&self) -> PathBuf {
        self.git_dir.join("atmos").join("pending")
    }

    /// Keep `updates` (a run's tags and state refs) to publish later.
    pub fn save_pending(&self, updates: &[RefUpdate]) -> Result<(), RemoteError> {
        let refs: Vec<PendingRef> = updates
            .iter()
            .filter_map(|u| {
                Some(PendingRef {
                    name: u.name.clone(),
                    new: u.new.clone()?,
                    expect: match &u.expect {
                        Expect::Absent => None,
                        Expect::Value(v) => Some(v.clone()),
                    },
                })
            })
            .collect();
        if refs.is_empty() {
            return Ok(());
        }
        let now = jiff::Timestamp::now();
        let pending = Pending {
            remote: self.name.clone(),
            written_at: now.to_string(),
            refs,
        };
        let dir = self.pending_dir();
        let io = |e: std::io::Error| RemoteError::Git {
            args: format!("write {}", dir.display()),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let file = dir.join(format!(
            "{}-{}.json",
            now.as_nanosecond(),
            std::process::id()
        ));
        let text = serde_json::to_string_pretty(&pending).unwrap_or_default();
        std::fs::write(&file, text).map_err(io)
    }

    /// What publishing earlier runs' records did (taken once).
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.borrow_mut())
    }

    /// Publish the records of earlier runs, oldest first: tags are created (history is only
    /// added to); a state ref moves only from the value its run started from — if another
    /// runner moved it since, theirs stands and only the history is published.
    pub fn publish_pending(&self) -> Result<(), RemoteError> {
        let dir = self.pending_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let Some(pending) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| serde_json::from_str::<Pending>(&t).ok())
            else {
                // Not ours to understand: set aside, never lost.
                let _ = std::fs::rename(&file, file.with_extension("unreadable"));
                continue;
            };
            if pending.remote != self.name {
                continue;
            }
            let now = self.remote_values(pending.refs.iter().map(|r| r.name.as_str()))?;
            let mut updates = Vec::new();
            let mut kept_theirs = Vec::new();
            for r in &pending.refs {
                let there = now.get(&r.name);
                if there == Some(&r.new) {
                    continue;
                }
                if r.name.starts_with("refs/tags/") {
                    if there.is_none() {
                        updates.push(RefUpdate {
                            name: r.name.clone(),
                            new: Some(r.new.clone()),
                            expect: Expect::Absent,
                        });
                    }
                } else if there == r.expect.as_ref() {
                    updates.push(RefUpdate {
                        name: r.name.clone(),
                        new: Some(r.new.clone()),
                        expect: match &r.expect {
                            Some(v) => Expect::Value(v.clone()),
                            None => Expect::Absent,
                        },
                    });
                } else {
                    kept_theirs.push(r.name.clone());
                }
            }
            match self.push(&updates) {
                Ok(()) => {}
                // The remote refuses these records for good (a server guard: history is only
                // added at its end, and newer records landed meanwhile). Retrying on every
                // fetch would stop this clone from ever reading the remote again: set them
                // aside, say so, and go on. They stay in the local history.
                // (The remote answered a moment ago, so this is its refusal, not an outage; a
                // lost compare-and-swap race is `Rejected` and is tried again next time.)
                Err(RemoteError::Rejected { detail } | RemoteError::Git { detail, .. })
                    if !detail.contains("stale info") =>
                {
                    let aside = file.with_extension("refused");
                    let _ = std::fs::rename(&file, &aside);
                    self.notes.borrow_mut().push(format!(
                        "{} refused the records written at {} while it was out of reach ({}); they stay in this clone's history and are set aside in {}",
                        self.name,
                        pending.written_at,
                        detail.lines().next().unwrap_or_default(),
                        aside.display()
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            }
            let _ = std::fs::remove_file(&file);
            let mut note = format!(
                "published {} ref(s) recorded at {} while {} was out of reach",
                updates.len(),
                pending.written_at,
                self.name
            );
            if !kept_theirs.is_empty() {
                note.push_str(&format!(
                    "; another runner had moved {} since, so theirs stands and only the history was added",
                    kept_theirs.join(", ")
                ));
            }
            self.notes.borrow_mut().push(note);
        }
        Ok(())
    }

    /// The values `names` hold on the remote (absent ones missing from the map).
    fn remote_values<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, String>, RemoteError> {
        let names: Vec<&str> = names.collect();
        let mut args = vec!["ls-remote", self.name.as_str()];
        args.extend(names.iter().copied());
        let out = self.git_output(&args)?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| {
                let (oid, name) = l.split_once('\t')?;
                names
                    .contains(&name)
                    .then(|| (name.to_owned(), oid.to_owned()))
            })
            .collect())
    }
}
