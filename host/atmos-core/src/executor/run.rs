//! Running prepared commands: the waves of a rollout or a build, each wave's components
//! concurrently up to a limit, each command in its own process group. Output is streamed as
//! events and kept in a log file per component. A cancellation (SIGINT/SIGTERM, through
//! `cancel`) stops the running process groups; components not started are skipped.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, mpsc, watch};

use super::{CommandSpec, Step};

/// How one component's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase", tag = "status")]
pub enum Outcome {
    /// Executor succeeded.
    Succeeded,
    /// Executor failed.
    Failed {
        /// Why.
        error: String,
        /// The failing command's exit code, when it exited.
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
    /// Stopped by SIGINT/SIGTERM while running.
    Interrupted,
    /// Not run.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One component's run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ComponentRun {
    /// Name.
    pub name: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall time of its commands.
    pub duration_ms: u64,
    /// Where its output is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    /// Why its output could not be kept whole (the log file could not be made or written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
    /// The commands it ran, as typed.
    pub commands: Vec<String>,
    /// How its post-deploy verification went, when it has one and its apply succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// How a canary step's analysis went, when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Verification>,
}

/// How a component's post-deploy verification went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Verification {
    /// Whether an attempt passed.
    pub passed: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Whether a failure asks for the previous commit to be deployed again.
    pub rollback: bool,
}

/// A post-deploy verification, ready to run.
#[derive(Debug, Clone)]
pub struct VerifySpec {
    /// The command.
    pub command: CommandSpec,
    /// The longest one attempt may run.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// The wait between attempts.
    pub interval: Duration,
    /// A failure asks for a rollback.
    pub rollback: bool,
}

/// A component ready to run.
#[derive(Debug, Clone)]
pub struct PreparedComponent {
    /// Name.
    pub name: String,
    /// Names of the running components it waits for.
    pub depends_on: Vec<String>,
    /// Commands, in order.
    pub commands: Vec<CommandSpec>,
    /// Extra environment (`ATMOS_*`).
    pub env: Vec<(String, String)>,
    /// Where its output is kept.
    pub log: PathBuf,
    /// The longest its commands may run together (`settings.<type>.timeout`); then the
    /// running command's process group is stopped and the component fails.
    pub timeout: Duration,
    /// Run after the commands succeed (apply only).
    pub verify: Option<VerifySpec>,
    /// The canary step this apply is, when the target deploys in steps.
    pub canary: Option<CanaryRun>,
}

/// A canary step, ready to run: after the apply (and its verification) succeed, a pause,
/// then the analysis; a failed analysis fails the component.
#[derive(Debug, Clone)]
pub struct CanaryRun {
    /// The step, counted from 1.
    pub step: u32,
    /// Steps in all.
    pub steps: u32,
    /// Its weight (0 for an abort).
    pub weight: u8,
    /// The wait before the analysis.
    pub pause: Duration,
    /// The analysis (steps but the last).
    pub analysis: Option<VerifySpec>,
}

/// How long a component's commands may run when `settings.<type>.timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Everything needed to run a plan.
#[derive(Debug)]
pub struct Prepared {
    /// Components that run, by name.
    pub components: HashMap<String, PreparedComponent>,
    /// The waves of the plan.
    pub waves: Vec<Vec<String>>,
    /// Apply or plan.
    pub step: Step,
    /// Folder of this rollout's logs.
    pub log_dir: PathBuf,
    /// Holds the vars files until the rollout ends.
    _scratch: tempfile::TempDir,
}

