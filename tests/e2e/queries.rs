//! `status`, `history`, `diff`, `list` with state and `promotion-graph --show-status`, on
//! repositories filled by real rollouts. Human output is compared after replacing shas and
//! times with placeholders and collapsing column padding.

use crate::support::{Repo, args, check_output_schema};
use regex::Regex;

use crate::rollout::{Fixture, record};

/// Replace known shas (full and short) with names, relative times and clock times with
/// placeholders, and column padding with two spaces.
fn normalize(text: &str, shas: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (sha, name) in shas {
        out = out.replace(sha, &format!("<{name}>"));
        out = out.replace(&sha[..9], &format!("<{name}>"));
        out = out.replace(&sha[..7], &format!("<{name}>"));
    }
    let ago = Regex::new(r"\d+[smhd] ago|just now").expect("regex");
    let clock = Regex::new(r"\d\d:\d\d:\d\d").expect("regex");
    let date = Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d").expect("regex");
    let pad = Regex::new(r" {2,}").expect("regex");
    out = ago.replace_all(&out, "<ago>").into_owned();
    out = clock.replace_all(&out, "<time>").into_owned();
    out = date.replace_all(&out, "<date>").into_owned();
    out.lines()
        .map(|l| pad.replace_all(l.trim_end(), "  ").into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// v1 in dev and staging (promoted, with a PR and a build id), v2 in dev.
fn deployed() -> (Fixture, String, String) {
    let f = Fixture::new();
    let v1 = f.version("1");
    let env = [("OUT", f.out()), ("GITHUB_RUN_ID", "build-7")];
    // A minute ago by their clock: "newest" across targets is by time, and records carry
    // whole seconds, so the last deploy below must not share their second.
    let earlier = |line: &'static str| {
        crate::support::atmos_faketime(f.repo.path(), "-1m", &args(line), &env).code(0);
    };
    earlier("deployment rollout svc --target dev --metadata pr=#7");
    earlier("deployment rollout svc --target staging --promote-from dev --metadata pr=#7");
    let yaml = std::fs::read_to_string(f.repo.path().join("deployments/svc.yaml")).expect("read");
    f.repo.write("svc.yaml", yaml.replace("keep: 1", "keep: 2"));
    let v2 = f.version("2");
    f.rollout(&["--target", "dev"]).code(0);
    (f, v1, v2)
}

#[test]
fn status_of_one_target_looks_like_the_seed() {
    let (f, v1, v2) = deployed();
    let run = f
        .repo
        .atmos(&args("deployment status svc --target staging"));
    run.code(0);
    let expected = [
        "svc → staging",
        "",
        "Component  Commit  Deployed  By  Status",
        "a  <v1>  <ago> (<time>)  dev@example.com  success",
        "b  <v1>  <ago> (<time>)  dev@example.com  success",
        "",
        "Promoted from: dev",
        "Build ID: build-7",
        "PR: #7",
    ]
    .join("\n");
    assert_eq!(
        normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]),
        expected
    );

    let json = f
        .repo
        .atmos(&args(
            "deployment status svc --target staging --format json",
        ))
        .json();
    let a = &json["targets"][0]["components"][0];
    assert_eq!(a["commit"], v1.as_str(), "full shas in JSON");
    assert!(
        a["deployed_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "{a}"
    );
    assert_eq!(a["promoted_from"], "dev");
    assert_eq!(a["status"], "success");
    assert!(
        a["tag"]
            .as_str()
            .is_some_and(|t| t.starts_with("atmos/deployments/svc/staging/a/"))
    );
    let yaml = f.repo.atmos(&args(
        "deployment status svc --target staging --format yaml",
    ));
    let parsed: serde_json::Value = serde_yaml_ng::from_str(&yaml.stdout).expect("yaml");
    assert_eq!(parsed, json, "YAML carries the same data");
}

