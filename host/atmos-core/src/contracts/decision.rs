//! One gate decision: which gate, which rule, what it decided and why. The same type is
//! printed, serialised for `--format json`, and recorded in history tags.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The result of one gate decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The gate lets the rollout through.
    Allow,
    /// Through, with a warning worth reading.
    Warn,
    /// Blocked (exit 3).
    Deny,
    /// Blocked until something happens, e.g. an approval (exit 4).
    Pending,
    /// Not evaluated, on request (`--skip-promotion-check`); recorded so audits see it.
    Skipped,
}

impl Verdict {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Deny => "deny",
            Verdict::Pending => "pending",
            Verdict::Skipped => "skipped",
        }
    }
}

/// One gate decision, as recorded in a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// Which gate (`builtin/promotion-path`, a policy file, a hook name).
    pub source: String,
    /// The Rego package, for policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The rule within it.
    pub rule: String,
    /// What it decided.
    pub result: Verdict,
    /// Why.
    pub message: String,
    /// A machine-readable code, when the gate gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What clears a deny (a command to run, or a time to wait), when the gate says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Lines a hook logged while deciding (shown with `-v`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    /// Set when the gate did not decide but failed (the deny is fail-closed): `load`, `trap`,
    /// `timeout`, `fuel`, `memory`, `stack`, `input`, `output`, `error` (the hook returned an
    /// error), `policy` (a policy did not evaluate). Tests tell a crash from a deny by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Decision {
    /// A decision without package or code (built-in gates).
    pub fn new(source: &str, rule: &str, result: Verdict, message: String) -> Decision {
        let message = capped(message);
        Decision {
            source: source.to_owned(),
            package: None,
            rule: rule.to_owned(),
            result,
            message,
            code: None,
            fix: None,
            logs: Vec::new(),
            error: None,
        }
    }
}

/// The most characters of a message (or fix, or code) a decision keeps; the rest is cut with
/// a note of how much.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// `text` cut to [`MAX_MESSAGE_CHARS`].
pub fn capped(text: String) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => text,
        Some((at, _)) => format!("{}… ({} more bytes cut)", &text[..at], text.len() - at),
    }
}
