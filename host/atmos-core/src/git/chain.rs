//! A target/component's history in its one true order: the chain of records, each naming the
//! one before it (`previous_record`), from the newest — which the chain ref
//! `refs/atmos/chains/<d>/<t>/<c>` names — back. The time in a tag's name is data, never the
//! order: a runner whose clock is behind still appends after the newest record.
//!
//! Histories written before chain refs existed are read as they were, newest first by the
//! time in their names; a chain that starts after them continues into them. A record on no
//! chain (pushed beside it to a server without the guard, or left by an offline run that was
//! published again elsewhere) is not history: the walk skips it and says so.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::tags::{TagEntry, Unparseable};
use super::{GitError, GitRepo};
use crate::contracts::TagRecord;
use crate::contracts::layout::{TAG_PREFIX, chain_ref};

/// One record of a history, read.
#[derive(Debug, Clone)]
pub struct Link {
    /// Its tag (or archived entry).
    pub entry: TagEntry,
    /// Its record.
    pub record: Arc<TagRecord>,
}

/// A walk over one target/component's history, newest first.
pub struct ChainWalk<'g> {
    git: &'g GitRepo,
    deployment: String,
    /// `(target, component)` of the history.
    group: (String, String),
    /// True once the group's tags are listed: a walk along links reads each record by its
    /// object id and lists the group only when it must (a record not found that way, the
    /// order by time, what the walk went past) — so its cost follows what it reads, not the
    /// size of the history.
    listed: bool,
    /// Live tags and archived entries of the group, by tag object id.
    by_oid: HashMap<String, TagEntry>,
    /// The same, oldest first by the time in their names (legacy order).
    by_time: Vec<TagEntry>,
    /// Archived entries are loaded only when the walk reaches past the live tags.
    ledger_loaded: bool,
    /// The next record by link (`None`: follow the time order below `floor`).
    next: Option<String>,
    /// In legacy order: only entries strictly older than this one are next.
    floor: Option<(jiff::Timestamp, u32)>,
    legacy: bool,
    visited: HashSet<String>,
    /// The oldest entry read so far.
    oldest: Option<(jiff::Timestamp, u32)>,
    /// Records that could not be read (never history).
    pub unreadable: Vec<Unparseable>,
    done: bool,
}

/// A whole history: its records oldest first, the entries on no chain, and the records that
/// could not be read.
pub type WholeHistory = (Vec<Link>, Vec<TagEntry>, Vec<Unparseable>);

/// How many entries on no chain a reader reads to say why each is skipped.
const SKIPPED_READ: usize = 100;

impl GitRepo {
    /// The tag object the chain ref of `deployment`/`target`/`component` names, if any.
    pub fn chain_tip(
        &self,
        deployment: &str,
        target: &str,
        component: &str,
    ) -> Result<Option<String>, GitError> {
        Ok(self
            .refs()
            .find(&chain_ref(deployment, target, component))?
            .map(|e| e.oid))
    }

    /// The live history tags of one target/component, oldest first by name, and the tags
    /// directly under its folder whose names are not a record's.
    pub fn group_tags(
        &self,
        deployment: &str,
        target: &str,
        component: &str,
    ) -> Result<(Vec<TagEntry>, Vec<Unparseable>), GitError> {
        let prefix = format!("refs/tags/{TAG_PREFIX}/{deployment}/{target}/{component}/");
        let mut out = Vec::new();
        let mut odd = Vec::new();
        for e in self.refs().list(&prefix)? {
            match TagEntry::parse(&e.name, &e.oid, deployment) {
                // A prefix of another component's name (`ecs` and `ecs/api`) is not this one.
                Some(t) if t.target == target && t.component == component => out.push(t),
                Some(_) => {}
                None if !e.name[prefix.len()..].contains('/') => odd.push(Unparseable {
                    tag: e.name.trim_start_matches("refs/tags/").to_owned(),
                    reason: "the name does not end in a <UTC YYYY-MM-DDTHH-MM-SSZ> segment under <target>/<component>/".into(),
                }),
                None => {}
            }
        }
        out.sort_by_key(TagEntry::key);
        Ok((out, odd))
    }

