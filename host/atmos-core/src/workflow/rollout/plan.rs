//! Deciding a rollout: which commit each component gets, what changes, in which waves, and
//! what every gate says. Reads git; writes nothing.
//!
//! Two configurations take part. The *rules* (target promotion and approval rules, gate
//! bindings, approver groups) come from the trusted ref ([`crate::workflow::trust`]); *what is
//! deployed* (the components, their vars and settings) comes from the deployment file as of
//! the deployed commit. A rollback is to a commit the target ran before; a direct rollout to a
//! promoted target is of a commit that ran in one of its sources, and is a promotion.

use std::collections::{BTreeMap, HashSet};

use super::model::{
    Action, Artifact, Change, PlannedComponent, PromotionDenial, RolloutPlan, RolloutRequest,
    StepRequest,
};
use super::ran::Ran;
use crate::config::{ComponentRef, LoadedDeployment, Project, UnknownTarget};
use crate::contracts::layout::rfc3339;
use crate::contracts::{Decision, Verdict};
use crate::dag::{self, Edges};
use crate::diagnostic::did_you_mean;
use crate::gates::isolation::Evaluator;
use crate::git::{GitRepo, short};
use crate::promotion::PromotionGraph;
use crate::workflow::error::WorkflowError;
use crate::workflow::trust::{Rules, project_in_repo};

/// Source of the built-in promotion decision.
pub const PROMOTION_GATE: &str = "builtin/promotion-path";
/// Source of the built-in approval decision.
pub const APPROVAL_GATE: &str = "builtin/approvals";
/// Source of the built-in decision about where the deployed commit lives.
pub const HISTORY_GATE: &str = "builtin/history";
/// Source of the built-in decision about who may deploy.
pub const DEPLOYER_GATE: &str = "builtin/deployers";
/// Metadata keys atmos records itself.
pub const RESERVED_METADATA: &[&str] = &["approver", "skip_promotion_check", "automatic_rollback"];

