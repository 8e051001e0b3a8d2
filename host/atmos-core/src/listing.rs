//! `list`: deployments, the targets of one, or the components of one target, filtered by
//! labels, with what git records about them (last deploy, commit, health).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Serialize;

use crate::config::UnknownTarget;
use crate::config::{Catalog, ComponentType, LoadedDeployment};
use crate::diagnostic::Diagnostic;
use crate::git::tags::Unparseable;
use crate::git::{GitError, GitRepo};
use crate::status::status;

/// A `--label key=value` filter; every one given must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    /// Label key.
    pub key: String,
    /// Required value.
    pub value: String,
}

impl LabelFilter {
    /// Parse `key=value`.
    pub fn parse(s: &str) -> Result<LabelFilter, String> {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(LabelFilter {
                key: k.to_owned(),
                value: v.to_owned(),
            }),
            _ => Err(format!("expected key=value, got `{s}`")),
        }
    }

    fn all_match(filters: &[LabelFilter], labels: &IndexMap<String, String>) -> bool {
        filters
            .iter()
            .all(|f| labels.get(&f.key).is_some_and(|v| *v == f.value))
    }
}

/// A file that could not be loaded, shown as a warning by `list`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BrokenDeployment {
    /// File stem.
    pub name: String,
    /// Why.
    pub diagnostics: Vec<Diagnostic>,
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeploymentRow {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// Target names.
    pub targets: Vec<String>,
    /// Component names.
    pub components: Vec<String>,
    /// Most recent rollout, once rollouts are recorded.
    pub last_deploy: Option<LastDeploy>,
}

/// When and where a deployment was last rolled out.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LastDeploy {
    /// Target name.
    pub target: String,
    /// RFC 3339 time.
    pub at: String,
}

/// `list` / `list deployments`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeploymentList {
    /// Matching deployments.
    pub deployments: Vec<DeploymentRow>,
    /// Files that failed to load.
    pub broken: Vec<BrokenDeployment>,
    /// When labels matched no deployment: where they do match (target or component labels),
    /// and the command that lists those.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_hint: Option<String>,
}

/// Where `labels` would match when no deployment's own labels do: on a target or a
/// component of some deployment.
fn label_hint(catalog: &Catalog, labels: &[LabelFilter]) -> Option<String> {
    for d in catalog.deployments.iter().map(|l| &l.deployment) {
        if let Some((t, _)) = d
            .targets
            .iter()
            .find(|(_, t)| LabelFilter::all_match(labels, &t.labels))
        {
            return Some(format!(
                "these are target labels (e.g. {}/{t}): atmos deployment list targets {} {}",
                d.name,
                d.name,
                flags(labels)
            ));
        }
        if let Some(c) = d
            .components
            .iter()
            .find(|c| LabelFilter::all_match(labels, &c.component.metadata.labels))
        {
            return Some(format!(
                "these are component labels (e.g. {}/{}): atmos deployment list components {} --target <target> {}",
                d.name,
                c.name,
                d.name,
                flags(labels)
            ));
        }
    }
    None
}

fn flags(labels: &[LabelFilter]) -> String {
    labels
        .iter()
        .map(|l| format!("--label {}={}", l.key, l.value))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One row of `list targets`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetRow {
    /// Name.
    pub name: String,
    /// Allowed sources; empty for an entry point.
    pub promotion_from: Vec<String>,
    /// Whether approvals are needed.
    pub requires_approval: bool,
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// The newest commit the target runs.
    pub commit: Option<String>,
    /// Most recent deploy time (RFC 3339).
    pub last_deploy: Option<String>,
    /// How its newest rollouts went: `success`, `failure` or `not deployed`.
    pub status: Option<String>,
}

/// `list targets <d>`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetList {
    /// Deployment.
    pub deployment: String,
    /// Tags that could not be read as records.
    pub unparseable: Vec<Unparseable>,
    /// Matching targets in file order.
    pub targets: Vec<TargetRow>,
}

/// One row of `list components`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ComponentRow {
    /// Name.
    pub name: String,
    /// Executor type.
    #[serde(rename = "type")]
    pub kind: ComponentType,
    /// Dependencies (`type/name`).
    pub depends_on: Vec<String>,
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// Deployed commit.
    pub commit: Option<String>,
    /// Deploy time (RFC 3339).
    pub deployed_at: Option<String>,
    /// How its newest rollout went: `success`, `failure` or `not deployed`.
    pub status: Option<String>,
    /// Its last health check, when it was of the deployed commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::status::Health>,
}

/// `list components <d> --target t`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ComponentList {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// Tags that could not be read as records.
    pub unparseable: Vec<Unparseable>,
    /// Matching components.
    pub components: Vec<ComponentRow>,
}

