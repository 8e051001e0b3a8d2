//! What a rollout is made of: the request, the plan with its gate decisions, and the report
//! of what ran and was recorded.

use std::path::PathBuf;

use indexmap::IndexMap;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use crate::config::ComponentType;
use crate::contracts::{Decision, Verdict};
use crate::executor::run::ComponentRun;
use crate::identity::Actor;
use crate::workflow::trust::RulesOrigin;

pub use super::source::Source;

/// Source of the built-in promotion decision.
pub const PROMOTION_GATE: &str = "builtin/promotion-path";
/// Source of the built-in approval decision.
pub const APPROVAL_GATE: &str = "builtin/approvals";
/// Source of the built-in decision about where the deployed commit lives.
pub const HISTORY_GATE: &str = "builtin/history";
/// Source of the built-in decision about who may deploy.
pub const DEPLOYER_GATE: &str = "builtin/deployers";
/// Source of the built-in decision that each image component has a built artifact to deploy.
pub const ARTIFACT_GATE: &str = "builtin/artifacts";

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct RolloutRequest {
    /// Target name.
    pub target: String,
    /// What it deploys: HEAD, a named commit, or what another target runs.
    pub source: Source,
    /// Only these components (names or `type/name`); empty for all.
    pub components: Vec<String>,
    /// Deploy even when the promotion rules say no (recorded in the tags).
    pub skip_promotion_check: bool,
    /// Run executors even for components that already run the commit.
    pub force: bool,
    /// `--metadata k=v`, recorded in the tags.
    pub metadata: IndexMap<String, String>,
    /// Who deploys.
    pub actor: Actor,
    /// CI build id.
    pub build_id: Option<String>,
    /// When the rollout starts; names its tags.
    pub started_at: Timestamp,
    /// The SSH key that proves the deployer's identity and signs the records, when one is
    /// configured.
    pub signing_key: Option<crate::signing::Key>,
    /// Whether the deployer proved their identity (set once the trusted rules are known).
    pub proof: Option<crate::identity::Proof>,
    /// `--context key=value` overrides of the merged vars.
    pub context: crate::config::Vars,
    /// Set for an automatic rollback: the selected components run this commit (their apply
    /// ran, then failed verification) though their state refs still name the commit before,
    /// so the plan starts from it and the gates judge a rollback from it.
    pub reverting: Option<Box<Reverting>>,
    /// Set for a later step of a canary, or its abort (`--continue`, `--abort`).
    pub canary: Option<CanaryRequest>,
}

/// Why a canary stopped between steps (`CanaryPause::reason`).
pub mod pause {
    /// `--until-step` asked for it.
    pub const UNTIL_STEP: &str = "until_step";
    /// A gate at the next step is pending (approvals missing).
    pub const PENDING: &str = "pending";
    /// A gate at the next step denies it.
    pub const DENIED: &str = "denied";
}

/// What a request asks of a canary that has begun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanaryRequest {
    /// Enter `step` of the canary whose first step was rollout `first`.
    Step {
        /// The step, counted from 1.
        step: u32,
        /// The first step's rollout id.
        first: String,
    },
    /// Stop the canary at `step` and take its components back.
    Abort {
        /// The step it stands at.
        step: u32,
        /// The first step's rollout id.
        first: String,
    },
}

/// The canary step a plan enters.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CanaryPlan {
    /// The step, counted from 1.
    pub step: u32,
    /// Steps in all.
    pub steps: u32,
    /// Percent on the new commit once this step runs (0 for an abort).
    pub weight: u8,
    /// True for an abort: the components go back to what ran before, at weight 0.
    pub aborting: bool,
    /// The components deployed in steps.
    pub components: Vec<String>,
    /// The rollout id of the canary's first step.
    pub first: String,
    /// The strategy, as the trusted rules say.
    #[serde(skip)]
    #[schemars(skip)]
    pub strategy: crate::config::strategy::Canary,
}

impl CanaryPlan {
    /// True at the last step, which moves the state refs.
    pub fn is_last(&self) -> bool {
        self.step >= self.steps
    }

    /// The record of this step for a component, with its analysis.
    pub fn record(
        &self,
        analysis: Option<crate::contracts::record::VerificationRecord>,
    ) -> crate::contracts::record::CanaryRecord {
        crate::contracts::record::CanaryRecord {
            step: self.step,
            steps: self.steps,
            weight: self.weight,
            analysis,
            first: self.first.clone(),
        }
    }

