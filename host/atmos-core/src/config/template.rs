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

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
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

/// The most bytes the functions of one deployment's templates may make, all values together.
pub const MAX_WORK: usize = 64 << 20;

/// The most items a function may put in a list.
pub const MAX_ITEMS: usize = 1_000;

/// The longest template: a configuration value, not a program.
pub const MAX_SOURCE: usize = 8 * 1024;

/// The most time the templates of one deployment may take, all values together: the
/// deterministic limits above bound each value; this bounds a file made of many of them.
pub const MAX_TIME: std::time::Duration = std::time::Duration::from_secs(5);

thread_local! {
    /// Bytes made or compared by template functions since [`start_budget`].
    static WORK: Cell<usize> = const { Cell::new(0) };
    /// Time spent rendering since [`start_budget`].
    static TIME: Cell<std::time::Duration> = const { Cell::new(std::time::Duration::ZERO) };
}

/// Start counting the work of one deployment's templates.
pub fn start_budget() {
    WORK.with(|w| w.set(0));
    TIME.with(|t| t.set(std::time::Duration::ZERO));
}

/// Count `len` bytes of work against the deployment's budget.
fn charge(len: usize) -> Result<(), TemplateError> {
    let total = WORK.with(|w| {
        let t = w.get().saturating_add(len);
        w.set(t);
        t
    });
    if total > MAX_WORK {
        return Err(TemplateError::Exec(format!(
            "the templates of this deployment would make or compare more than {} MiB of text",
            MAX_WORK >> 20
        )));
    }
    Ok(())
}

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

/// What Go's `fmt` prints when it cannot format an argument (`%!d(BADINDEX)`, `%!s(<nil>)`).
const BAD_FORMAT: &str = "%!";

/// Render `text` with `data` (a JSON object: `deployment`, `vars`, and where they exist
/// `target` and `component`). `hidden` names the values left out of `data` because they are
/// templates themselves: reading one is an error that says so. `Err` is a message for a
/// person.
///
/// A missing key is an error (Go's `missingkey=error`); optional values are read with
/// `index`, which gives nothing for a missing key: `{{ index .vars "tier" | default "web" }}`.
pub fn render(text: &str, data: &Json, hidden: &BTreeSet<String>) -> Result<String, String> {
    if text.len() > MAX_SOURCE {
        return Err(format!(
            "the template is {} KiB; templates in configuration values may be at most {} KiB",
            text.len() / 1024,
            MAX_SOURCE / 1024
        ));
    }
    if TIME.with(Cell::get) > MAX_TIME {
        return Err(format!(
            "the templates of this deployment take more than {} s",
            MAX_TIME.as_secs()
        ));
    }
    // `define`, `block` and `template` would let a value call itself without end.
    if ["define", "block", "template"]
        .iter()
        .any(|k| uses_action(text, k))
    {
        return Err(
            "`define`, `block` and `template` are not available in configuration values".to_owned(),
        );
    }
    let started = std::time::Instant::now();
    let out = render_checked(text, data, hidden);
    TIME.with(|t| t.set(t.get() + started.elapsed()));
    out
}

/// Does `text` hold the action `{{ keyword …`?
fn uses_action(text: &str, keyword: &str) -> bool {
    text.match_indices("{{").any(|(i, _)| {
        let rest = text[i + 2..].trim_start_matches('-').trim_start();
        rest.strip_prefix(keyword)
            .is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    })
}

