//! `validate`: every check of a deployment file, grouped the way the report shows them
//! (✓/✗ lines), with the located diagnostics and a summary of what the file defines.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::{Project, ProjectError, checks};
use crate::diagnostic::{Code, Diagnostic};
use crate::promotion::PromotionGraph;

/// Outcome of one group of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Every check of the group passed.
    Passed,
    /// At least one failed.
    Failed,
    /// Not run, because the file could not be parsed.
    Skipped,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Check {
    /// What was checked, as a sentence that is true when it passed.
    pub name: &'static str,
    /// Result.
    pub status: CheckStatus,
}

/// What a valid file defines.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Summary {
    /// Target names in file order.
    pub targets: Vec<String>,
    /// Component ids (`type/name`).
    pub components: Vec<String>,
    /// Every promotion path from an entry point.
    pub promotion_paths: Vec<Vec<String>>,
    /// Every allowed promotion, `from → to` (shown with `--check-promotions`).
    pub promotions: Vec<crate::promotion::Edge>,
}

/// The validation of one deployment file.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeploymentValidation {
    /// Deployment (file stem).
    pub name: String,
    /// The file, relative to the project root.
    pub file: PathBuf,
    /// True when no check failed.
    pub valid: bool,
    /// The groups of checks.
    pub checks: Vec<Check>,
    /// Every problem found, located.
    pub diagnostics: Vec<Diagnostic>,
    /// Present when the file parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// The `validate` report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ValidationReport {
    /// True when every deployment is valid.
    pub valid: bool,
    /// One entry per deployment file.
    pub deployments: Vec<DeploymentValidation>,
}

/// The check groups, in report order, and the diagnostic codes that fail each.
const GROUPS: &[(&str, &[Code])] = &[
    (
        "Deployment configuration is valid",
        &[
            Code::Io,
            Code::Encoding,
            Code::Empty,
            Code::YamlSyntax,
            Code::DuplicateKey,
            Code::UnknownKey,
            Code::MissingKey,
            Code::WrongType,
            Code::Schema,
            Code::Import,
            Code::YamlFunction,
            Code::Template,
        ],
    ),
    (
        "Names are valid git ref segments",
        &[Code::NameMismatch, Code::InvalidName, Code::ComponentClash],
    ),
    ("All targets defined", &[Code::UnknownTarget]),
    ("All components exist", &[Code::UnknownDependency]),
    (
        "Component dependencies valid (no cycles)",
        &[Code::DependencyCycle],
    ),
    (
        "Promotion paths valid (no cycles)",
        &[
            Code::PromotionCycle,
            Code::SelfPromotion,
            Code::ConflictingPromotion,
        ],
    ),
    (
        "Approval and deployer rules apply",
        &[Code::IneffectiveSetting, Code::UnknownGroup],
    ),
    ("Policies compile", &[Code::Policy]),
    ("Hooks load and fit the gate world", &[Code::Hook]),
    ("Canary strategies can run", &[Code::Strategy]),
    ("Stack components resolve", &[Code::Stack]),
];

/// Validate one deployment by name.
pub fn validate_one(project: &Project, name: &str) -> Result<ValidationReport, ProjectError> {
    let files = project.deployment_files()?;
    let Some((_, path)) = files.iter().find(|(stem, _)| stem == name) else {
        // Reuse the lookup's error (with its suggestion).
        return Err(project
            .load(name)
            .err()
            .unwrap_or(ProjectError::UnknownDeployment {
                name: name.to_owned(),
                suggestion: None,
                known: Vec::new(),
                dir: project.deployments_dir.clone(),
            }));
    };
    Ok(report(vec![validate_file(project, name, path)]))
}

/// Validate every deployment file of the project.
pub fn validate_all(project: &Project) -> Result<ValidationReport, ProjectError> {
    let files = project.deployment_files()?;
    Ok(report(
        files
            .iter()
            .map(|(name, path)| validate_file(project, name, path))
            .collect(),
    ))
}

