//! `atmos deployment list`: deployments, targets, components, label filters, broken files.

use crate::support::{Repo, args};

#[test]
fn lists_deployments_like_the_seed() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "list"]);
    run.code(0);
    let expected = [
        "Deployments (2)",
        "",
        "Name                 Targets                    Components                   Last Deploy",
        "inventory-service    dev, qa, staging, prod     3 (api, cache, warm-cache)   never",
        "payment-service      dev, staging, prod         5 (api, worker, database, …) never",
        "",
    ];
    let got: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(got[0], expected[0]);
    assert!(
        got[2].starts_with("Name") && got[2].contains("Last Deploy"),
        "{}",
        run.stdout
    );
    assert!(
        got[3].starts_with("inventory-service")
            && got[3].contains("dev, qa, staging, prod")
            && got[3].ends_with("never"),
        "{}",
        run.stdout
    );
    assert!(
        got[4].starts_with("payment-service") && got[4].contains("5 (api, worker, database, …)"),
        "{}",
        run.stdout
    );
    assert_eq!(got.len(), 5, "{}", run.stdout);
}

#[test]
fn a_broken_file_is_skipped_with_a_warning_naming_it() {
    let repo = Repo::example();
    repo.write("broken.yaml", "deployment:\n  name: broken\n  targets: [\n");
    let run = repo.atmos(&["deployment", "list"]);
    run.code(0);
    run.stderr_has(&["warning: skipped deployment `broken` (1 error): deployments/broken.yaml:"]);
    run.stderr_has(&["atmos deployment validate broken"]);
    run.stdout_has(&["Deployments (2)"]);
    assert!(run.stdout.contains("payment-service"));
    let json = repo
        .atmos(&["deployment", "list", "--format", "json"])
        .json();
    assert_eq!(json["deployments"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["broken"][0]["name"], "broken");
    assert_eq!(json["broken"][0]["diagnostics"][0]["code"], "yaml-syntax");
}

#[test]
fn label_filters_apply_to_deployments_targets_and_components() {
    let repo = Repo::example();
    let json = repo
        .atmos(&args("deployment list --label team=payments --format json"))
        .json();
    let names: Vec<&str> = json["deployments"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, vec!["payment-service"]);

    let none = repo.atmos(&args(
        "deployment list --label team=payments --label tier=standard",
    ));
    none.code(0);
    none.stdout_has(&["No deployments match."]);
    // A label that is a target's (or a component's) says so, with the command that lists by it.
    repo.atmos(&args("deployment list --label environment=prod"))
        .code(0)
        .stdout_has(&[
            "No deployments match.",
            "these are target labels (e.g. ",
            "/prod): atmos deployment list targets ",
            " --label environment=prod",
        ]);
    repo.atmos(&args("deployment list --label layer=app"))
        .code(0)
        .stdout_has(&["these are component labels (e.g. ", "--label layer=app"]);

    let json = repo
        .atmos(&args(
            "deployment list targets payment-service --label environment=prod --format json",
        ))
        .json();
    assert_eq!(json["targets"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["targets"][0]["name"], "prod");
    assert_eq!(json["targets"][0]["requires_approval"], true);
    assert_eq!(json["targets"][0]["promotion_from"][0], "staging");

    let json = repo
        .atmos(&args("deployment list components payment-service --target prod --label layer=app --format json"))
        .json();
    let names: Vec<&str> = json["components"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["api", "worker"]);
    assert_eq!(json["components"][0]["type"], "nixpack");

    let bad = repo.atmos(&["deployment", "list", "--label", "team"]);
    bad.code(2);
    bad.stderr_has(&["expected key=value"]);
}

#[test]
fn lists_targets_and_components_tables() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "list", "targets", "payment-service"]);
    run.code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "payment-service targets");
    assert!(
        lines[2].starts_with("Target")
            && lines[2].contains("Promotion From")
            && lines[2].contains("Requires Approval")
    );
    assert!(
        lines[3].starts_with("dev")
            && lines[3].contains("(entry point)")
            && lines[3].contains("no"),
        "{}",
        run.stdout
    );
    assert!(
        lines[5].starts_with("prod") && lines[5].contains("staging") && lines[5].contains("yes"),
        "{}",
        run.stdout
    );

    // --target defaults to context.default_target.
    let run = repo.atmos(&["deployment", "list", "components", "payment-service"]);
    run.code(0);
    assert!(
        run.stdout.starts_with("payment-service → dev components\n"),
        "{}",
        run.stdout
    );
    run.stdout_has(&["migrate"]);

    let run = repo.atmos(&args(
        "deployment list components payment-service --target prd",
    ));
    run.code(2);
    run.stderr_has(&["deployment `payment-service` has no target `prd`"]);
    run.stderr_has(&["did you mean `prod`?"]);
}
