//! Hook fixtures for `policy test`: files named `*.hooktest.yaml` that run a WebAssembly hook
//! against input documents and compare its findings with the expected ones, under the same
//! limits (and the same fail-closed handling) as a real rollout.
//!
//! ```yaml
//! hook:
//!   wasm: ../../target/guests/wasm32-wasip2/release/change_freeze.wasm  # relative to this file
//!   config: {timezone: Europe/Berlin, windows: [...]}
//!   limits: {timeout_ms: 500}          # optional; the production defaults otherwise
//! cases:
//!   - name: saturday is frozen
//!     input: {now: "2026-11-28T10:00:00Z", target: {name: prod}}
//!     expect:
//!       - {outcome: deny, code: change-freeze, message: weekend}   # message: a substring
//!   - name: monday is open
//!     input: {now: "2026-11-30T10:00:00Z", target: {name: prod}}
//!     expect: []                        # no findings: allowed
//!   - name: a malformed input makes it trap
//!     input: {now: 42}
//!     expect: {error: trap}             # a failure passes only when expected
//! ```
//!
//! A hook that fails (cannot load, traps, runs out of time, fuel or memory, returns an error)
//! is denied in a rollout (fail closed), but in a test it is a failure, not a deny: a case
//! expecting `deny` fails with the reason unless it expects the failure itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::rego::is_fixture;
use super::testing::{Outcome, TestResult};
use super::wasm::HookSet;
use crate::config::model::{HookConfig, Limits};
use crate::contracts::GateAction;
use crate::contracts::{Decision, Verdict};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    hook: FixtureHook,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureHook {
    wasm: String,
    #[serde(default)]
    config: serde_json::Value,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    read_only_dirs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default = "default_action")]
    action: GateAction,
    input: serde_json::Value,
    expect: Expect,
}

/// What a case expects: findings (`[]` for none), or that the hook fails in a given way
/// (`{error: trap}`) — a failure never passes as a deny by accident.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expect {
    Findings(Vec<Expected>),
    Failure {
        /// `load`, `trap`, `timeout`, `fuel`, `memory`, `stack`, `input`, `output`, `error`,
        /// or `any`.
        error: String,
    },
}

fn default_action() -> GateAction {
    GateAction::Rollout
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    outcome: Verdict,
    #[serde(default)]
    code: Option<String>,
    /// A substring of the message.
    #[serde(default)]
    message: Option<String>,
}

