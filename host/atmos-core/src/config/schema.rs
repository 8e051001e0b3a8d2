//! The published JSON Schemas (`docs/schema/*.schema.json`) and their use through the
//! `jsonschema` crate, with errors turned into located, actionable [`Diagnostic`]s.

use std::path::Path;
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::config::model::DeploymentFile;
use crate::config::settings::Settings;
use crate::config::source_map::{SourceMap, escape_segment, split_pointer};
use crate::contracts::schema::{Direction, generate};
use crate::diagnostic::{Code, Diagnostic, did_you_mean};

/// `$id` of the deployment file schema.
pub const DEPLOYMENT_ID: &str = "https://atmos.tools/schemas/deployment/v1alpha1.json";
/// `$id` of the `atmos.yaml` schema.
pub const PROJECT_ID: &str = "https://atmos.tools/schemas/atmos/v1alpha1.json";

/// The schema of `deployments/<name>.yaml`, generated from [`DeploymentFile`] (published as
/// `docs/schema/deployment.schema.json`).
pub fn deployment_schema() -> Value {
    generate::<DeploymentFile>(DEPLOYMENT_ID, Direction::Read)
}

/// The schema of `atmos.yaml`, generated from [`Settings`] (published as
/// `docs/schema/atmos.schema.json`).
pub fn project_schema() -> Value {
    let mut schema = generate::<Settings>(PROJECT_ID, Direction::Read);
    // One atmos.yaml serves both tools: the Atmos CLI's other sections are accepted as they
    // are (its own schema checks them).
    if let Some(properties) = schema["properties"].as_object_mut() {
        for section in crate::config::settings::ATMOS_CLI_SECTIONS {
            properties.insert(
                (*section).to_owned(),
                serde_json::json!({
                    "description": "A section of the Atmos CLI's configuration: accepted, read by the Atmos CLI only."
                }),
            );
        }
    }
    schema
}

/// Which document a schema describes.
#[derive(Debug, Clone, Copy)]
pub enum SchemaKind {
    /// A deployment file.
    Deployment,
    /// `atmos.yaml`.
    Project,
}

struct Compiled {
    document: Value,
    validator: Validator,
}

fn compile(document: Value) -> Compiled {
    // The schemas are generated from this crate's types; a broken one is a bug caught by the
    // unit tests below.
    #[allow(clippy::expect_used)]
    let validator = jsonschema::validator_for(&document).expect("embedded schema compiles");
    Compiled {
        document,
        validator,
    }
}

static DEPLOYMENT: LazyLock<Compiled> = LazyLock::new(|| compile(deployment_schema()));
static PROJECT: LazyLock<Compiled> = LazyLock::new(|| compile(project_schema()));

/// Validate `instance` (parsed from `text` of `file`) and describe each violation.
pub fn validate(
    kind: SchemaKind,
    instance: &Value,
    file: &Path,
    text: &str,
    map: Option<&SourceMap>,
) -> Vec<Diagnostic> {
    let compiled: &Compiled = match kind {
        SchemaKind::Deployment => &DEPLOYMENT,
        SchemaKind::Project => &PROJECT,
    };
    let mut out = Vec::new();
    for error in compiled.validator.iter_errors(instance) {
        describe(&compiled.document, &error, file, text, map, &mut out);
    }
    out.sort_by_key(|d| d.span.map(|s| (s.line, s.column)));
    out
}

/// `` `deployment.targets.prod` `` for `/deployment/targets/prod`; `the document root` for `""`.
pub fn dotted(pointer: &str) -> String {
    if pointer.is_empty() {
        return "the document root".to_owned();
    }
    format!("`{}`", split_pointer(pointer).join("."))
}

