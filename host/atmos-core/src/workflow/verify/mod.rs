//! `verify`: audit what is recorded, offline, from the repository alone. Every history tag is
//! judged by the rules of the trusted ref as they stood when it was written — its signature
//! and deployer, the chain of its target/component, how its commit got there (promotion path,
//! rollback), the approvals in force — and every state ref against the newest success record.
//! [`receive`] applies the same checks to a push before a server accepts it.

mod checks;
pub mod pusher;
pub mod receive;
pub mod repair;
mod report;
mod rules;
pub mod view;

use crate::config::Project;
use crate::git::GitRepo;
use crate::workflow::WorkflowError;
use crate::workflow::trust;

pub use checks::audit;
pub use report::{Problem, ProblemKind, Stats, VerifyReport, VerifyRequest};
pub use rules::RulesBook;
pub use view::View;

/// Audit the records of a repository (a clone, or a server's bare repository) by the rules of
/// its trusted ref.
pub fn verify(
    project: &Project,
    git: &GitRepo,
    remote: Option<&str>,
    request: &VerifyRequest,
) -> Result<VerifyReport, WorkflowError> {
    let origin = trust::trusted_ref(project, git, remote)?;
    let rel = trust::project_in_repo(git, &project.root);
    let mut book = RulesBook::new(git, rel, origin, false)?;
    audit(git, &mut book, request, jiff::Timestamp::now())
}
