//! Why a workflow stopped: one error for every workflow, each variant with its exit code
//! and the next step.

use std::path::PathBuf;

use crate::config::{ProjectError, UnknownTarget};
use crate::contracts::Lease;
use crate::diagnostic::Diagnostic;
use crate::error::Actionable;
use crate::executor::ExecutorError;
use crate::exit::Exit;
use crate::git::GitError;
use crate::git::lock::LockError;
use crate::git::remote::RemoteError;
use crate::sbom::SbomError;

/// Why a workflow stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// Project or config problem.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// Unknown target.
    #[error(transparent)]
    UnknownTarget(#[from] UnknownTarget),
    /// The command needs a target and the deployment names no default.
    #[error("`{verb}` needs --target")]
    NoTarget {
        /// The verb.
        verb: &'static str,
        /// The deployment.
        deployment: String,
        /// Its targets.
        targets: Vec<String>,
    },
    /// A `--component` the deployment does not define.
    #[error("deployment `{deployment}` has no component `{name}`")]
    UnknownComponent {
        /// Deployment.
        deployment: String,
        /// What was asked for.
        name: String,
        /// Every component.
        known: Vec<String>,
        /// A close name.
        suggestion: Option<String>,
    },
    /// `--promote-from` the target itself.
    #[error("cannot promote `{target}` from itself")]
    SelfPromotion {
        /// Target.
        target: String,
    },
    /// `--continue`/`--abort` with no canary open, or a canary the rules no longer allow.
    #[error("no canary to go on with on {target}: {why}")]
    NoCanary {
        /// Target.
        target: String,
        /// Why.
        why: String,
    },
    /// A rollout of components a canary is trying out, between its steps.
    #[error(
        "a canary of {deployment} on {target} stands at step {step} of {steps} ({weight}%) for {}: it is continued or aborted first",
        components.join(", ")
    )]
    CanaryOpen {
        /// Deployment.
        deployment: String,
        /// Target.
        target: String,
        /// The last step finished.
        step: u32,
        /// Steps in all.
        steps: u32,
        /// Its weight.
        weight: u8,
        /// The components in steps.
        components: Vec<String>,
    },
    /// A canary whose commits can no longer be had (its promotion source moved on).
    #[error(
        "the canary on {target} tried out other commits than {source_target} runs now for {}: continuing would deploy something else",
        components.join(", ")
    )]
    CanaryMoved {
        /// Target.
        target: String,
        /// The promotion source.
        source_target: String,
        /// The components whose commit changed.
        components: Vec<String>,
    },
    /// The source target runs nothing for some components.
    #[error("nothing to promote: {source_target} has no deployment of {}", components.join(", "))]
    NothingToPromote {
        /// Deployment.
        deployment: String,
        /// Source target.
        source_target: String,
        /// Components never deployed there.
        components: Vec<String>,
    },
    /// An approval of what a source target runs, when it runs nothing.
    #[error("nothing to approve: {source_target} runs nothing yet")]
    NothingToApprove {
        /// The source target.
        source_target: String,
    },
    /// A duration flag or setting that does not parse.
    #[error("{what}: {problem}")]
    Duration {
        /// Which flag or setting.
        what: String,
        /// Why.
        problem: String,
    },
    /// A component setting that cannot be used (`settings.<type>.verify`, `.health`).
    #[error("{problem}")]
    Setting {
        /// Which setting, and why.
        problem: String,
    },
    /// The trusted ref the rules are read from cannot be found.
    #[error("the trusted ref {refname} is not available: {why}")]
    NoTrustedRef {
        /// The ref.
        refname: String,
        /// Why.
        why: String,
    },
    /// The deployment's rules are not on the trusted ref yet.
    #[error(
        "deployment `{deployment}` is not on the trusted ref {refname} (commit {}): its rules are not trusted yet",
        crate::git::short(commit)
    )]
    NotOnTrustedRef {
        /// The deployment.
        deployment: String,
        /// The trusted ref.
        refname: String,
        /// Its commit.
        commit: String,
    },
    /// The deployed commit has no file for the deployment.
    #[error("commit {} has no deployment file for `{deployment}` ({})", crate::git::short(commit), path.display())]
    NotInCommit {
        /// The deployment.
        deployment: String,
        /// The commit.
        commit: String,
        /// Where the file was looked for.
        path: PathBuf,
    },
    /// A shallow clone whose history cannot be completed.
    #[error("this clone is shallow, so the gates would judge a truncated history: {detail}")]
    ShallowClone {
        /// Why it could not be completed.
        detail: String,
    },
    /// The work tree names a shared store the trusted rules do not.
    #[error("the work tree's atmos.yaml names {} as the shared store, but the trusted one on {refname} {}", work_tree.as_deref().unwrap_or("none"), trusted.as_deref().map_or("names none (records stay in this repository)".to_owned(), |t| format!("names {t}")))]
    StoreNotTrusted {
        /// The remote from the work tree.
        work_tree: Option<String>,
        /// The remote of the trusted rules.
        trusted: Option<String>,
        /// The trusted ref.
        refname: String,
    },
    /// `--local` rules on a rollout that would change something.
    #[error("--local evaluates uncommitted rules, so it only goes with --plan")]
    LocalRulesNeedPlan,
    /// Git failure.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The intent of a rollout (its `started` records) could not be written or published:
    /// nothing ran.
    #[error("the intent of this rollout to {target} could not be recorded, so nothing ran: {why}")]
    IntentNotWritten {
        /// The target.
        target: String,
        /// Why.
        why: String,
    },
    /// Lock files beside the refs a rollout writes stayed, and could not be proven stale:
    /// nothing ran.
    #[error("{} lock file(s) block the refs this rollout writes, so nothing ran:\n{}", files.len(), files.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    LockFiles {
        /// Each file, and what is known of it.
        files: Vec<String>,
        /// The commands that remove them.
        commands: Vec<String>,
    },
    /// An image registry could not be asked.
    #[error(transparent)]
    Registry(crate::registry::RegistryError),
    /// The registry does not serve an image the rollout would deploy: nothing ran.
    #[error(
        "{component}: the registry does not serve {image} (it answered: {answer}), so nothing ran"
    )]
    ImageMissing {
        /// The component.
        component: String,
        /// The image, pinned to its digest.
        image: String,
        /// What the registry said.
        answer: String,
    },
    /// An image a target deploys from its own registry could not be copied there (or the
    /// copy could not be checked).
    #[error("{component}: {from} was not copied to {to}: {why}")]
    ImageNotCopied {
        /// The component.
        component: String,
        /// From (pinned).
        from: String,
        /// To.
        to: String,
        /// Why.
        why: String,
    },
    /// A stack or its component cannot be read.
    #[error(transparent)]
    Stack(#[from] crate::stacks::StackError),
    /// A build's record would not fit in a line of the builds note.
    #[error(
        "the record of {component}'s build would be {size} bytes, and a line of the builds note holds at most {max}: nothing was built"
    )]
    BuildRecordTooLarge {
        /// The component.
        component: String,
        /// Its size as it would be written.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Two components' images would be copied to one repository of a target's registry.
    #[error(
        "{target} deploys from its own registry, and the images of {} would all be copied to {repository}",
        components.join(", ")
    )]
    RegistryCollision {
        /// The target.
        target: String,
        /// The repository.
        repository: String,
        /// The components.
        components: Vec<String>,
    },
    /// `verify --repair` refused to repair a ref.
    #[error("{refname} was not repaired: {why}")]
    Repair {
        /// The ref.
        refname: String,
        /// Why.
        why: String,
    },
    /// The executors ran, and their outcome could not be written here.
    #[error("the executors ran, but their outcome could not be written: {why}")]
    OutcomeNotWritten {
        /// Why.
        why: String,
    },
    /// `lock release` of a lease its runner still renews.
    #[error("{}/{} is held by {} (run {}, {} pid {}) until {}, and its rollout renews the lease while it runs", lease.deployment, lease.target, lease.holder, lease.run.as_deref().unwrap_or("-"), lease.host, lease.pid, lease.expires_at)]
    LeaseLive {
        /// The lease.
        lease: Box<Lease>,
    },
    /// The target's lock could not be taken or read.
    #[error(transparent)]
    Lock(LockError),
    /// Records could not be published (they stay kept).
    #[error(transparent)]
    Publish(#[from] crate::git::pending::PublishError),
    /// A document atmos builds itself could not be written (a bug, never the user's input).
    #[error("internal error: {what}")]
    Internal {
        /// What failed.
        what: String,
    },
    /// A state ref names an object this repository does not have.
    #[error("{refname} points at {object}, which this repository does not have")]
    MissingObject {
        /// The ref.
        refname: String,
        /// What it names.
        object: String,
    },
    /// `--metadata` with a key atmos records itself.
    #[error("--metadata {shown}=… {why}")]
    ReservedMetadata {
        /// The key.
        key: String,
        /// The key as shown (quoted when it is not a plain name).
        shown: String,
        /// Why.
        why: String,
    },
    /// An entry target's rollout built its commit first, and the build failed: nothing was
    /// deployed.
    #[error("building {} of {} failed, so nothing was deployed", components.join(", "), crate::git::short(commit))]
    BuildFailed {
        /// The deployment.
        deployment: String,
        /// The components that did not build.
        components: Vec<String>,
        /// The commit.
        commit: String,
    },
    /// Records could not be written.
    #[error("{source}")]
    Record {
        /// Why.
        source: GitError,
    },
    /// The shared remote failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// Another runner holds the target.
    #[error(
        "{}/{} is locked by {} (run {}, {} pid {}) since {}, until {}",
        .0.deployment, .0.target, .0.holder, .0.run.as_deref().unwrap_or("-"), .0.host, .0.pid,
        .0.started_at, .0.expires_at
    )]
    LockHeld(Box<Lease>),
    /// A state ref was moved on the remote by someone else while this rollout ran.
    #[error(
        "{refname} was moved on {remote} by someone else while this rollout ran (expected {}, found {}); it was not overwritten",
        expected.as_deref().unwrap_or("absent"), found.as_deref().unwrap_or("absent")
    )]
    MovedOnRemote {
        /// The ref.
        refname: String,
        /// The remote.
        remote: String,
        /// What this run read before it started.
        expected: Option<String>,
        /// What the remote holds now.
        found: Option<String>,
        /// What git said when refusing.
        detail: String,
    },
    /// The remote kept refusing the records.
    #[error("{remote} kept refusing the records after {attempts} attempts")]
    PushRefused {
        /// The remote.
        remote: String,
        /// How many times it was tried.
        attempts: u32,
    },
    /// A tool or setting problem found before anything ran.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// SBOM problem.
    #[error(transparent)]
    Sbom(#[from] SbomError),
    /// The deployer or approver identity cannot be written into records.
    #[error("the identity cannot be used: {problem}")]
    BadActor {
        /// What is wrong, naming where it came from.
        problem: String,
    },
    /// A command that needs the shared remote, and none is named or configured.
    #[error("no remote: name one with --remote, or set git.remote in atmos.yaml")]
    NoRemote,
    /// Signing an approval is required and no key is configured.
    #[error("{target} requires signed approvals, and no signing key is configured")]
    NoSigningKey {
        /// The target.
        target: String,
    },
    /// The remote kept refusing an archive push.
    #[error("{remote} refused the archive {attempts} times; the last time it said: {reason}")]
    ArchiveRefused {
        /// The remote.
        remote: String,
        /// How many times it was tried.
        attempts: u32,
        /// What it said.
        reason: String,
    },
    /// `archive --offline` in a clone of the shared store.
    #[error(
        "archive --offline is for the shared store's own repository, and this clone has {remote}"
    )]
    ArchiveOffline {
        /// The remote this clone has.
        remote: String,
    },
    /// An archive run whose record count changed: a bug, reported instead of hidden.
    #[error("archiving {deployment} changed its record count from {before} to {after}")]
    ArchiveMismatch {
        /// The deployment.
        deployment: String,
        /// Records before.
        before: usize,
        /// Records after.
        after: usize,
    },
    /// `ssh-keygen` could not sign.
    #[error("{0}")]
    Signing(String),
    /// Local file problem (logs, vars files, the async runtime).
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<LockError> for WorkflowError {
    fn from(e: LockError) -> WorkflowError {
        match e {
            LockError::Held(lease) => WorkflowError::LockHeld(lease),
            LockError::Remote(r) => WorkflowError::Remote(r),
            LockError::Git(g) => WorkflowError::Git(g),
            other => WorkflowError::Lock(other),
        }
    }
}

