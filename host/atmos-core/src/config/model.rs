//! The typed deployment configuration (SPEC §4). The JSON Schema in `docs/schema/` is the
//! contract for the file format; these structs are what the rest of the library works with,
//! and they are only built from documents that passed the schema.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contracts::GateAction;
use crate::diagnostic::did_you_mean;

/// Free-form key/value data (vars, settings, context).
pub type Vars = Map<String, Value>;

/// A whole `deployments/<name>.yaml` file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    /// The single root key.
    pub deployment: Deployment,
}

/// One deployment: a set of components rolled out together to a set of targets.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Must equal the file stem; becomes a ref path segment.
    pub name: String,
    /// Free text shown by `describe` and `list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels used by `list --label k=v` and by gates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Deployment-wide context: `default_target` plus values merged under every component's vars.
    #[serde(default)]
    pub context: DeploymentContext,
    /// Components grouped by type.
    #[serde(default)]
    pub components: Components,
    /// Gates bound to every target.
    #[serde(default, skip_serializing_if = "Gates::is_empty")]
    pub gates: Gates,
    /// Targets (environments) in file order.
    pub targets: IndexMap<String, Target>,
}

/// `gates`: what is evaluated before a rollout, promotion, rollback or approval.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// Rego files or folders, relative to the project root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// WebAssembly hooks (docs/hooks.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookConfig>,
}

impl Gates {
    /// True when nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty() && self.hooks.is_empty()
    }
}

/// `deployment.context`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct DeploymentContext {
    /// Target used when a command is given no `--target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_target: Option<String>,
    /// Every other key: the lowest layer of each component's merged vars.
    #[serde(flatten)]
    pub values: Vars,
}

/// Components grouped by their executor type, each group in file order.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Components {
    /// Container images built by nixpacks.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub nixpack: IndexMap<String, Component>,
    /// Terraform or OpenTofu root modules.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub terraform: IndexMap<String, Component>,
    /// Helmfile releases.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub helmfile: IndexMap<String, Component>,
    /// Commands atmos runs itself.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub script: IndexMap<String, Component>,
}

/// The executor type of a component; the first segment of a `depends_on` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentType {
    /// `nixpack`
    Nixpack,
    /// `terraform`
    Terraform,
    /// `helmfile`
    Helmfile,
    /// `script`
    Script,
}

impl ComponentType {
    /// Every type, in the order they are listed in files and output.
    pub const ALL: [ComponentType; 4] = [
        ComponentType::Nixpack,
        ComponentType::Terraform,
        ComponentType::Helmfile,
        ComponentType::Script,
    ];

    /// The key used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentType::Nixpack => "nixpack",
            ComponentType::Terraform => "terraform",
            ComponentType::Helmfile => "helmfile",
            ComponentType::Script => "script",
        }
    }

    /// Parse a config key.
    pub fn parse(s: &str) -> Option<ComponentType> {
        ComponentType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for ComponentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One component.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Labels and dependencies.
    #[serde(default)]
    pub metadata: ComponentMetadata,
    /// Inputs of the component, merged with the target's context.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Vars,
    /// Executor settings (e.g. `settings.script.apply`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub settings: Vars,
}

/// `components.<type>.<name>.metadata`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentMetadata {
    /// Labels used by `list --label`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Components (`type/name`) that must be rolled out first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// One target (environment).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Labels used by `list --label` and by gates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Values merged over every component's vars for this target.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Vars,
    /// How code arrives here; absent for an entry point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
    /// Gates added for this target.
    #[serde(default, skip_serializing_if = "Gates::is_empty")]
    pub gates: Gates,
}

/// `targets.<name>.promotion`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// The single target this one is promoted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Several possible sources (fan-in). Mutually exclusive with `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_from: Option<Vec<String>>,
    /// Whether a rollout here needs recorded approvals.
    #[serde(default)]
    pub requires_approval: bool,
    /// Who must approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalRules>,
    /// How approval is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_method: Option<ApprovalMethod>,
}

/// `promotion.approvals`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRules {
    /// Approvals needed (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    /// Only approvers in these groups count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_groups: Vec<String>,
    /// Let the deployer or a commit author approve.
    #[serde(default)]
    pub allow_self_approval: bool,
    /// Only signed approvals count.
    #[serde(default)]
    pub require_signed: bool,
}

/// `promotion.approval_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMethod {
    /// Recorded with `atmos deployment approve` (the default).
    Recorded,
    /// Confirmed interactively by the person rolling out.
    Manual,
}

impl Promotion {
    /// Every allowed source, whichever key names them.
    pub fn sources(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.from.iter().map(String::as_str).collect();
        if let Some(list) = &self.allowed_from {
            out.extend(list.iter().map(String::as_str));
        }
        out
    }
}

