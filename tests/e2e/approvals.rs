//! Approvals: recorded as git notes, counted by the rules (quorum, groups, no self-approval,
//! scope, rejections, signatures), waited for, and recorded in the tags.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::rollout::{Fixture, record};
use crate::support::{Background, args, atmos_cmd};

/// dev and staging deployed at v1; prod needs `rules` (YAML flow mapping) from sre.
fn ready(rules: &str) -> (Fixture, String) {
    ready_with(rules, "")
}

/// `ready`, with more `atmos.yaml` settings committed alongside.
fn ready_with(rules: &str, settings: &str) -> (Fixture, String) {
    ready_as(rules, settings, None)
}

/// `ready`, with dev@example.com signing its dev and staging records with a key made in
/// `keys`: a target that requires signed approvals counts only source records whose
/// signatures verify. Returns the `allowed_signers` line that proves dev's records.
fn ready_signing(rules: &str, keys: &std::path::Path) -> (Fixture, String, String) {
    let dev = keygen(keys, "dev");
    let line = format!(
        "dev@example.com {}",
        std::fs::read_to_string(dev.with_extension("pub"))
            .expect("pub")
            .trim()
    );
    let (f, v1) = ready_as(rules, "", Some(&dev));
    // Only the rollouts sign with dev's key: approvals name their own.
    f.repo.git(&["config", "--unset", "user.signingkey"]);
    (f, v1, line)
}

fn ready_as(
    rules: &str,
    settings: &str,
    signing_key: Option<&std::path::Path>,
) -> (Fixture, String) {
    let f = Fixture::new();
    if let Some(key) = signing_key {
        f.repo.git(&["config", "gpg.format", "ssh"]);
        f.repo
            .git(&["config", "user.signingkey", key.to_str().expect("utf-8")]);
    }
    let yaml = std::fs::read_to_string(f.repo.path().join("deployments/svc.yaml")).expect("read");
    f.repo.write(
        "svc.yaml",
        yaml.replace(
            "prod:\n      promotion: {from: staging, requires_approval: true}",
            &format!("prod:\n      promotion: {{from: staging, requires_approval: true, approvals: {rules}}}"),
        ),
    );
    f.repo.write_file(
        "atmos.yaml",
        format!("approvers:\n  groups:\n    sre: [alice@example.com, bob@example.com, dev@example.com]\n  allowed_signers: allowed_signers\n{settings}"),
    );
    let v1 = f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    (f, v1)
}

fn approve(f: &Fixture, who: &str, extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["deployment", "approve", "svc", "--target", "prod"];
    args.extend_from_slice(extra);
    f.repo.atmos_env(&args, &[("ATMOS_ACTOR", who)])
}

fn promote(f: &Fixture, extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["--target", "prod", "--promote-from", "staging"];
    args.extend_from_slice(extra);
    f.rollout(&args)
}

