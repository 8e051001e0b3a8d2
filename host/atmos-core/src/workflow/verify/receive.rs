//! The server-side guard: git's `pre-receive` hook protocol (one `<old> <new> <ref>` line per
//! updated ref on standard input, the pushed objects readable but not yet accepted). A push to
//! atmos's namespaces is refused when it would delete or rewrite history, move a state ref
//! away from its newest success record, rewrite notes instead of adding to them, or add a
//! record the rules of the trusted ref (as it is before the push) do not allow: unsigned or
//! unauthorised, off the chain, a promotion that skips the path, missing approvals.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::checks::{PushScope, audit_push};
use super::pusher::Pusher;
use super::report::{Problem, ProblemKind};
use super::rules::RulesBook;
use super::view::{Namespace, chain_group, group_of, namespace};
use crate::contracts::layout::{CHAIN_PREFIX, STATE_PREFIX};
use crate::git::tags::TagEntry;
use crate::git::{GitRepo, short};
use crate::workflow::WorkflowError;
use crate::workflow::trust::{self, RulesOrigin};

#[cfg(test)]
const ZERO: &str = "0000000000000000000000000000000000000000";

/// One line of the pre-receive protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The value before (`None`: created).
    pub old: Option<String>,
    /// The value after (`None`: deleted).
    pub new: Option<String>,
    /// The full ref name.
    pub refname: String,
}

/// Parse git's pre-receive input; lines that do not fit are an error naming them.
pub fn parse_updates(input: &str) -> Result<Vec<RefUpdate>, String> {
    let value = |v: &str| (!v.trim_start_matches('0').is_empty()).then(|| v.to_owned());
    input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(old), Some(new), Some(refname), None) if is_hex(old) && is_hex(new) => {
                    Ok(RefUpdate {
                        old: value(old),
                        new: value(new),
                        refname: refname.to_owned(),
                    })
                }
                _ => Err(format!(
                    "not a pre-receive line (<old> <new> <ref>): {line:?}"
                )),
            }
        })
        .collect()
}

fn is_hex(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The outcome of checking a push.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PushCheck {
    /// Where the rules came from (the trusted ref before this push).
    pub rules: RulesOrigin,
    /// Refs the push updates.
    pub updates: usize,
    /// Refs under atmos's namespaces among them.
    pub checked: usize,
    /// Why the push is refused (empty: accepted).
    pub refused: Vec<Problem>,
}

impl PushCheck {
    /// True when the push may land.
    pub fn accepted(&self) -> bool {
        self.refused.is_empty()
    }
}

crate::document!(PushCheck => "PushCheck");

/// What a ref under atmos's namespaces is, exactly: one of the documented kinds, or stray.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The server's repair log: never written or deleted by a push.
    Audit,
    State,
    Chain,
    Tag,
    Lock,
    Ledger,
    Notes(String),
    Stray(String),
}

/// The kind of `refname` (under atmos's namespaces), by its exact layout and names.
pub(crate) fn kind(refname: &str) -> Kind {
    use crate::names::{NameKind, check};
    let ns = namespace(refname);
    let names_ok = |d: &str, t: &str, c: &str| {
        check(d, NameKind::Deployment).is_ok()
            && check(t, NameKind::Target).is_ok()
            && check(c, NameKind::Component).is_ok()
    };
    let stray = |why: &str| Kind::Stray(why.to_owned());
    if refname == crate::contracts::layout::AUDIT_REF {
        return Kind::Audit;
    }
    match ns {
        Namespace::State | Namespace::Chain => {
            let prefix = if ns == Namespace::State {
                STATE_PREFIX
            } else {
                CHAIN_PREFIX
            };
            let rest = &refname[prefix.len() + 1..];
            match rest
                .split_once('/')
                .and_then(|(d, r)| Some((d, r.split_once('/')?)))
            {
                Some((d, (t, c))) if names_ok(d, t, c) => {
                    if ns == Namespace::State {
                        Kind::State
                    } else {
                        Kind::Chain
                    }
                }
                _ => stray(&format!(
                    "is not {prefix}/<deployment>/<target>/<component>"
                )),
            }
        }
        Namespace::Tag => match group_of(refname) {
            Some((d, t, c))
                if names_ok(&d, &t, &c) && TagEntry::parse(refname, "", &d).is_some() =>
            {
                Kind::Tag
            }
            _ => stray(
                "is not refs/tags/atmos/deployments/<deployment>/<target>/<component>/<UTC time>",
            ),
        },
        Namespace::Lock => {
            let rest = &refname[crate::contracts::layout::LOCK_PREFIX.len() + 1..];
            match rest.split_once('/') {
                Some((d, t))
                    if check(d, NameKind::Deployment).is_ok()
                        && check(t, NameKind::Target).is_ok() =>
                {
                    Kind::Lock
                }
                _ => stray("is not refs/atmos/locks/<deployment>/<target>"),
            }
        }
        Namespace::Ledger => {
            let d = &refname[crate::contracts::layout::LEDGER_PREFIX.len() + 1..];
            if check(d, NameKind::Deployment).is_ok() {
                Kind::Ledger
            } else {
                stray("is not refs/atmos/ledger/<deployment>")
            }
        }
        Namespace::Notes => {
            let rest = &refname[crate::contracts::layout::NOTES_PREFIX.len() + 1..];
            match rest.split_once('/') {
                Some((d, k))
                    if check(d, NameKind::Deployment).is_ok() && NOTE_KINDS.contains(&k) =>
                {
                    Kind::Notes(k.to_owned())
                }
                _ => stray(&format!(
                    "is not refs/notes/atmos/<deployment>/<{}>",
                    NOTE_KINDS.join("|")
                )),
            }
        }
        Namespace::Stray => stray("is not part of atmos's layout"),
        Namespace::Other => stray("is outside atmos's namespaces"),
    }
}

