//! Signed provenance of the images a build pushes: what was built (the image and the digest
//! its registry serves), from which commit and lockfiles, by whom and with which commands — an
//! in-toto Statement v1 with a SLSA Provenance v1 predicate, in a DSSE envelope signed with
//! the builder's Ed25519 SSH key (the key that signs its records). Checking one is what a
//! rollout into a target that requires provenance, `verify` and the server guard do: the
//! signature verifies against a key the trusted `allowed_signers` allows for the builder it
//! names, it names the digest deployed and the commit, and the builder is an allowed one.

use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::contracts::BuildRecord;
use crate::contracts::provenance::{
    BUILD_TYPE, Envelope, EnvelopeSignature, PAYLOAD_TYPE, PREDICATE_TYPE, ProvenanceCheck,
    SIGNING_NAMESPACE, STATEMENT_TYPE, pae,
};
use crate::signing::{Key, SignError};

/// The largest statement read from an envelope.
const STATEMENT_MAX: usize = 64 * 1024;

/// A file the build's result depends on, by its digest (`resolvedDependencies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// Its path, relative to the repository.
    pub name: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// What one image's provenance states.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// Deployment.
    pub deployment: &'a str,
    /// Component.
    pub component: &'a str,
    /// The target whose vars the build got.
    pub target: &'a str,
    /// The commit built.
    pub commit: &'a str,
    /// The image reference pushed (tag included).
    pub image: &'a str,
    /// The digest its registry serves (`sha256:…`).
    pub digest: &'a str,
    /// Who built it (an identity).
    pub builder: &'a str,
    /// The engine (`buildah`, `podman`, `docker`, `nixpacks`).
    pub engine: &'a str,
    /// The commands, as typed.
    pub commands: &'a [String],
    /// Lockfiles and their digests.
    pub materials: &'a [Material],
    /// The repository (its origin's URL), when known.
    pub repository: Option<&'a str>,
    /// CI build identifier.
    pub build_id: Option<&'a str>,
    /// When the build started and finished (RFC 3339).
    pub started_on: &'a str,
    /// When it finished.
    pub finished_on: &'a str,
}

/// The builder id of an identity in `runDetails.builder.id` (a URI: `mailto:` for e-mail
/// addresses, `urn:atmos-deployment:builder:` otherwise).
pub fn builder_id(identity: &str) -> String {
    if identity.contains('@') && !identity.contains(':') {
        format!("mailto:{identity}")
    } else {
        format!("urn:atmos-deployment:builder:{identity}")
    }
}

fn identity_of(builder_id: &str) -> &str {
    builder_id
        .strip_prefix("mailto:")
        .or_else(|| builder_id.strip_prefix("urn:atmos-deployment:builder:"))
        .unwrap_or(builder_id)
}

/// The in-toto statement of `f`.
pub fn statement(f: &Facts<'_>) -> Value {
    let name = f
        .image
        .split('@')
        .next()
        .map(|n| crate::registry::Reference::parse(n).map_or(n.to_owned(), |r| r.name()))
        .unwrap_or_default();
    let mut dependencies = vec![json!({
        "uri": f.repository.map_or_else(|| "git+repository".to_owned(), |r| format!("git+{r}")),
        "digest": {"gitCommit": f.commit},
    })];
    dependencies.extend(
        f.materials
            .iter()
            .map(|m| json!({"name": m.name, "digest": {"sha256": m.sha256}})),
    );
    let mut metadata = json!({"startedOn": f.started_on, "finishedOn": f.finished_on});
    if let Some(id) = f.build_id {
        metadata["invocationId"] = json!(id);
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": name,
            "digest": {"sha256": f.digest.strip_prefix("sha256:").unwrap_or(f.digest)},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "deployment": f.deployment,
                    "component": f.component,
                    "target": f.target,
                    "image": f.image,
                    "engine": f.engine,
                    "commands": f.commands,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": builder_id(f.builder)},
                "metadata": metadata,
            },
        },
    })
}

