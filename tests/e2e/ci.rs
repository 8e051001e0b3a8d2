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
                // GitHub's own actions on their node24 majors (node20 is retired).
                if let Some((action, version)) = str_of(step, "uses")
                    .filter(|u| u.starts_with("actions/"))
                    .and_then(|u| u.split_once('@'))
                {
                    let node24 = [
                        ("actions/checkout", 5),
                        ("actions/upload-artifact", 6),
                        ("actions/upload-pages-artifact", 5),
                        ("actions/deploy-pages", 5),
                        ("actions/cache", 5),
                    ];
                    let (_, min) = node24
                        .iter()
                        .find(|(a, _)| *a == action)
                        .unwrap_or_else(|| {
                            panic!(
                                "{}",
                                what(&format!("{action}: which major runs on node24?"))
                            )
                        });
                    let major: u32 = version
                        .trim_start_matches('v')
                        .split('.')
                        .next()
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0);
                    assert!(
                        major >= *min,
                        "{}",
                        what(&format!(
                            "job {name} uses {action}@{version}, on a retired runtime (v{min} or later runs on node24)"
                        ))
                    );
                }
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

/// `${{ … }}` expressions of the shipped workflow, as GitHub would expand them for this run;
/// an expression the test does not know fails it (the workflow grew a dependency on GitHub
/// the local run cannot stand in for).
fn expand(text: &str, known: &[(&str, String)]) -> String {
    let mut out = text.to_owned();
    for (expr, value) in known {
        out = out.replace(&format!("${{{{ {expr} }}}}"), value);
    }
    assert!(
        !out.contains("${{"),
        "an expression this local run does not provide: {out}"
    );
    out
}

fn env_of(v: &Value, known: &[(&str, String)]) -> Vec<(String, String)> {
    v["env"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other)
                    .expect("yaml")
                    .trim()
                    .to_owned(),
            };
            (k.as_str().expect("name").to_owned(), expand(&value, known))
        })
        .collect()
}

