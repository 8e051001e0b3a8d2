//! `atmos deployment approve|reject <d> --target t [--git-sha s | --promote-from src]`.

use atmos_core::approvals;
use atmos_core::config::model::ApprovalMethod;
use atmos_core::contracts::layout::notes_ref;
use atmos_core::contracts::{ApprovalDecision as Decision, ApprovalRecord};
use atmos_core::exit::Exit;
use atmos_core::git::short;
use atmos_core::identity::{self, process_env};
use serde::Serialize;

use super::{Context, Failure, git_failure};
use crate::cli::{ApproveArgs, Format};

#[derive(Serialize)]
struct Recorded<'a> {
    record: &'a ApprovalRecord,
    notes_ref: String,
    /// Approvals that count now, and how many are required.
    counted: usize,
    required: u32,
    /// Why this approval will not count, when known now.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// `--format json` of an approval the gates refused.
#[derive(Serialize)]
struct Refused<'a> {
    recorded: bool,
    decisions: &'a [atmos_core::contracts::Decision],
}

/// Record the approval or rejection.
pub fn run(args: &ApproveArgs, ctx: &Context, decision: Decision) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "approve")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let d = &loaded.deployment;
    let target_name = args
        .target
        .clone()
        .or_else(|| d.context.default_target.clone())
        .ok_or_else(|| Failure::usage("`approve` needs --target", None))?;
    atmos_core::config::UnknownTarget::check(d, &target_name)?;
    let target = &d.targets[&target_name];
    let remote = super::store::open(&project, args.remote.as_deref(), args.offline)?;
    let git = ctx.require_git(&project)?;
    let sources: Vec<String> = target
        .promotion
        .as_ref()
        .map(|p| p.sources().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let promote_from = match (&args.promote_from, &args.git_sha) {
        (Some(s), _) => Some(s.clone()),
        (None, None) if sources.len() == 1 => Some(sources[0].clone()),
        _ => None,
    };
    let commit = match (&promote_from, &args.git_sha) {
        (_, Some(spec)) => git.resolve_commit(spec).map_err(git_failure)?,
        (Some(src), None) => {
            atmos_core::config::UnknownTarget::check(d, src)?;
            let mut commits: Vec<String> = git
                .state_refs(&d.name, Some(src))
                .map_err(git_failure)?
                .into_iter()
                .map(|s| s.commit)
                .collect();
            commits.sort();
            commits.dedup();
            git.newest_commit(&commits)
                .map_err(git_failure)?
                .ok_or_else(|| {
                    Failure::usage(
                        format!("nothing to approve: {src} runs nothing yet"),
                        Some(format!("roll out to {src} first, or pass --git-sha")),
                    )
                })?
        }
        (None, None) => git.resolve_commit("HEAD").map_err(git_failure)?,
    };
    let env = process_env;
    let actor = identity::actor(&env, git.config_string("user.email"));
    let mut record = ApprovalRecord {
        approved_by: actor.id.clone(),
        approved_at: atmos_core::contracts::layout::rfc3339(jiff::Timestamp::now()),
        decision,
        deployment: d.name.clone(),
        target: target_name.clone(),
        git_sha: commit.clone(),
        promoted_from: promote_from.clone(),
        comment: args.comment.clone(),
        method: "recorded".into(),
        signature: None,
    };
    let rules = target
        .promotion
        .as_ref()
        .and_then(|p| p.approvals.clone())
        .unwrap_or_default();
    if args.sign || args.signing_key.is_some() || rules.require_signed {
        let key = args
            .signing_key
            .clone()
            .or_else(|| {
                git.config_string("user.signingkey")
                    .map(std::path::PathBuf::from)
            })
            .ok_or_else(|| {
                Failure::usage(
                    format!(
                        "{target_name} requires signed approvals, and no signing key is configured"
                    ),
                    Some(
                        "pass --signing-key ~/.ssh/id_ed25519, or set git config user.signingkey"
                            .into(),
                    ),
                )
            })?;
        record.signature = Some(approvals::sign(&record, &key).map_err(|e| Failure::User {
            exit: Exit::Failed,
            message: e.to_string(),
            hint: Some("the key must be an SSH key (ssh-keygen -t ed25519)".into()),
            diagnostics: Vec::new(),
        })?);
    }
    // Policies and the hooks bound with `on: [approve]` may refuse an approval (never a
    // rejection); only a deny blocks it.
    if decision == Decision::Approve {
        let request = atmos_core::rollout::RolloutRequest {
            target: target_name.clone(),
            git_sha: args.git_sha.clone(),
            promote_from: promote_from.clone(),
            components: Vec::new(),
            skip_promotion_check: false,
            force: false,
            metadata: Default::default(),
            actor: actor.clone(),
            build_id: identity::build_id(&env),
            started_at: jiff::Timestamp::now(),
        };
        let decisions = atmos_core::rollout::plan::approval_gates(
            &project,
            &loaded,
            &git,
            &request,
            ctx.evaluator().as_ref(),
        )
        .map_err(super::rollout::rollout_failure)?;
        if decisions
            .iter()
            .any(|d| d.result == atmos_core::contracts::Verdict::Deny)
        {
            let s = &ctx.out.err_style;
            ctx.out.eprint(&format!(
                "{}{}",
                crate::render::decisions::lines(&decisions, s, ctx.out.verbose > 0),
                crate::render::decisions::denials(&decisions, s)
            ));
            // CI reads why from stdout, as with a denied rollout.
            if let Some(text) = ctx.out.structured(&Refused {
                recorded: false,
                decisions: &decisions,
            }) {
                ctx.out.print(&text)?;
            }
            return Ok(Exit::Denied);
        }
    }
    let author = git2_signature(&git, &actor.id)?;
    approvals::append(&git, &record, &author).map_err(git_failure)?;
    if let Some(r) = &remote {
        r.push_notes(&notes_ref(&d.name, "approvals"))
            .map_err(super::store::remote_failure)?;
    }

    // What the approval changes now.
    let (records, _) = approvals::read(&git, &d.name, &commit).map_err(git_failure)?;
    let members: Vec<String> = rules
        .from_groups
        .iter()
        .flat_map(|g| {
            project
                .settings
                .approvers
                .groups
                .get(g)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let warning =
        (decision == Decision::Approve && !members.is_empty() && !members.contains(&actor.id))
            .then(|| {
                format!(
                    "{} is not in {}: this approval will not count",
                    actor.id,
                    rules.from_groups.join(", ")
                )
            });
    let check = approvals::check(
        &rules,
        target
            .promotion
            .as_ref()
            .and_then(|p| p.approval_method)
            .unwrap_or(ApprovalMethod::Recorded),
        &project.settings.approvers,
        &records,
        &approvals::CheckContext {
            deployment: &d.name,
            target: &target_name,
            commit: &commit,
            actor: "",
            authors: &[],
            root: &project.root,
        },
    );
    let report = Recorded {
        record: &record,
        notes_ref: notes_ref(&d.name, "approvals"),
        counted: check.counted.len(),
        required: check.required,
        warning: warning.clone(),
    };
    if let Some(w) = &warning {
        ctx.out.warn(w);
    }
    let text = ctx.out.structured(&report).unwrap_or_else(|| {
        let s = &ctx.out.out_style;
        let verb = match decision {
            Decision::Approve => "Approved",
            Decision::Reject => "Rejected",
        };
        let from = promote_from
            .as_ref()
            .map(|p| format!(" (promotion from {p})"))
            .unwrap_or_default();
        let mut out = format!(
            "{} {verb} {} for {} → {target_name}{from} as {}{}\n",
            s.ok("✓"),
            short(&commit),
            d.name,
            record.approved_by,
            if record.signature.is_some() { ", signed" } else { "" }
        );
        out.push_str(&format!(
            "  {} approval(s) recorded for this commit and target; {} required{} (self-approvals are checked at rollout)\n",
            check.counted.len(),
            check.required,
            if rules.from_groups.is_empty() {
                String::new()
            } else {
                format!(" from {}", rules.from_groups.join(", "))
            }
        ));
        out.push_str(&format!("  Recorded in {} on {commit}\n", notes_ref(&d.name, "approvals")));
        out
    });
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}

/// The signature of notes commits: git's user.name with the approver's identity.
pub fn git2_signature(
    git: &atmos_core::git::GitRepo,
    who: &str,
) -> Result<git2::Signature<'static>, Failure> {
    let name = git
        .config_string("user.name")
        .unwrap_or_else(|| "atmos".into());
    let email = if who.contains('@') {
        who.to_owned()
    } else {
        git.config_string("user.email")
            .unwrap_or_else(|| format!("{who}@atmos.invalid"))
    };
    git2::Signature::now(&name, &email).map_err(|e| Failure::User {
        exit: Exit::Failed,
        message: format!("cannot sign the note: {e}"),
        hint: None,
        diagnostics: Vec::new(),
    })
}
