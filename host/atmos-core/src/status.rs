//! `status`: what each component runs in each target, who deployed it and when, and how its
//! last attempt went. Reads the state refs and, per component, only the newest history tags
//! it needs (usually one), so the cost grows with components, not with history.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::LoadedDeployment;
use crate::contracts::{Status, TagRecord};
use crate::git::tags::Unparseable;
use crate::git::{GitError, GitRepo};

/// The last rollout attempt of a component.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Attempt {
    /// Its tag.
    pub tag: String,
    /// Outcome.
    pub status: Status,
    /// Attempted commit.
    pub git_sha: String,
    /// RFC 3339.
    pub timestamp: String,
    /// Failure reason (for `interrupted`: what the rollout that found it knew).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who ran it.
    pub deployed_by: String,
    /// Where it ran, for a rollout that started and has no outcome yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<crate::contracts::record::Runner>,
    /// The canary step it is, for a rollout in steps (a `canary` attempt: the canary stands
    /// there, open, until it is continued or aborted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<crate::contracts::record::CanaryRecord>,
}

/// One component in one target.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ComponentStatus {
    /// Component name.
    pub component: String,
    /// Executor type, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    /// False for state left by a component no longer in the config.
    pub in_config: bool,
    /// The deployed commit (state ref); `None` when never deployed.
    pub commit: Option<String>,
    /// True when this clone has no state ref for the component (a plain `git clone` brings
    /// the records, not `refs/atmos/*`) and `commit` is the newest record that deployed one:
    /// what the records say, not what the shared store's state ref says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_records: bool,
    /// When the deployed commit was rolled out (RFC 3339).
    pub deployed_at: Option<String>,
    /// Who rolled it out.
    pub deployed_by: Option<String>,
    /// Status of the rollout that deployed it (success or rollback).
    pub status: Option<Status>,
    /// Source target, when it was promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// Who approved it, one identity per item.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    /// When each of them approved (their newest approval of the approved commit for this
    /// target, RFC 3339), in the order of `approved_by`; `None` when the note is not here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_at: Vec<Option<String>>,
    /// CI build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// The image deployed, for components with a recorded build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Pull request, from `metadata.pr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr: Option<String>,
    /// The tag of the deployed rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The newest attempt, when it is not the deployed rollout (e.g. a later failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Attempt>,
    /// What the component's health command said about the deployed commit, when it has one
    /// and it was checked (`status --check-health`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// How the last rollout of a component (or of every component of a target) went: one
/// vocabulary for `status`, `list` and the promotion graph. Health is a separate thing.
pub mod last_rollout {
    /// The newest attempt deployed its commit.
    pub const SUCCESS: &str = "success";
    /// The newest attempt went back to an older commit the target ran before (a target
    /// reads `rollback` when the newest rollout of any of its components was one).
    pub const ROLLBACK: &str = "rollback";
    /// The newest attempt failed (the previous commit may still run).
    pub const FAILURE: &str = "failure";
    /// Nothing was ever deployed.
    pub const NOT_DEPLOYED: &str = "not deployed";
    /// The newest rollout started and has no outcome yet: it runs, or its runner died (the
    /// target's lease says which); its outcome is unknown.
    pub const STARTED: &str = "started";
    /// The newest rollout started and never finished; the next rollout found it so.
    pub const INTERRUPTED: &str = "interrupted";
    /// A canary stands between its steps: part of the traffic runs the new commit, the state
    /// ref still names the one before.
    pub const CANARY: &str = "canary";
}

impl ComponentStatus {
    /// How the newest rollout went: `success`, `rollback`, `failure` or `not deployed`.
    pub fn last_rollout(&self) -> &'static str {
        match (&self.last_attempt, &self.commit) {
            (Some(a), _) if a.status == Status::Started => last_rollout::STARTED,
            (Some(a), _) if a.status == Status::Interrupted => last_rollout::INTERRUPTED,
            (Some(a), _) if a.status == Status::Canary => last_rollout::CANARY,
            (Some(a), _) if matches!(a.status, Status::Failure | Status::Skipped) => {
                last_rollout::FAILURE
            }
            (None, Some(_)) if self.status == Some(Status::Rollback) => last_rollout::ROLLBACK,
            (_, Some(_)) => last_rollout::SUCCESS,
            (Some(_), None) => last_rollout::FAILURE,
            (None, None) => last_rollout::NOT_DEPLOYED,
        }
    }
}

/// What a component's health command said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
pub struct Health {
    /// The verdict.
    pub status: HealthStatus,
    /// What the command said about it (`3/3 pods`), or why there is no verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it was checked (RFC 3339).
    pub checked_at: String,
    /// The commit that was running when it was checked.
    pub git_sha: String,
}

