//! Templates in string values, in Go `text/template` syntax (`{{ .vars.region }}`,
//! `{{ .target.name | upper }}`), as Atmos stacks write them. The engine is `gotmpl`, a port
//! of Go's `text/template` (same parser, pipelines, `printf` verbs and output); we add the
//! common Sprig-style functions. Only strings holding `{{` are templates; the result is always
//! a string.
//!
//! An undefined value or function is an error, never a silent literal or an empty string: a
//! missing key stops the template (Go's `missingkey=error`), and a result holding Go's
//! `<no value>`, `<nil>` or a `printf` error marker is refused. Optional values are read with
//! `index`, which gives nothing for a missing key (`{{ index .vars "tier" | default "web" }}`),
//! or tested with `hasKey`. Every value a template computes is bounded ([`MAX_OUTPUT`]), and
//! loops are too ([`MAX_RANGE`]). There is no `env` function: the environment is read with
//! the `!env` YAML function, under the allow-list in `atmos.yaml`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{MissingKey, Template, TemplateError, Value};
use serde_json::Value as Json;

/// What Go prints for a missing value; never allowed in a result.
const NO_VALUE: &str = "<no value>";

/// The most a template may print: config values are short, and a loop in a file someone
/// pushed must not exhaust a runner's memory.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// The most `{{ range }}` iterations one template may run.
pub const MAX_RANGE: u64 = 10_000;

/// A string that refuses to grow past [`MAX_OUTPUT`].
#[derive(Default)]
struct Capped {
    text: String,
    full: bool,
}

impl std::fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.text.len() + s.len() > MAX_OUTPUT {
            self.full = true;
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// True when `text` is a template.
pub fn is_template(text: &str) -> bool {
    text.contains("{{")
}

/// Stands in, in the data templates see, for a value that is itself a template: templates
/// read values as written, so reading one that is not rendered yet is refused rather than
/// printing its `{{ … }}` text.
pub const UNRENDERED: &str = "\u{1}atmos:unrendered-template\u{1}";

/// What Go's `fmt` prints when it cannot format an argument (`%!d(BADINDEX)`, `%!s(<nil>)`).
const BAD_FORMAT: &str = "%!";

/// Render `text` with `data` (a JSON object: `deployment`, `vars`, and where they exist
/// `target` and `component`). `Err` is a message for a person.
///
/// A missing key is an error (Go's `missingkey=error`); optional values are read with
/// `index`, which gives nothing for a missing key: `{{ index .vars "tier" | default "web" }}`.
pub fn render(text: &str, data: &Json) -> Result<String, String> {
    let data = to_value(data);
    let template = with_functions(
        Template::new("value")
            .missing_key(MissingKey::Error)
            .max_range_iters(MAX_RANGE),
    )
    .parse(text)
    .map_err(|e| explain(&e, text))?;
    let mut out = Capped::default();
    let out = match template.execute_fmt(&mut out, &data) {
        Ok(()) => out.text,
        Err(_) if out.full => {
            return Err(format!(
                "the result is longer than {} KiB",
                MAX_OUTPUT / 1024
            ));
        }
        Err(e) => return Err(explain(&e, text)),
    };
    if out.contains(UNRENDERED) {
        return Err(
            "it reads a value that is itself a template; templates read values as written, before any is rendered: use the values that one is made from"
                .to_owned(),
        );
    }
    for (marker, what) in [
        (
            NO_VALUE,
            "it prints a value that is not defined (`<no value>`)",
        ),
        ("<nil>", "it prints a null value (`<nil>`)"),
        (BAD_FORMAT, "`printf` could not format its arguments"),
    ] {
        if out.contains(marker) && !text.contains(marker) {
            let at = out.find(marker).unwrap_or(0);
            let shown: String = out[at..].chars().take(40).collect();
            return Err(format!("{what}: `{shown}`"));
        }
    }
    Ok(out)
}

fn explain(e: &TemplateError, text: &str) -> String {
    match e {
        TemplateError::MissingKey { key } => {
            let scopes = if text.contains(".target") && key == "target" {
                " (`.target` exists only in `targets.<name>` and in components' `vars` and `settings`, which are rendered once per target)"
            } else if key == "component" {
                " (`.component` exists only inside a component)"
            } else {
                ""
            };
            format!("`{key}` is not defined{scopes}")
        }
        TemplateError::UndefinedFunction(f) if f == "env" => {
            "there is no `env` function: read the environment with the `!env NAME` YAML function, allowed in atmos.yaml `processing.env`".to_owned()
        }
        TemplateError::UndefinedFunction(f) => format!("unknown function `{f}`"),
        other => other.to_string(),
    }
}

/// A JSON value as template data.
pub fn to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => Value::String(Arc::from(s.as_str())),
        Json::Array(a) => Value::List(a.iter().map(to_value).collect()),
        Json::Object(o) => Value::Map(Arc::new(
            o.iter()
                .map(|(k, v)| (Arc::from(k.as_str()), to_value(v)))
                .collect::<BTreeMap<_, _>>(),
        )),
    }
}

