//! `atmos deployment validate`: the shipped example passes; each broken config fails with
//! exit 2, the right message, its file:line:column, and a fix where one is obvious.

use crate::support::{Repo, args};

/// One broken file: what it holds and what validate must say about it.
struct Case {
    name: &'static str,
    file: &'static str,
    contents: &'static [u8],
    code: &'static str,
    message: &'static str,
    at: Option<(u64, u64)>,
    hint: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "unknown key with did-you-mean",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets:\n    dev: {}\n    prod:\n      promtion:\n        from: dev\n",
        code: "unknown-key",
        message: "unknown key `promtion` in `deployment.targets.prod`",
        at: Some((6, 7)),
        hint: Some("did you mean `promotion`?"),
    },
    Case {
        name: "value outside a fixed list names every choice and the closest",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets:\n    dev:\n      gates:\n        hooks:\n          - {name: h, path: h.wasm, on: [promotion]}\n",
        code: "schema",
        message: "`deployment.targets.dev.gates.hooks.0.on.0` must be one of `rollout`, `promote`, `rollback`, `approve`; found \"promotion\"",
        at: Some((7, 42)),
        hint: Some("did you mean `promote`?"),
    },
    Case {
        name: "yaml syntax error",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets: [dev, prod\n",
        code: "yaml-syntax",
        message: "(while parsing a flow sequence started at line 3 column 12)",
        at: Some((4, 1)),
        hint: Some("indentation"),
    },
    Case {
        name: "tab indentation",
        file: "svc.yaml",
        contents: b"deployment:\n\tname: svc\n",
        code: "yaml-syntax",
        message: "invalid YAML: ",
        at: Some((2, 1)),
        hint: Some("YAML does not allow tabs"),
    },
    Case {
        name: "duplicate key",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets:\n    dev: {}\n  targets:\n    prod: {}\n",
        code: "duplicate-key",
        message: "duplicate key `targets` in `deployment` (first defined at line 3)",
        at: Some((5, 3)),
        hint: Some("merge the two entries"),
    },
    Case {
        name: "wrong type",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets:\n    dev: {}\n    prod:\n      promotion:\n        from: dev\n        requires_approval: \"yes\"\n",
        code: "wrong-type",
        message: "`deployment.targets.prod.promotion.requires_approval` must be a boolean, found string \"yes\"",
        at: Some((8, 28)),
        hint: Some("write `true` or `false` (unquoted)"),
    },
    Case {
        name: "empty file",
        file: "svc.yaml",
        contents: b"",
        code: "empty",
        message: "the file is empty",
        at: Some((1, 1)),
        hint: Some("a deployment file starts with"),
    },
    Case {
        name: "comments only",
        file: "svc.yaml",
        contents: b"# TODO: write this\n",
        code: "empty",
        message: "the file is empty",
        at: Some((1, 1)),
        hint: None,
    },
    Case {
        name: "promotion cycle",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets:\n    base: {}\n    dev:\n      promotion:\n        from: qa\n    qa:\n      promotion:\n        from: dev\n",
        code: "promotion-cycle",
        message: "promotion cycle: dev → qa → dev",
        at: Some((9, 7)),
        hint: Some("entry point"),
    },
    Case {
        name: "self promotion",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets:\n    dev:\n      promotion:\n        from: dev\n",
        code: "self-promotion",
        message: "target `dev` is promoted from itself",
        at: Some((6, 15)),
        hint: Some("remove `promotion`"),
    },
    Case {
        name: "missing promotion source",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets:\n    dev: {}\n    staging:\n      promotion: {from: dev}\n    prod:\n      promotion:\n        from: stagign\n",
        code: "unknown-target",
        message: "target `prod` is promoted from `stagign`, which is not defined",
        at: Some((9, 15)),
        hint: Some("did you mean `staging`?"),
    },
    Case {
        name: "both from and allowed_from",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets:\n    dev: {}\n    qa: {}\n    prod:\n      promotion:\n        from: dev\n        allowed_from: [dev, qa]\n",
        code: "conflicting-promotion",
        message: "target `prod` sets both `from` and `allowed_from`",
        at: Some((9, 9)),
        hint: Some("keep `from: <target>`"),
    },
    Case {
        name: "bad target name",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  targets:\n    dev: {}\n    \"prod env\": {}\n",
        code: "invalid-name",
        message: "target name `prod env` contains ` `",
        at: Some((5, 5)),
        hint: Some("git ref path segments"),
    },
    Case {
        name: "component name ending in .lock",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  components:\n    terraform:\n      state.lock: {}\n  targets:\n    dev: {}\n",
        code: "invalid-name",
        message: "component name `state.lock` has a segment ending in `.lock`",
        at: Some((5, 7)),
        hint: None,
    },
    Case {
        name: "unknown depends_on",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  components:\n    terraform:\n      db: {}\n    script:\n      api:\n        metadata:\n          depends_on: [terraform/dbs]\n        settings:\n          script: {apply: \"true\"}\n  targets:\n    dev: {}\n",
        code: "unknown-dependency",
        message: "component `script/api` depends on `terraform/dbs`, which is not defined",
        at: Some((9, 24)),
        hint: Some("did you mean `terraform/db`?"),
    },
    Case {
        name: "depends_on without a type",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  components:\n    terraform:\n      db: {}\n      api:\n        metadata:\n          depends_on: [db]\n  targets:\n    dev: {}\n",
        code: "schema",
        message: "`deployment.components.terraform.api.metadata.depends_on.0` must name a component as `type/name`",
        at: Some((8, 24)),
        hint: Some("terraform/db"),
    },
    Case {
        name: "depends_on cycle",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  components:\n    terraform:\n      network:\n        metadata:\n          depends_on: [terraform/dns]\n      dns:\n        metadata:\n          depends_on: [terraform/network]\n  targets:\n    dev: {}\n",
        code: "dependency-cycle",
        message: "dependency cycle: terraform/network → terraform/dns → terraform/network",
        at: Some((10, 11)),
        hint: None,
    },
    Case {
        name: "name does not match the file",
        file: "svc.yaml",
        contents: b"deployment:\n  name: payments\n  targets:\n    dev: {}\n",
        code: "name-mismatch",
        message: "deployment name `payments` does not match the file name `svc`",
        at: Some((2, 9)),
        hint: Some("set `name: svc`, or rename the file to `payments.yaml`"),
    },
    Case {
        name: "non-UTF-8 file",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  description: caf\xe9\n  targets:\n    dev: {}\n",
        code: "encoding",
        message: "the file is not valid UTF-8 (invalid byte 0xe9 at byte offset 42)",
        at: Some((3, 19)),
        hint: Some("UTF-8"),
    },
    Case {
        name: "missing targets",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n",
        code: "missing-key",
        message: "missing required key `targets` in `deployment`",
        at: Some((1, 1)),
        hint: Some("add at least one target"),
    },
    Case {
        name: "script component without apply",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  components:\n    script:\n      migrate:\n        settings:\n          script:\n            plan: ./x.sh\n  targets:\n    dev: {}\n",
        code: "missing-key",
        message: "missing required key `apply` in `deployment.components.script.migrate.settings.script`",
        at: Some((7, 11)),
        hint: Some("sh -c"),
    },
    Case {
        name: "component name used twice",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  components:\n    terraform:\n      api: {}\n    helmfile:\n      api: {}\n  targets:\n    dev: {}\n",
        code: "component-clash",
        message: "component name `api` is used by both `terraform/api` and `helmfile/api`",
        at: Some((7, 7)),
        hint: None,
    },
    Case {
        name: "unknown default target",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  context:\n    default_target: develop\n  targets:\n    dev: {}\n",
        code: "unknown-target",
        message: "default target `develop` is not defined",
        at: Some((4, 21)),
        hint: Some("did you mean `dev`?"),
    },
    Case {
        name: "unknown component type",
        file: "svc.yaml",
        contents: b"deployment:\n  name: svc\n  components:\n    terraform: {}\n    helm:\n      api: {}\n  targets:\n    dev: {}\n",
        code: "unknown-key",
        message: "unknown key `helm` in `deployment.components`",
        at: Some((5, 5)),
        hint: Some("did you mean `helmfile`?"),
    },
    Case {
        name: "document is a list",
        file: "svc.yaml",
        contents: b"- deployment\n- svc\n",
        code: "wrong-type",
        message: "the document root must be a mapping, found list",
        at: Some((1, 1)),
        hint: None,
    },
];

#[test]
fn every_broken_config_is_reported_with_location_and_exit_2() {
    let mut failures = Vec::new();
    for case in CASES {
        let repo = Repo::new();
        repo.write(case.file, case.contents);
        let stem = case.file.trim_end_matches(".yaml");
        let run = repo.atmos(&["deployment", "validate", stem, "--format", "json"]);
        let report = match serde_json::from_str::<serde_json::Value>(&run.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!(
                    "{}: stdout is not JSON ({e}): {}",
                    case.name, run.stdout
                ));
                continue;
            }
        };
        if run.code != 2 {
            failures.push(format!("{}: exit {} instead of 2", case.name, run.code));
        }
        let d = &report["deployments"][0];
        let diags = d["diagnostics"].as_array().cloned().unwrap_or_default();
        let found = diags.iter().find(|x| {
            x["code"] == case.code
                && x["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(case.message))
        });
        let Some(found) = found else {
            failures.push(format!(
                "{}: no `{}` diagnostic containing {:?}; got {:#}",
                case.name, case.code, case.message, d["diagnostics"]
            ));
            continue;
        };
        assert_eq!(
            found["file"],
            format!("deployments/{}", case.file),
            "{}",
            case.name
        );
        if let Some((line, column)) = case.at {
            let got = (found["line"].as_u64(), found["column"].as_u64());
            if got != (Some(line), Some(column)) {
                failures.push(format!(
                    "{}: at {:?}, expected {line}:{column}",
                    case.name, got
                ));
            }
        }
        if let Some(hint) = case.hint
            && !found["hint"].as_str().is_some_and(|h| h.contains(hint))
        {
            failures.push(format!(
                "{}: hint {:?} lacks {hint:?}",
                case.name, found["hint"]
            ));
        }
        if d["valid"] != false || report["valid"] != false {
            failures.push(format!("{}: reported valid", case.name));
        }
        // The human report names the same location.
        let human = repo.atmos(&["deployment", "validate", stem]);
        human.code(2);
        if let Some((line, column)) = case.at {
            let loc = format!("--> deployments/{}:{line}:{column}", case.file);
            if !human.stdout.contains(&loc) {
                failures.push(format!(
                    "{}: human output lacks {loc}:\n{}",
                    case.name, human.stdout
                ));
            }
        }
        if !human.stdout.contains("is invalid") {
            failures.push(format!(
                "{}: human output lacks the verdict:\n{}",
                case.name, human.stdout
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    assert!(CASES.len() >= 15);
}

#[test]
fn the_shipped_example_is_valid() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "validate", "payment-service"]);
    run.code(0);
    let expected = [
        "Validating payment-service...",
        "",
        "✓ Deployment configuration is valid",
        "✓ Names are valid git ref segments",
        "✓ All targets defined",
        "✓ All components exist",
        "✓ Component dependencies valid (no cycles)",
        "✓ Promotion paths valid (no cycles)",
        "✓ Approval and deployer rules apply",
        "✓ Policies compile",
        "✓ Hooks load and fit the gate world",
        "✓ Canary strategies can run",
        "",
        "Summary:",
        "  Deployment: payment-service",
        "  Targets: 3 (dev, staging, prod)",
        "  Components: 5 (api, worker, database, migrate, smoke-test)",
        "  Promotion path: dev → staging → prod",
        "",
    ]
    .join("\n");
    assert_eq!(run.stdout, expected);
}

#[test]
fn validate_all_reports_each_file_and_fails_if_one_is_broken() {
    let repo = Repo::example();
    repo.write(
        "broken.yaml",
        "deployment:\n  name: broken\n  targets:\n    dev: {promotion: {from: nowhere}}\n",
    );
    let run = repo.atmos(&["deployment", "validate", "--all"]);
    run.code(2);
    run.stdout_has(&["Validating broken..."]);
    assert!(run.stdout.contains("Validating payment-service..."));
    run.stdout_has(&["--> deployments/broken.yaml:4:29"]);
    run.stdout_has(&["3 deployments: 2 valid, 1 invalid"]);

    let json = repo
        .atmos(&args("deployment validate --all --format json"))
        .json();
    let valid: Vec<bool> = json["deployments"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["valid"] == true)
        .collect();
    assert_eq!(valid, vec![false, true, true]);
}

#[test]
fn check_promotions_lists_every_edge_and_fan_in_paths() {
    let repo = Repo::example();
    let run = repo.atmos(&[
        "deployment",
        "validate",
        "inventory-service",
        "--check-promotions",
    ]);
    run.code(0);
    for line in [
        "    dev → qa → prod",
        "    dev → staging → prod",
        "  ✓ dev → qa",
        "  ✓ staging → prod",
        "  ✓ qa → prod",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing {line:?} in\n{}",
            run.stdout
        );
    }
}

#[test]
fn quiet_validate_prints_nothing_when_valid_and_only_errors_otherwise() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "validate", "--all", "-q"]);
    run.code(0);
    assert_eq!(run.stdout, "");
    repo.write("bad.yaml", "deployment:\n  name: bad\n  targets: {}\n");
    let run = repo.atmos(&["deployment", "validate", "--all", "-q"]);
    run.code(2);
    assert!(!run.stdout.contains('✓'), "{}", run.stdout);
    run.stdout_has(&["error: `deployment.targets`"]);
}

#[test]
fn unknown_deployment_suggests_the_closest_name() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "validate", "payment-servce"]);
    run.code(2);
    run.stderr_has(&["error: deployment `payment-servce` not found"]);
    run.stderr_has(&["did you mean `payment-service`?"]);
}

#[test]
fn validate_needs_a_name_or_all() {
    let repo = Repo::example();
    let run = repo.atmos(&["deployment", "validate"]);
    run.code(2);
    run.stderr_has(&["--all"]);
}
