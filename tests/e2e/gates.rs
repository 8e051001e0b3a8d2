//! Policy gates end to end: real rollouts allowed and denied by the shipped policies and by
//! small test policies, fail-closed cases, decisions in the output and in the tags,
//! `validate`, `policy test` and `policy eval`.

use crate::rollout::{Fixture, record};
use crate::support::args;

/// The rollout fixture with `atmos.yaml` binding `policies` and a settings file.
fn gated(policies: &[&str], settings: &str) -> Fixture {
    let f = Fixture::new();
    f.repo.add_shipped_policies();
    let list: String = policies.iter().map(|p| format!("    - {p}\n")).collect();
    f.repo.write_file(
        "atmos.yaml",
        format!("gates:\n  policies:\n{list}    - gates\n  policy_timeout_ms: 300\n"),
    );
    f.repo.write_file("gates/settings.yaml", settings);
    f
}

#[test]
fn shipped_policy_tests_pass_and_a_broken_policy_fails_them() {
    let f = Fixture::new();
    f.repo.add_shipped_policies();
    let run = f
        .repo
        .atmos(&["deployment", "policy", "test", "--coverage"]);
    run.code(0);
    run.stdout_has(&["57 passed, 0 failed, 0 skipped"]);
    for file in [
        "promotion/promotion.rego",
        "approvals/approvals.rego",
        "soak/soak.rego",
        "freeze/freeze.rego",
        "metadata/required.rego",
    ] {
        assert!(
            run.stdout.contains(&format!("policies/{file}")),
            "coverage of {file}: {}",
            run.stdout
        );
    }
    // Break the freeze policy: its tests must notice.
    let path = f.repo.path().join("policies/freeze/freeze.rego");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(
            "now_ns >= time.parse_rfc3339_ns(w.start)",
            "now_ns < time.parse_rfc3339_ns(w.start)",
        ),
    )
    .expect("write");
    let run = f
        .repo
        .atmos(&["deployment", "policy", "test", "policies/freeze"]);
    run.code(1);
    run.stdout_has(&["FAIL  test_inside_a_window_is_denied"]);
    let json = f
        .repo
        .atmos(&args(
            "deployment policy test policies/freeze --format json",
        ))
        .json();
    assert!(
        json["results"]
            .as_array()
            .expect("list")
            .iter()
            .any(|r| r["outcome"] == "fail")
    );
}