/// A health verdict, best first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working as intended.
    Healthy,
    /// Working, with reduced capacity or errors.
    Degraded,
    /// Not working.
    Unhealthy,
    /// The check did not say (timed out, printed no verdict).
    Unknown,
}

impl HealthStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
            HealthStatus::Unknown => "unknown",
        }
    }
}

/// Where the last health check of a component is kept (local to this clone: health is
/// observed, not history).
pub fn health_file(
    git: &GitRepo,
    deployment: &str,
    target: &str,
    component: &str,
) -> std::path::PathBuf {
    git.git_dir()
        .join("atmos")
        .join("health")
        .join(deployment)
        .join(target)
        .join(format!("{component}.json"))
}

/// A health detail as it may be shown: one line, printable, no bidirectional overrides, at
/// most 120 characters (a detail comes from a command's output, or a file anyone can write).
pub fn clean_detail(detail: &str) -> String {
    detail
        .chars()
        .filter(|c| {
            !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect()
}

/// The last health check of a component, when it was of `commit`.
fn cached_health(
    git: &GitRepo,
    deployment: &str,
    target: &str,
    component: &str,
    commit: &str,
) -> Option<Health> {
    let bytes = std::fs::read(health_file(git, deployment, target, component)).ok()?;
    let mut health = serde_json::from_slice::<Health>(&bytes)
        .ok()
        .filter(|h| h.git_sha == commit)?;
    health.detail = health.detail.as_deref().map(clean_detail);
    Some(health)
}

/// Every component of one target.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetStatus {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// Components in config order, then state of removed components.
    pub components: Vec<ComponentStatus>,
    /// The SBOM summary of the commit the target runs (status of one target only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<crate::sbom::Summary>,
    /// The target's lock as this clone last saw it (a rollout that started and has no
    /// outcome is running while its lease is live).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseView>,
}

/// A target's lease as this clone last saw it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LeaseView {
    /// Who holds it.
    pub holder: String,
    /// Host and process.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When it lapses.
    pub expires_at: String,
    /// True when it has lapsed.
    pub expired: bool,
}

impl TargetStatus {
    /// The newest deploy time among components.
    pub fn last_deployed_at(&self) -> Option<&str> {
        self.components
            .iter()
            .filter_map(|c| c.deployed_at.as_deref())
            .max()
    }

    /// `failure` when any component's newest rollout failed, `not deployed` when none ever
    /// was, `rollback` when any component's newest rollout went back to an older commit, else
    /// `success`: the word `status --target` shows for the component.
    pub fn last_rollout(&self) -> &'static str {
        let all: Vec<&str> = self
            .components
            .iter()
            .map(ComponentStatus::last_rollout)
            .collect();
        if all.contains(&last_rollout::STARTED) {
            last_rollout::STARTED
        } else if all.contains(&last_rollout::INTERRUPTED) {
            last_rollout::INTERRUPTED
        } else if all.contains(&last_rollout::FAILURE) {
            last_rollout::FAILURE
        } else if all.iter().all(|h| *h == last_rollout::NOT_DEPLOYED) {
            last_rollout::NOT_DEPLOYED
        } else if all.contains(&last_rollout::ROLLBACK) {
            last_rollout::ROLLBACK
        } else {
            last_rollout::SUCCESS
        }
    }

    /// The worst health among the components that were checked.
    pub fn health(&self) -> Option<HealthStatus> {
        self.components
            .iter()
            .filter_map(|c| c.health.as_ref().map(|h| h.status))
            .max()
    }
}

/// `status` of one target, one deployment, or all.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusReport {
    /// Every target asked for.
    pub targets: Vec<TargetStatus>,
    /// Tags in the namespace that could not be read as records.
    pub unparseable: Vec<Unparseable>,
}

impl StatusReport {
    /// The `<target>/<component>` read from the records, this clone having no state ref.
    pub fn from_records(&self) -> Vec<String> {
        self.targets
            .iter()
            .flat_map(|t| {
                t.components
                    .iter()
                    .filter(|c| c.from_records)
                    .map(move |c| format!("{}/{}", t.target, c.component))
            })
            .collect()
    }
}

impl StatusOverview {
    /// The `<deployment>/<target>` read (in part) from the records.
    pub fn from_records(&self) -> Vec<String> {
        self.deployments
            .iter()
            .flat_map(|d| {
                d.targets
                    .iter()
                    .filter(|t| t.from_records)
                    .map(move |t| format!("{}/{}", d.deployment, t.target))
            })
            .collect()
    }
}

