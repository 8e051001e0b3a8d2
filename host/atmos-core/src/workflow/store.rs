//! Which store a workflow uses — the shared remote (`--remote`, or atmos.yaml `git.remote`,
//! unless offline) or the local repository alone — and publishing a rollout's records to it
//! by compare-and-swap.

use super::error::WorkflowError;
use super::rollout::model::RolloutReport;
use crate::config::{LoadedDeployment, Project};
use crate::contracts::layout::state_ref;
use crate::executor::run::Outcome;
use crate::git::GitRepo;
use crate::git::remote::{Expect, RefUpdate, Remote, RemoteError};

/// How many times a refused push is read again and retried.
pub const PUBLISH_ATTEMPTS: u32 = 5;

/// Where a workflow on one target of one deployment reads and writes records: resolved once,
/// from the deployment as loaded, before anything starts.
#[derive(Debug, Clone, Default)]
pub struct Stores {
    /// The remote holding the target's records — fetched, locked and written — or `None`
    /// for the local repository alone.
    pub main: Option<Remote>,
    /// The deployment's other remotes (the shared store, other targets' own remotes): read
    /// before deciding, never written.
    pub readers: Vec<Remote>,
    /// Remotes the deployment names that this clone does not have: their records are not
    /// read (said once, as a warning).
    pub unknown: Vec<String>,
    /// `--remote` named the main one (so it is not checked against the trusted store).
    pub from_flag: bool,
    /// `--offline`: no remote is reached; records wait to be published.
    pub offline: bool,
    /// Offline: the remote the records would have gone to, which they are kept for (pushed
    /// by the next command that reaches it).
    pub later: Option<Remote>,
}

impl Stores {
    /// The stores of `target` of `loaded`: `asked` (`--remote`), else the target's own remote
    /// (`targets.<t>.remote`), else the shared store; with `offline`, none.
    pub fn for_target(
        project: &Project,
        loaded: &LoadedDeployment,
        target: &str,
        asked: Option<&str>,
        offline: bool,
    ) -> Result<Stores, WorkflowError> {
        let mut stores = Stores {
            from_flag: asked.is_some(),
            offline,
            ..Stores::default()
        };
        if offline {
            // A remote this clone does not know is not needed offline: the records then stay
            // local, as with no remote at all.
            stores.later = Stores::for_target(project, loaded, target, asked, false)
                .ok()
                .and_then(|s| s.main);
            return Ok(stores);
        }
        let d = &loaded.deployment;
        let own = d.targets.get(target).and_then(|t| t.remote.clone());
        let name = asked
            .map(str::to_owned)
            .or_else(|| own.clone())
            .or_else(|| project.settings.git.remote.clone());
        stores.main = match name {
            None => None,
            Some(name) if own.as_deref() == Some(name.as_str()) => {
                Some(Remote::open(&project.root, &name)?.for_target(&d.name, target))
            }
            Some(name) => Some(
                Remote::open(&project.root, &name)?
                    .for_deployment(&d.name)
                    .excluding(kept_elsewhere(loaded, &name)),
            ),
        };
        let (readers, unknown) = readers(project, loaded, stores.main.as_ref());
        stores.readers = readers;
        stores.unknown = unknown;
        Ok(stores)
    }

    /// The stores of `loaded` as a whole: `asked` (`--remote`) or the shared store, and the
    /// deployment's other remotes to read.
    pub fn for_deployment(
        project: &Project,
        loaded: &LoadedDeployment,
        asked: Option<&str>,
        offline: bool,
    ) -> Result<Stores, WorkflowError> {
        let main = remote(project, asked, offline, Some(loaded))?;
        let (readers, unknown) = match offline {
            true => (Vec::new(), Vec::new()),
            false => readers(project, loaded, main.as_ref()),
        };
        Ok(Stores {
            main,
            readers,
            unknown,
            from_flag: asked.is_some(),
            offline,
            later: None,
        })
    }

    /// The stores of an approval: those of its target, or of the deployment when no target
    /// is named (nor a default one).
    pub fn for_approval(
        project: &Project,
        loaded: &LoadedDeployment,
        target: Option<&str>,
        asked: Option<&str>,
        offline: bool,
    ) -> Result<Stores, WorkflowError> {
        let target = target.or(loaded.deployment.context.default_target.as_deref());
        match target {
            Some(t) if loaded.deployment.targets.contains_key(t) => {
                Stores::for_target(project, loaded, t, asked, offline)
            }
            _ => Stores::for_deployment(project, loaded, asked, offline),
        }
    }