#[test]
fn a_freeze_window_denies_the_rollout_and_records_nothing() {
    let f = gated(
        &["policies/freeze"],
        "gates:\n  freeze:\n    targets: [dev]\n    windows:\n      - {start: \"2000-01-01T00:00:00Z\", end: \"2200-01-01T00:00:00Z\", reason: test freeze}\n",
    );
    f.version("1");
    let run = f.rollout(&["--target", "dev"]);
    run.code(3);
    run.stdout_has(&["Error: denied by 1 gate decision:"]);
    run.stdout_has(&["policies/freeze/freeze.rego (atmos.freeze): dev is frozen until 2200-01-01T00:00:00Z (test freeze)"]);
    run.stdout_has(&["[FREEZE_WINDOW]"]);
    assert!(f.repo.atmos_refs().is_empty(), "nothing written");
    assert!(f.applied("a", "dev").is_empty(), "nothing ran");
    // --plan evaluates the same gates and exits the same way.
    f.rollout(&["--target", "dev", "--plan"]).code(3);
    // The documented emergency exception passes, and is recorded.
    let run = f.rollout(&["--target", "dev", "--metadata", "freeze_exception=INC-7"]);
    run.code(0);
    let r = record(&f.repo, &f.repo.outcomes("svc", "dev", "a")[0]);
    assert_eq!(r["metadata"]["freeze_exception"], "INC-7");
    let freeze: Vec<&serde_json::Value> = r["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter(|d| d["package"] == "atmos.freeze")
        .collect();
    assert_eq!(freeze.len(), 1, "{r}");
    assert_eq!(freeze[0]["source"], "policies/freeze/freeze.rego");
    assert_eq!(freeze[0]["rule"], "deny");
    assert_eq!(freeze[0]["result"], "allow");
}

#[test]
fn required_metadata_and_soak_gate_promotions() {
    let f = gated(
        &["policies/metadata", "policies/soak"],
        "gates:\n  required_metadata:\n    staging: {ticket: \"^[A-Z]+-[0-9]+$\"}\n  soak:\n    min_hours: {staging: 1}\n",
    );
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    let run = f.rollout(&args(
        "--target staging --promote-from dev --metadata ticket=ops-1",
    ));
    run.code(3);
    run.stdout_has(&["--metadata ticket=ops-1 does not match ^[A-Z]+-[0-9]+$ [METADATA_INVALID]"]);
    run.stdout_has(&[
        "a has run in dev for 0 minute(s); staging needs 1 hour(s) of soak [SOAK_TIME]",
    ]);
    // With the soak lowered in the policy settings, a valid ticket passes.
    f.repo.write_file(
        "gates/settings.yaml",
        "gates:\n  required_metadata:\n    staging: {ticket: \"^[A-Z]+-[0-9]+$\"}\n",
    );
    f.repo.commit("lower the soak");
    f.rollout(&args(
        "--target staging --promote-from dev --metadata ticket=OPS-1",
    ))
    .code(0);
}

#[test]
fn skipping_the_promotion_check_is_itself_subject_to_policy() {
    let f = gated(
        &["policies/promotion"],
        "gates:\n  promotion:\n    protected_targets: [staging]\n",
    );
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    // v2 never ran in dev: only the escape hatch would take it to staging.
    f.version("2");
    let run = f.rollout(&args(
        "--target staging --git-sha HEAD --skip-promotion-check --force",
    ));
    run.code(3);
    run.stdout_has(&[
        "--skip-promotion-check is not allowed for staging [PROMOTION_SKIP_FORBIDDEN]",
    ]);
    run.stdout_has(&["builtin/promotion-path: promotion check skipped"]);
}

#[test]
fn warnings_are_shown_and_recorded_without_blocking() {
    let f = Fixture::new();
    f.repo
        .write_file("atmos.yaml", "gates:\n  policies: [rules]\n");
    f.repo.write_file(
        "rules/notes.rego",
        "package team.notes\n\nwarn contains {\"msg\": sprintf(\"%s is deployed by %s\", [input.target.name, input.actor]), \"code\": \"NOTE\"} if true\n\ndeny contains \"never\" if input.target.name == \"nowhere\"\n",
    );
    f.version("1");
    let run = f.rollout(&["--target", "dev"]);
    run.code(0);
    run.stdout_has(&[
        "rules/notes.rego (team.notes): dev is deployed by dev@example.com [NOTE] ! warn",
    ]);
    let r = record(&f.repo, &f.repo.outcomes("svc", "dev", "a")[0]);
    let warn = r["decisions"]
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["result"] == "warn")
        .cloned()
        .expect("warn recorded");
    assert_eq!(warn["code"], "NOTE");
    assert_eq!(warn["package"], "team.notes");
}

#[test]
fn broken_policies_fail_closed_with_file_and_line() {
    let f = Fixture::new();
    f.repo.write_file(
        "atmos.yaml",
        "gates:\n  policies: [rules]\n  policy_timeout_ms: 200\n",
    );
    f.version("1");
    let cases = [
        (
            "syntax",
            "package t.syntax\n\ndeny contains msg if {\n  input.x >\n}\n",
            "rules/t.rego: policy failed to load (fail closed): rules/t.rego:5:1: expecting expression",
        ),
        (
            "runtime",
            "package t.runtime\n\ndeny contains m if {\n  m := sprintf(\"%v\", [1 / count(input.commits) - count(input.commits)])\n  1 / 0 == m\n}\n",
            "rules/t.rego (t.runtime): policy error (fail closed): rules/t.rego:5:",
        ),
        (
            "endless",
            "package t.endless\n\ndeny contains \"x\" if {\n  some i in numbers.range(1, 1000000)\n  some j in numbers.range(1, 1000000)\n  i * j == -1\n}\n",
            "rules/t.rego (t.endless): evaluation exceeded the time limit of 200 ms (fail closed)",
        ),
    ];
    for (name, policy, expected) in cases {
        // The rules that decide are the committed ones.
        f.repo.write_file("rules/t.rego", policy);
        f.repo.commit(name);
        let started = std::time::Instant::now();
        let run = f.rollout(&["--target", "dev"]);
        assert_eq!(run.code, 3, "{name}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(expected),
            "{name}: expected {expected:?} in\n{}",
            run.stdout
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{name} took {:?}",
            started.elapsed()
        );
    }
    assert!(f.repo.atmos_refs().is_empty());
    // A bound path that does not exist denies too.
    f.repo
        .write_file("atmos.yaml", "gates:\n  policies: [rulez]\n");
    f.repo.commit("bind a missing folder");
    let run = f.rollout(&["--target", "dev"]);
    run.code(3);
    run.stdout_has(&["rulez: policy failed to load (fail closed): no such file or folder"]);
}

