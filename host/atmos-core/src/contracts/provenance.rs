//! Signed provenance: a DSSE envelope (`application/vnd.dsse.envelope.v1+json`) whose payload
//! is an in-toto Statement v1 with a SLSA Provenance v1 predicate, as the in-toto attestation
//! framework defines them. A build writes one per image it pushed; it travels inside the
//! build's line of the builds note and beside the image in its registry.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The media type of a DSSE envelope (an OCI artifact's layer).
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The payload type of an in-toto statement in a DSSE envelope.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of SLSA Provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// `buildDefinition.buildType` of an atmos build: what `externalParameters` hold
/// (deployment, component, target, builder, the build commands) is documented in
/// docs/build-and-sbom.md.
pub const BUILD_TYPE: &str = "urn:atmos-deployment:build:v1";
/// The `allowed_signers` namespace whose keys may sign provenance (a line with
/// `namespaces="…"` must list it to count).
pub const SIGNING_NAMESPACE: &str = "atmos-provenance@v1";

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// Always [`PAYLOAD_TYPE`] here.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The statement, base64 (standard alphabet, padded).
    pub payload: String,
    /// Signatures over the pre-authentication encoding of the payload.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvelopeSignature {
    /// The signing key's SHA-256 fingerprint (`SHA256:…`, as `ssh-keygen -l` prints it).
    #[serde(default)]
    pub keyid: String,
    /// The raw Ed25519 signature, base64.
    pub sig: String,
}

/// What checking an image's provenance found (`components[].provenance` of the gate input).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProvenanceCheck {
    /// True when a signed provenance verifies against the trusted allowed signers, names
    /// this digest and commit, and was made by an allowed builder.
    pub verified: bool,
    /// The builder it names (whether or not it verifies).
    #[serde(default)]
    pub builder: Option<String>,
    /// The commit it names.
    #[serde(default)]
    pub commit: Option<String>,
    /// Why it does not verify (null when it does).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The pre-authentication encoding DSSE signs: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP
/// body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pre_authentication_encoding_is_dsse_v1() {
        // The example of the DSSE specification's protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
