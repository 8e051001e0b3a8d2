//! From a deployment file to one processed document: its `import:`s resolved and deep-merged
//! in order, its YAML functions (`!env`, `!include`, `!git.sha`) evaluated, and for every node
//! the file it came from — so that every later finding (schema, semantic checks, templates)
//! points at the file and line that set the value, inside an import if that is where it is.
//!
//! Merge order: each import in the order listed (an import's own imports first), then the
//! file itself. Mappings merge key by key, any other value (lists included) replaces, and an
//! explicit `null` removes the key it lands on. Nothing here runs a command.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use serde_yaml_ng::Value as Yaml;

use super::parse::parse_text;
use super::schema::SchemaKind;
use super::source::{FileSource, glob_match, join_inside};
use super::source_map::{NodePos, SourceMap, escape_segment};
use crate::diagnostic::{Code, Diagnostic};

/// The key that lists a file's imports.
pub const IMPORT_KEY: &str = "import";

/// The most files one deployment may merge (imports of imports included, each time a file is
/// imported): far above any real chain, low enough that a file importing itself twice at
/// every level cannot make a load take forever.
pub const MAX_FILES: usize = 256;

/// The most bytes all the files of one deployment may hold together (the deployment file,
/// its imports, its includes).
pub const MAX_TOTAL: usize = 16 << 20;

/// One file that contributed to a processed document.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as shown to people (`deployments/_defaults/chain.yaml`, `…@1a2b3c4`).
    pub file: PathBuf,
    /// The path relative to the project root.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// Positions of its nodes.
    pub map: SourceMap,
}

/// A processed document and where each of its nodes came from.
#[derive(Debug, Clone, Default)]
pub struct Processed {
    /// The merged value, without `import`.
    pub value: Json,
    /// The files merged, in merge order; the deployment file itself is last.
    pub sources: Vec<SourceFile>,
    /// JSON pointer → index in `sources` of the file that set that node last. A node without
    /// an entry came with its nearest ancestor that has one.
    pub origins: BTreeMap<String, usize>,
    /// JSON pointers of values a YAML function produced (`!env`, `!include`): data, never
    /// templates, so a `{{` in an environment variable or an included file is not evaluated.
    pub verbatim: BTreeSet<String>,
    /// The files `!include` read (relative to the project root) and their bytes.
    pub includes: Vec<(PathBuf, Vec<u8>)>,
}

impl Processed {
    /// Every file the document was made from: the imports, the deployment file, the files
    /// `!include` read (relative to the project root).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.sources.iter().map(|s| s.path.clone()).collect();
        out.extend(self.includes.iter().map(|(p, _)| p.clone()));
        out.sort();
        out.dedup();
        out
    }

    /// The file that set the node at `pointer`, and the node's position in it.
    pub fn locate(&self, pointer: &str) -> Option<(&SourceFile, Option<NodePos>)> {
        let mut p = pointer;
        let index = loop {
            if let Some(i) = self.origins.get(p) {
                break *i;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => break self.sources.len().checked_sub(1)?,
            }
        };
        let source = self.sources.get(index)?;
        Some((source, source.map.nearest(pointer)))
    }

    /// Every file the document was made from, with the bytes read.
    pub fn contents(&self) -> Vec<(&Path, &[u8])> {
        let mut out: Vec<(&Path, &[u8])> = self
            .sources
            .iter()
            .map(|s| (s.path.as_path(), s.text.as_bytes()))
            .collect();
        out.extend(
            self.includes
                .iter()
                .map(|(p, b)| (p.as_path(), b.as_slice())),
        );
        out
    }

    /// The deployment file itself.
    pub fn main(&self) -> Option<&SourceFile> {
        self.sources.last()
    }

    /// Move `d` to the file and line that set its node, when that is another file than the
    /// one it names (a schema error on a value set by an import).
    pub fn relocate(&self, d: Diagnostic) -> Diagnostic {
        let Some(pointer) = d.pointer.clone() else {
            return d;
        };
        let Some((source, pos)) = self.locate(&pointer) else {
            return d;
        };
        if source.file == d.file {
            return d;
        }
        let keyed = matches!(
            d.code,
            Code::UnknownKey | Code::MissingKey | Code::DuplicateKey
        );
        let span = pos.map(|p| {
            if keyed {
                p.key.unwrap_or(p.value)
            } else {
                p.value
            }
        });
        let mut moved = d.at(span, Some(&source.text));
        moved.file = source.file.clone();
        moved
    }
}

/// What processing may read: the deployments folder (where imports resolve) and the
/// environment variables `!env` may read.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The deployments folder, relative to the project root.
    pub deployments_dir: PathBuf,
    /// Names (or `PREFIX_*` patterns) of environment variables `!env` may read.
    pub env_allow: Vec<String>,
}

/// Process the deployment file `path` (relative to the project root) read from `source`.
pub fn process(
    source: &dyn FileSource,
    path: &Path,
    options: &Options,
) -> Result<Processed, Vec<Diagnostic>> {
    let mut run = Run {
        source,
        options,
        out: Processed::default(),
        stack: Vec::new(),
        problems: Vec::new(),
        produced: BTreeSet::new(),
        read: 0,
    };
    let bytes = match source.read(path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(vec![Diagnostic::error(
                Code::Io,
                source.shown(path),
                "the file does not exist",
            )]);
        }
        Err(e) => return Err(vec![Diagnostic::error(Code::Io, source.shown(path), e)]),
    };
    run.read = bytes.len();
    run.layer(path, &bytes);
    if !run.problems.is_empty() {
        return Err(run.problems);
    }
    let main = run.out.sources.len().saturating_sub(1);
    run.out.origins.insert(String::new(), main);
    Ok(run.out)
}

struct Run<'a> {
    source: &'a dyn FileSource,
    options: &'a Options,
    out: Processed,
    /// The files being processed, outermost first (cycle detection).
    stack: Vec<PathBuf>,
    problems: Vec<Diagnostic>,
    /// Pointers of the current file's values produced by YAML functions.
    produced: BTreeSet<String>,
    /// Bytes read so far, every file together.
    read: usize,
}

