//! The rules a record is judged by: those of the trusted ref as they stood when the record was
//! made — the newest commit of the trusted branch's first-parent history whose commit time is
//! not after the record's — or, for a push being received, the trusted ref as it is now.

use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use crate::git::GitRepo;
use crate::workflow::WorkflowError;
use crate::workflow::trust::{Rules, RulesOrigin, Snapshot};

/// Rules read once: the files they came from with their object ids, and the rules (`None`:
/// the deployment is not defined there).
type ReadRules = (Vec<(PathBuf, Option<String>)>, Option<Rc<Rules>>);

/// Rules by commit and deployment, read once each.
pub struct RulesBook<'a> {
    git: &'a GitRepo,
    rel: PathBuf,
    origin: RulesOrigin,
    /// First-parent history of the trusted ref, newest first, with commit times.
    history: Vec<(String, i64)>,
    /// Judge everything by the tip (a push being received).
    tip_only: bool,
    snapshots: HashMap<String, Rc<Snapshot>>,
    rules: HashMap<(String, String), Option<Rc<Rules>>>,
    /// Rules already read, by deployment: the files they came from with their object ids.
    /// A commit whose files are the same object ids has the same rules (most commits of a
    /// long history change code, not rules), so they are read once.
    read: HashMap<String, Vec<ReadRules>>,
}

impl<'a> RulesBook<'a> {
    /// The rules of `origin` (a trusted ref and its commit), for the project at `rel` inside
    /// the repository. With `tip_only`, every record is judged by the rules at the tip.
    pub fn new(
        git: &'a GitRepo,
        rel: PathBuf,
        origin: RulesOrigin,
        tip_only: bool,
    ) -> Result<RulesBook<'a>, WorkflowError> {
        let tip = origin
            .commit
            .clone()
            .ok_or_else(|| WorkflowError::NoTrustedRef {
                refname: origin.source.clone(),
                why: "no commit was resolved for it".into(),
            })?;
        let history = if tip_only {
            vec![(tip, i64::MIN)]
        } else {
            git.first_parent_history(&tip)?
        };
        Ok(RulesBook {
            git,
            rel,
            origin,
            history,
            tip_only,
            snapshots: HashMap::new(),
            rules: HashMap::new(),
            read: HashMap::new(),
        })
    }

    /// Where the rules come from.
    pub fn origin(&self) -> &RulesOrigin {
        &self.origin
    }

    /// The trusted commit in force at `at` (seconds since the epoch); the oldest one for a
    /// record older than the whole branch.
    pub fn commit_at(&self, at: i64) -> &str {
        if self.tip_only {
            return &self.history[0].0;
        }
        self.history
            .iter()
            .find(|(_, t)| *t <= at)
            .or(self.history.last())
            .map(|(c, _)| c.as_str())
            .unwrap_or_default()
    }

    /// The rules of `deployment` at `commit` (`None` when the deployment is not defined
    /// there).
    pub fn rules(
        &mut self,
        commit: &str,
        deployment: &str,
    ) -> Result<Option<Rc<Rules>>, WorkflowError> {
        let key = (commit.to_owned(), deployment.to_owned());
        if let Some(r) = self.rules.get(&key) {
            return Ok(r.clone());
        }
        for (files, rules) in self.read.get(deployment).into_iter().flatten() {
            let mut same = true;
            for (path, id) in files {
                if self.git.path_oid(commit, path)? != *id {
                    same = false;
                    break;
                }
            }
            if same {
                let rules = rules.clone();
                self.rules.insert(key, rules.clone());
                return Ok(rules);
            }
        }
        let snapshot = match self.snapshots.get(commit) {
            Some(s) => s.clone(),
            None => {
                let origin = RulesOrigin {
                    source: self.origin.source.clone(),
                    commit: Some(commit.to_owned()),
                    chosen_by: self.origin.chosen_by.clone(),
                };
                let s = Rc::new(Snapshot::at(self.git, &self.rel, origin)?);
                self.snapshots.insert(commit.to_owned(), s.clone());
                s
            }
        };
        let rules = match snapshot.rules(self.git, deployment) {
            Ok(r) => Some(Rc::new(r)),
            Err(WorkflowError::NotOnTrustedRef { .. }) => None,
            Err(e) => return Err(e),
        };
        let paths = rules
            .as_ref()
            .map_or_else(|| snapshot.files(), |r| r.files.clone());
        let mut files = Vec::new();
        for p in paths {
            let id = self.git.path_oid(commit, &p)?;
            files.push((p, id));
        }
        self.read
            .entry(deployment.to_owned())
            .or_default()
            .push((files, rules.clone()));
        self.rules.insert(key, rules.clone());
        Ok(rules)
    }
}
