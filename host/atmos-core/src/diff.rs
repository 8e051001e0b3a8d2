//! `diff`: two targets (or two commits) side by side: how far apart their commits are,
//! which components differ, how the configuration differs as of each side's deployed commit
//! (read from git, not the work tree), the commits between them, and the files changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::LoadedDeployment;
use crate::config::merge::merge_vars;
use crate::config::model::{Deployment, Target};
pub use crate::git::FileChange;
use crate::git::{GitError, GitRepo, short};

/// One side of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// What a target runs.
    Target(String),
    /// A commit.
    Commit(String),
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct DiffQuery {
    /// The older side, usually.
    pub from: Side,
    /// The newer side, usually.
    pub to: Side,
    /// Only this component.
    pub component: Option<String>,
    /// List changed files.
    pub show_files: bool,
    /// For commit-to-commit diffs: whose context to merge into vars.
    pub context_target: Option<String>,
}

/// One side as resolved.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SideSummary {
    /// Target name, or `None` for a commit.
    pub target: Option<String>,
    /// The commit that stands for the side (for a target: the newest commit its components
    /// run; `None` when nothing is deployed).
    pub commit: Option<String>,
    /// When that target was last deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<String>,
}

/// One component on both sides.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ComponentChange {
    /// Component.
    pub component: String,
    /// Commit on the `from` side.
    pub from: Option<String>,
    /// Commit on the `to` side.
    pub to: Option<String>,
    /// True when they differ.
    pub changed: bool,
}

/// One configuration value on both sides.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConfigChange {
    /// `component.key.path`.
    pub key: String,
    /// Value on the `from` side.
    pub from: Option<Value>,
    /// Value on the `to` side.
    pub to: Option<Value>,
    /// `changed`, `added`, `removed` or `unchanged`.
    pub change: &'static str,
}

/// A commit between the sides.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LogEntry {
    /// Full sha.
    pub sha: String,
    /// First line of the message.
    pub subject: String,
    /// Author email.
    pub author: String,
}

/// The `diff` report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiffReport {
    /// Deployment.
    pub deployment: String,
    /// The `from` side.
    pub from: SideSummary,
    /// The `to` side.
    pub to: SideSummary,
    /// Commits in `to` that `from` lacks (`from` is this many commits behind); `None` when
    /// a side has nothing deployed (nothing was compared).
    pub behind: Option<usize>,
    /// Commits in `from` that `to` lacks; `None` when a side has nothing deployed.
    pub ahead: Option<usize>,
    /// Per component.
    pub components: Vec<ComponentChange>,
    /// Merged vars compared key by key.
    pub config: Vec<ConfigChange>,
    /// Why some of the configuration could not be compared.
    pub config_notes: Vec<String>,
    /// Commits in `to` not in `from`, newest first (at most 100); with a component, only
    /// those that change its files or the deployment file.
    pub log: Vec<LogEntry>,
    /// With a component: the paths the log was limited to, its files and the deployment
    /// file (empty when its settings name no files, and the log is not limited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_paths: Option<Vec<String>>,
    /// The target whose context the configuration of both sides is merged with: the one
    /// receiving the change (the `from` target), so `config` says what would change there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_target: Option<String>,
    /// Values that differ between the two targets at the `to` commit because their contexts
    /// differ (replicas 3 in prod, 1 in dev): not changes, and not in `config`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_differences: Vec<ConfigChange>,
    /// Files changed from `from` to `to`, with `--show-files`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileChange>>,
}

impl DiffReport {
    /// How many different commits the components of one side run (`from` or `to`): more
    /// than one when the side is mixed, and then it stands for the newest.
    pub fn commits_run(&self, from: bool) -> usize {
        let side = |c: &ComponentChange| if from { c.from.clone() } else { c.to.clone() };
        self.components
            .iter()
            .filter_map(side)
            .collect::<BTreeSet<String>>()
            .len()
    }
}

/// Compute the diff.
pub fn diff(
    git: &GitRepo,
    loaded: &LoadedDeployment,
    project_root: &Path,
    query: &DiffQuery,
) -> Result<DiffReport, GitError> {
    let d = &loaded.deployment;
    let components: Vec<String> = d
        .components
        .iter()
        .map(|c| c.name.to_owned())
        .filter(|n| query.component.as_deref().is_none_or(|c| c == n))
        .collect();
    let from = resolve_side(git, loaded, &query.from, &components)?;
    let to = resolve_side(git, loaded, &query.to, &components)?;
    compare_sides(git, loaded, project_root, query, &components, from, to)
}

