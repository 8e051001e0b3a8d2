//! Glob patterns as Atmos's `included_paths`, `excluded_paths` and imports use them.

/// Whether `path` matches the glob `pattern` (`*` within a segment, `**` across segments, `?`
/// one character).
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    segments(&p, &s)
}

fn segments(p: &[&str], s: &[&str]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(&"**") => (0..=s.len()).any(|i| segments(&p[1..], &s[i..])),
        Some(first) => {
            !s.is_empty()
                && segment(first.as_bytes(), s[0].as_bytes())
                && segments(&p[1..], &s[1..])
        }
    }
}

fn segment(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| segment(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && segment(&p[1..], &s[1..]),
        Some(c) => s.first() == Some(c) && segment(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use crate::stacks::glob::glob_match;

    #[test]
    fn globs_match_as_atmos_includes_do() {
        assert!(glob_match("deploy/**/*.yaml", "deploy/dev.yaml"));
        assert!(glob_match("deploy/**/*.yaml", "deploy/a/b/dev.yaml"));
        assert!(!glob_match("deploy/**/*.yaml", "catalog/dev.yaml"));
        assert!(glob_match("**/_defaults.yaml", "_defaults.yaml"));
        assert!(glob_match("**/_defaults.yaml", "orgs/acme/_defaults.yaml"));
        assert!(glob_match(
            "catalog/mixins/provider/aws-*.yaml",
            "catalog/mixins/provider/aws-c.yaml"
        ));
        assert!(!glob_match("catalog/*.yaml", "catalog/a/b.yaml"));
        assert!(glob_match("a?c.yaml", "abc.yaml"));
    }
}