/// Status of `targets` (all when empty) of one deployment.
pub fn status(
    git: &GitRepo,
    loaded: &LoadedDeployment,
    target: Option<&str>,
) -> Result<StatusReport, GitError> {
    let d = &loaded.deployment;
    let targets: Vec<&str> = match target {
        Some(t) => vec![t],
        None => d.targets.keys().map(String::as_str).collect(),
    };
    let mut report = StatusReport {
        targets: Vec::new(),
        unparseable: Vec::new(),
    };
    let all_state = git.state_refs(&d.name, target)?;
    for t in targets {
        let state: HashMap<&str, &str> = all_state
            .iter()
            .filter(|s| s.target == t)
            .map(|s| (s.component.as_str(), s.commit.as_str()))
            .collect();
        let mut names: Vec<(String, Option<String>, bool)> = d
            .components
            .iter()
            .map(|c| (c.name.to_owned(), Some(c.kind.to_string()), true))
            .collect();
        let mut extra: Vec<&str> = state
            .keys()
            .copied()
            .filter(|n| d.components.by_name(n).is_none())
            .collect();
        extra.sort_unstable();
        names.extend(extra.into_iter().map(|n| (n.to_owned(), None, false)));
        let mut components = Vec::new();
        for (name, kind, in_config) in names {
            let mut commit = state.get(name.as_str()).map(|s| (*s).to_owned());
            // No state ref here: the newest record that deployed a commit says what runs.
            let from_records = commit.is_none() && {
                commit = newest_deployed(git, &d.name, t, &name)?;
                commit.is_some()
            };
            let health = commit
                .as_deref()
                .and_then(|c| cached_health(git, &d.name, t, &name, c));
            let mut c = component_status(
                git,
                &d.name,
                t,
                name,
                kind,
                in_config,
                commit,
                &mut report.unparseable,
            )?;
            c.health = health;
            c.from_records = from_records;
            components.push(c);
        }
        let mut status = TargetStatus {
            deployment: d.name.clone(),
            target: t.to_owned(),
            components,
            sbom: None,
            lease: lease_view(git, &d.name, t),
        };
        // One target's status shows what its commit is made of (and any scan merged since).
        if target.is_some()
            && let Some(commit) = status.summary(git)?.commit
            && let Some(json) = crate::sbom::load(git, &d.name, &commit)?
        {
            status.sbom = crate::sbom::summarize(&json).ok();
        }
        report.targets.push(status);
    }
    Ok(report)
}

/// The commit of the newest record of `component` in `target` that deployed one.
fn newest_deployed(
    git: &GitRepo,
    deployment: &str,
    target: &str,
    component: &str,
) -> Result<Option<String>, GitError> {
    let mut walk = git.chain(deployment, target, component)?;
    while let Some(link) = walk.next_link()? {
        if link.record.status.deployed() {
            return Ok(Some(link.record.git_sha.clone()));
        }
    }
    Ok(None)
}

#[allow(clippy::too_many_arguments)]
fn component_status(
    git: &GitRepo,
    deployment: &str,
    target: &str,
    name: String,
    kind: Option<String>,
    in_config: bool,
    commit: Option<String>,
    odd: &mut Vec<Unparseable>,
) -> Result<ComponentStatus, GitError> {
    let mut status = ComponentStatus {
        component: name,
        component_type: kind,
        in_config,
        commit: commit.clone(),
        from_records: false,
        deployed_at: None,
        deployed_by: None,
        status: None,
        promoted_from: None,
        approved_by: Vec::new(),
        approved_at: Vec::new(),
        build_id: None,
        image: None,
        image_digest: None,
        pr: None,
        tag: None,
        last_attempt: None,
        health: None,
    };
    // Newest first, along the chain: the first record is the last attempt; the first
    // deploying the deployed commit describes what runs.
    let mut walk = git.chain(deployment, target, &status.component)?;
    let mut newest: Option<(String, TagRecord)> = None;
    while let Some(link) = walk.next_link()? {
        let (entry, record) = (&link.entry, &*link.record);
        if newest.is_none() {
            newest = Some((entry.name.clone(), record.clone()));
        }
        let deployed = record.status.deployed() && Some(&record.git_sha) == commit.as_ref();
        if deployed {
            status.deployed_at = Some(record.timestamp.clone());
            status.deployed_by = Some(record.deployed_by.clone());
            status.status = Some(record.status);
            status.promoted_from = record.promoted_from.clone();
            status.approved_by = record
                .metadata
                .get("approver")
                .map(|a| approvers(a))
                .unwrap_or_default();
            if !status.approved_by.is_empty() {
                let approved = record.approved_commit.as_deref().unwrap_or(&record.git_sha);
                // The approvals note may not be here (a clone that fetched only the records):
                // the times are then unknown, not an error.
                let notes = crate::approvals::read(git, deployment, approved)
                    .map(|(r, _)| r)
                    .unwrap_or_default();
                status.approved_at = status
                    .approved_by
                    .iter()
                    .map(|who| {
                        notes
                            .iter()
                            .filter(|n| {
                                crate::identity::same(&n.approved_by, who)
                                    && n.target == record.target
                                    && n.decision == crate::contracts::ApprovalDecision::Approve
                            })
                            .map(|n| n.approved_at.clone())
                            .max()
                    })
                    .collect();
            }
            status.build_id = record.build_id.clone();
            status.image = record.image.clone();
            status.image_digest = record.image_digest.clone();
            status.pr = record.metadata.get("pr").cloned();
            status.tag = Some(entry.name.clone());
            if status.component_type.is_none() {
                status.component_type = record.component_type.clone();
            }
            break;
        }
        if commit.is_none() {
            break;
        }
    }
    // What runs is read along the links; tags on no chain are verify's to report.
    odd.extend(walk.unread());
    if let Some((tag, r)) = newest
        && status.tag.as_deref() != Some(tag.as_str())
    {
        status.last_attempt = Some(Attempt {
            tag,
            status: r.status,
            git_sha: r.git_sha,
            timestamp: r.timestamp,
            error: r.error,
            deployed_by: r.deployed_by,
            runner: r.runner,
            canary: r.canary,
        });
    }
    Ok(status)
}