#[test]
fn status_of_a_deployment_and_of_everything() {
    let (f, v1, v2) = deployed();
    let run = f.repo.atmos(&["deployment", "status", "svc"]);
    run.code(0);
    let expected = [
        "svc",
        "",
        "Target  Component  Commit  Deployed  Status",
        "dev  a  <v2>  <ago>  success",
        "dev  b  <v2>  <ago>  success",
        "staging  a  <v1>  <ago>  success",
        "staging  b  <v1>  <ago>  success",
        "prod  a  -  never  not deployed",
        "prod  b  -  never  not deployed",
    ]
    .join("\n");
    assert_eq!(
        normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]),
        expected
    );

    let run = f.repo.atmos(&["deployment", "status"]);
    run.code(0);
    let expected = [
        "Deployments (1)",
        "",
        "Deployment  Target  Commit  Deployed  Last rollout",
        "svc  dev  <v2>  <ago>  success",
        "svc  staging  <v1>  <ago>  success",
        "svc  prod  -  never  not deployed",
    ]
    .join("\n");
    assert_eq!(
        normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]),
        expected
    );
}

#[test]
fn a_failed_attempt_shows_what_still_runs() {
    let (f, v1, v2) = deployed();
    f.repo.write_file("fail-a", "");
    let v3 = f.version("3");
    f.rollout(&["--target", "dev"]).code(1);
    let run = f.repo.atmos(&args("deployment status svc --target dev"));
    run.code(0);
    let text = normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2"), (&v3, "v3")]);
    assert!(
        text.contains(
            "a  <v2>  <ago> (<time>)  dev@example.com  failure at <v3> (still runs <v2>)"
        ),
        "{text}"
    );
    let json = f
        .repo
        .atmos(&args("deployment status svc --target dev --format json"))
        .json();
    let a = &json["targets"][0]["components"][0];
    assert_eq!(a["last_attempt"]["status"], "failure");
    assert_eq!(a["last_attempt"]["git_sha"], v3.as_str());
    let list = f
        .repo
        .atmos(&args("deployment list targets svc --format json"))
        .json();
    assert_eq!(list["targets"][0]["status"], "failure");
}

#[test]
fn history_is_newest_first_with_details_limits_and_filters() {
    let (f, v1, v2) = deployed();
    f.rollout(&["--target", "dev", "--git-sha", &v1]).code(0);
    let run = f.repo.atmos(&args("deployment history svc --target dev"));
    run.code(0);
    let expected = [
        "svc → dev deployment history",
        "",
        "Date  Commit  Component  By  Status  Details",
        "<date>  <v1>  b  dev@example.com  rollback  Rollback of <v2>",
        "<date>  <v1>  a  dev@example.com  rollback  Rollback of <v2>",
        "<date>  <v2>  b  dev@example.com  success",
        "<date>  <v2>  a  dev@example.com  success",
        "<date>  <v1>  b  dev@example.com  success  PR #7",
        "<date>  <v1>  a  dev@example.com  success  PR #7",
        "",
        "Showing 3 rollouts, 6 component records",
    ]
    .join("\n");
    assert_eq!(
        normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]),
        expected
    );

    let run = f.repo.atmos(&args(
        "deployment history svc --target dev --component a --limit 2",
    ));
    run.code(0);
    let text = normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]);
    assert!(
        text.ends_with("Showing 2 rollouts (use --limit to show more; 3 match)"),
        "{text}"
    );
    assert!(!text.contains("  b  "), "{text}");

    let all = f
        .repo
        .atmos(&args("deployment history svc --format json"))
        .json();
    // `total` counts rollouts: three to dev and one to staging, of two components each.
    assert_eq!(all["total"], 4);
    assert_eq!(all["entries"].as_array().map(Vec::len), Some(8));
    assert!(
        all["entries"]
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["target"] == "staging" && e["promoted_from"] == "dev")
    );

    let recent = f
        .repo
        .atmos(&args("deployment history svc --since 1h --format json"))
        .json();
    assert_eq!(recent["total"], 4);
    let future = f
        .repo
        .atmos(&args("deployment history svc --since 2999-01-01"));
    future.code(0);
    assert!(
        future
            .stdout
            .contains("No deployments recorded in the shown range."),
        "{}",
        future.stdout
    );
    let past = f
        .repo
        .atmos(&args(
            "deployment history svc --until 2000-01-31 --format json",
        ))
        .json();
    assert_eq!(past["total"], 0);
    // --limit counts rollouts: the newest rollout keeps both its components.
    let one = f
        .repo
        .atmos(&args("deployment history svc --target dev --limit 1"));
    let text = normalize(&one.stdout, &[(&v1, "v1"), (&v2, "v2")]);
    assert!(
        text.contains("rollback  Rollback of <v2>\n")
            && text.matches("Rollback of").count() == 2
            && text.ends_with(
                "Showing 1 rollout, 2 component records (use --limit to show more; 3 match)"
            ),
        "{text}"
    );
    // No rollout at all is never what was meant.
    f.repo
        .atmos(&args("deployment history svc --limit 0"))
        .code(2)
        .stderr_has(&["--limit"]);
    // A reversed range is an error, not an empty answer.
    f.repo
        .atmos(&args(
            "deployment history svc --since 2025-02-01 --until 2025-01-01",
        ))
        .code(2)
        .stderr_has(&["is after --until", "the range is empty"]);
    let bad = f
        .repo
        .atmos(&args("deployment history svc --since yesterday"));
    bad.code(2);
    bad.stderr_has(&["use a date (2025-01-31)"]);
}

