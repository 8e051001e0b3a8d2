//! History at scale: a shared remote holding 1,000,000 records — 50 deployments × 3 targets ×
//! 5 components, one record per component every 12 hours for about 22 months — generated once
//! with `git fast-import` and cached under `target/bench-fixtures/history-1m-chained/`. Each run works
//! on a copy of that remote and measures (median wall time, peak RSS of the process tree):
//!
//! - before archiving: a runner's first sync of one deployment (fresh clone without tags, then
//!   `atmos deployment fetch d07`), its no-op sync afterwards, the same no-op fetch of every
//!   deployment's records (what each rollout fetched before syncs were scoped), `status`,
//!   `status` of every deployment, `history --limit 20`;
//! - `atmos deployment archive d07` folding about a year of its records into the ledger (one
//!   atomic push per 1,000 records);
//! - after: the same syncs and queries, and `history --since/--until` reaching into the ledger.
//!
//! Run: `cargo bench -p atmos-cli --bench history_scale` (`-- --runs N`, `-- --rebuild`).
//! Generating the fixture takes a few minutes the first time. Figures: docs/benchmarks.md.
//!
//! `-- --default-retention` measures instead what a store that grew to a million records
//! under the default retention costs a runner: the store's history folded once with the
//! default (`archive --offline` on the store), then a runner's first and no-op syncs beside
//! git's own fetch of the same refspecs, and real rollouts of five components (each folding
//! older records when due) beside the same rollout's local work (`--plan --offline`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{atmos_binary, git, sample};

const DEPLOYMENTS: usize = 50;
const TARGETS: [&str; 3] = ["dev", "staging", "prod"];
const COMPONENTS: [&str; 5] = ["api", "worker", "db", "cache", "migrate"];
const RECORDS: usize = 1_000_000;
const COMMITS: usize = 200;
/// Hours between two records of one component.
const SPACING_HOURS: i64 = 12;

