//! Approving (or rejecting) a commit for a target: resolve which commit, sign when asked or
//! required, let the gates bound to approvals refuse it (never a rejection), append the
//! record to the approvals note, push it, and say what it changes now.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use super::error::WorkflowError;
use super::inputs::resolve_target;
use crate::approvals;
use crate::config::model::ApprovalMethod;
use crate::config::{LoadedDeployment, Project, UnknownTarget};
use crate::contracts::layout::{notes_ref, rfc3339};
use crate::contracts::{ApprovalDecision, ApprovalRecord, Decision, Verdict};
use crate::gates::isolation::Evaluator;
use crate::git::{Author, GitRepo};
use crate::identity::Actor;
use crate::workflow::events::{Event, Observer};
use crate::workflow::rollout::model::{RolloutRequest, Source};
use crate::workflow::rollout::plan::Planner;
use crate::workflow::rollout::source::running;
use crate::workflow::store::Stores;
use crate::workflow::trust;

/// What to approve, by whom.
#[derive(Debug, Clone)]
pub struct ApproveRequest {
    /// The target (default: the deployment's `context.default_target`).
    pub target: Option<String>,
    /// The commit (default: what the promotion source runs, else HEAD).
    pub git_sha: Option<String>,
    /// Approve what this source target runs, for promotion.
    pub promote_from: Option<String>,
    /// Free text.
    pub comment: Option<String>,
    /// Approve or reject.
    pub decision: ApprovalDecision,
    /// Sign even when the rules do not require it.
    pub sign: bool,
    /// The SSH key to sign with (default: git's `user.signingkey`).
    pub signing_key: Option<PathBuf>,
    /// Who approves.
    pub actor: Actor,
    /// CI build id.
    pub build_id: Option<String>,
}

/// A recorded approval and what it changes.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApprovalReport {
    /// The record written.
    pub record: ApprovalRecord,
    /// Where it is kept.
    pub notes_ref: String,
    /// People whose approval of this commit for this target is recorded (counting or not).
    pub recorded: usize,
    /// Approvals that count now.
    pub counted: usize,
    /// Whether the target requires approvals at all.
    pub requires_approval: bool,
    /// Approvals required.
    pub required: u32,
    /// Groups approvals must come from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_groups: Vec<String>,
    /// Why this approval will not count, when known now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Pushed to this remote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

/// How an approval ended.
#[derive(Debug, Clone)]
pub enum ApproveOutcome {
    /// A gate refused the approval: nothing was recorded (exit 3).
    Refused(ApprovalRefusal),
    /// Recorded (and pushed when there is a remote).
    Recorded(Box<ApprovalReport>),
}

/// What an approval is for: a named commit, else what the promotion source runs (the same
/// [`running`] a promotion reads, so the approval names the commit the promotion asks about),
/// else HEAD.
fn source_to_approve(git_sha: Option<&str>, promote_from: Option<&str>) -> Source {
    match (git_sha, promote_from) {
        (Some(spec), _) => Source::Commit(spec.to_owned()),
        (None, Some(src)) => Source::Promote(src.to_owned()),
        (None, None) => Source::Head,
    }
}

/// The commit an approval of `source` is for.
fn commit_to_approve(
    git: &GitRepo,
    loaded: &LoadedDeployment,
    source: &Source,
) -> Result<String, WorkflowError> {
    let d = &loaded.deployment;
    match source {
        Source::Promote(src) => {
            UnknownTarget::check(d, src)?;
            Ok(running(git, &d.name, src)?
                .ok_or_else(|| WorkflowError::NothingToApprove {
                    source_target: src.clone(),
                })?
                .newest)
        }
        Source::Commit(spec) => Ok(git.resolve_commit(spec)?),
        Source::Head => Ok(git.resolve_commit("HEAD")?),
    }
}