#[test]
fn validate_compiles_every_bound_policy() {
    let f = Fixture::new();
    let yaml = std::fs::read_to_string(f.repo.path().join("deployments/svc.yaml")).expect("read");
    f.repo.write(
        "svc.yaml",
        yaml.replace(
            "    prod:\n",
            "    prod:\n      gates: {policies: [prod-rules]}\n",
        ),
    );
    f.repo.write_file(
        "prod-rules/p.rego",
        "package prod.rules\n\ndeny contains \"x\" if {\n  input.x ==\n}\n",
    );
    let run = f.repo.atmos(&["deployment", "validate", "svc"]);
    run.code(2);
    run.stdout_has(&["✗ Policies compile"]);
    run.stdout_has(&["--> prod-rules/p.rego:5:1"]);
    run.stdout_has(&["error: policy does not load: expecting expression"]);
    // dev is not bound to it: its rollouts are unaffected.
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
}

#[test]
fn policy_eval_shows_the_input_and_every_decision() {
    let f = gated(
        &["policies/freeze", "policies/metadata"],
        "gates:\n  required_metadata:\n    dev: {pr: \"\"}\n",
    );
    let v1 = f.version("1");
    let run = f.repo.atmos(&args(
        "deployment policy eval svc --target dev --show-input",
    ));
    run.code(3);
    run.stdout_has(&["\"api_version\": \"atmos.tools/gate-input/v1\""]);
    run.stdout_has(&["policies/metadata/required.rego (atmos.metadata): dev needs --metadata pr=<value> [METADATA_MISSING] ✗ deny"]);
    run.stdout_has(&[
        "Verdict: deny\n",
        "✗ policies/metadata/required.rego (atmos.metadata): dev needs --metadata pr=<value> [METADATA_MISSING]",
    ]);
    let json = f.repo.atmos(&args(
        "deployment policy eval svc --target dev --metadata pr=#1 --format json",
    ));
    json.code(0);
    let report = json.json();
    assert_eq!(report["verdict"], "allow");
    let input = &report["input"];
    assert_eq!(input["action"], "rollout");
    assert_eq!(input["commit"]["sha"], v1.as_str());
    assert_eq!(input["commit"]["author_email"], "dev@example.com");
    assert_eq!(input["components"][0]["new"], v1.as_str());
    assert_eq!(input["metadata"]["pr"], "#1");
    assert_eq!(input["target"]["name"], "dev");
    assert!(input["sbom"].is_null());
    // The published schema describes what is produced.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../docs/schema/gate-input.schema.json"),
        )
        .expect("schema"),
    )
    .expect("json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(input)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(f.repo.atmos_refs().is_empty(), "eval changes nothing");
}

#[test]
fn a_policy_test_that_crashes_the_evaluator_is_an_error_not_a_crash() {
    let f = Fixture::new();
    f.repo.write_file(
        "t/r.rego",
        "package r\n\nf(n) := x if {\n  x := f(n + 1)\n}\n\ndeny contains \"x\" if f(1) > 0\n",
    );
    f.repo.write_file(
        "t/r_test.rego",
        "package r_test\n\nimport data.r\n\ntest_deny if count(r.deny) == 1\n",
    );
    f.repo
        .write_file("t/ok_test.rego", "package ok_test\n\ntest_fine if true\n");
    let run = f.repo.atmos(&["deployment", "policy", "test", "t"]);
    run.code(1);
    run.stdout_has(&[
        "t/r_test.rego:\n  ERROR (every test of this file): the evaluator overflowed its stack",
    ]);
    assert!(
        run.stdout.contains("1 passed, 1 failed, 0 skipped"),
        "the other file still ran: {}",
        run.stdout
    );
}

