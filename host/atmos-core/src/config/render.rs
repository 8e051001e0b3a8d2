//! Evaluating the templates of a processed deployment document, after imports are merged:
//!
//! - strings under `targets.<t>` once for that target (`.target` is `{name, labels}`, `.vars`
//!   the deployment context merged with the target's context);
//! - components' `vars` and `settings` once per target (`.vars` the component's merged vars
//!   for that target, `.target` and `.component` set); the results are kept per target, and
//!   the component's own `vars` and `settings` (read for every target at once: the image
//!   built once, the component's paths) are rendered without a target;
//! - every other string once (`.vars` the deployment context; `.component` inside a
//!   component's metadata).
//!
//! `.deployment` is `{name, description, labels}` everywhere. Values a YAML function produced
//! are data and never evaluated. The deployment's `name` is never a template.

use indexmap::IndexMap;
use serde_json::{Map, Value as Json, json};

use super::process::{Processed, covered};
use super::source_map::escape_segment;
use super::template::{self, is_template};
use crate::diagnostic::{Code, Diagnostic};

pub use super::model::PerTarget;

/// The parts of a component rendered once per target.
const PER_TARGET: &[&str] = &["vars", "settings"];

/// Render every template of `processed` in place; components' vars and settings per target
/// are returned, with whether any template was found at all.
pub fn render(processed: &mut Processed) -> Result<(PerTarget, bool), Vec<Diagnostic>> {
    let mut value = std::mem::take(&mut processed.value);
    let mut pass = Pass {
        processed,
        problems: Vec::new(),
        templates: 0,
        hidden: Default::default(),
    };
    template::start_budget();
    let per_target = match value.get_mut("deployment").and_then(Json::as_object_mut) {
        Some(d) => pass.deployment(d),
        None => PerTarget::new(),
    };
    let (problems, templates) = (pass.problems, pass.templates);
    processed.value = value;
    if problems.is_empty() {
        Ok((per_target, templates > 0))
    } else {
        Err(problems)
    }
}

struct Pass<'a> {
    processed: &'a Processed,
    problems: Vec<Diagnostic>,
    /// How many template strings were met.
    templates: usize,
    /// Data paths (`vars.host`, `target.labels.env`) of the values left out of the data being
    /// built because they are templates themselves.
    hidden: std::collections::BTreeSet<String>,
}

fn object(v: Option<&Json>) -> Map<String, Json> {
    v.and_then(Json::as_object).cloned().unwrap_or_default()
}

