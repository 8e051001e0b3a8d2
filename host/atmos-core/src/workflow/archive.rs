//! Retention without loss (`atmos deployment archive`): history tags past `history.keep_tags`
//! are folded into the deployment's archive ledger, then deleted. The ledger commit and the
//! tag deletions reach the shared remote in one atomic push, each tag deleted only if it still
//! holds the record archived and the ledger only if nobody moved it meanwhile; a refused push
//! is fetched and tried again. Locally the ledger moves first and the tags go after, so a run
//! killed in between leaves records in both places (read once, pruned by the next run), never
//! in neither. Every reader takes tags and ledger as one history: the record count before and
//! after is the same, and a run that would change it fails instead.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::error::WorkflowError;
use crate::config::settings::KeepTags;
use crate::config::{LoadedDeployment, Project};
use crate::contracts::layout::{TAG_PREFIX, ledger_ref};
use crate::git::remote::{Expect, RefUpdate, Remote, RemoteError};
use crate::git::tags::{TagEntry, Unparseable};
use crate::git::{Author, GitRepo};

/// How many times a push the remote refuses (someone moved the ledger or a tag) is retried.
const ATTEMPTS: u32 = 5;

/// Records per ledger commit and push: a push names every tag it deletes on its command line
/// (twice: the lease and the deletion), which must stay well under the system's limit.
pub const BATCH: usize = 1000;

/// What stays as tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Records younger than this.
    Age(Duration),
    /// The newest N rollouts of each target and component (outcomes, each with its intent).
    Count(usize),
}

impl Keep {
    /// `90d` (an age) or `500` (a count), from `--keep` or `history.keep_tags`.
    pub fn parse(text: &str, what: &str) -> Result<Keep, WorkflowError> {
        let t = text.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return match t.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Keep::Count(n)),
                Err(_) if t.trim_start_matches('0').len() > 1 => Err(WorkflowError::Duration {
                    what: what.to_owned(),
                    problem: format!("`{t}` is too large a count of records"),
                }),
                _ => Err(WorkflowError::Duration {
                    what: what.to_owned(),
                    problem: format!(
                        "`{t}` keeps no records: the count must be at least 1 (the newest record of each component always stays a tag)"
                    ),
                }),
            };
        }
        match crate::duration::parse(t) {
            Ok(age) if age.is_zero() => Err(WorkflowError::Duration {
                what: what.to_owned(),
                problem: format!(
                    "`{t}` keeps no records by age: use an age such as 90d, or a count such as 1"
                ),
            }),
            Ok(age) => Ok(Keep::Age(age)),
            Err(problem) => Err(WorkflowError::Duration {
                what: what.to_owned(),
                problem: format!("{problem}, or a count of records such as 500"),
            }),
        }
    }

    /// The setting as written.
    pub fn from_setting(setting: &KeepTags) -> Result<Keep, WorkflowError> {
        match setting {
            KeepTags::Count(n) => Keep::parse(&n.to_string(), "atmos.yaml history.keep_tags"),
            KeepTags::Age(a) => Keep::parse(a, "atmos.yaml history.keep_tags"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Keep::Age(d) => format!("records younger than {}", crate::duration::show(*d)),
            Keep::Count(n) => format!(
                "the newest {n} rollout{} of each target and component",
                crate::plural::s(*n)
            ),
        }
    }
}

/// One archive run.
#[derive(Debug, Clone)]
pub struct ArchiveRequest {
    /// The deployments to archive (each on its own).
    pub deployments: Vec<String>,
    /// `--keep`, overriding `history.keep_tags`.
    pub keep: Option<String>,
    /// `--remote` (default: atmos.yaml `git.remote`).
    pub remote: Option<String>,
    /// `--dry-run`: say what would be archived, change nothing.
    pub dry_run: bool,
    /// `--offline`: archive this repository only (the shared store's own), pushing nothing.
    pub offline: bool,
    /// Who archives (the ledger commits' author).
    pub actor: String,
    /// The time ages are measured from.
    pub now: Timestamp,
}