/// Record the approval or rejection. The approval rules, approver groups, allowed signers and
/// the gates that may refuse an approval come from the trusted ref.
/// The records are read from `stores` first: the main remote (an error stops the approval),
/// then the others the deployment's records live on (one out of reach is a warning).
pub fn approve(
    project: &Project,
    deployment: &str,
    evaluator: &dyn Evaluator,
    stores: &Stores,
    request: &ApproveRequest,
    observer: &dyn Observer,
) -> Result<ApproveOutcome, WorkflowError> {
    crate::identity::check(&request.actor)
        .map_err(|problem| WorkflowError::BadActor { problem })?;
    let remote = stores.main.as_ref();
    if let Some(r) = remote {
        r.fetch()?;
    }
    for r in &stores.readers {
        if let Err(e) = r.fetch() {
            observer.event(&Event::Warning(format!(
                "could not read {}: {e}; its records are as this clone last fetched them",
                r.name
            )));
        }
    }
    let mut git = GitRepo::discover(&project.root)?;
    let remote_name = remote.map(|r| r.name.as_str());
    if trust::ensure_history(project, &git, remote_name, false)?.is_some() {
        git = GitRepo::discover(&project.root)?;
    }
    let trusted = trust::trusted(project, &git, None, deployment)?;
    let loaded = &trusted.loaded;
    let d = &loaded.deployment;
    let target_name = resolve_target(d, request.target.as_deref(), "approve")?;
    let target = &d.targets[&target_name];
    let sources: Vec<String> = target
        .promotion
        .as_ref()
        .map(|p| p.sources().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let promote_from = match (&request.promote_from, &request.git_sha) {
        (Some(s), _) => Some(s.clone()),
        (None, None) if sources.len() == 1 => Some(sources[0].clone()),
        _ => None,
    };
    let source = source_to_approve(request.git_sha.as_deref(), promote_from.as_deref());
    let commit = commit_to_approve(&git, loaded, &source)?;
    let actor = &trust::map_actor(request.actor.clone(), &trusted);
    let (existing, _) = approvals::read(&git, &d.name, &commit)?;
    let mut record = ApprovalRecord {
        approved_by: actor.id.clone(),
        approved_at: rfc3339(jiff::Timestamp::now()),
        decision: request.decision,
        deployment: d.name.clone(),
        target: target_name.clone(),
        git_sha: commit.clone(),
        promoted_from: promote_from.clone(),
        comment: request.comment.clone(),
        method: "recorded".into(),
        rollout: None,
        sequence: Some(approvals::next_sequence(
            &existing,
            &d.name,
            &target_name,
            &commit,
            &actor.id,
        )),
        signature: None,
    };
    let rules = target
        .promotion
        .as_ref()
        .and_then(|p| p.approvals.clone())
        .unwrap_or_default();
    if request.sign || request.signing_key.is_some() || rules.require_signed {
        let key = crate::signing::configured_key(
            request.signing_key.as_deref(),
            git.config_string("user.signingkey"),
        )
        .ok_or_else(|| WorkflowError::NoSigningKey {
            target: target_name.clone(),
        })?;
        record.signature = Some(
            approvals::sign(&record, &key).map_err(|e| WorkflowError::Signing(e.to_string()))?,
        );
    }
    // Policies and the hooks bound with `on: [approve]` may refuse an approval (never a
    // rejection); only a deny blocks it.
    if request.decision == ApprovalDecision::Approve {
        let rollout = RolloutRequest {
            target: target_name.clone(),
            source: source.clone(),
            components: Vec::new(),
            skip_promotion_check: false,
            force: false,
            reverting: None,
            canary: None,
            metadata: Default::default(),
            actor: actor.clone(),
            build_id: request.build_id.clone(),
            started_at: jiff::Timestamp::now(),
            signing_key: None,
            proof: None,
            context: Default::default(),
        };
        let planner = Planner {
            project,
            rules: &trusted,
            git: &git,
            evaluator,
        };
        let decisions = planner.approval_gates(&rollout)?;
        if decisions.iter().any(|d| d.result == Verdict::Deny) {
            return Ok(ApproveOutcome::Refused(ApprovalRefusal {
                recorded: false,
                decisions,
            }));
        }
    }
    approvals::append(&git, &record, &Author::of(&git, &actor.id))?;
    let notes = notes_ref(&d.name, "approvals");
    if let Some(r) = remote {
        r.push_notes(&notes)?;
    }

    // What the approval changes now.
    let (records, _) = approvals::read(&git, &d.name, &commit)?;
    let members: Vec<String> = rules
        .from_groups
        .iter()
        .flat_map(|g| {
            trusted
                .project
                .settings
                .approvers
                .groups
                .get(g)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let warning = (request.decision == ApprovalDecision::Approve
        && !members.is_empty()
        && !crate::identity::listed(&members, &actor.id))
    .then(|| {
        format!(
            "{} is not in {}: this approval will not count",
            actor.id,
            rules.from_groups.join(", ")
        )
    });
    let check = approvals::check(
        &rules,
        target
            .promotion
            .as_ref()
            .and_then(|p| p.approval_method)
            .unwrap_or(ApprovalMethod::Recorded),
        &trusted.project.settings.approvers,
        &records,
        &approvals::CheckContext {
            deployment: &d.name,
            target: &target_name,
            commit: &commit,
            actor: "",
            authors: &[],
            rollout: None,
            root: &trusted.project.root,
        },
    );
    Ok(ApproveOutcome::Recorded(Box::new(ApprovalReport {
        record,
        notes_ref: notes,
        recorded: records
            .iter()
            .filter(|r| r.target == target_name && r.decision == ApprovalDecision::Approve)
            .map(|r| r.approved_by.to_ascii_lowercase())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        counted: check.counted.len(),
        requires_approval: target
            .promotion
            .as_ref()
            .is_some_and(|p| p.requires_approval),
        required: check.required,
        from_groups: rules.from_groups.clone(),
        warning,
        remote: remote.map(|r| r.name.clone()),
    })))
}

/// `--format json` of an approval the gates refused.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApprovalRefusal {
    /// Always false: nothing was recorded.
    pub recorded: bool,
    /// Every decision of the gates.
    pub decisions: Vec<Decision>,
}

crate::document!(ApprovalReport => "ApprovalReport", ApprovalRefusal => "ApprovalRefusal");