impl Actionable for WorkflowError {
    fn exit(&self) -> Exit {
        match self {
            WorkflowError::Project(e) => e.exit(),
            WorkflowError::Stack(e) => e.exit(),
            WorkflowError::Git(e) => e.exit(),
            WorkflowError::Remote(e) => e.exit(),
            WorkflowError::Executor(e) => e.exit(),
            WorkflowError::Sbom(e) => e.exit(),
            WorkflowError::Lock(e) => e.exit(),
            WorkflowError::Registry(e) => e.exit(),
            WorkflowError::UnknownTarget(_)
            | WorkflowError::NoTarget { .. }
            | WorkflowError::NoCanary { .. }
            | WorkflowError::CanaryMoved { .. }
            | WorkflowError::UnknownComponent { .. }
            | WorkflowError::SelfPromotion { .. }
            | WorkflowError::NothingToPromote { .. }
            | WorkflowError::NothingToApprove { .. }
            | WorkflowError::Duration { .. }
            | WorkflowError::Setting { .. }
            | WorkflowError::NoTrustedRef { .. }
            | WorkflowError::NotOnTrustedRef { .. }
            | WorkflowError::NotInCommit { .. }
            | WorkflowError::ShallowClone { .. }
            | WorkflowError::LocalRulesNeedPlan
            | WorkflowError::StoreNotTrusted { .. }
            | WorkflowError::ReservedMetadata { .. }
            | WorkflowError::MissingObject { .. }
            | WorkflowError::NoSigningKey { .. }
            | WorkflowError::NoRemote
            | WorkflowError::ArchiveOffline { .. }
            | WorkflowError::LeaseLive { .. }
            | WorkflowError::Repair { .. }
            | WorkflowError::BadActor { .. }
            | WorkflowError::RegistryCollision { .. }
            | WorkflowError::BuildRecordTooLarge { .. } => Exit::Usage,
            WorkflowError::LockHeld(_) | WorkflowError::CanaryOpen { .. } => Exit::Pending,
            WorkflowError::BuildFailed { .. }
            | WorkflowError::Record { .. }
            | WorkflowError::MovedOnRemote { .. }
            | WorkflowError::PushRefused { .. }
            | WorkflowError::Signing(_)
            | WorkflowError::ArchiveMismatch { .. }
            | WorkflowError::ArchiveRefused { .. }
            | WorkflowError::Internal { .. }
            | WorkflowError::IntentNotWritten { .. }
            | WorkflowError::LockFiles { .. }
            | WorkflowError::ImageMissing { .. }
            | WorkflowError::ImageNotCopied { .. }
            | WorkflowError::OutcomeNotWritten { .. }
            | WorkflowError::Publish(_)
            | WorkflowError::Io { .. } => Exit::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            WorkflowError::Project(e) => e.hint(),
            WorkflowError::Stack(e) => e.hint(),
            WorkflowError::UnknownTarget(e) => e.hint(),
            WorkflowError::Git(e) | WorkflowError::Record { source: e } => e.hint(),
            WorkflowError::Remote(e) => e.hint(),
            WorkflowError::Executor(e) => e.hint(),
            WorkflowError::Sbom(e) => e.hint(),
            WorkflowError::Lock(e) => e.hint(),
            WorkflowError::LeaseLive { .. } => Some(
                "wait for it (rollout --wait-for-lock), or add --force if that runner is known to be gone: its rollout stops within a minute of losing the lease".into(),
            ),
            WorkflowError::Setting { .. } => Some(
                "fix the setting in the deployment file (`atmos deployment validate` checks it); nothing was deployed".into(),
            ),
            WorkflowError::NoTarget {
                deployment,
                targets,
                ..
            } => Some(format!(
                "targets of {deployment}: {} (or set `context.default_target`)",
                targets.join(", ")
            )),
            WorkflowError::UnknownComponent {
                suggestion, known, ..
            } => Some(match suggestion {
                Some(s) => format!("did you mean `{s}`? components: {}", known.join(", ")),
                None => format!("components: {}", known.join(", ")),
            }),
            WorkflowError::SelfPromotion { .. } => {
                Some("--promote-from names the target the code comes from".into())
            }
            WorkflowError::BuildRecordTooLarge { .. } => Some(
                "pass smaller --context values (they are recorded with the build), or keep large values in files the build reads".into(),
            ),
            WorkflowError::RegistryCollision { .. } => Some(
                "a copy keeps only the last segment of each image's repository (shop/api → <registry>/api): give the images different last segments (vars.image.name)".into(),
            ),
            WorkflowError::BadActor { .. } => Some(
                "set ATMOS_ACTOR (or git's user.email) to a plain identity, e.g. alice@example.com".into(),
            ),
            WorkflowError::NoCanary { target, .. } => Some(format!(
                "`atmos deployment status` shows what {target} runs; a canary is begun by a rollout to a target whose `strategy.canary` selects a changing component"
            )),
            WorkflowError::CanaryOpen {
                deployment, target, ..
            } => Some(format!(
                "atmos deployment rollout {deployment} --target {target} --continue (next step), or --abort (back to what ran before)"
            )),
            WorkflowError::CanaryMoved { target, .. } => Some(format!(
                "abort it (rollout --target {target} --abort) and promote again"
            )),
            WorkflowError::NoRemote => {
                Some("e.g. --remote origin; `git remote -v` lists this clone's remotes".into())
            }
            WorkflowError::NothingToPromote {
                deployment,
                source_target,
                ..
            } => Some(format!(
                "roll out to {source_target} first: atmos deployment rollout {deployment} --target {source_target}"
            )),
            WorkflowError::NothingToApprove { source_target } => Some(format!(
                "roll out to {source_target} first, or pass --git-sha"
            )),
            WorkflowError::MissingObject { .. } => Some(
                "fetch what the remote has (git fetch --all), or check the records with `atmos deployment verify`: the ref was set by hand or its commit was never pushed".into(),
            ),
            WorkflowError::ReservedMetadata { key, .. } if key == "approver" => Some(
                "approvals are recorded with `atmos deployment approve`; the tags name who approved".into(),
            ),
            WorkflowError::ReservedMetadata { key, .. } if key == "skip_promotion_check" => {
                Some("use the flag itself (--skip-promotion-check), or another key".into())
            }
            WorkflowError::ReservedMetadata { key, .. } if key == "automatic_rollback" => Some(
                "atmos writes it on the rollback that follows a failed verification (settings.<type>.verify.on_failure: rollback); use another key".into(),
            ),
            WorkflowError::ReservedMetadata { .. } => Some(
                "metadata keys are names: letters, digits, `_`, `-` and `.`, with nothing around them".into(),
            ),
            WorkflowError::BuildFailed {
                deployment, commit, ..
            } => Some(format!(
                "see the build output above; retry the build alone with `atmos deployment build {deployment} --git-sha {commit}`, then roll out again"
            )),
            WorkflowError::NoTrustedRef { .. } => Some(
                "fetch the remote (git fetch), set its default branch (git remote set-head <remote> --auto), or name the trusted ref: git config atmos.trustRef refs/remotes/<remote>/<branch>".into(),
            ),
            WorkflowError::NotOnTrustedRef { refname, .. } => Some(format!(
                "merge the deployment file into {refname} (and fetch it) so its gates apply; to try uncommitted rules without deploying, use `--local` with `rollout --plan` or `policy eval`"
            )),
            WorkflowError::NotInCommit { .. } => Some(
                "a commit can only be deployed once it holds the deployment file; pick a later commit".into(),
            ),
            WorkflowError::ShallowClone { .. } => Some(
                "clone with the whole history (actions/checkout: `fetch-depth: 0`), or run `git fetch --unshallow origin`".into(),
            ),
            WorkflowError::StoreNotTrusted { trusted, .. } => Some(match trusted {
                Some(t) => format!("records go to the trusted store: pass --remote {t}, or merge the atmos.yaml change first"),
                None => "merge the atmos.yaml change first, or pass --remote explicitly".into(),
            }),
            WorkflowError::LocalRulesNeedPlan => Some(
                "commit and merge the rules to change what a real rollout checks; try them first with --plan --local".into(),
            ),
            WorkflowError::Duration { .. } => {
                Some("durations look like 90s, 30m, 12h, 7d or 2w".into())
            }
            WorkflowError::LockHeld(l) => Some(format!(
                "wait for it with --wait-for-lock --timeout 30m; if that runner is gone, the lock lapses at {} or can be cleared with: atmos deployment lock release {} --target {}",
                l.expires_at, l.deployment, l.target
            )),
            WorkflowError::MovedOnRemote { detail, .. } => Some(format!(
                "check who deployed with `atmos deployment history`; the refusal was: {detail}"
            )),
            WorkflowError::NoSigningKey { .. } => Some(
                "pass --signing-key ~/.ssh/id_ed25519, or set git config user.signingkey".into(),
            ),
            WorkflowError::Signing(_) => {
                Some("the key must be an SSH key (ssh-keygen -t ed25519)".into())
            }
            WorkflowError::ArchiveOffline { remote } => Some(format!(
                "run it without --offline here (the ledger and the deletions go to {remote} together), or on the server's repository"
            )),
            WorkflowError::ArchiveRefused { .. } => Some(
                "nothing was lost: what was not pushed stays as tags; check the remote's records with `atmos deployment verify --remote <name>` and run archive again".into(),
            ),
            WorkflowError::ArchiveMismatch { .. } => Some(
                "nothing was pushed after the check failed; run `atmos deployment verify` and report this with the output of `atmos deployment history --format json`".into(),
            ),
            WorkflowError::IntentNotWritten { .. } => Some(
                "fix what stopped it and run the rollout again; nothing ran and nothing is left to clean up (--offline records it here and publishes it later)".into(),
            ),
            WorkflowError::Registry(e) => e.hint(),
            WorkflowError::ImageNotCopied { .. } => Some(
                "a copy needs both registries (not --offline), and push access to the target's (the engines' auth files); nothing ran and nothing was recorded".into(),
            ),
            WorkflowError::ImageMissing { .. } => Some(
                "build and push it again (atmos deployment build <deployment> --force), or deploy a commit whose image the registry still serves".into(),
            ),
            WorkflowError::Repair { .. } => Some(
                "run it in the server's repository as its administrator: atmos deployment verify --repair <ref> --reason <why> (docs/verify.md#repair)".into(),
            ),
            WorkflowError::LockFiles { commands, .. } => Some(format!(
                "a git process killed mid-update leaves these behind; if no git or atmos process is working in this repository, remove them and run the rollout again:\n  {}",
                commands.join("\n  ")
            )),
            WorkflowError::OutcomeNotWritten { .. } => Some(
                "free what blocked the write (disk space, a lock file); the intent is recorded, so the next rollout of this target records this one as interrupted before it runs".into(),
            ),
            WorkflowError::Publish(e) => Some(match e {
                crate::git::pending::PublishError::NeedsKey { .. } => "run the command again where the signing key is readable (or with --signing-key); the records stay kept until then".into(),
                _ => "the records stay kept in .git/atmos/pending and are pushed by the next command that reaches the remote".into(),
            }),
            WorkflowError::Internal { .. } => Some(
                "this is a bug in atmos: please report it with the command you ran".into(),
            ),
            WorkflowError::PushRefused { .. } | WorkflowError::Io { .. } => None,
        }
    }

    fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            WorkflowError::Project(e) => e.diagnostics(),
            _ => &[],
        }
    }
}