    /// The name of the main remote, when there is one.
    pub fn main_name(&self) -> Option<&str> {
        self.main.as_ref().map(|r| r.name.as_str())
    }
}

/// The targets (`<deployment>/<target>`) of `loaded` whose records live on their own remote,
/// other than `name`: never fetched from `name`.
fn kept_elsewhere(loaded: &LoadedDeployment, name: &str) -> Vec<String> {
    let d = &loaded.deployment;
    d.targets
        .iter()
        .filter(|(_, t)| t.remote.as_deref().is_some_and(|r| r != name))
        .map(|(t, _)| format!("{}/{t}", d.name))
        .collect()
}

/// The remotes of `loaded` besides `main`, each scoped to what it holds, and the ones this
/// clone does not know (as warnings).
fn readers(
    project: &Project,
    loaded: &LoadedDeployment,
    main: Option<&Remote>,
) -> (Vec<Remote>, Vec<String>) {
    let d = &loaded.deployment;
    let main_key = main.map(|m| (m.name.clone(), m.only_target.clone()));
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    if let Some(shared) = &project.settings.git.remote {
        wanted.push((shared.clone(), None));
    }
    for (t, target) in &d.targets {
        if let Some(r) = &target.remote
            && Some(r) != project.settings.git.remote.as_ref()
        {
            wanted.push((r.clone(), Some(t.clone())));
        }
    }
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for (name, target) in wanted {
        if main_key.as_ref() == Some(&(name.clone(), target.clone())) {
            continue;
        }
        let opened = match &target {
            Some(t) => Remote::open(&project.root, &name).map(|r| r.for_target(&d.name, t)),
            None => Remote::open(&project.root, &name).map(|r| {
                r.for_deployment(&d.name)
                    .excluding(kept_elsewhere(loaded, &name))
            }),
        };
        match opened {
            Ok(r) => out.push(r),
            Err(e) => unknown.push(format!(
                "{e}: the records of {}{} there are not read",
                d.name,
                target.map(|t| format!("/{t}")).unwrap_or_default()
            )),
        }
    }
    (out, unknown)
}

/// The remote to use, not fetched yet — or `None` for local-only work. With `deployment`,
/// its fetches bring only that deployment's records (without the targets kept on their own
/// remotes); without, every deployment's (a deployment that does not load is read whole).
pub fn remote(
    project: &Project,
    asked: Option<&str>,
    offline: bool,
    deployment: Option<&LoadedDeployment>,
) -> Result<Option<Remote>, WorkflowError> {
    if offline {
        return Ok(None);
    }
    let Some(name) = asked
        .map(str::to_owned)
        .or_else(|| project.settings.git.remote.clone())
    else {
        return Ok(None);
    };
    let remote = Remote::open(&project.root, &name)?;
    Ok(Some(match deployment {
        Some(loaded) => remote
            .for_deployment(&loaded.deployment.name)
            .excluding(kept_elsewhere(loaded, &name)),
        None => {
            let mut elsewhere = Vec::new();
            for (d, _) in project.deployment_files()? {
                // A deployment that does not load names no target remotes: its records are
                // all fetched from here (validate reports the file).
                if let Ok(loaded) = project.load(&d) {
                    elsewhere.extend(kept_elsewhere(&loaded, &name));
                }
            }
            remote.excluding(elsewhere)
        }
    }))
}

/// The remote to use, fetched — or `None` for local-only work.
pub fn open(
    project: &Project,
    asked: Option<&str>,
    offline: bool,
    deployment: Option<&LoadedDeployment>,
) -> Result<Option<Remote>, WorkflowError> {
    let remote = remote(project, asked, offline, deployment)?;
    if let Some(r) = &remote {
        r.fetch()?;
    }
    Ok(remote)
}

/// Push what a rollout recorded: every new tag (create only) and every moved state ref (only
/// from the value read before the rollout), atomically. A refusal re-reads the remote: if
/// someone else moved one of our state refs, stop without overwriting it; else try again.
/// Returns the number of attempts it took.
pub fn publish(
    remote: &Remote,
    git: &GitRepo,
    report: &RolloutReport,
) -> Result<u32, WorkflowError> {
    let updates = updates(git, report)?;
    publish_updates(remote, updates)
}

