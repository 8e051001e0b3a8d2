//! Gates: what must hold before a rollout, promotion, rollback or approval. Built-in gates
//! (promotion path, approvals) live in `rollout::plan`; this module adds the gates bound in
//! config: Rego policies ([`rego`]), all fed the same versioned input document ([`crate::contracts::gate_input`]).

pub mod check;
pub mod hook_testing;
pub mod isolation;
pub mod lint;
pub mod rego;
pub mod testing;
pub mod wasm;

use std::path::Path;
use std::time::Duration;

use crate::config::{LoadedDeployment, Project};

/// Every policy path bound to `target` of a deployment: the project's (`atmos.yaml`), the
/// deployment's, then the target's, without repeats.
pub fn bound_policies(project: &Project, loaded: &LoadedDeployment, target: &str) -> Vec<String> {
    let d = &loaded.deployment;
    let mut out: Vec<String> = Vec::new();
    let target_paths = d
        .targets
        .get(target)
        .map(|t| t.gates.policies.as_slice())
        .unwrap_or_default();
    for p in project
        .settings
        .gates
        .policies
        .iter()
        .chain(&d.gates.policies)
        .chain(target_paths)
    {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// Every policy path bound anywhere in a deployment (for `validate`).
pub fn all_bound_policies(project: &Project, loaded: &LoadedDeployment) -> Vec<String> {
    let mut out = Vec::new();
    for t in loaded.deployment.targets.keys() {
        for p in bound_policies(project, loaded, t) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Every hook bound to `target` of a deployment: the deployment's, then the target's; a
/// target hook with the same name as a deployment hook replaces it.
pub fn bound_hooks(
    loaded: &LoadedDeployment,
    target: &str,
) -> Vec<crate::config::model::HookConfig> {
    let d = &loaded.deployment;
    let mut out: Vec<crate::config::model::HookConfig> = d.gates.hooks.clone();
    if let Some(t) = d.targets.get(target) {
        for h in &t.gates.hooks {
            match out.iter_mut().find(|o| o.name == h.name) {
                Some(existing) => *existing = h.clone(),
                None => out.push(h.clone()),
            }
        }
    }
    out
}

/// Every hook bound anywhere in a deployment, by name (for `validate`).
pub fn all_bound_hooks(loaded: &LoadedDeployment) -> Vec<crate::config::model::HookConfig> {
    let mut out: Vec<crate::config::model::HookConfig> = Vec::new();
    for t in loaded.deployment.targets.keys() {
        for h in bound_hooks(loaded, t) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

/// Where compiled components are cached: inside the git directory, so every worktree and
/// run of one clone shares it and nothing lands in the work tree.
pub fn wasm_cache_dir(git_dir: &Path) -> std::path::PathBuf {
    git_dir.join("atmos").join("wasm-cache")
}

/// Evaluate the hooks bound to one target that run on `action`.
pub fn evaluate_hooks(
    project: &Project,
    loaded: &LoadedDeployment,
    target: &str,
    action: crate::contracts::GateAction,
    input: &serde_json::Value,
    now: Duration,
    cache_dir: Option<&Path>,
) -> Vec<crate::contracts::Decision> {
    let hooks: Vec<_> = bound_hooks(loaded, target)
        .into_iter()
        .filter(|h| h.runs_on(action))
        .collect();
    if hooks.is_empty() {
        return Vec::new();
    }
    match wasm::HookSet::load(&project.root, &hooks, cache_dir) {
        Ok(set) => set.evaluate(action, input, now),
        Err(e) => vec![crate::contracts::Decision {
            source: "hooks".into(),
            package: None,
            rule: "load".into(),
            result: crate::contracts::Verdict::Deny,
            message: format!("{e} (fail closed)"),
            code: None,
            fix: None,
            logs: Vec::new(),
            error: Some("load".into()),
        }],
    }
}

/// The per-package time limit configured in `atmos.yaml`.
pub fn policy_timeout(project: &Project) -> Duration {
    project
        .settings
        .gates
        .policy_timeout_ms
        .map_or(rego::DEFAULT_TIMEOUT, Duration::from_millis)
}

/// Evaluate the policies bound to one target against `input` with `evaluator`.
pub fn evaluate_bound(
    evaluator: &dyn isolation::Evaluator,
    project: &Project,
    loaded: &LoadedDeployment,
    target: &str,
    input: &serde_json::Value,
) -> Vec<crate::contracts::Decision> {
    let paths = bound_policies(project, loaded, target);
    if paths.is_empty() {
        return Vec::new();
    }
    evaluator.evaluate(&project.root, &paths, policy_timeout(project), input)
}

/// Root-relative display of a path.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
