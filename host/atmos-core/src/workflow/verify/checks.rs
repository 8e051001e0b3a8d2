//! The checks of one deployment's records against the rules in force when each was made:
//! the chain of each target/component, signatures and deployers, the promotion path,
//! rollbacks, approvals, and state refs against the newest success record.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;

use super::report::{Problem, ProblemKind, Stats, VerifyReport, VerifyRequest};
use super::rules::RulesBook;
use crate::contracts::layout::{CHAIN_PREFIX, STATE_PREFIX, chain_ref, notes_ref};
use crate::contracts::{ApprovalRecord, Status, TagRecord};
use crate::git::tags::TagEntry;
use crate::git::{GitRepo, short};
use crate::workflow::WorkflowError;

/// Approvals recorded up to this long after a rollout ended still count (clock skew between
/// the approver's machine and the runner's).
const APPROVAL_SKEW_SECONDS: i64 = 300;

/// How far two runners' clocks may disagree when one record must come after another.
const CLOCK_SKEW_SECONDS: i64 = 300;

/// How far in the future of the auditor's clock a record may be dated: runners' clocks
/// disagree a little; a record dated beyond this was dated by a wrong clock, or forged.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 600;

/// One readable record.
struct Rec {
    entry: TagEntry,
    record: TagRecord,
}

impl Rec {
    fn refname(&self) -> String {
        format!("refs/tags/{}", self.entry.name)
    }

    fn deployed(&self) -> bool {
        matches!(self.record.status, Status::Success | Status::Rollback)
    }
}

/// Where a record sits among the others.
struct Context<'g> {
    groups: &'g Groups,
    rollouts: &'g Rollouts,
    target: &'g str,
    component: &'g str,
    /// The records before it in its target/component.
    earlier: &'g [Rec],
}

/// What one deployment's audit needs.
pub(super) struct Audit<'a, 'b> {
    pub git: &'a GitRepo,
    pub book: &'b mut RulesBook<'a>,
    /// The auditor's clock (records dated beyond it, and the skew, are problems).
    pub now: Timestamp,
    pub deployment: &'b str,
    pub target: Option<&'b str>,
    /// Not problems, but worth an auditor's look (skipped promotion checks).
    pub notices: Vec<Problem>,
    /// A push's histories only (the server guard): each read from its newest record back as
    /// far as the checks of what the push adds need, not whole.
    pub scope: Option<&'b PushScope>,
    /// With a scope: the records above each history's old tip (`refs/tags/…`).
    pub fresh: HashSet<String>,
}

/// What a push adds to one deployment: the histories it appends to or whose state ref it
/// moves, each with its newest record before the push (`None`: a new history). Everything
/// older was accepted by the guard before, so only the new records — and the state refs —
/// are judged, against as much of the history as their checks read: the record before them,
/// their intents, an earlier run of a commit rolled back to, the source's record a promotion
/// names, and the newest record that deployed a commit.
#[derive(Debug, Clone, Default)]
pub struct PushScope {
    /// `(target, component)` → the chain tip before the push.
    pub groups: BTreeMap<(String, String), Option<String>>,
    /// The history tags the push adds (full ref names): each is read, on its chain or not.
    pub new_tags: Vec<String>,
}

/// What a walk back along one history must still find before it may stop.
#[derive(Debug, Default)]
struct Needs {
    /// The newest record before the push: the walk goes past it.
    until: Option<String>,
    /// Records (tag object ids) named by intents or promotions.
    oids: HashSet<String>,
    /// Commits a record that deployed them must be found for (rollbacks, direct rollouts).
    shas: HashSet<String>,
    /// The walk must reach a record that deployed a commit (the state ref's).
    deployed: bool,
}

impl Needs {
    fn met(&self) -> bool {
        self.until.is_none() && self.oids.is_empty() && self.shas.is_empty() && !self.deployed
    }

    /// Take `r` into account: what it satisfies.
    fn saw(&mut self, r: &Rec) {
        if self.until.as_deref() == Some(r.entry.oid.as_str()) {
            self.until = None;
        }
        self.oids.remove(&r.entry.oid);
        if r.deployed() {
            self.shas.remove(&r.record.git_sha);
            self.deployed = false;
        }
    }
}

type Groups = BTreeMap<(String, String), Vec<Rec>>;

/// The commits each rollout deployed, by `(target, started at)`: the records one rollout
/// wrote share its start time.
type Rollouts = HashMap<(String, String), Vec<String>>;

