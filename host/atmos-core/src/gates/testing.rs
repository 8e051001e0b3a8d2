//! `policy test`: Rego unit tests with `opa test` semantics. Every rule named `test_*` in the
//! loaded files is evaluated (with its `with` mocking); it passes when defined and not
//! `false`, fails otherwise, errors when evaluation fails; `todo_test_*` rules are skipped.
//! With coverage, each non-test file gets its covered and uncovered lines.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use regorus::Value;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rego::{LoadError, Sources, collect};

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", tag = "outcome")]
pub enum Outcome {
    /// Defined and not false.
    Pass,
    /// False or undefined.
    Fail,
    /// Evaluation failed.
    Error {
        /// Why.
        message: String,
    },
    /// A `todo_` test.
    Skip,
}

/// One test.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TestResult {
    /// File that defines it.
    pub file: String,
    /// Its package.
    pub package: String,
    /// Rule name.
    pub name: String,
    /// Result.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Evaluation time in microseconds.
    pub duration_us: u64,
    /// Why it failed, when known (hook fixtures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Line coverage of one policy file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FileCoverage {
    /// The file.
    pub file: String,
    /// Lines evaluated.
    pub covered: Vec<u32>,
    /// Lines not evaluated.
    pub not_covered: Vec<u32>,
    /// Covered share, 0–100.
    pub percent: f64,
}

/// The `policy test` report.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TestReport {
    /// Every test, in file order.
    pub results: Vec<TestResult>,
    /// Files that did not load (each fails the run).
    pub load_errors: Vec<LoadError>,
    /// With `--coverage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Vec<FileCoverage>>,
}

impl TestReport {
    /// Count of results with this outcome kind.
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    /// True when nothing failed, errored or failed to load.
    pub fn passed(&self) -> bool {
        self.load_errors.is_empty()
            && self
                .results
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Pass | Outcome::Skip))
    }
}

/// The test rules a file declares: rule heads at the start of a line, with their line.
fn test_rules(text: &str) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if (name.starts_with("test_") || name.starts_with("todo_test_"))
            && !out.iter().any(|(n, _)| *n == name)
        {
            out.push((name, i + 1));
        }
    }
    out
}

