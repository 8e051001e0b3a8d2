//! Command-line arguments (clap derive). Only parsing lives here; each verb's work is in
//! `commands/`, rendering in `render/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Git-native, policy-gated deployments.
#[derive(Debug, Parser)]
#[command(name = "atmos", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: TopCommand,
}

/// Flags accepted by every command.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Run as if atmos was started in DIR.
    #[arg(long, short = 'C', global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Output format. JSON and YAML carry the same data as the table and are a stable
    /// contract for CI; `dot` and `mermaid` are for `promotion-graph`.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// When to use colors (NO_COLOR is honoured by `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Print only data and errors.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (repeat for more).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables and drawings.
    Table,
    /// JSON (stable, documented).
    Json,
    /// YAML (same data as JSON).
    Yaml,
    /// Graphviz dot (promotion-graph only).
    Dot,
    /// Mermaid flowchart (promotion-graph only).
    Mermaid,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Deployments: validate, list, describe, promotion graphs (and rollouts as they land).
    #[command(subcommand)]
    Deployment(DeploymentCommand),
    /// Print a shell completion script.
    Completion(CompletionArgs),
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to generate for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells we generate completions for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    /// bash
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Check deployment files: schema, names, targets, components, promotion paths.
    Validate(ValidateArgs),
    /// List deployments, the targets of one, or the components of one target.
    List(ListArgs),
    /// Show a deployment's resolved config (and one target's merged vars).
    Describe(DescribeArgs),
    /// Draw the promotion graph (boxes, or --format dot|mermaid|json).
    PromotionGraph(PromotionGraphArgs),
    /// Deploy a commit to a target, promote from another target, or roll back.
    Rollout(RolloutArgs),
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// The deployment.
    pub deployment: String,
    /// The target (default: the deployment's `context.default_target`).
    #[arg(long, short)]
    pub target: Option<String>,
    /// Commit to deploy (sha, short sha or ref; default HEAD). An older commit is a rollback.
    #[arg(long, value_name = "SHA", conflicts_with = "promote_from")]
    pub git_sha: Option<String>,
    /// Promote what SOURCE runs now, component by component.
    #[arg(long, value_name = "SOURCE")]
    pub promote_from: Option<String>,
    /// Only this component (name or type/name); repeatable. Dependencies outside the
    /// selection are assumed deployed.
    #[arg(long = "component", short = 'c', value_name = "NAME")]
    pub components: Vec<String>,
    /// Components run at once within a wave (default: number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: Option<u16>,
    /// Show the plan and run each component's plan command; change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Deploy even if the promotion rules refuse (not recommended; recorded in the tags).
    #[arg(long)]
    pub skip_promotion_check: bool,
    /// Run executors even for components that already run the commit (writes new tags).
    #[arg(long)]
    pub force: bool,
    /// Metadata recorded in the tags (key=value, e.g. pr=#482); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The deployment to validate (or --all).
    #[arg(conflicts_with = "all")]
    pub deployment: Option<String>,
    /// Validate every deployment file.
    #[arg(long)]
    pub all: bool,
    /// Also list every allowed promotion (promotion rules are always checked).
    #[arg(long)]
    pub check_promotions: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(subcommand)]
    pub what: Option<ListWhat>,
    /// Only items with this label (key=value); repeat to require several.
    #[arg(long, global = true, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ListWhat {
    /// Every deployment (the default).
    Deployments,
    /// The targets of a deployment.
    Targets {
        /// The deployment.
        deployment: String,
    },
    /// The components of a deployment for one target.
    Components {
        /// The deployment.
        deployment: String,
        /// The target.
        #[arg(long, short)]
        target: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The deployment.
    pub deployment: String,
    /// Resolve every component's vars for this target.
    #[arg(long, short)]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub struct PromotionGraphArgs {
    /// The deployment.
    pub deployment: String,
}