impl Run<'_> {
    /// Count `len` more bytes read; true when that passes [`MAX_TOTAL`].
    fn over_total(&mut self, len: usize) -> bool {
        self.read = self.read.saturating_add(len);
        self.read > MAX_TOTAL
    }

    /// Merge `path` (its imports first) into the result.
    fn layer(&mut self, path: &Path, bytes: &[u8]) {
        let shown = self.source.shown(path);
        let (text, mut yaml, map) = match parse_text(&shown, bytes, SchemaKind::Deployment) {
            Ok(parsed) => parsed,
            Err(p) => return self.problems.extend(p),
        };
        // YAML merge keys (`<<: *defaults`), as Atmos stacks use them.
        if let Err(e) = yaml.apply_merge() {
            self.problems.push(
                Diagnostic::error(Code::YamlSyntax, &shown, format!("invalid merge key: {e}"))
                    .hint("`<<:` takes an alias of a mapping, or a list of them"),
            );
            return;
        }
        let file = SourceFile {
            file: shown,
            path: path.to_owned(),
            text,
            map,
        };
        // Every tag, as the YAML parser resolved it (a `%TAG` directive can rename `!`):
        // only ours and YAML's own scalar and collection tags.
        let before = self.problems.len();
        for (handle, suffix, at) in &file.map.tags {
            if !known_tag(handle, suffix) {
                self.problems.push(
                    Diagnostic::error(
                        Code::YamlFunction,
                        &file.file,
                        if matches!(handle.as_str(), "!" | "!!" | "tag:yaml.org,2002:" | "") {
                            format!("unknown YAML tag `{}`", shown_tag(handle, suffix))
                        } else {
                            format!(
                                "YAML tag `{}` comes from a %TAG directive; write `!env`, `!include` or `!git.sha` directly",
                                shown_tag(handle, suffix)
                            )
                        },
                    )
                    .at(Some(*at), Some(&file.text))
                    .hint("the YAML functions are `!env NAME [default]`, `!include PATH` and `!git.sha`; YAML's own tags are `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!seq` and `!!map`"),
                );
            }
        }
        if self.problems.len() > before {
            return;
        }
        let mut value = self.functions(&file, yaml, "");
        let produced = std::mem::take(&mut self.produced);
        let imports = match &mut value {
            Json::Object(o) => o.shift_remove(IMPORT_KEY),
            _ => None,
        };
        self.stack.push(path.to_owned());
        if let Some(imports) = imports {
            for (pointer, entry) in import_entries(&file, imports, &mut self.problems) {
                for import in self.resolve(&file, &pointer, &entry) {
                    self.import(&file, &pointer, &import);
                }
            }
        }
        self.stack.pop();
        let index = self.out.sources.len();
        // An import's `deployment` that is not a mapping would be replaced by the file's
        // own, unseen: say so where it is written.
        if !self.stack.is_empty()
            && value
                .get("deployment")
                .is_some_and(|d| !d.is_object() && !d.is_null())
        {
            self.problems.push(
                located(
                    &file,
                    Code::Import,
                    "/deployment",
                    "`deployment` in an imported file must be a mapping",
                )
                .hint("write the keys it sets below it: `deployment:` then `  targets: …`"),
            );
        }
        if !value.is_object() {
            if self.stack.is_empty() {
                // The deployment file itself: the schema says what is wrong with its shape.
                self.out.value = value.clone();
            } else {
                self.problems.push(
                    located(&file, Code::Import, "", "an imported file must be a mapping")
                        .hint("an imported file has the shape of a deployment file: `deployment:` with the keys it sets"),
                );
            }
        }
        self.out.sources.push(file);
        if let Json::Object(o) = value {
            let mut root = match std::mem::take(&mut self.out.value) {
                Json::Object(m) => m,
                _ => Map::new(),
            };
            let mut into = Layer {
                index,
                origins: &mut self.out.origins,
                verbatim: &mut self.out.verbatim,
                produced: &produced,
            };
            merge(&mut root, o, "", &mut into);
            self.out.value = Json::Object(root);
        }
    }

    fn import(&mut self, from: &SourceFile, pointer: &str, path: &Path) {
        if let Some(start) = self.stack.iter().position(|p| p == path) {
            let mut chain: Vec<String> = self.stack[start..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            chain.push(path.display().to_string());
            self.problems.push(
                located(from, Code::Import, pointer, format!("import cycle: {}", chain.join(" → ")))
                    .hint("remove one of these imports: an imported file may not import, directly or not, the file that imports it"),
            );
            return;
        }
        if self.out.sources.len() + self.stack.len() >= MAX_FILES {
            if self
                .problems
                .iter()
                .any(|p| p.message.contains("files would be merged"))
            {
                return;
            }
            self.problems.push(
                located(
                    from,
                    Code::Import,
                    pointer,
                    format!("more than {MAX_FILES} files would be merged into this deployment"),
                )
                .hint("import each shared file once, from the deployment file"),
            );
            return;
        }
        match self.source.read(path) {
            Ok(Some(bytes)) if self.over_total(bytes.len()) => self.problems.push(
                located(
                    from,
                    Code::Import,
                    pointer,
                    format!(
                        "the files of this deployment would hold more than {} MiB",
                        MAX_TOTAL >> 20
                    ),
                )
                .hint("configuration, not data: keep imports small"),
            ),
            Ok(Some(bytes)) => self.layer(path, &bytes),
            Ok(None) => self.problems.push(located(
                from,
                Code::Import,
                pointer,
                format!("imported file {} does not exist", path.display()),
            )),
            Err(e) => self.problems.push(located(from, Code::Import, pointer, e)),
        }
    }

    /// The files an `import` entry names: a path (`.yaml` optional) or a glob in its last
    /// segment, relative to the deployments folder and never outside it.
    fn resolve(&mut self, from: &SourceFile, pointer: &str, entry: &str) -> Vec<PathBuf> {
        let base = &self.options.deployments_dir;
        let outside = || {
            located(
                from,
                Code::Import,
                pointer,
                format!(
                    "import `{entry}` leads outside the deployments folder {}",
                    base.display()
                ),
            )
            .hint("imports are paths relative to the deployments folder, e.g. `_defaults/chain`")
        };
        let Some(joined) = join_inside(base, entry).filter(|p| p.starts_with(base) && p != base)
        else {
            self.problems.push(outside());
            return Vec::new();
        };
        let name = joined
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = joined.parent().map(Path::to_owned).unwrap_or_default();
        if name.contains(['*', '?']) {
            let listed = match self.source.list(&dir) {
                Ok(l) => l,
                Err(e) => {
                    self.problems.push(located(from, Code::Import, pointer, e));
                    return Vec::new();
                }
            };
            let found: Vec<PathBuf> = listed
                .into_iter()
                .filter(|(n, is_dir)| {
                    !is_dir
                        && glob_match(&name, n)
                        && (name.ends_with(".yaml")
                            || name.ends_with(".yml")
                            || n.ends_with(".yaml")
                            || n.ends_with(".yml"))
                })
                .map(|(n, _)| dir.join(n))
                .collect();
            if found.is_empty() {
                self.problems.push(
                    located(
                        from,
                        Code::Import,
                        pointer,
                        format!("import `{entry}` matches no file in {}", dir.display()),
                    )
                    .hint("check the folder and pattern (globs match file names in one folder)"),
                );
            }
            return found;
        }
        let candidates = if name.ends_with(".yaml") || name.ends_with(".yml") {
            vec![joined.clone()]
        } else {
            vec![
                dir.join(format!("{name}.yaml")),
                dir.join(format!("{name}.yml")),
                joined.clone(),
            ]
        };
        // The first that exists; reading it (and refusing a link or a FIFO) is `import`'s.
        if let Some(c) = candidates.iter().find(|c| self.source.exists(c)) {
            return vec![c.clone()];
        }
        let near: Vec<String> = self
            .source
            .list(&dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, d)| !d && (n.ends_with(".yaml") || n.ends_with(".yml")))
            .map(|(n, _)| n)
            .collect();
        let hint = match crate::diagnostic::did_you_mean(&name, near.iter().map(String::as_str)) {
            Some(m) => format!("did you mean `{m}`?"),
            None if near.is_empty() => format!("create {}", candidates[0].display()),
            None => format!("files in {}: {}", dir.display(), near.join(", ")),
        };
        self.problems.push(
            located(
                from,
                Code::Import,
                pointer,
                format!(
                    "imported file `{entry}` not found (looked for {})",
                    candidates[0].display()
                ),
            )
            .hint(hint),
        );
        Vec::new()
    }

    /// `yaml` with its YAML functions evaluated; problems are recorded and the node dropped.
    fn functions(&mut self, file: &SourceFile, yaml: Yaml, pointer: &str) -> Json {
        match yaml {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(b),
            Yaml::Number(n) => serde_json::to_value(&n).unwrap_or(Json::Null),
            Yaml::String(s) => Json::String(s),
            Yaml::Sequence(items) => Json::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| self.functions(file, v, &format!("{pointer}/{i}")))
                    .collect(),
            ),
            Yaml::Mapping(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    let key = match k {
                        Yaml::String(s) => s,
                        other => serde_yaml_ng::to_string(&other)
                            .map(|s| s.trim_end().to_owned())
                            .unwrap_or_default(),
                    };
                    let p = format!("{pointer}/{}", escape_segment(&key));
                    let v = self.functions(file, v, &p);
                    out.insert(key, v);
                }
                Json::Object(out)
            }
            Yaml::Tagged(t) => {
                let tag = t.tag.to_string();
                match self.function(file, &tag, t.value, pointer) {
                    Ok(v) => {
                        if tag != "!git.sha" {
                            self.produced.insert(pointer.to_owned());
                        }
                        v
                    }
                    Err(d) => {
                        self.problems.push(*d);
                        Json::Null
                    }
                }
            }
        }
    }

    fn function(
        &mut self,
        file: &SourceFile,
        tag: &str,
        arg: Yaml,
        pointer: &str,
    ) -> Result<Json, Box<Diagnostic>> {
        let text = match &arg {
            Yaml::String(s) => s.trim().to_owned(),
            Yaml::Null => String::new(),
            Yaml::Number(n) => n.to_string(),
            Yaml::Bool(b) => b.to_string(),
            _ => String::from("\u{0}"),
        };
        let bad_arg = |usage: &str| {
            located(
                file,
                Code::YamlFunction,
                pointer,
                format!("`{tag}` takes {usage}"),
            )
        };
        match tag {
            "!env" => {
                if text.is_empty() || text.contains('\u{0}') {
                    return Err(Box::new(bad_arg(
                        "a variable name and an optional default: `!env NAME default`",
                    )));
                }
                let (name, default) = match text.split_once(char::is_whitespace) {
                    Some((n, d)) => (n, Some(d.trim())),
                    None => (text.as_str(), None),
                };
                let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(Box::new(bad_arg(
                        "the name of one environment variable (letters, digits, `_`), then an optional default",
                    )));
                }
                if !self.options.env_allow.iter().any(|p| env_allowed(p, name)) {
                    return Err(Box::new(located(
                        file,
                        Code::YamlFunction,
                        pointer,
                        format!("`!env {name}`: {name} is not in the allow-list of environment variables"),
                    )
                    .hint(format!(
                        "gates read these values, so the variables they may come from are listed in atmos.yaml `processing: {{env: [{name}]}}` (for the rules of a rollout, the atmos.yaml on the trusted ref)"
                    ))));
                }
                match (std::env::var(name), default) {
                    (Ok(v), _) => Ok(scalar(&v)),
                    (Err(std::env::VarError::NotUnicode(_)), _) => Err(Box::new(located(
                        file,
                        Code::YamlFunction,
                        pointer,
                        format!("`!env {name}`: the value of {name} is not UTF-8 text"),
                    ))),
                    (Err(_), Some(d)) => Ok(scalar(d)),
                    (Err(_), None) => Err(Box::new(located(
                        file,
                        Code::YamlFunction,
                        pointer,
                        format!("`!env {name}`: {name} is not set"),
                    )
                    .hint(format!(
                        "set {name}, or give a default: `!env {name} <default>`"
                    )))),
                }
            }
            "!include" => {
                if text.is_empty() || text.contains('\u{0}') {
                    return Err(Box::new(bad_arg(
                        "a path: `!include ./motd.txt` (next to this file) or `!include config/app.yaml` (from the project root)",
                    )));
                }
                let base = if text.starts_with("./") || text.starts_with("../") {
                    file.path.parent().map(Path::to_owned).unwrap_or_default()
                } else {
                    PathBuf::new()
                };
                let Some(path) = join_inside(&base, &text) else {
                    return Err(Box::new(located(
                        file,
                        Code::YamlFunction,
                        pointer,
                        format!("`!include {text}` leads outside the project"),
                    )));
                };
                if path.as_os_str().is_empty() {
                    return Err(Box::new(bad_arg("the path of a file, not a folder")));
                }
                let bytes = match self.source.read(&path) {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        return Err(Box::new(located(
                            file,
                            Code::YamlFunction,
                            pointer,
                            format!("`!include {text}`: {} does not exist", path.display()),
                        )
                        .hint("paths starting with ./ are relative to this file, others to the project root")));
                    }
                    Err(e) => {
                        return Err(Box::new(located(
                            file,
                            Code::YamlFunction,
                            pointer,
                            format!("`!include {text}`: {e}"),
                        )));
                    }
                };
                if self.over_total(bytes.len()) {
                    return Err(Box::new(bad_arg(&format!(
                        "files that, with the rest of this deployment, hold at most {} MiB",
                        MAX_TOTAL >> 20
                    ))));
                }
                self.out.includes.push((path.clone(), bytes.clone()));
                include(&self.source.shown(&path), &path, &bytes).map_err(|e| {
                    Box::new(located(
                        file,
                        Code::YamlFunction,
                        pointer,
                        format!("`!include {text}`: {e}"),
                    ))
                })
            }
            "!git.sha" if !text.is_empty() => Err(Box::new(bad_arg("no argument"))),
            "!git.sha" => match self.source.commit() {
                Ok(sha) => Ok(Json::String(sha)),
                Err(e) => Err(Box::new(located(
                    file,
                    Code::YamlFunction,
                    pointer,
                    format!("`!git.sha`: {e}"),
                )
                .hint(
                    "commit the project first: `!git.sha` is the commit the files are read from",
                ))),
            },
            // YAML's own tags (`!!str 1`) keep their value.
            t if CORE_TAGS
                .iter()
                .any(|c| t == format!("!!{c}") || t == format!("!tag:yaml.org,2002:{c}")) =>
            {
                Ok(self.functions(file, arg, pointer))
            }
            other => Err(Box::new(located(
                file,
                Code::YamlFunction,
                pointer,
                format!("unknown YAML function `{other}`"),
            )
            .hint("the YAML functions are `!env NAME [default]`, `!include PATH` and `!git.sha`"))),
        }
    }
}

