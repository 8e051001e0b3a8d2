//! The deployment board (`report --html`): its structure read with an XML parser (every
//! target and component present, decisions and approvals shown, every link resolves, nothing
//! outside the site is loaded, same repository → same bytes), and the pages rendered in a
//! real browser (headless Chromium) at desktop and phone widths, failing on a blank page or
//! a script error. The screenshots are kept under `target/tmp/board-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Repo, args, check_output_schema};

/// The example rolled out to dev and promoted to staging; prod waits for approvals.
fn example_in_flight() -> Repo {
    let repo = Repo::example();
    repo.commit("Initial payment-service layout");
    repo.atmos_stand_ins(&args("deployment rollout payment-service --target dev"))
        .code(0);
    repo.atmos_stand_ins(&args(
        "deployment rollout payment-service --target staging --promote-from dev",
    ))
    .code(0);
    repo
}

fn report(repo: &Repo, dir: &Path, extra: &[&str]) {
    let mut all = vec![
        "deployment",
        "report",
        "--html",
        dir.to_str().expect("utf-8"),
    ];
    all.extend(extra);
    // A pinned generation time: the same repository gives the same bytes.
    repo.atmos_env(&all, &[("SOURCE_DATE_EPOCH", "1767225600")])
        .code(0)
        .stdout_has(&["Wrote the board of 2 deployments (3 pages)"]);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `href` and `src`, and every id, of a page.
fn links_and_ids(doc: &roxmltree::Document<'_>) -> (Vec<String>, Vec<String>) {
    let mut links = Vec::new();
    let mut ids = Vec::new();
    for node in doc.descendants().filter(|n| n.is_element()) {
        for a in node.attributes() {
            match a.name() {
                "href" | "src" => links.push(a.value().to_owned()),
                "id" => ids.push(a.value().to_owned()),
                _ => {}
            }
        }
    }
    (links, ids)
}

fn texts(doc: &roxmltree::Document<'_>, tag: &str) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name(tag))
        .map(|n| n.descendants().filter_map(|d| d.text()).collect::<String>())
        .collect()
}

#[test]
fn the_board_shows_every_target_component_and_decision_and_stays_inside_the_site() {
    let repo = example_in_flight();
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("site");
    report(&repo, &dir, &[]);
    let index = read(&dir.join("index.html"));
    let page = read(&dir.join("deployment-payment-service.html"));

    for (name, html) in [("index", &index), ("payment-service", &page)] {
        let doc = roxmltree::Document::parse_with_options(
            html,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{name} is not well-formed: {e}"));
        let (links, ids) = links_and_ids(&doc);
        for link in &links {
            assert!(
                !link.contains("://") && !link.starts_with("//"),
                "{name} links outside the site: {link}"
            );
            match link.strip_prefix('#') {
                Some(id) => assert!(ids.iter().any(|i| i == id), "{name}: no #{id}"),
                None => assert!(dir.join(link).is_file(), "{name}: {link} does not exist"),
            }
        }
        assert!(!html.contains("src="), "{name} loads something");
        assert!(
            !html.contains("@import") && !html.contains("url(http"),
            "{name}"
        );
        // Every target of the deployment is a box of its graph, with a title.
        let titles = texts(&doc, "title");
        for target in ["dev", "staging", "prod"] {
            assert!(
                titles.iter().any(|t| t.starts_with(&format!("{target}: "))),
                "{name}: no box for {target} in {titles:?}"
            );
        }
    }
    // The graph says where things stand.
    assert!(
        index.contains("waiting for 2 approvals from sre"),
        "{index}"
    );
    assert!(
        index.contains(
            "atmos deployment approve payment-service --target prod --promote-from staging"
        )
    );

    // The deployment page: the matrix has every component, the timeline every decision.
    let doc = roxmltree::Document::parse_with_options(
        &page,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("parse");
    let rows: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("th") && n.attribute("scope") == Some("row"))
        .map(|n| n.text().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(rows, ["api", "worker", "database", "migrate", "smoke-test"]);
    let details = doc
        .descendants()
        .filter(|n| n.has_tag_name("details"))
        .count();
    assert_eq!(details, 10, "one per component rollout (dev, then staging)");
    for gate in ["builtin/promotion-path", "builtin/artifacts", "policies/"] {
        assert!(page.contains(gate), "the decisions name {gate}");
    }
    assert!(page.contains("promoted from dev"));
    assert!(page.contains("prod has everything staging runs") || page.contains("Not compared"));

    // The same repository gives the same bytes.
    let again = out.path().join("again");
    report(&repo, &again, &[]);
    for file in ["index.html", "deployment-payment-service.html"] {
        assert_eq!(read(&dir.join(file)), read(&again.join(file)), "{file}");
    }

    // Commits link to the forge when asked to, and only then.
    let linked = out.path().join("linked");
    report(
        &repo,
        &linked,
        &["--commit-url", "https://git.example.com/pay/commit/{sha}"],
    );
    assert!(
        read(&linked.join("index.html")).contains("href=\"https://git.example.com/pay/commit/")
    );
    repo.atmos(&args(
        "deployment report --html x --commit-url javascript:alert(1)",
    ))
    .code(2)
    .stderr_has(&["is not a web address with {sha}"]);

    // The same board for people building their own.
    let json = repo.atmos(&args("deployment report payment-service --format json"));
    let doc = json.json();
    check_output_schema("Board", &doc);
    assert_eq!(doc["pending"][0]["target"], "prod");
    assert_eq!(doc["deployments"].as_array().map(Vec::len), Some(1));
    repo.atmos(&args("deployment report"))
        .code(2)
        .stderr_has(&["--html DIR"]);
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "the browser test needs Chromium at {} (set CHROMIUM, or run .ci/run, which installs Debian's chromium)",
        path.display()
    );
    path
}

/// Run headless Chromium on `page` with `flags`; returns its stderr (console messages).
fn browse(page: &Path, profile: &Path, flags: &[String]) -> (String, String) {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(flags)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Share of pixels that differ from the most common color (0 for a blank page), and that
/// background color's brightness (0–765, the sum of its red, green and blue).
fn ink(png_file: &Path) -> (f64, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(png_file).expect("open png"));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let bytes = &buf[..info.buffer_size()];
    let step = info.color_type.samples();
    let mut counts = std::collections::HashMap::new();
    for px in bytes.chunks(step) {
        *counts.entry(px.to_vec()).or_insert(0usize) += 1;
    }
    let total = bytes.len() / step;
    let (color, background) = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, n)| (c.clone(), *n))
        .unwrap_or_default();
    let brightness = color.iter().take(3).map(|b| u32::from(*b)).sum();
    ((total - background) as f64 / total as f64, brightness)
}

