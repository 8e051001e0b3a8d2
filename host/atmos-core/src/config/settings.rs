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
    /// CI user names → the identities approver and deployer groups list.
    #[serde(default)]
    pub identities: Identities,
    /// How long history stays as tags before it is archived into the ledger.
    #[serde(default)]
    pub history: HistorySettings,
    /// How deployment files are processed (YAML functions).
    #[serde(default)]
    pub processing: ProcessingSettings,
    /// Atmos CLI: the root its relative paths (components, stacks) are resolved from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    /// Atmos CLI: where each component type's folders are and which command runs them.
    #[serde(default)]
    pub components: AtmosComponents,
    /// Atmos CLI: where stack manifests are and how stacks are named.
    #[serde(default)]
    pub stacks: AtmosStacks,
    /// Atmos CLI: Go templates in stack manifests.
    #[serde(default)]
    pub templates: AtmosTemplates,
    /// Atmos CLI: its settings (atmos reads how lists merge).
    #[serde(default)]
    pub settings: AtmosCliSettings,
    /// Atmos CLI: environment variables every stack component gets (the lowest layer of its
    /// `env`).
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub env: indexmap::IndexMap<String, serde_json::Value>,
}

/// `atmos.yaml` → `templates` (Atmos CLI): whether Go templates in stack manifests are
/// rendered.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct AtmosTemplates {
    /// `templates.settings`.
    #[serde(default)]
    pub settings: AtmosTemplateSettings,
}

/// `atmos.yaml` → `templates.settings` (Atmos CLI).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct AtmosTemplateSettings {
    /// Render Go templates in stack components (default false when atmos.yaml omits it).
    #[serde(default)]
    pub enabled: bool,
}

/// `atmos.yaml` → `settings` (Atmos CLI): atmos reads how lists merge.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct AtmosCliSettings {
    /// `replace` (default), `append` or `merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_merge_strategy: Option<String>,
}

impl Settings {
    /// The settings of a checked `atmos.yaml` document: the Atmos CLI's own sections (which
    /// the schema accepts) are set aside, everything else is read strictly.
    pub fn from_document(mut value: serde_json::Value) -> Result<Settings, serde_json::Error> {
        if let Some(map) = value.as_object_mut() {
            for section in ATMOS_CLI_SECTIONS {
                map.remove(*section);
            }
        }
        serde_json::from_value(value)
    }
}

/// The top-level sections of the Atmos CLI's own configuration (the `properties` of its
/// published schema, atmos-config 1.0) that atmos accepts in `atmos.yaml` and leaves to the
/// Atmos CLI. `base_path`, `components`, `stacks`, `templates`, `settings` and `env` are
/// Atmos's too and are read ([`Settings::base_path`], [`AtmosComponents`], [`AtmosStacks`],
/// [`AtmosTemplates`], [`AtmosCliSettings`], [`Settings::env`]); `git` is atmos's.
pub const ATMOS_CLI_SECTIONS: &[&str] = &[
    "edition",
    "cast",
    "imports",
    "workflows",
    "logs",
    "diagnostics",
    "errors",
    "commands",
    "aliases",
    "integrations",
    "schemas",
    "describe",
    "stores",
    "secrets",
    "vendor",
    "vendorDirAbsolutePath",
    "workflowsDirAbsolutePath",
    "version",
    "validate",
    "import",
    "docs",
    "auth",
    "container",
    "compositions",
    "profiler",
    "track_provenance",
    "toolchain",
    "devcontainer",
    "profiles",
    "metadata",
    "list",
    "ci",
    "ai",
    "aws",
    "mcp",
    "lsp",
];

/// `atmos.yaml` → `components` (Atmos CLI): per component type, its folder and command. Other
/// keys and types are the Atmos CLI's, accepted as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct AtmosComponents {
    /// Terraform root modules.
    #[serde(default)]
    pub terraform: AtmosComponentType,
    /// Helmfile releases.
    #[serde(default)]
    pub helmfile: AtmosComponentType,
    /// Packer templates.
    #[serde(default)]
    pub packer: AtmosComponentType,
}

