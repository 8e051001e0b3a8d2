//! `policy check`: compile policy files without evaluating them, and say what each declares —
//! the parse and compile errors `validate` reports for bound policies, for any path.

use std::path::Path;
use std::time::Duration;

use super::rego::{LoadError, PolicySet};

/// What compiling the policies found.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// The `.rego` files checked (test files, `*_test.rego`, are left to `policy test`).
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
    /// What is wrong.
    pub message: String,
}

impl From<&LoadError> for CheckError {
    fn from(e: &LoadError) -> CheckError {
        CheckError {
            file: e.file.clone(),
            message: e.message.clone(),
        }
    }
}

crate::document!(CheckReport => "PolicyCheckReport");

/// Compile the policies under `paths` (relative to `root`).
pub fn check(root: &Path, paths: &[String], timeout: Duration) -> CheckReport {
    let set = PolicySet::load(root, paths, timeout);
    CheckReport {
        files: set.files().to_vec(),
        gates: set
            .gates()
            .into_iter()
            .map(|(package, rules)| GatePackage { package, rules })
            .collect(),
        errors: set.errors().iter().map(CheckError::from).collect(),
    }
}
