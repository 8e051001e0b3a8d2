//! Query benchmark.
//!
//! Builds (once, cached under `target/bench-fixtures/`) a repository with 100,000 deployment
//! tags across 50 deployments × 3 targets × 5 components, packed as `git gc` would leave it,
//! then measures wall time (median of runs) and peak RSS of:
//!
//! - `atmos deployment status <d>`, `status <d> --target prod`, `history <d> --target prod --limit 20`;
//! - `atmos deployment report --html DIR`: the board of all 50 deployments (2,000 records
//!   each; every deployment's status, graph, newest 50 rollouts, diffs and SBOMs);
//! - the floor: `git for-each-ref` listing the same refs;
//! - the naive approach: `git tag -l <pattern> --sort=-creatordate`, then `git cat-file -p`
//!   per tag needed.
//!
//! Run: `cargo bench -p atmos-cli --bench queries` (add `-- --runs N` to change the number of
//! runs, `-- --rebuild` to regenerate the fixture). Figures go in docs/benchmarks.md.

use std::path::Path;

mod common;
use common::{atmos_binary, data, fast_import, git, sample};

const DEPLOYMENTS: usize = 50;
const TARGETS: [&str; 3] = ["dev", "staging", "prod"];
const COMPONENTS: [&str; 5] = ["api", "worker", "db", "cache", "migrate"];
const TAGS: usize = 100_000;
const COMMITS: usize = 200;

fn main() {
    common::measure_mode();
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(15usize);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-fixtures/queries-100k-chained");
    if args.iter().any(|a| a == "--rebuild") || !root.join(".complete").exists() {
        generate(&root);
    }
    let atmos = atmos_binary();
    let d = "d07";
    let prod_tags = format!("refs/tags/atmos/deployments/{d}/prod/");
    let all_tags = format!("refs/tags/atmos/deployments/{d}/");
    let state = format!("refs/atmos/deployments/{d}/");
    let prod_state = format!("refs/atmos/deployments/{d}/prod/");
    let a = atmos.display().to_string();
    let git_dir = root.join(".git");
    let g = format!("git --git-dir {}", git_dir.display());

    // The naive approach: list the tags with git, then read each one.
    let seed_status_target = format!(
        "{g} show-ref | grep ' {prod_state}' >/dev/null; for c in {comps}; do t=$({g} tag -l 'atmos/deployments/{d}/prod/'$c'/*' --sort=-creatordate | head -1); {g} cat-file -p $t >/dev/null; done",
        comps = COMPONENTS.join(" ")
    );
    let seed_status_all = format!(
        "{g} show-ref | grep ' {state}' >/dev/null; for t in {targets}; do for c in {comps}; do x=$({g} tag -l 'atmos/deployments/{d}/'$t'/'$c'/*' --sort=-creatordate | head -1); {g} cat-file -p $x >/dev/null; done; done",
        targets = TARGETS.join(" "),
        comps = COMPONENTS.join(" ")
    );
    let seed_history = format!(
        "for t in $({g} tag -l 'atmos/deployments/{d}/prod/*' --sort=-creatordate | head -20); do {g} cat-file -p $t >/dev/null; done"
    );

    let board = root.join("board");
    let cases: Vec<(&str, String, String, Option<String>)> = vec![
        (
            "status <d>",
            format!("{a} -C {} deployment status {d} >/dev/null", root.display()),
            format!("{g} for-each-ref {state} {all_tags} >/dev/null"),
            Some(seed_status_all),
        ),
        (
            "status <d> --target prod",
            format!(
                "{a} -C {} deployment status {d} --target prod >/dev/null",
                root.display()
            ),
            format!("{g} for-each-ref {prod_state} {prod_tags} >/dev/null"),
            Some(seed_status_target),
        ),
        (
            "history <d> --target prod --limit 20",
            format!(
                "{a} -C {} deployment history {d} --target prod --limit 20 >/dev/null",
                root.display()
            ),
            format!("{g} for-each-ref {prod_tags} >/dev/null"),
            Some(seed_history),
        ),
        (
            "report --html (all 50 deployments)",
            format!(
                "{a} -C {} deployment report --html {} >/dev/null",
                root.display(),
                board.display()
            ),
            format!("{g} for-each-ref refs/atmos/deployments/ refs/tags/atmos/ >/dev/null"),
            None,
        ),
    ];
    println!(
        "Repository: {TAGS} tags, {} state refs, {COMMITS} commits; {runs} runs each, median wall time, peak RSS.\n",
        DEPLOYMENTS * TARGETS.len() * COMPONENTS.len()
    );
    println!(
        "| query | atmos | floor: git for-each-ref | atmos / floor | naive: git tag -l + cat-file | atmos peak RSS |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, ours, floor, seed) in cases {
        let o = sample(&ours, runs);
        let f = sample(&floor, runs);
        let s = seed.map_or("—".to_owned(), |seed| {
            format!("{:.1} ms", sample(&seed, runs.min(5)).0)
        });
        println!(
            "| `{name}` | {:.1} ms | {:.1} ms | {:.2}× | {s} | {:.1} MiB |",
            o.0,
            f.0,
            o.0 / f.0,
            o.1 as f64 / 1024.0
        );
    }
}

