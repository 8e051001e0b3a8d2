//! Writing one rollout's records: every history tag, every chain-ref move and every
//! state-ref move in one libgit2 transaction, so a reader sees all of a rollout's step or none
//! of it. Each record takes its place at the end of its target/component's chain — the record
//! the chain ref names becomes its `previous_record`, its `sequence` one more — whatever its
//! time says. Tags are never overwritten (a taken name gets the next `.N` suffix), and a chain
//! or state ref that moved since it was read is not overwritten either (local
//! compare-and-swap).

use std::collections::BTreeMap;
use std::time::Duration;

use git2::{ErrorCode, ObjectType, Signature};

use super::{GitError, GitRepo, Libgit2, oid};
use crate::contracts::TagRecord;
use crate::contracts::layout::{chain_ref, tag_name, timestamp_segment};

/// Move a state ref from what was read before the rollout to the deployed commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateUpdate {
    /// Full ref name.
    pub refname: String,
    /// Its value when the rollout was planned (`None`: did not exist).
    pub expected: Option<String>,
    /// The deployed commit.
    pub new: String,
}

/// One component's record, before its place in the chain is known.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    /// The tag message body; `previous_record` and `sequence` are set when it is written.
    pub record: TagRecord,
    /// Set for components that succeeded.
    pub state: Option<StateUpdate>,
}

/// A record as written: its tag, the object, and the record with its place in the chain.
#[derive(Debug, Clone)]
pub struct Written {
    /// Tag name (without `refs/tags/`).
    pub name: String,
    /// The tag object.
    pub oid: String,
    /// The record, chain fields set.
    pub record: TagRecord,
}

/// Who writes the tags, and the SSH key that signs them (as `git tag -s` with
/// `gpg.format=ssh` would, so `git tag -v` verifies them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tagger {
    /// Display name.
    pub name: String,
    /// Email (or the deployer identity when no email is known).
    pub email: String,
    /// The key that signs every tag, when one is configured.
    pub signing_key: Option<crate::signing::Key>,
}

/// How long writing waits for refs another process has locked (a concurrent rollout in this
/// clone, `git gc`): bounded, then an error naming the lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

fn exists(repo: &GitRepo, refname: &str) -> Result<bool, GitError> {
    match repo.raw().find_reference(refname) {
        Ok(_) => Ok(true),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(false),
        Err(e) => Err(GitError::libgit2(e)),
    }
}

/// The end of a target/component's chain: the newest record's tag object and its sequence
/// (0 for a record written before numbering), or `None` for an empty history. Without a
/// chain ref (a history written before them), the newest record by the time in its name.
pub fn chain_end(
    repo: &GitRepo,
    deployment: &str,
    target: &str,
    component: &str,
) -> Result<Option<(String, u64)>, GitError> {
    let mut walk = repo.chain(deployment, target, component)?;
    Ok(walk
        .next_link()?
        .map(|l| (l.entry.oid.clone(), l.record.sequence.unwrap_or(0))))
}

/// Write every record, each at the end of its chain; returns them as written, in order.
pub fn write(
    repo: &GitRepo,
    records: &[PendingRecord],
    tagger: &Tagger,
    busy: &dyn Fn(&str, Duration),
) -> Result<Vec<Written>, GitError> {
    write_waiting(repo, records, tagger, LOCK_WAIT, busy)
}

