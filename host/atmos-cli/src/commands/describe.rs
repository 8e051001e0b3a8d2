//! `atmos deployment describe <d> [--target t]`.

use atmos_core::describe::{DescribeReport, describe};
use atmos_core::exit::Exit;
use serde_json::Value;

use crate::cli::{DescribeArgs, Format};
use crate::context::Context;
use crate::failure::Failure;
use crate::render::table::Table;

/// Describe the deployment.
pub fn run(args: &DescribeArgs, ctx: &Context) -> Result<Exit, Failure> {
    ctx.require_format(&[Format::Table, Format::Json, Format::Yaml], "describe")?;
    let (project, loaded) = ctx.deployment(&args.deployment)?;
    let report = describe(&project, &loaded, args.target.as_deref())?;
    let text = ctx
        .out
        .structured(&report)
        .unwrap_or_else(|| render(&report));
    ctx.out.print(&text)?;
    Ok(Exit::Done)
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn labels(map: &indexmap::IndexMap<String, String>) -> String {
    if map.is_empty() {
        return "-".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render(r: &DescribeReport) -> String {
    let d = &r.deployment;
    let mut out = format!("{} ({})\n", d.name, r.file.display());
    if let Some(desc) = &d.description {
        out.push_str(&format!("  {}\n", desc.trim()));
    }
    out.push('\n');
    out.push_str(&format!("Labels: {}\n", labels(&d.labels)));
    out.push_str(&format!(
        "Default target: {}\n",
        d.context.default_target.as_deref().unwrap_or("-")
    ));
    if !r.imports.is_empty() {
        let files: Vec<String> = r.imports.iter().map(|f| f.display().to_string()).collect();
        out.push_str(&format!(
            "Imports: {} (merged in this order, then {})\n",
            files.join(", "),
            r.file.display()
        ));
    }
    let Some(target) = &r.target else {
        out.push_str("\nTargets:\n");
        let mut t = Table::new(["  Target", "Promotion From", "Requires Approval", "Labels"]);
        for (name, target) in &d.targets {
            let p = target.promotion.as_ref();
            let from = p.map(|p| p.sources().join(", ")).filter(|s| !s.is_empty());
            t.row([
                format!("  {name}"),
                from.unwrap_or_else(|| "(entry point)".to_owned()),
                if p.is_some_and(|p| p.requires_approval) {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
                labels(&target.labels),
            ]);
        }
        out.push_str(&t.render());
        out.push_str("\nComponents:\n");
        let mut t = Table::new(["  Type", "Name", "Depends On", "Vars"]);
        for c in d.components.iter() {
            let deps = &c.component.metadata.depends_on;
            t.row([
                format!("  {}", c.kind),
                c.name.to_owned(),
                if deps.is_empty() {
                    "-".to_owned()
                } else {
                    deps.join(", ")
                },
                c.component.vars.len().to_string(),
            ]);
        }
        out.push_str(&t.render());
        let main = r.file.display().to_string();
        let imported: Vec<(&String, &String)> = r
            .sources
            .iter()
            .filter(|(_, at)| !at.starts_with(&format!("{main}:")))
            .collect();
        if !imported.is_empty() {
            out.push_str("\nValues set by imports:\n");
            let mut t = Table::new(["  Key", "Set In"]);
            for (key, at) in imported {
                t.row([format!("  {key}"), at.clone()]);
            }
            out.push_str(&t.render());
        }
        out.push_str(&format!(
            "\nUse `atmos deployment describe {} --target <target>` to see merged vars.\n",
            d.name
        ));
        return out;
    };
    out.push_str(&format!("\nTarget: {}\n", target.name));
    out.push_str(&format!("  Labels: {}\n", labels(&target.labels)));
    let from = if target.promotion_from.is_empty() {
        "(entry point)".to_owned()
    } else {
        format!("from {}", target.promotion_from.join(", "))
    };
    out.push_str(&format!(
        "  Promotion: {from}{}\n",
        if target.requires_approval {
            ", requires approval"
        } else {
            ""
        }
    ));
    if !target.policies.is_empty() {
        out.push_str(&format!("  Policies: {}\n", target.policies.join(", ")));
    }
    if !target.hooks.is_empty() {
        let hooks: Vec<String> = target
            .hooks
            .iter()
            .map(|h| {
                let on: Vec<&str> = h.actions().into_iter().map(|a| a.as_str()).collect();
                format!("{} ({}, on {})", h.name, h.wasm, on.join(", "))
            })
            .collect();
        out.push_str(&format!("  Hooks: {}\n", hooks.join("; ")));
    }
    for c in &target.components {
        out.push_str(&format!("\nComponent {} ({})\n", c.name, c.kind));
        if !c.depends_on.is_empty() {
            out.push_str(&format!("  Depends on: {}\n", c.depends_on.join(", ")));
        }
        if let Some(stack) = &c.stack {
            match &stack.error {
                Some(e) => out.push_str(&format!("  Stack {}: {e}\n", stack.stack)),
                None => {
                    out.push_str(&format!(
                        "  Stack {} ({}{}), folder {}, workspace {}, varfile {}\n",
                        stack.stack,
                        stack.stack_file,
                        if stack.imports.is_empty() {
                            String::new()
                        } else {
                            format!("; imports {}", stack.imports.join(", "))
                        },
                        stack.folder,
                        stack.workspace,
                        stack.varfile
                    ));
                    if !stack.inheritance.is_empty() {
                        out.push_str(&format!("  Inherits: {}\n", stack.inheritance.join(", ")));
                    }
                }
            }
        }
        if c.vars.provenance.is_empty() {
            out.push_str("  (no vars)\n");
            continue;
        }
        let mut t = Table::new(["  Key", "Value", "From"]);
        for (path, prov) in &c.vars.provenance {
            let value = cell(&prov.value);
            let mut from = prov.source.label().to_owned();
            if !prov.overrides.is_empty() {
                let over: Vec<&str> = prov.overrides.iter().map(|s| s.label()).collect();
                from.push_str(&format!(" (overrides {})", over.join(", ")));
            }
            if let Some(at) = &prov.at {
                from.push_str(&format!(", {at}"));
            }
            t.row([format!("  {path}"), value, from]);
        }
        out.push_str(&t.render());
    }
    out
}