#[test]
fn foreign_and_hand_made_tags_never_break_a_query() {
    let (f, _v1, v2) = deployed();
    let dir = "atmos/deployments/svc/dev/a";
    f.repo
        .git(&["tag", &format!("{dir}/2030-01-01T00-00-00Z"), &v2]);
    f.repo.git(&[
        "tag",
        "-a",
        &format!("{dir}/2030-01-02T00-00-00Z"),
        "-m",
        "atmos.tools/v9\nkind: Deployment\n---\n{}",
        &v2,
    ]);
    f.repo.git(&["tag", &format!("{dir}/latest"), &v2]);
    f.repo.git(&[
        "tag",
        "-a",
        &format!("{dir}/2030-01-03T00-00-00Z"),
        "-m",
        "release notes",
        &v2,
    ]);
    // `status` and `list` read what runs along each chain, from its newest record, and do
    // not list the history's tags (their cost follows what they read): the odd tags are
    // history's and verify's to report.
    for args in [
        vec!["deployment", "status", "svc", "--target", "dev"],
        vec!["deployment", "list", "targets", "svc"],
    ] {
        f.repo.atmos(&args).code(0);
    }
    for args in [vec!["deployment", "history", "svc", "--target", "dev"]] {
        let run = f.repo.atmos(&args);
        run.code(0);
        assert!(
            run.stderr.contains("not atmos records"),
            "{args:?}: {}",
            run.stderr
        );
        for name in [
            "2030-01-01T00-00-00Z",
            "2030-01-02T00-00-00Z",
            "2030-01-03T00-00-00Z",
        ] {
            if args[1] != "list" || name == "2030-01-01T00-00-00Z" {
                assert!(
                    run.stderr.contains(&format!("{dir}/{name}")),
                    "{args:?} misses {name}: {}",
                    run.stderr
                );
            }
        }
    }
    let run = f.repo.atmos(&args("deployment history svc --target dev"));
    run.stderr_has(&[&format!("{dir}/latest: the name does not end in")]);
    run.stderr_has(&["a lightweight tag, not an annotated atmos record"]);
    run.stderr_has(&["not an atmos.tools/v1alpha1 deployment record"]);
    assert!(
        run.stdout
            .contains("Showing 2 rollouts, 4 component records"),
        "the real records are still shown: {}",
        run.stdout
    );
    // The deployed state is still read correctly past the odd tags.
    let json = f
        .repo
        .atmos(&args("deployment status svc --target dev --format json"))
        .json();
    assert_eq!(json["targets"][0]["components"][0]["status"], "success");
    assert_eq!(
        json["targets"][0]["components"][0]["commit"],
        v2.as_str(),
        "{json}"
    );
}