/// Every fixture under `paths` (files or folders relative to `root`; `target` folders and
/// hidden folders are skipped), sorted.
pub fn find(root: &Path, paths: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().map(|p| root.join(p)).collect();
    while let Some(path) = stack.pop() {
        if path.is_file() {
            if is_fixture(&path) {
                out.push(path);
            }
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if p.is_dir() && (name == "target" || name.starts_with('.')) {
                continue;
            }
            stack.push(p);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Run every case of every fixture under `paths`.
pub fn run(root: &Path, paths: &[String], cache_dir: Option<&Path>) -> Vec<TestResult> {
    find(root, paths)
        .iter()
        .flat_map(|file| run_file(root, file, cache_dir))
        .collect()
}

fn run_file(root: &Path, file: &Path, cache_dir: Option<&Path>) -> Vec<TestResult> {
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let error = |name: &str, message: String| TestResult {
        file: shown.clone(),
        package: "hook".into(),
        name: name.to_owned(),
        outcome: Outcome::Error { message },
        duration_us: 0,
        detail: None,
    };
    let fixture: Fixture = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_yaml_ng::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(f) => f,
        Err(e) => return vec![error("(fixture)", format!("cannot read the fixture: {e}"))],
    };
    let dir = file.parent().unwrap_or(root);
    let config = HookConfig {
        name: "fixture".into(),
        wasm: fixture.hook.wasm.clone(),
        config: fixture.hook.config,
        on: Vec::new(),
        limits: fixture.hook.limits,
        read_only_dirs: fixture.hook.read_only_dirs,
    };
    let set = match HookSet::load(dir, std::slice::from_ref(&config), cache_dir) {
        Ok(set) => set,
        Err(e) => {
            return vec![error("(fixture)", e.to_string())];
        }
    };
    let package = format!("hook:{}", fixture.hook.wasm);
    fixture
        .cases
        .iter()
        .map(|case| {
            let now = case
                .input
                .get("now")
                .and_then(|n| n.as_str())
                .and_then(|n| n.parse::<jiff::Timestamp>().ok())
                .map_or(Duration::ZERO, |t| {
                    Duration::from_secs(u64::try_from(t.as_second()).unwrap_or_default())
                });
            let started = Instant::now();
            let decisions = set.evaluate(case.action, &case.input, now);
            let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let mismatch = match &case.expect {
                Expect::Failure { error } => expect_failure(error, &decisions),
                Expect::Findings(want) => match decisions.iter().find(|d| d.error.is_some()) {
                    // A crash is not a deny.
                    Some(d) => Some(format!(
                        "the hook did not decide, it failed [{}]: {}",
                        d.error.as_deref().unwrap_or("error"),
                        d.message
                    )),
                    None => compare(want, &decisions),
                },
            };
            TestResult {
                file: shown.clone(),
                package: package.clone(),
                name: case.name.clone(),
                outcome: if mismatch.is_none() {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                },
                duration_us,
                detail: mismatch,
            }
        })
        .collect()
}

/// `None` when the hook failed the way `kind` says; else what happened instead.
fn expect_failure(kind: &str, got: &[Decision]) -> Option<String> {
    match got.iter().find(|d| d.error.is_some()) {
        Some(d) if kind == "any" || d.error.as_deref() == Some(kind) => None,
        Some(d) => Some(format!(
            "expected the hook to fail with `{kind}`, it failed with `{}`: {}",
            d.error.as_deref().unwrap_or("error"),
            d.message
        )),
        None => Some(format!(
            "expected the hook to fail with `{kind}`, but it decided: {}",
            got.iter()
                .map(|d| format!("{} {}", verdict(d.result), d.message))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// `None` when `got` matches `want`; else what differs. A hook with no findings yields one
/// `allow` decision without a code, which matches `expect: []`.
fn compare(want: &[Expected], got: &[Decision]) -> Option<String> {
    let no_findings = matches!(got, [d] if d.result == Verdict::Allow
        && d.code.is_none()
        && d.message == super::wasm::NO_FINDINGS);
    let findings: Vec<&Decision> = if no_findings {
        Vec::new()
    } else {
        got.iter().collect()
    };
    let show = |d: &Decision| {
        format!(
            "{} [{}] {}",
            verdict(d.result),
            d.code.as_deref().unwrap_or("-"),
            d.message
        )
    };
    if findings.len() != want.len() {
        return Some(format!(
            "expected {} finding(s), got {}{}",
            want.len(),
            findings.len(),
            if findings.is_empty() {
                " (the hook allowed)".to_owned()
            } else {
                format!(
                    ": {}",
                    findings
                        .iter()
                        .map(|d| show(d))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        ));
    }
    for (i, (w, d)) in want.iter().zip(&findings).enumerate() {
        let ok = w.outcome == d.result
            && w.code.as_ref().is_none_or(|c| d.code.as_ref() == Some(c))
            && w.message
                .as_ref()
                .is_none_or(|m| d.message.contains(m.as_str()));
        if !ok {
            return Some(format!(
                "finding {}: expected {}{}{}, got {}",
                i + 1,
                verdict(w.outcome),
                w.code
                    .as_ref()
                    .map(|c| format!(" [{c}]"))
                    .unwrap_or_default(),
                w.message
                    .as_ref()
                    .map(|m| format!(" containing \"{m}\""))
                    .unwrap_or_default(),
                show(d)
            ));
        }
    }
    None
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::Warn => "warn",
        Verdict::Deny => "deny",
        Verdict::Pending => "pending",
        Verdict::Skipped => "skipped",
    }
}
