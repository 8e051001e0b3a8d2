//! What the benchmarks share: timing a command in a child process (median wall time and peak
//! RSS of its process tree), the release binary, git helpers and the records the fixtures
//! hold.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use atmos_core::contracts::layout::rfc3339;
use atmos_core::contracts::{Decision, Status, TagRecord, Verdict};

/// When the bench binary was started as `<bench> --measure <cmd…>`: measure and exit.
pub fn measure_mode() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--measure") {
        measure_child(&args[2..]);
        std::process::exit(0);
    }
}

/// Median wall time (ms) and max peak RSS (KiB) of `script` over `runs` runs.
pub fn sample(script: &str, runs: usize) -> (f64, u64) {
    let me = std::env::current_exe().expect("bench binary");
    let mut times = Vec::new();
    let mut rss = 0;
    for _ in 0..runs {
        let out = Command::new(&me)
            .args(["--measure", "sh", "-c", script])
            .output()
            .expect("measure");
        assert!(
            out.status.success(),
            "{script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace();
        let ms: f64 = parts.next().and_then(|p| p.parse().ok()).expect("ms");
        let kb: u64 = parts.next().and_then(|p| p.parse().ok()).expect("kb");
        times.push(ms);
        rss = rss.max(kb);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], rss)
}

/// Child mode: run the command, print wall ms and the peak RSS (KiB) of its process tree.
/// `sh` itself is small; for a single command, the peak is that command's.
pub fn measure_child(cmd: &[String]) {
    let start = Instant::now();
    let status = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .status()
        .expect("spawn");
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    if !status.success() {
        std::process::exit(1);
    }
    println!("{ms:.3} {}", usage.max_rss());
}

pub fn atmos_binary() -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "atmos-cli",
            "--bin",
            "atmos",
        ])
        .status()
        .expect("cargo build");
    assert!(status.success());
    target.join("release/atmos")
}

pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

pub fn fast_import(root: &Path, args: &[&str], stream: &str) {
    let mut child = Command::new("git")
        .arg("fast-import")
        .args(args)
        .current_dir(root)
        .stdin(Stdio::piped())
        .spawn()
        .expect("fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("write");
    assert!(child.wait().expect("fast-import").success());
}

pub fn data(out: &mut String, text: &str) {
    out.push_str(&format!("data {}\n{text}\n", text.len()));
}

/// The message of a plain success record, as a rollout of `d`/`t`/`c` at `at` writes it.
pub fn record_message(
    d: &str,
    t: &str,
    c: &str,
    sha: &str,
    at: jiff::Timestamp,
    round: usize,
) -> String {
    TagRecord {
        deployment: d.to_owned(),
        target: t.to_owned(),
        component: c.to_owned(),
        deployed_by: "ci@example.com".into(),
        git_sha: sha.to_owned(),
        timestamp: rfc3339(at),
        status: Status::Success,
        promoted_from: None,
        promoted_at: None,
        rollback_of: None,
        previous_record: None,
        previous_sha: None,
        build_id: Some(round.to_string()),
        component_type: Some("script".into()),
        duration_ms: Some(1200),
        error: None,
        verification: None,
        rules_ref: None,
        rules_commit: None,
        approved_commit: None,
        image: None,
        image_digest: None,
        context: Default::default(),
        rollout_id: None,
        metadata: [("pr".to_owned(), format!("#{round}"))]
            .into_iter()
            .collect(),
        decisions: vec![Decision::new(
            "builtin/promotion-path",
            "promotion_path",
            Verdict::Allow,
            format!("{t} is an allowed promotion"),
        )],
    }
    .to_message()
}
