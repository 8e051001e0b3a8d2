//! Rego policies through `regorus`, with conftest conventions: every loaded package's `deny`
//! and `warn` sets are evaluated; members are strings or objects with `msg` (and `code`).
//! atmos adds `pending`: a reason to wait (exit 4, like a missing approval) rather than refuse.
//!
//! Fail closed: a path that does not exist, a policy that does not parse, a data file that
//! does not load, a runtime error, or an evaluation past the time limit each become a `deny`
//! decision naming the file (and line, when regorus gives one). Policies are compiled once per
//! run; each evaluation runs on a clone of the compiled engine in a watchdog thread, so a
//! builtin that never returns cannot hang the rollout.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};
use serde::{Deserialize, Serialize};

use crate::contracts::{Decision, Verdict};

/// Default wall-clock limit of one package's evaluation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);

/// Suffix of hook fixture files (`policy test` runs them; Rego data loading skips them).
pub const SUFFIX: &str = ".hooktest.yaml";

/// True for a hook fixture file.
pub fn is_fixture(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(SUFFIX))
}

/// A problem loading policies, for `validate` and for fail-closed decisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadError {
    /// The file or path concerned (relative to the project root).
    pub file: String,
    /// What went wrong (with line and column when known).
    pub message: String,
}

/// One Rego package and the rules it declares.
#[derive(Debug, Clone)]
struct Package {
    /// `data.atmos.freeze`.
    path: String,
    /// For each of `deny`/`warn` the package declares, the file that declares it.
    rules: BTreeMap<&'static str, String>,
}

/// Policies compiled for one run.
#[derive(Debug, Clone)]
pub struct PolicySet {
    engine: Engine,
    packages: Vec<Package>,
    errors: Vec<LoadError>,
    files: Vec<String>,
    timeout: Duration,
}

/// The `.rego` and data files under `paths` (files or folders, relative to `root`).
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// Policy files (tests excluded unless asked for).
    pub rego: Vec<PathBuf>,
    /// `.json`/`.yaml`/`.yml` files beside them.
    pub data: Vec<PathBuf>,
    /// Paths that do not exist.
    pub missing: Vec<String>,
    /// Folders or files that could not be read while walking (a permission, a symbolic link
    /// loop): a gate that cannot read its policies denies, it never drops them.
    pub unreadable: Vec<LoadError>,
}

/// Collect sources. Folders are walked recursively; `_test.rego` files are included only when
/// `tests` is set.
pub fn collect(root: &Path, paths: &[String], tests: bool) -> Sources {
    let mut out = Sources::default();
    let mut data_dirs: Vec<PathBuf> = Vec::new();
    for p in paths {
        let full = root.join(p);
        let is_data = full
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"));
        if full.is_file() && is_data {
            out.data.push(full.clone());
        } else if full.is_file() {
            out.rego.push(full.clone());
            if let Some(dir) = full.parent() {
                data_dirs.push(dir.to_owned());
            }
        } else if full.is_dir() {
            // Symbolic links are followed (a loop is an error, not a hang); build outputs and
            // hidden folders hold no policies.
            let walk = walkdir::WalkDir::new(&full)
                .follow_links(true)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    let name = e.file_name().to_str().unwrap_or("");
                    e.depth() == 0
                        || !e.file_type().is_dir()
                        || (name != "target" && !name.starts_with('.'))
                });
            for entry in walk {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        let place = e.path().map_or_else(|| full.clone(), Path::to_owned);
                        out.unreadable.push(LoadError {
                            file: shown(root, &place),
                            message: format!("cannot be read: {e}"),
                        });
                        continue;
                    }
                };
                let path = entry.path();
                if entry.file_type().is_dir() {
                    data_dirs.push(path.to_owned());
                } else if path.extension().is_some_and(|e| e == "rego") {
                    let is_test = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with("_test.rego"));
                    if tests || !is_test {
                        out.rego.push(path.to_owned());
                    }
                }
            }
        } else {
            out.missing.push(p.clone());
        }
    }
    data_dirs.sort();
    data_dirs.dedup();
    for dir in data_dirs {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                out.unreadable.push(LoadError {
                    file: shown(root, &dir),
                    message: format!("cannot be read: {e}"),
                });
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"))
                    && !is_fixture(p)
            })
            .collect();
        files.sort();
        out.data.extend(files);
    }
    out.rego.sort();
    out.rego.dedup();
    out.data.sort();
    out.data.dedup();
    out
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

