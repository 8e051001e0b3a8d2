//! Gate decisions as people read them: one line each, marked allow ✓, warn !, deny ✗,
//! pending …, skipped.

use atmos_core::contracts::{Decision, Verdict};

use super::Style;

/// `→ policies/freeze (atmos.freeze) deny: message [CODE] ✗`.
pub fn line(d: &Decision, s: &Style, verbose: bool) -> String {
    let mark = match d.result {
        Verdict::Allow => s.ok("✓"),
        Verdict::Warn => s.warning("! warn"),
        Verdict::Deny => s.error("✗ deny"),
        Verdict::Pending => s.warning("… pending"),
        Verdict::Skipped => s.warning("skipped"),
    };
    let package = d
        .package
        .as_ref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let code = d
        .code
        .as_ref()
        .map(|c| format!(" [{c}]"))
        .unwrap_or_default();
    // Messages carry record data (an approver's name, a hook's words): shown, not obeyed.
    let mut out = format!(
        "→ {}{package}: {}{code} {mark}\n",
        d.source,
        super::table::visible(&d.message)
    );
    if verbose {
        for l in &d.logs {
            out.push_str(&format!("    {} {l}\n", s.dim("log:")));
        }
    }
    out
}

/// What matters, in order: one line per deny, pending and warn (and who approved); the gates
/// that only allowed folded into one line at the end ("7 gates allow ✓"). With `verbose`, every decision (a
/// policy package that allowed everything still takes one line), and the lines hooks logged.
pub fn lines(list: &[Decision], s: &Style, verbose: bool) -> String {
    if verbose {
        return every_line(list, s, verbose);
    }
    let mut out = String::new();
    let flagged: std::collections::HashSet<&str> = list
        .iter()
        .filter(|d| d.result != Verdict::Allow)
        .map(|d| d.source.as_str())
        .collect();
    let mut allowed: Vec<&str> = Vec::new();
    for d in list {
        // Who approved is the fact a reviewer of a rollout looks for: always shown.
        if d.result != Verdict::Allow || d.source == "builtin/approvals" {
            out.push_str(&line(d, s, false));
        } else if !flagged.contains(d.source.as_str()) && !allowed.contains(&d.source.as_str()) {
            allowed.push(&d.source);
        }
    }
    if !allowed.is_empty() {
        let short: Vec<String> = allowed.iter().map(|a| short_source(a)).collect();
        let names = if short.len() > 5 {
            format!("{}, …", short[..4].join(", "))
        } else {
            short.join(", ")
        };
        out.push_str(&format!(
            "→ {} gate{} allow {} ({names}; -v shows each)\n",
            allowed.len(),
            atmos_core::plural::s(allowed.len()),
            s.ok("✓")
        ));
    }
    out
}

/// `promotion-path` for `builtin/promotion-path`, `freeze` for `policies/freeze/freeze.rego`,
/// `metadata/required` for `policies/metadata/required.rego`, `hook:x` as is.
fn short_source(source: &str) -> String {
    let mut parts = source.rsplit('/');
    let last = parts.next().unwrap_or(source);
    let stem = last.trim_end_matches(".rego");
    match parts.next() {
        Some(folder) if last.ends_with(".rego") && folder != stem => format!("{folder}/{stem}"),
        _ => stem.to_owned(),
    }
}

/// Every decision, in order; a policy package that allowed everything takes one line.
fn every_line(list: &[Decision], s: &Style, verbose: bool) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < list.len() {
        let d = &list[i];
        if d.result == Verdict::Allow && d.package.is_some() && (!verbose || d.logs.is_empty()) {
            let mut j = i;
            while j < list.len()
                && list[j].result == Verdict::Allow
                && list[j].source == d.source
                && list[j].package == d.package
            {
                j += 1;
            }
            let package = d.package.as_deref().unwrap_or_default();
            out.push_str(&format!(
                "→ {} ({package}): allow {}\n",
                d.source,
                s.ok("✓")
            ));
            i = j;
            continue;
        }
        out.push_str(&line(d, s, verbose));
        i += 1;
    }
    out
}

/// The denials other than the promotion path's (which has its own message), for the
/// "denied by" block.
pub fn denials(list: &[Decision], s: &Style) -> String {
    let denies: Vec<&Decision> = list
        .iter()
        .filter(|d| d.result == Verdict::Deny && d.source != "builtin/promotion-path")
        .collect();
    if denies.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n{} denied by {} gate decision{}:\n",
        s.error("Error:"),
        denies.len(),
        atmos_core::plural::s(denies.len())
    );
    for d in denies {
        let package = d
            .package
            .as_ref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        let code = d
            .code
            .as_ref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  ✗ {}{package}: {}{code}\n",
            d.source,
            super::table::visible(&d.message)
        ));
    }
    out.push_str("Fix what the gates report, or change the policies (test them with `atmos deployment policy test`).\n");
    out
}
