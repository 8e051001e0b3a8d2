//! The deployment board as a static site: `index.html` (every deployment's promotion graph
//! as inline SVG, the newest rollouts, what waits for approval) and one page per deployment
//! (status matrix, timeline with every gate decision and approver, diffs between adjacent
//! targets, SBOM summaries). Self-contained: inline CSS, one inline script that only adds
//! relative ages, no fonts, images or links outside the site (except commit links when a
//! commit URL template is given). Well-formed XML (every element closed), so it parses as
//! XHTML too; the same board gives the same bytes.

use std::fmt::Write;

use atmos_core::board::{Board, DeploymentBoard, PendingApproval};
use atmos_core::contracts::Status;
use atmos_core::git::short;

/// Escape text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            // Direction overrides would make one name read as another.
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
    out
}

/// The file of a deployment's page.
pub fn page_file(deployment: &str) -> String {
    format!("deployment-{deployment}.html")
}

/// How commits are linked.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// `https://github.com/org/repo/commit/{sha}`: `{sha}` is replaced by the full sha.
    pub commit_url: Option<String>,
}

impl Links {
    fn commit(&self, sha: &str) -> String {
        let text = format!("<code>{}</code>", esc(short(sha)));
        match &self.commit_url {
            Some(t) => format!(
                "<a href=\"{}\" title=\"{}\">{text}</a>",
                esc(&t.replace("{sha}", sha)),
                esc(sha)
            ),
            None => format!("<span title=\"{}\">{text}</span>", esc(sha)),
        }
    }
}

const STYLE: &str = r#"
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de;
  --card: #f6f8fa; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --accent: #0550ae; }
@media (prefers-color-scheme: dark) { :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9ea7b3;
  --line: #30363d; --card: #161b22; --ok: #3fb950; --bad: #ff7b72; --warn: #d29922; --accent: #79c0ff; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 75rem; margin: 0 auto; }
a { color: var(--accent); }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid var(--line); }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, monospace; }
.muted { color: var(--muted); }
.scroll { overflow-x: auto; }
.scroll td, .scroll th { white-space: nowrap; }
.scroll td.wrap { white-space: normal; min-width: 16rem; }
.stamp { margin-top: -0.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; }
.success, .healthy, .rolled_back, .allow { color: var(--ok); }
.failure, .unhealthy, .deny { color: var(--bad); }
.rollback, .canary, .degraded, .pending, .unknown, .warn { color: var(--warn); }
.skipped { color: var(--muted); }
svg text.success, svg text.healthy { fill: var(--ok); }
svg text.failure, svg text.unhealthy { fill: var(--bad); }
svg text.pending, svg text.degraded, svg text.unknown, svg text.rollback, svg text.canary { fill: var(--warn); }
svg text.muted { fill: var(--muted); }
li, summary, td, p { overflow-wrap: anywhere; }
svg { height: auto; } /* natural size; its .scroll wrapper scrolls on a phone */
svg .box { fill: var(--card); stroke: var(--muted); }
svg text { fill: var(--fg); font: 13px system-ui, sans-serif; }
svg .title { font-weight: 700; }
svg .edge { stroke: var(--muted); fill: none; }
svg .arrow { fill: var(--muted); }
details { margin: 0.2rem 0; } summary { cursor: pointer; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.8rem; margin: 0.6rem 0; }
nav a { margin-right: 1rem; }
"#;

/// Adds "(3h ago)" after each time; nothing else. Static text: the page stays deterministic.
const SCRIPT: &str = r#"
(function () {
  var now = Date.now();
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var t = Date.parse(times[i].getAttribute("datetime"));
    if (isNaN(t)) { continue; }
    var s = Math.max(0, Math.round((now - t) / 1000));
    var ago = s < 60 ? "just now" : s < 3600 ? Math.floor(s / 60) + "m ago"
      : s < 86400 ? Math.floor(s / 3600) + "h ago" : Math.floor(s / 86400) + "d ago";
    var span = document.createElement("span");
    span.className = "muted";
    span.textContent = " (" + ago + ")";
    times[i].after(span);
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n<script>//<![CDATA[{SCRIPT}//]]></script>\n</body>\n</html>\n",
        esc(title)
    )
}

