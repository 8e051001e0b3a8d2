//! Gate overhead of a whole rollout: a 10-component `script` rollout (each apply is
//! `true`) with 3 Rego policies and 2 WebAssembly hooks, against the same rollout with no
//! gates, both through the real `atmos` binary with a warm hook cache. The difference is what
//! the gates cost; the gated run's total is everything atmos does besides the executors'
//! own work (10 `true` processes).
//!
//! Run: `cargo bench -p atmos-cli --bench rollout_gates` (`-- --runs N`). Figures:
//! docs/benchmarks.md.

use std::path::Path;
#[path = "../../../tests/build_guests.rs"]
mod build_guests;
use std::process::Command;
use std::time::{Duration, Instant};

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// A project with 10 script components; with `gated`, 3 policies and 2 hooks bound.
fn project(root: &Path, gated: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    git(p, &["init", "-q"]);
    git(p, &["config", "user.email", "bench@example.com"]);
    git(p, &["config", "user.name", "Bench"]);
    std::fs::create_dir_all(p.join("deployments")).expect("mkdir");
    let components: String = (0..10)
        .map(|i| format!("      c{i}:\n        settings: {{script: {{apply: \"true\"}}}}\n"))
        .collect();
    let mut gates = String::new();
    if gated {
        let out = build_guests::build_guests(root);
        std::fs::create_dir_all(p.join("hooks")).expect("mkdir");
        for g in ["change_freeze", "ticket_required"] {
            std::fs::copy(
                out.join(format!("{g}.wasm")),
                p.join(format!("hooks/{g}.wasm")),
            )
            .expect("copy");
        }
        copy(&root.join("policies"), &p.join("policies"));
        std::fs::create_dir_all(p.join("gates")).expect("mkdir");
        std::fs::write(
            p.join("gates/settings.yaml"),
            "gates:\n  freeze:\n    targets: [prod]\n    windows: [{start: \"2001-01-01T00:00:00Z\", end: \"2001-01-02T00:00:00Z\"}]\n  required_metadata: {dev: {ticket: \"^[A-Z]+-[0-9]+$\"}}\n",
        )
        .expect("settings");
        std::fs::write(
            p.join("atmos.yaml"),
            "gates:\n  policies: [policies/promotion, policies/freeze, policies/metadata, gates]\n",
        )
        .expect("atmos.yaml");
        gates = "  gates:\n    hooks:\n      - {name: freeze, wasm: hooks/change_freeze.wasm, config: {windows: [{from: \"2001-01-01T00:00\", until: \"2001-01-02T00:00\"}]}}\n      - {name: ticket, wasm: hooks/ticket_required.wasm, config: {pattern: \"OPS-[0-9]+\"}}\n".into();
    }
    std::fs::write(
        p.join("deployments/svc.yaml"),
        format!("deployment:\n  name: svc\n  components:\n    script:\n{components}{gates}  targets:\n    dev: {{}}\n"),
    )
    .expect("deployment");
    std::fs::write(p.join("VERSION"), "0").expect("write");
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "OPS-1 initial"]);
    dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let path = e.path();
        if path.is_dir() {
            copy(&path, &to.join(e.file_name()));
        } else {
            std::fs::copy(&path, to.join(e.file_name())).expect("copy");
        }
    }
}

/// Wall time of `runs` rollouts, each of a new commit.
/// `expect`: sources that must appear among the decisions (checked on every run).
fn measure(dir: &Path, runs: usize, expect: &[&str]) -> Vec<Duration> {
    let atmos = env!("CARGO_BIN_EXE_atmos");
    let mut out = Vec::with_capacity(runs);
    for i in 0..=runs {
        std::fs::write(dir.join("VERSION"), format!("v{i}")).expect("write");
        git(dir, &["commit", "-q", "-am", &format!("OPS-{i} change")]);
        let t = Instant::now();
        let o = Command::new(atmos)
            .args([
                "deployment",
                "rollout",
                "svc",
                "--target",
                "dev",
                "--metadata",
                "ticket=OPS-1",
                "--format",
                "json",
            ])
            .current_dir(dir)
            .env("ATMOS_ACTOR", "bench@example.com")
            .output()
            .expect("atmos");
        let elapsed = t.elapsed();
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let report = String::from_utf8_lossy(&o.stdout);
        for source in expect {
            assert!(
                report.contains(&format!("\"source\": \"{source}\"")),
                "{source} did not run: {report}"
            );
        }
        if i > 0 {
            // The first run fills the hook cache.
            out.push(elapsed);
        }
    }
    out.sort();
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(30usize);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let plain = project(&root, false);
    let gated = project(&root, true);
    let p = |v: &[Duration], q: f64| {
        v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0
    };
    let a = measure(plain.path(), runs, &[]);
    let b = measure(
        gated.path(),
        runs,
        &[
            "hook:freeze",
            "hook:ticket",
            "policies/freeze/freeze.rego",
            "policies/metadata/required.rego",
            "policies/promotion/promotion.rego",
        ],
    );
    println!("{runs} rollouts each of 10 `script` components (apply: `true`), warm hook cache.\n");
    println!("| rollout | p50 | p90 | max |");
    println!("|---|---|---|---|");
    println!(
        "| no gates | {:.1} ms | {:.1} ms | {:.1} ms |",
        p(&a, 0.5),
        p(&a, 0.9),
        p(&a, 1.0)
    );
    println!(
        "| 3 policies + 2 hooks | {:.1} ms | {:.1} ms | {:.1} ms |",
        p(&b, 0.5),
        p(&b, 0.9),
        p(&b, 1.0)
    );
    println!(
        "| gate overhead (difference of p50s) | {:.1} ms | | |",
        p(&b, 0.5) - p(&a, 0.5)
    );
}
