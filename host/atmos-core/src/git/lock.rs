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
    /// The lock ref holds something that is not a lease (pushed by hand, or by another tool).
    #[error("{refname} does not hold a lease: {why}")]
    Malformed {
        /// The ref.
        refname: String,
        /// What is wrong with it.
        why: String,
    },
    /// Other runners kept taking the lock first, for as long as this one would wait.
    #[error("{refname} changed under every attempt to take it ({attempts} attempts in {}s)", waited.as_secs())]
    Contended {
        /// The ref.
        refname: String,
        /// Attempts made.
        attempts: u32,
        /// How long it tried.
        waited: Duration,
    },
}

impl crate::error::Actionable for LockError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            LockError::Held(_) => crate::exit::Exit::Pending,
            LockError::Remote(e) => e.exit(),
            LockError::Git(e) => e.exit(),
            LockError::Busy { .. } | LockError::Malformed { .. } | LockError::Contended { .. } => {
                crate::exit::Exit::Failed
            }
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
            LockError::Malformed { refname, .. } => {
                let (d, t) = refname
                    .trim_start_matches(&format!("{}/", crate::contracts::layout::LOCK_PREFIX))
                    .split_once('/')
                    .unwrap_or(("<deployment>", "<target>"));
                Some(format!(
                    "clear it: atmos deployment lock release {d} --target {t} --force"
                ))
            }
            LockError::Contended { .. } => Some(
                "many runners take turns on this target: wait longer with --wait-for-lock --timeout 30m"
                    .into(),
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
    /// What the lock ref holds instead of a lease, when it is not one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
    /// A lease was released by this command.
    pub released: bool,
}

pub use crate::contracts::limits::LEASE_MAX;

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

impl GitRepo {
    /// The lease in object `oid`: a blob of at most [`LEASE_MAX`] bytes holding one lease as
    /// JSON; anything else is said (what it is), never read as "not locked".
    pub fn read_lease(&self, oid: &str) -> Result<Lease, String> {
        let id = Oid::from_str(oid).map_err(|e| e.to_string())?;
        let odb = self.raw().odb().map_err(|e| e.message().to_owned())?;
        let (size, kind) = odb
            .read_header(id)
            .map_err(|e| format!("{}: {}", super::short(oid), e.message()))?;
        if kind != git2::ObjectType::Blob {
            return Err(format!("it points at a {kind}, not a lease blob"));
        }
        if size > LEASE_MAX {
            return Err(format!(
                "its blob holds {size} bytes; a lease is at most {LEASE_MAX}"
            ));
        }
        let blob = self
            .raw()
            .find_blob(id)
            .map_err(|e| e.message().to_owned())?;
        serde_json::from_slice::<Lease>(blob.content())
            .map_err(|e| format!("its blob is not a lease: {e}"))
    }
}

/// What a lock ref holds: a lease, or (pushed by hand) something else, said.
pub type Found = Result<Lease, String>;

