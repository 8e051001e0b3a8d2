//! Records on their way to the shared remote. Every batch of records a rollout writes — its
//! intent, its outcome, an interrupted rollout it found — is kept in
//! `<git dir>/atmos/pending/<time>-<pid>.json` *before* it is pushed, and removed once the
//! remote holds it: a push that fails, a remote out of reach, a guard that refuses, or a
//! process killed mid-push leaves the batch there, and the next command that reaches the
//! remote publishes it. Nothing that ran is set aside.
//!
//! A batch names the records (whole, with the tag objects written here), the state-ref moves
//! and the notes to push after them. When someone else appended to a history meanwhile (an
//! offline run, a rollout found interrupted in the meantime), its records take their place at
//! the new end of the chain — written again, signed again — and a state ref moves only from
//! the value its run started from: a newer rollout's stands.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::record::{StateUpdate, Tagger, Written, free_name, tag_object_of};
use super::remote::{Expect, RefUpdate, Remote, RemoteError};
use super::{GitError, GitRepo};
use crate::contracts::TagRecord;
use crate::contracts::layout::{CHAIN_PREFIX, chain_ref};

/// How many times a batch the remote turned away in a race is read again and retried, and
/// for how long in all.
const ATTEMPTS: u32 = 6;
const DEADLINE: Duration = Duration::from_secs(120);

/// One record of a batch: its tag and the record itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Tag name (without `refs/tags/`).
    pub name: String,
    /// Tag object.
    pub oid: String,
    /// The record.
    pub record: TagRecord,
}

impl From<&Written> for BatchRecord {
    fn from(w: &Written) -> BatchRecord {
        BatchRecord {
            name: w.name.clone(),
            oid: w.oid.clone(),
            record: w.record.clone(),
        }
    }
}

/// Records written together, to publish together.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    /// The remote they go to.
    pub remote: String,
    /// When they were written here.
    pub written_at: String,
    /// Who writes them again when they must take another place (and the key that signs).
    pub tagger: Tagger,
    /// The records, in the order written (oldest first within each history).
    pub records: Vec<BatchRecord>,
    /// The state refs the batch moves.
    #[serde(default)]
    pub state: Vec<StateUpdate>,
    /// Notes refs to push after the records (their logs).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// How publishing a batch went.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Pushes it took.
    pub attempts: u32,
    /// Records that took a new place at the end of their history (someone appended first).
    pub rechained: Vec<String>,
    /// State refs someone else moved meanwhile: theirs stands, the history was added.
    pub kept_theirs: Vec<Theirs>,
    /// The remote held the batch already (an earlier attempt reached it).
    pub already: bool,
}

/// A state ref someone else moved on the remote while the batch's run ran.
#[derive(Debug, Clone)]
pub struct Theirs {
    /// The ref.
    pub refname: String,
    /// What the run read before it started.
    pub expected: Option<String>,
    /// What the remote holds.
    pub found: Option<String>,
}

/// Why a batch was not published (it stays kept).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The remote failed or refused.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// Writing the records again (locally) failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The records must take a new place and be signed again, with a key not available now.
    #[error("the records must be signed again with {key}, which is not readable here: {why}")]
    NeedsKey {
        /// The key.
        key: String,
        /// Why.
        why: String,
    },
    /// The remote kept changing under every attempt.
    #[error(
        "{remote} kept changing for {attempts} attempts; the records stay kept and are pushed by the next command"
    )]
    Busy {
        /// The remote.
        remote: String,
        /// Attempts made.
        attempts: u32,
    },
}

impl Remote {
    fn pending_dir(&self) -> PathBuf {
        self.git_dir.join("atmos").join("pending")
    }

