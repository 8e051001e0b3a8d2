//! `atmos deployment rollout <d> --target t [--git-sha s | --promote-from src] …`: build the
//! request and options, let the library's rollout session do the work, render its events and
//! outcome.

use atmos_core::exit::Exit;
use atmos_core::workflow::archive::Folded;
use atmos_core::workflow::rollout::model::PlanRun;
use atmos_core::workflow::rollout::session::CanaryMode;
use atmos_core::workflow::rollout::wait::ApprovalWait;
use atmos_core::workflow::rollout::{RolloutOptions, RolloutOutcome, RolloutSession};
use atmos_core::workflow::{WorkflowError, duration, lease, store};

use crate::cli::{Format, RolloutArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::{ci, live::Live, rollout};

/// Plan, check, run, record, publish; in CI, summarise every outcome (errors included).
pub fn run(args: &RolloutArgs, ctx: &Context) -> Result<Exit, Failure> {
    let result = rollout(args, ctx);
    if let Err(Failure::Error(e)) = &result
        && (ci::System::detect().is_some() || std::env::var_os("GITHUB_STEP_SUMMARY").is_some())
    {
        let report = ci::for_error(
            &args.what.deployment,
            args.what.target.as_deref(),
            &e.to_string(),
            e.hint().as_deref(),
            i32::from(e.exit().code()),
        );
        ci::publish(&report, &ctx.out);
    }
    result
}

fn rollout(args: &RolloutArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "rollout")?;
    let (project, loaded) = ctx.deployment(&args.what.deployment)?;
    let git = ctx.git(&project)?;
    // `--now` (plan only, clap enforces it) evaluates time-based gates as of another time.
    let mut request =
        ctx.rollout_request(&args.what, &loaded, &git, args.now.as_deref(), "rollout")?;
    request.force = args.force;
    request.context = atmos_core::config::merge::parse_overrides(&args.context)
        .map_err(|e| Failure::usage(format!("invalid --context: {e}"), None))?;
    let lock_ttl = match args
        .lock_ttl
        .as_deref()
        .or(project.settings.git.lock_ttl.as_deref())
    {
        Some(text) => duration("lock ttl", text)?,
        None => lease::DEFAULT_TTL,
    };
    let timeout = duration("--timeout", &args.timeout)?;
    let stores = store::Stores::for_target(
        &project,
        &loaded,
        &request.target,
        args.store.remote.as_deref(),
        args.store.offline,
    )?;
    for warning in &stores.unknown {
        ctx.out.warn(warning);
    }
    let remote_name = stores.main_name().map(str::to_owned);
    let options = RolloutOptions {
        plan_only: args.plan,
        parallelism: args
            .parallelism
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        lock_ttl,
        wait_for_lock: args.wait_for_lock.then_some(timeout),
        wait_for_approval: args
            .wait_for_approval
            .then(|| -> Result<ApprovalWait, WorkflowError> {
                Ok(ApprovalWait {
                    timeout,
                    poll: duration("--poll-interval", &args.poll_interval)?,
                })
            })
            .transpose()?,
        stores,
        local_rules: args.local,
        canary: if args.resume {
            CanaryMode::Continue
        } else if args.abort {
            CanaryMode::Abort
        } else {
            CanaryMode::Begin
        },
        until_step: args.until_step,
    };
    let evaluator = ctx.evaluator();
    let mut live = Live::new(&ctx.out, args.plan);
    live.timeout_flag = Some(args.timeout.clone());
    let session = RolloutSession::begin(
        &project,
        &loaded,
        evaluator.as_ref(),
        request,
        options,
        &live,
    )?;
    if let Some(now) = &args.now {
        ctx.out.warn(&format!(
            "the gates are evaluated as of {now} (--now), not the real time; this is a plan"
        ));
    }
    let outcome = session.drive()?;
    let exit = outcome.exit();
    ci::publish(
        &ci::for_outcome(
            &outcome,
            &ci::Context {
                waited: args.wait_for_approval.then_some(args.timeout.as_str()),
                rerun: rerun_command(args),
            },
        ),
        &ctx.out,
    );
    match outcome {
        RolloutOutcome::Blocked(plan) => {
            live.text(&rollout::blocked(&plan, &live.style));
            ctx.print_document(&plan)?;
        }
        RolloutOutcome::NothingToDo { plan, backfilled } => {
            let commit = plan
                .commit
                .as_deref()
                .map(atmos_core::git::short)
                .unwrap_or("the source's commits");
            live.text(&format!(
                "\nNothing to do: every selected component of {} in {} already runs {commit}.\n(use --force to run the executors again)\n",
                plan.deployment, plan.target
            ));
            let remote = remote_name.as_deref().unwrap_or_default();
            match backfilled {
                None | Some(Ok(0)) => {}
                Some(Ok(n)) => live.text(&format!(
                    "Published {n} ref{} of {} that {remote} lacked (records this clone has)\n",
                    atmos_core::plural::s(n),
                    plan.target,
                )),
                Some(Err(e)) => ctx.out.warn(&format!(
                    "could not publish to {remote} the records it lacks: {e}"
                )),
            }
            ctx.print_document(&plan)?;
        }
        RolloutOutcome::Planned { plan, runs } => {
            live.text(&rollout::plan_footer(&plan, &runs, &live.style));
            ctx.print_document(&PlanRun { plan, runs })?;
        }
        RolloutOutcome::Done {
            report,
            published,
            archived,
        } => {
            let log_dir = report
                .log_dir
                .as_deref()
                .map(|d| project.display_path(d).display().to_string())
                .unwrap_or_default();
            live.text(&rollout::summary(&report, &live.style, &log_dir));
            let remote = remote_name.unwrap_or_default();
            match published {
                Some(Ok(attempts)) => live.text(&format!(
                    "Recorded on {remote} ({attempts} attempt{})\n",
                    atmos_core::plural::s(attempts as usize)
                )),
                Some(Err(e @ atmos_core::workflow::WorkflowError::MovedOnRemote { .. })) => {
                    live.text(&format!(
                        "\n{} the records are on {remote}, but a state ref there was moved by someone else meanwhile\n",
                        live.style.error("✗"),
                    ));
                    return Err(e.into());
                }
                Some(Err(e)) => {
                    live.text(&format!(
                        "\n{} the records are in the local repository but not on {remote}; they are pushed by the next rollout or approval that reaches it\n",
                        live.style.error("✗"),
                    ));
                    return Err(e.into());
                }
                None => {}
            }
            ctx.print_document(report.as_ref())?;
            match archived {
                Some(Ok(Folded {
                    deployment,
                    archive,
                    backlog,
                })) => {
                    if let Some(a) = archive.filter(|a| a.archived + a.pruned > 0) {
                        ctx.out.eprint(&format!(
                            "{} archived {} older record{} of {deployment} into its ledger (history.keep_tags)\n",
                            ctx.out.err_style.dim("note:"),
                            a.archived,
                            atmos_core::plural::s(a.archived),
                        ));
                    }
                    if backlog > 0 {
                        ctx.out.eprint(&format!(
                            "{} {deployment} holds about {backlog} record{} past its retention as tags (history.keep_tags), too many to fold during a rollout; each one makes every push to the remote slower: run `atmos deployment archive {deployment}` once (docs/git-layout.md#archive-ledger-history-folded-out-of-tags)\n",
                            ctx.out.err_style.dim("note:"),
                            atmos_core::plural::s(backlog),
                        ));
                    }
                }
                None => {}
                Some(Err(e)) => ctx.out.warn(&format!(
                    "the records are written, but archiving older ones failed: {e}; run `atmos deployment archive {}`",
                    loaded.deployment.name
                )),
            }
        }
    }
    Ok(exit)
}

