//! A component's effective vars for one target: deployment context, then the component's
//! `vars`, then the target's `context`, merged deeply (mappings merge key by key, any other
//! value replaces), remembering which layer each leaf value came from.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{ComponentRef, Deployment, Target, Vars};

/// The layer a merged value came from, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VarSource {
    /// `deployment.context` (other than `default_target`).
    DeploymentContext,
    /// `components.<type>.<name>.vars`.
    ComponentVars,
    /// `targets.<name>.context`.
    TargetContext,
    /// The Atmos stack the target is bound to (`targets.<name>.stack`), as the Atmos CLI
    /// resolves its component.
    Stack,
}

impl VarSource {
    /// How `describe` names the layer.
    pub fn label(self) -> &'static str {
        match self {
            VarSource::DeploymentContext => "deployment context",
            VarSource::ComponentVars => "component vars",
            VarSource::TargetContext => "target context",
            VarSource::Stack => "stack",
        }
    }
}

/// Merged vars and, for each leaf (dotted path), the layer it came from and the layers it
/// overrode.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct MergedVars {
    /// The merged values, as executors and gates see them.
    pub values: Vars,
    /// Dotted leaf path → provenance.
    pub provenance: IndexMap<String, Provenance>,
}

/// Where one leaf value came from.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Provenance {
    /// The leaf value.
    pub value: Value,
    /// The layer that set the final value.
    pub source: VarSource,
    /// Lower layers whose value for this path was replaced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<VarSource>,
    /// The file and line that set it (`deployments/_defaults/chain.yaml:12`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// JSON pointer of the value inside its layer (`/region`), to locate it.
    #[serde(skip)]
    #[schemars(skip)]
    pub pointer: String,
}

/// Merge the layers for `component` in `target`.
pub fn merge_vars(
    deployment: &Deployment,
    component: &ComponentRef<'_>,
    target: &Target,
) -> MergedVars {
    let mut merged = MergedVars::default();
    let layers: [(&Vars, VarSource); 3] = [
        (&deployment.context.values, VarSource::DeploymentContext),
        (
            component.component.vars_for(&target.name),
            VarSource::ComponentVars,
        ),
        (&target.context, VarSource::TargetContext),
    ];
    for (layer, source) in layers {
        let mut values = std::mem::take(&mut merged.values);
        merge_into(&mut values, layer, source, ("", ""), &mut merged.provenance);
        merged.values = values;
    }
    merged
}

fn merge_into(
    base: &mut Map<String, Value>,
    layer: &Map<String, Value>,
    source: VarSource,
    (prefix, pointer): (&str, &str),
    provenance: &mut IndexMap<String, Provenance>,
) {
    for (key, value) in layer {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let pointer = format!("{pointer}/{}", super::source_map::escape_segment(key));
        match (base.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_into(existing, incoming, source, (&path, &pointer), provenance);
            }
            (existing, _) => {
                let mut overridden: Vec<VarSource> = Vec::new();
                if existing.is_some() {
                    let nested = format!("{path}.");
                    provenance.retain(|p, prov| {
                        let hit = *p == path || p.starts_with(&nested);
                        if hit && !overridden.contains(&prov.source) {
                            overridden.push(prov.source);
                        }
                        !hit
                    });
                }
                base.insert(key.clone(), value.clone());
                record_leaves((&path, &pointer), value, source, &overridden, provenance);
            }
        }
    }
}

fn record_leaves(
    (path, pointer): (&str, &str),
    value: &Value,
    source: VarSource,
    overrides: &[VarSource],
    provenance: &mut IndexMap<String, Provenance>,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let at = (
                    format!("{path}.{k}"),
                    format!("{pointer}/{}", super::source_map::escape_segment(k)),
                );
                record_leaves((&at.0, &at.1), v, source, overrides, provenance);
            }
        }
        _ => {
            provenance.insert(
                path.to_owned(),
                Provenance {
                    value: value.clone(),
                    source,
                    overrides: overrides.to_vec(),
                    at: None,
                    pointer: pointer.to_owned(),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::model::DeploymentFile;

    #[test]
    fn target_context_wins_and_mappings_merge_deeply() {
        let file: DeploymentFile = serde_json::from_value(json!({"deployment": {
            "name": "svc",
            "context": {"default_target": "dev", "region": "eu-west-1"},
            "components": {"terraform": {"db": {"vars": {"size": "small", "tags": {"team": "pay", "tier": "db"}}}}},
            "targets": {"prod": {"context": {"size": "large", "tags": {"tier": "critical"}}}}
        }}))
        .expect("valid");
        let d = file.deployment;
        let c = d.components.by_name("db").expect("db");
        let m = merge_vars(&d, &c, &d.targets["prod"]);
        assert_eq!(
            Value::Object(m.values.clone()),
            json!({"region": "eu-west-1", "size": "large", "tags": {"team": "pay", "tier": "critical"}})
        );
        assert_eq!(m.provenance["region"].source, VarSource::DeploymentContext);
        assert_eq!(m.provenance["size"].source, VarSource::TargetContext);
        assert_eq!(
            m.provenance["size"].overrides,
            vec![VarSource::ComponentVars]
        );
        assert_eq!(m.provenance["tags.team"].source, VarSource::ComponentVars);
        assert_eq!(m.provenance["tags.tier"].source, VarSource::TargetContext);
        assert!(!m.values.contains_key("default_target"));
    }
}

/// Apply `--context key=value` overrides (dotted keys reach into objects: `image.tag=v2`) on
/// top of merged vars: the run's own values, over every layer.
pub fn override_with(vars: &mut Vars, overrides: &Vars) {
    for (key, value) in overrides {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut here = &mut *vars;
        for p in parts {
            let slot = here
                .entry(p.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(next) = slot else {
                return;
            };
            here = next;
        }
        here.insert(last.to_owned(), value.clone());
    }
}

/// Parse `key=value` pairs (`--context`): values read as YAML scalars (`512` a number,
/// `true` a boolean, anything else a string).
pub fn parse_overrides(pairs: &[String]) -> Result<Vars, String> {
    let mut out = Vars::new();
    for pair in pairs {
        let Some((key, raw)) = pair.split_once('=') else {
            return Err(format!("`{pair}` is not key=value"));
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(format!("`{pair}` has an empty key"));
        }
        let value = match serde_yaml_ng::from_str::<Value>(raw) {
            Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
            _ => Value::String(raw.to_owned()),
        };
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod override_tests {
    use super::*;

    #[test]
    fn context_overrides_reach_into_objects_and_type_scalars() {
        let mut vars: Vars = serde_json::from_value(serde_json::json!({
            "cpu": 256, "image": {"name": "api", "tag": "v1"}, "region": "eu"
        }))
        .expect("vars");
        let o = parse_overrides(&[
            "cpu=512".into(),
            "image.tag=v2".into(),
            "debug=true".into(),
            "note=a=b".into(),
        ])
        .expect("parse");
        override_with(&mut vars, &o);
        assert_eq!(
            Value::Object(vars),
            serde_json::json!({"cpu": 512, "image": {"name": "api", "tag": "v2"}, "region": "eu", "debug": true, "note": "a=b"})
        );
        assert!(parse_overrides(&["novalue".into()]).is_err());
        assert!(parse_overrides(&["a..b=1".into()]).is_err());
    }
}