fn time(ts: &str) -> String {
    // Minutes are enough to read; the attribute keeps the exact time.
    let shown = match ts.get(..16) {
        Some(minutes) if ts.ends_with('Z') => format!("{} UTC", minutes.replace('T', " ")),
        _ => ts.to_owned(),
    };
    format!("<time datetime=\"{}\">{}</time>", esc(ts), esc(&shown))
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Success => "success",
        Status::Failure | Status::Skipped => "failure",
        Status::Rollback => "rollback",
        Status::Started | Status::Interrupted => "unknown",
        Status::Canary => "canary",
    }
}

/// The promotion graph as SVG: layers left to right, one box per target with its state.
/// Targets whose components run different commits (`status` says `(mixed)`).
fn mixed(d: &DeploymentBoard) -> Vec<String> {
    d.status
        .targets
        .iter()
        .filter(|t| {
            let mut commits: Vec<&str> = t
                .components
                .iter()
                .filter(|c| c.in_config)
                .filter_map(|c| c.commit.as_deref())
                .collect();
            commits.sort_unstable();
            commits.dedup();
            commits.len() > 1
        })
        .map(|t| t.target.clone())
        .collect()
}

fn graph_svg(d: &DeploymentBoard) -> String {
    let (g, pending, mixed) = (&d.graph, &d.pending, mixed(d));
    let d = d.name.as_str();
    const W: usize = 260;
    const H: usize = 122;
    const GAP_X: usize = 60;
    const GAP_Y: usize = 20;
    let layers = &g.graph.layers;
    let tallest = layers.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let width = layers.len().max(1) * (W + GAP_X) - GAP_X + 20;
    let height = tallest * (H + GAP_Y) - GAP_Y + 20;
    let place = |name: &str| {
        layers.iter().enumerate().find_map(|(x, layer)| {
            layer
                .iter()
                .position(|n| n == name)
                .map(|y| (10 + x * (W + GAP_X), 10 + y * (H + GAP_Y)))
        })
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"g-{d}\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">\n<title id=\"g-{d}\">Promotion graph of {d}</title>\n<defs><marker id=\"arrow-{d}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\"><path class=\"arrow\" d=\"M0,0 L10,5 L0,10 z\" /></marker></defs>\n",
        d = esc(d)
    );
    for t in &g.graph.targets {
        let Some((x, y)) = place(&t.name) else {
            continue;
        };
        let s = g.status.iter().find(|s| s.target == t.name);
        let mut lines: Vec<(String, &str)> = Vec::new();
        match s.and_then(|s| s.commit.as_deref()) {
            Some(c) if mixed.contains(&t.name) => {
                lines.push((format!("commit {} (mixed)", short(c)), "pending"))
            }
            Some(c) => lines.push((format!("commit {}", short(c)), "")),
            None => lines.push(("not deployed".into(), "muted")),
        }
        if let Some(at) = s.and_then(|s| s.deployed_at.as_deref()) {
            let at = at.get(..16).unwrap_or(at).replace('T', " ");
            lines.push((format!("deployed {at} UTC"), ""));
        }
        if let Some(s) = s.filter(|s| s.commit.is_some()) {
            let (text, class) = match s.health {
                Some(h) => (format!("{} · {}", s.last_rollout, h.as_str()), h.as_str()),
                None => (s.last_rollout.to_owned(), s.last_rollout),
            };
            lines.push((text, class));
        }
        if let Some(no) = pending
            .iter()
            .find(|p| p.target == t.name)
            .and_then(|p| p.rejected_by.first())
        {
            lines.push((format!("rejected by {}", no.by), "failure"));
        } else if let Some(wait) = pending.iter().find(|p| p.target == t.name) {
            let left = wait
                .required
                .saturating_sub(wait.approved_by.len() as u32)
                .max(1);
            let from = if wait.from_groups.is_empty() {
                String::new()
            } else {
                format!(" from {}", wait.from_groups.join(", "))
            };
            lines.push((
                format!(
                    "waiting for {left} approval{}{from}",
                    atmos_core::plural::s(left)
                ),
                "pending",
            ));
        } else if s.is_some_and(|s| s.ready_to_promote) {
            lines.push(("ready to promote ✓".into(), "success"));
        }
        // How far behind its sources it is, whatever waits: the CLI graph says it too.
        if let Some(s) = s {
            for b in s
                .behind
                .iter()
                .filter(|b| b.commits > 0 && b.commits != usize::MAX)
            {
                lines.push((
                    format!(
                        "{} commit{} behind {}",
                        b.commits,
                        atmos_core::plural::s(b.commits),
                        b.source
                    ),
                    "pending",
                ));
            }
        }
        let summary: Vec<String> = lines.iter().map(|(l, _)| l.clone()).collect();
        let _ = writeln!(
            out,
            "<g><title>{}: {}</title><rect class=\"box\" x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"6\" /><text class=\"title\" x=\"{}\" y=\"{}\">{}</text>",
            esc(&t.name),
            esc(&summary.join("; ")),
            x + 10,
            y + 22,
            esc(&fit(&t.name, 30))
        );
        for (i, (line, class)) in lines.iter().take(5).enumerate() {
            let _ = writeln!(
                out,
                "<text class=\"{class}\" x=\"{}\" y=\"{}\">{}</text>",
                x + 10,
                y + 42 + i * 17,
                esc(&fit(line, 34))
            );
        }
        out.push_str("</g>\n");
    }
    // Edges on top of the boxes; one that skips a layer arcs over the row above its ends.
    for e in &g.graph.edges {
        if let (Some((x1, y1)), Some((x2, y2))) = (place(&e.from), place(&e.to)) {
            let (sx, sy, ex, ey) = (x1 + W, y1 + H / 2, x2, y2 + H / 2);
            let skips = ex > sx + GAP_X;
            let d_attr = if skips {
                let top = y1.min(y2) + 4;
                format!(
                    "M{sx} {sy} C{} {top} {} {top} {ex} {ey}",
                    sx + 40,
                    ex.saturating_sub(40)
                )
            } else {
                format!("M{sx} {sy} L{ex} {ey}")
            };
            let _ = writeln!(
                out,
                "<path class=\"edge\" d=\"{d_attr}\"{} marker-end=\"url(#arrow-{})\"><title>{} → {}</title></path>",
                if skips {
                    " stroke-dasharray=\"4 3\""
                } else {
                    ""
                },
                esc(d),
                esc(&e.from),
                esc(&e.to)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

/// At most `n` characters; the whole text is in the box's title.
fn fit(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(n - 1).collect::<String>())
    }
}

fn pending_list(pending: &[PendingApproval], links: &Links) -> String {
    if pending.is_empty() {
        return "<p class=\"muted\">Nothing waits for approval.</p>\n".into();
    }
    let mut out = String::from(
        "<div class=\"scroll\"><table>\n<thead><tr><th scope=\"col\">Deployment</th><th scope=\"col\">Target</th><th scope=\"col\">Commit</th><th scope=\"col\">Approvals</th><th scope=\"col\">To approve</th></tr></thead>\n<tbody>\n",
    );
    for p in pending {
        let mut who = if p.approved_by.is_empty() {
            "none counts yet".to_owned()
        } else {
            p.approved_by.join(", ")
        };
        for n in &p.not_counted {
            who.push_str(&format!("; {} does not count: {}", n.approved_by, n.reason));
        }
        let from = if p.from_groups.is_empty() {
            String::new()
        } else {
            format!(" from {}", p.from_groups.join(", "))
        };
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td>{} ← {}</td><td>{}</td>{}</tr>",
            esc(&page_file(&p.deployment)),
            esc(&p.deployment),
            esc(&p.target),
            esc(&p.source),
            links.commit(&p.commit),
            if p.rejected_by.is_empty() {
                format!(
                    "<td class=\"pending wrap\">{} of {} counted{} ({})</td><td class=\"wrap\"><code>{}</code></td>",
                    p.approved_by.len(),
                    p.required,
                    esc(&from),
                    esc(&who),
                    esc(&p.command)
                )
            } else {
                let no: Vec<String> = p
                    .rejected_by
                    .iter()
                    .map(|r| match &r.comment {
                        Some(c) => format!("{}: {c}", r.by),
                        None => r.by.clone(),
                    })
                    .collect();
                format!(
                    "<td class=\"failure\">rejected by {}</td><td class=\"muted\">refused until they approve</td>",
                    esc(&no.join("; "))
                )
            }
        );
    }
    out.push_str("</tbody>\n</table></div>\n");
    out
}

/// "Generated … from records up to …": how fresh a published board is.
fn stamp(board: &Board) -> String {
    let records = match &board.records_as_of {
        Some(at) => format!("records up to {}", time(at)),
        None => "no records yet".to_owned(),
    };
    format!(
        "<p class=\"muted stamp\">Generated {}, from {records}.</p>\n",
        time(&board.generated_at)
    )
}

/// True when no target of `d` ever ran anything: an inventory-style deployment.
fn never_ran(d: &DeploymentBoard) -> bool {
    d.status
        .targets
        .iter()
        .all(|t| t.components.iter().all(|c| c.commit.is_none()))
        && d.history.entries.is_empty()
}

/// `index.html`.
pub fn index(board: &Board, links: &Links) -> String {
    let mut body = String::from("<h1>Deployments</h1>\n");
    body.push_str(&stamp(board));
    body.push_str("<nav>");
    for d in &board.deployments {
        let _ = write!(
            body,
            "<a href=\"{}\">{}</a>",
            esc(&page_file(&d.name)),
            esc(&d.name)
        );
    }
    body.push_str("</nav>\n");
    let (idle, active): (Vec<&DeploymentBoard>, Vec<&DeploymentBoard>) =
        board.deployments.iter().partition(|d| never_ran(d));
    for d in active {
        let _ = writeln!(
            body,
            "<section aria-labelledby=\"d-{n}\"><h2 id=\"d-{n}\"><a href=\"{}\">{n}</a></h2>",
            esc(&page_file(&d.name)),
            n = esc(&d.name)
        );
        if let Some(desc) = &d.description {
            let _ = writeln!(body, "<p class=\"muted\">{}</p>", esc(desc));
        }
        body.push_str("<div class=\"scroll\">");
        body.push_str(&graph_svg(d));
        body.push_str("</div>\n</section>\n");
    }
    // Deployments that never ran take one line, not a row of empty boxes.
    if !idle.is_empty() {
        let names: Vec<String> = idle
            .iter()
            .map(|d| {
                format!(
                    "<a href=\"{}\">{}</a>",
                    esc(&page_file(&d.name)),
                    esc(&d.name)
                )
            })
            .collect();
        let _ = writeln!(
            body,
            "<section aria-labelledby=\"idle\"><h2 id=\"idle\">Never rolled out</h2><p class=\"muted\">{} deployment{} with nothing deployed to any target: {}.</p></section>",
            idle.len(),
            atmos_core::plural::s(idle.len()),
            names.join(", ")
        );
    }
    body.push_str("<h2 id=\"pending\">Waiting for approval</h2>\n");
    body.push_str(&pending_list(&board.pending, links));
    body.push_str("<h2 id=\"recent\">Newest rollouts</h2>\n");
    if board.recent.is_empty() {
        body.push_str("<p class=\"muted\">Nothing was rolled out yet.</p>\n");
    } else {
        body.push_str("<div class=\"scroll\"><table>\n<thead><tr><th scope=\"col\">When</th><th scope=\"col\">Deployment</th><th scope=\"col\">Target</th><th scope=\"col\">Status</th><th scope=\"col\">Components</th><th scope=\"col\">By</th></tr></thead>\n<tbody>\n");
        for r in &board.recent {
            let status = r.status();
            let components: Vec<String> = r
                .components
                .iter()
                .map(|e| {
                    format!(
                        "{} {} <span class=\"{}\">{}</span>",
                        esc(&e.component),
                        links.commit(&e.commit),
                        status_class(e.status),
                        e.status.as_str()
                    )
                })
                .collect();
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                time(&r.timestamp),
                esc(&page_file(&r.deployment)),
                esc(&r.deployment),
                esc(&r.target),
                status_class(status),
                status.as_str(),
                components.join("<br />"),
                esc(&r.deployed_by)
            );
        }
        body.push_str("</tbody>\n</table></div>\n");
    }
    page("Deployments", &body)
}

