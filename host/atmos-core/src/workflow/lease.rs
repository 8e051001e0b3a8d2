//! Holding a target's lock for the length of a workflow: taken (or waited for) before
//! deciding, released when the guard is dropped, however the workflow ends.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::error::WorkflowError;
use super::events::{Event, Observer};
use crate::contracts::Lease;
use crate::contracts::layout::rfc3339;
use crate::git::GitRepo;
use crate::git::lock::{self, Held, Store};
use crate::git::remote::Remote;

/// Default lifetime of a lease when neither the command nor atmos.yaml sets one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 60);

/// How often a wait for someone else's lock is reported.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Who asks for the lock, and for how long.
#[derive(Debug, Clone)]
pub struct LeaseRequest {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// The deployer identity.
    pub holder: String,
    /// CI run id.
    pub run: Option<String>,
    /// Lifetime of the lease.
    pub ttl: Duration,
    /// Wait this long for another holder (`None`: do not wait).
    pub wait: Option<Duration>,
}

/// Releases the target's lock when dropped.
#[derive(Debug)]
pub struct LeaseGuard {
    root: PathBuf,
    remote: Option<Remote>,
    held: Held,
    released: bool,
}

impl LeaseGuard {
    /// The lease held.
    pub fn lease(&self) -> &Lease {
        &self.held.lease
    }

    /// Release the lock now (retried for a few seconds), saying why when it cannot be: a
    /// lock left behind holds every other runner up until it expires.
    pub fn release(&mut self) -> Result<(), String> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        let git = GitRepo::discover(&self.root).map_err(|e| e.to_string())?;
        let store = self.remote.as_ref().map_or(Store::Local, Store::Remote);
        match lock::release(&git, store, &self.held) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "the lock of {}/{} could not be released ({e}); it expires at {}, or clear it with `atmos deployment lock release {} --target {}`",
                self.held.lease.deployment,
                self.held.lease.target,
                self.held.lease.expires_at,
                self.held.lease.deployment,
                self.held.lease.target
            )),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        // Every path out releases; an error here has no one to tell (`release` reports it).
        let _ = self.release();
    }
}

/// Take the lock of `request.deployment/request.target` in the store (`remote`, else the
/// local repository), taking over an expired lease and telling `observer` while it waits.
pub fn acquire(
    git: &GitRepo,
    remote: Option<&Remote>,
    request: &LeaseRequest,
    observer: &dyn Observer,
) -> Result<LeaseGuard, WorkflowError> {
    let now = jiff::Timestamp::now();
    let ttl = jiff::SignedDuration::from_secs(i64::try_from(request.ttl.as_secs()).unwrap_or(0));
    let expires = now.checked_add(ttl).map_err(|e| WorkflowError::Duration {
        what: "lock ttl".into(),
        problem: e.to_string(),
    })?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    let lease = Lease {
        deployment: request.deployment.clone(),
        target: request.target.clone(),
        holder: request.holder.clone(),
        run: request.run.clone(),
        host,
        pid: std::process::id(),
        started_at: rfc3339(now),
        expires_at: rfc3339(expires),
    };
    let store = remote.map_or(Store::Local, Store::Remote);
    let last = std::cell::Cell::new(None::<Instant>);
    let progress = |held: &Lease| {
        if last.get().is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            last.set(Some(Instant::now()));
            observer.event(&Event::LockWaiting { held });
        }
    };
    let held = lock::acquire(git, store, lease, request.wait, &progress)?;
    if let Some(old) = &held.took_over
        && old.pid != held.lease.pid
    {
        observer.event(&Event::LockTakenOver { previous: old });
    }
    Ok(LeaseGuard {
        root: git.workdir().unwrap_or(git.git_dir()).to_owned(),
        remote: remote.cloned(),
        held,
        released: false,
    })
}