/// Every bound hook compiled and checked against the `atmos:hooks/gate` world, and hook
/// names unique per level; each problem located at its `wasm:` line.
fn hook_diagnostics(
    project: &Project,
    loaded: &crate::config::LoadedDeployment,
) -> Vec<Diagnostic> {
    let d = &loaded.deployment;
    let mut levels: Vec<(String, &[crate::config::model::HookConfig])> = vec![(
        "/deployment/gates/hooks".to_owned(),
        d.gates.hooks.as_slice(),
    )];
    for (name, t) in &d.targets {
        levels.push((
            format!(
                "/deployment/targets/{}/gates/hooks",
                crate::config::source_map::escape_segment(name)
            ),
            t.gates.hooks.as_slice(),
        ));
    }
    let git_dir = project.root.join(".git");
    let cache = git_dir
        .is_dir()
        .then(|| crate::gates::wasm_cache_dir(&git_dir));
    let mut out = Vec::new();
    for (base, hooks) in levels {
        if hooks.is_empty() {
            continue;
        }
        for (i, h) in hooks.iter().enumerate() {
            if hooks[..i].iter().any(|o| o.name == h.name) {
                out.push(
                    loaded
                        .error_at(
                            Code::Hook,
                            &format!("{base}/{i}/name"),
                            false,
                            format!("hook `{}` is bound twice at this level", h.name),
                        )
                        .hint("give each hook its own name; a target hook with a deployment hook's name replaces it"),
                );
            }
        }
        let set = match crate::gates::wasm::HookSet::load(&project.root, hooks, cache.as_deref()) {
            Ok(set) => set,
            Err(e) => {
                out.push(Diagnostic::error(Code::Hook, &loaded.file, e.to_string()));
                return out;
            }
        };
        for (name, problem) in set.problems() {
            let i = hooks
                .iter()
                .position(|h| h.name == name)
                .unwrap_or_default();
            out.push(
                loaded
                    .error_at(
                        Code::Hook,
                        &format!("{base}/{i}/wasm"),
                        false,
                        format!("hook `{name}` cannot run: {problem}"),
                    )
                    .hint(hook_hint(&problem)),
            );
        }
    }
    out
}

/// What to do about a hook that cannot run.
fn hook_hint(problem: &crate::gates::wasm::HookError) -> String {
    use crate::gates::wasm::HookError;
    let fix = match problem {
        HookError::Missing { path } => format!(
            "build the hook (`cargo build --release --target wasm32-wasip2`, guests/README.md) \
             and put it at `{path}`, or fix the path"
        ),
        HookError::NotAComponent { .. } => {
            "build it for `wasm32-wasip2`, which makes a component; `wasm32-unknown-unknown` and \
             `wasm32-wasip1` make core modules"
                .to_owned()
        }
        HookError::WrongWorld { .. } => "generate the guest's bindings from this repository's \
             wit/hooks.wit: `wit_bindgen::generate!({ world: \"gate\", path: \"../../wit\" })` \
             from guests/<name>/ (the path is relative to the guest's Cargo.toml; docs/hooks.md)"
            .to_owned(),
        HookError::Runtime(_) => "see the message; this is not the hook's fault".to_owned(),
        HookError::NotAFile { path, .. } => {
            format!("point `wasm:` at the built component file, not at `{path}`")
        }
    };
    format!("{fix}; until then every action it gates is denied")
}

/// Where the policy `path` is bound: `file:line` of the binding in the deployment file or an
/// import, else `atmos.yaml`.
fn binding_site(loaded: &crate::config::LoadedDeployment, wanted: &str) -> String {
    use crate::config::source_map::pointer;
    let d = &loaded.deployment;
    let hit = |list: &[String]| {
        list.iter().position(|p| {
            let p = p.trim_end_matches('/');
            wanted == p || wanted.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
        })
    };
    let mut at = hit(&d.gates.policies)
        .map(|i| pointer(&["deployment", "gates", "policies", &i.to_string()]));
    for (name, t) in &d.targets {
        if at.is_none() {
            at = hit(&t.gates.policies).map(|i| {
                pointer(&[
                    "deployment",
                    "targets",
                    name,
                    "gates",
                    "policies",
                    &i.to_string(),
                ])
            });
        }
    }
    let located = at.and_then(|p| {
        let (source, pos) = loaded.processed.locate(&p)?;
        Some(format!("{}:{}", source.file.display(), pos?.value.line))
    });
    located.unwrap_or_else(|| crate::config::project::SETTINGS_FILE.to_owned())
}

