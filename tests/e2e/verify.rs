//! Verifiable records, with real `ssh-keygen` keys and a bare remote guarded by `atmos
//! deployment verify --pre-receive`: an honest signed flow passes `verify` and the hook; each
//! forgery is caught by `verify` in a clone and refused by the hook.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::support::{Run, args, atmos_cmd, git_in};

const DEPLOYMENT: &str = r#"deployment:
  name: svc
  components:
    script:
      a:
        settings:
          script: {apply: "echo deploying a"}
  targets:
    dev: {}
    staging:
      promotion:
        from: dev
        deployers: {from_groups: [release], require_signed: true}
    prod:
      promotion:
        from: staging
        requires_approval: true
        approvals: {from_groups: [sre]}
        deployers: {from_groups: [release], require_signed: true}
"#;

/// A bare `origin` with the hook installed, a seed commit with the rules, and keys for alice
/// (release, sre), bob (sre), carol (no group) and mallory (no allowed key).
struct World {
    dir: TempDir,
    keys: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        std::fs::create_dir_all(&keys).expect("mkdir");
        let mut signers = String::new();
        for name in ["alice", "bob", "carol", "mallory"] {
            let key = keys.join(name);
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&key)
                .status()
                .expect("ssh-keygen");
            assert!(made.success());
            if name != "mallory" {
                let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
                signers.push_str(&format!("{name}@example.com {}\n", public.trim()));
            }
        }
        let origin = dir.path().join("origin.git");
        git_in(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", "origin.git"],
        );
        crate::support::install_guard(&origin);

        let seed = dir.path().join("seed");
        std::fs::create_dir_all(seed.join("deployments")).expect("mkdir");
        std::fs::write(seed.join("deployments/svc.yaml"), DEPLOYMENT).expect("write");
        std::fs::write(
            seed.join("atmos.yaml"),
            "git:\n  remote: origin\napprovers:\n  groups:\n    release: [alice@example.com]\n    sre: [alice@example.com, bob@example.com]\n  allowed_signers: allowed_signers\n",
        )
        .expect("write");
        std::fs::write(seed.join("allowed_signers"), signers).expect("write");
        git_in(&seed, &["init", "-q", "-b", "main"]);
        git_in(&seed, &["add", "-A"]);
        git_in(&seed, &["commit", "-q", "-m", "rules"]);
        git_in(
            &seed,
            &["push", "-q", origin.to_str().expect("utf-8"), "main"],
        );
        World { dir, keys }
    }

    fn key(&self, name: &str) -> String {
        self.keys.join(name).to_str().expect("utf-8").to_owned()
    }

    fn origin(&self) -> PathBuf {
        self.dir.path().join("origin.git")
    }

    /// A clone acting as `who`'s machine or CI runner, signing with `who`'s key.
    fn clone(&self, name: &str, who: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        git_in(
            self.dir.path(),
            &[
                "clone",
                "-q",
                &format!("file://{}", self.origin().display()),
                name,
            ],
        );
        for (k, v) in [
            ("user.email", format!("{who}@example.com")),
            ("user.name", who.to_owned()),
            ("gpg.format", "ssh".to_owned()),
            ("user.signingkey", self.key(who)),
        ] {
            git_in(&path, &["config", k, &v]);
        }
        path
    }

    fn atmos(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = atmos_cmd(dir);
        cmd.args(args).env_remove("ATMOS_ACTOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("atmos"))
    }
}

