//! `atmos deployment validate <d> | --all [--check-promotions]`.

use atmos_core::exit::Exit;
use atmos_core::validate::{
    CheckStatus, DeploymentValidation, ValidationReport, validate_all, validate_one,
};

use crate::cli::{Format, ValidateArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::{Output, diagnostics};

/// Validate and report; exit 2 when anything is invalid.
pub fn run(args: &ValidateArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "validate")?;
    let project = ctx.project()?;
    let report = match (&args.deployment, args.all) {
        (Some(name), false) => validate_one(&project, name)?,
        (None, true) => validate_all(&project)?,
        _ => {
            let names: Vec<String> = project
                .deployment_files()?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            return Err(Failure::usage(
                "name one deployment to validate, or pass --all",
                Some(format!(
                    "deployments here: {}",
                    if names.is_empty() {
                        "(none)".to_owned()
                    } else {
                        names.join(", ")
                    }
                )),
            ));
        }
    };
    let text = match ctx.out.structured(&report) {
        Some(text) => text,
        None => render(
            &report,
            args.check_promotions || ctx.out.verbose > 0,
            &ctx.out,
        ),
    };
    ctx.out.print(&text)?;
    Ok(if report.valid {
        Exit::Done
    } else {
        Exit::Usage
    })
}

fn render(report: &ValidationReport, check_promotions: bool, out: &Output) -> String {
    let mut text = String::new();
    for d in &report.deployments {
        let one = render_one(d, check_promotions, out);
        if !text.is_empty() && !one.is_empty() {
            text.push('\n');
        }
        text.push_str(&one);
    }
    if report.deployments.len() != 1 {
        let invalid = report.deployments.iter().filter(|d| !d.valid).count();
        let total = report.deployments.len();
        if total == 0 {
            text.push_str("No deployment files found.\n");
        } else if !out.quiet || invalid > 0 {
            text.push_str(&format!(
                "\n{total} deployment{}: {} valid, {invalid} invalid\n",
                atmos_core::plural::s(total),
                total - invalid
            ));
        }
    }
    text
}

fn render_one(d: &DeploymentValidation, check_promotions: bool, out: &Output) -> String {
    let s = &out.out_style;
    let mut text = String::new();
    if out.quiet && d.valid {
        return text;
    }
    if !out.quiet {
        text.push_str(&format!("Validating {}...\n\n", s.bold(&d.name)));
        for c in &d.checks {
            let line = match c.status {
                CheckStatus::Passed => format!("{} {}", s.ok("✓"), c.name),
                CheckStatus::Failed => format!("{} {}", s.error("✗"), c.name),
                CheckStatus::Skipped => s.dim(&format!("- {} (skipped)", c.name)),
            };
            text.push_str(&line);
            text.push('\n');
        }
    }
    if !d.diagnostics.is_empty() {
        if !out.quiet {
            text.push('\n');
        }
        text.push_str(&diagnostics::render_all(&d.diagnostics, s));
    }
    if let Some(summary) = &d.summary
        && !out.quiet
    {
        text.push_str("\nSummary:\n");
        text.push_str(&format!("  Deployment: {}\n", d.name));
        text.push_str(&format!(
            "  Targets: {} ({})\n",
            summary.targets.len(),
            summary.targets.join(", ")
        ));
        let names: Vec<&str> = summary
            .components
            .iter()
            .map(|id| id.split_once('/').map_or(id.as_str(), |(_, n)| n))
            .collect();
        let listed = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        text.push_str(&format!("  Components: {}{listed}\n", names.len()));
        let label = if summary.promotion_paths.len() > 1 {
            "Promotion paths"
        } else {
            "Promotion path"
        };
        if summary.promotion_paths.len() <= 1 {
            let path = summary
                .promotion_paths
                .first()
                .map(|p| p.join(" → "))
                .unwrap_or_default();
            text.push_str(&format!("  {label}: {path}\n"));
        } else {
            text.push_str(&format!("  {label}:\n"));
            for p in &summary.promotion_paths {
                text.push_str(&format!("    {}\n", p.join(" → ")));
            }
        }
        if check_promotions {
            text.push_str("\nPromotions:\n");
            if summary.promotions.is_empty() {
                text.push_str("  (none: every target is an entry point)\n");
            }
            for e in &summary.promotions {
                text.push_str(&format!("  {} {} → {}\n", s.ok("✓"), e.from, e.to));
            }
        }
    }
    if !d.valid {
        let errors = d.diagnostics.iter().filter(|x| x.is_error()).count();
        text.push_str(&format!(
            "\n{} {} is invalid: {errors} error{}\n",
            s.error("✗"),
            d.file.display(),
            atmos_core::plural::s(errors)
        ));
    }
    text
}
