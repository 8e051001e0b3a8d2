//! JSON Schemas generated from the Rust types that read and write each document, so that the
//! published schema and the code can never disagree.

use schemars::JsonSchema;
use schemars::generate::{Contract, SchemaSettings};
use serde_json::{Map, Value};

/// Whether a schema describes what atmos reads (config files) or what it writes (outputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A document atmos reads.
    Read,
    /// A document atmos writes.
    Written,
}

/// The JSON Schema (draft 2020-12) of `T`, with `$id` set.
pub fn generate<T: JsonSchema>(id: &str, direction: Direction) -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.contract = match direction {
            Direction::Read => Contract::Deserialize,
            Direction::Written => Contract::Serialize,
        };
    });
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    tidy(&mut schema, direction == Direction::Read);
    let mut out = Map::new();
    if let Value::Object(map) = schema {
        for (k, v) in map {
            out.insert(k.clone(), v);
            if k == "$schema" {
                out.insert("$id".into(), Value::String(id.to_owned()));
            }
        }
    }
    Value::Object(out)
}

/// Make the schema read as it would be written by hand: doc comments wrapped over lines become
/// one line; in a file atmos reads, an optional key is simply absent (`strip_null`), so
/// `Option<T>` states `T` (in documents atmos writes, an unset value is written as `null`).
fn tidy(value: &mut Value, strip_null: bool) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type").filter(|_| strip_null) {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            let nullable = map
                .get("anyOf")
                .filter(|_| strip_null)
                .and_then(Value::as_array)
                .and_then(|alts| {
                    let is_null = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
                    (alts.len() == 2 && alts.iter().any(is_null))
                        .then(|| alts.iter().find(|v| !is_null(v)).cloned())
                        .flatten()
                });
            if let Some(Value::Object(inner)) = nullable {
                map.remove("anyOf");
                for (k, v) in inner {
                    map.entry(k).or_insert(v);
                }
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = d.split('\n').map(str::trim).collect::<Vec<_>>().join(" ");
            }
            for v in map.values_mut() {
                tidy(v, strip_null);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| tidy(v, strip_null)),
        _ => {}
    }
}
