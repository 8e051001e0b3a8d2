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
    /// Executor settings, as this target runs them (templates rendered).
    pub settings: Vars,
    /// Merged vars with provenance (for a stack's component: the stack's, with the deployment
    /// file's on top).
    pub vars: MergedVars,
    /// For a target bound to an Atmos stack, the stack's component as the Atmos CLI resolves
    /// it (Terraform components).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackComponent>,
}

/// A stack's component, as `describe` shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StackComponent {
    /// The stack.
    pub stack: String,
    /// Its top-level manifest (relative to the stacks folder, no extension).
    pub stack_file: String,
    /// The files it imports.
    pub imports: Vec<String>,
    /// The component's folder, relative to the project root.
    pub folder: String,
    /// The Terraform workspace.
    pub workspace: String,
    /// The varfile written into the folder.
    pub varfile: String,
    /// Base components, nearest first.
    pub inheritance: Vec<String>,
    /// The stack's `settings` for it.
    pub settings: serde_json::Value,
    /// The stack's `env` for it.
    pub env: serde_json::Value,
    /// `vars.<path>`, `settings.<path>`, `env.<path>` → the `file:line` that set it.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sources: std::collections::BTreeMap<String, String>,
    /// Why it cannot be resolved (then nothing else is meaningful).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    /// The files merged under the deployment file, in merge order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<PathBuf>,
    /// Where every value of the processed config was set: dotted path
    /// (`targets.prod.promotion.from`) → `file:line`.
    pub sources: IndexMap<String, String>,
}

/// `file:line` of the node at `pointer`.
fn at(loaded: &LoadedDeployment, pointer: &str) -> Option<String> {
    let (source, pos) = loaded.processed.locate(pointer)?;
    let line = pos.map(|p| p.key.unwrap_or(p.value).line)?;
    Some(format!("{}:{line}", source.file.display()))
}

/// Every leaf under `value` (at `pointer`, dotted `path`) with where it was set.
fn leaves(
    loaded: &LoadedDeployment,
    value: &serde_json::Value,
    (path, pointer): (&str, &str),
    out: &mut IndexMap<String, String>,
) {
    use crate::config::source_map::escape_segment;
    let join = |k: &str| {
        let p = if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        };
        (p, format!("{pointer}/{}", escape_segment(k)))
    };
    match value {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let (p, ptr) = join(k);
                leaves(loaded, v, (&p, &ptr), out);
            }
        }
        serde_json::Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                let (p, ptr) = join(&i.to_string());
                leaves(loaded, v, (&p, &ptr), out);
            }
        }
        _ => {
            if let Some(a) = at(loaded, pointer) {
                out.insert(path.to_owned(), a);
            }
        }
    }
}

/// `merged` with each value's `file:line` filled in.
fn located(
    loaded: &LoadedDeployment,
    kind: ComponentType,
    component: &str,
    target: &str,
    mut merged: MergedVars,
) -> MergedVars {
    use crate::config::merge::VarSource;
    use crate::config::source_map::escape_segment;
    for prov in merged.provenance.values_mut() {
        let base = match prov.source {
            VarSource::DeploymentContext => "/deployment/context".to_owned(),
            VarSource::ComponentVars => format!(
                "/deployment/components/{kind}/{}/vars",
                escape_segment(component)
            ),
            VarSource::TargetContext => {
                format!("/deployment/targets/{}/context", escape_segment(target))
            }
            // A stack's value is located by the stack, not in the deployment file.
            VarSource::Stack => continue,
        };
        prov.at = at(loaded, &format!("{base}{}", prov.pointer));
    }
    merged
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
                    .map(|c| {
                        let vars = located(loaded, c.kind, c.name, name, merge_vars(d, &c, t));
                        let (vars, stack) = match (&t.stack, c.kind) {
                            (Some(stack), ComponentType::Terraform) => {
                                with_stack(project, stack, "terraform", c.name, vars, t)
                            }
                            (Some(stack), ComponentType::Helmfile) => {
                                with_stack(project, stack, "helmfile", c.name, vars, t)
                            }
                            (Some(stack), ComponentType::Packer) => {
                                with_stack(project, stack, "packer", c.name, vars, t)
                            }
                            _ => (vars, None),
                        };
                        ResolvedComponent {
                            name: c.name.to_owned(),
                            kind: c.kind,
                            depends_on: c.component.metadata.depends_on.clone(),
                            labels: c.component.metadata.labels.clone(),
                            settings: c.component.for_target(name).settings,
                            vars,
                            stack,
                        }
                    })
                    .collect(),
            })
        }
    };
    let mut sources = IndexMap::new();
    leaves(loaded, &loaded.processed.value, ("", ""), &mut sources);
    let sources = sources
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("deployment.")?.to_owned(), v)))
        .collect();
    let sources_of = &loaded.processed.sources;
    Ok(DescribeReport {
        file: loaded.file.clone(),
        deployment: d.clone(),
        target,
        imports: sources_of[..sources_of.len().saturating_sub(1)]
            .iter()
            .map(|s| s.file.clone())
            .collect(),
        sources,
    })
}

