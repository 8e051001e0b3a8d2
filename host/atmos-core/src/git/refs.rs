//! Current state: one lightweight ref per deployed component,
//! `refs/atmos/deployments/<deployment>/<target>/<component>` → the deployed commit.

use super::{GitError, GitRepo, Libgit2};
use crate::contracts::layout::{STATE_PREFIX, state_ref};

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

impl GitRepo {
    /// The commit a component currently runs in a target, if it was ever deployed there.
    pub fn deployed_commit(
        &self,
        deployment: &str,
        target: &str,
        component: &str,
    ) -> Result<Option<String>, GitError> {
        let name = state_ref(deployment, target, component);
        Ok(self.refs().find(&name)?.map(|e| e.oid))
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

    /// Set (or, with `None`, delete) every ref of `set` — `(name, what it must hold now, new
    /// value)` — in one transaction; fails with [`GitError::RefMoved`] when one moved.
    pub fn set_refs_from(
        &self,
        set: &[(String, Option<String>, Option<String>)],
    ) -> Result<(), GitError> {
        let raw = self.raw();
        let mut tx = raw.transaction().git()?;
        for (name, _, _) in set {
            tx.lock_ref(name).git()?;
        }
        for (name, expected, _) in set {
            let now = raw
                .find_reference(name)
                .ok()
                .and_then(|r| r.target())
                .map(|o| o.to_string());
            if now != *expected {
                return Err(GitError::RefMoved {
                    refname: name.clone(),
                    expected: expected.clone().unwrap_or_else(|| "nothing".into()),
                    found: now.unwrap_or_else(|| "nothing".into()),
                });
            }
        }
        for (name, _, value) in set {
            match value {
                Some(v) => tx
                    .set_target(name, super::oid(v)?, None, "atmos: repair")
                    .git()?,
                None => {
                    if raw.find_reference(name).is_ok() {
                        tx.remove(name).git()?;
                    }
                }
            }
        }
        tx.commit().git()
    }

    /// Set (or, with `None`, delete) every ref of `set` in one transaction, whatever they
    /// hold now: the local copy of what the shared remote was just given.
    pub fn set_refs(&self, set: &[(String, Option<String>)]) -> Result<(), GitError> {
        if set.is_empty() {
            return Ok(());
        }
        let raw = self.raw();
        let mut tx = raw.transaction().git()?;
        for (name, _) in set {
            tx.lock_ref(name).git()?;
        }
        for (name, value) in set {
            match value {
                Some(v) => tx
                    .set_target(name, super::oid(v)?, None, "atmos: published")
                    .git()?,
                None => {
                    if raw.find_reference(name).is_ok() {
                        tx.remove(name).git()?;
                    }
                }
            }
        }
        tx.commit().git()
    }
}
