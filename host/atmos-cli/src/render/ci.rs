//! What CI systems show besides the log. Every rollout outcome — deployed, failed, denied,
//! pending, timed out waiting, planned, nothing to do, or an error before anything ran — gets
//! a Markdown summary (appended to `$GITHUB_STEP_SUMMARY` when set) and, in GitHub Actions,
//! annotations: `::error::` for what blocks or failed, `::warning::` for warnings and pending
//! approvals. Executor output is folded per component (`::group::` in GitHub Actions, collapsible
//! sections in GitLab CI) by [`super::live::Live`].

use atmos_core::contracts::decision::Verdict;
use atmos_core::executor::run::Outcome;
use atmos_core::git::short;
use atmos_core::workflow::rollout::{RolloutOutcome, RolloutPlan};

use super::Output;

/// The CI system atmos runs in, from the variables each sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// `GITHUB_ACTIONS=true`.
    GitHub,
    /// `GITLAB_CI=true`.
    GitLab,
}

impl System {
    /// The system of this process's environment, if any.
    pub fn detect() -> Option<System> {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| v == "true");
        if set("GITHUB_ACTIONS") {
            Some(System::GitHub)
        } else if set("GITLAB_CI") {
            Some(System::GitLab)
        } else {
            None
        }
    }

    /// The line that opens a folded section titled `title`.
    pub fn open(self, name: &str, title: &str) -> String {
        match self {
            System::GitHub => format!("::group::{}\n", escape_data(title)),
            System::GitLab => format!(
                "\x1b[0Ksection_start:{}:{}[collapsed=true]\r\x1b[0K{title}\n",
                unix_now(),
                section_name(name)
            ),
        }
    }

    /// The line that closes the section `open` began.
    pub fn close(self, name: &str) -> String {
        match self {
            System::GitHub => "::endgroup::\n".to_owned(),
            System::GitLab => format!(
                "\x1b[0Ksection_end:{}:{}\r\x1b[0K\n",
                unix_now(),
                section_name(name)
            ),
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// GitLab section names allow letters, digits, `_`, `.` and `-`.
fn section_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("atmos_{clean}")
}

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// `error` or `warning`.
    pub level: &'static str,
    /// Short title (the gate, or the component).
    pub title: String,
    /// The message; may span lines.
    pub message: String,
}

impl Annotation {
    fn error(title: impl Into<String>, message: impl Into<String>) -> Annotation {
        Annotation {
            level: "error",
            title: title.into(),
            message: message.into(),
        }
    }

    fn warning(title: impl Into<String>, message: impl Into<String>) -> Annotation {
        Annotation {
            level: "warning",
            title: title.into(),
            message: message.into(),
        }
    }

    /// The GitHub workflow command. Data is escaped so that a message (which may quote a
    /// commit subject or a policy's text) can never end the command or start another one.
    pub fn command(&self) -> String {
        format!(
            "::{} title={}::{}\n",
            self.level,
            escape_property(&self.title),
            escape_data(&self.message)
        )
    }
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A rollout's result as CI shows it: a Markdown summary and annotations.
#[derive(Debug, Clone)]
pub struct CiReport {
    /// The step summary.
    pub markdown: String,
    /// What to annotate.
    pub annotations: Vec<Annotation>,
}

/// What the rollout command knows besides its outcome.
pub struct Context<'a> {
    /// `--timeout` when approvals were waited for (`--wait-for-approval`).
    pub waited: Option<&'a str>,
    /// The command to run the same rollout again (shown under pending approvals).
    pub rerun: String,
}

