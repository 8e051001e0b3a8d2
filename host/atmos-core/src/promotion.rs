//! The promotion graph of a deployment: which target receives code from which, in layers
//! from the entry points, and every path from an entry point to a final target.

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::LoadedDeployment;
use crate::config::checks::promotion_edges;
use crate::dag;

/// One target as a node of the graph.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GraphTarget {
    /// Target name.
    pub name: String,
    /// Targets it may be promoted from (empty for an entry point).
    pub from: Vec<String>,
    /// True when nothing is promoted into it: code is rolled out here directly.
    pub entry_point: bool,
    /// True when a rollout here needs approvals.
    pub requires_approval: bool,
    /// Distance from the entry points (0 for entry points).
    pub layer: usize,
}

/// One allowed promotion.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, JsonSchema)]
pub struct Edge {
    /// Source target.
    pub from: String,
    /// Destination target.
    pub to: String,
}

/// The whole graph.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PromotionGraph {
    /// Deployment name.
    pub deployment: String,
    /// Every target, in file order.
    pub targets: Vec<GraphTarget>,
    /// Every allowed promotion.
    pub edges: Vec<Edge>,
    /// Target names by layer.
    pub layers: Vec<Vec<String>>,
    /// Every path from an entry point to a target nothing is promoted from.
    pub paths: Vec<Vec<String>>,
}

impl PromotionGraph {
    /// Build the graph of a (checked) deployment.
    pub fn of(loaded: &LoadedDeployment) -> PromotionGraph {
        let d = &loaded.deployment;
        let preds = promotion_edges(loaded);
        let layers = dag::layers(&preds);
        let layer_of = |name: &str| {
            layers
                .iter()
                .position(|l| l.iter().any(|n| n == name))
                .unwrap_or(0)
        };
        let targets: Vec<GraphTarget> = d
            .targets
            .iter()
            .map(|(name, t)| {
                let from = preds.get(name).cloned().unwrap_or_default();
                GraphTarget {
                    entry_point: from.is_empty(),
                    requires_approval: t.promotion.as_ref().is_some_and(|p| p.requires_approval),
                    layer: layer_of(name),
                    from,
                    name: name.clone(),
                }
            })
            .collect();
        let edges: Vec<Edge> = targets
            .iter()
            .flat_map(|t| {
                t.from.iter().map(|f| Edge {
                    from: f.clone(),
                    to: t.name.clone(),
                })
            })
            .collect();
        let paths = all_paths(&targets, &edges);
        PromotionGraph {
            deployment: d.name.clone(),
            targets,
            edges,
            layers,
            paths,
        }
    }

    /// The target called `name`.
    pub fn target(&self, name: &str) -> Option<&GraphTarget> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// True when every layer has one target: a single straight path.
    pub fn is_linear(&self) -> bool {
        self.layers.iter().all(|l| l.len() == 1) && self.edges.len() + 1 == self.targets.len()
    }

    /// The targets that must be passed through, in order, to reach `target` (first path found).
    pub fn path_to(&self, target: &str) -> Option<Vec<String>> {
        self.paths
            .iter()
            .find_map(|p| p.iter().position(|n| n == target).map(|i| p[..=i].to_vec()))
    }
}

impl PromotionGraph {
    /// The shortest chain of promotions from `from` to `to` (both included), if `to` is
    /// downstream of `from`.
    pub fn route(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut queue = std::collections::VecDeque::from([vec![from.to_owned()]]);
        let mut seen = std::collections::HashSet::from([from.to_owned()]);
        while let Some(path) = queue.pop_front() {
            let last = path.last()?;
            if last == to {
                return Some(path);
            }
            for e in self.edges.iter().filter(|e| &e.from == last) {
                if seen.insert(e.to.clone()) {
                    let mut p = path.clone();
                    p.push(e.to.clone());
                    queue.push_back(p);
                }
            }
        }
        None
    }
}

/// How far a target is behind one of its sources.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Behind {
    /// The source target.
    pub source: String,
    /// Commits the source runs that this target does not.
    pub commits: usize,
}

/// A target's place in the promotion flow, for `promotion-graph --show-status`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GraphTargetStatus {
    /// Target.
    pub target: String,
    /// The commit it runs (the newest of its components').
    pub commit: Option<String>,
    /// When it was last deployed.
    pub deployed_at: Option<String>,
    /// How its newest rollouts went: `success`, `failure` or `not deployed`.
    pub last_rollout: &'static str,
    /// The worst health among its checked components (`status --check-health`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::status::HealthStatus>,
    /// How far behind each of its sources it is.
    pub behind: Vec<Behind>,
    /// True when it runs something a downstream target does not, and is healthy.
    pub ready_to_promote: bool,
    /// True when it runs everything its sources run.
    pub up_to_date: bool,
}

/// The graph with each target's state.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GraphWithStatus {
    /// The graph.
    #[serde(flatten)]
    pub graph: PromotionGraph,
    /// Each target's state, in graph target order.
    pub status: Vec<GraphTargetStatus>,
    /// Tags that could not be read as records.
    pub unparseable: Vec<crate::git::tags::Unparseable>,
}

impl PromotionGraph {
    /// Add each target's deployed commit, health and distance to its sources.
    pub fn with_status(
        self,
        git: &crate::git::GitRepo,
        loaded: &LoadedDeployment,
    ) -> Result<GraphWithStatus, crate::git::GitError> {
        let report = crate::status::status(git, loaded, None)?;
        self.with_status_of(git, &report)
    }