/// [`write()`], waiting at most `wait` for refs another process has locked; `busy` hears of
/// the first ref found locked and how long the write waits for it.
pub fn write_waiting(
    repo: &GitRepo,
    records: &[PendingRecord],
    tagger: &Tagger,
    wait: Duration,
    busy: &dyn Fn(&str, Duration),
) -> Result<Vec<Written>, GitError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let sig = Signature::now(&tagger.name, &tagger.email).git()?;
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(5);
    let mut told = false;
    let mut fresh: Option<GitRepo> = None;
    loop {
        // A fresh handle after a busy attempt: libgit2 caches `packed-refs`, and a write that
        // found it locked can leave that cache out of step with the file.
        let repo = fresh.as_ref().unwrap_or(repo);
        match try_write(repo, records, &sig, tagger)? {
            Attempt::Written(w) => return Ok(w),
            Attempt::Busy(refname) if started.elapsed() < wait => {
                if !told && started.elapsed() >= Duration::from_millis(100) {
                    told = true;
                    busy(&refname, wait);
                }
                fresh = Some(GitRepo::discover(repo.git_dir())?);
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            Attempt::Busy(refname) => {
                return Err(GitError::Locked {
                    refname,
                    waited: wait,
                });
            }
        }
    }
}

enum Attempt {
    Written(Vec<Written>),
    /// A ref was locked by another process, or a name was taken meanwhile: try again.
    Busy(String),
}

/// One attempt at writing every record.
fn try_write(
    repo: &GitRepo,
    records: &[PendingRecord],
    sig: &Signature<'_>,
    tagger: &Tagger,
) -> Result<Attempt, GitError> {
    let raw = repo.raw();
    // Where each chain ends now, and the names taken (archived records' too).
    let mut ends: BTreeMap<(String, String, String), Option<(String, u64)>> = BTreeMap::new();
    let mut archived: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut chain_values: BTreeMap<String, Option<String>> = BTreeMap::new();
    for p in records {
        let r = &p.record;
        let key = (r.deployment.clone(), r.target.clone(), r.component.clone());
        if let std::collections::btree_map::Entry::Vacant(slot) = ends.entry(key) {
            slot.insert(chain_end(repo, &r.deployment, &r.target, &r.component)?);
            let name = chain_ref(&r.deployment, &r.target, &r.component);
            chain_values.insert(
                name.clone(),
                repo.chain_tip(&r.deployment, &r.target, &r.component)?,
            );
            for e in repo.ledger_entries(&r.deployment, Some(&r.target))?.0 {
                archived.insert(e.name);
            }
        }
    }
    let mut tx = raw.transaction().git()?;
    for name in chain_values.keys() {
        if !lock(&mut tx, name)? {
            return Ok(Attempt::Busy(name.clone()));
        }
    }
    for p in records {
        if let Some(s) = &p.state
            && !lock(&mut tx, &s.refname)?
        {
            return Ok(Attempt::Busy(s.refname.clone()));
        }
    }
    // Holding the chain refs: nobody appends to these histories until we commit.
    for (name, was) in &chain_values {
        let now = raw.refname_to_id(name).ok().map(|o| o.to_string());
        if now != *was {
            return Ok(Attempt::Busy(name.clone()));
        }
    }
    for p in records {
        if let Some(s) = &p.state {
            let now = raw.refname_to_id(&s.refname).ok().map(|o| o.to_string());
            if now != s.expected {
                return Err(GitError::RefMoved {
                    refname: s.refname.clone(),
                    expected: s.expected.clone().unwrap_or_else(|| "(absent)".into()),
                    found: now.unwrap_or_else(|| "(absent)".into()),
                });
            }
        }
    }
    let mut written = Vec::with_capacity(records.len());
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    for p in records {
        let mut record = p.record.clone();
        let key = (
            record.deployment.clone(),
            record.target.clone(),
            record.component.clone(),
        );
        let end = ends.get(&key).cloned().flatten();
        record.previous_record = end.as_ref().map(|(o, _)| o.clone());
        record.sequence = Some(end.as_ref().map_or(0, |(_, n)| *n) + 1);
        let segment = record_segment(&record);
        let mut n = 0;
        let name = loop {
            let name = tag_name(
                &record.deployment,
                &record.target,
                &record.component,
                &segment,
                n,
            );
            if !archived.contains(&name)
                && !taken.contains(&name)
                && !exists(repo, &format!("refs/tags/{name}"))?
            {
                break name;
            }
            n += 1;
        };
        if !lock(&mut tx, &format!("refs/tags/{name}"))? {
            return Ok(Attempt::Busy(format!("refs/tags/{name}")));
        }
        taken.insert(name.clone());
        let target = raw
            .find_object(oid(&record.git_sha)?, Some(ObjectType::Commit))
            .git()?;
        let tag = tag_object(repo, &name, target.id(), sig, &record.to_message(), tagger)?;
        tx.set_target(
            &format!("refs/tags/{name}"),
            tag,
            Some(sig),
            "atmos: record rollout",
        )
        .git()?;
        ends.insert(key, Some((tag.to_string(), record.sequence.unwrap_or(1))));
        written.push(Written {
            name,
            oid: tag.to_string(),
            record,
        });
    }
    for (key, end) in &ends {
        if let Some((tip, _)) = end {
            let name = chain_ref(&key.0, &key.1, &key.2);
            if chain_values.get(&name).cloned().flatten().as_deref() != Some(tip.as_str()) {
                tx.set_target(&name, oid(tip)?, Some(sig), "atmos: chain")
                    .git()?;
            }
        }
    }
    for p in records {
        if let Some(s) = &p.state {
            tx.set_target(&s.refname, oid(&s.new)?, Some(sig), "atmos: rollout")
                .git()?;
        }
    }
    tx.commit().git()?;
    Ok(Attempt::Written(written))
}

