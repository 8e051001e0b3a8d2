//! Reading a top-level stack manifest with everything it imports, as Atmos does: each import
//! (a path relative to the stacks folder, `./`/`../` relative to the importing file, a glob
//! merged in lexical order, `.yaml` optional) is merged in list order — each with its own
//! imports first — and the file's own content last. `overrides` are file-scoped: they reach
//! the components defined in their file and in what it imports, and an importing file's beat
//! an imported file's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::glob::glob_match;
use super::merge::{ListMerge, merge};
use super::settings::StackError;
use crate::config::source::FileSource;

/// The largest manifest read.
const FILE_MAX: usize = 4 * 1024 * 1024;
/// The most files one stack may read.
const FILES_MAX: usize = 2_000;
/// The deepest chain of imports.
const DEPTH_MAX: usize = 64;
/// The deepest flow nesting (`[`, `{`) of a manifest.
const FLOW_DEPTH_MAX: usize = 128;

/// The deepest nesting of `[` and `{` outside quotes and comments (an upper bound of YAML's
/// flow nesting).
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut previous = '\n';
    for c in text.chars() {
        if comment {
            comment = c != '\n';
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else {
            match c {
                '#' if previous.is_whitespace() => comment = true,
                '"' | '\'' if matches!(previous, ' ' | '[' | '{' | ',' | ':' | '\n') => {
                    quote = Some(c)
                }
                '[' | '{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        previous = c;
    }
    max
}

/// The component types of a manifest.
pub const TYPES: [&str; 3] = ["terraform", "helmfile", "packer"];

/// One file's `overrides` and the components they reach.
#[derive(Debug, Clone)]
pub struct OverrideScope {
    /// The file (for messages).
    pub file: String,
    /// Per component type: the file's global `overrides` with the type's `overrides` over it.
    pub by_type: Map<String, Value>,
    /// `(type, name)` of every component defined in the file or what it imports.
    pub components: BTreeSet<(String, String)>,
    /// Per type, pointer of each leaf of its layer (`/vars/x`) → `file:line`.
    pub sources: BTreeMap<String, BTreeMap<String, String>>,
}

/// A top-level manifest with its imports merged.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file, relative to the stacks folder, without its extension (Atmos's
    /// `atmos_stack_file`).
    pub key: String,
    /// Everything merged.
    pub merged: Value,
    /// Every file imported (keys), sorted.
    pub imports: Vec<String>,
    /// File-scoped overrides, lowest first.
    pub overrides: Vec<OverrideScope>,
    /// JSON pointer of every leaf of `merged` (maps recurse; lists and scalars are leaves) →
    /// `file:line` of the manifest that set it last.
    pub sources: BTreeMap<String, String>,
}

/// What loading reads from.
pub struct Reader<'a> {
    /// The files.
    pub source: &'a dyn FileSource,
    /// The stacks folder, relative to the project root.
    pub stacks_dir: &'a Path,
    /// How the file-level merge treats lists.
    pub lists: ListMerge,
    /// Whether Go templates are rendered (import paths, imports with a `context`).
    pub templates: bool,
}

struct Walk {
    sources: BTreeMap<String, String>,
    files: usize,
    imports: BTreeSet<String>,
    overrides: Vec<OverrideScope>,
    stack: Vec<String>,
}