impl PolicySet {
    /// Load and compile the policies under `paths`.
    pub fn load(root: &Path, paths: &[String], timeout: Duration) -> PolicySet {
        PolicySet::load_sources(root, &collect(root, paths, false), timeout)
    }

    /// Load and compile already collected sources.
    pub fn load_sources(root: &Path, sources: &Sources, timeout: Duration) -> PolicySet {
        let mut engine = Engine::new();
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: timeout,
            check_interval: NonZeroU32::MIN,
        });
        let mut errors: Vec<LoadError> = sources
            .missing
            .iter()
            .map(|p| LoadError {
                file: p.clone(),
                message: "no such file or folder".into(),
            })
            .chain(sources.unreadable.iter().cloned())
            .collect();
        let mut packages: Vec<Package> = Vec::new();
        let mut files = Vec::new();
        for path in &sources.rego {
            let file = shown(root, path);
            files.push(file.clone());
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(LoadError {
                        file,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            match engine.add_policy(file.clone(), text) {
                Ok(package) => {
                    let entry = match packages.iter_mut().find(|p| p.path == package) {
                        Some(p) => p,
                        None => {
                            packages.push(Package {
                                path: package,
                                rules: BTreeMap::new(),
                            });
                            packages.last_mut().expect("just pushed")
                        }
                    };
                    for rule in ["deny", "warn", "pending"] {
                        if engine
                            .has_declared_rule_rooted_at(&file, rule)
                            .unwrap_or(false)
                        {
                            entry.rules.entry(rule).or_insert_with(|| file.clone());
                        }
                    }
                }
                Err(e) => errors.push(LoadError {
                    file,
                    message: one_line(&e.to_string()),
                }),
            }
        }
        for path in &sources.data {
            let file = shown(root, path);
            let loaded = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|text| {
                    let json: serde_json::Value = if path.extension().is_some_and(|e| e == "json") {
                        serde_json::from_str(&text).map_err(|e| e.to_string())?
                    } else {
                        crate::yaml_shape::check(&text)
                            .map_err(|e| format!("line {}: {}", e.at.line, e.message))?;
                        serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())?
                    };
                    if !json.is_object() {
                        return Err("a data file must hold a mapping (merged into `data`)".into());
                    }
                    engine
                        .add_data(Value::from(json))
                        .map_err(|e| e.to_string())
                });
            if let Err(message) = loaded {
                errors.push(LoadError { file, message });
            }
        }
        // Packages without deny/warn (helpers, libraries) are loaded but not gates.
        packages.retain(|p| !p.rules.is_empty());
        PolicySet {
            engine,
            packages,
            errors,
            files,
            timeout,
        }
    }

    /// Problems found while loading (each denies when evaluated).
    pub fn errors(&self) -> &[LoadError] {
        &self.errors
    }

    /// The policy files loaded.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The gate packages loaded (`data.atmos.freeze`) and the rules each declares.
    pub fn gates(&self) -> Vec<(String, Vec<String>)> {
        self.packages
            .iter()
            .map(|p| {
                (
                    p.path.clone(),
                    p.rules.keys().map(|r| (*r).to_owned()).collect(),
                )
            })
            .collect()
    }

    /// True when nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.errors.is_empty()
    }

    /// Evaluate every package against `input`. Never fails: problems are `deny` decisions.
    pub fn evaluate(&self, input: &serde_json::Value) -> Vec<Decision> {
        let mut decisions: Vec<Decision> = self
            .errors
            .iter()
            .map(|e| {
                Decision::new(
                    &e.file,
                    "load",
                    Verdict::Deny,
                    format!("policy failed to load (fail closed): {}", e.message),
                )
            })
            .collect();
        if self.packages.is_empty() {
            return decisions;
        }
        let mut engine = self.engine.clone();
        engine.set_input(Value::from(input.clone()));
        let packages = self.packages.clone();
        let timeout = self.timeout;
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("atmos-rego".into())
            .spawn(move || {
                for (i, p) in packages.iter().enumerate() {
                    let result = evaluate_package(&mut engine, p, timeout);
                    if tx.send((i, result)).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            decisions.push(Decision::new(
                "rego",
                "evaluate",
                Verdict::Deny,
                format!("cannot start policy evaluation (fail closed): {e}"),
            ));
            return decisions;
        }
        for (i, p) in self.packages.iter().enumerate() {
            // The engine's own timer stops most runaway evaluations; the watchdog catches a
            // builtin that never yields.
            let deadline = self.timeout + Duration::from_millis(250);
            match rx.recv_timeout(deadline) {
                Ok((j, result)) if j == i => decisions.extend(result),
                _ => {
                    for q in &self.packages[i..] {
                        let (file, rule) = q
                            .rules
                            .iter()
                            .next()
                            .map_or(("?", "deny"), |(r, f)| (f.as_str(), *r));
                        let message = if q.path == p.path {
                            format!(
                                "evaluation exceeded the time limit of {} ms (fail closed)",
                                self.timeout.as_millis()
                            )
                        } else {
                            "not evaluated: an earlier policy exceeded the time limit (fail closed)"
                                .to_owned()
                        };
                        decisions.push(Decision {
                            source: file.to_owned(),
                            package: Some(package_name(&q.path)),
                            rule: rule.to_owned(),
                            result: Verdict::Deny,
                            message,
                            code: None,
                            fix: None,
                            logs: Vec::new(),
                            error: Some("timeout".into()),
                        });
                    }
                    break;
                }
            }
        }
        decisions
    }
}

/// The most findings one rule of one policy contributes to a decision list.
pub const MAX_FINDINGS_PER_RULE: usize = 50;

fn package_name(path: &str) -> String {
    path.trim_start_matches("data.").to_owned()
}

fn one_line(message: &str) -> String {
    // regorus formats errors as "\n--> file:line:col\n  |\n… error: text": keep location and text.
    let location = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .map(str::to_owned);
    let text = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| message.trim().to_owned());
    match location {
        Some(loc) => format!("{loc}: {text}"),
        None => text,
    }
}

