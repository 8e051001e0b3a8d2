//! `atmos deployment status [<d> [--target t]]`.

use atmos_core::contracts::Status;
use atmos_core::exit::Exit;
use atmos_core::git::short;
use atmos_core::status::{ComponentStatus, StatusOverview, StatusReport, overview, status};
use jiff::Timestamp;

use crate::cli::{Format, StatusArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::table::Table;
use crate::render::time::{ago, ago_clock, clock};

/// Show status.
pub fn run(args: &StatusArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "status")?;
    let now = Timestamp::now();
    let Some(name) = &args.deployment else {
        let project = ctx.project()?;
        ctx.refresh(&project, &args.fetch, None)?;
        let git = ctx.git(&project)?;
        let catalog = project.load_all()?;
        for (broken, _) in &catalog.broken {
            ctx.out.warn(&format!(
                "skipped deployment `{broken}`: its file is invalid (run `atmos deployment validate {broken}`)"
            ));
        }
        let all = overview(&git, &catalog)?;
        ctx.warn_unparseable(&all.unparseable);
        ctx.warn_from_records(&all.from_records(), None);
        let text = ctx
            .out
            .structured(&all)
            .unwrap_or_else(|| render_all(&all, now));
        ctx.out.print(&text)?;
        return Ok(Exit::Done);
    };
    let (project, loaded) = ctx.deployment(name)?;
    if let Some(t) = &args.target {
        atmos_core::config::UnknownTarget::check(&loaded.deployment, t)?;
    }
    ctx.refresh(&project, &args.fetch, Some(&loaded.deployment.name))?;
    let git = ctx.git(&project)?;
    let mut report = status(&git, &loaded, args.target.as_deref())?;
    if args.check_health {
        atmos_core::workflow::health::check(&project, &git, &loaded, &mut report)?;
    }
    ctx.warn_unparseable(&report.unparseable);
    ctx.warn_from_records(&report.from_records(), Some(name));
    let text = ctx
        .out
        .structured(&report)
        .unwrap_or_else(|| match &args.target {
            Some(_) => render_target(&report, now),
            None => render_deployment(name, &report, now),
        });
    ctx.out.print(&text)?;
    // A health check is a check: what did not answer healthy (or degraded) fails it.
    let failing = args.check_health
        && report
            .targets
            .iter()
            .flat_map(|t| &t.components)
            .filter_map(|c| c.health.as_ref())
            .any(|h| {
                matches!(
                    h.status,
                    atmos_core::status::HealthStatus::Unhealthy
                        | atmos_core::status::HealthStatus::Unknown
                )
            });
    Ok(if failing { Exit::Failed } else { Exit::Done })
}

fn commit_cell(c: &ComponentStatus) -> String {
    c.commit
        .as_deref()
        .map_or("-".to_owned(), |s| short(s).to_owned())
}

fn status_cell(c: &ComponentStatus) -> String {
    let base = match (&c.status, &c.last_attempt) {
        (Some(s), _) => s.as_str().to_owned(),
        (None, Some(a)) => a.status.as_str().to_owned(),
        (None, None) if c.commit.is_some() => "unknown".to_owned(),
        (None, None) => atmos_core::status::last_rollout::NOT_DEPLOYED.to_owned(),
    };
    let mut out = base;
    if let Some(a) = &c.last_attempt
        && c.status.is_some()
    {
        match a.status {
            Status::Failure | Status::Interrupted => {
                out = format!(
                    "{} at {} (still runs {})",
                    a.status.as_str(),
                    short(&a.git_sha),
                    commit_cell(c)
                );
            }
            Status::Started => out = format!("outcome unknown (still runs {})", commit_cell(c)),
            Status::Canary => {
                if let Some(k) = &a.canary {
                    out = format!(
                        "canary at step {} of {} ({}%) of {} (the state names {}; rollout --continue or --abort)",
                        k.step,
                        k.steps,
                        k.weight,
                        short(&a.git_sha),
                        commit_cell(c)
                    );
                }
            }
            _ => {}
        }
    }
    if c.status.is_none()
        && c.last_attempt
            .as_ref()
            .is_some_and(|a| a.status == Status::Started)
    {
        out = "outcome unknown".to_owned();
    }
    if !c.in_config {
        out.push_str(" (not in config)");
    }
    out
}

