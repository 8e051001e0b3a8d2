//! `atmos deployment policy test [paths] [--coverage]` and
//! `atmos deployment policy eval <d> --target t [--promote-from s] [--show-input]`.

use std::path::PathBuf;

use atmos_core::exit::Exit;
use atmos_core::gates::testing::run as run_tests;
use atmos_core::workflow::rollout::model::{EvaluationVerdict, PolicyEvaluation};
use atmos_core::workflow::rollout::{Action, evaluate};

use crate::cli::{Format, PolicyCheckArgs, PolicyCommand, PolicyEvalArgs, PolicyTestArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::policy_tests;

/// Run a policy subcommand.
pub fn run(cmd: PolicyCommand, ctx: &Context) -> Result<Exit, Failure> {
    match cmd {
        PolicyCommand::Test(args) => test(&args, ctx),
        PolicyCommand::Eval(args) => eval(&args, ctx),
        PolicyCommand::Check(args) => check(&args, ctx),
    }
}

fn check(args: &PolicyCheckArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "policy check")?;
    let (root, timeout): (PathBuf, _) = match ctx.project() {
        Ok(p) => (p.root.clone(), atmos_core::gates::policy_timeout(&p)),
        Err(_) => (
            std::env::current_dir().unwrap_or_default(),
            std::time::Duration::from_secs(1),
        ),
    };
    let paths = if args.paths.is_empty() {
        vec!["policies".to_owned()]
    } else {
        args.paths.clone()
    };
    let report = atmos_core::gates::check::check(&root, &paths, timeout);
    if !ctx.print_document(&report)? {
        let s = &ctx.out.out_style;
        let mut out = String::new();
        for g in &report.gates {
            out.push_str(&format!("{} ({})\n", g.package, g.rules.join(", ")));
        }
        for e in &report.errors {
            out.push_str(&format!(
                "{} {}{}: {}\n",
                s.error("error:"),
                e.file,
                e.line.map(|l| format!(":{l}")).unwrap_or_default(),
                crate::render::table::inert(&e.message)
            ));
        }
        out.push_str(&format!(
            "{} file{} checked, {} gate package{}, {} error{}\n",
            report.files.len(),
            atmos_core::plural::s(report.files.len()),
            report.gates.len(),
            atmos_core::plural::s(report.gates.len()),
            report.errors.len(),
            atmos_core::plural::s(report.errors.len()),
        ));
        ctx.out.print(&out)?;
    }
    Ok(if report.errors.is_empty() {
        Exit::Done
    } else {
        Exit::Usage
    })
}

fn test(args: &PolicyTestArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "policy test")?;
    // Policy authors may work outside an atmos project: paths are then relative to the
    // working directory.
    let (root, timeout): (PathBuf, _) = match ctx.project() {
        Ok(p) => (p.root.clone(), atmos_core::gates::policy_timeout(&p)),
        Err(_) => (ctx.start.clone(), atmos_core::gates::rego::DEFAULT_TIMEOUT),
    };
    let paths = if args.paths.is_empty() {
        vec!["policies".to_owned()]
    } else {
        args.paths.clone()
    };
    let filter = args
        .run
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| Failure::usage(format!("invalid --run: {e}"), None))?;
    let coverage = args.coverage || args.threshold.is_some();
    let mut report = match crate::context::isolated() {
        Some(isolated) => isolated.run_tests(&root, &paths, coverage, timeout),
        None => run_tests(&root, &paths, coverage, timeout),
    };
    // Hook fixtures (`*.hooktest.yaml`) run here: wasmtime is its own sandbox.
    let cache = atmos_core::git::GitRepo::discover(&root)
        .ok()
        .map(|g| atmos_core::gates::wasm_cache_dir(g.git_dir()));
    report.results.extend(atmos_core::gates::hook_testing::run(
        &root,
        &paths,
        cache.as_deref(),
    ));
    if let Some(re) = &filter {
        report.results.retain(|t| re.is_match(&t.name));
    }
    if report.results.is_empty() && report.load_errors.is_empty() {
        return Err(Failure::usage(
            format!("no tests found in {}", paths.join(", ")),
            Some(
                "tests are rules named test_* in .rego files (usually *_test.rego) and hook \
                 fixtures in *.hooktest.yaml files"
                    .into(),
            ),
        ));
    }
    let text = ctx
        .out
        .structured(&report)
        .unwrap_or_else(|| policy_tests::render(&report, &ctx.out.out_style, ctx.out.verbose > 0));
    ctx.out.print(&text)?;
    // Coverage below the threshold fails the run, naming the files.
    let below: Vec<String> = match (args.threshold, &report.coverage) {
        (Some(min), Some(files)) => files
            .iter()
            .filter(|f| f.percent < f64::from(min))
            .map(|f| format!("{} ({:.1}%)", f.file, f.percent))
            .collect(),
        _ => Vec::new(),
    };
    if !below.is_empty() {
        ctx.out.eprint(&format!(
            "coverage below {}%: {}\n",
            args.threshold.unwrap_or(0),
            below.join(", ")
        ));
    }
    Ok(if report.passed() && below.is_empty() {
        Exit::Done
    } else {
        Exit::Failed
    })
}