#[test]
fn quorum_groups_and_self_approval() {
    let (f, v1) = ready("{min: 2, from_groups: [sre]}");
    let run = promote(&f, &[]);
    run.code(4);
    run.stdout_has(&["Pending: prod requires 2 approval(s) from sre of"]);
    assert!(
        run.stdout
            .contains("May still approve: alice@example.com, bob@example.com"),
        "the deployer (dev) may not: {}",
        run.stdout
    );
    run.stdout_has(&[
        "Not eligible: dev@example.com (runs this rollout, and authored a commit it carries: a self-approval)",
    ]);
    run.stdout_has(&[&format!(
        "atmos deployment approve svc --target prod --git-sha {v1}"
    )]);

    let ok = approve(&f, "alice@example.com", &["-m", "lgtm"]);
    ok.code(0);
    ok.stdout_has(&[&format!(
        "✓ Approved {} for svc → prod (promotion from staging) as alice@example.com",
        &v1[..7]
    )]);
    // The note is on the commit, one JSON object per line, readable with plain git.
    let note = f
        .repo
        .git(&["notes", "--ref", "atmos/svc/approvals", "show", &v1]);
    let line: serde_json::Value =
        serde_json::from_str(note.lines().next().expect("line")).expect("json line");
    assert_eq!(line["approved_by"], "alice@example.com");
    assert_eq!(line["decision"], "approve");
    assert_eq!(line["target"], "prod");
    assert_eq!(line["git_sha"], v1.as_str());
    assert_eq!(line["promoted_from"], "staging");
    assert_eq!(line["comment"], "lgtm");
    assert!(
        line["approved_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // The deployer approving their own change does not count.
    approve(&f, "dev@example.com", &[]).code(0);
    let run = promote(&f, &[]);
    run.code(4);
    run.stdout_has(&["the approval by dev@example.com does not count: self-approval: the approver is the deployer"]);
    // Someone outside the groups does not count either, and is told so at approve time.
    let outsider = approve(&f, "mallory@example.com", &[]);
    outsider.code(0);
    assert!(
        outsider
            .stderr
            .contains("mallory@example.com is not in sre: this approval will not count"),
        "{}",
        outsider.stderr
    );
    promote(&f, &[]).code(4);

    approve(&f, "bob@example.com", &[]).code(0);
    let run = promote(&f, &[]);
    run.code(0);
    assert!(
        run.stdout
            .contains("builtin/approvals: approved by alice@example.com ("),
        "{}",
        run.stdout
    );
    let r = record(&f.repo, &f.repo.outcomes("svc", "prod", "a")[0]);
    assert_eq!(
        r["metadata"]["approver"],
        "alice@example.com, bob@example.com"
    );
    let decision = r["decisions"]
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["source"] == "builtin/approvals" && d["result"] == "allow")
        .cloned()
        .expect("approval decision");
    assert!(
        decision["message"]
            .as_str()
            .is_some_and(|m| m.contains("alice@example.com") && m.contains("bob@example.com"))
    );
    let status = f.repo.atmos(&args("deployment status svc --target prod"));
    assert!(
        status.stdout.contains("Approved by: alice@example.com ("),
        "{}",
        status.stdout
    );
}

#[test]
fn approvals_count_only_for_their_commit_and_target() {
    let (f, v1) = ready("{min: 1}");
    // For staging, not prod.
    f.repo
        .atmos_env(
            &[
                "deployment",
                "approve",
                "svc",
                "--target",
                "staging",
                "--git-sha",
                &v1,
            ],
            &[("ATMOS_ACTOR", "alice@example.com")],
        )
        .code(0);
    // For prod, but another commit.
    let v2 = f.version("2");
    approve(&f, "alice@example.com", &["--git-sha", &v2]).code(0);
    promote(&f, &[]).code(4);
    approve(&f, "alice@example.com", &["--git-sha", &v1]).code(0);
    promote(&f, &[]).code(0);
}

#[test]
fn a_rejection_blocks_until_the_same_person_approves() {
    let (f, _v1) = ready("{min: 1}");
    approve(&f, "alice@example.com", &[]).code(0);
    let rejected = f.repo.atmos_env(
        &[
            "deployment",
            "reject",
            "svc",
            "--target",
            "prod",
            "-m",
            "error rate up in staging",
        ],
        &[("ATMOS_ACTOR", "bob@example.com")],
    );
    rejected.code(0);
    rejected.stdout_has(&["✓ Rejected"]);
    let run = promote(&f, &[]);
    run.code(3);
    run.stdout_has(&["rejected by bob@example.com (error rate up in staging)"]);
    // Another person's approval does not lift it; bob's does.
    approve(&f, "carol@example.com", &[]).code(0);
    promote(&f, &[]).code(3);
    approve(&f, "bob@example.com", &["-m", "fixed"]).code(0);
    promote(&f, &[]).code(0);
}

/// One person's words on a commit are ordered by their number, never by the clock: an
/// approval and a rejection issued back to back (within one second, or with the second
/// machine's clock behind) are read in the order they were given.
#[test]
fn a_persons_latest_word_is_the_last_given_whatever_the_clock_says() {
    let reject = |f: &Fixture, who: &str| {
        f.repo.atmos_env(
            &[
                "deployment",
                "reject",
                "svc",
                "--target",
                "prod",
                "-m",
                "no",
            ],
            &[("ATMOS_ACTOR", who)],
        )
    };
    // Approve, then reject at once: the rejection stands.
    let (f, _) = ready("{min: 1}");
    approve(&f, "bob@example.com", &[]).code(0);
    reject(&f, "bob@example.com").code(0);
    promote(&f, &[])
        .code(3)
        .stdout_has(&["rejected by bob@example.com (no)"]);
    // Reject, then approve at once: the approval counts.
    let (f, _) = ready("{min: 1}");
    reject(&f, "bob@example.com").code(0);
    approve(&f, "bob@example.com", &[]).code(0);
    promote(&f, &[]).code(0);
    // Reject, then approve from a clock an hour behind: still the approval.
    let (f, _) = ready("{min: 1}");
    reject(&f, "bob@example.com").code(0);
    crate::support::atmos_faketime(
        f.repo.path(),
        "-1h",
        &["deployment", "approve", "svc", "--target", "prod"],
        &[("ATMOS_ACTOR", "bob@example.com")],
    )
    .code(0);
    promote(&f, &[]).code(0);
    let note = f
        .repo
        .git(&["notes", "--ref", "atmos/svc/approvals", "list"]);
    assert!(!note.is_empty());
}

#[test]
fn concurrent_approvals_all_survive_in_one_clone_and_merge_by_union_across_clones() {
    let (f, v1) = ready("{min: 1}");
    let children: Vec<_> = (0..6)
        .map(|i| {
            atmos_cmd(f.repo.path())
                .args(["deployment", "approve", "svc", "--target", "prod"])
                .env("ATMOS_ACTOR", format!("approver{i}@example.com"))
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        assert!(c.wait_with_output().expect("wait").status.success());
    }
    let note = f
        .repo
        .git(&["notes", "--ref", "atmos/svc/approvals", "show", &v1]);
    assert_eq!(note.lines().count(), 6, "{note}");

    // A second clone approves on its own; git's union merge of the notes keeps both sides.
    let other = tempfile::tempdir().expect("tempdir");
    let status = Command::new("git")
        .args(["clone", "-q", f.repo.path().to_str().expect("utf-8"), "."])
        .current_dir(other.path())
        .status()
        .expect("clone");
    assert!(status.success());
    let clone_git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(other.path())
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    clone_git(&["config", "user.email", "ops@example.com"]);
    clone_git(&["config", "user.name", "Ops"]);
    clone_git(&args(
        "fetch -q origin refs/atmos/*:refs/atmos/* refs/notes/*:refs/notes/*",
    ));
    let run = crate::support::atmos_in(other.path(), &args("deployment approve svc --target prod"));
    run.code(0);
    approve(&f, "late@example.com", &[]).code(0);
    clone_git(&[
        "fetch",
        "-q",
        "origin",
        "refs/notes/atmos/svc/approvals:refs/notes/remote-approvals",
    ]);
    clone_git(&args(
        "notes --ref atmos/svc/approvals merge -s cat_sort_uniq refs/notes/remote-approvals",
    ));
    let merged = clone_git(&["notes", "--ref", "atmos/svc/approvals", "show", &v1]);
    assert_eq!(
        merged.lines().count(),
        8,
        "6 + the clone's own + the late one: {merged}"
    );
    for line in merged.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .expect("every merged line is still one record");
    }
}

#[test]
fn waiting_proceeds_when_an_approval_arrives_and_times_out_cleanly_otherwise() {
    let (f, _v1) = ready("{min: 1}");
    let started = Instant::now();
    let run = promote(
        &f,
        &args("--wait-for-approval --timeout 2s --poll-interval 1s"),
    );
    run.code(4);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited the full timeout"
    );
    run.stdout_has(&["… waiting up to 2s for approval of"]);
    run.stdout_has(&["Timed out after --timeout 2s waiting for approval"]);
    assert!(f.repo.tags("svc", "prod", "a").is_empty());

    let mut cmd = atmos_cmd(f.repo.path());
    cmd.args([
        "deployment",
        "rollout",
        "svc",
        "--target",
        "prod",
        "--promote-from",
        "staging",
        "--wait-for-approval",
        "--timeout",
        "60s",
        "--poll-interval",
        "1s",
    ])
    .env("OUT", f.out());
    let mut waiting = Background::spawn(cmd);
    waiting.wait_for_output("waiting up to", Duration::from_secs(30));
    approve(&f, "alice@example.com", &[]).code(0);
    let started = Instant::now();
    let out = waiting.finish();
    let stdout = out.stdout.clone();
    out.code(0);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "proceeded soon after the approval"
    );
    assert!(stdout.contains("new approval records for"), "{stdout}");
    assert!(stdout.contains("✓ Deployment complete"), "{stdout}");
    assert_eq!(f.repo.outcomes("svc", "prod", "a").len(), 1);
}