/// List deployments matching `labels`; the last deploy comes from tag names alone.
pub fn deployments(
    catalog: &Catalog,
    labels: &[LabelFilter],
    git: Option<&GitRepo>,
) -> Result<DeploymentList, GitError> {
    let mut rows = Vec::new();
    for d in catalog
        .deployments
        .iter()
        .map(|l| &l.deployment)
        .filter(|d| LabelFilter::all_match(labels, &d.labels))
    {
        let last_deploy = match git {
            Some(git) => git
                .history_tags(&d.name, None)?
                .0
                .into_iter()
                .filter(|e| d.targets.contains_key(&e.target))
                // Rollouts in the same second: the target later in the file (further along
                // the promotion path) counts as the newer, so the answer does not depend on
                // the order refs are listed in.
                .max_by_key(|e| (e.key(), d.targets.get_index_of(&e.target)))
                .map(|e| LastDeploy {
                    target: e.target,
                    at: crate::contracts::layout::rfc3339(e.at),
                }),
            None => None,
        };
        rows.push(DeploymentRow {
            name: d.name.clone(),
            description: d.description.clone(),
            labels: d.labels.clone(),
            targets: d.targets.keys().cloned().collect(),
            components: d.components.iter().map(|c| c.name.to_owned()).collect(),
            last_deploy,
        });
    }
    let label_hint = (rows.is_empty() && !labels.is_empty())
        .then(|| label_hint(catalog, labels))
        .flatten();
    Ok(DeploymentList {
        label_hint,
        deployments: rows,
        broken: catalog
            .broken
            .iter()
            .map(|(name, diagnostics)| BrokenDeployment {
                name: name.clone(),
                diagnostics: diagnostics.clone(),
            })
            .collect(),
    })
}

/// List the targets of one deployment matching `labels`, with their state when `git` is given.
pub fn targets(
    loaded: &LoadedDeployment,
    labels: &[LabelFilter],
    git: Option<&GitRepo>,
) -> Result<TargetList, GitError> {
    let d = &loaded.deployment;
    let (summaries, unparseable) = match git {
        Some(git) => {
            let report = status(git, loaded, None)?;
            let mut out = Vec::new();
            for t in &report.targets {
                out.push(t.summary(git)?);
            }
            (out, report.unparseable)
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(TargetList {
        deployment: d.name.clone(),
        unparseable,
        targets: d
            .targets
            .iter()
            .filter(|(_, t)| LabelFilter::all_match(labels, &t.labels))
            .map(|(name, t)| {
                let summary = summaries.iter().find(|s| s.target == *name);
                TargetRow {
                    name: name.clone(),
                    promotion_from: t
                        .promotion
                        .as_ref()
                        .map(|p| p.sources().into_iter().map(str::to_owned).collect())
                        .unwrap_or_default(),
                    requires_approval: t.promotion.as_ref().is_some_and(|p| p.requires_approval),
                    labels: t.labels.clone(),
                    commit: summary.and_then(|s| s.commit.clone()),
                    last_deploy: summary.and_then(|s| s.deployed_at.clone()),
                    status: summary.map(|s| s.last_rollout.to_owned()),
                }
            })
            .collect(),
    })
}

/// Why components could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// Unknown target.
    #[error(transparent)]
    UnknownTarget(#[from] UnknownTarget),
    /// Reading state failed.
    #[error(transparent)]
    Git(#[from] GitError),
}

impl crate::error::Actionable for ListError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            ListError::UnknownTarget(e) => e.exit(),
            ListError::Git(e) => e.exit(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ListError::UnknownTarget(e) => e.hint(),
            ListError::Git(e) => e.hint(),
        }
    }
}

crate::document!(
    DeploymentList => "DeploymentList",
    TargetList => "TargetList",
    ComponentList => "ComponentList",
);

/// List the components of one deployment for `target`, matching `labels`, with their state
/// when `git` is given.
pub fn components(
    loaded: &LoadedDeployment,
    target: &str,
    labels: &[LabelFilter],
    git: Option<&GitRepo>,
) -> Result<ComponentList, ListError> {
    let d = &loaded.deployment;
    UnknownTarget::check(d, target)?;
    let (state, unparseable) = match git {
        Some(git) => {
            let mut report = status(git, loaded, Some(target))?;
            (
                report
                    .targets
                    .pop()
                    .map(|t| t.components)
                    .unwrap_or_default(),
                report.unparseable,
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(ComponentList {
        deployment: d.name.clone(),
        target: target.to_owned(),
        unparseable,
        components: d
            .components
            .iter()
            .filter(|c| LabelFilter::all_match(labels, &c.component.metadata.labels))
            .map(|c| {
                let s = state.iter().find(|s| s.component == c.name);
                ComponentRow {
                    name: c.name.to_owned(),
                    kind: c.kind,
                    depends_on: c.component.metadata.depends_on.clone(),
                    labels: c.component.metadata.labels.clone(),
                    commit: s.and_then(|s| s.commit.clone()),
                    deployed_at: s.and_then(|s| s.deployed_at.clone()),
                    status: s.map(|s| s.last_rollout().to_owned()),
                    health: s.and_then(|s| s.health.clone()),
                }
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters_parse_and_match() {
        let f = LabelFilter::parse("env=prod").expect("valid");
        assert_eq!((f.key.as_str(), f.value.as_str()), ("env", "prod"));
        assert!(LabelFilter::parse("env").is_err());
        assert!(LabelFilter::parse("=x").is_err());
        let mut labels = IndexMap::new();
        labels.insert("env".to_owned(), "prod".to_owned());
        assert!(LabelFilter::all_match(std::slice::from_ref(&f), &labels));
        labels.insert("env".to_owned(), "dev".to_owned());
        assert!(!LabelFilter::all_match(&[f], &labels));
    }
}
