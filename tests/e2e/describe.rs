//! `atmos deployment describe`: resolved config, and merged vars with their provenance.

use crate::support::{Repo, args};

#[test]
fn target_context_overrides_component_vars_and_says_so() {
    let repo = Repo::example();
    let run = repo.atmos(&args("deployment describe payment-service --target prod"));
    run.code(0);
    let api = run
        .stdout
        .split("Component api (nixpack)")
        .nth(1)
        .expect("api section");
    let api = api.split("\nComponent ").next().unwrap_or_default();
    let row = |key: &str| {
        api.lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no row {key} in\n{api}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("cpu"),
        "cpu 1024 target context (overrides component vars), deployments/payment-service.yaml:96"
    );
    assert_eq!(
        row("region"),
        "region eu-west-1 deployment context, deployments/payment-service.yaml:16"
    );
    // Rendered from `{{ .deployment.name }}/api`.
    assert_eq!(
        row("image.name"),
        "image.name payment-service/api component vars, deployments/payment-service.yaml:36"
    );
    assert!(api.contains("Depends on: script/migrate"), "{api}");

    let json = repo
        .atmos(&args(
            "deployment describe payment-service --target prod --format json",
        ))
        .json();
    let db = json["target"]["components"]
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["name"] == "database")
        .expect("database")
        .clone();
    assert_eq!(db["vars"]["values"]["instance_class"], "db.r6g.large");
    assert_eq!(
        db["vars"]["provenance"]["instance_class"]["source"],
        "target_context"
    );
    assert_eq!(
        db["vars"]["provenance"]["storage_gb"]["source"],
        "component_vars"
    );
    assert_eq!(db["vars"]["values"]["replicas"], 3);
}

#[test]
fn describe_without_target_shows_targets_and_components() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "describe", "inventory-service"]);
    run.code(0);
    assert!(
        run.stdout.starts_with(
            "inventory-service (deployments/inventory-service.yaml)\n  Stock levels API"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Labels: team=fulfilment, tier=standard")
    );
    let prod = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("prod "))
        .expect("prod row");
    assert!(
        prod.contains("qa, staging") && prod.contains("yes"),
        "{prod}"
    );

    let yaml = repo.atmos(&args("deployment describe inventory-service --format yaml"));
    yaml.code(0);
    let parsed: serde_json::Value = serde_yaml_ng::from_str(&yaml.stdout).expect("yaml output");
    assert_eq!(
        parsed["deployment"]["targets"]["prod"]["promotion"]["allowed_from"][1],
        "staging"
    );
}

#[test]
fn describe_an_invalid_deployment_shows_its_errors_and_exits_2() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  targets:\n    dev: {promotion: {from: dev}}\n",
    );
    let run = repo.atmos(&["deployment", "describe", "svc"]);
    run.code(2);
    run.stderr_has(&["target `dev` is promoted from itself"]);
    run.stderr_has(&["--> deployments/svc.yaml:4:29"]);
    run.stderr_has(&["error: deployment `svc` is invalid"]);
}
