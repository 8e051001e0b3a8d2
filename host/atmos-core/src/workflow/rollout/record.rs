//! Turning a finished run into history: a tag per component that ran (success, rollback or
//! failure), and a state-ref move per component that succeeded, written all at once.

use super::model::{Change, ComponentResult, RolloutPlan, RolloutReport};
use crate::contracts::layout::state_ref;
use crate::contracts::layout::timestamp_segment;
use crate::contracts::{Status, TagRecord};
use crate::executor::run::{ComponentRun, Outcome};
use crate::git::GitError;
use crate::git::GitRepo;
use crate::git::record::{PendingRecord, StateUpdate, Tagger, write};

/// Write the records of `runs` and build the report.
pub fn record(
    git: &GitRepo,
    plan: RolloutPlan,
    runs: Vec<ComponentRun>,
    tagger: &Tagger,
    duration_ms: u64,
) -> Result<RolloutReport, GitError> {
    let started: jiff::Timestamp = plan
        .started_at
        .parse()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    // Each record names the one before it (same target and component): a hash chain.
    let (history, _) = git.history_tags(&plan.deployment, Some(&plan.target))?;
    let previous = |component: &str| {
        history
            .iter()
            .rev()
            .find(|e| e.component == component)
            .map(|e| e.oid.clone())
    };
    let mut pending = Vec::new();
    let mut owners = Vec::new();
    for run in &runs {
        let Some(planned) = plan.component(&run.name) else {
            continue;
        };
        let (status, error) = match &run.outcome {
            Outcome::Succeeded
                if planned.change == Change::Rollback || plan.reverting.is_some() =>
            {
                (Status::Rollback, None)
            }
            Outcome::Succeeded => (Status::Success, None),
            Outcome::Failed { error, .. } => (Status::Failure, Some(error.clone())),
            Outcome::Interrupted => (Status::Failure, Some("interrupted by a signal".to_owned())),
            Outcome::Skipped { .. } => continue,
        };
        let record = TagRecord {
            deployment: plan.deployment.clone(),
            target: plan.target.clone(),
            component: planned.name.clone(),
            deployed_by: plan.actor.id.clone(),
            git_sha: planned.new.clone(),
            timestamp: plan.started_at.clone(),
            status,
            promoted_from: plan.source_target.clone(),
            promoted_at: plan.source_target.as_ref().map(|_| plan.started_at.clone()),
            rollback_of: match &plan.reverting {
                Some(r) => Some(r.commit.clone()),
                None => (planned.change == Change::Rollback)
                    .then(|| planned.current.clone())
                    .flatten(),
            },
            previous_record: previous(&planned.name),
            previous_sha: match &plan.reverting {
                Some(r) => Some(r.commit.clone()),
                None => planned.current.clone(),
            },
            build_id: plan.build_id.clone(),
            component_type: Some(planned.kind.as_str().to_owned()),
            duration_ms: Some(run.duration_ms),
            error,
            verification: run.verification.as_ref().map(|v| {
                crate::contracts::record::VerificationRecord {
                    passed: v.passed,
                    attempts: v.attempts,
                }
            }),
            rules_ref: Some(plan.rules.source.clone()),
            rules_commit: plan.rules.commit.clone(),
            approved_commit: plan.approval_commit.clone(),
            rollout_id: Some(plan.rollout_id.clone()),
            image: plan
                .artifacts
                .get(&planned.name)
                .and_then(|a| a.image.clone()),
            image_digest: plan
                .artifacts
                .get(&planned.name)
                .and_then(|a| a.digest.clone()),
            context: plan
                .context
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect(),
            metadata: plan.metadata.clone(),
            decisions: plan.decisions.clone(),
        };
        let state = (run.outcome == Outcome::Succeeded).then(|| StateUpdate {
            refname: state_ref(&plan.deployment, &plan.target, &planned.name),
            expected: planned.current.clone(),
            new: planned.new.clone(),
        });
        pending.push(PendingRecord { record, state });
        owners.push(planned.name.clone());
    }
    let tags = write(git, &timestamp_segment(started), &pending, tagger)?;
    let mut runs_by_name: std::collections::HashMap<String, ComponentRun> =
        runs.into_iter().map(|r| (r.name.clone(), r)).collect();
    let components: Vec<ComponentResult> = plan
        .components
        .iter()
        .map(|planned| ComponentResult {
            planned: planned.clone(),
            run: runs_by_name.remove(&planned.name),
            tag: owners
                .iter()
                .position(|o| *o == planned.name)
                .and_then(|i| tags.get(i).cloned()),
        })
        .collect();
    let success = components.iter().all(|c| {
        c.run
            .as_ref()
            .is_none_or(|r| r.outcome == Outcome::Succeeded)
    });
    let interrupted = components.iter().any(|c| {
        c.run
            .as_ref()
            .is_some_and(|r| r.outcome == Outcome::Interrupted)
    });
    Ok(RolloutReport {
        deployment_id: tags.first().cloned(),
        plan,
        components,
        success,
        interrupted,
        duration_ms,
        log_dir: None,
        automatic_rollbacks: Vec::new(),
    })
}
