//! Target locks: a rollout to `<deployment>/<target>` holds a lease —
//! `refs/atmos/locks/<deployment>/<target>` pointing at a JSON blob (holder, CI run, host,
//! start, expiry) — taken and released by compare-and-swap on the shared remote (or, without
//! one, in the local repository). Locks of different targets never touch each other. An
//! expired lease may be taken over: a runner that died mid-rollout blocks its target for at
//! most the lease's lifetime.

use std::time::Duration;

use git2::Oid;
use jiff::Timestamp;

use super::remote::{Expect, RefUpdate, Remote, RemoteError};
use super::{GitError, GitRepo, Libgit2};
use crate::contracts::Lease;
use crate::contracts::layout::lock_ref;

/// Why a lock could not be taken or read.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it.
    #[error("{} holds {}/{} since {} (until {})", .0.holder, .0.deployment, .0.target, .0.started_at, .0.expires_at)]
    Held(Box<Lease>),
    /// Remote failure.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// Local git failure.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The ref could not be locked for writing (another git process holds `packed-refs.lock`
    /// or the ref's own lock file).
    #[error("{refname} stayed locked by another git process")]
    Busy {
        /// The ref.
        refname: String,
    },
}

impl crate::error::Actionable for LockError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            LockError::Held(_) => crate::exit::Exit::Pending,
            LockError::Remote(e) => e.exit(),
            LockError::Git(e) => e.exit(),
            LockError::Busy { .. } => crate::exit::Exit::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            LockError::Held(l) => Some(format!(
                "wait for it with --wait-for-lock, or clear it if that runner is gone: atmos deployment lock release {} --target {}",
                l.deployment, l.target
            )),
            LockError::Remote(e) => e.hint(),
            LockError::Git(e) => e.hint(),
            LockError::Busy { .. } => Some(
                "a `git gc` or `git pack-refs` may still run; try again when it is done".into(),
            ),
        }
    }
}

/// What `lock status` and `lock release` report.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct LockStatus {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// Someone holds the lock now.
    pub held: bool,
    /// The lease has expired (the next rollout takes it over).
    pub expired: bool,
    /// The lease read (or released).
    pub lease: Option<Lease>,
    /// A lease was released by this command.
    pub released: bool,
}

crate::document!(LockStatus => "LockStatus");

/// A lock we hold.
#[derive(Debug, Clone)]
pub struct Held {
    /// The lock ref.
    pub refname: String,
    /// Our lease blob.
    pub blob: String,
    /// Our lease.
    pub lease: Lease,
    /// The expired lease we took over, if any.
    pub took_over: Option<Lease>,
}

/// Where locks live.
#[derive(Debug, Clone, Copy)]
pub enum Store<'a> {
    /// The local repository (no remote configured).
    Local,
    /// A shared remote.
    Remote(&'a Remote),
}

fn read_blob(git: &GitRepo, oid: &str) -> Option<Lease> {
    let blob = git.raw().find_blob(Oid::from_str(oid).ok()?).ok()?;
    serde_json::from_slice(blob.content()).ok()
}

/// The current lease of a target (fetched from the remote first), if any.
pub fn status(
    git: &GitRepo,
    store: Store<'_>,
    deployment: &str,
    target: &str,
) -> Result<Option<(String, Lease)>, LockError> {
    if let Store::Remote(r) = store {
        r.fetch_locks()?;
    }
    let name = lock_ref(deployment, target);
    let Some(entry) = git.refs().find(&name)? else {
        return Ok(None);
    };
    Ok(read_blob(git, &entry.oid).map(|l| (entry.oid, l)))
}

