//! SSH signatures: the same signatures `git tag -s` makes with `gpg.format=ssh` (and
//! `ssh-keygen -Y sign`), verified offline against an `allowed_signers` file. Each use has
//! its own namespace, so a signature made for one purpose never counts for another.
//!
//! An unencrypted Ed25519 key — a file, or the key itself in `ATMOS_SIGNING_KEY` — signs in
//! this process: no other process ever sees it or its path. Other keys (encrypted, another
//! algorithm, a public key whose private half is in the agent) go to `ssh-keygen -Y sign`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Namespace of history tags: git's own, so that `git tag -v` verifies them.
pub const TAG_NAMESPACE: &str = "git";
/// Namespace of the identity check a rollout makes before anything runs.
pub const IDENTITY_NAMESPACE: &str = "atmos-deployer@v1";

/// Why signing or verifying failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

/// The environment variable that holds a private key itself (for CI, where secrets are
/// variables): read when signing, never passed to an executor, never written anywhere.
pub const KEY_ENV: &str = "ATMOS_SIGNING_KEY";

/// Which key signs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Key {
    /// A key file: a private key, or a public key whose private half is in the agent.
    Path(std::path::PathBuf),
    /// The private key in an environment variable ([`KEY_ENV`]); a command that needs it
    /// later (publishing kept records again) reads the variable again.
    Env {
        /// The variable.
        env: String,
    },
}

impl Key {
    /// The key in [`KEY_ENV`], when it is set.
    pub fn from_env() -> Option<Key> {
        std::env::var_os(KEY_ENV)
            .filter(|v| !v.is_empty())
            .map(|_| Key::Env {
                env: KEY_ENV.to_owned(),
            })
    }

    /// Whether it can be used now: the file exists, or the variable is set.
    pub fn available(&self) -> Result<(), SignError> {
        match self {
            Key::Path(p) => std::fs::metadata(p)
                .map(|_| ())
                .map_err(|e| SignError(format!("{}: {e}", p.display()))),
            Key::Env { env } => std::env::var_os(env)
                .filter(|v| !v.is_empty())
                .map(|_| ())
                .ok_or_else(|| SignError(format!("{env} is not set"))),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Path(p) => write!(f, "{}", p.display()),
            Key::Env { env } => write!(f, "the key in {env}"),
        }
    }
}

/// Keep this process's memory and environment from other processes of its user (Linux: not
/// dumpable, so `/proc/<pid>/environ` and `/proc/<pid>/mem` are closed to them): a script a
/// rollout runs cannot read the key atmos holds. (A process running as root can read
/// anything; executors that must not see the key run as another user.) Where the system
/// has no such switch, nothing changes.
pub fn protect_process() {
    #[cfg(target_os = "linux")]
    {
        // Best effort by nature: the call cannot fail for a process that may call it.
        let _ = nix::sys::prctl::set_dumpable(false);
    }
}

/// Sign `payload` with `key`; returns the armored signature.
pub fn sign(payload: &[u8], key: &Key, namespace: &str) -> Result<String, SignError> {
    let text = match key {
        Key::Env { env } => Some(
            std::env::var(env)
                .map_err(|_| SignError(format!("{env} is not set (or not UTF-8)")))?,
        ),
        // A file that is not a private key (a public key, whose private half is in the
        // agent) goes to ssh-keygen.
        Key::Path(p) => std::fs::read_to_string(p)
            .ok()
            .filter(|t| t.contains("PRIVATE KEY")),
    };
    match text.as_deref().map(in_process::private_key) {
        Some(Ok(private)) => in_process::sign(&private, payload, namespace),
        Some(Err(why)) if matches!(key, Key::Env { .. }) => Err(SignError(format!(
            "{key}: {why} (it must be an unencrypted OpenSSH Ed25519 private key: ssh-keygen -t ed25519 -N '')"
        ))),
        _ => match key {
            Key::Path(p) => sign_with_ssh_keygen(payload, p, namespace),
            Key::Env { .. } => unreachable!("an environment key is always read above"),
        },
    }
}

/// A raw signature over bytes (what a DSSE envelope carries), and the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSignature {
    /// The key's SHA-256 fingerprint, as `ssh-keygen -l` prints it (`SHA256:…`).
    pub keyid: String,
    /// The Ed25519 signature (64 bytes).
    pub sig: Vec<u8>,
}