/// One deployment's page.
pub fn deployment(board: &Board, d: &DeploymentBoard, links: &Links) -> String {
    let mut body = format!(
        "<nav><a href=\"index.html\">← All deployments</a></nav>\n<h1>{}</h1>\n",
        esc(&d.name)
    );
    if let Some(desc) = &d.description {
        let _ = writeln!(body, "<p class=\"muted\">{}</p>", esc(desc));
    }
    body.push_str(&stamp(board));
    body.push_str("<div class=\"scroll\">");
    body.push_str(&graph_svg(d));
    body.push_str("</div>\n<h2 id=\"pending\">Waiting for approval</h2>\n");
    body.push_str(&pending_list(&d.pending, links));

    // Status matrix: target × component.
    body.push_str("<h2 id=\"status\">What runs where</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th scope=\"col\">Component</th>");
    for t in &d.status.targets {
        let _ = write!(body, "<th scope=\"col\">{}</th>", esc(&t.target));
    }
    body.push_str("</tr></thead>\n<tbody>\n");
    let mut names: Vec<&str> = Vec::new();
    for t in &d.status.targets {
        for c in &t.components {
            if !names.contains(&c.component.as_str()) {
                names.push(&c.component);
            }
        }
    }
    for name in names {
        let _ = write!(body, "<tr><th scope=\"row\">{}</th>", esc(name));
        for t in &d.status.targets {
            let cell = match t.components.iter().find(|c| c.component == name) {
                Some(c) => match &c.commit {
                    Some(commit) => {
                        let last = c.last_rollout();
                        let mut cell = format!(
                            "{} <span class=\"{}\">{}</span>",
                            links.commit(commit),
                            last.replace(' ', "_"),
                            esc(last)
                        );
                        // As `status` says it: the newest attempt failed, the old commit runs.
                        if let Some(a) = c
                            .last_attempt
                            .as_ref()
                            .filter(|a| a.status == Status::Failure)
                        {
                            cell = format!(
                                "<span class=\"failure\">failure at</span> {} (still runs {})<br />{}",
                                links.commit(&a.git_sha),
                                links.commit(commit),
                                time(&a.timestamp)
                            );
                        }
                        if let Some(h) = &c.health {
                            let _ = write!(
                                cell,
                                "<br /><span class=\"{}\">{}</span>{}",
                                h.status.as_str(),
                                h.status.as_str(),
                                h.detail
                                    .as_deref()
                                    .map(|x| format!(" ({})", esc(x)))
                                    .unwrap_or_default()
                            );
                        }
                        if let Some(at) = &c.deployed_at {
                            let _ = write!(cell, "<br />{}", time(at));
                        }
                        cell
                    }
                    None => "<span class=\"muted\">not deployed</span>".to_owned(),
                },
                None => "<span class=\"muted\">-</span>".to_owned(),
            };
            let _ = write!(body, "<td>{cell}</td>");
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</tbody>\n</table></div>\n");

    // Timeline.
    body.push_str("<h2 id=\"history\">History</h2>\n");
    if d.history.entries.is_empty() {
        body.push_str("<p class=\"muted\">Nothing was rolled out yet.</p>\n");
    } else {
        let _ = writeln!(
            body,
            "<p class=\"muted\">The newest {} of {} rollouts; each row opens to its gate decisions.</p>",
            d.history.rollouts, d.history.recorded
        );
    }
    for e in &d.history.entries {
        let mut line = format!(
            "{} <strong>{}</strong> · {} · {} · <span class=\"{}\">{}</span> · {}",
            time(&e.timestamp),
            esc(&e.target),
            esc(&e.component),
            links.commit(&e.commit),
            status_class(e.status),
            e.status.as_str(),
            esc(&e.deployed_by)
        );
        if let Some(from) = &e.promoted_from {
            let _ = write!(line, " · promoted from {}", esc(from));
        }
        if let Some(of) = &e.rollback_of {
            let _ = write!(line, " · rollback of {}", links.commit(of));
        }
        if let Some(from) = &e.rolled_forward_from {
            let _ = write!(line, " · roll-forward from {}", links.commit(from));
        }
        let _ = writeln!(
            body,
            "<details id=\"r-{}\"><summary>{line}</summary><div class=\"card\">",
            esc(&e.tag.replace('/', "-"))
        );
        if !e.approved_by.is_empty() {
            let _ = writeln!(
                body,
                "<p>Approved by {}</p>",
                esc(&e.approved_by.join(", "))
            );
        }
        if let Some(err) = &e.error {
            let _ = writeln!(body, "<p class=\"failure\">{}</p>", esc(err));
        }
        for (k, v) in &e.metadata {
            let _ = writeln!(body, "<p class=\"muted\">{}: {}</p>", esc(k), esc(v));
        }
        if e.decisions.is_empty() {
            body.push_str("<p class=\"muted\">No gate decisions recorded.</p>\n");
        } else {
            body.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Gate</th><th scope=\"col\">Result</th><th scope=\"col\">Message</th></tr></thead><tbody>\n");
            for dec in &e.decisions {
                let _ = writeln!(
                    body,
                    "<tr><td><code>{}</code></td><td class=\"{r}\">{r}</td><td>{}</td></tr>",
                    esc(&dec.source),
                    esc(&dec.message),
                    r = dec.result.as_str()
                );
            }
            body.push_str("</tbody></table></div>\n");
        }
        let _ = writeln!(
            body,
            "<p class=\"muted\">Record <code>{}</code></p></div></details>",
            esc(&e.tag)
        );
    }

    // Diffs between adjacent targets.
    body.push_str("<h2 id=\"diffs\">Between targets</h2>\n");
    if d.diffs.is_empty() {
        body.push_str("<p class=\"muted\">No promotions are defined.</p>\n");
    }
    for diff in &d.diffs {
        let (to, from) = (
            diff.from.target.clone().unwrap_or_default(),
            diff.to.target.clone().unwrap_or_default(),
        );
        let _ = writeln!(
            body,
            "<section class=\"card\"><h3>{} → {}</h3>",
            esc(&from),
            esc(&to)
        );
        match diff.behind {
            Some(0) => {
                let _ = writeln!(
                    body,
                    "<p>{} has everything {} runs.</p>",
                    esc(&to),
                    esc(&from)
                );
            }
            Some(n) => {
                let _ = writeln!(
                    body,
                    "<p class=\"pending\">{} is {n} commit{} behind {}.</p>",
                    esc(&to),
                    atmos_core::plural::s(n),
                    esc(&from)
                );
            }
            None => {
                let _ = writeln!(
                    body,
                    "<p class=\"muted\">Not compared: a side has nothing deployed.</p>"
                );
            }
        }
        if !diff.log.is_empty() {
            body.push_str("<ul>\n");
            for c in &diff.log {
                let _ = writeln!(
                    body,
                    "<li>{} {}</li>",
                    links.commit(&c.sha),
                    esc(&c.subject)
                );
            }
            body.push_str("</ul>\n");
        }
        let changes: Vec<_> = diff
            .config
            .iter()
            .filter(|c| c.change != "unchanged")
            .collect();
        if !changes.is_empty() {
            body.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Configuration</th><th scope=\"col\">Now</th><th scope=\"col\">After promotion</th></tr></thead><tbody>\n");
            for c in changes {
                let v = |x: &Option<serde_json::Value>| {
                    x.as_ref().map_or("(unset)".to_owned(), |v| v.to_string())
                };
                let _ = writeln!(
                    body,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    esc(&c.key),
                    esc(&v(&c.from)),
                    esc(&v(&c.to))
                );
            }
            body.push_str("</tbody></table></div>\n");
        }
        body.push_str("</section>\n");
    }

    // SBOMs.
    body.push_str("<h2 id=\"sbom\">What the deployed commits are made of</h2>\n");
    if d.sboms.is_empty() {
        body.push_str("<p class=\"muted\">No SBOM is recorded for the deployed commits.</p>\n");
    } else {
        body.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Commit</th><th scope=\"col\">Components</th><th scope=\"col\">Dependencies</th><th scope=\"col\">Vulnerabilities</th></tr></thead><tbody>\n");
        for s in &d.sboms {
            let vulns = match &s.vulnerabilities {
                Some(v) => format!(
                    "{} critical, {} high, {} medium, {} low",
                    v.critical, v.high, v.medium, v.low
                ),
                None => "not scanned".to_owned(),
            };
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                links.commit(&s.commit),
                s.components.len(),
                s.dependencies,
                esc(&vulns)
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    page(&d.name, &body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_escaped_and_control_characters_are_dropped() {
        assert_eq!(
            super::esc("<a href=\"x\">'&'</a>\u{1b}[31m"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\u{fffd}[31m"
        );
    }
}
