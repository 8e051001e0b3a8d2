//! Writing to a registry: copying an image by digest from one repository (or registry) to
//! another — its manifest bytes unchanged, every blob moved by digest and checked — and
//! attaching an artifact (signed provenance) to an image as an OCI referrer.
//!
//! A copy never rebuilds or re-encodes anything: the manifest pushed is the source's bytes,
//! so its digest is the source's, and the copy is checked by asking the destination for that
//! digest afterwards. Blobs travel through a temporary file whose SHA-256 is checked before
//! upload. Within one registry a blob is mounted from the source repository instead.
//!
//! Referrers: the manifest of an artifact names its subject. A registry that implements the
//! referrers API says so (`OCI-Subject` header) when the manifest is pushed; for one that
//! does not (the CNCF distribution 2.x), the referrers tag schema is kept as the OCI
//! distribution specification describes it: an index tagged `sha256-<hex of the subject>`
//! lists the artifacts that refer to it.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{Value, json};

use super::{Client, Fetched, Reference, RegistryError, Served, header, sha256_hex, short};

/// The media types of a manifest that lists other manifests.
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// The media types of an image manifest.
const IMAGE_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// The OCI empty descriptor's media type, and its content (`{}`).
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    /// Manifests pushed (an index and its images count one each).
    pub manifests: usize,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from the source repository (same registry).
    pub mounted: usize,
    /// Blobs the destination had already.
    pub present: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// True when the destination served the digest before anything was copied.
    pub already: bool,
}

impl Client {
    /// Copy the image `from` (pinned to its digest) to `to` (its registry and repository; its
    /// tag, when it has one, is set too), then check that `to` serves that very digest.
    pub fn copy(&self, from: &Reference, to: &Reference) -> Result<Copied, RegistryError> {
        let Some(digest) = from.digest.clone() else {
            return Err(RegistryError::Unsupported {
                registry: from.registry.clone(),
                what: from.to_string(),
                why: "only an image pinned to a digest is copied".into(),
            });
        };
        let target = to.pinned(&digest);
        let mut done = Copied::default();
        if let Fetched::Found(_) = self.fetch_manifest(&target)? {
            done.already = true;
        } else {
            let scratch = tempfile::tempdir().map_err(|e| local("a temporary folder", &e))?;
            self.copy_manifest(from, to, &digest, 0, scratch.path(), &mut done)?;
        }
        if let Some(tag) = &to.tag {
            // The tag follows the copy (the digest is what deploys; the tag is for people).
            let Fetched::Found(m) = self.fetch_manifest(&target)? else {
                return Err(not_served(&target));
            };
            self.put_manifest(to, tag, &m.media_type, &m.bytes)?;
        }
        match self.fetch_manifest(&target)? {
            Fetched::Found(m) if m.digest == digest => Ok(done),
            Fetched::Found(m) => Err(RegistryError::Mismatch {
                registry: to.registry.clone(),
                what: format!("the copy of {from}"),
                expected: digest,
                found: m.digest,
            }),
            Fetched::Missing(_) => Err(not_served(&target)),
        }
    }

