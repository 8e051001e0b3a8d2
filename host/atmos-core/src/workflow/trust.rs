//! Where the rules that decide a rollout come from. The gate bindings, policies, hooks,
//! promotion and approval rules, approver groups and allowed signers are read from a trusted
//! ref — never from the work tree, and never from the commit being deployed — so that deleting
//! a `gates:` block locally, or on a feature branch whose commit is then deployed, removes no
//! gate. What is deployed (components, vars, settings) comes from the deployed commit.
//!
//! The trusted ref is, in order: git's `atmos.trustRef` setting (the runner's own config,
//! outside any commit); `trust.ref` in the `atmos.yaml` of the default trusted ref; the shared
//! remote's default branch (`refs/remotes/<remote>/HEAD`, else its `main` or `master`); and,
//! without a remote, the current branch's committed HEAD.
//!
//! The rules are exported from that commit into a private temporary folder for each run (only
//! `atmos.yaml`, the deployments folder and the files the bindings name), so nothing a
//! rollout's scripts write can change the rules of a later one.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

use super::error::WorkflowError;
use crate::config::load::parse_yaml;
use crate::config::schema::SchemaKind;
use crate::config::settings::Settings;
use crate::config::{LoadedDeployment, Project, ProjectError};
use crate::git::GitRepo;

/// Where the rules of a decision came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RulesOrigin {
    /// The trusted ref (`refs/remotes/origin/main`, `HEAD`), or `work tree` for `--local`.
    pub source: String,
    /// The commit the rules were read from (`None` for the work tree).
    pub commit: Option<String>,
    /// Why this source: `git config atmos.trustRef`, `atmos.yaml trust.ref`, `default branch
    /// of origin`, `no remote: the current branch's commit`, `--local`.
    pub chosen_by: String,
}

impl RulesOrigin {
    /// True when the rules are the uncommitted work tree (`--local`).
    pub fn is_local(&self) -> bool {
        self.commit.is_none()
    }
}

/// The rules of one deployment, and where they came from.
#[derive(Debug)]
pub struct Rules {
    /// The project as of the rules' commit (its root is a private export).
    pub project: Project,
    /// The deployment as of the rules' commit.
    pub loaded: LoadedDeployment,
    /// Where they came from.
    pub origin: RulesOrigin,
    _export: Option<tempfile::TempDir>,
}

/// The rules in the work tree, uncommitted (`validate`, `policy eval --local`,
/// `rollout --plan --local`).
pub fn local(project: &Project, deployment: &str) -> Result<Rules, ProjectError> {
    Ok(Rules {
        loaded: project.load(deployment)?,
        project: project.clone(),
        origin: RulesOrigin {
            source: "work tree".into(),
            commit: None,
            chosen_by: "--local".into(),
        },
        _export: None,
    })
}

/// The remote whose default branch is trusted: the one asked for, else atmos.yaml's
/// `git.remote`, else `origin` when the clone has it.
fn remote_name(git: &GitRepo, project: &Project, asked: Option<&str>) -> Option<String> {
    asked
        .map(str::to_owned)
        .or_else(|| project.settings.git.remote.clone())
        .or_else(|| {
            git.peel("refs/remotes/origin/HEAD")
                .or_else(|| git.peel("refs/remotes/origin/main"))
                .or_else(|| git.peel("refs/remotes/origin/master"))
                .map(|_| "origin".to_owned())
        })
}

/// The default trusted ref: `(ref, commit, why)`.
fn default_ref(
    git: &GitRepo,
    project: &Project,
    remote: Option<&str>,
) -> Result<(String, String, String), WorkflowError> {
    if let Some(r) = git.config_string("atmos.trustRef") {
        let commit = git.peel(&r).ok_or_else(|| WorkflowError::NoTrustedRef {
            refname: r.clone(),
            why: "git config atmos.trustRef names it, but it does not exist here".into(),
        })?;
        return Ok((r, commit, "git config atmos.trustRef".into()));
    }
    if let Some(remote) = remote_name(git, project, remote) {
        let head = format!("refs/remotes/{remote}/HEAD");
        let symbolic = git.symbolic_target(&head).filter(|t| git.peel(t).is_some());
        let candidates = symbolic.into_iter().chain([
            format!("refs/remotes/{remote}/main"),
            format!("refs/remotes/{remote}/master"),
        ]);
        for r in candidates {
            if let Some(commit) = git.peel(&r) {
                return Ok((r, commit, format!("default branch of {remote}")));
            }
        }
        return Err(WorkflowError::NoTrustedRef {
            refname: head,
            why: format!("{remote} has no default branch in this clone"),
        });
    }
    let commit = git.resolve_commit("HEAD")?;
    Ok((
        "HEAD".into(),
        commit,
        "no remote: the current branch's commit".into(),
    ))
}

