//! Turning the bytes of one deployment file into a typed [`Deployment`], or into every
//! located problem that stops it (encoding, YAML syntax, duplicate keys, schema).

use std::path::{Path, PathBuf};

use super::model::{Deployment, DeploymentFile};
use super::process::{Options, Processed, process};
use super::source::{FileSource, SingleFile};
use super::source_map::{SourceMap, Span};
use crate::config::schema::{self, SchemaKind};
use crate::diagnostic::{Code, Diagnostic};

/// A deployment file that parsed and passed the schema, with what is needed to locate
/// later findings in it.
#[derive(Debug, Clone)]
pub struct LoadedDeployment {
    /// The deployment file, relative to the project root (messages name the file they come
    /// from, with `@<commit>` when read from a commit).
    pub file: PathBuf,
    /// The text of the file.
    pub text: String,
    /// Positions of its nodes.
    pub map: SourceMap,
    /// The typed config.
    pub deployment: Deployment,
    /// Every file merged into it (imports first, this file last) and where each node came from.
    pub processed: Processed,
    /// What processing was allowed to read; the same deployment at another commit is read
    /// with the same options.
    pub options: Options,
}

impl LoadedDeployment {
    /// The position of the node at `pointer` (its key when `key` is set and it has one).
    pub fn span(&self, pointer: &str, key: bool) -> Option<Span> {
        let pos = match self.processed.locate(pointer) {
            Some((_, pos)) => pos,
            None => self.map.nearest(pointer),
        };
        pos.map(|p| {
            if key {
                p.key.unwrap_or(p.value)
            } else {
                p.value
            }
        })
    }

    /// An error located at `pointer`.
    pub fn error_at(&self, code: Code, pointer: &str, key: bool, message: String) -> Diagnostic {
        let (file, text) = match self.processed.locate(pointer) {
            Some((source, _)) => (&source.file, source.text.as_str()),
            None => (&self.file, self.text.as_str()),
        };
        Diagnostic::error(code, file, message)
            .at(self.span(pointer, key), Some(text))
            .pointer(pointer)
    }

    /// The files this deployment was read from (its imports, then itself), relative to the
    /// project root.
    pub fn paths(&self) -> Vec<&Path> {
        // (imports first, the deployment file last)
        self.processed
            .sources
            .iter()
            .map(|s| s.path.as_path())
            .collect()
    }
}

/// Parse and schema-check one deployment file on its own (no imports can be read, no
/// environment variable is allowed). Semantic checks live in [`super::checks`].
pub fn parse_deployment(file: &Path, bytes: &[u8]) -> Result<LoadedDeployment, Vec<Diagnostic>> {
    let source = SingleFile {
        path: file.to_owned(),
        bytes: bytes.to_vec(),
    };
    let options = Options {
        deployments_dir: file.parent().map(Path::to_owned).unwrap_or_default(),
        env_allow: Vec::new(),
    };
    load_deployment(&source, file, &options)
}

/// A wrong type on a value that is a template: templates always give strings, so the fix is
/// not "remove the quotes".
fn template_typed(d: Diagnostic, value: &serde_json::Value) -> Diagnostic {
    let is_template = d.code == Code::WrongType
        && d.pointer
            .as_deref()
            .and_then(|p| value.pointer(p))
            .and_then(serde_json::Value::as_str)
            .is_some_and(super::template::is_template);
    if is_template {
        d.hint("a template always gives a string; this field needs another type: write the value itself (`!env` reads true, false and numbers as such)")
    } else {
        d
    }
}

/// Read the deployment file `path` (relative to the project root) and everything it imports
/// from `source`, process it (imports, YAML functions, templates), and check the result
/// against the schema, locating every problem in the file that set the value.
pub fn load_deployment(
    source: &dyn FileSource,
    path: &Path,
    options: &Options,
) -> Result<LoadedDeployment, Vec<Diagnostic>> {
    let mut processed = process(source, path, options)?;
    let Some(main) = processed.main().cloned() else {
        return Err(vec![Diagnostic::error(
            Code::Io,
            source.shown(path),
            "nothing was read",
        )]);
    };
    // The schema judges the processed document; each problem is moved to the file that set
    // the value.
    let schema_problems = |processed: &Processed| -> Vec<Diagnostic> {
        schema::validate(
            SchemaKind::Deployment,
            &processed.value,
            &main.file,
            &main.text,
            Some(&main.map),
        )
        .into_iter()
        .map(|d| processed.relocate(template_typed(d, &processed.value)))
        .collect()
    };
    let problems = schema_problems(&processed);
    if !problems.is_empty() {
        return Err(problems);
    }
    let (per_target, rendered) = super::render::render(&mut processed)?;
    // A template may have produced a value the schema refuses (an empty name, a bad label).
    if rendered {
        let problems = schema_problems(&processed);
        if !problems.is_empty() {
            return Err(problems);
        }
    }
    match serde_json::from_value::<DeploymentFile>(processed.value.clone()) {
        Ok(parsed) => {
            let mut deployment = parsed.deployment;
            deployment.attach(per_target);
            Ok(LoadedDeployment {
                file: main.path,
                text: main.text,
                map: main.map,
                deployment,
                processed,
                options: options.clone(),
            })
        }
        // The schema is stricter than the structs, so this is a schema/struct mismatch: still
        // say what serde saw rather than panic.
        Err(e) => Err(vec![
            Diagnostic::error(Code::Schema, &main.file, format!("invalid deployment: {e}"))
                .at(Some(Span { line: 1, column: 1 }), Some(&main.text)),
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
