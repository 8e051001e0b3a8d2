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

/// examples/atmos-stacks (Atmos's quick-start layout with a deployment over its three stacks):
/// each target is a stack, `station` is the stack's component, `describe` shows it as the stack
/// resolves it, and the rollout runs it as `atmos terraform deploy station -s <stack>` would —
/// through a stand-in terraform that records its arguments, folder, environment and varfile
/// (terraform is not installable here).
#[test]
fn a_deployment_over_atmos_stacks_runs_the_stacks_component_with_a_stand_in_terraform_that_records_its_arguments()
 {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let example = crate::support::example_dir().join("../atmos-stacks");
    copy_tree(&example, repo.path());
    let stand_in = out.path().join("terraform");
    std::fs::write(
        &stand_in,
        "#!/bin/sh\necho \"$(basename \"$(pwd)\")|$ATMOS_STACK|$TF_IN_AUTOMATION|$*\" >> \"$OUT/terraform.calls\"\nif [ \"$1\" = apply ]; then cp \"$3\" \"$OUT/varfile.$ATMOS_TARGET.json\"; fi\n",
    )
    .expect("write");
    crate::rollout::make_executable(&stand_in);
    repo.commit("the example");
    let env = [
        ("ATMOS_TERRAFORM_BIN", stand_in.to_str().expect("utf-8")),
        ("OUT", out.path().to_str().expect("utf-8")),
    ];
    repo.atmos_env(&args("deployment validate weather"), &env)
        .code(0)
        .stdout_has(&["✓ Stack components resolve"]);
    // describe: the stack's values, the deployment's on top, and where each came from.
    let described = repo.atmos_env(&args("deployment describe weather --target prod"), &env);
    described.code(0).stdout_has(&[
        "Stack prod (deploy/prod; imports catalog/station), folder components/terraform/weather, workspace prod-station, varfile prod-station.terraform.tfvars.json",
    ]);
    let row = |key: &str| {
        described
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no row {key}: {}", described.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("location"),
        "location Los Angeles stack, stack prod, stacks/deploy/prod.yaml:10"
    );
    assert!(
        row("owner").starts_with("owner platform-team component vars"),
        "{}",
        row("owner")
    );
    let json = repo
        .atmos_env(
            &args("deployment describe weather --target prod --format json"),
            &env,
        )
        .json();
    let station = &json["target"]["components"][0];
    assert_eq!(station["stack"]["workspace"], "prod-station");
    assert_eq!(
        station["stack"]["sources"]["vars.units"],
        "stacks/catalog/station.yaml:12"
    );
    assert_eq!(
        station["vars"]["provenance"]["stage"]["at"],
        "stack prod, stacks/deploy/prod.yaml:3"
    );
    assert_eq!(station["vars"]["values"]["stage"], "prod");
    assert_eq!(station["vars"]["values"]["owner"], "platform-team");
    repo.atmos_env(&args("deployment rollout weather --target dev"), &env)
        .code(0);
    repo.atmos_env(
        &args("deployment rollout weather --target staging --promote-from dev"),
        &env,
    )
    .code(0);
    repo.atmos_env(
        &args("deployment rollout weather --target prod --promote-from staging"),
        &env,
    )
    .code(0);
    let calls = std::fs::read_to_string(out.path().join("terraform.calls")).expect("calls");
    let calls: Vec<&str> = calls.lines().collect();
    let mut expected = Vec::new();
    for stage in ["dev", "staging", "prod"] {
        expected.push(format!("weather|{stage}|true|init -reconfigure"));
        expected.push(format!(
            "weather|{stage}|true|workspace select -or-create {stage}-station"
        ));
        expected.push(format!(
            "weather|{stage}|true|apply -var-file {stage}-station.terraform.tfvars.json -auto-approve"
        ));
    }
    assert_eq!(calls, expected);
    // The varfile: the stack's vars (the catalog's, the stack's over them), and what the
    // deployment file sets on top.
    let dev: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("varfile.dev.json")).expect("varfile"),
    )
    .expect("json");
    assert_eq!(
        dev,
        serde_json::json!({"stage": "dev", "location": "Stockholm", "lang": "sv", "units": "m", "owner": "platform-team"})
    );
    let prod: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("varfile.prod.json")).expect("varfile"),
    )
    .expect("json");
    assert_eq!(prod["location"], "Los Angeles");
    assert_eq!(prod["stage"], "prod");

    // A stack that does not define the component stops the rollout before anything runs,
    // naming the stacks that do.
    repo.write(
        "weather.yaml",
        "deployment:\n  name: weather\n  components:\n    terraform:\n      station: {}\n  targets:\n    dev: {stack: qa}\n",
    );
    repo.commit("a stack that does not exist");
    let run = repo.atmos_env(&args("deployment validate weather"), &env);
    run.code(2);
    run.stdout_has(&[
        "✗ Stack components resolve",
        "no stack named `qa` defines the terraform component `station`",
        "--> deployments/weather.yaml:7:18",
        "help: stacks that define it: dev, prod, staging",
    ]);
    let run = repo.atmos_env(&args("deployment rollout weather --target dev"), &env);
    run.code(2);
    run.stderr_has(&[
        "no stack named `qa` defines the terraform component `station`",
        "stacks that define it: dev, prod, staging",
    ]);
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Both programs are called `atmos`: this one answers `atmos deployment …` and hands every
/// other command, unchanged, to the Atmos CLI (`ATMOS_CLI`, else the next `atmos` on PATH) —
/// here a stand-in Atmos CLI that records its arguments and exits 7 (the Go Atmos CLI is not
/// installable here).
#[test]
fn other_commands_go_to_a_stand_in_atmos_cli_that_records_its_arguments_and_deployment_stays_ours()
{
    let dirs = tempfile::tempdir().expect("tempdir");
    let ours = dirs.path().join("ours");
    let theirs = dirs.path().join("theirs");
    let copy = dirs.path().join("copy");
    for d in [&ours, &theirs, &copy] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_atmos"), ours.join("atmos")).expect("symlink");
    std::fs::copy(env!("CARGO_BIN_EXE_atmos"), copy.join("atmos")).expect("copy");
    let record = dirs.path().join("calls");
    std::fs::write(
        theirs.join("atmos"),
        format!(
            "#!/bin/sh\necho \"$*|$ATMOS_DEPLOYMENT_HANDED_OFF\" >> '{}'\nexit 7\n",
            record.display()
        ),
    )
    .expect("write");
    crate::rollout::make_executable(&theirs.join("atmos"));
    let run = |path: &str, extra: &[(&str, &str)], args: &[&str]| {
        let mut cmd = std::process::Command::new(ours.join("atmos"));
        cmd.args(args).env("PATH", path).env_remove("ATMOS_CLI");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        crate::support::Run::from(cmd.output().expect("run"))
    };
    let path = format!("{}:{}:/usr/bin:/bin", ours.display(), theirs.display());
    // Another command: handed over as it was typed; its exit code is the Atmos CLI's.
    let r = run(&path, &[], &["terraform", "plan", "station", "-s", "dev"]);
    assert_eq!(r.code, 7, "{r:?}");
    r.stderr
        .is_empty()
        .then_some(())
        .expect("nothing of ours said");
    let called = std::fs::read_to_string(&record).expect("called");
    assert!(
        called.starts_with("terraform plan station -s dev|/"),
        "handed over as typed, naming who handed it: {called}"
    );
    // Ours: deployment, completion, help and flags.
    let r = run(&path, &[], &["deployment", "--help"]);
    r.code(0).stdout_has(&["rollout"]);
    run(&path, &[], &["--version"]).code(0);
    // No Atmos CLI: said, with the fix (exit 2).
    let r = run(
        &format!("{}:/usr/bin:/bin", ours.display()),
        &[],
        &["describe", "stacks"],
    );
    r.code(2).stderr_has(&[
        "`atmos describe` is not an `atmos deployment` command, and no Atmos CLI was found",
        "set ATMOS_CLI to its path",
    ]);
    // ATMOS_CLI names it when it is not on PATH.
    let named = theirs.join("atmos").display().to_string();
    let r = run(
        &format!("{}:/usr/bin:/bin", ours.display()),
        &[("ATMOS_CLI", &named)],
        &["version"],
    );
    assert_eq!(r.code, 7, "{r:?}");
    // Another copy of this program next on PATH: refused, not a loop.
    let r = run(
        &format!("{}:{}:/usr/bin:/bin", ours.display(), copy.display()),
        &[],
        &["workflow", "deploy"],
    );
    r.code(2).stderr_has(&[
        "which is atmos deployment too, and would go straight back (a loop): set ATMOS_CLI",
    ]);
    // The Atmos CLI's own steps that run `atmos` again (a workflow) reach it again through this
    // program: a stand-in Atmos CLI whose `workflow` runs `atmos terraform plan`.
    std::fs::write(
        theirs.join("atmos"),
        format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\nif [ \"$1\" = workflow ]; then exec atmos terraform plan vpc -s dev; fi\nexit 7\n",
            record.display()
        ),
    )
    .expect("write");
    std::fs::remove_file(&record).expect("rm");
    let r = run(&path, &[], &["workflow", "deploy"]);
    assert_eq!(r.code, 7, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(&record).expect("called"),
        "workflow\nterraform\n"
    );
}