/// Lock `name` in `tx`; `false` when another process holds its lock.
fn lock(tx: &mut git2::Transaction<'_>, name: &str) -> Result<bool, GitError> {
    match tx.lock_ref(name) {
        Ok(()) => Ok(true),
        Err(e) if e.code() == ErrorCode::Locked => Ok(false),
        Err(e) => Err(GitError::libgit2(e)),
    }
}

/// The time segment of a record's tag name: its `timestamp`, as data.
fn record_segment(record: &TagRecord) -> String {
    record
        .timestamp
        .parse::<jiff::Timestamp>()
        .map(timestamp_segment)
        .unwrap_or_else(|_| timestamp_segment(jiff::Timestamp::UNIX_EPOCH))
}

/// Write (without any ref) the tag object of `record` under `name`, signed as `tagger` says:
/// a record taking a new place in its chain when it is published after others.
pub fn tag_object_of(
    repo: &GitRepo,
    name: &str,
    record: &TagRecord,
    tagger: &Tagger,
) -> Result<String, GitError> {
    let sig = Signature::now(&tagger.name, &tagger.email).git()?;
    let target = repo
        .raw()
        .find_object(oid(&record.git_sha)?, Some(ObjectType::Commit))
        .git()?;
    Ok(tag_object(repo, name, target.id(), &sig, &record.to_message(), tagger)?.to_string())
}