/// The names of the functions added to Go's built-ins, for documentation and tests.
pub const FUNCTIONS: &[&str] = &[
    "default",
    "empty",
    "coalesce",
    "required",
    "ternary",
    "upper",
    "lower",
    "title",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "quote",
    "squote",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "join",
    "splitList",
    "hasKey",
    "toString",
    "toJson",
];

fn text(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn empty(v: &Value) -> bool {
    !v.is_truthy()
}

fn arg(args: &[Value], i: usize, name: &str, n: usize) -> Result<Value, TemplateError> {
    if args.len() != n {
        return Err(TemplateError::ArgCount {
            name: name.to_owned(),
            expected: n,
            got: args.len(),
        });
    }
    Ok(args[i].clone())
}

fn string(s: String) -> Value {
    Value::String(Arc::from(s))
}

/// Refuse a value a function would make longer than [`MAX_OUTPUT`]: every value a template
/// computes is bounded, not only what it prints (a loop doubling a variable would otherwise
/// exhaust memory before anything is printed).
fn bounded(name: &str, len: usize) -> Result<(), TemplateError> {
    if len > MAX_OUTPUT {
        return Err(TemplateError::Exec(format!(
            "`{name}` would make a value longer than {} KiB",
            MAX_OUTPUT / 1024
        )));
    }
    Ok(())
}

/// The most padding the widths and precisions of a `printf` format can add: each number as
/// written (Go caps them at 65,535), 65,535 for a `*` taken from the arguments.
fn padding(format: &str) -> usize {
    let mut total = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut number = String::new();
        let mut widest = 0usize;
        while let Some(&n) = chars.peek() {
            match n {
                '0'..='9' => number.push(n),
                '*' => widest = 65_535,
                '-' | '+' | '#' | ' ' | '.' | '[' | ']' => {
                    widest = widest.max(number.parse::<usize>().unwrap_or(0).min(65_535));
                    number.clear();
                }
                _ => break,
            }
            chars.next();
        }
        widest = widest.max(number.parse::<usize>().unwrap_or(0).min(65_535));
        total = total.saturating_add(widest);
    }
    total
}

/// Go's own `print`, `printf`, `println`, `html`, `js` and `urlquery`, refused when their
/// result could exceed [`MAX_OUTPUT`] (checked before it is made: a `printf` width is at most
/// 65,535, an escape at most 6 characters per character).
fn builtin(name: &str, args: &[Value]) -> Result<Value, TemplateError> {
    let total: usize = args.iter().map(|a| text(a).len() + 1).sum();
    let bound = match name {
        "printf" => total.saturating_add(args.first().map_or(0, |f| padding(&text(f)))),
        "html" | "js" | "urlquery" => total.saturating_mul(6),
        _ => total,
    };
    bounded(name, bound)?;
    let call: String = (0..args.len())
        .map(|i| format!(" (index .a {i})"))
        .collect();
    let data = Value::Map(Arc::new(BTreeMap::from([(
        Arc::from("a"),
        Value::List(args.iter().cloned().collect()),
    )])));
    let out = Template::new(name)
        .parse(&format!("{{{{ {name}{call} }}}}"))?
        .execute_to_string(&data)?;
    bounded(name, out.len())?;
    Ok(string(out))
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Uint(u) => Json::from(*u),
        Value::Float(f) => Json::from(*f),
        Value::String(s) => Json::String(s.to_string()),
        Value::List(l) => Json::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
        other => Json::String(other.to_string()),
    }
}

