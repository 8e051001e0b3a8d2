//! `atmos deployment logs <d> [--target t] [--component c] [--rollout ID | --git-sha X]
//! [--follow]`.

use std::io::{BufRead, Seek};
use std::time::{Duration, Instant};

use atmos_core::exit::Exit;
use atmos_core::logs::{self, LogsReport, Selector};
use atmos_core::workflow::resolve_target;

use crate::cli::{Format, LogsArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::table::visible;

/// Show a rollout's executor output.
pub fn run(args: &LogsArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "logs")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let d = &loaded.deployment;
    let target = resolve_target(d, args.target.as_deref(), "logs")?;
    if let Some(c) = &args.component
        && d.components.by_name(c).is_none()
    {
        return Err(Failure::usage(
            format!("deployment `{}` has no component `{c}`", d.name),
            Some(format!(
                "its components: {}",
                d.components
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ));
    }
    let git = ctx.git(&project)?;
    if args.follow {
        return follow(ctx, &git, &d.name, &target, args.component.as_deref());
    }
    ctx.refresh(&project, &args.fetch, Some(&d.name))?;
    let report = logs::read(
        &git,
        &d.name,
        &target,
        &Selector {
            component: args.component.clone(),
            rollout: args.rollout.clone(),
            // A ref or short sha, as `rollout --git-sha` takes it.
            git_sha: args
                .git_sha
                .as_deref()
                .map(|spec| git.resolve_commit(spec))
                .transpose()?,
        },
    )?;
    if !ctx.print_document(&report)? {
        ctx.out.print(&render(&report, ctx))?;
    }
    Ok(Exit::Done)
}

fn render(r: &LogsReport, ctx: &Context) -> String {
    let s = &ctx.out.out_style;
    let mut out = format!(
        "Rollout {} of {} to {} by {} at {}\n",
        r.rollout, r.deployment, r.target, r.deployed_by, r.started_at
    );
    for c in &r.components {
        out.push_str(&format!(
            "\n{} {} ({}, {})\n",
            s.bold("==="),
            s.bold(&c.component),
            c.status.as_str(),
            atmos_core::git::short(&c.git_sha)
        ));
        match &c.log {
            Some(text) => {
                for line in text.lines() {
                    out.push_str(&format!("  {}\n", visible(line)));
                }
            }
            None => out.push_str("  (no log kept with this record)\n"),
        }
    }
    out
}

/// Tail the newest local run's log files until nothing has grown for a while and the
/// target's lock is gone (the rollout ended).
fn follow(
    ctx: &Context,
    git: &atmos_core::git::GitRepo,
    deployment: &str,
    target: &str,
    component: Option<&str>,
) -> Result<Exit, Failure> {
    let Some(run) = logs::newest_local_run(git.git_dir(), deployment, target) else {
        return Err(Failure::usage(
            format!("no rollout of {deployment} to {target} has run in this clone"),
            Some(format!(
                "without --follow, `atmos deployment logs {deployment} --target {target}` shows the newest recorded rollout"
            )),
        ));
    };
    ctx.out.eprint(&format!("following {}\n", run.display()));
    let mut offsets: std::collections::BTreeMap<std::path::PathBuf, u64> = Default::default();
    let mut quiet_since = Instant::now();
    loop {
        let mut grew = false;
        let mut files: Vec<_> = std::fs::read_dir(&run)
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        for path in files {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if path.extension().is_none_or(|e| e != "log") || component.is_some_and(|c| c != name) {
                continue;
            }
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            let offset = offsets.entry(path.clone()).or_default();
            if file.seek(std::io::SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            let mut reader = std::io::BufReader::new(file);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if !line.ends_with(b"\n") {
                    break; // a line still being written: read it whole next time
                }
                *offset += line.len() as u64;
                let text = String::from_utf8_lossy(&line);
                ctx.out.print(&format!(
                    "  {name} │ {}\n",
                    visible(text.trim_end_matches('\n'))
                ))?;
                line.clear();
                grew = true;
            }
        }
        if grew {
            quiet_since = Instant::now();
        }
        // Done when the run's lock is gone or has lapsed (a killed rollout), or when every
        // component's log has its closing outcome line and nothing was written for a while.
        let live = atmos_core::git::lock::status(
            git,
            atmos_core::git::lock::Store::Local,
            deployment,
            target,
        )
        .ok()
        .flatten()
        .is_some_and(|(_, l)| l.is_ok_and(|l| !l.expired(jiff::Timestamp::now())));
        let quiet = quiet_since.elapsed();
        if (!live && quiet > Duration::from_millis(600))
            || (quiet > Duration::from_secs(2) && all_closed(&run))
        {
            return Ok(Exit::Done);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// True when every component log of the run ends with its `# outcome:` line.
fn all_closed(run: &std::path::Path) -> bool {
    let logs: Vec<_> = std::fs::read_dir(run)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .collect()
        })
        .unwrap_or_default();
    !logs.is_empty()
        && logs.iter().all(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| {
                t.lines()
                    .last()
                    .is_some_and(|l| l.starts_with("# outcome:"))
            })
        })
}
