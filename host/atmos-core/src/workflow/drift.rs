//! Drift: does a target's infrastructure still match the commit recorded for it? Checked only
//! on request (`diff --check-drift`), by running each component's plan command at its
//! deployed commit with a detailed exit code: 0 means no drift, 2 drift, anything else an
//! error. Components without a plan command are reported as not checked — never as "no
//! drift".

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Serialize;

use crate::config::LoadedDeployment;
use crate::executor::run::{ComponentRun, Outcome, Prepared};
use crate::git::GitRepo;
use crate::identity::Actor;
use crate::workflow::rollout::model::{Action, Change, PlannedComponent, RolloutPlan};

/// The verdict for one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DriftState {
    /// The plan command found nothing to change.
    NoDrift,
    /// The plan command found changes.
    Drift,
    /// The plan command failed.
    Error,
    /// No plan command for this component type or component.
    NotCheckable,
    /// Nothing deployed to compare with.
    NotDeployed,
}

/// One component's drift check.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DriftResult {
    /// Target.
    pub target: String,
    /// Component.
    pub component: String,
    /// Deployed commit checked against.
    pub commit: Option<String>,
    /// Verdict.
    pub state: DriftState,
    /// Error text, for errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where the plan output is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<std::path::PathBuf>,
}

/// `diff --format json`: the diff, and the drift checks when asked for.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiffWithDrift {
    /// The diff.
    #[serde(flatten)]
    pub diff: crate::diff::DiffReport,
    /// `null` when drift was not checked.
    pub drift: Option<Vec<DriftResult>>,
}

crate::document!(DiffWithDrift => "DiffReport");

/// A plan that re-plans every deployed component of `target` at its deployed commit, with the
/// deployment file as of that commit.
pub fn drift_plan(
    project: &crate::config::Project,
    git: &GitRepo,
    loaded: &LoadedDeployment,
    target: &str,
    only: Option<&str>,
    actor: Actor,
    now: jiff::Timestamp,
) -> Result<RolloutPlan, super::error::WorkflowError> {
    let d = &loaded.deployment;
    let state = git.state_refs(&d.name, Some(target))?;
    let mut components = Vec::new();
    for c in d
        .components
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.name))
    {
        let commit = state
            .iter()
            .find(|s| s.component == c.name)
            .map(|s| s.commit.clone());
        components.push(PlannedComponent {
            source_record: None,
            name: c.name.to_owned(),
            kind: c.kind,
            depends_on: Vec::new(),
            run: commit.is_some(),
            current: commit.clone(),
            new: commit.unwrap_or_default(),
            change: Change::Unchanged,
        });
    }
    let wave: Vec<String> = components
        .iter()
        .filter(|c| c.run)
        .map(|c| c.name.clone())
        .collect();
    let rel = super::trust::project_in_repo(git, &project.root);
    let mut configs = std::collections::BTreeMap::new();
    for c in components.iter().filter(|c| c.run) {
        if !configs.contains_key(&c.new) {
            let cfg = super::rollout::plan::deployed_config(git, &rel, project, &d.name, &c.new)?;
            configs.insert(c.new.clone(), cfg);
        }
    }
    Ok(RolloutPlan {
        deployment: d.name.clone(),
        target: target.to_owned(),
        action: Action::Rollout,
        source_target: None,
        commit: None,
        components,
        waves: if wave.is_empty() {
            Vec::new()
        } else {
            vec![wave]
        },
        decisions: Vec::new(),
        denial: None,
        actor,
        proof: None,
        build_id: None,
        metadata: IndexMap::new(),
        started_at: crate::contracts::layout::rfc3339(now),
        skip_promotion_check: false,
        input: None,
        approvals: None,
        approval_commit: None,
        artifacts: Default::default(),
        registry: None,
        context: Default::default(),
        rollout_id: String::new(),
        rules: super::trust::RulesOrigin {
            source: "work tree".into(),
            commit: None,
            chosen_by: "drift check (no gates)".into(),
        },
        blockers: Vec::new(),
        configs,
        reverting: None,
        canary: None,
    })
}

/// Turn the runs of a drift plan into verdicts.
pub fn interpret(
    plan: &RolloutPlan,
    prepared: &Prepared,
    runs: &[ComponentRun],
) -> Vec<DriftResult> {
    plan.components
        .iter()
        .map(|c| {
            let run = runs.iter().find(|r| r.name == c.name);
            let checkable = prepared
                .components
                .get(&c.name)
                .is_some_and(|p| !p.commands.is_empty());
            let (state, detail) = match (&c.current, checkable, run.map(|r| &r.outcome)) {
                (None, _, _) => (DriftState::NotDeployed, None),
                (Some(_), false, _) => (DriftState::NotCheckable, None),
                (Some(_), true, Some(Outcome::Succeeded)) => (DriftState::NoDrift, None),
                (
                    Some(_),
                    true,
                    Some(Outcome::Failed {
                        exit_code: Some(2), ..
                    }),
                ) => (DriftState::Drift, None),
                (Some(_), true, Some(Outcome::Failed { error, .. })) => {
                    (DriftState::Error, Some(error.clone()))
                }
                (Some(_), true, Some(other)) => (DriftState::Error, Some(format!("{other:?}"))),
                (Some(_), true, None) => (DriftState::Error, Some("did not run".into())),
            };
            DriftResult {
                target: plan.target.clone(),
                component: c.name.clone(),
                commit: c.current.clone(),
                state,
                detail,
                log: run.and_then(|r| r.log.clone()).filter(|_| checkable),
            }
        })
        .collect()
}

/// Check the drift of every deployed component of `targets` (only `only`, when given): each
/// component's plan command runs at its deployed commit; nothing is recorded.
pub fn check(
    project: &crate::config::Project,
    loaded: &LoadedDeployment,
    targets: &[&str],
    only: Option<&str>,
    actor: &Actor,
) -> Result<Vec<DriftResult>, super::error::WorkflowError> {
    let git = GitRepo::discover(&project.root)?;
    let mut results = Vec::new();
    for target in targets {
        let plan = drift_plan(
            project,
            &git,
            loaded,
            target,
            only,
            actor.clone(),
            jiff::Timestamp::now(),
        )?;
        let prepared = super::rollout::prepare::prepare(
            &project.root,
            &git,
            &plan,
            crate::executor::Step::Drift,
            &crate::identity::process_env,
            &project.settings.processing.env,
        )?;
        let runs =
            crate::executor::run::run_blocking(&prepared, 4, &mut |_| {}).map_err(|source| {
                super::error::WorkflowError::Io {
                    path: "the async runtime".into(),
                    source,
                }
            })?;
        results.extend(interpret(&plan, &prepared, &runs));
    }
    Ok(results)
}
