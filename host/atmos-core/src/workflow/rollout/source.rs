//! What a rollout deploys — the checked-out commit, a named commit, or what another target
//! runs — and what a target runs now. A promotion and an approval of a promotion both take
//! "what the source runs" from [`running`], so that an approval always names the commit the
//! promotion will ask about.

use crate::git::{GitError, GitRepo};

/// What a rollout deploys: exactly one of three (the command line's `--git-sha` and
/// `--promote-from` exclude each other).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The checked-out commit (`HEAD`).
    Head,
    /// A commit named on the command line: a sha, a short sha or a ref.
    Commit(String),
    /// Each component at the commit the named target runs.
    Promote(String),
}

impl Source {
    /// The source of `--git-sha` / `--promote-from`: at most one of them may be given.
    pub fn from_flags(
        git_sha: Option<String>,
        promote_from: Option<String>,
    ) -> Result<Source, BothSources> {
        match (git_sha, promote_from) {
            (Some(sha), Some(from)) => Err(BothSources { sha, from }),
            (Some(sha), None) => Ok(Source::Commit(sha)),
            (None, Some(from)) => Ok(Source::Promote(from)),
            (None, None) => Ok(Source::Head),
        }
    }

    /// The target promoted from, for a promotion.
    pub fn promote_from(&self) -> Option<&str> {
        match self {
            Source::Promote(t) => Some(t),
            _ => None,
        }
    }

    /// The commit named on the command line, when one was.
    pub fn git_sha(&self) -> Option<&str> {
        match self {
            Source::Commit(sha) => Some(sha),
            _ => None,
        }
    }

    /// The spec of the commit a direct rollout deploys (`HEAD` or the named commit);
    /// `None` for a promotion.
    pub fn commit_spec(&self) -> Option<&str> {
        match self {
            Source::Head => Some("HEAD"),
            Source::Commit(sha) => Some(sha),
            Source::Promote(_) => None,
        }
    }
}

/// `--git-sha` and `--promote-from` together: a rollout deploys one or the other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--git-sha {sha} and --promote-from {from} exclude each other: a rollout deploys a commit or what another target runs"
)]
pub struct BothSources {
    /// The commit given.
    pub sha: String,
    /// The source target given.
    pub from: String,
}

/// What a target runs: each component's commit (sorted by component), and the newest of
/// those commits (the one that contains the others, else the most recently committed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The newest commit the target runs.
    pub newest: String,
    /// `(component, commit)` for every component the target runs.
    pub components: Vec<(String, String)>,
}

/// What `target` of `deployment` runs, from its state refs; `None` when it runs nothing.
pub fn running(git: &GitRepo, deployment: &str, target: &str) -> Result<Option<Running>, GitError> {
    let state = git.state_refs(deployment, Some(target))?;
    let mut commits: Vec<String> = state.iter().map(|s| s.commit.clone()).collect();
    commits.sort();
    commits.dedup();
    let Some(newest) = git.newest_commit(&commits)? else {
        return Ok(None);
    };
    Ok(Some(Running {
        newest,
        components: state.into_iter().map(|s| (s.component, s.commit)).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_give_one_source_and_never_two() {
        assert_eq!(Source::from_flags(None, None), Ok(Source::Head));
        assert_eq!(
            Source::from_flags(Some("abc".into()), None),
            Ok(Source::Commit("abc".into()))
        );
        assert_eq!(
            Source::from_flags(None, Some("dev".into())),
            Ok(Source::Promote("dev".into()))
        );
        let both = Source::from_flags(Some("abc".into()), Some("dev".into()));
        assert!(both.is_err(), "{both:?}");
        assert_eq!(Source::Promote("dev".into()).promote_from(), Some("dev"));
        assert_eq!(Source::Promote("dev".into()).commit_spec(), None);
        assert_eq!(Source::Head.commit_spec(), Some("HEAD"));
        assert_eq!(Source::Commit("x".into()).git_sha(), Some("x"));
    }
}
