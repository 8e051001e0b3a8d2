//! One rollout, start to end: [`RolloutSession::begin`] clears stale ref lock files, takes the
//! target's lock and reads the shared remote (publishing what this clone kept first), records
//! unfinished runs as interrupted, [`plan`](RolloutSession::plan) decides,
//! [`await_approvals`](RolloutSession::await_approvals) confirms or waits when only approvals
//! are missing; then the images are checked in their registries,
//! [`announce`](RolloutSession::announce) records and publishes the intent,
//! [`execute`](RolloutSession::execute) runs the executors, and
//! [`record`](RolloutSession::record) writes the outcome records and state refs, which are
//! kept and pushed by compare-and-swap. [`RolloutSession::drive`] runs the whole sequence.

use std::time::{Duration, Instant};

use super::model::{AutomaticRollback, RolloutPlan, RolloutReport, RolloutRequest};
use super::plan::Planner;
use super::wait::{self, ApprovalWait};
use super::{prepare, record, rollback};
use crate::config::Project;
use crate::config::model::ApprovalMethod;
use crate::contracts::Verdict;
use crate::contracts::record::Runner;
use crate::executor::Step;
use crate::executor::run::{ComponentRun, Outcome, run_until};
use crate::exit::Exit;
use crate::gates::isolation::Evaluator;
use crate::git::GitRepo;
use crate::git::pending::Published;
use crate::git::record::{StateUpdate, Tagger, Written};
use crate::workflow::error::WorkflowError;
use crate::workflow::events::{Event, Observer, Replan};
use crate::workflow::lease::{self, LeaseGuard, LeaseRequest};
use crate::workflow::store::{self, Stores};
use crate::workflow::trust::{self, Rules};

/// How the rollout runs (as opposed to what it deploys, the [`RolloutRequest`]).
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// `--plan`: evaluate the gates and run the plan commands; change nothing, take no lock.
    pub plan_only: bool,
    /// Components run at once within a wave.
    pub parallelism: usize,
    /// Lifetime of the target lock.
    pub lock_ttl: Duration,
    /// Wait this long for another runner's lock (`None`: exit 4 at once).
    pub wait_for_lock: Option<Duration>,
    /// Wait for missing approvals (`None`: exit 4 at once).
    pub wait_for_approval: Option<ApprovalWait>,
    /// Where the target's records are read and written, resolved once.
    pub stores: Stores,
    /// Evaluate the rules in the work tree, uncommitted (plan-only; says so).
    pub local_rules: bool,
    /// A new canary, or the next steps of the open one, or its abort.
    pub canary: CanaryMode,
    /// `--until-step N`: a canary stops, open, once step N finished.
    pub until_step: Option<u32>,
}

/// What a rollout does with a target's canary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CanaryMode {
    /// A new rollout: refused while a canary of the same components is open.
    #[default]
    Begin,
    /// `--continue`: the open canary's next steps.
    Continue,
    /// `--abort`: the open canary's components back to what ran before.
    Abort,
}

/// How a rollout ended, when it did not fail.
#[derive(Debug)]
pub enum RolloutOutcome {
    /// A gate denied it, or approvals are missing: nothing ran (exit 3 or 4).
    Blocked(RolloutPlan),
    /// Every selected component already runs its commit: nothing ran.
    NothingToDo {
        /// The plan.
        plan: RolloutPlan,
        /// Records of the target this clone has and the remote lacked, published now (how
        /// many, or why not): naming a remote that missed earlier records brings it up to
        /// date instead of saying only "nothing to do".
        backfilled: Option<Result<usize, WorkflowError>>,
    },
    /// `--plan`: the plan commands ran; nothing was recorded.
    Planned {
        /// The plan.
        plan: RolloutPlan,
        /// The plan commands' runs.
        runs: Vec<ComponentRun>,
    },
    /// The executors ran and their records were written locally — and pushed when `published`
    /// is `Some(Ok(attempts))`.
    Done {
        /// What happened.
        report: Box<RolloutReport>,
        /// The push to the remote, when there is one.
        published: Option<Result<u32, WorkflowError>>,
        /// Older records folded into the ledger afterwards (`history.archive_on_rollout`),
        /// when that ran.
        archived: Option<Result<crate::workflow::archive::Folded, WorkflowError>>,
    },
}

impl RolloutOutcome {
    /// The exit code of this outcome.
    pub fn exit(&self) -> Exit {
        let blocked = |plan: &RolloutPlan| match plan.blocked() {
            Some(Verdict::Deny) => Exit::Denied,
            Some(_) => Exit::Pending,
            None => Exit::Done,
        };
        match self {
            RolloutOutcome::Blocked(plan) => blocked(plan),
            RolloutOutcome::NothingToDo { .. } => Exit::Done,
            RolloutOutcome::Planned { plan, runs } => {
                if runs
                    .iter()
                    .any(|r| matches!(r.outcome, Outcome::Failed { .. }))
                {
                    Exit::Failed
                } else {
                    blocked(plan)
                }
            }
            RolloutOutcome::Done {
                report, published, ..
            } => {
                let paused = report
                    .canary
                    .as_ref()
                    .and_then(|c| c.paused.as_ref())
                    .map(|p| p.reason.as_str());
                if !report.success || matches!(published, Some(Err(_))) {
                    Exit::Failed
                } else if paused == Some(super::model::pause::DENIED) {
                    Exit::Denied
                } else if paused == Some(super::model::pause::PENDING) {
                    Exit::Pending
                } else {
                    Exit::Done
                }
            }
        }
    }
}

/// What the intent is called in messages (and how `share` knows it is one).
const INTENT: &str = "the intent";

/// A started rollout found without an outcome, and recorded as interrupted.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Reconciled {
    /// The component.
    pub component: String,
    /// Its `started` record.
    pub started: String,
    /// The `interrupted` record written.
    pub recorded: String,
    /// What was found, in words.
    pub message: String,
}