fn main() {
    common::measure_mode();
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5usize);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-fixtures/history-1m-chained");
    if args.iter().any(|a| a == "--rebuild") || !fixture.join(".complete").exists() {
        generate(&fixture);
    }
    let newest: i64 = std::fs::read_to_string(fixture.join(".complete"))
        .expect("marker")
        .trim()
        .parse()
        .expect("newest record time");
    if args.iter().any(|a| a == "--default-retention") {
        default_retention(&fixture, runs);
        return;
    }
    let atmos = atmos_binary().display().to_string();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let (remote, url) = common::copy_remote(&fixture, w);
    let runner = w.join("runner");
    let d = "d07";
    let first_sync = format!(
        "rm -rf {w}/fresh && git clone -q --no-tags {url} {w}/fresh && {atmos} -C {w}/fresh deployment fetch {d} >/dev/null",
        w = w.display()
    );
    let count_fresh = || count_refs(&url, &format!("refs/tags/atmos/deployments/{d}/*"));
    git(w, &["clone", "-q", "--no-tags", &url, "runner"]);
    git(&runner, &["config", "user.email", "bench@example.com"]);
    git(&runner, &["config", "user.name", "Bench"]);
    let r = runner.display().to_string();
    let sync = format!("{atmos} -C {r} deployment fetch {d} >/dev/null");
    let status = format!("{atmos} -C {r} deployment status {d} >/dev/null 2>&1");
    let history =
        format!("{atmos} -C {r} deployment history {d} --target prod --limit 20 >/dev/null 2>&1");
    let every = format!(
        "git -C {r} fetch -q --no-tags origin '+refs/atmos/deployments/*:refs/atmos/deployments/*' '+refs/tags/atmos/*:refs/tags/atmos/*'"
    );
    let at = |t: i64| {
        jiff::Timestamp::from_second(t)
            .expect("time")
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let day = 86_400;
    let since = format!(
        "{atmos} -C {r} deployment history {d} --target prod --since {} --until {} --limit 20 >/dev/null 2>&1",
        at(newest - 500 * day),
        at(newest - 490 * day)
    );

    println!(
        "Remote: {RECORDS} records ({} per deployment), {} state refs, {COMMITS} commits; median of {runs} runs (one for the long ones), peak RSS.\n",
        RECORDS / DEPLOYMENTS,
        DEPLOYMENTS * TARGETS.len() * COMPONENTS.len()
    );
    println!("| step | time | peak RSS |");
    println!("|---|---|---|");
    let row = |name: &str, script: &str, n: usize| {
        let (ms, kb) = sample(script, n);
        let time = if ms >= 1000.0 {
            format!("{:.2} s", ms / 1000.0)
        } else {
            format!("{ms:.0} ms")
        };
        println!("| {name} | {time} | {:.0} MiB |", kb as f64 / 1024.0);
    };
    row(
        &format!(
            "before: runner's first sync of {d} (clone without tags + fetch; {} of its tags)",
            count_fresh()
        ),
        &first_sync,
        1,
    );
    git(&runner, &["fetch", "-q", "origin"]);
    sample(&sync, 1);
    row(&format!("before: no-op sync of {d}"), &sync, runs);
    row(
        "before: no-op fetch of every deployment's records (first fetch not timed)",
        &{
            sample(&every, 1);
            every.clone()
        },
        1,
    );
    row(&format!("before: status {d}"), &status, runs);
    // Every deployment's records, as atmos's own fetch leaves them (chain refs included: the
    // git fetch above mirrors what rollouts fetched before chains existed).
    sample(
        &format!("{atmos} -C {r} deployment fetch >/dev/null 2>&1"),
        1,
    );
    let overview = format!("{atmos} -C {r} deployment status >/dev/null 2>&1");
    row(
        &format!("before: status of every deployment ({DEPLOYMENTS})"),
        &overview,
        runs,
    );
    row(
        &format!("before: history {d} --target prod --limit 20"),
        &history,
        runs,
    );
    // A rollout's push (two new tags, two state refs, each with its lease) against the
    // remote as it is: git's push client matches every named ref against every ref the
    // remote advertises, so its cost follows the remote's size.
    let tip = String::from_utf8_lossy(
        &Command::new("git")
            .args(["-C", &r, "rev-parse", "HEAD"])
            .output()
            .expect("rev-parse")
            .stdout,
    )
    .trim()
    .to_owned();
    let push = format!(
        "git -C {r} push --dry-run --atomic --porcelain origin {} >/dev/null",
        ["a", "b"]
            .iter()
            .flat_map(|n| {
                [
                    format!("--force-with-lease=refs/tags/bench/{n}: {tip}:refs/tags/bench/{n}"),
                    format!("--force-with-lease=refs/atmos/bench/{n}: {tip}:refs/atmos/bench/{n}"),
                ]
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    row(
        "before: a rollout's push (4 refs with leases, --dry-run)",
        &push,
        1,
    );

    // Retention on the store itself: every deployment keeps 90 days of tags. (From a clone,
    // the same archive is one atomic push per 1,000 records, which against a remote of a
    // million refs costs what the push row above shows per named ref.)
    let server = work_tree(&remote, w);
    let age_days = (jiff::Timestamp::now().as_second() - newest) / day + 90;
    let archive = format!(
        "{atmos} -C {} deployment archive --keep {age_days}d --offline >/dev/null 2>&1",
        server.display()
    );
    row(
        &format!(
            "archive every deployment --keep 90d on the store (--offline; {} records)",
            RECORDS
        ),
        &archive,
        1,
    );
    row(
        &format!(
            "after: runner's first sync of {d} (clone without tags + fetch; {} of its tags)",
            count_fresh()
        ),
        &first_sync,
        1,
    );
    // A new runner clone, as CI makes one per job.
    std::fs::remove_dir_all(&runner).expect("rm runner");
    git(w, &["clone", "-q", "--no-tags", &url, "runner"]);
    git(&runner, &["config", "user.email", "bench@example.com"]);
    git(&runner, &["config", "user.name", "Bench"]);
    sample(&sync, 1);
    row(&format!("after: no-op sync of {d}"), &sync, runs);
    row(&format!("after: status {d}"), &status, runs);
    row(
        &format!("after: history {d} --target prod --limit 20"),
        &history,
        runs,
    );
    row(
        &format!("after: history {d} --target prod --since/--until 500–490 days back (ledger)"),
        &since,
        runs,
    );
    row(
        "after: a rollout's push (4 refs with leases, --dry-run)",
        &push,
        1,
    );
    let all_tags = Command::new("git")
        .args(["ls-remote", "--tags", &url])
        .output()
        .expect("ls-remote");
    println!(
        "\nTags a full clone carries after archiving: {} (before: {RECORDS}).",
        String::from_utf8_lossy(&all_tags.stdout)
            .lines()
            .filter(|l| !l.ends_with("^{}"))
            .count()
    );
}

/// A work tree of the bare store `remote` at `dir/server` (main checked out): where the
/// store's own repository is archived with `--offline`.
fn work_tree(remote: &Path, dir: &Path) -> std::path::PathBuf {
    let server = dir.join("server");
    git(
        dir,
        &[
            "--git-dir",
            remote.to_str().expect("utf-8"),
            "worktree",
            "add",
            "-q",
            server.to_str().expect("utf-8"),
            "main",
        ],
    );
    server
}

/// Median and max wall time (ms) and max peak RSS (KiB) of `script`, run `runs` times.
fn spread(script: &str, runs: usize) -> (f64, f64, u64) {
    let mut times = Vec::new();
    let mut rss = 0;
    for _ in 0..runs {
        let (ms, kb) = sample(script, 1);
        times.push(ms);
        rss = rss.max(kb);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1], rss)
}

fn shown(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// The remote's refs under `prefix`.
fn count_refs(url: &str, prefix: &str) -> usize {
    let out = Command::new("git")
        .args(["ls-remote", url, prefix])
        .output()
        .expect("ls-remote");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.ends_with("^{}"))
        .count()
}

/// `-- --default-retention`: see the module's documentation.
fn default_retention(fixture: &Path, runs: usize) {
    let atmos = atmos_binary().display().to_string();
    let d = "d07";
    println!(
        "Remote: {RECORDS} records, {} histories; default retention (history.keep_tags unset: the newest {} rollouts).\n",
        DEPLOYMENTS * TARGETS.len() * COMPONENTS.len(),
        atmos_core::config::settings::DEFAULT_KEEP_ROLLOUTS
    );
    println!("| step | time (median) | max | peak RSS |");
    println!("|---|---|---|---|");
    let row = |name: &str, (median, max, kb): (f64, f64, u64)| {
        println!(
            "| {name} | {} | {} | {:.0} MiB |",
            shown(median),
            shown(max),
            kb as f64 / 1024.0
        );
    };
    // The store folded once with the default retention, cached beside the fixture.
    let retained = fixture.with_file_name("history-1m-retained");
    if !retained.join(".complete").exists() {
        let _ = std::fs::remove_dir_all(&retained);
        std::fs::create_dir_all(&retained).expect("mkdir");
        let (store, _) = common::copy_remote(fixture, &retained);
        let server = work_tree(&store, &retained);
        row(
            "fold the whole store once with the default retention (`archive --offline` on the store)",
            spread(
                &format!(
                    "{atmos} -C {} deployment archive --offline >/dev/null 2>&1",
                    server.display()
                ),
                1,
            ),
        );
        std::fs::remove_dir_all(&server).expect("rm worktree");
        let store_dir = store.to_str().expect("utf-8");
        git(&retained, &["--git-dir", store_dir, "worktree", "prune"]);
        // Packed as the server's own maintenance leaves it: otherwise the first pushes start
        // a background `gc` of a million objects on the remote, which the rows would measure.
        git(
            &retained,
            &["--git-dir", store_dir, "gc", "--quiet", "--prune=now"],
        );
        std::fs::write(retained.join(".complete"), "").expect("marker");
    }
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let (_remote, url) = common::copy_remote(&retained, w);
    let tags_before = count_refs(&url, "refs/tags/*");
    println!(
        "\nTags on the remote after the fold: {tags_before} (of {RECORDS} records; the rest in 50 ledgers).\n"
    );
    println!("| step | time (median) | max | peak RSS |");
    println!("|---|---|---|---|");
    let runner = w.join("runner");
    let r = runner.display().to_string();
    row(
        &format!("runner's first sync of {d} (clone without tags + `atmos deployment fetch {d}`)"),
        spread(
            &format!(
                "git clone -q --no-tags {url} {r} && {atmos} -C {r} deployment fetch {d} >/dev/null"
            ),
            1,
        ),
    );
    git(&runner, &["config", "user.email", "bench@example.com"]);
    git(&runner, &["config", "user.name", "Bench"]);
    let specs = atmos_core::git::remote::Remote::open(&runner, "origin")
        .expect("origin")
        .for_deployment(d)
        .refspecs()
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(" ");
    row(
        &format!("no-op sync of {d}: `atmos deployment fetch {d}`"),
        spread(
            &format!("{atmos} -C {r} deployment fetch {d} >/dev/null"),
            runs,
        ),
    );
    row(
        &format!("no-op sync of {d}: git alone, `git fetch` of the same refspecs"),
        spread(
            &format!("git -C {r} fetch -q --no-tags origin {specs}"),
            runs,
        ),
    );
    // A new commit per run, so that each rollout deploys all five components.
    let commit = format!("git -C {r} commit -q --allow-empty -m run");
    row(
        &format!("local work of a rollout of {d} to dev (`rollout --plan --offline`)"),
        spread(
            &format!(
                "{commit} && {atmos} -C {r} deployment rollout {d} --target dev --plan --offline >/dev/null 2>&1"
            ),
            runs,
        ),
    );
    let rollouts = runs.max(12);
    row(
        &format!(
            "a rollout of {d} to dev, five components (fetch, lease, intents, outcomes, notes, release, folds when due; {rollouts} runs)"
        ),
        spread(
            &format!(
                "{commit} && {atmos} -C {r} deployment rollout {d} --target dev >/dev/null 2>&1"
            ),
            rollouts,
        ),
    );
    row(
        &format!("`history {d} --target dev --limit 20` (reaches into the ledger)"),
        spread(
            &format!(
                "{atmos} -C {r} deployment history {d} --target dev --limit 20 >/dev/null 2>&1"
            ),
            runs,
        ),
    );
    // Every deployment's records in a new runner: atmos's fetch, then git's own fetch of the
    // same refspecs into another new clone.
    let all = w.join("all");
    let a = all.display().to_string();
    row(
        "first fetch of every deployment (new clone + `atmos deployment fetch`)",
        spread(
            &format!(
                "git clone -q --no-tags {url} {a} && {atmos} -C {a} deployment fetch >/dev/null 2>&1"
            ),
            1,
        ),
    );
    let every = atmos_core::git::remote::Remote::open(&all, "origin")
        .expect("origin")
        .refspecs()
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let floor = w.join("floor");
    let f = floor.display().to_string();
    row(
        "first fetch of every deployment: git alone (new clone + `git fetch` of the same refspecs)",
        spread(
            &format!(
                "git clone -q --no-tags {url} {f} && git -C {f} fetch -q --no-tags origin {every}"
            ),
            1,
        ),
    );
    row(
        &format!("`status` of every deployment ({DEPLOYMENTS}) in that runner"),
        spread(
            &format!("{atmos} -C {a} deployment status >/dev/null 2>&1"),
            runs,
        ),
    );
    println!(
        "\nTags on the remote: {tags_before} before the rollouts, {} after {rollouts} rollouts ({} of {d}/dev).",
        count_refs(&url, "refs/tags/*"),
        count_refs(&url, &format!("refs/tags/atmos/deployments/{d}/dev/*"))
    );
}

/// Write the remote with `git fast-import`, streaming (a million tags do not fit one string
/// comfortably): commits first (to learn their shas), then the tags, then the state refs.
fn generate(root: &Path) {
    eprintln!("generating {} ({RECORDS} records)…", root.display());
    let _ = std::fs::remove_dir_all(root);
    // The folded copy (`--default-retention`) is made from this one.
    let _ = std::fs::remove_dir_all(root.with_file_name("history-1m-retained"));
    std::fs::create_dir_all(root).expect("mkdir");
    git(root, &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    let bare = root.join("remote.git");
    let slots = DEPLOYMENTS * TARGETS.len() * COMPONENTS.len();
    let per_slot = RECORDS.div_ceil(slots);
    // The newest record an hour ago; the oldest per_slot × 12 hours before.
    let newest = jiff::Timestamp::now().as_second() - 3600;
    let base = newest - (per_slot as i64 - 1) * SPACING_HOURS * 3600;

    let deployments: Vec<(String, String)> = (0..DEPLOYMENTS)
        .map(|d| {
            let name = format!("d{d:02}");
            let yaml = common::script_deployment(&name, &COMPONENTS);
            (name, yaml)
        })
        .collect();
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
        for d in 0..DEPLOYMENTS {
            for (ti, t) in TARGETS.iter().enumerate() {
                for c in COMPONENTS {
                    if written == RECORDS {
                        break 'outer;
                    }
                    let at = base + round as i64 * SPACING_HOURS * 3600 + ti as i64 * 60;
                    let ts = jiff::Timestamp::from_second(at).expect("ts");
                    let mark = 1 + (round * COMMITS / per_slot).min(COMMITS - 1);
                    let sha = &shas[&mark];
                    let dn = format!("d{d:02}");
                    let mut chunk = String::new();
                    chains.tag(&mut chunk, (&dn, t, c), sha, ts, round);
                    input.write_all(chunk.as_bytes()).expect("write");
                    last.insert(format!("{dn}/{t}/{c}"), sha.clone());
                    written += 1;
                }
            }
        }
        if round % 200 == 0 {
            eprintln!("  {written} records");
        }
    }
    common::finish_records(&bare, input, child, &last, &chains);
    std::fs::write(root.join(".complete"), newest.to_string()).expect("marker");
    eprintln!("generated");
}
