//! Deciding a rollout: which commit each component gets, what changes, in which waves, and
//! what every gate says. Reads git; writes nothing.
//!
//! Two configurations take part. The *rules* (target promotion and approval rules, gate
//! bindings, approver groups) come from the trusted ref ([`crate::workflow::trust`]); *what is
//! deployed* (the components, their vars and settings) comes from the deployment file as of
//! the deployed commit. A rollback is to a commit the target ran before; a direct rollout to a
//! promoted target is of a commit that ran in one of its sources, and is a promotion.
//!
//! The plan is a sequence of named steps, each a function of what it is given:
//!
//! | step | module | decides |
//! |---|---|---|
//! | metadata | [`check_metadata`] | `--metadata` keys are plain names and not atmos's own |
//! | resolve | [`resolve`] | the commits deployed and the components selected |
//! | changes | [`resolve::changes`] | what each component runs now, and how that changes |
//! | promotion | [`promotion::verdict`] | the promotion path (entry point, source, rollback) |
//! | ran in source | [`promotion::ran_in_source`] | a promotion takes only what its source ran |
//! | trusted ref | `Planner::trusted_ref` | a warning for commits not on the trusted ref |
//! | deployers | [`deployers::verdict`] | who may deploy, proven where required |
//! | artifacts | [`artifacts::verdict`] | build once, promote the artifact (copied into the target's registry) |
//! | provenance | [`provenance::verdict`] | each image's signed provenance, required where the target says so |
//! | approvals | [`approvals::step`] | the approval rules on the recorded approvals |
//!
//! The [`Records`](super::records::Records) the steps read are the repository's history
//! ([`Ran`]); unit tests give
//! them a table instead.

pub mod approvals;
pub mod artifacts;
pub mod deployers;
pub mod promotion;
pub mod provenance;
pub mod resolve;

use indexmap::IndexMap;

use super::model::{PlannedComponent, RolloutPlan, RolloutRequest};
use super::ran::Ran;
use crate::config::{LoadedDeployment, Project, UnknownTarget};
use crate::contracts::layout::rfc3339;
use crate::contracts::{Decision, Verdict};
use crate::gates::isolation::Evaluator;
use crate::git::{GitRepo, short};
use crate::workflow::error::WorkflowError;
use crate::workflow::trust::{Rules, project_in_repo};

pub use super::model::{APPROVAL_GATE, ARTIFACT_GATE, DEPLOYER_GATE, HISTORY_GATE, PROMOTION_GATE};

/// Metadata keys atmos records itself.
pub const RESERVED_METADATA: &[&str] = &["approver", "skip_promotion_check", "automatic_rollback"];

/// Whether `key` is reserved, in any case (`Approver` is `approver` to a reader).
fn reserved(key: &str) -> bool {
    RESERVED_METADATA
        .iter()
        .any(|r| r.eq_ignore_ascii_case(key))
}

/// What planning reads: the work tree's project (where executors run), the trusted rules, the
/// repository and the policy evaluator.
pub struct Planner<'a> {
    /// The project in the work tree.
    pub project: &'a Project,
    /// The rules that decide.
    pub rules: &'a Rules,
    /// The repository.
    pub git: &'a GitRepo,
    /// How policies are evaluated.
    pub evaluator: &'a dyn Evaluator,
}

