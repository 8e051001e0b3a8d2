//! WebAssembly hooks end to end: the real guests from `guests/` (built from source by the
//! test run) allow and deny real rollouts; hostile guests are each denied within their limit
//! while the host keeps working; `validate` and `policy test` see hooks too.

use crate::support::args;
use std::time::{Duration, Instant};

use crate::rollout::{DEPLOYMENT, Fixture, record};

/// The rollout fixture with `hooks` (YAML list items, indented for `gates.hooks`) bound to
/// target `target`, and the guests `guests` copied to `hooks/<name>.wasm`.
fn hooked(target: &str, guests: &[&str], hooks: &str) -> Fixture {
    let f = Fixture::new();
    f.repo.add_guests(guests);
    let anchor = match target {
        "dev" => "    dev:\n      context: {size: large}\n",
        "staging" => "    staging:\n      promotion: {from: dev}\n",
        "prod" => "    prod:\n      promotion: {from: staging, requires_approval: true}\n",
        other => panic!("no anchor for {other}"),
    };
    let bound = format!("{anchor}      gates:\n        hooks:\n{hooks}");
    f.repo.write("svc.yaml", DEPLOYMENT.replace(anchor, &bound));
    f
}

fn decisions(r: &serde_json::Value) -> Vec<serde_json::Value> {
    r["decisions"].as_array().expect("decisions").clone()
}

#[test]
fn ticket_required_guest_denies_a_commit_without_a_ticket_and_allows_one_with() {
    let f = hooked(
        "dev",
        &["ticket-required"],
        "          - name: ticket\n            wasm: hooks/ticket-required.wasm\n            config: {pattern: \"PAY-[0-9]+\"}\n",
    );
    f.version("1");
    let run = f.rollout(&["--target", "dev"]);
    run.code(3);
    run.stdout_has(&["hook:ticket (hooks/ticket-required.wasm)"]);
    run.stdout_has(&["reference no ticket (/PAY-[0-9]+/)"]);
    run.stdout_has(&["[ticket-missing]"]);
    assert!(f.repo.atmos_refs().is_empty(), "nothing written on a deny");
    assert!(f.applied("a", "dev").is_empty(), "nothing ran");
    // --metadata satisfies it; the finding-free decision is recorded in the tag.
    f.rollout(&["--target", "dev", "--metadata", "ticket=PAY-7"])
        .code(0);
    let r = record(&f.repo, &f.repo.outcomes("svc", "dev", "a")[0]);
    let hook: Vec<_> = decisions(&r)
        .into_iter()
        .filter(|d| d["source"] == "hook:ticket")
        .collect();
    assert_eq!(hook.len(), 1, "{r}");
    assert_eq!(hook[0]["result"], "allow");
    assert_eq!(hook[0]["package"], "hooks/ticket-required.wasm");
    assert_eq!(hook[0]["message"], "no findings");
    assert_eq!(
        hook[0]["logs"],
        serde_json::json!(["--metadata ticket=PAY-7 references a ticket"]),
        "the hook's log is kept in the record: {r}"
    );
    // -v prints the log under the decision; without it, the log stays out of the way.
    f.repo.write_file("VERSION", "1b\n");
    f.repo.commit("no ticket here either");
    let plain = f.rollout(&args("--target dev --metadata ticket=PAY-8 --plan"));
    assert!(!plain.stdout.contains("log:"), "{}", plain.stdout);
    let verbose = f.rollout(&args("--target dev --metadata ticket=PAY-8 --plan -v"));
    assert!(
        verbose
            .stdout
            .contains("log: --metadata ticket=PAY-8 references a ticket"),
        "{}",
        verbose.stdout
    );
    // A commit that references one passes without metadata.
    f.repo.write_file("VERSION", "2\n");
    f.repo.commit("PAY-12 bump the version");
    f.rollout(&["--target", "dev"]).code(0);
}

