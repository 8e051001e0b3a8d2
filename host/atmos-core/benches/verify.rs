//! `verify` at 10,000 records: how long an audit of a long history takes.
//!
//! Builds (once, cached under `target/bench-fixtures/verify-10k`) a repository with one
//! deployment, three targets (dev → staging → prod, prod requiring an approval, staging and
//! prod requiring signed deployers) and five components; 334 commits each rolled out to dev,
//! promoted to staging and then to prod, each rollout of a component an intent (`started`)
//! and an outcome: 10,020 history tags, every one SSH-signed (Ed25519, the `git tag -s`
//! layout), numbered and chained to the one before it, with the chain refs, the state refs
//! and one approval per commit in the notes. Then it measures, in a fresh process each run, the
//! library's `verify` over the whole history (median wall time) and the process's peak RSS.
//!
//! Run: `cargo bench -p atmos-core --bench verify` (`-- --runs N`, `-- --rebuild`).
//! Figures go in docs/benchmarks.md.

use std::path::Path;
use std::time::Instant;

use atmos_core::contracts::layout::{chain_ref, rfc3339, state_ref, tag_name, timestamp_segment};
use atmos_core::contracts::{Status, TagRecord};
use git2::{ObjectType, Oid, Repository, Signature, Time};
use ssh_key::{HashAlg, LineEnding, PrivateKey};

const TARGETS: [&str; 3] = ["dev", "staging", "prod"];
const COMPONENTS: [&str; 5] = ["api", "worker", "db", "cache", "migrate"];
const COMMITS: usize = 334;
/// Records written: each rollout of a component is an intent and an outcome.
const RECORDS: usize = COMMITS * 3 * 5 * 2;
const START: i64 = 1_750_000_000;

const DEPLOYMENT: &str = "deployment:
  name: svc
  components:
    script:
      api: {settings: {script: {apply: 'true'}}}
      worker: {settings: {script: {apply: 'true'}}}
      db: {settings: {script: {apply: 'true'}}}
      cache: {settings: {script: {apply: 'true'}}}
      migrate: {settings: {script: {apply: 'true'}}}
  targets:
    dev: {}
    staging:
      promotion:
        from: dev
        deployers: {from_groups: [release], require_signed: true}
    prod:
      promotion:
        from: staging
        requires_approval: true
        approvals: {from_groups: [sre]}
        deployers: {from_groups: [release], require_signed: true}
";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-fixtures/verify-10k-chained");
    if args.get(1).map(String::as_str) == Some("--measure") {
        measure(&root, args.get(2).map(String::as_str) == Some("full"));
        return;
    }
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5usize);
    if args.iter().any(|a| a == "--rebuild") || !root.join(".complete").exists() {
        let started = Instant::now();
        generate(&root);
        eprintln!("fixture built in {:.1} s", started.elapsed().as_secs_f64());
    }
    let me = std::env::current_exe().expect("bench binary");
    println!("| records | verify (median of {runs}) | per record | peak RSS | checked |");
    println!("|---|---|---|---|---|");
    // `--full` reads every record; then, the fixture verified clean and checkpointed, a
    // re-verification with nothing new reads none.
    for mode in ["full", "checkpoint"] {
        sample(&me, mode, runs);
    }
}

/// Run `--measure <mode>` `runs` times in fresh processes and print the row.
fn sample(me: &Path, mode: &str, runs: usize) {
    let mut times = Vec::new();
    let mut rss = 0u64;
    let mut summary = String::new();
    for _ in 0..runs {
        let out = std::process::Command::new(me)
            .args(["--measure", mode])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut parts = text.split_whitespace();
        let ms: f64 = parts.next().and_then(|v| v.parse().ok()).expect("ms");
        let kib: u64 = parts.next().and_then(|v| v.parse().ok()).expect("kib");
        summary = parts.collect::<Vec<_>>().join(" ");
        times.push(ms);
        rss = rss.max(kib);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "| {} ({mode}) | {:.0} ms | {:.1} µs | {:.1} MiB | {summary} |",
        RECORDS,
        median,
        median * 1000.0 / RECORDS as f64,
        rss as f64 / 1024.0
    );
}

