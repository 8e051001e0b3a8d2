//! `build`: images for `nixpack` components (through `nixpacks build`, or a Dockerfile through
//! `docker`, `podman` or `buildah`), `build` commands of `script` components, the image
//! digests, and the commit's SBOM. The command-line contract is in docs/build-and-sbom.md.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::{ComponentRef, ComponentType, LoadedDeployment};
use crate::executor::run::{Prepared, PreparedComponent};
use crate::executor::{CommandSpec, ExecutorError, image_name};
use crate::git::GitRepo;
use crate::sbom::{ComponentInput, Image};

/// The image builder of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Builder {
    /// `nixpacks build` (images land in the local Docker engine).
    Nixpacks,
    /// `docker build` with a Dockerfile.
    Docker,
    /// `podman build` with a Dockerfile.
    Podman,
    /// `buildah bud` with a Dockerfile.
    Buildah,
}

impl Builder {
    /// Its name, as recorded.
    pub fn name(self) -> &'static str {
        self.binary().0
    }

    fn binary(self) -> (&'static str, &'static str) {
        match self {
            Builder::Nixpacks => ("nixpacks", "ATMOS_NIXPACKS_BIN"),
            Builder::Docker => ("docker", "ATMOS_DOCKER_BIN"),
            Builder::Podman => ("podman", "ATMOS_PODMAN_BIN"),
            Builder::Buildah => ("buildah", "ATMOS_BUILDAH_BIN"),
        }
    }

    /// The engine that holds the image afterwards (push, inspect).
    fn engine(self) -> Builder {
        match self {
            Builder::Nixpacks => Builder::Docker,
            other => other,
        }
    }
}

/// One buildable component.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BuildItem {
    /// Component name.
    pub name: String,
    /// Executor type.
    #[serde(rename = "type")]
    pub kind: ComponentType,
    /// The builder, for images.
    pub builder: Option<Builder>,
    /// The image reference built, for images.
    pub image: Option<String>,
    /// Commands, in order (build, then push).
    #[serde(skip)]
    pub commands: Vec<CommandSpec>,
    /// The commands as typed.
    pub command_lines: Vec<String>,
    /// Where the digest the registry serves comes from after the build.
    #[serde(skip)]
    pub digest_from: DigestFrom,
}

/// Where an image's digest comes from after its build: always the digest of the manifest
/// the registry serves for the tag pushed — never the engine's local image id or manifest.
#[derive(Debug, Clone, Default)]
pub enum DigestFrom {
    /// The file the engine's push wrote (`buildah push --digestfile`, `podman push
    /// --digestfile`): what the registry answered the push.
    File(PathBuf),
    /// The engine, asked after its push (`docker image inspect` `RepoDigests`, which holds
    /// the registry's digest once pushed).
    Inspect(CommandSpec),
    /// Nothing: the image was not pushed (`--skip-push`), so no registry digest exists.
    #[default]
    NotPushed,
}

/// What `build` will do.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BuildPlan {
    /// Deployment.
    pub deployment: String,
    /// Target (for vars).
    pub target: String,
    /// The commit built.
    pub commit: String,
    /// Components to build now.
    pub items: Vec<BuildItem>,
    /// Buildable components already built for this commit (not built again without
    /// `--force`).
    pub already_built: Vec<String>,
    /// Components that go into the SBOM (every selected one), without images yet.
    #[serde(skip)]
    pub sbom_components: Vec<ComponentInput>,
    /// Where the sources are: the project inside a private export of the commit.
    #[serde(skip)]
    pub root: PathBuf,
    /// The export `root` points into, removed when the plan is dropped.
    #[serde(skip)]
    _export: Option<std::sync::Arc<tempfile::TempDir>>,
}

fn setting<'a>(c: &ComponentRef<'a>, key: &str) -> Option<&'a str> {
    c.component
        .settings
        .get(c.kind.as_str())?
        .get(key)?
        .as_str()
}