/// The report of a rollout that reached an outcome.
pub fn for_outcome(outcome: &RolloutOutcome, cx: &Context<'_>) -> CiReport {
    let mut annotations = Vec::new();
    let (plan, headline) = match outcome {
        RolloutOutcome::Blocked(plan) => {
            let head = match plan.blocked() {
                Some(Verdict::Deny) => format!("❌ {}: denied (exit 3)", title(plan)),
                _ => match cx.waited {
                    Some(t) => format!(
                        "⏳ {}: still waiting for approval after {t} (exit 4)",
                        title(plan)
                    ),
                    None => format!("⏳ {}: waiting for approval (exit 4)", title(plan)),
                },
            };
            (plan, head)
        }
        RolloutOutcome::NothingToDo { plan, .. } => (
            plan,
            format!(
                "✅ {}: nothing to do, already runs {}",
                title(plan),
                plan.commit
                    .as_deref()
                    .map(short)
                    .unwrap_or("the source's commits")
            ),
        ),
        RolloutOutcome::Planned { plan, runs } => {
            let failed = runs
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
                .count();
            let head = if failed > 0 {
                format!("❌ {}: plan — {failed} plan command(s) failed", title(plan))
            } else {
                format!("📝 {}: plan (nothing was changed)", title(plan))
            };
            (plan, head)
        }
        RolloutOutcome::Done {
            report, published, ..
        } => {
            let head = if !report.success {
                format!("❌ {}: failed", title(&report.plan))
            } else if matches!(published, Some(Err(_))) {
                format!(
                    "⚠️ {}: deployed, but the records did not reach the remote",
                    title(&report.plan)
                )
            } else {
                format!("✅ {}: deployed", title(&report.plan))
            };
            (&report.plan, head)
        }
    };
    let mut md = format!("### {headline}\n\n{}\n", provenance(plan));

    // The components.
    match outcome {
        RolloutOutcome::Done {
            report, published, ..
        } => {
            md.push_str("\n| component | from | to | result |\n|---|---|---|---|\n");
            for c in &report.components {
                let result = match c.run.as_ref().map(|r| &r.outcome) {
                    Some(Outcome::Succeeded) => "deployed".to_owned(),
                    Some(Outcome::Failed { error, .. }) => {
                        annotations.push(Annotation::error(
                            format!("{} failed", c.planned.name),
                            error.clone(),
                        ));
                        format!("failed: {error}")
                    }
                    Some(Outcome::Interrupted) => "interrupted".to_owned(),
                    Some(Outcome::Skipped { reason }) => format!("skipped: {reason}"),
                    None => "no change".to_owned(),
                };
                md.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    cell(&c.planned.name),
                    c.planned.current.as_deref().map(short).unwrap_or("-"),
                    short(&c.planned.new),
                    cell(&result)
                ));
            }
            if let Some(Err(e)) = published {
                annotations.push(Annotation::error(
                    "records not published",
                    format!("{e}; they are pushed by the next rollout or approval that reaches the remote"),
                ));
            }
            if let Some(id) = &report.deployment_id {
                md.push_str(&format!("\nDeployment ID: `{id}`\n"));
            }
        }
        RolloutOutcome::Planned { plan, runs } => {
            md.push_str("\n| component | from | to | plan |\n|---|---|---|---|\n");
            for c in &plan.components {
                let run = runs.iter().find(|r| r.name == c.name);
                let result = match (c.run, run.map(|r| &r.outcome)) {
                    (false, _) => "no change".to_owned(),
                    (true, Some(Outcome::Failed { error, .. })) => {
                        annotations
                            .push(Annotation::error(format!("{} plan failed", c.name), error));
                        format!("plan failed: {error}")
                    }
                    (true, Some(Outcome::Skipped { reason })) => format!("would deploy ({reason})"),
                    (true, _) => "would deploy".to_owned(),
                };
                md.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    cell(&c.name),
                    c.current.as_deref().map(short).unwrap_or("-"),
                    short(&c.new),
                    cell(&result)
                ));
            }
        }
        RolloutOutcome::Blocked(_) | RolloutOutcome::NothingToDo { .. } => {}
    }

    // What stands in the way, and the command that clears each.
    if !plan.blockers.is_empty() {
        md.push_str("\n**What stands in the way**\n\n");
        for b in &plan.blockers {
            let what = match b.result {
                Verdict::Deny => "denied",
                _ => "pending",
            };
            md.push_str(&format!(
                "- `{}` {what}: {}\n",
                b.source,
                inline(&b.message)
            ));
            for fix in &b.fixes {
                md.push_str(&format!("  - to clear it: `{}`\n", code(fix)));
            }
            for n in &b.not_offered {
                md.push_str(&format!("  - not offered: {}\n", inline(n)));
            }
            let mut text = b.message.clone();
            if let Some(fix) = b.fixes.first() {
                text.push_str(&format!("\nTo clear it: {fix}"));
            }
            annotations.push(match b.result {
                Verdict::Deny => Annotation::error(b.source.clone(), text),
                _ => Annotation::warning(b.source.clone(), text),
            });
        }
        if plan.blocked() == Some(Verdict::Pending) {
            if let Some(check) = &plan.approvals
                && !check.eligible.is_empty()
            {
                md.push_str(&format!(
                    "\nMay still approve: {}\n",
                    inline(&check.eligible.join(", "))
                ));
            }
            for e in plan.approvals.iter().flat_map(|c| &c.excluded) {
                md.push_str(&format!(
                    "\nNot eligible: {} ({})\n",
                    inline(&e.who),
                    inline(&e.why)
                ));
            }
            md.push_str(&format!(
                "\nThen run the rollout again: `{}`\n",
                code(&cx.rerun)
            ));
        }
    }

    // Every decision, as the log shows them, folded.
    if !plan.decisions.is_empty() {
        md.push_str(&format!(
            "\n<details><summary>All gate decisions ({})</summary>\n\n",
            plan.decisions.len()
        ));
        for d in &plan.decisions {
            md.push_str(&format!(
                "- `{}` {}: {}\n",
                d.source,
                d.result.as_str(),
                inline(&d.message)
            ));
            if d.result == Verdict::Warn {
                annotations.push(Annotation::warning(d.source.clone(), d.message.clone()));
            }
        }
        md.push_str("\n</details>\n");
    }
    CiReport {
        markdown: md,
        annotations,
    }
}