impl Reader<'_> {
    /// Load the top-level manifest `key` (relative to the stacks folder, no extension).
    pub fn load(&self, file: &Path) -> Result<Loaded, StackError> {
        let mut walk = Walk {
            sources: BTreeMap::new(),
            files: 0,
            imports: BTreeSet::new(),
            overrides: Vec::new(),
            stack: Vec::new(),
        };
        let (merged, _) = self.file(file, &Map::new(), &mut walk)?;
        Ok(Loaded {
            key: key_of(file),
            merged,
            imports: walk.imports.into_iter().collect(),
            overrides: walk.overrides,
            sources: walk.sources,
        })
    }

    /// One file with its imports: the merged map and the components its subtree defines.
    fn file(
        &self,
        file: &Path,
        context: &Map<String, Value>,
        walk: &mut Walk,
    ) -> Result<(Value, BTreeSet<(String, String)>), StackError> {
        let shown = self
            .source
            .shown(&self.stacks_dir.join(file))
            .display()
            .to_string();
        if walk.stack.contains(&shown) {
            return Err(StackError::Manifest {
                file: shown.clone(),
                why: format!("it imports itself: {} → {shown}", walk.stack.join(" → ")),
            });
        }
        walk.files += 1;
        if walk.files > FILES_MAX || walk.stack.len() >= DEPTH_MAX {
            return Err(StackError::Manifest {
                file: shown,
                why: format!(
                    "a stack may read at most {FILES_MAX} files, {DEPTH_MAX} imports deep"
                ),
            });
        }
        let text = self.read(file, &shown)?;
        let text = if !context.is_empty() || file.to_string_lossy().ends_with(".tmpl") {
            crate::config::template::render(
                &text,
                &Value::Object(context.clone()),
                &BTreeSet::new(),
            )
            .map_err(|why| StackError::Manifest {
                file: shown.clone(),
                why: format!("its template: {why}"),
            })?
        } else {
            text
        };
        let doc = parse(&text, &shown, self, file)?;
        let map = crate::config::source_map::SourceMap::build(&text);
        let line_of = |pointer: &str| -> String {
            match map.as_ref().and_then(|m| m.nearest(pointer)) {
                Some(pos) => format!("{shown}:{}", pos.key.unwrap_or(pos.value).line),
                None => shown.clone(),
            }
        };
        let Value::Object(doc) = doc else {
            return Err(StackError::Manifest {
                file: shown,
                why: "a stack manifest is a mapping".into(),
            });
        };
        walk.stack.push(shown.clone());
        let mut merged = Value::Object(Map::new());
        let mut components = defined(&doc);
        // Templated import paths see the settings, vars and env of the earlier imports.
        let mut seen = Map::new();
        for import in imports(&doc, &shown)? {
            let mut data = seen.clone();
            for (k, v) in &import.context {
                data.insert(k.clone(), v.clone());
            }
            let path = if import.path.contains("{{") {
                if !self.templates {
                    // Left as written; a path that still holds a template is tolerated.
                    continue;
                }
                crate::config::template::render(
                    &import.path,
                    &Value::Object(data),
                    &BTreeSet::new(),
                )
                .map_err(|why| StackError::Manifest {
                    file: shown.clone(),
                    why: format!("the import `{}`: {why}", import.path),
                })?
            } else {
                import.path.clone()
            };
            let found = self.resolve(file, &path)?;
            if found.is_empty() && !import.skip_if_missing {
                return Err(StackError::Manifest {
                    file: shown.clone(),
                    why: format!(
                        "the import `{path}` matches no file under {}",
                        self.stacks_dir.display()
                    ),
                });
            }
            // The importing file's context wins over the import's own, and reaches the
            // imports below it.
            let mut child = import.context.clone();
            for (k, v) in context {
                child.insert(k.clone(), v.clone());
            }
            for f in found {
                walk.imports.insert(key_of(&f));
                let (sub, defined) = self.file(&f, &child, walk)?;
                components.extend(defined);
                for section in ["settings", "vars", "env"] {
                    if let Some(v) = sub.get(section) {
                        let slot = seen
                            .entry(section.to_owned())
                            .or_insert_with(|| Value::Object(Map::new()));
                        merge(slot, v, self.lists);
                    }
                }
                merge(&mut merged, &sub, self.lists);
            }
        }
        walk.stack.pop();
        // Overrides of this file, for what this file's subtree defines (recorded after its
        // imports': an importing file's beat an imported file's).
        let global = doc.get("overrides").cloned().unwrap_or(Value::Null);
        let mut by_type = Map::new();
        for t in TYPES {
            let typed = doc
                .get(t)
                .and_then(|s| s.get("overrides"))
                .cloned()
                .unwrap_or(Value::Null);
            let mut layer = Value::Object(Map::new());
            for v in [&global, &typed] {
                if v.is_object() {
                    merge(&mut layer, v, self.lists);
                }
            }
            if layer.as_object().is_some_and(|m| !m.is_empty()) {
                by_type.insert(t.to_owned(), layer);
            }
        }
        if !by_type.is_empty() {
            let mut sources: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            for t in TYPES {
                let mut of_type = BTreeMap::new();
                for (prefix, layer) in [
                    ("/overrides".to_owned(), doc.get("overrides")),
                    (
                        format!("/{t}/overrides"),
                        doc.get(t).and_then(|x| x.get("overrides")),
                    ),
                ] {
                    let mut leaves = Vec::new();
                    if let Some(l) = layer {
                        leaf_pointers(l, "", &mut leaves);
                    }
                    for p in leaves {
                        of_type.insert(p.clone(), line_of(&format!("{prefix}{p}")));
                    }
                }
                sources.insert(t.to_owned(), of_type);
            }
            walk.overrides.push(OverrideScope {
                file: shown.clone(),
                by_type,
                components: components.clone(),
                sources,
            });
        }
        let mut own = Value::Object(doc);
        // `import` and `overrides` are this file's alone.
        if let Some(m) = own.as_object_mut() {
            m.remove("import");
            m.remove("overrides");
            for t in TYPES {
                if let Some(s) = m.get_mut(t).and_then(Value::as_object_mut) {
                    s.remove("overrides");
                }
            }
        }
        let mut leaves = Vec::new();
        leaf_pointers(&own, "", &mut leaves);
        for p in leaves {
            let at = line_of(&p);
            walk.sources.insert(p, at);
        }
        merge(&mut merged, &own, self.lists);
        Ok((merged, components))
    }

    fn read(&self, file: &Path, shown: &str) -> Result<String, StackError> {
        let bytes = self
            .source
            .read(&self.stacks_dir.join(file))
            .map_err(|why| StackError::Manifest {
                file: shown.to_owned(),
                why,
            })?
            .ok_or_else(|| StackError::Manifest {
                file: shown.to_owned(),
                why: "no such file".into(),
            })?;
        if bytes.len() > FILE_MAX {
            return Err(StackError::Manifest {
                file: shown.to_owned(),
                why: format!("it is over {} MiB", FILE_MAX / (1024 * 1024)),
            });
        }
        String::from_utf8(bytes).map_err(|_| StackError::Manifest {
            file: shown.to_owned(),
            why: "it is not UTF-8".into(),
        })
    }

    /// The files an import path names, relative to the stacks folder.
    fn resolve(&self, from: &Path, path: &str) -> Result<Vec<PathBuf>, StackError> {
        let base = if path.starts_with("./") || path.starts_with("../") {
            from.parent().unwrap_or(Path::new("")).join(path)
        } else {
            PathBuf::from(path)
        };
        let base = normalize(&base).ok_or_else(|| StackError::Manifest {
            file: from.display().to_string(),
            why: format!("the import `{path}` leads outside the stacks folder"),
        })?;
        let text = base.to_string_lossy().into_owned();
        let has_ext = [".yaml", ".yml", ".yaml.tmpl", ".yml.tmpl"]
            .iter()
            .any(|e| text.ends_with(e));
        if text.contains(['*', '?']) {
            let pattern = if has_ext {
                text
            } else {
                format!("{text}.yaml")
            };
            let mut out: Vec<PathBuf> = self
                .all_files()?
                .into_iter()
                .filter(|f| glob_match(&pattern, &f.to_string_lossy()))
                .collect();
            out.sort();
            return Ok(out);
        }
        let candidates: Vec<String> = if has_ext {
            vec![text.clone()]
        } else {
            [".yaml", ".yml", ".yaml.tmpl", ".yml.tmpl"]
                .iter()
                .map(|e| format!("{text}{e}"))
                .collect()
        };
        Ok(candidates
            .into_iter()
            .map(PathBuf::from)
            .find(|c| self.source.exists(&self.stacks_dir.join(c)))
            .into_iter()
            .collect())
    }

    /// Every file under the stacks folder, relative to it.
    pub fn all_files(&self) -> Result<Vec<PathBuf>, StackError> {
        let mut out = Vec::new();
        let mut dirs = vec![PathBuf::new()];
        while let Some(dir) = dirs.pop() {
            let entries = self
                .source
                .list(&self.stacks_dir.join(&dir))
                .map_err(|why| StackError::Manifest {
                    file: self.stacks_dir.join(&dir).display().to_string(),
                    why,
                })?;
            for (name, is_dir) in entries {
                if is_dir {
                    dirs.push(dir.join(name));
                } else {
                    out.push(dir.join(name));
                }
                if out.len() > 100_000 {
                    return Err(StackError::Manifest {
                        file: self.stacks_dir.display().to_string(),
                        why: "over 100,000 files".into(),
                    });
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// One entry of `import`.
struct Import {
    path: String,
    context: Map<String, Value>,
    skip_if_missing: bool,
}

fn imports(doc: &Map<String, Value>, shown: &str) -> Result<Vec<Import>, StackError> {
    let Some(list) = doc.get("import") else {
        return Ok(Vec::new());
    };
    let bad = |why: &str| StackError::Manifest {
        file: shown.to_owned(),
        why: why.to_owned(),
    };
    let Value::Array(list) = list else {
        return Err(bad("`import` must be a list"));
    };
    list.iter()
        .map(|entry| match entry {
            Value::String(s) => Ok(Import {
                path: s.clone(),
                context: Map::new(),
                skip_if_missing: false,
            }),
            Value::Object(o) => Ok(Import {
                path: o
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("an import object needs a `path`"))?
                    .to_owned(),
                context: o
                    .get("context")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                skip_if_missing: o
                    .get("skip_if_missing")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }),
            _ => Err(bad("an import is a path or an object with a `path`")),
        })
        .collect()
}

/// `(type, name)` of the components a file defines itself.
fn defined(doc: &Map<String, Value>) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    if let Some(c) = doc.get("components").and_then(Value::as_object) {
        for t in TYPES {
            for name in c
                .get(t)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                out.insert((t.to_owned(), name.clone()));
            }
        }
    }
    out
}

/// JSON pointers of the leaves of `v` under `at` (maps recurse; lists and scalars are leaves).
pub fn leaf_pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                leaf_pointers(
                    x,
                    &format!("{at}/{}", crate::config::source_map::escape_segment(k)),
                    out,
                );
            }
        }
        _ if at.is_empty() => {}
        _ => out.push(at.to_owned()),
    }
}

