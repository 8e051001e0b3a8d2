//! `atmos`: the thin command line over `atmos-core`. Parse arguments, call the library,
//! render its report, map the outcome to the exit codes of the CLI contract.

mod cli;
mod commands;
mod context;
mod failure;
mod handoff;
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
    // `atmos terraform …` and every other command of the Atmos CLI go to it, unchanged.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match handoff::route(&args) {
        handoff::Route::Ours => {}
        handoff::Route::AtmosCli(cli) => {
            let e = handoff::hand_off(&cli, &args);
            eprintln!("error: cannot run the Atmos CLI {}: {e}", cli.display());
            return ExitCode::from(Exit::Failed.code());
        }
        handoff::Route::Missing(why) => {
            eprintln!("error: {why}");
            return ExitCode::from(Exit::Usage.code());
        }
    }
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
