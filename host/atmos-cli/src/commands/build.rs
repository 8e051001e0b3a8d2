//! `atmos deployment build <d> [--target t] [--component c]… [--plan] [--skip-push] [--force]
//! [--vulnerabilities FILE]`.

use std::sync::Arc;

use atmos_core::build;
use atmos_core::exit::Exit;
use atmos_core::git::short;
use atmos_core::identity::process_env;
use atmos_core::rollout::Outcome;
use atmos_core::rollout::execute::Events;
use atmos_core::sbom::{self, SbomError};
use serde::Serialize;

use super::rollout::rollout_failure;
use super::{Context, Failure, git_failure};
use crate::cli::{BuildArgs, Format};

#[derive(Serialize)]
struct BuildReport<'a> {
    plan: &'a build::BuildPlan,
    built: Vec<Built>,
    sbom: Option<sbom::Generated>,
    sbom_note: Option<String>,
}

#[derive(Serialize)]
struct Built {
    component: String,
    #[serde(flatten)]
    outcome: Outcome,
    image: Option<String>,
    digest: Option<String>,
    duration_ms: u64,
}

/// Build.
pub fn run(args: &BuildArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "build")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let target = args
        .target
        .clone()
        .or_else(|| loaded.deployment.context.default_target.clone())
        .ok_or_else(|| Failure::usage("`build` needs --target", None))?;
    let remote = super::store::open(&project, args.remote.as_deref(), args.offline)?;
    let git = ctx.require_git(&project)?;
    let env = process_env;
    let plan = build::plan(
        &loaded,
        &project.root,
        &git,
        &target,
        &args.components,
        args.skip_push,
        &env,
    )
    .map_err(rollout_failure)?;
    let out = &ctx.out;
    let s = &out.out_style;
    let structured = out.format != Format::Table;
    let say = |text: &str| {
        if structured || out.quiet {
            out.eprint(text);
        } else {
            let _ = out.print(text);
        }
    };
    say(&format!(
        "Building {} for target {} (commit {})...\n\n",
        plan.deployment,
        plan.target,
        short(&plan.commit)
    ));
    if args.plan {
        for item in &plan.items {
            say(&format!("  {}:\n", item.name));
            for line in &item.command_lines {
                say(&format!("    $ {line}\n"));
            }
        }
        say("\nPlan only: nothing was built or recorded.\n");
        if let Some(text) = out.structured(&plan) {
            out.print(&text)?;
        }
        return Ok(Exit::Done);
    }
    if !args.force
        && sbom::load(&git, &plan.deployment, &plan.commit)
            .map_err(git_failure)?
            .is_some()
    {
        return Err(Failure::usage(
            format!(
                "commit {} already has an SBOM for {}",
                short(&plan.commit),
                plan.deployment
            ),
            Some("pass --force to build again and replace it".into()),
        ));
    }
    let log_dir = git
        .git_dir()
        .join("atmos/logs")
        .join(&plan.deployment)
        .join("build")
        .join(&plan.commit[..12]);
    let prepared = build::prepare(&plan, &loaded, log_dir).map_err(rollout_failure)?;
    let quiet = out.quiet;
    let to_stderr = structured;
    let sink: Events = Arc::new(move |event| {
        if quiet {
            return;
        }
        if let atmos_core::rollout::execute::Event::Output {
            component, line, ..
        } = event
        {
            let text = format!("  {component} │ {line}\n");
            use std::io::Write;
            if to_stderr {
                let _ = std::io::stderr().write_all(text.as_bytes());
            } else {
                let _ = std::io::stdout().write_all(text.as_bytes());
            }
        }
    });
    let runs = super::runner::run_waves(&prepared, 4, sink)?;
    let mut built = Vec::new();
    let mut digests = Vec::new();
    let mut failed = false;
    for item in &plan.items {
        let run = runs.iter().find(|r| r.name == item.name);
        let outcome = run.map_or(
            Outcome::Skipped {
                reason: "not run".into(),
            },
            |r| r.outcome.clone(),
        );
        let digest = match (&outcome, &item.inspect) {
            (Outcome::Succeeded, Some(inspect)) => build::digest(inspect),
            _ => None,
        };
        failed |= outcome != Outcome::Succeeded;
        let duration = run.map_or(0, |r| r.duration_ms);
        let line = match &outcome {
            Outcome::Succeeded => format!(
                "{} {:<10} {} ({:.1}s)\n",
                s.ok("✓"),
                item.name,
                match (&digest, &item.image) {
                    (Some(d), _) => format!("Built {}", &d[..d.len().min(19)]),
                    (None, Some(i)) => format!("Built {i} (digest unknown)"),
                    (None, None) => "Built".to_owned(),
                },
                duration as f64 / 1000.0
            ),
            Outcome::Failed { error, .. } => {
                format!("{} {:<10} failed: {error}\n", s.error("✗"), item.name)
            }
            other => format!("{} {:<10} {other:?}\n", s.error("✗"), item.name),
        };
        say(&line);
        digests.push((item.name.clone(), digest.clone()));
        built.push(Built {
            component: item.name.clone(),
            outcome,
            image: item.image.clone(),
            digest,
            duration_ms: duration,
        });
    }
    if failed {
        say("\nBuild failed: no SBOM was recorded.\n");
        if let Some(text) = out.structured(&BuildReport {
            plan: &plan,
            built,
            sbom: None,
            sbom_note: None,
        }) {
            out.print(&text)?;
        }
        return Ok(Exit::Failed);
    }
    let inputs = build::with_images(&plan, &digests);
    let generated = sbom::generate(
        &plan.deployment,
        &plan.commit,
        &inputs,
        &plan.root,
        args.vulnerabilities.as_deref(),
    )
    .map_err(sbom_failure)?;
    for e in &generated.errors {
        out.warn(&format!("lockfile skipped: {e}"));
    }
    let author = super::approve::git2_signature(
        &git,
        &git.config_string("user.email")
            .unwrap_or_else(|| "atmos".into()),
    )?;
    let big = sbom::store(
        &git,
        &plan.deployment,
        &plan.commit,
        &generated.json,
        args.force,
        &author,
    )
    .map_err(sbom_failure)?;
    if let Some(r) = &remote {
        r.push_notes(&atmos_core::contracts::layout::notes_ref(
            &plan.deployment,
            "sbom",
        ))
        .map_err(super::store::remote_failure)?;
    }
    if big {
        out.warn(&format!(
            "the SBOM is {} bytes, over 10 MB; notes this size slow down fetches",
            generated.json.len()
        ));
    }
    let deps: usize = generated.packages.iter().map(|(_, n)| n).sum();
    let note = atmos_core::contracts::layout::notes_ref(&plan.deployment, "sbom");
    say(&format!(
        "\nGenerated SBOM: {} components, {deps} dependencies{}\nAttached SBOM to commit {} ({note})\n",
        generated.packages.len(),
        match generated.vulnerabilities {
            Some(n) => format!(", {n} vulnerabilities from the scanner report"),
            None => ", not scanned for vulnerabilities".to_owned(),
        },
        &plan.commit[..9],
    ));
    let pushed: Vec<&str> = plan
        .items
        .iter()
        .filter_map(|i| i.image.as_deref())
        .collect();
    if !pushed.is_empty() {
        say(&format!(
            "{} {}\n",
            if args.skip_push {
                "Images built (not pushed):"
            } else {
                "Images pushed:"
            },
            pushed.join(", ")
        ));
    }
    if let Some(text) = out.structured(&BuildReport {
        plan: &plan,
        built,
        sbom: Some(generated),
        sbom_note: Some(note),
    }) {
        out.print(&text)?;
    }
    Ok(Exit::Done)
}

/// An SBOM problem: too large or already there is the user's to fix (2), else a failure (1).
pub fn sbom_failure(e: SbomError) -> Failure {
    let (exit, hint) = match &e {
        SbomError::TooLarge { .. } => (
            Exit::Usage,
            Some(
                "trim the lockfiles scanned (settings.<type>.source) or the scanner report"
                    .to_owned(),
            ),
        ),
        SbomError::Exists { .. } => (Exit::Usage, Some("pass --force to replace it".to_owned())),
        SbomError::Findings { .. } => (
            Exit::Usage,
            Some("pass a CycloneDX JSON or SARIF 2.1.0 report".to_owned()),
        ),
        _ => (Exit::Failed, None),
    };
    Failure::User {
        exit,
        message: e.to_string(),
        hint,
        diagnostics: Vec::new(),
    }
}