#[test]
fn manual_approval_is_refused_without_a_terminal() {
    let f = Fixture::new();
    let yaml = std::fs::read_to_string(f.repo.path().join("deployments/svc.yaml")).expect("read");
    f.repo.write(
        "svc.yaml",
        yaml.replace(
            "requires_approval: true}",
            "requires_approval: true, approval_method: manual}",
        ),
    );
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    let run = promote(&f, &[]);
    run.code(4);
    run.stdout_has(&["prod uses approval_method: manual — run this rollout from an interactive terminal to confirm it (CI cannot)."]);

    // A manual confirmation written by hand, as if given at a terminal, does not count: it
    // names no rollout, or not this one.
    let sha = f.repo.git(&["rev-parse", "HEAD"]);
    for rollout in ["", ",\"rollout\":\"1700000000000000000.4242\""] {
        let line = format!(
            "{{\"approved_by\":\"dev@example.com\",\"approved_at\":\"2026-01-01T00:00:00Z\",\"decision\":\"approve\",\"deployment\":\"svc\",\"target\":\"prod\",\"git_sha\":\"{sha}\",\"promoted_from\":\"staging\",\"comment\":\"confirmed interactively\",\"method\":\"manual\"{rollout}}}"
        );
        f.repo.git(&[
            "notes",
            "--ref",
            "atmos/svc/approvals",
            "append",
            "-m",
            &line,
            &sha,
        ]);
        promote(&f, &[]).code(4);
    }
}

