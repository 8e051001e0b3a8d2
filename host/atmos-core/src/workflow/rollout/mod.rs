//! Rollouts: deploy a commit to a target, promote between targets, roll back.
//!
//! [`session::RolloutSession`] drives the steps: [`plan::Planner::plan`] decides what would happen
//! (and what every gate says, on the input document of [`input`]), [`wait`] handles missing
//! approvals, [`prepare::prepare`] checks the tools and lays out files, the executors run wave
//! by wave, and [`record::record`] writes the history tags and state refs in one transaction.

pub mod blockers;
pub mod canary;
pub mod images;
pub mod input;
pub mod model;
pub mod plan;
pub mod prepare;
pub mod ran;
pub mod record;
pub mod records;
pub mod rollback;
pub mod session;
pub mod source;
pub mod wait;

pub use model::{
    Action, Change, ComponentResult, PlannedComponent, PromotionDenial, RolloutPlan, RolloutReport,
    RolloutRequest, Source,
};
pub use session::{RolloutOptions, RolloutOutcome, RolloutSession};

/// Evaluate the policies and hooks bound to `target` against a given input document
/// (`policy eval --input FILE`): the built-in gates, which need the repository's state, are
/// not run.
pub fn evaluate_input(
    project: &crate::config::Project,
    deployment: &str,
    target: &str,
    input: &serde_json::Value,
    local: bool,
    evaluator: &dyn crate::gates::isolation::Evaluator,
) -> Result<model::PolicyEvaluation, crate::workflow::WorkflowError> {
    use crate::workflow::trust;
    let git = crate::git::GitRepo::discover(&project.root)?;
    let rules = if local {
        trust::local(project, deployment)?
    } else {
        trust::trusted(project, &git, None, deployment)?
    };
    crate::config::UnknownTarget::check(&rules.loaded.deployment, target)?;
    let action = input
        .get("action")
        .and_then(|a| serde_json::from_value::<crate::contracts::GateAction>(a.clone()).ok())
        .unwrap_or(crate::contracts::GateAction::Rollout);
    let now = input
        .get("now")
        .and_then(|n| n.as_str())
        .and_then(|n| n.parse::<jiff::Timestamp>().ok())
        .map_or(std::time::Duration::ZERO, |t| {
            std::time::Duration::from_secs(u64::try_from(t.as_second()).unwrap_or_default())
        });
    let mut decisions =
        crate::gates::evaluate_bound(evaluator, &rules.project, &rules.loaded, target, input);
    let cache = crate::gates::wasm_cache_dir(git.git_dir());
    decisions.extend(crate::gates::evaluate_hooks(
        &rules.project,
        &rules.loaded,
        target,
        action,
        input,
        now,
        Some(&cache),
    ));
    let blocked = if decisions
        .iter()
        .any(|d| d.result == crate::contracts::Verdict::Deny)
    {
        model::EvaluationVerdict::Deny
    } else if decisions
        .iter()
        .any(|d| d.result == crate::contracts::Verdict::Pending)
    {
        model::EvaluationVerdict::Pending
    } else {
        model::EvaluationVerdict::Allow
    };
    Ok(model::PolicyEvaluation {
        deployment: rules.loaded.deployment.name.clone(),
        target: target.to_owned(),
        verdict: blocked,
        decisions,
        input: None,
    })
}

/// Evaluate every gate of `request` without doing it (`policy eval`): on the newest shared
/// state (the remote is fetched first), by the rules of the trusted ref, or with `local` by the
/// uncommitted rules of the work tree.
pub fn evaluate(
    project: &crate::config::Project,
    deployment: &str,
    request: &RolloutRequest,
    local: bool,
    remote: Option<&crate::git::remote::Remote>,
    evaluator: &dyn crate::gates::isolation::Evaluator,
    observer: &dyn crate::workflow::Observer,
) -> Result<RolloutPlan, crate::workflow::WorkflowError> {
    use crate::workflow::trust;
    if let Some(r) = remote {
        r.fetch()?;
    }
    let remote = remote.map(|r| r.name.as_str());
    let mut git = crate::git::GitRepo::discover(&project.root)?;
    if let Some(note) = trust::ensure_history(project, &git, remote, false)? {
        observer.event(&crate::workflow::Event::Warning(note));
        git = crate::git::GitRepo::discover(&project.root)?;
    }
    let rules = if local {
        trust::local(project, deployment)?
    } else {
        trust::trusted(project, &git, None, deployment)?
    };
    crate::config::UnknownTarget::check(&rules.loaded.deployment, &request.target)?;
    let mut request = request.clone();
    request.actor = trust::map_actor(request.actor, &rules);
    request.proof = Some(trust::prove(
        &request.actor,
        request.signing_key.as_ref(),
        &rules,
    ));
    plan::Planner {
        project,
        rules: &rules,
        git: &git,
        evaluator,
    }
    .plan(&request)
}
