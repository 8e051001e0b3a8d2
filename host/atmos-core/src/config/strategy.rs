//! `targets.<t>.strategy`: how a release reaches a target. One strategy so far, `canary`:
//! the components it selects are applied in steps of increasing weight (percent of traffic or
//! replicas on the new commit; what a weight means is the executor's business), with a pause
//! and an analysis command between steps. [`CanarySettings::parse`] checks steps rising to
//! 100 and durations that parse; `checks` locates its findings in the file.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How long one analysis attempt may run when `timeout` is not set.
pub const DEFAULT_ANALYSIS_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The wait between analysis attempts when `interval` is not set.
pub const DEFAULT_ANALYSIS_INTERVAL: Duration = Duration::from_secs(30);
/// The most steps a canary may have.
pub const MAX_STEPS: usize = 20;
/// The most retries an analysis may ask for.
pub const MAX_RETRIES: u32 = 20;

/// `targets.<t>.strategy`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// Deploy in weighted steps, with an analysis between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySettings>,
}

/// `targets.<t>.strategy.canary`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanarySettings {
    /// Percent on the new commit at each step, rising; the last is 100 (e.g. `[10, 50, 100]`).
    #[schemars(length(min = 1, max = 20), inner(range(min = 1, max = 100)))]
    pub steps: Vec<u32>,
    /// Run after each step but the last (after the pause); exit 0 means healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSettings>,
    /// The wait after each step but the last, before its analysis (default 0s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[smhdw]$"))]
    pub pause: Option<String>,
    /// The components deployed in steps, by name, type (`helmfile`) or `type/name`; all of
    /// the target's when absent. The others deploy at once, with the first step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
}

/// `strategy.canary.analysis`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSettings {
    /// Shell command (`sh -c` in the deployed commit's tree, with the apply's ATMOS_*
    /// variables); exit 0 means healthy.
    #[schemars(length(min = 1))]
    pub command: String,
    /// The longest one attempt may run (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^0*[1-9][0-9]*[smhdw]$"))]
    pub timeout: Option<String>,
    /// Attempts after the first one fails (default 0, at most 20).
    #[serde(default)]
    #[schemars(range(max = 20))]
    pub retries: u32,
    /// The wait between attempts (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[smhdw]$"))]
    pub interval: Option<String>,
}

/// A canary strategy, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    /// Weights, rising, ending at 100.
    pub steps: Vec<u8>,
    /// The analysis between steps.
    pub analysis: Option<Analysis>,
    /// The wait before each analysis.
    pub pause: Duration,
    /// Selectors; empty selects every component.
    pub components: Vec<String>,
}

/// An analysis command, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// Shell command.
    pub command: String,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Between attempts.
    pub interval: Duration,
}

/// What is wrong with a canary strategy: where (a JSON pointer below `strategy/canary`), what,
/// and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Below `…/strategy/canary`, e.g. `/steps`.
    pub at: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

fn duration(at: &'static str, text: Option<&str>) -> Result<Option<Duration>, Problem> {
    text.map(crate::duration::parse)
        .transpose()
        .map_err(|p| Problem {
            at,
            message: p,
            hint: "write a number and a unit: 30s, 10m, 1h".into(),
        })
}

impl CanarySettings {
    /// The strategy, checked: steps rising from 1 to 100, durations that parse.
    pub fn parse(&self) -> Result<Canary, Problem> {
        let steps_problem = |message: String| Problem {
            at: "/steps",
            message,
            hint: "list rising percents ending at 100, e.g. [10, 50, 100]".into(),
        };
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(steps_problem(format!(
                "{} steps: a canary has 1 to {MAX_STEPS}",
                self.steps.len()
            )));
        }
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, w) in self.steps.iter().enumerate() {
            let Some(w) = u8::try_from(*w).ok().filter(|w| (1..=100).contains(w)) else {
                return Err(steps_problem(format!(
                    "step {} is {w}%: a weight is 1 to 100",
                    i + 1
                )));
            };
            if let Some(prev) = steps.last()
                && w <= *prev
            {
                return Err(steps_problem(format!(
                    "step {} is {w}%, not more than step {} ({prev}%): weights rise",
                    i + 1,
                    i
                )));
            }
            steps.push(w);
        }
        if steps.last() != Some(&100) {
            return Err(steps_problem(format!(
                "the last step is {}%: a canary ends with the whole release (100)",
                steps.last().copied().unwrap_or_default()
            )));
        }
        let analysis = match &self.analysis {
            None => None,
            Some(a) => {
                if a.retries > MAX_RETRIES {
                    return Err(Problem {
                        at: "/analysis/retries",
                        message: format!("{} retries is more than {MAX_RETRIES}", a.retries),
                        hint: format!("at most {MAX_RETRIES}; lengthen `interval` instead"),
                    });
                }
                let timeout = duration("/analysis/timeout", a.timeout.as_deref())?
                    .unwrap_or(DEFAULT_ANALYSIS_TIMEOUT);
                if timeout.is_zero() {
                    return Err(Problem {
                        at: "/analysis/timeout",
                        message: "a zero timeout would fail every analysis at once".into(),
                        hint: "use 30s or more".into(),
                    });
                }
                Some(Analysis {
                    command: a.command.clone(),
                    timeout,
                    retries: a.retries,
                    interval: duration("/analysis/interval", a.interval.as_deref())?
                        .unwrap_or(DEFAULT_ANALYSIS_INTERVAL),
                })
            }
        };
        Ok(Canary {
            steps,
            analysis,
            pause: duration("/pause", self.pause.as_deref())?.unwrap_or_default(),
            components: self.components.clone(),
        })
    }
}