/// `stack_runner: atmos-cli`: the stack's component is run by the installed Atmos CLI
/// (`atmos terraform deploy <component> -s <stack>` in the deployed commit's project), here a
/// stand-in Atmos CLI that records its arguments, folder and ATMOS_CLI_CONFIG_PATH.
#[test]
fn a_stack_run_by_a_stand_in_atmos_cli_that_records_its_arguments() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &crate::support::example_dir().join("../atmos-stacks"),
        repo.path(),
    );
    let file = repo.path().join("deployments/weather.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        text.replace(
            "    dev:\n      stack: dev\n",
            "    dev:\n      stack: dev\n      stack_runner: atmos-cli\n",
        ),
    )
    .expect("write");
    repo.commit("dev through the Atmos CLI");
    let cli = out.path().join("atmos");
    std::fs::write(
        &cli,
        "#!/bin/sh\necho \"$*|$(basename \"$(pwd)\")|$(test -f \"$ATMOS_CLI_CONFIG_PATH/atmos.yaml\" && echo atmos.yaml)\" >> \"$OUT/atmos.calls\"\n",
    )
    .expect("write");
    crate::rollout::make_executable(&cli);
    let env = [
        ("ATMOS_CLI", cli.to_str().expect("utf-8")),
        ("OUT", out.path().to_str().expect("utf-8")),
    ];
    repo.atmos_env(&args("deployment rollout weather --target dev"), &env)
        .code(0);
    let calls = std::fs::read_to_string(out.path().join("atmos.calls")).expect("called");
    let line = calls.lines().next().expect("a call");
    let mut parts = line.split('|');
    assert_eq!(parts.next(), Some("terraform deploy station -s dev"));
    // It runs in the deployed commit's export (a private folder), not in the work tree, and
    // ATMOS_CLI_CONFIG_PATH names that export's atmos.yaml.
    let folder = parts.next().expect("a folder");
    assert_ne!(
        folder,
        repo.path().file_name().expect("name").to_string_lossy()
    );
    assert_eq!(parts.next(), Some("atmos.yaml"), "{line}");
    // Without an Atmos CLI: refused before anything runs.
    let run = repo.atmos_env(
        &args("deployment rollout weather --target dev --force"),
        &[("ATMOS_CLI", ""), ("PATH", "/usr/bin:/bin")],
    );
    run.code(1)
        .stderr_has(&["`atmos (the Atmos CLI)` is needed by component `terraform/station`"]);
}