#[test]
fn diff_between_targets_reads_config_from_git_not_the_work_tree() {
    let (f, v1, v2) = deployed();
    // An uncommitted edit must not leak into the comparison.
    let yaml = std::fs::read_to_string(f.repo.path().join("deployments/svc.yaml")).expect("read");
    f.repo
        .write("svc.yaml", yaml.replace("keep: 2", "keep: 99"));
    let run = f.repo.atmos(&args(
        "deployment diff svc --from-target staging --to-target dev --show-files",
    ));
    run.code(0);
    let text = normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]);
    let expected = [
        "svc: staging vs dev",
        "",
        "Commit Diff:",
        "  staging: <v1> (deployed <ago>)",
        "  dev:  <v2> (deployed <ago>)",
        "  Commits behind: 1",
        "",
        "Component Changes:",
        "  a: <v1> → <v2>  (changed)",
        "  b: <v1> → <v2>  (changed)",
        "",
        // What staging would get: its own context at both commits; what differs only
        // because dev's context differs is apart.
        "Configuration Changes (merged for staging, as staging would get them):",
        "  a.keep: 1 → 2  (changed)",
        "  (3 values unchanged; -v lists them)",
        "",
        "Differs by target, not a change (staging → dev at the same commit):",
        "  a.size: small → large",
        "  b.size: (unset) → large",
        "",
        "File Changes (1 commit):",
        "  version 2 (<v2>)",
        "",
        "Changed files (2):",
        "  modified  VERSION",
        "  modified  deployments/svc.yaml",
        "",
        "Infrastructure Drift:",
        "  not checked (use --check-drift to run each component's plan command)",
    ]
    .join("\n");
    assert_eq!(text, expected);

    let json = f
        .repo
        .atmos(&args(
            "deployment diff svc --from-target staging --to-target dev --format json --component a",
        ))
        .json();
    assert_eq!(json["behind"], 1);
    assert_eq!(json["from"]["commit"], v1.as_str());
    assert_eq!(json["components"].as_array().map(Vec::len), Some(1));
    assert!(
        json["drift"].is_null(),
        "drift is null when not checked, never 'none'"
    );
}

#[test]
fn diff_between_commits() {
    let (f, v1, v2) = deployed();
    let run = f.repo.atmos(&[
        "deployment",
        "diff",
        "svc",
        "--from-sha",
        &v1[..8],
        "--to-sha",
        &v2,
        "--target",
        "prod",
        "-v",
    ]);
    run.code(0);
    let text = normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]);
    assert!(
        text.starts_with("svc: <v1> vs <v2>\n\nCommit Diff:\n  from: <v1>\n  to:  <v2>\n"),
        "{text}"
    );
    assert!(text.contains("  a.keep:  1 → 2  (changed)"), "{text}");
    assert!(
        text.contains("  a.size:  small → small  (no change)"),
        "prod has no size override: {text}"
    );
    assert!(
        text.contains("  a.region: eu-west-1 → eu-west-1  (no change)"),
        "-v lists unchanged values: {text}"
    );
    let run = f.repo.atmos(&[
        "deployment",
        "diff",
        "svc",
        "--from-sha",
        "nope",
        "--to-sha",
        &v2,
    ]);
    run.code(2);
    run.stderr_has(&["`nope` does not name a commit"]);
}

#[test]
fn drift_is_checked_only_on_request_and_never_claimed_without_a_plan_command() {
    let (f, _v1, _v2) = deployed();
    std::fs::write(f.out.path().join("drift-a"), "").expect("marker");
    let run = f.repo.atmos_env(
        &args("deployment diff svc --from-target staging --to-target dev --check-drift"),
        &[("OUT", f.out())],
    );
    run.code(0);
    let drift = run
        .stdout
        .split("Infrastructure Drift:\n")
        .nth(1)
        .expect("drift section");
    assert_eq!(
        drift,
        "  staging/a: ✗ drift detected (log: ".to_owned()
            + drift
                .lines()
                .next()
                .and_then(|l| l.split("(log: ").nth(1))
                .unwrap_or("")
            + "\n  staging/b: - not checked: no plan command\n  dev/a: ✗ drift detected (log: "
            + drift
                .lines()
                .nth(2)
                .and_then(|l| l.split("(log: ").nth(1))
                .unwrap_or("")
            + "\n  dev/b: - not checked: no plan command\n"
    );
    std::fs::remove_file(f.out.path().join("drift-a")).expect("rm");
    let json = f.repo.atmos_env(
        &args(
            "deployment diff svc --from-target staging --to-target dev --check-drift --format json",
        ),
        &[("OUT", f.out())],
    );
    json.code(0);
    let states: Vec<String> = json.json()["drift"]
        .as_array()
        .expect("drift list")
        .iter()
        .map(|d| {
            format!(
                "{}/{}={}",
                d["target"].as_str().unwrap_or(""),
                d["component"].as_str().unwrap_or(""),
                d["state"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            "staging/a=no_drift",
            "staging/b=not_checkable",
            "dev/a=no_drift",
            "dev/b=not_checkable"
        ]
    );
}

#[test]
fn list_shows_last_deploys_and_component_state() {
    let (f, v1, v2) = deployed();
    let run = f.repo.atmos(&["deployment", "list"]);
    run.code(0);
    let text = normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]);
    assert!(
        text.contains("svc  dev, staging, prod  2 (a, b)  <ago> (dev)"),
        "{text}"
    );
    let run = f.repo.atmos(&["deployment", "list", "targets", "svc"]);
    let text = normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]);
    assert!(
        text.contains("dev  (entry point)  no  <ago>  success"),
        "{text}"
    );
    assert!(
        text.contains("prod  staging  yes  never  not deployed"),
        "{text}"
    );
    let run = f
        .repo
        .atmos(&args("deployment list components svc --target staging"));
    let text = normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]);
    assert!(
        text.contains("a  script  -  <v1>  <ago>  success  -"),
        "{text}"
    );
}

