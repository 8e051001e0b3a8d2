//! `describe`: a deployment's resolved config, and for one target each component's vars
//! merged with the target's context, with where every value came from.

use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Serialize;

use crate::config::UnknownTarget;
use crate::config::merge::{MergedVars, merge_vars};
use crate::config::model::{Deployment, Vars};
use crate::config::{ComponentType, LoadedDeployment};

/// One component as resolved for a target.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ResolvedComponent {
    /// Component name.
    pub name: String,
    /// Executor type.
    #[serde(rename = "type")]
    pub kind: ComponentType,
    /// `type/name` of the components rolled out first.
    pub depends_on: Vec<String>,
    /// Component labels.
    pub labels: IndexMap<String, String>,
    /// Executor settings, as written.
    pub settings: Vars,
    /// Merged vars with provenance.
    pub vars: MergedVars,
}

/// One target as resolved.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ResolvedTarget {
    /// Target name.
    pub name: String,
    /// Target labels.
    pub labels: IndexMap<String, String>,
    /// The target's own context.
    pub context: Vars,
    /// Allowed sources (empty for an entry point).
    pub promotion_from: Vec<String>,
    /// Whether approvals are needed.
    pub requires_approval: bool,
    /// Rego policy paths bound to the target (`atmos.yaml`'s, the deployment's, the
    /// target's), as in the work tree.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// WebAssembly hooks bound to the target (deployment's and target's, merged by name).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<crate::config::model::HookConfig>,
    /// Every component, resolved for this target.
    pub components: Vec<ResolvedComponent>,
}

/// The `describe` report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DescribeReport {
    /// The file, relative to the project root.
    pub file: PathBuf,
    /// The deployment, as parsed (defaults filled in).
    pub deployment: Deployment,
    /// Present with `--target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<ResolvedTarget>,
}

/// Build the report; with `target`, resolve every component for it.
pub fn describe(
    project: &crate::config::Project,
    loaded: &LoadedDeployment,
    target: Option<&str>,
) -> Result<DescribeReport, UnknownTarget> {
    let d = &loaded.deployment;
    let target = match target {
        None => None,
        Some(name) => {
            UnknownTarget::check(d, name)?;
            let t = &d.targets[name];
            Some(ResolvedTarget {
                name: name.to_owned(),
                labels: t.labels.clone(),
                context: t.context.clone(),
                promotion_from: t
                    .promotion
                    .as_ref()
                    .map(|p| p.sources().into_iter().map(str::to_owned).collect())
                    .unwrap_or_default(),
                requires_approval: t.promotion.as_ref().is_some_and(|p| p.requires_approval),
                policies: crate::gates::bound_policies(project, loaded, name),
                hooks: crate::gates::bound_hooks(loaded, name),
                components: d
                    .components
                    .iter()
                    .map(|c| ResolvedComponent {
                        name: c.name.to_owned(),
                        kind: c.kind,
                        depends_on: c.component.metadata.depends_on.clone(),
                        labels: c.component.metadata.labels.clone(),
                        settings: c.component.settings.clone(),
                        vars: merge_vars(d, &c, t),
                    })
                    .collect(),
            })
        }
    };
    Ok(DescribeReport {
        file: loaded.file.clone(),
        deployment: d.clone(),
        target,
    })
}

crate::document!(DescribeReport => "DescribeReport");
