//! `change-freeze`: deny while a freeze window is open.
//!
//! Config:
//! ```yaml
//! timezone: Europe/Berlin          # IANA zone the windows are written in (default UTC)
//! windows:
//!   - from: "2026-12-21T00:00"     # one-off window, local civil times
//!     until: "2027-01-04T00:00"
//!     reason: year-end freeze
//!   - days: [fri]                  # weekly window
//!     from: "15:00"
//!     until: "24:00"
//!     reason: no Friday-afternoon changes
//! outcome: deny                    # or warn
//! ```
//! "Now" is the input document's `now` (the rollout's start time), so a run is reproducible.

use jiff::civil::{DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::Deserialize;

wit_bindgen::generate!({ world: "gate", path: "../../wit" });

use atmos::hooks::types::Outcome;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    windows: Vec<Window>,
    #[serde(default)]
    outcome: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    #[serde(default)]
    days: Vec<String>,
    from: String,
    until: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct Input {
    now: String,
    target: Target,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

fn weekday(name: &str) -> Result<Weekday, String> {
    Ok(
        match name.to_ascii_lowercase().get(..3).unwrap_or_default() {
            "mon" => Weekday::Monday,
            "tue" => Weekday::Tuesday,
            "wed" => Weekday::Wednesday,
            "thu" => Weekday::Thursday,
            "fri" => Weekday::Friday,
            "sat" => Weekday::Saturday,
            "sun" => Weekday::Sunday,
            _ => return Err(format!("`{name}` is not a day of the week (mon … sun)")),
        },
    )
}

/// Minutes since midnight of "HH:MM", where "24:00" is the end of the day.
fn minutes(text: &str) -> Result<i32, String> {
    if text == "24:00" {
        return Ok(24 * 60);
    }
    let t: Time = text
        .parse()
        .map_err(|e| format!("`{text}` is not a time of day (HH:MM): {e}"))?;
    Ok(i32::from(t.hour()) * 60 + i32::from(t.minute()))
}

/// Whether `now` falls in `w`.
fn open(w: &Window, now: &Zoned, tz: &TimeZone) -> Result<bool, String> {
    if w.days.is_empty() {
        let parse = |s: &str| -> Result<Zoned, String> {
            let dt: DateTime = s
                .parse()
                .map_err(|e| format!("`{s}` is not a date-time (YYYY-MM-DDTHH:MM): {e}"))?;
            dt.to_zoned(tz.clone()).map_err(|e| e.to_string())
        };
        let (from, until) = (parse(&w.from)?, parse(&w.until)?);
        return Ok(from <= *now && *now < until);
    }
    let days = w
        .days
        .iter()
        .map(|d| weekday(d))
        .collect::<Result<Vec<_>, _>>()?;
    let minute = i32::from(now.hour()) * 60 + i32::from(now.minute());
    Ok(days.contains(&now.weekday()) && minutes(&w.from)? <= minute && minute < minutes(&w.until)?)
}

fn evaluate(input: &str, config: &str) -> Result<Vec<Finding>, String> {
    let input: Input =
        serde_json::from_str(input).map_err(|e| format!("bad input document: {e}"))?;
    let config: Config = serde_json::from_str(config).map_err(|e| format!("bad config: {e}"))?;
    let tz = match &config.timezone {
        Some(name) => TimeZone::get(name).map_err(|e| format!("unknown timezone `{name}`: {e}"))?,
        None => TimeZone::UTC,
    };
    let outcome = match config.outcome.as_deref() {
        None | Some("deny") => Outcome::Deny,
        Some("warn") => Outcome::Warn,
        Some(other) => return Err(format!("outcome must be `deny` or `warn`, not `{other}`")),
    };
    let now: Timestamp = input
        .now
        .parse()
        .map_err(|e| format!("input.now `{}` is not RFC 3339: {e}", input.now))?;
    let now = now.to_zoned(tz.clone());
    log(&format!(
        "now is {now} in {}",
        tz.iana_name().unwrap_or("UTC")
    ));
    let mut findings = Vec::new();
    for w in &config.windows {
        if open(w, &now, &tz)? {
            let when = if w.days.is_empty() {
                format!("{} – {}", w.from, w.until)
            } else {
                format!("{} {} – {}", w.days.join(","), w.from, w.until)
            };
            findings.push(Finding {
                outcome,
                code: "change-freeze".into(),
                message: format!(
                    "`{}` is frozen ({when} {}): {}",
                    input.target.name,
                    tz.iana_name().unwrap_or("UTC"),
                    w.reason.as_deref().unwrap_or("change freeze")
                ),
            });
        }
    }
    Ok(findings)
}

struct ChangeFreeze;

impl Guest for ChangeFreeze {
    fn evaluate(input: String, config: String) -> Result<Vec<Finding>, String> {
        evaluate(&input, &config)
    }
}

export!(ChangeFreeze);