/// What an archive run did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ArchiveReport {
    /// The retention applied, in words.
    pub keep: String,
    /// The shared remote the ledger and deletions were pushed to, if any.
    pub remote: Option<String>,
    /// Nothing was changed.
    pub dry_run: bool,
    /// One entry per deployment.
    pub deployments: Vec<DeploymentArchive>,
}

crate::document!(ArchiveReport => "ArchiveReport");

/// The archive of one deployment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeploymentArchive {
    /// The deployment.
    pub deployment: String,
    /// Records folded into the ledger by this run (with `--dry-run`: that would be).
    pub archived: usize,
    /// Tags here that were already in the ledger (archived from another clone), deleted.
    pub pruned: usize,
    /// History tags left.
    pub tags: usize,
    /// Records in the ledger.
    pub ledger_records: usize,
    /// Records (tags and ledger, each once) before the run.
    pub records_before: usize,
    /// Records after it: always equal to `records_before`.
    pub records_after: usize,
    /// The ledger commit (`refs/atmos/ledger/<deployment>`) after the run.
    pub ledger: Option<String>,
    /// Tags past the retention that are not readable records, left as they are.
    pub skipped: Vec<Unparseable>,
    /// Pushes it took (more than one when someone else changed the remote meanwhile).
    pub attempts: u32,
}

/// What a rollout's fold of older records did.
#[derive(Debug, Clone)]
pub struct Folded {
    /// The deployment.
    pub deployment: String,
    /// The fold, when one ran.
    pub archive: Option<DeploymentArchive>,
    /// About this many records past the retention stay tags in histories too long to fold
    /// during a rollout (grown before retention was on); `atmos deployment archive` folds them.
    pub backlog: usize,
}

