//! `atmos deployment approve|reject <d> --target t [--git-sha s | --promote-from src]`.

use atmos_core::contracts::ApprovalDecision;
use atmos_core::exit::Exit;
use atmos_core::git::short;
use atmos_core::identity::{self, process_env};
use atmos_core::workflow::approve::{ApprovalReport, ApproveOutcome, ApproveRequest, approve};
use atmos_core::workflow::store;

use crate::cli::{ApproveArgs, Format};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::{Style, decisions};

/// Record the approval or rejection.
pub fn run(args: &ApproveArgs, ctx: &Context, decision: ApprovalDecision) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "approve")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    // The approval goes where the target's records live (its own remote, or the shared
    // store); the other remotes are read first (the source's records may be elsewhere).
    let stores = store::Stores::for_approval(
        &project,
        &loaded,
        args.target.as_deref(),
        args.store.remote.as_deref(),
        args.store.offline,
    )?;
    for warning in &stores.unknown {
        ctx.out.warn(warning);
    }
    let git = ctx.git(&project)?;
    let env = process_env;
    let request = ApproveRequest {
        target: args.target.clone(),
        git_sha: args.git_sha.clone(),
        promote_from: args.promote_from.clone(),
        comment: args.comment.clone(),
        decision,
        sign: args.sign,
        signing_key: args.signing_key.clone(),
        actor: identity::actor(&env, git.config_string("user.email")),
        build_id: identity::build_id(&env),
    };
    let evaluator = ctx.evaluator();
    match approve(
        &project,
        &loaded.deployment.name,
        evaluator.as_ref(),
        &stores,
        &request,
        &ctx.warnings(),
    )? {
        ApproveOutcome::Refused(refusal) => {
            let s = &ctx.out.err_style;
            ctx.out.eprint(&format!(
                "{}{}",
                decisions::lines(&refusal.decisions, s, ctx.out.verbose > 0),
                decisions::denials(&refusal.decisions, s)
            ));
            // CI reads why from stdout, as with a denied rollout.
            ctx.print_document(&refusal)?;
            Ok(Exit::Denied)
        }
        ApproveOutcome::Recorded(report) => {
            if let Some(w) = &report.warning {
                ctx.out.warn(w);
            }
            if !ctx.print_document(report.as_ref())? {
                ctx.out.print(&render(&report, &ctx.out.out_style))?;
            }
            Ok(Exit::Done)
        }
    }
}

fn render(report: &ApprovalReport, s: &Style) -> String {
    let r = &report.record;
    let verb = match r.decision {
        ApprovalDecision::Approve => "Approved",
        ApprovalDecision::Reject => "Rejected",
    };
    let from = r
        .promoted_from
        .as_ref()
        .map(|p| format!(" (promotion from {p})"))
        .unwrap_or_default();
    let mut out = format!(
        "{} {verb} {} for {} → {}{from} as {}{}\n",
        s.ok("✓"),
        short(&r.git_sha),
        r.deployment,
        r.target,
        r.approved_by,
        if r.signature.is_some() {
            ", signed"
        } else {
            ""
        }
    );
    if report.requires_approval {
        out.push_str(&format!(
            "  {} approval(s) recorded for this commit and target, {} of which count; {} required{} (self-approvals are checked at rollout)\n",
            report.recorded,
            report.counted,
            report.required,
            if report.from_groups.is_empty() {
                String::new()
            } else {
                format!(" from {}", report.from_groups.join(", "))
            }
        ));
    } else if r.decision == ApprovalDecision::Approve {
        out.push_str(&format!(
            "  {} needs no approval: this one is recorded, and counts once the target requires approvals\n",
            r.target
        ));
    }
    out.push_str(&format!(
        "  Recorded in {} on {}\n",
        report.notes_ref, r.git_sha
    ));
    out
}
