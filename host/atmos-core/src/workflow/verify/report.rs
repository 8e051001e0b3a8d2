//! What `verify` reports: each problem with the ref or tag and why, and counts of what was
//! checked.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use crate::workflow::trust::RulesOrigin;

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyRequest {
    /// One deployment (default: every deployment with records).
    pub deployment: Option<String>,
    /// One target.
    pub target: Option<String>,
    /// Only report problems of records written since then (state refs are always checked).
    pub since: Option<Timestamp>,
    /// Check everything, whatever was verified before (no checkpoint is used).
    pub full: bool,
}

/// What kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A record whose canary step contradicts its status: a `canary` record at the last step
    /// or at 0 % or 100 %, a `success` of a canary short of its last step, an abort with a
    /// weight.
    CanaryInconsistent,
    /// A tag in the history namespace that is not a readable record.
    UnreadableRecord,
    /// A record that does not name the record before it.
    BrokenChain,
    /// A signature that does not verify for the deployer it names.
    BadSignature,
    /// Unsigned where the target requires signed deployers.
    Unsigned,
    /// Deployed by someone outside the target's deployer groups.
    NotADeployer,
    /// Pushed by another account than the one the record names, unsigned, where the rules
    /// bind pushes to the pusher.
    NotThePusher,
    /// No trusted rules define the deployment or target at the record's time.
    NoRules,
    /// Promoted from a target that is not an allowed source.
    PromotionNotAllowed,
    /// Promoted from a source that never ran the commit before.
    PromotionWithoutSource,
    /// Deployed to a promoted target with no promotion, rollback or recorded skip.
    ReachedWithoutPromotion,
    /// A promotion deployed another image than the source ran with that commit.
    ArtifactMismatch,
    /// Deployed, where signatures are required, an artifact no signed build names; or, where
    /// provenance is required, one whose signed provenance does not verify.
    UnprovenArtifact,
    /// A rollback to a commit the target never ran.
    RollbackNeverRan,
    /// Deployed without the approvals its rules required.
    ApprovalsNotMet,
    /// A state ref with no success record behind it.
    StateRefWithoutRecord,
    /// A state ref that is not the newest success record's commit.
    StateRefMismatch,
    /// A deployed component without a state ref.
    StateRefMissing,
    /// A push deletes a record, state ref or notes ref.
    Deleted,
    /// A push moves an existing history tag, or writes a record older than existing ones.
    Rewritten,
    /// A push rewrites notes instead of adding to them.
    NotesRewritten,
    /// A push writes a ref under atmos's namespaces that is not part of its layout.
    StrayRef,
    /// A notice, not a problem: a rollout made with `--skip-promotion-check`.
    PromotionSkipped,
    /// A record dated beyond the allowed clock skew in the future.
    FutureDated,
    /// An outcome that does not complete a started record of its rollout.
    OutcomeWithoutIntent,
    /// A notice, not a problem: a rollout that started and has no outcome yet.
    Unfinished,
    /// A ref whose content is not what its kind holds, or larger than its limit.
    Malformed,
}

/// One problem: the ref or tag and why.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The full ref name (`refs/tags/atmos/…`, `refs/atmos/…`, `refs/notes/atmos/…`).
    pub reference: String,
    /// The deployment (empty for refs outside any deployment).
    pub deployment: String,
    /// Why.
    pub message: String,
    /// When the record was written (from its tag name), for records.
    #[serde(skip)]
    pub at: Option<Timestamp>,
}

/// Counts of what was checked.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Stats {
    /// History tags read.
    pub records: usize,
    /// State refs checked.
    pub state_refs: usize,
    /// Records whose signature verified for their deployer.
    pub signed: usize,
    /// Unsigned records where signing is not required.
    pub unsigned: usize,
    /// Signed records that could not be checked (no allowed signers configured; not required).
    pub unchecked: usize,
    /// Records written before records were chained (not a problem: they predate the chain).
    pub unchained: usize,
    /// Records of a rollout made with `--skip-promotion-check` (the recorded escape hatch).
    pub skipped_checks: usize,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VerifyReport {
    /// Where the rules came from (the trusted ref; each record is judged by its commit in
    /// force at the record's time).
    pub rules: RulesOrigin,
    /// The deployments checked.
    pub deployments: Vec<String>,
    /// What was checked.
    pub checked: Stats,
    /// Every problem found, oldest record first.
    pub problems: Vec<Problem>,
    /// Records that are not problems but are worth an auditor's look: rollouts made with
    /// `--skip-promotion-check` (the gates in force then allowed it).
    pub notices: Vec<Problem>,
    /// Deployments checked only for what changed since this clone verified them clean (a
    /// verified checkpoint); the others were checked whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incremental: Vec<Incremental>,
}

/// A deployment checked from its verified checkpoint.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Incremental {
    /// Deployment.
    pub deployment: String,
    /// When it was verified clean (RFC 3339).
    pub since: String,
    /// Histories that changed since, and were checked.
    pub histories: usize,
}

impl Stats {
    /// Add what another check counted.
    pub fn add(&mut self, o: &Stats) {
        self.records += o.records;
        self.state_refs += o.state_refs;
        self.signed += o.signed;
        self.unsigned += o.unsigned;
        self.unchecked += o.unchecked;
        self.unchained += o.unchained;
        self.skipped_checks += o.skipped_checks;
    }
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn clean(&self) -> bool {
        self.problems.is_empty()
    }
}

crate::document!(VerifyReport => "VerifyReport");
