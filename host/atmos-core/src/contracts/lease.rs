//! A target lock's lease: who holds `<deployment>/<target>`, for which CI run, until when.
//! Stored as a JSON blob that `refs/atmos/locks/<deployment>/<target>` points at.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who holds a target, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Lease {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// The deployer identity.
    pub holder: String,
    /// CI run (build id), when known.
    pub run: Option<String>,
    /// Host name and process id.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When it was taken (RFC 3339).
    pub started_at: String,
    /// When it lapses (RFC 3339).
    pub expires_at: String,
}

impl Lease {
    /// True once `expires_at` has passed.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.parse::<Timestamp>().is_ok_and(|t| t <= now)
    }
}
