//! History: one annotated tag per component per rollout,
//! `refs/tags/atmos/deployments/<d>/<t>/<c>/<UTC YYYY-MM-DDTHH-MM-SSZ>[.N]`, whose message is
//! the versioned record of SPEC §3. The format is a public contract (docs/git-layout.md).

use indexmap::IndexMap;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// First line of every record.
pub const API_VERSION: &str = "atmos.tools/v1alpha1";
/// Second line of every record.
pub const KIND: &str = "kind: Deployment";
/// Namespace of every history tag (under `refs/tags/`).
pub const TAG_PREFIX: &str = "atmos/deployments";

/// How a rollout of one component ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Deployed.
    Success,
    /// The executor failed (or was interrupted); the state ref did not move.
    Failure,
    /// Deployed a commit older than the one running (an ancestor of it).
    Rollback,
}

impl Status {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Rollback => "rollback",
        }
    }
}

/// The result of one gate decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The gate lets the rollout through.
    Allow,
    /// Through, with a warning worth reading.
    Warn,
    /// Blocked (exit 3).
    Deny,
    /// Blocked until something happens, e.g. an approval (exit 4).
    Pending,
    /// Not evaluated, on request (`--skip-promotion-check`); recorded so audits see it.
    Skipped,
}

impl Verdict {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Deny => "deny",
            Verdict::Pending => "pending",
            Verdict::Skipped => "skipped",
        }
    }
}

/// One gate decision, as recorded in a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Which gate (`builtin/promotion-path`, a policy file, a hook name).
    pub source: String,
    /// The Rego package, for policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The rule within it.
    pub rule: String,
    /// What it decided.
    pub result: Verdict,
    /// Why.
    pub message: String,
    /// A machine-readable code, when the gate gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Lines a hook logged while deciding (shown with `-v`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

impl Decision {
    /// A decision without package or code (built-in gates).
    pub fn new(source: &str, rule: &str, result: Verdict, message: String) -> Decision {
        Decision {
            source: source.to_owned(),
            package: None,
            rule: rule.to_owned(),
            result,
            message,
            code: None,
            logs: Vec::new(),
        }
    }
}

/// The YAML body of a history tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagRecord {
    /// Deployment name.
    pub deployment: String,
    /// Target name.
    pub target: String,
    /// Component name.
    pub component: String,
    /// Who ran the rollout.
    pub deployed_by: String,
    /// The deployed (or attempted) commit.
    pub git_sha: String,
    /// When the rollout started (UTC, RFC 3339).
    pub timestamp: String,
    /// Outcome.
    pub status: Status,
    /// Source target, when promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// When the source's commit was promoted, when promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<String>,
    /// The commit that ran before, when this is a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// The commit that ran before (any status), for diffs and audits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sha: Option<String>,
    /// CI build identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Executor type of the component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    /// How long the executor ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Why it failed, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Free-form metadata (`--metadata k=v`, `skip_promotion_check`, approver, PR…).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub metadata: IndexMap<String, String>,
    /// Every gate evaluated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

/// Why a tag message is not an atmos record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Wrong or missing header lines.
    #[error("not an {API_VERSION} deployment record (first lines: {0:?})")]
    Header(String),
    /// The YAML body does not parse.
    #[error("invalid record body: {0}")]
    Body(String),
}

impl TagRecord {
    /// The tag message: header lines, `---`, YAML body.
    pub fn to_message(&self) -> String {
        let body = serde_yaml_ng::to_string(self).unwrap_or_default();
        format!("{API_VERSION}\n{KIND}\n---\n{body}")
    }

    /// Parse a tag message written by [`TagRecord::to_message`].
    pub fn from_message(message: &str) -> Result<TagRecord, RecordError> {
        let mut parts = message.splitn(3, '\n');
        let (api, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let rest = parts.next().unwrap_or("");
        let body = rest.strip_prefix("---\n");
        match (api.trim_end(), kind.trim_end(), body) {
            (API_VERSION, KIND, Some(body)) => {
                serde_yaml_ng::from_str(body).map_err(|e| RecordError::Body(e.to_string()))
            }
            _ => Err(RecordError::Header(format!("{api} / {kind}"))),
        }
    }
}

/// `2025-01-22T12-00-00Z`: the timestamp segment of a tag name (colons are not allowed in refs).
pub fn timestamp_segment(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H-%M-%SZ").to_string()
}

/// `2025-01-22T12:00:00Z`.
pub fn rfc3339(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The tag name (without `refs/tags/`) of one record; `attempt` > 0 adds `.N` so that two
/// rollouts within the same second never collide.
pub fn tag_name(
    deployment: &str,
    target: &str,
    component: &str,
    segment: &str,
    attempt: u32,
) -> String {
    let base = format!("{TAG_PREFIX}/{deployment}/{target}/{component}/{segment}");
    if attempt == 0 {
        base
    } else {
        format!("{base}.{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TagRecord {
        TagRecord {
            deployment: "payment-service".into(),
            target: "prod".into(),
            component: "api".into(),
            deployed_by: "ci@example.com".into(),
            git_sha: "a".repeat(40),
            timestamp: "2025-01-22T12:00:00Z".into(),
            status: Status::Success,
            promoted_from: Some("staging".into()),
            promoted_at: None,
            rollback_of: None,
            previous_sha: None,
            build_id: Some("build-482".into()),
            component_type: None,
            duration_ms: None,
            error: None,
            metadata: [("pr".to_string(), "#482".to_string())]
                .into_iter()
                .collect(),
            decisions: vec![],
        }
    }

    #[test]
    fn message_has_the_spec_layout_and_round_trips() {
        let msg = record().to_message();
        let expected = format!(
            "atmos.tools/v1alpha1\nkind: Deployment\n---\ndeployment: payment-service\ntarget: prod\ncomponent: api\ndeployed_by: ci@example.com\ngit_sha: {}\ntimestamp: 2025-01-22T12:00:00Z\nstatus: success\npromoted_from: staging\nbuild_id: build-482\nmetadata:\n  pr: '#482'\n",
            "a".repeat(40)
        );
        assert_eq!(msg, expected);
        assert_eq!(TagRecord::from_message(&msg), Ok(record()));
    }

    #[test]
    fn foreign_messages_are_refused() {
        assert!(matches!(
            TagRecord::from_message("release 1.0"),
            Err(RecordError::Header(_))
        ));
        assert!(matches!(
            TagRecord::from_message("atmos.tools/v2\nkind: Deployment\n---\n{}"),
            Err(RecordError::Header(_))
        ));
        assert!(matches!(
            TagRecord::from_message("atmos.tools/v1alpha1\nkind: Deployment\n---\n[oops"),
            Err(RecordError::Body(_))
        ));
    }

    #[test]
    fn tag_names_and_timestamps() {
        let at: Timestamp = "2025-01-22T12:00:00Z".parse().expect("ts");
        assert_eq!(timestamp_segment(at), "2025-01-22T12-00-00Z");
        assert_eq!(rfc3339(at), "2025-01-22T12:00:00Z");
        assert_eq!(tag_name("d", "t", "c", "S", 0), "atmos/deployments/d/t/c/S");
        assert_eq!(
            tag_name("d", "t", "c", "S", 2),
            "atmos/deployments/d/t/c/S.2"
        );
    }
}