/// Sign `payload` itself (no SSH signature envelope, no namespace: the caller's format
/// separates its uses, as DSSE's pre-authentication encoding does) with `key`, which must be
/// an unencrypted Ed25519 private key: raw signatures are made only in this process.
pub fn sign_raw(payload: &[u8], key: &Key) -> Result<RawSignature, SignError> {
    let text =
        match key {
            Key::Env { env } => std::env::var(env)
                .map_err(|_| SignError(format!("{env} is not set (or not UTF-8)")))?,
            Key::Path(p) => std::fs::read_to_string(p)
                .map_err(|e| SignError(format!("{}: {e}", p.display())))?,
        };
    let private = in_process::private_key(&text).map_err(|why| {
        SignError(format!(
            "{key}: {why} (provenance is signed in this process, with an unencrypted OpenSSH Ed25519 private key: ssh-keygen -t ed25519 -N '')"
        ))
    })?;
    use signature::Signer as _;
    let sig: ssh_key::Signature = private
        .try_sign(payload)
        .map_err(|e| SignError(format!("signing failed: {e}")))?;
    Ok(RawSignature {
        keyid: private
            .public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string(),
        sig: sig.as_bytes().to_vec(),
    })
}

/// Check a raw Ed25519 signature `sig` over `payload` against the keys `allowed_signers`
/// allows for `principal` in `namespace` (a line with `namespaces="…"` counts only for those).
/// Such signatures are checked only in this process, so the file must hold plain lines:
/// principals without patterns, at most a `namespaces=` option, Ed25519 keys.
pub fn verify_raw(
    payload: &[u8],
    sig: &[u8],
    principal: &str,
    allowed_signers: &Path,
    namespace: &str,
) -> Result<(), SignError> {
    if !allowed_signers.is_file() {
        return Err(SignError(format!(
            "no allowed_signers file at {}",
            allowed_signers.display()
        )));
    }
    native::verify_raw(payload, sig, principal, allowed_signers, namespace)
}

/// Signing in this process, with the key in memory.
mod in_process {
    use super::SignError;
    use ssh_key::{HashAlg, LineEnding, PrivateKey};

    /// An unencrypted key of an algorithm signed here (Ed25519).
    pub fn private_key(text: &str) -> Result<PrivateKey, String> {
        let key = PrivateKey::from_openssh(text).map_err(|e| e.to_string())?;
        if key.is_encrypted() {
            return Err("the key is encrypted".into());
        }
        if key.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(format!("{} keys are signed by ssh-keygen", key.algorithm()));
        }
        Ok(key)
    }

    pub fn sign(key: &PrivateKey, payload: &[u8], namespace: &str) -> Result<String, SignError> {
        key.sign(namespace, HashAlg::Sha512, payload)
            .and_then(|sig| sig.to_pem(LineEnding::LF))
            .map_err(|e| SignError(format!("signing failed: {e}")))
    }
}

