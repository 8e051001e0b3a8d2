//! The one rendering layer: typed reports in, tables, drawings, JSON or YAML out.
//! JSON and YAML are serde serialisations of the same report the table shows.

pub mod board;
pub mod canary;
pub mod ci;
pub mod decisions;
pub mod diagnostics;
pub mod graph;
pub mod health;
pub mod live;
pub mod policy_tests;
pub mod rollout;
pub mod style;
pub mod table;
pub mod time;
pub mod unfinished;

use std::io::{self, Write};

use atmos_core::contracts::output::{Document, Envelope};
use serde::Serialize;

use crate::cli::Format;
pub use style::Style;

/// Where and how a command writes.
pub struct Output {
    /// Format asked for.
    pub format: Format,
    /// Styling of stdout.
    pub out_style: Style,
    /// Styling of stderr.
    pub err_style: Style,
    /// `-q`.
    pub quiet: bool,
    /// `-v` count.
    pub verbose: u8,
}

impl Output {
    /// Write `text` to stdout.
    pub fn print(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// Write `text` to stderr.
    pub fn eprint(&self, text: &str) {
        let _ = io::stderr().lock().write_all(text.as_bytes());
    }

    /// A warning on stderr, unless `-q`.
    pub fn warn(&self, text: &str) {
        if !self.quiet {
            self.eprint(&format!("{} {text}\n", self.err_style.warning("warning:")));
        }
    }

    /// True when stdout carries JSON or YAML (progress then goes to stderr).
    pub fn is_structured(&self) -> bool {
        matches!(self.format, Format::Json | Format::Yaml)
    }

    /// Serialise `report` for `--format json|yaml`, with its `apiVersion` and `kind`; `None`
    /// for the human formats.
    pub fn structured<T: Document>(&self, report: &T) -> Option<String> {
        let document = Envelope::of(report);
        match self.format {
            Format::Json => Some(to_json(&document)),
            Format::Yaml => Some(
                serde_yaml_ng::to_string(&document)
                    .unwrap_or_else(|e| format!("# cannot render as YAML: {e}\n")),
            ),
            _ => None,
        }
    }
}

/// Pretty JSON with a trailing newline.
pub fn to_json<T: Serialize>(report: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// `12.3s`.
pub fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}