/// One run in this process: open, verify, report `ms peak-KiB summary`.
fn measure(root: &Path, full: bool) {
    let started = Instant::now();
    let project = atmos_core::config::Project::open(root.to_owned()).expect("project");
    let git = atmos_core::git::GitRepo::discover(root).expect("repo");
    let report = atmos_core::workflow::verify::verify(
        &project,
        &git,
        None,
        &atmos_core::workflow::verify::VerifyRequest {
            full,
            ..Default::default()
        },
    )
    .expect("verify");
    assert_eq!(report.incremental.is_empty(), full, "checkpoint use");
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    assert!(
        report.clean(),
        "{:#?}",
        &report.problems[..report.problems.len().min(5)]
    );
    assert_eq!(report.checked.signed, report.checked.records);
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    println!(
        "{ms:.1} {peak} {} records, {} signed, {} state refs, 0 problems",
        report.checked.records, report.checked.signed, report.checked.state_refs
    );
}

fn generate(root: &Path) {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root.join("deployments")).expect("mkdir");
    let keys = root.join(".bench-keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let key_path = keys.join("release");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f"])
        .arg(&key_path)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let key = PrivateKey::read_openssh_file(&key_path).expect("key");
    let public = std::fs::read_to_string(key_path.with_extension("pub")).expect("pub");
    std::fs::write(
        root.join("allowed_signers"),
        format!("ci@example.com {}\n", public.trim()),
    )
    .expect("write");
    std::fs::write(
        root.join("atmos.yaml"),
        "approvers:\n  groups:\n    release: [ci@example.com]\n    sre: [alice@example.com]\n  allowed_signers: allowed_signers\n",
    )
    .expect("write");
    std::fs::write(root.join("deployments/svc.yaml"), DEPLOYMENT).expect("write");
    std::fs::write(root.join(".gitignore"), ".bench-keys/\n.complete\n").expect("write");

    let repo = Repository::init(root).expect("init");
    let sig =
        |secs: i64| Signature::new("CI", "ci@example.com", &Time::new(secs, 0)).expect("signature");
    // Commits: the first holds the rules, each next one a change.
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    let mut tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let mut commits: Vec<Oid> = Vec::new();
    for i in 0..COMMITS {
        if i > 0 {
            let blob = repo.blob(format!("{i}\n").as_bytes()).expect("blob");
            let mut builder = repo.treebuilder(Some(&tree)).expect("builder");
            builder.insert("VERSION", blob, 0o100644).expect("insert");
            tree = repo
                .find_tree(builder.write().expect("write"))
                .expect("tree");
        }
        let parents: Vec<git2::Commit<'_>> = commits
            .last()
            .map(|p| repo.find_commit(*p).expect("parent"))
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let when = START + i as i64 * 600;
        let id = repo
            .commit(
                None,
                &sig(when),
                &sig(when),
                &format!("change {i}"),
                &tree,
                &refs,
            )
            .expect("commit");
        commits.push(id);
    }
    let head = *commits.last().expect("commits");

    // Records: each commit to dev, then staging, then prod, a minute apart.
    let odb = repo.odb().expect("odb");
    let mut refs: Vec<(String, Oid)> = Vec::new();
    let mut previous: std::collections::HashMap<(String, String), (Oid, u64)> =
        std::collections::HashMap::new();
    let mut notes: Vec<(Oid, String)> = Vec::new();
    for (i, commit) in commits.iter().enumerate() {
        let sha = commit.to_string();
        let base = START + i as i64 * 600 + 60;
        notes.push((
            *commit,
            format!(
                "{{\"approved_by\":\"alice@example.com\",\"approved_at\":\"{}\",\"decision\":\"approve\",\"deployment\":\"svc\",\"target\":\"prod\",\"git_sha\":\"{sha}\",\"method\":\"recorded\"}}\n",
                rfc3339(jiff::Timestamp::from_second(base + 60).expect("time"))
            ),
        ));
        for (t, target) in TARGETS.iter().enumerate() {
            let at = jiff::Timestamp::from_second(base + t as i64 * 120).expect("time");
            for component in COMPONENTS {
                let key_of = (target.to_string(), component.to_string());
                let mut intent: Option<Oid> = None;
                for (n, status) in [Status::Started, Status::Success].into_iter().enumerate() {
                    let (last, sequence) = previous
                        .get(&key_of)
                        .map_or((None, 0), |(o, n)| (Some(*o), *n));
                    let name = tag_name("svc", target, component, &timestamp_segment(at), n as u32);
                    let record = TagRecord {
                        deployment: "svc".into(),
                        target: target.to_string(),
                        component: component.into(),
                        deployed_by: "ci@example.com".into(),
                        git_sha: sha.clone(),
                        timestamp: rfc3339(at),
                        status,
                        promoted_from: t.checked_sub(1).map(|s| TARGETS[s].to_string()),
                        promoted_at: None,
                        rollback_of: None,
                        rolled_forward_from: None,
                        previous_record: last.map(|o| o.to_string()),
                        sequence: Some(sequence + 1),
                        intent: intent.map(|o| o.to_string()),
                        source_record: None,
                        recorded_by: None,
                        recorded_at: None,
                        runner: None,
                        previous_sha: None,
                        build_id: None,
                        component_type: Some("script".into()),
                        duration_ms: (status == Status::Success).then_some(1200),
                        error: None,
                        verification: None,
                        canary: None,
                        rules_ref: Some("HEAD".into()),
                        rules_commit: Some(head.to_string()),
                        approved_commit: (*target == "prod").then(|| sha.clone()),
                        image: None,
                        image_digest: None,
                        image_source: None,
                        context: Default::default(),
                        rollout_id: Some(format!("{i}.{t}")),
                        metadata: Default::default(),
                        decisions: Vec::new(),
                    };
                    let mut content = format!(
                        "object {sha}\ntype commit\ntag {name}\ntagger CI <ci@example.com> {} +0000\n\n{}",
                        at.as_second(),
                        record.to_message()
                    );
                    let signature = key
                        .sign("git", HashAlg::Sha512, content.as_bytes())
                        .expect("sign")
                        .to_pem(LineEnding::LF)
                        .expect("pem");
                    content.push_str(&signature);
                    let oid = odb
                        .write(ObjectType::Tag, content.as_bytes())
                        .expect("write tag");
                    if status == Status::Started {
                        intent = Some(oid);
                    }
                    previous.insert(key_of.clone(), (oid, sequence + 1));
                    refs.push((format!("refs/tags/{name}"), oid));
                }
            }
        }
    }
    for ((target, component), (oid, _)) in &previous {
        refs.push((chain_ref("svc", target, component), *oid));
    }
    for target in TARGETS {
        for component in COMPONENTS {
            refs.push((state_ref("svc", target, component), head));
        }
    }
    // The approvals, one note per commit, in one notes commit.
    let mut builder = repo.treebuilder(None).expect("builder");
    for (commit, text) in &notes {
        let blob = repo.blob(text.as_bytes()).expect("blob");
        builder
            .insert(commit.to_string(), blob, 0o100644)
            .expect("note");
    }
    let notes_tree = repo
        .find_tree(builder.write().expect("write"))
        .expect("tree");
    let notes_commit = repo
        .commit(None, &sig(START), &sig(START), "notes", &notes_tree, &[])
        .expect("notes commit");
    refs.push(("refs/notes/atmos/svc/approvals".into(), notes_commit));
    refs.push(("refs/heads/main".into(), head));
    refs.sort();
    let mut packed = String::from("# pack-refs with: sorted \n");
    for (name, oid) in &refs {
        packed.push_str(&format!("{oid} {name}\n"));
    }
    std::fs::write(root.join(".git/packed-refs"), packed).expect("packed-refs");
    repo.set_head("refs/heads/main").expect("head");
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .expect("checkout");
    std::fs::write(root.join(".complete"), "").expect("done");
}
