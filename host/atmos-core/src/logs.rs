//! Executor output kept with the records: each component's log of a rollout is a git note on
//! that rollout's history tag (`refs/notes/atmos/<deployment>/logs`), pushed with the
//! records, so that any clone can show what ran (`atmos deployment logs`). A log longer than
//! [`CAP`] keeps its beginning and its end around a marker saying what was left out. The full
//! log stays in the machine's `.git/atmos/logs/` as well.

use std::path::{Path, PathBuf};

use crate::contracts::layout::notes_ref;
use crate::contracts::{Status, TagRecord};
use crate::git::{Author, GitError, GitRepo};

/// The most of one component's log kept in git: 256 KiB (git compresses it).
pub const CAP: usize = 256 * 1024;

/// How much of a long log's beginning is kept (the rest of the cap goes to its end, where
/// failures are).
const HEAD: usize = 64 * 1024;

/// The notes ref that holds a deployment's logs.
pub fn logs_ref(deployment: &str) -> String {
    notes_ref(deployment, "logs")
}

/// `text` cut to [`CAP`] bytes (on character boundaries): its head, a marker, its tail.
pub fn capped(text: &str) -> String {
    if text.len() <= CAP {
        return text.to_owned();
    }
    let mut head_end = HEAD;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - (CAP - HEAD);
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    format!(
        "{}\n… [atmos: {} bytes of this log left out; the whole log is in .git/atmos/logs/ on the machine that ran it] …\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

/// Keep the log file `log` of the record `tag` (a tag name under `refs/tags/`).
pub fn keep(
    git: &GitRepo,
    deployment: &str,
    tag: &str,
    log: &Path,
    author: &Author,
) -> Result<(), GitError> {
    let bytes = std::fs::read(log).map_err(|source| GitError::Io {
        path: log.to_owned(),
        source,
    })?;
    let refname = format!("refs/tags/{tag}");
    let entry = git.refs().find(&refname)?.ok_or_else(|| GitError::Git {
        message: format!("the record {refname} the log belongs to is not in this repository"),
    })?;
    // A NUL would make git refuse the whole note: a command could keep its own output out
    // of the records by printing one. Shown as `\0` instead.
    let text = capped(&String::from_utf8_lossy(&bytes).replace('\0', "\\0"));
    git.write_note(&logs_ref(deployment), &entry.oid, &text, author)
}

/// Which rollout's logs to show.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// Only this component.
    pub component: Option<String>,
    /// The rollout with this id (as in `history`'s records).
    pub rollout: Option<String>,
    /// The newest rollout that deployed this commit.
    pub git_sha: Option<String>,
}

/// One component's log of a rollout.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ComponentLog {
    /// Component.
    pub component: String,
    /// The record (tag name).
    pub tag: String,
    /// Its outcome.
    pub status: Status,
    /// The commit it deployed.
    pub git_sha: String,
    /// The log, as kept; `None` when the rollout kept none (atmos before logs were kept, or a
    /// component with no output file).
    pub log: Option<String>,
    /// True when the kept log was cut to the cap.
    pub truncated: bool,
}

/// The logs of one rollout of a target.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct LogsReport {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// The rollout (its id, or the timestamp its records share).
    pub rollout: String,
    /// When it started.
    pub started_at: String,
    /// Who ran it.
    pub deployed_by: String,
    /// Each component's log.
    pub components: Vec<ComponentLog>,
}

crate::document!(LogsReport => "LogsReport");

/// Why logs cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// Reading git.
    #[error(transparent)]
    Git(#[from] GitError),
    /// No rollout matches.
    #[error("no rollout of {deployment} to {target} {what}")]
    NoRollout {
        /// Deployment.
        deployment: String,
        /// Target.
        target: String,
        /// What was asked for.
        what: String,
    },
}

impl crate::error::Actionable for LogsError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            LogsError::Git(e) => e.exit(),
            LogsError::NoRollout { .. } => crate::exit::Exit::Usage,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            LogsError::Git(e) => e.hint(),
            LogsError::NoRollout {
                deployment, target, ..
            } => Some(format!(
                "`atmos deployment history {deployment} --target {target}` lists the rollouts; fetch first (--remote) if it ran elsewhere"
            )),
        }
    }
}