/// `base` with `layer` merged over it (mappings key by key).
fn merged(base: &Map<String, Json>, layer: &Map<String, Json>) -> Map<String, Json> {
    let mut out = base.clone();
    for (k, v) in layer {
        match (out.get_mut(k), v) {
            (Some(Json::Object(a)), Json::Object(b)) => {
                let m = merged(a, b);
                *a = m;
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

impl Pass<'_> {
    fn deployment(&mut self, d: &mut Map<String, Json>) -> PerTarget {
        const ROOT: &str = "/deployment";
        let base_vars = |d: &Map<String, Json>| {
            let mut ctx = object(d.get("context"));
            ctx.shift_remove("default_target");
            ctx
        };
        // The deployment's own strings; what they read is as written, with the values that are
        // themselves templates masked (reading one is an error, not its `{{ … }}` text).
        let info = |d: &Map<String, Json>| {
            let mut out = Map::new();
            for key in ["name", "description", "labels"] {
                if let Some(v) = d.get(key).filter(|v| !v.is_null()) {
                    out.insert(key.to_owned(), v.clone());
                }
            }
            Json::Object(out)
        };
        let raw_vars = Json::Object(base_vars(d));
        // `hidden` holds the names left out of the data being built, and only those.
        self.hidden.clear();
        let data = json!({
            "deployment": self.mask(&info(d), ROOT, "deployment"),
            "vars": self.mask(&raw_vars, &format!("{ROOT}/context"), "vars"),
        });
        for (key, v) in d.iter_mut() {
            if !matches!(key.as_str(), "name" | "targets" | "components") {
                self.walk(v, &format!("{ROOT}/{}", escape_segment(key)), &data, None);
            }
        }
        let deployment = info(d);
        let base = base_vars(d);

        // Targets, each with its own `.target`.
        let mut targets: IndexMap<String, (Json, Map<String, Json>)> = IndexMap::new();
        if let Some(ts) = d.get_mut("targets").and_then(Json::as_object_mut) {
            for (name, t) in ts.iter_mut() {
                let pointer = format!("{ROOT}/targets/{}", escape_segment(name));
                self.hidden.clear();
                let labels = self.mask(
                    &Json::Object(object(t.get("labels"))),
                    &format!("{pointer}/labels"),
                    "target.labels",
                );
                let context = self.mask(
                    &Json::Object(object(t.get("context"))),
                    &format!("{pointer}/context"),
                    "vars",
                );
                let mut vars = merged(&base, &object(Some(&context)));
                self.unmerge(&mut vars, &Map::new());
                let data = json!({
                    "deployment": deployment,
                    "vars": vars,
                    "target": {"name": name, "labels": labels},
                });
                self.walk(t, &pointer, &data, None);
                let target = json!({"name": name, "labels": object(t.get("labels"))});
                targets.insert(name.clone(), (target, object(t.get("context"))));
            }
        }

        // Components: metadata once, vars and settings per target.
        let mut per_target = PerTarget::new();
        let Some(types) = d.get_mut("components").and_then(Json::as_object_mut) else {
            return per_target;
        };
        for (kind, comps) in types.iter_mut() {
            let Some(comps) = comps.as_object_mut() else {
                continue;
            };
            for (name, c) in comps.iter_mut() {
                let Some(c) = c.as_object_mut() else {
                    continue;
                };
                let pointer = format!(
                    "{ROOT}/components/{}/{}",
                    escape_segment(kind),
                    escape_segment(name)
                );
                let component = json!({"name": name, "type": kind});
                self.hidden.clear();
                let data = json!({"deployment": deployment, "vars": base, "component": component});
                for (key, v) in c.iter_mut() {
                    if !PER_TARGET.contains(&key.as_str()) {
                        self.walk(
                            v,
                            &format!("{pointer}/{}", escape_segment(key)),
                            &data,
                            None,
                        );
                    }
                }
                let vars = object(Some(&self.mask(
                    &Json::Object(object(c.get("vars"))),
                    &format!("{pointer}/vars"),
                    "vars",
                )));
                let own: Vec<(&str, Map<String, Json>)> = PER_TARGET
                    .iter()
                    .map(|k| (*k, object(c.get(*k))))
                    .filter(|(_, m)| has_template(&Json::Object(m.clone())))
                    .collect();
                if own.is_empty() {
                    continue;
                }
                let mut rendered = IndexMap::new();
                for (t, (target, context)) in &targets {
                    let mut all = merged(&merged(&base, &vars), context);
                    self.unmerge(&mut all, context);
                    let data = json!({
                        "deployment": deployment,
                        "vars": all,
                        "target": target,
                        "component": component,
                    });
                    let mut forms = super::model::ForTarget::default();
                    for (key, values) in &own {
                        let mut mine = Json::Object(values.clone());
                        self.walk(&mut mine, &format!("{pointer}/{key}"), &data, Some(t));
                        let mine = object(Some(&mine));
                        match *key {
                            "vars" => forms.vars = Some(mine),
                            _ => forms.settings = Some(mine),
                        }
                    }
                    rendered.insert(t.clone(), forms);
                }
                per_target.insert((kind.clone(), name.clone()), rendered);
                // What is read for every target at once (a nixpack image, built once; the
                // component's paths) sees them rendered without a target; a string that needs
                // one keeps its text there.
                let mut all = merged(&base, &vars);
                self.unmerge(&mut all, &Map::new());
                let data = json!({
                    "deployment": deployment,
                    "vars": all,
                    "component": component,
                });
                for (key, values) in own {
                    let mut once = Json::Object(values);
                    let reported = self.problems.len();
                    self.walk(&mut once, &format!("{pointer}/{key}"), &data, None);
                    self.problems.truncate(reported);
                    c.insert(key.to_owned(), once);
                }
            }
        }
        per_target
    }

    /// True when `v` (at `pointer`) holds a template that is not a YAML function's data.
    fn holds_template(&self, v: &Json, pointer: &str) -> bool {
        if covered(&self.processed.verbatim, pointer) {
            return false;
        }
        match v {
            Json::String(s) => is_template(s),
            Json::Array(items) => items
                .iter()
                .enumerate()
                .any(|(i, item)| self.holds_template(item, &format!("{pointer}/{i}"))),
            Json::Object(map) => map.iter().any(|(k, item)| {
                self.holds_template(item, &format!("{pointer}/{}", escape_segment(k)))
            }),
            _ => false,
        }
    }

    /// Take out of merged `vars` the values a lower layer gave for what a masked layer sets
    /// with a template (the template wins the merge, so the lower value would be a wrong
    /// answer), unless a higher layer (`above`) sets them.
    fn unmerge(&self, vars: &mut Map<String, Json>, above: &Map<String, Json>) {
        for path in &self.hidden {
            let Some(rest) = path.strip_prefix("vars.") else {
                continue;
            };
            let segments: Vec<&str> = rest.split('.').collect();
            if lookup(above, &segments).is_none() {
                remove(vars, &segments);
            }
        }
    }

    /// `v` (at `pointer`) as templates may read it: every string that is itself a template
    /// (and not data a YAML function produced) left out — a key of a mapping removed and its
    /// name remembered, so that reading it is an error that says why; an item of a list
    /// replaced by null.
    fn mask(&mut self, v: &Json, pointer: &str, path: &str) -> Json {
        if covered(&self.processed.verbatim, pointer) {
            return v.clone();
        }
        match v {
            Json::String(s) if is_template(s) => Json::Null,
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.mask(item, &format!("{pointer}/{i}"), path))
                    .collect(),
            ),
            Json::Object(map) => {
                let mut out = Map::new();
                for (k, item) in map {
                    let at = format!("{pointer}/{}", escape_segment(k));
                    // A template, a list holding one (an item cannot be left out without
                    // shifting the others), or a mapping made only of them: left out whole.
                    let templated = match item {
                        Json::String(s) => is_template(s),
                        Json::Array(_) => self.holds_template(item, &at),
                        _ => false,
                    };
                    if templated && !covered(&self.processed.verbatim, &at) {
                        self.hidden.insert(format!("{path}.{k}"));
                        continue;
                    }
                    let masked = self.mask(item, &at, &format!("{path}.{k}"));
                    if matches!((&masked, item), (Json::Object(m), Json::Object(o)) if m.is_empty() && !o.is_empty())
                    {
                        self.hidden.insert(format!("{path}.{k}"));
                        continue;
                    }
                    out.insert(k.clone(), masked);
                }
                Json::Object(out)
            }
            other => other.clone(),
        }
    }

    /// Render every template string in `v` (at `pointer`) with `data`.
    fn walk(&mut self, v: &mut Json, pointer: &str, data: &Json, target: Option<&str>) {
        if covered(&self.processed.verbatim, pointer) {
            return;
        }
        match v {
            Json::String(s) if is_template(s) => {
                self.templates += 1;
                match template::render(s, data, &self.hidden) {
                    Ok(out) => *s = out,
                    Err(message) => self.problem(pointer, message, target),
                }
            }
            Json::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.walk(item, &format!("{pointer}/{i}"), data, target);
                }
            }
            Json::Object(map) => {
                for (k, item) in map.iter_mut() {
                    self.walk(
                        item,
                        &format!("{pointer}/{}", escape_segment(k)),
                        data,
                        target,
                    );
                }
            }
            _ => {}
        }
    }

    fn problem(&mut self, pointer: &str, message: String, target: Option<&str>) {
        let place = super::schema::dotted(pointer);
        let message = match target {
            Some(t) => format!("template in {place} (for target {t}): {message}"),
            None => format!("template in {place}: {message}"),
        };
        // One report per string, not one per target.
        if self
            .problems
            .iter()
            .any(|p| p.pointer.as_deref() == Some(pointer))
        {
            return;
        }
        let d = match self.processed.locate(pointer) {
            Some((source, pos)) => Diagnostic::error(Code::Template, &source.file, message)
                .at(pos.map(|p| p.value), Some(&source.text)),
            None => Diagnostic::error(Code::Template, "", message),
        };
        self.problems.push(d.pointer(pointer).hint(
            "templates see .deployment (name, labels), .vars, .target (name, labels: in targets and in components' vars and settings) and .component (name, type); write {{`{{`}} for a literal {{",
        ));
    }
}

/// The value at `segments` below `map`.
fn lookup<'m>(map: &'m Map<String, Json>, segments: &[&str]) -> Option<&'m Json> {
    let (first, rest) = segments.split_first()?;
    let v = map.get(*first)?;
    match (rest.is_empty(), v) {
        (true, v) => Some(v),
        (false, Json::Object(m)) => lookup(m, rest),
        _ => None,
    }
}

/// Remove the value at `segments` below `map`.
fn remove(map: &mut Map<String, Json>, segments: &[&str]) {
    match segments {
        [] => {}
        [last] => {
            map.shift_remove(*last);
        }
        [first, rest @ ..] => {
            if let Some(Json::Object(m)) = map.get_mut(*first) {
                remove(m, rest);
            }
        }
    }
}

fn has_template(v: &Json) -> bool {
    match v {
        Json::String(s) => is_template(s),
        Json::Array(a) => a.iter().any(has_template),
        Json::Object(o) => o.values().any(has_template),
        _ => false,
    }
}
