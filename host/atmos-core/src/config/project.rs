//! The project: its root (found by walking up from the working directory), its optional
//! `atmos.yaml`, and the deployment files in its deployments folder.

use std::path::{Path, PathBuf};

use super::checks;
use super::load::{LoadedDeployment, load_deployment};
use super::parse::parse_yaml;
use super::process::Options;
use super::settings::Settings;
use super::source::{FileSource, WorkTree};
use crate::config::schema::SchemaKind;
use crate::diagnostic::{Code, Diagnostic, did_you_mean};

/// Name of the optional project settings file at the root.
pub const SETTINGS_FILE: &str = "atmos.yaml";
/// Default deployments folder, relative to the root.
pub const DEFAULT_DEPLOYMENTS_DIR: &str = "deployments";

/// Why a project could not be opened or a deployment found.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// Neither `atmos.yaml` nor a git work tree above the start directory.
    #[error("no atmos project found at or above {start}")]
    NotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// The start directory does not exist.
    #[error("cannot use directory {path}: {source}")]
    BadStart {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `atmos.yaml` is invalid.
    #[error("{} is invalid", SETTINGS_FILE)]
    Settings {
        /// What is wrong with it.
        diagnostics: Vec<Diagnostic>,
    },
    /// The deployments folder does not exist.
    #[error("no deployments folder at {path}")]
    NoDeploymentsDir {
        /// The folder that was expected.
        path: PathBuf,
    },
    /// Reading a file or folder failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// No deployment file of that name.
    #[error("deployment `{name}` not found")]
    UnknownDeployment {
        /// The name asked for.
        name: String,
        /// A close existing name.
        suggestion: Option<String>,
        /// Every existing name.
        known: Vec<String>,
        /// The folder searched.
        dir: PathBuf,
    },
    /// Two files define one deployment (`svc.yaml` and `svc.yml`).
    #[error("deployment `{name}` is defined twice: {} and {}", first.display(), second.display())]
    Ambiguous {
        /// The deployment.
        name: String,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A deployments folder or file that resolves outside the project.
    #[error("{} resolves to {}, outside the project", path.display(), real.display())]
    Outside {
        /// As configured or found.
        path: PathBuf,
        /// Where it leads.
        real: PathBuf,
    },
    /// The deployment file exists but has errors.
    #[error("deployment `{name}` is invalid")]
    Invalid {
        /// The deployment.
        name: String,
        /// Its errors (and warnings).
        diagnostics: Vec<Diagnostic>,
    },
}

impl crate::error::Actionable for ProjectError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            ProjectError::Io { .. } => crate::exit::Exit::Failed,
            _ => crate::exit::Exit::Usage,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ProjectError::NotFound { .. } => Some(format!(
                "run atmos inside a git work tree (`git init`), pass `--chdir <project>`, or create `{SETTINGS_FILE}` at the project root"
            )),
            ProjectError::NoDeploymentsDir { .. } => Some(format!(
                "create it with a `<name>.yaml` file per deployment, or set `deployments.path` in {SETTINGS_FILE}"
            )),
            ProjectError::UnknownDeployment {
                suggestion, known, ..
            } => Some(match (suggestion, known.is_empty()) {
                (Some(s), _) => format!("did you mean `{s}`? (`atmos deployment list` shows all)"),
                (None, true) => {
                    "no deployment files exist yet: create deployments/<name>.yaml".to_owned()
                }
                (None, false) => format!("known deployments: {}", known.join(", ")),
            }),
            ProjectError::Invalid { name, .. } => Some(format!(
                "fix the errors above, then run `atmos deployment validate {name}`"
            )),
            ProjectError::Ambiguous { .. } => {
                Some("keep one file per deployment (remove or rename the other)".into())
            }
            ProjectError::Outside { .. } => Some(
                "deployment files live inside the project (and its git repository): copy them in instead of linking"
                    .into(),
            ),
            _ => None,
        }
    }

    fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ProjectError::Settings { diagnostics } | ProjectError::Invalid { diagnostics, .. } => {
                diagnostics
            }
            _ => &[],
        }
    }
}

/// An opened project.
#[derive(Clone, Debug)]
pub struct Project {
    /// The project root (where `atmos.yaml` is, or the git work tree's top).
    pub root: PathBuf,
    /// The deployments folder.
    pub deployments_dir: PathBuf,
    /// `atmos.yaml`, or defaults.
    pub settings: Settings,
    /// Where deployment files (and what they import and include) are read from: the work
    /// tree, or one commit.
    source: std::sync::Arc<dyn FileSource>,
}

/// Every deployment of a project: those that load, and those that do not with why.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Valid deployments, sorted by name.
    pub deployments: Vec<LoadedDeployment>,
    /// Files that failed to load, with their problems.
    pub broken: Vec<(String, Vec<Diagnostic>)>,
}

impl Project {
    /// Find the project containing `start`: the nearest directory with `atmos.yaml`, or
    /// else the top of the git work tree.
    pub fn discover(start: &Path) -> Result<Project, ProjectError> {
        let start = start
            .canonicalize()
            .map_err(|source| ProjectError::BadStart {
                path: start.to_owned(),
                source,
            })?;
        let root = start
            .ancestors()
            .find(|dir| dir.join(SETTINGS_FILE).is_file() || dir.join(".git").exists())
            .ok_or_else(|| ProjectError::NotFound {
                start: start.clone(),
            })?
            .to_owned();
        Project::open(root)
    }

