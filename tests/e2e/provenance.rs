//! Signed provenance and promotion across registries, with the real tools: buildah builds
//! and pushes to one CNCF registry (`docker-registry`) on loopback, prod deploys from a second
//! one. Each build carries an in-toto/SLSA provenance in a DSSE envelope signed with the
//! builder's Ed25519 key, checked here by a second implementation (Python's `cryptography`);
//! it is attached to the image as an OCI referrer. Promotion copies the image by digest into
//! prod's registry (checked with skopeo). prod requires verified provenance: an unsigned build,
//! a build signed by a key not allowed for its builder, and a tampered envelope are refused at
//! rollout, by `verify` and by the server guard.

use std::path::Path;
use std::process::Command;

use crate::registry::{Engines, Registry, lines, skopeo};
use crate::support::{Repo, Run};

fn deployment(a: &str, b: &str) -> String {
    format!(
        r#"deployment:
  name: svc
  components:
    nixpack:
      api:
        vars: {{image: {{registry: "{a}", name: shop/api}}}}
        settings:
          nixpack:
            builder: buildah
            path: services/api
            deploy: 'echo "$ATMOS_IMAGE@$ATMOS_IMAGE_DIGEST" >> "$OUT/deployed.$ATMOS_TARGET"'
  targets:
    dev: {{}}
    staging:
      promotion: {{from: dev}}
    prod:
      registry: "{b}/prod"
      promotion:
        from: staging
        provenance: {{required: true, builders: [dev@example.com]}}
"#
    )
}

fn keygen(path: &Path) -> String {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen")
        .success();
    assert!(ok);
    std::fs::read_to_string(path.with_extension("pub"))
        .expect("pub")
        .trim()
        .to_owned()
}

/// The builds note line of `component` at `sha`, newest first.
fn build_lines(repo: &Repo, sha: &str) -> Vec<serde_json::Value> {
    repo.git(&["notes", "--ref", "atmos/svc/builds", "show", sha])
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Verify a DSSE envelope with Python's `cryptography` (an implementation of Ed25519 and of
/// the OpenSSH public key format independent of ours); prints the subject digest and commit.
const PYTHON_VERIFY: &str = r#"
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
env = json.load(open(sys.argv[1]))
key = load_ssh_public_key(open(sys.argv[2], "rb").read())
body = base64.b64decode(env["payload"])
kind = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)
key.verify(base64.b64decode(env["signatures"][0]["sig"]), pae)
statement = json.loads(body)
deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
print("sha256:" + statement["subject"][0]["digest"]["sha256"], deps[0]["digest"]["gitCommit"])
"#;

fn python_verify(envelope: &serde_json::Value, public_key: &Path) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("envelope.json");
    std::fs::write(&file, envelope.to_string()).expect("write");
    Run::from(
        Command::new("python3")
            .arg("-c")
            .arg(PYTHON_VERIFY)
            .arg(&file)
            .arg(public_key)
            .output()
            .expect("python3 with cryptography (.ci/run installs it)"),
    )
}

