//! What people read, reviewed as it is: the human output (tables, boxes, gate reports, errors)
//! and the JSON of every verb, snapshotted with `insta` along the example's whole flow —
//! build, roll out, promote, be refused, approve, promote to prod, query. Alignment and wording
//! changes show up as snapshot diffs (`cargo insta review`, or `INSTA_UPDATE=always`).
//!
//! Only what changes from run to run is replaced, each by a placeholder of the same width so
//! that the columns stay where atmos put them: commits by their names (`<c1…>`), other object
//! ids and digests by zeros, times by their format (`YYYY-MM-DD…`), durations, the temporary
//! folder.

use regex::Regex;

use crate::support::{Repo, Run, args};

/// The example, made independent of the calendar: the year-end freeze window is moved to the
/// past and the weekend freeze hook gets no windows.
fn example() -> Repo {
    let repo = Repo::example();
    let settings = repo.path().join("gates/settings.yaml");
    let text = std::fs::read_to_string(&settings).expect("settings");
    let text = text
        .replace("2026-12-21T00:00:00Z", "2020-12-21T00:00:00Z")
        .replace("2027-01-04T00:00:00Z", "2021-01-04T00:00:00Z");
    std::fs::write(&settings, text).expect("write settings");
    let file = repo.path().join("deployments/_defaults/release-chain.yaml");
    let text = std::fs::read_to_string(&file).expect("deployment");
    let text = text.replace(
        "                - {days: [sat, sun], from: \"00:00\", until: \"24:00\", reason: no weekend changes to prod}\n",
        "",
    );
    let text = text.replace(
        "            windows:\n            limits",
        "            windows: []\n            limits",
    );
    std::fs::write(&file, text).expect("write deployment");
    repo
}

/// How one pattern's match is rewritten.
type Rewrite = dyn Fn(&str) -> String;

/// Replaces what differs between runs by same-width placeholders.
struct Scrubber {
    commits: Vec<(String, String)>,
    root: String,
}

impl Scrubber {
    fn placeholder(name: &str, width: usize) -> String {
        let inner = width.saturating_sub(2);
        let mut s = name.chars().take(inner).collect::<String>();
        while s.chars().count() < inner {
            s.push('.');
        }
        format!("<{s}>")
    }

    fn scrub(&self, text: &str) -> String {
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut out = text.replace(&workspace.display().to_string(), "[atmos]");
        out = out.replace(&self.root, "[repo]");
        if let Some(base) = std::path::Path::new(&self.root).file_name() {
            out = out.replace(&*base.to_string_lossy(), "[repo]");
        }
        for (sha, name) in &self.commits {
            for width in [40, 12, 9, 7] {
                out = out.replace(&sha[..width], &Self::placeholder(name, width));
            }
        }
        let rules: [(&str, &Rewrite); 13] = [
            // What hooks log about the clock (decisions now show in history's JSON).
            (r"soaked \d+ s of", &|_| "soaked N s of".into()),
            (r"now is \S+ in ", &|_| "now is <time> in ".into()),
            (r#""rollout_id": "\d+\.\d+""#, &|_| {
                r#""rollout_id": "<id>""#.into()
            }),
            (r"/tmp/atmos-[a-z]+-[A-Za-z0-9]+", &|_| "[scratch]".into()),
            (r"sha256:[0-9a-f]{64}", &|m| {
                format!("sha256:{}", "0".repeat(m.len() - 7))
            }),
            (r"\b[0-9a-f]{40}\b", &|m| "0".repeat(m.len())),
            (r"\b[0-9a-f]{7,12}\b", &|m| "0".repeat(m.len())),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", &|m| {
                "YYYY-MM-DDTHH:MM:SSZ"
                    .chars()
                    .chain(std::iter::repeat('0'))
                    .take(m.len())
                    .collect()
            }),
            // A record's name: its time, and a suffix when another record of its history has
            // that second (the intent and the outcome of a quick run).
            (r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ(\.\d+)?", &|_| {
                "YYYY-MM-DDTHH-MM-SSZ[.N]".into()
            }),
            (r"\d{4}-\d\d-\d\d \d\d:\d\d", &|_| "YYYY-MM-DD HH:MM".into()),
            (r"\b\d\d:\d\d:\d\d\b", &|_| "HH:MM:SS".into()),
            (r"\d+\.\d+ ?m?s\b", &|m| {
                if m.ends_with("ms") {
                    "N.N ms".into()
                } else {
                    "N.Ns".into()
                }
            }),
            (r#""(duration_ms|size_bytes|pid)": \d+"#, &|m| {
                format!("{}: 0", m.split(':').next().unwrap_or_default())
            }),
        ];
        for (pattern, replace) in rules {
            let re = Regex::new(pattern).expect("regex");
            out = re
                .replace_all(&out, |c: &regex::Captures| replace(&c[0]))
                .into_owned();
        }
        out
    }

    fn run(&self, run: &Run) -> String {
        let mut text = format!("exit: {}\n", run.code);
        if !run.stdout.is_empty() {
            text.push_str("--- stdout\n");
            text.push_str(&self.scrub(&run.stdout));
        }
        if !run.stderr.is_empty() {
            text.push_str("--- stderr\n");
            text.push_str(&self.scrub(&run.stderr));
        }
        text
    }
}

