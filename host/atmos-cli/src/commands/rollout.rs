//! `atmos deployment rollout <d> --target t [--git-sha s | --promote-from src] …`

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use atmos_core::contracts::Verdict;
use atmos_core::executor::{ExecutorError, Step};
use atmos_core::exit::Exit;
use atmos_core::git::record::Tagger;
use atmos_core::git::{GitError, GitRepo, short};
use atmos_core::identity::{self, process_env};
use atmos_core::rollout::execute::{self, Event};
use atmos_core::rollout::{
    Action, Change, Outcome, RolloutError, RolloutPlan, RolloutReport, RolloutRequest, plan, record,
};
use indexmap::IndexMap;

use super::{Context, Failure};
use crate::cli::{Format, RolloutArgs};
use crate::render::{Output, Style};

/// Plan, check, run, record.
pub fn run(args: &RolloutArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "rollout")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let target = match args
        .target
        .clone()
        .or_else(|| loaded.deployment.context.default_target.clone())
    {
        Some(t) => t,
        None => {
            return Err(Failure::usage(
                "`rollout` needs --target",
                Some(format!(
                    "targets of {}: {} (or set `context.default_target`)",
                    args.deployment,
                    loaded
                        .deployment
                        .targets
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
        }
    };
    let git = GitRepo::discover(&project.root).map_err(git_failure)?;
    let metadata = parse_metadata(&args.metadata)?;
    let env = process_env;
    // The shared store: read it before any decision; hold the target's lock while deciding,
    // running and recording (not for --plan, which changes nothing).
    let remote = super::store::open(&project, args.remote.as_deref(), args.offline)?;
    let _lock = if args.plan {
        None
    } else {
        let actor = identity::actor(&env, git.config_string("user.email"));
        Some(take_lock(
            args,
            ctx,
            &project,
            &git,
            remote.as_ref(),
            &loaded.deployment.name,
            &target,
            &actor.id,
            identity::build_id(&env),
        )?)
    };
    // What the previous holder pushed just before releasing is read again.
    let git = match &remote {
        Some(r) => {
            r.fetch().map_err(super::store::remote_failure)?;
            GitRepo::discover(&project.root).map_err(git_failure)?
        }
        None => git,
    };
    let request = RolloutRequest {
        target,
        git_sha: args.git_sha.clone(),
        promote_from: args.promote_from.clone(),
        components: args.components.clone(),
        skip_promotion_check: args.skip_promotion_check,
        force: args.force,
        metadata,
        actor: identity::actor(&env, git.config_string("user.email")),
        build_id: identity::build_id(&env),
        started_at: jiff::Timestamp::now(),
    };
    let evaluator = ctx.evaluator();
    let mut request = request;
    let mut plan = plan::plan(&project, &loaded, &git, &request, evaluator.as_ref())
        .map_err(rollout_failure)?;

    // Live output goes to stdout for tables, to stderr when stdout carries JSON/YAML.
    let structured = ctx.out.format != Format::Table;
    let live = Live::new(&ctx.out, structured);
    live.text(&render_header(
        &plan,
        args.plan,
        &live.style,
        ctx.out.verbose > 0,
    ));

    // Only missing approvals: confirm interactively (approval_method: manual), or wait.
    if plan.blocked() == Some(Verdict::Pending) && !args.plan {
        let manual = plan
            .approvals
            .as_ref()
            .is_some_and(|a| a.method == atmos_core::config::model::ApprovalMethod::Manual);
        if manual {
            if confirm_manually(&plan, &git, &live)? {
                request.started_at = jiff::Timestamp::now();
                plan = plan::plan(&project, &loaded, &git, &request, evaluator.as_ref())
                    .map_err(rollout_failure)?;
                live.text(&format!(
                    "\n{}",
                    render_header(&plan, args.plan, &live.style, ctx.out.verbose > 0)
                ));
            }
        } else if args.wait_for_approval {
            let timeout = atmos_core::history::parse_duration(&args.timeout)
                .map_err(|e| Failure::usage(format!("--timeout: {e}"), None))?;
            let deadline = std::time::Instant::now() + timeout;
            while plan.blocked() == Some(Verdict::Pending) {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if !wait_for_approval(args, &plan, git.git_dir(), remote.as_ref(), left, &live)? {
                    break;
                }
                let git = ctx.require_git(&project)?;
                request.started_at = jiff::Timestamp::now();
                plan = plan::plan(&project, &loaded, &git, &request, evaluator.as_ref())
                    .map_err(rollout_failure)?;
                live.text(&crate::render::decisions::lines(
                    &plan.decisions,
                    &live.style,
                    ctx.out.verbose > 0,
                ));
            }
        }
    }

    let blocked = plan.blocked();
    if let Some(verdict) = blocked
        && !args.plan
    {
        live.text(&render_blocked(&plan, &live.style));
        if let Some(text) = ctx.out.structured(&plan) {
            ctx.out.print(&text)?;
        }
        return Ok(if verdict == Verdict::Deny {
            Exit::Denied
        } else {
            Exit::Pending
        });
    }
    if plan.is_noop() {
        let commit = plan
            .commit
            .as_deref()
            .map(short)
            .unwrap_or("the source's commits");
        live.text(&format!(
            "\nNothing to do: every selected component of {} in {} already runs {commit}.\n(use --force to run the executors again)\n",
            plan.deployment, plan.target
        ));
        if let Some(text) = ctx.out.structured(&plan) {
            ctx.out.print(&text)?;
        }
        return Ok(Exit::Done);
    }

    let step = if args.plan { Step::Plan } else { Step::Apply };
    let prepared = execute::prepare(&loaded, &project.root, &git, &plan, step, &env)
        .map_err(rollout_failure)?;
    let parallelism = args
        .parallelism
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));

    let started = Instant::now();
    let runs = super::runner::run_waves(&prepared, parallelism, live.sink())?;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    if args.plan {
        let failed = runs
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed { .. }));
        live.text(&render_plan_footer(&plan, &runs, &live.style));
        if let Some(text) = ctx.out.structured(&PlanOutput {
            plan: &plan,
            runs: &runs,
        }) {
            ctx.out.print(&text)?;
        }
        return Ok(match (failed, blocked) {
            (true, _) => Exit::Failed,
            (false, Some(Verdict::Deny)) => Exit::Denied,
            (false, Some(_)) => Exit::Pending,
            (false, None) => Exit::Done,
        });
    }

    let tagger = Tagger {
        name: git
            .config_string("user.name")
            .unwrap_or_else(|| "atmos".to_owned()),
        email: git
            .config_string("user.email")
            .unwrap_or_else(|| request.actor.id.clone()),
    };
    let log_dir = project.display_path(&prepared.log_dir);
    let report = record::record(&git, plan, runs, &tagger, duration_ms).map_err(|e| {
        let mut f = rollout_failure(e);
        if let Failure::User { message, .. } = &mut f {
            message.push_str(" — the executors ran, but their records were not written");
        }
        f
    })?;
    live.text(&render_summary(
        &report,
        &live.style,
        &log_dir.display().to_string(),
    ));
    write_step_summary(&report);
    if let Some(r) = &remote {
        match push_records(r, &git, &report) {
            Ok(attempts) => live.text(&format!(
                "Recorded on {} ({attempts} attempt{})\n",
                r.name,
                if attempts == 1 { "" } else { "s" }
            )),
            Err(f) => {
                live.text(&format!(
                    "\n{} the records are in the local repository but not on {}; they are pushed by the next rollout or approval that reaches it\n",
                    live.style.error("✗"),
                    r.name
                ));
                return Err(f);
            }
        }
    }
    if let Some(text) = ctx.out.structured(&report) {
        ctx.out.print(&text)?;
    }
    Ok(if report.success {
        Exit::Done
    } else {
        Exit::Failed
    })
}

