//! The server guard against the size of the history: what one push of one rollout's records
//! costs the `pre-receive` hook (`atmos deployment verify --pre-receive`) when the deployment
//! it touches already holds 10,000, 100,000 or 1,000,000 records.
//!
//! Each fixture — one deployment (`svc`: dev → staging → prod, five script components), its
//! records chained as rollouts leave them, one every minute per component — is generated once
//! with `git fast-import` and cached under `target/bench-fixtures/guard-<n>/`. Each run works
//! on a copy of its bare remote with the hook installed, wrapped in `/usr/bin/time` so that
//! every invocation logs its wall time and peak RSS. A runner holding only the histories it
//! appends to (the records, chain and state refs of `svc/dev/{api,worker}`) rolls out `api` and `worker` to dev
//! offline — an intent and an outcome each — and pushes the four records with their chain and
//! state refs in one atomic `git push`, which the hook judges. Then the same push to a copy
//! without the hook gives git's own cost of it.
//!
//! Run: `cargo bench -p atmos-cli --bench guard_scale` (`-- --runs N`, `-- --sizes 10000,100000`,
//! `-- --rebuild`). The 1,000,000-record fixture takes a few minutes to generate the first
//! time. Figures: docs/benchmarks.md.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{atmos_binary, git};

const TARGETS: [&str; 3] = ["dev", "staging", "prod"];
const COMPONENTS: [&str; 5] = ["api", "worker", "db", "cache", "migrate"];
const COMMITS: usize = 200;

fn main() {
    common::measure_mode();
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = value("--runs").and_then(|n| n.parse().ok()).unwrap_or(3);
    let sizes: Vec<usize> = value("--sizes")
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    let atmos = atmos_binary();
    println!(
        "One push of one rollout (api and worker to dev: 4 records, 2 chain refs, 2 state refs); median of {runs} runs.\n"
    );
    println!(
        "| records in the deployment | guard (hook) wall | guard peak RSS | push with the guard | push without it (git alone) |"
    );
    println!("|---|---|---|---|---|");
    for n in sizes {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../target/bench-fixtures/guard-{n}"));
        if args.iter().any(|a| a == "--rebuild") || !fixture.join(".complete").exists() {
            generate(&fixture, n);
        }
        let (hook, rss, guarded) = measure(&fixture, &atmos, runs, true);
        let (_, _, plain) = measure(&fixture, &atmos, runs, false);
        println!(
            "| {n} | {hook:.0} ms | {:.1} MiB | {guarded:.0} ms | {plain:.0} ms |",
            rss as f64 / 1024.0
        );
    }
}

