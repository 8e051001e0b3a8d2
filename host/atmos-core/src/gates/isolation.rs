//! Running policy evaluation in a child process, so that a policy that crashes the evaluator
//! (a recursive function that never ends overflows the stack and aborts the process; a
//! runaway allocation gets it killed) denies instead of taking the rollout down with it.
//!
//! The child is the `atmos` binary itself with a hidden subcommand; it reads one JSON
//! request on stdin and writes one JSON answer on stdout ([`serve_evaluate`],
//! [`serve_tests`]). When a child dies, the parent evaluates each policy file on its own to
//! name the culprit, and denies for it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::rego::{PolicySet, collect};
use super::testing::{self, Outcome, TestReport, TestResult};
use crate::contracts::{Decision, Verdict};

/// How gates are evaluated.
pub trait Evaluator {
    /// Evaluate the policies under `paths` against `input`. Never fails: problems deny.
    fn evaluate(
        &self,
        root: &Path,
        paths: &[String],
        timeout: Duration,
        input: &serde_json::Value,
    ) -> Vec<Decision>;
}

/// In this process (library use and tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess;

impl Evaluator for InProcess {
    fn evaluate(
        &self,
        root: &Path,
        paths: &[String],
        timeout: Duration,
        input: &serde_json::Value,
    ) -> Vec<Decision> {
        PolicySet::load(root, paths, timeout).evaluate(input)
    }
}

/// In a child process: `program args…` speaking the JSON protocol of this module.
#[derive(Debug, Clone)]
pub struct Isolated {
    /// The evaluator program (the `atmos` binary).
    pub program: PathBuf,
    /// Arguments selecting the hidden subcommand, e.g. `["__gates", "evaluate"]`.
    pub evaluate_args: Vec<String>,
    /// Arguments selecting the test runner, e.g. `["__gates", "test"]`.
    pub test_args: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EvaluateRequest {
    root: PathBuf,
    paths: Vec<String>,
    timeout_ms: u64,
    input: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct TestRequest {
    root: PathBuf,
    paths: Vec<String>,
    coverage: bool,
    timeout_ms: u64,
}

/// Child side of `evaluate`.
pub fn serve_evaluate(input: &mut dyn Read, output: &mut dyn Write) -> std::io::Result<()> {
    let request: EvaluateRequest = serde_json::from_reader(input)?;
    let decisions = PolicySet::load(
        &request.root,
        &request.paths,
        Duration::from_millis(request.timeout_ms),
    )
    .evaluate(&request.input);
    serde_json::to_writer(output, &decisions)?;
    Ok(())
}

/// Child side of `test`.
pub fn serve_tests(input: &mut dyn Read, output: &mut dyn Write) -> std::io::Result<()> {
    let request: TestRequest = serde_json::from_reader(input)?;
    let report = testing::run(
        &request.root,
        &request.paths,
        request.coverage,
        Duration::from_millis(request.timeout_ms),
    );
    serde_json::to_writer(output, &report)?;
    Ok(())
}

/// How a child run ended.
enum ChildResult {
    Answer(Vec<u8>),
    /// Died or timed out: why, in a sentence.
    Crashed(String),
}

fn run_child(program: &Path, args: &[String], request: &[u8], deadline: Duration) -> ChildResult {
    let child = Command::new(program)
        .env_remove(crate::signing::KEY_ENV)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return ChildResult::Crashed(format!("cannot start the policy evaluator: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(request);
    }
    // Read the pipes on threads so a large answer cannot block the child.
    let stdout = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    });
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break None,
        }
    };
    let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    match status {
        Some(s) if s.success() => ChildResult::Answer(out),
        Some(s) => {
            let err = String::from_utf8_lossy(&err);
            let why = if err.contains("overflowed its stack") {
                "the evaluator overflowed its stack (a recursive function that never ends?)"
                    .to_owned()
            } else {
                use std::os::unix::process::ExitStatusExt;
                match (s.code(), s.signal()) {
                    (_, Some(9)) => "the evaluator was killed (out of memory?)".to_owned(),
                    (_, Some(sig)) => format!("the evaluator died with signal {sig}"),
                    (Some(code), _) => format!(
                        "the evaluator exited with status {code}: {}",
                        err.lines().last().unwrap_or_default()
                    ),
                    _ => "the evaluator stopped".to_owned(),
                }
            };
            ChildResult::Crashed(why)
        }
        None => ChildResult::Crashed(format!(
            "the evaluator did not finish within {} ms",
            deadline.as_millis()
        )),
    }
}

impl Isolated {
    fn deadline(&self, timeout: Duration, files: usize) -> Duration {
        timeout * (files as u32 + 1) + Duration::from_secs(2)
    }

