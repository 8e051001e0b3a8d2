//! The JSON (and YAML) documents commands print for `--format json|yaml`: a stable contract
//! for CI. Each carries `apiVersion` and `kind` beside the report's own fields, and its schema
//! is published in `docs/schema/output/` (generated from these types).

use serde::Serialize;

/// `apiVersion` of every output document.
pub const OUTPUT_API_VERSION: &str = "atmos.tools/v1alpha1";

/// A report printed as a document.
pub trait Document: Serialize {
    /// Its `kind`.
    const KIND: &'static str;
}

/// A report with its `apiVersion` and `kind`, as printed.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, T: Document> {
    /// [`OUTPUT_API_VERSION`].
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    /// `T::KIND`.
    pub kind: &'static str,
    /// The report's own fields.
    #[serde(flatten)]
    pub body: &'a T,
}

impl<'a, T: Document> Envelope<'a, T> {
    /// Wrap `body`.
    pub fn of(body: &'a T) -> Envelope<'a, T> {
        Envelope {
            api_version: OUTPUT_API_VERSION,
            kind: T::KIND,
            body,
        }
    }
}

/// `--format json` of a command that stopped on an error.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ErrorDocument {
    /// The error.
    pub error: ErrorBody,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// What is wrong.
    pub message: String,
    /// The process exit code.
    pub exit_code: u8,
    /// What to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Located problems in the user's files.
    pub diagnostics: Vec<crate::diagnostic::Diagnostic>,
}

impl Document for ErrorDocument {
    const KIND: &'static str = "Error";
}

/// Implement [`Document`] for report types.
#[macro_export]
macro_rules! document {
    ($($ty:ty => $kind:literal),* $(,)?) => {
        $(impl $crate::contracts::output::Document for $ty {
            const KIND: &'static str = $kind;
        })*
    };
}
