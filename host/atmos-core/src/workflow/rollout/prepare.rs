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
    env_allow: &[String],
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
            // A stack run by the Atmos CLI needs no terraform of ours (the Atmos CLI finds its
            // own).
            let stack_kind = match c.kind {
                crate::config::ComponentType::Terraform => Some("terraform"),
                crate::config::ComponentType::Helmfile => Some("helmfile"),
                crate::config::ComponentType::Packer => Some("packer"),
                _ => None,
            };
            let atmos_cli_runs = stack_kind.is_some()
                && target.stack.is_some()
                && target.stack_runner == crate::config::model::StackRunner::AtmosCli;
            // A stack's component names its own executable (`command`): looked up once the
            // stack is read, below.
            let stack_bound = stack_kind.is_some() && target.stack.is_some();
            let tool = if stack_bound {
                None
            } else {
                executor::resolve_tool(&c, project_root, env)?
            };
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
            // A target bound to an Atmos stack: its Terraform components are the stack's,
            // with what the deployment file sets on top, run by Atmos's Terraform contract.
            let stack = match (target.stack.as_deref(), stack_kind) {
                (Some(stack), Some(kind)) => {
                    Some(stack_component(&root, stack, kind, name, env_allow)?)
                }
                _ => None,
            };
            if let Some((resolved, _)) = &stack {
                let mut all = resolved.vars.clone();
                crate::stacks::merge::merge(
                    &mut all,
                    &serde_json::Value::Object(vars.clone().into_iter().collect()),
                    crate::stacks::merge::ListMerge::Replace,
                );
                vars = all
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
            }
            let vars_file = dir.join("vars.json");
            let json = serde_json::to_vec_pretty(&vars).unwrap_or_default();
            std::fs::write(&vars_file, &json).map_err(io_err(&vars_file))?;
            let tfvars = executor::tfvars_path(&vars_file);
            std::fs::write(&tfvars, &json).map_err(io_err(&tfvars))?;
            let commands = match &stack {
                Some((resolved, _)) if atmos_cli_runs => {
                    let cli = executor::atmos_cli(env).ok_or_else(|| {
                        WorkflowError::Executor(executor::ExecutorError::ToolMissing {
                            tool: "atmos (the Atmos CLI)".into(),
                            component: format!("terraform/{name}"),
                            where_: " on PATH (other than this program)".into(),
                            hint: format!(
                                "install the Atmos CLI, set {} to it, or let atmos run the stack (remove `stack_runner: atmos-cli`)",
                                executor::ATMOS_CLI_VAR
                            ),
                        })
                    })?;
                    executor::atmos_cli_component(
                        &cli,
                        &root,
                        &resolved.kind,
                        name,
                        &resolved.stack,
                        step,
                    )
                }
                Some((resolved, _)) if resolved.kind == "packer" => {
                    let folder = stack_folder(&root, resolved, name, &planned.new)?;
                    let varfile = folder.join(&resolved.varfile);
                    write_new(&varfile, &json)?;
                    let template = resolved
                        .settings
                        .get("packer")
                        .and_then(|p| p.get("template"))
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or(".")
                        .to_owned();
                    let program = stack_program(resolved, &c, project_root, env)?;
                    executor::stack_packer(&folder, &resolved.varfile, &template, step, &program)
                }
                Some((resolved, _)) if resolved.kind == "helmfile" => {
                    let folder = stack_folder(&root, resolved, name, &planned.new)?;
                    let varfile = folder.join(&resolved.varfile);
                    let yaml = serde_yaml_ng::to_string(&vars).unwrap_or_default();
                    write_new(&varfile, yaml.as_bytes())?;
                    let program = stack_program(resolved, &c, project_root, env)?;
                    executor::stack_helmfile(&folder, &resolved.varfile, step, &program)
                }
                Some((resolved, settings)) => {
                    let folder = stack_folder(&root, resolved, name, &planned.new)?;
                    let varfile = folder.join(&resolved.varfile);
                    write_new(&varfile, &json)?;
                    if settings.auto_generate_backend_file.unwrap_or(false)
                        && let Some(kind) = &resolved.backend_type
                    {
                        let backend = folder.join("backend.tf.json");
                        let doc =
                            serde_json::json!({"terraform": {"backend": {kind: resolved.backend}}});
                        write_new(
                            &backend,
                            &serde_json::to_vec_pretty(&doc).unwrap_or_default(),
                        )?;
                    }
                    let program = stack_program(resolved, &c, project_root, env)?;
                    executor::stack_terraform(
                        &executor::StackTerraform {
                            dir: &folder,
                            varfile: &resolved.varfile,
                            workspace: &resolved.workspace,
                            reconfigure: settings.init_run_reconfigure.unwrap_or(false),
                        },
                        step,
                        &program,
                    )
                }
                None => {
                    let inv = Invocation {
                        component: c,
                        target: &plan.target,
                        git_sha: &planned.new,
                        root: &root,
                        vars_file: &vars_file,
                    };
                    executor::commands(&inv, step, tool.as_deref())?
                }
            };
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
            if let Some((resolved, _)) = &stack {
                // As the Atmos CLI runs it: the component's `env` (a `null` unsets nothing
                // here: it is left out), first, so that atmos's own variables win; the stack,
                // and where atmos.yaml is.
                let mut own: Vec<(String, String)> = Vec::new();
                for (k, v) in resolved.env.as_object().into_iter().flatten() {
                    let value = match v {
                        serde_json::Value::Null => continue,
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    own.push((k.clone(), value));
                }
                env_vars.splice(0..0, own);
                env_vars.push(("ATMOS_STACK".to_owned(), resolved.stack.clone()));
                if resolved.kind == "helmfile" {
                    // As Atmos gives helmfile: the stack, and the context vars the process
                    // does not set itself.
                    env_vars.push(("STACK".to_owned(), resolved.stack.clone()));
                    for key in ["namespace", "tenant", "environment", "stage", "region"] {
                        let var = key.to_ascii_uppercase();
                        if env(&var).is_none()
                            && let Some(v) = vars.get(key).and_then(serde_json::Value::as_str)
                        {
                            env_vars.push((var, v.to_owned()));
                        }
                    }
                }
                env_vars.push((
                    "ATMOS_CLI_CONFIG_PATH".to_owned(),
                    root.display().to_string(),
                ));
                env_vars.push(("TF_IN_AUTOMATION".to_owned(), "true".to_owned()));
            }
            if let Some(a) = plan.artifacts.get(name) {
                if let Some(image) = &a.image {
                    env_vars.push(("ATMOS_IMAGE".to_owned(), image.clone()));
                }
                if let Some(digest) = &a.digest {
                    env_vars.push(("ATMOS_IMAGE_DIGEST".to_owned(), digest.clone()));
                }
            }
            let canary = canary_step(plan, name, &root);
            if let Some(c) = &canary {
                env_vars.push(("ATMOS_CANARY_STEP".to_owned(), c.step.to_string()));
                env_vars.push(("ATMOS_CANARY_STEPS".to_owned(), c.steps.to_string()));
                env_vars.push(("ATMOS_CANARY_WEIGHT".to_owned(), c.weight.to_string()));
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
                    canary,
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

/// The stack's Terraform component `name` of `stack`, from the deployed commit's tree (its
/// atmos.yaml and stacks), and atmos.yaml's Terraform settings. Abstract and disabled
/// components are refused: Atmos never deploys them.
fn stack_component(
    root: &Path,
    stack: &str,
    kind: &str,
    name: &str,
    env_allow: &[String],
) -> Result<
    (
        crate::stacks::Resolved,
        crate::config::settings::AtmosComponentType,
    ),
    WorkflowError,
> {
    let project = crate::config::Project::open(root.to_owned())?;
    let mut settings = crate::stacks::StackSettings::read(&project.settings, kind)
        .ok_or(crate::stacks::StackError::NoStacks)?;
    // What `!env` may read is the trusted rules' list, never the deployed commit's.
    settings.env_allow = env_allow.to_vec();
    let source = crate::config::source::WorkTree::new(root);
    let resolved = crate::stacks::Stacks::new(&source, settings).component(stack, kind, name)?;
    let refuse = |why: &str| {
        WorkflowError::Stack(crate::stacks::StackError::Component {
            stack_file: resolved.stack_file.clone(),
            component: format!("{kind}/{name}"),
            why: why.to_owned(),
        })
    };
    if resolved.is_abstract {
        return Err(refuse(
            "it is abstract (metadata.type: abstract): Atmos never deploys it",
        ));
    }
    if !resolved.enabled {
        return Err(refuse(
            "it is disabled in the stack (metadata.enabled: false): take it out of the deployment, or enable it",
        ));
    }
    let typed = match kind {
        "helmfile" => project.settings.components.helmfile.clone(),
        "packer" => project.settings.components.packer.clone(),
        _ => project.settings.components.terraform.clone(),
    };
    Ok((resolved, typed))
}

/// The executable of a stack's component: the stack's `command` (looked up now, so a missing
/// one stops the rollout before anything runs), else the component's usual tool.
fn stack_program(
    resolved: &crate::stacks::Resolved,
    c: &crate::config::ComponentRef<'_>,
    project_root: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, WorkflowError> {
    match resolved.command.as_deref().filter(|c| !c.is_empty()) {
        Some(cmd) => Ok(executor::find_tool(
            cmd,
            &c.id(),
            project_root,
            env,
            format!(
                "install `{cmd}` (the stack's `command` for {}), or change it",
                resolved.atmos_component
            ),
        )?),
        None => Ok(executor::resolve_tool(c, project_root, env)?
            .unwrap_or_else(|| PathBuf::from(c.kind.as_str()))),
    }
}

/// Write a file the rollout makes in the deployed commit's export: whatever was at that path
/// (a committed symbolic link, say) is removed first, and the file is created new, so the
/// write never follows a link out of the export.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), WorkflowError> {
    use std::io::Write as _;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.is_dir() {
            return Err(WorkflowError::Io {
                path: path.to_owned(),
                source: std::io::Error::other("a folder is where the file goes"),
            });
        }
        std::fs::remove_file(path).map_err(io_err(path))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))
}