/// The honest flow: alice rolls out to dev and staging, bob approves, alice promotes to prod.
fn ship(w: &World, alice: &Path) -> String {
    let a = |line: &'static str| w.atmos(alice, &args(line), &[]);
    a("deployment rollout svc --target dev").code(0);
    a("deployment rollout svc --target staging --promote-from dev").code(0);
    let bob = w.clone(&format!("bob-{}", rand_suffix()), "bob");
    w.atmos(
        &bob,
        &args("deployment approve svc --target prod --promote-from staging --signing-key")
            .into_iter()
            .chain([w.key("bob").as_str()])
            .collect::<Vec<_>>(),
        &[],
    )
    .code(0);
    a("deployment rollout svc --target prod --promote-from staging").code(0);
    git_in(alice, &["rev-parse", "HEAD"])
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// The newest history tag of `target`/a in `dir`.
fn newest_tag(dir: &Path, target: &str) -> String {
    git_in(
        dir,
        &[
            "tag",
            "-l",
            "--sort=refname",
            &format!("atmos/deployments/svc/{target}/a/*"),
        ],
    )
    .lines()
    .last()
    .expect("a tag")
    .to_owned()
}

/// The message of a record, without its signature.
fn record_message(dir: &Path, tag: &str) -> String {
    let raw = git_in(dir, &["cat-file", "tag", tag]);
    let body = raw.split_once("\n\n").expect("header").1;
    match body.find("-----BEGIN SSH SIGNATURE-----") {
        Some(at) => body[..at].to_owned(),
        None => format!("{body}\n"),
    }
}

/// Write a history tag by hand (`key`: sign it as `git tag -s` does), its record's
/// `timestamp` made to match the time in its name, as atmos writes them; the history's
/// chain ref is moved to it, as a forger who wants it read would.
fn forge(dir: &Path, name: &str, commit: &str, message: &str, key: Option<&str>) {
    let segment = name.rsplit('/').next().expect("segment");
    let (date, time) = segment.split_once('T').expect("time");
    let stamp = format!("{date}T{}", time.replace('-', ":"));
    let message: String = message
        .lines()
        .map(|l| {
            if l.starts_with("timestamp: ") {
                format!("timestamp: {stamp}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let file = dir.join(".forged-message");
    std::fs::write(&file, message).expect("write");
    let mut cmd = vec!["-c".to_owned(), "gpg.format=ssh".to_owned()];
    if let Some(k) = key {
        cmd.extend(["-c".to_owned(), format!("user.signingkey={k}")]);
    }
    cmd.extend(
        [
            "tag",
            if key.is_some() { "-s" } else { "-a" },
            "--cleanup=verbatim",
            "-F",
            file.to_str().expect("utf-8"),
            name,
            commit,
        ]
        .map(str::to_owned),
    );
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    git_in(dir, &refs);
    std::fs::remove_file(&file).expect("rm");
    let history = name.rsplit_once('/').expect("segment").0;
    let chain = history.replacen("atmos/deployments/", "refs/atmos/chains/", 1);
    let tag = git_in(dir, &["rev-parse", &format!("refs/tags/{name}")]);
    git_in(dir, &["update-ref", &chain, &tag]);
}

/// The refspecs that push a forged record and the chain ref moved to it.
fn forged_push(name: &str) -> String {
    let history = name.rsplit_once('/').expect("segment").0;
    format!(
        "refs/tags/{name} {}",
        history.replacen("atmos/deployments/", "refs/atmos/chains/", 1)
    )
}

/// Push `refspec` to origin; returns (success, stderr).
/// (Several refspecs, separated by spaces, are pushed at once.)
fn push(dir: &Path, refspec: &str) -> (bool, String) {
    let out = Command::new("git")
        .args(["push", "origin"])
        .args(refspec.split(' '))
        .current_dir(dir)
        .output()
        .expect("push");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn verify(w: &World, dir: &Path) -> Run {
    w.atmos(dir, &args("deployment verify svc"), &[])
}

/// `verify` in `dir` finds `kind` on `reference`, and pushing `refspec` is refused for it.
fn caught(w: &World, dir: &Path, kind: &str, reference: &str, refspec: &str) {
    let run = verify(w, dir);
    run.code(3);
    let doc = w
        .atmos(dir, &args("deployment verify svc --format json"), &[])
        .json();
    let problems = doc["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == kind && p["reference"] == reference),
        "verify did not report {kind} on {reference}: {doc:#}"
    );
    let (ok, stderr) = push(dir, refspec);
    assert!(!ok, "the hook accepted {refspec}");
    assert!(
        stderr.contains("atmos: push refused")
            && stderr.contains(reference)
            && stderr.contains(&format!("[{kind}]")),
        "{stderr}"
    );
}

#[test]
fn an_honest_signed_flow_verifies_and_passes_the_hook() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    ship(&w, &alice);
    let run = verify(&w, &alice);
    run.code(0).stdout_has(&[
        "Verified 6 record(s) and 3 state ref(s) of svc by the rules of refs/remotes/origin/main",
        "signed and verified: 6",
        "✓ No problems found",
    ]);
    // One target alone still judges its promotions by the source's records.
    w.atmos(&alice, &args("deployment verify svc --target prod"), &[])
        .code(0)
        .stdout_has(&["Verified 2 record(s) and 1 state ref(s)"]);
    // A fresh clone sees the same, from the remote alone.
    let auditor = w.clone("auditor", "carol");
    w.atmos(&auditor, &args("deployment verify --remote origin"), &[])
        .code(0);
    // git itself verifies the records, with the same allowed signers.
    let tag = newest_tag(&alice, "prod");
    let out = Command::new("git")
        .args([
            "-c",
            "gpg.ssh.allowedSignersFile=allowed_signers",
            "tag",
            "-v",
            &tag,
        ])
        .current_dir(&alice)
        .output()
        .expect("git tag -v");
    assert!(
        out.status.success(),
        "git tag -v: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Good \"git\" signature for alice@example.com")
    );
    // Each record names the one before it.
    git_in(&alice, &["commit", "-q", "--allow-empty", "-m", "v2"]);
    git_in(&alice, &["push", "-q", "origin", "HEAD:main"]);
    w.atmos(&alice, &args("deployment rollout svc --target dev"), &[])
        .code(0);
    // From the chain ref back: outcome, intent, outcome, intent — numbered 4 to 1, each
    // naming the one before it, the first naming none.
    let mut at = Some(git_in(
        &alice,
        &["rev-parse", "refs/atmos/chains/svc/dev/a"],
    ));
    let mut seen = Vec::new();
    while let Some(oid) = at {
        let body = git_in(&alice, &["cat-file", "tag", &oid]);
        let field = |name: &str| {
            body.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_owned)
        };
        seen.push((
            field("sequence").expect("numbered"),
            field("status").expect("status"),
        ));
        at = field("previous_record");
    }
    let expected: Vec<(String, String)> = [
        ("4", "success"),
        ("3", "started"),
        ("2", "success"),
        ("1", "started"),
    ]
    .iter()
    .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
    .collect();
    assert_eq!(seen, expected);
    verify(&w, &alice).code(0);
}

#[test]
fn a_spoofed_or_unauthorised_deployer_is_stopped_before_anything_runs() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    w.atmos(&alice, &args("deployment rollout svc --target dev"), &[])
        .code(0);
    // mallory claims to be alice: her key is not alice's.
    let mallory = w.clone("mallory", "mallory");
    let run = w.atmos(
        &mallory,
        &args("deployment rollout svc --target staging --promote-from dev"),
        &[("ATMOS_ACTOR", "alice@example.com")],
    );
    run.code(3)
        .stdout_has(&["staging requires a proven identity, and alice@example.com is not proven"]);
    // carol has an allowed key but is not in release.
    let carol = w.clone("carol", "carol");
    w.atmos(
        &carol,
        &args("deployment rollout svc --target staging --promote-from dev"),
        &[],
    )
    .code(3)
    .stdout_has(&[
        "carol@example.com (from git user.email) may not deploy to staging: deployers are release",
    ]);
    assert!(
        git_in(
            &alice,
            &[
                "ls-remote",
                "origin",
                "refs/tags/atmos/deployments/svc/staging/*"
            ]
        )
        .is_empty(),
        "nothing was recorded for staging"
    );
}

#[test]
fn forgeries_are_caught_by_verify_and_refused_by_the_hook() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    let v1 = ship(&w, &alice);
    git_in(
        &alice,
        &[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "v2, never run anywhere",
        ],
    );
    git_in(&alice, &["push", "-q", "origin", "HEAD:main"]);
    let v2 = git_in(&alice, &["rev-parse", "HEAD"]);
    let prod_tag = newest_tag(&alice, "prod");
    let honest = record_message(&alice, &prod_tag);
    let prod_oid = git_in(&alice, &["rev-parse", &prod_tag]);
    // A prod record of v2, written now, naming the honest one as previous.
    let now = jiff::Timestamp::now();
    let forged_name = |s: &str| {
        let at = now + jiff::SignedDuration::from_secs(s.parse::<i64>().expect("n"));
        format!(
            "atmos/deployments/svc/prod/a/{}",
            at.strftime("%Y-%m-%dT%H-%M-%SZ")
        )
    };
    let sequence: u64 = honest
        .lines()
        .find_map(|l| l.strip_prefix("sequence: "))
        .and_then(|n| n.parse().ok())
        .expect("a numbered record");
    let forged_body = honest
        .replace(&v1, &v2)
        .replace(
            &format!(
                "previous_record: {}",
                honest
                    .lines()
                    .find_map(|l| l.strip_prefix("previous_record: "))
                    .unwrap_or("x")
            ),
            &format!("previous_record: {prod_oid}"),
        )
        .replace(
            &format!("sequence: {sequence}\n"),
            &format!("sequence: {}\n", sequence + 1),
        );
    let scratch = |name: &str| {
        let d = w.clone(name, "alice");
        git_in(&d, &["fetch", "-q", "origin", "refs/atmos/*:refs/atmos/*"]);
        d
    };

    // 1. A hand-moved state ref.
    let d = scratch("state");
    git_in(
        &d,
        &["update-ref", "refs/atmos/deployments/svc/prod/a", &v2],
    );
    caught(
        &w,
        &d,
        "state_ref_mismatch",
        "refs/atmos/deployments/svc/prod/a",
        &format!("{v2}:refs/atmos/deployments/svc/prod/a"),
    );

    // 2. An unsigned record in a target that requires signed deployers.
    let d = scratch("unsigned");
    forge(&d, &forged_name("1"), &v2, &forged_body, None);
    caught(
        &w,
        &d,
        "unsigned",
        &format!("refs/tags/{}", forged_name("1")),
        &forged_push(&forged_name("1")),
    );

    // 3. Signed by a key not allowed for the deployer it names (mallory as alice).
    let d = scratch("wrong-key");
    forge(
        &d,
        &forged_name("2"),
        &v2,
        &forged_body,
        Some(&w.key("mallory")),
    );
    caught(
        &w,
        &d,
        "bad_signature",
        &format!("refs/tags/{}", forged_name("2")),
        &forged_push(&forged_name("2")),
    );

    // 3b. Signed with carol's own allowed key, as carol, who is not a deployer of prod.
    let d = scratch("not-a-deployer");
    let as_carol = forged_body.replace(
        "deployed_by: alice@example.com",
        "deployed_by: carol@example.com",
    );
    assert_ne!(as_carol, forged_body);
    forge(&d, &forged_name("4"), &v2, &as_carol, Some(&w.key("carol")));
    caught(
        &w,
        &d,
        "not_a_deployer",
        &format!("refs/tags/{}", forged_name("4")),
        &forged_push(&forged_name("4")),
    );

    // 4. A prod record, properly signed by alice, of a commit that never succeeded in
    // staging and that nobody in sre approved (carol's approval does not count).
    let d = scratch("never-in-staging");
    w.atmos(
        &d,
        &args("deployment approve svc --target prod --git-sha")
            .into_iter()
            .chain([v2.as_str()])
            .collect::<Vec<_>>(),
        &[("ATMOS_ACTOR", "carol@example.com")],
    )
    .code(0);
    forge(
        &d,
        &forged_name("3"),
        &v2,
        &forged_body,
        Some(&w.key("alice")),
    );
    caught(
        &w,
        &d,
        "promotion_without_source",
        &format!("refs/tags/{}", forged_name("3")),
        &forged_push(&forged_name("3")),
    );
    let doc = w
        .atmos(&d, &args("deployment verify svc --format json"), &[])
        .json();
    assert!(
        doc["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["kind"] == "approvals_not_met"
                && p["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("carol@example.com does not count: not in sre"))),
        "{doc:#}"
    );

    // 5. A deleted history tag.
    let d = scratch("deleted");
    git_in(&d, &["tag", "-d", &prod_tag]);
    let run = verify(&w, &d);
    run.code(3).stdout_has(&[
        "refs/atmos/deployments/svc/prod/a",
        "no success record in prod",
    ]);
    let (ok, stderr) = push(&d, &format!(":refs/tags/{prod_tag}"));
    assert!(
        !ok && stderr.contains("history tags are deleted only once the archive ledger holds them"),
        "{stderr}"
    );

    // 6. Rewriting the approvals notes (dropping bob's approval) is refused too.
    let d = scratch("notes");
    git_in(
        &d,
        &[
            "fetch",
            "-q",
            "origin",
            "refs/notes/atmos/*:refs/notes/atmos/*",
        ],
    );
    git_in(
        &d,
        &["notes", "--ref", "atmos/svc/approvals", "remove", &v1],
    );
    let (ok, stderr) = push(&d, "refs/notes/atmos/svc/approvals");
    assert!(
        !ok && stderr.contains("removes a line from the note"),
        "{stderr}"
    );

    // 7. A rollback, properly signed by alice, to a commit prod never ran: the guard, which
    // reads a history only as far back as a new record's checks need, searches it to its
    // start for an earlier run of that commit, finds none, and refuses.
    let d = scratch("rollback-never-ran");
    let rollback_body: String = forged_body
        .lines()
        .filter(|l| {
            !l.starts_with("promoted_from:")
                && !l.starts_with("promoted_at:")
                && !l.starts_with("source_record:")
        })
        .map(|l| {
            if l.starts_with("status: ") {
                format!("status: rollback\nrollback_of: {v1}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(
        rollback_body.contains("status: rollback"),
        "{rollback_body}"
    );
    forge(
        &d,
        &forged_name("5"),
        &v2,
        &rollback_body,
        Some(&w.key("alice")),
    );
    caught(
        &w,
        &d,
        "rollback_never_ran",
        &format!("refs/tags/{}", forged_name("5")),
        &forged_push(&forged_name("5")),
    );

    // The remote holds none of it, and still verifies.
    let auditor = w.clone("auditor", "carol");
    w.atmos(&auditor, &args("deployment verify --remote origin"), &[])
        .code(0);
}

fn git_stdin(dir: &Path, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_hook_refuses_refs_that_do_not_fit_the_layout_and_replayed_records() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    let v1 = ship(&w, &alice);
    let refused = |refspec: &str, why: &str| {
        let (ok, stderr) = push(&alice, refspec);
        assert!(!ok, "the hook accepted {refspec}");
        assert!(stderr.contains(why), "{refspec}: {stderr}");
    };
    // Names too short for the layout would block the real refs beneath them.
    refused(
        &format!("{v1}:refs/atmos/deployments/svc/prod"),
        "is not refs/atmos/deployments/<deployment>/<target>/<component>",
    );
    refused(
        &format!("{v1}:refs/tags/atmos/deployments/svc/prod/a"),
        "is not refs/tags/atmos/deployments/<deployment>/<target>/<component>/<UTC time>",
    );
    // A state ref at something other than a commit; a record that is not a tag object.
    let blob = git_stdin(&alice, &["hash-object", "-w", "--stdin"], "not a commit\n");
    refused(
        &format!("{blob}:refs/atmos/deployments/svc/qa/a"),
        "which is not a commit",
    );
    refused(
        &format!("{blob}:refs/notes/atmos/svc/sbom"),
        "which is not a notes commit",
    );
    // A signed record copied under a newer name.
    let prod = newest_tag(&alice, "prod");
    let oid = git_in(&alice, &["rev-parse", &prod]);
    let later = format!(
        "atmos/deployments/svc/prod/a/{}",
        (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5))
            .strftime("%Y-%m-%dT%H-%M-%SZ")
    );
    refused(
        &format!("{oid}:refs/tags/{later}"),
        "a record copied under another name",
    );
    // Two copies of one note, laid out so that readers could disagree on which is the note.
    git_in(
        &alice,
        &[
            "fetch",
            "-q",
            "origin",
            "refs/notes/atmos/*:refs/notes/atmos/*",
        ],
    );
    let notes = git_in(&alice, &["rev-parse", "refs/notes/atmos/svc/approvals"]);
    let approved = git_in(
        &alice,
        &["notes", "--ref", "atmos/svc/approvals", "list", &v1],
    );
    let one = git_stdin(
        &alice,
        &["mktree"],
        &format!("100644 blob {approved}\t{}\n", &v1[1..]),
    );
    let two = git_stdin(
        &alice,
        &["mktree"],
        &format!("100644 blob {approved}\t{}\n", &v1[2..]),
    );
    let root = git_stdin(
        &alice,
        &["mktree"],
        &format!(
            "040000 tree {one}\t{}\n040000 tree {two}\t{}\n",
            &v1[..1],
            &v1[..2]
        ),
    );
    let odd = git_in(&alice, &["commit-tree", &root, "-p", &notes, "-m", "notes"]);
    refused(
        &format!("{odd}:refs/notes/atmos/svc/approvals"),
        "has no place in a notes tree",
    );
    // None of it landed.
    let auditor = w.clone("auditor", "carol");
    w.atmos(&auditor, &args("deployment verify --remote origin"), &[])
        .code(0);
}

#[test]
fn policies_see_whether_the_deployer_proved_their_identity() {
    let f = crate::rollout::Fixture::new();
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("dev");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "dev", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    f.repo.write_file(
        "allowed_signers",
        format!("dev@example.com {}\n", public.trim()),
    );
    f.repo.write_file(
        "atmos.yaml",
        "gates:\n  policies: [rules]\napprovers:\n  allowed_signers: allowed_signers\n",
    );
    f.repo.write_file(
        "rules/proven.rego",
        "package team.proven\n\ndeny contains {\"msg\": \"staging needs a proven deployer\", \"code\": \"UNPROVEN\"} if {\n  input.target.name == \"staging\"\n  not input.identity.verified\n}\n",
    );
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&args("--target staging --promote-from dev"))
        .code(3)
        .stdout_has(&["staging needs a proven deployer [UNPROVEN]"]);
    let doc = f
        .rollout(&args(
            "--target staging --promote-from dev --plan --format json",
        ))
        .json();
    assert_eq!(doc["plan"]["proof"]["verified"], false, "{doc:#}");
    let key = key.to_str().expect("utf-8");
    f.rollout(&[
        "--target",
        "staging",
        "--promote-from",
        "dev",
        "--signing-key",
        key,
    ])
    .code(0);
}

/// Records written --offline while another runner recorded newer ones on the guarded remote
/// take their place after those when they are published — signed again at their new place —
/// and are never refused or set aside: the remote's history holds both runs, and verifies.
#[test]
fn offline_records_take_their_place_after_newer_ones_and_pass_the_guard() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    let bob = w.clone("bob", "bob");
    w.atmos(
        &alice,
        &args("deployment rollout svc --target dev --offline"),
        &[],
    )
    .code(0);
    w.atmos(
        &bob,
        &args("deployment rollout svc --target dev --force"),
        &[],
    )
    .code(0);
    // Alice's next read publishes her kept records first, after bob's.
    let run = w.atmos(&alice, &args("deployment fetch svc"), &[]);
    run.code(0);
    assert!(
        run.stdout.contains("that had not reached origin")
            && run
                .stdout
                .contains("took its place at the end of its history"),
        "{}",
        run.stdout
    );
    let pending = alice.join(".git/atmos/pending");
    let left: Vec<_> = std::fs::read_dir(&pending)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "{left:?}\n{}\n{}",
        run.stdout,
        left.iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<String>()
    );
    // The remote's history: bob's run, then alice's, each an intent and an outcome.
    let auditor = w.clone("auditor", "carol");
    w.atmos(&auditor, &args("deployment fetch svc"), &[])
        .code(0);
    let history = w
        .atmos(
            &auditor,
            &args("deployment history svc --target dev --format json"),
            &[],
        )
        .json();
    let by: Vec<&str> = history["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["component"] == "a")
        .map(|e| e["deployed_by"].as_str().expect("deployer"))
        .collect();
    assert_eq!(by, ["alice@example.com", "bob@example.com"], "{history:#}");
    w.atmos(&auditor, &args("deployment verify svc"), &[])
        .code(0);
    w.atmos(
        &alice,
        &args("deployment rollout svc --target dev --force"),
        &[],
    )
    .code(0);
}

/// A rollout's log is written once, with its record: the guard refuses a line added to it
/// afterwards (a forged "# outcome: Succeeded"), while the honest flow's logs pass.
#[test]
fn the_hook_refuses_a_changed_log() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    w.atmos(&alice, &args("deployment rollout svc --target dev"), &[])
        .code(0);
    let tag = newest_tag(&alice, "dev");
    let object = git_in(&alice, &["rev-parse", &format!("refs/tags/{tag}")]);
    git_in(
        &alice,
        &[
            "notes",
            "--ref",
            "atmos/svc/logs",
            "append",
            "-m",
            "# outcome: Succeeded (appended)",
            &object,
        ],
    );
    let (ok, err) = push(&alice, "refs/notes/atmos/svc/logs");
    assert!(!ok, "a changed log was accepted");
    assert!(err.contains("a rollout's log is written once"), "{err}");
}

/// An automatic rollback after a failed verification reaches a guarded remote with the
/// failure it reverts: the hook accepts both records, and a fresh clone verifies them.
#[test]
fn an_automatic_rollback_passes_the_hook_and_verifies() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    let verified = DEPLOYMENT.replace(
        "script: {apply: \"echo deploying a\"}",
        "script: {apply: \"echo deploying a\", verify: {command: \"test -f ok\", on_failure: rollback}}",
    );
    std::fs::write(alice.join("deployments/svc.yaml"), verified).expect("write");
    std::fs::write(alice.join("ok"), "").expect("write");
    git_in(&alice, &["add", "-A"]);
    git_in(&alice, &["commit", "-q", "-m", "verify a"]);
    let good = git_in(&alice, &["rev-parse", "HEAD"]);
    git_in(&alice, &["push", "-q", "origin", "HEAD:main"]);
    w.atmos(&alice, &args("deployment rollout svc --target dev"), &[])
        .code(0);
    git_in(&alice, &["rm", "-q", "ok"]);
    git_in(&alice, &["commit", "-q", "-m", "break a"]);
    git_in(&alice, &["push", "-q", "origin", "HEAD:main"]);
    let run = w.atmos(&alice, &args("deployment rollout svc --target dev"), &[]);
    run.code(1)
        .stdout_has(&["↺ Automatic rollback: a rolled back to"]);
    assert!(!run.stderr.contains("did not reach"), "{}", run.stderr);
    let auditor = w.clone("auditor-rollback", "carol");
    w.atmos(&auditor, &args("deployment verify --remote origin"), &[])
        .code(0)
        .stdout_has(&["Verified 6 record(s)"]);
    let tags = git_in(
        &auditor,
        &["ls-remote", "origin", "refs/atmos/deployments/svc/dev/a"],
    );
    assert!(tags.starts_with(&good), "{tags}");
}

/// Archiving passes the hook (the ledger and the deletions in one push), keeps every record
/// readable, signed and verified; deleting a tag by hand, or a ledger edited to say something
/// else, is refused.
#[test]
fn archiving_passes_the_hook_and_the_ledger_cannot_be_forged() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    for n in 0..3 {
        std::fs::write(alice.join("change"), format!("{n}")).expect("write");
        git_in(&alice, &["add", "-A"]);
        git_in(&alice, &["commit", "-q", "-m", &format!("change {n}")]);
        git_in(&alice, &["push", "-q", "origin", "HEAD:main"]);
        w.atmos(&alice, &args("deployment rollout svc --target dev"), &[])
            .code(0);
    }
    ship(&w, &alice);
    let before = verify(&w, &alice);
    before.code(0);
    let total = |dir: &Path| {
        w.atmos(
            dir,
            &args("deployment history svc --limit 100 --format json"),
            &[],
        )
        .json()["entries"]
            .as_array()
            .map_or(0, Vec::len)
    };
    // Three rollouts to dev (ship's is the same commit: nothing to do), staging, prod.
    let records = total(&alice);
    assert_eq!(records, 5);

    // A tag deleted by hand is refused: the ledger does not hold it.
    let oldest = git_in(&alice, &["tag", "-l", "atmos/deployments/svc/dev/a/*"])
        .lines()
        .next()
        .expect("a dev tag")
        .to_owned();
    let (ok, stderr) = push(&alice, &format!(":refs/tags/{oldest}"));
    assert!(!ok, "the hook let a history tag be deleted");
    assert!(
        stderr.contains("deleted only once the archive ledger holds them"),
        "{stderr}"
    );

    let run = w.atmos(&alice, &args("deployment archive svc --keep 1"), &[]);
    run.code(0).stdout_has(&[
        "Archived (keeping the newest 1 rollout of each target and component as tags; pushed to origin)",
        "svc: 4 records moved into the ledger; 6 tags left, 4 records in the ledger, 10 in all (was 10)",
    ]);
    let doc = w
        .atmos(
            &alice,
            &args("deployment archive svc --keep 1 --format json"),
            &[],
        )
        .json();
    crate::support::check_output_schema("ArchiveReport", &doc);
    assert_eq!(doc["deployments"][0]["archived"], 0, "{doc:#}");
    let remote_tags = git_in(
        &alice,
        &["ls-remote", "origin", "refs/tags/atmos/deployments/svc/*"],
    );
    let remote_tags: Vec<&str> = remote_tags
        .lines()
        .filter(|l| !l.ends_with("^{}"))
        .collect();
    assert_eq!(remote_tags.len(), 6, "{remote_tags:?}");

    // A fresh clone carries only the live tags, and reads the whole history after a fetch.
    let auditor = w.clone("auditor-archive", "carol");
    assert_eq!(
        git_in(&auditor, &["tag", "-l", "atmos/*"]).lines().count(),
        6
    );
    w.atmos(&auditor, &args("deployment fetch svc"), &[])
        .code(0);
    assert_eq!(total(&auditor), records);
    let run = verify(&w, &auditor);
    run.code(0)
        .stdout_has(&["Verified 10 record(s)", "✓ No problems found"]);
    assert_eq!(
        before
            .stdout
            .lines()
            .find(|l| l.contains("signed and verified")),
        run.stdout
            .lines()
            .find(|l| l.contains("signed and verified")),
        "archived records must keep their checked signatures"
    );
    let history = w
        .atmos(
            &auditor,
            &args("deployment history svc --target dev --limit 100 --format json"),
            &[],
        )
        .json();
    assert_eq!(
        history["entries"].as_array().map(Vec::len),
        Some(3),
        "{history:#}"
    );

    // A ledger edited to say another commit was deployed: the line's hash gives it away, and
    // the hook refuses it.
    let head = git_in(&auditor, &["rev-parse", "refs/atmos/ledger/svc"]);
    let file = git_in(&auditor, &["ls-tree", "-r", "--name-only", &head]);
    let file = file.lines().next().expect("a ledger file").to_owned();
    let text = git_in(&auditor, &["show", &format!("{head}:{file}")]);
    let first_commit = text.split("object ").nth(1).expect("object header")[..40].to_owned();
    let forged = text.replacen(&first_commit, &"0".repeat(40), 1);
    let work = w.dir.path().join("forge");
    std::fs::create_dir_all(&work).expect("mkdir");
    std::fs::write(work.join("line"), format!("{forged}\n")).expect("write");
    let blob = git_in(
        &auditor,
        &[
            "hash-object",
            "-w",
            work.join("line").to_str().expect("utf-8"),
        ],
    );
    let (dir, name) = file.rsplit_once('/').expect("path");
    let sub = git_stdin(
        &auditor,
        &["mktree"],
        &format!("100644 blob {blob}\t{name}\n"),
    );
    let mut tree = sub;
    for part in dir.split('/').rev() {
        tree = git_stdin(
            &auditor,
            &["mktree"],
            &format!("040000 tree {tree}\t{part}\n"),
        );
    }
    let commit = git_in(
        &auditor,
        &["commit-tree", &tree, "-p", &head, "-m", "forged"],
    );
    let (ok, stderr) = push(&auditor, &format!("{commit}:refs/atmos/ledger/svc"));
    assert!(!ok, "the hook accepted an edited ledger");
    assert!(stderr.contains("the line was edited"), "{stderr}");
    git_in(&auditor, &["update-ref", "refs/atmos/ledger/svc", &commit]);
    let run = verify(&w, &auditor);
    run.code(3);
    assert!(run.stdout.contains("the line was edited"), "{}", run.stdout);
}

