//! `atmos completion bash|zsh|fish`.

use atmos_core::exit::Exit;
use clap::CommandFactory;
use clap_complete::{Shell as Target, generate};

use crate::cli::{Cli, CompletionArgs, Shell};
use crate::context::Context;
use crate::failure::Failure;

/// Print the completion script for the shell.
pub fn run(args: &CompletionArgs, _ctx: &Context) -> Result<Exit, Failure> {
    let shell = match args.shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
    };
    let mut buf = Vec::new();
    generate(shell, &mut Cli::command(), "atmos", &mut buf);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)?;
    out.flush()?;
    Ok(Exit::Done)
}
