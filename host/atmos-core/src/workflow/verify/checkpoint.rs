//! Verified checkpoints: after `verify` finds a deployment clean, this clone keeps what it
//! verified — every history's newest record, state ref and tag count, the archive ledger,
//! the approvals and builds notes, and the rules commit — in
//! `<git dir>/atmos/verified/<deployment>.json`. The next `verify` re-checks only what
//! changed since: the records added to a history on top of its checkpointed newest record
//! (the same windowed checks as the server guard) and the state refs that moved. Anything
//! else that changed — the rules, the ledger, the notes the checks read, a history that
//! disappeared, or tags beside a chain — means the whole deployment is checked again, as
//! `verify --full` always does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::checks::PushScope;
use crate::contracts::layout::{CHAIN_PREFIX, TAG_PREFIX, notes_ref};
use crate::git::{GitError, GitRepo};

/// One history as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Its chain ref (the newest record's tag object).
    pub tip: Option<String>,
    /// Its state ref.
    pub state: Option<String>,
    /// How many history tags it had.
    pub tags: usize,
    /// A digest of every one of its tags' names and objects: a tag moved, added beside the
    /// chain or deleted changes it.
    pub digest: String,
}

/// What one deployment looks like now, as far as `verify` is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `<target>/<component>` → its history.
    pub groups: BTreeMap<String, Mark>,
    /// The archive ledger's commit.
    pub ledger: Option<String>,
    /// The approvals and builds notes (what the checks of old records read).
    pub notes: BTreeMap<String, String>,
    /// Each history's tags (full ref name, object), to tell the new records from the rest.
    #[serde(skip)]
    pub tags: BTreeMap<String, Vec<(String, String)>>,
}

/// The digest of a history's tags (sorted by name).
pub fn digest<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut all: Vec<(&str, &str)> = tags.collect();
    all.sort_unstable();
    let mut hash = <sha2::Sha256 as sha2::Digest>::new();
    for (name, oid) in all {
        sha2::Digest::update(&mut hash, name.as_bytes());
        sha2::Digest::update(&mut hash, b" ");
        sha2::Digest::update(&mut hash, oid.as_bytes());
        sha2::Digest::update(&mut hash, b"\n");
    }
    format!("{:x}", sha2::Digest::finalize(hash))
}

impl Snapshot {
    /// True when the tags of history `key` are the checkpoint's plus `fresh` (full ref names)
    /// and nothing else: no tag moved, deleted or added beside the chain.
    pub fn only_added(
        &self,
        key: &str,
        before: Option<&Mark>,
        fresh: &std::collections::HashSet<String>,
    ) -> bool {
        let rest = self
            .tags
            .get(key)
            .into_iter()
            .flatten()
            .filter(|(name, _)| !fresh.contains(name))
            .map(|(n, o)| (n.as_str(), o.as_str()));
        let old = before.map_or_else(|| digest(std::iter::empty()), |m| m.digest.clone());
        digest(rest) == old
    }
}

/// A snapshot that verified clean, by the rules of `rules_commit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The trusted ref's commit whose rules judged it.
    pub rules_commit: Option<String>,
    /// When (RFC 3339).
    pub verified_at: String,
    /// What was verified.
    pub snapshot: Snapshot,
}