/// The values an `enum`, or a `oneOf`/`anyOf` of `const`s, accepts; `None` for other errors.
fn allowed_values(kind: &ValidationErrorKind) -> Option<Vec<String>> {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    match kind {
        ValidationErrorKind::Enum { options } => {
            Some(options.as_array()?.iter().map(text).collect())
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            context
                .iter()
                .map(|branch| match branch.as_slice() {
                    [only] => match only.kind() {
                        ValidationErrorKind::Constant { expected_value } => {
                            Some(text(expected_value))
                        }
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        }
        _ => None,
    }
}

fn describe(
    schema: &Value,
    error: &ValidationError<'_>,
    file: &Path,
    text: &str,
    map: Option<&SourceMap>,
    out: &mut Vec<Diagnostic>,
) {
    let pointer = error.instance_path().as_str().to_owned();
    let value_span = map.and_then(|m| m.nearest(&pointer)).map(|p| p.value);
    let where_ = dotted(&pointer);
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_keys(schema, &pointer);
            for key in unexpected {
                let key_pointer = format!("{pointer}/{}", escape_segment(key));
                let span = map
                    .and_then(|m| m.get(&key_pointer))
                    .and_then(|p| p.key)
                    .or(value_span);
                let hint = match did_you_mean(key, allowed.iter().map(String::as_str)) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None if allowed.is_empty() => "remove this key".to_owned(),
                    None => {
                        // The Atmos CLI's own sections are accepted, but not atmos's to offer.
                        let ours: Vec<&str> = allowed
                            .iter()
                            .map(String::as_str)
                            .filter(|k| !crate::config::settings::ATMOS_CLI_SECTIONS.contains(k))
                            .collect();
                        format!("allowed keys here: {}", ours.join(", "))
                    }
                };
                out.push(
                    Diagnostic::error(
                        Code::UnknownKey,
                        file,
                        format!("unknown key `{key}` in {where_}"),
                    )
                    .at(span, Some(text))
                    .pointer(key_pointer)
                    .hint(hint),
                );
            }
        }
        ValidationErrorKind::Required { property } => {
            let key = property.as_str().unwrap_or_default();
            let span = map
                .and_then(|m| m.nearest(&pointer))
                .map(|p| p.key.unwrap_or(p.value));
            out.push(
                Diagnostic::error(
                    Code::MissingKey,
                    file,
                    format!("missing required key `{key}` in {where_}"),
                )
                .at(span, Some(text))
                .pointer(pointer.clone())
                .hint(required_hint(key)),
            );
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => article(&t.to_string()),
                TypeKind::Multiple(_) => "one of the allowed types".to_owned(),
            };
            let found = error.instance();
            let mut d = Diagnostic::error(
                Code::WrongType,
                file,
                format!(
                    "{where_} must be {expected}, found {}{}",
                    json_type(found),
                    short(found)
                ),
            )
            .at(value_span, Some(text))
            .pointer(pointer.clone());
            if let (TypeKind::Single(t), Value::String(s)) = (kind, found.as_ref()) {
                let t = t.to_string();
                if t == "boolean" && is_yaml11_bool(s) {
                    d = d.hint("write `true` or `false` (unquoted)");
                } else if t == "boolean" || t == "integer" || t == "number" {
                    d = d.hint("remove the quotes around the value");
                }
            } else if matches!(kind, TypeKind::Single(t) if t.to_string() == "object") {
                d = d.hint(format!(
                    "`{}` takes nested keys (`key: value` lines indented below it)",
                    split_pointer(&pointer).last().cloned().unwrap_or_default()
                ));
            }
            out.push(d);
        }
        // Say every allowed value, and the closest one: an `enum`, or a `oneOf`/`anyOf`
        // whose every branch is one documented `const`.
        kind if allowed_values(kind).is_some() => {
            let allowed = allowed_values(kind).unwrap_or_default();
            let found = error.instance();
            let mut d = Diagnostic::error(
                Code::Schema,
                file,
                format!(
                    "{where_} must be one of {}; found{}",
                    allowed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    short(found)
                ),
            )
            .at(value_span, Some(text))
            .pointer(pointer.clone());
            if let Some(s) = found.as_str()
                && let Some(m) = did_you_mean(s, allowed.iter().map(String::as_str))
            {
                d = d.hint(format!("did you mean `{m}`?"));
            }
            out.push(d);
        }
        ValidationErrorKind::Pattern { .. } if pointer.contains("/depends_on/") => {
            out.push(
                Diagnostic::error(
                    Code::Schema,
                    file,
                    format!(
                        "{where_} must name a component as `type/name`, found {}",
                        error.instance()
                    ),
                )
                .at(value_span, Some(text))
                .pointer(pointer.clone())
                .hint("write e.g. `terraform/db`; types are nixpack, terraform, helmfile, script"),
            );
        }
        ValidationErrorKind::Pattern { .. } if pointer.ends_with("/timeout") => {
            out.push(
                Diagnostic::error(
                    Code::Schema,
                    file,
                    format!(
                        "{where_} must be a duration above zero, found {}",
                        error.instance()
                    ),
                )
                .at(value_span, Some(text))
                .pointer(pointer.clone())
                .hint("write e.g. 30s, 15m or 2h (the default is 1h)"),
            );
        }
        _ => {
            out.push(
                Diagnostic::error(Code::Schema, file, format!("{where_}: {error}"))
                    .at(value_span, Some(text))
                    .pointer(pointer.clone()),
            );
        }
    }
}

