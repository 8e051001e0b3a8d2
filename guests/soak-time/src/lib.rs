//! `soak-time`: a promotion waits until the source target has run its commit long enough.
//!
//! Config:
//! ```yaml
//! minutes: 30        # how long the source must have run what is promoted
//! outcome: deny      # or warn
//! ```
//! Applies to promotions only (`input.source_target`); anything else passes.

use serde::Deserialize;
use std::collections::BTreeMap;

wit_bindgen::generate!({ world: "gate", path: "../../wit" });

use atmos::hooks::types::Outcome;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    minutes: u32,
    #[serde(default)]
    outcome: Option<String>,
}

#[derive(Deserialize)]
struct Input {
    now: String,
    #[serde(default)]
    source_target: Option<String>,
    #[serde(default)]
    state: BTreeMap<String, State>,
}

#[derive(Deserialize)]
struct State {
    #[serde(default)]
    deployed_at: Option<String>,
    #[serde(default)]
    last_rollout: Option<String>,
}

fn evaluate(input: &str, config: &str) -> Result<Vec<Finding>, String> {
    let input: Input =
        serde_json::from_str(input).map_err(|e| format!("bad input document: {e}"))?;
    let config: Config = serde_json::from_str(config).map_err(|e| format!("bad config: {e}"))?;
    let outcome = match config.outcome.as_deref() {
        None | Some("deny") => Outcome::Deny,
        Some("warn") => Outcome::Warn,
        Some(other) => return Err(format!("outcome must be `deny` or `warn`, not `{other}`")),
    };
    let Some(source) = input.source_target else {
        return Ok(Vec::new());
    };
    let state = input.state.get(&source);
    let Some(deployed_at) = state.and_then(|s| s.deployed_at.as_deref()) else {
        return Ok(vec![Finding {
            outcome: Outcome::Deny,
            code: "soak-unknown".into(),
            message: format!("`{source}` has no recorded deployment to soak"),
        }]);
    };
    if state.and_then(|s| s.last_rollout.as_deref()) == Some("failure") {
        return Ok(vec![Finding {
            outcome: Outcome::Deny,
            code: "soak-failed".into(),
            message: format!("`{source}`'s last rollout failed; nothing has soaked"),
        }]);
    }
    let parse = |s: &str| -> Result<jiff::Timestamp, String> {
        s.parse().map_err(|e| format!("`{s}` is not RFC 3339: {e}"))
    };
    let soaked = parse(&input.now)?.as_second() - parse(deployed_at)?.as_second();
    let needed = i64::from(config.minutes) * 60;
    log(&format!(
        "`{source}` deployed at {deployed_at}, soaked {soaked} s of {needed} s"
    ));
    if soaked >= needed {
        return Ok(Vec::new());
    }
    let left = (needed - soaked + 59) / 60;
    Ok(vec![Finding {
        outcome,
        code: "soak-time".into(),
        message: format!(
            "`{source}` has run this for {} min of the {} required; promote again in {left} min",
            soaked.max(0) / 60,
            config.minutes
        ),
    }])
}

struct SoakTime;

impl Guest for SoakTime {
    fn evaluate(input: String, config: String) -> Result<Vec<Finding>, String> {
        evaluate(&input, &config)
    }
}

export!(SoakTime);
