//! Every JSON Schema atmos publishes in `docs/schema/`, generated from the types that read or
//! write the documents: deployment files and `atmos.yaml` (read), the gate input (written for
//! policies and hooks), and every `--format json` output (written for CI). A test compares
//! them with the committed files and fails when those are stale.

use serde_json::{Map, Value};

use crate::contracts::output::{Document, OUTPUT_API_VERSION};
use crate::contracts::schema::{Direction, generate};

/// One published schema.
#[derive(Debug, Clone)]
pub struct Published {
    /// Path under `docs/schema/`.
    pub file: String,
    /// The schema.
    pub schema: Value,
}

/// The `$id` of every published schema starts with this.
pub const ID_BASE: &str = "https://atmos.tools/schemas";

/// The schema of an output document: the report's own schema with `apiVersion` and `kind`.
fn output<T: Document + schemars::JsonSchema>() -> Published {
    let kind = T::KIND;
    let file = format!("output/{}.schema.json", kebab(kind));
    let mut schema = generate::<T>(&format!("{ID_BASE}/{file}"), Direction::Written);
    if let Value::Object(root) = &mut schema {
        let mut properties = Map::new();
        properties.insert(
            "apiVersion".into(),
            serde_json::json!({"const": OUTPUT_API_VERSION}),
        );
        properties.insert("kind".into(), serde_json::json!({"const": kind}));
        if let Some(Value::Object(own)) = root.remove("properties") {
            properties.extend(own);
        }
        root.insert("properties".into(), Value::Object(properties));
        let mut required = vec![Value::from("apiVersion"), Value::from("kind")];
        if let Some(Value::Array(own)) = root.remove("required") {
            required.extend(own);
        }
        root.insert("required".into(), Value::Array(required));
        root.insert(
            "title".into(),
            Value::String(format!("atmos {kind} (--format json)")),
        );
    }
    Published { file, schema }
}

fn kebab(kind: &str) -> String {
    let mut out = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Every published schema.
pub fn all() -> Vec<Published> {
    use crate::workflow::{approve, build, drift, rollout::model as rollout};
    vec![
        Published {
            file: "deployment.schema.json".into(),
            schema: crate::config::schema::deployment_schema(),
        },
        Published {
            file: "atmos.schema.json".into(),
            schema: crate::config::schema::project_schema(),
        },
        Published {
            file: "gate-input.schema.json".into(),
            schema: generate::<crate::contracts::GateInput>(
                &format!("{ID_BASE}/gate-input/v1.json"),
                Direction::Written,
            ),
        },
        output::<crate::contracts::output::ErrorDocument>(),
        output::<crate::validate::ValidationReport>(),
        output::<crate::listing::DeploymentList>(),
        output::<crate::listing::TargetList>(),
        output::<crate::listing::ComponentList>(),
        output::<crate::board::Board>(),
        output::<crate::describe::DescribeReport>(),
        output::<crate::promotion::PromotionGraph>(),
        output::<crate::promotion::GraphWithStatus>(),
        output::<crate::status::StatusReport>(),
        output::<crate::status::StatusOverview>(),
        output::<crate::history::HistoryReport>(),
        output::<drift::DiffWithDrift>(),
        output::<crate::gates::testing::TestReport>(),
        output::<crate::sbom::Summary>(),
        output::<crate::git::lock::LockStatus>(),
        output::<build::BuildPlan>(),
        output::<build::BuildReport>(),
        output::<rollout::RolloutPlan>(),
        output::<rollout::PlanRun>(),
        output::<rollout::RolloutReport>(),
        output::<rollout::PolicyEvaluation>(),
        output::<approve::ApprovalReport>(),
        output::<approve::ApprovalRefusal>(),
        output::<crate::workflow::verify::VerifyReport>(),
        output::<crate::workflow::verify::receive::PushCheck>(),
        output::<crate::workflow::verify::repair::RepairReport>(),
        output::<crate::workflow::sync::FetchReport>(),
        output::<crate::workflow::sync::SetupReport>(),
        output::<crate::workflow::archive::ArchiveReport>(),
        output::<crate::logs::LogsReport>(),
        output::<crate::gates::check::CheckReport>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_become_file_names() {
        assert_eq!(kebab("RolloutPlanRun"), "rollout-plan-run");
        assert_eq!(kebab("Error"), "error");
    }

    #[test]
    fn every_schema_compiles_and_outputs_state_their_kind() {
        let all = all();
        let mut files: Vec<&str> = all.iter().map(|p| p.file.as_str()).collect();
        files.sort();
        files.dedup();
        assert_eq!(files.len(), all.len(), "two documents share a file");
        for p in &all {
            jsonschema::validator_for(&p.schema)
                .unwrap_or_else(|e| panic!("{} does not compile: {e}", p.file));
            if p.file.starts_with("output/") {
                assert!(
                    p.schema["properties"]["kind"]["const"].is_string(),
                    "{}",
                    p.file
                );
            }
        }
    }
}