/// The diff of two targets whose status was read already (the board diffs every promotion
/// edge of every deployment): the same comparison as [`diff`], the sides taken from `status`
/// instead of reading the refs again.
pub fn between_targets(
    git: &GitRepo,
    loaded: &LoadedDeployment,
    project_root: &Path,
    status: &crate::status::StatusReport,
    from_target: &str,
    to_target: &str,
) -> Result<DiffReport, GitError> {
    let components: Vec<String> = loaded
        .deployment
        .components
        .iter()
        .map(|c| c.name.to_owned())
        .collect();
    let side = |target: &str| -> Result<(SideSummary, Vec<Option<String>>), GitError> {
        let t = status.targets.iter().find(|t| t.target == target);
        let commits: Vec<Option<String>> = components
            .iter()
            .map(|c| {
                t.and_then(|t| t.components.iter().find(|s| s.component == *c))
                    .and_then(|s| s.commit.clone())
            })
            .collect();
        let unique: Vec<String> = commits
            .iter()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok((
            SideSummary {
                target: Some(target.to_owned()),
                commit: git.newest_commit(&unique)?,
                // The newest record of the target, whatever its outcome (as `diff` reads it).
                deployed_at: t.and_then(|t| {
                    t.components
                        .iter()
                        .flat_map(|c| {
                            [
                                c.deployed_at.clone(),
                                c.last_attempt.as_ref().map(|a| a.timestamp.clone()),
                            ]
                        })
                        .flatten()
                        .max()
                }),
            },
            commits,
        ))
    };
    let query = DiffQuery {
        from: Side::Target(from_target.to_owned()),
        to: Side::Target(to_target.to_owned()),
        component: None,
        show_files: false,
        context_target: None,
    };
    compare_sides(
        git,
        loaded,
        project_root,
        &query,
        &components,
        side(from_target)?,
        side(to_target)?,
    )
}

fn compare_sides(
    git: &GitRepo,
    loaded: &LoadedDeployment,
    project_root: &Path,
    query: &DiffQuery,
    components: &[String],
    (from, from_commits): (SideSummary, Vec<Option<String>>),
    (to, to_commits): (SideSummary, Vec<Option<String>>),
) -> Result<DiffReport, GitError> {
    let d = &loaded.deployment;

    let changes: Vec<ComponentChange> = components
        .iter()
        .zip(from_commits.iter().zip(&to_commits))
        .map(|(c, (f, t))| ComponentChange {
            component: c.clone(),
            from: f.clone(),
            to: t.clone(),
            changed: f != t,
        })
        .collect();

    let prefix = project_prefix(git, project_root);
    let mut notes = Vec::new();
    let from_cfg = config_at(git, &prefix, loaded, from.commit.as_deref(), &mut notes);
    let to_cfg = config_at(git, &prefix, loaded, to.commit.as_deref(), &mut notes);
    // A component's own commits: those touching its files as the compared commits' deployment
    // files name them (never the work tree's), or the deployment file itself.
    let log_paths = query.component.as_deref().map(|name| {
        let mut paths: Vec<String> = [from_cfg.as_ref(), to_cfg.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|cfg| cfg.components.by_name(name).map(|c| c.paths()))
            .flatten()
            .map(|p| {
                prefix
                    .join(p.trim_start_matches("./"))
                    .display()
                    .to_string()
            })
            .collect();
        paths.sort();
        paths.dedup();
        if !paths.is_empty() {
            // The deployment file and the files it imports configure the component too.
            paths.extend(
                loaded
                    .paths()
                    .into_iter()
                    .map(|p| prefix.join(p).display().to_string()),
            );
        }
        paths
    });
    let (mut ahead, mut behind, mut log) = (None, None, Vec::new());
    if let (Some(f), Some(t)) = (&from.commit, &to.commit) {
        let (b, a) = git.ahead_behind(t, f)?;
        (behind, ahead) = (Some(b), Some(a));
        let shas = match &log_paths {
            Some(paths) if !paths.is_empty() => {
                let all: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
                git.log_between_touching(f, t, &all, 100, 10_000)?
            }
            _ => git.log_between(f, t, 100)?,
        };
        for sha in shas {
            let c = git.commit_info(&sha)?;
            log.push(LogEntry {
                sha: c.sha,
                subject: c.subject,
                author: c.author_email,
            });
        }
    }

    // Both sides merged with the receiving target's context: what would change there.
    let config_target = match (&query.from, &query.to) {
        (Side::Target(t), _) => Some(t.clone()),
        (_, Side::Target(t)) => Some(t.clone()),
        _ => query.context_target.clone(),
    };
    let from_vars = flat_vars(from_cfg.as_ref(), config_target.as_deref(), components);
    let to_vars = flat_vars(to_cfg.as_ref(), config_target.as_deref(), components);
    // A side with nothing deployed has no configuration to compare: saying every value was
    // added or removed would claim what was not established.
    let empty_side = [(&from, "from"), (&to, "to")]
        .into_iter()
        .find(|(side, _)| side.commit.is_none())
        .map(|(side, name)| side.target.clone().unwrap_or_else(|| name.to_owned()));
    if let Some(side) = &empty_side {
        notes.push(format!("not compared: {side} has nothing deployed"));
    }
    let config = if empty_side.is_some() {
        Vec::new()
    } else {
        compare(&from_vars, &to_vars)
    };
    let target_differences = match (&query.from, &query.to) {
        _ if empty_side.is_some() => Vec::new(),
        (Side::Target(a), Side::Target(b)) if a != b => {
            let theirs = flat_vars(to_cfg.as_ref(), Some(b), components);
            compare(&to_vars, &theirs)
                .into_iter()
                .filter(|c| c.change != "unchanged")
                .collect()
        }
        _ => Vec::new(),
    };

    let files = match (query.show_files, &from.commit, &to.commit) {
        (true, Some(f), Some(t)) => Some(git.changed_files(f, t)?),
        (true, _, _) => Some(Vec::new()),
        _ => None,
    };
    Ok(DiffReport {
        deployment: d.name.clone(),
        from,
        to,
        behind,
        ahead,
        components: changes,
        config,
        config_notes: notes,
        log,
        log_paths,
        config_target,
        target_differences,
        files,
    })
}

