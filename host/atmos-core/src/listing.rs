//! `list`: deployments, the targets of one, or the components of one target, filtered by
//! labels. State columns (last deploy, status) are `None` until rollouts are recorded.

use indexmap::IndexMap;
use serde::Serialize;

use crate::config::{Catalog, ComponentType, LoadedDeployment};
use crate::describe::UnknownTarget;
use crate::diagnostic::Diagnostic;

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
#[derive(Debug, Clone, Serialize)]
pub struct BrokenDeployment {
    /// File stem.
    pub name: String,
    /// Why.
    pub diagnostics: Vec<Diagnostic>,
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct LastDeploy {
    /// Target name.
    pub target: String,
    /// RFC 3339 time.
    pub at: String,
}

/// `list` / `list deployments`.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentList {
    /// Matching deployments.
    pub deployments: Vec<DeploymentRow>,
    /// Files that failed to load.
    pub broken: Vec<BrokenDeployment>,
}

/// One row of `list targets`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    /// Name.
    pub name: String,
    /// Allowed sources; empty for an entry point.
    pub promotion_from: Vec<String>,
    /// Whether approvals are needed.
    pub requires_approval: bool,
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// Most recent rollout time, once rollouts are recorded.
    pub last_deploy: Option<String>,
    /// Health of the last rollout, once rollouts are recorded.
    pub status: Option<String>,
}

/// `list targets <d>`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetList {
    /// Deployment.
    pub deployment: String,
    /// Matching targets in file order.
    pub targets: Vec<TargetRow>,
}

/// One row of `list components`.
#[derive(Debug, Clone, Serialize)]
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
    /// Deployed commit, once rollouts are recorded.
    pub commit: Option<String>,
    /// Deploy time, once rollouts are recorded.
    pub deployed_at: Option<String>,
    /// Status of the last rollout, once rollouts are recorded.
    pub status: Option<String>,
}

/// `list components <d> --target t`.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentList {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// Matching components.
    pub components: Vec<ComponentRow>,
}

/// List deployments matching `labels`.
pub fn deployments(catalog: &Catalog, labels: &[LabelFilter]) -> DeploymentList {
    DeploymentList {
        deployments: catalog
            .deployments
            .iter()
            .map(|l| &l.deployment)
            .filter(|d| LabelFilter::all_match(labels, &d.labels))
            .map(|d| DeploymentRow {
                name: d.name.clone(),
                description: d.description.clone(),
                labels: d.labels.clone(),
                targets: d.targets.keys().cloned().collect(),
                components: d.components.iter().map(|c| c.name.to_owned()).collect(),
                last_deploy: None,
            })
            .collect(),
        broken: catalog
            .broken
            .iter()
            .map(|(name, diagnostics)| BrokenDeployment {
                name: name.clone(),
                diagnostics: diagnostics.clone(),
            })
            .collect(),
    }
}

/// List the targets of one deployment matching `labels`.
pub fn targets(loaded: &LoadedDeployment, labels: &[LabelFilter]) -> TargetList {
    let d = &loaded.deployment;
    TargetList {
        deployment: d.name.clone(),
        targets: d
            .targets
            .iter()
            .filter(|(_, t)| LabelFilter::all_match(labels, &t.labels))
            .map(|(name, t)| TargetRow {
                name: name.clone(),
                promotion_from: t
                    .promotion
                    .as_ref()
                    .map(|p| p.sources().into_iter().map(str::to_owned).collect())
                    .unwrap_or_default(),
                requires_approval: t.promotion.as_ref().is_some_and(|p| p.requires_approval),
                labels: t.labels.clone(),
                last_deploy: None,
                status: None,
            })
            .collect(),
    }
}

/// List the components of one deployment for `target`, matching `labels`.
pub fn components(
    loaded: &LoadedDeployment,
    target: &str,
    labels: &[LabelFilter],
) -> Result<ComponentList, UnknownTarget> {
    let d = &loaded.deployment;
    UnknownTarget::check(d, target)?;
    Ok(ComponentList {
        deployment: d.name.clone(),
        target: target.to_owned(),
        components: d
            .components
            .iter()
            .filter(|c| LabelFilter::all_match(labels, &c.component.metadata.labels))
            .map(|c| ComponentRow {
                name: c.name.to_owned(),
                kind: c.kind,
                depends_on: c.component.metadata.depends_on.clone(),
                labels: c.component.metadata.labels.clone(),
                commit: None,
                deployed_at: None,
                status: None,
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