/// A rollout in progress. Holds the target's lock (unless plan-only) until dropped.
pub struct RolloutSession<'a> {
    project: &'a Project,
    /// The deployment as the work tree has it (what the user sees; never what decides).
    work_tree: &'a crate::config::LoadedDeployment,
    rules: Rules,
    evaluator: &'a dyn Evaluator,
    observer: &'a dyn Observer,
    git: GitRepo,
    request: RolloutRequest,
    options: RolloutOptions,
    log_dir: Option<std::path::PathBuf>,
    lease: Option<LeaseGuard>,
}

impl<'a> RolloutSession<'a> {
    /// Take the target's lock (not for plan-only) and read what the remote holds, so that
    /// every decision is made on the newest shared state, with the whole history, by the rules
    /// of the trusted ref.
    pub fn begin(
        project: &'a Project,
        work_tree: &'a crate::config::LoadedDeployment,
        evaluator: &'a dyn Evaluator,
        request: RolloutRequest,
        options: RolloutOptions,
        observer: &'a dyn Observer,
    ) -> Result<RolloutSession<'a>, WorkflowError> {
        crate::identity::check(&request.actor)
            .map_err(|problem| WorkflowError::BadActor { problem })?;
        let deployment = work_tree.deployment.name.as_str();
        let mut git = GitRepo::discover(&project.root)?;
        if !options.plan_only {
            lease::clear_lock_files(&git, deployment, &request.target, observer)?;
        }
        // A rollout that takes the lease syncs once it holds it (below): what the previous
        // holder pushed just before releasing is read then, and a sync before it would be a
        // second round trip for nothing. A plan takes no lease: it syncs here.
        if options.plan_only
            && let Some(r) = &options.stores.main
        {
            r.fetch()?;
            for note in r.take_notes().into_iter().chain(r.take_warnings()) {
                observer.event(&Event::Warning(note));
            }
        }
        let remote_name = options.stores.main.as_ref().map(|r| r.name.clone());
        let trust_remote = remote_name.as_deref().filter(|_| options.stores.from_flag);
        if let Some(note) = trust::ensure_history(
            project,
            &git,
            remote_name.as_deref(),
            options.stores.offline,
        )? {
            observer.event(&Event::Warning(note));
            git = GitRepo::discover(&project.root)?;
        }
        if options.local_rules && !options.plan_only {
            return Err(WorkflowError::LocalRulesNeedPlan);
        }
        let lease = if options.plan_only {
            None
        } else {
            Some(lease::acquire(
                &git,
                options.stores.main.as_ref(),
                &LeaseRequest {
                    deployment: deployment.to_owned(),
                    target: request.target.clone(),
                    holder: request.actor.id.clone(),
                    run: request.build_id.clone(),
                    ttl: options.lock_ttl,
                    wait: options.wait_for_lock,
                },
                observer,
            )?)
        };
        if lease.is_some()
            && let Some(r) = &options.stores.main
        {
            r.fetch()?;
            for note in r.take_notes().into_iter().chain(r.take_warnings()) {
                observer.event(&Event::Warning(note));
            }
            git = GitRepo::discover(&project.root)?;
        }
        // Records on other remotes (a promotion's source may live elsewhere) are read too; one
        // out of reach leaves its records as this clone last saw them, and says so.
        for reader in &options.stores.readers {
            match reader.fetch() {
                Ok(()) => git = GitRepo::discover(&project.root)?,
                Err(e) => observer.event(&Event::Warning(format!(
                    "could not read {}: {e}; its records are as this clone last fetched them",
                    reader.name
                ))),
            }
            for note in reader
                .take_notes()
                .into_iter()
                .chain(reader.take_warnings())
            {
                observer.event(&Event::Warning(note));
            }
        }
        let rules = if options.local_rules {
            trust::local(project, deployment)?
        } else {
            trust::trusted(project, &git, trust_remote, deployment)?
        };
        // The shared store is the trusted one: the work tree does not pick it.
        // (Offline, or without a store, nothing is pushed anywhere.)
        let trusted_store = rules
            .loaded
            .deployment
            .targets
            .get(&request.target)
            .and_then(|t| t.remote.clone())
            .or_else(|| rules.project.settings.git.remote.clone());
        if !options.local_rules
            && !options.stores.from_flag
            && remote_name.is_some()
            && remote_name != trusted_store
        {
            return Err(WorkflowError::StoreNotTrusted {
                work_tree: remote_name,
                trusted: trusted_store,
                refname: rules.origin.source.clone(),
            });
        }
        if rules.origin.source == "HEAD" && !options.local_rules {
            observer.event(&Event::Warning(
                "no remote: the rules are the current branch's committed ones, so a branch can change its own gates; add a remote (or git config atmos.trustRef) to enforce them".into(),
            ));
        }
        crate::config::UnknownTarget::check(&rules.loaded.deployment, &request.target)?;
        let mut request = request;
        request.actor = trust::map_actor(request.actor, &rules);
        request.proof = Some(trust::prove(
            &request.actor,
            request.signing_key.as_ref(),
            &rules,
        ));
        // Records signed with a key not allowed for the identity they name would be refused
        // by verify and the server guard after the executors ran: said before anything runs,
        // and the records are written unsigned instead (where the target requires signed
        // deployers, its deployer gate refuses the rollout, with the same reason).
        if let Some(why) = trust::key_mismatch(
            &request.actor,
            request.signing_key.as_ref(),
            request.proof.as_ref(),
            &rules,
        ) {
            observer.event(&Event::Warning(why));
            request.signing_key = None;
        }
        Ok(RolloutSession {
            project,
            work_tree,
            rules,
            evaluator,
            observer,
            git,
            request,
            options,
            log_dir: None,
            lease,
        })
    }

    /// The repository the session works on.
    pub fn git(&self) -> &GitRepo {
        &self.git
    }

    /// Where the rules that decide came from.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Decide: which commit each component gets, and what every gate says.
    pub fn plan(&mut self) -> Result<RolloutPlan, WorkflowError> {
        self.plan_for(&self.request)
    }

    /// The plan of `request` by this session's rules, on its repository.
    fn plan_for(&self, request: &RolloutRequest) -> Result<RolloutPlan, WorkflowError> {
        Planner {
            project: self.project,
            rules: &self.rules,
            git: &self.git,
            evaluator: self.evaluator,
        }
        .plan(request)
    }

    fn replan(&mut self, why: Replan) -> Result<RolloutPlan, WorkflowError> {
        self.git = GitRepo::discover(&self.project.root)?;
        self.request.started_at = jiff::Timestamp::now();
        let plan = self.plan()?;
        self.observer.event(&Event::Planned {
            plan: &plan,
            after: Some(why),
        });
        Ok(plan)
    }

    /// When only approvals are missing: under `approval_method: manual`, ask the observer to
    /// confirm; otherwise, when asked to, wait for approvals to be recorded. Returns the plan
    /// as it stands afterwards.
    pub fn await_approvals(&mut self, plan: RolloutPlan) -> Result<RolloutPlan, WorkflowError> {
        if plan.blocked() != Some(Verdict::Pending) || self.options.plan_only {
            return Ok(plan);
        }
        let manual = plan
            .approvals
            .as_ref()
            .is_some_and(|a| a.method == ApprovalMethod::Manual);
        if manual {
            if wait::confirm_manually(&self.git, &plan, self.observer)? {
                return self.replan(Replan::ManualConfirmation);
            }
            return Ok(plan);
        }
        let Some(w) = self.options.wait_for_approval else {
            return Ok(plan);
        };
        let deadline = Instant::now() + w.timeout;
        let mut plan = plan;
        while plan.blocked() == Some(Verdict::Pending) {
            let left = deadline.saturating_duration_since(Instant::now());
            if !wait::wait_for_change(
                &self.git,
                self.options.stores.main.as_ref(),
                &plan,
                left,
                w.poll,
                self.observer,
            ) {
                break;
            }
            plan = self.replan(Replan::NewApprovals)?;
        }
        Ok(plan)
    }

    /// Run the executors of `plan` (the plan commands when plan-only), wave by wave.
    pub fn execute(&mut self, plan: &RolloutPlan) -> Result<Vec<ComponentRun>, WorkflowError> {
        let prepared = self.prepare(plan)?;
        self.run_prepared(&prepared)
    }

    /// Check the tools and lay out each component's files for `plan` (the plan commands when
    /// plan-only): what can fail before anything runs.
    fn prepare(
        &mut self,
        plan: &RolloutPlan,
    ) -> Result<crate::executor::run::Prepared, WorkflowError> {
        let step = if self.options.plan_only {
            Step::Plan
        } else {
            Step::Apply
        };
        let prepared = prepare::prepare(
            &self.project.root,
            &self.git,
            plan,
            step,
            &crate::identity::process_env,
            &self.rules.project.settings.processing.env,
        )?;
        self.log_dir = Some(prepared.log_dir.clone());
        Ok(prepared)
    }

    /// Run what `prepare` laid out, wave by wave.
    fn run_prepared(
        &mut self,
        prepared: &crate::executor::run::Prepared,
    ) -> Result<Vec<ComponentRun>, WorkflowError> {
        let observer = self.observer;
        // Renewed in the background; if someone else takes the target's lock anyway, the
        // components not finished yet are stopped like on a signal.
        let lost = self.lease.as_ref().map(LeaseGuard::lost_flag);
        let lost_now = || {
            lost.as_ref()
                .is_some_and(|l| l.lock().map(|l| l.is_some()).unwrap_or(true))
        };
        let runs = run_until(
            prepared,
            self.options.parallelism,
            &mut |e| observer.event(&Event::Executor(e)),
            &lost_now,
        )
        .map_err(|source| WorkflowError::Io {
            path: "the async runtime".into(),
            source,
        })?;
        for run in &runs {
            if let Some(why) = &run.log_error {
                observer.event(&Event::Warning(format!(
                    "the output of {} was not kept whole: {why}",
                    run.name
                )));
            }
        }
        if let Some(why) = self.lease.as_ref().and_then(LeaseGuard::lost) {
            observer.event(&Event::Warning(format!(
                "{why}; the components not finished were stopped, and what ran is recorded"
            )));
        }
        Ok(runs)
    }

    /// Build what an entry target deploys and nobody built yet (once: later targets deploy
    /// the recorded image), then take the recorded artifacts into the plan.
    pub fn build_first(&mut self, plan: &mut RolloutPlan) -> Result<(), WorkflowError> {
        let mut by_commit: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for c in &plan.components {
            if plan
                .artifacts
                .get(&c.name)
                .is_some_and(|a| a.from == super::plan::artifacts::from::TO_BUILD)
            {
                by_commit
                    .entry(c.new.clone())
                    .or_default()
                    .push(c.name.clone());
            }
        }
        for (commit, names) in by_commit {
            let request = crate::workflow::build::BuildRequest {
                deployment: plan.deployment.clone(),
                target: Some(plan.target.clone()),
                git_sha: Some(commit.clone()),
                components: names.clone(),
                plan_only: false,
                skip_push: false,
                force: false,
                vulnerabilities: None,
                parallelism: self.options.parallelism,
                context: plan.context.clone(),
                actor: self.request.actor.id.clone(),
                build_id: self.request.build_id.clone(),
                signing_key: self.request.signing_key.clone(),
            };
            let outcome = crate::workflow::build::build(
                self.project,
                self.options.stores.main.as_ref(),
                &request,
                self.observer,
            )?;
            if let crate::workflow::build::BuildOutcome::Finished(report) = &outcome
                && !report.success
            {
                return Err(WorkflowError::BuildFailed {
                    deployment: plan.deployment.clone(),
                    components: report
                        .built
                        .iter()
                        .filter(|b| b.outcome != crate::executor::run::Outcome::Succeeded)
                        .map(|b| b.component.clone())
                        .collect(),
                    commit,
                });
            }
            let built = crate::artifacts::latest(&self.git, &plan.deployment, &commit)?;
            for name in names {
                if let Some(b) = built.get(&name) {
                    let mut artifact = super::model::Artifact {
                        image: b.image.clone(),
                        digest: b.digest.clone(),
                        from: super::plan::artifacts::from::BUILD.to_owned(),
                        ..super::model::Artifact::default()
                    };
                    if let Some(registry) = &plan.registry {
                        artifact = super::images::relocate(&artifact, registry)?;
                    }
                    plan.artifacts.insert(name, artifact);
                }
            }
        }
        Ok(())
    }

    /// Who writes the records, and the key that signs them.
    fn tagger(&self) -> Tagger {
        Tagger {
            name: self
                .git
                .config_string("user.name")
                .unwrap_or_else(|| "atmos".to_owned()),
            email: self
                .git
                .config_string("user.email")
                .unwrap_or_else(|| self.request.actor.id.clone()),
            signing_key: self.request.signing_key.clone(),
        }
    }

    /// Where this rollout runs, as its intent says.
    fn runner(&self) -> Runner {
        let lease = self.lease.as_ref().map(LeaseGuard::lease);
        Runner {
            host: lease
                .as_ref()
                .map(|l| l.host.clone())
                .unwrap_or_else(lease::host_name),
            pid: std::process::id(),
            run: self.request.build_id.clone(),
        }
    }

    /// Find the rollouts of this target that started and were never completed (their runner
    /// was killed, its disk filled, its remote went away) and record each as `interrupted`,
    /// before anything else runs here. Holding the target's lock, nobody else is running them.
    pub fn reconcile(&mut self) -> Result<Vec<Reconciled>, WorkflowError> {
        let d = self.rules.loaded.deployment.name.clone();
        let target = self.request.target.clone();
        let mut components: Vec<String> = self
            .rules
            .loaded
            .deployment
            .components
            .iter()
            .map(|c| c.name.to_owned())
            .collect();
        for s in self.git.state_refs(&d, Some(&target))? {
            if !components.contains(&s.component) {
                components.push(s.component);
            }
        }
        let mut found = Vec::new();
        for c in &components {
            if let Some(l) = self.git.chain(&d, &target, c)?.next_link()?
                && l.record.status == crate::contracts::Status::Started
            {
                found.push(l);
            }
        }
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let pending = record::interrupted(
            &found,
            &self.request.actor.id,
            &super::plan::rollout_id(&self.request),
        );
        let busy = busy_reporter(self.observer);
        let written = crate::git::record::write(&self.git, &pending, &self.tagger(), &busy)
            .map_err(|e| WorkflowError::IntentNotWritten {
                target: target.clone(),
                why: format!(
                    "the unfinished rollout(s) found could not be recorded as interrupted first: {e}"
                ),
            })?;
        let out: Vec<Reconciled> = found
            .iter()
            .zip(&written)
            .map(|(l, w)| Reconciled {
                component: l.record.component.clone(),
                started: l.entry.name.clone(),
                recorded: w.name.clone(),
                message: w.record.error.clone().unwrap_or_default(),
            })
            .collect();
        for r in &out {
            self.observer
                .event(&Event::Warning(format!("{}: {}", r.component, r.message)));
        }
        self.share(&written, &[], "the interrupted records")?;
        Ok(out)
    }

    /// Publish `written` (and the state moves `state`) to the store — kept first, so that a
    /// push that fails or is cut short is done by the next command — or, offline, keep them
    /// for the remote they belong to. An error only when the store is there and refuses or
    /// fails; what it was is `what` (for the message).
    fn share(
        &mut self,
        written: &[Written],
        state: &[StateUpdate],
        what: &str,
    ) -> Result<Option<(Published, Vec<Written>)>, WorkflowError> {
        let intent = what == INTENT;
        if written.is_empty() {
            return Ok(None);
        }
        let notes = vec![crate::logs::logs_ref(&self.rules.loaded.deployment.name)];
        if self.options.stores.offline {
            if let Some(remote) = &self.options.stores.later {
                let batch = store::batch(remote, self.tagger(), written, state, notes);
                if let Err(e) = remote.keep(&batch) {
                    self.observer.event(&Event::Warning(format!(
                        "{what} could not be kept for {}: {e}",
                        remote.name
                    )));
                }
            }
            return Ok(None);
        }
        let Some(remote) = self.options.stores.main.clone() else {
            return Ok(None);
        };
        let published = if intent {
            store::announce(&remote, &self.git, self.tagger(), written)?
        } else {
            store::publish(&remote, &self.git, self.tagger(), written, state, notes)?
        };
        for note in remote.take_notes() {
            self.observer.event(&Event::Warning(note));
        }
        // Records that took a new place are read again from here on.
        self.git = GitRepo::discover(&self.project.root)?;
        Ok(Some(published))
    }

    /// Write the intent of `plan` — a `started` record per component that will run — and
    /// publish it under the lease, before any executor starts. When it cannot be written or
    /// published, nothing runs: the records written here are taken back.
    pub fn announce(&mut self, plan: &RolloutPlan) -> Result<Vec<Written>, WorkflowError> {
        let busy = busy_reporter(self.observer);
        let written = record::write_intents(&self.git, plan, &self.runner(), &self.tagger(), &busy)
            .map_err(|source| WorkflowError::IntentNotWritten {
                target: plan.target.clone(),
                why: source.to_string(),
            })?;
        let shared = self.share(&written, &[], INTENT);
        if let Ok(Some((_, published))) = shared {
            // At their places on the store (new ones when others recorded first): the
            // outcomes name these.
            return Ok(published);
        }
        if let Err(e) = shared {
            // Nothing ran: the intent that did not reach the store is taken back here.
            let mut undo: Vec<(String, Option<String>)> = written
                .iter()
                .map(|w| (format!("refs/tags/{}", w.name), None))
                .collect();
            for w in &written {
                let r = &w.record;
                undo.push((
                    crate::contracts::layout::chain_ref(&r.deployment, &r.target, &r.component),
                    r.previous_record.clone(),
                ));
            }
            let undone = self.git.set_refs(&undo);
            return Err(WorkflowError::IntentNotWritten {
                target: plan.target.clone(),
                why: match undone {
                    Ok(()) => e.to_string(),
                    Err(u) => format!("{e} (and taking it back here failed: {u})"),
                },
            });
        }
        Ok(written)
    }

    /// Write the outcome of `runs` — each record completing its intent — with the state refs
    /// of what succeeded, all at once, and keep each component's log with its record.
    pub fn record(
        &mut self,
        plan: RolloutPlan,
        runs: Vec<ComponentRun>,
        intents: &[Written],
        duration_ms: u64,
    ) -> Result<(RolloutReport, Vec<Written>), WorkflowError> {
        let busy = busy_reporter(self.observer);
        let (mut report, written) = record::record(
            &self.git,
            plan,
            runs,
            intents,
            &self.tagger(),
            duration_ms,
            &busy,
        )
        .map_err(|source| WorkflowError::Record { source })?;
        report.log_dir = self.log_dir.clone();
        // Each component's output goes with its record, so any clone can show it.
        let author = crate::git::Author::of(&self.git, &self.request.actor.id);
        for c in &report.components {
            if let (Some(tag), Some(log)) = (&c.tag, c.run.as_ref().and_then(|r| r.log.as_ref()))
                && let Err(e) =
                    crate::logs::keep(&self.git, &report.plan.deployment, tag, log, &author)
            {
                self.observer.event(&Event::Warning(format!(
                    "the log of {} was not kept in git: {e}",
                    c.planned.name
                )));
            }
        }
        Ok((report, written))
    }

    /// One step that runs executors, start to end: the intent written and published, the
    /// executors, the outcome written, then published. The outcome's publishing is returned,
    /// not raised: what ran is recorded here either way.
    fn run_step(
        &mut self,
        plan: RolloutPlan,
    ) -> Result<(RolloutReport, Option<Result<u32, WorkflowError>>), WorkflowError> {
        // What can fail before anything runs is checked first; then the intent; then it runs.
        let prepared = self.prepare(&plan)?;
        // Only what the registries serve is deployed: asked before anything is recorded.
        let registry = crate::registry::Client::from_env();
        for done in super::images::copy(&plan, self.options.stores.offline, &registry)? {
            self.observer.event(&Event::Progress(format!(
                "{}: {} copied to {} ({})",
                done.component,
                done.from,
                done.to,
                if done.copied.already {
                    "it was there already".to_owned()
                } else {
                    format!(
                        "{} blob(s) uploaded, {} bytes; {} mounted; {} present",
                        done.copied.uploaded,
                        done.copied.bytes,
                        done.copied.mounted,
                        done.copied.present
                    )
                }
            )));
        }
        for u in super::images::check(&plan, self.options.stores.offline, &registry)? {
            self.observer.event(&Event::Warning(format!(
                "{}: {} was not checked in its registry: {}",
                u.component, u.image, u.why
            )));
        }
        let intents = self.announce(&plan)?;
        let started = Instant::now();
        let runs = self.run_prepared(&prepared)?;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (report, written) = match self.record(plan, runs, &intents, duration_ms) {
            Ok(r) => r,
            Err(e) => {
                // The intent is on the store: the next rollout records this one as
                // interrupted. Say so with the error.
                return Err(WorkflowError::OutcomeNotWritten { why: e.to_string() });
            }
        };
        let state = store::state_moves(&report);
        let published = match self.share(&written, &state, "the records") {
            // The records are on the store; a state ref someone moved there by hand while
            // this ran keeps their value, and the rollout says so and fails.
            Ok(Some((p, _))) => Some(match p.kept_theirs.first() {
                Some(t) => Err(WorkflowError::MovedOnRemote {
                    refname: t.refname.clone(),
                    remote: self
                        .options
                        .stores
                        .main
                        .as_ref()
                        .map_or_else(String::new, |r| r.name.clone()),
                    expected: t.expected.clone(),
                    found: t.found.clone(),
                    detail: format!(
                        "the records of this rollout were published; {} state ref(s) kept the value found there",
                        p.kept_theirs.len()
                    ),
                }),
                None => Ok(p.attempts),
            }),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        };
        Ok((report, published))
    }

    /// After failed verifications with `on_failure: rollback`: deploy again the commit each
    /// such component last ran successfully on this target (read from its records that count,
    /// never from a state ref alone), planned through the same gates as a rollback from the
    /// commit the failed apply left running (so an approval rule, a rejection or a pending
    /// policy stops it), and recorded as a rollback naming the failed commit. Nothing is
    /// retried when the rollback fails too, and nothing starts after a signal.
    fn roll_back_unverified(
        &mut self,
        report: &RolloutReport,
    ) -> Result<Vec<AutomaticRollback>, WorkflowError> {
        let planner = Planner {
            project: self.project,
            rules: &self.rules,
            git: &self.git,
            evaluator: self.evaluator,
        };
        let ran = super::ran::Ran::counting(
            &self.git,
            &report.plan.deployment,
            planner.counting(&report.plan.target),
        );
        let wanted = rollback::wanted(report, &|component, skip| {
            ran.last_deployed(&report.plan.target, component, skip)
        })?;
        drop(ran);
        let target = report.plan.target.as_str();
        let mut out = Vec::new();
        if !wanted.interrupted.is_empty() {
            out.push(AutomaticRollback::interrupted(wanted.interrupted.clone()));
        }
        for group in wanted.groups {
            let Some(before) = group.before.clone() else {
                out.push(AutomaticRollback::nothing_before(group, target));
                continue;
            };
            if before == group.failed {
                out.push(AutomaticRollback::same_commit(group));
                continue;
            }
            let request = rollback::request(&self.request, &before, &group, &wanted.failed_records);
            let mut plan = self.plan_for(&request)?;
            if plan.blocked().is_some() {
                out.push(AutomaticRollback::blocked(
                    group.components,
                    &before,
                    target,
                    plan.blockers,
                ));
                continue;
            }
            // The state refs are moved by compare-and-swap from what they held when this
            // rollout began: if anything else moved them meanwhile, nothing runs.
            let mut moved = Vec::new();
            for c in plan.components.iter_mut() {
                if let Some(was) = wanted.state_before.get(&c.name) {
                    c.current = was.clone();
                    let now = self
                        .git
                        .deployed_commit(&plan.deployment, &plan.target, &c.name)?;
                    if now != *was {
                        moved.push(c.name.clone());
                    }
                }
            }
            if !moved.is_empty() {
                out.push(AutomaticRollback::moved(
                    group.components,
                    &moved,
                    &before,
                    target,
                ));
                continue;
            }
            out.push(self.run_rollback(plan, group, &before, Replan::AutomaticRollback));
        }
        Ok(out)
    }

    /// Run a planned rollback of `group` to `before` (after a failed verification, or a
    /// canary's abort) and say how it went. What went wrong here is reported with the
    /// rollback; the records of what it reverts are published already.
    fn run_rollback(
        &mut self,
        plan: RolloutPlan,
        group: rollback::Group,
        before: &str,
        why: Replan,
    ) -> AutomaticRollback {
        self.observer.event(&Event::Planned {
            plan: &plan,
            after: Some(why),
        });
        match self.run_step(plan) {
            Ok((r, Some(Err(e)))) => {
                let mut a = AutomaticRollback::ran(group, before, r);
                a.message
                    .push_str(&format!(" (its records did not reach the store: {e})"));
                a
            }
            Ok((r, _)) => AutomaticRollback::ran(group, before, r),
            Err(e) => AutomaticRollback::stopped(group.components, before, &e),
        }
    }

    /// A note when the work tree's deployment file is not what this rollout uses: what is
    /// deployed comes from the deployed commit, the rules from the trusted ref.
    fn work_tree_note(&self, plan: &RolloutPlan) -> Option<String> {
        if self.rules.origin.is_local() {
            return None;
        }
        // The first file (the deployment file, one it imports or includes) whose work tree
        // copy differs, or a file the work tree's copy imports and this one does not (a new
        // file a glob picks up).
        let work_files = self.work_tree.processed.files();
        let changed = |loaded: &crate::config::LoadedDeployment| {
            let used = loaded.processed.files();
            let mut paths: Vec<String> = loaded
                .processed
                .contents()
                .into_iter()
                .rev()
                .filter(|(path, bytes)| {
                    std::fs::read(self.project.root.join(path)).ok().as_deref() != Some(*bytes)
                })
                .map(|(path, _)| path.display().to_string())
                .collect();
            paths.extend(
                work_files
                    .iter()
                    .filter(|f| !used.contains(f))
                    .map(|f| f.display().to_string()),
            );
            paths.dedup();
            match paths.len() {
                0 => None,
                1 => Some(format!("{} differs", paths[0])),
                _ => Some(format!("{} differ", paths.join(", "))),
            }
        };
        std::fs::metadata(self.project.root.join(&self.rules.loaded.file)).ok()?;
        let mut notes = Vec::new();
        let settings = crate::config::project::SETTINGS_FILE;
        let trusted_settings = std::fs::read(self.rules.project.root.join(settings)).ok();
        let work_settings = std::fs::read(self.project.root.join(settings)).ok();
        if trusted_settings != work_settings {
            notes.push(format!(
                "{settings} here (work tree or checked-out commit) differs from the one on {}: gates and approvers come from there",
                self.rules.origin.source
            ));
        }
        if let Some(commit) = &plan.commit
            && let Some(deployed) = plan.configs.get(commit)
            && let Some(shown) = changed(deployed)
        {
            let shown = shown.replacen(" differ", " in the work tree differ", 1);
            notes.push(format!(
                "{shown} from commit {} being deployed: the rollout deploys the committed files (commit your change to deploy it)",
                crate::git::short(commit)
            ));
        }
        // Files of the project edited but not committed (scripts, modules, charts, the
        // deployment file): the executors run the deployed commit's export, never these. And a
        // detached HEAD deploys a commit on no branch.
        if let Some(commit) = &plan.commit
            && self.git.peel("HEAD").as_deref() == Some(commit.as_str())
        {
            let rel = crate::workflow::trust::project_in_repo(&self.git, &self.project.root);
            let scope = if rel.as_os_str().is_empty() {
                ".".to_owned()
            } else {
                rel.display().to_string()
            };
            let edited = self.git.work_tree_changes(commit, &[scope]);
            if !edited.is_empty() {
                let shown = if edited.len() > 10 {
                    format!("{} and {} more", edited[..10].join(", "), edited.len() - 10)
                } else {
                    edited.join(", ")
                };
                notes.push(format!(
                    "{shown} {} uncommitted changes the rollout does not deploy (it runs commit {} as committed): commit them to deploy them",
                    crate::plural::has_have(edited.len()),
                    crate::git::short(commit)
                ));
            }
            if self.git.head_detached() {
                notes.push(format!(
                    "HEAD is detached at {} (no branch): that commit is what is deployed",
                    crate::git::short(commit)
                ));
            }
        }
        if let Some(shown) = changed(&self.rules.loaded) {
            let shown = shown.replacen(
                " differ",
                " here (work tree or checked-out commit) differ",
                1,
            );
            notes.push(format!(
                "{shown} from the one on {}: gates, promotion and approval rules come from there",
                self.rules.origin.source
            ));
        }
        (!notes.is_empty()).then(|| notes.join("\n"))
    }

    /// The whole rollout: rollouts found interrupted recorded, plan, approvals, the intent,
    /// run, record, publish.
    pub fn drive(mut self) -> Result<RolloutOutcome, WorkflowError> {
        if !self.options.plan_only {
            self.reconcile()?;
        }
        let mut continuing = None;
        match self.options.canary {
            CanaryMode::Begin => self.refuse_open_canary()?,
            CanaryMode::Continue => {
                let open = self.open_canary()?;
                self.request = open.next(&self.request);
                continuing = Some(open);
            }
            CanaryMode::Abort => return self.abort_open(),
        }
        let plan = self.plan()?;
        if let Some(open) = &continuing {
            self.check_not_moved(open, &plan)?;
        }
        if let Some(note) = self.work_tree_note(&plan) {
            self.observer.event(&Event::Warning(note));
        }
        self.observer.event(&Event::Planned {
            plan: &plan,
            after: None,
        });
        let plan = self.await_approvals(plan)?;
        if plan.blocked().is_some() && !self.options.plan_only {
            return Ok(RolloutOutcome::Blocked(plan));
        }
        if plan.is_noop() {
            let backfilled = self
                .options
                .stores
                .main
                .as_ref()
                .map(|r| store::publish_missing(r, &self.git, &plan.deployment, &plan.target));
            return Ok(RolloutOutcome::NothingToDo { plan, backfilled });
        }
        let mut plan = plan;
        if self.options.plan_only {
            let runs = self.execute(&plan)?;
            return Ok(RolloutOutcome::Planned { plan, runs });
        }
        self.build_first(&mut plan)?;
        if plan.canary.is_some() {
            return self.drive_canary(plan);
        }
        let (mut report, published) = self.run_step(plan)?;
        report.automatic_rollbacks = self.roll_back_unverified(&report)?;
        Ok(self.finish(report, published))
    }

    /// After the last step: older records archived when asked, the lease released.
    fn finish(
        &mut self,
        report: RolloutReport,
        published: Option<Result<u32, WorkflowError>>,
    ) -> RolloutOutcome {
        // Only records that reached the store are folded there.
        let archived = match &published {
            Some(Err(_)) => None,
            _ => crate::workflow::archive::after_rollout(
                self.project,
                &self.rules.loaded,
                &self.options.stores,
                &self.request.actor.id,
            )
            .transpose(),
        };
        if let Some(lease) = self.lease.as_mut()
            && let Err(warning) = lease.release(self.observer)
        {
            self.observer.event(&Event::Warning(warning));
        }
        RolloutOutcome::Done {
            report: Box::new(report),
            published,
            archived,
        }
    }

    /// The canary open on this target, for `--continue`: an error when there is none.
    fn open_canary(&self) -> Result<super::canary::OpenCanary, WorkflowError> {
        let d = &self.rules.loaded.deployment;
        let names: Vec<String> = d.components.iter().map(|c| c.name.to_owned()).collect();
        super::canary::open(&self.git, &d.name, &self.request.target, &names)?.ok_or_else(|| {
            WorkflowError::NoCanary {
                target: self.request.target.clone(),
                why: "no component's newest record is a canary step".into(),
            }
        })
    }

    /// A new rollout of components a canary is trying out waits for that canary to end.
    fn refuse_open_canary(&self) -> Result<(), WorkflowError> {
        let d = &self.rules.loaded.deployment;
        let names: Vec<String> = d.components.iter().map(|c| c.name.to_owned()).collect();
        let Some(open) = super::canary::open(&self.git, &d.name, &self.request.target, &names)?
        else {
            return Ok(());
        };
        let asked = &self.request.components;
        let touched = asked.is_empty()
            || open.components.iter().any(|c| {
                asked
                    .iter()
                    .any(|a| *a == c.name || a.rsplit_once('/').is_some_and(|(_, n)| n == c.name))
            });
        if !touched || self.request.reverting.is_some() {
            return Ok(());
        }
        Err(WorkflowError::CanaryOpen {
            deployment: open.deployment,
            target: open.target,
            step: open.step,
            steps: open.steps,
            weight: open.weight,
            components: open.components.into_iter().map(|c| c.name).collect(),
        })
    }

    /// Run `plan`, a canary's step, and the steps after it while they succeed and the gates
    /// allow: stopping after `--until-step`, at a gate that is pending or denies (the canary
    /// stays open), at the last step (the state refs move), or at a failure (its components
    /// go back to what ran before, at weight 0).
    fn drive_canary(mut self, plan: RolloutPlan) -> Result<RolloutOutcome, WorkflowError> {
        use super::model::pause;
        use super::model::{CanaryPause, CanaryProgress, CanaryStepRun};
        let base = self.request.clone();
        let mut progress = CanaryProgress {
            steps: plan.canary.as_ref().map_or(0, |c| c.steps),
            ..CanaryProgress::default()
        };
        let mut plan = plan;
        loop {
            let Some(step) = plan.canary.clone() else {
                return Err(WorkflowError::Internal {
                    what: "a canary step was planned without its canary".into(),
                });
            };
            let (mut report, published) = self.run_step(plan)?;
            progress.ran.push(CanaryStepRun {
                step: step.step,
                weight: step.weight,
                success: report.success,
                analysis: report
                    .components
                    .iter()
                    .filter_map(|c| c.run.as_ref()?.analysis.as_ref())
                    .find(|a| !a.passed)
                    .or_else(|| {
                        report
                            .components
                            .iter()
                            .find_map(|c| c.run.as_ref()?.analysis.as_ref())
                    })
                    .map(|a| crate::contracts::record::VerificationRecord {
                        passed: a.passed,
                        attempts: a.attempts,
                    }),
                deployment_id: report.deployment_id.clone(),
            });
            // Components deployed at once keep their own verification rollbacks.
            let mut at_once = report.clone();
            at_once
                .components
                .retain(|c| !step.components.contains(&c.planned.name));
            report.automatic_rollbacks = self.roll_back_unverified(&at_once)?;
            let stop = |mut report: RolloutReport, progress: CanaryProgress| {
                report.canary = Some(progress);
                report
            };
            if !report.success {
                if !report.interrupted {
                    progress.aborted_at = Some(step.step);
                    let failed: Vec<String> = report
                        .components
                        .iter()
                        .filter(|c| step.components.contains(&c.planned.name))
                        .filter_map(|c| c.tag.clone())
                        .collect();
                    let aborted = self.abort_canary(&step, &failed)?;
                    report.automatic_rollbacks.extend(aborted);
                }
                return Ok(self.finish(stop(report, progress), published));
            }
            if matches!(published, Some(Err(_))) || step.is_last() {
                return Ok(self.finish(stop(report, progress), published));
            }
            if self.options.until_step.is_some_and(|n| step.step >= n) {
                progress.paused = Some(CanaryPause {
                    after_step: step.step,
                    reason: pause::UNTIL_STEP.into(),
                    blockers: Vec::new(),
                });
                return Ok(self.finish(stop(report, progress), published));
            }
            // The next step, judged again by the gates as they stand now.
            self.git = GitRepo::discover(&self.project.root)?;
            let open = super::canary::open(
                &self.git,
                &report.plan.deployment,
                &report.plan.target,
                &step.components,
            )?
            .ok_or_else(|| WorkflowError::Internal {
                what: "the canary step just recorded is not found in the records".into(),
            })?;
            self.request = open.next(&base);
            let next = self.replan(Replan::CanaryStep)?;
            let mut next = self.await_approvals(next)?;
            if let Some(v) = next.blocked() {
                progress.paused = Some(CanaryPause {
                    after_step: step.step,
                    reason: if v == Verdict::Deny {
                        pause::DENIED
                    } else {
                        pause::PENDING
                    }
                    .into(),
                    blockers: next.blockers.clone(),
                });
                return Ok(self.finish(stop(report, progress), published));
            }
            self.check_not_moved(&open, &next)?;
            self.build_first(&mut next)?;
            plan = next;
        }
    }

    /// `--continue` deploys the commits the canary tried out, or nothing.
    fn check_not_moved(
        &self,
        open: &super::canary::OpenCanary,
        plan: &RolloutPlan,
    ) -> Result<(), WorkflowError> {
        let moved = open.moved(&plan.components);
        if moved.is_empty() && plan.canary.is_some() {
            return Ok(());
        }
        Err(WorkflowError::CanaryMoved {
            target: plan.target.clone(),
            source_target: open.promoted_from.clone().unwrap_or_default(),
            components: if moved.is_empty() {
                open.components.iter().map(|c| c.name.clone()).collect()
            } else {
                moved
            },
        })
    }

    /// `--abort`: the open canary's components back to what ran before.
    fn abort_open(mut self) -> Result<RolloutOutcome, WorkflowError> {
        let open = self.open_canary()?;
        let records = open.records.clone();
        let aborted = self.abort_groups(&open, &records)?;
        let Some(first) = aborted.iter().find_map(|a| a.report.clone()) else {
            // Nothing ran (a gate blocked it, or nothing ran before): said as an error with
            // what each group met.
            return Err(WorkflowError::NoCanary {
                target: open.target.clone(),
                why: aborted
                    .iter()
                    .map(|a| a.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        };
        let mut report = *first;
        report.canary = Some(super::model::CanaryProgress {
            steps: open.steps,
            ran: Vec::new(),
            paused: None,
            aborted_at: Some(open.step),
        });
        report.success = aborted
            .iter()
            .all(|a| a.result == super::model::RollbackResult::RolledBack);
        report.automatic_rollbacks = aborted;
        Ok(self.finish(report, None))
    }

    /// After a failed step: the canary's components back to what ran before.
    fn abort_canary(
        &mut self,
        step: &super::model::CanaryPlan,
        failed_records: &[String],
    ) -> Result<Vec<AutomaticRollback>, WorkflowError> {
        self.git = GitRepo::discover(&self.project.root)?;
        let d = self.rules.loaded.deployment.name.clone();
        let target = self.request.target.clone();
        let mut open = super::canary::OpenCanary {
            deployment: d.clone(),
            target: target.clone(),
            step: step.step,
            steps: step.steps,
            weight: step.weight,
            first: step.first.clone(),
            components: Vec::new(),
            promoted_from: None,
            records: failed_records.to_vec(),
            at: String::new(),
        };
        for name in &step.components {
            // What the step tried out is in its failure record; what ran before, in the
            // state ref, which no step moved.
            let Some(planned) = self.request_plan_commit(name) else {
                continue;
            };
            open.components.push(super::canary::OpenComponent {
                name: name.clone(),
                commit: planned,
                before: self.git.deployed_commit(&d, &target, name)?,
            });
        }
        self.abort_groups(&open, failed_records)
    }

    /// The commit the newest record of `name` on this target names (the step just run).
    fn request_plan_commit(&self, name: &str) -> Option<String> {
        let d = &self.rules.loaded.deployment.name;
        let mut walk = self.git.chain(d, &self.request.target, name).ok()?;
        walk.next_link().ok()?.map(|l| l.record.git_sha.clone())
    }

    /// Take each group of `open`'s components back to the commit it ran before, judged as a
    /// rollback from what it tried out (weight 0 for the executor); recorded as rollbacks.
    fn abort_groups(
        &mut self,
        open: &super::canary::OpenCanary,
        records: &[String],
    ) -> Result<Vec<AutomaticRollback>, WorkflowError> {
        let target = open.target.clone();
        let mut out = Vec::new();
        for (before, names) in open.abort_groups() {
            let group = rollback::Group {
                before: before.clone(),
                failed: open.commit_of(&names),
                components: names.clone(),
            };
            let Some(before) = before else {
                out.push(AutomaticRollback::nothing_before(group, &target));
                continue;
            };
            let request =
                super::canary::abort_request(&self.request, open, &before, &names, records);
            let mut plan = self.plan_for(&request)?;
            if plan.blocked().is_some() {
                out.push(AutomaticRollback::blocked(
                    names,
                    &before,
                    &target,
                    plan.blockers,
                ));
                continue;
            }
            // The state refs never moved during the canary: the rollback starts from them.
            for c in plan.components.iter_mut() {
                c.current = self
                    .git
                    .deployed_commit(&plan.deployment, &plan.target, &c.name)?;
            }
            out.push(self.run_rollback(plan, group, &before, Replan::CanaryAbort));
        }
        Ok(out)
    }
}

/// What a record write that finds a ref locked by another process says while it waits.
fn busy_reporter(observer: &dyn Observer) -> impl Fn(&str, std::time::Duration) + '_ {
    move |refname: &str, wait: std::time::Duration| {
        observer.event(&Event::Warning(format!(
            "{refname} is locked by another git process (e.g. `git gc` holding packed-refs.lock, or another rollout in this clone); waiting up to {}s for it",
            wait.as_secs()
        )))
    }
}
