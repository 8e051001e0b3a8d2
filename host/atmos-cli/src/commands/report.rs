//! `atmos deployment report [<d>...] --html DIR [--commit-url TEMPLATE]`, or `--format json`.

use atmos_core::exit::Exit;

use crate::cli::{Format, ReportArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::board::{self, Links};

/// Build the board; write the site and/or print the document.
pub fn run(args: &ReportArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "report")?;
    if args.html.is_none() && ctx.out.format == Format::Table {
        return Err(Failure::usage(
            "report needs somewhere to go",
            Some("add --html DIR to write the site, or --format json to print the board".into()),
        ));
    }
    // An empty template (an unset CI variable) means no links.
    let commit_url = args.commit_url.clone().filter(|t| !t.is_empty());
    if let Some(t) = &commit_url
        && !(t.contains("{sha}")
            && (t.starts_with("https://") || t.starts_with("http://"))
            && !t
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>\"'`".contains(c)))
    {
        return Err(Failure::usage(
            format!("--commit-url `{t}` is not a web address with {{sha}} in it"),
            Some("e.g. --commit-url 'https://github.com/org/repo/commit/{sha}'".into()),
        ));
    }
    // Each name is checked, so that a typo is a did-you-mean, not a missing page.
    let project = match args.deployments.first() {
        Some(_) => {
            for name in &args.deployments {
                ctx.deployment(name)?;
            }
            ctx.project()?
        }
        None => ctx.project()?,
    };
    let only = (args.deployments.len() == 1).then(|| args.deployments[0].as_str());
    ctx.refresh(&project, &args.fetch, only)?;
    let git = ctx.git(&project)?;
    let catalog = project.load_all()?;
    for (broken, _) in &catalog.broken {
        ctx.out.warn(&format!(
            "skipped deployment `{broken}`: its file is invalid (run `atmos deployment validate {broken}`)"
        ));
    }
    let board =
        atmos_core::board::board(&git, &catalog, &project, &args.deployments, generated_at()?)?;
    if let Some(dir) = &args.html {
        let links = Links { commit_url };
        let mut pages = vec![("index.html".to_owned(), board::index(&board, &links))];
        for d in &board.deployments {
            pages.push((
                board::page_file(&d.name),
                board::deployment(&board, d, &links),
            ));
        }
        let io = |path: &std::path::Path| {
            let path = path.to_owned();
            move |source| atmos_core::workflow::WorkflowError::Io { path, source }
        };
        if dir.exists() && !dir.is_dir() {
            return Err(Failure::usage(
                format!("--html {} is a file, not a folder", dir.display()),
                Some("name a folder for the site (it is created when missing)".into()),
            ));
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        // Each page is written beside its place and renamed into it: a link (or anything)
        // already at that name is replaced, never written through.
        for (name, html) in &pages {
            let path = dir.join(name);
            let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            // `create_new` refuses anything already there, a link included.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io(&tmp))?;
            std::io::Write::write_all(&mut file, html.as_bytes()).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
        }
        // Pages of deployments no longer on the board go, so nothing stale stays published.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("deployment-")
                    && name.ends_with(".html")
                    && !pages.iter().any(|(p, _)| *p == name)
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let line = format!(
            "Wrote the board of {} deployment{} ({} pages) to {}; open {}\n",
            board.deployments.len(),
            if board.deployments.len() == 1 {
                ""
            } else {
                "s"
            },
            pages.len(),
            dir.display(),
            dir.join("index.html").display()
        );
        if ctx.out.format == Format::Table {
            ctx.out.print(&line)?;
            return Ok(Exit::Done);
        }
        ctx.out.eprint(&line);
    }
    ctx.print_document(&board)?;
    Ok(Exit::Done)
}

/// When the board is generated: now, or `SOURCE_DATE_EPOCH` (seconds since 1970) where a
/// build pins its time, so that the same repository gives the same bytes.
fn generated_at() -> Result<String, Failure> {
    let now = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(secs) => secs
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .ok_or_else(|| {
                Failure::usage(
                    format!("SOURCE_DATE_EPOCH `{secs}` is not a number of seconds since 1970"),
                    Some("unset it, or set it to e.g. `date +%s`".into()),
                )
            })?,
        Err(_) => jiff::Timestamp::now(),
    };
    Ok(atmos_core::contracts::layout::rfc3339(now))
}
