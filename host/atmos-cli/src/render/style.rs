//! Colors, decided once per stream from `--color`, `NO_COLOR` and whether it is a terminal.

use std::io::IsTerminal;

use crate::cli::ColorChoice;

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Decide for a stream.
    pub fn new(choice: ColorChoice, is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let enabled = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        Style { enabled }
    }

    /// For stdout.
    pub fn stdout(choice: ColorChoice) -> Style {
        Style::new(choice, std::io::stdout().is_terminal())
    }

    /// For stderr.
    pub fn stderr(choice: ColorChoice) -> Style {
        Style::new(choice, std::io::stderr().is_terminal())
    }

    /// No styling (tests).
    #[cfg(test)]
    pub fn plain() -> Style {
        Style { enabled: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Errors and failed checks.
    pub fn error(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    /// Warnings.
    pub fn warning(&self, text: &str) -> String {
        self.paint("1;33", text)
    }

    /// Passed checks.
    pub fn ok(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Headings and names.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Secondary detail.
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// Locations and gutters.
    pub fn accent(&self, text: &str) -> String {
        self.paint("1;34", text)
    }
}
