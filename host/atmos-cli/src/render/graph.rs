//! The promotion graph as boxes, Graphviz dot, or a Mermaid flowchart.

use atmos_core::promotion::{GraphTarget, GraphWithStatus, PromotionGraph};

/// Text lines of a box around `lines`, each centered; all lines the same width.
fn boxed(lines: &[String], inner: usize) -> Vec<String> {
    let mut out = vec![format!("┌{}┐", "─".repeat(inner))];
    for l in lines {
        out.push(format!("│{}│", center(l, inner)));
    }
    out.push(format!("└{}┘", "─".repeat(inner)));
    out
}

fn center(text: &str, width: usize) -> String {
    let len = super::table::width(text);
    let left = width.saturating_sub(len) / 2;
    let right = width.saturating_sub(len + left);
    format!("{}{text}{}", " ".repeat(left), " ".repeat(right))
}

fn note(t: &GraphTarget) -> String {
    let mut parts = Vec::new();
    if t.entry_point {
        parts.push("(entry point)".to_owned());
    } else {
        parts.push(format!("from: {}", t.from.join(", ")));
    }
    if t.requires_approval {
        parts.push("requires approval".to_owned());
    }
    parts.join(", ")
}

/// The drawing: vertical boxes for a straight path, layered boxes otherwise.
pub fn boxes(g: &PromotionGraph) -> String {
    let mut out = format!("{} promotion graph:\n\n", g.deployment);
    if g.is_linear() {
        let inner = g
            .targets
            .iter()
            .map(|t| super::table::width(&t.name))
            .max()
            .unwrap_or(0)
            .max(9)
            + 4;
        let indent = "     ";
        for (i, name) in g.layers.iter().flatten().enumerate() {
            let Some(t) = g.target(name) else { continue };
            if i > 0 {
                out.push_str(&format!("{indent}{}\n", center("↓", inner + 2).trim_end()));
            }
            let b = boxed(std::slice::from_ref(&t.name), inner);
            for (j, line) in b.iter().enumerate() {
                let side = if j == 1 {
                    format!("  {}", note(t))
                } else {
                    String::new()
                };
                out.push_str(&format!("{indent}{line}{side}\n"));
            }
        }
        return out;
    }
    // Layered: every box states its sources, so edges need no lines of their own.
    let rows: Vec<Vec<Vec<String>>> = g
        .layers
        .iter()
        .map(|layer| {
            layer
                .iter()
                .filter_map(|name| g.target(name))
                .map(|t| {
                    let mut lines = vec![t.name.clone()];
                    if t.entry_point {
                        lines.push("(entry point)".to_owned());
                    } else {
                        lines.push(format!("from: {}", t.from.join(", ")));
                    }
                    if t.requires_approval {
                        lines.push("requires approval".to_owned());
                    }
                    let inner = lines
                        .iter()
                        .map(|l| super::table::width(l))
                        .max()
                        .unwrap_or(0)
                        + 4;
                    boxed(&lines, inner)
                })
                .collect()
        })
        .collect();
    const GAP: usize = 3;
    let row_width = |row: &Vec<Vec<String>>| -> usize {
        row.iter()
            .map(|b| super::table::width(&b[0]))
            .sum::<usize>()
            + GAP * row.len().saturating_sub(1)
    };
    let total = rows.iter().map(row_width).max().unwrap_or(0);
    for (i, row) in rows.iter().enumerate() {
        let width = row_width(row);
        let left = (total - width) / 2 + 2;
        if i > 0 {
            let mut arrows = " ".repeat(left);
            for (k, b) in row.iter().enumerate() {
                if k > 0 {
                    arrows.push_str(&" ".repeat(GAP));
                }
                arrows.push_str(&center("↓", super::table::width(&b[0])));
            }
            out.push_str(arrows.trim_end());
            out.push('\n');
        }
        let height = row.iter().map(Vec::len).max().unwrap_or(0);
        for line in 0..height {
            let mut text = " ".repeat(left);
            for (k, b) in row.iter().enumerate() {
                if k > 0 {
                    text.push_str(&" ".repeat(GAP));
                }
                let w = super::table::width(&b[0]);
                // Shorter boxes: keep the bottom border at the bottom, pad with blanks above it.
                let cell = if line + 1 == height {
                    b[b.len() - 1].clone()
                } else if line + 1 < b.len() {
                    b[line].clone()
                } else {
                    format!("│{}│", " ".repeat(w - 2))
                };
                text.push_str(&cell);
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
    }
    out
}

/// The `--show-status` drawing: one box per target with its commit, age, health and
/// place in the flow, in promotion order (layer by layer).
pub fn boxes_with_status(g: &GraphWithStatus, now: jiff::Timestamp) -> String {
    let mut out = format!("{} promotion graph:\n\n", g.graph.deployment);
    let boxes: Vec<(usize, Vec<String>)> = g
        .graph
        .layers
        .iter()
        .enumerate()
        .flat_map(|(layer, names)| names.iter().map(move |n| (layer, n)))
        .filter_map(|(layer, name)| {
            let t = g.graph.target(name)?;
            let s = g.status.iter().find(|s| s.target == *name)?;
            let mut lines = vec![t.name.clone()];
            match &s.commit {
                Some(c) => {
                    lines.push(c[..c.len().min(9)].to_owned());
                    if let Some(at) = &s.deployed_at {
                        lines.push(format!("deployed {}", crate::render::time::ago(at, now)));
                    }
                    lines.push(format!(
                        "status: {}",
                        s.health.map_or(s.last_rollout, |h| h.as_str())
                    ));
                }
                None => lines.push("not deployed".to_owned()),
            }
            if !t.entry_point {
                lines.push(format!("from: {}", t.from.join(", ")));
            }
            for b in &s.behind {
                if b.commits == usize::MAX {
                    lines.push(format!("{} has code to promote", b.source));
                } else if b.commits > 0 {
                    let plural = atmos_core::plural::s(b.commits);
                    lines.push(format!(
                        "drift: {} commit{plural} behind {}",
                        b.commits, b.source
                    ));
                }
            }
            if s.up_to_date && !t.entry_point {
                lines.push("up to date ✓".to_owned());
            }
            if s.ready_to_promote {
                lines.push("ready to promote ✓".to_owned());
            }
            if t.requires_approval {
                lines.push("requires approval".to_owned());
            }
            Some((layer, lines))
        })
        .collect();
    let inner = boxes
        .iter()
        .flat_map(|(_, l)| l.iter().map(|x| super::table::width(x)))
        .max()
        .unwrap_or(0)
        + 6;
    let indent = "     ";
    let mut previous_layer = None;
    for (layer, lines) in &boxes {
        if previous_layer.is_some() {
            let arrow = if previous_layer == Some(*layer) {
                " "
            } else {
                "↓"
            };
            out.push_str(&format!(
                "{indent}{}\n",
                center(arrow, inner + 2).trim_end()
            ));
        }
        for line in boxed(lines, inner) {
            out.push_str(&format!("{indent}{line}\n"));
        }
        previous_layer = Some(*layer);
    }
    out
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz dot.
pub fn dot(g: &PromotionGraph) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, style=rounded];\n",
        dot_escape(&g.deployment)
    );
    for t in &g.targets {
        let mut label = dot_escape(&t.name);
        if t.entry_point {
            label.push_str("\\n(entry point)");
        }
        if t.requires_approval {
            label.push_str("\\nrequires approval");
        }
        out.push_str(&format!(
            "  \"{}\" [label=\"{label}\"];\n",
            dot_escape(&t.name)
        ));
    }
    for e in &g.edges {
        out.push_str(&format!(
            "  \"{}\" -> \"{}\";\n",
            dot_escape(&e.from),
            dot_escape(&e.to)
        ));
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart. Node ids are generated, names go in labels.
pub fn mermaid(g: &PromotionGraph) -> String {
    let id = |name: &str| {
        g.targets
            .iter()
            .position(|t| t.name == name)
            .map_or_else(|| "unknown".to_owned(), |i| format!("t{i}"))
    };
    let mut out = "flowchart TD\n".to_owned();
    for t in &g.targets {
        let mut label = t.name.clone();
        if t.entry_point {
            label.push_str("<br/>(entry point)");
        }
        if t.requires_approval {
            label.push_str("<br/>requires approval");
        }
        out.push_str(&format!(
            "  {}[\"{}\"]\n",
            id(&t.name),
            label.replace('"', "#quot;")
        ));
    }
    for e in &g.edges {
        out.push_str(&format!("  {} --> {}\n", id(&e.from), id(&e.to)));
    }
    out
}

#[cfg(test)]
mod tests {
    use atmos_core::promotion::Edge;

    use super::*;

    fn target(name: &str, from: &[&str], layer: usize, approval: bool) -> GraphTarget {
        GraphTarget {
            name: name.into(),
            from: from.iter().map(|s| s.to_string()).collect(),
            entry_point: from.is_empty(),
            requires_approval: approval,
            layer,
        }
    }

    fn graph(targets: Vec<GraphTarget>) -> PromotionGraph {
        let mut layers: Vec<Vec<String>> = Vec::new();
        for t in &targets {
            if layers.len() <= t.layer {
                layers.resize(t.layer + 1, Vec::new());
            }
            layers[t.layer].push(t.name.clone());
        }
        let edges = targets
            .iter()
            .flat_map(|t| {
                t.from.iter().map(|f| Edge {
                    from: f.clone(),
                    to: t.name.clone(),
                })
            })
            .collect();
        PromotionGraph {
            deployment: "svc".into(),
            targets,
            edges,
            layers,
            paths: vec![],
        }
    }

    #[test]
    fn linear_graph_matches_the_seed_layout() {
        let g = graph(vec![
            target("dev", &[], 0, false),
            target("staging", &["dev"], 1, false),
            target("prod", &["staging"], 2, true),
        ]);
        let expected = [
            "svc promotion graph:",
            "",
            "     ┌─────────────┐",
            "     │     dev     │  (entry point)",
            "     └─────────────┘",
            "            ↓",
            "     ┌─────────────┐",
            "     │   staging   │  from: dev",
            "     └─────────────┘",
            "            ↓",
            "     ┌─────────────┐",
            "     │    prod     │  from: staging, requires approval",
            "     └─────────────┘",
            "",
        ]
        .join("\n");
        assert_eq!(boxes(&g), expected);
    }

    #[test]
    fn fan_out_and_in_draws_layers_side_by_side() {
        let g = graph(vec![
            target("dev", &[], 0, false),
            target("qa", &["dev"], 1, false),
            target("staging", &["dev"], 1, false),
            target("prod", &["qa", "staging"], 2, true),
        ]);
        let drawing = boxes(&g);
        let lines: Vec<&str> = drawing.lines().collect();
        let row = lines
            .iter()
            .find(|l| l.contains("qa") && l.contains("staging") && l.contains('│'))
            .expect("qa and staging side by side");
        assert!(row.find("qa") < row.find("staging"));
        assert!(drawing.contains("from: qa, staging"));
        assert!(drawing.contains("requires approval"));
        assert_eq!(drawing.matches('↓').count(), 3, "{drawing}");
    }

    #[test]
    fn dot_and_mermaid_list_every_edge() {
        let g = graph(vec![
            target("dev", &[], 0, false),
            target("prod", &["dev"], 1, true),
        ]);
        assert_eq!(
            dot(&g),
            "digraph \"svc\" {\n  rankdir=TB;\n  node [shape=box, style=rounded];\n  \"dev\" [label=\"dev\\n(entry point)\"];\n  \"prod\" [label=\"prod\\nrequires approval\"];\n  \"dev\" -> \"prod\";\n}\n"
        );
        assert_eq!(
            mermaid(&g),
            "flowchart TD\n  t0[\"dev<br/>(entry point)\"]\n  t1[\"prod<br/>requires approval\"]\n  t0 --> t1\n"
        );
    }
}
