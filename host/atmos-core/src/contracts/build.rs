//! One line of the builds note, `refs/notes/atmos/<deployment>/builds` on the built commit:
//! what `build` produced for one component. JSON lines, so that notes written by two runners
//! merge by union like approvals; the newest line of a component is its build.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What one component's build produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BuildRecord {
    /// Deployment.
    pub deployment: String,
    /// Component.
    pub component: String,
    /// The commit built.
    pub git_sha: String,
    /// The image reference (`registry/name:tag`), for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The image digest (`sha256:…`), when the engine told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The builder (`nixpacks`, `docker`, `podman`, `buildah`, `script`).
    pub builder: String,
    /// True when the image was pushed to its registry.
    #[serde(default)]
    pub pushed: bool,
    /// Who built it.
    pub built_by: String,
    /// When the build finished (UTC, RFC 3339).
    pub built_at: String,
    /// How long it took.
    pub duration_ms: u64,
    /// The target whose vars the build got.
    pub target: String,
    /// `--context k=v` overrides the build ran with.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub context: IndexMap<String, String>,
    /// CI build identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Signed provenance of the image pushed: an in-toto statement (SLSA Provenance v1) in a
    /// DSSE envelope, signed by the builder's Ed25519 key (`build --signing-key`). Targets that
    /// require provenance deploy only digests whose provenance verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<super::provenance::Envelope>,
    /// SSH signature (armored) by the builder over [`BuildRecord::signed_payload`]: where a
    /// target requires signatures, only signed builds by an allowed signer are deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The SSH signature namespace of build records.
pub const SIGNING_NAMESPACE: &str = "atmos-build@v1";

impl BuildRecord {
    /// The exact bytes a signature covers: the record without its signature, as compact JSON
    /// with fields in declaration order.
    pub fn signed_payload(&self) -> String {
        let mut unsigned = self.clone();
        unsigned.signature = None;
        // Serialising strings, numbers and maps cannot fail.
        serde_json::to_string(&unsigned).unwrap_or_default()
    }

    /// The image as `reference@digest` when both are known, else the reference.
    pub fn pinned(&self) -> Option<String> {
        match (&self.image, &self.digest) {
            (Some(i), Some(d)) => Some(format!("{}@{d}", i.split('@').next().unwrap_or(i))),
            (Some(i), None) => Some(i.clone()),
            _ => None,
        }
    }
}
