//! The typed deployment configuration. These types are the one source of the file format:
//! the JSON Schema `docs/schema/deployment.schema.json` is generated from them (doc comments
//! become its descriptions), files are validated against it before they are built, and a test
//! fails when the published copy is stale.

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contracts::GateAction;
use crate::diagnostic::did_you_mean;

/// Free-form key/value data (vars, settings, context).
pub type Vars = Map<String, Value>;

/// A `deployments/<name>.yaml` file: one deployment, its components and its targets. Add `#
/// yaml-language-server: $schema=<path to this file>` at the top of a deployment file for
/// editor completion.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "atmos deployment")]
pub struct DeploymentFile {
    /// Files merged under this one, in order: paths relative to the deployments folder
    /// (`.yaml` optional) or globs in the last segment (`_defaults/gates/*.yaml`). Mappings
    /// merge key by key, lists replace, `null` removes; this file is merged last.
    #[serde(default, skip_serializing)]
    pub import: Option<Imports>,
    /// The single root key.
    pub deployment: Deployment,
}

/// Components' vars and settings rendered for each target: `(type, name)` → target → forms.
pub type PerTarget = IndexMap<(String, String), IndexMap<String, ForTarget>>;

/// A component's `vars` and `settings` as one target sees them (templates rendered for it);
/// `None` when they hold no template.
#[derive(Debug, Clone, Default)]
pub struct ForTarget {
    /// The rendered `vars`.
    pub vars: Option<Vars>,
    /// The rendered `settings`.
    pub settings: Option<Vars>,
}

/// One import or a list of them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Imports {
    /// One path or glob.
    One(#[schemars(length(min = 1))] String),
    /// Several, merged in order.
    Many(#[schemars(inner(length(min = 1)))] Vec<String>),
}

/// One deployment: a set of components rolled out together to a set of targets.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Must equal the file name without `.yaml`; used as a git ref path segment.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Free text shown by `describe` and `list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// String labels, used by `list --label k=v` and by gates.
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
    /// Targets (environments), in promotion order by convention.
    #[schemars(extend("minProperties" = 1))]
    pub targets: IndexMap<String, Target>,
}

/// Gates evaluated on every rollout, promotion, rollback and approval (docs/gates.md).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// Rego files or folders of .rego files (relative to the project root); .json/.yaml files
    /// beside them are loaded into `data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)), extend("uniqueItems" = true))]
    pub policies: Vec<String>,
    /// WebAssembly components of the atmos:hooks/gate world (wit/hooks.wit), run sandboxed
    /// (docs/hooks.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookConfig>,
}

impl Gates {
    /// True when nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty() && self.hooks.is_empty()
    }
}

/// Deployment-wide context: `default_target`, plus values merged under every component's
/// vars.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct DeploymentContext {
    /// Target used when a command is given no `--target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub default_target: Option<String>,
    /// Every other key: the lowest layer of each component's merged vars.
    #[serde(flatten)]
    pub values: Vars,
}

/// Components grouped by executor type, each group in file order.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Components {
    /// Container images built by nixpacks (or a Dockerfile).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "IndexMap<String, NixpackComponent>")]
    pub nixpack: IndexMap<String, Component>,
    /// Terraform or OpenTofu root modules.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "IndexMap<String, TerraformComponent>")]
    pub terraform: IndexMap<String, Component>,
    /// Helmfile releases.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "IndexMap<String, HelmfileComponent>")]
    pub helmfile: IndexMap<String, Component>,
    /// Machine images built by Packer.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "IndexMap<String, PackerComponent>")]
    pub packer: IndexMap<String, Component>,
    /// Commands atmos runs itself.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "IndexMap<String, ScriptComponent>")]
    pub script: IndexMap<String, Component>,
}

/// The executor type of a component; the first segment of a `depends_on` entry.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ComponentType {
    /// `nixpack`
    Nixpack,
    /// `terraform`
    Terraform,
    /// `helmfile`
    Helmfile,
    /// `packer`
    Packer,
    /// `script`
    Script,
}

impl ComponentType {
    /// Every type, in the order they are listed in files and output.
    pub const ALL: [ComponentType; 5] = [
        ComponentType::Nixpack,
        ComponentType::Terraform,
        ComponentType::Helmfile,
        ComponentType::Packer,
        ComponentType::Script,
    ];

