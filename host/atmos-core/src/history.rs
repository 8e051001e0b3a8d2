//! `history`: the rollout timeline of a target, newest first. Filters by component and time
//! use the tag names alone; only the tags that are shown are read.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use crate::contracts::Status;
use crate::git::tags::Unparseable;
use crate::git::{GitError, GitRepo};

/// What to show.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// One target, or every target.
    pub target: Option<String>,
    /// One component, or every component.
    pub component: Option<String>,
    /// At most this many entries.
    pub limit: usize,
    /// Only rollouts at or after this time.
    pub since: Option<Timestamp>,
    /// Only rollouts at or before this time.
    pub until: Option<Timestamp>,
}

/// One rollout of one component.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryEntry {
    /// The tag.
    pub tag: String,
    /// Rollout start (RFC 3339).
    pub timestamp: String,
    /// Target.
    pub target: String,
    /// Component.
    pub component: String,
    /// Deployed (or attempted) commit.
    pub commit: String,
    /// Who.
    pub deployed_by: String,
    /// Outcome.
    pub status: Status,
    /// Source target of a promotion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// The commit replaced by a rollback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// `metadata.pr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr: Option<String>,
    /// Who approved it (`metadata.approver`), one identity per item.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    /// CI build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Failure reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every other metadata entry (`ticket`, `skip_promotion_check`, …).
    #[serde(skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub metadata: indexmap::IndexMap<String, String>,
    /// Every gate decision the rollout was made on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<crate::contracts::Decision>,
}

/// The `history` report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryReport {
    /// Deployment.
    pub deployment: String,
    /// Target asked for.
    pub target: Option<String>,
    /// Entries shown, newest first: every component of the `limit` newest matching rollouts.
    pub entries: Vec<HistoryEntry>,
    /// How many rollouts `entries` holds.
    pub rollouts: usize,
    /// How many rollouts match the filters (before `limit`); a rollout is one row per
    /// component it ran.
    pub total: usize,
    /// How many rollouts are recorded for the deployment (and target), before any filter.
    pub recorded: usize,
    /// The limit applied.
    pub limit: usize,
    /// Tags that could not be read as records.
    pub unparseable: Vec<Unparseable>,
}

/// Build the timeline.
pub fn history(
    git: &GitRepo,
    deployment: &str,
    query: &HistoryQuery,
) -> Result<HistoryReport, GitError> {
    let (tags, mut unparseable) = git.history_tags(deployment, query.target.as_deref())?;
    let matching: Vec<_> = tags
        .iter()
        .rev()
        .filter(|e| query.component.as_deref().is_none_or(|c| e.component == c))
        .filter(|e| query.since.is_none_or(|s| e.at >= s))
        .filter(|e| query.until.is_none_or(|u| e.at <= u))
        .collect();
    // A rollout's components share their tag's time segment (and target): `limit` counts
    // rollouts, and a rollout is never cut.
    let key = |e: &crate::git::tags::TagEntry| (e.target.clone(), e.at, e.seq);
    let rollouts = |list: &mut dyn Iterator<Item = &crate::git::tags::TagEntry>| {
        list.map(key)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let total = rollouts(&mut matching.iter().copied());
    let recorded = rollouts(&mut tags.iter());
    let mut entries = Vec::new();
    let mut shown = std::collections::BTreeSet::new();
    for e in matching {
        if !shown.contains(&key(e)) && shown.len() >= query.limit {
            break;
        }
        match git.read_record(e, deployment) {
            Ok(r) => {
                shown.insert(key(e));
                let mut metadata = r.metadata.clone();
                let pr = metadata.shift_remove("pr");
                let approved_by = metadata
                    .shift_remove("approver")
                    .map(|a| crate::status::approvers(&a))
                    .unwrap_or_default();
                entries.push(HistoryEntry {
                    tag: e.name.clone(),
                    timestamp: r.timestamp,
                    target: e.target.clone(),
                    component: e.component.clone(),
                    commit: r.git_sha,
                    deployed_by: r.deployed_by,
                    status: r.status,
                    promoted_from: r.promoted_from,
                    rollback_of: r.rollback_of,
                    pr,
                    approved_by,
                    build_id: r.build_id,
                    error: r.error,
                    metadata,
                    decisions: r.decisions,
                });
            }
            Err(u) => unparseable.push(u),
        }
    }
    Ok(HistoryReport {
        deployment: deployment.to_owned(),
        target: query.target.clone(),
        entries,
        rollouts: shown.len(),
        total,
        recorded,
        limit: query.limit,
        unparseable,
    })
}

/// Which end of a range a bound is, for dates without a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `--since`: a date means its first second.
    Start,
    /// `--until`: a date means its last second.
    End,
}

/// Parse `--since`/`--until`: a duration back from `now` (`30m`, `12h`, `7d`, `2w`), a date
/// (`2025-01-31`, UTC), or an RFC 3339 time.
pub fn parse_time(text: &str, bound: Bound, now: Timestamp) -> Result<Timestamp, String> {
    let t = text.trim();
    // A duration back from now, parsed with the same checked rules (and ten-year ceiling) as
    // every other duration.
    if t.len() > 1
        && t.ends_with(['s', 'm', 'h', 'd', 'w'])
        && t[..t.len() - 1].bytes().all(|b| b.is_ascii_digit())
    {
        let back = crate::duration::parse(t)?;
        let back = jiff::SignedDuration::try_from(back).map_err(|e| format!("`{t}`: {e}"))?;
        return now.checked_sub(back).map_err(|e| format!("`{t}`: {e}"));
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(date) = t.parse::<jiff::civil::Date>() {
        let time = match bound {
            Bound::Start => jiff::civil::Time::midnight(),
            Bound::End => jiff::civil::time(23, 59, 59, 999_999_999),
        };
        return date
            .to_datetime(time)
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "`{t}` is not a time: use a date (2025-01-31), an RFC 3339 time (2025-01-31T12:00:00Z) or a duration back from now (30m, 12h, 7d, 2w)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_durations_are_errors_not_panics() {
        let now: Timestamp = "2025-02-10T12:00:00Z".parse().expect("ts");
        for huge in ["9999999d", "99999999999999w", "999999999999999999999999s"] {
            let e = parse_time(huge, Bound::Start, now).expect_err(huge);
            assert!(e.contains("too long"), "{huge}: {e}");
        }
    }

    #[test]
    fn time_bounds() {
        let now: Timestamp = "2025-02-10T12:00:00Z".parse().expect("ts");
        assert_eq!(
            parse_time("7d", Bound::Start, now).expect("7d").to_string(),
            "2025-02-03T12:00:00Z"
        );
        assert_eq!(
            parse_time("90m", Bound::Start, now).expect("m").to_string(),
            "2025-02-10T10:30:00Z"
        );
        assert_eq!(
            parse_time("2025-01-31", Bound::Start, now)
                .expect("d")
                .to_string(),
            "2025-01-31T00:00:00Z"
        );
        assert_eq!(
            parse_time("2025-01-31", Bound::End, now)
                .expect("d")
                .to_string(),
            "2025-01-31T23:59:59.999999999Z"
        );
        assert_eq!(
            parse_time("2025-01-31T08:00:00Z", Bound::End, now)
                .expect("t")
                .to_string(),
            "2025-01-31T08:00:00Z"
        );
        assert!(parse_time("yesterday", Bound::Start, now).is_err());
        assert!(parse_time("7y", Bound::Start, now).is_err());
    }
}

crate::document!(HistoryReport => "HistoryReport");
