//! When only approvals stand in the way: wait for them to be recorded (polling the
//! repository, and the remote when there is one), or, for `approval_method: manual`, ask the
//! person running the rollout to confirm and record that confirmation.

use std::time::{Duration, Instant};

use super::model::RolloutPlan;
use crate::contracts::layout::rfc3339;
use crate::contracts::{ApprovalDecision, ApprovalRecord};
use crate::git::remote::Remote;
use crate::git::{Author, GitRepo, short};
use crate::workflow::error::WorkflowError;
use crate::workflow::events::{Event, ManualConfirmation, Observer, WaitEvent};

/// How long to wait, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalWait {
    /// Give up after this long.
    pub timeout: Duration,
    /// Re-read approvals this often.
    pub poll: Duration,
}

/// Count the approval records of `commit` for the plan's target (any decision).
fn recorded(git: &GitRepo, plan: &RolloutPlan, commit: &str) -> Option<usize> {
    let (records, _) = crate::approvals::read(git, &plan.deployment, commit).ok()?;
    Some(
        records
            .iter()
            .filter(|r| r.target == plan.target && r.git_sha == commit)
            .count(),
    )
}

/// Wait until the approval records of the plan's commit change (re-reading them every poll
/// interval with a fresh repository handle, so records written by other processes are
/// seen). True when they changed: the caller plans again and the full rule decides.
pub fn wait_for_change(
    git: &GitRepo,
    remote: Option<&Remote>,
    plan: &RolloutPlan,
    timeout: Duration,
    poll: Duration,
    observer: &dyn Observer,
) -> bool {
    let (Some(commit), Some(first)) = (&plan.approval_commit, &plan.approvals) else {
        return false;
    };
    let poll = poll.max(Duration::from_millis(100));
    let reopen = || GitRepo::discover(git.git_dir()).ok();
    let baseline = reopen()
        .and_then(|g| recorded(&g, plan, commit))
        .unwrap_or(0);
    observer.event(&Event::ApprovalWait(WaitEvent::Started {
        commit,
        target: &plan.target,
        counted: first.counted.len(),
        required: first.required,
        timeout,
    }));
    let started = Instant::now();
    let mut last_report = Instant::now();
    while started.elapsed() < timeout {
        std::thread::sleep(poll.min(timeout.saturating_sub(started.elapsed())));
        if let Some(r) = remote
            && let Err(e) = r.fetch()
        {
            observer.event(&Event::ApprovalWait(WaitEvent::RemoteUnreadable {
                remote: &r.name,
                error: e.to_string(),
            }));
        }
        let now = reopen().and_then(|g| recorded(&g, plan, commit));
        if now.is_some_and(|n| n != baseline) {
            observer.event(&Event::ApprovalWait(WaitEvent::NewRecords {
                commit,
                after: started.elapsed(),
            }));
            return true;
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            observer.event(&Event::ApprovalWait(WaitEvent::StillWaiting {
                commit,
                left: timeout.saturating_sub(started.elapsed()),
            }));
        }
    }
    observer.event(&Event::ApprovalWait(WaitEvent::TimedOut {
        commit,
        target: &plan.target,
        waited: started.elapsed(),
    }));
    false
}

/// `approval_method: manual`: ask the observer; when the person confirms, record a `manual`
/// approval by the deployer. True when one was recorded.
pub fn confirm_manually(
    git: &GitRepo,
    plan: &RolloutPlan,
    observer: &dyn Observer,
) -> Result<bool, WorkflowError> {
    let Some(commit) = &plan.approval_commit else {
        return Ok(false);
    };
    match observer.confirm(&ManualConfirmation { plan, commit }) {
        None => return Ok(false),
        Some(false) => {
            observer.event(&Event::ApprovalWait(WaitEvent::NotConfirmed));
            return Ok(false);
        }
        Some(true) => {}
    }
    let (existing, _) = crate::approvals::read(git, &plan.deployment, commit)?;
    let record = ApprovalRecord {
        sequence: Some(crate::approvals::next_sequence(
            &existing,
            &plan.deployment,
            &plan.target,
            commit,
            &plan.actor.id,
        )),
        approved_by: plan.actor.id.clone(),
        approved_at: rfc3339(jiff::Timestamp::now()),
        decision: ApprovalDecision::Approve,
        deployment: plan.deployment.clone(),
        target: plan.target.clone(),
        git_sha: commit.clone(),
        promoted_from: plan.source_target.clone(),
        comment: Some("confirmed interactively".into()),
        method: "manual".into(),
        rollout: Some(plan.rollout_id.clone()),
        signature: None,
    };
    crate::approvals::append(git, &record, &Author::of(git, &plan.actor.id))?;
    Ok(true)
}

/// The components a manual confirmation covers, as shown to the person.
pub fn confirmation_summary(plan: &RolloutPlan) -> Vec<String> {
    plan.components
        .iter()
        .filter(|c| c.run)
        .map(|c| {
            format!(
                "{} ({} → {})",
                c.name,
                c.current.as_deref().map(short).unwrap_or("none"),
                short(&c.new)
            )
        })
        .collect()
}