    /// The key used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentType::Nixpack => "nixpack",
            ComponentType::Terraform => "terraform",
            ComponentType::Helmfile => "helmfile",
            ComponentType::Packer => "packer",
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
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
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
    /// `vars` and `settings` with their templates rendered for each target (only when they
    /// hold templates).
    #[serde(skip)]
    #[schemars(skip)]
    pub by_target: IndexMap<String, ForTarget>,
}

impl Component {
    /// The component's own `vars` as seen by `target`: templates rendered for it.
    pub fn vars_for(&self, target: &str) -> &Vars {
        self.by_target
            .get(target)
            .and_then(|f| f.vars.as_ref())
            .unwrap_or(&self.vars)
    }

    /// The component as `target` runs it: `vars` and `settings` rendered for that target.
    pub fn for_target(&self, target: &str) -> Component {
        let mut c = self.clone();
        if let Some(f) = self.by_target.get(target) {
            if let Some(v) = &f.vars {
                c.vars.clone_from(v);
            }
            if let Some(s) = &f.settings {
                c.settings.clone_from(s);
            }
        }
        c
    }
}

/// Labels and dependencies of a component.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentMetadata {
    /// String labels, used by `list --label k=v` and by gates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Components (`type/name`) rolled out before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        inner(regex(pattern = r"^(nixpack|terraform|helmfile|script)/.+$")),
        extend("uniqueItems" = true)
    )]
    pub depends_on: Vec<String>,
}

/// One target (environment).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The target's name (its key under `targets`), set when the file is loaded.
    #[serde(skip)]
    #[schemars(skip)]
    pub name: String,
    /// String labels, used by `list --label k=v` and by gates.
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
    /// The git remote holding this target's records when it is not the project's shared
    /// store (atmos.yaml `git.remote`), e.g. a region's own server: rollouts and approvals
    /// here fetch from and push to it; other commands read it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    pub remote: Option<String>,
    /// The registry (`host[:port][/prefix]`) this target's images are deployed from: a
    /// rollout here copies each image, by digest, from where its build or source target put
    /// it to `<registry>/<last segment of its repository>` (the digest unchanged, checked),
    /// and deploys that copy. The host is a domain with a dot, `host:port` or `localhost` —
    /// never a single word, which would name a Docker Hub account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^(localhost(:[0-9]+)?|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]+)?|[A-Za-z0-9-]+:[0-9]+)(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
    ))]
    pub registry: Option<String>,
    /// The Atmos stack this target is (`atmos.yaml` `stacks`): its Terraform components are the
    /// stack's, resolved as the Atmos CLI resolves them, with what this file sets on top, and
    /// run by Atmos's Terraform contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub stack: Option<String>,
    /// Who runs the stack's components: `atmos` (default: atmos, by Atmos's Terraform
    /// contract) or `atmos-cli` (the installed Atmos CLI: `atmos terraform deploy <component>
    /// -s <stack>`; `ATMOS_CLI` names it when it is not on PATH).
    #[serde(default, skip_serializing_if = "StackRunner::is_default")]
    pub stack_runner: StackRunner,
    /// How a release reaches this target: `canary` deploys in weighted steps with an
    /// analysis between them (see docs/canary.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<super::strategy::Strategy>,
}

/// Who runs a stack's components.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StackRunner {
    /// atmos, by Atmos's Terraform contract.
    #[default]
    Atmos,
    /// The installed Atmos CLI (`atmos terraform deploy <component> -s <stack>`).
    AtmosCli,
}

impl StackRunner {
    fn is_default(&self) -> bool {
        *self == StackRunner::Atmos
    }
}

/// Where this target receives code from. `from` and `allowed_from` are mutually exclusive.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// The single target this one is promoted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub from: Option<String>,
    /// Several possible sources (fan-in). Mutually exclusive with `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        inner(length(min = 1)),
        length(min = 1),
        extend("uniqueItems" = true)
    )]
    pub allowed_from: Option<Vec<String>>,
    /// Whether a rollout here needs recorded approvals.
    #[serde(default)]
    pub requires_approval: bool,
    /// Who must approve a rollout here (when requires_approval is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalRules>,
    /// How approval is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_method: Option<ApprovalMethod>,
    /// Who may roll out to this target (default: anyone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployers: Option<DeployerRules>,
    /// What the images deployed here must prove about how they were built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceRules>,
}