/// A stack's Helmfile component, run as `atmos helmfile deploy <c> -s <stack>` would — through
/// a stand-in helmfile that records its arguments, folder, environment and varfile (helmfile is
/// not installable here).
#[test]
fn a_stacks_helmfile_component_runs_with_a_stand_in_helmfile_that_records_its_arguments() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &crate::support::example_dir().join("../atmos-stacks"),
        repo.path(),
    );
    let edit = |file: &str, from: &str, to: &str| edit_once(&repo, file, from, to);
    edit(
        "atmos.yaml",
        "components:\n  terraform:\n",
        "components:\n  helmfile:\n    base_path: \"components/helmfile\"\n  terraform:\n",
    );
    edit(
        "stacks/catalog/station.yaml",
        "components:\n  terraform:\n",
        "components:\n  helmfile:\n    dashboard:\n      vars: {replicas: 1, region: eu-north-1}\n      env: {DASHBOARD_MODE: kiosk}\n  terraform:\n",
    );
    edit(
        "deployments/weather.yaml",
        "  components:\n    terraform:\n",
        "  components:\n    helmfile:\n      dashboard: {}\n    terraform:\n",
    );
    repo.write_file(
        "components/helmfile/dashboard/helmfile.yaml",
        "releases: []\n",
    );
    let stand_in = out.path().join("helmfile");
    std::fs::write(
        &stand_in,
        "#!/bin/sh\necho \"$(basename \"$(pwd)\")|$STACK|$STAGE|$REGION|$DASHBOARD_MODE|$*\" >> \"$OUT/helmfile.calls\"\ncp \"$2\" \"$OUT/values.$ATMOS_TARGET.yaml\"\n",
    )
    .expect("write");
    crate::rollout::make_executable(&stand_in);
    repo.commit("a helmfile component in the stacks");
    let terraform = crate::support::example_dir()
        .join("../stand-ins/terraform")
        .display()
        .to_string();
    let env = [
        ("ATMOS_HELMFILE_BIN", stand_in.to_str().expect("utf-8")),
        ("ATMOS_TERRAFORM_BIN", terraform.as_str()),
        ("OUT", out.path().to_str().expect("utf-8")),
    ];
    repo.atmos_env(&args("deployment validate weather"), &env)
        .code(0);
    repo.atmos_env(&args("deployment rollout weather --target dev"), &env)
        .code(0);
    let calls = std::fs::read_to_string(out.path().join("helmfile.calls")).expect("calls");
    assert_eq!(
        calls,
        "dashboard|dev|dev|eu-north-1|kiosk|--state-values-file dev-dashboard.helmfile.vars.yaml sync\n"
    );
    let values: serde_json::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(out.path().join("values.dev.yaml")).expect("values"),
    )
    .expect("yaml");
    assert_eq!(
        values,
        serde_json::json!({"stage": "dev", "replicas": 1, "region": "eu-north-1"})
    );
}

