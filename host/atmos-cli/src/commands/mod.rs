//! One file per verb. Each builds its report with `atmos-core` and hands it to `render`.

pub mod approve;
pub mod build;
pub mod completion;
pub mod describe;
pub mod diff;
pub mod history;
pub mod list;
pub mod lock;
pub mod matrix;
pub mod policy;
pub mod promotion_graph;
pub mod rollout;
pub mod runner;
pub mod sbom;
pub mod status;
pub mod store;
pub mod validate;

use std::path::PathBuf;

use atmos_core::config::UnknownTarget;
use atmos_core::config::{LoadedDeployment, Project, ProjectError};
use atmos_core::diagnostic::Diagnostic;
use atmos_core::exit::Exit;
use atmos_core::git::GitRepo;
use atmos_core::git::tags::Unparseable;
use serde::Serialize;

use crate::cli::{DeploymentCommand, Format, GlobalArgs};
use crate::render::{Output, Style, diagnostics};

/// Run one `atmos deployment <verb>`.
pub fn run(cmd: DeploymentCommand, ctx: &Context) -> Result<Exit, Failure> {
    match cmd {
        DeploymentCommand::Validate(args) => validate::run(&args, ctx),
        DeploymentCommand::List(args) => list::run(&args, ctx),
        DeploymentCommand::Describe(args) => describe::run(&args, ctx),
        DeploymentCommand::PromotionGraph(args) => promotion_graph::run(&args, ctx),
        DeploymentCommand::Rollout(args) => rollout::run(&args, ctx),
        DeploymentCommand::Status(args) => status::run(&args, ctx),
        DeploymentCommand::History(args) => history::run(&args, ctx),
        DeploymentCommand::Diff(args) => diff::run(&args, ctx),
        DeploymentCommand::Policy(cmd) => policy::run(cmd, ctx),
        DeploymentCommand::Build(args) => build::run(&args, ctx),
        DeploymentCommand::Lock(args) => lock::run(&args, ctx),
        DeploymentCommand::Matrix(args) => matrix::run(&args, ctx),
        DeploymentCommand::Sbom(args) => sbom::run(&args, ctx),
        DeploymentCommand::Approve(args) => {
            approve::run(&args, ctx, atmos_core::contracts::ApprovalDecision::Approve)
        }
        DeploymentCommand::Reject(args) => {
            approve::run(&args, ctx, atmos_core::contracts::ApprovalDecision::Reject)
        }
    }
}

/// What every command gets: where to start, and how to write.
pub struct Context {
    /// `--chdir`, or the working directory.
    pub start: PathBuf,
    /// Rendering settings.
    pub out: Output,
}

/// Why a command stopped, mapped to an exit code.
#[derive(Debug)]
pub enum Failure {
    /// Stdout was closed (e.g. `| head`): not an error.
    ClosedPipe,
    /// A problem for the user, with located diagnostics and a next step.
    User {
        /// Exit code.
        exit: Exit,
        /// What is wrong.
        message: String,
        /// What to do.
        hint: Option<String>,
        /// Located problems behind it.
        diagnostics: Vec<Diagnostic>,
    },
}

impl Failure {
    /// Bad usage or invalid config (exit 2).
    pub fn usage(message: impl Into<String>, hint: Option<String>) -> Failure {
        Failure::User {
            exit: Exit::Usage,
            message: message.into(),
            hint,
            diagnostics: Vec::new(),
        }
    }

    /// The exit code.
    pub fn exit(&self) -> Exit {
        match self {
            Failure::ClosedPipe => Exit::Done,
            Failure::User { exit, .. } => *exit,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::ClosedPipe
        } else {
            Failure::User {
                exit: Exit::Failed,
                message: format!("cannot write output: {e}"),
                hint: None,
                diagnostics: Vec::new(),
            }
        }
    }
}

impl From<ProjectError> for Failure {
    fn from(e: ProjectError) -> Failure {
        let exit = match e {
            ProjectError::Io { .. } => Exit::Failed,
            _ => Exit::Usage,
        };
        let mut message = e.to_string();
        if let ProjectError::UnknownDeployment { dir, .. } = &e {
            message = format!("{message} in {}", dir.display());
        }
        Failure::User {
            exit,
            message,
            hint: e.hint(),
            diagnostics: e.diagnostics().to_vec(),
        }
    }
}

/// The isolated evaluator: this very binary with the hidden `__gates` command.
pub fn isolated() -> Option<atmos_core::gates::isolation::Isolated> {
    std::env::current_exe()
        .ok()
        .map(|program| atmos_core::gates::isolation::Isolated {
            program,
            evaluate_args: vec!["__gates".into(), "evaluate".into()],
            test_args: vec!["__gates".into(), "test".into()],
        })
}