/// Signed build provenance: where `required`, a rollout deploys an image only when a build of
/// its commit carries an in-toto/SLSA provenance of that very digest, signed (DSSE) by its
/// builder's key as atmos.yaml `approvers.allowed_signers` allows it, by an allowed builder.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceRules {
    /// Deploy only images whose provenance verifies (default false: it is only shown to gates).
    #[serde(default)]
    pub required: bool,
    /// Identities allowed to build what runs here (with `from_groups`; both empty: any
    /// identity the allowed signers file has a key for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)), extend("uniqueItems" = true))]
    pub builders: Vec<String>,
    /// Groups (atmos.yaml `approvers.groups`) whose members may build what runs here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)), extend("uniqueItems" = true))]
    pub from_groups: Vec<String>,
}

/// Who may roll out to a target. An identity is verified when the deployer's SSH key
/// (`--signing-key`, or git's `user.signingkey` with `gpg.format=ssh`) is allowed for it in
/// atmos.yaml `approvers.allowed_signers`; the records are then signed with that key.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployerRules {
    /// Only members of these groups (atmos.yaml `approvers.groups`) may roll out here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)), extend("uniqueItems" = true))]
    pub from_groups: Vec<String>,
    /// The deployer's identity must be proven by a signing key allowed for it (default false).
    #[serde(default)]
    pub require_signed: bool,
}

/// Who must approve a rollout, and how approvals count.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRules {
    /// Approvals needed (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min: Option<u32>,
    /// Only approvers in these groups (atmos.yaml approvers.groups) count; default anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)), extend("uniqueItems" = true))]
    pub from_groups: Vec<String>,
    /// Let the deployer or a commit author approve (default false).
    #[serde(default)]
    pub allow_self_approval: bool,
    /// Only approvals with a valid SSH signature (atmos.yaml approvers.allowed_signers) count.
    #[serde(default)]
    pub require_signed: bool,
}

/// `recorded` (default): approvals recorded with `atmos deployment approve`. `manual`: the
/// person running the rollout confirms in an interactive terminal; refused without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
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

    /// How long the component's commands may run (`settings.<type>.timeout`), if set;
    /// `Err` names the setting and what is wrong with it.
    pub fn timeout(&self) -> Result<Option<std::time::Duration>, String> {
        let Some(value) = self
            .component
            .settings
            .get(self.kind.as_str())
            .and_then(|s| s.get("timeout"))
        else {
            return Ok(None);
        };
        let problem = |p: String| format!("settings.{}.timeout of {}: {p}", self.kind, self.name);
        match value.as_str() {
            Some(text) => match crate::duration::parse(text).map_err(problem)? {
                // A zero timeout would fail every command before it starts.
                d if d.is_zero() => Err(problem(format!(
                    "`{text}` would stop every command at once; use 30s or more"
                ))),
                d => Ok(Some(d)),
            },
            None => Err(problem("must be a duration such as 30m".into())),
        }
    }
}

impl ComponentRef<'_> {
    fn owner(&self) -> super::probes::Owner<'_> {
        super::probes::Owner {
            kind: self.kind.as_str(),
            name: self.name,
        }
    }

    fn setting(&self, key: &str) -> Option<&Value> {
        self.component
            .settings
            .get(self.kind.as_str())
            .and_then(|s| s.get(key))
    }

    /// The folders and files this component is made of, relative to the project root (its
    /// `source`, terraform `dir`, helmfile `file`, nixpack `path` and `dockerfile`); empty
    /// when its settings name none (a script without `source`).
    pub fn paths(&self) -> Vec<String> {
        let text = |key: &str| self.setting(key).and_then(Value::as_str).map(str::to_owned);
        let mut out: Vec<String> = ["source", "dockerfile"]
            .iter()
            .filter_map(|k| text(k))
            .collect();
        match self.kind {
            ComponentType::Terraform => out
                .push(text("dir").unwrap_or_else(|| format!("components/terraform/{}", self.name))),
            ComponentType::Helmfile => {
                out.push(text("file").unwrap_or_else(|| "helmfile.yaml".to_owned()))
            }
            ComponentType::Packer => {
                out.push(text("dir").unwrap_or_else(|| format!("components/packer/{}", self.name)))
            }
            ComponentType::Nixpack => out.extend(text("path")),
            ComponentType::Script => {}
        }
        out.sort();
        out.dedup();
        out
    }

    /// `settings.<type>.verify`, if set; `Err` names the setting and what is wrong.
    pub fn verify(&self) -> Result<Option<super::probes::Verify>, String> {
        super::probes::verify(self.owner(), self.setting("verify"))
    }

    /// `settings.<type>.health`, if set; `Err` names the setting and what is wrong.
    pub fn health(&self) -> Result<Option<super::probes::Health>, String> {
        super::probes::health(self.owner(), self.setting("health"))
    }
}