/// `a/b/../c` → `a/c`; `None` when it climbs out.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(s) => out.push(s),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The key of a manifest: its path without the extension.
pub fn key_of(file: &Path) -> String {
    let text = file.to_string_lossy().into_owned();
    for ext in [".yaml.tmpl", ".yml.tmpl", ".yaml", ".yml"] {
        if let Some(k) = text.strip_suffix(ext) {
            return k.to_owned();
        }
    }
    text
}

/// YAML → JSON. Tags Atmos evaluates later are kept as the text Atmos keeps (`"!terraform.state
/// vpc vpc_id"`); `!include` of a local file is read now.
fn parse(text: &str, shown: &str, reader: &Reader<'_>, file: &Path) -> Result<Value, StackError> {
    // The YAML parser's time grows with the square of flow nesting: a deep `[[[[…` is refused
    // before it is parsed.
    if flow_depth(text) > FLOW_DEPTH_MAX {
        return Err(StackError::Manifest {
            file: shown.to_owned(),
            why: format!("its values nest deeper than {FLOW_DEPTH_MAX} levels"),
        });
    }
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| StackError::Manifest {
            file: shown.to_owned(),
            why: format!("not YAML: {e}"),
        })?;
    to_json(&yaml, shown, reader, file)
}

fn to_json(
    v: &serde_yaml_ng::Value,
    shown: &str,
    reader: &Reader<'_>,
    file: &Path,
) -> Result<Value, StackError> {
    use serde_yaml_ng::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(s) => Value::Array(
            s.iter()
                .map(|x| to_json(x, shown, reader, file))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    other => serde_yaml_ng::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                };
                out.insert(key, to_json(v, shown, reader, file)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let arg = match &t.value {
                Y::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            if tag == "!include" {
                return include(&arg, shown, reader, file);
            }
            Value::String(format!("{tag} {arg}").trim().to_owned())
        }
    })
}

