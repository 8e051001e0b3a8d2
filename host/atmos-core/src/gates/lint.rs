//! Rego mistakes that compile but change what a policy means: a rule that shadows an import,
//! an import named twice or never used. OPA's compiler reports these (some only in its strict
//! mode); regorus accepts them, so a test whose rule
//! shadowed its import failed with only "is undefined". `policy check` runs these checks over
//! every `.rego` file, test files included, and points at the line.

use regorus::unstable::{Expr, Parser, Rule, RuleHead};

/// One finding, at a line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// An import and the name it binds in its package.
struct Binding {
    name: String,
    path: String,
    line: u32,
    col: u32,
}

/// The findings of one file. A file that does not parse has none here: the compiler reports
/// it.
pub fn lint(file: &str, text: &str) -> Vec<Finding> {
    let Ok(source) = regorus::Source::from_contents(file.to_owned(), text.to_owned()) else {
        return Vec::new();
    };
    let Ok(mut parser) = Parser::new(&source) else {
        return Vec::new();
    };
    // Policies are Rego v1, as the gates compile them.
    if parser.enable_rego_v1().is_err() {
        return Vec::new();
    }
    let Ok(module) = parser.parse() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut bindings: Vec<Binding> = Vec::new();
    for import in &module.imports {
        let path = import.refr.span().text().to_owned();
        // `future.keywords…` and `rego.v1` switch syntax on; they bind nothing.
        if path.starts_with("future.") || path == "rego.v1" {
            continue;
        }
        let name = match &import.r#as {
            Some(alias) => alias.text().to_owned(),
            None => last_name(&import.refr),
        };
        let (line, col) = (import.span.line, import.span.col);
        if let Some(first) = bindings.iter().find(|b| b.name == name) {
            out.push(Finding {
                line,
                col,
                message: format!(
                    "the import of {path} binds `{name}`, already bound by the import of {} at line {}: remove one, or import it `as` another name",
                    first.path, first.line
                ),
            });
            continue;
        }
        bindings.push(Binding {
            name,
            path,
            line,
            col,
        });
    }
    for rule in &module.policy {
        let (refr, span) = match rule.as_ref() {
            Rule::Spec { head, span, .. } => match head {
                RuleHead::Compr { refr, .. }
                | RuleHead::Set { refr, .. }
                | RuleHead::Func { refr, .. } => (refr, span),
            },
            Rule::Default { refr, span, .. } => (refr, span),
        };
        let name = first_name(refr);
        if let Some(b) = bindings.iter().find(|b| b.name == name) {
            out.push(Finding {
                line: span.line,
                col: span.col,
                message: format!(
                    "the rule `{name}` shadows the import of {} at line {}: in this package `{name}` now means the rule, so `{name}.…` reads the rule, not the imported package (a test of it reports only \"undefined\"); rename the rule, or import the package `as` another name",
                    b.path, b.line
                ),
            });
        }
    }
    for b in &bindings {
        if !used_outside_imports(text, &b.name, &module.imports) {
            out.push(Finding {
                line: b.line,
                col: b.col,
                message: format!(
                    "the import of {} is never used (`{}` appears nowhere else): remove it, or use it (OPA's strict mode refuses unused imports)",
                    b.path, b.name
                ),
            });
        }
    }
    out.sort_by_key(|f| (f.line, f.col));
    out
}

/// The name a reference ends with: `data.atmos.deploy` → `deploy`, `data.x["y-z"]` → `y-z`.
fn last_name(e: &Expr) -> String {
    match e {
        Expr::RefDot { field, .. } => field.0.text().to_owned(),
        Expr::RefBrack { index, .. } => index.span().text().trim_matches('"').to_owned(),
        other => other.span().text().to_owned(),
    }
}

/// The name a reference starts with: `deny contains msg` → `deny`, `a.b.c` → `a`.
fn first_name(e: &Expr) -> String {
    match e {
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => first_name(refr),
        other => other.span().text().to_owned(),
    }
}

/// True when `name` occurs as a whole word outside the import lines and comments of `text`.
fn used_outside_imports(text: &str, name: &str, imports: &[regorus::unstable::Import]) -> bool {
    let import_lines: Vec<u32> = imports.iter().map(|i| i.span.line).collect();
    text.lines().enumerate().any(|(i, line)| {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if import_lines.contains(&n) {
            return false;
        }
        let code = line.split('#').next().unwrap_or("");
        has_word(code, name)
    })
}

fn has_word(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[cfg(test)]
mod tests {
    use super::lint;

    fn messages(text: &str) -> Vec<(u32, String)> {
        lint("p_test.rego", text)
            .into_iter()
            .map(|f| (f.line, f.message))
            .collect()
    }

    #[test]
    fn a_rule_that_shadows_its_import_is_found_at_its_line() {
        let found = messages(
            "package atmos.deploy_test\n\nimport data.atmos.deploy\n\ndeploy := {\"x\": 1}\n\ntest_denies if {\n\tdeploy.deny\n}\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, 5);
        assert!(
            found[0]
                .1
                .contains("the rule `deploy` shadows the import of data.atmos.deploy at line 3"),
            "{found:?}"
        );
    }

    #[test]
    fn an_alias_binds_its_own_name() {
        let ok = "package p\n\nimport data.atmos.deploy as d\n\ndeploy := 1\n\nx if d.allow\n";
        assert!(messages(ok).is_empty(), "{:?}", messages(ok));
        let shadowed = "package p\n\nimport data.atmos.deploy as d\n\nd := 1\n";
        assert_eq!(messages(shadowed)[0].0, 5);
    }

    #[test]
    fn duplicate_and_unused_imports_are_found() {
        let found = messages(
            "package p\n\nimport data.a.x\nimport data.b.x\nimport data.c.unused # unused\n\ny if x.ok\n",
        );
        let lines: Vec<u32> = found.iter().map(|f| f.0).collect();
        assert_eq!(lines, vec![4, 5], "{found:?}");
        assert!(
            found[0]
                .1
                .contains("already bound by the import of data.a.x at line 3")
        );
        assert!(found[1].1.contains("data.c.unused is never used"));
    }

    #[test]
    fn the_v1_import_a_comment_and_a_longer_word_are_not_uses() {
        let found = messages(
            "package p\n\nimport rego.v1\nimport data.lib.util\n\n# util is mentioned here only\nutility := 1\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.contains("data.lib.util is never used"));
    }

    #[test]
    fn a_file_that_does_not_parse_is_left_to_the_compiler() {
        assert!(messages("package p\n\nx := {\n").is_empty());
    }
}
