//! Who is rolling out, and from which CI build: read from the variables CI systems set, then
//! git's `user.email`, so records name a person or a pipeline without extra flags.

use schemars::JsonSchema;

/// Variables that name the deployer, in order of preference, and what they are.
pub const ACTOR_VARIABLES: &[&str] = &[
    "ATMOS_ACTOR",
    "GITLAB_USER_EMAIL",
    "BUILDKITE_BUILD_CREATOR_EMAIL",
    "GITHUB_ACTOR",
    "CIRCLE_USERNAME",
];

/// Variables that identify the CI build, in order of preference.
pub const BUILD_ID_VARIABLES: &[&str] = &[
    "ATMOS_BUILD_ID",
    "GITHUB_RUN_ID",
    "CI_PIPELINE_ID",
    "BUILDKITE_BUILD_ID",
    "CIRCLE_BUILD_NUM",
];

/// The deployer and where the name came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, JsonSchema)]
pub struct Actor {
    /// An email or CI user name.
    pub id: String,
    /// `ATMOS_ACTOR`, `GITHUB_ACTOR`, `git user.email`, `USER`, …
    pub source: String,
}

/// Whether the deployer proved the identity they claim, and how.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Proof {
    /// The identity claimed (the actor's id).
    pub id: String,
    /// Where the claim came from (`ATMOS_ACTOR`, `git user.email`, …).
    pub source: String,
    /// True when a signature by the deployer's key verified for `id` against the allowed
    /// signers of the trusted rules.
    pub verified: bool,
    /// Why it is not verified, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The first non-empty value among `names`.
fn first(env: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        env(n)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v.trim().to_owned(), (*n).to_owned()))
    })
}

/// Decide who is deploying.
pub fn actor(env: &dyn Fn(&str) -> Option<String>, git_email: Option<String>) -> Actor {
    if let Some((id, source)) = first(env, ACTOR_VARIABLES) {
        return Actor { id, source };
    }
    if let Some(email) = git_email.filter(|e| !e.trim().is_empty()) {
        return Actor {
            id: email,
            source: "git user.email".into(),
        };
    }
    match first(env, &["USER", "LOGNAME"]) {
        Some((id, source)) => Actor { id, source },
        None => Actor {
            id: "unknown".into(),
            source: "none".into(),
        },
    }
}

/// Why `actor` cannot name a person in records: an identity becomes a git author and a line
/// of an approvals note, so it may not hold control characters (a newline would forge a second
/// line), `<` or `>` (they end git's email field), or be longer than 256 characters.
/// Whether two identities are the same person: emails (and group members, signer
/// principals) compare without regard to case, as mail systems treat them in practice — so
/// `ALICE@example.com` approving `alice@example.com`'s commit is self-approval.
pub fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Whether `list` holds `who` ([`same`]).
pub fn listed<S: AsRef<str>>(list: &[S], who: &str) -> bool {
    list.iter().any(|m| same(m.as_ref(), who))
}

/// Check an actor before anything is written in its name.
pub fn check(actor: &Actor) -> Result<(), String> {
    let id = &actor.id;
    if id.chars().any(char::is_control) {
        return Err(format!(
            "{} holds a control character ({id:?})",
            actor.source
        ));
    }
    // Direction overrides make a name read as another (`mallory\u{202e}…`).
    if id.chars().any(|c| {
        matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }) {
        return Err(format!(
            "{} holds a text direction control character ({id:?})",
            actor.source
        ));
    }
    if id.contains(['<', '>']) {
        return Err(format!("{} holds `<` or `>` ({id})", actor.source));
    }
    if id.chars().count() > 256 {
        return Err(format!("{} is longer than 256 characters", actor.source));
    }
    Ok(())
}

/// The CI build identifier, if any.
pub fn build_id(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    first(env, BUILD_ID_VARIABLES).map(|(v, _)| v)
}

/// Read the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_variables_win_over_git_config() {
        let env = |n: &str| match n {
            "GITHUB_ACTOR" => Some("octocat".to_owned()),
            "GITLAB_USER_EMAIL" => Some(" ".to_owned()),
            "GITHUB_RUN_ID" => Some("42".to_owned()),
            _ => None,
        };
        let a = actor(&env, Some("dev@example.com".into()));
        assert_eq!(
            (a.id.as_str(), a.source.as_str()),
            ("octocat", "GITHUB_ACTOR")
        );
        assert_eq!(build_id(&env).as_deref(), Some("42"));
    }

    #[test]
    fn git_email_then_user() {
        let none = |_: &str| None;
        assert_eq!(
            actor(&none, Some("dev@example.com".into())).id,
            "dev@example.com"
        );
        let user = |n: &str| (n == "USER").then(|| "alice".to_owned());
        assert_eq!(actor(&user, None).id, "alice");
        assert_eq!(actor(&none, None).id, "unknown");
    }
}
