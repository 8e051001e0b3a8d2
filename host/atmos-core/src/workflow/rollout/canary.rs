//! Canary rollouts: a target's `strategy.canary` applies the components it selects in steps
//! of rising weight, each step its own rollout (an intent, then an outcome, through the same
//! gates, which see `input.canary`). A step but the last ends with a `canary` record (the
//! state ref keeps naming the commit that ran before); the last ends with `success` and
//! moves it. A canary left between steps — paused with `--until-step`, stopped by a pending
//! gate, or its runner killed — is *open*: [`open`] finds it from the records alone, so
//! `--continue` and `--abort` work from any clone. An abort takes the components back to
//! what the target ran before, at weight 0, recorded as a rollback.
//!
//! Components new to the target deploy at once (there is nothing to split traffic with), as
//! do rollbacks to a commit the target ran: a canary tries out code the target has not run.

use schemars::JsonSchema;
use serde::Serialize;

pub use super::model::{CanaryPlan, CanaryRequest};
use super::model::{Change, PlannedComponent, RolloutRequest, Source};
use crate::config::strategy::Canary;
use crate::contracts::Status;
use crate::contracts::record::CanaryRecord;
use crate::git::GitRepo;
use crate::workflow::error::WorkflowError;

/// Whether a component's change is tried out in steps: new code for a target that runs
/// something already.
fn steps_through(c: &PlannedComponent) -> bool {
    c.run && matches!(c.change, Change::Changed | Change::RollForward)
}

/// The canary step the plan of `request` enters, given the target's `strategy` (the trusted
/// rules'), the planned `components` and the plan's own rollout id: `None` when the target
/// has no canary, nothing it selects changes, or the request is an automatic rollback.
pub fn plan_step(
    strategy: Option<&Canary>,
    components: &[PlannedComponent],
    request: &RolloutRequest,
    rollout_id: &str,
) -> Result<Option<CanaryPlan>, WorkflowError> {
    let Some(strategy) = strategy else {
        if let Some(CanaryRequest::Step { .. } | CanaryRequest::Abort { .. }) = &request.canary {
            return Err(WorkflowError::NoCanary {
                target: request.target.clone(),
                why: "its strategy (on the trusted ref) no longer declares a canary".into(),
            });
        }
        return Ok(None);
    };
    let (step, first, aborting) = match &request.canary {
        Some(CanaryRequest::Step { step, first }) => (*step, first.clone(), false),
        Some(CanaryRequest::Abort { step, first }) => (*step, first.clone(), true),
        None if request.reverting.is_some() => return Ok(None),
        None => (1, rollout_id.to_owned(), false),
    };
    let selected: Vec<String> = components
        .iter()
        .filter(|c| strategy.selects(c.kind.as_str(), &c.name))
        .filter(|c| aborting || request.canary.is_some() || steps_through(c))
        .map(|c| c.name.clone())
        .collect();
    if selected.is_empty() {
        return Ok(None);
    }
    let steps = strategy.len();
    let weight = if aborting {
        0
    } else {
        strategy
            .weight(step)
            .ok_or_else(|| WorkflowError::NoCanary {
                target: request.target.clone(),
                why: format!(
                    "step {step} is past the strategy's {steps} step(s) (the trusted rules changed since the canary began?)"
                ),
            })?
    };
    Ok(Some(CanaryPlan {
        step,
        steps,
        weight,
        aborting,
        components: selected,
        first,
        strategy: strategy.clone(),
    }))
}

/// A canary between steps, found in the records.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OpenCanary {
    /// Deployment.
    pub deployment: String,
    /// Target.
    pub target: String,
    /// The last step that finished.
    pub step: u32,
    /// Steps in all.
    pub steps: u32,
    /// Its weight.
    pub weight: u8,
    /// The first step's rollout id.
    pub first: String,
    /// `(component, commit it is trying out, commit its state ref names)`.
    pub components: Vec<OpenComponent>,
    /// The source target, when the canary is a promotion.
    pub promoted_from: Option<String>,
    /// The `canary` records of the last step.
    pub records: Vec<String>,
    /// When the last step finished (RFC 3339).
    pub at: String,
}

/// One component of an open canary.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OpenComponent {
    /// Name.
    pub name: String,
    /// The commit tried out.
    pub commit: String,
    /// What its state ref names (what ran before), if anything.
    pub before: Option<String>,
}