/// The target's lease as the local copy of its lock says (fetched with the records).
fn lease_view(git: &GitRepo, deployment: &str, target: &str) -> Option<LeaseView> {
    let entry = git
        .refs()
        .find(&crate::contracts::layout::lock_ref(deployment, target))
        .ok()??;
    let lease = git.read_lease(&entry.oid).ok()?;
    Some(LeaseView {
        expired: lease.expired(jiff::Timestamp::now()),
        holder: lease.holder,
        host: lease.host,
        pid: lease.pid,
        expires_at: lease.expires_at,
    })
}

/// One target in one line: the newest commit it runs, when, and how healthy it is.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetSummary {
    /// Target.
    pub target: String,
    /// The commit that contains what every component runs (or the newest of them).
    pub commit: Option<String>,
    /// True when components run different commits.
    pub mixed: bool,
    /// Newest deploy time (RFC 3339).
    pub deployed_at: Option<String>,
    /// How the newest rollouts went: `success`, `rollback`, `failure`, `started`,
    /// `interrupted` or `not deployed`.
    pub last_rollout: &'static str,
    /// The worst health among checked components, when any was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// True when a component's commit is read from the records, this clone having no state
    /// ref for it (see [`ComponentStatus::from_records`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_records: bool,
}

impl TargetStatus {
    /// Summarise for `list`, `status` of every deployment and the promotion graph.
    pub fn summary(&self, git: &GitRepo) -> Result<TargetSummary, GitError> {
        let mut commits: Vec<String> = self
            .components
            .iter()
            .filter(|c| c.in_config)
            .filter_map(|c| c.commit.clone())
            .collect();
        commits.sort();
        commits.dedup();
        Ok(TargetSummary {
            target: self.target.clone(),
            commit: git.newest_commit(&commits)?,
            mixed: commits.len() > 1,
            deployed_at: self.last_deployed_at().map(str::to_owned),
            last_rollout: self.last_rollout(),
            health: self.health(),
            from_records: self.components.iter().any(|c| c.from_records),
        })
    }
}

/// Every deployment, one line per target (`status` without a deployment).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusOverview {
    /// Each deployment that loads, by name.
    pub deployments: Vec<DeploymentSummary>,
    /// Tags in the namespace that are not atmos records.
    pub unparseable: Vec<Unparseable>,
}

/// One deployment of the overview.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeploymentSummary {
    /// Deployment.
    pub deployment: String,
    /// Each target.
    pub targets: Vec<TargetSummary>,
}

/// The overview of every deployment of `catalog`.
pub fn overview(
    git: &GitRepo,
    catalog: &crate::config::Catalog,
) -> Result<StatusOverview, GitError> {
    let mut all = StatusOverview {
        deployments: Vec::new(),
        unparseable: Vec::new(),
    };
    for loaded in &catalog.deployments {
        let report = status(git, loaded, None)?;
        let mut targets = Vec::new();
        for t in &report.targets {
            targets.push(t.summary(git)?);
        }
        all.unparseable.extend(report.unparseable);
        all.deployments.push(DeploymentSummary {
            deployment: loaded.deployment.name.clone(),
            targets,
        });
    }
    Ok(all)
}

crate::document!(StatusReport => "StatusReport", StatusOverview => "StatusOverview");

/// The approvers a record names (`metadata.approver`: identities joined by `, `).
pub fn approvers(joined: &str) -> Vec<String> {
    joined
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}
