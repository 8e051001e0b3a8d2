//! One file per verb: each turns its arguments into a library request, calls the library, and
//! hands the typed result to `render`. No command uses another command's module.

pub mod approve;
pub mod archive;
pub mod build;
pub mod completion;
pub mod describe;
pub mod diff;
pub mod fetch;
pub mod gates;
pub mod history;
pub mod list;
pub mod lock;
pub mod logs;
pub mod matrix;
pub mod policy;
pub mod promotion_graph;
pub mod report;
pub mod rollout;
pub mod sbom;
pub mod status;
pub mod validate;
pub mod verify;

use atmos_core::contracts::ApprovalDecision;
use atmos_core::exit::Exit;

use crate::cli::DeploymentCommand;
use crate::context::Context;
use crate::failure::Failure;

/// Run one `atmos deployment <verb>`.
pub fn run(cmd: DeploymentCommand, ctx: &Context) -> Result<Exit, Failure> {
    match cmd {
        DeploymentCommand::Validate(args) => validate::run(&args, ctx),
        DeploymentCommand::List(args) => list::run(&args, ctx),
        DeploymentCommand::Describe(args) => describe::run(&args, ctx),
        DeploymentCommand::PromotionGraph(args) => promotion_graph::run(&args, ctx),
        DeploymentCommand::Rollout(args) => rollout::run(&args, ctx),
        DeploymentCommand::Promote { rest } => Err(Failure::usage(
            "there is no `promote` verb: a promotion is a rollout from another target",
            Some(format!(
                "atmos deployment rollout {} --target <target> --promote-from <source>",
                rest.first()
                    .filter(|d| !d.starts_with('-'))
                    .map_or("<deployment>", String::as_str)
            )),
        )),
        DeploymentCommand::Status(args) => status::run(&args, ctx),
        DeploymentCommand::History(args) => history::run(&args, ctx),
        DeploymentCommand::Diff(args) => diff::run(&args, ctx),
        DeploymentCommand::Policy(cmd) => policy::run(cmd, ctx),
        DeploymentCommand::Build(args) => build::run(&args, ctx),
        DeploymentCommand::Lock(args) => lock::run(&args, ctx),
        DeploymentCommand::Matrix(args) => matrix::run(&args, ctx),
        DeploymentCommand::Sbom(args) => sbom::run(&args, ctx),
        DeploymentCommand::Approve(args) => approve::run(&args, ctx, ApprovalDecision::Approve),
        DeploymentCommand::Reject(args) => approve::run(&args, ctx, ApprovalDecision::Reject),
        DeploymentCommand::Verify(args) => verify::run(&args, ctx),
        DeploymentCommand::Fetch(args) => fetch::run(&args, ctx),
        DeploymentCommand::Logs(args) => logs::run(&args, ctx),
        DeploymentCommand::Report(args) => report::run(&args, ctx),
        DeploymentCommand::Archive(args) => archive::run(&args, ctx),
    }
}
