//! `atmos deployment diff <d> --from-target a --to-target b | --from-sha x --to-sha y`.

use atmos_core::diff::{DiffQuery, DiffReport, Side, diff};
use atmos_core::exit::Exit;
use atmos_core::git::short;
use atmos_core::identity::{self, process_env};
use atmos_core::workflow::drift::{self, DiffWithDrift, DriftResult, DriftState};
use jiff::Timestamp;
use serde_json::Value;

use crate::cli::{DiffArgs, Format};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::time::ago;

/// Compare.
pub fn run(args: &DiffArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "diff")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let d = &loaded.deployment;
    for t in [&args.from_target, &args.to_target, &args.target]
        .into_iter()
        .flatten()
    {
        atmos_core::config::UnknownTarget::check(d, t)?;
    }
    if let Some(c) = &args.component
        && d.components.by_name(c).is_none()
    {
        return Err(Failure::usage(
            format!("deployment `{}` has no component `{c}`", d.name),
            Some(format!(
                "its components: {}",
                d.components
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ));
    }
    let side = |target: &Option<String>, sha: &Option<String>| match (target, sha) {
        (Some(t), _) => Side::Target(t.clone()),
        (None, Some(s)) => Side::Commit(s.clone()),
        (None, None) => Side::Commit("HEAD".into()),
    };
    let query = DiffQuery {
        from: side(&args.from_target, &args.from_sha),
        to: side(&args.to_target, &args.to_sha),
        component: args.component.clone(),
        show_files: args.show_files,
        context_target: args.target.clone(),
    };
    let git = ctx.git(&project)?;
    let report = diff(&git, &loaded, &project.root, &query)?;

    let drift = if args.check_drift {
        let targets: Vec<&str> = [&args.from_target, &args.to_target]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if targets.is_empty() {
            return Err(Failure::usage(
                "--check-drift compares targets with their infrastructure: use --from-target/--to-target",
                None,
            ));
        }
        let actor = identity::actor(&process_env, git.config_string("user.email"));
        Some(drift::check(
            &project,
            &loaded,
            &targets,
            args.component.as_deref(),
            &actor,
        )?)
    } else {
        None
    };
    let out = DiffWithDrift {
        diff: report,
        drift,
    };
    let verbose = ctx.out.verbose > 0;
    let text = ctx
        .out
        .structured(&out)
        .unwrap_or_else(|| render(&out.diff, out.drift.as_deref(), &project, verbose));
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}

fn label(s: &atmos_core::diff::SideSummary) -> String {
    s.target
        .clone()
        .unwrap_or_else(|| s.commit.as_deref().map(short).unwrap_or("?").to_owned())
}

/// The name of a side in the "Commit Diff" lines: the target, or `from`/`to` for commits.
fn side_name(s: &atmos_core::diff::SideSummary, which: &str) -> String {
    s.target.clone().unwrap_or_else(|| which.to_owned())
}

fn value(v: &Option<Value>) -> String {
    match v {
        None => "(unset)".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn render(
    r: &DiffReport,
    drift: Option<&[DriftResult]>,
    project: &atmos_core::config::Project,
    verbose: bool,
) -> String {
    let now = Timestamp::now();
    let (from, to) = (label(&r.from), label(&r.to));
    let mut out = format!("{}: {from} vs {to}\n\nCommit Diff:\n", r.deployment);
    let names = [side_name(&r.from, "from"), side_name(&r.to, "to")];
    let width = names[0].len().max(names[1].len()) + 1;
    for (s, name) in [&r.from, &r.to].into_iter().zip(&names) {
        let commit = s
            .commit
            .as_deref()
            .map(|c| c[..c.len().min(9)].to_owned())
            .unwrap_or_else(|| "(nothing deployed)".into());
        let when = s
            .deployed_at
            .as_deref()
            .map(|d| format!(" (deployed {})", ago(d, now)))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<width$} {commit}{when}\n",
            format!("{name}:")
        ));
    }
    if let (Some(behind), Some(ahead)) = (r.behind, r.ahead) {
        out.push_str(&format!("  Commits behind: {behind}\n"));
        if ahead > 0 {
            out.push_str(&format!(
                "  Commits ahead: {ahead} (in {from}, not in {to})\n"
            ));
        }
    }
    // A mixed side stands for its newest commit: commits an older component lacks are not
    // in the log.
    for (name, n) in [(&from, r.commits_run(true)), (&to, r.commits_run(false))] {
        if n > 1 {
            out.push_str(&format!("  ({name} is mixed: its components run {n} commits; the log is from its newest; --component NAME compares one)\n"));
        }
    }
    out.push_str("\nComponent Changes:\n");
    let w = r
        .components
        .iter()
        .map(|c| c.component.len())
        .max()
        .unwrap_or(0)
        + 1;
    for c in &r.components {
        let side =
            |x: &Option<String>| x.as_deref().map_or("-".to_owned(), |s| short(s).to_owned());
        out.push_str(&format!(
            "  {:<w$} {} → {}  ({})\n",
            format!("{}:", c.component),
            side(&c.from),
            side(&c.to),
            if c.changed { "changed" } else { "no change" }
        ));
    }
    match &r.config_target {
        Some(t) => out.push_str(&format!(
            "\nConfiguration Changes (merged for {t}, as {t} would get them):\n"
        )),
        None => out.push_str("\nConfiguration Changes:\n"),
    }
    if r.config.is_empty() && r.config_notes.is_empty() {
        out.push_str("  (no vars on either side)\n");
    }
    let shown: Vec<_> = r
        .config
        .iter()
        .filter(|c| verbose || c.change != "unchanged")
        .collect();
    let hidden = r.config.len() - shown.len();
    let w = shown.iter().map(|c| c.key.len()).max().unwrap_or(0) + 1;
    for c in &shown {
        let change = if c.change == "unchanged" {
            "no change"
        } else {
            c.change
        };
        out.push_str(&format!(
            "  {:<w$} {} → {}  ({change})\n",
            format!("{}:", c.key),
            value(&c.from),
            value(&c.to)
        ));
    }
    if hidden > 0 {
        out.push_str(&format!(
            "  ({hidden} value{} unchanged; -v lists them)\n",
            atmos_core::plural::s(hidden)
        ));
    }
    for n in &r.config_notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    if !r.target_differences.is_empty() {
        out.push_str(&format!(
            "\nDiffers by target, not a change ({from} → {to} at the same commit):\n"
        ));
        let w = r
            .target_differences
            .iter()
            .map(|c| c.key.len())
            .max()
            .unwrap_or(0)
            + 1;
        for c in &r.target_differences {
            out.push_str(&format!(
                "  {:<w$} {} → {}\n",
                format!("{}:", c.key),
                value(&c.from),
                value(&c.to)
            ));
        }
    }
    out.push_str(&format!(
        "\nFile Changes ({} commit{}):\n",
        r.log.len(),
        atmos_core::plural::s(r.log.len())
    ));
    match &r.log_paths {
        Some(p) if p.is_empty() => out.push_str(
            "  (every commit: the component's settings name no files, e.g. settings.<type>.source)\n",
        ),
        Some(p) => out.push_str(&format!("  (commits touching {})\n", p.join(", "))),
        None => {}
    }
    if r.log.is_empty() {
        // Say only what was established: with a side never deployed, nothing was compared.
        let never = |s: &atmos_core::diff::SideSummary, name: &str| {
            s.commit
                .is_none()
                .then(|| format!("{name} has nothing deployed"))
        };
        match (never(&r.from, &from), never(&r.to, &to)) {
            (Some(a), Some(b)) => out.push_str(&format!("  (not compared: {a}, {b})\n")),
            (Some(a), None) | (None, Some(a)) => out.push_str(&format!("  (not compared: {a})\n")),
            (None, None) if r.behind.unwrap_or(0) > 0 => out.push_str(&format!(
                "  (none of the {} commit(s) {from} lacks touch these files)\n",
                r.behind.unwrap_or(0)
            )),
            (None, None) => out.push_str(&format!(
                "  (none: {from} already has everything in {to})\n"
            )),
        }
    }
    for e in &r.log {
        out.push_str(&format!("  {} ({})\n", e.subject, short(&e.sha)));
    }
    if let Some(files) = &r.files {
        out.push_str(&format!("\nChanged files ({}):\n", files.len()));
        for f in files {
            out.push_str(&format!("  {:<9} {}\n", f.status, f.path));
        }
    }
    out.push_str("\nInfrastructure Drift:\n");
    match drift {
        None => {
            out.push_str("  not checked (use --check-drift to run each component's plan command)\n")
        }
        Some(results) => {
            for d in results {
                let text = match d.state {
                    DriftState::NoDrift => "✓ no drift".to_owned(),
                    DriftState::Drift => "✗ drift detected".to_owned(),
                    DriftState::Error => {
                        format!("? check failed: {}", d.detail.clone().unwrap_or_default())
                    }
                    DriftState::NotCheckable => "- not checked: no plan command".to_owned(),
                    DriftState::NotDeployed => "- not deployed".to_owned(),
                };
                let log = d
                    .log
                    .as_ref()
                    .filter(|_| matches!(d.state, DriftState::Drift | DriftState::Error))
                    .map(|l| format!(" (log: {})", project.display_path(l).display()))
                    .unwrap_or_default();
                out.push_str(&format!("  {}/{}: {text}{log}\n", d.target, d.component));
            }
        }
    }
    out
}
