//! Reading the recorded state back: state refs and history tags of a deployment, listed by
//! prefix (see [`super::refdb`]) and parsed. Tags in the namespace that are not atmos records
//! (hand-made, lightweight, another `apiVersion`, a name that does not fit the layout) are
//! returned as [`Unparseable`], never an error, so one odd tag cannot break a query.

use git2::Oid;
use jiff::Timestamp;
use serde::Serialize;

use super::refs::STATE_PREFIX;
use super::tags::{TAG_PREFIX, TagRecord};
use super::{GitError, GitRepo};

/// A history tag, from its name alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEntry {
    /// Tag name without `refs/tags/`.
    pub name: String,
    /// The tag object.
    pub oid: String,
    /// Target name.
    pub target: String,
    /// Component name.
    pub component: String,
    /// When the rollout started (from the name).
    pub at: Timestamp,
    /// Same-second sequence (`.N` suffix; 0 without).
    pub seq: u32,
}

impl TagEntry {
    /// Sort key: newest last.
    pub fn key(&self) -> (Timestamp, u32) {
        (self.at, self.seq)
    }
}

/// A tag in the namespace that is not a readable atmos record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unparseable {
    /// Tag name without `refs/tags/`.
    pub tag: String,
    /// Why it was not used.
    pub reason: String,
}

/// A state ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    /// Target name.
    pub target: String,
    /// Component name.
    pub component: String,
    /// The deployed commit.
    pub commit: String,
}

/// Parse `YYYY-MM-DDTHH-MM-SSZ[.N]`.
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

impl GitRepo {
    /// History tags of `deployment` (one target, or all), sorted oldest first, and the tags
    /// whose names do not fit the layout.
    pub fn history_tags(
        &self,
        deployment: &str,
        target: Option<&str>,
    ) -> Result<(Vec<TagEntry>, Vec<Unparseable>), GitError> {
        let base = format!("refs/tags/{TAG_PREFIX}/{deployment}/");
        let prefix = match target {
            Some(t) => format!("{base}{t}/"),
            None => base.clone(),
        };
        let mut tags = Vec::new();
        let mut odd = Vec::new();
        for e in self.refs().list(&prefix)? {
            let short = e.name.trim_start_matches("refs/tags/").to_owned();
            let rest = &e.name[base.len()..];
            let parsed = rest.split_once('/').and_then(|(t, more)| {
                let (component, segment) = more.rsplit_once('/')?;
                let (at, seq) = parse_segment(segment)?;
                Some((t.to_owned(), component.to_owned(), at, seq))
            });
            match parsed {
                Some((target, component, at, seq)) => tags.push(TagEntry {
                    name: short,
                    oid: e.oid,
                    target,
                    component,
                    at,
                    seq,
                }),
                None => odd.push(Unparseable {
                    tag: short,
                    reason: "the name does not end in a <UTC YYYY-MM-DDTHH-MM-SSZ> segment under <target>/<component>/".into(),
                }),
            }
        }
        tags.sort_by_key(TagEntry::key);
        Ok((tags, odd))
    }

    /// Read and check one record.
    pub fn read_record(
        &self,
        entry: &TagEntry,
        deployment: &str,
    ) -> Result<TagRecord, Unparseable> {
        let odd = |reason: String| Unparseable {
            tag: entry.name.clone(),
            reason,
        };
        let oid = Oid::from_str(&entry.oid).map_err(|e| odd(e.to_string()))?;
        let tag = self
            .raw()
            .find_tag(oid)
            .map_err(|_| odd("a lightweight tag, not an annotated atmos record".into()))?;
        let message = tag
            .message()
            .ok()
            .flatten()
            .ok_or_else(|| odd("the tag message is not UTF-8".into()))?;
        let record = TagRecord::from_message(message).map_err(|e| odd(e.to_string()))?;
        if record.deployment != deployment
            || record.target != entry.target
            || record.component != entry.component
        {
            return Err(odd(format!(
                "the record is for {}/{}/{}, not the place its tag name says",
                record.deployment, record.target, record.component
            )));
        }
        if tag.target_id().to_string() != record.git_sha {
            return Err(odd(format!(
                "the tag points at {} but its record says git_sha {}",
                tag.target_id(),
                record.git_sha
            )));
        }
        Ok(record)
    }

    /// State refs of `deployment` (one target, or all), sorted by name.
    pub fn state_refs(
        &self,
        deployment: &str,
        target: Option<&str>,
    ) -> Result<Vec<StateEntry>, GitError> {
        let base = format!("{STATE_PREFIX}/{deployment}/");
        let prefix = match target {
            Some(t) => format!("{base}{t}/"),
            None => base.clone(),
        };
        Ok(self
            .refs()
            .list(&prefix)?
            .into_iter()
            .filter_map(|e| {
                let (t, c) = e.name[base.len()..].split_once('/')?;
                Some(StateEntry {
                    target: t.to_owned(),
                    component: c.to_owned(),
                    commit: e.oid,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
