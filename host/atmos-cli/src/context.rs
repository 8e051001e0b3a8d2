//! What every command gets: where to start, how to write, and the shared steps of opening the
//! project, its repository and the gate evaluator.

use std::path::PathBuf;

use atmos_core::config::{LoadedDeployment, Project};
use atmos_core::contracts::output::{Document, ErrorBody, ErrorDocument};
use atmos_core::gates::isolation::{Evaluator, InProcess, Isolated};
use atmos_core::git::GitRepo;
use atmos_core::git::tags::Unparseable;

use crate::cli::{Format, GlobalArgs};
use crate::failure::Failure;
use crate::render::{Output, Style, diagnostics};

/// Settings from the global flags.
pub struct Context {
    /// `--chdir`, or the working directory.
    pub start: PathBuf,
    /// Rendering settings.
    pub out: Output,
}

impl Context {
    /// Settings from the global flags.
    pub fn new(global: &GlobalArgs) -> Context {
        let start = match &global.chdir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        Context {
            start,
            out: Output {
                format: global.format,
                out_style: Style::stdout(global.color),
                err_style: Style::stderr(global.color),
                quiet: global.quiet,
                verbose: global.verbose,
            },
        }
    }

    /// The project containing the start directory.
    pub fn project(&self) -> Result<Project, Failure> {
        Ok(Project::discover(&self.start)?)
    }

    /// Load one deployment of the project.
    pub fn deployment(&self, name: &str) -> Result<(Project, LoadedDeployment), Failure> {
        let project = self.project()?;
        let loaded = project.load(name)?;
        Ok((project, loaded))
    }

    /// Before a read: fetch the records from `--remote`; in a clone that never fetched
    /// atmos's records and holds no state refs (a plain `git clone` brings the history tags,
    /// not `refs/atmos/*`),
    /// fetch them from the store (atmos.yaml `git.remote`, else the clone's only remote) unless
    /// `--offline`, saying so — and when that fails, read what the clone holds with a warning;
    /// otherwise note how old the local view is.
    pub fn refresh(
        &self,
        project: &Project,
        fetch: &crate::cli::FetchFirst,
        deployment: Option<&str>,
    ) -> Result<(), Failure> {
        if let Some(remote) = fetch.remote.as_deref() {
            atmos_core::workflow::sync::fetch(project, Some(remote), deployment)?;
            return Ok(());
        }
        let Ok(git) = GitRepo::discover(&project.root) else {
            return Ok(());
        };
        let Some(name) = atmos_core::workflow::store::default_remote(project, &git) else {
            return Ok(());
        };
        let age = atmos_core::workflow::sync::view_age(&git, &name);
        // A plain clone: never fetched by atmos, and no state refs at all (in scope). A clone
        // that holds some is read as it is: a fetch would replace what it holds.
        let state = match deployment {
            Some(d) => format!("{}/{d}/", atmos_core::contracts::layout::STATE_PREFIX),
            None => format!("{}/", atmos_core::contracts::layout::STATE_PREFIX),
        };
        let plain = age.is_none() && git.refs().list(&state).is_ok_and(|l| l.is_empty());
        if plain && !fetch.offline {
            match atmos_core::workflow::sync::fetch(project, Some(&name), deployment) {
                Ok(report) => {
                    for w in &report.warnings {
                        self.out.warn(w);
                    }
                    if !self.out.quiet {
                        self.out.eprint(&format!(
                            "{} fetched the records from {name} first: this clone had never fetched them (--offline reads only what it holds)\n",
                            self.out.err_style.dim("note:")
                        ));
                    }
                }
                Err(e) => self.out.warn(&format!(
                    "could not fetch the records from {name} ({e}); showing what this clone holds, which may be behind"
                )),
            }
            return Ok(());
        }
        // The age of the view is said where atmos.yaml names the store (a clone whose only
        // remote is a forge it never deploys through is not told about it on every read).
        if self.out.quiet || project.settings.git.remote.is_none() {
            return Ok(());
        }
        let age = match age {
            Some(age) => {
                let now = jiff::Timestamp::now();
                let then = now
                    .checked_sub(jiff::SignedDuration::from_secs(
                        i64::try_from(age.as_secs()).unwrap_or(i64::MAX),
                    ))
                    .unwrap_or(now);
                format!(
                    "fetched {}",
                    crate::render::time::ago(&then.to_string(), now)
                )
            }
            None => "never fetched by atmos here".to_owned(),
        };
        self.out.eprint(&format!(
            "{} the local view of {name} ({age}); --remote {name} or `atmos deployment fetch` brings it up to date\n",
            self.out.err_style.dim("note:")
        ));
        Ok(())
    }

    /// The git repository of the project.
    pub fn git(&self, project: &Project) -> Result<GitRepo, Failure> {
        Ok(GitRepo::discover(&project.root)?)
    }

