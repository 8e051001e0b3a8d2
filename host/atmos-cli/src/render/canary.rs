//! How a canary reads: the step a plan enters, and what a run of steps did and where it
//! stopped.

use atmos_core::git::short;
use atmos_core::workflow::rollout::model::{CanaryPlan, pause};
use atmos_core::workflow::rollout::model::{CanaryProgress, RolloutPlan, RolloutReport};

use super::style::Style;

/// `10% → 50% → 100%`, with the step entered in bold.
fn ladder(c: &CanaryPlan, s: &Style) -> String {
    c.strategy
        .steps
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let text = format!("{w}%");
            if u32::try_from(i + 1).ok() == Some(c.step) {
                s.bold(&text)
            } else {
                text
            }
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The line under a plan's header: which step it enters, for which components.
pub fn plan_line(plan: &RolloutPlan, s: &Style) -> Option<String> {
    let c = plan.canary.as_ref()?;
    Some(if c.aborting {
        format!(
            "Canary abort at step {} of {}: {} back to what ran before, at weight 0 (ATMOS_CANARY_WEIGHT=0)\n",
            c.step,
            c.steps,
            c.components.join(", ")
        )
    } else {
        format!(
            "Canary step {} of {}: {} at {}% ({}){}\n",
            c.step,
            c.steps,
            c.components.join(", "),
            c.weight,
            ladder(c, s),
            if c.is_last() {
                "; the state refs move at this step"
            } else {
                "; the state refs move only at 100%"
            }
        )
    })
}

/// The first line of an abort about to run.
pub fn abort_summary(plan: &RolloutPlan) -> String {
    let names: Vec<String> = plan
        .components
        .iter()
        .map(|c| format!("{} → {}", c.name, short(&c.new)))
        .collect();
    format!(
        "taking {} back to what {} ran before: {}",
        plan.reverting.as_ref().map_or_else(
            || "the canary".to_owned(),
            |r| format!("the canary of {}", short(&r.commit))
        ),
        plan.target,
        names.join(", ")
    )
}

/// The title line of a report whose canary stopped between steps, or was aborted.
pub fn title(progress: &CanaryProgress) -> Option<String> {
    if let Some(step) = progress.aborted_at {
        return Some(format!(
            "Canary aborted at step {step} of {}: what ran before runs again",
            progress.steps
        ));
    }
    let p = progress.paused.as_ref()?;
    Some(format!(
        "Canary step {} of {} done",
        p.after_step, progress.steps
    ))
}

/// What the steps did, and how to go on.
pub fn progress(report: &RolloutReport, s: &Style) -> String {
    let Some(progress) = &report.canary else {
        return String::new();
    };
    let mut out = String::new();
    for step in &progress.ran {
        let analysis = match &step.analysis {
            Some(a) if a.passed => format!(
                ", analysis passed ({} attempt{})",
                a.attempts,
                atmos_core::plural::s(a.attempts)
            ),
            Some(a) => format!(
                ", analysis failed ({} attempt{})",
                a.attempts,
                atmos_core::plural::s(a.attempts)
            ),
            None => String::new(),
        };
        out.push_str(&format!(
            "  {} step {}/{} at {}%{analysis}{}\n",
            if step.success {
                s.ok("✓")
            } else {
                s.error("✗")
            },
            step.step,
            progress.steps,
            step.weight,
            step.deployment_id
                .as_deref()
                .map(|id| format!(" — {id}"))
                .unwrap_or_default()
        ));
    }
    let plan = &report.plan;
    let go_on = format!(
        "atmos deployment rollout {} --target {}",
        plan.deployment, plan.target
    );
    if let Some(p) = &progress.paused {
        let why = match p.reason.as_str() {
            pause::UNTIL_STEP => "as --until-step asked".to_owned(),
            pause::PENDING => "the next step waits for approval".to_owned(),
            _ => "a gate refuses the next step".to_owned(),
        };
        out.push_str(&format!(
            "{} Canary paused after step {} of {} ({why}); the lock is released and the state refs still name what ran before.\n",
            s.warning("⏸"),
            p.after_step,
            progress.steps
        ));
        for b in &p.blockers {
            out.push_str(&format!("    {}: {}\n", b.source, b.message));
            for fix in &b.fixes {
                out.push_str(&format!("      fix: {fix}\n"));
            }
        }
        out.push_str(&format!(
            "  Next step: {go_on} --continue   (from any clone)\n  Abort:     {go_on} --abort\n"
        ));
    } else if let Some(step) = progress.aborted_at
        && !report.success
    {
        out.push_str(&format!(
            "{} Canary aborted at step {step} of {}\n",
            s.error("✗"),
            progress.steps
        ));
    } else if report.success && progress.aborted_at.is_none() {
        out.push_str(&format!(
            "{} Canary complete: every step passed; the state refs name the new commit\n",
            s.ok("✓")
        ));
    }
    out
}