impl Planner<'_> {
    /// The plan with every gate's decision, without checking the fixes of its blockers (what
    /// a suggested command is checked with).
    pub(super) fn gated(&self, request: &RolloutRequest) -> Result<RolloutPlan, WorkflowError> {
        let mut plan = self.builtin(request)?;
        let input = self.gate_input(&plan, request.force)?;
        if !plan.is_noop() {
            plan.decisions
                .extend(self.bound_gates(&input, since_epoch(request.started_at))?);
        }
        plan.input = Some(input);
        Ok(plan)
    }

    /// Every policy and hook bound to the input's target, on `input`.
    fn bound_gates(
        &self,
        input: &crate::contracts::GateInput,
        now: std::time::Duration,
    ) -> Result<Vec<Decision>, WorkflowError> {
        let json = serde_json::to_value(input).map_err(|e| WorkflowError::Internal {
            what: format!("the gate input document could not be serialised: {e}"),
        })?;
        let rules = &self.rules;
        let target = &input.target.name;
        let mut decisions = crate::gates::evaluate_bound(
            self.evaluator,
            &rules.project,
            &rules.loaded,
            target,
            &json,
        );
        decisions.extend(crate::gates::evaluate_hooks(
            &rules.project,
            &rules.loaded,
            target,
            input.action,
            &json,
            now,
            Some(&crate::gates::wasm_cache_dir(self.git.git_dir())),
        ));
        Ok(decisions)
    }

    /// The gates of an approval of `request`'s rollout, evaluated before the approval is
    /// recorded: the input document is the rollout's, with `action: approve`; every bound
    /// policy and the hooks bound with `on: [approve]` see it.
    pub fn approval_gates(&self, request: &RolloutRequest) -> Result<Vec<Decision>, WorkflowError> {
        let plan = self.builtin(request)?;
        let mut input = self.gate_input(&plan, false)?;
        input.action = crate::contracts::GateAction::Approve;
        self.bound_gates(&input, since_epoch(request.started_at))
    }

    /// The gate input document of `plan`, with the approvals recorded for its commit and target.
    fn gate_input(
        &self,
        plan: &RolloutPlan,
        force: bool,
    ) -> Result<crate::contracts::GateInput, WorkflowError> {
        let mut input = super::input::for_rollout(self.git, &self.rules.loaded, plan, force)?;
        if let Some(commit) = &plan.approval_commit {
            input.approvals = approvals::recorded(
                self.git,
                &self.rules.loaded.deployment.name,
                &plan.target,
                commit,
            )?
            .iter()
            .map(|r| {
                serde_json::to_value(r).map_err(|e| WorkflowError::Internal {
                    what: format!("an approval record could not be serialised: {e}"),
                })
            })
            .collect::<Result<_, _>>()?;
        }
        Ok(input)
    }

    /// The deployment file as of `sha`: what a rollout of that commit deploys.
    pub fn config_at(&self, sha: &str) -> Result<LoadedDeployment, WorkflowError> {
        deployed_config(
            self.git,
            &project_in_repo(self.git, &self.project.root),
            &self.rules.project,
            &self.rules.loaded.deployment.name,
            sha,
        )
    }

    /// The plan with the built-in gates only: the steps of the module documentation, in
    /// order.
    fn builtin(&self, request: &RolloutRequest) -> Result<RolloutPlan, WorkflowError> {
        check_metadata(&request.metadata)?;
        let rules = &self.rules.loaded.deployment;
        let target_name = request.target.as_str();
        UnknownTarget::check(rules, target_name)?;
        let target = &rules.targets[target_name];
        let records = Ran::counting(self.git, &rules.name, self.counting(target_name));

        let resolved = resolve::resolve(
            self.git,
            rules,
            target_name,
            &request.source,
            &request.components,
            &|sha| self.config_at(sha),
        )?;
        let components = resolve::changes(
            &resolved,
            target_name,
            request.reverting.as_deref(),
            request.force,
            &records,
        )?;
        let waves = resolve::waves(&components);
        let changing: Vec<&PlannedComponent> = components
            .iter()
            .filter(|c| c.change != super::model::Change::Unchanged)
            .collect();

        let promotion = promotion::verdict(
            &promotion::Question {
                rules: &self.rules.loaded,
                target: target_name,
                source: &request.source,
                commit: resolved.commit.as_deref(),
                changing: &changing,
                skip_promotion_check: request.skip_promotion_check,
                actor: &request.actor.id,
            },
            &records,
        )?;
        let mut decisions = vec![promotion.decision];
        // The source records a promotion takes (what made it eligible), by component.
        let mut source_records = std::collections::BTreeMap::new();
        if let Some(source) = promotion.source_target.as_deref() {
            let (denied, found) =
                promotion::ran_in_source(&rules.name, source, &changing, &records)?;
            // A direct rollout of a commit that ran in a source was judged by that already.
            if request.source.promote_from().is_some() {
                decisions.extend(denied);
            }
            source_records = found;
        }
        decisions.extend(self.trusted_ref(&changing)?);
        if let Some(rule) = target.promotion.as_ref().and_then(|p| p.deployers.as_ref()) {
            decisions.push(deployers::verdict(
                target_name,
                rule,
                &self.rules.project.settings.approvers,
                &request.actor,
                request.proof.as_ref(),
            ));
        }
        let sources = promotion::sources_of(&self.rules.loaded, target_name);
        let (artifacts, artifact_decision) = artifacts::verdict(
            &artifacts::Question {
                deployment: &rules.name,
                target: target_name,
                source: promotion.source_target.as_deref(),
                entry: sources.is_empty(),
                components: &components,
            },
            &records,
        )?;
        decisions.extend(artifact_decision);
        let mut artifacts = artifacts;
        if let Some(registry) = &target.registry {
            for a in artifacts.values_mut() {
                *a = super::images::relocate(a, registry)?;
            }
            if let Some((repository, components)) = super::images::collisions(&artifacts) {
                return Err(WorkflowError::RegistryCollision {
                    target: target_name.to_owned(),
                    repository,
                    components,
                });
            }
        }
        let signers = self
            .rules
            .project
            .settings
            .approvers
            .allowed_signers
            .as_ref()
            .map(|p| self.rules.project.root.join(p));
        let (checks, provenance_decision) = provenance::verdict(
            &provenance::Question {
                deployment: &rules.name,
                target: target_name,
                components: &components,
                artifacts: &artifacts,
                rules: target
                    .promotion
                    .as_ref()
                    .and_then(|p| p.provenance.as_ref()),
                signers: signers.as_deref(),
                groups: &self.rules.project.settings.approvers.groups,
            },
            &|sha| Ok(crate::artifacts::read(self.git, &rules.name, sha)?.0),
        )?;
        for (name, check) in checks {
            if let Some(a) = artifacts.get_mut(&name) {
                a.provenance = Some(check);
            }
        }
        decisions.extend(provenance_decision);
        let rollout = rollout_id(request);
        let strategy = match target.strategy.as_ref().and_then(|s| s.canary.as_ref()) {
            None => None,
            Some(s) => Some(s.parse().map_err(|p| WorkflowError::NoCanary {
                target: target_name.to_owned(),
                why: format!("strategy.canary{}: {}", p.at.replace('/', "."), p.message),
            })?),
        };
        let canary = super::canary::plan_step(strategy.as_ref(), &components, request, &rollout)?;
        let approval = approvals::step(
            self.git,
            &approvals::Question {
                deployment: &rules.name,
                target: (target_name, target),
                approvers: &self.rules.project.settings.approvers,
                root: &self.rules.project.root,
                actor: &request.actor.id,
                rollout: &rollout,
                components: &components,
                changing: &changing,
            },
        )?;
        decisions.extend(approval.decisions);
        // Records that exist but did not count (a target that requires signatures), said.
        for aside in records.set_aside() {
            decisions.push(Decision::new(
                HISTORY_GATE,
                "records_counted",
                Verdict::Warn,
                format!("{} does not count: {}", aside.tag, aside.reason),
            ));
        }
        let mut components = components;
        for c in &mut components {
            c.source_record = source_records.remove(&c.name);
        }

        Ok(RolloutPlan {
            deployment: rules.name.clone(),
            target: target_name.to_owned(),
            action: promotion.action,
            source_target: promotion.source_target,
            commit: resolved.commit,
            components,
            waves,
            decisions,
            denial: promotion.denial,
            actor: request.actor.clone(),
            proof: request.proof.clone(),
            build_id: request.build_id.clone(),
            metadata: recorded_metadata(request, approval.approvers),
            started_at: rfc3339(request.started_at),
            skip_promotion_check: request.skip_promotion_check,
            input: None,
            approvals: approval.check,
            approval_commit: approval.commit,
            rules: self.rules.origin.clone(),
            blockers: Vec::new(),
            artifacts,
            registry: target.registry.clone(),
            context: request.context.clone(),
            rollout_id: rollout,
            reverting: request.reverting.clone(),
            canary,
            configs: resolved.configs,
        })
    }

    /// Which records decide a rollout into `target`: where it requires signed deployers or
    /// approvals, only records (and builds) whose signatures verify against the trusted
    /// allowed signers.
    pub fn counting(&self, target: &str) -> super::ran::Counting {
        let promotion = self
            .rules
            .loaded
            .deployment
            .targets
            .get(target)
            .and_then(|t| t.promotion.as_ref());
        let deployers = promotion
            .and_then(|p| p.deployers.as_ref())
            .is_some_and(|d| d.require_signed);
        let approvals = promotion
            .and_then(|p| p.approvals.as_ref())
            .is_some_and(|a| a.require_signed);
        if !deployers && !approvals {
            return super::ran::Counting::default();
        }
        let signers = self
            .rules
            .project
            .settings
            .approvers
            .allowed_signers
            .as_ref()
            .map(|p| self.rules.project.root.join(p));
        let why = format!(
            "{target} requires signed {}",
            if deployers { "deployers" } else { "approvals" }
        );
        super::ran::Counting {
            verified_only: Some((signers, why)),
        }
    }

    /// A warning for each deployed commit that is not on the trusted ref (a feature branch,
    /// or not merged yet); none when the rules are the work tree's.
    fn trusted_ref(
        &self,
        changing: &[&PlannedComponent],
    ) -> Result<Option<Decision>, WorkflowError> {
        if self.rules.origin.is_local() {
            return Ok(None);
        }
        let trusted = &self.rules.origin.source;
        let mut off: Vec<&str> = Vec::new();
        for c in changing {
            if !self.git.reachable_from(&c.new, trusted)? && !off.contains(&short(&c.new)) {
                off.push(short(&c.new));
            }
        }
        if off.is_empty() {
            return Ok(None);
        }
        Ok(Some(Decision::new(
            HISTORY_GATE,
            "trusted_ref",
            Verdict::Warn,
            format!(
                "{} {} not on {trusted} (a feature branch, or not merged yet)",
                off.join(", "),
                crate::plural::is_are(off.len())
            ),
        )))
    }
}

