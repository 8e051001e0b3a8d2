//! `atmos deployment verify [<d>] [--target t] [--since WHEN] [--remote NAME]` and
//! `atmos deployment verify --pre-receive` (git's server hook).

use std::io::Read;

use atmos_core::exit::Exit;
use atmos_core::git::GitRepo;
use atmos_core::history::{Bound, parse_time};
use atmos_core::workflow::store::open;
use atmos_core::workflow::verify::receive::{self, PushCheck};
use atmos_core::workflow::verify::{Problem, VerifyReport, VerifyRequest, verify};
use jiff::Timestamp;

use crate::cli::{Format, VerifyArgs};
use crate::context::Context;
use crate::failure::Failure;

/// Audit the records, or check a push.
pub fn run(args: &VerifyArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "verify")?;
    if args.pre_receive {
        return pre_receive(ctx);
    }
    if let Some(refname) = &args.repair {
        return repair(ctx, refname, args.reason.as_deref().unwrap_or_default());
    }
    let project = ctx.project()?;
    if let Some(d) = &args.deployment {
        let (_, loaded) = ctx.deployment(d)?;
        if let Some(t) = &args.target {
            atmos_core::config::UnknownTarget::check(&loaded.deployment, t)?;
        }
    }
    let since = args
        .since
        .as_deref()
        .map(|t| parse_time(t, Bound::Start, Timestamp::now()))
        .transpose()
        .map_err(|e| Failure::usage(format!("invalid --since: {e}"), None))?;
    // With --remote, verify what the remote holds: fetch it first.
    let loaded = args
        .deployment
        .as_deref()
        .map(|d| project.load(d))
        .transpose()?;
    match &args.remote {
        Some(_) => {
            open(&project, args.remote.as_deref(), false, loaded.as_ref())?;
        }
        // A clone that never fetched the records (a plain `git clone`) fetches them first:
        // verifying without the state refs would call every one of them deleted.
        None => ctx.refresh(
            &project,
            &crate::cli::FetchFirst {
                remote: None,
                offline: args.offline,
            },
            args.deployment.as_deref(),
        )?,
    }
    let git = ctx.git(&project)?;
    let report = verify(
        &project,
        &git,
        args.remote.as_deref(),
        &VerifyRequest {
            deployment: args.deployment.clone(),
            target: args.target.clone(),
            since,
            full: args.full,
        },
    )?;
    let text = ctx
        .out
        .structured(&report)
        .unwrap_or_else(|| render(&report));
    ctx.out.print(&text)?;
    Ok(if report.clean() {
        Exit::Done
    } else {
        Exit::Denied
    })
}

fn render(r: &VerifyReport) -> String {
    let c = &r.checked;
    let mut out = format!(
        "Verified {} record(s) and {} state ref(s) of {} by the rules of {} ({})\n",
        c.records,
        c.state_refs,
        if r.deployments.is_empty() {
            "no deployment".to_owned()
        } else {
            r.deployments.join(", ")
        },
        r.rules.source,
        r.rules.chosen_by
    );
    out.push_str(&format!(
        "  signed and verified: {}   unsigned (not required): {}   written before chaining: {}   promotion check skipped (recorded): {}\n",
        c.signed, c.unsigned, c.unchained, c.skipped_checks
    ));
    if c.unchecked > 0 {
        out.push_str(&format!(
            "  signed but not checkable (no approvers.allowed_signers): {}\n",
            c.unchecked
        ));
    }
    for i in &r.incremental {
        out.push_str(&format!(
            "  {}: checked what changed since it verified clean here at {} ({} histor{}); --full checks everything\n",
            i.deployment,
            i.since,
            i.histories,
            if i.histories == 1 { "y" } else { "ies" }
        ));
    }
    if !r.notices.is_empty() {
        out.push_str(&format!(
            "\n! {} notice(s), not problems:\n{}",
            r.notices.len(),
            problems(&r.notices)
        ));
    }
    if r.clean() {
        out.push_str("\n✓ No problems found\n");
        return out;
    }
    out.push_str(&format!("\n✗ {} problem(s) (exit 3):\n", r.problems.len()));
    out.push_str(&problems(&r.problems));
    out
}

fn problems(list: &[Problem]) -> String {
    list.iter()
        .map(|p| {
            format!(
                "  {}\n    {} [{}]\n",
                p.reference,
                p.message,
                serde_json::to_value(p.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// git's pre-receive hook: refusals go to stderr, which git shows the pusher.
fn pre_receive(ctx: &Context) -> Result<Exit, Failure> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Failure::usage(format!("cannot read the pre-receive input: {e}"), None))?;
    let updates = receive::parse_updates(&input).map_err(|e| Failure::usage(e, None))?;
    let mut git = GitRepo::open_from_env()?;
    let pusher =
        atmos_core::workflow::verify::pusher::Pusher::from_env(&atmos_core::identity::process_env);
    let check = receive::check(&mut git, &updates, Timestamp::now(), pusher.as_ref())?;
    if let Some(text) = ctx.out.structured(&check) {
        ctx.out.print(&text)?;
    }
    if check.accepted() {
        return Ok(Exit::Done);
    }
    ctx.out.eprint(&refusal(&check));
    Ok(Exit::Denied)
}

/// `--repair`: in the server's repository, as its administrator.
fn repair(ctx: &Context, refname: &str, reason: &str) -> Result<Exit, Failure> {
    let git = GitRepo::open_from_env()?;
    let who = atmos_core::identity::actor(
        &atmos_core::identity::process_env,
        git.config_string("user.email"),
    );
    let report = atmos_core::workflow::verify::repair::repair(
        &git,
        &atmos_core::workflow::verify::repair::RepairRequest {
            refname: refname.to_owned(),
            reason: reason.to_owned(),
            by: atmos_core::git::Author::of(&git, &who.id),
        },
    )?;
    let text = ctx.out.structured(&report).unwrap_or_else(|| {
        let mut out = format!(
            "Repaired {}: {} ({} → {})\n",
            report.refname,
            report.action,
            atmos_core::git::short(&report.old),
            report
                .new
                .as_deref()
                .map_or("removed", atmos_core::git::short)
        );
        for p in &report.problems {
            out.push_str(&format!("  {p}\n"));
        }
        out.push_str(&format!(
            "Logged in refs/atmos/audit as {} (git log refs/atmos/audit)\n",
            atmos_core::git::short(&report.audit)
        ));
        out
    });
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}

fn refusal(check: &PushCheck) -> String {
    format!(
        "atmos: push refused — {} problem(s), by the rules of {} at {}:\n{}",
        check.refused.len(),
        check.rules.source,
        check
            .rules
            .commit
            .as_deref()
            .map(atmos_core::git::short)
            .unwrap_or("-"),
        problems(&check.refused)
    )
}
