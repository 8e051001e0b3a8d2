//! Everything that stands in the way of a rollout, as one list, each with what clears it. A
//! suggested command is offered only after the same gates were asked about it: a hint never
//! proposes `--skip-promotion-check` where a policy forbids it, or "roll out to qa first" where
//! that rollout is itself denied; instead it says why it is not offered.

use super::model::{Blocker, RolloutPlan, RolloutRequest};
use super::plan::{APPROVAL_GATE, PROMOTION_GATE, Planner};
use crate::config::model::ApprovalMethod;
use crate::contracts::{Decision, Verdict};

/// The blockers of `plan`, in the order of its decisions.
pub(super) fn collect(
    planner: &Planner<'_>,
    request: &RolloutRequest,
    plan: &RolloutPlan,
) -> Vec<Blocker> {
    let mut out = Vec::new();
    for d in &plan.decisions {
        if !matches!(d.result, Verdict::Deny | Verdict::Pending) {
            continue;
        }
        let mut b = Blocker {
            source: d.source.clone(),
            package: d.package.clone(),
            code: d.code.clone(),
            result: d.result,
            message: d.message.clone(),
            fixes: Vec::new(),
            not_offered: Vec::new(),
        };
        match d.source.as_str() {
            PROMOTION_GATE => promotion(planner, request, plan, &mut b),
            APPROVAL_GATE => approvals(plan, d, &mut b),
            _ => b.fixes.extend(d.fix.clone()),
        }
        out.push(b);
    }
    out
}

/// Every deny message of a plan, for saying why a command is not offered.
fn denials(plan: &RolloutPlan) -> String {
    plan.decisions
        .iter()
        .filter(|d| d.result == Verdict::Deny)
        .map(|d| d.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

fn promotion(planner: &Planner<'_>, request: &RolloutRequest, plan: &RolloutPlan, b: &mut Blocker) {
    let Some(denial) = &plan.denial else { return };
    // The first step is checked now; the later ones depend on it having run.
    if let Some((first, rest)) = denial.step_requests.split_first() {
        let step = RolloutRequest {
            target: first.target.clone(),
            promote_from: first.promote_from.clone(),
            git_sha: first.git_sha.clone(),
            skip_promotion_check: false,
            ..request.clone()
        };
        match planner.gated(&step) {
            Ok(p) if p.blocked() == Some(Verdict::Deny) => b.not_offered.push(format!(
                "`{}` is refused too: {}",
                denial.steps[0],
                denials(&p)
            )),
            Ok(_) => {
                b.fixes.push(denial.steps[0].clone());
                for i in 0..rest.len() {
                    b.fixes.push(denial.steps[i + 1].clone());
                }
            }
            Err(e) => b
                .not_offered
                .push(format!("`{}` cannot be planned: {e}", denial.steps[0])),
        }
    }
    // The escape hatch, only where the policies allow it.
    let skip = RolloutRequest {
        skip_promotion_check: true,
        ..request.clone()
    };
    // Only what the skip itself brings counts: denials the rollout has anyway are listed as
    // blockers of their own.
    if let Ok(p) = planner.gated(&skip) {
        let new: Vec<String> = p
            .decisions
            .iter()
            .filter(|d| d.result == Verdict::Deny)
            .filter(|d| {
                !plan
                    .decisions
                    .iter()
                    .any(|o| o.result == Verdict::Deny && o.message == d.message)
            })
            .map(|d| d.message.clone())
            .collect();
        if new.is_empty() {
            b.fixes.push(denial.skip_command.clone());
        } else {
            b.not_offered.push(format!(
                "--skip-promotion-check is refused here: {}",
                new.join("; ")
            ));
        }
    }
}

fn approvals(plan: &RolloutPlan, d: &Decision, b: &mut Blocker) {
    let (Some(check), Some(commit)) = (&plan.approvals, &plan.approval_commit) else {
        return;
    };
    let from = plan
        .source_target
        .as_ref()
        .map(|s| format!(" --promote-from {s}"))
        .unwrap_or_default();
    let approve = format!(
        "atmos deployment approve {} --target {}{from} --git-sha {commit}",
        plan.deployment, plan.target,
    );
    if d.result == Verdict::Deny {
        b.fixes.push(approve);
        b.not_offered
            .push("a rejection stands until the same person approves".into());
        return;
    }
    if check.method == ApprovalMethod::Manual {
        b.fixes.push(format!(
            "{} uses approval_method: manual: run this rollout from an interactive terminal to confirm it (CI cannot)",
            plan.target
        ));
        return;
    }
    if check.eligible.is_empty() && !check.from_groups.is_empty() {
        b.not_offered.push(format!(
            "nobody in {} can still approve (check approvers.groups in atmos.yaml)",
            check.from_groups.join(", ")
        ));
    }
    b.fixes.push(approve);
    b.fixes
        .push("wait for approvals: add --wait-for-approval --timeout 1h".into());
}