    /// The gate input's view of this step.
    pub fn input(&self) -> crate::contracts::gate_input::InputCanary {
        crate::contracts::gate_input::InputCanary {
            step: self.step,
            steps: self.steps,
            weight: self.weight,
            aborting: self.aborting,
            components: self.components.clone(),
        }
    }
}

/// The artifact a component deploys: the image built once for its commit, followed from
/// target to target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Artifact {
    /// The image reference.
    pub image: Option<String>,
    /// Its digest.
    pub digest: Option<String>,
    /// Where it was found: `source:<target>` (the record of the target it is promoted from),
    /// `target` (this target ran the commit before), `build` (the commit's builds note), or
    /// `to_build` (not built yet: an entry target builds it before deploying).
    pub from: String,
    /// Where the image is copied from, pinned (a target with its own registry deploys a
    /// copy in it: `image` is then the copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<String>,
    /// Its signed provenance, as checked (images with a registry digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::contracts::provenance::ProvenanceCheck>,
}

/// What kind of rollout this is, overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A commit deployed directly.
    Rollout,
    /// Commits taken from another target.
    Promote,
    /// Every changed component goes back to an older commit the target ran before.
    Rollback,
    /// Every changed component returns to a commit the target ran before, and at least one
    /// of them moves forward to it (after a rollback): a roll-forward, not a rollback.
    #[serde(rename = "roll-forward")]
    RollForward,
}

/// How one component's commit changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Never deployed to this target before.
    New,
    /// Moves to a different commit.
    Changed,
    /// Already runs this commit.
    Unchanged,
    /// Moves back to an older commit this target ran successfully before.
    Rollback,
    /// Moves forward to a newer commit this target ran successfully before (after a
    /// rollback): a roll-forward.
    #[serde(rename = "roll-forward")]
    RollForward,
}

impl Change {
    /// True when the component returns to a commit the target ran before, backwards or
    /// forwards.
    pub fn returns(self) -> bool {
        matches!(self, Change::Rollback | Change::RollForward)
    }
}

/// One component in a plan.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlannedComponent {
    /// Name.
    pub name: String,
    /// Executor type.
    #[serde(rename = "type")]
    pub kind: ComponentType,
    /// `type/name` of dependencies.
    pub depends_on: Vec<String>,
    /// What the target runs now.
    pub current: Option<String>,
    /// What it will run.
    pub new: String,
    /// The change.
    pub change: Change,
    /// Whether its executor runs (changed, or `--force`).
    pub run: bool,
    /// For a promotion: the source target's record of the commit it takes (its tag object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_record: Option<String>,
}

/// Why a promotion is refused, with what to run instead: the path the rules require and the
/// commands that follow it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PromotionDenial {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// The source asked for; `None` for a direct rollout to a promoted target.
    pub from: Option<String>,
    /// Sources the target accepts.
    pub allowed_from: Vec<String>,
    /// The path the rules require, entry point first.
    pub required_path: Vec<String>,
    /// Commands that follow the rules, in order.
    pub steps: Vec<String>,
    /// The command that bypasses the check (recorded in the tags).
    pub skip_command: String,
    /// The steps as requests, to check them against the gates before offering them.
    #[serde(skip)]
    #[schemars(skip)]
    pub step_requests: Vec<StepRequest>,
}

/// One suggested rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRequest {
    /// Target.
    pub target: String,
    /// What it deploys.
    pub source: Source,
}

