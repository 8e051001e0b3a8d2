//! Everything that stands in the way of a rollout, as one list, each with what clears it. A
//! suggested command is offered only after the same gates were asked about it: a hint never
//! proposes `--skip-promotion-check` where a policy forbids it, or "roll out to qa first" where
//! that rollout is itself denied; instead it says why it is not offered.

use super::model::{APPROVAL_GATE, PROMOTION_GATE};
use super::model::{Blocker, RolloutPlan, RolloutRequest};
use super::plan::Planner;
use crate::config::model::ApprovalMethod;
use crate::contracts::{Decision, Verdict};
use crate::workflow::error::WorkflowError;

impl Planner<'_> {
    /// Plan `request`: built-in gates, then every policy and hook bound to the target,
    /// evaluated against the gate input document; then every blocker with a checked fix.
    pub fn plan(&self, request: &RolloutRequest) -> Result<RolloutPlan, WorkflowError> {
        let mut plan = self.gated(request)?;
        plan.blockers = collect(self, request, &plan);
        Ok(plan)
    }
}

/// The blockers of `plan`, in the order of its decisions.
fn collect(planner: &Planner<'_>, request: &RolloutRequest, plan: &RolloutPlan) -> Vec<Blocker> {
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
            APPROVAL_GATE => approvals(planner, request, plan, d, &mut b),
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
            source: first.source.clone(),
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
    // Offered only when the gates would then let it through; otherwise say what would
    // still refuse it.
    if let Ok(p) = planner.gated(&skip) {
        if p.blocked() == Some(Verdict::Deny) {
            b.not_offered.push(format!(
                "--skip-promotion-check would still be refused: {}",
                denials(&p)
            ));
        } else {
            b.fixes.push(denial.skip_command.clone());
        }
    }
}

fn approvals(
    planner: &Planner<'_>,
    request: &RolloutRequest,
    plan: &RolloutPlan,
    d: &Decision,
    b: &mut Blocker,
) {
    let (Some(check), Some(commit)) = (&plan.approvals, &plan.approval_commit) else {
        // Refused before any approval is counted (commits beside the approved one): its
        // own fix.
        if let Some(fix) = &d.fix {
            b.fixes.push(fix.clone());
        }
        return;
    };
    let approve = format!(
        "atmos deployment approve {} --target {} --git-sha {commit}",
        plan.deployment, plan.target,
    );
    // An approval the gates would refuse is not suggested.
    if let Ok(decisions) = planner.approval_gates(request) {
        let refusals: Vec<&str> = decisions
            .iter()
            .filter(|d| d.result == Verdict::Deny)
            .map(|d| d.message.as_str())
            .collect();
        if !refusals.is_empty() {
            b.not_offered.push(format!(
                "`{approve}` would be refused: {}",
                refusals.join("; ")
            ));
            return;
        }
    }
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
