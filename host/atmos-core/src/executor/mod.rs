//! What each component type runs: the command-line contract of `script`, `terraform`/`tofu`,
//! `helmfile` and `nixpack` components (docs/executors.md), decided here; [`run`] runs them.

pub mod run;
pub mod strays;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde_json::{Map, Value};

use crate::config::{ComponentRef, ComponentType};

/// Apply (rollout) or plan (`rollout --plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Make the change.
    Apply,
    /// Show what would change.
    Plan,
    /// Check whether the infrastructure still matches the deployed commit: the plan command
    /// with a detailed exit code (0 no drift, 2 drift, anything else an error).
    Drift,
}

impl Step {
    /// Lowercase name (`ATMOS_STEP`, log folder names).
    pub fn name(self) -> &'static str {
        match self {
            Step::Apply => "apply",
            Step::Plan => "plan",
            Step::Drift => "drift",
        }
    }
}

/// One process to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program (a path, or a name looked up on PATH).
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
}

impl CommandSpec {
    /// The command as a person would type it (for output and records).
    pub fn display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                s.push_str(&format!("'{}'", a.replace('\'', "'\\''")));
            } else {
                s.push_str(a);
            }
        }
        s
    }
}

/// Inputs of one component's commands.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The component.
    pub component: ComponentRef<'a>,
    /// Target name.
    pub target: &'a str,
    /// The commit being deployed.
    pub git_sha: &'a str,
    /// Where the component's files are (the project root inside the deployed commit's tree).
    pub root: &'a Path,
    /// The merged vars as JSON (`ATMOS_VARS_FILE`).
    pub vars_file: &'a Path,
}

/// Why commands cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    /// The tool is not installed (or not where the config says).
    #[error("`{tool}` is needed by component `{component}` but was not found{where_}")]
    ToolMissing {
        /// The executable asked for.
        tool: String,
        /// `type/name` of the component.
        component: String,
        /// Where we looked.
        where_: String,
        /// The settings key and variable that choose the binary.
        hint: String,
    },
    /// A setting has the wrong shape.
    #[error("component `{component}`: `settings.{key}` {problem}")]
    BadSetting {
        /// `type/name`.
        component: String,
        /// Dotted key under settings.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

impl crate::error::Actionable for ExecutorError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            ExecutorError::ToolMissing { .. } => crate::exit::Exit::Failed,
            ExecutorError::BadSetting { .. } => crate::exit::Exit::Usage,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ExecutorError::ToolMissing { hint, .. } => {
                Some(format!("{hint}; nothing was deployed"))
            }
            ExecutorError::BadSetting { .. } => None,
        }
    }
}

fn settings<'a>(c: &ComponentRef<'a>) -> Option<&'a Map<String, Value>> {
    c.component
        .settings
        .get(c.kind.as_str())
        .and_then(Value::as_object)
}

fn setting_str(c: &ComponentRef<'_>, key: &str) -> Result<Option<String>, ExecutorError> {
    match settings(c).and_then(|s| s.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ExecutorError::BadSetting {
            component: c.id(),
            key: format!("{}.{key}", c.kind),
            problem: "must be a string".into(),
        }),
    }
}

/// The environment variable that overrides a tool's binary.
pub fn binary_variable(kind: ComponentType) -> Option<&'static str> {
    match kind {
        ComponentType::Terraform => Some("ATMOS_TERRAFORM_BIN"),
        ComponentType::Helmfile => Some("ATMOS_HELMFILE_BIN"),
        ComponentType::Packer => Some("ATMOS_PACKER_BIN"),
        ComponentType::Nixpack => Some("ATMOS_NIXPACKS_BIN"),
        ComponentType::Script => None,
    }
}

/// The variable naming the Atmos CLI (the Go `atmos`) when it is not found on `PATH`.
pub const ATMOS_CLI_VAR: &str = "ATMOS_CLI";

