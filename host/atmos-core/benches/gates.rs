//! Gate latency.
//!
//! Compiles the shipped policies once, then evaluates them against a realistic input
//! document (10 components, 30 commits, 3 targets of state) many times, and prints p50/p99
//! latency per policy package (one decision = one package's deny and warn for one input)
//! and for all of them together.
//!
//! Run: `cargo bench -p atmos-core --bench gates` (`-- --runs N` to change the sample size).
//! Figures go in docs/benchmarks.md.

use std::path::Path;
use std::time::{Duration, Instant};

use atmos_core::gates::rego::PolicySet;

fn input() -> serde_json::Value {
    let components: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            serde_json::json!({"name": format!("svc{i}"), "type": "script", "current": "a".repeat(40), "new": "b".repeat(40), "change": "changed"})
        })
        .collect();
    let commits: Vec<serde_json::Value> = (0..30)
        .map(|i| serde_json::json!({"sha": format!("{i:040}"), "author_email": format!("dev{}@example.com", i % 4), "author_name": "Dev", "subject": format!("OPS-{i}: change {i}")}))
        .collect();
    let state_components: serde_json::Map<String, serde_json::Value> = (0..10)
        .map(|i| (format!("svc{i}"), serde_json::json!({"commit": "b".repeat(40), "deployed_at": "2025-01-22T08:00:00Z", "status": "success"})))
        .collect();
    serde_json::json!({
        "api_version": "atmos.tools/gate-input/v1",
        "action": "promote",
        "deployment": {"name": "payment-service", "labels": {"team": "payments"}, "targets": {
            "dev": {"labels": {}, "promotion_from": [], "requires_approval": false},
            "staging": {"labels": {}, "promotion_from": ["dev"], "requires_approval": false},
            "prod": {"labels": {}, "promotion_from": ["staging"], "requires_approval": true}}},
        "target": {"name": "prod", "labels": {"environment": "prod"}, "context": {"replicas": 3}, "promotion_from": ["staging"], "requires_approval": true},
        "source_target": "staging",
        "commit": commits[0],
        "commits": commits,
        "components": components,
        "actor": "ci@example.com",
        "approvals": [
            {"approved_by": "alice@example.com", "decision": "approve", "approved_at": "2025-01-22T11:00:00Z"},
            {"approved_by": "bob@example.com", "decision": "approve", "approved_at": "2025-01-22T11:05:00Z"}],
        "state": {
            "dev": {"commit": "b".repeat(40), "deployed_at": "2025-01-22T06:00:00Z", "health": "healthy", "components": state_components.clone()},
            "staging": {"commit": "b".repeat(40), "deployed_at": "2025-01-22T08:00:00Z", "health": "healthy", "components": state_components.clone()},
            "prod": {"commit": "a".repeat(40), "deployed_at": "2025-01-20T08:00:00Z", "health": "healthy", "components": {}}},
        "now": "2025-01-22T12:00:00Z",
        "metadata": {"ticket": "OPS-42"},
        "flags": {"skip_promotion_check": false, "force": false},
        "sbom": null
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000usize);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("settings.yaml"),
        "gates:\n  soak: {min_hours: {prod: 2}}\n  freeze:\n    targets: [prod]\n    timezone: Europe/Berlin\n    weekdays: [Saturday, Sunday]\n    hours: {from: 18, to: 8}\n    windows: [{start: \"2025-12-20T00:00:00Z\", end: \"2026-01-05T00:00:00Z\"}]\n  required_metadata: {prod: {ticket: \"^[A-Z]+-[0-9]+$\"}}\n  approvals: {prod: {min: 2, from_groups: [sre]}}\n  approvers: {groups: {sre: [alice@example.com, bob@example.com]}}\n",
    )
    .expect("settings");
    let settings = dir.path().display().to_string();
    let input = input();
    println!("{runs} evaluations each, after one compile; input: 10 components, 30 commits.\n");
    println!("| policy | compile | p50 | p99 | decisions per evaluation |");
    println!("|---|---|---|---|---|");
    let policies = ["promotion", "approvals", "soak", "freeze", "metadata"];
    let mut all: Vec<String> = policies.iter().map(|p| format!("policies/{p}")).collect();
    all.push(settings.clone());
    let mut cases: Vec<(String, Vec<String>)> = policies
        .iter()
        .map(|p| {
            (
                format!("`{p}`"),
                vec![format!("policies/{p}"), settings.clone()],
            )
        })
        .collect();
    cases.push(("all five together".to_owned(), all));
    for (name, paths) in cases {
        let started = Instant::now();
        let set = PolicySet::load(&root, &paths, Duration::from_secs(2));
        let compile = started.elapsed();
        assert!(set.errors().is_empty(), "{:?}", set.errors());
        let mut times = Vec::with_capacity(runs);
        let mut decisions = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let d = set.evaluate(&input);
            times.push(t.elapsed());
            decisions = d.len();
        }
        times.sort();
        println!(
            "| {name} | {:.2} ms | {:.3} ms | {:.3} ms | {decisions} |",
            compile.as_secs_f64() * 1000.0,
            percentile(&times, 0.50).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
        );
    }
}