/// Every bound policy path loaded and compiled; each problem located in its policy file.
fn policy_diagnostics(
    project: &Project,
    loaded: &crate::config::LoadedDeployment,
) -> Vec<Diagnostic> {
    let paths = crate::gates::all_bound_policies(project, loaded);
    if paths.is_empty() {
        return Vec::new();
    }
    let set = crate::gates::rego::PolicySet::load(
        &project.root,
        &paths,
        crate::gates::policy_timeout(project),
    );
    set.errors()
        .iter()
        .map(|e| {
            // regorus messages start with "file:line:col: ".
            let mut parts = e.message.splitn(4, ':');
            let located = (parts.next(), parts.next(), parts.next(), parts.next());
            let (span, message) = match located {
                (Some(f), Some(l), Some(c), Some(rest)) if f == e.file => (
                    l.trim()
                        .parse()
                        .ok()
                        .zip(c.trim().parse().ok())
                        .map(|(line, column)| crate::config::source_map::Span { line, column }),
                    rest.trim().to_owned(),
                ),
                _ => (None, e.message.clone()),
            };
            let text = std::fs::read_to_string(project.root.join(&e.file)).ok();
            Diagnostic::error(
                Code::Policy,
                &e.file,
                format!("policy does not load: {message}"),
            )
            .at(span, text.as_deref())
            .hint(format!(
                "every rollout to a target bound to it is denied until this is fixed (bound by {})",
                binding_site(loaded, &e.file)
            ))
        })
        .collect()
}

/// Approval and deployer rules: groups `atmos.yaml` defines, and settings that only apply
/// with `requires_approval`.
fn group_diagnostics(
    project: &Project,
    loaded: &crate::config::LoadedDeployment,
) -> Vec<Diagnostic> {
    use crate::config::source_map::pointer;
    let groups = &project.settings.approvers.groups;
    let mut out = Vec::new();
    for (name, target) in &loaded.deployment.targets {
        let Some(p) = &target.promotion else {
            continue;
        };
        let base = pointer(&["deployment", "targets", name, "promotion"]);
        if !p.requires_approval {
            for (key, set) in [
                ("approvals", p.approvals.is_some()),
                ("approval_method", p.approval_method.is_some()),
            ] {
                if set {
                    out.push(
                        loaded
                            .error_at(
                                Code::IneffectiveSetting,
                                &format!("{base}/{key}"),
                                true,
                                format!("`{key}` of target `{name}` has no effect: it does not set `requires_approval: true`"),
                            )
                            .hint("add `requires_approval: true`, or remove it")
                            .warning(),
                    );
                }
            }
        }
        let named = p
            .approvals
            .iter()
            .flat_map(|a| {
                a.from_groups
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (format!("{base}/approvals/from_groups/{i}"), g))
            })
            .chain(p.deployers.iter().flat_map(|d| {
                d.from_groups
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (format!("{base}/deployers/from_groups/{i}"), g))
            }))
            .chain(p.provenance.iter().flat_map(|d| {
                d.from_groups
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (format!("{base}/provenance/from_groups/{i}"), g))
            }));
        for (ptr, group) in named {
            if !groups.contains_key(group) {
                let known: Vec<&str> = groups.keys().map(String::as_str).collect();
                out.push(
                    loaded
                        .error_at(
                            Code::UnknownGroup,
                            &ptr,
                            false,
                            format!("group `{group}` is not defined in atmos.yaml `approvers.groups`: nobody could ever count"),
                        )
                        .hint(match crate::diagnostic::did_you_mean(group, known.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None if known.is_empty() => "define it under `approvers.groups` in atmos.yaml".to_owned(),
                            None => format!("groups: {}", known.join(", ")),
                        }),
                );
            }
        }
    }
    out
}