fn keygen(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    key
}

#[test]
fn signed_approvals_forged_and_altered_ones_do_not_count() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (f, v1, dev) = ready_signing("{min: 1, require_signed: true}", keys.path());
    let alice = keygen(keys.path(), "alice");
    let mallory = keygen(keys.path(), "mallory");
    let alice_pub = std::fs::read_to_string(alice.with_extension("pub")).expect("pub");
    f.repo.write_file(
        "allowed_signers",
        format!("alice@example.com {}\n{dev}\n", alice_pub.trim()),
    );
    f.repo.commit("allowed signers");

    // Unsigned: refused at approve time, since the target requires signatures and no key is set.
    let unsigned = approve(&f, "alice@example.com", &["--git-sha", &v1]);
    unsigned.code(2);
    assert!(
        unsigned
            .stderr
            .contains("prod requires signed approvals, and no signing key is configured"),
        "{}",
        unsigned.stderr
    );

    // Forged: mallory's key claiming to be alice.
    approve(
        &f,
        "alice@example.com",
        &[
            "--git-sha",
            &v1,
            "--signing-key",
            mallory.to_str().expect("utf-8"),
        ],
    )
    .code(0);
    let run = promote(&f, &[]);
    run.code(4);
    run.stdout_has(&["the approval by alice@example.com does not count: signature: the signature does not verify"]);

    // Genuine, then altered after signing.
    approve(
        &f,
        "alice@example.com",
        &[
            "--git-sha",
            &v1,
            "--signing-key",
            alice.to_str().expect("utf-8"),
            "-m",
            "ok",
        ],
    )
    .code(0);
    let run = promote(&f, &["--plan"]);
    assert!(
        run.stdout.contains("signed) ✓"),
        "a genuine signature counts: {}",
        run.stdout
    );
    let note = f
        .repo
        .git(&["notes", "--ref", "atmos/svc/approvals", "show", &v1]);
    let altered = note.replace(
        "\"comment\":\"ok\"",
        "\"comment\":\"ok, and also deploy on friday\"",
    );
    assert_ne!(altered, note);
    f.repo.git(&[
        "notes",
        "--ref",
        "atmos/svc/approvals",
        "add",
        "-f",
        "-m",
        &altered,
        &v1,
    ]);
    let run = promote(&f, &[]);
    run.code(4);
    run.stdout_has(&["signature: the signature does not verify"]);

    approve(
        &f,
        "alice@example.com",
        &[
            "--git-sha",
            &v1,
            "--signing-key",
            alice.to_str().expect("utf-8"),
        ],
    )
    .code(0);
    promote(&f, &[]).code(0);
}