#[test]
fn policies_see_approvals_and_may_refuse_them_while_shipped_ones_let_them_through() {
    // All shipped policies bound (freeze of prod always on, prod needs a ticket), plus a
    // team policy that only lets release managers approve prod.
    let f = gated(
        &args("policies/promotion policies/approvals policies/freeze policies/metadata team"),
        "gates:\n  freeze:\n    targets: [prod]\n    windows:\n      - {start: \"2000-01-01T00:00:00Z\", end: \"2200-01-01T00:00:00Z\"}\n  required_metadata:\n    prod: {ticket: \"\"}\n",
    );
    f.repo.write_file(
        "team/approvers.rego",
        "package team.approvers\n\ndeny contains msg if {\n\tinput.action == \"approve\"\n\tinput.target.name == \"prod\"\n\tinput.actor != \"rm@example.com\"\n\tmsg := sprintf(\"%s is not a release manager\", [input.actor])\n}\n",
    );
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    let approve = |who: &str| {
        f.repo.atmos_env(
            &args("deployment approve svc --target prod --promote-from staging"),
            &[("ATMOS_ACTOR", who)],
        )
    };
    let run = approve("alice@example.com");
    run.code(3);
    run.stderr_has(&["alice@example.com is not a release manager"]);
    assert!(
        f.repo
            .git(&["for-each-ref", "refs/notes/atmos/svc/approvals"])
            .trim()
            .is_empty(),
        "a refused approval is not recorded"
    );
    // CI gets the refusal as JSON on stdout.
    let json = f.repo.atmos_env(
        &args("deployment approve svc --target prod --promote-from staging --format json"),
        &[("ATMOS_ACTOR", "bob@example.com")],
    );
    json.code(3);
    let json = json.json();
    assert_eq!(json["recorded"], false);
    assert!(
        json["decisions"]
            .as_array()
            .expect("decisions")
            .iter()
            .any(|d| d["result"] == "deny"
                && d["message"] == "bob@example.com is not a release manager"),
        "{json}"
    );
    // The release manager's approval passes: the shipped freeze, metadata and approvals
    // policies do not hold approvals (no --metadata, prod frozen, quorum not yet met).
    approve("rm@example.com").code(0);
    assert!(
        !f.repo
            .git(&["for-each-ref", "refs/notes/atmos/svc/approvals"])
            .trim()
            .is_empty()
    );
    // The rollout itself is still frozen.
    f.rollout(&args(
        "--target prod --promote-from staging --metadata ticket=T-1",
    ))
    .code(3);
}

#[test]
fn gates_can_be_tried_at_another_time_and_on_a_given_input() {
    let f = crate::rollout::Fixture::new();
    f.repo
        .write_file("atmos.yaml", "gates:\n  policies: [rules]\n");
    f.repo.write_file(
        "rules/later.rego",
        "package later\n\ndeny contains {\"msg\": sprintf(\"frozen after 2030 (now %s)\", [input.now]), \"code\": \"LATE\"} if time.parse_rfc3339_ns(input.now) > time.parse_rfc3339_ns(\"2030-01-01T00:00:00Z\")\n",
    );
    f.version("1");
    let eval = |extra: &[&str]| {
        let mut all = vec!["deployment", "policy", "eval", "svc", "--target", "dev"];
        all.extend_from_slice(extra);
        f.repo.atmos(&all)
    };
    eval(&[]).code(0);
    eval(&["--now", "2031-06-01T12:00:00Z"])
        .code(3)
        .stdout_has(&[
            "as of 2031-06-01T12:00:00Z (--now)",
            "frozen after 2030 (now 2031-06-01T12:00:00Z) [LATE]",
        ]);
    eval(&["--now", "yesterday"])
        .code(2)
        .stderr_has(&["is not an RFC 3339 time"]);
    // A plan can look ahead; a real rollout runs at the real time.
    f.rollout(&["--target", "dev", "--plan", "--now", "2031-06-01T12:00:00Z"])
        .code(3)
        .stderr_has(&["evaluated as of 2031-06-01T12:00:00Z (--now)"]);
    f.rollout(&["--target", "dev", "--now", "2031-06-01T12:00:00Z"])
        .code(2);
    // An input document from a file: the policies see exactly it.
    f.repo.write_file(
        "input.json",
        "{\"now\": \"2040-01-01T00:00:00Z\", \"target\": {\"name\": \"dev\"}}",
    );
    let input = f.repo.path().join("input.json");
    eval(&["--input", input.to_str().expect("utf-8")])
        .code(3)
        .stdout_has(&["input from a file; built-in gates not run", "[LATE]"]);
    // Extra data for a what-if: merged into `data` for this evaluation only.
    f.repo.write_file(
        "rules/switch.rego",
        "package switch\n\ndeny contains \"switched off by data\" if data.switch.off\n",
    );
    f.version("2");
    eval(&[]).code(0);
    f.repo
        .write_file("what-if/switch.yaml", "switch:\n  off: true\n");
    let dir = f.repo.path().join("what-if");
    eval(&["--data", dir.to_str().expect("utf-8")])
        .code(3)
        .stdout_has(&["switched off by data"]);
    // A what-if that contradicts the bound data fails closed, and says which value.
    f.repo
        .write_file("rules/switch-data.yaml", "switch:\n  off: false\n");
    f.version("3");
    eval(&["--data", dir.to_str().expect("utf-8")])
        .code(3)
        .stdout_has(&[
            "policy failed to load (fail closed)",
            "generated multiple times",
        ]);
    eval(&["--data", "missing.yaml"])
        .code(2)
        .stderr_has(&["not a JSON or YAML file, nor a folder"]);
}