/// `--metadata` keys are plain names, and never one atmos records itself: a record's
/// "approver" comes only from approval records.
pub fn check_metadata(metadata: &IndexMap<String, String>) -> Result<(), WorkflowError> {
    // A look-alike (` approver`, `approver `) would read like atmos's own.
    let odd = |k: &str| {
        k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let Some(key) = metadata.keys().find(|k| reserved(k) || odd(k)) else {
        return Ok(());
    };
    let (shown, why) = if reserved(key) {
        (
            key.clone(),
            format!("is reserved: atmos records `{key}` itself"),
        )
    } else {
        (
            format!("{key:?}"),
            "is refused: a key is a plain name".to_owned(),
        )
    };
    Err(WorkflowError::ReservedMetadata {
        key: key.clone(),
        shown,
        why,
    })
}

/// The metadata a rollout records: `--metadata`, who approved, and the flags worth auditing.
fn recorded_metadata(
    request: &RolloutRequest,
    approvers: Option<String>,
) -> IndexMap<String, String> {
    let mut metadata = request.metadata.clone();
    if let Some(who) = approvers {
        metadata.insert("approver".into(), who);
    }
    if request.skip_promotion_check {
        metadata.insert("skip_promotion_check".into(), "true".into());
    }
    match (&request.reverting, &request.canary) {
        (Some(r), Some(super::model::CanaryRequest::Abort { step, .. })) => {
            metadata.insert(
                "automatic_rollback".into(),
                format!("canary of {} aborted at step {step}", short(&r.commit)),
            );
        }
        (Some(r), _) => {
            metadata.insert(
                "automatic_rollback".into(),
                format!("verification of {} failed", short(&r.commit)),
            );
        }
        _ => {}
    }
    metadata
}

/// The deployment file `<name>.yaml` (or `.yml`) of the project at `rel` (relative to the
/// repository's top) as of commit `sha`, with everything it imports and includes read from
/// that same commit, processed under the settings of `settings_of` (its deployments folder,
/// the environment variables `!env` may read), and checked.
pub fn deployed_config(
    git: &GitRepo,
    rel: &std::path::Path,
    settings_of: &crate::config::Project,
    name: &str,
    sha: &str,
) -> Result<LoadedDeployment, WorkflowError> {
    use crate::config::source::FileSource;
    let files = crate::git::files::CommitFiles::new(git, sha, rel)?;
    let dir = settings_of.processing().deployments_dir;
    for ext in ["yaml", "yml"] {
        let path = dir.join(format!("{name}.{ext}"));
        if files.exists(&path) {
            return settings_of.load_from(&files, &path).map_err(|diagnostics| {
                crate::config::ProjectError::Invalid {
                    name: name.to_owned(),
                    diagnostics,
                }
                .into()
            });
        }
    }
    Err(WorkflowError::NotInCommit {
        deployment: name.to_owned(),
        commit: sha.to_owned(),
        path: rel.join(dir).join(format!("{name}.yaml")),
    })
}

/// The id of the rollout `request` starts: its start time in nanoseconds and the process —
/// known to nobody before it starts.
pub fn rollout_id(request: &RolloutRequest) -> String {
    format!(
        "{}.{}",
        request.started_at.as_nanosecond(),
        std::process::id()
    )
}

fn since_epoch(at: jiff::Timestamp) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(at.as_second()).unwrap_or_default())
}
