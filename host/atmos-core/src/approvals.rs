//! Approvals: sign-offs bound to one commit and one target, recorded as JSON lines in the
//! note `refs/notes/atmos/<deployment>/approvals` on that commit, optionally signed with an
//! SSH key (`ssh-keygen -Y sign`, namespace [`SIGNING_NAMESPACE`]) and verified offline
//! against an `allowed_signers` file.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::model::{ApprovalMethod, ApprovalRules};
use crate::config::settings::Approvers;
use crate::contracts::approval::SIGNING_NAMESPACE;
use crate::contracts::layout::notes_ref;
use crate::contracts::{ApprovalDecision, ApprovalRecord};
use crate::git::{Author, GitError, GitRepo};

/// Read every approval line of `commit` (lines that do not parse are returned as such).
pub fn read(
    git: &GitRepo,
    deployment: &str,
    commit: &str,
) -> Result<(Vec<ApprovalRecord>, Vec<String>), GitError> {
    // No note: nobody approved or rejected this commit yet.
    let text = git
        .read_note(&notes_ref(deployment, "approvals"), commit)?
        .unwrap_or_default();
    Ok(parse(&text))
}

/// The approval records of a note's text, and the lines that are not records (a record
/// never counts unless it parses; the lines are reported where the note is audited).
pub fn parse(text: &str) -> (Vec<ApprovalRecord>, Vec<String>) {
    let mut records = Vec::new();
    let mut odd = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<ApprovalRecord>(line) {
            Ok(r) => records.push(r),
            Err(_) => odd.push(line.to_owned()),
        }
    }
    (records, odd)
}

/// The number of `approver`'s next word on `commit` for `target` of `deployment`: one more
/// than the highest they wrote (see [`ApprovalRecord::sequence`]).
pub fn next_sequence(
    records: &[ApprovalRecord],
    deployment: &str,
    target: &str,
    commit: &str,
    approver: &str,
) -> u64 {
    records
        .iter()
        .filter(|r| {
            r.deployment == deployment
                && r.target == target
                && r.git_sha == commit
                && crate::identity::same(&r.approved_by, approver)
        })
        .map(|r| r.sequence.unwrap_or(0))
        .max()
        .map_or(1, |n| n.saturating_add(1))
}

/// Append one record.
pub fn append(git: &GitRepo, record: &ApprovalRecord, author: &Author) -> Result<(), GitError> {
    let line = serde_json::to_string(record).unwrap_or_default();
    git.append_note_line(
        &notes_ref(&record.deployment, "approvals"),
        &record.git_sha,
        &line,
        author,
    )
}

pub use crate::signing::SignError;

/// The most commits whose authors are checked for self-approval.
pub const AUTHORS_CAP: usize = 200;

/// The authors of what a target gains by moving from `from` (what it ran; `None`: nothing)
/// to `to`: the commits of `to` not in `from`, newest first, up to [`AUTHORS_CAP`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gained {
    /// Author emails, each once, newest commit's first.
    pub authors: Vec<String>,
    /// True when the target gains more commits than were read.
    pub truncated: bool,
}

/// The authors a target gains — one function for the approval gate and for `verify`, so
/// that the audit counts the same people the gate did. A commit that cannot be read is an
/// error, never an author left out.
pub fn authors_gained(git: &GitRepo, from: Option<&str>, to: &str) -> Result<Gained, GitError> {
    let shas = match from {
        Some(f) if f == to => Vec::new(),
        Some(f) => git.log_between(f, to, AUTHORS_CAP + 1)?,
        // A first rollout gains the whole history (up to the cap), not the newest commit.
        None => git.log(to, AUTHORS_CAP + 1)?,
    };
    let truncated = shas.len() > AUTHORS_CAP;
    let mut authors = Vec::new();
    for sha in shas.iter().take(AUTHORS_CAP) {
        let email = git.commit_info(sha)?.author_email;
        if !crate::identity::listed(&authors, &email) {
            authors.push(email);
        }
    }
    Ok(Gained { authors, truncated })
}