/// The Atmos CLI: `ATMOS_CLI`, else the first `atmos` on `PATH` that is not this program (both
/// are called `atmos`).
pub fn atmos_cli(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env(ATMOS_CLI_VAR).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let path = env("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("atmos"))
        .filter(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .find(|p| p.canonicalize().ok() != me)
}

/// A stack component run by the installed Atmos CLI instead: `atmos terraform deploy <c> -s
/// <stack>` (`terraform plan` to plan), `atmos helmfile deploy <c> -s <stack>` (`helmfile
/// diff`), in the deployed commit's project root.
pub fn atmos_cli_component(
    cli: &Path,
    root: &Path,
    kind: &str,
    component: &str,
    stack: &str,
    step: Step,
) -> Vec<CommandSpec> {
    let verb = match (kind, step) {
        ("packer", Step::Apply) => "build",
        ("packer", _) => "validate",
        (_, Step::Apply) => "deploy",
        ("helmfile", _) => "diff",
        _ => "plan",
    };
    let mut args: Vec<String> = [kind, verb, component, "-s", stack]
        .into_iter()
        .map(str::to_owned)
        .collect();
    // Drift is the plan's detailed exit code (2: changes), passed through to the tool.
    match (kind, step) {
        ("terraform", Step::Drift) => args.push("-detailed-exitcode".into()),
        ("helmfile", Step::Drift) => args.push("--detailed-exitcode".into()),
        _ => {}
    }
    vec![CommandSpec {
        program: cli.to_owned(),
        args,
        cwd: root.to_owned(),
    }]
}

/// A stack component's Terraform run, as `atmos terraform deploy <c> -s <stack>` runs it.
#[derive(Debug, Clone)]
pub struct StackTerraform<'a> {
    /// The component's folder (the deployed commit's export).
    pub dir: &'a Path,
    /// The varfile's name (written into `dir`).
    pub varfile: &'a str,
    /// The workspace (`default` when workspaces are off: no selection).
    pub workspace: &'a str,
    /// `components.terraform.init_run_reconfigure`.
    pub reconfigure: bool,
}

/// The commands of a stack-bound Terraform component, by Atmos's contract: in the component's
/// folder, `init [-reconfigure]`, `workspace select -or-create <workspace>`, then `apply
/// -var-file <varfile> -auto-approve` (`plan -var-file <varfile>` to plan; with
/// `-detailed-exitcode` for drift).
pub fn stack_terraform(run: &StackTerraform<'_>, step: Step, tool: &Path) -> Vec<CommandSpec> {
    let spec = |args: Vec<&str>| CommandSpec {
        program: tool.to_owned(),
        args: args.into_iter().map(str::to_owned).collect(),
        cwd: run.dir.to_owned(),
    };
    let mut out = vec![spec(if run.reconfigure {
        vec!["init", "-reconfigure"]
    } else {
        vec!["init"]
    })];
    if run.workspace != "default" {
        out.push(spec(vec![
            "workspace",
            "select",
            "-or-create",
            run.workspace,
        ]));
    }
    out.push(spec(match step {
        Step::Apply => vec!["apply", "-var-file", run.varfile, "-auto-approve"],
        Step::Plan => vec!["plan", "-var-file", run.varfile],
        Step::Drift => vec!["plan", "-detailed-exitcode", "-var-file", run.varfile],
    }));
    out
}

/// The commands of a stack-bound Helmfile component, by Atmos's contract: in the component's
/// folder, `helmfile --state-values-file <varfile> sync` (`diff` to plan, `diff
/// --detailed-exitcode` for drift).
pub fn stack_helmfile(dir: &Path, varfile: &str, step: Step, tool: &Path) -> Vec<CommandSpec> {
    let mut args = vec!["--state-values-file", varfile];
    args.extend(match step {
        Step::Apply => vec!["sync"],
        Step::Plan => vec!["diff"],
        Step::Drift => vec!["diff", "--detailed-exitcode"],
    });
    vec![CommandSpec {
        program: tool.to_owned(),
        args: args.into_iter().map(str::to_owned).collect(),
        cwd: dir.to_owned(),
    }]
}

/// The commands of a stack-bound Packer component, by Atmos's contract: in the component's
/// folder, `packer build -var-file <varfile> <template>` (`packer validate` to plan; no
/// implicit `init`, as `atmos packer build` runs none).
pub fn stack_packer(
    dir: &Path,
    varfile: &str,
    template: &str,
    step: Step,
    tool: &Path,
) -> Vec<CommandSpec> {
    let verb = match step {
        Step::Apply => "build",
        Step::Plan | Step::Drift => "validate",
    };
    vec![CommandSpec {
        program: tool.to_owned(),
        args: [verb, "-var-file", varfile, template]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        cwd: dir.to_owned(),
    }]
}

/// Resolve the external tool a component needs: `settings.<type>.binary`, else the
/// `ATMOS_<TOOL>_BIN` variable, else the default name on PATH. `None` for `script`.
pub fn resolve_tool(
    c: &ComponentRef<'_>,
    project_root: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<PathBuf>, ExecutorError> {
    let default = match c.kind {
        ComponentType::Terraform => "terraform",
        ComponentType::Helmfile => "helmfile",
        ComponentType::Packer => "packer",
        // Rollouts of images run `settings.nixpack.deploy`; the builder is `build`'s.
        ComponentType::Nixpack | ComponentType::Script => return Ok(None),
    };
    let var = binary_variable(c.kind).unwrap_or_default();
    let chosen = setting_str(c, "binary")?
        .or_else(|| env(var).filter(|v| !v.is_empty()))
        .unwrap_or_else(|| default.to_owned());
    let hint = format!(
        "install `{chosen}`, or point `settings.{}.binary` (or {var}) at it",
        c.kind
    );
    find_tool(&chosen, &c.id(), project_root, env, hint).map(Some)
}

/// Where the executable `chosen` is: a path relative to the project root when it holds a `/`,
/// else the first match on `PATH`; `component` and `hint` make the error.
pub fn find_tool(
    chosen: &str,
    component: &str,
    project_root: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    hint: String,
) -> Result<PathBuf, ExecutorError> {
    let chosen = chosen.to_owned();
    if chosen.contains('/') {
        let path = project_root.join(&chosen);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ExecutorError::ToolMissing {
                tool: chosen,
                component: component.to_owned(),
                where_: format!(" at {}", path.display()),
                hint,
            })
        };
    }
    let path_var = env("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(&chosen))
        .find(|p| p.is_file())
        .ok_or(ExecutorError::ToolMissing {
            tool: chosen,
            component: component.to_owned(),
            where_: " on PATH".into(),
            hint,
        })
}

/// The commands to run, in order, for `step`. Empty when the component has nothing to do
/// for that step (a script without a `plan` command).
pub fn commands(
    inv: &Invocation<'_>,
    step: Step,
    tool: Option<&Path>,
) -> Result<Vec<CommandSpec>, ExecutorError> {
    let c = &inv.component;
    let tool = tool.map(Path::to_owned).unwrap_or_default();
    let vars = inv.vars_file.display().to_string();
    let spec = |cwd: PathBuf, args: Vec<&str>| CommandSpec {
        program: tool.clone(),
        args: args.into_iter().map(str::to_owned).collect(),
        cwd,
    };
    Ok(match c.kind {
        ComponentType::Script => {
            let key = match step {
                Step::Apply => "apply",
                Step::Plan | Step::Drift => "plan",
            };
            match setting_str(c, key)? {
                Some(cmd) => vec![CommandSpec {
                    program: PathBuf::from("sh"),
                    args: vec!["-c".into(), cmd],
                    cwd: inv.root.to_owned(),
                }],
                None => Vec::new(),
            }
        }
        ComponentType::Terraform => {
            let dir = setting_str(c, "dir")?
                .unwrap_or_else(|| format!("components/terraform/{}", c.name));
            let workspace = setting_str(c, "workspace")?.unwrap_or_else(|| inv.target.to_owned());
            let cwd = inv.root.join(dir);
            // Terraform reads JSON var files only when they end in .tfvars.json.
            let tfvars = format!("-var-file={}", tfvars_path(inv.vars_file).display());
            let last = match step {
                Step::Apply => vec![
                    "apply",
                    "-input=false",
                    "-auto-approve",
                    "-no-color",
                    tfvars.as_str(),
                ],
                Step::Plan => vec!["plan", "-input=false", "-no-color", tfvars.as_str()],
                Step::Drift => vec![
                    "plan",
                    "-input=false",
                    "-no-color",
                    "-detailed-exitcode",
                    tfvars.as_str(),
                ],
            };
            vec![
                spec(cwd.clone(), vec!["init", "-input=false", "-no-color"]),
                spec(
                    cwd.clone(),
                    vec!["workspace", "select", "-or-create=true", workspace.as_str()],
                ),
                spec(cwd, last),
            ]
        }
        // A machine image: `packer build` of the template with the vars as a JSON var file
        // (`packer validate` to plan and for drift: an image has no drift to detect).
        ComponentType::Packer => {
            let dir =
                setting_str(c, "dir")?.unwrap_or_else(|| format!("components/packer/{}", c.name));
            let template = setting_str(c, "template")?.unwrap_or_else(|| ".".into());
            let verb = match step {
                Step::Apply => "build",
                Step::Plan | Step::Drift => "validate",
            };
            vec![spec(
                inv.root.join(dir),
                vec![verb, "-var-file", vars.as_str(), template.as_str()],
            )]
        }
        ComponentType::Helmfile => {
            let file = setting_str(c, "file")?.unwrap_or_else(|| "helmfile.yaml".into());
            let environment =
                setting_str(c, "environment")?.unwrap_or_else(|| inv.target.to_owned());
            let mut args = vec![
                "--file",
                file.as_str(),
                "--environment",
                environment.as_str(),
                "--state-values-file",
                vars.as_str(),
            ];
            match step {
                Step::Apply => args.push("apply"),
                Step::Plan => args.push("diff"),
                Step::Drift => args.extend(["diff", "--detailed-exitcode"]),
            }
            vec![spec(inv.root.to_owned(), args)]
        }
        // A rollout deploys the image built once for the commit (`build`), never builds it:
        // `settings.nixpack.deploy` runs with ATMOS_IMAGE and ATMOS_IMAGE_DIGEST, and
        // `settings.nixpack.plan` for `--plan`. Without them the rollout records the image it
        // deploys and runs nothing (something else pulls it: GitOps, a scheduler).
        ComponentType::Nixpack => {
            let key = match step {
                Step::Apply => "deploy",
                Step::Plan => "plan",
                Step::Drift => return Ok(Vec::new()),
            };
            match setting_str(c, key)? {
                Some(cmd) => vec![CommandSpec {
                    program: PathBuf::from("sh"),
                    args: vec!["-c".into(), cmd],
                    cwd: inv.root.to_owned(),
                }],
                None => Vec::new(),
            }
        }
    })
}

/// The `.tfvars.json` twin of the vars file (same content).
pub fn tfvars_path(vars_file: &Path) -> PathBuf {
    vars_file.with_file_name("atmos.tfvars.json")
}

/// `vars.image` → image name and tagged name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// `registry/name`.
    pub name: String,
    /// `registry/name:tag`.
    pub tagged: String,
}

