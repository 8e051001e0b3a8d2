//! `status --check-health`: each deployed component's `settings.<type>.health` command, run
//! in an export of the commit the target runs (the deployment file as of that commit says
//! what to run), with the same `ATMOS_*` variables as its executor and a timeout. The command
//! prints `{"status": "healthy"|"degraded"|"unhealthy", "detail": "3/3 pods"}`; anything else
//! is `unknown` with the reason. The result is kept in `.git/atmos/health` (observed health
//! is not history: it is never pushed, and gates do not read it).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::probes::Health as HealthCommand;
use crate::config::{LoadedDeployment, Project};
use crate::git::GitRepo;
use crate::status::{Health, HealthStatus, StatusReport, health_file};
use crate::workflow::error::WorkflowError;

/// How much of the end of a health command's output is kept.
const OUTPUT_CAP: usize = 64 * 1024;

struct Job {
    target: String,
    component: String,
    commit: String,
    command: HealthCommand,
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WorkflowError + '_ {
    move |source| WorkflowError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Run the health command of every deployed component in `report` (all at once), keep each
/// result, and put it in the report. Components without a health command keep `None`.
pub fn check(
    project: &Project,
    git: &GitRepo,
    loaded: &LoadedDeployment,
    report: &mut StatusReport,
) -> Result<(), WorkflowError> {
    let d = &loaded.deployment;
    let scratch =
        crate::scratch::dir("atmos-health-").map_err(io_err(Path::new("temporary folder")))?;
    let relative = super::trust::project_in_repo(git, &project.root);
    let mut configs: BTreeMap<String, LoadedDeployment> = BTreeMap::new();
    let mut roots: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut jobs = Vec::new();
    for t in &report.targets {
        for c in t.components.iter().filter(|c| c.in_config) {
            let Some(commit) = &c.commit else { continue };
            if !configs.contains_key(commit) {
                let cfg = super::rollout::plan::deployed_config(
                    git, &relative, project, &d.name, commit,
                )?;
                configs.insert(commit.clone(), cfg);
            }
            let deployed = configs[commit].deployment.for_target(&t.target);
            let deployed = deployed.as_ref();
            let Some(component) = deployed.components.by_name(&c.component) else {
                continue;
            };
            let Some(command) = component
                .health()
                .map_err(|problem| WorkflowError::Setting { problem })?
            else {
                continue;
            };
            let root = match roots.get(commit) {
                Some(r) => r.clone(),
                None => {
                    let tree = scratch
                        .path()
                        .join(".trees")
                        .join(crate::git::short(commit));
                    git.export_commit(commit, &tree)?;
                    let r = tree.join(&relative);
                    roots.insert(commit.clone(), r.clone());
                    r
                }
            };
            let empty = crate::config::Target::default();
            let target = deployed.targets.get(&t.target).unwrap_or(&empty);
            let vars = crate::config::merge::merge_vars(deployed, &component, target).values;
            let vars_file = scratch
                .path()
                .join(format!("{}--{}.json", t.target, c.component));
            std::fs::write(
                &vars_file,
                serde_json::to_vec_pretty(&vars).unwrap_or_default(),
            )
            .map_err(io_err(&vars_file))?;
            jobs.push(Job {
                target: t.target.clone(),
                component: c.component.clone(),
                commit: commit.clone(),
                command,
                cwd: root,
                env: vec![
                    ("ATMOS_DEPLOYMENT".into(), d.name.clone()),
                    ("ATMOS_TARGET".into(), t.target.clone()),
                    ("ATMOS_COMPONENT".into(), c.component.clone()),
                    ("ATMOS_COMPONENT_TYPE".into(), component.kind.to_string()),
                    ("ATMOS_GIT_SHA".into(), commit.clone()),
                    ("ATMOS_VARS_FILE".into(), vars_file.display().to_string()),
                    ("ATMOS_STEP".into(), "health".into()),
                ],
            });
        }
    }
    let results: Vec<Health> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs.iter().map(|j| s.spawn(move || run(j))).collect();
        handles
            .into_iter()
            .zip(&jobs)
            .map(|(h, j)| {
                h.join().unwrap_or_else(|_| Health {
                    status: HealthStatus::Unknown,
                    detail: Some("the health check crashed".into()),
                    checked_at: now(),
                    git_sha: j.commit.clone(),
                })
            })
            .collect()
    });
    for (job, health) in jobs.iter().zip(results) {
        let file = health_file(git, &d.name, &job.target, &job.component);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let json = serde_json::to_vec_pretty(&health).unwrap_or_default();
        std::fs::write(&file, json).map_err(io_err(&file))?;
        if let Some(c) = report
            .targets
            .iter_mut()
            .filter(|t| t.target == job.target)
            .flat_map(|t| t.components.iter_mut())
            .find(|c| c.component == job.component)
        {
            c.health = Some(health);
        }
    }
    Ok(())
}