/// The stack's component `name` of `stack` (from the work tree), and `vars` over the stack's:
/// every leaf of the stack's vars the deployment file does not set is shown as the stack's.
fn with_stack(
    project: &crate::config::Project,
    stack: &str,
    kind: &str,
    name: &str,
    mut vars: MergedVars,
    target: &crate::config::Target,
) -> (MergedVars, Option<StackComponent>) {
    // Run by the Atmos CLI, the component gets the stack's values alone: nothing of the
    // deployment file's is shown as deployed.
    if target.stack_runner == crate::config::model::StackRunner::AtmosCli {
        vars = MergedVars::default();
    }
    let resolved = crate::stacks::StackSettings::read(&project.settings, kind)
        .ok_or(crate::stacks::StackError::NoStacks)
        .and_then(|settings| {
            let source = crate::config::source::WorkTree::new(&project.root);
            crate::stacks::Stacks::new(&source, settings).component(stack, kind, name)
        });
    let r = match resolved {
        Ok(r) => r,
        Err(e) => {
            let view = StackComponent {
                stack: stack.to_owned(),
                stack_file: String::new(),
                imports: Vec::new(),
                folder: String::new(),
                workspace: String::new(),
                varfile: String::new(),
                inheritance: Vec::new(),
                settings: serde_json::Value::Null,
                env: serde_json::Value::Null,
                sources: Default::default(),
                error: Some(e.to_string()),
            };
            return (vars, Some(view));
        }
    };
    let fallback = format!("stack {} ({} and its imports)", r.stack, r.stack_file);
    let mut leaves = Vec::new();
    stack_leaves(&r.vars, "", &mut leaves);
    let mut provenance = IndexMap::new();
    for (path, value) in leaves {
        let at = match r.sources.get(&format!("vars.{path}")) {
            Some(file_line) => format!("stack {}, {file_line}", r.stack),
            None => fallback.clone(),
        };
        match vars.provenance.get_mut(&path) {
            Some(p) => p
                .overrides
                .insert(0, crate::config::merge::VarSource::Stack),
            None => {
                provenance.insert(
                    path,
                    crate::config::merge::Provenance {
                        value,
                        source: crate::config::merge::VarSource::Stack,
                        overrides: Vec::new(),
                        at: Some(at.clone()),
                        pointer: String::new(),
                    },
                );
            }
        }
    }
    provenance.extend(vars.provenance);
    vars.provenance = provenance;
    let mut all = r.vars.clone();
    crate::stacks::merge::merge(
        &mut all,
        &serde_json::Value::Object(vars.values.clone().into_iter().collect()),
        crate::stacks::merge::ListMerge::Replace,
    );
    vars.values = all
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let view = StackComponent {
        stack: r.stack,
        stack_file: r.stack_file,
        imports: r.imports,
        folder: r.folder,
        workspace: r.workspace,
        varfile: r.varfile,
        inheritance: r.inheritance,
        settings: r.settings,
        env: r.env,
        sources: r.sources,
        error: None,
    };
    (vars, Some(view))
}

/// Dotted leaf paths of `v` (maps recurse; lists and scalars are leaves).
fn stack_leaves(v: &serde_json::Value, at: &str, out: &mut Vec<(String, serde_json::Value)>) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                stack_leaves(x, &path, out);
            }
        }
        _ if at.is_empty() => {}
        other => out.push((at.to_owned(), other.clone())),
    }
}

crate::document!(DescribeReport => "DescribeReport");