fn render_checked(text: &str, data: &Json, hidden: &BTreeSet<String>) -> Result<String, String> {
    let data = to_value(data);
    let hidden = Arc::new(hidden.clone());
    let template = with_functions(
        Template::new("value")
            .missing_key(MissingKey::Error)
            .max_range_iters(MAX_RANGE),
        &hidden,
    )
    .parse(text)
    .map_err(|e| explain(&e, text, &hidden))?;
    // `define`, `block` and `template` would let a value call itself without end.
    if template.templates().len() > 1 {
        return Err(
            "`define`, `block` and `template` are not available in configuration values".to_owned(),
        );
    }
    let mut out = Capped::default();
    let out = match template.execute_fmt(&mut out, &data) {
        Ok(()) => out.text,
        Err(_) if out.full => {
            return Err(format!(
                "the result is longer than {} KiB",
                MAX_OUTPUT / 1024
            ));
        }
        Err(e) => return Err(explain(&e, text, &hidden)),
    };
    // Go's markers for what it could not print, unless the template's own text has them.
    let literal = literal_text(text);
    for (marker, what) in [
        (
            NO_VALUE,
            "it prints a value that is not defined (`<no value>`)",
        ),
        ("<nil>", "it prints a null value (`<nil>`)"),
        (BAD_FORMAT, "`printf` could not format its arguments"),
    ] {
        if out.matches(marker).count() > literal.matches(marker).count() {
            let at = out.find(marker).unwrap_or(0);
            let shown: String = out[at..].chars().take(40).collect();
            return Err(format!("{what}: `{shown}`"));
        }
    }
    Ok(out)
}