pub use crate::contracts::layout::NOTE_KINDS;

/// Check a push to the repository `git` (opened from the hook's environment), at `now`.
/// Under `refs/atmos/`, `refs/tags/atmos/` and `refs/notes/atmos/` only the documented kinds
/// may be written, of the right object type, within their size limits, with content that
/// parses; a ref that is none of them may be deleted (a repair), nothing else.
pub fn check(
    git: &mut GitRepo,
    updates: &[RefUpdate],
    now: Timestamp,
    pusher: Option<&Pusher>,
) -> Result<PushCheck, WorkflowError> {
    // Pushes outside atmos's namespaces (branches, other tags) are not this hook's business,
    // and need no rules: the first push of a repository creates its default branch.
    let ours: Vec<&RefUpdate> = updates
        .iter()
        .filter(|u| namespace(&u.refname) != Namespace::Other)
        .collect();
    let nothing = |chosen_by: &str| PushCheck {
        rules: RulesOrigin {
            source: String::new(),
            commit: None,
            chosen_by: chosen_by.into(),
        },
        updates: updates.len(),
        checked: ours.len(),
        refused: Vec::new(),
    };
    if ours.is_empty() {
        return Ok(nothing("no atmos refs in this push"));
    }
    let problem = |kind, reference: &str, message: String| Problem {
        kind,
        reference: reference.to_owned(),
        deployment: group_of(reference).map(|g| g.0).unwrap_or_default(),
        message,
        at: None,
    };
    let mut refused = Vec::new();
    let mut needs_rules = false;
    let mut new_tags = BTreeSet::new();
    let mut touched = BTreeSet::new();
    let mut chains: Vec<&RefUpdate> = Vec::new();
    let mut archived_tags: Vec<(String, String)> = Vec::new();
    let mut builds: Vec<&RefUpdate> = Vec::new();
    // Ledger updates first: a tag may be deleted only when the ledger (as this push leaves
    // it) holds its record.
    let mut ordered = ours.clone();
    ordered.sort_by_key(|u| namespace(&u.refname) != Namespace::Ledger);
    let mut ledgers: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut archived = Archived::default();
    for u in &ordered {
        let k = kind(&u.refname);
        match (&k, &u.old, &u.new) {
            (Kind::Audit, _, _) => refused.push(problem(
                ProblemKind::StrayRef,
                &u.refname,
                "the repair log is written only on the server, by `atmos deployment verify --repair`".into(),
            )),
            // A ref that is no documented kind: never written; deleting one is a repair.
            (Kind::Stray(_), _, None) => {}
            (Kind::Stray(why), _, Some(_)) => {
                refused.push(problem(ProblemKind::StrayRef, &u.refname, why.clone()))
            }
            (Kind::Lock, _, None) => {}
            (Kind::Lock, _, Some(new)) => {
                if let Some(why) = lease_problem(git, &u.refname, new) {
                    refused.push(problem(ProblemKind::Malformed, &u.refname, why));
                }
            }
            (Kind::Tag, Some(old), None) => archived_tags.push((u.refname.clone(), old.clone())),
            (Kind::Tag, Some(_), Some(_)) => refused.push(problem(
                ProblemKind::Rewritten,
                &u.refname,
                "history tags are never moved".into(),
            )),
            (Kind::Tag, None, Some(new)) => {
                needs_rules = true;
                match object_problem(git, new, git2_tag(), crate::contracts::limits::RECORD_MAX) {
                    Some(why) => refused.push(problem(ProblemKind::Malformed, &u.refname, why)),
                    None => {
                        new_tags.insert(u.refname.clone());
                        if let Some(g) = group_of(&u.refname) {
                            touched.insert(g);
                        }
                    }
                }
            }
            (Kind::State | Kind::Chain | Kind::Ledger, _, None) => refused.push(problem(
                ProblemKind::Deleted,
                &u.refname,
                match k {
                    Kind::State => "state refs are never deleted (roll back to change what runs)",
                    Kind::Chain => {
                        "chain refs are never deleted: they name each history's newest record"
                    }
                    _ => "the archive ledger is never deleted",
                }
                .into(),
            )),
            (Kind::State, _, Some(new)) => {
                needs_rules = true;
                if git.object_kind(new) != Some("commit") {
                    refused.push(problem(
                        ProblemKind::StrayRef,
                        &u.refname,
                        format!("points at {}, which is not a commit", short(new)),
                    ));
                } else if let Some(g) = group_of(&u.refname) {
                    touched.insert(g);
                }
            }
            (Kind::Chain, _, Some(new)) => {
                needs_rules = true;
                if git.object_kind(new) != Some("tag") {
                    refused.push(problem(
                        ProblemKind::StrayRef,
                        &u.refname,
                        format!("points at {}, which is not a record", short(new)),
                    ));
                } else {
                    chains.push(u);
                    if let Some(g) = chain_group(&u.refname) {
                        touched.insert(g);
                    }
                }
            }
            (Kind::Ledger, old, Some(new)) => {
                let d = &u.refname[crate::contracts::layout::LEDGER_PREFIX.len() + 1..];
                if git.object_kind(new) != Some("commit") {
                    refused.push(problem(
                        ProblemKind::StrayRef,
                        &u.refname,
                        format!("points at {}, which is not a commit", short(new)),
                    ));
                    continue;
                }
                match ledger_appended(git, d, old.as_deref(), new)? {
                    Err(why) => refused.push(problem(ProblemKind::Rewritten, &u.refname, why)),
                    Ok(added) => {
                        ledgers.insert(u.refname.clone(), Some(new.clone()));
                        archived.added.insert(d.to_owned(), added);
                    }
                }
            }
            (Kind::Notes(_), _, None) => refused.push(problem(
                ProblemKind::Deleted,
                &u.refname,
                "approval, build, SBOM and log notes are never deleted".into(),
            )),
            (Kind::Notes(kind), old, Some(new)) => {
                let problems = notes_problems(git, kind, old.as_deref(), new)?;
                if problems.is_empty() && *kind == "builds" {
                    // Who built it is checked against the rules below.
                    needs_rules = true;
                    builds.push(*u);
                }
                for why in problems {
                    refused.push(problem(ProblemKind::NotesRewritten, &u.refname, why));
                }
            }
            (_, None, None) => {}
        }
    }
    if !needs_rules && archived_tags.is_empty() {
        let mut out = nothing("no records or state refs in this push");
        out.refused = refused;
        return Ok(out);
    }
    let origin = trust::server_trusted_ref(git)?;

    // Everything below reads the repository as the push would leave it.
    let proposed: BTreeMap<String, Option<String>> = ours
        .iter()
        .map(|u| (u.refname.clone(), u.new.clone()))
        .collect();
    git.overlay(proposed);

    // An archived tag goes only when the ledger (as the push leaves it) holds its record, and
    // never the newest record of its history.
    for (name, old) in &archived_tags {
        if !archived_in(git, &mut archived, name, old)? {
            refused.push(problem(
                ProblemKind::Deleted,
                name,
                "history tags are deleted only once the archive ledger holds them (atmos deployment archive)".into(),
            ));
            continue;
        }
        if let Some((d, t, c)) = group_of(name)
            && let Some(newest) = git.chain(&d, &t, &c)?.next_link()?
            && newest.entry.oid == *old
        {
            refused.push(problem(
                ProblemKind::Deleted,
                name,
                format!("is the newest record of {t}/{c}: it stays a tag"),
            ));
        }
    }

    // Every new record comes with its chain ref, which moves only forward, through them.
    let moved: BTreeSet<(String, String, String)> = chains
        .iter()
        .filter_map(|u| chain_group(&u.refname))
        .collect();
    for name in &new_tags {
        if let Some(g) = group_of(name)
            && !moved.contains(&g)
        {
            refused.push(problem(
                ProblemKind::BrokenChain,
                name,
                format!(
                    "is pushed without its chain ref ({}): a new record takes its place at the end of its history with it (upgrade atmos)",
                    crate::contracts::layout::chain_ref(&g.0, &g.1, &g.2)
                ),
            ));
        }
    }
    for u in &chains {
        if let Some(why) = chain_extended(git, u, &new_tags)? {
            refused.push(problem(ProblemKind::Rewritten, &u.refname, why));
        }
    }

    // The records and state refs the push adds or moves, by the rules as they are now.
    let mut book = RulesBook::new(git, std::path::PathBuf::new(), origin.clone(), true)?;
    for u in builds {
        let d = u
            .refname
            .trim_start_matches(&format!("{}/", crate::contracts::layout::NOTES_PREFIX))
            .trim_end_matches("/builds");
        let commit = book.commit_at(now.as_second()).to_owned();
        let rules = book.rules(&commit, d)?;
        for why in build_lines_problems(git, rules.as_deref(), u)? {
            refused.push(problem(ProblemKind::BadSignature, &u.refname, why));
        }
    }
    let deployments: BTreeSet<String> = touched.iter().map(|g| g.0.clone()).collect();
    refused.extend(bound_to_pusher(git, &mut book, &new_tags, pusher, now)?);
    // Only what the push adds is judged, against as much of each history as its checks read:
    // everything older was accepted by this guard before. The cost follows the push, not
    // the history.
    let before: BTreeMap<(String, String, String), Option<String>> = chains
        .iter()
        .filter_map(|u| chain_group(&u.refname).map(|g| (g, u.old.clone())))
        .collect();
    for d in deployments {
        let mut scope = PushScope {
            new_tags: new_tags
                .iter()
                .filter(|n| group_of(n).is_some_and(|g| g.0 == d))
                .cloned()
                .collect(),
            ..PushScope::default()
        };
        for g in touched.iter().filter(|g| g.0 == d) {
            let old = match before.get(g) {
                Some(old) => old.clone(),
                None => git.chain_tip(&g.0, &g.1, &g.2)?,
            };
            scope.groups.insert((g.1.clone(), g.2.clone()), old);
        }
        for p in audit_push(git, &mut book, &d, &scope, now)?.problems {
            let is_ref = p.reference.starts_with(&format!("{STATE_PREFIX}/"))
                || p.reference.starts_with(&format!("{CHAIN_PREFIX}/"));
            let relevant = new_tags.contains(&p.reference)
                || (is_ref
                    && (group_of(&p.reference).or_else(|| chain_group(&p.reference)))
                        .is_some_and(|g| touched.contains(&g)));
            if relevant {
                refused.push(p);
            }
        }
    }
    Ok(PushCheck {
        rules: origin,
        updates: updates.len(),
        checked: ours.len(),
        refused,
    })
}