fn evaluate_package(engine: &mut Engine, p: &Package, timeout: Duration) -> Vec<Decision> {
    let mut out = Vec::new();
    let package = package_name(&p.path);
    for (rule, file) in &p.rules {
        let decision = |result, message: String, code: Option<String>| Decision {
            source: file.clone(),
            package: Some(package.clone()),
            rule: (*rule).to_owned(),
            result,
            // A policy's words go into every record: bounded like a hook's output.
            message: crate::contracts::decision::capped(message),
            code: code.map(crate::contracts::decision::capped),
            fix: None,
            logs: Vec::new(),
            error: None,
        };
        match engine.eval_rule(format!("{}.{rule}", p.path)) {
            Err(e) => {
                let text = one_line(&e.to_string());
                let timed_out = e.downcast_ref::<regorus::LimitError>().is_some()
                    || text.contains("exceeded time limit");
                let message = if timed_out {
                    format!(
                        "evaluation exceeded the time limit of {} ms (fail closed)",
                        timeout.as_millis()
                    )
                } else {
                    format!("policy error (fail closed): {text}")
                };
                let mut d = decision(Verdict::Deny, message, None);
                d.error = Some(if timed_out { "timeout" } else { "policy" }.to_owned());
                out.push(d);
            }
            Ok(Value::Undefined) => out.push(decision(
                Verdict::Allow,
                format!("no {rule} (undefined)"),
                None,
            )),
            Ok(value) => {
                let members: Vec<Value> = match value.as_set() {
                    Ok(set) => set.iter().cloned().collect(),
                    Err(_) => {
                        match value.as_array() {
                            Ok(a) => a.to_vec(),
                            Err(_) => {
                                out.push(decision(
                                Verdict::Deny,
                                format!("`{rule}` must be a set of messages, found {} (fail closed)", value.to_json_str().unwrap_or_default().trim()),
                                None,
                            ));
                                continue;
                            }
                        }
                    }
                };
                if members.is_empty() {
                    out.push(decision(Verdict::Allow, format!("no {rule}"), None));
                }
                // `pending` waits (exit 4) like a missing approval; it is never a warning.
                let verdict = match *rule {
                    "deny" => Verdict::Deny,
                    "pending" => Verdict::Pending,
                    _ => Verdict::Warn,
                };
                // Every finding goes into each record: a rule that yields thousands is cut,
                // keeping the verdict.
                let extra = members.len().saturating_sub(MAX_FINDINGS_PER_RULE);
                for m in members.iter().take(MAX_FINDINGS_PER_RULE) {
                    let (message, code, fix) = message_of(m);
                    let mut d = decision(verdict, message, code);
                    d.fix = fix;
                    out.push(d);
                }
                if extra > 0 {
                    out.push(decision(
                        verdict,
                        format!("… and {extra} more `{rule}` finding(s) of this policy, cut"),
                        None,
                    ));
                }
            }
        }
    }
    out
}

