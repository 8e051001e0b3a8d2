//! Asking an image registry what it serves, through the OCI distribution API (v2): the
//! digest a registry serves for a tag (what a build records), and whether it still serves a
//! digest (what a rollout checks before anything runs).
//!
//! A manifest request always lists the four manifest media types: a registry answers
//! 404 for an OCI manifest a client did not accept, and may convert a Docker image to an
//! older schema with another digest for a client that accepted nothing. A digest in a
//! `Docker-Content-Digest` header is checked against the body when the manifest is fetched.
//! Credentials and plain-HTTP registries come from the files the engines read ([`config`]);
//! `Basic` and `Bearer` token challenges are answered as engines answer them.

pub mod config;
pub mod copy;
mod error;
mod reference;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

pub use config::Settings;
pub use error::RegistryError;
pub use reference::{DOCKER_HUB, Reference, is_digest};

/// The manifest media types every manifest request accepts.
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest read.
const MANIFEST_MAX: u64 = 4 * 1024 * 1024;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the registry serves for one manifest request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// Served, with this digest and media type.
    Found {
        /// `sha256:…`.
        digest: String,
        /// Its media type.
        media_type: String,
    },
    /// Not served (404): the registry's words.
    Missing {
        /// What the registry said.
        detail: String,
    },
}

/// A manifest as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// `sha256:…` of its bytes.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What a manifest request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Served.
    Found(Served),
    /// Not served: the registry's words.
    Missing(String),
}

/// A client for the registries of one command.
pub struct Client {
    agent: ureq::Agent,
    settings: Settings,
    /// Bearer tokens by (registry, scope).
    tokens: RefCell<HashMap<(String, String), String>>,
}

impl Client {
    /// A client with the settings of this process's environment.
    pub fn from_env() -> Client {
        Client::new(Settings::from_env())
    }