/// Progress, for live rendering.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A wave begins.
    Wave {
        /// 1-based.
        index: usize,
        /// Number of waves.
        total: usize,
        /// Components in it.
        components: Vec<String>,
    },
    /// A component's commands begin.
    Started {
        /// Component.
        component: String,
    },
    /// A command of a component begins.
    Command {
        /// Component.
        component: String,
        /// The command as typed.
        command: String,
    },
    /// A line of output.
    Output {
        /// Component.
        component: String,
        /// From stderr.
        stderr: bool,
        /// The line.
        line: String,
    },
    /// An attempt of a component's post-deploy verification begins.
    Verifying {
        /// Component.
        component: String,
        /// 1-based.
        attempt: u32,
        /// Attempts allowed.
        attempts: u32,
        /// The command as typed.
        command: String,
    },
    /// A canary step's apply succeeded; its analysis waits this long first.
    Pausing {
        /// Component.
        component: String,
        /// The step.
        step: u32,
        /// Its weight.
        weight: u8,
        /// The wait, in seconds.
        seconds: u64,
    },
    /// An attempt of a canary step's analysis begins.
    Analysing {
        /// Component.
        component: String,
        /// The step.
        step: u32,
        /// Its weight.
        weight: u8,
        /// 1-based.
        attempt: u32,
        /// Attempts allowed.
        attempts: u32,
        /// The command as typed.
        command: String,
    },
    /// A component is done.
    Finished {
        /// Component.
        component: String,
        /// How.
        outcome: Outcome,
        /// Wall time.
        duration_ms: u64,
    },
}

/// Where events go.
pub type Events = Arc<dyn Fn(Event) + Send + Sync>;

impl Prepared {
    /// Commands to run in `waves` (names of `components`, one wave per dependency layer).
    pub fn from_components(
        components: Vec<PreparedComponent>,
        waves: Vec<Vec<String>>,
        step: Step,
        log_dir: PathBuf,
        scratch: tempfile::TempDir,
    ) -> Prepared {
        Prepared {
            components: components
                .into_iter()
                .map(|c| (c.name.clone(), c))
                .collect(),
            waves,
            step,
            log_dir,
            _scratch: scratch,
        }
    }
}

