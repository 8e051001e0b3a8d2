//! The administrator's way out of a ref no push can fix: `atmos deployment verify --repair
//! <ref> --reason <text>`, run on the server in its repository (the guard runs on pushes;
//! this runs beside it, with the server's own access). It repairs only what the guard
//! refuses today — something an older guard, or a write that bypassed it, let in:
//!
//! - a ref under an atmos namespace that is no documented kind, or a malformed lease: removed;
//! - a note that breaks the notes rules (not UTF-8, a control character or a NUL, a line too
//!   long, a line that is not a record of its kind, a note too big): the bad lines dropped,
//!   every good line kept (a note left empty goes);
//! - a history tag that is no readable record (not a tag, too big, not a record): removed,
//!   unless it is the newest record its chain names.
//!
//! Each repair is one commit on the server's repair log, `refs/atmos/audit` (`git log
//! refs/atmos/audit` shows who, when, what and why), which no push may write or delete.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::receive::{self, Kind};
use crate::contracts::layout::rfc3339;
use crate::contracts::limits;
use crate::git::{Author, GitRepo, short};
use crate::workflow::WorkflowError;

/// What to repair, and why.
#[derive(Debug, Clone)]
pub struct RepairRequest {
    /// The full ref name.
    pub refname: String,
    /// Why (kept in the repair log).
    pub reason: String,
    /// Who repairs (kept in the repair log).
    pub by: Author,
}

/// What a repair did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RepairReport {
    /// The ref.
    pub refname: String,
    /// What it held.
    pub old: String,
    /// What it holds now (`None`: removed).
    pub new: Option<String>,
    /// What was done, in a sentence.
    pub action: String,
    /// What was wrong, one entry per problem.
    pub problems: Vec<String>,
    /// The repair log's new commit.
    pub audit: String,
}

crate::document!(RepairReport => "RepairReport");

/// One entry of the repair log.
#[derive(Debug, Serialize)]
struct AuditEntry<'a> {
    repaired: &'a str,
    old: &'a str,
    new: Option<&'a str>,
    action: &'a str,
    problems: &'a [String],
    reason: &'a str,
    by: &'a str,
    at: String,
}

/// Repair `request.refname` in `git` (a server's repository), as the module says.
pub fn repair(git: &GitRepo, request: &RepairRequest) -> Result<RepairReport, WorkflowError> {
    let name = &request.refname;
    if request.reason.trim().is_empty() {
        return Err(WorkflowError::Repair {
            refname: name.clone(),
            why: "a reason is required: it is kept in the repair log".into(),
        });
    }
    let Some(old) = git.refs().find(name)?.map(|e| e.oid) else {
        return Err(WorkflowError::Repair {
            refname: name.clone(),
            why: "there is no such ref".into(),
        });
    };
    let nothing = |what: &str| WorkflowError::Repair {
        refname: name.clone(),
        why: format!("{what}: the guard accepts it, so there is nothing to repair"),
    };
    let (new, action, problems) = match receive::kind(name) {
        Kind::Audit => {
            return Err(WorkflowError::Repair {
                refname: name.clone(),
                why: "the repair log itself is never repaired".into(),
            });
        }
        Kind::Stray(why) => (None, "removed".to_owned(), vec![format!("{name} {why}")]),
        Kind::Lock => match receive::lease_problem(git, name, &old) {
            Some(why) => (None, "removed".to_owned(), vec![why]),
            None => return Err(nothing("a well-formed lease (lock release clears it)")),
        },
        Kind::Tag => {
            let Some(why) = receive::object_problem(git, &old, "tag", limits::RECORD_MAX)
                .or_else(|| unreadable_record(git, name, &old))
            else {
                return Err(nothing("a readable record"));
            };
            if let Some((d, t, c)) = super::view::group_of(name)
                && git.chain_tip(&d, &t, &c)?.as_deref() == Some(old.as_str())
            {
                return Err(WorkflowError::Repair {
                    refname: name.clone(),
                    why: format!(
                        "it is the newest record of {t}/{c} (its chain ref names it); {why}"
                    ),
                });
            }
            (None, "removed".to_owned(), vec![why])
        }
        Kind::Notes(kind) => {
            let (replace, problems) = bad_notes(git, &kind, &old)?;
            if problems.is_empty() {
                return Err(nothing("every note is well-formed"));
            }
            let message = format!("atmos repair: {}", request.reason.trim());
            let commit = git.rewrite_notes(&old, &replace, &message, &request.by)?;
            let dropped = replace.values().filter(|v| v.is_none()).count();
            (
                Some(commit),
                format!(
                    "rewrote {} note{} ({dropped} removed), keeping every well-formed line",
                    replace.len(),
                    crate::plural::s(replace.len())
                ),
                problems,
            )
        }
        Kind::State | Kind::Chain | Kind::Ledger => {
            return Err(WorkflowError::Repair {
                refname: name.clone(),
                why: "state refs, chain refs and ledgers are history: they are never removed by a repair (roll out, or archive, to move them)".into(),
            });
        }
    };
    let entry = AuditEntry {
        repaired: name,
        old: &old,
        new: new.as_deref(),
        action: &action,
        problems: &problems,
        reason: request.reason.trim(),
        by: &request.by.email,
        at: rfc3339(Timestamp::now()),
    };
    let line = serde_json::to_string(&entry).map_err(|e| WorkflowError::Internal {
        what: format!("the repair log entry: {e}"),
    })?;
    // The ref first, then the log: a repair that is logged happened.
    git.set_refs_from(&[(name.clone(), Some(old.clone()), new.clone())])?;
    let audit = git.append_audit(&line, &request.by)?;
    Ok(RepairReport {
        refname: name.clone(),
        old,
        new,
        action,
        problems,
        audit,
    })
}

