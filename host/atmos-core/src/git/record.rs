//! Writing one rollout's records: every history tag and every state-ref move in one libgit2
//! transaction, so a reader sees all of a rollout or none of it. Tags are never overwritten
//! (a taken name gets the next `.N` suffix), and a state ref that moved since the rollout
//! read it is not overwritten either (local compare-and-swap).

use std::time::Duration;

use git2::{ErrorCode, ObjectType, Oid, Signature};

use super::tags::{TagRecord, tag_name};
use super::{GitError, GitRepo};

/// Move a state ref from what was read before the rollout to the deployed commit.
#[derive(Debug, Clone)]
pub struct StateUpdate {
    /// Full ref name.
    pub refname: String,
    /// Its value when the rollout was planned (`None`: did not exist).
    pub expected: Option<String>,
    /// The deployed commit.
    pub new: String,
}

/// One component's record.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    /// The tag message body.
    pub record: TagRecord,
    /// Set for components that succeeded.
    pub state: Option<StateUpdate>,
}

/// Who signs the tags.
#[derive(Debug, Clone)]
pub struct Tagger {
    /// Display name.
    pub name: String,
    /// Email (or the deployer identity when no email is known).
    pub email: String,
}

const ATTEMPTS: u32 = 200;

fn exists(repo: &GitRepo, refname: &str) -> Result<bool, GitError> {
    match repo.raw().find_reference(refname) {
        Ok(_) => Ok(true),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Write every record; returns each record's tag name (without `refs/tags/`), in order.
pub fn write(
    repo: &GitRepo,
    segment: &str,
    records: &[PendingRecord],
    tagger: &Tagger,
) -> Result<Vec<String>, GitError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let sig = Signature::now(&tagger.name, &tagger.email)?;
    let mut suffix = vec![0u32; records.len()];
    for _ in 0..ATTEMPTS {
        // First free name per record.
        let mut names = Vec::with_capacity(records.len());
        for (i, p) in records.iter().enumerate() {
            let r = &p.record;
            loop {
                let name = tag_name(&r.deployment, &r.target, &r.component, segment, suffix[i]);
                if !exists(repo, &format!("refs/tags/{name}"))? {
                    names.push(name);
                    break;
                }
                suffix[i] += 1;
            }
        }
        match try_write(repo, records, &names, &sig)? {
            true => return Ok(names),
            false => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    Err(GitError::Git(git2::Error::from_str(
        "could not lock the deployment refs after many attempts (another rollout is writing)",
    )))
}

/// One attempt; `Ok(false)` means "lost a race, choose names again".
fn try_write(
    repo: &GitRepo,
    records: &[PendingRecord],
    names: &[String],
    sig: &Signature<'_>,
) -> Result<bool, GitError> {
    let raw = repo.raw();
    let mut tx = raw.transaction()?;
    for name in names {
        match tx.lock_ref(&format!("refs/tags/{name}")) {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::Locked => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    for p in records {
        if let Some(s) = &p.state {
            match tx.lock_ref(&s.refname) {
                Ok(()) => {}
                Err(e) if e.code() == ErrorCode::Locked => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }
    // Holding the locks: nobody can create these tags or move these refs until we commit.
    for name in names {
        if exists(repo, &format!("refs/tags/{name}"))? {
            return Ok(false);
        }
    }
    for p in records {
        if let Some(s) = &p.state {
            let now = repo
                .raw()
                .refname_to_id(&s.refname)
                .ok()
                .map(|o| o.to_string());
            if now != s.expected {
                return Err(GitError::RefMoved {
                    refname: s.refname.clone(),
                    expected: s.expected.clone().unwrap_or_else(|| "(absent)".into()),
                    found: now.unwrap_or_else(|| "(absent)".into()),
                });
            }
        }
    }
    for (p, name) in records.iter().zip(names) {
        let target =
            raw.find_object(Oid::from_str(&p.record.git_sha)?, Some(ObjectType::Commit))?;
        let tag = raw.tag_annotation_create(name, &target, sig, &p.record.to_message())?;
        tx.set_target(
            &format!("refs/tags/{name}"),
            tag,
            Some(sig),
            "atmos: record rollout",
        )?;
        if let Some(s) = &p.state {
            tx.set_target(
                &s.refname,
                Oid::from_str(&s.new)?,
                Some(sig),
                "atmos: rollout",
            )?;
        }
    }
    tx.commit()?;
    Ok(true)
}
