//! `atmos deployment history <d> [--target t] [--component c] [--limit n] [--since] [--until]`.

use atmos_core::exit::Exit;
use atmos_core::git::short;
use atmos_core::history::{Bound, HistoryEntry, HistoryQuery, HistoryReport, history, parse_time};
use jiff::Timestamp;

use crate::cli::{Format, HistoryArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::table::Table;
use crate::render::time::minute;

/// Show the timeline.
pub fn run(args: &HistoryArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "history")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let d = &loaded.deployment;
    if let Some(t) = &args.target {
        atmos_core::config::UnknownTarget::check(d, t)?;
    }
    if let Some(c) = &args.component
        && d.components.by_name(c).is_none()
    {
        let known: Vec<String> = d.components.iter().map(|c| c.name.to_owned()).collect();
        return Err(Failure::usage(
            format!("deployment `{}` has no component `{c}`", d.name),
            Some(format!("components: {}", known.join(", "))),
        ));
    }
    let now = Timestamp::now();
    let bound = |text: &Option<String>, b: Bound| -> Result<Option<Timestamp>, Failure> {
        text.as_deref()
            .map(|t| parse_time(t, b, now))
            .transpose()
            .map_err(|e| Failure::usage(format!("invalid time: {e}"), None))
    };
    let query = HistoryQuery {
        target: args.target.clone(),
        component: args.component.clone(),
        limit: args.limit,
        since: bound(&args.since, Bound::Start)?,
        until: bound(&args.until, Bound::End)?,
    };
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since > until
    {
        return Err(Failure::usage(
            format!("--since ({since}) is after --until ({until}): the range is empty"),
            Some("swap them, or drop one".into()),
        ));
    }
    ctx.refresh(&project, &args.fetch, Some(&d.name))?;
    let git = ctx.git(&project)?;
    let report = history(&git, &d.name, &query)?;
    ctx.warn_unparseable(&report.unparseable);
    let text = ctx
        .out
        .structured(&report)
        .unwrap_or_else(|| render(&report));
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}

fn details(e: &HistoryEntry) -> String {
    let mut parts = Vec::new();
    if let Some(r) = &e.runner {
        // A `started` record nothing completed (yet).
        parts.push(format!(
            "outcome unknown: pid {} on host {}{} — running, or its runner died (the next rollout records it as interrupted)",
            r.pid,
            r.host,
            r.run
                .as_deref()
                .map(|run| format!(", run {run}"))
                .unwrap_or_default()
        ));
    }
    if let Some(c) = &e.canary {
        let analysis = match &c.analysis {
            Some(a) if a.passed => ", analysis passed",
            Some(_) => ", analysis failed",
            None => "",
        };
        parts.push(if c.weight == 0 {
            format!("Canary aborted at step {}/{} (weight 0)", c.step, c.steps)
        } else {
            format!(
                "Canary step {}/{} ({}%){analysis}",
                c.step, c.steps, c.weight
            )
        });
    }
    if let Some(from) = &e.promoted_from {
        parts.push(format!("Promoted from {from}"));
    }
    if let Some(of) = &e.rollback_of {
        parts.push(format!("Rollback of {}", short(of)));
    }
    if let Some(from) = &e.rolled_forward_from {
        parts.push(format!("Roll-forward from {}", short(from)));
    }
    if let Some(pr) = &e.pr {
        parts.push(format!("PR {pr}"));
    }
    if !e.approved_by.is_empty() {
        parts.push(format!("Approved by {}", e.approved_by.join(", ")));
    }
    for (k, v) in &e.metadata {
        if k == "skip_promotion_check" {
            parts.push("promotion check skipped".to_owned());
        } else {
            parts.push(format!("{k}: {v}"));
        }
    }
    if let Some(err) = &e.error {
        parts.push(err.clone());
    }
    parts.join(", ")
}

fn render(r: &HistoryReport) -> String {
    let title = match &r.target {
        Some(t) => format!("{} → {t} deployment history", r.deployment),
        None => format!("{} deployment history", r.deployment),
    };
    let with_target = r.target.is_none();
    let mut header = vec!["Date", "Commit", "Component", "By", "Status", "Details"];
    if with_target {
        header.insert(1, "Target");
    }
    let mut table = Table::new(header);
    for e in &r.entries {
        let mut row = vec![
            minute(&e.timestamp),
            short(&e.commit).to_owned(),
            e.component.clone(),
            e.deployed_by.clone(),
            e.status.as_str().to_owned(),
            details(e),
        ];
        if with_target {
            row.insert(1, e.target.clone());
        }
        table.row(row);
    }
    let mut out = format!("{title}\n\n");
    if r.entries.is_empty() {
        out.push_str("No deployments recorded");
        out.push_str(if r.recorded == 0 {
            ".\n"
        } else {
            " in the shown range.\n"
        });
        return out;
    }
    out.push_str(&table.render());
    let n = r.rollouts;
    let noun = format!("rollout{}", atmos_core::plural::s(n));
    let rows = r.entries.len();
    let rows = if rows == n {
        String::new()
    } else {
        format!(", {rows} component records")
    };
    if r.total > n {
        out.push_str(&format!(
            "\nShowing {n} {noun}{rows} (use --limit to show more; {}{} match)\n",
            if r.counted_all { "" } else { "more than " },
            r.total
        ));
    } else {
        out.push_str(&format!("\nShowing {n} {noun}{rows}\n"));
    }
    out
}
