//! From the bytes of a YAML file to a value with the position of every node, or every
//! located problem that stops it before any schema: encoding, shape, syntax, an empty file,
//! duplicate keys. Shared by deployment files (and what they import) and `atmos.yaml`.

use std::path::Path;

use serde_json::Value;

use super::schema::{self, SchemaKind};
use super::source_map::{SourceMap, Span};
use crate::diagnostic::{Code, Diagnostic};

/// Parse YAML text into a JSON value plus its source map (schema-checked), or located
/// diagnostics. For `atmos.yaml` and other files without YAML functions.
pub fn parse_yaml(
    file: &Path,
    bytes: &[u8],
    kind: SchemaKind,
) -> Result<(String, Value, SourceMap), Vec<Diagnostic>> {
    let (text, yaml, map) = parse_text(file, bytes, kind)?;
    let value = serde_json::to_value(&yaml).map_err(|e| {
        vec![
            Diagnostic::error(Code::YamlSyntax, file, format!("invalid YAML: {e}"))
                .at(Some(Span { line: 1, column: 1 }), Some(&text)),
        ]
    })?;
    let problems = schema::validate(kind, &value, file, &text, Some(&map));
    if problems.is_empty() {
        Ok((text, value, map))
    } else {
        Err(problems)
    }
}

/// Parse YAML text into a YAML value (tags kept) plus its source map, or located diagnostics
/// for what stops it before any schema: encoding, shape, syntax, an empty file, duplicate keys.
pub fn parse_text(
    file: &Path,
    bytes: &[u8],
    kind: SchemaKind,
) -> Result<(String, serde_yaml_ng::Value, SourceMap), Vec<Diagnostic>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.strip_prefix('\u{feff}').unwrap_or(t).to_owned(),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            return Err(vec![
                Diagnostic::error(
                    Code::Encoding,
                    file,
                    format!(
                        "the file is not valid UTF-8 (invalid byte 0x{:02x} at byte offset {})",
                        bytes[e.valid_up_to()],
                        e.valid_up_to()
                    ),
                )
                .at(Some(Span { line, column }), None)
                .hint("save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"),
            ]);
        }
    };

    if let Err(e) = crate::yaml_shape::check(&text) {
        return Err(vec![
            Diagnostic::error(Code::YamlSyntax, file, e.message)
                .at(Some(e.at), None)
                .hint(e.hint),
        ]);
    }
    let map = SourceMap::build(&text).unwrap_or_default();
    // Duplicate keys first: the YAML value parser refuses them with a vaguer message.
    let problems: Vec<Diagnostic> = map
        .duplicates
        .iter()
        .map(|dup| {
            Diagnostic::error(
                Code::DuplicateKey,
                file,
                format!(
                    "duplicate key `{}` in {} (first defined at line {})",
                    dup.key,
                    schema::dotted(&dup.parent),
                    dup.first.line
                ),
            )
            .at(Some(dup.again), Some(&text))
            .pointer(format!("{}/{}", dup.parent, dup.key))
            .hint("merge the two entries into one; YAML keeps only the last")
        })
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    let value: serde_yaml_ng::Value = match serde_yaml_ng::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let span = e.location().map(|l| Span {
                line: l.line(),
                column: l.column(),
            });
            let full = e.to_string();
            // libyaml says "<problem> at line L column C, while parsing <thing> at line L column C".
            let (problem, context) = match full.split_once(", while ") {
                Some((p, c)) => (p, Some(c.replace(" at line ", " started at line "))),
                None => (full.as_str(), None),
            };
            let mut message = problem
                .split(" at line ")
                .next()
                .unwrap_or(problem)
                .to_owned();
            if let Some(c) = context {
                message.push_str(&format!(" (while {c})"));
            }
            let line_has_tab = span
                .and_then(|s| text.lines().nth(s.line.saturating_sub(1)))
                .is_some_and(|l| {
                    l.starts_with(|c: char| c.is_whitespace())
                        && l.trim_start_matches(' ').starts_with('\t')
                });
            let hint = if line_has_tab {
                "YAML does not allow tabs for indentation: indent with spaces"
            } else {
                "check the indentation and quoting around this position"
            };
            let d = Diagnostic::error(Code::YamlSyntax, file, format!("invalid YAML: {message}"))
                .at(span, Some(&text))
                .hint(hint);
            return Err(vec![d]);
        }
    };

    if value.is_null() {
        let hint = match kind {
            SchemaKind::Deployment => {
                "a deployment file starts with:\n  deployment:\n    name: <file name without .yaml>\n    targets:\n      dev: {}"
            }
            SchemaKind::Project => {
                "delete the empty file, or add settings such as `deployments: {path: deployments}`"
            }
        };
        return Err(vec![
            Diagnostic::error(Code::Empty, file, "the file is empty")
                .at(Some(Span { line: 1, column: 1 }), None)
                .hint(hint),
        ]);
    }

    Ok((text, value, map))
}