impl Canary {
    /// Whether the component `kind/name` is deployed in steps.
    pub fn selects(&self, kind: &str, name: &str) -> bool {
        self.components.is_empty()
            || self
                .components
                .iter()
                .any(|s| selector_matches(s, kind, name))
    }

    /// Steps in all.
    pub fn len(&self) -> u32 {
        u32::try_from(self.steps.len()).unwrap_or(u32::MAX)
    }

    /// Never true: a checked canary has a step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The weight of `step` (counted from 1).
    pub fn weight(&self, step: u32) -> Option<u8> {
        let i = usize::try_from(step.checked_sub(1)?).ok()?;
        self.steps.get(i).copied()
    }
}

/// A selector names a component, a type, or `type/name` (`kind` is the type's key).
pub fn selector_matches(selector: &str, kind: &str, name: &str) -> bool {
    selector == name
        || selector == kind
        || selector
            .split_once('/')
            .is_some_and(|(k, n)| k == kind && n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(steps: &[u32]) -> CanarySettings {
        CanarySettings {
            steps: steps.to_vec(),
            analysis: None,
            pause: None,
            components: Vec::new(),
        }
    }

    #[test]
    fn steps_rise_to_one_hundred() {
        assert_eq!(
            settings(&[10, 50, 100]).parse().expect("ok").steps,
            [10, 50, 100]
        );
        assert_eq!(settings(&[100]).parse().expect("ok").len(), 1);
        for (steps, says) in [
            (&[10, 50][..], "the last step is 50%"),
            (
                &[50, 10, 100][..],
                "step 2 is 10%, not more than step 1 (50%)",
            ),
            (&[0, 100][..], "step 1 is 0%"),
            (&[10, 10, 100][..], "step 2 is 10%"),
            (&[][..], "0 steps"),
            (&[10, 400][..], "step 2 is 400%"),
        ] {
            let p = settings(steps).parse().expect_err("an error");
            assert!(p.message.contains(says), "{steps:?}: {}", p.message);
            assert_eq!(p.at, "/steps");
        }
    }

    #[test]
    fn durations_and_retries_are_checked() {
        let mut s = settings(&[10, 100]);
        s.pause = Some("10x".into());
        assert_eq!(s.parse().expect_err("an error").at, "/pause");
        s.pause = Some("0s".into());
        assert_eq!(s.parse().expect("ok").pause, Duration::ZERO);
        s.analysis = Some(AnalysisSettings {
            command: "true".into(),
            timeout: Some("0s".into()),
            retries: 1,
            interval: None,
        });
        assert_eq!(s.parse().expect_err("an error").at, "/analysis/timeout");
        s.analysis.as_mut().expect("ok").timeout = None;
        s.analysis.as_mut().expect("ok").retries = 21;
        assert_eq!(s.parse().expect_err("an error").at, "/analysis/retries");
        s.analysis.as_mut().expect("ok").retries = 2;
        let a = s.parse().expect("ok").analysis.expect("ok");
        assert_eq!(
            (a.timeout, a.interval),
            (DEFAULT_ANALYSIS_TIMEOUT, DEFAULT_ANALYSIS_INTERVAL)
        );
    }

    #[test]
    fn selectors_name_a_component_a_type_or_both() {
        let mut c = settings(&[100]).parse().expect("ok");
        assert!(c.selects("script", "api"));
        c.components = vec!["helmfile".into(), "script/api".into()];
        assert!(c.selects("helmfile", "web"));
        assert!(c.selects("script", "api"));
        assert!(!c.selects("script", "worker"));
        assert!(!c.selects("terraform", "api"));
        assert_eq!(
            (c.weight(1), c.weight(0), c.weight(2)),
            (Some(100), None, None)
        );
    }
}