    fn copy_manifest(
        &self,
        from: &Reference,
        to: &Reference,
        digest: &str,
        depth: usize,
        scratch: &Path,
        done: &mut Copied,
    ) -> Result<(), RegistryError> {
        let source = from.pinned(digest);
        let Fetched::Found(m) = self.fetch_manifest(&source)? else {
            return Err(not_served(&source));
        };
        let doc: Value =
            serde_json::from_slice(&m.bytes).map_err(|e| RegistryError::Unsupported {
                registry: from.registry.clone(),
                what: source.to_string(),
                why: format!("its manifest is not JSON: {e}"),
            })?;
        let kind = if m.media_type.is_empty() {
            doc["mediaType"].as_str().unwrap_or_default().to_owned()
        } else {
            m.media_type
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        if INDEX_TYPES.contains(&kind.as_str()) && depth == 0 {
            for child in doc["manifests"].as_array().into_iter().flatten() {
                let d = descriptor_digest(child, &source)?;
                if let Fetched::Found(_) = self.fetch_manifest(&to.pinned(&d))? {
                    continue;
                }
                self.copy_manifest(from, to, &d, depth + 1, scratch, done)?;
            }
        } else if IMAGE_TYPES.contains(&kind.as_str()) {
            let blobs = std::iter::once(&doc["config"])
                .chain(doc["layers"].as_array().into_iter().flatten());
            for blob in blobs {
                if blob.get("urls").is_some() {
                    return Err(RegistryError::Unsupported {
                        registry: from.registry.clone(),
                        what: source.to_string(),
                        why: "it has a foreign layer (served from other URLs)".into(),
                    });
                }
                let d = descriptor_digest(blob, &source)?;
                self.copy_blob(from, to, &d, scratch, done)?;
            }
        } else {
            return Err(RegistryError::Unsupported {
                registry: from.registry.clone(),
                what: source.to_string(),
                why: format!("a manifest of type {kind:?} is not copied"),
            });
        }
        self.put_manifest(to, digest, &m.media_type, &m.bytes)?;
        done.manifests += 1;
        Ok(())
    }

    /// Whether the repository of `r` has the blob `digest`.
    pub fn blob_exists(&self, r: &Reference, digest: &str) -> Result<bool, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base(r));
        let resp = self.send(r, "pull", &format!("the blob {digest}"), |agent, auth| {
            let mut req = agent.head(&url);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call()
        })?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(RegistryError::Refused {
                registry: r.registry.clone(),
                status: s,
                what: format!("the blob {digest} in {}", r.name()),
                detail: String::new(),
            }),
        }
    }

    fn copy_blob(
        &self,
        from: &Reference,
        to: &Reference,
        digest: &str,
        scratch: &Path,
        done: &mut Copied,
    ) -> Result<(), RegistryError> {
        if self.blob_exists(to, digest)? {
            done.present += 1;
            return Ok(());
        }
        if from.registry == to.registry && self.mount(from, to, digest)? {
            done.mounted += 1;
            return Ok(());
        }
        let path = scratch.join(digest.replace(':', "-"));
        let size = self.download(from, digest, &path)?;
        self.upload(to, digest, &path)?;
        let _ = std::fs::remove_file(&path);
        done.uploaded += 1;
        done.bytes += size;
        Ok(())
    }

    /// Mount `digest` from `from`'s repository into `to`'s (same registry): true when the
    /// registry did (201), false when it asks for an upload instead.
    fn mount(&self, from: &Reference, to: &Reference, digest: &str) -> Result<bool, RegistryError> {
        let url = format!("{}/blobs/uploads/", self.base(to));
        let resp = self.send(to, "pull,push", "a blob mount", |agent, auth| {
            let mut req = agent
                .post(&url)
                .query("mount", digest)
                .query("from", &from.repository);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send_empty()
        })?;
        Ok(resp.status().as_u16() == 201)
    }

    /// Download the blob `digest` of `from` to `path`, checking its SHA-256; its size.
    fn download(&self, from: &Reference, digest: &str, path: &Path) -> Result<u64, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base(from));
        let what = format!("the blob {digest} of {}", from.name());
        let mut resp = self.send(from, "pull", &what, |agent, auth| {
            let mut req = agent.get(&url);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call()
        })?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(RegistryError::Refused {
                registry: from.registry.clone(),
                status,
                what,
                detail: String::new(),
            });
        }
        let mut file = std::fs::File::create(path).map_err(|e| local(&what, &e))?;
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| RegistryError::Unreachable {
                    registry: from.registry.clone(),
                    detail: format!("reading {what}: {e}"),
                })?;
            if n == 0 {
                break;
            }
            sha2::Digest::update(&mut hasher, &buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| local(&what, &e))?;
            size += n as u64;
        }
        file.sync_all().map_err(|e| local(&what, &e))?;
        let found = format!(
            "sha256:{}",
            sha2::Digest::finalize(hasher)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        if found != digest {
            return Err(RegistryError::Mismatch {
                registry: from.registry.clone(),
                what,
                expected: digest.to_owned(),
                found,
            });
        }
        Ok(size)
    }

    /// Upload the file at `path` as the blob `digest` of `to` (a POST, then one PUT).
    fn upload(&self, to: &Reference, digest: &str, path: &Path) -> Result<(), RegistryError> {
        let what = format!("the upload of {digest} to {}", to.name());
        let location = self.start_upload(to, &what)?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let resp = self.send(to, "pull,push", &what, |agent, auth| {
            let file = std::fs::File::open(path).map_err(ureq::Error::Io)?;
            let mut req = agent
                .put(&url)
                .header("Content-Type", "application/octet-stream");
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send(file)
        })?;
        expect_created(to, resp, &what)
    }

    /// Upload `bytes` as a blob of `to`; its digest.
    fn upload_bytes(&self, to: &Reference, bytes: &[u8]) -> Result<String, RegistryError> {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        if self.blob_exists(to, &digest)? {
            return Ok(digest);
        }
        let what = format!("the upload of {digest} to {}", to.name());
        let location = self.start_upload(to, &what)?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let resp = self.send(to, "pull,push", &what, |agent, auth| {
            let mut req = agent
                .put(&url)
                .header("Content-Type", "application/octet-stream");
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send(bytes)
        })?;
        expect_created(to, resp, &what)?;
        Ok(digest)
    }

    /// Start an upload session; its absolute location.
    fn start_upload(&self, to: &Reference, what: &str) -> Result<String, RegistryError> {
        let url = format!("{}/blobs/uploads/", self.base(to));
        let resp = self.send(to, "pull,push", what, |agent, auth| {
            let mut req = agent.post(&url);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send_empty()
        })?;
        let status = resp.status().as_u16();
        let location = header(&resp, "location");
        let base = self.base(to);
        let origin = base.split("/v2/").next().unwrap_or_default();
        match (status, location) {
            // The upload goes where the registry is, and nowhere else: the credentials for it
            // travel with the request.
            (202, Some(l)) if l.starts_with(&format!("{origin}/")) => Ok(l),
            (202, Some(l)) if l.starts_with('/') && !l.starts_with("//") => {
                Ok(format!("{origin}{l}"))
            }
            (202, Some(l)) => Err(RegistryError::Refused {
                registry: to.registry.clone(),
                status,
                what: what.to_owned(),
                detail: format!(
                    "it sent the upload to {}, which is not {origin}: nothing (and no credential) is sent there",
                    short(&l)
                ),
            }),
            (s, _) => Err(RegistryError::Refused {
                registry: to.registry.clone(),
                status: s,
                what: what.to_owned(),
                detail: "no upload session was opened".into(),
            }),
        }
    }

    /// Push `bytes` as the manifest `reference` (a tag or a digest) of `to`'s repository;
    /// the headers of the answer.
    fn put_manifest(
        &self,
        to: &Reference,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<ureq::http::HeaderMap, RegistryError> {
        let url = format!("{}/manifests/{reference}", self.base(to));
        let what = format!("the manifest {}:{reference}", to.name());
        let resp = self.send(to, "pull,push", &what, |agent, auth| {
            let mut req = agent.put(&url).header("Content-Type", media_type);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send(bytes)
        })?;
        let headers = resp.headers().clone();
        expect_created(to, resp, &what)?;
        Ok(headers)
    }

    /// Attach `content` (of `media_type`) to the image `subject` (pinned to its digest) as an
    /// OCI artifact of `artifact_type`; the artifact manifest's digest.
    pub fn attach(
        &self,
        subject: &Reference,
        artifact_type: &str,
        media_type: &str,
        content: &[u8],
    ) -> Result<String, RegistryError> {
        let Fetched::Found(image) = self.fetch_manifest(subject)? else {
            return Err(not_served(subject));
        };
        let layer = self.upload_bytes(subject, content)?;
        let empty = self.upload_bytes(subject, EMPTY)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_TYPES[0],
            "artifactType": artifact_type,
            "config": {"mediaType": EMPTY_TYPE, "digest": empty, "size": EMPTY.len()},
            "layers": [{"mediaType": media_type, "digest": layer, "size": content.len()}],
            "subject": {
                "mediaType": image.media_type.split(';').next().unwrap_or_default().trim(),
                "digest": image.digest,
                "size": image.bytes.len(),
            },
        });
        // Serialising a JSON value cannot fail.
        let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        let digest = format!("sha256:{}", sha256_hex(&bytes));
        let headers = self.put_manifest(subject, &digest, IMAGE_TYPES[0], &bytes)?;
        if headers.contains_key("oci-subject") {
            return Ok(digest);
        }
        self.add_to_referrers_tag(subject, &image, artifact_type, &digest, bytes.len())?;
        Ok(digest)
    }

    /// The referrers tag schema: add the artifact to the index tagged `sha256-<hex>`.
    fn add_to_referrers_tag(
        &self,
        subject: &Reference,
        image: &Served,
        artifact_type: &str,
        digest: &str,
        size: usize,
    ) -> Result<(), RegistryError> {
        let tag = image.digest.replace(':', "-");
        let mut at_tag = subject.clone();
        at_tag.digest = None;
        at_tag.tag = Some(tag.clone());
        let mut index = match self.fetch_manifest(&at_tag)? {
            Fetched::Found(m) => serde_json::from_slice::<Value>(&m.bytes)
                .ok()
                .filter(|v| v["mediaType"] == INDEX_TYPES[0])
                .unwrap_or_else(empty_index),
            Fetched::Missing(_) => empty_index(),
        };
        let listed = index["manifests"]
            .as_array()
            .is_some_and(|m| m.iter().any(|d| d["digest"] == digest));
        if !listed {
            if let Some(list) = index["manifests"].as_array_mut() {
                list.push(json!({
                    "mediaType": IMAGE_TYPES[0],
                    "digest": digest,
                    "size": size,
                    "artifactType": artifact_type,
                }));
            }
            let bytes = serde_json::to_vec(&index).unwrap_or_default();
            self.put_manifest(subject, &tag, INDEX_TYPES[0], &bytes)?;
        }
        Ok(())
    }
}

