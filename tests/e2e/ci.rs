//! Running in CI: the GitHub Action's script (taken from `action.yml` as shipped) run with
//! the real binary, and the shipped workflows checked for what a workflow that runs as
//! written needs (full history, timeouts, least privilege, inputs the action has, no hidden
//! variables, no expressions spliced into scripts).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

use crate::rollout::{Fixture, record};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read yaml");
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn action() -> Value {
    yaml(&workspace().join("action.yml"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The action's inputs.
fn action_inputs() -> BTreeSet<String> {
    action()["inputs"]
        .as_mapping()
        .expect("inputs")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect()
}

/// The step that runs atmos: its script and the variables it reads inputs from.
fn run_step() -> (String, Vec<(String, String)>) {
    let action = action();
    let step = action["runs"]["steps"]
        .as_sequence()
        .expect("steps")
        .iter()
        .find(|s| str_of(s, "id") == Some("run"))
        .expect("a step with id run")
        .clone();
    let script = str_of(&step, "run").expect("run").to_owned();
    let env = step["env"]
        .as_mapping()
        .expect("env")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().expect("name").to_owned(),
                v.as_str().expect("value").to_owned(),
            )
        })
        .collect();
    (script, env)
}

/// Run the action's script in `dir` with `inputs` (by input name), `atmos` on the PATH.
fn run_action(
    dir: &Path,
    inputs: &[(&str, &str)],
    extra_env: &[(&str, &str)],
) -> (std::process::Output, String) {
    let (script, env) = run_step();
    let bin = tempfile::tempdir().expect("tmp");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_atmos"), bin.path().join("atmos"))
        .expect("symlink");
    let output = bin.path().join("github_output");
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&script).current_dir(dir);
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .env("GITHUB_OUTPUT", &output)
    .env("RUNNER_TEMP", bin.path())
    .env("NO_COLOR", "1")
    .env_remove("GITHUB_STEP_SUMMARY");
    // Every input reaches the script through the variable `env` maps it to, as the runner
    // would set it; unset inputs take their default.
    let defaults = action()["inputs"].clone();
    for (var, expr) in &env {
        let name = expr
            .trim_start_matches("${{ inputs.")
            .trim_end_matches(" }}");
        let value = inputs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| str_of(&defaults[name], "default").map(str::to_owned))
            .unwrap_or_default();
        cmd.env(var, value);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the action's script");
    let outputs = std::fs::read_to_string(&output).unwrap_or_default();
    (out, outputs)
}

#[test]
fn every_action_input_reaches_the_script_as_a_variable_never_as_text() {
    let (script, env) = run_step();
    let mapped: BTreeSet<String> = env
        .iter()
        .map(|(_, expr)| {
            expr.trim_start_matches("${{ inputs.")
                .trim_end_matches(" }}")
                .to_owned()
        })
        .collect();
    let mut expected = action_inputs();
    // Used by the step itself, not by the script.
    expected.remove("working-directory");
    assert_eq!(mapped, expected);
    assert!(
        !script.contains("${{"),
        "expressions spliced into the script"
    );
}

