//! `atmos deployment promotion-graph <d> [--format dot|mermaid|json|yaml]`.

use atmos_core::exit::Exit;
use atmos_core::promotion::PromotionGraph;

use crate::cli::{Format, PromotionGraphArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::graph;

/// Draw the graph.
pub fn run(args: &PromotionGraphArgs, ctx: &Context) -> Result<Exit, Failure> {
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let g = PromotionGraph::of(&loaded);
    if args.show_status {
        let git = ctx.git(&project)?;
        let with = g.with_status(&git, &loaded)?;
        ctx.warn_unparseable(&with.unparseable);
        let text = match ctx.out.format {
            Format::Table => graph::boxes_with_status(&with, jiff::Timestamp::now()),
            Format::Dot => graph::dot(&with.graph),
            Format::Mermaid => graph::mermaid(&with.graph),
            Format::Json | Format::Yaml => ctx.out.structured(&with).unwrap_or_default(),
        };
        ctx.out.print(&text)?;
        return Ok(Exit::Done);
    }
    let text = match ctx.out.format {
        Format::Table => graph::boxes(&g),
        Format::Dot => graph::dot(&g),
        Format::Mermaid => graph::mermaid(&g),
        Format::Json | Format::Yaml => ctx.out.structured(&g).unwrap_or_default(),
    };
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}