#[test]
fn change_freeze_guest_denies_inside_a_window_and_warns_when_configured_to() {
    let always = "{days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", until: \"24:00\", reason: test freeze}";
    let f = hooked(
        "dev",
        &["change-freeze"],
        &format!(
            "          - name: freeze\n            wasm: hooks/change-freeze.wasm\n            config: {{timezone: Asia/Tokyo, windows: [{always}]}}\n"
        ),
    );
    f.version("1");
    let run = f.rollout(&["--target", "dev"]);
    run.code(3);
    run.stdout_has(&["`dev` is frozen"]);
    assert!(
        run.stdout.contains("Asia/Tokyo): test freeze"),
        "{}",
        run.stdout
    );
    // The same window with outcome warn lets it through, and the warning is recorded.
    let yaml = std::fs::read_to_string(f.repo.path().join("deployments/svc.yaml")).expect("read");
    f.repo.write(
        "svc.yaml",
        yaml.replace(
            "timezone: Asia/Tokyo,",
            "timezone: Asia/Tokyo, outcome: warn,",
        ),
    );
    f.repo.commit("warn only");
    let run = f.rollout(&["--target", "dev", "--format", "json"]);
    run.code(0);
    let r = record(&f.repo, &f.repo.outcomes("svc", "dev", "a")[0]);
    let warn: Vec<_> = decisions(&r)
        .into_iter()
        .filter(|d| d["source"] == "hook:freeze")
        .collect();
    assert_eq!(warn.len(), 1, "{r}");
    assert_eq!(warn[0]["result"], "warn");
    assert_eq!(warn[0]["code"], "change-freeze");
    // A window in the past does not apply.
    f.repo.write(
        "svc.yaml",
        yaml.replace(
            always,
            "{from: \"2001-01-01T00:00\", until: \"2001-02-01T00:00\"}",
        ),
    );
    f.version("2");
    f.rollout(&["--target", "dev"]).code(0);
}

#[test]
fn soak_time_guest_holds_a_promotion_and_only_runs_on_promotions() {
    let f = hooked(
        "staging",
        &["soak-time"],
        "          - name: soak\n            wasm: hooks/soak-time.wasm\n            on: [promote]\n            config: {minutes: 60}\n",
    );
    // describe shows what is bound to the target.
    let run = f
        .repo
        .atmos(&args("deployment describe svc --target staging"));
    run.code(0);
    run.stdout_has(&["Hooks: soak (hooks/soak-time.wasm, on promote)"]);
    let v1 = f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    let run = f.rollout(&["--target", "staging", "--promote-from", "dev"]);
    run.code(3);
    run.stdout_has(&["`dev` has run this for 0 min of the 60 required"]);
    // `on: [promote]`: a direct rollout to staging (of a commit that never ran in dev, so
    // it is no promotion) does not run the hook.
    let v2 = f.version("2");
    assert_ne!(v1, v2);
    let run = f.rollout(&[
        "--target",
        "staging",
        "--git-sha",
        &v2,
        "--skip-promotion-check",
    ]);
    run.code(0);
    assert!(!run.stdout.contains("hook:soak"), "{}", run.stdout);
}

