//! WebAssembly hook latency.
//!
//! Builds the guests from `guests/` (release, wasm32-wasip2), then for each real guest:
//! - cold: a new engine with no cache compiles the component and evaluates once;
//! - warm: a new engine whose on-disk cache already holds the component (what every
//!   `atmos` run after the first pays: engine, cache load, pre-instantiation, one call);
//! - hot: one evaluation on an already-loaded hook (what each further evaluation in the same
//!   run pays: fresh store, instantiation, the call).
//!
//! Run: `cargo bench -p atmos-core --bench hooks` (`-- --runs N`). Figures: docs/benchmarks.md.

use std::path::Path;
#[path = "../../../tests/build_guests.rs"]
mod build_guests;
use std::time::{Duration, Instant};

use atmos_core::config::model::{HookConfig, Limits};
use atmos_core::contracts::GateAction;
use atmos_core::gates::wasm::HookSet;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(200usize);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = build_guests::build_guests(&root);
    let input = serde_json::json!({
        "now": "2026-11-27T14:30:00Z",
        "target": {"name": "prod"},
        "source_target": "staging",
        "state": {"staging": {"deployed_at": "2026-11-27T12:00:00Z", "health": "healthy"}},
        "metadata": {},
        "commit": {"sha": "a".repeat(40), "subject": "PAY-1 change"},
        "commits": (0..30).map(|i| serde_json::json!({"sha": format!("{i:040}"), "subject": format!("PAY-{i}: change {i}")})).collect::<Vec<_>>(),
    });
    let cases = [
        (
            "change-freeze",
            serde_json::json!({"timezone": "Europe/Berlin", "windows": [{"days": ["fri"], "from": "15:00", "until": "24:00"}]}),
        ),
        (
            "ticket-required",
            serde_json::json!({"pattern": "PAY-[0-9]+"}),
        ),
        ("soak-time", serde_json::json!({"minutes": 30})),
    ];
    let now = Duration::from_secs(1_795_000_000);
    println!("{runs} warm and hot runs each (cold: 5 runs); one evaluation per run.\n");
    println!(
        "| hook | size | cold (compile) p50 | warm (cached) p50 | warm p99 | hot p50 | hot p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, config) in cases {
        let file = dir.join(format!("{}.wasm", name.replace('-', "_")));
        let size = std::fs::metadata(&file).expect("built").len();
        let hook = HookConfig {
            name: name.into(),
            wasm: file.display().to_string(),
            config,
            on: Vec::new(),
            limits: Limits::default(),
            read_only_dirs: Vec::new(),
        };
        let hooks = std::slice::from_ref(&hook);
        let once = |cache: Option<&Path>| {
            let t = Instant::now();
            let set = HookSet::load(Path::new("/"), hooks, cache).expect("engine");
            let d = set.evaluate(GateAction::Promote, &input, now);
            assert!(set.problems().is_empty(), "{:?}", set.problems());
            assert!(!d.is_empty());
            t.elapsed()
        };
        let mut cold: Vec<Duration> = (0..5).map(|_| once(None)).collect();
        cold.sort();
        let cache = tempfile::tempdir().expect("tempdir");
        once(Some(cache.path()));
        let mut warm: Vec<Duration> = (0..runs).map(|_| once(Some(cache.path()))).collect();
        warm.sort();
        let set = HookSet::load(Path::new("/"), hooks, Some(cache.path())).expect("engine");
        let mut hot: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                set.evaluate(GateAction::Promote, &input, now);
                t.elapsed()
            })
            .collect();
        hot.sort();
        println!(
            "| `{name}` | {} KiB | {} | {} | {} | {} | {} |",
            size / 1024,
            ms(percentile(&cold, 0.5)),
            ms(percentile(&warm, 0.5)),
            ms(percentile(&warm, 0.99)),
            ms(percentile(&hot, 0.5)),
            ms(percentile(&hot, 0.99)),
        );
    }
}
