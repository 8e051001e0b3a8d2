//! Building the gate input document of a planned rollout: the deployment's rules, what every
//! target runs, the commits being deployed, approvals and the SBOM summary.

use indexmap::IndexMap;
use serde_json::Value;

use super::model::{Action, Change, RolloutPlan};
use crate::config::LoadedDeployment;
use crate::contracts::gate_input::*;
use crate::git::{GitError, GitRepo};
use crate::status::status;

fn change_name(c: Change) -> &'static str {
    match c {
        Change::New => "new",
        Change::Changed => "changed",
        Change::Unchanged => "unchanged",
        Change::Rollback => "rollback",
        Change::RollForward => "roll-forward",
    }
}

/// The most commits the input lists; beyond it `commits_truncated` is set.
pub const COMMITS_CAP: usize = 200;

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
                last_rollout: summary.last_rollout.to_owned(),
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
                                image_digest: c.image_digest.clone(),
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
    let newest = git.newest_commit(&new_commits)?.unwrap_or_default();
    let info = |sha: &str| -> Result<InputCommit, GitError> {
        let c = git.commit_info(sha)?;
        Ok(InputCommit {
            sha: c.sha,
            author_email: c.author_email,
            author_name: c.author_name,
            subject: c.subject,
            on_trusted_ref: None,
            reachable_from: Vec::new(),
        })
    };
    let trusted = (!plan.rules.is_local()).then_some(plan.rules.source.as_str());
    let on_trusted = |sha: &str| -> Result<Option<bool>, GitError> {
        trusted.map(|r| git.reachable_from(sha, r)).transpose()
    };
    let mut commit = info(&newest)?;
    commit.on_trusted_ref = on_trusted(&newest)?;
    commit.reachable_from = git.branches_containing(&newest)?;
    let (commits, commits_truncated) = match &current_target_commit {
        Some(current) => {
            let shas = git.log_between(current, &newest, COMMITS_CAP + 1)?;
            let truncated = shas.len() > COMMITS_CAP;
            let list = shas
                .iter()
                .take(COMMITS_CAP)
                .map(|s| info(s))
                .collect::<Result<Vec<_>, _>>()?;
            (list, truncated)
        }
        None => (vec![info(&newest)?], false),
    };
    let mut components = Vec::new();
    for c in &plan.components {
        components.push(InputComponent {
            name: c.name.clone(),
            kind: c.kind.to_string(),
            current: c.current.clone(),
            new: c.new.clone(),
            change: change_name(c.change).to_owned(),
            on_trusted_ref: on_trusted(&c.new)?,
            image: plan.artifacts.get(&c.name).and_then(|a| a.image.clone()),
            image_digest: plan.artifacts.get(&c.name).and_then(|a| a.digest.clone()),
            provenance: plan
                .artifacts
                .get(&c.name)
                .and_then(|a| a.provenance.clone()),
        });
    }
    Ok(GateInput {
        api_version: API_VERSION.to_owned(),
        action: match plan.action {
            Action::Rollout => GateAction::Rollout,
            Action::Promote => GateAction::Promote,
            Action::Rollback => GateAction::Rollback,
            // A roll-forward deploys newer code: the gates judge it as a rollout.
            Action::RollForward => GateAction::Rollout,
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
        commits_truncated,
        rules: InputRules {
            source: plan.rules.source.clone(),
            commit: plan.rules.commit.clone(),
            branch: branch_name(&plan.rules.source),
        },
        components,
        actor: plan.actor.id.clone(),
        identity: plan.proof.clone(),
        approvals: Vec::new(),
        state,
        now: plan.started_at.clone(),
        metadata: plan.metadata.clone(),
        flags: InputFlags {
            skip_promotion_check: plan.skip_promotion_check,
            force,
        },
        sbom: match crate::sbom::gate_summary(git, &d.name, &newest) {
            Value::Null => None,
            v => Some(v),
        },
        canary: plan.canary.as_ref().map(super::model::CanaryPlan::input),
    })
}

/// `main` for `refs/remotes/origin/main` or `refs/heads/main`; the ref itself otherwise.
fn branch_name(source: &str) -> String {
    if let Some(rest) = source.strip_prefix("refs/remotes/") {
        return rest.split_once('/').map_or(rest, |(_, b)| b).to_owned();
    }
    source
        .strip_prefix("refs/heads/")
        .unwrap_or(source)
        .to_owned()
}
