//! What a component says about itself after it is deployed: `settings.<type>.verify` (a
//! post-deploy check with retries, which can fail the rollout and roll it back) and
//! `settings.<type>.health` (a command printing the component's health as JSON, run by
//! `status --check-health`).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long one verification attempt may run when `timeout` is not set.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The wait between verification attempts when `interval` is not set.
pub const DEFAULT_VERIFY_INTERVAL: Duration = Duration::from_secs(10);
/// How long a health command may run when `timeout` is not set.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
/// The most retries a verification may ask for.
pub const MAX_RETRIES: u32 = 20;

/// `settings.<type>.verify`: a check run after the component's apply commands succeed.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySettings {
    /// Shell command (`sh -c` in the deployed commit's tree, with the same ATMOS_*
    /// variables as apply); exit status 0 means verified.
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
    /// The wait between attempts (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[smhdw]$"))]
    pub interval: Option<String>,
    /// What a failed verification does besides failing the rollout: `fail` (default) leaves
    /// the target as the apply left it; `rollback` deploys again the commit the target ran
    /// before, through the same gates, recorded as a rollback.
    #[serde(default)]
    pub on_failure: OnFailure,
}

/// What a failed verification does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The rollout fails; nothing else happens.
    #[default]
    Fail,
    /// The rollout fails and the component goes back to the commit the target ran before.
    Rollback,
}

/// `settings.<type>.health`: a command printing `{"status": "healthy"|"degraded"|
/// "unhealthy", "detail": "3/3 pods"}`, or just the command.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HealthSettings {
    /// The command alone.
    Command(#[schemars(length(min = 1))] String),
    /// The command and how long it may run.
    Full {
        /// Shell command (`sh -c` in the deployed commit's tree, same ATMOS_* variables).
        #[schemars(length(min = 1))]
        command: String,
        /// The longest it may run (default 30s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^0*[1-9][0-9]*[smhdw]$"))]
        timeout: Option<String>,
    },
}

/// A verification step, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// Shell command.
    pub command: String,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Between attempts.
    pub interval: Duration,
    /// What a failure does.
    pub on_failure: OnFailure,
}

/// A health command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Shell command.
    pub command: String,
    /// The longest it may run.
    pub timeout: Duration,
}

/// Which component a setting belongs to, for messages: `settings.<kind>.… of <name>`.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// Executor type.
    pub kind: &'a str,
    /// Component name.
    pub name: &'a str,
}

fn duration(o: Owner<'_>, key: &str, text: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    crate::duration::parse(text)
        .map(Some)
        .map_err(|p| format!("settings.{}.{key} of {}: {p}", o.kind, o.name))
}

/// Parse `settings.<type>.verify`; `Err` names the setting and what is wrong.
pub fn verify(o: Owner<'_>, value: Option<&Value>) -> Result<Option<Verify>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let s: VerifySettings = serde_json::from_value(value.clone())
        .map_err(|e| format!("settings.{}.verify of {}: {e}", o.kind, o.name))?;
    if s.retries > MAX_RETRIES {
        return Err(format!(
            "settings.{}.verify.retries of {}: {} is more than {MAX_RETRIES}",
            o.kind, o.name, s.retries
        ));
    }
    let timeout =
        duration(o, "verify.timeout", s.timeout.as_deref())?.unwrap_or(DEFAULT_VERIFY_TIMEOUT);
    if timeout.is_zero() {
        return Err(format!(
            "settings.{}.verify.timeout of {}: zero would fail every attempt; use 30s or more",
            o.kind, o.name
        ));
    }
    Ok(Some(Verify {
        command: s.command,
        timeout,
        retries: s.retries,
        interval: duration(o, "verify.interval", s.interval.as_deref())?
            .unwrap_or(DEFAULT_VERIFY_INTERVAL),
        on_failure: s.on_failure,
    }))
}

/// Parse `settings.<type>.health`; `Err` names the setting and what is wrong.
pub fn health(o: Owner<'_>, value: Option<&Value>) -> Result<Option<Health>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let s: HealthSettings = serde_json::from_value(value.clone()).map_err(|_| {
        format!(
            "settings.{}.health of {}: must be a command, or {{command, timeout}}",
            o.kind, o.name
        )
    })?;
    let (command, timeout) = match s {
        HealthSettings::Command(c) => (c, None),
        HealthSettings::Full { command, timeout } => (command, timeout),
    };
    let timeout =
        duration(o, "health.timeout", timeout.as_deref())?.unwrap_or(DEFAULT_HEALTH_TIMEOUT);
    if timeout.is_zero() || command.trim().is_empty() {
        return Err(format!(
            "settings.{}.health of {}: needs a command and a timeout above zero",
            o.kind, o.name
        ));
    }
    Ok(Some(Health { command, timeout }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: Owner<'static> = Owner {
        kind: "script",
        name: "api",
    };

    #[test]
    fn verify_defaults_and_limits() {
        let v = verify(API, Some(&serde_json::json!({"command": "./smoke.sh"})))
            .expect("ok")
            .expect("set");
        assert_eq!(v.timeout, DEFAULT_VERIFY_TIMEOUT);
        assert_eq!((v.retries, v.on_failure), (0, OnFailure::Fail));
        let many = serde_json::json!({"command": "x", "retries": 99});
        assert!(
            verify(API, Some(&many))
                .expect_err("too many")
                .contains("retries")
        );
        let bad = serde_json::json!({"command": "x", "on_failure": "pray"});
        assert!(
            verify(API, Some(&bad))
                .expect_err("bad")
                .contains("settings.script.verify of api")
        );
        assert_eq!(verify(API, None), Ok(None));
    }

    #[test]
    fn health_is_a_command_or_a_command_with_a_timeout() {
        let h = health(API, Some(&serde_json::json!("./health.sh")));
        assert_eq!(h.expect("ok").expect("set").timeout, DEFAULT_HEALTH_TIMEOUT);
        let h = health(
            API,
            Some(&serde_json::json!({"command": "h", "timeout": "5s"})),
        );
        assert_eq!(h.expect("ok").expect("set").timeout, Duration::from_secs(5));
        assert!(health(API, Some(&serde_json::json!(3))).is_err());
    }
}
