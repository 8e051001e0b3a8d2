//! Diagnostics as people read them: message, `--> file:line:column`, the source line with a
//! marker under the offending token, and the fix.

use atmos_core::diagnostic::{Diagnostic, Severity};

use super::Style;

/// Render one diagnostic.
pub fn render(d: &Diagnostic, style: &Style) -> String {
    let label = match d.severity {
        Severity::Error => style.error("error:"),
        Severity::Warning => style.warning("warning:"),
    };
    let mut out = format!("{label} {}\n", style.bold(&d.message));
    let location = match d.span {
        Some(s) => format!("{}:{}:{}", d.file.display(), s.line, s.column),
        None => d.file.display().to_string(),
    };
    let gutter_width = d.span.map_or(1, |s| s.line.to_string().len());
    let pad = " ".repeat(gutter_width);
    out.push_str(&format!("{pad}{} {location}\n", style.accent("-->")));
    if let (Some(span), Some(line)) = (d.span, &d.source_line) {
        let bar = style.accent("|");
        out.push_str(&format!("{pad} {bar}\n"));
        out.push_str(&format!(
            "{} {bar} {}\n",
            style.accent(&span.line.to_string()),
            line.replace('\t', " ")
        ));
        let before: String = line
            .chars()
            .take(span.column.saturating_sub(1))
            .map(|c| if c == '\t' { ' ' } else { c })
            .map(|c| if c.is_whitespace() { c } else { ' ' })
            .collect();
        let token = line
            .chars()
            .skip(span.column.saturating_sub(1))
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '"' | '\''))
            .count()
            .max(1);
        out.push_str(&format!(
            "{pad} {bar} {before}{}\n",
            style.error(&"^".repeat(token))
        ));
    }
    if let Some(hint) = &d.hint {
        let mut lines = hint.lines();
        if let Some(first) = lines.next() {
            out.push_str(&format!("{pad} {} {first}\n", style.accent("= help:")));
        }
        for l in lines {
            out.push_str(&format!("{pad}         {l}\n"));
        }
    }
    out
}

/// Render many, separated by blank lines.
pub fn render_all(list: &[Diagnostic], style: &Style) -> String {
    list.iter()
        .map(|d| render(d, style))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use atmos_core::config::source_map::Span;
    use atmos_core::diagnostic::Code;

    use super::*;

    #[test]
    fn points_at_the_token() {
        let d = Diagnostic::error(
            Code::UnknownKey,
            "deployments/a.yaml",
            "unknown key `promtion`",
        )
        .at(
            Some(Span { line: 2, column: 5 }),
            Some("x:\n    promtion: {}\n"),
        )
        .hint("did you mean `promotion`?");
        let expected = [
            "error: unknown key `promtion`",
            " --> deployments/a.yaml:2:5",
            "  |",
            "2 |     promtion: {}",
            "  |     ^^^^^^^^",
            "  = help: did you mean `promotion`?",
            "",
        ]
        .join("\n");
        assert_eq!(render(&d, &Style::plain()), expected);
    }
}