/// Run the tests under `paths` (files or folders, relative to `root`).
pub fn run(root: &Path, paths: &[String], coverage: bool, timeout: Duration) -> TestReport {
    let sources: Sources = collect(root, paths, true);
    let mut engine = regorus::Engine::new();
    engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
        limit: timeout,
        check_interval: std::num::NonZeroU32::MIN,
    });
    let mut load_errors: Vec<LoadError> = sources
        .missing
        .iter()
        .map(|p| LoadError {
            file: p.clone(),
            message: "no such file or folder".into(),
        })
        .chain(sources.unreadable.iter().cloned())
        .collect();
    let mut tests: Vec<(String, String, String)> = Vec::new();
    let mut lines: std::collections::HashMap<(String, String), usize> = Default::default();
    let mut policy_files: Vec<String> = Vec::new();
    let mut hints: std::collections::HashMap<String, Vec<String>> = Default::default();
    for path in &sources.rego {
        let file = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let Ok(text) = std::fs::read_to_string(path) else {
            load_errors.push(LoadError {
                file,
                message: "cannot read".into(),
            });
            continue;
        };
        let names = test_rules(&text);
        // A rule that shadows an import is the usual reason a test is only "undefined".
        let shadowing: Vec<String> = super::lint::lint(&file, &text)
            .into_iter()
            .filter(|f| f.message.contains("shadows the import"))
            .map(|f| format!("{file}:{}: {}", f.line, f.message))
            .collect();
        if !shadowing.is_empty() {
            hints.insert(file.clone(), shadowing);
        }
        match engine.add_policy(file.clone(), text) {
            Ok(package) => {
                if names.is_empty() {
                    policy_files.push(file.clone());
                }
                for (n, line) in names {
                    lines.insert((file.clone(), n.clone()), line);
                    tests.push((file.clone(), package.clone(), n));
                }
            }
            Err(e) => load_errors.push(LoadError {
                file,
                message: e
                    .to_string()
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('|'))
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" "),
            }),
        }
    }
    for path in &sources.data {
        let file = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let value = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                serde_yaml_ng::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string())
            });
        if let Err(message) =
            value.and_then(|v| engine.add_data(Value::from(v)).map_err(|e| e.to_string()))
        {
            load_errors.push(LoadError { file, message });
        }
    }
    engine.set_enable_coverage(coverage);
    engine.set_input(Value::new_object());
    // `print()` in a policy or test is shown with the test's result.
    engine.set_gather_prints(true);

    // Tests run in a watchdog thread like gates: a builtin that never yields fails the test
    // and the remaining ones, instead of hanging the run.
    let (tx, rx) = mpsc::channel();
    let queued = tests.clone();
    let worker = std::thread::Builder::new()
        .name("atmos-rego-test".into())
        .spawn(move || {
            for (_, package, name) in &queued {
                let started = Instant::now();
                let (outcome, why) = if name.starts_with("todo_") {
                    (Outcome::Skip, None)
                } else {
                    match engine.eval_rule(format!("{package}.{name}")) {
                        Ok(Value::Undefined) => (
                            Outcome::Fail,
                            Some("is undefined: a line of its body did not hold"),
                        ),
                        Ok(Value::Bool(false)) => (Outcome::Fail, Some("is false")),
                        Ok(_) => (Outcome::Pass, None),
                        // regorus's own multi-line form: location, source line, caret.
                        Err(e) => (
                            Outcome::Error {
                                message: e
                                    .to_string()
                                    .lines()
                                    .filter(|l| !l.trim().is_empty())
                                    .collect::<Vec<_>>()
                                    .join("\n"),
                            },
                            None,
                        ),
                    }
                };
                let prints = engine.take_prints().unwrap_or_default();
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if tx.send((outcome, us, why, prints)).is_err() {
                    return None;
                }
            }
            Some(engine)
        });
    let mut results = Vec::new();
    let mut timed_out = false;
    for (file, package, name) in &tests {
        let (outcome, us, why, prints) = if timed_out {
            (
                Outcome::Error {
                    message: "not run: an earlier test exceeded the time limit".into(),
                },
                0,
                None,
                Vec::new(),
            )
        } else {
            match rx.recv_timeout(timeout + Duration::from_millis(250)) {
                Ok(r) => r,
                Err(_) => {
                    timed_out = true;
                    (
                        Outcome::Error {
                            message: format!(
                                "exceeded the time limit of {} ms",
                                timeout.as_millis()
                            ),
                        },
                        u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX),
                        None,
                        Vec::new(),
                    )
                }
            }
        };
        let at = lines.get(&(file.clone(), name.clone())).copied();
        let mut detail = why.map(|w| match at {
            Some(line) => format!("{file}:{line}: `{name}` {w}"),
            None => format!("`{name}` {w}"),
        });
        if let (Some(d), Some(h)) = (&mut detail, hints.get(file)) {
            d.push_str(&format!("\nperhaps: {}", h.join("\n")));
        }
        if !prints.is_empty() {
            let printed = prints.join("\n");
            detail = Some(match detail {
                Some(d) => format!("{d}\nprint():\n{printed}"),
                None => format!("print():\n{printed}"),
            });
        }
        results.push(TestResult {
            file: file.clone(),
            package: package.trim_start_matches("data.").to_owned(),
            name: name.clone(),
            outcome,
            duration_us: us,
            detail,
        });
    }
    let engine = if timed_out {
        None
    } else {
        worker.ok().and_then(|w| w.join().ok()).flatten()
    };
    let coverage = match (coverage, engine) {
        (true, Some(engine)) => engine.get_coverage_report().ok().map(|report| {
            report
                .files
                .into_iter()
                .filter(|f| policy_files.contains(&f.path))
                .map(|f| {
                    let total = f.covered.len() + f.not_covered.len();
                    FileCoverage {
                        percent: if total == 0 {
                            100.0
                        } else {
                            100.0 * f.covered.len() as f64 / total as f64
                        },
                        file: f.path,
                        covered: f.covered.into_iter().collect(),
                        not_covered: f.not_covered.into_iter().collect(),
                    }
                })
                .collect()
        }),
        (true, None) => Some(Vec::new()),
        _ => None,
    };
    TestReport {
        results,
        load_errors,
        coverage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_rules_at_line_start() {
        let text = "package x\n\ntest_a if true\ntest_a if false\ntodo_test_b if true\n  test_indented if true\nhelper_test_c := 1\n";
        assert_eq!(
            test_rules(text),
            vec![("test_a".to_owned(), 3), ("todo_test_b".to_owned(), 5)]
        );
    }

    #[test]
    fn pass_fail_error_skip_and_coverage() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("p.rego"),
            "package p\n\ndeny contains \"big\" if {\n  input.x > 1\n}\n\nunused if {\n  input.y == 1\n  input.z == 2\n}\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("p_test.rego"),
            "package p_test\n\nimport data.p\n\ntest_big if {\n  p.deny == {\"big\"} with input as {\"x\": 2}\n}\n\ntest_wrong if {\n  count(p.deny) == 1 with input as {\"x\": 0}\n}\n\ntest_boom if {\n  1 / 0 == 1\n}\n\ntodo_test_later if false\n",
        )
        .expect("write");
        let report = run(dir.path(), &[".".to_owned()], true, Duration::from_secs(2));
        let outcomes: Vec<(&str, &Outcome)> = report
            .results
            .iter()
            .map(|r| (r.name.as_str(), &r.outcome))
            .collect();
        assert_eq!(outcomes[0], ("test_big", &Outcome::Pass));
        assert_eq!(outcomes[1], ("test_wrong", &Outcome::Fail));
        assert!(
            matches!(outcomes[2], ("test_boom", Outcome::Error { message }) if message.contains("divide by zero")),
            "{outcomes:?}"
        );
        assert_eq!(outcomes[3], ("todo_test_later", &Outcome::Skip));
        assert!(!report.passed());
        let cov = report.coverage.expect("coverage");
        assert_eq!(cov.len(), 1, "only policy files");
        assert_eq!(cov[0].file, "p.rego");
        assert!(cov[0].covered.contains(&4), "{:?}", cov[0]);
        assert!(cov[0].not_covered.contains(&9), "{:?}", cov[0]);
        assert!(cov[0].percent < 100.0);
    }
}

crate::document!(TestReport => "PolicyTestReport");
