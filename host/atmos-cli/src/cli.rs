//! Command-line arguments (clap derive). Only parsing lives here; each verb's work is in
//! `commands/`, rendering in `render/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Git-native, policy-gated deployments.
#[derive(Debug, Parser)]
#[command(name = "atmos", version, propagate_version = true)]
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

impl Format {
    /// The name as typed.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Dot => "dot",
            Format::Mermaid => "mermaid",
        }
    }
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
    /// Deployments: validate, build, roll out, promote, approve, query, gates.
    #[command(subcommand)]
    Deployment(Box<DeploymentCommand>),
    /// Print a shell completion script.
    Completion(CompletionArgs),
    /// Internal: the isolated policy evaluator (JSON on stdin and stdout).
    #[command(name = "__gates", hide = true)]
    Gates {
        /// `evaluate` or `test`.
        #[arg(value_parser = ["evaluate", "test"])]
        mode: String,
    },
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
    /// Not a verb: a promotion is `rollout --promote-from`; said with the command to type.
    #[command(hide = true)]
    Promote {
        /// Whatever followed `promote`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// What runs where: one target, every target of a deployment, or every deployment.
    Status(StatusArgs),
    /// The rollout timeline of a target, newest first.
    History(HistoryArgs),
    /// Compare two targets (or two commits): commits, components, config, files, drift.
    Diff(DiffArgs),
    /// Build images (nixpacks, docker, podman, buildah) and the commit's SBOM.
    Build(BuildArgs),
    /// Show or export the SBOM of what a target runs (or of a commit).
    Sbom(SbomArgs),
    /// Record an approval of a commit for a target.
    Approve(ApproveArgs),
    /// Record a rejection of a commit for a target (blocks until the same person approves).
    Reject(ApproveArgs),
    /// Inspect or clear a target's lock.
    Lock(LockArgs),
    /// Print a GitHub Actions matrix of a rollout's component waves (jobs of one target take
    /// turns on its lock: one rollout job runs a wave's components side by side instead).
    Matrix(MatrixArgs),
    /// Test Rego policies, or evaluate the gates of a rollout without doing it.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Audit the records: state refs, signatures, deployers, chains, promotions, approvals.
    Verify(VerifyArgs),
    /// Show what the executors printed in a rollout (the newest, or --rollout/--git-sha), from
    /// any clone; --follow tails a rollout running here.
    Logs(LogsArgs),
    /// Bring the shared remote's records (one deployment's, or all) into this clone; `--setup`
    /// makes a plain `git fetch` bring them too.
    Fetch(FetchArgs),
    /// Write the deployment board as a static site (--html DIR), or print it (--format json).
    Report(ReportArgs),
    /// Fold history tags past the retention (--keep, atmos.yaml history.keep_tags, or the newest
    /// 5 rollouts) into the deployment's archive ledger; every query still reads them.
    Archive(ArchiveArgs),
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Only this deployment (default: every deployment).
    pub deployment: Option<String>,
    /// What stays as tags: an age (90d: records younger than that) or a count (500: the newest
    /// 500 rollouts of each target and component, each outcome with its intent). Default:
    /// atmos.yaml `history.keep_tags`, else the newest 5 rollouts.
    #[arg(long, value_name = "AGE|COUNT")]
    pub keep: Option<String>,
    /// The git remote that is the shared store (default: atmos.yaml `git.remote`); the ledger
    /// and the tag deletions are pushed to it in one atomic push.
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Say what would be archived; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Archive this repository only, pushing nothing: for the shared store's own repository
    /// (a work tree of the server's repository), e.g. to fold years of history at once.
    /// Refused in a clone that has the remote.
    #[arg(long, conflicts_with = "remote")]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only these deployments (default: every deployment).
    pub deployments: Vec<String>,
    /// Write the site into this folder: index.html and one page per deployment.
    #[arg(long, value_name = "DIR")]
    pub html: Option<std::path::PathBuf>,
    /// Link commits: a URL with `{sha}`, e.g. `https://github.com/org/repo/commit/{sha}`.
    #[arg(long, value_name = "TEMPLATE", env = "ATMOS_COMMIT_URL")]
    pub commit_url: Option<String>,
    #[command(flatten)]
    pub fetch: FetchFirst,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The deployment.
    pub deployment: String,
    /// The target (default: the deployment's `context.default_target`).
    #[arg(long, short)]
    pub target: Option<String>,
    /// Only this component.
    #[arg(long, short)]
    pub component: Option<String>,
    /// The rollout with this id (`history --format json` shows them).
    #[arg(long, value_name = "ID", conflicts_with = "git_sha")]
    pub rollout: Option<String>,
    /// The newest rollout that deployed this commit.
    #[arg(long, value_name = "SHA")]
    pub git_sha: Option<String>,
    /// Tail the newest rollout running in this clone, until it ends.
    #[arg(long, conflicts_with_all = ["rollout", "git_sha"])]
    pub follow: bool,
    #[command(flatten)]
    pub fetch: FetchFirst,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Only this deployment's records (default: every deployment's).
    pub deployment: Option<String>,
    /// The remote (default: atmos.yaml `git.remote`).
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Add atmos's refspecs to `remote.<name>.fetch` (once per clone) instead of fetching.
    #[arg(long, conflicts_with = "deployment")]
    pub setup: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this deployment (default: every deployment with records).
    pub deployment: Option<String>,
    /// Only this target.
    #[arg(long, short)]
    pub target: Option<String>,
    /// Only report problems of records written since: a date, an RFC 3339 time, or a duration
    /// (7d, 12h). State refs are always checked.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Fetch this remote first and verify what it holds (a clone that never fetched atmos's
    /// records fetches them from its remote first).
    #[arg(long, value_name = "NAME", conflicts_with = "offline")]
    pub remote: Option<String>,
    /// Never fetch: verify only what this clone holds.
    #[arg(long)]
    pub offline: bool,
    /// Check every record, whatever this clone verified before (by default a deployment
    /// verified clean here is checked for what changed since).
    #[arg(long)]
    pub full: bool,
    /// Run as git's pre-receive hook in a server's bare repository: read `<old> <new> <ref>`
    /// lines on stdin and refuse a push that breaks the rules (exit 3).
    #[arg(long, conflicts_with_all = ["deployment", "target", "since", "remote", "offline", "full"])]
    pub pre_receive: bool,
    /// Run by a server's administrator in its repository: repair a ref the guard refuses
    /// (a stray ref, a malformed lease, note or record) and log it in refs/atmos/audit.
    #[arg(
        long,
        value_name = "REF",
        requires = "reason",
        conflicts_with_all = ["deployment", "target", "since", "remote", "pre_receive"]
    )]
    pub repair: Option<String>,
    /// Why the repair is made (kept in the repair log).
    #[arg(long, value_name = "TEXT", requires = "repair")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The deployment.
    pub deployment: String,
    /// The target whose vars the build gets (default: `context.default_target`).
    #[arg(long, short)]
    pub target: Option<String>,
    /// Only this component; repeatable.
    #[arg(long = "component", short = 'c', value_name = "NAME")]
    pub components: Vec<String>,
    /// The commit to build (default: HEAD), from its own tree; the work tree is not touched.
    #[arg(long, value_name = "SHA")]
    pub git_sha: Option<String>,
    /// Override a merged var for this build (`cpu=512`, `image.tag=v2`); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// Show the commands; build nothing, record nothing.
    #[arg(long)]
    pub plan: bool,
    /// Build but do not push images.
    #[arg(long)]
    pub skip_push: bool,
    /// Build again components already built for the commit.
    #[arg(long)]
    pub force: bool,
    /// Images built at once (default 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: Option<u16>,
    /// A scanner report (CycloneDX JSON or SARIF) whose findings go into the SBOM.
    #[arg(long, value_name = "FILE")]
    pub vulnerabilities: Option<std::path::PathBuf>,
    /// SSH key that signs the build records as their builder's (default: git's
    /// user.signingkey when gpg.format is ssh).
    #[arg(long, value_name = "PATH")]
    pub signing_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The deployment.
    pub deployment: String,
    /// The SBOM of what this target runs.
    #[arg(long, short, conflicts_with = "git_sha")]
    pub target: Option<String>,
    /// The SBOM of this commit.
    #[arg(long, value_name = "SHA")]
    pub git_sha: Option<String>,
    /// Write the CycloneDX JSON to FILE.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Print a summary instead of the document.
    #[arg(long)]
    pub summary: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// `status` or `release`.
    #[arg(value_parser = ["status", "release"])]
    pub action: String,
    /// The deployment.
    pub deployment: String,
    /// The target.
    #[arg(long, short)]
    pub target: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Release a lease that has not expired: its rollout renews it while it runs, so only
    /// when that runner is known to be gone.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// The deployment.
    pub deployment: String,
    /// The target.
    #[arg(long, short)]
    pub target: Option<String>,
    /// Only the components of wave N (1-based), for one job per wave.
    #[arg(long, value_name = "N")]
    pub wave: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The deployment.
    pub deployment: String,
    /// The target the approval is for.
    #[arg(long, short)]
    pub target: Option<String>,
    /// The commit (default: what the target's only promotion source runs, else HEAD).
    #[arg(long, value_name = "SHA", conflicts_with = "promote_from")]
    pub git_sha: Option<String>,
    /// Approve what SOURCE runs now, for promotion to the target.
    #[arg(long, value_name = "SOURCE")]
    pub promote_from: Option<String>,
    /// Why (recorded with the approval).
    #[arg(long, short = 'm')]
    pub comment: Option<String>,
    /// Sign the approval with an SSH key (implied when the target requires signed approvals).
    #[arg(long)]
    pub sign: bool,
    /// SSH key to sign with (default: git's user.signingkey).
    #[arg(long, value_name = "PATH")]
    pub signing_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run Rego unit tests (`test_*` rules, opa test semantics).
    Test(PolicyTestArgs),
    /// Evaluate every gate for a rollout and print the decisions (and the input), changing nothing.
    Eval(Box<PolicyEvalArgs>),
    /// Compile policies without evaluating them: errors with their location, and what each
    /// package declares (exit 2 on an error).
    Check(PolicyCheckArgs),
}

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// Files or folders of .rego files (default: policies), relative to the project root.
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PolicyTestArgs {
    /// Files or folders of .rego files (default: policies), relative to the project root.
    pub paths: Vec<String>,
    /// Print per-file line coverage of the policies (test files excluded).
    #[arg(long)]
    pub coverage: bool,
    /// Only tests whose name (or hook case name) matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub run: Option<String>,
    /// Fail (exit 1) when a policy file's coverage is below PCT percent (implies --coverage).
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub threshold: Option<u8>,
}

