//! `atmos`: the thin command line over `atmos-core`. Parse arguments, call the library,
//! render its report, map the outcome to the exit codes of the CLI contract.

mod cli;
mod commands;
mod context;
mod failure;
#[cfg(test)]
mod reference;
mod render;

use std::process::ExitCode;

use atmos_core::exit::Exit;
use clap::Parser;

use crate::cli::{Cli, TopCommand};
use crate::context::Context;
use crate::failure::Failure;

fn main() -> ExitCode {
    atmos_core::signing::protect_process();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; everything else is bad usage (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            });
        }
    };
    let ctx = Context::new(&cli.global);
    let result = match cli.command {
        TopCommand::Deployment(cmd) => commands::run(*cmd, &ctx),
        TopCommand::Completion(args) => commands::completion::run(&args, &ctx),
        TopCommand::Gates { mode } => commands::gates::serve(&mode),
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(Failure::ClosedPipe) => Exit::Done,
        Err(failure) => {
            ctx.report_failure(&failure);
            failure.exit()
        }
    };
    ExitCode::from(exit.code())
}
