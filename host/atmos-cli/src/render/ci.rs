//! What CI systems show besides the log: in GitHub Actions, a Markdown summary of the
//! rollout appended to the job's summary.

use atmos_core::executor::run::Outcome;
use atmos_core::git::short;
use atmos_core::workflow::rollout::RolloutReport;

/// In GitHub Actions, append a Markdown summary of the rollout to the job's summary.
pub fn write_step_summary(report: &RolloutReport) {
    let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY") else {
        return;
    };
    if path.is_empty() {
        return;
    }
    let p = &report.plan;
    let mut md = format!(
        "### {} {} → {}\n\n| component | from | to | result |\n|---|---|---|---|\n",
        if report.success { "✅" } else { "❌" },
        p.deployment,
        p.target
    );
    for c in &report.components {
        let result = match c.run.as_ref().map(|r| &r.outcome) {
            Some(Outcome::Succeeded) => "deployed".to_owned(),
            Some(Outcome::Failed { error, .. }) => format!("failed: {error}"),
            Some(Outcome::Interrupted) => "interrupted".to_owned(),
            Some(Outcome::Skipped { reason }) => format!("skipped: {reason}"),
            None => "no change".to_owned(),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.planned.name,
            c.planned.current.as_deref().map(short).unwrap_or("-"),
            short(&c.planned.new),
            result.replace('|', "\\|")
        ));
    }
    md.push_str("\n**Gate decisions**\n\n");
    for d in &p.decisions {
        md.push_str(&format!(
            "- `{}` {}: {}\n",
            d.source,
            d.result.as_str(),
            d.message
        ));
    }
    if let Some(id) = &report.deployment_id {
        md.push_str(&format!("\nDeployment ID: `{id}`\n"));
    }
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = f.write_all(md.as_bytes());
    }
}