impl Components {
    /// The group of one type.
    pub fn of(&self, kind: ComponentType) -> &IndexMap<String, Component> {
        match kind {
            ComponentType::Nixpack => &self.nixpack,
            ComponentType::Terraform => &self.terraform,
            ComponentType::Helmfile => &self.helmfile,
            ComponentType::Packer => &self.packer,
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
    /// The deployment as `target` runs it: every component's `vars` and `settings` rendered
    /// for that target (a copy only when some component has templates).
    pub fn for_target(&self, target: &str) -> std::borrow::Cow<'_, Deployment> {
        let templated = self
            .components
            .iter()
            .any(|c| !c.component.by_target.is_empty());
        if !templated {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut d = self.clone();
        for group in [
            &mut d.components.nixpack,
            &mut d.components.terraform,
            &mut d.components.helmfile,
            &mut d.components.script,
        ] {
            for c in group.values_mut() {
                *c = c.for_target(target);
            }
        }
        std::borrow::Cow::Owned(d)
    }

    /// Complete a freshly deserialized deployment: each target learns its name, each
    /// component its vars rendered per target.
    pub fn attach(&mut self, per_target: PerTarget) {
        for (name, t) in self.targets.iter_mut() {
            t.name.clone_from(name);
        }
        for ((kind, name), vars) in per_target {
            let group = match kind.as_str() {
                "nixpack" => &mut self.components.nixpack,
                "terraform" => &mut self.components.terraform,
                "helmfile" => &mut self.components.helmfile,
                _ => &mut self.components.script,
            };
            if let Some(c) = group.get_mut(&name) {
                c.by_target = vars;
            }
        }
    }

    /// Targets with no promotion block: where code enters the graph.
    pub fn entry_points(&self) -> impl Iterator<Item = &str> {
        self.targets
            .iter()
            .filter(|(_, t)| t.promotion.as_ref().is_none_or(|p| p.sources().is_empty()))
            .map(|(n, _)| n.as_str())
    }
}

/// Caps of one hook evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear-memory cap in MiB (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4096))]
    pub memory_mb: Option<u64>,
    /// Wall-clock cap in ms (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600000))]
    pub timeout_ms: Option<u64>,
    /// Instruction budget (default 1000000000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub fuel: Option<u64>,
}

/// A WebAssembly hook bound as a gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Shown in decisions as `hook:<name>`; unique per target.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub name: String,
    /// Path of the component (.wasm), relative to the project root.
    #[schemars(length(min = 1))]
    pub wasm: String,
    /// Any JSON/YAML value, handed to the hook's `evaluate` as `config` (JSON text).
    #[serde(default)]
    pub config: serde_json::Value,
    /// Actions the hook runs on; default: rollout, promote and rollback (approve only when
    /// listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("uniqueItems" = true))]
    pub on: Vec<GateAction>,
    /// Caps of one evaluation.
    #[serde(default)]
    pub limits: Limits,
    /// Folders (relative to the project root) the hook may read, mounted read-only at the
    /// same relative path. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)), extend("uniqueItems" = true))]
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

// The executor settings of each component type, as typed shapes: the JSON Schema of
// deployment files states them per type (see `Components`), so a misspelt setting is located
// and explained before anything runs. Other keys under `settings` are kept for the user's own
// tooling.

/// A `script` component: commands atmos runs itself.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptComponent {
    /// Labels and dependencies.
    #[serde(default)]
    pub metadata: ComponentMetadata,
    /// Inputs of the component, merged with the target's context (`ATMOS_VARS_FILE`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Vars,
    /// Executor settings; keys other than `script` are kept for your own tooling.
    pub settings: ScriptSettingsBlock,
}

