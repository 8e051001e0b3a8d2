//! Where the rules that decide a rollout come from. The gate bindings, policies, hooks,
//! promotion and approval rules, approver groups and allowed signers are read from a trusted
//! ref — never from the work tree, and never from the commit being deployed — so that deleting
//! a `gates:` block locally, or on a feature branch whose commit is then deployed, removes no
//! gate. What is deployed (components, vars, settings) comes from the deployed commit.
//!
//! The trusted ref is, in order: git's `atmos.trustRef` setting (the runner's own config,
//! outside any commit); `trust.ref` in the `atmos.yaml` of the default trusted ref; the shared
//! remote's default branch (`refs/remotes/<remote>/HEAD`, else what the remote says its HEAD is, else its only branch); and,
//! without a remote, the current branch's committed HEAD.
//!
//! The rules are exported from that commit into a private temporary folder for each run (only
//! `atmos.yaml`, the deployments folder and the files the bindings name), so nothing a
//! rollout's scripts write can change the rules of a later one.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

use super::error::WorkflowError;
use crate::config::parse::parse_yaml;
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
    /// The files they were read from, relative to the repository's top (`atmos.yaml`, the
    /// deployments folder, the files the bindings name); empty for the work tree.
    pub files: Vec<PathBuf>,
    _export: Option<std::sync::Arc<tempfile::TempDir>>,
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
        files: Vec::new(),
        _export: None,
    })
}

/// The remote whose default branch is trusted: the one asked for on the command line, else
/// the clone's only remote, else `origin`. Never a setting of the work tree, which the commit
/// being deployed controls.
fn remote_name(git: &GitRepo, asked: Option<&str>) -> Option<String> {
    if let Some(a) = asked {
        return Some(a.to_owned());
    }
    let remotes = git.remote_names();
    match remotes.as_slice() {
        [only] => Some(only.clone()),
        _ => remotes.into_iter().find(|r| r == "origin"),
    }
}

/// A trusted ref named in a setting: a full ref name (`refs/…`) that exists, resolved exactly
/// (never by git's name lookup, where a pushed tag `main` would win over a branch).
fn named_ref(git: &GitRepo, refname: &str, named_by: &str) -> Result<String, WorkflowError> {
    if !refname.starts_with("refs/") {
        return Err(WorkflowError::NoTrustedRef {
            refname: refname.to_owned(),
            why: format!("{named_by} must give a full ref name, e.g. refs/remotes/origin/main"),
        });
    }
    git.peel_ref(refname)
        .ok_or_else(|| WorkflowError::NoTrustedRef {
            refname: refname.to_owned(),
            why: format!("{named_by} names it, but it does not exist here"),
        })
}

/// The default branch of `remote`: what its `HEAD` points at, as recorded by the clone
/// (`refs/remotes/<remote>/HEAD`), else as the remote says (`git ls-remote --symref`), else
/// its only branch. No guessing by name: a branch someone pushed as `main` is not the default
/// branch.
fn default_branch(git: &GitRepo, remote: &str) -> Result<String, WorkflowError> {
    let head = format!("refs/remotes/{remote}/HEAD");
    if let Some(t) = git.symbolic_target(&head)
        && git.peel_ref(&t).is_some()
    {
        return Ok(t);
    }
    // A remote whose HEAD names no branch yet (a bare repository initialised with another
    // default branch) but which holds exactly one branch has no other candidate.
    let asked = git
        .remote_head(remote)
        .or_else(|| match git.remote_branches(remote).as_deref() {
            Some([only]) => Some(only.clone()),
            _ => None,
        })
        .ok_or_else(|| WorkflowError::NoTrustedRef {
            refname: head.clone(),
            why: format!(
                "the default branch of {remote} is unknown here, and {remote} did not say"
            ),
        })?;
    let branch = asked
        .strip_prefix("refs/heads/")
        .map(|b| format!("refs/remotes/{remote}/{b}"))
        .unwrap_or(asked);
    if git.peel_ref(&branch).is_none() {
        return Err(WorkflowError::NoTrustedRef {
            refname: branch,
            why: format!("it is {remote}'s default branch, but it has not been fetched"),
        });
    }
    Ok(branch)
}