/// The image of a nixpack component: `vars.image.{registry, name, tag}`; the name defaults
/// to the component name and the tag to the first 12 characters of the commit.
pub fn image_name(c: &ComponentRef<'_>, git_sha: &str) -> ImageName {
    let image = c.component.vars.get("image").and_then(Value::as_object);
    let get = |k: &str| {
        image
            .and_then(|i| i.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let base = get("name").unwrap_or_else(|| c.name.to_owned());
    let name = match get("registry") {
        Some(r) => format!("{}/{base}", r.trim_end_matches('/')),
        None => base,
    };
    let tag = get("tag").unwrap_or_else(|| git_sha[..git_sha.len().min(12)].to_owned());
    ImageName {
        tagged: format!("{name}:{tag}"),
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Component, ComponentType};

    fn component(kind: ComponentType, settings: Value, vars: Value) -> Component {
        let mut c = Component::default();
        if let (Value::Object(s), Value::Object(v)) = (settings, vars) {
            c.settings = s;
            c.vars = v;
        }
        let _ = kind;
        c
    }

    fn inv<'a>(c: ComponentRef<'a>) -> Invocation<'a> {
        Invocation {
            component: c,
            target: "prod",
            git_sha: "0123456789abcdef0123456789abcdef01234567",
            root: Path::new("/repo"),
            vars_file: Path::new("/tmp/x/vars.json"),
        }
    }

    #[test]
    fn terraform_contract() {
        let comp = component(
            ComponentType::Terraform,
            serde_json::json!({"terraform": {"dir": "infra/db"}}),
            serde_json::json!({}),
        );
        let c = ComponentRef {
            kind: ComponentType::Terraform,
            name: "db",
            component: &comp,
        };
        let cmds = commands(&inv(c), Step::Apply, Some(Path::new("/bin/tofu"))).expect("commands");
        let shown: Vec<String> = cmds.iter().map(CommandSpec::display).collect();
        assert_eq!(
            shown,
            vec![
                "/bin/tofu init -input=false -no-color",
                "/bin/tofu workspace select -or-create=true prod",
                "/bin/tofu apply -input=false -auto-approve -no-color -var-file=/tmp/x/atmos.tfvars.json",
            ]
        );
        assert!(cmds.iter().all(|c| c.cwd == Path::new("/repo/infra/db")));
        let plan = commands(&inv(c), Step::Plan, Some(Path::new("/bin/tofu"))).expect("plan");
        assert_eq!(plan[2].args[0], "plan");
    }

    #[test]
    fn script_runs_through_sh_and_may_have_no_plan() {
        let comp = component(
            ComponentType::Script,
            serde_json::json!({"script": {"apply": "./deploy.sh --fast"}}),
            serde_json::json!({}),
        );
        let c = ComponentRef {
            kind: ComponentType::Script,
            name: "m",
            component: &comp,
        };
        let cmds = commands(&inv(c), Step::Apply, None).expect("apply");
        assert_eq!(cmds[0].display(), "sh -c './deploy.sh --fast'");
        assert!(
            commands(&inv(c), Step::Plan, None)
                .expect("plan")
                .is_empty()
        );
    }

    #[test]
    fn nixpack_image_naming() {
        let comp = component(
            ComponentType::Nixpack,
            serde_json::json!({"nixpack": {"path": "services/api"}}),
            serde_json::json!({"image": {"registry": "reg.example.com/", "name": "pay/api"}}),
        );
        let c = ComponentRef {
            kind: ComponentType::Nixpack,
            name: "api",
            component: &comp,
        };
        assert_eq!(
            image_name(&c, "0123456789abcdef").tagged,
            "reg.example.com/pay/api:0123456789ab"
        );
    }

    #[test]
    fn a_nixpack_rollout_runs_its_deploy_command_and_never_builds() {
        let with = component(
            ComponentType::Nixpack,
            serde_json::json!({"nixpack": {"path": "services/api", "deploy": "./roll.sh"}}),
            serde_json::json!({}),
        );
        let without = component(
            ComponentType::Nixpack,
            serde_json::json!({"nixpack": {"path": "services/api"}}),
            serde_json::json!({}),
        );
        let c = |comp| ComponentRef {
            kind: ComponentType::Nixpack,
            name: "api",
            component: comp,
        };
        let cmds = commands(&inv(c(&with)), Step::Apply, None).expect("apply");
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].display(), "sh -c ./roll.sh");
        assert!(
            commands(&inv(c(&without)), Step::Apply, None)
                .expect("apply")
                .is_empty()
        );
        assert!(
            commands(&inv(c(&with)), Step::Plan, None)
                .expect("plan")
                .is_empty()
        );
    }

    #[test]
    fn missing_tool_names_the_tool_and_the_fix() {
        let comp = component(
            ComponentType::Helmfile,
            serde_json::json!({}),
            serde_json::json!({}),
        );
        let c = ComponentRef {
            kind: ComponentType::Helmfile,
            name: "api",
            component: &comp,
        };
        let env = |n: &str| (n == "PATH").then(|| "/nonexistent".to_owned());
        let err = resolve_tool(&c, Path::new("/repo"), &env).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "`helmfile` is needed by component `helmfile/api` but was not found on PATH"
        );
        let ExecutorError::ToolMissing { hint, .. } = err else {
            panic!("kind")
        };
        assert!(hint.contains("ATMOS_HELMFILE_BIN"));
    }
}