/// Releases the target's lock when the rollout ends, however it ends.
struct LockGuard {
    root: std::path::PathBuf,
    remote: Option<atmos_core::git::remote::Remote>,
    held: atmos_core::git::lock::Held,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Ok(git) = GitRepo::discover(&self.root) {
            let store = self.remote.as_ref().map_or(
                atmos_core::git::lock::Store::Local,
                atmos_core::git::lock::Store::Remote,
            );
            let _ = atmos_core::git::lock::release(&git, store, &self.held);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn take_lock(
    args: &RolloutArgs,
    ctx: &Context,
    project: &atmos_core::config::Project,
    git: &GitRepo,
    remote: Option<&atmos_core::git::remote::Remote>,
    deployment: &str,
    target: &str,
    holder: &str,
    run: Option<String>,
) -> Result<LockGuard, Failure> {
    use atmos_core::contracts::Lease;
    use atmos_core::git::lock::{self, LockError, Store};
    use atmos_core::history::parse_duration;
    let ttl_text = args
        .lock_ttl
        .clone()
        .or_else(|| project.settings.git.lock_ttl.clone())
        .unwrap_or_else(|| "30m".to_owned());
    let ttl =
        parse_duration(&ttl_text).map_err(|e| Failure::usage(format!("lock ttl: {e}"), None))?;
    let wait = if args.wait_for_lock {
        Some(
            parse_duration(&args.timeout)
                .map_err(|e| Failure::usage(format!("--timeout: {e}"), None))?,
        )
    } else {
        None
    };
    let now = jiff::Timestamp::now();
    let expires = now
        .checked_add(jiff::SignedDuration::from_secs(
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .unwrap_or(now);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    let lease = Lease {
        deployment: deployment.to_owned(),
        target: target.to_owned(),
        holder: holder.to_owned(),
        run,
        host,
        pid: std::process::id(),
        started_at: atmos_core::contracts::layout::rfc3339(now),
        expires_at: atmos_core::contracts::layout::rfc3339(expires),
    };
    let store = remote.map_or(Store::Local, Store::Remote);
    let quiet = ctx.out.quiet;
    let last = std::cell::Cell::new(std::time::Instant::now() - std::time::Duration::from_secs(60));
    let progress = |held: &Lease| {
        if !quiet && last.get().elapsed() >= std::time::Duration::from_secs(10) {
            last.set(std::time::Instant::now());
            eprintln!(
                "… waiting for the lock of {deployment}/{target}, held by {} (run {}) until {}",
                held.holder,
                held.run.as_deref().unwrap_or("-"),
                held.expires_at
            );
        }
    };
    match lock::acquire(git, store, lease, wait, &progress) {
        Ok(held) => {
            if let Some(old) = &held.took_over
                && old.pid != held.lease.pid
            {
                ctx.out.warn(&format!(
                    "took over the expired lock of {deployment}/{target} from {} (run {}, {} pid {}, expired {}): that rollout did not finish; its state is what the remote records",
                    old.holder,
                    old.run.as_deref().unwrap_or("-"),
                    old.host,
                    old.pid,
                    old.expires_at
                ));
            }
            Ok(LockGuard {
                root: project.root.clone(),
                remote: remote.cloned(),
                held,
            })
        }
        Err(LockError::Held(l)) => Err(Failure::User {
            exit: Exit::Pending,
            message: format!(
                "{deployment}/{target} is locked by {} (run {}, {} pid {}) since {}, until {}",
                l.holder,
                l.run.as_deref().unwrap_or("-"),
                l.host,
                l.pid,
                l.started_at,
                l.expires_at
            ),
            hint: Some(format!(
                "wait for it with --wait-for-lock --timeout 30m; if that runner is gone, the lock lapses at {} or can be cleared with: atmos deployment lock release {deployment} --target {target}",
                l.expires_at
            )),
            diagnostics: Vec::new(),
        }),
        Err(LockError::Remote(e)) => Err(super::store::remote_failure(e)),
        Err(LockError::Git(e)) => Err(git_failure(e)),
    }
}

/// Push what the rollout recorded: every new tag (create only) and every moved state ref
/// (only from the value read before the rollout), atomically. A rejection re-reads the
/// remote: if someone else moved one of our state refs, stop; else try again.
fn push_records(
    remote: &atmos_core::git::remote::Remote,
    git: &GitRepo,
    report: &RolloutReport,
) -> Result<u32, Failure> {
    use atmos_core::git::remote::{Expect, RefUpdate, RemoteError};
    let mut updates = Vec::new();
    for c in &report.components {
        if let Some(tag) = &c.tag {
            let name = format!("refs/tags/{tag}");
            if let Ok(Some(e)) = git.refs().find(&name) {
                updates.push(RefUpdate {
                    name,
                    new: Some(e.oid),
                    expect: Expect::Absent,
                });
            }
        }
        if c.run
            .as_ref()
            .is_some_and(|r| r.outcome == Outcome::Succeeded)
        {
            updates.push(RefUpdate {
                name: atmos_core::contracts::layout::state_ref(
                    &report.plan.deployment,
                    &report.plan.target,
                    &c.planned.name,
                ),
                new: Some(c.planned.new.clone()),
                expect: match &c.planned.current {
                    Some(v) => Expect::Value(v.clone()),
                    None => Expect::Absent,
                },
            });
        }
    }
    for attempt in 1..=5u32 {
        match remote.push(&updates) {
            Ok(()) => return Ok(attempt),
            Err(RemoteError::Rejected { detail }) => {
                remote.fetch().map_err(super::store::remote_failure)?;
                for u in updates.iter().filter(|u| u.name.starts_with("refs/atmos/")) {
                    let now = remote
                        .remote_value(&u.name)
                        .map_err(super::store::remote_failure)?;
                    let expected = match &u.expect {
                        Expect::Value(v) => Some(v.clone()),
                        Expect::Absent => None,
                    };
                    if now != expected && now != u.new {
                        return Err(Failure::User {
                            exit: Exit::Failed,
                            message: format!(
                                "{} was moved on {} by someone else while this rollout ran (expected {}, found {}); it was not overwritten",
                                u.name,
                                remote.name,
                                expected.as_deref().unwrap_or("absent"),
                                now.as_deref().unwrap_or("absent")
                            ),
                            hint: Some(format!(
                                "check who deployed with `atmos deployment history`; the refusal was: {detail}"
                            )),
                            diagnostics: Vec::new(),
                        });
                    }
                }
            }
            Err(e) => return Err(super::store::remote_failure(e)),
        }
    }
    Err(Failure::User {
        exit: Exit::Failed,
        message: format!("{} kept refusing the records after 5 attempts", remote.name),
        hint: None,
        diagnostics: Vec::new(),
    })
}

/// In GitHub Actions, append a Markdown summary of the rollout to the job's summary.
fn write_step_summary(report: &RolloutReport) {
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

#[derive(serde::Serialize)]
struct PlanOutput<'a> {
    plan: &'a RolloutPlan,
    runs: &'a [atmos_core::rollout::ComponentRun],
}

pub fn parse_metadata(list: &[String]) -> Result<IndexMap<String, String>, Failure> {
    let mut out = IndexMap::new();
    for item in list {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_owned(), v.to_owned());
            }
            _ => {
                return Err(Failure::usage(
                    format!("invalid --metadata `{item}`: expected key=value"),
                    Some("e.g. --metadata pr=#482 --metadata ticket=OPS-12".into()),
                ));
            }
        }
    }
    Ok(out)
}

/// Where progress goes, with a lock so concurrent components do not interleave mid-line.
struct Live {
    to_stderr: bool,
    quiet: bool,
    style: Style,
    lock: Arc<Mutex<()>>,
}

impl Live {
    fn new(out: &Output, to_stderr: bool) -> Live {
        Live {
            to_stderr,
            quiet: out.quiet,
            style: if to_stderr {
                out.err_style
            } else {
                out.out_style
            },
            lock: Arc::new(Mutex::new(())),
        }
    }

