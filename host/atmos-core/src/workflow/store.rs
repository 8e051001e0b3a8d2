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
        Some(d) => remote.for_deployment(d),
        None => remote,
    }))
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