/// The guard's ledger rules beyond the hash: a record filed twice, a month file removed, a
/// ledger commit that adds nothing, and a push that folds away the newest record of a
/// component are refused.
#[test]
fn the_hook_refuses_duplicate_empty_and_newest_record_ledgers() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    for n in 0..3 {
        std::fs::write(alice.join("change"), format!("{n}")).expect("write");
        git_in(&alice, &["add", "-A"]);
        git_in(&alice, &["commit", "-q", "-m", &format!("change {n}")]);
        git_in(&alice, &["push", "-q", "origin", "HEAD:main"]);
        w.atmos(&alice, &args("deployment rollout svc --target dev"), &[])
            .code(0);
    }
    w.atmos(&alice, &args("deployment archive svc --keep 2"), &[])
        .code(0)
        .stdout_has(&["svc: 2 records moved into the ledger"]);
    let ledger = git_in(&alice, &["rev-parse", "refs/atmos/ledger/svc"]);
    let file = git_in(&alice, &["ls-tree", "-r", "--name-only", &ledger]);
    let file = file.lines().next().expect("a ledger file").to_owned();
    let text = git_in(&alice, &["show", &format!("{ledger}:{file}")]);
    let index = w.dir.path().join("ledger-index");
    // git on a private index, to build ledger trees.
    let env_git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&alice)
            .env("GIT_INDEX_FILE", &index)
            .output()
            .expect("git");
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // A ledger commit whose `file` is `content`, on top of the current one.
    let commit_with = |path: &str, content: &str, message: &str| {
        let work = w.dir.path().join("ledger-file");
        std::fs::write(&work, content).expect("write");
        let blob = git_in(
            &alice,
            &["hash-object", "-w", work.to_str().expect("utf-8")],
        );
        env_git(&["read-tree", &ledger]);
        env_git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},{path}"),
        ]);
        let tree = env_git(&["write-tree"]);
        git_in(
            &alice,
            &["commit-tree", &tree, "-p", &ledger, "-m", message],
        )
    };

    // The same record twice.
    let dup = commit_with(&file, &format!("{text}\n{text}\n"), "dup");
    let (ok, stderr) = push(&alice, &format!("{dup}:refs/atmos/ledger/svc"));
    assert!(!ok && stderr.contains("appears more than once"), "{stderr}");

    // A month file removed: the guard reads only the files a ledger commit changes, and a
    // removed one is among them.
    let removed = {
        env_git(&["read-tree", &ledger]);
        env_git(&["update-index", "--force-remove", &file]);
        let tree = env_git(&["write-tree"]);
        git_in(
            &alice,
            &["commit-tree", &tree, "-p", &ledger, "-m", "removed"],
        )
    };
    let (ok, stderr) = push(&alice, &format!("{removed}:refs/atmos/ledger/svc"));
    assert!(
        !ok && stderr.contains("drops the archived record"),
        "{stderr}"
    );

    // A tree that names the month file twice (git writes no such tree, and a server that
    // checks objects refuses it; this one does not): the second entry holds a second copy
    // of the records, where a diff by path may not look.
    let twice = {
        let (dir, name) = file.rsplit_once('/').expect("path");
        let copy = w.dir.path().join("twice");
        std::fs::write(&copy, format!("{text}\n{text}\n")).expect("write");
        let blob = git_in(
            &alice,
            &["hash-object", "-w", copy.to_str().expect("utf-8")],
        );
        let listing = git_in(&alice, &["ls-tree", &format!("{ledger}:{dir}")]);
        let mut tree = git_stdin(
            &alice,
            &["mktree"],
            &format!("{listing}\n100644 blob {blob}\t{name}\n"),
        );
        let parts: Vec<&str> = dir.split('/').collect();
        for depth in (0..parts.len()).rev() {
            let above = parts[..depth].join("/");
            let listing = git_in(&alice, &["ls-tree", &format!("{ledger}:{above}")]);
            let replaced: Vec<String> = listing
                .lines()
                .map(|l| match l.split_once('\t') {
                    Some((_, n)) if n == parts[depth] => format!("040000 tree {tree}\t{n}"),
                    _ => l.to_owned(),
                })
                .collect();
            tree = git_stdin(&alice, &["mktree"], &format!("{}\n", replaced.join("\n")));
        }
        git_in(
            &alice,
            &["commit-tree", &tree, "-p", &ledger, "-m", "twice"],
        )
    };
    let (ok, stderr) = push(&alice, &format!("{twice}:refs/atmos/ledger/svc"));
    assert!(
        !ok && (stderr.contains("more than once") || stderr.contains("drops the archived")),
        "{stderr}"
    );

    // Nothing added.
    let tree = git_in(&alice, &["rev-parse", &format!("{ledger}^{{tree}}")]);
    let empty = git_in(
        &alice,
        &["commit-tree", &tree, "-p", &ledger, "-m", "empty"],
    );
    let (ok, stderr) = push(&alice, &format!("{empty}:refs/atmos/ledger/svc"));
    assert!(!ok && stderr.contains("adds no record"), "{stderr}");

    // The newest record folded away with its tag.
    let newest = git_in(&alice, &["tag", "-l", "atmos/deployments/svc/dev/a/*"])
        .lines()
        .last()
        .expect("a tag")
        .to_owned();
    let oid = git_in(&alice, &["rev-parse", &format!("refs/tags/{newest}")]);
    let object = git_in(&alice, &["cat-file", "tag", &oid]) + "\n";
    let line = serde_json::json!({"tag": newest, "oid": oid, "object": object}).to_string();
    let month = &newest.rsplit('/').next().expect("segment")[..7];
    let path = format!("dev/a/{month}.jsonl");
    let existing = if path == file {
        format!("{text}\n")
    } else {
        String::new()
    };
    let folded = commit_with(&path, &format!("{existing}{line}\n"), "newest");
    let out = Command::new("git")
        .args([
            "push",
            "--atomic",
            "origin",
            &format!("{folded}:refs/atmos/ledger/svc"),
            &format!(":refs/tags/{newest}"),
        ])
        .current_dir(&alice)
        .output()
        .expect("push");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("it stays a tag"),
        "{stderr}"
    );
}