#[test]
fn promotion_graph_with_status_says_who_is_behind_and_ready() {
    let (f, v1, v2) = deployed();
    let run = f
        .repo
        .atmos(&["deployment", "promotion-graph", "svc", "--show-status"]);
    run.code(0);
    let text = normalize(&run.stdout, &[(&v1, "v1"), (&v2, "v2")]);
    let boxes: Vec<&str> = text.split("└").collect();
    assert!(
        boxes[0].contains("│  dev  │")
            && boxes[0].contains("│  <v2>  │")
            && boxes[0].contains("ready to promote ✓"),
        "{text}"
    );
    assert!(
        boxes[1].contains("│  staging  │")
            && boxes[1].contains("drift: 1 commit behind dev")
            && boxes[1].contains("ready to promote ✓"),
        "{text}"
    );
    assert!(
        boxes[2].contains("│  prod  │")
            && boxes[2].contains("not deployed")
            && boxes[2].contains("staging has code to promote"),
        "{text}"
    );

    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    let json = f
        .repo
        .atmos(&args(
            "deployment promotion-graph svc --show-status --format json",
        ))
        .json();
    let staging = &json["status"][1];
    assert_eq!(staging["target"], "staging");
    assert_eq!(staging["up_to_date"], true);
    assert_eq!(staging["behind"][0]["commits"], 0);
    assert_eq!(
        json["status"][0]["ready_to_promote"], false,
        "dev has nothing staging lacks"
    );
    let r = record(
        &f.repo,
        f.repo.outcomes("svc", "staging", "a").last().expect("tag"),
    );
    assert_eq!(r["git_sha"], v2.as_str());
}

/// `diff` says only what it established: against a target with nothing deployed, commits
/// are "not compared" (and `behind`/`ahead` are null), never "already has everything".
#[test]
fn diff_against_a_target_never_deployed_claims_nothing() {
    let (f, _v1, _v2) = deployed();
    let run = f.repo.atmos(&args(
        "deployment diff svc --from-target prod --to-target staging",
    ));
    run.code(0)
        .stdout_has(&["(not compared: prod has nothing deployed)"]);
    assert!(
        !run.stdout.contains("already has everything"),
        "{}",
        run.stdout
    );
    // Nor does it claim every value of staging would be added to prod.
    run.stdout_has(&["note: not compared: prod has nothing deployed"]);
    for claim in ["(added)", "(removed)", "Differs by target"] {
        assert!(!run.stdout.contains(claim), "{claim}: {}", run.stdout);
    }
    let json = f
        .repo
        .atmos(&args(
            "deployment diff svc --from-target prod --to-target staging --format json",
        ))
        .json();
    assert!(
        json["behind"].is_null() && json["ahead"].is_null(),
        "{json}"
    );
}