/// Every hostile mode bound to one target, plus a well-behaved hook after them.
#[test]
fn hostile_guests_are_each_denied_within_their_limit_and_the_host_keeps_working() {
    let hostile = |name: &str, mode: &str, limits: &str| {
        format!(
            "          - name: {name}\n            wasm: hooks/hostile.wasm\n            config: {{mode: {mode}}}\n            limits: {limits}\n"
        )
    };
    let hooks = [
        hostile(
            "endless-loop",
            "loop",
            "{timeout_ms: 300, fuel: 100000000000}",
        ),
        hostile("fuel-burner", "loop", "{fuel: 5000000}"),
        hostile("memory-bomb", "memory", "{memory_mb: 16}"),
        hostile("deep-recursion", "recursion", "{}"),
        hostile("trap", "trap", "{}"),
        hostile("big-output", "big-output", "{memory_mb: 64}"),
        hostile("passwd", "passwd", "{}"),
        "          - name: wrong-world\n            wasm: hooks/wrong-world.wasm\n".to_owned(),
        "          - name: missing\n            wasm: hooks/nope.wasm\n".to_owned(),
        hostile("well-behaved", "allow", "{}"),
    ]
    .concat();
    let f = hooked("dev", &["hostile", "wrong-world"], &hooks);
    f.version("1");
    let started = Instant::now();
    let run = f.rollout(&["--target", "dev", "--format", "json"]);
    let elapsed = started.elapsed();
    run.code(3);
    let out = run.json();
    let all = out["decisions"]
        .as_array()
        .expect("decisions in the JSON report");
    let of = |name: &str| -> serde_json::Value {
        all.iter()
            .find(|d| d["source"] == format!("hook:{name}"))
            .unwrap_or_else(|| panic!("no decision of {name}: {out}"))
            .clone()
    };
    for (name, why) in [
        ("endless-loop", "exceeded its time limit of 300 ms"),
        ("fuel-burner", "ran out of fuel (5000000 units)"),
        ("memory-bomb", "hit its memory cap of 16 MiB"),
        ("deep-recursion", "exhausted its stack"),
        ("trap", "trapped"),
        ("big-output", "over the 1048576-byte cap"),
        ("passwd", "could not open /etc/passwd"),
        ("wrong-world", "does not fit the atmos:hooks/gate world"),
        ("missing", "hooks/nope.wasm does not exist"),
    ] {
        let d = of(name);
        assert_eq!(d["result"], "deny", "{name}: {d}");
        let message = d["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("hook `{name}`")),
            "{name} is named: {message}"
        );
        assert!(
            message.contains(why),
            "{name}: expected {why:?} in {message:?}"
        );
        assert!(message.ends_with("(fail closed)"), "{message}");
    }
    assert!(
        !out.to_string().contains("root:x:0"),
        "nothing from /etc/passwd leaks"
    );
    // The host kept working: the last hook ran normally after all of the above.
    let ok = of("well-behaved");
    assert_eq!(ok["result"], "allow", "{ok}");
    assert_eq!(
        ok["logs"],
        serde_json::json!(["hostile guest in allow mode"]),
        "{ok}"
    );
    // Bounded: one 300 ms timeout plus the rest, nowhere near an unbounded run.
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    assert!(f.repo.atmos_refs().is_empty(), "nothing written");
}

#[test]
fn validate_locates_hooks_that_cannot_run_and_the_compile_cache_is_reused() {
    let f = hooked(
        "dev",
        &["wrong-world", "change-freeze"],
        "          - name: freeze\n            wasm: hooks/change-freeze.wasm\n            config: {windows: []}\n          - name: other\n            wasm: hooks/wrong-world.wasm\n          - name: gone\n            wasm: hooks/gone.wasm\n",
    );
    let run = f.repo.atmos(&["deployment", "validate", "svc"]);
    run.code(2);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains("hook `other` cannot run: hooks/wrong-world.wasm does not fit the atmos:hooks/gate world"), "{text}");
    assert!(
        text.contains("hook `gone` cannot run: hooks/gone.wasm does not exist"),
        "{text}"
    );
    assert!(text.contains("svc.yaml:"), "located in the file: {text}");
    assert!(
        text.contains("✗ Hooks load and fit the gate world"),
        "{text}"
    );
    assert!(
        text.contains("generate the guest's bindings from this repository's wit/hooks.wit"),
        "the hint fits the problem: {text}"
    );
    assert!(
        !text.contains("hook `freeze`"),
        "a good hook is not reported: {text}"
    );
    // Compiled components were cached inside the git directory, and a second run reuses them
    // (wasmtime's usage `.stats` files and cleanup markers are bookkeeping, not code).
    let cache = f.repo.path().join(".git/atmos/wasm-cache");
    let first = compiled(&cache);
    assert!(!first.is_empty(), "the cache holds compiled code");
    f.repo.atmos(&["deployment", "validate", "svc"]).code(2);
    assert_eq!(
        compiled(&cache),
        first,
        "a warm run neither adds nor rewrites compiled code"
    );
}

/// Each compiled artifact in a wasmtime cache folder, with its size and modification time.
fn compiled(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            out.extend(compiled(&path));
        } else if !name.ends_with(".stats") && !name.starts_with('.') {
            let meta = e.metadata().expect("metadata");
            out.push((path, meta.len(), meta.modified().expect("mtime")));
        }
    }
    out.sort();
    out
}