/// YAML's own tags accepted in deployment files.
const CORE_TAGS: &[&str] = &["str", "int", "float", "bool", "null", "seq", "map"];

/// A tag as written: `!!exec` rather than the resolved `tag:yaml.org,2002:exec`.
fn shown_tag(handle: &str, suffix: &str) -> String {
    match handle {
        "tag:yaml.org,2002:" => format!("!!{suffix}"),
        "" => format!("!<{suffix}>"),
        h => format!("{h}{suffix}"),
    }
}

/// Is the tag `handle` + `suffix` (as the parser resolved it) one of ours or YAML's own?
fn known_tag(handle: &str, suffix: &str) -> bool {
    match handle {
        "!" => matches!(suffix, "env" | "include" | "git.sha"),
        "!!" | "tag:yaml.org,2002:" => CORE_TAGS.contains(&suffix),
        "" => suffix
            .strip_prefix("tag:yaml.org,2002:")
            .is_some_and(|s| CORE_TAGS.contains(&s)),
        _ => false,
    }
}

/// A file `!include`d: YAML and JSON files as data (without further processing), anything
/// else as its text.
fn include(shown: &Path, path: &Path, bytes: &[u8]) -> Result<Json, String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let text =
        std::str::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    if !matches!(ext, "yaml" | "yml" | "json") {
        return Ok(Json::String(text.to_owned()));
    }
    if let Err(e) = crate::yaml_shape::check(text) {
        return Err(format!("{}: {}", shown.display(), e.message));
    }
    let what = if ext == "json" { "JSON" } else { "YAML" };
    let map =
        SourceMap::build(text).ok_or_else(|| format!("{} is not valid {what}", shown.display()))?;
    if let Some(d) = map.duplicates.first() {
        return Err(format!(
            "{}:{}: duplicate key `{}` (first at line {})",
            shown.display(),
            d.again.line,
            d.key,
            d.first.line
        ));
    }
    if let Some((handle, suffix, at)) = map.tags.first() {
        return Err(format!(
            "{}:{}: `{handle}{suffix}`: an included file is data; YAML functions and tags are not evaluated in it",
            shown.display(),
            at.line
        ));
    }
    serde_yaml_ng::from_str::<Json>(text)
        .map_err(|e| format!("{} is not valid {what}: {e}", shown.display()))
}

