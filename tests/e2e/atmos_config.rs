//! One `atmos.yaml` for both tools: an Atmos repository's own configuration, unchanged, is
//! read by atmos (its sections accepted, the ones atmos needs read), while atmos's sections
//! stay strictly checked.

use crate::support::{Repo, args};

/// `examples/quick-start-simple/atmos.yaml` of the public cloudposse/atmos repository (commit
/// 15acbf6f2343371547cb2506e3fbb6f39db1bd89), byte for byte: Atmos's own quick start.
const QUICK_START_ATMOS_YAML: &str = "base_path: \"./\"\n\ncomponents:\n  terraform:\n    base_path: \"components/terraform\"\n    apply_auto_approve: false\n    deploy_run_init: true\n    init_run_reconfigure: true\n    auto_generate_backend_file: false\n  \nstacks:\n  base_path: \"stacks\"\n  included_paths:\n    - \"deploy/**/*\"\n  excluded_paths:\n    - \"**/_defaults.yaml\"\n  name_pattern: \"{stage}\"\n\nsettings:\n  yaml:\n    indent: 2\n\nlogs:\n  level: Info\n  file: \"/dev/stderr\"\n";

const WEATHER: &str = "deployment:\n  name: weather\n  components:\n    script:\n      app:\n        settings:\n          script: {apply: 'true'}\n  targets:\n    dev: {}\n";

#[test]
fn an_atmos_repositorys_own_atmos_yaml_is_read_unchanged() {
    let repo = Repo::new();
    repo.write_file("atmos.yaml", QUICK_START_ATMOS_YAML);
    repo.write("weather.yaml", WEATHER);
    repo.commit("the quick start, with a deployment");
    repo.atmos(&args("deployment validate weather"))
        .code(0)
        .stdout_has(&["Deployment configuration is valid"]);
    repo.atmos(&args("deployment rollout weather --target dev"))
        .code(0);
    // Every section of the Atmos CLI's schema is accepted, with atmos's own beside them.
    let mut every = String::from(QUICK_START_ATMOS_YAML);
    every.push_str(
        "workflows: {base_path: stacks/workflows}\ncommands:\n  - name: hello\n    steps: [echo hello]\nvendor: {base_path: vendor.yaml}\ntemplates: {settings: {enabled: true}}\nschemas: {jsonschema: {base_path: stacks/schemas}}\nintegrations: {github: {gitops: {}}}\nenv: {AWS_REGION: us-east-1}\nimport: [shared/atmos.yaml]\napprovers:\n  groups: {sre: [alice@example.com]}\n",
    );
    repo.write_file("atmos.yaml", &every);
    repo.atmos(&args("deployment validate weather")).code(0);
}

#[test]
fn a_typo_in_atmoss_own_sections_is_still_a_located_error() {
    let repo = Repo::new();
    repo.write_file(
        "atmos.yaml",
        format!("{QUICK_START_ATMOS_YAML}approvers:\n  group: {{sre: [alice@example.com]}}\n"),
    );
    repo.write("weather.yaml", WEATHER);
    let run = repo.atmos(&args("deployment validate weather"));
    run.code(2);
    run.stderr_has(&[
        "unknown key `group`",
        "atmos.yaml:27:3",
        "did you mean `groups`?",
    ]);
    // A key neither tool knows at the top: located, with the nearest atmos key.
    repo.write_file(
        "atmos.yaml",
        format!("{QUICK_START_ATMOS_YAML}deployment:\n  path: deployments\n"),
    );
    let run = repo.atmos(&args("deployment validate weather"));
    run.code(2);
    run.stderr_has(&["unknown key `deployment`", "atmos.yaml:26:1"]);
    // Atmos's sections that atmos reads are typed: a wrong type is located too.
    repo.write_file(
        "atmos.yaml",
        QUICK_START_ATMOS_YAML.replace(
            "auto_generate_backend_file: false",
            "auto_generate_backend_file: [no]",
        ),
    );
    let run = repo.atmos(&args("deployment validate weather"));
    run.code(2);
    run.stderr_has(&["atmos.yaml:9:"]);
}
