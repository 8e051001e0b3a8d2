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

/// The records of every component chain a fixture writes: each record names the one before it
/// (`previous_record`, the tag object's id, computed here the way git hashes the tag
/// `fast-import` will write) and its place in the chain, and each chain's ref ends at its
/// newest record, as rollouts leave them. Fixture records stand for outcomes only: a rollout
/// also writes an intent record before each outcome, which would double the tag count.
#[derive(Default)]
pub struct Chains {
    tips: std::collections::HashMap<String, (String, u64)>,
}

impl Chains {
    /// Append the `fast-import` command for one record of `d`/`t`/`c` on `sha` at `at`.
    pub fn tag(
        &mut self,
        out: &mut String,
        (d, t, c): (&str, &str, &str),
        sha: &str,
        at: jiff::Timestamp,
        round: usize,
    ) {
        let slot = format!("{d}/{t}/{c}");
        let (previous, sequence) = match self.tips.get(&slot) {
            Some((oid, n)) => (Some(oid.clone()), n + 1),
            None => (None, 1),
        };
        let name = atmos_core::contracts::layout::tag_name(
            d,
            t,
            c,
            &atmos_core::contracts::layout::timestamp_segment(at),
            0,
        );
        let msg = record_message(d, t, c, sha, at, round, previous, sequence);
        let tagger = format!("CI <ci@example.com> {} +0000", at.as_second());
        let object = format!("object {sha}\ntype commit\ntag {name}\ntagger {tagger}\n\n{msg}");
        let mut hash = sha1_smol::Sha1::new();
        hash.update(format!("tag {}\0", object.len()).as_bytes());
        hash.update(object.as_bytes());
        let oid = hash.digest().to_string();
        out.push_str(&format!("tag {name}\nfrom {sha}\ntagger {tagger}\n"));
        data(out, &msg);
        self.tips.insert(slot, (oid, sequence));
    }

    /// Point every chain ref at its newest record (`git update-ref --stdin` in `git_dir`),
    /// then check one against the tag git wrote, so that a change in how either side
    /// spells a tag fails here rather than producing broken chains.
    pub fn write_refs(&self, git_dir: &Path) {
        let mut stdin = String::new();
        for (slot, (oid, _)) in &self.tips {
            stdin.push_str(&format!("update refs/atmos/chains/{slot} {oid}\n"));
        }
        let mut child = Command::new("git")
            .args(["update-ref", "--stdin"])
            .current_dir(git_dir)
            .stdin(Stdio::piped())
            .spawn()
            .expect("update-ref");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        assert!(child.wait().expect("update-ref").success());
        if let Some((slot, (oid, _))) = self.tips.iter().next() {
            let out = Command::new("git")
                .args(["cat-file", "-t", oid])
                .current_dir(git_dir)
                .output()
                .expect("cat-file");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "tag",
                "the computed id of {slot}'s newest record is not a tag git wrote"
            );
        }
    }
}

/// The message of a plain success record, as a rollout of `d`/`t`/`c` at `at` writes it.
#[allow(clippy::too_many_arguments)]
pub fn record_message(
    d: &str,
    t: &str,
    c: &str,
    sha: &str,
    at: jiff::Timestamp,
    round: usize,
    previous_record: Option<String>,
    sequence: u64,
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
        rolled_forward_from: None,
        previous_record,
        sequence: Some(sequence),
        intent: None,
        source_record: None,
        recorded_by: None,
        recorded_at: None,
        runner: None,
        previous_sha: None,
        build_id: Some(round.to_string()),
        component_type: Some("script".into()),
        duration_ms: Some(1200),
        error: None,
        verification: None,
        canary: None,
        rules_ref: None,
        rules_commit: None,
        approved_commit: None,
        image: None,
        image_digest: None,
        image_source: None,
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

/// A deployment of script components on dev → staging → prod, as the scale fixtures
/// define theirs.
pub fn script_deployment(name: &str, components: &[&str]) -> String {
    let mut yaml = format!("deployment:\n  name: {name}\n  components:\n    script:\n");
    for c in components {
        yaml.push_str(&format!(
            "      {c}:\n        settings: {{script: {{apply: 'true'}}}}\n"
        ));
    }
    yaml.push_str("  targets:\n    dev: {}\n    staging: {promotion: {from: dev}}\n    prod: {promotion: {from: staging}}\n");
    yaml
}

/// Write `commits` commits on `main` of the bare repository `bare` (`git fast-import`), one a
/// minute from `start` (seconds), the first holding `atmos.yaml` (with `git.remote: origin`) and
/// `deployments/<name>.yaml` for each of `deployments` (name, YAML); their shas by mark
/// (1-based).
pub fn write_commits(
    bare: &Path,
    commits: usize,
    start: i64,
    deployments: &[(String, String)],
) -> std::collections::HashMap<usize, String> {
    let mut stream = String::new();
    for i in 0..commits {
        stream.push_str(&format!(
            "commit refs/heads/main\nmark :{}\ncommitter Dev <dev@example.com> {} +0000\n",
            i + 1,
            start + i as i64 * 60
        ));
        data(&mut stream, &format!("change {i}"));
        if i > 0 {
            stream.push_str(&format!("from :{i}\n"));
        } else {
            stream.push_str("M 100644 inline atmos.yaml\n");
            data(&mut stream, "git:\n  remote: origin\n");
            for (name, yaml) in deployments {
                stream.push_str(&format!("M 100644 inline deployments/{name}.yaml\n"));
                data(&mut stream, yaml);
            }
        }
        stream.push_str("M 100644 inline CHANGES\n");
        data(&mut stream, &format!("{i}\n"));
    }
    let marks = bare.join("bench-marks");
    fast_import(
        bare,
        &["--quiet", &format!("--export-marks={}", marks.display())],
        &stream,
    );
    std::fs::read_to_string(&marks)
        .expect("marks")
        .lines()
        .filter_map(|l| {
            let (m, sha) = l.split_once(' ')?;
            Some((m.trim_start_matches(':').parse().ok()?, sha.to_owned()))
        })
        .collect()
}

/// End a record stream: point each state ref (`<d>/<t>/<c>` → commit) at its commit, then
/// the chain refs, and pack refs and objects as a server keeps them.
pub fn finish_records(
    bare: &Path,
    mut input: std::io::BufWriter<std::process::ChildStdin>,
    mut child: std::process::Child,
    last: &std::collections::HashMap<String, String>,
    chains: &Chains,
) {
    for (slot, sha) in last {
        input
            .write_all(format!("reset refs/atmos/deployments/{slot}\nfrom {sha}\n\n").as_bytes())
            .expect("write");
    }
    drop(input);
    assert!(child.wait().expect("fast-import").success());
    chains.write_refs(bare);
    git(bare, &["pack-refs", "--all"]);
    git(bare, &["repack", "-adq"]);
}

/// A copy of `fixture`'s `remote.git` in `dir` (each run works on its own): its path and URL.
pub fn copy_remote(fixture: &Path, dir: &Path) -> (std::path::PathBuf, String) {
    let remote = dir.join("remote.git");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(fixture.join("remote.git"))
        .arg(&remote)
        .status()
        .expect("cp");
    assert!(copied.success());
    let url = format!("file://{}", remote.display());
    (remote, url)
}
