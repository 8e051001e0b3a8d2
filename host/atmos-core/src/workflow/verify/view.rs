//! What verification looks at: the deployment refs of a repository — state refs, history tags,
//! notes — as they are, or as a push proposes them (the current values with the pushed
//! updates applied, read before git accepts them).

use std::collections::BTreeMap;

use crate::contracts::layout::{
    CHAIN_PREFIX, LEDGER_PREFIX, NOTES_PREFIX, STATE_PREFIX, TAG_PREFIX,
};
use crate::git::{GitError, GitRepo};

/// Deployment refs by full name → object id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// `refs/atmos/deployments/<d>/<t>/<c>` → deployed commit.
    pub state: BTreeMap<String, String>,
    /// `refs/tags/atmos/deployments/…` → tag object.
    pub tags: BTreeMap<String, String>,
    /// `refs/notes/atmos/<d>/<kind>` → notes commit.
    pub notes: BTreeMap<String, String>,
    /// `refs/atmos/ledger/<d>` → archive ledger commit.
    pub ledgers: BTreeMap<String, String>,
}

/// Where a ref belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// A state ref.
    State,
    /// A history tag.
    Tag,
    /// A notes ref (approvals, SBOMs).
    Notes,
    /// A chain ref (`refs/atmos/chains/…`): the newest record of a history.
    Chain,
    /// A lock lease (`refs/atmos/locks/…`).
    Lock,
    /// An archive ledger (`refs/atmos/ledger/<deployment>`).
    Ledger,
    /// Anything else under `refs/atmos/`, `refs/tags/atmos/` or `refs/notes/atmos/`: not part
    /// of the layout.
    Stray,
    /// Outside atmos's namespaces (branches, other tags).
    Other,
}

/// The namespace of `refname`.
pub fn namespace(refname: &str) -> Namespace {
    let tags = format!("refs/tags/{TAG_PREFIX}/");
    if refname.starts_with(&format!("{STATE_PREFIX}/")) {
        Namespace::State
    } else if refname.starts_with(&tags) {
        Namespace::Tag
    } else if refname.starts_with(&format!("{NOTES_PREFIX}/")) {
        Namespace::Notes
    } else if refname.starts_with(&format!("{}/", crate::contracts::layout::LOCK_PREFIX)) {
        Namespace::Lock
    } else if refname.starts_with(&format!("{LEDGER_PREFIX}/")) {
        Namespace::Ledger
    } else if refname.starts_with(&format!("{}/", crate::contracts::layout::CHAIN_PREFIX)) {
        Namespace::Chain
    } else if refname.starts_with("refs/atmos/")
        || refname.starts_with("refs/tags/atmos/")
        || refname.starts_with("refs/notes/atmos/")
    {
        Namespace::Stray
    } else {
        Namespace::Other
    }
}

/// `(deployment, target, component)` of a state ref or history tag.
pub fn group_of(refname: &str) -> Option<(String, String, String)> {
    let split3 = |rest: &str| {
        let (d, rest) = rest.split_once('/')?;
        let (t, c) = rest.split_once('/')?;
        Some((d.to_owned(), t.to_owned(), c.to_owned()))
    };
    // A component name may hold `/` (`ecs/api`); names are checked where the kind is.
    let ok = |(d, t, c): (String, String, String)| {
        (!d.is_empty() && !t.is_empty() && !c.is_empty()).then_some((d, t, c))
    };
    if let Some(rest) = refname.strip_prefix(&format!("{STATE_PREFIX}/")) {
        return split3(rest).and_then(ok);
    }
    let rest = refname.strip_prefix(&format!("refs/tags/{TAG_PREFIX}/"))?;
    let (d, t, c_and_time) = split3(rest)?;
    let (c, time) = c_and_time.rsplit_once('/')?;
    (!time.is_empty()).then_some(())?;
    ok((d, t, c.to_owned()))
}

/// `(deployment, target, component)` of a chain ref.
pub fn chain_group(refname: &str) -> Option<(String, String, String)> {
    let rest = refname.strip_prefix(&format!("{CHAIN_PREFIX}/"))?;
    let (d, rest) = rest.split_once('/')?;
    let (t, c) = rest.split_once('/')?;
    Some((d.to_owned(), t.to_owned(), c.to_owned()))
}