    /// A client with `settings`.
    pub fn new(settings: Settings) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .max_redirects(5)
            .build()
            .into();
        Client {
            agent,
            settings,
            tokens: RefCell::new(HashMap::new()),
        }
    }

    fn base(&self, r: &Reference) -> String {
        let scheme = if self.settings.is_insecure(&r.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}", r.api_host(), r.repository)
    }

    /// What the registry serves for `r` (by its digest, else its tag). The digest of a
    /// manifest found is its `Docker-Content-Digest`, checked against the body.
    pub fn manifest(&self, r: &Reference) -> Result<Manifest, RegistryError> {
        Ok(match self.fetch_manifest(r)? {
            Fetched::Found(m) => Manifest::Found {
                digest: m.digest,
                media_type: m.media_type,
            },
            Fetched::Missing(detail) => Manifest::Missing { detail },
        })
    }

    /// The manifest `r` names, with its bytes.
    pub(crate) fn fetch_manifest(&self, r: &Reference) -> Result<Fetched, RegistryError> {
        let url = format!("{}/manifests/{}", self.base(r), r.manifest_ref());
        let what = format!("the manifest {r}");
        let mut resp = self.send(r, "pull", &what, |agent, auth| {
            let mut req = agent.get(&url).header("Accept", MANIFEST_TYPES);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call()
        })?;
        let status = resp.status().as_u16();
        let announced = header(&resp, "docker-content-digest");
        let media_type = header(&resp, "content-type").unwrap_or_default();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MANIFEST_MAX)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => RegistryError::Unsupported {
                    registry: r.registry.clone(),
                    what: what.clone(),
                    why: format!("it is larger than {} MiB", MANIFEST_MAX / (1024 * 1024)),
                },
                e => RegistryError::Unreachable {
                    registry: r.registry.clone(),
                    detail: e.to_string(),
                },
            })?;
        match status {
            200 => {
                let found = format!("sha256:{}", sha256_hex(&body));
                for expected in [r.digest.as_ref(), announced.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    if *expected != found {
                        return Err(RegistryError::Mismatch {
                            registry: r.registry.clone(),
                            what,
                            expected: expected.clone(),
                            found,
                        });
                    }
                }
                Ok(Fetched::Found(Served {
                    digest: found,
                    media_type,
                    bytes: body,
                }))
            }
            404 => Ok(Fetched::Missing(short(&String::from_utf8_lossy(&body)))),
            s => Err(RegistryError::Refused {
                registry: r.registry.clone(),
                status: s,
                what,
                detail: short(&String::from_utf8_lossy(&body)),
            }),
        }
    }

    /// Send one request, answering an authentication challenge once (`Basic` with the
    /// credentials for the registry, `Bearer` with a token for `repository:<name>:<action>`).
    fn send(
        &self,
        r: &Reference,
        action: &str,
        what: &str,
        request: impl Fn(
            &ureq::Agent,
            Option<&str>,
        ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, RegistryError> {
        let unreachable = |e: ureq::Error| RegistryError::Unreachable {
            registry: r.registry.clone(),
            detail: e.to_string(),
        };
        let scope = format!("repository:{}:{action}", r.repository);
        let cached = self
            .tokens
            .borrow()
            .get(&(r.registry.clone(), scope.clone()))
            .cloned();
        let first = request(&self.agent, cached.as_deref()).map_err(unreachable)?;
        if first.status().as_u16() != 401 {
            return Ok(first);
        }
        let challenge = first
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let creds = self.settings.credentials.get(&r.registry);
        let auth = if challenge.to_ascii_lowercase().starts_with("basic") {
            let Some(c) = creds else {
                return Ok(first);
            };
            basic(c)
        } else if challenge.to_ascii_lowercase().starts_with("bearer") {
            let token = self.token(r, &challenge, &scope, creds, what)?;
            self.tokens
                .borrow_mut()
                .insert((r.registry.clone(), scope), token.clone());
            format!("Bearer {token}")
        } else {
            return Ok(first);
        };
        request(&self.agent, Some(&auth)).map_err(unreachable)
    }

    /// A token from the realm of a `Bearer` challenge.
    fn token(
        &self,
        r: &Reference,
        challenge: &str,
        scope: &str,
        creds: Option<&config::Credentials>,
        what: &str,
    ) -> Result<String, RegistryError> {
        let params = challenge_params(challenge);
        let Some(realm) = params.get("realm") else {
            return Err(RegistryError::Refused {
                registry: r.registry.clone(),
                status: 401,
                what: what.to_owned(),
                detail: format!("a Bearer challenge without a realm: {challenge}"),
            });
        };
        let mut req = self.agent.get(realm).query("scope", scope);
        if let Some(service) = params.get("service") {
            req = req.query("service", service);
        }
        if let Some(c) = creds {
            req = req.header("Authorization", basic(c));
        }
        let mut resp = req.call().map_err(|e| RegistryError::Unreachable {
            registry: r.registry.clone(),
            detail: format!("its token service {realm}: {e}"),
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        if status != 200 {
            return Err(RegistryError::Refused {
                registry: r.registry.clone(),
                status,
                what: format!("a token for {scope}"),
                detail: short(&String::from_utf8_lossy(&body)),
            });
        }
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        doc.get("token")
            .or_else(|| doc.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::Refused {
                registry: r.registry.clone(),
                status,
                what: format!("a token for {scope}"),
                detail: "the answer holds no token".into(),
            })
    }
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn basic(c: &config::Credentials) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}

/// `key="value"` pairs of an authentication challenge.
fn challenge_params(challenge: &str) -> HashMap<String, String> {
    let rest = challenge.split_once(' ').map_or("", |(_, r)| r).to_owned();
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars
            .by_ref()
            .skip_while(|c| *c == ',' || c.is_whitespace())
            .take_while(|c| *c != '=')
            .collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                value.push(c);
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn short(text: &str) -> String {
    let t = text.trim();
    if t.chars().count() > 300 {
        format!("{}…", t.chars().take(300).collect::<String>())
    } else {
        t.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_write_them() {
        let p = challenge_params(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:org/app:pull""#,
        );
        assert_eq!(p["realm"], "https://ghcr.io/token");
        assert_eq!(p["service"], "ghcr.io");
        assert_eq!(p["scope"], "repository:org/app:pull");
        assert_eq!(challenge_params("Basic realm=\"x\"")["realm"], "x");
    }
}
