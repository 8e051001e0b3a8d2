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
    Ok(latest_counting(git, deployment, commit, None)?.latest)
}

/// The builds that count, and the lines set aside.
#[derive(Debug, Clone, Default)]
pub struct Counted {
    /// The newest counting build of each component.
    pub latest: BTreeMap<String, BuildRecord>,
    /// `(what, why)` of each build that does not count.
    pub set_aside: Vec<(String, String)>,
}

/// [`latest`], counting with `verified_only` (the allowed signers, and what requires them)
/// only builds signed by their builder with a key allowed for them.
pub fn latest_counting(
    git: &GitRepo,
    deployment: &str,
    commit: &str,
    verified_only: Option<(Option<&std::path::Path>, &str)>,
) -> Result<Counted, GitError> {
    let (records, _) = read(git, deployment, commit)?;
    let mut out = Counted::default();
    for r in records {
        if let Some((signers, why)) = verified_only {
            let verdict = match (&r.signature, signers) {
                (None, _) => Err("unsigned".to_owned()),
                (Some(_), None) => Err("signed, but approvers.allowed_signers is not set".into()),
                (Some(sig), Some(path)) => crate::signing::verify(
                    r.signed_payload().as_bytes(),
                    sig,
                    &r.built_by,
                    path,
                    crate::contracts::build::SIGNING_NAMESPACE,
                )
                .map_err(|e| format!("its signature does not verify: {e}")),
            };
            if let Err(reason) = verdict {
                out.set_aside.push((
                    format!(
                        "the build of {} at {} by {} ({})",
                        r.component,
                        crate::git::short(commit),
                        r.built_by,
                        r.built_at
                    ),
                    format!("{reason} ({why})"),
                ));
                continue;
            }
        }
        match out.latest.get(&r.component) {
            Some(have) if have.built_at > r.built_at => {}
            _ => {
                out.latest.insert(r.component.clone(), r);
            }
        }
    }
    Ok(out)
}

/// Sign `record` as its builder with `key`.
pub fn sign(
    record: &BuildRecord,
    key: &crate::signing::Key,
) -> Result<String, crate::signing::SignError> {
    crate::signing::sign(
        record.signed_payload().as_bytes(),
        key,
        crate::contracts::build::SIGNING_NAMESPACE,
    )
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