#[derive(Debug, Args)]
pub struct PolicyEvalArgs {
    #[command(flatten)]
    pub what: RolloutWhat,
    /// Also print the gate input document.
    #[arg(long)]
    pub show_input: bool,
    /// Evaluate the bound policies and hooks against this input document (JSON or YAML)
    /// instead of one atmos builds; the built-in gates are not run.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["git_sha", "promote_from", "components", "metadata", "skip_promotion_check"])]
    pub input: Option<std::path::PathBuf>,
    /// Evaluate as of this time (RFC 3339), e.g. to try a freeze window or a soak time.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Also load this data into the policies' `data` (a JSON/YAML file, or a folder of them,
    /// merged with the bound data; a conflicting value is an error); repeatable.
    #[arg(long, value_name = "PATH")]
    pub data: Vec<std::path::PathBuf>,
    /// Judge by the uncommitted rules in the work tree instead of the trusted ref (the output
    /// says so).
    #[arg(long)]
    pub local: bool,
    /// The git remote that is the shared store, read first (default: atmos.yaml `git.remote`);
    /// its default branch holds the trusted rules.
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The deployment (default: every deployment).
    pub deployment: Option<String>,
    /// Only this target.
    #[arg(long, short, requires = "deployment")]
    pub target: Option<String>,
    #[command(flatten)]
    pub fetch: FetchFirst,
    /// Run each deployed component's health command (`settings.<type>.health`) and show
    /// what it says; without it, the last check of the deployed commit is shown.
    #[arg(long, requires = "deployment")]
    pub check_health: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The deployment.
    pub deployment: String,
    /// Only this target (default: every target).
    #[arg(long, short)]
    pub target: Option<String>,
    /// Only this component.
    #[arg(long, short)]
    pub component: Option<String>,
    /// Show at most N rollouts (a rollout's components stay together).
    #[arg(long, short = 'n', default_value_t = 50, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub limit: usize,
    /// Only rollouts since: a date (2025-01-01), an RFC 3339 time, or a duration (7d, 12h).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only rollouts until: a date (2025-01-31, inclusive), an RFC 3339 time, or a duration.
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    #[command(flatten)]
    pub fetch: FetchFirst,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The deployment.
    pub deployment: String,
    /// The target to compare from (usually the later one in the path, e.g. prod).
    #[arg(
        long,
        value_name = "TARGET",
        conflicts_with = "from_sha",
        required_unless_present = "from_sha"
    )]
    pub from_target: Option<String>,
    /// The target to compare to (e.g. staging).
    #[arg(
        long,
        value_name = "TARGET",
        conflicts_with = "to_sha",
        required_unless_present = "to_sha"
    )]
    pub to_target: Option<String>,
    /// A commit to compare from.
    #[arg(long, value_name = "SHA")]
    pub from_sha: Option<String>,
    /// A commit to compare to.
    #[arg(long, value_name = "SHA")]
    pub to_sha: Option<String>,
    /// Only this component.
    #[arg(long, short)]
    pub component: Option<String>,
    /// List the files changed between the two commits.
    #[arg(long)]
    pub show_files: bool,
    /// Run each component's plan command in the compared targets to detect drift.
    #[arg(long)]
    pub check_drift: bool,
    /// With --from-sha/--to-sha: merge this target's context into the compared vars.
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(flatten)]
    pub what: RolloutWhat,
    /// Components run at once within a wave (default: number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: Option<u16>,
    /// Show the plan and run each component's plan command; change nothing.
    #[arg(long)]
    pub plan: bool,
    /// With --plan: judge by the uncommitted rules in the work tree instead of the trusted ref
    /// (the output says so).
    #[arg(long, requires = "plan")]
    pub local: bool,
    /// Run executors even for components that already run the commit (writes new tags).
    #[arg(long)]
    pub force: bool,
    /// Override a merged var for this rollout (`cpu=512`, `image.tag=v2`); repeatable, recorded
    /// in the tags.
    #[arg(long, value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// With --plan: evaluate the gates as of this time (RFC 3339), e.g. a freeze window. A
    /// real rollout runs at the real time.
    #[arg(long, value_name = "RFC3339", requires = "plan")]
    pub now: Option<String>,
    /// When approvals are missing, wait for them instead of exiting 4.
    #[arg(long)]
    pub wait_for_approval: bool,
    /// When another runner holds the target's lock, wait for it instead of exiting 4.
    #[arg(long)]
    pub wait_for_lock: bool,
    /// How long to wait for approvals or the lock (e.g. 30m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub timeout: String,
    /// How often to re-read approvals while waiting.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub poll_interval: String,
    /// Lifetime of this rollout's target lock (default: atmos.yaml `git.lock_ttl`, else 30m).
    #[arg(long, value_name = "DURATION")]
    pub lock_ttl: Option<String>,
    /// A canary target: stop after step N (exit 0, the canary stays open for --continue).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with_all = ["plan", "abort"])]
    pub until_step: Option<u32>,
    /// Go on with the target's open canary from the step after its last recorded one (same
    /// commits; the gates judge each step again). Any clone, any runner.
    #[arg(long = "continue", conflicts_with_all = ["git_sha", "promote_from", "plan", "force", "abort"])]
    pub resume: bool,
    /// Abort the target's open canary: its components go back to what ran before
    /// (ATMOS_CANARY_WEIGHT=0), recorded as a rollback.
    #[arg(long, conflicts_with_all = ["git_sha", "promote_from", "plan", "force"])]
    pub abort: bool,
    #[command(flatten)]
    pub store: StoreArgs,
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
    /// Show each target's deployed commit, age, health, and whether it is ready to promote
    /// or behind its source.
    #[arg(long)]
    pub show_status: bool,
}

