//! One approval (or rejection) of a commit for a target: a JSON line in the note
//! `refs/notes/atmos/<deployment>/approvals`, optionally SSH-signed over
//! [`ApprovalRecord::signed_payload`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The SSH signature namespace of approvals; a signature made for anything else never counts.
pub const SIGNING_NAMESPACE: &str = "atmos-approval@v1";

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalDecision {
    /// Sign-off.
    Approve,
    /// Blocks until a later approval by the same person.
    Reject,
}

/// One line of the approvals note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalRecord {
    /// Who.
    pub approved_by: String,
    /// When (RFC 3339 UTC).
    pub approved_at: String,
    /// Approve or reject.
    pub decision: ApprovalDecision,
    /// Deployment.
    pub deployment: String,
    /// Target it is valid for.
    pub target: String,
    /// Commit it is valid for.
    pub git_sha: String,
    /// The source target, when approving a promotion.
    #[serde(default)]
    pub promoted_from: Option<String>,
    /// Free text.
    #[serde(default)]
    pub comment: Option<String>,
    /// `recorded` (atmos deployment approve) or `manual` (confirmed at rollout time).
    #[serde(default = "recorded")]
    pub method: String,
    /// For a `manual` confirmation: the rollout it was given in (it counts for that rollout
    /// only; a line written by hand cannot name a rollout that has not started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// This person's word on this commit and target, counted from 1: the highest number is
    /// their latest word, whatever the clocks say. Two words with the same number (written on
    /// two machines at once and merged) count as a rejection if either one is. Lines written
    /// before numbering (none) come first, in the order of their times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// SSH signature (armored) over [`ApprovalRecord::signed_payload`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

fn recorded() -> String {
    "recorded".to_owned()
}

impl ApprovalRecord {
    /// The order of one person's words on one commit and target: the number, then (for
    /// lines without one) the time, then a rejection after an approval.
    pub fn order_key(&self) -> (u64, &str, bool) {
        (
            self.sequence.unwrap_or(0),
            if self.sequence.is_some() {
                ""
            } else {
                self.approved_at.as_str()
            },
            self.decision == ApprovalDecision::Reject,
        )
    }

    /// The exact bytes a signature covers: the record without its signature, as compact JSON
    /// with fields in declaration order.
    pub fn signed_payload(&self) -> String {
        // Serialising a struct of strings and numbers cannot fail; an empty payload would
        // verify against no signature.
        let mut unsigned = self.clone();
        unsigned.signature = None;
        serde_json::to_string(&unsigned).unwrap_or_default()
    }
}
