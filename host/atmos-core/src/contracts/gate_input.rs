//! The gate input document: one versioned JSON document per action, the same for Rego
//! policies (`input`) and WebAssembly hooks. Its schema, `docs/schema/gate-input.schema.json`,
//! is generated from these types.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the document; bumped on any incompatible change.
pub const API_VERSION: &str = "atmos.tools/gate-input/v1";

/// What is being gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GateAction {
    /// A commit rolled out directly.
    Rollout,
    /// Commits taken from another target.
    Promote,
    /// Back to an older commit.
    Rollback,
    /// An approval being recorded.
    Approve,
}

impl GateAction {
    /// The name used in the input document and in `gates.hooks[].on`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateAction::Rollout => "rollout",
            GateAction::Promote => "promote",
            GateAction::Rollback => "rollback",
            GateAction::Approve => "approve",
        }
    }
}

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GateInput {
    /// [`API_VERSION`].
    pub api_version: String,
    /// What is gated.
    pub action: GateAction,
    /// The deployment and its promotion rules.
    pub deployment: InputDeployment,
    /// The target being changed.
    pub target: InputTarget,
    /// Source target of a promotion, else null.
    pub source_target: Option<String>,
    /// The newest commit being deployed.
    pub commit: InputCommit,
    /// Commits between what the target runs and what it will run, newest first (at most 200).
    pub commits: Vec<InputCommit>,
    /// True when `commits` stops at its cap: policies must treat the rest as unknown.
    #[serde(default)]
    pub commits_truncated: bool,
    /// Where the rules of this decision come from.
    #[serde(default)]
    pub rules: InputRules,
    /// Each selected component, with its current and new commit.
    pub components: Vec<InputComponent>,
    /// Who acts (see docs/git-layout.md "Who deployed").
    pub actor: String,
    /// Whether the actor proved that identity with a signature (null when not checked).
    #[serde(default)]
    pub identity: Option<crate::identity::Proof>,
    /// Approvals recorded for this commit and target.
    pub approvals: Vec<Value>,
    /// What every target of the deployment runs now.
    pub state: IndexMap<String, InputTargetState>,
    /// Evaluation time, RFC 3339 UTC.
    pub now: String,
    /// `--metadata k=v`.
    pub metadata: IndexMap<String, String>,
    /// Flags of the command that matter to policies.
    pub flags: InputFlags,
    /// SBOM summary of the commit, when one is recorded; else null.
    pub sbom: Option<Value>,
    /// For a rollout in canary steps: the step being entered (an abort: the step it stops at,
    /// weight 0); else null.
    #[serde(default)]
    pub canary: Option<InputCanary>,
}

/// `input.canary`: the canary step a rollout is about to enter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InputCanary {
    /// The step, counted from 1.
    pub step: u32,
    /// Steps in all.
    pub steps: u32,
    /// Percent on the new commit once this step runs (100 at the last step; 0 for an abort).
    pub weight: u8,
    /// True when the canary is being aborted: the components go back to what ran before.
    pub aborting: bool,
    /// The components deployed in steps.
    pub components: Vec<String>,
}

/// `input.rules`: the trusted ref the gate bindings and rules were read from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct InputRules {
    /// The trusted ref (`refs/remotes/origin/main`, `HEAD`), or `work tree` (`--local`).
    pub source: String,
    /// Its commit (null for the work tree).
    pub commit: Option<String>,
    /// The branch it is, as people name it (`main` for `refs/remotes/origin/main`).
    #[serde(default)]
    pub branch: String,
}

/// `input.deployment`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InputDeployment {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// Every target's labels and promotion rules.
    pub targets: IndexMap<String, InputTargetConfig>,
}

/// A target's configuration, as policies see it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InputTargetConfig {
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// Allowed sources (empty for an entry point).
    pub promotion_from: Vec<String>,
    /// Whether approvals are required.
    pub requires_approval: bool,
}

/// `input.target`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InputTarget {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// The target's context.
    pub context: serde_json::Map<String, Value>,
    /// Allowed sources (empty for an entry point).
    pub promotion_from: Vec<String>,
    /// Whether approvals are required.
    pub requires_approval: bool,
}

/// A commit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InputCommit {
    /// Full sha.
    pub sha: String,
    /// Author email.
    pub author_email: String,
    /// Author name.
    pub author_name: String,
    /// First line of the message.
    pub subject: String,
    /// Whether the commit is in the history of the trusted ref (set on `input.commit`; null
    /// with `--local` rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_trusted_ref: Option<bool>,
    /// Local and remote-tracking branches whose history holds the commit (set on
    /// `input.commit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reachable_from: Vec<String>,
}

/// A component in the action.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InputComponent {
    /// Name.
    pub name: String,
    /// Executor type.
    #[serde(rename = "type")]
    pub kind: String,
    /// What the target runs now (null if never deployed).
    pub current: Option<String>,
    /// What it will run.
    pub new: String,
    /// `new`, `changed`, `unchanged` or `rollback`.
    pub change: String,
    /// Whether `new` is in the history of the trusted ref (null with `--local` rules).
    #[serde(default)]
    pub on_trusted_ref: Option<bool>,
    /// The image it will deploy, for components with a recorded build.
    #[serde(default)]
    pub image: Option<String>,
    /// That image's digest (for a promotion: the digest the source ran).
    #[serde(default)]
    pub image_digest: Option<String>,
    /// What its signed build provenance proves (null for components without an image).
    #[serde(default)]
    pub provenance: Option<super::provenance::ProvenanceCheck>,
}

/// `input.state.<target>`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InputTargetState {
    /// The newest commit the target runs.
    pub commit: Option<String>,
    /// When it was last deployed.
    pub deployed_at: Option<String>,
    /// How its newest rollouts went: `success`, `failure` (any component's newest attempt
    /// failed) or `not deployed`. (Observed health is not a gate input: it is not recorded
    /// in git, so nobody could check a decision made on it.)
    pub last_rollout: String,
    /// Per component.
    pub components: IndexMap<String, InputComponentState>,
}

/// `input.state.<target>.components.<name>`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InputComponentState {
    /// Deployed commit.
    pub commit: Option<String>,
    /// When it was deployed.
    pub deployed_at: Option<String>,
    /// `success` / `rollback` of the deploying rollout.
    pub status: Option<String>,
    /// The image digest it runs, when recorded.
    #[serde(default)]
    pub image_digest: Option<String>,
}

/// `input.flags`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct InputFlags {
    /// `--skip-promotion-check` was given.
    pub skip_promotion_check: bool,
    /// `--force` was given.
    pub force: bool,
}
