//! Property tests over every parser of input someone else may have written: deployment files,
//! `atmos.yaml`, durations, times, history records, approval and build notes, `--context`
//! pairs, pre-receive lines, allowed-signers files. The property is always the same: no
//! panic, and an error is an error value (with a message), never an abort.
//!
//! Bounded for CI: `PROPTEST_CASES` (default 256 per property here) sets the cases; failures
//! are shrunk and printed with the input that caused them.

use std::path::Path;

use atmos_core::config::load::parse_deployment;
use atmos_core::contracts::TagRecord;

/// A well-formed approval line, so that generated notes hold records too.
const APPROVAL: &str = r#"{"approved_by":"alice@example.com","approved_at":"2025-01-01T00:00:00Z","decision":"approve","deployment":"svc","target":"prod","git_sha":"c1","method":"recorded","sequence":2}"#;
use proptest::prelude::*;

/// Text that looks like the YAML atmos reads: keys it knows, structure characters, anchors,
/// aliases, odd scalars.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("deployment:".to_owned()),
        Just("  name: svc".to_owned()),
        Just("  components:".to_owned()),
        Just("    script:".to_owned()),
        Just("      a: {settings: {script: {apply: x}}}".to_owned()),
        Just("  targets:".to_owned()),
        Just("    dev: {}".to_owned()),
        Just("    prod: {promotion: {from: dev, requires_approval: true}}".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: *a".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("- ".to_owned()),
        Just("\t".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("!!binary".to_owned()),
        Just("import: [x]".to_owned()),
        Just("import: x/*".to_owned()),
        Just("!env HOME".to_owned()),
        Just("!include x.yaml".to_owned()),
        Just("!git.sha".to_owned()),
        Just("!nope".to_owned()),
        Just("'{{ .vars.x }}'".to_owned()),
        Just("'{{ .target.name | upper }}'".to_owned()),
        Just("'{{ printf \"%d\" 1'".to_owned()),
        Just("null".to_owned()),
        Just("\u{feff}".to_owned()),
        "[a-z_]{1,8}: [^\n]{0,12}",
        "\\PC{0,16}",
    ];
    prop::collection::vec(token, 0..24).prop_map(|parts| parts.join("\n"))
}

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn deployment_files_never_panic(text in yamlish()) {
        let _ = parse_deployment(Path::new("deployments/svc.yaml"), text.as_bytes());
    }

    #[test]
    fn templates_never_panic(text in "\\PC{0,40}", key in "[a-z]{1,4}") {
        let data = serde_json::json!({"vars": {key.clone(): [1, {"a": "b"}]}, "deployment": {"name": "svc"}});
        let _ = atmos_core::config::template::render(&text, &data, &Default::default());
        let _ = atmos_core::config::template::render(&format!("{{{{ {text} }}}}"), &data, &Default::default());
        let _ = atmos_core::config::template::render(&format!("{{{{ .vars.{key} | {text} }}}}"), &data, &Default::default());
    }

    #[test]
    fn arbitrary_bytes_as_deployment_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_deployment(Path::new("deployments/svc.yaml"), &bytes);
    }

    #[test]
    fn atmos_yaml_never_panics(text in yamlish()) {
        let _ = atmos_core::config::parse::parse_yaml(
            Path::new("atmos.yaml"),
            text.as_bytes(),
            atmos_core::config::schema::SchemaKind::Project,
        );
    }

    #[test]
    fn durations_never_panic(text in "\\PC{0,24}", n in any::<u64>(), unit in "[smhdwy]?") {
        let _ = atmos_core::duration::parse(&text);
        let built = format!("{n}{unit}");
        if let Ok(d) = atmos_core::duration::parse(&built) {
            prop_assert!(d.as_secs() <= atmos_core::duration::MAX_SECONDS);
        }
    }

    #[test]
    fn times_never_panic(text in "\\PC{0,32}", n in any::<i64>(), unit in "[smhdw]") {
        let now = jiff::Timestamp::now();
        let _ = atmos_core::history::parse_time(&text, atmos_core::history::Bound::Start, now);
        let _ = atmos_core::history::parse_time(&format!("{n}{unit}"), atmos_core::history::Bound::End, now);
    }

    #[test]
    fn history_records_never_panic(body in yamlish(), raw in "\\PC{0,64}") {
        let _ = TagRecord::from_message(&format!("atmos.tools/v1alpha1\nkind: Deployment\n---\n{body}"));
        let _ = TagRecord::from_message(&raw);
    }

    /// Every line of an approvals note is either a record or reported as not one (none is
    /// dropped), and a record reads back as itself.
    #[test]
    fn approval_note_lines_are_records_or_reported(
        lines in prop::collection::vec(prop_oneof![Just(APPROVAL.to_owned()), "\\PC{0,120}"], 0..6)
    ) {
        let text = lines.join("\n");
        let (records, odd) = atmos_core::approvals::parse(&text);
        let nonblank = text.lines().filter(|l| !l.trim().is_empty()).count();
        prop_assert_eq!(records.len() + odd.len(), nonblank);
        for r in &records {
            let line = serde_json::to_string(r).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (back, odd) = atmos_core::approvals::parse(&line);
            prop_assert!(odd.is_empty());
            prop_assert_eq!(back, vec![r.clone()]);
        }
    }

    #[test]
    fn context_pairs_never_panic(pairs in prop::collection::vec("\\PC{0,20}", 0..6)) {
        if let Ok(vars) = atmos_core::config::merge::parse_overrides(&pairs) {
            let mut base = atmos_core::config::Vars::new();
            atmos_core::config::merge::override_with(&mut base, &vars);
        }
    }

    #[test]
    fn pre_receive_input_never_panics(text in "[0-9a-f \nrefs/atmos]{0,200}") {
        let _ = atmos_core::workflow::verify::receive::parse_updates(&text);
    }

    #[test]
    fn shown_prefixes_of_record_fields_never_split_a_character(text in "\\PC{0,12}", n in 0usize..16) {
        let p = atmos_core::git::prefix(&text, n);
        prop_assert!(text.starts_with(p));
        prop_assert!(p.chars().count() == n.min(text.chars().count()));
    }

    #[test]
    fn yaml_shape_never_panics(text in yamlish()) {
        let _ = atmos_core::yaml_shape::check(&text);
    }
}