/// Everything decided before anything runs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RolloutPlan {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// Overall kind.
    pub action: Action,
    /// Source target of a promotion.
    pub source_target: Option<String>,
    /// The commit asked for (direct rollouts).
    pub commit: Option<String>,
    /// Every selected component.
    pub components: Vec<PlannedComponent>,
    /// Names of the components that run, in dependency waves.
    pub waves: Vec<Vec<String>>,
    /// Built-in gate decisions.
    pub decisions: Vec<Decision>,
    /// Set when the promotion rules refuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denial: Option<PromotionDenial>,
    /// Who deploys.
    pub actor: Actor,
    /// Whether the deployer proved that identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<crate::identity::Proof>,
    /// CI build id.
    pub build_id: Option<String>,
    /// Recorded metadata.
    pub metadata: IndexMap<String, String>,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Whether `--skip-promotion-check` was given.
    pub skip_promotion_check: bool,
    /// The gate input document the decisions were made on.
    #[serde(skip)]
    pub input: Option<crate::contracts::GateInput>,
    /// The approval rule applied, for targets that require approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<crate::approvals::ApprovalCheck>,
    /// The commit approvals must be for (the newest commit deployed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_commit: Option<String>,
    /// Where the rules that decided came from (the trusted ref and its commit).
    pub rules: RulesOrigin,
    /// Everything that stands in the way, each with what clears it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
    /// This rollout's id: its start time in nanoseconds and the process.
    pub rollout_id: String,
    /// The artifact each image component deploys.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub artifacts: std::collections::BTreeMap<String, Artifact>,
    /// The target's own registry, when its images are copied there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// `--context key=value` overrides of the merged vars.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub context: crate::config::Vars,
    /// The deployment file as of each deployed commit (what is deployed comes from there).
    #[serde(skip)]
    #[schemars(skip)]
    pub configs: std::collections::BTreeMap<String, crate::config::LoadedDeployment>,
    /// Set for an automatic rollback: the rollout whose verification failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverting: Option<Box<Reverting>>,
    /// The canary step this rollout enters, when the target deploys in steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryPlan>,
}

/// What an automatic rollback reverts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Reverting {
    /// The commit whose verification failed.
    pub commit: String,
    /// The records of the failed rollout.
    pub tags: Vec<String>,
}

/// An automatic rollback after a failed verification, and how it went.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AutomaticRollback {
    /// The components whose verification failed.
    pub components: Vec<String>,
    /// The commit they go back to (what the target ran before), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_commit: Option<String>,
    /// `rolled_back`, `failed`, `blocked` (a gate stands in the way) or `not_started`.
    pub result: RollbackResult,
    /// What happened, in words.
    pub message: String,
    /// What each component of the rollback did, when it ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ran: Vec<ComponentResult>,
    /// The rollback's first record, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// The rollback's own report (its records are published with the rollout's).
    #[serde(skip)]
    #[schemars(skip)]
    pub report: Option<Box<RolloutReport>>,
    /// What blocked it, when a gate did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
}

/// How an automatic rollback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RollbackResult {
    /// The previous commit runs again.
    RolledBack,
    /// It ran and failed.
    Failed,
    /// A gate stands in the way (nothing ran).
    Blocked,
    /// Not started: nothing to go back to (the component was new to the target), or the
    /// rollout was interrupted.
    NotStarted,
}

/// One thing that stands in the way of a rollout, and what clears it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Blocker {
    /// The gate (`builtin/promotion-path`, a policy file, `hook:<name>`).
    pub source: String,
    /// The Rego package, for policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The gate's machine-readable code, when it gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `deny` (exit 3) or `pending` (exit 4).
    pub result: Verdict,
    /// What is wrong.
    pub message: String,
    /// What clears it: a command to run, or how long to wait. Each suggested command was
    /// checked against the same gates before it is offered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<String>,
    /// Why a fix one might expect is not offered (e.g. the gates refuse it too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_offered: Vec<String>,
}

impl RolloutPlan {
    /// An empty plan of `deployment` to `target`, for unit tests of what reads plans.
    #[cfg(test)]
    pub fn for_tests(deployment: &str, target: &str) -> RolloutPlan {
        RolloutPlan {
            deployment: deployment.to_owned(),
            target: target.to_owned(),
            action: Action::Rollout,
            source_target: None,
            commit: None,
            components: Vec::new(),
            waves: Vec::new(),
            decisions: Vec::new(),
            denial: None,
            actor: crate::identity::Actor {
                id: "dev@example.com".into(),
                source: "test".into(),
            },
            proof: None,
            build_id: None,
            metadata: indexmap::IndexMap::new(),
            started_at: "2026-01-01T00:00:00Z".into(),
            skip_promotion_check: false,
            input: None,
            approvals: None,
            approval_commit: None,
            artifacts: Default::default(),
            registry: None,
            context: Default::default(),
            rollout_id: String::new(),
            rules: crate::workflow::trust::RulesOrigin {
                source: "test".into(),
                commit: None,
                chosen_by: "test".into(),
            },
            blockers: Vec::new(),
            configs: Default::default(),
            reverting: None,
            canary: None,
        }
    }

