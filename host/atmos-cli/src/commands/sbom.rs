//! `atmos deployment sbom <d> --target t | --git-sha s [--output FILE] [--summary]`.

use atmos_core::exit::Exit;
use atmos_core::sbom;

use crate::cli::{Format, SbomArgs};
use crate::context::Context;
use crate::failure::Failure;

/// Show, export or summarise an SBOM.
pub fn run(args: &SbomArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "sbom")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let d = &loaded.deployment;
    let git = ctx.git(&project)?;
    let (commit, what) = match (&args.git_sha, &args.target) {
        (Some(sha), _) => (git.resolve_commit(sha)?, format!("commit {sha}")),
        (None, target) => {
            let t = atmos_core::workflow::resolve_target(d, target.as_deref(), "sbom")?;
            let mut commits: Vec<String> = git
                .state_refs(&d.name, Some(&t))?
                .into_iter()
                .map(|s| s.commit)
                .collect();
            commits.sort();
            commits.dedup();
            let commit = git.newest_commit(&commits)?.ok_or_else(|| {
                Failure::usage(
                    format!("{t} runs nothing yet"),
                    Some(format!("roll out to {t} first, or pass --git-sha")),
                )
            })?;
            (commit, t)
        }
    };
    let json = sbom::load(&git, &d.name, &commit)?.ok_or_else(|| {
        Failure::usage(
            format!("no SBOM recorded for {} at {}", d.name, &commit[..9]),
            Some(format!(
                "build it: atmos deployment build {} (on that commit)",
                d.name
            )),
        )
    })?;
    if let Some(path) = &args.output {
        std::fs::write(path, &json).map_err(|e| {
            Failure::from(std::io::Error::new(
                e.kind(),
                format!("cannot write {}: {e}", path.display()),
            ))
        })?;
        ctx.out.eprint(&format!(
            "Wrote {} ({} bytes)\n",
            path.display(),
            json.len()
        ));
        if !args.summary {
            return Ok(Exit::Done);
        }
    }
    if !args.summary {
        let mut text = json;
        text.push('\n');
        ctx.out.print(&text)?;
        return Ok(Exit::Done);
    }
    let s = sbom::summarize(&json)?;
    let text = ctx.out.structured(&s).unwrap_or_else(|| {
        let mut out = format!("{} → {what} SBOM\n\n", d.name);
        out.push_str(&format!("Commit: {}\n", &s.commit[..s.commit.len().min(9)]));
        out.push_str(&format!("Generated: {}\n", s.generated.as_deref().map(crate::render::time::minute).unwrap_or_else(|| "-".into())));
        out.push_str(&format!("Format: {}\n\n", s.format));
        out.push_str(&format!("Components: {}\n", s.components.len()));
        let w = s.components.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &s.components {
            let kind = match (&c.image, c.kind.as_str()) {
                (Some(_), _) | (None, "container") => "docker image",
                _ => "application",
            };
            let digest = c.digest.as_deref().map(|d| format!(", {}", atmos_core::git::prefix(d, 19))).unwrap_or_default();
            out.push_str(&format!("  {:<w$}  ({kind}{digest}), {} dependencies\n", c.name, c.dependencies));
        }
        out.push_str(&format!("\nDependencies: {} total\n", s.dependencies));
        for dep in s.top_dependencies.iter().take(5) {
            out.push_str(&format!("  {dep}\n"));
        }
        if s.top_dependencies.len() > 5 {
            out.push_str("  ...\n");
        }
        match &s.vulnerabilities {
            Some(v) => out.push_str(&format!(
                "\nVulnerabilities: {} critical, {} high, {} medium, {} low\n",
                v.critical, v.high, v.medium, v.low
            )),
            None => out.push_str("\nVulnerabilities: not scanned (build --vulnerabilities FILE merges a scanner report)\n"),
        }
        out.push_str(&format!("\nFull SBOM: {} KB\n", s.size_bytes.div_ceil(1024)));
        out
    });
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}
