//! Observed health, as `status` and `list components` show it.

use jiff::Timestamp;

/// `healthy (3/3 pods)`, with the check's age when it is not fresh; `-` when not checked.
pub fn cell(h: Option<&atmos_core::status::Health>, now: Timestamp) -> String {
    let Some(h) = h else {
        return "-".to_owned();
    };
    let mut out = h.status.as_str().to_owned();
    if let Some(d) = &h.detail {
        out.push_str(&format!(" ({d})"));
    }
    let stale = h
        .checked_at
        .parse::<Timestamp>()
        .map(|at| now.duration_since(at).as_secs() > 60)
        .unwrap_or(true);
    if stale {
        out.push_str(&format!(
            ", checked {}",
            super::time::ago(&h.checked_at, now)
        ));
    }
    super::table::inert(&out)
}
