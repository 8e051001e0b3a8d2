//! What a user typed, turned into a workflow's inputs: the target, durations.

use super::error::WorkflowError;
use crate::config::{Deployment, UnknownTarget};

/// The target a command works on: the one asked for, else the deployment's
/// `context.default_target`; checked against the deployment's targets.
pub fn resolve_target(
    deployment: &Deployment,
    asked: Option<&str>,
    verb: &'static str,
) -> Result<String, WorkflowError> {
    let target = asked
        .map(str::to_owned)
        .or_else(|| deployment.context.default_target.clone())
        .ok_or_else(|| WorkflowError::NoTarget {
            verb,
            deployment: deployment.name.clone(),
            targets: deployment.targets.keys().cloned().collect(),
        })?;
    UnknownTarget::check(deployment, &target)?;
    Ok(target)
}

/// Parse a duration flag or setting, naming it in the error.
pub fn duration(what: &str, text: &str) -> Result<std::time::Duration, WorkflowError> {
    crate::duration::parse(text).map_err(|problem| WorkflowError::Duration {
        what: what.to_owned(),
        problem,
    })
}