/// Run every wave. Returns one run per component of the waves, in wave order.
pub async fn run(
    prepared: &Prepared,
    parallelism: usize,
    events: Events,
    cancel: watch::Receiver<bool>,
) -> Vec<ComponentRun> {
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut finished: HashMap<String, ComponentRun> = HashMap::new();
    let total = prepared.waves.len();
    let mut order = Vec::new();
    for (i, wave) in prepared.waves.iter().enumerate() {
        order.extend(wave.iter().cloned());
        // Decide who runs before announcing the wave, so its header comes first.
        let mut runnable = Vec::new();
        for name in wave {
            let Some(pc) = prepared.components.get(name) else {
                continue;
            };
            let blocked = pc.depends_on.iter().find(|dep| {
                finished
                    .get(*dep)
                    .is_some_and(|r| r.outcome != Outcome::Succeeded)
            });
            let skip_reason = if *cancel.borrow() {
                Some("the rollout was interrupted before it started".to_owned())
            } else {
                blocked.map(|dep| format!("depends on {dep}, which did not succeed"))
            };
            match skip_reason {
                Some(reason) => {
                    let outcome = Outcome::Skipped { reason };
                    events(Event::Finished {
                        component: name.clone(),
                        outcome: outcome.clone(),
                        duration_ms: 0,
                    });
                    finished.insert(
                        name.clone(),
                        ComponentRun {
                            name: name.clone(),
                            outcome,
                            duration_ms: 0,
                            log: None,
                            log_error: None,
                            commands: Vec::new(),
                            verification: None,
                            analysis: None,
                        },
                    );
                }
                None => runnable.push(pc.clone()),
            }
        }
        if !runnable.is_empty() {
            events(Event::Wave {
                index: i + 1,
                total,
                components: runnable.iter().map(|p| p.name.clone()).collect(),
            });
        }
        let mut tasks = tokio::task::JoinSet::new();
        for pc in runnable {
            let events = events.clone();
            let cancel = cancel.clone();
            let step = prepared.step;
            // Components start in wave order: the permit is taken before the task exists.
            let permit = limit.clone().acquire_owned().await;
            tasks.spawn(async move {
                let _permit = permit;
                run_component(pc, step, events, cancel).await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok(run) = joined {
                finished.insert(run.name.clone(), run);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|n| finished.remove(&n))
        .collect()
}

/// Run every wave to completion on a runtime of its own, SIGINT/SIGTERM turned into a
/// cancellation, handing each event to `observe` on the calling thread as it happens.
pub fn run_blocking(
    prepared: &Prepared,
    parallelism: usize,
    observe: &mut dyn FnMut(&Event),
) -> std::io::Result<Vec<ComponentRun>> {
    run_until(prepared, parallelism, observe, &|| false)
}

/// [`run_blocking`], also cancelled (as by a signal) once `stop` says so; it is asked every
/// half second (e.g. "is the target's lock still ours?").
pub fn run_until(
    prepared: &Prepared,
    parallelism: usize,
    observe: &mut dyn FnMut(&Event),
    stop: &dyn Fn() -> bool,
) -> std::io::Result<Vec<ComponentRun>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(async {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let cancel_tx = Arc::new(cancel_tx);
        let stopper = cancel_tx.clone();
        let signals = tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let term_recv = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term_recv => {}
            }
            let _ = cancel_tx.send(true);
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let sink: Events = Arc::new(move |event| {
            let _ = tx.send(event);
        });
        let running = run(prepared, parallelism, sink, cancel_rx);
        tokio::pin!(running);
        let mut ask = tokio::time::interval(Duration::from_millis(500));
        let runs = loop {
            tokio::select! {
                runs = &mut running => break runs,
                Some(event) = rx.recv() => observe(&event),
                _ = ask.tick() => if stop() {
                    let _ = stopper.send(true);
                },
            }
        };
        while let Ok(event) = rx.try_recv() {
            observe(&event);
        }
        signals.abort();
        runs
    }))
}

async fn run_component(
    pc: PreparedComponent,
    step: Step,
    events: Events,
    mut cancel: watch::Receiver<bool>,
) -> ComponentRun {
    let start = Instant::now();
    events(Event::Started {
        component: pc.name.clone(),
    });
    let mut log = RunLog::open(&pc.log);
    let mut outcome = Outcome::Succeeded;
    let mut shown = Vec::new();
    if pc.commands.is_empty() {
        log.line("(no command for this step)");
    }
    for spec in &pc.commands {
        let display = spec.display();
        shown.push(display.clone());
        log.line(&format!("$ {display}"));
        events(Event::Command {
            component: pc.name.clone(),
            command: display.clone(),
        });
        let deadline = tokio::time::Instant::from_std(start) + pc.timeout;
        let limit = Limit {
            deadline,
            length: pc.timeout,
            setting: "settings.<type>.timeout",
        };
        outcome = run_command(&pc, spec, step, &events, &mut cancel, &mut log, limit).await;
        if outcome != Outcome::Succeeded {
            break;
        }
    }
    let mut verification = None;
    if outcome == Outcome::Succeeded
        && step == Step::Apply
        && let Some(v) = &pc.verify
    {
        let (o, checked) = verify(&pc, v, Probe::Verify, &events, &mut cancel, &mut log).await;
        shown.push(format!("verify: {}", v.command.display()));
        outcome = o;
        verification = Some(checked);
    }
    let mut analysis = None;
    if outcome == Outcome::Succeeded
        && step == Step::Apply
        && let Some(c) = &pc.canary
        && let Some(a) = &c.analysis
    {
        if !c.pause.is_zero() {
            log.line(&format!(
                "# canary step {}/{} at {}%: pausing {} before the analysis",
                c.step,
                c.steps,
                c.weight,
                show_duration(c.pause)
            ));
            events(Event::Pausing {
                component: pc.name.clone(),
                step: c.step,
                weight: c.weight,
                seconds: c.pause.as_secs(),
            });
            tokio::select! {
                _ = tokio::time::sleep(c.pause) => {}
                _ = cancel.changed() => outcome = Outcome::Interrupted,
            }
        }
        if outcome == Outcome::Succeeded {
            let (o, checked) =
                verify(&pc, a, Probe::Analysis(c), &events, &mut cancel, &mut log).await;
            shown.push(format!("analysis: {}", a.command.display()));
            outcome = o;
            analysis = Some(checked);
        }
    }
    let duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    log.line(&format!("# outcome: {outcome:?} after {duration_ms} ms"));
    events(Event::Finished {
        component: pc.name.clone(),
        outcome: outcome.clone(),
        duration_ms,
    });
    ComponentRun {
        name: pc.name,
        outcome,
        duration_ms,
        log: log.error.is_none().then_some(pc.log),
        log_error: log.error,
        commands: shown,
        verification,
        analysis,
    }
}

/// What a probe run by [`verify`] is.
#[derive(Clone, Copy)]
enum Probe<'a> {
    /// `settings.<type>.verify`.
    Verify,
    /// A canary step's analysis.
    Analysis(&'a CanaryRun),
}

impl Probe<'_> {
    fn label(&self) -> String {
        match self {
            Probe::Verify => "verify".into(),
            Probe::Analysis(c) => format!(
                "canary analysis, step {}/{} at {}%",
                c.step, c.steps, c.weight
            ),
        }
    }

    fn setting(&self) -> &'static str {
        match self {
            Probe::Verify => "settings.<type>.verify.timeout",
            Probe::Analysis(_) => "strategy.canary.analysis.timeout",
        }
    }

    fn failed(&self) -> String {
        match self {
            Probe::Verify => "verification failed".into(),
            Probe::Analysis(c) => format!(
                "canary analysis failed at step {} of {} ({}%)",
                c.step, c.steps, c.weight
            ),
        }
    }
}

