//! The crate's layers, checked from its source: every `crate::…` and `super::…` path a module
//! uses is resolved to the file of the module it names, and
//!
//! 1. no file uses, directly or through others, a file that uses it back (no import cycles);
//! 2. no top-level module uses a module of a higher layer (the table in `src/lib.rs`).
//!
//! Module declarations (`mod x;`) are not uses; test modules at the end of a file
//! (`#[cfg(test)]`) are left out, as they may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first. A module may use its own layer and those below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "exit",
            "error",
            "diagnostic",
            "names",
            "plural",
            "dag",
            "duration",
            "identity",
            "scratch",
            "signing",
            "yaml_shape",
        ],
    ),
    ("contracts", &["contracts"]),
    ("config", &["config"]),
    ("git store", &["git"]),
    (
        "engines",
        &[
            "gates",
            "executor",
            "sbom",
            "approvals",
            "registry",
            "provenance",
            "stacks",
            "artifacts",
            "logs",
        ],
    ),
    (
        "queries",
        &[
            "status",
            "history",
            "diff",
            "listing",
            "describe",
            "promotion",
            "validate",
            "board",
        ],
    ),
    ("workflows", &["workflow"]),
    ("publishing", &["published"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Module path (`["workflow", "rollout"]`) → file, for every `.rs` file under `src/`.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_owned();
        if path.is_dir() {
            let mut p = prefix.to_vec();
            p.push(name);
            modules(&path, &p, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut p = prefix.to_vec();
            if name != "mod" && name != "lib" {
                p.push(name);
            }
            out.insert(p, path);
        }
    }
}

/// The source without its trailing `#[cfg(test)]` module and without comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The child modules a file declares (`mod x;`, `pub mod x;`).
fn children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// Every path written after `crate::`, a run of `super::`, `self::` or the name of a child
/// module, expanded over `use` braces.
fn paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let kids = children(code);
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let boundary = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        let child = kids
            .iter()
            .find(|k| bytes[i..].iter().take(k.len() + 2).collect::<String>() == format!("{k}::"));
        if boundary && (rest.starts_with("self::") || child.is_some()) {
            if rest.starts_with("self::") {
                i += 6;
            }
            let (tails, end) = parse_tree(&bytes, i);
            for t in tails {
                let mut p = module.to_vec();
                p.extend(t);
                out.push(p);
            }
            i = end;
        } else if boundary && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let mut base: Vec<String> = if rest.starts_with("crate::") {
                i += 7;
                Vec::new()
            } else {
                let mut b = module.to_vec();
                while bytes[i..].iter().collect::<String>().starts_with("super::") {
                    b.pop();
                    i += 7;
                }
                b
            };
            let (tails, end) = parse_tree(&bytes, i);
            for t in tails {
                let mut p = base.clone();
                p.extend(t);
                out.push(p);
            }
            base.clear();
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Parse `a::b::{c, d::e}` at `i`: the paths it names and where it ends.
fn parse_tree(s: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        let start = i;
        while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
            i += 1;
        }
        let ident: String = s[start..i].iter().collect();
        if !ident.is_empty() {
            prefix.push(ident);
        }
        let group = s.get(i) == Some(&'{');
        if group || s[i..].iter().take(2).collect::<String>() == "::" {
            if !group {
                i += 2;
            }
            if s.get(i) == Some(&'{') {
                i += 1;
                let mut all = Vec::new();
                loop {
                    while s.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                        i += 1;
                    }
                    if s.get(i) == Some(&'}') || i >= s.len() {
                        i += 1;
                        break;
                    }
                    let (sub, end) = parse_tree(s, i);
                    for p in sub {
                        let mut full = prefix.clone();
                        full.extend(p);
                        all.push(full);
                    }
                    // Skip `as name` and anything up to the next separator.
                    i = end;
                    while s.get(i).is_some_and(|c| *c != ',' && *c != '}') {
                        i += 1;
                    }
                }
                return (all, i);
            }
            continue;
        }
        return (vec![prefix], i);
    }
}

/// The longest prefix of `path` that is a module.
fn resolve<'a>(
    path: &[String],
    files: &'a BTreeMap<Vec<String>, PathBuf>,
) -> Option<(&'a Vec<String>, &'a PathBuf)> {
    (0..=path.len())
        .rev()
        .find_map(|n| files.get_key_value(&path[..n]))
}

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&top))
}