/// `settings` of a `script` component.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ScriptSettingsBlock {
    /// What atmos runs.
    pub script: ScriptSettings,
    /// Anything else, for your own tooling.
    #[serde(flatten)]
    pub other: Vars,
}

/// The commands of a `script` component.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptSettings {
    /// Run by `sh -c` in the repo root on rollout.
    #[schemars(length(min = 1))]
    pub apply: String,
    /// Run by `sh -c` in the repo root on `rollout --plan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub plan: Option<String>,
    /// Run by `sh -c` in the repo root on `build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub build: Option<String>,
    /// Folder whose lockfiles describe this component in the SBOM, relative to the project
    /// root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub source: Option<String>,
    /// The longest this component's commands may run in one rollout or build (45s, 30m,
    /// 2h; default 1h); then the running command's process group is stopped and the
    /// component fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^0*[1-9][0-9]*[smhdw]$"))]
    pub timeout: Option<String>,
    /// A check run after the apply commands succeed, with retries; a failure fails the
    /// rollout and, with `on_failure: rollback`, deploys the previous commit again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::probes::VerifySettings>,
    /// A command printing the component's health as JSON (`status --check-health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::probes::HealthSettings>,
}

/// A `terraform` component: a Terraform or OpenTofu root module.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerraformComponent {
    /// Labels and dependencies.
    #[serde(default)]
    pub metadata: ComponentMetadata,
    /// Inputs of the component, merged with the target's context (passed as a var file).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Vars,
    /// Executor settings; keys other than `terraform` are kept for your own tooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<TerraformSettingsBlock>,
}

/// `settings` of a `terraform` component.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TerraformSettingsBlock {
    /// How atmos runs terraform/tofu (docs/executors.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform: Option<TerraformSettings>,
    /// Anything else, for your own tooling.
    #[serde(flatten)]
    pub other: Vars,
}

/// How atmos runs terraform or tofu.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerraformSettings {
    /// Executable: a name looked up on PATH, or a path relative to the project root. Default
    /// terraform (use tofu for OpenTofu); ATMOS_TERRAFORM_BIN overrides the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub binary: Option<String>,
    /// Root module folder, relative to the project root. Default `components/terraform/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub dir: Option<String>,
    /// Terraform workspace. Default: the target name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub workspace: Option<String>,
    /// Folder whose lockfiles describe this component in the SBOM, relative to the project
    /// root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub source: Option<String>,
    /// The longest this component's commands may run in one rollout or build (45s, 30m,
    /// 2h; default 1h); then the running command's process group is stopped and the
    /// component fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^0*[1-9][0-9]*[smhdw]$"))]
    pub timeout: Option<String>,
    /// A check run after the apply commands succeed, with retries; a failure fails the
    /// rollout and, with `on_failure: rollback`, deploys the previous commit again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::probes::VerifySettings>,
    /// A command printing the component's health as JSON (`status --check-health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::probes::HealthSettings>,
}

/// A `helmfile` component: a Helmfile release set.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelmfileComponent {
    /// Labels and dependencies.
    #[serde(default)]
    pub metadata: ComponentMetadata,
    /// Inputs of the component, merged with the target's context (passed as state values).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Vars,
    /// Executor settings; keys other than `helmfile` are kept for your own tooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<HelmfileSettingsBlock>,
}

/// `settings` of a `helmfile` component.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct HelmfileSettingsBlock {
    /// How atmos runs helmfile (docs/executors.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helmfile: Option<HelmfileSettings>,
    /// Anything else, for your own tooling.
    #[serde(flatten)]
    pub other: Vars,
}

/// How atmos runs helmfile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelmfileSettings {
    /// Executable: a name looked up on PATH, or a path relative to the project root. Default
    /// helmfile; ATMOS_HELMFILE_BIN overrides the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub binary: Option<String>,
    /// helmfile.yaml path relative to the project root. Default helmfile.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub file: Option<String>,
    /// Helmfile environment. Default: the target name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub environment: Option<String>,
    /// Folder whose lockfiles describe this component in the SBOM, relative to the project
    /// root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub source: Option<String>,
    /// The longest this component's commands may run in one rollout or build (45s, 30m,
    /// 2h; default 1h); then the running command's process group is stopped and the
    /// component fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^0*[1-9][0-9]*[smhdw]$"))]
    pub timeout: Option<String>,
    /// A check run after the apply commands succeed, with retries; a failure fails the
    /// rollout and, with `on_failure: rollback`, deploys the previous commit again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::probes::VerifySettings>,
    /// A command printing the component's health as JSON (`status --check-health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::probes::HealthSettings>,
}

