//! Turning a rollout into history, ahead of what runs: the intent (a `started` record per
//! component that will run, written before any executor starts), then the outcome completing
//! each one (success, rollback, failure or skipped, with a state-ref move per component that
//! succeeded), each step written all at once. A started rollout nobody completed is recorded as
//! `interrupted` by the next rollout of its target.

use std::collections::HashMap;

use super::model::{Change, ComponentResult, PlannedComponent, RolloutPlan, RolloutReport};
use crate::contracts::layout::{rfc3339, state_ref};
use crate::contracts::record::Runner;
use crate::contracts::{Status, TagRecord};
use crate::executor::run::{ComponentRun, Outcome};
use crate::git::GitError;
use crate::git::GitRepo;
use crate::git::chain::Link;
use crate::git::record::{PendingRecord, StateUpdate, Tagger, Written, write};

/// The canary step `component` takes part in, in `plan`.
fn canary_of<'p>(plan: &'p RolloutPlan, component: &str) -> Option<&'p super::model::CanaryPlan> {
    plan.canary
        .as_ref()
        .filter(|c| c.components.iter().any(|n| n == component))
}

/// The record of `planned` in `plan`, before anything about its run is known.
fn base(plan: &RolloutPlan, planned: &PlannedComponent, status: Status) -> TagRecord {
    let artifact = plan.artifacts.get(&planned.name);
    TagRecord {
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
        rolled_forward_from: (plan.reverting.is_none() && planned.change == Change::RollForward)
            .then(|| planned.current.clone())
            .flatten(),
        previous_record: None,
        sequence: None,
        intent: None,
        source_record: planned.source_record.clone(),
        recorded_by: None,
        recorded_at: None,
        runner: None,
        previous_sha: match &plan.reverting {
            Some(r) => Some(r.commit.clone()),
            None => planned.current.clone(),
        },
        build_id: plan.build_id.clone(),
        component_type: Some(planned.kind.as_str().to_owned()),
        duration_ms: None,
        error: None,
        verification: None,
        canary: canary_of(plan, &planned.name).map(|c| c.record(None)),
        rules_ref: Some(plan.rules.source.clone()),
        rules_commit: plan.rules.commit.clone(),
        approved_commit: plan.approval_commit.clone(),
        rollout_id: Some(plan.rollout_id.clone()),
        image: artifact.and_then(|a| a.image.clone()),
        image_digest: artifact.and_then(|a| a.digest.clone()),
        image_source: artifact.and_then(|a| a.copy_from.clone()),
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
    }
}

/// The intent of `plan`: a `started` record for every component that will run, naming where
/// it runs.
pub fn intents(plan: &RolloutPlan, runner: &Runner) -> Vec<PendingRecord> {
    plan.waves
        .iter()
        .flatten()
        .filter_map(|name| plan.component(name))
        .map(|planned| {
            let mut record = base(plan, planned, Status::Started);
            record.runner = Some(runner.clone());
            PendingRecord {
                record,
                state: None,
            }
        })
        .collect()
}

/// Write the intent of `plan` (locally, each record at the end of its chain).
pub fn write_intents(
    git: &GitRepo,
    plan: &RolloutPlan,
    runner: &Runner,
    tagger: &Tagger,
    busy: &dyn Fn(&str, std::time::Duration),
) -> Result<Vec<Written>, GitError> {
    write(git, &intents(plan, runner), tagger, busy)
}

