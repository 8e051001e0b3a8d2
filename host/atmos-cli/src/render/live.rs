//! Live progress of a workflow: its events rendered as they happen, to stdout for tables and
//! to stderr when stdout carries JSON or YAML; and the terminal prompt of a manual approval.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;

use atmos_core::executor::run::{Event as ExecutorEvent, Outcome};
use atmos_core::git::short;
use atmos_core::workflow::events::{ManualConfirmation, WaitEvent};
use atmos_core::workflow::rollout::wait::confirmation_summary;
use atmos_core::workflow::{Event, Observer, Replan};

use super::{Output, Style, ci, rollout, seconds};

/// Renders events; one per command run.
pub struct Live<'a> {
    out: &'a Output,
    to_stderr: bool,
    /// The style of the stream progress goes to.
    pub style: Style,
    plan_only: bool,
    /// `--timeout` as typed, to say what ran out.
    pub timeout_flag: Option<String>,
    lock: Mutex<()>,
    /// In CI, executor output is folded per component.
    ci: Option<ci::System>,
    groups: Mutex<Groups>,
}

/// Folding executor output per component in CI: a component alone in its wave streams
/// inside its open section; components running side by side are held back and shown whole,
/// each in its own section, when they finish (sections cannot interleave).
#[derive(Default)]
struct Groups {
    alone: bool,
    open: Option<String>,
    held: std::collections::HashMap<String, String>,
}

