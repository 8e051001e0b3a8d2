//! Image references as engines write them: `[registry/]repository[:tag][@sha256:…]`.

use super::error::RegistryError;

/// Docker Hub, where a reference without a registry points.
pub const DOCKER_HUB: &str = "docker.io";

/// One image reference, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry's host (and port): `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// The repository in it: `org/app` (`library/nginx` on Docker Hub).
    pub repository: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest (`sha256:<64 hex>`), if any.
    pub digest: Option<String>,
}

impl Reference {
    /// Parse `text` as engines do: the first segment is a registry when it has a `.` or a `:`
    /// or is `localhost`; otherwise the image is on Docker Hub.
    pub fn parse(text: &str) -> Result<Reference, RegistryError> {
        let bad = |why: &str| RegistryError::BadReference {
            reference: text.to_owned(),
            why: why.to_owned(),
        };
        let text = text.trim();
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("an image reference is one word"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                if !is_digest(d) {
                    return Err(bad("a digest is sha256: and 64 lowercase hex digits"));
                }
                (r, Some(d.to_owned()))
            }
            None => (text, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path)
            }
            _ => (DOCKER_HUB.to_owned(), rest),
        };
        // A tag is after the last `:` of the last segment (a port is in the registry).
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_owned())),
            _ => (path, None),
        };
        if repository.is_empty()
            || !repository.split('/').all(|s| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            })
        {
            return Err(bad(
                "a repository is lowercase letters, digits, `.`, `_`, `-` in `/`-separated parts",
            ));
        }
        if tag.as_deref().is_some_and(|t| {
            t.is_empty()
                || t.len() > 128
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        }) {
            return Err(bad("a tag is at most 128 letters, digits, `.`, `_`, `-`"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The same image pinned to `digest`.
    pub fn pinned(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host the registry's API answers on (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What a manifest request names: the digest when there is one, else the tag (else
    /// `latest`).
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether `d` is `sha256:` and 64 lowercase hex digits.
pub fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_as_engines_read_them() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases = [
            ("nginx", DOCKER_HUB, "library/nginx", None, None),
            ("org/app:v1", DOCKER_HUB, "org/app", Some("v1"), None),
            (
                "127.0.0.1:5000/shop/api:abc123",
                "127.0.0.1:5000",
                "shop/api",
                Some("abc123"),
                None,
            ),
            ("localhost/app", "localhost", "app", None, None),
            (
                "ghcr.io/org/app@D",
                "ghcr.io",
                "org/app",
                None,
                Some(d.as_str()),
            ),
        ];
        for (text, registry, repository, tag, digest) in cases {
            let r = Reference::parse(&text.replace('D', &d)).expect(text);
            assert_eq!(r.registry, registry, "{text}");
            assert_eq!(r.repository, repository, "{text}");
            assert_eq!(r.tag.as_deref(), tag, "{text}");
            assert_eq!(r.digest.as_deref(), digest, "{text}");
        }
        for bad in [
            "",
            "Org/App",
            "a b",
            "x@sha256:short",
            "ghcr.io/",
            "app:bad tag",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Reference::parse("127.0.0.1:5000/a:t")
                .expect("ref")
                .pinned(&d)
                .to_string(),
            format!("127.0.0.1:5000/a:t@{d}")
        );
    }
}
