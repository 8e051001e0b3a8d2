//! `atmos deployment promotion-graph`: boxes, dot, mermaid, JSON.

use crate::support::{Repo, args};

#[test]
fn linear_graph_is_drawn_like_the_seed() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "promotion-graph", "payment-service"]);
    run.code(0);
    let expected = [
        "payment-service promotion graph:",
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
    assert_eq!(run.stdout, expected);
}

#[test]
fn fan_out_and_fan_in_are_drawn_in_layers() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "promotion-graph", "inventory-service"]);
    run.code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let side_by_side = lines
        .iter()
        .find(|l| l.contains("qa") && l.contains("staging"))
        .expect("qa and staging on one line");
    assert!(side_by_side.find("qa") < side_by_side.find("staging"));
    let dev = lines.iter().position(|l| l.contains(" dev ")).expect("dev");
    let qa = lines.iter().position(|l| l.contains(" qa ")).expect("qa");
    let prod = lines
        .iter()
        .position(|l| l.contains(" prod "))
        .expect("prod");
    assert!(dev < qa && qa < prod, "{}", run.stdout);
    assert!(run.stdout.contains("from: qa, staging"));
    assert!(run.stdout.contains("requires approval"));
}

#[test]
fn dot_mermaid_and_json_formats() {
    let repo = Repo::example();
    let dot = repo.atmos(&args(
        "deployment promotion-graph inventory-service --format dot",
    ));
    dot.code(0);
    assert!(
        dot.stdout.starts_with("digraph \"inventory-service\" {"),
        "{}",
        dot.stdout
    );
    for edge in [
        "\"dev\" -> \"qa\";",
        "\"dev\" -> \"staging\";",
        "\"qa\" -> \"prod\";",
        "\"staging\" -> \"prod\";",
    ] {
        assert!(dot.stdout.contains(edge), "missing {edge}");
    }
    let mermaid = repo.atmos(&args(
        "deployment promotion-graph inventory-service --format mermaid",
    ));
    mermaid.code(0);
    assert!(mermaid.stdout.starts_with("flowchart TD\n"));
    assert_eq!(
        mermaid.stdout.matches(" --> ").count(),
        4,
        "{}",
        mermaid.stdout
    );

    let json = repo
        .atmos(&args(
            "deployment promotion-graph inventory-service --format json",
        ))
        .json();
    assert_eq!(
        json["paths"],
        serde_json::json!([["dev", "qa", "prod"], ["dev", "staging", "prod"]])
    );
    assert_eq!(
        json["targets"][3]["from"],
        serde_json::json!(["qa", "staging"])
    );
    assert_eq!(json["targets"][3]["requires_approval"], true);
}

#[test]
fn graph_formats_are_refused_elsewhere() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "list", "--format", "dot"]);
    run.code(2);
    run.stderr_has(&["`list` does not support --format dot"]);
}
