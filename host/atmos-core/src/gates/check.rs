//! `policy check`: compile policy files without evaluating them, and say what each declares —
//! the parse and compile errors `validate` reports for bound policies, for any path.

use std::path::Path;
use std::time::Duration;

use super::rego::{LoadError, PolicySet};

/// What compiling the policies found.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// The `.rego` files compiled (test files, `*_test.rego`, are compiled by `policy test`;
    /// the checks of [`super::lint`] run over them too).
    pub files: Vec<String>,
    /// Gate packages (those declaring `deny`, `warn` or `pending`) and their rules.
    pub gates: Vec<GatePackage>,
    /// Problems, each with its file (and line and column when known).
    pub errors: Vec<CheckError>,
}

/// A package that gates.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct GatePackage {
    /// `data.atmos.freeze`.
    pub package: String,
    /// `deny`, `warn`, `pending`.
    pub rules: Vec<String>,
}

/// One problem.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct CheckError {
    /// The file or path concerned.
    pub file: String,
    /// The line, when one is concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// What is wrong.
    pub message: String,
}

impl From<&LoadError> for CheckError {
    fn from(e: &LoadError) -> CheckError {
        CheckError {
            file: e.file.clone(),
            line: None,
            message: e.message.clone(),
        }
    }
}

crate::document!(CheckReport => "PolicyCheckReport");

/// Compile the policies under `paths` (relative to `root`).
pub fn check(root: &Path, paths: &[String], timeout: Duration) -> CheckReport {
    let set = PolicySet::load(root, paths, timeout);
    let mut errors: Vec<CheckError> = set.errors().iter().map(CheckError::from).collect();
    for path in super::rego::collect(root, paths, true).rego {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // unreadable or not UTF-8: the compiler's error says so
        };
        let file = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        errors.extend(
            super::lint::lint(&file, &text)
                .into_iter()
                .map(|f| CheckError {
                    file: file.clone(),
                    line: Some(f.line),
                    message: f.message,
                }),
        );
    }
    CheckReport {
        files: set.files().to_vec(),
        gates: set
            .gates()
            .into_iter()
            .map(|(package, rules)| GatePackage { package, rules })
            .collect(),
        errors,
    }
}
