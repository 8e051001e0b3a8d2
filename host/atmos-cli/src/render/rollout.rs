//! A rollout as people read it: the plan and its gate decisions, why it is blocked and what
//! clears it, the plan-only footer, and the summary of what ran.

use atmos_core::config::model::ApprovalMethod;
use atmos_core::contracts::Verdict;
use atmos_core::executor::run::{ComponentRun, Outcome};
use atmos_core::git::short;
use atmos_core::workflow::rollout::{Action, Change, RolloutPlan, RolloutReport};

use super::{Style, seconds};

pub fn header(plan: &RolloutPlan, plan_only: bool, s: &Style, verbose: bool) -> String {
    let mut out = String::new();
    let title = match (plan.action, &plan.source_target) {
        (Action::Promote, Some(src)) => format!(
            "Promoting {} from {src} to {}",
            plan.deployment, plan.target
        ),
        (Action::Rollback, _) => format!("Rolling back {} in {}", plan.deployment, plan.target),
        _ => format!(
            "Deploying {} to {} (commit {})",
            plan.deployment,
            plan.target,
            plan.commit.as_deref().map(short).unwrap_or("?")
        ),
    };
    out.push_str(&s.bold(&format!(
        "{title}{}...",
        if plan_only {
            " — plan only, nothing will change"
        } else {
            ""
        }
    )));
    out.push_str("\n\n");
    out.push_str(&super::decisions::lines(&plan.decisions, s, verbose));
    out.push_str(&format!(
        "→ Deployed by {} (from {})\n",
        plan.actor.id, plan.actor.source
    ));
    let width = plan
        .components
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    out.push_str(&format!(
        "\n{} {}:\n",
        if plan_only {
            "Would deploy to"
        } else {
            "Deploying to"
        },
        plan.target
    ));
    for c in &plan.components {
        let from = c.current.as_deref().map(short).unwrap_or("(none) ");
        let forced = if c.change == Change::Unchanged && c.run {
            " — forced"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {:<width$}  {from} → {} {}{forced}\n",
            c.name,
            short(&c.new),
            change_label(c.change)
        ));
    }
    out
}

