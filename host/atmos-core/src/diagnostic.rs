//! Problems found in a user's files, with where they are and how to fix them.
//!
//! A [`Diagnostic`] is data: the CLI renders it (with the offending source line) as text, or
//! serialises it for `--format json`.

use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, JsonSchema)]
pub struct Span {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number (in characters).
    pub column: usize,
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file cannot be used.
    Error,
    /// The file works, but something is probably not what the author meant.
    Warning,
}

/// Stable identifiers of each kind of problem; part of the JSON output contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// The file could not be read.
    Io,
    /// The file is not UTF-8.
    Encoding,
    /// The file holds nothing.
    Empty,
    /// YAML that does not parse.
    YamlSyntax,
    /// A key repeated within one mapping.
    DuplicateKey,
    /// A key the schema does not know.
    UnknownKey,
    /// A required key is missing.
    MissingKey,
    /// A value of the wrong type.
    WrongType,
    /// Any other schema violation.
    Schema,
    /// `deployment.name` differs from the file stem.
    NameMismatch,
    /// A name that cannot be a git ref path segment.
    InvalidName,
    /// Two components share a name, or one name is a path prefix of another.
    ComponentClash,
    /// A target named somewhere does not exist.
    UnknownTarget,
    /// `from` and `allowed_from` together.
    ConflictingPromotion,
    /// A target promoted from itself.
    SelfPromotion,
    /// Promotion sources that loop.
    PromotionCycle,
    /// A `depends_on` entry that names no component.
    UnknownDependency,
    /// `depends_on` entries that loop.
    DependencyCycle,
    /// `atmos.yaml` problems.
    ProjectSettings,
    /// A bound policy that does not load or compile.
    Policy,
    /// A bound WebAssembly hook that cannot run.
    Hook,
    /// A target bound to an Atmos stack whose components cannot be resolved there.
    Stack,
    /// A setting that has no effect where it is (`approvals` without `requires_approval`).
    IneffectiveSetting,
    /// A group that `atmos.yaml` `approvers.groups` does not define.
    UnknownGroup,
    /// An `import:` entry that is missing, loops, or leads outside the deployments folder.
    Import,
    /// A YAML function (`!env`, `!include`, `!git.sha`) that cannot be evaluated.
    YamlFunction,
    /// A template that does not parse or uses something undefined.
    Template,
    /// A deployment strategy that cannot run (`strategy.canary` steps, durations, selectors).
    Strategy,
}

/// One problem in one file.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What kind of problem.
    pub code: Code,
    /// The file, relative to the project root when it is inside it.
    pub file: PathBuf,
    /// Where in the file, when known.
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub span: Option<Span>,
    /// JSON pointer of the offending node, when the problem is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when that is clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The text of the offending line, for rendering.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// An error in `file`.
    pub fn error(code: Code, file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            file: file.into(),
            span: None,
            pointer: None,
            message: message.into(),
            hint: None,
            source_line: None,
        }
    }

    /// Attach a position, and the line of `text` it points into.
    pub fn at(mut self, span: Option<Span>, text: Option<&str>) -> Self {
        self.span = span;
        if let (Some(span), Some(text)) = (span, text) {
            self.source_line = text
                .lines()
                .nth(span.line.saturating_sub(1))
                .map(str::to_owned);
        }
        self
    }

    /// Attach the JSON pointer of the node.
    pub fn pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    /// Attach a fix.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Downgrade to a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(span) = self.span {
            write!(f, ":{}:{}", span.line, span.column)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let keys = ["labels", "context", "promotion"];
        assert_eq!(did_you_mean("promtion", keys), Some("promotion"));
        assert_eq!(did_you_mean("contxt", keys), Some("context"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }

    #[test]
    fn source_line_is_taken_from_the_span() {
        let d = Diagnostic::error(Code::Schema, "f.yaml", "bad")
            .at(Some(Span { line: 2, column: 1 }), Some("a: 1\nb: 2\n"));
        assert_eq!(d.source_line.as_deref(), Some("b: 2"));
        assert_eq!(d.to_string(), "f.yaml:2:1: bad");
    }
}