fn render_target(report: &StatusReport, now: Timestamp) -> String {
    let Some(t) = report.targets.first() else {
        return String::new();
    };
    let checked = t.components.iter().any(|c| c.health.is_some());
    let mut header = vec!["Component", "Commit", "Deployed", "By", "Status"];
    if checked {
        header.push("Health");
    }
    let mut table = Table::new(header);
    for c in &t.components {
        let mut row = vec![
            c.component.clone(),
            commit_cell(c),
            c.deployed_at
                .as_deref()
                .map_or("never".to_owned(), |d| ago_clock(d, now)),
            c.deployed_by.clone().unwrap_or_else(|| "-".to_owned()),
            status_cell(c),
        ];
        if checked {
            row.push(crate::render::health::cell(c.health.as_ref(), now));
        }
        table.row(row);
    }
    let mut out = format!("{} → {}\n\n{}", t.deployment, t.target, table.render());
    let joined = |f: &dyn Fn(&ComponentStatus) -> Option<String>| {
        let mut values: Vec<String> = t.components.iter().filter_map(f).collect();
        values.dedup();
        values.sort();
        values.dedup();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let mut footer = Vec::new();
    if let Some(v) = joined(&|c| c.promoted_from.clone()) {
        footer.push(format!("Promoted from: {v}"));
    }
    if let Some(v) = joined(&|c| {
        // Each approver with the time of their approval (not the deploy time).
        (!c.approved_by.is_empty()).then(|| {
            c.approved_by
                .iter()
                .enumerate()
                .map(|(i, who)| match c.approved_at.get(i).cloned().flatten() {
                    Some(at) => format!("{who} ({})", clock(&at)),
                    None => who.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    }) {
        footer.push(format!("Approved by: {v}"));
    }
    if let Some(v) = joined(&|c| c.build_id.clone()) {
        footer.push(format!("Build ID: {v}"));
    }
    if let Some(v) = joined(&|c| c.pr.clone()) {
        footer.push(format!("PR: {v}"));
    }
    let images: Vec<String> = t
        .components
        .iter()
        .filter_map(|c| {
            c.image_digest
                .as_deref()
                .map(|d| format!("{} {}", c.component, atmos_core::git::prefix(d, 19)))
        })
        .collect();
    if !images.is_empty() {
        footer.push(format!("Images: {}", images.join(", ")));
    }
    if let Some(s) = &t.sbom {
        footer.push(format!(
            "SBOM: {} components, {} dependencies; {}",
            s.components.len(),
            s.dependencies,
            match &s.vulnerabilities {
                Some(v) => format!(
                    "vulnerabilities: {} critical, {} high, {} medium, {} low",
                    v.critical, v.high, v.medium, v.low
                ),
                None => "not scanned for vulnerabilities".to_owned(),
            }
        ));
    }
    footer.extend(crate::render::unfinished::lines(t));
    if !footer.is_empty() {
        out.push('\n');
        for line in footer {
            out.push_str(&crate::render::table::visible(&line));
            out.push('\n');
        }
    }
    out
}

fn render_deployment(name: &str, report: &StatusReport, now: Timestamp) -> String {
    let checked = report
        .targets
        .iter()
        .any(|t| t.components.iter().any(|c| c.health.is_some()));
    let mut header = vec!["Target", "Component", "Commit", "Deployed", "Status"];
    if checked {
        header.push("Health");
    }
    let mut table = Table::new(header);
    for t in &report.targets {
        for c in &t.components {
            let mut row = vec![
                t.target.clone(),
                c.component.clone(),
                commit_cell(c),
                c.deployed_at
                    .as_deref()
                    .map_or("never".to_owned(), |d| ago(d, now)),
                status_cell(c),
            ];
            if checked {
                row.push(crate::render::health::cell(c.health.as_ref(), now));
            }
            table.row(row);
        }
    }
    let mut out = format!("{name}\n\n{}", table.render());
    let notes: Vec<String> = report
        .targets
        .iter()
        .flat_map(crate::render::unfinished::lines)
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for line in notes {
            out.push_str(&crate::render::table::visible(&line));
            out.push('\n');
        }
    }
    out
}

fn render_all(all: &StatusOverview, now: Timestamp) -> String {
    let mut table = Table::new(["Deployment", "Target", "Commit", "Deployed", "Last rollout"]);
    for d in &all.deployments {
        for t in &d.targets {
            let commit = match (&t.commit, t.mixed) {
                (Some(c), false) => short(c).to_owned(),
                (Some(c), true) => format!("{} (mixed)", short(c)),
                (None, _) => "-".to_owned(),
            };
            table.row([
                d.deployment.clone(),
                t.target.clone(),
                commit,
                t.deployed_at
                    .as_deref()
                    .map_or("never".to_owned(), |x| ago(x, now)),
                match t.health {
                    Some(h) => format!("{} ({})", t.last_rollout, h.as_str()),
                    None => t.last_rollout.to_owned(),
                },
            ]);
        }
    }
    format!(
        "Deployments ({})\n\n{}",
        all.deployments.len(),
        table.render()
    )
}