/// `diff --component` lists only the commits that touch that component's files (or the
/// deployment file), and Configuration Changes compares what the receiving target would get
/// at each commit: a value that differs only because the targets' contexts differ is shown
/// apart, never as a change.
#[test]
fn diff_of_a_component_and_of_what_the_receiving_target_would_get() {
    let repo = Repo::new();
    let yaml = |timeout: u32| {
        format!(
            "deployment:\n  name: svc\n  components:\n    script:\n      api:\n        vars: {{timeout: {timeout}}}\n        settings:\n          script: {{apply: 'true', source: services/api}}\n      worker:\n        settings:\n          script: {{apply: 'true', source: services/worker}}\n  targets:\n    dev:\n      context: {{replicas: 1}}\n    staging:\n      context: {{replicas: 3}}\n      promotion: {{from: dev}}\n"
        )
    };
    repo.write("svc.yaml", yaml(5));
    repo.write_file("services/api/main.go", "v1");
    repo.write_file("services/worker/main.py", "v1");
    repo.commit("first");
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(0);
    repo.atmos(&args(
        "deployment rollout svc --target staging --promote-from dev",
    ))
    .code(0);
    repo.write_file("services/api/main.go", "v2");
    repo.commit("api: faster handler");
    repo.write_file("services/worker/main.py", "v2");
    repo.commit("worker: retry jobs");
    repo.write_file("README.md", "docs");
    repo.commit("docs only");
    repo.write("svc.yaml", yaml(10));
    repo.commit("api: longer timeout");
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(0);

    let run = repo.atmos(&args(
        "deployment diff svc --from-target staging --to-target dev --component api",
    ));
    run.code(0).stdout_has(&[
        "Configuration Changes (merged for staging, as staging would get them):",
        "api.timeout: 5 → 10  (changed)",
        "Differs by target, not a change (staging → dev at the same commit):",
        "api.replicas: 3 → 1",
        "File Changes (2 commits):",
        "(commits touching services/api, deployments/svc.yaml)",
        "api: longer timeout",
        "api: faster handler",
    ]);
    for other in [
        "worker: retry jobs",
        "docs only",
        "replicas: 3 → 1  (changed)",
    ] {
        assert!(!run.stdout.contains(other), "{other}: {}", run.stdout);
    }
    let json = repo
        .atmos(&args(
            "deployment diff svc --from-target staging --to-target dev --component api --format json",
        ))
        .json();
    check_output_schema("DiffReport", &json);
    assert_eq!(json["log"].as_array().map(Vec::len), Some(2), "{json:#}");
    assert_eq!(json["config_target"], "staging");
    // The component's files are the ones the compared commits name: an uncommitted edit of
    // its `source` does not change the answer.
    repo.write(
        "svc.yaml",
        yaml(10).replace("source: services/api", "source: services/worker"),
    );
    repo.atmos(&args(
        "deployment diff svc --from-target staging --to-target dev --component api",
    ))
    .code(0)
    .stdout_has(&[
        "(commits touching services/api, deployments/svc.yaml)",
        "api: faster handler",
    ]);
    // Without --component every commit is listed.
    repo.atmos(&args(
        "deployment diff svc --from-target staging --to-target dev",
    ))
    .code(0)
    .stdout_has(&[
        "File Changes (4 commits):",
        "docs only",
        "worker: retry jobs",
    ]);
}