/// The report of a rollout that stopped with an error before reaching an outcome (a held
/// lock, an unreachable remote, a bad flag).
pub fn for_error(
    deployment: &str,
    target: Option<&str>,
    message: &str,
    hint: Option<&str>,
    exit: i32,
) -> CiReport {
    let what = match target {
        Some(t) => format!("{} → {}", inline(deployment), inline(t)),
        None => inline(deployment),
    };
    let mut markdown = format!(
        "### ❌ {what}: error (exit {exit})\n\n```\n{}\n```\n",
        message.replace("```", "'''")
    );
    let mut text = message.to_owned();
    if let Some(h) = hint {
        markdown.push_str(&format!("\n{}\n", inline(h)));
        text.push_str(&format!("\n{h}"));
    }
    CiReport {
        markdown,
        annotations: vec![Annotation::error(format!("atmos: {what}"), text)],
    }
}

fn title(plan: &RolloutPlan) -> String {
    format!("{} → {}", plan.deployment, plan.target)
}

fn provenance(plan: &RolloutPlan) -> String {
    let what = match (&plan.source_target, &plan.commit) {
        (Some(src), _) => format!("promotion from {src}"),
        (None, Some(c)) => format!("commit `{}`", short(c)),
        (None, None) => "rollout".to_owned(),
    };
    format!("{what}, by {}", inline(&plan.actor.id))
}

/// Text safe inside one Markdown line: no line break (CommonMark also ends a line at a
/// carriage return), no code span to close, no HTML to open.
fn inline(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
        .replace('`', "'")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text safe inside a code span (where HTML is not interpreted, and entities would show).
fn code(s: &str) -> String {
    s.replace(['\n', '\r'], " ").replace('`', "'")
}

/// Text safe inside a table cell.
fn cell(s: &str) -> String {
    inline(s).replace('|', "\\|")
}

/// Show `report` to the CI system: append the summary to `$GITHUB_STEP_SUMMARY` when set (an
/// unwritable path is a warning, never a failure of the rollout) and, in GitHub Actions, print
/// the annotations (to stderr, so that `--format json` on stdout stays a document).
pub fn publish(report: &CiReport, out: &Output) {
    if let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY")
        && !path.is_empty()
    {
        use std::io::Write;
        // Only a regular file (or none yet): opening a FIFO nobody reads would wait forever.
        let special = std::fs::metadata(&path).is_ok_and(|m| !m.is_file());
        if special {
            out.warn(&format!(
                "the step summary was not written: {path} (GITHUB_STEP_SUMMARY) is not a regular file"
            ));
        }
        let written = if special {
            Ok(())
        } else {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(format!("{}\n", report.markdown).as_bytes()))
        };
        if let Err(e) = written {
            out.warn(&format!(
                "could not write the step summary to {path} (GITHUB_STEP_SUMMARY): {e}"
            ));
        }
    }
    if System::detect() == Some(System::GitHub) {
        let text: String = report.annotations.iter().map(Annotation::command).collect();
        out.eprint(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_data_cannot_start_another_command() {
        let a = Annotation::error("hook:ticket, v2", "no ticket\n::add-mask::secret\r50% done");
        assert_eq!(
            a.command(),
            "::error title=hook%3Aticket%2C v2::no ticket%0A::add-mask::secret%0D50%25 done\n"
        );
        assert_eq!(a.command().lines().count(), 1);
    }

    #[test]
    fn gitlab_section_names_are_restricted() {
        assert_eq!(section_name("api/v2 x"), "atmos_api_v2_x");
    }
}
