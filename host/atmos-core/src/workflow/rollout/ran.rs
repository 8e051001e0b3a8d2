//! Where a commit has run: read from the history records, not guessed from ancestry. A
//! rollback is only to a commit the target ran before, and a direct rollout to a promoted
//! target is only of a commit that ran in one of its sources. [`Ran`] is the repository's
//! answer to the planner's [`Records`].
//!
//! Where the target rolled out to requires signatures, only records whose signatures verify
//! against the trusted allowed signers count — the source's "ran there", the artifact it ran,
//! the commit a rollback returns to, the builds deployed — and every record set aside is
//! listed with why, for the plan to say so.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use super::records::{Deployed, Records};
use crate::contracts::{BuildRecord, TagRecord};
use crate::git::GitRepo;
use crate::git::chain::{ChainWalk, Link};
use crate::workflow::error::WorkflowError;

/// The raw texts of one history's records.
type Texts = Vec<std::sync::Arc<str>>;

/// How many records a search for a commit reads along the chain before asking whether any
/// record of the history names it (most searches end among the newest few).
const FAR: usize = 32;

/// Which records count: all of them, or only those whose signatures verify.
#[derive(Debug, Clone, Default)]
pub struct Counting {
    /// Only signed records verified against these allowed signers count; the reason is
    /// what requires it (e.g. "prod requires signed deployers"). `None`: every record counts.
    pub verified_only: Option<(Option<PathBuf>, String)>,
}

/// A record that exists but does not count, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Tag name.
    pub tag: String,
    /// Why it does not count.
    pub reason: String,
}

/// One group's history, read as far as needed.
struct Group<'a> {
    walk: ChainWalk<'a>,
    read: Vec<Link>,
    done: bool,
}

/// The records of one deployment, each history walked once and only as far as asked.
pub struct Ran<'a> {
    git: &'a GitRepo,
    deployment: &'a str,
    counting: Counting,
    groups: RefCell<HashMap<(String, String), Group<'a>>>,
    /// Per history, the raw text of every record it holds (live tags and archived lines):
    /// read when a walk goes far without finding a commit, to answer "never ran" at once.
    texts: RefCell<HashMap<(String, String), Texts>>,
    verified: RefCell<HashMap<String, Result<(), String>>>,
    set_aside: RefCell<Vec<SetAside>>,
}