#[test]
fn modules_form_layers_without_cycles() {
    let mut files = BTreeMap::new();
    modules(&src(), &[], &mut files);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (module, file) in &files {
        let used = edges.entry(module.clone()).or_default();
        for path in paths(&code(file), module) {
            let Some((target, _)) = resolve(&path, &files) else {
                continue;
            };
            if target != module && !target.is_empty() {
                used.insert(target.clone());
            }
        }
    }
    // 2. Layers.
    for (from, tos) in &edges {
        let Some(top) = from.first() else { continue };
        let Some(mine) = layer_of(top) else {
            problems.push(format!(
                "`{top}` is in no layer: add it to LAYERS and src/lib.rs"
            ));
            continue;
        };
        for to in tos {
            let theirs = layer_of(&to[0]).unwrap_or(usize::MAX);
            if theirs > mine {
                problems.push(format!(
                    "{} ({}) uses {} ({}), a higher layer",
                    from.join("::"),
                    LAYERS[mine].0,
                    to.join("::"),
                    LAYERS.get(theirs).map_or("no layer", |l| l.0)
                ));
            }
        }
    }
    // 1. Cycles, by depth-first search over files.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(i) = stack.iter().position(|n| n == node) {
            let cycle: Vec<String> = stack[i..]
                .iter()
                .chain(std::iter::once(node))
                .map(|n| n.join("::"))
                .collect();
            cycles.push(cycle.join(" → "));
            return;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, stack, done, cycles);
        }
        stack.pop();
        done.insert(node.clone());
    }
    let mut done = BTreeSet::new();
    let mut cycles = Vec::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut cycles);
    }
    problems.extend(cycles.into_iter().map(|c| format!("import cycle: {c}")));
    assert!(
        problems.is_empty(),
        "{} layering problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(edges.len() > 40, "the walk found {} modules", edges.len());
}

#[test]
fn the_path_parser_reads_use_trees() {
    let module = vec!["workflow".to_owned(), "rollout".to_owned()];
    let found = paths(
        "pub mod wait;\nuse super::{plan, model::X};\nuse crate::git::{GitRepo, remote::{Remote, Expect}};\nuse super::super::error::X;\nlet x = crate::contracts::layout::rfc3339(now);\nlet w: wait::W = other::wait::Y;",
        &module,
    );
    let joined: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        vec![
            "workflow::plan",
            "workflow::model::X",
            "git::GitRepo",
            "git::remote::Remote",
            "git::remote::Expect",
            "error::X",
            "contracts::layout::rfc3339",
            "workflow::rollout::wait::W",
        ]
    );
}

/// The modules a documentation table lists for each layer: the rows `| <layer> | … |` whose
/// second cell names modules in backticks (`[`name`]` links in `lib.rs`).
fn documented_layers(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| layer | modules | …`: empty first cell, then the layer, then the modules.
        let [_, layer, modules, ..] = cells.as_slice() else {
            continue;
        };
        if !LAYERS.iter().any(|(name, _)| name == layer) {
            continue;
        }
        let names: BTreeSet<String> = modules
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .map(str::to_owned)
            .collect();
        out.insert((*layer).to_owned(), names);
    }
    out
}

/// The layer tables of `src/lib.rs` and `docs/architecture.md` say what the check above
/// enforces: every layer, with exactly its modules.
#[test]
fn the_documented_layer_tables_match_the_checked_ones() {
    let want: BTreeMap<String, BTreeSet<String>> = LAYERS
        .iter()
        .map(|(layer, modules)| {
            (
                (*layer).to_owned(),
                modules.iter().map(|m| (*m).to_owned()).collect(),
            )
        })
        .collect();
    for file in [
        src().join("lib.rs"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/architecture.md"),
    ] {
        let text = std::fs::read_to_string(&file).expect("read");
        let got = documented_layers(&text);
        for (layer, modules) in &want {
            assert_eq!(
                got.get(layer),
                Some(modules),
                "{}: the `{layer}` row lists other modules than tests/layers.rs checks",
                file.display()
            );
        }
    }
}