/// A committed symbolic link cannot send a stack's component outside the deployed commit: the
/// rollout refuses before anything runs (stand-in terraform records any call).
#[test]
fn a_component_folder_linked_outside_the_commit_runs_nothing_with_a_stand_in_terraform() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &crate::support::example_dir().join("../atmos-stacks"),
        repo.path(),
    );
    let outside = out.path().join("outside/weather");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("main.tf"), "# not in the commit\n").expect("write");
    let folder = repo.path().join("components/terraform/weather");
    std::fs::remove_dir_all(&folder).expect("rm");
    std::os::unix::fs::symlink(&outside, &folder).expect("symlink");
    repo.commit("the module folder is a link");
    let stand_in = out.path().join("terraform");
    std::fs::write(
        &stand_in,
        "#!/bin/sh\necho \"$(pwd)|$*\" >> \"$OUT/terraform.calls\"\n",
    )
    .expect("write");
    crate::rollout::make_executable(&stand_in);
    let env = [
        ("ATMOS_TERRAFORM_BIN", stand_in.to_str().expect("utf-8")),
        ("OUT", out.path().to_str().expect("utf-8")),
    ];
    let run = repo.atmos_env(&args("deployment rollout weather --target dev"), &env);
    run.code(2).stderr_has(&[
        "leads outside commit",
        "nothing runs outside the deployed commit",
    ]);
    assert!(
        !out.path().join("terraform.calls").exists(),
        "terraform ran"
    );
    assert!(
        std::fs::read_dir(&outside).expect("read").count() == 1,
        "nothing was written outside"
    );
}