impl View {
    /// The refs as the repository holds them.
    pub fn read(git: &GitRepo) -> Result<View, GitError> {
        let mut view = View::default();
        for (prefix, map) in [
            (format!("{STATE_PREFIX}/"), &mut view.state),
            (format!("refs/tags/{TAG_PREFIX}/"), &mut view.tags),
            (format!("{NOTES_PREFIX}/"), &mut view.notes),
            (format!("{LEDGER_PREFIX}/"), &mut view.ledgers),
        ] {
            for e in git.refs().list(&prefix)? {
                map.insert(e.name, e.oid);
            }
        }
        Ok(view)
    }

    /// Apply one update (`None`: deleted).
    pub fn set(&mut self, refname: &str, value: Option<&str>) {
        let map = match namespace(refname) {
            Namespace::State => &mut self.state,
            Namespace::Tag => &mut self.tags,
            Namespace::Notes => &mut self.notes,
            Namespace::Ledger => &mut self.ledgers,
            _ => return,
        };
        match value {
            Some(v) => {
                map.insert(refname.to_owned(), v.to_owned());
            }
            None => {
                map.remove(refname);
            }
        }
    }

    /// The deployments that have any state ref, history tag or archive ledger.
    pub fn deployments(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let tags = format!("refs/tags/{TAG_PREFIX}/");
        let state = format!("{STATE_PREFIX}/");
        for name in self
            .tags
            .keys()
            .filter_map(|n| n.strip_prefix(&tags))
            .chain(self.state.keys().filter_map(|n| n.strip_prefix(&state)))
        {
            if let Some((d, _)) = name.split_once('/')
                && !out.iter().any(|o| o == d)
            {
                out.push(d.to_owned());
            }
        }
        let ledgers = format!("{LEDGER_PREFIX}/");
        for d in self.ledgers.keys().filter_map(|n| n.strip_prefix(&ledgers)) {
            if !out.iter().any(|o| o == d) {
                out.push(d.to_owned());
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_fall_in_their_namespace() {
        assert_eq!(
            namespace("refs/atmos/deployments/svc/dev/a"),
            Namespace::State
        );
        assert_eq!(
            namespace("refs/tags/atmos/deployments/svc/dev/a/2026-01-01T00-00-00Z"),
            Namespace::Tag
        );
        assert_eq!(
            namespace("refs/notes/atmos/svc/approvals"),
            Namespace::Notes
        );
        assert_eq!(namespace("refs/atmos/locks/svc/dev"), Namespace::Lock);
        assert_eq!(namespace("refs/atmos/other"), Namespace::Stray);
        assert_eq!(namespace("refs/tags/atmos/v1"), Namespace::Stray);
        assert_eq!(namespace("refs/heads/main"), Namespace::Other);
    }

    #[test]
    fn an_update_changes_the_view_and_deployments_are_listed_once() {
        let mut v = View::default();
        v.set("refs/atmos/deployments/svc/dev/a", Some("1"));
        v.set("refs/tags/atmos/deployments/svc/dev/a/t", Some("2"));
        v.set("refs/tags/atmos/deployments/api/dev/a/t", Some("3"));
        v.set("refs/heads/main", Some("4"));
        assert_eq!(v.deployments(), vec!["api", "svc"]);
        v.set("refs/atmos/deployments/svc/dev/a", None);
        assert!(v.state.is_empty());
    }

    #[test]
    fn refs_map_to_their_target_and_component() {
        assert_eq!(
            group_of("refs/tags/atmos/deployments/svc/dev/a/2026-01-01T00-00-00Z"),
            Some(("svc".into(), "dev".into(), "a".into()))
        );
        assert_eq!(
            group_of("refs/atmos/deployments/svc/dev/a"),
            Some(("svc".into(), "dev".into(), "a".into()))
        );
        assert_eq!(group_of("refs/heads/main"), None);
        assert_eq!(group_of("refs/atmos/deployments/svc/prod"), None);
        assert_eq!(
            group_of("refs/atmos/deployments/svc/prod/ecs/api"),
            Some(("svc".into(), "prod".into(), "ecs/api".into()))
        );
        assert_eq!(group_of("refs/tags/atmos/deployments/svc/prod/a"), None);
    }
}