    /// The strongest blocking verdict among the decisions, if any (deny beats pending).
    pub fn blocked(&self) -> Option<Verdict> {
        let results: Vec<Verdict> = self.decisions.iter().map(|d| d.result).collect();
        if results.contains(&Verdict::Deny) {
            Some(Verdict::Deny)
        } else if results.contains(&Verdict::Pending) {
            Some(Verdict::Pending)
        } else {
            None
        }
    }

    /// True when no executor would run.
    pub fn is_noop(&self) -> bool {
        self.waves.iter().all(Vec::is_empty)
    }

    /// Whether a success of `component` moves its state ref: not at a canary step but the
    /// last.
    pub fn moves_state(&self, component: &str) -> bool {
        !self
            .canary
            .as_ref()
            .is_some_and(|c| !c.is_last() && c.components.iter().any(|n| n == component))
    }

    /// A planned component by name.
    pub fn component(&self, name: &str) -> Option<&PlannedComponent> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// One component in the final report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ComponentResult {
    /// The plan for it.
    #[serde(flatten)]
    pub planned: PlannedComponent,
    /// Its run, when it ran (or was skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<ComponentRun>,
    /// The history tag written for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// The finished rollout.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RolloutReport {
    /// The plan it followed.
    pub plan: RolloutPlan,
    /// Every selected component.
    pub components: Vec<ComponentResult>,
    /// The first tag written: names the rollout (its "Deployment ID").
    pub deployment_id: Option<String>,
    /// True when every run component succeeded.
    pub success: bool,
    /// True when SIGINT/SIGTERM stopped it.
    pub interrupted: bool,
    /// Total wall time.
    pub duration_ms: u64,
    /// Where the executors' output is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
    /// Automatic rollbacks after failed verifications (and a canary's abort).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub automatic_rollbacks: Vec<AutomaticRollback>,
    /// For a rollout in canary steps: every step this run took, and where it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryProgress>,
}

/// The steps of a canary one command ran, and where it stopped.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct CanaryProgress {
    /// Steps in all.
    pub steps: u32,
    /// The steps run, in order.
    pub ran: Vec<CanaryStepRun>,
    /// Set when the canary stopped between steps and stays open: why, and how to go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<CanaryPause>,
    /// Set when the canary was aborted: the step it stopped at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<u32>,
}

/// One step run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CanaryStepRun {
    /// The step, counted from 1.
    pub step: u32,
    /// Its weight.
    pub weight: u8,
    /// Whether its apply (and analysis) succeeded.
    pub success: bool,
    /// How its analysis went, when one ran (the first component's; each record has its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::contracts::record::VerificationRecord>,
    /// The step's first record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

/// Why a canary stopped between steps.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CanaryPause {
    /// The last step that finished.
    pub after_step: u32,
    /// `until_step` (asked for), `pending` or `denied` (a gate at the next step).
    pub reason: String,
    /// What stands in the way of the next step, when a gate does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
}

/// `rollout --plan`: the plan and its plan commands' runs; nothing was recorded.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanRun {
    /// The plan.
    pub plan: RolloutPlan,
    /// The plan commands' runs.
    pub runs: Vec<ComponentRun>,
}

/// `policy eval`: what every gate says about a rollout, without doing it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PolicyEvaluation {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// What the rollout would get.
    pub verdict: EvaluationVerdict,
    /// Every decision.
    pub decisions: Vec<Decision>,
    /// The input document the gates saw, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<crate::contracts::GateInput>,
}

/// The overall verdict of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EvaluationVerdict {
    /// Nothing blocks.
    Allow,
    /// A gate denies (exit 3).
    Deny,
    /// Approvals are missing (exit 4).
    Pending,
}

impl PolicyEvaluation {
    /// The evaluation of `plan`, with its input document when `with_input`.
    pub fn of(plan: &RolloutPlan, with_input: bool) -> PolicyEvaluation {
        PolicyEvaluation {
            deployment: plan.deployment.clone(),
            target: plan.target.clone(),
            verdict: match plan.blocked() {
                Some(Verdict::Deny) => EvaluationVerdict::Deny,
                Some(_) => EvaluationVerdict::Pending,
                None => EvaluationVerdict::Allow,
            },
            decisions: plan.decisions.clone(),
            input: plan.input.clone().filter(|_| with_input),
        }
    }
}

crate::document!(
    RolloutPlan => "RolloutPlan",
    RolloutReport => "RolloutReport",
    PlanRun => "RolloutPlanRun",
    PolicyEvaluation => "PolicyEvaluation",
);
