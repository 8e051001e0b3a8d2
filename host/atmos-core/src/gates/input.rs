//! The gate input document: one versioned JSON document per action, the same for Rego
//! policies (`input`) and WebAssembly hooks. Its schema is published in
//! `docs/schema/gate-input.schema.json`; this module is its single producer.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::LoadedDeployment;
use crate::git::{GitError, GitRepo};
use crate::rollout::{Action, Change, RolloutPlan};
use crate::status::status;

/// Version of the document; bumped on any incompatible change.
pub const API_VERSION: &str = "atmos.tools/gate-input/v1";

/// What is being gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateAction {
    /// A commit rolled out directly.
    Rollout,
    /// Commits taken from another target.
    Promote,
    /// Back to an older commit.
    Rollback,
    /// An approval being recorded.
    Approve,
}

impl GateAction {
    /// The name used in the input document and in `gates.hooks[].on`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateAction::Rollout => "rollout",
            GateAction::Promote => "promote",
            GateAction::Rollback => "rollback",
            GateAction::Approve => "approve",
        }
    }
}

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateInput {
    /// [`API_VERSION`].
    pub api_version: String,
    /// What is gated.
    pub action: GateAction,
    /// The deployment and its promotion rules.
    pub deployment: InputDeployment,
    /// The target being changed.
    pub target: InputTarget,
    /// Source target of a promotion, else null.
    pub source_target: Option<String>,
    /// The newest commit being deployed.
    pub commit: InputCommit,
    /// Commits between what the target runs and what it will run, newest first (at most 200).
    pub commits: Vec<InputCommit>,
    /// Each selected component, with its current and new commit.
    pub components: Vec<InputComponent>,
    /// Who acts (see docs/git-layout.md "Who deployed").
    pub actor: String,
    /// Approvals recorded for this commit and target.
    pub approvals: Vec<Value>,
    /// What every target of the deployment runs now.
    pub state: IndexMap<String, InputTargetState>,
    /// Evaluation time, RFC 3339 UTC.
    pub now: String,
    /// `--metadata k=v`.
    pub metadata: IndexMap<String, String>,
    /// Flags of the command that matter to policies.
    pub flags: InputFlags,
    /// SBOM summary of the commit, when one is recorded; else null.
    pub sbom: Option<Value>,
}

/// `input.deployment`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputDeployment {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// Every target's labels and promotion rules.
    pub targets: IndexMap<String, InputTargetConfig>,
}

/// A target's configuration, as policies see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputTargetConfig {
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// Allowed sources (empty for an entry point).
    pub promotion_from: Vec<String>,
    /// Whether approvals are required.
    pub requires_approval: bool,
}

/// `input.target`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputTarget {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// The target's context.
    pub context: serde_json::Map<String, Value>,
    /// Allowed sources (empty for an entry point).
    pub promotion_from: Vec<String>,
    /// Whether approvals are required.
    pub requires_approval: bool,
}

/// A commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputCommit {
    /// Full sha.
    pub sha: String,
    /// Author email.
    pub author_email: String,
    /// Author name.
    pub author_name: String,
    /// First line of the message.
    pub subject: String,
}

/// A component in the action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputComponent {
    /// Name.
    pub name: String,
    /// Executor type.
    #[serde(rename = "type")]
    pub kind: String,
    /// What the target runs now (null if never deployed).
    pub current: Option<String>,
    /// What it will run.
    pub new: String,
    /// `new`, `changed`, `unchanged` or `rollback`.
    pub change: String,
}

/// `input.state.<target>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputTargetState {
    /// The newest commit the target runs.
    pub commit: Option<String>,
    /// When it was last deployed.
    pub deployed_at: Option<String>,
    /// `healthy`, `failed` or `never`.
    pub health: String,
    /// Per component.
    pub components: IndexMap<String, InputComponentState>,
}

/// `input.state.<target>.components.<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputComponentState {
    /// Deployed commit.
    pub commit: Option<String>,
    /// When it was deployed.
    pub deployed_at: Option<String>,
    /// `success` / `rollback` of the deploying rollout.
    pub status: Option<String>,
}

