//! The approval step of a target that requires approval: which commit the approvals must be
//! for (the newest deployed, which must hold every other one in its history), who wrote what
//! the target gains (no self-approval), and what the recorded approvals and rejections say.

use crate::approvals::{self, ApprovalCheck, CheckContext};
use crate::config::model::{ApprovalMethod, Target};
use crate::config::settings::Approvers;
use crate::contracts::{ApprovalRecord, Decision, Verdict};
use crate::git::{GitRepo, short};
use crate::workflow::error::WorkflowError;
use crate::workflow::rollout::model::{APPROVAL_GATE, PlannedComponent};

/// What the approval step is asked.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// Deployment.
    pub deployment: &'a str,
    /// The target rolled out to, and its rules.
    pub target: (&'a str, &'a Target),
    /// The approver groups and allowed signers (atmos.yaml of the trusted rules).
    pub approvers: &'a Approvers,
    /// Where `allowed_signers` is relative to.
    pub root: &'a std::path::Path,
    /// Who rolls out.
    pub actor: &'a str,
    /// This rollout's id (a manual confirmation counts only inside it).
    pub rollout: &'a str,
    /// Every selected component.
    pub components: &'a [PlannedComponent],
    /// The components whose commit changes.
    pub changing: &'a [&'a PlannedComponent],
}

/// What the approval step found.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// The rule applied, once approvals were counted.
    pub check: Option<ApprovalCheck>,
    /// The commit approvals must be for.
    pub commit: Option<String>,
    /// Who counted, for the record's `approver` metadata.
    pub approvers: Option<String>,
    /// The decisions (the verdict, then a warning per approval that does not count).
    pub decisions: Vec<Decision>,
}

/// The commit an approval of `components` must be for: the newest one they deploy.
pub fn approval_commit(
    git: &GitRepo,
    components: &[PlannedComponent],
) -> Result<String, WorkflowError> {
    let mut commits: Vec<String> = components.iter().map(|c| c.new.clone()).collect();
    commits.sort();
    commits.dedup();
    Ok(git.newest_commit(&commits)?.unwrap_or_default())
}

/// Apply the approval rules of `q.target` to the approvals recorded for the commit.
pub fn step(git: &GitRepo, q: &Question<'_>) -> Result<Step, WorkflowError> {
    let (target_name, target) = q.target;
    let requires = target
        .promotion
        .as_ref()
        .is_some_and(|p| p.requires_approval);
    if !requires || q.changing.is_empty() {
        return Ok(Step::default());
    }
    let promotion = target.promotion.clone().unwrap_or_default();
    let rules = promotion.approvals.clone().unwrap_or_default();
    let method = promotion
        .approval_method
        .unwrap_or(ApprovalMethod::Recorded);
    let commit = approval_commit(git, q.components)?;
    // An approval covers the commit approved and its history. A component deploying a
    // commit beside it (not in its history) was never shown to the approvers.
    let mut beside = Vec::new();
    for c in q.changing.iter().filter(|c| c.new != commit) {
        if !git.is_ancestor(&c.new, &commit)? {
            beside.push(format!("{} ({})", c.name, short(&c.new)));
        }
    }
    if !beside.is_empty() {
        let mut d = Decision::new(
            APPROVAL_GATE,
            "approvals",
            Verdict::Deny,
            format!(
                "{} deploy{} a commit that is not in the history of {}, the commit an approval would cover",
                beside.join(", "),
                if beside.len() == 1 { "s" } else { "" },
                short(&commit)
            ),
        );
        d.fix = Some(
            "roll out those components on their own (--component NAME), each commit with its own approval"
                .into(),
        );
        return Ok(Step {
            commit: Some(commit),
            decisions: vec![d],
            ..Step::default()
        });
    }
    let current: Vec<String> = q
        .components
        .iter()
        .filter_map(|c| c.current.clone())
        .collect();
    let current = git.newest_commit(&current)?;
    let gained = approvals::authors_gained(git, current.as_deref(), &commit)?;
    let mut decisions = Vec::new();
    if gained.truncated {
        decisions.push(Decision::new(
            APPROVAL_GATE,
            "self_approval",
            Verdict::Warn,
            format!(
                "{target_name} gains more than {} commits: self-approval was checked against the authors of the newest {} only (the shipped approvals policy refuses such a rollout as unknown)",
                approvals::AUTHORS_CAP,
                approvals::AUTHORS_CAP
            ),
        ));
    }
    let (records, _) = approvals::read(git, q.deployment, &commit)?;
    let check = approvals::check(
        &rules,
        method,
        q.approvers,
        &records,
        &CheckContext {
            deployment: q.deployment,
            target: target_name,
            commit: &commit,
            actor: q.actor,
            authors: &gained.authors,
            rollout: Some(q.rollout),
            root: q.root,
        },
    );
    let (decision, approvers) = verdict(target_name, &commit, &check);
    decisions.push(decision);
    for i in &check.ignored {
        decisions.push(Decision::new(
            APPROVAL_GATE,
            "requires_approval",
            Verdict::Warn,
            format!(
                "the approval by {} does not count: {}",
                i.approved_by, i.reason
            ),
        ));
    }
    Ok(Step {
        check: Some(check),
        commit: Some(commit),
        approvers,
        decisions,
    })
}

/// The approval decision of a counted check, and who counted.
fn verdict(target: &str, commit: &str, check: &ApprovalCheck) -> (Decision, Option<String>) {
    let decision = |result, message: String| {
        Decision::new(APPROVAL_GATE, "requires_approval", result, message)
    };
    if !check.rejected_by.is_empty() {
        let who: Vec<String> = check
            .rejected_by
            .iter()
            .map(|(w, c)| match c {
                Some(c) => format!("{w} ({c})"),
                None => w.clone(),
            })
            .collect();
        return (
            decision(Verdict::Deny, format!("rejected by {}", who.join(", "))),
            None,
        );
    }
    let names = || {
        check
            .counted
            .iter()
            .map(|c| c.approved_by.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if check.satisfied() {
        let who: Vec<String> = check
            .counted
            .iter()
            .map(|c| {
                format!(
                    "{} ({}{})",
                    c.approved_by,
                    c.approved_at,
                    if c.signed { ", signed" } else { "" }
                )
            })
            .collect();
        return (
            decision(Verdict::Allow, format!("approved by {}", who.join(", "))),
            Some(names()),
        );
    }
    let groups = if check.from_groups.is_empty() {
        String::new()
    } else {
        format!(" from {}", check.from_groups.join(", "))
    };
    let counted = if check.counted.is_empty() {
        String::new()
    } else {
        format!(" ({})", names())
    };
    (
        decision(
            Verdict::Pending,
            format!(
                "{target} requires {} approval(s){groups} of {}; {} count{counted}",
                check.required,
                short(commit),
                check.counted.len(),
            ),
        ),
        None,
    )
}

/// The approvals recorded for `commit` and `target`, as the gate input carries them.
pub fn recorded(
    git: &GitRepo,
    deployment: &str,
    target: &str,
    commit: &str,
) -> Result<Vec<ApprovalRecord>, WorkflowError> {
    let (records, _) = approvals::read(git, deployment, commit)?;
    Ok(records
        .into_iter()
        .filter(|r| r.target == target && r.git_sha == commit)
        .collect())
}
