//! `atmos deployment lock status|release <d> --target t`.

use atmos_core::exit::Exit;
use atmos_core::git::lock::{self, LockStatus, Store};

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
    if args.action == "release"
        && !args.force
        && let Some((_, live)) = lock::status(&git, store, &loaded.deployment.name, &args.target)?
        && !live.expired(jiff::Timestamp::now())
    {
        return Err(Failure::usage(
            format!(
                "{}/{} is held by {} (run {}, {} pid {}) until {}, and its rollout renews the lease while it runs",
                live.deployment,
                live.target,
                live.holder,
                live.run.as_deref().unwrap_or("-"),
                live.host,
                live.pid,
                live.expires_at
            ),
            Some(
                "wait for it (rollout --wait-for-lock), or add --force if that runner is known to be gone: its rollout stops within a minute of losing the lease"
                    .into(),
            ),
        ));
    }
    let (lease, released) = if args.action == "release" {
        (
            lock::clear(&git, store, &loaded.deployment.name, &args.target)?,
            true,
        )
    } else {
        (
            lock::status(&git, store, &loaded.deployment.name, &args.target)?.map(|(_, l)| l),
            false,
        )
    };
    let expired = lease
        .as_ref()
        .is_some_and(|l| l.expired(jiff::Timestamp::now()));
    let report = LockStatus {
        deployment: loaded.deployment.name.clone(),
        target: args.target.clone(),
        held: lease.is_some() && !released,
        expired,
        lease: lease.clone(),
        released: released && lease.is_some(),
    };
    let text = ctx
        .out
        .structured(&report)
        .unwrap_or_else(|| match (&lease, released) {
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
