//! `ticket-required`: the change must reference a ticket.
//!
//! Config:
//! ```yaml
//! pattern: "[A-Z][A-Z0-9]+-[0-9]+"   # what a ticket reference looks like (regex)
//! metadata_key: ticket                # `--metadata ticket=PAY-12` satisfies it (default `ticket`)
//! require: any                        # `any` commit or `every` commit must reference one
//! ```
//! Passes when `--metadata <metadata_key>=…` matches the pattern, or else when the commits
//! being deployed (`input.commits`, newest first) reference a ticket in their subject.

use regex_lite::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;

wit_bindgen::generate!({ world: "gate", path: "../../wit" });

use atmos::hooks::types::Outcome;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    pattern: String,
    #[serde(default)]
    metadata_key: Option<String>,
    #[serde(default)]
    require: Option<String>,
}

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    commits: Vec<Commit>,
    /// The list stops at atmos's cap: the commits beyond it are unknown.
    #[serde(default)]
    commits_truncated: bool,
    commit: Commit,
}

#[derive(Deserialize)]
struct Commit {
    sha: String,
    subject: String,
}

fn deny(code: &str, message: String) -> Finding {
    Finding {
        outcome: Outcome::Deny,
        code: code.into(),
        message,
    }
}

fn evaluate(input: &str, config: &str) -> Result<Vec<Finding>, String> {
    let input: Input =
        serde_json::from_str(input).map_err(|e| format!("bad input document: {e}"))?;
    let config: Config = serde_json::from_str(config).map_err(|e| format!("bad config: {e}"))?;
    let pattern = Regex::new(&config.pattern).map_err(|e| {
        format!(
            "pattern `{}` is not a regular expression: {e}",
            config.pattern
        )
    })?;
    let key = config.metadata_key.as_deref().unwrap_or("ticket");
    let every = match config.require.as_deref() {
        None | Some("any") => false,
        Some("every") => true,
        Some(other) => return Err(format!("require must be `any` or `every`, not `{other}`")),
    };
    if let Some(value) = input.metadata.get(key) {
        return Ok(if pattern.is_match(value) {
            log(&format!("--metadata {key}={value} references a ticket"));
            Vec::new()
        } else {
            vec![deny(
                "ticket-malformed",
                format!(
                    "--metadata {key}={value} does not look like a ticket (expected /{}/)",
                    config.pattern
                ),
            )]
        });
    }
    // A direct rollout of an already-deployed range has no new commits: judge the commit itself.
    let commits: Vec<&Commit> = if input.commits.is_empty() {
        vec![&input.commit]
    } else {
        input.commits.iter().collect()
    };
    let missing: Vec<&&Commit> = commits
        .iter()
        .filter(|c| !pattern.is_match(&c.subject))
        .collect();
    let ok = if every {
        missing.is_empty()
    } else {
        missing.len() < commits.len()
    };
    // Every commit must reference one, and some were not listed: unknown is not clean.
    if every && ok && input.commits_truncated {
        return Ok(vec![deny(
            "ticket-unknown",
            format!(
                "more commits are deployed than atmos lists ({} shown): the rest cannot be checked for a ticket; promote in smaller steps or pass --metadata {key}=<TICKET>",
                commits.len()
            ),
        )]);
    }
    if ok {
        return Ok(Vec::new());
    }
    let first = missing
        .first()
        .map(|c| format!("{} \"{}\"", &c.sha[..c.sha.len().min(12)], c.subject));
    Ok(vec![deny(
        "ticket-missing",
        format!(
            "{} of {} commit(s) reference no ticket (/{}/), e.g. {}; reference one in the commit subject or pass --metadata {key}=<TICKET>",
            missing.len(),
            commits.len(),
            config.pattern,
            first.unwrap_or_default()
        ),
    )])
}

struct TicketRequired;

impl Guest for TicketRequired {
    fn evaluate(input: String, config: String) -> Result<Vec<Finding>, String> {
        evaluate(&input, &config)
    }
}

export!(TicketRequired);
