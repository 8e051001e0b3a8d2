//! Rollouts: deploy a commit to a target, promote between targets, roll back.
//!
//! [`session::RolloutSession`] drives the steps: [`plan::plan`] decides what would happen
//! (and what every gate says, on the input document of [`input`]), [`wait`] handles missing
//! approvals, [`prepare::prepare`] checks the tools and lays out files, the executors run wave
//! by wave, and [`record::record`] writes the history tags and state refs in one transaction.

pub mod blockers;
pub mod input;
pub mod model;
pub mod plan;
pub mod prepare;
pub mod ran;
pub mod record;
pub mod session;
pub mod wait;

pub use model::{
    Action, Change, ComponentResult, PlannedComponent, PromotionDenial, RolloutPlan, RolloutReport,
    RolloutRequest,
};
pub use session::{RolloutOptions, RolloutOutcome, RolloutSession};

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
    request.proof = Some(trust::prove(
        &request.actor,
        request.signing_key.as_deref(),
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
