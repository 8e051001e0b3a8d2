//! Turning the bytes of one deployment file into a typed [`Deployment`], or into every
//! located problem that stops it (encoding, YAML syntax, duplicate keys, schema).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::model::{Deployment, DeploymentFile};
use super::source_map::{SourceMap, Span};
use crate::config::schema::{self, SchemaKind};
use crate::diagnostic::{Code, Diagnostic};

/// A deployment file that parsed and passed the schema, with what is needed to locate
/// later findings in it.
#[derive(Debug, Clone)]
pub struct LoadedDeployment {
    /// Path shown to people (relative to the project root).
    pub file: PathBuf,
    /// The text of the file.
    pub text: String,
    /// Positions of its nodes.
    pub map: SourceMap,
    /// The typed config.
    pub deployment: Deployment,
}

impl LoadedDeployment {
    /// The position of the node at `pointer` (its key when `key` is set and it has one).
    pub fn span(&self, pointer: &str, key: bool) -> Option<Span> {
        self.map.nearest(pointer).map(|p| {
            if key {
                p.key.unwrap_or(p.value)
            } else {
                p.value
            }
        })
    }

    /// An error located at `pointer`.
    pub fn error_at(&self, code: Code, pointer: &str, key: bool, message: String) -> Diagnostic {
        Diagnostic::error(code, &self.file, message)
            .at(self.span(pointer, key), Some(&self.text))
            .pointer(pointer)
    }
}

/// Parse YAML text into a JSON value plus its source map, or located diagnostics.
///
/// Shared by deployment files and `atmos.yaml`.
pub fn parse_yaml(
    file: &Path,
    bytes: &[u8],
    kind: SchemaKind,
) -> Result<(String, Value, SourceMap), Vec<Diagnostic>> {
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
    let value: Value = match serde_yaml_ng::from_str(&text) {
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

    let map = SourceMap::build(&text).unwrap_or_default();
    let mut problems: Vec<Diagnostic> = map
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
    problems.extend(schema::validate(kind, &value, file, &text, Some(&map)));
    if problems.is_empty() {
        Ok((text, value, map))
    } else {
        Err(problems)
    }
}

/// Parse and schema-check one deployment file. Semantic checks live in [`super::checks`].
pub fn parse_deployment(file: &Path, bytes: &[u8]) -> Result<LoadedDeployment, Vec<Diagnostic>> {
    let (text, value, map) = parse_yaml(file, bytes, SchemaKind::Deployment)?;
    match serde_json::from_value::<DeploymentFile>(value) {
        Ok(parsed) => Ok(LoadedDeployment {
            file: file.to_owned(),
            text,
            map,
            deployment: parsed.deployment,
        }),
        // The schema is stricter than the structs, so this is a schema/struct mismatch: still
        // say what serde saw rather than panic.
        Err(e) => Err(vec![
            Diagnostic::error(Code::Schema, file, format!("invalid deployment: {e}"))
                .at(Some(Span { line: 1, column: 1 }), Some(&text)),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<LoadedDeployment, Vec<Diagnostic>> {
        parse_deployment(Path::new("deployments/a.yaml"), text)
    }

    #[test]
    fn parses_a_minimal_file() {
        let d = parse(b"deployment:\n  name: a\n  targets:\n    dev: {}\n").expect("valid");
        assert_eq!(d.deployment.name, "a");
        assert_eq!(d.deployment.targets.len(), 1);
    }

    #[test]
    fn yaml_syntax_error_is_located() {
        let err = parse(b"deployment:\n  name: a\n  targets: [dev\n").expect_err("invalid");
        assert_eq!(err[0].code, Code::YamlSyntax);
        assert!(err[0].span.is_some(), "{err:?}");
    }

    #[test]
    fn non_utf8_is_located() {
        let err = parse(b"deployment:\n  name: caf\xe9\n").expect_err("invalid");
        assert_eq!(err[0].code, Code::Encoding);
        assert_eq!(
            err[0].span,
            Some(Span {
                line: 2,
                column: 12
            })
        );
    }

    #[test]
    fn empty_and_comment_only_files_are_empty() {
        for text in [&b""[..], b"# nothing\n", b"\n\n"] {
            let err = parse(text).expect_err("empty");
            assert_eq!(err[0].code, Code::Empty);
        }
    }

    #[test]
    fn duplicate_key_is_reported() {
        let err = parse(b"deployment:\n  name: a\n  name: b\n  targets:\n    dev: {}\n")
            .expect_err("dup");
        assert_eq!(err[0].code, Code::DuplicateKey);
        assert_eq!(err[0].span, Some(Span { line: 3, column: 3 }));
    }
}