impl<'a> Live<'a> {
    /// Progress for `out`; `plan_only` titles the plan "Would deploy".
    pub fn new(out: &'a Output, plan_only: bool) -> Live<'a> {
        let to_stderr = out.is_structured();
        Live {
            out,
            to_stderr,
            style: if to_stderr {
                out.err_style
            } else {
                out.out_style
            },
            plan_only,
            timeout_flag: None,
            lock: Mutex::new(()),
            ci: ci::System::detect(),
            groups: Mutex::new(Groups::default()),
        }
    }

    /// Write progress text (nothing with `-q`). A closed pipe must not stop a rollout halfway:
    /// progress is best effort, the logs keep everything.
    pub fn text(&self, text: &str) {
        if self.out.quiet || text.is_empty() {
            return;
        }
        let _guard = self.lock.lock();
        if self.to_stderr {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }

    /// The executor's event as shown, folded per component in CI.
    fn executor(&self, event: &ExecutorEvent) -> String {
        let text = self.executor_lines(event);
        let Some(system) = self.ci else {
            return text;
        };
        let Ok(mut g) = self.groups.lock() else {
            return text;
        };
        match event {
            ExecutorEvent::Wave { components, .. } => {
                g.alone = components.len() == 1;
                text
            }
            ExecutorEvent::Command { component, .. }
            | ExecutorEvent::Output { component, .. }
            | ExecutorEvent::Verifying { component, .. }
            | ExecutorEvent::Pausing { component, .. }
            | ExecutorEvent::Analysing { component, .. } => {
                if !g.alone {
                    g.held.entry(component.clone()).or_default().push_str(&text);
                    return String::new();
                }
                if g.open.as_deref() == Some(component) {
                    return text;
                }
                let mut out = g.open.take().map(|c| system.close(&c)).unwrap_or_default();
                out.push_str(&system.open(component, component));
                g.open = Some(component.clone());
                out + &text
            }
            ExecutorEvent::Finished { component, .. } => {
                let mut out = String::new();
                if g.open.as_deref() == Some(component) {
                    g.open = None;
                    out.push_str(&system.close(component));
                } else if let Some(held) = g.held.remove(component) {
                    out.push_str(&system.open(component, component));
                    out.push_str(&held);
                    out.push_str(&system.close(component));
                }
                out + &text
            }
            ExecutorEvent::Started { .. } => text,
        }
    }

    fn executor_lines(&self, event: &ExecutorEvent) -> String {
        let style = self.style;
        match event {
            ExecutorEvent::Wave {
                index,
                total,
                components,
            } => format!(
                "\n{} {}\n",
                style.bold(&format!("Wave {index}/{total}:")),
                components.join(", ")
            ),
            ExecutorEvent::Started { .. } => String::new(),
            ExecutorEvent::Command { component, command } => {
                style.dim(&format!("  {component} │ $ {command}\n"))
            }
            ExecutorEvent::Verifying {
                component,
                attempt,
                attempts,
                command,
            } => style.dim(&format!(
                "  {component} │ verify ({attempt}/{attempts}): $ {command}\n"
            )),
            ExecutorEvent::Pausing {
                component,
                step,
                weight,
                seconds,
            } => style.dim(&format!(
                "  {component} │ canary step {step} at {weight}%: pausing {seconds}s before the analysis\n"
            )),
            ExecutorEvent::Analysing {
                component,
                step,
                weight,
                attempt,
                attempts,
                command,
            } => style.dim(&format!(
                "  {component} │ canary analysis, step {step} at {weight}% ({attempt}/{attempts}): $ {command}\n"
            )),
            ExecutorEvent::Output {
                component, line, ..
            } => format!(
                "  {} {}\n",
                style.dim(&format!("{component} │")),
                // A carriage return would start a new line for a log reader, without the
                // prefix (and could issue a CI workflow command).
                line.replace('\r', "\\r")
            ),
            ExecutorEvent::Finished {
                component,
                outcome,
                duration_ms,
            } => match outcome {
                Outcome::Succeeded => {
                    format!(
                        "{} {component} ({})\n",
                        style.ok("✓"),
                        seconds(*duration_ms)
                    )
                }
                Outcome::Failed { error, .. } => format!(
                    "{} {component} failed: {error} ({})\n",
                    style.error("✗"),
                    seconds(*duration_ms)
                ),
                Outcome::Interrupted => format!("{} {component} interrupted\n", style.error("✗")),
                Outcome::Skipped { reason } => {
                    format!("{} {component} skipped: {reason}\n", style.dim("-"))
                }
            },
        }
    }

    fn wait(&self, event: &WaitEvent<'_>) -> String {
        match event {
            WaitEvent::Started {
                commit,
                target,
                counted,
                required,
                timeout,
            } => format!(
                "\n… waiting up to {}s for approval of {} for {target} ({counted} of {required} counted so far)\n",
                (timeout.as_millis() + 500) / 1000,
                short(commit),
            ),
            WaitEvent::RemoteUnreadable { remote, error } => {
                format!("… cannot read approvals from {remote}: {error}\n")
            }
            WaitEvent::NewRecords { commit, after } => format!(
                "… new approval records for {} after {}s: checking them\n",
                short(commit),
                after.as_secs()
            ),
            WaitEvent::StillWaiting { commit, left } => format!(
                "… still waiting for approval of {} ({}s left)\n",
                short(commit),
                left.as_secs()
            ),
            WaitEvent::TimedOut {
                commit,
                target,
                waited,
            } => format!(
                "\nTimed out after {} waiting for approval of {} for {target}.\n",
                match &self.timeout_flag {
                    Some(t) => format!("--timeout {t}"),
                    None => format!("{}s", waited.as_secs()),
                },
                short(commit),
            ),
            WaitEvent::NotConfirmed => "Not approved.\n".to_owned(),
        }
    }
}

impl Observer for Live<'_> {
    fn event(&self, event: &Event<'_>) {
        let verbose = self.out.verbose > 0;
        match event {
            Event::LockWaiting { held } => {
                if !self.out.quiet {
                    self.out.eprint(&format!(
                        "… waiting for the lock of {}/{}, held by {} (run {}) until {}\n",
                        held.deployment,
                        held.target,
                        held.holder,
                        held.run.as_deref().unwrap_or("-"),
                        held.expires_at
                    ));
                }
            }
            Event::LockTakenOver { previous: old } => self.out.warn(&format!(
                "took over the expired lock of {}/{} from {} (run {}, {} pid {}, expired {}): that rollout did not finish; its state is what the remote records",
                old.deployment,
                old.target,
                old.holder,
                old.run.as_deref().unwrap_or("-"),
                old.host,
                old.pid,
                old.expires_at
            )),
            Event::Planned { plan, after: None } => {
                self.text(&rollout::header(plan, self.plan_only, &self.style, verbose))
            }
            Event::Planned {
                plan,
                after: Some(Replan::ManualConfirmation),
            } => self.text(&format!(
                "\n{}",
                rollout::header(plan, self.plan_only, &self.style, verbose)
            )),
            Event::Planned {
                plan,
                after: Some(Replan::AutomaticRollback),
            } => self.text(&format!(
                "\n{} {}\n{}",
                self.style.bold("Automatic rollback:"),
                rollout::rollback_summary(plan),
                // What the gates said about it, as for any rollout.
                super::decisions::lines(&plan.decisions, &self.style, verbose)
            )),
            Event::Planned {
                plan,
                after: Some(Replan::CanaryStep),
            } => self.text(&format!(
                "\n{}{}",
                super::canary::plan_line(plan, &self.style).unwrap_or_default(),
                super::decisions::lines(&plan.decisions, &self.style, verbose)
            )),
            Event::Planned {
                plan,
                after: Some(Replan::CanaryAbort),
            } => self.text(&format!(
                "\n{} {}\n{}{}",
                self.style.bold("Canary abort:"),
                super::canary::abort_summary(plan),
                super::canary::plan_line(plan, &self.style).unwrap_or_default(),
                super::decisions::lines(&plan.decisions, &self.style, verbose)
            )),
            Event::Planned {
                plan,
                after: Some(Replan::NewApprovals),
            } => self.text(&super::decisions::lines(
                &plan.decisions,
                &self.style,
                verbose,
            )),
            Event::ApprovalWait(w) => self.text(&self.wait(w)),
            Event::Executor(e) => self.text(&self.executor(e)),
            Event::Warning(w) => self.out.warn(w),
            Event::Progress(p) => self.text(&format!("{p}\n")),
            Event::BuildPlanned(build) => {
                let names: Vec<&str> = build.items.iter().map(|i| i.name.as_str()).collect();
                if !names.is_empty() {
                    self.text(&format!(
                        "\nBuilding {} of {} first (not built yet; built once, deployed everywhere):\n",
                        names.join(", "),
                        atmos_core::git::short(&build.commit)
                    ));
                }
            }
        }
    }

    /// The person at the terminal types the target's name to approve; without a terminal
    /// nobody can answer.
    fn confirm(&self, request: &ManualConfirmation<'_>) -> Option<bool> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let plan = request.plan;
        let prompt = format!(
            "\n{} requires a manual approval.\n  commit:     {}\n  target:     {}\n  components: {}\nType the target name ({}) to approve, anything else to stop: ",
            plan.target,
            request.commit,
            plan.target,
            confirmation_summary(plan).join(", "),
            plan.target
        );
        self.out.eprint(&self.out.err_style.bold(&prompt));
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        Some(answer.trim() == plan.target)
    }
}