/// Where the trusted rules bind pushes to the pusher (`identities.bind_pushes`): each record
/// the push adds whose signature does not verify for its writer, and whose writer is not the
/// pusher.
fn bound_to_pusher(
    git: &GitRepo,
    book: &mut RulesBook<'_>,
    new_tags: &BTreeSet<String>,
    pusher: Option<&Pusher>,
    now: Timestamp,
) -> Result<Vec<Problem>, WorkflowError> {
    let mut out = Vec::new();
    let commit = book.commit_at(now.as_second()).to_owned();
    for name in new_tags {
        let Some((d, _, _)) = group_of(name) else {
            continue;
        };
        let Some(rules) = book.rules(&commit, &d)? else {
            continue;
        };
        let settings = &rules.project.settings;
        if !settings.identities.bind_pushes {
            continue;
        }
        let Some(oid) = git.refs().find(name)?.map(|e| e.oid) else {
            continue;
        };
        let Some(entry) = TagEntry::parse(name, &oid, &d) else {
            continue;
        };
        let Ok(record) = git.read_record(&entry, &d) else {
            continue; // unreadable records are refused by the audit
        };
        let writer = record.signer();
        let signers = settings
            .approvers
            .allowed_signers
            .as_ref()
            .map(|s| rules.project.root.join(s));
        let signed = match (git.tag_signature(&entry)?, &signers) {
            (Some((payload, sig)), Some(path)) => {
                crate::signing::verify(&payload, &sig, writer, path, crate::signing::TAG_NAMESPACE)
                    .is_ok()
            }
            _ => false,
        };
        if let Some(why) = super::pusher::refusal(writer, signed, pusher, &settings.identities) {
            out.push(Problem {
                kind: ProblemKind::NotThePusher,
                reference: name.clone(),
                deployment: d.clone(),
                message: why,
                at: None,
            });
        }
    }
    Ok(out)
}

