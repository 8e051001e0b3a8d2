//! Which store a workflow uses — the shared remote (`--remote`, or atmos.yaml `git.remote`,
//! unless offline) or the local repository alone — and publishing a rollout's records to it
//! by compare-and-swap.

use super::error::WorkflowError;
use super::rollout::model::RolloutReport;
use crate::config::{LoadedDeployment, Project};
use crate::contracts::layout::state_ref;
use crate::executor::run::Outcome;
use crate::git::GitRepo;
use crate::git::pending::{Batch, BatchRecord, Published};
use crate::git::record::{StateUpdate, Tagger, Written};
use crate::git::remote::{Expect, RefUpdate, Remote};

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

/// The shared store of a clone: atmos.yaml `git.remote`, else the clone's only remote (a
/// plain `git clone` has one, `origin`); `None` when neither names one.
pub fn default_remote(project: &Project, git: &GitRepo) -> Option<String> {
    if let Some(name) = &project.settings.git.remote {
        return Some(name.clone());
    }
    let names = git.remote_names();
    match names.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    }
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

/// The batch of `written` records (and the state moves `state`) for `remote`, written by
/// `tagger`, with the notes to push after them.
pub fn batch(
    remote: &Remote,
    tagger: Tagger,
    written: &[Written],
    state: &[StateUpdate],
    notes: Vec<String>,
) -> Batch {
    Batch {
        remote: remote.name.clone(),
        written_at: crate::contracts::layout::rfc3339(jiff::Timestamp::now()),
        tagger,
        records: written.iter().map(BatchRecord::from).collect(),
        state: state.to_vec(),
        notes,
    }
}

/// Publish what a rollout wrote: kept first (so that a push that fails, or a process killed
/// in the middle, is finished by the next command), then pushed atomically — each record at
/// the end of its history, each state ref only from the value the run started from.
pub fn publish(
    remote: &Remote,
    git: &GitRepo,
    tagger: Tagger,
    written: &[Written],
    state: &[StateUpdate],
    notes: Vec<String>,
) -> Result<(Published, Vec<Written>), WorkflowError> {
    let mut batch = batch(remote, tagger, written, state, notes);
    let kept = remote.keep(&batch)?;
    let published = remote.publish(git, &mut batch, Some(&kept.file))?;
    Ok((published, as_written(&batch)))
}

/// Publish the intent of a rollout: pushed at once, never kept — when it cannot reach the
/// store, nothing runs and the records are taken back, so no later command may publish an
/// intent of a rollout that never ran.
pub fn announce(
    remote: &Remote,
    git: &GitRepo,
    tagger: Tagger,
    written: &[Written],
) -> Result<(Published, Vec<Written>), WorkflowError> {
    let mut batch = batch(remote, tagger, written, &[], Vec::new());
    let published = remote.publish(git, &mut batch, None)?;
    Ok((published, as_written(&batch)))
}

/// The records of `batch` as the remote holds them (at new places when others recorded
/// first): what later records name.
fn as_written(batch: &crate::git::pending::Batch) -> Vec<Written> {
    batch
        .records
        .iter()
        .map(|r| Written {
            name: r.name.clone(),
            oid: r.oid.clone(),
            record: r.record.clone(),
        })
        .collect()
}

/// The state refs a rollout moved: each component that succeeded, from what it ran before.
pub fn state_moves(report: &RolloutReport) -> Vec<StateUpdate> {
    report
        .components
        .iter()
        .filter(|c| {
            c.run
                .as_ref()
                .is_some_and(|r| r.outcome == Outcome::Succeeded)
        })
        .filter(|c| report.plan.moves_state(&c.planned.name))
        .map(|c| StateUpdate {
            refname: state_ref(
                &report.plan.deployment,
                &report.plan.target,
                &c.planned.name,
            ),
            expected: c.planned.current.clone(),
            new: c.planned.new.clone(),
        })
        .collect()
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
    use crate::contracts::layout::{CHAIN_PREFIX, STATE_PREFIX, TAG_PREFIX};
    let state = format!("{STATE_PREFIX}/{deployment}/{target}/");
    let tags = format!("refs/tags/{TAG_PREFIX}/{deployment}/{target}/");
    let chains = format!("{CHAIN_PREFIX}/{deployment}/{target}/");
    let there = remote.list(&[
        format!("{state}*"),
        format!("{tags}*"),
        format!("{chains}*"),
    ])?;
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
    // A history's end moves where the remote's is absent, or is a record of ours it
    // continues; a remote whose history went another way keeps it.
    for e in git.refs().list(&chains)? {
        let expect = match there.get(&e.name) {
            None => Expect::Absent,
            Some(theirs) if *theirs == e.oid => continue,
            Some(theirs) => {
                let Some(rest) = e.name.strip_prefix(&chains) else {
                    continue;
                };
                let mut reaches = false;
                for link in git.chain(deployment, target, rest)?.take(CHAIN_LOOKBACK) {
                    if link?.entry.oid == *theirs {
                        reaches = true;
                        break;
                    }
                }
                if !reaches {
                    continue;
                }
                Expect::Value(theirs.clone())
            }
        };
        updates.push(RefUpdate {
            name: e.name,
            new: Some(e.oid),
            expect,
        });
    }
    remote.push(&updates)?;
    Ok(updates.len())
}

/// How far back a history is read to find where another store's copy of it ends.
const CHAIN_LOOKBACK: usize = 10_000;