#[test]
fn a_forged_approval_does_not_cancel_a_real_rejection() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (f, v1, dev) = ready_signing("{min: 1, require_signed: true}", keys.path());
    let alice = keygen(keys.path(), "alice");
    let bob = keygen(keys.path(), "bob");
    let mallory = keygen(keys.path(), "mallory");
    let public = |k: &std::path::Path| {
        std::fs::read_to_string(k.with_extension("pub"))
            .expect("pub")
            .trim()
            .to_owned()
    };
    f.repo.write_file(
        "allowed_signers",
        format!(
            "alice@example.com {}\nbob@example.com {}\n{dev}\n",
            public(&alice),
            public(&bob)
        ),
    );
    f.repo.commit("allowed signers");
    let key = |k: &std::path::Path| k.to_str().expect("utf-8").to_owned();
    let sha = ["--git-sha", v1.as_str()];
    approve(
        &f,
        "alice@example.com",
        &[&sha[..], &["--signing-key", &key(&alice)]].concat(),
    )
    .code(0);
    let mut reject = vec![
        "deployment",
        "reject",
        "svc",
        "--target",
        "prod",
        "-m",
        "no",
    ];
    reject.extend_from_slice(&sha);
    let bob_key = key(&bob);
    reject.extend_from_slice(&["--signing-key", &bob_key]);
    f.repo
        .atmos_env(&reject, &[("ATMOS_ACTOR", "bob@example.com")])
        .code(0);
    promote(&f, &[])
        .code(3)
        .stdout_has(&["rejected by bob@example.com (no)"]);

    // The attack: a later "approval" in bob's name, signed with a key not allowed for bob.
    approve(
        &f,
        "bob@example.com",
        &[&sha[..], &["--signing-key", &key(&mallory)]].concat(),
    )
    .code(0);
    let run = promote(&f, &[]);
    run.code(3).stdout_has(&[
        "rejected by bob@example.com (no)",
        "the approval by bob@example.com does not count: signature",
    ]);

    // An unsigned rejection in carol's name cannot be proven, and still holds (fail closed).
    approve(
        &f,
        "bob@example.com",
        &[&sha[..], &["--signing-key", &bob_key]].concat(),
    )
    .code(0);
    let notes_ref = "atmos/svc/approvals";
    let note = f.repo.git(&["notes", "--ref", notes_ref, "show", &v1]);
    let first = note.lines().next().expect("a record");
    let forged = first
        .replace("alice@example.com", "carol@example.com")
        .replace("\"approve\"", "\"reject\"");
    let forged = match forged.find(",\"signature\"") {
        Some(at) => format!("{}}}", &forged[..at]),
        None => forged,
    };
    f.repo
        .git(&["notes", "--ref", notes_ref, "append", "-m", &forged, &v1]);
    promote(&f, &[])
        .code(3)
        .stdout_has(&["rejected by carol@example.com", "not proven: unsigned"]);
}

