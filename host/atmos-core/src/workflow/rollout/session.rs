//! One rollout, start to end: [`RolloutSession::begin`] takes the target's lock and reads the
//! shared remote, [`plan`](RolloutSession::plan) decides, [`await_approvals`](RolloutSession::await_approvals)
//! confirms or waits when only approvals are missing,
//! [`execute`](RolloutSession::execute) runs the executors, [`record`](RolloutSession::record)
//! writes the history tags and state refs, and [`publish`](RolloutSession::publish) pushes
//! them by compare-and-swap. [`RolloutSession::drive`] runs the whole sequence.

use std::time::{Duration, Instant};

use super::model::{AutomaticRollback, RolloutPlan, RolloutReport, RolloutRequest};
use super::plan::Planner;
use super::wait::{self, ApprovalWait};
use super::{prepare, record, rollback};
use crate::config::Project;
use crate::config::model::ApprovalMethod;
use crate::contracts::Verdict;
use crate::executor::Step;
use crate::executor::run::{ComponentRun, Outcome, run_until};
use crate::exit::Exit;
use crate::gates::isolation::Evaluator;
use crate::git::GitRepo;
use crate::git::record::Tagger;
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
        archived: Option<Result<crate::workflow::archive::DeploymentArchive, WorkflowError>>,
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
                if !report.success || matches!(published, Some(Err(_))) {
                    Exit::Failed
                } else {
                    Exit::Done
                }
            }
        }
    }
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
        if let Some(r) = &options.stores.main {
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
        // What the previous holder pushed just before releasing is read again.
        if lease.is_some()
            && let Some(r) = &options.stores.main
        {
            r.fetch()?;
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
            request.signing_key.as_deref(),
            &rules,
        ));
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
        )?;
        self.log_dir = Some(prepared.log_dir.clone());
        let observer = self.observer;
        // Renewed in the background; if someone else takes the target's lock anyway, the
        // components not finished yet are stopped like on a signal.
        let lost = self.lease.as_ref().map(LeaseGuard::lost_flag);
        let lost_now = || {
            lost.as_ref()
                .is_some_and(|l| l.lock().map(|l| l.is_some()).unwrap_or(true))
        };
        let runs = run_until(
            &prepared,
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
                    plan.artifacts.insert(
                        name,
                        super::model::Artifact {
                            image: b.image.clone(),
                            digest: b.digest.clone(),
                            from: super::plan::artifacts::from::BUILD.to_owned(),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Write the history tags and state refs of the runs, all at once.
    pub fn record(
        &mut self,
        plan: RolloutPlan,
        runs: Vec<ComponentRun>,
        duration_ms: u64,
    ) -> Result<RolloutReport, WorkflowError> {
        let tagger = Tagger {
            name: self
                .git
                .config_string("user.name")
                .unwrap_or_else(|| "atmos".to_owned()),
            email: self
                .git
                .config_string("user.email")
                .unwrap_or_else(|| self.request.actor.id.clone()),
            signing_key: self.request.signing_key.clone(),
        };
        let mut report = record::record(&self.git, plan, runs, &tagger, duration_ms)
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
        Ok(report)
    }

    /// After failed verifications with `on_failure: rollback`: deploy again the commit each
    /// such component last ran successfully on this target (read from its records, never
    /// from a state ref alone), planned through the same gates as a rollback from the commit
    /// the failed apply left running (so an approval rule, a rejection or a pending policy
    /// stops it), and recorded as a rollback naming the failed commit. Nothing is retried
    /// when the rollback fails too, and nothing starts after a signal.
    fn roll_back_unverified(
        &mut self,
        report: &RolloutReport,
    ) -> Result<Vec<AutomaticRollback>, WorkflowError> {
        let wanted = rollback::wanted(report, &|component, skip| {
            self.last_success(&report.plan, component, skip)
        })?;
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
            self.observer.event(&Event::Planned {
                plan: &plan,
                after: Some(Replan::AutomaticRollback),
            });
            let started = Instant::now();
            // What went wrong here is reported with the rollback; the failed rollout's own
            // records are still published.
            let rolled = self.execute(&plan).and_then(|runs| {
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                self.record(plan, runs, ms)
            });
            out.push(match rolled {
                Ok(r) => AutomaticRollback::ran(group, &before, r),
                Err(e) => AutomaticRollback::stopped(group.components, &before, &e),
            });
        }
        Ok(out)
    }

    /// The commit of the newest success or rollback record of `component` on the plan's
    /// target, other than the record `skip` (the failed one).
    fn last_success(
        &self,
        plan: &RolloutPlan,
        component: &str,
        skip: Option<&str>,
    ) -> Result<Option<String>, WorkflowError> {
        let (tags, _) = self
            .git
            .history_tags(&plan.deployment, Some(&plan.target))?;
        for e in tags.iter().rev().filter(|e| e.component == component) {
            if Some(e.name.as_str()) == skip {
                continue;
            }
            if let Ok(r) = self.git.read_record(e, &plan.deployment)
                && r.status != crate::contracts::Status::Failure
            {
                return Ok(Some(r.git_sha));
            }
        }
        Ok(None)
    }

    /// Push the records to the remote by compare-and-swap; `None` without a remote.
    pub fn publish(&mut self, report: &RolloutReport) -> Option<Result<u32, WorkflowError>> {
        if self.options.stores.offline {
            // Kept to publish when the remote is next reached, before anything reads it.
            if let Some(remote) = &self.options.stores.later
                && let Err(e) = store::keep_for_later(remote, &self.git, report)
            {
                self.observer.event(&Event::Warning(format!(
                    "the records could not be kept for {}: {e}",
                    remote.name
                )));
            }
            return None;
        }
        let remote = self.options.stores.main.as_ref()?;
        let published = store::publish(remote, &self.git, report);
        if published.is_ok()
            && let Err(e) = remote.push_notes(&crate::logs::logs_ref(&report.plan.deployment))
        {
            self.observer.event(&Event::Warning(format!(
                "the rollout's logs did not reach {}: {e}; the next rollout pushes them",
                remote.name
            )));
        }
        Some(published)
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

    /// The whole rollout: plan, approvals, run, record, publish.
    pub fn drive(mut self) -> Result<RolloutOutcome, WorkflowError> {
        let plan = self.plan()?;
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
        if !self.options.plan_only {
            self.build_first(&mut plan)?;
        }
        let started = Instant::now();
        let runs = self.execute(&plan)?;
        if self.options.plan_only {
            return Ok(RolloutOutcome::Planned { plan, runs });
        }
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut report = self.record(plan, runs, duration_ms)?;
        report.automatic_rollbacks = self.roll_back_unverified(&report)?;
        let published = self.publish(&report);
        if let Some(lease) = self.lease.as_mut()
            && let Err(warning) = lease.release(self.observer)
        {
            self.observer.event(&Event::Warning(warning));
        }
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
        Ok(RolloutOutcome::Done {
            report: Box::new(report),
            published,
            archived,
        })
    }
}
