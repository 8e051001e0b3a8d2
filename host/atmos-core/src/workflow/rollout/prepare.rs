//! Laying out a rollout before it runs: resolve every tool (so a missing one stops the
//! rollout before anything changes), check out the deployed commit, write each component's
//! vars file, and build its commands and environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::model::RolloutPlan;
use crate::config::merge::merge_vars;
use crate::executor::run::{Prepared, PreparedComponent};
use crate::executor::{self, Invocation, Step};
use crate::git::GitRepo;
use crate::workflow::error::WorkflowError;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WorkflowError + '_ {
    move |source| WorkflowError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Resolve tools, check out commits, write vars files, build commands. Nothing has run yet
/// when this fails.
pub fn prepare(
    project_root: &Path,
    git: &GitRepo,
    plan: &RolloutPlan,
    step: Step,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Prepared, WorkflowError> {
    let scratch =
        crate::scratch::dir("atmos-rollout-").map_err(io_err(Path::new("temporary folder")))?;
    let runs = git
        .git_dir()
        .join("atmos")
        .join("logs")
        .join(&plan.deployment)
        .join(&plan.target);
    let stamp = crate::contracts::layout::timestamp_segment(
        plan.started_at
            .parse()
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    );
    // One folder per run, even for two runs in one second (a later run never writes over an
    // earlier run's logs).
    let mut log_dir = runs.join(format!("{stamp}-{}", step.name()));
    for n in 1.. {
        if std::fs::create_dir_all(&runs).is_err()
            || std::fs::create_dir(&log_dir).is_ok()
            || n > 1000
        {
            break;
        }
        log_dir = runs.join(format!("{stamp}.{n}-{}", step.name()));
    }
    // Where the project sits inside the work tree, to find it inside a checkout.
    let relative = git
        .workdir()
        .and_then(|w| {
            let w = w.canonicalize().ok()?;
            project_root.strip_prefix(&w).ok().map(Path::to_owned)
        })
        .unwrap_or_default();

    let mut components = HashMap::new();
    let mut roots: HashMap<String, PathBuf> = HashMap::new();
    let images = serde_json::Value::Object(
        plan.artifacts
            .iter()
            .map(|(name, a)| {
                (
                    name.clone(),
                    serde_json::json!({"image": a.image, "digest": a.digest}),
                )
            })
            .collect(),
    );
    let images = match images {
        serde_json::Value::Object(m) if m.is_empty() => serde_json::Value::Null,
        v => v,
    };
    for wave in &plan.waves {
        for name in wave {
            let Some(planned) = plan.component(name) else {
                continue;
            };
            // What is deployed comes from the deployment file as of the deployed commit.
            let Some(deployed) = plan.configs.get(&planned.new) else {
                continue;
            };
            // Templates in vars and settings are rendered for this target.
            let d = deployed.deployment.for_target(&plan.target);
            let d = d.as_ref();
            let Some(c) = d.components.by_name(name) else {
                continue;
            };
            let empty = crate::config::Target::default();
            let target = d.targets.get(&plan.target).unwrap_or(&empty);
            let tool = executor::resolve_tool(&c, project_root, env)?;
            let root = match roots.get(&planned.new) {
                Some(r) => r.clone(),
                None => {
                    // Every run gets its own export of the deployed commit, outside the
                    // repository: never the work tree (untracked files, a script's leftovers),
                    // never a copy shared with an earlier run.
                    let tree = scratch
                        .path()
                        .join(".trees")
                        .join(crate::git::short(&planned.new));
                    git.export_commit(&planned.new, &tree)?;
                    let r = tree.join(&relative);
                    roots.insert(planned.new.clone(), r.clone());
                    r
                }
            };
            let dir = scratch.path().join(name.replace('/', "__"));
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let mut vars = merge_vars(d, &c, target).values;
            crate::config::merge::override_with(&mut vars, &plan.context);
            // The images this rollout deploys, for the components that deploy them by hand
            // (a script running `kubectl set image`, a helmfile release): `atmos_images`.
            // Terraform gets none (an undeclared variable in a var file is a warning there).
            if !images.is_null() && c.kind != crate::config::ComponentType::Terraform {
                vars.insert("atmos_images".to_owned(), images.clone());
            }
            let vars_file = dir.join("vars.json");
            let json = serde_json::to_vec_pretty(&vars).unwrap_or_default();
            std::fs::write(&vars_file, &json).map_err(io_err(&vars_file))?;
            let tfvars = executor::tfvars_path(&vars_file);
            std::fs::write(&tfvars, &json).map_err(io_err(&tfvars))?;
            let inv = Invocation {
                component: c,
                target: &plan.target,
                git_sha: &planned.new,
                root: &root,
                vars_file: &vars_file,
            };
            let commands = executor::commands(&inv, step, tool.as_deref())?;
            let running: Vec<String> = plan.waves.iter().flatten().cloned().collect();
            let depends_on = planned
                .depends_on
                .iter()
                .filter_map(|id| id.split_once('/').map(|(_, n)| n.to_owned()))
                .filter(|n| running.contains(n))
                .collect();
            let mut env_vars = vec![
                ("ATMOS_DEPLOYMENT".to_owned(), plan.deployment.clone()),
                ("ATMOS_TARGET".to_owned(), plan.target.clone()),
                ("ATMOS_COMPONENT".to_owned(), name.clone()),
                ("ATMOS_COMPONENT_TYPE".to_owned(), c.kind.to_string()),
                ("ATMOS_GIT_SHA".to_owned(), planned.new.clone()),
                (
                    "ATMOS_VARS_FILE".to_owned(),
                    vars_file.display().to_string(),
                ),
                ("ATMOS_STEP".to_owned(), step.name().to_owned()),
            ];
            if let Some(a) = plan.artifacts.get(name) {
                if let Some(image) = &a.image {
                    env_vars.push(("ATMOS_IMAGE".to_owned(), image.clone()));
                }
                if let Some(digest) = &a.digest {
                    env_vars.push(("ATMOS_IMAGE_DIGEST".to_owned(), digest.clone()));
                }
            }
            components.insert(
                name.clone(),
                PreparedComponent {
                    name: name.clone(),
                    depends_on,
                    commands,
                    env: env_vars,
                    log: log_dir.join(format!("{name}.log")),
                    timeout: component_timeout(&c)?,
                    verify: verify_step(&c, &root)?,
                },
            );
        }
    }
    Ok(Prepared::from_components(
        components.into_values().collect(),
        plan.waves.clone(),
        step,
        log_dir,
        scratch,
    ))
}

/// `settings.<type>.verify` as a command run in the deployed commit's tree.
fn verify_step(
    c: &crate::config::ComponentRef<'_>,
    root: &Path,
) -> Result<Option<crate::executor::run::VerifySpec>, WorkflowError> {
    let verify = c
        .verify()
        .map_err(|problem| WorkflowError::Setting { problem })?;
    Ok(verify.map(|v| crate::executor::run::VerifySpec {
        command: executor::CommandSpec {
            program: PathBuf::from("sh"),
            args: vec!["-c".into(), v.command],
            cwd: root.to_owned(),
        },
        timeout: v.timeout,
        retries: v.retries,
        interval: v.interval,
        rollback: v.on_failure == crate::config::probes::OnFailure::Rollback,
    }))
}

/// `settings.<type>.timeout`, else the default.
pub(crate) fn component_timeout(
    c: &crate::config::ComponentRef<'_>,
) -> Result<std::time::Duration, WorkflowError> {
    c.timeout()
        .map(|t| t.unwrap_or(crate::executor::run::DEFAULT_TIMEOUT))
        .map_err(|problem| WorkflowError::Duration {
            what: "an executor timeout".into(),
            problem,
        })
}