#[test]
fn the_board_renders_in_a_real_browser_on_desktop_and_phone() {
    let repo = example_in_flight();
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("site");
    report(&repo, &dir, &[]);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("board-screenshots");
    std::fs::create_dir_all(&shots).expect("mkdir");
    let profile = out.path().join("profile");
    for page in ["index.html", "deployment-payment-service.html"] {
        let file = dir.join(page);
        // The page's script ran to its end, and nothing complained on the console.
        let (dom, log) = browse(&file, &profile, &["--dump-dom".into()]);
        assert!(
            dom.contains("data-ready=\"1\""),
            "{page}: the script did not run:\n{log}"
        );
        let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
        assert!(console.is_empty(), "{page}: console messages: {console:#?}");
        // Every command to type is whole on screen at 1280 px: measured in a copy of the page
        // with a probe script, since a cut command is still in the DOM.
        let probe = out.path().join(format!("probe-{page}"));
        std::fs::write(
            &probe,
            read(&file).replace(
                "</body>",
                "<script>//<![CDATA[\nvar cut = [];\ndocument.querySelectorAll('td code').forEach(function (c) { var r = c.getBoundingClientRect(); if (r.right > window.innerWidth + 1) { cut.push(c.textContent + ' ends at ' + Math.round(r.right)); } });\ndocument.documentElement.setAttribute('data-cut', cut.length ? cut.join(' | ') : 'none');\n//]]></script></body>",
            ),
        )
        .expect("write probe");
        let (dom, _) = browse(
            &probe,
            &profile,
            &["--window-size=1280,900".into(), "--dump-dom".into()],
        );
        assert!(
            dom.contains("data-cut=\"none\""),
            "{page}: a command is cut at 1280 px: {}",
            dom.split("data-cut=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("no probe result")
        );
        for (device, size, dark) in [
            ("desktop", "1280,900", false),
            ("phone", "390,844", false),
            ("desktop-dark", "1280,900", true),
        ] {
            let png = shots.join(format!("{}-{device}.png", page.trim_end_matches(".html")));
            let _ = std::fs::remove_file(&png);
            let mut flags = vec![
                format!("--window-size={size}"),
                format!("--screenshot={}", png.display()),
            ];
            if dark {
                flags.push("--force-dark-mode".into());
            }
            browse(&file, &profile, &flags);
            let (covered, background) = ink(&png);
            // The page follows the system's color scheme.
            assert_eq!(
                background < 200,
                dark,
                "{page} at {device}: background brightness {background}"
            );
            assert!(
                covered > 0.02,
                "{page} at {device} width is blank ({:.1}% ink): {}",
                covered * 100.0,
                png.display()
            );
        }
    }
}

/// Attacks on the board: a rejection is shown as one (not as "waiting" with an approve
/// command), approvals the gate does not count are not counted, a link planted where a page
/// goes is replaced rather than written through, pages of deployments no longer on the board
/// go, an empty commit URL means no links, and a name with a direction override is refused.
#[test]
fn the_board_tells_the_truth_about_approvals_and_writes_only_its_own_pages() {
    let repo = example_in_flight();
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("site");
    let approve = |who: &str, verb: &str, extra: &[&str]| {
        let mut all = vec![
            "deployment",
            verb,
            "payment-service",
            "--target",
            "prod",
            "--promote-from",
            "staging",
        ];
        all.extend(extra);
        repo.atmos_env(&all, &[("ATMOS_ACTOR", who)])
    };
    // Outside sre: recorded, not counted.
    approve("dave@example.com", "approve", &[]).code(0);
    report(&repo, &dir, &[]);
    let index = read(&dir.join("index.html"));
    assert!(index.contains("0 of 2 counted from sre"), "{index}");
    assert!(index.contains("dave@example.com does not count"), "{index}");
    // A rejection from sre stops the promotion: the board says so, and offers no approve.
    let key = repo.example_key("alice");
    approve(
        "alice@example.com",
        "reject",
        &["-m", "error rate up", "--signing-key", &key],
    )
    .code(0);
    // Someone plants a link where a page goes, and a page of a deployment that is gone.
    std::fs::write(out.path().join("precious"), "keep me").expect("write");
    std::fs::remove_file(dir.join("index.html")).expect("rm");
    std::os::unix::fs::symlink(out.path().join("precious"), dir.join("index.html")).expect("ln");
    std::fs::write(dir.join("deployment-gone.html"), "old").expect("write");
    report(&repo, &dir, &[]);
    assert_eq!(
        read(&out.path().join("precious")),
        "keep me",
        "written through a link"
    );
    let index = read(&dir.join("index.html"));
    assert!(
        index.contains("rejected by alice@example.com: error rate up"),
        "{index}"
    );
    assert!(
        !dir.join("deployment-gone.html").exists(),
        "a stale page stayed"
    );
    // An unset CI variable: no links, no error.
    repo.atmos_env(
        &[
            "deployment",
            "report",
            "--html",
            dir.to_str().expect("utf-8"),
        ],
        &[("ATMOS_COMMIT_URL", "")],
    )
    .code(0);
    assert!(!read(&dir.join("index.html")).contains("href=\"http"));
    repo.atmos(&args(
        "deployment report --html x --commit-url https://h/{sha}<b>",
    ))
    .code(2);
    // A target whose components run different commits says so, as `status` does.
    repo.write_file("migrations/004_more.sql", "SELECT 1;");
    repo.commit("another migration");
    repo.atmos_stand_ins(&args(
        "deployment rollout payment-service --target dev --component migrate",
    ))
    .code(0);
    report(&repo, &dir, &[]);
    assert!(read(&dir.join("index.html")).contains("(mixed)"));
    // A deployer name that would read backwards on the board is refused at the door.
    repo.atmos_env(
        &args("deployment rollout payment-service --target dev --force"),
        &[("ATMOS_ACTOR", "mallory\u{202e}@example.com")],
    )
    .code(2)
    .stderr_has(&["text direction control character"]);
}

/// What a reader of a published board needs to trust it: when it was generated and how new
/// its records are; a target that waits for approval still says how far behind it is; the
/// newest rollouts are one row per rollout with its components inside; a deployment that
/// never ran takes one line, not a row of empty boxes.
#[test]
fn the_board_is_stamped_groups_rollouts_and_keeps_what_a_waiting_target_lacks() {
    let f = crate::rollout::Fixture::new();
    f.repo.write(
        "idle.yaml",
        "deployment:\n  name: idle\n  components:\n    script:\n      x:\n        settings: {script: {apply: 'true'}}\n  targets:\n    dev: {}\n    prod: {promotion: {from: dev}}\n",
    );
    f.repo.commit("an inventory deployment");
    let v1 = f.version("1");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    let promote = || f.rollout(&["--target", "prod", "--promote-from", "staging"]);
    assert_ne!(promote().code, 0, "prod waits for an approval");
    f.repo
        .atmos_env(
            &args("deployment approve svc --target prod"),
            &[("ATMOS_ACTOR", "alice@example.com")],
        )
        .code(0);
    promote().code(0);
    f.version("2");
    f.rollout(&["--target", "dev"]).code(0);
    f.rollout(&["--target", "staging", "--promote-from", "dev"])
        .code(0);
    assert_ne!(promote().code, 0, "v2 waits for an approval in prod");
    f.repo.assert_state("svc", "prod", "a", Some(&v1));

    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("site");
    let site = dir.to_str().expect("utf-8");
    f.repo
        .atmos_env(
            &["deployment", "report", "--html", site],
            &[("SOURCE_DATE_EPOCH", "1767225600")],
        )
        .code(0);
    let index = read(&dir.join("index.html"));
    roxmltree::Document::parse_with_options(
        &index,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("well-formed");
    assert!(
        index.contains("Generated <time datetime=\"2026-01-01T00:00:00Z\">2026-01-01 00:00 UTC</time>, from records up to <time"),
        "{index}"
    );
    // prod's box: the wait and what it lacks, as the CLI graph shows them.
    let prod_box = index
        .split("<g><title>prod: ")
        .nth(1)
        .and_then(|s| s.split("</title>").next())
        .expect("prod's box");
    assert!(
        prod_box.contains("waiting for 1 approval") && prod_box.contains("1 commit behind staging"),
        "{prod_box}"
    );
    // The inventory deployment: one line, linked, and no graph of empty boxes.
    assert!(
        index.contains("Never rolled out</h2><p class=\"muted\">1 deployment with nothing deployed to any target: <a href=\"deployment-idle.html\">idle</a>"),
        "{index}"
    );
    assert!(!index.contains("Promotion graph of idle"), "{index}");
    // Newest rollouts: one row per rollout (5 rollouts ran), each with both components.
    let json = f
        .repo
        .atmos_env(
            &args("deployment report --format json"),
            &[("SOURCE_DATE_EPOCH", "1767225600")],
        )
        .json();
    check_output_schema("Board", &json);
    let recent = json["recent"].as_array().expect("recent");
    assert_eq!(recent.len(), 5, "{recent:#?}");
    for r in recent {
        let names: Vec<&str> = r["components"]
            .as_array()
            .expect("components")
            .iter()
            .filter_map(|c| c["component"].as_str())
            .collect();
        assert_eq!(names.len(), 2, "{r}");
        assert!(names.contains(&"a") && names.contains(&"b"), "{r}");
        assert_eq!(r["components"][0]["status"], "success", "{r}");
    }
    assert_eq!(recent[0]["target"], "staging");
    assert_eq!(json["generated_at"], "2026-01-01T00:00:00Z");
    assert_eq!(json["records_as_of"], recent[0]["timestamp"]);
    // A pinned time that is not one is refused with the fix.
    f.repo
        .atmos_env(
            &["deployment", "report", "--html", site],
            &[("SOURCE_DATE_EPOCH", "yesterday")],
        )
        .code(2)
        .stderr_has(&["SOURCE_DATE_EPOCH `yesterday` is not a number of seconds"]);
}