/// The parts of a template outside its actions (what it prints as written).
fn literal_text(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// Does the template `text` read the left-out value `key` (by its path, or by name through
/// `index`/`hasKey`)?
fn reads_hidden(text: &str, key: &str, hidden: &BTreeSet<String>) -> bool {
    hidden.iter().any(|p| {
        p.rsplit('.').next() == Some(key)
            && (text.contains(&format!(".{p}")) || text.contains(&format!("\"{key}\"")))
    })
}

/// Is `key` the name of a value left out because it is a template itself?
fn hidden_name(key: &str, hidden: &BTreeSet<String>) -> bool {
    hidden.iter().any(|p| p.rsplit('.').next() == Some(key))
}

fn explain(e: &TemplateError, text: &str, hidden: &BTreeSet<String>) -> String {
    match e {
        TemplateError::MissingKey { key } if reads_hidden(text, key, hidden) => format!(
            "it reads `{key}`, which is itself a template; templates read values as written, before any is rendered: build this value from the values that one is made from"
        ),
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
    charge(len)
}

/// True when `v` holds a null anywhere.
fn has_nil(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::List(l) => l.iter().any(has_nil),
        Value::Map(m) => m.values().any(has_nil),
        _ => false,
    }
}

/// A function's argument as text; a null is an error (never an empty string).
fn text_arg(name: &str, v: &Value) -> Result<String, TemplateError> {
    if has_nil(v) {
        return Err(TemplateError::Exec(format!(
            "`{name}` was given a null or missing value"
        )));
    }
    Ok(text(v))
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
    if args.iter().any(has_nil) {
        return Err(TemplateError::Exec(format!(
            "`{name}` was given a null or missing value"
        )));
    }
    let total: usize = args.iter().map(|a| text(a).len() + 1).sum();
    let bound = match name {
        "printf" => total.saturating_add(args.first().map_or(0, |f| padding(&text(f)))),
        "html" | "js" | "urlquery" => total.saturating_mul(6),
        _ => total,
    };
    bounded(name, bound)?;
    let out = go_builtin(name, args)?;
    bounded(name, out.len())?;
    Ok(string(out))
}

/// Call Go's own function `name` (as the engine ships it, not our replacement) on `args`.
fn go_builtin(name: &str, args: &[Value]) -> Result<String, TemplateError> {
    let call: String = (0..args.len())
        .map(|i| format!(" (index .a {i})"))
        .collect();
    let data = Value::Map(Arc::new(BTreeMap::from([(
        Arc::from("a"),
        Value::List(args.iter().cloned().collect()),
    )])));
    Template::new(name)
        .parse(&format!("{{{{ {name}{call} }}}}"))?
        .execute_to_string(&data)
}

/// Go's comparison `name`, charged for the bytes it reads; nulls refused.
fn compare(name: &str, args: &[Value]) -> Result<Value, TemplateError> {
    if args.iter().any(has_nil) {
        return Err(TemplateError::Exec(format!(
            "`{name}` was given a null or missing value"
        )));
    }
    charge(args.iter().map(|a| text(a).len()).sum())?;
    Ok(Value::Bool(go_builtin(name, args)? == "true"))
}

/// Go's `index`, refusing to read a value that is itself a template.
fn index(args: &[Value], hidden: &BTreeSet<String>) -> Result<Value, TemplateError> {
    let mut val = args
        .first()
        .cloned()
        .ok_or_else(|| TemplateError::ArgCount {
            name: "index".into(),
            expected: 2,
            got: 0,
        })?;
    for key in &args[1..] {
        if let (Value::Map(m), Value::String(k)) = (&val, key)
            && !m.contains_key(k)
            && hidden_name(k, hidden)
        {
            return Err(TemplateError::MissingKey { key: k.to_string() });
        }
        val = match (&val, key) {
            (Value::Map(m), Value::String(k)) => m.get(k).cloned().unwrap_or(Value::Nil),
            _ => val.index(key)?,
        };
    }
    Ok(val)
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

fn with_functions(t: Template, hidden: &Arc<BTreeSet<String>>) -> Template {
    let t = ["print", "printf", "println", "html", "js", "urlquery"]
        .into_iter()
        .fold(t, |t, name| t.func(name, move |a| builtin(name, a)));
    // Comparisons cost what they read, and a missing or null operand is an error (a misspelt
    // key must not make a test silently true or false).
    let t = ["eq", "ne", "lt", "le", "gt", "ge"]
        .into_iter()
        .fold(t, |t, name| t.func(name, move |a| compare(name, a)));
    let (h1, h2) = (hidden.clone(), hidden.clone());
    let t = t
        .func("index", move |a| index(a, &h1))
        .func("hasKey", move |a| {
            let key = text_arg("hasKey", &arg(a, 1, "hasKey", 2)?)?;
            let found = matches!(&a[0], Value::Map(m) if m.contains_key(key.as_str()));
            if !found && matches!(&a[0], Value::Map(_)) && hidden_name(&key, &h2) {
                return Err(TemplateError::MissingKey { key });
            }
            Ok(Value::Bool(found))
        });
    /// A function of one string.
    fn unary(t: Template, name: &'static str, f: fn(&str) -> String) -> Template {
        t.func(name, move |a| {
            let out = f(&text_arg(name, &arg(a, 0, name, 1)?)?);
            bounded(name, out.len())?;
            Ok(string(out))
        })
    }
    /// A function of two strings: `name A S` (Sprig puts the subject last).
    fn binary(t: Template, name: &'static str, f: fn(&str, &str) -> Value) -> Template {
        t.func(name, move |a| {
            Ok(f(
                &text_arg(name, &arg(a, 0, name, 2)?)?,
                &text_arg(name, &arg(a, 1, name, 2)?)?,
            ))
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
            if has_nil(&cond) {
                return Err(TemplateError::Exec(
                    "`ternary` was given a null or missing condition".into(),
                ));
            }
            Ok(if cond.is_truthy() {
                a[0].clone()
            } else {
                a[1].clone()
            })
        })
        .func("replace", |a| {
            let s = text_arg("replace", &arg(a, 2, "replace", 3)?)?;
            let (old, new) = (text_arg("replace", &a[0])?, text_arg("replace", &a[1])?);
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
            let sep = text_arg("join", &arg(a, 0, "join", 2)?)?;
            let items: Vec<String> = match &a[1] {
                Value::List(l) => l
                    .iter()
                    .map(|v| text_arg("join", v))
                    .collect::<Result<_, _>>()?,
                other => vec![text_arg("join", other)?],
            };
            let len = items.iter().map(String::len).sum::<usize>()
                + sep.len().saturating_mul(items.len().saturating_sub(1));
            bounded("join", len)?;
            Ok(string(items.join(&sep)))
        })
        .func("toString", |a| {
            Ok(string(text_arg("toString", &arg(a, 0, "toString", 1)?)?))
        })
        .func("quote", |a| {
            // Sprig: each argument quoted as Go's %q does, joined by spaces.
            let mut out = Vec::new();
            for v in a {
                match builtin(
                    "printf",
                    &[string("%q".into()), string(text_arg("quote", v)?)],
                )? {
                    Value::String(q) => out.push(q.to_string()),
                    other => out.push(text(&other)),
                }
            }
            let out = out.join(" ");
            bounded("quote", out.len())?;
            Ok(string(out))
        })
        .func("toJson", |a| {
            let v = arg(a, 0, "toJson", 1)?;
            text_arg("toJson", &v)?;
            let out = to_json(&v).to_string();
            bounded("toJson", out.len())?;
            Ok(string(out))
        });
    let t = unary(t, "upper", str::to_uppercase);
    let t = unary(t, "lower", str::to_lowercase);
    let t = unary(t, "trim", |s| s.trim().to_owned());
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
    t.func("splitList", |a| {
        let sep = text_arg("splitList", &arg(a, 0, "splitList", 2)?)?;
        let s = text_arg("splitList", &a[1])?;
        // Go's strings.Split: an empty separator splits into characters.
        let parts: Vec<Value> = if sep.is_empty() {
            s.chars()
                .take(MAX_ITEMS + 1)
                .map(|c| string(c.to_string()))
                .collect()
        } else {
            s.split(sep.as_str())
                .take(MAX_ITEMS + 1)
                .map(|p| string(p.to_owned()))
                .collect()
        };
        if parts.len() > MAX_ITEMS {
            return Err(TemplateError::Exec(format!(
                "`splitList` would make a list of more than {MAX_ITEMS} items"
            )));
        }
        bounded("splitList", s.len())?;
        Ok(Value::List(parts.into()))
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
        render(text, &data(), &BTreeSet::new()).unwrap_or_else(|e| panic!("{text}: {e}"))
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
        assert_eq!(ok(r#"{{ splitList "" "abc" | join "-" }}"#), "a-b-c");
        assert_eq!(ok(r#"{{ quote "a\x01b" "c" }}"#), r#""a\x01b" "c""#);
        assert_eq!(
            ok(r#"{{ ternary "y" "n" (hasPrefix "eu" .vars.region) }}"#),
            "y"
        );
    }

    #[test]
    fn undefined_values_and_functions_are_errors() {
        let e = render("{{ .vars.missing }}", &data(), &BTreeSet::new()).expect_err("missing");
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
            let e = render(t, &data(), &BTreeSet::new()).expect_err(t);
            assert!(e.contains("nope") || e.contains("not defined"), "{t}: {e}");
        }
        let e =
            render(r#"{{ printf "%[9]d" 1 }}"#, &data(), &BTreeSet::new()).expect_err("bad index");
        assert!(e.contains("could not format"), "{e}");
        let hidden = BTreeSet::from(["vars.h".to_owned()]);
        for t in [
            "{{ .vars.h }}",
            "{{ .vars.h | upper }}",
            r#"{{ index .vars "h" | default "x" }}"#,
            r#"{{ if hasKey .vars "h" }}y{{ end }}"#,
        ] {
            let e = render(t, &data(), &hidden).expect_err(t);
            assert!(e.contains("itself a template"), "{t}: {e}");
        }
        // Nulls are errors wherever they are used; a marker in a comment hides nothing.
        let nulls = json!({"vars": {"l": [null], "m": {"k": null, "j": 1}}});
        for t in [
            "{{ upper (index .vars.l 0) }}",
            "{{ print .vars.m | upper }}",
            "{{ toString (index .vars.l 0) }}",
            "{{/* <no value> */}}{{ .vars.m.k }}",
            r#"{{/* %! */}}{{ printf "%d" "x" }}"#,
        ] {
            assert!(render(t, &nulls, &BTreeSet::new()).is_err(), "{t}");
        }
        let none = BTreeSet::new();
        let e = render("{{ .component.name }}", &data(), &none).expect_err("missing");
        assert!(e.contains("inside a component"), "{e}");
        let e = render(r#"{{ env "HOME" }}"#, &data(), &none).expect_err("env");
        assert!(e.contains("!env"), "{e}");
        let e = render("{{ nope 1 }}", &data(), &none).expect_err("fn");
        assert!(e.contains("unknown function `nope`"), "{e}");
        let e = render(
            r#"{{ required "set vars.tier" (index .vars "tier") }}"#,
            &data(),
            &none,
        )
        .expect_err("req");
        assert!(e.contains("set vars.tier"), "{e}");
        let e = render("{{ .vars.region ", &data(), &none).expect_err("syntax");
        assert!(!e.is_empty());
        // No templates calling templates: recursion has no bound on its calls.
        let e = render(
            r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" "" }}"#,
            &data(),
            &none,
        )
        .expect_err("define");
        assert!(e.contains("`define`"), "{e}");
        for t in [
            r#"{{define "x"}}a{{end}}"#,
            r#"{{- template "x" }}"#,
            r#"{{block "b" .}}{{end}}"#,
        ] {
            assert!(
                render(t, &data(), &none)
                    .expect_err(t)
                    .contains("not available"),
                "{t}"
            );
        }
        // A misspelt key in a comparison is an error, not a silent true or false.
        for t in [
            r#"{{ eq (index .vars "n1") (index .vars "n2") }}"#,
            r#"{{ ne (index .vars "typo") "x" }}"#,
            r#"{{ toJson (index .vars "n1") }}"#,
            r#"{{ ternary 1 2 (index .vars "n1") }}"#,
        ] {
            assert!(render(t, &data(), &none).is_err(), "{t}");
        }
        assert_eq!(ok(r#"{{ eq .vars.region "eu-west-1" }}"#), "true");
        assert_eq!(ok(r#"{{ lt .vars.replicas 5 }}"#), "true");
    }

    #[test]
    fn every_value_a_template_makes_is_bounded() {
        let none = BTreeSet::new();
        let e = render(r#"{{ range 100000 }}x{{ end }}"#, &data(), &none).expect_err("loop");
        assert!(e.contains("range"), "{e}");
        for t in [
            r#"{{ range 5000 }}{{ printf "%60000d" 1 }}{{ end }}"#,
            r#"{{ $s := "aaaaaaaaaaaaaaaa" }}{{ range 40 }}{{ $s = printf "%s%s" $s $s }}{{ end }}{{ len $s }}"#,
            r#"{{ $s := "aaaaaaaaaaaaaaaa" }}{{ range 40 }}{{ $s = print $s $s }}{{ end }}{{ len $s }}"#,
            r#"{{ $s := "<<<<<<<<<<<<<<<<" }}{{ range 40 }}{{ $s = html (print $s $s) }}{{ end }}"#,
            r#"{{ $s := printf "%60000s" "" }}{{ $l := splitList "" $s }}{{ join $s $l }}"#,
            r#"{{ $s := printf "%2000s" "" }}{{ join $s (splitList " " (printf "%900s" "")) }}"#,
        ] {
            let e = render(t, &data(), &none).expect_err(t);
            assert!(
                e.contains("longer than 64 KiB") || e.contains("more than 1000 items"),
                "{t}: {e}"
            );
        }
        // Comparing big values costs what they read.
        start_budget();
        let t = r#"{{ $a := printf "%65000s" "" }}{{ $b := printf "%64999sx" "" }}{{ range 9000 }}{{ if eq $a $b $b $b $b $b $b $b $b $b $b $b $b $b $b $b $b $b $b $b }}{{ end }}{{ end }}"#;
        let e = render(t, &data(), &none).expect_err("compare");
        assert!(e.contains("MiB of text"), "{e}");
        // A template is a value, not a program.
        let e = render(&"{{1}}".repeat(4000), &data(), &none).expect_err("source");
        assert!(e.contains("at most 8 KiB"), "{e}");
        // Many small values add up: the work of one deployment's templates is bounded too.
        start_budget();
        let t = r#"{{ range 9000 }}{{ $x := printf "%60000s" "" }}{{ end }}"#;
        let e = render(t, &data(), &none).expect_err("work");
        assert!(e.contains("MiB of text"), "{e}");
        start_budget();
    }

    #[test]
    fn every_listed_function_exists() {
        for f in FUNCTIONS {
            let e = render(&format!("{{{{ {f} }}}}"), &data(), &BTreeSet::new());
            if let Err(e) = e {
                assert!(!e.contains("unknown function"), "{f}: {e}");
            }
        }
    }
}