/// An environment value as YAML would read it unquoted, when that reads back the same
/// (`true`, `3`); any other text stays a string (`0123`, `yes`, `eu-west-1`).
fn scalar(text: &str) -> Json {
    match serde_yaml_ng::from_str::<Json>(text) {
        Ok(v @ (Json::Bool(_) | Json::Number(_)))
            if serde_json::to_string(&v).is_ok_and(|t| t == text) =>
        {
            v
        }
        _ => Json::String(text.to_owned()),
    }
}

/// Is the variable `name` allowed by the pattern `p` (a name, or a prefix ending in `*`)?
pub fn env_allowed(p: &str, name: &str) -> bool {
    match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    }
}

/// The entries of an `import` value (a string or a list of strings), each with its pointer.
fn import_entries(
    file: &SourceFile,
    imports: Json,
    problems: &mut Vec<Diagnostic>,
) -> Vec<(String, String)> {
    let root = format!("/{IMPORT_KEY}");
    let items: Vec<(String, Json)> = match imports {
        Json::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{root}/{i}"), v))
            .collect(),
        Json::Null => Vec::new(),
        other => vec![(root, other)],
    };
    items
        .into_iter()
        .filter_map(|(p, v)| match v {
            Json::String(s) if !s.trim().is_empty() => Some((p, s.trim().to_owned())),
            _ => {
                problems.push(
                    located(
                        file,
                        Code::Import,
                        &p,
                        "an import must be a path (a non-empty string)",
                    )
                    .hint("import: [_defaults/chain, _defaults/gates/*.yaml]"),
                );
                None
            }
        })
        .collect()
}