fn sign_with_ssh_keygen(payload: &[u8], key: &Path, namespace: &str) -> Result<String, SignError> {
    let dir = tempfile::tempdir().map_err(|e| SignError(e.to_string()))?;
    let file = dir.path().join("payload");
    std::fs::write(&file, payload).map_err(|e| SignError(e.to_string()))?;
    let out = Command::new("ssh-keygen")
        .env_remove(crate::signing::KEY_ENV)
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SignError(format!("cannot run ssh-keygen: {e}")))?;
    if !out.status.success() {
        return Err(SignError(format!(
            "ssh-keygen could not sign with {}: {}",
            key.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    std::fs::read_to_string(dir.path().join("payload.sig")).map_err(|e| SignError(e.to_string()))
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Result<std::process::Output, SignError> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SignError(format!("cannot run ssh-keygen: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    child
        .wait_with_output()
        .map_err(|e| SignError(e.to_string()))
}

/// Check that `signature` over `payload` was made, in `namespace`, by a key that
/// `allowed_signers` allows for `principal`. Ed25519 signatures against a plain
/// `allowed_signers` file (exact principals, at most a `namespaces=` option) are checked in
/// process — thousands per second, which `verify` over a long history needs; anything else
/// (certificate authorities, validity windows, patterns, other key types) goes to
/// `ssh-keygen -Y verify`, which defines the semantics both follow.
pub fn verify(
    payload: &[u8],
    signature: &str,
    principal: &str,
    allowed_signers: &Path,
    namespace: &str,
) -> Result<(), SignError> {
    if !allowed_signers.is_file() {
        return Err(SignError(format!(
            "no allowed_signers file at {}",
            allowed_signers.display()
        )));
    }
    match native::verify(payload, signature, principal, allowed_signers, namespace) {
        Some(result) => result,
        None => verify_with_ssh_keygen(payload, signature, principal, allowed_signers, namespace),
    }
}

fn not_verified(principal: &str) -> SignError {
    SignError(format!(
        "the signature does not verify for {principal} (altered, forged, or a key not allowed for {principal})"
    ))
}

fn verify_with_ssh_keygen(
    payload: &[u8],
    signature: &str,
    principal: &str,
    allowed_signers: &Path,
    namespace: &str,
) -> Result<(), SignError> {
    let dir = tempfile::tempdir().map_err(|e| SignError(e.to_string()))?;
    let sig = dir.path().join("payload.sig");
    std::fs::write(&sig, signature).map_err(|e| SignError(e.to_string()))?;
    let out = run_with_stdin(
        Command::new("ssh-keygen")
            .env_remove(crate::signing::KEY_ENV)
            .args(["-Y", "verify", "-n", namespace, "-f"])
            .arg(allowed_signers)
            .args(["-I", principal, "-s"])
            .arg(&sig),
        payload,
    )?;
    if out.status.success() {
        Ok(())
    } else {
        Err(not_verified(principal))
    }
}

/// The in-process path of [`verify`].
mod native {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::SystemTime;

    use ssh_key::{Algorithm, PublicKey, SshSig};

    use super::{SignError, not_verified};

    /// One line of an `allowed_signers` file.
    pub(super) struct Entry {
        principals: Vec<String>,
        namespaces: Option<Vec<String>>,
        key: PublicKey,
    }

    /// A parsed file, or `None` when it holds something only `ssh-keygen` interprets.
    type Parsed = Option<Arc<Vec<Entry>>>;
    type Key = (PathBuf, u64, Option<SystemTime>);

    /// Files read once per process, keyed by path, size and modification time.
    fn cache() -> &'static Mutex<HashMap<Key, Parsed>> {
        static CACHE: OnceLock<Mutex<HashMap<Key, Parsed>>> = OnceLock::new();
        CACHE.get_or_init(|| Mutex::new(HashMap::new()))
    }

    fn load(path: &Path) -> Parsed {
        let meta = std::fs::metadata(path).ok()?;
        let key = (path.to_owned(), meta.len(), meta.modified().ok());
        let mut cache = cache().lock().ok()?;
        if let Some(p) = cache.get(&key) {
            return p.clone();
        }
        let parsed = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| parse(&text))
            .map(Arc::new);
        cache.insert(key, parsed.clone());
        parsed
    }

    fn plain(pattern: &str) -> bool {
        !pattern.is_empty() && !pattern.contains(['*', '?', '!'])
    }

    /// Parse `principals [namespaces="a,b"] <key type> <base64> [comment]` lines; `None` for
    /// any other option, pattern or key type.
    pub(super) fn parse(text: &str) -> Option<Vec<Entry>> {
        let mut out = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut tokens = line.split_whitespace();
            let principals: Vec<String> = tokens.next()?.split(',').map(str::to_owned).collect();
            if !principals.iter().all(|p| plain(p)) {
                return None;
            }
            let mut next = tokens.next()?;
            let mut namespaces = None;
            if let Some(list) = next
                .strip_prefix("namespaces=\"")
                .and_then(|r| r.strip_suffix('"'))
            {
                let list: Vec<String> = list.split(',').map(str::to_owned).collect();
                // A namespace never holds a quote or `=`: such a token is several options
                // (`namespaces="a",valid-before="…"`), which only ssh-keygen reads.
                if !list
                    .iter()
                    .all(|n| plain(n) && !n.contains(['"', '=', ' ']))
                {
                    return None;
                }
                namespaces = Some(list);
                next = tokens.next()?;
            }
            let data = tokens.next()?;
            let key = PublicKey::from_openssh(&format!("{next} {data}")).ok()?;
            if key.algorithm() != Algorithm::Ed25519 {
                return None;
            }
            out.push(Entry {
                principals,
                namespaces,
                key,
            });
        }
        Some(out)
    }

    /// [`super::verify_raw`]: every key allowed for `principal` in `namespace` is tried.
    pub(super) fn verify_raw(
        payload: &[u8],
        sig: &[u8],
        principal: &str,
        allowed_signers: &Path,
        namespace: &str,
    ) -> Result<(), SignError> {
        use signature::Verifier as _;
        let Some(entries) = load(allowed_signers) else {
            return Err(SignError(format!(
                "{} holds lines only ssh-keygen reads (patterns, options other than namespaces=, certificate authorities or keys other than Ed25519); raw signatures are checked with plain lines only",
                allowed_signers.display()
            )));
        };
        let Ok(sig) = ssh_key::Signature::new(Algorithm::Ed25519, sig.to_vec()) else {
            return Err(SignError("not an Ed25519 signature (64 bytes)".into()));
        };
        let verified = entries
            .iter()
            .filter(|e| {
                e.principals
                    .iter()
                    .any(|p| crate::identity::same(p, principal))
                    && e.namespaces
                        .as_ref()
                        .is_none_or(|n| n.iter().any(|x| x == namespace))
            })
            .any(|e| e.key.key_data().verify(payload, &sig).is_ok());
        if verified {
            Ok(())
        } else {
            Err(not_verified(principal))
        }
    }

    /// `None`: not decidable here, ask `ssh-keygen`.
    pub(super) fn verify(
        payload: &[u8],
        signature: &str,
        principal: &str,
        allowed_signers: &Path,
        namespace: &str,
    ) -> Option<Result<(), SignError>> {
        let entries = load(allowed_signers)?;
        let Ok(sig) = SshSig::from_pem(signature.trim()) else {
            return Some(Err(SignError("not an SSH signature".into())));
        };
        if sig.algorithm() != Algorithm::Ed25519 {
            return None;
        }
        let allowed = entries.iter().find(|e| {
            e.principals
                .iter()
                .any(|p| crate::identity::same(p, principal))
                && e.namespaces
                    .as_ref()
                    .is_none_or(|n| n.iter().any(|x| x == namespace))
                && e.key.key_data() == sig.public_key()
        });
        let Some(entry) = allowed else {
            return Some(Err(not_verified(principal)));
        };
        Some(
            entry
                .key
                .verify(namespace, payload, &sig)
                .map_err(|_| not_verified(principal)),
        )
    }
}

/// The principals `allowed_signers` allows for the key that made `signature` (whether or not
/// the signature is valid; check it with [`verify`]).
pub fn principals(signature: &str, allowed_signers: &Path) -> Result<Vec<String>, SignError> {
    let dir = tempfile::tempdir().map_err(|e| SignError(e.to_string()))?;
    let sig = dir.path().join("payload.sig");
    std::fs::write(&sig, signature).map_err(|e| SignError(e.to_string()))?;
    let out = Command::new("ssh-keygen")
        .env_remove(crate::signing::KEY_ENV)
        .args(["-Y", "find-principals", "-f"])
        .arg(allowed_signers)
        .arg("-s")
        .arg(&sig)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SignError(format!("cannot run ssh-keygen: {e}")))?;
    if !out.status.success() {
        return Ok(Vec::new());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Split a tag or commit message into the signed payload and its SSH signature, as git does
/// (the signature block starts at the last `-----BEGIN SSH SIGNATURE-----` line).
pub fn split_signed(text: &[u8]) -> Option<(&[u8], &str)> {
    const BEGIN: &[u8] = b"-----BEGIN SSH SIGNATURE-----";
    let at = text.windows(BEGIN.len()).rposition(|w| w == BEGIN)?;
    if at > 0 && text[at - 1] != b'\n' {
        return None;
    }
    let signature = std::str::from_utf8(&text[at..]).ok()?;
    Some((&text[..at], signature))
}

/// The key configured for signing: `--signing-key`, else the key in `ATMOS_SIGNING_KEY`,
/// else git's `user.signingkey` (a path, or `key::<public key>` which is written to a
/// temporary file by the caller's git — here only paths are taken).
pub fn configured_key(explicit: Option<&Path>, git_signing_key: Option<String>) -> Option<Key> {
    explicit
        .map(|p| Key::Path(p.to_owned()))
        .or_else(Key::from_env)
        .or_else(|| {
            git_signing_key
                .filter(|k| !k.starts_with("key::"))
                .map(|k| match (k.strip_prefix("~/"), std::env::var_os("HOME")) {
                    (Some(rest), Some(home)) => Path::new(&home).join(rest),
                    _ => std::path::PathBuf::from(&k),
                })
                .map(Key::Path)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_text_splits_at_the_signature() {
        let text = b"object abc\n\nmessage\n-----BEGIN SSH SIGNATURE-----\nxyz\n-----END SSH SIGNATURE-----\n";
        let (payload, sig) = split_signed(text).expect("signed");
        assert_eq!(payload, b"object abc\n\nmessage\n");
        assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----"));
        assert!(split_signed(b"no signature here\n").is_none());
    }

    #[test]
    fn sign_and_verify_round_trip_with_a_real_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("id");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen");
        assert!(made.success());
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
        let signers = dir.path().join("allowed_signers");
        std::fs::write(&signers, format!("alice@example.com {public}")).expect("write");
        let sig = sign(b"hello", &Key::Path(key.clone()), IDENTITY_NAMESPACE).expect("sign");
        // Signed here, it is byte for byte what ssh-keygen makes (Ed25519 is deterministic).
        assert_eq!(
            sig,
            sign_with_ssh_keygen(b"hello", &key, IDENTITY_NAMESPACE).expect("ssh-keygen")
        );
        verify(
            b"hello",
            &sig,
            "alice@example.com",
            &signers,
            IDENTITY_NAMESPACE,
        )
        .expect("valid");
        assert!(
            verify(
                b"hellO",
                &sig,
                "alice@example.com",
                &signers,
                IDENTITY_NAMESPACE
            )
            .is_err()
        );
        assert!(
            verify(
                b"hello",
                &sig,
                "bob@example.com",
                &signers,
                IDENTITY_NAMESPACE
            )
            .is_err()
        );
        assert!(verify(b"hello", &sig, "alice@example.com", &signers, TAG_NAMESPACE).is_err());
        assert_eq!(
            principals(&sig, &signers).expect("find"),
            vec!["alice@example.com"]
        );
    }

    #[test]
    fn the_in_process_check_agrees_with_ssh_keygen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = |name: &str| {
            let path = dir.path().join(name);
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&path)
                .status()
                .expect("ssh-keygen");
            assert!(made.success());
            let public = std::fs::read_to_string(path.with_extension("pub")).expect("pub");
            (path, public.trim().to_owned())
        };
        let (alice, alice_pub) = key("alice");
        let (mallory, _) = key("mallory");
        let signers = dir.path().join("allowed_signers");
        std::fs::write(
            &signers,
            format!(
                "# team\nalice@example.com,al@example.com {alice_pub}\nbob@example.com namespaces=\"file\" {alice_pub}\n"
            ),
        )
        .expect("write");
        assert!(native::parse(&std::fs::read_to_string(&signers).expect("read")).is_some());
        let by_alice = sign(b"hello", &Key::Path(alice), TAG_NAMESPACE).expect("sign");
        let by_mallory = sign(b"hello", &Key::Path(mallory), TAG_NAMESPACE).expect("sign");
        let cases = [
            (
                b"hello".as_slice(),
                &by_alice,
                "alice@example.com",
                TAG_NAMESPACE,
            ),
            (b"hello", &by_alice, "al@example.com", TAG_NAMESPACE),
            (b"hellO", &by_alice, "alice@example.com", TAG_NAMESPACE),
            (b"hello", &by_alice, "bob@example.com", TAG_NAMESPACE),
            (b"hello", &by_alice, "alice@example.com", IDENTITY_NAMESPACE),
            (b"hello", &by_mallory, "alice@example.com", TAG_NAMESPACE),
        ];
        let mut accepted = 0;
        for (payload, sig, who, ns) in cases {
            let native = native::verify(payload, sig, who, &signers, ns).expect("decided here");
            let reference = verify_with_ssh_keygen(payload, sig, who, &signers, ns);
            assert_eq!(native.is_ok(), reference.is_ok(), "{who} {ns} {payload:?}");
            accepted += usize::from(native.is_ok());
        }
        assert_eq!(
            accepted, 2,
            "alice under both of her principals, nothing else"
        );
        // A pattern is left to ssh-keygen.
        assert!(native::parse("*@example.com ssh-ed25519 AAAA\n").is_none());
        // So is a namespaces option run together with others (an expired `valid-before` must
        // never be read as a namespace list that happens to name ours).
        for options in [
            r#"namespaces="x",valid-before="20200101",atmos-provenance@v1,y="z""#,
            r#"namespaces="git,atmos-provenance@v1",valid-after="20200101""#,
        ] {
            let line = format!("ci@example.com {options} {alice_pub}\n");
            assert!(native::parse(&line).is_none(), "{line}");
        }
    }
}
