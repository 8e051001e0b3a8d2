//! The deployment record: the message of every history tag (one per component per
//! rollout). This type is the one writer and the one reader of that format, a public contract
//! documented in docs/git-layout.md.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::decision::Decision;

/// First line of every record.
pub const API_VERSION: &str = "atmos.tools/v1alpha1";
/// Second line of every record.
pub const KIND: &str = "kind: Deployment";

/// Where one component's rollout stands: started (written before its executor runs), then
/// how it ended — or, when nobody saw it end, interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Deployed.
    Success,
    /// The executor failed (or was interrupted); the state ref did not move.
    Failure,
    /// Deployed a commit older than the one running (an ancestor of it).
    Rollback,
    /// The intent, written (and published) before the executor starts: what will run, by
    /// whom, under which decision. An outcome record completes it.
    Started,
    /// Started, but its executor never ran: a dependency failed, or the rollout was
    /// interrupted first. The state ref did not move.
    Skipped,
    /// A started rollout whose outcome nobody recorded (its runner was killed, its disk
    /// filled, its remote went away): written by the next rollout of the target, which found
    /// it. What ran is unknown; the state ref did not move.
    Interrupted,
    /// A canary step finished (its analysis passed): the new commit runs at the record's
    /// `canary.weight` percent beside the commit the state ref still names. The state ref
    /// moves only with the last step's `success`.
    Canary,
}

impl Status {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Rollback => "rollback",
            Status::Started => "started",
            Status::Skipped => "skipped",
            Status::Interrupted => "interrupted",
            Status::Canary => "canary",
        }
    }

    /// True when the record says the commit was deployed (and the state ref moved to it).
    pub fn deployed(self) -> bool {
        matches!(self, Status::Success | Status::Rollback)
    }

    /// True for a record that ends a rollout (every status but `started`).
    pub fn is_outcome(self) -> bool {
        self != Status::Started
    }
}

/// Where a rollout ran: shown for a started rollout whose outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Runner {
    /// Host name.
    pub host: String,
    /// Process id of the atmos that ran it.
    pub pid: u32,
    /// CI run, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// The YAML body of a history tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// The commit that ran before, when this moves forward to a newer commit the target ran
    /// before (after a rollback): a roll-forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_forward_from: Option<String>,
    /// The tag object of the previous record of the same target and component: the history
    /// of a target is a hash chain, so a deleted, reordered or altered record shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_record: Option<String>,
    /// The record's place in its target/component history, counted from 1 (a record written
    /// before numbering counts as 0): one more than the record it names as previous. The
    /// order of a history is this chain, never a clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// For an outcome (`success`, `failure`, `rollback`, `interrupted`): the tag object of
    /// the `started` record it completes. The rollout's place among others is its intent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// For a promotion: the tag object of the source target's record of the commit promoted
    /// (the record that made it eligible), so an audit needs no clock to order the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_record: Option<String>,
    /// Who wrote this record, when not the deployer (an `interrupted` record is written by
    /// the rollout that found the started one); its signature is theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<String>,
    /// When this record was written (UTC, RFC 3339), when not at `timestamp`: an outcome's
    /// end, a reconciliation. Data, never order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    /// For a `started` record: where the rollout runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<Runner>,
    /// The commit that ran before (any status), for diffs and audits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sha: Option<String>,
    /// The image deployed (`registry/name:tag`), for components with a recorded build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Its digest (`sha256:…`): the artifact that ran, followed from target to target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Where the image was copied from (`registry/name:tag@digest`), when the target deploys
    /// from its own registry: the same digest, in another registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_source: Option<String>,
    /// `--context key=value` overrides the rollout ran with.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub context: IndexMap<String, String>,
    /// This rollout's id (a manual confirmation counts only for the rollout it was given in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_id: Option<String>,
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
    /// How the post-deploy verification went, for components that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationRecord>,
    /// For a rollout in canary steps: the step this record is of, and how its analysis went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryRecord>,
    /// The trusted ref the rules that decided were read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_ref: Option<String>,
    /// The commit of those rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_commit: Option<String>,
    /// The commit whose approvals were counted, when the target requires approval: the newest
    /// of the commits the rollout deployed; every commit it deployed is in its history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_commit: Option<String>,
    /// Free-form metadata (`--metadata k=v`, `skip_promotion_check`, approver, PR…).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub metadata: IndexMap<String, String>,
    /// Every gate evaluated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

/// A post-deploy verification in a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerificationRecord {
    /// Whether an attempt passed.
    pub passed: bool,
    /// Attempts made.
    pub attempts: u32,
}

/// One canary step in a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CanaryRecord {
    /// The step, counted from 1 (an abort's records name the step it stopped at).
    pub step: u32,
    /// Steps in all.
    pub steps: u32,
    /// Percent of the traffic (or replicas) on the new commit at this step; 0 for an abort,
    /// which drains it.
    pub weight: u8,
    /// The analysis after this step, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<VerificationRecord>,
    /// The `rollout_id` of the canary's first step: every step and the abort of one canary
    /// name it.
    pub first: String,
}

