//! `atmos deployment fetch [<d>] [--remote NAME]` and `atmos deployment fetch --setup`.

use atmos_core::exit::Exit;
use atmos_core::workflow::sync::{self, FetchReport, SetupReport};

use crate::cli::{FetchArgs, Format};
use crate::context::Context;
use crate::failure::Failure;

/// Fetch the records, or set the remote up so that `git fetch` does.
pub fn run(args: &FetchArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "fetch")?;
    if args.setup {
        let project = ctx.project()?;
        let remote = remote_of(args, ctx, &project);
        let report = sync::setup(&project, remote.as_deref())?;
        if !ctx.print_document(&report)? {
            ctx.out.print(&render_setup(&report))?;
        }
        return Ok(Exit::Done);
    }
    let project = match &args.deployment {
        // The name is checked here, so that a typo is a did-you-mean, not an empty fetch.
        Some(d) => ctx.deployment(d)?.0,
        None => ctx.project()?,
    };
    let remote = remote_of(args, ctx, &project);
    let report = sync::fetch(&project, remote.as_deref(), args.deployment.as_deref())?;
    for w in &report.warnings {
        ctx.out.warn(w);
    }
    if !ctx.print_document(&report)? {
        ctx.out.print(&render(&report))?;
    }
    Ok(Exit::Done)
}

/// `--remote`, else the store: atmos.yaml `git.remote`, else the clone's only remote.
fn remote_of(
    args: &FetchArgs,
    ctx: &Context,
    project: &atmos_core::config::Project,
) -> Option<String> {
    args.remote.clone().or_else(|| {
        ctx.optional_git(project)
            .and_then(|git| atmos_core::workflow::store::default_remote(project, &git))
    })
}

fn render(r: &FetchReport) -> String {
    let what = r
        .deployment
        .as_deref()
        .map_or_else(|| "every deployment".to_owned(), |d| d.to_owned());
    let mut out = format!("Fetched {what} from {}: ", r.remotes.join(" and "));
    if r.moved.is_empty() && r.new_tags == 0 && r.notes.is_empty() {
        out.push_str("already up to date");
    } else {
        let mut parts = Vec::new();
        if !r.moved.is_empty() {
            parts.push(format!(
                "{} state ref{} moved",
                r.moved.len(),
                atmos_core::plural::s(r.moved.len())
            ));
        }
        if r.new_tags > 0 {
            parts.push(format!(
                "{} new record{}",
                r.new_tags,
                atmos_core::plural::s(r.new_tags)
            ));
        }
        if !r.notes.is_empty() {
            parts.push(format!("notes of {}", r.notes.join(", ")));
        }
        out.push_str(&parts.join(", "));
    }
    out.push_str(&format!(
        " ({} state refs, {} records here)\n",
        r.state_refs, r.tags
    ));
    for m in &r.moved {
        out.push_str(&format!("  {m}\n"));
    }
    for p in &r.published {
        out.push_str(&format!("  {p}\n"));
    }
    out
}

fn render_setup(r: &SetupReport) -> String {
    let mut out = if r.added.is_empty() {
        format!("{} already fetches atmos's records:\n", r.remote)
    } else {
        format!(
            "`git fetch {}` now brings atmos's records too (added to remote.{}.fetch):\n",
            r.remote, r.remote
        )
    };
    for spec in &r.refspecs {
        out.push_str(&format!("  {spec}\n"));
    }
    out.push_str("Notes (approvals, SBOMs, builds) arrive beside the local ones and are merged by the next atmos command that fetches.\n");
    out
}
