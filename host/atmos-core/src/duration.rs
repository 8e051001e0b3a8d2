//! Durations as people write them in flags and settings: `45s`, `30m`, `12h`, `7d`, `2w`.
//! Parsed with checked arithmetic and a ceiling, so an absurd value is a clear error instead of
//! an overflow (a lease that wraps around and expires at once) or a panic.

use std::time::Duration;

/// The longest duration accepted: ten years.
pub const MAX_SECONDS: u64 = 10 * 365 * 86_400;

/// Parse `text`: a whole number followed by `s`, `m`, `h`, `d` or `w`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let unit = t
        .chars()
        .last()
        .ok_or_else(|| "empty duration: use 45s, 30m, 12h, 7d or 2w".to_owned())?;
    let not_a_duration = || format!("`{t}` is not a duration: use 45s, 30m, 12h, 7d or 2w");
    let scale: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(not_a_duration()),
    };
    let digits = &t[..t.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_duration());
    }
    let too_long = || format!("`{t}` is too long: the limit is 3650d (ten years)");
    let n: u64 = digits.parse().map_err(|_| too_long())?;
    let secs = n.checked_mul(scale).ok_or_else(too_long)?;
    if secs > MAX_SECONDS {
        return Err(too_long());
    }
    Ok(Duration::from_secs(secs))
}

/// `d` as it would be written: the largest unit that divides it (`90d`, `36h`, `45s`).
pub fn show(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, scale) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= scale && secs.is_multiple_of(scale) {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_limits() {
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse(" 30m "), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("3650d"), Ok(Duration::from_secs(MAX_SECONDS)));
        for bad in ["", "m", "5", "5y", "-5m", "+5m", "1.5h", "5 m"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        for huge in ["3651d", "99999999999999d", "99999999999999999999999w"] {
            let e = parse(huge).expect_err(huge);
            assert!(e.contains("too long"), "{huge}: {e}");
        }
    }
}