    /// Walk the history of `deployment`/`target`/`component`, newest first.
    pub fn chain(
        &self,
        deployment: &str,
        target: &str,
        component: &str,
    ) -> Result<ChainWalk<'_>, GitError> {
        let tip = self.chain_tip(deployment, target, component)?;
        let mut walk = ChainWalk {
            git: self,
            deployment: deployment.to_owned(),
            group: (target.to_owned(), component.to_owned()),
            listed: false,
            by_oid: HashMap::new(),
            by_time: Vec::new(),
            ledger_loaded: false,
            next: None,
            floor: None,
            legacy: true,
            visited: HashSet::new(),
            oldest: None,
            unreadable: Vec::new(),
            done: false,
        };
        if let Some(tip) = tip {
            walk.next = Some(tip);
            walk.legacy = false;
        } else {
            // Read by time: every tag, and the archive (it may have been archived).
            walk.list()?;
            walk.load_ledger(target, component)?;
        }
        Ok(walk)
    }
}

impl ChainWalk<'_> {
    /// List the group's live tags (once).
    fn list(&mut self) -> Result<(), GitError> {
        if self.listed {
            return Ok(());
        }
        self.listed = true;
        let (live, odd) = self
            .git
            .group_tags(&self.deployment, &self.group.0, &self.group.1)?;
        self.unreadable.extend(odd);
        for e in live {
            if !self.by_oid.contains_key(&e.oid) {
                self.by_oid.insert(e.oid.clone(), e.clone());
                self.by_time.push(e);
            }
        }
        self.by_time.sort_by_key(TagEntry::key);
        Ok(())
    }

    /// The live tag of this group that holds the record `oid`, found from the object's own
    /// name and checked against the ref of that name — without listing the group.
    fn live_tag(&self, oid: &str) -> Result<Option<TagEntry>, GitError> {
        let Some(name) = self.git.tag_name_of(oid) else {
            return Ok(None);
        };
        let refname = format!("refs/tags/{name}");
        let Some(found) = self.git.refs().find(&refname)? else {
            return Ok(None);
        };
        if found.oid != oid {
            return Ok(None);
        }
        Ok(TagEntry::parse(&refname, oid, &self.deployment)
            .filter(|e| e.target == self.group.0 && e.component == self.group.1))
    }

    fn load_ledger(&mut self, target: &str, component: &str) -> Result<(), GitError> {
        if self.ledger_loaded {
            return Ok(());
        }
        self.ledger_loaded = true;
        let (archived, _) = self.git.ledger_entries(&self.deployment, Some(target))?;
        for e in archived.into_iter().filter(|e| e.component == component) {
            // A record both archived and still a tag is one record.
            if !self.by_oid.contains_key(&e.oid) && !self.by_time.iter().any(|l| l.name == e.name) {
                self.by_oid.insert(e.oid.clone(), e.clone());
                self.by_time.push(e);
            }
        }
        self.by_time.sort_by_key(TagEntry::key);
        Ok(())
    }

    /// The entry with object id `oid`: its live tag, else (listing the group) any entry of
    /// it, else the archive's.
    fn find(&mut self, oid: &str) -> Result<Option<TagEntry>, GitError> {
        if let Some(e) = self.by_oid.get(oid) {
            return Ok(Some(e.clone()));
        }
        if !self.listed
            && let Some(e) = self.live_tag(oid)?
        {
            self.by_oid.insert(e.oid.clone(), e.clone());
            return Ok(Some(e));
        }
        self.list()?;
        if let Some(e) = self.by_oid.get(oid) {
            return Ok(Some(e.clone()));
        }
        let (t, c) = self.group.clone();
        self.load_ledger(&t, &c)?;
        Ok(self.by_oid.get(oid).cloned())
    }

    /// The next record in legacy order: the newest unvisited entry below the floor.
    fn next_by_time(&mut self) -> Result<Option<TagEntry>, GitError> {
        self.list()?;
        let floor = self.floor;
        let found = self
            .by_time
            .iter()
            .rev()
            .filter(|e| floor.is_none_or(|f| e.key() < f))
            .find(|e| !self.visited.contains(&e.oid))
            .cloned();
        if let Some(e) = &found {
            self.floor = Some(e.key());
        }
        Ok(found)
    }

    /// The next record, newest first; `None` at the start of the history.
    pub fn next_link(&mut self) -> Result<Option<Link>, GitError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let entry = if self.legacy {
                self.next_by_time()?
            } else {
                match self.next.take() {
                    Some(oid) => match self.find(&oid)? {
                        Some(e) => Some(e),
                        // The chain names a record this repository does not have (archived
                        // elsewhere, or deleted): what is older than what was read is read
                        // by time.
                        None => {
                            self.legacy = true;
                            self.floor = self.floor.or(self.oldest);
                            continue;
                        }
                    },
                    None => {
                        self.legacy = true;
                        self.floor = self.floor.or(self.oldest);
                        continue;
                    }
                }
            };
            let Some(entry) = entry else {
                self.done = true;
                return Ok(None);
            };
            if !self.visited.insert(entry.oid.clone()) {
                // A loop of links: stop rather than walk forever.
                self.done = true;
                return Ok(None);
            }
            match self.git.read_record(&entry, &self.deployment) {
                Ok(record) => {
                    self.oldest = Some(self.oldest.map_or(entry.key(), |o| o.min(entry.key())));
                    if !self.legacy {
                        match &record.previous_record {
                            Some(prev) => self.next = Some(prev.clone()),
                            // The first record of a numbered chain: the start of the history.
                            None if record.sequence.is_some() => self.done = true,
                            None => {
                                // Older records, if any, were written before records were
                                // linked: they are read by time.
                                self.legacy = true;
                                self.floor = Some(entry.key());
                            }
                        }
                    } else {
                        self.floor = Some(entry.key());
                    }
                    return Ok(Some(Link {
                        entry,
                        record: Arc::new(record),
                    }));
                }
                Err(odd) => {
                    // Its link cannot be read: what is older is read by time.
                    self.unreadable.push(odd);
                    self.legacy = true;
                    self.floor = Some(entry.key());
                }
            }
        }
    }

    /// The whole history, oldest first, and the entries of the group that are on no chain
    /// (newer than where the chain's walk went by time, and never reached).
    pub fn all(mut self) -> Result<WholeHistory, GitError> {
        let mut out = Vec::new();
        while let Some(l) = self.next_link()? {
            out.push(l);
        }
        out.reverse();
        let off = self.passed_by()?;
        Ok((out, off, self.unreadable))
    }

    /// The records of the span walked that could not be read — without listing the group
    /// for what the walk went past (a reader of what runs; `verify` reports those).
    pub fn unread(self) -> Vec<Unparseable> {
        self.unreadable
    }

    /// The entries of the group the walk went past without reaching them — on no chain —
    /// among those named no earlier than the oldest record it read (all of them once it
    /// reached the start): what a reader of that span should say it skipped.
    pub fn passed_by(&mut self) -> Result<Vec<TagEntry>, GitError> {
        self.list()?;
        let from = if self.done { None } else { self.oldest };
        Ok(self
            .by_time
            .iter()
            .filter(|e| !self.visited.contains(&e.oid) && from.is_none_or(|k| e.key() >= k))
            .cloned()
            .collect())
    }

    /// What a reader of the span walked says it skipped: the records that could not be read,
    /// and the entries it went past ([`ChainWalk::passed_by`]) with the reason each is not
    /// history (at most 100 read; the rest counted).
    pub fn skipped(mut self) -> Result<Vec<Unparseable>, GitError> {
        let passed = self.passed_by()?;
        let mut out = self.unreadable.clone();
        for e in passed.iter().take(SKIPPED_READ) {
            match self.git.read_record(e, &self.deployment) {
                Err(odd) => out.push(odd),
                Ok(_) => out.push(Unparseable {
                    tag: e.name.clone(),
                    reason: format!(
                        "a record on no chain: the history of {}/{}/{} does not reach it (written beside it by hand, or a copy of a record published elsewhere); `atmos deployment verify` reports it",
                        self.deployment, e.target, e.component
                    ),
                }),
            }
        }
        if passed.len() > SKIPPED_READ {
            let e = &passed[SKIPPED_READ];
            out.push(Unparseable {
                tag: format!(
                    "{}/{}/{}/{}/…",
                    TAG_PREFIX, self.deployment, e.target, e.component
                ),
                reason: format!(
                    "{} more tags on no chain, not read",
                    passed.len() - SKIPPED_READ
                ),
            });
        }
        Ok(out)
    }
}

