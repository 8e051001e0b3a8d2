//! The command line itself: project discovery, --chdir, exit codes, colors, completions,
//! structured errors.

use std::process::Command;

use crate::support::{Repo, args, atmos_cmd, atmos_in};

#[test]
fn finds_the_project_root_from_a_subdirectory_and_with_chdir() {
    let repo = Repo::example();
    let sub = repo.path().join("services/api");
    atmos_in(&sub, &["deployment", "validate", "payment-service", "-q"]).code(0);

    let elsewhere = tempfile::tempdir().expect("tempdir");
    let root = repo.path().to_str().expect("utf-8 path");
    atmos_in(elsewhere.path(), &["--chdir", root, "deployment", "list"]).code(0);
    atmos_in(elsewhere.path(), &["deployment", "list", "-C", root]).code(0);
}

#[test]
fn git_work_tree_is_the_root_without_atmos_yaml() {
    let repo = Repo::new();
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  targets:\n    dev: {}\n",
    );
    std::fs::create_dir_all(repo.path().join("a/b")).expect("mkdir");
    atmos_in(
        &repo.path().join("a/b"),
        &["deployment", "validate", "svc", "-q"],
    )
    .code(0);
}

#[test]
fn atmos_yaml_moves_the_deployments_folder_and_is_validated() {
    let repo = Repo::new();
    repo.write_file("atmos.yaml", "deployments:\n  path: ops/deploy\n");
    repo.write_file(
        "ops/deploy/svc.yaml",
        "deployment:\n  name: svc\n  targets:\n    dev: {}\n",
    );
    repo.atmos(&["deployment", "validate", "svc", "-q"]).code(0);

    repo.write_file("atmos.yaml", "deployment:\n  path: ops/deploy\n");
    let run = repo.atmos(&["deployment", "list"]);
    run.code(2);
    run.stderr_has(&["unknown key `deployment` in the document root"]);
    run.stderr_has(&["--> atmos.yaml:1:1"]);
    run.stderr_has(&["did you mean `deployments`?"]);
}

#[test]
fn outside_any_project_is_a_usage_error_with_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = atmos_in(dir.path(), &["deployment", "list"]);
    run.code(2);
    run.stderr_has(&["no atmos project found at or above"]);
    run.stderr_has(&["git init"]);

    let repo = Repo::new();
    std::fs::remove_dir(repo.path().join("deployments")).expect("rmdir");
    let run = repo.atmos(&["deployment", "list"]);
    run.code(2);
    run.stderr_has(&["no deployments folder at"]);
}

#[test]
fn structured_formats_carry_errors_for_ci() {
    let repo = Repo::example();
    let run = repo.atmos(&args("deployment describe nope --format json"));
    run.code(2);
    let json = run.json();
    assert_eq!(json["error"]["exit_code"], 2);
    assert_eq!(
        json["error"]["message"]
            .as_str()
            .map(|m| m.starts_with("deployment `nope` not found")),
        Some(true)
    );
}

#[test]
fn bad_usage_exits_2_and_help_exits_0() {
    let repo = Repo::example();
    repo.atmos(&["deployment", "frobnicate"]).code(2);
    repo.atmos(&["deployment", "list", "--format", "xml"])
        .code(2);
    let help = repo.atmos(&["deployment", "--help"]);
    help.code(0);
    for verb in ["validate", "list", "describe", "promotion-graph"] {
        assert!(help.stdout.contains(verb), "{verb} missing from help");
    }
    let version = repo.atmos(&["--version"]);
    version.code(0);
    assert!(version.stdout.starts_with("atmos "));
}

#[test]
fn colors_follow_the_flag_and_no_color() {
    let repo = Repo::example();
    let always = repo.atmos(&args("deployment validate payment-service --color always"));
    assert!(always.stdout.contains("\x1b[32m✓"), "{:?}", always.stdout);
    // Not a terminal: auto means no color, and NO_COLOR is set by the harness anyway.
    let auto = repo.atmos(&["deployment", "validate", "payment-service"]);
    assert!(!auto.stdout.contains('\x1b'));
    let never = repo.atmos(&args("deployment validate payment-service --color never"));
    assert!(!never.stdout.contains('\x1b'));
}

#[test]
fn completions_for_each_shell() {
    let repo = Repo::example();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef atmos"),
        ("fish", "complete -c atmos"),
    ] {
        let run = repo.atmos(&["completion", shell]);
        run.code(0);
        assert!(
            run.stdout.contains(marker),
            "{shell}: {}",
            &run.stdout[..run.stdout.len().min(200)]
        );
        assert!(
            run.stdout.contains("promotion-graph"),
            "{shell} completion lacks verbs"
        );
    }
}

#[test]
fn bash_completion_script_is_valid_bash() {
    let repo = Repo::example();
    let run = repo.atmos(&["completion", "bash"]);
    let file = repo.path().join("atmos.bash");
    std::fs::write(&file, &run.stdout).expect("write");
    let status = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .status()
        .expect("bash");
    assert!(status.success());
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let repo = Repo::example();
    let mut child = atmos_cmd(repo.path())
        .args(["completion", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// The command line stays thin: each command file turns arguments into a library call and
/// renders the result, in at most ~300 lines, without using another command's module.
#[test]
fn command_files_are_thin_and_independent() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("commands folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name == "mod.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let lines = text.lines().count();
        assert!(
            lines <= 300,
            "{name} has {lines} lines: move protocol into atmos-core, rendering into render/"
        );
        for needle in ["super::", "crate::commands::"] {
            assert!(
                !text.contains(needle),
                "{name} uses another command's module ({needle})"
            );
        }
        assert!(!text.contains("git2"), "{name} uses libgit2 directly");
        checked += 1;
    }
    assert!(checked >= 15, "found {checked} command files");
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
    )
    .expect("manifest");
    assert!(
        !manifest.contains("git2"),
        "the CLI does not depend on git2"
    );
}

/// `promote` is not a verb; the error says what to type instead.
#[test]
fn promote_is_not_a_verb_and_the_error_says_what_to_type() {
    let repo = crate::support::Repo::new();
    let run = repo.atmos(&crate::support::args(
        "deployment promote payment-service --target prod",
    ));
    run.code(2).stderr_has(&[
        "there is no `promote` verb: a promotion is a rollout from another target",
        "atmos deployment rollout payment-service --target <target> --promote-from <source>",
    ]);
}