/// What is wrong with a build line's provenance: one that does not verify for its own
/// builder, commit and digest (checked wherever allowed signers are set), or none where a
/// target requires provenance and the build names a registry digest.
fn provenance_problem(
    record: &crate::contracts::BuildRecord,
    signers: Option<&std::path::Path>,
    required: bool,
) -> Option<String> {
    match (&record.provenance, &record.digest) {
        (Some(_), None) => Some("it carries a provenance but names no digest".into()),
        (Some(envelope), Some(digest)) if signers.is_some() || required => {
            let own = |who: &str| crate::identity::same(who, &record.built_by);
            let check = crate::provenance::check(
                envelope,
                &crate::provenance::Expect {
                    deployment: &record.deployment,
                    component: &record.component,
                    commit: &record.git_sha,
                    digest,
                    signers,
                    allowed_builder: &own,
                },
            );
            (!check.verified).then(|| {
                format!(
                    "its provenance does not verify: {}",
                    check.reason.unwrap_or_default()
                )
            })
        }
        (None, Some(_)) if required => Some(
            "it carries no signed provenance, and a target of the deployment requires one (atmos deployment build --signing-key)".into(),
        ),
        _ => None,
    }
}

/// What is wrong with the build lines a push adds to a builds note: a signature that does
/// not verify for its builder, or no signature where a target of the deployment requires
/// signatures (its planner would ignore the line; the guard refuses it outright).
fn build_lines_problems(
    git: &GitRepo,
    rules: Option<&crate::workflow::trust::Rules>,
    u: &RefUpdate,
) -> Result<Vec<String>, WorkflowError> {
    let Some(new) = &u.new else {
        return Ok(Vec::new());
    };
    let Some(rules) = rules else {
        return Ok(Vec::new());
    };
    let signers = rules
        .project
        .settings
        .approvers
        .allowed_signers
        .as_ref()
        .map(|s| rules.project.root.join(s));
    let required = rules.loaded.deployment.targets.values().any(|t| {
        t.promotion.as_ref().is_some_and(|p| {
            p.deployers.as_ref().is_some_and(|d| d.require_signed)
                || p.approvals.as_ref().is_some_and(|a| a.require_signed)
        })
    });
    let wants_provenance = rules.loaded.deployment.targets.values().any(|t| {
        t.promotion
            .as_ref()
            .and_then(|p| p.provenance.as_ref())
            .is_some_and(|p| p.required)
    });
    let mut out = Vec::new();
    for note in git.changed_notes(u.old.as_deref(), new)? {
        let before: BTreeSet<String> = match &note.was {
            Some(b) => String::from_utf8_lossy(&git.blob_bytes(b)?)
                .lines()
                .map(str::to_owned)
                .collect(),
            None => BTreeSet::new(),
        };
        let text = String::from_utf8_lossy(&git.blob_bytes(&note.blob)?).into_owned();
        for line in text
            .lines()
            .filter(|l| !l.trim().is_empty() && !before.contains(*l))
        {
            let Ok(record) = serde_json::from_str::<crate::contracts::BuildRecord>(line) else {
                continue;
            };
            let verdict = match (&record.signature, &signers) {
                (Some(sig), Some(path)) => crate::signing::verify(
                    record.signed_payload().as_bytes(),
                    sig,
                    &record.built_by,
                    path,
                    crate::contracts::build::SIGNING_NAMESPACE,
                )
                .err()
                .map(|e| format!("its signature does not verify: {e}")),
                (Some(_), None) | (None, _) if required => Some(format!(
                    "{} (a target of {} requires signatures, so builds are signed by their builder: atmos deployment build --signing-key)",
                    if record.signature.is_some() {
                        "signed, but approvers.allowed_signers is not set"
                    } else {
                        "unsigned"
                    },
                    rules.loaded.deployment.name
                )),
                _ => None,
            };
            let provenance = provenance_problem(&record, signers.as_deref(), wants_provenance);
            for why in verdict.into_iter().chain(provenance) {
                out.push(format!(
                    "the build of {} at {} by {}: {why}",
                    record.component,
                    short(&note.object),
                    record.built_by
                ));
            }
        }
    }
    Ok(out)
}