    /// The git repository of the project, when it has one (state then reads as empty).
    pub fn optional_git(&self, project: &Project) -> Option<GitRepo> {
        GitRepo::discover(&project.root).ok()
    }

    /// The key that signs records and proves who deploys: `--signing-key`, else the key in
    /// `ATMOS_SIGNING_KEY`, else git's `user.signingkey` when `gpg.format` is ssh (as
    /// `git tag -s` would use).
    pub fn signing_key(
        &self,
        explicit: Option<&std::path::Path>,
        git: &GitRepo,
    ) -> Option<atmos_core::signing::Key> {
        let ssh = git.config_string("gpg.format").as_deref() == Some("ssh");
        atmos_core::signing::configured_key(
            explicit,
            ssh.then(|| git.config_string("user.signingkey")).flatten(),
        )
    }

    /// [`Context::evaluator`], with the data files `--data` names loaded beside the bound
    /// policies' data.
    pub fn evaluator_with_data(
        &self,
        data: &[std::path::PathBuf],
    ) -> Result<Box<dyn Evaluator>, Failure> {
        let extra = data_files(data)?;
        Ok(if extra.is_empty() {
            self.evaluator()
        } else {
            Box::new(WithData {
                inner: self.evaluator(),
                extra,
            })
        })
    }

    /// How gates are evaluated: in a child `atmos __gates` process, so that a policy that
    /// crashes the evaluator denies instead of killing the command.
    pub fn evaluator(&self) -> Box<dyn Evaluator> {
        match isolated() {
            Some(i) => Box::new(i),
            None => Box::new(InProcess),
        }
    }

    /// Refuse `--format` values a command does not support.
    pub fn require_format(&self, allowed: &[Format], command: &str) -> Result<(), Failure> {
        if allowed.contains(&self.out.format) {
            return Ok(());
        }
        let names: Vec<String> = allowed.iter().map(|f| f.name().to_owned()).collect();
        Err(Failure::usage(
            format!(
                "`{command}` does not support --format {}",
                self.out.format.name()
            ),
            Some(format!("use one of: {}", names.join(", "))),
        ))
    }