/// A git failure while reading state: exit 1.
pub fn git_failure(e: atmos_core::git::GitError) -> Failure {
    let exit = match e {
        atmos_core::git::GitError::UnknownRevision { .. }
        | atmos_core::git::GitError::AmbiguousRevision { .. } => Exit::Usage,
        _ => Exit::Failed,
    };
    Failure::User {
        exit,
        message: e.to_string(),
        hint: None,
        diagnostics: Vec::new(),
    }
}

impl From<UnknownTarget> for Failure {
    fn from(e: UnknownTarget) -> Failure {
        Failure::usage(e.to_string(), Some(e.hint()))
    }
}

#[derive(Serialize)]
struct ErrorReport<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    diagnostics: &'a [Diagnostic],
}

impl Context {
    /// Settings from the global flags.
    pub fn new(global: &GlobalArgs) -> Context {
        let start = match &global.chdir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        Context {
            start,
            out: Output {
                format: global.format,
                out_style: Style::stdout(global.color),
                err_style: Style::stderr(global.color),
                quiet: global.quiet,
                verbose: global.verbose,
            },
        }
    }

    /// The project containing the start directory.
    pub fn project(&self) -> Result<Project, Failure> {
        Ok(Project::discover(&self.start)?)
    }

    /// The git repository of the project; `None` when it has none (state reads as empty).
    pub fn git(&self, project: &Project) -> Option<GitRepo> {
        GitRepo::discover(&project.root).ok()
    }

    /// The git repository of the project, required.
    pub fn require_git(&self, project: &Project) -> Result<GitRepo, Failure> {
        GitRepo::discover(&project.root).map_err(|e| {
            Failure::usage(
                e.to_string(),
                Some("atmos records deployments in git: run `git init` and commit".into()),
            )
        })
    }

    /// How gates are evaluated: in a child `atmos` process, so that a policy that crashes the
    /// evaluator denies instead of killing the command.
    pub fn evaluator(&self) -> Box<dyn atmos_core::gates::isolation::Evaluator> {
        match isolated() {
            Some(i) => Box::new(i),
            None => Box::new(atmos_core::gates::isolation::InProcess),
        }
    }

    /// Warn about tags in the namespace that are not atmos records.
    pub fn warn_unparseable(&self, list: &[Unparseable]) {
        if list.is_empty() {
            return;
        }
        let mut text = format!(
            "{} tag{} under atmos/deployments/ {} not atmos records and {} skipped:",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            if list.len() == 1 { "is" } else { "are" },
            if list.len() == 1 { "was" } else { "were" },
        );
        for u in list {
            text.push_str(&format!("\n  {}: {}", u.tag, u.reason));
        }
        self.out.warn(&text);
    }

    /// Load one deployment of the project.
    pub fn deployment(&self, name: &str) -> Result<(Project, LoadedDeployment), Failure> {
        let project = self.project()?;
        let loaded = project.load(name)?;
        Ok((project, loaded))
    }

    /// Refuse `--format` values a command does not support.
    pub fn require_format(&self, allowed: &[Format], command: &str) -> Result<(), Failure> {
        if allowed.contains(&self.out.format) {
            return Ok(());
        }
        let names: Vec<String> = allowed
            .iter()
            .map(|f| format!("{f:?}").to_lowercase())
            .collect();
        Err(Failure::usage(
            format!(
                "`{command}` does not support --format {}",
                format!("{:?}", self.out.format).to_lowercase()
            ),
            Some(format!("use one of: {}", names.join(", "))),
        ))
    }

    /// Tell the user why the command stopped: stderr always, and a JSON/YAML error object on
    /// stdout when a structured format was asked for, so CI can parse it.
    pub fn report_failure(&self, failure: &Failure) {
        let Failure::User {
            exit,
            message,
            hint,
            diagnostics: diags,
        } = failure
        else {
            return;
        };
        let report = ErrorReport {
            error: ErrorBody {
                message,
                exit_code: exit.code(),
                hint: hint.as_deref(),
                diagnostics: diags,
            },
        };
        if let Some(text) = self.out.structured(&report) {
            let _ = self.out.print(&text);
        }
        let style = &self.out.err_style;
        let mut text = String::new();
        if !diags.is_empty() {
            text.push_str(&diagnostics::render_all(diags, style));
            text.push('\n');
        }
        text.push_str(&format!("{} {message}\n", style.error("error:")));
        if let Some(hint) = hint {
            for (i, line) in hint.lines().enumerate() {
                let lead = if i == 0 { "  = help:" } else { "         " };
                text.push_str(&format!("{} {line}\n", style.accent(lead)));
            }
        }
        self.out.eprint(&text);
    }
}