/// The audit is as strict as the gate: the authors a target gained are read with the gate's
/// own code, and a commit among them that cannot be read stops `verify` with an error naming
/// it — it used to be skipped, so a self-approval hidden behind it verified clean.
#[test]
fn verify_fails_closed_on_a_commit_it_cannot_read() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    // A side-branch commit merged into main: off the trusted branch's first-parent history
    // (the rules never come from it), but among the commits prod gains.
    git_in(&alice, &["checkout", "-q", "-b", "side"]);
    git_in(
        &alice,
        &["commit", "-q", "--allow-empty", "-m", "side work"],
    );
    let side = git_in(&alice, &["rev-parse", "HEAD"]);
    git_in(&alice, &["checkout", "-q", "main"]);
    git_in(
        &alice,
        &["merge", "-q", "--no-ff", "-m", "merge side", "side"],
    );
    git_in(&alice, &["push", "-q", "origin", "HEAD:main"]);
    ship(&w, &alice);
    verify(&w, &alice).code(0);

    // An auditor's clone that lacks the side commit's object.
    let auditor = w.clone("auditor", "carol");
    let pack_dir = auditor.join(".git/objects/pack");
    let packs: Vec<PathBuf> = std::fs::read_dir(&pack_dir)
        .expect("packs")
        .map(|e| e.expect("entry").path())
        .collect();
    // Out of the repository first: git does not unpack objects it already has.
    let aside = w.dir.path().join("packs-aside");
    std::fs::create_dir_all(&aside).expect("mkdir");
    for p in &packs {
        std::fs::rename(p, aside.join(p.file_name().expect("name"))).expect("move pack");
    }
    for p in &packs {
        if p.extension().is_some_and(|e| e == "pack") {
            let out = Command::new("git")
                .args(["unpack-objects", "-q"])
                .current_dir(&auditor)
                .stdin(std::fs::File::open(aside.join(p.file_name().expect("name"))).expect("pack"))
                .output()
                .expect("unpack");
            assert!(out.status.success());
        }
    }
    std::fs::remove_file(
        auditor
            .join(".git/objects")
            .join(&side[..2])
            .join(&side[2..]),
    )
    .expect("rm the side commit");
    let run = w.atmos(&auditor, &args("deployment verify svc"), &[]);
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_ne!(run.code, 3, "not a problem found, an error: {}", run.stderr);
    assert!(
        run.stderr.contains(&side[..7]) || run.stderr.contains(&side),
        "the error names the commit it could not read:\n{}",
        run.stderr
    );
}