#[test]
fn an_unsigned_approval_in_the_name_of_someone_who_signs_is_not_theirs() {
    // Signatures are not required, but bob signs: a later unsigned "approval" in his name,
    // which anyone can write, does not lift his signed rejection.
    let (f, v1) = ready("{min: 1}");
    let keys = tempfile::tempdir().expect("tempdir");
    let bob = keygen(keys.path(), "bob");
    let public = std::fs::read_to_string(bob.with_extension("pub")).expect("pub");
    f.repo.write_file(
        "allowed_signers",
        format!("bob@example.com {}", public.trim()),
    );
    f.repo.commit("allowed signers");
    approve(&f, "alice@example.com", &["--git-sha", &v1]).code(0);
    let bob_key = bob.to_str().expect("utf-8");
    f.repo
        .atmos_env(
            &[
                "deployment",
                "reject",
                "svc",
                "--target",
                "prod",
                "--git-sha",
                &v1,
                "-m",
                "no",
                "--signing-key",
                bob_key,
            ],
            &[("ATMOS_ACTOR", "bob@example.com")],
        )
        .code(0);
    approve(&f, "bob@example.com", &["--git-sha", &v1]).code(0);
    promote(&f, &[]).code(3).stdout_has(&[
        "rejected by bob@example.com (no)",
        "unsigned, but bob@example.com signs their approvals",
    ]);
    // His signed approval does.
    approve(
        &f,
        "bob@example.com",
        &["--git-sha", &v1, "--signing-key", bob_key],
    )
    .code(0);
    promote(&f, &[]).code(0);
}

#[test]
fn an_approval_never_covers_a_commit_beside_the_one_approved() {
    let (f, _) = ready("{min: 1}");
    // a runs a side-branch commit in dev, b a mainline one: neither is in the other's history.
    f.repo.git(&["checkout", "-q", "-b", "side"]);
    let side = f.version("side");
    f.repo.git(&["checkout", "-q", "-"]);
    let main = f.version("main");
    f.rollout(&["--target", "dev", "-c", "a", "--git-sha", &side])
        .code(0);
    f.rollout(&["--target", "dev", "-c", "b", "--git-sha", &main])
        .code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    approve(&f, "alice@example.com", &["--promote-from", "staging"]).code(0);
    let run = promote(&f, &[]);
    run.code(3).stdout_has(&[
        "deploys a commit that is not in the history of",
        "the commit an approval would cover",
        "roll out those components on their own (--component NAME)",
    ]);
    assert!(f.applied("a", "prod").is_empty() && f.applied("b", "prod").is_empty());
}

#[test]
fn on_a_first_rollout_every_author_of_the_history_is_checked_for_self_approval() {
    let (f, _) = ready("{min: 1}");
    // alice wrote an older commit, bob the newest; prod never ran anything.
    let commit_as = |who: &str, v: &str| {
        f.repo.write_file("VERSION", format!("{v}\n"));
        f.repo.git(&["add", "-A"]);
        let out = Command::new("git")
            .args(["commit", "-q", "-m", v])
            .current_dir(f.repo.path())
            .env("GIT_AUTHOR_NAME", who)
            .env("GIT_AUTHOR_EMAIL", format!("{who}@example.com"))
            .env("GIT_COMMITTER_NAME", who)
            .env("GIT_COMMITTER_EMAIL", format!("{who}@example.com"))
            .output()
            .expect("commit");
        assert!(out.status.success());
    };
    commit_as("alice", "2");
    commit_as("bob", "3");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    approve(&f, "alice@example.com", &["--promote-from", "staging"]).code(0);
    promote(&f, &[]).code(4).stdout_has(&[
        "the approval by alice@example.com does not count: self-approval: the approver wrote a commit being deployed",
    ]);
}