/// `statement` in a DSSE envelope signed with `key` (an unencrypted Ed25519 key).
pub fn seal(statement: &Value, key: &Key) -> Result<Envelope, SignError> {
    // Serialising a JSON value cannot fail.
    let body = serde_json::to_vec(statement).unwrap_or_default();
    let signed = crate::signing::sign_raw(&pae(PAYLOAD_TYPE, &body), key)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: b64.encode(&body),
        signatures: vec![EnvelopeSignature {
            keyid: signed.keyid,
            sig: b64.encode(&signed.sig),
        }],
    })
}

/// The lockfiles directly in `dir`, with their digests; `shown` names them.
pub fn materials(dir: &Path, shown: &dyn Fn(&Path) -> String) -> Vec<Material> {
    crate::sbom::lockfiles::NAMES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .filter_map(|p| {
            std::fs::read(&p).ok().map(|bytes| Material {
                name: shown(&p),
                sha256: sha256_hex(&bytes),
            })
        })
        .collect()
}

/// What a check requires.
pub struct Expect<'a> {
    /// The deployment and component deployed: a provenance is of one component's build.
    pub deployment: &'a str,
    /// The component.
    pub component: &'a str,
    /// The commit deployed.
    pub commit: &'a str,
    /// The digest deployed (`sha256:…`).
    pub digest: &'a str,
    /// The trusted `allowed_signers` file (none: nothing verifies).
    pub signers: Option<&'a Path>,
    /// Whether an identity may build what runs there.
    pub allowed_builder: &'a dyn Fn(&str) -> bool,
}

/// Check one envelope against `expect`.
pub fn check(envelope: &Envelope, expect: &Expect<'_>) -> ProvenanceCheck {
    let mut out = ProvenanceCheck::default();
    let fail = |mut out: ProvenanceCheck, why: String| {
        out.reason = Some(why);
        out
    };
    if envelope.payload_type != PAYLOAD_TYPE {
        return fail(
            out,
            format!(
                "its envelope carries {:?}, not an in-toto statement",
                envelope.payload_type
            ),
        );
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = match b64.decode(envelope.payload.as_bytes()) {
        Ok(b) if b.len() <= STATEMENT_MAX => b,
        Ok(b) => {
            return fail(
                out,
                format!(
                    "its statement is {} bytes (at most {STATEMENT_MAX})",
                    b.len()
                ),
            );
        }
        Err(e) => return fail(out, format!("its payload is not base64: {e}")),
    };
    let statement: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return fail(out, format!("its statement is not JSON: {e}")),
    };
    if statement["_type"] != STATEMENT_TYPE || statement["predicateType"] != PREDICATE_TYPE {
        return fail(
            out,
            "its statement is not an in-toto Statement v1 of SLSA Provenance v1".into(),
        );
    }
    let predicate = &statement["predicate"];
    let builder = predicate["runDetails"]["builder"]["id"]
        .as_str()
        .map(|id| identity_of(id).to_owned());
    let commit = predicate["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["digest"]["gitCommit"].as_str().map(str::to_owned));
    out.builder = builder.clone();
    out.commit = commit.clone();
    let Some(builder) = builder else {
        return fail(out, "its statement names no builder".into());
    };
    if predicate["buildDefinition"]["buildType"] != BUILD_TYPE {
        return fail(
            out,
            format!(
                "its build type is {}, not an atmos build ({BUILD_TYPE})",
                predicate["buildDefinition"]["buildType"]
            ),
        );
    }
    // The signature first: nothing an unsigned statement says is worth reporting as true.
    let Some(signers) = expect.signers else {
        return fail(
            out,
            "approvers.allowed_signers is not set, so no signature can be checked".into(),
        );
    };
    let message = pae(PAYLOAD_TYPE, &body);
    let mut reasons: Vec<String> = Vec::new();
    let signed = envelope.signatures.iter().any(|s| {
        let verdict = b64
            .decode(s.sig.as_bytes())
            .map_err(|e| SignError(format!("a signature is not base64: {e}")))
            .and_then(|sig| {
                crate::signing::verify_raw(&message, &sig, &builder, signers, SIGNING_NAMESPACE)
            });
        if let Err(e) = &verdict
            && !reasons.contains(&e.to_string())
        {
            reasons.push(e.to_string());
        }
        verdict.is_ok()
    });
    if !signed {
        if reasons.is_empty() {
            reasons.push("it carries no signature".into());
        }
        return fail(
            out,
            format!("its signature does not verify: {}", reasons.join("; ")),
        );
    }
    let hex = expect
        .digest
        .strip_prefix("sha256:")
        .unwrap_or(expect.digest);
    let names_digest = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["digest"]["sha256"].as_str() == Some(hex));
    if !names_digest {
        return fail(
            out,
            format!(
                "it is the provenance of another image, not of {}",
                expect.digest
            ),
        );
    }
    if commit.as_deref() != Some(expect.commit) {
        return fail(
            out,
            format!(
                "it names commit {}, not {}",
                commit.as_deref().unwrap_or("none"),
                expect.commit
            ),
        );
    }
    let params = &predicate["buildDefinition"]["externalParameters"];
    for (key, want) in [
        ("deployment", expect.deployment),
        ("component", expect.component),
    ] {
        if params[key].as_str() != Some(want) {
            return fail(
                out,
                format!("it is the provenance of {key} {}, not {want}", params[key]),
            );
        }
    }
    if !(expect.allowed_builder)(&builder) {
        return fail(
            out,
            format!("{builder} is not an allowed builder here (promotion.provenance)"),
        );
    }
    out.verified = true;
    out
}

