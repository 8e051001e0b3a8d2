//! `atmos deployment lock status|release <d> --target t`.

use atmos_core::exit::Exit;
use atmos_core::git::lock::Store;
use atmos_core::workflow::lease;

use crate::cli::{Format, LockArgs};
use crate::context::Context;
use crate::failure::Failure;
use atmos_core::workflow::store;

/// Show or clear a lock.
pub fn run(args: &LockArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "lock")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    atmos_core::config::UnknownTarget::check(&loaded.deployment, &args.target)?;
    let git = ctx.git(&project)?;
    // The lock lives where the target's records live: its own remote, or the shared store.
    let remote = store::Stores::for_target(
        &project,
        &loaded,
        &args.target,
        args.store.remote.as_deref(),
        args.store.offline,
    )?
    .main;
    if let Some(r) = &remote {
        r.fetch()?;
    }
    let store = remote.as_ref().map_or(Store::Local, Store::Remote);
    let d = &loaded.deployment.name;
    let report = if args.action == "release" {
        lease::release(&git, store, d, &args.target, args.force)?
    } else {
        lease::show(&git, store, d, &args.target)?
    };
    let (lease, released, expired) = (&report.lease, report.released, report.expired);
    let text = ctx
        .out
        .structured(&report)
        .unwrap_or_else(|| match (lease, released) {
            (None, _) if report.malformed.is_some() => format!(
                "{}/{}: the lock ref {} it: {}\n",
                report.deployment,
                report.target,
                if released {
                    "was cleared; it did not hold a lease:"
                } else {
                    "does not hold a lease, so every rollout stops at"
                },
                report.malformed.as_deref().unwrap_or_default()
            ),
            (None, _) => format!("{}/{} is not locked\n", report.deployment, report.target),
            (Some(l), true) => format!(
                "Released the lock of {}/{} held by {} (run {}, {} pid {}) since {}\n",
                l.deployment,
                l.target,
                l.holder,
                l.run.as_deref().unwrap_or("-"),
                l.host,
                l.pid,
                l.started_at
            ),
            (Some(l), false) => format!(
                "{}/{} is locked by {} (run {}, {} pid {})\n  since {}\n  until {}{}\n",
                l.deployment,
                l.target,
                l.holder,
                l.run.as_deref().unwrap_or("-"),
                l.host,
                l.pid,
                l.started_at,
                l.expires_at,
                if expired {
                    " — expired: the next rollout takes it over"
                } else {
                    ""
                }
            ),
        });
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}