/// `input.flags`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InputFlags {
    /// `--skip-promotion-check` was given.
    pub skip_promotion_check: bool,
    /// `--force` was given.
    pub force: bool,
}

fn change_name(c: Change) -> &'static str {
    match c {
        Change::New => "new",
        Change::Changed => "changed",
        Change::Unchanged => "unchanged",
        Change::Rollback => "rollback",
    }
}

/// Build the input document of a planned rollout.
pub fn for_rollout(
    git: &GitRepo,
    loaded: &LoadedDeployment,
    plan: &RolloutPlan,
    force: bool,
) -> Result<GateInput, GitError> {
    let d = &loaded.deployment;
    let target = &d.targets[&plan.target];
    let sources = |t: &crate::config::Target| -> Vec<String> {
        t.promotion
            .as_ref()
            .map(|p| p.sources().into_iter().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let report = status(git, loaded, None)?;
    let mut state = IndexMap::new();
    let mut current_target_commit = None;
    for t in &report.targets {
        let summary = t.summary(git)?;
        if t.target == plan.target {
            current_target_commit = summary.commit.clone();
        }
        state.insert(
            t.target.clone(),
            InputTargetState {
                commit: summary.commit,
                deployed_at: summary.deployed_at,
                health: summary.health.to_owned(),
                components: t
                    .components
                    .iter()
                    .map(|c| {
                        (
                            c.component.clone(),
                            InputComponentState {
                                commit: c.commit.clone(),
                                deployed_at: c.deployed_at.clone(),
                                status: c.status.map(|s| s.as_str().to_owned()),
                            },
                        )
                    })
                    .collect(),
            },
        );
    }
    let mut new_commits: Vec<String> = plan.components.iter().map(|c| c.new.clone()).collect();
    new_commits.sort();
    new_commits.dedup();
    let newest = crate::diff::newest_commit(git, &new_commits)?.unwrap_or_default();
    let info = |sha: &str| -> Result<InputCommit, GitError> {
        let c = git.commit_info(sha)?;
        Ok(InputCommit {
            sha: c.sha,
            author_email: c.author_email,
            author_name: c.author_name,
            subject: c.subject,
        })
    };
    let commit = info(&newest)?;
    let commits = match &current_target_commit {
        Some(current) => git
            .log_between(current, &newest, 200)?
            .iter()
            .map(|s| info(s))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![commit.clone()],
    };
    Ok(GateInput {
        api_version: API_VERSION.to_owned(),
        action: match plan.action {
            Action::Rollout => GateAction::Rollout,
            Action::Promote => GateAction::Promote,
            Action::Rollback => GateAction::Rollback,
        },
        deployment: InputDeployment {
            name: d.name.clone(),
            labels: d.labels.clone(),
            targets: d
                .targets
                .iter()
                .map(|(n, t)| {
                    (
                        n.clone(),
                        InputTargetConfig {
                            labels: t.labels.clone(),
                            promotion_from: sources(t),
                            requires_approval: t
                                .promotion
                                .as_ref()
                                .is_some_and(|p| p.requires_approval),
                        },
                    )
                })
                .collect(),
        },
        target: InputTarget {
            name: plan.target.clone(),
            labels: target.labels.clone(),
            context: target.context.clone(),
            promotion_from: sources(target),
            requires_approval: target
                .promotion
                .as_ref()
                .is_some_and(|p| p.requires_approval),
        },
        source_target: plan.source_target.clone(),
        commit,
        commits,
        components: plan
            .components
            .iter()
            .map(|c| InputComponent {
                name: c.name.clone(),
                kind: c.kind.to_string(),
                current: c.current.clone(),
                new: c.new.clone(),
                change: change_name(c.change).to_owned(),
            })
            .collect(),
        actor: plan.actor.id.clone(),
        approvals: Vec::new(),
        state,
        now: plan.started_at.clone(),
        metadata: plan.metadata.clone(),
        flags: InputFlags {
            skip_promotion_check: plan.skip_promotion_check,
            force,
        },
        sbom: match crate::build::sbom_input(git, &d.name, &newest) {
            Value::Null => None,
            v => Some(v),
        },
    })
}