/// A line added to the builds note names the artifact every target would deploy: where a
/// target requires signatures, the guard takes only lines signed by their builder.
#[test]
fn the_hook_refuses_unsigned_or_forged_build_lines_where_signatures_are_required() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    let sha = git_in(&alice, &["rev-parse", "HEAD"]);
    let payload = format!(
        r#"{{"deployment":"svc","component":"a","git_sha":"{sha}","image":"evil.example.net/backdoor:latest","digest":"sha256:{}","builder":"script","pushed":true,"built_by":"alice@example.com","built_at":"2026-01-01T00:00:00Z","duration_ms":1,"target":"dev"}}"#,
        "e".repeat(64)
    );
    let signed_by = |key: &str| {
        let file = w.dir.path().join("build-payload");
        std::fs::write(&file, &payload).expect("write");
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "atmos-build@v1", "-f", key])
            .arg(&file)
            .status()
            .expect("ssh-keygen")
            .success();
        assert!(ok);
        let sig = std::fs::read_to_string(file.with_extension("sig")).expect("sig");
        std::fs::remove_file(file.with_extension("sig")).expect("rm");
        format!(
            "{},\"signature\":{}}}",
            &payload[..payload.len() - 1],
            serde_json::to_string(&sig).expect("json")
        )
    };
    let attempt = |line: &str| {
        let d = w.clone(&format!("builds-{}", rand_suffix()), "alice");
        git_in(
            &d,
            &[
                "notes",
                "--ref",
                "atmos/svc/builds",
                "add",
                "-m",
                line,
                &sha,
            ],
        );
        push(&d, "refs/notes/atmos/svc/builds")
    };
    let (ok, err) = attempt(&payload);
    assert!(!ok, "an unsigned build line was accepted");
    assert!(
        err.contains("unsigned (a target of svc requires signatures")
            && err.contains("[bad_signature]"),
        "{err}"
    );
    let (ok, err) = attempt(&signed_by(&w.key("mallory")));
    assert!(!ok, "a build line signed by mallory as alice was accepted");
    assert!(err.contains("its signature does not verify"), "{err}");
    let (ok, err) = attempt(&signed_by(&w.key("alice")));
    assert!(ok, "alice's own signed build line: {err}");
}