/// The current lease of a target (fetched from the remote first), if any: the lock ref's
/// object and what it holds — a lease for another target is not this one's.
pub fn status(
    git: &GitRepo,
    store: Store<'_>,
    deployment: &str,
    target: &str,
) -> Result<Option<(String, Found)>, LockError> {
    if let Store::Remote(r) = store {
        r.fetch_locks()?;
    }
    let name = lock_ref(deployment, target);
    let Some(entry) = git.refs().find(&name)? else {
        return Ok(None);
    };
    let found = git.read_lease(&entry.oid).and_then(|l| {
        if l.deployment == deployment && l.target == target {
            Ok(l)
        } else {
            Err(format!(
                "it holds the lease of {}/{}, not of {deployment}/{target}",
                l.deployment, l.target
            ))
        }
    });
    Ok(Some((entry.oid, found)))
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

/// How long taking a lock may lose races to other runners when not asked to wait.
const RACE_WINDOW: Duration = Duration::from_secs(30);

/// Take the lock of `lease.deployment/lease.target`, taking over an expired lease. Waits up
/// to `wait` (polling, backing off) while someone else holds it; `progress` is told each time.
/// Every attempt talks to the store, so the attempts are bounded in number and time: a lock
/// that keeps changing, or holds something that is not a lease, is an error naming it.
pub fn acquire(
    git: &GitRepo,
    store: Store<'_>,
    lease: Lease,
    wait: Option<Duration>,
    progress: &dyn Fn(&Lease),
) -> Result<Held, LockError> {
    let name = lock_ref(&lease.deployment, &lease.target);
    let json = serde_json::to_vec_pretty(&lease).map_err(|e| GitError::Git {
        message: format!("the lease could not be written: {e}"),
    })?;
    let blob = git.raw().blob(&json).git()?.to_string();
    let started = std::time::Instant::now();
    let deadline = wait.unwrap_or(Duration::ZERO).max(RACE_WINDOW);
    let mut delay = Duration::from_millis(50);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let current = status(git, store, &lease.deployment, &lease.target)?;
        let (expect, took_over) = match current {
            None => (Expect::Absent, None),
            Some((_, Err(why))) => {
                return Err(LockError::Malformed {
                    refname: name.clone(),
                    why,
                });
            }
            Some((oid, Ok(held)))
                if held.expired(Timestamp::now())
                    || held.holder == lease.holder
                        && held.pid == lease.pid
                        && held.host == lease.host =>
            {
                (Expect::Value(oid), Some(held))
            }
            Some((_, Ok(held))) => {
                if wait.is_some_and(|w| started.elapsed() < w) {
                    progress(&held);
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
                return Err(LockError::Held(Box::new(held)));
            }
        };
        if swap(git, store, &name, Some(&blob), expect)? {
            if let Store::Remote(_) = store {
                // Mirror what the remote now holds (the next fetch would too). Best effort:
                // the lease is held on the remote whatever this clone's copy says, and a
                // failure here must not leave it held by nobody who will release it.
                let _ = git.set_refs(&[(name.clone(), Some(blob.clone()))]);
            }
            return Ok(Held {
                refname: name,
                blob,
                lease,
                took_over,
            });
        }
        // Lost a race: read again, after a while, for a while.
        if started.elapsed() >= deadline {
            return Err(LockError::Contended {
                refname: name,
                attempts,
                waited: started.elapsed(),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(2));
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
    let json = serde_json::to_vec_pretty(&lease).map_err(|e| GitError::Git {
        message: format!("the lease could not be written: {e}"),
    })?;
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
        // Best effort, as when it was taken: the renewed lease is on the remote.
        let _ = git.set_refs(&[(held.refname.clone(), Some(blob.clone()))]);
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

/// Clear whatever a target's lock ref holds (`lock release`) — a lease, or something that
/// is not one — by compare-and-swap on what was read; what it held.
pub fn clear(
    git: &GitRepo,
    store: Store<'_>,
    deployment: &str,
    target: &str,
) -> Result<Option<Found>, LockError> {
    let Some((oid, found)) = status(git, store, deployment, target)? else {
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
            r.fetch_locks()?;
        }
        Ok(Some(found))
    } else {
        Err(LockError::Remote(RemoteError::Rejected {
            detail: "the lease changed while it was being released; look again with `lock status`"
                .into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::layout::rfc3339;

    #[test]
    fn a_release_that_finds_packed_refs_busy_tries_again_and_releases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .status()
                .expect("git")
                .success();
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q"]);
        run(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ]);
        let git = GitRepo::discover(dir.path()).expect("open");
        let now = Timestamp::now();
        let lease = Lease {
            deployment: "svc".into(),
            target: "dev".into(),
            holder: "ci@example.com".into(),
            run: None,
            host: "h".into(),
            pid: 1,
            started_at: rfc3339(now),
            expires_at: rfc3339(now + Duration::from_secs(60)),
        };
        let held = acquire(&git, Store::Local, lease, None, &|_| {}).expect("acquire");
        // The lock ref is packed, and packed-refs is locked (a `git gc` at work) until the
        // release has found it busy once.
        run(&["pack-refs", "--all"]);
        let packed_lock = dir.path().join(".git/packed-refs.lock");
        std::fs::write(&packed_lock, "").expect("lock");
        let attempts = std::cell::Cell::new(0);
        let released = release(&git, Store::Local, &held, &|attempt| {
            attempts.set(attempt);
            let _ = std::fs::remove_file(&packed_lock);
        })
        .expect("released");
        assert!(released);
        assert_eq!(attempts.get(), 1, "found busy once, then released");
        let fresh = GitRepo::discover(dir.path()).expect("open");
        assert!(fresh.raw().find_reference(&held.refname).is_err());
    }
}