/// An error at `pointer` of `file`.
pub fn located(
    file: &SourceFile,
    code: Code,
    pointer: &str,
    message: impl Into<String>,
) -> Diagnostic {
    let span = file.map.nearest(pointer).map(|p| p.value);
    Diagnostic::error(code, &file.file, message)
        .at(span, Some(&file.text))
        .pointer(pointer)
}

/// Where a layer's values go: its index, and the origins and verbatim pointers to update.
struct Layer<'a> {
    index: usize,
    origins: &'a mut BTreeMap<String, usize>,
    verbatim: &'a mut BTreeSet<String>,
    /// The layer's own verbatim pointers.
    produced: &'a BTreeSet<String>,
}

/// True when `pointer` or one of its ancestors is in `set`.
pub fn covered(set: &BTreeSet<String>, pointer: &str) -> bool {
    let mut p = pointer;
    loop {
        if set.contains(p) {
            return true;
        }
        match p.rfind('/') {
            Some(i) => p = &p[..i],
            None => return false,
        }
    }
}

/// Merge `layer` into `base`, recording the layer each replaced node came from.
fn merge(
    base: &mut Map<String, Json>,
    layer: Map<String, Json>,
    prefix: &str,
    into: &mut Layer<'_>,
) {
    for (key, value) in layer {
        let pointer = format!("{prefix}/{}", escape_segment(&key));
        match (base.get_mut(&key), value) {
            (Some(Json::Object(existing)), Json::Object(incoming))
                if !covered(into.produced, &pointer) =>
            {
                // The keys this layer leaves alone keep the file that set them: give each its
                // own entry before the mapping is marked as this layer's.
                if let Some(owner) = owner(into.origins, &pointer) {
                    for k in existing.keys() {
                        let child = format!("{pointer}/{}", escape_segment(k));
                        into.origins.entry(child).or_insert(owner);
                    }
                }
                into.origins.insert(pointer.clone(), into.index);
                merge(existing, incoming, &pointer, into);
            }
            (Some(_), Json::Null) => {
                base.shift_remove(&key);
                forget(into.origins, &pointer);
                unmark(into.verbatim, &pointer);
            }
            (_, value) => {
                forget(into.origins, &pointer);
                unmark(into.verbatim, &pointer);
                if covered(into.produced, &pointer) {
                    into.verbatim.insert(pointer.clone());
                } else {
                    let below = format!("{pointer}/");
                    into.verbatim.extend(
                        into.produced
                            .iter()
                            .filter(|p| p.starts_with(&below))
                            .cloned(),
                    );
                }
                into.origins.insert(pointer, into.index);
                base.insert(key, value);
            }
        }
    }
}

/// The layer that set `pointer`: its own entry or its nearest ancestor's.
fn owner(origins: &BTreeMap<String, usize>, pointer: &str) -> Option<usize> {
    let mut p = pointer;
    loop {
        if let Some(i) = origins.get(p) {
            return Some(*i);
        }
        p = &p[..p.rfind('/')?];
    }
}

/// True when `key` is `pointer` or below it.
fn under(key: &str, pointer: &str) -> bool {
    key == pointer || (key.starts_with(pointer) && key[pointer.len()..].starts_with('/'))
}

/// Drop the origins of `pointer` and everything below it.
fn forget(origins: &mut BTreeMap<String, usize>, pointer: &str) {
    origins.retain(|k, _| !under(k, pointer));
}