fn git2_tag() -> &'static str {
    "tag"
}

/// Why object `oid` is not a `kind` object of at most `max` bytes, if it is not (read from
/// its header: a huge object is never loaded).
pub(crate) fn object_problem(git: &GitRepo, oid: &str, kind: &str, max: usize) -> Option<String> {
    match git.object_header(oid) {
        None => Some(format!(
            "{} is not in the push or the repository",
            short(oid)
        )),
        Some((k, _)) if k != kind => Some(format!("points at a {k}, not a {kind}")),
        Some((_, size)) if size > max => {
            Some(format!("holds {size} bytes; a record is at most {max}"))
        }
        Some(_) => None,
    }
}

/// Why `new` is not a lease for the lock `refname`, if it is not.
pub(crate) fn lease_problem(git: &GitRepo, refname: &str, new: &str) -> Option<String> {
    let rest = &refname[crate::contracts::layout::LOCK_PREFIX.len() + 1..];
    let (d, t) = rest.split_once('/')?;
    match git.read_lease(new) {
        Err(why) => Some(why),
        Ok(l) if l.deployment != d || l.target != t => Some(format!(
            "holds the lease of {}/{}, not of {d}/{t}",
            l.deployment, l.target
        )),
        Ok(_) => None,
    }
}

/// Why the chain ref update `u` does not extend its history through the records of this
/// push, if it does not: from its new value back, the records it passes are new ones, until
/// it reaches its old value (or, for a new chain ref, the start of the history or a record
/// written before chain refs).
fn chain_extended(
    git: &GitRepo,
    u: &RefUpdate,
    new_tags: &BTreeSet<String>,
) -> Result<Option<String>, WorkflowError> {
    let Some((d, t, c)) = chain_group(&u.refname) else {
        return Ok(None);
    };
    let Some(new) = &u.new else {
        return Ok(None);
    };
    // The records this push adds to this history, by tag object id: the chain ref moves to
    // the newest of them, and from it back by their links to where it was — by links only.
    let mut pushed: std::collections::HashMap<String, (String, crate::contracts::TagRecord)> =
        std::collections::HashMap::new();
    for name in new_tags {
        if group_of(name).as_ref() != Some(&(d.clone(), t.clone(), c.clone())) {
            continue;
        }
        let Some(oid) = git.refs().find(name)?.map(|e| e.oid) else {
            continue;
        };
        let Some(entry) = TagEntry::parse(name, &oid, &d) else {
            continue;
        };
        if let Ok(record) = git.read_record(&entry, &d) {
            pushed.insert(oid, (entry.name, record));
        }
    }
    let refuse = |why: String| Ok(Some(why));
    let mut at = new.clone();
    for _ in 0..=pushed.len() {
        let Some((name, record)) = pushed.get(&at) else {
            return refuse(format!(
                "names {}, which is no record this push adds to {t}/{c}: a chain ref moves only forward, to the newest of the records pushed with it",
                short(&at)
            ));
        };
        match (&record.previous_record, &u.old) {
            (Some(p), Some(old)) if p == old => return Ok(None),
            (None, None) => return Ok(None),
            (Some(p), _) if pushed.contains_key(p) => at = p.clone(),
            // A chain that continues a history written before chain refs.
            (Some(p), None) if legacy_record(git, &d, &t, &c, p)? => return Ok(None),
            _ => {
                return refuse(format!(
                    "passes {name}, whose previous record is not {}: a chain ref moves only forward, through the records pushed with it",
                    u.old.as_deref().map_or("the start of the history", short)
                ));
            }
        }
    }
    refuse(format!(
        "loops through the records of this push before it reaches {}",
        u.old.as_deref().map_or("the start of the history", short)
    ))
}

