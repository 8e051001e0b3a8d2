//! `policy test`'s report as people read it.

use atmos_core::gates::testing::{Outcome, TestReport};

use super::Style;

/// A message of several lines, its later lines indented under the first.
fn indented(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n      ")
}

/// The report of `policy test`: failures (every result with `-v`), coverage, the counts.
pub fn render(r: &TestReport, s: &Style, verbose: bool) -> String {
    let mut out = String::new();
    for e in &r.load_errors {
        out.push_str(&format!(
            "{} {}: {}\n",
            s.error("LOAD ERROR"),
            e.file,
            e.message
        ));
    }
    let mut current = "";
    for t in &r.results {
        let show = verbose || !matches!(t.outcome, Outcome::Pass);
        if !show {
            continue;
        }
        if t.file != current {
            out.push_str(&format!("{}:\n", t.file));
            current = &t.file;
        }
        let ms = t.duration_us as f64 / 1000.0;
        let line = match &t.outcome {
            Outcome::Pass => match &t.detail {
                Some(detail) if verbose => format!(
                    "  {} {} ({ms:.1} ms)\n      {}",
                    s.ok("PASS "),
                    t.name,
                    indented(detail)
                ),
                _ => format!("  {} {} ({ms:.1} ms)", s.ok("PASS "), t.name),
            },
            Outcome::Fail => match &t.detail {
                Some(detail) => format!("  {} {}: {}", s.error("FAIL "), t.name, indented(detail)),
                None => format!("  {} {} ({ms:.1} ms)", s.error("FAIL "), t.name),
            },
            Outcome::Error { message } => {
                format!("  {} {}: {}", s.error("ERROR"), t.name, indented(message))
            }
            Outcome::Skip => format!("  {} {}", s.dim("SKIP "), t.name),
        };
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(cov) = &r.coverage {
        out.push_str("\nCoverage:\n");
        let width = cov.iter().map(|c| c.file.len()).max().unwrap_or(0);
        for c in cov {
            let missing = if c.not_covered.is_empty() {
                String::new()
            } else {
                format!(
                    "  (not covered: {})",
                    c.not_covered
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            out.push_str(&format!(
                "  {:<width$}  {:5.1}%{missing}\n",
                c.file, c.percent
            ));
        }
    }
    let passed = r.count(|o| *o == Outcome::Pass);
    let failed =
        r.count(|o| matches!(o, Outcome::Fail | Outcome::Error { .. })) + r.load_errors.len();
    let skipped = r.count(|o| *o == Outcome::Skip);
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!(
        "{passed} passed, {failed} failed, {skipped} skipped\n"
    ));
    out
}