/// The logs of the newest rollout of `target` (or the one `selector` names).
pub fn read(
    git: &GitRepo,
    deployment: &str,
    target: &str,
    selector: &Selector,
) -> Result<LogsReport, LogsError> {
    let groups = git.history_groups(deployment, Some(target))?;
    let mut timeline = git.timeline(deployment, &groups)?;
    // A rollout's records share its id (older records: its timestamp segment); its intent
    // holds no log, its outcome does.
    let mut rollouts: Vec<(String, Vec<(crate::git::tags::TagEntry, TagRecord)>)> = Vec::new();
    while let Some(link) = timeline.next_link()? {
        let (e, record) = (&link.entry, (*link.record).clone());
        if record.status == crate::contracts::Status::Started
            && rollouts
                .iter()
                .flat_map(|(_, l)| l)
                .any(|(_, r)| r.intent.as_deref() == Some(e.oid.as_str()))
        {
            continue;
        }
        let id = record
            .rollout_id
            .clone()
            .unwrap_or_else(|| record.timestamp.clone());
        match rollouts.iter_mut().find(|(r, _)| *r == id) {
            Some((_, list)) => list.push((e.clone(), record)),
            None => rollouts.push((id, vec![(e.clone(), record)])),
        }
    }
    let wanted = rollouts.into_iter().find(|(id, records)| {
        selector.rollout.as_deref().is_none_or(|r| r == id)
            && selector.git_sha.as_deref().is_none_or(|sha| {
                records
                    .iter()
                    .any(|(_, r)| r.git_sha.starts_with(sha) && sha.len() >= 4)
            })
            && selector
                .component
                .as_deref()
                .is_none_or(|c| records.iter().any(|(_, r)| r.component == c))
    });
    let Some((id, records)) = wanted else {
        let mut what = Vec::new();
        if let Some(r) = &selector.rollout {
            what.push(format!("with id {r}"));
        }
        if let Some(s) = &selector.git_sha {
            what.push(format!("of commit {s}"));
        }
        if let Some(c) = &selector.component {
            what.push(format!("running {c}"));
        }
        return Err(LogsError::NoRollout {
            deployment: deployment.to_owned(),
            target: target.to_owned(),
            what: if what.is_empty() {
                "yet".into()
            } else {
                what.join(", ")
            },
        });
    };
    let notes = logs_ref(deployment);
    let mut components = Vec::new();
    let (started_at, deployed_by) = records
        .first()
        .map(|(_, r)| (r.timestamp.clone(), r.deployed_by.clone()))
        .unwrap_or_default();
    for (entry, record) in records {
        if selector
            .component
            .as_deref()
            .is_some_and(|c| c != record.component)
        {
            continue;
        }
        let log = git.read_note(&notes, &entry.oid)?;
        components.push(ComponentLog {
            component: record.component.clone(),
            truncated: log
                .as_deref()
                .is_some_and(|l| l.contains("bytes of this log left out")),
            tag: entry.name.clone(),
            status: record.status,
            git_sha: record.git_sha.clone(),
            log,
        });
    }
    Ok(LogsReport {
        deployment: deployment.to_owned(),
        target: target.to_owned(),
        rollout: id,
        started_at,
        deployed_by,
        components,
    })
}

/// The folder of the newest local run of `deployment` to `target` (`.git/atmos/logs/…`), if
/// any: what `logs --follow` reads while a rollout runs in this clone.
pub fn newest_local_run(git_dir: &Path, deployment: &str, target: &str) -> Option<PathBuf> {
    let dir = git_dir
        .join("atmos")
        .join("logs")
        .join(deployment)
        .join(target);
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.to_string_lossy().ends_with("-apply"))
        .collect();
    runs.sort();
    runs.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_keeps_its_head_and_tail_and_says_what_was_cut() {
        let text = format!("{}{}", "a".repeat(CAP), "é".repeat(CAP / 2));
        let kept = capped(&text);
        assert!(kept.len() < CAP + 200);
        assert!(kept.starts_with("aaa"));
        assert!(kept.ends_with('é'));
        assert!(kept.contains("bytes of this log left out"));
        assert_eq!(capped("short\n"), "short\n");
    }
}
