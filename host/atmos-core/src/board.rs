//! The deployment board (`report`): one document with what runs where, what is waiting and
//! who approved it, for every deployment — made of the same reports as `status`, `history`,
//! `diff` and `promotion-graph --show-status`, never a second reading of the records. The
//! HTML site and `report --format json` both render it. It depends on the repository alone
//! (no clock), so the same repository gives the same board.

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::{Catalog, LoadedDeployment};
use crate::diff::DiffReport;
use crate::git::{GitError, GitRepo};
use crate::history::{HistoryEntry, HistoryQuery, HistoryReport};
use crate::promotion::{GraphWithStatus, PromotionGraph};
use crate::sbom::Summary;
use crate::status::StatusReport;

/// Rollouts of each deployment's timeline on the board.
pub const HISTORY_ROLLOUTS: usize = 10;
/// Rollouts in the board's "newest rollouts" list.
pub const RECENT: usize = 20;

/// The whole board.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Board {
    /// Each deployment, in catalog order.
    pub deployments: Vec<DeploymentBoard>,
    /// The newest rollouts across deployments, newest first (one row per component).
    pub recent: Vec<RecentRollout>,
    /// Promotions waiting for approvals, across deployments.
    pub pending: Vec<PendingApproval>,
}

/// One deployment's page.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeploymentBoard {
    /// Name.
    pub name: String,
    /// `deployment.description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The promotion graph with each target's state.
    pub graph: GraphWithStatus,
    /// Target × component.
    pub status: StatusReport,
    /// The newest rollouts, with their gate decisions and approvers.
    pub history: HistoryReport,
    /// Each promotion edge: what the receiving target would get from its source.
    pub diffs: Vec<DiffReport>,
    /// The SBOM summary of each deployed commit that has one.
    pub sboms: Vec<Summary>,
    /// Promotions into this deployment's targets that wait for approvals.
    pub pending: Vec<PendingApproval>,
}

/// One component's rollout in the newest-rollouts list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RecentRollout {
    /// Deployment.
    pub deployment: String,
    /// The history entry.
    #[serde(flatten)]
    pub entry: HistoryEntry,
}

/// A promotion that waits for approvals.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PendingApproval {
    /// Deployment.
    pub deployment: String,
    /// The target that requires approval.
    pub target: String,
    /// Where the commit comes from.
    pub source: String,
    /// The commit waiting.
    pub commit: String,
    /// Approvals that count (by the same rule the gate applies).
    pub approved_by: Vec<String>,
    /// Approvals recorded that do not count, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_counted: Vec<crate::approvals::Ignored>,
    /// People whose latest word is a rejection, with their comment: the promotion is
    /// refused until they approve.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected_by: Vec<Rejection>,
    /// Approvals required.
    pub required: u32,
    /// Groups the approvers must belong to (empty: anyone).
    pub from_groups: Vec<String>,
    /// The command that records an approval.
    pub command: String,
}

/// A rejection standing in the way of a promotion.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Rejection {
    /// Who.
    pub by: String,
    /// Their comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Build the board of `names` (every deployment of the catalog when empty).
pub fn board(
    git: &GitRepo,
    catalog: &Catalog,
    project: &crate::config::Project,
    names: &[String],
) -> Result<Board, GitError> {
    let project_root = project.root.as_path();
    let mut deployments = Vec::new();
    for loaded in catalog
        .deployments
        .iter()
        .filter(|l| names.is_empty() || names.contains(&l.deployment.name))
    {
        deployments.push(deployment_board(git, loaded, project, project_root)?);
    }
    let mut recent: Vec<RecentRollout> = deployments
        .iter()
        .flat_map(|d| {
            d.history.entries.iter().map(|e| RecentRollout {
                deployment: d.name.clone(),
                entry: e.clone(),
            })
        })
        .collect();
    recent.sort_by(|a, b| {
        (&b.entry.timestamp, &b.entry.tag).cmp(&(&a.entry.timestamp, &a.entry.tag))
    });
    recent.truncate(RECENT);
    let pending = deployments
        .iter()
        .flat_map(|d| d.pending.iter().cloned())
        .collect();
    Ok(Board {
        deployments,
        recent,
        pending,
    })
}