const PACKER_TEMPLATE: &str = "variable \"stage\" { type = string }\nvariable \"location\" { type = string }\nsource \"null\" \"image\" { communicator = \"none\" }\nbuild {\n  sources = [\"source.null.image\"]\n  provisioner \"shell-local\" { inline = [\"echo ${var.stage} ${var.location} >> $OUT/packer.built\"] }\n}\n";

/// `packer` components, built by the real packer (Debian's package; `.ci/run` installs it)
/// with its `null` builder: on their own (`packer build -var-file <vars> .` in their folder)
/// and as a stack's component (Atmos's contract: `<stack>-<component>.packer.vars.json`).
#[test]
fn packer_components_build_with_the_real_packer_alone_and_from_a_stack() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &crate::support::example_dir().join("../atmos-stacks"),
        repo.path(),
    );
    let edit = |file: &str, from: &str, to: &str| edit_once(&repo, file, from, to);
    edit(
        "atmos.yaml",
        "components:\n  terraform:\n",
        "components:\n  packer:\n    base_path: \"components/packer\"\n  terraform:\n",
    );
    edit(
        "stacks/catalog/station.yaml",
        "components:\n  terraform:\n",
        "components:\n  packer:\n    station-image:\n      vars: {location: Nowhere}\n  terraform:\n",
    );
    edit(
        "deployments/weather.yaml",
        "  components:\n    terraform:\n",
        "  components:\n    packer:\n      station-image: {}\n    terraform:\n",
    );
    repo.write_file(
        "components/packer/station-image/image.pkr.hcl",
        PACKER_TEMPLATE,
    );
    // A packer component of its own, beside: vars from the deployment file.
    repo.write(
        "golden.yaml",
        "deployment:\n  name: golden\n  components:\n    packer:\n      base-image:\n        vars: {stage: golden, location: Oslo}\n        settings:\n          packer: {dir: components/packer/station-image}\n  targets:\n    dev: {}\n",
    );
    repo.commit("packer images");
    let terraform = crate::support::example_dir()
        .join("../stand-ins/terraform")
        .display()
        .to_string();
    let env = [
        ("ATMOS_TERRAFORM_BIN", terraform.as_str()),
        ("OUT", out.path().to_str().expect("utf-8")),
    ];
    repo.atmos_env(&args("deployment validate --all"), &env)
        .code(0);
    repo.atmos_env(&args("deployment rollout golden --target dev"), &env)
        .code(0)
        .stdout_has(&["build -var-file"]);
    repo.atmos_env(&args("deployment rollout weather --target dev"), &env)
        .code(0)
        .stdout_has(&["build -var-file dev-station-image.packer.vars.json ."]);
    assert_eq!(
        std::fs::read_to_string(out.path().join("packer.built")).expect("packer built"),
        "golden Oslo\ndev Nowhere\n"
    );
}

/// A varfile path that the commit holds as a symbolic link cannot make the rollout write
/// outside the export: the link is replaced, the file outside stays as it was.
#[test]
fn a_varfile_committed_as_a_link_is_replaced_never_followed_with_a_stand_in_terraform() {
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &crate::support::example_dir().join("../atmos-stacks"),
        repo.path(),
    );
    let victim = out.path().join("victim.txt");
    std::fs::write(&victim, "untouched\n").expect("write");
    std::os::unix::fs::symlink(
        &victim,
        repo.path()
            .join("components/terraform/weather/dev-station.terraform.tfvars.json"),
    )
    .expect("symlink");
    repo.commit("a link where the varfile goes");
    let terraform = crate::support::example_dir()
        .join("../stand-ins/terraform")
        .display()
        .to_string();
    repo.atmos_env(
        &args("deployment rollout weather --target dev"),
        &[("ATMOS_TERRAFORM_BIN", terraform.as_str())],
    )
    .code(0)
    .stdout_has(&["dev-station.terraform.tfvars.json: {"]);
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "untouched\n"
    );
}

/// Replace the first `from` in `file` of `repo` with `to`; `from` must be there.
fn edit_once(repo: &Repo, file: &str, from: &str, to: &str) {
    let path = repo.path().join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file}: {from}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}