/// The first free tag name of `record` in `repo` (its time segment, then `.1`, `.2`, …),
/// other than the names in `taken`.
pub fn free_name(
    repo: &GitRepo,
    record: &TagRecord,
    taken: &std::collections::HashSet<String>,
) -> Result<String, GitError> {
    let segment = record_segment(record);
    let archived: std::collections::HashSet<String> = repo
        .ledger_entries(&record.deployment, Some(&record.target))?
        .0
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut n = 0;
    loop {
        let name = tag_name(
            &record.deployment,
            &record.target,
            &record.component,
            &segment,
            n,
        );
        if !archived.contains(&name)
            && !taken.contains(&name)
            && !exists(repo, &format!("refs/tags/{name}"))?
        {
            return Ok(name);
        }
        n += 1;
    }
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
                key: key.to_string(),
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

    fn pending(sha: &str, at: &str, expected: Option<String>) -> PendingRecord {
        let mut record = crate::contracts::record::example("t", "c", sha);
        record.deployment = "d".into();
        record.timestamp = at.into();
        record.status = Status::Success;
        PendingRecord {
            record,
            state: Some(StateUpdate {
                refname: "refs/atmos/deployments/d/t/c".into(),
                expected,
                new: sha.into(),
            }),
        }
    }

    fn tagger() -> Tagger {
        Tagger {
            name: "t".into(),
            email: "t@example.com".into(),
            signing_key: None,
        }
    }

    #[test]
    fn records_chain_in_the_order_written_whatever_their_times_say() {
        let (_dir, repo, sha) = repo_with_commit();
        let at = "2025-01-22T12:00:00Z";
        let first = write(&repo, &[pending(&sha, at, None)], &tagger(), &|_, _| {}).expect("first");
        let second = write(
            &repo,
            &[pending(&sha, at, Some(sha.clone()))],
            &tagger(),
            &|_, _| {},
        )
        .expect("second");
        // A runner whose clock is an hour behind still appends after the newest record.
        let third = write(
            &repo,
            &[pending(&sha, "2025-01-22T11:00:00Z", Some(sha.clone()))],
            &tagger(),
            &|_, _| {},
        )
        .expect("third");
        assert_eq!(
            first[0].name,
            "atmos/deployments/d/t/c/2025-01-22T12-00-00Z"
        );
        assert_eq!(
            second[0].name,
            "atmos/deployments/d/t/c/2025-01-22T12-00-00Z.1"
        );
        assert_eq!(
            third[0].name,
            "atmos/deployments/d/t/c/2025-01-22T11-00-00Z"
        );
        assert_eq!(first[0].record.sequence, Some(1));
        assert_eq!(first[0].record.previous_record, None);
        assert_eq!(second[0].record.sequence, Some(2));
        assert_eq!(
            second[0].record.previous_record.as_deref(),
            Some(first[0].oid.as_str())
        );
        assert_eq!(third[0].record.sequence, Some(3));
        assert_eq!(
            third[0].record.previous_record.as_deref(),
            Some(second[0].oid.as_str())
        );
        assert_eq!(
            repo.chain_tip("d", "t", "c").expect("tip").as_deref(),
            Some(third[0].oid.as_str())
        );
        // Read back newest first: the chain, not the names' times.
        let order: Vec<u64> = repo
            .chain("d", "t", "c")
            .expect("walk")
            .map(|l| l.expect("link").record.sequence.unwrap_or(0))
            .collect();
        assert_eq!(order, vec![3, 2, 1]);
        assert_eq!(
            repo.deployed_commit("d", "t", "c").expect("read"),
            Some(sha)
        );
    }

    #[test]
    fn a_state_ref_moved_by_someone_else_is_not_overwritten() {
        let (_dir, repo, sha) = repo_with_commit();
        let at = "2025-01-22T12:00:00Z";
        write(&repo, &[pending(&sha, at, None)], &tagger(), &|_, _| {}).expect("first");
        // This writer read the ref before it existed: its expectation is stale.
        let err =
            write(&repo, &[pending(&sha, at, None)], &tagger(), &|_, _| {}).expect_err("stale");
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
            vec!["atmos/deployments/d/t/c/2025-01-22T12-00-00Z"],
            "nothing of the refused write is visible"
        );
    }

    #[test]
    fn a_ref_locked_by_a_process_is_waited_for_then_named() {
        let (dir, repo, sha) = repo_with_commit();
        let lock = dir.path().join(".git/refs/atmos/chains/d/t/c.lock");
        std::fs::create_dir_all(lock.parent().expect("parent")).expect("mkdir");
        std::fs::write(&lock, "").expect("lock");
        let wait = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = write_waiting(
            &repo,
            &[pending(&sha, "2025-01-22T12:00:00Z", None)],
            &tagger(),
            wait,
            &|_, _| {},
        )
        .expect_err("locked");
        assert!(
            matches!(&err, GitError::Locked { refname, .. } if refname == "refs/atmos/chains/d/t/c"),
            "{err}"
        );
        assert!(started.elapsed() >= wait, "it waited for the lock first");
    }
}