fn eval(args: &PolicyEvalArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "policy eval")?;
    let (project, loaded) = ctx.deployment(&args.what.deployment)?;
    let evaluator = ctx.evaluator_with_data(&args.data)?;
    if let Some(file) = &args.input {
        let target = atmos_core::workflow::resolve_target(
            &loaded.deployment,
            args.what.target.as_deref(),
            "policy eval",
        )?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display()), None))?;
        let mut input: serde_json::Value = serde_yaml_ng::from_str(&text).map_err(|e| {
            Failure::usage(
                format!("{} is not a JSON or YAML document: {e}", file.display()),
                Some("save the input of a real evaluation with `policy eval --format json --show-input`".into()),
            )
        })?;
        if let Some(now) = &args.now {
            input["now"] = serde_json::Value::String(now.clone());
        }
        let report = atmos_core::workflow::rollout::evaluate_input(
            &project,
            &loaded.deployment.name,
            &target,
            &input,
            args.local,
            evaluator.as_ref(),
        )?;
        return print_evaluation(ctx, &report);
    }
    let git = ctx.git(&project)?;
    // What `rollout --force` would do: every selected component's gates are evaluated.
    let mut request = ctx.rollout_request(
        &args.what,
        &loaded,
        &git,
        args.now.as_deref(),
        "policy eval",
    )?;
    request.force = true;
    let remote = atmos_core::workflow::store::remote(
        &project,
        args.remote.as_deref(),
        false,
        Some(&loaded),
    )?;
    let plan = evaluate(
        &project,
        &loaded.deployment.name,
        &request,
        args.local,
        remote.as_ref(),
        evaluator.as_ref(),
        &crate::render::live::Live::new(&ctx.out, true),
    )?;
    let report = PolicyEvaluation::of(&plan, args.show_input || ctx.out.format != Format::Table);
    let verdict = report.verdict;
    let text = ctx.out.structured(&report).unwrap_or_else(|| {
        let s = &ctx.out.out_style;
        let mut out = String::new();
        if args.show_input
            && let Some(input) = &plan.input
        {
            out.push_str("Input:\n");
            out.push_str(&crate::render::to_json(input));
            out.push('\n');
        }
        let action = match plan.action {
            Action::Rollout => "rollout",
            Action::Promote => "promotion",
            Action::Rollback => "rollback",
            Action::RollForward => "roll-forward",
        };
        out.push_str(&format!(
            "Gates for {} → {} ({action}){}:\n",
            plan.deployment,
            plan.target,
            args.now
                .as_deref()
                .map(|n| format!(" as of {n} (--now)"))
                .unwrap_or_default()
        ));
        out.push_str(&crate::render::decisions::lines(
            &plan.decisions,
            s,
            ctx.out.verbose > 0,
        ));
        out.push_str(&crate::render::rollout::rules_line(&plan.rules));
        out.push_str(&format!("\nVerdict: {}\n", verdict_name(verdict)));
        out.push_str(&crate::render::rollout::blocked(&plan, s));
        out
    });
    ctx.out.print(&text)?;
    Ok(match verdict {
        EvaluationVerdict::Deny => Exit::Denied,
        EvaluationVerdict::Pending => Exit::Pending,
        EvaluationVerdict::Allow => Exit::Done,
    })
}

/// Print an evaluation of a given input (`--input`).
fn print_evaluation(ctx: &Context, report: &PolicyEvaluation) -> Result<Exit, Failure> {
    let text = ctx.out.structured(report).unwrap_or_else(|| {
        format!(
            "Gates for {} → {} (input from a file; built-in gates not run):\n{}\nVerdict: {}\n",
            report.deployment,
            report.target,
            crate::render::decisions::lines(
                &report.decisions,
                &ctx.out.out_style,
                ctx.out.verbose > 0
            ),
            verdict_name(report.verdict)
        )
    });
    ctx.out.print(&text)?;
    Ok(match report.verdict {
        EvaluationVerdict::Deny => Exit::Denied,
        EvaluationVerdict::Pending => Exit::Pending,
        EvaluationVerdict::Allow => Exit::Done,
    })
}

fn verdict_name(v: EvaluationVerdict) -> &'static str {
    match v {
        EvaluationVerdict::Allow => "allow",
        EvaluationVerdict::Deny => "deny",
        EvaluationVerdict::Pending => "pending",
    }
}
