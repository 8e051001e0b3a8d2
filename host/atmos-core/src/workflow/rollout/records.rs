//! What planning asks of the records: what a target runs, whether a commit ran there, the
//! record of that run, and what was built. The planner's steps take this trait rather than
//! the repository, so that every verdict is a function of facts a unit test can state in a
//! table; [`super::ran::Ran`] answers from git.

use crate::contracts::{BuildRecord, TagRecord};
use crate::workflow::error::WorkflowError;

/// A record that deployed a commit: its tag object and what it says.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The tag object (a promotion names it as its source record).
    pub oid: String,
    /// The record.
    pub record: TagRecord,
}

/// The facts of a deployment's history that decide a rollout.
pub trait Records {
    /// The commit `component` runs in `target` (its state ref), if it was ever deployed there.
    fn deployed(&self, target: &str, component: &str) -> Result<Option<String>, WorkflowError>;

    /// The newest record of `component` in `target` that deployed `sha` (status `success`
    /// or `rollback`) and counts: a state ref alone is not a rollout.
    fn deployed_record(
        &self,
        target: &str,
        component: &str,
        sha: &str,
    ) -> Result<Option<Deployed>, WorkflowError>;

    /// The newest build of `component` at `sha` (its builds note).
    fn build(&self, component: &str, sha: &str) -> Result<Option<BuildRecord>, WorkflowError>;

    /// True when commit `sha` is newer than `than`: it contains it, or (unrelated histories)
    /// was committed later.
    fn newer(&self, sha: &str, than: &str) -> Result<bool, WorkflowError>;

    /// True when `component` ran `sha` in `target` (a record that counts says so).
    fn ran(&self, target: &str, component: &str, sha: &str) -> Result<bool, WorkflowError> {
        Ok(self.deployed_record(target, component, sha)?.is_some())
    }

    /// True when every one of `components` ran `sha` in `target`.
    fn ran_all(&self, target: &str, components: &[&str], sha: &str) -> Result<bool, WorkflowError> {
        for c in components {
            if !self.ran(target, c, sha)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Records stated by a test: what runs where, which commits ran where (with their images),
/// and what was built.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Fake {
    /// `(target, component)` → the commit it runs.
    pub state: std::collections::BTreeMap<(String, String), String>,
    /// `(target, component, sha)` → the image digest it ran with, if any.
    pub ran: std::collections::BTreeMap<(String, String, String), Option<String>>,
    /// `(component, sha)` → the digest built.
    pub built: std::collections::BTreeMap<(String, String), String>,
    /// `(newer, older)` pairs of commits; any other pair reads as older.
    pub newer: std::collections::BTreeSet<(String, String)>,
}

#[cfg(test)]
impl Fake {
    /// `component` runs `sha` in `target`, and ran it there (a record says so).
    pub fn runs(mut self, target: &str, component: &str, sha: &str) -> Fake {
        self.state
            .insert((target.into(), component.into()), sha.into());
        self.ran_there(target, component, sha, None)
    }

    /// `component` ran `sha` in `target` (with `digest`), whatever it runs now.
    pub fn ran_there(
        mut self,
        target: &str,
        component: &str,
        sha: &str,
        digest: Option<&str>,
    ) -> Fake {
        self.ran.insert(
            (target.into(), component.into(), sha.into()),
            digest.map(str::to_owned),
        );
        self
    }

    /// Commit `sha` is newer than `than`.
    pub fn newer_than(mut self, sha: &str, than: &str) -> Fake {
        self.newer.insert((sha.into(), than.into()));
        self
    }

    /// `component` was built at `sha` as `digest`.
    pub fn built(mut self, component: &str, sha: &str, digest: &str) -> Fake {
        self.built
            .insert((component.into(), sha.into()), digest.into());
        self
    }
}

#[cfg(test)]
impl Records for Fake {
    fn newer(&self, sha: &str, than: &str) -> Result<bool, WorkflowError> {
        Ok(self.newer.contains(&(sha.to_owned(), than.to_owned())))
    }

    fn deployed(&self, target: &str, component: &str) -> Result<Option<String>, WorkflowError> {
        Ok(self
            .state
            .get(&(target.to_owned(), component.to_owned()))
            .cloned())
    }

    fn deployed_record(
        &self,
        target: &str,
        component: &str,
        sha: &str,
    ) -> Result<Option<Deployed>, WorkflowError> {
        let key = (target.to_owned(), component.to_owned(), sha.to_owned());
        Ok(self.ran.get(&key).map(|digest| Deployed {
            oid: format!("record-of-{target}-{component}-{sha}"),
            record: TagRecord {
                image: digest
                    .as_ref()
                    .map(|_| format!("registry.test/{component}")),
                image_digest: digest.clone(),
                ..crate::contracts::record::example(target, component, sha)
            },
        }))
    }

    fn build(&self, component: &str, sha: &str) -> Result<Option<BuildRecord>, WorkflowError> {
        Ok(self
            .built
            .get(&(component.to_owned(), sha.to_owned()))
            .map(|digest| BuildRecord {
                deployment: "svc".into(),
                component: component.into(),
                git_sha: sha.into(),
                image: Some(format!("registry.test/{component}")),
                digest: Some(digest.clone()),
                builder: "docker".into(),
                pushed: true,
                built_by: "ci@example.com".into(),
                built_at: "2025-01-01T00:00:00Z".into(),
                duration_ms: 1,
                target: "dev".into(),
                context: Default::default(),
                build_id: None,
                provenance: None,
                signature: None,
            }))
    }
}
