//! Reading history back: the history tags of a deployment, listed by prefix (see
//! [`super::refdb`]) and parsed. Tags in the namespace that are not atmos records
//! (hand-made, lightweight, another `apiVersion`, a name that does not fit the layout) are
//! returned as [`Unparseable`], never an error, so one odd tag cannot break a query.

use git2::Oid;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::{GitError, GitRepo, Libgit2};
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
    /// For a record folded into the archive ledger: the tag object's raw content, kept there
    /// byte for byte (its id is `oid`); `None` for a live tag.
    pub archived: Option<std::sync::Arc<str>>,
}

impl TagEntry {
    /// The entry of the history tag `refname` (`refs/tags/atmos/deployments/<d>/<t>/<c>/<time>`)
    /// of `deployment`, if the name fits the layout.
    pub fn parse(refname: &str, oid: &str, deployment: &str) -> Option<TagEntry> {
        let base = format!("refs/tags/{TAG_PREFIX}/{deployment}/");
        let rest = refname.strip_prefix(&base)?;
        let (target, more) = rest.split_once('/')?;
        let (component, segment) = more.rsplit_once('/')?;
        let (at, seq) = parse_segment(segment)?;
        Some(TagEntry {
            name: refname.trim_start_matches("refs/tags/").to_owned(),
            oid: oid.to_owned(),
            target: target.to_owned(),
            component: component.to_owned(),
            at,
            seq,
            archived: None,
        })
    }

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

impl Unparseable {
    /// How the reason of an object this clone lacks begins (a partial clone's ledger).
    pub const MISSING: &'static str = "missing from this clone:";

    /// True when it was not read because the clone lacks it, not because it is malformed.
    pub fn is_missing(&self) -> bool {
        self.reason.starts_with(Self::MISSING)
    }
}

/// What a tag object says about itself.
#[derive(Debug, Clone)]
pub struct TagParts {
    /// The object it points at.
    pub target: String,
    /// Its `tag` header (the name it was created under).
    pub name: Vec<u8>,
    /// The message (with any signature appended, as git stores it).
    pub message: Vec<u8>,
}

/// Parse a raw tag object (`object`, `type`, `tag`, `tagger` headers, a blank line, the
/// message) as git writes it.
pub fn parse_tag_object(raw: &str) -> Result<TagParts, String> {
    let (head, message) = raw
        .split_once("\n\n")
        .unwrap_or((raw.trim_end_matches('\n'), ""));
    let mut target = None;
    let mut name = None;
    let mut kind = None;
    for line in head.lines() {
        match line.split_once(' ') {
            Some(("object", v)) => target = Some(v.to_owned()),
            Some(("type", v)) => kind = Some(v.to_owned()),
            Some(("tag", v)) => name = Some(v.as_bytes().to_vec()),
            _ => {}
        }
    }
    match (target, name, kind.as_deref()) {
        (Some(target), Some(name), Some("commit")) => Ok(TagParts {
            target,
            name,
            message: message.as_bytes().to_vec(),
        }),
        (_, _, Some(other)) if other != "commit" => Err(format!(
            "the archived tag object points at a {other}, not a commit"
        )),
        _ => Err("the archived tag object lacks its object or tag header".to_owned()),
    }
}

impl GitRepo {
    /// The history tags of `deployment` (one target, or all) that are live refs, sorted oldest
    /// first, and the tags whose names do not fit the layout.
    pub fn live_tags(
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
            match TagEntry::parse(&e.name, &e.oid, deployment) {
                Some(entry) => tags.push(entry),
                None => odd.push(Unparseable {
                    tag: e.name.trim_start_matches("refs/tags/").to_owned(),
                    reason: "the name does not end in a <UTC YYYY-MM-DDTHH-MM-SSZ> segment under <target>/<component>/".into(),
                }),
            }
        }
        tags.sort_by_key(TagEntry::key);
        Ok((tags, odd))
    }

    /// The raw content of a record's tag object (header, message and any signature), as
    /// signed: from the object database, or from the ledger for an archived record.
    pub fn tag_content(&self, entry: &TagEntry) -> Result<Vec<u8>, GitError> {
        if let Some(raw) = &entry.archived {
            return Ok(raw.as_bytes().to_vec());
        }
        let odb = self.raw().odb().git()?;
        let object = odb.read(super::oid(&entry.oid)?).git()?;
        Ok(object.data().to_vec())
    }

    /// The name a tag object gives itself (`atmos/deployments/…`), when `oid` is a tag.
    pub fn tag_name_of(&self, oid: &str) -> Option<String> {
        let oid = Oid::from_str(oid).ok()?;
        let tag = self.raw().find_tag(oid).ok()?;
        tag.name().ok().map(|n| n.to_owned())
    }

    /// The signed part and the SSH signature of a record's tag object, when it is signed.
    pub fn tag_signature(&self, entry: &TagEntry) -> Result<Option<(Vec<u8>, String)>, GitError> {
        let content = self.tag_content(entry)?;
        Ok(crate::signing::split_signed(&content)
            .map(|(payload, sig)| (payload.to_vec(), sig.to_owned())))
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
        let too_big = |size: usize| {
            odd(format!(
                "the record holds {size} bytes; a record is at most {}",
                crate::contracts::limits::RECORD_MAX
            ))
        };
        let parts = match &entry.archived {
            Some(raw) if raw.len() > crate::contracts::limits::RECORD_MAX => {
                return Err(too_big(raw.len()));
            }
            Some(raw) => parse_tag_object(raw).map_err(odd)?,
            None => {
                let oid = Oid::from_str(&entry.oid).map_err(|e| odd(e.to_string()))?;
                // Sized before it is read: a huge object is never loaded.
                let size = self
                    .raw()
                    .odb()
                    .and_then(|db| db.read_header(oid))
                    .map(|(size, _)| size)
                    .map_err(|e| odd(e.message().to_owned()))?;
                if size > crate::contracts::limits::RECORD_MAX {
                    return Err(too_big(size));
                }
                let tag = self
                    .raw()
                    .find_tag(oid)
                    .map_err(|_| odd("a lightweight tag, not an annotated atmos record".into()))?;
                TagParts {
                    target: tag.target_id().to_string(),
                    name: tag.name_bytes().to_vec(),
                    message: tag.message_bytes().unwrap_or_default().to_vec(),
                }
            }
        };
        let bytes = parts.message.as_slice();
        // A signed record carries its SSH signature after the message, as `git tag -s` writes.
        let body = crate::signing::split_signed(bytes).map_or(bytes, |(payload, _)| payload);
        let message =
            std::str::from_utf8(body).map_err(|_| odd("the tag message is not UTF-8".into()))?;
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
        // The name and time are inside the (signed) object too: a record copied under another
        // tag name is not that record.
        if parts.name != entry.name.as_bytes() {
            return Err(odd(format!(
                "the tag object is named {}, not {}: a record copied under another name",
                String::from_utf8_lossy(&parts.name),
                entry.name
            )));
        }
        if record
            .timestamp
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_second())
            != Some(entry.at.as_second())
        {
            return Err(odd(format!(
                "the record's timestamp {} is not the time in its tag name",
                record.timestamp
            )));
        }
        if parts.target != record.git_sha {
            return Err(odd(format!(
                "the tag points at {} but its record says git_sha {}",
                parts.target, record.git_sha
            )));
        }
        Ok(record)
    }
}