/// Read `atmos.yaml` of `commit` (defaults when it has none).
fn settings_at(git: &GitRepo, commit: &str, rel: &Path) -> Result<Settings, WorkflowError> {
    let path = rel.join(crate::config::project::SETTINGS_FILE);
    let Some(bytes) = git.file_at(commit, &path)? else {
        return Ok(Settings::default());
    };
    let shown = PathBuf::from(format!("{}@{}", path.display(), crate::git::short(commit)));
    let (_, value, _) = parse_yaml(&shown, &bytes, SchemaKind::Project)
        .map_err(|diagnostics| ProjectError::Settings { diagnostics })?;
    serde_json::from_value(value).map_err(|e| {
        WorkflowError::Project(ProjectError::Settings {
            diagnostics: vec![crate::diagnostic::Diagnostic::error(
                crate::diagnostic::Code::ProjectSettings,
                shown,
                e.to_string(),
            )],
        })
    })
}

/// The rules of `deployment` from the trusted ref, exported into a private folder.
pub fn trusted(
    project: &Project,
    git: &GitRepo,
    remote: Option<&str>,
    deployment: &str,
) -> Result<Rules, WorkflowError> {
    let rel = project_in_repo(git, &project.root);
    let (mut refname, mut commit, mut why) = default_ref(git, project, remote)?;
    if why != "git config atmos.trustRef"
        && let Some(next) = settings_at(git, &commit, &rel)?.trust.trusted_ref
        && next != refname
    {
        commit = git.peel(&next).ok_or_else(|| WorkflowError::NoTrustedRef {
            refname: next.clone(),
            why: format!("atmos.yaml trust.ref on {refname} names it, but it does not exist here"),
        })?;
        refname = next;
        why = "atmos.yaml trust.ref".into();
    }
    let settings = settings_at(git, &commit, &rel)?;
    let dir = tempfile::Builder::new()
        .prefix("atmos-rules-")
        .tempdir()
        .map_err(|source| WorkflowError::Io {
            path: PathBuf::from("temporary folder"),
            source,
        })?;
    let deployments = settings
        .deployments
        .path
        .clone()
        .unwrap_or_else(|| crate::config::project::DEFAULT_DEPLOYMENTS_DIR.to_owned());
    git.export(
        &commit,
        &[
            rel.join(crate::config::project::SETTINGS_FILE),
            rel.join(&deployments),
        ],
        dir.path(),
    )?;
    let root = dir.path().join(&rel);
    std::fs::create_dir_all(root.join(&deployments)).map_err(|source| WorkflowError::Io {
        path: root.clone(),
        source,
    })?;
    let rules_project = Project::open(root.clone())?;
    let loaded = match rules_project.load(deployment) {
        Ok(l) => l,
        Err(ProjectError::UnknownDeployment { .. }) => {
            return Err(WorkflowError::NotOnTrustedRef {
                deployment: deployment.to_owned(),
                refname,
                commit,
            });
        }
        Err(e) => return Err(e.into()),
    };
    // Everything the bindings name: policies (with their data), hooks and the folders they
    // may read, the allowed signers.
    let mut paths: Vec<PathBuf> = crate::gates::all_bound_policies(&rules_project, &loaded)
        .into_iter()
        .map(|p| rel.join(p))
        .collect();
    for h in crate::gates::all_bound_hooks(&loaded) {
        paths.push(rel.join(&h.wasm));
        paths.extend(h.read_only_dirs.iter().map(|d| rel.join(d)));
    }
    if let Some(s) = &rules_project.settings.approvers.allowed_signers {
        paths.push(rel.join(s));
    }
    git.export(&commit, &paths, dir.path())?;
    Ok(Rules {
        project: rules_project,
        loaded,
        origin: RulesOrigin {
            source: refname,
            commit: Some(commit),
            chosen_by: why,
        },
        _export: Some(dir),
    })
}

/// Where the project sits inside the repository's work tree (`""` at the top).
pub fn project_in_repo(git: &GitRepo, root: &Path) -> PathBuf {
    git.workdir()
        .and_then(|w| w.canonicalize().ok())
        .and_then(|w| root.strip_prefix(&w).ok().map(Path::to_owned))
        .unwrap_or_default()
}

/// Gates never judge a truncated history: in a shallow clone (`git clone --depth 1`, the
/// default of `actions/checkout`), fetch the whole history from the remote first; without a
/// remote to fetch from, refuse with the fix. Returns a note when history was fetched.
pub fn ensure_history(
    project: &Project,
    git: &GitRepo,
    remote: Option<&str>,
) -> Result<Option<String>, WorkflowError> {
    if !git.is_shallow() {
        return Ok(None);
    }
    let Some(name) = remote_name(git, project, remote) else {
        return Err(WorkflowError::ShallowClone {
            detail: "no remote to fetch the rest of the history from".into(),
        });
    };
    let out = std::process::Command::new("git")
        .args(["fetch", "--quiet", "--unshallow", "--no-tags", &name])
        .current_dir(&project.root)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|source| WorkflowError::Io {
            path: PathBuf::from("git"),
            source,
        })?;
    if !out.status.success() {
        return Err(WorkflowError::ShallowClone {
            detail: format!(
                "`git fetch --unshallow {name}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(Some(format!(
        "this clone was shallow: fetched the whole history from {name} so that the gates see every commit (use fetch-depth: 0 to skip this step)"
    )))
}