/// Sign `record` with `key`.
pub fn sign(record: &ApprovalRecord, key: &crate::signing::Key) -> Result<String, SignError> {
    crate::signing::sign(record.signed_payload().as_bytes(), key, SIGNING_NAMESPACE)
}

/// Check `record`'s signature against `allowed_signers` for its `approved_by`.
pub fn verify(record: &ApprovalRecord, allowed_signers: &Path) -> Result<(), SignError> {
    let Some(signature) = &record.signature else {
        return Err(SignError("unsigned".into()));
    };
    crate::signing::verify(
        record.signed_payload().as_bytes(),
        signature,
        &record.approved_by,
        allowed_signers,
        SIGNING_NAMESPACE,
    )
}

/// One approval that counts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Counted {
    /// Who.
    pub approved_by: String,
    /// When.
    pub approved_at: String,
    /// Signed and verified.
    pub signed: bool,
}

/// An approval that does not count, and why.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Ignored {
    /// Who.
    pub approved_by: String,
    /// Why it does not count.
    pub reason: String,
}

/// A group member who may not approve this rollout, and why.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Excluded {
    /// Who.
    pub who: String,
    /// Why their approval would not count.
    pub why: String,
}

/// The approval rule applied to the records of one commit and target.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApprovalCheck {
    /// Approvals needed.
    pub required: u32,
    /// Approvals that count.
    pub counted: Vec<Counted>,
    /// Approvals that do not count.
    pub ignored: Vec<Ignored>,
    /// People whose latest word is a rejection: (who, comment).
    pub rejected_by: Vec<(String, Option<String>)>,
    /// People who may still approve (group members not yet counted, not self), when groups
    /// are configured.
    pub eligible: Vec<String>,
    /// Group members left out of `eligible` whose approval would be a self-approval, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<Excluded>,
    /// Groups approvals must come from.
    pub from_groups: Vec<String>,
    /// How approval is given.
    pub method: ApprovalMethod,
}

impl ApprovalCheck {
    /// True when enough approvals count and nobody's latest word is a rejection.
    pub fn satisfied(&self) -> bool {
        self.rejected_by.is_empty() && self.counted.len() >= self.required as usize
    }
}

/// Inputs of [`check`] that come from the rollout.
#[derive(Debug, Clone)]
pub struct CheckContext<'a> {
    /// Deployment.
    pub deployment: &'a str,
    /// Target.
    pub target: &'a str,
    /// The commit being approved.
    pub commit: &'a str,
    /// Who rolls out.
    pub actor: &'a str,
    /// Authors of the commits being deployed.
    pub authors: &'a [String],
    /// The rollout checking (a manual confirmation counts only inside it).
    pub rollout: Option<&'a str>,
    /// Project root (for `allowed_signers`).
    pub root: &'a Path,
}