    /// Keep `batch` (before it is pushed): the file written and synced, then renamed into
    /// place, so a crash leaves the old state or the new one. Returns the file, locked for
    /// this process until the [`Kept`] is dropped: no other atmos in the clone publishes it
    /// meanwhile.
    pub fn keep(&self, batch: &Batch) -> Result<Kept, RemoteError> {
        let dir = self.pending_dir();
        let io = |e: std::io::Error| RemoteError::Git {
            args: format!("keep records in {}", dir.display()),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let now = jiff::Timestamp::now();
        let file = dir.join(format!(
            "{:020}-{}.json",
            now.as_nanosecond(),
            std::process::id()
        ));
        let lock = FileLock::take(&file).ok_or_else(|| {
            io(std::io::Error::other(format!(
                "{} is locked by another process",
                file.display()
            )))
        })?;
        write_synced(&file, batch).map_err(io)?;
        Ok(Kept { file, _lock: lock })
    }

    /// What publishing earlier runs' records did (taken once).
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.borrow_mut())
    }

    /// The batches kept for this remote, oldest first.
    pub fn pending(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.pending_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
    }

    /// Publish every batch kept for this remote, oldest first. One the remote refuses (a
    /// guard) stays kept and is reported each time, never set aside; the others go on.
    pub fn publish_pending(&self) -> Result<(), RemoteError> {
        // The histories of a batch that is not published now (another process holds it, or
        // it failed): later batches of those histories wait, so that an outcome never lands
        // before its intent.
        let mut waiting: HashSet<(String, String, String)> = HashSet::new();
        let groups = |text: &str| -> Vec<(String, String, String)> {
            serde_json::from_str::<Batch>(text)
                .map(|b| groups_of(&b).into_keys().collect())
                .unwrap_or_default()
        };
        for file in self.pending() {
            let Some(_guard) = FileLock::take(&file) else {
                // Another atmos in this clone publishes it right now.
                if let Ok(text) = std::fs::read_to_string(&file) {
                    waiting.extend(groups(&text));
                }
                continue;
            };
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                // Published (and removed) by the process that held it a moment ago.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    self.notes.borrow_mut().push(format!(
                        "the kept records in {} cannot be read ({e}); they stay there",
                        file.display()
                    ));
                    continue;
                }
            };
            let mut batch = match serde_json::from_str::<Batch>(&text) {
                Ok(b) => b,
                Err(_) => match serde_json::from_str::<Legacy>(&text) {
                    Ok(legacy) => {
                        self.publish_legacy(&file, legacy)?;
                        continue;
                    }
                    Err(e) => {
                        self.notes.borrow_mut().push(format!(
                            "{} is not a batch of records ({e}); it stays there for you to look at",
                            file.display()
                        ));
                        continue;
                    }
                },
            };
            if batch.remote != self.name {
                continue;
            }
            let mine: Vec<(String, String, String)> = groups_of(&batch).into_keys().collect();
            if mine.iter().any(|g| waiting.contains(g)) {
                waiting.extend(mine);
                self.notes.borrow_mut().push(format!(
                    "the records written at {} wait for an earlier batch of the same history; they stay kept in {}",
                    batch.written_at,
                    file.display()
                ));
                continue;
            }
            let git = GitRepo::discover(&self.workdir).map_err(|e| RemoteError::Git {
                args: "open the repository".into(),
                detail: e.to_string(),
            })?;
            match self.publish(&git, &mut batch, Some(&file)) {
                Ok(p) => {
                    let mut note = format!(
                        "published {} record{} written at {} that had not reached {}",
                        batch.records.len(),
                        crate::plural::s(batch.records.len()),
                        batch.written_at,
                        self.name
                    );
                    if !p.rechained.is_empty() {
                        note.push_str(&format!(
                            "; {} took {} place at the end of {} history (others were recorded first)",
                            p.rechained.len(),
                            if p.rechained.len() == 1 { "its" } else { "their" },
                            if p.rechained.len() == 1 { "its" } else { "their" },
                        ));
                    }
                    if !p.kept_theirs.is_empty() {
                        note.push_str(&format!(
                            "; another runner had moved {} since, so theirs stands and only the history was added",
                            p.kept_theirs
                                .iter()
                                .map(|t| t.refname.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    self.notes.borrow_mut().push(note);
                }
                // Out of reach: everything waits for the next command.
                Err(PublishError::Remote(e @ RemoteError::Unreachable { .. })) => return Err(e),
                Err(e) => {
                    waiting.extend(mine);
                    self.notes.borrow_mut().push(format!(
                        "the records written at {} are still not on {}: {e}; they stay kept in {} and are tried again by the next command",
                        batch.written_at,
                        self.name,
                        file.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Publish `batch` (kept in `file`, updated there before each push that changes it):
    /// every record at the end of its history on the remote, the state refs that still hold
    /// what the run started from, atomically; then the same locally, and the notes.
    pub fn publish(
        &self,
        git: &GitRepo,
        batch: &mut Batch,
        file: Option<&Path>,
    ) -> Result<Published, PublishError> {
        let started = Instant::now();
        let mut out = Published::default();
        let mut superseded: Vec<BatchRecord> = Vec::new();
        let mut delay = Duration::from_millis(100);
        loop {
            out.attempts += 1;
            let groups = groups_of(batch);
            let mut names: Vec<String> =
                groups.keys().map(|(d, t, c)| chain_ref(d, t, c)).collect();
            names.extend(batch.state.iter().map(|s| s.refname.clone()));
            let there = self.remote_values(names.iter().map(String::as_str))?;
            let mut updates = Vec::new();
            let mut done_groups = 0;
            for ((d, t, c), idx) in &groups {
                let chain = chain_ref(d, t, c);
                let remote_tip = there.get(&chain).cloned();
                let (first, last) = (&batch.records[idx[0]], &batch.records[idx[idx.len() - 1]]);
                if remote_tip.as_deref() == Some(last.oid.as_str()) {
                    done_groups += 1;
                    continue;
                }
                // Someone else's records at the end of the remote's history (a remote without
                // the chain ref has none to follow: ours go first, as written).
                if remote_tip.is_some() && remote_tip != first.record.previous_record {
                    // Someone appended first: read their records, then see whether ours are
                    // already among them (an earlier attempt), else take the new end.
                    self.fetch_group(d, t, c)?;
                    let fresh = GitRepo::discover(&self.workdir)?;
                    if published_already(&fresh, d, t, c, &batch.records, idx, first)? {
                        done_groups += 1;
                        continue;
                    }
                    let end = match &remote_tip {
                        Some(tip) => Some((
                            tip.clone(),
                            fresh
                                .chain(d, t, c)?
                                .next_link()?
                                .map_or(0, |l| l.record.sequence.unwrap_or(0)),
                        )),
                        None => None,
                    };
                    superseded.extend(idx.iter().map(|i| batch.records[*i].clone()));
                    rechain(&fresh, batch, idx, end, &mut out)?;
                    if let Some(f) = file {
                        write_synced(f, batch).map_err(|e| RemoteError::Git {
                            args: format!("update {}", f.display()),
                            detail: e.to_string(),
                        })?;
                    }
                }
                let (first, last) = (&batch.records[idx[0]], &batch.records[idx[idx.len() - 1]]);
                // A remote without this history gets the records ours follow too (a target
                // moved to another remote): its chain starts where this clone's does.
                if remote_tip.is_none()
                    && let Some(prev) = &first.record.previous_record
                {
                    updates.extend(self.history_before(d, t, c, prev)?);
                }
                for i in idx {
                    let r = &batch.records[*i];
                    updates.push(RefUpdate {
                        name: format!("refs/tags/{}", r.name),
                        new: Some(r.oid.clone()),
                        expect: Expect::Absent,
                    });
                }
                updates.push(RefUpdate {
                    name: chain.clone(),
                    new: Some(last.oid.clone()),
                    expect: match &first.record.previous_record {
                        Some(prev) if remote_tip.is_some() => Expect::Value(prev.clone()),
                        _ => Expect::Absent,
                    },
                });
            }
            let mut state_moves = Vec::new();
            out.kept_theirs.clear();
            for s in &batch.state {
                let remote = there.get(&s.refname);
                if remote == Some(&s.new) {
                    continue;
                }
                if remote == s.expected.as_ref() {
                    state_moves.push(s.clone());
                    updates.push(RefUpdate {
                        name: s.refname.clone(),
                        new: Some(s.new.clone()),
                        expect: match &s.expected {
                            Some(v) => Expect::Value(v.clone()),
                            None => Expect::Absent,
                        },
                    });
                } else {
                    out.kept_theirs.push(Theirs {
                        refname: s.refname.clone(),
                        expected: s.expected.clone(),
                        found: remote.cloned(),
                    });
                }
            }
            if done_groups == groups.len() && state_moves.is_empty() {
                out.already = true;
                self.finish(git, batch, &superseded, &[], file)?;
                return Ok(out);
            }
            match self.push(&updates) {
                Ok(()) => {
                    self.finish(git, batch, &superseded, &state_moves, file)?;
                    return Ok(out);
                }
                // A race lost (someone appended or moved a ref after we looked): look again.
                Err(RemoteError::Rejected { .. })
                    if out.attempts < ATTEMPTS && started.elapsed() < DEADLINE =>
                {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(RemoteError::Rejected { .. }) => {
                    return Err(PublishError::Busy {
                        remote: self.name.clone(),
                        attempts: out.attempts,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// After the remote took the batch: the same refs here, the logs of records that took a
    /// new place moved to them, the records' old tags (never published) removed, the notes
    /// pushed, the kept file removed.
    fn finish(
        &self,
        git: &GitRepo,
        batch: &Batch,
        superseded: &[BatchRecord],
        state_moves: &[StateUpdate],
        file: Option<&Path>,
    ) -> Result<(), PublishError> {
        let mut set: Vec<(String, Option<String>)> = Vec::new();
        let now: HashSet<&str> = batch.records.iter().map(|r| r.name.as_str()).collect();
        for old in superseded {
            let name = format!("refs/tags/{}", old.name);
            // Our old tag, unless the name now holds another runner's record (fetched).
            let ours = git.refs().find(&name)?.is_some_and(|e| e.oid == old.oid);
            if !now.contains(old.name.as_str()) && ours {
                set.push((name, None));
            }
            if let Some(new) = batch
                .records
                .iter()
                .find(|r| same_record(&r.record, &old.record))
            {
                git.copy_notes(&batch.notes, &old.oid, &new.oid)?;
            }
        }
        for r in &batch.records {
            set.push((format!("refs/tags/{}", r.name), Some(r.oid.clone())));
        }
        for ((d, t, c), idx) in groups_of(batch) {
            let last = &batch.records[idx[idx.len() - 1]];
            set.push((chain_ref(&d, &t, &c), Some(last.oid.clone())));
        }
        for s in state_moves {
            set.push((s.refname.clone(), Some(s.new.clone())));
        }
        git.set_refs(&set)?;
        for notes in &batch.notes {
            if let Err(e) = self.push_notes(notes) {
                self.notes.borrow_mut().push(format!(
                    "{notes} did not reach {}: {e}; the next command pushes it",
                    self.name
                ));
            }
        }
        if let Some(f) = file {
            std::fs::remove_file(f).map_err(|e| RemoteError::Git {
                args: format!("remove {}", f.display()),
                detail: e.to_string(),
            })?;
            // Its lock file goes too, still held: whoever opens it after this finds no batch.
            let _ = std::fs::remove_file(FileLock::path(f));
        }
        Ok(())
    }

    /// The tags of the records of `d`/`t`/`c` here from `from` back to the start of the
    /// history (at most 10,000) that the remote lacks, to push with records that follow them.
    fn history_before(
        &self,
        d: &str,
        t: &str,
        c: &str,
        from: &str,
    ) -> Result<Vec<RefUpdate>, PublishError> {
        let prefix = format!(
            "refs/tags/{}/{d}/{t}/{c}/",
            crate::contracts::layout::TAG_PREFIX
        );
        let have = self.list(&[format!("{prefix}*")])?;
        let git = GitRepo::discover(&self.workdir)?;
        let mut out = Vec::new();
        let mut reached = false;
        for link in git.chain(d, t, c)?.take(10_000) {
            let link = link?;
            reached |= link.entry.oid == from;
            if !reached {
                continue;
            }
            let name = format!("refs/tags/{}", link.entry.name);
            if !have.contains_key(&name) && link.entry.archived.is_none() {
                out.push(RefUpdate {
                    name,
                    new: Some(link.entry.oid.clone()),
                    expect: Expect::Absent,
                });
            }
        }
        out.reverse();
        // What that history says runs there, with it.
        let state = crate::contracts::layout::state_ref(d, t, c);
        if !out.is_empty()
            && self.remote_value(&state)?.is_none()
            && let Some(value) = git.refs().find(&state)?.map(|e| e.oid)
        {
            out.push(RefUpdate {
                name: state,
                new: Some(value),
                expect: Expect::Absent,
            });
        }
        Ok(out)
    }

    /// Bring one history's chain ref and tags from the remote (forced: they are its).
    fn fetch_group(&self, d: &str, t: &str, c: &str) -> Result<(), RemoteError> {
        let tags = format!(
            "+refs/tags/{}/{d}/{t}/{c}/*:refs/tags/{}/{d}/{t}/{c}/*",
            crate::contracts::layout::TAG_PREFIX,
            crate::contracts::layout::TAG_PREFIX
        );
        // git refuses to fetch one named ref the remote lacks: a pattern for the chain ref.
        let chain_pattern = format!("+{CHAIN_PREFIX}/{d}/{t}/{c}*:{CHAIN_PREFIX}/{d}/{t}/{c}*",);
        let args = [
            "fetch",
            "--quiet",
            "--no-tags",
            self.name.as_str(),
            chain_pattern.as_str(),
            tags.as_str(),
        ];
        self.git_output(&args).map(|_| ())
    }

    /// The values `names` hold on the remote (absent ones missing from the map).
    pub(super) fn remote_values<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, String>, RemoteError> {
        let names: Vec<&str> = names.collect();
        if names.is_empty() {
            return Ok(HashMap::new());
        }
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

    /// A file kept by an earlier version (ref values only): its tags are created and its
    /// state refs moved from the value they started from; refused, it stays and is said.
    fn publish_legacy(&self, file: &Path, legacy: Legacy) -> Result<(), RemoteError> {
        if legacy.remote != self.name {
            return Ok(());
        }
        let now = self.remote_values(legacy.refs.iter().map(|r| r.name.as_str()))?;
        let mut updates = Vec::new();
        for r in &legacy.refs {
            let there = now.get(&r.name);
            if there == Some(&r.new) {
                continue;
            }
            let tag = r.name.starts_with("refs/tags/");
            if (tag && there.is_none()) || (!tag && there == r.expect.as_ref()) {
                updates.push(RefUpdate {
                    name: r.name.clone(),
                    new: Some(r.new.clone()),
                    expect: match &r.expect {
                        Some(v) if !tag => Expect::Value(v.clone()),
                        _ => Expect::Absent,
                    },
                });
            }
        }
        match self.push(&updates) {
            Ok(()) => {
                std::fs::remove_file(file).map_err(|e| RemoteError::Git {
                    args: format!("remove {}", file.display()),
                    detail: e.to_string(),
                })?;
                self.notes.borrow_mut().push(format!(
                    "published {} ref(s) recorded at {} while {} was out of reach",
                    updates.len(),
                    legacy.written_at,
                    self.name
                ));
                Ok(())
            }
            Err(e @ RemoteError::Unreachable { .. }) => Err(e),
            Err(e) => {
                self.notes.borrow_mut().push(format!(
                    "the records written at {} are still not on {}: {e}; they stay kept in {}",
                    legacy.written_at,
                    self.name,
                    file.display()
                ));
                Ok(())
            }
        }
    }
}

/// A file kept by an earlier version of atmos: ref values to push.
#[derive(Debug, Clone, Deserialize)]
struct Legacy {
    remote: String,
    written_at: String,
    refs: Vec<LegacyRef>,
}

#[derive(Debug, Clone, Deserialize)]
struct LegacyRef {
    name: String,
    new: String,
    expect: Option<String>,
}

/// The batch's records by history, each a list of indexes in order.
fn groups_of(batch: &Batch) -> BTreeMap<(String, String, String), Vec<usize>> {
    let mut out: BTreeMap<(String, String, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in batch.records.iter().enumerate() {
        out.entry((
            r.record.deployment.clone(),
            r.record.target.clone(),
            r.record.component.clone(),
        ))
        .or_default()
        .push(i);
    }
    out
}

/// Whether two records are the same step of the same rollout (the same record, perhaps at
/// another place in its history).
fn same_record(a: &TagRecord, b: &TagRecord) -> bool {
    a.rollout_id.is_some()
        && a.rollout_id == b.rollout_id
        && a.component == b.component
        && a.status == b.status
        && a.git_sha == b.git_sha
        && a.recorded_by == b.recorded_by
}

/// Whether the records `idx` of `records` are in the history already (an earlier attempt
/// reached the remote, its file not updated before the process died): the newest records
/// back to the one the batch was written after, at most a thousand.
fn published_already(
    git: &GitRepo,
    d: &str,
    t: &str,
    c: &str,
    records: &[BatchRecord],
    idx: &[usize],
    first: &BatchRecord,
) -> Result<bool, GitError> {
    let mut found: Vec<bool> = vec![false; idx.len()];
    // `git` holds the remote's chain ref (just fetched): its history only, by its links.
    let mut walk = git.chain(d, t, c)?;
    for _ in 0..1000 {
        let Some(l) = walk.next_link()? else { break };
        if l.record.sequence.is_none() {
            // Written before chains: not where an earlier attempt of this batch would be.
            break;
        }
        if Some(&l.entry.oid) == first.record.previous_record.as_ref() {
            break;
        }
        for (k, i) in idx.iter().enumerate() {
            if same_record(&l.record, &records[*i].record) {
                found[k] = true;
            }
        }
    }
    Ok(found.iter().all(|f| *f))
}

/// Give the records `idx` of `batch` new places at the end `end` (tag object, sequence) of
/// their history: new previous records and numbers, new names where theirs are taken, new
/// tag objects signed again.
fn rechain(
    git: &GitRepo,
    batch: &mut Batch,
    idx: &[usize],
    end: Option<(String, u64)>,
    out: &mut Published,
) -> Result<(), PublishError> {
    if let Some(key) = &batch.tagger.signing_key
        && let Err(e) = key.available()
    {
        return Err(PublishError::NeedsKey {
            key: key.to_string(),
            why: e.to_string(),
        });
    }
    let mut end = end;
    let mut taken: HashSet<String> = HashSet::new();
    let mut new_oid: HashMap<String, String> = HashMap::new();
    for i in idx {
        let r = &mut batch.records[*i];
        r.record.previous_record = end.as_ref().map(|(o, _)| o.clone());
        r.record.sequence = Some(end.as_ref().map_or(0, |(_, n)| *n) + 1);
        // An outcome names its intent, which may have taken a new place too: in this batch,
        // or in an earlier one (found in the history by what it is).
        if let Some(intent) = &r.record.intent {
            if let Some(moved) = new_oid.get(intent) {
                r.record.intent = Some(moved.clone());
            } else if let Some(found) = intent_in_history(git, &r.record, intent)? {
                r.record.intent = Some(found);
            }
        }
        let name = free_name(git, &r.record, &taken)?;
        let oid = tag_object_of(git, &name, &r.record, &batch.tagger)?;
        taken.insert(name.clone());
        new_oid.insert(r.oid.clone(), oid.clone());
        out.rechained.push(name.clone());
        r.name = name;
        r.oid = oid.clone();
        end = Some((oid, r.record.sequence.unwrap_or(1)));
    }
    Ok(())
}

/// Where the intent an outcome names is in its history now: the record itself when the
/// history holds it, else the `started` record of the same rollout and component (published
/// from an earlier batch, at a new place) — among the newest thousand records.
fn intent_in_history(
    git: &GitRepo,
    outcome: &TagRecord,
    intent: &str,
) -> Result<Option<String>, PublishError> {
    let mut same_run = None;
    for link in git
        .chain(&outcome.deployment, &outcome.target, &outcome.component)?
        .take(1000)
    {
        let link = link?;
        if link.entry.oid == intent {
            return Ok(None);
        }
        if same_run.is_none()
            && link.record.status == crate::contracts::Status::Started
            && link.record.rollout_id.is_some()
            && link.record.rollout_id == outcome.rollout_id
            && link.record.git_sha == outcome.git_sha
        {
            same_run = Some(link.entry.oid.clone());
        }
    }
    Ok(same_run)
}

/// Write `batch` to `file` durably: a temporary file synced, then renamed over it.
fn write_synced(file: &Path, batch: &Batch) -> std::io::Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_vec_pretty(batch).map_err(std::io::Error::other)?;
    let tmp = file.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&text)?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A kept batch, and this process's lock on it.
#[derive(Debug)]
pub struct Kept {
    /// The file.
    pub file: PathBuf,
    _lock: FileLock,
}

/// A lock on one kept batch while it is written or published (another atmos in the clone
/// skips it): an advisory lock on `<batch>.json.lock`, which the system releases when the
/// process ends, however it ends.
#[derive(Debug)]
struct FileLock {
    _held: std::fs::File,
}

impl FileLock {
    fn path(file: &Path) -> PathBuf {
        file.with_extension("json.lock")
    }

    fn take(file: &Path) -> Option<FileLock> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(Self::path(file))
            .ok()?;
        f.try_lock().ok()?;
        Some(FileLock { _held: f })
    }
}