impl Audit<'_, '_> {
    /// Every problem of the deployment's records and state refs.
    pub fn run(&mut self, stats: &mut Stats) -> Result<Vec<Problem>, WorkflowError> {
        let mut problems = Vec::new();
        let groups = self.read(&mut problems, stats)?;
        let mut rollouts: Rollouts = HashMap::new();
        for r in groups.values().flatten().filter(|r| r.deployed()) {
            let shas = rollouts
                .entry((r.entry.target.clone(), r.record.timestamp.clone()))
                .or_default();
            if !shas.contains(&r.record.git_sha) {
                shas.push(r.record.git_sha.clone());
            }
        }
        for ((target, component), recs) in &groups {
            self.chain(recs, &mut problems, stats);
            for (i, r) in recs.iter().enumerate() {
                let context = Context {
                    groups: &groups,
                    rollouts: &rollouts,
                    target,
                    component,
                    earlier: &recs[..i],
                };
                self.by_rules(&context, r, &mut problems, stats)?;
            }
        }
        self.state_refs(&groups, &mut problems, stats)?;
        if let Some(t) = self.target {
            problems.retain(|p| {
                super::view::group_of(&p.reference).is_none_or(|(_, target, _)| target == t)
            });
        }
        Ok(problems)
    }

    fn problem(&self, kind: ProblemKind, reference: String, message: String) -> Problem {
        Problem {
            kind,
            reference,
            deployment: self.deployment.to_owned(),
            message,
            at: None,
        }
    }

    /// Every history of the deployment, each in its chain's order (oldest first), read as the
    /// repository holds it (or, in a server guard, as the push would leave it); records on no
    /// chain, and tags that are not records, are problems.
    fn read(
        &mut self,
        problems: &mut Vec<Problem>,
        stats: &mut Stats,
    ) -> Result<Groups, WorkflowError> {
        let d = self.deployment;
        if let Some(scope) = self.scope {
            return self.read_window(scope, problems, stats);
        }
        // Every history: by its tags, its archived records, its chain ref, its state ref.
        let mut keys: std::collections::BTreeSet<(String, String)> = Default::default();
        let (entries, odd) = self.git.history_tags(d, None)?;
        for o in odd {
            problems.push(self.problem(
                ProblemKind::UnreadableRecord,
                format!("refs/tags/{}", o.tag),
                o.reason,
            ));
        }
        for e in &entries {
            keys.insert((e.target.clone(), e.component.clone()));
        }
        let chains = format!("{CHAIN_PREFIX}/{d}/");
        for e in self.git.refs().list(&chains)? {
            if let Some((t, c)) = e.name[chains.len()..].split_once('/') {
                keys.insert((t.to_owned(), c.to_owned()));
            }
        }
        for s in self.git.state_refs(d, None)? {
            keys.insert((s.target, s.component));
        }
        let mut groups: Groups = BTreeMap::new();
        for (t, c) in keys {
            let tip = self.git.chain_tip(d, &t, &c)?;
            let (links, off, unreadable) = self.git.chain(d, &t, &c)?.all()?;
            let counted = self.target.is_none_or(|want| want == t);
            if counted {
                stats.records += links.len() + unreadable.len() + off.len();
            }
            for u in unreadable {
                problems.push(self.problem(
                    ProblemKind::UnreadableRecord,
                    format!("refs/tags/{}", u.tag),
                    format!("not a readable atmos record: {}", u.reason),
                ));
            }
            for e in off {
                let mut p = self.problem(
                    ProblemKind::BrokenChain,
                    format!("refs/tags/{}", e.name),
                    format!(
                        "is on no chain: the history of {t}/{c} ({}) never reaches it — a record pushed beside the history, or one whose place another took",
                        tip.as_deref().map_or("no chain ref", short)
                    ),
                );
                p.at = Some(e.at);
                problems.push(p);
            }
            let chained = links.iter().any(|l| l.record.sequence.is_some());
            if chained && tip.is_none() {
                problems.push(self.problem(
                    ProblemKind::BrokenChain,
                    chain_ref(d, &t, &c),
                    format!(
                        "is missing, but the history of {t}/{c} is chained (its records are numbered): it was deleted"
                    ),
                ));
            }
            let recs: Vec<Rec> = links
                .into_iter()
                .map(|l| Rec {
                    entry: l.entry,
                    record: (*l.record).clone(),
                })
                .collect();
            groups.insert((t, c), recs);
        }
        Ok(groups)
    }