/// Why the tag object `oid` at `name` is no readable record, if it is not.
fn unreadable_record(git: &GitRepo, name: &str, oid: &str) -> Option<String> {
    let (d, _, _) = super::view::group_of(name)?;
    let entry = crate::git::tags::TagEntry::parse(name, oid, &d)?;
    git.read_record(&entry, &d).err().map(|u| u.reason)
}

/// The notes of `kind` in the notes commit `commit` that break the rules: each one's
/// replacement (its good lines; `None` to remove it), and what was wrong.
#[allow(clippy::type_complexity)]
fn bad_notes(
    git: &GitRepo,
    kind: &str,
    commit: &str,
) -> Result<
    (
        std::collections::BTreeMap<String, Option<Vec<u8>>>,
        Vec<String>,
    ),
    WorkflowError,
> {
    let mut replace = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    let max = limits::note_max(kind);
    for (object, blob) in git.all_notes(commit)? {
        let size = git.object_header(&blob).map_or(0, |(_, s)| s);
        if size > max {
            problems.push(format!(
                "the note of {} holds {size} bytes; a {kind} note is at most {max}",
                short(&object)
            ));
            replace.insert(object, None);
            continue;
        }
        let bytes = git.blob_bytes(&blob)?;
        if !matches!(kind, "approvals" | "builds") {
            if std::str::from_utf8(&bytes).is_err() {
                problems.push(format!("the note of {} is not UTF-8", short(&object)));
                replace.insert(object, None);
            }
            continue;
        }
        let mut kept = Vec::new();
        let mut dropped = 0;
        for (n, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let why = match std::str::from_utf8(raw) {
                Err(_) => Some("is not UTF-8".to_owned()),
                Ok(line) => limits::json_lines_problem(line.as_bytes()).or_else(|| {
                    let parsed = if kind == "approvals" {
                        serde_json::from_str::<crate::contracts::ApprovalRecord>(line)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    } else {
                        serde_json::from_str::<crate::contracts::BuildRecord>(line)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    };
                    parsed.err().map(|e| format!("is not a {kind} record: {e}"))
                }),
            };
            match why {
                Some(why) => {
                    dropped += 1;
                    problems.push(format!(
                        "line {} of the note of {} {why}",
                        n + 1,
                        short(&object)
                    ));
                }
                None => {
                    kept.extend_from_slice(raw);
                    kept.push(b'\n');
                }
            }
        }
        if dropped > 0 {
            replace.insert(object, (!kept.is_empty()).then_some(kept));
        }
    }
    Ok((replace, problems))
}
