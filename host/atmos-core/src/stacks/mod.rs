//! Atmos stacks: the stack manifests of an Atmos repository (`atmos.yaml` `stacks`), read as
//! the Atmos CLI reads them, so that a target bound to a stack (`targets.<t>.stack`) deploys the
//! stack's components with the values Atmos would give them.
//!
//! | step | module |
//! |---|---|
//! | which files are stacks, and finding a stack's component | this module ([`Stacks`]) |
//! | what atmos.yaml says, and errors | [`settings`] |
//! | glob patterns | [`glob`] |
//! | a manifest with its imports, file-scoped `overrides` | [`manifest`] |
//! | Atmos's deep merge and list strategies | [`merge`] |
//! | a component: sections by precedence, inheritance, names, workspace, varfile | [`component`] |
//!
//! What is not done: remote imports, `!include` of remote files, Gomplate/Sprig functions
//! beyond those atmos's templates offer, YAML functions that read infrastructure
//! (`!terraform.state`, `!terraform.output`, `!store`, `!exec` — a component that uses one is
//! refused, naming it), and Atmos's `import:`/`.atmos.d` merging of `atmos.yaml` itself.

pub mod component;
pub mod glob;
pub mod manifest;
pub mod merge;
pub mod settings;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use component::Resolved;
pub use glob::glob_match;
pub use settings::{StackError, StackSettings};

use crate::config::source::FileSource;

/// The stacks of a project.
pub struct Stacks<'a> {
    source: &'a dyn FileSource,
    settings: StackSettings,
    loaded: RefCell<BTreeMap<PathBuf, manifest::Loaded>>,
}

impl<'a> Stacks<'a> {
    /// The stacks of `settings`, read from `source`.
    pub fn new(source: &'a dyn FileSource, settings: StackSettings) -> Stacks<'a> {
        Stacks {
            source,
            settings,
            loaded: RefCell::new(BTreeMap::new()),
        }
    }

    fn reader(&self) -> manifest::Reader<'_> {
        manifest::Reader {
            source: self.source,
            stacks_dir: &self.settings.stacks_dir,
            lists: merge::ListMerge::named(self.settings.list_merge.as_deref()),
            templates: self.settings.templates,
        }
    }

    /// The top-level manifests: included and not excluded, relative to the stacks folder.
    pub fn top_level(&self) -> Result<Vec<PathBuf>, StackError> {
        let matches = |patterns: &[String], f: &str| {
            patterns.iter().any(|p| {
                let p = p.trim_start_matches("./");
                let has_ext = [".yaml", ".yml", ".tmpl"].iter().any(|e| p.ends_with(e));
                if has_ext {
                    glob_match(p, f)
                } else {
                    [".yaml", ".yml", ".yaml.tmpl", ".yml.tmpl"]
                        .iter()
                        .any(|e| glob_match(&format!("{p}{e}"), f))
                }
            })
        };
        Ok(self
            .reader()
            .all_files()?
            .into_iter()
            .filter(|f| {
                let f = f.to_string_lossy();
                matches(&self.settings.included, &f) && !matches(&self.settings.excluded, &f)
            })
            .collect())
    }

    fn load(&self, file: &Path) -> Result<manifest::Loaded, StackError> {
        if let Some(l) = self.loaded.borrow().get(file) {
            return Ok(l.clone());
        }
        let l = self.reader().load(file)?;
        self.loaded.borrow_mut().insert(file.to_owned(), l.clone());
        Ok(l)
    }

    /// The `kind` component `name` of the stack named `stack`.
    pub fn component(&self, stack: &str, kind: &str, name: &str) -> Result<Resolved, StackError> {
        // The templates of one lookup get the time budget templates have.
        crate::config::template::start_budget();
        let mut found: Vec<Resolved> = Vec::new();
        let mut known: Vec<String> = Vec::new();
        // A manifest that cannot name its stack for this component (a catalog file that is
        // also top-level, say) is passed over; its error is said when no stack matches.
        let mut errors: Vec<StackError> = Vec::new();
        for file in self.top_level()? {
            let loaded = self.load(&file)?;
            let r = match component::resolve(&loaded, kind, name, &self.settings) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            // A path with a `/` names a top-level file directly.
            if r.stack == stack || (stack.contains('/') && loaded.key == stack) {
                found.push(r);
            } else if !known.contains(&r.stack) {
                known.push(r.stack);
            }
        }
        let mut found = found.into_iter();
        let Some(first) = found.next() else {
            if let Some(e) = errors.into_iter().next() {
                return Err(e);
            }
            known.sort();
            return Err(StackError::NotFound {
                stack: stack.to_owned(),
                kind: kind.to_owned(),
                component: name.to_owned(),
                known,
            });
        };
        for other in found {
            if (&other.vars, &other.settings, &other.env)
                != (&first.vars, &first.settings, &first.env)
            {
                return Err(StackError::Duplicate {
                    stack: stack.to_owned(),
                    component: format!("{kind}/{name}"),
                    files: (first.stack_file.clone(), other.stack_file.clone()),
                });
            }
        }
        Ok(first)
    }
}
