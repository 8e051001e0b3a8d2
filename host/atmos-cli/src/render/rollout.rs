//! A rollout as people read it: the plan and its gate decisions, why it is blocked and what
//! clears it, the plan-only footer, and the summary of what ran.

use atmos_core::config::model::ApprovalMethod;
use atmos_core::contracts::Verdict;
use atmos_core::executor::run::{ComponentRun, Outcome};
use atmos_core::git::short;
use atmos_core::workflow::rollout::plan::{APPROVAL_GATE, PROMOTION_GATE};
use atmos_core::workflow::rollout::{Action, Change, RolloutPlan, RolloutReport};
use atmos_core::workflow::trust::RulesOrigin;

use super::{Style, seconds};

pub fn header(plan: &RolloutPlan, plan_only: bool, s: &Style, verbose: bool) -> String {
    let mut out = String::new();
    let title = match (plan.action, &plan.source_target) {
        (Action::Promote, Some(src)) => format!(
            "Promoting {} from {src} to {}",
            plan.deployment, plan.target
        ),
        (Action::Rollback, _) => format!(
            "Rolling back {} in {} to {}",
            plan.deployment,
            plan.target,
            plan.commit.as_deref().map(short).unwrap_or("?")
        ),
        (Action::RollForward, _) => format!(
            "Rolling {} in {} forward to {}, which it ran before",
            plan.deployment,
            plan.target,
            plan.commit.as_deref().map(short).unwrap_or("?")
        ),
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
        super::table::visible(&plan.actor.id),
        plan.actor.source
    ));
    out.push_str(&rules_line(&plan.rules));
    let width = plan
        .components
        .iter()
        .map(|c| super::table::width(&c.name))
        .max()
        .unwrap_or(0);
    out.push_str(&format!(
        "\n{} {}:\n",
        if plan_only || plan.blocked().is_some() {
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
    if let Some(line) = super::canary::plan_line(plan, s) {
        out.push_str(&line);
    }
    out
}

/// Where the rules that decided came from.
pub fn rules_line(rules: &RulesOrigin) -> String {
    match &rules.commit {
        Some(commit) => format!(
            "→ Rules from {} at {} ({})\n",
            rules.source,
            short(commit),
            rules.chosen_by
        ),
        None => "→ Rules from the work tree, uncommitted (--local): a real rollout judges by the trusted ref\n".to_owned(),
    }
}

/// Everything that stands in the way, each with what clears it, under one error heading: a
/// count, then the promotion path in the design's words (only with steps the gates accept),
/// the other gate denials with their fixes, and missing approvals with the command that
/// records one.
pub fn blocked(plan: &RolloutPlan, s: &Style) -> String {
    let mut out = String::new();
    // Gate messages quote record data and what people typed: shown, never obeyed.
    let t = super::table::inert;
    if plan.blockers.is_empty() {
        return out;
    }
    let denied = plan
        .blockers
        .iter()
        .filter(|b| b.result == Verdict::Deny)
        .count();
    let n = plan.blockers.len();
    out.push_str(&format!(
        "\n{} {n} thing{} stand{} in the way{}:\n",
        if denied > 0 {
            s.error("Blocked:")
        } else {
            s.warning("Pending:")
        },
        atmos_core::plural::s(n),
        if n == 1 { "s" } else { "" },
        if denied > 0 { " (exit 3)" } else { " (exit 4)" },
    ));
    let promotion_denied = plan.denial.is_some()
        && plan
            .blockers
            .iter()
            .any(|b| b.source == PROMOTION_GATE && b.result == Verdict::Deny);
    if let (Some(d), Some(b)) = (
        &plan.denial,
        plan.blockers.iter().find(|b| b.source == PROMOTION_GATE),
    ) {
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
        if d.steps.first().is_some_and(|first| b.fixes.contains(first)) {
            out.push_str(&format!("\nTo deploy to {}:\n", d.target));
            for (i, step) in d.steps.iter().enumerate() {
                let to = step
                    .split("--target ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .unwrap_or("");
                let label = match (
                    i,
                    step.contains("--promote-from") || step.contains("--git-sha") && i > 0,
                ) {
                    (0, false) => format!("Roll out to {to} first:"),
                    (0, true) => format!("Promote to {to} first:"),
                    _ => format!("Then promote to {to}:"),
                };
                out.push_str(&format!("  {}. {label}\n     {step}\n\n", i + 1));
            }
        } else {
            out.push('\n');
        }
        if b.fixes.contains(&d.skip_command) {
            out.push_str(&format!(
                "Or skip promotion validation (not recommended; recorded in the deployment tags):\n  {}\n",
                d.skip_command
            ));
        }
        for n in &b.not_offered {
            out.push_str(&format!("{} {}\n", s.dim("Not offered:"), t(n)));
        }
    }
    let gate_denials: Vec<_> = plan
        .blockers
        .iter()
        .filter(|b| {
            b.result == Verdict::Deny && b.source != PROMOTION_GATE && b.source != APPROVAL_GATE
        })
        .collect();
    if !gate_denials.is_empty() {
        // One error heading per report: the promotion path's (the design's words) when it
        // denies too, these decisions otherwise.
        let (label, more) = if promotion_denied {
            (s.error("Also denied"), " more")
        } else {
            (format!("{} denied", s.error("Error:")), "")
        };
        out.push_str(&format!(
            "\n{label} by {}{more} gate decision{}:\n",
            gate_denials.len(),
            atmos_core::plural::s(gate_denials.len())
        ));
        for b in &gate_denials {
            let package = b
                .package
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default();
            let code = b
                .code
                .as_ref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  ✗ {}{package}: {}{code}\n",
                b.source,
                t(&b.message)
            ));
            for f in &b.fixes {
                out.push_str(&format!("      fix: {}\n", t(f)));
            }
        }
        out.push_str("Fix what the gates report, or change the policies (test them with `atmos deployment policy test`).\n");
    }
    for b in plan.blockers.iter().filter(|b| b.source == APPROVAL_GATE) {
        if b.result == Verdict::Deny {
            out.push_str(&format!("\n{} {}\n", s.error("Rejected:"), t(&b.message)));
        } else {
            out.push_str(&format!("\n{} {}\n", s.warning("Pending:"), t(&b.message)));
        }
        if plan
            .approvals
            .as_ref()
            .is_some_and(|a| a.method == ApprovalMethod::Manual)
        {
            out.push_str(&format!(
                "{} uses approval_method: manual — run this rollout from an interactive terminal to confirm it (CI cannot).\n",
                plan.target
            ));
            continue;
        }
        if let Some(check) = &plan.approvals
            && !check.eligible.is_empty()
        {
            out.push_str(&format!(
                "May still approve: {}\n",
                check.eligible.join(", ")
            ));
        }
        if let Some(check) = &plan.approvals {
            for e in &check.excluded {
                out.push_str(&format!(
                    "{} {} ({})\n",
                    s.dim("Not eligible:"),
                    t(&e.who),
                    t(&e.why)
                ));
            }
        }
        for n in &b.not_offered {
            out.push_str(&format!("{} {}\n", s.dim("Not offered:"), t(n)));
        }
        if let Some(approve) = b.fixes.first() {
            out.push_str(&format!("\nTo approve:\n  {approve}\n"));
            if b.result == Verdict::Pending {
                out.push_str("\nThen run this rollout again, or wait for approvals with --wait-for-approval --timeout 1h.\n");
            }
        }
    }
    // Policies and hooks that ask to wait (a `pending` rule), beside the approval gate.
    let waits: Vec<_> = plan
        .blockers
        .iter()
        .filter(|b| b.result == Verdict::Pending && b.source != APPROVAL_GATE)
        .collect();
    if !waits.is_empty() {
        out.push_str(&format!(
            "\n{} {} gate decision{} ask{} to wait:\n",
            s.warning("Pending:"),
            waits.len(),
            atmos_core::plural::s(waits.len()),
            if waits.len() == 1 { "s" } else { "" }
        ));
        for b in waits {
            let code = b
                .code
                .as_ref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            out.push_str(&format!("  … {}: {}{code}\n", b.source, t(&b.message)));
            for f in &b.fixes {
                out.push_str(&format!("      fix: {}\n", t(f)));
            }
        }
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
        let title = report
            .canary
            .as_ref()
            .and_then(super::canary::title)
            .unwrap_or_else(|| "Deployment complete".to_owned());
        out.push_str(&format!("\n{} {title} ({duration})\n", s.ok("✓")));
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
        use atmos_core::workflow::rollout::model::RollbackResult;
        // Applied, not verified, and not rolled back: the target may run the failed apply.
        let rolled_back: Vec<&str> = report
            .automatic_rollbacks
            .iter()
            .filter(|r| r.result == RollbackResult::RolledBack)
            .flat_map(|r| r.components.iter().map(String::as_str))
            .collect();
        let unverified: Vec<&str> = report
            .components
            .iter()
            .filter(|c| {
                c.run
                    .as_ref()
                    .and_then(|r| r.verification.as_ref())
                    .is_some_and(|v| !v.passed)
            })
            .map(|c| c.planned.name.as_str())
            .filter(|n| !rolled_back.contains(n))
            .collect();
        out.push_str("Failed components have a `failure` tag and their state ref did not move");
        if unverified.is_empty() {
            out.push_str(".\n");
        } else {
            out.push_str(&format!(
                "; {} applied but failed verification, so the target may run what the apply left.\n",
                unverified.join(", ")
            ));
        }
    }
    out.push_str(&super::canary::progress(report, s));
    let rollback_kind = if report
        .canary
        .as_ref()
        .is_some_and(|c| c.aborted_at.is_some())
    {
        "Canary abort"
    } else {
        "Automatic rollback"
    };
    for r in &report.automatic_rollbacks {
        use atmos_core::workflow::rollout::model::RollbackResult;
        let mark = match r.result {
            RollbackResult::RolledBack => s.ok("↺"),
            _ => s.error("✗"),
        };
        out.push_str(&format!("{mark} {rollback_kind}: {}\n", r.message));
        for b in &r.blockers {
            out.push_str(&format!("    {}: {}\n", b.source, b.message));
            for fix in &b.fixes {
                out.push_str(&format!("      fix: {fix}\n"));
            }
        }
        if let Some(tag) = &r.deployment_id {
            out.push_str(&format!("  recorded as {tag}\n"));
        }
    }
    if let Some(id) = &report.deployment_id {
        out.push_str(&format!("\nDeployment ID: {id}\n"));
    }
    out.push_str(&format!("Logs: {log_dir}\n"));
    out
}

/// One line on an automatic rollback about to run.
pub fn rollback_summary(plan: &RolloutPlan) -> String {
    let names: Vec<String> = plan
        .components
        .iter()
        .map(|c| format!("{} → {}", c.name, atmos_core::git::short(&c.new)))
        .collect();
    match &plan.reverting {
        Some(r) => format!(
            "verification of {} failed (on_failure: rollback): deploying again what {} ran before: {}",
            atmos_core::git::short(&r.commit),
            plan.target,
            names.join(", ")
        ),
        None => names.join(", "),
    }
}

fn change_label(change: Change) -> &'static str {
    match change {
        Change::New => "(new)",
        Change::Changed => "(changed)",
        Change::Unchanged => "(no change)",
        Change::Rollback => "(rollback)",
        Change::RollForward => "(roll-forward)",
    }
}