/// A component with its identity, as the rest of the library addresses it.
#[derive(Debug, Clone, Copy)]
pub struct ComponentRef<'a> {
    /// Executor type.
    pub kind: ComponentType,
    /// Name, unique within the deployment; a ref path segment.
    pub name: &'a str,
    /// The config.
    pub component: &'a Component,
}

impl ComponentRef<'_> {
    /// `type/name`, the form `depends_on` uses.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

impl Components {
    /// The group of one type.
    pub fn of(&self, kind: ComponentType) -> &IndexMap<String, Component> {
        match kind {
            ComponentType::Nixpack => &self.nixpack,
            ComponentType::Terraform => &self.terraform,
            ComponentType::Helmfile => &self.helmfile,
            ComponentType::Script => &self.script,
        }
    }

    /// Every component, grouped by type in [`ComponentType::ALL`] order, file order within.
    pub fn iter(&self) -> impl Iterator<Item = ComponentRef<'_>> {
        ComponentType::ALL.into_iter().flat_map(move |kind| {
            self.of(kind)
                .iter()
                .map(move |(name, component)| ComponentRef {
                    kind,
                    name,
                    component,
                })
        })
    }

    /// Number of components of every type.
    pub fn len(&self) -> usize {
        ComponentType::ALL.iter().map(|k| self.of(*k).len()).sum()
    }

    /// True when the deployment has no components at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Find a component by `type/name` (the `depends_on` form).
    pub fn by_id(&self, id: &str) -> Option<ComponentRef<'_>> {
        let (kind, name) = id.split_once('/')?;
        let kind = ComponentType::parse(kind)?;
        let (name, component) = self.of(kind).get_key_value(name)?;
        Some(ComponentRef {
            kind,
            name,
            component,
        })
    }

    /// Find a component by bare name (names are unique across types).
    pub fn by_name(&self, name: &str) -> Option<ComponentRef<'_>> {
        self.iter().find(|c| c.name == name)
    }
}

impl Deployment {
    /// Targets with no promotion block: where code enters the graph.
    pub fn entry_points(&self) -> impl Iterator<Item = &str> {
        self.targets
            .iter()
            .filter(|(_, t)| t.promotion.as_ref().is_none_or(|p| p.sources().is_empty()))
            .map(|(n, _)| n.as_str())
    }
}

/// `gates.hooks[].limits`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Wall-clock cap in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Fuel cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

/// `gates.hooks[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Name shown in decisions.
    pub name: String,
    /// Path of the component, relative to the project root.
    pub wasm: String,
    /// JSON handed to the hook as `config`.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Actions it runs on (default: rollout, promote and rollback; `approve` only when listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<GateAction>,
    /// Caps.
    #[serde(default)]
    pub limits: Limits,
    /// Folders (relative to the project root) the hook may read; nothing else is visible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_only_dirs: Vec<String>,
}

impl HookConfig {
    /// The actions the hook gates: `on`, or without it every action that changes a target
    /// (not approvals).
    pub fn actions(&self) -> Vec<GateAction> {
        if self.on.is_empty() {
            vec![
                GateAction::Rollout,
                GateAction::Promote,
                GateAction::Rollback,
            ]
        } else {
            self.on.clone()
        }
    }

    /// True when the hook gates `action`.
    pub fn runs_on(&self, action: GateAction) -> bool {
        self.actions().contains(&action)
    }
}

/// A `--target` that the deployment does not define.
#[derive(Debug, thiserror::Error)]
#[error("deployment `{deployment}` has no target `{target}`")]
pub struct UnknownTarget {
    /// The deployment.
    pub deployment: String,
    /// The target asked for.
    pub target: String,
    /// A close name, if any.
    pub suggestion: Option<String>,
    /// Every target.
    pub known: Vec<String>,
}

impl UnknownTarget {
    /// Look `target` up in `deployment`, or explain.
    pub fn check(deployment: &Deployment, target: &str) -> Result<(), UnknownTarget> {
        if deployment.targets.contains_key(target) {
            return Ok(());
        }
        let known: Vec<String> = deployment.targets.keys().cloned().collect();
        Err(UnknownTarget {
            deployment: deployment.name.clone(),
            target: target.to_owned(),
            suggestion: did_you_mean(target, known.iter().map(String::as_str)).map(str::to_owned),
            known,
        })
    }
}

impl crate::error::Actionable for UnknownTarget {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Usage
    }

    fn hint(&self) -> Option<String> {
        Some(match &self.suggestion {
            Some(s) => format!("did you mean `{s}`? targets: {}", self.known.join(", ")),
            None => format!("targets: {}", self.known.join(", ")),
        })
    }
}