/// Drop the verbatim marks of `pointer` and everything below it.
fn unmark(verbatim: &mut BTreeSet<String>, pointer: &str) {
    verbatim.retain(|k| !under(k, pointer));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::load::load_deployment;

    /// Files in memory, as one commit would hold them.
    struct Files(BTreeMap<PathBuf, String>);

    impl FileSource for Files {
        fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(path).map(|t| t.clone().into_bytes()))
        }
        fn list(&self, dir: &Path) -> Result<Vec<(String, bool)>, String> {
            Ok(self
                .0
                .keys()
                .filter(|p| p.parent() == Some(dir))
                .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), false)))
                .collect())
        }
        fn commit(&self) -> Result<String, String> {
            Ok("0123456789abcdef0123456789abcdef01234567".into())
        }
        fn shown(&self, path: &Path) -> PathBuf {
            path.to_owned()
        }
    }

    fn files(list: &[(&str, &str)]) -> Files {
        Files(
            list.iter()
                .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
                .collect(),
        )
    }

    fn options() -> Options {
        Options {
            deployments_dir: PathBuf::from("deployments"),
            env_allow: vec!["ATMOS_TEST_REGION".into(), "ATMOS_TEST_CI_*".into()],
        }
    }

    fn run(list: &[(&str, &str)]) -> Result<Processed, Vec<Diagnostic>> {
        process(&files(list), Path::new("deployments/svc.yaml"), &options())
    }

    const CHAIN: &str = "deployment:\n  labels: {team: core, tier: gold}\n  targets:\n    dev: {labels: {env: dev}}\n    prod:\n      promotion: {from: dev}\n      context: {zones: [a, b, c]}\n";

    #[test]
    fn imports_merge_in_order_maps_merge_lists_replace_null_removes() {
        let p = run(&[
            ("deployments/_d/chain.yaml", CHAIN),
            ("deployments/_d/more.yaml", "deployment:\n  labels: {tier: silver}\n"),
            (
                "deployments/svc.yaml",
                "import: [_d/chain, _d/more.yaml]\ndeployment:\n  name: svc\n  labels: {team: null}\n  targets:\n    prod:\n      context: {zones: [z]}\n",
            ),
        ])
        .expect("processed");
        let d = &p.value["deployment"];
        assert_eq!(d["labels"], serde_json::json!({"tier": "silver"}));
        assert_eq!(
            d["targets"]["prod"]["context"]["zones"],
            serde_json::json!(["z"])
        );
        assert_eq!(d["targets"]["prod"]["promotion"]["from"], "dev");
        assert!(p.value.get(IMPORT_KEY).is_none());
        // Where each value came from.
        let from = |ptr: &str| {
            p.locate(ptr)
                .map(|(s, pos)| (s.file.display().to_string(), pos.map(|p| p.value.line)))
        };
        assert_eq!(
            from("/deployment/targets/prod/promotion/from"),
            Some(("deployments/_d/chain.yaml".into(), Some(6)))
        );
        assert_eq!(
            from("/deployment/labels/tier"),
            Some(("deployments/_d/more.yaml".into(), Some(2)))
        );
        assert_eq!(
            from("/deployment/targets/prod/context/zones/0"),
            Some(("deployments/svc.yaml".into(), Some(7)))
        );
        assert_eq!(
            from("/deployment/targets/dev/labels/env"),
            Some(("deployments/_d/chain.yaml".into(), Some(4)))
        );
    }

    #[test]
    fn globs_import_every_match_in_name_order() {
        let p = run(&[
            ("deployments/_g/b.yaml", "deployment: {labels: {x: b}}\n"),
            (
                "deployments/_g/a.yaml",
                "deployment: {labels: {x: a, y: a}}\n",
            ),
            ("deployments/_g/notes.txt", "not yaml"),
            (
                "deployments/svc.yaml",
                "import: _g/*\ndeployment:\n  name: svc\n",
            ),
        ])
        .expect("processed");
        assert_eq!(
            p.value["deployment"]["labels"],
            serde_json::json!({"x": "b", "y": "a"})
        );
        assert_eq!(p.sources.len(), 3);
    }

    #[test]
    fn cycles_missing_files_and_escapes_are_located_errors() {
        let e = run(&[
            ("deployments/_d/a.yaml", "import: [_d/b]\ndeployment: {}\n"),
            ("deployments/_d/b.yaml", "import: [_d/a]\ndeployment: {}\n"),
            (
                "deployments/svc.yaml",
                "import: [_d/a]\ndeployment: {name: svc}\n",
            ),
        ])
        .expect_err("cycle");
        assert_eq!(e[0].code, Code::Import);
        assert!(e[0].message.contains("import cycle: deployments/_d/a.yaml → deployments/_d/b.yaml → deployments/_d/a.yaml"), "{}", e[0].message);
        assert_eq!(e[0].file, PathBuf::from("deployments/_d/b.yaml"));
        assert_eq!(e[0].span.map(|s| s.line), Some(1));

        let e = run(&[
            ("deployments/_d/chain.yaml", CHAIN),
            (
                "deployments/svc.yaml",
                "deployment: {name: svc}\nimport:\n  - _d/chian\n",
            ),
        ])
        .expect_err("missing");
        assert!(
            e[0].message.contains("`_d/chian` not found"),
            "{}",
            e[0].message
        );
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `chain.yaml`?"));
        assert_eq!(e[0].span.map(|s| s.line), Some(3));

        for bad in ["../atmos", "/etc/passwd", "_d/*.none"] {
            let e = run(&[
                ("atmos.yaml", "deployment: {}\n"),
                (
                    "deployments/svc.yaml",
                    &format!("import: [\"{bad}\"]\ndeployment: {{name: svc}}\n"),
                ),
            ])
            .expect_err(bad);
            assert_eq!(e[0].code, Code::Import, "{bad}: {:?}", e[0]);
        }
    }

    #[test]
    fn an_import_explosion_stops_at_the_file_limit() {
        let mut list: Vec<(String, String)> = (0..12)
            .map(|i| {
                (
                    format!("deployments/_x/{i}.yaml"),
                    format!("import: [_x/{n}, _x/{n}]\ndeployment: {{}}\n", n = i + 1),
                )
            })
            .collect();
        list.push(("deployments/_x/12.yaml".into(), "deployment: {}\n".into()));
        list.push((
            "deployments/svc.yaml".into(),
            "import: [_x/0]\ndeployment: {name: svc}\n".into(),
        ));
        let refs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let e = run(&refs).expect_err("too many");
        assert!(
            e.iter().any(|d| d.message.contains("more than 256 files")),
            "{e:?}"
        );
    }

    #[test]
    fn an_import_that_is_not_utf8_is_located_in_the_import() {
        let files = files(&[(
            "deployments/svc.yaml",
            "import: [_d/latin]\ndeployment: {name: svc}\n",
        )]);
        // A byte that is not UTF-8, as a Latin-1 editor writes `é`.
        struct Latin(Files);
        impl FileSource for Latin {
            fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
                if path.ends_with("latin.yaml") {
                    return Ok(Some(b"deployment: {description: caf\xe9}\n".to_vec()));
                }
                self.0.read(path)
            }
            fn list(&self, dir: &Path) -> Result<Vec<(String, bool)>, String> {
                self.0.list(dir)
            }
            fn commit(&self) -> Result<String, String> {
                self.0.commit()
            }
            fn shown(&self, path: &Path) -> PathBuf {
                self.0.shown(path)
            }
        }
        let e = process(&Latin(files), Path::new("deployments/svc.yaml"), &options())
            .expect_err("latin-1");
        assert_eq!(e[0].code, Code::Encoding);
        assert_eq!(e[0].file, PathBuf::from("deployments/_d/latin.yaml"));
        assert_eq!(e[0].span.map(|s| s.line), Some(1));
    }

    #[test]
    fn the_files_of_one_deployment_are_bounded_together() {
        let big = format!("deployment: {{description: \"{}\"}}\n", "x".repeat(3 << 20));
        let mut list: Vec<(String, String)> = (0..6)
            .map(|i| (format!("deployments/_b/{i}.yaml"), big.clone()))
            .collect();
        list.push((
            "deployments/svc.yaml".into(),
            "import: [_b/*.yaml]\ndeployment: {name: svc}\n".into(),
        ));
        let refs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let e = run(&refs).expect_err("too big");
        assert!(
            e.iter().any(|d| d.message.contains("more than 16 MiB")),
            "{e:?}"
        );
    }

    #[test]
    fn env_reads_only_allowed_variables() {
        // SAFETY of the test: these names are used by this test only.
        let ok = run(&[(
            "deployments/svc.yaml",
            "deployment:\n  name: svc\n  labels:\n    region: !env ATMOS_TEST_REGION eu-west-1\n    ci: !env ATMOS_TEST_CI_UNSET ci-default\n",
        )])
        .expect("processed");
        assert_eq!(ok.value["deployment"]["labels"]["region"], "eu-west-1");
        assert_eq!(ok.value["deployment"]["labels"]["ci"], "ci-default");
        assert!(covered(&ok.verbatim, "/deployment/labels/region"));

        let e = run(&[(
            "deployments/svc.yaml",
            "deployment:\n  name: svc\n  labels:\n    home: !env HOME\n",
        )])
        .expect_err("not allowed");
        assert_eq!(e[0].code, Code::YamlFunction);
        assert!(
            e[0].message.contains("HOME is not in the allow-list"),
            "{}",
            e[0].message
        );
        assert_eq!(e[0].span.map(|s| s.line), Some(4));

        let e = run(&[(
            "deployments/svc.yaml",
            "deployment:\n  name: svc\n  labels:\n    r: !env ATMOS_TEST_CI_NEVER_SET\n",
        )])
        .expect_err("unset");
        assert!(e[0].message.contains("is not set"), "{}", e[0].message);
    }

    #[test]
    fn include_git_sha_and_unknown_functions() {
        let p = run(&[
            ("motd.txt", "hello {{ .vars.x }}\n"),
            ("deployments/_d/extra.json", "{\"a\": [1, 2]}"),
            (
                "deployments/svc.yaml",
                "deployment:\n  name: svc\n  description: !include motd.txt\n  context:\n    extra: !include ./_d/extra.json\n    sha: !git.sha\n",
            ),
        ])
        .expect("processed");
        let d = &p.value["deployment"];
        assert_eq!(d["description"], "hello {{ .vars.x }}\n");
        assert_eq!(d["context"]["extra"], serde_json::json!({"a": [1, 2]}));
        assert_eq!(
            d["context"]["sha"],
            "0123456789abcdef0123456789abcdef01234567"
        );

        let e = run(&[(
            "deployments/svc.yaml",
            "deployment:\n  name: svc\n  description: !exec rm -rf /\n",
        )])
        .expect_err("unknown");
        assert!(
            e[0].message.contains("unknown YAML tag `!exec`"),
            "{}",
            e[0].message
        );
        let e = run(&[(
            "deployments/svc.yaml",
            "deployment:\n  name: svc\n  description: !include ../../etc/passwd\n",
        )])
        .expect_err("outside");
        assert!(
            e[0].message.contains("outside the project"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn only_known_tags_and_well_formed_functions_are_accepted() {
        for (yaml, wanted) in [
            ("  description: !!exec id\n", "unknown YAML tag `!!exec`"),
            (
                "  description: !!python/object:os.system id\n",
                "unknown YAML tag",
            ),
            (
                "  description: !<tag:yaml.org,2002:exec> id\n",
                "unknown YAML tag",
            ),
            ("  description: !!binary aGVsbG8=\n", "unknown YAML tag"),
            (
                "  description: !env CI_*\n",
                "the name of one environment variable",
            ),
            ("  description: !include .\n", "not a folder"),
            ("  description: !git.sha HEAD~1\n", "no argument"),
            (
                "  description: !include _d/tagged.yaml\n",
                "YAML functions and tags are not evaluated",
            ),
            ("  description: !include _d/dup.json\n", "duplicate key `a`"),
        ] {
            let e = run(&[
                ("_d/tagged.yaml", "y: !env ATMOS_TEST_REGION\n"),
                ("_d/dup.json", "{\"a\": 1,\n \"a\": 2}"),
                (
                    "deployments/svc.yaml",
                    &format!("deployment:\n  name: svc\n{yaml}"),
                ),
            ])
            .expect_err(yaml);
            assert!(e[0].message.contains(wanted), "{yaml}: {}", e[0].message);
            assert_eq!(e[0].span.map(|s| s.line), Some(3), "{yaml}: {e:?}");
        }
        // A `%TAG` directive cannot turn another tag into one of ours, or hide one.
        let e = run(&[(
            "deployments/svc.yaml",
            "%TAG ! tag:evil,2000:\n---\ndeployment:\n  name: svc\n  description: !env ATMOS_TEST_REGION\n",
        )])
        .expect_err("tag directive");
        assert!(
            e[0].message
                .contains("`tag:evil,2000:env` comes from a %TAG directive"),
            "{}",
            e[0].message
        );
        // Merge keys merge, as in Atmos stacks.
        let p = run(&[(
            "deployments/svc.yaml",
            "deployment:\n  name: svc\n  context:\n    base: &b {x: 1, y: 1}\n    m: {<<: *b, y: 2}\n",
        )])
        .expect("merge key");
        assert_eq!(
            p.value["deployment"]["context"]["m"],
            serde_json::json!({"x": 1, "y": 2})
        );
        // YAML's own tags keep their value.
        let p =
            run(&[("deployments/svc.yaml", "deployment:\n  name: !!str svc\n")]).expect("core tag");
        assert_eq!(p.value["deployment"]["name"], "svc");
        // An import whose `deployment` is not a mapping is reported in the import.
        let e = run(&[
            ("deployments/_d/five.yaml", "deployment: 5\n"),
            (
                "deployments/svc.yaml",
                "import: [_d/five]\ndeployment: {name: svc}\n",
            ),
        ])
        .expect_err("five");
        assert_eq!(e[0].file, PathBuf::from("deployments/_d/five.yaml"));
    }

    #[test]
    fn templates_render_per_target_after_merging_and_errors_point_into_imports() {
        let list = [
            (
                "deployments/_d/chain.yaml",
                "deployment:\n  targets:\n    dev: {labels: {env: '{{ .target.name }}'}}\n    prod:\n      labels: {env: '{{ .target.name | upper }}'}\n      promotion: {from: dev}\n",
            ),
            (
                "deployments/svc.yaml",
                "import: [_d/chain]\ndeployment:\n  name: svc\n  description: '{{ .deployment.name }} owned by {{ .deployment.labels.team }}'\n  labels: {team: core}\n  context: {region: eu}\n  components:\n    script:\n      app:\n        vars: {url: 'https://{{ .target.name }}.{{ .vars.region }}.example.com', raw: !env \"ATMOS_TEST_CI_RAW {{ not a template\"}\n        settings: {script: {apply: './deploy {{ .component.name }} {{ .target.name }}'}}\n  targets:\n    prod: {context: {region: us}}\n",
            ),
        ];
        let loaded = load_deployment(&files(&list), Path::new("deployments/svc.yaml"), &options())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let d = &loaded.deployment;
        assert_eq!(d.description.as_deref(), Some("svc owned by core"));
        assert_eq!(d.targets["prod"].labels["env"], "PROD");
        assert_eq!(d.targets["dev"].labels["env"], "dev");
        let app = d.components.by_name("app").expect("app");
        assert_eq!(
            app.component.vars_for("dev")["url"],
            "https://dev.eu.example.com"
        );
        assert_eq!(
            app.component.vars_for("prod")["url"],
            "https://prod.us.example.com"
        );
        assert_eq!(app.component.vars_for("prod")["raw"], "{{ not a template");
        assert_eq!(
            app.component.for_target("prod").settings["script"]["apply"],
            "./deploy app prod"
        );
        assert_eq!(
            d.for_target("dev")
                .components
                .by_name("app")
                .expect("app")
                .component
                .settings["script"]["apply"],
            "./deploy app dev"
        );
        // Read for every target at once, a string that needs a target keeps its text.
        assert_eq!(
            app.component.settings["script"]["apply"],
            "./deploy {{ .component.name }} {{ .target.name }}"
        );

        // An undefined value in an imported file: located there, never a literal.
        let mut bad = list;
        bad[0].1 = "deployment:\n  targets:\n    dev:\n      labels: {env: '{{ .vars.nope }}'}\n";
        let e = load_deployment(&files(&bad), Path::new("deployments/svc.yaml"), &options())
            .expect_err("undefined");
        assert_eq!(e[0].code, Code::Template);
        assert_eq!(e[0].file, PathBuf::from("deployments/_d/chain.yaml"));
        assert_eq!(e[0].span.map(|s| s.line), Some(4));
        assert!(
            e[0].message.contains("`nope` is not defined"),
            "{}",
            e[0].message
        );

        // Reading a value that is itself a template is an error, not its `{{ … }}` text.
        for (vars, context) in [
            (
                "{x: '{{ .vars.y }}', y: '{{ .vars.region }}'}",
                "{region: eu}",
            ),
            ("{x: plain}", "{rec: '{{ .vars.rec }}'}"),
            // A list holding a template, a mapping made only of them.
            (
                "{x: '{{ if index .vars.l 0 }}y{{ end }}', l: ['{{ .target.name }}', b]}",
                "{region: eu}",
            ),
            (
                "{x: '{{ if .vars.m }}y{{ end }}', m: {a: '{{ .target.name }}'}}",
                "{region: eu}",
            ),
            // The component's template wins the merge over the context's plain value.
            (
                "{x: '{{ .vars.region }}-x', region: '{{ .target.name }}'}",
                "{region: eu}",
            ),
            (
                "{x: '{{ index .vars \"y\" }}', y: '{{ .target.name }}'}",
                "{region: eu}",
            ),
        ] {
            let mut bad = list;
            let text = format!(
                "deployment:\n  name: svc\n  context: {context}\n  components:\n    script:\n      app:\n        vars: {vars}\n        settings: {{script: {{apply: x}}}}\n  targets: {{dev: {{}}}}\n"
            );
            bad[1].1 = &text;
            let e = load_deployment(&files(&bad), Path::new("deployments/svc.yaml"), &options())
                .expect_err("unrendered");
            assert!(
                e[0].message.contains("itself a template"),
                "{vars}: {}",
                e[0].message
            );
        }

        // `.target` outside a target is an error that says where it exists.
        let mut bad = list;
        bad[1].1 =
            "deployment:\n  name: svc\n  description: '{{ .target.name }}'\n  targets: {dev: {}}\n";
        let e = load_deployment(&files(&bad), Path::new("deployments/svc.yaml"), &options())
            .expect_err("no target");
        assert!(
            e[0].message.contains("only in `targets.<name>`"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn schema_errors_point_at_the_imported_file() {
        let list = [
            (
                "deployments/_d/chain.yaml",
                "deployment:\n  targets:\n    prod:\n      promotion: {from: dev, requires_approval: sometimes}\n",
            ),
            (
                "deployments/svc.yaml",
                "import: [_d/chain]\ndeployment:\n  name: svc\n  targets:\n    dev: {}\n",
            ),
        ];
        let e = load_deployment(&files(&list), Path::new("deployments/svc.yaml"), &options())
            .expect_err("schema");
        assert_eq!(
            e[0].file,
            PathBuf::from("deployments/_d/chain.yaml"),
            "{e:?}"
        );
        assert_eq!(e[0].span.map(|s| s.line), Some(4));
    }
}
