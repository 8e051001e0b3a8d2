//! Times as people read them: "2h ago (12:00:00)", "2025-01-22 12:00". Machine formats keep
//! RFC 3339.

use jiff::Timestamp;

/// "just now", "30m ago", "2h ago", "3d ago"; the input is RFC 3339. Seconds are noise at
/// this precision (the exact time is shown beside it where it matters).
pub fn ago(rfc3339: &str, now: Timestamp) -> String {
    let Ok(at) = rfc3339.parse::<Timestamp>() else {
        return rfc3339.to_owned();
    };
    let secs = now.as_second() - at.as_second();
    match secs {
        s if s < 0 => "in the future".to_owned(),
        s if s < 60 => "just now".to_owned(),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 48 * 3600 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// "12:00:00" (UTC).
pub fn clock(rfc3339: &str) -> String {
    rfc3339
        .parse::<Timestamp>()
        .map(|t| t.strftime("%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// "2025-01-22 12:00" (UTC).
pub fn minute(rfc3339: &str) -> String {
    rfc3339
        .parse::<Timestamp>()
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// "2h ago (12:00:00)".
pub fn ago_clock(rfc3339: &str, now: Timestamp) -> String {
    format!("{} ({})", ago(rfc3339, now), clock(rfc3339))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now: Timestamp = "2025-01-22T14:00:00Z".parse().expect("ts");
        assert_eq!(ago_clock("2025-01-22T12:00:00Z", now), "2h ago (12:00:00)");
        assert_eq!(ago("2025-01-22T13:30:00Z", now), "30m ago");
        assert_eq!(ago("2025-01-22T13:59:50Z", now), "just now");
        assert_eq!(ago("2025-01-18T14:00:00Z", now), "4d ago");
        assert_eq!(minute("2025-01-22T12:00:00Z"), "2025-01-22 12:00");
    }
}