/// Run a verification until an attempt passes or none is left; the outcome is the
/// component's.
async fn verify(
    pc: &PreparedComponent,
    v: &VerifySpec,
    probe: Probe<'_>,
    events: &Events,
    cancel: &mut watch::Receiver<bool>,
    log: &mut RunLog,
) -> (Outcome, Verification) {
    let attempts = v.retries + 1;
    let mut last = Outcome::Succeeded;
    let mut made = 0;
    for attempt in 1..=attempts {
        made = attempt;
        let display = v.command.display();
        log.line(&format!(
            "# {}, attempt {attempt}/{attempts}: $ {display}",
            probe.label()
        ));
        events(match probe {
            Probe::Verify => Event::Verifying {
                component: pc.name.clone(),
                attempt,
                attempts,
                command: display,
            },
            Probe::Analysis(c) => Event::Analysing {
                component: pc.name.clone(),
                step: c.step,
                weight: c.weight,
                attempt,
                attempts,
                command: display,
            },
        });
        let limit = Limit {
            deadline: tokio::time::Instant::now() + v.timeout,
            length: v.timeout,
            setting: probe.setting(),
        };
        last = run_command(pc, &v.command, Step::Apply, events, cancel, log, limit).await;
        if matches!(last, Outcome::Succeeded | Outcome::Interrupted) || attempt == attempts {
            break;
        }
        log.line(&format!(
            "# {}; next attempt in {}",
            probe.failed(),
            show_duration(v.interval)
        ));
        tokio::select! {
            _ = tokio::time::sleep(v.interval) => {}
            _ = cancel.changed() => {
                last = Outcome::Interrupted;
                break;
            }
        }
    }
    let passed = last == Outcome::Succeeded;
    let outcome = match last {
        Outcome::Failed { error, exit_code } => Outcome::Failed {
            error: format!(
                "{} after {made} attempt{}: {error}",
                probe.failed(),
                crate::plural::s(made)
            ),
            exit_code,
        },
        other => other,
    };
    (
        outcome,
        Verification {
            passed,
            attempts: made,
            rollback: v.rollback,
        },
    )
}

/// How long a command may run, and which setting says so.
#[derive(Debug, Clone, Copy)]
struct Limit {
    deadline: tokio::time::Instant,
    length: Duration,
    setting: &'static str,
}

/// A component's log file. A write that fails (a full disk, a folder that cannot be made)
/// stops the logging and is remembered, so the run reports it instead of losing output
/// silently; the command itself goes on.
struct RunLog {
    file: Option<std::fs::File>,
    error: Option<String>,
}

impl RunLog {
    fn open(path: &Path) -> RunLog {
        let made = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(path));
        match made {
            Ok(file) => RunLog {
                file: Some(file),
                error: None,
            },
            Err(e) => RunLog {
                file: None,
                error: Some(format!("{} could not be created: {e}", path.display())),
            },
        }
    }

    fn line(&mut self, line: &str) {
        if let Some(f) = &mut self.file
            && let Err(e) = writeln!(f, "{line}")
        {
            self.error = Some(format!("writing the log failed: {e}"));
            self.file = None;
        }
    }
}

