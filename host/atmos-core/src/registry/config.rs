//! Which registries speak plain HTTP, and the credentials for each — read from the files
//! buildah, podman and skopeo read, so that atmos reaches a registry exactly as the engine
//! that pushed to it did.
//!
//! - `containers-registries.conf(5)`: `$CONTAINERS_REGISTRIES_CONF`, else
//!   `/etc/containers/registries.conf` and `/etc/containers/registries.conf.d/*.conf`; a
//!   `[[registry]]` with `insecure = true` is reached over plain HTTP (its `location`, host and
//!   port, must match exactly). Every other registry is HTTPS only.
//! - `containers-auth.json(5)`: `$REGISTRY_AUTH_FILE`, else
//!   `$XDG_RUNTIME_DIR/containers/auth.json` (root without it: `/run/containers/0/auth.json`),
//!   `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/…`), `$DOCKER_CONFIG/config.json`
//!   (`~/.docker/config.json`): the first file with an entry for the registry wins.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// What the environment's files say about registries.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Registries reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Credentials by registry host.
    pub credentials: BTreeMap<String, Credentials>,
}

impl Settings {
    /// Read the files of this process's environment.
    pub fn from_env() -> Settings {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let home = env("HOME").map(PathBuf::from);
        let mut conf = Vec::new();
        match env("CONTAINERS_REGISTRIES_CONF") {
            Some(f) => conf.push(PathBuf::from(f)),
            None => {
                conf.push(PathBuf::from("/etc/containers/registries.conf"));
                if let Ok(d) = std::fs::read_dir("/etc/containers/registries.conf.d") {
                    let mut extra: Vec<PathBuf> = d
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                        .collect();
                    extra.sort();
                    conf.extend(extra);
                }
            }
        }
        let mut insecure = Vec::new();
        for file in conf {
            if let Ok(text) = std::fs::read_to_string(&file) {
                insecure.extend(insecure_registries(&text));
            }
        }
        let mut auth = Vec::new();
        match env("REGISTRY_AUTH_FILE") {
            Some(f) => auth.push(PathBuf::from(f)),
            None => {
                match env("XDG_RUNTIME_DIR") {
                    Some(d) => auth.push(PathBuf::from(d).join("containers/auth.json")),
                    None => auth.push(PathBuf::from(format!(
                        "/run/containers/{}/auth.json",
                        uid().unwrap_or(0)
                    ))),
                }
                match (env("XDG_CONFIG_HOME"), &home) {
                    (Some(c), _) => auth.push(PathBuf::from(c).join("containers/auth.json")),
                    (None, Some(h)) => auth.push(h.join(".config/containers/auth.json")),
                    _ => {}
                }
                match (env("DOCKER_CONFIG"), &home) {
                    (Some(d), _) => auth.push(PathBuf::from(d).join("config.json")),
                    (None, Some(h)) => auth.push(h.join(".docker/config.json")),
                    _ => {}
                }
            }
        }
        let mut credentials = BTreeMap::new();
        for file in auth {
            if let Ok(text) = std::fs::read_to_string(&file) {
                for (host, c) in auths(&text) {
                    credentials.entry(host).or_insert(c);
                }
            }
        }
        Settings {
            insecure,
            credentials,
        }
    }

    /// Whether `registry` is reached over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure.iter().any(|r| r == registry)
    }
}

fn uid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `location`s of the `[[registry]]` tables marked `insecure = true`.
pub fn insecure_registries(toml_text: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        registry: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        location: String,
        #[serde(default)]
        insecure: bool,
    }
    toml::from_str::<File>(toml_text)
        .map(|f| {
            f.registry
                .into_iter()
                .filter(|e| e.insecure && !e.location.is_empty())
                .map(|e| e.location)
                .collect()
        })
        .unwrap_or_default()
}

/// The `auths` of an auth file: host → credentials (`auth` is base64 `user:password`).
pub fn auths(json: &str) -> Vec<(String, Credentials)> {
    use base64::Engine as _;
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    let Some(map) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, entry) in map {
        let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()) else {
            continue;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            continue;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            continue;
        };
        let Some((username, password)) = text.split_once(':') else {
            continue;
        };
        // Keys may be URLs (`https://index.docker.io/v1/`): the host is what counts.
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or(key)
            .to_owned();
        let host = if host == "index.docker.io" {
            super::reference::DOCKER_HUB.to_owned()
        } else {
            host
        };
        out.push((
            host,
            Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries_and_auth_files_read_as_the_engines_read_them() {
        let conf = "unqualified-search-registries = [\"docker.io\"]\n\n[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n\n[[registry]]\nlocation = \"ghcr.io\"\n";
        assert_eq!(insecure_registries(conf), ["127.0.0.1:5000"]);
        assert!(insecure_registries("not toml [[[").is_empty());
        let json = r#"{"auths":{"127.0.0.1:5000":{"auth":"Y2k6czNjcmV0"},"https://index.docker.io/v1/":{"auth":"dTpw"},"bad":{"auth":"!!"}}}"#;
        let found = auths(json);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, "127.0.0.1:5000");
        assert_eq!(found[0].1.username, "ci");
        assert_eq!(found[0].1.password, "s3cret");
        assert_eq!(found[1].0, "docker.io");
        assert!(!format!("{:?}", found[0].1).contains("s3cret"));
    }
}
