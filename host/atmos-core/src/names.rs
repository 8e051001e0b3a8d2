//! Deployment, target and component names become git ref path segments
//! (`refs/atmos/deployments/<d>/<t>/<c>`), so they are checked before anything is written:
//! git's ref-name rules, narrowed to a conservative charset that is safe in every shell,
//! filesystem and URL.

use std::fmt;

/// What kind of name is checked: only component names may contain `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A deployment name (the file stem).
    Deployment,
    /// A target name.
    Target,
    /// A component name; may be a path such as `ecs/service-api`.
    Component,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Deployment => "deployment",
            NameKind::Target => "target",
            NameKind::Component => "component",
        })
    }
}

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty name or empty path segment.
    #[error("is empty or has an empty path segment")]
    Empty,
    /// A character outside `[A-Za-z0-9._-]` (and `/` for components).
    #[error("contains `{0}`; allowed are letters, digits, `-`, `_`, `.`{1}")]
    BadChar(char, &'static str),
    /// A segment starting with `.` or `-`.
    #[error("has a segment starting with `{0}`")]
    BadStart(char),
    /// `..` anywhere.
    #[error("contains `..`")]
    DoubleDot,
    /// A segment ending in `.lock` or `.`.
    #[error("has a segment ending in `{0}`")]
    BadEnd(&'static str),
    /// Longer than we allow.
    #[error("is longer than {0} characters")]
    TooLong(usize),
}

/// Longest name accepted.
pub const MAX_LEN: usize = 100;

/// Check `name` as a name of `kind`.
pub fn check(name: &str, kind: NameKind) -> Result<(), NameError> {
    if name.chars().count() > MAX_LEN {
        return Err(NameError::TooLong(MAX_LEN));
    }
    if name.contains("..") {
        return Err(NameError::DoubleDot);
    }
    let slash = kind == NameKind::Component;
    let extra = if slash { " and `/`" } else { "" };
    if let Some(c) = name.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || (slash && *c == '/'))
    }) {
        return Err(NameError::BadChar(c, extra));
    }
    for segment in name.split('/') {
        match segment.chars().next() {
            None => return Err(NameError::Empty),
            Some(c @ ('.' | '-')) => return Err(NameError::BadStart(c)),
            Some(_) => {}
        }
        if segment.ends_with(".lock") {
            return Err(NameError::BadEnd(".lock"));
        }
        if segment.ends_with('.') {
            return Err(NameError::BadEnd("."));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for n in ["payment-service", "prod", "api_v2", "db.primary", "A1"] {
            assert_eq!(check(n, NameKind::Target), Ok(()), "{n}");
        }
        assert_eq!(check("ecs/service-api", NameKind::Component), Ok(()));
    }

    #[test]
    fn refuses_what_git_or_shells_would_trip_on() {
        let cases = [
            ("", NameError::Empty),
            ("a b", NameError::BadChar(' ', "")),
            ("a@{b", NameError::BadChar('@', "")),
            ("a/b", NameError::BadChar('/', "")),
            (".hidden", NameError::BadStart('.')),
            ("-flag", NameError::BadStart('-')),
            ("a..b", NameError::DoubleDot),
            ("main.lock", NameError::BadEnd(".lock")),
            ("trailing.", NameError::BadEnd(".")),
            ("ü", NameError::BadChar('ü', "")),
        ];
        for (name, want) in cases {
            assert_eq!(check(name, NameKind::Target), Err(want), "{name:?}");
        }
        assert_eq!(
            check("ecs//api", NameKind::Component),
            Err(NameError::Empty)
        );
        assert_eq!(check("ecs/", NameKind::Component), Err(NameError::Empty));
        assert_eq!(
            check("ecs/.x", NameKind::Component),
            Err(NameError::BadStart('.'))
        );
        assert!(check(&"a".repeat(101), NameKind::Deployment).is_err());
    }
}