fn with_functions(t: Template) -> Template {
    let t = ["print", "printf", "println", "html", "js", "urlquery"]
        .into_iter()
        .fold(t, |t, name| t.func(name, move |a| builtin(name, a)));
    /// A function of one string.
    fn unary(t: Template, name: &'static str, f: fn(&str) -> String) -> Template {
        t.func(name, move |a| {
            let out = f(&text(&arg(a, 0, name, 1)?));
            bounded(name, out.len())?;
            Ok(string(out))
        })
    }
    /// A function of two strings: `name A S` (Sprig puts the subject last).
    fn binary(t: Template, name: &'static str, f: fn(&str, &str) -> Value) -> Template {
        t.func(name, move |a| {
            Ok(f(&text(&arg(a, 0, name, 2)?), &text(&arg(a, 1, name, 2)?)))
        })
    }
    let t = t
        .func("default", |a| {
            let fallback = a.first().cloned().unwrap_or(Value::Nil);
            Ok(match a.get(1) {
                Some(v) if !empty(v) => v.clone(),
                _ => fallback,
            })
        })
        .func("empty", |a| Ok(Value::Bool(empty(&arg(a, 0, "empty", 1)?))))
        .func("coalesce", |a| {
            Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil))
        })
        .func("required", |a| {
            let (msg, v) = (arg(a, 0, "required", 2)?, arg(a, 1, "required", 2)?);
            if empty(&v) {
                Err(TemplateError::Exec(text(&msg)))
            } else {
                Ok(v)
            }
        })
        .func("ternary", |a| {
            let cond = arg(a, 2, "ternary", 3)?;
            Ok(if cond.is_truthy() {
                a[0].clone()
            } else {
                a[1].clone()
            })
        })
        .func("replace", |a| {
            let s = text(&arg(a, 2, "replace", 3)?);
            let (old, new) = (text(&a[0]), text(&a[1]));
            let hits = if old.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(old.as_str()).count()
            };
            bounded(
                "replace",
                s.len().saturating_add(hits.saturating_mul(new.len())),
            )?;
            Ok(string(s.replace(&old, &new)))
        })
        .func("join", |a| {
            let sep = text(&arg(a, 0, "join", 2)?);
            let out = match &a[1] {
                Value::List(l) => l.iter().map(text).collect::<Vec<_>>().join(&sep),
                other => text(other),
            };
            bounded("join", out.len())?;
            Ok(string(out))
        })
        .func("hasKey", |a| {
            let key = text(&arg(a, 1, "hasKey", 2)?);
            Ok(Value::Bool(match &a[0] {
                Value::Map(m) => m.contains_key(key.as_str()),
                _ => false,
            }))
        })
        .func("toString", |a| Ok(string(text(&arg(a, 0, "toString", 1)?))))
        .func("toJson", |a| {
            let out = to_json(&arg(a, 0, "toJson", 1)?).to_string();
            bounded("toJson", out.len())?;
            Ok(string(out))
        });
    let t = unary(t, "upper", str::to_uppercase);
    let t = unary(t, "lower", str::to_lowercase);
    let t = unary(t, "trim", |s| s.trim().to_owned());
    let t = unary(t, "quote", |s| format!("{s:?}"));
    let t = unary(t, "squote", |s| format!("'{s}'"));
    let t = unary(t, "title", |s| {
        s.split(' ')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            })
            .collect::<Vec<String>>()
            .join(" ")
    });
    let t = binary(t, "trimPrefix", |p, s| {
        string(s.strip_prefix(p).unwrap_or(s).to_owned())
    });
    let t = binary(t, "trimSuffix", |p, s| {
        string(s.strip_suffix(p).unwrap_or(s).to_owned())
    });
    let t = binary(t, "contains", |p, s| Value::Bool(s.contains(p)));
    let t = binary(t, "hasPrefix", |p, s| Value::Bool(s.starts_with(p)));
    let t = binary(t, "hasSuffix", |p, s| Value::Bool(s.ends_with(p)));
    binary(t, "splitList", |sep, s| {
        Value::List(s.split(sep).map(|p| string(p.to_owned())).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Json {
        json!({
            "deployment": {"name": "api", "labels": {"team": "payments"}},
            "vars": {"region": "eu-west-1", "replicas": 3, "zones": ["a", "b"]},
            "target": {"name": "prod"},
        })
    }

    fn ok(text: &str) -> String {
        render(text, &data()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn renders_values_and_pipelines_like_go() {
        assert_eq!(ok("{{ .vars.region }}"), "eu-west-1");
        assert_eq!(ok("{{ .deployment.labels.team | upper }}"), "PAYMENTS");
        assert_eq!(
            ok(r#"{{ printf "%s-%d" .target.name .vars.replicas }}"#),
            "prod-3"
        );
        assert_eq!(ok(r#"{{ join "," .vars.zones }}"#), "a,b");
        assert_eq!(
            ok(r#"{{ if eq .target.name "prod" }}big{{ else }}small{{ end }}"#),
            "big"
        );
        assert_eq!(ok(r#"{{ index .vars "tier" | default "web" }}"#), "web");
        assert_eq!(
            ok(r#"{{ if hasKey .vars "tier" }}t{{ else }}none{{ end }}"#),
            "none"
        );
        assert_eq!(ok(r#"{{ .vars.region | default "x" }}"#), "eu-west-1");
        assert_eq!(
            ok(r#"{{ "api.example.com" | trimSuffix ".com" }}"#),
            "api.example"
        );
        assert_eq!(ok(r#"{{ replace "-" "_" .vars.region }}"#), "eu_west_1");
        assert_eq!(ok(r#"{{ .vars.zones | toJson }}"#), r#"["a","b"]"#);
        assert_eq!(
            ok(r#"{{ ternary "y" "n" (hasPrefix "eu" .vars.region) }}"#),
            "y"
        );
    }

    #[test]
    fn undefined_values_and_functions_are_errors() {
        let e = render("{{ .vars.missing }}", &data()).expect_err("missing");
        assert!(e.contains("`missing`"), "{e}");
        // Passed to a function, a missing value is still an error, never an empty string.
        for t in [
            "{{ upper .vars.nope }}",
            "{{ quote .vars.nope }}",
            r#"{{ printf "%s" .vars.nope }}"#,
            "{{ toJson .vars.nope }}",
            r#"{{ .vars.nope | default "x" }}"#,
            r#"{{ index .vars "nope" }}"#,
        ] {
            let e = render(t, &data()).expect_err(t);
            assert!(e.contains("nope") || e.contains("not defined"), "{t}: {e}");
        }
        let e = render(r#"{{ printf "%[9]d" 1 }}"#, &data()).expect_err("bad index");
        assert!(e.contains("could not format"), "{e}");
        let e = render(
            "{{ .vars.x }}",
            &serde_json::json!({"vars": {"x": UNRENDERED}}),
        )
        .expect_err("unrendered");
        assert!(e.contains("itself a template"), "{e}");
        let e = render("{{ .component.name }}", &data()).expect_err("missing");
        assert!(e.contains("inside a component"), "{e}");
        let e = render(r#"{{ env "HOME" }}"#, &data()).expect_err("env");
        assert!(e.contains("!env"), "{e}");
        let e = render("{{ nope 1 }}", &data()).expect_err("fn");
        assert!(e.contains("unknown function `nope`"), "{e}");
        let e = render(
            r#"{{ required "set vars.tier" (index .vars "tier") }}"#,
            &data(),
        )
        .expect_err("req");
        assert!(e.contains("set vars.tier"), "{e}");
        let e = render("{{ .vars.region ", &data()).expect_err("syntax");
        assert!(!e.is_empty());
        let e = render(r#"{{ range 100000 }}x{{ end }}"#, &data()).expect_err("loop");
        assert!(e.contains("range"), "{e}");
        let e = render(
            r#"{{ range 5000 }}{{ printf "%60000d" 1 }}{{ end }}"#,
            &data(),
        )
        .expect_err("big");
        assert!(e.contains("longer than 64 KiB"), "{e}");
    }

    #[test]
    fn every_listed_function_exists() {
        for f in FUNCTIONS {
            let e = render(&format!("{{{{ {f} }}}}"), &data());
            if let Err(e) = e {
                assert!(!e.contains("unknown function"), "{f}: {e}");
            }
        }
    }
}
