//! One component of one stack, resolved as Atmos resolves it: the sections merged from lowest
//! to highest — (for `env`) atmos.yaml `env`, the stack's global section, the component type's
//! section, the base components of `metadata.inherits` (depth-first, a later base over an
//! earlier one), the component's own section, then the `overrides` that reach it — and its
//! folder, stack name, Terraform workspace and varfile name.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use super::manifest::Loaded;
use super::merge::{ListMerge, merge, merged};
use super::settings::{StackError, StackSettings};

/// YAML functions that need infrastructure: atmos never evaluates them.
pub const INFRASTRUCTURE_FUNCTIONS: [&str; 5] = [
    "!terraform.state",
    "!terraform.output",
    "!store.get",
    "!store",
    "!exec",
];

/// A stack's component, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    /// The stack's name.
    pub stack: String,
    /// The top-level manifest it comes from (relative to the stacks folder, no extension).
    pub stack_file: String,
    /// Component type (`terraform`, `helmfile`, `packer`).
    pub kind: String,
    /// The Atmos component's name.
    pub atmos_component: String,
    /// The component's folder name (`metadata.component`, else its name).
    pub component: String,
    /// Its folder, relative to the project root.
    pub folder: String,
    /// `vars`.
    pub vars: Value,
    /// `settings`.
    pub settings: Value,
    /// `env`.
    pub env: Value,
    /// `metadata`.
    pub metadata: Value,
    /// `backend_type`.
    pub backend_type: Option<String>,
    /// `backend` (the map of its type).
    pub backend: Value,
    /// `providers`.
    pub providers: Value,
    /// The executable (`terraform`, `tofu`, …).
    pub command: Option<String>,
    /// The Terraform workspace.
    pub workspace: String,
    /// The varfile's name.
    pub varfile: String,
    /// Base components, nearest first.
    pub inheritance: Vec<String>,
    /// The files the stack imports.
    pub imports: Vec<String>,
    /// `vars.<path>`, `settings.<path>`, `env.<path>` (dotted, as `describe` names leaves) →
    /// `file:line` of the manifest that set the value (`atmos.yaml` for its `env`).
    pub sources: std::collections::BTreeMap<String, String>,
    /// `metadata.type: abstract`: resolvable, never deployed.
    pub is_abstract: bool,
    /// `metadata.enabled` (default true).
    pub enabled: bool,
}

