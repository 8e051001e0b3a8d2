//! Running a plan: resolve every tool first (so a missing one stops the rollout before
//! anything changes), lay out each component's files (the deployed commit's tree and a vars
//! file), then run the waves, each wave's components concurrently up to a limit. Output is
//! streamed as events and kept in a log file per component. SIGINT/SIGTERM (signalled by the
//! caller through `cancel`) stop the running process groups; components not started are
//! skipped.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, mpsc, watch};

use super::{ComponentRun, Outcome, RolloutError, RolloutPlan};
use crate::config::LoadedDeployment;
use crate::config::merge::merge_vars;
use crate::executor::{self, CommandSpec, Invocation, Step};
use crate::git::GitRepo;

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
}

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
#[derive(Debug, Clone, Serialize)]
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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RolloutError + '_ {
    move |source| RolloutError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Prepared {
    /// Commands prepared elsewhere (builds), run in one wave per dependency layer.
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

/// Resolve tools, check out commits, write vars files, build commands. Nothing has run yet
/// when this fails.
pub fn prepare(
    loaded: &LoadedDeployment,
    project_root: &Path,
    git: &GitRepo,
    plan: &RolloutPlan,
    step: Step,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Prepared, RolloutError> {
    let d = &loaded.deployment;
    let target = &d.targets[&plan.target];
    let scratch = tempfile::Builder::new()
        .prefix("atmos-rollout-")
        .tempdir()
        .map_err(io_err(Path::new("temporary folder")))?;
    let log_dir = git
        .git_dir()
        .join("atmos")
        .join("logs")
        .join(&plan.deployment)
        .join(&plan.target)
        .join(format!(
            "{}-{}",
            crate::contracts::layout::timestamp_segment(
                plan.started_at
                    .parse()
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            ),
            step_name(step)
        ));
    // Where the project sits inside the work tree, to find it inside a checkout.
    let relative = git
        .workdir()
        .and_then(|w| {
            let w = w.canonicalize().ok()?;
            project_root.strip_prefix(&w).ok().map(Path::to_owned)
        })
        .unwrap_or_default();
    let head = git.head_commit();
    let clean = git.is_clean()?;

    let mut components = HashMap::new();
    let mut roots: HashMap<String, PathBuf> = HashMap::new();
    for wave in &plan.waves {
        for name in wave {
            let Some(planned) = plan.component(name) else {
                continue;
            };
            let Some(c) = d.components.by_name(name) else {
                continue;
            };
            let tool = executor::resolve_tool(&c, project_root, env)?;
            let root = match roots.get(&planned.new) {
                Some(r) => r.clone(),
                None => {
                    // The work tree is the deployed tree only when it is exactly HEAD.
                    let r = if clean && head.as_deref() == Some(planned.new.as_str()) {
                        project_root.to_owned()
                    } else {
                        git.checkout(&planned.new)?.join(&relative)
                    };
                    roots.insert(planned.new.clone(), r.clone());
                    r
                }
            };
            let dir = scratch.path().join(name.replace('/', "__"));
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let vars = merge_vars(d, &c, target).values;
            let vars_file = dir.join("vars.json");
            let json = serde_json::to_vec_pretty(&vars).unwrap_or_default();
            std::fs::write(&vars_file, &json).map_err(io_err(&vars_file))?;
            let tfvars = executor::tfvars_path(&vars_file);
            std::fs::write(&tfvars, &json).map_err(io_err(&tfvars))?;
            let inv = Invocation {
                component: c,
                target: &plan.target,
                git_sha: &planned.new,
                root: &root,
                vars_file: &vars_file,
            };
            let commands = executor::commands(&inv, step, tool.as_deref())?;
            let running: Vec<String> = plan.waves.iter().flatten().cloned().collect();
            let depends_on = planned
                .depends_on
                .iter()
                .filter_map(|id| id.split_once('/').map(|(_, n)| n.to_owned()))
                .filter(|n| running.contains(n))
                .collect();
            let env_vars = vec![
                ("ATMOS_DEPLOYMENT".to_owned(), plan.deployment.clone()),
                ("ATMOS_TARGET".to_owned(), plan.target.clone()),
                ("ATMOS_COMPONENT".to_owned(), name.clone()),
                ("ATMOS_COMPONENT_TYPE".to_owned(), c.kind.to_string()),
                ("ATMOS_GIT_SHA".to_owned(), planned.new.clone()),
                (
                    "ATMOS_VARS_FILE".to_owned(),
                    vars_file.display().to_string(),
                ),
                ("ATMOS_STEP".to_owned(), step_name(step).to_owned()),
            ];
            components.insert(
                name.clone(),
                PreparedComponent {
                    name: name.clone(),
                    depends_on,
                    commands,
                    env: env_vars,
                    log: log_dir.join(format!("{name}.log")),
                },
            );
        }
    }
    Ok(Prepared {
        components,
        waves: plan.waves.clone(),
        step,
        log_dir,
        _scratch: scratch,
    })
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Apply => "apply",
        Step::Plan => "plan",
        Step::Drift => "drift",
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
                            commands: Vec::new(),
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
            let limit = limit.clone();
            let step = prepared.step;
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
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
    let mut log = open_log(&pc.log);
    let mut outcome = Outcome::Succeeded;
    let mut shown = Vec::new();
    if pc.commands.is_empty() {
        log_line(&mut log, "(no command for this step)");
    }
    for spec in &pc.commands {
        let display = spec.display();
        shown.push(display.clone());
        log_line(&mut log, &format!("$ {display}"));
        events(Event::Command {
            component: pc.name.clone(),
            command: display.clone(),
        });
        outcome = run_command(&pc, spec, step, &events, &mut cancel, &mut log).await;
        if outcome != Outcome::Succeeded {
            break;
        }
    }
    let duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    log_line(
        &mut log,
        &format!("# outcome: {outcome:?} after {duration_ms} ms"),
    );
    events(Event::Finished {
        component: pc.name.clone(),
        outcome: outcome.clone(),
        duration_ms,
    });
    ComponentRun {
        name: pc.name,
        outcome,
        duration_ms,
        log: log.is_some().then_some(pc.log),
        commands: shown,
    }
}

fn open_log(path: &Path) -> Option<std::fs::File> {
    let parent = path.parent()?;
    std::fs::create_dir_all(parent).ok()?;
    std::fs::File::create(path).ok()
}

fn log_line(log: &mut Option<std::fs::File>, line: &str) {
    if let Some(f) = log {
        let _ = writeln!(f, "{line}");
    }
}

async fn run_command(
    pc: &PreparedComponent,
    spec: &CommandSpec,
    step: Step,
    events: &Events,
    cancel: &mut watch::Receiver<bool>,
    log: &mut Option<std::fs::File>,
) -> Outcome {
    if *cancel.borrow() {
        return Outcome::Interrupted;
    }
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(pc.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let error = format!("cannot start `{}`: {e}", spec.program.display());
            log_line(log, &error);
            return Outcome::Failed {
                error,
                exit_code: None,
            };
        }
    };
    let pid = child.id();
    let (tx, mut rx) = mpsc::unbounded_channel::<(bool, String)>();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send((false, line));
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send((true, line));
            }
        });
    }
    drop(tx);
    let mut interrupted = false;
    let emit = |stderr: bool, line: String, log: &mut Option<std::fs::File>| {
        log_line(log, &line);
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
        }
    };
    // Keep what is left in the pipes; a background process that keeps them open does not
    // hold the rollout for more than a moment.
    while let Ok(Some((stderr, line))) =
        tokio::time::timeout(Duration::from_secs(2), rx.recv()).await
    {
        emit(stderr, line, log);
    }
    match status {
        _ if interrupted => Outcome::Interrupted,
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

fn short_command(spec: &CommandSpec) -> String {
    let d = spec.display();
    if d.chars().count() > 80 {
        format!("{}…", d.chars().take(80).collect::<String>())
    } else {
        d
    }
}

/// SIGTERM the process group, then SIGKILL it if it is still there after a grace period.
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
