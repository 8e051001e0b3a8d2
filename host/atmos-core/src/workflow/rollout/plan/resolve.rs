//! What a rollout deploys, at which commits: the components selected (from the deployment
//! file of the commit that decides them), each with the commit it gets, and how each one's
//! commit changes on the target.

use std::collections::{BTreeMap, HashSet};

use crate::config::{ComponentRef, Deployment, LoadedDeployment, UnknownTarget};
use crate::dag::{self, Edges};
use crate::diagnostic::did_you_mean;
use crate::git::GitRepo;
use crate::workflow::error::WorkflowError;
use crate::workflow::rollout::model::{Change, PlannedComponent, Reverting, Source};
use crate::workflow::rollout::records::Records;
use crate::workflow::rollout::source::running;

/// The commits a rollout deploys.
pub struct Resolved {
    /// The commit a direct rollout deploys (`None` for a promotion).
    pub commit: Option<String>,
    /// The commit whose deployment file decides which components exist (the direct
    /// rollout's commit, or the newest commit the source runs).
    pub base: String,
    /// `(component name, commit)` of every selected component, in the deployment's order.
    pub selected: Vec<(String, String)>,
    /// The deployment file as of each deployed commit.
    pub configs: BTreeMap<String, LoadedDeployment>,
}

/// Resolve `source` for `target` of the rules' deployment: the commits, and the deployment
/// file of each (read with `config_at`), with the components `asked` for (all when empty).
pub fn resolve(
    git: &GitRepo,
    rules: &Deployment,
    target: &str,
    source: &Source,
    asked: &[String],
    config_at: &dyn Fn(&str) -> Result<LoadedDeployment, WorkflowError>,
) -> Result<Resolved, WorkflowError> {
    let mut configs = BTreeMap::new();
    // Either one commit for every component, or each component at what the source runs.
    let (base, promoted) = match source {
        Source::Promote(from) => {
            UnknownTarget::check(rules, from)?;
            if from == target {
                return Err(WorkflowError::SelfPromotion {
                    target: target.to_owned(),
                });
            }
            let Some(runs) = running(git, &rules.name, from)? else {
                return Err(WorkflowError::NothingToPromote {
                    deployment: rules.name.clone(),
                    source_target: from.clone(),
                    components: names(select(rules, asked)?),
                });
            };
            (runs.newest, Some((from, runs.components)))
        }
        Source::Head | Source::Commit(_) => {
            let spec = source.commit_spec().unwrap_or("HEAD");
            (git.resolve_commit(spec)?, None)
        }
    };
    let deployed = config_at(&base)?;
    let chosen = select(&deployed.deployment, asked)?;
    let selected: Vec<(String, String)> = match promoted {
        Some((from, pairs)) => {
            let mut out = Vec::new();
            let mut missing = Vec::new();
            for c in &chosen {
                match pairs.iter().find(|(n, _)| n == c.name) {
                    Some((_, sha)) => out.push((c.name.to_owned(), sha.clone())),
                    None => missing.push(c.name.to_owned()),
                }
            }
            if !missing.is_empty() {
                return Err(WorkflowError::NothingToPromote {
                    deployment: rules.name.clone(),
                    source_target: from.clone(),
                    components: missing,
                });
            }
            out
        }
        None => chosen
            .iter()
            .map(|c| (c.name.to_owned(), base.clone()))
            .collect(),
    };
    let commit = source.commit_spec().map(|_| base.clone());
    for (_, sha) in &selected {
        if *sha != base && !configs.contains_key(sha) {
            configs.insert(sha.clone(), config_at(sha)?);
        }
    }
    configs.insert(base.clone(), deployed);
    Ok(Resolved {
        commit,
        base,
        selected,
        configs,
    })
}

/// How each selected component's commit changes on `target`: what it runs now (an automatic
/// rollback starts from what the failed apply left running), and whether it moves to a new
/// commit, back to an older one the target ran (a rollback), forward to a newer one it ran
/// before (a roll-forward), or nowhere (run anyway with `force`).
pub fn changes(
    resolved: &Resolved,
    target: &str,
    reverting: Option<&Reverting>,
    force: bool,
    records: &dyn Records,
) -> Result<Vec<PlannedComponent>, WorkflowError> {
    let deployed = &resolved.configs[&resolved.base].deployment;
    let mut out = Vec::with_capacity(resolved.selected.len());
    for (name, new) in &resolved.selected {
        let Some(c) = deployed.components.by_name(name) else {
            continue;
        };
        let current = match reverting {
            Some(r) => Some(r.commit.clone()),
            None => records.deployed(target, name)?,
        };
        let change = match &current {
            None => Change::New,
            Some(cur) if cur == new => Change::Unchanged,
            Some(cur) if records.ran(target, name, new)? => {
                if records.newer(new, cur)? {
                    Change::RollForward
                } else {
                    Change::Rollback
                }
            }
            Some(_) => Change::Changed,
        };
        out.push(PlannedComponent {
            source_record: None,
            name: name.clone(),
            kind: c.kind,
            depends_on: c.component.metadata.depends_on.clone(),
            current,
            run: change != Change::Unchanged || force,
            new: new.clone(),
            change,
        });
    }
    Ok(out)
}

/// The components asked for (all when none), by name or `type/name`.
pub fn select<'d>(
    d: &'d Deployment,
    asked: &[String],
) -> Result<Vec<ComponentRef<'d>>, WorkflowError> {
    if asked.is_empty() {
        return Ok(d.components.iter().collect());
    }
    let mut out: Vec<ComponentRef<'d>> = Vec::new();
    for name in asked {
        match d
            .components
            .by_name(name)
            .or_else(|| d.components.by_id(name))
        {
            Some(c) if !out.iter().any(|o| o.name == c.name) => out.push(c),
            Some(_) => {}
            None => {
                let known: Vec<String> = d.components.iter().map(|c| c.name.to_owned()).collect();
                return Err(WorkflowError::UnknownComponent {
                    deployment: d.name.clone(),
                    name: name.clone(),
                    suggestion: did_you_mean(name, known.iter().map(String::as_str))
                        .map(str::to_owned),
                    known,
                });
            }
        }
    }
    Ok(out)
}

fn names(selected: Vec<ComponentRef<'_>>) -> Vec<String> {
    selected.iter().map(|c| c.name.to_owned()).collect()
}

/// Waves over the components that run; dependencies that do not run are satisfied.
pub fn waves(components: &[PlannedComponent]) -> Vec<Vec<String>> {
    let running: HashSet<String> = components
        .iter()
        .filter(|c| c.run)
        .map(|c| format!("{}/{}", c.kind, c.name))
        .collect();
    let edges: Edges = components
        .iter()
        .filter(|c| c.run)
        .map(|c| {
            let deps = c
                .depends_on
                .iter()
                .filter(|id| running.contains(*id))
                .cloned()
                .collect();
            (format!("{}/{}", c.kind, c.name), deps)
        })
        .collect();
    dag::layers(&edges)
        .into_iter()
        .map(|layer| {
            layer
                .into_iter()
                .map(|id| id.split_once('/').map_or(id.clone(), |(_, n)| n.to_owned()))
                .collect()
        })
        .collect()
}