pub fn blocked(plan: &RolloutPlan, s: &Style) -> String {
    let mut out = super::decisions::denials(&plan.decisions, s);
    if let Some(d) = &plan.denial {
        let headline = match &d.from {
            Some(from) => format!("Cannot promote directly from {from} to {}", d.target),
            None => format!(
                "Cannot deploy directly to {}: it receives code by promotion",
                d.target
            ),
        };
        out.push_str(&format!("\n{} {headline}\n", s.error("Error:")));
        out.push_str(&format!(
            "Promotion path requires: {}\n",
            d.required_path.join(" → ")
        ));
        out.push_str(&format!("\nTo deploy to {}:\n", d.target));
        for (i, step) in d.steps.iter().enumerate() {
            let to = step
                .split("--target ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("");
            let label = match (i, step.contains("--promote-from"), i + 1 == d.steps.len()) {
                (0, false, _) => format!("Roll out to {to} first:"),
                (0, true, false) => format!("Promote to {to} first:"),
                (_, true, true) => format!("Then promote to {to}:"),
                _ => format!("Then promote to {to}:"),
            };
            out.push_str(&format!("  {}. {label}\n     {step}\n\n", i + 1));
        }
        out.push_str(&format!(
            "Or skip promotion validation (not recommended; recorded in the deployment tags):\n  {}\n",
            d.skip_command
        ));
        return out;
    }
    if plan.blocked() == Some(Verdict::Deny) {
        return out;
    }
    for d in plan
        .decisions
        .iter()
        .filter(|d| d.result == Verdict::Pending)
    {
        out.push_str(&format!("\n{} {}\n", s.warning("Pending:"), d.message));
    }
    if let (Some(check), Some(commit)) = (&plan.approvals, &plan.approval_commit) {
        if check.method == ApprovalMethod::Manual {
            out.push_str(&format!(
                "{} uses approval_method: manual — run this rollout from an interactive terminal to confirm it (CI cannot).\n",
                plan.target
            ));
            return out;
        }
        if !check.eligible.is_empty() {
            out.push_str(&format!(
                "May still approve: {}\n",
                check.eligible.join(", ")
            ));
        } else if !check.from_groups.is_empty() {
            out.push_str(&format!(
                "Nobody in {} can still approve (check approvers.groups in atmos.yaml).\n",
                check.from_groups.join(", ")
            ));
        }
        let from = plan
            .source_target
            .as_ref()
            .map(|s| format!(" --promote-from {s}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\nTo approve:\n  atmos deployment approve {} --target {}{from} --git-sha {commit}\n\nThen run this rollout again, or wait for approvals with --wait-for-approval --timeout 1h.\n",
            plan.deployment, plan.target
        ));
    }
    out
}

pub fn plan_footer(plan: &RolloutPlan, runs: &[ComponentRun], s: &Style) -> String {
    let to_change = plan.components.iter().filter(|c| c.run).count();
    let unchanged = plan.components.len() - to_change;
    let failed = runs
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .count();
    let mut out = format!(
        "\n{} {to_change} to deploy, {unchanged} unchanged; nothing was changed",
        s.bold("Plan:")
    );
    if failed > 0 {
        out.push_str(&format!("; {} plan command(s) failed", failed));
    }
    out.push('\n');
    if plan.blocked().is_some() {
        out.push_str(&blocked(plan, s));
    }
    out
}

pub fn summary(report: &RolloutReport, s: &Style, log_dir: &str) -> String {
    let mut out = String::new();
    let duration = seconds(report.duration_ms);
    if report.success {
        out.push_str(&format!(
            "\n{} Deployment complete ({duration})\n",
            s.ok("✓")
        ));
    } else {
        let count = |f: fn(&Outcome) -> bool| {
            report
                .components
                .iter()
                .filter(|c| c.run.as_ref().is_some_and(|r| f(&r.outcome)))
                .count()
        };
        let failed = count(|o| matches!(o, Outcome::Failed { .. } | Outcome::Interrupted));
        let skipped = count(|o| matches!(o, Outcome::Skipped { .. }));
        let ok = count(|o| *o == Outcome::Succeeded);
        let what = if report.interrupted {
            "Deployment interrupted"
        } else {
            "Deployment failed"
        };
        out.push_str(&format!(
            "\n{} {what} ({duration}): {ok} succeeded, {failed} failed, {skipped} skipped\n",
            s.error("✗")
        ));
        for c in &report.components {
            let Some(run) = &c.run else { continue };
            match &run.outcome {
                Outcome::Failed { error, .. } => out.push_str(&format!(
                    "  ✗ {}: {error}{}\n",
                    c.planned.name,
                    run.log
                        .as_ref()
                        .map(|l| format!(" (log: {})", l.display()))
                        .unwrap_or_default()
                )),
                Outcome::Interrupted => {
                    out.push_str(&format!("  ✗ {}: interrupted\n", c.planned.name))
                }
                Outcome::Skipped { reason } => {
                    out.push_str(&format!("  - {}: skipped ({reason})\n", c.planned.name))
                }
                Outcome::Succeeded => {}
            }
        }
        out.push_str("Failed components keep their previous commit; each has a `failure` tag.\n");
    }
    if let Some(id) = &report.deployment_id {
        out.push_str(&format!("\nDeployment ID: {id}\n"));
    }
    out.push_str(&format!("Logs: {log_dir}\n"));
    out
}

fn change_label(change: Change) -> &'static str {
    match change {
        Change::New => "(new)",
        Change::Changed => "(changed)",
        Change::Unchanged => "(no change)",
        Change::Rollback => "(rollback)",
    }
}