/// Keep a rollout's records to publish when the remote is next reached (`--offline`).
pub fn keep_for_later(
    remote: &Remote,
    git: &GitRepo,
    report: &RolloutReport,
) -> Result<(), WorkflowError> {
    Ok(remote.save_pending(&updates(git, report)?)?)
}

/// The tags a rollout wrote (create only) and the state refs it moved (from their value
/// before the rollout).
fn updates(git: &GitRepo, report: &RolloutReport) -> Result<Vec<RefUpdate>, WorkflowError> {
    let mut updates = Vec::new();
    for c in &report.components {
        if let Some(tag) = &c.tag {
            let name = format!("refs/tags/{tag}");
            if let Some(e) = git.refs().find(&name)? {
                updates.push(RefUpdate {
                    name,
                    new: Some(e.oid),
                    expect: Expect::Absent,
                });
            }
        }
        if c.run
            .as_ref()
            .is_some_and(|r| r.outcome == Outcome::Succeeded)
        {
            updates.push(RefUpdate {
                name: state_ref(
                    &report.plan.deployment,
                    &report.plan.target,
                    &c.planned.name,
                ),
                new: Some(c.planned.new.clone()),
                expect: match &c.planned.current {
                    Some(v) => Expect::Value(v.clone()),
                    None => Expect::Absent,
                },
            });
        }
    }
    // An automatic rollback's records go with the rollout that caused it.
    for r in report
        .automatic_rollbacks
        .iter()
        .filter_map(|r| r.report.as_ref())
    {
        updates.extend(self::updates(git, r)?);
    }
    Ok(updates)
}

fn publish_updates(remote: &Remote, updates: Vec<RefUpdate>) -> Result<u32, WorkflowError> {
    for attempt in 1..=PUBLISH_ATTEMPTS {
        match remote.push(&updates) {
            Ok(()) => return Ok(attempt),
            Err(RemoteError::Rejected { detail }) => {
                remote.fetch()?;
                for u in updates.iter().filter(|u| u.name.starts_with("refs/atmos/")) {
                    let now = remote.remote_value(&u.name)?;
                    let expected = match &u.expect {
                        Expect::Value(v) => Some(v.clone()),
                        Expect::Absent => None,
                    };
                    if now != expected && now != u.new {
                        return Err(WorkflowError::MovedOnRemote {
                            refname: u.name.clone(),
                            remote: remote.name.clone(),
                            expected,
                            found: now,
                            detail,
                        });
                    }
                }
            }
            Err(e) => {
                // Out of reach: keep the records to publish before anything next reads the
                // remote (which would otherwise put its older state over them).
                remote.save_pending(&updates)?;
                return Err(e.into());
            }
        }
    }
    Err(WorkflowError::PushRefused {
        remote: remote.name.clone(),
        attempts: PUBLISH_ATTEMPTS,
    })
}

/// Publish to `remote` the records of `deployment`/`target` this clone has and the remote
/// lacks (history tags it does not have, state refs it does not have at all), in one atomic
/// create-only push; the number of refs published. A rollout with nothing to do calls this,
/// so that naming a remote that missed earlier records brings it up to date instead of
/// saying only "nothing to do". Refs the remote holds with other values are its own history
/// and are left alone.
pub fn publish_missing(
    remote: &Remote,
    git: &GitRepo,
    deployment: &str,
    target: &str,
) -> Result<usize, WorkflowError> {
    use crate::contracts::layout::{STATE_PREFIX, TAG_PREFIX};
    let state = format!("{STATE_PREFIX}/{deployment}/{target}/");
    let tags = format!("refs/tags/{TAG_PREFIX}/{deployment}/{target}/");
    let there = remote.list(&[format!("{state}*"), format!("{tags}*")])?;
    let mut updates = Vec::new();
    for e in git
        .refs()
        .list(&state)?
        .into_iter()
        .chain(git.refs().list(&tags)?)
    {
        if !there.contains_key(&e.name) {
            updates.push(RefUpdate {
                name: e.name,
                new: Some(e.oid),
                expect: Expect::Absent,
            });
        }
    }
    remote.push(&updates)?;
    Ok(updates.len())
}