/// Flattened vars compared key by key.
fn compare(from: &Map<String, Value>, to: &Map<String, Value>) -> Vec<ConfigChange> {
    let keys: BTreeSet<&String> = from.keys().chain(to.keys()).collect();
    keys.into_iter()
        .map(|k| {
            let (f, t) = (from.get(k).cloned(), to.get(k).cloned());
            let change = match (&f, &t) {
                (Some(a), Some(b)) if a == b => "unchanged",
                (Some(_), Some(_)) => "changed",
                (None, Some(_)) => "added",
                _ => "removed",
            };
            ConfigChange {
                key: k.clone(),
                from: f,
                to: t,
                change,
            }
        })
        .collect()
}

fn resolve_side(
    git: &GitRepo,
    loaded: &LoadedDeployment,
    side: &Side,
    components: &[String],
) -> Result<(SideSummary, Vec<Option<String>>), GitError> {
    let d = &loaded.deployment;
    match side {
        Side::Commit(spec) => {
            let sha = git.resolve_commit(spec)?;
            Ok((
                SideSummary {
                    target: None,
                    commit: Some(sha.clone()),
                    deployed_at: None,
                },
                vec![Some(sha); components.len()],
            ))
        }
        Side::Target(t) => {
            let state = git.state_refs(&d.name, Some(t))?;
            let commits: Vec<Option<String>> = components
                .iter()
                .map(|c| {
                    state
                        .iter()
                        .find(|s| s.component == *c)
                        .map(|s| s.commit.clone())
                })
                .collect();
            let unique: Vec<String> = commits
                .iter()
                .flatten()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let newest = git.newest_commit(&unique)?;
            let (tags, _) = git.history_tags(&d.name, Some(t))?;
            let deployed_at = tags.last().map(|e| e.at.to_string());
            Ok((
                SideSummary {
                    target: Some(t.clone()),
                    commit: newest,
                    deployed_at,
                },
                commits,
            ))
        }
    }
}

/// Where the project sits inside the repository.
fn project_prefix(git: &GitRepo, project_root: &Path) -> PathBuf {
    let workdir = git
        .workdir()
        .and_then(|w| w.canonicalize().ok())
        .unwrap_or_default();
    project_root
        .strip_prefix(&workdir)
        .unwrap_or(Path::new(""))
        .to_owned()
}

/// The deployment as of `commit`, with its imports and includes read from that commit too.
fn config_at(
    git: &GitRepo,
    prefix: &Path,
    loaded: &LoadedDeployment,
    commit: Option<&str>,
    notes: &mut Vec<String>,
) -> Option<Deployment> {
    let sha = commit?;
    let file = loaded
        .processed
        .main()
        .map(|m| m.path.clone())
        .unwrap_or_default();
    let rel = prefix.join(&file);
    match git.file_at(sha, &rel) {
        Ok(Some(_)) => {
            let files = match crate::git::files::CommitFiles::new(git, sha, prefix) {
                Ok(f) => f,
                Err(e) => {
                    notes.push(format!(
                        "cannot read {} at {}: {e}",
                        rel.display(),
                        short(sha)
                    ));
                    return None;
                }
            };
            match crate::config::load::load_deployment(&files, &file, &loaded.options) {
                Ok(l) => Some(l.deployment),
                Err(diags) => {
                    notes.push(format!(
                        "{} is not a valid deployment file at {}: {}",
                        rel.display(),
                        short(sha),
                        diags.first().map(|d| d.message.clone()).unwrap_or_default()
                    ));
                    None
                }
            }
        }
        Ok(None) => {
            notes.push(format!(
                "{} does not exist at {}",
                rel.display(),
                short(sha)
            ));
            None
        }
        Err(e) => {
            notes.push(format!(
                "cannot read {} at {}: {e}",
                rel.display(),
                short(sha)
            ));
            None
        }
    }
}

fn flat_vars(
    cfg: Option<&Deployment>,
    target: Option<&str>,
    components: &[String],
) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(d) = cfg else { return out };
    let empty = Target::default();
    let t = target.and_then(|t| d.targets.get(t)).unwrap_or(&empty);
    for c in d
        .components
        .iter()
        .filter(|c| components.iter().any(|n| n == c.name))
    {
        let merged = merge_vars(d, &c, t);
        flatten(c.name, &Value::Object(merged.values), &mut out);
    }
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}