impl<'a> Ran<'a> {
    /// The history of `deployment`, every record counting.
    pub fn new(git: &'a GitRepo, deployment: &'a str) -> Ran<'a> {
        Ran::counting(git, deployment, Counting::default())
    }

    /// The history of `deployment`, counting as `counting` says.
    pub fn counting(git: &'a GitRepo, deployment: &'a str, counting: Counting) -> Ran<'a> {
        Ran {
            git,
            deployment,
            counting,
            groups: RefCell::new(HashMap::new()),
            texts: RefCell::new(HashMap::new()),
            verified: RefCell::new(HashMap::new()),
            set_aside: RefCell::new(Vec::new()),
        }
    }

    /// The records that exist but did not count so far, each once.
    pub fn set_aside(&self) -> Vec<SetAside> {
        self.set_aside.borrow().clone()
    }

    /// The `i`-th newest record of `target`/`component`, reading the history as far as that.
    fn nth(&self, target: &str, component: &str, i: usize) -> Result<Option<Link>, WorkflowError> {
        let key = (target.to_owned(), component.to_owned());
        let mut groups = self.groups.borrow_mut();
        if !groups.contains_key(&key) {
            let walk = self.git.chain(self.deployment, target, component)?;
            groups.insert(
                key.clone(),
                Group {
                    walk,
                    read: Vec::new(),
                    done: false,
                },
            );
        }
        let Some(group) = groups.get_mut(&key) else {
            return Ok(None);
        };
        while group.read.len() <= i && !group.done {
            match group.walk.next_link()? {
                Some(l) => group.read.push(l),
                None => group.done = true,
            }
        }
        Ok(group.read.get(i).cloned())
    }

    /// Whether `link` counts: always, or when its signature verifies for its signer.
    fn counts(&self, link: &Link) -> Result<bool, WorkflowError> {
        let Some((signers, why)) = &self.counting.verified_only else {
            return Ok(true);
        };
        if let Some(known) = self.verified.borrow().get(&link.entry.oid) {
            return Ok(known.is_ok());
        }
        let verdict = match (self.git.tag_signature(&link.entry)?, signers) {
            (None, _) => Err("unsigned".to_owned()),
            (Some(_), None) => {
                Err("signed, but approvers.allowed_signers is not set to check it".to_owned())
            }
            (Some((payload, sig)), Some(path)) => crate::signing::verify(
                &payload,
                &sig,
                link.record.signer(),
                path,
                crate::signing::TAG_NAMESPACE,
            )
            .map_err(|e| format!("its signature does not verify: {e}")),
        };
        if let Err(reason) = &verdict {
            self.set_aside.borrow_mut().push(SetAside {
                tag: link.entry.name.clone(),
                reason: format!("{reason} ({why})"),
            });
        }
        let ok = verdict.is_ok();
        self.verified
            .borrow_mut()
            .insert(link.entry.oid.clone(), verdict);
        Ok(ok)
    }

    /// False when no record of `target`/`component` — live tag or archived line — holds the
    /// text `sha`, so none can have deployed it: a commit never run there is answered without
    /// walking (and parsing) the whole history. Every record a walk can reach is one of these.
    fn may_name(&self, target: &str, component: &str, sha: &str) -> Result<bool, WorkflowError> {
        let key = (target.to_owned(), component.to_owned());
        if !self.texts.borrow().contains_key(&key) {
            let mut texts: Texts = Vec::new();
            let (live, _) = self.git.group_tags(self.deployment, target, component)?;
            for e in &live {
                // A record past the size limit never counts (it is not read): nor read here.
                let fits = self
                    .git
                    .object_header(&e.oid)
                    .is_some_and(|(_, size)| size <= crate::contracts::limits::RECORD_MAX);
                if fits {
                    texts.push(String::from_utf8_lossy(&self.git.tag_content(e)?).into());
                }
            }
            if let Some(head) = self.git.ledger_head(self.deployment)? {
                let (archived, _) =
                    self.git
                        .ledger_entries_at(&head, self.deployment, Some(target))?;
                texts.extend(
                    archived
                        .into_iter()
                        .filter(|e| e.component == component)
                        .filter_map(|e| e.archived),
                );
            }
            self.texts.borrow_mut().insert(key.clone(), texts);
        }
        Ok(self
            .texts
            .borrow()
            .get(&key)
            .is_some_and(|texts| texts.iter().any(|t| t.contains(sha))))
    }

    /// The commit of the newest counting `success` or `rollback` record of `component` in
    /// `target`, other than the record named `skip` (an automatic rollback's failed one).
    pub fn last_deployed(
        &self,
        target: &str,
        component: &str,
        skip: Option<&str>,
    ) -> Result<Option<String>, WorkflowError> {
        let mut i = 0;
        while let Some(l) = self.nth(target, component, i)? {
            i += 1;
            if Some(l.entry.name.as_str()) == skip || !l.record.status.deployed() {
                continue;
            }
            if self.counts(&l)? {
                return Ok(Some(l.record.git_sha.clone()));
            }
        }
        Ok(None)
    }
}

impl Records for Ran<'_> {
    fn newer(&self, sha: &str, than: &str) -> Result<bool, WorkflowError> {
        let pair = [sha.to_owned(), than.to_owned()];
        Ok(sha != than && self.git.newest_commit(&pair)?.as_deref() == Some(sha))
    }

    fn deployed(&self, target: &str, component: &str) -> Result<Option<String>, WorkflowError> {
        let Some(commit) = self
            .git
            .deployed_commit(self.deployment, target, component)?
        else {
            return Ok(None);
        };
        if !self.git.has_object(&commit) {
            return Err(WorkflowError::MissingObject {
                refname: crate::contracts::layout::state_ref(self.deployment, target, component),
                object: commit,
            });
        }
        Ok(Some(commit))
    }

    /// The newest counting `success` or `rollback` record of `component` deploying `sha` in
    /// `target`.
    fn deployed_record(
        &self,
        target: &str,
        component: &str,
        sha: &str,
    ) -> Result<Option<Deployed>, WorkflowError> {
        let mut i = 0;
        while let Some(l) = self.nth(target, component, i)? {
            i += 1;
            // Past the newest records, ask once whether any record names the commit at all.
            if i == FAR && !self.may_name(target, component, sha)? {
                return Ok(None);
            }
            if l.record.git_sha != sha || !l.record.status.deployed() {
                continue;
            }
            if self.counts(&l)? {
                return Ok(Some(Deployed {
                    oid: l.entry.oid.clone(),
                    record: TagRecord::clone(&l.record),
                }));
            }
        }
        Ok(None)
    }

    fn build(&self, component: &str, sha: &str) -> Result<Option<BuildRecord>, WorkflowError> {
        let built = crate::artifacts::latest_counting(
            self.git,
            self.deployment,
            sha,
            self.counting
                .verified_only
                .as_ref()
                .map(|(signers, why)| (signers.as_deref(), why.as_str())),
        )?;
        for (tag, reason) in built.set_aside {
            self.set_aside.borrow_mut().push(SetAside { tag, reason });
        }
        Ok(built.latest.get(component).cloned())
    }
}
