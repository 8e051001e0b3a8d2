//! The deployment board (`report`): one document with what runs where, what is waiting and
//! who approved it, for every deployment — made of the same reports as `status`, `history`,
//! `diff` and `promotion-graph --show-status`, never a second reading of the records. The
//! HTML site and `report --format json` both render it. It depends on the repository and the
//! generation time the caller gives (`SOURCE_DATE_EPOCH` pins it), so the same repository at
//! the same time gives the same board.

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
    /// When the board was generated (RFC 3339): how fresh a published board is.
    pub generated_at: String,
    /// The time of the newest record the board read (RFC 3339), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_as_of: Option<String>,
    /// Each deployment, in catalog order.
    pub deployments: Vec<DeploymentBoard>,
    /// The newest rollouts across deployments, newest first, one per rollout with the
    /// records of its components inside.
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

/// One rollout in the newest-rollouts list: its components' records together.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RecentRollout {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// When it started (its newest component record's time).
    pub timestamp: String,
    /// Who ran it.
    pub deployed_by: String,
    /// The rollout's id, when its records carry one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_id: Option<String>,
    /// The newest record of each component it ran, in history order.
    pub components: Vec<HistoryEntry>,
}

impl RecentRollout {
    /// `success` when every component's record deployed its commit, else the worst status
    /// among them (`failure` before `started`/`interrupted` before `skipped`).
    pub fn status(&self) -> crate::contracts::Status {
        use crate::contracts::Status;
        let all: Vec<Status> = self.components.iter().map(|c| c.status).collect();
        [
            Status::Failure,
            Status::Started,
            Status::Interrupted,
            Status::Skipped,
            Status::Rollback,
        ]
        .into_iter()
        .find(|s| all.contains(s))
        .unwrap_or(Status::Success)
    }
}

/// Group history entries (newest first) into rollouts: one rollout id, or — for records
/// without one — one target, person and start time. A component's newest record in its
/// rollout stands for it (an outcome over its intent).
fn group_rollouts(entries: Vec<(String, HistoryEntry)>, limit: usize) -> Vec<RecentRollout> {
    let mut out: Vec<RecentRollout> = Vec::new();
    for (deployment, e) in entries {
        let same = |r: &RecentRollout| {
            r.deployment == deployment
                && r.target == e.target
                && match (&r.rollout_id, &e.rollout_id) {
                    (Some(a), Some(b)) => a == b,
                    (None, None) => r.deployed_by == e.deployed_by && r.timestamp == e.timestamp,
                    _ => false,
                }
        };
        if let Some(r) = out.iter_mut().find(|r| same(r)) {
            if !r.components.iter().any(|c| c.component == e.component) {
                r.components.push(e);
            }
            continue;
        }
        if out.len() == limit {
            continue;
        }
        out.push(RecentRollout {
            deployment,
            target: e.target.clone(),
            timestamp: e.timestamp.clone(),
            deployed_by: e.deployed_by.clone(),
            rollout_id: e.rollout_id.clone(),
            components: vec![e],
        });
    }
    out
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
    generated_at: String,
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
    let mut entries: Vec<(String, HistoryEntry)> = deployments
        .iter()
        .flat_map(|d| {
            d.history
                .entries
                .iter()
                .map(|e| (d.name.clone(), e.clone()))
        })
        .collect();
    entries.sort_by(|(_, a), (_, b)| (&b.timestamp, &b.tag).cmp(&(&a.timestamp, &a.tag)));
    let records_as_of = entries.first().map(|(_, e)| e.timestamp.clone());
    let recent = group_rollouts(entries, RECENT);
    let pending = deployments
        .iter()
        .flat_map(|d| d.pending.iter().cloned())
        .collect();
    Ok(Board {
        generated_at,
        records_as_of,
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
