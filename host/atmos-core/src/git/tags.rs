//! Reading history back: the history tags of a deployment, listed by prefix (see
//! [`super::refdb`]) and parsed. Tags in the namespace that are not atmos records
//! (hand-made, lightweight, another `apiVersion`, a name that does not fit the layout) are
//! returned as [`Unparseable`], never an error, so one odd tag cannot break a query.

use git2::Oid;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::{GitError, GitRepo};
use crate::contracts::TagRecord;
use crate::contracts::layout::{TAG_PREFIX, parse_segment};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Unparseable {
    /// Tag name without `refs/tags/`.
    pub tag: String,
    /// Why it was not used.
    pub reason: String,
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
}