fn is_yaml11_bool(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "yes" | "no" | "on" | "off" | "true" | "false" | "y" | "n"
    )
}

fn article(t: &str) -> String {
    match t {
        "object" => "a mapping".to_owned(),
        "array" => "a list".to_owned(),
        "integer" => "an integer".to_owned(),
        other => format!("a {other}"),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) | Value::Null => String::new(),
        other => {
            let s = format!(" {other}");
            if s.chars().count() > 41 {
                format!("{}…", s.chars().take(41).collect::<String>())
            } else {
                s
            }
        }
    }
}

fn required_hint(key: &str) -> String {
    match key {
        "deployment" => "a deployment file starts with:\n  deployment:\n    name: <file name without .yaml>\n    targets:\n      dev: {}".to_owned(),
        "targets" => "add at least one target, e.g.\n  targets:\n    dev: {}".to_owned(),
        "name" => "add `name: <file name without .yaml>`".to_owned(),
        "settings" => "script components run a command: add\n  settings:\n    script:\n      apply: ./scripts/deploy.sh".to_owned(),
        "script" => "add `script: {apply: <command>}` under `settings`".to_owned(),
        "apply" => "add `apply: <command run by sh -c in the repo root>`".to_owned(),
        other => format!("add `{other}:`"),
    }
}

/// Follow a `#/$defs/...` reference inside `root`.
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => node = target,
                None => return node,
            },
            None => return node,
        }
    }
    node
}

/// The keys the schema allows in the object at `pointer` of an instance.
fn allowed_keys(root: &Value, pointer: &str) -> Vec<String> {
    let mut node = resolve(root, root);
    for segment in split_pointer(pointer) {
        let next = node
            .get("properties")
            .and_then(|p| p.get(&segment))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
            .or_else(|| node.get("items"));
        match next {
            Some(n) => node = resolve(root, n),
            None => return Vec::new(),
        }
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schemas_compile() {
        assert!(DEPLOYMENT.validator.is_valid(&serde_json::json!({
            "deployment": {"name": "a", "targets": {"dev": {}}}
        })));
        assert!(!PROJECT.validator.is_valid(&serde_json::json!({"nope": 1})));
    }

    #[test]
    fn allowed_keys_follow_refs_and_maps() {
        let root = deployment_schema();
        let keys = allowed_keys(&root, "/deployment/targets/prod");
        assert_eq!(
            keys,
            vec![
                "labels",
                "context",
                "promotion",
                "gates",
                "remote",
                "registry",
                "stack",
                "stack_runner",
                "strategy"
            ]
        );
        let keys = allowed_keys(&root, "/deployment/components/script/x/settings/script");
        assert_eq!(
            keys,
            vec![
                "apply", "plan", "build", "source", "timeout", "verify", "health"
            ]
        );
    }

    #[test]
    fn unknown_key_gets_a_suggestion_and_the_key_position() {
        let text = "deployment:\n  name: a\n  targets:\n    prod:\n      promtion: {}\n";
        let value: Value = serde_yaml_ng::from_str(text).expect("yaml");
        let map = SourceMap::build(text);
        let out = validate(
            SchemaKind::Deployment,
            &value,
            Path::new("a.yaml"),
            text,
            map.as_ref(),
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].code, Code::UnknownKey);
        assert_eq!(
            out[0].to_string(),
            "a.yaml:5:7: unknown key `promtion` in `deployment.targets.prod`"
        );
        assert_eq!(out[0].hint.as_deref(), Some("did you mean `promotion`?"));
    }
}