/// What an older guard (or a write on the server itself) let in, no push can fix: the
/// administrator repairs it in the server's repository, and the repair is logged there.
#[test]
fn an_administrator_repairs_what_the_guard_refuses_and_the_repair_is_logged() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    w.atmos(&alice, &args("deployment rollout svc --target dev"), &[])
        .code(0);
    w.atmos(
        &alice,
        &args("deployment rollout svc --target staging --promote-from dev"),
        &[],
    )
    .code(0);
    let sha = git_in(&alice, &["rev-parse", "HEAD"]);
    let origin = w.origin();
    // Straight into the server's repository, as a guard without these rules let it in.
    let plant = |from: &Path, name: &str| {
        git_in(
            &origin,
            &[
                "fetch",
                "-q",
                from.to_str().expect("utf-8"),
                &format!("+{name}:{name}"),
            ],
        );
    };
    let admin = |args: &[&str]| {
        let mut cmd = crate::support::atmos_cmd(&origin);
        cmd.args(args).env("ATMOS_ACTOR", "admin@example.com");
        Run::from(cmd.output().expect("atmos"))
    };

    // 1. A ref below the approvals notes: every approval and rejection is stuck.
    git_in(
        &alice,
        &[
            "notes",
            "--ref",
            "atmos/svc/approvals/x",
            "add",
            "-m",
            "{}",
            &sha,
        ],
    );
    plant(&alice, "refs/notes/atmos/svc/approvals/x");
    let bob = w.clone("bob", "bob");
    let reject = || {
        w.atmos(
            &bob,
            &[
                "deployment",
                "reject",
                "svc",
                "--target",
                "prod",
                "-m",
                "not today",
                "--signing-key",
                &w.key("bob"),
            ],
            &[],
        )
    };
    assert_ne!(reject().code, 0, "the stray ref blocks the notes ref");
    admin(&[
        "deployment",
        "verify",
        "--repair",
        "refs/notes/atmos/svc/approvals/x",
    ])
    .code(2);
    admin(&[
        "deployment",
        "verify",
        "--repair",
        "refs/notes/atmos/svc/approvals/x",
        "--reason",
        "a stray ref below the approvals blocked every approval",
    ])
    .code(0)
    .stdout_has(&[
        "Repaired refs/notes/atmos/svc/approvals/x: removed",
        "Logged in refs/atmos/audit",
    ]);
    reject().code(0);

    // 2. A NUL line before bob's signed rejection, which readers used to stop at.
    git_in(
        &bob,
        &[
            "fetch",
            "-q",
            "origin",
            "+refs/notes/atmos/*:refs/notes/atmos/*",
        ],
    );
    let note = git_in(
        &bob,
        &["notes", "--ref", "atmos/svc/approvals", "show", &sha],
    );
    let file = w.dir.path().join("nul-note");
    std::fs::write(&file, format!("\u{0}\n{note}\n")).expect("write");
    git_in(
        &bob,
        &[
            "notes",
            "--ref",
            "atmos/svc/approvals",
            "add",
            "-f",
            "-F",
            file.to_str().expect("utf-8"),
            &sha,
        ],
    );
    plant(&bob, "refs/notes/atmos/svc/approvals");
    admin(&[
        "deployment",
        "verify",
        "--repair",
        "refs/notes/atmos/svc/approvals",
        "--reason",
        "a NUL line",
    ])
    .code(0)
    .stdout_has(&[
        "rewrote 1 note (0 removed), keeping every well-formed line",
        "control character",
    ]);
    // A well-formed ref is not the administrator's to remove this way.
    admin(&[
        "deployment",
        "verify",
        "--repair",
        "refs/atmos/deployments/svc/dev/a",
        "--reason",
        "x",
    ])
    .code(2)
    .stderr_has(&["never removed by a repair"]);
    let log = git_in(&origin, &["log", "--format=%B", "refs/atmos/audit"]);
    assert_eq!(
        log.lines().filter(|l| l.starts_with('{')).count(),
        2,
        "{log}"
    );
    assert!(
        log.contains("\"by\":\"admin@example.com\"") && log.contains("a NUL line"),
        "{log}"
    );

    // Bob's signed rejection survived the repair, and still holds.
    w.atmos(
        &alice,
        &args("deployment rollout svc --target prod --promote-from staging"),
        &[],
    )
    .code(3)
    .stdout_has(&["rejected by bob@example.com (not today)"]);
    // The log is the server's: a push can neither write nor remove it.
    let (ok, err) = push(&alice, ":refs/atmos/audit");
    assert!(
        !ok && err.contains("the repair log is written only on the server"),
        "{err}"
    );
}