/// Write the fixture with `git fast-import`: commits first (to learn their shas), then tags
/// whose records name those shas, then the state refs.
fn generate(root: &Path) {
    eprintln!("generating {} (100k tags)…", root.display());
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).expect("mkdir");
    git(root, &["init", "-q"]);
    let base: i64 = 1_700_000_000;
    let mut stream = String::new();
    for i in 0..COMMITS {
        stream.push_str(&format!(
            "commit refs/heads/main\nmark :{}\ncommitter Dev <dev@example.com> {} +0000\n",
            i + 1,
            base + i as i64 * 600
        ));
        data(&mut stream, &format!("change {i}"));
        if i > 0 {
            stream.push_str(&format!("from :{i}\n"));
        } else {
            for d in 0..DEPLOYMENTS {
                let name = format!("d{d:02}");
                let mut yaml = format!("deployment:\n  name: {name}\n  components:\n    script:\n");
                for c in COMPONENTS {
                    yaml.push_str(&format!(
                        "      {c}:\n        settings: {{script: {{apply: 'true'}}}}\n"
                    ));
                }
                yaml.push_str("  targets:\n    dev: {}\n    staging: {promotion: {from: dev}}\n    prod: {promotion: {from: staging}}\n");
                stream.push_str(&format!("M 100644 inline deployments/{name}.yaml\n"));
                data(&mut stream, &yaml);
            }
        }
        stream.push_str("M 100644 inline CHANGES\n");
        data(&mut stream, &format!("{i}\n"));
    }
    let marks = root.join(".git/bench-marks");
    fast_import(
        root,
        &["--quiet", &format!("--export-marks={}", marks.display())],
        &stream,
    );
    let shas: std::collections::HashMap<usize, String> = std::fs::read_to_string(&marks)
        .expect("marks")
        .lines()
        .filter_map(|l| {
            let (m, sha) = l.split_once(' ')?;
            Some((m.trim_start_matches(':').parse().ok()?, sha.to_owned()))
        })
        .collect();

    let slots = DEPLOYMENTS * TARGETS.len() * COMPONENTS.len();
    let per_slot = TAGS.div_ceil(slots);
    let mut stream = String::new();
    let mut last: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut chains = common::Chains::default();
    let mut written = 0;
    'outer: for round in 0..per_slot {
        for d in 0..DEPLOYMENTS {
            for (ti, t) in TARGETS.iter().enumerate() {
                for c in COMPONENTS {
                    if written == TAGS {
                        break 'outer;
                    }
                    let at = base + (round as i64) * 3600 + ti as i64 * 60;
                    let ts = jiff::Timestamp::from_second(at).expect("ts");
                    let mark = 1 + (round * COMMITS / per_slot).min(COMMITS - 1);
                    let sha = &shas[&mark];
                    let slot = format!("d{d:02}/{t}/{c}");
                    chains.tag(&mut stream, (&format!("d{d:02}"), t, c), sha, ts, round);
                    last.insert(slot, sha.clone());
                    written += 1;
                }
            }
        }
    }
    // State refs point at the commit of each component's newest tag, as rollouts leave them.
    for (slot, sha) in &last {
        stream.push_str(&format!(
            "reset refs/atmos/deployments/{slot}\nfrom {sha}\n\n"
        ));
    }
    fast_import(root, &["--quiet"], &stream);
    chains.write_refs(root);
    git(root, &["pack-refs", "--all"]);
    git(root, &["checkout", "-q", "main"]);
    std::fs::write(root.join(".complete"), "").expect("marker");
    eprintln!("generated");
}