/// Each target bound to an Atmos stack (`targets.<t>.stack`): every Terraform component of the
/// deployment resolves in that stack as the Atmos CLI would resolve it, is not abstract and is
/// enabled. Located at the target's `stack`.
fn stack_diagnostics(
    project: &Project,
    loaded: &crate::config::LoadedDeployment,
) -> Vec<Diagnostic> {
    use crate::error::Actionable as _;
    let mut out = Vec::new();
    let d = &loaded.deployment;
    let source = crate::config::source::WorkTree::new(&project.root);
    for (name, target) in &d.targets {
        let Some(stack) = &target.stack else {
            continue;
        };
        let ptr = format!("/deployment/targets/{name}/stack");
        if crate::stacks::StackSettings::read(&project.settings, "terraform").is_none() {
            let e = crate::stacks::StackError::NoStacks;
            out.push(
                loaded
                    .error_at(Code::Stack, &ptr, false, e.to_string())
                    .hint(e.hint().unwrap_or_default()),
            );
            continue;
        }
        let bound = d
            .components
            .terraform
            .keys()
            .map(|c| ("terraform", c))
            .chain(d.components.helmfile.keys().map(|c| ("helmfile", c)))
            .chain(d.components.packer.keys().map(|c| ("packer", c)));
        for (kind, c) in bound {
            let Some(settings) = crate::stacks::StackSettings::read(&project.settings, kind) else {
                continue;
            };
            let stacks = crate::stacks::Stacks::new(&source, settings);
            let problem = match stacks.component(stack, kind, c) {
                Err(e) => Some((e.to_string(), e.hint())),
                Ok(r) if r.is_abstract => Some((
                    format!(
                        "{kind}/{c} is abstract in the stack `{stack}`: Atmos never deploys it"
                    ),
                    None,
                )),
                Ok(r) if !r.enabled => Some((
                    format!(
                        "{kind}/{c} is disabled in the stack `{stack}` (metadata.enabled: false)"
                    ),
                    None,
                )),
                Ok(_) => None,
            };
            if let Some((message, hint)) = problem {
                let mut diag = loaded.error_at(Code::Stack, &ptr, false, message);
                if let Some(h) = hint {
                    diag = diag.hint(h);
                }
                out.push(diag);
            }
        }
    }
    out
}

fn report(deployments: Vec<DeploymentValidation>) -> ValidationReport {
    ValidationReport {
        valid: deployments.iter().all(|d| d.valid),
        deployments,
    }
}

fn validate_file(project: &Project, name: &str, path: &std::path::Path) -> DeploymentValidation {
    let file = project.display_path(path);
    let parsed = project.process_file(path);
    // The stack check is listed only for deployments with a target bound to a stack.
    let binds_stacks = parsed
        .as_ref()
        .is_ok_and(|l| l.deployment.targets.values().any(|t| t.stack.is_some()));
    // So is the canary check, for deployments with a target that declares a strategy.
    let has_strategy = parsed
        .as_ref()
        .is_ok_and(|l| l.deployment.targets.values().any(|t| t.strategy.is_some()));
    let (diagnostics, summary) = match parsed {
        Err(diagnostics) => (diagnostics, None),
        Ok(loaded) => {
            let mut diagnostics = checks::check(&loaded);
            diagnostics.extend(group_diagnostics(project, &loaded));
            diagnostics.extend(policy_diagnostics(project, &loaded));
            diagnostics.extend(hook_diagnostics(project, &loaded));
            diagnostics.extend(stack_diagnostics(project, &loaded));
            let d = &loaded.deployment;
            let graph = PromotionGraph::of(&loaded);
            let summary = Summary {
                targets: d.targets.keys().cloned().collect(),
                components: d.components.iter().map(|c| c.id()).collect(),
                promotion_paths: graph.paths,
                promotions: graph.edges,
            };
            (diagnostics, Some(summary))
        }
    };
    let parsed_ok = summary.is_some();
    let checks = GROUPS
        .iter()
        .filter(|(_, codes)| binds_stacks || !codes.contains(&Code::Stack))
        .filter(|(_, codes)| has_strategy || !codes.contains(&Code::Strategy))
        .enumerate()
        .map(|(i, (title, codes))| {
            let failed = diagnostics
                .iter()
                .any(|d| d.is_error() && codes.contains(&d.code));
            let status = if failed {
                CheckStatus::Failed
            } else if i > 0 && !parsed_ok {
                CheckStatus::Skipped
            } else {
                CheckStatus::Passed
            };
            Check {
                name: title,
                status,
            }
        })
        .collect();
    DeploymentValidation {
        name: name.to_owned(),
        file,
        valid: !diagnostics.iter().any(Diagnostic::is_error),
        checks,
        diagnostics,
        summary,
    }
}

crate::document!(ValidationReport => "ValidationReport");
