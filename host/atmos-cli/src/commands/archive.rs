//! `atmos deployment archive [<d>] [--keep AGE|COUNT] [--remote NAME] [--dry-run]`.

use atmos_core::exit::Exit;
use atmos_core::identity::{self, process_env};
use atmos_core::workflow::archive::{self, ArchiveReport, ArchiveRequest};

use crate::cli::{ArchiveArgs, Format};
use crate::context::Context;
use crate::failure::Failure;

/// Archive the history tags past the retention.
pub fn run(args: &ArchiveArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "archive")?;
    let (project, deployments) = match &args.deployment {
        Some(d) => {
            let (project, loaded) = ctx.deployment(d)?;
            (project, vec![loaded.deployment.name])
        }
        None => {
            let project = ctx.project()?;
            let names = project
                .deployment_files()?
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            (project, names)
        }
    };
    let git = ctx.git(&project)?;
    let request = ArchiveRequest {
        deployments,
        keep: args.keep.clone(),
        remote: args.remote.clone(),
        dry_run: args.dry_run,
        offline: args.offline,
        actor: identity::actor(&process_env, git.config_string("user.email")).id,
        now: jiff::Timestamp::now(),
    };
    let progress = |d: &str, done: usize, total: usize| {
        if total > archive::BATCH {
            ctx.out
                .eprint(&format!("archiving {d}: {done}/{total} records\n"));
        }
    };
    let report = archive::run(&project, &request, &progress)?;
    if !ctx.print_document(&report)? {
        ctx.out.print(&render(&report))?;
    }
    Ok(Exit::Done)
}

fn render(r: &ArchiveReport) -> String {
    let mut out = format!(
        "{} (keeping {} as tags{}):\n",
        if r.dry_run {
            "Would archive"
        } else {
            "Archived"
        },
        r.keep,
        r.remote
            .as_deref()
            .map(|m| format!("; pushed to {m}"))
            .unwrap_or_default()
    );
    for d in &r.deployments {
        let verb = if r.dry_run { "would move" } else { "moved" };
        out.push_str(&format!(
            "  {}: {} record{} {verb} into the ledger; {} tag{} left, {} record{} in the ledger, {} in all (was {})\n",
            d.deployment,
            d.archived,
            plural(d.archived),
            d.tags,
            plural(d.tags),
            d.ledger_records,
            plural(d.ledger_records),
            d.records_after,
            d.records_before,
        ));
        if d.pruned > 0 {
            out.push_str(&format!(
                "    {} tag{} here already archived by another clone {}\n",
                d.pruned,
                plural(d.pruned),
                if r.dry_run {
                    "would be removed"
                } else {
                    "removed"
                }
            ));
        }
        for s in &d.skipped {
            out.push_str(&format!("    kept {}: {}\n", s.tag, s.reason));
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    atmos_core::plural::s(n)
}
