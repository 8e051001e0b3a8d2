//! Explicit sync with the shared remote (`atmos deployment fetch`): bring one deployment's
//! records (or every deployment's) and say what changed; and the one-time setup that makes a
//! plain `git fetch` keep them current.

use std::collections::BTreeMap;

use super::error::WorkflowError;
use crate::config::Project;
use crate::contracts::layout::{
    CHAIN_PREFIX, LEDGER_PREFIX, NOTES_PREFIX, STATE_PREFIX, TAG_PREFIX,
};
use crate::git::GitRepo;
use crate::git::remote::{Remote, ledger_tracking_prefix, remote_notes_prefix};

/// What a fetch changed locally.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct FetchReport {
    /// The remote fetched.
    pub remote: String,
    /// Every remote fetched: the shared store and the own remotes of the deployment's targets.
    pub remotes: Vec<String>,
    /// The deployment fetched, or `None` for every deployment.
    pub deployment: Option<String>,
    /// State refs that appeared or moved (`<deployment>/<target>/<component>`).
    pub moved: Vec<String>,
    /// Number of history tags new here.
    pub new_tags: usize,
    /// Notes refs (approvals, SBOMs, builds) that changed (`<deployment>/<kind>`).
    pub notes: Vec<String>,
    /// Records of earlier runs that were waiting to be published and now are.
    pub published: Vec<String>,
    /// What was found wrong on a remote and not taken (a rewound archive ledger).
    pub warnings: Vec<String>,
    /// State refs in scope after the fetch.
    pub state_refs: usize,
    /// Tags in scope after the fetch.
    pub tags: usize,
}

crate::document!(FetchReport => "FetchReport");

fn snapshot(git: &GitRepo, prefix: &str) -> Result<BTreeMap<String, String>, WorkflowError> {
    Ok(git
        .refs()
        .list(prefix)?
        .into_iter()
        .map(|e| (e.name, e.oid))
        .collect())
}

/// Fetch `deployment`'s records (or all) from `remote` (default: atmos.yaml `git.remote`).
pub fn fetch(
    project: &Project,
    remote: Option<&str>,
    deployment: Option<&str>,
) -> Result<FetchReport, WorkflowError> {
    let loaded = deployment.map(|d| project.load(d)).transpose()?;
    let stores = match &loaded {
        Some(l) => super::store::Stores::for_deployment(project, l, remote, false)?,
        None => super::store::Stores {
            main: super::store::remote(project, remote, false, None)?,
            ..Default::default()
        },
    };
    let remote = stores.main.clone().ok_or(WorkflowError::NoRemote)?;
    let scope = |base: &str| match deployment {
        Some(d) => format!("{base}/{d}/"),
        None => format!("{base}/"),
    };
    let (state, tags, notes) = (
        scope(STATE_PREFIX),
        scope(&format!("refs/tags/{TAG_PREFIX}")),
        scope(NOTES_PREFIX),
    );
    let git = GitRepo::discover(&project.root)?;
    let before = (
        snapshot(&git, &state)?,
        snapshot(&git, &tags)?,
        snapshot(&git, &notes)?,
    );
    remote.fetch()?;
    // Targets kept on their own remotes are fetched from them.
    let mut remotes = vec![remote.name.clone()];
    let mut published = Vec::new();
    let mut warnings = remote.take_warnings();
    warnings.extend(stores.unknown.iter().cloned());
    if deployment.is_some() {
        for r in stores.readers.iter().filter(|r| r.only_target.is_some()) {
            r.fetch()?;
            published.extend(r.take_notes());
            warnings.extend(r.take_warnings());
            if !remotes.contains(&r.name) {
                remotes.push(r.name.clone());
            }
        }
    }
    let git = GitRepo::discover(&project.root)?;
    let after = (
        snapshot(&git, &state)?,
        snapshot(&git, &tags)?,
        snapshot(&git, &notes)?,
    );
    let changed = |b: &BTreeMap<String, String>, a: &BTreeMap<String, String>, strip: &str| {
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, _)| k.trim_start_matches(strip).to_owned())
            .collect::<Vec<_>>()
    };
    Ok(FetchReport {
        remote: remote.name.clone(),
        deployment: deployment.map(str::to_owned),
        moved: changed(&before.0, &after.0, &format!("{STATE_PREFIX}/")),
        new_tags: after
            .1
            .keys()
            .filter(|k| !before.1.contains_key(*k))
            .count(),
        notes: changed(&before.2, &after.2, &format!("{NOTES_PREFIX}/")),
        published: remote.take_notes().into_iter().chain(published).collect(),
        remotes,
        warnings,
        state_refs: after.0.len(),
        tags: after.1.len(),
    })
}

/// What `fetch --setup` configured.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct SetupReport {
    /// The remote configured.
    pub remote: String,
    /// Refspecs added to `remote.<name>.fetch` (empty when they were all there).
    pub added: Vec<String>,
    /// Every atmos refspec the remote now has.
    pub refspecs: Vec<String>,
}

crate::document!(SetupReport => "SetupReport");

/// Add atmos's refspecs to `remote.<name>.fetch`, so that a plain `git fetch` brings state
/// refs, history tags and notes (the notes into `refs/notes/atmos-remote/<name>/`, merged
/// into the local ones by the next atmos command that fetches: a plain fetch must not replace
/// local approvals). Idempotent.
pub fn setup(project: &Project, remote: Option<&str>) -> Result<SetupReport, WorkflowError> {
    let remote =
        super::store::remote(project, remote, false, None)?.ok_or(WorkflowError::NoRemote)?;
    // Every refspec is forced, so a plain `git fetch`/`git pull` never fails on them: state
    // refs and history ends move backwards by design (a rollback). They mirror the remote as
    // atmos's own fetch does; records not yet published here are kept in the clone's pending
    // batches (never in these refs alone), and the next atmos command that reaches the remote
    // publishes them after what it holds. The ledger goes to a tracking ref, as atmos's fetch
    // takes it: the local ledger only moves forward, and a rewound one is reported, not taken.
    let specs = vec![
        format!("+{STATE_PREFIX}/*:{STATE_PREFIX}/*"),
        format!("+{CHAIN_PREFIX}/*:{CHAIN_PREFIX}/*"),
        format!("+refs/tags/{TAG_PREFIX}/*:refs/tags/{TAG_PREFIX}/*"),
        format!(
            "+{LEDGER_PREFIX}/*:{}*",
            ledger_tracking_prefix(&remote.name)
        ),
        format!("+{NOTES_PREFIX}/*:{}*", remote_notes_prefix(&remote.name)),
    ];
    let added = remote.add_fetch_refspecs(&specs)?;
    Ok(SetupReport {
        remote: remote.name.clone(),
        added,
        refspecs: specs,
    })
}

/// How old this clone's view of `remote` is: `None` when it never fetched it.
pub fn view_age(git: &GitRepo, remote: &str) -> Option<std::time::Duration> {
    Remote::last_fetched(git.git_dir(), remote)
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
}