/// Resolve `kind`/`name` in `loaded`; `None` when the stack does not define it.
pub fn resolve(
    loaded: &Loaded,
    kind: &str,
    name: &str,
    settings: &StackSettings,
) -> Result<Option<Resolved>, StackError> {
    let root = &loaded.merged;
    let components = root
        .get("components")
        .and_then(|c| c.get(kind))
        .and_then(Value::as_object);
    let Some(own) = components.and_then(|c| c.get(name)) else {
        return Ok(None);
    };
    let components = components.cloned().unwrap_or_default();
    let err = |why: String| StackError::Component {
        stack_file: loaded.key.clone(),
        component: format!("{kind}/{name}"),
        why,
    };
    let typed = root.get(kind).cloned().unwrap_or(Value::Null);
    let global = |k: &str| root.get(k).cloned().unwrap_or(Value::Null);
    let typed_of = |k: &str| typed.get(k).cloned().unwrap_or(Value::Null);

    // The base components, in merge order (ancestors first).
    let mut bases: Vec<String> = Vec::new();
    visit(name, own, &components, &mut Vec::new(), &mut bases).map_err(&err)?;
    let base_of = |b: &String, k: &str| components[b].get(k).cloned().unwrap_or(Value::Null);
    let overrides: Vec<Value> = loaded
        .overrides
        .iter()
        .filter(|s| s.components.contains(&(kind.to_owned(), name.to_owned())))
        .filter_map(|s| s.by_type.get(kind).cloned())
        .chain(own.get("overrides").cloned())
        .collect();
    let over =
        |k: &str| -> Vec<Value> { overrides.iter().filter_map(|o| o.get(k).cloned()).collect() };

    // The list strategy of the component merge: the last one named along the layers.
    let mut strategy = settings.list_merge.clone();
    let mut settings_layers = vec![global("settings"), typed_of("settings")];
    settings_layers.extend(bases.iter().map(|b| base_of(b, "settings")));
    settings_layers.push(own.get("settings").cloned().unwrap_or(Value::Null));
    settings_layers.extend(over("settings"));
    for layer in &settings_layers {
        if let Some(s) = layer.get("list_merge_strategy").and_then(Value::as_str) {
            strategy = Some(s.to_owned());
        }
    }
    let lists = ListMerge::named(strategy.as_deref());
    let section = |k: &str, lowest: Option<&Value>| -> Value {
        let mut layers: Vec<Value> = lowest.into_iter().cloned().collect();
        layers.push(global(k));
        layers.push(typed_of(k));
        layers.extend(bases.iter().map(|b| base_of(b, k)));
        layers.push(own.get(k).cloned().unwrap_or(Value::Null));
        layers.extend(over(k));
        merged(layers.iter(), lists)
    };
    let mut vars = section("vars", None);
    let mut component_settings = section("settings", None);
    let mut env = section("env", Some(&settings.env));

    // metadata: the global allow-list, the bases' (but `inherits` and `type`), its own.
    let mut metadata = Value::Object(Map::new());
    if let Some(g) = root.get("metadata").and_then(Value::as_object) {
        let allowed = [
            "labels",
            "tags",
            "custom",
            "enabled",
            "locked",
            "terraform_workspace_pattern",
        ];
        for k in g.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(err(format!(
                    "the stack's global `metadata` may hold only {}; `{k}` is not one of them",
                    allowed.join(", ")
                )));
            }
        }
        merge(&mut metadata, &Value::Object(g.clone()), lists);
    }
    if settings.inherit_metadata {
        for b in &bases {
            if let Some(Value::Object(m)) = components[b].get("metadata") {
                let mut m = m.clone();
                m.remove("inherits");
                m.remove("type");
                merge(&mut metadata, &Value::Object(m), lists);
            }
        }
    }
    let own_metadata = own.get("metadata").cloned().unwrap_or(Value::Null);
    if own_metadata.is_object() {
        merge(&mut metadata, &own_metadata, lists);
    }

    // command, backend, providers.
    let mut command = settings.command.clone();
    for layer in std::iter::once(typed_of("command"))
        .chain(bases.iter().map(|b| base_of(b, "command")))
        .chain(own.get("command").cloned())
        .chain(over("command"))
    {
        if let Some(c) = layer.as_str().filter(|c| !c.is_empty()) {
            command = Some(c.to_owned());
        }
    }
    let mut backend_type: Option<String> = None;
    for layer in std::iter::once(typed_of("backend_type"))
        .chain(bases.iter().map(|b| base_of(b, "backend_type")))
        .chain(own.get("backend_type").cloned())
    {
        if let Some(t) = layer.as_str().filter(|t| !t.is_empty()) {
            backend_type = Some(t.to_owned());
        }
    }
    let mut backend_layers = vec![typed_of("backend")];
    backend_layers.extend(bases.iter().map(|b| base_of(b, "backend")));
    backend_layers.push(own.get("backend").cloned().unwrap_or(Value::Null));
    let all_backends = merged(backend_layers.iter(), lists);
    let mut backend = match &backend_type {
        Some(t) => all_backends
            .get(t)
            .cloned()
            .unwrap_or(Value::Object(Map::new())),
        None => Value::Object(Map::new()),
    };
    let mut providers_layers = vec![typed_of("providers")];
    providers_layers.extend(bases.iter().map(|b| base_of(b, "providers")));
    providers_layers.push(own.get("providers").cloned().unwrap_or(Value::Null));
    providers_layers.extend(over("providers"));
    let mut providers = merged(providers_layers.iter(), lists);

    // Folder and names.
    let own_folder = own_metadata
        .get("component")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let folder_name = own_folder
        .clone()
        .or_else(|| {
            settings
                .inherit_metadata
                .then(|| metadata.get("component").and_then(Value::as_str))
                .flatten()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| name.to_owned());
    let component = own_folder.clone().unwrap_or_else(|| name.to_owned());
    let derived = own_folder.as_deref().is_some_and(|f| f != name);
    // The folder is the project's: never absolute, never climbing out.
    let folder_path = settings.component_dir(kind).join(&folder_name);
    if folder_path.is_absolute()
        || folder_path.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
    {
        return Err(err(format!(
            "its folder {} is not inside the project (components.{kind}.base_path and metadata.component name a folder of the repository, never an absolute path or `..`)",
            folder_path.display()
        )));
    }
    let is_abstract = own_metadata.get("type").and_then(Value::as_str) == Some("abstract");
    let enabled = metadata.get("enabled").and_then(Value::as_bool) != Some(false);

    // The stack's name: the manifest's `name`, else name_template, else name_pattern, else the
    // file. Templates see the component's sections.
    let context = |workspace: Option<&str>, stack: Option<&str>| -> Value {
        let mut c = Map::new();
        c.insert("vars".into(), vars.clone());
        c.insert("settings".into(), component_settings.clone());
        c.insert("env".into(), env.clone());
        c.insert("metadata".into(), metadata.clone());
        c.insert("component".into(), Value::String(component.clone()));
        c.insert("atmos_component".into(), Value::String(name.to_owned()));
        c.insert("atmos_stack_file".into(), Value::String(loaded.key.clone()));
        c.insert("atmos_manifest".into(), Value::String(loaded.key.clone()));
        c.insert("backend".into(), backend.clone());
        c.insert(
            "backend_type".into(),
            backend_type.clone().map_or(Value::Null, Value::String),
        );
        c.insert("providers".into(), providers.clone());
        if let Some(s) = stack {
            c.insert("atmos_stack".into(), Value::String(s.to_owned()));
            c.insert("stack".into(), Value::String(s.to_owned()));
        }
        if let Some(w) = workspace {
            c.insert("workspace".into(), Value::String(w.to_owned()));
        }
        Value::Object(c)
    };
    let stack = if let Some(n) = root.get("name").and_then(Value::as_str) {
        n.to_owned()
    } else if let Some(t) = &settings.name_template {
        crate::config::template::render(t, &context(None, None), &BTreeSet::new())
            .map_err(|why| err(format!("stacks.name_template: {why}")))?
    } else if let Some(p) = &settings.name_pattern {
        name_from_pattern(p, &vars).map_err(&err)?
    } else {
        loaded.key.clone()
    };

    // Workspace.
    let workspace = if !settings.workspaces_enabled {
        "default".to_owned()
    } else if let Some(t) = metadata
        .get("terraform_workspace_template")
        .and_then(Value::as_str)
    {
        crate::config::template::render(t, &context(None, Some(&stack)), &BTreeSet::new())
            .map_err(|why| err(format!("metadata.terraform_workspace_template: {why}")))?
    } else if let Some(p) = metadata
        .get("terraform_workspace_pattern")
        .and_then(Value::as_str)
    {
        workspace_from_pattern(p, &vars, name, own_folder.as_deref())
    } else if let Some(w) = metadata.get("terraform_workspace").and_then(Value::as_str) {
        w.to_owned()
    } else if derived {
        format!("{stack}-{name}")
    } else {
        stack.clone()
    }
    .replace('/', "-");

    // Go templates in the sections, with the whole context (Atmos renders them last).
    if settings.templates {
        let ctx = context(Some(&workspace), Some(&stack));
        let mut total = 0;
        for (section, v) in [
            ("vars", &mut vars),
            ("settings", &mut component_settings),
            ("env", &mut env),
            ("backend", &mut backend),
            ("providers", &mut providers),
        ] {
            render_strings(v, &ctx, section, &mut total).map_err(&err)?;
        }
    }
    // `!env`, within the allow-list; functions that need infrastructure are refused.
    for (section, v) in [
        ("vars", &mut vars),
        ("settings", &mut component_settings),
        ("env", &mut env),
        ("backend", &mut backend),
        ("providers", &mut providers),
    ] {
        functions(v, section, &settings.env_allow).map_err(&err)?;
    }

    // Varfile: `<stack>-[<prefix>-]<component>.terraform.tfvars.json`, where the component is
    // the last segment of the Atmos name and the prefix the folder's other segments.
    let last = name.rsplit('/').next().unwrap_or(name);
    let prefix: Vec<&str> = {
        let mut segs: Vec<&str> = folder_name.split('/').collect();
        segs.pop();
        segs
    };
    // A stack name with a `/` is a file's path: `-` in file names, as Atmos writes them.
    let flat = stack.replace('/', "-");
    if flat.is_empty() || flat.contains("..") || flat.starts_with('.') {
        return Err(err(format!(
            "its stack's name `{stack}` cannot name a file (empty, or `..`)"
        )));
    }
    let stem = if prefix.is_empty() {
        format!("{flat}-{last}")
    } else {
        format!("{flat}-{}-{last}", prefix.join("-"))
    };
    let varfile = format!(
        "{stem}.{kind}.{}",
        match kind {
            "terraform" => "tfvars.json",
            "helmfile" => "vars.yaml",
            _ => "vars.json",
        }
    );
    let folder = folder_path.display().to_string();
    // Where each value came from: the highest layer that has the leaf, and the manifest that
    // set it there last.
    let mut sources = std::collections::BTreeMap::new();
    for (section, v) in [
        ("vars", &vars),
        ("settings", &component_settings),
        ("env", &env),
    ] {
        let mut leaves = Vec::new();
        super::manifest::leaf_pointers(v, "", &mut leaves);
        for leaf in leaves {
            let mut at: Option<String> = None;
            if section == "env" && settings.env.pointer(&leaf).is_some() {
                at = Some("atmos.yaml".to_owned());
            }
            let mut layers = vec![format!("/{section}"), format!("/{kind}/{section}")];
            layers.extend(bases.iter().map(|b| {
                format!(
                    "/components/{kind}/{}/{section}",
                    crate::config::source_map::escape_segment(b)
                )
            }));
            layers.push(format!(
                "/components/{kind}/{}/{section}",
                crate::config::source_map::escape_segment(name)
            ));
            for prefix in layers {
                let pointer = format!("{prefix}{leaf}");
                if root.pointer(&pointer).is_some()
                    && let Some(s) = loaded.sources.get(&pointer)
                {
                    at = Some(s.clone());
                }
            }
            for scope in loaded
                .overrides
                .iter()
                .filter(|s| s.components.contains(&(kind.to_owned(), name.to_owned())))
            {
                if let Some(s) = scope
                    .sources
                    .get(kind)
                    .and_then(|m| m.get(&format!("/{section}{leaf}")))
                {
                    at = Some(s.clone());
                }
            }
            if let Some(at) = at {
                let dotted = crate::config::source_map::split_pointer(&leaf).join(".");
                sources.insert(format!("{section}.{dotted}"), at);
            }
        }
    }
    let mut inheritance = bases.clone();
    inheritance.reverse();
    Ok(Some(Resolved {
        stack,
        stack_file: loaded.key.clone(),
        kind: kind.to_owned(),
        atmos_component: name.to_owned(),
        component,
        folder,
        vars,
        settings: component_settings,
        env,
        metadata,
        backend_type,
        backend,
        providers,
        command,
        workspace,
        varfile,
        inheritance,
        imports: loaded.imports.clone(),
        sources,
        is_abstract,
        enabled,
    }))
}