/// The provenance of `digest` deployed as `component` at `commit`, from the commit's builds:
/// verified when any build of that digest carries a provenance that checks; otherwise why not
/// (the newest build's reason).
pub fn of_builds(builds: &[BuildRecord], component: &str, expect: &Expect<'_>) -> ProvenanceCheck {
    let mut last = None;
    for b in builds
        .iter()
        .rev()
        .filter(|b| b.component == component && b.digest.as_deref() == Some(expect.digest))
    {
        match &b.provenance {
            Some(envelope) => {
                let c = check(envelope, expect);
                if c.verified {
                    return c;
                }
                last.get_or_insert(c);
            }
            None => {
                last.get_or_insert(ProvenanceCheck {
                    reason: Some(format!(
                        "the build by {} carries no provenance (built without a signing key, or with --skip-push)",
                        b.built_by
                    )),
                    ..ProvenanceCheck::default()
                });
            }
        }
    }
    last.unwrap_or_else(|| ProvenanceCheck {
        reason: Some(format!(
            "no build of {} at {} names {}",
            component,
            crate::git::short(expect.commit),
            expect.digest
        )),
        ..ProvenanceCheck::default()
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    struct Keys {
        dir: tempfile::TempDir,
    }

    impl Keys {
        /// Keys for `ci` and `dev` (allowed; `dev` only outside the provenance namespace) and
        /// `mallory` (no allowed key).
        fn new() -> Keys {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut signers = String::new();
            for name in ["ci", "dev", "mallory"] {
                let key = dir.path().join(name);
                let made = Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                    .arg(&key)
                    .status()
                    .expect("ssh-keygen");
                assert!(made.success());
                let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
                match name {
                    "ci" => signers.push_str(&format!("CI@example.com {}\n", public.trim())),
                    "dev" => signers.push_str(&format!(
                        "dev@example.com namespaces=\"git,atmos-build@v1\" {}\n",
                        public.trim()
                    )),
                    _ => {}
                }
            }
            std::fs::write(dir.path().join("allowed_signers"), signers).expect("write");
            Keys { dir }
        }

        fn key(&self, name: &str) -> Key {
            Key::Path(self.dir.path().join(name))
        }

        fn signers(&self) -> std::path::PathBuf {
            self.dir.path().join("allowed_signers")
        }
    }

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn facts<'a>(builder: &'a str, digest: &'a str, materials: &'a [Material]) -> Facts<'a> {
        Facts {
            deployment: "svc",
            component: "api",
            target: "dev",
            commit: COMMIT,
            image: "127.0.0.1:5000/shop/api:0123456789ab",
            digest,
            builder,
            engine: "buildah",
            commands: &[],
            materials,
            repository: Some("https://git.example.com/shop.git"),
            build_id: Some("run-7"),
            started_on: "2026-12-06T10:00:00Z",
            finished_on: "2026-12-06T10:00:05Z",
        }
    }

    fn expect<'a>(
        digest: &'a str,
        signers: &'a Path,
        allowed: &'a dyn Fn(&str) -> bool,
    ) -> Expect<'a> {
        Expect {
            deployment: "svc",
            component: "api",
            commit: COMMIT,
            digest,
            signers: Some(signers),
            allowed_builder: allowed,
        }
    }

    #[test]
    fn the_statement_is_an_in_toto_slsa_provenance_of_the_image_and_its_commit() {
        let d = digest('a');
        let materials = [Material {
            name: "services/api/Cargo.lock".into(),
            sha256: "b".repeat(64),
        }];
        let s = statement(&facts("ci@example.com", &d, &materials));
        assert_eq!(s["_type"], STATEMENT_TYPE);
        assert_eq!(s["predicateType"], PREDICATE_TYPE);
        assert_eq!(s["subject"][0]["name"], "127.0.0.1:5000/shop/api");
        assert_eq!(s["subject"][0]["digest"]["sha256"], "a".repeat(64));
        let deps = &s["predicate"]["buildDefinition"]["resolvedDependencies"];
        assert_eq!(deps[0]["uri"], "git+https://git.example.com/shop.git");
        assert_eq!(deps[0]["digest"]["gitCommit"], COMMIT);
        assert_eq!(deps[1]["name"], "services/api/Cargo.lock");
        assert_eq!(
            s["predicate"]["runDetails"]["builder"]["id"],
            "mailto:ci@example.com"
        );
        assert_eq!(
            s["predicate"]["runDetails"]["metadata"]["invocationId"],
            "run-7"
        );
    }

    #[test]
    fn a_sealed_statement_verifies_and_every_alteration_is_refused() {
        let keys = Keys::new();
        let signers = keys.signers();
        let d = digest('a');
        let anyone = |_: &str| true;
        let sealed = seal(
            &statement(&facts("ci@example.com", &d, &[])),
            &keys.key("ci"),
        )
        .expect("sealed");
        assert_eq!(sealed.payload_type, PAYLOAD_TYPE);
        assert!(sealed.signatures[0].keyid.starts_with("SHA256:"));
        // Verified, whatever the case of the identity in allowed_signers.
        let ok = check(&sealed, &expect(&d, &signers, &anyone));
        assert!(ok.verified, "{ok:?}");
        assert_eq!(ok.builder.as_deref(), Some("ci@example.com"));
        assert_eq!(ok.commit.as_deref(), Some(COMMIT));

        let refused = |e: &Envelope, want: &str| {
            let c = check(e, &expect(&d, &signers, &anyone));
            assert!(!c.verified, "{want}: verified");
            let reason = c.reason.unwrap_or_default();
            assert!(reason.contains(want), "{want}: {reason}");
        };
        // Another digest named (the statement is someone else's).
        let other = digest('b');
        let c = check(&sealed, &expect(&other, &signers, &anyone));
        assert!(!c.verified);
        assert!(c.reason.unwrap_or_default().contains("another image"));
        // The payload altered after signing: a statement naming the other digest.
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut tampered = sealed.clone();
        let text = String::from_utf8(b64.decode(&sealed.payload).expect("b64")).expect("utf-8");
        tampered.payload = b64.encode(text.replace(&"a".repeat(64), &"b".repeat(64)));
        let c = check(&tampered, &expect(&other, &signers, &anyone));
        assert!(!c.verified, "a tampered statement verified");
        assert!(c.reason.unwrap_or_default().contains("does not verify"));
        // No signature, a signature that is not base64, the wrong payload type.
        let mut bare = sealed.clone();
        bare.signatures.clear();
        refused(&bare, "carries no signature");
        let mut garbled = sealed.clone();
        garbled.signatures[0].sig = "%%%".into();
        refused(&garbled, "not base64");
        let mut typed = sealed.clone();
        typed.payload_type = "text/plain".into();
        refused(&typed, "not an in-toto statement");
        // Signed by a key allowed_signers does not allow for the builder it names.
        let forged = seal(
            &statement(&facts("ci@example.com", &d, &[])),
            &keys.key("mallory"),
        )
        .expect("sealed");
        refused(&forged, "does not verify for ci@example.com");
        // A key allowed for other namespaces only.
        let dev = seal(
            &statement(&facts("dev@example.com", &d, &[])),
            &keys.key("dev"),
        )
        .expect("sealed");
        refused(&dev, "does not verify for dev@example.com");
        // Verified, but by a builder not allowed there.
        let only_release = |who: &str| who == "release@example.com";
        let c = check(&sealed, &expect(&d, &signers, &only_release));
        assert!(!c.verified);
        assert!(
            c.reason
                .unwrap_or_default()
                .contains("not an allowed builder")
        );
        // Another commit.
        let mut e = expect(&d, &signers, &anyone);
        let other_commit = "f".repeat(40);
        e.commit = &other_commit;
        let c = check(&sealed, &e);
        assert!(
            c.reason
                .unwrap_or_default()
                .contains("names commit 0123456")
        );
        // No allowed signers: nothing verifies.
        let mut e = expect(&d, &signers, &anyone);
        e.signers = None;
        assert!(!check(&sealed, &e).verified);
    }

    #[test]
    fn the_builds_of_a_commit_prove_a_digest_when_one_of_them_does() {
        let keys = Keys::new();
        let signers = keys.signers();
        let d = digest('a');
        let anyone = |_: &str| true;
        let sealed = seal(
            &statement(&facts("ci@example.com", &d, &[])),
            &keys.key("ci"),
        )
        .expect("sealed");
        let build = |digest: &str, provenance: Option<Envelope>| BuildRecord {
            deployment: "svc".into(),
            component: "api".into(),
            git_sha: COMMIT.into(),
            image: Some("127.0.0.1:5000/shop/api:x".into()),
            digest: Some(digest.into()),
            builder: "buildah".into(),
            pushed: true,
            built_by: "ci@example.com".into(),
            built_at: "2026-12-06T10:00:05Z".into(),
            duration_ms: 1,
            target: "dev".into(),
            context: Default::default(),
            build_id: None,
            provenance,
            signature: None,
        };
        // A rebuild without provenance after a signed build of the same digest: still proven.
        let builds = [build(&d, Some(sealed.clone())), build(&d, None)];
        assert!(of_builds(&builds, "api", &expect(&d, &signers, &anyone)).verified);
        // Only unsigned builds: said.
        let c = of_builds(&[build(&d, None)], "api", &expect(&d, &signers, &anyone));
        assert!(
            c.reason
                .unwrap_or_default()
                .contains("carries no provenance")
        );
        // A build line that names another digest but carries this envelope proves nothing.
        let other = digest('b');
        let c = of_builds(
            &[build(&other, Some(sealed))],
            "api",
            &expect(&other, &signers, &anyone),
        );
        assert!(c.reason.unwrap_or_default().contains("another image"));
        // Nothing built with that digest.
        let c = of_builds(&[], "api", &expect(&d, &signers, &anyone));
        assert!(c.reason.unwrap_or_default().contains("no build of api"));
    }
}