/// Compare-and-swap one lock ref in the store.
fn swap(
    git: &GitRepo,
    store: Store<'_>,
    name: &str,
    new: Option<&str>,
    expect: Expect,
) -> Result<bool, LockError> {
    match store {
        Store::Remote(r) => match r.push(&[RefUpdate {
            name: name.to_owned(),
            new: new.map(str::to_owned),
            expect,
        }]) {
            Ok(()) => Ok(true),
            Err(RemoteError::Rejected { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        },
        Store::Local => {
            let mut tx = git.raw().transaction().git()?;
            if tx.lock_ref(name).is_err() {
                return Ok(false);
            }
            let current = git.raw().refname_to_id(name).ok().map(|o| o.to_string());
            let matches = match &expect {
                Expect::Absent => current.is_none(),
                Expect::Value(v) => current.as_deref() == Some(v.as_str()),
            };
            if !matches {
                return Ok(false);
            }
            match new {
                Some(oid) => tx
                    .set_target(name, super::oid(oid)?, None, "atmos: lock")
                    .git()?,
                None => tx.remove(name).git()?,
            }
            tx.commit().git()?;
            Ok(true)
        }
    }
}

/// Take the lock of `lease.deployment/lease.target`, taking over an expired lease. Waits up
/// to `wait` (polling) while someone else holds it; `progress` is told each time.
pub fn acquire(
    git: &GitRepo,
    store: Store<'_>,
    lease: Lease,
    wait: Option<Duration>,
    progress: &dyn Fn(&Lease),
) -> Result<Held, LockError> {
    let name = lock_ref(&lease.deployment, &lease.target);
    let json = serde_json::to_vec_pretty(&lease).unwrap_or_default();
    let blob = git.raw().blob(&json).git()?.to_string();
    let started = std::time::Instant::now();
    loop {
        let current = status(git, store, &lease.deployment, &lease.target)?;
        let (expect, took_over) = match &current {
            None => (Expect::Absent, None),
            Some((oid, held))
                if held.expired(Timestamp::now())
                    || held.holder == lease.holder
                        && held.pid == lease.pid
                        && held.host == lease.host =>
            {
                (Expect::Value(oid.clone()), Some(held.clone()))
            }
            Some((_, held)) => {
                if wait.is_some_and(|w| started.elapsed() < w) {
                    progress(held);
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
                return Err(LockError::Held(Box::new(held.clone())));
            }
        };
        if swap(git, store, &name, Some(&blob), expect)? {
            if let Store::Remote(_) = store {
                // Mirror what the remote now holds.
                let _ = std::process::Command::new("git")
                    .args(["update-ref", &name, &blob])
                    .current_dir(git.workdir().unwrap_or(git.git_dir()))
                    .status();
            }
            return Ok(Held {
                refname: name,
                blob,
                lease,
                took_over,
            });
        }
        // Lost a race: read again.
    }
}

/// Extend a lease we hold until `expires` (compare-and-swap on our own blob). `Ok(None)` when
/// it is no longer ours: released or taken over by someone else.
pub fn renew(
    git: &GitRepo,
    store: Store<'_>,
    held: &Held,
    expires: Timestamp,
) -> Result<Option<Held>, LockError> {
    let mut lease = held.lease.clone();
    lease.expires_at = crate::contracts::layout::rfc3339(expires);
    let json = serde_json::to_vec_pretty(&lease).unwrap_or_default();
    let blob = git.raw().blob(&json).git()?.to_string();
    if !swap(
        git,
        store,
        &held.refname,
        Some(&blob),
        Expect::Value(held.blob.clone()),
    )? {
        // Refused: taken by someone else, or only busy (a ref lock held by another git
        // process) while it is still ours — then the next renewal tries again.
        let current = status(git, store, &held.lease.deployment, &held.lease.target)?;
        if current.is_some_and(|(oid, _)| oid == held.blob) {
            return Err(LockError::Busy {
                refname: held.refname.clone(),
            });
        }
        return Ok(None);
    }
    if let Store::Remote(_) = store {
        let _ = std::process::Command::new("git")
            .args(["update-ref", &held.refname, &blob])
            .current_dir(git.workdir().unwrap_or(git.git_dir()))
            .status();
    }
    Ok(Some(Held {
        refname: held.refname.clone(),
        blob,
        lease,
        took_over: None,
    }))
}

/// Release a lock we hold (only if it is still ours). A failure to write (a `packed-refs`
/// lock held by a concurrent `git pack-refs`, a remote that hiccups) is retried for a few
/// seconds before it is reported: a lock left behind holds every other runner up.
/// `busy` is told each time a try finds the ref locked by another git process.
pub fn release(
    git: &GitRepo,
    store: Store<'_>,
    held: &Held,
    on_busy: &dyn Fn(u32),
) -> Result<bool, LockError> {
    let mut delay = std::time::Duration::from_millis(100);
    let mut attempt = 0;
    let ok = loop {
        attempt += 1;
        // A fresh handle each time: libgit2 caches `packed-refs`, and a failed write can
        // leave that cache out of step with the file.
        let fresh = GitRepo::discover(git.git_dir())?;
        let git = &fresh;
        let result = swap(
            git,
            store,
            &held.refname,
            None,
            Expect::Value(held.blob.clone()),
        );
        // Still ours afterwards (not swapped, or "removed" while `packed-refs` was locked,
        // which libgit2 does not always report): the ref was busy, not taken by someone else.
        let busy = result.is_ok()
            && matches!(store, Store::Local)
            && git
                .raw()
                .refname_to_id(&held.refname)
                .is_ok_and(|o| o.to_string() == held.blob);
        match result {
            Ok(ok) if !busy => break ok,
            Err(e) if attempt >= RELEASE_ATTEMPTS => return Err(e),
            _ if attempt >= RELEASE_ATTEMPTS => {
                return Err(LockError::Busy {
                    refname: held.refname.clone(),
                });
            }
            _ => {
                on_busy(attempt);
                std::thread::sleep(delay);
                delay = delay.saturating_mul(2);
            }
        }
    };
    if ok && let Store::Remote(r) = store {
        let _ = r.fetch_locks();
    }
    Ok(ok)
}

/// How many times releasing a lock is tried (about 3 s in all).
pub const RELEASE_ATTEMPTS: u32 = 5;

/// Clear whatever lease a target has (`lock release`), by compare-and-swap on what was read.
pub fn clear(
    git: &GitRepo,
    store: Store<'_>,
    deployment: &str,
    target: &str,
) -> Result<Option<Lease>, LockError> {
    let Some((oid, lease)) = status(git, store, deployment, target)? else {
        return Ok(None);
    };
    if swap(
        git,
        store,
        &lock_ref(deployment, target),
        None,
        Expect::Value(oid),
    )? {
        if let Store::Remote(r) = store {
            let _ = r.fetch_locks();
        }
        Ok(Some(lease))
    } else {
        Err(LockError::Remote(RemoteError::Rejected {
            detail: "the lease changed while it was being released; look again with `lock status`"
                .into(),
        }))
    }
}
