//! Where a commit has run: read from the history records, not guessed from ancestry. A
//! rollback is only to a commit the target ran before, and a direct rollout to a promoted
//! target is only of a commit that ran in one of its sources.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::contracts::Status;
use crate::git::tags::TagEntry;
use crate::git::{GitError, GitRepo};

/// Answers "did `component` run `sha` successfully in `target`?", reading each target's
/// history once and each record at most once.
pub struct Ran<'a> {
    git: &'a GitRepo,
    deployment: &'a str,
    tags: RefCell<HashMap<String, Vec<TagEntry>>>,
    seen: RefCell<HashMap<String, Option<(String, Status)>>>,
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

    /// True when `component` has a `success` (or `rollback`) record of `sha` in `target`. The
    /// state ref alone does not count: a hand-moved ref is not a rollout.
    pub fn ran(&self, target: &str, component: &str, sha: &str) -> Result<bool, GitError> {
        if !self.tags.borrow().contains_key(target) {
            let (list, _) = self.git.history_tags(self.deployment, Some(target))?;
            self.tags.borrow_mut().insert(target.to_owned(), list);
        }
        let tags = self.tags.borrow();
        let list = tags.get(target).map(Vec::as_slice).unwrap_or_default();
        for e in list.iter().rev().filter(|e| e.component == component) {
            let known = self.seen.borrow().get(&e.oid).cloned();
            let record = match known {
                Some(r) => r,
                None => {
                    let r = self
                        .git
                        .read_record(e, self.deployment)
                        .ok()
                        .map(|r| (r.git_sha, r.status));
                    self.seen.borrow_mut().insert(e.oid.clone(), r.clone());
                    r
                }
            };
            if let Some((git_sha, status)) = record
                && git_sha == sha
                && matches!(status, Status::Success | Status::Rollback)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// True when every one of `components` ran `sha` in `target`.
    pub fn ran_all(&self, target: &str, components: &[&str], sha: &str) -> Result<bool, GitError> {
        for c in components {
            if !self.ran(target, c, sha)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
