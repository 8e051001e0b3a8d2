//! The server-side guard: git's `pre-receive` hook protocol (one `<old> <new> <ref>` line per
//! updated ref on standard input, the pushed objects readable but not yet accepted). A push to
//! atmos's namespaces is refused when it would delete or rewrite history, move a state ref
//! away from its newest success record, rewrite notes instead of adding to them, or add a
//! record the rules of the trusted ref (as it is before the push) do not allow: unsigned or
//! unauthorised, off the chain, a promotion that skips the path, missing approvals.

use std::collections::BTreeSet;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::checks::audit;
use super::report::{Problem, ProblemKind, VerifyRequest};
use super::rules::RulesBook;
use super::view::{Namespace, View, group_of, namespace};
use crate::contracts::layout::{STATE_PREFIX, TAG_PREFIX, ledger_ref};
use crate::git::tags::TagEntry;
use crate::git::{GitRepo, short};
use crate::workflow::WorkflowError;
use crate::workflow::trust::{self, RulesOrigin};

/// A record written more than this far in the future of the server's clock is refused.
const FUTURE_SKEW_SECONDS: i64 = 300;

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

/// Check a push to the repository `git` (opened from the hook's environment), at `now`.
pub fn check(
    git: &GitRepo,
    updates: &[RefUpdate],
    now: Timestamp,
) -> Result<PushCheck, WorkflowError> {
    // Pushes outside atmos's namespaces (branches, other tags) are not this hook's business,
    // and need no rules: the first push of a repository creates its default branch.
    let ours = updates
        .iter()
        .filter(|u| !matches!(namespace(&u.refname), Namespace::Other | Namespace::Lock))
        .count();
    if ours == 0 {
        return Ok(PushCheck {
            rules: RulesOrigin {
                source: String::new(),
                commit: None,
                chosen_by: "no atmos refs in this push".into(),
            },
            updates: updates.len(),
            checked: 0,
            refused: Vec::new(),
        });
    }
    let origin = trust::server_trusted_ref(git)?;
    let mut refused = Vec::new();
    let mut view = View::read(git)?;
    let before = view.clone();
    let mut new_tags = BTreeSet::new();
    let mut touched = BTreeSet::new();
    let mut checked = 0;
    let mut archived_tags: Vec<String> = Vec::new();
    let problem = |kind, reference: &str, message: String| Problem {
        kind,
        reference: reference.to_owned(),
        deployment: group_of(reference).map(|g| g.0).unwrap_or_default(),
        message,
        at: None,
    };
    // Ledger updates first: a tag may be deleted only when the ledger (as this push leaves
    // it) holds its record.
    let mut ordered: Vec<&RefUpdate> = updates.iter().collect();
    ordered.sort_by_key(|u| namespace(&u.refname) != Namespace::Ledger);
    for u in ordered {
        let ns = namespace(&u.refname);
        if matches!(ns, Namespace::Other | Namespace::Lock) {
            continue;
        }
        checked += 1;
        // Names must fit the layout, and values be the kind of object the layout says: a
        // short name would block the real refs beneath it, a blob would break every reader.
        let misfit = match (ns, &u.new) {
            (Namespace::State, Some(new)) => {
                if group_of(&u.refname).is_none() {
                    Some(
                        "is not refs/atmos/deployments/<deployment>/<target>/<component>"
                            .to_owned(),
                    )
                } else if git.object_kind(new) != Some("commit") {
                    Some(format!("points at {}, which is not a commit", short(new)))
                } else {
                    None
                }
            }
            (Namespace::Tag, Some(new)) => {
                let parsed =
                    group_of(&u.refname).and_then(|(d, ..)| TagEntry::parse(&u.refname, new, &d));
                if parsed.is_none() {
                    Some("is not refs/tags/atmos/deployments/<deployment>/<target>/<component>/<UTC time>".to_owned())
                } else if git.object_kind(new) != Some("tag") {
                    Some("is not an annotated tag: a history record is a tag object".to_owned())
                } else {
                    None
                }
            }
            (Namespace::Notes, Some(new)) => git.notes_layout_problem(new)?,
            (Namespace::Ledger, Some(new)) => {
                let d = u.refname.rsplit('/').next().unwrap_or_default();
                if u.refname != ledger_ref(d)
                    || crate::names::check(d, crate::names::NameKind::Deployment).is_err()
                {
                    Some("is not refs/atmos/ledger/<deployment>".to_owned())
                } else if git.object_kind(new) != Some("commit") {
                    Some(format!("points at {}, which is not a commit", short(new)))
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(why) = misfit {
            refused.push(problem(ProblemKind::StrayRef, &u.refname, why));
            continue;
        }
        match (ns, &u.old, &u.new) {
            (Namespace::Stray, ..) => refused.push(problem(
                ProblemKind::StrayRef,
                &u.refname,
                "is not part of atmos's layout (state refs, history tags, notes, locks)".into(),
            )),
            (Namespace::Tag, Some(old), None) => {
                if archived_in(git, &view, &u.refname, old)? {
                    view.set(&u.refname, None);
                    archived_tags.push(u.refname.clone());
                } else {
                    refused.push(problem(
                        ProblemKind::Deleted,
                        &u.refname,
                        "history tags are deleted only once the archive ledger holds them (atmos deployment archive)".into(),
                    ));
                }
            }
            (Namespace::Ledger, _, None) => refused.push(problem(
                ProblemKind::Deleted,
                &u.refname,
                "the archive ledger is never deleted".into(),
            )),
            (Namespace::Ledger, old, Some(new)) => {
                let d = u.refname.rsplit('/').next().unwrap_or_default();
                match ledger_appended(git, &before, d, old.as_deref(), new)? {
                    Some(why) => refused.push(problem(ProblemKind::Rewritten, &u.refname, why)),
                    None => view.set(&u.refname, Some(new)),
                }
            }
            (Namespace::Tag, Some(_), Some(_)) => refused.push(problem(
                ProblemKind::Rewritten,
                &u.refname,
                "history tags are never moved".into(),
            )),
            (Namespace::State, _, None) => refused.push(problem(
                ProblemKind::Deleted,
                &u.refname,
                "state refs are never deleted (roll back to change what runs)".into(),
            )),
            (Namespace::Notes, _, None) => refused.push(problem(
                ProblemKind::Deleted,
                &u.refname,
                "approval and SBOM notes are never deleted".into(),
            )),
            (Namespace::Notes, Some(old), Some(new)) => {
                // Approvals and builds only grow; an SBOM is regenerated from the builds, so
                // its note may change, but only on top of what is there.
                let derived = u.refname.ends_with("/sbom");
                let written_once = u.refname.ends_with("/logs");
                if let Some(why) = notes_rewritten(git, old, new, derived)? {
                    refused.push(problem(ProblemKind::NotesRewritten, &u.refname, why));
                } else if written_once && let Some(why) = log_changed(git, old, new)? {
                    refused.push(problem(ProblemKind::NotesRewritten, &u.refname, why));
                }
                view.set(&u.refname, Some(new));
            }
            (_, _, Some(new)) => {
                if ns == Namespace::Tag {
                    new_tags.insert(u.refname.clone());
                }
                if let Some(g) = group_of(&u.refname) {
                    touched.insert(g);
                }
                view.set(&u.refname, Some(new));
            }
            _ => {}
        }
    }

    // The newest record of every target/component stays a tag: plain git readers of the
    // layout find what runs where without reading the ledger.
    for name in &archived_tags {
        let Some((d, t, c)) = group_of(name) else {
            continue;
        };
        let Some(gone) = TagEntry::parse(name, "", &d) else {
            continue;
        };
        let prefix = format!("refs/tags/{TAG_PREFIX}/{d}/{t}/{c}/");
        let newer_left = view
            .tags
            .range(prefix.clone()..)
            .take_while(|(n, _)| n.starts_with(&prefix))
            .filter_map(|(n, oid)| TagEntry::parse(n, oid, &d))
            .any(|e| e.key() > gone.key());
        if !newer_left {
            refused.push(problem(
                ProblemKind::Deleted,
                name,
                format!("is the newest record of {t}/{c}: it stays a tag"),
            ));
        }
    }

    // New records are the newest of their target/component, and not from the future.
    for name in &new_tags {
        let Some((d, ..)) = group_of(name) else {
            continue;
        };
        let Some(entry) = TagEntry::parse(name, &view.tags[name], &d) else {
            continue;
        };
        if entry.at.as_second() > now.as_second() + FUTURE_SKEW_SECONDS {
            refused.push(problem(
                ProblemKind::Rewritten,
                name,
                format!(
                    "is dated {}, in the future of this server's clock",
                    entry.at
                ),
            ));
        }
        let prefix = format!(
            "refs/tags/{TAG_PREFIX}/{d}/{}/{}/",
            entry.target, entry.component
        );
        let later = before
            .tags
            .iter()
            .filter(|(n, _)| n.starts_with(&prefix))
            .filter_map(|(n, oid)| TagEntry::parse(n, oid, &d))
            .find(|e| e.key() >= entry.key());
        if let Some(e) = later {
            refused.push(problem(
                ProblemKind::Rewritten,
                name,
                format!(
                    "is older than the existing record {}: history is only added to, at its end",
                    e.name
                ),
            ));
        }
    }

    // The records and state refs the push adds or moves, by the rules as they are now.
    let mut book = RulesBook::new(git, std::path::PathBuf::new(), origin.clone(), true)?;
    let deployments: BTreeSet<String> = touched.iter().map(|g| g.0.clone()).collect();
    for d in deployments {
        let report = audit(
            git,
            &view,
            &mut book,
            &VerifyRequest {
                deployment: Some(d.clone()),
                ..VerifyRequest::default()
            },
        )?;
        for p in report.problems {
            let is_state = p.reference.starts_with(&format!("{STATE_PREFIX}/"));
            let relevant = new_tags.contains(&p.reference)
                || (is_state && group_of(&p.reference).is_some_and(|g| touched.contains(&g)));
            if relevant {
                refused.push(p);
            }
        }
    }
    Ok(PushCheck {
        rules: origin,
        updates: updates.len(),
        checked,
        refused,
    })
}

/// True when the ledger of the tag's deployment, as the push leaves it, holds the record the
/// tag `refname` held (`old`).
fn archived_in(
    git: &GitRepo,
    view: &View,
    refname: &str,
    old: &str,
) -> Result<bool, WorkflowError> {
    let Some((d, target, _)) = group_of(refname) else {
        return Ok(false);
    };
    let Some(ledger) = view.ledgers.get(&ledger_ref(&d)) else {
        return Ok(false);
    };
    let name = refname.trim_start_matches("refs/tags/");
    let (entries, _) = git.ledger_entries_at(ledger, &d, Some(&target))?;
    Ok(entries.iter().any(|e| e.name == name && e.oid == old))
}

/// Why moving `d`'s ledger from `old` to `new` is not appending to it, if it is not: `new`
/// must be one commit on top of `old`, every line readable, every record of `old` still there,
/// and every record it adds one that is a history tag of the repository now (so the ledger
/// holds only records that were accepted as tags).
fn ledger_appended(
    git: &GitRepo,
    before: &View,
    d: &str,
    old: Option<&str>,
    new: &str,
) -> Result<Option<String>, WorkflowError> {
    let parents = git.commit_parents(new)?;
    if parents.as_slice()
        != old
            .map(|o| vec![o.to_owned()])
            .unwrap_or_default()
            .as_slice()
    {
        return Ok(Some(format!(
            "{} is not one commit on top of {}: the ledger is only appended to",
            short(new),
            old.map_or("nothing", short)
        )));
    }
    let (now, odd) = git.ledger_entries_at(new, d, None)?;
    if let Some(o) = odd.first() {
        return Ok(Some(format!("{}: {}", o.tag, o.reason)));
    }
    let had: BTreeSet<(String, String)> = match old {
        Some(o) => git
            .ledger_entries_at(o, d, None)?
            .0
            .into_iter()
            .map(|e| (e.name, e.oid))
            .collect(),
        None => BTreeSet::new(),
    };
    let kept: BTreeSet<(&str, &str)> = now
        .iter()
        .map(|e| (e.name.as_str(), e.oid.as_str()))
        .collect();
    if let Some((name, _)) = had
        .iter()
        .find(|(n, o)| !kept.contains(&(n.as_str(), o.as_str())))
    {
        return Ok(Some(format!("drops the archived record {name}")));
    }
    let added: Vec<&TagEntry> = now
        .iter()
        .filter(|e| !had.contains(&(e.name.clone(), e.oid.clone())))
        .collect();
    if added.is_empty() {
        return Ok(Some(
            "adds no record: each ledger commit absorbs at least one history tag".into(),
        ));
    }
    for e in added {
        let tag = format!("refs/tags/{}", e.name);
        if before.tags.get(&tag) != Some(&e.oid) {
            return Ok(Some(format!(
                "adds {}, which is not a history tag here: the ledger only absorbs existing records",
                e.name
            )));
        }
        if let Err(o) = git.read_record(e, d) {
            return Ok(Some(format!(
                "adds {}, which is not a readable record: {}",
                e.name, o.reason
            )));
        }
    }
    Ok(None)
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
