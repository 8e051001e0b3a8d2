//! Living beside the Atmos CLI: both programs are called `atmos`. This one answers
//! `atmos deployment …` (and `completion`, and its hidden policy evaluator); any other command (`atmos terraform plan …`,
//! `atmos describe stacks`, `atmos version`) is handed, unchanged, to the Atmos CLI — the
//! program `ATMOS_CLI` names, else the first other `atmos` on `PATH`. The hand-off replaces
//! this process (`exec`), so the terminal, signals and exit code are the Atmos CLI's own.

use std::ffi::OsString;
use std::path::PathBuf;

/// Set in the Atmos CLI's environment by a hand-off, to the program that handed off: a copy of
/// this program that would hand the command straight back to it refuses instead of looping,
/// while the Atmos CLI's own steps that run `atmos` again (workflows, custom commands) are
/// handed to it as usual.
const HANDED_OFF: &str = "ATMOS_DEPLOYMENT_HANDED_OFF";

/// Where a command line goes.
pub enum Route {
    /// This program answers it.
    Ours,
    /// The Atmos CLI at this path answers it.
    AtmosCli(PathBuf),
    /// It is the Atmos CLI's, and there is none to hand it to: why.
    Missing(String),
}

/// Where `args` (the program name left out) go: this program's commands (every subcommand
/// its parser defines, hidden ones and `help` included) are its own.
pub fn route(args: &[OsString]) -> Route {
    let Some(first) = args.first().and_then(|a| a.to_str()) else {
        return Route::Ours;
    };
    let ours = {
        use clap::CommandFactory as _;
        let cmd = crate::cli::Cli::command();
        first == "help"
            || cmd
                .get_subcommands()
                .any(|c| c.get_name() == first || c.get_all_aliases().any(|a| a == first))
    };
    if first.starts_with('-') || ours {
        return Route::Ours;
    }
    let env = |k: &str| std::env::var(k).ok();
    match atmos_core::executor::atmos_cli(&env) {
        Some(path) => {
            let back = std::env::var_os(HANDED_OFF)
                .map(PathBuf::from)
                .and_then(|p| p.canonicalize().ok());
            if back.is_some() && back == path.canonicalize().ok() {
                return Route::Missing(format!(
                    "`atmos {first}` was handed here by {}, which is atmos deployment too, and would go straight back (a loop): set {} to the Atmos CLI",
                    path.display(),
                    atmos_core::executor::ATMOS_CLI_VAR
                ));
            }
            Route::AtmosCli(path)
        }
        None => Route::Missing(format!(
            "`atmos {first}` is not an `atmos deployment` command, and no Atmos CLI was found to hand it to: install it (https://atmos.tools), or set {} to its path",
            atmos_core::executor::ATMOS_CLI_VAR
        )),
    }
}

/// Replace this process with the Atmos CLI running `args`; returns only when that fails.
pub fn hand_off(cli: &std::path::Path, args: &[OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let me = std::env::current_exe().unwrap_or_default();
    std::process::Command::new(cli)
        .args(args)
        .env(HANDED_OFF, me)
        .exec()
}

#[cfg(test)]
mod tests {
    use super::{Route, route};

    #[test]
    fn every_command_of_ours_stays_ours_hidden_ones_included() {
        for first in [
            "deployment",
            "completion",
            "__gates",
            "help",
            "--version",
            "-h",
        ] {
            assert!(
                matches!(route(&[first.into()]), Route::Ours),
                "{first} was handed off"
            );
        }
        assert!(matches!(route(&[]), Route::Ours));
    }
}