async fn run_command(
    pc: &PreparedComponent,
    spec: &CommandSpec,
    step: Step,
    events: &Events,
    cancel: &mut watch::Receiver<bool>,
    log: &mut RunLog,
    limit: Limit,
) -> Outcome {
    let deadline = limit.deadline;
    if *cancel.borrow() {
        return Outcome::Interrupted;
    }
    let token = super::strays::token(&pc.name);
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env(super::strays::RUN_ENV, &token)
        .current_dir(&spec.cwd)
        .envs(pc.env.iter().map(|(k, v)| (k, v)))
        // The signing key stays with atmos.
        .env_remove(crate::signing::KEY_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let error = format!("cannot start `{}`: {e}", spec.program.display());
            log.line(&error);
            return Outcome::Failed {
                error,
                exit_code: None,
            };
        }
    };
    let pid = child.id();
    // Bounded: a command that writes faster than it is logged waits for the log.
    let (tx, mut rx) = mpsc::channel::<(bool, String)>(OUTPUT_QUEUE);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pipe_lines(out, false, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pipe_lines(err, true, tx.clone()));
    }
    drop(tx);
    let mut interrupted = false;
    let mut timed_out = false;
    let emit = |stderr: bool, line: String, log: &mut RunLog| {
        log.line(&line);
        events(Event::Output {
            component: pc.name.clone(),
            stderr,
            line,
        });
    };
    let status = loop {
        tokio::select! {
            // A process that already exited wins over a signal that arrives with it.
            biased;
            Some((stderr, line)) = rx.recv() => emit(stderr, line, log),
            status = child.wait() => break status,
            changed = cancel.changed(), if !interrupted => {
                if changed.is_err() || *cancel.borrow() {
                    interrupted = true;
                    stop(pid, &mut child).await;
                }
            }
            _ = tokio::time::sleep_until(deadline), if !interrupted && !timed_out => {
                timed_out = true;
                log.line(&format!("# timed out after {}: stopping the command's processes", show_duration(limit.length)));
                stop(pid, &mut child).await;
            }
        }
    };
    // Keep what is left in the pipes for a moment. The command has exited: whatever it left
    // running in its process group (`cmd &`) would hold the pipes open forever, so it is
    // stopped once the moment is over.
    let deadline = tokio::time::Instant::now() + DRAIN;
    loop {
        tokio::select! {
            biased;
            line = rx.recv() => match line {
                Some((stderr, line)) => emit(stderr, line, log),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => {
                if let Some(group) = pid.and_then(|p| i32::try_from(p).ok()) {
                    use nix::sys::signal::{Signal, killpg};
                    let group = nix::unistd::Pid::from_raw(group);
                    if killpg(group, Signal::SIGTERM).is_ok() {
                        log.line("# stopped the processes the command left running in the background");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        let _ = killpg(group, Signal::SIGKILL);
                    }
                }
                // And those that left the group: nothing of the command may keep writing.
                let strays = super::strays::stop(&token).await;
                if strays > 0 {
                    log.line(&format!(
                        "# stopped {strays} process{} the command left running outside its process group",
                        if strays == 1 { "" } else { "es" }
                    ));
                }
                // What they wrote before they stopped, within a bound.
                let until = tokio::time::Instant::now() + Duration::from_secs(2);
                while let Ok(Some((stderr, line))) = tokio::time::timeout_at(
                    until.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                    rx.recv(),
                )
                .await
                {
                    emit(stderr, line, log);
                }
                break;
            }
            // Stopping atmos stops the wait too; the command itself had already finished.
            changed = cancel.changed(), if !interrupted => {
                if changed.is_err() || *cancel.borrow() {
                    if let Some(group) = pid.and_then(|p| i32::try_from(p).ok()) {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(group),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    break;
                }
            }
        }
    }
    // What left the process group (`setsid`, a double fork) is found by its token.
    let strays = super::strays::stop(&token).await;
    if strays > 0 {
        log.line(&format!(
            "# stopped {strays} process{} the command left running outside its process group",
            if strays == 1 { "" } else { "es" }
        ));
    }
    match status {
        _ if interrupted => Outcome::Interrupted,
        _ if timed_out => Outcome::Failed {
            exit_code: None,
            error: format!(
                "`{}` timed out after {} ({}) and was stopped",
                short_command(spec),
                show_duration(limit.length),
                limit.setting
            ),
        },
        Ok(s) if s.success() => Outcome::Succeeded,
        // A plan that exits 2 ran and found changes to make (terraform/helmfile convention).
        Ok(s) if step == Step::Plan && s.code() == Some(2) => Outcome::Succeeded,
        Ok(s) => Outcome::Failed {
            exit_code: s.code(),
            error: match s.code() {
                Some(code) => format!("`{}` exited with status {code}", short_command(spec)),
                None => format!("`{}` was killed by a signal", short_command(spec)),
            },
        },
        Err(e) => Outcome::Failed {
            exit_code: None,
            error: format!("waiting for `{}` failed: {e}", short_command(spec)),
        },
    }
}

/// How long output is still read after a command exits, from what it left running.
const DRAIN: Duration = Duration::from_secs(2);

/// Forward a pipe line by line. Output is bytes: a line that is not UTF-8 is shown with
/// replacement characters, and reading never stops before the pipe closes (a reader that
/// stopped would kill the writer with SIGPIPE).
/// The longest line of a command's output kept as one line: longer ones (output without
/// newlines) are cut into lines of this many bytes, so memory stays bounded whatever a
/// command writes.
pub const OUTPUT_LINE_MAX: usize = 16 * 1024;

/// Lines read ahead of the log.
const OUTPUT_QUEUE: usize = 256;

async fn pipe_lines(
    pipe: impl tokio::io::AsyncRead + Unpin,
    stderr: bool,
    tx: mpsc::Sender<(bool, String)>,
) {
    let mut reader = BufReader::with_capacity(OUTPUT_LINE_MAX, pipe);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let send = |line: &mut Vec<u8>| {
        while line.last().is_some_and(|b| *b == b'\r') {
            line.pop();
        }
        let text = String::from_utf8_lossy(line).into_owned();
        line.clear();
        text
    };
    loop {
        let available = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let room = OUTPUT_LINE_MAX - line.len();
        let (taken, ends) = match available.iter().take(room).position(|b| *b == b'\n') {
            Some(at) => {
                line.extend_from_slice(&available[..at]);
                (at + 1, true)
            }
            None => {
                let n = available.len().min(room);
                line.extend_from_slice(&available[..n]);
                (n, line.len() >= OUTPUT_LINE_MAX)
            }
        };
        reader.consume(taken);
        if ends && tx.send((stderr, send(&mut line))).await.is_err() {
            return;
        }
    }
    if !line.is_empty() {
        let _ = tx.send((stderr, send(&mut line))).await;
    }
}

fn short_command(spec: &CommandSpec) -> String {
    let d = spec.display();
    if d.chars().count() > 80 {
        format!("{}…", d.chars().take(80).collect::<String>())
    } else {
        d
    }
}

/// SIGTERM the process group, then SIGKILL it if it is still there after a grace period.
/// `90s`, `45m`, `2h`: a timeout as a setting would write it.
fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) && s > 0 {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

async fn stop(pid: Option<u32>, child: &mut tokio::process::Child) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        let _ = child.start_kill();
        return;
    };
    let group = Pid::from_raw(pid);
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = killpg(group, Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_without_newlines_is_cut_into_bounded_lines() {
        let mut data = vec![b'x'; OUTPUT_LINE_MAX * 3 + 10];
        data.extend_from_slice(b"\nend\r\nlast");
        let (tx, mut rx) = mpsc::channel(2);
        let reader = tokio::spawn(pipe_lines(std::io::Cursor::new(data), true, tx));
        let mut lengths = Vec::new();
        let mut text = Vec::new();
        while let Some((stderr, line)) = rx.recv().await {
            assert!(stderr);
            lengths.push(line.len());
            text.push(line);
        }
        reader.await.expect("reader");
        assert_eq!(
            lengths,
            [OUTPUT_LINE_MAX, OUTPUT_LINE_MAX, OUTPUT_LINE_MAX, 10, 3, 4]
        );
        assert_eq!(&text[4..], ["end", "last"]);
    }
}
