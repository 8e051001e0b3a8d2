//! `atmos deployment matrix <d> --target t [--wave N]`: a GitHub Actions matrix of the
//! component waves, so that one job per component can run `rollout --component`.

use atmos_core::exit::Exit;
use serde::Serialize;

use crate::cli::MatrixArgs;
use crate::context::Context;
use crate::failure::Failure;

#[derive(Serialize)]
struct Entry {
    component: String,
    #[serde(rename = "type")]
    kind: String,
    wave: usize,
    target: String,
}

#[derive(Serialize)]
struct Matrix {
    include: Vec<Entry>,
}

/// Print the matrix as compact JSON (for `$GITHUB_OUTPUT`).
pub fn run(args: &MatrixArgs, ctx: &Context) -> Result<Exit, Failure> {
    let (_, loaded) = ctx.deployment(&args.deployment)?;
    let d = &loaded.deployment;
    let target = args
        .target
        .clone()
        .or_else(|| d.context.default_target.clone())
        .ok_or_else(|| Failure::usage("`matrix` needs --target", None))?;
    atmos_core::config::UnknownTarget::check(d, &target)?;
    let waves = atmos_core::dag::layers(&atmos_core::config::checks::dependency_edges(&loaded));
    if let Some(w) = args.wave
        && (w == 0 || w > waves.len())
    {
        return Err(Failure::usage(
            format!(
                "there is no wave {w}: {} has {} wave(s)",
                d.name,
                waves.len()
            ),
            None,
        ));
    }
    let mut include = Vec::new();
    for (i, wave) in waves.iter().enumerate() {
        if args.wave.is_some_and(|w| w != i + 1) {
            continue;
        }
        for id in wave {
            let (kind, name) = id.split_once('/').unwrap_or(("", id));
            include.push(Entry {
                component: name.to_owned(),
                kind: kind.to_owned(),
                wave: i + 1,
                target: target.clone(),
            });
        }
    }
    let mut text = serde_json::to_string(&Matrix { include }).unwrap_or_default();
    text.push('\n');
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}