/// `key=value` (a non-empty key; the value may be empty or hold `=`).
fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected key=value (e.g. --metadata pr=#482 --metadata ticket=OPS-12)".into()),
    }
}

/// What a rollout deploys, where, and what it records about itself: shared by `rollout` and
/// `policy eval` (which evaluates the same rollout without doing it).
#[derive(Debug, Args)]
pub struct RolloutWhat {
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
    /// Metadata recorded in the tags (key=value, e.g. pr=#482); repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub metadata: Vec<(String, String)>,
    /// Deploy even if the promotion rules refuse (not recommended; recorded in the tags).
    #[arg(long)]
    pub skip_promotion_check: bool,
    /// SSH key that proves who deploys and signs the records (default: git's
    /// user.signingkey when gpg.format is ssh).
    #[arg(long, value_name = "PATH")]
    pub signing_key: Option<std::path::PathBuf>,
}

impl RolloutWhat {
    /// What the rollout deploys: `--git-sha`, `--promote-from`, or HEAD.
    pub fn source(&self) -> atmos_core::workflow::rollout::Source {
        match (&self.git_sha, &self.promote_from) {
            (_, Some(from)) => atmos_core::workflow::rollout::Source::Promote(from.clone()),
            (Some(sha), None) => atmos_core::workflow::rollout::Source::Commit(sha.clone()),
            (None, None) => atmos_core::workflow::rollout::Source::Head,
        }
    }
}

