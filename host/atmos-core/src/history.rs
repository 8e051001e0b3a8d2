//! `history`: the rollout timeline of a target, newest first. Each component's history is
//! read along its chain (the order its records took, never a clock), as far as the entries
//! shown need; the histories are interleaved by the time their records were made. A rollout
//! that started and has an outcome is shown once, by its outcome; one without an outcome is
//! shown as started (running, or interrupted).

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
    /// The commit replaced by a roll-forward (a move forward to a commit the target ran
    /// before, after a rollback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_forward_from: Option<String>,
    /// The canary step this record is of, for a rollout in steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<crate::contracts::record::CanaryRecord>,
    /// `metadata.pr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr: Option<String>,
    /// Who approved it (`metadata.approver`), one identity per item.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    /// CI build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Failure reason (for `interrupted`: what the rollout that found it knew).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where it ran, for a rollout that started and has no outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<crate::contracts::record::Runner>,
    /// The record's place in its history (its chain), when numbered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// The rollout's id, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_id: Option<String>,
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
    /// component it ran. At least this many when `counted_all` is false.
    pub total: usize,
    /// How many rollouts are recorded for the deployment (and target), before any filter
    /// (at least this many when `counted_all` is false).
    pub recorded: usize,
    /// False when the counts stop at what [`COUNT_BUDGET`] records beyond those shown hold:
    /// a long history is not read whole to count it.
    pub counted_all: bool,
    /// The limit applied.
    pub limit: usize,
    /// Tags that could not be read as records.
    pub unparseable: Vec<Unparseable>,
}

/// How many records beyond those shown are read to count rollouts.
pub const COUNT_BUDGET: usize = 2000;

/// Build the timeline.
pub fn history(
    git: &GitRepo,
    deployment: &str,
    query: &HistoryQuery,
) -> Result<HistoryReport, GitError> {
    let (tags, mut unparseable) = git.history_tags(deployment, query.target.as_deref())?;
    let in_range = |e: &crate::git::tags::TagEntry| {
        query.component.as_deref().is_none_or(|c| e.component == c)
            && query.since.is_none_or(|s| e.at >= s)
            && query.until.is_none_or(|u| e.at <= u)
    };
    // Each history, walked from its newest record, as one timeline.
    let mut groups: Vec<(String, String)> = tags
        .iter()
        .map(|e| (e.target.clone(), e.component.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    let mut timeline = git.timeline(deployment, &groups)?;
    let mut completed: std::collections::HashSet<String> = Default::default();
    let mut entries = Vec::new();
    let mut shown: Vec<String> = Vec::new();
    let mut matching: std::collections::HashSet<String> = Default::default();
    let mut recorded: std::collections::HashSet<String> = Default::default();
    let mut budget = COUNT_BUDGET;
    let mut counted_all = true;
    while let Some(link) = timeline.next_link()? {
        let (e, r) = (&link.entry, &*link.record);
        if let Some(intent) = &r.intent {
            completed.insert(intent.clone());
        }
        // A rollout's records share its id; older records share the second it started.
        let rollout = r
            .rollout_id
            .clone()
            .unwrap_or_else(|| format!("{}@{}.{}", e.target, e.at, e.seq));
        recorded.insert(rollout.clone());
        if r.status == Status::Started && completed.contains(&e.oid) {
            continue;
        }
        if !in_range(e) {
            continue;
        }
        matching.insert(rollout.clone());
        if !shown.contains(&rollout) {
            if shown.len() >= query.limit {
                // Past what is shown: read on only to count, within a budget.
                budget = budget.saturating_sub(1);
                if budget == 0 {
                    counted_all = false;
                    break;
                }
                continue;
            }
            shown.push(rollout);
        }
        let mut metadata = r.metadata.clone();
        let pr = metadata.shift_remove("pr");
        let approved_by = metadata
            .shift_remove("approver")
            .map(|a| crate::status::approvers(&a))
            .unwrap_or_default();
        entries.push(HistoryEntry {
            tag: e.name.clone(),
            timestamp: r.timestamp.clone(),
            target: e.target.clone(),
            component: e.component.clone(),
            commit: r.git_sha.clone(),
            deployed_by: r.deployed_by.clone(),
            status: r.status,
            promoted_from: r.promoted_from.clone(),
            rollback_of: r.rollback_of.clone(),
            rolled_forward_from: r.rolled_forward_from.clone(),
            canary: r.canary.clone(),
            pr,
            approved_by,
            build_id: r.build_id.clone(),
            error: r.error.clone(),
            runner: r.runner.clone().filter(|_| r.status == Status::Started),
            sequence: r.sequence,
            rollout_id: r.rollout_id.clone(),
            metadata,
            decisions: r.decisions.clone(),
        });
    }
    // A tag whose name is not a record's is found by both listings.
    let known: std::collections::HashSet<String> =
        unparseable.iter().map(|u| u.tag.clone()).collect();
    let more: Vec<Unparseable> = timeline
        .skipped()?
        .into_iter()
        .filter(|u| !known.contains(&u.tag))
        .collect();
    unparseable.extend(more);
    Ok(HistoryReport {
        deployment: deployment.to_owned(),
        target: query.target.clone(),
        entries,
        rollouts: shown.len(),
        total: matching.len(),
        recorded: recorded.len(),
        counted_all,
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