/// Depth-first over `metadata.inherits` (and a legacy `component:` naming another component):
/// each base's own bases first, then the base.
fn visit(
    name: &str,
    section: &Value,
    all: &Map<String, Value>,
    path: &mut Vec<String>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    if path.iter().any(|p| p == name) {
        return Err(format!(
            "its inheritance is circular: {} → {name}",
            path.join(" → ")
        ));
    }
    path.push(name.to_owned());
    let mut listed: Vec<String> = Vec::new();
    if let Some(c) = section.get("component").and_then(Value::as_str)
        && all.contains_key(c)
        && c != name
    {
        listed.push(c.to_owned());
    }
    for b in section
        .get("metadata")
        .and_then(|m| m.get("inherits"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(b) = b.as_str() else {
            return Err("metadata.inherits lists component names".into());
        };
        listed.push(b.to_owned());
    }
    for b in listed {
        let Some(base) = all.get(&b) else {
            return Err(format!(
                "it inherits `{b}`, which the stack does not define"
            ));
        };
        visit(&b, base, all, path, out)?;
        out.retain(|x| *x != b);
        out.push(b);
    }
    path.pop();
    Ok(())
}

/// `stacks.name_pattern`: only `{namespace}`, `{tenant}`, `{environment}`, `{stage}` (from
/// `vars`) count; any other part is dropped; a token whose var is empty is an error.
fn name_from_pattern(pattern: &str, vars: &Value) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in pattern.split('-') {
        let token = part.trim_start_matches('{').trim_end_matches('}');
        let counted = part.starts_with('{')
            && part.ends_with('}')
            && ["namespace", "tenant", "environment", "stage"].contains(&token);
        if !counted {
            continue;
        }
        match vars
            .get(token)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            Some(v) => parts.push(v.to_owned()),
            None => {
                return Err(format!(
                    "stacks.name_pattern `{pattern}` needs vars.{token}, which the stack does not set"
                ));
            }
        }
    }
    Ok(parts.join("-"))
}