#[test]
fn policy_test_runs_the_shipped_hook_fixtures_and_a_wrong_expectation_fails() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    crate::support::guest("change-freeze");
    let run = crate::support::atmos_in(&root, &["deployment", "policy", "test", "guests"]);
    run.code(0);
    run.stdout_has(&["16 passed, 0 failed, 0 skipped"]);
    // A fixture expecting the wrong outcome fails, saying what it got.
    let f = Fixture::new();
    f.repo.add_guests(&["soak-time"]);
    f.repo.write_file(
        "policies/soak.hooktest.yaml",
        "hook:\n  wasm: ../hooks/soak-time.wasm\n  config: {minutes: 30}\ncases:\n  - name: wrong\n    action: promote\n    input: {now: \"2026-01-01T00:10:00Z\", source_target: dev, state: {dev: {deployed_at: \"2026-01-01T00:00:00Z\"}}}\n    expect: []\n",
    );
    let run = f.repo.atmos(&["deployment", "policy", "test"]);
    run.code(1);
    run.stdout_has(&["FAIL  wrong: expected 0 finding(s), got 1: deny [soak-time]"]);
}

#[test]
fn a_hook_reads_only_the_folders_its_config_grants_and_cannot_write_them() {
    let hook = |name: &str, mode: &str, path: &str, grant: bool| {
        let dirs = if grant {
            "            read_only_dirs: [calendars]\n"
        } else {
            ""
        };
        format!(
            "          - name: {name}\n            wasm: hooks/hostile.wasm\n            config: {{mode: {mode}, path: {path}}}\n{dirs}"
        )
    };
    let hooks = [
        hook("granted", "read", "calendars/holidays.txt", true),
        hook("not-granted", "read", "calendars/holidays.txt", false),
        hook("outside", "read", "secrets.txt", true),
        hook("writer", "write", "calendars/holidays.txt", true),
        "          - name: escaper\n            wasm: hooks/hostile.wasm\n            config: {mode: read, path: ../x}\n            read_only_dirs: [\"..\"]\n".to_owned(),
        "          - name: linker\n            wasm: hooks/hostile.wasm\n            config: {mode: read, path: link/etc/hostname}\n            read_only_dirs: [link]\n".to_owned(),
    ]
    .concat();
    let f = hooked("dev", &["hostile"], &hooks);
    // A committed symlink to `/` is no folder inside the project.
    std::os::unix::fs::symlink("/", f.repo.path().join("link")).expect("symlink");
    f.repo
        .write_file("calendars/holidays.txt", "2026-12-25 Christmas");
    f.repo.write_file("secrets.txt", "hunter2");
    f.version("1");
    let out = f.rollout(&["--target", "dev", "--format", "json"]);
    out.code(3);
    let json = out.json();
    let of = |name: &str| {
        json["decisions"]
            .as_array()
            .expect("decisions")
            .iter()
            .find(|d| d["source"] == format!("hook:{name}"))
            .unwrap_or_else(|| panic!("{name}: {json}"))
            .clone()
    };
    let granted = of("granted");
    assert_eq!(granted["result"], "warn", "{granted}");
    assert_eq!(granted["message"], "2026-12-25 Christmas");
    for name in ["not-granted", "outside", "writer"] {
        let d = of(name);
        assert_eq!(d["result"], "deny", "{name}: {d}");
        assert!(
            d["message"]
                .as_str()
                .unwrap_or_default()
                .contains("could not"),
            "{name}: {d}"
        );
    }
    let escaper = of("escaper");
    assert_eq!(escaper["result"], "deny");
    assert!(
        escaper["message"]
            .as_str()
            .unwrap_or_default()
            .contains("asks for `..`, which is not a folder inside the project"),
        "{escaper}"
    );
    // From the trusted ref the link is not exported at all; from the work tree (--local) it
    // is there, and resolved before anything is granted.
    let linker = of("linker");
    assert_eq!(linker["result"], "deny", "{linker}");
    assert!(
        linker["message"]
            .as_str()
            .unwrap_or_default()
            .contains("asks for `link`, which"),
        "{linker}"
    );
    let local = f
        .repo
        .atmos(&[
            "deployment",
            "policy",
            "eval",
            "svc",
            "--target",
            "dev",
            "--local",
            "--format",
            "json",
        ])
        .json();
    assert!(
        local
            .to_string()
            .contains("asks for `link`, which resolves to / outside the project"),
        "{local}"
    );
    assert!(!json.to_string().contains("hunter2"));
    let text = std::fs::read_to_string(f.repo.path().join("calendars/holidays.txt")).expect("read");
    assert_eq!(
        text, "2026-12-25 Christmas",
        "the granted folder is read-only"
    );
}