/// The canary open on `target` among `components`, if any: each component whose newest
/// record (past `started` and `interrupted` ones — a step that never finished) is a
/// `canary` step. Steps of two canaries at once are not possible under the target's lock;
/// the newest first-step id wins if records say otherwise.
pub fn open(
    git: &GitRepo,
    deployment: &str,
    target: &str,
    components: &[String],
) -> Result<Option<OpenCanary>, WorkflowError> {
    let mut found: Vec<(crate::git::chain::Link, Option<String>)> = Vec::new();
    for c in components {
        let mut walk = git.chain(deployment, target, c)?;
        while let Some(link) = walk.next_link()? {
            match link.record.status {
                Status::Started | Status::Interrupted => continue,
                Status::Canary if link.record.canary.is_some() => {
                    let before = git.deployed_commit(deployment, target, c)?;
                    found.push((link, before));
                }
                _ => {}
            }
            break;
        }
    }
    let Some(newest) = found
        .iter()
        .max_by(|a, b| a.0.record.timestamp.cmp(&b.0.record.timestamp))
    else {
        return Ok(None);
    };
    let first = newest
        .0
        .record
        .canary
        .as_ref()
        .map(|c| c.first.clone())
        .unwrap_or_default();
    found.retain(|(l, _)| l.record.canary.as_ref().is_some_and(|c| c.first == first));
    let lead = &found[0].0;
    let step = found
        .iter()
        .filter_map(|(l, _)| l.record.canary.as_ref().map(|c| c.step))
        .min()
        .unwrap_or(1);
    let rec = lead.record.canary.clone().unwrap_or(CanaryRecord {
        step,
        steps: step,
        weight: 0,
        analysis: None,
        first: first.clone(),
    });
    Ok(Some(OpenCanary {
        deployment: deployment.to_owned(),
        target: target.to_owned(),
        step,
        steps: rec.steps,
        weight: found
            .iter()
            .filter_map(|(l, _)| l.record.canary.as_ref())
            .find(|c| c.step == step)
            .map_or(rec.weight, |c| c.weight),
        first,
        promoted_from: lead.record.promoted_from.clone(),
        at: lead
            .record
            .recorded_at
            .clone()
            .unwrap_or_else(|| lead.record.timestamp.clone()),
        records: found.iter().map(|(l, _)| l.entry.name.clone()).collect(),
        components: found
            .into_iter()
            .map(|(l, before)| OpenComponent {
                name: l.record.component.clone(),
                commit: l.record.git_sha.clone(),
                before,
            })
            .collect(),
    }))
}

impl OpenCanary {
    /// The request that enters the next step: the same commits (named, so a source target
    /// that moved on meanwhile changes nothing), the same components, judged again by the
    /// gates as they stand.
    pub fn next(&self, base: &RolloutRequest) -> RolloutRequest {
        RolloutRequest {
            source: self.source(),
            components: self.components.iter().map(|c| c.name.clone()).collect(),
            force: false,
            canary: Some(CanaryRequest::Step {
                step: self.step + 1,
                first: self.first.clone(),
            }),
            ..base.clone()
        }
    }

    /// What the canary deploys: its one commit, or (a promotion of several commits) what the
    /// source runs, which [`OpenCanary::moved`] then checks.
    fn source(&self) -> Source {
        let first = &self.components[0].commit;
        match &self.promoted_from {
            Some(from) if self.components.iter().any(|c| c.commit != *first) => {
                Source::Promote(from.clone())
            }
            _ => Source::Commit(first.clone()),
        }
    }

    /// Components whose planned commit is not the one the canary tried out (a promotion
    /// source that moved on): continuing would deploy something else.
    pub fn moved(&self, planned: &[PlannedComponent]) -> Vec<String> {
        self.components
            .iter()
            .filter(|c| {
                planned
                    .iter()
                    .find(|p| p.name == c.name)
                    .is_some_and(|p| p.new != c.commit)
            })
            .map(|c| c.name.clone())
            .collect()
    }

    /// The groups an abort takes back: each commit that ran before, with its components
    /// (`None`: nothing ran there before).
    pub fn abort_groups(&self) -> Vec<(Option<String>, Vec<String>)> {
        let mut out: Vec<(Option<String>, Vec<String>)> = Vec::new();
        for c in &self.components {
            match out.iter_mut().find(|(b, _)| *b == c.before) {
                Some((_, names)) => names.push(c.name.clone()),
                None => out.push((c.before.clone(), vec![c.name.clone()])),
            }
        }
        out
    }