/// Every namespace is guarded and every size bounded: refs below a notes ref, a lock that is
/// no lease, a note with a NUL or a line past the limit, a record past the limit — refused.
/// A malformed lock that got onto the server anyway never makes a rollout spin: it says what
/// is wrong, `lock status` shows it, and `lock release --force` clears it through the guard.
#[test]
fn the_hook_guards_every_namespace_and_bounds_every_size_and_clients_never_spin() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    let v1 = ship(&w, &alice);
    git_in(
        &alice,
        &[
            "fetch",
            "-q",
            "origin",
            "+refs/notes/atmos/*:refs/notes/atmos/*",
        ],
    );
    let refused = |refspec: &str, why: &str| {
        let (ok, stderr) = push(&alice, refspec);
        assert!(!ok, "the hook accepted {refspec}");
        assert!(stderr.contains(why), "{refspec}: {stderr}");
    };
    let notes = git_in(&alice, &["rev-parse", "refs/notes/atmos/svc/approvals"]);
    for below in ["approvals/x", "logs/x"] {
        refused(
            &format!("{notes}:refs/notes/atmos/svc/{below}"),
            "is not refs/notes/atmos/<deployment>/<approvals|builds|sbom|logs>",
        );
    }
    // A chain ref moved to a record this push does not add (another history's newest):
    // every later honest push of that history would be refused.
    let prod_newest = git_in(&alice, &["rev-parse", "refs/atmos/chains/svc/prod/a"]);
    refused(
        &format!("{prod_newest}:refs/atmos/chains/svc/dev/a"),
        "which is no record this push adds to dev/a",
    );
    // Locks: a blob that is no lease, a commit, another target's lease, a lease too big.
    let blob = |text: &str| git_stdin(&alice, &["hash-object", "-w", "--stdin"], text);
    refused(
        &format!("{}:refs/atmos/locks/svc/prod", blob("garbage")),
        "[malformed]",
    );
    refused(&format!("{v1}:refs/atmos/locks/svc/prod"), "[malformed]");
    let lease = |t: &str, pad: usize| {
        format!(
            r#"{{"deployment":"svc","target":"{t}","holder":"alice@example.com","run":"{}","host":"h","pid":1,"started_at":"2026-01-01T00:00:00Z","expires_at":"2999-01-01T00:00:00Z"}}"#,
            "x".repeat(pad)
        )
    };
    refused(
        &format!("{}:refs/atmos/locks/svc/prod", blob(&lease("dev", 0))),
        "holds the lease of svc/dev, not of svc/prod",
    );
    refused(
        &format!("{}:refs/atmos/locks/svc/prod", blob(&lease("prod", 8192))),
        "[malformed]",
    );
    // Notes: a NUL line kept beside every old line, a line past the limit.
    let note = git_in(
        &alice,
        &["notes", "--ref", "atmos/svc/approvals", "show", &v1],
    );
    let with_note = |text: String| {
        let file = w.dir.path().join("note-file");
        std::fs::write(&file, text).expect("write");
        git_in(
            &alice,
            &[
                "notes",
                "--ref",
                "atmos/svc/approvals",
                "add",
                "-f",
                "-F",
                file.to_str().expect("utf-8"),
                &v1,
            ],
        );
        let commit = git_in(&alice, &["rev-parse", "refs/notes/atmos/svc/approvals"]);
        git_in(
            &alice,
            &["update-ref", "refs/notes/atmos/svc/approvals", &notes],
        );
        commit
    };
    let nul = with_note(format!("\u{0}\n{note}\n"));
    refused(
        &format!("{nul}:refs/notes/atmos/svc/approvals"),
        "holds the control character",
    );
    let long = with_note(format!("{note}\n{}\n", "x".repeat(20_000)));
    refused(
        &format!("{long}:refs/notes/atmos/svc/approvals"),
        "a line is at most",
    );
    // A record past 64 KiB.
    let prod_tag = newest_tag(&alice, "prod");
    let body = record_message(&alice, &prod_tag);
    let big = format!("{body}# {}\n", "y".repeat(70_000));
    let name = format!(
        "atmos/deployments/svc/prod/a/{}",
        (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3))
            .strftime("%Y-%m-%dT%H-%M-%SZ")
    );
    forge(&alice, &name, &v1, &big, Some(&w.key("alice")));
    refused(&forged_push(&name), "[malformed]");

    // A malformed lock on the server (written past the guard): the client says so at once.
    let origin = w.origin();
    let garbage = git_stdin(&origin, &["hash-object", "-w", "--stdin"], "garbage");
    git_in(
        &origin,
        &["update-ref", "refs/atmos/locks/svc/dev", &garbage],
    );
    let started = std::time::Instant::now();
    let run = w.atmos(
        &alice,
        &args("deployment rollout svc --target dev --force --wait-for-lock --timeout 5s"),
        &[],
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "it stopped instead of spinning"
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("refs/atmos/locks/svc/dev") && run.stderr.contains("lock release"),
        "{}",
        run.stderr
    );
    w.atmos(
        &alice,
        &args("deployment lock status svc --target dev"),
        &[],
    )
    .code(0)
    .stdout_has(&["the lock ref does not hold a lease"]);
    w.atmos(
        &alice,
        &args("deployment lock release svc --target dev --force"),
        &[],
    )
    .code(0);
    assert_eq!(git_in(&origin, &["for-each-ref", "refs/atmos/locks/"]), "");
    w.atmos(
        &alice,
        &args("deployment rollout svc --target dev --force"),
        &[],
    )
    .code(0);
}