    /// Run the policy tests in a child; when it crashes, run each test file (with the other
    /// policies and data) in its own child to find the one that crashed.
    pub fn run_tests(
        &self,
        root: &Path,
        paths: &[String],
        coverage: bool,
        timeout: Duration,
    ) -> TestReport {
        let request = |paths: &[String], coverage: bool| {
            serde_json::to_vec(&TestRequest {
                root: root.to_owned(),
                paths: paths.to_vec(),
                coverage,
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            })
            .unwrap_or_default()
        };
        let sources = collect(root, paths, true);
        let deadline = self.deadline(timeout, sources.rego.len().max(1) * 8);
        match run_child(
            &self.program,
            &self.test_args,
            &request(paths, coverage),
            deadline,
        ) {
            ChildResult::Answer(bytes) => {
                if let Ok(report) = serde_json::from_slice::<TestReport>(&bytes) {
                    return report;
                }
            }
            ChildResult::Crashed(_) => {}
        }
        // Narrow down: every non-test policy and data file, plus one test file at a time.
        let rel = |p: &PathBuf| p.strip_prefix(root).unwrap_or(p).display().to_string();
        let (tests, policies): (Vec<&PathBuf>, Vec<&PathBuf>) = sources
            .rego
            .iter()
            .partition(|p| p.to_string_lossy().ends_with("_test.rego"));
        let base: Vec<String> = policies
            .iter()
            .map(|p| rel(p))
            .chain(sources.data.iter().map(rel))
            .collect();
        let mut report = TestReport {
            results: Vec::new(),
            load_errors: Vec::new(),
            coverage: coverage.then(Vec::new),
        };
        for t in tests {
            let mut these = base.clone();
            these.push(rel(t));
            match run_child(
                &self.program,
                &self.test_args,
                &request(&these, false),
                deadline,
            ) {
                ChildResult::Answer(bytes) => {
                    if let Ok(r) = serde_json::from_slice::<TestReport>(&bytes) {
                        report
                            .results
                            .extend(r.results.into_iter().filter(|x| x.file == rel(t)));
                        for e in r.load_errors {
                            if !report.load_errors.contains(&e) {
                                report.load_errors.push(e);
                            }
                        }
                    }
                }
                ChildResult::Crashed(why) => report.results.push(TestResult {
                    file: rel(t),
                    package: String::new(),
                    name: "(every test of this file)".into(),
                    outcome: Outcome::Error {
                        message: format!("{why}; the file's tests crashed the run"),
                    },
                    duration_us: 0,
                    detail: None,
                }),
            }
        }
        report
    }
}

impl Evaluator for Isolated {
    fn evaluate(
        &self,
        root: &Path,
        paths: &[String],
        timeout: Duration,
        input: &serde_json::Value,
    ) -> Vec<Decision> {
        let request = |paths: &[String]| {
            serde_json::to_vec(&EvaluateRequest {
                root: root.to_owned(),
                paths: paths.to_vec(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                input: input.clone(),
            })
            .unwrap_or_default()
        };
        let sources = collect(root, paths, false);
        let deadline = self.deadline(timeout, sources.rego.len());
        let first = run_child(
            &self.program,
            &self.evaluate_args,
            &request(paths),
            deadline,
        );
        if let ChildResult::Answer(bytes) = &first
            && let Ok(decisions) = serde_json::from_slice::<Vec<Decision>>(bytes)
        {
            return decisions;
        }
        // Evaluate each policy file alone (with every data file) to name the one that crashes.
        let rel = |p: &PathBuf| p.strip_prefix(root).unwrap_or(p).display().to_string();
        let data: Vec<String> = sources.data.iter().map(rel).collect();
        let mut decisions: Vec<Decision> = sources
            .missing
            .iter()
            .map(|m| {
                Decision::new(
                    m,
                    "load",
                    Verdict::Deny,
                    "policy failed to load (fail closed): no such file or folder".into(),
                )
            })
            .chain(sources.unreadable.iter().map(|u| {
                Decision::new(
                    &u.file,
                    "load",
                    Verdict::Deny,
                    format!("policy failed to load (fail closed): {}", u.message),
                )
            }))
            .collect();
        for file in &sources.rego {
            let mut these = vec![rel(file)];
            these.extend(data.iter().cloned());
            match run_child(
                &self.program,
                &self.evaluate_args,
                &request(&these),
                self.deadline(timeout, 1),
            ) {
                ChildResult::Answer(bytes) => match serde_json::from_slice::<Vec<Decision>>(&bytes)
                {
                    Ok(d) => decisions.extend(d),
                    Err(e) => decisions.push(Decision::new(
                        &rel(file),
                        "evaluate",
                        Verdict::Deny,
                        format!("unreadable answer from the policy evaluator (fail closed): {e}"),
                    )),
                },
                ChildResult::Crashed(why) => decisions.push(Decision::new(
                    &rel(file),
                    "evaluate",
                    Verdict::Deny,
                    format!("policy evaluation crashed (fail closed): {why}"),
                )),
            }
        }
        decisions
    }
}