#[test]
fn the_action_runs_a_rollout_with_its_inputs_and_reports_the_exit_code() {
    let f = Fixture::new();
    f.version("1");
    let out_dir = f.out().to_owned();
    let env = [("OUT", out_dir.as_str())];
    // Metadata with spaces, and one that would run a command if it were spliced into shell.
    let pwned = f.out.path().join("pwned");
    let hostile = format!("note=$(touch {})", pwned.display());
    let metadata = format!("pr=#7\n  reason=fix the build  \n{hostile}\n");
    let (out, outputs) = run_action(
        f.repo.path(),
        &[
            ("verb", "rollout"),
            ("deployment", "svc"),
            ("target", "dev"),
            ("components", "a\nb"),
            ("metadata", &metadata),
        ],
        &env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(outputs.contains("exit-code=0"), "{outputs}");
    assert_eq!(f.applied("a", "dev").len(), 1);
    assert_eq!(f.applied("b", "dev").len(), 1);
    assert!(!pwned.exists(), "an input ran as a command");
    let tag = f.repo.outcomes("svc", "dev", "a").pop().expect("a tag");
    let rec = record(&f.repo, &tag);
    assert_eq!(rec["metadata"]["pr"], "#7");
    assert_eq!(rec["metadata"]["reason"], "fix the build");
    assert_eq!(
        rec["metadata"]["note"],
        format!("$(touch {})", pwned.display())
    );

    // Denied: the script exits like atmos and says so in its output.
    let (out, outputs) = run_action(
        f.repo.path(),
        &[
            ("verb", "rollout"),
            ("deployment", "svc"),
            ("target", "prod"),
            ("promote-from", "dev"),
            ("wait-for-lock", "false"),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(outputs.contains("exit-code=3"), "{outputs}");

    // Component names are words, never file patterns; the signing key reaches atmos as a
    // private file and never the deploy scripts' environment.
    let key =
        std::fs::read_to_string(workspace().join("examples/payment-service/TEST-ONLY-keys/dev"))
            .expect("key");
    f.version("2");
    std::fs::write(
        f.repo.path().join("deploy.sh"),
        "#!/bin/sh\nenv > \"$OUT/env.$1\"\n",
    )
    .expect("write");
    f.repo.commit("scripts record their environment");
    let (out, _) = run_action(
        f.repo.path(),
        &[
            ("verb", "rollout"),
            ("deployment", "svc"),
            ("target", "dev"),
            ("components", "*"),
            ("signing-key", &key),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(2), "`*` is no component");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no component `*`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, _) = run_action(
        f.repo.path(),
        &[
            ("verb", "rollout"),
            ("deployment", "svc"),
            ("target", "dev"),
            ("components", "a"),
            ("signing-key", &key),
        ],
        &env,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = std::fs::read_to_string(f.out.path().join("env.a")).expect("env");
    assert!(!seen.contains("OPENSSH PRIVATE KEY"), "{seen}");
    assert!(!seen.contains("INPUT_SIGNING_KEY"), "{seen}");
    assert!(!seen.contains("ATMOS_SIGNING_KEY"), "{seen}");
    let tag = f.repo.outcomes("svc", "dev", "a").pop().expect("tag");
    assert!(
        f.repo
            .git(&["cat-file", "-p", &tag])
            .contains("BEGIN SSH SIGNATURE"),
        "the record is signed with the key"
    );

    // A signing key for a verb that signs nothing is said to be ignored, not passed on.
    let (out, _) = run_action(
        f.repo.path(),
        &[
            ("verb", "status"),
            ("deployment", "svc"),
            ("signing-key", "not a key"),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "::warning title=atmos action::signing-key is used by rollout, approve, reject and build only"
        )
    );
}

/// Every `uses: <this action>` in the shipped workflows, with the job it is in.
fn action_uses(workflow: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, job) in workflow["jobs"].as_mapping().expect("jobs") {
        for step in job["steps"].as_sequence().into_iter().flatten() {
            if str_of(step, "uses").is_some_and(|u| u.ends_with("/atmos@main")) {
                out.push((name.as_str().unwrap_or("").to_owned(), step.clone()));
            }
        }
    }
    out
}

#[test]
fn the_shipped_workflows_run_as_written() {
    let inputs = action_inputs();
    for file in ["github-actions.yml", "verify.yml"] {
        let path = workspace().join("examples/ci").join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        let wf = yaml(&path);
        let what = |m: &str| format!("{file}: {m}");
        assert!(
            !text.contains("vars.") && !text.contains("cargo install --path"),
            "{}",
            what("a hidden variable or an install that works only in atmos's repository")
        );
        // Least privilege: nothing by default, or read only; writes per job.
        let top = &wf["permissions"];
        assert!(
            top.as_mapping().is_some_and(|m| m.is_empty())
                || str_of(top, "contents") == Some("read"),
            "{}",
            what("top-level permissions must be {} or contents: read")
        );
        for (name, job) in wf["jobs"].as_mapping().expect("jobs") {
            let name = name.as_str().unwrap_or("");
            assert!(
                job["timeout-minutes"].as_u64().is_some(),
                "{}",
                what(&format!("job {name} has no timeout-minutes"))
            );
            for step in job["steps"].as_sequence().into_iter().flatten() {
                if str_of(step, "uses").is_some_and(|u| u.starts_with("actions/checkout@")) {
                    assert_eq!(
                        step["with"]["fetch-depth"].as_u64(),
                        Some(0),
                        "{}",
                        what(&format!("job {name} checks out a shallow clone"))
                    );
                }
                if let Some(run) = str_of(step, "run") {
                    assert!(
                        !run.contains("${{ inputs.") && !run.contains("github.event"),
                        "{}",
                        what(&format!("job {name} splices an input into a script"))
                    );
                }
            }
        }
        for (job, step) in action_uses(&wf) {
            for key in step["with"]
                .as_mapping()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                let key = key.as_str().unwrap_or("");
                assert!(
                    inputs.contains(key),
                    "{}",
                    what(&format!(
                        "job {job} passes `{key}`, which the action does not have"
                    ))
                );
            }
            // A job that records must be allowed to push.
            let verb = str_of(&step["with"], "verb").unwrap_or("");
            if ["rollout", "approve", "build"].contains(&verb) {
                let job = &wf["jobs"][job.as_str()];
                assert_eq!(
                    str_of(&job["permissions"], "contents"),
                    Some("write"),
                    "{}",
                    what("a recording job without contents: write")
                );
            }
        }
    }
}