/// `metadata.terraform_workspace_pattern`: its tokens replaced.
fn workspace_from_pattern(pattern: &str, vars: &Value, name: &str, base: Option<&str>) -> String {
    let var = |k: &str| vars.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut out = pattern.to_owned();
    for token in [
        "namespace",
        "tenant",
        "environment",
        "region",
        "stage",
        "attributes",
    ] {
        out = out.replace(&format!("{{{token}}}"), &var(token));
    }
    out.replace("{component}", name)
        .replace("{base-component}", base.unwrap_or(name))
}

/// The most text the templates of one component may produce in all.
const RENDERED_MAX: usize = 8 * 1024 * 1024;

fn render_strings(v: &mut Value, ctx: &Value, at: &str, total: &mut usize) -> Result<(), String> {
    match v {
        Value::String(s) if crate::config::template::is_template(s) => {
            *s = crate::config::template::render(s, ctx, &BTreeSet::new())
                .map_err(|why| format!("the template at {at}: {why}"))?;
            *total += s.len();
            if *total > RENDERED_MAX {
                return Err(format!(
                    "its templates produce more than {} MiB in all (at {at})",
                    RENDERED_MAX / (1024 * 1024)
                ));
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                render_strings(x, ctx, &format!("{at}[{i}]"), total)?;
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                render_strings(x, ctx, &format!("{at}.{k}"), total)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `!env NAME [default]` within `allow` (the component's own `env` first); a function that
/// needs infrastructure is refused, naming it.
fn functions(v: &mut Value, at: &str, allow: &[String]) -> Result<(), String> {
    match v {
        Value::String(s) if s.starts_with('!') => {
            let mut words = s.split_whitespace();
            let tag = words.next().unwrap_or_default().to_owned();
            if INFRASTRUCTURE_FUNCTIONS.contains(&tag.as_str()) {
                return Err(format!(
                    "{at} uses `{tag}`, which reads infrastructure; atmos does not evaluate it (run this component through the Atmos CLI, or set the value in the deployment file)"
                ));
            }
            if tag == "!env" {
                let name = words.next().unwrap_or_default().to_owned();
                let default: Vec<&str> = words.collect();
                // The signing key is atmos's alone: never a value a component gets.
                if name == crate::signing::KEY_ENV {
                    return Err(format!("{at} reads `!env {name}`, which is never read"));
                }
                let allowed = allow.iter().any(|a| match a.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => *a == name,
                });
                if !allowed {
                    return Err(format!(
                        "{at} reads `!env {name}`, which atmos.yaml `processing.env` (on the trusted ref) does not allow"
                    ));
                }
                let value = match (std::env::var(&name).ok(), default.is_empty()) {
                    (Some(value), _) => value,
                    (None, false) => default.join(" "),
                    (None, true) => {
                        return Err(format!(
                            "{at} reads `!env {name}`, which is not set and has no default"
                        ));
                    }
                };
                *v = Value::String(value);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                functions(x, &format!("{at}[{i}]"), allow)?;
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                functions(x, &format!("{at}.{k}"), allow)?;
            }
        }
        _ => {}
    }
    Ok(())
}