/// Write the outcome of `runs` — one record per started component, each naming its intent —
/// with the state-ref moves of the components that succeeded, and build the report.
pub fn record(
    git: &GitRepo,
    plan: RolloutPlan,
    runs: Vec<ComponentRun>,
    intents: &[Written],
    tagger: &Tagger,
    duration_ms: u64,
    busy: &dyn Fn(&str, std::time::Duration),
) -> Result<(RolloutReport, Vec<Written>), GitError> {
    let intent_of: HashMap<&str, &Written> = intents
        .iter()
        .map(|w| (w.record.component.as_str(), w))
        .collect();
    let recorded_at = rfc3339(jiff::Timestamp::now());
    let mut pending = Vec::new();
    let mut owners = Vec::new();
    for run in &runs {
        let Some(planned) = plan.component(&run.name) else {
            continue;
        };
        // A canary step but the last leaves the state ref where it was.
        let between_steps = !plan.moves_state(&planned.name);
        let (status, error) = match &run.outcome {
            Outcome::Succeeded
                if planned.change == Change::Rollback || plan.reverting.is_some() =>
            {
                (Status::Rollback, None)
            }
            Outcome::Succeeded if between_steps => (Status::Canary, None),
            Outcome::Succeeded => (Status::Success, None),
            Outcome::Failed { error, .. } => (Status::Failure, Some(error.clone())),
            Outcome::Interrupted => (Status::Failure, Some("interrupted by a signal".to_owned())),
            Outcome::Skipped { reason } => (Status::Skipped, Some(reason.clone())),
        };
        // A component that never started and was never announced has nothing to complete.
        let intent = intent_of.get(planned.name.as_str());
        if status == Status::Skipped && intent.is_none() {
            continue;
        }
        let mut record = base(&plan, planned, status);
        record.intent = intent.map(|w| w.oid.clone());
        record.recorded_at = Some(recorded_at.clone());
        record.duration_ms = Some(run.duration_ms);
        record.error = error;
        record.verification =
            run.verification
                .as_ref()
                .map(|v| crate::contracts::record::VerificationRecord {
                    passed: v.passed,
                    attempts: v.attempts,
                });
        record.canary =
            canary_of(&plan, &planned.name).map(|c| {
                c.record(run.analysis.as_ref().map(|a| {
                    crate::contracts::record::VerificationRecord {
                        passed: a.passed,
                        attempts: a.attempts,
                    }
                }))
            });
        let state = (run.outcome == Outcome::Succeeded && !between_steps).then(|| StateUpdate {
            refname: state_ref(&plan.deployment, &plan.target, &planned.name),
            expected: planned.current.clone(),
            new: planned.new.clone(),
        });
        pending.push(PendingRecord { record, state });
        owners.push(planned.name.clone());
    }
    let written = write(git, &pending, tagger, busy)?;
    let mut runs_by_name: HashMap<String, ComponentRun> =
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
                .and_then(|i| written.get(i))
                .map(|w| w.name.clone()),
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
    let report = RolloutReport {
        deployment_id: written
            .first()
            .map(|w| w.name.clone())
            .or_else(|| intents.first().map(|w| w.name.clone())),
        plan,
        components,
        success,
        interrupted,
        duration_ms,
        log_dir: None,
        automatic_rollbacks: Vec::new(),
        canary: None,
    };
    Ok((report, written))
}

/// The `interrupted` records of started rollouts nobody completed, written by `recorder`
/// (rollout `rollout_id`), which found them: each names its intent, and says what is known.
pub fn interrupted(found: &[Link], recorder: &str, rollout_id: &str) -> Vec<PendingRecord> {
    let now = rfc3339(jiff::Timestamp::now());
    found
        .iter()
        .map(|l| {
            let started = &l.record;
            let runner = started
                .runner
                .as_ref()
                .map(|r| {
                    format!(
                        " (pid {} on host {}{})",
                        r.pid,
                        r.host,
                        r.run
                            .as_deref()
                            .map(|run| format!(", run {run}"))
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            let mut record = TagRecord {
                status: Status::Interrupted,
                intent: Some(l.entry.oid.clone()),
                recorded_by: Some(recorder.to_owned()),
                recorded_at: Some(now.clone()),
                runner: None,
                previous_record: None,
                sequence: None,
                duration_ms: None,
                verification: None,
                error: Some(format!(
                    "no outcome was recorded for the rollout started {} by {}{runner}; found by rollout {rollout_id} of {}/{}, which recorded it as interrupted: whether its executor ran, and how far, is unknown",
                    started.timestamp, started.deployed_by, started.deployment, started.target
                )),
                ..(**started).clone()
            };
            record.source_record = started.source_record.clone();
            PendingRecord {
                record,
                state: None,
            }
        })
        .collect()
}