/// Retention in a repository without a remote: `archive` applies the default or the given
/// retention, says what it would do with --dry-run, and `history.archive_on_rollout` folds old records away after each
/// rollout; history, status, diff and verify read tags and ledger as one history.
#[test]
fn archive_keeps_every_record_readable_and_rollouts_can_archive_as_they_go() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      api:\n        settings: {script: {apply: 'true'}}\n  targets:\n    dev: {}\n    staging: {promotion: {from: dev}}\n",
    );
    let mut commits = Vec::new();
    for n in 0..4 {
        repo.write_file("change", format!("{n}"));
        commits.push(repo.commit(&format!("change {n}")));
        repo.atmos(&args("deployment rollout svc --target dev"))
            .code(0);
    }
    let entries = |line: &'static str| {
        repo.atmos(&args(line)).json()["entries"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(
        entries("deployment history svc --limit 100 --format json"),
        4
    );

    // The default retention (the newest 5 rollouts) keeps all 4.
    repo.atmos(&args("deployment archive svc"))
        .code(0)
        .stdout_has(&["svc: 0 records moved into the ledger; 8 tags left"]);
    repo.atmos(&args("deployment archive svc --keep 0"))
        .code(2)
        .stderr_has(&["the count must be at least 1"]);
    repo.atmos(&args("deployment archive svc --keep 3x"))
        .code(2)
        .stderr_has(&["is not a duration"]);
    // Records younger than a day stay.
    repo.atmos(&args("deployment archive svc --keep 1d"))
        .code(0)
        .stdout_has(&["svc: 0 records moved into the ledger; 8 tags left"]);
    repo.atmos(&args("deployment archive svc --keep 2 --dry-run"))
        .code(0)
        .stdout_has(&[
            "Would archive",
            "svc: 4 records would move into the ledger; 4 tags left",
        ]);
    assert_eq!(
        repo.outcomes("svc", "dev", "api").len(),
        4,
        "a dry run changed nothing"
    );

    repo.atmos(&args("deployment archive svc --keep 1")).code(0);
    assert_eq!(repo.outcomes("svc", "dev", "api").len(), 1);
    assert_eq!(
        entries("deployment history svc --limit 100 --format json"),
        4
    );
    // A rollback to a commit dev ran whose record is archived is still a rollback.
    repo.atmos(&[
        "deployment",
        "rollout",
        "svc",
        "--target",
        "dev",
        "--git-sha",
        &commits[0],
    ])
    .code(0);
    let history = repo
        .atmos(&args("deployment history svc --limit 100 --format json"))
        .json();
    assert_eq!(
        history["entries"][0]["rollback_of"], commits[3],
        "{history:#}"
    );
    // Promotion reads the source's records, archived ones included.
    repo.atmos(&args(
        "deployment rollout svc --target staging --promote-from dev",
    ))
    .code(0);
    repo.atmos(&args("deployment verify svc"))
        .code(0)
        .stdout_has(&["Verified 12 record(s)"]);

    // Archiving as rollouts go.
    repo.write_file(
        "atmos.yaml",
        "history:\n  keep_tags: 1\n  archive_on_rollout: true\n",
    );
    repo.write_file("change", "next");
    repo.commit("next");
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(0)
        .stderr_has(&["archived 4 older records of svc into its ledger"]);
    assert_eq!(repo.outcomes("svc", "dev", "api").len(), 1);
    assert_eq!(
        entries("deployment history svc --limit 100 --format json"),
        7
    );
}

/// A tag rewritten under the name of an archived record is evidence: `archive` leaves it in
/// place (and says why) instead of folding it away, and `verify` reports it.
#[test]
fn archive_never_folds_away_a_tag_that_contradicts_the_ledger() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      api:\n        settings: {script: {apply: 'true'}}\n  targets:\n    dev: {}\n",
    );
    for n in 0..3 {
        repo.write_file("change", format!("{n}"));
        repo.commit(&format!("change {n}"));
        repo.atmos(&args("deployment rollout svc --target dev"))
            .code(0);
    }
    let tags = repo.outcomes("svc", "dev", "api");
    let archived = tags[0].clone();
    let raw = repo.git(&["cat-file", "tag", &archived]);
    repo.atmos(&args("deployment archive svc --keep 1")).code(0);
    let forged = raw.replace(
        "deployed_by: dev@example.com",
        "deployed_by: mallory@example.com",
    );
    assert_ne!(raw, forged);
    let path = repo.path().join("forged-tag");
    std::fs::write(&path, format!("{forged}\n")).expect("write");
    let oid = repo.git(&[
        "hash-object",
        "-t",
        "tag",
        "-w",
        path.to_str().expect("utf-8"),
    ]);
    repo.git(&["update-ref", &archived, &oid]);

    repo.atmos(&args("deployment archive svc --keep 1"))
        .code(0)
        .stdout_has(&["kept", "the ledger holds another record under this name"]);
    assert_eq!(
        repo.git(&["rev-parse", &archived]),
        oid,
        "the evidence was deleted"
    );
    let run = repo.atmos(&args("deployment verify svc"));
    run.code(3);
    assert!(
        run.stdout.contains("the archive ledger holds"),
        "{}",
        run.stdout
    );
}