fn resolve(
    builder: Builder,
    root: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    component: &str,
) -> Result<PathBuf, ExecutorError> {
    let (name, var) = builder.binary();
    let chosen = env(var)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| name.to_owned());
    let hint = format!("install `{name}`, or point {var} at it");
    if chosen.contains('/') {
        let p = root.join(&chosen);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ExecutorError::ToolMissing {
                tool: chosen,
                component: component.to_owned(),
                where_: format!(" at {}", p.display()),
                hint,
            })
        };
    }
    std::env::split_paths(&env("PATH").unwrap_or_default())
        .map(|d| d.join(&chosen))
        .find(|p| p.is_file())
        .ok_or(ExecutorError::ToolMissing {
            tool: chosen,
            component: component.to_owned(),
            where_: " on PATH".into(),
            hint,
        })
}

/// The source folder of a component: `metadata`-free defaults per type
/// (`settings.nixpack.path`, `settings.terraform.dir`, `settings.<type>.source`).
pub fn source_dir(c: &ComponentRef<'_>, root: &Path) -> Option<PathBuf> {
    let rel = setting(c, "source")
        .map(str::to_owned)
        .or_else(|| match c.kind {
            ComponentType::Nixpack => Some(setting(c, "path").unwrap_or(".").to_owned()),
            ComponentType::Terraform => Some(
                setting(c, "dir")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("components/terraform/{}", c.name)),
            ),
            _ => None,
        })?;
    let dir = root.join(rel);
    dir.is_dir().then_some(dir)
}

/// Where a build runs: the project inside a private export of the commit built, so the
/// build sees exactly the commit's files (never the work tree's untracked or edited ones).
#[derive(Debug, Clone)]
pub struct Tree {
    /// The project root inside the export.
    pub root: PathBuf,
    /// The commit exported.
    pub commit: String,
    /// The export, removed when the last holder drops it.
    pub export: std::sync::Arc<tempfile::TempDir>,
}

impl Tree {
    /// Export `commit` and find the project at `rel` inside it.
    pub fn export(
        git: &GitRepo,
        commit: &str,
        rel: &Path,
    ) -> Result<Tree, crate::workflow::error::WorkflowError> {
        let dir = crate::scratch::dir("atmos-build-tree-").map_err(|source| {
            crate::workflow::error::WorkflowError::Io {
                path: PathBuf::from("temporary folder"),
                source,
            }
        })?;
        // The commit's files alone, beside the folder's bookkeeping.
        let tree = dir.path().join("tree");
        git.export_commit(commit, &tree)?;
        Ok(Tree {
            root: tree.join(rel),
            commit: commit.to_owned(),
            export: std::sync::Arc::new(dir),
        })
    }
}