fn deployment_board(
    git: &GitRepo,
    loaded: &LoadedDeployment,
    project: &crate::config::Project,
    project_root: &std::path::Path,
) -> Result<DeploymentBoard, GitError> {
    let d = &loaded.deployment;
    let status = crate::status::status(git, loaded, None)?;
    let graph = PromotionGraph::of(loaded).with_status_of(git, &status)?;
    let history = crate::history::history(
        git,
        &d.name,
        &HistoryQuery {
            target: None,
            component: None,
            limit: HISTORY_ROLLOUTS,
            since: None,
            until: None,
        },
    )?;
    let mut diffs = Vec::new();
    for edge in &graph.graph.edges {
        diffs.push(crate::diff::between_targets(
            git,
            loaded,
            project_root,
            &status,
            &edge.to,
            &edge.from,
        )?);
    }
    let mut commits: Vec<String> = status
        .targets
        .iter()
        .flat_map(|t| t.components.iter().filter_map(|c| c.commit.clone()))
        .collect();
    commits.sort();
    commits.dedup();
    let mut sboms = Vec::new();
    for c in &commits {
        if let Some(json) = crate::sbom::load(git, &d.name, c)?
            && let Ok(s) = crate::sbom::summarize(&json)
        {
            sboms.push(s);
        }
    }
    let mut pending = Vec::new();
    for edge in &graph.graph.edges {
        let Some(rules) = d.targets.get(&edge.to).and_then(|t| t.promotion.as_ref()) else {
            continue;
        };
        if !rules.requires_approval {
            continue;
        }
        let commit_of = |t: &str| {
            graph
                .status
                .iter()
                .find(|s| s.target == t)
                .and_then(|s| s.commit.clone())
        };
        let Some(source) = commit_of(&edge.from) else {
            continue;
        };
        let lacks = match commit_of(&edge.to) {
            None => true,
            Some(theirs) => theirs != source && !git.is_ancestor(&source, &theirs)?,
        };
        if !lacks {
            continue;
        }
        // Counted by the rule the gate applies (groups, signatures, latest word), for a
        // deployer who is none of the approvers.
        let (records, _) = crate::approvals::read(git, &d.name, &source)?;
        let approvals = rules.approvals.clone().unwrap_or_default();
        let check = crate::approvals::check(
            &approvals,
            rules
                .approval_method
                .unwrap_or(crate::config::model::ApprovalMethod::Recorded),
            &project.settings.approvers,
            &records,
            &crate::approvals::CheckContext {
                deployment: &d.name,
                target: &edge.to,
                commit: &source,
                actor: "",
                authors: &[],
                rollout: None,
                root: &project.root,
            },
        );
        pending.push(PendingApproval {
            deployment: d.name.clone(),
            target: edge.to.clone(),
            source: edge.from.clone(),
            commit: source,
            approved_by: check
                .counted
                .iter()
                .map(|c| c.approved_by.clone())
                .collect(),
            not_counted: check.ignored.clone(),
            rejected_by: check
                .rejected_by
                .iter()
                .map(|(by, comment)| Rejection {
                    by: by.clone(),
                    comment: comment.clone(),
                })
                .collect(),
            required: check.required,
            from_groups: approvals.from_groups.clone(),
            command: format!(
                "atmos deployment approve {} --target {} --promote-from {}",
                d.name, edge.to, edge.from
            ),
        });
    }
    Ok(DeploymentBoard {
        name: d.name.clone(),
        description: d.description.clone(),
        graph,
        status,
        history,
        diffs,
        sboms,
        pending,
    })
}

crate::document!(Board => "Board");