/// Where a command that writes records reads and writes them.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The git remote that holds the records (default: the target's own `remote`, else
    /// atmos.yaml `git.remote`).
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Work on the local repository only, even when a remote is configured.
    #[arg(long, conflicts_with = "remote")]
    pub offline: bool,
}

/// A read that can bring the shared store's records first.
#[derive(Debug, Args)]
pub struct FetchFirst {
    /// Fetch this remote's records first (otherwise the local view, whose age is shown; a
    /// clone that never fetched atmos's records fetches them from its remote first).
    #[arg(long, value_name = "NAME", conflicts_with = "offline")]
    pub remote: Option<String>,
    /// Never fetch: read only what this clone holds.
    #[arg(long)]
    pub offline: bool,
}

#[cfg(test)]
mod fuzz {
    use clap::Parser;
    use proptest::prelude::*;

    use super::Cli;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("deployment".to_owned()),
            Just("rollout".to_owned()),
            Just("verify".to_owned()),
            Just("build".to_owned()),
            Just("history".to_owned()),
            Just("--target".to_owned()),
            Just("--since".to_owned()),
            Just("--lock-ttl".to_owned()),
            Just("--timeout".to_owned()),
            Just("--metadata".to_owned()),
            Just("--context".to_owned()),
            Just("--format".to_owned()),
            Just("--pre-receive".to_owned()),
            Just("-c".to_owned()),
            Just("=".to_owned()),
            "\\PC{0,12}",
        ]
    }

    /// clap's own checks of the definitions: conflicting ids, flags named twice, `requires`
    /// and `conflicts_with` naming arguments that exist (across flattened groups too).
    #[test]
    fn the_command_line_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// Any argument list parses or is a usage error; clap never panics on our definitions.
        #[test]
        fn arguments_never_panic(args in prop::collection::vec(word(), 0..8)) {
            let _ = Cli::try_parse_from(std::iter::once("atmos".to_owned()).chain(args));
        }
    }
}