/// What to check of a deployment.
#[derive(Debug)]
pub enum Plan {
    /// Everything (no checkpoint, or something other than new records changed).
    Full(&'static str),
    /// Nothing changed since the checkpoint.
    Nothing,
    /// The histories that grew or whose state ref moved, from their checkpointed tips.
    Window(PushScope),
}

fn file(git: &GitRepo, deployment: &str) -> std::path::PathBuf {
    git.git_dir()
        .join("atmos/verified")
        .join(format!("{deployment}.json"))
}

/// The deployment as it is now.
pub fn snapshot(git: &GitRepo, deployment: &str) -> Result<Snapshot, GitError> {
    let mut groups: BTreeMap<String, Mark> = BTreeMap::new();
    let mark = |groups: &mut BTreeMap<String, Mark>, key: String| {
        groups.entry(key).or_insert(Mark {
            tip: None,
            state: None,
            tags: 0,
            digest: String::new(),
        });
    };
    let chains = format!("{CHAIN_PREFIX}/{deployment}/");
    for e in git.refs().list(&chains)? {
        let key = e.name[chains.len()..].to_owned();
        mark(&mut groups, key.clone());
        if let Some(m) = groups.get_mut(&key) {
            m.tip = Some(e.oid);
        }
    }
    for s in git.state_refs(deployment, None)? {
        let key = format!("{}/{}", s.target, s.component);
        mark(&mut groups, key.clone());
        if let Some(m) = groups.get_mut(&key) {
            m.state = Some(s.commit);
        }
    }
    // Tags are counted by name only (no object is read): one beside a chain shows as a count
    // the chain does not explain.
    let prefix = format!("refs/tags/{TAG_PREFIX}/{deployment}/");
    let mut tags: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for e in git.refs().list(&prefix)? {
        let key = match e.name[prefix.len()..].rsplit_once('/') {
            Some((group, _)) => group.to_owned(),
            None => e.name[prefix.len()..].to_owned(),
        };
        mark(&mut groups, key.clone());
        tags.entry(key).or_default().push((e.name, e.oid));
    }
    for (key, m) in groups.iter_mut() {
        let list = tags.get(key).map(Vec::as_slice).unwrap_or_default();
        m.tags = list.len();
        m.digest = digest(list.iter().map(|(n, o)| (n.as_str(), o.as_str())));
    }
    let mut notes = BTreeMap::new();
    for kind in ["approvals", "builds"] {
        if let Some(e) = git.refs().find(&notes_ref(deployment, kind))? {
            notes.insert(kind.to_owned(), e.oid);
        }
    }
    Ok(Snapshot {
        groups,
        ledger: git.ledger_head(deployment)?,
        notes,
        tags,
    })
}

/// The checkpoint this clone keeps for `deployment`, if any (an unreadable one is none).
pub fn load(git: &GitRepo, deployment: &str) -> Option<Checkpoint> {
    let text = std::fs::read_to_string(file(git, deployment)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Keep `snapshot` as verified by the rules of `rules_commit`. A checkpoint that cannot be
/// written costs the next run its shortcut, nothing else: the error is returned for the
/// caller to say.
pub fn save(
    git: &GitRepo,
    deployment: &str,
    snapshot: &Snapshot,
    rules_commit: Option<&str>,
    now: jiff::Timestamp,
) -> std::io::Result<()> {
    let path = file(git, deployment);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let checkpoint = Checkpoint {
        rules_commit: rules_commit.map(str::to_owned),
        verified_at: crate::contracts::layout::rfc3339(now),
        snapshot: snapshot.clone(),
    };
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(&checkpoint).unwrap_or_default())?;
    std::fs::rename(&tmp, &path)
}

/// What to check, given the checkpoint (if any) and the deployment now.
pub fn plan(checkpoint: Option<&Checkpoint>, now: &Snapshot, rules_commit: Option<&str>) -> Plan {
    let Some(ck) = checkpoint else {
        return Plan::Full("no verified checkpoint here yet");
    };
    if ck.rules_commit.as_deref() != rules_commit {
        return Plan::Full("the rules changed since the checkpoint");
    }
    if ck.snapshot.ledger != now.ledger {
        return Plan::Full("the archive ledger changed since the checkpoint");
    }
    if ck.snapshot.notes != now.notes {
        return Plan::Full("the approvals or builds notes changed since the checkpoint");
    }
    if ck
        .snapshot
        .groups
        .keys()
        .any(|k| !now.groups.contains_key(k))
    {
        return Plan::Full("a history of the checkpoint is gone");
    }
    let mut scope = PushScope::default();
    for (key, mark) in &now.groups {
        let before = ck.snapshot.groups.get(key);
        if before == Some(mark) {
            continue;
        }
        // Tags changed under an unchanged chain: moved, deleted or added beside it.
        if before.is_some_and(|b| b.tip == mark.tip && b.digest != mark.digest) {
            return Plan::Full("history tags changed under an unchanged chain");
        }
        let Some((t, c)) = key.split_once('/') else {
            return Plan::Full("a history name does not fit the layout");
        };
        scope.groups.insert(
            (t.to_owned(), c.to_owned()),
            before.and_then(|b| b.tip.clone()),
        );
    }
    if scope.groups.is_empty() {
        Plan::Nothing
    } else {
        Plan::Window(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::{Checkpoint, Mark, Plan, Snapshot, plan};

    fn snap(groups: &[(&str, &str, usize)]) -> Snapshot {
        Snapshot {
            groups: groups
                .iter()
                .map(|(k, tip, tags)| {
                    (
                        (*k).to_owned(),
                        Mark {
                            tip: Some((*tip).to_owned()),
                            state: Some("c1".into()),
                            tags: *tags,
                            digest: format!("{tip}-{tags}"),
                        },
                    )
                })
                .collect(),
            ledger: None,
            notes: Default::default(),
            tags: Default::default(),
        }
    }

    fn ck(s: Snapshot) -> Checkpoint {
        Checkpoint {
            rules_commit: Some("r1".into()),
            verified_at: "2026-01-01T00:00:00Z".into(),
            snapshot: s,
        }
    }

    #[test]
    fn only_the_histories_that_grew_are_checked_from_their_old_tip() {
        let before = ck(snap(&[("dev/api", "t1", 4), ("dev/db", "u1", 2)]));
        let now = snap(&[("dev/api", "t2", 6), ("dev/db", "u1", 2)]);
        match plan(Some(&before), &now, Some("r1")) {
            Plan::Window(scope) => {
                assert_eq!(scope.groups.len(), 1);
                assert_eq!(
                    scope.groups.get(&("dev".into(), "api".into())),
                    Some(&Some("t1".into()))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            plan(Some(&before), &before.snapshot, Some("r1")),
            Plan::Nothing
        ));
    }

    #[test]
    fn anything_else_that_changed_checks_everything() {
        let before = ck(snap(&[("dev/api", "t1", 4)]));
        assert!(matches!(
            plan(None, &before.snapshot, Some("r1")),
            Plan::Full(_)
        ));
        assert!(matches!(
            plan(Some(&before), &before.snapshot, Some("r2")),
            Plan::Full(_)
        ));
        let mut ledger = before.snapshot.clone();
        ledger.ledger = Some("l1".into());
        assert!(matches!(
            plan(Some(&before), &ledger, Some("r1")),
            Plan::Full(_)
        ));
        let mut notes = before.snapshot.clone();
        notes.notes.insert("approvals".into(), "n1".into());
        assert!(matches!(
            plan(Some(&before), &notes, Some("r1")),
            Plan::Full(_)
        ));
        let gone = snap(&[("dev/db", "u1", 1)]);
        assert!(matches!(
            plan(Some(&before), &gone, Some("r1")),
            Plan::Full(_)
        ));
    }
}