/// In CI the actor is the CI's user name (`GITHUB_ACTOR`), while groups list emails: the
/// committed `identities` map one to the other, for approvals and rollouts alike. An
/// uncommitted mapping (someone mapping themselves onto an approver) does nothing, and
/// `ATMOS_ACTOR` is never mapped.
#[test]
fn ci_user_names_count_as_the_identity_the_committed_rules_map_them_to() {
    let (f, v1) = ready_with(
        "{min: 2, from_groups: [sre]}",
        "identities:\n  github:\n    alice-gh: alice@example.com\n",
    );
    let gh = |who: &str, args: &[&str]| {
        f.repo
            .atmos_env(args, &[("GITHUB_ACTOR", who), ("GITHUB_ACTIONS", "true")])
    };
    let approve_args = ["deployment", "approve", "svc", "--target", "prod"];
    gh("alice-gh", &approve_args)
        .code(0)
        .stdout_has(&["as alice@example.com"]);
    let note = f
        .repo
        .git(&["notes", "--ref", "atmos/svc/approvals", "show", &v1]);
    assert!(
        note.contains(r#""approved_by":"alice@example.com""#),
        "{note}"
    );

    // Mallory maps herself onto bob in the work tree: not on the trusted rules, not counted.
    let settings = std::fs::read_to_string(f.repo.path().join("atmos.yaml")).expect("read");
    std::fs::write(
        f.repo.path().join("atmos.yaml"),
        format!("{settings}    mallory-gh: bob@example.com\n"),
    )
    .expect("write");
    gh("mallory-gh", &approve_args)
        .code(0)
        .stdout_has(&["as mallory-gh"])
        .stderr_has(&["mallory-gh is not in sre: this approval will not count"]);
    // ATMOS_ACTOR is what the person typed: kept as given even when a mapping names it.
    let run = f.repo.atmos_env(
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "prod",
            "--promote-from",
            "staging",
            "--plan",
        ],
        &[("ATMOS_ACTOR", "alice-gh"), ("GITHUB_ACTOR", "alice-gh")],
    );
    run.code(4).stdout_has(&["alice-gh (from ATMOS_ACTOR)"]);
    // The rollout run by alice-gh in CI is alice's: she may not count her own approval.
    let run = gh(
        "alice-gh",
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "prod",
            "--promote-from",
            "staging",
            "--plan",
        ],
    );
    run.code(4).stdout_has(&[
        "alice@example.com (from GITHUB_ACTOR alice-gh via identities.github)",
        "0 count",
    ]);
    // Run by the CI bot, alice's approval counts and mallory's does not: 1 of 2.
    gh(
        "ci-bot",
        &[
            "deployment",
            "rollout",
            "svc",
            "--target",
            "prod",
            "--promote-from",
            "staging",
            "--plan",
        ],
    )
    .code(4)
    .stdout_has(&["ci-bot (from GITHUB_ACTOR)", "1 count"]);
}

/// `status` says when each approver approved — from the approval itself, not the deploy time.
#[test]
fn status_shows_each_approvals_own_time() {
    let (f, v1) = ready("{min: 1, from_groups: [sre]}");
    // Approved an hour before the rollout (her clock says so), not in the same second.
    crate::support::atmos_faketime(
        f.repo.path(),
        "-1h",
        &["deployment", "approve", "svc", "--target", "prod"],
        &[("ATMOS_ACTOR", "alice@example.com")],
    )
    .code(0);
    promote(&f, &[]).code(0);
    let note = f
        .repo
        .git(&["notes", "--ref", "atmos/svc/approvals", "show", &v1]);
    let line: serde_json::Value =
        serde_json::from_str(note.lines().next().expect("line")).expect("json");
    let json = f
        .repo
        .atmos(&args("deployment status svc --target prod --format json"))
        .json();
    let a = &json["targets"][0]["components"][0];
    assert_eq!(a["approved_by"][0], "alice@example.com");
    assert_eq!(a["approved_at"][0], line["approved_at"]);
    assert_ne!(a["approved_at"][0], a["deployed_at"]);
}

