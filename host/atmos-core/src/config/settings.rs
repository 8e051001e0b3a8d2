//! `atmos.yaml`: the project's settings. These types are the one source of the file format;
//! `docs/schema/atmos.schema.json` is generated from them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `atmos.yaml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where deployment files live.
    #[serde(default)]
    pub deployments: DeploymentsSettings,
    /// Gates bound to every deployment.
    #[serde(default)]
    pub gates: ProjectGates,
    /// Approver groups and signing keys.
    #[serde(default)]
    pub approvers: Approvers,
    /// The shared store.
    #[serde(default)]
    pub git: GitSettings,
    /// Where the rules that decide a rollout are read from.
    #[serde(default)]
    pub trust: TrustSettings,
}

/// Where the rules that decide a rollout (gate bindings, policies, hooks, promotion and approval
/// rules, approver groups, allowed signers) are read from. Only the copy of this setting on the
/// default trusted ref counts: one in the work tree or in a deployed commit is ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustSettings {
    /// The trusted ref, e.g. `refs/remotes/origin/release`. Default: the shared remote's
    /// default branch (`refs/remotes/<remote>/HEAD`), else the current branch's committed HEAD
    /// when there is no remote.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub trusted_ref: Option<String>,
}

/// `atmos.yaml` → `git`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitSettings {
    /// The remote read before every decision and written after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Lifetime of a target lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_ttl: Option<String>,
}

/// `atmos.yaml` → `approvers`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    /// Group name → member emails.
    #[serde(default)]
    pub groups: indexmap::IndexMap<String, Vec<String>>,
    /// ssh allowed_signers file for signed approvals, relative to the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_signers: Option<String>,
}

/// `atmos.yaml` → `gates`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectGates {
    /// Rego files or folders bound to every deployment.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Time limit of one policy package's evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_timeout_ms: Option<u64>,
}

/// `atmos.yaml` → `deployments`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentsSettings {
    /// Folder of deployment files, relative to the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}
