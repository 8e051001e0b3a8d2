//! The git layout: where atmos keeps state, history, notes and locks. These names are a public
//! contract (docs/git-layout.md); every other module builds them through this one.

use jiff::Timestamp;

/// Namespace of every state ref.
pub const STATE_PREFIX: &str = "refs/atmos/deployments";
/// Namespace of every history tag (under `refs/tags/`).
pub const TAG_PREFIX: &str = "atmos/deployments";
/// Namespace of every target lock.
pub const LOCK_PREFIX: &str = "refs/atmos/locks";
/// Namespace of every notes ref.
pub const NOTES_PREFIX: &str = "refs/notes/atmos";
/// Namespace of the archive ledgers (history folded out of tags).
pub const LEDGER_PREFIX: &str = "refs/atmos/ledger";
/// Namespace of the chain refs: the newest record of each target/component.
pub const CHAIN_PREFIX: &str = "refs/atmos/chains";
/// The notes atmos keeps, per deployment: `refs/notes/atmos/<deployment>/<kind>`.
pub const NOTE_KINDS: &[&str] = &["approvals", "builds", "sbom", "logs"];

/// Whether `rest` (a notes ref without `refs/notes/atmos/`) is `<deployment>/<kind>`.
pub fn is_notes_ref(rest: &str) -> bool {
    rest.split_once('/')
        .is_some_and(|(d, k)| !d.is_empty() && NOTE_KINDS.contains(&k))
}

/// The server's repair log: one commit per repair, written only on the server by
/// `atmos deployment verify --repair`, never pushed.
pub const AUDIT_REF: &str = "refs/atmos/audit";

/// The state ref of one component in one target:
/// `refs/atmos/deployments/<deployment>/<target>/<component>` → the deployed commit.
pub fn state_ref(deployment: &str, target: &str, component: &str) -> String {
    format!("{STATE_PREFIX}/{deployment}/{target}/{component}")
}

/// The chain ref of one component in one target:
/// `refs/atmos/chains/<deployment>/<target>/<component>` → the tag object of its newest record.
/// It moves only forward along the records' `previous_record` links, by compare-and-swap, so
/// a history is one chain on every remote, guarded or not.
pub fn chain_ref(deployment: &str, target: &str, component: &str) -> String {
    format!("{CHAIN_PREFIX}/{deployment}/{target}/{component}")
}

/// The tag name (without `refs/tags/`) of one record; `attempt` > 0 adds `.N` so that two
/// rollouts within the same second never collide.
pub fn tag_name(
    deployment: &str,
    target: &str,
    component: &str,
    segment: &str,
    attempt: u32,
) -> String {
    let base = format!("{TAG_PREFIX}/{deployment}/{target}/{component}/{segment}");
    if attempt == 0 {
        base
    } else {
        format!("{base}.{attempt}")
    }
}

/// The notes ref of one kind (`approvals`, `sbom`, …) for one deployment.
pub fn notes_ref(deployment: &str, kind: &str) -> String {
    format!("{NOTES_PREFIX}/{deployment}/{kind}")
}

/// The archive ledger of one deployment: `refs/atmos/ledger/<deployment>` → a commit chain
/// whose tree holds `<target>/<component>/<YYYY-MM>.jsonl`, one archived record per line.
pub fn ledger_ref(deployment: &str) -> String {
    format!("{LEDGER_PREFIX}/{deployment}")
}

/// The lock ref of a target.
pub fn lock_ref(deployment: &str, target: &str) -> String {
    format!("{LOCK_PREFIX}/{deployment}/{target}")
}

/// `2025-01-22T12-00-00Z`: the timestamp segment of a tag name (colons are not allowed in refs).
pub fn timestamp_segment(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H-%M-%SZ").to_string()
}

/// Parse a tag name's last segment, `YYYY-MM-DDTHH-MM-SSZ[.N]`, into its time and sequence.
pub fn parse_segment(segment: &str) -> Option<(Timestamp, u32)> {
    let (base, seq) = match segment.split_once('.') {
        Some((b, n)) => (b, n.parse().ok()?),
        None => (segment, 0),
    };
    let at = jiff::civil::DateTime::strptime("%Y-%m-%dT%H-%M-%SZ", base)
        .ok()?
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp();
    Some((at, seq))
}

/// `2025-01-22T12:00:00Z`: how every recorded time is written.
pub fn rfc3339(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_and_timestamps() {
        let at: Timestamp = "2025-01-22T12:00:00Z".parse().expect("ts");
        assert_eq!(timestamp_segment(at), "2025-01-22T12-00-00Z");
        assert_eq!(rfc3339(at), "2025-01-22T12:00:00Z");
        assert_eq!(tag_name("d", "t", "c", "S", 0), "atmos/deployments/d/t/c/S");
        assert_eq!(
            tag_name("d", "t", "c", "S", 2),
            "atmos/deployments/d/t/c/S.2"
        );
    }

    #[test]
    fn state_ref_layout() {
        assert_eq!(
            state_ref("payment-service", "prod", "ecs/api"),
            "refs/atmos/deployments/payment-service/prod/ecs/api"
        );
    }

    #[test]
    fn segments_parse_with_and_without_suffix() {
        let (at, seq) = parse_segment("2025-01-22T12-00-05Z").expect("segment");
        assert_eq!(at.to_string(), "2025-01-22T12:00:05Z");
        assert_eq!(seq, 0);
        assert_eq!(
            parse_segment("2025-01-22T12-00-05Z.12").map(|p| p.1),
            Some(12)
        );
        assert!(parse_segment("latest").is_none());
        assert!(parse_segment("2025-01-22T12:00:05Z").is_none());
        assert!(parse_segment("2025-01-22T12-00-05Z.x").is_none());
    }
}
