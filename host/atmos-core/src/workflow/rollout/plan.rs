//! Deciding a rollout: which commit each component gets, what changes, in which waves, and
//! what the built-in gates (promotion path, approvals) say. Reads git; writes nothing.

use std::collections::HashSet;

use super::model::{
    Action, Change, PlannedComponent, PromotionDenial, RolloutPlan, RolloutRequest,
};
use crate::config::UnknownTarget;
use crate::config::{LoadedDeployment, Project};
use crate::contracts::layout::rfc3339;
use crate::contracts::{Decision, Verdict};
use crate::dag::{self, Edges};
use crate::diagnostic::did_you_mean;
use crate::git::GitRepo;
use crate::promotion::PromotionGraph;
use crate::workflow::error::WorkflowError;

/// Source of the built-in promotion decision.
pub const PROMOTION_GATE: &str = "builtin/promotion-path";
/// Source of the built-in approval decision.
pub const APPROVAL_GATE: &str = "builtin/approvals";

/// Plan `request` for `loaded`: built-in gates, then every policy bound to the target,
/// evaluated against the gate input document (kept in the plan for `policy eval`).
pub fn plan(
    project: &Project,
    loaded: &LoadedDeployment,
    git: &GitRepo,
    request: &RolloutRequest,
    evaluator: &dyn crate::gates::isolation::Evaluator,
) -> Result<RolloutPlan, WorkflowError> {
    let mut plan = plan_builtin(project, loaded, git, request)?;
    let input = gate_input(git, loaded, &plan, request.force)?;
    if !plan.is_noop() {
        let json = serde_json::to_value(&input).unwrap_or_default();
        plan.decisions.extend(crate::gates::evaluate_bound(
            evaluator,
            project,
            loaded,
            &plan.target,
            &json,
        ));
        let cache = crate::gates::wasm_cache_dir(git.git_dir());
        plan.decisions.extend(crate::gates::evaluate_hooks(
            project,
            loaded,
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
/// recorded: the input document is the rollout's, with `action: approve` and the approvals
/// recorded so far; every bound policy and the hooks bound with `on: [approve]` see it.
pub fn approval_gates(
    project: &Project,
    loaded: &LoadedDeployment,
    git: &GitRepo,
    request: &RolloutRequest,
    evaluator: &dyn crate::gates::isolation::Evaluator,
) -> Result<Vec<Decision>, WorkflowError> {
    let plan = plan_builtin(project, loaded, git, request)?;
    let mut input = gate_input(git, loaded, &plan, false)?;
    input.action = crate::contracts::GateAction::Approve;
    let json = serde_json::to_value(&input).unwrap_or_default();
    let mut decisions =
        crate::gates::evaluate_bound(evaluator, project, loaded, &plan.target, &json);
    decisions.extend(crate::gates::evaluate_hooks(
        project,
        loaded,
        &plan.target,
        input.action,
        &json,
        since_epoch(request.started_at),
        Some(&crate::gates::wasm_cache_dir(git.git_dir())),
    ));
    Ok(decisions)
}

/// The gate input document of `plan`, with the approvals recorded for its commit and target.
fn gate_input(
    git: &GitRepo,
    loaded: &LoadedDeployment,
    plan: &RolloutPlan,
    force: bool,
) -> Result<crate::contracts::GateInput, WorkflowError> {
    let mut input = super::input::for_rollout(git, loaded, plan, force)?;
    if let Some(commit) = &plan.approval_commit {
        let (records, _) = crate::approvals::read(git, &loaded.deployment.name, commit)?;
        input.approvals = records
            .iter()
            .filter(|r| r.target == plan.target && r.git_sha == *commit)
            .map(|r| serde_json::to_value(r).unwrap_or_default())
            .collect();
    }
    Ok(input)
}

fn since_epoch(at: jiff::Timestamp) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(at.as_second()).unwrap_or_default())
}

/// The plan with the built-in gates only.
fn plan_builtin(
    project: &Project,
    loaded: &LoadedDeployment,
    git: &GitRepo,
    request: &RolloutRequest,
) -> Result<RolloutPlan, WorkflowError> {
    let d = &loaded.deployment;
    let target_name = request.target.as_str();
    UnknownTarget::check(d, target_name)?;
    let target = &d.targets[target_name];
    let graph = PromotionGraph::of(loaded);

    // Which components.
    let selected: Vec<_> = if request.components.is_empty() {
        d.components.iter().collect()
    } else {
        let mut out = Vec::new();
        for name in &request.components {
            let found = d
                .components
                .by_name(name)
                .or_else(|| d.components.by_id(name));
            match found {
                Some(c)
                    if !out
                        .iter()
                        .any(|o: &crate::config::ComponentRef<'_>| o.name == c.name) =>
                {
                    out.push(c)
                }
                Some(_) => {}
                None => {
                    let known: Vec<String> =
                        d.components.iter().map(|c| c.name.to_owned()).collect();
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
        out
    };

    // Which commit each component gets.
    let mut new_commits: Vec<String> = Vec::with_capacity(selected.len());
    let mut commit = None;
    if let Some(source) = &request.promote_from {
        UnknownTarget::check(d, source)?;
        if source == target_name {
            return Err(WorkflowError::SelfPromotion {
                target: target_name.to_owned(),
            });
        }
        let mut missing = Vec::new();
        for c in &selected {
            match git.deployed_commit(&d.name, source, c.name)? {
                Some(sha) => new_commits.push(sha),
                None => missing.push(c.name.to_owned()),
            }
        }
        if !missing.is_empty() {
            return Err(WorkflowError::NothingToPromote {
                deployment: d.name.clone(),
                source_target: source.clone(),
                components: missing,
            });
        }
    } else {
        let sha = git.resolve_commit(request.git_sha.as_deref().unwrap_or("HEAD"))?;
        new_commits = vec![sha.clone(); selected.len()];
        commit = Some(sha);
    }

    // What changes.
    let mut components = Vec::with_capacity(selected.len());
    for (c, new) in selected.iter().zip(new_commits) {
        let current = git.deployed_commit(&d.name, target_name, c.name)?;
        let change = match &current {
            None => Change::New,
            Some(cur) if *cur == new => Change::Unchanged,
            Some(cur) if git.is_ancestor(&new, cur)? => Change::Rollback,
            Some(_) => Change::Changed,
        };
        components.push(PlannedComponent {
            name: c.name.to_owned(),
            kind: c.kind,
            depends_on: c.component.metadata.depends_on.clone(),
            current,
            run: change != Change::Unchanged || request.force,
            new,
            change,
        });
    }

    // Waves over the components that run; dependencies that do not run are satisfied.
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
    let waves: Vec<Vec<String>> = dag::layers(&edges)
        .into_iter()
        .map(|layer| {
            layer
                .into_iter()
                .map(|id| id.split_once('/').map_or(id.clone(), |(_, n)| n.to_owned()))
                .collect()
        })
        .collect();

    let changing: Vec<&PlannedComponent> = components
        .iter()
        .filter(|c| c.change != Change::Unchanged)
        .collect();
    let action = if request.promote_from.is_some() {
        Action::Promote
    } else if !changing.is_empty() && changing.iter().all(|c| c.change == Change::Rollback) {
        Action::Rollback
    } else {
        Action::Rollout
    };

    // Built-in gates.
    let sources: Vec<String> = target
        .promotion
        .as_ref()
        .map(|p| p.sources().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut decisions = Vec::new();
    let mut denial = None;
    let decision =
        |result, message: String| Decision::new(PROMOTION_GATE, "promotion_path", result, message);
    let allowed = match (&request.promote_from, sources.is_empty()) {
        (Some(s), _) => sources.contains(s),
        // Direct rollouts: entry points take anything; promoted targets only take rollbacks.
        (None, true) => true,
        (None, false) => action == Action::Rollback || changing.is_empty(),
    };
    let path_text = |from: &str| format!("{from} → {target_name}");
    if allowed {
        let message = match (&request.promote_from, sources.is_empty()) {
            (Some(s), _) => format!("{} is an allowed promotion", path_text(s)),
            (None, true) => format!("{target_name} is an entry point"),
            (None, false) => format!("rollback of {target_name} to a commit it ran before"),
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
        let denied = promotion_denial(
            &graph,
            &d.name,
            target_name,
            request.promote_from.as_deref(),
            &sources,
        );
        let message = match &request.promote_from {
            Some(s) if sources.is_empty() => {
                format!(
                    "{target_name} is an entry point: it is not promoted from any target (asked: {s})"
                )
            }
            Some(s) => format!(
                "{} is not allowed: {target_name} is promoted from {}",
                path_text(s),
                sources.join(" or ")
            ),
            None => format!(
                "{target_name} receives code by promotion from {}; a direct rollout is only allowed as a rollback",
                sources.join(" or ")
            ),
        };
        decisions.push(decision(Verdict::Deny, message));
        denial = Some(denied);
    }
    let requires_approval = target
        .promotion
        .as_ref()
        .is_some_and(|p| p.requires_approval);
    let mut approvals = None;
    let mut approval_commit = None;
    let mut approvers_text = None;
    if requires_approval && !changing.is_empty() {
        let promotion = target.promotion.clone().unwrap_or_default();
        let rules = promotion.approvals.clone().unwrap_or_default();
        let method = promotion
            .approval_method
            .unwrap_or(crate::config::model::ApprovalMethod::Recorded);
        let mut commits: Vec<String> = components.iter().map(|c| c.new.clone()).collect();
        commits.sort();
        commits.dedup();
        let commit = git.newest_commit(&commits)?.unwrap_or_default();
        let current: Vec<String> = components
            .iter()
            .filter_map(|c| c.current.clone())
            .collect();
        let current = git.newest_commit(&current)?;
        let shas = match &current {
            Some(cur) => git.log_between(cur, &commit, 200)?,
            None => vec![commit.clone()],
        };
        let mut authors = Vec::new();
        for sha in shas {
            let email = git.commit_info(&sha)?.author_email;
            if !authors.contains(&email) {
                authors.push(email);
            }
        }
        let (records, _) = crate::approvals::read(git, &d.name, &commit)?;
        let check = crate::approvals::check(
            &rules,
            method,
            &project.settings.approvers,
            &records,
            &crate::approvals::CheckContext {
                deployment: &d.name,
                target: target_name,
                commit: &commit,
                actor: &request.actor.id,
                authors: &authors,
                root: &project.root,
            },
        );
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
                    crate::git::short(&commit),
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
        approvals = Some(check);
        approval_commit = Some(commit);
    }

    let mut metadata = request.metadata.clone();
    if let Some(who) = approvers_text {
        metadata.insert("approver".into(), who);
    }
    if request.skip_promotion_check {
        metadata.insert("skip_promotion_check".into(), "true".into());
    }
    Ok(RolloutPlan {
        deployment: d.name.clone(),
        target: target_name.to_owned(),
        action,
        source_target: request.promote_from.clone(),
        commit,
        components,
        waves,
        decisions,
        denial,
        actor: request.actor.clone(),
        build_id: request.build_id.clone(),
        metadata,
        started_at: rfc3339(request.started_at),
        skip_promotion_check: request.skip_promotion_check,
        input: None,
        approvals,
        approval_commit,
    })
}

fn promotion_denial(
    graph: &PromotionGraph,
    deployment: &str,
    target: &str,
    from: Option<&str>,
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
    let mut steps = Vec::new();
    if from.is_none_or(|f| !required_path.iter().any(|t| t == f)) {
        steps.push(format!(
            "atmos deployment rollout {deployment} --target {}",
            required_path[0]
        ));
    }
    for pair in required_path[start..].windows(2) {
        steps.push(format!(
            "atmos deployment rollout {deployment} --target {} --promote-from {}",
            pair[1], pair[0]
        ));
    }
    let mut skip_command = format!("atmos deployment rollout {deployment} --target {target}");
    if let Some(f) = from {
        skip_command.push_str(&format!(" --promote-from {f}"));
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
    }
}