/// Where a target requires signed deployers, an automatic rollback returns only to a commit
/// with a verified success record there: an unsigned record of a commit that never ran
/// (written beside the history where no guard stops it) is not where it goes.
#[test]
fn an_automatic_rollback_returns_only_to_what_a_verified_record_says_ran() {
    let repo = crate::support::Repo::new();
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("dev");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "dev", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    repo.write(
        "svc.yaml",
        "deployment:\n  name: svc\n  components:\n    script:\n      a:\n        settings:\n          script:\n            apply: 'true'\n            verify: {command: 'test \"$ATMOS_TARGET\" != staging || test -f ok', on_failure: rollback}\n  targets:\n    dev: {}\n    staging:\n      promotion: {from: dev, deployers: {require_signed: true}}\n",
    );
    repo.write_file(
        "atmos.yaml",
        "approvers:\n  allowed_signers: allowed_signers\n",
    );
    repo.write_file(
        "allowed_signers",
        format!("dev@example.com {}", public.trim()),
    );
    repo.write_file("ok", "");
    let v1 = repo.commit("v1");
    repo.git(&["config", "gpg.format", "ssh"]);
    repo.git(&["config", "user.signingkey", key.to_str().expect("utf-8")]);
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(0);
    repo.atmos(&args(
        "deployment rollout svc --target staging --promote-from dev",
    ))
    .code(0);

    // A commit that never ran anywhere, and an unsigned staging record saying it succeeded,
    // at the end of staging's history.
    let side = repo.git(&[
        "commit-tree",
        "HEAD^{tree}",
        "-p",
        "HEAD",
        "-m",
        "never ran",
    ]);
    let tip = repo.git(&["rev-parse", "refs/atmos/chains/svc/staging/a"]);
    let honest = record_message(repo.path(), &tip);
    let sequence: u64 = honest
        .lines()
        .find_map(|l| l.strip_prefix("sequence: "))
        .and_then(|n| n.parse().ok())
        .expect("numbered");
    let forged = honest
        .replace(&v1, &side)
        .lines()
        .filter(|l| !l.starts_with("previous_record: ") && !l.starts_with("sequence: "))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replacen(
            "status: success\n",
            &format!(
                "status: success\nprevious_record: {tip}\nsequence: {}\n",
                sequence + 1
            ),
            1,
        );
    let name = format!(
        "atmos/deployments/svc/staging/a/{}",
        (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2))
            .strftime("%Y-%m-%dT%H-%M-%SZ")
    );
    forge(repo.path(), &name, &side, &forged, None);

    // v2 fails its verification in staging: the rollback goes to v1, which a signed record
    // says ran there, not to the forged commit.
    std::fs::remove_file(repo.path().join("ok")).expect("rm");
    repo.commit("v2");
    repo.atmos(&args("deployment rollout svc --target dev"))
        .code(0);
    let run = repo.atmos(&args(
        "deployment rollout svc --target staging --promote-from dev",
    ));
    run.code(1).stdout_has(&["Automatic rollback"]);
    repo.assert_state("svc", "staging", "a", Some(&v1));
    assert!(!run.stdout.contains(&side[..7]), "{}", run.stdout);
}

/// A signing key that is not the deployer's is said before anything runs — not found later
/// by `verify` on every record, nor by the guard after the executors ran: the records are
/// written unsigned, and a target that requires signed deployers refuses the rollout.
#[test]
fn a_signing_key_not_allowed_for_the_deployer_is_said_before_anything_runs() {
    let w = World::new();
    let d = w.clone("mismatch", "alice");
    git_in(&d, &["config", "user.signingkey", &w.key("mallory")]);
    let run = w.atmos(
        &d,
        &["deployment", "rollout", "svc", "--target", "dev"],
        &[],
    );
    run.code(0);
    assert!(
        run.stderr
            .contains("does not allow for alice@example.com (git user.email)")
            && run.stderr.contains("so they are written unsigned")
            && run.stderr.contains("Sign with alice@example.com's key"),
        "{run:?}"
    );
    // The records reached the guarded remote (unsigned, which dev allows) and verify.
    let newest = newest_tag(&d, "dev");
    assert!(
        !git_in(&d, &["cat-file", "-p", &newest]).contains("BEGIN SSH SIGNATURE"),
        "written unsigned"
    );
    verify(&w, &d).code(0);
    // staging requires signed deployers: refused before anything runs, with the reason.
    let run = w.atmos(
        &d,
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "staging",
            "--promote-from",
            "dev",
        ],
        &[],
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        (run.stdout.clone() + &run.stderr).contains("is not allowed for alice@example.com"),
        "{run:?}"
    );
    // Alice's own key: nothing to say, and the records are hers, signed (dev's unsigned
    // record does not count for staging, so dev runs again first).
    git_in(&d, &["config", "user.signingkey", &w.key("alice")]);
    let run = w.atmos(
        &d,
        &["deployment", "rollout", "svc", "--target", "dev", "--force"],
        &[],
    );
    run.code(0);
    assert!(!run.stderr.contains("does not allow for"), "{run:?}");
    w.atmos(
        &d,
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "staging",
            "--promote-from",
            "dev",
        ],
        &[],
    )
    .code(0);
    verify(&w, &d).code(0);
}

/// A deployment verified clean here is checked next time for what changed since (a verified
/// checkpoint): new records are judged, the rest is not read again. Attacks on the shortcut:
/// an old record replaced under its own name (the chain unchanged), a forged record appended
/// on the chain, a state ref moved by hand, and rewritten approvals — each is still caught.
#[test]
fn a_verified_checkpoint_checks_what_changed_and_still_catches_forgeries() {
    let w = World::new();
    let alice = w.clone("alice", "alice");
    let v1 = ship(&w, &alice);
    verify(&w, &alice)
        .code(0)
        .stdout_has(&["Verified 6 record(s)"]);
    // Nothing changed: nothing read.
    verify(&w, &alice).code(0).stdout_has(&[
        "Verified 0 record(s)",
        "svc: checked what changed since it verified clean here at",
        "(0 histories); --full checks everything",
    ]);
    // An honest rollout: its records are judged, within the history they join.
    w.atmos(
        &alice,
        &args("deployment rollout svc --target dev --force"),
        &[],
    )
    .code(0);
    let run = verify(&w, &alice);
    run.code(0)
        .stdout_has(&["(1 history); --full checks everything"]);
    assert!(
        !run.stdout.contains("Verified 8 record(s)"),
        "{}",
        run.stdout
    );
    // --full reads everything.
    w.atmos(&alice, &args("deployment verify svc --full"), &[])
        .code(0)
        .stdout_has(&["Verified 8 record(s)"]);

    // An old dev record replaced by a forged copy under its own name, the chain untouched.
    let old = git_in(
        &alice,
        &[
            "tag",
            "-l",
            "--sort=refname",
            "atmos/deployments/svc/dev/a/*",
        ],
    )
    .lines()
    .next()
    .expect("a dev record")
    .to_owned();
    let saved = git_in(&alice, &["rev-parse", &format!("refs/tags/{old}")]);
    let body = record_message(&alice, &old).replace("deployed_by: alice", "deployed_by: carol");
    let file = alice.join(".forged");
    std::fs::write(&file, body).expect("write");
    git_in(
        &alice,
        &[
            "tag",
            "-f",
            "-a",
            "--cleanup=verbatim",
            "-F",
            ".forged",
            &old,
            &v1,
        ],
    );
    std::fs::remove_file(&file).expect("rm");
    let run = verify(&w, &alice);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        !run.stdout.contains("checked what changed"),
        "{}",
        run.stdout
    );
    git_in(&alice, &["update-ref", &format!("refs/tags/{old}"), &saved]);
    verify(&w, &alice).code(0);

    // A state ref moved by hand, with nothing else changed.
    let state = "refs/atmos/deployments/svc/prod/a";
    let was = git_in(&alice, &["rev-parse", state]);
    let other = git_in(&alice, &["commit-tree", "HEAD^{tree}", "-m", "by hand"]);
    git_in(&alice, &["update-ref", state, &other]);
    let run = verify(&w, &alice);
    run.code(3)
        .stdout_has(&["refs/atmos/deployments/svc/prod/a"]);
    git_in(&alice, &["update-ref", state, &was]);
    verify(&w, &alice).code(0);

    // A checkpoint that is not one (bytes that are not UTF-8): everything is read again.
    std::fs::write(
        alice.join(".git/atmos/verified/svc.json"),
        b"\xff\xfe{not a checkpoint",
    )
    .expect("write");
    let run = verify(&w, &alice);
    run.code(0).stdout_has(&["Verified 8 record(s)"]);
    assert!(
        !run.stdout.contains("checked what changed"),
        "{}",
        run.stdout
    );

    // Approvals rewritten (a line removed): everything is checked again.
    let approved = git_in(
        &alice,
        &["notes", "--ref", "atmos/svc/approvals", "list", &v1],
    );
    assert!(!approved.is_empty());
    git_in(
        &alice,
        &["notes", "--ref", "atmos/svc/approvals", "remove", &v1],
    );
    let run = verify(&w, &alice);
    run.code(3).stdout_has(&["approval"]);
    assert!(
        !run.stdout.contains("checked what changed"),
        "{}",
        run.stdout
    );
}