    /// The histories of a push, each from its newest record back as far as the checks of the
    /// records it adds need (see [`PushScope`]): the pushed histories first, then the sources
    /// their promotions and direct rollouts name.
    fn read_window(
        &mut self,
        scope: &PushScope,
        problems: &mut Vec<Problem>,
        stats: &mut Stats,
    ) -> Result<Groups, WorkflowError> {
        let d = self.deployment;
        let commit = self.book.commit_at(self.now.as_second()).to_owned();
        let rules = self.book.rules(&commit, d)?;
        let sources_of = |t: &str| -> Vec<String> {
            rules
                .as_ref()
                .and_then(|r| r.loaded.deployment.targets.get(t))
                .and_then(|t| t.promotion.as_ref())
                .map(|p| p.sources().into_iter().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let mut groups: Groups = BTreeMap::new();
        let mut elsewhere: BTreeMap<(String, String), Needs> = BTreeMap::new();
        for ((t, c), before) in &scope.groups {
            let mut needs = Needs {
                until: before.clone(),
                deployed: true,
                ..Needs::default()
            };
            let sources = sources_of(t);
            let mut recs: Vec<Rec> = Vec::new();
            let mut walk = self.git.chain(d, t, c)?;
            // Records above the old tip are the push's; a direct rollout of a commit to a
            // target with sources must have run it before here, or in a source.
            let mut new = true;
            let mut direct: Vec<String> = Vec::new();
            while let Some(link) = walk.next_link()? {
                let r = Rec {
                    entry: link.entry,
                    record: (*link.record).clone(),
                };
                if before.as_deref() == Some(r.entry.oid.as_str()) {
                    new = false;
                }
                if new {
                    self.fresh.insert(format!("refs/tags/{}", r.entry.name));
                }
                needs.saw(&r);
                // The newest deploying record is found by its intent's place: read as far.
                if r.deployed()
                    && let Some(i) = &r.record.intent
                {
                    needs.oids.insert(i.clone());
                }
                if new {
                    if let Some(i) = &r.record.intent {
                        needs.oids.insert(i.clone());
                    }
                    let sha = &r.record.git_sha;
                    let rollback =
                        r.record.status == Status::Rollback || r.record.rollback_of.is_some();
                    match (&r.record.promoted_from, &r.record.source_record) {
                        (Some(from), Some(oid)) => {
                            let n = elsewhere.entry((from.clone(), c.clone())).or_default();
                            n.oids.insert(oid.clone());
                        }
                        (Some(from), None) => {
                            let n = elsewhere.entry((from.clone(), c.clone())).or_default();
                            n.shas.insert(sha.clone());
                        }
                        // An earlier run of the commit here (after this record: older).
                        (None, _) if r.deployed() && rollback => {
                            needs.shas.insert(sha.clone());
                        }
                        (None, _) if r.deployed() && !sources.is_empty() => {
                            needs.shas.insert(sha.clone());
                            direct.push(sha.clone());
                        }
                        _ => {}
                    }
                }
                recs.push(r);
                if !new && needs.met() {
                    break;
                }
            }
            // A direct rollout whose commit never ran here before: the sources must show it.
            for sha in direct {
                let ran_here = recs
                    .iter()
                    .filter(|r| r.deployed() && r.record.git_sha == sha)
                    .count()
                    > 1;
                if !ran_here {
                    for s in &sources {
                        let n = elsewhere.entry((s.clone(), c.clone())).or_default();
                        n.shas.insert(sha.clone());
                    }
                }
            }
            for u in std::mem::take(&mut walk.unreadable) {
                problems.push(self.problem(
                    ProblemKind::UnreadableRecord,
                    format!("refs/tags/{}", u.tag),
                    format!("not a readable atmos record: {}", u.reason),
                ));
            }
            stats.records += recs.len();
            recs.reverse();
            groups.insert((t.clone(), c.clone()), recs);
        }
        // A tag the push adds that no walk reached (beside its chain) is still read: a record
        // copied under another name, or one that does not parse, says so.
        // By name: a copy is the same object under another name.
        let reached: HashSet<String> = groups
            .values()
            .flatten()
            .map(|r| format!("refs/tags/{}", r.entry.name))
            .collect();
        let mut stray = Vec::new();
        for name in &scope.new_tags {
            let Some(found) = self.git.refs().find(name)? else {
                continue;
            };
            if reached.contains(name) {
                continue;
            }
            if let Some(entry) = TagEntry::parse(name, &found.oid, d)
                && let Err(odd) = self.git.read_record(&entry, d)
            {
                stray.push(self.problem(
                    ProblemKind::UnreadableRecord,
                    name.clone(),
                    format!("not a readable atmos record: {}", odd.reason),
                ));
            }
        }
        problems.extend(stray);
        for (key, mut needs) in elsewhere {
            if groups.contains_key(&key) {
                continue; // read whole enough already: a source pushed in the same push
            }
            let mut recs: Vec<Rec> = Vec::new();
            let mut walk = self.git.chain(d, &key.0, &key.1)?;
            while !needs.met() {
                let Some(link) = walk.next_link()? else {
                    break;
                };
                let r = Rec {
                    entry: link.entry,
                    record: (*link.record).clone(),
                };
                needs.saw(&r);
                recs.push(r);
            }
            recs.reverse();
            groups.insert(key, recs);
        }
        Ok(groups)
    }

    /// Each record names the one before it and is numbered one more: nothing deleted,
    /// inserted or reordered. Each outcome completes an intent earlier in its history; a
    /// started rollout without one is a notice. No record is dated beyond the clock skew.
    fn chain(&mut self, recs: &[Rec], problems: &mut Vec<Problem>, stats: &mut Stats) {
        let mut chained = false;
        let now = self.now.as_second();
        for (i, r) in recs.iter().enumerate() {
            let before = i.checked_sub(1).map(|j| &recs[j]);
            let broken = match (&r.record.previous_record, before) {
                (None, None) => None,
                (None, Some(p)) if chained => Some(format!(
                    "names no previous record, but {} came before it",
                    p.entry.name
                )),
                (None, Some(_)) => {
                    // Written before atmos chained its records.
                    stats.unchained += 1;
                    None
                }
                (Some(x), Some(p)) if *x == p.entry.oid => None,
                (Some(x), Some(p)) => Some(format!(
                    "names {} as the previous record, but the record before it is {} ({}): a record was deleted, inserted or reordered",
                    short(x),
                    p.entry.name,
                    short(&p.entry.oid)
                )),
                (Some(x), None) => Some(format!(
                    "names {} as the previous record, which is not in the history: it was deleted",
                    short(x)
                )),
            };
            let numbered = match (r.record.sequence, before) {
                (Some(n), Some(p)) if n != p.record.sequence.unwrap_or(0) + 1 => Some(format!(
                    "is numbered {n}, but the record before it ({}) is numbered {}",
                    p.entry.name,
                    p.record.sequence.unwrap_or(0)
                )),
                (Some(n), None) if n != 1 => Some(format!(
                    "is numbered {n}, but it is the first record of its history"
                )),
                _ => None,
            };
            chained |= r.record.previous_record.is_some();
            for message in broken.into_iter().chain(numbered) {
                let mut p = self.problem(ProblemKind::BrokenChain, r.refname(), message);
                p.at = Some(r.entry.at);
                problems.push(p);
            }
            if let Some(message) = r.record.canary_problem() {
                let mut p = self.problem(ProblemKind::CanaryInconsistent, r.refname(), message);
                p.at = Some(r.entry.at);
                problems.push(p);
            }
            // Time is data, but a record dated well after it was pushed was dated by a wrong
            // clock (or a forger hoping to sort last).
            for (what, when) in [
                ("dated", Some(&r.record.timestamp)),
                ("recorded", r.record.recorded_at.as_ref()),
            ] {
                if let Some(at) = when.and_then(|w| w.parse::<Timestamp>().ok())
                    && at.as_second() > now + MAX_CLOCK_SKEW_SECONDS
                {
                    let mut p = self.problem(
                        ProblemKind::FutureDated,
                        r.refname(),
                        format!(
                            "is {what} {at}, more than {}s in the future of this clock",
                            MAX_CLOCK_SKEW_SECONDS
                        ),
                    );
                    p.at = Some(r.entry.at);
                    problems.push(p);
                }
            }
            self.intent(recs, i, problems);
        }
    }

    /// The intent `recs[i]` completes, if it is an outcome: an earlier `started` record of
    /// the same rollout, component and commit; and a `started` record nothing completes.
    fn intent(&mut self, recs: &[Rec], i: usize, problems: &mut Vec<Problem>) {
        let r = &recs[i];
        if r.record.status == Status::Started {
            let completed = recs[i + 1..]
                .iter()
                .any(|o| o.record.intent.as_deref() == Some(r.entry.oid.as_str()));
            if !completed {
                let runner = r
                    .record
                    .runner
                    .as_ref()
                    .map(|w| format!(" (pid {} on host {})", w.pid, w.host))
                    .unwrap_or_default();
                let mut p = self.problem(
                    ProblemKind::Unfinished,
                    r.refname(),
                    format!(
                        "a rollout started {} by {}{runner} has no outcome recorded: it is running, or its runner died — the next rollout of {} records it as interrupted",
                        r.record.timestamp, r.record.deployed_by, r.entry.target
                    ),
                );
                p.at = Some(r.entry.at);
                self.notices.push(p);
            }
            return;
        }
        let Some(intent) = &r.record.intent else {
            return;
        };
        let found = recs[..i].iter().find(|e| e.entry.oid == *intent);
        let why = match found {
            None => Some(format!(
                "completes the intent {}, which is not earlier in its history",
                short(intent)
            )),
            Some(e) if e.record.status != Status::Started => Some(format!(
                "completes {}, which is not a started record",
                e.entry.name
            )),
            Some(e)
                if e.record.rollout_id != r.record.rollout_id
                    || (r.record.status != Status::Interrupted
                        && e.record.git_sha != r.record.git_sha) =>
            {
                Some(format!(
                    "completes {}, which started another rollout (or another commit)",
                    e.entry.name
                ))
            }
            Some(_) => None,
        };
        if let Some(message) = why {
            let mut p = self.problem(ProblemKind::OutcomeWithoutIntent, r.refname(), message);
            p.at = Some(r.entry.at);
            problems.push(p);
        }
    }

    /// Signature, deployer, promotion path, rollback and approvals, by the rules in force
    /// when the record was made.
    fn by_rules(
        &mut self,
        context: &Context<'_>,
        r: &Rec,
        problems: &mut Vec<Problem>,
        stats: &mut Stats,
    ) -> Result<(), WorkflowError> {
        if self.target.is_some_and(|t| t != context.target) {
            // Another target's records are read, for promotions, but not judged.
            return Ok(());
        }
        let (groups, target, component, earlier) = (
            context.groups,
            context.target,
            context.component,
            context.earlier,
        );
        let at = r.entry.at.as_second();
        let commit = self.book.commit_at(at).to_owned();
        let deployment = self.deployment;
        let mut push = |kind, message: String| {
            problems.push(Problem {
                kind,
                reference: r.refname(),
                deployment: deployment.to_owned(),
                message,
                at: Some(r.entry.at),
            });
        };
        let Some(rules) = self.book.rules(&commit, self.deployment)? else {
            push(
                ProblemKind::NoRules,
                format!(
                    "{} is not defined on {} at {}: no trusted rules decided this record",
                    self.deployment,
                    self.book.origin().source,
                    short(&commit)
                ),
            );
            return Ok(());
        };
        let Some(t) = rules.loaded.deployment.targets.get(target) else {
            push(
                ProblemKind::NoRules,
                format!(
                    "target {target} is not defined on {} at {}",
                    self.book.origin().source,
                    short(&commit)
                ),
            );
            return Ok(());
        };
        let promotion = t.promotion.clone().unwrap_or_default();
        let settings = &rules.project.settings;
        // Who wrote it: the deployer, or (an interrupted record) the rollout that found it.
        let who = &r.record.signer().to_owned();

        // Signature and deployer.
        let deployers = promotion.deployers.clone().unwrap_or_default();
        let signers = settings
            .approvers
            .allowed_signers
            .as_ref()
            .map(|s| rules.project.root.join(s));
        match self.git.tag_signature(&r.entry)? {
            Some((payload, sig)) => match &signers {
                Some(path) => match crate::signing::verify(
                    &payload,
                    &sig,
                    who,
                    path,
                    crate::signing::TAG_NAMESPACE,
                ) {
                    Ok(()) => stats.signed += 1,
                    Err(e) => push(ProblemKind::BadSignature, format!("{e}")),
                },
                None if deployers.require_signed => push(
                    ProblemKind::Unsigned,
                    format!(
                        "signed, but {target} requires signed deployers and approvers.allowed_signers is not set, so it cannot be checked"
                    ),
                ),
                None => stats.unchecked += 1,
            },
            None if deployers.require_signed => push(
                ProblemKind::Unsigned,
                format!(
                    "unsigned, and {target} requires deployers to sign (promotion.deployers.require_signed)"
                ),
            ),
            None => stats.unsigned += 1,
        }
        if !deployers.from_groups.is_empty() {
            let members: Vec<&String> = deployers
                .from_groups
                .iter()
                .flat_map(|g| settings.approvers.groups.get(g).into_iter().flatten())
                .collect();
            if !crate::identity::listed(&members, who) {
                push(
                    ProblemKind::NotADeployer,
                    format!(
                        "{who} may not deploy to {target}: deployers are {}",
                        deployers.from_groups.join(", ")
                    ),
                );
            }
        }
        if !r.deployed() {
            return Ok(());
        }

        // Where signatures are required, the artifact deployed from a build (not promoted:
        // a promotion takes what ran in its source) is one its builder signed.
        let approvals_signed = promotion
            .approvals
            .as_ref()
            .is_some_and(|a| a.require_signed);
        if (deployers.require_signed || approvals_signed)
            && r.record.promoted_from.is_none()
            && let Some(digest) = &r.record.image_digest
        {
            let why = format!("{target} requires signatures");
            let counted = crate::artifacts::latest_counting(
                self.git,
                self.deployment,
                &r.record.git_sha,
                Some((signers.as_deref(), &why)),
            )?;
            let proven = counted
                .latest
                .get(component)
                .is_some_and(|b| b.digest.as_deref() == Some(digest.as_str()));
            if !proven {
                push(
                    ProblemKind::UnprovenArtifact,
                    format!(
                        "deployed image {digest}, which no build of {} signed by its builder names (the builds note was edited, or the build was not signed)",
                        short(&r.record.git_sha)
                    ),
                );
            }
        }

        // Where provenance is required, the digest deployed has a signed provenance that
        // verifies, names this commit and was made by an allowed builder.
        if promotion.provenance.as_ref().is_some_and(|p| p.required)
            && r.record.image.is_some()
            && r.record.image_digest.is_none()
        {
            push(
                ProblemKind::UnprovenArtifact,
                format!(
                    "deployed an image with no registry digest, and {target} requires a signed provenance of the digest it runs"
                ),
            );
        }
        if let Some(rule) = promotion.provenance.as_ref().filter(|p| p.required)
            && let Some(digest) = &r.record.image_digest
        {
            let (builds, _) = crate::artifacts::read(self.git, self.deployment, &r.record.git_sha)?;
            let allowed = |who: &str| {
                crate::workflow::rollout::plan::provenance::allowed_builder(
                    Some(rule),
                    &settings.approvers.groups,
                    who,
                )
            };
            let check = crate::provenance::of_builds(
                &builds,
                component,
                &crate::provenance::Expect {
                    deployment: self.deployment,
                    component,
                    commit: &r.record.git_sha,
                    digest,
                    signers: signers.as_deref(),
                    allowed_builder: &allowed,
                },
            );
            if !check.verified {
                push(
                    ProblemKind::UnprovenArtifact,
                    format!(
                        "deployed image {digest}, and {target} requires a signed provenance, but {}",
                        check
                            .reason
                            .as_deref()
                            .unwrap_or("its provenance does not verify")
                    ),
                );
            }
        }

        // How the commit got here.
        let sha = &r.record.git_sha;
        let ran = |t: &str, before: &[Rec]| {
            before
                .iter()
                .any(|e| e.deployed() && e.record.git_sha == *sha && e.entry.target == t)
        };
        let ran_in = |source: &str| {
            groups
                .get(&(source.to_owned(), component.to_owned()))
                .is_some_and(|recs| match &r.record.source_record {
                    // The promotion names the source's record it took: it must be one, of
                    // this commit, that deployed it — no clock needed.
                    Some(oid) => recs
                        .iter()
                        .any(|e| e.entry.oid == *oid && e.deployed() && e.record.git_sha == *sha),
                    // Older records: across histories, compare the second the rollouts
                    // started, allowing for runners' clocks that disagree a little.
                    None => {
                        let latest = r.entry.at.as_second() + CLOCK_SKEW_SECONDS;
                        recs.iter()
                            .filter(|e| e.entry.at.as_second() <= latest)
                            .any(|e| e.deployed() && e.record.git_sha == *sha)
                    }
                })
        };
        let sources = promotion.sources();
        if let Some(from) = &r.record.promoted_from {
            if !sources.contains(&from.as_str()) {
                push(
                    ProblemKind::PromotionNotAllowed,
                    format!(
                        "promoted from {from}, but {target} takes code only from {}",
                        if sources.is_empty() {
                            "nowhere (it is an entry point)".to_owned()
                        } else {
                            sources.join(", ")
                        }
                    ),
                );
            } else if !ran_in(from) {
                push(
                    ProblemKind::PromotionWithoutSource,
                    format!(
                        "promoted {} from {from}, where {component} has no earlier success record of it",
                        short(sha)
                    ),
                );
            } else if let Some(deployed) = &r.record.image_digest {
                // Build once: the image promoted is one the source ran with this commit.
                let ran_image = groups
                    .get(&(from.clone(), component.to_owned()))
                    .into_iter()
                    .flatten()
                    .filter(|e| e.deployed() && e.record.git_sha == *sha)
                    .filter_map(|e| e.record.image_digest.as_deref())
                    .collect::<Vec<_>>();
                if !ran_image.is_empty() && !ran_image.contains(&deployed.as_str()) {
                    push(
                        ProblemKind::ArtifactMismatch,
                        format!(
                            "deployed image {deployed}, but {from} ran {} with {}: not the artifact that ran there",
                            short(sha),
                            ran_image.join(", ")
                        ),
                    );
                }
            }
        } else if r.record.status == Status::Rollback || r.record.rollback_of.is_some() {
            if !ran(target, earlier) {
                push(
                    ProblemKind::RollbackNeverRan,
                    format!(
                        "a rollback to {}, which {target} never ran successfully before",
                        short(sha)
                    ),
                );
            }
        } else if !sources.is_empty() {
            if r.record
                .metadata
                .get("skip_promotion_check")
                .is_some_and(|v| v == "true")
            {
                stats.skipped_checks += 1;
                self.notices.push(Problem {
                    kind: ProblemKind::PromotionSkipped,
                    reference: r.refname(),
                    deployment: deployment.to_owned(),
                    message: format!(
                        "{} reached {target} with --skip-promotion-check by {}: recorded, and allowed only if the gates at the time allowed it",
                        short(sha),
                        r.record.deployed_by
                    ),
                    at: Some(r.entry.at),
                });
            } else if !sources.iter().any(|s| ran_in(s)) && !ran(target, earlier) {
                push(
                    ProblemKind::ReachedWithoutPromotion,
                    format!(
                        "{} reached {target} without a promotion: it has no earlier success record in {}",
                        short(sha),
                        sources.join(", ")
                    ),
                );
            }
        }

        // Approvals in force.
        if promotion.requires_approval {
            // The record names the commit whose approvals counted; records written before it
            // did are grouped by rollout (their shared start time).
            let shas = match &r.record.approved_commit {
                Some(c) => vec![c.clone()],
                None => context
                    .rollouts
                    .get(&(target.to_owned(), r.record.timestamp.clone()))
                    .cloned()
                    .unwrap_or_else(|| vec![sha.clone()]),
            };
            self.approvals(r, target, &shas, &rules, &promotion, &mut push)?;
        }
        Ok(())
    }

    /// The approvals of the rollout that wrote `r`: as the rollout counts them, on the newest
    /// of the commits it deployed (`shas`), which must hold every one of them — an approval
    /// covers the commit approved and its history, never a commit beside it.
    fn approvals(
        &self,
        r: &Rec,
        target: &str,
        shas: &[String],
        rules: &crate::workflow::trust::Rules,
        promotion: &crate::config::model::Promotion,
        push: &mut dyn FnMut(ProblemKind, String),
    ) -> Result<(), WorkflowError> {
        let approved = self
            .git
            .newest_commit(shas)?
            .unwrap_or_else(|| r.record.git_sha.clone());
        let own = &r.record.git_sha;
        if own != &approved && !self.git.is_ancestor(own, &approved)? {
            push(
                ProblemKind::ApprovalsNotMet,
                format!(
                    "{} deployed to {target} beside {}, which is not in its history: the approval of {} does not cover it",
                    short(own),
                    short(&approved),
                    short(&approved)
                ),
            );
            return Ok(());
        }
        let sha = &approved;
        let ended = r.entry.at.as_second()
            + i64::try_from(r.record.duration_ms.unwrap_or(0) / 1000).unwrap_or(i64::MAX / 2)
            + APPROVAL_SKEW_SECONDS;
        let text = match self
            .git
            .refs()
            .find(&notes_ref(self.deployment, "approvals"))?
        {
            Some(notes) => self.git.note_at(&notes.oid, sha)?.unwrap_or_default(),
            None => String::new(),
        };
        let (records, odd) = crate::approvals::parse(&text);
        if let Some(line) = odd.first() {
            push(
                ProblemKind::UnreadableRecord,
                format!(
                    "the approvals note of {} has {} line{} that {} not an approval record (the first: {}); such a line never counts, as an approval or a rejection",
                    short(sha),
                    odd.len(),
                    crate::plural::s(odd.len()),
                    crate::plural::is_are(odd.len()),
                    crate::git::prefix(line, 80)
                ),
            );
        }
        let records: Vec<ApprovalRecord> = records
            .into_iter()
            .filter(|a| {
                a.approved_at
                    .parse::<Timestamp>()
                    .is_ok_and(|t| t.as_second() <= ended)
            })
            .collect();
        // The same authors the gate counted: a commit that cannot be read is an error of the
        // audit, never an author left out.
        let authors =
            crate::approvals::authors_gained(self.git, r.record.previous_sha.as_deref(), sha)?
                .authors;
        let check = crate::approvals::check(
            &promotion.approvals.clone().unwrap_or_default(),
            promotion
                .approval_method
                .unwrap_or(crate::config::model::ApprovalMethod::Recorded),
            &rules.project.settings.approvers,
            &records,
            &crate::approvals::CheckContext {
                deployment: self.deployment,
                target,
                commit: sha,
                actor: &r.record.deployed_by,
                authors: &authors,
                rollout: r.record.rollout_id.as_deref(),
                root: &rules.project.root,
            },
        );
        if check.satisfied() {
            return Ok(());
        }
        let mut why = vec![format!(
            "{} of {} approval(s){} counted by the time it ran",
            check.counted.len(),
            check.required,
            if check.from_groups.is_empty() {
                String::new()
            } else {
                format!(" from {}", check.from_groups.join(", "))
            }
        )];
        why.extend(
            check
                .ignored
                .iter()
                .map(|i| format!("{} does not count: {}", i.approved_by, i.reason)),
        );
        why.extend(
            check
                .rejected_by
                .iter()
                .map(|(w, _)| format!("rejected by {w}")),
        );
        push(
            ProblemKind::ApprovalsNotMet,
            format!(
                "{} deployed to {target} with {}",
                short(sha),
                why.join("; ")
            ),
        );
        Ok(())
    }

    /// Each state ref is the commit of the newest record that deployed one — newest by when
    /// its rollout took its place (its intent's position; a record published late, after
    /// rollouts that ran later, does not move it) — and every component that has one has a
    /// state ref.
    fn state_refs(
        &self,
        groups: &Groups,
        problems: &mut Vec<Problem>,
        stats: &mut Stats,
    ) -> Result<(), WorkflowError> {
        let prefix = format!("{STATE_PREFIX}/{}/", self.deployment);
        let mut seen = Vec::new();
        for s in self.git.state_refs(self.deployment, None)? {
            let (target, component, oid) = (&s.target, &s.component, &s.commit);
            let name = format!("{prefix}{target}/{component}");
            if self.target.is_some_and(|t| t != target) {
                continue;
            }
            stats.state_refs += 1;
            let key = (target.clone(), component.clone());
            seen.push(key.clone());
            let newest = groups.get(&key).and_then(|recs| newest_deployed(recs));
            match newest {
                None => problems.push(self.problem(
                    ProblemKind::StateRefWithoutRecord,
                    name.clone(),
                    format!(
                        "points at {}, but {component} has no success record in {target}: it was moved by hand",
                        short(oid)
                    ),
                )),
                Some(r) if r.record.git_sha != *oid => problems.push(self.problem(
                    ProblemKind::StateRefMismatch,
                    name.clone(),
                    format!(
                        "points at {}, but the newest success record ({}) deployed {}: it was moved by hand",
                        short(oid),
                        r.entry.name,
                        short(&r.record.git_sha)
                    ),
                )),
                Some(_) => {}
            }
        }
        for (key, recs) in groups {
            if !seen.contains(key)
                && self.target.is_none_or(|t| t == key.0)
                && let Some(r) = newest_deployed(recs)
            {
                problems.push(self.problem(
                    ProblemKind::StateRefMissing,
                    format!("{prefix}{}/{}", key.0, key.1),
                    format!(
                        "is missing, but {} records {} deployed: it was deleted",
                        r.entry.name,
                        short(&r.record.git_sha)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The record that says what a history's component runs: of the records that deployed a
/// commit, the one whose rollout took its place last — its intent's position in the chain
/// (its own, for a record without one).
fn newest_deployed(recs: &[Rec]) -> Option<&Rec> {
    let position: HashMap<&str, usize> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.entry.oid.as_str(), i))
        .collect();
    recs.iter()
        .enumerate()
        .filter(|(_, r)| r.deployed())
        .max_by_key(|(i, r)| {
            r.record
                .intent
                .as_deref()
                .and_then(|o| position.get(o).copied())
                .unwrap_or(*i)
        })
        .map(|(_, r)| r)
}

/// Parse a record's time for `--since` (the tag name's).
pub(super) fn newer_than(p: &Problem, since: Option<Timestamp>) -> bool {
    match (p.at, since) {
        (Some(at), Some(since)) => at >= since,
        _ => true,
    }
}

/// The checks of `request` over the repository as `git` reads it (in a server guard, with
/// the push applied), by the clock `now`.
pub fn audit<'a>(
    git: &'a GitRepo,
    book: &mut RulesBook<'a>,
    request: &VerifyRequest,
    now: Timestamp,
) -> Result<VerifyReport, WorkflowError> {
    let deployments = match &request.deployment {
        Some(d) => vec![d.clone()],
        None => super::view::View::read(git)?.deployments(),
    };
    let mut stats = Stats::default();
    let mut problems = Vec::new();
    let mut notices = Vec::new();
    for d in &deployments {
        let mut audit = Audit {
            git,
            book,
            now,
            deployment: d,
            target: request.target.as_deref(),
            notices: Vec::new(),
            scope: None,
            fresh: HashSet::new(),
        };
        let found = audit.run(&mut stats)?;
        notices.extend(
            audit
                .notices
                .into_iter()
                .filter(|p| newer_than(p, request.since)),
        );
        problems.extend(found.into_iter().filter(|p| newer_than(p, request.since)));
    }
    problems.sort_by(|a, b| (a.at, &a.reference).cmp(&(b.at, &b.reference)));
    Ok(VerifyReport {
        rules: book.origin().clone(),
        deployments,
        checked: stats,
        problems,
        notices,
        incremental: Vec::new(),
    })
}

/// What the windowed checks of a [`PushScope`] found.
#[derive(Debug, Default)]
pub struct Windowed {
    /// Problems of every record read (the caller keeps those of the new records and refs).
    pub problems: Vec<Problem>,
    /// Notices, likewise.
    pub notices: Vec<Problem>,
    /// What was read and checked.
    pub stats: Stats,
    /// The records above each history's old tip (`refs/tags/…`).
    pub fresh: std::collections::HashSet<String>,
}

/// The checks of what a push (or the records added since a verified checkpoint) adds to
/// `deployment` ([`PushScope`]), over the repository as `git` reads it.
pub fn audit_push<'a>(
    git: &'a GitRepo,
    book: &mut RulesBook<'a>,
    deployment: &str,
    scope: &PushScope,
    now: Timestamp,
) -> Result<Windowed, WorkflowError> {
    let mut stats = Stats::default();
    let mut audit = Audit {
        git,
        book,
        now,
        deployment,
        target: None,
        notices: Vec::new(),
        scope: Some(scope),
        fresh: HashSet::new(),
    };
    let problems = audit.run(&mut stats)?;
    Ok(Windowed {
        problems,
        notices: audit.notices,
        stats,
        fresh: audit.fresh,
    })
}
