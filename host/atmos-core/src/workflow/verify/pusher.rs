//! Who pushes: hosted git servers tell their hooks which account pushed (GitLab
//! `GL_USERNAME`, Gitea and Forgejo `GITEA_PUSHER_NAME`, GitHub Enterprise Server
//! `GITHUB_USER_LOGIN`, and `REMOTE_USER` behind an HTTP server with authentication). Where the
//! trusted rules ask for it (`identities.bind_pushes`), the guard binds every record a push
//! adds to that account, mapped through `identities.pushers`: a record whose writer is not the
//! pusher is refused unless its signature verifies for that writer — so an unsigned record
//! cannot name someone else, and the deployer groups hold on the server for unsigned records.

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::settings::Identities;

/// The variables a server sets for its hooks, in the order they are read.
pub const VARIABLES: [&str; 4] = [
    "GL_USERNAME",
    "GITEA_PUSHER_NAME",
    "GITHUB_USER_LOGIN",
    "REMOTE_USER",
];

/// The account a server says pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Pusher {
    /// The variable it came from.
    pub variable: String,
    /// The account name, as the server gives it.
    pub name: String,
}

impl Pusher {
    /// The pusher the environment names (the first of [`VARIABLES`] set and not empty).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<Pusher> {
        VARIABLES.iter().find_map(|v| {
            env(v)
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .map(|name| Pusher {
                    variable: (*v).to_owned(),
                    name,
                })
        })
    }

    /// The identity the rules know the pusher as: `identities.pushers`, else the name itself.
    pub fn identity(&self, identities: &Identities) -> String {
        identities
            .pushers
            .iter()
            .find(|(name, _)| crate::identity::same(name, &self.name))
            .map_or_else(|| self.name.clone(), |(_, id)| id.clone())
    }
}

/// Why a record written by `writer` may not come in this push (`None`: it may): the writer
/// must be the pusher, unless its signature verified (`signed`).
pub fn refusal(
    writer: &str,
    signed: bool,
    pusher: Option<&Pusher>,
    identities: &Identities,
) -> Option<String> {
    if signed {
        return None;
    }
    match pusher {
        None => Some(format!(
            "written by {writer}, unsigned, and the server did not say who pushes (none of {} is set): where identities.bind_pushes is on, a record is pushed by its writer or signed by them",
            VARIABLES.join(", ")
        )),
        Some(p) => {
            let id = p.identity(identities);
            (!crate::identity::same(&id, writer)).then(|| {
                format!(
                    "written by {writer}, but pushed by {} ({}={}): an unsigned record is pushed by the one it names — push your own records, sign them (git config user.signingkey), or map the account in identities.pushers",
                    id, p.variable, p.name
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Pusher, refusal};
    use crate::config::settings::Identities;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_first_variable_set_names_the_pusher() {
        let p = Pusher::from_env(&env(&[("REMOTE_USER", "bob"), ("GL_USERNAME", "alice")]));
        assert_eq!(
            p.map(|p| (p.variable, p.name)),
            Some(("GL_USERNAME".into(), "alice".into()))
        );
        assert_eq!(Pusher::from_env(&env(&[("REMOTE_USER", "  ")])), None);
        assert_eq!(Pusher::from_env(&env(&[])), None);
    }

    #[test]
    fn a_record_is_pushed_by_its_writer_or_signed() {
        let mut ids = Identities::default();
        ids.pushers
            .insert("alice".into(), "alice@example.com".into());
        let alice = Pusher {
            variable: "REMOTE_USER".into(),
            name: "Alice".into(),
        };
        assert_eq!(
            refusal("ALICE@example.com", false, Some(&alice), &ids),
            None
        );
        let why = refusal("bob@example.com", false, Some(&alice), &ids).expect("refused");
        assert!(
            why.contains("pushed by alice@example.com (REMOTE_USER=Alice)"),
            "{why}"
        );
        assert_eq!(refusal("bob@example.com", true, Some(&alice), &ids), None);
        assert!(refusal("bob@example.com", false, None, &ids).is_some());
        // Unmapped: the account name is the identity.
        let carol = Pusher {
            variable: "GITEA_PUSHER_NAME".into(),
            name: "carol@example.com".into(),
        };
        assert_eq!(
            refusal("carol@example.com", false, Some(&carol), &ids),
            None
        );
    }
}
