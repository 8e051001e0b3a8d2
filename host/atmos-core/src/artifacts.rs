//! What was built: the builds note of each commit (`refs/notes/atmos/<deployment>/builds`),
//! read and appended. The newest record of a component is its build; a rebuild (`--force`)
//! appends a newer one, and rollouts of promoted targets keep deploying the digest their
//! source ran.

use std::collections::BTreeMap;

use crate::contracts::BuildRecord;
use crate::contracts::layout::notes_ref;
use crate::git::{Author, GitError, GitRepo};

/// The notes ref of builds.
pub fn builds_ref(deployment: &str) -> String {
    notes_ref(deployment, "builds")
}

/// Every build record of `commit`, in the order written, and lines that are not records.
pub fn read(
    git: &GitRepo,
    deployment: &str,
    commit: &str,
) -> Result<(Vec<BuildRecord>, Vec<String>), GitError> {
    let text = git
        .read_note(&builds_ref(deployment), commit)?
        .unwrap_or_default();
    let mut records = Vec::new();
    let mut odd = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<BuildRecord>(line) {
            Ok(r) if r.deployment == deployment && r.git_sha == commit => records.push(r),
            _ => odd.push(line.to_owned()),
        }
    }
    Ok((records, odd))
}

/// The build of each component of `commit`: its newest record (by `built_at`, then order).
pub fn latest(
    git: &GitRepo,
    deployment: &str,
    commit: &str,
) -> Result<BTreeMap<String, BuildRecord>, GitError> {
    let (records, _) = read(git, deployment, commit)?;
    let mut out: BTreeMap<String, BuildRecord> = BTreeMap::new();
    for r in records {
        match out.get(&r.component) {
            Some(have) if have.built_at > r.built_at => {}
            _ => {
                out.insert(r.component.clone(), r);
            }
        }
    }
    Ok(out)
}

/// Append one record to the commit's builds note.
pub fn append(git: &GitRepo, record: &BuildRecord, author: &Author) -> Result<(), GitError> {
    let line = serde_json::to_string(record).unwrap_or_default();
    git.append_note_line(
        &builds_ref(&record.deployment),
        &record.git_sha,
        &line,
        author,
    )
}