/// The default trusted ref: `(ref, commit, why)`.
fn default_ref(
    git: &GitRepo,
    remote: Option<&str>,
) -> Result<(String, String, String), WorkflowError> {
    if let Some(r) = git.config_string("atmos.trustRef") {
        let commit = named_ref(git, &r, "git config atmos.trustRef")?;
        return Ok((r, commit, "git config atmos.trustRef".into()));
    }
    if let Some(remote) = remote_name(git, remote) {
        let branch = default_branch(git, &remote)?;
        let commit = git
            .peel_ref(&branch)
            .ok_or_else(|| WorkflowError::NoTrustedRef {
                refname: branch.clone(),
                why: "it does not name a commit here".into(),
            })?;
        return Ok((branch, commit, format!("default branch of {remote}")));
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
    Settings::from_document(value).map_err(|e| {
        WorkflowError::Project(ProjectError::Settings {
            diagnostics: vec![crate::diagnostic::Diagnostic::error(
                crate::diagnostic::Code::ProjectSettings,
                shown,
                e.to_string(),
            )],
        })
    })
}

/// The trusted ref of the project: `(ref, commit, why)`, following a `trust.ref` in the
/// default trusted ref's `atmos.yaml` once.
pub fn trusted_ref(
    project: &Project,
    git: &GitRepo,
    remote: Option<&str>,
) -> Result<RulesOrigin, WorkflowError> {
    let rel = project_in_repo(git, &project.root);
    let (mut refname, mut commit, mut why) = default_ref(git, remote)?;
    if why != "git config atmos.trustRef"
        && let Some(next) = settings_at(git, &commit, &rel)?.trust.trusted_ref
        && next != refname
    {
        commit = named_ref(git, &next, &format!("atmos.yaml trust.ref on {refname}"))?;
        refname = next;
        why = "atmos.yaml trust.ref".into();
    }
    Ok(RulesOrigin {
        source: refname,
        commit: Some(commit),
        chosen_by: why,
    })
}

/// The trusted ref of a server's bare repository, as it is before a push lands: git's
/// `atmos.trustRef` setting, else the branch `HEAD` names (the default branch); a `trust.ref`
/// in that branch's `atmos.yaml` is followed once, with a client's `refs/remotes/<remote>/<b>`
/// read as the server's own `refs/heads/<b>`.
pub fn server_trusted_ref(git: &GitRepo) -> Result<RulesOrigin, WorkflowError> {
    let (mut refname, mut why) = match git.config_string("atmos.trustRef") {
        Some(r) => (r, "git config atmos.trustRef".to_owned()),
        None => (
            git.symbolic_target("HEAD")
                .ok_or_else(|| WorkflowError::NoTrustedRef {
                    refname: "HEAD".into(),
                    why: "the repository's HEAD names no branch".into(),
                })?,
            "the server's default branch (HEAD)".to_owned(),
        ),
    };
    let mut commit = named_ref(git, &refname, &why)?;
    if why != "git config atmos.trustRef"
        && let Some(next) = settings_at(git, &commit, Path::new(""))?.trust.trusted_ref
    {
        let next = match next
            .strip_prefix("refs/remotes/")
            .and_then(|r| r.split_once('/'))
        {
            Some((_, branch)) => format!("refs/heads/{branch}"),
            None => next,
        };
        if next != refname {
            commit = named_ref(git, &next, &format!("atmos.yaml trust.ref on {refname}"))?;
            refname = next;
            why = "atmos.yaml trust.ref".into();
        }
    }
    Ok(RulesOrigin {
        source: refname,
        commit: Some(commit),
        chosen_by: why,
    })
}

/// The project as of one commit — its `atmos.yaml` and deployments folder — exported into a
/// private folder, from which the rules of each deployment are taken.
#[derive(Debug)]
pub struct Snapshot {
    /// The project as of the commit (its root is inside the export).
    pub project: Project,
    /// Where the rules come from.
    pub origin: RulesOrigin,
    commit: String,
    rel: PathBuf,
    dir: std::sync::Arc<tempfile::TempDir>,
}

impl Snapshot {
    /// Export the project found at `rel` (relative to the repository's top) in the commit of
    /// `origin`.
    pub fn at(git: &GitRepo, rel: &Path, origin: RulesOrigin) -> Result<Snapshot, WorkflowError> {
        let commit = origin
            .commit
            .clone()
            .ok_or_else(|| WorkflowError::NoTrustedRef {
                refname: origin.source.clone(),
                why: "no commit was resolved for it".into(),
            })?;
        let settings = settings_at(git, &commit, rel)?;
        let dir = crate::scratch::dir("atmos-rules-").map_err(|source| WorkflowError::Io {
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
        let root = dir.path().join(rel);
        std::fs::create_dir_all(root.join(&deployments)).map_err(|source| WorkflowError::Io {
            path: root.clone(),
            source,
        })?;
        // Deployment files, and what they import and include, are read from the commit itself.
        let files = crate::git::files::CommitFiles::new(git, &commit, rel)?;
        Ok(Snapshot {
            project: Project::open(root)?.reading_from(std::sync::Arc::new(files)),
            origin,
            commit,
            rel: rel.to_owned(),
            dir: std::sync::Arc::new(dir),
        })
    }

    /// The names of the deployments defined at this commit.
    pub fn deployments(&self) -> Result<Vec<String>, WorkflowError> {
        Ok(self
            .project
            .deployment_files()?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    /// The rules of `deployment`, with the files its bindings name exported too.
    pub fn rules(&self, git: &GitRepo, deployment: &str) -> Result<Rules, WorkflowError> {
        let loaded = match self.project.load(deployment) {
            Ok(l) => l,
            Err(ProjectError::UnknownDeployment { .. }) => {
                return Err(WorkflowError::NotOnTrustedRef {
                    deployment: deployment.to_owned(),
                    refname: self.origin.source.clone(),
                    commit: self.commit.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        // Everything the bindings name: policies (with their data), hooks and the folders
        // they may read, the allowed signers.
        let rel = &self.rel;
        let mut paths: Vec<PathBuf> = crate::gates::all_bound_policies(&self.project, &loaded)
            .into_iter()
            .map(|p| rel.join(p))
            .collect();
        for h in crate::gates::all_bound_hooks(&loaded) {
            paths.push(rel.join(&h.wasm));
            paths.extend(h.read_only_dirs.iter().map(|d| rel.join(d)));
        }
        if let Some(s) = &self.project.settings.approvers.allowed_signers {
            paths.push(rel.join(s));
        }
        // The rules also depend on the files the deployment file imports and includes.
        paths.extend(loaded.processed.files().into_iter().map(|p| rel.join(p)));
        git.export(&self.commit, &paths, self.dir.path())?;
        let mut files = self.files();
        files.extend(paths);
        Ok(Rules {
            project: self.project.clone(),
            loaded,
            origin: self.origin.clone(),
            files,
            _export: Some(self.dir.clone()),
        })
    }

    /// `atmos.yaml` and the deployments folder, relative to the repository's top.
    pub fn files(&self) -> Vec<PathBuf> {
        let deployments = self
            .project
            .settings
            .deployments
            .path
            .clone()
            .unwrap_or_else(|| crate::config::project::DEFAULT_DEPLOYMENTS_DIR.to_owned());
        vec![
            self.rel.join(crate::config::project::SETTINGS_FILE),
            self.rel.join(deployments),
        ]
    }
}

/// The rules of `deployment` from the trusted ref, exported into a private folder.
pub fn trusted(
    project: &Project,
    git: &GitRepo,
    remote: Option<&str>,
    deployment: &str,
) -> Result<Rules, WorkflowError> {
    let origin = trusted_ref(project, git, remote)?;
    Snapshot::at(git, &project_in_repo(git, &project.root), origin)?.rules(git, deployment)
}

/// Where the project sits inside the repository's work tree (`""` at the top). A repository
/// without a work tree (a server's bare repository, where the guard runs) holds its project
/// at the top: that is the default, not a fallback for an error.
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
    offline: bool,
) -> Result<Option<String>, WorkflowError> {
    if !git.is_shallow() {
        return Ok(None);
    }
    if offline {
        return Err(WorkflowError::ShallowClone {
            detail: "--offline: the rest of the history cannot be fetched".into(),
        });
    }
    let Some(name) = remote_name(git, remote) else {
        return Err(WorkflowError::ShallowClone {
            detail: "no remote to fetch the rest of the history from".into(),
        });
    };
    let out = std::process::Command::new("git")
        .env_remove(crate::signing::KEY_ENV)
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
    // The remote may be shallow itself: check rather than trust the fetch.
    if GitRepo::discover(&project.root)?.is_shallow() {
        return Err(WorkflowError::ShallowClone {
            detail: format!("{name} does not have the whole history either"),
        });
    }
    Ok(Some(format!(
        "this clone was shallow: fetched the whole history from {name} so that the gates see every commit (use fetch-depth: 0 to skip this step)"
    )))
}

/// The actor as the trusted rules know them: a CI user name mapped through `identities` (e.g.
/// `GITHUB_ACTOR` `alice-gh` → `alice@example.com`), so that groups listing emails count
/// approvals and rollouts from workflows. Names from `ATMOS_ACTOR` or git are kept as given.
pub fn map_actor(actor: crate::identity::Actor, rules: &Rules) -> crate::identity::Actor {
    let Some((system, table)) = rules
        .project
        .settings
        .identities
        .for_variable(&actor.source)
    else {
        return actor;
    };
    match table.get(&actor.id) {
        Some(id) => crate::identity::Actor {
            id: id.clone(),
            source: format!("{} {} via identities.{system}", actor.source, actor.id),
        },
        None => actor,
    }
}

/// Why the records would be signed with a key the trusted `allowed_signers` does not allow for
/// the identity they name (`verify` and the server guard refuse every such record), and what
/// to do; `None` when the key is allowed, or nothing is signed or checked.
pub fn key_mismatch(
    actor: &crate::identity::Actor,
    key: Option<&crate::signing::Key>,
    proof: Option<&crate::identity::Proof>,
    rules: &Rules,
) -> Option<String> {
    let (key, proof) = (key?, proof?);
    let signers = rules
        .project
        .root
        .join(rules.project.settings.approvers.allowed_signers.as_ref()?);
    if proof.verified || !signers.is_file() {
        return None;
    }
    // Only a key that signs, and whose signature the file provably does not allow for the
    // identity: a key that cannot sign at all fails later, where it is used, as before.
    // The namespace the records are signed and verified in (git's, as `git tag -s`).
    let ns = crate::signing::TAG_NAMESPACE;
    let challenge = format!("atmos signing key check: {}", actor.id);
    let signature = crate::signing::sign(challenge.as_bytes(), key, ns).ok()?;
    if crate::signing::verify(challenge.as_bytes(), &signature, &actor.id, &signers, ns).is_ok() {
        return None;
    }
    Some(format!(
        "the records would be signed with {key}, which approvers.allowed_signers (on {}) does not allow for {} ({}): `atmos deployment verify` and the server guard would refuse each of them as a signature that does not verify, so they are written unsigned. Sign with {}'s key (--signing-key, ATMOS_SIGNING_KEY or git's user.signingkey), run as the identity the key is allowed for (ATMOS_ACTOR), or add the key for {} to allowed_signers",
        rules.origin.source, actor.id, actor.source, actor.id, actor.id
    ))
}

/// Prove the deployer's identity before anything runs: sign a fresh challenge with their key
/// and verify it for the identity they claim against the allowed signers of the trusted rules.
/// Anyone can set `ATMOS_ACTOR`; only the holder of an allowed key is verified.
pub fn prove(
    actor: &crate::identity::Actor,
    key: Option<&crate::signing::Key>,
    rules: &Rules,
) -> crate::identity::Proof {
    let unverified = |reason: String| crate::identity::Proof {
        id: actor.id.clone(),
        source: actor.source.clone(),
        verified: false,
        reason: Some(reason),
    };
    let Some(key) = key else {
        return unverified(
            "no signing key is configured (git config user.signingkey with gpg.format=ssh, or --signing-key)".into(),
        );
    };
    let Some(signers) = &rules.project.settings.approvers.allowed_signers else {
        return unverified(format!(
            "approvers.allowed_signers is not set in atmos.yaml on {}",
            rules.origin.source
        ));
    };
    let signers = rules.project.root.join(signers);
    let challenge = format!(
        "atmos deployer check: {} at {}",
        actor.id,
        crate::contracts::layout::rfc3339(jiff::Timestamp::now())
    );
    let ns = crate::signing::IDENTITY_NAMESPACE;
    match crate::signing::sign(challenge.as_bytes(), key, ns)
        .and_then(|sig| crate::signing::verify(challenge.as_bytes(), &sig, &actor.id, &signers, ns))
    {
        Ok(()) => crate::identity::Proof {
            id: actor.id.clone(),
            source: actor.source.clone(),
            verified: true,
            reason: None,
        },
        Err(e) => unverified(format!("{key} is not allowed for {}: {e}", actor.id)),
    }
}