fn now() -> String {
    crate::contracts::layout::rfc3339(jiff::Timestamp::now())
}

/// Run one health command to its verdict.
fn run(job: &Job) -> Health {
    let verdict = |status, detail: String| Health {
        status,
        detail: Some(detail),
        checked_at: now(),
        git_sha: job.commit.clone(),
    };
    let mut child = match Command::new("sh")
        .args(["-c", &job.command.command])
        .current_dir(&job.cwd)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .env_remove(crate::signing::KEY_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return verdict(HealthStatus::Unknown, format!("cannot start sh: {e}")),
    };
    // Everything is read (a writer that found the pipe closed would die of SIGPIPE); the
    // last 64 KiB are kept, where the verdict is.
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut kept: std::collections::VecDeque<u8> = Default::default();
            if let Some(mut p) = pipe {
                let mut buf = [0u8; 8192];
                while let Ok(n) = p.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    kept.extend(&buf[..n]);
                    let over = kept.len().saturating_sub(OUTPUT_CAP);
                    kept.drain(..over);
                }
            }
            String::from_utf8_lossy(kept.make_contiguous()).into_owned()
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + job.command.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => break None,
        }
    };
    // Whatever it left running goes too (so the pipes close).
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.wait();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let Some(status) = status else {
        return verdict(
            HealthStatus::Unknown,
            format!(
                "the health command did not answer within {}s (settings.<type>.health.timeout)",
                job.command.timeout.as_secs()
            ),
        );
    };
    if let Some((s, detail)) = parse(&stdout) {
        return Health {
            status: s,
            detail,
            checked_at: now(),
            git_sha: job.commit.clone(),
        };
    }
    let last = |text: &str| {
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.chars().take(200).collect::<String>())
    };
    match status.code() {
        Some(0) => verdict(
            HealthStatus::Unknown,
            "the health command printed no verdict (expected {\"status\": \"healthy\", \"detail\": …})"
                .into(),
        ),
        code => verdict(
            HealthStatus::Unhealthy,
            format!(
                "the health command {}{}",
                code.map_or("was killed".to_owned(), |c| format!("exited with status {c}")),
                last(&stderr)
                    .or_else(|| last(&stdout))
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default()
            ),
        ),
    }
}

/// `{"status": …, "detail": …}`: the whole output, or its last line that is such a document.
fn parse(stdout: &str) -> Option<(HealthStatus, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Said {
        status: String,
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    let one = |text: &str| -> Option<(HealthStatus, Option<String>)> {
        let said: Said = serde_json::from_str(text.trim()).ok()?;
        let status = match said.status.to_ascii_lowercase().as_str() {
            "healthy" => HealthStatus::Healthy,
            "degraded" => HealthStatus::Degraded,
            "unhealthy" => HealthStatus::Unhealthy,
            _ => return None,
        };
        let detail = said.detail.map(|d| match d {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        // Shown in a terminal table: one line, printable, bounded.
        let detail = detail.as_deref().map(crate::status::clean_detail);
        Some((status, detail))
    };
    one(stdout).or_else(|| stdout.lines().rev().find_map(one))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_from_the_whole_output_or_its_last_document() {
        assert_eq!(
            parse(r#"{"status": "healthy", "detail": "3/3 pods"}"#),
            Some((HealthStatus::Healthy, Some("3/3 pods".into())))
        );
        assert_eq!(
            parse("checking…\n{\"status\":\"Degraded\",\"detail\":\"1/3\\u001b[31m\\u202e\"}\n"),
            Some((HealthStatus::Degraded, Some("1/3 [31m".into())))
        );
        assert_eq!(parse(r#"{"status": "fine"}"#), None);
        assert_eq!(parse("ok"), None);
    }
}
