//! `docs/cli.md`, generated from the clap definitions: every command with its usage, what it
//! does, and each argument with its default and values. A unit test fails when the committed
//! file is stale (`ATMOS_BLESS=1 cargo test -p atmos-cli --bin atmos reference` regenerates
//! it). How the commands behave is explained in `docs/commands.md`.

use clap::{Arg, ArgAction, Command};

/// The whole reference.
pub fn markdown(root: &Command) -> String {
    let mut out = String::from(
        "# Command-line reference\n\n\
         Generated from the command definitions (`atmos <command> --help` prints the same); do \
         not edit by hand. How the commands behave — what they read and write, what they \
         print where, their exit codes — is in [commands](commands.md).\n\n\
         Exit codes: `0` done · `1` failed (an executor or git operation failed) · `2` bad \
         usage or invalid config · `3` denied by a gate · `4` pending (approval missing, lock \
         held).\n",
    );
    let mut commands = Vec::new();
    collect(root, &mut Vec::new(), &mut commands);
    out.push_str("\n## Commands\n\n");
    for (path, cmd) in &commands {
        if path.len() > 1 {
            out.push_str(&format!(
                "- [`{}`](#{}) — {}\n",
                path.join(" "),
                anchor(path),
                first_line(cmd)
            ));
        }
    }
    for (path, cmd) in &commands {
        out.push_str(&section(path, cmd));
    }
    out
}

fn collect<'a>(
    cmd: &'a Command,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'a Command)>,
) {
    if cmd.is_hide_set() {
        return;
    }
    path.push(cmd.get_name().to_owned());
    out.push((path.clone(), cmd));
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" {
            collect(sub, path, out);
        }
    }
    path.pop();
}

fn anchor(path: &[String]) -> String {
    path.join("-").to_lowercase()
}

fn first_line(cmd: &Command) -> String {
    cmd.get_about()
        .map(|a| a.to_string())
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_owned()
}

fn section(path: &[String], cmd: &Command) -> String {
    let level = if path.len() <= 1 { "##" } else { "###" };
    let mut out = format!("\n{level} `{}`\n\n", path.join(" "));
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        out.push_str(&format!("{}\n\n", about.to_string().trim()));
    }
    let mut usage = cmd.clone().bin_name(path.join(" "));
    out.push_str(&format!(
        "```\n{}\n```\n",
        usage
            .render_usage()
            .to_string()
            .trim_start_matches("Usage: ")
    ));
    let positionals: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_positional() && !a.is_hide_set())
        .collect();
    let options: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set() && !is_builtin(a))
        .filter(|a| !a.is_global_set() || path.len() <= 1)
        .collect();
    if !positionals.is_empty() || !options.is_empty() {
        out.push_str("\n| argument | meaning |\n|---|---|\n");
        for a in positionals.iter().chain(&options) {
            out.push_str(&format!("| {} | {} |\n", name(a), meaning(a)));
        }
    }
    if let Some(after) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        out.push_str(&format!("\n{}\n", after.to_string().trim()));
    }
    out
}

fn is_builtin(a: &Arg) -> bool {
    matches!(a.get_id().as_str(), "help" | "version")
}

fn name(a: &Arg) -> String {
    if a.is_positional() {
        let value = a
            .get_value_names()
            .and_then(|v| v.first().map(|s| s.to_string()))
            .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
        return format!("`<{value}>`");
    }
    let mut flags = Vec::new();
    if let Some(s) = a.get_short() {
        flags.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        flags.push(format!("--{l}"));
    }
    let takes_value = matches!(a.get_action(), ArgAction::Set | ArgAction::Append);
    let value = if takes_value {
        let v = a
            .get_value_names()
            .and_then(|v| v.first().map(|s| s.to_string()))
            .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
        format!(" {v}")
    } else {
        String::new()
    };
    let repeat = if matches!(a.get_action(), ArgAction::Append | ArgAction::Count) {
        " …"
    } else {
        ""
    };
    format!("`{}{value}`{repeat}", flags.join(", "))
}

fn meaning(a: &Arg) -> String {
    let mut text = a
        .get_long_help()
        .or(a.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default()
        .replace('\n', " ")
        .replace('|', "\\|");
    if !text.is_empty() && !text.ends_with('.') {
        text.push('.');
    }
    let values: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if !values.is_empty() && matches!(a.get_action(), ArgAction::Set | ArgAction::Append) {
        text.push_str(&format!(" Values: {}.", values.join(", ")));
    }
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", v.to_string_lossy()))
        .collect();
    if !defaults.is_empty() && matches!(a.get_action(), ArgAction::Set | ArgAction::Append) {
        text.push_str(&format!(" Default: {}.", defaults.join(", ")));
    }
    if let Some(env) = a.get_env() {
        text.push_str(&format!(" Environment: `{}`.", env.to_string_lossy()));
    }
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::CommandFactory;

    #[test]
    fn reference_is_generated_from_the_command_definitions() {
        let text = super::markdown(&crate::cli::Cli::command());
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            if std::env::var_os("ATMOS_BLESS").is_some() {
                std::fs::write(&path, &text).expect("write docs/cli.md");
            } else {
                panic!(
                    "docs/cli.md is stale; regenerate it with: ATMOS_BLESS=1 cargo test -p atmos-cli --bin atmos reference"
                );
            }
        }
        for verb in ["rollout", "approve", "build", "status", "policy test"] {
            assert!(
                text.contains(&format!("### `atmos deployment {verb}`")),
                "{verb} is documented"
            );
        }
    }
}
