//! What a workflow tells its front end while it works, and what it may ask it.

use std::time::Duration;

use crate::contracts::Lease;
use crate::workflow::build::plan::BuildPlan;
use crate::workflow::rollout::model::RolloutPlan;

/// What a workflow reports while it works, in order.
#[derive(Debug)]
pub enum Event<'a> {
    /// Another runner holds the target's lock; waiting for it (told every few seconds).
    LockWaiting {
        /// The lease that blocks.
        held: &'a Lease,
    },
    /// The lock was taken over from a run whose lease expired.
    LockTakenOver {
        /// The expired lease.
        previous: &'a Lease,
    },
    /// The rollout is planned (again, after approvals changed, when `after` says why).
    Planned {
        /// The plan.
        plan: &'a RolloutPlan,
        /// `None` the first time.
        after: Option<Replan>,
    },
    /// A build is planned; its builders run next.
    BuildPlanned(&'a BuildPlan),
    /// Waiting for approvals.
    ApprovalWait(WaitEvent<'a>),
    /// Executor progress (waves, commands, output lines, results).
    Executor(&'a crate::executor::run::Event),
    /// Something worth a warning that does not stop the workflow.
    Warning(String),
    /// A step done that is worth saying (an image copied into the target's registry).
    Progress(String),
}

/// Why a rollout was planned again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replan {
    /// The person running it confirmed a manual approval.
    ManualConfirmation,
    /// New approval records appeared while waiting.
    NewApprovals,
    /// A verification failed with `on_failure: rollback`: the previous commit is deployed
    /// again.
    AutomaticRollback,
    /// A canary's step finished: the next step is planned (its gates judged again).
    CanaryStep,
    /// A canary is aborted: its components go back to what ran before, at weight 0.
    CanaryAbort,
}

/// The front end of a workflow: renders its events and answers its questions.
pub trait Observer {
    /// Something happened.
    fn event(&self, event: &Event<'_>);

    /// `approval_method: manual`: ask the person running the rollout to confirm. `None` when
    /// nobody can answer (no terminal), which leaves the approval pending.
    fn confirm(&self, request: &ManualConfirmation<'_>) -> Option<bool> {
        let _ = request;
        None
    }
}

/// An observer that ignores everything and answers nothing (tests, batch use).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event<'_>) {}
}

/// Progress of a wait for approvals.
#[derive(Debug)]
pub enum WaitEvent<'a> {
    /// The wait begins.
    Started {
        /// The commit to approve.
        commit: &'a str,
        /// The target.
        target: &'a str,
        /// Approvals that count so far.
        counted: usize,
        /// Approvals required.
        required: u32,
        /// How long it waits at most.
        timeout: Duration,
    },
    /// Approvals could not be read from the remote this time (the wait goes on).
    RemoteUnreadable {
        /// The remote.
        remote: &'a str,
        /// Why.
        error: String,
    },
    /// New approval records appeared: the rollout is planned again.
    NewRecords {
        /// The commit.
        commit: &'a str,
        /// Time waited.
        after: Duration,
    },
    /// Still waiting (told every 30 seconds).
    StillWaiting {
        /// The commit.
        commit: &'a str,
        /// Time left.
        left: Duration,
    },
    /// The wait ended without new approvals.
    TimedOut {
        /// The commit.
        commit: &'a str,
        /// The target.
        target: &'a str,
        /// How long it waited.
        waited: Duration,
    },
    /// The manual confirmation was answered with something other than yes.
    NotConfirmed,
}

/// What the person is asked to confirm under `approval_method: manual`.
#[derive(Debug)]
pub struct ManualConfirmation<'a> {
    /// The plan being confirmed.
    pub plan: &'a RolloutPlan,
    /// The commit approved.
    pub commit: &'a str,
}