/// The folder of a stack's component in the deployed commit's export; it must be there.
fn stack_folder(
    root: &Path,
    resolved: &crate::stacks::Resolved,
    name: &str,
    commit: &str,
) -> Result<PathBuf, WorkflowError> {
    let folder = root.join(&resolved.folder);
    // Inside the deployed commit's export, whatever a committed symbolic link says: the
    // commands run there and the varfile is written there.
    let inside = match (folder.canonicalize(), root.canonicalize()) {
        (Ok(f), Ok(r)) => f.starts_with(&r),
        _ => false,
    };
    if folder.is_dir() && inside {
        return Ok(folder);
    }
    if folder.exists() {
        return Err(WorkflowError::Stack(crate::stacks::StackError::Component {
            stack_file: resolved.stack_file.clone(),
            component: format!("{}/{name}", resolved.kind),
            why: format!(
                "its folder {} leads outside commit {} (a symbolic link): nothing runs outside the deployed commit",
                resolved.folder,
                crate::git::short(commit)
            ),
        }));
    }
    Err(WorkflowError::Stack(crate::stacks::StackError::Component {
        stack_file: resolved.stack_file.clone(),
        component: format!("{}/{name}", resolved.kind),
        why: format!(
            "its folder {} is not in commit {}",
            resolved.folder,
            crate::git::short(commit)
        ),
    }))
}

/// The canary step `name` runs in, when `plan` enters one and selects it: its analysis (a
/// command run in the deployed commit's tree, like a verification) after every step but the
/// last, and never for an abort.
fn canary_step(
    plan: &RolloutPlan,
    name: &str,
    root: &Path,
) -> Option<crate::executor::run::CanaryRun> {
    let c = plan.canary.as_ref()?;
    if !c.components.iter().any(|n| n == name) {
        return None;
    }
    let between = !c.aborting && !c.is_last();
    Some(crate::executor::run::CanaryRun {
        step: c.step,
        steps: c.steps,
        weight: c.weight,
        pause: if between {
            c.strategy.pause
        } else {
            std::time::Duration::ZERO
        },
        analysis: c.strategy.analysis.as_ref().filter(|_| between).map(|a| {
            crate::executor::run::VerifySpec {
                command: executor::CommandSpec {
                    program: PathBuf::from("sh"),
                    args: vec!["-c".into(), a.command.clone()],
                    cwd: root.to_owned(),
                },
                timeout: a.timeout,
                retries: a.retries,
                interval: a.interval,
                rollback: true,
            }
        }),
    })
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
