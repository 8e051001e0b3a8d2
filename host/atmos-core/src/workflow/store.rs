//! Which store a workflow uses — the shared remote (`--remote`, or atmos.yaml `git.remote`,
//! unless offline) or the local repository alone — and publishing a rollout's records to it
//! by compare-and-swap.

use super::error::WorkflowError;
use super::rollout::model::RolloutReport;
use crate::config::Project;
use crate::contracts::layout::state_ref;
use crate::executor::run::Outcome;
use crate::git::GitRepo;
use crate::git::remote::{Expect, RefUpdate, Remote, RemoteError};

/// How many times a refused push is read again and retried.
pub const PUBLISH_ATTEMPTS: u32 = 5;

/// The remote to use, not fetched yet — or `None` for local-only work. With `deployment`,
/// its fetches bring only that deployment's records.
pub fn remote(
    project: &Project,
    asked: Option<&str>,
    offline: bool,
    deployment: Option<&str>,
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
        Some(d) => remote
            .for_deployment(d)
            .excluding(own_remote_targets(project, Some(d), &name)),
        None => remote.excluding(own_remote_targets(project, None, &name)),
    }))
}

/// The targets (`<deployment>/<target>`, of `deployment` or of every deployment) whose records
/// live on their own remote, other than `name`.
fn own_remote_targets(project: &Project, deployment: Option<&str>, name: &str) -> Vec<String> {
    let names: Vec<String> = match deployment {
        Some(d) => vec![d.to_owned()],
        None => project
            .deployment_files()
            .map(|f| f.into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default(),
    };
    let mut out = Vec::new();
    for d in names {
        let Ok(loaded) = project.load(&d) else {
            continue;
        };
        for (t, target) in &loaded.deployment.targets {
            if target.remote.as_deref().is_some_and(|r| r != name) {
                out.push(format!("{d}/{t}"));
            }
        }
    }
    out
}

/// The remote holding `target`'s records: `asked` (--remote), else the target's own remote
/// (`targets.<t>.remote`), else the shared store. Scoped to the target when it is the
/// target's own remote; else to the deployment, without the targets kept elsewhere.
pub fn target_remote(
    project: &Project,
    deployment: &str,
    target: &str,
    asked: Option<&str>,
    offline: bool,
) -> Result<Option<Remote>, WorkflowError> {
    if offline {
        return Ok(None);
    }
    let own = own_remote(project, deployment, target);
    let Some(name) = asked
        .map(str::to_owned)
        .or_else(|| own.clone())
        .or_else(|| project.settings.git.remote.clone())
    else {
        return Ok(None);
    };
    if own.as_deref() == Some(name.as_str()) {
        return Ok(Some(
            Remote::open(&project.root, &name)?.for_target(deployment, target),
        ));
    }
    remote(project, Some(&name), false, Some(deployment))
}

/// `targets.<target>.remote` of the deployment as the work tree has it.
fn own_remote(project: &Project, deployment: &str, target: &str) -> Option<String> {
    project.load(deployment).ok().and_then(|l| {
        l.deployment
            .targets
            .get(target)
            .and_then(|t| t.remote.clone())
    })
}

/// The other remotes `deployment`'s records live on, besides `main` (the one a command writes
/// to): the shared store and each target's own remote, each scoped to what it holds. They are
/// read before deciding (a promotion's source may live on another remote), never written.
/// A remote this clone does not know is left out with a warning.
pub fn other_remotes(
    project: &Project,
    deployment: &str,
    main: Option<&Remote>,
    offline: bool,
) -> (Vec<Remote>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    if offline {
        return (out, warnings);
    }
    let Ok(loaded) = project.load(deployment) else {
        return (out, warnings);
    };
    let main_key = main.map(|m| (m.name.clone(), m.only_target.clone()));
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    if let Some(shared) = &project.settings.git.remote {
        wanted.push((shared.clone(), None));
    }
    for (t, target) in &loaded.deployment.targets {
        if let Some(r) = &target.remote
            && Some(r) != project.settings.git.remote.as_ref()
        {
            wanted.push((r.clone(), Some(t.clone())));
        }
    }
    for (name, target) in wanted {
        if main_key.as_ref() == Some(&(name.clone(), target.clone())) {
            continue;
        }
        let opened = match &target {
            Some(t) => Remote::open(&project.root, &name).map(|r| r.for_target(deployment, t)),
            None => Remote::open(&project.root, &name).map(|r| {
                r.for_deployment(deployment).excluding(own_remote_targets(
                    project,
                    Some(deployment),
                    &name,
                ))
            }),
        };
        match opened {
            Ok(r) => out.push(r),
            Err(e) => warnings.push(format!(
                "{e}: the records of {deployment}{} there are not read",
                target.map(|t| format!("/{t}")).unwrap_or_default()
            )),
        }
    }
    (out, warnings)
}

/// The remote to use, fetched — or `None` for local-only work.
pub fn open(
    project: &Project,
    asked: Option<&str>,
    offline: bool,
    deployment: Option<&str>,
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