#[test]
fn images_carry_signed_provenance_and_are_promoted_by_digest_across_registries() {
    let a = Registry::start();
    let b = Registry::start();
    let engines = Engines::for_registries(&[&a, &b]);
    let repo = Repo::new();
    let out = tempfile::tempdir().expect("tempdir");
    let keys = tempfile::tempdir().expect("tempdir");
    let dev_pub = keygen(&keys.path().join("dev"));
    keygen(&keys.path().join("mallory"));
    repo.write_file("allowed_signers", format!("dev@example.com {dev_pub}\n"));
    repo.write_file(
        "atmos.yaml",
        "approvers:\n  allowed_signers: allowed_signers\n",
    );
    repo.write("svc.yaml", deployment(&a.host(), &b.host()));
    repo.write_file("services/api/hello.txt", "v1\n");
    repo.write_file(
        "services/api/Dockerfile",
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    );
    repo.write_file("services/api/requirements.txt", "flask==3.0.0\n");
    let sha = repo.commit("v1");
    let mut env: Vec<(String, String)> = engines.env();
    env.push(("OUT".into(), out.path().display().to_string()));
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = |line: &str| -> Run {
        let args: Vec<&str> = line.split_whitespace().collect();
        repo.atmos_env(&args, &env_ref)
    };
    let dev_key = keys.path().join("dev").display().to_string();
    let mallory_key = keys.path().join("mallory").display().to_string();

    // A signed build: its provenance is recorded with the build and attached in the registry.
    run(&format!(
        "deployment build svc --target dev --signing-key {dev_key}"
    ))
    .code(0)
    .stdout_has(&["provenance signed (attached as sha256:"]);
    let record = build_lines(&repo, &sha).pop().expect("a build");
    let digest = record["digest"].as_str().expect("a digest").to_owned();
    let envelope = record["provenance"].clone();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    // A second implementation verifies the signature and reads the same subject and commit.
    let checked = python_verify(&envelope, &keys.path().join("dev.pub"));
    checked.code(0);
    assert_eq!(checked.stdout.trim(), format!("{digest} {sha}"));
    // ... and refuses the envelope once a byte of the statement changed.
    let mut tampered = envelope.clone();
    let body = String::from_utf8(base64_decode(
        tampered["payload"].as_str().expect("payload"),
    ))
    .expect("utf-8");
    let other = format!("sha256:{}", "e".repeat(64));
    let forged_body = body.replace(&digest[7..], &other[7..]);
    assert_ne!(body, forged_body);
    tampered["payload"] = serde_json::Value::String(base64_encode(forged_body.as_bytes()));
    let refused = python_verify(&tampered, &keys.path().join("dev.pub"));
    assert_ne!(refused.code, 0, "python verified a tampered envelope");
    assert!(
        refused.stderr.contains("InvalidSignature"),
        "{}",
        refused.stderr
    );
    // The registry lists it as a referrer of the image (the referrers tag schema).
    let index: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!(
            "docker://{}/shop/api:{}",
            a.host(),
            digest.replace(':', "-")
        ),
    ]))
    .expect("an index");
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.in-toto+json"
    );
    let referrer: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!(
            "docker://{}/shop/api@{}",
            a.host(),
            index["manifests"][0]["digest"].as_str().expect("digest")
        ),
    ]))
    .expect("a manifest");
    assert_eq!(referrer["subject"]["digest"], digest.as_str());
    assert_eq!(
        referrer["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );

    // dev → staging → prod; prod deploys a copy in its own registry, by the same digest.
    run("deployment rollout svc --target dev").code(0);
    run("deployment rollout svc --target staging --promote-from dev").code(0);
    run("deployment rollout svc --target prod --promote-from staging")
        .code(0)
        .stdout_has(&[&format!(
            "copied to {}/prod/api:{}@{digest}",
            b.host(),
            &sha[..12]
        )]);
    let prod = lines(&out.path().join("deployed.prod"));
    assert_eq!(
        prod,
        [format!("{}/prod/api:{}@{digest}", b.host(), &sha[..12])]
    );
    let served = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{}/prod/api:{}", b.host(), &sha[..12]),
    ]);
    assert_eq!(served, digest, "the copy is the same image, by digest");
    let tag = repo
        .tags("svc", "prod", "api")
        .pop()
        .expect("a prod record");
    let message = repo.tag_message(&tag);
    assert!(
        message.contains(&format!(
            "image_source: {}/shop/api:{}@{digest}\n",
            a.host(),
            &sha[..12]
        )),
        "the record names both references: {message}"
    );
    run("deployment verify svc").code(0);

    // An unsigned build of the next commit reaches staging, and is refused in prod.
    repo.write_file("services/api/hello.txt", "v2\n");
    repo.commit("v2");
    run("deployment build svc --target dev").code(0);
    run("deployment rollout svc --target dev").code(0);
    run("deployment rollout svc --target staging --promote-from dev").code(0);
    let denied = run("deployment rollout svc --target prod --promote-from staging");
    denied.code(3);
    assert!(
        (denied.stdout.clone() + &denied.stderr).contains("carries no provenance"),
        "{denied:?}"
    );
    // Signed by a key not allowed for the builder it names: refused too.
    repo.write_file("services/api/hello.txt", "v3\n");
    let v3 = repo.commit("v3");
    run(&format!(
        "deployment build svc --target dev --signing-key {mallory_key}"
    ))
    .code(0);
    run("deployment rollout svc --target dev").code(0);
    run("deployment rollout svc --target staging --promote-from dev").code(0);
    let denied = run("deployment rollout svc --target prod --promote-from staging");
    denied.code(3);
    assert!(
        (denied.stdout.clone() + &denied.stderr).contains(
            "its signature does not verify: the signature does not verify for dev@example.com"
        ),
        "{denied:?}"
    );
    assert_eq!(
        lines(&out.path().join("deployed.prod")).len(),
        1,
        "prod ran nothing more"
    );
    assert!(build_lines(&repo, &v3)[0]["provenance"].is_object());

    // A record that would not fit in a line of the builds note (a large --context, with the
    // provenance beside it) is refused before anything is built or pushed.
    let before = build_lines(&repo, &v3).len();
    let big = "x".repeat(14_500);
    let refused = run(&format!(
        "deployment build svc --target dev --force --signing-key {dev_key} --context big={big}"
    ));
    refused.code(2).stderr_has(&[
        "the record of api's build would be",
        "holds at most 16384: nothing was built",
        "pass smaller --context values",
    ]);
    assert_eq!(
        build_lines(&repo, &v3).len(),
        before,
        "nothing was recorded"
    );

    // The envelope of what prod runs, altered in the note afterwards: verify reports it.
    let note = repo.git(&["notes", "--ref", "atmos/svc/builds", "show", &sha]);
    let forged_note = note.replace(
        envelope["payload"].as_str().expect("payload"),
        tampered["payload"].as_str().expect("payload"),
    );
    assert_ne!(note, forged_note);
    repo.git(&[
        "notes",
        "--ref",
        "atmos/svc/builds",
        "add",
        "-f",
        "-m",
        &forged_note,
        &sha,
    ]);
    let verify = run("deployment verify svc");
    assert_ne!(verify.code, 0, "{verify:?}");
    assert!(
        (verify.stdout.clone() + &verify.stderr).contains("requires a signed provenance"),
        "{verify:?}"
    );

    // The server guard refuses that note.
    let server = tempfile::tempdir().expect("tempdir");
    let origin = server.path().join("origin.git");
    let made = Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&origin)
        .status()
        .expect("git")
        .success();
    assert!(made);
    crate::support::install_guard(&origin);
    let url = origin.display().to_string();
    let branch = repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]);
    repo.git(&["push", "-q", &url, &format!("HEAD:refs/heads/{branch}")]);
    let pushed = Command::new("git")
        .args(["push", &url, "refs/notes/atmos/svc/builds"])
        .current_dir(repo.path())
        .output()
        .expect("git push");
    let err = String::from_utf8_lossy(&pushed.stderr);
    assert!(
        !pushed.status.success(),
        "the guard accepted a forged provenance"
    );
    let short = &sha[..7];
    assert!(
        err.contains(&format!(
            "the build of api at {short} by dev@example.com: its provenance does not verify: its signature does not verify"
        )),
        "{err}"
    );
    // So are the unsigned build and the one signed by a key not allowed for its builder.
    assert!(
        err.contains(
            "it carries no signed provenance, and a target of the deployment requires one"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "the build of api at {} by dev@example.com: its signature does not verify",
            &v3[..7]
        )),
        "{err}"
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
