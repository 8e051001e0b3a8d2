//! Where a commit has run: read from the history records, not guessed from ancestry. A
//! rollback is only to a commit the target ran before, and a direct rollout to a promoted
//! target is only of a commit that ran in one of its sources. [`Ran`] is the repository's
//! answer to the planner's [`Records`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::records::Records;
use crate::contracts::{BuildRecord, Status, TagRecord};
use crate::git::GitRepo;
use crate::git::tags::TagEntry;
use crate::workflow::error::WorkflowError;

/// The records of one deployment, each target's history listed once and each record read at
/// most once.
pub struct Ran<'a> {
    git: &'a GitRepo,
    deployment: &'a str,
    tags: RefCell<HashMap<String, Rc<Vec<TagEntry>>>>,
    /// Records read, by tag object (`None`: not a readable record, which never counts).
    seen: RefCell<HashMap<String, Option<Rc<TagRecord>>>>,
}

impl<'a> Ran<'a> {
    /// The history of `deployment`.
    pub fn new(git: &'a GitRepo, deployment: &'a str) -> Ran<'a> {
        Ran {
            git,
            deployment,
            tags: RefCell::new(HashMap::new()),
            seen: RefCell::new(HashMap::new()),
        }
    }

    fn history(&self, target: &str) -> Result<Rc<Vec<TagEntry>>, WorkflowError> {
        if let Some(list) = self.tags.borrow().get(target) {
            return Ok(list.clone());
        }
        let (list, _) = self.git.history_tags(self.deployment, Some(target))?;
        let list = Rc::new(list);
        self.tags
            .borrow_mut()
            .insert(target.to_owned(), list.clone());
        Ok(list)
    }

    /// The record of `entry`; `None` when it is not a readable atmos record (such a tag is
    /// listed by `status` and `verify`, and never decides anything).
    fn record(&self, entry: &TagEntry) -> Option<Rc<TagRecord>> {
        if let Some(known) = self.seen.borrow().get(&entry.oid) {
            return known.clone();
        }
        let read = self
            .git
            .read_record(entry, self.deployment)
            .ok()
            .map(Rc::new);
        self.seen
            .borrow_mut()
            .insert(entry.oid.clone(), read.clone());
        read
    }
}

impl Records for Ran<'_> {
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

    /// The newest `success` or `rollback` record of `component` deploying `sha` in `target`.
    fn deployed_record(
        &self,
        target: &str,
        component: &str,
        sha: &str,
    ) -> Result<Option<TagRecord>, WorkflowError> {
        let history = self.history(target)?;
        for e in history.iter().rev().filter(|e| e.component == component) {
            if let Some(r) = self.record(e)
                && r.git_sha == sha
                && matches!(r.status, Status::Success | Status::Rollback)
            {
                return Ok(Some((*r).clone()));
            }
        }
        Ok(None)
    }

    fn build(&self, component: &str, sha: &str) -> Result<Option<BuildRecord>, WorkflowError> {
        Ok(crate::artifacts::latest(self.git, self.deployment, sha)?.remove(component))
    }
}