/// One component type of the Atmos CLI's configuration (the keys atmos reads; the others are
/// the Atmos CLI's).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct AtmosComponentType {
    /// The folder of the components, relative to `base_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    /// The executable (`terraform`, `tofu`, a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Terraform: write `backend.tf.json` into the component folder before running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_generate_backend_file: Option<bool>,
    /// Terraform: `init -reconfigure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_run_reconfigure: Option<bool>,
    /// Terraform: whether workspaces are used (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspaces_enabled: Option<bool>,
}

/// `atmos.yaml` → `stacks` (Atmos CLI): where stack manifests are and how stacks are named.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct AtmosStacks {
    /// The folder of stack manifests, relative to `base_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    /// Globs (in that folder) of the top-level stack manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_paths: Vec<String>,
    /// Globs of manifests that are never top-level stacks (only imported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_paths: Vec<String>,
    /// A Go template naming each stack from its component's merged sections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_template: Option<String>,
    /// The older token pattern (`{tenant}-{environment}-{stage}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_pattern: Option<String>,
    /// What base components pass on.
    #[serde(default)]
    pub inherit: AtmosInherit,
}

/// `atmos.yaml` → `stacks.inherit` (Atmos CLI).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct AtmosInherit {
    /// Whether `metadata` is inherited from base components (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<bool>,
}

/// `atmos.yaml` → `processing`: what the YAML functions of deployment files may read. Gates are
/// evaluated on these values, so the environment variables `!env` may read are listed here,
/// and the list is taken from `atmos.yaml` on the trusted ref when rules are read.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessingSettings {
    /// Environment variables `!env` may read: names, or prefixes ending in `*` (`CI_*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*\*?$")))]
    pub env: Vec<String>,
}

/// `atmos.yaml` → `history`: retention of history tags. Records past it are folded into the
/// deployment's archive ledger (`refs/atmos/ledger/<deployment>`); every query reads tags and
/// ledger as one history, so nothing is lost. On by default: a remote carries one ref per
/// history tag, and git's push reads every ref the remote holds, so a store that kept every
/// record as a tag would make each rollout's push slower for ever.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistorySettings {
    /// What stays as tags: an age (`90d`: records younger than that) or a count (`500`: the
    /// newest 500 rollouts of each target and component, each outcome with its intent). The
    /// newest record of every target and component always stays a tag. Default: the newest
    /// 5 rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_tags: Option<KeepTags>,
    /// Archive after rollouts (default true): with a count, once a history holds more than
    /// twice the count; with an age, as soon as a record passes it. `false` leaves it to
    /// `atmos deployment archive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_on_rollout: Option<bool>,
}

/// What `history.keep_tags` is when atmos.yaml does not set it: the newest 5 rollouts of each
/// target and component (10 to 22 tags a history with folding after rollouts).
pub const DEFAULT_KEEP_ROLLOUTS: u64 = 5;

impl HistorySettings {
    /// The retention in force: the setting, else [`DEFAULT_KEEP_ROLLOUTS`].
    pub fn keep(&self) -> KeepTags {
        self.keep_tags
            .clone()
            .unwrap_or(KeepTags::Count(DEFAULT_KEEP_ROLLOUTS))
    }

    /// Whether rollouts fold older records as they go (default true).
    pub fn archives_on_rollout(&self) -> bool {
        self.archive_on_rollout.unwrap_or(true)
    }
}