/// `policy check` compiles policies without evaluating them: what each package declares, and
/// every error with its location (exit 2).
#[test]
fn policy_check_reports_packages_and_located_errors() {
    let repo = crate::support::Repo::new();
    repo.add_shipped_policies();
    let run = repo.atmos(&args("deployment policy check policies"));
    run.code(0)
        .stdout_has(&["data.atmos.freeze (deny)", "0 errors"]);
    repo.write_file(
        "broken/bad.rego",
        "package bad\n\ndeny contains msg if {\n  msg := input.x +\n}\n",
    );
    let run = repo.atmos(&args("deployment policy check broken"));
    run.code(2).stdout_has(&["broken/bad.rego:4:", "1 error"]);
    let json = repo
        .atmos(&args("deployment policy check policies --format json"))
        .json();
    assert_eq!(json["errors"].as_array().map(Vec::len), Some(0));
}

/// A test file whose rule shadows its import compiles, and its tests report only "undefined":
/// `policy check` points at the shadowing line (and at unused imports, as OPA's strict mode
/// does), and `policy test` shows the undefined test it causes.
#[test]
fn policy_check_points_at_a_rule_that_shadows_its_import() {
    let repo = crate::support::Repo::new();
    repo.write_file(
        "gate/deploy.rego",
        "package atmos.deploy\n\ndeny contains \"frozen\" if input.freeze\n",
    );
    repo.write_file(
        "gate/deploy_test.rego",
        "package atmos.deploy_test\n\nimport data.atmos.deploy\nimport data.atmos.unused\n\ndeploy := {\"deny\": set()}\n\ntest_frozen if {\n\t\"frozen\" in deploy.deny with input as {\"freeze\": true}\n}\n",
    );
    let run = repo.atmos(&args("deployment policy check gate"));
    run.code(2).stdout_has(&[
        "gate/deploy_test.rego:6: the rule `deploy` shadows the import of data.atmos.deploy at line 3",
        "gate/deploy_test.rego:4: the import of data.atmos.unused is never used",
        "2 errors",
    ]);
    let json = repo
        .atmos(&args("deployment policy check gate --format json"))
        .json();
    assert_eq!(json["errors"][1]["line"], 6, "{json}");
    repo.atmos(&args("deployment policy test gate"))
        .code(1)
        .stdout_has(&[
            "gate/deploy_test.rego:8: `test_frozen` is undefined",
            "perhaps: gate/deploy_test.rego:6: the rule `deploy` shadows the import",
        ]);
    // Renamed, the test passes and the check is clean.
    repo.write_file(
        "gate/deploy_test.rego",
        "package atmos.deploy_test\n\nimport data.atmos.deploy\n\ntest_frozen if {\n\t\"frozen\" in deploy.deny with input as {\"freeze\": true}\n}\n",
    );
    repo.atmos(&args("deployment policy check gate"))
        .code(0)
        .stdout_has(&["0 errors"]);
    repo.atmos(&args("deployment policy test gate")).code(0);
}