    /// Open the project rooted at `root`.
    pub fn open(root: PathBuf) -> Result<Project, ProjectError> {
        let settings_path = root.join(SETTINGS_FILE);
        let settings = if settings_path.is_file() {
            let bytes = std::fs::read(&settings_path).map_err(|source| ProjectError::Io {
                path: settings_path.clone(),
                source,
            })?;
            let file = Path::new(SETTINGS_FILE);
            let (_, value, _) = parse_yaml(file, &bytes, SchemaKind::Project)
                .map_err(|diagnostics| ProjectError::Settings { diagnostics })?;
            Settings::from_document(value).map_err(|e| ProjectError::Settings {
                diagnostics: vec![Diagnostic::error(
                    Code::ProjectSettings,
                    file,
                    e.to_string(),
                )],
            })?
        } else {
            Settings::default()
        };
        let dir = settings
            .deployments
            .path
            .as_deref()
            .unwrap_or(DEFAULT_DEPLOYMENTS_DIR);
        Ok(Project {
            deployments_dir: root.join(dir),
            source: std::sync::Arc::new(WorkTree::new(&root)),
            root,
            settings,
        })
    }

    /// The same project, its deployment files (and imports and includes) read from `source`
    /// (one commit) instead of the work tree.
    pub fn reading_from(mut self, source: std::sync::Arc<dyn FileSource>) -> Project {
        self.source = source;
        self
    }

    /// What processing a deployment file may read under this project's settings.
    pub fn processing(&self) -> Options {
        Options {
            deployments_dir: self.display_path(&self.deployments_dir),
            env_allow: self.settings.processing.env.clone(),
        }
    }

    /// Read and process the deployment file at `path` (as found on disk under the root) without
    /// the semantic checks, which `validate` runs itself to report warnings too.
    pub fn process_file(&self, path: &Path) -> Result<LoadedDeployment, Vec<Diagnostic>> {
        load_deployment(
            self.source.as_ref(),
            &self.display_path(path),
            &self.processing(),
        )
    }

    /// Load the deployment file `path` (relative to the project root) from `source` with
    /// this project's settings.
    pub fn load_from(
        &self,
        source: &dyn FileSource,
        path: &Path,
    ) -> Result<LoadedDeployment, Vec<Diagnostic>> {
        let loaded = load_deployment(source, path, &self.processing())?;
        let problems = checks::check(&loaded);
        if problems.iter().any(Diagnostic::is_error) {
            return Err(problems);
        }
        Ok(loaded)
    }

    /// Path of `path` as shown to people: relative to the root when inside it.
    pub fn display_path(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root)
            .map(Path::to_owned)
            .unwrap_or_else(|_| path.to_owned())
    }

    /// Deployment names (file stems) with their files, sorted by name.
    pub fn deployment_files(&self) -> Result<Vec<(String, PathBuf)>, ProjectError> {
        let dir = &self.deployments_dir;
        self.inside(dir)?;
        let entries = std::fs::read_dir(dir).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ProjectError::NoDeploymentsDir { path: dir.clone() }
            } else {
                ProjectError::Io {
                    path: dir.clone(),
                    source,
                }
            }
        })?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ProjectError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let is_yaml = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            if is_yaml && path.is_file() {
                self.inside(&path)?;
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((stem, path));
            }
        }
        out.sort();
        if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ProjectError::Ambiguous {
                name: w[0].0.clone(),
                first: self.display_path(&w[0].1),
                second: self.display_path(&w[1].1),
            });
        }
        Ok(out)
    }

    /// Refuse a path (the deployments folder, a file in it) that leads outside the project:
    /// what git does not hold cannot be trusted, deployed or audited.
    fn inside(&self, path: &Path) -> Result<(), ProjectError> {
        let (Ok(real), Ok(root)) = (path.canonicalize(), self.root.canonicalize()) else {
            return Ok(());
        };
        if real.starts_with(&root) {
            Ok(())
        } else {
            Err(ProjectError::Outside {
                path: self.display_path(path),
                real,
            })
        }
    }

    /// Load one file: parse, schema, semantic checks. Errors make it unusable; warnings are
    /// dropped here and shown by `validate`.
    pub fn load_file(&self, path: &Path) -> Result<LoadedDeployment, Vec<Diagnostic>> {
        self.load_from(self.source.as_ref(), &self.display_path(path))
    }

    /// Load the deployment called `name`.
    pub fn load(&self, name: &str) -> Result<LoadedDeployment, ProjectError> {
        let files = self.deployment_files()?;
        match files.iter().find(|(stem, _)| stem == name) {
            Some((_, path)) => self
                .load_file(path)
                .map_err(|diagnostics| ProjectError::Invalid {
                    name: name.to_owned(),
                    diagnostics,
                }),
            None => {
                let known: Vec<String> = files.into_iter().map(|(n, _)| n).collect();
                Err(ProjectError::UnknownDeployment {
                    name: name.to_owned(),
                    suggestion: did_you_mean(name, known.iter().map(String::as_str))
                        .map(str::to_owned),
                    known,
                    dir: self.deployments_dir.clone(),
                })
            }
        }
    }

    /// Load every deployment; broken files are kept aside with their problems.
    pub fn load_all(&self) -> Result<Catalog, ProjectError> {
        let mut catalog = Catalog::default();
        for (name, path) in self.deployment_files()? {
            match self.load_file(&path) {
                Ok(d) => catalog.deployments.push(d),
                Err(problems) => catalog.broken.push((name, problems)),
            }
        }
        Ok(catalog)
    }
}