    /// [`with_status`](Self::with_status) from a status report already read (every target).
    pub fn with_status_of(
        self,
        git: &crate::git::GitRepo,
        report: &crate::status::StatusReport,
    ) -> Result<GraphWithStatus, crate::git::GitError> {
        let mut summaries = Vec::new();
        for t in &report.targets {
            summaries.push(t.summary(git)?);
        }
        let commit_of = |name: &str| {
            summaries
                .iter()
                .find(|s| s.target == name)
                .and_then(|s| s.commit.clone())
        };
        let mut status = Vec::new();
        for t in &self.targets {
            let summary = summaries.iter().find(|s| s.target == t.name);
            let commit = commit_of(&t.name);
            let mut behind = Vec::new();
            for source in &t.from {
                if let Some(src) = commit_of(source) {
                    let n = match &commit {
                        Some(mine) if *mine == src => 0,
                        Some(mine) => {
                            let (ahead, _) = git.ahead_behind(&src, mine)?;
                            ahead
                        }
                        None => usize::MAX,
                    };
                    behind.push(Behind {
                        source: source.clone(),
                        commits: n,
                    });
                }
            }
            let last_rollout = summary.map_or(crate::status::last_rollout::NOT_DEPLOYED, |s| {
                s.last_rollout
            });
            let health = summary.and_then(|s| s.health);
            let downstream: Vec<&str> = self
                .edges
                .iter()
                .filter(|e| e.from == t.name)
                .map(|e| e.to.as_str())
                .collect();
            let mut ready = false;
            if let Some(mine) = &commit
                && (last_rollout == crate::status::last_rollout::SUCCESS
                    || last_rollout == crate::status::last_rollout::ROLLBACK)
                && health.is_none_or(|h| h == crate::status::HealthStatus::Healthy)
            {
                for d in downstream {
                    let lacks = match commit_of(d) {
                        None => true,
                        Some(theirs) => theirs != *mine && !git.is_ancestor(mine, &theirs)?,
                    };
                    ready |= lacks;
                }
            }
            status.push(GraphTargetStatus {
                target: t.name.clone(),
                up_to_date: commit.is_some() && behind.iter().all(|b| b.commits == 0),
                commit,
                deployed_at: summary.and_then(|s| s.deployed_at.clone()),
                last_rollout,
                health,
                behind,
                ready_to_promote: ready,
            });
        }
        Ok(GraphWithStatus {
            graph: self,
            status,
            unparseable: report.unparseable.clone(),
        })
    }
}

/// Paths from entry points to sinks, capped so that a wide graph cannot explode.
fn all_paths(targets: &[GraphTarget], edges: &[Edge]) -> Vec<Vec<String>> {
    const MAX_PATHS: usize = 64;
    let mut out = Vec::new();
    let mut stack: Vec<Vec<String>> = targets
        .iter()
        .filter(|t| t.entry_point)
        .rev()
        .map(|t| vec![t.name.clone()])
        .collect();
    while let Some(path) = stack.pop() {
        if out.len() >= MAX_PATHS {
            break;
        }
        let Some(last) = path.last() else { continue };
        let next: Vec<&Edge> = edges.iter().filter(|e| &e.from == last).collect();
        if next.is_empty() {
            out.push(path);
            continue;
        }
        for e in next.into_iter().rev() {
            if path.contains(&e.to) {
                continue;
            }
            let mut p = path.clone();
            p.push(e.to.clone());
            stack.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load::parse_deployment;

    fn graph(targets: &str) -> PromotionGraph {
        let text = format!("deployment:\n  name: svc\n  targets:\n{targets}");
        let loaded = parse_deployment(Path::new("svc.yaml"), text.as_bytes()).expect("valid");
        PromotionGraph::of(&loaded)
    }

    #[test]
    fn linear_path() {
        let g = graph(
            "    dev: {}\n    staging: {promotion: {from: dev}}\n    prod: {promotion: {from: staging, requires_approval: true}}\n",
        );
        assert!(g.is_linear());
        assert_eq!(g.paths, vec![vec!["dev", "staging", "prod"]]);
        assert!(g.target("prod").expect("prod").requires_approval);
        assert_eq!(
            g.path_to("staging"),
            Some(vec!["dev".into(), "staging".into()])
        );
    }

    #[test]
    fn fan_out_and_fan_in() {
        let g = graph(
            "    dev: {}\n    qa: {promotion: {from: dev}}\n    staging: {promotion: {from: dev}}\n    prod: {promotion: {allowed_from: [qa, staging]}}\n",
        );
        assert!(!g.is_linear());
        assert_eq!(
            g.layers,
            vec![
                vec!["dev".to_string()],
                vec!["qa".into(), "staging".into()],
                vec!["prod".into()]
            ]
        );
        assert_eq!(
            g.paths,
            vec![vec!["dev", "qa", "prod"], vec!["dev", "staging", "prod"]]
        );
        assert_eq!(g.edges.len(), 4);
        assert_eq!(
            g.route("dev", "prod"),
            Some(vec!["dev".into(), "qa".into(), "prod".into()])
        );
        assert_eq!(
            g.route("staging", "prod"),
            Some(vec!["staging".into(), "prod".into()])
        );
        assert_eq!(g.route("prod", "dev"), None);
    }
}

crate::document!(PromotionGraph => "PromotionGraph", GraphWithStatus => "PromotionGraphStatus");
