//! Holding a target's lock for the length of a workflow: taken (or waited for) before
//! deciding, renewed while the workflow runs, released when the guard is dropped, however the
//! workflow ends.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::error::WorkflowError;
use super::events::{Event, Observer};
use crate::contracts::Lease;
use crate::contracts::layout::rfc3339;
use crate::git::GitRepo;
use crate::git::lock::{self, Held, Store};
use crate::git::lockfiles;
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

/// Holds the target's lock: renews the lease in the background while the workflow runs (a
/// rollout longer than the lease's lifetime keeps it), and releases it when dropped.
#[derive(Debug)]
pub struct LeaseGuard {
    root: PathBuf,
    remote: Option<Remote>,
    held: Arc<Mutex<Held>>,
    lost: Arc<Mutex<Option<String>>>,
    renewer: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    released: bool,
}

impl LeaseGuard {
    /// The lease held (as last renewed).
    pub fn lease(&self) -> Lease {
        self.held
            .lock()
            .map(|h| h.lease.clone())
            .unwrap_or_else(|e| e.into_inner().lease.clone())
    }

    /// Why the lease is no longer ours, once a renewal found it released or taken over.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// A flag that turns true when the lease is lost, for work that should stop then.
    pub fn lost_flag(&self) -> Arc<Mutex<Option<String>>> {
        self.lost.clone()
    }

    /// Release the lock now (retried for a few seconds), saying why when it cannot be: a
    /// lock left behind holds every other runner up until it expires.
    pub fn release(&mut self, observer: &dyn Observer) -> Result<(), String> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        // The renewer stops first: a renewal after the release would take the lock again.
        if let Some((stop, handle)) = self.renewer.take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
        if self.lost().is_some() {
            return Ok(());
        }
        let held = self
            .held
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let git = GitRepo::discover(&self.root).map_err(|e| e.to_string())?;
        let store = self.remote.as_ref().map_or(Store::Local, Store::Remote);
        let busy = |attempt: u32| {
            observer.event(&Event::Warning(format!(
                "the lock of {}/{} is busy (another git process holds its ref, e.g. `git gc` holding packed-refs.lock); releasing it again (attempt {} of {})",
                held.lease.deployment,
                held.lease.target,
                attempt + 1,
                lock::RELEASE_ATTEMPTS
            )));
        };
        match lock::release(&git, store, &held, &busy) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "the lock of {}/{} could not be released ({e}); it expires at {}, or clear it with `atmos deployment lock release {} --target {}`",
                held.lease.deployment,
                held.lease.target,
                held.lease.expires_at,
                held.lease.deployment,
                held.lease.target
            )),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        // Every path out releases; an error here has no one to tell (`release` reports it).
        let _ = self.release(&super::events::Silent);
    }
}

/// How long a rollout waits for lock files beside its refs to go (a git process in this
/// clone finishing an update) before it stops.
const LOCK_FILE_WAIT: Duration = Duration::from_secs(10);