/// `history.keep_tags`: by age or by count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum KeepTags {
    /// The newest N rollouts of each target and component (outcomes, each with its intent).
    Count(#[schemars(range(min = 1))] u64),
    /// Records younger than this (`90d`, `12w`).
    Age(#[schemars(regex(pattern = r"^0*[1-9][0-9]*[smhdw]$"))] String),
}

/// `atmos.yaml` → `identities`: the name a CI system gives the person who started a run,
/// mapped to the identity (usually an email) that `approvers.groups` and the allowed signers
/// use. Applied only when the actor came from that system's variable; `ATMOS_ACTOR` and git's
/// `user.email` are never mapped. Read from the trusted rules, like the groups.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Identities {
    /// GitHub user names (`GITHUB_ACTOR`) → identity.
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub github: indexmap::IndexMap<String, String>,
    /// GitLab emails (`GITLAB_USER_EMAIL`) → identity, when they differ.
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub gitlab: indexmap::IndexMap<String, String>,
    /// Buildkite creator emails (`BUILDKITE_BUILD_CREATOR_EMAIL`) → identity.
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub buildkite: indexmap::IndexMap<String, String>,
    /// CircleCI user names (`CIRCLE_USERNAME`) → identity.
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub circleci: indexmap::IndexMap<String, String>,
    /// Accounts a git server names as the pusher (`GL_USERNAME`, `GITEA_PUSHER_NAME`,
    /// `GITHUB_USER_LOGIN`, `REMOTE_USER`) → identity; an account not listed is its own
    /// identity.
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub pushers: indexmap::IndexMap<String, String>,
    /// The server guard binds every record a push adds to the pusher: one whose writer is not
    /// the pusher (mapped through `pushers`) is refused unless its signature verifies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bind_pushes: bool,
}

impl Identities {
    /// The table that applies to a name read from `variable`.
    pub fn for_variable(
        &self,
        variable: &str,
    ) -> Option<(&'static str, &indexmap::IndexMap<String, String>)> {
        match variable {
            "GITHUB_ACTOR" => Some(("github", &self.github)),
            "GITLAB_USER_EMAIL" => Some(("gitlab", &self.gitlab)),
            "BUILDKITE_BUILD_CREATOR_EMAIL" => Some(("buildkite", &self.buildkite)),
            "CIRCLE_USERNAME" => Some(("circleci", &self.circleci)),
            _ => None,
        }
    }
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

#[cfg(test)]
mod atmos_cli_tests {
    use crate::config::settings::Settings;

    #[test]
    fn the_atmos_cli_sections_atmos_needs_are_read_and_the_others_set_aside() {
        let doc = serde_json::json!({
            "base_path": "./",
            "components": {
                "terraform": {
                    "base_path": "components/terraform",
                    "command": "tofu",
                    "init_run_reconfigure": true,
                    "apply_auto_approve": false,
                    "plugin_cache": true
                },
                "ansible": {"base_path": "components/ansible"}
            },
            "stacks": {
                "base_path": "stacks",
                "included_paths": ["deploy/**/*"],
                "excluded_paths": ["**/_defaults.yaml"],
                "name_template": "{{ .vars.stage }}"
            },
            "logs": {"level": "Info"},
            "settings": {"list_merge_strategy": "append"},
            "git": {"remote": "origin"}
        });
        let s = Settings::from_document(doc).expect("read");
        assert_eq!(s.base_path.as_deref(), Some("./"));
        assert_eq!(
            s.components.terraform.base_path.as_deref(),
            Some("components/terraform")
        );
        assert_eq!(s.components.terraform.command.as_deref(), Some("tofu"));
        assert_eq!(s.components.terraform.init_run_reconfigure, Some(true));
        assert_eq!(s.stacks.base_path.as_deref(), Some("stacks"));
        assert_eq!(s.stacks.included_paths, ["deploy/**/*"]);
        assert_eq!(s.stacks.excluded_paths, ["**/_defaults.yaml"]);
        assert_eq!(s.stacks.name_template.as_deref(), Some("{{ .vars.stage }}"));
        assert_eq!(s.git.remote.as_deref(), Some("origin"));
        // atmos's own sections stay strict.
        assert!(Settings::from_document(serde_json::json!({"approvers": {"group": {}}})).is_err());
    }
}
