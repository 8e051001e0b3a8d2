//! `atmos deployment promotion-graph <d> [--format dot|mermaid|json|yaml]`.

use atmos_core::exit::Exit;
use atmos_core::promotion::PromotionGraph;

use super::{Context, Failure};
use crate::cli::{Format, PromotionGraphArgs};
use crate::render::graph;

/// Draw the graph.
pub fn run(args: &PromotionGraphArgs, ctx: &Context) -> Result<Exit, Failure> {
    let (_, loaded) = ctx.deployment(&args.deployment)?;
    let g = PromotionGraph::of(&loaded);
    let text = match ctx.out.format {
        Format::Table => graph::boxes(&g),
        Format::Dot => graph::dot(&g),
        Format::Mermaid => graph::mermaid(&g),
        Format::Json | Format::Yaml => ctx.out.structured(&g).unwrap_or_default(),
    };
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}