/// Plan a build of `components` (all buildable ones when empty) of `loaded`, the deployment
/// as of `tree`'s commit.
pub fn plan(
    loaded: &LoadedDeployment,
    tree: &Tree,
    target: &str,
    components: &[String],
    skip_push: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BuildPlan, crate::workflow::error::WorkflowError> {
    let d = &loaded.deployment;
    crate::config::UnknownTarget::check(d, target)?;
    let commit = tree.commit.clone();
    let root = tree.root.clone();
    let selected: Vec<ComponentRef<'_>> = d
        .components
        .iter()
        .filter(|c| components.is_empty() || components.iter().any(|n| n == c.name || *n == c.id()))
        .collect();
    for n in components {
        if !selected.iter().any(|c| c.name == n || c.id() == *n) {
            let known: Vec<String> = d.components.iter().map(|c| c.name.to_owned()).collect();
            return Err(crate::workflow::error::WorkflowError::UnknownComponent {
                deployment: d.name.clone(),
                name: n.clone(),
                suggestion: crate::diagnostic::did_you_mean(n, known.iter().map(String::as_str))
                    .map(str::to_owned),
                known,
            });
        }
    }
    let mut items = Vec::new();
    // The SBOM describes every component of the commit, whichever are built now.
    let sbom_components = d
        .components
        .iter()
        .map(|c| ComponentInput {
            name: c.name.to_owned(),
            kind: c.kind,
            source_dir: source_dir(&c, &root),
            image: None,
        })
        .collect();
    for c in &selected {
        let item = match c.kind {
            ComponentType::Nixpack => {
                let builder = match setting(c, "builder") {
                    Some("docker") => Builder::Docker,
                    Some("podman") => Builder::Podman,
                    Some("buildah") => Builder::Buildah,
                    _ => Builder::Nixpacks,
                };
                let tool = resolve(builder, &root, env, &c.id())?;
                let engine = if !skip_push || builder != Builder::Nixpacks {
                    Some(resolve(builder.engine(), &root, env, &c.id())?)
                } else {
                    resolve(builder.engine(), &root, env, &c.id()).ok()
                };
                let path = setting(c, "path").unwrap_or(".").to_owned();
                let image = image_name(c, &commit);
                let spec = |program: &Path, args: Vec<String>| CommandSpec {
                    program: program.to_owned(),
                    args,
                    cwd: root.clone(),
                };
                let s = |x: &str| x.to_owned();
                let dockerfile = setting(c, "dockerfile")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{path}/Dockerfile"));
                let mut commands = vec![match builder {
                    Builder::Nixpacks => spec(
                        &tool,
                        vec![
                            s("build"),
                            path.clone(),
                            s("--name"),
                            image.name.clone(),
                            s("--tag"),
                            image.tagged.clone(),
                        ],
                    ),
                    Builder::Docker | Builder::Podman => spec(
                        &tool,
                        vec![
                            s("build"),
                            s("-f"),
                            dockerfile.clone(),
                            s("-t"),
                            image.tagged.clone(),
                            path.clone(),
                        ],
                    ),
                    Builder::Buildah => spec(
                        &tool,
                        vec![
                            s("bud"),
                            s("-f"),
                            dockerfile.clone(),
                            s("-t"),
                            image.tagged.clone(),
                            path.clone(),
                        ],
                    ),
                }];
                // buildah and podman write the digest the registry answered the push with;
                // docker's RepoDigests hold it once the image is pushed.
                let digests = root.join(".atmos-digests");
                std::fs::create_dir_all(&digests).map_err(|source| {
                    crate::workflow::error::WorkflowError::Io {
                        path: digests.clone(),
                        source,
                    }
                })?;
                let digest_file = digests.join(c.name.replace('/', "__"));
                let digest_from = match (&engine, builder.engine()) {
                    (Some(engine), Builder::Buildah | Builder::Podman) if !skip_push => {
                        commands.push(spec(
                            engine,
                            vec![
                                s("push"),
                                s("--digestfile"),
                                digest_file.display().to_string(),
                                image.tagged.clone(),
                            ],
                        ));
                        DigestFrom::File(digest_file)
                    }
                    (Some(engine), _) if !skip_push => {
                        commands.push(spec(engine, vec![s("push"), image.tagged.clone()]));
                        DigestFrom::Inspect(spec(
                            engine,
                            vec![
                                s("image"),
                                s("inspect"),
                                s("--format"),
                                s("{{index .RepoDigests 0}}"),
                                image.tagged.clone(),
                            ],
                        ))
                    }
                    _ => DigestFrom::NotPushed,
                };
                Some(BuildItem {
                    name: c.name.to_owned(),
                    kind: c.kind,
                    builder: Some(builder),
                    image: Some(image.tagged),
                    command_lines: commands.iter().map(CommandSpec::display).collect(),
                    commands,
                    digest_from,
                })
            }
            ComponentType::Script => setting(c, "build").map(|cmd| {
                let commands = vec![CommandSpec {
                    program: PathBuf::from("sh"),
                    args: vec!["-c".into(), cmd.to_owned()],
                    cwd: root.clone(),
                }];
                BuildItem {
                    name: c.name.to_owned(),
                    kind: c.kind,
                    builder: None,
                    image: None,
                    command_lines: commands.iter().map(CommandSpec::display).collect(),
                    commands,
                    digest_from: DigestFrom::NotPushed,
                }
            }),
            _ => None,
        };
        items.extend(item);
    }
    Ok(BuildPlan {
        deployment: d.name.clone(),
        target: target.to_owned(),
        commit,
        items,
        already_built: Vec::new(),
        sbom_components,
        root,
        _export: Some(tree.export.clone()),
    })
}

/// Prepare the build commands to run (one wave: images build in parallel).
pub fn prepare(
    plan: &BuildPlan,
    loaded: &LoadedDeployment,
    context: &crate::config::Vars,
    log_dir: PathBuf,
) -> Result<Prepared, crate::workflow::error::WorkflowError> {
    let scratch = crate::scratch::dir("atmos-build-").map_err(|source| {
        crate::workflow::error::WorkflowError::Io {
            path: PathBuf::from("temporary folder"),
            source,
        }
    })?;
    let d = &loaded.deployment;
    let target = &d.targets[&plan.target];
    let mut components = Vec::new();
    for item in &plan.items {
        let vars_file = scratch
            .path()
            .join(format!("{}.vars.json", item.name.replace('/', "__")));
        if let Some(c) = d.components.by_name(&item.name) {
            let mut vars = crate::config::merge::merge_vars(d, &c, target).values;
            crate::config::merge::override_with(&mut vars, context);
            std::fs::write(
                &vars_file,
                serde_json::to_vec_pretty(&vars).unwrap_or_default(),
            )
            .map_err(|source| crate::workflow::error::WorkflowError::Io {
                path: vars_file.clone(),
                source,
            })?;
        }
        components.push(PreparedComponent {
            name: item.name.clone(),
            depends_on: Vec::new(),
            commands: item.commands.clone(),
            env: vec![
                ("ATMOS_DEPLOYMENT".into(), plan.deployment.clone()),
                ("ATMOS_TARGET".into(), plan.target.clone()),
                ("ATMOS_COMPONENT".into(), item.name.clone()),
                ("ATMOS_COMPONENT_TYPE".into(), item.kind.to_string()),
                ("ATMOS_GIT_SHA".into(), plan.commit.clone()),
                ("ATMOS_VARS_FILE".into(), vars_file.display().to_string()),
                ("ATMOS_STEP".into(), "build".into()),
            ],
            log: log_dir.join(format!("{}.log", item.name)),
            timeout: match d.components.by_name(&item.name) {
                Some(c) => crate::workflow::rollout::prepare::component_timeout(&c)?,
                None => crate::executor::run::DEFAULT_TIMEOUT,
            },
            verify: None,
            canary: None,
        });
    }
    let wave: Vec<String> = plan.items.iter().map(|i| i.name.clone()).collect();
    Ok(Prepared::from_components(
        components,
        if wave.is_empty() {
            Vec::new()
        } else {
            vec![wave]
        },
        crate::executor::Step::Apply,
        log_dir,
        scratch,
    ))
}

/// The digest the registry serves for the image just pushed, from where `from` says; `None`
/// when it was not pushed or the engine did not say.
pub fn digest(from: &DigestFrom) -> Option<String> {
    match from {
        DigestFrom::File(file) => std::fs::read_to_string(file)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|d| crate::registry::is_digest(d)),
        DigestFrom::Inspect(inspect) => inspected(inspect),
        DigestFrom::NotPushed => None,
    }
}

/// Ask the engine for an image's digest (`sha256:…`), from `inspect` output such as
/// `sha256:…` or `registry/name@sha256:…`.
fn inspected(inspect: &CommandSpec) -> Option<String> {
    let out = std::process::Command::new(&inspect.program)
        .args(&inspect.args)
        .env_remove(crate::signing::KEY_ENV)
        .current_dir(&inspect.cwd)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.contains("sha256:"))?;
    let d = line.rsplit('@').next().unwrap_or(line);
    let hex = d.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| d.to_owned())
}

/// Add the images (and digests) recorded for the commit to the SBOM inputs.
pub fn with_builds(
    plan: &BuildPlan,
    builds: &std::collections::BTreeMap<String, crate::contracts::BuildRecord>,
) -> Vec<ComponentInput> {
    plan.sbom_components
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if let Some(b) = builds.get(&c.name)
                && let Some(reference) = &b.image
            {
                c.image = Some(Image {
                    reference: reference.clone(),
                    digest: b.digest.clone(),
                });
            }
            c
        })
        .collect()
}
