//! `atmos deployment build <d> [--target t] [--component c]… [--plan] [--skip-push] [--force]
//! [--vulnerabilities FILE]`.

use atmos_core::config::merge::parse_overrides;
use atmos_core::executor::run::{Event as ExecutorEvent, Outcome};
use atmos_core::exit::Exit;
use atmos_core::identity;
use atmos_core::workflow::build::{BuildOutcome, BuildPlan, BuildReport, BuildRequest, build};
use atmos_core::workflow::{Event, Observer, store};

use crate::cli::{BuildArgs, Format};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::live::Live;
use crate::render::{Style, seconds};

/// Build.
pub fn run(args: &BuildArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "build")?;
    // The deployment is checked here, as it is now; the build reads it as of the commit.
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let remote = store::open(
        &project,
        args.store.remote.as_deref(),
        args.store.offline,
        Some(&loaded),
    )?;
    let git = ctx.git(&project)?;
    let env = identity::process_env;
    let request = BuildRequest {
        deployment: args.deployment.clone(),
        target: args.target.clone(),
        git_sha: args.git_sha.clone(),
        components: args.components.clone(),
        plan_only: args.plan,
        skip_push: args.skip_push,
        force: args.force,
        vulnerabilities: args.vulnerabilities.clone(),
        parallelism: args.parallelism.map_or(4, usize::from),
        context: parse_overrides(&args.context)
            .map_err(|e| Failure::usage(format!("invalid --context: {e}"), None))?,
        actor: identity::actor(&env, git.config_string("user.email")).id,
        build_id: identity::build_id(&env),
        signing_key: ctx.signing_key(args.signing_key.as_deref(), &git),
    };
    // Only the builders' output lines are shown live; the results follow as a summary.
    let live = Live::new(&ctx.out, args.plan);
    let observer = OutputLines(&live);
    let outcome = build(&project, remote.as_ref(), &request, &observer)?;
    match outcome {
        BuildOutcome::Planned(plan) => {
            live.text(&header(&plan));
            for item in &plan.items {
                live.text(&format!("  {}:\n", item.name));
                for line in &item.command_lines {
                    live.text(&format!("    $ {line}\n"));
                }
            }
            live.text("\nPlan only: nothing was built or recorded.\n");
            ctx.print_document(&plan)?;
            Ok(Exit::Done)
        }
        BuildOutcome::Finished(report) => {
            for w in &report.warnings {
                ctx.out.warn(w);
            }
            live.text(&summary(&report, &live.style, args.skip_push));
            ctx.print_document(report.as_ref())?;
            Ok(if report.success {
                Exit::Done
            } else {
                Exit::Failed
            })
        }
    }
}

/// Shows the builders' output lines as they come.
struct OutputLines<'a>(&'a Live<'a>);

impl Observer for OutputLines<'_> {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::BuildPlanned(plan) => self.0.text(&header(plan)),
            Event::Executor(ExecutorEvent::Output {
                component, line, ..
            }) => self.0.text(&format!("  {component} │ {line}\n")),
            _ => {}
        }
    }
}

fn header(plan: &BuildPlan) -> String {
    format!(
        "Building {} for target {} (commit {})...\n\n",
        plan.deployment,
        plan.target,
        atmos_core::git::short(&plan.commit)
    )
}

fn summary(report: &BuildReport, s: &Style, skip_push: bool) -> String {
    let mut out = String::new();
    for b in &report.already_built {
        out.push_str(&format!(
            "{} {:<10} already built for {}: {}\n",
            s.dim("="),
            b.component,
            atmos_core::git::short(&b.git_sha),
            b.pinned().unwrap_or_else(|| format!("by {}", b.built_by))
        ));
    }
    if report.built.is_empty() && report.sbom.is_none() && report.success {
        out.push_str(&format!(
            "\nNothing to build: every selected component of {} is built for commit {} (use --force to build again).\n",
            report.plan.deployment,
            atmos_core::git::short(&report.plan.commit)
        ));
        return out;
    }
    for b in &report.built {
        out.push_str(&match &b.outcome {
            Outcome::Succeeded => format!(
                "{} {:<10} {}{} ({})\n",
                s.ok("✓"),
                b.component,
                match (&b.digest, &b.image) {
                    (Some(d), _) => format!("Built {}", atmos_core::git::prefix(d, 19)),
                    (None, Some(i)) if b.pushed => format!(
                        "Built {i} (pushed, but the engine named no registry digest: rollouts deploy it by tag)"
                    ),
                    (None, Some(i)) => {
                        format!("Built {i} (not pushed: no registry digest exists)")
                    }
                    (None, None) => "Built".to_owned(),
                },
                match (b.provenance, &b.referrer) {
                    (true, Some(r)) => format!(
                        ", provenance signed (attached as {})",
                        atmos_core::git::prefix(r, 19)
                    ),
                    (true, None) => ", provenance signed".to_owned(),
                    (false, _) => String::new(),
                },
                seconds(b.duration_ms)
            ),
            Outcome::Failed { error, .. } => {
                format!("{} {:<10} failed: {error}\n", s.error("✗"), b.component)
            }
            other => format!("{} {:<10} {other:?}\n", s.error("✗"), b.component),
        });
    }
    let Some(generated) = &report.sbom else {
        out.push_str("\nBuild failed: no SBOM was recorded.\n");
        return out;
    };
    let deps: usize = generated.packages.iter().map(|(_, n)| n).sum();
    out.push_str(&format!(
        "\nGenerated SBOM: {} components, {deps} dependencies{}\nAttached SBOM to commit {} ({})\n",
        generated.packages.len(),
        match generated.vulnerabilities {
            Some(n) => format!(", {n} vulnerabilities from the scanner report"),
            None => ", not scanned for vulnerabilities".to_owned(),
        },
        &report.plan.commit[..report.plan.commit.len().min(9)],
        report.sbom_note.as_deref().unwrap_or_default()
    ));
    out.push_str(&format!("Recorded the builds in {}\n", report.builds_note));
    let pushed: Vec<&str> = report
        .plan
        .items
        .iter()
        .filter_map(|i| i.image.as_deref())
        .collect();
    if !pushed.is_empty() {
        out.push_str(&format!(
            "{} {}\n",
            if skip_push {
                "Images built (not pushed):"
            } else {
                "Images pushed:"
            },
            pushed.join(", ")
        ));
    }
    out
}