/// Apply `rules` to `records` (all lines of the commit's note).
pub fn check(
    rules: &ApprovalRules,
    method: ApprovalMethod,
    approvers: &Approvers,
    records: &[ApprovalRecord],
    ctx: &CheckContext<'_>,
) -> ApprovalCheck {
    let members: Vec<String> = rules
        .from_groups
        .iter()
        .flat_map(|g| approvers.groups.get(g).cloned().unwrap_or_default())
        .collect();
    let signers: Option<PathBuf> = approvers.allowed_signers.as_ref().map(|p| ctx.root.join(p));
    // A record that does not prove its author is set aside before anyone's latest word is
    // chosen, so a forged later approval cannot hide a real rejection. A rejection can only
    // hold a rollout back, so an unproven one still counts (fail closed), marked as such.
    let mine = |r: &&ApprovalRecord| {
        r.deployment == ctx.deployment && r.target == ctx.target && r.git_sha == ctx.commit
    };
    let proof = |r: &ApprovalRecord| -> Result<bool, String> {
        match (&r.signature, &signers) {
            (Some(_), Some(path)) => verify(r, path)
                .map(|()| true)
                .map_err(|e| format!("signature: {e}")),
            (Some(_), None) if rules.require_signed => Err(
                "signed approvals are required but approvers.allowed_signers is not set in atmos.yaml".into(),
            ),
            (Some(_), None) => Ok(false),
            (None, _) if rules.require_signed => Err("unsigned, and signed approvals are required".into()),
            (None, _) => Ok(false),
        }
    };
    let mut out = ApprovalCheck {
        required: rules.min.unwrap_or(1),
        counted: Vec::new(),
        ignored: Vec::new(),
        rejected_by: Vec::new(),
        eligible: Vec::new(),
        excluded: Vec::new(),
        from_groups: rules.from_groups.clone(),
        method,
    };
    let checked: Vec<(&ApprovalRecord, Result<bool, String>)> =
        records.iter().filter(mine).map(|r| (r, proof(r))).collect();
    // Someone who signs their word: an unsigned approval in their name is not theirs.
    let signs: Vec<&str> = checked
        .iter()
        .filter(|(_, p)| matches!(p, Ok(true)))
        .map(|(r, _)| r.approved_by.as_str())
        .collect();
    let mut latest: Vec<(&ApprovalRecord, Result<bool, String>)> = Vec::new();
    for (r, checked) in checked.iter().cloned() {
        let checked = match checked {
            Ok(false) if signs.contains(&r.approved_by.as_str()) => Err(format!(
                "unsigned, but {} signs their approvals",
                r.approved_by
            )),
            other => other,
        };
        if r.decision == ApprovalDecision::Approve
            && let Err(reason) = &checked
        {
            out.ignored.push(Ignored {
                approved_by: r.approved_by.clone(),
                reason: reason.clone(),
            });
            continue;
        }
        // The latest word by number, never by clock; on a tie a rejection wins.
        match latest
            .iter_mut()
            .find(|(l, _)| crate::identity::same(&l.approved_by, &r.approved_by))
        {
            Some(l) if r.order_key() >= l.0.order_key() => *l = (r, checked),
            Some(_) => {}
            None => latest.push((r, checked)),
        }
    }
    for (r, checked) in latest {
        let who = r.approved_by.clone();
        if r.decision == ApprovalDecision::Reject {
            let comment = match (&checked, &r.comment) {
                (Err(reason), Some(c)) => Some(format!("{c}; not proven: {reason}")),
                (Err(reason), None) => Some(format!("not proven: {reason}")),
                (Ok(_), c) => c.clone(),
            };
            out.rejected_by.push((who, comment));
            continue;
        }
        let is_self =
            crate::identity::same(&who, ctx.actor) || crate::identity::listed(ctx.authors, &who);
        let manual_ok = method == ApprovalMethod::Manual
            && r.method == "manual"
            && crate::identity::same(&who, ctx.actor)
            && r.rollout.is_some()
            && r.rollout.as_deref() == ctx.rollout;
        let reason = if is_self && !rules.allow_self_approval && !manual_ok {
            Some(if crate::identity::same(&who, ctx.actor) {
                "self-approval: the approver is the deployer".to_owned()
            } else {
                "self-approval: the approver wrote a commit being deployed".to_owned()
            })
        } else if !rules.from_groups.is_empty()
            && !crate::identity::listed(&members, &who)
            && !manual_ok
        {
            Some(format!("not in {}", rules.from_groups.join(", ")))
        } else {
            None
        };
        if let Some(reason) = reason {
            out.ignored.push(Ignored {
                approved_by: who,
                reason,
            });
            continue;
        }
        out.counted.push(Counted {
            approved_by: who,
            approved_at: r.approved_at.clone(),
            signed: matches!(checked, Ok(true)),
        });
    }
    for m in members {
        if out
            .counted
            .iter()
            .any(|c| crate::identity::same(&c.approved_by, &m))
        {
            continue;
        }
        let mut why = Vec::new();
        if !rules.allow_self_approval {
            if crate::identity::same(&m, ctx.actor) {
                why.push("runs this rollout");
            }
            if crate::identity::listed(ctx.authors, &m) {
                why.push("authored a commit it carries");
            }
        }
        if why.is_empty() {
            if !out.eligible.contains(&m) {
                out.eligible.push(m);
            }
        } else if !out.excluded.iter().any(|e| e.who == m) {
            out.excluded.push(Excluded {
                who: m,
                why: format!("{}: a self-approval", why.join(", and ")),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        who: &str,
        at: &str,
        decision: ApprovalDecision,
        target: &str,
        sha: &str,
    ) -> ApprovalRecord {
        ApprovalRecord {
            approved_by: who.into(),
            approved_at: at.into(),
            decision,
            deployment: "svc".into(),
            target: target.into(),
            git_sha: sha.into(),
            promoted_from: None,
            comment: None,
            method: "recorded".into(),
            rollout: None,
            sequence: None,
            signature: None,
        }
    }

    fn ctx<'a>(authors: &'a [String]) -> CheckContext<'a> {
        CheckContext {
            deployment: "svc",
            target: "prod",
            commit: "c1",
            actor: "ci@example.com",
            authors,
            rollout: None,
            root: Path::new("/nonexistent"),
        }
    }

    fn approvers() -> Approvers {
        let mut a = Approvers::default();
        a.groups.insert(
            "sre".into(),
            vec![
                "alice@example.com".into(),
                "bob@example.com".into(),
                "dev@example.com".into(),
            ],
        );
        a
    }

    #[test]
    fn quorum_groups_self_approval_and_scope() {
        let rules = ApprovalRules {
            min: Some(2),
            from_groups: vec!["sre".into()],
            ..Default::default()
        };
        let authors = vec!["dev@example.com".to_owned()];
        let records = vec![
            rec(
                "alice@example.com",
                "2025-01-01T10:00:00Z",
                ApprovalDecision::Approve,
                "prod",
                "c1",
            ),
            rec(
                "dev@example.com",
                "2025-01-01T10:01:00Z",
                ApprovalDecision::Approve,
                "prod",
                "c1",
            ),
            rec(
                "mallory@example.com",
                "2025-01-01T10:02:00Z",
                ApprovalDecision::Approve,
                "prod",
                "c1",
            ),
            rec(
                "bob@example.com",
                "2025-01-01T10:03:00Z",
                ApprovalDecision::Approve,
                "staging",
                "c1",
            ),
            rec(
                "bob@example.com",
                "2025-01-01T10:04:00Z",
                ApprovalDecision::Approve,
                "prod",
                "c0",
            ),
        ];
        let c = check(
            &rules,
            ApprovalMethod::Recorded,
            &approvers(),
            &records,
            &ctx(&authors),
        );
        assert_eq!(
            c.counted
                .iter()
                .map(|x| x.approved_by.as_str())
                .collect::<Vec<_>>(),
            vec!["alice@example.com"]
        );
        assert_eq!(c.ignored.len(), 2, "{:?}", c.ignored);
        assert!(
            c.ignored
                .iter()
                .any(|i| i.approved_by == "dev@example.com" && i.reason.contains("wrote a commit"))
        );
        assert!(
            c.ignored
                .iter()
                .any(|i| i.approved_by == "mallory@example.com" && i.reason == "not in sre")
        );
        assert_eq!(
            c.eligible,
            vec!["bob@example.com"],
            "bob's approvals were for another target or commit"
        );
        assert!(!c.satisfied());
        let mut more = records.clone();
        more.push(rec(
            "bob@example.com",
            "2025-01-01T11:00:00Z",
            ApprovalDecision::Approve,
            "prod",
            "c1",
        ));
        assert!(
            check(
                &rules,
                ApprovalMethod::Recorded,
                &approvers(),
                &more,
                &ctx(&authors)
            )
            .satisfied()
        );
    }

    #[test]
    fn a_rejection_blocks_until_the_same_person_approves_later() {
        let rules = ApprovalRules::default();
        let mut records = vec![
            rec(
                "alice@example.com",
                "2025-01-01T10:00:00Z",
                ApprovalDecision::Approve,
                "prod",
                "c1",
            ),
            rec(
                "bob@example.com",
                "2025-01-01T10:01:00Z",
                ApprovalDecision::Reject,
                "prod",
                "c1",
            ),
        ];
        let c = check(
            &rules,
            ApprovalMethod::Recorded,
            &Approvers::default(),
            &records,
            &ctx(&[]),
        );
        assert!(!c.satisfied());
        assert_eq!(c.rejected_by[0].0, "bob@example.com");
        records.push(rec(
            "bob@example.com",
            "2025-01-01T10:05:00Z",
            ApprovalDecision::Approve,
            "prod",
            "c1",
        ));
        assert!(
            check(
                &rules,
                ApprovalMethod::Recorded,
                &Approvers::default(),
                &records,
                &ctx(&[])
            )
            .satisfied()
        );
    }

    #[test]
    fn the_deployer_cannot_approve_unless_allowed() {
        let records = vec![rec(
            "ci@example.com",
            "2025-01-01T10:00:00Z",
            ApprovalDecision::Approve,
            "prod",
            "c1",
        )];
        let strict = check(
            &ApprovalRules::default(),
            ApprovalMethod::Recorded,
            &Approvers::default(),
            &records,
            &ctx(&[]),
        );
        assert!(!strict.satisfied());
        assert_eq!(
            strict.ignored[0].reason,
            "self-approval: the approver is the deployer"
        );
        let relaxed = ApprovalRules {
            allow_self_approval: true,
            ..Default::default()
        };
        assert!(
            check(
                &relaxed,
                ApprovalMethod::Recorded,
                &Approvers::default(),
                &records,
                &ctx(&[])
            )
            .satisfied()
        );
    }

    #[test]
    fn payload_excludes_the_signature() {
        let mut r = rec(
            "a@example.com",
            "t",
            ApprovalDecision::Approve,
            "prod",
            "c1",
        );
        let before = r.signed_payload();
        r.signature = Some("sig".into());
        assert_eq!(r.signed_payload(), before);
        assert!(!before.contains("signature"));
    }

    #[test]
    fn a_persons_latest_word_is_decided_by_its_number_never_the_clock() {
        let word = |decision, at: &str, sequence| ApprovalRecord {
            sequence,
            ..rec("bob@example.com", at, decision, "prod", "c1")
        };
        let rules = ApprovalRules::default();
        let verdict = |records: &[ApprovalRecord]| {
            let c = check(
                &rules,
                ApprovalMethod::Recorded,
                &Approvers::default(),
                records,
                &ctx(&[]),
            );
            (c.satisfied(), c.rejected_by.len())
        };
        use ApprovalDecision::{Approve, Reject};
        // Same second, numbered: the higher number is the latest word, in any order.
        let t = "2025-01-01T10:00:00Z";
        assert_eq!(
            verdict(&[word(Approve, t, Some(1)), word(Reject, t, Some(2))]),
            (false, 1)
        );
        assert_eq!(
            verdict(&[word(Reject, t, Some(2)), word(Approve, t, Some(1))]),
            (false, 1)
        );
        assert_eq!(
            verdict(&[word(Reject, t, Some(1)), word(Approve, t, Some(2))]),
            (true, 0)
        );
        // A clock an hour behind does not reorder numbered words.
        let earlier = "2025-01-01T09:00:00Z";
        assert_eq!(
            verdict(&[word(Reject, t, Some(1)), word(Approve, earlier, Some(2))]),
            (true, 0)
        );
        // Two words with one number (two machines at once): a rejection wins.
        assert_eq!(
            verdict(&[word(Approve, t, Some(3)), word(Reject, t, Some(3))]),
            (false, 1)
        );
        // Unnumbered (older) lines come first, ordered by time.
        assert_eq!(
            verdict(&[
                word(Approve, t, Some(1)),
                word(Reject, "2026-01-01T00:00:00Z", None)
            ]),
            (true, 0)
        );
        // The next number follows the highest, whatever the lines' order.
        let lines = [
            word(Reject, t, Some(4)),
            word(Approve, t, None),
            word(Approve, t, Some(2)),
        ];
        assert_eq!(
            next_sequence(&lines, "svc", "prod", "c1", "bob@example.com"),
            5
        );
        assert_eq!(
            next_sequence(&lines, "svc", "prod", "c1", "alice@example.com"),
            1
        );
        assert_eq!(
            next_sequence(&lines, "svc", "staging", "c1", "bob@example.com"),
            1
        );
    }
}
