//! Automatic rollback after a failed post-deploy verification (`on_failure: rollback`): which
//! components go back to which commit, the request that does it (judged by the same gates as
//! any rollback), and how each attempt ended. The session runs what this module plans.

use std::collections::BTreeMap;

use super::model::{
    AutomaticRollback, Blocker, ComponentResult, Reverting, RollbackResult, RolloutReport,
    RolloutRequest, Source,
};
use crate::executor::run::Outcome;
use crate::git::short;
use crate::workflow::error::WorkflowError;

/// Components that go back together: to the same commit, from the same failed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The commit they ran successfully before (`None`: they never did).
    pub before: Option<String>,
    /// The commit whose verification failed.
    pub failed: String,
    /// The components.
    pub components: Vec<String>,
}

/// What a rollout's failed verifications ask for.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// Components that would roll back, but the rollout was interrupted: nothing starts.
    pub interrupted: Vec<String>,
    /// The groups to roll back.
    pub groups: Vec<Group>,
    /// The records of the failed components (the rollback names them).
    pub failed_records: Vec<String>,
    /// What each failed component's state ref held before the rollout.
    pub state_before: BTreeMap<String, Option<String>>,
}

/// The commit `component` last ran successfully on the rollout's target, other than in the
/// failed record named.
pub type LastSuccess<'a> = dyn Fn(&str, Option<&str>) -> Result<Option<String>, WorkflowError> + 'a;

/// The rollbacks `report` asks for: every component whose verification failed with
/// `on_failure: rollback`, grouped by the commit it ran before (`last_success(component,
/// failed record)`: the commit of its newest success or rollback record other than the failed
/// one).
pub fn wanted(
    report: &RolloutReport,
    last_success: &LastSuccess<'_>,
) -> Result<Wanted, WorkflowError> {
    let mut out = Wanted::default();
    let mut groups: BTreeMap<(Option<String>, String), Vec<String>> = BTreeMap::new();
    for c in &report.components {
        let Some(run) = &c.run else { continue };
        let Some(v) = &run.verification else { continue };
        if v.passed || !v.rollback {
            continue;
        }
        // A signal stops the rollout: no new executor starts, not even a rollback.
        if report.interrupted || !matches!(run.outcome, Outcome::Failed { .. }) {
            out.interrupted.push(c.planned.name.clone());
            continue;
        }
        let before = last_success(&c.planned.name, c.tag.as_deref())?;
        groups
            .entry((before, c.planned.new.clone()))
            .or_default()
            .push(c.planned.name.clone());
        out.failed_records.extend(c.tag.clone());
        out.state_before
            .insert(c.planned.name.clone(), c.planned.current.clone());
    }
    out.groups = groups
        .into_iter()
        .map(|((before, failed), components)| Group {
            before,
            failed,
            components,
        })
        .collect();
    Ok(out)
}

/// The rollout that takes `components` back to `before` after `failed` failed verification:
/// the original rollout's identity and proof, nothing forced or skipped.
pub fn request(
    original: &RolloutRequest,
    before: &str,
    group: &Group,
    failed_records: &[String],
) -> RolloutRequest {
    RolloutRequest {
        source: Source::Commit(before.to_owned()),
        components: group.components.clone(),
        force: false,
        skip_promotion_check: false,
        started_at: jiff::Timestamp::now(),
        reverting: Some(Box::new(Reverting {
            commit: group.failed.clone(),
            tags: failed_records.to_vec(),
        })),
        ..original.clone()
    }
}

impl AutomaticRollback {
    fn new(
        components: Vec<String>,
        to_commit: Option<String>,
        result: RollbackResult,
        message: String,
    ) -> AutomaticRollback {
        AutomaticRollback {
            components,
            to_commit,
            result,
            message,
            ran: Vec::new(),
            deployment_id: None,
            report: None,
            blockers: Vec::new(),
        }
    }

    /// Nothing starts after a signal.
    pub fn interrupted(components: Vec<String>) -> AutomaticRollback {
        let message = format!(
            "not started for {}: the rollout was interrupted by a signal",
            components.join(", ")
        );
        AutomaticRollback::new(components, None, RollbackResult::NotStarted, message)
    }

    /// A forced re-run of the commit that ran before: nothing different to go back to.
    pub fn same_commit(group: Group) -> AutomaticRollback {
        let message = format!(
            "not started for {}: the commit it ran before is the one that failed verification",
            group.components.join(", ")
        );
        AutomaticRollback::new(
            group.components,
            group.before,
            RollbackResult::NotStarted,
            message,
        )
    }

    /// The components never ran successfully on the target before.
    pub fn nothing_before(group: Group, target: &str) -> AutomaticRollback {
        let message = format!(
            "{} never ran successfully on {target} before: there is nothing to roll back to",
            group.components.join(", ")
        );
        AutomaticRollback::new(group.components, None, RollbackResult::NotStarted, message)
    }

    /// A gate stands in the way.
    pub fn blocked(
        components: Vec<String>,
        before: &str,
        target: &str,
        blockers: Vec<Blocker>,
    ) -> AutomaticRollback {
        let message = format!(
            "rolling {} back to {} is blocked by the gates; {target} keeps running what the failed rollout applied",
            components.join(", "),
            short(before),
        );
        let mut r = AutomaticRollback::new(
            components,
            Some(before.to_owned()),
            RollbackResult::Blocked,
            message,
        );
        r.blockers = blockers;
        r
    }

    /// Someone else moved a state ref while the rollout ran.
    pub fn moved(
        components: Vec<String>,
        moved: &[String],
        before: &str,
        target: &str,
    ) -> AutomaticRollback {
        let message = format!(
            "not started: the state ref of {} moved while this rollout ran (someone else changed {target}); check with `atmos deployment verify`",
            moved.join(", "),
        );
        AutomaticRollback::new(
            components,
            Some(before.to_owned()),
            RollbackResult::NotStarted,
            message,
        )
    }

    /// The rollback could not be run or recorded.
    pub fn stopped(
        components: Vec<String>,
        before: &str,
        why: &WorkflowError,
    ) -> AutomaticRollback {
        let message = format!(
            "the automatic rollback of {} to {} stopped: {why}",
            components.join(", "),
            short(before)
        );
        AutomaticRollback::new(
            components,
            Some(before.to_owned()),
            RollbackResult::Failed,
            message,
        )
    }

    /// The rollback ran: back on `before`, or failed too.
    pub fn ran(group: Group, before: &str, report: RolloutReport) -> AutomaticRollback {
        let why = match &report.plan.canary {
            Some(c) if c.aborting => format!(
                "at weight 0: the canary of {} stopped at step {} of {}",
                short(&group.failed),
                c.step,
                c.steps
            ),
            _ => format!("after verification of {} failed", short(&group.failed)),
        };
        let (result, message) = if report.success {
            (
                RollbackResult::RolledBack,
                format!(
                    "{} rolled back to {} {why}",
                    group.components.join(", "),
                    short(before),
                ),
            )
        } else {
            (
                RollbackResult::Failed,
                format!(
                    "the automatic rollback of {} to {} failed too: see its log",
                    group.components.join(", "),
                    short(before)
                ),
            )
        };
        let ran: Vec<ComponentResult> = report.components.clone();
        AutomaticRollback {
            components: group.components,
            to_commit: Some(before.to_owned()),
            result,
            message,
            ran,
            deployment_id: report.deployment_id.clone(),
            report: Some(Box::new(report)),
            blockers: Vec::new(),
        }
    }
}