impl TagRecord {
    /// What is wrong with this record's canary step for its status, if anything: a step
    /// between others (`canary`) is short of the last and of 100 %, the last one (`success`)
    /// is at it, an abort (`rollback`) drains to 0; an intent or an interrupted step is any
    /// step in range.
    pub fn canary_problem(&self) -> Option<String> {
        let Some(c) = &self.canary else {
            return (self.status == Status::Canary)
                .then(|| "is a canary step that names no step (no `canary` field)".to_owned());
        };
        let at = format!("step {} of {} at {}%", c.step, c.steps, c.weight);
        if c.step == 0 || c.step > c.steps || c.weight > 100 {
            return Some(format!("names canary {at}, which is out of range"));
        }
        let wrong = match self.status {
            Status::Canary => c.step >= c.steps || c.weight == 0 || c.weight >= 100,
            Status::Success => c.step != c.steps || c.weight != 100,
            Status::Rollback => c.weight != 0,
            Status::Started | Status::Interrupted | Status::Failure | Status::Skipped => false,
        };
        wrong.then(|| {
            format!(
                "is `{}` at canary {at}: a canary step is short of its last step and of 100%, only its last step succeeds (at 100%), and its abort drains to 0%",
                self.status.as_str()
            )
        })
    }
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
    /// Who signs this record: the writer when named, else the deployer.
    pub fn signer(&self) -> &str {
        self.recorded_by.as_deref().unwrap_or(&self.deployed_by)
    }

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
                // A record is anyone's push: its YAML may not expand or nest without bound.
                crate::yaml_shape::check(body).map_err(|e| RecordError::Body(e.message))?;
                serde_yaml_ng::from_str(body).map_err(|e| RecordError::Body(e.to_string()))
            }
            _ => Err(RecordError::Header(format!("{api} / {kind}"))),
        }
    }
}

/// A plain success record of `sha` for tests: deployment `svc`, deployed by
/// `ci@example.com`, nothing else set.
#[cfg(test)]
pub fn example(target: &str, component: &str, sha: &str) -> TagRecord {
    TagRecord {
        deployment: "svc".into(),
        target: target.into(),
        component: component.into(),
        deployed_by: "ci@example.com".into(),
        git_sha: sha.into(),
        timestamp: "2025-01-22T12:00:00Z".into(),
        status: Status::Success,
        promoted_from: None,
        promoted_at: None,
        rollback_of: None,
        rolled_forward_from: None,
        previous_record: None,
        sequence: None,
        intent: None,
        source_record: None,
        recorded_by: None,
        recorded_at: None,
        runner: None,
        previous_sha: None,
        image: None,
        image_digest: None,
        image_source: None,
        context: IndexMap::new(),
        rollout_id: None,
        build_id: None,
        component_type: None,
        duration_ms: None,
        error: None,
        verification: None,
        canary: None,
        rules_ref: None,
        rules_commit: None,
        approved_commit: None,
        metadata: IndexMap::new(),
        decisions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_step_agrees_with_its_status() {
        let step = |status: Status, step: u32, weight: u8| TagRecord {
            status,
            canary: Some(CanaryRecord {
                step,
                steps: 3,
                weight,
                analysis: None,
                first: "r1".into(),
            }),
            ..record()
        };
        for fine in [
            step(Status::Canary, 1, 10),
            step(Status::Canary, 2, 50),
            step(Status::Success, 3, 100),
            step(Status::Rollback, 2, 0),
            step(Status::Started, 3, 100),
            step(Status::Failure, 2, 50),
        ] {
            assert_eq!(fine.canary_problem(), None, "{:?}", fine.canary);
        }
        for (forged, says) in [
            (
                step(Status::Canary, 3, 100),
                "is `canary` at canary step 3 of 3 at 100%",
            ),
            (step(Status::Success, 1, 10), "only its last step succeeds"),
            (step(Status::Rollback, 2, 50), "its abort drains to 0%"),
            (step(Status::Canary, 4, 50), "out of range"),
            (
                TagRecord {
                    status: Status::Canary,
                    ..record()
                },
                "names no step",
            ),
        ] {
            let p = forged.canary_problem().expect("a problem");
            assert!(p.contains(says), "{p}");
        }
        assert_eq!(record().canary_problem(), None);
    }

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
            rolled_forward_from: None,
            previous_record: None,
            sequence: None,
            intent: None,
            source_record: None,
            recorded_by: None,
            recorded_at: None,
            runner: None,
            previous_sha: None,
            build_id: Some("build-482".into()),
            component_type: None,
            duration_ms: None,
            error: None,
            verification: None,
            canary: None,
            rules_ref: None,
            rules_commit: None,
            approved_commit: None,
            image: None,
            image_digest: None,
            image_source: None,
            context: IndexMap::new(),
            rollout_id: None,
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
}
