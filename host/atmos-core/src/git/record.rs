//! Writing one rollout's records: every history tag and every state-ref move in one libgit2
//! transaction, so a reader sees all of a rollout or none of it. Tags are never overwritten
//! (a taken name gets the next `.N` suffix), and a state ref that moved since the rollout
//! read it is not overwritten either (local compare-and-swap).

use std::time::Duration;

use git2::{ErrorCode, ObjectType, Signature};

use super::{GitError, GitRepo, Libgit2, oid};
use crate::contracts::TagRecord;
use crate::contracts::layout::tag_name;

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

/// Who writes the tags, and the SSH key that signs them (as `git tag -s` with
/// `gpg.format=ssh` would, so `git tag -v` verifies them).
#[derive(Debug, Clone)]
pub struct Tagger {
    /// Display name.
    pub name: String,
    /// Email (or the deployer identity when no email is known).
    pub email: String,
    /// The key that signs every tag, when one is configured.
    pub signing_key: Option<std::path::PathBuf>,
}

const ATTEMPTS: u32 = 200;

fn exists(repo: &GitRepo, refname: &str) -> Result<bool, GitError> {
    match repo.raw().find_reference(refname) {
        Ok(_) => Ok(true),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(false),
        Err(e) => Err(GitError::libgit2(e)),
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
    let sig = Signature::now(&tagger.name, &tagger.email).git()?;
    // Names of archived records are taken too: the ledger still holds them.
    let mut archived = std::collections::HashSet::new();
    for p in records {
        let r = &p.record;
        for e in repo.ledger_entries(&r.deployment, Some(&r.target))?.0 {
            archived.insert(e.name);
        }
    }
    let mut suffix = vec![0u32; records.len()];
    for _ in 0..ATTEMPTS {
        // First free name per record.
        let mut names = Vec::with_capacity(records.len());
        for (i, p) in records.iter().enumerate() {
            let r = &p.record;
            loop {
                let name = tag_name(&r.deployment, &r.target, &r.component, segment, suffix[i]);
                if !archived.contains(&name) && !exists(repo, &format!("refs/tags/{name}"))? {
                    names.push(name);
                    break;
                }
                suffix[i] += 1;
            }
        }
        match try_write(repo, records, &names, &sig, tagger)? {
            true => return Ok(names),
            false => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    Err(GitError::Git {
        message:
            "could not lock the deployment refs after many attempts (another rollout is writing)"
                .into(),
    })
}

/// One attempt; `Ok(false)` means "lost a race, choose names again".
fn try_write(
    repo: &GitRepo,
    records: &[PendingRecord],
    names: &[String],
    sig: &Signature<'_>,
    tagger: &Tagger,
) -> Result<bool, GitError> {
    let raw = repo.raw();
    let mut tx = raw.transaction().git()?;
    for name in names {
        match tx.lock_ref(&format!("refs/tags/{name}")) {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::Locked => return Ok(false),
            Err(e) => return Err(GitError::libgit2(e)),
        }
    }
    for p in records {
        if let Some(s) = &p.state {
            match tx.lock_ref(&s.refname) {
                Ok(()) => {}
                Err(e) if e.code() == ErrorCode::Locked => return Ok(false),
                Err(e) => return Err(GitError::libgit2(e)),
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
        let target = raw
            .find_object(oid(&p.record.git_sha)?, Some(ObjectType::Commit))
            .git()?;
        let tag = tag_object(repo, name, target.id(), sig, &p.record.to_message(), tagger)?;
        tx.set_target(
            &format!("refs/tags/{name}"),
            tag,
            Some(sig),
            "atmos: record rollout",
        )
        .git()?;
        if let Some(s) = &p.state {
            tx.set_target(&s.refname, oid(&s.new)?, Some(sig), "atmos: rollout")
                .git()?;
        }
    }
    tx.commit().git()?;
    Ok(true)
}

/// Write an annotated tag object by hand — `object`, `type`, `tag`, `tagger`, a blank line,
/// the message — and, with a signing key, the SSH signature of all of that appended, which is
/// the layout git writes for `git tag -s` and checks with `git tag -v`.
fn tag_object(
    repo: &GitRepo,
    name: &str,
    target: git2::Oid,
    sig: &Signature<'_>,
    message: &str,
    tagger: &Tagger,
) -> Result<git2::Oid, GitError> {
    let when = sig.when();
    let offset = when.offset_minutes();
    let sign = if offset < 0 { '-' } else { '+' };
    let mut buf = format!(
        "object {target}\ntype commit\ntag {name}\ntagger {} <{}> {} {sign}{:02}{:02}\n\n{message}",
        sig.name().unwrap_or("atmos"),
        sig.email().unwrap_or(""),
        when.seconds(),
        offset.abs() / 60,
        offset.abs() % 60,
    );
    if !buf.ends_with('\n') {
        buf.push('\n');
    }
    if let Some(key) = &tagger.signing_key {
        let signature = crate::signing::sign(buf.as_bytes(), key, crate::signing::TAG_NAMESPACE)
            .map_err(|e| GitError::Signing {
                key: key.clone(),
                message: e.to_string(),
            })?;
        buf.push_str(&signature);
    }
    repo.raw()
        .odb()
        .git()?
        .write(ObjectType::Tag, buf.as_bytes())
        .git()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::Status;

    fn repo_with_commit() -> (tempfile::TempDir, GitRepo, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = git2::Repository::init(dir.path()).expect("init");
        let sig = Signature::now("t", "t@example.com").expect("sig");
        let tree = raw
            .find_tree(raw.index().expect("index").write_tree().expect("tree"))
            .expect("tree");
        let oid = raw
            .commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .expect("commit");
        drop(tree);
        let repo = GitRepo::discover(dir.path()).expect("open");
        (dir, repo, oid.to_string())
    }

    fn pending(sha: &str, expected: Option<String>) -> PendingRecord {
        PendingRecord {
            record: TagRecord {
                deployment: "d".into(),
                target: "t".into(),
                component: "c".into(),
                deployed_by: "me".into(),
                git_sha: sha.into(),
                timestamp: "2025-01-22T12:00:00Z".into(),
                status: Status::Success,
                promoted_from: None,
                promoted_at: None,
                rollback_of: None,
                previous_record: None,
                previous_sha: None,
                build_id: None,
                component_type: None,
                duration_ms: None,
                error: None,
                verification: None,
                rules_ref: None,
                rules_commit: None,
                approved_commit: None,
                image: None,
                image_digest: None,
                context: Default::default(),
                rollout_id: None,
                metadata: Default::default(),
                decisions: vec![],
            },
            state: Some(StateUpdate {
                refname: "refs/atmos/deployments/d/t/c".into(),
                expected,
                new: sha.into(),
            }),
        }
    }

    #[test]
    fn same_second_writes_get_suffixes_and_never_overwrite() {
        let (_dir, repo, sha) = repo_with_commit();
        let tagger = Tagger {
            name: "t".into(),
            email: "t@example.com".into(),
            signing_key: None,
        };
        let seg = "2025-01-22T12-00-00Z";
        let first = write(&repo, seg, &[pending(&sha, None)], &tagger).expect("first");
        let second =
            write(&repo, seg, &[pending(&sha, Some(sha.clone()))], &tagger).expect("second");
        let third = write(&repo, seg, &[pending(&sha, Some(sha.clone()))], &tagger).expect("third");
        assert_eq!(first, vec![format!("atmos/deployments/d/t/c/{seg}")]);
        assert_eq!(second, vec![format!("atmos/deployments/d/t/c/{seg}.1")]);
        assert_eq!(third, vec![format!("atmos/deployments/d/t/c/{seg}.2")]);
        assert_eq!(
            repo.deployed_commit("d", "t", "c").expect("read"),
            Some(sha)
        );
    }

    #[test]
    fn a_state_ref_moved_by_someone_else_is_not_overwritten() {
        let (_dir, repo, sha) = repo_with_commit();
        let tagger = Tagger {
            name: "t".into(),
            email: "t@example.com".into(),
            signing_key: None,
        };
        write(&repo, "s1", &[pending(&sha, None)], &tagger).expect("first");
        // This writer read the ref before it existed: its expectation is stale.
        let err = write(&repo, "s2", &[pending(&sha, None)], &tagger).expect_err("stale");
        assert!(matches!(err, GitError::RefMoved { .. }), "{err}");
        let tags: Vec<String> = repo
            .raw()
            .tag_names(Some("atmos/*"))
            .expect("tags")
            .iter()
            .flatten()
            .flatten()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            tags,
            vec!["atmos/deployments/d/t/c/s1"],
            "nothing of the refused write is visible"
        );
    }
}
