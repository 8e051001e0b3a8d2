//! `verify`: audit what is recorded, offline, from the repository alone. Every history tag is
//! judged by the rules of the trusted ref as they stood when it was written — its signature
//! and deployer, the chain of its target/component, how its commit got there (promotion path,
//! rollback), the approvals in force — and every state ref against the newest success record.
//! [`receive`] applies the same checks to a push before a server accepts it; a deployment a
//! clone verified clean before is checked for what changed since ([`checkpoint`]).

pub mod checkpoint;
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
pub use report::{Incremental, Problem, ProblemKind, Stats, VerifyReport, VerifyRequest};
pub use rules::RulesBook;
pub use view::View;

/// Audit the records of a repository (a clone, or a server's bare repository) by the rules of
/// its trusted ref. A deployment this clone verified clean before is checked only for what
/// changed since ([`checkpoint`]), unless `request.full`, a target or `--since` is asked;
/// each deployment found clean is checkpointed.
pub fn verify(
    project: &Project,
    git: &GitRepo,
    remote: Option<&str>,
    request: &VerifyRequest,
) -> Result<VerifyReport, WorkflowError> {
    let origin = trust::trusted_ref(project, git, remote)?;
    let rel = trust::project_in_repo(git, &project.root);
    let mut book = RulesBook::new(git, rel, origin, false)?;
    let now = jiff::Timestamp::now();
    let whole = request.target.is_some() || request.since.is_some();
    let deployments = match &request.deployment {
        Some(d) => vec![d.clone()],
        None => View::read(git)?.deployments(),
    };
    let rules_commit = book.origin().commit.clone();
    let mut report = VerifyReport {
        rules: book.origin().clone(),
        deployments: deployments.clone(),
        checked: Stats::default(),
        problems: Vec::new(),
        notices: Vec::new(),
        incremental: Vec::new(),
    };
    for d in &deployments {
        let snapshot = checkpoint::snapshot(git, d)?;
        let kept = checkpoint::load(git, d);
        let plan = if request.full || whole {
            checkpoint::Plan::Full("asked for")
        } else {
            checkpoint::plan(kept.as_ref(), &snapshot, rules_commit.as_deref())
        };
        let since = kept
            .as_ref()
            .map(|k| k.verified_at.clone())
            .unwrap_or_default();
        let mut windowed = None;
        if let checkpoint::Plan::Window(scope) = &plan {
            let out = checks::audit_push(git, &mut book, d, scope, now)?;
            // The tags are the checkpoint's plus the new records: none moved, deleted or added
            // beside the chain (else everything is checked).
            let explained = scope.groups.keys().all(|(t, c)| {
                let key = format!("{t}/{c}");
                let before = kept.as_ref().and_then(|k| k.snapshot.groups.get(&key));
                snapshot.only_added(&key, before, &out.fresh)
            });
            if explained {
                windowed = Some((scope.clone(), out));
            }
        }
        let (problems, notices) = match (&plan, windowed) {
            (checkpoint::Plan::Nothing, _) => {
                report.incremental.push(Incremental {
                    deployment: d.clone(),
                    since,
                    histories: 0,
                });
                (Vec::new(), Vec::new())
            }
            (_, Some((scope, out))) => {
                let touched = |reference: &str| {
                    view::group_of(reference)
                        .or_else(|| view::chain_group(reference))
                        .is_some_and(|g| g.0 == *d && scope.groups.contains_key(&(g.1, g.2)))
                };
                let keep = |p: &Problem| {
                    out.fresh.contains(&p.reference)
                        || (!p.reference.starts_with("refs/tags/") && touched(&p.reference))
                };
                report.checked.add(&out.stats);
                report.incremental.push(Incremental {
                    deployment: d.clone(),
                    since,
                    histories: scope.groups.len(),
                });
                (
                    out.problems.into_iter().filter(keep).collect(),
                    out.notices.into_iter().filter(keep).collect(),
                )
            }
            _ => {
                let whole_one = audit(
                    git,
                    &mut book,
                    &VerifyRequest {
                        deployment: Some(d.clone()),
                        ..request.clone()
                    },
                    now,
                )?;
                report.checked.add(&whole_one.checked);
                (whole_one.problems, whole_one.notices)
            }
        };
        if problems.is_empty() && !whole {
            // A checkpoint that cannot be written costs the next run its shortcut only.
            let _ = checkpoint::save(git, d, &snapshot, rules_commit.as_deref(), now);
        }
        report.problems.extend(problems);
        report.notices.extend(notices);
    }
    report
        .problems
        .sort_by(|a, b| (a.at, &a.reference).cmp(&(b.at, &b.reference)));
    Ok(report)
}