fn empty_index() -> Value {
    json!({"schemaVersion": 2, "mediaType": INDEX_TYPES[0], "manifests": []})
}

fn descriptor_digest(d: &Value, of: &Reference) -> Result<String, RegistryError> {
    d["digest"]
        .as_str()
        .filter(|d| super::is_digest(d))
        .map(str::to_owned)
        .ok_or_else(|| RegistryError::Unsupported {
            registry: of.registry.clone(),
            what: of.to_string(),
            why: format!(
                "a descriptor without a sha256 digest: {}",
                short(&d.to_string())
            ),
        })
}

fn expect_created(
    to: &Reference,
    mut resp: ureq::http::Response<ureq::Body>,
    what: &str,
) -> Result<(), RegistryError> {
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    Err(RegistryError::Refused {
        registry: to.registry.clone(),
        status,
        what: what.to_owned(),
        detail: short(&String::from_utf8_lossy(&body)),
    })
}

fn not_served(r: &Reference) -> RegistryError {
    RegistryError::Refused {
        registry: r.registry.clone(),
        status: 404,
        what: r.to_string(),
        detail: "not served".into(),
    }
}

fn local(what: &str, e: &std::io::Error) -> RegistryError {
    RegistryError::Local {
        what: what.to_owned(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// A one-request HTTP server on loopback answering `response`; the request's head.
    fn serve_once(response: String) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handle = std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return String::new();
            };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut stream = stream;
            let _ = stream.write_all(response.as_bytes());
            head
        });
        (port, handle)
    }

    #[test]
    fn an_upload_sent_to_another_host_is_refused_and_nothing_goes_there() {
        let elsewhere = TcpListener::bind("127.0.0.1:0").expect("bind");
        let other = elsewhere.local_addr().expect("addr").port();
        elsewhere.set_nonblocking(true).expect("nonblocking");
        let (port, server) = serve_once(format!(
            "HTTP/1.1 202 Accepted\r\nLocation: http://127.0.0.1:{other}/v2/x/blobs/uploads/1\r\nContent-Length: 0\r\n\r\n"
        ));
        let registry = format!("127.0.0.1:{port}");
        let mut settings = super::super::Settings::default();
        settings.insecure.push(registry.clone());
        let client = Client::new(settings);
        let to = Reference::parse(&format!("{registry}/prod/api:v1")).expect("reference");
        match client.start_upload(&to, "an upload") {
            Err(RegistryError::Refused { detail, .. }) => {
                assert!(
                    detail.contains("which is not http://127.0.0.1:"),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            server
                .join()
                .expect("server")
                .starts_with("POST /v2/prod/api/blobs/uploads/")
        );
        assert!(
            elsewhere.accept().is_err(),
            "a request went to the other host"
        );
        // A path on the registry itself is followed there.
        let (port, server) = serve_once(
            "HTTP/1.1 202 Accepted\r\nLocation: /v2/prod/api/blobs/uploads/2?_state=x\r\nContent-Length: 0\r\n\r\n".into(),
        );
        let registry = format!("127.0.0.1:{port}");
        let mut settings = super::super::Settings::default();
        settings.insecure.push(registry.clone());
        let to = Reference::parse(&format!("{registry}/prod/api:v1")).expect("reference");
        assert_eq!(
            Client::new(settings)
                .start_upload(&to, "an upload")
                .expect("opened"),
            format!("http://{registry}/v2/prod/api/blobs/uploads/2?_state=x")
        );
        server.join().expect("server");
    }
}