/// Before a rollout of `deployment`/`target` writes anything: remove the provably stale lock
/// files beside the refs it writes (saying so), wait a moment for the others to go, and stop
/// with the commands that remove those that stay — never after its executors ran.
pub fn clear_lock_files(
    git: &GitRepo,
    deployment: &str,
    target: &str,
    observer: &dyn Observer,
) -> Result<(), WorkflowError> {
    let started = std::time::Instant::now();
    let mut announced = false;
    loop {
        let mut left = Vec::new();
        for file in lockfiles::find(git.common_dir(), deployment, target) {
            if file.stale() {
                match std::fs::remove_file(&file.path) {
                    Ok(()) => {
                        observer.event(&Event::Warning(format!(
                            "removed the stale lock file {} ({}): a git process killed mid-update left it",
                            file.path.display(),
                            file.describe()
                        )));
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(_) => {}
                }
            }
            left.push(file);
        }
        if left.is_empty() {
            return Ok(());
        }
        // Worth waiting for: one a process holds, or one written a moment ago (a git
        // process between writing it and renaming it). One older than the wait, held by no
        // process, will not go away by itself.
        let may_go = left.iter().any(|f| {
            matches!(f.holders, lockfiles::Holders::Processes(_))
                || f.age.is_none_or(|a| a < LOCK_FILE_WAIT)
        });
        if !may_go || started.elapsed() >= LOCK_FILE_WAIT {
            return Err(WorkflowError::LockFiles {
                files: left
                    .iter()
                    .map(|f| format!("{} ({})", f.path.display(), f.describe()))
                    .collect(),
                commands: left.iter().map(|f| f.remove_command()).collect(),
            });
        }
        if !announced {
            announced = true;
            observer.event(&Event::Warning(format!(
                "waiting up to {}s for {} lock file(s) to go: {}",
                LOCK_FILE_WAIT.as_secs(),
                left.len(),
                left.iter()
                    .map(|f| format!("{} ({})", f.path.display(), f.describe()))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How often a lease of lifetime `ttl` is renewed: a third of it, so that two renewals can
/// fail (a remote that hiccups) before it expires — and at least every minute, so that a lease
/// taken away (`lock release --force`) is noticed within a minute.
pub fn renew_every(ttl: Duration) -> Duration {
    (ttl / 3).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// The shortest lease accepted: renewals come at least a second apart and lease times are
/// written to the second, so a shorter one could lapse while it is being renewed.
pub const MIN_TTL: Duration = Duration::from_secs(3);

/// Renew `held` every `renew_every(ttl)` until told to stop; record in `lost` why it stopped
/// being ours.
fn renew_in_background(
    root: PathBuf,
    remote: Option<Remote>,
    held: Arc<Mutex<Held>>,
    lost: Arc<Mutex<Option<String>>>,
    ttl: Duration,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let every = renew_every(ttl);
        let ttl = jiff::SignedDuration::from_secs(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        loop {
            match stopped.recv_timeout(every) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let Ok(git) = GitRepo::discover(&root) else {
                continue;
            };
            let store = remote.as_ref().map_or(Store::Local, Store::Remote);
            let current = match held.lock() {
                Ok(h) => h.clone(),
                Err(_) => return,
            };
            let Ok(expires) = jiff::Timestamp::now().checked_add(ttl) else {
                return;
            };
            match lock::renew(&git, store, &current, expires) {
                Ok(Some(renewed)) => {
                    if let Ok(mut h) = held.lock() {
                        *h = renewed;
                    }
                }
                Ok(None) => {
                    let now = lock::status(
                        &git,
                        store,
                        &current.lease.deployment,
                        &current.lease.target,
                    )
                    .ok()
                    .flatten()
                    .map(|(_, found)| match found {
                        Ok(l) => format!(
                            "now held by {} (run {})",
                            l.holder,
                            l.run.as_deref().unwrap_or("-")
                        ),
                        Err(why) => format!("its lock ref was replaced: {why}"),
                    })
                    .unwrap_or_else(|| "released by someone else".into());
                    if let Ok(mut l) = lost.lock() {
                        *l = Some(format!(
                            "the lock of {}/{} is no longer ours: {now}",
                            current.lease.deployment, current.lease.target
                        ));
                    }
                    return;
                }
                // A remote that hiccups: the next attempt comes before the lease expires — unless
                // it would come too late. Then the lease cannot be counted on any more (a runner
                // cut off from the remote must not keep deploying once another may take over).
                Err(e) => {
                    let expires = current
                        .lease
                        .expires_at
                        .parse::<jiff::Timestamp>()
                        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                    let next = jiff::Timestamp::now()
                        .checked_add(jiff::SignedDuration::try_from(every).unwrap_or_default())
                        .unwrap_or(expires);
                    if next >= expires {
                        if let Ok(mut l) = lost.lock() {
                            *l = Some(format!(
                                "the lock of {}/{} could not be renewed before it expires at {} ({e})",
                                current.lease.deployment,
                                current.lease.target,
                                current.lease.expires_at
                            ));
                        }
                        return;
                    }
                }
            }
        }
    });
    (stop, handle)
}

/// This machine's name (`unknown-host` when the system does not say).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Take the lock of `request.deployment/request.target` in the store (`remote`, else the
/// local repository), taking over an expired lease and telling `observer` while it waits.
pub fn acquire(
    git: &GitRepo,
    remote: Option<&Remote>,
    request: &LeaseRequest,
    observer: &dyn Observer,
) -> Result<LeaseGuard, WorkflowError> {
    if request.ttl < MIN_TTL {
        return Err(WorkflowError::Duration {
            what: "lock ttl".into(),
            problem: format!(
                "{}s is too short: a lease is renewed at most every second and written to the second; use 3s or more",
                request.ttl.as_secs()
            ),
        });
    }
    let now = jiff::Timestamp::now();
    let ttl = jiff::SignedDuration::from_secs(i64::try_from(request.ttl.as_secs()).unwrap_or(0));
    let expires = now.checked_add(ttl).map_err(|e| WorkflowError::Duration {
        what: "lock ttl".into(),
        problem: e.to_string(),
    })?;
    let host = host_name();
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
    let root = git.workdir().unwrap_or(git.git_dir()).to_owned();
    let held = Arc::new(Mutex::new(held));
    let lost = Arc::new(Mutex::new(None));
    let renewer = renew_in_background(
        root.clone(),
        remote.cloned(),
        held.clone(),
        lost.clone(),
        request.ttl,
    );
    Ok(LeaseGuard {
        root,
        remote: remote.cloned(),
        held,
        lost,
        renewer: Some(renewer),
        released: false,
    })
}

/// `lock status`: what the target's lock ref holds now (read from `store`).
pub fn show(
    git: &GitRepo,
    store: Store<'_>,
    deployment: &str,
    target: &str,
) -> Result<lock::LockStatus, WorkflowError> {
    let found = lock::status(git, store, deployment, target)?.map(|(_, f)| f);
    Ok(report(deployment, target, found, false))
}

/// `lock release`: clear the target's lock — a live lease only with `force` (its runner is
/// known to be gone), an expired lease or something that is not a lease always.
pub fn release(
    git: &GitRepo,
    store: Store<'_>,
    deployment: &str,
    target: &str,
    force: bool,
) -> Result<lock::LockStatus, WorkflowError> {
    if !force
        && let Some((_, Ok(live))) = lock::status(git, store, deployment, target)?
        && !live.expired(jiff::Timestamp::now())
    {
        return Err(WorkflowError::LeaseLive {
            lease: Box::new(live),
        });
    }
    let found = lock::clear(git, store, deployment, target)?;
    Ok(report(deployment, target, found, true))
}

fn report(
    deployment: &str,
    target: &str,
    found: Option<lock::Found>,
    released: bool,
) -> lock::LockStatus {
    let (lease, malformed) = match found {
        None => (None, None),
        Some(Ok(l)) => (Some(l), None),
        Some(Err(why)) => (None, Some(why)),
    };
    lock::LockStatus {
        deployment: deployment.to_owned(),
        target: target.to_owned(),
        held: !released && (lease.is_some() || malformed.is_some()),
        expired: lease
            .as_ref()
            .is_some_and(|l| l.expired(jiff::Timestamp::now())),
        released: released && (lease.is_some() || malformed.is_some()),
        lease,
        malformed,
    }
}