#[test]
fn unsigned_source_records_do_not_count_for_a_target_that_requires_signatures() {
    // Without a guard (a hosted remote), anyone who can push can write unsigned staging
    // records; prod requires signed approvals, so what ran in staging must be proven too.
    let (f, v1) = ready("{min: 1, require_signed: true}");
    let keys = tempfile::tempdir().expect("tempdir");
    let alice = keygen(keys.path(), "alice");
    let alice_pub = std::fs::read_to_string(alice.with_extension("pub")).expect("pub");
    f.repo.write_file(
        "allowed_signers",
        format!("alice@example.com {}", alice_pub.trim()),
    );
    f.repo.commit("allowed signers");
    approve(
        &f,
        "alice@example.com",
        &[
            "--git-sha",
            &v1,
            "--signing-key",
            alice.to_str().expect("utf-8"),
        ],
    )
    .code(0);
    let run = promote(&f, &[]);
    run.code(3).stdout_has(&[
        "staging has no success record of what it is said to run",
        "atmos/deployments/svc/staging/a/",
        "does not count: unsigned (prod requires signed approvals)",
    ]);
    assert!(
        f.repo.tags("svc", "prod", "a").is_empty(),
        "nothing ran in prod"
    );
}

#[test]
fn identities_compare_without_regard_to_case() {
    // alice wrote the commit as ALICE@Example.COM: her approval as alice@example.com is a
    // self-approval, not someone else's.
    let (f, _v1) = ready("{min: 1, from_groups: [sre]}");
    f.repo.write_file("VERSION", "2\n");
    f.repo.git(&["add", "-A"]);
    f.repo.git(&[
        "commit",
        "-q",
        "--author",
        "Alice <ALICE@Example.COM>",
        "-m",
        "version 2",
    ]);
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    approve(&f, "alice@example.com", &[]).code(0);
    promote(&f, &[]).code(4).stdout_has(&[
        "the approval by alice@example.com does not count: self-approval: the approver wrote a commit being deployed",
    ]);
    // A group member listed in another case is the same member.
    approve(&f, "BOB@example.com", &[]).code(0);
    promote(&f, &[]).code(0);
    // A reserved metadata key in any case is still reserved.
    f.rollout(&[
        "--target",
        "dev",
        "--force",
        "--metadata",
        "Approver=mallory@example.com",
    ])
    .code(2)
    .stderr_has(&["is reserved"]);
}

#[test]
fn a_nul_byte_in_the_approvals_note_stops_the_rollout_instead_of_hiding_what_follows() {
    let (f, v1) = ready("{min: 1}");
    approve(&f, "alice@example.com", &[]).code(0);
    f.repo
        .atmos_env(
            &[
                "deployment",
                "reject",
                "svc",
                "--target",
                "prod",
                "-m",
                "no",
            ],
            &[("ATMOS_ACTOR", "bob@example.com")],
        )
        .code(0);
    let note = f
        .repo
        .git(&["notes", "--ref", "atmos/svc/approvals", "show", &v1]);
    let file = f.out.path().join("note");
    std::fs::write(
        &file,
        format!(
            "{}\n\u{0}\n{}\n",
            note.lines().next().expect("approval"),
            note.lines().nth(1).expect("rejection")
        ),
    )
    .expect("write");
    f.repo.git(&[
        "notes",
        "--ref",
        "atmos/svc/approvals",
        "add",
        "-f",
        "-F",
        file.to_str().expect("utf-8"),
        &v1,
    ]);
    let run = promote(&f, &[]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("refs/notes/atmos/svc/approvals")
            && run.stderr.contains("control character"),
        "{}",
        run.stderr
    );
    assert!(f.repo.tags("svc", "prod", "a").is_empty(), "nothing ran");
}

/// Approving a target that needs no approval says so, instead of "1 required".
#[test]
fn approving_a_target_that_needs_no_approval_says_so() {
    let f = crate::rollout::Fixture::new();
    let v1 = f.version("1");
    let run = f.repo.atmos(&[
        "deployment",
        "approve",
        "svc",
        "--target",
        "dev",
        "--git-sha",
        &v1,
    ]);
    run.code(0).stdout_has(&[
        "dev needs no approval: this one is recorded, and counts once the target requires approvals",
    ]);
    assert!(!run.stdout.contains("required"), "{}", run.stdout);
}