/// A `packer` component: a machine image built by Packer.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackerComponent {
    /// Labels and dependencies.
    #[serde(default)]
    pub metadata: ComponentMetadata,
    /// Inputs of the component, merged with the target's context (passed as a JSON var file).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Vars,
    /// Executor settings; keys other than `packer` are kept for your own tooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<PackerSettingsBlock>,
}

/// `settings` of a `packer` component.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PackerSettingsBlock {
    /// How atmos runs packer (docs/executors.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packer: Option<PackerSettings>,
    /// Anything else, for your own tooling.
    #[serde(flatten)]
    pub other: Vars,
}

/// How atmos runs packer.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackerSettings {
    /// Executable: a name looked up on PATH, or a path relative to the project root. Default
    /// packer; ATMOS_PACKER_BIN overrides the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub binary: Option<String>,
    /// The template's folder, relative to the project root. Default
    /// `components/packer/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub dir: Option<String>,
    /// The template, relative to `dir`: a file, or `.` for every template of the folder
    /// (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub template: Option<String>,
    /// Folder whose lockfiles describe this component in the SBOM, relative to the project
    /// root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub source: Option<String>,
    /// The longest this component's commands may run in one rollout (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^0*[1-9][0-9]*[smhdw]$"))]
    pub timeout: Option<String>,
    /// A check run after the build succeeds, with retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::probes::VerifySettings>,
    /// A command printing the component's health as JSON (`status --check-health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::probes::HealthSettings>,
}

/// A `nixpack` component: a container image.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NixpackComponent {
    /// Labels and dependencies.
    #[serde(default)]
    pub metadata: ComponentMetadata,
    /// Inputs of the component, merged with the target's context; `image.{registry, name,
    /// tag}` names the image.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Vars,
    /// Executor settings; keys other than `nixpack` are kept for your own tooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<NixpackSettingsBlock>,
}

/// `settings` of a `nixpack` component.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NixpackSettingsBlock {
    /// How atmos builds the image (docs/executors.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nixpack: Option<NixpackSettings>,
    /// Anything else, for your own tooling.
    #[serde(flatten)]
    pub other: Vars,
}

/// Image builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageBuilder {
    /// `nixpacks build` (the default).
    Nixpacks,
    /// `docker build` with a Dockerfile.
    Docker,
    /// `podman build` with a Dockerfile.
    Podman,
    /// `buildah bud` with a Dockerfile.
    Buildah,
}

/// How atmos builds a nixpack component's image.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NixpackSettings {
    /// Executable: a name looked up on PATH, or a path relative to the project root. Default
    /// nixpacks; ATMOS_NIXPACKS_BIN overrides the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub binary: Option<String>,
    /// Source folder relative to the project root. Default: the project root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub path: Option<String>,
    /// Folder whose lockfiles describe this component in the SBOM, relative to the project
    /// root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub source: Option<String>,
    /// Image builder (default nixpacks; docker, podman and buildah build a Dockerfile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<ImageBuilder>,
    /// Dockerfile for docker/podman/buildah, relative to the project root (default
    /// `<path>/Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub dockerfile: Option<String>,
    /// Shell command that deploys the built image at rollout (`sh -c` in the project root,
    /// with ATMOS_IMAGE and ATMOS_IMAGE_DIGEST). Without it a rollout records the image it
    /// deploys and runs nothing. A rollout never builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub deploy: Option<String>,
    /// Shell command for `rollout --plan` (`sh -c`, same variables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub plan: Option<String>,
    /// The longest this component's commands may run in one rollout or build (45s, 30m,
    /// 2h; default 1h); then the running command's process group is stopped and the
    /// component fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^0*[1-9][0-9]*[smhdw]$"))]
    pub timeout: Option<String>,
    /// A check run after the apply commands succeed, with retries; a failure fails the
    /// rollout and, with `on_failure: rollback`, deploys the previous commit again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::probes::VerifySettings>,
    /// A command printing the component's health as JSON (`status --check-health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::probes::HealthSettings>,
}