#[test]
fn a_hook_bound_on_approve_refuses_an_approval_but_never_a_rejection() {
    let f = hooked(
        "prod",
        &["change-freeze"],
        "          - name: freeze\n            wasm: hooks/change-freeze.wasm\n            on: [approve]\n            config: {windows: [{days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", until: \"24:00\", reason: approvals frozen}]}\n",
    );
    f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    let approve = [
        "deployment",
        "approve",
        "svc",
        "--target",
        "prod",
        "--promote-from",
        "staging",
    ];
    let run = f.repo.atmos(&approve);
    run.code(3);
    run.stderr_has(&["hook:freeze"]);
    run.stderr_has(&["approvals frozen"]);
    let notes = f
        .repo
        .git(&["for-each-ref", "refs/notes/atmos/svc/approvals"]);
    assert!(notes.trim().is_empty(), "nothing recorded: {notes}");
    // A rejection is never gated.
    let mut reject = approve.to_vec();
    reject[1] = "reject";
    f.repo.atmos(&reject).code(0);
    assert!(
        !f.repo
            .git(&["for-each-ref", "refs/notes/atmos/svc/approvals"])
            .trim()
            .is_empty()
    );
    // Without `on`, a hook does not gate approvals.
    let yaml = std::fs::read_to_string(f.repo.path().join("deployments/svc.yaml")).expect("read");
    f.repo
        .write("svc.yaml", yaml.replace("            on: [approve]\n", ""));
    f.repo.commit("the hook no longer gates approvals");
    f.repo.atmos(&approve).code(0);
}

#[test]
fn a_hook_sees_a_fixed_clock_and_no_environment_or_arguments() {
    let f = hooked(
        "dev",
        &["hostile"],
        "          - name: ambient\n            wasm: hooks/hostile.wasm\n            config: {mode: ambient}\n",
    );
    f.version("1");
    let run = f.repo.atmos_env(
        &args("deployment rollout svc --target dev --format json"),
        &[("OUT", f.out()), ("SECRET_TOKEN", "hunter2")],
    );
    run.code(0);
    let json = run.json();
    let d = json["plan"]["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .find(|d| d["source"] == "hook:ambient")
        .unwrap_or_else(|| panic!("{json}"))
        .clone();
    let started: jiff::Timestamp = json["plan"]["started_at"]
        .as_str()
        .unwrap_or_else(|| panic!("started_at in {json}"))
        .parse()
        .expect("rfc3339");
    // The wall clock is the rollout's start; the monotonic clock does not move; nothing of
    // the host's environment (SECRET_TOKEN) or arguments reaches the guest.
    assert_eq!(
        d["message"],
        format!("clock={} monotonic_ns=0 env=0 args=0", started.as_second()),
        "{d}"
    );
}

/// The guests keep their own small `Input` structs; every shipped guest must read the input
/// document atmos really generates, for every action, without a "bad input document" error.
#[test]
fn shipped_guests_read_the_real_generated_input_of_every_action() {
    use atmos_core::config::model::{HookConfig, Limits};
    use atmos_core::contracts::{GateAction, Verdict};
    use atmos_core::gates::wasm::HookSet;

    let repo = crate::support::Repo::example();
    repo.commit("example");
    repo.atmos_stand_ins(&args("deployment rollout payment-service --target dev"))
        .code(0);
    repo.atmos_stand_ins(&args(
        "deployment rollout payment-service --target staging --promote-from dev",
    ))
    .code(0);
    let eval = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "deployment",
            "policy",
            "eval",
            "payment-service",
            "--show-input",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let run = repo.atmos(&args);
        let doc = run.json();
        doc["input"].clone()
    };
    let mut inputs = vec![
        (GateAction::Rollout, eval(&["--target", "dev"])),
        (
            GateAction::Promote,
            eval(&["--target", "prod", "--promote-from", "staging"]),
        ),
    ];
    // An approval sees the promotion's document with `action: approve`.
    let mut approve = inputs[1].1.clone();
    approve["action"] = serde_json::json!("approve");
    inputs.push((GateAction::Approve, approve));
    let hooks: Vec<HookConfig> = [
        (
            "ticket-required",
            serde_json::json!({"pattern": "[A-Z]+-[0-9]+"}),
        ),
        (
            "change-freeze",
            serde_json::json!({"timezone": "UTC", "windows": []}),
        ),
        ("soak-time", serde_json::json!({"minutes": 10})),
    ]
    .into_iter()
    .map(|(name, config)| HookConfig {
        name: name.into(),
        wasm: crate::support::guest(name).display().to_string(),
        config,
        on: vec![
            GateAction::Rollout,
            GateAction::Promote,
            GateAction::Approve,
        ],
        limits: Limits::default(),
        read_only_dirs: Vec::new(),
    })
    .collect();
    let set = HookSet::load(repo.path(), &hooks, None).expect("the shipped guests load");
    for (action, input) in &inputs {
        assert_eq!(input["action"], action.as_str(), "{input:#}");
        let decisions = set.evaluate(
            *action,
            input,
            std::time::Duration::from_secs(1_700_000_000),
        );
        for hook in &hooks {
            let source = format!("hook:{}", hook.name);
            let mine: Vec<_> = decisions.iter().filter(|d| d.source == source).collect();
            assert!(!mine.is_empty(), "{} said nothing on {action:?}", hook.name);
            for d in mine {
                assert!(
                    !d.message.contains("bad input") && !d.message.contains("fail closed"),
                    "{} could not read the {action:?} input: {}",
                    hook.name,
                    d.message
                );
                assert!(
                    matches!(d.result, Verdict::Allow | Verdict::Warn | Verdict::Deny),
                    "{d:?}"
                );
            }
        }
    }
}