/// The built-in gate that checks each image component has a built artifact to deploy.
pub const ARTIFACT_GATE: &str = "builtin/artifacts";

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
            let json = serde_json::to_value(&input).unwrap_or_default();
            let rules = &self.rules;
            plan.decisions.extend(crate::gates::evaluate_bound(
                self.evaluator,
                &rules.project,
                &rules.loaded,
                &plan.target,
                &json,
            ));
            let cache = crate::gates::wasm_cache_dir(self.git.git_dir());
            plan.decisions.extend(crate::gates::evaluate_hooks(
                &rules.project,
                &rules.loaded,
                &plan.target,
                input.action,
                &json,
                since_epoch(request.started_at),
                Some(&cache),
            ));
        }
        plan.input = Some(input);
        Ok(plan)
    }

    /// The gates of an approval of `request`'s rollout, evaluated before the approval is
    /// recorded: the input document is the rollout's, with `action: approve`; every bound
    /// policy and the hooks bound with `on: [approve]` see it.
    pub fn approval_gates(&self, request: &RolloutRequest) -> Result<Vec<Decision>, WorkflowError> {
        let plan = self.builtin(request)?;
        let mut input = self.gate_input(&plan, false)?;
        input.action = crate::contracts::GateAction::Approve;
        let json = serde_json::to_value(&input).unwrap_or_default();
        let rules = &self.rules;
        let mut decisions = crate::gates::evaluate_bound(
            self.evaluator,
            &rules.project,
            &rules.loaded,
            &plan.target,
            &json,
        );
        decisions.extend(crate::gates::evaluate_hooks(
            &rules.project,
            &rules.loaded,
            &plan.target,
            input.action,
            &json,
            since_epoch(request.started_at),
            Some(&crate::gates::wasm_cache_dir(self.git.git_dir())),
        ));
        Ok(decisions)
    }

    /// The gate input document of `plan`, with the approvals recorded for its commit and target.
    fn gate_input(
        &self,
        plan: &RolloutPlan,
        force: bool,
    ) -> Result<crate::contracts::GateInput, WorkflowError> {
        let mut input = super::input::for_rollout(self.git, &self.rules.loaded, plan, force)?;
        if let Some(commit) = &plan.approval_commit {
            let (records, _) =
                crate::approvals::read(self.git, &self.rules.loaded.deployment.name, commit)?;
            input.approvals = records
                .iter()
                .filter(|r| r.target == plan.target && r.git_sha == *commit)
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect();
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

    /// The plan with the built-in gates only.
    fn builtin(&self, request: &RolloutRequest) -> Result<RolloutPlan, WorkflowError> {
        // Keys atmos writes itself cannot come from `--metadata`: a record's "approver" comes
        // only from approval records.
        // A key is a name: a look-alike (` approver`, `approver `) would read like atmos's own.
        let odd = |k: &str| {
            k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if let Some(key) = request
            .metadata
            .keys()
            .find(|k| RESERVED_METADATA.contains(&k.as_str()) || odd(k))
        {
            let (shown, why) = if RESERVED_METADATA.contains(&key.as_str()) {
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
            return Err(WorkflowError::ReservedMetadata {
                key: key.clone(),
                shown,
                why,
            });
        }
        let git = self.git;
        let rules = &self.rules.loaded.deployment;
        let target_name = request.target.as_str();
        UnknownTarget::check(rules, target_name)?;
        let target = &rules.targets[target_name];
        let sources: Vec<String> = target
            .promotion
            .as_ref()
            .map(|p| p.sources().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        let ran = Ran::new(git, &rules.name);

        // What is deployed, and at which commits.
        let mut configs: BTreeMap<String, LoadedDeployment> = BTreeMap::new();
        let mut commit = None;
        let (base, deployed, selected_commits): (
            String,
            LoadedDeployment,
            Option<Vec<(String, String)>>,
        ) = match &request.promote_from {
            Some(source) => {
                UnknownTarget::check(rules, source)?;
                if source == target_name {
                    return Err(WorkflowError::SelfPromotion {
                        target: target_name.to_owned(),
                    });
                }
                let state = git.state_refs(&rules.name, Some(source))?;
                let mut commits: Vec<String> = state.iter().map(|s| s.commit.clone()).collect();
                commits.sort();
                commits.dedup();
                let Some(newest) = git.newest_commit(&commits)? else {
                    let components = select(rules, &request.components)?
                        .iter()
                        .map(|c| c.name.to_owned())
                        .collect();
                    return Err(WorkflowError::NothingToPromote {
                        deployment: rules.name.clone(),
                        source_target: source.clone(),
                        components,
                    });
                };
                let cfg = self.config_at(&newest)?;
                let pairs = state.into_iter().map(|s| (s.component, s.commit)).collect();
                (newest, cfg, Some(pairs))
            }
            None => {
                let sha = git.resolve_commit(request.git_sha.as_deref().unwrap_or("HEAD"))?;
                commit = Some(sha.clone());
                let cfg = self.config_at(&sha)?;
                (sha, cfg, None)
            }
        };
        let d = &deployed.deployment;
        let selected = select(d, &request.components)?;
        let mut new_commits: Vec<String> = Vec::with_capacity(selected.len());
        match (&selected_commits, &commit) {
            (Some(pairs), _) => {
                let mut missing = Vec::new();
                for c in &selected {
                    match pairs.iter().find(|(n, _)| n == c.name) {
                        Some((_, sha)) => new_commits.push(sha.clone()),
                        None => missing.push(c.name.to_owned()),
                    }
                }
                if !missing.is_empty() {
                    return Err(WorkflowError::NothingToPromote {
                        deployment: rules.name.clone(),
                        source_target: request.promote_from.clone().unwrap_or_default(),
                        components: missing,
                    });
                }
            }
            (None, Some(sha)) => new_commits = vec![sha.clone(); selected.len()],
            (None, None) => {}
        }
        for sha in &new_commits {
            if !configs.contains_key(sha) && *sha != base {
                let cfg = self.config_at(sha)?;
                configs.insert(sha.clone(), cfg);
            }
        }

        // What changes.
        let mut components = Vec::with_capacity(selected.len());
        for (c, new) in selected.iter().zip(&new_commits) {
            // An automatic rollback starts from what the failed apply left running.
            let current = match &request.reverting {
                Some(r) => Some(r.commit.clone()),
                None => git.deployed_commit(&rules.name, target_name, c.name)?,
            };
            if let Some(cur) = &current
                && !git.has_object(cur)
            {
                return Err(WorkflowError::MissingObject {
                    refname: crate::contracts::layout::state_ref(&rules.name, target_name, c.name),
                    object: cur.clone(),
                });
            }
            let change = match &current {
                None => Change::New,
                Some(cur) if cur == new => Change::Unchanged,
                Some(_) if ran.ran(target_name, c.name, new)? => Change::Rollback,
                Some(_) => Change::Changed,
            };
            components.push(PlannedComponent {
                name: c.name.to_owned(),
                kind: c.kind,
                depends_on: c.component.metadata.depends_on.clone(),
                current,
                run: change != Change::Unchanged || request.force,
                new: new.clone(),
                change,
            });
        }
        configs.entry(base).or_insert(deployed);
        let waves = waves(&components);
        let changing: Vec<&PlannedComponent> = components
            .iter()
            .filter(|c| c.change != Change::Unchanged)
            .collect();

        // A direct rollout to a promoted target: a rollback when every changing component ran
        // its commit here before; a promotion when the commit ran in an allowed source.
        let mut source_target = request.promote_from.clone();
        let mut decisions = Vec::new();
        let decision = |result, message: String| {
            Decision::new(PROMOTION_GATE, "promotion_path", result, message)
        };
        let all_rollback =
            !changing.is_empty() && changing.iter().all(|c| c.change == Change::Rollback);
        let mut allowed = match (&request.promote_from, sources.is_empty()) {
            (Some(s), _) => sources.contains(s),
            (None, true) => true,
            (None, false) => all_rollback || changing.is_empty(),
        };
        let mut ran_in_source = None;
        if !allowed && request.promote_from.is_none() {
            let names: Vec<&str> = changing
                .iter()
                .filter(|c| c.change != Change::Rollback)
                .map(|c| c.name.as_str())
                .collect();
            if let Some(sha) = &commit {
                for s in &sources {
                    if ran.ran_all(s, &names, sha)? {
                        ran_in_source = Some(s.clone());
                        break;
                    }
                }
            }
            if let Some(s) = &ran_in_source {
                allowed = true;
                source_target = Some(s.clone());
            }
        }
        let action = if source_target.is_some() {
            Action::Promote
        } else if all_rollback {
            Action::Rollback
        } else {
            Action::Rollout
        };
        let path_text = |from: &str| format!("{from} → {target_name}");
        let mut denial = None;
        if allowed {
            let message = match (&request.promote_from, &ran_in_source, sources.is_empty()) {
                (Some(s), _, _) => format!("{} is an allowed promotion", path_text(s)),
                (None, Some(s), _) => format!(
                    "{} is an allowed promotion: {} ran {} successfully",
                    path_text(s),
                    s,
                    commit.as_deref().map(short).unwrap_or("it")
                ),
                (None, None, true) => format!("{target_name} is an entry point"),
                (None, None, false) if changing.is_empty() => {
                    format!("{target_name} already runs every selected commit")
                }
                (None, None, false) => format!(
                    "rollback of {target_name} to {}, which it ran successfully before",
                    commit.as_deref().map(short).unwrap_or("a commit")
                ),
            };
            decisions.push(decision(Verdict::Allow, message));
        } else if request.skip_promotion_check {
            decisions.push(decision(
                Verdict::Skipped,
                format!(
                    "promotion check skipped with --skip-promotion-check by {}",
                    request.actor.id
                ),
            ));
        } else {
            let graph = PromotionGraph::of(&self.rules.loaded);
            let message = match &request.promote_from {
                Some(s) if sources.is_empty() => format!(
                    "{target_name} is an entry point: it is not promoted from any target (asked: {s})"
                ),
                Some(s) => format!(
                    "{} is not allowed: {target_name} is promoted from {}",
                    path_text(s),
                    sources.join(" or ")
                ),
                None => {
                    let sha = commit.as_deref().unwrap_or_default();
                    let names: Vec<&str> = changing.iter().map(|c| c.name.as_str()).collect();
                    let mut ran_where = Vec::new();
                    let mut not_where = Vec::new();
                    for t in rules.targets.keys() {
                        if ran.ran_all(t, &names, sha)? {
                            ran_where.push(t.clone());
                        } else {
                            not_where.push(t.clone());
                        }
                    }
                    format!(
                        "{} never ran in {target_name} and did not run in {} (it takes code by promotion from there); {}",
                        short(sha),
                        sources.join(" or "),
                        if ran_where.is_empty() {
                            format!(
                                "it has run nowhere ({} have not run it)",
                                not_where.join(", ")
                            )
                        } else {
                            format!(
                                "it ran in {}; not in {}",
                                ran_where.join(", "),
                                not_where.join(", ")
                            )
                        }
                    )
                }
            };
            decisions.push(decision(Verdict::Deny, message));
            let names: Vec<&str> = changing.iter().map(|c| c.name.as_str()).collect();
            let mut already = Vec::new();
            if let Some(sha) = &commit {
                for t in rules.targets.keys() {
                    if ran.ran_all(t, &names, sha)? {
                        already.push(t.clone());
                    }
                }
            }
            denial = Some(promotion_denial(
                &graph,
                &rules.name,
                target_name,
                request.promote_from.as_deref(),
                commit.as_deref().filter(|_| request.git_sha.is_some()),
                &already,
                &sources,
            ));
        }

        // What a promotion takes must have run in the source: a state ref moved by hand, with
        // no success record behind it, is not a rollout there.
        if let Some(source) = &request.promote_from {
            let mut unproven = Vec::new();
            for c in &changing {
                if !ran.ran(source, &c.name, &c.new)? {
                    unproven.push(format!("{} ({})", c.name, short(&c.new)));
                }
            }
            if !unproven.is_empty() {
                let mut d = Decision::new(
                    HISTORY_GATE,
                    "ran_in_source",
                    Verdict::Deny,
                    format!(
                        "{source} has no success record of what it is said to run: {} (a state ref moved by hand, or a record that does not count)",
                        unproven.join(", ")
                    ),
                );
                d.fix = Some(format!(
                    "roll out to {source} first (atmos deployment rollout {} --target {source}), or check its records with `atmos deployment verify`",
                    rules.name
                ));
                decisions.push(d);
            }
        }

        // Where the deployed commits live.
        let trusted = self.rules.origin.source.clone();
        let off_trusted: Vec<String> = if self.rules.origin.is_local() {
            Vec::new()
        } else {
            let mut out = Vec::new();
            for c in &changing {
                if !git.reachable_from(&c.new, &trusted)? && !out.contains(&c.new) {
                    out.push(c.new.clone());
                }
            }
            out
        };
        if !off_trusted.is_empty() {
            let shown: Vec<&str> = off_trusted.iter().map(|s| short(s)).collect();
            decisions.push(Decision::new(
                HISTORY_GATE,
                "trusted_ref",
                Verdict::Warn,
                format!(
                    "{} {} not on {trusted} (a feature branch, or not merged yet)",
                    shown.join(", "),
                    if shown.len() == 1 { "is" } else { "are" }
                ),
            ));
        }

        if let Some(rule) = target.promotion.as_ref().and_then(|p| p.deployers.as_ref()) {
            decisions.push(self.deployers(request, target_name, rule));
        }
        let artifacts = self.artifacts(
            target_name,
            source_target.as_deref(),
            sources.is_empty(),
            &components,
            &mut decisions,
        )?;

        let (approvals, approval_commit, approvers_text) =
            self.approvals(request, target_name, &components, &changing, &mut decisions)?;

        let mut metadata = request.metadata.clone();
        if let Some(who) = approvers_text {
            metadata.insert("approver".into(), who);
        }
        if request.skip_promotion_check {
            metadata.insert("skip_promotion_check".into(), "true".into());
        }
        if let Some(r) = &request.reverting {
            metadata.insert(
                "automatic_rollback".into(),
                format!("verification of {} failed", short(&r.commit)),
            );
        }
        Ok(RolloutPlan {
            deployment: rules.name.clone(),
            target: target_name.to_owned(),
            action,
            source_target,
            commit,
            components,
            waves,
            decisions,
            denial,
            actor: request.actor.clone(),
            proof: request.proof.clone(),
            build_id: request.build_id.clone(),
            metadata,
            started_at: rfc3339(request.started_at),
            skip_promotion_check: request.skip_promotion_check,
            input: None,
            approvals,
            approval_commit,
            rules: self.rules.origin.clone(),
            blockers: Vec::new(),
            artifacts,
            context: request.context.clone(),
            rollout_id: rollout_id(request),
            reverting: request.reverting.clone(),
            configs,
        })
    }

    /// The artifact each running image component deploys: what its source ran (a
    /// promotion), what this target ran before (a rollback or a re-run), else the commit's
    /// recorded build. An entry target builds a commit that is not built yet; a promoted
    /// target never builds, and is refused when there is nothing built to deploy.
    fn artifacts(
        &self,
        target: &str,
        source: Option<&str>,
        entry: bool,
        components: &[PlannedComponent],
        decisions: &mut Vec<Decision>,
    ) -> Result<BTreeMap<String, Artifact>, WorkflowError> {
        let git = self.git;
        let deployment = &self.rules.loaded.deployment.name;
        let mut out = BTreeMap::new();
        let mut missing: Vec<&PlannedComponent> = Vec::new();
        let mut to_build = Vec::new();
        for c in components
            .iter()
            .filter(|c| c.run && c.kind == crate::config::ComponentType::Nixpack)
        {
            let recorded = |t: &str| -> Result<Option<Artifact>, WorkflowError> {
                Ok(success_record(git, deployment, t, &c.name, &c.new)?
                    .filter(|r| r.image_digest.is_some())
                    .map(|r| Artifact {
                        image: r.image,
                        digest: r.image_digest,
                        from: if t == target {
                            "target".to_owned()
                        } else {
                            format!("source:{t}")
                        },
                    }))
            };
            let built = || -> Result<Option<Artifact>, WorkflowError> {
                Ok(crate::artifacts::latest(git, deployment, &c.new)?
                    .remove(&c.name)
                    .map(|b| Artifact {
                        image: b.image,
                        digest: b.digest,
                        from: "build".to_owned(),
                    }))
            };
            // A promotion deploys what its source ran; an entry target the commit's newest
            // build (a rebuild with --force is deployed there first); a promoted target
            // rolled back or re-run what it ran before.
            let found = match (source, entry) {
                (Some(s), _) => recorded(s)?,
                (None, true) => built()?,
                (None, false) => recorded(target)?,
            };
            let found = match found {
                Some(a) => Some(a),
                None if entry => recorded(target)?,
                None => built()?,
            };
            match found {
                Some(a) => {
                    out.insert(c.name.clone(), a);
                }
                None if entry => {
                    to_build.push(format!("{} ({})", c.name, short(&c.new)));
                    out.insert(
                        c.name.clone(),
                        Artifact {
                            image: None,
                            digest: None,
                            from: "to_build".to_owned(),
                        },
                    );
                }
                None => missing.push(c),
            }
        }
        let decision =
            |result, message: String| Decision::new(ARTIFACT_GATE, "artifacts", result, message);
        if !missing.is_empty() {
            let mut shas: Vec<&str> = missing.iter().map(|c| c.new.as_str()).collect();
            shas.sort_unstable();
            shas.dedup();
            let names: Vec<String> = missing
                .iter()
                .map(|c| format!("{} ({})", c.name, short(&c.new)))
                .collect();
            let mut d = decision(
                Verdict::Deny,
                format!(
                    "nothing built to deploy for {}: {target} takes artifacts, it does not build them",
                    names.join(", ")
                ),
            );
            d.fix = Some(
                shas.iter()
                    .map(|sha| format!("atmos deployment build {deployment} --git-sha {sha}"))
                    .collect::<Vec<_>>()
                    .join(", then "),
            );
            decisions.push(d);
        } else if !to_build.is_empty() {
            decisions.push(decision(
                Verdict::Allow,
                format!(
                    "{} not built yet: built once before deploying, and later targets deploy that image",
                    to_build.join(", ")
                ),
            ));
        } else if !out.is_empty() {
            let mut whence: Vec<String> = out.values().map(|a| a.from.clone()).collect();
            whence.sort();
            whence.dedup();
            decisions.push(decision(
                Verdict::Allow,
                format!(
                    "deploys the recorded image{} ({}), no rebuild",
                    if out.len() == 1 { "" } else { "s" },
                    whence
                        .iter()
                        .map(|w| match w.strip_prefix("source:") {
                            Some(t) => format!("as run in {t}"),
                            None if w == "target" => format!("as run in {target} before"),
                            None => "as built for the commit".to_owned(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(out)
    }

    /// The built-in deployers gate: only members of the target's deployer groups, and only
    /// with a proven identity when the target requires it.
    fn deployers(
        &self,
        request: &RolloutRequest,
        target: &str,
        rule: &crate::config::model::DeployerRules,
    ) -> Decision {
        let groups = &self.rules.project.settings.approvers.groups;
        let members: Vec<&String> = rule
            .from_groups
            .iter()
            .flat_map(|g| groups.get(g).into_iter().flatten())
            .collect();
        let who = &request.actor.id;
        let proof = request.proof.clone().unwrap_or(crate::identity::Proof {
            id: who.clone(),
            source: request.actor.source.clone(),
            verified: false,
            reason: Some("the identity was not checked".into()),
        });
        let decision =
            |result, message: String| Decision::new(DEPLOYER_GATE, "deployers", result, message);
        if !rule.from_groups.is_empty() && !members.contains(&who) {
            let mut d = decision(
                Verdict::Deny,
                format!(
                    "{who} (from {}) may not deploy to {target}: deployers are {}",
                    request.actor.source,
                    rule.from_groups.join(", ")
                ),
            );
            d.fix = Some(format!(
                "ask one of {} to roll out",
                members
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return d;
        }
        if rule.require_signed && !proof.verified {
            let mut d = decision(
                Verdict::Deny,
                format!(
                    "{target} requires a proven identity, and {who} is not proven: {}",
                    proof.reason.clone().unwrap_or_default()
                ),
            );
            d.fix = Some(format!(
                "sign with a key allowed for {who}: git config user.signingkey <key> with gpg.format=ssh, or --signing-key <key>"
            ));
            return d;
        }
        decision(
            Verdict::Allow,
            format!(
                "{who} may deploy to {target}{}{}",
                if rule.from_groups.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", rule.from_groups.join(", "))
                },
                if proof.verified {
                    ", identity proven by signature"
                } else {
                    ""
                }
            ),
        )
    }

    /// The built-in approval gate of a target that requires approvals.
    #[allow(clippy::type_complexity)]
    fn approvals(
        &self,
        request: &RolloutRequest,
        target_name: &str,
        components: &[PlannedComponent],
        changing: &[&PlannedComponent],
        decisions: &mut Vec<Decision>,
    ) -> Result<
        (
            Option<crate::approvals::ApprovalCheck>,
            Option<String>,
            Option<String>,
        ),
        WorkflowError,
    > {
        let git = self.git;
        let rules = &self.rules.loaded.deployment;
        let target = &rules.targets[target_name];
        let requires = target
            .promotion
            .as_ref()
            .is_some_and(|p| p.requires_approval);
        if !requires || changing.is_empty() {
            return Ok((None, None, None));
        }
        let promotion = target.promotion.clone().unwrap_or_default();
        let approval_rules = promotion.approvals.clone().unwrap_or_default();
        let method = promotion
            .approval_method
            .unwrap_or(crate::config::model::ApprovalMethod::Recorded);
        let mut commits: Vec<String> = components.iter().map(|c| c.new.clone()).collect();
        commits.sort();
        commits.dedup();
        let commit = git.newest_commit(&commits)?.unwrap_or_default();
        // An approval covers the commit approved and its history. A component deploying a
        // commit beside it (not in its history) was never shown to the approvers.
        let mut beside = Vec::new();
        for c in changing.iter().filter(|c| c.new != commit) {
            if !git.is_ancestor(&c.new, &commit)? {
                beside.push(format!("{} ({})", c.name, short(&c.new)));
            }
        }
        if !beside.is_empty() {
            let mut d = Decision::new(
                APPROVAL_GATE,
                "approvals",
                Verdict::Deny,
                format!(
                    "{} deploy{} a commit that is not in the history of {}, the commit an approval would cover",
                    beside.join(", "),
                    if beside.len() == 1 { "s" } else { "" },
                    short(&commit)
                ),
            );
            d.fix = Some(
                "roll out those components on their own (--component NAME), each commit with its own approval"
                    .into(),
            );
            decisions.push(d);
            return Ok((None, Some(commit), None));
        }
        let current: Vec<String> = components
            .iter()
            .filter_map(|c| c.current.clone())
            .collect();
        let current = git.newest_commit(&current)?;
        // The authors of what the target gains: on a first rollout, the whole history (up to
        // the cap of the gate input), not the newest commit only.
        let shas = match &current {
            Some(cur) => git.log_between(cur, &commit, 200)?,
            None => git.log(&commit, 200)?,
        };
        if shas.len() >= 200 {
            decisions.push(Decision::new(
                APPROVAL_GATE,
                "self_approval",
                Verdict::Warn,
                format!(
                    "{target_name} gains more than 200 commits: self-approval was checked against the authors of the newest 200 only (the shipped approvals policy refuses such a rollout as unknown)"
                ),
            ));
        }
        let mut authors = Vec::new();
        for sha in shas {
            let email = git.commit_info(&sha)?.author_email;
            if !authors.contains(&email) {
                authors.push(email);
            }
        }
        let (records, _) = crate::approvals::read(git, &rules.name, &commit)?;
        let check = crate::approvals::check(
            &approval_rules,
            method,
            &self.rules.project.settings.approvers,
            &records,
            &crate::approvals::CheckContext {
                deployment: &rules.name,
                target: target_name,
                commit: &commit,
                actor: &request.actor.id,
                authors: &authors,
                rollout: Some(&rollout_id(request)),
                root: &self.rules.project.root,
            },
        );
        let mut approvers_text = None;
        let (result, message) = if !check.rejected_by.is_empty() {
            let who: Vec<String> = check
                .rejected_by
                .iter()
                .map(|(w, c)| match c {
                    Some(c) => format!("{w} ({c})"),
                    None => w.clone(),
                })
                .collect();
            (Verdict::Deny, format!("rejected by {}", who.join(", ")))
        } else if check.satisfied() {
            let who: Vec<String> = check
                .counted
                .iter()
                .map(|c| {
                    format!(
                        "{} ({}{})",
                        c.approved_by,
                        c.approved_at,
                        if c.signed { ", signed" } else { "" }
                    )
                })
                .collect();
            approvers_text = Some(
                check
                    .counted
                    .iter()
                    .map(|c| c.approved_by.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            (Verdict::Allow, format!("approved by {}", who.join(", ")))
        } else {
            let groups = if check.from_groups.is_empty() {
                String::new()
            } else {
                format!(" from {}", check.from_groups.join(", "))
            };
            (
                Verdict::Pending,
                format!(
                    "{target_name} requires {} approval(s){groups} of {}; {} count{}",
                    check.required,
                    short(&commit),
                    check.counted.len(),
                    if check.counted.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({})",
                            check
                                .counted
                                .iter()
                                .map(|c| c.approved_by.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
            )
        };
        decisions.push(Decision::new(
            APPROVAL_GATE,
            "requires_approval",
            result,
            message,
        ));
        for i in &check.ignored {
            decisions.push(Decision::new(
                APPROVAL_GATE,
                "requires_approval",
                Verdict::Warn,
                format!(
                    "the approval by {} does not count: {}",
                    i.approved_by, i.reason
                ),
            ));
        }
        Ok((Some(check), Some(commit), approvers_text))
    }
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

/// The newest record of `component` deploying `sha` in `target` (success or rollback).
fn success_record(
    git: &GitRepo,
    deployment: &str,
    target: &str,
    component: &str,
    sha: &str,
) -> Result<Option<crate::contracts::TagRecord>, WorkflowError> {
    let (tags, _) = git.history_tags(deployment, Some(target))?;
    for e in tags.iter().rev().filter(|e| e.component == component) {
        if let Ok(r) = git.read_record(e, deployment)
            && r.git_sha == sha
            && r.status != crate::contracts::Status::Failure
        {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// The components asked for (all when none), by name or `type/name`.
fn select<'d>(
    d: &'d crate::config::Deployment,
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

/// Waves over the components that run; dependencies that do not run are satisfied.
fn waves(components: &[PlannedComponent]) -> Vec<Vec<String>> {
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

fn since_epoch(at: jiff::Timestamp) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(at.as_second()).unwrap_or_default())
}

/// The commands that follow the promotion path to `target`, from the first target that does
/// not have what is asked for. With `sha`, each step rolls that commit out by name.
fn promotion_denial(
    graph: &PromotionGraph,
    deployment: &str,
    target: &str,
    from: Option<&str>,
    sha: Option<&str>,
    already: &[String],
    sources: &[String],
) -> PromotionDenial {
    // Through the asked source when it is upstream, else from the first entry point.
    let required_path = from
        .and_then(|f| {
            let route = graph.route(f, target)?;
            let mut path = graph.path_to(f).unwrap_or_else(|| vec![f.to_owned()]);
            path.extend(route.into_iter().skip(1));
            Some(path)
        })
        .or_else(|| graph.path_to(target))
        .unwrap_or_else(|| vec![target.to_owned()]);
    let start = from
        .and_then(|f| required_path.iter().position(|t| t == f))
        .unwrap_or(0);
    let mut step_requests = Vec::new();
    match sha {
        Some(sha) => {
            for t in required_path[start..]
                .iter()
                .filter(|t| !already.contains(t))
            {
                step_requests.push(StepRequest {
                    target: t.clone(),
                    promote_from: None,
                    git_sha: Some(sha.to_owned()),
                });
            }
        }
        None => {
            if from.is_none_or(|f| !required_path.iter().any(|t| t == f)) {
                step_requests.push(StepRequest {
                    target: required_path[0].clone(),
                    promote_from: None,
                    git_sha: None,
                });
            }
            for pair in required_path[start..].windows(2) {
                step_requests.push(StepRequest {
                    target: pair[1].clone(),
                    promote_from: Some(pair[0].clone()),
                    git_sha: None,
                });
            }
        }
    }
    let steps = step_requests
        .iter()
        .map(|s| {
            let mut cmd = format!(
                "atmos deployment rollout {deployment} --target {}",
                s.target
            );
            if let Some(f) = &s.promote_from {
                cmd.push_str(&format!(" --promote-from {f}"));
            }
            if let Some(sha) = &s.git_sha {
                cmd.push_str(&format!(" --git-sha {}", short(sha)));
            }
            cmd
        })
        .collect();
    let mut skip_command = format!("atmos deployment rollout {deployment} --target {target}");
    if let Some(f) = from {
        skip_command.push_str(&format!(" --promote-from {f}"));
    }
    if let Some(s) = sha {
        skip_command.push_str(&format!(" --git-sha {}", short(s)));
    }
    skip_command.push_str(" --skip-promotion-check");
    PromotionDenial {
        deployment: deployment.to_owned(),
        target: target.to_owned(),
        from: from.map(str::to_owned),
        allowed_from: sources.to_vec(),
        required_path,
        steps,
        skip_command,
        step_requests,
    }
}