/// The jobs of `examples/ci/github-actions.yml` that run on every push (build → dev → staging,
/// then verify), step by step as written, with the real buildah and atmos's action script,
/// against a registry on loopback that asks for a login as ghcr.io does. What needs GitHub is
/// stood in for, and said: `actions/checkout` (the repository is the checkout), the
/// registry's host (the loopback registry instead of ghcr.io, substituted in the scripts, with
/// `--tls-verify=false` for its plain HTTP),
/// the run's contexts (`github.*`, `secrets.GITHUB_TOKEN`), and the base images, which come
/// from Docker Hub (the Dockerfiles here are `FROM scratch`). The prod job needs a
/// `workflow_dispatch` and approvals on GitHub and is not run.
#[test]
fn the_workflow_jobs_run_as_written_with_buildah_against_a_login_registry_with_scratch_dockerfiles()
{
    use crate::registry::{Engines, Registry, skopeo};
    let token = "gh-token-0123";
    let registry = Registry::start_with_login("ci-bot", token);
    let engines = Engines::new(&registry);
    let repo = crate::support::Repo::example();
    for service in ["api", "worker"] {
        repo.write_file(
            &format!("services/{service}/Dockerfile"),
            "FROM scratch\nCOPY . /app\n",
        );
    }
    // As new-project.sh lays it out: the stand-in terraform the workflow names.
    let stand_in = repo.path().join("tools/stand-ins/terraform");
    std::fs::create_dir_all(stand_in.parent().expect("parent")).expect("mkdir");
    std::fs::copy(workspace().join("examples/stand-ins/terraform"), &stand_in).expect("copy");
    crate::rollout::make_executable(&stand_in);
    let head = repo.commit("the example, with the workflow's stand-ins");
    // The shared store: a bare origin, as the repository on GitHub.
    let origin = tempfile::tempdir().expect("tempdir");
    let made = Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(origin.path())
        .status()
        .expect("git")
        .success();
    assert!(made);
    repo.git(&[
        "remote",
        "add",
        "origin",
        &origin.path().display().to_string(),
    ]);
    repo.git(&["push", "-q", "origin", "HEAD"]);

    let workflow = yaml(&workspace().join("examples/ci/github-actions.yml"));
    let host = registry.host();
    let known = [
        ("github.run_id", "7".to_owned()),
        ("github.run_attempt", "1".to_owned()),
        ("github.actor", "ci-bot".to_owned()),
        ("secrets.GITHUB_TOKEN", token.to_owned()),
        ("github.workspace", repo.path().display().to_string()),
    ];
    let auth = tempfile::tempdir().expect("tempdir");
    let mut base: Vec<(String, String)> = engines.env();
    base.extend([
        // Where `buildah login` writes and atmos reads (containers-auth.json(5)).
        (
            "REGISTRY_AUTH_FILE".to_owned(),
            auth.path().join("auth.json").display().to_string(),
        ),
        // Mixed case: ghcr.io wants the owner in lower case, and the login step says so.
        ("GITHUB_REPOSITORY_OWNER".to_owned(), "Acme-Org".to_owned()),
        ("GITHUB_ACTIONS".to_owned(), "true".to_owned()),
    ]);
    base.extend(env_of(&workflow, &known));

    for job_name in ["build", "dev", "staging", "verify"] {
        let job = &workflow["jobs"][job_name];
        let github_env = auth.path().join(format!("{job_name}.env"));
        std::fs::write(&github_env, "").expect("write");
        for (i, step) in job["steps"]
            .as_sequence()
            .expect("steps")
            .iter()
            .enumerate()
        {
            let what = format!("job {job_name}, step {}", i + 1);
            // Variables earlier steps of this job wrote to GITHUB_ENV.
            let mut env = base.clone();
            env.extend(
                std::fs::read_to_string(&github_env)
                    .expect("read")
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
            );
            env.extend(env_of(job, &known));
            env.extend(env_of(step, &known));
            if let Some(uses) = str_of(step, "uses") {
                if uses.starts_with("actions/checkout@") {
                    continue;
                }
                assert!(
                    uses.ends_with("/atmos@main"),
                    "{what}: {uses} is not stood in for"
                );
                let inputs: Vec<(String, String)> = step["with"]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| {
                        (
                            k.as_str().expect("input").to_owned(),
                            expand(v.as_str().expect("a string input"), &known),
                        )
                    })
                    .collect();
                let inputs: Vec<(&str, &str)> = inputs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let (out, _) = run_action(repo.path(), &inputs, &env);
                assert!(
                    out.status.success(),
                    "{what}: {}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                continue;
            }
            // The loopback registry speaks plain HTTP, which `buildah login` (1.28) accepts
            // only when told: the one flag added to what the workflow runs.
            let script = expand(str_of(step, "run").expect("run or uses"), &known)
                .replace("ghcr.io", &host)
                .replace("buildah login ", "buildah login --tls-verify=false ");
            let out = Command::new("bash")
                .args(["-e", "-c", &script])
                .current_dir(repo.path())
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("GITHUB_ENV", &github_env)
                .output()
                .expect("bash");
            assert!(
                out.status.success(),
                "{what}: {script}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // The build pushed each image to the owner's registry, recorded the digest it serves and a
    // signed provenance of it; dev and staging deployed those digests.
    let note = repo.git(&[
        "notes",
        "--ref",
        "atmos/payment-service/builds",
        "show",
        &head,
    ]);
    for component in ["api", "worker"] {
        let record: serde_json::Value = note
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["component"] == component)
            .expect("a build record");
        let image = format!(
            "{host}/acme-org/payment-service/{component}:{}",
            &head[..12]
        );
        assert_eq!(record["image"], image.as_str());
        assert_eq!(record["builder"], "buildah");
        assert!(record["provenance"]["signatures"][0]["sig"].is_string());
        let served = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("ci-bot:{token}"),
            "--format",
            "{{.Digest}}",
            &format!("docker://{image}"),
        ]);
        assert_eq!(record["digest"], served.as_str(), "{component}");
        for target in ["dev", "staging"] {
            let tags = repo.tags("payment-service", target, component);
            let newest = repo.tag_message(tags.last().expect("a record"));
            assert!(
                newest.contains(&format!("image_digest: {served}")),
                "{target}/{component}: {newest}"
            );
        }
    }
}
