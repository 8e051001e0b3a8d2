//! `atmos deployment list [deployments | targets <d> | components <d> --target t] [--label k=v]`.

use atmos_core::exit::Exit;
use atmos_core::listing::{self, ComponentList, DeploymentList, LabelFilter, TargetList};

use crate::cli::{Format, ListArgs, ListWhat};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::table::Table;
use crate::render::time::ago;

const NEVER: &str = "never";

/// List what was asked for.
pub fn run(args: &ListArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "list")?;
    let labels = args
        .label
        .iter()
        .map(|l| {
            LabelFilter::parse(l).map_err(|e| {
                Failure::usage(
                    format!("invalid --label: {e}"),
                    Some("write --label key=value".into()),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let now = jiff::Timestamp::now();
    let text = match &args.what {
        None | Some(ListWhat::Deployments) => {
            let project = ctx.project()?;
            let catalog = project.load_all()?;
            let git = ctx.optional_git(&project);
            let report = listing::deployments(&catalog, &labels, git.as_ref())?;
            for broken in &report.broken {
                let errors = broken.diagnostics.iter().filter(|d| d.is_error()).count();
                let first = broken
                    .diagnostics
                    .first()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                ctx.out.warn(&format!(
                    "skipped deployment `{}` ({errors} error{}){first}\n  run `atmos deployment validate {}` for details",
                    broken.name,
                    atmos_core::plural::s(errors),
                    broken.name
                ));
            }
            ctx.out
                .structured(&report)
                .unwrap_or_else(|| render_deployments(&report, now))
        }
        Some(ListWhat::Targets { deployment }) => {
            let (project, loaded) = ctx.deployment(deployment)?;
            let git = ctx.optional_git(&project);
            let report = listing::targets(&loaded, &labels, git.as_ref())?;
            ctx.warn_unparseable(&report.unparseable);
            ctx.out
                .structured(&report)
                .unwrap_or_else(|| render_targets(&report, now))
        }
        Some(ListWhat::Components { deployment, target }) => {
            let (project, loaded) = ctx.deployment(deployment)?;
            let target = atmos_core::workflow::resolve_target(
                &loaded.deployment,
                target.as_deref(),
                "list components",
            )?;
            let git = ctx.optional_git(&project);
            let report = listing::components(&loaded, &target, &labels, git.as_ref())?;
            ctx.warn_unparseable(&report.unparseable);
            ctx.out
                .structured(&report)
                .unwrap_or_else(|| render_components(&report, now))
        }
    };
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}

fn summarize(names: &[String], max: usize) -> String {
    let mut shown: Vec<&str> = names.iter().take(max).map(String::as_str).collect();
    if names.len() > max {
        shown.push("…");
    }
    format!("{} ({})", names.len(), shown.join(", "))
}

fn render_deployments(report: &DeploymentList, now: jiff::Timestamp) -> String {
    let mut t = Table::new(["Name", "Targets", "Components", "Last Deploy"]);
    for d in &report.deployments {
        let last = d.last_deploy.as_ref().map_or_else(
            || NEVER.to_owned(),
            |l| format!("{} ({})", ago(&l.at, now), l.target),
        );
        t.row([
            d.name.clone(),
            d.targets.join(", "),
            summarize(&d.components, 3),
            last,
        ]);
    }
    let mut out = format!("Deployments ({})\n\n", report.deployments.len());
    if t.is_empty() {
        out.push_str("No deployments match.\n");
        if let Some(hint) = &report.label_hint {
            out.push_str(&format!("  = help: {hint}\n"));
        }
    } else {
        out.push_str(&t.render());
    }
    out
}

fn render_targets(report: &TargetList, now: jiff::Timestamp) -> String {
    let mut t = Table::new([
        "Target",
        "Promotion From",
        "Requires Approval",
        "Last Deploy",
        "Status",
    ]);
    for row in &report.targets {
        let from = if row.promotion_from.is_empty() {
            "(entry point)".to_owned()
        } else {
            row.promotion_from.join(", ")
        };
        t.row([
            row.name.clone(),
            from,
            if row.requires_approval { "yes" } else { "no" }.to_owned(),
            row.last_deploy
                .as_deref()
                .map_or_else(|| NEVER.to_owned(), |d| ago(d, now)),
            row.status.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    format!("{} targets\n\n{}", report.deployment, t.render())
}

fn render_components(report: &ComponentList, now: jiff::Timestamp) -> String {
    let mut t = Table::new([
        "Component",
        "Type",
        "Depends On",
        "Commit",
        "Deployed",
        "Status",
        "Health",
    ]);
    for c in &report.components {
        t.row([
            c.name.clone(),
            c.kind.to_string(),
            if c.depends_on.is_empty() {
                "-".to_owned()
            } else {
                c.depends_on.join(", ")
            },
            c.commit
                .as_deref()
                .map_or_else(|| "-".to_owned(), |s| atmos_core::git::short(s).to_owned()),
            c.deployed_at
                .as_deref()
                .map_or_else(|| NEVER.to_owned(), |d| ago(d, now)),
            c.status.clone().unwrap_or_else(|| "-".to_owned()),
            crate::render::health::cell(c.health.as_ref(), now),
        ]);
    }
    format!(
        "{} → {} components\n\n{}",
        report.deployment,
        report.target,
        t.render()
    )
}