impl Iterator for ChainWalk<'_> {
    type Item = Result<Link, GitError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_link().transpose()
    }
}

/// Several histories (the components of a target, or of every target) walked as one
/// timeline, newest first: each along its chain, interleaved by the time in their names.
pub struct Timeline<'g> {
    walks: Vec<(ChainWalk<'g>, Option<Link>)>,
}

impl GitRepo {
    /// The timeline of `groups` (`(target, component)`) of `deployment`.
    pub fn timeline(
        &self,
        deployment: &str,
        groups: &[(String, String)],
    ) -> Result<Timeline<'_>, GitError> {
        let mut walks = Vec::with_capacity(groups.len());
        for (t, c) in groups {
            // A timeline says what it skipped, which needs each history's tags: listed once,
            // up front, rather than found one object at a time.
            let mut walk = self.chain(deployment, t, c)?;
            walk.list()?;
            let head = walk.next_link()?;
            walks.push((walk, head));
        }
        Ok(Timeline { walks })
    }

    /// Every `(target, component)` with history in `deployment` (one target, or all), by the
    /// names of its tags and archived records.
    pub fn history_groups(
        &self,
        deployment: &str,
        target: Option<&str>,
    ) -> Result<Vec<(String, String)>, GitError> {
        let (tags, _) = self.history_tags(deployment, target)?;
        let mut groups: Vec<(String, String)> =
            tags.into_iter().map(|e| (e.target, e.component)).collect();
        groups.sort();
        groups.dedup();
        Ok(groups)
    }
}

impl Timeline<'_> {
    /// The next record, newest first; `None` when every history is read.
    pub fn next_link(&mut self) -> Result<Option<Link>, GitError> {
        let Some(i) = self
            .walks
            .iter()
            .enumerate()
            .filter_map(|(i, (_, head))| head.as_ref().map(|l| (i, l.entry.key())))
            .max_by_key(|(_, k)| *k)
            .map(|(i, _)| i)
        else {
            return Ok(None);
        };
        let (walk, head) = &mut self.walks[i];
        let out = head.take();
        *head = walk.next_link()?;
        Ok(out)
    }

    /// Stop reading the history `link` came from (its older records are not needed).
    pub fn close(&mut self, link: &Link) {
        for (_, head) in &mut self.walks {
            if head.as_ref().is_some_and(|h| {
                h.entry.target == link.entry.target && h.entry.component == link.entry.component
            }) {
                *head = None;
            }
        }
    }

    /// What the walks skipped in the span they read ([`ChainWalk::skipped`]).
    pub fn skipped(self) -> Result<Vec<Unparseable>, GitError> {
        let mut out = Vec::new();
        for (w, _) in self.walks {
            out.extend(w.skipped()?);
        }
        Ok(out)
    }
}