#[test]
fn a_hook_test_tells_a_deny_from_a_crash_and_shows_what_a_panicking_guest_said() {
    let f = Fixture::new();
    f.repo.add_guests(&["hostile"]);
    f.repo.write_file(
        "policies/crash.hooktest.yaml",
        "hook:\n  wasm: ../hooks/hostile.wasm\n  config: {mode: panic, path: short-sha}\ncases:\n  - name: a panic is no deny\n    input: {}\n    expect: [{outcome: deny}]\n  - name: a panic expected\n    input: {}\n    expect: {error: trap}\n  - name: the wrong failure expected\n    input: {}\n    expect: {error: timeout}\n",
    );
    f.repo.write_file(
        "policies/missing.hooktest.yaml",
        "hook:\n  wasm: ../hooks/nowhere.wasm\ncases:\n  - name: a missing hook is no deny\n    input: {}\n    expect: [{outcome: deny}]\n",
    );
    let run = f.repo.atmos(&["deployment", "policy", "test"]);
    run.code(1).stdout_has(&[
        "FAIL  a panic is no deny: the hook did not decide, it failed [trap]: hook `fixture` trapped:",
        "it wrote: thread '<unnamed>'",
        "panicked at hostile/src/lib.rs",
        "hostile guest panicked on purpose: short-sha",
        "FAIL  the wrong failure expected: expected the hook to fail with `timeout`, it failed with `trap`",
        "FAIL  a missing hook is no deny: the hook did not decide, it failed [load]:",
        "1 passed, 3 failed, 0 skipped",
    ]);
    // In a rollout the same panic is a fail-closed deny that says what the guest said.
    let f = hooked(
        "dev",
        &["hostile"],
        "          - name: crasher\n            wasm: hooks/hostile.wasm\n            config: {mode: panic, path: in-a-rollout}\n",
    );
    f.version("1");
    let run = f.rollout(&["--target", "dev"]);
    run.code(3).stdout_has(&[
        "hook `crasher` trapped:",
        "hostile guest panicked on purpose: in-a-rollout",
        "(fail closed)",
    ]);
}