/// Archive each requested deployment; `progress(deployment, done, total)` after each batch.
pub fn run(
    project: &Project,
    request: &ArchiveRequest,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<ArchiveReport, WorkflowError> {
    let keep = match &request.keep {
        Some(k) => Keep::parse(k, "--keep")?,
        None => Keep::from_setting(&project.settings.history.keep())?,
    };
    let remote = super::store::remote(project, request.remote.as_deref(), request.offline, None)?;
    // A clone that archives by itself would hold a ledger the remote does not have, and every
    // later archive there would be refused: only a repository without the remote may.
    if request.offline
        && let Some(name) = &project.settings.git.remote
        && crate::git::remote::Remote::open(&project.root, name).is_ok()
    {
        return Err(WorkflowError::ArchiveOffline {
            remote: name.clone(),
        });
    }
    let mut deployments = Vec::new();
    for d in &request.deployments {
        let loaded = project.load(d)?;
        let scoped = remote.clone().map(|r| r.for_deployment(d));
        let leave = Leave {
            targets: not_kept_on(project, &loaded, scoped.as_ref()),
            histories: Vec::new(),
        };
        deployments.push(archive_one(
            project,
            d,
            keep,
            scoped.as_ref(),
            &leave,
            request,
            false,
            progress,
        )?);
    }
    Ok(ArchiveReport {
        keep: keep.describe(),
        remote: remote.map(|r| r.name),
        dry_run: request.dry_run,
        deployments,
    })
}

/// `live` by history (target, component).
fn by_history(live: &[TagEntry]) -> BTreeMap<(&str, &str), Vec<&TagEntry>> {
    let mut groups: BTreeMap<(&str, &str), Vec<&TagEntry>> = BTreeMap::new();
    for e in live {
        groups
            .entry((e.target.as_str(), e.component.as_str()))
            .or_default()
            .push(e);
    }
    groups
}

/// The tags past `keep` (never the newest of a target/component), oldest first. A count
/// counts rollouts, not tags: each rollout writes an intent (`started`) and an outcome, so
/// the newest N outcomes stay with the intent each completes; `started(e)` says whether a
/// tag is an intent (read only for the tags a count looks at).
pub fn past_retention(
    live: &[TagEntry],
    keep: Keep,
    now: Timestamp,
    started: &dyn Fn(&TagEntry) -> bool,
) -> Vec<TagEntry> {
    let groups = by_history(live);
    let mut out = Vec::new();
    for mut group in groups.into_values() {
        group.sort_by_key(|e| e.key());
        let older = &group[..group.len().saturating_sub(1)];
        match keep {
            Keep::Count(n) => {
                // Newest first: the place of the n-th outcome, and its intent just before it.
                let mut outcomes = 0;
                let mut cut = 0;
                for i in (0..group.len()).rev() {
                    if started(group[i]) {
                        continue;
                    }
                    outcomes += 1;
                    if outcomes == n.max(1) {
                        cut = i;
                        if i > 0 && started(group[i - 1]) {
                            cut = i - 1;
                        }
                        break;
                    }
                }
                out.extend(older.iter().take(cut).map(|e| (*e).clone()));
            }
            Keep::Age(age) => {
                let limit = now.as_second() - age.as_secs() as i64;
                out.extend(
                    older
                        .iter()
                        .filter(|e| e.at.as_second() < limit)
                        .map(|e| (*e).clone()),
                );
            }
        }
    }
    out.sort_by_key(TagEntry::key);
    out
}

/// What one pass over the deployment found.
struct Pass {
    records: usize,
    live: usize,
    ledger: usize,
    head: Option<String>,
    prune: Vec<TagEntry>,
    archive: Vec<TagEntry>,
    skipped: Vec<Unparseable>,
}

/// What an archive leaves alone: targets kept on their own remotes (archived where they are
/// kept), and, after a rollout, histories with a backlog (left to `atmos deployment archive`).
#[derive(Debug, Default)]
struct Leave {
    targets: Vec<String>,
    histories: Vec<(String, String)>,
}

impl Leave {
    fn holds(&self, e: &TagEntry) -> bool {
        self.targets.contains(&e.target)
            || self
                .histories
                .iter()
                .any(|(t, c)| *t == e.target && *c == e.component)
    }
}

/// What the next archive of `d` would do; what `leave` names is left alone.
fn survey(
    git: &GitRepo,
    d: &str,
    keep: Keep,
    now: Timestamp,
    leave: &Leave,
) -> Result<Pass, WorkflowError> {
    let records = git.history_tags(d, None)?.0.len();
    let (live, _) = git.live_tags(d, None)?;
    let (ledger, _) = git.ledger_entries(d, None)?;
    let in_ledger: HashMap<&str, &str> = ledger
        .iter()
        .map(|e| (e.name.as_str(), e.oid.as_str()))
        .collect();
    let mut skipped = Vec::new();
    let mut prune = Vec::new();
    let mut fresh = Vec::new();
    for e in live.iter().filter(|e| !leave.holds(e)) {
        match in_ledger.get(e.name.as_str()) {
            Some(oid) if *oid == e.oid => prune.push(e.clone()),
            // Evidence for `verify`: never archived over, never deleted.
            Some(oid) => skipped.push(Unparseable {
                tag: e.name.clone(),
                reason: format!(
                    "the ledger holds another record under this name ({}); run `atmos deployment verify {d}`",
                    crate::git::short(oid)
                ),
            }),
            None => fresh.push(e.clone()),
        }
    }
    // The newest record of each history (its chain ref names it) always stays a tag.
    let tips: std::collections::HashSet<String> = git
        .refs()
        .list(&format!("{}/{d}/", crate::contracts::layout::CHAIN_PREFIX))?
        .into_iter()
        .map(|e| e.oid)
        .collect();
    let mut archive = Vec::new();
    let started = |e: &TagEntry| {
        git.read_record(e, d)
            .is_ok_and(|r| r.status == crate::contracts::Status::Started)
    };
    for mut e in past_retention(&fresh, keep, now, &started)
        .into_iter()
        .filter(|e| !tips.contains(&e.oid))
    {
        if let Err(odd) = git.read_record(&e, d) {
            skipped.push(odd);
            continue;
        }
        match String::from_utf8(git.tag_content(&e)?) {
            Ok(text) => {
                e.archived = Some(std::sync::Arc::from(text));
                archive.push(e);
            }
            Err(_) => skipped.push(Unparseable {
                tag: e.name.clone(),
                reason: "the tag object is not UTF-8, so the ledger cannot hold it".into(),
            }),
        }
    }
    Ok(Pass {
        records,
        live: live.len(),
        ledger: ledger.len(),
        head: git.ledger_head(d)?,
        prune,
        archive,
        skipped,
    })
}

/// The targets of `loaded` whose records are not kept on `remote` (archived where they are
/// kept, not here): with a remote, those whose own remote (`targets.<t>.remote`, else the
/// shared store) is another one, and every target but the one a target's own remote holds.
fn not_kept_on(
    project: &Project,
    loaded: &LoadedDeployment,
    remote: Option<&Remote>,
) -> Vec<String> {
    let Some(remote) = remote else {
        return Vec::new();
    };
    let shared = project.settings.git.remote.as_deref();
    loaded
        .deployment
        .targets
        .iter()
        .filter(|(name, t)| {
            let home = t.remote.as_deref().or(shared);
            home != Some(remote.name.as_str())
                || remote
                    .only_target
                    .as_deref()
                    .is_some_and(|only| only != name.as_str())
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// Archive `d`; `synced`: this clone has just fetched the remote (a rollout's), so the first
/// pass builds on what it holds and only a refused push fetches again.
#[allow(clippy::too_many_arguments)]
fn archive_one(
    project: &Project,
    d: &str,
    keep: Keep,
    remote: Option<&Remote>,
    leave: &Leave,
    request: &ArchiveRequest,
    synced: bool,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<DeploymentArchive, WorkflowError> {
    let mut first: Option<usize> = None;
    let (mut archived, mut pruned) = (0, 0);
    let mut attempt = 0;
    'pass: loop {
        attempt += 1;
        if let Some(r) = remote
            && !(synced && attempt == 1)
        {
            r.fetch()?;
        }
        let git = GitRepo::discover(&project.root)?;
        let pass = survey(&git, d, keep, request.now, leave)?;
        let records_before = *first.get_or_insert(pass.records);
        let skipped = pass.skipped.clone();
        if request.dry_run || (pass.archive.is_empty() && pass.prune.is_empty()) {
            // Nothing (more) changes: the counts are what a real run would leave.
            let (a, p) = if request.dry_run {
                (pass.archive.len(), pass.prune.len())
            } else {
                (0, 0)
            };
            return Ok(DeploymentArchive {
                deployment: d.to_owned(),
                archived: archived + a,
                pruned: pruned + p,
                tags: pass.live - a - p,
                ledger_records: pass.ledger + a,
                records_before,
                records_after: pass.records,
                ledger: pass.head,
                skipped,
                attempts: attempt - 1,
            });
        }
        // Batches keep each push's command line and the server guard's work bounded; each is
        // atomic on its own (its ledger commit absorbs exactly the tags it deletes).
        let author = Author::of(&git, &request.actor);
        // Counts after each batch, each read back from the repository.
        let (mut records, mut ledger_records, mut tags) = (pass.records, pass.ledger, pass.live);
        let mut head = pass.head.clone();
        let total = pass.archive.len() + pass.prune.len();
        let empty: &[TagEntry] = &[];
        // Without a remote nothing names the tags on a command line: one batch, so that
        // packed-refs is rewritten once.
        let size = if remote.is_some() { BATCH } else { usize::MAX };
        let batches: Vec<(&[TagEntry], &[TagEntry])> = pass
            .archive
            .chunks(size)
            .map(|c| (c, empty))
            .chain(pass.prune.chunks(size).map(|p| (empty, p)))
            .collect();
        for (chunk, now_pruned) in batches {
            let new = match chunk.is_empty() {
                true => head.clone(),
                false => Some(git.write_ledger(d, head.as_deref(), chunk, &author)?),
            };
            let gone: Vec<TagEntry> = chunk.iter().chain(now_pruned).cloned().collect();
            if let Some(r) = remote {
                match push(r, d, head.as_deref(), new.as_deref(), &gone) {
                    Ok(()) => {}
                    // Someone else changed the remote meanwhile (a lease lost, or a guard
                    // that judged this push against what they pushed): read it again.
                    Err(RemoteError::Rejected { detail } | RemoteError::Git { detail, .. })
                        if is_refusal(&detail) =>
                    {
                        if attempt < ATTEMPTS {
                            continue 'pass;
                        }
                        return Err(WorkflowError::ArchiveRefused {
                            remote: r.name.clone(),
                            attempts: attempt,
                            reason: detail,
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(new) = &new
                && Some(new) != head.as_ref()
            {
                git.set_ledger(d, head.as_deref(), new)?;
            }
            git.delete_tags(&gone)?;
            let before = records;
            let now = records_now(project, &git, d, pass.head.as_deref(), new.as_deref())?;
            if now.records != before {
                return Err(WorkflowError::ArchiveMismatch {
                    deployment: d.to_owned(),
                    before,
                    after: now.records,
                });
            }
            records = now.records;
            ledger_records = now.ledger;
            tags = now.tags;
            head = new;
            archived += chunk.len();
            pruned += now_pruned.len();
            progress(d, archived + pruned, total);
        }
        return Ok(DeploymentArchive {
            deployment: d.to_owned(),
            archived,
            pruned,
            tags,
            ledger_records,
            records_before,
            records_after: records,
            ledger: head,
            skipped,
            attempts: attempt,
        });
    }
}

/// The record counts of `d` as the repository holds them now.
struct Counts {
    /// Records, tags and ledger, each once.
    records: usize,
    /// Records in the ledger.
    ledger: usize,
    /// History tags.
    tags: usize,
}

/// The records of `d` as the repository holds them now: its live tags (read on a fresh
/// handle) and its ledger at `head`. The ledger is read as `base`'s records (parsed once on
/// `git`) changed by the files that differ from `base` to `head` — what a fold changed is
/// read from the commit it wrote, not from this run's bookkeeping — so checking a fold costs
/// what it changed, not the archived history.
fn records_now(
    project: &Project,
    git: &GitRepo,
    d: &str,
    base: Option<&str>,
    head: Option<&str>,
) -> Result<Counts, WorkflowError> {
    let mut ledger: HashMap<String, String> = match base {
        Some(b) => git
            .ledger_entries_at(b, d, None)?
            .0
            .into_iter()
            .map(|e| (e.name, e.oid))
            .collect(),
        None => HashMap::new(),
    };
    if let Some(h) = head
        && head != base
    {
        let changes = git.ledger_changes(base, h, d)?;
        for e in &changes.before {
            ledger.remove(&e.name);
        }
        ledger.extend(changes.after.into_iter().map(|e| (e.name, e.oid)));
    }
    let live = GitRepo::discover(&project.root)?.live_tags(d, None)?.0;
    let mut names: std::collections::HashSet<&str> = ledger.keys().map(String::as_str).collect();
    names.extend(live.iter().map(|e| e.name.as_str()));
    Ok(Counts {
        records: names.len(),
        ledger: ledger.len(),
        tags: live.len(),
    })
}

/// True when a failed push was refused (by a lease or a server hook), not lost on the way.
fn is_refusal(detail: &str) -> bool {
    let lower = detail.to_lowercase();
    [
        "stale info",
        "rejected",
        "atomic",
        "declined",
        "refused",
        "moved on the remote",
        "[deleted]",
        "[rewritten]",
        "[stray_ref]",
        "does not extend",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// Push the new ledger and delete the archived tags the remote has, in one atomic push.
fn push(
    remote: &Remote,
    d: &str,
    head: Option<&str>,
    new: Option<&str>,
    gone: &[TagEntry],
) -> Result<(), RemoteError> {
    let there = remote.list(&[ledger_ref(d), format!("refs/tags/{TAG_PREFIX}/{d}/*")])?;
    let mut updates = Vec::new();
    if let Some(new) = new
        && Some(new) != head
    {
        updates.push(RefUpdate {
            name: ledger_ref(d),
            new: Some(new.to_owned()),
            expect: match there.get(&ledger_ref(d)) {
                Some(v) => Expect::Value(v.clone()),
                None => Expect::Absent,
            },
        });
        // The remote's ledger must be the one this archive builds on.
        if there.get(&ledger_ref(d)).map(String::as_str) != head {
            return Err(RemoteError::Rejected {
                detail: format!("{} moved on the remote", ledger_ref(d)),
            });
        }
    }
    for e in gone {
        let name = format!("refs/tags/{}", e.name);
        if there.get(&name) == Some(&e.oid) {
            updates.push(RefUpdate {
                name,
                new: None,
                expect: Expect::Value(e.oid.clone()),
            });
        }
    }
    remote.push(&updates)
}

/// Past this many tags a history holds beyond the point where a rollout folds it, the
/// history grew before retention was on (or while rollouts ran `--offline`): folding it would
/// name every tag on one push's command line, which against a large remote costs far more
/// than the rollout itself, so it is left to `atmos deployment archive` and said.
const BACKLOG: usize = 40;

/// Whether a rollout should fold `d`'s histories now.
#[derive(Debug, Default, PartialEq, Eq)]
struct Due {
    /// A history reached the point of folding (and holds no backlog).
    fold: bool,
    /// Histories (target, component) too long to fold during a rollout.
    backlog: Vec<(String, String)>,
    /// About how many records past the retention those hold.
    backlog_records: usize,
}

/// Whether the live tags `live` are due for folding after a rollout. With a count N, a
/// history is folded once it holds more than 4N + 1 tags (past 2N rollouts, each an intent
/// and an outcome), back to N rollouts: a fold every N + 1 rollouts, 2N to 4N + 2 tags on the
/// remote. With an age, as soon as a record passes it. A history more than [`BACKLOG`] tags
/// past that point is a backlog: left out of the fold, and said.
fn due(live: &[TagEntry], keep: Keep, now: Timestamp) -> Due {
    let groups = by_history(live);
    let mut out = Due::default();
    for ((t, c), tags) in &groups {
        let (reached, past, backlog) = match keep {
            Keep::Count(n) => {
                let kept = n.saturating_mul(2);
                let at = kept.saturating_mul(2).saturating_add(1);
                (
                    tags.len() > at,
                    tags.len().saturating_sub(kept),
                    tags.len() > at.saturating_add(BACKLOG),
                )
            }
            Keep::Age(age) => {
                let limit = now.as_second() - age.as_secs() as i64;
                let old = tags[..tags.len().saturating_sub(1)]
                    .iter()
                    .filter(|e| e.at.as_second() < limit)
                    .count();
                (old > 0, old, old > BACKLOG)
            }
        };
        if backlog {
            out.backlog.push(((*t).to_owned(), (*c).to_owned()));
            out.backlog_records += past;
        } else if reached {
            out.fold = true;
        }
    }
    out
}

/// After a rollout that recorded something: fold `deployment`'s older records into its ledger
/// when they are due (a history past twice the kept count, or a record past an age; on
/// unless `history.archive_on_rollout: false`). `None` when nothing was due, or when the
/// rollout ran `--offline` (the ledger and the deletions must reach the shared remote
/// together, so they wait for a run that reaches it).
pub fn after_rollout(
    project: &Project,
    loaded: &LoadedDeployment,
    stores: &super::store::Stores,
    actor: &str,
) -> Result<Option<Folded>, WorkflowError> {
    let history = &project.settings.history;
    // Offline, a ledger written here would differ from the store's: folded by the next
    // rollout that reaches it.
    if !history.archives_on_rollout() || stores.offline {
        return Ok(None);
    }
    let keep = Keep::from_setting(&history.keep())?;
    let d = &loaded.deployment.name;
    let now = Timestamp::now();
    // A target's own remote is fetched for that target alone; its ledger is the deployment's.
    let remote = stores.main.clone().map(|mut r| {
        r.only_target = None;
        r
    });
    let remote = remote.as_ref();
    // Only the histories this fold may touch count: a target kept on another remote is
    // folded there.
    let elsewhere = not_kept_on(project, loaded, remote);
    let (live, _) = GitRepo::discover(&project.root)?.live_tags(d, None)?;
    let live: Vec<TagEntry> = live
        .into_iter()
        .filter(|e| !elsewhere.contains(&e.target))
        .collect();
    let due = due(&live, keep, now);
    if !due.fold && due.backlog.is_empty() {
        return Ok(None);
    }
    let mut folded = Folded {
        deployment: d.clone(),
        archive: None,
        backlog: due.backlog_records,
    };
    if !due.fold {
        return Ok(Some(folded));
    }
    let request = ArchiveRequest {
        deployments: vec![loaded.deployment.name.clone()],
        keep: None,
        remote: remote.map(|r| r.name.clone()),
        dry_run: false,
        offline: false,
        actor: actor.to_owned(),
        now,
    };
    let leave = Leave {
        targets: elsewhere,
        histories: due.backlog,
    };
    folded.archive = Some(archive_one(
        project,
        d,
        keep,
        remote,
        &leave,
        &request,
        true,
        &|_, _, _| {},
    )?);
    Ok(Some(folded))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` tags of svc/<target>/api, one a minute from 2026-01-01T00:00Z.
    fn tags(target: &str, count: usize) -> Vec<TagEntry> {
        (0..count)
            .map(|i| {
                let name = format!(
                    "refs/tags/{TAG_PREFIX}/svc/{target}/api/2026-01-01T{:02}-{:02}-00Z",
                    i / 60,
                    i % 60
                );
                TagEntry::parse(&name, &format!("{i:040x}"), "svc").expect("a tag name")
            })
            .collect()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a time")
    }

    fn fold() -> Due {
        Due {
            fold: true,
            ..Due::default()
        }
    }

    fn backlog(target: &str, records: usize) -> Due {
        Due {
            fold: false,
            backlog: vec![(target.to_owned(), "api".to_owned())],
            backlog_records: records,
        }
    }

    #[test]
    fn a_count_folds_past_twice_the_count_and_leaves_a_backlog_to_archive() {
        let now = at("2026-01-02T00:00:00Z");
        let keep = Keep::Count(5);
        assert_eq!(due(&[], keep, now), Due::default());
        // 10 rollouts (20 tags) stay; the 11th (22 tags) folds.
        assert_eq!(due(&tags("dev", 20), keep, now), Due::default());
        assert_eq!(due(&tags("dev", 21), keep, now), Due::default());
        assert_eq!(due(&tags("dev", 22), keep, now), fold());
        // One history due is enough.
        let mut both = tags("dev", 22);
        both.extend(tags("prod", 3));
        assert_eq!(due(&both, keep, now), fold());
        // Past the point of folding by more than BACKLOG tags: said, and left out.
        assert_eq!(due(&tags("dev", 21 + BACKLOG), keep, now), fold());
        assert_eq!(
            due(&tags("dev", 22 + BACKLOG), keep, now),
            backlog("dev", 12 + BACKLOG)
        );
        // A backlog in one history does not stop another history's fold.
        let mut mixed = tags("dev", 22 + BACKLOG);
        mixed.extend(tags("prod", 22));
        assert_eq!(
            due(&mixed, keep, now),
            Due {
                fold: true,
                ..backlog("dev", 12 + BACKLOG)
            }
        );
        // An absurd count never overflows.
        assert_eq!(
            due(&tags("dev", 30), Keep::Count(usize::MAX), now),
            Due::default()
        );
    }

    #[test]
    fn an_age_folds_as_soon_as_a_record_passes_it_but_never_the_newest() {
        let keep = Keep::Age(Duration::from_secs(3600));
        // Tags from 00:00 to 00:04: none older than an hour at 00:59:30, 00:00 at 01:00:30.
        assert_eq!(
            due(&tags("dev", 5), keep, at("2026-01-01T00:59:30Z")),
            Due::default()
        );
        assert_eq!(
            due(&tags("dev", 5), keep, at("2026-01-01T01:00:30Z")),
            fold()
        );
        // A single (newest) tag stays whatever its age.
        assert_eq!(
            due(&tags("dev", 1), keep, at("2027-01-01T00:00:00Z")),
            Due::default()
        );
        assert_eq!(
            due(&tags("dev", 2 + BACKLOG), keep, at("2027-01-01T00:00:00Z")),
            backlog("dev", 1 + BACKLOG)
        );
    }
}