    fn text(&self, text: &str) {
        if self.quiet || text.is_empty() {
            return;
        }
        write_text(self.to_stderr, &self.lock, text);
    }

    fn sink(&self) -> execute::Events {
        let lock = self.lock.clone();
        let to_stderr = self.to_stderr;
        let quiet = self.quiet;
        let style = self.style;
        Arc::new(move |event: Event| {
            if quiet {
                return;
            }
            let text = match event {
                Event::Wave {
                    index,
                    total,
                    components,
                } => format!(
                    "\n{} {}\n",
                    style.bold(&format!("Wave {index}/{total}:")),
                    components.join(", ")
                ),
                Event::Started { .. } => String::new(),
                Event::Command { component, command } => {
                    style.dim(&format!("  {component} │ $ {command}\n"))
                }
                Event::Output {
                    component, line, ..
                } => format!("  {} {line}\n", style.dim(&format!("{component} │"))),
                Event::Finished {
                    component,
                    outcome,
                    duration_ms,
                } => match outcome {
                    Outcome::Succeeded => {
                        format!("{} {component} ({})\n", style.ok("✓"), seconds(duration_ms))
                    }
                    Outcome::Failed { error, .. } => format!(
                        "{} {component} failed: {error} ({})\n",
                        style.error("✗"),
                        seconds(duration_ms)
                    ),
                    Outcome::Interrupted => {
                        format!("{} {component} interrupted\n", style.error("✗"))
                    }
                    Outcome::Skipped { reason } => {
                        format!("{} {component} skipped: {reason}\n", style.dim("-"))
                    }
                },
            };
            if !text.is_empty() {
                write_text(to_stderr, &lock, &text);
            }
        })
    }
}

fn write_text(to_stderr: bool, lock: &Mutex<()>, text: &str) {
    let _guard = lock.lock();
    // A closed pipe must not kill a rollout halfway: progress is best effort, logs keep all.
    if to_stderr {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn change_label(change: Change) -> &'static str {
    match change {
        Change::New => "(new)",
        Change::Changed => "(changed)",
        Change::Unchanged => "(no change)",
        Change::Rollback => "(rollback)",
    }
}

fn render_header(plan: &RolloutPlan, plan_only: bool, s: &Style, verbose: bool) -> String {
    let mut out = String::new();
    let title = match (plan.action, &plan.source_target) {
        (Action::Promote, Some(src)) => format!(
            "Promoting {} from {src} to {}",
            plan.deployment, plan.target
        ),
        (Action::Rollback, _) => format!("Rolling back {} in {}", plan.deployment, plan.target),
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
    out.push_str(&crate::render::decisions::lines(
        &plan.decisions,
        s,
        verbose,
    ));
    out.push_str(&format!(
        "→ Deployed by {} (from {})\n",
        plan.actor.id, plan.actor.source
    ));
    let width = plan
        .components
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    out.push_str(&format!(
        "\n{} {}:\n",
        if plan_only {
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
    out
}

fn render_blocked(plan: &RolloutPlan, s: &Style) -> String {
    let mut out = crate::render::decisions::denials(&plan.decisions, s);
    if let Some(d) = &plan.denial {
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
        out.push_str(&format!("\nTo deploy to {}:\n", d.target));
        for (i, step) in d.steps.iter().enumerate() {
            let to = step
                .split("--target ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("");
            let label = match (i, step.contains("--promote-from"), i + 1 == d.steps.len()) {
                (0, false, _) => format!("Roll out to {to} first:"),
                (0, true, false) => format!("Promote to {to} first:"),
                (_, true, true) => format!("Then promote to {to}:"),
                _ => format!("Then promote to {to}:"),
            };
            out.push_str(&format!("  {}. {label}\n     {step}\n\n", i + 1));
        }
        out.push_str(&format!(
            "Or skip promotion validation (not recommended; recorded in the deployment tags):\n  {}\n",
            d.skip_command
        ));
        return out;
    }
    if plan.blocked() == Some(Verdict::Deny) {
        return out;
    }
    for d in plan
        .decisions
        .iter()
        .filter(|d| d.result == Verdict::Pending)
    {
        out.push_str(&format!("\n{} {}\n", s.warning("Pending:"), d.message));
    }
    if let (Some(check), Some(commit)) = (&plan.approvals, &plan.approval_commit) {
        if check.method == atmos_core::config::model::ApprovalMethod::Manual {
            out.push_str(&format!(
                "{} uses approval_method: manual — run this rollout from an interactive terminal to confirm it (CI cannot).\n",
                plan.target
            ));
            return out;
        }
        if !check.eligible.is_empty() {
            out.push_str(&format!(
                "May still approve: {}\n",
                check.eligible.join(", ")
            ));
        } else if !check.from_groups.is_empty() {
            out.push_str(&format!(
                "Nobody in {} can still approve (check approvers.groups in atmos.yaml).\n",
                check.from_groups.join(", ")
            ));
        }
        let from = plan
            .source_target
            .as_ref()
            .map(|s| format!(" --promote-from {s}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\nTo approve:\n  atmos deployment approve {} --target {}{from} --git-sha {commit}\n\nThen run this rollout again, or wait for approvals with --wait-for-approval --timeout 1h.\n",
            plan.deployment, plan.target
        ));
    }
    out
}

/// Wait until the approval records of the commit change, re-reading them every poll interval
/// with a fresh repository handle (approvals written by other processes are seen); the caller
/// then re-plans, so the full rule decides.
fn wait_for_approval(
    args: &RolloutArgs,
    plan: &RolloutPlan,
    git_dir: &std::path::Path,
    remote: Option<&atmos_core::git::remote::Remote>,
    timeout: std::time::Duration,
    live: &Live,
) -> Result<bool, Failure> {
    use atmos_core::history::parse_duration;
    let poll = parse_duration(&args.poll_interval)
        .map_err(|e| Failure::usage(format!("--poll-interval: {e}"), None))?
        .max(std::time::Duration::from_millis(100));
    let (Some(commit), Some(first)) = (&plan.approval_commit, &plan.approvals) else {
        return Ok(false);
    };
    let count = |git: &GitRepo| -> Option<usize> {
        let (records, _) = atmos_core::approvals::read(git, &plan.deployment, commit).ok()?;
        Some(
            records
                .iter()
                .filter(|r| r.target == plan.target && r.git_sha == *commit)
                .count(),
        )
    };
    let baseline = GitRepo::discover(git_dir)
        .ok()
        .and_then(|g| count(&g))
        .unwrap_or(0);
    live.text(&format!(
        "\n… waiting up to {}s for approval of {} for {} ({} of {} counted so far)\n",
        (timeout.as_millis() + 500) / 1000,
        short(commit),
        plan.target,
        first.counted.len(),
        first.required
    ));
    let started = std::time::Instant::now();
    let mut last_report = std::time::Instant::now();
    while started.elapsed() < timeout {
        std::thread::sleep(poll.min(timeout.saturating_sub(started.elapsed())));
        if let Some(r) = remote
            && let Err(e) = r.fetch()
        {
            live.text(&format!("… cannot read approvals from {}: {e}\n", r.name));
        }
        let now = GitRepo::discover(git_dir).ok().and_then(|g| count(&g));
        if now.is_some_and(|n| n != baseline) {
            live.text(&format!(
                "… new approval records for {} after {}s: checking them\n",
                short(commit),
                started.elapsed().as_secs()
            ));
            return Ok(true);
        }
        if last_report.elapsed() >= std::time::Duration::from_secs(30) {
            last_report = std::time::Instant::now();
            live.text(&format!(
                "… still waiting for approval of {} ({}s left)\n",
                short(commit),
                timeout.saturating_sub(started.elapsed()).as_secs()
            ));
        }
    }
    live.text(&format!(
        "\nTimed out after --timeout {} waiting for approval of {} for {}.\n",
        args.timeout,
        short(commit),
        plan.target
    ));
    Ok(false)
}

/// approval_method: manual — the person at the terminal confirms; refused without a terminal.
fn confirm_manually(plan: &RolloutPlan, git: &GitRepo, live: &Live) -> Result<bool, Failure> {
    use std::io::{BufRead, IsTerminal};
    let Some(commit) = &plan.approval_commit else {
        return Ok(false);
    };
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    let components: Vec<String> = plan
        .components
        .iter()
        .filter(|c| c.run)
        .map(|c| {
            format!(
                "{} ({} → {})",
                c.name,
                c.current.as_deref().map(short).unwrap_or("none"),
                short(&c.new)
            )
        })
        .collect();
    let prompt = format!(
        "\n{} requires a manual approval.\n  commit:     {commit}\n  target:     {}\n  components: {}\nType the target name ({}) to approve, anything else to stop: ",
        plan.target,
        plan.target,
        components.join(", "),
        plan.target
    );
    eprint!("{}", live.style.bold(&prompt));
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() != plan.target {
        live.text("Not approved.\n");
        return Ok(false);
    }
    let record = atmos_core::contracts::ApprovalRecord {
        approved_by: plan.actor.id.clone(),
        approved_at: atmos_core::contracts::layout::rfc3339(jiff::Timestamp::now()),
        decision: atmos_core::contracts::ApprovalDecision::Approve,
        deployment: plan.deployment.clone(),
        target: plan.target.clone(),
        git_sha: commit.clone(),
        promoted_from: plan.source_target.clone(),
        comment: Some("confirmed interactively".into()),
        method: "manual".into(),
        signature: None,
    };
    let author = super::approve::git2_signature(git, &plan.actor.id)?;
    atmos_core::approvals::append(git, &record, &author)
        .map_err(|e| rollout_failure(RolloutError::Git(e)))?;
    Ok(true)
}

fn render_plan_footer(
    plan: &RolloutPlan,
    runs: &[atmos_core::rollout::ComponentRun],
    s: &Style,
) -> String {
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
        out.push_str(&render_blocked(plan, s));
    }
    out
}

fn render_summary(report: &RolloutReport, s: &Style, log_dir: &str) -> String {
    let mut out = String::new();
    let duration = seconds(report.duration_ms);
    if report.success {
        out.push_str(&format!(
            "\n{} Deployment complete ({duration})\n",
            s.ok("✓")
        ));
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
        out.push_str("Failed components keep their previous commit; each has a `failure` tag.\n");
    }
    if let Some(id) = &report.deployment_id {
        out.push_str(&format!("\nDeployment ID: {id}\n"));
    }
    out.push_str(&format!("Logs: {log_dir}\n"));
    out
}

fn git_failure(e: GitError) -> Failure {
    rollout_failure(RolloutError::Git(e))
}

pub fn rollout_failure(e: RolloutError) -> Failure {
    let message = e.to_string();
    let (exit, hint) = match &e {
        RolloutError::Project(p) => return clone_project_error(p, message),
        RolloutError::UnknownTarget(t) => (Exit::Usage, Some(t.hint())),
        RolloutError::UnknownComponent { suggestion, known, .. } => (
            Exit::Usage,
            Some(match suggestion {
                Some(s) => format!("did you mean `{s}`? components: {}", known.join(", ")),
                None => format!("components: {}", known.join(", ")),
            }),
        ),
        RolloutError::SelfPromotion { .. } => (Exit::Usage, Some("--promote-from names the target the code comes from".into())),
        RolloutError::NothingToPromote {
            deployment,
            source_target,
            ..
        } => (
            Exit::Usage,
            Some(format!(
                "roll out to {source_target} first: atmos deployment rollout {deployment} --target {source_target}"
            )),
        ),
        RolloutError::Git(GitError::UnknownRevision { .. } | GitError::AmbiguousRevision { .. }) => (
            Exit::Usage,
            Some("pass a full or longer sha, a branch or a tag (`git log --oneline` lists commits)".into()),
        ),
        RolloutError::Git(GitError::NoCommits) => (Exit::Usage, Some("commit your files first: git add -A && git commit".into())),
        RolloutError::Git(GitError::NotARepository { .. }) => (Exit::Usage, Some("atmos records deployments in git: run `git init` and commit".into())),
        RolloutError::Git(GitError::RefMoved { .. }) => (
            Exit::Failed,
            Some("another rollout to this target finished meanwhile; check `git show-ref | grep refs/atmos` and run again".into()),
        ),
        RolloutError::Git(_) | RolloutError::Io { .. } => (Exit::Failed, None),
        RolloutError::Executor(ExecutorError::ToolMissing { hint, .. }) => {
            (Exit::Failed, Some(format!("{hint}; nothing was deployed")))
        }
        RolloutError::Executor(ExecutorError::BadSetting { .. }) => (Exit::Usage, None),
    };
    Failure::User {
        exit,
        message,
        hint,
        diagnostics: Vec::new(),
    }
}

fn clone_project_error(e: &atmos_core::config::ProjectError, message: String) -> Failure {
    Failure::User {
        exit: Exit::Usage,
        message,
        hint: e.hint(),
        diagnostics: e.diagnostics().to_vec(),
    }
}
