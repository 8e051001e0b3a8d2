//! Which store a command uses: the shared remote (from `--remote` or atmos.yaml
//! `git.remote`, unless `--offline`), or the local repository alone.

use atmos_core::config::Project;
use atmos_core::exit::Exit;
use atmos_core::git::remote::{Remote, RemoteError};

use super::Failure;

/// The remote to use, fetched — or `None` for local-only work.
pub fn open(
    project: &Project,
    remote: Option<&str>,
    offline: bool,
) -> Result<Option<Remote>, Failure> {
    if offline {
        return Ok(None);
    }
    let Some(name) = remote
        .map(str::to_owned)
        .or_else(|| project.settings.git.remote.clone())
    else {
        return Ok(None);
    };
    let remote = Remote::open(&project.root, &name).map_err(remote_failure)?;
    remote.fetch().map_err(remote_failure)?;
    Ok(Some(remote))
}

/// A remote problem: unreachable or unknown is the user's to fix, with `--offline` as the way
/// to work without it.
pub fn remote_failure(e: RemoteError) -> Failure {
    let hint = match &e {
        RemoteError::Unknown { remote } => Some(format!(
            "add it (git remote add {remote} <url>), fix atmos.yaml git.remote, or pass --offline"
        )),
        RemoteError::Unreachable { .. } => Some(
            "check the network and your credentials, or pass --offline to work on the local repository only (records are pushed by a later run)".to_owned(),
        ),
        RemoteError::Rejected { .. } => Some("someone else changed the remote meanwhile; run the command again".to_owned()),
        RemoteError::Git { .. } => None,
    };
    Failure::User {
        exit: match &e {
            RemoteError::Unknown { .. } => Exit::Usage,
            _ => Exit::Failed,
        },
        message: e.to_string(),
        hint,
        diagnostics: Vec::new(),
    }
}