/// Whether `oid` is a record of `d`/`t`/`c` written before records were numbered.
fn legacy_record(
    git: &GitRepo,
    d: &str,
    t: &str,
    c: &str,
    oid: &str,
) -> Result<bool, WorkflowError> {
    let (tags, _) = git.group_tags(d, t, c)?;
    Ok(tags
        .iter()
        .find(|e| e.oid == oid)
        .and_then(|e| git.read_record(e, d).ok())
        .is_some_and(|r| r.sequence.is_none()))
}

/// What the guard knows of archived records while it judges one push: the records each
/// accepted ledger update adds, and, read once per history when a deletion needs it, the
/// records a ledger already held.
#[derive(Default)]
struct Archived {
    /// `(deployment)` → records (name, object) its ledger update in this push adds.
    added: HashMap<String, BTreeSet<(String, String)>>,
    /// `(deployment, target)` → every record of that target in the ledger as the push leaves it.
    held: HashMap<(String, String), BTreeSet<(String, String)>>,
}

/// True when the ledger of the tag's deployment, as the push leaves it, holds the record the
/// tag `refname` held (`old`). A fold pushes its ledger commit with the deletions, so the
/// records that commit adds answer almost every deletion; only a tag already archived
/// before (pruned by another clone) needs the target's whole ledger, read once.
fn archived_in(
    git: &GitRepo,
    archived: &mut Archived,
    refname: &str,
    old: &str,
) -> Result<bool, WorkflowError> {
    let Some((d, target, _)) = group_of(refname) else {
        return Ok(false);
    };
    let name = refname.trim_start_matches("refs/tags/");
    let record = (name.to_owned(), old.to_owned());
    if archived.added.get(&d).is_some_and(|a| a.contains(&record)) {
        return Ok(true);
    }
    let key = (d.clone(), target.clone());
    if !archived.held.contains_key(&key) {
        let held = match git.ledger_head(&d)? {
            Some(ledger) => git
                .ledger_entries_at(&ledger, &d, Some(&target))?
                .0
                .into_iter()
                .map(|e| (e.name, e.oid))
                .collect(),
            None => BTreeSet::new(),
        };
        archived.held.insert(key.clone(), held);
    }
    Ok(archived.held.get(&key).is_some_and(|h| h.contains(&record)))
}