    /// Print `report` as a document for `--format json|yaml`; false for the human formats.
    pub fn print_document<T: Document>(&self, report: &T) -> Result<bool, Failure> {
        match self.out.structured(report) {
            Some(text) => {
                self.out.print(&text)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Warn about tags in the namespace that are not atmos records.
    /// Say that what runs was read from the records (`derived`: what), this clone having no
    /// state refs there.
    pub fn warn_from_records(&self, derived: &[String], deployment: Option<&str>) {
        if derived.is_empty() {
            return;
        }
        self.out.warn(&format!(
            "this clone has no state refs for {} (a plain `git clone` brings the records, not refs/atmos/): each commit shown is the newest record that deployed one; `atmos deployment fetch{}` brings the state refs",
            derived.join(", "),
            deployment.map(|d| format!(" {d}")).unwrap_or_default()
        ));
    }

    pub fn warn_unparseable(&self, list: &[Unparseable]) {
        let (missing, list): (Vec<&Unparseable>, Vec<&Unparseable>) =
            list.iter().partition(|u| u.is_missing());
        if !missing.is_empty() {
            let mut text = format!(
                "{} archived record file{} of the ledger {} missing from this clone and {} not read: what is shown lacks {}",
                missing.len(),
                atmos_core::plural::s(missing.len()),
                if missing.len() == 1 { "is" } else { "are" },
                if missing.len() == 1 { "was" } else { "were" },
                if missing.len() == 1 {
                    "its records"
                } else {
                    "their records"
                },
            );
            for u in &missing {
                text.push_str(&format!("\n  {}: {}", u.tag, u.reason));
            }
            self.out.warn(&text);
        }
        if list.is_empty() {
            return;
        }
        let one = list.len() == 1;
        let mut text = format!(
            "{} tag{} under atmos/deployments/ {} not atmos records and {} skipped:",
            list.len(),
            if one { "" } else { "s" },
            if one { "is" } else { "are" },
            if one { "was" } else { "were" },
        );
        for u in list {
            text.push_str(&format!("\n  {}: {}", u.tag, u.reason));
        }
        self.out.warn(&text);
    }

    /// Tell the user why the command stopped: stderr always, and a JSON/YAML error document
    /// on stdout when a structured format was asked for, so CI can parse it.
    pub fn report_failure(&self, failure: &Failure) {
        let Failure::Error(error) = failure else {
            return;
        };
        let message = error.to_string();
        let hint = error.hint();
        let diags = error.diagnostics();
        let _ = self.print_document(&ErrorDocument {
            error: ErrorBody {
                message: message.clone(),
                exit_code: error.exit().code(),
                hint: hint.clone(),
                diagnostics: diags.to_vec(),
            },
        });
        let style = &self.out.err_style;
        let mut text = String::new();
        if !diags.is_empty() {
            text.push_str(&diagnostics::render_all(diags, style));
            text.push('\n');
        }
        // Messages quote what people typed (a target, a sha): shown, never obeyed.
        let message = crate::render::table::inert(&message);
        text.push_str(&format!("{} {message}\n", style.error("error:")));
        if let Some(hint) = hint.map(|h| crate::render::table::inert(&h)) {
            for (i, line) in hint.lines().enumerate() {
                let lead = if i == 0 { "  = help:" } else { "         " };
                text.push_str(&format!("{} {line}\n", style.accent(lead)));
            }
        }
        self.out.eprint(&text);
    }
}

/// The isolated evaluator: this very binary with the hidden `__gates` command.
pub fn isolated() -> Option<Isolated> {
    std::env::current_exe().ok().map(|program| Isolated {
        program,
        evaluate_args: vec!["__gates".into(), "evaluate".into()],
        test_args: vec!["__gates".into(), "test".into()],
    })
}

/// The bound policies plus data files given on the command line (`--data`).
struct WithData {
    inner: Box<dyn Evaluator>,
    extra: Vec<String>,
}

impl Evaluator for WithData {
    fn evaluate(
        &self,
        root: &std::path::Path,
        paths: &[String],
        timeout: std::time::Duration,
        input: &serde_json::Value,
    ) -> Vec<atmos_core::contracts::Decision> {
        let mut all = paths.to_vec();
        all.extend(self.extra.iter().cloned());
        self.inner.evaluate(root, &all, timeout, input)
    }
}

/// The JSON/YAML files `--data` names (folders walked), as absolute paths.
fn data_files(paths: &[std::path::PathBuf]) -> Result<Vec<String>, Failure> {
    let is_data = |p: &std::path::Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"))
    };
    let mut out = Vec::new();
    for p in paths {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        if abs.is_file() && is_data(&abs) {
            out.push(abs.display().to_string());
        } else if abs.is_dir() {
            let mut stack = vec![abs];
            while let Some(dir) = stack.pop() {
                let mut entries: Vec<_> = std::fs::read_dir(&dir)
                    .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default();
                entries.sort();
                for e in entries {
                    if e.is_dir() {
                        stack.push(e);
                    } else if is_data(&e) {
                        out.push(e.display().to_string());
                    }
                }
            }
        } else {
            return Err(Failure::usage(
                format!(
                    "--data {}: not a JSON or YAML file, nor a folder",
                    p.display()
                ),
                Some("e.g. --data gates/settings.yaml or --data test-data/".into()),
            ));
        }
    }
    Ok(out)
}

/// An observer that prints a workflow's warnings and nothing else (for commands without
/// live progress).
pub struct Warnings<'a>(&'a Output);

impl atmos_core::workflow::Observer for Warnings<'_> {
    fn event(&self, event: &atmos_core::workflow::Event<'_>) {
        if let atmos_core::workflow::Event::Warning(w) = event {
            self.0.warn(w);
        }
    }
}

impl Context {
    /// An observer printing only warnings.
    pub fn warnings(&self) -> Warnings<'_> {
        Warnings(&self.out)
    }
}

impl Context {
    /// The rollout request of `what` (shared by `rollout` and `policy eval`, which evaluates
    /// the same rollout): its target resolved, who deploys, its key, and the time it is judged
    /// at (`now`, an RFC 3339 time, for a plan; else the real time).
    pub fn rollout_request(
        &self,
        what: &crate::cli::RolloutWhat,
        loaded: &LoadedDeployment,
        git: &GitRepo,
        now: Option<&str>,
        verb: &'static str,
    ) -> Result<atmos_core::workflow::rollout::RolloutRequest, Failure> {
        let env = atmos_core::identity::process_env;
        Ok(atmos_core::workflow::rollout::RolloutRequest {
            target: atmos_core::workflow::resolve_target(
                &loaded.deployment,
                what.target.as_deref(),
                verb,
            )?,
            source: what.source(),
            components: what.components.clone(),
            skip_promotion_check: what.skip_promotion_check,
            force: false,
            reverting: None,
            canary: None,
            metadata: what.metadata.iter().cloned().collect(),
            actor: atmos_core::identity::actor(&env, git.config_string("user.email")),
            build_id: atmos_core::identity::build_id(&env),
            started_at: match now {
                Some(now) => now.parse::<jiff::Timestamp>().map_err(|e| {
                    Failure::usage(
                        format!("--now {now} is not an RFC 3339 time: {e}"),
                        Some("e.g. --now 2026-12-24T10:00:00Z".into()),
                    )
                })?,
                None => jiff::Timestamp::now(),
            },
            signing_key: self.signing_key(what.signing_key.as_deref(), git),
            proof: None,
            context: Default::default(),
        })
    }
}