/// A set member: a string, or an object with `msg` (and optional `code`, and `fix`: what
/// clears it).
fn message_of(v: &Value) -> (String, Option<String>, Option<String>) {
    if let Ok(s) = v.as_string() {
        return (s.to_string(), None, None);
    }
    let json: serde_json::Value =
        serde_json::from_str(&v.to_json_str().unwrap_or_default()).unwrap_or_default();
    match json {
        serde_json::Value::Object(map) => {
            let msg = map
                .get("msg")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| serde_json::Value::Object(map.clone()).to_string());
            let code = map.get("code").and_then(|c| c.as_str()).map(str::to_owned);
            let fix = map
                .get("fix")
                .and_then(|c| c.as_str())
                .map(|f| crate::contracts::decision::capped(f.to_owned()));
            (msg, code, fix)
        }
        other => (other.to_string(), None, None),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn deny_and_warn_of_every_package_with_strings_and_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "p/a.rego",
            "package a\n\ndeny contains msg if {\n  input.x > 1\n  msg := \"too big\"\n}\n\ndeny contains {\"msg\": \"way too big\", \"code\": \"BIG\"} if input.x > 2\n\nwarn contains \"careful\" if true\n",
        );
        write(
            dir.path(),
            "p/b.rego",
            "package b\n\ndeny contains \"never\" if false\n",
        );
        write(dir.path(), "p/lib.rego", "package lib\n\nhelper := 1\n");
        write(
            dir.path(),
            "p/a_test.rego",
            "package a_test\n\ntest_x if true\n",
        );
        let set = PolicySet::load(dir.path(), &["p".to_owned()], DEFAULT_TIMEOUT);
        assert!(set.errors().is_empty(), "{:?}", set.errors());
        assert_eq!(
            set.files(),
            ["p/a.rego", "p/b.rego", "p/lib.rego"],
            "tests are not gates"
        );
        let got: Vec<(String, String, Verdict, String, Option<String>)> = set
            .evaluate(&serde_json::json!({"x": 3}))
            .into_iter()
            .map(|d| (d.source, d.rule, d.result, d.message, d.code))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "p/a.rego".into(),
                    "deny".into(),
                    Verdict::Deny,
                    "too big".into(),
                    None
                ),
                (
                    "p/a.rego".into(),
                    "deny".into(),
                    Verdict::Deny,
                    "way too big".into(),
                    Some("BIG".into())
                ),
                (
                    "p/a.rego".into(),
                    "warn".into(),
                    Verdict::Warn,
                    "careful".into(),
                    None
                ),
                (
                    "p/b.rego".into(),
                    "deny".into(),
                    Verdict::Allow,
                    "no deny".into(),
                    None
                ),
            ]
        );
    }

    #[test]
    fn fail_closed_on_syntax_runtime_missing_and_bad_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "p/syntax.rego",
            "package syntax\n\ndeny contains msg if {\n  input.x >\n}\n",
        );
        write(
            dir.path(),
            "p/runtime.rego",
            "package runtime\n\ndeny contains m if {\n  m := sprintf(\"%v\", [1 / input.zero])\n}\n",
        );
        write(dir.path(), "p/data.json", "[1, 2]");
        let set = PolicySet::load(
            dir.path(),
            &["p".to_owned(), "nope".to_owned()],
            DEFAULT_TIMEOUT,
        );
        let decisions = set.evaluate(&serde_json::json!({"zero": 0}));
        let denies: Vec<String> = decisions
            .iter()
            .filter(|d| d.result == Verdict::Deny)
            .map(|d| format!("{}: {}", d.source, d.message))
            .collect();
        assert_eq!(denies.len(), 4, "{denies:#?}");
        assert!(denies.iter().any(|d| d.starts_with("nope: policy failed to load") && d.contains("no such file")), "{denies:#?}");
        assert!(
            denies.iter().any(|d| d.starts_with(
                "p/syntax.rego: policy failed to load (fail closed): p/syntax.rego:5:1:"
            )),
            "{denies:#?}"
        );
        assert!(
            denies
                .iter()
                .any(|d| d.starts_with("p/data.json: policy failed to load")
                    && d.contains("mapping")),
            "{denies:#?}"
        );
        assert!(
            denies.iter().any(|d| d
                .starts_with("p/runtime.rego: policy error (fail closed): p/runtime.rego:4:")
                && d.contains("divide by zero")),
            "{denies:#?}"
        );
    }

    #[test]
    fn runaway_evaluation_is_denied_within_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "p/slow.rego",
            "package slow\n\ndeny contains \"x\" if {\n  some i in numbers.range(1, 100000)\n  some j in numbers.range(1, 100000)\n  i * j == -1\n}\n",
        );
        write(
            dir.path(),
            "p/after.rego",
            "package zafter\n\ndeny contains \"y\" if false\n",
        );
        let set = PolicySet::load(dir.path(), &["p".to_owned()], Duration::from_millis(100));
        let started = Instant::now();
        let decisions = set.evaluate(&serde_json::json!({}));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(decisions.len(), 2, "{decisions:?}");
        let slow = decisions
            .iter()
            .find(|d| d.source == "p/slow.rego")
            .expect("slow");
        assert_eq!(slow.result, Verdict::Deny);
        assert!(
            slow.message == "evaluation exceeded the time limit of 100 ms (fail closed)",
            "{decisions:?}"
        );
        // The engine stopped itself: the other package is still evaluated.
        let other = decisions
            .iter()
            .find(|d| d.source == "p/after.rego")
            .expect("after");
        assert_eq!(
            (other.result, other.message.as_str()),
            (Verdict::Allow, "no deny")
        );
    }

    /// A symbolic link loop in a policy folder is reported (and the gate then denies), never
    /// walked forever; a linked folder of policies is read.
    #[test]
    fn policy_folders_follow_links_and_report_loops() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "p/a.rego",
            "package a\n\ndeny contains \"x\" if false\n",
        );
        write(
            dir.path(),
            "shared/b.rego",
            "package b\n\ndeny contains \"y\" if false\n",
        );
        std::os::unix::fs::symlink(dir.path().join("shared"), dir.path().join("p/shared"))
            .expect("link");
        std::os::unix::fs::symlink(dir.path().join("p"), dir.path().join("p/loop")).expect("loop");
        let sources = collect(dir.path(), &["p".to_owned()], false);
        let files: Vec<String> = sources.rego.iter().map(|p| shown(dir.path(), p)).collect();
        assert_eq!(files, ["p/a.rego", "p/shared/b.rego"]);
        assert_eq!(sources.unreadable.len(), 1, "{:?}", sources.unreadable);
        assert!(
            sources.unreadable[0].message.contains("loop"),
            "{:?}",
            sources.unreadable
        );
        let set = PolicySet::load_sources(dir.path(), &sources, Duration::from_secs(5));
        assert!(
            !set.errors.is_empty(),
            "a loop is a load error: the gate denies"
        );
    }
}