/// Why moving `d`'s ledger from `old` to `new` is not appending to it, if it is not: `new`
/// must be one commit on top of `old`, every line readable, every record of `old` still there,
/// and every record it adds one that is a history tag of the repository now (so the ledger
/// holds only records that were accepted as tags). Reads only the files the commit changes
/// (an append touches the month files it adds to), so its cost follows the push, not the
/// archived history. On success, the records it adds.
fn ledger_appended(
    git: &GitRepo,
    d: &str,
    old: Option<&str>,
    new: &str,
) -> Result<Result<BTreeSet<(String, String)>, String>, WorkflowError> {
    let parents = git.commit_parents(new)?;
    if parents.as_slice()
        != old
            .map(|o| vec![o.to_owned()])
            .unwrap_or_default()
            .as_slice()
    {
        return Ok(Err(format!(
            "{} is not one commit on top of {}: the ledger is only appended to",
            short(new),
            old.map_or("nothing", short)
        )));
    }
    let changes = git.ledger_changes(old, new, d)?;
    if let Some(o) = changes.odd.first() {
        return Ok(Err(format!("{}: {}", o.tag, o.reason)));
    }
    if let Some(e) = changes.dropped() {
        return Ok(Err(format!("drops the archived record {}", e.name)));
    }
    let had: BTreeSet<(String, String)> = changes
        .before
        .into_iter()
        .map(|e| (e.name, e.oid))
        .collect();
    let added: Vec<&TagEntry> = changes
        .after
        .iter()
        .filter(|e| !had.contains(&(e.name.clone(), e.oid.clone())))
        .collect();
    if added.is_empty() {
        return Ok(Err(
            "adds no record: each ledger commit absorbs at least one history tag".into(),
        ));
    }
    for e in &added {
        let tag = format!("refs/tags/{}", e.name);
        if git.refs().find(&tag)?.map(|r| r.oid).as_deref() != Some(e.oid.as_str()) {
            return Ok(Err(format!(
                "adds {}, which is not a history tag here: the ledger only absorbs existing records",
                e.name
            )));
        }
        if let Err(o) = git.read_record(e, d) {
            return Ok(Err(format!(
                "adds {}, which is not a readable record: {}",
                e.name, o.reason
            )));
        }
    }
    Ok(Ok(added
        .into_iter()
        .map(|e| (e.name.clone(), e.oid.clone()))
        .collect()))
}