    /// The commit the named components try out (the first one's, when they differ).
    pub fn commit_of(&self, names: &[String]) -> String {
        self.components
            .iter()
            .find(|c| names.contains(&c.name))
            .map_or_else(String::new, |c| c.commit.clone())
    }
}

/// The request that takes `names` back to `before` after the canary `open` stopped (aborted
/// by hand, or its step failed): judged as a rollback from the commit it tried out, at
/// weight 0.
pub fn abort_request(
    base: &RolloutRequest,
    open: &OpenCanary,
    before: &str,
    names: &[String],
    failed_records: &[String],
) -> RolloutRequest {
    RolloutRequest {
        source: Source::Commit(before.to_owned()),
        components: names.to_vec(),
        force: false,
        skip_promotion_check: false,
        started_at: jiff::Timestamp::now(),
        canary: Some(CanaryRequest::Abort {
            step: open.step,
            first: open.first.clone(),
        }),
        reverting: Some(Box::new(super::model::Reverting {
            commit: open.commit_of(names),
            tags: failed_records.to_vec(),
        })),
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ComponentType;

    fn planned(name: &str, change: Change) -> PlannedComponent {
        PlannedComponent {
            name: name.into(),
            kind: ComponentType::Script,
            depends_on: Vec::new(),
            current: Some("old".into()),
            new: "new".into(),
            change,
            run: change != Change::Unchanged,
            source_record: None,
        }
    }

    fn strategy(components: &[&str]) -> Canary {
        Canary {
            steps: vec![10, 50, 100],
            analysis: None,
            pause: std::time::Duration::ZERO,
            components: components.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn request() -> RolloutRequest {
        RolloutRequest {
            target: "prod".into(),
            source: Source::Head,
            components: Vec::new(),
            skip_promotion_check: false,
            force: false,
            metadata: Default::default(),
            actor: crate::identity::Actor {
                id: "dev@example.com".into(),
                source: "test".into(),
            },
            build_id: None,
            started_at: jiff::Timestamp::UNIX_EPOCH,
            signing_key: None,
            proof: None,
            context: Default::default(),
            reverting: None,
            canary: None,
        }
    }

    #[test]
    fn a_fresh_rollout_enters_step_one_with_what_changes() {
        let comps = [
            planned("api", Change::Changed),
            planned("db", Change::Changed),
            planned("web", Change::New),
            planned("old", Change::Rollback),
            planned("same", Change::Unchanged),
        ];
        let p = plan_step(Some(&strategy(&[])), &comps, &request(), "r1")
            .expect("ok")
            .expect("ok");
        assert_eq!((p.step, p.steps, p.weight), (1, 3, 10));
        assert_eq!(p.components, ["api", "db"]);
        assert_eq!(p.first, "r1");
        let only_api = plan_step(Some(&strategy(&["api"])), &comps, &request(), "r1")
            .expect("ok")
            .expect("ok");
        assert_eq!(only_api.components, ["api"]);
        assert!(
            plan_step(None, &comps, &request(), "r1")
                .expect("ok")
                .is_none()
        );
        let nothing = [planned("web", Change::New)];
        assert!(
            plan_step(Some(&strategy(&[])), &nothing, &request(), "r1")
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn a_later_step_or_an_abort_keeps_the_first_id() {
        let comps = [planned("api", Change::Changed)];
        let mut r = request();
        r.canary = Some(CanaryRequest::Step {
            step: 2,
            first: "r1".into(),
        });
        let p = plan_step(Some(&strategy(&[])), &comps, &r, "r2")
            .expect("ok")
            .expect("ok");
        assert_eq!((p.step, p.weight, p.first.as_str()), (2, 50, "r1"));
        assert!(!p.is_last());
        r.canary = Some(CanaryRequest::Abort {
            step: 2,
            first: "r1".into(),
        });
        let a = plan_step(Some(&strategy(&[])), &comps, &r, "r3")
            .expect("ok")
            .expect("ok");
        assert_eq!((a.weight, a.aborting), (0, true));
        r.canary = Some(CanaryRequest::Step {
            step: 4,
            first: "r1".into(),
        });
        assert!(plan_step(Some(&strategy(&[])), &comps, &r, "r2").is_err());
        assert!(plan_step(None, &comps, &r, "r2").is_err());
    }
}