/// `!include <path>`: `./`/`../` relative to the manifest, else to the project root; YAML and
/// JSON files as data, anything else as text. Remote includes are not read.
fn include(arg: &str, shown: &str, reader: &Reader<'_>, file: &Path) -> Result<Value, StackError> {
    let path = arg.split_whitespace().next().unwrap_or_default();
    if path.contains("://") || path.contains("::") {
        return Err(StackError::Manifest {
            file: shown.to_owned(),
            why: format!(
                "`!include {path}`: remote includes are not read (nothing here reaches the network)"
            ),
        });
    }
    let rel = if path.starts_with("./") || path.starts_with("../") {
        reader
            .stacks_dir
            .join(file.parent().unwrap_or(Path::new("")))
            .join(path)
    } else {
        PathBuf::from(path)
    };
    let rel = normalize(&rel).ok_or_else(|| StackError::Manifest {
        file: shown.to_owned(),
        why: format!("`!include {path}` leads outside the project"),
    })?;
    let bytes = reader
        .source
        .read(&rel)
        .map_err(|why| StackError::Manifest {
            file: shown.to_owned(),
            why,
        })?
        .ok_or_else(|| StackError::Manifest {
            file: shown.to_owned(),
            why: format!("`!include {path}`: no such file"),
        })?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let name = rel.to_string_lossy();
    if name.ends_with(".json") {
        serde_json::from_str(&text).map_err(|e| StackError::Manifest {
            file: shown.to_owned(),
            why: format!("`!include {path}`: {e}"),
        })
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        let y: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| StackError::Manifest {
                file: shown.to_owned(),
                why: format!("`!include {path}`: {e}"),
            })?;
        to_json(&y, shown, reader, file)
    } else {
        Ok(Value::String(text))
    }
}
