//! SSH signatures, through `ssh-keygen -Y sign|verify|find-principals` (OpenSSH ≥ 8.2): the
//! same signatures `git tag -s` makes with `gpg.format=ssh`, verified offline against an
//! `allowed_signers` file. Each use has its own namespace, so a signature made for one
//! purpose never counts for another.

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

/// Sign `payload` with the SSH key at `key` (a private key, or a public key whose private
/// half is in the agent); returns the armored signature.
pub fn sign(payload: &[u8], key: &Path, namespace: &str) -> Result<String, SignError> {
    let dir = tempfile::tempdir().map_err(|e| SignError(e.to_string()))?;
    let file = dir.path().join("payload");
    std::fs::write(&file, payload).map_err(|e| SignError(e.to_string()))?;
    let out = Command::new("ssh-keygen")
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
/// `allowed_signers` allows for `principal`.
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
    let dir = tempfile::tempdir().map_err(|e| SignError(e.to_string()))?;
    let sig = dir.path().join("payload.sig");
    std::fs::write(&sig, signature).map_err(|e| SignError(e.to_string()))?;
    let out = run_with_stdin(
        Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", namespace, "-f"])
            .arg(allowed_signers)
            .args(["-I", principal, "-s"])
            .arg(&sig),
        payload,
    )?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SignError(format!(
            "the signature does not verify for {principal} (altered, forged, or a key not allowed for {principal})"
        )))
    }
}

/// The principals `allowed_signers` allows for the key that made `signature` (whether or not
/// the signature is valid; check it with [`verify`]).
pub fn principals(signature: &str, allowed_signers: &Path) -> Result<Vec<String>, SignError> {
    let dir = tempfile::tempdir().map_err(|e| SignError(e.to_string()))?;
    let sig = dir.path().join("payload.sig");
    std::fs::write(&sig, signature).map_err(|e| SignError(e.to_string()))?;
    let out = Command::new("ssh-keygen")
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

/// The key configured for signing: `--signing-key`, else git's `user.signingkey` (a path, or
/// `key::<public key>` which is written to a temporary file by the caller's git — here only
/// paths are taken).
pub fn configured_key(
    explicit: Option<&Path>,
    git_signing_key: Option<String>,
) -> Option<std::path::PathBuf> {
    explicit.map(Path::to_owned).or_else(|| {
        git_signing_key
            .filter(|k| !k.starts_with("key::"))
            .map(|k| match (k.strip_prefix("~/"), std::env::var_os("HOME")) {
                (Some(rest), Some(home)) => Path::new(&home).join(rest),
                _ => std::path::PathBuf::from(&k),
            })
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
        let sig = sign(b"hello", &key, IDENTITY_NAMESPACE).expect("sign");
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
}