macro_rules! snap {
    ($scrubber:expr, $name:literal, $run:expr) => {{
        let run = $run;
        insta::assert_snapshot!($name, $scrubber.run(&run));
        run
    }};
}

/// The example's whole flow, one snapshot per command.
#[test]
fn every_verb_along_the_example_flow() {
    let repo = example();
    let c1 = repo.commit("Initial payment-service layout");
    let mut s = Scrubber {
        commits: vec![(c1.clone(), "c1".into())],
        root: repo.path().display().to_string(),
    };
    let atmos = |args: &[&str]| repo.atmos_stand_ins(args);
    let as_ = |who: &str, args: &[&str]| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/stand-ins");
        let bin = |t: &str| dir.join(t).display().to_string();
        repo.atmos_env(
            args,
            &[
                ("ATMOS_ACTOR", who),
                ("ATMOS_TERRAFORM_BIN", &bin("terraform")),
                ("ATMOS_NIXPACKS_BIN", &bin("nixpacks")),
                ("ATMOS_HELMFILE_BIN", &bin("helmfile")),
                ("ATMOS_DOCKER_BIN", &bin("docker")),
            ],
        )
    };
    let d = "payment-service";

    // The configuration.
    snap!(
        s,
        "validate_all",
        atmos(&["deployment", "validate", "--all"])
    )
    .code(0);
    snap!(s, "list", atmos(&["deployment", "list"])).code(0);
    snap!(
        s,
        "list_targets",
        atmos(&["deployment", "list", "targets", d])
    )
    .code(0);
    snap!(
        s,
        "describe_prod",
        atmos(&["deployment", "describe", d, "--target", "prod"])
    )
    .code(0);
    snap!(
        s,
        "promotion_graph",
        atmos(&["deployment", "promotion-graph", d])
    )
    .code(0);
    snap!(
        s,
        "promotion_graph_mermaid",
        atmos(&["deployment", "promotion-graph", d, "--format", "mermaid"])
    )
    .code(0);

    // Build.
    snap!(
        s,
        "build_plan",
        atmos(&["deployment", "build", d, "--plan"])
    )
    .code(0);
    snap!(
        s,
        "build",
        atmos(&["deployment", "build", d, "--parallelism", "1"])
    )
    .code(0);
    snap!(
        s,
        "sbom_summary",
        atmos(&["deployment", "sbom", d, "--git-sha", "HEAD", "--summary"])
    )
    .code(0);

    // Dev, then a second commit.
    snap!(
        s,
        "rollout_dev",
        atmos(&[
            "deployment",
            "rollout",
            d,
            "--target",
            "dev",
            "--parallelism",
            "1",
            "--metadata",
            "pr=#101"
        ])
    )
    .code(0);
    snap!(
        s,
        "rollout_dev_again",
        atmos(&["deployment", "rollout", d, "--target", "dev"])
    )
    .code(0);
    repo.write_file(
        "migrations/003_index.sql",
        "CREATE INDEX payments_currency ON payments (currency);\n",
    );
    let c2 = repo.commit("Index payments by currency");
    s.commits.push((c2, "c2".into()));
    atmos(&[
        "deployment",
        "rollout",
        d,
        "--target",
        "dev",
        "-c",
        "migrate",
        "-c",
        "smoke-test",
    ])
    .code(0);

    // Staging.
    snap!(
        s,
        "rollout_staging_plan",
        atmos(&[
            "deployment",
            "rollout",
            d,
            "--target",
            "staging",
            "--promote-from",
            "dev",
            "--plan",
            "--parallelism",
            "1"
        ])
    )
    .code(0);
    snap!(
        s,
        "rollout_staging",
        atmos(&[
            "deployment",
            "rollout",
            d,
            "--target",
            "staging",
            "--promote-from",
            "dev",
            "--parallelism",
            "1"
        ])
    )
    .code(0);
    snap!(s, "status_deployment", atmos(&["deployment", "status", d])).code(0);
    snap!(
        s,
        "status_target",
        atmos(&["deployment", "status", d, "--target", "staging"])
    )
    .code(0);
    snap!(s, "status_all", atmos(&["deployment", "status"])).code(0);
    snap!(
        s,
        "history_dev",
        atmos(&["deployment", "history", d, "--target", "dev"])
    )
    .code(0);
    snap!(
        s,
        "promotion_graph_status",
        atmos(&["deployment", "promotion-graph", d, "--show-status"])
    )
    .code(0);
    snap!(
        s,
        "list_components_staging",
        atmos(&["deployment", "list", "components", d, "--target", "staging"])
    )
    .code(0);

    // What would staging get from a third commit?
    let file = repo.path().join("deployments/payment-service.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("concurrency: 4", "concurrency: 8")).expect("write");
    let c3 = repo.commit("Double worker concurrency");
    s.commits.push((c3, "c3".into()));
    atmos(&["deployment", "rollout", d, "--target", "dev", "-q"]).code(0);
    snap!(
        s,
        "diff_staging_dev",
        atmos(&[
            "deployment",
            "diff",
            d,
            "--from-target",
            "staging",
            "--to-target",
            "dev",
            "--show-files"
        ])
    )
    .code(0);

    // Prod: refused, pending, approved.
    snap!(
        s,
        "prod_from_dev_denied",
        atmos(&[
            "deployment",
            "rollout",
            d,
            "--target",
            "prod",
            "--promote-from",
            "dev"
        ])
    )
    .code(3);
    snap!(
        s,
        "prod_without_ticket_denied",
        atmos(&[
            "deployment",
            "rollout",
            d,
            "--target",
            "prod",
            "--promote-from",
            "staging"
        ])
    )
    .code(3);
    let prod = [
        "deployment",
        "rollout",
        d,
        "--target",
        "prod",
        "--promote-from",
        "staging",
        "--metadata",
        "ticket=OPS-42",
    ];
    snap!(s, "prod_pending", atmos(&prod)).code(4);
    snap!(
        s,
        "policy_eval_prod",
        atmos(&[
            "deployment",
            "policy",
            "eval",
            d,
            "--target",
            "prod",
            "--promote-from",
            "staging",
            "--metadata",
            "ticket=OPS-42"
        ])
    )
    .code(4);
    let approve = [
        "deployment",
        "approve",
        d,
        "--target",
        "prod",
        "--promote-from",
        "staging",
    ];
    snap!(s, "approve_self", atmos(&approve)).code(0);
    let signed = |persona: &str| {
        let key = repo.example_key(persona);
        let mut all: Vec<String> = approve.iter().map(|a| a.to_string()).collect();
        all.extend(["--signing-key".to_owned(), key]);
        all
    };
    let alice = signed("alice");
    let alice: Vec<&str> = alice.iter().map(String::as_str).collect();
    snap!(s, "approve_alice", as_("alice@example.com", &alice)).code(0);
    let bob = signed("bob");
    let bob: Vec<&str> = bob.iter().map(String::as_str).collect();
    as_("bob@example.com", &bob).code(0);
    let mut prod_run = prod.to_vec();
    prod_run.extend(["--parallelism", "1"]);
    snap!(s, "rollout_prod", atmos(&prod_run)).code(0);
    snap!(
        s,
        "status_prod",
        atmos(&["deployment", "status", d, "--target", "prod"])
    )
    .code(0);
    snap!(
        s,
        "history_prod",
        atmos(&["deployment", "history", d, "--target", "prod"])
    )
    .code(0);
    snap!(
        s,
        "lock_status",
        atmos(&["deployment", "lock", "status", d, "--target", "prod"])
    )
    .code(0);
    snap!(
        s,
        "matrix",
        atmos(&["deployment", "matrix", d, "--target", "dev"])
    )
    .code(0);
    snap!(s, "verify", atmos(&["deployment", "verify", d])).code(0);

    // JSON documents (the list first: prod's rollout is the newest).
    snap!(
        s,
        "json_list",
        atmos(&["deployment", "list", "--format", "json"])
    )
    .code(0);
    snap!(
        s,
        "json_status_prod",
        atmos(&[
            "deployment",
            "status",
            d,
            "--target",
            "prod",
            "--format",
            "json"
        ])
    )
    .code(0);
    snap!(
        s,
        "json_history_prod",
        atmos(&[
            "deployment",
            "history",
            d,
            "--target",
            "prod",
            "--limit",
            "2",
            "--format",
            "json"
        ])
    )
    .code(0);
    snap!(
        s,
        "json_rollout_report",
        atmos(&[
            "deployment",
            "rollout",
            d,
            "--target",
            "dev",
            "-c",
            "migrate",
            "--force",
            "--format",
            "json"
        ])
    )
    .code(0);
    snap!(
        s,
        "json_verify",
        // --full: the table run above checkpointed the deployment, and this document shows
        // every record checked.
        atmos(&args("deployment verify --format json --full"))
    )
    .code(0);

    // Errors people hit.
    snap!(
        s,
        "error_unknown_deployment",
        atmos(&["deployment", "status", "payments"])
    )
    .code(2);
    snap!(
        s,
        "error_unknown_target",
        atmos(&["deployment", "status", d, "--target", "stagin"])
    )
    .code(2);
    snap!(
        s,
        "error_unknown_deployment_json",
        atmos(&args("deployment history payments --format json"))
    )
    .code(2);

    // Health, from the components' own health commands.
    snap!(
        s,
        "status_prod_check_health",
        atmos(&args(
            "deployment status payment-service --target prod --check-health"
        ))
    )
    .code(0);
    snap!(
        s,
        "list_components_prod_health",
        atmos(&args(
            "deployment list components payment-service --target prod"
        ))
    )
    .code(0);

    // A release that fails its post-deploy verification is rolled back automatically.
    let main = repo.path().join("services/api/main.go");
    let code = std::fs::read_to_string(&main).expect("main.go");
    std::fs::write(&main, code.replace("\"/healthz\"", "\"/health\"")).expect("write");
    let broken = repo.commit("Rename the api's health route");
    s.commits.push((broken, "broken".into()));
    snap!(
        s,
        "rollout_dev_verification_rollback",
        atmos(&args(
            "deployment rollout payment-service --target dev --component api --parallelism 1"
        ))
    )
    .code(1);
    snap!(
        s,
        "history_dev_api_after_rollback",
        atmos(&args(
            "deployment history payment-service --target dev --component api --limit 3"
        ))
    )
    .code(0);
    atmos(&args("deployment verify payment-service")).code(0);
}