/// What is wrong with moving the notes ref of `kind` from `old` to `new`: its tree laid out
/// as git writes notes, every note it changes within its size and (approvals, builds) made
/// of records, one per line — and approvals and builds only grow, a log is never changed.
fn notes_problems(
    git: &GitRepo,
    kind: &str,
    old: Option<&str>,
    new: &str,
) -> Result<Vec<String>, WorkflowError> {
    if git.object_kind(new) != Some("commit") {
        return Ok(vec![format!(
            "points at {}, which is not a notes commit",
            short(new)
        )]);
    }
    if let Some(why) = git.notes_layout_problem(new)? {
        return Ok(vec![why]);
    }
    let mut out = Vec::new();
    let max = crate::contracts::limits::note_max(kind);
    for crate::git::notes::ChangedNote {
        object: commit,
        blob,
        ..
    } in git.changed_notes(old, new)?
    {
        let Some((k, size)) = git.object_header(&blob) else {
            out.push(format!("the note of {} is missing", short(&commit)));
            continue;
        };
        if k != "blob" || size > max {
            out.push(format!(
                "the note of {} holds {size} bytes; a {kind} note is at most {max}",
                short(&commit)
            ));
            continue;
        }
        let bytes = git.blob_bytes(&blob)?;
        match kind {
            "approvals" | "builds" => {
                if let Some(why) = crate::contracts::limits::json_lines_problem(&bytes) {
                    out.push(format!("the note of {} {why}", short(&commit)));
                    continue;
                }
                let text = String::from_utf8_lossy(&bytes);
                for (n, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let parsed = if kind == "approvals" {
                        serde_json::from_str::<crate::contracts::ApprovalRecord>(line)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    } else {
                        serde_json::from_str::<crate::contracts::BuildRecord>(line)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    };
                    if let Err(e) = parsed {
                        out.push(format!(
                            "line {} of the note of {} is not a {kind} record: {e}",
                            n + 1,
                            short(&commit)
                        ));
                        break;
                    }
                }
            }
            "logs" if std::str::from_utf8(&bytes).is_err() => {
                out.push(format!("the log noted on {} is not UTF-8", short(&commit)));
            }
            _ => {}
        }
    }
    if let Some(old) = old {
        if let Some(why) = notes_rewritten(git, old, new, kind == "sbom")? {
            out.push(why);
        } else if kind == "logs"
            && let Some(why) = log_changed(git, old, new)?
        {
            out.push(why);
        }
    }
    Ok(out)
}

/// Why moving a notes ref from `old` to `new` is not adding to it, if it is not: it must
/// build on `old`, and unless the notes are `derived` (SBOMs), every line of every note in
/// `old` must still be in `new` (approvals and builds only grow; a merge by union keeps
/// every line).
fn notes_rewritten(
    git: &GitRepo,
    old: &str,
    new: &str,
    derived: bool,
) -> Result<Option<String>, WorkflowError> {
    if old != new && !git.is_ancestor(old, new)? {
        return Ok(Some(format!(
            "{} does not build on {}: notes are only added to",
            short(new),
            short(old)
        )));
    }
    if derived {
        return Ok(None);
    }
    for (commit, text) in git.notes_at(old)? {
        let now = git.note_at(new, &commit)?.unwrap_or_default();
        let kept: BTreeSet<&str> = now.lines().collect();
        if let Some(line) = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .find(|l| !kept.contains(l))
        {
            let shown: String = line.chars().take(120).collect();
            return Ok(Some(format!(
                "removes a line from the note of {}: {shown}",
                short(&commit)
            )));
        }
    }
    Ok(None)
}

/// Why moving a logs notes ref from `old` to `new` changes a log that was there, if it does:
/// a rollout's log is written once, with its record; nothing is added to it afterwards.
fn log_changed(git: &GitRepo, old: &str, new: &str) -> Result<Option<String>, WorkflowError> {
    for (object, text) in git.notes_at(old)? {
        if git.note_at(new, &object)?.as_deref() != Some(text.as_str()) {
            return Ok(Some(format!(
                "changes the log kept with {}: a rollout's log is written once, with its record",
                short(&object)
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_receive_lines_parse_and_zero_means_absent() {
        let a = "a".repeat(40);
        let input = format!(
            "{ZERO} {a} refs/tags/atmos/deployments/svc/dev/a/t\n{a} {ZERO} refs/heads/x\n"
        );
        let u = parse_updates(&input).expect("parse");
        assert_eq!(u[0].old, None);
        assert_eq!(u[0].new.as_deref(), Some(a.as_str()));
        assert_eq!(u[1].new, None);
        assert!(parse_updates("junk\n").is_err());
        assert!(parse_updates(&format!("{a} {a}\n")).is_err());
    }
}