/// The command that runs this rollout again, as a person would type it: every flag of this
/// run that decides what it does or how it is judged (metadata, a skipped promotion check,
/// context, the signing key, the store), so that copying it is the same rollout.
fn rerun_command(args: &RolloutArgs) -> String {
    let mut cmd = format!("atmos deployment rollout {}", quote(&args.what.deployment));
    let mut flag = |name: &str, value: &str| cmd.push_str(&format!(" --{name} {}", quote(value)));
    if let Some(t) = &args.what.target {
        flag("target", t);
    }
    if let Some(src) = &args.what.promote_from {
        flag("promote-from", src);
    }
    if let Some(sha) = &args.what.git_sha {
        flag("git-sha", sha);
    }
    for c in &args.what.components {
        flag("component", c);
    }
    for (k, v) in &args.what.metadata {
        flag("metadata", &format!("{k}={v}"));
    }
    for c in &args.context {
        flag("context", c);
    }
    if let Some(key) = &args.what.signing_key {
        flag("signing-key", &key.display().to_string());
    }
    if let Some(remote) = &args.store.remote {
        flag("remote", remote);
    }
    if args.what.skip_promotion_check {
        cmd.push_str(" --skip-promotion-check");
    }
    if args.force {
        cmd.push_str(" --force");
    }
    if args.local {
        cmd.push_str(" --local");
    }
    if args.store.offline {
        cmd.push_str(" --offline");
    }
    cmd
}

/// `text` as one shell word: as is when it holds only plain characters, else single-quoted.
fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@+,%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