/// A broken file, reported where it is broken.
#[test]
fn validate_reports_problems_with_their_place_and_fix() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      api:\n        settings:\n          script: {aply: ./deploy.sh}\n  targets:\n    dev: {}\n    prod:\n      promtion: {from: dev}\n",
    );
    let s = Scrubber {
        commits: Vec::new(),
        root: repo.path().display().to_string(),
    };
    snap!(
        s,
        "validate_errors",
        repo.atmos(&["deployment", "validate", "svc"])
    )
    .code(2);
    snap!(
        s,
        "validate_errors_json",
        repo.atmos(&args("deployment validate svc --format json"))
    )
    .code(2);
}

/// In GitHub Actions every outcome of a rollout reaches the job page: the step summary (with
/// the blockers and the command that clears each), `::error::`/`::warning::` annotations and
/// one `::group::` per component. Snapshotted for success, plan, denial by the promotion path
/// and by a policy, pending, a timed-out wait, an executor failure and an error before anything
/// ran; an unwritable summary path is a warning, not a failure.
#[test]
fn ci_output_for_every_outcome() {
    let repo = example();
    let c1 = repo.commit("Initial payment-service layout");
    let mut s = Scrubber {
        commits: vec![(c1, "c1".into())],
        root: repo.path().display().to_string(),
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/stand-ins");
    let bin = |t: &str| dir.join(t).display().to_string();
    let summary = repo.path().join(".summary.md");
    let summary_path = summary.display().to_string();
    let (tf, nix, helm, docker) = (
        bin("terraform"),
        bin("nixpacks"),
        bin("helmfile"),
        bin("docker"),
    );
    let ci = |args: &[&str]| {
        let _ = std::fs::remove_file(&summary);
        let run = repo.atmos_env(
            args,
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_STEP_SUMMARY", &summary_path),
                ("ATMOS_TERRAFORM_BIN", &tf),
                ("ATMOS_NIXPACKS_BIN", &nix),
                ("ATMOS_HELMFILE_BIN", &helm),
                ("ATMOS_DOCKER_BIN", &docker),
            ],
        );
        let md = std::fs::read_to_string(&summary).unwrap_or_else(|_| "(no summary)".into());
        (run, md)
    };
    let d = "payment-service";
    let check = |s: &Scrubber, name: &str, args: &[&str], code: i32| {
        let (run, md) = ci(args);
        run.code(code);
        insta::assert_snapshot!(
            name,
            format!("{}--- step summary\n{}", s.run(&run), s.scrub(&md))
        );
        run
    };

    let dev = check(
        &s,
        "ci_dev_deployed",
        &[
            "deployment",
            "rollout",
            d,
            "--target",
            "dev",
            "--parallelism",
            "1",
        ],
        0,
    );
    // Alone in its wave, a component streams inside its group; side by side, each is shown
    // whole when it finishes. Every group is closed.
    assert!(dev.stdout.contains("::group::migrate\n"), "{}", dev.stdout);
    assert_eq!(
        dev.stdout.matches("::group::").count(),
        dev.stdout.matches("::endgroup::").count()
    );
    check(
        &s,
        "ci_staging_plan",
        &[
            "deployment",
            "rollout",
            d,
            "--target",
            "staging",
            "--promote-from",
            "dev",
            "--plan",
            "--parallelism",
            "1",
        ],
        0,
    );
    check(
        &s,
        "ci_prod_promotion_denied",
        &[
            "deployment",
            "rollout",
            d,
            "--target",
            "prod",
            "--promote-from",
            "dev",
        ],
        3,
    );
    ci(&[
        "deployment",
        "rollout",
        d,
        "--target",
        "staging",
        "--promote-from",
        "dev",
        "-q",
    ])
    .0
    .code(0);
    check(
        &s,
        "ci_prod_policy_denied",
        &[
            "deployment",
            "rollout",
            d,
            "--target",
            "prod",
            "--promote-from",
            "staging",
        ],
        3,
    );
    check(
        &s,
        "ci_prod_pending",
        &[
            "deployment",
            "rollout",
            d,
            "--target",
            "prod",
            "--promote-from",
            "staging",
            "--metadata",
            "ticket=OPS-42",
        ],
        4,
    );
    check(
        &s,
        "ci_prod_wait_timed_out",
        &[
            "deployment",
            "rollout",
            d,
            "--target",
            "prod",
            "--promote-from",
            "staging",
            "--metadata",
            "ticket=OPS-42",
            "--wait-for-approval",
            "--timeout",
            "2s",
            "--poll-interval",
            "1s",
        ],
        4,
    );
    check(
        &s,
        "ci_unknown_target_error",
        &["deployment", "rollout", d, "--target", "qa"],
        2,
    );
    repo.write_file(
        "scripts/smoke-test.sh",
        "#!/bin/sh\necho checking /healthz >&2\necho 'healthz: 503' >&2\nexit 1\n",
    );
    let c2 = repo.commit("Smoke test that fails");
    s.commits.push((c2, "c2".into()));
    check(
        &s,
        "ci_dev_failed",
        &[
            "deployment",
            "rollout",
            d,
            "--target",
            "dev",
            "-c",
            "smoke-test",
        ],
        1,
    );

    // A summary path that cannot be written: the rollout's outcome stands, with a warning.
    let run = repo.atmos_env(
        &args("deployment rollout payment-service --target dev -c migrate --force"),
        &[(
            "GITHUB_STEP_SUMMARY",
            "/proc/atmos-cannot-write-here/summary.md",
        )],
    );
    run.code(0).stderr_has(&[
        "warning: could not write the step summary to /proc/atmos-cannot-write-here/summary.md",
    ]);
}