/// Median hook wall (ms), the hook's peak RSS (KiB), and the median push wall (ms).
fn measure(fixture: &Path, atmos: &Path, runs: usize, guarded: bool) -> (f64, u64, f64) {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let (remote, _) = common::copy_remote(fixture, w);
    let log = w.join("hook.log");
    if guarded {
        let hook = remote.join("hooks/pre-receive");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nexec /usr/bin/time -a -o '{}' -f '%e %M' '{}' deployment verify --pre-receive\n",
                log.display(),
                atmos.display()
            ),
        )
        .expect("hook");
        let made = Command::new("chmod")
            .args(["+x"])
            .arg(&hook)
            .status()
            .expect("chmod");
        assert!(made.success());
    }
    let url = format!("file://{}", remote.display());
    let runner = w.join("runner");
    git(w, &["clone", "-q", "--no-tags", &url, "runner"]);
    git(&runner, &["config", "user.email", "ci@example.com"]);
    git(&runner, &["config", "user.name", "CI"]);
    // Only the histories the rollout appends to.
    git(
        &runner,
        &[
            "fetch",
            "-q",
            "--no-tags",
            "origin",
            "+refs/atmos/chains/svc/dev/*:refs/atmos/chains/svc/dev/*",
            "+refs/atmos/deployments/svc/dev/*:refs/atmos/deployments/svc/dev/*",
            "+refs/tags/atmos/deployments/svc/dev/api/*:refs/tags/atmos/deployments/svc/dev/api/*",
            "+refs/tags/atmos/deployments/svc/dev/worker/*:refs/tags/atmos/deployments/svc/dev/worker/*",
        ],
    );
    let mut hook_ms = Vec::new();
    let mut push_ms = Vec::new();
    let mut rss = 0u64;
    for _ in 0..runs {
        let rolled = Command::new(atmos)
            .args([
                "deployment",
                "rollout",
                "svc",
                "--target",
                "dev",
                "-c",
                "api",
                "-c",
                "worker",
                "--offline",
                "--force",
            ])
            .current_dir(&runner)
            .env("ATMOS_ACTOR", "ci@example.com")
            .stdout(Stdio::null())
            .status()
            .expect("rollout");
        assert!(rolled.success(), "the offline rollout failed");
        let _ = std::fs::remove_file(&log);
        let start = std::time::Instant::now();
        let out = Command::new("git")
            .args([
                "push",
                "-q",
                "--atomic",
                "origin",
                "refs/tags/atmos/*:refs/tags/atmos/*",
                "refs/atmos/chains/svc/dev/*:refs/atmos/chains/svc/dev/*",
                "refs/atmos/deployments/svc/dev/*:refs/atmos/deployments/svc/dev/*",
            ])
            .current_dir(&runner)
            .output()
            .expect("push");
        push_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(
            out.status.success(),
            "the guard refused an honest push: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if guarded {
            let text = std::fs::read_to_string(&log).expect("hook log");
            let line = text.lines().last().expect("one hook run");
            let mut parts = line.split_whitespace();
            let secs: f64 = parts.next().and_then(|p| p.parse().ok()).expect("secs");
            let kb: u64 = parts.next().and_then(|p| p.parse().ok()).expect("kb");
            hook_ms.push(secs * 1000.0);
            rss = rss.max(kb);
        }
    }
    let median = |mut v: Vec<f64>| {
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(hook_ms), rss, median(push_ms))
}

fn generate(root: &Path, records: usize) {
    eprintln!("generating {} ({records} records)…", root.display());
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).expect("mkdir");
    git(root, &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    let bare = root.join("remote.git");
    let slots = TARGETS.len() * COMPONENTS.len();
    let per_slot = records.div_ceil(slots);
    let newest = jiff::Timestamp::now().as_second() - 3600;
    let base = newest - (per_slot as i64 - 1) * 60;

    let deployments = vec![(
        "svc".to_owned(),
        common::script_deployment("svc", &COMPONENTS),
    )];
    let shas = common::write_commits(&bare, COMMITS, base - 86_400, &deployments);
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&bare)
        .stdin(Stdio::piped())
        .spawn()
        .expect("fast-import");
    let mut input = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
    let mut last: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut chains = common::Chains::default();
    let mut written = 0;
    'outer: for round in 0..per_slot {
        for (ti, t) in TARGETS.iter().enumerate() {
            for c in COMPONENTS {
                if written == records {
                    break 'outer;
                }
                let at = base + round as i64 * 60 + ti as i64;
                let ts = jiff::Timestamp::from_second(at).expect("ts");
                let mark = 1 + (round * COMMITS / per_slot).min(COMMITS - 1);
                let sha = &shas[&mark];
                let mut chunk = String::new();
                chains.tag(&mut chunk, ("svc", t, c), sha, ts, round);
                input.write_all(chunk.as_bytes()).expect("write");
                last.insert(format!("svc/{t}/{c}"), sha.clone());
                written += 1;
            }
        }
        if round % 10_000 == 0 {
            eprintln!("  {written} records");
        }
    }
    common::finish_records(&bare, input, child, &last, &chains);
    std::fs::write(root.join(".complete"), newest.to_string()).expect("marker");
    eprintln!("generated");
}
