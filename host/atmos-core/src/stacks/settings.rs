//! What atmos.yaml says about stacks and components (as the Atmos CLI reads it), and why a
//! stack cannot be read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::config::Settings;

/// Why a stack or its component cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    /// A manifest cannot be read.
    #[error("{file}: {why}")]
    Manifest {
        /// The file.
        file: String,
        /// Why.
        why: String,
    },
    /// A component cannot be resolved.
    #[error("{component} in {stack_file}: {why}")]
    Component {
        /// The top-level manifest.
        stack_file: String,
        /// `type/name`.
        component: String,
        /// Why.
        why: String,
    },
    /// No stack of that name defines the component.
    #[error("no stack named `{stack}` defines the {kind} component `{component}`")]
    NotFound {
        /// The stack asked for.
        stack: String,
        /// The type.
        kind: String,
        /// The component.
        component: String,
        /// The stacks that define it.
        known: Vec<String>,
    },
    /// Two manifests of one stack define the component differently.
    #[error("the stack `{stack}` defines {component} differently in {} and {}", files.0, files.1)]
    Duplicate {
        /// The stack.
        stack: String,
        /// `type/name`.
        component: String,
        /// The two manifests.
        files: (String, String),
    },
    /// atmos.yaml does not say where stacks are.
    #[error(
        "atmos.yaml has no `stacks` section (stacks.base_path, stacks.included_paths), so no target can be bound to a stack"
    )]
    NoStacks,
}

impl crate::error::Actionable for StackError {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Usage
    }

    fn hint(&self) -> Option<String> {
        match self {
            StackError::NotFound { known, .. } if known.is_empty() => Some(
                "check the component's name and type, and stacks.included_paths in atmos.yaml".into(),
            ),
            StackError::NotFound { stack, known, .. } => Some(
                match crate::diagnostic::did_you_mean(stack, known.iter().map(String::as_str)) {
                    Some(close) => format!("did you mean `{close}`? stacks that define it: {}", known.join(", ")),
                    None => format!("stacks that define it: {}", known.join(", ")),
                },
            ),
            StackError::NoStacks => Some(
                "add the Atmos CLI's `stacks:` section to atmos.yaml (base_path, included_paths, name_template)".into(),
            ),
            _ => None,
        }
    }
}

/// What atmos.yaml says about stacks and components, as the Atmos CLI reads it.
#[derive(Debug, Clone)]
pub struct StackSettings {
    /// `base_path`, relative to the project root.
    pub base: PathBuf,
    /// The stacks folder, relative to the project root.
    pub stacks_dir: PathBuf,
    /// Globs of top-level manifests.
    pub included: Vec<String>,
    /// Globs of manifests that are never top-level.
    pub excluded: Vec<String>,
    /// `stacks.name_template`.
    pub name_template: Option<String>,
    /// `stacks.name_pattern`.
    pub name_pattern: Option<String>,
    /// `settings.list_merge_strategy`.
    pub list_merge: Option<String>,
    /// `templates.settings.enabled`.
    pub templates: bool,
    /// `stacks.inherit.metadata` (default true).
    pub inherit_metadata: bool,
    /// atmos.yaml `env` (the lowest layer of every component's `env`).
    pub env: Value,
    /// Environment variables `!env` may read (atmos.yaml `processing.env`).
    pub env_allow: Vec<String>,
    /// `components.<type>.command` of the type resolved.
    pub command: Option<String>,
    /// `components.<type>.base_path` by type.
    pub component_dirs: BTreeMap<String, PathBuf>,
    /// `components.terraform.workspaces_enabled` (default true).
    pub workspaces_enabled: bool,
}

impl StackSettings {
    /// The settings for `kind` components, or `None` when atmos.yaml has no `stacks` section.
    pub fn read(settings: &Settings, kind: &str) -> Option<StackSettings> {
        let s = &settings.stacks;
        if s.base_path.is_none() && s.included_paths.is_empty() {
            return None;
        }
        let base = PathBuf::from(
            settings
                .base_path
                .as_deref()
                .unwrap_or("")
                .trim_start_matches("./"),
        );
        let join =
            |p: &Option<String>| base.join(p.as_deref().unwrap_or("").trim_start_matches("./"));
        let c = &settings.components;
        let typed = match kind {
            "helmfile" => &c.helmfile,
            "packer" => &c.packer,
            _ => &c.terraform,
        };
        Some(StackSettings {
            stacks_dir: join(&s.base_path),
            included: s.included_paths.clone(),
            excluded: s.excluded_paths.clone(),
            name_template: s.name_template.clone(),
            name_pattern: s.name_pattern.clone(),
            list_merge: settings.settings.list_merge_strategy.clone(),
            templates: settings.templates.settings.enabled,
            inherit_metadata: s.inherit.metadata.unwrap_or(true),
            env: Value::Object(
                settings
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            env_allow: settings.processing.env.clone(),
            command: typed.command.clone(),
            component_dirs: [
                ("terraform", &c.terraform),
                ("helmfile", &c.helmfile),
                ("packer", &c.packer),
            ]
            .into_iter()
            .map(|(k, t)| (k.to_owned(), join(&t.base_path)))
            .collect(),
            workspaces_enabled: c.terraform.workspaces_enabled.unwrap_or(true),
            base,
        })
    }

    /// The folder of `kind` components, relative to the project root.
    pub fn component_dir(&self, kind: &str) -> PathBuf {
        self.component_dirs
            .get(kind)
            .cloned()
            .unwrap_or_else(|| self.base.clone())
    }
}
